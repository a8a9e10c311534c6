//! `squizzle audit` against a real PostgreSQL: one database per environment on
//! the shared test server, releases applied through the real binary with
//! `--env`, plus targets that cannot answer (a closed port, a listener that
//! accepts TCP and never speaks).

use std::net::TcpListener;

use serde_json::Value;
use squizzle_test_support::World;
use squizzle_test_support::pg;

/// A fresh database on the shared server, as a URL squizzle can use.
fn database(prefix: &str) -> String {
    format!("{}?sslmode=disable", pg::shared().create_database(prefix))
}

/// A loopback port where nothing listens.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().unwrap().port()
}

fn env_block(name: &str, url: &str) -> String {
    format!("[environments.{name}]\ndatabase_url = \"{url}\"\n")
}

fn config_with(w: &World, extra: &str, envs: &[(&str, &str)]) {
    let mut toml = format!("[project]\nmigrations = \"migrations\"\n{extra}\n");
    for (name, url) in envs {
        toml.push_str(&env_block(name, url));
    }
    w.config(&toml);
}

/// The report validates against `schemas/audit.v1.schema.json`.
#[track_caller]
fn assert_schema(report: &Value) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/audit.v1.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let v = jsonschema::draft202012::new(&schema).unwrap();
    let errors: Vec<String> = v
        .iter_errors(report)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{report:#}");
}

fn target<'a>(report: &'a Value, env: &str) -> &'a Value {
    assert_schema(report);
    report["environments"]
        .as_array()
        .expect("environments")
        .iter()
        .find(|t| t["environment"] == env)
        .unwrap_or_else(|| panic!("no environment {env} in {report:#}"))
}

fn has_history(url: &str) -> bool {
    pg::shared().query(
        url,
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'squizzle')::text",
    )[0][0]
        .as_deref()
        == Some("true")
}

