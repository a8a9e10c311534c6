//! squizzle's own tables, in their own schema (default `squizzle`):
//!
//! - `layout`: the version of this table layout, so later squizzles can upgrade
//!   it in place (and refuse to write a layout newer than they know).
//! - `releases`: append-only, one row per apply/baseline/rollback attempt,
//!   failures included. There is no unique constraint on version: a failed
//!   attempt must never block a later success. A trigger refuses UPDATE/DELETE.
//! - `migrations`: one row per migration currently applied (or, for a file run
//!   outside a transaction, in progress: `statements_done` lets a re-run resume).
//!   A rollback deletes the rows of the migrations it undid, so they are pending
//!   again; its `releases` row lists them (`metadata.rolledBack`).
//! - `fingerprints` (layout 2): the schema objects as a successful apply,
//!   baseline or rollback left them (`db::fingerprint`), one row per release
//!   row (`release_id` = `releases.id`; no foreign key, so that a TRUNCATE of
//!   `releases` still meets the append-only trigger, not a constraint), so
//!   `drift` can compare the live catalog with it. A layout 1 history
//!   gains the table the next time an apply (or baseline, rollback) runs.
//!
//! Creation and upgrades must run under the migration lock.
//!
//! Every statement here is sent unnamed (`query_typed`, or the simple
//! protocol): a named prepared statement outlives its transaction on the
//! server connection, which a transaction pooler such as PgBouncer hands to
//! another client in between.

use std::collections::BTreeMap;

use futures_util::TryStreamExt as _;
use serde::Serialize;
use tokio_postgres::GenericClient;
use tokio_postgres::types::{ToSql, Type};

use super::fingerprint::{self, Fingerprint, Object, Scope};
use super::{DbError, Ident};

pub const LAYOUT_VERSION: i32 = 2;

const TS: &str = "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'";

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedMigration {
    pub id: String,
    pub path: String,
    pub sha256: String,
    pub version: String,
    pub applied_at: String,
    pub duration_ms: i64,
    pub statements_done: i32,
    pub statements_total: i32,
    pub complete: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseSummary {
    pub id: i64,
    pub version: String,
    pub operation: String,
    pub artifact_digest: String,
    pub success: bool,
    pub applied_at: String,
    pub applied_by_role: String,
    pub applied_by_os_user: Option<String>,
    pub ci_identity: Option<String>,
    pub migrations_run: i32,
    pub execution_ms: i64,
    pub error_message: Option<String>,
}

/// What the database has recorded.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    /// False when the history schema does not exist yet.
    pub exists: bool,
    pub migrations: BTreeMap<String, AppliedMigration>,
    /// Oldest first.
    pub releases: Vec<ReleaseSummary>,
}

/// One row of `releases`.
#[derive(Debug, Clone, Default)]
pub struct ReleaseRecord {
    pub version: String,
    pub operation: &'static str,
    pub artifact_digest: String,
    pub checksum: String,
    pub success: bool,
    pub execution_ms: i64,
    pub applied_by_os_user: Option<String>,
    pub ci_identity: Option<String>,
    pub signer_identity: Option<String>,
    pub signer_issuer: Option<String>,
    pub rekor_log_index: Option<i64>,
    pub migrations_run: i32,
    pub error_sqlstate: Option<String>,
    pub error_message: Option<String>,
    pub failing_migration: Option<String>,
    pub failing_statement: Option<i32>,
    pub failing_line: Option<i32>,
    pub metadata: serde_json::Value,
}

/// One row of `migrations`.
#[derive(Debug, Clone)]
pub struct MigrationRecord<'a> {
    pub id: &'a str,
    pub path: &'a str,
    pub sha256: &'a str,
    pub version: &'a str,
    pub duration_ms: i64,
    pub statements_done: i32,
    pub statements_total: i32,
    pub complete: bool,
}

/// The release row a fingerprint belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedRelease {
    pub release_id: i64,
    pub version: String,
    pub operation: String,
    pub applied_at: String,
}

/// What the history says about the schema fingerprint.
#[derive(Debug, Clone)]
pub enum Recorded {
    /// There is no squizzle history in this database.
    NoHistory,
    /// The history has no successful release row.
    NoRelease,
    /// The newest successful release row has no fingerprint (written by a
    /// squizzle before fingerprints, or recording it failed).
    Missing(RecordedRelease),
    Found {
        release: RecordedRelease,
        recorded_at: String,
        fingerprint_version: i32,
        fingerprint: Fingerprint,
    },
}

