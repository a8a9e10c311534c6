//! Signed statements attached to a release: where they are kept and how they
//! are found again.
//!
//! Every kind of evidence (signature, provenance, revocation) is stored the
//! way cosign v3 stores its OCI 1.1 bundles: a referrer manifest whose
//! `subject` is the release manifest, `artifactType`
//! `application/vnd.dev.sigstore.bundle.v0.3+json`, an empty config, one
//! layer holding the bundle JSON, and the statement's predicate type in the
//! `dev.sigstore.bundle.predicateType` annotation. `push` copies referrers to
//! the registry and `pull` brings them back, so the same lookup works for a
//! release built here and one pulled from a registry.
//!
//! What a bundle IS is decided by what it signs, never by the manifest
//! around it: the predicate type inside the DSSE statement (a plain message
//! signature can only be a signature). The annotation and the older
//! squizzle-specific `artifactType`s are only read for bundles that do not
//! parse, and then only to block (an unreadable revocation still blocks).
//! So provenance written by GitHub's attest action or `cosign attest` counts
//! as provenance, and older squizzle releases (provenance and revocations
//! under their own `artifactType`s) still verify.
//!
//! A stock verifier such as `cosign verify` takes every single-layer bundle
//! referrer of an image and checks it against the image's manifest digest,
//! whatever its predicate type. So that it can never take squizzle's
//! provenance or revocation for a signature, those statements name the
//! release's config blob (the squizzle manifest: version and every file
//! hash) as their subject, not the OCI manifest digest: checked against the
//! manifest digest, they fail. Only the signature statement names the
//! manifest digest. squizzle accepts provenance and revocations about either
//! digest of the release (older releases and other tools use the manifest
//! digest).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::core::oci::{self, Descriptor, ImageManifest};
use crate::core::policy::SignerRule;
use crate::ops::release::resolve::ResolvedRelease;
use crate::ops::{Error, Result};
use crate::signing::keys::{self, PublicKey};
use crate::signing::{statement, trust, verify as sv};
use crate::store::layout::LayoutStore;

pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
pub const ANNOTATION_PREDICATE_TYPE: &str = "dev.sigstore.bundle.predicateType";
pub const ANNOTATION_CONTENT: &str = "dev.sigstore.bundle.content";

/// What a signed statement about a release is for, known by the predicate
/// type of the signed statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Signature,
    Provenance,
    Revocation,
}

impl Kind {
    pub fn predicate_type(self) -> &'static str {
        match self {
            Kind::Signature => statement::SIGNATURE_PREDICATE,
            Kind::Provenance => statement::PROVENANCE_PREDICATE,
            Kind::Revocation => statement::REVOCATION_PREDICATE,
        }
    }

    /// The `artifactType` squizzle writes: the bundle media type, for every
    /// kind, as cosign v3 does.
    pub fn artifact_type(self) -> &'static str {
        BUNDLE_MEDIA_TYPE
    }

    /// The `artifactType` older squizzle releases used for this kind (still
    /// read, never written).
    pub fn legacy_artifact_type(self) -> &'static str {
        match self {
            Kind::Signature => oci::SIGNATURE_ARTIFACT_TYPE,
            Kind::Provenance => oci::PROVENANCE_ARTIFACT_TYPE,
            Kind::Revocation => oci::REVOCATION_ARTIFACT_TYPE,
        }
    }

    /// The digest a statement of this kind names as its subject when squizzle
    /// writes it (see the module docs).
    pub fn subject_of(self, release: &ResolvedRelease) -> crate::core::digest::Digest {
        match self {
            Kind::Signature => release.digest(),
            Kind::Provenance | Kind::Revocation => release.oci.config.digest,
        }
    }
}

/// Whether `media_type` is a Sigstore bundle's (any version), as cosign
/// recognises them.
fn is_bundle_type(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.dev.sigstore.bundle")
}

