//! Immutable history, checked at build: `build` compares the migrations with
//! the previous release (local store, else the registry, or `--previous`) and
//! refuses an edited, removed, renamed or moved released migration, or a new
//! one placed before released ones (exit 5), unless allowed with a reason that
//! the signed manifest records and verify and apply show. `check` runs the
//! same comparison for pull requests. Files apply would refuse (transaction
//! control, CONCURRENTLY in a transactional file) are refused at build.
//! Real docker-registry and PostgreSQL 15 from `squizzle_test_support`.

use serde_json::Value;
use squizzle_test_support::registry::{Auth, Registry, RegistryOptions, sha256_digest};
use squizzle_test_support::{World, pg};

const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY);\n";

fn registry_config(url: &str) -> String {
    format!("[project]\nmigrations = \"migrations\"\n\n[registry]\nurl = \"{url}/acme/db\"\n")
}

/// A CI checkout of the plain project with the registry configured.
fn checkout(name: &str, reg: &Registry) -> World {
    let w = World::named(name);
    w.config(&registry_config(&reg.url()));
    for (path, sql) in plain_files() {
        w.write(&path, sql);
    }
    w
}

fn plain_files() -> Vec<(String, &'static str)> {
    vec![
        ("migrations/0001_create_users.sql".into(), USERS),
        (
            "migrations/0002_add_email.sql".into(),
            "ALTER TABLE users ADD COLUMN email text;\n",
        ),
        (
            "migrations/0003_create_orders.sql".into(),
            "CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint);\n",
        ),
    ]
}

fn manifest(w: &World, version: &str) -> Value {
    w.read_json(&format!("db/tarballs/squizzle-{version}.manifest.json"))
}

fn schema(name: &str) -> jsonschema::Validator {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(name);
    let value: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft202012::new(&value).unwrap()
}

