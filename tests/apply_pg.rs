//! `squizzle apply`, `status` and `baseline` against a real PostgreSQL 15.
//!
//! Every test runs the real binary (with a clean environment, in a temporary
//! project: see `squizzle_test_support::World`) against its own database on the shared test
//! server (`support/pg.rs`); tests that need another server configuration
//! (passwords) start their own. The database URL reaches squizzle through
//! `DATABASE_URL`, as in a deploy pipeline.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};
use squizzle_test_support::pg::{self, PgOptions, PgServer};
use squizzle_test_support::{DOKPLOY_MIGRATIONS, PLAIN_CONFIG, World, dokploy_fixture};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A database of its own on the shared server.
struct Db {
    name: String,
    /// The superuser's URL, as squizzle gets it (`DATABASE_URL`).
    url: String,
}

impl Db {
    fn new(prefix: &str) -> Self {
        let admin = pg::shared().create_database(prefix);
        Db {
            name: pg::db_name(&admin).to_owned(),
            url: format!("{admin}?sslmode=disable"),
        }
    }

    /// URL for another role (the shared server trusts TCP connections, so the
    /// password only has to be well-formed).
    fn url_as(&self, user: &str, password: &str) -> String {
        format!(
            "{}?sslmode=disable",
            pg::shared().url(&self.name, user, Some(password))
        )
    }

    /// Runs SQL as the superuser; panics on error.
    fn query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        pg::shared().query(&self.name, sql)
    }

    /// The one value `sql` returns.
    fn value(&self, sql: &str) -> Option<String> {
        let rows = self.query(sql);
        assert_eq!(rows.len(), 1, "{sql} should return one row: {rows:?}");
        rows[0][0].clone()
    }

    fn count(&self, sql: &str) -> i64 {
        self.value(sql)
            .expect("a count")
            .parse()
            .expect("an integer")
    }

    /// SQLSTATE and message of a statement that must fail.
    fn error_of(&self, sql: &str) -> (String, String) {
        let e = pg::shared()
            .try_query(&self.name, sql)
            .expect_err(&format!("{sql} should fail"));
        let db = e.as_db_error().expect("a server error");
        (db.code().code().to_owned(), db.message().to_owned())
    }

    fn has_schema(&self, schema: &str) -> bool {
        self.value(&format!(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = {})",
            pg::quote_literal(schema)
        ))
        .as_deref()
            == Some("t")
    }

    /// `rel` is `table` (in public) or `schema.table`.
    fn has_table(&self, rel: &str) -> bool {
        let rel = if rel.contains('.') {
            rel.to_owned()
        } else {
            format!("public.{rel}")
        };
        self.value(&format!(
            "SELECT to_regclass({}) IS NOT NULL",
            pg::quote_literal(&rel)
        ))
        .as_deref()
            == Some("t")
    }

    fn has_column(&self, table: &str, column: &str) -> bool {
        self.value(&format!(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name = {} AND column_name = {})",
            pg::quote_literal(table),
            pg::quote_literal(column)
        ))
        .as_deref()
            == Some("t")
    }

    /// Tables in `schema`, sorted.
    fn tables(&self, schema: &str) -> Vec<String> {
        self.query(&format!(
            "SELECT tablename FROM pg_tables WHERE schemaname = {} ORDER BY 1",
            pg::quote_literal(schema)
        ))
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect()
    }

    /// Every row of `<schema>.<table>` as JSON objects (ordered by `order_by`).
    fn rows_in(&self, schema: &str, table: &str, order_by: &str) -> Vec<Value> {
        let text = self
            .value(&format!(
                "SELECT coalesce(json_agg(t ORDER BY {order_by}), '[]')::text FROM {}.{} t",
                pg::quote_ident(schema),
                pg::quote_ident(table)
            ))
            .expect("json_agg text");
        match serde_json::from_str(&text).expect("JSON rows") {
            Value::Array(rows) => rows,
            other => panic!("not an array: {other}"),
        }
    }

    /// `squizzle.releases`, oldest first.
    fn releases(&self) -> Vec<Value> {
        self.rows_in("squizzle", "releases", "id")
    }

    /// `squizzle.migrations`, by id.
    fn migrations(&self) -> Vec<Value> {
        self.rows_in("squizzle", "migrations", "migration_id")
    }

    /// `pg_dump --schema-only --no-owner` without squizzle's own schema and
    /// without the `\restrict` lines: the application's schema only.
    fn app_schema_dump(&self) -> String {
        let server = pg::shared();
        let mut cmd = Command::new(pg_bindir().join("pg_dump"));
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(|k| k.starts_with("PG")) {
                cmd.env_remove(key);
            }
        }
        let out = cmd
            .args([
                "--schema-only",
                "--no-owner",
                "--restrict-key=squizzletest",
                "--exclude-schema=squizzle",
            ])
            .arg("-h")
            .arg(server.socket_dir())
            .arg("-p")
            .arg(server.port().to_string())
            .arg("-U")
            .arg(pg::ADMIN_USER)
            .arg(&self.name)
            .output()
            .expect("run pg_dump");
        assert!(
            out.status.success(),
            "pg_dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        without_restrict(&String::from_utf8(out.stdout).expect("UTF-8 dump"))
    }
}

/// Where the harness takes PostgreSQL's programs from.
fn pg_bindir() -> PathBuf {
    std::env::var_os("SQUIZZLE_TEST_PG_BINDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"))
}

fn without_restrict(dump: &str) -> String {
    dump.lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The schema the dokploy corpus produces when psql runs it.
fn expected_dokploy_schema() -> String {
    let path = dokploy_fixture().with_extension("expected-schema.sql");
    without_restrict(&std::fs::read_to_string(&path).expect("read the expected schema"))
}

/// Compares two dumps; on a difference shows a unified diff of them.
#[track_caller]
fn assert_same_schema(actual: &str, expected: &str) {
    if actual == expected {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (a, e) = (
        dir.path().join("actual.sql"),
        dir.path().join("expected.sql"),
    );
    std::fs::write(&a, actual).unwrap();
    std::fs::write(&e, expected).unwrap();
    let diff = Command::new("diff")
        .arg("-u")
        .arg(&e)
        .arg(&a)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_else(|e| format!("(diff not available: {e})"));
    let head: Vec<&str> = diff.lines().take(120).collect();
    panic!(
        "the schema differs from the expected one:\n{}",
        head.join("\n")
    );
}

/// A plain-folder project whose migrations are `files` (`name`, `sql`), aimed
/// at `db`.
/// `build VERSION` of a change these tests make on purpose to a released
/// migration (drift, a fixed failing file): build refuses it unless allowed.
fn build_rewriting(w: &World, version: &str, ids: &[&str]) -> Value {
    let mut args = vec!["build", version, "--output", "json"];
    for id in ids {
        args.extend(["--allow-rewrite", id]);
    }
    args.extend([
        "--reason",
        "the test changes a released migration on purpose",
    ]);
    w.run(&args).success().json()
}

/// Rewrites one file of a stored release and every digest that covers it
/// (tarball, squizzle manifest, OCI manifest, tag): a consistent release
/// holding content the current `build` would refuse.
fn replace_file_in_release(w: &World, version: &str, path: &str, bytes: &[u8]) {
    use squizzle_test_support::registry::sha256_digest;
    use std::io::Read;
    let mut oci = w.oci_manifest(version);
    let layer = w.blob(oci["layers"][0]["digest"].as_str().unwrap());
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&layer[..]));
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        if name == path {
            content = bytes.to_vec();
        }
        entries.push((name, content));
    }
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    for (name, content) in &entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, name, &content[..])
            .unwrap();
    }
    let tarball = builder.into_inner().unwrap().finish().unwrap();
    let put = |blob: &[u8]| {
        let digest = sha256_digest(blob);
        std::fs::write(w.blob_path(&digest), blob).unwrap();
        digest
    };
    let layer_digest = put(&tarball);
    let mut config = w.squizzle_manifest(version);
    config["tarball"]["sha256"] = layer_digest.clone().into();
    config["tarball"]["size"] = tarball.len().into();
    for f in config["files"].as_array_mut().unwrap() {
        if f["path"] == path {
            f["sha256"] = sha256_digest(bytes).into();
            f["size"] = bytes.len().into();
        }
    }
    let config_bytes = serde_json::to_vec(&config).unwrap();
    oci["config"]["digest"] = put(&config_bytes).into();
    oci["config"]["size"] = config_bytes.len().into();
    oci["layers"][0]["digest"] = layer_digest.into();
    oci["layers"][0]["size"] = tarball.len().into();
    let oci_bytes = serde_json::to_vec(&oci).unwrap();
    let oci_digest = put(&oci_bytes);
    let mut index = w.index();
    for m in index["manifests"].as_array_mut().unwrap() {
        if m["annotations"]["org.opencontainers.image.ref.name"] == version {
            m["digest"] = oci_digest.clone().into();
            m["size"] = oci_bytes.len().into();
        }
    }
    w.write_index(&index);
}

