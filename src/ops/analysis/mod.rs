//! What the SQL of a release does: findings with stable ids, each with a
//! one-line explanation and the safe alternative (issue 14, section 2).
//!
//! Lexer-based, not a full parser: statements are split by `db::split` (the
//! splitter apply runs them with) and each is read as tokens (`lex.rs`), so
//! keywords inside strings, comments, quoted identifiers and dollar-quoted
//! bodies never count, and any case works. The rules look at the leading
//! keywords of a statement (`DROP TABLE`, `ALTER TABLE ... action, ...`),
//! which is where PostgreSQL's grammar puts what they look for; a full
//! grammar (`sqlparser`) would add a dependency and still not read PL/pgSQL.
//! What the rules cannot see into is reported as `not-analysed`, never
//! passed over: a statement that does not lex, `CALL`, `EXECUTE`, a `DO`
//! block with procedural code. A `DO` block that only wraps plain SQL in
//! `BEGIN ... EXCEPTION WHEN ... THEN null; END` (drizzle-kit writes them for
//! types and foreign keys) is analysed statement by statement.
//!
//! Tables created earlier in the analysed files are new in this release:
//! rewriting or indexing them blocks nobody, so the blocking rules skip them.
//!
//! Used by `lint`, and by `build`, which records the findings in the
//! manifest's `lineage`.

pub mod lex;
pub mod policy;

use std::collections::HashSet;

use serde::Serialize;

use crate::core::manifest::TransactionMode;
use crate::db::split::{self, SplitMode, code_line};
use lex::Tok;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Category {
    /// Loses data.
    Destructive,
    /// Takes a strong lock for long, or rewrites a live table.
    Blocking,
    /// Breaks the application version still running during the deploy.
    Incompatible,
    /// Transaction or CONCURRENTLY misuse.
    Concurrency,
    /// The analyser could not read it.
    NotAnalysed,
}

/// One thing a statement does that deserves a look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Stable id, e.g. `drop-table`.
    pub id: &'static str,
    pub category: Category,
    pub path: String,
    /// 1-based line of the statement's first keyword.
    pub line: usize,
    /// What the statement does and why it matters, one line.
    pub message: String,
    /// The safe alternative, one line.
    pub safe: &'static str,
}

