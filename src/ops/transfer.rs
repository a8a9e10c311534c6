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
use crate::store::layout::LayoutStore;
use crate::store::registry::{RegistryOptions, RegistryRef, RegistryStore};

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
}

/// The registry named by the configuration (`[registry]`, `SQUIZZLE_REGISTRY`,
/// `SQUIZZLE_REGISTRY_TOKEN`).
pub fn registry_store(config: &Config) -> Result<RegistryStore> {
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
    Ok(RegistryStore::new(
        reference,
        &RegistryOptions {
            username: reg.username,
            password: reg.password,
            token: reg.token,
            insecure: reg.insecure,
            ca_pem,
        },
    ))
}

fn tag_conflict(version: &Version, place: String, existing: Digest, incoming: Digest) -> Error {
    Error::TagConflict {
        version: version.tag(),
        place,
        existing,
        incoming,
    }
}

/// Local layout -> registry.
pub async fn push(config: &Config, version: &Version) -> Result<TransferReport> {
    let remote = registry_store(config)?;
    let dir = config.store_dir();
    if !dir.exists() {
        return Err(Error::NotFound {
            version: version.tag(),
            store: dir,
            hint: format!("there is no store there yet: run `squizzle build {version}` first"),
        });
    }
    let local = LayoutStore::open(&dir)?;
    push_release(&local, &remote, version).await
}

pub async fn push_release(
    local: &LayoutStore,
    remote: &RegistryStore,
    version: &Version,
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
    };
    if let Some(existing) = remote.resolve(&release.tag).await? {
        if existing.digest == release.digest() {
            report.already_there = true;
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
        if remote.push_blob(desc, file).await? {
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
        Some(d) if d.digest == release.digest() => Ok(report),
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
/// cache every reader (verify, apply) uses.
pub async fn pull(config: &Config, version: &Version) -> Result<TransferReport> {
    let remote = registry_store(config)?;
    let local = LayoutStore::open_or_init(&config.store_dir())?;
    pull_release(&remote, &local, version).await
}

pub async fn pull_release(
    remote: &RegistryStore,
    local: &LayoutStore,
    version: &Version,
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
            return Ok(report);
        }
    }
    for desc in blobs {
        if local.has_blob(desc) {
            report.blobs_skipped += 1;
        } else {
            remote.pull_blob(desc, local).await?;
            report.blobs_copied += 1;
            report.bytes_copied += desc.size;
        }
    }
    // The squizzle manifest must name the version it is tagged as.
    let config = local.read_blob(
        &image.config,
        manifest::MAX_MANIFEST_BYTES,
        "squizzle manifest",
    )?;
    let m = Manifest::from_json(&config).map_err(|e| {
        Error::Integrity(format!("the squizzle manifest of {tag} is not valid: {e}"))
    })?;
    if m.version.tag() != tag {
        return Err(Error::VersionMismatch {
            tag,
            declared: m.version.tag(),
        });
    }
    local.put_blob(&manifest_desc, &bytes[..])?;
    // Tag last: until now nothing in the local store names this release.
    local.tag(&tag, &manifest_desc)?;
    Ok(report)
}
