//! `verify`: bring the release and its newest evidence in (unless offline),
//! then judge it: integrity, revocation, signature, provenance.
//!
//! The checks themselves live in `ops::release::verify`, shared with every
//! command that runs a release; this module is the command's own sequence.

use crate::config::Config;
use crate::core::version::Version;
use crate::ops::Result;
use crate::ops::release::fetch::{Fetched, fetch_release_and_evidence};
use crate::ops::release::verify::{VerifyOptions, VerifyReport, verify_release};

/// What `verify` did: what it fetched first, and the verdict.
pub struct Verification {
    pub fetched: Fetched,
    pub report: VerifyReport,
}

pub async fn verify(
    config: &Config,
    version: &Version,
    opts: &VerifyOptions,
    offline: bool,
) -> Result<Verification> {
    let mut fetched = fetch_release_and_evidence(config, version, offline, true).await?;
    let looked_up = Fetched {
        local: fetched.local.take(),
        ..Fetched::default()
    };
    let (store, release) = looked_up.resolve(config, version)?;
    let report = verify_release(config, &store, &release, opts)?;
    Ok(Verification { fetched, report })
}
