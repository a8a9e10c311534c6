//! Finding a release's files and their order.
//!
//! Two layouts: drizzle-kit folders, ordered by `meta/_journal.json` (files not in
//! the journal are never run by drizzle, so they are left out with a warning), and
//! plain folders of `NNNN_name.sql` files ordered by the number. Rollbacks are
//! `NNNN_name.down.sql` beside the migration or `<id>.sql` in a rollback folder;
//! seeds are every `.sql` in a seed folder, by name. Anything ambiguous (two files
//! with one number, a rollback for no migration, a `.sql` with no number) is an
//! error: a silently skipped or reordered migration is the failure we exist to prevent.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::core::manifest::{FileKind, SourceFormat};
use crate::core::paths;

/// One file to pack, in run order within its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub id: String,
    /// Absolute (or root-joined) path to read from.
    pub abs: PathBuf,
    /// Project-relative, `/`-separated path stored in the tarball.
    pub path: String,
    pub kind: FileKind,
    pub order: u32,
    pub rollback_for: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Collection {
    pub format: SourceFormat,
    /// Migrations in order, then rollbacks, then seeds.
    pub files: Vec<SourceFile>,
    pub warnings: Vec<String>,
}

impl Collection {
    pub fn count(&self, kind: FileKind) -> usize {
        self.files.iter().filter(|f| f.kind == kind).count()
    }
}

/// Where to look, relative to `root`.
#[derive(Debug, Clone)]
pub struct Sources<'a> {
    pub root: &'a Path,
    pub migrations: &'a str,
    /// `None` = detect (drizzle when `meta/_journal.json` exists).
    pub format: Option<SourceFormat>,
    pub rollbacks: Option<&'a str>,
    pub seeds: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error(
        "migrations folder {0} does not exist; create it, or set `project.migrations` in squizzle.toml"
    )]
    MissingFolder(PathBuf),
    #[error("{0} is not a folder")]
    NotAFolder(PathBuf),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Journal { path: PathBuf, message: String },
    #[error(
        "{journal} lists {tag:?} (entry {idx}) but {expected} does not exist; restore the file or regenerate the journal with drizzle-kit"
    )]
    JournalMissingFile {
        journal: PathBuf,
        tag: String,
        idx: u64,
        expected: PathBuf,
    },
    #[error("{path}: {message}")]
    BadName { path: PathBuf, message: String },
    #[error(
        "{first} and {second} both have number {number}; the order would be ambiguous, renumber one of them"
    )]
    DuplicateNumber {
        first: String,
        second: String,
        number: String,
    },
    #[error("{path} is a rollback for {id:?}, but no migration has that id")]
    OrphanRollback { path: String, id: String },
    #[error("{first} and {second} are both rollbacks for {id:?}; keep one")]
    DuplicateRollback {
        first: String,
        second: String,
        id: String,
    },
    #[error(
        "no migrations found in {0}; add NNNN_name.sql files (or point `project.migrations` at your drizzle folder)"
    )]
    Empty(PathBuf),
}

#[derive(Deserialize)]
struct Journal {
    dialect: Option<String>,
    entries: Vec<JournalEntry>,
}

#[derive(Deserialize)]
struct JournalEntry {
    idx: u64,
    tag: String,
}

pub const JOURNAL: &str = "meta/_journal.json";

pub fn is_drizzle_folder(dir: &Path) -> bool {
    dir.join(JOURNAL).is_file()
}

