//! Printing what several commands report the same way: verification checks,
//! run progress and failures, signing progress.

use super::Context;
use super::args::SignHow;
use super::output::Printer;
use super::runtime::runtime;
use crate::core::exit::ExitCode;
use crate::core::manifest::{ChangeKind, Lineage, PreviousSource, TransactionMode};
use crate::core::version::Version;
use crate::ops;
use crate::ops::lineage::{Change, describe};
use crate::ops::release::attest::{SignEvent, SignReport};
use crate::ops::release::verify::{CheckId, Failure, Status};
use crate::ops::run::{ApplyEvent, MigrationFailure};

/// The seed-style check lines of a verify report (used by verify and apply).
pub fn print_checks(
    p: &super::output::Printer,
    report: &crate::ops::release::verify::VerifyReport,
) {
    for check in &report.checks {
        if check.name == CheckId::Files {
            for f in report.files.iter().filter(|f| !f.ok) {
                p.fail(&format!("Checksum mismatch in {}", f.path));
                p.fail_detail(&format!(
                    "Expected: {} ({} bytes)",
                    f.expected_sha256, f.expected_size
                ));
                p.fail_detail(&format!(
                    "Actual:   {} ({} bytes)",
                    f.actual_sha256, f.actual_size
                ));
            }
        }
        match check.status {
            Status::Pass if check.name == CheckId::Signature => {
                p.ok("Verifying signature...");
                if let Some(s) = &report.signature {
                    print_signer(p, s);
                }
                p.ok(&check.detail);
            }
            Status::Pass if check.name == CheckId::Provenance => {
                p.ok(&check.detail);
                if let Some(pv) = &report.provenance {
                    p.info(&format!("Builder: {}", pv.builder_id));
                    if let Some(r) = &pv.repository {
                        let at = match (&pv.git_ref, &pv.revision) {
                            (Some(g), Some(rev)) => format!(" {g} ({rev})"),
                            (None, Some(rev)) => format!(" ({rev})"),
                            (Some(g), None) => format!(" {g}"),
                            (None, None) => String::new(),
                        };
                        p.info(&format!("Source: {r}{at}"));
                    }
                    if let Some(i) = &pv.invocation_id {
                        p.info(&format!("Build run: {i}"));
                    }
                }
            }
            Status::Pass => p.ok(&check.detail),
            Status::Skip if check.name == CheckId::Revocation => p.warn(&check.detail),
            Status::Skip => p.skip(&check.detail),
            Status::Fail => {
                p.fail(&check.detail);
                if let Some(e) = &check.expected {
                    p.fail_detail(&format!("Expected: {e}"));
                }
                if let Some(a) = &check.actual {
                    p.fail_detail(&format!("Actual:   {a}"));
                }
            }
        }
        if check.name == CheckId::Files && report.failure() != Some(Failure::Integrity) {
            p.ok("Integrity verified");
        }
    }
    if let Some(lineage) = &report.lineage {
        print_lineage(p, lineage, true);
    }
}

fn print_signer(p: &super::output::Printer, s: &crate::signing::verify::Verified) {
    if s.method == "keyless" {
        p.info(&format!("Signed by: {}", s.identity));
        p.info(&format!("Issuer: {}", s.issuer));
    } else {
        p.info(&format!("Signed by: {} ({})", s.identity, s.issuer));
    }
    if let Some(t) = &s.signed_at {
        p.info(&format!("Signed at: {t}"));
    }
    if let Some(i) = s.log_index {
        p.info(&format!(
            "Transparency log index: {i} (inclusion proof verified)"
        ));
    }
    if let Some(r) = &s.rule {
        p.info(&format!("Policy: {r}"));
    }
}

/// Shows where a migration (or rollback script) failed. In JSON mode prints the
/// error document with the failure's details and returns true: the caller exits
/// with `code` without printing the error again.
pub fn print_failure(p: &Printer, f: &MigrationFailure, code: ExitCode, message: &str) -> bool {
    if p.is_json() {
        p.report(&super::JsonError {
            error: super::JsonErrorBody {
                kind: code.name(),
                code: code.code(),
                message: message.to_owned(),
                failure: Some(f),
            },
        });
        return true;
    }
    p.fail(&format!(
        "{} failed at statement {}, line {}",
        f.path, f.statement, f.line
    ));
    if let Some(code) = &f.sqlstate {
        // The database layer's text already ends its first sentence with
        // "(SQLSTATE code)"; the code leads here, once.
        let message = f.message.replacen(&format!(" (SQLSTATE {code})"), "", 1);
        p.fail_detail(&format!("SQLSTATE {code}: {message}"));
    } else {
        p.fail_detail(&f.message);
    }
    false
}

