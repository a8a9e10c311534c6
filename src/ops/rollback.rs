//! `rollback`: undo what one release introduced, for incident response.
//!
//! verify -> resolve the previous release -> connect -> lock -> plan -> run -> record.
//!
//! What is undone is decided by the history of THIS database, never by the
//! manifest alone: only migrations recorded as applied by the release being
//! rolled back are undone, newest first. The manifest (and its
//! `previousVersion`) is a claim about the release's lineage that a build in a
//! fresh checkout can get wrong (`previousVersion: null`); trusting it undid
//! older releases' migrations. Where the two disagree in a way that would undo
//! more than the manifest says the release brought, or something the manifest
//! does not contain, the whole rollback is refused and each migration named.
//! Migrations the manifest claims but an older release applied here are kept
//! and reported.
//!
//! Everything is decided before anything runs: a missing script, a newer
//! release still applied on top, drift, a moved tag or a disagreement refuse
//! the whole rollback. Scripts run through apply's runner (same transaction
//! segments, failure reporting and release rows); each script, in its
//! transaction, deletes its migration's history row, so a later apply runs the
//! migration again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde::Serialize;

use crate::config::{Config, Env, TxMode};
use crate::core::digest::Digest;
use crate::core::manifest::{FileEntry, FileKind, Manifest, TransactionMode};
use crate::core::version::Version;
use crate::db::history::Snapshot;
use crate::ops::release::fetch::pull_if_missing;
use crate::ops::release::resolve;
use crate::ops::run::plan::{PlanError, Step, applied_versions};
use crate::ops::run::runner::{self, Loaded, RunContext};
use crate::ops::run::session::{self, Session};
use crate::ops::run::texts::Texts;
use crate::ops::run::{ApplyEvent, DryRun, MigrationFailure, RunOptions, Warning, WarningKind};
use crate::ops::{Error, Result};
use crate::store::layout::LayoutStore;

#[derive(Debug, Clone)]
pub struct RollbackOptions {
    pub version: Version,
    /// Verify, plan and print the scripts; write nothing, take no lock.
    pub dry_run: bool,
    pub run: RunOptions,
}

/// Progress, for the CLI to show as it happens.
pub enum RollbackEvent<'a> {
    /// The same progress as apply: pull, verification, connection, lock, files.
    Progress(ApplyEvent<'a>),
    Planned(&'a RollbackPlan),
}

/// One migration to undo, with the script that undoes it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackStep {
    pub migration: String,
    pub migration_path: String,
    pub script: FileEntry,
    /// The version recorded as having applied it.
    pub applied_by: String,
    /// False for a no-transaction migration that stopped midway.
    pub complete: bool,
}

/// A migration the manifest attributes to the release but the history does not.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeptMigration {
    pub migration: String,
    pub applied_by: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackPlan {
    pub version: String,
    pub previous_version: Option<String>,
    /// Ids of the migrations the manifest says this release introduced (since
    /// `previousVersion`, or all of them without one), in migration order.
    pub introduced: Vec<String>,
    /// Of those, the ones this database ran as part of another (older)
    /// release: kept, whatever the manifest claims.
    pub kept: Vec<KeptMigration>,
    /// What runs, in run order (newest migration first).
    pub steps: Vec<RollbackStep>,
    /// The release is recorded as in effect (its rollback row must be written
    /// even when none of its migrations is applied any more).
    pub in_effect: bool,
    pub warnings: Vec<Warning>,
}

