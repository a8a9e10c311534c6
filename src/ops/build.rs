//! `build`: collect -> pack -> refuse what apply would refuse -> compare with
//! the previous release -> squizzle manifest -> OCI manifest -> local store.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::artifact::pack;
use crate::config::{Config, Env};
use crate::core::digest::Digest;
use crate::core::manifest::{
    FileKind, Lineage, MANIFEST_MEDIA_TYPE, Manifest, SCHEMA_VERSION, Source, SourceFormat,
    Tarball, Tool,
};
use crate::core::oci::{self, Descriptor, ImageManifest};
use crate::core::version::Version;
use crate::ops::analysis;
use crate::ops::host::{git, now_rfc3339};
use crate::ops::lineage::{self, LineageOptions};
use crate::ops::release::attest::{self, ProvenanceReport, SignEvent, SignOptions, SignReport};
use crate::ops::release::limits;
use crate::ops::release::resolve;
use crate::ops::{Error, Result};
use crate::store::layout::LayoutStore;

#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub version: Version,
    pub notes: Option<String>,
    /// Which release to compare with, and the allowances to record.
    pub lineage: LineageOptions,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildReport {
    pub version: String,
    pub previous_version: Option<String>,
    /// Digest of the OCI image manifest: the release's identity.
    pub digest: Digest,
    pub tarball: PathBuf,
    pub tarball_sha256: Digest,
    pub tarball_size: u64,
    pub manifest: PathBuf,
    pub store: PathBuf,
    pub format: SourceFormat,
    pub migrations: usize,
    pub rollbacks: usize,
    pub seeds: usize,
    pub uncompressed_size: u64,
    /// True when this exact content was already built: nothing was changed.
    pub unchanged: bool,
    pub warnings: Vec<String>,
    /// What the release was compared with and what was allowed (as recorded
    /// in its manifest); absent for a release built before squizzle recorded it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lineage: Option<Lineage>,
}

/// `build`, then optionally `--sign` and `--provenance`, in that order.
#[derive(Debug, Clone)]
pub struct ReleaseOptions {
    pub build: BuildOptions,
    pub sign: bool,
    pub provenance: bool,
    /// How to sign the signature and the provenance statement.
    pub how: SignOptions,
}

