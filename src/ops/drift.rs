//! `drift`: the live schema of a database (or of some of its schemas)
//! against the fingerprint its last successful apply, baseline or rollback
//! recorded. Read-only: takes no lock, creates nothing.

use serde::Serialize;
use tokio_postgres::types::Type;

use crate::config::{Config, Env};
use crate::db::DbError;
use crate::db::fingerprint::Scope;
use crate::db::history::HistoryStore;
use crate::ops::run::fingerprint::{self, DriftCheck};
use crate::ops::run::session::connect;
use crate::ops::{Error, Result};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftReport {
    pub database: String,
    pub history_schema: String,
    #[serde(flatten)]
    pub check: DriftCheck,
}

/// `schemas` empty: every user schema (except squizzle's history schema).
pub async fn drift(config: &Config, env: &Env, schemas: &[String]) -> Result<DriftReport> {
    if let Some(bad) = schemas.iter().find(|s| s.is_empty()) {
        return Err(Error::Usage(format!(
            "--schema {bad:?}: a schema name cannot be empty"
        )));
    }
    let scope = if schemas.is_empty() {
        crate::ops::run::fingerprint::scope_for(config)
    } else {
        let mut s = schemas.to_vec();
        s.sort();
        s.dedup();
        Scope::Schemas(s)
    };
    let (client, spec) = connect(config, env, "drift", None).await?;
    let envcfg = config.active_environment();
    let history = HistoryStore::new(envcfg.history_schema.as_deref().unwrap_or("squizzle"))?;
    let check = fingerprint::check(&client, &history, &scope).await?;
    if let Scope::Schemas(names) = &scope {
        // A misspelt schema would otherwise compare nothing with nothing and
        // report no drift. One that was dropped out of band is drift (its
        // recorded objects are removed), not a usage error.
        let rows = client
            .query_typed(
                "SELECT nspname::text FROM pg_namespace WHERE nspname = ANY($1)",
                &[(&names, Type::TEXT_ARRAY)],
            )
            .await
            .map_err(|e| Error::Db(DbError::query("looking up the schemas to compare", e)))?;
        let live: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        let unknown: Vec<&str> = names
            .iter()
            .filter(|n| !live.contains(n) && !check.diff.removed.iter().any(|o| &o.schema == *n))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            return Err(Error::Usage(format!(
                "--schema {}: no such schema in {}, and the recorded fingerprint has no objects in it; name a schema the database has (or leave --schema out to compare every user schema)",
                unknown.join(", "),
                spec.target
            )));
        }
    }
    Ok(DriftReport {
        database: spec.target.clone(),
        history_schema: history.schema().name().to_owned(),
        check,
    })
}
