//! `squizzle rollback <version>`

use clap::Args;

use super::Context;
use super::args::RunArgs;
use super::output::Printer;
use super::report::{print_event, print_failure};
use super::runtime::runtime;
use crate::core::exit::ExitCode;
use crate::core::version::Version;
use crate::ops::rollback::{
    Outcome, RollbackError, RollbackEvent, RollbackOptions, RollbackReport,
};
use crate::ops::{self, Error};

#[derive(Debug, Args)]
#[command(
    about = "Undo the migrations a release introduced, with its rollback scripts, newest first",
    after_help = "Undoes the migrations that this database's history records as applied by\n<VERSION> (never those an older release applied, whatever the manifest says),\nrunning their rollback scripts (NNNN_name.down.sql or the\nrollbacks folder) in reverse order. Verified and locked like apply. Everything is\ndecided first: a missing script or a manifest that disagrees with the\nhistory (exit 7) or a newer release still applied on top\n(exit 5) refuses the whole rollback before anything runs. In release mode all\nscripts and their history rows are one transaction; a failing script rolls it all\nback, is recorded, and exits 7. The undone migrations are pending again.\n\nExamples:\n  squizzle rollback 1.4.0 --env production --dry-run   # verify, plan, print the scripts\n  squizzle rollback 1.4.0 --env production\n  squizzle rollback 1.4.0 --lock-timeout 30s --statement-lock-timeout 5s --output json"
)]
pub struct RollbackArgs {
    /// Release version to roll back.
    version: String,
    /// Verify, plan and print the rollback scripts; touch nothing, take no lock.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    run: RunArgs,
}

pub fn exec(ctx: &Context, args: RollbackArgs) -> Result<ExitCode, Error> {
    let version = Version::parse(&args.version)?;
    let config = ctx.database_config(&args.run.registry)?;
    let mut run = args.run.options()?;
    // Undoing a revoked release is what rollback is for: the revocation is
    // shown, not enforced.
    run.verify.allow_revoked = true;
    let opts = RollbackOptions {
        version,
        dry_run: args.dry_run,
        run,
    };
    let p = &ctx.printer;
    let mut on = |event: RollbackEvent<'_>| match event {
        RollbackEvent::Progress(e) => print_event(p, e),
        RollbackEvent::Planned(plan) => {
            let since = plan.previous_version.as_deref().map_or_else(
                || "it has no previous version".to_owned(),
                |v| format!("since {v}"),
            );
            p.info(&format!(
                "Plan: the manifest lists {} as new in {} ({since}); this database applied {} of them with {}, to roll back in this order:",
                super::output::count(plan.introduced.len(), "migration"),
                plan.version,
                plan.steps.len(),
                plan.version
            ));

            for (i, s) in plan.steps.iter().enumerate() {
                p.line(&format!(
                    "  {}. {} (undoes {}, applied by {})",
                    i + 1,
                    s.script.path,
                    s.migration,
                    s.applied_by
                ));
            }
        }
    };
    let result = runtime()?.block_on(ops::rollback::rollback(&config, &ctx.env, &opts, &mut on));
    let report = match result {
        Err(Error::Rollback(e)) => return failed(p, e),
        other => other?,
    };
    if p.is_json() {
        p.report(&report);
    } else {
        p.ok(&summary(&report));
    }
    Ok(ExitCode::Ok)
}

/// A failing script is shown like a failing migration (exit 7); refusals are plain errors.
fn failed(p: &Printer, e: Box<RollbackError>) -> Result<ExitCode, Error> {
    if let RollbackError::Failed(f) = e.as_ref()
        && print_failure(p, f, ExitCode::RollbackFailed, &e.to_string())
    {
        return Ok(ExitCode::RollbackFailed);
    }
    Err(Error::Rollback(e))
}

fn summary(r: &RollbackReport) -> String {
    let (version, db) = (&r.version, &r.database);
    match r.outcome {
        Outcome::NothingToDo => format!("Nothing of {version} is applied to {db}; nothing to do"),
        Outcome::DryRun => format!(
            "Dry run: {} would run on {db}; nothing was changed",
            super::output::count(r.planned.len(), "rollback script")
        ),
        Outcome::RolledBack => format!(
            "Rolled back {version} on {db}: {} undone ({} in {:.1} s); they are pending again",
            super::output::count(r.migrations_rolled_back, "migration"),
            super::output::count(r.statements_run, "statement"),
            r.execution_ms as f64 / 1000.0
        ),
    }
}
