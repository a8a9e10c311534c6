//! Rules for the relative paths stored in manifests and tarballs.
//!
//! One definition used by the packer (to refuse odd source names up front) and by
//! the unpacker and manifest validation (to refuse hostile ones): a path is a
//! non-empty, `/`-separated sequence of plain names. No absolute paths, no `.` or
//! `..`, no empty segments, no backslashes, no control characters.

pub const MAX_PATH_BYTES: usize = 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    #[error("is empty")]
    Empty,
    #[error("is longer than {MAX_PATH_BYTES} bytes")]
    TooLong,
    #[error("is absolute")]
    Absolute,
    #[error("contains a `..` or `.` segment")]
    Traversal,
    #[error("contains an empty segment (`//` or a trailing `/`)")]
    EmptySegment,
    #[error("contains a backslash")]
    Backslash,
    #[error("contains a control character")]
    Control,
}

pub fn validate_relative(path: &str) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong);
    }
    if path.starts_with('/') {
        return Err(PathError::Absolute);
    }
    if path.contains('\\') {
        return Err(PathError::Backslash);
    }
    if path.chars().any(char::is_control) {
        return Err(PathError::Control);
    }
    for seg in path.split('/') {
        match seg {
            "" => return Err(PathError::EmptySegment),
            "." | ".." => return Err(PathError::Traversal),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_relative_paths() {
        for ok in [
            "a.sql",
            "drizzle/0001_init.sql",
            "db/rollback/0001 x.sql",
            "a..b.sql",
        ] {
            assert_eq!(validate_relative(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_hostile_paths() {
        let cases = [
            ("", PathError::Empty),
            ("/etc/passwd", PathError::Absolute),
            ("../x.sql", PathError::Traversal),
            ("a/../../x.sql", PathError::Traversal),
            ("./a.sql", PathError::Traversal),
            ("a//b.sql", PathError::EmptySegment),
            ("a/", PathError::EmptySegment),
            ("a\\..\\b", PathError::Backslash),
            ("a\nb", PathError::Control),
            ("a\0b", PathError::Control),
        ];
        for (p, e) in cases {
            assert_eq!(validate_relative(p), Err(e), "{p:?}");
        }
        assert_eq!(
            validate_relative(&"a".repeat(MAX_PATH_BYTES + 1)),
            Err(PathError::TooLong)
        );
    }
}
