//! `squizzle list`

use clap::Args;

use super::Context;
use super::runtime::runtime;
use crate::core::exit::ExitCode;
use crate::ops;

#[derive(Debug, Args)]
#[command(
    about = "List the versions in the registry (or the local store), oldest first",
    after_help = "With a registry configured ([registry] url or SQUIZZLE_REGISTRY) the registry's \
                  tags are listed, oldest first by semver, with markers from each release's \
                  referrers: signed (Sigstore bundle), provenance (SLSA), revoked. Without one, \
                  or when it cannot be reached (with a warning), the local store is listed.\n\n\
                  Examples:\n  squizzle list\n  squizzle list --output json"
)]
pub struct ListArgs {
    #[command(flatten)]
    registry: super::args::RegistryArgs,
}

pub fn exec(ctx: &Context, args: ListArgs) -> Result<ExitCode, ops::Error> {
    let config = ctx.registry_config(&args.registry)?;
    let report = runtime()?.block_on(ops::list::list_any(&config))?;
    let p = &ctx.printer;
    if let Some(w) = &report.warning {
        p.warn(w);
    }
    if p.is_json() {
        p.report(&report);
        return Ok(ExitCode::Ok);
    }
    if report.versions.is_empty() {
        match &report.registry {
            Some(r) => p.line(&format!(
                "No versions in the registry {r} yet; run `squizzle push <version>`"
            )),
            None if !config.has_file() => p.line(&format!(
                "No versions in {} (squizzle's cache: there is no squizzle.toml here); set SQUIZZLE_REGISTRY=host/repository to list a registry, or run `squizzle init` in a project",
                report.store.display()
            )),
            None => p.line(&format!(
                "No versions in {} yet; run `squizzle build <version>`",
                report.store.display()
            )),
        }
        for t in &report.other_tags {
            p.warn(&format!("tag {t:?} is not a version; squizzle ignores it"));
        }
        return Ok(ExitCode::Ok);
    }
    let width = report
        .versions
        .iter()
        .map(|v| v.version.len())
        .max()
        .unwrap_or(7)
        .max(7);
    p.line(&format!(
        "{:<width$}  {:<19}  {:<20}  {:>10}  {:<25}  NOTES",
        "VERSION", "DIGEST", "CREATED", "MIGRATIONS", "MARKERS"
    ));
    for v in &report.versions {
        match &v.problem {
            None => p.line(&format!(
                "{:<width$}  {:<19}  {:<20}  {:>10}  {:<25}  {}",
                v.version,
                v.digest.short(),
                v.created_at.as_deref().unwrap_or("-"),
                v.migrations.map_or("-".into(), |n| n.to_string()),
                markers(v),
                v.notes
                    .as_deref()
                    .and_then(|n| n.lines().next())
                    .unwrap_or("")
            )),
            Some(problem) => p.fail(&format!(
                "{:<width$}  {}  unreadable: {problem}",
                v.version,
                v.digest.short()
            )),
        }
    }
    for t in &report.other_tags {
        p.warn(&format!("tag {t:?} is not a version; squizzle ignores it"));
    }
    if let Some(r) = &report.registry {
        p.info(&format!("from the registry {r}"));
    }
    Ok(ExitCode::Ok)
}

/// `signed,provenance,revoked` (those that apply), or `-`.
fn markers(v: &ops::list::ListedVersion) -> String {
    let set: Vec<&str> = [
        (v.signed, "signed"),
        (v.provenance, "provenance"),
        (v.revoked, "revoked"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    if set.is_empty() {
        "-".into()
    } else {
        set.join(",")
    }
}
