//! `push` and `pull`: copying a tagged release between the local OCI layout
//! and a registry, through the one copy routine in `ops::release::fetch`.

use crate::config::Config;
use crate::core::version::Version;
use crate::ops::Result;
use crate::ops::registry::{authenticated_store, insecure_hint};
use crate::ops::release::fetch::{TransferReport, copy_release, pull_release, refuse_if_revoked};
use crate::ops::release::resolve;
use crate::ops::release::vet::NoVet;
use crate::store::progress::TransferEvent;

/// Local layout -> registry. Blob transfers report to `progress`.
pub async fn push(
    config: &Config,
    version: &Version,
    progress: &dyn Fn(&TransferEvent),
) -> Result<TransferReport> {
    let remote = authenticated_store(config).await?;
    let local = resolve::open_local(config, version)?;
    let empty = format!("the store is empty: run `squizzle build {version}` first");
    let copied = copy_release(&local, &remote, version, &empty, progress, &NoVet)
        .await
        .map_err(|e| insecure_hint(remote.reference(), config, e))?;
    Ok(copied.report(&remote, &local))
}

/// Registry -> local layout, through a staging folder: see
/// [`pull_release`]. A revoked release is pulled (its revocation is evidence
/// worth keeping) and then refused, exit 10, so it never looks usable.
pub async fn pull(
    config: &Config,
    version: &Version,
    progress: &dyn Fn(&TransferEvent),
) -> Result<TransferReport> {
    let report = pull_release(config, version, progress).await?;
    refuse_if_revoked(config, version)?;
    Ok(report)
}
