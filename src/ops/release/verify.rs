//! `verify`: every digest and file hash of a stored release, plus the signature
//! policy. Reads the layer once, streaming, computing the tarball digest and every
//! file's hash in the same pass, so a tampered release names the files that differ.

use serde::Serialize;

use crate::artifact::unpack;
use crate::config::Config;
use crate::core::digest::Digest;
use crate::core::manifest::Lineage;
use crate::core::version::Version;
use crate::ops::release::evidence::{self, Kind, LoadedPolicy, PolicyOverrides};
use crate::ops::release::limits;
use crate::ops::release::provenance::ProvenanceSummary;
use crate::ops::release::resolve::{self, ResolvedRelease};
use crate::ops::{Error, Result};
use crate::signing::statement::SIGNATURE_PREDICATE;
use crate::signing::verify as sv;
use crate::store::layout::LayoutStore;

/// How `verify` (and `apply`) look for and judge signatures.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    pub policy: PolicyOverrides,
    /// A bundle file to consider besides the stored ones.
    pub bundle: Option<std::path::PathBuf>,
    /// Report a revocation without failing (rollback undoes revoked releases).
    pub allow_revoked: bool,
}

/// A revocation statement found for a release.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Revocation {
    /// The signature over it verified and its signer is a trusted revoker.
    pub verified: bool,
    /// Why it could not be verified, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unverified_because: Option<String>,
    pub reason: String,
    /// Who revoked: the verified signer, or what the statement claims.
    pub revoked_by: String,
    pub revoked_at: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    pub version: String,
    pub digest: Digest,
    pub created_at: String,
    pub checks: Vec<Check>,
    pub files: Vec<FileResult>,
    /// Who signed, when a signature verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<sv::Verified>,
    /// Builder and source, when a provenance statement verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<ProvenanceSummary>,
    /// The revocation found, if any (verified or not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation: Option<Revocation>,
    /// What the signed manifest says about the history check at build: the
    /// release compared with and the allowances (absent for older releases).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lineage: Option<Lineage>,
    pub verified: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// Not checked, and the policy does not require it.
    Skip,
}

/// What a check is about. The serialized names are part of the JSON report
/// and stay stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckId {
    Artifact,
    Files,
    Revocation,
    Signature,
    Provenance,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// Stable id, serialized as `artifact`, `files`, `revocation`,
    /// `signature` or `provenance`.
    pub name: CheckId,
    pub status: Status,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileResult {
    pub path: String,
    pub expected_sha256: Digest,
    pub actual_sha256: Digest,
    pub expected_size: u64,
    pub actual_size: u64,
    pub ok: bool,
}

/// Which failure a report ends in; the CLI maps it to an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Integrity,
    /// A revocation refers to the release (exit 10).
    Revoked,
    /// Signature or provenance policy not satisfied (exit 9).
    Signature,
}

impl VerifyReport {
    pub fn failure(&self) -> Option<Failure> {
        let failed = |n: CheckId| {
            self.checks
                .iter()
                .any(|c| c.name == n && c.status == Status::Fail)
        };
        if failed(CheckId::Artifact) || failed(CheckId::Files) {
            Some(Failure::Integrity)
        } else if failed(CheckId::Revocation) {
            Some(Failure::Revoked)
        } else if failed(CheckId::Signature) || failed(CheckId::Provenance) {
            Some(Failure::Signature)
        } else {
            None
        }
    }
}

/// Opens the local store, resolves `version` and verifies it.
pub fn verify(config: &Config, version: &Version, opts: &VerifyOptions) -> Result<VerifyReport> {
    let store = resolve::open_local(config, version)?;
    let release = resolve::resolve(&store, version)?;
    verify_release(config, &store, &release, opts)
}

