//! `audit <version>`: where a release went and who put it there. The artifact
//! side (digest, signer, transparency-log index, provenance, revocation) comes
//! from `verify`; the database side from every configured environment's
//! history, read concurrently, each under its own timeout. Read-only: no lock,
//! no history schema created, every session `READ ONLY`. A database that
//! cannot be reached is a finding about that environment, not a failure of
//! the audit.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;

use crate::config::{Config, Env, Environment};
use crate::core::digest::Digest;
use crate::core::errors::error_chain;
use crate::core::manifest::FileKind;
use crate::core::version::Version;
use crate::db::DbError;
use crate::db::audit::ReleaseDetails;
use crate::db::connect::ConnectSpec;
use crate::db::history::{HistoryStore, ReleaseSummary};
use crate::ops::fleet;
use crate::ops::registry::registry_configured;
use crate::ops::release::fetch::{pull_if_missing, refresh_referrers};
use crate::ops::release::provenance::ProvenanceSummary;
use crate::ops::release::resolve;
use crate::ops::release::verify::{self, Check, Revocation, VerifyOptions};
use crate::ops::run::plan;
use crate::ops::run::session::connect_spec;
use crate::ops::{Error, Result};
use crate::signing::verify::Verified;
use crate::store::layout::LayoutStore;

/// The default per-environment budget: connect and every query.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Do not contact the registry (no pull, no referrer refresh).
    pub offline: bool,
    /// Per environment: connecting and reading its history.
    pub timeout: Duration,
    /// Signature policy additions; revocations are reported, never refused.
    pub verify: VerifyOptions,
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self {
            offline: false,
            timeout: DEFAULT_TIMEOUT,
            verify: VerifyOptions::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditReport {
    pub version: String,
    pub artifact: ArtifactSide,
    /// One per environment, in configuration (name) order.
    pub environments: Vec<TargetReport>,
    pub summary: Summary,
}

/// The release as the store (and registry) know it.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactSide {
    /// The release is in the local store (pulled first when it was missing).
    pub found: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Integrity and signature policy satisfied (a revocation is reported in
    /// `revocation`, not counted here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    pub checks: Vec<Check>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<Verified>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<ProvenanceSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation: Option<Revocation>,
    /// Migration files in the release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrations: Option<usize>,
    /// Findings the release allows (`build --allow`), signed with it: a
    /// deny policy let these through.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_findings: Vec<crate::core::manifest::FindingAllowance>,
    /// The registry it was pulled from during this audit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pulled_from: Option<String>,
    /// Why it could not be found or read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Registry problems and other remarks.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetStatus {
    /// In effect: a successful apply or baseline not undone by a rollback.
    Applied,
    /// Its last successful operation was a rollback.
    RolledBack,
    /// Only failed attempts (or a failure after its rollback was undone).
    Failed,
    /// squizzle's history exists and has no row for this version.
    NotApplied,
    /// No squizzle history schema in that database.
    NoHistory,
    /// Connection refused, DNS, TLS, or lost.
    Unreachable,
    /// The database refused the credentials.
    AuthFailed,
    /// No complete answer within the per-target timeout.
    TimedOut,
    /// Connected, but the history could not be read (permissions, newer layout, bad URL).
    Error,
    /// The environment has no `database_url`.
    Skipped,
}

impl TargetStatus {
    /// The history was read: the row says something about the version.
    pub fn answered(self) -> bool {
        matches!(
            self,
            Self::Applied | Self::RolledBack | Self::Failed | Self::NotApplied | Self::NoHistory
        )
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::RolledBack => "rolled back",
            Self::Failed => "failed",
            Self::NotApplied => "not applied",
            Self::NoHistory => "no history",
            Self::Unreachable => "unreachable",
            Self::AuthFailed => "auth failed",
            Self::TimedOut => "timed out",
            Self::Error => "error",
            Self::Skipped => "skipped",
        }
    }
}