fn project(db: &Db, files: &[(&str, &str)]) -> World {
    let mut w = World::new();
    w.config(PLAIN_CONFIG);
    for (name, sql) in files {
        w.write(&format!("migrations/{name}"), sql);
    }
    w.set_env("DATABASE_URL", &db.url);
    w
}

/// The dokploy corpus at `drizzle/`, aimed at `db`.
fn dokploy_project(db: &Db) -> World {
    let mut w = World::dokploy();
    w.set_env("DATABASE_URL", &db.url);
    w
}

const USERS: (&str, &str) = (
    "0001_create_users.sql",
    "CREATE TABLE users (id bigint PRIMARY KEY, name text);\n",
);
const ORDERS: (&str, &str) = (
    "0002_create_orders.sql",
    "CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint REFERENCES users (id));\n",
);
const EMAIL: (&str, &str) = (
    "0003_add_email.sql",
    "ALTER TABLE users ADD COLUMN email text;\n",
);

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

// ---------------------------------------------------------------------------
// 1-2. The dokploy drizzle-kit corpus
// ---------------------------------------------------------------------------

#[test]
fn the_dokploy_corpus_applies_to_exactly_the_schema_psql_produces_and_a_rerun_is_a_no_op() {
    let db = Db::new("dokploy");
    let w = dokploy_project(&db);
    let build = w.build_ok("1.0.0");

    let started = Instant::now();
    let report = w
        .run(&["apply", "1.0.0", "--output", "json"])
        .success()
        .json();
    eprintln!("applied the dokploy corpus in {:.2?}", started.elapsed());
    assert_eq!(report["outcome"], "applied");
    assert_eq!(report["version"], "1.0.0");
    assert_eq!(report["digest"], build["digest"]);
    assert_eq!(report["migrationsRun"], DOKPLOY_MIGRATIONS);
    assert_eq!(report["skipped"], 0);
    assert_eq!(report["txMode"], "release");

    assert_same_schema(&db.app_schema_dump(), &expected_dokploy_schema());
    assert_eq!(db.migrations().len(), DOKPLOY_MIGRATIONS);
    assert_eq!(db.releases().len(), 1);

    w.run(&["apply", "1.0.0"]).success().says("nothing to do");
    assert_eq!(db.releases().len(), 1, "a no-op apply records nothing");
    assert_same_schema(&db.app_schema_dump(), &expected_dokploy_schema());
}

