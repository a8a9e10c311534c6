//! `apply`: verify -> extract -> connect -> lock -> plan -> run -> record
//! (the release row, then the schema fingerprint `drift` compares with).
//!
//! The shared parts (options, session, runner, planner) live in `ops::run`;
//! this module plans a release against the history and reports what ran.

use std::time::Instant;

use serde::Serialize;

use crate::config::targets::FleetSpec;
use crate::config::{Config, Env, TxMode};
use crate::core::digest::Digest;
use crate::core::exit::ExitCode;
use crate::core::manifest::TransactionMode;
use crate::core::version::Version;
use crate::db::catalog;
use crate::db::split::SplitMode;
use crate::ops::Result;
use crate::ops::analysis::policy;
use crate::ops::fleet::{self, FleetOutcome, FleetTarget, Pacing, Row, Shard};
use crate::ops::release::fetch::VerifiedRelease;
use crate::ops::run::runner::{
    Loaded, RunContext, exec, load, run_files, segment_numbers, segments, show_sql, split_mode,
};
use crate::ops::run::session::{ReleaseTexts, Session, fetch_verified, read_release_files};
use crate::ops::run::texts::{Source, Texts, survey};
use crate::ops::run::{ApplyEvent, DryRun, RunOptions, Warning, WarningKind};
use crate::ops::run::{fingerprint, plan};

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub version: Version,
    pub dry_run: DryRun,
    pub allow_out_of_order: bool,
    /// `--deny` / `SQUIZZLE_DENY`: added to the environment's `deny` list.
    pub deny: Vec<String>,
    pub run: RunOptions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Applied,
    NothingToDo,
    DryRun,
    DryRunExecuted,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedFile {
    pub id: String,
    pub path: String,
    pub transaction: TransactionMode,
    pub statements: usize,
    pub resume_from: usize,
    /// The transaction segment it runs in, numbered from 1 in run order (a
    /// no-transaction file is a segment of its own; 0: not run).
    pub segment: usize,
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
    pub warnings: Vec<Warning>,
}

