//! Getting a release and its evidence into the local store, and handing out
//! a verified release.
//!
//! One copy routine, [`copy_release`], between any two [`Target`]s (`push` and
//! `pull` only choose the direction). It skips blobs the destination already
//! has, checks every digest on the way, and writes the tag last, so a failed
//! copy never leaves a tag pointing at missing or unverified content. The
//! manifest bytes travel exactly as built: their digest is the release's
//! identity.

use std::path::PathBuf;

use serde::Serialize;

use crate::config::Config;
use crate::core::digest::Digest;
use crate::core::manifest::{self, Manifest};
use crate::core::oci::{self, Descriptor, ImageManifest};
use crate::core::version::Version;
use crate::ops::registry::{authenticated_store, insecure_hint, registry_configured};
use crate::ops::release::resolve::{self, ResolvedRelease};
use crate::ops::release::verify::{self, CheckId, Failure, VerifyOptions, VerifyReport};
use crate::ops::release::vet::{PullVet, Vet};
use crate::ops::{Error, Result};
use crate::store::layout::LayoutStore;
use crate::store::progress::{self, TransferEvent};
use crate::store::registry::RegistryStore;
use crate::store::{BlobSource, Target};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferReport {
    pub version: String,
    /// Digest of the OCI manifest: the release's identity.
    pub digest: Digest,
    /// `host[:port]/repository`.
    pub registry: String,
    /// The local OCI layout.
    pub store: PathBuf,
    /// Blobs sent (push) or fetched (pull).
    pub blobs_copied: usize,
    /// Blobs the destination already had.
    pub blobs_skipped: usize,
    pub bytes_copied: u64,
    /// The destination already had this exact release: nothing was copied.
    pub already_there: bool,
    /// Referrers of the release (signatures, provenance, revocations) copied.
    pub referrers_copied: usize,
}

pub fn tag_conflict(version: &Version, place: String, existing: Digest, incoming: Digest) -> Error {
    Error::TagConflict {
        version: version.tag(),
        place,
        existing,
        incoming,
    }
}

/// Registry -> local layout (`project.store`), which is the content-addressed
/// cache every reader (verify, apply) uses. Blob transfers report to `progress`.
///
/// The copy goes through [`LayoutStore::staged`]: fetched blobs wait in a
/// staging folder inside the store and move in only when the manifest is
/// written, after every digest and the squizzle manifest's version were
/// checked, so a tampered or replayed release leaves the store as it was.
pub async fn pull_release(
    config: &Config,
    version: &Version,
    progress: &dyn Fn(&TransferEvent),
) -> Result<TransferReport> {
    let remote = authenticated_store(config).await?;
    let local = LayoutStore::open_or_init(&config.store_dir())?;
    let staged = local.staged()?;
    let empty = format!("the registry has no versions: run `squizzle push {version}` first");
    // Only releases that pass the integrity checks enter the store: the
    // tarball is inspected as it downloads, before the tag is written.
    let vet = PullVet::new(&staged, version, crate::ops::release::limits(config));
    let copied = copy_release(&remote, &staged, version, &empty, progress, &vet)
        .await
        .map_err(|e| insecure_hint(remote.reference(), config, e))?;
    Ok(copied.report(&remote, &local))
}

/// What [`copy_release`] did.
#[derive(Debug, Clone)]
pub struct Copied {
    pub tag: String,
    pub digest: Digest,
    pub blobs_copied: usize,
    pub blobs_skipped: usize,
    pub bytes_copied: u64,
    pub already_there: bool,
    pub referrers_copied: usize,
}

impl Copied {
    pub fn report(self, remote: &RegistryStore, local: &LayoutStore) -> TransferReport {
        TransferReport {
            version: self.tag,
            digest: self.digest,
            registry: remote.reference().to_string(),
            store: local.root().to_path_buf(),
            blobs_copied: self.blobs_copied,
            blobs_skipped: self.blobs_skipped,
            bytes_copied: self.bytes_copied,
            already_there: self.already_there,
            referrers_copied: self.referrers_copied,
        }
    }
}

