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
                  Exit 0 whatever the findings, unless --deny (or --fail-on) names categories or ids: then exit 9 \
                  when a finding is named by it (as apply under that deny policy would refuse).\n\n\
                  Examples:\n  squizzle lint\n  squizzle lint 1.4.0 --output json\n  \
                  squizzle lint --sarif squizzle.sarif   # for GitHub code scanning\n  \
                  squizzle lint --deny destructive,rename-column   # fail the pull request (exit 9)"
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
    /// Exit 9 when a finding has one of these categories or ids
    /// (comma-separated or repeated; the names of `deny` in docs/lint.md).
    #[arg(
        long,
        visible_alias = "fail-on",
        value_name = "CATEGORY|ID",
        value_delimiter = ','
    )]
    deny: Vec<String>,
}

pub fn exec(ctx: &Context, args: LintArgs) -> Result<ExitCode, ops::Error> {
    let version = args.version.as_deref().map(Version::parse).transpose()?;
    let config = ctx.config()?;
    let deny = ops::analysis::policy::Deny::parse(&args.deny, "--deny")?;
    let opts = LintOptions {
        version,
        previous: match &args.previous {
            Some(p) => PreviousChoice::parse(p)?,
            None => PreviousChoice::Newest,
        },
    };
    let mut report = runtime()?.block_on(ops::lint::lint(&config, &opts))?;
    let denied = deny.denied(&report.findings).len();
    if !deny.is_empty() {
        report.deny = Some(deny.entries.clone());
        report.denied = Some(denied);
    }
    let code = if denied > 0 {
        ExitCode::Signature
    } else {
        ExitCode::Ok
    };
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
        return Ok(code);
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
    if denied > 0 {
        p.error(&format!(
            "{denied} of the findings are denied by --deny {}; an environment with that deny policy would refuse this release unless it is built with --allow ID:FILE --reason",
            deny.entries.join(",")
        ));
    }
    Ok(code)
}
