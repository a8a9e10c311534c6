//! `squizzle audit <version>`

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::Context;
use super::args::parse_duration;
use super::runtime::runtime;
use crate::core::exit::ExitCode;
use crate::core::version::Version;
use crate::ops::audit::{AuditOptions, AuditReport, TargetReport, TargetStatus};
use crate::ops::release::verify::VerifyOptions;
use crate::ops::{self, Error};

#[derive(Debug, Args)]
#[command(
    about = "Show where a release is applied, when, by whom, with which digest and signer",
    after_help = "Reads every environment in squizzle.toml (only the one named by --env or SQUIZZLE_ENV, \
                  when one is), concurrently, each within --timeout (connect and read). Read-only: \
                  takes no lock, creates nothing, and the sessions are READ ONLY. The release itself is \
                  verified as `squizzle verify` does (pulled when missing and a registry is configured, \
                  unless --offline); a revoked release is reported, not refused. A release the store no \
                  longer has is still audited in the databases.\n\n\
                  Exit codes: 0 the audit ran (unreachable environments are listed, not fatal); \
                  3 no environment answered; 5 a database applied this version with another digest \
                  (DIGEST MISMATCH: a moved tag or a different build); 6 the stored release fails its \
                  integrity checks. See docs/audit.md.\n\n\
                  Examples:\n  squizzle audit 1.4.0\n  squizzle audit 1.4.0 --output json > audit-1.4.0.json\n  \
                  squizzle audit 1.4.0 --env production --timeout 30s\n  squizzle audit 1.4.0 --offline"
)]
pub struct AuditArgs {
    /// Release version to audit.
    version: String,
    /// Per environment: how long connecting and reading its history may take.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    #[command(flatten)]
    policy: super::args::PolicyArgs,
    /// Never contact the registry: use only what is in the local store and files.
    #[arg(long)]
    offline: bool,
    /// Also consider this signature bundle file.
    #[arg(long, value_name = "PATH")]
    bundle: Option<PathBuf>,
    #[command(flatten)]
    registry: super::args::RegistryArgs,
}

pub fn exec(ctx: &Context, args: AuditArgs) -> Result<ExitCode, Error> {
    let version = Version::parse(&args.version)?;
    let config = ctx.registry_config(&args.registry)?;
    let opts = AuditOptions {
        offline: args.offline,
        timeout: args.timeout,
        verify: VerifyOptions {
            policy: args.policy.overrides()?,
            bundle: args.bundle.clone(),
            allow_revoked: true,
        },
    };
    let report = runtime()?.block_on(ops::audit::audit(&config, &ctx.env, &version, &opts))?;
    let code = exit_code(&report);
    let p = &ctx.printer;
    if p.is_json() {
        p.report(&report);
        return Ok(code);
    }
    print_artifact(p, &report);
    p.line("");
    print_table(p, &report.environments);
    print_details(p, &report);
    Ok(code)
}

/// Integrity failure (6) > digest mismatch (5) > nobody answered (3) > 0.
fn exit_code(r: &AuditReport) -> ExitCode {
    if r.artifact.integrity_failed() {
        ExitCode::Integrity
    } else if r.summary.digest_mismatches > 0 {
        ExitCode::VersionConflict
    } else if r.summary.answered == 0 {
        ExitCode::Connection
    } else {
        ExitCode::Ok
    }
}

