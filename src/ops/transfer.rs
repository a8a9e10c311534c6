//! `push` and `pull`: copying a tagged release (OCI manifest, squizzle manifest,
//! tarball layer) between the local OCI layout and a registry.
//!
//! Both directions skip blobs the destination already has, check every digest
//! on the way, and write the tag last, so a failed copy never leaves a tag
//! pointing at missing or unverified content. The manifest bytes travel
//! exactly as built: their digest is the release's identity.

use std::path::PathBuf;

use serde::Serialize;

use crate::config::Config;
use crate::core::digest::Digest;
use crate::core::manifest::{self, Manifest};
use crate::core::oci::{self, Descriptor, ImageManifest};
use crate::core::version::Version;
use crate::ops::artifact_ref;
use crate::ops::{Error, Result};
use crate::store::StoreError;
use crate::store::layout::LayoutStore;
use crate::store::registry::{RegistryOptions, RegistryRef, RegistryStore, TransferEvent, auth};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferReport {
    pub version: String,
    /// Digest of the OCI manifest: the release's identity.
    pub digest: Digest,
    /// `host[:port]/repository`.
    pub registry: String,
    /// The local OCI layout.
    pub store: PathBuf,
    /// Blobs sent (push) or fetched (pull).
    pub blobs_copied: usize,
    /// Blobs the destination already had.
    pub blobs_skipped: usize,
    pub bytes_copied: u64,
    /// The destination already had this exact release: nothing was copied.
    pub already_there: bool,
    /// Referrers of the release (signatures, provenance, revocations) copied.
    pub referrers_copied: usize,
}

/// The registry named by the configuration (`[registry]`, `SQUIZZLE_REGISTRY`,
/// `SQUIZZLE_REGISTRY_TOKEN`).
pub fn registry_store(config: &Config) -> Result<RegistryStore> {
    let (reference, opts, identity_token) = registry_options(config)?;
    if let Some(source) = identity_token.map(|(_, source)| source) {
        return Err(StoreError::RemoteAuth {
            registry: reference.to_string(),
            reason: format!(
                "{source} holds an identity token, which only push and pull can exchange yet; set SQUIZZLE_REGISTRY_TOKEN, or [registry] username/password"
            ),
        }
        .into());
    }
    Ok(RegistryStore::new(reference, &opts))
}

/// As [`registry_store`], and when the credentials are a username and
/// password for a registry with a token service, exchanges them for a token
/// first (`auth::negotiate`: the password only goes to a realm on the
/// registry's own host), so oci-client never holds the password.
pub async fn authenticated_store(config: &Config, op: auth::Operation) -> Result<RegistryStore> {
    let (reference, mut opts, identity_token) = registry_options(config)?;
    let plain_http = reference.is_loopback() || opts.insecure;
    if let Some((refresh, _)) = identity_token {
        opts.token = auth::negotiate(
            &reference,
            plain_http,
            opts.ca_pem.as_deref(),
            auth::Secret::IdentityToken(&refresh),
            op,
        )
        .await
        .map_err(|e| insecure_hint(&reference, config, e.into()))?;
    }
    let has_token = opts.token.as_deref().is_some_and(|t| !t.is_empty());
    if let (false, Some(user)) = (
        has_token,
        opts.username.as_deref().filter(|u| !u.is_empty()),
    ) {
        let password = opts.password.as_deref().unwrap_or("");
        let token = auth::negotiate(
            &reference,
            plain_http,
            opts.ca_pem.as_deref(),
            auth::Secret::Password {
                username: user,
                password,
            },
            op,
        )
        .await
        .map_err(|e| insecure_hint(&reference, config, e.into()))?;
        if token.is_some() {
            opts.token = token;
        }
    }
    Ok(RegistryStore::new(reference, &opts))
}

/// An identity token from the docker configuration, and where it was found:
/// it still has to be exchanged for a registry token.
type IdentityToken = Option<(String, String)>;

