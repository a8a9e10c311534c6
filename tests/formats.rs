//! Migration folders written by other tools (Prisma, Flyway, sqlx,
//! golang-migrate, dbmate, Atlas): `init` finds and names the layout, `build` reads it in the
//! tool's own order and transaction rules, and `apply` runs the release
//! against a real PostgreSQL 15. The fixtures are in `fixtures/formats/`; each
//! is shaped so that a wrong order or a wrong transaction mode fails the apply.

use serde_json::Value;
use squizzle_test_support::pg;
use squizzle_test_support::{World, copy_dir, repo_root};

/// A database of its own on the shared server, and its URL for squizzle.
fn database(prefix: &str) -> (String, String) {
    let admin = pg::shared().create_database(prefix);
    let name = pg::db_name(&admin).to_owned();
    (name, format!("{admin}?sslmode=disable"))
}

fn value(db: &str, sql: &str) -> Option<String> {
    let rows = pg::shared().query(db, sql);
    assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
    rows[0][0].clone()
}

/// A project holding `fixtures/formats/<fixture>` at `at`, aimed at a new database.
fn project(fixture: &str, at: &str, db_prefix: &str) -> (World, String) {
    let mut w = World::new();
    copy_dir(
        &repo_root().join("fixtures/formats").join(fixture),
        &w.path(at),
    );
    let (db, url) = database(db_prefix);
    w.set_env("DATABASE_URL", &url);
    (w, db)
}

/// (id, kind, transaction) of every file, in manifest order.
fn files(manifest: &Value) -> Vec<(String, String, String)> {
    let mut files: Vec<&Value> = manifest["files"].as_array().unwrap().iter().collect();
    files.sort_by_key(|f| (f["kind"].as_str().unwrap().to_owned(), f["order"].as_u64()));
    files
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_owned(),
                f["kind"].as_str().unwrap().to_owned(),
                f["transaction"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn row(id: &str, kind: &str, tx: &str) -> (String, String, String) {
    (id.to_owned(), kind.to_owned(), tx.to_owned())
}

fn index_is_valid(db: &str, index: &str) -> bool {
    value(
        db,
        &format!(
            "SELECT coalesce((SELECT indisvalid::text FROM pg_index WHERE indexrelid = to_regclass({})), 'missing')",
            pg::quote_literal(index)
        ),
    )
    .as_deref()
        == Some("true")
}

#[test]
fn prisma_folders_run_in_prisma_order_not_numeric_order() {
    let (w, db) = project("prisma/migrations", "prisma/migrations", "fmt_prisma");
    // A hand-named folder with a shorter timestamp. Prisma compares folder
    // names as text, so it runs last ('0' sorts before '_'); compared as
    // numbers it would run first, before the column it changes exists.
    w.write(
        "prisma/migrations/2024020108_hotfix/migration.sql",
        "-- AlterTable\nALTER TABLE \"Post\" ALTER COLUMN \"published\" SET DEFAULT true;\n",
    );
    w.run(&["init"])
        .success()
        .stdout_has("Found migrations in prisma layout: prisma/migrations");
    let config = w.read_string("squizzle.toml");
    assert!(config.contains("format = \"prisma\""), "{config}");

    let built = w.build_ok("1.0.0");
    assert_eq!(built["format"], "prisma", "{built:#}");
    let manifest = w.squizzle_manifest("1.0.0");
    assert_eq!(manifest["format"], "prisma");
    assert_eq!(
        files(&manifest),
        [
            row("20240105093000_init", "migration", "default"),
            row("20240112140000_add_posts", "migration", "default"),
            row("20240201080000_post_published", "migration", "default"),
            row("2024020108_hotfix", "migration", "default"),
            row("20240201080000_post_published", "rollback", "default"),
        ]
    );
    let paths: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"prisma/migrations/20240105093000_init/migration.sql"),
        "{paths:?}"
    );

    w.run(&["apply", "1.0.0"]).success();
    assert_eq!(
        value(
            &db,
            "SELECT column_default FROM information_schema.columns WHERE table_name = 'Post' AND column_name = 'published'"
        )
        .as_deref(),
        Some("true")
    );
    assert_eq!(
        value(&db, "SELECT count(*)::text FROM squizzle.migrations").as_deref(),
        Some("4")
    );
}