fn print_artifact(p: &super::output::Printer, r: &AuditReport) {
    let a = &r.artifact;
    p.line(&format!("Release {}", r.version));
    let Some(digest) = &a.digest else {
        let what = if a.found { "MALFORMED" } else { "NOT FOUND" };
        p.line(&format!(
            "  Artifact:    {what} ({})",
            a.error.as_deref().unwrap_or("unknown reason")
        ));
        if a.integrity_failed() {
            p.line("  Integrity:   FAILED: the release is malformed; do not apply it (see `squizzle verify`)");
        }
        for n in &a.notes {
            p.warn(n);
        }
        return;
    };
    p.line(&format!("  Digest:      {digest}"));
    if let Some(c) = &a.created_at {
        p.line(&format!("  Built:       {c}"));
    }
    if let Some(from) = &a.pulled_from {
        p.line(&format!("  Pulled from: {from}"));
    }
    let integrity = if a.integrity_failed() {
        "FAILED: do not apply it (see `squizzle verify`)"
    } else {
        "verified"
    };
    p.line(&format!("  Integrity:   {integrity}"));
    if a.integrity_failed()
        && let Some(why) = &a.error
    {
        p.line(&format!("  Problem:     {why}"));
    }
    match &a.signature {
        Some(s) => {
            p.line(&format!("  Signer:      {} ({})", s.identity, s.issuer));
            if let Some(i) = s.log_index {
                p.line(&format!("  Log index:   {i}"));
            }
        }
        None => {
            let why = a
                .checks
                .iter()
                .find(|c| c.name == crate::ops::release::verify::CheckId::Signature)
                .map_or("not checked", |c| c.detail.as_str());
            p.line(&format!("  Signer:      none: {why}"));
        }
    }
    match &a.provenance {
        Some(pv) => {
            let source = pv.repository.as_deref().unwrap_or("unnamed source");
            let at = pv
                .git_ref
                .as_deref()
                .or(pv.revision.as_deref())
                .map_or_else(String::new, |g| format!(" {g}"));
            p.line(&format!(
                "  Provenance:  built by {} from {source}{at}",
                pv.builder_id
            ));
        }
        None => p.line("  Provenance:  none verified"),
    }
    for f in &a.allowed_findings {
        p.line(&format!(
            "  Allows:      {} in {} (reason: {})",
            f.id, f.path, f.reason
        ));
    }
    match &a.revocation {
        None => p.line("  Revocation:  not revoked"),
        Some(rv) => p.line(&format!(
            "  Revocation:  REVOKED{} by {} at {}: {}",
            if rv.verified { "" } else { " (unverified)" },
            rv.revoked_by,
            rv.revoked_at,
            rv.reason
        )),
    }
    if a.verified == Some(false) && !a.integrity_failed() {
        p.line("  Policy:      signature/provenance policy NOT satisfied");
    }
    for n in &a.notes {
        p.warn(n);
    }
}

fn short_digest(d: &str) -> String {
    match d.split_once(':') {
        Some((alg, hex)) => format!("{alg}:{}", &hex[..hex.len().min(12)]),
        None => d.chars().take(19).collect(),
    }
}

fn print_table(p: &super::output::Printer, targets: &[TargetReport]) {
    let rows: Vec<[String; 6]> = targets
        .iter()
        .map(|t| {
            let digest = t.digest.as_deref().map_or_else(String::new, |d| {
                if t.digest_mismatch {
                    format!("{} DIGEST MISMATCH", short_digest(d))
                } else {
                    short_digest(d)
                }
            });
            [
                t.environment.clone(),
                t.status.label().to_owned(),
                t.when.clone().unwrap_or_default(),
                t.by.clone().unwrap_or_default(),
                digest,
                t.signer_identity.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["ENVIRONMENT", "STATUS", "WHEN", "BY", "DIGEST", "SIGNER"];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.trim_end().to_owned()
    };
    p.line(&line(header));
    for r in &rows {
        p.line(&line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]));
    }
}

fn print_details(p: &super::output::Printer, r: &AuditReport) {
    let mut first = true;
    for t in &r.environments {
        let failures = t.attempts.iter().filter(|a| !a.row.success).count();
        let note = match t.status {
            TargetStatus::Applied | TargetStatus::RolledBack if failures > 0 => Some(format!(
                "{failures} failed attempt(s) recorded as well (see --output json)"
            )),
            TargetStatus::NoHistory => Some("no squizzle history in this database".into()),
            _ => None,
        };
        let mismatch = t.digest_mismatch.then(|| {
            format!(
                "DIGEST MISMATCH: applied {}, the store's {} is {}: a moved tag or another build under the same version",
                t.digest.as_deref().unwrap_or("?"),
                r.version,
                r.artifact
                    .digest
                    .map_or_else(|| "unknown".to_owned(), |d| d.to_string())
            )
        });
        let lines: Vec<String> = [t.error.clone(), note, mismatch]
            .into_iter()
            .flatten()
            .collect();
        if lines.is_empty() {
            continue;
        }
        if first {
            p.line("");
            first = false;
        }
        for l in lines {
            let msg = format!("{}: {l}", t.environment);
            match t.status {
                TargetStatus::Applied
                | TargetStatus::NotApplied
                | TargetStatus::NoHistory
                | TargetStatus::Skipped
                    if !t.digest_mismatch =>
                {
                    p.info(&msg)
                }
                _ => p.fail(&msg),
            }
        }
    }
    let s = &r.summary;
    p.line("");
    p.line(&format!(
        "{} environment(s): {} answered, {} unanswered, {} skipped; applied in {}, failed in {}, digest mismatches: {}",
        s.environments, s.answered, s.unanswered, s.skipped, s.applied, s.failed, s.digest_mismatches
    ));
}
