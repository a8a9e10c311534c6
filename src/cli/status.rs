//! `squizzle status`

use clap::Args;

use super::Context;
use super::args::{FleetArgs, not_a_fleet};
use super::runtime::runtime;
use crate::core::exit::ExitCode;
use crate::core::version::Version;
use crate::ops::{self, Error};

#[derive(Debug, Args)]
#[command(
    about = "Show what this database has applied, what is pending, drift and the lock holder",
    after_help = "Read-only: takes no lock and creates nothing. Exits 5 when the database has\ndrifted from the release (or the release is older than what is applied); with\n--drift, exits 13 when the live schema differs from the fingerprint the last apply\nrecorded (see `squizzle drift`).\n\nExamples:\n  squizzle status --env production\n  squizzle status --version 1.4.0 --output json\n  squizzle status --drift\n\nOver a fleet (docs/fleet.md), one row per target; exits 5 if a target drifted,\nelse 14 when some targets could not be read, 15 when none could:\n  squizzle status --env tenants --version 1.4.0 --parallel 16\n  squizzle status --env tenants --shard 0/4"
)]
pub struct StatusArgs {
    /// Compare with this release instead of the newest in the store.
    #[arg(long)]
    version: Option<String>,
    /// Also compare the live schema with the fingerprint the last apply
    /// recorded (as `squizzle drift` does); exits 13 when it drifted.
    #[arg(long)]
    drift: bool,
    #[command(flatten)]
    fleet: FleetArgs,
}

pub fn exec(ctx: &Context, args: StatusArgs) -> Result<ExitCode, Error> {
    let version = args.version.as_deref().map(Version::parse).transpose()?;
    let config = ctx.config()?;
    config.check_database_url()?;
    if let Some(spec) = config.fleet() {
        return exec_fleet(
            ctx,
            &config,
            &spec,
            version.as_ref(),
            &args.fleet,
            args.drift,
        );
    }
    if let Some(flag) = args.fleet.given() {
        return Err(not_a_fleet(flag, config.environment.as_deref()));
    }
    let report = runtime()?.block_on(ops::status::status(
        &config,
        &ctx.env,
        version.as_ref(),
        args.drift,
    ))?;
    let code = if report.problem.is_some() {
        ExitCode::VersionConflict
    } else if report
        .drift
        .as_ref()
        .is_some_and(|d| super::report::drift_exit(d) == ExitCode::SchemaDrift)
    {
        ExitCode::SchemaDrift
    } else {
        ExitCode::Ok
    };
    let p = &ctx.printer;
    if p.is_json() {
        p.report(&report);
        return Ok(code);
    }
    p.info(&format!(
        "Database: {} (history in schema {})",
        report.database, report.history_schema
    ));
    if !report.history_exists {
        p.line("No squizzle history yet: nothing has been applied.");
    }
    match report.applied.last() {
        Some(v) => p.line(&format!(
            "Applied: {} ({}), {}",
            v.version,
            v.digest,
            super::output::count(report.applied_migrations, "migration")
        )),
        None => p.line("Applied: none"),
    }
    // Only a failure newer than the last success is news: an earlier one was
    // followed by a run that worked (the history keeps it; `audit` shows it).
    for r in report
        .recent
        .iter()
        .rev()
        .take_while(|r| !r.success)
        .take(1)
    {
        let what = match r.operation.as_str() {
            "apply" => r.version.clone(),
            op => format!("{op} of {}", r.version),
        };
        p.warn(&format!(
            "Last failed attempt: {what} at {}: {}",
            r.applied_at,
            r.error_message.as_deref().unwrap_or("unknown error")
        ));
    }
    match &report.release {
        Some(v) if report.up_to_date => p.ok(&format!("Up to date with {v}")),
        Some(v) if report.unrecorded => p.warn(&format!(
            "Every migration of {v} has run, but {v} is not recorded as applied (the run stopped before its last step): run `squizzle apply {v}` to record it"
        )),
        Some(v) => {
            if !report.pending.is_empty() {
                p.line(&format!(
                    "Pending in {v}: {}",
                    super::output::count(report.pending.len(), "migration")
                ));
                for f in &report.pending {
                    let resume = if f.resume_from > 0 {
                        format!(" (resumes at statement {})", f.resume_from + 1)
                    } else {
                        String::new()
                    };
                    p.line(&format!("  {}{resume}", f.path));
                }
            }
        }
        None => p.line("No release in the store to compare with."),
    }
    if let Some(problem) = &report.problem {
        p.fail(problem);
    }
    if !report.invalid_indexes.is_empty() {
        p.fail(&format!(
            "{} INVALID index(es): a concurrent build was interrupted or failed, so PostgreSQL never uses them",
            report.invalid_indexes.len()
        ));
        for ix in &report.invalid_indexes {
            p.line(&format!("  {ix}"));
        }
        p.line("  An index a release builds is dropped and built again by the next `squizzle apply` of that release; for any other, run REINDEX INDEX CONCURRENTLY <name>, or DROP INDEX CONCURRENTLY <name>.");
    }
    if let Some(d) = &report.drift {
        super::report::print_drift(p, d);
    } else if let Some(h) = &report.lock_holder {
        p.warn(&format!("The migration lock is held by {h}"));
    }
    Ok(code)
}

