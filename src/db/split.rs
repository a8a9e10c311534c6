//! Splitting a PostgreSQL migration file into statements, with their positions.
//!
//! squizzle needs a file's statements one at a time when the file must run
//! outside a transaction (progress is recorded after each statement, so a re-run
//! resumes after the last one that committed), and to tell the user which
//! statement failed and on which line.
//!
//! This is a lexer, not a parser: it knows exactly enough of PostgreSQL's lexical
//! rules to find where statements end. It never changes the text (every
//! [`Statement::sql`] is a slice of the input), never allocates per character,
//! runs in time linear in the input, and never talks to a database.
//!
//! Two modes, see [`SplitMode`]:
//! - [`SplitMode::Plain`] splits at top-level semicolons, as psql does.
//! - [`SplitMode::Drizzle`] splits only at drizzle-kit's `--> statement-breakpoint`
//!   marker, as drizzle-kit's migrator does.
//!
//! Assumed server settings are PostgreSQL's defaults: `standard_conforming_strings`
//! is on (a backslash in `'...'` is an ordinary character). psql meta-commands
//! (`\i`, `\set`, ...) and psql `:variable` interpolation are not supported: a
//! migration file is SQL that the server itself must accept.

/// drizzle-kit's statement separator. drizzle-kit writes it right after a `;`
/// or on a line of its own, and its migrator splits the file on this text
/// wherever it occurs.
pub const BREAKPOINT: &str = "--> statement-breakpoint";

/// One statement of a migration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement<'a> {
    /// The statement's text without surrounding whitespace and without its
    /// terminating `;`. Comments are kept, including leading ones, so the text
    /// may end in a `--` comment: never append anything to it on the same line.
    pub sql: &'a str,
    /// 0-based number among the statements returned for the file; contiguous,
    /// since empty statements are not returned.
    pub index: usize,
    /// 1-based line of the file where `sql` starts.
    pub start_line: usize,
    /// Byte offset of `sql` in the file.
    pub start_offset: usize,
}

/// Where a file is split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitMode {
    /// Only at [`BREAKPOINT`] markers (drizzle-kit semantics), even inside
    /// strings or comments, because that is what drizzle-kit does. Each chunk is
    /// trimmed and loses one trailing `;`. A chunk may hold several statements;
    /// PostgreSQL's simple query protocol runs such a string as a whole.
    Drizzle,
    /// At every semicolon outside strings, quoted identifiers, dollar quotes,
    /// comments, parentheses and `BEGIN ATOMIC ... END` bodies (psql semantics).
    Plain,
}

/// A construct that the file opens and never closes. PostgreSQL would reject
/// it too, but statement by statement only after running the ones before it.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SplitError {
    #[error("unterminated quoted string starting at line {line}")]
    UnterminatedString { line: usize },
    #[error("unterminated quoted identifier starting at line {line}")]
    UnterminatedQuotedIdentifier { line: usize },
    /// `tag` is the whole opening delimiter, e.g. `$$` or `$body$`.
    #[error("unterminated dollar-quoted string (opened with {tag}) starting at line {line}")]
    UnterminatedDollarQuote { tag: String, line: usize },
    #[error("unterminated /* comment starting at line {line}")]
    UnterminatedBlockComment { line: usize },
}

/// Splits `file` into its non-empty statements. Statements that hold only
/// whitespace and comments (`;;`, a comment after the last `;`) are dropped.
pub fn split(file: &str, mode: SplitMode) -> Result<Vec<Statement<'_>>, SplitError> {
    match mode {
        SplitMode::Plain => split_plain(file),
        SplitMode::Drizzle => split_drizzle(file),
    }
}

/// 1-based line of byte `offset` in `file`, counting `\n` (so CRLF files work).
/// An offset past the end gives the last line.
///
/// To place a PostgreSQL error: the server's `position` is a 1-based count of
/// characters (not bytes) into the statement text it was sent; turn it into a
/// byte offset within [`Statement::sql`], add [`Statement::start_offset`], and
/// pass the sum here.
pub fn line_of(file: &str, offset: usize) -> usize {
    let bytes = file.as_bytes();
    1 + count_newlines(bytes.get(..offset.min(bytes.len())).unwrap_or(bytes))
}

/// The transaction-control command a statement is, if any: `BEGIN`,
/// `START TRANSACTION`, `COMMIT`, `COMMIT PREPARED`, `END`, `ROLLBACK`,
/// `ROLLBACK PREPARED`, `ABORT` or `PREPARE TRANSACTION`.
///
/// Only the first keyword (after leading whitespace and comments, any case)
/// decides, which is why `DO $$ BEGIN ... END $$` and
/// `CREATE FUNCTION ... BEGIN ATOMIC ... END` are not matches: their `BEGIN` is
/// inside the statement. `SAVEPOINT`, `RELEASE` and `ROLLBACK TO [SAVEPOINT]`
/// neither open nor end a transaction, so they are not matches either.
pub fn transaction_control(stmt: &str) -> Option<&'static str> {
    let bytes = stmt.as_bytes();
    let mut lexer = Lexer::new(stmt, 0, stmt.len());
    let is = |word: Option<&[u8]>, keyword: &str| {
        word.is_some_and(|w| w.eq_ignore_ascii_case(keyword.as_bytes()))
    };
    let first = next_word(&mut lexer, bytes);
    if is(first, "begin") {
        Some("BEGIN")
    } else if is(first, "end") {
        Some("END")
    } else if is(first, "abort") {
        Some("ABORT")
    } else if is(first, "commit") {
        if is(next_word(&mut lexer, bytes), "prepared") {
            Some("COMMIT PREPARED")
        } else {
            Some("COMMIT")
        }
    } else if is(first, "start") {
        is(next_word(&mut lexer, bytes), "transaction").then_some("START TRANSACTION")
    } else if is(first, "prepare") {
        // Plain `PREPARE name AS ...` prepares a query, not a transaction.
        is(next_word(&mut lexer, bytes), "transaction").then_some("PREPARE TRANSACTION")
    } else if is(first, "rollback") {
        let mut second = next_word(&mut lexer, bytes);
        if is(second, "prepared") {
            return Some("ROLLBACK PREPARED");
        }
        if is(second, "work") || is(second, "transaction") {
            second = next_word(&mut lexer, bytes);
        }
        // ROLLBACK [WORK | TRANSACTION] TO [SAVEPOINT] name
        if is(second, "to") {
            None
        } else {
            Some("ROLLBACK")
        }
    } else {
        None
    }
}

