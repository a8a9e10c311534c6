//! `lint`: the findings of `analysis` on the migrations a change adds or
//! edits since the previous release (found as `build` finds it), for pull
//! requests. Migrations the previous release shipped unchanged are not
//! analysed again, and the tables they created count as existing (so an index
//! on one is a blocking finding). Without a previous release, every
//! migration is analysed. Nothing is stored, except that a previous release
//! pulled from the registry lands in the local store, digest-checked.

use std::collections::HashMap;

use serde::Serialize;

use crate::config::Config;
use crate::core::manifest::PreviousRelease;
use crate::core::version::Version;
use crate::ops::Result;
use crate::ops::analysis::{self, Category, Finding};
use crate::ops::lineage::{self, Previous, PreviousChoice};

/// The version of the JSON document (`schemas/lint.v1.schema.json`).
pub const LINT_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Default)]
pub struct LintOptions {
    pub version: Option<Version>,
    pub previous: PreviousChoice,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LintReport {
    pub schema_version: u32,
    /// The release compared with; its unchanged migrations were skipped.
    pub previous: Option<PreviousRelease>,
    /// Why there was none (every migration analysed).
    pub unchecked: Option<String>,
    /// Migrations analysed (new or edited since `previous`).
    pub analysed: Vec<String>,
    pub findings: Vec<Finding>,
    /// `--deny`, when given: the categories and ids that fail the lint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deny: Option<Vec<String>>,
    /// How many findings `deny` names (exit 9 when more than 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denied: Option<usize>,
}

pub async fn lint(config: &Config, opts: &LintOptions) -> Result<LintReport> {
    let collection = lineage::collect(config)?;
    let packed = lineage::entries_as_built(config, &collection.files)?;
    let previous = lineage::previous::find(config, opts.version.as_ref(), &opts.previous).await?;
    let (released, prev, unchecked) = match &previous {
        Previous::Found {
            release,
            source,
            named,
        } => {
            let released: HashMap<String, crate::core::digest::Digest> = release
                .manifest
                .migrations()
                .map(|f| (f.id.clone(), f.sha256))
                .collect();
            let prev = PreviousRelease {
                version: release.manifest.version.clone(),
                digest: release.digest(),
                found_in: *source,
                named: *named,
            };
            (released, Some(prev), None)
        }
        Previous::None { reason, .. } => (HashMap::new(), None, Some(reason.clone())),
    };
    let (analysed, findings) = analysis::analyse_changed(
        &collection.files,
        &packed.files,
        collection.format,
        &released,
    )?;
    Ok(LintReport {
        schema_version: LINT_SCHEMA_VERSION,
        previous: prev,
        unchecked,
        analysed,
        findings,
        deny: None,
        denied: None,
    })
}

/// The report as SARIF 2.1.0, for GitHub code scanning: one rule per id,
/// one result per finding, located by the file's project-relative path.
pub fn sarif(report: &LintReport) -> serde_json::Value {
    let rules: Vec<serde_json::Value> = analysis::rules()
        .map(|(id, category, what, safe)| {
            serde_json::json!({
                "id": id,
                "shortDescription": { "text": what },
                "help": { "text": safe },
                "defaultConfiguration": { "level": level(category) },
                "properties": { "category": category },
            })
        })
        .collect();
    let results: Vec<serde_json::Value> = report
        .findings
        .iter()
        .map(|f| {
            serde_json::json!({
                "ruleId": f.id,
                "level": level(f.category),
                "message": { "text": format!("{} Safer: {}.", f.message, f.safe) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": f.path },
                        "region": { "startLine": f.line.max(1) },
                    }
                }],
            })
        })
        .collect();
    serde_json::json!({
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{
            "tool": { "driver": {
                "name": "squizzle",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }],
    })
}

fn level(c: Category) -> &'static str {
    match c {
        Category::Destructive => "error",
        Category::Blocking | Category::Incompatible | Category::Concurrency => "warning",
        Category::NotAnalysed => "note",
    }
}