/// The predicate type a bundle signs, read from the signed statement without
/// verifying it (verification checks it again): a plain message signature
/// is a signature. `None` if the bundle does not parse.
pub fn signed_predicate_type(bundle_json: &[u8]) -> Option<String> {
    let b: serde_json::Value = serde_json::from_slice(bundle_json).ok()?;
    if b.get("messageSignature")
        .is_some_and(serde_json::Value::is_object)
    {
        return Some(statement::SIGNATURE_PREDICATE.to_owned());
    }
    Some(statement_of(&b)?["predicateType"].as_str()?.to_owned())
}

fn statement_of(bundle: &serde_json::Value) -> Option<serde_json::Value> {
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(bundle["dsseEnvelope"]["payload"].as_str()?)
        .ok()?;
    serde_json::from_slice(&payload).ok()
}

/// Verifies a found bundle as a `kind` statement about `release`. A
/// signature must name the manifest digest; provenance and revocations may
/// name the manifest digest or the config digest (module docs), and the
/// bundle is checked against the one its statement names.
pub fn verify_found(
    bundle_json: &[u8],
    release: &ResolvedRelease,
    kind: Kind,
    policy: &sv::Policy<'_>,
) -> std::result::Result<sv::Verified, sv::BundleError> {
    let config = release.oci.config.digest;
    let about_config = kind != Kind::Signature
        && serde_json::from_slice::<serde_json::Value>(bundle_json)
            .ok()
            .and_then(|b| statement_of(&b))
            .and_then(|st| {
                st["subject"][0]["digest"]["sha256"]
                    .as_str()
                    .map(str::to_owned)
            })
            .is_some_and(|hex| hex == config.hex());
    let digest = if about_config {
        config
    } else {
        release.digest()
    };
    sv::verify_bundle(bundle_json, &digest, kind.predicate_type(), policy)
}

/// Stores `bundle_json` (a bundle signing a `kind` statement) as a referrer
/// of `release` in the local store.
pub fn attach(
    store: &LayoutStore,
    release: &ResolvedRelease,
    bundle_json: &[u8],
    kind: Kind,
) -> Result<Descriptor> {
    let predicate_type = kind.predicate_type();
    let created = crate::ops::host::now_rfc3339();
    let created = created.as_str();
    let layer = store.put_bytes(BUNDLE_MEDIA_TYPE, bundle_json)?;
    let config = store.put_bytes(oci::EMPTY_MEDIA_TYPE, b"{}")?;
    let mut subject = Descriptor::new(
        oci::IMAGE_MANIFEST_MEDIA_TYPE,
        release.digest(),
        release.descriptor.size,
    );
    subject.artifact_type = Some(oci::ARTIFACT_TYPE.into());
    let mut annotations = BTreeMap::new();
    annotations.insert(
        ANNOTATION_PREDICATE_TYPE.to_owned(),
        predicate_type.to_owned(),
    );
    annotations.insert(ANNOTATION_CONTENT.to_owned(), "dsse-envelope".to_owned());
    annotations.insert(oci::ANNOTATION_CREATED.to_owned(), created.to_owned());
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: oci::IMAGE_MANIFEST_MEDIA_TYPE.into(),
        artifact_type: Some(kind.artifact_type().into()),
        config,
        layers: vec![layer],
        subject: Some(subject),
        annotations,
    };
    Ok(store.add_referrer(&manifest.to_canonical_json())?)
}

/// One bundle found for a release, before verification.
pub struct Found {
    /// Where it was found, for messages.
    pub source: String,
    pub bytes: Vec<u8>,
}

