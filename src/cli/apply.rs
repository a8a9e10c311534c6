//! `squizzle apply <version>`

use clap::Args;

use super::Context;
use super::output::Printer;
use super::verify::print_checks;
use crate::config::TxMode;
use crate::core::exit::ExitCode;
use crate::core::manifest::TransactionMode;
use crate::core::version::Version;
use crate::ops::apply::{
    ApplyEvent, ApplyOptions, DryRun, MigrationFailure, Outcome, RunOptions, Timeouts,
};
use crate::ops::{self, Error};

#[derive(Debug, Args)]
#[command(
    about = "Verify a release and run the migrations this database has not run yet",
    after_help = "The database comes from the selected environment's database_url, DATABASE_URL,\nor the PG* variables (libpq meaning, including sslmode=verify-full&sslrootcert=...).\n\nExamples:\n  squizzle apply 1.0.0 --env production\n  DATABASE_URL=postgres://app:${PW}@db/app squizzle apply 1.0.0\n  squizzle apply 1.0.0 --dry-run            # verify, plan, print SQL; touch nothing\n  squizzle apply 1.0.0 --dry-run=execute    # run inside a transaction, then roll back\n  squizzle apply 1.0.0 --tx-mode file --lock-timeout 10m --statement-lock-timeout 5s"
)]
pub struct ApplyArgs {
    /// Release version to apply.
    version: String,
    /// Plan only (`--dry-run`), or run and roll back (`--dry-run=execute`).
    #[arg(long, num_args = 0..=1, default_missing_value = "plan", value_name = "plan|execute", value_parser = ["plan", "execute"])]
    dry_run: Option<String>,
    /// Allow applying an older release, or migrations that sort before applied ones.
    #[arg(long)]
    allow_out_of_order: bool,
    #[command(flatten)]
    run: RunArgs,
}

/// Options shared by the commands that run a release's SQL (`apply`, `rollback`).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// release: everything in one transaction (default); file: each file commits on its own.
    #[arg(long, value_enum)]
    pub tx_mode: Option<TxMode>,
    /// How long to wait for another squizzle's migration lock (default 5m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub lock_timeout: Option<std::time::Duration>,
    /// PostgreSQL statement_timeout for each statement.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub statement_timeout: Option<std::time::Duration>,
    /// PostgreSQL lock_timeout: how long one statement may wait for a table lock.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub statement_lock_timeout: Option<std::time::Duration>,
    #[command(flatten)]
    pub policy: super::verify::PolicyArgs,
    /// Never contact the registry: the release and its signatures must be in the local store.
    #[arg(long)]
    pub offline: bool,
    /// Also consider this signature bundle file.
    #[arg(long, value_name = "PATH")]
    pub bundle: Option<std::path::PathBuf>,
}

impl RunArgs {
    pub fn options(&self) -> Result<RunOptions, Error> {
        Ok(RunOptions {
            tx_mode: self.tx_mode,
            timeouts: Timeouts {
                lock: self.lock_timeout,
                statement: self.statement_timeout,
                statement_lock: self.statement_lock_timeout,
            },
            verify: self.verify_options()?,
            offline: self.offline,
        })
    }

    pub fn verify_options(&self) -> Result<crate::ops::verify::VerifyOptions, Error> {
        Ok(crate::ops::verify::VerifyOptions {
            policy: self.policy.overrides()?,
            bundle: self.bundle.clone(),
            allow_revoked: false,
        })
    }
}

pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    crate::core::duration::parse(s)
}

pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            action: "start the async runtime for",
            path: "squizzle".into(),
            source,
        })
}