impl RollbackPlan {
    pub fn nothing_to_do(&self) -> bool {
        self.steps.is_empty() && !self.in_effect
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error(
        "cannot roll back {version}: no rollback script for {}; nothing was run. Ship the missing `.down.sql` files in a new release, or roll forward",
        .missing.join(", ")
    )]
    MissingScripts {
        version: String,
        /// `id (path)` of every applied migration without a script.
        missing: Vec<String>,
    },
    #[error(
        "cannot roll back {version}: {} applied on top of it; roll back {} first{}",
        newer_list(.newer), .newer[0], .newer[1..].iter().map(|v| format!(", then {v}")).collect::<String>()
    )]
    NewerApplied {
        version: String,
        /// Newest first.
        newer: Vec<String>,
    },
    #[error(
        "cannot roll back {version}: {path} (migration {id}) was applied by {applied_by} with other content than this release has\n  Expected: {release}\n  Actual:   {applied}\nIts rollback script was not written for what the database ran; nothing was run"
    )]
    Drift {
        version: String,
        id: String,
        path: String,
        applied_by: String,
        applied: String,
        release: String,
    },
    #[error(
        "cannot roll back {version}: its manifest and this database's history disagree about what {version} applied here:\n{}\nUndoing these could remove more than {version} brought; nothing was run. Inspect `squizzle status` and restore by hand, or roll forward with a new release",
        .entries.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n")
    )]
    Disagreement {
        version: String,
        /// One line per migration: what the history says and what the manifest says.
        entries: Vec<String>,
    },
    #[error("{}", failure_message(.0))]
    Failed(Box<MigrationFailure>),
}

fn newer_list(newer: &[String]) -> String {
    match newer {
        [one] => format!("{one} is"),
        many => format!("{} are", many.join(", ")),
    }
}

fn failure_message(f: &MigrationFailure) -> String {
    let mut s = format!(
        "rollback of {} failed: {} (undoing {}) failed at statement {} (line {}): {}",
        f.version, f.path, f.migration, f.statement, f.line, f.message
    );
    if f.rolled_back {
        s.push_str("; its transaction was rolled back");
    }
    if f.migrations_committed > 0 {
        s.push_str(&format!(
            "; {} rollback script(s) of this run stay committed (those migrations are pending again)",
            f.migrations_committed
        ));
    }
    s.push_str(if f.recorded {
        "; the failure is recorded in the history"
    } else {
        "; the failure could not be recorded"
    });
    s.push_str(". The migrations not rolled back are still applied: fix the rollback script in a new release, or roll forward");
    s
}