#[test]
fn a_flattened_prisma_history_with_timestamps_of_two_widths_is_refused_not_misordered() {
    let w = World::new();
    w.config("[project]\nmigrations = \"migrations\"\n");
    // 15 and 17 digits: by number the first runs first, by name the second.
    w.write(
        "migrations/202401011200000_create_users.sql",
        "CREATE TABLE users (id int);\n",
    );
    w.write(
        "migrations/20231231120000000_add_email.sql",
        "ALTER TABLE users ADD COLUMN email text;\n",
    );
    let run = w.run(&["build", "1.0.0"]).code(2);
    let out = run.output();
    assert!(out.contains("202401011200000_create_users.sql"), "{out}");
    assert!(out.contains("20231231120000000_add_email.sql"), "{out}");
    assert!(out.contains("15 and 17 digits"), "{out}");
    assert!(!w.exists("db/tarballs/squizzle-1.0.0.tar.gz"));
    assert!(w.files_under("db/oci").iter().all(|f| !f.contains("1.0.0")));
}

#[test]
fn flyway_versions_run_in_numeric_part_order_and_the_no_transaction_script_alone() {
    let (w, db) = project(
        "flyway/sql",
        "src/main/resources/db/migration",
        "fmt_flyway",
    );
    w.run(&["init"])
        .success()
        .stdout_has("Found migrations in flyway layout: src/main/resources/db/migration");
    let built = w.build_ok("1.0.0");
    assert_eq!(built["format"], "flyway");
    assert_eq!(
        files(&w.squizzle_manifest("1.0.0")),
        [
            row("V1__create_accounts", "migration", "default"),
            row("V1.1__add_email", "migration", "default"),
            row("V2__create_ledger", "migration", "default"),
            // executeInTransaction=false in V10__ledger_account_index.sql.conf
            row("V10__ledger_account_index", "migration", "none"),
            row("V2__create_ledger", "rollback", "default"),
        ]
    );
    w.run(&["apply", "1.0.0"]).success();
    assert!(index_is_valid(&db, "ledger_account_idx"));
    assert_eq!(
        value(
            &db,
            "SELECT count(*)::text FROM information_schema.columns WHERE table_name = 'accounts' AND column_name = 'email'"
        )
        .as_deref(),
        Some("1")
    );
}

#[test]
fn flyway_features_squizzle_cannot_honour_are_refused_with_exit_2() {
    let (w, _db) = project("flyway/sql", "sql", "fmt_flyway_bad");
    w.config("[project]\nmigrations = \"sql\"\n");
    w.write(
        "sql/R__refresh_views.sql",
        "CREATE OR REPLACE VIEW v AS SELECT 1;\n",
    );
    w.run(&["build", "1.0.0"])
        .code(2)
        .stderr_has("repeatable migration");
    w.remove("sql/R__refresh_views.sql");
    // 2 and 2.0 are one version to Flyway.
    w.write("sql/V2.0__again.sql", "SELECT 1;\n");
    w.run(&["build", "1.0.0"])
        .code(2)
        .stderr_has("both have number");
    assert!(!w.exists("db/tarballs/squizzle-1.0.0.tar.gz"));
}

#[test]
fn sqlx_no_transaction_first_line_runs_the_index_outside_the_release_transaction() {
    let (w, db) = project("sqlx/migrations", "migrations", "fmt_sqlx");
    w.run(&["init"]).success();
    let config = w.read_string("squizzle.toml");
    assert!(config.contains("format = \"sqlx\""), "{config}");
    let built = w.build_ok("1.0.0");
    assert_eq!(built["format"], "sqlx");
    assert_eq!(
        files(&w.squizzle_manifest("1.0.0")),
        [
            row("20240101120000_create_users", "migration", "default"),
            row("20240102120000_users_email_index", "migration", "none"),
            row("20240103120000_create_sessions", "migration", "default"),
        ]
    );
    w.run(&["apply", "1.0.0"]).success();
    assert!(index_is_valid(&db, "users_email_idx"));
    assert_eq!(
        value(&db, "SELECT to_regclass('sessions')::text").as_deref(),
        Some("sessions")
    );
}