/// Verifies one resolved release: integrity, then (on intact content only)
/// revocation, signature and provenance.
pub fn verify_release(
    config: &Config,
    store: &LayoutStore,
    release: &ResolvedRelease,
    opts: &VerifyOptions,
) -> Result<VerifyReport> {
    let mut checks = Vec::new();
    let files = check_layer(store, release, &limits(config), &mut checks)?;
    // Signatures are judged only on intact content: a bundle over a damaged
    // release proves nothing about the bytes that would run.
    let mut signature = None;
    let mut provenance = None;
    let mut revocation = None;
    if checks.iter().all(|c| c.status != Status::Fail) {
        let policy = LoadedPolicy::load(config, &opts.policy)?;
        // Listed once: every check below picks its kind out of the same list.
        let listed = store.referrers(&release.digest(), None)?;
        let (check, revoked) = revocation_check(config, store, &listed, release, &policy, opts)?;
        checks.push(check);
        revocation = revoked;
        let (check, verified) = signature_check(config, store, &listed, release, &policy, opts)?;
        checks.push(check);
        signature = verified;
        let (check, summary) = provenance_check(config, store, &listed, release, &policy)?;
        checks.push(check);
        provenance = summary;
    }
    let mut report = VerifyReport {
        version: release.tag.clone(),
        digest: release.digest(),
        created_at: release.manifest.created_at.clone(),
        checks,
        files,
        signature,
        provenance,
        revocation,
        lineage: release.manifest.lineage.clone(),
        verified: false,
    };
    report.verified = report.failure().is_none();
    Ok(report)
}

/// The sha256 and size of a stored blob, read in fixed-size chunks.
fn hash_blob(store: &LayoutStore, digest: &Digest) -> Result<(Digest, u64)> {
    let path = store.blob_path(digest);
    let io = |source| Error::Io {
        action: "read",
        path: path.clone(),
        source,
    };
    let mut reader = crate::core::digest::HashingReader::new(store.open_blob(digest)?);
    std::io::copy(&mut reader, &mut std::io::sink()).map_err(io)?;
    let (_, actual, size) = reader.finish();
    Ok((actual, size))
}

/// Refuses (exit 6) a release that fails the integrity checks `verify` and
/// `apply` run: nothing may sign or attest content they would refuse.
pub fn require_integrity(
    config: &Config,
    store: &LayoutStore,
    release: &ResolvedRelease,
    doing: &str,
) -> Result<()> {
    let mut checks = Vec::new();
    let files = check_layer(store, release, &limits(config), &mut checks)?;
    let problems = integrity_problems(&checks, &files);
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::Integrity(format!(
        "{} fails its integrity checks, so squizzle will not {doing} it: {}; rebuild it (squizzle build) or pull it again",
        release.tag,
        problems.join("; ")
    )))
}

/// What the failed integrity checks of a report found, one line each: the
/// refusal or checksum line (with both digests) and every file that does not
/// match the manifest. Empty when the content passed.
pub fn integrity_problems(checks: &[Check], files: &[FileResult]) -> Vec<String> {
    let mut out = Vec::new();
    for c in checks.iter().filter(|c| {
        matches!(c.name, CheckId::Artifact | CheckId::Files) && c.status == Status::Fail
    }) {
        let bad: Vec<&str> = files
            .iter()
            .filter(|f| !f.ok)
            .map(|f| f.path.as_str())
            .collect();
        out.push(match (&c.expected, &c.actual) {
            (Some(e), Some(a)) => format!("{} (expected {e}, actual {a})", c.detail),
            _ if c.name == CheckId::Files && !bad.is_empty() => format!(
                "{} do not match the hashes the manifest lists: {}",
                if bad.len() == 1 { "1 file" } else { "files" },
                bad.join(", ")
            ),
            _ => c.detail.clone(),
        });
    }
    out
}

