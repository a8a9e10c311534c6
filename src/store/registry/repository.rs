//! Repository operations of a registry store (OCI distribution spec):
//! manifests (`GET`, `PUT`), blobs (`HEAD`, `GET` streamed, uploads),
//! tags (`Link` pagination) and deletion, each sent through the store's one
//! client (`client.rs`: retry, then authentication, then the transport).
//!
//! Uploads: a blob below [`MONOLITHIC_MAX`] goes up in one `PUT` after the
//! `POST` that opens the session; a larger one streams in one `PATCH`
//! (read from the source in [`CHUNK`]s, a few at most in memory) and an empty
//! closing `PUT`. A whole session is one attempt of the retry policy:
//! a transient failure anywhere starts a new session with the source opened
//! again from its first byte. The bytes are hashed as they are sent and the
//! closing `PUT` only goes out when they match the descriptor.
//!
//! Downloads: a blob body cut mid-way (or ending early) is asked for again
//! under the retry policy and continued where it stopped; the reader's
//! digest check covers the seam.

use std::collections::HashMap;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::stream::LocalBoxStream;
use reqwest::{Method, StatusCode};

use super::RegistryStore;
use super::client::ERROR_BODY_LIMIT;
use super::retry::{self, Attempt};
use super::transport::{Answer, Request};
use crate::core::digest::{Digest, Hasher};
use crate::core::oci::{self, Descriptor};
use crate::store::progress::{self, Direction, TransferEvent};
use crate::store::{BlobSource, BlobStream, StoreError, is_valid_tag};

/// Size of one read from the source during an upload.
const CHUNK: usize = 1024 * 1024;

/// Blobs smaller than this go up in a single `PUT` (one request instead of
/// a `PATCH` and a `PUT`); larger ones stream in one `PATCH`, which is what
/// a large tarball needs to be sent without holding it in memory. 1 MiB
/// covers manifests, configs, signatures and small tarballs.
const MONOLITHIC_MAX: u64 = 1024 * 1024;

/// Pages of a paginated tag list followed at most.
pub(super) const MAX_PAGES: usize = 10_000;

