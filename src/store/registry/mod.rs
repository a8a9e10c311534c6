//! An OCI distribution registry as a store, over `oci-client`.
//!
//! The other [`super::Target`] beside [`super::layout::LayoutStore`]: resolve
//! a tag to a descriptor, read a manifest by descriptor (size-capped,
//! digest-checked), ask for a blob, push a blob streaming from a file (one
//! `PUT` below 1 MiB, 4 MiB `PATCH` chunks above), pull a blob streaming into a
//! layout, push manifest bytes under a tag, list tags, referrers.
//!
//! Rules:
//! - Manifest bytes are pushed exactly as given (`push_manifest_raw`): the
//!   digest of those bytes is the release's identity, so no library may
//!   re-serialize them.
//! - Everything read is checked against a digest computed here, whatever the
//!   registry's `Docker-Content-Digest` says (it is checked too when present).
//! - Blobs stream in fixed-size chunks both ways; a pulled blob is written to a
//!   temporary file in the layout's blob folder and renamed only once its
//!   digest and size match.
//! - Manifests are read (by tag and by digest) over the raw client of
//!   `referrers.rs`, whose redirect policy refuses a manifest redirected to
//!   another host than the registry's ([`StoreError::RemoteRedirect`], exit 6);
//!   blobs go through oci-client and may be redirected (to a CDN).
//! - HTTPS always, except for loopback hosts or an explicit `insecure = true`.
//! - No credential reaches an error: messages are built from status codes,
//!   registry error codes and URLs that never carry userinfo (refused at parse).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

pub mod auth;
pub mod progress;
pub mod referrers;
pub mod retry;

pub use progress::{Direction, TransferEvent};

use super::layout::LayoutStore;
use super::{BlobReader, StoreError, Target};
use crate::core::digest::{Digest, Hasher};
use crate::core::oci::{self, Descriptor};

/// Size of one upload request (one `PATCH` per chunk) and of file reads.
const CHUNK: usize = 4 * 1024 * 1024;

/// Blobs smaller than this go up in a single `PUT` (a monolithic upload:
/// one request instead of a `POST`, `PATCH`es and a `PUT`); larger ones in a
/// chunked session of [`CHUNK`]-sized `PATCH`es, which is what a large
/// tarball needs to be sent without holding it in memory and restarted
/// cleanly. 1 MiB covers manifests, configs, signatures and small tarballs.
const MONOLITHIC_MAX: u64 = 1024 * 1024;

/// Manifest media types we ask for; anything else the registry returns is
/// reported by type, never parsed as ours.
const MANIFEST_ACCEPT: &[&str] = &[
    oci::IMAGE_MANIFEST_MEDIA_TYPE,
    oci::IMAGE_INDEX_MEDIA_TYPE,
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

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
            .field("insecure", &self.insecure)
            .finish()
    }
}