/// Copies the release tagged `version` from `src` to `dst`, whatever the two
/// stores are.
///
/// Order, so that a failure never leaves a tag pointing at missing or
/// unverified content: resolve and shape-check the release in `src`, check
/// its squizzle manifest names `version` (before any blob is copied); a `dst`
/// tag naming another digest
/// is a conflict; the config and the layer are copied concurrently (blobs
/// `dst` has are skipped; every byte is digest-checked by the writer); then
/// the manifest bytes exactly as stored, under the tag, last; then they are
/// read back; then the release's referrers. `empty_hint` says what to do
/// when `src` has no versions at all.
pub async fn copy_release<S: Target, D: Target>(
    src: &S,
    dst: &D,
    version: &Version,
    empty_hint: &str,
    progress: &dyn Fn(&TransferEvent),
    vet: &dyn Vet,
) -> Result<Copied> {
    let tag = version.tag();
    let Some(found) = src.resolve(&tag).await? else {
        let mut known: Vec<Version> = src
            .tags()
            .await
            .unwrap_or_default()
            .iter()
            .filter_map(|t| Version::parse(t).ok().filter(|v| v.tag() == *t))
            .collect();
        known.sort();
        let hint = if known.is_empty() {
            empty_hint.to_owned()
        } else {
            format!(
                "available: {}",
                known
                    .iter()
                    .map(Version::tag)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        return Err(Error::NotFound {
            version: tag,
            store: PathBuf::from(src.name()),
            hint,
        });
    };
    if found.media_type != oci::IMAGE_MANIFEST_MEDIA_TYPE {
        return Err(Error::Integrity(format!(
            "tag {tag} in {} points at a {:?}, expected an OCI image manifest ({})",
            src.name(),
            found.media_type,
            oci::IMAGE_MANIFEST_MEDIA_TYPE
        )));
    }
    let bytes = src.read_manifest(&found).await?;
    let image: ImageManifest = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Integrity(format!("the OCI manifest of {tag} is not valid: {e}")))?;
    resolve::check_shape(&tag, &image)?;
    let digest = found.digest;
    let mut copied = Copied {
        tag: tag.clone(),
        digest,
        blobs_copied: 0,
        blobs_skipped: 0,
        bytes_copied: 0,
        already_there: false,
        referrers_copied: 0,
    };
    let (config, layer) = (&image.config, &image.layers[0]);
    if let Some(existing) = dst.resolve(&tag).await? {
        if existing.digest != digest {
            return Err(tag_conflict(version, dst.place(), existing.digest, digest));
        }
        if dst.read_manifest(&existing).await.is_ok()
            && dst.has_blob(config).await?
            && dst.has_blob(layer).await?
        {
            copied.already_there = true;
            copied.referrers_copied = copy_referrers(src, dst, &digest).await?;
            return Ok(copied);
        }
    }
    // The squizzle manifest must name the version it is tagged as: read (size
    // capped, digest-checked) and checked before any blob is copied, so a
    // replayed tag never costs a tarball download.
    let json = src
        .read_small_blob(&image.config, manifest::MAX_MANIFEST_BYTES)
        .await?;
    let m = Manifest::from_json(&json).map_err(|e| {
        Error::Integrity(format!("the squizzle manifest of {tag} is not valid: {e}"))
    })?;
    if m.version.tag() != tag {
        return Err(Error::VersionMismatch {
            tag,
            declared: m.version.tag(),
        });
    }
    // Independent blobs: copied concurrently.
    let (config_sent, layer_sent) = tokio::try_join!(
        copy_blob(src, dst, config, progress),
        copy_watched(src, dst, layer, progress, |blob| vet.watch(&m, blob))
    )?;
    for (sent, desc) in [(config_sent, config), (layer_sent, layer)] {
        if sent {
            copied.blobs_copied += 1;
            copied.bytes_copied += desc.size;
        } else {
            copied.blobs_skipped += 1;
        }
    }
    // The destination's own check of the content (a pull inspects the
    // tarball), while nothing in `dst` names the release yet.
    vet.judge(&m, layer)?;
    // Tag last: until now nothing in `dst` names this release.
    dst.push_manifest(&tag, oci::IMAGE_MANIFEST_MEDIA_TYPE, &bytes)
        .await?;
    // Read it back: the destination must serve exactly the bytes we copied.
    match dst.resolve(&tag).await? {
        Some(d) if d.digest == digest => {}
        Some(d) => {
            return Err(Error::Integrity(format!(
                "{} serves {} for {tag} after the copy, expected {digest}",
                dst.place(),
                d.digest,
            )));
        }
        None => {
            return Err(Error::Integrity(format!(
                "{} does not serve {tag} right after the copy",
                dst.place(),
            )));
        }
    }
    copied.referrers_copied = copy_referrers(src, dst, &digest).await?;
    Ok(copied)
}

/// Copies one blob unless `dst` has it; returns whether bytes moved.
pub async fn copy_blob<S: Target, D: Target>(
    src: &S,
    dst: &D,
    desc: &Descriptor,
    progress: &dyn Fn(&TransferEvent),
) -> Result<bool> {
    copy_watched(src, dst, desc, progress, |blob| blob).await
}

/// [`copy_blob`], reading the source through `watch` (a [`Vet`] tapping it).
async fn copy_watched<'a, S: Target, D: Target>(
    src: &'a S,
    dst: &D,
    desc: &Descriptor,
    progress: &dyn Fn(&TransferEvent),
    watch: impl FnOnce(Box<dyn BlobSource + 'a>) -> Box<dyn BlobSource + 'a>,
) -> Result<bool> {
    if dst.has_blob(desc).await? {
        return Ok(false);
    }
    let blob = watch(src.open_blob(desc).await?);
    Ok(dst.push_blob(desc, &*blob, progress).await?)
}

/// Copies every referrer `src` lists for `subject` that `dst` does not list
/// yet: its blobs first, then its manifest bytes exactly as stored. A listed
/// manifest whose `subject` is another manifest is refused. Returns how many
/// were copied.
pub async fn copy_referrers<S: Target, D: Target>(
    src: &S,
    dst: &D,
    subject: &Digest,
) -> Result<usize> {
    let wanted = src.referrers(subject, None).await?;
    if wanted.is_empty() {
        return Ok(0);
    }
    let there: std::collections::HashSet<Digest> = dst
        .referrers(subject, None)
        .await?
        .into_iter()
        .map(|d| d.digest)
        .collect();
    let mut copied = 0;
    for listed in wanted {
        if there.contains(&listed.digest) || listed.media_type != oci::IMAGE_MANIFEST_MEDIA_TYPE {
            continue;
        }
        let desc = Descriptor::new(&listed.media_type, listed.digest, listed.size);
        let bytes = src.read_manifest(&desc).await?;
        let m: ImageManifest = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Integrity(format!("referrer {} is not valid: {e}", desc.digest)))?;
        if m.subject.as_ref().map(|s| s.digest) != Some(*subject) {
            return Err(Error::Integrity(format!(
                "{} lists {} as a referrer of {subject}, but its subject is another manifest",
                src.place(),
                desc.digest
            )));
        }
        for blob in std::iter::once(&m.config).chain(&m.layers) {
            copy_blob(src, dst, blob, &progress::silent).await?;
        }
        dst.push_referrer(&bytes).await?;
        copied += 1;
    }
    Ok(copied)
}