/// Manifest media types we ask for; anything else the registry returns is
/// reported by type, never parsed as ours.
const MANIFEST_ACCEPT: &[&str] = &[
    oci::IMAGE_MANIFEST_MEDIA_TYPE,
    oci::IMAGE_INDEX_MEDIA_TYPE,
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

#[derive(serde::Deserialize)]
struct TagPage {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl RegistryStore {
    pub(super) fn registry_name(&self) -> String {
        self.reference.to_string()
    }

    /// `<origin>/v2/<repository>/<rest>`
    pub(super) fn repo_url(&self, rest: &str) -> String {
        format!(
            "{}/v2/{}/{rest}",
            self.client.transport().origin(),
            self.reference.repository
        )
    }

    pub(super) fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, Bytes>> {
        self.manifests.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The manifest a tag points at, if any (`GET` of the manifest: its digest
    /// is computed here from the bytes, and its size capped).
    pub(super) async fn resolve_tag(&self, tag: &str) -> Result<Option<Descriptor>, StoreError> {
        if !is_valid_tag(tag) {
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
        if let Some(header_digest) = header_digest
            && header_digest != digest.to_string()
        {
            return Err(StoreError::RemoteDigestMismatch {
                what,
                registry: self.registry_name(),
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

    /// The bytes of the manifest `desc` names, checked against its digest and size.
    pub(super) async fn manifest(&self, desc: &Descriptor) -> Result<Vec<u8>, StoreError> {
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
                        registry: self.registry_name(),
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
                registry: self.registry_name(),
                expected: format!("{} ({} bytes)", desc.digest, desc.size),
                actual: format!("{actual} ({} bytes)", body.len()),
            });
        }
        Ok(body.to_vec())
    }

    /// `GET` of the manifest `reference` (a tag or a digest) with the OCI and
    /// Docker manifest and index types accepted: its bytes (at most
    /// [`oci::MAX_MANIFEST_BYTES`]; reading stops once the cap is passed) and
    /// its `Docker-Content-Digest`, if given. The caller checks the digest.
    async fn fetch_manifest(
        &self,
        reference: &str,
        what: &str,
        expected: Option<&Digest>,
    ) -> Result<(Bytes, Option<String>), StoreError> {
        let accept = MANIFEST_ACCEPT.join(", ");
        let answer = self
            .client
            .request(Request {
                what,
                method: Method::GET,
                url: &self.repo_url(&format!("manifests/{reference}")),
                headers: &[("Accept", &accept)],
                body: None,
                limit: oci::MAX_MANIFEST_BYTES,
            })
            .await?;
        if !answer.status.is_success() {
            return Err(self.client.transport().status_err(what, &answer));
        }
        let header_digest = answer
            .header("Docker-Content-Digest")
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_owned);
        if answer.overflow {
            let digest = expected
                .copied()
                .or_else(|| header_digest.as_deref().and_then(|d| d.parse().ok()))
                .unwrap_or_else(|| Digest::of(&answer.body));
            return Err(StoreError::TooLarge {
                digest,
                limit: oci::MAX_MANIFEST_BYTES,
                what: "manifest",
            });
        }
        Ok((answer.body, header_digest))
    }

    /// `PUT`s `bytes` as the manifest `reference` (a tag or a digest),
    /// exactly as given; the answer, for the caller to read headers from.
    pub(super) async fn send_manifest(
        &self,
        reference: &str,
        what: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Answer, StoreError> {
        let answer = self
            .client
            .request(Request {
                what,
                method: Method::PUT,
                url: &self.repo_url(&format!("manifests/{reference}")),
                headers: &[("Content-Type", media_type)],
                body: Some(Bytes::copy_from_slice(bytes)),
                limit: ERROR_BODY_LIMIT,
            })
            .await?;
        if !answer.status.is_success() {
            return Err(self.client.transport().status_err(what, &answer));
        }
        // Drop any cached copy of an older manifest for this content.
        self.lock_cache().remove(&Digest::of(bytes));
        Ok(answer)
    }

    /// `PUT`s `bytes` as the manifest tagged `tag`, exactly as given.
    pub(super) async fn put_manifest(
        &self,
        tag: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        if !is_valid_tag(tag) {
            return Err(StoreError::BadTag {
                tag: tag.to_owned(),
            });
        }
        if reqwest::header::HeaderValue::from_str(media_type).is_err() {
            return Err(StoreError::Registry {
                registry: self.registry_name(),
                reason: format!("media type {media_type:?} is not a valid header value"),
            });
        }
        self.send_manifest(tag, &format!("manifest {tag}"), media_type, bytes)
            .await?;
        Ok(())
    }

    /// `HEAD` of a blob: whether the registry has it.
    pub(super) async fn blob_exists(&self, desc: &Descriptor) -> Result<bool, StoreError> {
        let what = format!("blob {}", desc.digest);
        let answer = self
            .client
            .request(Request {
                what: &what,
                method: Method::HEAD,
                url: &self.repo_url(&format!("blobs/{}", desc.digest)),
                headers: &[],
                body: None,
                limit: 0,
            })
            .await?;
        match answer.status {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.client.transport().status_err(&what, &answer)),
        }
    }

    /// Reads a small blob into memory, refusing more than `limit` bytes and
    /// anything that does not match `desc`.
    pub(super) async fn small_blob(
        &self,
        desc: &Descriptor,
        limit: u64,
    ) -> Result<Vec<u8>, StoreError> {
        let what = format!("blob {}", desc.digest);
        if desc.size > limit {
            return Err(StoreError::TooLarge {
                digest: desc.digest,
                limit,
                what: "small blob",
            });
        }
        let answer = self
            .client
            .request(Request {
                what: &what,
                method: Method::GET,
                url: &self.repo_url(&format!("blobs/{}", desc.digest)),
                headers: &[],
                body: None,
                limit: desc.size,
            })
            .await?;
        if !answer.status.is_success() {
            return Err(self.client.transport().status_err(&what, &answer));
        }
        let size = answer.body.len() as u64;
        let actual = Digest::of(&answer.body);
        if answer.overflow || actual != desc.digest || size != desc.size {
            return Err(StoreError::RemoteDigestMismatch {
                what,
                registry: self.registry_name(),
                expected: format!("{} ({} bytes)", desc.digest, desc.size),
                actual: if answer.overflow {
                    format!("more than {} bytes", desc.size)
                } else {
                    format!("{actual} ({size} bytes)")
                },
            });
        }
        Ok(answer.body.to_vec())
    }

    /// Uploads a small in-memory blob unless the registry has it.
    pub(super) async fn push_blob_bytes(
        &self,
        media_type: &str,
        data: &[u8],
    ) -> Result<Descriptor, StoreError> {
        let desc = Descriptor::new(media_type, Digest::of(data), data.len() as u64);
        if !self.blob_exists(&desc).await? {
            let source = InMemory(Bytes::copy_from_slice(data));
            self.upload(&desc, &source, &progress::silent).await?;
        }
        Ok(desc)
    }

    /// The body of the blob `desc` from its first byte (module docs: a cut
    /// body is asked for again and continued where it stopped).
    pub(super) fn blob_stream(&self, desc: Descriptor) -> BlobStream<'_> {
        struct State<'s> {
            store: &'s RegistryStore,
            desc: Descriptor,
            what: String,
            body: Option<LocalBoxStream<'s, Result<Bytes, Attempt>>>,
            delivered: u64,
            skip: u64,
            cuts: u32,
            started: Instant,
        }
        let state = State {
            store: self,
            what: format!("blob {}", desc.digest),
            desc,
            body: None,
            delivered: 0,
            skip: 0,
            cuts: 0,
            started: Instant::now(),
        };
        futures_util::stream::unfold(Some(state), |state| async move {
            let mut st = state?;
            loop {
                let body = match st.body.as_mut() {
                    Some(b) => b,
                    None => match st.store.blob_body(&st.desc, &st.what).await {
                        Ok(b) => {
                            st.skip = st.delivered;
                            st.body.insert(b)
                        }
                        Err(e) => return Some((Err(e), None)),
                    },
                };
                let failure = match body.next().await {
                    Some(Ok(mut chunk)) => {
                        if st.skip > 0 {
                            let n = st.skip.min(chunk.len() as u64);
                            st.skip -= n;
                            chunk = chunk.slice(n as usize..);
                        }
                        if chunk.is_empty() {
                            continue;
                        }
                        st.delivered += chunk.len() as u64;
                        return Some((Ok(chunk), Some(st)));
                    }
                    Some(Err(failure)) => failure,
                    // A body that ends early without an error is a cut
                    // connection, not different content.
                    None if st.delivered < st.desc.size => {
                        Attempt::unavailable(StoreError::RemoteUnreachable {
                            registry: st.store.registry_name(),
                            reason: format!(
                                "{}: the response ended after {} of {} bytes",
                                st.what, st.delivered, st.desc.size
                            ),
                        })
                    }
                    None => return None,
                };
                st.body = None;
                st.cuts += 1;
                let Some(wait) = st
                    .store
                    .client
                    .retry_policy()
                    .next_wait(st.cuts, st.started, &failure)
                else {
                    let name = st.store.registry_name();
                    let e = retry::gave_up(&name, &st.what, st.cuts, st.started, failure);
                    return Some((Err(e), None));
                };
                tracing::info!(
                    attempt = st.cuts,
                    wait_ms = wait.as_millis() as u64,
                    "{} was cut after {} bytes; asking again",
                    st.what,
                    st.delivered
                );
                tokio::time::sleep(wait).await;
            }
        })
        .boxed_local()
    }

    /// `GET` of the blob `desc` under the retry policy, up to its headers;
    /// the body as a stream whose failures carry their retry verdict.
    async fn blob_body(
        &self,
        desc: &Descriptor,
        what: &str,
    ) -> Result<LocalBoxStream<'_, Result<Bytes, Attempt>>, StoreError> {
        let resp = self
            .client
            .open(Request {
                what,
                method: Method::GET,
                url: &self.repo_url(&format!("blobs/{}", desc.digest)),
                headers: &[],
                body: None,
                limit: 0,
            })
            .await?;
        let what = what.to_owned();
        let transport = self.client.transport();
        Ok(resp
            .bytes_stream()
            .map(move |item| item.map_err(|e| transport.http_err(&what, &e)))
            .boxed_local())
    }

    /// Uploads the blob `desc` from `source` (module docs), reporting progress
    /// to `progress`. The caller asked whether the registry has it already.
    pub(super) async fn upload(
        &self,
        desc: &Descriptor,
        source: &dyn BlobSource,
        progress: &dyn Fn(&TransferEvent),
    ) -> Result<(), StoreError> {
        let what = format!("upload of blob {}", desc.digest);
        self.client
            .retrying(&what, async |attempt| {
                progress(&TransferEvent::Started {
                    direction: Direction::Push,
                    digest: desc.digest,
                    media_type: desc.media_type.clone(),
                    total: desc.size,
                    attempt,
                });
                let sent = std::cell::Cell::new(0u64);
                let session = self.upload_session(desc, source, &what, &sent);
                progress::with_ticks(session, || {
                    progress(&TransferEvent::Progress {
                        direction: Direction::Push,
                        digest: desc.digest,
                        done: sent.get(),
                        total: desc.size,
                    })
                })
                .await
            })
            .await?;
        progress(&TransferEvent::Finished {
            direction: Direction::Push,
            digest: desc.digest,
            bytes: desc.size,
        });
        Ok(())
    }

    /// One upload session: `POST`, then one `PUT` with the whole blob, or
    /// one streamed `PATCH` and an empty closing `PUT`. `sent` counts the bytes handed
    /// over.
    async fn upload_session(
        &self,
        desc: &Descriptor,
        source: &dyn BlobSource,
        what: &str,
        sent: &std::cell::Cell<u64>,
    ) -> Result<(), Attempt> {
        // Fused: the last short read may be followed by one more.
        let mut chunks = source.open().await?.fuse().boxed_local();
        let mut hasher = Hasher::new();
        let mine = (self.registry_name(), what);
        let mut location = self
            .upload_step(
                what,
                Method::POST,
                &self.repo_url("blobs/uploads/"),
                &[],
                None,
            )
            .await?;
        let monolithic = desc.size < MONOLITHIC_MAX;
        let limit = if monolithic {
            MONOLITHIC_MAX as usize
        } else {
            CHUNK
        };
        let mut current = read_chunk(&mut chunks, limit).await?;
        account(&mut hasher, &current, desc, &mine)?;
        if !monolithic {
            // Chunked: the whole blob streams in one `PATCH` (the chunks of
            // the source go over a small channel to the request body, which
            // must be `Send + 'static`); the closing `PUT` is empty.
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
            let mismatch = std::cell::Cell::new(None);
            let feed = async {
                let mut next = std::mem::take(&mut current);
                loop {
                    if next.is_empty() {
                        // The stream must not end well with other content.
                        if hasher.len() != desc.size || hasher.clone().finish() != desc.digest {
                            let _ = tx
                                .send(Err(std::io::Error::other("local blob mismatch")))
                                .await;
                            mismatch.set(Some(local_mismatch(&mine, desc, &hasher)));
                        }
                        return;
                    }
                    let len = next.len() as u64;
                    if tx.send(Ok(next)).await.is_err() {
                        return;
                    }
                    sent.set(sent.get() + len);
                    next = match read_chunk(&mut chunks, limit).await {
                        Ok(chunk) => chunk,
                        Err(e) => {
                            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                            mismatch.set(Some(e));
                            return;
                        }
                    };
                    if let Err(e) = account(&mut hasher, &next, desc, &mine) {
                        let _ = tx
                            .send(Err(std::io::Error::other("local blob mismatch")))
                            .await;
                        mismatch.set(Some(e));
                        return;
                    }
                }
            };
            let body = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|item| (item, rx))
            });
            let body = reqwest::Body::wrap_stream(body);
            let patch = self.upload_stream(what, &location, body, desc.size);
            let ((), patched) = tokio::join!(feed, patch);
            if let Some(e) = mismatch.take() {
                return Err(e.into());
            }
            location = patched?;
        }
        // Only now is the whole blob known to match.
        if hasher.len() != desc.size || hasher.clone().finish() != desc.digest {
            return Err(local_mismatch(&mine, desc, &hasher).into());
        }
        let separator = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{separator}digest={}", desc.digest);
        let len = current.len().to_string();
        let answer = self
            .client
            .attempt(&Request {
                what,
                method: Method::PUT,
                url: &url,
                headers: &[
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Length", &len),
                ],
                body: Some(current),
                limit: ERROR_BODY_LIMIT,
            })
            .await?;
        if !answer.status.is_success() {
            return Err(self.client.transport().refusal(what, &answer));
        }
        sent.set(desc.size);
        Ok(())
    }

    /// The streamed `PATCH` of a chunked upload: its answer's `Location`.
    /// Sent with the credential the session's `POST` settled on; a `401`
    /// here (a token that expired mid-upload) ends the attempt and the next
    /// one starts a new session.
    async fn upload_stream(
        &self,
        what: &str,
        location: &str,
        body: reqwest::Body,
        size: u64,
    ) -> Result<String, Attempt> {
        let transport = self.client.transport();
        let answer = self
            .client
            .attempt_streamed(what, location, body, size)
            .await?;
        session_location(transport, what, &answer)
    }

    /// One request of an upload session: its answer's `Location`, where the
    /// session goes on.
    async fn upload_step(
        &self,
        what: &str,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Bytes>,
    ) -> Result<String, Attempt> {
        let transport = self.client.transport();
        let answer = self
            .client
            .attempt(&Request {
                what,
                method,
                url,
                headers,
                body,
                limit: ERROR_BODY_LIMIT,
            })
            .await?;
        session_location(transport, what, &answer)
    }

    /// Every tag of the repository, following `Link` pagination (empty if the
    /// repository does not exist yet).
    pub(super) async fn list_tags(&self) -> Result<Vec<String>, StoreError> {
        let transport = self.client.transport();
        let mut url = self.repo_url("tags/list");
        let mut tags = Vec::new();
        for _ in 0..MAX_PAGES {
            let answer = self
                .client
                .request(Request {
                    what: "tag list",
                    method: Method::GET,
                    url: &url,
                    headers: &[],
                    body: None,
                    limit: oci::MAX_MANIFEST_BYTES,
                })
                .await?;
            if answer.status == StatusCode::NOT_FOUND {
                return Ok(tags);
            }
            if !answer.status.is_success() {
                return Err(transport.status_err("tag list", &answer));
            }
            if answer.overflow {
                return Err(transport.too_large("tag list", oci::MAX_MANIFEST_BYTES));
            }
            let page: TagPage = serde_json::from_slice(&answer.body)
                .map_err(|e| transport.failure("tag list", format!("not a tag list: {e}")))?;
            tags.extend(page.tags.unwrap_or_default());
            match answer.next_link() {
                None => return Ok(tags),
                Some(n) => match self.same_registry(&n) {
                    Some(next) => url = next,
                    None => {
                        return Err(transport.failure(
                            "tag list",
                            format!(
                                "the next page {n:?} is not on this registry; not following it"
                            ),
                        ));
                    }
                },
            }
        }
        Err(transport.failure("tag list", format!("more than {MAX_PAGES} pages")))
    }

    /// A `Link` target as an absolute URL, if it is on this registry.
    pub(super) fn same_registry(&self, target: &str) -> Option<String> {
        let origin = self.client.transport().origin();
        if target.starts_with('/') {
            Some(format!("{origin}{target}"))
        } else if target.starts_with(&format!("{origin}/")) {
            Some(target.to_owned())
        } else {
            None
        }
    }

    /// Deletes the manifest `digest` (and, on distribution, every tag pointing
    /// at it). A registry that does not allow deletion is
    /// [`StoreError::RemoteUnsupported`]; an unknown digest is
    /// [`StoreError::RemoteNotFound`].
    pub async fn delete_manifest(&self, digest: &Digest) -> Result<(), StoreError> {
        let what = format!("manifest {digest}");
        let answer = self
            .client
            .request(Request {
                what: &what,
                method: Method::DELETE,
                url: &self.repo_url(&format!("manifests/{digest}")),
                headers: &[],
                body: None,
                limit: ERROR_BODY_LIMIT,
            })
            .await?;
        // A retried DELETE may find that the attempt whose answer was lost
        // already deleted the manifest.
        if answer.status.is_success()
            || (answer.status == StatusCode::NOT_FOUND && answer.attempt > 1)
        {
            self.lock_cache().remove(digest);
            return Ok(());
        }
        Err(match self.client.transport().status_err(&what, &answer) {
            StoreError::RemoteUnsupported { registry, what, .. } => StoreError::RemoteUnsupported {
                registry,
                what,
                reason: "the registry does not allow deleting manifests (for distribution: storage.delete.enabled: true)".into(),
            },
            other => other,
        })
    }
}