struct Rule {
    id: &'static str,
    category: Category,
    what: &'static str,
    safe: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        id: "drop-table",
        category: Category::Destructive,
        what: "DROP TABLE deletes the table and its rows",
        safe: "stop using the table first, keep a backup, drop it in a later release",
    },
    Rule {
        id: "drop-schema",
        category: Category::Destructive,
        what: "DROP SCHEMA deletes the schema (with CASCADE, everything in it)",
        safe: "drop the objects one by one in a later release, after a backup",
    },
    Rule {
        id: "drop-column",
        category: Category::Destructive,
        what: "DROP COLUMN deletes the column's data",
        safe: "stop reading and writing the column in the application first, drop it in a later release",
    },
    Rule {
        id: "drop-type",
        category: Category::Destructive,
        what: "DROP TYPE deletes the type (with CASCADE, the columns using it)",
        safe: "move columns off the type first; drop it in a later release",
    },
    Rule {
        id: "drop-view",
        category: Category::Destructive,
        what: "DROP VIEW removes a view readers may still query",
        safe: "stop querying the view first, drop it in a later release",
    },
    Rule {
        id: "truncate",
        category: Category::Destructive,
        what: "TRUNCATE deletes every row",
        safe: "delete the rows you mean with a WHERE, or keep a backup",
    },
    Rule {
        id: "delete-without-where",
        category: Category::Destructive,
        what: "DELETE without WHERE deletes every row",
        safe: "add the WHERE that names the rows to delete",
    },
    Rule {
        id: "update-without-where",
        category: Category::Destructive,
        what: "UPDATE without WHERE overwrites every row",
        safe: "add the WHERE that names the rows to change",
    },
    Rule {
        id: "alter-column-type",
        category: Category::Blocking,
        what: "ALTER COLUMN ... TYPE usually rewrites the table under an ACCESS EXCLUSIVE lock",
        safe: "add a new column, backfill it in batches, switch readers, drop the old one later",
    },
    Rule {
        id: "add-column-volatile-default",
        category: Category::Blocking,
        what: "ADD COLUMN with a volatile DEFAULT rewrites the table under an ACCESS EXCLUSIVE lock",
        safe: "add the column without a default (or a constant one), backfill in batches",
    },
    Rule {
        id: "set-not-null",
        category: Category::Blocking,
        what: "SET NOT NULL scans the table under an ACCESS EXCLUSIVE lock unless a validated CHECK (col IS NOT NULL) exists",
        safe: "ADD CONSTRAINT ... CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT, then SET NOT NULL",
    },
    Rule {
        id: "create-index-blocking",
        category: Category::Blocking,
        what: "CREATE INDEX without CONCURRENTLY blocks writes to an existing table while it builds",
        safe: "CREATE INDEX CONCURRENTLY in a file marked -- squizzle:no-transaction",
    },
    Rule {
        id: "add-constraint-validating",
        category: Category::Blocking,
        what: "ADD FOREIGN KEY / CHECK without NOT VALID checks every row while holding a lock",
        safe: "ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT in a later statement",
    },
    Rule {
        id: "vacuum-full",
        category: Category::Blocking,
        what: "VACUUM FULL rewrites the table under an ACCESS EXCLUSIVE lock",
        safe: "plain VACUUM, or pg_repack outside the migration",
    },
    Rule {
        id: "cluster",
        category: Category::Blocking,
        what: "CLUSTER rewrites the table under an ACCESS EXCLUSIVE lock",
        safe: "run it in a maintenance window, outside the migration",
    },
    Rule {
        id: "lock-table",
        category: Category::Blocking,
        what: "LOCK TABLE blocks other sessions until the transaction ends",
        safe: "let each statement take the lock it needs, with a lock_timeout",
    },
    Rule {
        id: "rename-column",
        category: Category::Incompatible,
        what: "RENAME COLUMN breaks the application version still running",
        safe: "add the new column, write both, switch readers, drop the old one later",
    },
    Rule {
        id: "rename-table",
        category: Category::Incompatible,
        what: "RENAME TO breaks the application version still running",
        safe: "create the new table (or a view under the old name) and migrate readers first",
    },
    Rule {
        id: "concurrently-in-transaction",
        category: Category::Concurrency,
        what: "CONCURRENTLY cannot run inside the transaction squizzle runs this file in",
        safe: "mark the file -- squizzle:no-transaction",
    },
    Rule {
        id: "transaction-control",
        category: Category::Concurrency,
        what: "the file controls transactions itself, inside squizzle's transaction",
        safe: "remove BEGIN/COMMIT, or mark the file -- squizzle:no-transaction",
    },
    Rule {
        id: "not-analysed",
        category: Category::NotAnalysed,
        what: "not analysed",
        safe: "review this statement by hand",
    },
];

fn rule(id: &str) -> &'static Rule {
    RULES
        .iter()
        .find(|r| r.id == id)
        .unwrap_or(&RULES[RULES.len() - 1])
}

/// Every stable id, for documentation and policies.
pub fn ids() -> impl Iterator<Item = (&'static str, Category)> {
    RULES.iter().map(|r| (r.id, r.category))
}

/// Every rule: id, category, what it finds, the safe alternative.
pub fn rules() -> impl Iterator<Item = (&'static str, Category, &'static str, &'static str)> {
    RULES.iter().map(|r| (r.id, r.category, r.what, r.safe))
}

/// The migrations of `files` (as packed in `entries`) that are new or edited
/// compared with `released` (id -> sha256 of the previous release's
/// migrations), analysed in run order: their paths and the findings.
/// Released, unchanged migrations are skipped, and their tables count as
/// existing.
pub fn analyse_changed(
    files: &[crate::artifact::collect::SourceFile],
    entries: &[crate::core::manifest::FileEntry],
    format: crate::core::manifest::SourceFormat,
    released: &std::collections::HashMap<String, crate::core::digest::Digest>,
) -> crate::ops::Result<(Vec<String>, Vec<Finding>)> {
    // As `ops::run::runner::split_mode` cuts them at apply.
    let mode = match format {
        crate::core::manifest::SourceFormat::Drizzle => SplitMode::Drizzle,
        crate::core::manifest::SourceFormat::Plain
        | crate::core::manifest::SourceFormat::Prisma
        | crate::core::manifest::SourceFormat::Flyway
        | crate::core::manifest::SourceFormat::Sqlx
        | crate::core::manifest::SourceFormat::GolangMigrate
        | crate::core::manifest::SourceFormat::Dbmate
        | crate::core::manifest::SourceFormat::Atlas => SplitMode::Plain,
    };
    let mut created = HashSet::new();
    let mut analysed = Vec::new();
    let mut findings = Vec::new();
    for (file, entry) in files.iter().zip(entries) {
        if entry.kind != crate::core::manifest::FileKind::Migration
            || released.get(&entry.id) == Some(&entry.sha256)
        {
            continue;
        }
        let text = file.read_text().map_err(|source| crate::ops::Error::Io {
            action: "read",
            path: file.abs.clone(),
            source,
        })?;
        findings.extend(analyse_file(
            &entry.path,
            &text,
            mode,
            entry.transaction,
            &mut created,
        ));
        analysed.push(entry.path.clone());
    }
    Ok((analysed, findings))
}

