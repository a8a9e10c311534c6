//! Shared room: what a new release must agree with before it is built, for
//! `build` (which refuses) and `check` (which reports, for pull requests).
//!
//! - `previous`: the release to compare with (`--previous`, the local store,
//!   the registry), or why there is none;
//! - `compare`: the pure history rule (edited, removed, renamed, moved, out of
//!   order);
//! - `sql`: per-file refusals apply would otherwise hit only after it had
//!   connected (transaction control, `CONCURRENTLY` in a transactional file).
//!
//! This module decides; it never prints and never writes a release.

pub mod compare;
pub mod previous;
pub mod sql;

use std::collections::BTreeSet;

use serde::Serialize;

use crate::artifact::collect::{self, Collection, SourceFile, Sources};
use crate::config::{Config, MigrationFormat};
use crate::core::digest::Digest;
use crate::core::manifest::{
    Allowance, ChangeKind, FileEntry, FileKind, Lineage, PreviousRelease, SourceFormat,
};
use crate::core::version::Version;
use crate::db::split::SplitMode;
use crate::ops::{Error, Result};

pub use compare::Change;
pub use previous::{Previous, PreviousChoice};
pub use sql::{SqlProblem, SqlProblemKind};

/// How a build (or check) treats history.
#[derive(Debug, Clone, Default)]
pub struct LineageOptions {
    pub previous: PreviousChoice,
    /// `--allow-rewrite ID`: released ids whose edit, removal, rename or move
    /// is accepted.
    pub allow_rewrite: Vec<String>,
    /// `--allow-out-of-order`: new migrations may come before released ones.
    pub allow_out_of_order: bool,
    /// `--allow ID:FILE`: findings accepted (matched once the SQL is analysed).
    pub allow_findings: Vec<String>,
    /// `--reason`, recorded with every allowance.
    pub reason: Option<String>,
}

/// The outcome of comparing a new set of migrations with the previous release.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    /// The release compared with.
    pub previous: Option<PreviousRelease>,
    /// Why nothing was compared, when `previous` is `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unchecked: Option<String>,
    /// Changes nothing allowed: the build is refused.
    pub refused: Vec<Change>,
    /// Changes the flags allowed: recorded in the manifest.
    pub allowed: Vec<Allowance>,
}

impl Review {
    pub fn previous_version(&self) -> Option<Version> {
        self.previous.as_ref().map(|p| p.version.clone())
    }

    /// What the manifest records.
    pub fn lineage(&self) -> Lineage {
        Lineage {
            previous: self.previous.clone(),
            unchecked: self.unchecked.clone(),
            allowances: self.allowed.clone(),
            findings: Vec::new(),
            analysed: false,
            allowed_findings: Vec::new(),
        }
    }

    /// The refusal of the refused changes, if any; `what` names the release
    /// being built (or "this checkout").
    pub fn refusal(&self, what: &str) -> Option<Error> {
        let previous = self.previous.as_ref()?;
        (!self.refused.is_empty()).then(|| {
            Error::HistoryRewrite(Box::new(Refusal {
                what: what.to_owned(),
                previous: previous.version.tag(),
                changes: self.refused.clone(),
            }))
        })
    }
}

