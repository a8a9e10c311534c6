//! Warnings of a run: what it allowed or could not do, typed so that code
//! can pick some out without matching on text.

use serde::Serialize;

/// Something a run allowed or could not do, that the operator should know.
/// Serialized as its message (the JSON reports hold plain strings); the kind
/// is for code that must pick some out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub kind: WarningKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningKind {
    /// `--allow-out-of-order`: an older release over a newer one.
    OlderThanApplied,
    /// `--allow-out-of-order`: a pending migration before an applied one.
    OutOfOrder,
    /// `--allow-out-of-order`: the history has migrations the release lacks.
    UnknownApplied,
    /// `--dry-run=execute` skipped a no-transaction file.
    NotExecutedByDryRun,
    /// A rollback script runs in full over a migration that stopped midway.
    PartlyApplied,
    /// Rollback keeps a migration an older release applied.
    KeptForOlderRelease,
    /// A partly-run no-transaction file has new content: it runs from the start.
    PartlyRunReplaced,
    /// The database holds an index whose concurrent build never finished.
    InvalidIndex,
    /// The run committed, but its schema fingerprint could not be recorded.
    FingerprintNotRecorded,
}

impl Warning {
    pub fn new(kind: WarningKind, message: String) -> Self {
        Warning { kind, message }
    }
}

impl Serialize for Warning {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.message)
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
