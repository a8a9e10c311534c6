//! `squizzle drift` (and `status --drift`) against a real PostgreSQL: apply
//! records a fingerprint of the schema objects, out-of-band changes made
//! with plain SQL are each named, a clean database shows none, and a history
//! written by the previous layout upgrades in place.

use std::collections::BTreeSet;

use serde_json::Value;
use squizzle_test_support::pg;
use squizzle_test_support::{PLAIN_CONFIG, World};

/// A project aimed at a fresh database; `.1` is the database name.
fn scene(prefix: &str) -> (World, String) {
    let admin = pg::shared().create_database(prefix);
    let mut w = World::new();
    w.config(PLAIN_CONFIG);
    w.set_env("DATABASE_URL", &format!("{admin}?sslmode=disable"));
    (w, pg::db_name(&admin).to_owned())
}

fn sql(db: &str, text: &str) {
    pg::shared().query(db, text);
}

fn scalar(db: &str, text: &str) -> String {
    let rows = pg::shared().query(db, text);
    rows.first().and_then(|r| r[0].clone()).unwrap_or_default()
}

/// The report validates against `schemas/drift.v1.schema.json`.
#[track_caller]
fn assert_schema(report: &Value) {
    // `status --drift`'s member is the report without its schemaVersion.
    let mut report = report.clone();
    if let Some(o) = report.as_object_mut() {
        o.entry("schemaVersion").or_insert(Value::from(1));
    }
    let report = &report;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/drift.v1.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let v = jsonschema::draft202012::new(&schema).unwrap();
    let errors: Vec<String> = v
        .iter_errors(report)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{report:#}");
}

/// `drift --output json` with the exit code expected, schema-checked.
#[track_caller]
fn drift(w: &World, code: i32, extra: &[&str]) -> Value {
    let mut args = vec!["drift", "--output", "json"];
    args.extend_from_slice(extra);
    let doc = w.run(&args).code(code).json();
    assert_schema(&doc);
    doc
}

/// (kind, schema, name) of every entry of one list of a drift report.
fn keys(doc: &Value, list: &str) -> BTreeSet<(String, String, String)> {
    doc[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["kind"].as_str().unwrap().to_owned(),
                o["schema"].as_str().unwrap().to_owned(),
                o["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn key(kind: &str, schema: &str, name: &str) -> (String, String, String) {
    (kind.to_owned(), schema.to_owned(), name.to_owned())
}

fn entry<'a>(doc: &'a Value, list: &str, kind: &str, name: &str) -> &'a Value {
    doc[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == kind && o["name"] == name)
        .unwrap_or_else(|| panic!("{list} should have {kind} {name}: {doc:#}"))
}

// Every kind of object the fingerprint reads, made by one release.
const SCHEMA: &str = "\
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN email AS text CHECK (VALUE LIKE '%@%');
CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL DEFAULT 'anon',
    mail email,
    mood mood,
    name_len integer GENERATED ALWAYS AS (length(name)) STORED
);
CREATE INDEX users_name_idx ON users (name);
CREATE TABLE tags (id serial PRIMARY KEY, user_id bigint REFERENCES users (id), label text);
CREATE VIEW user_names AS SELECT id, name FROM users;
CREATE MATERIALIZED VIEW tag_counts AS SELECT label, count(*) AS n FROM tags GROUP BY label;
CREATE SEQUENCE invoice_no START 1000 INCREMENT 5;
CREATE FUNCTION shout(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT upper(t) $$;
CREATE PROCEDURE noop() LANGUAGE plpgsql AS $$ BEGIN END $$;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER users_touch BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION touch();
";

fn applied(prefix: &str) -> (World, String) {
    let (w, db) = scene(prefix);
    w.write("migrations/0001_schema.sql", SCHEMA);
    w.build_ok("1.0.0");
    w.run(&["apply", "1.0.0"]).success();
    (w, db)
}

#[test]
fn a_clean_database_has_no_drift_and_every_kind_of_object_is_recorded() {
    let (w, db) = applied("drift_clean");
    let doc = drift(&w, 0, &[]);
    assert_eq!(doc["outcome"], "no_drift", "{doc:#}");
    assert_eq!(doc["release"]["version"], "1.0.0");
    assert_eq!(doc["release"]["operation"], "apply");
    assert_eq!(doc["recordedSha256"], doc["liveSha256"]);
    assert_eq!(doc["added"].as_array().unwrap().len(), 0);

    // The recorded document holds every kind, and nothing of squizzle's own
    // schema, PostgreSQL's, or pgcrypto's member functions.
    let kinds = scalar(
        &db,
        "SELECT string_agg(DISTINCT o->>'kind', ',' ORDER BY o->>'kind') \
         FROM squizzle.fingerprints f, jsonb_array_elements(f.objects) o",
    );
    assert_eq!(
        kinds,
        "column,constraint,domain,enum,extension,function,index,materialized_view,procedure,sequence,table,trigger,view"
    );
    let schemas = scalar(
        &db,
        "SELECT string_agg(DISTINCT o->>'schema', ',') FROM squizzle.fingerprints f, jsonb_array_elements(f.objects) o",
    );
    assert_eq!(schemas, "public");
    let count = scalar(
        &db,
        "SELECT count(*) FROM squizzle.fingerprints f, jsonb_array_elements(f.objects) o \
         WHERE o->>'name' LIKE 'digest(%' OR o->>'name' LIKE 'gen_random_uuid(%'",
    );
    assert_eq!(count, "0", "extension members are not listed");
    assert_eq!(
        scalar(
            &db,
            "SELECT o->>'definition' FROM squizzle.fingerprints f, jsonb_array_elements(f.objects) o \
             WHERE o->>'kind' = 'column' AND o->>'name' = 'users.id'"
        ),
        "bigint NOT NULL GENERATED ALWAYS AS IDENTITY"
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT o->>'definition' FROM squizzle.fingerprints f, jsonb_array_elements(f.objects) o \
             WHERE o->>'kind' = 'enum'"
        ),
        "'sad', 'ok', 'happy'"
    );

    // Text names the release compared with.
    w.run(&["drift"])
        .success()
        .says("No drift")
        .says("apply 1.0.0");
    // An apply with nothing to do records nothing new.
    w.run(&["apply", "1.0.0"]).success();
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM squizzle.fingerprints"),
        "1"
    );
}

