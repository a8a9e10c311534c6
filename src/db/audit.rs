//! Read-only queries for `audit`: the columns of one version's `releases`
//! rows that the history snapshot leaves out (checksum, signer, error
//! details, metadata), keyed by row id to join with the snapshot's rows.
//! Never creates or changes anything; call it only when the history exists.

use std::collections::BTreeMap;

use serde::Serialize;
use tokio_postgres::GenericClient;
use tokio_postgres::types::Type;

use super::DbError;
use super::history::HistoryStore;

/// What a `releases` row records beyond [`super::history::ReleaseSummary`].
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseDetails {
    pub checksum: String,
    pub signer_identity: Option<String>,
    pub signer_issuer: Option<String>,
    pub rekor_log_index: Option<i64>,
    pub error_sqlstate: Option<String>,
    pub failing_migration: Option<String>,
    pub failing_statement: Option<i32>,
    pub failing_line: Option<i32>,
    /// Hostname, tool version, CI run URL, transaction mode, ...
    pub metadata: serde_json::Value,
}

/// The details of every `releases` row recorded for `version`, by row id.
pub async fn details(
    history: &HistoryStore,
    c: &impl GenericClient,
    version: &str,
) -> Result<BTreeMap<i64, ReleaseDetails>, DbError> {
    let rows = c
        .query_typed(
            &format!(
                "SELECT id, checksum, signer_identity, signer_issuer, rekor_log_index, error_sqlstate, \
                        failing_migration, failing_statement, failing_line, metadata \
                 FROM {}.releases WHERE version = $1",
                history.schema()
            ),
            &[(&version, Type::TEXT)],
        )
        .await
        .map_err(|e| DbError::query("reading the release history of the version", e))?;
    Ok(rows
        .iter()
        .map(|r| {
            let d = ReleaseDetails {
                checksum: r.get(1),
                signer_identity: r.get(2),
                signer_issuer: r.get(3),
                rekor_log_index: r.get(4),
                error_sqlstate: r.get(5),
                failing_migration: r.get(6),
                failing_statement: r.get(7),
                failing_line: r.get(8),
                metadata: r.get(9),
            };
            (r.get(0), d)
        })
        .collect())
}