pub fn exec(ctx: &Context, args: ApplyArgs) -> Result<ExitCode, Error> {
    let version = Version::parse(&args.version)?;
    let config = ctx.config()?;
    let opts = ApplyOptions {
        version,
        dry_run: match args.dry_run.as_deref() {
            None => DryRun::Off,
            Some("execute") => DryRun::Execute,
            Some(_) => DryRun::Plan,
        },
        allow_out_of_order: args.allow_out_of_order,
        run: args.run.options()?,
    };
    let p = &ctx.printer;
    let mut on = |event: ApplyEvent<'_>| print_event(p, event);
    let result = runtime()?.block_on(ops::apply::apply(&config, &ctx.env, &opts, &mut on));
    let report = match result {
        Ok(r) => r,
        Err(Error::MigrationFailed(f)) => {
            if print_failure(p, &f, ExitCode::MigrationFailed, &f.to_string()) {
                return Ok(ExitCode::MigrationFailed);
            }
            return Err(Error::MigrationFailed(f));
        }
        Err(e) => return Err(e),
    };
    if p.is_json() {
        p.json(&report);
        return Ok(ExitCode::Ok);
    }
    match report.outcome {
        Outcome::NothingToDo => p.ok(&format!(
            "{} is already applied to {}; nothing to do",
            report.version, report.database
        )),
        Outcome::DryRun => p.ok(&format!(
            "Dry run: {} migrations would run on {}; nothing was changed",
            report.planned.len(),
            report.database
        )),
        Outcome::DryRunExecuted => p.ok(&format!(
            "Dry run executed {} statements of {} migrations and rolled everything back",
            report.statements_run,
            report.planned.len()
        )),
        Outcome::Applied => p.ok(&format!(
            "Applied {} to {}: {} migrations, {} statements in {:.1} s",
            report.version,
            report.database,
            report.migrations_run,
            report.statements_run,
            report.execution_ms as f64 / 1000.0
        )),
    }
    for w in report
        .warnings
        .iter()
        .filter(|w| w.contains("not executed by the dry run"))
    {
        p.warn(w);
    }
    Ok(ExitCode::Ok)
}

/// Shows where a migration (or rollback script) failed. In JSON mode prints the
/// error document with the failure's details and returns true: the caller exits
/// with `code` without printing the error again.
pub fn print_failure(p: &Printer, f: &MigrationFailure, code: ExitCode, message: &str) -> bool {
    if p.is_json() {
        p.json(&serde_json::json!({ "error": { "kind": code.name(), "code": code.code(), "message": message, "failure": f } }));
        return true;
    }
    p.fail(&format!(
        "{} failed at statement {}, line {}",
        f.path, f.statement, f.line
    ));
    if let Some(code) = &f.sqlstate {
        p.fail_detail(&format!("SQLSTATE {code}: {}", f.message));
    } else {
        p.fail_detail(&f.message);
    }
    false
}

/// Shows apply's progress events; `rollback` shows its own with it.
pub fn print_event(p: &Printer, event: ApplyEvent<'_>) {
    match event {
        ApplyEvent::Pulled(pulled) => p.ok(&format!(
            "Pulled {} from {} ({} blobs, {})",
            pulled.version,
            pulled.registry,
            pulled.blobs_copied,
            super::output::bytes(pulled.bytes_copied)
        )),
        ApplyEvent::RefreshFailed(why) => p.warn(&format!(
            "Could not check the registry for new signatures ({why}); using what the local store has"
        )),
        ApplyEvent::Verified(report) => print_checks(p, report),
        ApplyEvent::Connected { target } => p.info(&format!("Connected to {target}")),
        ApplyEvent::LockWait(holder) => p.warn(&format!(
            "Waiting for the migration lock, held by {}",
            holder.map_or_else(|| "another session".to_owned(), |h| h.to_string())
        )),
        ApplyEvent::Locked => p.ok("Acquired the migration lock"),
        ApplyEvent::Planned(plan) => {
            p.info(&format!(
                "Plan: {} to run, {} already applied",
                plan.steps.len(),
                plan.skipped
            ));
        }
        ApplyEvent::Warning(w) => p.warn(w),
        ApplyEvent::FileStarted {
            file,
            statements,
            resume_from,
        } if resume_from > 0 => {
            p.info(&format!(
                "Resuming {} at statement {} of {statements}",
                file.path,
                resume_from + 1
            ));
        }
        ApplyEvent::FileStarted { .. } => {}
        ApplyEvent::FileDone {
            file,
            statements,
            ms,
        } => {
            let nt = if file.transaction == TransactionMode::None {
                ", no transaction"
            } else {
                ""
            };
            p.ok(&format!(
                "{} ({statements} statements{nt}, {ms} ms)",
                file.path
            ));
        }
        ApplyEvent::DryRunFile { file, sql } => {
            p.line(&format!("-- {} ({})", file.path, file.id));
            p.line(sql.trim_end());
            p.line("");
        }
    }
}
