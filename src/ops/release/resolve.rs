//! Reading a release out of a store with every digest checked: the shared first
//! half of verify (and, later, apply).

use crate::core::digest::Digest;
use crate::core::manifest::{self, MANIFEST_MEDIA_TYPE, Manifest};
use crate::core::oci::{self, Descriptor, ImageManifest};
use crate::core::version::Version;
use crate::ops::{Error, Result};
use crate::store::layout::LayoutStore;

/// A release resolved from a tag, with its OCI manifest and squizzle manifest
/// read and checked against their digests. The layer is not read yet.
#[derive(Debug, Clone)]
pub struct ResolvedRelease {
    pub tag: String,
    pub descriptor: Descriptor,
    pub oci: ImageManifest,
    pub manifest: Manifest,
    pub layer: Descriptor,
}

impl ResolvedRelease {
    pub fn digest(&self) -> Digest {
        self.descriptor.digest
    }
}

/// Tags in the store that parse as versions, sorted.
pub fn versions(store: &LayoutStore) -> Result<Vec<(Version, Descriptor)>> {
    let mut v: Vec<(Version, Descriptor)> = store
        .tags()?
        .into_iter()
        .filter_map(|(t, d)| {
            Version::parse(&t)
                .ok()
                .filter(|v| v.tag() == t)
                .map(|v| (v, d))
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(v)
}

pub fn not_found(store: &LayoutStore, version: &Version) -> Error {
    let known: Vec<String> = versions(store)
        .map(|v| v.into_iter().map(|(v, _)| v.tag()).collect())
        .unwrap_or_default();
    let hint = if known.is_empty() {
        format!("the store is empty: run `squizzle build {version}` first")
    } else {
        format!("available: {}", known.join(", "))
    };
    Error::NotFound {
        version: version.tag(),
        store: store.root().to_path_buf(),
        hint,
    }
}

/// Resolves `version` and reads + checks the OCI manifest and squizzle manifest.
/// The local store, for a command that needs `version` in it: a missing
/// store is "not found" with the command that creates one. (An existing
/// folder that is not a valid layout is damage, not absence: an error.)
pub fn open_local(config: &crate::config::Config, version: &Version) -> Result<LayoutStore> {
    let dir = config.store_dir();
    if !dir.exists() {
        return Err(crate::ops::Error::NotFound {
            version: version.tag(),
            store: dir,
            hint: format!("there is no store there yet: run `squizzle build {version}` first"),
        });
    }
    Ok(LayoutStore::open(&dir)?)
}

pub fn resolve(store: &LayoutStore, version: &Version) -> Result<ResolvedRelease> {
    let descriptor = store
        .resolve(&version.tag())?
        .ok_or_else(|| not_found(store, version))?;
    resolve_at(store, version, descriptor)
}

/// As [`resolve`], for a tag already looked up: what `descriptor` names is
/// read and checked, without reading the index again.
pub fn resolve_at(
    store: &LayoutStore,
    version: &Version,
    descriptor: Descriptor,
) -> Result<ResolvedRelease> {
    let tag = version.tag();
    if descriptor.media_type != oci::IMAGE_MANIFEST_MEDIA_TYPE {
        return Err(Error::Integrity(format!(
            "tag {tag} points at a {:?}, expected an OCI image manifest ({})",
            descriptor.media_type,
            oci::IMAGE_MANIFEST_MEDIA_TYPE
        )));
    }
    let bytes = store.read_blob(&descriptor, oci::MAX_MANIFEST_BYTES, "manifest")?;
    let image: ImageManifest = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Integrity(format!("the OCI manifest of {tag} is not valid: {e}")))?;
    check_shape(&tag, &image)?;
    let config = store.read_blob(
        &image.config,
        manifest::MAX_MANIFEST_BYTES,
        "squizzle manifest",
    )?;
    let manifest = Manifest::from_json(&config).map_err(|e| {
        Error::Integrity(format!("the squizzle manifest of {tag} is not valid: {e}"))
    })?;
    if manifest.version.tag() != tag {
        return Err(Error::VersionMismatch {
            tag,
            declared: manifest.version.tag(),
        });
    }
    let layer = image.layers[0].clone();
    Ok(ResolvedRelease {
        tag,
        descriptor,
        oci: image,
        manifest,
        layer,
    })
}

pub(crate) fn check_shape(tag: &str, m: &ImageManifest) -> Result<()> {
    let bad = |what: String| {
        Err(Error::Integrity(format!(
            "{tag} is not a squizzle release: {what}"
        )))
    };
    if m.schema_version != 2 {
        return bad(format!("schemaVersion is {}, expected 2", m.schema_version));
    }
    if m.media_type != oci::IMAGE_MANIFEST_MEDIA_TYPE {
        return bad(format!("mediaType is {:?}", m.media_type));
    }
    if m.artifact_type.as_deref() != Some(oci::ARTIFACT_TYPE) {
        return bad(format!(
            "artifactType is {:?}, expected {:?}",
            m.artifact_type,
            oci::ARTIFACT_TYPE
        ));
    }
    if m.config.media_type != MANIFEST_MEDIA_TYPE {
        return bad(format!(
            "config mediaType is {:?}, expected {MANIFEST_MEDIA_TYPE:?}",
            m.config.media_type
        ));
    }
    if m.layers.len() != 1 {
        return bad(format!(
            "it has {} layers, expected exactly 1",
            m.layers.len()
        ));
    }
    if m.layers[0].media_type != oci::LAYER_MEDIA_TYPE {
        return bad(format!(
            "layer mediaType is {:?}, expected {:?}",
            m.layers[0].media_type,
            oci::LAYER_MEDIA_TYPE
        ));
    }
    Ok(())
}
