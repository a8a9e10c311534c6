//! Referrers of a manifest in a registry: listing them, pushing them.
//!
//! Referrers (OCI distribution spec 1.1):
//! - A referrer is an OCI image manifest with a `subject`, pushed by digest
//!   (untagged).
//! - If the registry has the referrers API (the manifest `PUT` answers with an
//!   `OCI-Subject` header, or `GET /v2/<name>/referrers/<digest>` answers 200
//!   with an image index), the registry lists referrers itself.
//! - Otherwise squizzle maintains the referrers tag schema: the tag
//!   `sha256-<hex of the subject digest>` points at an OCI image index listing
//!   one descriptor per referrer (with `artifactType` and annotations).
//!   Registries without the API have no conditional `PUT` either, so the index
//!   is updated optimistically: read, merge (dedupe by digest), `PUT`, read back
//!   at once and again after a short jittered settle delay; if our entry is
//!   gone (a concurrent writer read the index before our `PUT` and wrote after
//!   it), merge again and retry, a bounded number of times with jittered
//!   backoff. Every writer does the same, so a writer whose entry survives two
//!   read-backs has seen the others' writes land, and entries are only ever
//!   added.
//!
//! Every request goes through the store's client (`client.rs`): retry, then
//! authentication, then the transport.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher as _};
use std::time::Duration;

use reqwest::{Method, StatusCode};

use super::RegistryStore;
use super::repository::MAX_PAGES;
use super::transport::Request;
use crate::core::digest::Digest;
use crate::core::oci::{self, Descriptor, ImageIndex, ImageManifest};
use crate::store::StoreError;

/// Attempts to get an entry into the referrers tag-schema index.
const TAG_SCHEMA_ATTEMPTS: u32 = 12;
/// Settle delay before the second read-back (plus up to the same again as jitter).
const SETTLE_MS: u64 = 150;

/// A small blob given in memory (config or layer of a referrer).
#[derive(Debug, Clone, Copy)]
pub struct ReferrerBlob<'a> {
    pub media_type: &'a str,
    pub data: &'a [u8],
}

/// A pseudo-random delay below `max_ms`, different in every process and call.
fn jitter(max_ms: u64) -> Duration {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    Duration::from_millis(h.finish() % max_ms.max(1))
}

