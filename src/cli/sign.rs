//! `squizzle sign <version>`

use std::path::PathBuf;

use clap::Args;

use super::Context;
use super::apply::runtime;
use crate::core::exit::ExitCode;
use crate::core::version::Version;
use crate::ops::{self, sign::SignEvent, sign::SignOptions};

#[derive(Debug, Args)]
#[command(
    about = "Sign a built release with Sigstore (keyless), or with a key pair from `keygen`",
    after_help = "Keyless signing needs an OIDC identity token: --identity-token, SIGSTORE_ID_TOKEN, or the CI \
                  system's own (GitHub Actions with `permissions: id-token: write`, GitLab, Buildkite, CircleCI). \
                  The services are the Sigstore public-good instance unless [security] names a private one \
                  (fulcio_url, rekor_url, tsa_url or signing_config).\n\
                  What is signed: an in-toto statement whose subject is the release's OCI manifest digest, \
                  in a DSSE envelope. The bundle is written to db/tarballs/squizzle-<version>.sigstore.json \
                  and stored as a referrer of the release; `push` publishes it.\n\n\
                  Examples:\n  squizzle sign 1.0.0\n  SIGSTORE_ID_TOKEN=$(cat token.jwt) squizzle sign 1.0.0 --output json\n  \
                  SQUIZZLE_KEY_PASSWORD=... squizzle sign 1.0.0 --key squizzle.key"
)]
pub struct SignArgs {
    /// Release version to sign (it must be built first).
    version: String,
    #[command(flatten)]
    pub how: SignHow,
}

/// How to sign; shared with `build --sign`.
#[derive(Debug, Clone, Args)]
pub struct SignHow {
    /// OIDC identity token (prefer SIGSTORE_ID_TOKEN: arguments are visible to other users).
    #[arg(long, value_name = "JWT", hide_env_values = true)]
    pub identity_token: Option<String>,
    /// Sign with this private key (from `squizzle keygen`; passphrase in SQUIZZLE_KEY_PASSWORD).
    #[arg(long, value_name = "PATH", conflicts_with = "identity_token")]
    pub key: Option<PathBuf>,
}

impl SignHow {
    pub fn options(&self) -> SignOptions {
        SignOptions {
            identity_token: self.identity_token.clone(),
            key: self.key.clone(),
        }
    }
}

pub fn exec(ctx: &Context, args: SignArgs) -> Result<ExitCode, ops::Error> {
    let version = Version::parse(&args.version)?;
    let config = ctx.config()?;
    sign_and_report(ctx, &config, &version, &args.how)
}

/// The seed-style progress lines of keyless signing.
pub fn printer_events(p: &super::output::Printer) -> impl FnMut(SignEvent<'_>) + '_ {
    move |e: SignEvent<'_>| match e {
        SignEvent::Authenticated {
            identity,
            issuer,
            source,
        } => {
            p.ok("Authenticating with Sigstore...");
            p.info(&format!(
                "Logged in as {identity} ({issuer}, token from {source})"
            ));
        }
        SignEvent::Logged { index, rekor_url } => {
            p.ok("Recording in transparency log...");
            match index {
                Some(i) => p.info(&format!("Entry: {i} ({rekor_url})")),
                None => p.info(&format!("Entry recorded in {rekor_url}")),
            }
        }
    }
}

pub fn sign_and_report(
    ctx: &Context,
    config: &crate::config::Config,
    version: &Version,
    how: &SignHow,
) -> Result<ExitCode, ops::Error> {
    let p = &ctx.printer;
    let mut on = printer_events(p);
    let report = runtime()?.block_on(ops::sign::sign(
        config,
        &ctx.env,
        version,
        &how.options(),
        &mut on,
    ))?;
    if p.is_json() {
        p.json(&report);
        return Ok(ExitCode::Ok);
    }
    if report.method == "key" {
        p.ok(&format!("Signed with {}", report.identity));
        p.info("No transparency log entry (key-pair signature for air-gapped use)");
    }
    p.ok(&format!("Signed {} {}", report.version, report.digest));
    p.info(&format!("Bundle: {}", report.bundle.display()));
    Ok(ExitCode::Ok)
}
