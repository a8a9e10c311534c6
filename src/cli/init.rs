//! `squizzle init`

use std::path::PathBuf;

use clap::Args;

use super::Context;
use crate::core::exit::ExitCode;
use crate::ops::{self, init::InitOptions};

#[derive(Debug, Args)]
#[command(
    about = "Write squizzle.toml and the project folders (detects drizzle-kit, Prisma, Flyway, sqlx, dbmate and Atlas folders)",
    after_help = "Examples:\n  squizzle init                      # detect drizzle/, or create migrations/\n  squizzle init --migrations db/sql  # use an existing folder\n  squizzle init --dir ../app --force # overwrite an existing squizzle.toml"
)]
pub struct InitArgs {
    /// Project folder to initialise.
    #[arg(long, default_value = ".", value_name = "DIR")]
    dir: PathBuf,
    /// Migrations folder, relative to the project (default: detected drizzle folder, else `migrations`).
    #[arg(long, value_name = "DIR")]
    migrations: Option<String>,
    /// Overwrite an existing squizzle.toml.
    #[arg(long)]
    force: bool,
    /// The global --config and --env, shadowed here so `init --help` does not
    /// offer them: init writes squizzle.toml into --dir and refuses both.
    #[arg(long, hide = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[arg(long = "env", id = "environment", hide = true, value_name = "NAME")]
    environment: Option<String>,
}

pub fn exec(ctx: &Context, args: InitArgs) -> Result<ExitCode, ops::Error> {
    if args.config.is_some() || args.environment.is_some() {
        return Err(ops::Error::Usage(
            "init takes neither --config nor --env: it writes squizzle.toml into the folder given with --dir (default: the current one); environments are sections you add to that file afterwards".into(),
        ));
    }
    let dir = if args.dir.is_absolute() {
        args.dir
    } else {
        // Join without `./` noise: `--dir .` is the current folder itself.
        args.dir
            .components()
            .fold(ctx.cwd.clone(), |acc, c| match c {
                std::path::Component::CurDir => acc,
                other => acc.join(other),
            })
    };
    let report = ops::init::init(&InitOptions {
        dir,
        migrations: args.migrations,
        force: args.force,
    })?;
    let p = &ctx.printer;
    if p.is_json() {
        p.report(&report);
        return Ok(ExitCode::Ok);
    }
    p.ok(&format!("Wrote {}", report.config.display()));
    if report.drizzle {
        p.info(&format!(
            "Found a drizzle-kit folder: {} (order from meta/_journal.json)",
            report.migrations
        ));
    } else if report.format != crate::core::manifest::SourceFormat::Plain {
        p.info(&format!(
            "Found migrations in {} layout: {} ({})",
            report.format.as_str(),
            report.migrations,
            report.format.order_rule()
        ));
    } else {
        p.info(&format!(
            "Migrations go in {}/ as NNNN_name.sql",
            report.migrations
        ));
    }
    for other in &report.also_found {
        p.warn(&format!("Another drizzle-kit folder exists at {other}; set `project.migrations` if that is the right one"));
    }
    for c in &report.created {
        p.info(&format!("Created {}", c.display()));
    }
    p.info("Next: squizzle build 0.1.0");
    Ok(ExitCode::Ok)
}
