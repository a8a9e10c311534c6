//! The migration lock: a transaction-scoped advisory lock, held by an open,
//! idle transaction on a connection of its own for as long as a run lasts.
//!
//! Why a transaction and not a session lock: behind a transaction pooler
//! (PgBouncer `pool_mode = transaction`) a session lock stays on the pooled
//! server connection when its transaction ends; the next client handed that
//! connection "holds" it too, and when squizzle dies nobody releases it. An
//! open transaction keeps its server connection to itself, directly, through
//! session pooling and through transaction pooling alike, and ends with the
//! client: PostgreSQL (or the pooler, which closes a server connection whose
//! client left mid-transaction) rolls it back, and the lock is gone.
//!
//! The transaction keeps no snapshot once the lock statement is done (it is
//! sent as a simple query: an extended-protocol portal would keep one), so
//! the migrating connection's `CREATE INDEX CONCURRENTLY` does not wait for it.
//!
//! Waiting is polling `pg_try_advisory_xact_lock` with capped, jittered
//! backoff, each try in a short transaction, and the waiting connection is
//! closed between tries: a blocked `pg_advisory_lock` would be a statement
//! with a snapshot (which a concurrent index build waits for), and a waiter
//! that kept its connection would keep a session-pooled server connection the
//! holder may need.
//!
//! squizzle versions that took a session lock use the same key, so old and
//! new appliers still exclude each other.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_postgres::Client;
use tokio_postgres::types::Type;

use super::connect::ConnectSpec;
use super::{DbError, Ident};
use crate::core::digest::Digest;

/// First key of every squizzle lock: "SQZL".
const NAMESPACE: i32 = 0x5351_5A4C;
/// First key of the work lock: "SQZW".
const WORK_NAMESPACE: i32 = 0x5351_5A57;

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

/// The work lock of the history in `schema`: every migrating transaction
/// holds it (shared) while it runs. The migration lock lives on a connection
/// of its own, so when squizzle is killed it ends at once, while a statement
/// its migrating connection had sent may still be running on the server
/// (PostgreSQL notices a vanished client only when it next writes to it).
/// The next holder of the migration lock waits until nobody holds the work
/// lock before it runs anything: an earlier run's transaction has then
/// committed or rolled back.
pub fn work_key_for(schema: &Ident) -> LockKey {
    LockKey {
        class: WORK_NAMESPACE,
        object: key_for(schema).object,
    }
}

/// `BEGIN` of a migrating transaction, holding the work lock (shared: a run's
/// transactions never wait for each other) until the transaction ends.
pub fn begin_work_sql(work: LockKey) -> String {
    format!(
        "BEGIN; SELECT pg_advisory_xact_lock_shared({}, {})",
        work.class, work.object
    )
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

/// The held lock: its connection, inside the transaction that holds it.
pub struct MigrationLock {
    client: Client,
    work: LockKey,
}

impl MigrationLock {
    /// `BEGIN` of a transaction of this run: see [`work_key_for`].
    pub fn begin_sql(&self) -> String {
        begin_work_sql(self.work)
    }

    /// Fails when the lock's connection has ended (and so the lock with it):
    /// checked before anything is committed or run outside a transaction.
    pub fn check(&self, during: impl Into<String>) -> Result<(), DbError> {
        if self.client.is_closed() {
            return Err(DbError::LockLost {
                during: during.into(),
                message: "the connection holding it was closed".into(),
            });
        }
        Ok(())
    }

    /// Ends the transaction, and with it the lock. Best effort: closing the
    /// connection (dropping this) ends it too.
    pub async fn release(self) {
        let _ = self.client.batch_execute("ROLLBACK").await;
    }
}

/// One try on `client`: `Some(lock)` inside an open transaction when it was
/// free; otherwise the transaction is rolled back and the client handed back.
async fn try_lock(
    client: Client,
    key: LockKey,
    work: LockKey,
) -> Result<Result<MigrationLock, Client>, DbError> {
    // One simple-query message: the extended protocol would leave its
    // finished portal, and with it a snapshot, open in the transaction, and
    // a concurrent index build on the migrating connection waits for every
    // snapshot older than its own. No idle-in-transaction timeout may end
    // the lock's transaction while a long statement runs elsewhere.
    let messages = client
        .simple_query(&format!(
            "BEGIN; SET LOCAL idle_in_transaction_session_timeout = 0; \
             SELECT pg_try_advisory_xact_lock({}, {})",
            key.class, key.object
        ))
        .await
        .map_err(|e| DbError::query("taking the migration lock", e))?;
    let got = messages.iter().any(
        |m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(row) if row.get(0) == Some("t")),
    );
    if got {
        return Ok(Ok(MigrationLock { client, work }));
    }
    client
        .batch_execute("ROLLBACK")
        .await
        .map_err(|e| DbError::query("taking the migration lock", e))?;
    Ok(Err(client))
}

