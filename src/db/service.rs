//! libpq's connection service file: `service=NAME` (or `PGSERVICE`) names a
//! section of `PGSERVICEFILE` (else `~/.pg_service.conf`), or of
//! `pg_service.conf` in `PGSYSCONFDIR` (else Debian's
//! `/etc/postgresql-common`). A section's `keyword=value` lines are
//! connection settings; settings given directly win over them, and they win
//! over the `PG*` variables, as in libpq.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::DbError;

/// Where libpq looks for service definitions, in order.
pub fn files(
    user_file: Option<&str>,
    home: Option<&Path>,
    sysconfdir: Option<&str>,
) -> Vec<PathBuf> {
    let mut out = Vec::new();
    match user_file.filter(|f| !f.is_empty()) {
        Some(f) => out.push(PathBuf::from(f)),
        None => out.extend(home.map(|h| h.join(".pg_service.conf"))),
    }
    let sys = sysconfdir
        .filter(|d| !d.is_empty())
        .unwrap_or("/etc/postgresql-common");
    out.push(Path::new(sys).join("pg_service.conf"));
    out
}

/// The settings of service `name` from the first file that defines it.
pub fn lookup(name: &str, files: &[PathBuf]) -> Result<BTreeMap<String, String>, DbError> {
    for path in files {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        if let Some(section) = section(&text, name, path)? {
            return Ok(section);
        }
    }
    Err(DbError::BadUrl(format!(
        "the connection service {name:?} is not defined in {}; add a [{name}] section, or check PGSERVICE/service=",
        files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" or ")
    )))
}

fn section(
    text: &str,
    name: &str,
    path: &Path,
) -> Result<Option<BTreeMap<String, String>>, DbError> {
    let mut current: Option<&str> = None;
    let mut found: Option<BTreeMap<String, String>> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if found.is_some() {
                break;
            }
            current = Some(header.trim());
            if current == Some(name) {
                found = Some(BTreeMap::new());
            }
            continue;
        }
        let Some(settings) = found.as_mut().filter(|_| current == Some(name)) else {
            continue;
        };
        let Some((k, v)) = line.split_once('=') else {
            return Err(DbError::BadUrl(format!(
                "{} line {}: expected `keyword=value` in service {name:?}",
                path.display(),
                n + 1
            )));
        };
        if k.trim() == "service" {
            return Err(DbError::BadUrl(format!(
                "{} line {}: a service may not name another service",
                path.display(),
                n + 1
            )));
        }
        settings.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_file_defining_the_service_wins() {
        let dir = tempfile::tempdir().unwrap();
        let user = dir.path().join("user.conf");
        let sys = dir.path().join("pg_service.conf");
        std::fs::write(
            &user,
            "# mine\n[other]\nhost=x\n\n[prod]\nhost = db.internal\nport=6432\ndbname=app\n[after]\nhost=y\n",
        )
        .unwrap();
        std::fs::write(&sys, "[prod]\nhost=wrong\n[shared]\nuser=ro\n").unwrap();
        let files = [user.clone(), sys.clone()];
        let prod = lookup("prod", &files).unwrap();
        assert_eq!(prod["host"], "db.internal");
        assert_eq!(prod["port"], "6432");
        assert_eq!(prod.len(), 3);
        assert_eq!(lookup("shared", &files).unwrap()["user"], "ro");
        let e = lookup("missing", &files).unwrap_err().to_string();
        assert!(e.contains("\"missing\" is not defined"), "{e}");
        std::fs::write(&user, "[bad]\njust words\n").unwrap();
        assert!(
            lookup("bad", &files)
                .unwrap_err()
                .to_string()
                .contains("line 2")
        );
    }

    #[test]
    fn files_follow_pgservicefile_home_and_sysconfdir() {
        assert_eq!(
            files(None, Some(Path::new("/home/u")), None),
            [
                PathBuf::from("/home/u/.pg_service.conf"),
                PathBuf::from("/etc/postgresql-common/pg_service.conf")
            ]
        );
        assert_eq!(
            files(Some("/s.conf"), Some(Path::new("/home/u")), Some("/etc/pg")),
            [
                PathBuf::from("/s.conf"),
                PathBuf::from("/etc/pg/pg_service.conf")
            ]
        );
    }
}