/// Brings the registry's referrers of the local release `version` (new
/// signatures, provenance, revocations published since it was pulled) into
/// the local store. Every referrer is checked to name this release as its
/// subject; its contents are judged later by whoever reads it. Returns how
/// many were new.
pub async fn refresh_referrers(config: &Config, version: &Version) -> Result<usize> {
    let local = LayoutStore::open(&config.store_dir())?;
    let Some(desc) = local.resolve(&version.tag())? else {
        return Ok(0);
    };
    refresh_referrers_of(config, &local, &desc).await
}

/// [`refresh_referrers`] for a release already looked up in `local`.
pub async fn refresh_referrers_of(
    config: &Config,
    local: &LayoutStore,
    desc: &Descriptor,
) -> Result<usize> {
    let remote = authenticated_store(config).await?;
    copy_referrers(&remote, local, &desc.digest)
        .await
        .map_err(|e| insecure_hint(remote.reference(), config, e))
}

/// After `pull`: the release and its referrers are in the store (evidence
/// for whoever looks later), but a revoked one must not look usable, so this
/// fails with exit 10 and the revocation's reason.
pub fn refuse_if_revoked(config: &Config, version: &Version) -> Result<()> {
    let store = LayoutStore::open(&config.store_dir())?;
    let release = resolve::resolve(&store, version)?;
    match verify::revocation_of(config, &store, &release)? {
        None => Ok(()),
        Some(r) => Err(Error::Revoked(format!(
            "{version} is revoked{}: {} (by {} at {}); it was pulled so the revocation is on record, but do not deploy it",
            if r.verified {
                ""
            } else {
                " (UNVERIFIED revocation, blocking anyway)"
            },
            r.reason,
            r.revoked_by,
            r.revoked_at
        ))),
    }
}

