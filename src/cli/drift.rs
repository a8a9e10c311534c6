//! `squizzle drift`

use clap::Args;

use super::Context;
use super::report::{drift_exit, print_drift};
use super::runtime::runtime;
use crate::core::exit::ExitCode;
use crate::ops::{self, Error};

#[derive(Debug, Args)]
#[command(
    about = "Compare the live schema with the fingerprint the last apply recorded",
    after_help = "Reads tables, columns, constraints, indexes (with their validity), views, routines,\nsequences, enums, domains, extensions and triggers from the catalog and names every\none added, removed or changed since the last successful apply, baseline or rollback.\nRead-only: takes no lock and creates nothing.\n\nExits 0 with no drift, 13 when something drifted, 12 when nothing was recorded to\ncompare with (no history, or the last apply ran with a squizzle that records no\nfingerprint), 3/4 when the database cannot be reached or refuses the credentials.\n\nExamples:\n  squizzle drift --env production\n  squizzle drift --schema tenant_42 --output json"
)]
pub struct DriftArgs {
    /// Compare only this schema (repeatable); default: every user schema
    /// except squizzle's history schema.
    #[arg(long = "schema", value_name = "NAME")]
    schemas: Vec<String>,
}

pub fn exec(ctx: &Context, args: DriftArgs) -> Result<ExitCode, Error> {
    let config = ctx.config()?;
    config.check_database_url()?;
    let report = runtime()?.block_on(ops::drift::drift(&config, &ctx.env, &args.schemas))?;
    let code = drift_exit(&report.check);
    let p = &ctx.printer;
    if p.is_json() {
        p.report(&report);
        return Ok(code);
    }
    p.info(&format!(
        "Database: {} (history in schema {})",
        report.database, report.history_schema
    ));
    print_drift(p, &report.check);
    Ok(code)
}