#[track_caller]
fn valid(schema_name: &str, doc: &Value) {
    let v = schema(schema_name);
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{schema_name}: {errors:?}\n{doc:#}");
}

#[track_caller]
fn nothing_built(w: &World, version: &str) {
    assert!(
        !w.exists(&format!("db/tarballs/squizzle-{version}.tar.gz")),
        "no tarball for a refused build"
    );
    assert!(
        !w.exists(&format!("db/tarballs/squizzle-{version}.manifest.json")),
        "no manifest for a refused build"
    );
    if w.exists("db/oci/index.json") {
        let index = w.index().to_string();
        assert!(
            !index.contains(&format!("\"{version}\"")),
            "{version} must not be tagged: {index}"
        );
    }
}

#[test]
fn a_fresh_checkout_compares_with_the_newest_older_release_in_the_registry() {
    let reg = Registry::start(RegistryOptions { auth: Auth::None });
    let ci = checkout("ci", &reg);
    // Semver order, not text order: 1.10.0 is newer than 1.9.0.
    for v in ["1.9.0", "1.10.0", "2.0.0"] {
        ci.build_ok(v);
        ci.run(&["push", v]).success();
    }
    let released = ci.tag_digest("1.10.0");

    let fresh = checkout("fresh", &reg);
    fresh.write(
        "migrations/0004_add_index.sql",
        "CREATE INDEX users_email ON users (email);\n",
    );
    assert!(!fresh.exists("db/oci"), "a fresh checkout has no store");
    let report = fresh.build_ok("1.11.0");
    assert_eq!(report["previousVersion"], "1.10.0");
    let m = manifest(&fresh, "1.11.0");
    assert_eq!(m["previousVersion"], "1.10.0");
    assert_eq!(m["lineage"]["previous"]["version"], "1.10.0");
    assert_eq!(m["lineage"]["previous"]["foundIn"], "registry");
    assert_eq!(m["lineage"]["previous"]["digest"], released.as_str());
    assert!(m["lineage"].get("unchecked").is_none(), "{m:#}");
    valid("manifest.v1.schema.json", &m);
    // It was pulled through the verified path: the store holds exactly it.
    assert_eq!(fresh.tag_digest("1.10.0"), released);

    // verify shows what the release was built against.
    fresh
        .run(&["verify", "1.11.0", "--offline"])
        .success()
        .stdout_has("Built against 1.10.0 (registry): released migrations unchanged");
}

#[test]
fn an_edited_release_from_the_registry_is_refused_then_allowed_with_a_reason_that_verify_and_apply_show()
 {
    let reg = Registry::start(RegistryOptions { auth: Auth::None });
    let ci = checkout("ci", &reg);
    ci.build_ok("1.3.0");
    ci.run(&["push", "1.3.0"]).success();

    // A fresh checkout edits the released 0001 and adds 0004.
    let edited = "CREATE TABLE users (id bigint PRIMARY KEY, name text);\n";
    let fresh = checkout("fresh", &reg);
    fresh.write("migrations/0001_create_users.sql", edited);
    fresh.write(
        "migrations/0004_add_index.sql",
        "CREATE INDEX users_email ON users (email);\n",
    );
    let old_hash = sha256_digest(USERS.as_bytes());
    let new_hash = sha256_digest(edited.as_bytes());
    fresh
        .run(&["build", "1.4.0"])
        .code(5)
        .stderr_has("1.4.0 changes migrations that 1.3.0 released")
        .stderr_has("migrations/0001_create_users.sql (0001_create_users) was edited")
        .stderr_has(&format!("Released: {old_hash}"))
        .stderr_has(&format!("Now:      {new_hash}"))
        .stderr_has("--allow-rewrite 0001_create_users --reason");
    nothing_built(&fresh, "1.4.0");
    // The release compared with came from the registry, digest-checked.
    assert_eq!(fresh.tag_digest("1.3.0"), ci.tag_digest("1.3.0"));
    let j = fresh
        .run(&["build", "1.4.0", "--output", "json"])
        .code(5)
        .json();
    assert_eq!(j["error"]["kind"], "version_conflict");
    assert!(j["error"]["message"].as_str().unwrap().contains(&old_hash));

    // A typo in the id, or an unchanged one, is not an allowance.
    fresh
        .run(&[
            "build",
            "1.4.0",
            "--allow-rewrite",
            "0001_create_user",
            "--reason",
            "x",
        ])
        .code(2)
        .says("1.3.0 released no migration with that id");
    fresh
        .run(&[
            "build",
            "1.4.0",
            "--allow-rewrite",
            "0002_add_email",
            "--reason",
            "x",
        ])
        .code(2)
        .says("1.3.0 released it and it is unchanged");
    fresh
        .run(&["build", "1.4.0", "--allow-rewrite", "0001_create_users"])
        .code(2);
    nothing_built(&fresh, "1.4.0");

    let reason = "name column before any database applied 1.3.0 (CHG-12)";
    let report = fresh
        .run(&[
            "build",
            "1.4.0",
            "--allow-rewrite",
            "0001_create_users",
            "--reason",
            reason,
            "--output",
            "json",
        ])
        .success()
        .json();
    assert_eq!(report["previousVersion"], "1.3.0");
    let m = manifest(&fresh, "1.4.0");
    assert_eq!(
        m["lineage"]["previous"]["digest"],
        ci.tag_digest("1.3.0").as_str()
    );
    valid("manifest.v1.schema.json", &m);
    let allowance = &m["lineage"]["allowances"][0];
    assert_eq!(allowance["kind"], "edited");
    assert_eq!(allowance["id"], "0001_create_users");
    assert_eq!(allowance["releasedSha256"], old_hash.as_str());
    assert_eq!(allowance["sha256"], new_hash.as_str());
    assert_eq!(allowance["reason"], reason);
    assert_eq!(m["lineage"]["allowances"].as_array().unwrap().len(), 1);

    // The allowance is part of the release's identity: the manifest digest
    // covers it, so verify (text and JSON) shows it from the signed bytes.
    fresh
        .run(&["verify", "1.4.0", "--offline"])
        .success()
        .stdout_has("Built against 1.3.0 (local store): released migrations changed with allowances")
        .stdout_has(&format!(
            "Allowed at build: migrations/0001_create_users.sql (0001_create_users) was edited; reason: {reason}"
        ))
        .stdout_has(&format!("Released: {old_hash}"));
    let v = fresh
        .run(&["verify", "1.4.0", "--offline", "--output", "json"])
        .success()
        .json();
    assert_eq!(v["lineage"]["allowances"][0]["reason"], reason);

    // apply shows it too, before it connects.
    fresh.run(&["push", "1.4.0"]).success();
    let server = pg::shared();
    let db = server.create_database("history_allowance");
    let mut deploy = checkout("deploy", &reg);
    deploy.set_env("DATABASE_URL", &format!("{db}?sslmode=disable"));
    deploy
        .run(&["apply", "1.4.0"])
        .success()
        .stdout_has(&format!("Allowed at build: migrations/0001_create_users.sql (0001_create_users) was edited; reason: {reason}"))
        .stdout_has("Applied 1.4.0");
}

/// A kind of change, what makes it, the id it concerns, and what build says.
type Case = (
    &'static str,
    Box<dyn Fn(&World)>,
    &'static str,
    &'static str,
);

#[test]
fn removed_renamed_and_out_of_order_migrations_are_each_refused_named_and_allowed_with_a_reason() {
    let cases: Vec<Case> = vec![
        (
            "removed",
            Box::new(|w: &World| w.remove("migrations/0002_add_email.sql")),
            "0002_add_email",
            "migrations/0002_add_email.sql (0002_add_email) was removed",
        ),
        (
            "renamed",
            Box::new(|w: &World| {
                w.remove("migrations/0002_add_email.sql");
                w.write(
                    "migrations/0002_email_column.sql",
                    "ALTER TABLE users ADD COLUMN email text;\n",
                );
            }),
            "0002_add_email",
            "was renamed to migrations/0002_email_column.sql",
        ),
        (
            "outOfOrder",
            Box::new(|w: &World| {
                w.write("migrations/0000_create_schema.sql", "CREATE SCHEMA app;\n");
            }),
            "0000_create_schema",
            "migrations/0000_create_schema.sql (0000_create_schema) is new but comes before 0001_create_users, which 1.0.0 released",
        ),
    ];
    for (kind, change, id, says) in cases {
        let w = World::plain();
        w.build_ok("1.0.0");
        change(&w);
        w.run(&["build", "1.1.0"]).code(5).says(says);
        nothing_built(&w, "1.1.0");
        let j = w.run(&["check", "--output", "json"]).code(5).json();
        valid("check.v1.schema.json", &j);
        assert_eq!(j["ok"], false);
        assert_eq!(j["previous"]["version"], "1.0.0");
        let problems = j["problems"].as_array().unwrap();
        assert_eq!(problems.len(), 1, "{kind}: {j:#}");
        assert_eq!(problems[0]["kind"], kind, "{j:#}");
        assert_eq!(problems[0]["id"], id);

        let flag = if kind == "outOfOrder" {
            vec!["--allow-out-of-order"]
        } else {
            vec!["--allow-rewrite", id]
        };
        let mut args = vec!["build", "1.1.0", "--reason", "agreed in review"];
        args.extend(flag.iter().copied());
        w.run(&args).success();
        let m = manifest(&w, "1.1.0");
        valid("manifest.v1.schema.json", &m);
        assert_eq!(m["lineage"]["allowances"][0]["kind"], kind);
        assert_eq!(m["lineage"]["allowances"][0]["id"], id);
    }
}

#[test]
fn a_released_migration_moved_in_a_drizzle_journal_is_refused_as_moved() {
    let w = World::dokploy();
    w.build_ok("1.0.0");
    // Swap the first two journal entries: same files, another order.
    let journal_path = "drizzle/meta/_journal.json";
    let mut journal = w.read_json(journal_path);
    let entries = journal["entries"].as_array_mut().unwrap();
    let swapped = [
        entries[0]["tag"].as_str().unwrap().to_owned(),
        entries[1]["tag"].as_str().unwrap().to_owned(),
    ];
    let (a, b) = (entries[0]["tag"].clone(), entries[1]["tag"].clone());
    entries[0]["tag"] = b;
    entries[1]["tag"] = a;
    w.write(journal_path, serde_json::to_vec_pretty(&journal).unwrap());
    let run = w.run(&["build", "1.1.0"]).code(5);
    let run = run.says("was moved: it no longer comes where 1.0.0 had it in the order");
    let j = w
        .run(&["check", "1.1.0", "--output", "json"])
        .code(5)
        .json();
    let problems = j["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{j:#}\n{}", run.stderr);
    assert_eq!(problems[0]["kind"], "moved");
    let id = problems[0]["id"].as_str().unwrap();
    assert!(swapped.iter().any(|t| t == id), "{j:#}");
    // The real history, appended to, passes: no false refusal on 186 files.
    let w = World::dokploy();
    w.build_ok("1.0.0");
    w.write("drizzle/0999_extra.sql", "CREATE TABLE extra (id int);\n");
    let mut journal = w.read_json(journal_path);
    let entries = journal["entries"].as_array_mut().unwrap();
    let mut last = entries.last().unwrap().clone();
    last["idx"] = (entries.len() as u64).into();
    last["tag"] = "0999_extra".into();
    entries.push(last);
    w.write(journal_path, serde_json::to_vec_pretty(&journal).unwrap());
    w.run(&["check", "1.1.0"])
        .success()
        .says("187 migrations: build would accept them");
    let report = w.build_ok("1.1.0");
    assert_eq!(report["previousVersion"], "1.0.0");
}

#[test]
fn without_a_registry_or_a_store_the_build_says_why_nothing_was_compared_and_records_it() {
    let w = World::plain();
    let run = w.run(&["build", "1.0.0"]).success();
    run.stderr_has("no earlier release to compare the migrations with: no registry is configured and the local store (db/oci) holds no release older than 1.0.0");
    let m = manifest(&w, "1.0.0");
    assert_eq!(m["previousVersion"], Value::Null);
    assert_eq!(m["lineage"]["previous"], Value::Null);
    assert_eq!(
        m["lineage"]["unchecked"],
        "no registry is configured and the local store (db/oci) holds no release older than 1.0.0"
    );
    valid("manifest.v1.schema.json", &m);
    w.run(&["verify", "1.0.0"])
        .success()
        .stdout_has("History not checked at build: no registry is configured");
    // An older version built later compares with nothing older either.
    w.build_ok("0.9.0");
    assert_eq!(manifest(&w, "0.9.0")["previousVersion"], Value::Null);
    // --allow-rewrite with nothing to compare with is a mistake, not a record.
    w.run(&[
        "build",
        "0.8.0",
        "--previous",
        "none",
        "--allow-rewrite",
        "0001_create_users",
        "--reason",
        "x",
    ])
    .code(2)
    .says("there is no earlier release to compare with");
}

#[test]
fn an_unreachable_registry_is_warned_about_and_recorded_and_a_named_previous_release_is_required() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut w = World::plain();
    w.config(&registry_config(&format!("127.0.0.1:{port}")));
    w.set_env("SQUIZZLE_RETRY_BASE_MS", "1");
    let run = w.run(&["build", "1.0.0"]).success();
    let reason = format!(
        "the local store (db/oci) holds no release older than 1.0.0 and the registry (127.0.0.1:{port}/acme/db) could not be reached"
    );
    run.stderr_has(&format!(
        "no earlier release to compare the migrations with: {reason} ("
    ));
    let m = manifest(&w, "1.0.0");
    assert_eq!(m["lineage"]["unchecked"], reason.as_str());
    assert_eq!(m["previousVersion"], Value::Null);
    w.run(&["verify", "1.0.0", "--offline"])
        .success()
        .stdout_has(&format!("History not checked at build: {reason}"));

    // --previous none says so on purpose.
    w.run(&["build", "0.1.0", "--previous", "none"]).success();
    assert_eq!(
        manifest(&w, "0.1.0")["lineage"]["unchecked"],
        "the build was told there is no earlier release (--previous none)"
    );
    // With 1.0.0 in the local store, the next build needs no registry.
    w.write("migrations/0004_more.sql", "CREATE TABLE more (id int);\n");
    w.build_ok("1.1.0");
    let m = manifest(&w, "1.1.0");
    assert_eq!(m["lineage"]["previous"]["foundIn"], "store");
    assert_eq!(m["lineage"]["previous"]["version"], "1.0.0");
    // A named release the store lacks must come from the registry: exit 3.
    w.run(&["build", "1.2.0", "--previous", "0.5.0"]).code(3);
    nothing_built(&w, "1.2.0");
}

