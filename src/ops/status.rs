//! `status`: what this database has applied, what the release would still run,
//! drift (of applied files; with `--drift`, of the live schema too), and who
//! holds the migration lock. Read-only: takes no lock, creates nothing.

use serde::Serialize;

use crate::config::targets::FleetSpec;
use crate::config::{Config, Env};
use crate::core::version::Version;
use crate::db::catalog::{self, InvalidIndex};
use crate::db::history::{HistoryStore, ReleaseSummary};
use crate::db::lock::{self, LockHolder};
use crate::ops::fleet::{self, FleetTarget, Pacing, Row, Shard};
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
        Some(fingerprint::check(&client, &history, &fingerprint::scope_for(config)).await?)
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

// ---------------------------------------------------------------------------
// A fleet: every target's status, read concurrently.
// ---------------------------------------------------------------------------

/// One target's line of a fleet status.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetStatus {
    pub target: String,
    pub database: String,
    pub schema: Option<String>,
    pub history_schema: String,
    /// The newest version in effect, if any.
    pub applied: Option<String>,
    pub pending: usize,
    pub up_to_date: bool,
    /// The newest attempt failed (a failure later followed by a success is not news).
    pub last_attempt_failed: bool,
    pub last_error: Option<String>,
    /// Drift, downgrade or a moved tag, as apply would refuse.
    pub problem: Option<String>,
    pub invalid_indexes: usize,
    /// With `--drift`: the live schema against the last recorded
    /// fingerprint, and how many objects differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_drift: Option<DriftOutcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drifted_objects: Option<usize>,
    /// The target could not be read (unreachable, refused credentials, ...).
    pub error: Option<String>,
}

impl Row for TargetStatus {
    fn failed(&self) -> bool {
        self.error.is_some()
    }
    fn not_started(_: usize, t: &FleetTarget, _: bool, why: &str) -> Self {
        let mut s = TargetStatus::blank(t);
        s.error = Some(why.to_owned());
        s
    }
}

impl TargetStatus {
    fn blank(t: &FleetTarget) -> TargetStatus {
        TargetStatus {
            target: t.identity.clone(),
            database: t.database.clone(),
            schema: t.schema.clone(),
            history_schema: t
                .history_schema
                .clone()
                .unwrap_or_else(|| "squizzle".into()),
            applied: None,
            pending: 0,
            up_to_date: false,
            last_attempt_failed: false,
            last_error: None,
            problem: None,
            invalid_indexes: 0,
            schema_drift: None,
            drifted_objects: None,
            error: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetStatusReport {
    pub schema_version: u32,
    pub environment: Option<String>,
    /// The release compared against.
    pub release: Option<String>,
    pub shard: Option<Shard>,
    pub targets: usize,
    pub fleet: usize,
    pub up_to_date: usize,
    pub pending: usize,
    pub failed: usize,
    pub unreadable: usize,
    /// With `--drift`: targets whose live schema differs from their last
    /// recorded fingerprint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_drifted: Option<usize>,
    /// Targets per newest applied version ("none": nothing applied).
    pub versions: std::collections::BTreeMap<String, usize>,
    pub rows: Vec<TargetStatus>,
}

/// What `status` over a fleet looks at.
pub struct FleetStatusOptions<'a> {
    /// Compare with this release instead of the newest in the store.
    pub version: Option<&'a Version>,
    /// This shard of the fleet only.
    pub shard: Option<Shard>,
    /// Targets read at once.
    pub parallel: usize,
    /// Also compare each target's live schema with its last fingerprint.
    pub drift: bool,
}

/// `status` over the selected environment's fleet (this shard of it): the
/// single-database status of each target, `parallel` at a time, summed up.
pub async fn status_fleet(
    config: &Config,
    env: &Env,
    spec: &FleetSpec,
    opts: &FleetStatusOptions<'_>,
    done: &mut dyn FnMut(&TargetStatus),
) -> Result<FleetStatusReport> {
    let (version, shard, parallel, drift) = (opts.version, opts.shard, opts.parallel, opts.drift);
    let env_name = config.environment.as_deref().unwrap_or("default");
    let all = fleet::targets::resolve(spec, env, env_name).await?;
    let fleet_size = all.len();
    let targets = fleet::select(all, shard);
    let pacing = Pacing {
        parallel,
        canary: 0,
        max_failures: None,
    };
    let rows = fleet::run(
        &targets,
        pacing,
        |_, t| async move {
            let cfg = config.for_target(&t.url, t.history_schema.as_deref(), t.schema.as_deref());
            let mut row = TargetStatus::blank(t);
            match status(&cfg, env, version, drift).await {
                Ok(r) => {
                    row.applied = r.applied.last().map(|a| a.version.clone());
                    row.pending = r.pending.len();
                    row.up_to_date = r.up_to_date;
                    if let Some(last) = r.recent.last().filter(|l| !l.success) {
                        row.last_attempt_failed = true;
                        row.last_error = last.error_message.clone();
                    }
                    row.problem = r.problem;
                    row.invalid_indexes = r.invalid_indexes.len();
                    if let Some(d) = &r.drift {
                        row.schema_drift = Some(d.outcome);
                        row.drifted_objects =
                            Some(d.diff.added.len() + d.diff.removed.len() + d.diff.changed.len());
                    }
                }
                Err(e) => row.error = Some(e.to_string()),
            }
            row
        },
        done,
    )
    .await;
    let mut versions = std::collections::BTreeMap::new();
    for r in rows.iter().filter(|r| r.error.is_none()) {
        *versions
            .entry(r.applied.clone().unwrap_or_else(|| "none".into()))
            .or_insert(0) += 1;
    }
    let release = match version {
        Some(v) => Some(v.tag()),
        None => {
            let dir = config.store_dir();
            if dir.exists() {
                versions_in(&LayoutStore::open(&dir)?)?
            } else {
                None
            }
        }
    };
    Ok(FleetStatusReport {
        schema_version: 1,
        environment: config.environment.clone(),
        release,
        shard,
        targets: rows.len(),
        fleet: fleet_size,
        up_to_date: rows.iter().filter(|r| r.up_to_date).count(),
        pending: rows
            .iter()
            .filter(|r| r.error.is_none() && r.pending > 0)
            .count(),
        failed: rows.iter().filter(|r| r.last_attempt_failed).count(),
        unreadable: rows.iter().filter(|r| r.error.is_some()).count(),
        schema_drifted: drift.then(|| {
            rows.iter()
                .filter(|r| r.schema_drift == Some(DriftOutcome::Drift))
                .count()
        }),
        versions,
        rows,
    })
}

fn versions_in(store: &LayoutStore) -> Result<Option<String>> {
    Ok(versions(store)?.pop().map(|(v, _)| v.tag()))
}