fn check_layer(
    store: &LayoutStore,
    release: &ResolvedRelease,
    limits: &unpack::Limits,
    checks: &mut Vec<Check>,
) -> Result<Vec<FileResult>> {
    let m = &release.manifest;
    // The manifest's own record of the tarball must agree with the OCI layer.
    if m.tarball.sha256 != release.layer.digest || m.tarball.size != release.layer.size {
        checks.push(Check {
            name: CheckId::Artifact,
            status: Status::Fail,
            detail: "Checksum mismatch: the squizzle manifest and the OCI layer disagree about the tarball".into(),
            expected: Some(format!("{} ({} bytes)", m.tarball.sha256, m.tarball.size)),
            actual: Some(format!("{} ({} bytes)", release.layer.digest, release.layer.size)),
        });
        return Ok(Vec::new());
    }
    let blob = store.open_blob(&release.layer.digest)?;
    let inspection = match unpack::inspect(
        std::io::BufReader::with_capacity(256 * 1024, blob),
        &m.files,
        limits,
    ) {
        Ok(i) => i,
        // Damaged bytes usually show first as a corrupt stream: when the
        // layer does not hash to its digest, that is what is reported, as
        // the checksum line, before any complaint about its contents.
        // Reading this machine's own files failing is I/O, not the release.
        Err(e @ (unpack::UnpackError::Io { .. } | unpack::UnpackError::ReadInput { .. })) => {
            return Err(e.into());
        }
        Err(e) => {
            let (digest, size) = hash_blob(store, &release.layer.digest)?;
            if digest == release.layer.digest && size == release.layer.size {
                // The bytes are the published ones, and what they hold is
                // refused: the artifact line passes, the content fails.
                checks.push(Check {
                    name: CheckId::Artifact,
                    status: Status::Pass,
                    detail: "Verifying artifact checksum...".into(),
                    expected: None,
                    actual: None,
                });
                checks.push(Check {
                    name: CheckId::Files,
                    status: Status::Fail,
                    detail: format!("The tarball's content is refused: {e}"),
                    expected: None,
                    actual: None,
                });
                return Ok(Vec::new());
            }
            checks.push(Check {
                name: CheckId::Artifact,
                status: Status::Fail,
                detail: format!("Checksum mismatch in {}", m.tarball.name),
                expected: Some(release.layer.digest.to_string()),
                actual: Some(digest.to_string()),
            });
            return Ok(Vec::new());
        }
    };
    let artifact_ok = inspection.compressed_digest == release.layer.digest
        && inspection.compressed_size == release.layer.size;
    checks.push(Check {
        name: CheckId::Artifact,
        status: if artifact_ok {
            Status::Pass
        } else {
            Status::Fail
        },
        detail: if artifact_ok {
            "Verifying artifact checksum...".into()
        } else {
            format!("Checksum mismatch in {}", m.tarball.name)
        },
        expected: (!artifact_ok).then(|| release.layer.digest.to_string()),
        actual: (!artifact_ok).then(|| inspection.compressed_digest.to_string()),
    });
    let files: Vec<FileResult> = inspection
        .files
        .iter()
        .map(|f| FileResult {
            path: f.path.clone(),
            expected_sha256: f.expected,
            actual_sha256: f.actual,
            expected_size: f.expected_size,
            actual_size: f.actual_size,
            ok: f.matches(),
        })
        .collect();
    let good = files.iter().filter(|f| f.ok).count();
    checks.push(Check {
        name: CheckId::Files,
        status: if good == files.len() {
            Status::Pass
        } else {
            Status::Fail
        },
        detail: format!("Verifying file checksums ({good}/{})...", files.len()),
        expected: None,
        actual: None,
    });
    Ok(files)
}

/// The signature policy: find the release's signature bundles (local
/// referrers, the copy next to the tarball, `--bundle`) and accept the first
/// that verifies against the trust root and the signer rules. Every bundle
/// that fails says why.
fn signature_check(
    config: &Config,
    store: &LayoutStore,
    listed: &[crate::core::oci::Descriptor],
    release: &ResolvedRelease,
    policy: &LoadedPolicy,
    opts: &VerifyOptions,
) -> Result<(Check, Option<sv::Verified>)> {
    let file = opts
        .bundle
        .clone()
        .unwrap_or_else(|| evidence::bundle_file(config, &release.manifest.version.to_string()));
    let found = evidence::find(store, listed, Kind::Signature, Some(&file))?;
    let check = |status, detail: String, expected: Option<String>, actual: Option<String>| Check {
        name: CheckId::Signature,
        status,
        detail,
        expected,
        actual,
    };
    if found.is_empty() {
        return Ok((
            if policy.require {
                check(
                    Status::Fail,
                    format!(
                        "No signature found for {} and the policy requires one; sign it with `squizzle sign {}` (or pull its signature from the registry)",
                        release.tag, release.manifest.version
                    ),
                    Some("a Sigstore bundle for this release".into()),
                    Some("none".into()),
                )
            } else {
                check(
                    Status::Skip,
                    "Not signed (the policy does not require a signature)".into(),
                    None,
                    None,
                )
            },
            None,
        ));
    }
    let p = policy.as_policy(&policy.rules);
    tracing::debug!(
        candidates = found.len(),
        accepted = %policy.accepted(),
        required = policy.require,
        "signature policy"
    );
    let mut reasons = Vec::new();
    for f in &found {
        if f.bytes.is_empty() {
            reasons.push(format!(
                "{}: empty or larger than {} bytes",
                f.source,
                sv::MAX_BUNDLE_BYTES
            ));
            continue;
        }
        match sv::verify_bundle(&f.bytes, &release.digest(), SIGNATURE_PREDICATE, &p) {
            Ok(v) => {
                tracing::debug!(source = %f.source, "signature accepted by the policy");
                return Ok((
                    check(Status::Pass, "Signature verified".to_owned(), None, None),
                    Some(v),
                ));
            }
            Err(reason) => {
                tracing::debug!(source = %f.source, %reason, "signature refused");
                reasons.push(format!("{}: {reason}", f.source))
            }
        }
    }
    Ok((
        check(
            Status::Fail,
            format!("Signature verification failed for {}", release.tag),
            Some(policy.accepted()),
            Some(reasons.join(" | ")),
        ),
        None,
    ))
}