#[test]
fn sqlx_marker_after_another_line_is_not_honoured_and_build_says_why() {
    // sqlx itself only honours the marker as the very first bytes; a file that
    // has it later is transactional for sqlx too, so build refuses the
    // CONCURRENTLY inside it instead of letting apply fail.
    let w = World::new();
    w.config("[project]\nmigrations = \"migrations\"\nformat = \"sqlx\"\n");
    w.write(
        "migrations/20240101120000_create_users.sql",
        "CREATE TABLE users (id bigint, email text);\n",
    );
    w.write(
        "migrations/20240102120000_index.sql",
        "-- add the index\n-- no-transaction\nCREATE INDEX CONCURRENTLY users_email_idx ON users (email);\n",
    );
    let run = w.run(&["build", "1.0.0"]);
    assert_ne!(run.code, 0, "{}", run.output());
    assert!(run.output().contains("CONCURRENTLY"), "{}", run.output());
}

#[test]
fn golang_migrate_up_files_apply_and_down_files_roll_back() {
    let (w, db) = project(
        "golang-migrate/migrations",
        "db/migrations",
        "fmt_gomigrate",
    );
    w.config("[project]\nmigrations = \"db/migrations\"\nformat = \"golang-migrate\"\n");
    // 1.0.0 has the first migration only.
    let second_up = w.read("db/migrations/000002_add_price.up.sql");
    let second_down = w.read("db/migrations/000002_add_price.down.sql");
    w.remove("db/migrations/000002_add_price.up.sql");
    w.remove("db/migrations/000002_add_price.down.sql");
    assert_eq!(w.build_ok("1.0.0")["format"], "golang-migrate");
    w.write("db/migrations/000002_add_price.up.sql", second_up);
    w.write("db/migrations/000002_add_price.down.sql", second_down);
    w.build_ok("1.1.0");
    assert_eq!(
        files(&w.squizzle_manifest("1.1.0")),
        [
            row("000001_create_items", "migration", "default"),
            row("000002_add_price", "migration", "default"),
            row("000001_create_items", "rollback", "default"),
            row("000002_add_price", "rollback", "default"),
        ]
    );
    let price = "SELECT count(*)::text FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'price_cents'";
    w.run(&["apply", "1.0.0"]).success();
    w.run(&["apply", "1.1.0"]).success();
    assert_eq!(value(&db, price).as_deref(), Some("1"));
    w.run(&["rollback", "1.1.0"]).success();
    assert_eq!(value(&db, price).as_deref(), Some("0"));

    // A file golang-migrate would not read as up or down is refused.
    w.write("db/migrations/000003_note.sql", "SELECT 1;\n");
    w.run(&["build", "1.2.0"]).code(2).stderr_has(".up.sql");
}

#[test]
fn dbmate_up_blocks_apply_without_their_down_blocks_and_roll_back_with_them() {
    let (w, db) = project("dbmate/db/migrations", "db/migrations", "fmt_dbmate");
    w.run(&["init"])
        .success()
        .stdout_has("Found migrations in dbmate layout: db/migrations");
    assert_eq!(w.build_ok("1.0.0")["format"], "dbmate");
    let manifest = w.squizzle_manifest("1.0.0");
    assert_eq!(
        files(&manifest),
        [
            row("20240301100000_create_projects", "migration", "default"),
            row("20240302100000_projects_name_index", "migration", "none"),
            row("20240303100000_add_archived", "migration", "default"),
            row("20240301100000_create_projects", "rollback", "default"),
            row("20240302100000_projects_name_index", "rollback", "none"),
            row("20240303100000_add_archived", "rollback", "default"),
        ]
    );
    let paths: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"db/migrations/20240301100000_create_projects.up.sql")
            && paths.contains(&"db/migrations/20240301100000_create_projects.down.sql"),
        "{paths:?}"
    );
    // verify re-reads the tarball: the sections are files of their own there.
    w.run(&["verify", "1.0.0"]).success();

    w.run(&["apply", "1.0.0"]).success();
    // Had a down block run, the table or the column would be gone.
    assert_eq!(
        value(&db, "SELECT count(*)::text FROM information_schema.columns WHERE table_name = 'projects' AND column_name = 'archived'").as_deref(),
        Some("1")
    );
    assert!(index_is_valid(&db, "projects_name_idx"));

    w.run(&["rollback", "1.0.0"]).success();
    assert_eq!(
        value(
            &db,
            "SELECT coalesce(to_regclass('projects')::text, 'gone')"
        )
        .as_deref(),
        Some("gone")
    );
}