/// Whether `stmt` is `ALTER TYPE name ADD VALUE ...`: a new enum value that
/// PostgreSQL lets no statement use before the transaction that added it
/// commits (SQLSTATE 55P04), so the transaction has to end after it.
pub fn adds_enum_value(stmt: &str) -> bool {
    let bytes = stmt.as_bytes();
    let mut lexer = Lexer::new(stmt, 0, stmt.len());
    let is = |w: Option<&[u8]>, keyword: &str| {
        w.is_some_and(|w| w.eq_ignore_ascii_case(keyword.as_bytes()))
    };
    if !is(next_word(&mut lexer, bytes), "alter") || !is(next_word(&mut lexer, bytes), "type") {
        return false;
    }
    // The type name: words, quoted identifiers and dots, then ADD VALUE.
    let mut previous_add = false;
    for _ in 0..8 {
        match lexer.next_token() {
            Ok(Some((start, Token::Word { end }))) => {
                let w = &bytes[start..end];
                if previous_add && w.eq_ignore_ascii_case(b"value") {
                    return true;
                }
                previous_add = w.eq_ignore_ascii_case(b"add");
            }
            Ok(Some((_, Token::Other))) => previous_add = false,
            _ => return false,
        }
    }
    false
}

/// The index a `CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] name`
/// statement builds: such a build that is interrupted or fails leaves an
/// INVALID index behind, which a re-run must not mistake for a finished one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConcurrentIndex {
    /// The schema when the name is qualified.
    pub schema: Option<String>,
    /// As PostgreSQL stores it: unquoted names folded to lower case.
    pub name: String,
    /// `IF NOT EXISTS` was given.
    pub if_not_exists: bool,
}

/// `Some` when `stmt` (one statement, leading comments allowed) builds a
/// named index concurrently. An unnamed `CREATE INDEX CONCURRENTLY ON t`
/// gets a generated name and is not tracked.
pub fn concurrent_index(stmt: &str) -> Option<ConcurrentIndex> {
    let bytes = stmt.as_bytes();
    let mut lexer = Lexer::new(stmt, 0, stmt.len());
    // (start, end, is_word) of the next token.
    let mut next = || match lexer.next_token() {
        Ok(Some((start, Token::Word { end }))) => Some((start, end, true)),
        Ok(Some((start, _))) => Some((start, lexer.pos, false)),
        _ => None,
    };
    let is = |t: Option<(usize, usize, bool)>, keyword: &str| {
        t.is_some_and(|(s, e, w)| w && bytes[s..e].eq_ignore_ascii_case(keyword.as_bytes()))
    };
    if !is(next(), "create") {
        return None;
    }
    let mut t = next();
    if is(t, "unique") {
        t = next();
    }
    if !is(t, "index") || !is(next(), "concurrently") {
        return None;
    }
    let mut t = next();
    let mut if_not_exists = false;
    if is(t, "if") {
        if !is(next(), "not") || !is(next(), "exists") {
            return None;
        }
        if_not_exists = true;
        t = next();
    }
    if is(t, "on") {
        return None;
    }
    let first = identifier(stmt, t?)?;
    let after = next();
    if after.is_some_and(|(s, e, w)| !w && &stmt[s..e] == ".") {
        let name = identifier(stmt, next()?)?;
        return Some(ConcurrentIndex {
            schema: Some(first),
            name,
            if_not_exists,
        });
    }
    Some(ConcurrentIndex {
        schema: None,
        name: first,
        if_not_exists,
    })
}

/// An identifier token as PostgreSQL stores it: a plain word folded to lower
/// case, or a quoted identifier with `""` unescaped.
fn identifier(text: &str, (start, end, word): (usize, usize, bool)) -> Option<String> {
    let raw = &text[start..end];
    if word {
        return Some(raw.to_ascii_lowercase());
    }
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.is_empty()).then(|| inner.replace("\"\"", "\""))
}

/// The next token's text if it is a word; `None` for anything else, including
/// a lexing error (the caller only looks at the first few keywords).
fn next_word<'b>(lexer: &mut Lexer<'_>, bytes: &'b [u8]) -> Option<&'b [u8]> {
    match lexer.next_token() {
        Ok(Some((start, Token::Word { end }))) => bytes.get(start..end),
        _ => None,
    }
}

fn split_plain(file: &str) -> Result<Vec<Statement<'_>>, SplitError> {
    let bytes = file.as_bytes();
    let mut lexer = Lexer::new(file, 0, file.len());
    let mut out = Vec::new();
    let mut lines = LineCursor::default();
    let mut stmt_start = 0;
    let mut has_token = false;
    // psql does not end a statement at a `;` inside parentheses: CREATE RULE
    // ... DO ALSO (stmt; stmt) is one statement. An unbalanced `(` therefore
    // swallows the rest of the file into one statement, which the server then
    // rejects as a whole before running any of it.
    let mut parens = 0usize;
    // A SQL-standard function body, `BEGIN ATOMIC stmt; stmt; END`, is one
    // statement. Inside it CASE ... END also nests, so both count here.
    let mut atomic = 0usize;
    let mut after_begin = false;
    let mut head = RoutineHead::Start;
    while let Some((at, token)) = lexer.next_token()? {
        let mut begin = false;
        match token {
            Token::Semicolon if parens == 0 && atomic == 0 => {
                if has_token {
                    push(&mut out, file, stmt_start, at, &mut lines);
                }
                stmt_start = at + 1;
                has_token = false;
                after_begin = false;
                head = RoutineHead::Start;
                continue;
            }
            Token::OpenParen => parens += 1,
            Token::CloseParen => parens = parens.saturating_sub(1),
            Token::Word { end } => {
                let word = bytes.get(at..end).unwrap_or_default();
                head = head.feed(word);
                // Like psql: only in CREATE [OR REPLACE] FUNCTION|PROCEDURE and
                // outside parentheses, where BEGIN ATOMIC can begin a body.
                if head == RoutineHead::Routine && parens == 0 {
                    if after_begin && word.eq_ignore_ascii_case(b"atomic") {
                        atomic += 1;
                    } else if word.eq_ignore_ascii_case(b"begin") {
                        begin = true;
                    } else if atomic > 0 && word.eq_ignore_ascii_case(b"case") {
                        atomic += 1;
                    } else if atomic > 0 && word.eq_ignore_ascii_case(b"end") {
                        atomic -= 1;
                    }
                }
            }
            Token::Semicolon | Token::Other => {}
        }
        has_token = true;
        after_begin = begin;
    }
    if has_token {
        push(&mut out, file, stmt_start, file.len(), &mut lines);
    }
    Ok(out)
}