/// Decides what a rollback of `manifest` must do. Pure: every rule is unit-tested.
pub fn plan_rollback(
    manifest: &Manifest,
    digest: &Digest,
    previous: Option<&Manifest>,
    history: &Snapshot,
) -> Result<RollbackPlan, Error> {
    let version = manifest.version.tag();
    let effective = applied_versions(history);
    let in_effect = match effective.iter().find(|(v, _)| v == &version) {
        Some((_, d)) if d != &digest.to_string() => {
            return Err(PlanError::MovedTag {
                version,
                applied: d.clone(),
                this: digest.to_string(),
            }
            .into());
        }
        Some(_) => true,
        None => false,
    };
    let before: BTreeSet<&str> = previous
        .map(|p| p.migrations().map(|f| f.id.as_str()).collect())
        .unwrap_or_default();
    let mut introduced: Vec<&FileEntry> = manifest
        .migrations()
        .filter(|f| !before.contains(f.id.as_str()))
        .collect();
    introduced.sort_by_key(|f| f.order);
    let scripts: BTreeMap<&str, &FileEntry> = manifest
        .files
        .iter()
        .filter(|f| f.kind == FileKind::Rollback)
        .filter_map(|f| f.rollback_for.as_deref().map(|id| (id, f)))
        .collect();

    // What this database ran as part of this release: the only candidates.
    let applied_here = |id: &str| {
        history
            .migrations
            .get(id)
            .is_some_and(|m| m.version == version)
    };
    let mut own: Vec<&FileEntry> = manifest
        .migrations()
        .filter(|f| applied_here(&f.id))
        .collect();
    own.sort_by_key(|f| f.order);

    let mut disagreements = Vec::new();
    let in_manifest: BTreeSet<&str> = manifest.migrations().map(|f| f.id.as_str()).collect();
    for m in history.migrations.values() {
        if m.version == version && !in_manifest.contains(m.id.as_str()) {
            disagreements.push(format!(
                "{} ({}): recorded as applied by {version}, but {version}'s manifest has no such migration",
                m.id, m.path
            ));
        }
    }
    if let Some(prev) = previous {
        for f in own.iter().filter(|f| before.contains(f.id.as_str())) {
            disagreements.push(format!(
                "{} ({}): recorded as applied by {version}, but the manifest says it came with {} (this database never applied {})",
                f.id,
                f.path,
                prev.version,
                prev.version
            ));
        }
    }
    if !disagreements.is_empty() {
        return Err(RollbackError::Disagreement {
            version,
            entries: disagreements,
        }
        .into());
    }

    let to_undo: Vec<&FileEntry> = own.iter().rev().copied().collect();
    let undone: BTreeSet<&str> = to_undo.iter().map(|f| f.id.as_str()).collect();

    // Newer releases still in effect, or whose migrations are still applied.
    let mut newer: BTreeSet<Version> = effective
        .iter()
        .filter_map(|(v, _)| Version::parse(v).ok())
        .collect();
    newer.extend(
        history
            .migrations
            .values()
            .filter(|m| !undone.contains(m.id.as_str()))
            .filter_map(|m| Version::parse(&m.version).ok()),
    );
    let newer: Vec<String> = newer
        .into_iter()
        .rev()
        .filter(|v| v > &manifest.version)
        .map(|v| v.tag())
        .collect();
    if !newer.is_empty() {
        return Err(RollbackError::NewerApplied { version, newer }.into());
    }

    let mut steps = Vec::with_capacity(to_undo.len());
    let mut missing = Vec::new();
    let mut warnings = Vec::new();
    for f in to_undo {
        let applied = &history.migrations[&f.id];
        if applied.sha256 != f.sha256.to_string() {
            return Err(RollbackError::Drift {
                version,
                id: f.id.clone(),
                path: f.path.clone(),
                applied_by: applied.version.clone(),
                applied: applied.sha256.clone(),
                release: f.sha256.to_string(),
            }
            .into());
        }
        let Some(script) = scripts.get(f.id.as_str()) else {
            missing.push(format!("{} ({})", f.id, f.path));
            continue;
        };
        if !applied.complete {
            warnings.push(Warning::new(
                WarningKind::PartlyApplied,
                format!(
                    "{} stopped after {} of {} statements; its rollback script {} runs in full",
                    f.id, applied.statements_done, applied.statements_total, script.path
                ),
            ));
        }
        steps.push(RollbackStep {
            migration: f.id.clone(),
            migration_path: f.path.clone(),
            script: (*script).clone(),
            applied_by: applied.version.clone(),
            complete: applied.complete,
        });
    }
    if !missing.is_empty() {
        return Err(RollbackError::MissingScripts { version, missing }.into());
    }
    // Claimed by the manifest, applied here by an older release (newer ones
    // were refused above): kept.
    let kept: Vec<KeptMigration> = introduced
        .iter()
        .filter_map(|f| history.migrations.get(&f.id))
        .filter(|m| m.version != version)
        .map(|m| KeptMigration {
            migration: m.id.clone(),
            applied_by: m.version.clone(),
        })
        .collect();
    if !kept.is_empty() {
        warnings.push(Warning::new(WarningKind::KeptForOlderRelease, format!(
            "kept {}: the manifest counts {} as {version}'s, but this database applied {} with an older release",
            kept.iter()
                .map(|k| format!("{} (applied by {})", k.migration, k.applied_by))
                .collect::<Vec<_>>()
                .join(", "),
            if kept.len() == 1 { "it" } else { "them" },
            if kept.len() == 1 { "it" } else { "them" },
        )));
    }
    Ok(RollbackPlan {
        version,
        previous_version: manifest.previous_version.as_ref().map(Version::tag),
        introduced: introduced.iter().map(|f| f.id.clone()).collect(),
        kept,
        steps,
        in_effect,
        warnings,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    RolledBack,
    NothingToDo,
    DryRun,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedRollback {
    pub migration: String,
    pub script: String,
    pub transaction: TransactionMode,
    pub statements: usize,
    pub applied_by: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackReport {
    pub version: String,
    pub digest: Digest,
    pub previous_version: Option<String>,
    pub database: String,
    pub history_schema: String,
    pub outcome: Outcome,
    pub tx_mode: TxMode,
    /// In run order.
    pub planned: Vec<PlannedRollback>,
    /// Migrations the manifest counts as this release's that an older release
    /// applied here: not undone.
    pub kept: Vec<KeptMigration>,
    pub migrations_rolled_back: usize,
    pub statements_run: usize,
    pub execution_ms: u64,
    pub release_id: Option<i64>,
    pub warnings: Vec<Warning>,
}

/// The previous release's manifest, digest-checked (pulled when missing), or
/// `None` when the release declares no previous version.
async fn previous_manifest(
    config: &Config,
    manifest: &Manifest,
    offline: bool,
) -> Result<Option<Manifest>> {
    let Some(prev) = &manifest.previous_version else {
        return Ok(None);
    };
    if !offline {
        pull_if_missing(config, prev).await?;
    }
    let store = LayoutStore::open(&config.store_dir())?;
    let resolved = resolve::resolve(&store, prev).map_err(|e| match e {
        Error::NotFound {
            version,
            store,
            hint,
        } => Error::NotFound {
            version,
            store,
            hint: format!(
                "{hint}; rollback of {} needs its previous release {prev} to know what {} introduced",
                manifest.version, manifest.version
            ),
        },
        other => other,
    })?;
    Ok(Some(resolved.manifest))
}

pub async fn rollback(
    config: &Config,
    env: &Env,
    opts: &RollbackOptions,
    on: &mut dyn FnMut(RollbackEvent<'_>),
) -> Result<RollbackReport> {
    let started = Instant::now();
    let fetched = session::fetch_verified(config, &opts.version, &opts.run, &mut |e| {
        on(RollbackEvent::Progress(e))
    })
    .await?;
    let release = &fetched.release;
    let previous = previous_manifest(config, &release.manifest, opts.run.offline).await?;
    let (lock_timeout, settings) = opts.run.timeouts.resolve(config);
    let mut session = Session::open(
        config,
        env,
        "rollback",
        &opts.version,
        (!opts.dry_run).then_some(lock_timeout),
        &mut |e| on(RollbackEvent::Progress(e)),
    )
    .await?;
    let mut ctx = RunContext::new(
        &session, &fetched, config, env, &opts.run, started, "rollback",
    );
    ctx.settings = settings;
    if opts.dry_run {
        ctx.dry_run = DryRun::Plan;
    }
    let result = async {
        let snapshot = session.history.snapshot(ctx.client).await?;
        if snapshot.exists && !opts.dry_run {
            // Upgrades an older layout, under the lock, in a transaction of
            // this run (so that a later run waits for it).
            runner::exec(ctx.client, &ctx.begin_sql(), "starting a transaction").await?;
            session.history.ensure(ctx.client).await?;
            runner::exec(ctx.client, "COMMIT", "committing squizzle's history tables").await?;
        }
        let plan = plan_rollback(
            &release.manifest,
            &release.digest(),
            previous.as_ref(),
            &snapshot,
        )?;
        on(RollbackEvent::Planned(&plan));
        for w in &plan.warnings {
            on(RollbackEvent::Progress(ApplyEvent::Warning(&w.message)));
        }
        run_plan(ctx, &plan, &mut |e| on(RollbackEvent::Progress(e))).await
    }
    .await;
    session.unlock().await;
    result
}

async fn run_plan(
    mut ctx: RunContext<'_>,
    plan: &RollbackPlan,
    on: &mut dyn FnMut(ApplyEvent<'_>),
) -> Result<RollbackReport> {
    let manifest = &ctx.release.manifest;
    let mode = runner::split_mode(manifest.format);
    // Read only when a script will run: from the verified layer, into memory.
    let paths: Vec<&str> = plan.steps.iter().map(|s| s.script.path.as_str()).collect();
    let texts = if paths.is_empty() {
        Vec::new()
    } else {
        session::read_release_files(ctx.config, ctx.store, ctx.release, &paths)?
    };
    let loaded = plan
        .steps
        .iter()
        .zip(&texts)
        .map(|(s, text)| {
            let step = Step {
                file: s.script.clone(),
                resume_from: 0,
            };
            runner::load(step, text, mode)
        })
        .collect::<Result<Vec<Loaded>>>()?;
    let outcome = if plan.nothing_to_do() {
        Outcome::NothingToDo
    } else if ctx.dry_run == DryRun::Plan {
        Outcome::DryRun
    } else {
        Outcome::RolledBack
    };
    let mut report = RollbackReport {
        version: plan.version.clone(),
        digest: ctx.release.digest(),
        previous_version: plan.previous_version.clone(),
        database: ctx.target.clone(),
        history_schema: ctx.history.schema().name().to_owned(),
        outcome,
        tx_mode: ctx.tx_mode,
        planned: plan
            .steps
            .iter()
            .zip(&loaded)
            .map(|(s, l)| PlannedRollback {
                migration: s.migration.clone(),
                script: s.script.path.clone(),
                transaction: s.script.transaction,
                statements: l.statements,
                applied_by: s.applied_by.clone(),
            })
            .collect(),
        kept: plan.kept.clone(),
        warnings: plan.warnings.clone(),
        release_id: None,
        migrations_rolled_back: 0,
        statements_run: 0,
        execution_ms: 0,
    };
    if outcome != Outcome::RolledBack {
        let segment_of = runner::segment_numbers(
            &runner::segments(&loaded, ctx.tx_mode, ctx.dry_run),
            loaded.len(),
        );
        runner::show_sql(&loaded, &texts, &segment_of, on);
        return Ok(report);
    }
    ctx.metadata = serde_json::json!({
        "previousVersion": plan.previous_version,
        "rolledBack": plan.steps.iter().map(|s| serde_json::json!({
            "migration": s.migration,
            "script": s.script.path,
            "appliedBy": s.applied_by,
        })).collect::<Vec<_>>(),
    });
    // Rollback scripts are held in memory (read above, for the plan): they
    // are usually few and small, unlike a release's migrations.
    let mut texts = Texts::held(texts);
    match runner::run_files(&ctx, &loaded, &mut texts, on).await {
        Ok(tally) => {
            report.release_id = tally.release_id;
            report.migrations_rolled_back = tally.files;
            report.statements_run = tally.statements;
            report.execution_ms = ctx.started.elapsed().as_millis() as u64;
            if let Some(id) = tally.release_id
                && let Some(w) = crate::ops::run::fingerprint::record(
                    ctx.client,
                    ctx.history,
                    id,
                    &crate::ops::run::fingerprint::scope_for(ctx.config),
                )
                .await
            {
                on(ApplyEvent::Warning(&w.message));
                report.warnings.push(w);
            }
            Ok(report)
        }
        Err(Error::MigrationFailed(f)) => Err(RollbackError::Failed(f).into()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::run::plan::tests::{
        applied as applied_one, manifest as plain, release as record,
    };

    /// `migrations` in order; `down` the ids that have a rollback script.
    fn manifest(
        version: &str,
        previous: Option<&str>,
        migrations: &[&str],
        down: &[&str],
    ) -> Manifest {
        let pairs: Vec<(&str, &str)> = migrations.iter().map(|id| (*id, *id)).collect();
        let mut m = plain(version, &pairs);
        m.previous_version = previous.map(|p| Version::parse(p).unwrap());
        for (i, id) in down.iter().enumerate() {
            let mut f = m.files.iter().find(|f| f.id == *id).unwrap().clone();
            f.kind = FileKind::Rollback;
            f.path = format!("m/{id}.down.sql");
            f.order = i as u32;
            f.rollback_for = Some((*id).to_owned());
            m.files.push(f);
        }
        m
    }

    /// History where `version` (digest `d-<version>`) applied `ids`.
    fn applied(h: &mut Snapshot, version: &str, ids: &[&str]) {
        for id in ids {
            applied_one(h, id, id, version, None);
        }
        release(h, version, "apply");
    }

    fn release(h: &mut Snapshot, version: &str, operation: &str) {
        record(h, version, &digest(version), operation, true);
    }

    fn digest(version: &str) -> Digest {
        Digest::of(format!("d-{version}").as_bytes())
    }

    fn plan(m: &Manifest, prev: Option<&Manifest>, h: &Snapshot) -> Result<RollbackPlan, Error> {
        plan_rollback(m, &digest(&m.version.tag()), prev, h)
    }

    fn order(p: &RollbackPlan) -> Vec<&str> {
        p.steps.iter().map(|s| s.script.path.as_str()).collect()
    }

    #[test]
    fn undoes_only_what_the_release_introduced_newest_first() {
        let v1 = manifest("1.0.0", None, &["0001_a", "0002_b"], &["0001_a"]);
        let v2 = manifest(
            "1.1.0",
            Some("1.0.0"),
            &["0001_a", "0002_b", "0003_c", "0004_d"],
            &["0003_c", "0004_d"],
        );
        let mut h = Snapshot::default();
        applied(&mut h, "1.0.0", &["0001_a", "0002_b"]);
        applied(&mut h, "1.1.0", &["0003_c", "0004_d"]);
        let p = plan(&v2, Some(&v1), &h).unwrap();
        assert_eq!(order(&p), ["m/0004_d.down.sql", "m/0003_c.down.sql"]);
        assert_eq!(p.introduced, ["0003_c", "0004_d"]);
        assert!(p.in_effect && !p.nothing_to_do());
        // Without a previous version (a build in a fresh checkout) the manifest
        // claims all four, but the history says 1.0.0 applied 0001_a and
        // 0002_b: only 1.1.0's own are undone, the others are kept and named.
        let p = plan(&v2, None, &h).unwrap();
        assert_eq!(order(&p), ["m/0004_d.down.sql", "m/0003_c.down.sql"]);
        assert_eq!(p.introduced, ["0001_a", "0002_b", "0003_c", "0004_d"]);
        let kept: Vec<(&str, &str)> = p
            .kept
            .iter()
            .map(|k| (k.migration.as_str(), k.applied_by.as_str()))
            .collect();
        assert_eq!(kept, [("0001_a", "1.0.0"), ("0002_b", "1.0.0")]);
        assert!(
            p.warnings[0]
                .message
                .starts_with("kept 0001_a (applied by 1.0.0), 0002_b (applied by 1.0.0)"),
            "{:?}",
            p.warnings
        );
        // 0002_b has no script, but it is not 1.1.0's to undo: no refusal.
        assert!(plan(&v2, Some(&v1), &h).unwrap().kept.is_empty());
    }

    fn disagreement(e: &Error) -> Option<&Vec<String>> {
        match e {
            Error::Rollback(r) => match r.as_ref() {
                RollbackError::Disagreement { entries, .. } => Some(entries),
                _ => None,
            },
            _ => None,
        }
    }

    #[test]
    fn history_that_disagrees_with_the_manifest_refuses_naming_each_migration() {
        let v1 = manifest("1.0.0", None, &["0001_a", "0002_b"], &["0001_a", "0002_b"]);
        let v2 = manifest(
            "1.1.0",
            Some("1.0.0"),
            &["0001_a", "0002_b", "0003_c"],
            &["0001_a", "0002_b", "0003_c"],
        );
        // This database never applied 1.0.0: 1.1.0 ran all three. The manifest
        // says 0001_a and 0002_b came with 1.0.0, so undoing them would go
        // below what 1.1.0 brought.
        let mut h = Snapshot::default();
        applied(&mut h, "1.1.0", &["0001_a", "0002_b", "0003_c"]);
        let e = plan(&v2, Some(&v1), &h).unwrap_err();
        let entries = disagreement(&e).unwrap_or_else(|| panic!("{e}"));
        assert_eq!(entries.len(), 2, "{entries:?}");
        assert!(entries[0].starts_with("0001_a (m/0001_a.sql): recorded as applied by 1.1.0, but the manifest says it came with 1.0.0"));
        assert!(entries[1].starts_with("0002_b (m/0002_b.sql)"));
        assert!(e.to_string().contains("nothing was run"), "{e}");
        // Without a previous version the manifest makes no such claim: all of
        // what 1.1.0 applied here is undone.
        let mut unrooted = v2.clone();
        unrooted.previous_version = None;
        assert_eq!(
            order(&plan(&unrooted, None, &h).unwrap()),
            [
                "m/0003_c.down.sql",
                "m/0002_b.down.sql",
                "m/0001_a.down.sql"
            ]
        );

        // The history says 1.1.0 applied a migration its manifest lacks.
        let mut h = Snapshot::default();
        applied(&mut h, "1.0.0", &["0001_a", "0002_b"]);
        applied(&mut h, "1.1.0", &["0003_c", "0009_ghost"]);
        let e = plan(&v2, Some(&v1), &h).unwrap_err();
        let entries = disagreement(&e).unwrap_or_else(|| panic!("{e}"));
        assert_eq!(
            entries,
            &[
                "0009_ghost (m/0009_ghost.sql): recorded as applied by 1.1.0, but 1.1.0's manifest has no such migration"
            ]
        );
    }

    #[test]
    fn every_missing_script_is_listed_before_anything_runs() {
        let v2 = manifest("1.1.0", None, &["0001_a", "0002_b", "0003_c"], &["0002_b"]);
        let mut h = Snapshot::default();
        applied(&mut h, "1.1.0", &["0001_a", "0002_b", "0003_c"]);
        let e = plan(&v2, None, &h).unwrap_err().to_string();
        assert!(
            e.contains("0003_c (m/0003_c.sql), 0001_a (m/0001_a.sql)"),
            "{e}"
        );
        // Unapplied migrations need no script.
        let mut h = Snapshot::default();
        applied(&mut h, "1.1.0", &["0002_b"]);
        assert_eq!(order(&plan(&v2, None, &h).unwrap()), ["m/0002_b.down.sql"]);
    }

    #[test]
    fn a_newer_release_on_top_is_refused_until_it_is_rolled_back() {
        let v1 = manifest("1.0.0", None, &["0001_a"], &["0001_a"]);
        let v2 = manifest("1.1.0", Some("1.0.0"), &["0001_a", "0002_b"], &["0002_b"]);
        let mut h = Snapshot::default();
        applied(&mut h, "1.0.0", &["0001_a"]);
        applied(&mut h, "1.1.0", &["0002_b"]);
        applied(&mut h, "1.2.0", &["0003_c"]);
        applied(&mut h, "1.3.0", &[]);
        let e = plan(&v2, Some(&v1), &h).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot roll back 1.1.0: 1.3.0, 1.2.0 are applied on top of it; roll back 1.3.0 first, then 1.2.0"
        );
        release(&mut h, "1.3.0", "rollback");
        let e = plan(&v2, Some(&v1), &h).unwrap_err();
        assert!(e.to_string().contains("roll back 1.2.0 first"), "{e}");
        // 1.2.0 rolled back, but its migration still applied (a failed rollback
        // in file mode, say): still on top.
        release(&mut h, "1.2.0", "rollback");
        assert!(plan(&v2, Some(&v1), &h).is_err());
        h.migrations.remove("0003_c");
        assert_eq!(
            order(&plan(&v2, Some(&v1), &h).unwrap()),
            ["m/0002_b.down.sql"]
        );
    }

    #[test]
    fn nothing_applied_is_nothing_to_do_but_a_release_in_effect_is_recorded() {
        let v1 = manifest("1.0.0", None, &["0001_a"], &["0001_a"]);
        let v2 = manifest("1.1.0", Some("1.0.0"), &["0001_a"], &[]);
        let mut h = Snapshot::default();
        assert!(plan(&v1, None, &h).unwrap().nothing_to_do());
        applied(&mut h, "1.0.0", &["0001_a"]);
        applied(&mut h, "1.1.0", &[]);
        // 1.1.0 introduced nothing, but it is in effect: its rollback is recorded.
        let p = plan(&v2, Some(&v1), &h).unwrap();
        assert!(p.steps.is_empty() && !p.nothing_to_do());
        release(&mut h, "1.1.0", "rollback");
        assert!(plan(&v2, Some(&v1), &h).unwrap().nothing_to_do());
    }

    #[test]
    fn drift_and_a_moved_tag_are_refused() {
        let v1 = manifest("1.0.0", None, &["0001_a"], &["0001_a"]);
        let mut h = Snapshot::default();
        applied(&mut h, "1.0.0", &["0001_a"]);
        let moved = plan_rollback(&v1, &Digest::of(b"other"), None, &h).unwrap_err();
        assert!(
            matches!(moved, Error::Plan(PlanError::MovedTag { .. })),
            "{moved}"
        );
        h.migrations.get_mut("0001_a").unwrap().sha256 = Digest::of(b"x").to_string();
        let drift = plan(&v1, None, &h).unwrap_err();
        assert!(
            matches!(&drift, Error::Rollback(r) if matches!(r.as_ref(), RollbackError::Drift { .. })),
            "{drift}"
        );
    }
}
