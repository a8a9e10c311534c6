//! Per-file directives in a migration's leading comment block.
//!
//! A directive is a line `-- squizzle:<name>` before the first SQL statement.
//! Today there is one: `-- squizzle:no-transaction`, for statements PostgreSQL
//! refuses to run inside a transaction (`CREATE INDEX CONCURRENTLY`, ...).
//! Unknown directives and directives placed after SQL are errors, because a
//! silently ignored `no-transaction` typo would change how production runs.

use crate::core::manifest::TransactionMode;

/// What every directive starts with, after `--`.
pub const PREFIX: &str = "squizzle:";

/// How much of a file's start directives are read from: `build` and every
/// reader of a release use the same bytes, so they agree on what a file says.
pub const HEAD_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DirectiveError {
    #[error(
        "line {line}: unknown directive `squizzle:{name}`; the only directive is `-- squizzle:no-transaction`"
    )]
    Unknown { line: usize, name: String },
    #[error(
        "line {line}: `-- squizzle:{name}` comes after SQL; directives must be in the comment lines at the top of the file"
    )]
    AfterSql { line: usize, name: String },
}

/// Reads the directives from the start of a file (`head` may be a prefix of it).
pub fn parse(head: &str) -> Result<TransactionMode, DirectiveError> {
    let mut mode = TransactionMode::Default;
    let mut in_header = true;
    let text = head.strip_prefix('\u{feff}').unwrap_or(head);
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        let comment = trimmed.strip_prefix("--").map(str::trim);
        if let Some(name) = comment.and_then(|c| c.strip_prefix(PREFIX)) {
            let name = name.trim().to_owned();
            if !in_header {
                return Err(DirectiveError::AfterSql { line: i + 1, name });
            }
            match name.as_str() {
                "no-transaction" => mode = TransactionMode::None,
                _ => return Err(DirectiveError::Unknown { line: i + 1, name }),
            }
        } else if comment.is_none() && !trimmed.is_empty() {
            in_header = false;
        }
    }
    Ok(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_without_directive() {
        assert_eq!(
            parse("CREATE TABLE a (id int);"),
            Ok(TransactionMode::Default)
        );
        assert_eq!(
            parse("-- just a comment\nSELECT 1;"),
            Ok(TransactionMode::Default)
        );
    }

    #[test]
    fn no_transaction_in_leading_comments() {
        let sql = "\u{feff}-- add index without locking\n\n--   squizzle:no-transaction  \nCREATE INDEX CONCURRENTLY i ON t (c);\n";
        assert_eq!(parse(sql), Ok(TransactionMode::None));
    }

    #[test]
    fn unknown_or_late_directives_are_errors() {
        assert_eq!(
            parse("-- squizzle:no-transactions\nSELECT 1;"),
            Err(DirectiveError::Unknown {
                line: 1,
                name: "no-transactions".into()
            })
        );
        assert_eq!(
            parse("SELECT 1;\n-- squizzle:no-transaction\n"),
            Err(DirectiveError::AfterSql {
                line: 2,
                name: "no-transaction".into()
            })
        );
    }

    #[test]
    fn drizzle_breakpoints_are_not_directives() {
        assert_eq!(
            parse("CREATE TABLE a ();\n--> statement-breakpoint\nSELECT 1;"),
            Ok(TransactionMode::Default)
        );
    }
}
