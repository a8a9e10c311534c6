//! The OCI documents squizzle writes and reads: image manifest, image index,
//! descriptor, and the `oci-layout` marker.
//!
//! These are squizzle's own serde types rather than a general OCI crate's because
//! the bytes are part of a reproducibility promise: the OCI manifest digest of a
//! release must not change when a dependency reorders or adds a field. Fields are
//! serialized in declaration order; annotations are a sorted map; absent optional
//! fields are omitted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::core::digest::Digest;

pub const IMAGE_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const IMAGE_INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const ARTIFACT_TYPE: &str = "application/vnd.squizzle.migrations.v1";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.squizzle.migrations.v1.tar+gzip";

pub const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";
pub const ANNOTATION_VERSION: &str = "org.opencontainers.image.version";
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
pub const ANNOTATION_SOURCE: &str = "org.opencontainers.image.source";
pub const ANNOTATION_REVISION: &str = "org.opencontainers.image.revision";
pub const ANNOTATION_DESCRIPTION: &str = "org.opencontainers.image.description";
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Referrers (OCI 1.1 manifests whose `subject` is a release), by `artifactType`.
/// A Sigstore bundle v0.3 signing the release's manifest digest.
pub const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// A signed SLSA v1 provenance statement (in-toto Statement v1) about the release.
pub const PROVENANCE_ARTIFACT_TYPE: &str = "application/vnd.in-toto.slsa.provenance.v1+json";
/// A signed squizzle revocation of the release.
pub const REVOCATION_ARTIFACT_TYPE: &str = "application/vnd.squizzle.revocation.v1+json";
/// The empty config blob (`{}`) of artifacts that have no config of their own.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// The referrers tag-schema tag of a subject: `sha256-<hex>`.
pub fn referrers_tag(subject: &Digest) -> String {
    format!("sha256-{}", subject.hex())
}

/// True for tags of the referrers tag schema (`sha256-` + 64 hex digits).
pub fn is_referrers_tag(tag: &str) -> bool {
    tag.strip_prefix("sha256-")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Largest OCI manifest or index squizzle parses (the registry spec suggests 4 MiB).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Self {
        Self {
            media_type: media_type.to_owned(),
            digest,
            size,
            artifact_type: None,
            annotations: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    pub media_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ImageManifest {
    pub fn to_canonical_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ImageIndex {
    pub fn empty() -> Self {
        Self {
            schema_version: 2,
            media_type: Some(IMAGE_INDEX_MEDIA_TYPE.to_owned()),
            manifests: Vec::new(),
            annotations: BTreeMap::new(),
        }
    }
}

impl ImageManifest {
    /// The descriptor that lists this manifest (serialized as `bytes`) as a
    /// referrer: its `artifactType` (or, per the spec, the config media type
    /// when it has none) and its annotations, minus any `ref.name`.
    pub fn referrer_descriptor(&self, bytes: &[u8]) -> Descriptor {
        let mut d = Descriptor::new(&self.media_type, Digest::of(bytes), bytes.len() as u64);
        d.artifact_type = Some(
            self.artifact_type
                .clone()
                .unwrap_or_else(|| self.config.media_type.clone()),
        );
        d.annotations = self.annotations.clone();
        d.annotations.remove(ANNOTATION_REF_NAME);
        d
    }
}

/// Adds `entries` to a referrers index (dedupe by digest; a later entry
/// replaces an earlier one with the same digest). Returns true if the index
/// changed.
pub fn merge_referrers(index: &mut ImageIndex, entries: &[Descriptor]) -> bool {
    let mut changed = false;
    for e in entries {
        match index.manifests.iter_mut().find(|d| d.digest == e.digest) {
            Some(d) if d == e => {}
            Some(d) => {
                *d = e.clone();
                changed = true;
            }
            None => {
                index.manifests.push(e.clone());
                changed = true;
            }
        }
    }
    changed
}

/// `oci-layout` marker file contents.
pub const OCI_LAYOUT_FILE: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_serialization_is_stable_and_omits_absent_fields() {
        let d = Digest::of(b"x");
        let m = ImageManifest {
            schema_version: 2,
            media_type: IMAGE_MANIFEST_MEDIA_TYPE.into(),
            artifact_type: Some(ARTIFACT_TYPE.into()),
            config: Descriptor::new("c", d, 1),
            layers: vec![],
            subject: None,
            annotations: BTreeMap::from([("b".into(), "2".into()), ("a".into(), "1".into())]),
        };
        let json = String::from_utf8(m.to_canonical_json()).unwrap();
        let r = m.referrer_descriptor(json.as_bytes());
        assert_eq!(r.artifact_type.as_deref(), Some(ARTIFACT_TYPE));
        let mut index = ImageIndex::empty();
        assert!(merge_referrers(&mut index, &[r.clone(), r.clone()]));
        assert!(!merge_referrers(&mut index, std::slice::from_ref(&r)));
        assert_eq!(index.manifests.len(), 1);
        assert!(is_referrers_tag(&referrers_tag(&d)));
        assert!(!is_referrers_tag("sha256-abc"));
        assert_eq!(
            json,
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{IMAGE_MANIFEST_MEDIA_TYPE}","artifactType":"{ARTIFACT_TYPE}","config":{{"mediaType":"c","digest":"{d}","size":1}},"layers":[],"annotations":{{"a":"1","b":"2"}}}}"#
            )
        );
    }
}