/// A `releases` row with its digest judged against the store's.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    #[serde(flatten)]
    pub row: ReleaseSummary,
    #[serde(flatten)]
    pub details: ReleaseDetails,
    /// None when the store's digest is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest_matches: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetReport {
    /// The environment, or `environment/target` for a target of a fleet.
    pub environment: String,
    /// The fleet target's identity (docs/fleet.md), for a fleet's entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `host:port/db` (never credentials), when the settings parse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    pub history_schema: String,
    pub status: TargetStatus,
    /// The attempt the status rests on: when, by whom, which digest and signer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer_identity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer_issuer: Option<String>,
    /// A successful apply/baseline of this version recorded another digest
    /// than the store's: a moved tag or another build under the same version.
    pub digest_mismatch: bool,
    /// Migration files of the release applied here with the same content
    /// (when the release is known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrations_applied: Option<usize>,
    /// Migration rows this database attributes to this version.
    pub migrations_recorded: usize,
    /// Every recorded attempt for the version, oldest first.
    pub attempts: Vec<Attempt>,
    /// Connection or reading error, or the failed attempt's error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub environments: usize,
    /// History read (whatever it said).
    pub answered: usize,
    /// Unreachable, refused, timed out or unreadable.
    pub unanswered: usize,
    pub skipped: usize,
    pub applied: usize,
    pub failed: usize,
    pub digest_mismatches: usize,
}

/// Audits `version` in every environment of the configuration (only the
/// selected one when `--env`/`SQUIZZLE_ENV` names one).
pub async fn audit(
    config: &Config,
    env: &Env,
    version: &Version,
    opts: &AuditOptions,
) -> Result<AuditReport> {
    let names: Vec<&String> = config
        .environments
        .keys()
        .filter(|n| config.environment.as_ref().is_none_or(|sel| sel == *n))
        .collect();
    // Without environments (DATABASE_URL makes one, `default`), the database
    // the libpq variables name is audited as `default`, as apply would use it.
    let process_url = env.get("DATABASE_URL").filter(|u| !u.is_empty());
    let libpq_named = crate::db::connect::names_a_database(env);
    let implicit = (names.is_empty() && libpq_named).then(Environment::default);
    if implicit.is_none()
        && !names.iter().any(|n| {
            let e = &config.environments[*n];
            e.database_url.is_some() || !e.unresolved.is_empty() || e.is_fleet()
        })
    {
        return Err(Error::Usage(
            "no environment to audit: define `[environments.NAME] database_url` in squizzle.toml, or set DATABASE_URL or the PG* variables".into(),
        ));
    }
    let mut artifact = artifact_side(config, version, opts).await;
    if implicit.is_none() && process_url.is_some() {
        artifact.notes.push(
            "DATABASE_URL is set: it replaces every environment's database_url, so every environment below is that one database".into(),
        );
    }
    let migrations = release_migrations(config, version, &artifact);
    let reference = artifact.digest.map(|d| d.to_string());
    let tag = version.tag();
    let mut selected: Vec<(&str, &Environment, bool)> = names
        .iter()
        .map(|n| (n.as_str(), &config.environments[*n], true))
        .collect();
    if let Some(e) = &implicit {
        selected.push(("default", e, false));
    }
    // A fleet environment is audited target by target, each under its
    // `environment/target` label; a fleet that cannot be listed is one
    // unanswered entry. At most AUDIT_PARALLEL databases are read at once.
    let mut entries: Vec<std::result::Result<Entry, TargetReport>> = Vec::new();
    for (name, envcfg, named) in &selected {
        let Some(spec) = config.fleet_of(envcfg) else {
            entries.push(Ok(((*name).to_owned(), None, (*envcfg).clone(), *named)));
            continue;
        };
        match fleet::targets::resolve(&spec, env, name).await {
            Ok(targets) => {
                for t in targets {
                    let e = Environment {
                        database_url: Some(t.url.clone()),
                        history_schema: t.history_schema.clone(),
                        ..Environment::default()
                    };
                    entries.push(Ok((
                        format!("{name}/{}", t.identity),
                        Some(t.identity),
                        e,
                        true,
                    )));
                }
            }
            Err(e) => {
                let mut r = unanswered(name, envcfg);
                r.status = classify(&e);
                r.error = Some(error_chain(&e));
                entries.push(Err(r));
            }
        }
    }
    let target = Target {
        tag: &tag,
        reference: reference.as_deref(),
        migrations: migrations.as_deref(),
        timeout: opts.timeout,
    };
    let environments: Vec<TargetReport> = futures_util::stream::iter(entries)
        .map(|entry| async move {
            match entry {
                Ok((label, fleet_target, envcfg, named)) => {
                    let mut r = audit_target(&label, named, &envcfg, env, version, target).await;
                    r.target = fleet_target;
                    r
                }
                Err(r) => r,
            }
        })
        .buffered(AUDIT_PARALLEL)
        .collect()
        .await;
    let mut summary = Summary {
        environments: environments.len(),
        ..Summary::default()
    };
    for t in &environments {
        match t.status {
            TargetStatus::Skipped => summary.skipped += 1,
            s if s.answered() => summary.answered += 1,
            _ => summary.unanswered += 1,
        }
        summary.applied += usize::from(t.status == TargetStatus::Applied);
        summary.failed += usize::from(t.status == TargetStatus::Failed);
        summary.digest_mismatches += usize::from(t.digest_mismatch);
    }
    Ok(AuditReport {
        version: tag,
        artifact,
        environments,
        summary,
    })
}

