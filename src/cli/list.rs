//! `squizzle list`

use clap::Args;

use super::Context;
use crate::core::exit::ExitCode;
use crate::ops;

#[derive(Debug, Args)]
#[command(
    about = "List the versions in the store, oldest first",
    after_help = "Examples:\n  squizzle list\n  squizzle list --output json"
)]
pub struct ListArgs {}

pub fn exec(ctx: &Context, _args: ListArgs) -> Result<ExitCode, ops::Error> {
    let config = ctx.config()?;
    let report = ops::list::list(&config)?;
    let p = &ctx.printer;
    if p.is_json() {
        p.json(&report);
        return Ok(ExitCode::Ok);
    }
    if report.versions.is_empty() {
        p.line(&format!(
            "No versions in {} yet; run `squizzle build <version>`",
            report.store.display()
        ));
        return Ok(ExitCode::Ok);
    }
    let width = report
        .versions
        .iter()
        .map(|v| v.version.len())
        .max()
        .unwrap_or(7)
        .max(7);
    p.line(&format!(
        "{:<width$}  {:<19}  {:<20}  {:>10}  NOTES",
        "VERSION", "DIGEST", "CREATED", "MIGRATIONS"
    ));
    for v in &report.versions {
        match &v.problem {
            None => p.line(&format!(
                "{:<width$}  {:<19}  {:<20}  {:>10}  {}",
                v.version,
                v.digest.short(),
                v.created_at.as_deref().unwrap_or("-"),
                v.migrations.map_or("-".into(), |n| n.to_string()),
                v.notes
                    .as_deref()
                    .and_then(|n| n.lines().next())
                    .unwrap_or("")
            )),
            Some(problem) => p.fail(&format!(
                "{:<width$}  {}  unreadable: {problem}",
                v.version,
                v.digest.short()
            )),
        }
    }
    for t in &report.other_tags {
        p.warn(&format!("tag {t:?} is not a version; squizzle ignores it"));
    }
    Ok(ExitCode::Ok)
}