fn check(name: CheckId, status: Status, detail: String) -> Check {
    Check {
        name,
        status,
        detail,
        expected: None,
        actual: None,
    }
}

/// The revocation of `release` found in the local store, if any, judged
/// against the configured revokers (`None`: not revoked).
pub fn revocation_of(
    config: &Config,
    store: &LayoutStore,
    release: &ResolvedRelease,
) -> Result<Option<Revocation>> {
    // A policy that cannot be loaded (e.g. a signature required but nobody
    // trusted) must not hide a revocation: judge with nobody trusted.
    let policy = LoadedPolicy::load(config, &PolicyOverrides::default())
        .or_else(|_| LoadedPolicy::load_lenient(config))?;
    let listed = store.referrers(&release.digest(), None)?;
    let (_, r) = revocation_check(
        config,
        store,
        &listed,
        release,
        &policy,
        &VerifyOptions::default(),
    )?;
    Ok(r)
}

/// Revocations: any revocation statement referring to the release blocks it.
/// One that verifies against the revoker policy names its signer; one that
/// does not (unknown signer, broken signature, statement about another
/// artifact) still blocks, and says it is unverified: failing open on an
/// unverifiable revocation would let an attacker who can break a signature
/// un-revoke a release.
fn revocation_check(
    config: &Config,
    store: &LayoutStore,
    listed: &[crate::core::oci::Descriptor],
    release: &ResolvedRelease,
    policy: &LoadedPolicy,
    opts: &VerifyOptions,
) -> Result<(Check, Option<Revocation>)> {
    let found = evidence::find(store, listed, Kind::Revocation, None)?;
    if found.is_empty() {
        return Ok((
            check(CheckId::Revocation, Status::Pass, "Not revoked".into()),
            None,
        ));
    }
    let revokers = config
        .revokers()
        .iter()
        .map(crate::core::policy::SignerRule::from_spec)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|m| Error::Usage(format!("`security.revokers`: {m}")))?;
    let p = policy.as_policy(&revokers);
    let mut best: Option<Revocation> = None;
    for f in &found {
        let claimed = evidence::peek_predicate(&f.bytes);
        let field = |k: &str| {
            claimed
                .as_ref()
                .and_then(|c| c[k].as_str().map(str::to_owned))
                .unwrap_or_else(|| "(not stated)".into())
        };
        let r = match evidence::verify_found(&f.bytes, release, Kind::Revocation, &p) {
            Ok(v) if p.rules.is_empty() && p.keys.is_empty() => Revocation {
                verified: false,
                unverified_because: Some(format!(
                    "signed by {}, but no revoker is trusted (set [security] revokers or signers)",
                    v.identity
                )),
                reason: field("reason"),
                revoked_by: v.identity,
                revoked_at: field("revokedAt"),
            },
            Ok(v) => Revocation {
                verified: true,
                unverified_because: None,
                reason: v.predicate["reason"]
                    .as_str()
                    .unwrap_or("(not stated)")
                    .to_owned(),
                revoked_by: v.identity,
                revoked_at: v.predicate["revokedAt"]
                    .as_str()
                    .unwrap_or("(not stated)")
                    .to_owned(),
            },
            Err(why) => Revocation {
                verified: false,
                unverified_because: Some(format!("{}: {why}", f.source)),
                reason: field("reason"),
                revoked_by: field("revokedBy"),
                revoked_at: field("revokedAt"),
            },
        };
        let better = match &best {
            None => true,
            Some(b) => r.verified && !b.verified,
        };
        if better {
            best = Some(r);
        }
    }
    let r = best.expect("at least one revocation was found");
    let detail = if r.verified {
        format!(
            "Revoked by {} at {}: {}",
            r.revoked_by, r.revoked_at, r.reason
        )
    } else {
        format!(
            "Revoked (UNVERIFIED revocation, blocking anyway: {}): {} (claimed by {} at {})",
            r.unverified_because.as_deref().unwrap_or_default(),
            r.reason,
            r.revoked_by,
            r.revoked_at
        )
    };
    let status = if opts.allow_revoked {
        Status::Skip
    } else {
        Status::Fail
    };
    Ok((check(CheckId::Revocation, status, detail), Some(r)))
}

