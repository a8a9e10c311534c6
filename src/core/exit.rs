//! Exit codes: frozen, public, documented in `docs/exit-codes.md`.
//!
//! Deploy pipelines branch on these numbers. A code never changes meaning; new
//! situations get new numbers. The CLI maps every error to one of these in a
//! single place (`cli::exit_code_for`).

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ExitCode {
    Ok = 0,
    General = 1,
    Usage = 2,
    Connection = 3,
    Authentication = 4,
    VersionConflict = 5,
    Integrity = 6,
    RollbackFailed = 7,
    LockTimeout = 8,
    Signature = 9,
    Revoked = 10,
    MigrationFailed = 11,
    NotFound = 12,
    SchemaDrift = 13,
    FleetPartial = 14,
    FleetFailed = 15,
}

impl ExitCode {
    pub const ALL: [ExitCode; 16] = [
        ExitCode::Ok,
        ExitCode::General,
        ExitCode::Usage,
        ExitCode::Connection,
        ExitCode::Authentication,
        ExitCode::VersionConflict,
        ExitCode::Integrity,
        ExitCode::RollbackFailed,
        ExitCode::LockTimeout,
        ExitCode::Signature,
        ExitCode::Revoked,
        ExitCode::MigrationFailed,
        ExitCode::NotFound,
        ExitCode::SchemaDrift,
        ExitCode::FleetPartial,
        ExitCode::FleetFailed,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    /// Stable machine name, used in JSON output (`"error": {"kind": ...}`).
    pub fn name(self) -> &'static str {
        match self {
            ExitCode::Ok => "ok",
            ExitCode::General => "general",
            ExitCode::Usage => "usage",
            ExitCode::Connection => "connection",
            ExitCode::Authentication => "authentication",
            ExitCode::VersionConflict => "version_conflict",
            ExitCode::Integrity => "integrity",
            ExitCode::RollbackFailed => "rollback_failed",
            ExitCode::LockTimeout => "lock_timeout",
            ExitCode::Signature => "signature",
            ExitCode::Revoked => "revoked",
            ExitCode::MigrationFailed => "migration_failed",
            ExitCode::NotFound => "not_found",
            ExitCode::SchemaDrift => "schema_drift",
            ExitCode::FleetPartial => "fleet_partial",
            ExitCode::FleetFailed => "fleet_failed",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            ExitCode::Ok => "success (including: nothing to do)",
            ExitCode::General => {
                "unexpected failure (I/O error, bug); the message says what failed"
            }
            ExitCode::Usage => "invalid command line or configuration",
            ExitCode::Connection => "cannot reach the database or registry",
            ExitCode::Authentication => "credentials were refused",
            ExitCode::VersionConflict => {
                "the version exists with other content, is older than what is applied, or applied files drifted"
            }
            ExitCode::Integrity => {
                "a digest, checksum or size does not match, or the artifact is malformed or unsafe"
            }
            ExitCode::RollbackFailed => {
                "a rollback script failed, or one is missing; the rollback did not complete"
            }
            ExitCode::LockTimeout => "another squizzle held the advisory lock past --lock-timeout",
            ExitCode::Signature => {
                "signature, signer identity or provenance does not satisfy the policy"
            }
            ExitCode::Revoked => "the version has been revoked",
            ExitCode::MigrationFailed => "a migration failed; its transaction was rolled back",
            ExitCode::NotFound => "the requested version or artifact does not exist",
            ExitCode::SchemaDrift => {
                "the live schema differs from the fingerprint the last apply recorded"
            }
            ExitCode::FleetPartial => {
                "a fleet run: some targets succeeded, others failed or were not started"
            }
            ExitCode::FleetFailed => {
                "a fleet run: no target succeeded (each failed or was not started)"
            }
        }
    }
}
