//! Operations: one module per command, each orchestrating the capabilities
//! (artifact, store, config, db, signing) to do one job and returning a report
//! value.
//!
//! Commands never import each other. What several of them share lives in
//! rooms below them: `analysis` (findings about what the SQL does), `host`
//! (machine and CI facts), `lineage` (what a new
//! release must agree with: the previous release, the history rule, SQL a
//! transaction cannot run), `registry` (the configured registry, wired once), `release` (resolve, evidence, verify, fetch: a
//! `VerifiedRelease`) and `run` (session, runner, planner for the commands
//! that run SQL). Operations never parse arguments and never print; the CLI
//! turns their reports into text or JSON and their errors into exit codes.

// Shared rooms.
pub mod analysis;
pub mod fleet;
pub mod host;
pub mod lineage;
pub mod registry;
pub mod release;
pub mod run;

// Commands.
pub mod apply;
pub mod audit;
pub mod baseline;
pub mod build;
pub mod check;
pub mod drift;
pub mod init;
pub mod keygen;
pub mod lint;
pub mod list;
pub mod revoke;
pub mod rollback;
pub mod sign;
pub mod status;
pub mod transfer;
pub mod verify;

use std::path::PathBuf;

use crate::artifact::collect::CollectError;
use crate::artifact::pack::PackError;
use crate::artifact::unpack::UnpackError;
use crate::config::ConfigError;
use crate::core::digest::Digest;
use crate::core::version::{Version, VersionError};
use crate::db::DbError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Version(#[from] VersionError),
    #[error(transparent)]
    Collect(#[from] CollectError),
    #[error(transparent)]
    Pack(#[from] PackError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error("{0}")]
    Usage(String),
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("version {version} is not in the store at {store}; {hint}")]
    NotFound {
        version: String,
        store: PathBuf,
        hint: String,
    },
    #[error(
        "version {version} already exists with different content (stored tarball {existing}, new build {new}); versions are immutable: build the change as a new version"
    )]
    VersionExists {
        version: Version,
        existing: Digest,
        new: Digest,
    },
    #[error(
        "the artifact tagged {tag} declares version {declared}; the tag was moved or replayed, do not use it"
    )]
    VersionMismatch { tag: String, declared: String },
    #[error(
        "version {version} already exists in {place} with different content (digest {existing}; this release is {incoming}); versions are immutable: release the change as a new version"
    )]
    TagConflict {
        version: String,
        place: String,
        existing: Digest,
        incoming: Digest,
    },
    #[error("{0}")]
    Integrity(String),
    #[error("{0}")]
    Signature(String),
    /// A deny policy names findings the release does not allow (exit 9).
    #[error("{0}")]
    Denied(String),
    #[error(transparent)]
    Signing(#[from] crate::signing::SigningError),
    #[error("{0}")]
    Revoked(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Plan(#[from] crate::ops::run::plan::PlanError),
    #[error("{0}")]
    MigrationFailed(Box<crate::ops::run::MigrationFailure>),
    #[error(
        "{path} line {line}: {keyword} — squizzle runs each migration in a transaction itself; remove the transaction control, or mark the file `-- squizzle:no-transaction` if it must manage its own"
    )]
    TransactionControl {
        path: String,
        line: usize,
        keyword: String,
    },
    #[error("{0}")]
    HistoryNotEmpty(String),
    /// Released migrations changed without an allowance (exit 5).
    #[error("{0}")]
    HistoryRewrite(Box<crate::ops::lineage::Refusal>),
    #[error(transparent)]
    Rollback(Box<crate::ops::rollback::RollbackError>),
}

impl From<crate::ops::rollback::RollbackError> for Error {
    fn from(e: crate::ops::rollback::RollbackError) -> Self {
        Error::Rollback(Box::new(e))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