#[test]
fn previous_names_a_release_explicitly_and_must_exist_and_be_older() {
    let reg = Registry::start(RegistryOptions { auth: Auth::None });
    let ci = checkout("ci", &reg);
    ci.build_ok("1.0.0");
    ci.run(&["push", "1.0.0"]).success();
    ci.write("migrations/0004_more.sql", "CREATE TABLE more (id int);\n");
    ci.build_ok("1.1.0");
    ci.run(&["push", "1.1.0"]).success();

    let fresh = checkout("fresh", &reg);
    fresh.write("migrations/0004_more.sql", "CREATE TABLE more (id int);\n");
    fresh.write(
        "migrations/0005_even_more.sql",
        "CREATE TABLE even_more (id int);\n",
    );
    fresh
        .run(&["build", "1.2.0", "--previous", "1.5.0"])
        .code(2)
        .says("--previous 1.5.0 is not older than 1.2.0");
    fresh
        .run(&["build", "1.2.0", "--previous", "0.7.0"])
        .code(12);
    nothing_built(&fresh, "1.2.0");
    // Named: 1.0.0, although 1.1.0 is newer; pulled from the registry.
    fresh
        .run(&["build", "1.2.0", "--previous", "1.0.0"])
        .success();
    let m = manifest(&fresh, "1.2.0");
    assert_eq!(m["previousVersion"], "1.0.0");
    assert_eq!(m["lineage"]["previous"]["named"], true);
    assert_eq!(m["lineage"]["previous"]["foundIn"], "registry");

    // Without a registry and without it in the store: not found.
    let lone = World::plain();
    lone.run(&["build", "1.0.0", "--previous", "0.9.0"])
        .code(12)
        .says("no registry is configured to pull it from");
}

