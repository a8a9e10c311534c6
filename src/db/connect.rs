//! Connection settings with libpq's meaning: a `postgres://` URL or a
//! `key=value` string, `PG*` environment variables as fallbacks, and the TLS
//! parameters (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`) that tokio-postgres
//! does not implement itself (it knows no `verify-ca`/`verify-full`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_postgres::Client;

use super::DbError;
use super::tls::{MakeRustlsConnect, Verification, client_config};
use crate::core::env::Env;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(s: &str) -> Result<Self, DbError> {
        Ok(match s {
            "disable" => Self::Disable,
            "allow" => Self::Allow,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            other => {
                return Err(DbError::BadUrl(format!(
                    "sslmode={other:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                )));
            }
        })
    }
}

/// Everything needed to open a connection.
#[derive(Debug, Clone)]
pub struct ConnectSpec {
    pub pg: tokio_postgres::Config,
    pub sslmode: SslMode,
    pub sslrootcert: Option<String>,
    pub sslcert: Option<PathBuf>,
    pub sslkey: Option<PathBuf>,
    /// `user@host:port/db`, never with a password: for messages.
    pub target: String,
    /// `$HOME`, where libpq looks for `~/.postgresql/root.crt`.
    pub home: Option<PathBuf>,
    /// A URL or a `PG*` variable said where to connect; false when only
    /// libpq's defaults (local socket, OS user) were left to try.
    pub configured: bool,
}

/// The connection settings a service file may hold besides [`TLS_KEYS`].
const SERVICE_KEYS: [&str; 7] = [
    "host",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "connect_timeout",
];

/// Whether libpq's variables say where a database is (beyond its defaults).
pub fn names_a_database(env: &Env) -> bool {
    [
        "PGHOST",
        "PGHOSTADDR",
        "PGPORT",
        "PGDATABASE",
        "PGUSER",
        "PGSERVICE",
    ]
    .iter()
    .any(|k| env.get(k).is_some_and(|v| !v.is_empty()))
}

/// Settings squizzle handles itself rather than tokio-postgres: TLS, and
/// libpq's `service`.
const TLS_KEYS: [&str; 7] = [
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslpassword",
    "service",
    "channel_binding",
];

/// Splits the TLS parameters out of a URL or key=value string; returns the rest
/// (for tokio-postgres) and the TLS parameters.
fn take_tls_params(input: &str) -> (String, Vec<(String, String)>) {
    let mut tls = Vec::new();
    if input.starts_with("postgres://") || input.starts_with("postgresql://") {
        let Some((base, query)) = input.split_once('?') else {
            return (input.to_owned(), tls);
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if TLS_KEYS.contains(&k) {
                tls.push((
                    k.to_owned(),
                    crate::core::url::percent_decode(v).unwrap_or_else(|| v.to_owned()),
                ));
            } else {
                kept.push(pair);
            }
        }
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        (rest, tls)
    } else {
        // key=value form; values may be single-quoted with \' escapes.
        let mut kept = Vec::new();
        let mut chars = input.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            let key: String =
                std::iter::from_fn(|| chars.next_if(|c| *c != '=' && !c.is_whitespace())).collect();
            if key.is_empty() {
                break;
            }
            while chars.peek().is_some_and(|c| c.is_whitespace() || *c == '=') {
                chars.next();
            }
            let mut raw = String::new();
            let mut value = String::new();
            if chars.peek() == Some(&'\'') {
                raw.push('\'');
                chars.next();
                while let Some(c) = chars.next() {
                    raw.push(c);
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                raw.push(n);
                                value.push(n);
                            }
                        }
                        '\'' => break,
                        _ => value.push(c),
                    }
                }
            } else {
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    raw.push(c);
                    value.push(c);
                }
            }
            if TLS_KEYS.contains(&key.as_str()) {
                tls.push((key, value));
            } else {
                kept.push(format!("{key}={raw}"));
            }
        }
        (kept.join(" "), tls)
    }
}