#[test]
fn a_dbmate_file_without_an_up_block_is_refused_naming_it() {
    let (w, _db) = project("dbmate/db/migrations", "db/migrations", "fmt_dbmate_bad");
    w.config("[project]\nmigrations = \"db/migrations\"\nformat = \"dbmate\"\n");
    w.write(
        "db/migrations/20240304100000_oops.sql",
        "ALTER TABLE projects ADD COLUMN owner text;\n",
    );
    w.run(&["build", "1.0.0"])
        .code(2)
        .stderr_has("20240304100000_oops.sql")
        .stderr_has("-- migrate:up");
    assert!(!w.exists("db/tarballs/squizzle-1.0.0.tar.gz"));
}

#[test]
fn atlas_folder_is_checked_against_atlas_sum_then_applied() {
    let (w, db) = project("atlas/migrations", "migrations", "fmt_atlas");
    w.run(&["init"])
        .success()
        .stdout_has("Found migrations in atlas layout: migrations");
    assert_eq!(w.build_ok("1.0.0")["format"], "atlas");
    assert_eq!(
        files(&w.squizzle_manifest("1.0.0")),
        [
            row("20240410120000_create_orders", "migration", "default"),
            // -- atlas:txmode none
            row("20240411090000_orders_customer_index", "migration", "none"),
            row("20240412150000_add_status", "migration", "default"),
        ]
    );
    w.run(&["apply", "1.0.0"]).success();
    assert!(index_is_valid(&db, "orders_customer_idx"));

    // An edit that skipped `atlas migrate hash` is refused before anything is built.
    let path = "migrations/20240412150000_add_status.sql";
    let mut body = w.read_string(path);
    body.push_str("ALTER TABLE \"orders\" DROP COLUMN \"customer\";\n");
    w.write(path, body);
    w.run(&["build", "1.1.0"])
        .code(2)
        .stderr_has("atlas.sum does not match")
        .stderr_has("20240412150000_add_status.sql has changed");
    assert!(!w.exists("db/tarballs/squizzle-1.1.0.tar.gz"));
}

#[test]
fn a_flyway_undo_script_rolls_its_version_back() {
    let (w, db) = project("flyway/sql", "sql", "fmt_flyway_undo");
    w.config("[project]\nmigrations = \"sql\"\nformat = \"flyway\"\n");
    for f in [
        "V10__ledger_account_index.sql",
        "V10__ledger_account_index.sql.conf",
    ] {
        w.remove(&format!("sql/{f}"));
    }
    let v2 = w.read("sql/V2__create_ledger.sql");
    let u2 = w.read("sql/U2__create_ledger.sql");
    w.remove("sql/V2__create_ledger.sql");
    w.remove("sql/U2__create_ledger.sql");
    w.build_ok("1.0.0");
    w.write("sql/V2__create_ledger.sql", v2);
    w.write("sql/U2__create_ledger.sql", u2);
    w.build_ok("1.1.0");

    w.run(&["apply", "1.0.0"]).success();
    w.run(&["apply", "1.1.0"]).success();
    let ledger = "SELECT coalesce(to_regclass('ledger')::text, 'gone')";
    assert_eq!(value(&db, ledger).as_deref(), Some("ledger"));
    w.run(&["rollback", "1.1.0"]).success();
    assert_eq!(value(&db, ledger).as_deref(), Some("gone"));
    assert_eq!(
        value(&db, "SELECT to_regclass('accounts')::text").as_deref(),
        Some("accounts")
    );
}
