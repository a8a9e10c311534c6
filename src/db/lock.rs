//! The migration lock: a PostgreSQL session-level advisory lock, taken by
//! polling `pg_try_advisory_lock` with capped, jittered backoff.
//!
//! Why polling and not `pg_advisory_lock`: a session blocked inside
//! `pg_advisory_lock` is an open transaction, and `CREATE INDEX CONCURRENTLY`
//! run by the lock holder waits for every open transaction to end — a deadlock.
//! A failed try-lock returns at once and holds nothing. The lock belongs to the
//! connection that migrates, so it vanishes with that connection if squizzle dies.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_postgres::Client;

use super::{DbError, Ident};
use crate::core::digest::Digest;

/// First key of every squizzle lock: "SQZL".
const NAMESPACE: i32 = 0x5351_5A4C;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockKey {
    pub class: i32,
    pub object: i32,
}

/// One lock per history schema: two squizzles guarding different histories in
/// one database do not block each other.
pub fn key_for(schema: &Ident) -> LockKey {
    let d = Digest::of(format!("squizzle-migration-lock:{}", schema.name()).as_bytes());
    let b = d.as_bytes();
    let object = i32::from_be_bytes([b[0] & 0x7f, b[1], b[2], b[3]]);
    LockKey {
        class: NAMESPACE,
        object,
    }
}

/// Who holds the lock, from `pg_locks` and `pg_stat_activity`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LockHolder {
    pub pid: i32,
    pub application_name: Option<String>,
    pub user: Option<String>,
    pub client_addr: Option<String>,
    pub backend_start: Option<String>,
    pub state: Option<String>,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {}", self.pid)?;
        if let Some(a) = self.application_name.as_deref().filter(|a| !a.is_empty()) {
            write!(f, " ({a})")?;
        }
        if let Some(u) = &self.user {
            write!(f, " as {u}")?;
        }
        match &self.client_addr {
            Some(c) => write!(f, " from {c}")?,
            None => write!(f, " via a local socket")?,
        }
        if let Some(s) = &self.backend_start {
            write!(f, ", connected since {s}")?;
        }
        Ok(())
    }
}

pub async fn try_lock(client: &Client, key: LockKey) -> Result<bool, DbError> {
    let row = client
        .query_one(
            "SELECT pg_try_advisory_lock($1, $2)",
            &[&key.class, &key.object],
        )
        .await
        .map_err(|e| DbError::query("taking the migration lock", e))?;
    Ok(row.get(0))
}

pub async fn unlock(client: &Client, key: LockKey) -> Result<(), DbError> {
    client
        .execute(
            "SELECT pg_advisory_unlock($1, $2)",
            &[&key.class, &key.object],
        )
        .await
        .map_err(|e| DbError::query("releasing the migration lock", e))?;
    Ok(())
}

pub async fn holder(client: &Client, key: LockKey) -> Result<Option<LockHolder>, DbError> {
    let rows = client
        .query(
            "SELECT a.pid, a.application_name, a.usename::text, host(a.client_addr), \
                    to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), a.state \
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted \
               AND l.classid::bigint = $1 AND l.objid::bigint = $2 AND l.objsubid = 2 \
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[&i64::from(key.class), &i64::from(key.object)],
        )
        .await
        .map_err(|e| DbError::query("looking up the lock holder", e))?;
    Ok(rows.first().map(|r| LockHolder {
        pid: r.get(0),
        application_name: r.get(1),
        user: r.get(2),
        client_addr: r.get(3),
        backend_start: r.get(4),
        state: r.get(5),
    }))
}

/// Polls the try-lock until it succeeds or `timeout` passes; on timeout the
/// error names the holder. `on_wait` is called once, when the first try fails.
pub async fn acquire(
    client: &Client,
    key: LockKey,
    timeout: Duration,
    mut on_wait: impl FnMut(Option<&LockHolder>),
) -> Result<(), DbError> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(25);
    let mut told = false;
    loop {
        if try_lock(client, key).await? {
            return Ok(());
        }
        if !told {
            told = true;
            on_wait(holder(client, key).await?.as_ref());
        }
        let waited = start.elapsed();
        if waited >= timeout {
            let holder = holder(client, key).await?;
            return Err(DbError::LockTimeout {
                waited_s: waited.as_secs_f64(),
                holder: holder.map_or_else(
                    || "a session that released it just now".into(),
                    |h| h.to_string(),
                ),
            });
        }
        let jittered = jitter(delay);
        tokio::time::sleep(jittered.min(timeout.saturating_sub(waited))).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

/// ±25 % jitter so a crowd of waiting deploy jobs does not poll in lockstep.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    let seed = u64::from(nanos) ^ u64::from(std::process::id()).rotate_left(17);
    let frac = (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as f64 / (1u64 << 24) as f64; // [0,1)
    scale(d, frac)
}

/// `d` scaled into [0.75·d, 1.25·d) by `frac` in [0, 1).
fn scale(d: Duration, frac: f64) -> Duration {
    d.mul_f64(0.75 + 0.5 * frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_positive_and_per_schema() {
        let a = key_for(&Ident::new("squizzle").unwrap());
        let b = key_for(&Ident::new("other").unwrap());
        assert_eq!(a, key_for(&Ident::new("squizzle").unwrap()));
        assert_ne!(a.object, b.object);
        assert!(a.object >= 0 && a.class > 0);
    }

    #[test]
    fn jitter_stays_within_a_quarter() {
        // The bounds are exact Durations: a 10 ms base may legitimately give
        // 12.5 ms, which whole milliseconds cannot express.
        let base = Duration::from_millis(10);
        assert_eq!(scale(base, 0.0), Duration::from_micros(7_500));
        assert_eq!(scale(base, 0.5), base);
        assert!(scale(base, 0.999_999) < Duration::from_micros(12_500));
        for ms in [10u64, 100, 1000] {
            let base = Duration::from_millis(ms);
            for _ in 0..1000 {
                let d = jitter(base);
                assert!(
                    d >= base.mul_f64(0.75) && d <= base.mul_f64(1.25),
                    "{d:?} for {base:?}"
                );
            }
        }
    }
}
