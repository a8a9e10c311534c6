//! Deciding what an apply must do, from the release and the recorded history.
//! Pure: no I/O, so every rule is unit-tested here.
//!
//! Rules: a migration applied with the same hash is skipped; with another hash
//! it is drift (refused). A file run outside a transaction that stopped midway
//! resumes at its next statement. A release older than the newest applied one
//! is a downgrade, and a pending migration ordered before an applied one is out
//! of order; both are refused unless explicitly allowed. The same version with
//! another digest is a moved tag (refused); with the same digest and nothing
//! pending it is a successful no-op.

use serde::Serialize;

use crate::core::digest::Digest;
use crate::core::manifest::{FileEntry, Manifest};
use crate::core::version::Version;
use crate::db::history::Snapshot;
use crate::ops::run::warning::{Warning, WarningKind};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub file: FileEntry,
    /// Statements already done by an interrupted earlier run (no-transaction files).
    pub resume_from: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub steps: Vec<Step>,
    pub skipped: usize,
    /// This exact release (version and digest) is recorded as applied.
    pub recorded: bool,
    pub warnings: Vec<Warning>,
}

impl Plan {
    pub fn nothing_to_do(&self) -> bool {
        self.steps.is_empty() && self.recorded
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "drift: {path} (migration {id}) was applied by {applied_by} with a different content\n  Expected: {applied}\n  Actual:   {release}\nApplied migrations are immutable: revert the file and put the change in a new migration"
    )]
    Drift {
        id: String,
        path: String,
        applied_by: String,
        applied: String,
        release: String,
    },
    #[error(
        "{version} is older than {newest}, which is already applied; refusing to downgrade (use rollback, or --allow-out-of-order if this is intended)"
    )]
    Downgrade { version: String, newest: String },
    #[error(
        "{version} was already applied with digest {applied}, but the artifact now tagged {version} is {this}: the tag was moved; do not apply it"
    )]
    MovedTag {
        version: String,
        applied: String,
        this: String,
    },
    #[error(
        "migration {pending} is pending but {applied}, which comes after it, is already applied; it would run out of order (use --allow-out-of-order if this is intended)"
    )]
    OutOfOrder { pending: String, applied: String },
    #[error(
        "the database has migrations this release does not contain: {ids}; it was migrated by another release line (use --allow-out-of-order to proceed anyway)"
    )]
    UnknownApplied { ids: String },
}

/// Versions currently in effect: successful apply/baseline not undone by a later rollback.
pub fn applied_versions(history: &Snapshot) -> Vec<(String, String)> {
    let mut applied: Vec<(String, String)> = Vec::new();
    for r in history.releases.iter().filter(|r| r.success) {
        match r.operation.as_str() {
            "apply" | "baseline" => {
                applied.retain(|(v, _)| v != &r.version);
                applied.push((r.version.clone(), r.artifact_digest.clone()));
            }
            "rollback" => applied.retain(|(v, _)| v != &r.version),
            _ => {}
        }
    }
    applied
}