/// The bundles among a release's `referrers` (as [`LayoutStore::referrers`]
/// lists them, listed once by the caller for every kind) that claim to carry
/// a `kind` statement, and the optional extra file.
pub fn find(
    store: &LayoutStore,
    referrers: &[Descriptor],
    kind: Kind,
    extra_file: Option<&Path>,
) -> Result<Vec<Found>> {
    let predicate_type = kind.predicate_type();
    let mut out = Vec::new();
    for r in referrers {
        let artifact_type = r.artifact_type.as_deref().unwrap_or_default();
        let legacy = [Kind::Signature, Kind::Provenance, Kind::Revocation]
            .iter()
            .any(|k| k.legacy_artifact_type() == artifact_type);
        if !is_bundle_type(artifact_type) && !legacy {
            continue;
        }
        // What the manifest claims, only used for bundles that do not parse.
        let claims = artifact_type == kind.legacy_artifact_type()
            && (kind != Kind::Signature
                || r.annotations
                    .get(ANNOTATION_PREDICATE_TYPE)
                    .is_none_or(|p| p == predicate_type))
            || r.annotations
                .get(ANNOTATION_PREDICATE_TYPE)
                .is_some_and(|p| p == predicate_type);
        if r.size > oci::MAX_MANIFEST_BYTES {
            continue;
        }
        let bytes = store.read_blob(r, oci::MAX_MANIFEST_BYTES, "manifest")?;
        let Ok(m) = serde_json::from_slice::<ImageManifest>(&bytes) else {
            continue;
        };
        for layer in m.layers.iter().filter(|l| is_bundle_type(&l.media_type)) {
            let source = format!("referrer {}", r.digest.short());
            if layer.size > sv::MAX_BUNDLE_BYTES {
                if claims {
                    out.push(Found {
                        source,
                        bytes: Vec::new(),
                    });
                }
                continue;
            }
            let b = store.read_blob(layer, sv::MAX_BUNDLE_BYTES, "bundle")?;
            let signed = signed_predicate_type(&b);
            let wanted = match &signed {
                Some(signed) => signed == predicate_type,
                None => claims,
            };
            tracing::debug!(
                referrer = %r.digest,
                artifact_type,
                signed_predicate = signed.as_deref().unwrap_or("(none: not a readable statement)"),
                looking_for = ?kind,
                counts = wanted,
                "evidence referrer"
            );
            if wanted {
                out.push(Found { source, bytes: b });
            }
        }
    }
    if let Some(path) = extra_file.filter(|p| p.is_file()) {
        // Capped while reading: the file may grow between a size check and
        // a read. Over the cap, it is reported as an empty (refused) bundle.
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| {
                std::io::Read::read_to_end(
                    &mut std::io::Read::take(f, sv::MAX_BUNDLE_BYTES + 1),
                    &mut bytes,
                )
            })
            .map_err(|source| Error::Io {
                action: "read",
                path: path.to_path_buf(),
                source,
            })?;
        if bytes.len() as u64 > sv::MAX_BUNDLE_BYTES {
            bytes.clear();
        }
        // The same bytes as a referrer are not worth verifying twice.
        if !out.iter().any(|f| f.bytes == bytes) {
            out.push(Found {
                source: path.display().to_string(),
                bytes,
            });
        }
    }
    Ok(out)
}

/// Where `sign` leaves a copy of the signature bundle next to the tarball.
pub fn bundle_file(config: &Config, version: &str) -> PathBuf {
    config
        .tarballs_dir()
        .join(format!("squizzle-{version}.sigstore.json"))
}

/// Command-line additions to the configured policy.
#[derive(Debug, Clone, Default)]
pub struct PolicyOverrides {
    /// Replaces the configured signers when not empty.
    pub signers: Vec<crate::config::Signer>,
    /// Replaces `security.public_keys` when not empty.
    pub keys: Vec<PathBuf>,
    pub trusted_root: Option<PathBuf>,
    /// Require a signature whatever the config says.
    pub require: bool,
}

/// The effective signature policy, loaded.
pub struct LoadedPolicy {
    pub require: bool,
    pub rules: Vec<SignerRule>,
    pub keys: Vec<(String, PublicKey)>,
    pub verifier: Option<sigstore_verify::Verifier>,
    /// Where the trust root came from, or why there is none.
    pub trust_source: String,
}

