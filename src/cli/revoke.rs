//! `squizzle revoke <version> --reason ...`

use clap::Args;

use super::Context;
use super::runtime::runtime;
use crate::core::exit::ExitCode;
use crate::core::version::Version;
use crate::ops::{self, revoke::RevokeOptions};

#[derive(Debug, Args)]
#[command(
    about = "Publish a signed revocation: verify, pull and apply of the version refuse it from then on",
    after_help = "The revocation is an in-toto statement (version, digest, reason, who, when) signed like a \
                  release (keyless, or --key), stored as a referrer of the release and pushed to the \
                  registry when one is configured. Every later verify, pull and apply of the version \
                  fails with exit code 10 and shows the reason; `rollback` still works. Revocations \
                  are judged against [security] revokers (default: the signers); one that does not \
                  verify still blocks, marked unverified.\n\n\
                  Examples:\n  squizzle revoke 1.1.0 --reason \"drops the invoices index under load (INC-4711)\"\n  \
                  squizzle revoke 1.1.0 --reason \"leaked credentials in a seed\" --delete-tag\n  \
                  SQUIZZLE_KEY_PASSWORD=... squizzle revoke 1.1.0 --reason \"...\" --key security.key"
)]
pub struct RevokeArgs {
    /// Release version to revoke.
    version: String,
    /// Why: shown to everyone who tries to deploy it.
    #[arg(long, required = true)]
    reason: String,
    /// Also delete the release manifest from the registry (and so its tag).
    #[arg(long)]
    delete_tag: bool,
    /// Revoke again although a revocation is already recorded (for instance
    /// to add one your policy can verify).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    how: super::args::SignHow,
    #[command(flatten)]
    registry: super::args::RegistryArgs,
}

pub fn exec(ctx: &Context, args: RevokeArgs) -> Result<ExitCode, ops::Error> {
    let version = Version::parse(&args.version)?;
    let config = ctx.registry_config(&args.registry)?;
    let p = &ctx.printer;
    let opts = RevokeOptions {
        reason: args.reason.clone(),
        delete_tag: args.delete_tag,
        force: args.force,
        sign: args.how.options(),
    };
    let report = runtime()?.block_on(ops::revoke::revoke(
        &config,
        &ctx.env,
        &version,
        &opts,
        &mut super::report::printer_events(p),
    ))?;
    if p.is_json() {
        p.report(&report);
        return Ok(ExitCode::Ok);
    }
    p.ok(&format!("Revoked {} {}", report.version, report.digest));
    p.info(&format!("Reason: {}", report.reason));
    p.info(&format!(
        "Revoked by: {} at {}",
        report.revoked_by, report.revoked_at
    ));
    match &report.registry {
        Some(r) => p.ok(&format!("Published the revocation to {r}")),
        None => p.warn("No registry configured: the revocation is only in this local store"),
    }
    if report.tag_deleted {
        p.ok(&format!("Deleted {} from the registry", report.version));
    }
    Ok(ExitCode::Ok)
}
