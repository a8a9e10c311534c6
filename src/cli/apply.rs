//! `squizzle apply <version>`

use clap::Args;

use super::Context;
use super::args::RunArgs;
use super::output::count;
use super::report::{print_event, print_failure};
use super::runtime::runtime;
use crate::core::exit::ExitCode;
use crate::core::version::Version;
use crate::ops::apply::{ApplyOptions, Outcome};
use crate::ops::run::{ApplyEvent, DryRun, WarningKind};
use crate::ops::{self, Error};

#[derive(Debug, Args)]
#[command(
    about = "Verify a release and run the migrations this database has not run yet",
    after_help = "The database comes from the selected environment's database_url, DATABASE_URL,\nor the PG* variables (libpq meaning, including sslmode=verify-full&sslrootcert=...).\n\nExamples:\n  squizzle apply 1.0.0 --env production\n  DATABASE_URL=postgres://app:${PW}@db/app squizzle apply 1.0.0\n  SQUIZZLE_REGISTRY=ghcr.io/acme/db squizzle apply 1.0.0 \\\n      --certificate-identity \"$SIGNER\" --certificate-oidc-issuer \"$ISSUER\"  # no checkout needed\n  squizzle apply 1.0.0 --dry-run            # verify, plan, print SQL; touch nothing\n  squizzle apply 1.0.0 --dry-run=execute    # run inside a transaction, then roll back\n  squizzle apply 1.0.0 --tx-mode file --lock-timeout 10m --statement-lock-timeout 5s"
)]
pub struct ApplyArgs {
    /// Release version to apply.
    version: String,
    /// Plan only (`--dry-run`), or run and roll back (`--dry-run=execute`; the
    /// value needs the `=`, so `--dry-run 1.1.0` is a plan of 1.1.0).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "plan", value_name = "plan|execute", value_parser = ["plan", "execute"])]
    dry_run: Option<String>,
    /// Allow applying an older release, or migrations that sort before applied ones.
    #[arg(long)]
    allow_out_of_order: bool,
    /// Refuse the release (exit 9, before connecting) if it has findings of
    /// these categories or ids that it does not allow; added to the
    /// environment's `deny` list (comma-separated or repeated).
    #[arg(
        long,
        value_name = "CATEGORY|ID",
        env = "SQUIZZLE_DENY",
        value_delimiter = ','
    )]
    deny: Vec<String>,
    #[command(flatten)]
    run: RunArgs,
}

pub fn exec(ctx: &Context, args: ApplyArgs) -> Result<ExitCode, Error> {
    let version = Version::parse(&args.version)?;
    let config = ctx.database_config(&args.run.registry)?;
    let dry_run = match args.dry_run.as_deref() {
        None => DryRun::Off,
        Some("execute") => DryRun::Execute,
        Some(_) => DryRun::Plan,
    };
    let opts = ApplyOptions {
        version,
        dry_run,
        allow_out_of_order: args.allow_out_of_order,
        deny: args.deny.clone(),
        run: args.run.options()?,
    };
    let p = &ctx.printer;
    let mut on = |event: ApplyEvent<'_>| print_event(p, event);
    let result = runtime()?.block_on(ops::apply::apply(&config, &ctx.env, &opts, &mut on));
    let report = match result {
        Ok(r) => r,
        Err(Error::MigrationFailed(f)) if dry_run == DryRun::Execute => {
            // A dry run records nothing by design: say that, rather than
            // "could not be recorded" as after a real failure.
            let message = format!(
                "dry run: migration {} failed at statement {} (line {} of {}): {}; everything it ran was rolled back, and a dry run records nothing in the history. Fix the migration before applying this release",
                f.migration, f.statement, f.line, f.path, f.message
            );
            if !print_failure(p, &f, ExitCode::MigrationFailed, &message) {
                p.error(&message);
            }
            return Ok(ExitCode::MigrationFailed);
        }
        Err(Error::MigrationFailed(f)) => {
            if print_failure(p, &f, ExitCode::MigrationFailed, &f.to_string()) {
                return Ok(ExitCode::MigrationFailed);
            }
            return Err(Error::MigrationFailed(f));
        }
        Err(e) => return Err(e),
    };
    if p.is_json() {
        p.report(&report);
        return Ok(ExitCode::Ok);
    }
    match report.outcome {
        Outcome::NothingToDo => p.ok(&format!(
            "{} is already applied to {}; nothing to do",
            report.version, report.database
        )),
        Outcome::DryRun => p.ok(&format!(
            "Dry run: {} would run on {}; nothing was changed",
            count(report.planned.len(), "migration"),
            report.database
        )),
        Outcome::DryRunExecuted => p.ok(&format!(
            "Dry run executed {} of {} and rolled everything back",
            count(report.statements_run, "statement"),
            count(report.planned.len(), "migration")
        )),
        Outcome::Applied => p.ok(&format!(
            "Applied {} to {}: {}, {} in {:.1} s",
            report.version,
            report.database,
            count(report.migrations_run, "migration"),
            count(report.statements_run, "statement"),
            report.execution_ms as f64 / 1000.0
        )),
    }
    for w in report
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::NotExecutedByDryRun)
    {
        p.warn(&w.message);
    }
    Ok(ExitCode::Ok)
}
