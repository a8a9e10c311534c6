//! `list`: the versions in the registry when one is configured (else in the
//! local store), oldest first by semver, with what each release says about
//! itself and markers from its referrers (signed, provenance, revoked). A
//! release that cannot be read is listed with the reason instead of failing the
//! whole listing. If the configured registry cannot be reached, the local store
//! is listed with a warning saying so.

use serde::Serialize;

use crate::config::Config;
use crate::core::digest::Digest;
use crate::core::manifest::{self, Manifest};
use crate::core::oci::{self, Descriptor, ImageManifest};
use crate::core::version::Version;
use crate::ops::registry::{
    authenticated_store, insecure_hint, registry_configured, registry_options,
};
use crate::ops::release::resolve::{self, versions};
use crate::ops::{Error, Result};
use crate::store::StoreError;
use crate::store::Target;
use crate::store::layout::LayoutStore;
use crate::store::registry::RegistryStore;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedVersion {
    pub version: String,
    pub digest: Digest,
    pub created_at: Option<String>,
    pub notes: Option<String>,
    pub migrations: Option<usize>,
    /// A Sigstore bundle refers to it.
    pub signed: bool,
    /// A SLSA provenance statement refers to it.
    pub provenance: bool,
    /// A squizzle revocation refers to it.
    pub revoked: bool,
    /// Why the release could not be read, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl ListedVersion {
    /// A version known only by its tag and digest so far.
    fn bare(version: String, digest: Digest) -> Self {
        ListedVersion {
            version,
            digest,
            created_at: None,
            notes: None,
            migrations: None,
            signed: false,
            provenance: false,
            revoked: false,
            problem: None,
        }
    }
}

/// Markers from the `artifactType`s of a release's referrers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Markers {
    pub signed: bool,
    pub provenance: bool,
    pub revoked: bool,
}

