//! `squizzle verify <version>`

use std::path::PathBuf;

use clap::Args;

use super::Context;
use super::args::PolicyArgs;
use super::report::print_checks;
use super::runtime::runtime;
use crate::core::exit::ExitCode;
use crate::core::version::Version;
use crate::ops::release::verify::{Failure, VerifyOptions};
use crate::ops::{self};

#[derive(Debug, Args)]
#[command(
    about = "Check a release's digests, every file hash and its signature against the policy",
    after_help = "Signatures are looked for among the release's referrers (pushed and pulled with it) and in \
                  db/tarballs/squizzle-<version>.sigstore.json. With a registry configured, a missing release is \
                  pulled and new referrers are fetched first, unless --offline. Keyless signatures are checked \
                  against the trusted root (the embedded Sigstore public-good root, or [security] trusted_root): \
                  certificate chain and SCT, signature over this release's manifest digest, transparency-log \
                  inclusion proof and checkpoint, timestamps, then the signer rules ([[security.signers]] or the \
                  --certificate-* flags; a regular expression must match the whole value).\n\n\
                  Examples:\n  squizzle verify 1.0.0\n  squizzle verify 1.0.0 --env production --output json\n  \
                  squizzle verify 1.0.0 \\\n      \
                  --certificate-identity-regexp \\\n      \
                  'https://github\\.com/acme/app/\\.github/workflows/release\\.yml@refs/tags/v.*' \\\n      \
                  --certificate-oidc-issuer https://token.actions.githubusercontent.com\n  \
                  squizzle verify 1.0.0 --offline --key squizzle.pub --bundle release.sigstore.json"
)]
pub struct VerifyArgs {
    /// Release version to verify.
    version: String,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Never contact the registry: use only what is in the local store and files.
    #[arg(long)]
    pub offline: bool,
    /// Also consider this bundle file.
    #[arg(long, value_name = "PATH")]
    pub bundle: Option<PathBuf>,
    #[command(flatten)]
    pub registry: super::args::RegistryArgs,
}

pub fn exec(ctx: &Context, args: VerifyArgs) -> Result<ExitCode, ops::Error> {
    let version = Version::parse(&args.version)?;
    let config = ctx.registry_config(&args.registry)?;
    let opts = VerifyOptions {
        policy: args.policy.overrides()?,
        bundle: args.bundle.clone(),
        allow_revoked: false,
    };
    let p = &ctx.printer;
    let ops::verify::Verification { fetched, report } =
        runtime()?.block_on(ops::verify::verify(&config, &version, &opts, args.offline))?;
    if let Some(pulled) = &fetched.pulled {
        p.status(&format!(
            "Pulled {} from {}",
            pulled.version, pulled.registry
        ));
    }
    if let Some(why) = &fetched.refresh_failed {
        p.warn(&format!(
            "Could not check the registry for new signatures or revocations ({why}); using what the local store has"
        ));
    }
    let code = match report.failure() {
        None => ExitCode::Ok,
        Some(Failure::Integrity) => ExitCode::Integrity,
        Some(Failure::Signature) => ExitCode::Signature,
        Some(Failure::Revoked) => ExitCode::Revoked,
    };
    let p = &ctx.printer;
    if p.is_json() {
        p.report(&report);
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
        Some(Failure::Revoked) => p.fail(&format!(
            "{} is revoked: do not deploy it; see docs/incident-response.md",
            report.version
        )),
    }
    Ok(code)
}