impl LoadedPolicy {
    pub fn load(config: &Config, o: &PolicyOverrides) -> Result<Self> {
        let signers = if o.signers.is_empty() {
            config.signers()
        } else {
            o.signers.clone()
        };
        let rules = signers
            .iter()
            .map(SignerRule::from_spec)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|m| Error::Usage(format!("signer policy: {m}")))?;
        let key_paths: Vec<PathBuf> = if o.keys.is_empty() {
            config
                .security
                .public_keys
                .iter()
                .map(|k| config.path(k))
                .collect()
        } else {
            o.keys.clone()
        };
        let mut keys_loaded = Vec::new();
        for p in key_paths {
            let pem = std::fs::read_to_string(&p).map_err(|e| {
                Error::Usage(format!("cannot read the public key {}: {e}", p.display()))
            })?;
            let key = keys::load_public_key(&pem)
                .map_err(|e| Error::Usage(format!("{}: {e}", p.display())))?;
            keys_loaded.push((p.display().to_string(), key));
        }
        let require = o.require || config.require_signature();
        if require && rules.is_empty() && keys_loaded.is_empty() {
            return Err(Error::Usage(
                "a signature is required, but nobody is trusted to sign: add [[security.signers]] (identity and issuer) or `security.public_keys`, or pass --certificate-identity/--certificate-oidc-issuer or --key".into(),
            ));
        }
        // Without a usable root, `trust_source` says why, and every keyless
        // bundle is refused with that reason.
        let (verifier, trust_source) = match trust::trusted_root(
            o.trusted_root
                .clone()
                .or_else(|| {
                    config
                        .security
                        .trusted_root
                        .as_deref()
                        .map(|p| config.path(p))
                })
                .as_deref(),
        ) {
            Ok(t) => match sigstore_verify::Verifier::new(&t.root) {
                Ok(v) => (Some(v), t.source),
                Err(e) => (
                    None,
                    format!("the trusted root {} is unusable: {e}", t.source),
                ),
            },
            Err(e) => (None, e.to_string()),
        };
        if require && verifier.is_none() && keys_loaded.is_empty() {
            return Err(Error::Usage(trust_source));
        }
        Ok(Self {
            require,
            rules,
            keys: keys_loaded,
            verifier,
            trust_source,
        })
    }

    /// The configured keys and trust root with no requirement, for judging
    /// evidence (a revocation) when the full policy cannot be loaded.
    pub fn load_lenient(config: &Config) -> Result<Self> {
        let mut relaxed = config.clone();
        relaxed.security.require_signature = false;
        for e in relaxed.environments.values_mut() {
            e.require_signature = Some(false);
        }
        Self::load(&relaxed, &PolicyOverrides::default())
    }

    /// Who may sign, in words: the signer rules and the trusted keys.
    pub fn accepted(&self) -> String {
        let mut who: Vec<String> = self.rules.iter().map(ToString::to_string).collect();
        who.extend(
            self.keys
                .iter()
                .map(|(path, _)| format!("the key in {path}")),
        );
        if who.is_empty() {
            "a signer or key the policy trusts (none is configured)".to_owned()
        } else {
            who.join("; ")
        }
    }

    /// The policy with `rules` as the accepted identities (the signers, or
    /// the revokers).
    pub fn as_policy<'a>(&'a self, rules: &'a [SignerRule]) -> sv::Policy<'a> {
        sv::Policy {
            rules,
            keys: &self.keys,
            verifier: self.verifier.as_ref(),
            trust_source: &self.trust_source,
        }
    }
}

/// The predicate of a bundle's DSSE statement, read WITHOUT verifying
/// anything: only for describing an unverifiable revocation.
pub fn peek_predicate(bundle_json: &[u8]) -> Option<serde_json::Value> {
    use base64::Engine as _;
    let b: serde_json::Value = serde_json::from_slice(bundle_json).ok()?;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(b["dsseEnvelope"]["payload"].as_str()?)
        .ok()?;
    let st: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    Some(st["predicate"].clone())
}
