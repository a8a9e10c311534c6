//! What every layout reader shares: the files found, their transaction
//! rule, the errors, and the listing of a folder's `.sql` files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::core::manifest::{FileKind, SourceFormat, TransactionMode};
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
    /// What, besides squizzle's own directive, decides the transaction mode.
    pub transaction: TxRule,
    /// Only these bytes of `abs` (start, length): a dbmate file's up or down
    /// section. `None` = the whole file.
    pub section: Option<(u64, u64)>,
}

impl SourceFile {
    /// The text that is packed for this file (its section, or all of it).
    pub fn read_text(&self) -> std::io::Result<String> {
        let bytes = std::fs::read(&self.abs)?;
        let bytes = match self.section {
            None => bytes,
            Some((start, len)) => usize::try_from(start)
                .ok()
                .zip(usize::try_from(len).ok())
                .and_then(|(s, l)| bytes.get(s..s.checked_add(l)?))
                .ok_or_else(|| {
                    std::io::Error::other("the file changed after it was read; build again")
                })?
                .to_vec(),
        };
        String::from_utf8(bytes).map_err(std::io::Error::other)
    }
}

/// Where a file's transaction mode comes from. squizzle's own
/// `-- squizzle:no-transaction` directive counts in every layout; these add
/// the source tool's own way of saying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TxRule {
    /// Only squizzle's directive.
    #[default]
    Directives,
    /// sqlx: the file starts with `-- no-transaction`.
    SqlxFirstLine,
    /// Fixed by a side file (Flyway's `executeInTransaction` in `<file>.conf`).
    Fixed(TransactionMode),
}

impl TxRule {
    /// The mode for a file whose leading bytes are `head`, given what
    /// squizzle's own directives said.
    pub fn apply(self, head: &str, from_directives: TransactionMode) -> TransactionMode {
        match self {
            TxRule::Directives => from_directives,
            // sqlx tests the raw text with `starts_with`, nothing before it.
            TxRule::SqlxFirstLine if head.starts_with("-- no-transaction") => TransactionMode::None,
            TxRule::SqlxFirstLine => from_directives,
            TxRule::Fixed(TransactionMode::None) => TransactionMode::None,
            TxRule::Fixed(_) => from_directives,
        }
    }
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
    #[error(
        "{first} and {second} have timestamps of different widths ({first_digits} and {second_digits} digits), so ordering them by number and by name disagree; squizzle will not guess which one runs first. Rename one so both have the same width{hint}"
    )]
    AmbiguousOrder {
        first: String,
        second: String,
        first_digits: usize,
        second_digits: usize,
        hint: &'static str,
    },
    #[error("{path}: {message}")]
    Unsupported { path: PathBuf, message: String },
    #[error(
        "{sum} does not match the migrations: {problem}. Atlas refuses this folder too; if the change is intended, run `atlas migrate hash` and review the diff"
    )]
    AtlasSum { sum: PathBuf, problem: String },
}

/// `.sql` files directly in `dir` (not hidden), by name: name -> (abs, rel path).
pub(super) fn list_sql(
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

pub(super) type Listing = BTreeMap<String, (PathBuf, String)>;
pub(super) type Downs = BTreeMap<String, (PathBuf, String)>;
