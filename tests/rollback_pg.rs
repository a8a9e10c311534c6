//! `squizzle rollback` against a real PostgreSQL: the real binary (clean
//! environment, temporary project: `squizzle_test_support::World`) on a database of its own on
//! the shared test server (`support/pg.rs`), reached through `DATABASE_URL`.

use std::sync::mpsc;

use serde_json::{Value, json};
use squizzle_test_support::pg;
use squizzle_test_support::{PLAIN_CONFIG, World};

/// A project aimed at a fresh database; `.0` is the database name.
fn scene(prefix: &str) -> (World, String) {
    let admin = pg::shared().create_database(prefix);
    let mut w = World::new();
    w.config(PLAIN_CONFIG);
    w.set_env("DATABASE_URL", &format!("{admin}?sslmode=disable"));
    (w, pg::db_name(&admin).to_owned())
}

/// The first column of the first row `sql` returns (NULL as "").
fn scalar(db: &str, sql: &str) -> String {
    let rows = pg::shared().query(db, sql);
    rows.first().and_then(|r| r[0].clone()).unwrap_or_default()
}

fn relation_exists(db: &str, rel: &str) -> bool {
    scalar(
        db,
        &format!(
            "SELECT (to_regclass({}) IS NOT NULL)::text",
            pg::quote_literal(rel)
        ),
    ) == "true"
}

fn email_column(db: &str) -> bool {
    scalar(
        db,
        "SELECT count(*)::text FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'email'",
    ) == "1"
}

/// squizzle's release rows (oldest first) or its migration rows (by id), as JSON.
fn history_rows(db: &str, table: &str) -> Vec<Value> {
    if scalar(db, "SELECT (to_regnamespace('squizzle') IS NOT NULL)::text") != "true" {
        return Vec::new();
    }
    let order = if table == "releases" {
        "id"
    } else {
        "migration_id"
    };
    let text = scalar(
        db,
        &format!(
            "SELECT coalesce(json_agg(r ORDER BY {order}), '[]')::text FROM squizzle.{table} r"
        ),
    );
    serde_json::from_str::<Vec<Value>>(&text).expect("history rows as JSON")
}

