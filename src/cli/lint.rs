//! `squizzle lint [<version>]`

use std::path::PathBuf;

use clap::Args;

use super::Context;
use super::runtime::runtime;
use crate::core::exit::ExitCode;
use crate::core::version::Version;
use crate::ops;
use crate::ops::lineage::PreviousChoice;
use crate::ops::lint::LintOptions;

#[derive(Debug, Args)]
#[command(
    about = "Report what the new migrations' SQL does: destructive, blocking, incompatible, not analysed",
    after_help = "Analyses the migrations added or edited since the previous release (found as build finds it), \
                  each statement on its own: strings, comments, quoted identifiers and dollar-quoted bodies never \
                  count as SQL. Every finding has a stable id, a one-line explanation and the safe alternative. \
                  Findings do not change the exit code (0) yet.\n\n\
                  Examples:\n  squizzle lint\n  squizzle lint 1.4.0 --output json\n  \
                  squizzle lint --sarif squizzle.sarif   # for GitHub code scanning"
)]
pub struct LintArgs {
    /// The version this change will be released as.
    version: Option<String>,
    /// Compare with this release (or `none`: analyse every migration).
    #[arg(long, value_name = "VERSION|none")]
    previous: Option<String>,
    /// Also write the findings as SARIF 2.1.0 to this file.
    #[arg(long, value_name = "PATH")]
    sarif: Option<PathBuf>,
}

pub fn exec(ctx: &Context, args: LintArgs) -> Result<ExitCode, ops::Error> {
    let version = args.version.as_deref().map(Version::parse).transpose()?;
    let config = ctx.config()?;
    let opts = LintOptions {
        version,
        previous: match &args.previous {
            Some(p) => PreviousChoice::parse(p)?,
            None => PreviousChoice::Newest,
        },
    };
    let report = runtime()?.block_on(ops::lint::lint(&config, &opts))?;
    if let Some(path) = &args.sarif {
        let text = serde_json::to_vec_pretty(&ops::lint::sarif(&report)).unwrap_or_default();
        std::fs::write(path, text).map_err(|source| ops::Error::Io {
            action: "write",
            path: path.clone(),
            source,
        })?;
    }
    let p = &ctx.printer;
    if p.is_json() {
        p.json(&report);
        return Ok(ExitCode::Ok);
    }
    match &report.previous {
        Some(prev) => p.info(&format!(
            "Analysed {} migrations new or edited since {}",
            report.analysed.len(),
            prev.version
        )),
        None => p.info(&format!(
            "Analysed all {} migrations ({})",
            report.analysed.len(),
            report.unchecked.as_deref().unwrap_or("no earlier release")
        )),
    }
    for f in &report.findings {
        p.line(&format!("{}:{}: {} [{}]", f.path, f.line, f.message, f.id));
        p.line(&format!("  safer: {}", f.safe));
    }
    if report.findings.is_empty() {
        p.ok("No findings");
    } else {
        p.info(&format!("{} findings", report.findings.len()));
    }
    Ok(ExitCode::Ok)
}
