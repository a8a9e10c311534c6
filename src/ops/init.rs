//! `init`: writes `squizzle.toml` and the project folders, adopting an existing
//! migrations folder when there is one: a drizzle-kit journal anywhere (up to
//! four levels down), else the usual places of Prisma, Flyway, sqlx, dbmate, Atlas,
//! golang-migrate and plain folders, with the layout detected from the files.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::artifact::collect::{JOURNAL, detect, is_drizzle_folder};
use crate::config::FILE_NAME;
use crate::core::manifest::SourceFormat;
use crate::ops::{Error, Result};

#[derive(Debug, Clone)]
pub struct InitOptions {
    pub dir: PathBuf,
    /// Use this migrations folder instead of detecting one.
    pub migrations: Option<String>,
    pub force: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InitReport {
    pub config: PathBuf,
    pub migrations: String,
    pub drizzle: bool,
    /// The layout detected in the migrations folder (`plain` for a new one).
    pub format: SourceFormat,
    pub created: Vec<PathBuf>,
    /// Other drizzle folders found but not chosen.
    pub also_found: Vec<String>,
}

/// Folders never searched for drizzle journals.
const SKIP: [&str; 6] = [
    "node_modules",
    ".git",
    "target",
    "dist",
    "build",
    ".squizzle",
];

/// Finds folders (relative to `root`, depth <= 4) that hold a drizzle journal.
pub fn find_drizzle_folders(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, depth: usize, out: &mut Vec<String>) {
        if is_drizzle_folder(dir)
            && let Ok(rel) = dir.strip_prefix(root)
            && let Some(s) = rel.to_str()
            && !s.is_empty()
        {
            out.push(s.replace('\\', "/"));
        }
        if depth == 0 {
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| !n.starts_with('.') && !SKIP.contains(&n))
            })
            .map(|e| e.path())
            .collect();
        dirs.sort();
        for d in dirs {
            walk(root, &d, depth - 1, out);
        }
    }
    let mut out = Vec::new();
    walk(root, root, 4, &mut out);
    // Shallowest first, then by name.
    out.sort_by(|a, b| {
        a.matches('/')
            .count()
            .cmp(&b.matches('/').count())
            .then(a.cmp(b))
    });
    out
}

pub fn init(opts: &InitOptions) -> Result<InitReport> {
    let config_path = opts.dir.join(FILE_NAME);
    if config_path.exists() && !opts.force {
        return Err(Error::Usage(format!(
            "{} already exists; edit it, or run `squizzle init --force` to overwrite it",
            config_path.display()
        )));
    }
    let found = find_drizzle_folders(&opts.dir);
    let (migrations, also_found) = match &opts.migrations {
        Some(m) => (m.trim_end_matches('/').to_owned(), found),
        None => match found.split_first() {
            Some((first, rest)) => (first.clone(), rest.to_vec()),
            None => (
                usual_folder(&opts.dir).unwrap_or_else(|| "migrations".to_owned()),
                Vec::new(),
            ),
        },
    };
    crate::core::paths::validate_relative(&migrations).map_err(|e| {
        Error::Usage(format!(
            "--migrations {migrations:?} {e}; give a folder inside the project"
        ))
    })?;
    let drizzle = is_drizzle_folder(&opts.dir.join(&migrations));
    let format = detect(&opts.dir.join(&migrations));

    let mut created = Vec::new();
    for rel in [migrations.as_str(), "db/tarballs"] {
        let p = opts.dir.join(rel);
        if !p.exists() {
            std::fs::create_dir_all(&p).map_err(|source| Error::Io {
                action: "create",
                path: p.clone(),
                source,
            })?;
            created.push(p);
        }
    }
    let text = render(&migrations, format);
    std::fs::write(&config_path, text).map_err(|source| Error::Io {
        action: "write",
        path: config_path.clone(),
        source,
    })?;
    Ok(InitReport {
        config: config_path,
        migrations,
        drizzle,
        format,
        created,
        also_found,
    })
}

/// Where the other tools keep their migrations by default, first match wins;
/// only a folder with something in it counts.
const USUAL: [&str; 7] = [
    "prisma/migrations",
    "src/main/resources/db/migration",
    "db/migration",
    "sql",
    "migrations",
    "db/migrations",
    "database/migrations",
];

fn usual_folder(root: &Path) -> Option<String> {
    USUAL.iter().find_map(|rel| {
        let dir = root.join(rel);
        let used = std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some());
        (used && (detect(&dir) != SourceFormat::Plain || has_sql(&dir))).then(|| (*rel).to_owned())
    })
}

fn has_sql(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|d| {
        d.flatten()
            .any(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(".sql")))
    })
}

fn render(migrations: &str, format: SourceFormat) -> String {
    let format_line = match format {
        SourceFormat::Drizzle => format!(
            "# drizzle-kit folder: order comes from {migrations}/{JOURNAL}\nformat = \"drizzle\"\n"
        ),
        SourceFormat::Plain => "# plain folder of NNNN_name.sql files (NNNN_name.down.sql for rollbacks);\n# a sqlx or golang-migrate folder reads the same way: say `format = \"sqlx\"` or\n# `format = \"golang-migrate\"` to follow that tool exactly (see docs/formats.md)\nformat = \"auto\"\n".to_owned(),
        SourceFormat::Prisma => "# Prisma folder: one folder per migration, run in folder-name order\nformat = \"prisma\"\n".to_owned(),
        SourceFormat::Flyway => "# Flyway folder: V<version>__<description>.sql in version order, U<version>__ undoes\nformat = \"flyway\"\n".to_owned(),
        SourceFormat::Sqlx => "# sqlx folder: <version>_<name>.sql in version order; a first line\n# `-- no-transaction` runs that file outside a transaction\nformat = \"sqlx\"\n".to_owned(),
        SourceFormat::Atlas => "# Atlas folder: files in name order, checked against atlas.sum at every build\nformat = \"atlas\"\n".to_owned(),
        SourceFormat::Dbmate => "# dbmate folder: files in name order, each with a `-- migrate:up` and a\n# `-- migrate:down` block (the down block is the rollback)\nformat = \"dbmate\"\n".to_owned(),
        SourceFormat::GolangMigrate => "# golang-migrate folder: <version>_<title>.up.sql / .down.sql in version order\nformat = \"golang-migrate\"\n".to_owned(),
    };
    format!(
        r#"# squizzle configuration. Every key is documented in squizzle.toml.example.
# Secrets never go in this file: write ${{VAR}} and export VAR.

[project]
migrations = "{migrations}"
{format_line}tarballs = "db/tarballs"
# Local OCI image layout used when no registry is configured.
store = "db/oci"

[security]
require_signature = false

# [environments.production]
# database_url = "${{PRODUCTION_DATABASE_URL}}"
# require_signature = true
"#
    )
}