#[test]
fn each_out_of_band_change_is_named_exactly() {
    let (w, db) = applied("drift_oob");
    sql(&db, "ALTER TABLE users ADD COLUMN nickname text");
    sql(&db, "DROP INDEX users_name_idx");
    sql(
        &db,
        "CREATE OR REPLACE FUNCTION shout(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT upper(t) || '!' $$",
    );
    sql(
        &db,
        "CREATE TABLE audit_log (id bigint PRIMARY KEY, what text)",
    );
    // A unique index built concurrently over duplicate data fails and stays
    // behind INVALID.
    sql(&db, "INSERT INTO tags (label) VALUES ('dup'), ('dup')");
    let err = pg::shared()
        .try_query(
            &db,
            "CREATE UNIQUE INDEX CONCURRENTLY tags_label_uniq ON tags (label)",
        )
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("23505"), "{err}");

    let doc = drift(&w, 13, &[]);
    assert_eq!(doc["outcome"], "drift");
    assert_eq!(
        keys(&doc, "added"),
        BTreeSet::from([
            key("column", "public", "users.nickname"),
            key("table", "public", "audit_log"),
            key("column", "public", "audit_log.id"),
            key("column", "public", "audit_log.what"),
            key("constraint", "public", "audit_log.audit_log_pkey"),
            key("index", "public", "audit_log_pkey"),
            key("index", "public", "tags_label_uniq"),
        ]),
        "{doc:#}"
    );
    assert_eq!(
        keys(&doc, "removed"),
        BTreeSet::from([key("index", "public", "users_name_idx")])
    );
    assert_eq!(
        keys(&doc, "changed"),
        BTreeSet::from([key("function", "public", "shout(t text)")])
    );
    assert_eq!(
        entry(&doc, "added", "column", "users.nickname")["definition"],
        "text"
    );
    let invalid = entry(&doc, "added", "index", "tags_label_uniq")["definition"]
        .as_str()
        .unwrap();
    assert!(
        invalid.starts_with("CREATE UNIQUE INDEX tags_label_uniq ON public.tags"),
        "{invalid}"
    );
    // The build failed before the index was marked ready: both flags show.
    assert!(invalid.ends_with(" INVALID NOT READY"), "{invalid}");
    let f = entry(&doc, "changed", "function", "shout(t text)");
    assert_ne!(f["recorded"], f["live"]);
    assert!(
        f["live"]
            .as_str()
            .unwrap()
            .starts_with("returns text body sha256:")
    );

    let text = w.run(&["drift"]).code(13);
    for needle in [
        "Drift: 9 objects changed out of band since apply 1.0.0",
        "added    column public.users.nickname: text",
        "removed  index public.users_name_idx: CREATE INDEX users_name_idx ON public.users USING btree (name)",
        "changed  function public.shout(t text)",
        " INVALID",
    ] {
        assert!(
            text.stdout.contains(needle),
            "{needle:?} in:\n{}",
            text.stdout
        );
    }

    // status --drift shows the same and exits 13; plain status does not look.
    let s = w
        .run(&["status", "--drift", "--output", "json"])
        .code(13)
        .json();
    assert_eq!(s["drift"]["outcome"], "drift");
    assert_schema(&s["drift"]);
    assert_eq!(s["upToDate"], false);
    let plain = w.run(&["status", "--output", "json"]).code(0).json();
    assert!(plain.get("drift").is_none(), "{plain:#}");
    w.run(&["status", "--drift"])
        .code(13)
        .says("users_name_idx");

    // A second release records the schema it leaves, drift included.
    sql(&db, "DROP INDEX tags_label_uniq");
    w.write(
        "migrations/0002_more.sql",
        "ALTER TABLE tags ADD COLUMN color text;\n",
    );
    w.build_ok("1.1.0");
    w.run(&["apply", "1.1.0"]).success();
    let doc = drift(&w, 0, &[]);
    assert_eq!(doc["release"]["version"], "1.1.0");
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM squizzle.fingerprints"),
        "2"
    );
    sql(&db, "ALTER TABLE tags DROP COLUMN color");
    let doc = drift(&w, 13, &[]);
    assert_eq!(
        keys(&doc, "removed"),
        BTreeSet::from([key("column", "public", "tags.color")])
    );
}

