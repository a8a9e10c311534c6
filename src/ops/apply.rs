//! `apply`: verify -> extract -> connect -> lock -> plan -> run -> record.
//!
//! Pending migrations run in transaction segments: by default (`release` mode)
//! every run of consecutive ordinary files is one transaction together with its
//! history rows, so a failure leaves the database as it was; a file marked
//! no-transaction runs alone, statement by statement, recording its progress
//! after each statement so that a re-run resumes where it stopped. In `file`
//! mode each migration commits on its own. The release's success row is written
//! in the same transaction as the last file whenever that file is transactional.
//! A failure is recorded in its own row after the rollback.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_postgres::Client;

use crate::artifact::unpack;
use crate::config::{Config, Env, TxMode};
use crate::core::digest::Digest;
use crate::core::manifest::{FileEntry, FileKind, SourceFormat, TransactionMode};
use crate::core::version::Version;
use crate::db::connect::ConnectSpec;
use crate::db::history::{HistoryStore, MigrationRecord, ReleaseRecord};
use crate::db::lock::{self, LockHolder};
use crate::db::split::{self, SplitMode};
use crate::db::{DbError, describe};
use crate::ops::artifact_ref::{self, ResolvedRelease};
use crate::ops::build::limits;
use crate::ops::plan::{self, Plan, Step};
use crate::ops::verify::{self, Failure, VerifyOptions, VerifyReport};
use crate::ops::{Error, Result};
use crate::store::layout::LayoutStore;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DryRun {
    Off,
    /// Verify, plan and print the SQL; write nothing, take no lock.
    Plan,
    /// Run everything inside one transaction and roll it back.
    Execute,
}

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub version: Version,
    pub dry_run: DryRun,
    pub allow_out_of_order: bool,
    pub run: RunOptions,
}

/// What the commands that run a release's SQL (apply, rollback) share.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// None: the environment's `tx_mode`, else release.
    pub tx_mode: Option<TxMode>,
    pub timeouts: Timeouts,
    /// Signature policy additions and the bundle to consider.
    pub verify: VerifyOptions,
    /// Do not contact the registry (no pull, no referrer refresh).
    pub offline: bool,
}

impl RunOptions {
    pub fn tx_mode(&self, config: &Config) -> TxMode {
        self.tx_mode
            .or(config.active_environment().tx_mode)
            .unwrap_or_default()
    }
}

