//! Finding the release a new build is compared with.
//!
//! In order: `--previous VERSION` (from the local store, else pulled from the
//! registry); `--previous none` (the build declares there is none); else the
//! newest release in the local store older than the version being built,
//! and when the store has none, the newest older one in the configured
//! registry (a fresh CI checkout has no store). What comes from the
//! registry is pulled through the one verified copy routine
//! (`release::fetch::pull_release`: every digest and file hash checked before
//! it is stored), then read back from the store with its digests checked.
//!
//! A registry that is configured but cannot be asked stops the build (exit 3
//! and the like): without it squizzle cannot know what was released. When no
//! release is found, the reason is returned for the manifest to record; it
//! names the store as configured (not an absolute path) so that two
//! checkouts of the same commit still build the same bytes.

use crate::config::Config;
use crate::core::manifest::PreviousSource;
use crate::core::version::Version;
use crate::ops::registry::{authenticated_store, insecure_hint, registry_configured};
use crate::ops::release::fetch::pull_release;
use crate::ops::release::resolve::{self, ResolvedRelease, versions};
use crate::ops::{Error, Result};
use crate::store::Target;
use crate::store::layout::LayoutStore;

/// Which release to compare with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PreviousChoice {
    /// The newest older one: local store first, then the registry.
    #[default]
    Newest,
    /// `--previous VERSION`.
    Named(Version),
    /// `--previous none`: the build says there is no earlier release.
    Nothing,
}

impl PreviousChoice {
    /// `none` or a version, as `--previous` takes it.
    pub fn parse(s: &str) -> Result<Self> {
        if s.eq_ignore_ascii_case("none") {
            return Ok(PreviousChoice::Nothing);
        }
        Ok(PreviousChoice::Named(Version::parse(s)?))
    }
}

/// The release found, or why there is none.
pub enum Previous {
    Found {
        release: Box<ResolvedRelease>,
        source: PreviousSource,
        named: bool,
    },
    None {
        reason: String,
    },
}

/// Finds the release to compare with. `target` is the version being built
/// (`None` for `check` without a version: the newest release of all).
pub async fn find(
    config: &Config,
    target: Option<&Version>,
    choice: &PreviousChoice,
) -> Result<Previous> {
    let store_name = config.project.store.clone();
    let dir = config.store_dir();
    let older = |v: &Version| target.is_none_or(|t| v < t);
    match choice {
        PreviousChoice::Nothing => Ok(Previous::None {
            reason: "the build was told there is no earlier release (--previous none)".into(),
        }),
        PreviousChoice::Named(v) => {
            if let Some(t) = target
                && v >= t
            {
                return Err(Error::Usage(format!(
                    "--previous {v} is not older than {t}; name the release {t} follows"
                )));
            }
            if dir.exists() {
                let store = LayoutStore::open(&dir)?;
                if store.resolve(&v.tag())?.is_some() {
                    return found(&store, v, PreviousSource::Store, true);
                }
            }
            if !registry_configured(config) {
                return Err(Error::NotFound {
                    version: v.tag(),
                    store: dir,
                    hint: "no registry is configured to pull it from; pull or build it first, or configure the registry".into(),
                });
            }
            pull(config, v).await?;
            found(&LayoutStore::open(&dir)?, v, PreviousSource::Registry, true)
        }
        PreviousChoice::Newest => {
            if dir.exists() {
                let store = LayoutStore::open(&dir)?;
                if let Some((v, _)) = versions(&store)?.into_iter().rfind(|(v, _)| older(v)) {
                    return found(&store, &v, PreviousSource::Store, false);
                }
            }
            let before = target.map_or_else(String::new, |t| format!(" older than {t}"));
            if !registry_configured(config) {
                return Ok(Previous::None {
                    reason: format!(
                        "no registry is configured and the local store ({store_name}) holds no release{before}"
                    ),
                });
            }
            let remote = authenticated_store(config).await?;
            let tags = Target::tags(&remote)
                .await
                .map_err(|e| insecure_hint(remote.reference(), config, e.into()))
                .map_err(cannot_ask)?;
            let newest = tags
                .iter()
                .filter_map(|t| Version::parse(t).ok().filter(|v| &v.tag() == t))
                .filter(|v| older(v))
                .max();
            let Some(v) = newest else {
                return Ok(Previous::None {
                    reason: format!(
                        "neither the local store ({store_name}) nor the registry ({}) holds a release{before}",
                        remote.reference()
                    ),
                });
            };
            pull(config, &v).await?;
            found(
                &LayoutStore::open(&dir)?,
                &v,
                PreviousSource::Registry,
                false,
            )
        }
    }
}

async fn pull(config: &Config, v: &Version) -> Result<()> {
    pull_release(config, v, &|_| {}).await.map(|_| ())
}

fn found(
    store: &LayoutStore,
    v: &Version,
    source: PreviousSource,
    named: bool,
) -> Result<Previous> {
    let release = resolve::resolve(store, v)?;
    Ok(Previous::Found {
        release: Box::new(release),
        source,
        named,
    })
}

/// A registry that cannot list its tags: the build cannot know what was
/// released, so it stops, and says how to go on.
fn cannot_ask(e: Error) -> Error {
    match e {
        Error::Store(crate::store::StoreError::RemoteUnreachable { registry, reason }) => {
            Error::Store(crate::store::StoreError::RemoteUnreachable {
                registry,
                reason: format!(
                    "{reason}; squizzle asks the registry for the newest release to compare the migrations with: retry, or name it with --previous VERSION (--previous none for a first release)"
                ),
            })
        }
        e => e,
    }
}