/// Progress of [`build_release`], for the CLI to show as it happens.
pub enum BuildEvent<'a> {
    Built(&'a BuildReport),
    Sign(SignEvent<'a>),
    Signed(&'a SignReport),
    Attested(&'a ProvenanceReport),
}

/// What [`build_release`] did.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseReport {
    pub build: BuildReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<ProvenanceReport>,
}

/// Builds the release, then signs it and attests its provenance when asked.
/// The provenance's build times span the build itself, not the signing.
pub async fn build_release(
    config: &Config,
    env: &Env,
    opts: &ReleaseOptions,
    on: &mut dyn FnMut(BuildEvent<'_>),
) -> Result<ReleaseReport> {
    let started = now_rfc3339();
    let build = build(config, env, &opts.build).await?;
    on(BuildEvent::Built(&build));
    let finished = now_rfc3339();
    let version = &opts.build.version;
    let mut signature = None;
    if opts.sign {
        let signed = attest::sign_release(config, env, version, &opts.how, &mut |e| {
            on(BuildEvent::Sign(e))
        })
        .await?;
        on(BuildEvent::Signed(&signed));
        signature = Some(signed);
    }
    let mut provenance = None;
    if opts.provenance {
        let attested = attest::attest_provenance(
            config,
            env,
            version,
            &opts.how,
            &started,
            &finished,
            &mut |e| on(BuildEvent::Sign(e)),
        )
        .await?;
        on(BuildEvent::Attested(&attested));
        provenance = Some(attested);
    }
    Ok(ReleaseReport {
        build,
        signature,
        provenance,
    })
}

pub fn tarball_name(version: &Version) -> String {
    format!("squizzle-{version}.tar.gz")
}

pub fn manifest_name(version: &Version) -> String {
    format!("squizzle-{version}.manifest.json")
}

/// Collects, packs and checks the files, compares them with the previous
/// release, then stores the release. Every refusal (a file apply would refuse,
/// a released migration changed without an allowance) comes before anything
/// is written to the store or beside the tarballs.
pub async fn build(config: &Config, env: &Env, opts: &BuildOptions) -> Result<BuildReport> {
    let version = &opts.version;
    let store = LayoutStore::open_or_init(&config.store_dir())?;
    let collection = lineage::collect(config)?;

    let tarballs = config.tarballs_dir();
    let name = tarball_name(version);
    let tarball_path = tarballs.join(&name);
    let manifest_path = tarballs.join(manifest_name(version));
    // Pack beside the final name first: an existing, possibly published tarball
    // must not be replaced before we know this build may take its place.
    let staging = tarballs.join(format!(".{name}.building"));
    let guard = StagingFile(staging.clone());
    let packed = pack::pack(&collection.files, &staging, &limits(config))?;

    if let Some(problem) =
        lineage::sql_problems(&collection.files, &packed.files, collection.format)?.first()
    {
        return Err(lineage::sql_refusal(problem));
    }

    let notes = opts.notes.clone().filter(|n| !n.trim().is_empty());
    if store.resolve(&version.tag())?.is_some() {
        let existing = resolve::resolve(&store, version)?;
        let same = existing.manifest.tarball.sha256 == packed.sha256
            && existing.manifest.notes == notes
            && existing.manifest.files == packed.files;
        if !same {
            return Err(Error::VersionExists {
                version: version.clone(),
                existing: existing.manifest.tarball.sha256,
                new: packed.sha256,
            });
        }
        // Identical content: keep the stored release as it is (its createdAt
        // and lineage included) and make the files beside it match it again.
        let config_bytes = existing.manifest.to_canonical_json();
        finish_files(&staging, &tarball_path, &manifest_path, &config_bytes)?;
        drop(guard);
        return Ok(report(
            &existing.manifest,
            existing.digest(),
            &tarball_path,
            &manifest_path,
            &store,
            &packed,
            true,
            collection.warnings,
        ));
    }

    let previous = lineage::previous::find(config, Some(version), &opts.lineage.previous).await?;
    let review = lineage::review(&previous, &packed.files, &opts.lineage)?;
    if let Some(refusal) = review.refusal(&version.tag()) {
        return Err(refusal);
    }
    let mut warnings = collection.warnings;
    if let Some(why) = &review.unchecked {
        let detail = match &previous {
            lineage::Previous::None {
                detail: Some(d), ..
            } => format!(" ({d})"),
            _ => String::new(),
        };
        warnings.push(format!(
            "no earlier release to compare the migrations with: {why}{detail}; the manifest records this"
        ));
    }

    // What the SQL does, recorded with the history check (and signed with it).
    let sql = analysis::for_release(
        &previous,
        &collection.files,
        &packed.files,
        collection.format,
        &opts.lineage.allow_findings,
        opts.lineage.reason.as_deref(),
    )?;
    if !sql.new.is_empty() {
        warnings.push(format!(
            "{} findings in the new or edited migrations ({}), recorded in the manifest; `squizzle lint` lists them",
            sql.new.len(),
            analysis::summary(&sql.new)
        ));
    }
    let mut recorded = review.lineage();
    recorded.findings = sql.findings;
    recorded.allowed_findings = sql.allowed;
    recorded.analysed = true;

    let manifest = Manifest {
        schema_version: SCHEMA_VERSION,
        media_type: MANIFEST_MEDIA_TYPE.to_owned(),
        version: version.clone(),
        previous_version: review.previous_version(),
        created_at: created_at(env)?,
        notes,
        tool: Tool {
            name: "squizzle".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        source: source_info(config, env),
        format: collection.format,
        tarball: Tarball {
            name: name.clone(),
            sha256: packed.sha256,
            size: packed.size,
        },
        files: packed.files.clone(),
        lineage: Some(recorded),
    };
    manifest.validate().map_err(|e| {
        Error::Integrity(format!("the manifest this build produced is invalid: {e}"))
    })?;

    let config_bytes = manifest.to_canonical_json();
    let config_desc = store.put_bytes(MANIFEST_MEDIA_TYPE, &config_bytes)?;
    let mut layer = Descriptor::new(oci::LAYER_MEDIA_TYPE, packed.sha256, packed.size);
    layer
        .annotations
        .insert(oci::ANNOTATION_TITLE.into(), name.clone());
    let staged = std::fs::File::open(&staging).map_err(|source| Error::Io {
        action: "read",
        path: staging.clone(),
        source,
    })?;
    store.put_blob(&layer, staged)?;

    let image = ImageManifest {
        schema_version: 2,
        media_type: oci::IMAGE_MANIFEST_MEDIA_TYPE.into(),
        artifact_type: Some(oci::ARTIFACT_TYPE.into()),
        config: config_desc,
        layers: vec![layer],
        subject: None,
        annotations: annotations(&manifest),
    };
    let image_bytes = image.to_canonical_json();
    let mut image_desc = store.put_bytes(oci::IMAGE_MANIFEST_MEDIA_TYPE, &image_bytes)?;
    image_desc.artifact_type = Some(oci::ARTIFACT_TYPE.into());
    finish_files(&staging, &tarball_path, &manifest_path, &config_bytes)?;
    // Tag last: until this line the release is invisible, so a crash leaves at
    // most unreferenced blobs, never a tag pointing at missing content.
    store.tag(&version.tag(), &image_desc)?;
    drop(guard);
    Ok(report(
        &manifest,
        image_desc.digest,
        &tarball_path,
        &manifest_path,
        &store,
        &packed,
        false,
        warnings,
    ))
}

/// Removes the half-built tarball on every exit path; after the rename into
/// place there is nothing left to remove.
struct StagingFile(PathBuf);

impl Drop for StagingFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[allow(clippy::too_many_arguments)]
fn report(
    manifest: &Manifest,
    digest: Digest,
    tarball: &std::path::Path,
    manifest_path: &std::path::Path,
    store: &LayoutStore,
    packed: &pack::Packed,
    unchanged: bool,
    warnings: Vec<String>,
) -> BuildReport {
    let count = |k: FileKind| manifest.files.iter().filter(|f| f.kind == k).count();
    BuildReport {
        version: manifest.version.tag(),
        previous_version: manifest.previous_version.as_ref().map(Version::tag),
        digest,
        tarball: tarball.to_path_buf(),
        tarball_sha256: manifest.tarball.sha256,
        tarball_size: manifest.tarball.size,
        manifest: manifest_path.to_path_buf(),
        store: store.root().to_path_buf(),
        format: manifest.format,
        migrations: count(FileKind::Migration),
        rollbacks: count(FileKind::Rollback),
        seeds: count(FileKind::Seed),
        uncompressed_size: packed.uncompressed_size,
        unchanged,
        warnings,
        lineage: manifest.lineage.clone(),
    }
}

fn finish_files(
    staging: &std::path::Path,
    tarball: &std::path::Path,
    manifest: &std::path::Path,
    config_bytes: &[u8],
) -> Result<()> {
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| Error::Io {
            action: "write",
            path,
            source,
        }
    };
    let dir = manifest.parent().unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".squizzle-manifest-")
        .tempfile_in(dir)
        .map_err(io(manifest))?;
    std::io::Write::write_all(&mut tmp, config_bytes).map_err(io(manifest))?;
    tmp.persist(manifest).map_err(|e| io(manifest)(e.error))?;
    std::fs::rename(staging, tarball).map_err(io(tarball))?;
    Ok(())
}

fn annotations(m: &Manifest) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    a.insert(oci::ANNOTATION_VERSION.into(), m.version.tag());
    a.insert(oci::ANNOTATION_CREATED.into(), m.created_at.clone());
    if let Some(src) = &m.source {
        if let Some(r) = &src.repository {
            a.insert(oci::ANNOTATION_SOURCE.into(), r.clone());
        }
        if let Some(r) = &src.revision {
            a.insert(oci::ANNOTATION_REVISION.into(), r.clone());
        }
    }
    if let Some(n) = &m.notes {
        a.insert(oci::ANNOTATION_DESCRIPTION.into(), n.clone());
    }
    a
}

/// `SOURCE_DATE_EPOCH` when set (reproducible builds), otherwise now; UTC, seconds.
fn created_at(env: &Env) -> Result<String> {
    let ts = match env.get("SOURCE_DATE_EPOCH").filter(|s| !s.is_empty()) {
        Some(s) => {
            let secs: i64 = s.trim().parse().map_err(|_| {
                Error::Usage(format!("SOURCE_DATE_EPOCH is {s:?}; expected a whole number of seconds since 1970-01-01 UTC"))
            })?;
            time::OffsetDateTime::from_unix_timestamp(secs)
                .map_err(|_| Error::Usage(format!("SOURCE_DATE_EPOCH {secs} is out of range")))?
        }
        None => return Ok(now_rfc3339()),
    };
    ts.format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| Error::Usage(format!("cannot format the build time: {e}")))
}

