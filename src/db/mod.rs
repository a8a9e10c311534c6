//! PostgreSQL capability: connecting with libpq semantics over rustls
//! ([`connect`], [`tls`]), squizzle's own history tables ([`history`]), the
//! migration advisory lock ([`lock`]), splitting SQL into statements ([`split`])
//! the read-only history queries of `audit` ([`audit`]), and the schema
//! objects the catalog describes ([`catalog`], [`fingerprint`]).
//!
//! Only parameterized queries for squizzle's own SQL; every identifier that is
//! spliced into SQL (the history schema) is validated and quoted by [`Ident`].
//! This layer knows nothing of OCI stores, registries or signatures, and never prints.

pub mod audit;
pub mod catalog;
pub mod connect;
pub mod fingerprint;
pub mod history;
pub mod lock;
pub mod pgpass;
pub mod service;
pub mod split;
pub mod tls;

use std::error::Error as _;

pub use crate::core::ident::Ident;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("invalid database connection settings: {0}")]
    BadUrl(String),
    #[error(
        "cannot connect to {target}: {message}; check the host, port and that the server is running"
    )]
    Connect { target: String, message: String },
    #[error(
        "no database was configured, and PostgreSQL's default ({target}) did not answer: {message}. Say which database to migrate: set DATABASE_URL (postgres://user@host:5432/db), `database_url` for the environment in squizzle.toml (with --env NAME), or the PGHOST/PGPORT/PGDATABASE/PGUSER variables"
    )]
    NotConfigured { target: String, message: String },
    #[error("the database refused the credentials for {target}: {message}; {hint}")]
    Auth {
        target: String,
        message: String,
        hint: &'static str,
    },
    #[error("TLS: {0}")]
    Tls(String),
    #[error(
        "lost the connection to the database while {during}: {message}. What had committed stays committed and an open transaction was rolled back: run the command again once the database is reachable, and it continues from there"
    )]
    ConnectionLost { during: String, message: String },
    #[error("{during}: {message}")]
    Query {
        during: String,
        message: String,
        sqlstate: Option<String>,
    },
    #[error(
        "{during}: {message}. The migrating role must own squizzle's history schema (the role that created it does), or have CREATE on the database so squizzle creates the schema itself: as an administrator run `ALTER SCHEMA {schema} OWNER TO <the migrating role>`, or `GRANT CREATE ON DATABASE <its database> TO <the migrating role>` before the first apply (see \"Least privilege\" in docs/apply.md)"
    )]
    Privilege {
        during: String,
        message: String,
        schema: String,
    },
    #[error(transparent)]
    BadIdentifier(#[from] crate::core::ident::IdentError),
    #[error(
        "squizzle's history in schema {schema} has layout version {found}, newer than the {supported} this squizzle knows; upgrade squizzle"
    )]
    LayoutTooNew {
        schema: String,
        found: i32,
        supported: i32,
    },
    #[error(
        "timed out after {waited_s:.1}s waiting for the migration lock; it is held by {holder}"
    )]
    LockTimeout { waited_s: f64, holder: String },
    #[error(
        "lost the migration lock while {during}: its connection ended ({message}). The open transaction was rolled back and nothing more was run; run the command again, and it continues from what the history records"
    )]
    LockLost { during: String, message: String },
    #[error(
        "migration {migration} was recorded by another apply while this one ran it, so two appliers ran at once (behind a pooler that does not keep the lock's transaction on one server connection?). This run's transaction was rolled back; run apply again, and check the pooler settings in docs/apply.md"
    )]
    AppliedConcurrently { migration: String },
    #[error(
        "{during}: {message}. Do not trust this history row; the next apply, baseline or rollback records a new fingerprint"
    )]
    RecordEdited { during: String, message: String },
}

/// Full text of a tokio-postgres error: its message, the server's detail and
/// hint when there are any, and the cause chain.
pub fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        if let Some(d) = db.detail() {
            s.push_str(&format!("; detail: {d}"));
        }
        if let Some(h) = db.hint() {
            s.push_str(&format!("; hint: {h}"));
        }
        return s;
    }
    crate::core::errors::error_chain(e)
}

/// Whether `e` means the session is gone rather than that a statement
/// failed: the connection closed or broke, or the server ended the session
/// (SQLSTATE class 08, or 57P01-57P03: terminated by an administrator or
/// `pg_terminate_backend`, a crash or shutdown, a server not accepting
/// connections). Such an error is never the migration's fault, and a re-run
/// continues where the history says.
pub fn is_connection_loss(e: &tokio_postgres::Error) -> bool {
    match e.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
        }
        None => e.is_closed() || e.source().is_some_and(|s| s.is::<std::io::Error>()),
    }
}

/// Whether a connection error came from the TLS layer (certificate checks,
/// handshake), judged from the error chain.
fn is_tls_failure(e: &tokio_postgres::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(c) = cur {
        if c.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return true;
        }
        cur = c.source();
    }
    false
}

impl DbError {
    pub(crate) fn from_connect(target: &str, e: tokio_postgres::Error) -> Self {
        let message = describe(&e);
        match e.code().map(|c| c.code()) {
            Some("28P01") => DbError::Auth {
                target: target.to_owned(),
                message,
                hint: "check the password (the variable the URL's ${...} names, or PGPASSWORD)",
            },
            Some("28000") => DbError::Auth {
                target: target.to_owned(),
                message,
                hint: "the server's pg_hba.conf does not admit this role, database, address or TLS setting (it may require sslmode=require, or a client certificate via sslcert/sslkey)",
            },
            // The server asked for a password and none was given (libpq:
            // "fe_sendauth: no password supplied"). tokio-postgres reports it
            // as a configuration error, with no kind to match on.
            _ if e.code().is_none() && message.contains("password missing") => DbError::Auth {
                target: target.to_owned(),
                message: "the server requires a password and none was given".into(),
                hint: "put it in the URL (percent-encoded), PGPASSWORD, or a password file (PGPASSFILE or ~/.pgpass, mode 0600)",
            },
            _ if is_tls_failure(&e) => DbError::Tls(format!(
                "{target}: {message}; check sslmode, sslrootcert (the CA that signed the server certificate) and that the host name matches the certificate"
            )),
            _ => DbError::Connect {
                target: target.to_owned(),
                message,
            },
        }
    }

    /// Wraps a query error, telling a dropped connection from a failed statement.
    pub fn query(during: impl Into<String>, e: tokio_postgres::Error) -> Self {
        let during = during.into();
        if is_connection_loss(&e) {
            return DbError::ConnectionLost {
                during,
                message: describe(&e),
            };
        }
        DbError::Query {
            during,
            sqlstate: e.code().map(|c| c.code().to_owned()),
            message: describe(&e),
        }
    }
}