/// Shows apply's progress events; `rollback` shows its own with it.
pub fn print_event(p: &Printer, event: ApplyEvent<'_>) {
    match event {
        ApplyEvent::Pulled(pulled) => p.status(&format!(
            "Pulled {} from {} ({} blobs, {})",
            pulled.version,
            pulled.registry,
            pulled.blobs_copied,
            super::output::bytes(pulled.bytes_copied)
        )),
        ApplyEvent::RefreshFailed(why) => p.warn(&format!(
            "Could not check the registry for new signatures ({why}); using what the local store has"
        )),
        ApplyEvent::Verified(report) => print_checks(p, report),
        // Status on the way to the result: stderr (the files run and the
        // outcome are the result, on stdout).
        ApplyEvent::Connected { target } => p.status_info(&format!("Connected to {target}")),
        ApplyEvent::LockWait(holder) => p.warn(&format!(
            "Waiting for the migration lock, held by {}",
            holder.map_or_else(|| "another session".to_owned(), |h| h.to_string())
        )),
        ApplyEvent::Locked => p.status("Acquired the migration lock"),
        ApplyEvent::Planned(plan) => {
            p.status_info(&format!(
                "Plan: {} to run, {} already applied",
                plan.steps.len(),
                plan.skipped
            ));
        }
        ApplyEvent::Warning(w) => p.warn(w),
        ApplyEvent::FileStarted {
            file,
            statements,
            resume_from,
        } if resume_from > 0 => {
            p.info(&format!(
                "Resuming {} at statement {} of {statements}",
                file.path,
                resume_from + 1
            ));
        }
        ApplyEvent::FileStarted { .. } => {}
        ApplyEvent::FileDone {
            file,
            statements,
            ms,
        } => {
            let nt = if file.transaction == TransactionMode::None {
                ", no transaction"
            } else {
                ""
            };
            p.ok(&format!(
                "{} ({}{nt}, {ms} ms)",
                file.path,
                super::output::count(statements, "statement")
            ));
        }
        ApplyEvent::DryRunFile { file, sql, segment } => {
            let how = if file.transaction == TransactionMode::None {
                format!("step {segment}: alone, no transaction")
            } else {
                format!("step {segment}: transaction")
            };
            p.line(&format!("-- {} ({}) [{how}]", file.path, file.id));
            p.line(sql.trim_end());
            p.line("");
        }
    }
}

/// The seed-style progress lines of keyless signing.
pub fn printer_events(p: &super::output::Printer) -> impl FnMut(SignEvent<'_>) + '_ {
    move |e: SignEvent<'_>| match e {
        SignEvent::Authenticated {
            identity,
            issuer,
            source,
        } => {
            p.status("Authenticating with Sigstore...");
            p.status_info(&format!(
                "Logged in as {identity} ({issuer}, token from {source})"
            ));
        }
        SignEvent::Logged { index, rekor_url } => {
            p.status("Recording in transparency log...");
            match index {
                Some(i) => p.status_info(&format!("Entry: {i} ({rekor_url})")),
                None => p.status_info(&format!("Entry recorded in {rekor_url}")),
            }
        }
    }
}

pub fn sign_and_report(
    ctx: &Context,
    config: &crate::config::Config,
    version: &Version,
    how: &SignHow,
) -> Result<ExitCode, ops::Error> {
    let p = &ctx.printer;
    let mut on = printer_events(p);
    let report = runtime()?.block_on(ops::sign::sign(
        config,
        &ctx.env,
        version,
        &how.options(),
        &mut on,
    ))?;
    if p.is_json() {
        p.report(&report);
        return Ok(ExitCode::Ok);
    }
    print_signed(p, &report);
    Ok(ExitCode::Ok)
}

/// The lines after a signature was made (sign, build --sign).
pub fn print_signed(p: &Printer, report: &SignReport) {
    if report.method == "key" {
        p.ok(&format!("Signed with {}", report.identity));
        p.info("No transparency log entry (key-pair signature for air-gapped use)");
    }
    p.ok(&format!("Signed {} {}", report.version, report.digest));
    p.info(&format!("Bundle: {}", report.bundle.display()));
}

