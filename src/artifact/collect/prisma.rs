//! Prisma: one folder per migration, ordered by folder name as text.

use std::path::Path;

use super::common::{CollectError, Downs, Listing, SourceFile, TxRule};
use crate::core::manifest::FileKind;
use crate::core::paths;

pub const PRISMA_LOCK: &str = "migration_lock.toml";

/// Prisma: every sub-folder is a migration whose script is `migration.sql`,
/// run in the order of the folder names compared as text. A `down.sql` in
/// the folder is its rollback.
pub(super) fn prisma(
    dir: &Path,
    rel_dir: &str,
    listing: &Listing,
    warnings: &mut Vec<String>,
) -> Result<(Vec<SourceFile>, Downs), CollectError> {
    let lock = dir.join(PRISMA_LOCK);
    if lock.is_file() {
        let text = std::fs::read_to_string(&lock).map_err(|source| CollectError::Io {
            path: lock.clone(),
            source,
        })?;
        let provider = toml::from_str::<toml::Table>(&text).ok().and_then(|t| {
            t.get("provider")
                .and_then(|p| p.as_str())
                .map(str::to_owned)
        });
        match provider.as_deref() {
            Some("postgresql" | "postgres") => {}
            Some(other) => {
                return Err(CollectError::Unsupported {
                    path: lock,
                    message: format!(
                        "the provider is {other:?}; squizzle applies PostgreSQL migrations (provider = \"postgresql\")"
                    ),
                });
            }
            None => {
                return Err(CollectError::Unsupported {
                    path: lock,
                    message: "has no `provider = \"...\"` line; expected provider = \"postgresql\", as Prisma writes it".into(),
                });
            }
        }
    }
    for name in listing.keys() {
        warnings.push(format!(
            "{rel_dir}/{name} is not in a migration folder, so Prisma never runs it; it is left out of the release"
        ));
    }
    let io = |source| CollectError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut folders = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let abs = entry.path();
        if !abs.is_dir() {
            continue;
        }
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            return Err(CollectError::BadName {
                path: abs,
                message: "the folder name is not valid UTF-8; rename it".into(),
            });
        };
        if name.starts_with('.') {
            continue;
        }
        // Prisma compares names as JavaScript strings (UTF-16 units); for
        // ASCII that is byte order, beyond it the two can differ.
        if !name.is_ascii() {
            return Err(CollectError::BadName {
                path: abs,
                message: "the folder name has non-ASCII characters, whose order Prisma and squizzle could see differently; rename it".into(),
            });
        }
        let script = abs.join("migration.sql");
        if !script.is_file() {
            return Err(CollectError::Unsupported {
                path: abs,
                message: "is a Prisma migration folder without migration.sql; Prisma refuses it too: restore the file or remove the folder".into(),
            });
        }
        folders.push((name, abs));
    }
    folders.sort();
    let mut files = Vec::with_capacity(folders.len());
    let mut downs = Downs::new();
    for (i, (name, abs)) in folders.into_iter().enumerate() {
        let rel = format!("{rel_dir}/{name}/migration.sql");
        paths::validate_relative(&rel).map_err(|e| CollectError::BadName {
            path: abs.clone(),
            message: format!("the stored path {rel:?} {e}"),
        })?;
        let down = abs.join("down.sql");
        if down.is_file() {
            downs.insert(name.clone(), (down, format!("{rel_dir}/{name}/down.sql")));
        }
        files.push(SourceFile {
            id: name,
            abs: abs.join("migration.sql"),
            path: rel,
            kind: FileKind::Migration,
            order: i as u32,
            rollback_for: None,
            transaction: TxRule::Directives,
            section: None,
        });
    }
    Ok((files, downs))
}