fn split_drizzle(file: &str) -> Result<Vec<Statement<'_>>, SplitError> {
    let mut out = Vec::new();
    let mut lines = LineCursor::default();
    let mut chunk_start = 0;
    let ends = file
        .match_indices(BREAKPOINT)
        .map(|(at, _)| at)
        .chain(std::iter::once(file.len()));
    for chunk_end in ends {
        // Both ends are at the ASCII marker or the ends of the file, so they
        // are character boundaries.
        let chunk = &file[chunk_start..chunk_end];
        let lead = chunk.len() - chunk.trim_start_matches(is_space).len();
        let mut body = chunk[lead..].trim_end_matches(is_space);
        if let Some(stripped) = body.strip_suffix(';') {
            body = stripped.trim_end_matches(is_space);
        }
        let from = chunk_start + lead;
        // Lexing the chunk finds chunks of only comments (dropped like empty
        // ones) and reports unterminated constructs before anything runs.
        let mut lexer = Lexer::new(file, from, from + body.len());
        let mut has_token = false;
        while lexer.next_token()?.is_some() {
            has_token = true;
        }
        if has_token {
            push(&mut out, file, from, from + body.len(), &mut lines);
        }
        chunk_start = chunk_end + BREAKPOINT.len();
    }
    Ok(out)
}

/// Appends `file[from..to]` without surrounding whitespace. `from` and `to` are
/// at a `;`, a marker or the ends of the file: character boundaries.
fn push<'a>(
    out: &mut Vec<Statement<'a>>,
    file: &'a str,
    from: usize,
    to: usize,
    lines: &mut LineCursor,
) {
    let raw = &file[from..to];
    let lead = raw.len() - raw.trim_start_matches(is_space).len();
    let sql = raw[lead..].trim_end_matches(is_space);
    let start_offset = from + lead;
    out.push(Statement {
        sql,
        index: out.len(),
        start_line: lines.line_at(file.as_bytes(), start_offset),
        start_offset,
    });
}

/// PostgreSQL's whitespace; `str::trim` would also strip Unicode spaces, which
/// PostgreSQL treats as identifier characters.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{b}' | '\u{c}')
}

fn count_newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// Line numbers for increasing offsets, counting each byte once over a file.
struct LineCursor {
    offset: usize,
    line: usize,
}

impl Default for LineCursor {
    fn default() -> Self {
        Self { offset: 0, line: 1 }
    }
}

impl LineCursor {
    fn line_at(&mut self, bytes: &[u8], offset: usize) -> usize {
        match bytes.get(self.offset..offset) {
            Some(between) => {
                self.line += count_newlines(between);
                self.offset = offset;
                self.line
            }
            // Not reached: statements come in file order.
            None => 1 + count_newlines(bytes.get(..offset).unwrap_or(bytes)),
        }
    }
}

/// How far a statement's first words match `CREATE [OR REPLACE]
/// {FUNCTION | PROCEDURE}`, the only statements where psql (and so squizzle)
/// looks for `BEGIN ATOMIC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RoutineHead {
    Start,
    Create,
    CreateOr,
    CreateOrReplace,
    Routine,
    Other,
}

impl RoutineHead {
    fn feed(self, word: &[u8]) -> Self {
        let is = |keyword: &[u8]| word.eq_ignore_ascii_case(keyword);
        match self {
            Self::Start if is(b"create") => Self::Create,
            Self::Create if is(b"or") => Self::CreateOr,
            Self::CreateOr if is(b"replace") => Self::CreateOrReplace,
            Self::Create | Self::CreateOrReplace if is(b"function") || is(b"procedure") => {
                Self::Routine
            }
            Self::Routine => Self::Routine,
            _ => Self::Other,
        }
    }
}

/// What the splitter needs to know about a token; whitespace and comments are
/// skipped, and strings, quoted identifiers and dollar quotes are `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// An unquoted word (keyword or identifier); it starts at the token's offset.
    Word {
        end: usize,
    },
    Semicolon,
    OpenParen,
    CloseParen,
    Other,
}

/// PostgreSQL's lexical rules (src/backend/parser/scan.l) over `text[pos..end]`.
/// Offsets are into the whole `text`, so error lines are file lines.
struct Lexer<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    end: usize,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

