//! libpq's password file: `PGPASSFILE`, else `~/.pgpass`, consulted when no
//! password was given. Lines are `host:port:database:user:password`, `*`
//! matches anything, `\:` and `\\` escape, `#` starts a comment, and the first
//! matching line wins. As libpq does, a file that its group or others can
//! read is ignored (with a warning): a password file must be private.

use std::path::{Path, PathBuf};

/// Where the password file is: `PGPASSFILE`, else `$HOME/.pgpass`.
pub fn location(pgpassfile: Option<&str>, home: Option<&Path>) -> Option<PathBuf> {
    match pgpassfile.filter(|p| !p.is_empty()) {
        Some(p) => Some(PathBuf::from(p)),
        None => home.map(|h| h.join(".pgpass")),
    }
}

/// Why a password file was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skipped {
    /// Group or others may read it (mode shown in octal).
    Permissions {
        path: PathBuf,
        mode: u32,
    },
    NotAFile {
        path: PathBuf,
    },
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skipped::Permissions { path, mode } => write!(
                f,
                "password file {} has group or world access (mode {mode:04o}); it is ignored, as libpq ignores it: chmod 0600 it",
                path.display()
            ),
            Skipped::NotAFile { path } => {
                write!(
                    f,
                    "password file {} is not a plain file; it is ignored",
                    path.display()
                )
            }
        }
    }
}

/// The password for `host:port/database` as `user`, from the file at `path`.
/// `Ok(None)` when the file does not exist or has no matching line.
pub fn lookup(
    path: &Path,
    host: &str,
    port: u16,
    database: &str,
    user: &str,
) -> Result<Option<String>, Skipped> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(None);
    };
    if !meta.is_file() {
        return Err(Skipped::NotAFile {
            path: path.to_path_buf(),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Skipped::Permissions {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    let port = port.to_string();
    Ok(text.lines().find_map(|line| {
        let fields = fields(line)?;
        let [h, p, d, u, password] = fields.as_slice() else {
            return None;
        };
        let matches = |pattern: &str, value: &str| pattern == "*" || pattern == value;
        (matches(h, host) && matches(p, &port) && matches(d, database) && matches(u, user))
            .then(|| password.clone())
    }))
}

/// The five fields of a line, unescaped; `None` for comments and lines
/// with fewer fields (a password may contain unescaped colons at the end).
fn fields(line: &str) -> Option<Vec<String>> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    out.last_mut()?.push(next);
                }
            }
            ':' if out.len() < 5 => out.push(String::new()),
            c => out.last_mut()?.push(c),
        }
    }
    (out.len() == 5).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(content: &str, mode: u32) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgpass");
        std::fs::write(&path, content).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        (dir, path)
    }

    #[test]
    fn the_first_matching_line_wins_with_wildcards_and_escapes() {
        let (_d, p) = file(
            "# comment\nother:5432:*:app:nope\ndb.internal:5432:app:app:s3cr\\:et\\\\x\n*:*:*:app:fallback\n",
            0o600,
        );
        assert_eq!(
            lookup(&p, "db.internal", 5432, "app", "app")
                .unwrap()
                .as_deref(),
            Some("s3cr:et\\x")
        );
        assert_eq!(
            lookup(&p, "elsewhere", 6543, "x", "app")
                .unwrap()
                .as_deref(),
            Some("fallback")
        );
        assert_eq!(lookup(&p, "elsewhere", 6543, "x", "bob").unwrap(), None);
        assert_eq!(
            lookup(Path::new("/nonexistent/pgpass"), "h", 1, "d", "u").unwrap(),
            None
        );
    }

    #[test]
    fn a_file_others_can_read_is_ignored_as_libpq_ignores_it() {
        let (_d, p) = file("*:*:*:*:pw\n", 0o644);
        let e = lookup(&p, "h", 5432, "d", "u").unwrap_err();
        assert!(matches!(e, Skipped::Permissions { mode: 0o644, .. }), "{e}");
        assert!(e.to_string().contains("chmod 0600"), "{e}");
        let (_d, p) = file("*:*:*:*:pw\n", 0o600);
        assert_eq!(
            lookup(&p, "h", 5432, "d", "u").unwrap().as_deref(),
            Some("pw")
        );
    }

    #[test]
    fn location_follows_pgpassfile_then_home() {
        assert_eq!(
            location(Some("/etc/pw"), Some(Path::new("/root"))),
            Some(PathBuf::from("/etc/pw"))
        );
        assert_eq!(
            location(None, Some(Path::new("/root"))),
            Some(PathBuf::from("/root/.pgpass"))
        );
        assert_eq!(location(Some(""), None), None);
    }
}
