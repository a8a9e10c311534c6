//! `verify`: every digest and file hash of a stored release, plus the signature
//! policy. Reads the layer once, streaming, computing the tarball digest and every
//! file's hash in the same pass, so a tampered release names the files that differ.

use serde::Serialize;

use crate::artifact::unpack;
use crate::config::Config;
use crate::core::digest::Digest;
use crate::core::version::Version;
use crate::ops::artifact_ref::{self, ResolvedRelease};
use crate::ops::build::limits;
use crate::ops::evidence::{self, Kind, LoadedPolicy, PolicyOverrides};
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

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// Stable id: `artifact`, `files`, `signature`.
    pub name: &'static str,
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
    Signature,
}

impl VerifyReport {
    pub fn failure(&self) -> Option<Failure> {
        let failed = |n: &str| {
            self.checks
                .iter()
                .any(|c| c.name == n && c.status == Status::Fail)
        };
        if failed("artifact") || failed("files") {
            Some(Failure::Integrity)
        } else if failed("signature") {
            Some(Failure::Signature)
        } else {
            None
        }
    }
}

pub fn verify(config: &Config, version: &Version, opts: &VerifyOptions) -> Result<VerifyReport> {
    let dir = config.store_dir();
    if !dir.exists() {
        return Err(artifact_ref_missing_store(config, version));
    }
    // An existing folder that is not a valid layout is damage, not absence.
    let store = LayoutStore::open(&dir)?;
    let release = artifact_ref::resolve(&store, version)?;
    let mut checks = Vec::new();
    let files = check_layer(&store, &release, &limits(config), &mut checks)?;
    // Signatures are judged only on intact content: a bundle over a damaged
    // release proves nothing about the bytes that would run.
    let mut signature = None;
    if checks.iter().all(|c| c.status != Status::Fail) {
        let (check, verified) = signature_check(config, &store, &release, opts)?;
        checks.push(check);
        signature = verified;
    }
    let mut report = VerifyReport {
        version: release.tag.clone(),
        digest: release.digest(),
        created_at: release.manifest.created_at.clone(),
        checks,
        files,
        signature,
        verified: false,
    };
    report.verified = report.failure().is_none();
    Ok(report)
}

fn artifact_ref_missing_store(config: &Config, version: &Version) -> Error {
    Error::NotFound {
        version: version.tag(),
        store: config.store_dir(),
        hint: format!("there is no store there yet: run `squizzle build {version}` first"),
    }
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
            name: "artifact",
            status: Status::Fail,
            detail: "Checksum mismatch: the squizzle manifest and the OCI layer disagree about the tarball".into(),
            expected: Some(format!("{} ({} bytes)", m.tarball.sha256, m.tarball.size)),
            actual: Some(format!("{} ({} bytes)", release.layer.digest, release.layer.size)),
        });
        return Ok(Vec::new());
    }
    let blob = store.open_blob(&release.layer.digest)?;
    let inspection = unpack::inspect(
        std::io::BufReader::with_capacity(256 * 1024, blob),
        &m.files,
        limits,
    )?;
    let artifact_ok = inspection.compressed_digest == release.layer.digest
        && inspection.compressed_size == release.layer.size;
    checks.push(Check {
        name: "artifact",
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
        name: "files",
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
    release: &ResolvedRelease,
    opts: &VerifyOptions,
) -> Result<(Check, Option<sv::Verified>)> {
    let policy = LoadedPolicy::load(config, &opts.policy)?;
    let file = opts
        .bundle
        .clone()
        .unwrap_or_else(|| evidence::bundle_file(config, &release.manifest.version.to_string()));
    let found = evidence::find(store, &release.digest(), Kind::Signature, Some(&file))?;
    let check = |status, detail: String, expected: Option<String>, actual: Option<String>| Check {
        name: "signature",
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
    let p = policy.as_policy();
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
                let detail = if policy.rules.is_empty() && v.method == "keyless" {
                    "Signature verified (no signer policy configured: any identity is accepted)"
                        .to_owned()
                } else {
                    "Signature verified".to_owned()
                };
                return Ok((check(Status::Pass, detail, None, None), Some(v)));
            }
            Err(reason) => reasons.push(format!("{}: {reason}", f.source)),
        }
    }
    Ok((
        check(
            Status::Fail,
            format!("Signature verification failed for {}", release.tag),
            Some(if policy.rules.is_empty() {
                "a valid signature".to_owned()
            } else {
                policy
                    .rules
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            }),
            Some(reasons.join(" | ")),
        ),
        None,
    ))
}