/// A blob given in memory, as a [`BlobSource`].
struct InMemory(Bytes);

impl BlobSource for InMemory {
    fn open(&self) -> futures_util::future::LocalBoxFuture<'_, Result<BlobStream<'_>, StoreError>> {
        let bytes = self.0.clone();
        Box::pin(async move { Ok(futures_util::stream::iter([Ok(bytes)]).boxed_local()) })
    }

    fn mismatch(
        &self,
        expected: &Descriptor,
        actual: Digest,
        actual_size: u64,
        _too_long: bool,
    ) -> StoreError {
        StoreError::DigestMismatch {
            path: std::path::PathBuf::from("(in memory)"),
            expected: expected.digest,
            actual,
            expected_size: expected.size,
            actual_size,
        }
    }
}

/// At least `limit` bytes from `chunks` (whole chunks of the source, so a
/// little more), or fewer only at the end.
async fn read_chunk(chunks: &mut BlobStream<'_>, limit: usize) -> Result<Bytes, StoreError> {
    let mut buf = BytesMut::new();
    while buf.len() < limit {
        match chunks.next().await {
            // A source chunk of the right size goes on as it is.
            Some(Ok(chunk)) if buf.is_empty() && chunk.len() >= limit => return Ok(chunk),
            Some(chunk) => buf.extend_from_slice(&chunk?),
            None => break,
        }
    }
    Ok(buf.freeze())
}