#[test]
fn a_file_with_transaction_control_or_concurrently_in_a_transaction_is_refused_at_build() {
    let w = World::plain();
    w.write(
        "migrations/0004_backfill.sql",
        "-- backfill names\nBEGIN;\nUPDATE users SET email = 'x';\nCOMMIT;\n",
    );
    w.run(&["build", "1.0.0"])
        .code(2)
        .says("migrations/0004_backfill.sql line 2: BEGIN")
        .says("remove the transaction control, or mark the file `-- squizzle:no-transaction`");
    nothing_built(&w, "1.0.0");
    let j = w.run(&["check", "--output", "json"]).code(2).json();
    valid("check.v1.schema.json", &j);
    assert_eq!(j["problems"][0]["kind"], "transactionControl");
    assert_eq!(j["problems"][0]["line"], 2);

    // A DO block's BEGIN is not transaction control.
    w.write(
        "migrations/0004_backfill.sql",
        "DO $$ BEGIN UPDATE users SET email = 'x'; END $$;\n",
    );
    w.run(&["check"]).success();

    w.write(
        "migrations/0005_index.sql",
        "-- a comment about CONCURRENTLY\nSELECT 'CREATE INDEX CONCURRENTLY';\ncreate unique index\n  concurrently users_email on users (email);\n",
    );
    w.run(&["build", "1.0.0"])
        .code(2)
        .says("migrations/0005_index.sql line 3: CREATE INDEX CONCURRENTLY cannot run inside a transaction block")
        .says("add `-- squizzle:no-transaction`");
    nothing_built(&w, "1.0.0");
    let j = w.run(&["check", "--output", "json"]).code(2).json();
    assert_eq!(j["problems"][0]["kind"], "concurrently");
    assert_eq!(j["problems"][0]["path"], "migrations/0005_index.sql");

    // Marked no-transaction, both build.
    w.write(
        "migrations/0005_index.sql",
        "-- squizzle:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY users_email ON users (email);\n",
    );
    w.run(&["check"]).success();
    w.build_ok("1.0.0");
}