/// What a release records about its SQL (`lineage.findings` and
/// `allowedFindings`), as `build` makes it and `check` previews it.
#[derive(Debug, Clone, Default)]
pub struct ReleaseFindings {
    /// The findings of the new or edited migrations.
    pub new: Vec<crate::core::manifest::RecordedFinding>,
    /// Everything recorded: the findings the previous release recorded for
    /// migrations shipped again unchanged, then `new`.
    pub findings: Vec<crate::core::manifest::RecordedFinding>,
    /// Carried-over allowances, and those `--allow` asks for.
    pub allowed: Vec<crate::core::manifest::FindingAllowance>,
}

/// Analyses a release's migrations against `previous`: the findings (and
/// allowances) of released, unchanged migrations are carried over from the
/// previous release, so a database that skipped it is still judged on them;
/// when the previous release recorded no analysis, every migration is
/// analysed. `allow` (`--allow ID:FILE`) must each match a finding (exit 2).
pub fn for_release(
    previous: &super::lineage::Previous,
    files: &[crate::artifact::collect::SourceFile],
    entries: &[crate::core::manifest::FileEntry],
    format: crate::core::manifest::SourceFormat,
    allow: &[String],
    reason: Option<&str>,
) -> crate::ops::Result<ReleaseFindings> {
    use super::lineage::Previous;
    let analysed_previous = match previous {
        Previous::Found { release, .. } => release
            .manifest
            .lineage
            .as_ref()
            .filter(|l| l.analysed)
            .map(|l| (l, &release.manifest)),
        Previous::None { .. } => None,
    };
    let skip: std::collections::HashMap<String, crate::core::digest::Digest> = analysed_previous
        .map(|(_, m)| m.migrations().map(|f| (f.id.clone(), f.sha256)).collect())
        .unwrap_or_default();
    let (_, found) = analyse_changed(files, entries, format, &skip)?;
    let unchanged: HashSet<&str> = entries
        .iter()
        .filter(|f| {
            f.kind == crate::core::manifest::FileKind::Migration
                && skip.get(&f.id) == Some(&f.sha256)
        })
        .map(|f| f.path.as_str())
        .collect();
    let mut out = ReleaseFindings::default();
    if let Some((prev, _)) = analysed_previous {
        out.findings.extend(
            prev.findings
                .iter()
                .filter(|f| unchanged.contains(f.path.as_str()))
                .cloned(),
        );
        out.allowed.extend(
            prev.allowed_findings
                .iter()
                .filter(|a| unchanged.contains(a.path.as_str()))
                .cloned(),
        );
    }
    out.new = found.iter().map(Finding::recorded).collect();
    out.findings.extend(out.new.iter().cloned());
    for a in policy::allowances(allow, reason, &out.findings)? {
        match out
            .allowed
            .iter_mut()
            .find(|b| b.id == a.id && b.path == a.path)
        {
            Some(b) => *b = a,
            None => out.allowed.push(a),
        }
    }
    Ok(out)
}

impl Finding {
    /// As the manifest records it.
    pub fn recorded(&self) -> crate::core::manifest::RecordedFinding {
        crate::core::manifest::RecordedFinding {
            id: self.id.to_owned(),
            category: match self.category {
                Category::Destructive => "destructive",
                Category::Blocking => "blocking",
                Category::Incompatible => "incompatible",
                Category::Concurrency => "concurrency",
                Category::NotAnalysed => "notAnalysed",
            }
            .to_owned(),
            path: self.path.clone(),
            line: self.line as u64,
            message: self.message.clone(),
        }
    }
}