/// What [`fetch_release_and_evidence`] did.
#[derive(Debug, Default)]
pub struct Fetched {
    /// The release was missing locally and was pulled.
    pub pulled: Option<TransferReport>,
    /// New referrers could not be fetched; local evidence is used.
    pub refresh_failed: Option<String>,
    /// The local store and the tag's descriptor, when they were looked up
    /// here: later steps use them instead of looking again.
    pub local: Option<(LayoutStore, Descriptor)>,
}

impl Fetched {
    /// The release, resolved in the store this fetch looked at (or the local
    /// store, when nothing was looked up), with the tag read once.
    pub fn resolve(
        self,
        config: &Config,
        version: &Version,
    ) -> Result<(LayoutStore, ResolvedRelease)> {
        match self.local {
            Some((store, desc)) => {
                let release = resolve::resolve_at(&store, version, desc)?;
                Ok((store, release))
            }
            None => {
                let store = resolve::open_local(config, version)?;
                let release = resolve::resolve(&store, version)?;
                Ok((store, release))
            }
        }
    }
}

/// The shared start of every command that judges a release (verify, apply,
/// rollback): with a registry configured and not `offline`, pull the release
/// if it is missing, else fetch referrers published since it was pulled
/// (revocations above all). When the registry cannot be asked, the local
/// evidence is used with a warning, unless `security.require_fresh_revocations`
/// is set and `strict`: then the command stops (exit 3), and `--offline` is
/// refused, because the policy says a deploy must have seen the registry's
/// latest revocations.
pub async fn fetch_release_and_evidence(
    config: &Config,
    version: &Version,
    offline: bool,
    strict: bool,
) -> Result<Fetched> {
    let registry = registry_configured(config);
    let must_be_fresh = strict && registry && config.security.require_fresh_revocations;
    if offline {
        if must_be_fresh {
            return Err(Error::Usage(
                "security.require_fresh_revocations is set: the registry must be checked for revocations, so --offline is not allowed".into(),
            ));
        }
        return Ok(Fetched::default());
    }
    if !registry {
        return Ok(Fetched::default());
    }
    // One look at the local store: what is there is refreshed, what is not
    // is pulled (and looked up once more, since the pull changed it).
    let store = LayoutStore::open_or_init(&config.store_dir())?;
    let tag = version.tag();
    let Some(desc) = store.resolve(&tag)? else {
        let pulled = pull_release(config, version, &|_| {}).await?;
        let local = store.resolve(&tag)?.map(|d| (store, d));
        return Ok(Fetched {
            pulled: Some(pulled),
            refresh_failed: None,
            local,
        });
    };
    match refresh_referrers_of(config, &store, &desc).await {
        Ok(_) => Ok(Fetched {
            local: Some((store, desc)),
            ..Fetched::default()
        }),
        Err(e) if must_be_fresh => Err(e),
        Err(e) => Ok(Fetched {
            pulled: None,
            refresh_failed: Some(crate::core::errors::error_chain(&e)),
            local: Some((store, desc)),
        }),
    }
}