/// Hashes `chunk` on top of what was read before; more bytes than `desc`
/// says is a mismatch at once.
/// `upload` is `(registry, what)`.
fn account(
    hasher: &mut Hasher,
    chunk: &Bytes,
    desc: &Descriptor,
    upload: &(String, &str),
) -> Result<(), StoreError> {
    hasher.update(chunk);
    if hasher.len() > desc.size {
        return Err(local_mismatch(upload, desc, hasher));
    }
    Ok(())
}

/// The source's bytes do not match the descriptor.
fn local_mismatch(
    (registry, what): &(String, &str),
    expected: &Descriptor,
    hasher: &Hasher,
) -> StoreError {
    StoreError::Registry {
        registry: registry.clone(),
        reason: format!(
            "{what}: the local blob does not match {} ({} bytes); read {} bytes with another content",
            expected.digest,
            expected.size,
            hasher.len()
        ),
    }
}

/// The `Location` an upload session's answer names, where the session goes
/// on; a refusal, or an answer without one, ends the attempt.
fn session_location(
    transport: &super::transport::Transport,
    what: &str,
    answer: &Answer,
) -> Result<String, Attempt> {
    if !answer.status.is_success() {
        return Err(transport.refusal(what, answer));
    }
    let location = answer
        .header(reqwest::header::LOCATION)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| {
            Attempt::permanent(
                transport.failure(what, "the registry answered without a Location header"),
            )
        })?;
    Ok(transport.absolute(location))
}