/// "2 destructive, 1 blocking": how many findings of each category.
pub fn summary(findings: &[crate::core::manifest::RecordedFinding]) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for f in findings {
        match counts.iter_mut().find(|(c, _)| *c == f.category) {
            Some((_, n)) => *n += 1,
            None => counts.push((f.category.clone(), 1)),
        }
    }
    counts
        .iter()
        .map(|(c, n)| {
            let name = if c == "notAnalysed" {
                "not analysed"
            } else {
                c.as_str()
            };
            format!("{n} {name}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Analyses the files of a release in run order. `created` collects the
/// tables the files create, so later files' blocking rules skip them.
pub fn analyse_file(
    path: &str,
    text: &str,
    mode: SplitMode,
    transaction: TransactionMode,
    created: &mut HashSet<String>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let push = |out: &mut Vec<Finding>, id: &str, line: usize, detail: Option<String>| {
        let r = rule(id);
        out.push(Finding {
            id: r.id,
            category: r.category,
            path: path.to_owned(),
            line,
            message: detail.unwrap_or_else(|| r.what.to_owned()),
            safe: r.safe,
        });
    };
    let chunks = match split::split(text, mode) {
        Ok(c) => c,
        Err(e) => {
            push(
                &mut out,
                "not-analysed",
                1,
                Some(format!("the file could not be split into statements: {e}")),
            );
            return out;
        }
    };
    for chunk in &chunks {
        let subs = split::split(chunk.sql, SplitMode::Plain).unwrap_or_default();
        for sub in &subs {
            let line = chunk.start_line + code_line(sub) - 1;
            if transaction == TransactionMode::Default {
                if split::transaction_control(sub.sql).is_some() {
                    push(&mut out, "transaction-control", line, None);
                }
                if super::lineage::sql::concurrently(sub.sql).is_some() {
                    push(&mut out, "concurrently-in-transaction", line, None);
                }
            }
            match lex::lex(sub.sql) {
                Ok(tokens) => {
                    for id in statement(&tokens, created) {
                        push(&mut out, id, line, None);
                    }
                }
                Err(e) => push(
                    &mut out,
                    "not-analysed",
                    line,
                    Some(format!("the statement could not be read: {}", e.0)),
                ),
            }
        }
    }
    out
}

const VOLATILE: &[&str] = &[
    "random",
    "gen_random_uuid",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "clock_timestamp",
    "timeofday",
    "nextval",
];

/// The ids one statement triggers.
fn statement(t: &[Tok<'_>], created: &mut HashSet<String>) -> Vec<&'static str> {
    let mut ids = Vec::new();
    let is = |i: usize, kw: &str| t.get(i).is_some_and(|x| x.is(kw));
    if t.is_empty() {
        return ids;
    }
    if is(0, "do") {
        let body = t.iter().find_map(|x| match x {
            Tok::Dollar(b) => Some(*b),
            _ => None,
        });
        match body.and_then(|b| do_body(b, created)) {
            Some(inner) => ids.extend(inner),
            None => ids.push("not-analysed"),
        }
        return ids;
    }
    if is(0, "call") || is(0, "execute") {
        ids.push("not-analysed");
        return ids;
    }
    if is(0, "drop") {
        let id = if is(1, "table") {
            Some("drop-table")
        } else if is(1, "schema") {
            Some("drop-schema")
        } else if is(1, "type") {
            Some("drop-type")
        } else if is(1, "view") || (is(1, "materialized") && is(2, "view")) {
            Some("drop-view")
        } else {
            None
        };
        ids.extend(id);
    }
    if is(0, "truncate") {
        ids.push("truncate");
    }
    if is(0, "vacuum") && (1..t.len()).any(|i| is(i, "full")) {
        ids.push("vacuum-full");
    }
    if is(0, "cluster") {
        ids.push("cluster");
    }
    if is(0, "lock") {
        ids.push("lock-table");
    }
    if is(0, "create") {
        let mut i = 1;
        for skip in [
            "or",
            "replace",
            "global",
            "local",
            "temporary",
            "temp",
            "unlogged",
        ] {
            if is(i, skip) {
                i += 1;
            }
        }
        if is(i, "table") {
            let mut j = i + 1;
            if is(j, "if") {
                j += 3;
            }
            if let Some(name) = qualified_name(t, j).map(|(n, _)| n) {
                created.insert(name);
            }
        }
        let at = if is(1, "unique") { 2 } else { 1 };
        if is(at, "index") && !is(at + 1, "concurrently") {
            let on = (at + 1..t.len()).find(|&k| is(k, "on"));
            let table =
                on.and_then(|k| qualified_name(t, if is(k + 1, "only") { k + 2 } else { k + 1 }));
            if table.is_some_and(|(n, _)| !created.contains(&n)) {
                ids.push("create-index-blocking");
            }
        }
    }
    if is(0, "alter") && is(1, "table") {
        let mut i = 2;
        if is(i, "if") {
            i += 2;
        }
        if is(i, "only") {
            i += 1;
        }
        if let Some((table, end)) = qualified_name(t, i) {
            let new = created.contains(&table);
            let mut end = end;
            if matches!(t.get(end), Some(Tok::Op("*"))) {
                end += 1;
            }
            for action in split_top(&t[end.min(t.len())..]) {
                let mut found = alter_action(action, new);
                not_null_checks(action, &table, created, &mut found);
                ids.extend(found);
            }
        }
    }
    ids.extend(writes_everything(t));
    ids
}

/// The findings of a `DO` block whose body is plain SQL: `BEGIN`, statements,
/// an optional `EXCEPTION WHEN ... THEN null` (drizzle-kit's "already there"
/// guard), `END`. `None` for anything else (variables, conditions, loops,
/// dynamic SQL): the block is then not analysed.
fn do_body(body: &str, created: &mut HashSet<String>) -> Option<Vec<&'static str>> {
    const PROCEDURAL: &[&str] = &[
        "declare", "if", "elsif", "else", "case", "for", "foreach", "loop", "while", "exit",
        "continue", "execute", "perform", "raise", "return", "get", "open", "fetch", "close",
        "call", "commit", "rollback",
    ];
    let statements = split::split(body, SplitMode::Plain).ok()?;
    let mut ids = Vec::new();
    let mut in_handler = false;
    for (k, st) in statements.iter().enumerate() {
        let mut toks = lex::lex(st.sql).ok()?;
        if k == 0 {
            if !toks.first()?.is("begin") {
                return None;
            }
            toks.remove(0);
        }
        if toks.len() == 1 && toks[0].is("end") {
            continue;
        }
        if toks.first().is_some_and(|x| x.is("exception")) {
            in_handler = true;
            toks.remove(0);
        }
        if in_handler {
            // Only handlers that do nothing: WHEN <conditions> THEN null.
            let then = toks.iter().position(|x| x.is("then"))?;
            let ok = toks.first().is_some_and(|x| x.is("when"))
                && toks.len() == then + 2
                && toks[then + 1].is("null");
            if !ok {
                return None;
            }
            continue;
        }
        let first = toks.first()?;
        if PROCEDURAL.iter().any(|p| first.is(p)) || first.is("do") {
            return None;
        }
        ids.extend(statement(&toks, created));
    }
    Some(ids)
}

/// `name` or `schema.name` at `i`: the unqualified name and the index after it.
fn qualified_name(t: &[Tok<'_>], i: usize) -> Option<(String, usize)> {
    let mut name = t.get(i)?.name()?;
    let mut j = i + 1;
    while matches!(t.get(j), Some(Tok::Dot)) {
        name = t.get(j + 1)?.name()?;
        j += 2;
    }
    Some((name, j))
}

/// Splits at top-level commas.
fn split_top<'t, 'a>(t: &'t [Tok<'a>]) -> Vec<&'t [Tok<'a>]> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, x) in t.iter().enumerate() {
        match x {
            Tok::LParen => depth += 1,
            Tok::RParen => depth = depth.saturating_sub(1),
            Tok::Comma if depth == 0 => {
                out.push(&t[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&t[start..]);
    out
}

fn alter_action(a: &[Tok<'_>], new_table: bool) -> Vec<&'static str> {
    let is = |i: usize, kw: &str| a.get(i).is_some_and(|x| x.is(kw));
    let mut ids = Vec::new();
    if is(0, "drop") {
        let not_column = ["constraint", "default", "not", "expression", "identity"]
            .iter()
            .any(|k| is(1, k));
        if !not_column {
            ids.push("drop-column");
        }
    }
    if is(0, "rename") {
        if is(1, "to") {
            ids.push("rename-table");
        } else if !is(1, "constraint") {
            ids.push("rename-column");
        }
    }
    if new_table {
        return ids;
    }
    if is(0, "alter") {
        let c = if is(1, "column") { 2 } else { 1 };
        if is(c + 1, "type") || (is(c + 1, "set") && is(c + 2, "data") && is(c + 3, "type")) {
            ids.push("alter-column-type");
        }
        if is(c + 1, "set") && is(c + 2, "not") && is(c + 3, "null") {
            ids.push("set-not-null");
        }
    }
    if is(0, "add") {
        let constraint = (1..a.len()).any(|i| is(i, "foreign") || is(i, "check"))
            && !is(1, "column")
            && (is(1, "constraint") || is(1, "foreign") || is(1, "check"));
        if constraint && !(0..a.len()).any(|i| is(i, "not") && is(i + 1, "valid")) {
            ids.push("add-constraint-validating");
        }
        if let Some(d) = (1..a.len()).find(|&i| is(i, "default")) {
            let volatile = a[d + 1..].windows(2).any(|w| {
                matches!((&w[0], &w[1]), (Tok::Word(f), Tok::LParen) if VOLATILE.iter().any(|v| f.eq_ignore_ascii_case(v)))
            });
            if volatile {
                ids.push("add-column-volatile-default");
            }
        }
    }
    ids
}

/// `SET NOT NULL` needs no table scan when a validated
/// `CHECK (col IS NOT NULL)` exists on the column (PostgreSQL 12+): one added
/// without `NOT VALID`, or added `NOT VALID` and then `VALIDATE`d, earlier in
/// the analysed files. They are remembered in `created` under keys that
/// cannot be table names (`\0check:table.col`, `\0pending:table:name:col`);
/// a `SET NOT NULL` on such a column loses its `set-not-null` finding.
fn not_null_checks(
    a: &[Tok<'_>],
    table: &str,
    state: &mut HashSet<String>,
    found: &mut Vec<&'static str>,
) {
    let is = |i: usize, kw: &str| a.get(i).is_some_and(|x| x.is(kw));
    if is(0, "add") {
        let (name, at) = if is(1, "constraint") {
            (a.get(2).and_then(Tok::name), 3)
        } else {
            (None, 1)
        };
        let shape = is(at, "check")
            && matches!(a.get(at + 1), Some(Tok::LParen))
            && is(at + 3, "is")
            && is(at + 4, "not")
            && is(at + 5, "null")
            && matches!(a.get(at + 6), Some(Tok::RParen));
        if let Some(col) = a.get(at + 2).and_then(Tok::name).filter(|_| shape) {
            let not_valid = (0..a.len()).any(|i| is(i, "not") && is(i + 1, "valid"));
            if !not_valid {
                state.insert(format!("\0check:{table}.{col}"));
            } else if let Some(n) = name {
                state.insert(format!("\0pending:{table}:{n}:{col}"));
            }
        }
    }
    if is(0, "validate")
        && is(1, "constraint")
        && let Some(n) = a.get(2).and_then(Tok::name)
    {
        let prefix = format!("\0pending:{table}:{n}:");
        if let Some(p) = state.iter().find(|s| s.starts_with(&prefix)).cloned() {
            state.remove(&p);
            state.insert(format!("\0check:{table}.{}", &p[prefix.len()..]));
        }
    }
    if is(0, "alter") {
        let c = if is(1, "column") { 2 } else { 1 };
        if is(c + 1, "set")
            && is(c + 2, "not")
            && is(c + 3, "null")
            && let Some(col) = a.get(c).and_then(Tok::name)
            && state.contains(&format!("\0check:{table}.{col}"))
        {
            found.retain(|id| *id != "set-not-null");
        }
    }
}

/// DELETE FROM / UPDATE ... SET without a WHERE at their own level, at the
/// start of the statement or of a parenthesized part (a CTE).
fn writes_everything(t: &[Tok<'_>]) -> Vec<&'static str> {
    let mut ids = Vec::new();
    for i in 0..t.len() {
        let starts = i == 0 || matches!(t[i - 1], Tok::LParen | Tok::RParen);
        if !starts {
            continue;
        }
        let id = if t[i].is("delete") && t.get(i + 1).is_some_and(|x| x.is("from")) {
            "delete-without-where"
        } else if t[i].is("update") && t.get(i + 1).is_some_and(|x| x.name().is_some()) {
            "update-without-where"
        } else {
            continue;
        };
        // Scan this level up to its end for WHERE.
        let mut depth = 0i32;
        let mut has_where = false;
        for x in &t[i + 1..] {
            match x {
                Tok::LParen => depth += 1,
                Tok::RParen if depth == 0 => break,
                Tok::RParen => depth -= 1,
                x if depth == 0 && x.is("where") => {
                    has_where = true;
                    break;
                }
                _ => {}
            }
        }
        if !has_where {
            ids.push(id);
        }
    }
    ids
}

#[cfg(test)]
mod tests;
