//! `squizzle push <version>`

use clap::Args;

use super::Context;
use super::runtime::runtime;
use crate::core::exit::ExitCode;
use crate::core::version::Version;
use crate::ops;

#[derive(Debug, Args)]
#[command(
    about = "Upload a built release to the registry (blobs it already has are skipped)",
    after_help = "The registry comes from [registry] url in squizzle.toml or SQUIZZLE_REGISTRY \
                  (host[:port]/repository); credentials from SQUIZZLE_REGISTRY_TOKEN or [registry] token, then \
                  [registry] username/password (as ${VAR}), then docker's config.json \
                  (auths, credHelpers, credsStore), else anonymous. A version the registry already has \
                  with other content is refused (exit 5).\n\n\
                  Examples:\n  squizzle push 1.0.0\n  SQUIZZLE_REGISTRY=ghcr.io/acme/migrations squizzle push 1.0.0 --output json"
)]
pub struct PushArgs {
    /// Release version to push (it must be built first).
    version: String,
    #[command(flatten)]
    registry: super::args::RegistryArgs,
}

pub fn exec(ctx: &Context, args: PushArgs) -> Result<ExitCode, ops::Error> {
    let version = Version::parse(&args.version)?;
    let config = ctx.registry_config(&args.registry)?;
    let p = &ctx.printer;
    let progress = p.transfer_progress();
    let report =
        runtime()?.block_on(ops::transfer::push(&config, &version, &|e| progress.on(e)))?;
    drop(progress);
    if p.is_json() {
        p.report(&report);
    } else if report.already_there {
        if report.referrers_copied > 0 {
            p.ok(&format!(
                "{} {} is already in {}; pushed {} new signature/attestation referrer(s)",
                report.version, report.digest, report.registry, report.referrers_copied
            ));
        } else {
            p.ok(&format!(
                "{} {} is already in {}; nothing to push",
                report.version, report.digest, report.registry
            ));
        }
    } else {
        p.ok(&format!(
            "Pushed {} to {}:{} ({} blob(s), {}; {} already there)",
            report.version,
            report.registry,
            report.version,
            report.blobs_copied,
            super::output::bytes(report.bytes_copied),
            report.blobs_skipped
        ));
        p.info(&format!("digest {}", report.digest));
    }
    Ok(ExitCode::Ok)
}
