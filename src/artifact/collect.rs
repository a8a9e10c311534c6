//! Finding a release's files and their order.
//!
//! Each layout is read in the order its own tool runs it:
//! - drizzle-kit: `meta/_journal.json` (files not in the journal are never run
//!   by drizzle, so they are left out with a warning);
//! - plain: `NNNN_name.sql` ordered by the number;
//! - Prisma: one folder per migration holding `migration.sql`, ordered by
//!   folder name compared as text (what Prisma's `listMigrations` does);
//! - Flyway: `V<version>__<description>.sql`, versions compared part by part
//!   as numbers (`1.10` after `1.9`, `1` equal to `1.0`), `U<version>__*.sql`
//!   as the rollback of that version;
//! - sqlx and golang-migrate: `<version>_<name>.sql` / `.up.sql` / `.down.sql`
//!   ordered by the version as an integer, as both tools parse it;
//! - dbmate: `<digits>...sql` in file-name order, each file cut into its
//!   `-- migrate:up` block (the migration) and `-- migrate:down` block (its
//!   rollback);
//! - Atlas: `.sql` files in name order, first checked against `atlas.sum`
//!   computed exactly as Atlas computes it.
//!
//! Rollbacks are also `<id>.sql` in a rollback folder; seeds are every `.sql`
//! in a seed folder, by name. Anything ambiguous (two files with one number, a
//! rollback for no migration, a name the layout does not allow, timestamps of
//! different widths whose numeric and text order disagree) is an error: a
//! silently skipped or reordered migration is the failure we exist to prevent.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

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

pub const PRISMA_LOCK: &str = "migration_lock.toml";
pub const ATLAS_SUM: &str = "atlas.sum";

