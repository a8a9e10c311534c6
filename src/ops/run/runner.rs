//! Runs loaded release files in transaction segments and records them.
//!
//! By default (`release` mode) every run of consecutive ordinary files is one
//! transaction together with its history rows, so a failure leaves the
//! database as it was; a file marked no-transaction runs alone, statement by
//! statement, recording its progress after each statement so that a re-run
//! resumes where it stopped. In `file` mode each migration commits on its own.
//! The release's success row is written in the same transaction as the last
//! file whenever that file is transactional. A failure is recorded in its own
//! row after the rollback. Shared by apply and rollback.

use std::time::Instant;

use tokio_postgres::Client;

use crate::config::{Config, Env, TxMode};
use crate::core::manifest::{FileKind, SourceFormat, TransactionMode};
use crate::db::history::{HistoryStore, MigrationRecord, ReleaseRecord};
use crate::db::lock::MigrationLock;
use crate::db::split::{self, SplitMode, code_line, find_transaction_control};
use crate::db::{DbError, catalog, describe, is_connection_loss};
use crate::ops::host::{ci_identity, hostname, os_user};
use crate::ops::release::fetch::VerifiedRelease;
use crate::ops::release::resolve::ResolvedRelease;
use crate::ops::run::plan::Step;
use crate::ops::run::session::Session;
use crate::ops::run::texts::Texts;
use crate::ops::run::{ApplyEvent, DryRun, MigrationFailure, RunOptions, Settings};
use crate::ops::{Error, Result};
use crate::store::layout::LayoutStore;

/// A pending file, looked at: what the run needs to know of it before
/// anything runs (its text comes from [`Texts`] when it runs).
pub struct Loaded {
    pub step: Step,
    pub statements: usize,
    /// The file adds an enum value (`ALTER TYPE ... ADD VALUE`): its
    /// transaction must commit before a later file can use the value.
    pub adds_enum_value: bool,
}

/// A plan-only dry run shows each file's SQL (`texts`, in the order of `loaded`).
pub fn show_sql(
    loaded: &[Loaded],
    texts: &[String],
    segment_of: &[usize],
    on: &mut dyn FnMut(ApplyEvent<'_>),
) {
    for ((l, text), &segment) in loaded.iter().zip(texts).zip(segment_of) {
        on(ApplyEvent::DryRunFile {
            file: &l.step.file,
            sql: text,
            segment,
        });
    }
}

/// Splits a file of the release (its text read from the verified layer); a
/// file that controls transactions itself without being marked
/// no-transaction is refused.
pub fn load(step: Step, text: &str, mode: SplitMode) -> Result<Loaded> {
    let statements =
        split::split(text, mode).map_err(|e| Error::Usage(format!("{}: {e}", step.file.path)))?;
    if step.file.transaction == TransactionMode::Default
        && let Some((line, keyword)) = find_transaction_control(&statements)
    {
        return Err(Error::TransactionControl {
            path: step.file.path.clone(),
            line,
            keyword: keyword.to_owned(),
        });
    }
    // A drizzle chunk can hold several statements: each is lexed again.
    let adds_enum_value = statements.iter().any(|st| {
        split::split(st.sql, SplitMode::Plain)
            .unwrap_or_default()
            .iter()
            .any(|sub| split::adds_enum_value(sub.sql))
    });
    let statements = statements.len();
    Ok(Loaded {
        step,
        statements,
        adds_enum_value,
    })
}

/// How a format's files are cut into statements. Only drizzle-kit has its own
/// separator; Prisma, Flyway, sqlx and golang-migrate files are SQL scripts
/// that their tools send as written, which psql's rules cut the same way.
pub fn split_mode(format: SourceFormat) -> SplitMode {
    match format {
        SourceFormat::Drizzle => SplitMode::Drizzle,
        SourceFormat::Plain
        | SourceFormat::Prisma
        | SourceFormat::Flyway
        | SourceFormat::Sqlx
        | SourceFormat::GolangMigrate
        | SourceFormat::Dbmate
        | SourceFormat::Atlas => SplitMode::Plain,
    }
}

/// Everything a run of release files needs; shared by apply and rollback.
pub struct RunContext<'a> {
    pub client: &'a Client,
    pub history: &'a HistoryStore,
    pub release: &'a ResolvedRelease,
    pub config: &'a Config,
    pub store: &'a LayoutStore,
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
    /// Timeouts for the migrating statements.
    pub settings: Settings,
    /// The migration lock, when this run holds it: checked before every
    /// commit and every statement run outside a transaction.
    pub lock: Option<&'a MigrationLock>,
}