#[test]
fn schema_option_compares_only_those_schemas_and_refuses_an_unknown_one() {
    let (w, db) = scene("drift_scope");
    w.write(
        "migrations/0001_tenants.sql",
        "CREATE SCHEMA tenant_a; CREATE SCHEMA tenant_b;\n\
         CREATE TABLE tenant_a.t (id int); CREATE TABLE tenant_b.t (id int);\n",
    );
    w.build_ok("1.0.0");
    w.run(&["apply", "1.0.0"]).success();
    sql(&db, "ALTER TABLE tenant_b.t ADD COLUMN x int");

    let a = drift(&w, 0, &["--schema", "tenant_a"]);
    assert_eq!(a["schemas"], serde_json::json!(["tenant_a"]));
    assert_eq!(a["outcome"], "no_drift");
    let b = drift(&w, 13, &["--schema", "tenant_b"]);
    assert_eq!(
        keys(&b, "added"),
        BTreeSet::from([key("column", "tenant_b", "t.x")])
    );
    // A misspelt schema is refused rather than compared as empty.
    let r = w.run(&["drift", "--schema", "tenant_c"]).code(2);
    assert!(
        r.stderr.contains("tenant_c") && r.stderr.contains("no such schema"),
        "{}",
        r.stderr
    );
    // A schema dropped out of band is drift: all its objects are removed.
    sql(&db, "DROP SCHEMA tenant_a CASCADE");
    let gone = drift(&w, 13, &["--schema", "tenant_a"]);
    assert_eq!(
        keys(&gone, "removed"),
        BTreeSet::from([
            key("table", "tenant_a", "t"),
            key("column", "tenant_a", "t.id")
        ])
    );
}