/// Where the registry is and how to authenticate, with the docker
/// configuration as the fallback for credentials.
fn registry_options(config: &Config) -> Result<(RegistryRef, RegistryOptions, IdentityToken)> {
    let reg = config.registry.as_ref();
    let url = reg
        .and_then(|r| r.url.as_deref())
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| {
            Error::Usage(format!(
                "no registry configured: set `url` in the [registry] section of {} (host[:port]/repository), or SQUIZZLE_REGISTRY",
                config.file.display()
            ))
        })?;
    let reference = RegistryRef::parse(url)?;
    let reg = reg.cloned().unwrap_or_default();
    let ca_pem = match &reg.ca_file {
        Some(f) if !f.is_empty() => {
            let path = config.root.join(f);
            Some(std::fs::read(&path).map_err(|source| Error::Io {
                action: "read the registry CA file",
                path,
                source,
            })?)
        }
        _ => None,
    };
    let mut opts = RegistryOptions {
        username: reg.username,
        password: reg.password,
        token: reg.token,
        insecure: reg.insecure,
        ca_pem,
    };
    let configured = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.is_empty());
    // Precedence: token > username/password > docker config.json > anonymous.
    if !configured(&opts.token) && !configured(&opts.username) {
        match auth::lookup(&reference)? {
            Some(auth::Found {
                credential: auth::DockerCredential::Basic { username, password },
                source,
            }) => {
                tracing::debug!(%source, "registry credentials from the docker configuration");
                opts.username = Some(username);
                opts.password = Some(password);
            }
            Some(auth::Found {
                credential: auth::DockerCredential::IdentityToken(token),
                source,
            }) => {
                tracing::debug!(%source, "registry identity token from the docker configuration");
                return Ok((reference, opts, Some((token, source))));
            }
            None => {}
        }
    }
    Ok((reference, opts, None))
}

/// Adds the way out to a failure to reach a non-loopback registry over
/// HTTPS: it may only speak plain HTTP.
fn insecure_hint(reference: &RegistryRef, config: &Config, e: Error) -> Error {
    let insecure = config.registry.as_ref().is_some_and(|r| r.insecure);
    match e {
        Error::Store(StoreError::RemoteUnreachable { registry, reason })
            if !insecure && !reference.is_loopback() =>
        {
            Error::Store(StoreError::RemoteUnreachable {
                registry,
                reason: format!(
                    "{reason} (squizzle speaks HTTPS to registries that are not on loopback; if this one only serves plain HTTP, pass --insecure-registry or set [registry] insecure = true)"
                ),
            })
        }
        e => e,
    }
}

fn tag_conflict(version: &Version, place: String, existing: Digest, incoming: Digest) -> Error {
    Error::TagConflict {
        version: version.tag(),
        place,
        existing,
        incoming,
    }
}

/// Local layout -> registry. Blob transfers report to `progress`.
pub async fn push(
    config: &Config,
    version: &Version,
    progress: &dyn Fn(&TransferEvent),
) -> Result<TransferReport> {
    let remote = authenticated_store(config, auth::Operation::Push).await?;
    let dir = config.store_dir();
    if !dir.exists() {
        return Err(Error::NotFound {
            version: version.tag(),
            store: dir,
            hint: format!("there is no store there yet: run `squizzle build {version}` first"),
        });
    }
    let local = LayoutStore::open(&dir)?;
    push_release(&local, &remote, version, progress)
        .await
        .map_err(|e| insecure_hint(remote.reference(), config, e))
}

pub async fn push_release(
    local: &LayoutStore,
    remote: &RegistryStore,
    version: &Version,
    progress: &dyn Fn(&TransferEvent),
) -> Result<TransferReport> {
    let release = artifact_ref::resolve(local, version)?;
    let bytes = local.read_blob(&release.descriptor, oci::MAX_MANIFEST_BYTES, "manifest")?;
    let mut report = TransferReport {
        version: release.tag.clone(),
        digest: release.digest(),
        registry: remote.reference().to_string(),
        store: local.root().to_path_buf(),
        blobs_copied: 0,
        blobs_skipped: 0,
        bytes_copied: 0,
        already_there: false,
        referrers_copied: 0,
    };
    if let Some(existing) = remote.resolve(&release.tag).await? {
        if existing.digest == release.digest() {
            report.already_there = true;
            report.referrers_copied = push_referrers(local, remote, &release.digest()).await?;
            return Ok(report);
        }
        return Err(tag_conflict(
            version,
            format!("the registry {}", remote.reference()),
            existing.digest,
            release.digest(),
        ));
    }
    for desc in [&release.oci.config, &release.layer] {
        let file = local.open_blob(&desc.digest)?;
        if remote.push_blob_with(desc, file, progress).await? {
            report.blobs_copied += 1;
            report.bytes_copied += desc.size;
        } else {
            report.blobs_skipped += 1;
        }
    }
    remote
        .push_manifest(&release.tag, oci::IMAGE_MANIFEST_MEDIA_TYPE, &bytes)
        .await?;
    // Read it back: the registry must serve exactly the bytes we built.
    match remote.resolve(&release.tag).await? {
        Some(d) if d.digest == release.digest() => {
            report.referrers_copied = push_referrers(local, remote, &release.digest()).await?;
            Ok(report)
        }
        Some(d) => Err(Error::Integrity(format!(
            "the registry {} serves {} for {} after the push, expected {}",
            remote.reference(),
            d.digest,
            release.tag,
            release.digest()
        ))),
        None => Err(Error::Integrity(format!(
            "the registry {} does not serve {} right after the push",
            remote.reference(),
            release.tag
        ))),
    }
}

