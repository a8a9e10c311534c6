//! `list`: the versions in the store, oldest first, with what each release says
//! about itself. A release that cannot be read is listed with the reason instead
//! of failing the whole listing.

use serde::Serialize;

use crate::config::Config;
use crate::core::digest::Digest;
use crate::ops::Result;
use crate::ops::artifact_ref::{self, versions};
use crate::store::layout::LayoutStore;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedVersion {
    pub version: String,
    pub digest: Digest,
    pub created_at: Option<String>,
    pub notes: Option<String>,
    pub migrations: Option<usize>,
    /// Why the release could not be read, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListReport {
    pub store: std::path::PathBuf,
    pub versions: Vec<ListedVersion>,
    /// Tags that are not versions (squizzle ignores them).
    pub other_tags: Vec<String>,
}

pub fn list(config: &Config) -> Result<ListReport> {
    let dir = config.store_dir();
    if !dir.exists() {
        return Ok(ListReport {
            store: dir,
            versions: Vec::new(),
            other_tags: Vec::new(),
        });
    }
    let store = LayoutStore::open(&dir)?;
    let all = versions(&store)?;
    let mut listed = Vec::with_capacity(all.len());
    for (v, d) in &all {
        let entry = match artifact_ref::resolve(&store, v) {
            Ok(r) => ListedVersion {
                version: v.tag(),
                digest: d.digest,
                created_at: Some(r.manifest.created_at.clone()),
                notes: r.manifest.notes.clone(),
                migrations: Some(r.manifest.migrations().count()),
                problem: None,
            },
            Err(e) => ListedVersion {
                version: v.tag(),
                digest: d.digest,
                created_at: None,
                notes: None,
                migrations: None,
                problem: Some(e.to_string()),
            },
        };
        listed.push(entry);
    }
    let known: std::collections::HashSet<String> = all.iter().map(|(v, _)| v.tag()).collect();
    let other_tags = store
        .tags()?
        .into_iter()
        .map(|(t, _)| t)
        .filter(|t| !known.contains(t))
        .collect();
    Ok(ListReport {
        store: dir,
        versions: listed,
        other_tags,
    })
}