#[test]
fn nothing_recorded_exits_12_with_the_reason() {
    let (w, db) = scene("drift_none");
    sql(&db, "CREATE TABLE t (id int)");
    let doc = drift(&w, 12, &[]);
    assert_eq!(doc["outcome"], "no_fingerprint");
    assert!(
        doc["reason"]
            .as_str()
            .unwrap()
            .contains("no squizzle history"),
        "{doc:#}"
    );
    assert_eq!(doc["liveObjects"], 2);
    w.run(&["drift"]).code(12).says("Cannot check drift");
    // drift is read-only: it created no history.
    assert_eq!(
        scalar(&db, "SELECT to_regnamespace('squizzle') IS NULL"),
        "t"
    );
}

/// squizzle's history tables exactly as the layout 1 squizzle created them.
const LAYOUT_1_DDL: &str = r#"CREATE SCHEMA squizzle;
CREATE TABLE IF NOT EXISTS squizzle.layout (
    version integer NOT NULL,
    upgraded_at timestamptz NOT NULL DEFAULT now(),
    tool_version text NOT NULL
);
CREATE TABLE IF NOT EXISTS squizzle.releases (
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
    metadata jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS releases_version_idx ON squizzle.releases (version);
CREATE TABLE IF NOT EXISTS squizzle.migrations (
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
CREATE OR REPLACE FUNCTION squizzle.releases_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'squizzle release history is append-only';
END
$$;
DROP TRIGGER IF EXISTS releases_append_only ON squizzle.releases;
CREATE TRIGGER releases_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON squizzle.releases
    FOR EACH STATEMENT EXECUTE FUNCTION squizzle.releases_append_only();
INSERT INTO squizzle.layout (version, tool_version) VALUES (1, '0.1.0');
"#;

#[test]
fn a_layout_1_history_upgrades_in_place_and_records_from_the_next_apply() {
    let (w, db) = scene("drift_upgrade");
    sql(&db, LAYOUT_1_DDL);
    sql(&db, "CREATE TABLE legacy (id int)");
    sql(
        &db,
        "INSERT INTO squizzle.releases (version, operation, artifact_digest, checksum, success, execution_ms) \
         VALUES ('0.9.0', 'baseline', 'sha256:00', 'sha256:00', true, 1)",
    );
    // Read-only against the old layout: says why, creates nothing.
    let doc = drift(&w, 12, &[]);
    assert_eq!(doc["release"]["version"], "0.9.0");
    assert!(
        doc["reason"]
            .as_str()
            .unwrap()
            .contains("recorded no schema fingerprint"),
        "{doc:#}"
    );
    assert_eq!(
        scalar(&db, "SELECT to_regclass('squizzle.fingerprints') IS NULL"),
        "t"
    );

    w.write("migrations/0001_t.sql", "CREATE TABLE t (id int);\n");
    w.build_ok("1.0.0");
    w.run(&["apply", "1.0.0"]).success();
    assert_eq!(
        scalar(
            &db,
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM squizzle.layout"
        ),
        "1,2"
    );
    assert_eq!(scalar(&db, "SELECT count(*) FROM squizzle.releases"), "2");
    let doc = drift(&w, 0, &[]);
    assert_eq!(doc["release"]["version"], "1.0.0");
    // The table made before squizzle is part of what 1.0.0 left.
    assert_eq!(doc["liveObjects"], 4);
}

#[test]
fn baseline_records_the_schema_it_adopts() {
    let (w, db) = scene("drift_baseline");
    w.write("migrations/0001_t.sql", "CREATE TABLE t (id int);\n");
    w.build_ok("1.0.0");
    sql(&db, "CREATE TABLE t (id int)");
    w.run(&["baseline", "1.0.0"]).success();
    let doc = drift(&w, 0, &[]);
    assert_eq!(doc["release"]["operation"], "baseline");
    sql(&db, "ALTER TABLE t ALTER COLUMN id SET NOT NULL");
    let doc = drift(&w, 13, &[]);
    let c = entry(&doc, "changed", "column", "t.id");
    assert_eq!(
        (c["recorded"].as_str(), c["live"].as_str()),
        (Some("integer"), Some("integer NOT NULL"))
    );
}

#[test]
fn rollback_records_the_schema_it_returns_to() {
    let (w, db) = scene("drift_rollback");
    w.write("migrations/0001_t.sql", "CREATE TABLE t (id int);\n");
    w.write("migrations/0001_t.down.sql", "DROP TABLE t;\n");
    w.build_ok("1.0.0");
    w.write(
        "migrations/0002_c.sql",
        "ALTER TABLE t ADD COLUMN c text;\n",
    );
    w.write(
        "migrations/0002_c.down.sql",
        "ALTER TABLE t DROP COLUMN c;\n",
    );
    w.build_ok("1.1.0");
    w.run(&["apply", "1.0.0"]).success();
    let before = drift(&w, 0, &[])["liveSha256"].clone();
    w.run(&["apply", "1.1.0"]).success();
    w.run(&["rollback", "1.1.0"]).success();
    let doc = drift(&w, 0, &[]);
    assert_eq!(doc["release"]["operation"], "rollback");
    assert_eq!(doc["liveSha256"], before, "the schema of 1.0.0 again");
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM squizzle.fingerprints"),
        "3"
    );
}

#[test]
fn a_failed_apply_records_nothing_and_what_it_committed_shows_as_drift() {
    let (w, db) = scene("drift_failed");
    w.write("migrations/0001_t.sql", "CREATE TABLE t (id int);\n");
    w.build_ok("1.0.0");
    w.run(&["apply", "1.0.0"]).success();
    w.write(
        "migrations/0002_idx.sql",
        "-- squizzle:no-transaction\nCREATE INDEX CONCURRENTLY t_id_idx ON t (id);\n",
    );
    w.write(
        "migrations/0003_bad.sql",
        "ALTER TABLE t ADD COLUMN c int;\nSELECT 1/0;\n",
    );
    w.build_ok("1.1.0");
    w.run(&["apply", "1.1.0"]).code(11);
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM squizzle.fingerprints"),
        "1"
    );
    // Compared with 1.0.0: the committed index shows, the rolled-back column does not.
    let doc = drift(&w, 13, &[]);
    assert_eq!(doc["release"]["version"], "1.0.0");
    assert_eq!(
        keys(&doc, "added"),
        BTreeSet::from([key("index", "public", "t_id_idx")])
    );
    assert_eq!(doc["removed"].as_array().unwrap().len(), 0);
    assert_eq!(doc["changed"].as_array().unwrap().len(), 0);
}