#[test]
fn audit_lists_every_environment_and_survives_an_unreachable_one() {
    let w = World::new();
    let (staging, production, dev, fresh) = (
        database("audit_staging"),
        database("audit_production"),
        database("audit_dev"),
        database("audit_fresh"),
    );
    let offline = format!(
        "postgres://nobody@127.0.0.1:{}/nothing?sslmode=disable",
        closed_port()
    );
    let envs = [
        ("staging", staging.as_str()),
        ("production", production.as_str()),
        ("dev", dev.as_str()),
        ("fresh", fresh.as_str()),
        ("offline", offline.as_str()),
    ];
    config_with(
        &w,
        "[environments.nourl]\nhistory_schema = \"squizzle\"\n",
        &envs,
    );
    w.write(
        "migrations/0001_create_users.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY);\n",
    );
    w.build_ok("0.9.0");
    w.write(
        "migrations/0002_add_email.sql",
        "ALTER TABLE users ADD COLUMN email text;\n",
    );
    w.build_ok("1.0.0");
    w.run(&["apply", "1.0.0", "--env", "staging"]).success();
    w.run(&["apply", "1.0.0", "--env", "production"]).success();
    w.run(&["apply", "0.9.0", "--env", "dev"]).success();

    let report = w
        .run_with_env(
            &["audit", "1.0.0", "--output", "json", "--timeout", "5s"],
            &[("USER", "auditor-test")],
        )
        .success()
        .json();
    let digest = w.tag_digest("1.0.0");
    assert_eq!(report["version"], "1.0.0");
    assert_eq!(report["artifact"]["found"], true);
    assert_eq!(report["artifact"]["digest"], digest.as_str());
    assert!(report["artifact"].get("revocation").is_none());
    for env in ["staging", "production"] {
        let t = target(&report, env);
        assert_eq!(t["status"], "applied", "{t:#}");
        assert_eq!(t["digest"], digest.as_str());
        assert_eq!(t["digestMismatch"], false);
        assert!(t["when"].as_str().unwrap().ends_with('Z'), "{t:#}");
        assert!(t["by"].as_str().unwrap().contains("role "), "{t:#}");
        assert_eq!(t["migrationsApplied"], 2);
        assert_eq!(t["migrationsRecorded"], 2);
        let attempts = t["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0]["operation"], "apply");
        assert_eq!(attempts[0]["success"], true);
        assert_eq!(attempts[0]["digestMatches"], true);
        assert!(attempts[0]["metadata"]["hostname"].is_string());
        assert!(t["database"].as_str().unwrap().contains("127.0.0.1"));
    }
    let d = target(&report, "dev");
    assert_eq!(d["status"], "not_applied", "{d:#}");
    assert_eq!(d["attempts"].as_array().unwrap().len(), 0);
    // 0.9.0's migration is also 1.0.0's first one.
    assert_eq!(d["migrationsApplied"], 1);
    assert_eq!(target(&report, "fresh")["status"], "no_history");
    let o = target(&report, "offline");
    assert_eq!(o["status"], "unreachable", "{o:#}");
    assert!(
        o["error"].as_str().unwrap().contains("cannot connect"),
        "{o:#}"
    );
    assert_eq!(target(&report, "nourl")["status"], "skipped");
    assert_eq!(report["summary"]["environments"], 6);
    assert_eq!(report["summary"]["answered"], 4);
    assert_eq!(report["summary"]["unanswered"], 1);
    assert_eq!(report["summary"]["skipped"], 1);
    assert_eq!(report["summary"]["applied"], 2);
    assert_eq!(report["summary"]["digestMismatches"], 0);
    // Read-only: no history schema was created where there was none.
    assert!(!has_history(&fresh));

    let text = w.run(&["audit", "1.0.0", "--timeout", "5s"]).success();
    let out = text.stdout.clone();
    for needle in [
        "ENVIRONMENT",
        "STATUS",
        "DIGEST",
        "SIGNER",
        "Release 1.0.0",
        &digest,
        "not applied",
        "no history",
        "unreachable",
        "skipped",
    ] {
        assert!(out.contains(needle), "{needle:?} missing from\n{out}");
    }
    let staging_line = out.lines().find(|l| l.starts_with("staging")).unwrap();
    assert!(staging_line.contains("applied"), "{staging_line}");
    assert!(staging_line.contains(&digest[..19]), "{staging_line}");

    // --env restricts the audit to one environment.
    let one = w
        .run(&["audit", "1.0.0", "--env", "staging", "--output", "json"])
        .success()
        .json();
    assert_eq!(one["environments"].as_array().unwrap().len(), 1);
    assert_eq!(one["environments"][0]["environment"], "staging");
    // Only the unreachable one selected: nothing answered, exit 3.
    w.run(&["audit", "1.0.0", "--env", "offline"])
        .code(3)
        .says("unreachable");
}

#[test]
fn a_failed_apply_is_listed_with_its_error() {
    let w = World::new();
    let prod = database("audit_failed");
    config_with(&w, "", &[("prod", prod.as_str())]);
    w.write("migrations/0001_ok.sql", "CREATE TABLE t (id int);\n");
    w.write(
        "migrations/0002_broken.sql",
        "INSERT INTO missing_table VALUES (1);\n",
    );
    w.build_ok("1.0.0");
    w.run(&["apply", "1.0.0", "--env", "prod"]).code(11);
    let report = w
        .run(&["audit", "1.0.0", "--output", "json"])
        .success()
        .json();
    let t = target(&report, "prod");
    assert_eq!(t["status"], "failed", "{t:#}");
    let error = t["error"].as_str().unwrap();
    assert!(error.contains("missing_table"), "{error}");
    assert!(error.contains("42P01"), "{error}");
    assert!(error.contains("0002_broken"), "{error}");
    assert_eq!(t["attempts"][0]["success"], false);
    assert_eq!(t["attempts"][0]["errorSqlstate"], "42P01");
    assert_eq!(report["summary"]["failed"], 1);
    w.run(&["audit", "1.0.0"])
        .success()
        .says("failed")
        .says("missing_table");
}

#[test]
fn the_signer_shows_in_the_artifact_block_and_the_database_rows() {
    let mut w = World::plain();
    let prod = database("audit_signed");
    config_with(
        &w,
        "[security]\npublic_keys = [\"squizzle.pub\"]\n",
        &[("prod", prod.as_str())],
    );
    w.set_env("SQUIZZLE_KEY_PASSWORD", "correct horse battery staple");
    w.run(&["keygen"]).success();
    let build: Vec<&str> = "build 1.0.0 --sign --provenance --key squizzle.key"
        .split(' ')
        .collect();
    w.run(&build).success();
    w.run(&["apply", "1.0.0", "--env", "prod"]).success();
    let report = w
        .run(&["audit", "1.0.0", "--output", "json"])
        .success()
        .json();
    let signer = report["artifact"]["signature"]["identity"]
        .as_str()
        .expect("a verified signature")
        .to_owned();
    assert!(signer.starts_with("key "), "{signer}");
    assert_eq!(report["artifact"]["verified"], true);
    let t = target(&report, "prod");
    assert_eq!(t["status"], "applied");
    assert_eq!(t["signerIdentity"], signer.as_str());
    assert_eq!(t["attempts"][0]["signerIdentity"], signer.as_str());
    let text = w.run(&["audit", "1.0.0"]).success();
    assert!(
        text.stdout
            .lines()
            .any(|l| l.starts_with("  Signer:") && l.contains(&signer)),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .lines()
            .any(|l| l.starts_with("prod") && l.contains(&signer)),
        "{}",
        text.stdout
    );
    assert!(report["artifact"]["provenance"]["builderId"].is_string());
    assert!(
        text.stdout.contains("Provenance:  built by"),
        "{}",
        text.stdout
    );

    // A revocation is reported, not refused: the audit still exits 0.
    w.run(&[
        "revoke",
        "1.0.0",
        "--reason",
        "leaked credentials in 0002",
        "--key",
        "squizzle.key",
    ])
    .success();
    let report = w
        .run(&["audit", "1.0.0", "--output", "json"])
        .success()
        .json();
    assert_eq!(
        report["artifact"]["revocation"]["reason"],
        "leaked credentials in 0002"
    );
    assert_eq!(target(&report, "prod")["status"], "applied");
    w.run(&["audit", "1.0.0"])
        .success()
        .says("REVOKED")
        .says("leaked credentials in 0002");
}

#[test]
fn a_different_build_applied_under_the_same_version_is_a_digest_mismatch() {
    let shared = database("audit_mismatch");
    let a = World::named("project-a");
    config_with(&a, "", &[("prod", shared.as_str())]);
    a.write("migrations/0001_a.sql", "CREATE TABLE a (id int);\n");
    a.build_ok("1.0.0");
    a.run(&["apply", "1.0.0", "--env", "prod"]).success();

    let b = World::named("project-b");
    config_with(&b, "", &[("prod", shared.as_str())]);
    b.write("migrations/0001_a.sql", "CREATE TABLE a (id bigint);\n");
    b.build_ok("1.0.0");
    assert_ne!(a.tag_digest("1.0.0"), b.tag_digest("1.0.0"));

    let report = b
        .run(&["audit", "1.0.0", "--output", "json"])
        .code(5)
        .json();
    let t = target(&report, "prod");
    assert_eq!(t["digestMismatch"], true, "{t:#}");
    assert_eq!(t["digest"], a.tag_digest("1.0.0").as_str());
    assert_eq!(t["attempts"][0]["digestMatches"], false);
    assert_eq!(report["summary"]["digestMismatches"], 1);
    b.run(&["audit", "1.0.0"]).code(5).says("DIGEST MISMATCH");
    // The audit from project A agrees with the database.
    a.run(&["audit", "1.0.0"])
        .success()
        .does_not_say("DIGEST MISMATCH");
}

#[test]
fn a_server_that_never_answers_times_out_without_holding_up_the_others() {
    // Accepts TCP connections (the kernel completes the handshake) and never
    // says a word.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().unwrap().port();
    let w = World::plain();
    let good = database("audit_timeout");
    let hang = format!("postgres://nobody@127.0.0.1:{port}/nothing?sslmode=disable");
    config_with(&w, "", &[("good", good.as_str()), ("hang", hang.as_str())]);
    w.build_ok("1.0.0");
    w.run(&["apply", "1.0.0", "--env", "good"]).success();
    let report = w
        .run(&["audit", "1.0.0", "--timeout", "1s", "--output", "json"])
        .success()
        .json();
    let h = target(&report, "hang");
    assert_eq!(h["status"], "timed_out", "{h:#}");
    assert!(h["error"].as_str().unwrap().contains("--timeout"), "{h:#}");
    assert_eq!(target(&report, "good")["status"], "applied");
    drop(silent);
}

#[test]
fn a_release_the_store_no_longer_has_is_still_audited_in_the_databases() {
    let w = World::plain();
    let prod = database("audit_gone");
    config_with(&w, "", &[("prod", prod.as_str())]);
    w.build_ok("1.0.0");
    w.run(&["apply", "1.0.0", "--env", "prod"]).success();
    let digest = w.tag_digest("1.0.0");
    std::fs::remove_dir_all(w.path("db")).unwrap();
    let report = w
        .run(&["audit", "1.0.0", "--output", "json"])
        .success()
        .json();
    assert_eq!(report["artifact"]["found"], false);
    assert!(report["artifact"]["error"].is_string());
    let t = target(&report, "prod");
    assert_eq!(t["status"], "applied");
    assert_eq!(t["digest"], digest.as_str());
    assert_eq!(t["digestMismatch"], false);
    assert!(t.get("migrationsApplied").is_none());
    w.run(&["audit", "1.0.0"]).success().says("NOT FOUND");
}

#[test]
fn a_rolled_back_release_shows_as_rolled_back() {
    let w = World::new();
    let prod = database("audit_rollback");
    config_with(&w, "", &[("prod", prod.as_str())]);
    w.write("migrations/0001_t.sql", "CREATE TABLE t (id int);\n");
    w.write("migrations/0001_t.down.sql", "DROP TABLE t;\n");
    w.build_ok("1.0.0");
    w.run(&["apply", "1.0.0", "--env", "prod"]).success();
    w.run(&["rollback", "1.0.0", "--env", "prod"]).success();
    let report = w
        .run(&["audit", "1.0.0", "--output", "json"])
        .success()
        .json();
    let t = target(&report, "prod");
    assert_eq!(t["status"], "rolled_back", "{t:#}");
    let ops: Vec<&str> = t["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["operation"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["apply", "rollback"]);
    assert_eq!(t["migrationsApplied"], 0);
    assert_eq!(report["summary"]["applied"], 0);
}

#[test]
fn without_environments_audit_reads_the_database_that_database_url_or_libpq_names() {
    let url = database("audit_implicit");
    let mut w = World::plain();
    w.set_env("DATABASE_URL", &url);
    w.build_ok("1.0.0");
    w.run(&["apply", "1.0.0"]).success();
    let report = w
        .run(&["audit", "1.0.0", "--output", "json"])
        .success()
        .json();
    let t = target(&report, "default");
    assert_eq!(t["status"], "applied", "{report:#}");
    assert_eq!(report["environments"].as_array().unwrap().len(), 1);

    // The same database named by the PG* variables alone.
    let db = pg::db_name(&url).to_owned();
    w.set_env("DATABASE_URL", "");
    w.set_env("PGHOST", "127.0.0.1");
    w.set_env("PGPORT", &pg::shared().port().to_string());
    w.set_env("PGDATABASE", &db);
    w.set_env("PGUSER", pg::ADMIN_USER);
    w.set_env("PGSSLMODE", "disable");
    let report = w
        .run(&["audit", "1.0.0", "--output", "json"])
        .success()
        .json();
    assert_eq!(
        target(&report, "default")["status"],
        "applied",
        "{report:#}"
    );
    assert_eq!(report["environments"].as_array().unwrap().len(), 1);

    // Nothing names a database: the refusal says how to name one.
    let mut bare = World::plain();
    bare.build_ok("1.0.0");
    bare.set_env("DATABASE_URL", "");
    bare.run(&["audit", "1.0.0"])
        .code(2)
        .stderr_has("set DATABASE_URL or the PG* variables");
}

#[test]
fn a_malformed_release_in_the_store_is_an_integrity_failure_not_a_missing_one() {
    let url = database("audit_malformed");
    let mut w = World::plain();
    w.set_env("DATABASE_URL", &url);
    w.build_ok("1.0.0");
    w.run(&["apply", "1.0.0"]).success();
    // Damage the squizzle manifest (the OCI config blob) in the store.
    let config = w.oci_manifest("1.0.0")["config"]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    w.corrupt_blob(&config);
    w.run(&["audit", "1.0.0"])
        .code(6)
        .says("malformed")
        .does_not_say("NOT FOUND");
    let report = w
        .run(&["audit", "1.0.0", "--output", "json"])
        .code(6)
        .json();
    assert_schema(&report);
    assert_eq!(report["artifact"]["found"], true, "{report:#}");
    assert_eq!(report["artifact"]["verified"], false, "{report:#}");
    // The databases are still audited.
    assert_eq!(
        target(&report, "default")["status"],
        "applied",
        "{report:#}"
    );
}