/// Progress, for the CLI to show as it happens.
pub enum ApplyEvent<'a> {
    /// The release was not in the local store and was pulled from the registry.
    Pulled(&'a crate::ops::transfer::TransferReport),
    /// The registry could not be asked for new referrers; local evidence is used.
    RefreshFailed(String),
    Verified(&'a VerifyReport),
    Connected {
        target: &'a str,
    },
    LockWait(Option<&'a LockHolder>),
    Locked,
    Planned(&'a Plan),
    Warning(&'a str),
    FileStarted {
        file: &'a FileEntry,
        statements: usize,
        resume_from: usize,
    },
    FileDone {
        file: &'a FileEntry,
        statements: usize,
        ms: u64,
    },
    DryRunFile {
        file: &'a FileEntry,
        sql: &'a str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Applied,
    NothingToDo,
    DryRun,
    DryRunExecuted,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_control_is_found_inside_multi_statement_chunks_with_its_line() {
        let file =
            "CREATE TABLE a (id int);\n--> statement-breakpoint\nSELECT 1;\n-- note\nCOMMIT;\n";
        let chunks = split::split(file, SplitMode::Drizzle).unwrap();
        assert_eq!(find_transaction_control(&chunks), Some((5, "COMMIT")));
        let clean = split::split(
            "CREATE TABLE a (id int);\n--> statement-breakpoint\nDO $$ BEGIN NULL; END $$;",
            SplitMode::Drizzle,
        )
        .unwrap();
        assert_eq!(find_transaction_control(&clean), None);
    }

    #[test]
    fn code_line_skips_leading_comments() {
        let file =
            "SELECT 1;\n-- why\n/* nested /* block */ comment */\n\nINSERT INTO t VALUES (1);";
        let st = split::split(file, SplitMode::Plain).unwrap();
        assert_eq!(code_line(&st[1]), 5);
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedFile {
    pub id: String,
    pub path: String,
    pub transaction: TransactionMode,
    pub statements: usize,
    pub resume_from: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyReport {
    pub version: String,
    pub digest: Digest,
    pub database: String,
    pub history_schema: String,
    pub outcome: Outcome,
    pub tx_mode: TxMode,
    pub planned: Vec<PlannedFile>,
    pub skipped: usize,
    pub migrations_run: usize,
    pub statements_run: usize,
    pub execution_ms: u64,
    pub release_id: Option<i64>,
    pub warnings: Vec<String>,
}

/// Details of a migration that failed (and was rolled back where it could be).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationFailure {
    pub version: String,
    pub migration: String,
    pub path: String,
    /// 1-based statement number within the file.
    pub statement: usize,
    /// 1-based line in the file where the error points.
    pub line: usize,
    pub sqlstate: Option<String>,
    pub message: String,
    pub rolled_back: bool,
    pub recorded: bool,
    pub migrations_committed: usize,
}

impl std::fmt::Display for MigrationFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "migration {} failed at statement {} (line {} of {}): {}",
            self.migration, self.statement, self.line, self.path, self.message
        )?;
        if self.rolled_back {
            write!(f, "; its transaction was rolled back")?;
        }
        if self.migrations_committed > 0 {
            write!(
                f,
                "; {} earlier migration(s) of this run stay committed",
                self.migrations_committed
            )?;
        }
        if self.recorded {
            write!(f, "; the failure is recorded in the history")?;
        } else {
            write!(f, "; the failure could not be recorded")?;
        }
        write!(f, ". Fix it in a new release and apply that")
    }
}

/// A pending file, loaded and split.
pub(super) struct Loaded {
    pub step: Step,
    pub text: String,
    pub statements: usize,
}

/// A plan-only dry run shows each file's SQL.
pub(super) fn show_sql(loaded: &[Loaded], on: &mut dyn FnMut(ApplyEvent<'_>)) {
    for l in loaded {
        on(ApplyEvent::DryRunFile {
            file: &l.step.file,
            sql: &l.text,
        });
    }
}

/// Reads and splits a file of the extracted release at `root`; a file that
/// controls transactions itself without being marked no-transaction is refused.
pub(super) fn load(root: &Path, step: Step, mode: SplitMode) -> Result<Loaded> {
    let path = root.join(&step.file.path);
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
        action: "read",
        path: path.clone(),
        source,
    })?;
    let statements =
        split::split(&text, mode).map_err(|e| Error::Usage(format!("{}: {e}", step.file.path)))?;
    if step.file.transaction == TransactionMode::Default
        && let Some((line, keyword)) = find_transaction_control(&statements)
    {
        return Err(Error::TransactionControl {
            path: step.file.path.clone(),
            line,
            keyword: keyword.to_owned(),
        });
    }
    let statements = statements.len();
    Ok(Loaded {
        step,
        text,
        statements,
    })
}

/// The line where a statement's SQL starts, after its leading comments (the
/// splitter keeps comments with the statement that follows them).
fn code_line(st: &split::Statement<'_>) -> usize {
    let mut rest = st.sql;
    loop {
        let trimmed = rest.trim_start();
        if let Some(after) = trimmed.strip_prefix("--") {
            rest = after.find('\n').map_or("", |i| &after[i..]);
        } else if trimmed.starts_with("/*") {
            // Nested block comments, as PostgreSQL reads them.
            let bytes = trimmed.as_bytes();
            let (mut depth, mut i) = (0usize, 0usize);
            while i + 1 < bytes.len() {
                match (bytes[i], bytes[i + 1]) {
                    (b'/', b'*') => (depth, i) = (depth + 1, i + 2),
                    (b'*', b'/') => {
                        (depth, i) = (depth - 1, i + 2);
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => i += 1,
                }
            }
            rest = &trimmed[i.min(trimmed.len())..];
        } else {
            let consumed = st.sql.len() - trimmed.len();
            return st.start_line + st.sql[..consumed].matches('\n').count();
        }
    }
}

/// The first transaction-control statement (file line, keyword). A drizzle
/// chunk can hold several statements, so each chunk is lexed again in plain mode.
fn find_transaction_control(statements: &[split::Statement<'_>]) -> Option<(usize, &'static str)> {
    for st in statements {
        // A chunk that does not lex on its own is left for the server to reject.
        let inner = split::split(st.sql, SplitMode::Plain).unwrap_or_default();
        for sub in &inner {
            if let Some(keyword) = split::transaction_control(sub.sql) {
                return Some((st.start_line + code_line(sub) - 1, keyword));
            }
        }
    }
    None
}

pub fn split_mode(format: SourceFormat) -> SplitMode {
    match format {
        SourceFormat::Drizzle => SplitMode::Drizzle,
        SourceFormat::Plain => SplitMode::Plain,
    }
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// The CI job identity and run URL, from the CI system's own variables.
pub fn ci_identity(env: &Env) -> (Option<String>, Option<String>) {
    if env.get("GITHUB_ACTIONS").as_deref() == Some("true") {
        let repo = env.get("GITHUB_REPOSITORY").unwrap_or_default();
        let id = format!(
            "github-actions:{repo}:{}",
            env.get("GITHUB_WORKFLOW_REF")
                .or_else(|| env.get("GITHUB_WORKFLOW"))
                .unwrap_or_default()
        );
        let url = match (env.get("GITHUB_SERVER_URL"), env.get("GITHUB_RUN_ID")) {
            (Some(s), Some(r)) => Some(format!("{s}/{repo}/actions/runs/{r}")),
            _ => None,
        };
        return (Some(id), url);
    }
    if env.get("GITLAB_CI").as_deref() == Some("true") {
        let id = format!(
            "gitlab:{}:job {}",
            env.get("CI_PROJECT_PATH").unwrap_or_default(),
            env.get("CI_JOB_ID").unwrap_or_default()
        );
        return (Some(id), env.get("CI_JOB_URL"));
    }
    if env.get("BUILDKITE").as_deref() == Some("true") {
        let id = format!(
            "buildkite:{}:{}",
            env.get("BUILDKITE_PIPELINE_SLUG").unwrap_or_default(),
            env.get("BUILDKITE_BUILD_NUMBER").unwrap_or_default()
        );
        return (Some(id), env.get("BUILDKITE_BUILD_URL"));
    }
    if env.get("CIRCLECI").as_deref() == Some("true") {
        let id = format!(
            "circleci:{}:{}",
            env.get("CIRCLE_PROJECT_REPONAME").unwrap_or_default(),
            env.get("CIRCLE_BUILD_NUM").unwrap_or_default()
        );
        return (Some(id), env.get("CIRCLE_BUILD_URL"));
    }
    (None, None)
}

pub fn os_user(env: &Env) -> Option<String> {
    env.get("USER")
        .or_else(|| env.get("LOGNAME"))
        .filter(|u| !u.is_empty())
}

/// With a registry configured, a release missing from the local store is
/// pulled first (every digest checked on the way in); a release already in the
/// store is used as it is, since it was checked when it arrived. Verification
/// follows in every case.
pub async fn pull_if_missing(
    config: &Config,
    version: &Version,
) -> Result<Option<crate::ops::transfer::TransferReport>> {
    let configured = config
        .registry
        .as_ref()
        .and_then(|r| r.url.as_deref())
        .is_some_and(|u| !u.trim().is_empty());
    if !configured {
        return Ok(None);
    }
    let dir = config.store_dir();
    let present = dir.exists() && LayoutStore::open(&dir)?.resolve(&version.tag())?.is_some();
    if present {
        return Ok(None);
    }
    let report = crate::ops::transfer::pull(config, version, &|_| {}).await?;
    Ok(Some(report))
}

/// Verification as `verify` does it; a failure stops here, before any connection.
pub fn verified_release(
    config: &Config,
    version: &Version,
    opts: &VerifyOptions,
) -> Result<(VerifyReport, ResolvedRelease, LayoutStore)> {
    let report = verify::verify(config, version, opts)?;
    match report.failure() {
        Some(Failure::Integrity) => {
            return Err(Error::Integrity(format!(
                "{version} failed verification; it was not applied"
            )));
        }
        Some(Failure::Signature) => {
            let why: Vec<String> = report
                .checks
                .iter()
                .filter(|c| {
                    (c.name == "signature" || c.name == "provenance")
                        && c.status == verify::Status::Fail
                })
                .map(|c| match &c.actual {
                    Some(a) if a != "none" => format!("{}: {a}", c.detail),
                    _ => c.detail.clone(),
                })
                .collect();
            return Err(Error::Signature(format!(
                "{version} does not satisfy the signature policy: {}",
                why.join("; ")
            )));
        }
        Some(Failure::Revoked) => {
            let why = report
                .checks
                .iter()
                .find(|c| c.name == "revocation")
                .map(|c| c.detail.clone())
                .unwrap_or_default();
            return Err(Error::Revoked(format!(
                "{version} is revoked; it was not applied. {why}"
            )));
        }
        None => {}
    }
    let store = LayoutStore::open(&config.store_dir())?;
    let release = artifact_ref::resolve(&store, version)?;
    if release.digest() != report.digest {
        return Err(Error::Integrity(format!(
            "{version} changed in the store while it was being verified ({} then {}); try again",
            report.digest,
            release.digest()
        )));
    }
    Ok((report, release, store))
}

/// Extracts the verified layer into `dir/release` and returns that path.
pub fn extract_release(
    config: &Config,
    store: &LayoutStore,
    release: &ResolvedRelease,
    dir: &Path,
) -> Result<PathBuf> {
    let dest = dir.join("release");
    unpack::extract_with(
        &store.blob_path(&release.layer.digest),
        &release.manifest.files,
        &limits(config),
        &dest,
        // A private copy, read once and deleted: no need to fsync it.
        unpack::Durability::Scratch,
    )?;
    Ok(dest)
}

pub async fn connect(
    config: &Config,
    env: &Env,
    command: &str,
    version: Option<&Version>,
) -> Result<(Client, ConnectSpec)> {
    let url = config.active_environment().database_url;
    let spec = connect_spec(
        config.environment.as_deref(),
        url.as_deref(),
        env,
        command,
        version,
    )?;
    let client = spec.connect().await?;
    Ok((client, spec))
}

/// The connection settings for one environment (`name`, with its
/// `database_url`), named `squizzle <command> <version> on <host>` in
/// `pg_stat_activity`. Without a URL, `DATABASE_URL`/libpq `PG*` defaults
/// apply, but only when no environment is named.
pub fn connect_spec(
    name: Option<&str>,
    url: Option<&str>,
    env: &Env,
    command: &str,
    version: Option<&Version>,
) -> Result<ConnectSpec> {
    // A named environment must say where its database is: falling back to
    // libpq defaults (a local socket) would deploy somewhere nobody chose.
    if url.is_none()
        && let Some(name) = name
    {
        return Err(Error::Usage(format!(
            "environment {name:?} has no database_url; set `environments.{name}.database_url` (e.g. \"${{{}_DATABASE_URL}}\") or DATABASE_URL",
            name.to_ascii_uppercase().replace('-', "_")
        )));
    }
    let mut spec = ConnectSpec::parse(url, env)?;
    let what = version.map_or_else(String::new, |v| format!(" {v}"));
    spec.set_application_name_default(&format!("squizzle {command}{what} on {}", hostname()));
    Ok(spec)
}

/// Pulls the release when it is missing (unless offline), refreshes its
/// signatures from the registry, and verifies it: the shared start of every
/// command that runs a release against a database.
pub async fn fetch_verified(
    config: &Config,
    version: &Version,
    opts: &RunOptions,
    on: &mut dyn FnMut(ApplyEvent<'_>),
) -> Result<(VerifyReport, ResolvedRelease, LayoutStore)> {
    // Rollback (which accepts revoked releases) must work while the
    // registry is down; everything else follows the freshness policy.
    let strict = !opts.verify.allow_revoked;
    let fetched =
        crate::ops::transfer::fetch_release_and_evidence(config, version, opts.offline, strict)
            .await?;
    if let Some(pulled) = &fetched.pulled {
        on(ApplyEvent::Pulled(pulled));
    }
    if let Some(why) = fetched.refresh_failed {
        on(ApplyEvent::RefreshFailed(why));
    }
    let verified = verified_release(config, version, &opts.verify)?;
    on(ApplyEvent::Verified(&verified.0));
    Ok(verified)
}

/// A private folder for the extracted release, deleted when dropped.
fn work_dir() -> Result<tempfile::TempDir> {
    tempfile::tempdir().map_err(|source| Error::Io {
        action: "create a work folder in",
        path: std::env::temp_dir(),
        source,
    })
}

/// The migrating connection, its history tables and their lock, and a private
/// folder to extract the release into.
pub struct Session {
    pub client: Client,
    pub spec: ConnectSpec,
    pub history: HistoryStore,
    pub key: lock::LockKey,
    pub work: tempfile::TempDir,
}

impl Session {
    /// Connects as `squizzle <command> <version>` to the selected environment's database.
    pub async fn open(
        config: &Config,
        env: &Env,
        command: &str,
        version: &Version,
        on: &mut dyn FnMut(ApplyEvent<'_>),
    ) -> Result<Session> {
        let work = work_dir()?;
        let (client, spec) = connect(config, env, command, Some(version)).await?;
        on(ApplyEvent::Connected {
            target: &spec.target,
        });
        let envcfg = config.active_environment();
        let history = HistoryStore::new(envcfg.history_schema.as_deref().unwrap_or("squizzle"))?;
        let key = lock::key_for(history.schema());
        Ok(Session {
            client,
            spec,
            history,
            key,
            work,
        })
    }

    /// Polls for the migration lock until `timeout`.
    pub async fn lock(&self, timeout: Duration, on: &mut dyn FnMut(ApplyEvent<'_>)) -> Result<()> {
        lock::acquire(&self.client, self.key, timeout, |h| {
            on(ApplyEvent::LockWait(h))
        })
        .await?;
        on(ApplyEvent::Locked);
        Ok(())
    }

    /// Best effort: the lock also ends with the connection.
    pub async fn unlock(&self) {
        let _ = lock::unlock(&self.client, self.key).await;
    }
}

/// Timeouts from the command line, else from the selected environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timeouts {
    pub lock: Option<Duration>,
    pub statement: Option<Duration>,
    pub statement_lock: Option<Duration>,
}

impl Timeouts {
    /// The lock timeout (default 5m) and the session settings to apply.
    pub(super) fn resolve(self, config: &Config) -> (Duration, Settings) {
        let envcfg = config.active_environment();
        let parse = |v: &Option<String>| {
            v.as_deref()
                .and_then(|s| crate::core::duration::parse(s).ok())
        };
        let lock = self
            .lock
            .or_else(|| parse(&envcfg.lock_timeout))
            .unwrap_or(Duration::from_secs(300));
        let settings = Settings {
            statement_timeout: self.statement.or_else(|| parse(&envcfg.statement_timeout)),
            statement_lock_timeout: self
                .statement_lock
                .or_else(|| parse(&envcfg.statement_lock_timeout)),
        };
        (lock, settings)
    }
}

pub async fn apply(
    config: &Config,
    env: &Env,
    opts: &ApplyOptions,
    on: &mut dyn FnMut(ApplyEvent<'_>),
) -> Result<ApplyReport> {
    let started = Instant::now();
    let fetched = fetch_verified(config, &opts.version, &opts.run, on).await?;
    let session = Session::open(config, env, "apply", &opts.version, on).await?;
    let (lock_timeout, settings) = opts.run.timeouts.resolve(config);
    let locked = opts.dry_run != DryRun::Plan;
    if locked {
        session.lock(lock_timeout, on).await?;
    }
    let mut ctx = RunContext::new(&session, &fetched, config, env, &opts.run, started, "apply");
    ctx.dry_run = opts.dry_run;
    ctx.allow_out_of_order = opts.allow_out_of_order;
    let result = run_locked(&ctx, &settings, on).await;
    if locked {
        session.unlock().await;
    }
    result
}

pub(super) struct Settings {
    statement_timeout: Option<Duration>,
    statement_lock_timeout: Option<Duration>,
}

impl Settings {
    /// Sets `statement_timeout` and `lock_timeout` on the session.
    pub(super) async fn apply(&self, client: &Client) -> Result<()> {
        for (name, value) in [
            ("statement_timeout", self.statement_timeout),
            ("lock_timeout", self.statement_lock_timeout),
        ] {
            if let Some(d) = value {
                exec(
                    client,
                    &format!("SET {name} = {}", d.as_millis()),
                    "applying session settings",
                )
                .await?;
            }
        }
        Ok(())
    }
}

/// Everything a run of release files needs; shared by apply and rollback.
pub(super) struct RunContext<'a> {
    pub client: &'a Client,
    pub history: &'a HistoryStore,
    pub release: &'a ResolvedRelease,
    pub config: &'a Config,
    pub store: &'a LayoutStore,
    /// Private folder the release is extracted into, once something is pending.
    pub work: &'a Path,
    pub env: &'a Env,
    pub tx_mode: TxMode,
    pub dry_run: DryRun,
    pub allow_out_of_order: bool,
    pub target: String,
    pub started: Instant,
    pub signature: Option<crate::signing::verify::Verified>,
    /// The `releases.operation` this run records: `apply` or `rollback`.
    pub operation: &'static str,
    /// Merged into the release row's `metadata` (an object, or null for nothing).
    pub metadata: serde_json::Value,
}

impl<'a> RunContext<'a> {
    /// A run of `operation` on `session`: no dry run, in order only, no extra metadata.
    pub(super) fn new(
        session: &'a Session,
        (verified, release, store): &'a (VerifyReport, ResolvedRelease, LayoutStore),
        config: &'a Config,
        env: &'a Env,
        opts: &RunOptions,
        started: Instant,
        operation: &'static str,
    ) -> Self {
        RunContext {
            client: &session.client,
            history: &session.history,
            release,
            config,
            store,
            work: session.work.path(),
            env,
            tx_mode: opts.tx_mode(config),
            dry_run: DryRun::Off,
            allow_out_of_order: false,
            target: session.spec.target.clone(),
            started,
            signature: verified.signature.clone(),
            operation,
            metadata: serde_json::Value::Null,
        }
    }
}

pub(super) async fn exec(client: &Client, sql: &str, during: &str) -> Result<()> {
    client
        .batch_execute(sql)
        .await
        .map_err(|e| Error::Db(DbError::query(during, e)))
}

async fn run_locked(
    ctx: &RunContext<'_>,
    settings: &Settings,
    on: &mut dyn FnMut(ApplyEvent<'_>),
) -> Result<ApplyReport> {
    let client = ctx.client;
    settings.apply(client).await?;
    let manifest = &ctx.release.manifest;
    let mode = split_mode(manifest.format);
    if ctx.dry_run == DryRun::Execute {
        exec(client, "BEGIN", "starting the dry-run transaction").await?;
    }
    if ctx.dry_run != DryRun::Plan {
        ctx.history.ensure(client).await?;
    }
    let snapshot = ctx.history.snapshot(client).await?;
    let plan = plan::plan(
        manifest,
        &ctx.release.digest(),
        &snapshot,
        ctx.allow_out_of_order,
    )?;
    on(ApplyEvent::Planned(&plan));
    for w in &plan.warnings {
        on(ApplyEvent::Warning(w));
    }

    // Extract only when something will run: a no-op apply reads no files.
    let root = if plan.steps.is_empty() {
        PathBuf::new()
    } else {
        extract_release(ctx.config, ctx.store, ctx.release, ctx.work)?
    };
    let loaded = plan
        .steps
        .iter()
        .map(|step| load(&root, step.clone(), mode))
        .collect::<Result<Vec<_>>>()?;
    let planned: Vec<PlannedFile> = loaded
        .iter()
        .map(|l| PlannedFile {
            id: l.step.file.id.clone(),
            path: l.step.file.path.clone(),
            transaction: l.step.file.transaction,
            statements: l.statements,
            resume_from: l.step.resume_from,
        })
        .collect();
    let mut report = ApplyReport {
        version: manifest.version.tag(),
        digest: ctx.release.digest(),
        database: ctx.target.clone(),
        history_schema: ctx.history.schema().name().to_owned(),
        outcome: Outcome::Applied,
        tx_mode: ctx.tx_mode,
        planned,
        skipped: plan.skipped,
        migrations_run: 0,
        statements_run: 0,
        execution_ms: 0,
        release_id: None,
        warnings: plan.warnings.clone(),
    };
    if ctx.dry_run == DryRun::Plan {
        show_sql(&loaded, on);
        report.outcome = if plan.nothing_to_do() {
            Outcome::NothingToDo
        } else {
            Outcome::DryRun
        };
        return Ok(report);
    }
    if plan.nothing_to_do() {
        if ctx.dry_run == DryRun::Execute {
            exec(client, "ROLLBACK", "ending the dry run").await?;
        }
        report.outcome = Outcome::NothingToDo;
        return Ok(report);
    }

    let tally = run_files(ctx, &loaded, on).await;
    report.execution_ms = ctx.started.elapsed().as_millis() as u64;
    match tally {
        Ok(tally) => {
            report.release_id = tally.release_id;
            report.migrations_run = tally.files;
            report.statements_run = tally.statements;
            if ctx.dry_run == DryRun::Execute {
                report.outcome = Outcome::DryRunExecuted;
                for l in loaded
                    .iter()
                    .filter(|l| l.step.file.transaction == TransactionMode::None)
                {
                    report.warnings.push(format!(
                        "{} runs outside a transaction and was not executed by the dry run",
                        l.step.file.path
                    ));
                }
            }
            Ok(report)
        }
        Err(e) => Err(e),
    }
}

/// What a run of files did.
pub(super) struct Tally {
    pub release_id: Option<i64>,
    /// Files committed (or run, in an executed dry run).
    pub files: usize,
    pub statements: usize,
}

/// Runs the loaded files in their transaction segments and records the release.
pub(super) async fn run_files(
    ctx: &RunContext<'_>,
    loaded: &[Loaded],
    on: &mut dyn FnMut(ApplyEvent<'_>),
) -> Result<Tally> {
    let segments = segments(loaded, ctx.tx_mode, ctx.dry_run);
    let mut runner = Runner {
        record_stmt: ctx.history.prepare_record_migration(ctx.client).await?,
        ctx,
        mode: split_mode(ctx.release.manifest.format),
        migrations_committed: 0,
        statements_run: 0,
    };
    let release_id = runner.run(loaded, &segments, on).await?;
    Ok(Tally {
        release_id,
        files: runner.migrations_committed,
        statements: runner.statements_run,
    })
}

enum Segment {
    /// Indexes into the loaded files, run in one transaction.
    Tx(Vec<usize>),
    /// A no-transaction file, run statement by statement.
    Alone(usize),
}

fn segments(loaded: &[Loaded], mode: TxMode, dry_run: DryRun) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    for (i, l) in loaded.iter().enumerate() {
        if l.step.file.transaction == TransactionMode::None {
            if dry_run == DryRun::Execute {
                continue; // cannot run inside the dry-run transaction
            }
            out.push(Segment::Alone(i));
            continue;
        }
        match (mode, dry_run, out.last_mut()) {
            (_, DryRun::Execute, Some(Segment::Tx(ids)))
            | (TxMode::Release, _, Some(Segment::Tx(ids))) => ids.push(i),
            _ => out.push(Segment::Tx(vec![i])),
        }
    }
    out
}

struct Runner<'a, 'c> {
    ctx: &'a RunContext<'c>,
    mode: SplitMode,
    record_stmt: tokio_postgres::Statement,
    migrations_committed: usize,
    statements_run: usize,
}

/// Where a statement failed.
struct StatementFailure {
    index: usize,
    line: usize,
    sqlstate: Option<String>,
    message: String,
}

impl Runner<'_, '_> {
    fn release_record(&self, success: bool, migrations_run: usize) -> ReleaseRecord {
        let ctx = self.ctx;
        let (ci, run_url) = ci_identity(ctx.env);
        ReleaseRecord {
            version: ctx.release.manifest.version.tag(),
            operation: ctx.operation,
            artifact_digest: ctx.release.digest().to_string(),
            checksum: ctx.release.manifest.tarball.sha256.to_string(),
            success,
            execution_ms: ctx.started.elapsed().as_millis() as i64,
            applied_by_os_user: os_user(ctx.env),
            ci_identity: ci,
            migrations_run: migrations_run as i32,
            signer_identity: ctx.signature.as_ref().map(|s| s.identity.clone()),
            signer_issuer: ctx.signature.as_ref().map(|s| s.issuer.clone()),
            rekor_log_index: ctx
                .signature
                .as_ref()
                .and_then(|s| s.log_index)
                .and_then(|i| i64::try_from(i).ok()),
            metadata: {
                let mut m = serde_json::json!({
                    "hostname": hostname(),
                    "toolVersion": env!("CARGO_PKG_VERSION"),
                    "ciRunUrl": run_url,
                    "txMode": ctx.tx_mode,
                    "database": ctx.target,
                });
                if let (Some(m), Some(extra)) = (m.as_object_mut(), ctx.metadata.as_object()) {
                    m.extend(extra.clone());
                }
                m
            },
            ..ReleaseRecord::default()
        }
    }

    async fn run(
        &mut self,
        loaded: &[Loaded],
        segments: &[Segment],
        on: &mut dyn FnMut(ApplyEvent<'_>),
    ) -> Result<Option<i64>> {
        let client = self.ctx.client;
        let history = self.ctx.history;
        let dry = self.ctx.dry_run == DryRun::Execute;
        if segments.is_empty() {
            // Nothing new to run (cumulative release re-packing applied files):
            // still record that this release is now what the database runs.
            if dry {
                exec(client, "ROLLBACK", "ending the dry run").await?;
                return Ok(None);
            }
            let id = history
                .insert_release(client, &self.release_record(true, 0))
                .await?;
            return Ok(Some(id));
        }
        let mut release_id = None;
        for (si, seg) in segments.iter().enumerate() {
            let last = si + 1 == segments.len();
            match seg {
                Segment::Tx(ids) => {
                    if !dry {
                        exec(client, "BEGIN", "starting a transaction").await?;
                    }
                    for &i in ids {
                        if let Err(f) = self.run_file(&loaded[i], true, on).await? {
                            let _ = client.batch_execute("ROLLBACK").await;
                            return Err(self.fail(&loaded[i], f, true).await);
                        }
                    }
                    if dry {
                        exec(client, "ROLLBACK", "rolling back the dry run").await?;
                        return Ok(None);
                    }
                    if last {
                        let run = self.migrations_committed + ids.len();
                        release_id = Some(
                            history
                                .insert_release(client, &self.release_record(true, run))
                                .await?,
                        );
                    }
                    exec(client, "COMMIT", "committing").await?;
                    self.migrations_committed += ids.len();
                }
                Segment::Alone(i) => {
                    if let Err(f) = self.run_file(&loaded[*i], false, on).await? {
                        return Err(self.fail(&loaded[*i], f, false).await);
                    }
                    self.migrations_committed += 1;
                    if last {
                        release_id = Some(
                            history
                                .insert_release(
                                    client,
                                    &self.release_record(true, self.migrations_committed),
                                )
                                .await?,
                        );
                    }
                }
            }
        }
        Ok(release_id)
    }

    /// Runs one file. Inside a transaction its history row is written at the
    /// end (same transaction); outside, progress is written after every statement.
    /// The outer error is infrastructure (connection lost...); the inner one a
    /// failing statement.
    async fn run_file(
        &mut self,
        l: &Loaded,
        in_tx: bool,
        on: &mut dyn FnMut(ApplyEvent<'_>),
    ) -> Result<std::result::Result<(), StatementFailure>> {
        let client = self.ctx.client;
        let f = &l.step.file;
        let statements = split::split(&l.text, self.mode)
            .map_err(|e| Error::Usage(format!("{}: {e}", f.path)))?;
        let total = statements.len();
        on(ApplyEvent::FileStarted {
            file: f,
            statements: total,
            resume_from: l.step.resume_from,
        });
        let t0 = Instant::now();
        // A rollback script undoes a migration: its row goes once the script is done.
        let undoes = f
            .rollback_for
            .as_deref()
            .filter(|_| f.kind == FileKind::Rollback);
        let sha = f.sha256.to_string();
        let version = self.ctx.release.manifest.version.tag();
        let record = |done: usize, ms: i64| MigrationRecord {
            id: &f.id,
            path: &f.path,
            sha256: &sha,
            version: &version,
            duration_ms: ms,
            statements_done: done as i32,
            statements_total: total as i32,
            complete: done == total,
        };
        let mut last_progress = Instant::now();
        for (k, st) in statements.iter().enumerate().skip(l.step.resume_from) {
            if let Err(e) = client.batch_execute(st.sql).await {
                let Some(db) = e.as_db_error() else {
                    return Err(Error::Db(DbError::query(
                        format!("running {} (statement {})", f.path, k + 1),
                        e,
                    )));
                };
                let line = match db.position() {
                    Some(tokio_postgres::error::ErrorPosition::Original(pos)) => {
                        st.start_line
                            + st.sql
                                .chars()
                                .take((*pos as usize).saturating_sub(1))
                                .filter(|c| *c == '\n')
                                .count()
                    }
                    _ => code_line(st),
                };
                return Ok(Err(StatementFailure {
                    index: k,
                    line,
                    sqlstate: Some(db.code().code().to_owned()),
                    message: describe(&e),
                }));
            }
            self.statements_run += 1;
            if !in_tx && undoes.is_none() {
                let ms = last_progress.elapsed().as_millis() as i64;
                last_progress = Instant::now();
                self.ctx
                    .history
                    .record_migration(client, Some(&self.record_stmt), &record(k + 1, ms))
                    .await?;
            }
        }
        if let Some(id) = undoes {
            // The migration is pending again: a later apply runs it anew.
            self.ctx.history.forget_migration(client, id).await?;
        } else if in_tx || total == 0 || total <= l.step.resume_from {
            self.ctx
                .history
                .record_migration(
                    client,
                    Some(&self.record_stmt),
                    &record(total, t0.elapsed().as_millis() as i64),
                )
                .await?;
        }
        on(ApplyEvent::FileDone {
            file: f,
            statements: total,
            ms: t0.elapsed().as_millis() as u64,
        });
        Ok(Ok(()))
    }

    /// Records the failure in its own row (the transaction is gone) and builds the error.
    async fn fail(&self, l: &Loaded, f: StatementFailure, rolled_back: bool) -> Error {
        let file = &l.step.file;
        let mut row = self.release_record(false, self.migrations_committed);
        row.error_sqlstate = f.sqlstate.clone();
        row.error_message = Some(f.message.clone());
        row.failing_migration = Some(file.id.clone());
        row.failing_statement = Some(f.index as i32 + 1);
        row.failing_line = Some(f.line as i32);
        let recorded = self.ctx.dry_run != DryRun::Execute
            && self
                .ctx
                .history
                .insert_release(self.ctx.client, &row)
                .await
                .is_ok();
        Error::MigrationFailed(Box::new(MigrationFailure {
            version: self.ctx.release.manifest.version.tag(),
            migration: file.id.clone(),
            path: file.path.clone(),
            statement: f.index + 1,
            line: f.line,
            sqlstate: f.sqlstate,
            message: f.message,
            rolled_back,
            recorded,
            migrations_committed: self.migrations_committed,
        }))
    }
}