#[test]
fn a_history_schema_of_its_own_is_left_out_and_read_from() {
    let (w, db) = scene("drift_history_schema");
    w.config(&format!(
        "{PLAIN_CONFIG}\n[environments.x]\nhistory_schema = \"ops_history\"\n"
    ));
    w.write("migrations/0001_t.sql", "CREATE TABLE t (id int);\n");
    w.build_ok("1.0.0");
    w.run(&["apply", "1.0.0", "--env", "x"]).success();
    let doc = drift(&w, 0, &["--env", "x"]);
    assert_eq!(doc["historySchema"], "ops_history");
    // t and t.id: squizzle's own tables are not objects of the application.
    assert_eq!(doc["liveObjects"], 2, "{doc:#}");
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM ops_history.fingerprints"),
        "1"
    );
    // Another history schema (none there) has nothing recorded.
    let none = drift(&w, 12, &[]);
    assert_eq!(none["historySchema"], "squizzle");
}

#[test]
fn an_edited_fingerprint_row_is_refused_not_compared() {
    let (w, db) = applied("drift_tamper");
    sql(
        &db,
        "UPDATE squizzle.fingerprints SET objects = objects - 0",
    );
    let r = w.run(&["drift"]).code(6);
    assert!(r.stderr.contains("the row was edited"), "{}", r.stderr);
    let doc = w.run(&["drift", "--output", "json"]).code(6).json();
    assert_eq!(doc["error"]["kind"], "integrity");
}