/// Compares `current` (this build's files) with what `previous` released and
/// sorts the changes into allowed and refused. An `--allow-rewrite` that
/// names no changed released migration is refused (exit 2): a typo must not
/// pass for a recorded decision.
pub fn review(previous: &Previous, current: &[FileEntry], opts: &LineageOptions) -> Result<Review> {
    let reason = opts
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned);
    if (!opts.allow_rewrite.is_empty() || opts.allow_out_of_order) && reason.is_none() {
        return Err(Error::Usage(
            "--allow-rewrite and --allow-out-of-order need --reason \"...\": it is recorded in the signed manifest".into(),
        ));
    }
    let (release, source, named) = match previous {
        Previous::None { reason: why, .. } => {
            if let Some(id) = opts.allow_rewrite.first() {
                return Err(Error::Usage(format!(
                    "--allow-rewrite {id}: there is no earlier release to compare with ({why}), so nothing needs allowing"
                )));
            }
            return Ok(Review {
                previous: None,
                unchecked: Some(why.clone()),
                refused: Vec::new(),
                allowed: Vec::new(),
            });
        }
        Previous::Found {
            release,
            source,
            named,
        } => (release, *source, *named),
    };
    let changes = compare::compare(&release.manifest.files, current);
    let rewrite: BTreeSet<&str> = opts.allow_rewrite.iter().map(String::as_str).collect();
    let released: BTreeSet<&str> = release
        .manifest
        .files
        .iter()
        .filter(|f| f.kind == FileKind::Migration)
        .map(|f| f.id.as_str())
        .collect();
    for id in &rewrite {
        let changed = changes
            .iter()
            .any(|c| c.kind != ChangeKind::OutOfOrder && c.id == *id);
        if !changed {
            let why = if released.contains(id) {
                format!("{} released it and it is unchanged", release.tag)
            } else {
                format!("{} released no migration with that id", release.tag)
            };
            return Err(Error::Usage(format!(
                "--allow-rewrite {id}: {why}; name the id of a released migration this build changes"
            )));
        }
    }
    let mut refused = Vec::new();
    let mut allowed = Vec::new();
    for c in changes {
        let ok = match c.kind {
            ChangeKind::OutOfOrder => opts.allow_out_of_order,
            _ => rewrite.contains(c.id.as_str()),
        };
        if ok {
            allowed.push(Allowance {
                kind: c.kind,
                id: c.id,
                released_path: c.released_path,
                released_sha256: c.released_sha256,
                path: c.path,
                sha256: c.sha256,
                reason: reason.clone().unwrap_or_default(),
            });
        } else {
            refused.push(c);
        }
    }
    Ok(Review {
        previous: Some(PreviousRelease {
            version: release.manifest.version.clone(),
            digest: release.digest(),
            found_in: source,
            named,
        }),
        unchecked: None,
        refused,
        allowed,
    })
}

/// The manifest entries of `files` exactly as build makes them (hashes,
/// transaction mode, limits), packed to a scratch tarball that is dropped:
/// for `check` and `lint`, which build nothing.
pub fn entries_as_built(
    config: &Config,
    files: &[SourceFile],
) -> Result<crate::artifact::pack::Packed> {
    let scratch = tempfile::tempdir().map_err(|source| Error::Io {
        action: "create a scratch folder",
        path: std::env::temp_dir(),
        source,
    })?;
    Ok(crate::artifact::pack::pack(
        files,
        &scratch.path().join("scratch.tar.gz"),
        &crate::ops::release::limits(config),
    )?)
}

/// The project's files in order, as `build` collects them.
pub fn collect(config: &Config) -> Result<Collection> {
    Ok(collect::collect(&Sources {
        root: &config.root,
        migrations: &config.project.migrations,
        format: match config.project.format {
            MigrationFormat::Auto => None,
            MigrationFormat::Drizzle => Some(SourceFormat::Drizzle),
            MigrationFormat::Plain => Some(SourceFormat::Plain),
            MigrationFormat::Prisma => Some(SourceFormat::Prisma),
            MigrationFormat::Flyway => Some(SourceFormat::Flyway),
            MigrationFormat::Sqlx => Some(SourceFormat::Sqlx),
            MigrationFormat::GolangMigrate => Some(SourceFormat::GolangMigrate),
            MigrationFormat::Dbmate => Some(SourceFormat::Dbmate),
            MigrationFormat::Atlas => Some(SourceFormat::Atlas),
        },
        rollbacks: config.project.rollbacks.as_deref(),
        seeds: config.project.seeds.as_deref(),
    })?)
}