/// Source repository and revision: CI variables first, then the git checkout.
/// Credentials embedded in a remote URL are stripped, never recorded.
fn source_info(config: &Config, env: &Env) -> Option<Source> {
    let (repo, rev) = if let (Some(server), Some(repo)) =
        (env.get("GITHUB_SERVER_URL"), env.get("GITHUB_REPOSITORY"))
    {
        (Some(format!("{server}/{repo}")), env.get("GITHUB_SHA"))
    } else if let Some(url) = env.get("CI_PROJECT_URL") {
        (Some(url), env.get("CI_COMMIT_SHA"))
    } else {
        (
            git(config, &["config", "--get", "remote.origin.url"]),
            git(config, &["rev-parse", "--verify", "-q", "HEAD"]),
        )
    };
    let repo = repo.map(|r| crate::core::url::strip_userinfo(&r));
    (repo.is_some() || rev.is_some()).then_some(Source {
        repository: repo,
        revision: rev,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_at_honours_source_date_epoch() {
        let env = Env::from_pairs([("SOURCE_DATE_EPOCH", "1700000000")]);
        assert_eq!(created_at(&env).unwrap(), "2023-11-14T22:13:20Z");
        let env = Env::from_pairs([("SOURCE_DATE_EPOCH", "yesterday")]);
        assert!(matches!(created_at(&env), Err(Error::Usage(_))));
    }
}