#[test]
fn an_unreachable_database_exits_3() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut w = World::plain();
    w.set_env(
        "DATABASE_URL",
        &format!("postgres://postgres@127.0.0.1:{port}/app?sslmode=disable"),
    );
    let doc = w.run(&["drift", "--output", "json"]).code(3).json();
    assert_eq!(doc["error"]["kind"], "connection");
}

/// The fingerprint an apply records is digested while the server streams the
/// objects in byte order, and stored by the server; reading it back recomputes
/// the digest in Rust's order. A database whose collation orders names
/// differently from their bytes (ICU, `apple` before `Zebra`, `é` before `f`),
/// names with a tab or non-ASCII letters, and definitions over several lines
/// must still give one digest: no drift, no "edited record".
#[test]
fn names_ordered_differently_by_the_collation_still_give_one_digest() {
    let server = pg::shared();
    let name = format!("drift_icu_{}", std::process::id());
    server.query(
        "postgres",
        &format!(
            "CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' \
             LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
        ),
    );
    assert_eq!(
        scalar(&name, "SELECT 'apple' < 'Zebra' AND 'é' < 'f'"),
        "t",
        "the database's collation must order names differently from their bytes"
    );
    let mut w = World::new();
    w.config(PLAIN_CONFIG);
    w.set_env(
        "DATABASE_URL",
        &format!("{}?sslmode=disable", server.admin_url(&name)),
    );
    w.write(
        "migrations/0001_names.sql",
        "CREATE TABLE \"Zebra\" (id int, \"Ärger\" text, \"é\" text, f text);\n\
         CREATE TABLE apple (id int, \"tab\there\" int);\n\
         CREATE TABLE \"éclair\" (id int);\n\
         CREATE TABLE fudge (id int);\n\
         CREATE VIEW \"Vue\" AS\n  SELECT id,\n         f\n    FROM \"Zebra\";\n\
         CREATE INDEX \"Zebra_f\" ON \"Zebra\" (f);\n\
         CREATE INDEX apple_id ON apple (id);\n",
    );
    w.build_ok("1.0.0");
    w.run(&["apply", "1.0.0"]).success();
    let doc = drift(&w, 0, &[]);
    assert_eq!(doc["outcome"], "no_drift", "{doc:#}");
    assert_eq!(doc["recordedSha256"], doc["liveSha256"]);
    // The stored document is what was digested: as many objects, and the
    // digest stored beside it.
    let stored = scalar(
        &name,
        "SELECT object_count = jsonb_array_length(objects) AND sha256 LIKE 'sha256:%' \
         FROM squizzle.fingerprints",
    );
    assert_eq!(stored, "t");
    // An out-of-band change among those names is still found, by name.
    sql(&name, "ALTER TABLE \"éclair\" ADD COLUMN \"Über\" int");
    let doc = drift(&w, 13, &[]);
    assert!(
        keys(&doc, "added").contains(&key("column", "public", "éclair.Über")),
        "{doc:#}"
    );
}