impl ConnectSpec {
    /// Parses `url` (or, when `None`, only the `PG*` variables) the way libpq would.
    pub fn parse(url: Option<&str>, env: &Env) -> Result<Self, DbError> {
        if let Some(c) = url.and_then(unencoded_in_userinfo) {
            return Err(DbError::BadUrl(format!(
                "the user or password part of the URL holds an unencoded '{c}', which ends it early and garbles the host; percent-encode it ('@' as %40, '/' as %2F, '#' as %23, '?' as %3F, ':' in a user name as %3A)"
            )));
        }
        let (mut rest, mut tls) = take_tls_params(url.unwrap_or(""));
        let pgenv = |k: &str| env.get(k).filter(|v| !v.is_empty());
        let home = pgenv("HOME").map(PathBuf::from);
        // A named service's settings come after what was given directly and
        // before the PG* variables.
        let service_name = tls
            .iter()
            .rev()
            .find(|(k, _)| k == "service")
            .map(|(_, v)| v.clone())
            .or_else(|| pgenv("PGSERVICE"));
        let service = match &service_name {
            Some(name) => {
                let files = super::service::files(
                    pgenv("PGSERVICEFILE").as_deref(),
                    home.as_deref(),
                    pgenv("PGSYSCONFDIR").as_deref(),
                );
                super::service::lookup(name, &files)?
            }
            None => Default::default(),
        };
        // A setting squizzle would silently drop could send the connection
        // somewhere the service did not mean: refuse it instead.
        if let Some(unknown) = service
            .keys()
            .find(|k| !SERVICE_KEYS.contains(&k.as_str()) && !TLS_KEYS.contains(&k.as_str()))
        {
            return Err(DbError::BadUrl(format!(
                "connection service {:?} sets `{unknown}`, which squizzle does not read from a service file (it reads {}); move it into the database URL or remove it",
                service_name.as_deref().unwrap_or_default(),
                SERVICE_KEYS
                    .iter()
                    .chain(TLS_KEYS.iter().filter(|k| **k != "service"))
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        for key in TLS_KEYS {
            if let Some(v) = service.get(key) {
                tls.insert(0, (key.to_owned(), v.clone()));
            }
        }
        // tokio-postgres fills in 5432 for a host without a port, so libpq's
        // port fallbacks have to be applied to the text before parsing.
        if let Some(port) = service.get("port").cloned().or_else(|| pgenv("PGPORT")) {
            rest = with_default_port(&rest, &port);
        }
        let mut pg: tokio_postgres::Config = if rest.trim().is_empty() {
            tokio_postgres::Config::new()
        } else {
            rest.parse()
                .map_err(|e: tokio_postgres::Error| DbError::BadUrl(e.to_string()))?
        };
        let get = |k: &str| {
            tls.iter()
                .rev()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let configured = url.is_some_and(|u| !u.trim().is_empty())
            || service_name.is_some()
            || names_a_database(env);

        let from_service = |k: &str| service.get(k).filter(|v| !v.is_empty()).cloned();
        if pg.get_hosts().is_empty() {
            match from_service("host").or_else(|| pgenv("PGHOST")) {
                Some(h) => {
                    for host in h.split(',') {
                        pg.host(host);
                    }
                }
                None if Path::new("/var/run/postgresql").is_dir() => {
                    pg.host_path("/var/run/postgresql");
                }
                None => {
                    pg.host("localhost");
                }
            }
        }
        if pg.get_ports().is_empty()
            && let Some(p) = from_service("port").or_else(|| pgenv("PGPORT"))
        {
            pg.port(
                p.parse()
                    .map_err(|_| DbError::BadUrl(format!("PGPORT={p:?} is not a port number")))?,
            );
        }
        if pg.get_user().is_none() {
            // libpq's default is the operating-system user, whatever $USER says.
            let user = from_service("user")
                .or_else(|| pgenv("PGUSER"))
                .or_else(os_user_name)
                .or_else(|| pgenv("USER"))
                .unwrap_or_else(|| "postgres".into());
            pg.user(&user);
        }
        if pg.get_password().is_none()
            && let Some(pw) = from_service("password").or_else(|| pgenv("PGPASSWORD"))
        {
            crate::core::redact::register_secret(&pw);
            pg.password(pw);
        }
        if pg.get_dbname().is_none()
            && let Some(db) = from_service("dbname").or_else(|| pgenv("PGDATABASE"))
        {
            pg.dbname(&db);
        }
        if pg.get_password().is_none() {
            password_from_file(&mut pg, env, home.as_deref());
        }
        if let Some(pw) = pg.get_password() {
            crate::core::redact::register_secret(&String::from_utf8_lossy(pw));
        }
        // The URL's setting, else the service's, else libpq's variable.
        if let Some(cb) = get("channel_binding")
            .or_else(|| from_service("channel_binding"))
            .or_else(|| pgenv("PGCHANNELBINDING"))
        {
            pg.channel_binding(match cb.as_str() {
                "disable" => tokio_postgres::config::ChannelBinding::Disable,
                "prefer" => tokio_postgres::config::ChannelBinding::Prefer,
                "require" => tokio_postgres::config::ChannelBinding::Require,
                other => {
                    return Err(DbError::BadUrl(format!(
                        "channel_binding={other:?}: expected disable, prefer or require"
                    )));
                }
            });
        }
        if pg.get_application_name().is_none()
            && let Some(app) = from_service("application_name").or_else(|| pgenv("PGAPPNAME"))
        {
            pg.application_name(&app);
        }
        if pg.get_connect_timeout().is_none() {
            let secs = match from_service("connect_timeout").or_else(|| pgenv("PGCONNECT_TIMEOUT"))
            {
                Some(s) => s.parse().map_err(|_| {
                    DbError::BadUrl(format!(
                        "PGCONNECT_TIMEOUT={s:?} is not a number of seconds"
                    ))
                })?,
                None => 10,
            };
            pg.connect_timeout(Duration::from_secs(secs));
        }
        let sslmode = SslMode::parse(
            &get("sslmode")
                .or_else(|| pgenv("PGSSLMODE"))
                .unwrap_or_else(|| "prefer".into()),
        )?;
        pg.ssl_mode(match sslmode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Allow | SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        let sslrootcert = get("sslrootcert").or_else(|| pgenv("PGSSLROOTCERT"));
        let sslcert = get("sslcert")
            .or_else(|| pgenv("PGSSLCERT"))
            .map(PathBuf::from);
        let sslkey = get("sslkey")
            .or_else(|| pgenv("PGSSLKEY"))
            .map(PathBuf::from);
        let target = describe(&pg);
        Ok(Self {
            configured,
            home,
            pg,
            sslmode,
            sslrootcert,
            sslcert,
            sslkey,
            target,
        })
    }

    pub fn set_application_name_default(&mut self, name: &str) {
        if self.pg.get_application_name().is_none() {
            // PostgreSQL truncates to 63 bytes; cut on a char boundary ourselves.
            let mut end = name.len().min(63);
            while !name.is_char_boundary(end) {
                end -= 1;
            }
            self.pg.application_name(&name[..end]);
        }
    }

    fn verification(&self) -> Result<Verification, DbError> {
        let default_root = self.home.as_ref().map(|h| h.join(".postgresql/root.crt"));
        let root = match &self.sslrootcert {
            Some(r) => Some(r.clone()),
            None => default_root
                .filter(|p| p.is_file())
                .map(|p| p.display().to_string()),
        };
        let load = |r: &str| -> Result<Arc<RootCertStore>, DbError> {
            let mut store = RootCertStore::empty();
            if r == "system" {
                let found = rustls_native_certs::load_native_certs();
                for cert in found.certs {
                    let _ = store.add(cert);
                }
            } else {
                let certs = CertificateDer::pem_file_iter(r)
                    .map_err(|e| DbError::Tls(format!("cannot read sslrootcert {r}: {e}")))?;
                for cert in certs {
                    let cert = cert.map_err(|e| DbError::Tls(format!("sslrootcert {r}: {e}")))?;
                    store
                        .add(cert)
                        .map_err(|e| DbError::Tls(format!("sslrootcert {r}: {e}")))?;
                }
            }
            if store.is_empty() {
                return Err(DbError::Tls(format!(
                    "sslrootcert {r} holds no certificate"
                )));
            }
            Ok(Arc::new(store))
        };
        Ok(match (self.sslmode, root) {
            (SslMode::VerifyFull, Some(r)) => Verification::Full(load(&r)?),
            // As libpq: once a root certificate is given or present in
            // ~/.postgresql/root.crt, every TLS connection checks the chain,
            // `prefer` and `require` included.
            (SslMode::VerifyCa | SslMode::Require | SslMode::Prefer | SslMode::Allow, Some(r)) => {
                Verification::Chain(load(&r)?)
            }
            (SslMode::VerifyFull | SslMode::VerifyCa, None) => {
                return Err(DbError::Tls(format!(
                    "sslmode={} needs a root certificate: add sslrootcert=/path/to/ca.pem (or sslrootcert=system) to the URL",
                    if self.sslmode == SslMode::VerifyFull {
                        "verify-full"
                    } else {
                        "verify-ca"
                    }
                )));
            }
            _ => Verification::None,
        })
    }

    fn client_auth(
        &self,
    ) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, DbError> {
        match (&self.sslcert, &self.sslkey) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| {
                        DbError::Tls(format!("cannot read sslcert {}: {e}", cert.display()))
                    })?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    DbError::Tls(format!("cannot read sslkey {}: {e}", key.display()))
                })?;
                Ok(Some((chain, key)))
            }
            _ => Err(DbError::Tls(
                "sslcert and sslkey must be given together".into(),
            )),
        }
    }

    /// Opens the connection and spawns its driver task on the current runtime.
    pub async fn connect(&self) -> Result<Client, DbError> {
        let tls = if self.sslmode == SslMode::Disable {
            None
        } else {
            let config = client_config(self.verification()?, self.client_auth()?)
                .map_err(|e| DbError::Tls(e.to_string()))?;
            Some(MakeRustlsConnect::new(config))
        };
        let result = match tls {
            Some(tls) => self.pg.connect(tls).await.map(|(c, conn)| {
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                c
            }),
            None => self
                .pg
                .connect(tokio_postgres::NoTls)
                .await
                .map(|(c, conn)| {
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                    c
                }),
        };
        result.map_err(|e| match DbError::from_connect(&self.target, e) {
            DbError::Connect { target, message } if !self.configured => {
                DbError::NotConfigured { target, message }
            }
            other => other,
        })
    }
}

/// A character that must be percent-encoded in a URL's userinfo but is not:
/// `@`, `/`, `#` or `?` inside the part before the host. Judged from where
/// the last `@` before the path is; the offending text is never returned.
fn unencoded_in_userinfo(url: &str) -> Option<char> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))?;
    // The authority ends at the first '/', '?' or '#'; an '@' after that
    // point but before the query means the userinfo held one of them.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.matches('@').count() > 1 {
        return Some('@');
    }
    if !authority.contains('@') {
        // What follows the cut, up to the next '/' (or '?' after a '/'): an
        // '@' there, before any '=' of a query parameter, closed a userinfo.
        let cut = rest[end..].chars().next()?;
        let after = &rest[end + 1..];
        let stop = match cut {
            '/' => after.find(['/', '?']),
            _ => after.find('/'),
        }
        .unwrap_or(after.len());
        let segment = &after[..stop];
        if let Some(at) = segment.find('@')
            && !segment[..at].contains('=')
        {
            return Some(cut);
        }
    }
    None
}