pub fn plan(
    manifest: &Manifest,
    digest: &Digest,
    history: &Snapshot,
    allow_out_of_order: bool,
) -> Result<Plan, PlanError> {
    let version = manifest.version.tag();
    let digest_s = digest.to_string();
    let applied = applied_versions(history);
    let mut warnings = Vec::new();

    let mut recorded = false;
    for (v, d) in &applied {
        if v == &version {
            if d != &digest_s {
                return Err(PlanError::MovedTag {
                    version,
                    applied: d.clone(),
                    this: digest_s,
                });
            }
            recorded = true;
        }
    }
    let newest = applied
        .iter()
        .filter_map(|(v, _)| Version::parse(v).ok())
        .max();
    if let Some(newest) = newest
        && newest > manifest.version
    {
        if !allow_out_of_order {
            return Err(PlanError::Downgrade {
                version,
                newest: newest.tag(),
            });
        }
        warnings.push(Warning::new(
            WarningKind::OlderThanApplied,
            format!(
                "{version} is older than {newest}, which is applied (allowed by --allow-out-of-order)"
            ),
        ));
    }

    let mut steps = Vec::new();
    let mut skipped = 0;
    let mut last_applied_pos: Option<(usize, &str)> = None;
    let migrations: Vec<&FileEntry> = {
        let mut m: Vec<&FileEntry> = manifest.migrations().collect();
        m.sort_by_key(|f| f.order);
        m
    };
    for (pos, f) in migrations.iter().enumerate() {
        let sha = f.sha256.to_string();
        match history.migrations.get(&f.id) {
            // A no-transaction file that stopped partway was never applied:
            // its fix in a later release replaces it and runs from its first
            // statement (no-transaction statements must be repeatable).
            Some(a) if a.sha256 != sha && !a.complete => {
                warnings.push(Warning::new(
                    WarningKind::PartlyRunReplaced,
                    format!(
                        "{} stopped after {} of {} statements with other content ({} applied {}); this release's version of it runs from its first statement",
                        f.path, a.statements_done, a.statements_total, a.version, a.sha256
                    ),
                ));
                steps.push(Step {
                    file: (*f).clone(),
                    resume_from: 0,
                });
            }
            Some(a) if a.sha256 != sha => {
                return Err(PlanError::Drift {
                    id: f.id.clone(),
                    path: f.path.clone(),
                    applied_by: a.version.clone(),
                    applied: a.sha256.clone(),
                    release: sha,
                });
            }
            Some(a) if a.complete => {
                skipped += 1;
                last_applied_pos = Some((pos, f.id.as_str()));
            }
            Some(a) => steps.push(Step {
                file: (*f).clone(),
                resume_from: a.statements_done.max(0) as usize,
            }),
            None => steps.push(Step {
                file: (*f).clone(),
                resume_from: 0,
            }),
        }
    }
    if let Some((last_pos, last_id)) = last_applied_pos
        && let Some(first_pending) = steps.first()
    {
        let pending_pos = migrations
            .iter()
            .position(|m| m.id == first_pending.file.id)
            .unwrap_or(usize::MAX);
        if pending_pos < last_pos {
            if !allow_out_of_order {
                return Err(PlanError::OutOfOrder {
                    pending: first_pending.file.id.clone(),
                    applied: last_id.to_owned(),
                });
            }
            warnings.push(Warning::new(
                WarningKind::OutOfOrder,
                format!(
                    "{} runs after {last_id}, out of order (allowed)",
                    first_pending.file.id
                ),
            ));
        }
    }
    let known: std::collections::HashSet<&str> = migrations.iter().map(|m| m.id.as_str()).collect();
    let unknown: Vec<&str> = history
        .migrations
        .keys()
        .map(String::as_str)
        .filter(|id| !known.contains(id))
        .collect();
    if !unknown.is_empty() {
        let ids = unknown.join(", ");
        if !allow_out_of_order {
            return Err(PlanError::UnknownApplied { ids });
        }
        warnings.push(Warning::new(
            WarningKind::UnknownApplied,
            format!("the database has migrations this release lacks: {ids} (allowed)"),
        ));
    }
    tracing::debug!(
        %version,
        pending = steps.len(),
        already_applied = skipped,
        recorded,
        warnings = warnings.len(),
        "plan"
    );
    for s in &steps {
        tracing::debug!(id = %s.file.id, file = %s.file.path, resume_from = s.resume_from, "plan: pending");
    }
    Ok(Plan {
        steps,
        skipped,
        recorded,
        warnings,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::core::manifest::{
        FileKind, MANIFEST_MEDIA_TYPE, SourceFormat, Tarball, Tool, TransactionMode,
    };
    use crate::db::history::{AppliedMigration, ReleaseSummary};

    pub(crate) fn manifest(version: &str, files: &[(&str, &str)]) -> Manifest {
        Manifest {
            schema_version: 1,
            media_type: MANIFEST_MEDIA_TYPE.into(),
            version: Version::parse(version).unwrap(),
            previous_version: None,
            created_at: "2026-01-01T00:00:00Z".into(),
            notes: None,
            tool: Tool {
                name: "squizzle".into(),
                version: "0".into(),
            },
            source: None,
            format: SourceFormat::Plain,
            tarball: Tarball {
                name: "t".into(),
                sha256: Digest::of(b"t"),
                size: 1,
            },
            files: files
                .iter()
                .enumerate()
                .map(|(i, (id, body))| FileEntry {
                    id: (*id).into(),
                    path: format!("m/{id}.sql"),
                    sha256: Digest::of(body.as_bytes()),
                    size: body.len() as u64,
                    kind: FileKind::Migration,
                    transaction: TransactionMode::Default,
                    order: i as u32,
                    rollback_for: None,
                })
                .collect(),
            lineage: None,
        }
    }

    pub(crate) fn applied(
        snapshot: &mut Snapshot,
        id: &str,
        body: &str,
        version: &str,
        done: Option<i32>,
    ) {
        snapshot.migrations.insert(
            id.into(),
            AppliedMigration {
                id: id.into(),
                path: format!("m/{id}.sql"),
                sha256: Digest::of(body.as_bytes()).to_string(),
                version: version.into(),
                applied_at: String::new(),
                duration_ms: 0,
                statements_done: done.unwrap_or(1),
                statements_total: 3,
                complete: done.is_none(),
            },
        );
    }

    pub(crate) fn release(
        snapshot: &mut Snapshot,
        version: &str,
        digest: &Digest,
        op: &str,
        success: bool,
    ) {
        snapshot.releases.push(ReleaseSummary {
            id: snapshot.releases.len() as i64 + 1,
            version: version.into(),
            operation: op.into(),
            artifact_digest: digest.to_string(),
            success,
            applied_at: String::new(),
            applied_by_role: "r".into(),
            applied_by_os_user: None,
            ci_identity: None,
            migrations_run: 0,
            execution_ms: 0,
            error_message: None,
        });
    }

    fn ids(p: &Plan) -> Vec<&str> {
        p.steps.iter().map(|s| s.file.id.as_str()).collect()
    }

    #[test]
    fn empty_history_runs_everything_in_order() {
        let m = manifest("1.0.0", &[("0001_a", "A"), ("0002_b", "B")]);
        let p = plan(&m, &Digest::of(b"d"), &Snapshot::default(), false).unwrap();
        assert_eq!(ids(&p), ["0001_a", "0002_b"]);
        assert!(!p.nothing_to_do());
    }

    #[test]
    fn applied_files_are_skipped_and_same_release_is_a_no_op() {
        let m = manifest("1.0.0", &[("0001_a", "A"), ("0002_b", "B")]);
        let d = Digest::of(b"d");
        let mut h = Snapshot::default();
        applied(&mut h, "0001_a", "A", "0.9.0", None);
        let p = plan(&m, &d, &h, false).unwrap();
        assert_eq!((ids(&p), p.skipped), (vec!["0002_b"], 1));
        applied(&mut h, "0002_b", "B", "1.0.0", None);
        release(&mut h, "1.0.0", &d, "apply", true);
        assert!(plan(&m, &d, &h, false).unwrap().nothing_to_do());
    }

    #[test]
    fn drift_is_refused_with_both_hashes_and_the_version_that_applied_it() {
        let m = manifest("1.1.0", &[("0001_a", "A changed")]);
        let mut h = Snapshot::default();
        applied(&mut h, "0001_a", "A", "1.0.0", None);
        let e = plan(&m, &Digest::of(b"d"), &h, false).unwrap_err();
        assert!(
            matches!(&e, PlanError::Drift { applied_by, .. } if applied_by == "1.0.0"),
            "{e}"
        );
        assert!(e.to_string().contains("Expected:") && e.to_string().contains("Actual:"));
    }

    #[test]
    fn a_partly_run_file_with_new_content_runs_from_its_start_not_as_drift() {
        let m = manifest("1.1.0", &[("0001_a", "A fixed")]);
        let mut h = Snapshot::default();
        applied(&mut h, "0001_a", "A", "1.0.0", Some(1));
        let p = plan(&m, &Digest::of(b"d"), &h, false).unwrap();
        assert_eq!(ids(&p), ["0001_a"]);
        assert_eq!(p.steps[0].resume_from, 0);
        assert_eq!(p.warnings[0].kind, WarningKind::PartlyRunReplaced);
        assert!(
            p.warnings[0]
                .message
                .contains("runs from its first statement")
        );
        // The same content resumes where it stopped.
        let same = manifest("1.1.0", &[("0001_a", "A")]);
        assert_eq!(
            plan(&same, &Digest::of(b"d"), &h, false).unwrap().steps[0].resume_from,
            1
        );
    }

    #[test]
    fn downgrade_and_moved_tag_are_refused() {
        let m = manifest("1.0.0", &[("0001_a", "A")]);
        let mut h = Snapshot::default();
        applied(&mut h, "0001_a", "A", "1.0.0", None);
        release(&mut h, "1.2.0", &Digest::of(b"x"), "apply", true);
        assert!(matches!(
            plan(&m, &Digest::of(b"d"), &h, false),
            Err(PlanError::Downgrade { .. })
        ));
        assert!(plan(&m, &Digest::of(b"d"), &h, true).is_ok());

        let mut h = Snapshot::default();
        release(&mut h, "1.0.0", &Digest::of(b"original"), "apply", true);
        assert!(matches!(
            plan(&m, &Digest::of(b"moved"), &h, true),
            Err(PlanError::MovedTag { .. })
        ));
    }

    #[test]
    fn failed_attempts_do_not_count_and_rollbacks_undo_a_version() {
        let m = manifest("1.0.0", &[("0001_a", "A")]);
        let mut h = Snapshot::default();
        release(&mut h, "1.0.0", &Digest::of(b"other"), "apply", false);
        release(&mut h, "2.0.0", &Digest::of(b"x"), "apply", true);
        release(&mut h, "2.0.0", &Digest::of(b"x"), "rollback", true);
        let p = plan(&m, &Digest::of(b"d"), &h, false).unwrap();
        assert_eq!(ids(&p), ["0001_a"]);
    }

    #[test]
    fn interrupted_no_transaction_file_resumes() {
        let m = manifest("1.0.0", &[("0001_a", "A")]);
        let mut h = Snapshot::default();
        applied(&mut h, "0001_a", "A", "1.0.0", Some(2));
        let p = plan(&m, &Digest::of(b"d"), &h, false).unwrap();
        assert_eq!(p.steps[0].resume_from, 2);
    }

    #[test]
    fn out_of_order_and_unknown_applied_need_permission() {
        let m = manifest(
            "1.1.0",
            &[("0001_a", "A"), ("0002_new", "N"), ("0003_c", "C")],
        );
        let mut h = Snapshot::default();
        applied(&mut h, "0001_a", "A", "1.0.0", None);
        applied(&mut h, "0003_c", "C", "1.0.0", None);
        assert!(matches!(
            plan(&m, &Digest::of(b"d"), &h, false),
            Err(PlanError::OutOfOrder { .. })
        ));
        assert_eq!(
            ids(&plan(&m, &Digest::of(b"d"), &h, true).unwrap()),
            ["0002_new"]
        );

        let m = manifest("1.1.0", &[("0001_a", "A")]);
        let mut h = Snapshot::default();
        applied(&mut h, "0001_a", "A", "1.0.0", None);
        applied(&mut h, "0009_z", "Z", "1.0.0", None);
        assert!(matches!(
            plan(&m, &Digest::of(b"d"), &h, false),
            Err(PlanError::UnknownApplied { .. })
        ));
    }
}
