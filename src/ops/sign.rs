//! `sign`: a signature statement over the release's digest, signed keylessly
//! or with a key, stored as a referrer of the release and beside its tarball.
//! The signing itself is `ops::release::attest`, shared with build and revoke.

use crate::config::{Config, Env};
use crate::core::version::Version;
use crate::ops::Result;
use crate::ops::release::attest::{self, SignEvent, SignOptions, SignReport};

pub async fn sign(
    config: &Config,
    env: &Env,
    version: &Version,
    opts: &SignOptions,
    on: &mut dyn FnMut(SignEvent<'_>),
) -> Result<SignReport> {
    attest::sign_release(config, env, version, opts, on).await
}