/// Takes the password from the password file (`PGPASSFILE`, else
/// `~/.pgpass`) for the first host, as libpq does: a socket connection
/// matches the host `localhost`, the database defaults to the user's name.
fn password_from_file(pg: &mut tokio_postgres::Config, env: &Env, home: Option<&Path>) {
    let Some(path) = super::pgpass::location(env.get("PGPASSFILE").as_deref(), home) else {
        return;
    };
    let host = match pg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "localhost".to_owned(),
    };
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    let user = pg.get_user().unwrap_or_default().to_owned();
    let database = pg.get_dbname().unwrap_or(&user).to_owned();
    match super::pgpass::lookup(&path, &host, port, &database, &user) {
        Ok(Some(password)) => {
            pg.password(password);
        }
        Ok(None) => {}
        Err(skipped) => tracing::warn!("{skipped}"),
    }
}

/// The name of the user this process runs as (`/proc/self/status` and
/// `/etc/passwd`), as libpq takes it for the default role.
fn os_user_name() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .to_owned();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)? == uid).then(|| name.to_owned())
    })
}

/// Adds `port` to a URL whose (single) host has none, or to a key=value string
/// without `port=`. Multi-host URLs are left as they are.
fn with_default_port(input: &str, port: &str) -> String {
    if input.trim().is_empty() {
        return input.to_owned();
    }
    let Some(scheme_end) = input.find("://") else {
        let has_port = input
            .split_whitespace()
            .any(|t| t.trim_start().starts_with("port"));
        return if has_port {
            input.to_owned()
        } else {
            format!("{input} port={port}")
        };
    };
    let start = scheme_end + 3;
    let rest = &input[start..];
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let host_start = rest[..auth_end].rfind('@').map_or(0, |i| i + 1);
    let host = &rest[host_start..auth_end];
    let has_port = host
        .rsplit_once(']')
        .map_or(host, |(_, after)| after)
        .contains(':');
    if host.is_empty() || host.contains(',') || has_port {
        return input.to_owned();
    }
    format!(
        "{}{host}:{port}{}",
        &input[..start + host_start],
        &rest[auth_end..]
    )
}