fn migration_ids(db: &str) -> Vec<String> {
    history_rows(db, "migrations")
        .iter()
        .map(|m| m["migration_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every application column, view and index: enough to see any change.
fn app_schema(db: &str) -> String {
    scalar(
        db,
        "SELECT string_agg(x, ' ' ORDER BY x) FROM ( \
           SELECT table_name || '.' || column_name AS x FROM information_schema.columns WHERE table_schema = 'public' \
           UNION ALL SELECT 'index ' || indexname FROM pg_indexes WHERE schemaname = 'public' \
           UNION ALL SELECT 'view ' || viewname FROM pg_views WHERE schemaname = 'public') s",
    )
}

// 1.0.0: users and orders. 1.1.0 adds an email column, a view that reads it
// (so 0003's rollback only works after 0004's: the order is checked by
// PostgreSQL itself) and an index built concurrently, outside a transaction.
const V1: &[(&str, &str)] = &[
    (
        "0001_create_users.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY, name text);\n",
    ),
    ("0001_create_users.down.sql", "DROP TABLE users;\n"),
    (
        "0002_create_orders.sql",
        "CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint REFERENCES users (id));\n",
    ),
    ("0002_create_orders.down.sql", "DROP TABLE orders;\n"),
];
const EMAIL_UP: (&str, &str) = (
    "0003_add_email.sql",
    "ALTER TABLE users ADD COLUMN email text;\n",
);
const EMAIL_DOWN: (&str, &str) = (
    "0003_add_email.down.sql",
    "-- the view of 0004 must be gone first\nALTER TABLE users DROP COLUMN email;\n",
);
const VIEW_UP: (&str, &str) = (
    "0004_user_emails.sql",
    "CREATE VIEW user_emails AS SELECT id, email FROM users;\n",
);
const VIEW_DOWN: (&str, &str) = ("0004_user_emails.down.sql", "DROP VIEW user_emails;\n");
const INDEX_UP: (&str, &str) = (
    "0005_index_names.sql",
    "-- squizzle:no-transaction\nCREATE INDEX CONCURRENTLY users_name_idx ON users (name);\n",
);
const INDEX_DOWN: (&str, &str) = (
    "0005_index_names.down.sql",
    "-- squizzle:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS users_name_idx;\n",
);

fn write_all(w: &World, files: &[(&str, &str)]) {
    for (name, sql) in files {
        w.write(&format!("migrations/{name}"), sql);
    }
}

/// 1.0.0 and 1.1.0 (with `v2` as 1.1.0's new files) built and both applied.
fn two_releases_applied(prefix: &str, v2: &[(&str, &str)]) -> (World, String) {
    let (w, db) = scene(prefix);
    write_all(&w, V1);
    w.build_ok("1.0.0");
    write_all(&w, v2);
    w.build_ok("1.1.0");
    w.run(&["apply", "1.0.0"]).success();
    w.run(&["apply", "1.1.0"]).success();
    assert!(email_column(&db));
    (w, db)
}

const FULL_V2: &[(&str, &str)] = &[
    EMAIL_UP, EMAIL_DOWN, VIEW_UP, VIEW_DOWN, INDEX_UP, INDEX_DOWN,
];

#[test]
fn rollback_undoes_what_the_release_introduced_newest_first_and_apply_runs_it_again() {
    let (w, db) = two_releases_applied("rb_happy", FULL_V2);
    let v2 = w.squizzle_manifest("1.1.0");
    assert_eq!(v2["previousVersion"], "1.0.0");
    assert!(relation_exists(&db, "users_name_idx"));

    let report = w
        .run(&["rollback", "1.1.0", "--output", "json"])
        .success()
        .json();
    assert_eq!(report["outcome"], "rolled_back");
    assert_eq!(report["version"], "1.1.0");
    assert_eq!(report["previousVersion"], "1.0.0");
    assert_eq!(report["migrationsRolledBack"], 3);
    let planned: Vec<(&str, &str, &str)> = report["planned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["migration"].as_str().unwrap(),
                p["script"].as_str().unwrap(),
                p["transaction"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        planned,
        [
            (
                "0005_index_names",
                "migrations/0005_index_names.down.sql",
                "none"
            ),
            (
                "0004_user_emails",
                "migrations/0004_user_emails.down.sql",
                "default"
            ),
            (
                "0003_add_email",
                "migrations/0003_add_email.down.sql",
                "default"
            ),
        ]
    );

    // The schema is 1.0.0's again; 1.0.0's own tables are untouched.
    assert!(!email_column(&db));
    assert!(!relation_exists(&db, "user_emails"));
    assert!(!relation_exists(&db, "users_name_idx"));
    assert!(relation_exists(&db, "users") && relation_exists(&db, "orders"));
    assert_eq!(
        migration_ids(&db),
        ["0001_create_users", "0002_create_orders"]
    );

    let releases = history_rows(&db, "releases");
    assert_eq!(releases.len(), 3);
    let row = &releases[2];
    assert_eq!(row["operation"], "rollback");
    assert_eq!(row["version"], "1.1.0");
    assert_eq!(row["success"], true);
    assert_eq!(row["migrations_run"], 3);
    assert_eq!(row["artifact_digest"], report["digest"]);
    assert_eq!(row["checksum"], v2["tarball"]["sha256"]);
    assert_eq!(row["applied_by_role"], pg::ADMIN_USER);
    assert_eq!(row["metadata"]["previousVersion"], "1.0.0");
    assert_eq!(
        row["metadata"]["rolledBack"][2],
        json!({ "migration": "0003_add_email", "script": "migrations/0003_add_email.down.sql", "appliedBy": "1.1.0" })
    );
    assert_eq!(
        Some(row["id"].as_i64().unwrap()),
        report["releaseId"].as_i64()
    );

    // status: 1.0.0 is what is in effect, 1.1.0's migrations are pending again.
    let s = w.run(&["status", "--output", "json"]).success().json();
    assert_eq!(s["applied"][0]["version"], "1.0.0");
    assert_eq!(s["applied"].as_array().unwrap().len(), 1, "{s:#}");
    let pending: Vec<&str> = s["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        pending,
        ["0003_add_email", "0004_user_emails", "0005_index_names"]
    );
    assert_eq!(s["recent"][2]["operation"], "rollback");

    // A second rollback has nothing left to undo.
    w.run(&["rollback", "1.1.0"])
        .success()
        .says("nothing to do");
    assert_eq!(history_rows(&db, "releases").len(), 3);

    // apply runs them again.
    let again = w
        .run(&["apply", "1.1.0", "--output", "json"])
        .success()
        .json();
    assert_eq!(again["migrationsRun"], 3);
    assert!(email_column(&db) && relation_exists(&db, "user_emails"));
    assert!(relation_exists(&db, "users_name_idx"));
    assert_eq!(migration_ids(&db).len(), 5);

    // And the text output names each script as it runs.
    w.run(&["rollback", "1.1.0"])
        .success()
        .stdout_has("✓ Integrity verified")
        .stdout_has(
            "1. migrations/0005_index_names.down.sql (undoes 0005_index_names, applied by 1.1.0)",
        )
        .stdout_has("✓ migrations/0004_user_emails.down.sql (1 statement")
        .stdout_has("no transaction")
        .stdout_has("Rolled back 1.1.0");
    assert!(!email_column(&db));
}

/// Two projects on one database: `.0` is where 1.0.0 was built and applied,
/// `.1` a fresh checkout of the same repository (no local store), as a CI job
/// has; `.2` the database name.
fn fresh_checkout_scene(prefix: &str) -> (World, World, String) {
    let admin = pg::shared().create_database(prefix);
    let url = format!("{admin}?sslmode=disable");
    let mut dev = World::new();
    dev.config(PLAIN_CONFIG);
    dev.set_env("DATABASE_URL", &url);
    let mut ci = World::new();
    ci.config(PLAIN_CONFIG);
    ci.set_env("DATABASE_URL", &url);
    (dev, ci, pg::db_name(&admin).to_owned())
}

#[test]
fn a_release_built_in_a_fresh_checkout_rolls_back_only_what_it_applied_here() {
    let (dev, ci, db) = fresh_checkout_scene("rb_fresh");
    write_all(&dev, V1);
    dev.build_ok("1.0.0");
    dev.run(&["apply", "1.0.0"]).success();
    pg::shared().query(
        &db,
        "INSERT INTO users VALUES (1, 'ada'); INSERT INTO orders VALUES (10, 1);",
    );

    // The CI job builds 1.1.0 from a clean clone: its store has no 1.0.0, so
    // the manifest records no previous version and claims all three migrations.
    write_all(&ci, V1);
    write_all(&ci, &[EMAIL_UP, EMAIL_DOWN]);
    ci.build_ok("1.1.0");
    assert_eq!(
        ci.squizzle_manifest("1.1.0")["previousVersion"],
        Value::Null
    );
    ci.run(&["apply", "1.1.0"]).success();
    assert!(email_column(&db));

    let dry = ci
        .run(&["rollback", "1.1.0", "--dry-run", "--output", "json"])
        .success()
        .json();
    assert_eq!(dry["outcome"], "dry_run");
    assert_eq!(dry["planned"].as_array().unwrap().len(), 1, "{dry:#}");
    assert_eq!(
        dry["kept"],
        json!([
            { "migration": "0001_create_users", "appliedBy": "1.0.0" },
            { "migration": "0002_create_orders", "appliedBy": "1.0.0" },
        ])
    );

    ci.run(&["rollback", "1.1.0"])
        .success()
        .stdout_has(
            "1. migrations/0003_add_email.down.sql (undoes 0003_add_email, applied by 1.1.0)",
        )
        .says("kept 0001_create_users (applied by 1.0.0), 0002_create_orders (applied by 1.0.0)")
        .does_not_say("0002_create_orders.down.sql")
        .does_not_say("0001_create_users.down.sql")
        .stdout_has("Rolled back 1.1.0");

    // 1.0.0's tables and their rows survive; only 1.1.0's column is gone.
    assert!(!email_column(&db));
    assert_eq!(
        scalar(
            &db,
            "SELECT (SELECT count(*) FROM users) || '/' || (SELECT count(*) FROM orders)"
        ),
        "1/1"
    );
    assert_eq!(
        migration_ids(&db),
        ["0001_create_users", "0002_create_orders"]
    );
    let row = history_rows(&db, "releases").pop().unwrap();
    assert_eq!(row["operation"], "rollback");
    assert_eq!(row["migrations_run"], 1);
    // 1.0.0 is what is in effect now, and rolling 1.1.0 back again is a no-op.
    let s = dev.run(&["status", "--output", "json"]).success().json();
    assert_eq!(s["applied"][0]["version"], "1.0.0", "{s:#}");
    ci.run(&["rollback", "1.1.0"])
        .success()
        .says("nothing to do");
}

#[test]
fn a_history_that_disagrees_with_the_manifest_refuses_the_rollback_naming_each_migration() {
    // 1.1.0 names 1.0.0 as its previous release, but this database never ran
    // 1.0.0: 1.1.0 applied all three migrations. Undoing 0001/0002 would drop
    // tables the manifest says 1.1.0 did not bring.
    let (w, db) = scene("rb_disagree");
    write_all(&w, V1);
    w.build_ok("1.0.0");
    write_all(&w, &[EMAIL_UP, EMAIL_DOWN]);
    w.build_ok("1.1.0");
    assert_eq!(w.squizzle_manifest("1.1.0")["previousVersion"], "1.0.0");
    w.run(&["apply", "1.1.0"]).success();
    let before = app_schema(&db);
    let releases = history_rows(&db, "releases").len();

    for args in [
        &["rollback", "1.1.0"][..],
        &["rollback", "1.1.0", "--dry-run"],
    ] {
        w.run(args)
            .code(7)
            .stderr_has("its manifest and this database's history disagree")
            .stderr_has("0001_create_users (migrations/0001_create_users.sql): recorded as applied by 1.1.0, but the manifest says it came with 1.0.0")
            .stderr_has("0002_create_orders (migrations/0002_create_orders.sql)")
            .stderr_has("nothing was run")
            .does_not_say("0003_add_email (");
    }
    assert_eq!(app_schema(&db), before);
    assert_eq!(migration_ids(&db).len(), 3);
    assert_eq!(history_rows(&db, "releases").len(), releases);
}

#[test]
fn a_missing_rollback_script_refuses_the_whole_rollback_before_anything_runs() {
    // 0004 and 0005 have no rollback script; 0003 has one.
    let (w, db) = two_releases_applied(
        "rb_missing",
        &[EMAIL_UP, EMAIL_DOWN, VIEW_UP, (INDEX_UP.0, "SELECT 1;\n")],
    );
    let before = app_schema(&db);
    let releases = history_rows(&db, "releases").len();

    w.run(&["rollback", "1.1.0"])
        .code(7)
        .stderr_has("no rollback script for 0005_index_names (migrations/0005_index_names.sql), 0004_user_emails (migrations/0004_user_emails.sql)")
        .stderr_has("nothing was run")
        .does_not_say("0003_add_email (");
    assert_eq!(app_schema(&db), before);
    assert_eq!(migration_ids(&db).len(), 5);
    // A refusal is not an attempt: no release row.
    assert_eq!(history_rows(&db, "releases").len(), releases);

    // The dry run refuses it the same way.
    w.run(&["rollback", "1.1.0", "--dry-run"]).code(7);
}

#[test]
fn a_failing_rollback_script_rolls_everything_back_and_is_recorded() {
    let (w, db) = two_releases_applied(
        "rb_failing",
        &[
            EMAIL_UP,
            (
                EMAIL_DOWN.0,
                "-- typo on line 2\nALTER TABLE users DROP COLUMN emial;\n",
            ),
            VIEW_UP,
            VIEW_DOWN,
        ],
    );
    let before = app_schema(&db);

    w.run(&["rollback", "1.1.0"])
        .code(7)
        .stdout_has("migrations/0003_add_email.down.sql failed at statement 1, line 2")
        .stdout_has("SQLSTATE 42703")
        .stderr_has("rollback of 1.1.0 failed")
        .stderr_has("its transaction was rolled back")
        .stderr_has("recorded");
    // One transaction: the view dropped by the first script is back.
    assert_eq!(app_schema(&db), before);
    assert!(relation_exists(&db, "user_emails"));
    assert_eq!(migration_ids(&db).len(), 4);

    let releases = history_rows(&db, "releases");
    assert_eq!(releases.len(), 3);
    let failed = &releases[2];
    assert_eq!(failed["operation"], "rollback");
    assert_eq!(failed["success"], false);
    assert_eq!(failed["error_sqlstate"], "42703");
    assert_eq!(failed["failing_migration"], "0003_add_email");
    assert_eq!(failed["failing_statement"], 1);
    assert_eq!(failed["failing_line"], 2);
    assert_eq!(failed["migrations_run"], 0);

    // 1.1.0 is still in effect: status shows nothing pending.
    let s = w.run(&["status", "--output", "json"]).success().json();
    assert_eq!(s["upToDate"], true, "{s:#}");
    w.run(&["status"])
        .success()
        .stderr_has("Last failed attempt: rollback of 1.1.0");

    // JSON mode carries the failure's details.
    let doc = w
        .run(&["rollback", "1.1.0", "--output", "json"])
        .code(7)
        .json();
    assert_eq!(doc["error"]["kind"], "rollback_failed");
    assert_eq!(
        doc["error"]["failure"]["path"],
        "migrations/0003_add_email.down.sql"
    );
    assert_eq!(doc["error"]["failure"]["sqlstate"], "42703");
}

#[test]
fn a_newer_release_on_top_must_be_rolled_back_first() {
    let (w, db) = two_releases_applied("rb_newer", &[EMAIL_UP, EMAIL_DOWN]);
    write_all(&w, &[VIEW_UP, VIEW_DOWN]);
    w.build_ok("1.2.0");
    w.run(&["apply", "1.2.0"]).success();

    w.run(&["rollback", "1.1.0"])
        .code(5)
        .stderr_has("1.2.0 is applied on top of it; roll back 1.2.0 first");
    assert!(email_column(&db) && relation_exists(&db, "user_emails"));

    w.run(&["rollback", "1.2.0"]).success();
    assert!(!relation_exists(&db, "user_emails") && email_column(&db));
    w.run(&["rollback", "1.1.0"]).success();
    assert!(!email_column(&db));
    assert_eq!(
        migration_ids(&db),
        ["0001_create_users", "0002_create_orders"]
    );
}

#[test]
fn nothing_applied_is_nothing_to_do_and_creates_nothing() {
    let (w, db) = scene("rb_nothing");
    write_all(&w, V1);
    w.build_ok("1.0.0");
    w.run(&["rollback", "1.0.0"])
        .success()
        .says("nothing to do");
    let report = w
        .run(&["rollback", "1.0.0", "--output", "json"])
        .success()
        .json();
    assert_eq!(report["outcome"], "nothing_to_do");
    assert_eq!(report["planned"], json!([]));
    assert_eq!(
        scalar(&db, "SELECT (to_regnamespace('squizzle') IS NULL)::text"),
        "true",
        "no history schema was created"
    );
}

#[test]
fn a_dry_run_prints_the_scripts_in_order_and_touches_nothing() {
    let (w, db) = two_releases_applied("rb_dry", FULL_V2);
    let before = app_schema(&db);
    let run = w
        .run(&["rollback", "1.1.0", "--dry-run"])
        .success()
        .stdout_has("-- migrations/0005_index_names.down.sql (0005_index_names)")
        .stdout_has("DROP VIEW user_emails;")
        .says("nothing was changed");
    let out = run.output();
    let pos = |s: &str| out.find(s).unwrap_or_else(|| panic!("{s} in {out}"));
    assert!(
        pos("DROP INDEX CONCURRENTLY") < pos("DROP VIEW")
            && pos("DROP VIEW") < pos("DROP COLUMN email")
    );
    assert_eq!(app_schema(&db), before);
    assert_eq!(history_rows(&db, "releases").len(), 2);
    assert_eq!(migration_ids(&db).len(), 5);

    let report = w
        .run(&["rollback", "1.1.0", "--dry-run", "--output", "json"])
        .success()
        .json();
    assert_eq!(report["outcome"], "dry_run");
    assert_eq!(report["planned"].as_array().unwrap().len(), 3);
    assert_eq!(report["releaseId"], Value::Null);
}

#[test]
fn a_tampered_release_is_refused_before_connecting() {
    let (w, db) = two_releases_applied("rb_tampered", &[EMAIL_UP, EMAIL_DOWN]);
    w.corrupt_blob(&w.layer_digest("1.1.0"));
    w.run(&["rollback", "1.1.0"]).code(6);
    assert!(email_column(&db));
    // With no server at all it is still exit 6, not a connection error.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    w.run_with_env(
        &["rollback", "1.1.0"],
        &[(
            "DATABASE_URL",
            &format!("postgres://nobody@127.0.0.1:{port}/x?sslmode=disable"),
        )],
    )
    .code(6);
}

/// Holds squizzle's migration lock from another session until dropped.
struct Blocker {
    release: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Blocker {
    fn hold(db: &str) -> Blocker {
        let key =
            squizzle::db::lock::key_for(&squizzle::core::ident::Ident::new("squizzle").unwrap());
        let mut config = pg::shared().admin_config(db);
        config.application_name("incident-blocker");
        let (locked_tx, locked_rx) = mpsc::channel();
        let (release, wait) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            pg::block_on(async move {
                let (client, conn) = config.connect(tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(conn);
                client
                    .query_one(
                        "SELECT pg_advisory_lock($1, $2)",
                        &[&key.class, &key.object],
                    )
                    .await
                    .unwrap();
                locked_tx.send(()).unwrap();
                let _ = tokio::task::spawn_blocking(move || wait.recv()).await;
            })
        });
        locked_rx.recv().expect("the blocker holds the lock");
        Blocker {
            release: Some(release),
            thread: Some(thread),
        }
    }
}

impl Drop for Blocker {
    fn drop(&mut self) {
        drop(self.release.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_held_lock_times_out_with_exit_8_but_a_dry_run_needs_no_lock() {
    let (w, db) = two_releases_applied("rb_lock", &[EMAIL_UP, EMAIL_DOWN]);
    let blocker = Blocker::hold(&db);
    w.run(&["rollback", "1.1.0", "--lock-timeout", "1s"])
        .code(8)
        .stderr_has("incident-blocker");
    assert!(email_column(&db));
    w.run(&["rollback", "1.1.0", "--dry-run"]).success();
    drop(blocker);
    w.run(&["rollback", "1.1.0", "--lock-timeout", "5s"])
        .success();
    assert!(!email_column(&db));
}

#[test]
fn in_file_mode_scripts_before_a_failure_stay_committed_and_their_migrations_are_pending() {
    let (w, db) = two_releases_applied(
        "rb_file_mode",
        &[
            EMAIL_UP,
            (
                EMAIL_DOWN.0,
                "ALTER TABLE users DROP COLUMN no_such_column;\n",
            ),
            VIEW_UP,
            VIEW_DOWN,
        ],
    );
    w.run(&["rollback", "1.1.0", "--tx-mode", "file"])
        .code(7)
        .stderr_has("1 rollback script(s) of this run stay committed");
    assert!(
        !relation_exists(&db, "user_emails"),
        "0004's rollback committed"
    );
    assert!(email_column(&db));
    assert_eq!(
        migration_ids(&db),
        ["0001_create_users", "0002_create_orders", "0003_add_email"]
    );
    let failed = history_rows(&db, "releases").pop().unwrap();
    assert_eq!(
        (failed["operation"].as_str(), failed["success"].as_bool()),
        (Some("rollback"), Some(false))
    );
    assert_eq!(failed["migrations_run"], 1);
    assert_eq!(failed["metadata"]["txMode"], "file");
}

#[test]
fn a_previous_release_that_cannot_be_found_is_not_guessed() {
    let (w, db) = two_releases_applied("rb_no_previous", &[EMAIL_UP, EMAIL_DOWN]);
    let mut index = w.index();
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["annotations"]["org.opencontainers.image.ref.name"] != "1.0.0");
    w.write_index(&index);
    w.run(&["rollback", "1.1.0"])
        .code(12)
        .stderr_has("needs its previous release 1.0.0");
    assert!(email_column(&db));
}
