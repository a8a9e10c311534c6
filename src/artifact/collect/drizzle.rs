//! drizzle-kit: the order of `meta/_journal.json`.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use super::common::{CollectError, Downs, Listing, SourceFile, TxRule};
use crate::core::manifest::FileKind;

#[derive(Deserialize)]
pub(super) struct Journal {
    dialect: Option<String>,
    entries: Vec<JournalEntry>,
}

#[derive(Deserialize)]
pub(super) struct JournalEntry {
    idx: u64,
    tag: String,
}

pub const JOURNAL: &str = "meta/_journal.json";

pub fn is_drizzle_folder(dir: &Path) -> bool {
    dir.join(JOURNAL).is_file()
}

pub(super) fn drizzle(
    dir: &Path,
    rel_dir: &str,
    listing: &Listing,
    warnings: &mut Vec<String>,
) -> Result<(Vec<SourceFile>, Downs), CollectError> {
    let journal_path = dir.join(JOURNAL);
    let jerr = |message: String| CollectError::Journal {
        path: journal_path.clone(),
        message,
    };
    let text = std::fs::read(&journal_path).map_err(|source| CollectError::Io {
        path: journal_path.clone(),
        source,
    })?;
    let journal: Journal = serde_json::from_slice(&text)
        .map_err(|e| jerr(format!("not a drizzle-kit journal: {e}")))?;
    match journal.dialect.as_deref() {
        Some("pg" | "postgresql") => {}
        Some(other) => {
            return Err(jerr(format!(
                "dialect is {other:?}; squizzle applies PostgreSQL migrations (dialect \"postgresql\")"
            )));
        }
        None => return Err(jerr("has no \"dialect\"; expected \"postgresql\"".into())),
    }
    let mut entries = journal.entries;
    entries.sort_by_key(|e| e.idx);
    let mut files = Vec::with_capacity(entries.len());
    let mut seen = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        if e.idx != i as u64 {
            return Err(jerr(format!(
                "entry indexes must run 0, 1, 2, ... without gaps or repeats; found idx {} at position {i}",
                e.idx
            )));
        }
        if e.tag.is_empty()
            || e.tag.contains(['/', '\\'])
            || e.tag.starts_with('.')
            || e.tag.chars().any(char::is_control)
        {
            return Err(jerr(format!(
                "entry {} has tag {:?}, which is not a plain file name",
                e.idx, e.tag
            )));
        }
        if let Some(prev) = seen.insert(e.tag.clone(), e.idx) {
            return Err(jerr(format!(
                "tag {:?} appears twice (entries {prev} and {})",
                e.tag, e.idx
            )));
        }
        let name = format!("{}.sql", e.tag);
        let Some((abs, path)) = listing.get(&name) else {
            return Err(CollectError::JournalMissingFile {
                journal: journal_path.clone(),
                tag: e.tag.clone(),
                idx: e.idx,
                expected: dir.join(&name),
            });
        };
        files.push(SourceFile {
            id: e.tag.clone(),
            abs: abs.clone(),
            path: path.clone(),
            kind: FileKind::Migration,
            order: i as u32,
            rollback_for: None,
            transaction: TxRule::Directives,
            section: None,
        });
    }
    let mut downs = Downs::new();
    for (name, file) in listing {
        if let Some(id) = name.strip_suffix(".down.sql") {
            downs.insert(id.to_owned(), file.clone());
        } else if !seen.contains_key(name.trim_end_matches(".sql")) {
            warnings.push(format!(
                "{rel_dir}/{name} is not in {JOURNAL}, so drizzle-kit never runs it; it is left out of the release"
            ));
        }
    }
    Ok((files, downs))
}
