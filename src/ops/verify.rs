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
use crate::ops::{Error, Result};
use crate::store::layout::LayoutStore;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    pub version: String,
    pub digest: Digest,
    pub created_at: String,
    pub checks: Vec<Check>,
    pub files: Vec<FileResult>,
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

pub fn verify(config: &Config, version: &Version) -> Result<VerifyReport> {
    let dir = config.store_dir();
    if !dir.exists() {
        return Err(artifact_ref_missing_store(config, version));
    }
    // An existing folder that is not a valid layout is damage, not absence.
    let store = LayoutStore::open(&dir)?;
    let release = artifact_ref::resolve(&store, version)?;
    let mut checks = Vec::new();
    let files = check_layer(&store, &release, &limits(config), &mut checks)?;
    checks.push(signature_check(config, &release));
    let mut report = VerifyReport {
        version: release.tag.clone(),
        digest: release.digest(),
        created_at: release.manifest.created_at.clone(),
        checks,
        files,
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

/// Signature policy. Signing is a separate capability; until a release carries a
/// signature, a policy that requires one must refuse it.
fn signature_check(config: &Config, release: &ResolvedRelease) -> Check {
    let bundle = config.tarballs_dir().join(format!(
        "squizzle-{}.sigstore.json",
        release.manifest.version
    ));
    let present = bundle.is_file();
    match (config.require_signature(), present) {
        (false, _) => Check {
            name: "signature",
            status: Status::Skip,
            detail: "Signature not checked (the policy does not require one)".into(),
            expected: None,
            actual: None,
        },
        (true, false) => Check {
            name: "signature",
            status: Status::Fail,
            detail: format!(
                "No signature found for {} and the policy requires one (require_signature = true)",
                release.tag
            ),
            expected: Some("a signature bundle for this release".into()),
            actual: Some("none".into()),
        },
        (true, true) => Check {
            name: "signature",
            status: Status::Fail,
            detail: format!(
                "{} exists, but this squizzle cannot verify signature bundles; refusing because the policy requires a verified signature",
                bundle.display()
            ),
            expected: Some("a verified signature".into()),
            actual: Some("an unverified bundle".into()),
        },
    }
}
