//! `revoke`: a signed statement that a release must not be deployed, with a
//! reason, published as a referrer of the release. From then on `verify`,
//! `pull` and `apply` of that version refuse it with exit 10 (`rollback`
//! still runs it backwards). `--delete-tag` also deletes the release manifest
//! from the registry, so that nothing can pull it by tag any more.
//!
//! The statement (predicate `https://squizzle.dev/revocation/v1`,
//! `schemas/revocation.v1.schema.json`) names the version, the digest, the
//! reason, who revoked (the signer's identity, as signed) and when.

use std::path::PathBuf;

use serde::Serialize;

use crate::config::{Config, Env};
use crate::core::digest::Digest;
use crate::core::version::Version;
use crate::ops::registry::{authenticated_store, registry_configured};
use crate::ops::release::attest::{
    SignEvent, SignOptions, sign_statement_as, subject_name, write_file,
};
use crate::ops::release::evidence::{self, Kind};
use crate::ops::release::fetch::{copy_referrers, pull_if_missing, refresh_referrers};
use crate::ops::release::resolve;
use crate::ops::release::verify;
use crate::ops::{Error, Result};
use crate::signing::statement;
use crate::store::layout::LayoutStore;

/// A reason is shown to everyone who tries to deploy the release: a sentence,
/// not a report.
pub const MAX_REASON_BYTES: usize = 4096;

#[derive(Debug, Clone, Default)]
pub struct RevokeOptions {
    pub reason: String,
    pub delete_tag: bool,
    /// Add a revocation although one is recorded already.
    pub force: bool,
    pub sign: SignOptions,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevokeReport {
    pub version: String,
    pub digest: Digest,
    pub reason: String,
    pub revoked_by: String,
    pub revoked_at: String,
    pub bundle: PathBuf,
    pub referrer: Digest,
    /// The registry the revocation was published to, if one is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    pub tag_deleted: bool,
}

pub async fn revoke(
    config: &Config,
    env: &Env,
    version: &Version,
    opts: &RevokeOptions,
    on: &mut dyn FnMut(SignEvent<'_>),
) -> Result<RevokeReport> {
    let reason = opts.reason.trim();
    if reason.is_empty() {
        return Err(Error::Usage(
            "a revocation needs a reason: --reason \"what is wrong with this release\"".into(),
        ));
    }
    if reason.len() > MAX_REASON_BYTES {
        return Err(Error::Usage(format!(
            "the reason is {} bytes; keep it under {MAX_REASON_BYTES} (a sentence and a ticket reference) and put the details in the ticket",
            reason.len()
        )));
    }
    let registry = registry_configured(config);
    if opts.delete_tag && !registry {
        return Err(Error::Usage(
            "--delete-tag removes the release from the registry, and no registry is configured"
                .into(),
        ));
    }
    if registry {
        // The release may only be in the registry, and someone may have
        // revoked it already.
        pull_if_missing(config, version).await?;
        refresh_referrers(config, version).await?;
    }
    let dir = config.store_dir();
    if !dir.exists() {
        return Err(Error::NotFound {
            version: version.tag(),
            store: dir,
            hint: "there is no such release here, and none in a registry".into(),
        });
    }
    let store = LayoutStore::open(&dir)?;
    let release = resolve::resolve(&store, version)?;
    let digest = release.digest();
    // Any revocation on record counts, verified or not: a second one would
    // only add noise (pass --force to add one deliberately).
    if let Some(existing) = verify::revocation_of(config, &store, &release)?
        && !opts.force
    {
        return Err(Error::Revoked(format!(
            "{version} is already revoked by {} at {} ({}): {}; nothing was added. Pass --force to record another revocation",
            existing.revoked_by,
            existing.revoked_at,
            if existing.verified {
                "verified"
            } else {
                "not verified by this project's policy"
            },
            existing.reason
        )));
    }

    let revoked_at = crate::ops::host::now_rfc3339();
    let subject = subject_name(config);
    let tag = release.manifest.version.to_string();
    // The statement names the release's config blob (evidence.rs: so that
    // no stock verifier takes it for a signature); the predicate names the
    // release manifest digest too.
    let about = Kind::Revocation.subject_of(&release);
    let build = |who: &str| {
        statement::statement(
            &subject,
            &about,
            statement::REVOCATION_PREDICATE,
            serde_json::json!({
                "version": tag,
                "digest": digest.to_string(),
                "reason": reason,
                "revokedBy": who,
                "revokedAt": revoked_at,
            }),
        )
    };
    let signed = sign_statement_as(config, env, &build, &opts.sign, on).await?;
    let referrer = evidence::attach(&store, &release, &signed.bundle_json, Kind::Revocation)?;
    let bundle = config
        .tarballs_dir()
        .join(format!("squizzle-{tag}.revocation.sigstore.json"));
    write_file(&bundle, &signed.bundle_json)?;

    let mut report = RevokeReport {
        version: release.tag.clone(),
        digest,
        reason: reason.to_owned(),
        revoked_by: signed.identity,
        revoked_at,
        bundle,
        referrer: referrer.digest,
        registry: None,
        tag_deleted: false,
    };
    if registry {
        let remote = authenticated_store(config).await?;
        copy_referrers(&store, &remote, &digest).await.map_err(|e| {
            Error::Usage(format!(
                "the revocation is stored locally but could not be published: {e}; run `squizzle push {tag}` to publish it"
            ))
        })?;
        report.registry = Some(remote.reference().to_string());
        if opts.delete_tag {
            remote.delete_manifest(&digest).await?;
            report.tag_deleted = true;
        }
    }
    Ok(report)
}