/// Pull when missing and refresh referrers (unless offline), then verify with
/// revocations allowed. Nothing here fails the audit: what could not be done
/// is said in `error` and `notes`.
async fn artifact_side(config: &Config, version: &Version, opts: &AuditOptions) -> ArtifactSide {
    let mut side = ArtifactSide::default();
    if !opts.offline && registry_configured(config) {
        match pull_if_missing(config, version).await {
            Ok(Some(pulled)) => side.pulled_from = Some(pulled.registry),
            Ok(None) => {
                if let Err(e) = refresh_referrers(config, version).await {
                    side.notes.push(format!(
                        "could not check the registry for new signatures or revocations ({}); using what the local store has",
                        error_chain(&e)
                    ));
                }
            }
            // The registry's copy fails the integrity checks (pull left the
            // store as it was): the release is malformed, not missing.
            Err(e) if refused_content(&e) => {
                malformed(&mut side, "The release in the registry is malformed", &e);
                return side;
            }
            Err(e) => side.notes.push(format!(
                "could not pull {version} from the registry: {}",
                error_chain(&e)
            )),
        }
    }
    let vopts = VerifyOptions {
        allow_revoked: true,
        ..opts.verify.clone()
    };
    match verify::verify(config, version, &vopts) {
        Ok(r) => {
            side.found = true;
            side.verified = Some(r.failure().is_none());
            side.digest = Some(r.digest);
            side.created_at = Some(r.created_at);
            side.checks = r.checks;
            side.signature = r.signature;
            side.provenance = r.provenance;
            side.revocation = r.revocation;
            side.allowed_findings = r.lineage.map(|l| l.allowed_findings).unwrap_or_default();
            let problems = verify::integrity_problems(&side.checks, &r.files);
            if !problems.is_empty() {
                side.error = Some(problems.join("; "));
            }
        }
        // In the store but malformed (a bad manifest, a moved tag, a tarball
        // that does not unpack): an integrity failure, as `verify` says.
        Err(e) if matches!(e, Error::VersionMismatch { .. }) || refused_content(&e) => {
            malformed(&mut side, "The stored release is malformed", &e);
        }
        Err(e) => {
            side.error = Some(error_chain(&e));
            side.notes.push(
                "the release is not available here: the databases are audited anyway, without a digest to compare".into(),
            );
        }
    }
    side
}

/// `e` refuses the release's content or digests (exit 6), as opposed to a
/// machine, network or registry failure.
fn refused_content(e: &Error) -> bool {
    use crate::artifact::unpack::UnpackError as U;
    use crate::store::StoreError as S;
    match e {
        Error::Integrity(_) => true,
        Error::Unpack(u) => !matches!(
            u,
            U::Io { .. }
                | U::ReadInput { .. }
                | U::DestinationExists { .. }
                | U::InvalidDestination { .. }
        ),
        Error::Store(s) => !matches!(
            s,
            S::Io { .. }
                | S::BadTag { .. }
                | S::BadRegistryRef { .. }
                | S::RemoteUnreachable { .. }
                | S::RemoteAuth { .. }
                | S::RemoteNotFound { .. }
                | S::Registry { .. }
                | S::RemoteUnsupported { .. }
        ),
        _ => false,
    }
}