#[derive(Debug, Clone)]
pub struct HistoryStore {
    schema: Ident,
}

/// A query error, with the missing privilege named when that is what it is.
fn q<'a>(schema: &'a Ident, during: &'a str) -> impl FnOnce(tokio_postgres::Error) -> DbError + 'a {
    move |e| {
        if e.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) {
            return DbError::Privilege {
                during: during.to_owned(),
                message: super::describe(&e),
                schema: schema.to_string(),
            };
        }
        DbError::query(during, e)
    }
}

impl HistoryStore {
    pub fn new(schema: &str) -> Result<Self, DbError> {
        Ok(Self {
            schema: Ident::new(schema)?,
        })
    }

    pub fn schema(&self) -> &Ident {
        &self.schema
    }

    /// The layout version recorded, or `None` when there is no history yet.
    pub async fn layout_version(&self, c: &impl GenericClient) -> Result<Option<i32>, DbError> {
        let row = c
            .query_typed_one(
                "SELECT to_regclass($1)::text",
                &[(&format!("{}.layout", self.schema), Type::TEXT)],
            )
            .await
            .map_err(q(&self.schema, "reading squizzle's history layout"))?;
        if row.get::<_, Option<String>>(0).is_none() {
            return Ok(None);
        }
        let row = c
            .query_typed_one(
                &format!("SELECT max(version) FROM {}.layout", self.schema),
                &[],
            )
            .await
            .map_err(q(&self.schema, "reading squizzle's history layout"))?;
        Ok(row.get::<_, Option<i32>>(0))
    }