/// Registry -> local layout (`project.store`), which is the content-addressed
/// cache every reader (verify, apply) uses. Blob transfers report to `progress`.
pub async fn pull(
    config: &Config,
    version: &Version,
    progress: &dyn Fn(&TransferEvent),
) -> Result<TransferReport> {
    let remote = authenticated_store(config, auth::Operation::Pull).await?;
    let local = LayoutStore::open_or_init(&config.store_dir())?;
    pull_release(&remote, &local, version, progress)
        .await
        .map_err(|e| insecure_hint(remote.reference(), config, e))
}

pub async fn pull_release(
    remote: &RegistryStore,
    local: &LayoutStore,
    version: &Version,
    progress: &dyn Fn(&TransferEvent),
) -> Result<TransferReport> {
    let tag = version.tag();
    let Some(found) = remote.resolve(&tag).await? else {
        let mut known: Vec<Version> = remote
            .tags()
            .await
            .unwrap_or_default()
            .iter()
            .filter_map(|t| Version::parse(t).ok().filter(|v| v.tag() == *t))
            .collect();
        known.sort();
        let hint = if known.is_empty() {
            format!("the registry has no versions: run `squizzle push {version}` first")
        } else {
            format!(
                "available: {}",
                known
                    .iter()
                    .map(Version::tag)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        return Err(Error::NotFound {
            version: tag,
            store: PathBuf::from(remote.reference().to_string()),
            hint,
        });
    };
    if found.media_type != oci::IMAGE_MANIFEST_MEDIA_TYPE {
        return Err(Error::Integrity(format!(
            "tag {tag} in {} points at a {:?}, expected an OCI image manifest ({})",
            remote.reference(),
            found.media_type,
            oci::IMAGE_MANIFEST_MEDIA_TYPE
        )));
    }
    let bytes = remote.read_manifest(&found).await?;
    let image: ImageManifest = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Integrity(format!("the OCI manifest of {tag} is not valid: {e}")))?;
    artifact_ref::check_shape(&tag, &image)?;

    let mut report = TransferReport {
        version: tag.clone(),
        digest: found.digest,
        registry: remote.reference().to_string(),
        store: local.root().to_path_buf(),
        blobs_copied: 0,
        blobs_skipped: 0,
        bytes_copied: 0,
        already_there: false,
        referrers_copied: 0,
    };
    let mut manifest_desc =
        Descriptor::new(oci::IMAGE_MANIFEST_MEDIA_TYPE, found.digest, found.size);
    manifest_desc.artifact_type = image.artifact_type.clone();
    let blobs = [&image.config, &image.layers[0]];
    if let Some(existing) = local.resolve(&tag)? {
        if existing.digest != found.digest {
            return Err(tag_conflict(
                version,
                format!("the local store {}", local.root().display()),
                existing.digest,
                found.digest,
            ));
        }
        if local.has_blob(&manifest_desc) && blobs.iter().all(|d| local.has_blob(d)) {
            report.already_there = true;
            report.referrers_copied = pull_referrers(remote, local, &found.digest).await?;
            return Ok(report);
        }
    }
    // Missing blobs land in a staging layout inside the store and move in
    // only once all of them are checked and the squizzle manifest names the
    // tagged version: a tampered or replayed release leaves the store as it was.
    let staging_dir = tempfile::Builder::new()
        .prefix(".tmp-pull-")
        .tempdir_in(local.root())
        .map_err(|source| Error::Io {
            action: "create a staging folder in the store",
            path: local.root().to_path_buf(),
            source,
        })?;
    let staging = LayoutStore::open_or_init(staging_dir.path())?;
    for desc in blobs {
        if local.has_blob(desc) {
            report.blobs_skipped += 1;
        } else {
            remote.pull_blob_with(desc, &staging, progress).await?;
            report.blobs_copied += 1;
            report.bytes_copied += desc.size;
        }
        if std::ptr::eq(desc, &image.config) {
            // The squizzle manifest must name the version it is tagged as;
            // checked before the tarball is fetched.
            let from = if local.has_blob(desc) {
                local
            } else {
                &staging
            };
            let config = from.read_blob(desc, manifest::MAX_MANIFEST_BYTES, "squizzle manifest")?;
            let m = Manifest::from_json(&config).map_err(|e| {
                Error::Integrity(format!("the squizzle manifest of {tag} is not valid: {e}"))
            })?;
            if m.version.tag() != tag {
                return Err(Error::VersionMismatch {
                    tag,
                    declared: m.version.tag(),
                });
            }
        }
    }
    for desc in blobs {
        if staging.has_blob(desc) {
            let to = local.blob_path(&desc.digest);
            std::fs::rename(staging.blob_path(&desc.digest), &to).map_err(|source| Error::Io {
                action: "move a pulled blob into the store",
                path: to,
                source,
            })?;
        }
    }
    local.put_blob(&manifest_desc, &bytes[..])?;
    // Tag last: until now nothing in the local store names this release.
    local.tag(&tag, &manifest_desc)?;
    report.referrers_copied = pull_referrers(remote, local, &found.digest).await?;
    Ok(report)
}

/// Pushes every referrer the local layout has for `subject` that the
/// registry does not list yet (its blobs first, then the manifest bytes as
/// stored). Returns how many were pushed.
pub async fn push_referrers(
    local: &LayoutStore,
    remote: &RegistryStore,
    subject: &Digest,
) -> Result<usize> {
    let wanted = local.referrers(subject, None)?;
    if wanted.is_empty() {
        return Ok(0);
    }
    let there: std::collections::HashSet<Digest> = remote
        .referrers(subject, None)
        .await?
        .into_iter()
        .map(|d| d.digest)
        .collect();
    let mut pushed = 0;
    for desc in wanted.iter().filter(|d| !there.contains(&d.digest)) {
        let bytes = local.read_blob(desc, oci::MAX_MANIFEST_BYTES, "manifest")?;
        let m: ImageManifest = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Integrity(format!("referrer {} is not valid: {e}", desc.digest)))?;
        for blob in std::iter::once(&m.config).chain(&m.layers) {
            remote
                .push_blob(blob, local.open_blob(&blob.digest)?)
                .await?;
        }
        remote.push_referrer_manifest(&bytes).await?;
        pushed += 1;
    }
    Ok(pushed)
}

