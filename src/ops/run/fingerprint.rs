//! The schema fingerprint a successful run leaves in the history, and the
//! comparison of the live catalog with the last one recorded: what `apply`,
//! `baseline` and `rollback` write and what `drift` and `status --drift`
//! read. Everything is per target (one connection, one history schema, one
//! [`Scope`]), so a run over many databases or tenant schemas calls it once
//! per target.

use serde::Serialize;
use tokio_postgres::{Client, GenericClient};

use crate::db::fingerprint::{self, Diff, Scope};
use crate::db::history::{HistoryStore, Recorded, RecordedRelease};
use crate::db::lock::{self, LockHolder};
use crate::ops::Result;
use crate::ops::run::{Warning, WarningKind};

/// What a target's fingerprint covers: the schemas of its `search_path`
/// when the environment (or a tenant target of a fleet) sets one, so tenant
/// schemas of one database are fingerprinted apart; every user schema
/// otherwise.
pub fn scope_for(config: &crate::config::Config) -> Scope {
    let schemas: Vec<String> = config
        .active_environment()
        .search_path
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().trim_matches('"').to_owned())
        .filter(|s| !s.is_empty() && s != "$user")
        .collect();
    if schemas.is_empty() {
        Scope::AllUserSchemas
    } else {
        Scope::Schemas(schemas)
    }
}

/// Reads the live fingerprint of `scope` and stores it with release row
/// `release_id`. The run it follows has committed already, so a failure here
/// is a warning for the report, not a failed run: `drift` then says the last
/// release has no fingerprint, instead of comparing with an older one.
pub async fn record(
    c: &impl GenericClient,
    history: &HistoryStore,
    release_id: i64,
    scope: &Scope,
) -> Option<Warning> {
    // In a transaction of its own: the row and its digest appear together.
    let result = async {
        c.batch_execute("BEGIN")
            .await
            .map_err(|e| crate::db::DbError::query("starting the fingerprint's transaction", e))?;
        let recorded = history.record_fingerprint(c, release_id, scope).await;
        let end = if recorded.is_ok() {
            "COMMIT"
        } else {
            "ROLLBACK"
        };
        let ended = c
            .batch_execute(end)
            .await
            .map_err(|e| crate::db::DbError::query("ending the fingerprint's transaction", e));
        let (sha256, objects) = recorded?;
        ended?;
        tracing::debug!(objects, sha256 = %sha256, "recorded the schema fingerprint");
        Ok::<_, crate::db::DbError>(())
    }
    .await;
    result.err().map(|e| {
        Warning::new(
            WarningKind::FingerprintNotRecorded,
            format!(
                "the release is applied, but its schema fingerprint was not recorded ({e}); `squizzle drift` has nothing to compare with until the next apply records one"
            ),
        )
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftOutcome {
    /// The live objects are exactly those recorded.
    NoDrift,
    /// Some object was added, removed or changed since the last release.
    Drift,
    /// Nothing recorded to compare with.
    NoFingerprint,
}

/// The live catalog against the fingerprint of the last successful release.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftCheck {
    pub outcome: DriftOutcome,
    /// Why there is nothing to compare with (only for `no_fingerprint`).
    pub reason: Option<String>,
    /// The release row whose fingerprint was compared (or that lacks one).
    pub release: Option<RecordedRelease>,
    pub recorded_at: Option<String>,
    /// sha256 of the recorded objects in scope.
    pub recorded_sha256: Option<String>,
    pub live_sha256: String,
    pub live_objects: usize,
    /// Schemas compared; `None`: every user schema.
    pub schemas: Option<Vec<String>>,
    #[serde(flatten)]
    pub diff: Diff,
    /// An apply holds the migration lock right now: the differences may be
    /// its work in progress.
    pub lock_holder: Option<LockHolder>,
}

/// Compares the live objects of `scope` with what the last successful
/// release recorded. Read-only: takes no lock and creates nothing.
pub async fn check(c: &Client, history: &HistoryStore, scope: &Scope) -> Result<DriftCheck> {
    let recorded = history.last_fingerprint(c).await?;
    let live = fingerprint::capture(c, scope, &[history.schema().name()]).await?;
    let lock_holder = lock::holder(c, lock::key_for(history.schema())).await?;
    let mut out = DriftCheck {
        outcome: DriftOutcome::NoFingerprint,
        reason: None,
        release: None,
        recorded_at: None,
        recorded_sha256: None,
        live_sha256: live.sha256.clone(),
        live_objects: live.objects.len(),
        schemas: scope.schemas().map(<[String]>::to_vec),
        diff: Diff::default(),
        lock_holder,
    };
    let schema = history.schema().name();
    match recorded {
        Recorded::NoHistory => {
            out.reason = Some(format!(
                "there is no squizzle history (schema {schema}) in this database: nothing was applied here, so there is nothing to compare with. Run `squizzle apply` (or `squizzle baseline` for a database made another way) first"
            ));
        }
        Recorded::NoRelease => {
            out.reason = Some(format!(
                "squizzle's history (schema {schema}) records no successful apply, baseline or rollback, so there is nothing to compare with"
            ));
        }
        Recorded::Missing(release) => {
            out.reason = Some(format!(
                "the last successful {} (release {} at {}) recorded no schema fingerprint: it ran with a squizzle that did not record one, or recording failed. The next apply, baseline or rollback records one",
                release.operation, release.version, release.applied_at
            ));
            out.release = Some(release);
        }
        Recorded::Found {
            release,
            fingerprint_version,
            ..
        } if fingerprint_version != fingerprint::FINGERPRINT_VERSION => {
            out.reason = Some(format!(
                "the last successful {} (release {}) recorded a fingerprint of layout {fingerprint_version}, and this squizzle reads layout {}: the two describe objects differently. The next apply, baseline or rollback records one this squizzle can compare",
                release.operation,
                release.version,
                fingerprint::FINGERPRINT_VERSION
            ));
            out.release = Some(release);
        }
        Recorded::Found {
            release,
            recorded_at,
            fingerprint,
            ..
        } => {
            let recorded = fingerprint.narrowed(scope);
            out.diff = fingerprint::diff(&recorded, &live);
            out.outcome = if out.diff.is_empty() {
                DriftOutcome::NoDrift
            } else {
                DriftOutcome::Drift
            };
            out.recorded_sha256 = Some(recorded.sha256);
            out.recorded_at = Some(recorded_at);
            out.release = Some(release);
        }
    }
    Ok(out)
}