#[test]
fn check_passes_a_clean_change_and_refuses_a_reason_without_an_allowance() {
    let w = World::plain();
    w.build_ok("1.0.0");
    w.write("migrations/0004_more.sql", "CREATE TABLE more (id int);\n");
    let run = w.run(&["check", "1.1.0"]).success();
    run.stdout_has("Compared with 1.0.0 (local store)")
        .stdout_has("4 migrations: build would accept them");
    let j = w.run(&["check", "--output", "json"]).success().json();
    valid("check.v1.schema.json", &j);
    assert_eq!(j["ok"], true);
    assert_eq!(j["problems"], serde_json::json!([]));
    assert_eq!(j["schemaVersion"], 1);
    // check writes nothing.
    assert!(!w.exists("db/tarballs/squizzle-1.1.0.tar.gz"));
    w.run(&["check", "--reason", "because"])
        .code(2)
        .says("--reason explains an allowance");
    w.run(&["check", "not-a-version"]).code(2);
}

#[test]
fn a_previous_release_that_fails_its_digests_in_the_registry_stops_the_build() {
    let reg = Registry::start(RegistryOptions { auth: Auth::None });
    let ci = checkout("ci", &reg);
    ci.build_ok("1.0.0");
    ci.run(&["push", "1.0.0"]).success();
    // Flip a byte of the layer in the registry's storage.
    let layer = ci.layer_digest("1.0.0");
    let hex = layer.strip_prefix("sha256:").unwrap();
    let file = reg
        .dir()
        .join("data/docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    let mut bytes = std::fs::read(&file).expect("the layer in the registry's storage");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();

    let fresh = checkout("fresh", &reg);
    fresh.run(&["build", "1.1.0"]).code(6).says(&layer);
    nothing_built(&fresh, "1.1.0");
    fresh.run(&["check"]).code(6);
    // The tampered release did not enter the local store.
    if fresh.exists("db/oci/index.json") {
        assert!(!fresh.index().to_string().contains("\"1.0.0\""));
    }
}

#[test]
fn build_records_what_the_new_sql_does_and_verify_and_a_dry_run_show_it() {
    let w = World::plain();
    w.build_ok("1.0.0");
    w.write(
        "migrations/0004_cleanup.sql",
        "-- DROP TABLE orders; (a comment)\nALTER TABLE users DROP COLUMN email;\nCREATE INDEX orders_user ON orders (user_id);\n",
    );
    w.run(&["build", "1.1.0"])
        .success()
        .stderr_has("2 findings in the new or edited migrations (1 destructive, 1 blocking)");
    let m = manifest(&w, "1.1.0");
    valid("manifest.v1.schema.json", &m);
    let findings = m["lineage"]["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 2, "{m:#}");
    assert_eq!(findings[0]["id"], "drop-column");
    assert_eq!(findings[0]["category"], "destructive");
    assert_eq!(findings[0]["path"], "migrations/0004_cleanup.sql");
    assert_eq!(findings[0]["line"], 2);
    assert_eq!(findings[1]["id"], "create-index-blocking");
    // Released, unchanged migrations were not analysed again.
    assert!(
        findings
            .iter()
            .all(|f| f["path"] == "migrations/0004_cleanup.sql")
    );

    w.run(&["verify", "1.1.0"])
        .success()
        .stderr_has("Findings recorded at build: 1 destructive, 1 blocking")
        .stderr_has(
            "migrations/0004_cleanup.sql:2: DROP COLUMN deletes the column's data [drop-column]",
        );
    let server = pg::shared();
    let db = server.create_database("history_findings");
    let mut deploy = World::plain();
    deploy.set_env("DATABASE_URL", &format!("{db}?sslmode=disable"));
    std::fs::remove_dir_all(deploy.path("migrations")).unwrap();
    squizzle_test_support::copy_dir(&w.path("db"), &deploy.path("db"));
    deploy
        .run(&["apply", "1.1.0", "--dry-run"])
        .success()
        .stderr_has("Findings recorded at build: 1 destructive, 1 blocking");
}

#[test]
fn check_reports_the_findings_build_would_record_and_checks_allowances_as_build_does() {
    let w = World::plain();
    w.write("migrations/0004_drop.sql", "DROP TABLE orders;\n");
    w.build_ok("1.0.0");
    w.write(
        "migrations/0005_more.sql",
        "ALTER TABLE users RENAME COLUMN email TO mail;\n",
    );
    // Text: every finding with file and line; findings do not fail check.
    w.run(&["check", "1.1.0"])
        .success()
        .stderr_has("migrations/0004_drop.sql:1: DROP TABLE deletes the table and its rows [drop-table]")
        .stderr_has("migrations/0005_more.sql:1: RENAME COLUMN breaks the application version still running [rename-column]")
        .stdout_has("2 findings build would record (1 destructive, 1 incompatible)");
    let j = w
        .run(&["check", "1.1.0", "--output", "json"])
        .success()
        .json();
    valid("check.v1.schema.json", &j);
    assert_eq!(j["ok"], true);
    let ids: Vec<&str> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["drop-table", "rename-column"],
        "carried over, then new"
    );
    assert_eq!(j["allowedFindings"], serde_json::json!([]));
    // --allow is checked as build checks it, and previewed.
    w.run(&[
        "check",
        "1.1.0",
        "--allow",
        "truncate:0005_more.sql",
        "--reason",
        "x",
    ])
    .code(2)
    .stderr_has("no truncate finding in 0005_more.sql");
    let j = w
        .run(&[
            "check",
            "1.1.0",
            "--allow",
            "rename-column:0005_more.sql",
            "--reason",
            "readers moved (CHG-3)",
            "--output",
            "json",
        ])
        .success()
        .json();
    valid("check.v1.schema.json", &j);
    assert_eq!(j["allowedFindings"][0]["path"], "migrations/0005_more.sql");
    assert_eq!(j["allowedFindings"][0]["reason"], "readers moved (CHG-3)");
}
