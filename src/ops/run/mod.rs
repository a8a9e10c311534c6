//! Running a release's SQL against a database: what apply, rollback,
//! baseline, status and audit share. Options and progress events live here;
//! `session` connects and locks, `texts` reads the files a run executes from
//! the verified layer as it goes, `runner` runs files in transaction segments
//! and records them, `plan` decides what runs, `fingerprint` records the
//! schema a run leaves and compares the live catalog with it (drift).

pub mod fingerprint;
pub mod plan;
pub mod runner;
pub mod session;
pub mod texts;
pub mod warning;

pub use warning::{Warning, WarningKind};

use std::time::Duration;

use serde::Serialize;

use crate::config::{Config, TxMode};
use crate::core::manifest::FileEntry;
use crate::db::lock::LockHolder;
use crate::ops::release::fetch::TransferReport;
use crate::ops::release::verify::{VerifyOptions, VerifyReport};
use crate::ops::run::plan::Plan;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DryRun {
    Off,
    /// Verify, plan and print the SQL; write nothing, take no lock.
    Plan,
    /// Run everything inside one transaction and roll it back.
    Execute,
}

/// What the commands that run a release's SQL (apply, rollback) share.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// None: the environment's `tx_mode`, else release.
    pub tx_mode: Option<TxMode>,
    pub timeouts: Timeouts,
    /// Signature policy additions and the bundle to consider.
    pub verify: VerifyOptions,
    /// Do not contact the registry (no pull, no referrer refresh).
    pub offline: bool,
}

impl RunOptions {
    pub fn tx_mode(&self, config: &Config) -> TxMode {
        self.tx_mode
            .or(config.active_environment().tx_mode)
            .unwrap_or_default()
    }
}

/// Progress, for the CLI to show as it happens.
pub enum ApplyEvent<'a> {
    /// The release was not in the local store and was pulled from the registry.
    Pulled(&'a TransferReport),
    /// The registry could not be asked for new referrers; local evidence is used.
    RefreshFailed(String),
    Verified(&'a VerifyReport),
    Connected {
        target: &'a str,
    },
    LockWait(Option<&'a LockHolder>),
    Locked,
    Planned(&'a Plan),
    Warning(&'a str),
    FileStarted {
        file: &'a FileEntry,
        statements: usize,
        resume_from: usize,
    },
    FileDone {
        file: &'a FileEntry,
        statements: usize,
        ms: u64,
    },
    DryRunFile {
        file: &'a FileEntry,
        sql: &'a str,
        /// The transaction segment it would run in, from 1.
        segment: usize,
    },
}

/// Details of a migration that failed (and was rolled back where it could be).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationFailure {
    pub version: String,
    pub migration: String,
    pub path: String,
    /// 1-based statement number within the file.
    pub statement: usize,
    /// 1-based line in the file where the error points.
    pub line: usize,
    pub sqlstate: Option<String>,
    pub message: String,
    pub rolled_back: bool,
    pub recorded: bool,
    pub migrations_committed: usize,
}

impl std::fmt::Display for MigrationFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "migration {} failed at statement {} (line {} of {}): {}",
            self.migration, self.statement, self.line, self.path, self.message
        )?;
        if self.rolled_back {
            write!(f, "; its transaction was rolled back")?;
        }
        if self.migrations_committed > 0 {
            write!(
                f,
                "; {} earlier migration(s) of this run stay committed",
                self.migrations_committed
            )?;
        }
        if self.recorded {
            write!(f, "; the failure is recorded in the history")?;
        } else {
            write!(f, "; the failure could not be recorded")?;
        }
        write!(f, ". Fix it in a new release and apply that")
    }
}

/// Timeouts from the command line, else from the selected environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timeouts {
    pub lock: Option<Duration>,
    pub statement: Option<Duration>,
    pub statement_lock: Option<Duration>,
}