/// Records a malformed release: found, failed, and why.
fn malformed(side: &mut ArtifactSide, what: &str, e: &Error) {
    side.found = true;
    side.verified = Some(false);
    side.checks.push(Check {
        name: verify::CheckId::Artifact,
        status: verify::Status::Fail,
        detail: format!("{what}: {}", error_chain(e)),
        expected: None,
        actual: None,
    });
    side.error = Some(error_chain(e));
}

impl ArtifactSide {
    /// The stored release failed its integrity checks.
    pub fn integrity_failed(&self) -> bool {
        let failed = |n: verify::CheckId| {
            self.checks
                .iter()
                .any(|c| c.name == n && c.status == verify::Status::Fail)
        };
        failed(verify::CheckId::Artifact) || failed(verify::CheckId::Files)
    }
}

/// The release's migration files (id, sha256), when the store has it intact.
fn release_migrations(
    config: &Config,
    version: &Version,
    artifact: &ArtifactSide,
) -> Option<Vec<(String, String)>> {
    if !artifact.found || artifact.integrity_failed() {
        return None;
    }
    let store = LayoutStore::open(&config.store_dir()).ok()?;
    let release = resolve::resolve(&store, version).ok()?;
    Some(
        release
            .manifest
            .files
            .iter()
            .filter(|f| f.kind == FileKind::Migration)
            .map(|f| (f.id.clone(), f.sha256.to_string()))
            .collect(),
    )
}

/// What every target compares against.
#[derive(Clone, Copy)]
struct Target<'a> {
    tag: &'a str,
    reference: Option<&'a str>,
    migrations: Option<&'a [(String, String)]>,
    timeout: Duration,
}

/// `named`: an environment of the configuration (which must say where its
/// database is); else the database the process environment names.
async fn audit_target(
    name: &str,
    named: bool,
    envcfg: &Environment,
    env: &Env,
    version: &Version,
    t: Target<'_>,
) -> TargetReport {
    let started = Instant::now();
    let mut report = unanswered(name, envcfg);
    let schema = report.history_schema.clone();
    if let Some(u) = envcfg.unresolved.iter().find(|u| u.key == "database_url") {
        report.error = Some(format!(
            "environment {name:?}: `database_url` refers to ${{{}}}, which is not set; export it to audit this environment",
            u.var
        ));
        return report;
    }
    if named && envcfg.database_url.is_none() {
        report.error = Some(format!(
            "environment {name:?} has no database_url; nothing to audit"
        ));
        return report;
    }
    let read = async {
        let spec = connect_spec(
            named.then_some(name),
            envcfg.database_url.as_deref(),
            env,
            "audit",
            Some(version),
        )?;
        report.database = Some(spec.target.clone());
        read_history(&spec, &schema, t, &mut report).await
    };
    let outcome = tokio::time::timeout(t.timeout, read).await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            report.status = classify(&e);
            report.error = Some(error_chain(&e));
        }
        Err(_) => {
            report.status = TargetStatus::TimedOut;
            report.error = Some(format!(
                "no complete answer within {:?} (connect and read the history); raise --timeout if the database is slow",
                t.timeout
            ));
        }
    }
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    report
}

/// One database to audit: its label, its fleet identity (for a fleet's
/// target), its settings, and whether the configuration names it.
type Entry = (String, Option<String>, Environment, bool);

/// How many databases `audit` reads at once (a fleet may have hundreds).
const AUDIT_PARALLEL: usize = 16;

/// The report of a target before anything was read.
fn unanswered(name: &str, envcfg: &Environment) -> TargetReport {
    TargetReport {
        environment: name.to_owned(),
        target: None,
        database: None,
        history_schema: envcfg
            .history_schema
            .clone()
            .unwrap_or_else(|| "squizzle".into()),
        status: TargetStatus::Skipped,
        when: None,
        by: None,
        digest: None,
        signer_identity: None,
        signer_issuer: None,
        digest_mismatch: false,
        migrations_applied: None,
        migrations_recorded: 0,
        attempts: Vec::new(),
        error: None,
        elapsed_ms: 0,
    }
}

fn classify(e: &Error) -> TargetStatus {
    match e {
        Error::Db(DbError::Connect { .. } | DbError::Tls(_) | DbError::ConnectionLost { .. }) => {
            TargetStatus::Unreachable
        }
        Error::Db(DbError::Auth { .. }) => TargetStatus::AuthFailed,
        _ => TargetStatus::Error,
    }
}