impl<'a> RunContext<'a> {
    /// A run of `operation` on `session`: no dry run, in order only, no extra metadata.
    pub fn new(
        session: &'a Session,
        verified: &'a VerifiedRelease,
        config: &'a Config,
        env: &'a Env,
        opts: &RunOptions,
        started: Instant,
        operation: &'static str,
    ) -> Self {
        RunContext {
            client: &session.client,
            history: &session.history,
            release: &verified.release,
            config,
            store: &verified.store,
            env,
            tx_mode: opts.tx_mode(config),
            dry_run: DryRun::Off,
            allow_out_of_order: false,
            target: session.spec.target.clone(),
            started,
            signature: verified.report.signature.clone(),
            operation,
            metadata: serde_json::Value::Null,
            settings: Settings::default(),
            lock: session.lock.as_ref(),
        }
    }

    /// `BEGIN` of a transaction of this run, with its settings; under the
    /// lock it also holds the work lock (see `db::lock::work_key_for`).
    pub fn begin_sql(&self) -> String {
        let begin = self
            .lock
            .map_or_else(|| "BEGIN".to_owned(), |l| l.begin_sql());
        self.settings.begin_sql(&begin)
    }

    /// Fails with [`DbError::LockLost`] when the run's lock has ended.
    pub fn check_lock(&self, during: &str) -> Result<()> {
        match self.lock {
            Some(l) => l.check(during).map_err(Error::Db),
            None => Ok(()),
        }
    }
}

pub async fn exec(client: &Client, sql: &str, during: &str) -> Result<()> {
    client
        .batch_execute(sql)
        .await
        .map_err(|e| Error::Db(DbError::query(during, e)))
}

/// What a run of files did.
pub struct Tally {
    pub release_id: Option<i64>,
    /// Files committed (or run, in an executed dry run).
    pub files: usize,
    pub statements: usize,
}

/// Runs the loaded files in their transaction segments and records the
/// release; `texts` gives each file's text as its turn comes.
pub async fn run_files(
    ctx: &RunContext<'_>,
    loaded: &[Loaded],
    texts: &mut Texts,
    on: &mut dyn FnMut(ApplyEvent<'_>),
) -> Result<Tally> {
    let segments = segments(loaded, ctx.tx_mode, ctx.dry_run);
    let mut runner = Runner {
        ctx,
        mode: split_mode(ctx.release.manifest.format),
        migrations_committed: 0,
        statements_run: 0,
        unrecorded: Vec::new(),
    };
    let release_id = runner.run(loaded, texts, &segments, on).await?;
    Ok(Tally {
        release_id,
        files: runner.migrations_committed,
        statements: runner.statements_run,
    })
}

pub enum Segment {
    /// Indexes into the loaded files, run in one transaction.
    Tx(Vec<usize>),
    /// A no-transaction file, run statement by statement.
    Alone(usize),
}

/// The transaction segments of a run, in order. In release mode consecutive
/// ordinary files share one transaction, which ends at a no-transaction file
/// (run alone) and after a file that adds an enum value (the value is only
/// usable once that transaction has committed).
pub fn segments(loaded: &[Loaded], mode: TxMode, dry_run: DryRun) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    let mut closed = false;
    for (i, l) in loaded.iter().enumerate() {
        if l.step.file.transaction == TransactionMode::None {
            if dry_run == DryRun::Execute {
                continue; // cannot run inside the dry-run transaction
            }
            out.push(Segment::Alone(i));
            continue;
        }
        match (mode, dry_run, out.last_mut()) {
            (_, DryRun::Execute, Some(Segment::Tx(ids))) => ids.push(i),
            (TxMode::Release, _, Some(Segment::Tx(ids))) if !closed => ids.push(i),
            _ => out.push(Segment::Tx(vec![i])),
        }
        closed = l.adds_enum_value;
    }
    out
}

