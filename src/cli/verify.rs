//! `squizzle verify <version>`

use clap::Args;

use super::Context;
use crate::core::exit::ExitCode;
use crate::core::version::Version;
use crate::ops::{self, verify::Failure, verify::Status};

#[derive(Debug, Args)]
#[command(
    about = "Check a release's digests, every file hash and the signature policy",
    after_help = "Examples:\n  squizzle verify 1.0.0\n  squizzle verify 1.0.0 --env production --output json"
)]
pub struct VerifyArgs {
    /// Release version to verify.
    version: String,
}

pub fn exec(ctx: &Context, args: VerifyArgs) -> Result<ExitCode, ops::Error> {
    let version = Version::parse(&args.version)?;
    let config = ctx.config()?;
    let report = ops::verify::verify(&config, &version)?;
    let code = match report.failure() {
        None => ExitCode::Ok,
        Some(Failure::Integrity) => ExitCode::Integrity,
        Some(Failure::Signature) => ExitCode::Signature,
    };
    let p = &ctx.printer;
    if p.is_json() {
        p.json(&report);
        return Ok(code);
    }
    print_checks(p, &report);
    match report.failure() {
        None => p.info(&format!("{} {} verified", report.version, report.digest)),
        Some(Failure::Integrity) => p.fail(&format!(
            "Integrity check failed for {}: do not apply it; rebuild it from source or pull it again",
            report.version
        )),
        Some(Failure::Signature) => p.fail(&format!("Signature policy not satisfied for {}", report.version)),
    }
    Ok(code)
}

/// The seed-style check lines of a verify report (used by verify and apply).
pub fn print_checks(p: &super::output::Printer, report: &crate::ops::verify::VerifyReport) {
    for check in &report.checks {
        if check.name == "files" {
            for f in report.files.iter().filter(|f| !f.ok) {
                p.fail(&format!("Checksum mismatch in {}", f.path));
                p.fail_detail(&format!(
                    "Expected: {} ({} bytes)",
                    f.expected_sha256, f.expected_size
                ));
                p.fail_detail(&format!(
                    "Actual:   {} ({} bytes)",
                    f.actual_sha256, f.actual_size
                ));
            }
        }
        match check.status {
            Status::Pass => p.ok(&check.detail),
            Status::Skip => p.skip(&check.detail),
            Status::Fail => {
                p.fail(&check.detail);
                if let Some(e) = &check.expected {
                    p.fail_detail(&format!("Expected: {e}"));
                }
                if let Some(a) = &check.actual {
                    p.fail_detail(&format!("Actual:   {a}"));
                }
            }
        }
        if check.name == "files" && report.failure() != Some(Failure::Integrity) {
            p.ok("Integrity verified");
        }
    }
}
