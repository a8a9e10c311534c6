//! Where release artifacts live: OCI content stores.
//!
//! [`layout::LayoutStore`], an OCI image layout folder on disk (the default
//! store, used when no registry is configured), and [`registry::RegistryStore`],
//! an OCI distribution registry, are two implementations of one [`Target`]
//! (the oras-go idea): what a copy between two stores needs, so `ops/release/fetch.rs`
//! has one copy routine for every direction. They speak only OCI:
//! descriptors, blobs, manifests and tags. This module never interprets the
//! squizzle manifest, never touches SQL, and never prints.
//!
//! Imports point one way: `layout.rs` and `registry/` use this file and
//! `progress.rs`, never each other, and nothing in `registry/` is imported by
//! a file it imports.

pub mod layout;
pub mod progress;
pub mod registry;

use std::path::PathBuf;

use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use futures_util::stream::LocalBoxStream;

use crate::core::digest::Digest;
use crate::core::oci::Descriptor;
pub use progress::{Direction, TransferEvent};

/// The bytes of one blob in order, from the first; the stream ends after the
/// last byte. An error ends it for good: the source has already ridden out
/// what it could (a registry download cut mid-body is asked for again and
/// continued where it stopped).
pub type BlobStream<'a> = LocalBoxStream<'a, Result<Bytes, StoreError>>;

/// Where the bytes of one blob come from, handed by [`Target::open_blob`] of
/// the source to [`Target::push_blob`] of the destination: the capability to
/// open a fresh reader from the first byte, as often as the destination needs
/// (an upload the destination retries after a transient failure starts over
/// with a new reader). Whatever the source, the destination hashes every
/// byte while it writes and refuses a blob whose digest or size differs from
/// its descriptor; memory does not grow with the blob's size.
pub trait BlobSource {
    /// A reader from the first byte.
    fn open(&self) -> LocalBoxFuture<'_, Result<BlobStream<'_>, StoreError>>;

    /// The error for bytes from this source that do not match `expected`
    /// (`too_long`: more than `expected.size` came; `actual` and
    /// `actual_size` are what was read), naming the source.
    fn mismatch(
        &self,
        expected: &Descriptor,
        actual: Digest,
        actual_size: u64,
        too_long: bool,
    ) -> StoreError;
}

/// One OCI content store, as a copy sees it: tags resolve to manifest
/// descriptors, manifests and blobs are addressed by descriptor and checked
/// against it on every read and write.
///
/// Static dispatch only (`copy_release<S: Target, D: Target>`), on the
/// current-thread runtime: the futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait Target {
    /// How the store is named in reports and messages.
    fn name(&self) -> String;

    /// The store in a sentence: `the registry …`, `the local store …`.
    fn place(&self) -> String;

    /// The manifest `tag` points at, if any.
    async fn resolve(&self, tag: &str) -> Result<Option<Descriptor>, StoreError>;

    /// Every tag (unordered; empty for a store that has none yet).
    async fn tags(&self) -> Result<Vec<String>, StoreError>;

    /// The bytes of the manifest `desc` names: size-capped, digest-checked.
    async fn read_manifest(&self, desc: &Descriptor) -> Result<Vec<u8>, StoreError>;

    /// A small blob, read whole, refusing more than `limit` bytes and anything
    /// that does not match `desc`.
    async fn read_small_blob(&self, desc: &Descriptor, limit: u64) -> Result<Vec<u8>, StoreError>;

    /// Whether the store holds the blob `desc` names (same digest and size).
    async fn has_blob(&self, desc: &Descriptor) -> Result<bool, StoreError>;

    /// The blob `desc` names, for [`Target::push_blob`] of another store.
    async fn open_blob(&self, desc: &Descriptor) -> Result<Box<dyn BlobSource + '_>, StoreError>;

    /// Stores the blob `desc` from `blob`, verifying digest and size while
    /// writing; nothing unverified becomes visible. The caller has asked
    /// [`Target::has_blob`] already (one existence check per blob): this
    /// writes. Returns whether bytes were transferred (`false`: a local
    /// store found it there after all).
    async fn push_blob(
        &self,
        desc: &Descriptor,
        blob: &dyn BlobSource,
        progress: &dyn Fn(&TransferEvent),
    ) -> Result<bool, StoreError>;

    /// Stores `bytes` exactly as given as the manifest tagged `tag`. Its
    /// config and layers must be in the store already.
    async fn push_manifest(
        &self,
        tag: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError>;

    /// The referrers of `subject`, optionally only those of one `artifact_type`.
    async fn referrers(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>, StoreError>;

    /// Stores the exact bytes of a referrer manifest (an OCI image manifest
    /// with a `subject`; its blobs must be in the store already) and makes it
    /// discoverable as a referrer of its subject.
    async fn push_referrer(&self, bytes: &[u8]) -> Result<Descriptor, StoreError>;
}

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
    /// Exit 6 (integrity): an untrusted source for content that is only
    /// trusted because it comes from the registry.
    #[error(
        "the registry {registry} redirected the {what} request to {to}; squizzle refuses manifests from anywhere but the registry itself"
    )]
    RemoteRedirect {
        registry: String,
        what: String,
        to: String,
    },
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
