//! `squizzle pull <version>`

use clap::Args;

use super::Context;
use super::runtime::runtime;
use crate::core::exit::ExitCode;
use crate::core::version::Version;
use crate::ops;

#[derive(Debug, Args)]
#[command(
    about = "Download a release from the registry into the local store, checking every digest",
    after_help = "The release lands in the local OCI layout ([project] store, default db/oci; \
                  without a squizzle.toml, $XDG_CACHE_HOME/squizzle/oci or ~/.cache/squizzle/oci), \
                  which is content-addressed: blobs already there are not fetched again. \
                  Afterwards `squizzle verify <version>` and `apply` read it from there.\n\n\
                  Examples:\n  squizzle pull 1.0.0\n  squizzle pull 1.0.0 --output json"
)]
pub struct PullArgs {
    /// Release version to pull.
    version: String,
    #[command(flatten)]
    registry: super::args::RegistryArgs,
}

pub fn exec(ctx: &Context, args: PullArgs) -> Result<ExitCode, ops::Error> {
    let version = Version::parse(&args.version)?;
    let config = ctx.registry_config(&args.registry)?;
    let p = &ctx.printer;
    let progress = p.transfer_progress();
    let report =
        runtime()?.block_on(ops::transfer::pull(&config, &version, &|e| progress.on(e)))?;
    drop(progress);
    if p.is_json() {
        p.report(&report);
    } else if report.already_there {
        p.ok(&format!(
            "{} {} is already in {}; nothing to fetch",
            report.version,
            report.digest,
            report.store.display()
        ));
    } else {
        p.ok(&format!(
            "Pulled {} from {} into {} ({} blob(s), {}; {} already there)",
            report.version,
            report.registry,
            report.store.display(),
            report.blobs_copied,
            super::output::bytes(report.bytes_copied),
            report.blobs_skipped
        ));
        p.info(&format!("digest {}", report.digest));
    }
    Ok(ExitCode::Ok)
}
