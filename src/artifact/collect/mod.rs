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

mod atlas;
mod common;
mod dbmate;
mod drizzle;
mod flyway;
mod numbered;
mod prisma;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::Path;

use crate::core::manifest::{FileKind, SourceFormat};

use atlas::atlas;
use common::{TxRule, list_sql};
use dbmate::{dbmate, dbmate_directive};
use drizzle::drizzle;
use flyway::{flyway, flyway_kind};
use numbered::{Numbered, numbered};
use prisma::prisma;

pub use atlas::ATLAS_SUM;
pub use common::{CollectError, Collection, SourceFile, Sources};
pub use drizzle::{JOURNAL, is_drizzle_folder};
pub use prisma::PRISMA_LOCK;

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