#[test]
fn the_dokploy_corpus_in_two_releases_gives_the_same_schema_and_a_history_of_both() {
    let db = Db::new("dokploy_two");
    let w = dokploy_project(&db);
    let full_journal = w.read_json("drizzle/meta/_journal.json");
    let mut first_half = full_journal.clone();
    first_half["entries"]
        .as_array_mut()
        .unwrap()
        .truncate(DOKPLOY_MIGRATIONS / 2);
    w.write(
        "drizzle/meta/_journal.json",
        serde_json::to_vec_pretty(&first_half).unwrap(),
    );
    assert_eq!(w.build_ok("1.0.0")["migrations"], 93);
    w.write(
        "drizzle/meta/_journal.json",
        serde_json::to_vec_pretty(&full_journal).unwrap(),
    );
    assert_eq!(w.build_ok("1.1.0")["migrations"], DOKPLOY_MIGRATIONS);

    w.run(&["apply", "1.0.0"]).success().says("93 migrations");
    let report = w
        .run(&["apply", "1.1.0", "--output", "json"])
        .success()
        .json();
    assert_eq!(report["migrationsRun"], 93);
    assert_eq!(report["skipped"], 93);

    assert_same_schema(&db.app_schema_dump(), &expected_dokploy_schema());
    let releases = db.releases();
    let summary: Vec<(&str, bool, i64)> = releases
        .iter()
        .map(|r| {
            (
                r["version"].as_str().unwrap(),
                r["success"].as_bool().unwrap(),
                r["migrations_run"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(summary, [("1.0.0", true, 93), ("1.1.0", true, 93)]);
    assert_eq!(
        db.count("SELECT count(*) FROM squizzle.migrations"),
        DOKPLOY_MIGRATIONS as i64
    );
    assert_eq!(
        db.count("SELECT count(*) FROM squizzle.migrations WHERE version = '1.0.0'"),
        93
    );
    assert_eq!(
        db.count("SELECT count(*) FROM squizzle.migrations WHERE NOT complete"),
        0
    );
}

// ---------------------------------------------------------------------------
// 3. What the history records
// ---------------------------------------------------------------------------

#[test]
fn each_apply_records_who_what_and_from_where_in_an_append_only_history() {
    let db = Db::new("history_rows");
    let mut w = project(&db, &[USERS, ORDERS]);
    w.set_env("USER", "deployer-bob");
    let v1 = w.build_ok("1.0.0");
    w.write(&format!("migrations/{}", EMAIL.0), EMAIL.1);
    let v2 = w.build_ok("1.1.0");

    w.run(&["apply", "1.0.0"]).success();
    w.run_with_env(
        &["apply", "1.1.0"],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REPOSITORY", "acme/shop"),
            (
                "GITHUB_WORKFLOW_REF",
                "acme/shop/.github/workflows/deploy.yml@refs/heads/main",
            ),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_RUN_ID", "4242"),
        ],
    )
    .success();

    let releases = db.releases();
    assert_eq!(releases.len(), 2, "{releases:#?}");
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned();
    for (row, build, migrations) in [(&releases[0], &v1, 2), (&releases[1], &v2, 1)] {
        assert_eq!(row["version"], build["version"]);
        assert_eq!(row["operation"], "apply");
        assert_eq!(row["artifact_digest"], build["digest"], "{row:#}");
        assert_eq!(row["checksum"], build["tarballSha256"], "{row:#}");
        assert_eq!(row["success"], true);
        assert_eq!(row["migrations_run"], migrations);
        assert_eq!(row["applied_by_role"], pg::ADMIN_USER);
        assert_eq!(row["applied_by_os_user"], "deployer-bob");
        assert!(row["applied_at"].is_string());
        assert!(row["execution_ms"].as_i64().unwrap() >= 0);
        for failure_column in [
            "error_sqlstate",
            "error_message",
            "failing_migration",
            "failing_statement",
            "failing_line",
        ] {
            assert_eq!(row[failure_column], Value::Null, "{failure_column}");
        }
        let meta = &row["metadata"];
        assert_eq!(meta["hostname"], hostname.as_str(), "{meta:#}");
        assert_eq!(meta["toolVersion"], env!("CARGO_PKG_VERSION"), "{meta:#}");
        assert_eq!(meta["txMode"], "release", "{meta:#}");
    }
    assert_eq!(releases[0]["ci_identity"], Value::Null);
    assert_eq!(releases[0]["metadata"]["ciRunUrl"], Value::Null);
    assert_eq!(
        releases[1]["ci_identity"],
        "github-actions:acme/shop:acme/shop/.github/workflows/deploy.yml@refs/heads/main"
    );
    assert_eq!(
        releases[1]["metadata"]["ciRunUrl"],
        "https://github.com/acme/shop/actions/runs/4242"
    );

    let migrations = db.migrations();
    let recorded: Vec<(&str, &str, &str)> = migrations
        .iter()
        .map(|m| {
            (
                m["migration_id"].as_str().unwrap(),
                m["path"].as_str().unwrap(),
                m["version"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        recorded,
        [
            (
                "0001_create_users",
                "migrations/0001_create_users.sql",
                "1.0.0"
            ),
            (
                "0002_create_orders",
                "migrations/0002_create_orders.sql",
                "1.0.0"
            ),
            ("0003_add_email", "migrations/0003_add_email.sql", "1.1.0"),
        ]
    );
    let manifest = w.squizzle_manifest("1.1.0");
    for m in &migrations {
        let file = manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == m["migration_id"])
            .unwrap();
        assert_eq!(m["sha256"], file["sha256"]);
        assert_eq!(m["complete"], true);
        assert_eq!(m["statements_done"], 1);
        assert_eq!(m["statements_total"], 1);
    }

    // Nobody rewrites history, not even the superuser through plain SQL.
    for sql in [
        "UPDATE squizzle.releases SET success = false",
        "DELETE FROM squizzle.releases",
        "TRUNCATE squizzle.releases",
    ] {
        let (_, message) = db.error_of(sql);
        assert!(message.contains("append-only"), "{sql}: {message}");
    }
    assert_eq!(db.releases(), releases);
}

// ---------------------------------------------------------------------------
// 4. A failing migration
// ---------------------------------------------------------------------------

/// Statement 2 of the second migration has a typo on line 3 of its file.
const ORDERS_WITH_TYPO: (&str, &str) = (
    "0002_create_orders.sql",
    "CREATE TABLE orders (id bigint PRIMARY KEY);\nALTER TABLE orders\n    ADD COLUMN total numerc;\n",
);
const ORDERS_FIXED: (&str, &str) = (
    "0002_create_orders.sql",
    "CREATE TABLE orders (id bigint PRIMARY KEY);\nALTER TABLE orders\n    ADD COLUMN total numeric;\n",
);

#[test]
fn a_failing_migration_rolls_back_the_whole_release_and_is_recorded_with_its_line() {
    let db = Db::new("failure");
    let w = project(&db, &[USERS, ORDERS_WITH_TYPO, EMAIL]);
    w.build_ok("1.0.0");

    let run = w
        .run(&["apply", "1.0.0"])
        .code(11)
        .stderr_has("migrations/0002_create_orders.sql")
        .stderr_has("statement 2")
        .stderr_has("line 3")
        .says("numerc");

    // Release mode is one transaction: none of the three ran.
    assert!(!db.has_table("users"), "{}", run.output());
    assert!(!db.has_table("orders"));
    assert!(db.migrations().is_empty());

    let releases = db.releases();
    assert_eq!(releases.len(), 1);
    let failure = &releases[0];
    assert_eq!(failure["version"], "1.0.0");
    assert_eq!(failure["success"], false);
    assert_eq!(failure["error_sqlstate"], "42704", "{failure:#}");
    assert_eq!(failure["failing_migration"], "0002_create_orders");
    assert_eq!(failure["failing_statement"], 2);
    assert_eq!(failure["failing_line"], 3);
    assert_eq!(failure["migrations_run"], 0);
    assert!(
        failure["error_message"]
            .as_str()
            .unwrap()
            .contains("numerc")
    );

    // The same failure as one JSON document.
    let run = w.run(&["apply", "1.0.0", "--output", "json"]).code(11);
    let doc = run.json();
    assert_eq!(doc["error"]["kind"], "migration_failed", "{doc:#}");
    assert_eq!(doc["error"]["code"], 11);
    let f = &doc["error"]["failure"];
    assert_eq!(f["migration"], "0002_create_orders");
    assert_eq!(f["path"], "migrations/0002_create_orders.sql");
    assert_eq!(f["statement"], 2);
    assert_eq!(f["line"], 3);
    assert_eq!(f["sqlstate"], "42704");
    assert_eq!(f["rolledBack"], true);
    assert_eq!(f["recorded"], true);
    assert!(!db.has_table("users"));

    // Recorded failures never block the fixed release.
    w.write(&format!("migrations/{}", ORDERS_FIXED.0), ORDERS_FIXED.1);
    build_rewriting(&w, "1.0.1", &["0002_create_orders"]);
    w.run(&["apply", "1.0.1"]).success();
    assert!(db.has_table("users") && db.has_column("orders", "total"));
    assert!(db.has_column("users", "email"));
    let outcomes: Vec<(String, bool)> = db
        .releases()
        .iter()
        .map(|r| {
            (
                r["version"].as_str().unwrap().to_owned(),
                r["success"] == true,
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("1.0.0".to_owned(), false),
            ("1.0.0".to_owned(), false),
            ("1.0.1".to_owned(), true)
        ]
    );
    assert_eq!(db.migrations().len(), 3);
}

/// Constraint violations carry no error position: the line is the statement's.
#[test]
fn a_failure_without_an_error_position_is_reported_at_the_statement_line() {
    let db = Db::new("no_position");
    let w = project(
        &db,
        &[
            USERS,
            (
                "0002_seed_admin.sql",
                "INSERT INTO users (id, name) VALUES (1, 'admin');\n\n-- the admin again: a duplicate key\nINSERT INTO users (id, name) VALUES (1, 'root');\n",
            ),
        ],
    );
    w.build_ok("1.0.0");
    let doc = w
        .run(&["apply", "1.0.0", "--output", "json"])
        .code(11)
        .json();
    let f = &doc["error"]["failure"];
    assert_eq!(f["sqlstate"], "23505", "{doc:#}");
    assert_eq!(f["statement"], 2, "{doc:#}");
    assert_eq!(db.releases()[0]["failing_statement"], 2);
    assert_eq!(
        f["line"], 4,
        "the INSERT is on line 4; line 3 is its comment: {doc:#}"
    );
    assert_eq!(db.releases()[0]["failing_line"], 4);
}

// ---------------------------------------------------------------------------
// 5. --tx-mode file
// ---------------------------------------------------------------------------

#[test]
fn in_file_mode_migrations_before_a_failure_stay_committed_and_the_rest_is_pending() {
    let db = Db::new("file_mode");
    let w = project(
        &db,
        &[
            USERS,
            ORDERS,
            (
                "0003_add_email.sql",
                "ALTER TABLE users ADD COLUMN email txet;\n",
            ),
        ],
    );
    w.build_ok("1.0.0");

    w.run(&["apply", "1.0.0", "--tx-mode", "file"])
        .code(11)
        .stderr_has("0003_add_email")
        .says("2 earlier migration(s) of this run stay committed");

    assert!(db.has_table("users") && db.has_table("orders"));
    assert!(!db.has_column("users", "email"));
    let ids: Vec<Value> = db
        .migrations()
        .iter()
        .map(|m| m["migration_id"].clone())
        .collect();
    assert_eq!(
        ids,
        [json!("0001_create_users"), json!("0002_create_orders")]
    );
    let releases = db.releases();
    assert_eq!(releases.len(), 1);
    assert_eq!(releases[0]["success"], false);
    assert_eq!(releases[0]["migrations_run"], 2);
    assert_eq!(releases[0]["failing_migration"], "0003_add_email");
    assert_eq!(releases[0]["metadata"]["txMode"], "file");

    let status = w.run(&["status", "--output", "json"]).success().json();
    let pending: Vec<&str> = status["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(pending, ["0003_add_email"]);
    assert_eq!(status["appliedMigrations"], 2);
    assert_eq!(status["applied"], json!([]), "the release is not applied");
    w.run(&["status"])
        .success()
        .stdout_has("migrations/0003_add_email.sql");
}

#[test]
fn a_new_enum_value_added_by_one_file_is_usable_by_the_next_in_the_default_mode() {
    // Prisma histories add an enum value in one migration and use it in a
    // later one. PostgreSQL refuses a new value before the transaction that
    // added it commits (55P04), so the release transaction ends after a file
    // that adds one.
    let db = Db::new("enum_value");
    let w = project(
        &db,
        &[
            (
                "0001_mood.sql",
                "CREATE TYPE mood AS ENUM ('a');\nALTER TYPE mood ADD VALUE 'b';\n",
            ),
            ("0002_use_mood.sql", "SELECT 'b'::mood;\n"),
            ("0003_more.sql", "CREATE TABLE feelings (m mood);\n"),
        ],
    );
    w.build_ok("1.0.0");

    // The dry run shows where the transactions end.
    w.run(&["apply", "1.0.0", "--dry-run"])
        .success()
        .stdout_has("-- migrations/0001_mood.sql (0001_mood) [step 1: transaction]")
        .stdout_has("-- migrations/0002_use_mood.sql (0002_use_mood) [step 2: transaction]")
        .stdout_has("-- migrations/0003_more.sql (0003_more) [step 2: transaction]");
    let plan = w
        .run(&["apply", "1.0.0", "--dry-run", "--output", "json"])
        .success()
        .json();
    let segments: Vec<u64> = plan["planned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["segment"].as_u64().unwrap())
        .collect();
    assert_eq!(segments, [1, 2, 2], "{plan:#}");

    w.run(&["apply", "1.0.0"]).success();
    assert_eq!(
        db.value("SELECT enum_range(NULL::mood)::text").as_deref(),
        Some("{a,b}")
    );
    assert_eq!(db.migrations().len(), 3);
    assert_eq!(db.releases().len(), 1);

    // Adding and using the value in ONE file cannot work in any transaction:
    // the failure says what to do.
    let db = Db::new("enum_same_file");
    let w = project(
        &db,
        &[
            ("0001_kind.sql", "CREATE TYPE kind AS ENUM ('a');\n"),
            (
                "0002_add_and_use.sql",
                "ALTER TYPE kind ADD VALUE 'b';\nSELECT 'b'::kind;\n",
            ),
        ],
    );
    w.build_ok("1.0.0");
    let doc = w
        .run(&["apply", "1.0.0", "--output", "json"])
        .code(11)
        .json();
    let f = &doc["error"]["failure"];
    assert_eq!(f["migration"], "0002_add_and_use", "{doc:#}");
    assert_eq!(f["sqlstate"], "55P04", "{doc:#}");
    let message = f["message"].as_str().unwrap();
    assert!(message.contains("unsafe use of new value"), "{doc:#}");
    assert!(
        message.contains("use the value in a later file than the one that adds it"),
        "{doc:#}"
    );
    // Both files shared the release transaction: nothing stayed.
    assert_eq!(db.value("SELECT to_regtype('kind')::text"), None);
}

// ---------------------------------------------------------------------------
// 6. Files that run outside a transaction
// ---------------------------------------------------------------------------

#[test]
fn a_no_transaction_file_runs_create_index_concurrently_between_transactional_files() {
    let db = Db::new("no_tx");
    let w = project(
        &db,
        &[
            (
                "0001_create_items.sql",
                "CREATE TABLE items (id bigint PRIMARY KEY, name text);\n",
            ),
            (
                "0002_index_item_names.sql",
                "-- squizzle:no-transaction\nCREATE INDEX CONCURRENTLY items_name_idx ON items (name);\n",
            ),
            (
                "0003_add_price.sql",
                "ALTER TABLE items ADD COLUMN price numeric;\n",
            ),
        ],
    );
    w.build_ok("1.0.0");
    let manifest = w.squizzle_manifest("1.0.0");
    let modes: Vec<(&str, &str)> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap(),
                f["transaction"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        modes,
        [
            ("0001_create_items", "default"),
            ("0002_index_item_names", "none"),
            ("0003_add_price", "default")
        ]
    );

    w.run(&["apply", "1.0.0"])
        .success()
        .stdout_has("no transaction");
    assert_eq!(
        db.value(
            "SELECT indisvalid::text FROM pg_index WHERE indexrelid = 'items_name_idx'::regclass"
        )
        .as_deref(),
        Some("true")
    );
    assert!(db.has_column("items", "price"));
    assert_eq!(
        db.count("SELECT count(*) FROM squizzle.migrations WHERE complete"),
        3
    );
    assert_eq!(db.releases()[0]["success"], true);

    // The same statement inside a transaction is refused by PostgreSQL.
    let (code, _) =
        db.error_of("BEGIN; CREATE INDEX CONCURRENTLY items_name_idx2 ON items (name); COMMIT;");
    assert_eq!(code, "25001");
}

#[test]
fn a_file_with_its_own_transaction_control_is_refused_before_anything_runs() {
    let db = Db::new("own_tx");
    let own_tx = "-- backfill names\nBEGIN;\nUPDATE users SET name = 'x';\nCOMMIT;\n";
    let w = project(
        &db,
        &[
            USERS,
            (
                "0002_backfill.sql",
                "-- backfill names\nUPDATE users SET name = 'x';\n",
            ),
        ],
    );
    // build refuses such a file (build_history tests it); apply must refuse
    // one in a release that was built without that check, digests intact.
    w.write("migrations/0002_backfill.sql", own_tx);
    w.run(&["build", "1.0.0"])
        .code(2)
        .stderr_has("migrations/0002_backfill.sql line 2: BEGIN");
    w.write(
        "migrations/0002_backfill.sql",
        "-- backfill names\nUPDATE users SET name = 'x';\n",
    );
    w.build_ok("1.0.0");
    replace_file_in_release(
        &w,
        "1.0.0",
        "migrations/0002_backfill.sql",
        own_tx.as_bytes(),
    );
    w.run(&["verify", "1.0.0"]).success();

    let run = w
        .run(&["apply", "1.0.0"])
        .code(2)
        .stderr_has("migrations/0002_backfill.sql")
        .stderr_has("BEGIN")
        .stderr_has("remove the transaction control")
        .stderr_has("`-- squizzle:no-transaction`");
    assert!(!db.has_table("users"), "0001 must not run either");
    if db.has_schema("squizzle") {
        assert!(db.migrations().is_empty());
        assert!(db.releases().is_empty());
    }
    // The message points at the line that holds BEGIN (line 2), not at the
    // comment above it.
    run.stderr_has("migrations/0002_backfill.sql line 2: BEGIN");
}

// ---------------------------------------------------------------------------
// 7. Refusals: drift, downgrade, moved tag, tampered store
// ---------------------------------------------------------------------------

#[test]
fn changing_an_applied_file_is_drift_and_is_refused() {
    let db = Db::new("drift");
    let w = project(&db, &[USERS, ORDERS]);
    w.build_ok("1.0.0");
    w.run(&["apply", "1.0.0"]).success();

    w.write(
        "migrations/0001_create_users.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL);\n",
    );
    w.write(&format!("migrations/{}", EMAIL.0), EMAIL.1);
    build_rewriting(&w, "1.1.0", &["0001_create_users"]);

    w.run(&["apply", "1.1.0"])
        .code(5)
        .says("drift")
        .says("migrations/0001_create_users.sql")
        .says("Expected:")
        .says("Actual:")
        .says("1.0.0");
    assert!(!db.has_column("users", "email"), "nothing of 1.1.0 ran");
    assert_eq!(db.releases().len(), 1);
}

#[test]
fn an_older_release_is_refused_unless_out_of_order_is_allowed() {
    let db = Db::new("downgrade");
    let w = project(&db, &[USERS, ORDERS]);
    w.build_ok("1.0.0");
    w.write(&format!("migrations/{}", EMAIL.0), EMAIL.1);
    w.build_ok("1.1.0");
    w.run(&["apply", "1.1.0"]).success();

    w.run(&["apply", "1.0.0"]).code(5).says("older than 1.1.0");
    assert_eq!(db.releases().len(), 1);

    w.run(&["apply", "1.0.0", "--allow-out-of-order"]).success();
    assert!(db.has_column("users", "email"), "nothing was undone");
}

#[test]
fn a_moved_tag_is_refused() {
    let db = Db::new("moved_tag");
    let w = project(&db, &[USERS, ORDERS]);
    let original = w.build_ok("1.0.0");
    w.run(&["apply", "1.0.0"]).success();

    // Someone rebuilds a different 1.0.0 in a fresh store.
    std::fs::remove_dir_all(w.store()).unwrap();
    w.write(&format!("migrations/{}", EMAIL.0), EMAIL.1);
    let moved = w.build_ok("1.0.0");
    assert_ne!(original["digest"], moved["digest"]);

    w.run(&["apply", "1.0.0"])
        .code(5)
        .says("moved")
        .says(original["digest"].as_str().unwrap());
    assert!(!db.has_column("users", "email"));
}

#[test]
fn a_tampered_store_is_refused_before_connecting() {
    let db = Db::new("tampered");
    let w = project(&db, &[USERS, ORDERS]);
    w.build_ok("1.0.0");
    w.corrupt_blob(&w.layer_digest("1.0.0"));

    w.run(&["apply", "1.0.0"]).code(6);
    assert!(
        !db.has_schema("squizzle"),
        "squizzle never touched the database"
    );
    assert!(!db.has_table("users"));

    // Verification comes first: with no server at all it is still exit 6,
    // not a connection error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    w.run_with_env(
        &["apply", "1.0.0"],
        &[(
            "DATABASE_URL",
            &format!("postgres://postgres@127.0.0.1:{closed}/x?sslmode=disable"),
        )],
    )
    .code(6);
}

// ---------------------------------------------------------------------------
// 8. Dry runs
// ---------------------------------------------------------------------------

#[test]
fn a_dry_run_prints_the_pending_sql_and_touches_nothing() {
    let db = Db::new("dry_plan");
    let w = project(&db, &[USERS, ORDERS]);
    w.build_ok("1.0.0");

    w.run(&["apply", "1.0.0", "--dry-run"])
        .success()
        .stdout_has("-- migrations/0001_create_users.sql")
        .stdout_has(USERS.1.trim_end())
        .stdout_has(ORDERS.1.trim_end())
        .says("nothing was changed");
    assert!(!db.has_schema("squizzle"));
    assert!(db.tables("public").is_empty());
}

#[test]
fn an_executed_dry_run_runs_everything_then_rolls_it_all_back() {
    let db = Db::new("dry_exec");
    let w = project(&db, &[USERS, ORDERS, EMAIL]);
    w.build_ok("1.0.0");

    w.run(&["apply", "1.0.0", "--dry-run=execute"])
        .success()
        .says("rolled everything back");
    assert!(!db.has_schema("squizzle"));
    assert!(db.tables("public").is_empty());

    // A failure found by the dry run is a migration failure, and still
    // leaves nothing behind.
    w.write(
        &format!("migrations/{}", EMAIL.0),
        "ALTER TABLE users ADD COLUMN email txet;\n",
    );
    build_rewriting(&w, "1.0.1", &["0003_add_email"]);
    w.run(&["apply", "1.0.1", "--dry-run=execute"])
        .code(11)
        .says("0003_add_email");
    assert!(!db.has_schema("squizzle"));
    assert!(db.tables("public").is_empty());
}

// ---------------------------------------------------------------------------
// 9. status and baseline
// ---------------------------------------------------------------------------

#[test]
fn status_shows_history_pending_files_and_drift() {
    let db = Db::new("status");
    let w = project(&db, &[USERS, ORDERS]);
    w.run(&["status"])
        .success()
        .stdout_has("No squizzle history yet")
        .stdout_has("No release in the store to compare with");
    let v1 = w.build_ok("1.0.0");

    // Nothing applied yet; status creates nothing.
    w.run(&["status"])
        .success()
        .stdout_has("No squizzle history yet")
        .stdout_has("Pending in 1.0.0: 2 migrations");
    let s = w.run(&["status", "--output", "json"]).success().json();
    assert_eq!(
        keys(&s),
        [
            "applied",
            "appliedMigrations",
            "database",
            "historyExists",
            "historySchema",
            "invalidIndexes",
            "lockHolder",
            "pending",
            "problem",
            "recent",
            "release",
            "schemaVersion",
            "unrecorded",
            "upToDate"
        ]
    );
    assert_eq!(s["historyExists"], false);
    assert_eq!(s["historySchema"], "squizzle");
    assert_eq!(s["applied"], json!([]));
    assert_eq!(s["release"], "1.0.0");
    assert_eq!(s["pending"].as_array().unwrap().len(), 2);
    assert_eq!(s["upToDate"], false);
    assert_eq!(s["lockHolder"], Value::Null);
    assert!(
        s["database"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/{}", db.name)),
        "{s:#}"
    );
    assert!(!db.has_schema("squizzle"), "status is read-only");

    // 1.0.0 applied, 1.1.0 in the store.
    w.run(&["apply", "1.0.0"]).success();
    w.write(&format!("migrations/{}", EMAIL.0), EMAIL.1);
    w.build_ok("1.1.0");
    w.run(&["status"])
        .success()
        .stdout_has("Applied: 1.0.0")
        .stdout_has("Pending in 1.1.0: 1 migration")
        .stdout_has("  migrations/0003_add_email.sql");
    let s = w.run(&["status", "--output", "json"]).success().json();
    assert_eq!(s["historyExists"], true);
    assert_eq!(
        s["applied"],
        json!([{ "version": "1.0.0", "digest": v1["digest"] }])
    );
    assert_eq!(s["appliedMigrations"], 2);
    assert_eq!(s["release"], "1.1.0");
    assert_eq!(
        s["pending"],
        json!([{ "id": "0003_add_email", "path": "migrations/0003_add_email.sql", "resumeFrom": 0 }])
    );
    assert_eq!(s["problem"], Value::Null);
    assert_eq!(s["recent"].as_array().unwrap().len(), 1);
    assert_eq!(s["recent"][0]["version"], "1.0.0");
    let s = w
        .run(&["status", "--version", "1.0.0", "--output", "json"])
        .success()
        .json();
    assert_eq!(s["upToDate"], true);
    assert_eq!(s["pending"], json!([]));

    // Drift: an applied file changed in the newest release.
    w.write(
        "migrations/0002_create_orders.sql",
        "CREATE TABLE orders (id bigint PRIMARY KEY);\n",
    );
    build_rewriting(&w, "1.2.0", &["0002_create_orders"]);
    w.run(&["status"])
        .code(5)
        .says("drift")
        .says("0002_create_orders");
    let s = w.run(&["status", "--output", "json"]).code(5).json();
    assert!(s["problem"].as_str().unwrap().contains("drift"), "{s:#}");
    assert_eq!(s["upToDate"], false);
}

/// Runs the dokploy corpus through psql, in journal order, as drizzle-kit's
/// users did before squizzle.
fn migrate_with_psql(db: &Db) {
    let dir = dokploy_fixture();
    let journal: Value =
        serde_json::from_slice(&std::fs::read(dir.join("meta/_journal.json")).unwrap()).unwrap();
    let mut sql = String::new();
    for entry in journal["entries"].as_array().unwrap() {
        let tag = entry["tag"].as_str().unwrap();
        sql.push_str(&std::fs::read_to_string(dir.join(format!("{tag}.sql"))).unwrap());
        sql.push('\n');
    }
    let out = pg::shared().psql(&db.name, &sql);
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn baseline_adopts_a_database_migrated_by_psql_and_refuses_one_with_history() {
    let db = Db::new("baseline");
    migrate_with_psql(&db);
    assert_same_schema(&db.app_schema_dump(), &expected_dokploy_schema());
    let w = dokploy_project(&db);
    let build = w.build_ok("1.0.0");

    w.run(&["baseline", "1.0.0"])
        .success()
        .says("186 migrations, nothing was run");
    assert_eq!(db.migrations().len(), DOKPLOY_MIGRATIONS);
    let releases = db.releases();
    assert_eq!(releases.len(), 1);
    assert_eq!(releases[0]["operation"], "baseline");
    assert_eq!(releases[0]["version"], "1.0.0");
    assert_eq!(releases[0]["artifact_digest"], build["digest"]);
    assert_eq!(releases[0]["migrations_run"], DOKPLOY_MIGRATIONS);
    assert_eq!(releases[0]["success"], true);

    w.run(&["apply", "1.0.0"]).success().says("nothing to do");
    assert_eq!(db.releases().len(), 1);
    assert_same_schema(&db.app_schema_dump(), &expected_dokploy_schema());

    w.run(&["baseline", "1.0.0"])
        .code(5)
        .says("already has squizzle history")
        .says("--force");
    assert_eq!(db.releases().len(), 1);
    w.run(&["baseline", "1.0.0", "--force"]).success();
    let releases = db.releases();
    assert_eq!(releases.len(), 2);
    assert_eq!(releases[1]["operation"], "baseline");
    assert_eq!(releases[1]["metadata"]["forced"], true);
}

// ---------------------------------------------------------------------------
// 10. The migration lock
// ---------------------------------------------------------------------------

#[test]
fn apply_waits_for_the_migration_lock_then_names_its_holder() {
    let db = Db::new("lock");
    let w = project(&db, &[USERS, ORDERS]);
    w.build_ok("1.0.0");

    let key = squizzle::db::lock::key_for(&squizzle::core::ident::Ident::new("squizzle").unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut config = pg::shared().admin_config(&db.name);
    config.application_name("blocker");
    let (blocker, pid) = rt.block_on(async {
        let (client, conn) = config.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client
            .execute(
                "SELECT pg_advisory_lock($1, $2)",
                &[&key.class, &key.object],
            )
            .await
            .unwrap();
        let pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        (client, pid)
    });

    let started = Instant::now();
    w.run(&["apply", "1.0.0", "--lock-timeout", "1s"])
        .code(8)
        .stderr_has(&format!("pid {pid}"))
        .stderr_has("blocker");
    let waited = started.elapsed();
    assert!(waited.as_secs_f64() >= 1.0, "waited only {waited:?}");
    assert!(!db.has_table("users"));

    let s = w.run(&["status", "--output", "json"]).success().json();
    assert_eq!(s["lockHolder"]["pid"], pid, "{s:#}");
    assert_eq!(s["lockHolder"]["applicationName"], "blocker");

    rt.block_on(async {
        blocker
            .execute(
                "SELECT pg_advisory_unlock($1, $2)",
                &[&key.class, &key.object],
            )
            .await
            .unwrap();
    });
    w.run(&["apply", "1.0.0", "--lock-timeout", "1s"]).success();
    assert!(db.has_table("users") && db.has_table("orders"));
    drop(blocker);
}

// ---------------------------------------------------------------------------
// 11. Least privilege
// ---------------------------------------------------------------------------

fn assert_ordinary_role(db: &Db, role: &str) {
    assert_eq!(
        db.value(&format!(
            "SELECT rolsuper::text || ',' || rolcreatedb::text FROM pg_roles WHERE rolname = {}",
            pg::quote_literal(role)
        ))
        .as_deref(),
        Some("false,false")
    );
}

#[test]
fn a_role_with_only_create_on_the_database_can_apply() {
    let db = Db::new("least_priv_create");
    let server = pg::shared();
    server.create_role("migrator", Some("migrator-pw"), false);
    assert_ordinary_role(&db, "migrator");
    db.query(&format!(
        "GRANT CREATE ON DATABASE {} TO migrator",
        pg::quote_ident(&db.name)
    ));

    let mut w = project(
        &db,
        &[
            (
                "0001_app.sql",
                "CREATE SCHEMA app;\nCREATE TABLE app.items (id bigint PRIMARY KEY);\n",
            ),
            (
                "0002_item_names.sql",
                "ALTER TABLE app.items ADD COLUMN name text;\n",
            ),
        ],
    );
    w.set_env("DATABASE_URL", &db.url_as("migrator", "migrator-pw"));
    w.build_ok("1.0.0");

    w.run(&["apply", "1.0.0"]).success();
    assert!(db.has_table("app.items"));
    assert_eq!(
        db.value("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'squizzle'")
            .as_deref(),
        Some("migrator")
    );
    assert_eq!(db.releases()[0]["applied_by_role"], "migrator");
    w.run(&["apply", "1.0.0"]).success().says("nothing to do");
}

#[test]
fn a_role_without_create_on_the_database_can_apply_into_schemas_the_dba_gave_it() {
    let db = Db::new("least_priv_schema");
    let server = pg::shared();
    server.create_role("schema_migrator", Some("migrator-pw"), false);
    assert_ordinary_role(&db, "schema_migrator");
    db.query(
        "CREATE SCHEMA squizzle AUTHORIZATION schema_migrator; \
         CREATE SCHEMA app AUTHORIZATION schema_migrator;",
    );
    assert_eq!(
        db.value(
            "SELECT has_database_privilege('schema_migrator', current_database(), 'CREATE')::text"
        )
        .as_deref(),
        Some("false")
    );

    let mut w = project(
        &db,
        &[
            (
                "0001_items.sql",
                "CREATE TABLE app.items (id bigint PRIMARY KEY);\n",
            ),
            (
                "0002_item_names.sql",
                "ALTER TABLE app.items ADD COLUMN name text;\n",
            ),
        ],
    );
    w.set_env("DATABASE_URL", &db.url_as("schema_migrator", "migrator-pw"));
    w.build_ok("1.0.0");

    w.run(&["apply", "1.0.0"]).success();
    assert!(db.has_table("app.items"));
    assert_eq!(
        db.tables("squizzle"),
        ["fingerprints", "layout", "migrations", "releases"]
    );
    assert_eq!(db.releases()[0]["applied_by_role"], "schema_migrator");
    w.run(&["apply", "1.0.0"]).success().says("nothing to do");
    w.run(&["status"]).success().says("Up to date with 1.0.0");
}

// ---------------------------------------------------------------------------
// 12. Connection errors
// ---------------------------------------------------------------------------

#[test]
fn a_wrong_password_exits_4_and_is_never_printed() {
    const CANARY: &str = "canary-7f3a9-wrong-password";
    let server = PgServer::start(PgOptions {
        password_auth: true,
        ..Default::default()
    });
    let mut w = World::plain();
    w.set_env(
        "DATABASE_URL",
        &format!(
            "{}?sslmode=disable",
            server.url("postgres", pg::ADMIN_USER, Some(CANARY))
        ),
    );
    w.build_ok("1.0.0");

    for args in [
        &["apply", "1.0.0"][..],
        &["apply", "1.0.0", "--output", "json"],
        &["status"],
        &["status", "--output", "json"],
    ] {
        let run = w.run(args).code(4).does_not_say(CANARY);
        if args.contains(&"json") {
            let doc = run.json();
            assert_eq!(doc["error"]["kind"], "authentication", "{doc:#}");
            assert_eq!(doc["error"]["code"], 4);
        } else {
            assert!(
                run.stderr.contains("refused the credentials"),
                "{}",
                run.stderr
            );
        }
    }
    // The right password works, so the refusal above was about the password.
    w.set_env(
        "DATABASE_URL",
        &format!("{}?sslmode=disable", server.admin_url("postgres")),
    );
    w.run(&["apply", "1.0.0"]).success();
}

#[test]
fn a_server_that_is_not_listening_exits_3_and_suggests_checking_host_and_port() {
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
    w.build_ok("1.0.0");

    w.run(&["apply", "1.0.0"])
        .code(3)
        .stderr_has(&format!("127.0.0.1:{port}"))
        .stderr_has("check the host, port");
    let doc = w
        .run(&["apply", "1.0.0", "--output", "json"])
        .code(3)
        .json();
    assert_eq!(doc["error"]["kind"], "connection");
}

// ---------------------------------------------------------------------------
// 13. history_schema
// ---------------------------------------------------------------------------

#[test]
fn history_schema_from_the_environment_puts_the_history_there() {
    let db = Db::new("history_schema");
    let w = project(&db, &[USERS, ORDERS]);
    w.config(&format!(
        "{PLAIN_CONFIG}\n[environments.x]\nhistory_schema = \"ops_history\"\n"
    ));
    w.build_ok("1.0.0");

    w.run(&["apply", "1.0.0", "--env", "x"]).success();
    assert!(db.has_table("users"));
    assert!(!db.has_schema("squizzle"));
    assert_eq!(
        db.tables("ops_history"),
        ["fingerprints", "layout", "migrations", "releases"]
    );
    assert_eq!(db.rows_in("ops_history", "releases", "id").len(), 1);
    assert_eq!(
        db.rows_in("ops_history", "migrations", "migration_id")
            .len(),
        2
    );

    let s = w
        .run(&["status", "--env", "x", "--output", "json"])
        .success()
        .json();
    assert_eq!(s["historySchema"], "ops_history");
    assert_eq!(s["upToDate"], true);
    w.run(&["apply", "1.0.0", "--env", "x"])
        .success()
        .says("nothing to do");
}

#[test]
fn an_invalid_history_schema_is_a_configuration_error() {
    let db = Db::new("bad_history_schema");
    let w = project(&db, &[USERS]);
    w.build_ok("1.0.0");
    w.config(&format!(
        "{PLAIN_CONFIG}\n[environments.x]\nhistory_schema = \"Bad-Name\"\n"
    ));

    w.run(&["apply", "1.0.0", "--env", "x"])
        .code(2)
        .says("history_schema")
        .says("Bad-Name");
    assert!(!db.has_table("users"));
    assert!(!db.has_schema("squizzle"));
}

#[test]
fn a_named_environment_without_a_database_url_is_refused_not_sent_to_libpq_defaults() {
    let db = Db::new("env_without_url");
    // Like `project`, but without DATABASE_URL: only the config could say where to go.
    let w = World::new();
    w.config(&format!(
        "{PLAIN_CONFIG}\n[environments.production]\nrequire_signature = false\n"
    ));
    w.write(&format!("migrations/{}", USERS.0), USERS.1);
    w.build_ok("1.0.0");
    w.run(&["apply", "1.0.0", "--env", "production"])
        .code(2)
        .says("environments.production.database_url");
    assert!(!db.has_table("users"));
}

fn index_valid(db: &Db, name: &str) -> Option<String> {
    db.value(&format!(
        "SELECT (SELECT indisvalid::text FROM pg_index WHERE indexrelid = to_regclass('{name}'))"
    ))
}

#[test]
fn an_index_build_that_failed_is_rebuilt_on_resume_never_taken_for_done() {
    // 1,000 rows with n = id % 10: a unique index on n cannot be built.
    let db = Db::new("invalid_ix");
    let w = project(
        &db,
        &[
            (
                "0001_t.sql",
                "CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL);\nINSERT INTO t SELECT g, g % 10 FROM generate_series(1, 1000) g;\n",
            ),
            (
                "0002_indexes.sql",
                "-- squizzle:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_id ON t (id);\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_n_uniq ON t (n);\n",
            ),
        ],
    );
    w.build_ok("1.0.0");
    w.run(&["apply", "1.0.0"])
        .code(11)
        .stderr_has("0002_indexes")
        .stderr_has("23505");
    // PostgreSQL leaves the failed build behind as an INVALID index.
    assert_eq!(index_valid(&db, "t_n_uniq").as_deref(), Some("false"));

    // status names it and does not call the database up to date.
    let s = w.run(&["status", "--output", "json"]).success().json();
    assert_eq!(s["upToDate"], false);
    assert_eq!(
        s["invalidIndexes"],
        json!([{ "schema": "public", "name": "t_n_uniq", "table": "t" }])
    );
    w.run(&["status"])
        .success()
        .stdout_has("public.t_n_uniq (on t)")
        .does_not_say("Up to date");

    // The re-run resumes at statement 2: IF NOT EXISTS must not take the
    // invalid index for a built one. It is dropped and built again, which
    // fails again on the same duplicates: no false success.
    w.run(&["apply", "1.0.0"])
        .code(11)
        .says("t_n_uniq (on t) is INVALID")
        .stderr_has("23505");
    assert_eq!(index_valid(&db, "t_n_uniq").as_deref(), Some("false"));
    assert_eq!(
        db.count("SELECT count(*) FROM squizzle.migrations WHERE complete"),
        1
    );

    // Once the data allows it (fixed outside the release here), the resume
    // rebuilds the index and the release is applied with a valid index.
    db.query("UPDATE t SET n = id");
    w.run(&["apply", "1.0.0"])
        .success()
        .says("dropping it so that statement 2 of migrations/0002_indexes.sql builds it again");
    assert_eq!(index_valid(&db, "t_n_uniq").as_deref(), Some("true"));
    assert_eq!(index_valid(&db, "t_id").as_deref(), Some("true"));
    let s = w.run(&["status", "--output", "json"]).success().json();
    assert_eq!(s["upToDate"], true, "{s:#}");
    assert_eq!(s["invalidIndexes"], json!([]));

    // An invalid index squizzle did not build is named by apply, with what to do.
    let _ = db.error_of("CREATE UNIQUE INDEX CONCURRENTLY other_uniq ON t ((n % 2))");
    assert_eq!(index_valid(&db, "other_uniq").as_deref(), Some("false"));
    w.run(&["apply", "1.0.0"])
        .success()
        .says("other_uniq (on t) is INVALID")
        .says("REINDEX INDEX CONCURRENTLY \"public\".\"other_uniq\"");
}

#[test]
fn a_backend_terminated_mid_statement_is_a_lost_connection_not_a_failed_migration() {
    let db = Db::new("terminated");
    let w = project(
        &db,
        &[(
            "0001_slow.sql",
            "-- squizzle:no-transaction\nCREATE TABLE slow (id int);\nSELECT pg_sleep(30);\n",
        )],
    );
    w.build_ok("1.0.0");
    let killer = {
        let name = db.name.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            while started.elapsed() < std::time::Duration::from_secs(20) {
                let rows = pg::shared().query(
                    &name,
                    "SELECT count(pg_terminate_backend(pid))::text FROM pg_stat_activity \
                     WHERE datname = current_database() AND pid <> pg_backend_pid() \
                     AND query LIKE 'SELECT pg_sleep(30)%'",
                );
                if rows[0][0].as_deref() == Some("1") {
                    return true;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            false
        })
    };
    w.run(&["apply", "1.0.0"])
        .code(3)
        .stderr_has("lost the connection to the database while running migrations/0001_slow.sql (statement 2)")
        .stderr_has("57P01")
        .stderr_has("run the command again")
        .does_not_say("new release");
    assert!(killer.join().unwrap(), "the backend was never seen running");
    // Statement 1 is recorded; a re-run continues at statement 2.
    assert_eq!(
        db.value("SELECT statements_done::text FROM squizzle.migrations")
            .as_deref(),
        Some("1")
    );
}

#[test]
fn a_no_transaction_file_that_failed_midway_is_fixed_by_a_new_release() {
    let db = Db::new("fix_partial");
    let w = project(
        &db,
        &[
            USERS,
            (
                "0002_index.sql",
                "-- squizzle:no-transaction\nCREATE TABLE IF NOT EXISTS audit_log (id int);\nCREATE INDEX CONCURRENTLY audit_log_id ON audit_logs (id);\n",
            ),
        ],
    );
    w.build_ok("1.0.0");
    w.run(&["apply", "1.0.0"])
        .code(11)
        .stderr_has("audit_logs")
        .stderr_has("Fix it in a new release and apply that");
    assert_eq!(
        db.value("SELECT statements_done::text FROM squizzle.migrations WHERE migration_id = '0002_index'")
            .as_deref(),
        Some("1")
    );

    // The fix changes the partly-run file: not drift, it replaces it.
    w.write(
        "migrations/0002_index.sql",
        "-- squizzle:no-transaction\nCREATE TABLE IF NOT EXISTS audit_log (id int);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS audit_log_id ON audit_log (id);\n",
    );
    let v2 = build_rewriting(&w, "1.1.0", &["0002_index"]);
    w.run(&["apply", "1.1.0"])
        .success()
        .says("migrations/0002_index.sql stopped after 1 of 2 statements with other content")
        .says("runs from its first statement");
    let row = db.query(
        "SELECT sha256, version, complete::text, statements_done::text FROM squizzle.migrations WHERE migration_id = '0002_index'",
    );
    let files = w.squizzle_manifest("1.1.0")["files"].clone();
    let sha = files
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "0002_index")
        .unwrap()["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        row[0],
        [
            Some(sha),
            Some("1.1.0".into()),
            Some("true".into()),
            Some("2".into())
        ]
    );
    assert_eq!(index_valid(&db, "audit_log_id").as_deref(), Some("true"));
    assert_eq!(v2["version"], "1.1.0");
    // A COMPLETE file that changes is still drift.
    w.write(
        "migrations/0002_index.sql",
        "-- squizzle:no-transaction\nCREATE TABLE IF NOT EXISTS audit_log (id bigint);\n",
    );
    build_rewriting(&w, "1.2.0", &["0002_index"]);
    w.run(&["apply", "1.2.0"]).code(5);
}

#[test]
fn status_is_not_up_to_date_while_the_release_row_is_missing() {
    let db = Db::new("unrecorded");
    let w = project(
        &db,
        &[
            USERS,
            (
                "0002_index.sql",
                "-- squizzle:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS users_name ON users (name);\n",
            ),
        ],
    );
    w.build_ok("1.0.0");
    w.run(&["apply", "1.0.0"]).success();
    // As if the process died after the last no-transaction statement was
    // recorded and before the release row was written.
    db.query(
        "SET session_replication_role = replica; DELETE FROM squizzle.releases; SET session_replication_role = origin;",
    );
    let s = w.run(&["status", "--output", "json"]).success().json();
    assert_eq!(s["upToDate"], false, "{s:#}");
    assert_eq!(s["unrecorded"], true, "{s:#}");
    assert_eq!(s["pending"], json!([]));
    w.run(&["status"])
        .success()
        .stdout_has("Applied: none")
        .says("1.0.0 is not recorded as applied")
        .says("run `squizzle apply 1.0.0` to record it")
        .does_not_say("Up to date");
    w.run(&["apply", "1.0.0"]).success();
    let s = w.run(&["status", "--output", "json"]).success().json();
    assert_eq!(s["upToDate"], true, "{s:#}");
    assert_eq!(s["applied"][0]["version"], "1.0.0");
}

/// A 32 KiB tmpfs, unmounted when dropped.
struct TinyDisk(PathBuf);

impl TinyDisk {
    fn mount() -> Self {
        let dir = tempfile::tempdir().unwrap().keep();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=32k", "tmpfs"])
            .arg(&dir)
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        TinyDisk(dir)
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Apply reads the files it runs from the verified layer into memory: a
/// scratch disk too small for them (TMPDIR on a 32 KiB tmpfs, the release
/// ~140 KiB) does not stop it, and nothing is written there. (Before, apply
/// extracted the release into TMPDIR and this failed with "No space left on
/// device".)
#[test]
fn apply_writes_nothing_to_the_scratch_disk_so_a_full_one_does_not_stop_it() {
    let db = Db::new("full_disk");
    let big = format!(
        "CREATE TABLE padded (id int);\n{}",
        "-- padding to fill the scratch disk\n".repeat(4000)
    );
    let mut w = project(&db, &[("0001_padded.sql", big.as_str())]);
    w.build_ok("1.0.0");
    let disk = TinyDisk::mount();
    w.set_env("TMPDIR", disk.0.to_str().unwrap());
    w.run(&["apply", "1.0.0"]).success();
    assert_eq!(
        db.value("SELECT to_regclass('padded')::text").as_deref(),
        Some("padded")
    );
    assert_eq!(
        std::fs::read_dir(&disk.0).unwrap().count(),
        0,
        "apply left something in TMPDIR"
    );
    drop(disk);
}

#[test]
fn the_password_file_is_used_as_libpq_uses_it_and_ignored_when_others_can_read_it() {
    let server = PgServer::start(PgOptions {
        password_auth: true,
        ..Default::default()
    });
    let mut w = World::plain();
    w.set_env(
        "DATABASE_URL",
        &format!(
            "{}?sslmode=disable",
            server.url("postgres", pg::ADMIN_USER, None)
        ),
    );
    w.build_ok("1.0.0");
    let line = format!(
        "# local test server\n*:{}:*:{}:{}\n",
        server.port(),
        pg::ADMIN_USER,
        pg::ADMIN_PASSWORD
    );
    let set_mode = |path: &std::path::Path, mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };

    // ~/.pgpass readable by others: ignored (with a warning), so no password.
    let home_file = w.home().join(".pgpass");
    std::fs::write(&home_file, &line).unwrap();
    set_mode(&home_file, 0o644);
    w.run(&["apply", "1.0.0"])
        .code(4)
        .stderr_has("has group or world access")
        .stderr_has("chmod 0600")
        .does_not_say(pg::ADMIN_PASSWORD);

    // Private: used.
    set_mode(&home_file, 0o600);
    w.run(&["status"])
        .success()
        .does_not_say(pg::ADMIN_PASSWORD);

    // PGPASSFILE wins over ~/.pgpass.
    std::fs::write(&home_file, "*:*:*:*:wrong\n").unwrap();
    set_mode(&home_file, 0o600);
    let other = w.home().join("service.pgpass");
    std::fs::write(&other, &line).unwrap();
    set_mode(&other, 0o600);
    w.run(&["apply", "1.0.0"]).code(4);
    w.set_env("PGPASSFILE", other.to_str().unwrap());
    w.run(&["apply", "1.0.0"])
        .success()
        .does_not_say(pg::ADMIN_PASSWORD);
}

#[test]
fn a_role_that_cannot_use_the_history_schema_is_told_which_grant_is_missing() {
    let db = Db::new("no_history_priv");
    let server = pg::shared();
    server.create_role("outsider", Some("outsider-pw"), false);
    assert_ordinary_role(&db, "outsider");
    // The history schema exists and belongs to someone else.
    db.query("CREATE SCHEMA squizzle; GRANT CREATE ON SCHEMA public TO outsider;");
    let mut w = project(&db, &[USERS]);
    w.set_env("DATABASE_URL", &db.url_as("outsider", "outsider-pw"));
    w.build_ok("1.0.0");
    w.run(&["apply", "1.0.0"])
        .code(1)
        .stderr_has("permission denied for schema squizzle")
        .stderr_has("must own squizzle's history schema")
        .stderr_has("ALTER SCHEMA \"squizzle\" OWNER TO <the migrating role>")
        .stderr_has("GRANT CREATE ON DATABASE");
    assert!(!db.has_table("public.users"));
    // Following the advice works.
    db.query("ALTER SCHEMA squizzle OWNER TO outsider");
    w.run(&["apply", "1.0.0"]).success();
}

#[test]
fn an_unencoded_at_sign_in_a_url_password_is_named_without_showing_the_password() {
    let db = Db::new("url_at");
    let mut w = project(&db, &[USERS]);
    w.build_ok("1.0.0");
    let port = pg::shared().port();
    w.set_env(
        "DATABASE_URL",
        &format!("postgres://app:Tr0ub@dor@127.0.0.1:{port}/app?sslmode=disable"),
    );
    w.run(&["apply", "1.0.0"])
        .code(2)
        .stderr_has("unencoded '@'")
        .stderr_has("%40")
        .does_not_say("Tr0ub");
}

#[test]
fn a_connection_service_is_enough_to_find_the_database() {
    let db = Db::new("service");
    let mut w = project(&db, &[USERS]);
    w.build_ok("1.0.0");
    let file = w.home().join("services.conf");
    std::fs::write(
        &file,
        format!(
            "[migrations]\nhost=127.0.0.1\nport={}\ndbname={}\nuser={}\nsslmode=disable\n",
            pg::shared().port(),
            db.name,
            pg::ADMIN_USER
        ),
    )
    .unwrap();
    w.set_env("PGSERVICEFILE", file.to_str().unwrap());
    w.set_env("PGSERVICE", "migrations");
    w.set_env("DATABASE_URL", "");
    w.run(&["apply", "1.0.0"]).success().stdout_has(&format!(
        "127.0.0.1:{}/{}",
        pg::shared().port(),
        db.name
    ));
    assert!(db.has_table("public.users"));
    w.set_env("PGSERVICE", "absent");
    w.run(&["status"])
        .code(2)
        .stderr_has("\"absent\" is not defined");
}
