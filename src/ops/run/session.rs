//! The migrating connection: connection settings for an environment, the
//! session with its history tables and lock, the private folder a verified
//! release is extracted into, and the verified start every run shares.

use std::time::Duration;

use tokio_postgres::Client;

use crate::artifact::unpack;
use crate::config::{Config, Env};
use crate::core::version::Version;
use crate::db::connect::ConnectSpec;
use crate::db::history::HistoryStore;
use crate::db::lock;
use crate::ops::host::hostname;
use crate::ops::release::fetch::{
    VerifiedRelease, fetch_release_and_evidence, verify_fetched_shown,
};
use crate::ops::release::limits;
use crate::ops::release::resolve::ResolvedRelease;
use crate::ops::run::{ApplyEvent, RunOptions};
use crate::ops::{Error, Result};
use crate::store::layout::LayoutStore;

pub async fn connect(
    config: &Config,
    env: &Env,
    command: &str,
    version: Option<&Version>,
) -> Result<(Client, ConnectSpec)> {
    let spec = selected_spec(config, env, command, version)?;
    let client = spec.connect().await?;
    Ok((client, spec))
}

/// [`connect_spec`] for the environment `config` selects.
fn selected_spec(
    config: &Config,
    env: &Env,
    command: &str,
    version: Option<&Version>,
) -> Result<ConnectSpec> {
    let url = config.active_environment().database_url;
    connect_spec(
        config.environment.as_deref(),
        url.as_deref(),
        env,
        command,
        version,
    )
}

/// The connection settings for one environment (`name`, with its
/// `database_url`), named `squizzle <command> <version> on <host>` in
/// `pg_stat_activity`. Without a URL, `DATABASE_URL`/libpq `PG*` defaults
/// apply, but only when no environment is named.
pub fn connect_spec(
    name: Option<&str>,
    url: Option<&str>,
    env: &Env,
    command: &str,
    version: Option<&Version>,
) -> Result<ConnectSpec> {
    // A named environment must say where its database is: falling back to
    // libpq defaults (a local socket) would deploy somewhere nobody chose.
    if url.is_none()
        && let Some(name) = name
    {
        return Err(Error::Usage(format!(
            "environment {name:?} has no database_url; set `environments.{name}.database_url` (e.g. \"${{{}_DATABASE_URL}}\") or DATABASE_URL",
            name.to_ascii_uppercase().replace('-', "_")
        )));
    }
    let mut spec = ConnectSpec::parse(url, env)?;
    let what = version.map_or_else(String::new, |v| format!(" {v}"));
    spec.set_application_name_default(&format!("squizzle {command}{what} on {}", hostname(env)));
    Ok(spec)
}

/// The migrating connection, its history tables, and the migration lock when
/// the run takes it.
pub struct Session {
    pub client: Client,
    pub spec: ConnectSpec,
    pub history: HistoryStore,
    pub lock: Option<lock::MigrationLock>,
}

