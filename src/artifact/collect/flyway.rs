//! Flyway: `V<version>__<description>.sql`, versions compared part by part.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::common::{CollectError, Downs, Listing, SourceFile, TxRule};
use crate::core::manifest::{FileKind, TransactionMode};

/// What a Flyway file name is: versioned (`V`), undo (`U`), repeatable (`R`)
/// or baseline (`B`), with the version text between the prefix and `__`.
pub(super) fn flyway_kind(name: &str) -> Option<(char, &str)> {
    let stem = name.strip_suffix(".sql")?;
    let prefix = stem.chars().next()?;
    if !matches!(prefix, 'V' | 'U' | 'R' | 'B') {
        return None;
    }
    let (version, desc) = stem[1..].split_once("__")?;
    if prefix == 'R' {
        return version.is_empty().then_some(('R', ""));
    }
    // The version is checked by `flyway_version`: Flyway refuses a bad one
    // rather than skipping the file, and so does squizzle.
    let ok = !version.is_empty();
    (ok && !desc.is_empty()).then_some((prefix, version))
}

/// A Flyway version as Flyway compares it: parts split at `.` or `_`, each a
/// number, trailing zero parts not counting (`1.0` is `1`).
pub(super) fn flyway_version(text: &str) -> Option<Vec<(usize, String)>> {
    let mut parts = Vec::new();
    for part in text.split(['.', '_']) {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let t = part.trim_start_matches('0');
        parts.push((t.len(), t.to_owned()));
    }
    while parts.last().is_some_and(|(l, _)| *l == 0) {
        parts.pop();
    }
    Some(parts)
}

/// Flyway: `V<version>__<description>.sql` in version order, one transaction
/// per file unless `<file>.conf` says `executeInTransaction=false`;
/// `U<version>__*.sql` undoes that version.
pub(super) fn flyway(
    dir: &Path,
    listing: &Listing,
    warnings: &mut Vec<String>,
) -> Result<(Vec<SourceFile>, Downs), CollectError> {
    // Flyway searches its locations recursively; one folder level is read here.
    let io = |source| CollectError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        if entry.path().is_dir() && !name.to_string_lossy().starts_with('.') {
            return Err(CollectError::Unsupported {
                path: entry.path(),
                message: "Flyway reads migrations in sub-folders too, squizzle reads one folder; move the files up into the migrations folder".into(),
            });
        }
    }
    type Key = Vec<(usize, String)>;
    let mut versioned: BTreeMap<Key, (String, PathBuf, String, TxRule)> = BTreeMap::new();
    let mut undos: Vec<(Key, String, PathBuf, String)> = Vec::new();
    for (name, (abs, path)) in listing {
        let Some((prefix, version)) = flyway_kind(name) else {
            warnings.push(format!(
                "{path} is not named V<version>__<description>.sql, so Flyway never runs it as a migration; it is left out of the release"
            ));
            continue;
        };
        let unsupported = |message: &str| CollectError::Unsupported {
            path: abs.clone(),
            message: message.to_owned(),
        };
        match prefix {
            'R' => {
                return Err(unsupported(
                    "is a Flyway repeatable migration, which Flyway re-runs whenever it changes; a squizzle release runs each migration once. Turn it into a versioned V<version>__ file",
                ));
            }
            'B' => {
                return Err(unsupported(
                    "is a Flyway baseline migration; squizzle adopts an existing database with `squizzle baseline <version>` instead. Remove it from the folder",
                ));
            }
            _ => {}
        }
        let key = flyway_version(version).ok_or_else(|| CollectError::BadName {
            path: abs.clone(),
            message: format!(
                "version {version:?} is not numbers separated by '.' or '_', as Flyway requires"
            ),
        })?;
        let text = std::fs::read_to_string(abs).map_err(|source| CollectError::Io {
            path: abs.clone(),
            source,
        })?;
        if text.contains("${") {
            return Err(unsupported(
                "uses a Flyway placeholder (${...}), which Flyway fills in when it runs; squizzle ships files exactly as written. Write the value into the file",
            ));
        }
        let stem = name.strip_suffix(".sql").unwrap_or(name).to_owned();
        if prefix == 'U' {
            undos.push((key, stem, abs.clone(), path.clone()));
            continue;
        }
        let tx = flyway_conf(abs)?;
        if let Some((_, _, first, _)) = versioned.get(&key) {
            return Err(CollectError::DuplicateNumber {
                first: first.clone(),
                second: path.clone(),
                number: version.to_owned(),
            });
        }
        versioned.insert(key, (stem, abs.clone(), path.clone(), tx));
    }
    let mut downs = Downs::new();
    for (key, stem, abs, path) in undos {
        let Some((id, _, _, _)) = versioned.get(&key) else {
            return Err(CollectError::OrphanRollback { path, id: stem });
        };
        if let Some(prev) = downs.insert(id.clone(), (abs, path.clone())) {
            return Err(CollectError::DuplicateRollback {
                first: prev.1,
                second: path,
                id: id.clone(),
            });
        }
    }
    let files = versioned
        .into_values()
        .enumerate()
        .map(|(i, (id, abs, path, tx))| SourceFile {
            id,
            abs,
            path,
            kind: FileKind::Migration,
            order: i as u32,
            rollback_for: None,
            transaction: tx,
            section: None,
        })
        .collect();
    Ok((files, downs))
}

/// Flyway's per-script configuration `<file>.sql.conf`: only
/// `executeInTransaction` is understood; any other setting is refused rather
/// than ignored.
pub(super) fn flyway_conf(script: &Path) -> Result<TxRule, CollectError> {
    let mut conf = script.as_os_str().to_owned();
    conf.push(".conf");
    let conf = PathBuf::from(conf);
    if !conf.is_file() {
        return Ok(TxRule::Directives);
    }
    let text = std::fs::read_to_string(&conf).map_err(|source| CollectError::Io {
        path: conf.clone(),
        source,
    })?;
    let mut rule = TxRule::Directives;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        match (key.trim(), value.trim()) {
            ("executeInTransaction", "false") => rule = TxRule::Fixed(TransactionMode::None),
            ("executeInTransaction", "true") => rule = TxRule::Fixed(TransactionMode::Default),
            (key, _) => {
                return Err(CollectError::Unsupported {
                    path: conf,
                    message: format!(
                        "sets {key:?}; squizzle understands only executeInTransaction=true|false in a Flyway script configuration"
                    ),
                });
            }
        }
    }
    Ok(rule)
}