pub fn collect(src: &Sources<'_>) -> Result<Collection, CollectError> {
    let rel_dir = src.migrations.trim_end_matches('/');
    let dir = src.root.join(rel_dir);
    if !dir.exists() {
        return Err(CollectError::MissingFolder(dir));
    }
    if !dir.is_dir() {
        return Err(CollectError::NotAFolder(dir));
    }
    let format = src.format.unwrap_or(if is_drizzle_folder(&dir) {
        SourceFormat::Drizzle
    } else {
        SourceFormat::Plain
    });
    let listing = list_sql(&dir, rel_dir)?;
    let mut warnings = Vec::new();

    let (migrations, mut downs) = match format {
        SourceFormat::Drizzle => drizzle(&dir, rel_dir, &listing, &mut warnings)?,
        SourceFormat::Plain => plain(&listing)?,
    };
    if migrations.is_empty() {
        return Err(CollectError::Empty(dir));
    }
    if let Some(rb) = src.rollbacks {
        let rb = rb.trim_end_matches('/');
        let rb_dir = src.root.join(rb);
        if rb_dir.is_dir() {
            for (name, file) in list_sql(&rb_dir, rb)? {
                let id = name
                    .strip_suffix(".down.sql")
                    .or_else(|| name.strip_suffix(".sql"))
                    .unwrap_or(&name);
                if let Some(prev) = downs.insert(id.to_owned(), file.clone()) {
                    return Err(CollectError::DuplicateRollback {
                        first: prev.1,
                        second: file.1,
                        id: id.to_owned(),
                    });
                }
            }
        } else if rb_dir.exists() {
            return Err(CollectError::NotAFolder(rb_dir));
        }
    }

    let mut files: Vec<SourceFile> = migrations;
    // Rollbacks in the order of the migrations they undo.
    let order_of: HashMap<String, u32> = files.iter().map(|m| (m.id.clone(), m.order)).collect();
    let ids = &order_of;
    let mut rollbacks: Vec<SourceFile> = Vec::new();
    for (id, (abs, path)) in downs {
        if !ids.contains_key(id.as_str()) {
            return Err(CollectError::OrphanRollback { path, id });
        }
        rollbacks.push(SourceFile {
            id: id.clone(),
            abs,
            path,
            kind: FileKind::Rollback,
            order: 0,
            rollback_for: Some(id),
        });
    }
    rollbacks.sort_by_key(|r| order_of[&r.id]);
    for (i, r) in rollbacks.iter_mut().enumerate() {
        r.order = i as u32;
    }
    files.extend(rollbacks);

    if let Some(seeds) = src.seeds {
        let seeds = seeds.trim_end_matches('/');
        let seed_dir = src.root.join(seeds);
        if seed_dir.is_dir() {
            for (i, (name, (abs, path))) in list_sql(&seed_dir, seeds)?.into_iter().enumerate() {
                let id = name.strip_suffix(".sql").unwrap_or(&name).to_owned();
                files.push(SourceFile {
                    id,
                    abs,
                    path,
                    kind: FileKind::Seed,
                    order: i as u32,
                    rollback_for: None,
                });
            }
        } else if seed_dir.exists() {
            return Err(CollectError::NotAFolder(seed_dir));
        }
    }
    Ok(Collection {
        format,
        files,
        warnings,
    })
}

/// `.sql` files directly in `dir` (not hidden), by name: name -> (abs, rel path).
fn list_sql(
    dir: &Path,
    rel_dir: &str,
) -> Result<BTreeMap<String, (PathBuf, String)>, CollectError> {
    let io = |source| CollectError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let abs = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            if abs.extension().is_some_and(|e| e == "sql") {
                return Err(CollectError::BadName {
                    path: abs,
                    message: "the file name is not valid UTF-8; rename it".into(),
                });
            }
            continue;
        };
        if name.starts_with('.') || !name.ends_with(".sql") {
            continue;
        }
        // Follows symlinks: what counts is that the content is a regular file.
        let meta = std::fs::metadata(&abs).map_err(|source| CollectError::Io {
            path: abs.clone(),
            source,
        })?;
        if !meta.is_file() {
            continue;
        }
        let rel = format!("{rel_dir}/{name}");
        paths::validate_relative(&rel).map_err(|e| CollectError::BadName {
            path: abs.clone(),
            message: format!("the stored path {rel:?} {e}"),
        })?;
        out.insert(name, (abs, rel));
    }
    Ok(out)
}

type Listing = BTreeMap<String, (PathBuf, String)>;
type Downs = BTreeMap<String, (PathBuf, String)>;

