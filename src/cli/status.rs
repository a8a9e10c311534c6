//! `squizzle status`

use clap::Args;

use super::Context;
use super::runtime::runtime;
use crate::core::exit::ExitCode;
use crate::core::version::Version;
use crate::ops::{self, Error};

#[derive(Debug, Args)]
#[command(
    about = "Show what this database has applied, what is pending, drift and the lock holder",
    after_help = "Read-only: takes no lock and creates nothing. Exits 5 when the database has\ndrifted from the release (or the release is older than what is applied); with\n--drift, exits 13 when the live schema differs from the fingerprint the last apply\nrecorded (see `squizzle drift`).\n\nExamples:\n  squizzle status --env production\n  squizzle status --version 1.4.0 --output json\n  squizzle status --drift"
)]
pub struct StatusArgs {
    /// Compare with this release instead of the newest in the store.
    #[arg(long)]
    version: Option<String>,
    /// Also compare the live schema with the fingerprint the last apply
    /// recorded (as `squizzle drift` does); exits 13 when it drifted.
    #[arg(long)]
    drift: bool,
}

pub fn exec(ctx: &Context, args: StatusArgs) -> Result<ExitCode, Error> {
    let version = args.version.as_deref().map(Version::parse).transpose()?;
    let config = ctx.config()?;
    config.check_database_url()?;
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
