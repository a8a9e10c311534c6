//! `squizzle baseline <version>`

use clap::Args;

use super::Context;
use super::args::parse_duration;
use super::runtime::runtime;
use crate::core::exit::ExitCode;
use crate::core::version::Version;
use crate::ops::{self, Error};

#[derive(Debug, Args)]
#[command(
    about = "Record a release as applied without running it (adopt an existing database)",
    after_help = "Use when the database already has this release's schema (for example it was\nmigrated by drizzle-kit or psql). Verified and locked like apply. Refuses a database\nthat already has squizzle history unless --force.\n\nExamples:\n  squizzle baseline 1.0.0 --env production"
)]
pub struct BaselineArgs {
    /// Release version to record.
    version: String,
    /// Record it even though the database already has squizzle history.
    #[arg(long)]
    force: bool,
    /// How long to wait for another squizzle's migration lock.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
    lock_timeout: std::time::Duration,
}

pub fn exec(ctx: &Context, args: BaselineArgs) -> Result<ExitCode, Error> {
    let version = Version::parse(&args.version)?;
    let config = ctx.config()?;
    config.check_database_url()?;
    let report = runtime()?.block_on(ops::baseline::baseline(
        &config,
        &ctx.env,
        &version,
        args.force,
        args.lock_timeout,
    ))?;
    let p = &ctx.printer;
    if p.is_json() {
        p.report(&report);
    } else {
        p.ok(&format!(
            "Recorded {} as applied to {} ({}, nothing was run)",
            report.version,
            report.database,
            super::output::count(report.migrations_recorded, "migration")
        ));
    }
    Ok(ExitCode::Ok)
}