    /// Creates the schema and tables, or upgrades an older layout. Call it
    /// while holding the migration lock. Works for a role that owns the schema
    /// (or may create it) and has no other privileges.
    pub async fn ensure(&self, c: &impl GenericClient) -> Result<(), DbError> {
        match self.layout_version(c).await? {
            Some(v) if v == LAYOUT_VERSION => return Ok(()),
            Some(v) if v > LAYOUT_VERSION => {
                return Err(DbError::LayoutTooNew {
                    schema: self.schema.name().into(),
                    found: v,
                    supported: LAYOUT_VERSION,
                });
            }
            _ => {}
        }
        // Check first: `CREATE SCHEMA IF NOT EXISTS` demands CREATE on the
        // database even when the schema exists, which a least-privilege role lacks.
        let exists: bool = c
            .query_typed_one(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
                &[(&self.schema.name(), Type::TEXT)],
            )
            .await
            .map_err(q(&self.schema, "looking for squizzle's history schema"))?
            .get(0);
        if !exists {
            c.batch_execute(&format!("CREATE SCHEMA {}", self.schema))
                .await
                .map_err(q(&self.schema, "creating squizzle's history schema (the role needs CREATE on the database, or create the schema for it)"))?;
        }
        let s = &self.schema;
        let ddl = format!(
            r#"
CREATE TABLE IF NOT EXISTS {s}.layout (
    version integer NOT NULL,
    upgraded_at timestamptz NOT NULL DEFAULT now(),
    tool_version text NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.releases (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version text NOT NULL,
    operation text NOT NULL CHECK (operation IN ('apply', 'baseline', 'rollback')),
    artifact_digest text NOT NULL,
    checksum text NOT NULL,
    success boolean NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    execution_ms bigint NOT NULL,
    applied_by_role text NOT NULL DEFAULT current_user,
    applied_by_os_user text,
    ci_identity text,
    signer_identity text,
    signer_issuer text,
    rekor_log_index bigint,
    migrations_run integer NOT NULL DEFAULT 0,
    error_sqlstate text,
    error_message text,
    failing_migration text,
    failing_statement integer,
    failing_line integer,
    metadata jsonb NOT NULL DEFAULT '{{}}'
);
CREATE INDEX IF NOT EXISTS releases_version_idx ON {s}.releases (version);
CREATE TABLE IF NOT EXISTS {s}.migrations (
    migration_id text PRIMARY KEY,
    path text NOT NULL,
    sha256 text NOT NULL,
    version text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    duration_ms bigint NOT NULL,
    statements_done integer NOT NULL,
    statements_total integer NOT NULL,
    complete boolean NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.fingerprints (
    release_id bigint PRIMARY KEY,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    fingerprint_version integer NOT NULL,
    sha256 text NOT NULL,
    object_count integer NOT NULL,
    objects jsonb NOT NULL
);
CREATE OR REPLACE FUNCTION {s}.releases_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'squizzle release history is append-only';
END
$$;
DROP TRIGGER IF EXISTS releases_append_only ON {s}.releases;
CREATE TRIGGER releases_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {s}.releases
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.releases_append_only();
"#
        );
        c.batch_execute(&ddl)
            .await
            .map_err(q(&self.schema, "creating squizzle's history tables"))?;
        c.execute_typed(
            &format!("INSERT INTO {s}.layout (version, tool_version) VALUES ($1, $2)"),
            &[
                (&LAYOUT_VERSION, Type::INT4),
                (&env!("CARGO_PKG_VERSION"), Type::TEXT),
            ],
        )
        .await
        .map_err(q(&self.schema, "recording squizzle's history layout"))?;
        Ok(())
    }

    /// Reads everything recorded; an empty snapshot when there is no history.
    pub async fn snapshot(&self, c: &impl GenericClient) -> Result<Snapshot, DbError> {
        match self.layout_version(c).await? {
            None => return Ok(Snapshot::default()),
            Some(v) if v > LAYOUT_VERSION => {
                return Err(DbError::LayoutTooNew {
                    schema: self.schema.name().into(),
                    found: v,
                    supported: LAYOUT_VERSION,
                });
            }
            Some(_) => {}
        }
        let s = &self.schema;
        let rows = c
            .query_typed(
                &format!(
                    "SELECT migration_id, path, sha256, version, to_char(applied_at AT TIME ZONE 'UTC', {TS}), \
                            duration_ms, statements_done, statements_total, complete FROM {s}.migrations"
                ),
                &[],
            )
            .await
            .map_err(q(&self.schema, "reading applied migrations"))?;
        let migrations = rows
            .iter()
            .map(|r| {
                let m = AppliedMigration {
                    id: r.get(0),
                    path: r.get(1),
                    sha256: r.get(2),
                    version: r.get(3),
                    applied_at: r.get(4),
                    duration_ms: r.get(5),
                    statements_done: r.get(6),
                    statements_total: r.get(7),
                    complete: r.get(8),
                };
                (m.id.clone(), m)
            })
            .collect();
        let rows = c
            .query_typed(
                &format!(
                    "SELECT id, version, operation, artifact_digest, success, to_char(applied_at AT TIME ZONE 'UTC', {TS}), \
                            applied_by_role, applied_by_os_user, ci_identity, migrations_run, execution_ms, error_message \
                     FROM {s}.releases ORDER BY id"
                ),
                &[],
            )
            .await
            .map_err(q(&self.schema, "reading release history"))?;
        let releases = rows
            .iter()
            .map(|r| ReleaseSummary {
                id: r.get(0),
                version: r.get(1),
                operation: r.get(2),
                artifact_digest: r.get(3),
                success: r.get(4),
                applied_at: r.get(5),
                applied_by_role: r.get(6),
                applied_by_os_user: r.get(7),
                ci_identity: r.get(8),
                migrations_run: r.get(9),
                execution_ms: r.get(10),
                error_message: r.get(11),
            })
            .collect();
        Ok(Snapshot {
            exists: true,
            migrations,
            releases,
        })
    }

    pub async fn insert_release(
        &self,
        c: &impl GenericClient,
        r: &ReleaseRecord,
    ) -> Result<i64, DbError> {
        let row = c
            .query_typed_one(
                &format!(
                    "INSERT INTO {}.releases (version, operation, artifact_digest, checksum, success, execution_ms, \
                        applied_by_os_user, ci_identity, signer_identity, signer_issuer, rekor_log_index, migrations_run, \
                        error_sqlstate, error_message, failing_migration, failing_statement, failing_line, metadata) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) RETURNING id",
                    self.schema
                ),
                &[
                    (&r.version, Type::TEXT),
                    (&r.operation, Type::TEXT),
                    (&r.artifact_digest, Type::TEXT),
                    (&r.checksum, Type::TEXT),
                    (&r.success, Type::BOOL),
                    (&r.execution_ms, Type::INT8),
                    (&r.applied_by_os_user, Type::TEXT),
                    (&r.ci_identity, Type::TEXT),
                    (&r.signer_identity, Type::TEXT),
                    (&r.signer_issuer, Type::TEXT),
                    (&r.rekor_log_index, Type::INT8),
                    (&r.migrations_run, Type::INT4),
                    (&r.error_sqlstate, Type::TEXT),
                    (&r.error_message, Type::TEXT),
                    (&r.failing_migration, Type::TEXT),
                    (&r.failing_statement, Type::INT4),
                    (&r.failing_line, Type::INT4),
                    (&r.metadata, Type::JSONB),
                ],
            )
            .await
            .map_err(q(&self.schema, "recording the release in squizzle's history"))?;
        Ok(row.get(0))
    }

    /// Inserts or updates a migration's row (progress of a resumable file
    /// too). A row that is already complete is never overwritten: when
    /// another apply recorded the migration first (two appliers that both
    /// believed they held the lock, e.g. behind a misconfigured pooler), this
    /// returns [`DbError::AppliedConcurrently`] and the caller rolls back.
    /// `baseline --force` (`replace_complete`) is the one writer that may
    /// overwrite a complete row.
    pub async fn record_migration(
        &self,
        c: &impl GenericClient,
        m: &MigrationRecord<'_>,
        replace_complete: bool,
    ) -> Result<(), DbError> {
        let sql = format!(
            "INSERT INTO {0}.migrations (migration_id, path, sha256, version, duration_ms, statements_done, statements_total, complete) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (migration_id) DO UPDATE SET path = EXCLUDED.path, sha256 = EXCLUDED.sha256, \
                version = EXCLUDED.version, applied_at = clock_timestamp(), \
                duration_ms = {0}.migrations.duration_ms + EXCLUDED.duration_ms, \
                statements_done = EXCLUDED.statements_done, statements_total = EXCLUDED.statements_total, \
                complete = EXCLUDED.complete \
             WHERE $9 OR NOT {0}.migrations.complete",
            self.schema
        );
        let written = c
            .execute_typed(
                &sql,
                &[
                    (&m.id, Type::TEXT),
                    (&m.path, Type::TEXT),
                    (&m.sha256, Type::TEXT),
                    (&m.version, Type::TEXT),
                    (&m.duration_ms, Type::INT8),
                    (&m.statements_done, Type::INT4),
                    (&m.statements_total, Type::INT4),
                    (&m.complete, Type::BOOL),
                    (&replace_complete, Type::BOOL),
                ],
            )
            .await
            .map_err(q(
                &self.schema,
                "recording a migration in squizzle's history",
            ))?;
        if written == 0 {
            return Err(DbError::AppliedConcurrently {
                migration: m.id.to_owned(),
            });
        }
        Ok(())
    }

    /// [`Self::record_migration`] for many complete-or-not rows in one
    /// statement (a transaction segment's files, written just before it
    /// commits): one round trip instead of one per file, with the same rule
    /// that a complete row is never overwritten.
    pub async fn record_migrations(
        &self,
        c: &impl GenericClient,
        rows: &[MigrationRecord<'_>],
    ) -> Result<(), DbError> {
        match rows {
            [] => return Ok(()),
            [one] => return self.record_migration(c, one, false).await,
            _ => {}
        }
        let ids: Vec<&str> = rows.iter().map(|m| m.id).collect();
        let paths: Vec<&str> = rows.iter().map(|m| m.path).collect();
        let shas: Vec<&str> = rows.iter().map(|m| m.sha256).collect();
        let versions: Vec<&str> = rows.iter().map(|m| m.version).collect();
        let ms: Vec<i64> = rows.iter().map(|m| m.duration_ms).collect();
        let done: Vec<i32> = rows.iter().map(|m| m.statements_done).collect();
        let total: Vec<i32> = rows.iter().map(|m| m.statements_total).collect();
        let complete: Vec<bool> = rows.iter().map(|m| m.complete).collect();
        let sql = format!(
            "INSERT INTO {0}.migrations (migration_id, path, sha256, version, duration_ms, statements_done, statements_total, complete) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::integer[], $7::integer[], $8::boolean[]) \
             ON CONFLICT (migration_id) DO UPDATE SET path = EXCLUDED.path, sha256 = EXCLUDED.sha256, \
                version = EXCLUDED.version, applied_at = clock_timestamp(), \
                duration_ms = {0}.migrations.duration_ms + EXCLUDED.duration_ms, \
                statements_done = EXCLUDED.statements_done, statements_total = EXCLUDED.statements_total, \
                complete = EXCLUDED.complete \
             WHERE NOT {0}.migrations.complete \
             RETURNING migration_id",
            self.schema
        );
        let written = c
            .query_typed(
                &sql,
                &[
                    (&ids, Type::TEXT_ARRAY),
                    (&paths, Type::TEXT_ARRAY),
                    (&shas, Type::TEXT_ARRAY),
                    (&versions, Type::TEXT_ARRAY),
                    (&ms, Type::INT8_ARRAY),
                    (&done, Type::INT4_ARRAY),
                    (&total, Type::INT4_ARRAY),
                    (&complete, Type::BOOL_ARRAY),
                ],
            )
            .await
            .map_err(q(
                &self.schema,
                "recording migrations in squizzle's history",
            ))?;
        if written.len() < rows.len() {
            let seen: std::collections::BTreeSet<String> =
                written.iter().map(|r| r.get::<_, String>(0)).collect();
            let migration = ids
                .iter()
                .find(|id| !seen.contains(**id))
                .map_or_else(String::new, |id| (*id).to_owned());
            return Err(DbError::AppliedConcurrently { migration });
        }
        Ok(())
    }

    /// Stores the fingerprint of `scope` as it is now (squizzle's own schema
    /// left out) for release row `release_id`, without holding the objects.
    /// One statement reads the catalog once: the server stores the objects as
    /// the JSON document (a data-modifying CTE) while the same rows, in
    /// [`fingerprint::BYTE_ORDER`], stream through the digest; the digest is
    /// then set on the row, checked against the digested count. Run it inside
    /// a transaction, so no reader sees the row without its digest. Memory
    /// stays flat however many objects the schema has. Returns the digest and
    /// the number of objects.
    pub async fn record_fingerprint(
        &self,
        c: &impl GenericClient,
        release_id: i64,
        scope: &Scope,
    ) -> Result<(String, usize), DbError> {
        let during = |e| {
            q(
                &self.schema,
                "recording the schema fingerprint in squizzle's history",
            )(e)
        };
        let exclude: Vec<&str> = vec![self.schema.name()];
        let schemas: Option<Vec<&str>> = scope
            .schemas()
            .map(|s| s.iter().map(String::as_str).collect());
        let order = fingerprint::BYTE_ORDER;
        let statement = format!(
            "WITH objects AS MATERIALIZED ({objects}), \
             stored AS (INSERT INTO {s}.fingerprints \
                 (release_id, fingerprint_version, sha256, object_count, objects) \
               SELECT $3, $4, '', count(*), coalesce(jsonb_agg(jsonb_build_object( \
                   'kind', kind, 'schema', schema, 'name', name, 'definition', definition) \
                   ORDER BY {order}), '[]'::jsonb) \
                 FROM objects) \
             SELECT kind, schema, name, definition FROM objects ORDER BY {order}",
            objects = fingerprint::select_distinct(),
            s = self.schema,
        );
        let params: [(&(dyn ToSql + Sync), Type); 4] = [
            (&exclude, Type::TEXT_ARRAY),
            (&schemas, Type::TEXT_ARRAY),
            (&release_id, Type::INT8),
            (&fingerprint::FINGERPRINT_VERSION, Type::INT4),
        ];
        let rows = c
            .query_typed_raw(&statement, params)
            .await
            .map_err(during)?;
        futures_util::pin_mut!(rows);
        let mut digest = fingerprint::Digester::default();
        while let Some(r) = rows.try_next().await.map_err(during)? {
            digest.push(
                r.try_get(0).map_err(during)?,
                r.try_get(1).map_err(during)?,
                r.try_get(2).map_err(during)?,
                r.try_get(3).map_err(during)?,
            );
        }
        let count = digest.count();
        let sha256 = digest.finish();
        let count_i32 = i32::try_from(count).unwrap_or(i32::MAX);
        let updated = c
            .execute_typed(
                &format!(
                    "UPDATE {}.fingerprints SET sha256 = $1 WHERE release_id = $2 AND object_count = $3",
                    self.schema
                ),
                &[
                    (&sha256, Type::TEXT),
                    (&release_id, Type::INT8),
                    (&count_i32, Type::INT4),
                ],
            )
            .await
            .map_err(during)?;
        if updated != 1 {
            return Err(DbError::Query {
                during: "recording the schema fingerprint in squizzle's history".into(),
                message: format!(
                    "the stored fingerprint does not hold the {count} objects that were digested; run the command again"
                ),
                sqlstate: None,
            });
        }
        Ok((sha256, count))
    }

    /// The fingerprint recorded by the newest successful release row (apply,
    /// baseline or rollback), if any. Read-only: a layout 1 history (no
    /// fingerprint table yet) answers [`Recorded::Missing`].
    pub async fn last_fingerprint(&self, c: &impl GenericClient) -> Result<Recorded, DbError> {
        let layout = match self.layout_version(c).await? {
            None => return Ok(Recorded::NoHistory),
            Some(v) if v > LAYOUT_VERSION => {
                return Err(DbError::LayoutTooNew {
                    schema: self.schema.name().into(),
                    found: v,
                    supported: LAYOUT_VERSION,
                });
            }
            Some(v) => v,
        };
        let s = &self.schema;
        let fp_cols = if layout >= 2 {
            format!(
                "f.fingerprint_version, f.sha256, f.objects::text, to_char(f.recorded_at AT TIME ZONE 'UTC', {TS}) \
                 FROM {s}.releases r LEFT JOIN {s}.fingerprints f ON f.release_id = r.id"
            )
        } else {
            format!("NULL::int, NULL::text, NULL::text, NULL::text FROM {s}.releases r")
        };
        let rows = c
            .query_typed(
                &format!(
                    "SELECT r.id, r.version, r.operation, to_char(r.applied_at AT TIME ZONE 'UTC', {TS}), {fp_cols} \
                     WHERE r.success ORDER BY r.id DESC LIMIT 1"
                ),
                &[],
            )
            .await
            .map_err(q(&self.schema, "reading the recorded schema fingerprint"))?;
        let Some(r) = rows.first() else {
            return Ok(Recorded::NoRelease);
        };
        let release = RecordedRelease {
            release_id: r.get(0),
            version: r.get(1),
            operation: r.get(2),
            applied_at: r.get(3),
        };
        let (Some(version), Some(sha256), Some(objects), Some(recorded_at)) = (
            r.get::<_, Option<i32>>(4),
            r.get::<_, Option<String>>(5),
            r.get::<_, Option<String>>(6),
            r.get::<_, Option<String>>(7),
        ) else {
            return Ok(Recorded::Missing(release));
        };
        let corrupt = |message: String| DbError::RecordEdited {
            during: format!(
                "reading the schema fingerprint of release row {} in {}.fingerprints",
                release.release_id, self.schema
            ),
            message,
        };
        let objects: Vec<Object> = serde_json::from_str(&objects)
            .map_err(|e| corrupt(format!("it is not a list of objects: {e}")))?;
        let fingerprint = Fingerprint::new(objects);
        if fingerprint.sha256 != sha256 {
            return Err(corrupt(format!(
                "its objects hash to {} but the row records {sha256}: the row was edited",
                fingerprint.sha256
            )));
        }
        Ok(Recorded::Found {
            release,
            recorded_at,
            fingerprint_version: version,
            fingerprint,
        })
    }

    /// Deletes a migration's row: it was rolled back and is pending again.
    pub async fn forget_migration(&self, c: &impl GenericClient, id: &str) -> Result<(), DbError> {
        c.execute_typed(
            &format!(
                "DELETE FROM {}.migrations WHERE migration_id = $1",
                self.schema
            ),
            &[(&id, Type::TEXT)],
        )
        .await
        .map_err(q(
            &self.schema,
            "removing a rolled-back migration from squizzle's history",
        ))?;
        Ok(())
    }
}
