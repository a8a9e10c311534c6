//! `baseline`: record a release as applied without running it, to adopt a
//! database whose schema already matches. Verified and locked like apply;
//! refuses a database that already has history unless forced.

use std::time::Instant;

use serde::Serialize;

use crate::config::{Config, Env};
use crate::core::manifest::{FileEntry, FileKind};
use crate::core::version::Version;
use crate::db::history::{HistoryStore, MigrationRecord, ReleaseRecord};
use crate::db::lock;
use crate::db::split;
use crate::ops::host::{ci_identity, hostname, os_user};
use crate::ops::release::fetch::{pull_if_missing, verified_release};
use crate::ops::run::runner::split_mode;
use crate::ops::run::session::{connect, read_release_files};
use crate::ops::{Error, Result};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BaselineReport {
    pub version: String,
    pub digest: String,
    pub database: String,
    pub migrations_recorded: usize,
    pub release_id: i64,
}

pub async fn baseline(
    config: &Config,
    env: &Env,
    version: &Version,
    force: bool,
    lock_timeout: std::time::Duration,
) -> Result<BaselineReport> {
    let started = Instant::now();
    pull_if_missing(config, version).await?;
    let crate::ops::release::fetch::VerifiedRelease {
        report: verified,
        release,
        store,
    } = verified_release(
        config,
        version,
        &crate::ops::release::verify::VerifyOptions::default(),
    )?;
    let signer = verified.signature;
    let migrations: Vec<&FileEntry> = release
        .manifest
        .files
        .iter()
        .filter(|f| f.kind == FileKind::Migration)
        .collect();
    let paths: Vec<&str> = migrations.iter().map(|f| f.path.as_str()).collect();
    let texts = read_release_files(config, &store, &release, &paths)?;
    let (first, spec) = connect(config, env, "baseline", Some(version)).await?;
    let envcfg = config.active_environment();
    let history = HistoryStore::new(envcfg.history_schema.as_deref().unwrap_or("squizzle"))?;
    let key = lock::key_for(history.schema());
    let work = lock::work_key_for(history.schema());
    let held = lock::acquire(first, &spec, key, work, lock_timeout, |_| {}).await?;
    let client = spec.connect().await?;
    let result = async {
        history.ensure(&client).await?;
        let snapshot = history.snapshot(&client).await?;
        if (!snapshot.migrations.is_empty() || !snapshot.releases.is_empty()) && !force {
            return Err(Error::HistoryNotEmpty(format!(
                "{} already has squizzle history ({} migrations, {} release records); baseline is for adopting a database without history. Use apply, or --force to record {version} anyway",
                spec.target,
                snapshot.migrations.len(),
                snapshot.releases.len()
            )));
        }
        let m = &release.manifest;
        let mode = split_mode(m.format);
        let tag = m.version.tag();
        client.batch_execute(&held.begin_sql()).await.map_err(|e| Error::Db(crate::db::DbError::query("starting the baseline", e)))?;
        let mut count = 0;
        for (f, text) in migrations.iter().zip(&texts) {
            let total = split::split(text, mode).map_err(|e| Error::Usage(format!("{}: {e}", f.path)))?.len() as i32;
            let sha = f.sha256.to_string();
            history
                .record_migration(
                    &client,
                    &MigrationRecord { id: &f.id, path: &f.path, sha256: &sha, version: &tag, duration_ms: 0, statements_done: total, statements_total: total, complete: true },
                    true,
                )
                .await?;
            count += 1;
        }
        let (ci, run_url) = ci_identity(env);
        let id = history
            .insert_release(
                &client,
                &ReleaseRecord {
                    version: tag.clone(),
                    operation: "baseline",
                    artifact_digest: release.digest().to_string(),
                    checksum: m.tarball.sha256.to_string(),
                    success: true,
                    execution_ms: started.elapsed().as_millis() as i64,
                    applied_by_os_user: os_user(env),
                    ci_identity: ci,
                    migrations_run: count as i32,
                    signer_identity: signer.as_ref().map(|s| s.identity.clone()),
                    signer_issuer: signer.as_ref().map(|s| s.issuer.clone()),
                    rekor_log_index: signer.as_ref().and_then(|s| s.log_index).and_then(|i| i64::try_from(i).ok()),
                    metadata: serde_json::json!({ "hostname": hostname(env), "toolVersion": env!("CARGO_PKG_VERSION"), "ciRunUrl": run_url, "forced": force }),
                    ..ReleaseRecord::default()
                },
            )
            .await?;
        // In the baseline's transaction: the fingerprint is the schema this
        // baseline declares to be the release, so both are recorded or neither.
        history.record_fingerprint(&client, id, &crate::ops::run::fingerprint::scope_for(config)).await?;
        held.check("committing the baseline")?;
        client.batch_execute("COMMIT").await.map_err(|e| Error::Db(crate::db::DbError::query("committing the baseline", e)))?;
        Ok(BaselineReport { version: tag, digest: release.digest().to_string(), database: spec.target.clone(), migrations_recorded: count, release_id: id })
    }
    .await;
    if result.is_err() {
        let _ = client.batch_execute("ROLLBACK").await;
    }
    held.release().await;
    result
}