impl Markers {
    /// Only hints for the listing (from the referrers' `artifactType` and
    /// their `dev.sigstore.bundle.predicateType` annotation, as a registry
    /// lists them); `verify` decides by what the bundles sign.
    pub fn from_referrers(referrers: &[Descriptor]) -> Self {
        use crate::signing::statement::{
            PROVENANCE_PREDICATE, REVOCATION_PREDICATE, SIGNATURE_PREDICATE,
        };
        let has = |legacy: &str, predicate: &str| {
            referrers.iter().any(|d| {
                let claimed = d
                    .annotations
                    .get("dev.sigstore.bundle.predicateType")
                    .map(String::as_str);
                match d.artifact_type.as_deref() {
                    Some(oci::SIGNATURE_ARTIFACT_TYPE) => {
                        claimed == Some(predicate)
                            || (predicate == SIGNATURE_PREDICATE && claimed.is_none())
                    }
                    Some(t) => t == legacy,
                    None => false,
                }
            })
        };
        Self {
            signed: has(oci::SIGNATURE_ARTIFACT_TYPE, SIGNATURE_PREDICATE),
            provenance: has(oci::PROVENANCE_ARTIFACT_TYPE, PROVENANCE_PREDICATE),
            revoked: has(oci::REVOCATION_ARTIFACT_TYPE, REVOCATION_PREDICATE),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListReport {
    /// `registry` or `local`.
    pub source: &'static str,
    /// The registry listed (`host[:port]/repository`), when one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    pub store: std::path::PathBuf,
    pub versions: Vec<ListedVersion>,
    /// Tags that are not versions (squizzle ignores them), sorted; referrers
    /// tag-schema tags (`sha256-<hex>`) are not listed.
    pub other_tags: Vec<String>,
    /// Why the configured registry was not listed, if it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// The registry when one is configured, else the local store; an unreachable
/// registry falls back to the local store with a warning.
pub async fn list_any(config: &Config) -> Result<ListReport> {
    if !registry_configured(config) {
        return list(config);
    }
    // The same credential negotiation as pull (token realms are checked before
    // a password leaves the process).
    let listed = async {
        let remote = authenticated_store(config).await?;
        list_registry(&remote, config).await
    }
    .await;
    // A registry that only speaks plain HTTP: say which flag lets it.
    let listed = match (listed, registry_options(config)) {
        (Err(e), Ok((reference, _, _))) => Err(insecure_hint(&reference, config, e)),
        (listed, _) => listed,
    };
    match listed {
        Err(Error::Store(StoreError::RemoteUnreachable { registry, reason })) => {
            let mut report = list(config)?;
            report.warning = Some(format!(
                "cannot reach the registry {registry} ({reason}); listing the local store instead"
            ));
            Ok(report)
        }
        other => other,
    }
}

/// The versions in `remote`: tags by semver, each release read from the
/// registry (digest-checked), markers from its referrers.
pub async fn list_registry(remote: &RegistryStore, config: &Config) -> Result<ListReport> {
    let tags = Target::tags(remote).await?;
    let mut versions: Vec<Version> = Vec::new();
    let mut other_tags: Vec<String> = Vec::new();
    for t in tags {
        match Version::parse(&t) {
            Ok(v) if v.tag() == t => versions.push(v),
            _ if oci::is_referrers_tag(&t) => {}
            _ => other_tags.push(t),
        }
    }
    versions.sort();
    other_tags.sort();
    let mut listed = Vec::with_capacity(versions.len());
    for v in &versions {
        let tag = v.tag();
        let Some(desc) = remote.resolve(&tag).await? else {
            continue; // deleted while listing
        };
        let mut entry = ListedVersion::bare(tag.clone(), desc.digest);
        match read_remote_release(remote, &tag, &desc).await {
            Ok(m) => {
                entry.created_at = Some(m.created_at.clone());
                entry.notes = m.notes.clone();
                entry.migrations = Some(m.migrations().count());
            }
            Err(
                e @ Error::Store(
                    StoreError::RemoteUnreachable { .. } | StoreError::RemoteAuth { .. },
                ),
            ) => {
                return Err(e);
            }
            Err(e) => entry.problem = Some(e.to_string()),
        }
        let markers = Markers::from_referrers(&remote.referrers(&desc.digest, None).await?);
        entry.signed = markers.signed;
        entry.provenance = markers.provenance;
        entry.revoked = markers.revoked;
        listed.push(entry);
    }
    Ok(ListReport {
        source: "registry",
        registry: Some(remote.reference().to_string()),
        store: config.store_dir(),
        versions: listed,
        other_tags,
        warning: None,
    })
}

async fn read_remote_release(
    remote: &RegistryStore,
    tag: &str,
    desc: &Descriptor,
) -> Result<Manifest> {
    if desc.media_type != oci::IMAGE_MANIFEST_MEDIA_TYPE {
        return Err(Error::Integrity(format!(
            "{tag} points at a {:?}, not an OCI image manifest",
            desc.media_type
        )));
    }
    let bytes = Target::read_manifest(remote, desc).await?;
    let image: ImageManifest = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Integrity(format!("the OCI manifest of {tag} is not valid: {e}")))?;
    resolve::check_shape(tag, &image)?;
    let config = remote
        .read_small_blob(&image.config, manifest::MAX_MANIFEST_BYTES)
        .await?;
    let m = Manifest::from_json(&config).map_err(|e| {
        Error::Integrity(format!("the squizzle manifest of {tag} is not valid: {e}"))
    })?;
    if m.version.tag() != tag {
        return Err(Error::VersionMismatch {
            tag: tag.to_owned(),
            declared: m.version.tag(),
        });
    }
    Ok(m)
}

pub fn list(config: &Config) -> Result<ListReport> {
    let dir = config.store_dir();
    if !dir.exists() {
        return Ok(ListReport {
            source: "local",
            registry: None,
            store: dir,
            versions: Vec::new(),
            other_tags: Vec::new(),
            warning: None,
        });
    }
    let store = LayoutStore::open(&dir)?;
    let all = versions(&store)?;
    let mut listed = Vec::with_capacity(all.len());
    for (v, d) in &all {
        let markers = store
            .referrers(&d.digest, None)
            .map(|r| Markers::from_referrers(&r))
            .unwrap_or_default();
        let mut entry = match resolve::resolve(&store, v) {
            Ok(r) => ListedVersion {
                version: v.tag(),
                digest: d.digest,
                created_at: Some(r.manifest.created_at.clone()),
                notes: r.manifest.notes.clone(),
                migrations: Some(r.manifest.migrations().count()),
                signed: false,
                provenance: false,
                revoked: false,
                problem: None,
            },
            Err(e) => ListedVersion {
                problem: Some(e.to_string()),
                ..ListedVersion::bare(v.tag(), d.digest)
            },
        };
        entry.signed = markers.signed;
        entry.provenance = markers.provenance;
        entry.revoked = markers.revoked;
        listed.push(entry);
    }
    let known: std::collections::HashSet<String> = all.iter().map(|(v, _)| v.tag()).collect();
    let other_tags = store
        .tags()?
        .into_iter()
        .map(|(t, _)| t)
        // A layout copied with skopeo keeps referrers behind tag-schema tags.
        .filter(|t| !known.contains(t) && !oci::is_referrers_tag(t))
        .collect();
    Ok(ListReport {
        source: "local",
        registry: None,
        store: dir,
        versions: listed,
        other_tags,
        warning: None,
    })
}
