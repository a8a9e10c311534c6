//! The targets of a fleet: the configured list, the targets file and the
//! catalog query, turned into connection settings with a stable identity,
//! and the shard of them this run takes.

use std::collections::HashMap;

use sha2::{Digest as _, Sha256};

use crate::config::targets::{FleetSpec, Target, read_file};
use crate::config::{Env, register_url_password};
use crate::core::ident::Ident;
use crate::db::DbError;
use crate::db::connect::ConnectSpec;
use crate::ops::{Error, Result};

/// One database, or one tenant schema in a database, of a fleet.
///
/// Not `Debug`: `url` may carry a password.
#[derive(Clone)]
pub struct FleetTarget {
    /// What the shard hash and the report use: the configured `name`, else
    /// `host:port/db`, with `/schema` for a tenant schema. Never a secret.
    pub identity: String,
    /// `host:port/db` (no user, no password).
    pub database: String,
    pub schema: Option<String>,
    /// Where squizzle's history of this target lives (`None`: the default).
    pub history_schema: Option<String>,
    /// The connection string (secret-bearing: never printed).
    pub url: String,
}

/// `--shard I/N`: the targets whose identity hashes to `I` modulo `N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    pub fn parse(s: &str) -> Result<Shard> {
        let bad = || {
            Error::Usage(format!(
                "--shard {s:?} is not I/N; expected two whole numbers with 0 <= I < N, e.g. --shard 0/4 (Kubernetes: --shard \"$JOB_COMPLETION_INDEX/4\")"
            ))
        };
        let (i, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let index: u64 = i.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// The first 8 bytes of SHA-256 of the identity, big-endian, modulo N:
    /// the same on every machine and in every release of squizzle, and
    /// independent of the order or size of the rest of the fleet.
    pub fn of(identity: &str, count: u64) -> u64 {
        let h = Sha256::digest(identity.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&h[..8]);
        u64::from_be_bytes(first) % count
    }

    pub fn contains(&self, identity: &str) -> bool {
        Self::of(identity, self.count) == self.index
    }
}

/// Every target of `spec`, in order: the listed ones, the file's, the
/// catalog query's. Refuses an empty fleet and two targets with one identity
/// (they would share a lock and a history).
pub async fn resolve(spec: &FleetSpec, env: &Env, env_name: &str) -> Result<Vec<FleetTarget>> {
    let mut configured: Vec<(String, Target)> = spec
        .listed
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("environments.{env_name}.targets[{i}]"), t.clone()))
        .collect();
    if let Some(file) = &spec.file {
        for (i, t) in read_file(file, env)?.into_iter().enumerate() {
            configured.push((format!("{} entry {}", file.display(), i + 1), t));
        }
    }
    if let Some(sql) = &spec.query {
        configured.extend(query(spec, sql, env, env_name).await?);
    }
    let mut out = Vec::with_capacity(configured.len());
    let mut seen: HashMap<String, String> = HashMap::new();
    for (origin, t) in configured {
        let target = to_target(spec, &t, env, env_name, &origin)?;
        if let Some(first) = seen.insert(target.identity.clone(), origin.clone()) {
            return Err(Error::Usage(format!(
                "{origin} and {first} are the same target ({}); list each database or schema once",
                target.identity
            )));
        }
        out.push(target);
    }
    if out.is_empty() {
        return Err(Error::Usage(format!(
            "environment {env_name} names a fleet, but it has no targets (its list, file and query gave none); add targets or check the catalog query"
        )));
    }
    Ok(out)
}