/// What a release's manifest says about the history check its build ran:
/// the release it was compared with (or why none was) and every allowance
/// with its reason (used by build, verify and apply).
/// `enforced`: the release was built under the rule (build, verify, apply),
/// so no allowance means nothing released changed; `check` passes false and
/// lists its problems itself.
pub fn print_lineage(p: &Printer, lineage: &Lineage, enforced: bool) {
    match &lineage.previous {
        Some(prev) => {
            let from = match prev.found_in {
                PreviousSource::Store => "local store",
                PreviousSource::Registry => "registry",
            };
            let named = if prev.named {
                ", named with --previous"
            } else {
                ""
            };
            if enforced {
                let outcome = if lineage.allowances.is_empty() {
                    "released migrations unchanged"
                } else {
                    "released migrations changed with allowances"
                };
                p.info(&format!(
                    "Built against {} ({from}{named}): {outcome}",
                    prev.version
                ));
            } else {
                p.info(&format!("Compared with {} ({from}{named})", prev.version));
            }
            for a in &lineage.allowances {
                let change = Change {
                    kind: a.kind,
                    id: a.id.clone(),
                    released_path: a.released_path.clone(),
                    released_sha256: a.released_sha256,
                    path: a.path.clone(),
                    sha256: a.sha256,
                    before: None,
                };
                let at = if enforced {
                    "Allowed at build"
                } else {
                    "Allowed"
                };
                p.info(&format!(
                    "{at}: {}; reason: {}",
                    describe(&change, &prev.version.tag()),
                    a.reason
                ));
                if a.kind == ChangeKind::Edited
                    && let (Some(was), Some(now)) = (&a.released_sha256, &a.sha256)
                {
                    p.line(&format!("  Released: {was}"));
                    p.line(&format!("  Now:      {now}"));
                }
            }
        }
        None => p.info(&format!(
            "{}: {}",
            if enforced {
                "History not checked at build"
            } else {
                "Nothing to compare with"
            },
            lineage.unchecked.as_deref().unwrap_or("no reason recorded")
        )),
    }
    if !lineage.findings.is_empty() {
        p.warn(&format!(
            "Findings recorded at build: {} (docs/lint.md)",
            crate::ops::analysis::summary(&lineage.findings)
        ));
        // The destructive ones by name, a few at most: the manifest (JSON
        // output) and `squizzle lint` have them all.
        const SHOWN: usize = 5;
        let destructive: Vec<_> = lineage
            .findings
            .iter()
            .filter(|f| f.category == "destructive")
            .collect();
        for f in destructive.iter().take(SHOWN) {
            p.warn(&format!(
                "  {}:{}: {} [{}]",
                f.path, f.line, f.message, f.id
            ));
        }
        if destructive.len() > SHOWN {
            p.warn(&format!(
                "  and {} more destructive (--output json lists every finding)",
                destructive.len() - SHOWN
            ));
        }
    }
    for a in &lineage.allowed_findings {
        p.info(&format!(
            "Finding allowed at build: {} in {}; reason: {} (a deny policy lets it through)",
            a.id, a.path, a.reason
        ));
    }
}

/// The exit code of a drift check: 13 for drift, 12 when nothing was
/// recorded to compare with, else 0 (`drift`; `status --drift` uses 13 only).
pub fn drift_exit(check: &crate::ops::run::fingerprint::DriftCheck) -> ExitCode {
    use crate::ops::run::fingerprint::DriftOutcome;
    match check.outcome {
        DriftOutcome::NoDrift => ExitCode::Ok,
        DriftOutcome::Drift => ExitCode::SchemaDrift,
        DriftOutcome::NoFingerprint => ExitCode::NotFound,
    }
}

/// A drift check as text (used by drift and status --drift): what was
/// compared, then every object added, removed or changed.
pub fn print_drift(p: &Printer, check: &crate::ops::run::fingerprint::DriftCheck) {
    use crate::ops::run::fingerprint::DriftOutcome;
    let scope = match &check.schemas {
        None => "every user schema".to_owned(),
        Some(s) => format!("schema {}", s.join(", ")),
    };
    if let Some(h) = &check.lock_holder {
        p.warn(&format!(
            "The migration lock is held by {h}: differences may be that run's work in progress"
        ));
    }
    let Some(release) = &check.release.as_ref().filter(|_| check.reason.is_none()) else {
        p.fail(&format!(
            "Cannot check drift: {}",
            check.reason.as_deref().unwrap_or("nothing recorded")
        ));
        return;
    };
    p.info(&format!(
        "Compared {scope} ({}) with the fingerprint recorded by {} {} (release row {}, {})",
        super::output::count(check.live_objects, "live object"),
        release.operation,
        release.version,
        release.release_id,
        check.recorded_at.as_deref().unwrap_or("?")
    ));
    if check.outcome == DriftOutcome::NoDrift {
        p.ok(&format!(
            "No drift: the live schema is what {} {} left ({})",
            release.operation, release.version, check.live_sha256
        ));
        return;
    }
    p.fail(&format!(
        "Drift: {} changed out of band since {} {}",
        super::output::count(check.diff.len(), "object"),
        release.operation,
        release.version
    ));
    for o in &check.diff.added {
        p.fail_detail(&format!(
            "added    {} {}.{}: {}",
            o.kind, o.schema, o.name, o.definition
        ));
    }
    for o in &check.diff.removed {
        p.fail_detail(&format!(
            "removed  {} {}.{}: {}",
            o.kind, o.schema, o.name, o.definition
        ));
    }
    for c in &check.diff.changed {
        p.fail_detail(&format!("changed  {} {}.{}", c.kind, c.schema, c.name));
        p.fail_detail(&format!("  recorded: {}", c.recorded));
        p.fail_detail(&format!("  live:     {}", c.live));
    }
}