/// Provenance: required or not, every provenance statement must verify like
/// a signature and name an accepted builder and source repository.
fn provenance_check(
    config: &Config,
    store: &LayoutStore,
    listed: &[crate::core::oci::Descriptor],
    release: &ResolvedRelease,
    policy: &LoadedPolicy,
) -> Result<(Check, Option<ProvenanceSummary>)> {
    let required = config.require_provenance();
    let builders = config.builder_ids();
    let repos = config.source_repositories();
    let found = evidence::find(store, listed, Kind::Provenance, None)?;
    if found.is_empty() {
        let c = if required {
            Check {
                name: CheckId::Provenance,
                status: Status::Fail,
                detail: format!(
                    "No provenance found for {} and the policy requires it; build with `squizzle build {} --provenance`",
                    release.tag, release.manifest.version
                ),
                expected: Some("a signed SLSA v1 provenance statement".into()),
                actual: Some("none".into()),
            }
        } else {
            check(
                CheckId::Provenance,
                Status::Skip,
                "No provenance (the policy does not require it)".into(),
            )
        };
        return Ok((c, None));
    }
    let p = policy.as_policy(&policy.rules);
    tracing::debug!(
        candidates = found.len(),
        accepted = %policy.accepted(),
        required = policy.require,
        "signature policy"
    );
    let mut reasons = Vec::new();
    for f in &found {
        let v = match evidence::verify_found(&f.bytes, release, Kind::Provenance, &p) {
            Ok(v) => v,
            Err(why) => {
                reasons.push(format!("{}: {why}", f.source));
                continue;
            }
        };
        let summary = match ProvenanceSummary::from_predicate(&v.predicate, v.identity.clone()) {
            Ok(s) => s,
            Err(why) => {
                reasons.push(format!("{}: {why}", f.source));
                continue;
            }
        };
        if !builders.is_empty() && !builders.contains(&summary.builder_id) {
            reasons.push(format!(
                "{}: built by {}, which is not an accepted builder ({})",
                f.source,
                summary.builder_id,
                builders.join(", ")
            ));
            continue;
        }
        if !repos.is_empty()
            && !summary
                .repository
                .as_ref()
                .is_some_and(|r| repos.contains(r))
        {
            reasons.push(format!(
                "{}: built from {}, which is not an accepted source repository ({})",
                f.source,
                summary
                    .repository
                    .as_deref()
                    .unwrap_or("an unnamed repository"),
                repos.join(", ")
            ));
            continue;
        }
        return Ok((
            check(
                CheckId::Provenance,
                Status::Pass,
                "Provenance verified".into(),
            ),
            Some(summary),
        ));
    }
    Ok((
        Check {
            name: CheckId::Provenance,
            status: Status::Fail,
            detail: format!("Provenance verification failed for {}", release.tag),
            expected: Some(if builders.is_empty() {
                "a verified provenance statement".to_owned()
            } else {
                format!("builder {}", builders.join(" or "))
            }),
            actual: Some(reasons.join(" | ")),
        },
        None,
    ))
}
