//! SQL identifiers that squizzle splices into its own SQL (the history schema):
//! validated to a conservative alphabet and always double-quoted.

use std::fmt;

/// A validated, quoted SQL identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a valid schema name: use lowercase letters, digits and '_', starting with a letter or '_' (at most 63 characters)"
)]
pub struct IdentError(pub String);

impl Ident {
    /// Lowercase letters, digits, `_` (not first); at most 63 bytes: names that
    /// PostgreSQL does not case-fold or truncate, and that cannot break quoting.
    pub fn new(name: &str) -> Result<Self, IdentError> {
        let ok = !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            return Err(IdentError(name.to_owned()));
        }
        Ok(Self(name.to_owned()))
    }
    pub fn name(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Validated above: no quote can appear inside.
        write!(f, "\"{}\"", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_validated_and_quoted() {
        assert_eq!(Ident::new("squizzle").unwrap().to_string(), "\"squizzle\"");
        assert_eq!(Ident::new("_hist_2").unwrap().to_string(), "\"_hist_2\"");
        for bad in [
            "",
            "Squizzle",
            "a-b",
            "a\"b",
            "x; DROP TABLE t",
            "1abc",
            &"a".repeat(64),
            "ä",
        ] {
            assert!(Ident::new(bad).is_err(), "{bad}");
        }
    }
}