/// `$` continues an identifier (`a$b`), so it never starts a dollar quote there.
fn is_ident_cont(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

/// Dollar-quote tags are identifiers without `$`.
fn is_tag_cont(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit()
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str, pos: usize, end: usize) -> Self {
        Self {
            text,
            bytes: text.as_bytes(),
            pos,
            end: end.min(text.len()),
        }
    }

    fn byte(&self, at: usize) -> Option<u8> {
        if at < self.end {
            self.bytes.get(at).copied()
        } else {
            None
        }
    }

    fn line(&self, at: usize) -> usize {
        line_of(self.text, at)
    }

    /// The next token and its start offset, or `None` at the end.
    fn next_token(&mut self) -> Result<Option<(usize, Token)>, SplitError> {
        loop {
            let start = self.pos;
            let Some(b) = self.byte(start) else {
                return Ok(None);
            };
            let token = match b {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => {
                    self.pos += 1;
                    continue;
                }
                b'-' if self.byte(start + 1) == Some(b'-') => {
                    self.skip_line_comment();
                    continue;
                }
                b'/' if self.byte(start + 1) == Some(b'*') => {
                    self.skip_block_comment()?;
                    continue;
                }
                b'\'' => {
                    self.pos = start + 1;
                    self.skip_quoted(b'\'', false, start)?;
                    Token::Other
                }
                b'"' => {
                    self.pos = start + 1;
                    self.skip_quoted(b'"', false, start)?;
                    Token::Other
                }
                b'$' => {
                    self.skip_dollar()?;
                    Token::Other
                }
                b';' => {
                    self.pos = start + 1;
                    Token::Semicolon
                }
                b'(' => {
                    self.pos = start + 1;
                    Token::OpenParen
                }
                b')' => {
                    self.pos = start + 1;
                    Token::CloseParen
                }
                b if is_ident_start(b) => {
                    let mut end = start + 1;
                    while self.byte(end).is_some_and(is_ident_cont) {
                        end += 1;
                    }
                    // E'...' is an escape string only when the E is a word by
                    // itself: in `namE'x'` the word is `namE` and `'x'` a
                    // standard string. (U&'...', B'...', X'...', N'...' need no
                    // rule: they lex like '...'.)
                    if end == start + 1 && (b == b'e' || b == b'E') && self.byte(end) == Some(b'\'')
                    {
                        self.pos = end + 1;
                        self.skip_quoted(b'\'', true, start)?;
                        Token::Other
                    } else {
                        self.pos = end;
                        Token::Word { end }
                    }
                }
                // Digits, operators, punctuation, one byte at a time. Comments
                // inside operators (`+--x`, `*/*x*/`) are found because each
                // byte is looked at on its own.
                _ => {
                    self.pos = start + 1;
                    Token::Other
                }
            };
            return Ok(Some((start, token)));
        }
    }

    /// `--` runs to the end of the line (`\n` or `\r`, as in scan.l).
    fn skip_line_comment(&mut self) {
        let rest = self.bytes.get(self.pos..self.end).unwrap_or_default();
        self.pos = match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            Some(at) => self.pos + at + 1,
            None => self.end,
        };
    }

    /// `/* ... */`. PostgreSQL nests them, as the SQL standard says (many
    /// other databases do not): `/* a /* b */ c */` is one comment.
    fn skip_block_comment(&mut self) -> Result<(), SplitError> {
        let start = self.pos;
        let mut at = start + 2;
        let mut depth = 1usize;
        while let Some(b) = self.byte(at) {
            match (b, self.byte(at + 1)) {
                (b'/', Some(b'*')) => {
                    depth += 1;
                    at += 2;
                }
                (b'*', Some(b'/')) => {
                    depth -= 1;
                    at += 2;
                    if depth == 0 {
                        self.pos = at;
                        return Ok(());
                    }
                }
                _ => at += 1,
            }
        }
        Err(SplitError::UnterminatedBlockComment {
            line: self.line(start),
        })
    }

    /// The rest of a quoted token whose opening `quote` is before `self.pos`.
    /// A doubled quote is an escaped quote; with `backslash` (E'...'), a
    /// backslash escapes the next byte (`\'`, `\\`).
    fn skip_quoted(&mut self, quote: u8, backslash: bool, start: usize) -> Result<(), SplitError> {
        let mut at = self.pos;
        loop {
            let rest = self.bytes.get(at..self.end).unwrap_or_default();
            let Some(found) = rest
                .iter()
                .position(|&b| b == quote || (backslash && b == b'\\'))
            else {
                let line = self.line(start);
                return Err(if quote == b'"' {
                    SplitError::UnterminatedQuotedIdentifier { line }
                } else {
                    SplitError::UnterminatedString { line }
                });
            };
            at += found;
            if self.byte(at) == Some(b'\\') {
                // Skipping one byte of a multi-byte character is harmless: its
                // other bytes are >= 0x80 and match nothing here.
                at += 2;
            } else if self.byte(at + 1) == Some(quote) {
                at += 2;
            } else {
                self.pos = at + 1;
                return Ok(());
            }
        }
    }

    /// At a `$`: a parameter (`$1`), a dollar quote (`$$...$$`,
    /// `$tag$...$tag$`), or a lone `$` (scan.l's "dolqfailed": the `$` is a
    /// token and lexing goes on after it).
    fn skip_dollar(&mut self) -> Result<(), SplitError> {
        let start = self.pos;
        let mut at = start + 1;
        if self.byte(at).is_some_and(|b| b.is_ascii_digit()) {
            while self.byte(at).is_some_and(|b| b.is_ascii_digit()) {
                at += 1;
            }
            self.pos = at;
            return Ok(());
        }
        if self.byte(at).is_some_and(is_ident_start) {
            while self.byte(at).is_some_and(is_tag_cont) {
                at += 1;
            }
        }
        if self.byte(at) != Some(b'$') {
            self.pos = start + 1;
            return Ok(());
        }
        let body = at + 1;
        // Both ends of the delimiter are ASCII `$`, so these are character
        // boundaries; `get` only guards against a bug here.
        let (Some(delimiter), Some(rest)) =
            (self.text.get(start..body), self.text.get(body..self.end))
        else {
            self.pos = start + 1;
            return Ok(());
        };
        // The body ends at the first exact copy of the opening delimiter; other
        // tags inside (`$$` within `$fn$...$fn$`) are text. `str::find` is
        // linear (two-way search).
        match rest.find(delimiter) {
            Some(found) => {
                self.pos = body + found + delimiter.len();
                Ok(())
            }
            None => Err(SplitError::UnterminatedDollarQuote {
                tag: delimiter.to_owned(),
                line: self.line(start),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(file: &str) -> Vec<&str> {
        split(file, SplitMode::Plain)
            .unwrap()
            .into_iter()
            .map(|s| s.sql)
            .collect()
    }

    fn drizzle(file: &str) -> Vec<&str> {
        split(file, SplitMode::Drizzle)
            .unwrap()
            .into_iter()
            .map(|s| s.sql)
            .collect()
    }

    #[test]
    fn splits_at_semicolons_and_keeps_a_final_statement_without_one() {
        assert_eq!(
            plain("SELECT 1; SELECT 2;\nSELECT 3"),
            ["SELECT 1", "SELECT 2", "SELECT 3"]
        );
        assert!(plain("").is_empty());
        assert!(plain("  \n\t").is_empty());
    }

    #[test]
    fn empty_statements_are_dropped_and_numbering_stays_contiguous() {
        let file =
            ";; SELECT 1;;\n; -- only a comment\n; /* and another */ ; SELECT 2; -- trailing\n";
        let stmts = split(file, SplitMode::Plain).unwrap();
        assert_eq!(
            stmts.iter().map(|s| (s.index, s.sql)).collect::<Vec<_>>(),
            [(0, "SELECT 1"), (1, "SELECT 2")]
        );
    }

    #[test]
    fn semicolons_in_single_quoted_strings_do_not_split() {
        assert_eq!(
            plain("SELECT 'a;b'; SELECT 2"),
            ["SELECT 'a;b'", "SELECT 2"]
        );
        // A doubled quote is an escape; for finding boundaries it is the same
        // as two adjacent literals, so this checks the text survives intact.
        assert_eq!(
            plain("SELECT 'it''s; ok'; SELECT 2"),
            ["SELECT 'it''s; ok'", "SELECT 2"]
        );
    }

    #[test]
    fn backslash_is_literal_in_standard_strings() {
        // standard_conforming_strings = on: 'C:\' is a complete literal.
        assert_eq!(
            plain("SELECT 'C:\\'; SELECT 2"),
            ["SELECT 'C:\\'", "SELECT 2"]
        );
    }

    #[test]
    fn escape_strings_honour_backslash_quote_and_backslash_backslash() {
        assert_eq!(
            plain("SELECT E'it\\'s; x'; SELECT 2"),
            ["SELECT E'it\\'s; x'", "SELECT 2"]
        );
        assert_eq!(
            plain("SELECT e'\\\\'; SELECT 2"),
            ["SELECT e'\\\\'", "SELECT 2"]
        );
        assert_eq!(
            plain("SELECT E'a''b;'; SELECT 2"),
            ["SELECT E'a''b;'", "SELECT 2"]
        );
        // Only a lone E starts an escape string: here `name` is a type and
        // 'C:\' a standard string.
        assert_eq!(
            plain("SELECT name'C:\\'; SELECT 2"),
            ["SELECT name'C:\\'", "SELECT 2"]
        );
        assert_eq!(
            plain("SELECT (E'\\'');SELECT 2"),
            ["SELECT (E'\\'')", "SELECT 2"]
        );
    }

    #[test]
    fn unicode_strings_do_not_treat_backslash_as_an_escape() {
        let file = "SELECT U&'!0061\\' UESCAPE '!'; SELECT 2";
        assert_eq!(plain(file), ["SELECT U&'!0061\\' UESCAPE '!'", "SELECT 2"]);
    }

    #[test]
    fn semicolons_in_quoted_identifiers_do_not_split() {
        assert_eq!(
            plain("SELECT 1 AS \"a;b\"; SELECT 2"),
            ["SELECT 1 AS \"a;b\"", "SELECT 2"]
        );
        assert_eq!(
            plain("SELECT 1 AS \"a\"\";\"; SELECT 2"),
            ["SELECT 1 AS \"a\"\";\"", "SELECT 2"]
        );
        // Apostrophes are ordinary characters in identifiers.
        assert_eq!(
            plain("SELECT 1 AS \"it's\"; SELECT 'x;'"),
            ["SELECT 1 AS \"it's\"", "SELECT 'x;'"]
        );
    }

    #[test]
    fn dollar_quotes_hold_semicolons() {
        let file = "DO $$ BEGIN PERFORM 1; EXCEPTION WHEN others THEN NULL; END $$;\nSELECT 2";
        assert_eq!(
            plain(file),
            [
                "DO $$ BEGIN PERFORM 1; EXCEPTION WHEN others THEN NULL; END $$",
                "SELECT 2"
            ]
        );
        // Quotes and comment starts inside a dollar quote are text.
        assert_eq!(
            plain("SELECT $$ it's -- /* ; $$; SELECT 2"),
            ["SELECT $$ it's -- /* ; $$", "SELECT 2"]
        );
    }

    #[test]
    fn dollar_quotes_end_only_at_their_own_tag() {
        let file =
            "CREATE FUNCTION f() RETURNS int AS $fn$ SELECT $$;$$; $a$ $fn$ LANGUAGE sql; SELECT 2";
        assert_eq!(
            plain(file),
            [
                "CREATE FUNCTION f() RETURNS int AS $fn$ SELECT $$;$$; $a$ $fn$ LANGUAGE sql",
                "SELECT 2"
            ]
        );
        assert_eq!(
            plain("SELECT $a1_$ ; $a1$ ; $a1_$; SELECT 2"),
            ["SELECT $a1_$ ; $a1$ ; $a1_$", "SELECT 2"]
        );
        // Tags are case-sensitive.
        assert_eq!(
            plain("SELECT $T$ ; $t$ ; $T$; SELECT 2"),
            ["SELECT $T$ ; $t$ ; $T$", "SELECT 2"]
        );
    }

    #[test]
    fn parameters_are_not_dollar_quotes() {
        // scan.l lexes `$1$2` as two parameters: a tag never starts with a digit.
        assert_eq!(plain("SELECT $1$2; SELECT 3"), ["SELECT $1$2", "SELECT 3"]);
        assert_eq!(
            plain("PREPARE q AS SELECT $1 + $12;\nSELECT ';'"),
            ["PREPARE q AS SELECT $1 + $12", "SELECT ';'"]
        );
    }

    #[test]
    fn dollar_inside_an_identifier_is_not_a_quote() {
        assert_eq!(
            plain("SELECT x$y$ FROM t; SELECT 2"),
            ["SELECT x$y$ FROM t", "SELECT 2"]
        );
        // ...but after a number it is: `1` then `$$...$$`.
        assert_eq!(
            plain("SELECT 1$$;$$; SELECT 2"),
            ["SELECT 1$$;$$", "SELECT 2"]
        );
    }

    #[test]
    fn a_lone_dollar_is_a_token_and_lexing_goes_on() {
        assert_eq!(
            plain("SELECT $foo; SELECT $; SELECT 3"),
            ["SELECT $foo", "SELECT $", "SELECT 3"]
        );
    }

    #[test]
    fn line_comments_hide_semicolons_and_quotes() {
        assert_eq!(
            plain("SELECT 1 -- a; it's\n; SELECT 2"),
            ["SELECT 1 -- a; it's", "SELECT 2"]
        );
        assert_eq!(
            plain("SELECT 1; -- it's\nSELECT 2"),
            ["SELECT 1", "-- it's\nSELECT 2"]
        );
        // `-` alone is an operator.
        assert_eq!(plain("SELECT 1-2; SELECT -3"), ["SELECT 1-2", "SELECT -3"]);
        // A comment starts inside an operator too.
        assert_eq!(
            plain("SELECT 1 +--;\n2; SELECT 3"),
            ["SELECT 1 +--;\n2", "SELECT 3"]
        );
    }

    #[test]
    fn block_comments_nest() {
        assert_eq!(
            plain("SELECT /* a /* b; */ c; */ 1; SELECT 2"),
            ["SELECT /* a /* b; */ c; */ 1", "SELECT 2"]
        );
        // `/*/` opens and does not close; `**/` closes.
        assert_eq!(
            plain("SELECT /*/ ; **/ 1; SELECT 2"),
            ["SELECT /*/ ; **/ 1", "SELECT 2"]
        );
        assert_eq!(
            plain("SELECT 1 /* it's */; SELECT 2"),
            ["SELECT 1 /* it's */", "SELECT 2"]
        );
    }

    #[test]
    fn semicolons_inside_parentheses_do_not_split() {
        let file = "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2));\nSELECT 1";
        assert_eq!(
            plain(file),
            [
                "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2))",
                "SELECT 1"
            ]
        );
        // A stray `)` does not make later `(` unbalanced.
        assert_eq!(
            plain("SELECT 1); SELECT (2); SELECT 3"),
            ["SELECT 1)", "SELECT (2)", "SELECT 3"]
        );
    }

    #[test]
    fn begin_atomic_bodies_are_one_statement() {
        let body = "CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  INSERT INTO t VALUES (a);\n  SELECT CASE WHEN a > 0 THEN 1 ELSE 2 END;\nEND";
        assert_eq!(plain(&format!("{body};\nSELECT 3;")), [body, "SELECT 3"]);
        let lower = "create or replace procedure p() language sql begin atomic select 1; select case when true then (case when false then 1 end) end; end";
        assert_eq!(plain(&format!("{lower}; select 2")), [lower, "select 2"]);
        // A comment between BEGIN and ATOMIC is fine.
        let commented =
            "CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN /* x */ ATOMIC SELECT 1; END";
        assert_eq!(
            plain(&format!("{commented}; SELECT 2")),
            [commented, "SELECT 2"]
        );
        // An empty body.
        assert_eq!(
            plain("CREATE PROCEDURE e() BEGIN ATOMIC END; SELECT 2"),
            ["CREATE PROCEDURE e() BEGIN ATOMIC END", "SELECT 2"]
        );
    }

    #[test]
    fn begin_atomic_needs_whole_words_and_a_routine() {
        // Not CREATE FUNCTION: `begin` is a column and `atomic` its alias.
        assert_eq!(
            plain("SELECT begin atomic FROM t; SELECT 2"),
            ["SELECT begin atomic FROM t", "SELECT 2"]
        );
        // Word boundaries: BEGIN_ATOMIC and ATOMICS are other words.
        let f = "CREATE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE sql BEGIN_ATOMIC";
        assert_eq!(plain(&format!("{f}; SELECT 2")), [f, "SELECT 2"]);
        let g = "CREATE FUNCTION g() RETURNS int AS 'select 1' LANGUAGE sql BEGIN ATOMICS";
        assert_eq!(plain(&format!("{g}; SELECT 2")), [g, "SELECT 2"]);
        // After the body's END, the next `;` splits again; ENDX is not END.
        let h = "CREATE FUNCTION h() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT endx; END";
        assert_eq!(
            plain(&format!("{h}; SELECT 2; SELECT 3")),
            [h, "SELECT 2", "SELECT 3"]
        );
    }

    #[test]
    fn positions_point_at_the_statement_text() {
        let file = "-- header\n\nSELECT 1;\n  SELECT\n  2;  SELECT 'é'; SELECT 4";
        let stmts = split(file, SplitMode::Plain).unwrap();
        let got: Vec<_> = stmts
            .iter()
            .map(|s| (s.index, s.start_line, s.sql))
            .collect();
        assert_eq!(
            got,
            [
                (0, 1, "-- header\n\nSELECT 1"),
                (1, 4, "SELECT\n  2"),
                (2, 5, "SELECT 'é'"),
                (3, 5, "SELECT 4")
            ]
        );
        for s in &stmts {
            assert_eq!(&file[s.start_offset..s.start_offset + s.sql.len()], s.sql);
            assert_eq!(line_of(file, s.start_offset), s.start_line);
        }
    }

    #[test]
    fn crlf_files_split_and_count_lines() {
        let file = "SELECT 1;\r\n\r\nSELECT 'a\r\nb';\r\n-- c\r\nSELECT 3;\r\n";
        let stmts = split(file, SplitMode::Plain).unwrap();
        let got: Vec<_> = stmts.iter().map(|s| (s.start_line, s.sql)).collect();
        assert_eq!(
            got,
            [
                (1, "SELECT 1"),
                (3, "SELECT 'a\r\nb'"),
                (5, "-- c\r\nSELECT 3")
            ]
        );
        assert_eq!(
            drizzle("SELECT 1;\r\n--> statement-breakpoint\r\nSELECT 2;\r\n"),
            ["SELECT 1", "SELECT 2"]
        );
    }

    #[test]
    fn line_of_counts_newlines_before_the_offset() {
        let file = "a\nb\r\nc";
        assert_eq!(
            [0, 1, 2, 3, 4, 5, 6, 99].map(|o| line_of(file, o)),
            [1, 1, 2, 2, 2, 3, 3, 3]
        );
        assert_eq!(line_of("", 0), 1);
    }

    #[test]
    fn unterminated_constructs_are_errors_with_their_start_line() {
        let err = |file: &str| split(file, SplitMode::Plain).unwrap_err();
        assert_eq!(
            err("SELECT 1;\nSELECT 'abc;\n"),
            SplitError::UnterminatedString { line: 2 }
        );
        assert_eq!(
            err("SELECT E'abc\\'"),
            SplitError::UnterminatedString { line: 1 }
        );
        assert_eq!(
            err("\n\nSELECT \"abc"),
            SplitError::UnterminatedQuotedIdentifier { line: 3 }
        );
        assert_eq!(
            err("SELECT 1;\nDO $body$ BEGIN END $$;"),
            SplitError::UnterminatedDollarQuote {
                tag: "$body$".into(),
                line: 2
            }
        );
        assert_eq!(
            err("SELECT $$"),
            SplitError::UnterminatedDollarQuote {
                tag: "$$".into(),
                line: 1
            }
        );
        assert_eq!(
            err("SELECT 1;\n/* a /* b */ still open"),
            SplitError::UnterminatedBlockComment { line: 2 }
        );
        assert_eq!(
            err("SELECT 1; /* x").to_string(),
            "unterminated /* comment starting at line 1"
        );
    }

    #[test]
    fn drizzle_splits_only_at_breakpoints() {
        let file = "CREATE TABLE a (x int);--> statement-breakpoint\nDO $$ BEGIN\n CREATE TYPE t AS ENUM('a');\nEXCEPTION\n WHEN duplicate_object THEN null;\nEND $$;\n--> statement-breakpoint\nALTER TABLE a ADD y int; ALTER TABLE a ADD z int;";
        let stmts = split(file, SplitMode::Drizzle).unwrap();
        let got: Vec<_> = stmts
            .iter()
            .map(|s| (s.index, s.start_line, s.sql))
            .collect();
        assert_eq!(
            got,
            [
                (0, 1, "CREATE TABLE a (x int)"),
                (
                    1,
                    2,
                    "DO $$ BEGIN\n CREATE TYPE t AS ENUM('a');\nEXCEPTION\n WHEN duplicate_object THEN null;\nEND $$"
                ),
                // Several statements without a breakpoint stay one chunk.
                (2, 8, "ALTER TABLE a ADD y int; ALTER TABLE a ADD z int"),
            ]
        );
        for s in &stmts {
            assert_eq!(&file[s.start_offset..s.start_offset + s.sql.len()], s.sql);
        }
    }

    #[test]
    fn drizzle_strips_one_semicolon_and_drops_empty_chunks() {
        assert_eq!(
            drizzle("SELECT 1;;\n--> statement-breakpoint\n"),
            ["SELECT 1;"]
        );
        assert_eq!(drizzle("SELECT 1 ; \n"), ["SELECT 1"]);
        let file = "--> statement-breakpoint\n\n--> statement-breakpoint\n;\n--> statement-breakpoint\n-- just a note\n--> statement-breakpoint\nSELECT 1";
        assert_eq!(drizzle(file), ["SELECT 1"]);
        assert!(drizzle("").is_empty());
        // Leading comments stay with the chunk.
        assert_eq!(
            drizzle("-- Custom SQL\n\nUPDATE t SET x = 1;"),
            ["-- Custom SQL\n\nUPDATE t SET x = 1"]
        );
    }

    #[test]
    fn drizzle_splits_even_inside_strings_like_drizzle_kit() {
        // drizzle-kit would send both halves and fail; squizzle says so first.
        let err = split("SELECT '--> statement-breakpoint'", SplitMode::Drizzle).unwrap_err();
        assert_eq!(err, SplitError::UnterminatedString { line: 1 });
        // Without a marker, Drizzle mode never splits at semicolons.
        assert_eq!(drizzle("SELECT 1; SELECT 2;"), ["SELECT 1; SELECT 2"]);
    }

    #[test]
    fn transaction_control_is_found_by_first_keyword() {
        let cases = [
            ("BEGIN;", Some("BEGIN")),
            (
                "begin transaction isolation level serializable",
                Some("BEGIN"),
            ),
            ("  /* c */ -- x\n BeGiN WORK", Some("BEGIN")),
            ("START TRANSACTION", Some("START TRANSACTION")),
            ("start transaction read only;", Some("START TRANSACTION")),
            ("COMMIT", Some("COMMIT")),
            ("commit and chain", Some("COMMIT")),
            ("END", Some("END")),
            ("end transaction;", Some("END")),
            ("ROLLBACK", Some("ROLLBACK")),
            ("rollback work;", Some("ROLLBACK")),
            ("ABORT", Some("ABORT")),
            ("COMMIT PREPARED 'x'", Some("COMMIT PREPARED")),
            ("ROLLBACK PREPARED 'x'", Some("ROLLBACK PREPARED")),
            ("PREPARE TRANSACTION 'x'", Some("PREPARE TRANSACTION")),
            ("ROLLBACK TO SAVEPOINT a", None),
            ("rollback transaction to a", None),
            ("SAVEPOINT a", None),
            ("RELEASE SAVEPOINT a", None),
            ("PREPARE q AS SELECT 1", None),
            ("DO $$ BEGIN PERFORM 1; END $$", None),
            (
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END",
                None,
            ),
            ("-- BEGIN\nSELECT 1", None),
            ("/* COMMIT */ SELECT 1", None),
            ("ENDX", None),
            ("END_DATE", None),
            ("begin$x", None),
            ("\"BEGIN\"", None),
            ("SELECT 'BEGIN'", None),
            ("", None),
            ("START", None),
        ];
        for (stmt, want) in cases {
            assert_eq!(transaction_control(stmt), want, "{stmt:?}");
        }
    }

    /// Deterministic linear congruential generator (Knuth's MMIX constants).
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) as usize) % n
        }
    }

    #[test]
    fn random_statements_split_back_exactly() {
        // Each fragment is a whole token or comment; many hide a `;`.
        const FIRST: [&str; 5] = ["SELECT", "INSERT", "x$y", "\"Col;umn\"", "ünï"];
        const FRAGMENTS: [&str; 24] = [
            "'a;b'",
            "'it''s;'",
            "'C:\\'",
            "E'\\';'",
            "e'\\\\'",
            "U&'\\;'",
            "\"we;ird\"",
            "\"a\"\"b;\"",
            "$$;$$",
            "$t$ ; $$ ; $t$",
            "$a1$;'$a1$",
            "/* ; /* ; */ ; */",
            "/**/",
            "-- ; 'x\n",
            "--\r\n",
            "ident",
            "a$b",
            "$1",
            "42",
            "(1; 2)",
            "+",
            "$",
            "é",
            "BEGIN",
        ];
        const GAPS: [&str; 5] = [" ", "\n", "\r\n", "\t", "  \n "];
        let mut rng = Lcg(0x5eed);
        for _ in 0..500 {
            let mut file = String::new();
            let mut want = Vec::new();
            for _ in 0..rng.below(6) {
                let mut stmt = String::from(FIRST[rng.below(FIRST.len())]);
                for _ in 0..rng.below(8) {
                    stmt.push_str(GAPS[rng.below(GAPS.len())]);
                    stmt.push_str(FRAGMENTS[rng.below(FRAGMENTS.len())]);
                }
                let stmt = stmt.trim_end_matches(is_space).to_owned();
                file.push_str(GAPS[rng.below(GAPS.len())]);
                file.push_str(&stmt);
                // A line comment needs its newline kept before the `;`.
                if stmt.ends_with("--") || stmt.lines().last().is_some_and(|l| l.contains("--")) {
                    file.push('\n');
                }
                file.push(';');
                if rng.below(3) == 0 {
                    file.push_str(" ;");
                }
                want.push(stmt);
            }
            let got = split(&file, SplitMode::Plain).unwrap_or_else(|e| panic!("{e} in {file:?}"));
            let got_sql: Vec<_> = got.iter().map(|s| s.sql).collect();
            assert_eq!(got_sql, want, "{file:?}");
            for (i, s) in got.iter().enumerate() {
                assert_eq!(s.index, i);
                assert_eq!(&file[s.start_offset..s.start_offset + s.sql.len()], s.sql);
                assert_eq!(s.start_line, line_of(&file, s.start_offset));
            }
        }
    }
}

