//! `squizzle push <version>`

use clap::Args;

use super::Context;
use super::apply::runtime;
use crate::core::exit::ExitCode;
use crate::core::version::Version;
use crate::ops;

#[derive(Debug, Args)]
#[command(
    about = "Upload a built release to the registry (blobs it already has are skipped)",
    after_help = "The registry comes from [registry] url in squizzle.toml or SQUIZZLE_REGISTRY \
                  (host[:port]/repository); credentials from [registry] username/password \
                  (as ${VAR}) or SQUIZZLE_REGISTRY_TOKEN. A version the registry already has \
                  with other content is refused (exit 5).\n\n\
                  Examples:\n  squizzle push 1.0.0\n  SQUIZZLE_REGISTRY=ghcr.io/acme/migrations squizzle push 1.0.0 --output json"
)]
pub struct PushArgs {
    /// Release version to push (it must be built first).
    version: String,
}

pub fn exec(ctx: &Context, args: PushArgs) -> Result<ExitCode, ops::Error> {
    let version = Version::parse(&args.version)?;
    let config = ctx.config()?;
    let report = runtime()?.block_on(ops::transfer::push(&config, &version))?;
    let p = &ctx.printer;
    if p.is_json() {
        p.json(&report);
    } else if report.already_there {
        p.ok(&format!(
            "{} {} is already in {}; nothing to push",
            report.version, report.digest, report.registry
        ));
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
