//! `status`: what this database has applied, what the release would still run,
//! drift (of applied files; with `--drift`, of the live schema too), and who
//! holds the migration lock. Read-only: takes no lock, creates nothing.

use serde::Serialize;

use crate::config::{Config, Env};
use crate::core::version::Version;
use crate::db::catalog::{self, InvalidIndex};
use crate::db::fingerprint::Scope;
use crate::db::history::{HistoryStore, ReleaseSummary};
use crate::db::lock::{self, LockHolder};
use crate::ops::release::resolve::{self, versions};
use crate::ops::run::fingerprint::{self, DriftCheck, DriftOutcome};
use crate::ops::run::plan;
use crate::ops::run::session::connect;
use crate::ops::{Error, Result};
use crate::store::layout::LayoutStore;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedVersion {
    pub version: String,
    pub digest: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingFile {
    pub id: String,
    pub path: String,
    pub resume_from: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub database: String,
    pub history_schema: String,
    pub history_exists: bool,
    /// Versions in effect (applied or baselined, not rolled back), oldest first.
    pub applied: Vec<AppliedVersion>,
    pub applied_migrations: usize,
    /// Last ten attempts, newest last.
    pub recent: Vec<ReleaseSummary>,
    /// The release compared against: `--version`, else the newest in the store.
    pub release: Option<String>,
    pub pending: Vec<PendingFile>,
    /// Drift, downgrade or a moved tag, as apply would report it.
    pub problem: Option<String>,
    /// Every migration of the compared release has run, but no successful
    /// release row says so (the run stopped before recording it): `apply`
    /// of that release records it.
    pub unrecorded: bool,
    pub lock_holder: Option<LockHolder>,
    /// Indexes whose build never finished (interrupted or failed
    /// `CREATE INDEX CONCURRENTLY`): unusable, so never up to date with them.
    pub invalid_indexes: Vec<InvalidIndex>,
    /// `--drift`: the live schema against the last recorded fingerprint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftCheck>,
    pub up_to_date: bool,
}

pub async fn status(
    config: &Config,
    env: &Env,
    version: Option<&Version>,
    drift: bool,
) -> Result<StatusReport> {
    let store_dir = config.store_dir();
    let store = if store_dir.exists() {
        Some(LayoutStore::open(&store_dir)?)
    } else {
        None
    };
    let release = match (version, &store) {
        (Some(v), Some(s)) => Some(resolve::resolve(s, v)?),
        (Some(v), None) => return Err(artifact_ref_missing(config, v)),
        (None, Some(s)) => match versions(s)?.pop() {
            Some((v, _)) => Some(resolve::resolve(s, &v)?),
            None => None,
        },
        (None, None) => None,
    };
    let (client, spec) = connect(config, env, "status", None).await?;
    let envcfg = config.active_environment();
    let history = HistoryStore::new(envcfg.history_schema.as_deref().unwrap_or("squizzle"))?;
    let snapshot = history.snapshot(&client).await?;
    let lock_holder = lock::holder(&client, lock::key_for(history.schema())).await?;
    let invalid_indexes = catalog::invalid_indexes(&client).await?;
    let drift = if drift {
        Some(fingerprint::check(&client, &history, &Scope::AllUserSchemas).await?)
    } else {
        None
    };
    let applied: Vec<AppliedVersion> = plan::applied_versions(&snapshot)
        .into_iter()
        .map(|(version, digest)| AppliedVersion { version, digest })
        .collect();
    let mut pending = Vec::new();
    let mut problem = None;
    let mut unrecorded = false;
    if let Some(r) = &release {
        match plan::plan(&r.manifest, &r.digest(), &snapshot, false) {
            Ok(p) => {
                let tag = r.manifest.version.tag();
                unrecorded = p.steps.is_empty() && !applied.iter().any(|a| a.version == tag);
                pending = p
                    .steps
                    .iter()
                    .map(|s| PendingFile {
                        id: s.file.id.clone(),
                        path: s.file.path.clone(),
                        resume_from: s.resume_from,
                    })
                    .collect();
            }
            Err(e) => problem = Some(e.to_string()),
        }
    }
    let recent = snapshot
        .releases
        .iter()
        .rev()
        .take(10)
        .rev()
        .cloned()
        .collect();
    Ok(StatusReport {
        database: spec.target.clone(),
        history_schema: history.schema().name().to_owned(),
        history_exists: snapshot.exists,
        up_to_date: release.is_some()
            && pending.is_empty()
            && problem.is_none()
            && !unrecorded
            && invalid_indexes.is_empty()
            && drift
                .as_ref()
                .is_none_or(|d| d.outcome != DriftOutcome::Drift),
        unrecorded,
        applied,
        applied_migrations: snapshot.migrations.values().filter(|m| m.complete).count(),
        recent,
        release: release.map(|r| r.manifest.version.tag()),
        pending,
        problem,
        lock_holder,
        invalid_indexes,
        drift,
    })
}

fn artifact_ref_missing(config: &Config, v: &Version) -> Error {
    Error::NotFound {
        version: v.tag(),
        store: config.store_dir(),
        hint: format!("there is no store there yet: run `squizzle build {v}` first"),
    }
}