/// The line where a statement's SQL starts, after its leading comments (the
/// splitter keeps comments with the statement that follows them).
pub fn code_line(st: &Statement<'_>) -> usize {
    let mut rest = st.sql;
    loop {
        let trimmed = rest.trim_start();
        if let Some(after) = trimmed.strip_prefix("--") {
            rest = after.find('\n').map_or("", |i| &after[i..]);
        } else if trimmed.starts_with("/*") {
            // Nested block comments, as PostgreSQL reads them.
            let bytes = trimmed.as_bytes();
            let (mut depth, mut i) = (0usize, 0usize);
            while i + 1 < bytes.len() {
                match (bytes[i], bytes[i + 1]) {
                    (b'/', b'*') => (depth, i) = (depth + 1, i + 2),
                    (b'*', b'/') => {
                        (depth, i) = (depth - 1, i + 2);
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => i += 1,
                }
            }
            rest = &trimmed[i.min(trimmed.len())..];
        } else {
            let consumed = st.sql.len() - trimmed.len();
            return st.start_line + st.sql[..consumed].matches('\n').count();
        }
    }
}

/// The first transaction-control statement (file line, keyword). A drizzle
/// chunk can hold several statements, so each chunk is lexed again in plain mode.
pub fn find_transaction_control(statements: &[Statement<'_>]) -> Option<(usize, &'static str)> {
    for st in statements {
        // A chunk that does not lex on its own is left for the server to reject.
        let inner = split(st.sql, SplitMode::Plain).unwrap_or_default();
        for sub in &inner {
            if let Some(keyword) = transaction_control(sub.sql) {
                return Some((st.start_line + code_line(sub) - 1, keyword));
            }
        }
    }
    None
}

#[cfg(test)]
mod statement_line_tests {
    use super::*;

    #[test]
    fn transaction_control_is_found_inside_multi_statement_chunks_with_its_line() {
        let file =
            "CREATE TABLE a (id int);\n--> statement-breakpoint\nSELECT 1;\n-- note\nCOMMIT;\n";
        let chunks = split(file, SplitMode::Drizzle).unwrap();
        assert_eq!(find_transaction_control(&chunks), Some((5, "COMMIT")));
        let clean = split(
            "CREATE TABLE a (id int);\n--> statement-breakpoint\nDO $$ BEGIN NULL; END $$;",
            SplitMode::Drizzle,
        )
        .unwrap();
        assert_eq!(find_transaction_control(&clean), None);
    }

    #[test]
    fn code_line_skips_leading_comments() {
        let file =
            "SELECT 1;\n-- why\n/* nested /* block */ comment */\n\nINSERT INTO t VALUES (1);";
        let st = split(file, SplitMode::Plain).unwrap();
        assert_eq!(code_line(&st[1]), 5);
    }

    #[test]
    fn concurrent_index_names_are_found_as_postgresql_stores_them() {
        let ix = |sql: &str| concurrent_index(sql).map(|i| (i.schema, i.name, i.if_not_exists));
        assert_eq!(
            ix("-- why\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS T_N_Uniq ON t (n)"),
            Some((None, "t_n_uniq".into(), true))
        );
        assert_eq!(
            ix("create index concurrently \"Odd \"\"Name\"\"\" on t (id)"),
            Some((None, "Odd \"Name\"".into(), false))
        );
        assert_eq!(
            ix("CREATE INDEX CONCURRENTLY app.t_id ON app.t (id)"),
            Some((Some("app".into()), "t_id".into(), false))
        );
        assert_eq!(ix("CREATE INDEX CONCURRENTLY ON t (id)"), None);
        assert_eq!(ix("CREATE INDEX t_id ON t (id)"), None);
        assert_eq!(ix("DROP INDEX CONCURRENTLY t_id"), None);
        assert_eq!(ix("SELECT 'CREATE INDEX CONCURRENTLY x ON t (id)'"), None);
    }

    #[test]
    fn enum_value_additions_are_recognised_and_nothing_else() {
        assert!(adds_enum_value("ALTER TYPE mood ADD VALUE 'b'"));
        assert!(adds_enum_value(
            "-- prisma\nalter type \"public\".\"Role\" add value if not exists 'ADMIN'"
        ));
        assert!(!adds_enum_value("ALTER TYPE mood RENAME VALUE 'a' TO 'b'"));
        assert!(!adds_enum_value("ALTER TYPE addr ADD ATTRIBUTE value text"));
        assert!(!adds_enum_value("ALTER TABLE t ADD VALUE int"));
        assert!(!adds_enum_value("SELECT 'ALTER TYPE mood ADD VALUE'"));
    }
}
