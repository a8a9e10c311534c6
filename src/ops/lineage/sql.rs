//! What `build` (and `check`) refuse in a migration or rollback file before
//! anything is stored, because `apply` would fail on it only after it had
//! connected, taken the lock and created its history schema:
//!
//! - transaction control (`BEGIN`, `COMMIT`, ...) in a file that runs inside
//!   squizzle's transaction: the same rule, found by the same code
//!   (`db::split::find_transaction_control`) and told with the same message
//!   as apply's refusal;
//! - a statement PostgreSQL refuses inside a transaction block because of
//!   `CONCURRENTLY` (`CREATE [UNIQUE] INDEX`, `DROP INDEX`, `REINDEX`,
//!   `ALTER TABLE ... DETACH PARTITION`) in a file not marked
//!   `-- squizzle:no-transaction`; apply would get SQLSTATE 25001 from the
//!   server;
//! - a file the statement splitter cannot read (an unterminated string,
//!   quoted identifier, dollar quote or comment), which apply refuses too.
//!
//! `REFRESH MATERIALIZED VIEW CONCURRENTLY` runs inside a transaction and is
//! not refused. Only the first words of a statement are read, with comments
//! and quoted identifiers skipped, so a word inside a string or a comment
//! never counts.

use crate::core::manifest::TransactionMode;
use crate::db::split::{self, SplitMode, code_line, find_transaction_control};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlProblemKind {
    /// A transaction-control command in a transactional file.
    TransactionControl { keyword: &'static str },
    /// A `CONCURRENTLY` statement in a transactional file.
    Concurrently { statement: &'static str },
    /// The splitter could not read the file.
    Unreadable { message: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlProblem {
    pub path: String,
    /// 1-based line of the statement's first keyword (0 when unknown).
    pub line: usize,
    pub kind: SqlProblemKind,
}

impl std::fmt::Display for SqlProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            SqlProblemKind::TransactionControl { keyword } => write!(
                f,
                "{} line {}: {keyword} — squizzle runs each migration in a transaction itself; remove the transaction control, or mark the file `-- squizzle:no-transaction` if it must manage its own",
                self.path, self.line
            ),
            SqlProblemKind::Concurrently { statement } => write!(
                f,
                "{} line {}: {statement} cannot run inside a transaction block, and squizzle runs this file in one; add `-- squizzle:no-transaction` as the first line of the file (its statements then run one by one, each committed on its own)",
                self.path, self.line
            ),
            SqlProblemKind::Unreadable { message } => write!(f, "{}: {message}", self.path),
        }
    }
}

/// Every problem of one file, in file order.
pub fn problems(
    path: &str,
    text: &str,
    mode: SplitMode,
    transaction: TransactionMode,
) -> Vec<SqlProblem> {
    let statements = match split::split(text, mode) {
        Ok(s) => s,
        Err(e) => {
            return vec![SqlProblem {
                path: path.to_owned(),
                line: 0,
                kind: SqlProblemKind::Unreadable {
                    message: e.to_string(),
                },
            }];
        }
    };
    if transaction == TransactionMode::None {
        return Vec::new();
    }
    let mut found = Vec::new();
    if let Some((line, keyword)) = find_transaction_control(&statements) {
        found.push(SqlProblem {
            path: path.to_owned(),
            line,
            kind: SqlProblemKind::TransactionControl { keyword },
        });
    }
    for st in &statements {
        // A drizzle chunk can hold several statements: each is lexed again;
        // one that does not lex on its own is read as a whole.
        let inner = split::split(st.sql, SplitMode::Plain).unwrap_or_default();
        if inner.is_empty() {
            if let Some(statement) = concurrently(st.sql) {
                found.push(SqlProblem {
                    path: path.to_owned(),
                    line: code_line(st),
                    kind: SqlProblemKind::Concurrently { statement },
                });
            }
            continue;
        }
        for sub in &inner {
            if let Some(statement) = concurrently(sub.sql) {
                found.push(SqlProblem {
                    path: path.to_owned(),
                    line: st.start_line + code_line(sub) - 1,
                    kind: SqlProblemKind::Concurrently { statement },
                });
            }
        }
    }
    found.sort_by_key(|p| p.line);
    found
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    Word(&'a str),
    /// A `"quoted identifier"`.
    Quoted,
    /// A parenthesized group, skipped whole (`REINDEX (VERBOSE) ...`).
    Group,
    Punct(u8),
}

/// The first `max` tokens of `sql`, skipping whitespace and comments. Stops at
/// a string or dollar quote: no keyword this module looks for comes after one.
fn tokens(sql: &str, max: usize) -> Vec<Tok<'_>> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() && out.len() < max {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if b[i..].starts_with(b"--") {
            i = b[i..]
                .iter()
                .position(|&x| x == b'\n')
                .map_or(b.len(), |n| i + n + 1);
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0usize;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == b'"' {
            i += 1;
            loop {
                match b.get(i) {
                    None => return out,
                    Some(b'"') if b.get(i + 1) == Some(&b'"') => i += 2,
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(_) => i += 1,
                }
            }
            out.push(Tok::Quoted);
        } else if c == b'(' {
            let mut depth = 0usize;
            while i < b.len() {
                match b[i] {
                    b'(' => depth += 1,
                    b')' => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    b'\'' | b'"' | b'$' => return out,
                    _ => {}
                }
                i += 1;
            }
            out.push(Tok::Group);
        } else if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$' || b[i] >= 0x80)
            {
                i += 1;
            }
            out.push(Tok::Word(&sql[start..i]));
        } else if c == b'\'' || c == b'$' {
            return out;
        } else {
            out.push(Tok::Punct(c));
            i += 1;
        }
    }
    out
}

