//! `squizzle sign <version>`

use clap::Args;

use super::Context;
use super::args::SignHow;
use super::report::sign_and_report;
use crate::core::exit::ExitCode;
use crate::core::version::Version;
use crate::ops;

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

pub fn exec(ctx: &Context, args: SignArgs) -> Result<ExitCode, ops::Error> {
    let version = Version::parse(&args.version)?;
    let config = ctx.config()?;
    sign_and_report(ctx, &config, &version, &args.how)
}
