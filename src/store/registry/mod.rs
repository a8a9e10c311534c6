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
//!   and its tag-schema fallback.
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
use std::net::IpAddr;
use std::sync::Mutex;

use bytes::Bytes;

pub mod auth;
mod client;
pub mod referrers;
mod repository;
pub mod retry;
mod transport;

// Kept for callers that name the events through the registry.
pub use super::progress::{Direction, TransferEvent};

use super::{BlobSource, BlobStream, StoreError, Target};
use crate::core::digest::Digest;
use crate::core::oci::Descriptor;
use client::Client;

/// Where a registry repository is, parsed from `host[:port]/path/repo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRef {
    /// `host` or `host:port` (IPv6 hosts in brackets).
    pub registry: String,
    pub repository: String,
}

impl RegistryRef {
    pub fn parse(value: &str) -> Result<Self, StoreError> {
        // Never echo credentials someone put in the URL.
        let shown = match value.rsplit_once('@') {
            Some((_, after)) => format!("***@{after}"),
            None => value.to_owned(),
        };
        let bad = |reason: String| StoreError::BadRegistryRef {
            value: shown.clone(),
            reason,
        };
        let v = value.trim();
        if let Some((scheme, rest)) = v.split_once("://") {
            let rest = rest.rsplit_once('@').map_or(rest, |(_, after)| after);
            let creds = if v.contains('@') {
                " and without credentials (put them in [registry] username/password as ${VAR}, or SQUIZZLE_REGISTRY_TOKEN)"
            } else {
                ""
            };
            return Err(bad(format!(
                "write it without the scheme ({scheme}://){creds}: `{rest}`; squizzle uses HTTPS, or plain HTTP for loopback hosts and `insecure = true`"
            )));
        }
        if v.contains('@') {
            return Err(bad(
                "it must not contain credentials or a digest; put credentials in [registry] username/password (as ${VAR}) or SQUIZZLE_REGISTRY_TOKEN".into(),
            ));
        }
        let (registry, repository) = v.split_once('/').ok_or_else(|| {
            bad("expected host[:port]/repository, e.g. ghcr.io/acme/migrations".into())
        })?;
        let repository = repository.trim_end_matches('/');
        validate_host(registry).map_err(bad)?;
        if repository.is_empty() {
            return Err(bad("the repository path is empty".into()));
        }
        for part in repository.split('/') {
            if !valid_path_component(part) {
                return Err(bad(format!(
                    "repository path component {part:?} is invalid: lowercase letters and digits, separated by '.', '_', '__' or '-'; the tag is the version and is not part of the URL"
                )));
            }
        }
        Ok(Self {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
        })
    }

    /// The host without port or brackets.
    pub fn host(&self) -> &str {
        let r = self.registry.as_str();
        if let Some(rest) = r.strip_prefix('[') {
            return rest.split(']').next().unwrap_or(rest);
        }
        r.rsplit_once(':').map_or(r, |(h, _)| h)
    }

    /// localhost, 127.0.0.0/8 or ::1.
    pub fn is_loopback(&self) -> bool {
        let host = self.host();
        host.eq_ignore_ascii_case("localhost")
            || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

impl std::fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)
    }
}

fn validate_host(registry: &str) -> Result<(), String> {
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("host {registry:?} has an unclosed '['"))?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{h:?} is not an IPv6 address"));
        }
        (None, after.strip_prefix(':'))
    } else {
        match registry.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(registry), None),
        }
    };
    if let Some(h) = host {
        let ok = !h.is_empty()
            && h.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !ok {
            return Err(format!("{h:?} is not a valid host name"));
        }
    }
    if let Some(p) = port
        && p.parse::<u16>().map_or(true, |p| p == 0)
    {
        return Err(format!("port {p:?} is not a valid port number"));
    }
    Ok(())
}

/// Distribution spec: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_path_component(part: &str) -> bool {
    let b = part.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    if !part
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
    {
        return false;
    }
    // Separators: '.', '_', '__' or a run of '-'; never mixed or doubled otherwise.
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let sep = &part[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-')) {
            return false;
        }
    }
    true
}

/// How to reach and authenticate to a registry.
#[derive(Clone, Default)]
pub struct RegistryOptions {
    pub username: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    /// Docker's identity token (an OAuth2 refresh token), exchanged at the
    /// registry's token service.
    pub identity_token: Option<String>,
    /// Allow plain HTTP to a non-loopback host.
    pub insecure: bool,
    /// PEM CA certificate(s) to trust in addition to the system roots.
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for RegistryOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryOptions")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field(
                "identity_token",
                &self.identity_token.as_ref().map(|_| "***"),
            )
            .field("insecure", &self.insecure)
            .finish()
    }
}

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
        RegistryStore::resolve(self, tag).await
    }

    async fn tags(&self) -> Result<Vec<String>, StoreError> {
        self.tags_paginated().await
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
        RegistryStore::referrers(self, subject, artifact_type).await
    }

    async fn push_referrer(&self, bytes: &[u8]) -> Result<Descriptor, StoreError> {
        self.push_referrer_manifest(bytes).await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        let r = RegistryRef::parse("127.0.0.1:5000/acme/db-migrations").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "acme/db-migrations");
        assert!(r.is_loopback());
        let r = RegistryRef::parse("ghcr.io/acme/migrations").unwrap();
        assert_eq!(r.host(), "ghcr.io");
        assert!(!r.is_loopback());
        assert!(RegistryRef::parse("localhost/x").unwrap().is_loopback());
        assert!(RegistryRef::parse("[::1]:5000/x").unwrap().is_loopback());
        assert!(
            RegistryRef::parse("127.8.9.1:80/a/b__c/d-e")
                .unwrap()
                .is_loopback()
        );
    }

    #[test]
    fn refuses_bad_references_and_says_what_to_write() {
        for (bad, hint) in [
            ("https://ghcr.io/acme/m", "`ghcr.io/acme/m`"),
            ("user:pw@ghcr.io/acme/m", "credentials"),
            ("ghcr.io", "host[:port]/repository"),
            ("ghcr.io/", "empty"),
            ("ghcr.io/Acme/m", "Acme"),
            ("ghcr.io/acme/m:1.0.0", "m:1.0.0"),
            ("ghcr.io:0/acme", "port"),
            ("gh cr.io/acme", "host"),
            ("ghcr.io/a..b", "a..b"),
        ] {
            let e = RegistryRef::parse(bad).unwrap_err().to_string();
            assert!(e.contains(hint), "{bad}: {e}");
        }
        let e = RegistryRef::parse("https://u:secretpw@h/r").unwrap_err();
        assert!(matches!(e, StoreError::BadRegistryRef { .. }));
    }
}
