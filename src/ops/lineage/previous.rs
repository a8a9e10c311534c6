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
//! When no release is found, the reason is returned for the manifest to
//! record (and the build warns): no registry, nothing older anywhere, or a
//! registry that could not be asked (unreachable, credentials refused, an
//! error answer). The reason names the store as configured (not an absolute
//! path) and the registry by reference, never the error text, so that two
//! checkouts of the same commit build the same bytes and nothing a server
//! said lands in a signed manifest. Content that fails its digests, a named
//! `--previous` that cannot be fetched and a bad configuration stop the build.

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
        /// Recorded in the manifest: no hosts' answers, no secrets.
        reason: String,
        /// The error behind it, for the build's warning (redacted when printed).
        detail: Option<String>,
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
            detail: None,
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
                    detail: None,
                });
            }
            let registry = config
                .registry
                .as_ref()
                .and_then(|r| r.url.as_deref())
                .unwrap_or_default()
                .trim()
                .to_owned();
            let asked = async {
                let remote = authenticated_store(config).await?;
                let tags = Target::tags(&remote)
                    .await
                    .map_err(|e| insecure_hint(remote.reference(), config, e.into()))?;
                let newest = tags
                    .iter()
                    .filter_map(|t| Version::parse(t).ok().filter(|v| &v.tag() == t))
                    .filter(|v| older(v))
                    .max();
                if let Some(v) = &newest {
                    pull(config, v).await?;
                }
                Ok::<_, Error>(newest)
            }
            .await;
            match asked {
                Ok(Some(v)) => found(
                    &LayoutStore::open(&dir)?,
                    &v,
                    PreviousSource::Registry,
                    false,
                ),
                Ok(None) => Ok(Previous::None {
                    reason: format!(
                        "neither the local store ({store_name}) nor the registry ({registry}) holds a release{before}"
                    ),
                    detail: None,
                }),
                Err(e) => match unavailable(&e) {
                    Some(what) => Ok(Previous::None {
                        reason: format!(
                            "the local store ({store_name}) holds no release{before} and the registry ({registry}) {what}"
                        ),
                        detail: Some(crate::core::errors::error_chain(&e)),
                    }),
                    None => Err(e),
                },
            }
        }
    }
}

/// The registry could not be asked: said in the manifest in these words
/// only (the error itself may name hosts or realms, and goes to the log).
/// Anything else (content that fails its digests, a bad configuration) stops
/// the build.
fn unavailable(e: &Error) -> Option<&'static str> {
    use crate::store::StoreError;
    match e {
        Error::Store(StoreError::RemoteUnreachable { .. }) => Some("could not be reached"),
        Error::Store(StoreError::RemoteAuth { .. }) => Some("refused the credentials"),
        Error::Store(StoreError::Registry { .. } | StoreError::RemoteUnsupported { .. }) => {
            Some("answered with an error")
        }
        _ => None,
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