/// The kind of statement, when `stmt` is one PostgreSQL refuses inside a
/// transaction block because of `CONCURRENTLY`.
pub fn concurrently(stmt: &str) -> Option<&'static str> {
    let t = tokens(stmt, 64);
    let is =
        |i: usize, kw: &str| matches!(t.get(i), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw));
    if is(0, "create") {
        let at = if is(1, "unique") { 2 } else { 1 };
        return (is(at, "index") && is(at + 1, "concurrently"))
            .then_some("CREATE INDEX CONCURRENTLY");
    }
    if is(0, "drop") {
        return (is(1, "index") && is(2, "concurrently")).then_some("DROP INDEX CONCURRENTLY");
    }
    if is(0, "reindex") {
        let at = if t.get(1) == Some(&Tok::Group) { 2 } else { 1 };
        let kind = ["index", "table", "schema", "database", "system"]
            .iter()
            .any(|k| is(at, k));
        return (kind && is(at + 1, "concurrently")).then_some("REINDEX CONCURRENTLY");
    }
    if is(0, "alter") && is(1, "table") {
        let detach = (2..t.len()).find(|&i| is(i, "detach") && is(i + 1, "partition"))?;
        // The partition's name: identifiers joined by dots, then the keyword.
        let name = |i: usize| matches!(t.get(i), Some(Tok::Word(_) | Tok::Quoted));
        let mut i = detach + 2;
        if !name(i) {
            return None;
        }
        i += 1;
        while t.get(i) == Some(&Tok::Punct(b'.')) && name(i + 1) {
            i += 2;
        }
        return is(i, "concurrently")
            .then_some("ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrently_statements_are_recognised_whatever_the_case_and_comments() {
        let yes = [
            (
                "CREATE INDEX CONCURRENTLY i ON t (c)",
                "CREATE INDEX CONCURRENTLY",
            ),
            (
                "create unique index concurrently if not exists i on t (c)",
                "CREATE INDEX CONCURRENTLY",
            ),
            (
                "-- why\nCREATE /* note */ INDEX\n  CONCURRENTLY ON t (c)",
                "CREATE INDEX CONCURRENTLY",
            ),
            (
                "DROP INDEX CONCURRENTLY IF EXISTS i",
                "DROP INDEX CONCURRENTLY",
            ),
            ("REINDEX INDEX CONCURRENTLY i", "REINDEX CONCURRENTLY"),
            (
                "reindex (verbose) table concurrently t",
                "REINDEX CONCURRENTLY",
            ),
            (
                "ALTER TABLE measurements DETACH PARTITION measurements_2020 CONCURRENTLY",
                "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY",
            ),
            (
                "alter table \"App\".m detach partition \"App\".\"m 2020\" concurrently",
                "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY",
            ),
        ];
        for (sql, want) in yes {
            assert_eq!(concurrently(sql), Some(want), "{sql}");
        }
        let no = [
            "CREATE INDEX i ON t (c)",
            "REFRESH MATERIALIZED VIEW CONCURRENTLY v",
            "SELECT 'CREATE INDEX CONCURRENTLY i ON t (c)'",
            "-- CREATE INDEX CONCURRENTLY i ON t (c)\nSELECT 1",
            "/* CREATE INDEX CONCURRENTLY */ SELECT 1",
            "CREATE TABLE \"index concurrently\" (id int)",
            "COMMENT ON INDEX i IS 'built CONCURRENTLY'",
            "ALTER TABLE m DETACH PARTITION p",
            "ALTER TABLE m DETACH PARTITION concurrently",
            "DO $$ BEGIN EXECUTE 'CREATE INDEX CONCURRENTLY i ON t (c)'; END $$",
        ];
        for sql in no {
            assert_eq!(concurrently(sql), None, "{sql}");
        }
    }

    #[test]
    fn problems_name_the_line_and_spare_no_transaction_files() {
        let text = "CREATE TABLE t (c int);\n\n-- fast\nCREATE INDEX CONCURRENTLY i ON t (c);\n";
        let p = problems(
            "m/0002.sql",
            text,
            SplitMode::Plain,
            TransactionMode::Default,
        );
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, 4);
        assert!(p[0].to_string().contains("-- squizzle:no-transaction"));
        assert!(problems("m/0002.sql", text, SplitMode::Plain, TransactionMode::None).is_empty());

        let tx = "-- backfill\nBEGIN;\nUPDATE t SET c = 1;\nCOMMIT;\n";
        let p = problems("m/0003.sql", tx, SplitMode::Plain, TransactionMode::Default);
        assert_eq!(
            p[0].kind,
            SqlProblemKind::TransactionControl { keyword: "BEGIN" }
        );
        assert_eq!(p[0].line, 2);
        assert!(problems("m/0003.sql", tx, SplitMode::Plain, TransactionMode::None).is_empty());
    }

    #[test]
    fn drizzle_chunks_are_read_statement_by_statement() {
        let text = "CREATE TABLE t (c int);--> statement-breakpoint\nSELECT 1;\nCREATE INDEX CONCURRENTLY i ON t (c);";
        let p = problems(
            "drizzle/0001.sql",
            text,
            SplitMode::Drizzle,
            TransactionMode::Default,
        );
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, 3);
    }

    #[test]
    fn an_unterminated_string_is_unreadable_even_in_a_no_transaction_file() {
        let p = problems(
            "m/1.sql",
            "SELECT 'oops;\n",
            SplitMode::Plain,
            TransactionMode::None,
        );
        assert!(
            matches!(p[0].kind, SqlProblemKind::Unreadable { .. }),
            "{p:?}"
        );
    }
}
