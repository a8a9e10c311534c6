//! `squizzle apply <version>`

use clap::Args;

use super::Context;
use super::args::{FleetArgs, RunArgs, not_a_fleet};
use super::output::count;
use super::report::{print_event, print_failure};
use super::runtime::runtime;
use crate::config::Config;
use crate::config::Env;
use crate::config::targets::FleetSpec;
use crate::core::exit::ExitCode;
use crate::core::version::Version;
use crate::ops::apply::{ApplyOptions, FleetApplyOptions, Outcome, TargetApply, TargetOutcome};
use crate::ops::fleet::{FleetOutcome, Pacing};
use crate::ops::run::{ApplyEvent, DryRun, WarningKind};
use crate::ops::{self, Error};

#[derive(Debug, Args)]
#[command(
    about = "Verify a release and run the migrations this database has not run yet",
    after_help = "The database comes from the selected environment's database_url, DATABASE_URL,\nor the PG* variables (libpq meaning, including sslmode=verify-full&sslrootcert=...).\n\nExamples:\n  squizzle apply 1.0.0 --env production\n  DATABASE_URL=postgres://app:${PW}@db/app squizzle apply 1.0.0\n  SQUIZZLE_REGISTRY=ghcr.io/acme/db squizzle apply 1.0.0 \\\n      --certificate-identity \"$SIGNER\" --certificate-oidc-issuer \"$ISSUER\"  # no checkout needed\n  squizzle apply 1.0.0 --dry-run            # verify, plan, print SQL; touch nothing\n  squizzle apply 1.0.0 --dry-run=execute    # run inside a transaction, then roll back\n  squizzle apply 1.0.0 --tx-mode file --lock-timeout 10m --statement-lock-timeout 5s\n\nFleets (an environment with targets, schemas, targets_file or targets_query;\ndocs/fleet.md): the release is verified once, then applied to every target.\nExit 0: every target succeeded; 14: some did; 15: none did.\n  squizzle apply 1.4.0 --env tenants --canary 1 --parallel 8 --max-failures 3\n  squizzle apply 1.4.0 --env tenants --shard \"$JOB_COMPLETION_INDEX/4\""
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
    /// Fleet: the first K targets run first, and the rest start only if
    /// all of them succeeded.
    #[arg(long, value_name = "K", env = "SQUIZZLE_CANARY")]
    canary: Option<usize>,
    /// Fleet: start no more targets once F have failed (default: no limit).
    #[arg(long, value_name = "F", env = "SQUIZZLE_MAX_FAILURES", value_parser = clap::value_parser!(u32).range(1..))]
    max_failures: Option<u32>,
    #[command(flatten)]
    fleet: FleetArgs,
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
    if let Some(spec) = config.fleet() {
        let fleet = FleetApplyOptions {
            shard: args.fleet.shard()?,
            pacing: Pacing {
                parallel: args.fleet.parallel(),
                canary: args.canary.unwrap_or(0),
                max_failures: args.max_failures.map(|f| f as usize),
            },
        };
        return exec_fleet(p, &config, &ctx.env, &spec, &opts, fleet);
    }
    let flag = args
        .fleet
        .given()
        .or(args.canary.map(|_| "--canary"))
        .or(args.max_failures.map(|_| "--max-failures"));
    if let Some(flag) = flag {
        return Err(not_a_fleet(flag, config.environment.as_deref()));
    }
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

/// The exit code of a fleet run: 0 all succeeded, 14 some, 15 none.
pub fn fleet_exit(outcome: FleetOutcome) -> ExitCode {
    match outcome {
        FleetOutcome::AllSucceeded => ExitCode::Ok,
        FleetOutcome::SomeSucceeded => ExitCode::FleetPartial,
        FleetOutcome::NoneSucceeded => ExitCode::FleetFailed,
    }
}

fn outcome_word(o: TargetOutcome) -> &'static str {
    match o {
        TargetOutcome::Applied => "applied",
        TargetOutcome::NothingToDo => "up to date",
        TargetOutcome::DryRun => "dry run",
        TargetOutcome::DryRunExecuted => "dry run executed",
        TargetOutcome::Failed => "FAILED",
        TargetOutcome::NotStarted => "not started",
    }
}

fn exec_fleet(
    p: &super::output::Printer,
    config: &Config,
    env: &Env,
    spec: &FleetSpec,
    opts: &ApplyOptions,
    fleet: FleetApplyOptions,
) -> Result<ExitCode, Error> {
    // Only what concerns the release is shown as it happens; per-target
    // progress would interleave, so each target gets one line when it ends.
    let mut on = |event: ApplyEvent<'_>| match event {
        ApplyEvent::Pulled(_) | ApplyEvent::RefreshFailed(_) | ApplyEvent::Verified(_) => {
            print_event(p, event)
        }
        ApplyEvent::Warning(w) => p.warn(w),
        _ => {}
    };
    let mut done = |r: &TargetApply| {
        let what = match (&r.error, r.outcome) {
            (Some(e), _) => format!("{}: failed ({}): {}", r.target, e.kind, e.message),
            (None, TargetOutcome::NotStarted) => format!(
                "{}: {}",
                r.target,
                r.warnings.first().map_or("not started", String::as_str)
            ),
            (None, o) => format!(
                "{}: {}, {} in {}",
                r.target,
                outcome_word(o),
                count(r.migrations_run, "migration"),
                super::fleet::seconds(r.duration_ms)
            ),
        };
        match r.outcome {
            TargetOutcome::Failed => p.error(&what),
            TargetOutcome::NotStarted => p.status_info(&what),
            _ => p.status(&what),
        }
    };
    let report = runtime()?.block_on(ops::apply::apply_fleet(
        config,
        env,
        spec,
        opts,
        fleet,
        &super::exit_code_for,
        &mut on,
        &mut done,
    ))?;
    let code = fleet_exit(report.outcome);
    if p.is_json() {
        p.json(&report);
        return Ok(code);
    }
    let rows: Vec<Vec<String>> = report
        .targets
        .iter()
        .map(|r| {
            vec![
                format!("{}{}", r.target, if r.canary { " (canary)" } else { "" }),
                outcome_word(r.outcome).to_owned(),
                r.migrations_run.to_string(),
                super::fleet::seconds(r.duration_ms),
                r.error.as_ref().map_or_else(String::new, |e| {
                    format!("{}: {}", e.kind, super::fleet::first_line(&e.message))
                }),
            ]
        })
        .collect();
    super::fleet::print_table(
        p,
        &["TARGET", "OUTCOME", "APPLIED", "DURATION", "ERROR"],
        &rows,
    );
    let s = &report.summary;
    let shard = report.shard.map_or_else(String::new, |sh| {
        format!(
            " (shard {}/{} of a fleet of {})",
            sh.index, sh.count, s.fleet
        )
    });
    let line = format!(
        "{} of {} took {}{shard}: {} failed, {} not started",
        s.succeeded,
        count(s.targets, "target"),
        report.version,
        s.failed,
        s.not_started
    );
    match report.outcome {
        FleetOutcome::AllSucceeded => p.ok(&line),
        _ => p.fail(&line),
    }
    Ok(code)
}