fn drizzle(
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

/// Splits `0012_add_users` into (numeric prefix, rest).
fn number_prefix(stem: &str) -> Option<(&str, &str)> {
    let digits = stem.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let rest = stem[digits..].strip_prefix('_')?;
    (!rest.is_empty()).then_some((&stem[..digits], rest))
}

fn plain(listing: &Listing) -> Result<(Vec<SourceFile>, Downs), CollectError> {
    // (numeric value, id) -> file; numbers compared without leading zeros.
    let mut ordered: BTreeMap<(usize, String), (String, PathBuf, String)> = BTreeMap::new();
    let mut downs = Downs::new();
    for (name, (abs, path)) in listing {
        let (stem, is_down) = if let Some(s) = name.strip_suffix(".down.sql") {
            (s, true)
        } else if let Some(s) = name.strip_suffix(".up.sql") {
            (s, false)
        } else {
            (name.strip_suffix(".sql").unwrap_or(name), false)
        };
        let Some((num, _)) = number_prefix(stem) else {
            return Err(CollectError::BadName {
                path: abs.clone(),
                message: "migration file names start with a number and '_', like 0001_create_users.sql (rollbacks: 0001_create_users.down.sql)".into(),
            });
        };
        if is_down {
            downs.insert(stem.to_owned(), (abs.clone(), path.clone()));
            continue;
        }
        let trimmed = num.trim_start_matches('0');
        let key = (trimmed.len(), trimmed.to_owned());
        if let Some((_, _, first)) = ordered.get(&key) {
            return Err(CollectError::DuplicateNumber {
                first: first.clone(),
                second: path.clone(),
                number: num.to_owned(),
            });
        }
        ordered.insert(key, (stem.to_owned(), abs.clone(), path.clone()));
    }
    let files = ordered
        .into_values()
        .enumerate()
        .map(|(i, (id, abs, path))| SourceFile {
            id,
            abs,
            path,
            kind: FileKind::Migration,
            order: i as u32,
            rollback_for: None,
        })
        .collect();
    Ok((files, downs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, body: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }

    fn sources<'a>(root: &'a Path, dir: &'a str) -> Sources<'a> {
        Sources {
            root,
            migrations: dir,
            format: None,
            rollbacks: Some("db/rollback"),
            seeds: Some("db/seeds"),
        }
    }

    fn ids(c: &Collection, kind: FileKind) -> Vec<String> {
        c.files
            .iter()
            .filter(|f| f.kind == kind)
            .map(|f| f.id.clone())
            .collect()
    }

    #[test]
    fn plain_folder_orders_numerically_and_pairs_rollbacks_and_seeds() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        for f in [
            "migrations/10_c.sql",
            "migrations/2_b.up.sql",
            "migrations/0001_a.sql",
            "migrations/README.md",
        ] {
            write(r, f, "SELECT 1;");
        }
        write(r, "migrations/0001_a.down.sql", "SELECT 0;");
        write(r, "db/rollback/10_c.sql", "SELECT 0;");
        write(r, "db/seeds/b.sql", "SELECT 0;");
        write(r, "db/seeds/a.sql", "SELECT 0;");
        let c = collect(&sources(r, "migrations")).unwrap();
        assert_eq!(c.format, SourceFormat::Plain);
        assert_eq!(ids(&c, FileKind::Migration), ["0001_a", "2_b", "10_c"]);
        assert_eq!(ids(&c, FileKind::Rollback), ["0001_a", "10_c"]);
        assert_eq!(ids(&c, FileKind::Seed), ["a", "b"]);
        assert_eq!(c.files[0].path, "migrations/0001_a.sql");
        let rb: Vec<_> = c
            .files
            .iter()
            .filter(|f| f.kind == FileKind::Rollback)
            .map(|f| (f.order, f.path.as_str()))
            .collect();
        assert_eq!(
            rb,
            [
                (0, "migrations/0001_a.down.sql"),
                (1, "db/rollback/10_c.sql")
            ]
        );
    }

    #[test]
    fn plain_folder_errors() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        write(r, "m/0001_a.sql", "");
        write(r, "m/1_b.sql", "");
        assert!(matches!(
            collect(&sources(r, "m")),
            Err(CollectError::DuplicateNumber { .. })
        ));

        let t = tempfile::tempdir().unwrap();
        write(t.path(), "m/schema.sql", "");
        assert!(matches!(
            collect(&sources(t.path(), "m")),
            Err(CollectError::BadName { .. })
        ));

        let t = tempfile::tempdir().unwrap();
        write(t.path(), "m/0001_a.sql", "");
        write(t.path(), "m/0002_b.down.sql", "");
        assert!(matches!(
            collect(&sources(t.path(), "m")),
            Err(CollectError::OrphanRollback { .. })
        ));

        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("m")).unwrap();
        assert!(matches!(
            collect(&sources(t.path(), "m")),
            Err(CollectError::Empty(_))
        ));
        assert!(matches!(
            collect(&sources(t.path(), "nope")),
            Err(CollectError::MissingFolder(_))
        ));
    }

    fn journal(tags: &[&str]) -> String {
        let entries: Vec<String> = tags
            .iter()
            .enumerate()
            .map(|(i, t)| {
                format!(r#"{{"idx":{i},"version":"7","when":1,"tag":"{t}","breakpoints":true}}"#)
            })
            .collect();
        format!(
            r#"{{"version":"7","dialect":"postgresql","entries":[{}]}}"#,
            entries.join(",")
        )
    }

    #[test]
    fn drizzle_follows_the_journal_and_warns_about_orphans() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        // Journal order deliberately differs from name order.
        write(
            r,
            "drizzle/meta/_journal.json",
            &journal(&["0000_b", "0001_a"]),
        );
        write(r, "drizzle/0000_b.sql", "");
        write(r, "drizzle/0001_a.sql", "");
        write(r, "drizzle/0002_orphan.sql", "");
        let c = collect(&sources(r, "drizzle")).unwrap();
        assert_eq!(c.format, SourceFormat::Drizzle);
        assert_eq!(ids(&c, FileKind::Migration), ["0000_b", "0001_a"]);
        assert_eq!(c.warnings.len(), 1);
        assert!(
            c.warnings[0].contains("0002_orphan.sql"),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn drizzle_journal_errors() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        write(
            r,
            "d/meta/_journal.json",
            &journal(&["0000_a", "0001_missing"]),
        );
        write(r, "d/0000_a.sql", "");
        let e = collect(&sources(r, "d")).unwrap_err();
        assert!(matches!(e, CollectError::JournalMissingFile { .. }), "{e}");
        assert!(e.to_string().contains("0001_missing.sql"), "{e}");

        write(
            r,
            "d/meta/_journal.json",
            &journal(&["0000_a"]).replace("postgresql", "mysql"),
        );
        let e = collect(&sources(r, "d")).unwrap_err();
        assert!(e.to_string().contains("mysql"), "{e}");

        write(r, "d/meta/_journal.json", &journal(&["0000_a", "0000_a"]));
        assert!(
            collect(&sources(r, "d"))
                .unwrap_err()
                .to_string()
                .contains("twice")
        );

        write(r, "d/meta/_journal.json", &journal(&["../../etc/passwd"]));
        assert!(
            collect(&sources(r, "d"))
                .unwrap_err()
                .to_string()
                .contains("plain file name")
        );

        write(r, "d/meta/_journal.json", "{not json");
        assert!(matches!(
            collect(&sources(r, "d")),
            Err(CollectError::Journal { .. })
        ));
    }

    #[test]
    fn real_dokploy_corpus_collects_in_journal_order() {
        let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dokploy-drizzle");
        let root = corpus.parent().unwrap();
        let c = collect(&sources(root, "dokploy-drizzle")).unwrap();
        assert_eq!(c.count(FileKind::Migration), 186);
        assert_eq!(c.files[0].id, "0000_reflective_puck");
        assert_eq!(c.files[130].id, "0130_perpetual_screwball");
        assert_eq!(c.files[185].id, "0185_needy_kingpin");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }
}