/// Connects, makes the session read-only, and fills `report` from the history.
async fn read_history(
    spec: &ConnectSpec,
    schema: &str,
    t: Target<'_>,
    report: &mut TargetReport,
) -> Result<()> {
    let history = HistoryStore::new(schema)?;
    let mut client = spec.connect().await?;
    // One read-only snapshot of the database for both reads. Nothing is set
    // on the session: behind a transaction pooler, a session setting would
    // stay on a server connection that other clients get next.
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(|e| DbError::query("starting the audit's read-only transaction", e))?;
    // The statement timeout stops the server's work when ours runs out.
    tx.batch_execute(&format!(
        "SET LOCAL statement_timeout = {}",
        t.timeout.as_millis().max(1)
    ))
    .await
    .map_err(|e| DbError::query("setting the audit's statement timeout", e))?;
    let snapshot = history.snapshot(&tx).await?;
    if !snapshot.exists {
        report.status = TargetStatus::NoHistory;
        return Ok(());
    }
    let mut details = crate::db::audit::details(&history, &tx, t.tag).await?;
    report.migrations_recorded = snapshot
        .migrations
        .values()
        .filter(|m| m.version == t.tag && m.complete)
        .count();
    report.migrations_applied = t.migrations.map(|files| {
        files
            .iter()
            .filter(|(id, sha)| {
                snapshot
                    .migrations
                    .get(id)
                    .is_some_and(|m| m.complete && &m.sha256 == sha)
            })
            .count()
    });
    let in_effect = plan::applied_versions(&snapshot)
        .iter()
        .any(|(v, _)| v == t.tag);
    let attempts: Vec<Attempt> = snapshot
        .releases
        .iter()
        .filter(|r| r.version == t.tag)
        .filter_map(|row| {
            Some(Attempt {
                digest_matches: t.reference.map(|d| d == row.artifact_digest),
                details: details.remove(&row.id)?,
                row: row.clone(),
            })
        })
        .collect();
    report.digest_mismatch = attempts
        .iter()
        .any(|a| a.row.success && a.row.operation != "rollback" && a.digest_matches == Some(false));
    let last_success = attempts.iter().rev().find(|a| a.row.success);
    let (status, decisive) = match last_success {
        _ if in_effect => (
            TargetStatus::Applied,
            attempts
                .iter()
                .rev()
                .find(|a| a.row.success && a.row.operation != "rollback"),
        ),
        Some(a) if a.row.operation == "rollback" => (TargetStatus::RolledBack, Some(a)),
        _ if !attempts.is_empty() => (TargetStatus::Failed, attempts.last()),
        _ => (TargetStatus::NotApplied, None),
    };
    report.status = status;
    if let Some(a) = decisive {
        let r = &a.row;
        report.when = Some(r.applied_at.clone());
        report.by = Some(who(r));
        report.digest = Some(r.artifact_digest.clone());
        report.signer_identity = a.details.signer_identity.clone();
        report.signer_issuer = a.details.signer_issuer.clone();
        if !r.success {
            report.error = Some(failure_text(r, &a.details));
        }
    }
    report.attempts = attempts;
    Ok(())
}

/// Who ran it: the CI identity when recorded, else the OS user, with the role.
fn who(r: &ReleaseSummary) -> String {
    match (&r.ci_identity, &r.applied_by_os_user) {
        (Some(ci), _) => format!("{ci} (role {})", r.applied_by_role),
        (None, Some(user)) => format!("{user} (role {})", r.applied_by_role),
        (None, None) => format!("role {}", r.applied_by_role),
    }
}

fn failure_text(r: &ReleaseSummary, d: &ReleaseDetails) -> String {
    let mut s = r
        .error_message
        .clone()
        .unwrap_or_else(|| "unknown error".into());
    if let Some(code) = &d.error_sqlstate
        && !s.contains(code.as_str())
    {
        s.push_str(&format!(" (SQLSTATE {code})"));
    }
    if let Some(m) = &d.failing_migration {
        let at: Vec<String> = [
            d.failing_statement.map(|n| format!("statement {n}")),
            d.failing_line.map(|n| format!("line {n}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if at.is_empty() {
            s.push_str(&format!(" in {m}"));
        } else {
            s.push_str(&format!(" in {m} ({})", at.join(", ")));
        }
    }
    s
}
