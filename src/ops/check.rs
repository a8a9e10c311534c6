//! `check`: what `build` would refuse, without building: the history rule
//! against the previous release and the SQL a transaction cannot run, for
//! pull-request CI. Nothing is stored, except that a previous release pulled
//! from the registry lands in the local store (digest-checked), as `pull`
//! would leave it.

use serde::Serialize;

use crate::core::digest::Digest;
use crate::core::manifest::{
    Allowance, ChangeKind, FileKind, FindingAllowance, PreviousRelease, RecordedFinding,
};
use crate::core::version::Version;
use crate::ops::Result;
use crate::ops::lineage::{self, Change, LineageOptions, SqlProblem, SqlProblemKind};

/// The version of the JSON document (`schemas/check.v1.schema.json`).
pub const CHECK_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// The version the change will be released as; `None` compares with the
    /// newest release of all.
    pub version: Option<Version>,
    pub lineage: LineageOptions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ProblemKind {
    Edited,
    Removed,
    Renamed,
    Moved,
    OutOfOrder,
    TransactionControl,
    Concurrently,
    Unreadable,
}

/// One thing `build` would refuse.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    pub kind: ProblemKind,
    /// The migration's id (history problems).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The file as it is now; for `removed` and `renamed`, see `releasedPath`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// 1-based line (SQL problems).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub released_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub released_sha256: Option<Digest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Digest>,
    /// What `build` would say.
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    pub schema_version: u32,
    /// The version checked for, when one was given.
    pub version: Option<String>,
    /// The release compared with.
    pub previous: Option<PreviousRelease>,
    /// Why nothing was compared, when `previous` is null.
    pub unchecked: Option<String>,
    pub migrations: usize,
    /// What `build` would refuse; empty when it would build.
    pub problems: Vec<Problem>,
    /// What the given flags allow (and `build` would record).
    pub allowed: Vec<Allowance>,
    /// The findings `build` would record (docs/lint.md): those of the new
    /// or edited migrations, and those carried over from the previous
    /// release. They do not change `ok`; a deny policy judges them at apply.
    pub findings: Vec<RecordedFinding>,
    /// The finding allowances `build` would record (carried over, and
    /// `--allow ID:FILE`).
    pub allowed_findings: Vec<FindingAllowance>,
    pub ok: bool,
}

impl CheckReport {
    /// The first kind of refusal, as `build` meets them: a SQL problem
    /// (exit 2) before a history problem (exit 5).
    pub fn sql_problem(&self) -> bool {
        self.problems.iter().any(|p| {
            matches!(
                p.kind,
                ProblemKind::TransactionControl
                    | ProblemKind::Concurrently
                    | ProblemKind::Unreadable
            )
        })
    }
}

pub async fn check(config: &crate::config::Config, opts: &CheckOptions) -> Result<CheckReport> {
    let collection = lineage::collect(config)?;
    let packed = lineage::entries_as_built(config, &collection.files)?;
    let mut problems: Vec<Problem> =
        lineage::sql_problems(&collection.files, &packed.files, collection.format)?
            .iter()
            .map(sql_problem)
            .collect();
    let previous =
        lineage::previous::find(config, opts.version.as_ref(), &opts.lineage.previous).await?;
    let review = lineage::review(&previous, &packed.files, &opts.lineage)?;
    if let Some(prev) = &review.previous {
        let prev = prev.version.tag();
        problems.extend(review.refused.iter().map(|c| history_problem(c, &prev)));
    }
    let sql = crate::ops::analysis::for_release(
        &previous,
        &collection.files,
        &packed.files,
        collection.format,
        &opts.lineage.allow_findings,
        opts.lineage.reason.as_deref(),
    )?;
    Ok(CheckReport {
        schema_version: CHECK_SCHEMA_VERSION,
        version: opts.version.as_ref().map(Version::tag),
        previous: review.previous.clone(),
        unchecked: review.unchecked.clone(),
        migrations: packed
            .files
            .iter()
            .filter(|f| f.kind == FileKind::Migration)
            .count(),
        ok: problems.is_empty(),
        problems,
        allowed: review.allowed,
        findings: sql.findings,
        allowed_findings: sql.allowed,
    })
}

fn sql_problem(p: &SqlProblem) -> Problem {
    Problem {
        kind: match p.kind {
            SqlProblemKind::TransactionControl { .. } => ProblemKind::TransactionControl,
            SqlProblemKind::Concurrently { .. } => ProblemKind::Concurrently,
            SqlProblemKind::Unreadable { .. } => ProblemKind::Unreadable,
        },
        id: None,
        path: Some(p.path.clone()),
        line: (p.line > 0).then_some(p.line),
        released_path: None,
        released_sha256: None,
        sha256: None,
        message: p.to_string(),
    }
}

fn history_problem(c: &Change, previous: &str) -> Problem {
    Problem {
        kind: match c.kind {
            ChangeKind::Edited => ProblemKind::Edited,
            ChangeKind::Removed => ProblemKind::Removed,
            ChangeKind::Renamed => ProblemKind::Renamed,
            ChangeKind::Moved => ProblemKind::Moved,
            ChangeKind::OutOfOrder => ProblemKind::OutOfOrder,
        },
        id: Some(c.id.clone()),
        path: c.path.clone(),
        line: None,
        released_path: c.released_path.clone(),
        released_sha256: c.released_sha256,
        sha256: c.sha256,
        message: lineage::describe(c, previous),
    }
}
