//! Where release artifacts live: OCI content stores.
//!
//! [`layout::LayoutStore`], an OCI image layout folder on disk (the default
//! store, used when no registry is configured), and [`registry::RegistryStore`],
//! an OCI distribution registry. They speak only OCI: descriptors, blobs,
//! manifests and tags. It never interprets the squizzle manifest, never
//! touches SQL, and never prints.

pub mod layout;
pub mod registry;

use std::path::PathBuf;

use crate::core::digest::Digest;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path} is not an OCI image layout: {reason}")]
    NotALayout { path: PathBuf, reason: String },
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("blob {digest} is missing from the store at {path}")]
    MissingBlob { digest: Digest, path: PathBuf },
    #[error(
        "blob {path} does not match its digest: expected {expected} ({expected_size} bytes), found {actual} ({actual_size} bytes)"
    )]
    DigestMismatch {
        path: PathBuf,
        expected: Digest,
        actual: Digest,
        expected_size: u64,
        actual_size: u64,
    },
    #[error("blob {digest} is larger than the {limit} bytes allowed for a {what}")]
    TooLarge {
        digest: Digest,
        limit: u64,
        what: &'static str,
    },
    #[error("{path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "tag {tag:?} is not a valid OCI tag (letters, digits, '_', '.', '-'; at most 128 characters)"
    )]
    BadTag { tag: String },
    #[error("registry URL {value:?} is invalid: {reason}")]
    BadRegistryRef { value: String, reason: String },
    #[error("cannot reach the registry {registry}: {reason}")]
    RemoteUnreachable { registry: String, reason: String },
    #[error("the registry {registry} refused access: {reason}")]
    RemoteAuth { registry: String, reason: String },
    #[error("{what} does not exist in the registry {registry}")]
    RemoteNotFound { what: String, registry: String },
    #[error(
        "{what} from the registry {registry} does not match its digest: expected {expected}, found {actual}"
    )]
    RemoteDigestMismatch {
        what: String,
        registry: String,
        expected: String,
        actual: String,
    },
    #[error("registry {registry}: {reason}")]
    Registry { registry: String, reason: String },
    #[error("the registry {registry} does not support this for {what}: {reason}")]
    RemoteUnsupported {
        registry: String,
        what: String,
        reason: String,
    },
}

/// OCI tag grammar: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    tag.len() <= 128
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}