pub struct RegistryStore {
    reference: RegistryRef,
    client: Client,
    /// The same registry with `use_monolithic_push`: blobs below
    /// [`MONOLITHIC_MAX`] go up in one `PUT` instead of a session of `PATCH`es.
    monolithic: Client,
    auth: RegistryAuth,
    /// Manifest bytes seen by `resolve`, already digest-checked, so reading
    /// the manifest right after resolving it costs no second request.
    manifests: Mutex<HashMap<Digest, Bytes>>,
    /// Raw HTTP for referrers, deletion and paginated tags (`referrers.rs`).
    raw: referrers::Raw,
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
        let protocol = protocol_for(&reference, opts.insecure);
        let extra_root_certificates = opts
            .ca_pem
            .iter()
            .map(|pem| Certificate {
                encoding: CertificateEncoding::Pem,
                data: pem.clone(),
            })
            .collect();
        let config = |use_monolithic_push| ClientConfig {
            protocol: protocol.clone(),
            extra_root_certificates: Clone::clone(&extra_root_certificates),
            connect_timeout: Some(Duration::from_secs(15)),
            read_timeout: Some(Duration::from_secs(120)),
            user_agent: concat!("squizzle/", env!("CARGO_PKG_VERSION")),
            platform_resolver: None,
            use_monolithic_push,
            ..ClientConfig::default()
        };
        let auth = match (&opts.token, &opts.username, &opts.password) {
            (Some(t), _, _) if !t.is_empty() => RegistryAuth::Bearer(t.clone()),
            (_, Some(u), Some(p)) if !u.is_empty() => RegistryAuth::Basic(u.clone(), p.clone()),
            (_, Some(u), None) if !u.is_empty() => RegistryAuth::Basic(u.clone(), String::new()),
            _ => RegistryAuth::Anonymous,
        };
        Self {
            raw: referrers::Raw::new(&reference, opts),
            reference,
            client: Client::new(config(false)),
            monolithic: Client::new(config(true)),
            auth,
            manifests: Mutex::new(HashMap::new()),
        }
    }

    pub fn reference(&self) -> &RegistryRef {
        &self.reference
    }

    fn tag_ref(&self, tag: &str) -> Reference {
        Reference::with_tag(
            self.reference.registry.clone(),
            self.reference.repository.clone(),
            tag.to_owned(),
        )
    }

    fn digest_ref(&self, digest: &Digest) -> Reference {
        Reference::with_digest(
            self.reference.registry.clone(),
            self.reference.repository.clone(),
            digest.to_string(),
        )
    }

    async fn ensure_auth(&self) {
        for client in [&self.client, &self.monolithic] {
            client
                .store_auth_if_needed(&self.reference.registry, &self.auth)
                .await;
        }
    }

    fn err(&self, what: &str, e: OciDistributionError) -> StoreError {
        map_error(&self.reference, what, e)
    }

    /// The manifest a tag points at, if any (`GET` of the manifest: its digest
    /// is computed here from the bytes, and its size capped).
    pub async fn resolve(&self, tag: &str) -> Result<Option<Descriptor>, StoreError> {
        if !super::is_valid_tag(tag) {
            return Err(StoreError::BadTag {
                tag: tag.to_owned(),
            });
        }
        let what = format!("manifest {tag}");
        let (body, header_digest) = match self.fetch_manifest(tag, &what, None).await {
            Ok(r) => r,
            Err(StoreError::RemoteNotFound { .. }) => return Ok(None),
            Err(other) => return Err(other),
        };
        let digest = Digest::of(&body);
        if body.len() as u64 > oci::MAX_MANIFEST_BYTES {
            return Err(StoreError::TooLarge {
                digest,
                limit: oci::MAX_MANIFEST_BYTES,
                what: "manifest",
            });
        }
        if let Some(header_digest) = header_digest
            && header_digest != digest.to_string()
        {
            return Err(StoreError::RemoteDigestMismatch {
                what,
                registry: self.reference.to_string(),
                expected: header_digest,
                actual: digest.to_string(),
            });
        }
        let media_type = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("mediaType")
                    .and_then(|m| m.as_str())
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        let desc = Descriptor::new(&media_type, digest, body.len() as u64);
        self.lock_cache().insert(digest, body);
        Ok(Some(desc))
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, Bytes>> {
        self.manifests.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The bytes of the manifest `desc` names, checked against its digest and size.
    pub async fn read_manifest(&self, desc: &Descriptor) -> Result<Vec<u8>, StoreError> {
        if desc.size > oci::MAX_MANIFEST_BYTES {
            return Err(StoreError::TooLarge {
                digest: desc.digest,
                limit: oci::MAX_MANIFEST_BYTES,
                what: "manifest",
            });
        }
        let cached = self.lock_cache().get(&desc.digest).cloned();
        let body = match cached {
            Some(b) => b,
            None => {
                let what = format!("manifest {}", desc.digest);
                let (body, header_digest) = self
                    .fetch_manifest(&desc.digest.to_string(), &what, Some(&desc.digest))
                    .await?;
                if let Some(h) = header_digest
                    && h != desc.digest.to_string()
                {
                    return Err(StoreError::RemoteDigestMismatch {
                        what,
                        registry: self.reference.to_string(),
                        expected: desc.digest.to_string(),
                        actual: format!("Docker-Content-Digest {h}"),
                    });
                }
                body
            }
        };
        let actual = Digest::of(&body);
        if actual != desc.digest || body.len() as u64 != desc.size {
            return Err(StoreError::RemoteDigestMismatch {
                what: format!("manifest {}", desc.digest),
                registry: self.reference.to_string(),
                expected: format!("{} ({} bytes)", desc.digest, desc.size),
                actual: format!("{actual} ({} bytes)", body.len()),
            });
        }
        Ok(body.to_vec())
    }

    /// `HEAD` of a blob.
    pub async fn has_blob(&self, desc: &Descriptor) -> Result<bool, StoreError> {
        self.ensure_auth().await;
        let what = format!("blob {}", desc.digest);
        self.retrying(&what, async |_| {
            self.client
                .blob_exists(&self.tag_ref("latest"), &desc.digest.to_string())
                .await
                .map_err(|e| self.attempt_err(&what, e))
        })
        .await
    }

    /// Uploads the blob `desc` from `file` (in one request below 1 MiB, in
    /// 4 MiB chunks above), unless the registry has it already. The file is hashed while it is sent; if it does not match
    /// `desc`, the upload is abandoned before it is committed.
    pub async fn push_blob(&self, desc: &Descriptor, file: File) -> Result<bool, StoreError> {
        self.push_blob_with(desc, file, &progress::silent).await
    }

    /// [`Self::push_blob`], reporting progress to `progress`. A transient
    /// failure starts the upload over (a new upload session, the file read
    /// again from its start).
    pub async fn push_blob_with(
        &self,
        desc: &Descriptor,
        file: File,
        progress: &dyn Fn(&TransferEvent),
    ) -> Result<bool, StoreError> {
        if self.has_blob(desc).await? {
            return Ok(false);
        }
        let what = format!("upload of blob {}", desc.digest);
        self.retrying(&what, async |attempt| {
            let mut file = file.try_clone().map_err(|e| StoreError::Registry {
                registry: self.reference.to_string(),
                reason: format!("{what}: cannot reopen the local blob: {e}"),
            })?;
            io::Seek::rewind(&mut file).map_err(|e| StoreError::Registry {
                registry: self.reference.to_string(),
                reason: format!("{what}: cannot rewind the local blob: {e}"),
            })?;
            progress(&TransferEvent::Started {
                direction: Direction::Push,
                digest: desc.digest,
                media_type: desc.media_type.clone(),
                total: desc.size,
                attempt,
            });
            let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            let counter = sent.clone();
            let expected = desc.clone();
            let state = Some((file, Hasher::new()));
            let stream = futures_util::stream::unfold(state, move |state| {
                let expected = expected.clone();
                let counter = counter.clone();
                async move {
                    let (mut file, mut hasher) = state?;
                    let mut buf = vec![0u8; CHUNK];
                    let mut filled = 0;
                    while filled < CHUNK {
                        match file.read(&mut buf[filled..]) {
                            Ok(0) => break,
                            Ok(n) => filled += n,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => return Some((Err(OciDistributionError::IoError(e)), None)),
                        }
                    }
                    buf.truncate(filled);
                    hasher.update(&buf);
                    if hasher.len() > expected.size {
                        return Some((Err(local_mismatch(&expected, &hasher)), None));
                    }
                    if filled == 0 {
                        // End of file: only now is the whole blob known to match.
                        return if hasher.len() == expected.size
                            && hasher.clone().finish() == expected.digest
                        {
                            None
                        } else {
                            Some((Err(local_mismatch(&expected, &hasher)), None))
                        };
                    }
                    counter.store(hasher.len(), std::sync::atomic::Ordering::Relaxed);
                    Some((Ok(Bytes::from(buf)), Some((file, hasher))))
                }
            });
            let (image, digest) = (self.tag_ref("latest"), desc.digest.to_string());
            // One `PUT` for a small blob; a chunked session above.
            let client = if desc.size < MONOLITHIC_MAX {
                &self.monolithic
            } else {
                &self.client
            };
            let upload = client.push_blob_stream(&image, stream, &digest, Some(desc.size));
            progress::with_ticks(upload, || {
                progress(&TransferEvent::Progress {
                    direction: Direction::Push,
                    digest: desc.digest,
                    done: sent.load(std::sync::atomic::Ordering::Relaxed),
                    total: desc.size,
                })
            })
            .await
            .map_err(|e| self.attempt_err(&what, e))
        })
        .await?;
        progress(&TransferEvent::Finished {
            direction: Direction::Push,
            digest: desc.digest,
            bytes: desc.size,
        });
        Ok(true)
    }

    /// Downloads the blob `desc` into `dest`'s blob folder: streamed into a
    /// temporary file, checked against the digest and size, then renamed.
    pub async fn pull_blob(&self, desc: &Descriptor, dest: &LayoutStore) -> Result<(), StoreError> {
        self.pull_blob_with(desc, dest, &progress::silent).await
    }

    /// [`Self::pull_blob`], reporting progress to `progress`. A transient
    /// failure (including a connection cut mid-body or a body cut short)
    /// starts over from the first byte into a new temporary file; the
    /// previous one is removed first, so the blob folder never keeps a
    /// partial download.
    pub async fn pull_blob_with(
        &self,
        desc: &Descriptor,
        dest: &LayoutStore,
        progress: &dyn Fn(&TransferEvent),
    ) -> Result<(), StoreError> {
        self.ensure_auth().await;
        let what = format!("blob {}", desc.digest);
        let layer = oci_client::manifest::OciDescriptor {
            media_type: desc.media_type.clone(),
            digest: desc.digest.to_string(),
            size: i64::try_from(desc.size).unwrap_or(i64::MAX),
            ..Default::default()
        };
        let dir = dest.root().join("blobs/sha256");
        let io_err = |source| StoreError::Io {
            path: dir.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io_err)?;
        let tmp = self
            .retrying(&what, async |attempt| {
                let mut stream = self
                    .client
                    .pull_blob_stream(&self.digest_ref(&desc.digest), &layer)
                    .await
                    .map_err(|e| self.attempt_err(&what, e))?;
                progress(&TransferEvent::Started {
                    direction: Direction::Pull,
                    digest: desc.digest,
                    media_type: desc.media_type.clone(),
                    total: desc.size,
                    attempt,
                });
                // Dropped (and so deleted) when this attempt fails.
                let mut tmp = tempfile::Builder::new()
                    .prefix(".tmp-pull-")
                    .tempfile_in(&dir)
                    .map_err(io_err)?;
                let mut hasher = Hasher::new();
                let mut too_long = false;
                while let Some(item) = stream.next().await {
                    match item {
                        Ok(chunk) => {
                            hasher.update(&chunk);
                            if hasher.len() > desc.size {
                                too_long = true;
                                break;
                            }
                            tmp.write_all(&chunk).map_err(io_err)?;
                            progress(&TransferEvent::Progress {
                                direction: Direction::Pull,
                                digest: desc.digest,
                                done: hasher.len(),
                                total: desc.size,
                            });
                        }
                        // oci-client checks the digest itself once the last chunk has
                        // been delivered, and reports a mismatch as an I/O error wrapping
                        // a DigestError: by then every byte went through `hasher`, so
                        // the comparison below reports it with the actual digest.
                        Err(e)
                            if e.get_ref().is_some_and(|inner| {
                                inner.is::<oci_client::errors::DigestError>()
                            }) =>
                        {
                            break;
                        }
                        Err(e) => {
                            return Err(self.attempt_err(&what, OciDistributionError::IoError(e)));
                        }
                    }
                }
                let actual_size = hasher.len();
                let actual = hasher.finish();
                if too_long || actual != desc.digest || actual_size != desc.size {
                    // A body that ends early without an error is a cut
                    // connection, not different content: worth another try.
                    if !too_long && actual_size < desc.size {
                        return Err(retry::Attempt::unavailable(StoreError::RemoteUnreachable {
                            registry: self.reference.to_string(),
                            reason: format!(
                                "{what}: the response ended after {actual_size} of {} bytes",
                                desc.size
                            ),
                        }));
                    }
                    let mismatch = StoreError::RemoteDigestMismatch {
                        what: what.clone(),
                        registry: self.reference.to_string(),
                        expected: format!("{} ({} bytes)", desc.digest, desc.size),
                        actual: if too_long {
                            format!("more than {} bytes", desc.size)
                        } else {
                            format!("{actual} ({actual_size} bytes)")
                        },
                    };
                    return Err(mismatch.into());
                }
                Ok(tmp)
            })
            .await?;
        tmp.as_file().sync_all().map_err(io_err)?;
        tmp.persist(dest.blob_path(&desc.digest))
            .map_err(|e| io_err(e.error))?;
        progress(&TransferEvent::Finished {
            direction: Direction::Pull,
            digest: desc.digest,
            bytes: desc.size,
        });
        Ok(())
    }

    /// `PUT`s `bytes` as the manifest tagged `tag`, exactly as given.
    pub async fn push_manifest(
        &self,
        tag: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        if !super::is_valid_tag(tag) {
            return Err(StoreError::BadTag {
                tag: tag.to_owned(),
            });
        }
        self.ensure_auth().await;
        let content_type = media_type.parse().map_err(|_| StoreError::Registry {
            registry: self.reference.to_string(),
            reason: format!("media type {media_type:?} is not a valid header value"),
        })?;
        let what = format!("manifest {tag}");
        self.retrying(&what, async |_| {
            self.client
                .push_manifest_raw(
                    &self.tag_ref(tag),
                    bytes.to_vec(),
                    Clone::clone(&content_type),
                )
                .await
                .map_err(|e| self.attempt_err(&what, e))
        })
        .await?;
        // Drop any cached copy of an older manifest for this content.
        self.lock_cache().remove(&Digest::of(bytes));
        Ok(())
    }

    /// Every tag of the repository (empty if it does not exist yet).
    pub async fn tags(&self) -> Result<Vec<String>, StoreError> {
        self.ensure_auth().await;
        match self
            .retrying("tag list", async |_| {
                self.client
                    .list_tags(&self.tag_ref("latest"), &self.auth, None, None)
                    .await
                    .map_err(|e| self.attempt_err("tag list", e))
            })
            .await
        {
            Ok(r) => Ok(r.tags),
            Err(StoreError::RemoteNotFound { .. }) => Ok(Vec::new()),
            Err(other) => Err(other),
        }
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
        RegistryStore::tags(self).await
    }

    async fn read_manifest(&self, desc: &Descriptor) -> Result<Vec<u8>, StoreError> {
        RegistryStore::read_manifest(self, desc).await
    }

    async fn read_small_blob(&self, desc: &Descriptor, limit: u64) -> Result<Vec<u8>, StoreError> {
        self.ensure_auth().await;
        self.read_blob_bytes(desc, limit).await
    }

    async fn has_blob(&self, desc: &Descriptor) -> Result<bool, StoreError> {
        RegistryStore::has_blob(self, desc).await
    }

    async fn open_blob(&self, _desc: &Descriptor) -> Result<BlobReader<'_>, StoreError> {
        // The destination fetches it (see `BlobReader`), under the retry policy.
        Ok(BlobReader::Registry(self))
    }

    async fn push_blob(
        &self,
        desc: &Descriptor,
        blob: BlobReader<'_>,
        progress: &dyn Fn(&TransferEvent),
    ) -> Result<bool, StoreError> {
        match blob {
            BlobReader::File(file) => self.push_blob_with(desc, file, progress).await,
            BlobReader::Registry(from) => {
                if RegistryStore::has_blob(self, desc).await? {
                    return Ok(false);
                }
                Err(StoreError::RemoteUnsupported {
                    registry: self.reference.to_string(),
                    what: format!("blob {}", desc.digest),
                    reason: format!(
                        "copying straight from the registry {} is not implemented; pull into the local store first",
                        from.reference
                    ),
                })
            }
        }
    }

    async fn push_manifest(
        &self,
        tag: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        RegistryStore::push_manifest(self, tag, media_type, bytes).await
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

/// HTTPS, except plain HTTP for this one registry when it is on loopback or
/// `insecure = true` allows it.
fn protocol_for(reference: &RegistryRef, insecure: bool) -> ClientProtocol {
    if reference.is_loopback() || insecure {
        ClientProtocol::HttpsExcept(vec![reference.registry.clone()])
    } else {
        ClientProtocol::Https
    }
}

fn local_mismatch(expected: &Descriptor, hasher: &Hasher) -> OciDistributionError {
    OciDistributionError::GenericError(Some(format!(
        "the local blob does not match {} ({} bytes); read {} bytes with another content",
        expected.digest,
        expected.size,
        hasher.len()
    )))
}

/// Sorts an oci-client error into the kinds the CLI gives exit codes to.
fn map_error(reference: &RegistryRef, what: &str, e: OciDistributionError) -> StoreError {
    let registry = reference.to_string();
    let auth = |detail: &str| StoreError::RemoteAuth {
        registry: registry.clone(),
        reason: format!(
            "{what}: {detail}; check [registry] username/password or SQUIZZLE_REGISTRY_TOKEN"
        ),
    };
    let not_found = || StoreError::RemoteNotFound {
        what: what.to_owned(),
        registry: registry.clone(),
    };
    let other = |reason: String| StoreError::Registry {
        registry: registry.clone(),
        reason: format!("{what}: {reason}"),
    };
    match e {
        OciDistributionError::UnauthorizedError { .. } => {
            auth("the registry refused the credentials (401 Unauthorized)")
        }
        OciDistributionError::AuthenticationFailure(_) => {
            auth("the token service refused the credentials")
        }
        OciDistributionError::ServerError { code: 401, .. } => {
            auth("the registry refused the credentials (401 Unauthorized)")
        }
        OciDistributionError::ServerError { code: 403, .. } => {
            auth("access denied (403 Forbidden)")
        }
        OciDistributionError::ServerError { code: 404, .. }
        | OciDistributionError::ImageManifestNotFoundError(_) => not_found(),
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            let text = envelope
                .errors
                .iter()
                .map(|e| format!("{:?}: {}", e.code, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized))
            {
                auth("the registry refused the credentials")
            } else if codes.iter().any(|c| matches!(c, OciErrorCode::Denied)) {
                auth("access denied")
            } else if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NameUnknown
                )
            }) {
                not_found()
            } else if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::DigestInvalid | OciErrorCode::SizeInvalid))
            {
                StoreError::RemoteDigestMismatch {
                    what: what.to_owned(),
                    registry: registry.clone(),
                    expected: "content matching its digest".into(),
                    actual: text,
                }
            } else {
                other(text)
            }
        }
        OciDistributionError::DigestError(d) => StoreError::RemoteDigestMismatch {
            what: what.to_owned(),
            registry: registry.clone(),
            expected: "content matching its digest".into(),
            actual: d.to_string(),
        },
        OciDistributionError::RequestError(r) => {
            let chain = crate::core::errors::error_chain(&r);
            if r.is_connect() || r.is_timeout() {
                StoreError::RemoteUnreachable {
                    registry: registry.clone(),
                    reason: chain,
                }
            } else {
                other(chain)
            }
        }
        OciDistributionError::IoError(io) => {
            // reqwest errors inside a body stream arrive wrapped in io::Error.
            let chain = crate::core::errors::error_chain(&io);
            other(chain)
        }
        e => other(e.to_string()),
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
    fn plain_http_only_for_loopback_or_when_allowed() {
        let remote = RegistryRef::parse("ghcr.io/acme/m").unwrap();
        assert_eq!(protocol_for(&remote, false), ClientProtocol::Https);
        assert_eq!(
            protocol_for(&remote, true),
            ClientProtocol::HttpsExcept(vec!["ghcr.io".into()])
        );
        for local in [
            "127.0.0.1:5000/x",
            "localhost:5000/x",
            "[::1]:5000/x",
            "127.1.2.3/x",
        ] {
            let r = RegistryRef::parse(local).unwrap();
            assert_eq!(
                protocol_for(&r, false),
                ClientProtocol::HttpsExcept(vec![r.registry.clone()]),
                "{local}"
            );
        }
        // Names that merely start like loopback are not loopback.
        for remote in [
            "127.0.0.1.example.com/x",
            "localhost.example.com/x",
            "10.0.0.1/x",
        ] {
            let r = RegistryRef::parse(remote).unwrap();
            assert_eq!(protocol_for(&r, false), ClientProtocol::Https, "{remote}");
        }
    }

    #[test]
    fn errors_are_sorted_for_exit_codes() {
        let r = RegistryRef::parse("127.0.0.1:5000/acme/m").unwrap();
        let unauthorized = OciDistributionError::UnauthorizedError {
            url: "http://127.0.0.1:5000/v2/".into(),
        };
        assert!(matches!(
            map_error(&r, "x", unauthorized),
            StoreError::RemoteAuth { .. }
        ));
        for code in [401, 403] {
            let e = OciDistributionError::ServerError {
                code,
                url: String::new(),
                message: String::new(),
            };
            assert!(matches!(
                map_error(&r, "x", e),
                StoreError::RemoteAuth { .. }
            ));
        }
        let e = OciDistributionError::ServerError {
            code: 404,
            url: String::new(),
            message: String::new(),
        };
        assert!(matches!(
            map_error(&r, "x", e),
            StoreError::RemoteNotFound { .. }
        ));
        let envelope: oci_client::errors::OciEnvelope = serde_json::from_str(
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#,
        )
        .unwrap();
        let e = OciDistributionError::RegistryError {
            envelope,
            url: String::new(),
        };
        assert!(matches!(
            map_error(&r, "x", e),
            StoreError::RemoteNotFound { .. }
        ));
        let e =
            OciDistributionError::DigestError(oci_client::errors::DigestError::VerificationError {
                expected: "sha256:aa".into(),
                actual: "sha256:bb".into(),
            });
        assert!(matches!(
            map_error(&r, "x", e),
            StoreError::RemoteDigestMismatch { .. }
        ));
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