/// For each loaded file, the 1-based number of the transaction segment it
/// runs in (0: not run, a no-transaction file in an executed dry run).
pub fn segment_numbers(segments: &[Segment], files: usize) -> Vec<usize> {
    let mut of = vec![0; files];
    for (n, seg) in segments.iter().enumerate() {
        match seg {
            Segment::Tx(ids) => ids.iter().for_each(|&i| of[i] = n + 1),
            Segment::Alone(i) => of[*i] = n + 1,
        }
    }
    of
}

pub struct Runner<'a, 'c> {
    ctx: &'a RunContext<'c>,
    mode: SplitMode,
    migrations_committed: usize,
    statements_run: usize,
    /// History rows of the open transaction's files, written in one
    /// statement before it commits.
    unrecorded: Vec<Unrecorded>,
}

/// A migration row waiting for its transaction's commit.
struct Unrecorded {
    id: String,
    path: String,
    sha256: String,
    duration_ms: i64,
    statements: i32,
}

/// Where a statement failed.
pub struct StatementFailure {
    index: usize,
    line: usize,
    sqlstate: Option<String>,
    message: String,
    /// False when a file sent as one message failed without saying where
    /// (an execution error carries no position): the run replays the
    /// transaction statement by statement to find the statement.
    placed: bool,
}

/// A file's statements as one simple-query message, and where each starts
/// in it, in characters (PostgreSQL reports error positions in characters
/// of the whole message). Statements may end in a `--` comment, so each
/// terminator goes on a line of its own.
struct Batch {
    text: String,
    starts: Vec<usize>,
}