fn exec_fleet(
    ctx: &Context,
    config: &crate::config::Config,
    spec: &crate::config::targets::FleetSpec,
    version: Option<&Version>,
    fleet: &FleetArgs,
    drift: bool,
) -> Result<ExitCode, Error> {
    let p = &ctx.printer;
    let mut done = |r: &ops::status::TargetStatus| {
        if let Some(e) = &r.error {
            p.warn(&format!("{}: {e}", r.target));
        }
    };
    let report = runtime()?.block_on(ops::status::status_fleet(
        config,
        &ctx.env,
        spec,
        &ops::status::FleetStatusOptions {
            version,
            shard: fleet.shard()?,
            parallel: fleet.parallel(),
            drift,
        },
        &mut done,
    ))?;
    let code = if report.rows.iter().any(|r| r.problem.is_some()) {
        ExitCode::VersionConflict
    } else if report.schema_drifted.is_some_and(|n| n > 0) {
        ExitCode::SchemaDrift
    } else {
        super::apply::fleet_exit(ops::fleet::FleetOutcome::of(
            report.targets - report.unreadable,
            report.targets,
        ))
    };
    if p.is_json() {
        p.json(&report);
        return Ok(code);
    }
    let rows: Vec<Vec<String>> = report
        .rows
        .iter()
        .map(|r| {
            let state = if let Some(e) = &r.error {
                format!("unreadable: {}", super::fleet::first_line(e))
            } else if let Some(problem) = &r.problem {
                format!("drift: {}", super::fleet::first_line(problem))
            } else if r.schema_drift == Some(ops::run::fingerprint::DriftOutcome::Drift) {
                format!(
                    "schema drift: {}",
                    super::output::count(r.drifted_objects.unwrap_or(0), "object")
                )
            } else if r.last_attempt_failed {
                format!(
                    "last attempt failed: {}",
                    super::fleet::first_line(r.last_error.as_deref().unwrap_or("unknown error"))
                )
            } else if r.invalid_indexes > 0 {
                format!("{} INVALID index(es)", r.invalid_indexes)
            } else if r.up_to_date {
                "up to date".into()
            } else {
                String::new()
            };
            vec![
                r.target.clone(),
                r.applied.clone().unwrap_or_else(|| "-".into()),
                r.pending.to_string(),
                state,
            ]
        })
        .collect();
    super::fleet::print_table(p, &["TARGET", "APPLIED", "PENDING", "STATE"], &rows);
    let by_version: Vec<String> = report
        .versions
        .iter()
        .map(|(v, n)| format!("{v}: {n}"))
        .collect();
    p.info(&format!(
        "{} of {} up to date with {}; {} pending, {} with a failed last attempt, {} unreadable; by applied version: {}",
        report.up_to_date,
        super::output::count(report.targets, "target"),
        report.release.as_deref().unwrap_or("(no release to compare with)"),
        report.pending,
        report.failed,
        report.unreadable,
        if by_version.is_empty() { "-".to_owned() } else { by_version.join(", ") }
    ));
    if let Some(n) = report.schema_drifted {
        p.info(&format!(
            "{} whose live schema differs from the fingerprint of its last apply (squizzle drift names the objects)",
            super::output::count(n, "target")
        ));
    }
    Ok(code)
}