fn describe(pg: &tokio_postgres::Config) -> String {
    let host = match pg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "?".into(),
    };
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        pg.get_user().unwrap_or("?"),
        pg.get_dbname().or(pg.get_user()).unwrap_or("?")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_fills_what_was_not_given_and_beats_the_pg_variables() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("services.conf");
        std::fs::write(
            &file,
            "[prod]\nhost=db.internal\nport=6432\ndbname=app\nuser=deploy\nsslmode=verify-full\napplication_name=from-service\n",
        )
        .unwrap();
        let env = Env::from_pairs([
            ("PGSERVICE", "prod"),
            ("PGSERVICEFILE", file.to_str().unwrap()),
            ("PGHOST", "ignored-host"),
            ("PGUSER", "ignored-user"),
        ]);
        let spec = ConnectSpec::parse(None, &env).unwrap();
        assert!(spec.configured);
        assert_eq!(spec.target, "deploy@db.internal:6432/app");
        assert_eq!(spec.sslmode, SslMode::VerifyFull);
        assert_eq!(spec.pg.get_application_name(), Some("from-service"));
        // What the URL says wins over the service.
        let spec = ConnectSpec::parse(
            Some("postgres://other@h2:7000/db2?sslmode=disable&service=prod"),
            &Env::from_pairs([("PGSERVICEFILE", file.to_str().unwrap())]),
        )
        .unwrap();
        assert_eq!(spec.target, "other@h2:7000/db2");
        assert_eq!(spec.sslmode, SslMode::Disable);
        // A service nobody defined is an error, not a silent default.
        let e = ConnectSpec::parse(
            None,
            &Env::from_pairs([
                ("PGSERVICE", "nope"),
                ("PGSERVICEFILE", file.to_str().unwrap()),
                ("PGSYSCONFDIR", dir.path().to_str().unwrap()),
            ]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("\"nope\" is not defined"), "{e}");
        // A setting squizzle would not apply is refused, not dropped.
        std::fs::write(&file, "[odd]\nhost=h\nhostaddr=10.0.0.9\n").unwrap();
        let e = ConnectSpec::parse(
            None,
            &Env::from_pairs([
                ("PGSERVICE", "odd"),
                ("PGSERVICEFILE", file.to_str().unwrap()),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("sets `hostaddr`") && e.contains("move it into the database URL"),
            "{e}"
        );
        // channel_binding from the service; the URL's own setting wins.
        std::fs::write(&file, "[cb]\nhost=h\nchannel_binding=require\n").unwrap();
        let env = Env::from_pairs([
            ("PGSERVICE", "cb"),
            ("PGSERVICEFILE", file.to_str().unwrap()),
        ]);
        let spec = ConnectSpec::parse(None, &env).unwrap();
        assert_eq!(
            spec.pg.get_channel_binding(),
            tokio_postgres::config::ChannelBinding::Require
        );
        let spec =
            ConnectSpec::parse(Some("postgres://u@h/db?channel_binding=disable"), &env).unwrap();
        assert_eq!(
            spec.pg.get_channel_binding(),
            tokio_postgres::config::ChannelBinding::Disable
        );
        assert!(ConnectSpec::parse(Some("postgres://u@h/db?channel_binding=maybe"), &env).is_err());
    }

    #[test]
    fn unencoded_characters_in_the_password_are_named_never_shown() {
        assert_eq!(unencoded_in_userinfo("postgres://u:p@ss@h/db"), Some('@'));
        assert_eq!(
            unencoded_in_userinfo("postgres://u:pa/ss@h:5432/db"),
            Some('/')
        );
        assert_eq!(
            unencoded_in_userinfo("postgresql://u:pa#ss@h/db"),
            Some('#')
        );
        assert_eq!(unencoded_in_userinfo("postgres://u:pa?ss@h/db"), Some('?'));
        assert_eq!(unencoded_in_userinfo("postgres://u:p%40ss@h/db"), None);
        assert_eq!(unencoded_in_userinfo("postgres://h/db?options=a@b"), None);
        assert_eq!(unencoded_in_userinfo("postgres://u@h"), None);
        assert_eq!(unencoded_in_userinfo("host=h password=p@ss"), None);
        let e = ConnectSpec::parse(Some("postgres://u:s3cr@t@h/db"), &Env::default()).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("unencoded '@'") && text.contains("%40"),
            "{text}"
        );
        assert!(!text.contains("s3cr"), "{text}");
    }

    #[test]
    fn only_libpq_defaults_is_not_a_configured_database() {
        let none = Env::from_pairs([("USER", "someone")]);
        let spec = ConnectSpec::parse(None, &none).unwrap();
        assert!(!spec.configured);
        // The role is the process's own user, as libpq takes it, not $USER.
        let me = os_user_name().expect("this process has a passwd entry");
        assert_eq!(spec.pg.get_user(), Some(me.as_str()));
        assert!(
            ConnectSpec::parse(Some("postgres://a@h/db"), &none)
                .unwrap()
                .configured
        );
        for var in ["PGHOST", "PGPORT", "PGDATABASE", "PGUSER"] {
            let env = Env::from_pairs([(var, "5433")]);
            assert!(ConnectSpec::parse(None, &env).unwrap().configured, "{var}");
        }
    }

    #[test]
    fn a_default_that_does_not_answer_says_that_no_database_was_configured() {
        // A port nothing listens on stands in for the default socket.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let env = Env::default();
        let url = format!("postgres://u@127.0.0.1:{port}/db?sslmode=disable");
        let mut spec = ConnectSpec::parse(Some(&url), &env).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let configured = rt.block_on(spec.connect()).unwrap_err();
        assert!(
            matches!(configured, DbError::Connect { .. }),
            "{configured}"
        );
        spec.configured = false;
        let e = rt.block_on(spec.connect()).unwrap_err();
        assert!(matches!(e, DbError::NotConfigured { .. }), "{e}");
        let text = e.to_string();
        assert!(text.starts_with("no database was configured"), "{text}");
        assert!(text.contains("set DATABASE_URL"), "{text}");
    }

    #[test]
    fn tls_parameters_are_taken_out_of_urls() {
        let (rest, tls) = take_tls_params(
            "postgres://u:p@h:5/db?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Fca.pem",
        );
        assert_eq!(rest, "postgres://u:p@h:5/db?application_name=x");
        assert_eq!(
            tls,
            [
                ("sslmode".into(), "verify-full".into()),
                ("sslrootcert".into(), "/tmp/ca.pem".into())
            ]
        );
    }

    #[test]
    fn tls_parameters_are_taken_out_of_key_value_strings() {
        let (rest, tls) =
            take_tls_params("host=h sslmode = verify-ca sslrootcert='/a b/ca.pem' dbname=x");
        assert_eq!(rest, "host=h dbname=x");
        assert_eq!(
            tls,
            [
                ("sslmode".into(), "verify-ca".into()),
                ("sslrootcert".into(), "/a b/ca.pem".into())
            ]
        );
    }

    #[test]
    fn env_fallbacks_fill_what_the_url_lacks() {
        let env = Env::from_pairs([
            ("PGPORT", "6543"),
            ("PGUSER", "app"),
            ("PGDATABASE", "prod"),
            ("PGSSLMODE", "disable"),
            ("PGHOST", "db1"),
        ]);
        let spec = ConnectSpec::parse(None, &env).unwrap();
        assert_eq!(spec.target, "app@db1:6543/prod");
        assert_eq!(spec.sslmode, SslMode::Disable);
        let spec = ConnectSpec::parse(Some("postgres://x@h/d?sslmode=require"), &env).unwrap();
        assert_eq!(spec.target, "x@h:6543/d");
        assert_eq!(spec.sslmode, SslMode::Require);
    }

    #[test]
    fn pgport_fills_only_a_missing_port() {
        assert_eq!(
            with_default_port("postgres://u:p@h/d?x=1", "6"),
            "postgres://u:p@h:6/d?x=1"
        );
        assert_eq!(
            with_default_port("postgres://h:7/d", "6"),
            "postgres://h:7/d"
        );
        assert_eq!(
            with_default_port("postgres://[::1]/d", "6"),
            "postgres://[::1]:6/d"
        );
        assert_eq!(
            with_default_port("postgres://[::1]:7/d", "6"),
            "postgres://[::1]:7/d"
        );
        assert_eq!(
            with_default_port("host=h dbname=d", "6"),
            "host=h dbname=d port=6"
        );
        assert_eq!(with_default_port("host=h port=7", "6"), "host=h port=7");
    }

    #[test]
    fn bad_settings_are_refused_with_the_allowed_values() {
        let e =
            ConnectSpec::parse(Some("postgres://h/d?sslmode=strict"), &Env::default()).unwrap_err();
        assert!(e.to_string().contains("verify-full"), "{e}");
        let spec = ConnectSpec::parse(Some("postgres://h/d?sslmode=verify-full"), &Env::default())
            .unwrap();
        let e = spec.verification().unwrap_err();
        assert!(e.to_string().contains("sslrootcert"), "{e}");
    }

    #[test]
    fn application_name_is_cut_to_postgres_limit_on_a_char_boundary() {
        let mut spec = ConnectSpec::parse(Some("postgres://h/d"), &Env::default()).unwrap();
        spec.set_application_name_default(&"é".repeat(40));
        assert!(spec.pg.get_application_name().unwrap().len() <= 63);
    }
}