impl Batch {
    fn of(statements: &[split::Statement<'_>]) -> Batch {
        let mut text = String::with_capacity(statements.iter().map(|s| s.sql.len() + 3).sum());
        let mut starts = Vec::with_capacity(statements.len());
        let mut chars = 0;
        for st in statements {
            starts.push(chars);
            text.push_str(st.sql);
            text.push_str("\n;\n");
            chars += st.sql.chars().count() + 3;
        }
        Batch { text, starts }
    }

    /// The statement (0-based) that 1-based character `position` of the
    /// message falls in, and the 1-based position within that statement.
    fn locate(&self, position: usize) -> (usize, usize) {
        let at = position.saturating_sub(1);
        let k = self.starts.partition_point(|&s| s <= at).saturating_sub(1);
        (k, at - self.starts.get(k).copied().unwrap_or(0) + 1)
    }
}

/// The line of the file at 1-based character `pos` of statement `st`.
fn line_at(st: &split::Statement<'_>, pos: usize) -> usize {
    st.start_line
        + st.sql
            .chars()
            .take(pos.saturating_sub(1))
            .filter(|c| *c == '\n')
            .count()
}

/// The failure of statement `index` (`st`) from the server's error, or the
/// infrastructure error it is (a lost connection is exit 3, not a failing
/// migration).
fn statement_failure(
    e: tokio_postgres::Error,
    index: usize,
    st: &split::Statement<'_>,
    position: Option<usize>,
    during: impl FnOnce() -> String,
) -> std::result::Result<StatementFailure, Error> {
    if is_connection_loss(&e) {
        return Err(Error::Db(DbError::ConnectionLost {
            during: during(),
            message: describe(&e),
        }));
    }
    let Some(db) = e.as_db_error() else {
        return Err(Error::Db(DbError::query(during(), e)));
    };
    let line = position.map_or_else(|| code_line(st), |pos| line_at(st, pos));
    Ok(StatementFailure {
        index,
        line,
        sqlstate: Some(db.code().code().to_owned()),
        message: if db.code().code() == "55P04" {
            format!(
                "{}; a new enum value is usable only after the transaction that added it commits: squizzle commits after each file that runs ALTER TYPE ... ADD VALUE, so use the value in a later file than the one that adds it (or run with --tx-mode file)",
                describe(&e)
            )
        } else {
            describe(&e)
        },
        placed: true,
    })
}

/// The error's position in the statement text it was sent with, if any.
fn error_position(e: &tokio_postgres::Error) -> Option<usize> {
    match e.as_db_error()?.position()? {
        tokio_postgres::error::ErrorPosition::Original(pos) => Some(*pos as usize),
        _ => None,
    }
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
                    "hostname": hostname(ctx.env),
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
        texts: &mut Texts,
        segments: &[Segment],
        on: &mut dyn FnMut(ApplyEvent<'_>),
    ) -> Result<Option<i64>> {
        let client = self.ctx.client;
        let history = self.ctx.history;
        let dry = self.ctx.dry_run == DryRun::Execute;
        if segments.is_empty() {
            // Nothing new to run (cumulative release re-packing applied files):
            // still record that this release is now what the database runs.
            texts.finish().await?;
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
                Segment::Tx(ids) => tracing::debug!(
                    segment = si + 1, of = segments.len(), files = ids.len(),
                    first = %loaded[ids[0]].step.file.path,
                    "segment: one transaction"
                ),
                Segment::Alone(i) => tracing::debug!(
                    segment = si + 1, of = segments.len(), file = %loaded[*i].step.file.path,
                    "segment: a no-transaction file, statement by statement"
                ),
            }
            match seg {
                Segment::Tx(ids) => {
                    if !dry {
                        exec(client, &self.ctx.begin_sql(), "starting a transaction").await?;
                    }
                    for (n, &i) in ids.iter().enumerate() {
                        let text = match texts.take(i).await {
                            Ok(text) => text,
                            Err(e) => {
                                let _ = client.batch_execute("ROLLBACK").await;
                                return Err(e);
                            }
                        };
                        match self.run_file(&loaded[i], &text, true, on).await {
                            Ok(Ok(())) => {}
                            Ok(Err(f)) => {
                                let _ = client.batch_execute("ROLLBACK").await;
                                let f = if f.placed {
                                    f
                                } else {
                                    let mut again = texts.again(&ids[..=n]);
                                    let earlier = ids[..n].iter().map(|&j| &loaded[j]);
                                    self.pinpoint(earlier, &loaded[i], &mut again, f).await?
                                };
                                return Err(self.fail(&loaded[i], f, true).await);
                            }
                            Err(e) => {
                                let _ = client.batch_execute("ROLLBACK").await;
                                return Err(e);
                            }
                        }
                    }
                    // The whole layer checked before the last commit.
                    let finished = if last { texts.finish().await } else { Ok(()) };
                    if let Err(e) = finished {
                        let _ = client.batch_execute("ROLLBACK").await;
                        return Err(e);
                    }
                    if dry {
                        exec(client, "ROLLBACK", "rolling back the dry run").await?;
                        return Ok(None);
                    }
                    if let Err(e) = self.record_unrecorded().await {
                        let _ = client.batch_execute("ROLLBACK").await;
                        return Err(e);
                    }
                    if last {
                        let run = self.migrations_committed + ids.len();
                        release_id = Some(
                            history
                                .insert_release(client, &self.release_record(true, run))
                                .await?,
                        );
                    }
                    if let Err(e) = self.ctx.check_lock("committing") {
                        let _ = client.batch_execute("ROLLBACK").await;
                        return Err(e);
                    }
                    exec(client, "COMMIT", "committing").await?;
                    self.migrations_committed += ids.len();
                }
                Segment::Alone(i) => {
                    let settings = &self.ctx.settings;
                    if let Some(sql) = settings.session_sql() {
                        exec(client, &sql, "applying session settings").await?;
                    }
                    let text = texts.take(*i).await?;
                    let ran = self.run_file(&loaded[*i], &text, false, on).await;
                    if let Some(sql) = settings.reset_sql() {
                        // Best effort when the file failed: the error matters more.
                        let reset = exec(client, &sql, "resetting session settings").await;
                        if ran.as_ref().is_ok_and(|r| r.is_ok()) {
                            reset?;
                        }
                    }
                    if let Err(f) = ran? {
                        return Err(self.fail(&loaded[*i], f, false).await);
                    }
                    self.migrations_committed += 1;
                    if last {
                        texts.finish().await?;
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

    /// Runs one file. Inside a transaction it goes as one message and its
    /// history row is written with the other files' rows just before the
    /// transaction commits; outside, statement by statement, with progress
    /// written after every statement.
    /// The outer error is infrastructure (connection lost...); the inner one a
    /// failing statement.
    async fn run_file(
        &mut self,
        l: &Loaded,
        text: &str,
        in_tx: bool,
        on: &mut dyn FnMut(ApplyEvent<'_>),
    ) -> Result<std::result::Result<(), StatementFailure>> {
        let client = self.ctx.client;
        let f = &l.step.file;
        let statements =
            split::split(text, self.mode).map_err(|e| Error::Usage(format!("{}: {e}", f.path)))?;
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
        // Inside a transaction nothing happens between statements: the file
        // goes as one message (one round trip instead of one per statement).
        let batched = in_tx && l.step.resume_from == 0 && total > 0;
        if batched {
            let batch = Batch::of(&statements);
            if let Err(e) = client.batch_execute(&batch.text).await {
                let during = || format!("running {}", f.path);
                return match error_position(&e) {
                    Some(pos) => {
                        let (k, within) = batch.locate(pos);
                        statement_failure(e, k, &statements[k], Some(within), during).map(Err)
                    }
                    None => statement_failure(e, 0, &statements[0], None, during).map(|sf| {
                        Err(StatementFailure {
                            placed: false,
                            ..sf
                        })
                    }),
                };
            }
            self.statements_run += total;
            tracing::trace!(
                file = %f.path, statements = total,
                ms = t0.elapsed().as_millis() as u64, "ran the file as one message"
            );
        }
        let one_by_one = if batched {
            &statements[..0]
        } else {
            &statements[..]
        };
        for (k, st) in one_by_one.iter().enumerate().skip(l.step.resume_from) {
            if !in_tx {
                self.ctx
                    .check_lock(&format!("running {} (statement {})", f.path, k + 1))?;
            }
            // Outside a transaction, an index build that was interrupted or
            // failed leaves an INVALID index that `IF NOT EXISTS` would take
            // for a finished one: drop it so the statement builds it again.
            let building = if in_tx {
                None
            } else {
                split::concurrent_index(st.sql)
            };
            if let Some(ix) = &building
                && let Some(bad) = catalog::find_invalid(client, ix).await?
            {
                on(ApplyEvent::Warning(&format!(
                    "index {bad} is INVALID (an earlier build was interrupted or failed); dropping it so that statement {} of {} builds it again",
                    k + 1,
                    f.path
                )));
                exec(
                    client,
                    &format!("DROP INDEX CONCURRENTLY IF EXISTS {}", bad.qualified()),
                    "dropping an invalid index",
                )
                .await?;
            }
            let st0 = Instant::now();
            if let Err(e) = client.batch_execute(st.sql).await {
                let during = || format!("running {} (statement {})", f.path, k + 1);
                let position = error_position(&e);
                return statement_failure(e, k, st, position, during).map(Err);
            }
            tracing::trace!(
                file = %f.path, statement = k + 1, line = st.start_line,
                ms = st0.elapsed().as_millis() as u64, "ran a statement"
            );
            if let Some(ix) = &building
                && let Some(bad) = catalog::find_invalid(client, ix).await?
            {
                return Ok(Err(StatementFailure {
                    index: k,
                    line: code_line(st),
                    sqlstate: None,
                    message: format!(
                        "the statement finished but index {bad} is INVALID, so it is not usable; drop it (DROP INDEX CONCURRENTLY {}) and run apply again",
                        bad.qualified()
                    ),
                    placed: true,
                }));
            }
            self.statements_run += 1;
            if !in_tx && undoes.is_none() {
                let ms = last_progress.elapsed().as_millis() as i64;
                last_progress = Instant::now();
                self.ctx
                    .history
                    .record_migration(client, &record(k + 1, ms), false)
                    .await?;
            }
        }
        if let Some(id) = undoes {
            // The migration is pending again: a later apply runs it anew.
            self.ctx.history.forget_migration(client, id).await?;
        } else if in_tx {
            self.unrecorded.push(Unrecorded {
                id: f.id.clone(),
                path: f.path.clone(),
                sha256: sha.clone(),
                duration_ms: t0.elapsed().as_millis() as i64,
                statements: total as i32,
            });
        } else if total == 0 || total <= l.step.resume_from {
            self.ctx
                .history
                .record_migration(
                    client,
                    &record(total, t0.elapsed().as_millis() as i64),
                    false,
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

    /// Writes the history rows of the open transaction's files.
    async fn record_unrecorded(&mut self) -> Result<()> {
        let version = self.ctx.release.manifest.version.tag();
        let rows: Vec<MigrationRecord<'_>> = self
            .unrecorded
            .iter()
            .map(|u| MigrationRecord {
                id: &u.id,
                path: &u.path,
                sha256: &u.sha256,
                version: &version,
                duration_ms: u.duration_ms,
                statements_done: u.statements,
                statements_total: u.statements,
                complete: true,
            })
            .collect();
        self.ctx
            .history
            .record_migrations(self.ctx.client, &rows)
            .await?;
        self.unrecorded.clear();
        Ok(())
    }

    /// Finds the statement of `l` that failed without a position, when the
    /// file went as one message: replays the rolled-back transaction (the
    /// files before `l` in it, then `l` statement by statement) in a new
    /// transaction that is rolled back too, so the failure names the
    /// statement and line exactly as a statement-by-statement run would.
    /// Should the replay not fail, the first failure is kept and says so.
    async fn pinpoint<'l>(
        &self,
        earlier: impl Iterator<Item = &'l Loaded>,
        l: &Loaded,
        texts: &mut Texts,
        first: StatementFailure,
    ) -> Result<StatementFailure> {
        let client = self.ctx.client;
        let path = &l.step.file.path;
        exec(
            client,
            &self.ctx.begin_sql(),
            "replaying the failed transaction",
        )
        .await?;
        let replay = async {
            let mut n = 0;
            for e in earlier {
                let text = texts.take(n).await?;
                n += 1;
                let statements = split::split(&text, self.mode)
                    .map_err(|err| Error::Usage(format!("{}: {err}", e.step.file.path)))?;
                if client
                    .batch_execute(&Batch::of(&statements).text)
                    .await
                    .is_err()
                {
                    return Ok(None);
                }
            }
            let text = texts.take(n).await?;
            let statements = split::split(&text, self.mode)
                .map_err(|err| Error::Usage(format!("{path}: {err}")))?;
            for (k, st) in statements.iter().enumerate() {
                if let Err(e) = client.batch_execute(st.sql).await {
                    let position = error_position(&e);
                    let during = || format!("running {path} (statement {})", k + 1);
                    return statement_failure(e, k, st, position, during).map(Some);
                }
            }
            Ok(None)
        }
        .await;
        let _ = client.batch_execute("ROLLBACK").await;
        Ok(replay?.unwrap_or_else(|| StatementFailure {
            message: format!(
                "{} (the file failed as a whole; replaying it statement by statement did not fail again, so the statement is not known)",
                first.message
            ),
            ..first
        }))
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