impl Session {
    /// Connects as `squizzle <command> <version>` to the selected
    /// environment's database. With `lock_timeout`, the migration lock is
    /// taken first (waiting up to that long), on a connection of its own, and
    /// only then the migrating connection is opened: a waiting run holds one
    /// connection at most.
    pub async fn open(
        config: &Config,
        env: &Env,
        command: &str,
        version: &Version,
        lock_timeout: Option<Duration>,
        on: &mut dyn FnMut(ApplyEvent<'_>),
    ) -> Result<Session> {
        let spec = selected_spec(config, env, command, Some(version))?;
        let envcfg = config.active_environment();
        let history = HistoryStore::new(envcfg.history_schema.as_deref().unwrap_or("squizzle"))?;
        let first = spec.connect().await?;
        on(ApplyEvent::Connected {
            target: &spec.target,
        });
        let (client, lock) = match lock_timeout {
            None => (first, None),
            Some(timeout) => {
                let key = lock::key_for(history.schema());
                let work = lock::work_key_for(history.schema());
                let held = lock::acquire(first, &spec, key, work, timeout, |h| {
                    on(ApplyEvent::LockWait(h))
                })
                .await?;
                on(ApplyEvent::Locked);
                (spec.connect().await?, Some(held))
            }
        };
        Ok(Session {
            client,
            spec,
            history,
            lock,
        })
    }

    /// Ends the lock's transaction, if this session holds the lock. Best
    /// effort: the lock also ends with its connection.
    pub async fn unlock(&mut self) {
        if let Some(held) = self.lock.take() {
            held.release().await;
        }
    }
}

/// The text of each of `paths` (files of the verified release), read from
/// its layer in one streaming pass that checks the whole layer again against
/// the manifest: nothing is written to disk, and only these files are held
/// in memory.
pub fn read_release_files(
    config: &Config,
    store: &LayoutStore,
    release: &ResolvedRelease,
    paths: &[&str],
) -> Result<Vec<String>> {
    let expected = &release.manifest.files;
    // Manifest slot of each path: one lookup per file, not a scan (a
    // release may hold thousands).
    let slot: std::collections::HashMap<&str, usize> = expected
        .iter()
        .enumerate()
        .map(|(i, f)| (f.path.as_str(), i))
        .collect();
    let mut wanted = vec![false; expected.len()];
    for p in paths {
        if let Some(&i) = slot.get(p) {
            wanted[i] = true;
        }
    }
    let mut texts = unpack::read_files(
        &store.blob_path(&release.layer.digest),
        expected,
        &wanted,
        &limits(config),
    )?;
    paths
        .iter()
        .map(|p| {
            slot.get(p).and_then(|&i| texts[i].take()).ok_or_else(|| {
                Error::Usage(format!(
                    "{p} is not a file of release {}",
                    release.manifest.version
                ))
            })
        })
        .collect()
}

/// Every migration text of a verified release, read from its layer once and
/// shared by the targets of a fleet: the release is held once, whatever the
/// fleet's size; each running target copies only its pending files.
pub struct ReleaseTexts(std::collections::HashMap<String, String>);

impl ReleaseTexts {
    pub fn read(config: &Config, verified: &VerifiedRelease) -> Result<ReleaseTexts> {
        let paths: Vec<&str> = verified
            .release
            .manifest
            .files
            .iter()
            .filter(|f| f.kind == crate::core::manifest::FileKind::Migration)
            .map(|f| f.path.as_str())
            .collect();
        let texts = read_release_files(config, &verified.store, &verified.release, &paths)?;
        Ok(ReleaseTexts(
            paths.iter().map(|p| p.to_string()).zip(texts).collect(),
        ))
    }

    /// Copies of the texts of `paths`, in order.
    pub fn get(&self, paths: &[&str], version: &Version) -> Result<Vec<String>> {
        paths
            .iter()
            .map(|p| {
                self.0.get(*p).cloned().ok_or_else(|| {
                    Error::Usage(format!("{p} is not a migration of release {version}"))
                })
            })
            .collect()
    }
}

/// Pulls the release when it is missing (unless offline), refreshes its
/// signatures from the registry, and verifies it: the shared start of every
/// command that runs a release against a database.
pub async fn fetch_verified(
    config: &Config,
    version: &Version,
    opts: &RunOptions,
    on: &mut dyn FnMut(ApplyEvent<'_>),
) -> Result<VerifiedRelease> {
    // Rollback (which accepts revoked releases) must work while the
    // registry is down; everything else follows the freshness policy.
    let strict = !opts.verify.allow_revoked;
    let mut fetched = fetch_release_and_evidence(config, version, opts.offline, strict).await?;
    if let Some(pulled) = &fetched.pulled {
        on(ApplyEvent::Pulled(pulled));
    }
    if let Some(why) = fetched.refresh_failed.take() {
        on(ApplyEvent::RefreshFailed(why));
    }
    // The checks are shown when they pass, and when the content fails them:
    // the artifact line and the files that differ come before the refusal.
    verify_fetched_shown(config, version, &opts.verify, fetched, &mut |report| {
        on(ApplyEvent::Verified(report))
    })
}
