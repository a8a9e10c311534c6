//! Tokens of one PostgreSQL statement, for the rules in `analysis`: words,
//! quoted identifiers, literals and punctuation, with comments dropped. The
//! statement splitter (`db::split`) finds where statements end; this reads
//! what is inside one, so a keyword in a string, a comment or a
//! dollar-quoted body is never taken for SQL.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok<'a> {
    /// An unquoted word (keyword or identifier), as written.
    Word(&'a str),
    /// A `"quoted identifier"`, unescaped.
    Ident(String),
    /// A `'string'` (also `E'...'`, `B'...'`, `X'...'`, `U&'...'`).
    Str,
    /// A dollar-quoted string; the body, without the delimiters.
    Dollar(&'a str),
    Num,
    LParen,
    RParen,
    Comma,
    Dot,
    /// Any other operator or punctuation, as written.
    Op(&'a str),
}

impl Tok<'_> {
    pub fn is(&self, keyword: &str) -> bool {
        matches!(self, Tok::Word(w) if w.eq_ignore_ascii_case(keyword))
    }

    /// An identifier as PostgreSQL stores it (unquoted words folded to
    /// lower case), if this token can be one.
    pub fn name(&self) -> Option<String> {
        match self {
            Tok::Word(w) => Some(w.to_ascii_lowercase()),
            Tok::Ident(s) => Some(s.clone()),
            _ => None,
        }
    }
}

/// Why a statement could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError(pub String);

fn is_word_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_word_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

pub fn lex(sql: &str) -> Result<Vec<Tok<'_>>, LexError> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
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
            loop {
                if i >= b.len() {
                    return Err(LexError("unterminated /* comment".into()));
                }
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
        } else if c == b'\'' {
            i = string_end(b, i + 1, false)?;
            out.push(Tok::Str);
        } else if (c == b'E' || c == b'e') && b.get(i + 1) == Some(&b'\'') {
            i = string_end(b, i + 2, true)?;
            out.push(Tok::Str);
        } else if matches!(c, b'B' | b'b' | b'X' | b'x' | b'N' | b'n')
            && b.get(i + 1) == Some(&b'\'')
        {
            i = string_end(b, i + 2, false)?;
            out.push(Tok::Str);
        } else if (c == b'U' || c == b'u')
            && b[i..].len() > 2
            && b[i + 1] == b'&'
            && b[i + 2] == b'\''
        {
            i = string_end(b, i + 3, false)?;
            out.push(Tok::Str);
        } else if c == b'"' {
            let start = i + 1;
            i += 1;
            loop {
                match b.get(i) {
                    None => return Err(LexError("unterminated quoted identifier".into())),
                    Some(b'"') if b.get(i + 1) == Some(&b'"') => i += 2,
                    Some(b'"') => break,
                    Some(_) => i += 1,
                }
            }
            out.push(Tok::Ident(sql[start..i].replace("\"\"", "\"")));
            i += 1;
        } else if c == b'$' && dollar_tag(b, i).is_some() {
            let tag_end = dollar_tag(b, i).unwrap_or(i + 1);
            let tag = &b[i..tag_end];
            let body_start = tag_end;
            let Some(n) = find(&b[body_start..], tag) else {
                return Err(LexError(format!(
                    "unterminated dollar-quoted string ({})",
                    String::from_utf8_lossy(tag)
                )));
            };
            out.push(Tok::Dollar(&sql[body_start..body_start + n]));
            i = body_start + n + tag.len();
        } else if is_word_start(c) {
            let start = i;
            while i < b.len() && is_word_char(b[i]) {
                i += 1;
            }
            out.push(Tok::Word(&sql[start..i]));
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Num);
        } else {
            let tok = match c {
                b'(' => Tok::LParen,
                b')' => Tok::RParen,
                b',' => Tok::Comma,
                b'.' => Tok::Dot,
                _ => {
                    // One character at a time is enough for the rules.
                    let len = sql[i..].chars().next().map_or(1, char::len_utf8);
                    let t = Tok::Op(&sql[i..i + len]);
                    i += len - 1;
                    t
                }
            };
            out.push(tok);
            i += 1;
        }
    }
    Ok(out)
}

/// The index after the closing quote of a string whose body starts at `i`.
fn string_end(b: &[u8], mut i: usize, backslash: bool) -> Result<usize, LexError> {
    loop {
        match b.get(i) {
            None => return Err(LexError("unterminated quoted string".into())),
            Some(b'\\') if backslash => i += 2,
            Some(b'\'') if b.get(i + 1) == Some(&b'\'') => i += 2,
            Some(b'\'') => return Ok(i + 1),
            Some(_) => i += 1,
        }
    }
}

/// The end of a `$tag$` opening at `i` (`$$` or `$name$`), if it is one.
fn dollar_tag(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if b.get(j) == Some(&b'$') {
        return Some(j + 1);
    }
    if !b.get(j).is_some_and(|&c| is_word_start(c)) {
        return None;
    }
    while b
        .get(j)
        .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80)
    {
        j += 1;
    }
    (b.get(j) == Some(&b'$')).then_some(j + 1)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_comments_and_dollar_bodies_hide_their_words() {
        let t = lex("SELECT 'DROP TABLE x', E'it\\'s', $b$ DROP $b$ -- DROP\n/* DROP /* nested */ */ \"Drop\"").unwrap();
        assert_eq!(
            t,
            vec![
                Tok::Word("SELECT"),
                Tok::Str,
                Tok::Comma,
                Tok::Str,
                Tok::Comma,
                Tok::Dollar(" DROP "),
                Tok::Ident("Drop".into()),
            ]
        );
        assert!(lex("SELECT 'oops").is_err());
        assert!(lex("SELECT $x$ oops").is_err());
        assert_eq!(lex("SELECT $1").unwrap()[1], Tok::Op("$"));
    }
}
