//! `squizzle check [<version>]`

use clap::Args;

use super::Context;
use super::args::HistoryArgs;
use super::report::print_lineage;
use super::runtime::runtime;
use crate::core::exit::ExitCode;
use crate::core::manifest::Lineage;
use crate::core::version::Version;
use crate::ops;
use crate::ops::check::{CheckOptions, CheckReport};

#[derive(Debug, Args)]
#[command(
    about = "Check the migrations as build would, without building: released history and transaction rules",
    after_help = "For pull requests: compares the migrations of this checkout with the previous release (the \
                  newest one older than <version>, or the newest of all without it; from the local store, else \
                  pulled from the registry; or --previous) and reports what build would refuse: a released \
                  migration edited, removed, renamed or moved, a new migration placed before released ones, \
                  BEGIN/COMMIT in a file, CONCURRENTLY in a file without -- squizzle:no-transaction. It also \
                  lists the findings build would record about the SQL (docs/lint.md); they do not change the \
                  exit code (squizzle lint --deny does).\n\n\
                  Exit codes: 0 build would accept it; 2 a file build refuses (or a bad flag); 5 released \
                  migrations changed without an allowance; 3 the registry cannot be reached.\n\n\
                  Examples:\n  squizzle check\n  squizzle check 1.4.0 --output json\n  \
                  squizzle check --allow-rewrite 0001_init --reason 'comment typo, no SQL change'"
)]
pub struct CheckArgs {
    /// The version this change will be released as (compare with the newest
    /// release older than it).
    version: Option<String>,
    #[command(flatten)]
    history: HistoryArgs,
}

pub fn exec(ctx: &Context, args: CheckArgs) -> Result<ExitCode, ops::Error> {
    let version = args.version.as_deref().map(Version::parse).transpose()?;
    let config = ctx.config()?;
    let opts = CheckOptions {
        version,
        lineage: args.history.options()?,
    };
    let report = runtime()?.block_on(ops::check::check(&config, &opts))?;
    let code = if report.sql_problem() {
        ExitCode::Usage
    } else if !report.ok {
        ExitCode::VersionConflict
    } else {
        ExitCode::Ok
    };
    let p = &ctx.printer;
    if p.is_json() {
        p.json(&report);
        return Ok(code);
    }
    print_report(p, &report);
    Ok(code)
}

fn print_report(p: &super::output::Printer, r: &CheckReport) {
    let lineage = Lineage {
        previous: r.previous.clone(),
        unchecked: r.unchecked.clone(),
        allowances: r.allowed.clone(),
        findings: Vec::new(),
        analysed: false,
        allowed_findings: Vec::new(),
    };
    print_lineage(p, &lineage, false);
    for problem in &r.problems {
        p.fail(&problem.message);
        if let (Some(was), Some(now)) = (&problem.released_sha256, &problem.sha256)
            && problem.kind == ops::check::ProblemKind::Edited
        {
            p.fail_detail(&format!("Released: {was}"));
            p.fail_detail(&format!("Now:      {now}"));
        }
    }
    for f in &r.findings {
        let allowed = r
            .allowed_findings
            .iter()
            .find(|a| a.id == f.id && a.path == f.path)
            .map(|a| format!(" (allowed: {})", a.reason))
            .unwrap_or_default();
        p.warn(&format!(
            "{}:{}: {} [{}]{allowed}",
            f.path, f.line, f.message, f.id
        ));
    }
    if !r.findings.is_empty() {
        p.info(&format!(
            "{} findings build would record ({}); they do not fail check, an environment's deny policy judges them at apply (docs/lint.md)",
            r.findings.len(),
            crate::ops::analysis::summary(&r.findings)
        ));
    }
    if r.ok {
        p.ok(&format!(
            "{} migrations: build would accept them",
            r.migrations
        ));
    } else if !r.sql_problem() {
        p.info("Revert the released files and put the change in a new migration, or allow it with --allow-rewrite ID / --allow-out-of-order and --reason \"...\" (recorded in the signed manifest)");
    }
}