impl Timeouts {
    /// The lock timeout (default 5m) and the session settings to apply.
    pub fn resolve(self, config: &Config) -> (Duration, Settings) {
        let envcfg = config.active_environment();
        let parse = |v: &Option<String>| {
            v.as_deref()
                .and_then(|s| crate::core::duration::parse(s).ok())
        };
        let lock = self
            .lock
            .or_else(|| parse(&envcfg.lock_timeout))
            .unwrap_or(Duration::from_secs(300));
        let settings = Settings {
            statement_timeout: self.statement.or_else(|| parse(&envcfg.statement_timeout)),
            statement_lock_timeout: self
                .statement_lock
                .or_else(|| parse(&envcfg.statement_lock_timeout)),
            // Validated when the configuration was loaded.
            search_path: envcfg
                .search_path
                .as_deref()
                .and_then(|s| crate::core::ident::Ident::new(s).ok()),
        };
        (lock, settings)
    }
}

/// `statement_timeout` and `lock_timeout` for the migrating statements.
///
/// Set per transaction (`SET LOCAL`) where there is one: a session setting
/// would outlive the run on a server connection that a transaction pooler
/// hands to other clients. A file run outside a transaction has only the
/// session to carry them: they are set before it and reset after it.
///
/// `search_path` (one schema, for a tenant schema target) travels the same
/// way, so the migration's unqualified names land in the tenant's schema.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    statement_timeout: Option<Duration>,
    statement_lock_timeout: Option<Duration>,
    search_path: Option<crate::core::ident::Ident>,
}

impl Settings {
    fn assignments(&self) -> impl Iterator<Item = (&'static str, String)> {
        [
            ("statement_timeout", self.statement_timeout),
            ("lock_timeout", self.statement_lock_timeout),
        ]
        .into_iter()
        .filter_map(|(name, d)| d.map(|d| (name, d.as_millis().to_string())))
        .chain(
            self.search_path
                .as_ref()
                .map(|s| ("search_path", s.to_string())),
        )
    }

    /// `begin` (`BEGIN`, or the run's lock-aware form), with the settings
    /// for that transaction only.
    pub fn begin_sql(&self, begin: &str) -> String {
        let mut sql = String::from(begin);
        for (name, ms) in self.assignments() {
            sql.push_str(&format!("; SET LOCAL {name} = {ms}"));
        }
        sql
    }

    /// Session settings for a file run outside a transaction, or `None`.
    pub fn session_sql(&self) -> Option<String> {
        let sets: Vec<String> = self
            .assignments()
            .map(|(name, ms)| format!("SET {name} = {ms}"))
            .collect();
        (!sets.is_empty()).then(|| sets.join("; "))
    }

    /// Undoes [`Self::session_sql`].
    pub fn reset_sql(&self) -> Option<String> {
        let resets: Vec<String> = self
            .assignments()
            .map(|(name, _)| format!("RESET {name}"))
            .collect();
        (!resets.is_empty()).then(|| resets.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_scoped_to_the_transaction_or_reset_after_the_file() {
        let none = Settings::default();
        assert_eq!(none.begin_sql("BEGIN"), "BEGIN");
        assert_eq!(none.session_sql(), None);
        assert_eq!(none.reset_sql(), None);
        let both = Settings {
            statement_timeout: Some(Duration::from_secs(2)),
            statement_lock_timeout: Some(Duration::from_millis(250)),
            search_path: None,
        };
        assert_eq!(
            both.begin_sql("BEGIN"),
            "BEGIN; SET LOCAL statement_timeout = 2000; SET LOCAL lock_timeout = 250"
        );
        assert_eq!(
            both.session_sql().as_deref(),
            Some("SET statement_timeout = 2000; SET lock_timeout = 250")
        );
        assert_eq!(
            both.reset_sql().as_deref(),
            Some("RESET statement_timeout; RESET lock_timeout")
        );
        let tenant = Settings {
            search_path: Some(crate::core::ident::Ident::new("tenant_a").unwrap()),
            ..Settings::default()
        };
        assert_eq!(
            tenant.begin_sql("BEGIN"),
            "BEGIN; SET LOCAL search_path = \"tenant_a\""
        );
        assert_eq!(tenant.reset_sql().as_deref(), Some("RESET search_path"));
    }
}
