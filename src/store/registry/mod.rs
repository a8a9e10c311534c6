//! An OCI distribution registry as a store: the other [`super::Target`]
//! beside [`super::layout::LayoutStore`].
//!
//! One HTTP client in layers, as oras-go's `registry/remote` has it:
//! - `transport.rs`: one `reqwest` client (rustls with aws-lc-rs), the scheme
//!   (HTTPS, or plain HTTP for loopback hosts and `insecure = true`) decided
//!   once, the redirect policy (a manifest redirected to another host is
//!   refused, a blob may go to a CDN), and the one map from a refusal to a
//!   [`StoreError`];
//! - `retry.rs`: the retry policy around every attempt (transient failures,
//!   capped jittered backoff, `Retry-After`);
//! - `auth.rs`: challenges, the one token exchange with its realm rule, a
//!   token cache per scope, and Docker's credential configuration;
//! - `client.rs`: the three put together;
//! - `repository.rs`: manifests, blobs (monolithic and chunked uploads), tags
//!   (with `Link` pagination), deletion; `referrers.rs`: the referrers API
//!   and its tag-schema fallback;
//! - `reference.rs`: `host[:port]/repository` and the connection options.
//!
//! Imports point down that list and never back: this file uses `client.rs`
//! and `reference.rs`; the operation files add methods to [`RegistryStore`]
//! and are imported by nobody.
//!
//! Rules:
//! - Manifest bytes are pushed exactly as given: the digest of those bytes is
//!   the release's identity, so nothing may re-serialize them.
//! - Everything read is checked against a digest computed here, whatever the
//!   registry's `Docker-Content-Digest` says (it is checked too when present).
//! - Blobs stream both ways; memory does not grow with a blob's size.
//! - No credential reaches an error: messages are built from status codes,
//!   registry error codes and URLs that never carry userinfo (refused at parse).

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;

pub mod auth;
mod client;
mod reference;
pub mod referrers;
mod repository;
pub mod retry;
mod transport;

pub use reference::{RegistryOptions, RegistryRef};

use super::progress::TransferEvent;

use super::{BlobSource, BlobStream, StoreError, Target};
use crate::core::digest::Digest;
use crate::core::oci::Descriptor;
use client::Client;

pub struct RegistryStore {
    reference: RegistryRef,
    client: Client,
    /// Manifest bytes seen by `resolve`, already digest-checked, so reading
    /// the manifest right after resolving it costs no second request.
    manifests: Mutex<HashMap<Digest, Bytes>>,
    /// Whether the registry has the referrers API, once known.
    referrers_api: Mutex<Option<bool>>,
}

impl std::fmt::Debug for RegistryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryStore")
            .field("reference", &self.reference)
            .finish_non_exhaustive()
    }
}

impl RegistryStore {
    pub fn new(reference: RegistryRef, opts: &RegistryOptions) -> Self {
        Self {
            client: Client::new(&reference, opts),
            reference,
            manifests: Mutex::new(HashMap::new()),
            referrers_api: Mutex::new(None),
        }
    }

    pub fn reference(&self) -> &RegistryRef {
        &self.reference
    }
}

impl Target for RegistryStore {
    fn name(&self) -> String {
        self.reference.to_string()
    }

    fn place(&self) -> String {
        format!("the registry {}", self.reference)
    }

    async fn resolve(&self, tag: &str) -> Result<Option<Descriptor>, StoreError> {
        self.resolve_tag(tag).await
    }

    async fn tags(&self) -> Result<Vec<String>, StoreError> {
        self.list_tags().await
    }

    async fn read_manifest(&self, desc: &Descriptor) -> Result<Vec<u8>, StoreError> {
        self.manifest(desc).await
    }

    async fn read_small_blob(&self, desc: &Descriptor, limit: u64) -> Result<Vec<u8>, StoreError> {
        self.small_blob(desc, limit).await
    }

    async fn has_blob(&self, desc: &Descriptor) -> Result<bool, StoreError> {
        self.blob_exists(desc).await
    }

    async fn open_blob(&self, desc: &Descriptor) -> Result<Box<dyn BlobSource + '_>, StoreError> {
        Ok(Box::new(RemoteBlob {
            store: self,
            desc: desc.clone(),
        }))
    }

    async fn push_blob(
        &self,
        desc: &Descriptor,
        blob: &dyn BlobSource,
        progress: &dyn Fn(&TransferEvent),
    ) -> Result<bool, StoreError> {
        self.upload(desc, blob, progress).await?;
        Ok(true)
    }

    async fn push_manifest(
        &self,
        tag: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.put_manifest(tag, media_type, bytes).await
    }

    async fn referrers(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>, StoreError> {
        self.list_referrers(subject, artifact_type).await
    }

    async fn push_referrer(&self, bytes: &[u8]) -> Result<Descriptor, StoreError> {
        self.put_referrer_manifest(bytes).await
    }
}

/// A blob in the registry as a [`BlobSource`]: every `open` asks for it
/// again from its first byte.
struct RemoteBlob<'a> {
    store: &'a RegistryStore,
    desc: Descriptor,
}

impl BlobSource for RemoteBlob<'_> {
    fn open(&self) -> futures_util::future::LocalBoxFuture<'_, Result<BlobStream<'_>, StoreError>> {
        Box::pin(async move { Ok(self.store.blob_stream(self.desc.clone())) })
    }

    fn mismatch(
        &self,
        expected: &Descriptor,
        actual: Digest,
        actual_size: u64,
        too_long: bool,
    ) -> StoreError {
        StoreError::RemoteDigestMismatch {
            what: format!("blob {}", expected.digest),
            registry: self.store.registry_name(),
            expected: format!("{} ({} bytes)", expected.digest, expected.size),
            actual: if too_long {
                format!("more than {} bytes", expected.size)
            } else {
                format!("{actual} ({actual_size} bytes)")
            },
        }
    }
}