impl RegistryStore {
    fn referrers_api(&self) -> Option<bool> {
        *self.referrers_api.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_referrers_api(&self, value: bool) {
        *self.referrers_api.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
    }

    /// Whether the registry answers the referrers API (asked once per store).
    pub async fn has_referrers_api(&self, subject: &Digest) -> Result<bool, StoreError> {
        if let Some(known) = self.referrers_api() {
            return Ok(known);
        }
        let answer = self
            .client
            .request(Request {
                what: "referrers",
                method: Method::GET,
                url: &self.repo_url(&format!("referrers/{subject}")),
                headers: &[("Accept", oci::IMAGE_INDEX_MEDIA_TYPE)],
                body: None,
                limit: oci::MAX_MANIFEST_BYTES,
            })
            .await?;
        if matches!(answer.status.as_u16(), 401 | 403) {
            return Err(self.client.transport().status_err("referrers", &answer));
        }
        let is_index = answer
            .header(reqwest::header::CONTENT_TYPE)
            .is_some_and(|v| v.starts_with(oci::IMAGE_INDEX_MEDIA_TYPE));
        let api = answer.status == StatusCode::OK && is_index;
        self.set_referrers_api(api);
        Ok(api)
    }

    /// Referrers of `subject`: from the referrers API when the registry has
    /// it, and from the `sha256-<hex>` tag-schema index (the only form a
    /// registry without the API has, and the form tools such as `skopeo
    /// copy` carry over even to registries with it). Entries of another
    /// `artifact_type` are left out. A listing is only an index: whoever
    /// uses an entry checks that the manifest's own `subject` is `subject`.
    pub(super) async fn list_referrers(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>, StoreError> {
        let from_tag = self
            .referrers_index(subject)
            .await?
            .map(|i| i.manifests)
            .unwrap_or_default();
        let mut found = if self.has_referrers_api(subject).await? {
            let mut api = self.referrers_from_api(subject, artifact_type).await?;
            for d in from_tag {
                if !api.iter().any(|a| a.digest == d.digest) {
                    api.push(d);
                }
            }
            api
        } else {
            from_tag
        };
        found.retain(|d| artifact_type.is_none_or(|t| d.artifact_type.as_deref() == Some(t)));
        Ok(found)
    }

    async fn referrers_from_api(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>, StoreError> {
        let mut url = self.repo_url(&format!("referrers/{subject}"));
        if let Some(t) = artifact_type {
            url.push_str("?artifactType=");
            url.push_str(&t.replace('+', "%2B"));
        }
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let answer = self
                .client
                .request(Request {
                    what: "referrers",
                    method: Method::GET,
                    url: &url,
                    headers: &[("Accept", oci::IMAGE_INDEX_MEDIA_TYPE)],
                    body: None,
                    limit: oci::MAX_MANIFEST_BYTES,
                })
                .await?;
            if !answer.status.is_success() {
                return Err(self.client.transport().status_err("referrers", &answer));
            }
            if answer.overflow {
                return Err(self
                    .client
                    .transport()
                    .too_large("referrers", oci::MAX_MANIFEST_BYTES));
            }
            let index: ImageIndex =
                serde_json::from_slice(&answer.body).map_err(|e| StoreError::Registry {
                    registry: self.registry_name(),
                    reason: format!("referrers of {subject}: not an image index: {e}"),
                })?;
            out.extend(index.manifests);
            match answer.next_link().and_then(|n| self.same_registry(&n)) {
                Some(next) => url = next,
                None => return Ok(out),
            }
        }
        Ok(out)
    }

    /// The tag-schema index of `subject`, if the tag exists.
    pub async fn referrers_index(
        &self,
        subject: &Digest,
    ) -> Result<Option<ImageIndex>, StoreError> {
        let tag = oci::referrers_tag(subject);
        let Some(desc) = self.resolve_tag(&tag).await? else {
            return Ok(None);
        };
        let bytes = self.manifest(&desc).await?;
        let index: ImageIndex = serde_json::from_slice(&bytes)
            .ok()
            .filter(|i: &ImageIndex| i.media_type.as_deref() == Some(oci::IMAGE_INDEX_MEDIA_TYPE))
            .ok_or_else(|| StoreError::Registry {
                registry: self.registry_name(),
                reason: format!(
                    "tag {tag} (the referrers of {subject}) does not point at an OCI image index"
                ),
            })?;
        Ok(Some(index))
    }

    /// Pushes a referrer of `subject`: its blobs (config: the empty `{}` blob
    /// when `None`), then an OCI image manifest with `artifactType`, `subject`
    /// and `annotations`, by digest, made discoverable (see the module docs).
    pub async fn attach_referrer(
        &self,
        subject: &Descriptor,
        artifact_type: &str,
        config: Option<ReferrerBlob<'_>>,
        layers: &[ReferrerBlob<'_>],
        annotations: BTreeMap<String, String>,
    ) -> Result<Descriptor, StoreError> {
        let config = config.unwrap_or(ReferrerBlob {
            media_type: oci::EMPTY_MEDIA_TYPE,
            data: b"{}",
        });
        let config = self.push_blob_bytes(config.media_type, config.data).await?;
        let mut layer_descs = Vec::with_capacity(layers.len());
        for l in layers {
            layer_descs.push(self.push_blob_bytes(l.media_type, l.data).await?);
        }
        let subject = Descriptor::new(&subject.media_type, subject.digest, subject.size);
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: oci::IMAGE_MANIFEST_MEDIA_TYPE.into(),
            artifact_type: Some(artifact_type.to_owned()),
            config,
            layers: layer_descs,
            subject: Some(subject),
            annotations,
        };
        self.put_referrer_manifest(&manifest.to_canonical_json())
            .await
    }

    /// Pushes the exact bytes of a referrer manifest (its blobs must be in the
    /// registry already) by digest, then makes it discoverable.
    pub(super) async fn put_referrer_manifest(
        &self,
        bytes: &[u8],
    ) -> Result<Descriptor, StoreError> {
        let m: ImageManifest = serde_json::from_slice(bytes)
            .ok()
            .filter(|m: &ImageManifest| m.media_type == oci::IMAGE_MANIFEST_MEDIA_TYPE)
            .ok_or_else(|| StoreError::Registry {
                registry: self.registry_name(),
                reason: "a referrer must be an OCI image manifest".into(),
            })?;
        let Some(subject) = m.subject.clone() else {
            return Err(StoreError::Registry {
                registry: self.registry_name(),
                reason: "a referrer must have a subject".into(),
            });
        };
        let desc = m.referrer_descriptor(bytes);
        let what = format!("referrer manifest {}", desc.digest);
        let answer = self
            .send_manifest(
                &desc.digest.to_string(),
                &what,
                oci::IMAGE_MANIFEST_MEDIA_TYPE,
                bytes,
            )
            .await?;
        let oci_subject = answer
            .header("OCI-Subject")
            .is_some_and(|v| v == subject.digest.to_string());
        if oci_subject {
            self.set_referrers_api(true);
            return Ok(desc);
        }
        if !self.has_referrers_api(&subject.digest).await? {
            self.add_to_referrers_tag(&subject.digest, &desc).await?;
        }
        Ok(desc)
    }

    fn index_has(index: Option<&ImageIndex>, entry: &Descriptor) -> bool {
        index.is_some_and(|i| i.manifests.iter().any(|d| d == entry))
    }

    /// Puts `entry` into the tag-schema index of `subject`, race-safely as far
    /// as a registry without conditional requests allows (module docs).
    async fn add_to_referrers_tag(
        &self,
        subject: &Digest,
        entry: &Descriptor,
    ) -> Result<(), StoreError> {
        let tag = oci::referrers_tag(subject);
        for attempt in 0..TAG_SCHEMA_ATTEMPTS {
            if attempt > 0 {
                let backoff = 50u64 << attempt.min(5);
                tokio::time::sleep(jitter(backoff)).await;
            }
            let current = self.referrers_index(subject).await?;
            if !Self::index_has(current.as_ref(), entry) {
                let mut index = current.unwrap_or_else(ImageIndex::empty);
                index.schema_version = 2;
                index.media_type = Some(oci::IMAGE_INDEX_MEDIA_TYPE.into());
                oci::merge_referrers(&mut index, std::slice::from_ref(entry));
                let bytes = serde_json::to_vec(&index).unwrap_or_default();
                self.put_manifest(&tag, oci::IMAGE_INDEX_MEDIA_TYPE, &bytes)
                    .await?;
                if !Self::index_has(self.referrers_index(subject).await?.as_ref(), entry) {
                    tracing::debug!(%tag, attempt, "referrers index overwritten by a concurrent writer; merging again");
                    continue;
                }
            }
            // A writer that read the index before our PUT may still write after
            // it: look again once such a read-modify-write has had time to land.
            tokio::time::sleep(Duration::from_millis(SETTLE_MS) + jitter(SETTLE_MS)).await;
            if Self::index_has(self.referrers_index(subject).await?.as_ref(), entry) {
                return Ok(());
            }
            tracing::debug!(%tag, attempt, "referrers index overwritten after settling; merging again");
        }
        Err(StoreError::Registry {
            registry: self.registry_name(),
            reason: format!(
                "could not add referrer {} to the referrers index {tag} after {TAG_SCHEMA_ATTEMPTS} attempts (concurrent writers)",
                entry.digest
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_below_its_bound() {
        for _ in 0..100 {
            assert!(jitter(10) < Duration::from_millis(10));
        }
    }
}