/// The layout of a migrations folder, from what is in it: a drizzle-kit
/// journal; Prisma's lock file or migration folders; Flyway's `V1__x.sql`
/// names; a numbered file that starts with sqlx's `-- no-transaction`;
/// otherwise plain numbered files. sqlx and golang-migrate folders without
/// that marker are read as plain, which orders them the same way.
pub fn detect(dir: &Path) -> SourceFormat {
    if is_drizzle_folder(dir) {
        return SourceFormat::Drizzle;
    }
    if dir.join(PRISMA_LOCK).is_file() {
        return SourceFormat::Prisma;
    }
    if dir.join(ATLAS_SUM).is_file() {
        return SourceFormat::Atlas;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return SourceFormat::Plain;
    };
    let mut names = Vec::new();
    let mut prisma_folders = false;
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() && path.join("migration.sql").is_file() {
            prisma_folders = true;
        }
        if let Some(n) = e.file_name().to_str()
            && n.ends_with(".sql")
            && path.is_file()
        {
            names.push((n.to_owned(), path));
        }
    }
    let flyway = |n: &str| {
        flyway_kind(n).is_some_and(|(_, v)| v.bytes().next().is_some_and(|b| b.is_ascii_digit()))
    };
    if names.iter().any(|(n, _)| flyway(n)) {
        return SourceFormat::Flyway;
    }
    if names.is_empty() && prisma_folders {
        return SourceFormat::Prisma;
    }
    let dbmate_marker = names.iter().any(|(n, p)| {
        n.as_bytes().first().is_some_and(u8::is_ascii_digit)
            && std::fs::read_to_string(p).is_ok_and(|t| dbmate_directive(&t, "up").is_some())
    });
    if dbmate_marker {
        return SourceFormat::Dbmate;
    }
    let sqlx_marker = names.iter().any(|(n, p)| {
        n.as_bytes().first().is_some_and(u8::is_ascii_digit)
            && !n.ends_with(".down.sql")
            && std::fs::File::open(p).is_ok_and(|mut f| {
                let mut buf = [0u8; 16];
                std::io::Read::read_exact(&mut f, &mut buf).is_ok() && &buf == b"-- no-transactio"
            })
    });
    if sqlx_marker {
        SourceFormat::Sqlx
    } else {
        SourceFormat::Plain
    }
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
    let format = src.format.unwrap_or_else(|| detect(&dir));
    let listing = list_sql(&dir, rel_dir)?;
    let mut warnings = Vec::new();
    // Rollbacks that are a section of a file (dbmate's down blocks).
    let mut down_sections: HashMap<String, ((u64, u64), TxRule)> = HashMap::new();

    let (migrations, mut downs) = match format {
        SourceFormat::Drizzle => drizzle(&dir, rel_dir, &listing, &mut warnings)?,
        SourceFormat::Plain => numbered(&listing, Numbered::PLAIN)?,
        SourceFormat::Sqlx => numbered(&listing, Numbered::SQLX)?,
        SourceFormat::GolangMigrate => numbered(&listing, Numbered::GOLANG_MIGRATE)?,
        SourceFormat::Prisma => prisma(&dir, rel_dir, &listing, &mut warnings)?,
        SourceFormat::Flyway => flyway(&dir, &listing, &mut warnings)?,
        SourceFormat::Dbmate => dbmate(&listing, &mut down_sections, &mut warnings)?,
        SourceFormat::Atlas => atlas(&dir, &listing)?,
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
        let (section, transaction) = down_sections
            .remove(&id)
            .map_or((None, TxRule::Directives), |(s, t)| (Some(s), t));
        rollbacks.push(SourceFile {
            id: id.clone(),
            abs,
            path,
            kind: FileKind::Rollback,
            order: 0,
            rollback_for: Some(id),
            transaction,
            section,
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
                    transaction: TxRule::Directives,
                    section: None,
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

/// Splits `0012_add_users` into (numeric prefix, rest).
fn number_prefix(stem: &str) -> Option<(&str, &str)> {
    let digits = stem.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let rest = stem[digits..].strip_prefix('_')?;
    (!rest.is_empty()).then_some((&stem[..digits], rest))
}

/// The rules of a folder of `<number>_<name>.sql` files.
#[derive(Clone, Copy)]
struct Numbered {
    /// Plain `<n>_<name>.sql` (no `.up`/`.down`) is a migration.
    bare: bool,
    /// Refuse timestamps of different widths whose numeric and text order
    /// disagree (a tool that compares numbers settles it, so only for plain).
    refuse_mixed_widths: bool,
    /// The largest version the tool parses (digits after leading zeros).
    max_digits: Option<(usize, &'static str)>,
    tx: TxRule,
    example: &'static str,
}

impl Numbered {
    const PLAIN: Numbered = Numbered {
        bare: true,
        refuse_mixed_widths: true,
        max_digits: None,
        tx: TxRule::Directives,
        example: "migration file names start with a number and '_', like 0001_create_users.sql (rollbacks: 0001_create_users.down.sql)",
    };
    // sqlx parses the version as an i64: at most 19 digits (and below 2^63).
    const SQLX: Numbered = Numbered {
        bare: true,
        refuse_mixed_widths: false,
        max_digits: Some((19, "sqlx reads the version as a 64-bit signed integer")),
        tx: TxRule::SqlxFirstLine,
        example: "sqlx migration names are <version>_<description>.sql, or .up.sql and .down.sql, like 20240101120000_create_users.sql",
    };
    // golang-migrate parses the version as a uint64 and needs .up/.down.
    const GOLANG_MIGRATE: Numbered = Numbered {
        bare: false,
        refuse_mixed_widths: false,
        max_digits: Some((
            20,
            "golang-migrate reads the version as a 64-bit unsigned integer",
        )),
        tx: TxRule::Directives,
        example: "golang-migrate names are <version>_<title>.up.sql and <version>_<title>.down.sql, like 000001_create_users.up.sql",
    };
}

fn numbered(listing: &Listing, rules: Numbered) -> Result<(Vec<SourceFile>, Downs), CollectError> {
    // (numeric value, id) -> file; numbers compared without leading zeros.
    let mut ordered: BTreeMap<(usize, String), (String, String, PathBuf, String)> = BTreeMap::new();
    let mut downs = Downs::new();
    for (name, (abs, path)) in listing {
        let (stem, is_down, marked) = if let Some(s) = name.strip_suffix(".down.sql") {
            (s, true, true)
        } else if let Some(s) = name.strip_suffix(".up.sql") {
            (s, false, true)
        } else {
            (name.strip_suffix(".sql").unwrap_or(name), false, false)
        };
        let Some((num, _)) = number_prefix(stem).filter(|_| marked || rules.bare) else {
            return Err(CollectError::BadName {
                path: abs.clone(),
                message: rules.example.into(),
            });
        };
        let trimmed = num.trim_start_matches('0');
        if let Some((max, why)) = rules.max_digits {
            let too_big = trimmed.len() > max
                || (trimmed.len() == max
                    && trimmed
                        .parse::<u64>()
                        .map_or(true, |v| max == 19 && v > i64::MAX as u64));
            if too_big {
                return Err(CollectError::BadName {
                    path: abs.clone(),
                    message: format!("version {num} is too large: {why}"),
                });
            }
        }
        if is_down {
            downs.insert(stem.to_owned(), (abs.clone(), path.clone()));
            continue;
        }
        let key = (trimmed.len(), trimmed.to_owned());
        if let Some((_, _, _, first)) = ordered.get(&key) {
            return Err(CollectError::DuplicateNumber {
                first: first.clone(),
                second: path.clone(),
                number: num.to_owned(),
            });
        }
        ordered.insert(
            key,
            (num.to_owned(), stem.to_owned(), abs.clone(), path.clone()),
        );
    }
    if rules.refuse_mixed_widths {
        check_widths(
            ordered
                .values()
                .map(|(num, _, _, path)| (num.as_str(), path.as_str())),
        )?;
    }
    let files = ordered
        .into_values()
        .enumerate()
        .map(|(i, (_, id, abs, path))| SourceFile {
            id,
            abs,
            path,
            kind: FileKind::Migration,
            order: i as u32,
            rollback_for: None,
            transaction: rules.tx,
            section: None,
        })
        .collect();
    Ok((files, downs))
}

/// Numbers this wide are timestamps, not counters: `2` before `10` is
/// obviously meant, `202401011200000` before `20231231120000000` is not.
const TIMESTAMP_DIGITS: usize = 8;

/// `numbers` in numeric order: refuses when a timestamp-wide number and its
/// neighbour sort differently as text, since the tool that wrote them may have
/// compared them either way.
fn check_widths<'a>(numbers: impl Iterator<Item = (&'a str, &'a str)>) -> Result<(), CollectError> {
    let mut prev: Option<(&str, &str)> = None;
    for (num, path) in numbers {
        if let Some((pn, pp)) = prev
            && pn > num
            && pn.len().max(num.len()) >= TIMESTAMP_DIGITS
        {
            return Err(CollectError::AmbiguousOrder {
                first: pp.to_owned(),
                second: path.to_owned(),
                first_digits: pn.len(),
                second_digits: num.len(),
                hint: " (for a Prisma history, point `project.migrations` at the original folders instead: they carry Prisma's own order)",
            });
        }
        prev = Some((num, path));
    }
    Ok(())
}

/// Prisma: every sub-folder is a migration whose script is `migration.sql`,
/// run in the order of the folder names compared as text. A `down.sql` in
/// the folder is its rollback.
fn prisma(
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

/// What a Flyway file name is: versioned (`V`), undo (`U`), repeatable (`R`)
/// or baseline (`B`), with the version text between the prefix and `__`.
fn flyway_kind(name: &str) -> Option<(char, &str)> {
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
fn flyway_version(text: &str) -> Option<Vec<(usize, String)>> {
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
fn flyway(
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

/// Where the first `-- migrate:<which>` line starts and the options after it,
/// as dbmate's pattern finds it: at the very start of a line, `--`, optional
/// spaces, `migrate:up`/`migrate:down`, then the end of the line or spaces and
/// options. Also how many such lines there are.
fn dbmate_directive(text: &str, which: &str) -> Option<(usize, String, usize)> {
    let mut found: Option<(usize, String)> = None;
    let mut count = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let Some(rest) = line.strip_prefix("--") else {
            continue;
        };
        let Some(rest) = rest.trim_start().strip_prefix("migrate:") else {
            continue;
        };
        let Some(after) = rest.strip_prefix(which) else {
            continue;
        };
        if !(after.trim().is_empty() || after.starts_with(char::is_whitespace)) {
            continue;
        }
        count += 1;
        if found.is_none() {
            found = Some((start, after.trim().to_owned()));
        }
    }
    found.map(|(start, options)| (start, options, count))
}

/// dbmate's options on a directive line: `transaction:false` runs the
/// section outside a transaction; any other option is refused.
fn dbmate_tx(options: &str, path: &Path, which: &str) -> Result<TxRule, CollectError> {
    let mut rule = TxRule::Directives;
    for pair in options.split_whitespace() {
        match pair {
            "transaction:false" => rule = TxRule::Fixed(TransactionMode::None),
            "transaction:true" => rule = TxRule::Fixed(TransactionMode::Default),
            other => {
                return Err(CollectError::Unsupported {
                    path: path.to_path_buf(),
                    message: format!(
                        "the `-- migrate:{which}` line has the option {other:?}; squizzle understands transaction:false and transaction:true"
                    ),
                });
            }
        }
    }
    Ok(rule)
}

/// dbmate: every `<digits>...sql` file, in file-name order (dbmate sorts the
/// names as text), holds a `-- migrate:up` block and then a `-- migrate:down`
/// block. The up block is the migration and the down block its rollback, each
/// packed as its own file (`<name>.up.sql`, `<name>.down.sql`) so apply never
/// sees the other half.
fn dbmate(
    listing: &Listing,
    down_sections: &mut HashMap<String, ((u64, u64), TxRule)>,
    warnings: &mut Vec<String>,
) -> Result<(Vec<SourceFile>, Downs), CollectError> {
    let mut files = Vec::new();
    let mut downs = Downs::new();
    let mut versions: HashMap<String, String> = HashMap::new();
    // BTreeMap keys: file names in byte order, which is Go's string order.
    for (name, (abs, path)) in listing {
        let digits = name.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            warnings.push(format!(
                "{path} does not start with a version number, so dbmate never runs it; it is left out of the release"
            ));
            continue;
        }
        let version = &name[..digits];
        if let Some(first) = versions.insert(version.to_owned(), path.clone()) {
            return Err(CollectError::DuplicateNumber {
                first,
                second: path.clone(),
                number: version.to_owned(),
            });
        }
        let text = std::fs::read_to_string(abs).map_err(|source| CollectError::Io {
            path: abs.clone(),
            source,
        })?;
        let bad = |message: &str| CollectError::Unsupported {
            path: abs.clone(),
            message: message.to_owned(),
        };
        let Some((up, up_options, ups)) = dbmate_directive(&text, "up") else {
            return Err(bad(
                "has no `-- migrate:up` line; dbmate needs one before the migration's SQL (and `-- migrate:down` before its rollback)",
            ));
        };
        let Some((down, down_options, downs_count)) = dbmate_directive(&text, "down") else {
            return Err(bad(
                "has no `-- migrate:down` line; dbmate needs one after the up block (it may be followed by nothing)",
            ));
        };
        if ups > 1 || downs_count > 1 {
            return Err(bad(
                "has more than one `-- migrate:up` or `-- migrate:down` block; split it into one migration file per pair",
            ));
        }
        if up > down {
            return Err(bad(
                "has `-- migrate:down` before `-- migrate:up`; dbmate needs up first",
            ));
        }
        let before = &text[..up];
        if before
            .lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
        {
            return Err(bad(
                "has SQL before `-- migrate:up`; dbmate refuses that too. Move it into the up block",
            ));
        }
        let stem = name.strip_suffix(".sql").unwrap_or(name).to_owned();
        let base = path.strip_suffix(".sql").unwrap_or(path);
        let up_path = format!("{base}.up.sql");
        let down_path = format!("{base}.down.sql");
        for p in [&up_path, &down_path] {
            paths::validate_relative(p).map_err(|e| CollectError::BadName {
                path: abs.clone(),
                message: format!("the stored path {p:?} {e}"),
            })?;
        }
        files.push(SourceFile {
            id: stem.clone(),
            abs: abs.clone(),
            path: up_path,
            kind: FileKind::Migration,
            order: files.len() as u32,
            rollback_for: None,
            transaction: dbmate_tx(&up_options, abs, "up")?,
            section: Some((up as u64, (down - up) as u64)),
        });
        down_sections.insert(
            stem.clone(),
            (
                (down as u64, (text.len() - down) as u64),
                dbmate_tx(&down_options, abs, "down")?,
            ),
        );
        downs.insert(stem, (abs.clone(), down_path));
    }
    Ok((files, downs))
}

/// Atlas's integrity file as Atlas computes it: one SHA-256 runs over every
/// `.sql` file of the folder in name order, fed the file's name and then its
/// bytes; after each file the running digest (base64) is that file's line,
/// and the first line is the SHA-256 of all the names and line digests.
fn atlas_sum(files: &[(String, Vec<u8>)]) -> (String, Vec<(String, String)>) {
    use base64::Engine as _;
    use sha2::Digest as _;
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    let mut running = sha2::Sha256::new();
    let mut lines = Vec::with_capacity(files.len());
    for (name, bytes) in files {
        running.update(name.as_bytes());
        running.update(bytes);
        lines.push((name.clone(), b64(&running.clone().finalize())));
    }
    let mut total = sha2::Sha256::new();
    for (n, h) in &lines {
        total.update(n.as_bytes());
        total.update(h.as_bytes());
    }
    (b64(&total.finalize()), lines)
}

/// Atlas's directives in a file's leading comments: `atlas:txmode none` runs
/// the file outside a transaction, `atlas:nolint` is for Atlas's linter; any
/// other (`delimiter`, `checkpoint`, `sum`, ...) changes what Atlas runs and is
/// refused rather than ignored.
fn atlas_tx(text: &str, path: &Path) -> Result<TxRule, CollectError> {
    let mut rule = TxRule::Directives;
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        let Some(comment) = t.strip_prefix("--") else {
            break;
        };
        let Some(directive) = comment.trim().strip_prefix("atlas:") else {
            continue;
        };
        let mut words = directive.split_whitespace();
        match (words.next(), words.next()) {
            (Some("txmode"), Some("none")) => rule = TxRule::Fixed(TransactionMode::None),
            (Some("txmode"), Some("file" | "all")) => {}
            (Some("nolint"), _) => {}
            _ => {
                return Err(CollectError::Unsupported {
                    path: path.to_path_buf(),
                    message: format!(
                        "has the Atlas directive `atlas:{directive}`, which squizzle does not follow; it understands atlas:txmode and atlas:nolint"
                    ),
                });
            }
        }
    }
    Ok(rule)
}

/// Atlas: every `.sql` file in name order, checked against `atlas.sum`
/// before anything else: a file edited, added or removed without
/// `atlas migrate hash` is refused, naming it.
fn atlas(dir: &Path, listing: &Listing) -> Result<(Vec<SourceFile>, Downs), CollectError> {
    let sum_path = dir.join(ATLAS_SUM);
    let sum_err = |problem: String| CollectError::AtlasSum {
        sum: sum_path.clone(),
        problem,
    };
    let text = std::fs::read_to_string(&sum_path).map_err(|source| CollectError::Io {
        path: sum_path.clone(),
        source,
    })?;
    let mut lines = text.lines();
    let written_total = lines
        .next()
        .and_then(|l| l.strip_prefix("h1:"))
        .ok_or_else(|| sum_err("its first line is not `h1:<sum>`".into()))?;
    let mut written: Vec<(String, String)> = Vec::new();
    for line in lines {
        let (name, hash) = line
            .split_once("h1:")
            .ok_or_else(|| sum_err(format!("the line {line:?} is not `<file> h1:<hash>`")))?;
        written.push((name.trim().to_owned(), hash.to_owned()));
    }
    let mut contents = Vec::with_capacity(listing.len());
    for (name, (abs, _)) in listing {
        let bytes = std::fs::read(abs).map_err(|source| CollectError::Io {
            path: abs.clone(),
            source,
        })?;
        contents.push((name.clone(), bytes));
    }
    let (total, computed) = atlas_sum(&contents);
    // Name the first file that differs; the running hash makes every later
    // line differ too, so only the first says which file changed.
    for i in 0..written.len().max(computed.len()) {
        match (written.get(i), computed.get(i)) {
            (Some(w), Some(c)) if w == c => {}
            (Some(w), Some(c)) if w.0 == c.0 => {
                return Err(sum_err(format!(
                    "{} has changed since the sum was written",
                    c.0
                )));
            }
            (Some(w), Some(c)) => {
                return Err(sum_err(format!(
                    "the folder has {} where the sum lists {}",
                    c.0, w.0
                )));
            }
            (Some(w), None) => {
                return Err(sum_err(format!("{} is listed but missing", w.0)));
            }
            (None, Some(c)) => {
                return Err(sum_err(format!("{} is not listed", c.0)));
            }
            (None, None) => {}
        }
    }
    if written_total != total {
        return Err(sum_err(
            "its first line (the sum of the lines) is wrong".into(),
        ));
    }
    let mut files = Vec::with_capacity(listing.len());
    let mut versions: HashMap<&str, &str> = HashMap::new();
    for (i, ((name, (abs, path)), (_, bytes))) in listing.iter().zip(&contents).enumerate() {
        let version = name
            .split('_')
            .next()
            .unwrap_or(name)
            .trim_end_matches(".sql");
        if let Some(first) = versions.insert(version, path) {
            return Err(CollectError::DuplicateNumber {
                first: first.to_owned(),
                second: path.clone(),
                number: version.to_owned(),
            });
        }
        let text = String::from_utf8_lossy(bytes);
        files.push(SourceFile {
            id: name.strip_suffix(".sql").unwrap_or(name).to_owned(),
            abs: abs.clone(),
            path: path.clone(),
            kind: FileKind::Migration,
            order: i as u32,
            rollback_for: None,
            transaction: atlas_tx(&text, abs)?,
            section: None,
        });
    }
    Ok((files, Downs::new()))
}

/// Flyway's per-script configuration `<file>.sql.conf`: only
/// `executeInTransaction` is understood; any other setting is refused rather
/// than ignored.
fn flyway_conf(script: &Path) -> Result<TxRule, CollectError> {
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

    fn with(root: &Path, dir: &'static str, format: Option<SourceFormat>) -> Collection {
        collect(&Sources {
            format,
            ..sources(root, dir)
        })
        .unwrap()
    }

    fn err(root: &Path, dir: &'static str, format: Option<SourceFormat>) -> CollectError {
        collect(&Sources {
            format,
            ..sources(root, dir)
        })
        .unwrap_err()
    }

    #[test]
    fn plain_refuses_timestamps_whose_width_makes_number_and_name_order_disagree() {
        // The issue's case: a Prisma history flattened by hand, one 15-digit and
        // one 17-digit timestamp. By number the 15-digit one runs first, by name
        // the 17-digit one: no guess.
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "m/202401011200000_a.sql", "");
        write(t.path(), "m/20231231120000000_b.sql", "");
        let e = err(t.path(), "m", None);
        assert!(matches!(e, CollectError::AmbiguousOrder { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("202401011200000_a.sql") && msg.contains("20231231120000000_b.sql"),
            "{msg}"
        );
        assert!(msg.contains("15 and 17 digits"), "{msg}");

        // Same widths, or widths whose orders agree, are fine.
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "m/0001_a.sql", "");
        write(t.path(), "m/20240101120000_b.sql", "");
        write(t.path(), "m/20240102120000_c.sql", "");
        assert_eq!(
            ids(&with(t.path(), "m", None), FileKind::Migration),
            ["0001_a", "20240101120000_b", "20240102120000_c"]
        );

        // sqlx compares the numbers itself: its order is the tool's, not a guess.
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "m/202401011200000_a.sql", "");
        write(t.path(), "m/20231231120000000_b.sql", "");
        let c = with(t.path(), "m", Some(SourceFormat::Sqlx));
        assert_eq!(
            ids(&c, FileKind::Migration),
            ["202401011200000_a", "20231231120000000_b"]
        );
    }

    #[test]
    fn prisma_runs_folders_in_text_order_with_down_scripts_as_rollbacks() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        write(r, "p/migration_lock.toml", "provider = \"postgresql\"\n");
        write(r, "p/20240201080000_b/migration.sql", "");
        write(r, "p/20240201080000_b/down.sql", "");
        write(r, "p/20240105093000_a/migration.sql", "");
        // Hand-named, shorter: as a number it is the smallest, as text (Prisma's
        // order) it comes after 20240201080000_b ('0' < '_').
        write(r, "p/2024020108_hotfix/migration.sql", "");
        write(r, "p/stray.sql", "");
        assert_eq!(detect(&r.join("p")), SourceFormat::Prisma);
        let c = with(r, "p", None);
        assert_eq!(c.format, SourceFormat::Prisma);
        assert_eq!(
            ids(&c, FileKind::Migration),
            ["20240105093000_a", "20240201080000_b", "2024020108_hotfix"]
        );
        assert_eq!(c.files[1].path, "p/20240201080000_b/migration.sql");
        assert_eq!(ids(&c, FileKind::Rollback), ["20240201080000_b"]);
        assert!(
            c.warnings.iter().any(|w| w.contains("p/stray.sql")),
            "{:?}",
            c.warnings
        );

        // Without the lock file, migration folders alone are recognised.
        std::fs::remove_file(r.join("p/migration_lock.toml")).unwrap();
        std::fs::remove_file(r.join("p/stray.sql")).unwrap();
        assert_eq!(detect(&r.join("p")), SourceFormat::Prisma);
    }

    #[test]
    fn prisma_refusals() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        write(r, "p/migration_lock.toml", "provider = \"mysql\"\n");
        write(r, "p/20240105093000_a/migration.sql", "");
        assert!(err(r, "p", None).to_string().contains("\"mysql\""));

        write(r, "p/migration_lock.toml", "provider = \"postgresql\"\n");
        std::fs::create_dir_all(r.join("p/20240106093000_empty")).unwrap();
        let e = err(r, "p", None);
        assert!(e.to_string().contains("without migration.sql"), "{e}");

        let t = tempfile::tempdir().unwrap();
        write(
            t.path(),
            "p/migration_lock.toml",
            "provider = \"postgresql\"\n",
        );
        assert!(matches!(err(t.path(), "p", None), CollectError::Empty(_)));
    }

    #[test]
    fn flyway_orders_versions_as_flyway_does() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        for f in [
            "V10__d.sql",
            "V2__c.sql",
            "V1_1__b.sql",
            "V1__a.sql",
            "V1.9__a2.sql",
            "U2__c.sql",
        ] {
            write(r, &format!("f/{f}"), "SELECT 1;");
        }
        write(
            r,
            "f/V10__d.sql.conf",
            "# comment\nexecuteInTransaction=false\n",
        );
        write(r, "f/notes.sql", "");
        assert_eq!(detect(&r.join("f")), SourceFormat::Flyway);
        let c = with(r, "f", None);
        assert_eq!(c.format, SourceFormat::Flyway);
        assert_eq!(
            ids(&c, FileKind::Migration),
            ["V1__a", "V1_1__b", "V1.9__a2", "V2__c", "V10__d"]
        );
        assert_eq!(ids(&c, FileKind::Rollback), ["V2__c"]);
        assert_eq!(c.files[4].transaction, TxRule::Fixed(TransactionMode::None));
        assert_eq!(c.files[0].transaction, TxRule::Directives);
        assert!(
            c.warnings.iter().any(|w| w.contains("notes.sql")),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn flyway_refusals() {
        let case = |files: &[(&str, &str)], needle: &str| {
            let t = tempfile::tempdir().unwrap();
            for (f, body) in files {
                write(t.path(), &format!("f/{f}"), body);
            }
            let e = err(t.path(), "f", Some(SourceFormat::Flyway));
            assert!(e.to_string().contains(needle), "{needle:?} not in: {e}");
        };
        // 1 and 1.0 are one version to Flyway.
        case(
            &[("V1__a.sql", ""), ("V1.0__b.sql", "")],
            "both have number",
        );
        case(&[("V1__a.sql", ""), ("R__view.sql", "")], "repeatable");
        case(&[("V1__a.sql", ""), ("B2__base.sql", "")], "baseline");
        case(
            &[("V1__a.sql", ""), ("U3__x.sql", "")],
            "no migration has that id",
        );
        case(&[("V1__a.sql", "SELECT '${schema}';")], "placeholder");
        case(
            &[("V1__a.sql", ""), ("V1__a.sql.conf", "mixed=true")],
            "\"mixed\"",
        );
        case(
            &[("V1__a.sql", ""), ("V1.x__b.sql", "")],
            "numbers separated",
        );
        case(&[("V1__a.sql", ""), ("more/V2__b.sql", "")], "sub-folders");
    }

    #[test]
    fn sqlx_and_golang_migrate_read_their_own_names() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        write(r, "s/20240101120000_a.sql", "CREATE TABLE a ();");
        write(
            r,
            "s/20240102120000_b.sql",
            "-- no-transaction\nCREATE INDEX CONCURRENTLY i ON a ();",
        );
        write(r, "s/20240103120000_c.up.sql", "");
        write(r, "s/20240103120000_c.down.sql", "");
        assert_eq!(detect(&r.join("s")), SourceFormat::Sqlx);
        let c = with(r, "s", None);
        assert_eq!(c.format, SourceFormat::Sqlx);
        assert_eq!(
            ids(&c, FileKind::Migration),
            ["20240101120000_a", "20240102120000_b", "20240103120000_c"]
        );
        assert_eq!(ids(&c, FileKind::Rollback), ["20240103120000_c"]);
        assert!(
            c.files
                .iter()
                .filter(|f| f.kind == FileKind::Migration)
                .all(|f| f.transaction == TxRule::SqlxFirstLine)
        );

        write(r, "s/20240101120000_dup.sql", "");
        assert!(matches!(
            err(r, "s", None),
            CollectError::DuplicateNumber { .. }
        ));
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "s/99999999999999999999_big.sql", "");
        assert!(
            err(t.path(), "s", Some(SourceFormat::Sqlx))
                .to_string()
                .contains("64-bit")
        );

        // golang-migrate: .up/.down only, numeric order, .down as rollbacks.
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        write(r, "g/10_c.up.sql", "");
        write(r, "g/2_b.up.sql", "");
        write(r, "g/2_b.down.sql", "");
        let c = with(r, "g", Some(SourceFormat::GolangMigrate));
        assert_eq!(ids(&c, FileKind::Migration), ["2_b", "10_c"]);
        assert_eq!(ids(&c, FileKind::Rollback), ["2_b"]);
        assert!(c.files.iter().all(|f| f.transaction == TxRule::Directives));
        write(r, "g/11_d.sql", "");
        assert!(
            err(r, "g", Some(SourceFormat::GolangMigrate))
                .to_string()
                .contains(".up.sql")
        );
    }

    #[test]
    fn sqlx_marker_must_be_the_very_first_bytes() {
        use TransactionMode::{Default as Tx, None as NoTx};
        assert_eq!(
            TxRule::SqlxFirstLine.apply("-- no-transaction\nCREATE INDEX", Tx),
            NoTx
        );
        // sqlx tests `starts_with`: anything before the marker cancels it.
        assert_eq!(TxRule::SqlxFirstLine.apply("\n-- no-transaction\n", Tx), Tx);
        assert_eq!(
            TxRule::SqlxFirstLine.apply("-- add index\n-- no-transaction\n", Tx),
            Tx
        );
        // squizzle's own directive still counts everywhere.
        assert_eq!(TxRule::SqlxFirstLine.apply("SELECT 1;", NoTx), NoTx);
        assert_eq!(TxRule::Directives.apply("-- no-transaction\n", Tx), Tx);
        assert_eq!(TxRule::Fixed(NoTx).apply("", Tx), NoTx);
        assert_eq!(TxRule::Fixed(Tx).apply("", NoTx), NoTx);
    }

    #[test]
    fn dbmate_files_are_cut_into_up_and_down_sections_in_name_order() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let a = "-- a comment\n-- migrate:up\nCREATE TABLE a ();\n-- migrate:down\nDROP TABLE a;\n";
        write(r, "d/20240101_a.sql", a);
        write(
            r,
            "d/2024010101_b.sql",
            "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON a ();\n--migrate:down\n",
        );
        write(r, "d/notes.sql", "");
        assert_eq!(detect(&r.join("d")), SourceFormat::Dbmate);
        let c = with(r, "d", None);
        assert_eq!(c.format, SourceFormat::Dbmate);
        // Name order, as dbmate sorts: "2024010101_b" < "20240101_a" ('0' < '_').
        assert_eq!(ids(&c, FileKind::Migration), ["2024010101_b", "20240101_a"]);
        assert_eq!(ids(&c, FileKind::Rollback), ["2024010101_b", "20240101_a"]);
        let up_a = c
            .files
            .iter()
            .find(|f| f.id == "20240101_a" && f.kind == FileKind::Migration)
            .unwrap();
        assert_eq!(up_a.path, "d/20240101_a.up.sql");
        assert_eq!(
            up_a.read_text().unwrap(),
            "-- migrate:up\nCREATE TABLE a ();\n"
        );
        let down_a = c
            .files
            .iter()
            .find(|f| f.id == "20240101_a" && f.kind == FileKind::Rollback)
            .unwrap();
        assert_eq!(down_a.path, "d/20240101_a.down.sql");
        assert_eq!(
            down_a.read_text().unwrap(),
            "-- migrate:down\nDROP TABLE a;\n"
        );
        assert_eq!(c.files[0].transaction, TxRule::Fixed(TransactionMode::None));
        assert!(
            c.warnings.iter().any(|w| w.contains("notes.sql")),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn dbmate_refusals() {
        let case = |body: &str, needle: &str| {
            let t = tempfile::tempdir().unwrap();
            write(t.path(), "d/1_a.sql", body);
            let e = err(t.path(), "d", Some(SourceFormat::Dbmate));
            assert!(e.to_string().contains(needle), "{needle:?} not in: {e}");
        };
        case("CREATE TABLE a ();\n", "no `-- migrate:up`");
        case(
            "-- migrate:up\nCREATE TABLE a ();\n",
            "no `-- migrate:down`",
        );
        case(
            "-- migrate:down\n\n-- migrate:up\nSELECT 1;\n",
            "before `-- migrate:up`",
        );
        case(
            "SELECT 1;\n-- migrate:up\nSELECT 2;\n-- migrate:down\n",
            "SQL before",
        );
        case(
            "-- migrate:up\nSELECT 1;\n-- migrate:down\n-- migrate:up\nSELECT 2;\n-- migrate:down\n",
            "more than one",
        );
        case(
            "-- migrate:up nolock:true\nSELECT 1;\n-- migrate:down\n",
            "\"nolock:true\"",
        );
        // "-- migrate:upgrade" is not the directive (dbmate's pattern wants a space or the end).
        case(
            "-- migrate:upgrade\nSELECT 1;\n-- migrate:down\n",
            "no `-- migrate:up`",
        );

        let t = tempfile::tempdir().unwrap();
        write(t.path(), "d/1_a.sql", "-- migrate:up\n-- migrate:down\n");
        write(t.path(), "d/1_b.sql", "-- migrate:up\n-- migrate:down\n");
        assert!(matches!(
            err(t.path(), "d", Some(SourceFormat::Dbmate)),
            CollectError::DuplicateNumber { .. }
        ));
    }

    /// A copy of the Atlas fixture (its atlas.sum was written by the algorithm
    /// Atlas uses, checked against a sum Atlas itself wrote) in `root/a`.
    fn atlas_copy(root: &Path) {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/formats/atlas/migrations");
        std::fs::create_dir_all(root.join("a")).unwrap();
        for e in std::fs::read_dir(src).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), root.join("a").join(e.file_name())).unwrap();
        }
    }

    #[test]
    fn atlas_sum_is_computed_as_atlas_does_and_the_folder_reads_in_name_order() {
        let t = tempfile::tempdir().unwrap();
        atlas_copy(t.path());
        assert_eq!(detect(&t.path().join("a")), SourceFormat::Atlas);
        let c = with(t.path(), "a", None);
        assert_eq!(
            ids(&c, FileKind::Migration),
            [
                "20240410120000_create_orders",
                "20240411090000_orders_customer_index",
                "20240412150000_add_status"
            ]
        );
        assert_eq!(c.files[1].transaction, TxRule::Fixed(TransactionMode::None));
        assert_eq!(c.files[0].transaction, TxRule::Directives);

        // The sum file's text, rebuilt from the files.
        let listing = list_sql(&t.path().join("a"), "a").unwrap();
        let contents: Vec<(String, Vec<u8>)> = listing
            .iter()
            .map(|(n, (abs, _))| (n.clone(), std::fs::read(abs).unwrap()))
            .collect();
        let (total, lines) = atlas_sum(&contents);
        let mut text = format!("h1:{total}\n");
        for (n, h) in lines {
            text.push_str(&format!("{n} h1:{h}\n"));
        }
        assert_eq!(
            text,
            std::fs::read_to_string(t.path().join("a/atlas.sum")).unwrap()
        );
    }

    #[test]
    fn atlas_refuses_a_folder_its_sum_disagrees_with_naming_the_file() {
        let case = |change: &dyn Fn(&Path), needle: &str| {
            let t = tempfile::tempdir().unwrap();
            atlas_copy(t.path());
            change(&t.path().join("a"));
            let e = err(t.path(), "a", None);
            assert!(e.to_string().contains(needle), "{needle:?} not in: {e}");
        };
        case(
            &|d| {
                write(
                    d,
                    "20240411090000_orders_customer_index.sql",
                    "-- atlas:txmode none\nSELECT 1;\n",
                )
            },
            "20240411090000_orders_customer_index.sql has changed",
        );
        case(
            &|d| write(d, "20240413000000_new.sql", "SELECT 1;\n"),
            "20240413000000_new.sql is not listed",
        );
        case(
            &|d| std::fs::remove_file(d.join("20240412150000_add_status.sql")).unwrap(),
            "20240412150000_add_status.sql is listed but missing",
        );
        case(
            &|d| {
                let sum = std::fs::read_to_string(d.join("atlas.sum")).unwrap();
                let mut lines: Vec<&str> = sum.lines().collect();
                lines[0] = "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
                write(d, "atlas.sum", &lines.join("\n"));
            },
            "first line",
        );
        case(
            &|d| write(d, "atlas.sum", "h1:x\ngarbage\n"),
            "is not `<file> h1:<hash>`",
        );
        // With the sum rewritten to match, a directive squizzle cannot follow is refused.
        let t = tempfile::tempdir().unwrap();
        write(
            t.path(),
            "a/1_a.sql",
            "-- atlas:delimiter \\\n\nSELECT 1;\n",
        );
        let body = std::fs::read(t.path().join("a/1_a.sql")).unwrap();
        let (total, lines) = atlas_sum(&[("1_a.sql".to_owned(), body)]);
        write(
            t.path(),
            "a/atlas.sum",
            &format!("h1:{total}\n1_a.sql h1:{}\n", lines[0].1),
        );
        assert!(
            err(t.path(), "a", None)
                .to_string()
                .contains("atlas:delimiter")
        );
    }

    #[test]
    fn repository_fixtures_are_detected_and_ordered() {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/formats");
        let cases: [(&str, SourceFormat, &[&str]); 3] = [
            (
                "prisma/migrations",
                SourceFormat::Prisma,
                &[
                    "20240105093000_init",
                    "20240112140000_add_posts",
                    "20240201080000_post_published",
                ],
            ),
            (
                "flyway/sql",
                SourceFormat::Flyway,
                &[
                    "V1__create_accounts",
                    "V1.1__add_email",
                    "V2__create_ledger",
                    "V10__ledger_account_index",
                ],
            ),
            (
                "sqlx/migrations",
                SourceFormat::Sqlx,
                &[
                    "20240101120000_create_users",
                    "20240102120000_users_email_index",
                    "20240103120000_create_sessions",
                ],
            ),
        ];
        for (dir, format, expected) in cases {
            let src = Sources {
                root: &base,
                migrations: dir,
                format: None,
                rollbacks: None,
                seeds: None,
            };
            let c = collect(&src).unwrap();
            assert_eq!(c.format, format, "{dir}");
            assert_eq!(ids(&c, FileKind::Migration), expected, "{dir}");
        }
        assert_eq!(
            detect(&base.join("golang-migrate/migrations")),
            SourceFormat::Plain
        );
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