fn to_target(
    spec: &FleetSpec,
    t: &Target,
    env: &Env,
    env_name: &str,
    origin: &str,
) -> Result<FleetTarget> {
    let url = match (&t.database_url, &spec.database_url) {
        (Some(u), _) | (None, Some(u)) => u.clone(),
        (None, None) => {
            return Err(Error::Usage(format!(
                "{origin} is a tenant schema, but environment {env_name} has no database_url to find it in; set `environments.{env_name}.database_url`, or give the target its own database_url"
            )));
        }
    };
    let parsed =
        ConnectSpec::parse(Some(&url), env).map_err(|e| Error::Usage(format!("{origin}: {e}")))?;
    let database = parsed
        .target
        .rsplit_once('@')
        .map_or(parsed.target.as_str(), |(_, rest)| rest)
        .to_owned();
    let history_schema = match &t.schema {
        Some(s) => Some(
            spec.tenant_history_schema(s)
                .map_err(|m| Error::Usage(format!("{origin}: {m}")))?,
        ),
        None => spec.history_schema.clone(),
    };
    let identity = match (&t.name, &t.schema) {
        (Some(n), _) => n.clone(),
        (None, Some(s)) => format!("{database}/{s}"),
        (None, None) => database.clone(),
    };
    Ok(FleetTarget {
        identity,
        database,
        schema: t.schema.clone(),
        history_schema,
        url,
    })
}

/// The catalog query's rows: the first column a connection string (it has
/// `://` or `=`) or a tenant schema name, the optional second a name.
async fn query(
    spec: &FleetSpec,
    sql: &str,
    env: &Env,
    env_name: &str,
) -> Result<Vec<(String, Target)>> {
    let url = spec.catalog_url.as_deref().ok_or_else(|| {
        Error::Usage(format!(
            "environment {env_name} has a targets_query but no catalog_url or database_url to run it against"
        ))
    })?;
    let client = ConnectSpec::parse(Some(url), env)?.connect().await?;
    let messages = client
        .simple_query(sql)
        .await
        .map_err(|e| DbError::query(format!("running environments.{env_name}.targets_query"), e))?;
    let mut out = Vec::new();
    for m in messages {
        let tokio_postgres::SimpleQueryMessage::Row(row) = m else {
            continue;
        };
        let n = out.len() + 1;
        let origin = format!("row {n} of environments.{env_name}.targets_query");
        let first = row.get(0).map(str::trim).unwrap_or_default();
        let name = if row.len() > 1 {
            row.get(1).map(str::to_owned)
        } else {
            None
        };
        if first.is_empty() {
            return Err(Error::Usage(format!(
                "{origin} is empty; the first column must be a connection string or a schema name"
            )));
        }
        let target = if first.contains("://") || first.contains('=') {
            register_url_password(first);
            Target {
                name,
                database_url: Some(first.to_owned()),
                schema: None,
            }
        } else {
            // The value is not echoed: a malformed connection string may hold a password.
            Ident::new(first).map_err(|_| {
                Error::Usage(format!(
                    "{origin} is neither a connection string (postgres://...) nor a schema name (lowercase letters, digits, '_')"
                ))
            })?;
            Target {
                name,
                database_url: None,
                schema: Some(first.to_owned()),
            }
        };
        out.push((origin, target));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_is_parsed_strictly() {
        assert_eq!(Shard::parse("1/4").unwrap(), Shard { index: 1, count: 4 });
        for bad in ["4/4", "1", "a/2", "0/0", "-1/2", "1/2/3"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shards_partition_any_fleet_and_do_not_depend_on_its_order() {
        let ids: Vec<String> = (0..200).map(|i| format!("db{i}:5432/app")).collect();
        for n in 1..6 {
            let mut seen = 0;
            for i in 0..n {
                let s = Shard { index: i, count: n };
                seen += ids.iter().filter(|id| s.contains(id)).count();
            }
            assert_eq!(seen, ids.len());
        }
        // Frozen: the documented hash must not change between releases
        // (computed independently: python3 hashlib.sha256(b"eu-1"), first 8
        // bytes big-endian, % 1000).
        assert_eq!(Shard::of("eu-1", 1000), 571);
        let spread: std::collections::HashSet<u64> =
            ids.iter().map(|id| Shard::of(id, 4)).collect();
        assert_eq!(spread.len(), 4, "200 targets land in every one of 4 shards");
    }
}
