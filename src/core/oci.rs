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
        assert_eq!(
            json,
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{IMAGE_MANIFEST_MEDIA_TYPE}","artifactType":"{ARTIFACT_TYPE}","config":{{"mediaType":"c","digest":"{d}","size":1}},"layers":[],"annotations":{{"a":"1","b":"2"}}}}"#
            )
        );
    }
}