/// A release that passed verification, with the report that says so and the
/// store it was read from: what commands that run a release hand down.
pub struct VerifiedRelease {
    pub report: VerifyReport,
    pub release: ResolvedRelease,
    pub store: LayoutStore,
}

/// With a registry configured, a release missing from the local store is
/// pulled first (every digest checked on the way in); a release already in the
/// store is used as it is, since it was checked when it arrived. Verification
/// follows in every case.
pub async fn pull_if_missing(config: &Config, version: &Version) -> Result<Option<TransferReport>> {
    if !registry_configured(config) {
        return Ok(None);
    }
    let dir = config.store_dir();
    let present = dir.exists() && LayoutStore::open(&dir)?.resolve(&version.tag())?.is_some();
    if present {
        return Ok(None);
    }
    let report = pull_release(config, version, &|_| {}).await?;
    Ok(Some(report))
}

/// Verification as `verify` does it; a failure stops here, before any connection.
pub fn verified_release(
    config: &Config,
    version: &Version,
    opts: &VerifyOptions,
) -> Result<VerifiedRelease> {
    verify_fetched(config, version, opts, Fetched::default())
}

/// [`verified_release`] of what [`fetch_release_and_evidence`] looked up:
/// the tag is resolved once, and what is verified is exactly what is handed on.
pub fn verify_fetched(
    config: &Config,
    version: &Version,
    opts: &VerifyOptions,
    fetched: Fetched,
) -> Result<VerifiedRelease> {
    verify_fetched_shown(config, version, opts, fetched, &mut |_| {})
}

/// [`verify_fetched`], handing the report to `shown` before it is judged
/// when it passed or failed its integrity checks, so a caller can print the
/// checks (the artifact line, the files that differ) above the refusal.
pub fn verify_fetched_shown(
    config: &Config,
    version: &Version,
    opts: &VerifyOptions,
    fetched: Fetched,
    shown: &mut dyn FnMut(&VerifyReport),
) -> Result<VerifiedRelease> {
    let (store, release) = fetched.resolve(config, version)?;
    let report = verify::verify_release(config, &store, &release, opts)?;
    if matches!(report.failure(), None | Some(Failure::Integrity)) {
        shown(&report);
    }
    match report.failure() {
        Some(Failure::Integrity) => {
            let why = verify::integrity_problems(&report.checks, &report.files);
            return Err(Error::Integrity(format!(
                "{version} failed verification; it was not applied: {}",
                why.join("; ")
            )));
        }
        Some(Failure::Signature) => {
            let why: Vec<String> = report
                .checks
                .iter()
                .filter(|c| {
                    matches!(c.name, CheckId::Signature | CheckId::Provenance)
                        && c.status == verify::Status::Fail
                })
                .map(|c| match &c.actual {
                    Some(a) if a != "none" => format!("{}: {a}", c.detail),
                    _ => c.detail.clone(),
                })
                .collect();
            return Err(Error::Signature(format!(
                "{version} does not satisfy the signature policy: {}",
                why.join("; ")
            )));
        }
        Some(Failure::Revoked) => {
            let why = report
                .checks
                .iter()
                .find(|c| c.name == CheckId::Revocation)
                .map(|c| c.detail.clone())
                .unwrap_or_default();
            return Err(Error::Revoked(format!(
                "{version} is revoked; it was not applied. {why}"
            )));
        }
        None => {}
    }
    Ok(VerifiedRelease {
        report,
        release,
        store,
    })
}