pub async fn holder(client: &Client, key: LockKey) -> Result<Option<LockHolder>, DbError> {
    let rows = client
        .query_typed(
            "SELECT a.pid, a.application_name, a.usename::text, host(a.client_addr), \
                    to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), a.state \
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted \
               AND l.classid::bigint = $1 AND l.objid::bigint = $2 AND l.objsubid = 2 \
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[
                (&i64::from(key.class), Type::INT8),
                (&i64::from(key.object), Type::INT8),
            ],
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

/// Whether nobody holds `work` now: an exclusive session lock taken and
/// released in one statement, on the lock's connection (inside its
/// transaction, so a pooler cannot move the unlock elsewhere).
async fn work_is_idle(client: &Client, work: LockKey) -> Result<bool, DbError> {
    let messages = client
        .simple_query(&format!(
            "SELECT CASE WHEN pg_try_advisory_lock({0}, {1}) THEN pg_advisory_unlock({0}, {1}) ELSE false END",
            work.class, work.object
        ))
        .await
        .map_err(|e| DbError::query("checking for statements of an earlier run", e))?;
    Ok(messages.iter().any(
        |m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(row) if row.get(0) == Some("t")),
    ))
}

/// Polls for the lock until it is taken or `timeout` passes; on timeout the
/// error names the holder. The first try is made on `client`, each later one
/// on a new connection made with `spec`. `on_wait` is called once, when the
/// first try fails.
pub async fn acquire(
    mut client: Client,
    spec: &ConnectSpec,
    key: LockKey,
    work: LockKey,
    timeout: Duration,
    mut on_wait: impl FnMut(Option<&LockHolder>),
) -> Result<MigrationLock, DbError> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(25);
    let mut told = false;
    let mut attempt = 1u32;
    loop {
        let c = match try_lock(client, key, work).await? {
            Ok(lock) => {
                tracing::debug!(
                    attempt,
                    waited_ms = start.elapsed().as_millis() as u64,
                    "migration lock taken"
                );
                return wait_for_work(lock, work, start, timeout, &mut on_wait).await;
            }
            Err(c) => c,
        };
        tracing::debug!(attempt, "migration lock held by another session; waiting");
        attempt += 1;
        if !told {
            told = true;
            on_wait(holder(&c, key).await?.as_ref());
        }
        let waited = start.elapsed();
        if waited >= timeout {
            let holder = holder(&c, key).await?;
            return Err(DbError::LockTimeout {
                waited_s: waited.as_secs_f64(),
                holder: holder.map_or_else(
                    || "a session that released it just now".into(),
                    |h| h.to_string(),
                ),
            });
        }
        drop(c);
        let jittered = jitter(delay);
        tokio::time::sleep(jittered.min(timeout.saturating_sub(waited))).await;
        delay = (delay * 2).min(Duration::from_secs(1));
        client = spec.connect().await?;
    }
}

/// With the migration lock held, waits (within what is left of `timeout`)
/// until no transaction of an earlier run holds the work lock.
async fn wait_for_work(
    lock: MigrationLock,
    work: LockKey,
    start: Instant,
    timeout: Duration,
    on_wait: &mut impl FnMut(Option<&LockHolder>),
) -> Result<MigrationLock, DbError> {
    let mut delay = Duration::from_millis(10);
    let mut told = false;
    loop {
        if work_is_idle(&lock.client, work).await? {
            return Ok(lock);
        }
        tracing::debug!("a statement of an earlier run still holds the work lock; waiting");
        if !told {
            told = true;
            on_wait(holder(&lock.client, work).await?.as_ref());
        }
        let waited = start.elapsed();
        if waited >= timeout {
            let holder = holder(&lock.client, work).await?;
            return Err(DbError::LockTimeout {
                waited_s: waited.as_secs_f64(),
                holder: holder.map_or_else(
                    || "a session that released it just now".into(),
                    |h| format!("{h}, still running a statement of an earlier run"),
                ),
            });
        }
        tokio::time::sleep(jitter(delay).min(timeout.saturating_sub(waited))).await;
        delay = (delay * 2).min(Duration::from_millis(500));
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