/// Every SQL problem of the migrations and rollback scripts in `files`
/// (their entries in `entries`, as packed). Each file is read again and must
/// still have the bytes that were packed, so what was checked is what ships.
pub fn sql_problems(
    files: &[SourceFile],
    entries: &[FileEntry],
    format: SourceFormat,
) -> Result<Vec<SqlProblem>> {
    // As `ops::run::runner::split_mode` cuts them at apply.
    let mode = match format {
        SourceFormat::Drizzle => SplitMode::Drizzle,
        SourceFormat::Plain
        | SourceFormat::Prisma
        | SourceFormat::Flyway
        | SourceFormat::Sqlx
        | SourceFormat::GolangMigrate
        | SourceFormat::Dbmate
        | SourceFormat::Atlas => SplitMode::Plain,
    };
    let mut found = Vec::new();
    for (file, entry) in files.iter().zip(entries) {
        if entry.kind == FileKind::Seed {
            continue;
        }
        let text = file.read_text().map_err(|source| Error::Io {
            action: "read",
            path: file.abs.clone(),
            source,
        })?;
        if Digest::of(text.as_bytes()) != entry.sha256 {
            return Err(Error::Usage(format!(
                "{} changed while the release was being built; build again when nothing writes to it",
                entry.path
            )));
        }
        found.extend(sql::problems(&entry.path, &text, mode, entry.transaction));
    }
    Ok(found)
}

/// The error `build` stops with for a SQL problem: the same as apply's for
/// transaction control (exit 2).
pub fn sql_refusal(p: &SqlProblem) -> Error {
    match &p.kind {
        SqlProblemKind::TransactionControl { keyword } => Error::TransactionControl {
            path: p.path.clone(),
            line: p.line,
            keyword: (*keyword).to_owned(),
        },
        _ => Error::Usage(p.to_string()),
    }
}

/// Released migrations a build changed without an allowance (exit 5).
#[derive(Debug, Clone)]
pub struct Refusal {
    pub what: String,
    pub previous: String,
    pub changes: Vec<Change>,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} changes migrations that {} released; released migrations are immutable:",
            self.what, self.previous
        )?;
        for c in &self.changes {
            writeln!(f, "  {}", describe(c, &self.previous))?;
            if c.kind == ChangeKind::Edited {
                if let Some(d) = &c.released_sha256 {
                    writeln!(f, "    Released: {d}")?;
                }
                if let Some(d) = &c.sha256 {
                    writeln!(f, "    Now:      {d}")?;
                }
            }
        }
        let ids: Vec<String> = self
            .changes
            .iter()
            .filter(|c| c.kind != ChangeKind::OutOfOrder)
            .map(|c| format!("--allow-rewrite {}", c.id))
            .collect();
        let ooo = self
            .changes
            .iter()
            .any(|c| c.kind == ChangeKind::OutOfOrder);
        let mut flags = ids.join(" ");
        if ooo {
            if !flags.is_empty() {
                flags.push(' ');
            }
            flags.push_str("--allow-out-of-order");
        }
        write!(
            f,
            "Revert the released files and put the change in a new migration. To release it anyway, say why: {flags} --reason \"...\" (recorded in the signed manifest; verify and apply show it)"
        )
    }
}

/// One line for a change, naming the file and, where there are two, both.
pub fn describe(c: &Change, previous: &str) -> String {
    let released = c.released_path.as_deref().unwrap_or("?");
    match c.kind {
        ChangeKind::Edited => format!("{released} ({}) was edited", c.id),
        ChangeKind::Removed => format!(
            "{released} ({}) was removed (released {})",
            c.id,
            c.released_sha256.map(|d| d.to_string()).unwrap_or_default()
        ),
        ChangeKind::Renamed => format!(
            "{released} ({}) was renamed to {} (same content {}: apply would run it again)",
            c.id,
            c.path.as_deref().unwrap_or("?"),
            c.sha256.map(|d| d.to_string()).unwrap_or_default()
        ),
        ChangeKind::Moved => format!(
            "{released} ({}) was moved: it no longer comes where {previous} had it in the order",
            c.id
        ),
        ChangeKind::OutOfOrder => format!(
            "{} ({}) is new but comes before {}, which {previous} released",
            c.path.as_deref().unwrap_or("?"),
            c.id,
            c.before.as_deref().unwrap_or("a released migration")
        ),
    }
}