/// Pulls every referrer the registry lists for `subject` into the local
/// layout (digest-checked; a listed manifest whose `subject` is another
/// manifest is refused). Returns how many were new locally.
pub async fn pull_referrers(
    remote: &RegistryStore,
    local: &LayoutStore,
    subject: &Digest,
) -> Result<usize> {
    let have: std::collections::HashSet<Digest> = local
        .referrers(subject, None)?
        .into_iter()
        .map(|d| d.digest)
        .collect();
    let mut pulled = 0;
    for listed in remote.referrers(subject, None).await? {
        if have.contains(&listed.digest) || listed.media_type != oci::IMAGE_MANIFEST_MEDIA_TYPE {
            continue;
        }
        let desc = Descriptor::new(&listed.media_type, listed.digest, listed.size);
        let bytes = remote.read_manifest(&desc).await?;
        let m: ImageManifest = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Integrity(format!("referrer {} is not valid: {e}", desc.digest)))?;
        if m.subject.as_ref().map(|s| s.digest) != Some(*subject) {
            return Err(Error::Integrity(format!(
                "the registry {} lists {} as a referrer of {subject}, but its subject is another manifest",
                remote.reference(),
                desc.digest
            )));
        }
        for blob in std::iter::once(&m.config).chain(&m.layers) {
            if !local.has_blob(blob) {
                remote.pull_blob(blob, local).await?;
            }
        }
        local.add_referrer(&bytes)?;
        pulled += 1;
    }
    Ok(pulled)
}