pub async fn apply(
    config: &Config,
    env: &Env,
    opts: &ApplyOptions,
    on: &mut dyn FnMut(ApplyEvent<'_>),
) -> Result<ApplyReport> {
    let started = Instant::now();
    let verified = prepare(config, opts, on).await?;
    apply_verified(config, env, &verified, None, opts, started, on).await
}

/// Fetches, verifies and judges the release against the deny policy: every
/// check that needs no database. A fleet does this once for all its targets.
pub async fn prepare(
    config: &Config,
    opts: &ApplyOptions,
    on: &mut dyn FnMut(ApplyEvent<'_>),
) -> Result<VerifiedRelease> {
    let deny = deny_policy(config, &opts.deny)?;
    let fetched = fetch_verified(config, &opts.version, &opts.run, on).await?;
    // The deny policy is judged on the verified manifest, before any
    // connection: a refused release leaves the database untouched.
    let judged = policy::judge(
        fetched.release.manifest.lineage.as_ref(),
        &deny,
        &opts.version.tag(),
    )?;
    let env_name = config.environment.as_deref().unwrap_or("this apply");
    if !judged.denied.is_empty() {
        return Err(policy::refusal(
            &judged.denied,
            &deny,
            &opts.version.tag(),
            env_name,
        ));
    }
    for (f, a) in &judged.allowed {
        on(ApplyEvent::Warning(&format!(
            "{}:{}: {} [{}] is denied in {env_name} but the release allows it: {}",
            f.path, f.line, f.message, f.id, a.reason
        )));
    }
    Ok(fetched)
}

/// Runs a release [`prepare`] verified on the database `config` selects:
/// lock, plan against the history, run, record. `texts`: the release's
/// migration texts when they were read once for many targets; otherwise
/// the pending files are read from the layer.
pub async fn apply_verified(
    config: &Config,
    env: &Env,
    fetched: &VerifiedRelease,
    texts: Option<&ReleaseTexts>,
    opts: &ApplyOptions,
    started: Instant,
    on: &mut dyn FnMut(ApplyEvent<'_>),
) -> Result<ApplyReport> {
    let (lock_timeout, settings) = opts.run.timeouts.resolve(config);
    // A plan-only dry run changes nothing and takes no lock.
    let locked = (opts.dry_run != DryRun::Plan).then_some(lock_timeout);
    let mut session = Session::open(config, env, "apply", &opts.version, locked, on).await?;
    if let Some(schema) = config.active_environment().search_path
        && !schema_exists(&session.client, &schema).await?
    {
        session.unlock().await;
        return Err(crate::ops::Error::Usage(format!(
            "schema {schema} does not exist in {}; the migrations would have nowhere to go. Create it (CREATE SCHEMA {schema}) or take it out of the configuration",
            session.spec.target
        )));
    }
    let mut ctx = RunContext::new(&session, fetched, config, env, &opts.run, started, "apply");
    ctx.dry_run = opts.dry_run;
    ctx.allow_out_of_order = opts.allow_out_of_order;
    ctx.settings = settings;
    let result = run_locked(&ctx, texts, on).await;
    session.unlock().await;
    result
}

/// Whether the schema a tenant's migrations run in exists (its tables would
/// otherwise fail to be created, or an unqualified name would find another
/// schema's object).
async fn schema_exists(client: &tokio_postgres::Client, name: &str) -> Result<bool> {
    let rows = client
        .query_typed(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)",
            &[(&name, tokio_postgres::types::Type::TEXT)],
        )
        .await
        .map_err(|e| crate::db::DbError::query("looking for the target's schema", e))?;
    Ok(rows.first().is_some_and(|r| r.get::<_, bool>(0)))
}

/// The environment's `deny` list plus `--deny`/`SQUIZZLE_DENY`, validated
/// (an unknown name is exit 2, before anything is fetched).
fn deny_policy(config: &Config, extra: &[String]) -> Result<policy::Deny> {
    let env = config.active_environment();
    let key = format!(
        "environments.{}.deny",
        config.environment.as_deref().unwrap_or("default")
    );
    let mut deny = policy::Deny::parse(env.deny.as_deref().unwrap_or_default(), &key)?;
    deny.extend(policy::Deny::parse(extra, "--deny / SQUIZZLE_DENY")?);
    Ok(deny)
}

async fn run_locked(
    ctx: &RunContext<'_>,
    shared: Option<&ReleaseTexts>,
    on: &mut dyn FnMut(ApplyEvent<'_>),
) -> Result<ApplyReport> {
    let client = ctx.client;
    let manifest = &ctx.release.manifest;
    let mode = split_mode(manifest.format);
    if ctx.dry_run == DryRun::Execute {
        exec(client, &ctx.begin_sql(), "starting the dry-run transaction").await?;
    }
    match ctx.dry_run {
        DryRun::Plan => {}
        // Inside the dry run's transaction, rolled back with it.
        DryRun::Execute => ctx.history.ensure(client).await?,
        // In a transaction of this run, so that a later run waits for it.
        DryRun::Off => {
            exec(client, &ctx.begin_sql(), "starting a transaction").await?;
            ctx.history.ensure(client).await?;
            exec(client, "COMMIT", "committing squizzle's history tables").await?;
        }
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
        on(ApplyEvent::Warning(&w.message));
    }

    // Read only when something will run: a no-op apply reads no files. The
    // pending files come from the verified layer into memory, never to disk.
    // A single target streams them: a first pass looks at every pending
    // file (so a file that would be refused is refused before anything
    // runs), the run reads each again when its turn comes; memory holds
    // about one file whatever the release's size.
    let paths: Vec<&str> = plan.steps.iter().map(|s| s.file.path.as_str()).collect();
    let (loaded, mut texts) = match shared {
        _ if paths.is_empty() => (Vec::new(), Texts::held(Vec::new())),
        Some(shared) => held(&plan, shared.get(&paths, &manifest.version)?, mode)?,
        None if ctx.dry_run == DryRun::Plan => held(
            &plan,
            read_release_files(ctx.config, ctx.store, ctx.release, &paths)?,
            mode,
        )?,
        None => {
            let source = Source::of(ctx.config, ctx.store, ctx.release);
            let slots = source.slots(&paths)?;
            let steps = plan.steps.clone();
            let loaded = survey(&source, &slots, move |i, text| {
                load(steps[i].clone(), text, mode)
            })
            .await?
            .into_iter()
            .collect::<Result<Vec<_>>>()?;
            (loaded, Texts::streamed(source, slots))
        }
    };
    let segment_of = segment_numbers(&segments(&loaded, ctx.tx_mode, ctx.dry_run), loaded.len());
    let planned: Vec<PlannedFile> = loaded
        .iter()
        .zip(&segment_of)
        .map(|(l, &segment)| PlannedFile {
            id: l.step.file.id.clone(),
            path: l.step.file.path.clone(),
            transaction: l.step.file.transaction,
            statements: l.statements,
            resume_from: l.step.resume_from,
            segment,
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
        if let Texts::Held(all) = &texts {
            show_sql(&loaded, all, &segment_of, on);
        }
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
        warn_invalid_indexes(ctx, &mut report, on).await?;
        return Ok(report);
    }

    let tally = run_files(ctx, &loaded, &mut texts, on).await;
    report.execution_ms = ctx.started.elapsed().as_millis() as u64;
    match tally {
        Ok(tally) => {
            report.release_id = tally.release_id;
            report.migrations_run = tally.files;
            report.statements_run = tally.statements;
            if ctx.dry_run != DryRun::Execute {
                warn_invalid_indexes(ctx, &mut report, on).await?;
            }
            if let (DryRun::Off, Some(id)) = (ctx.dry_run, tally.release_id)
                && let Some(w) = fingerprint::record(
                    client,
                    ctx.history,
                    id,
                    &fingerprint::scope_for(ctx.config),
                )
                .await
            {
                on(ApplyEvent::Warning(&w.message));
                report.warnings.push(w);
            }
            if ctx.dry_run == DryRun::Execute {
                report.outcome = Outcome::DryRunExecuted;
                for l in loaded
                    .iter()
                    .filter(|l| l.step.file.transaction == TransactionMode::None)
                {
                    report.warnings.push(Warning::new(
                        WarningKind::NotExecutedByDryRun,
                        format!(
                            "{} runs outside a transaction and was not executed by the dry run",
                            l.step.file.path
                        ),
                    ));
                }
            }
            Ok(report)
        }
        Err(e) => Err(e),
    }
}

/// The pending files of `plan`, their texts in memory (`texts`, in plan order).
fn held(plan: &plan::Plan, texts: Vec<String>, mode: SplitMode) -> Result<(Vec<Loaded>, Texts)> {
    let loaded = plan
        .steps
        .iter()
        .zip(&texts)
        .map(|(step, text)| load(step.clone(), text, mode))
        .collect::<Result<Vec<_>>>()?;
    Ok((loaded, Texts::held(texts)))
}

/// Invalid indexes left in the database (by a build outside squizzle, or by
/// an older squizzle that did not rebuild them) are named with what to do:
/// a deploy must not look clean while an index it relies on is unusable.
async fn warn_invalid_indexes(
    ctx: &RunContext<'_>,
    report: &mut ApplyReport,
    on: &mut dyn FnMut(ApplyEvent<'_>),
) -> Result<()> {
    for ix in catalog::invalid_indexes(ctx.client).await? {
        let w = Warning::new(
            WarningKind::InvalidIndex,
            format!(
                "index {ix} is INVALID (a concurrent build never finished) and PostgreSQL does not use it; rebuild it with REINDEX INDEX CONCURRENTLY {}, or drop it",
                ix.qualified()
            ),
        );
        on(ApplyEvent::Warning(&w.message));
        report.warnings.push(w);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// A fleet: one verified release, many targets.
// ---------------------------------------------------------------------------

/// How a fleet apply picks and paces its targets.
#[derive(Debug, Clone, Copy)]
pub struct FleetApplyOptions {
    pub shard: Option<Shard>,
    pub pacing: Pacing,
}

/// What happened on one target of a fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetOutcome {
    Applied,
    NothingToDo,
    DryRun,
    DryRunExecuted,
    Failed,
    NotStarted,
}

/// Why a target failed, in the exit-code vocabulary of a single apply.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetError {
    pub kind: &'static str,
    pub code: u8,
    pub message: String,
}

/// One target's row: small on purpose, it is all a finished target keeps.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetApply {
    pub target: String,
    pub database: String,
    pub schema: Option<String>,
    pub history_schema: String,
    pub canary: bool,
    pub outcome: TargetOutcome,
    pub migrations_run: usize,
    pub statements_run: usize,
    pub duration_ms: u64,
    pub error: Option<TargetError>,
    pub warnings: Vec<String>,
}

impl Row for TargetApply {
    fn failed(&self) -> bool {
        self.outcome == TargetOutcome::Failed
    }
    fn not_started(_: usize, t: &FleetTarget, canary: bool, why: &str) -> Self {
        TargetApply {
            target: t.identity.clone(),
            database: t.database.clone(),
            schema: t.schema.clone(),
            history_schema: history_name(t),
            canary,
            outcome: TargetOutcome::NotStarted,
            migrations_run: 0,
            statements_run: 0,
            duration_ms: 0,
            error: None,
            warnings: vec![why.to_owned()],
        }
    }
}

fn history_name(t: &FleetTarget) -> String {
    t.history_schema
        .clone()
        .unwrap_or_else(|| "squizzle".into())
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetSummary {
    /// Targets of this run (of this shard, with `--shard`).
    pub targets: usize,
    /// Targets in the whole fleet.
    pub fleet: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub not_started: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetApplyReport {
    pub schema_version: u32,
    pub version: String,
    pub digest: Digest,
    pub environment: Option<String>,
    pub shard: Option<Shard>,
    pub pacing: Pacing,
    pub outcome: FleetOutcome,
    pub summary: FleetSummary,
    pub targets: Vec<TargetApply>,
}

/// `apply` over the selected environment's fleet: the release is fetched,
/// verified and judged ONCE, its migration texts read once, then every
/// target of this shard runs the same per-target apply as a single database
/// does (its own lock, plan and history), paced by `fleet.pacing`.
/// `classify` names a target's error in exit-code terms (the CLI's map).
#[allow(clippy::too_many_arguments)]
pub async fn apply_fleet(
    config: &Config,
    env: &Env,
    spec: &FleetSpec,
    opts: &ApplyOptions,
    fleet: FleetApplyOptions,
    classify: &dyn Fn(&crate::ops::Error) -> ExitCode,
    on: &mut dyn FnMut(ApplyEvent<'_>),
    done: &mut dyn FnMut(&TargetApply),
) -> Result<FleetApplyReport> {
    let verified = prepare(config, opts, on).await?;
    let env_name = config.environment.as_deref().unwrap_or("default");
    let all = fleet::targets::resolve(spec, env, env_name).await?;
    let fleet_size = all.len();
    let targets = fleet::select(all, fleet.shard);
    let texts = ReleaseTexts::read(config, &verified)?;
    let canaries = fleet.pacing.canary.min(targets.len());
    let rows = fleet::run(
        &targets,
        fleet.pacing,
        |i, t| {
            let (verified, texts) = (&verified, &texts);
            async move {
                let cfg =
                    config.for_target(&t.url, t.history_schema.as_deref(), t.schema.as_deref());
                let started = Instant::now();
                let mut warnings = Vec::new();
                let mut on_target = |e: ApplyEvent<'_>| {
                    if let ApplyEvent::Warning(w) = e {
                        warnings.push(w.to_owned());
                    }
                };
                let result = apply_verified(
                    &cfg,
                    env,
                    verified,
                    Some(texts),
                    opts,
                    started,
                    &mut on_target,
                )
                .await;
                let mut row = TargetApply {
                    target: t.identity.clone(),
                    database: t.database.clone(),
                    schema: t.schema.clone(),
                    history_schema: history_name(t),
                    canary: i < canaries,
                    outcome: TargetOutcome::Failed,
                    migrations_run: 0,
                    statements_run: 0,
                    duration_ms: 0,
                    error: None,
                    warnings,
                };
                match result {
                    Ok(r) => {
                        row.outcome = match r.outcome {
                            Outcome::Applied => TargetOutcome::Applied,
                            Outcome::NothingToDo => TargetOutcome::NothingToDo,
                            Outcome::DryRun => TargetOutcome::DryRun,
                            Outcome::DryRunExecuted => TargetOutcome::DryRunExecuted,
                        };
                        row.migrations_run = r.migrations_run;
                        row.statements_run = r.statements_run;
                    }
                    Err(e) => {
                        let code = classify(&e);
                        row.error = Some(TargetError {
                            kind: code.name(),
                            code: code.code(),
                            message: e.to_string(),
                        });
                    }
                }
                row.duration_ms = started.elapsed().as_millis() as u64;
                row
            }
        },
        done,
    )
    .await;
    let failed = rows
        .iter()
        .filter(|r| r.outcome == TargetOutcome::Failed)
        .count();
    let not_started = rows
        .iter()
        .filter(|r| r.outcome == TargetOutcome::NotStarted)
        .count();
    let succeeded = rows.len() - failed - not_started;
    Ok(FleetApplyReport {
        schema_version: 1,
        version: verified.release.manifest.version.tag(),
        digest: verified.release.digest(),
        environment: config.environment.clone(),
        shard: fleet.shard,
        pacing: fleet.pacing,
        outcome: FleetOutcome::of(succeeded, rows.len()),
        summary: FleetSummary {
            targets: rows.len(),
            fleet: fleet_size,
            succeeded,
            failed,
            not_started,
        },
        targets: rows,
    })
}
