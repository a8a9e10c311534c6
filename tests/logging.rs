//! `-v`/`-vv`, `SQUIZZLE_LOG` and `RUST_LOG`: the decisions squizzle makes are
//! logged on stderr at debug (-v), each statement with its duration at trace
//! (-vv), nothing of it by default, never a secret; results stay on stdout.
//! Real PostgreSQL and a real registry with basic auth.

use squizzle_test_support::registry::{Auth, Registry, RegistryOptions};
use squizzle_test_support::{PLAIN_CONFIG, Run, World, pg};

const PASSWORD: &str = "logCanary-Zq81mW";

/// A plain project with two migrations (one without a transaction), 1.0.0
/// built, and a database URL that carries a password.
fn project() -> World {
    let mut w = World::new();
    w.config(PLAIN_CONFIG);
    w.write(
        "migrations/0001_init.sql",
        "CREATE TABLE t (id int PRIMARY KEY);\nINSERT INTO t VALUES (1);\n",
    );
    w.write(
        "migrations/0002_index.sql",
        "-- squizzle:no-transaction\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n",
    );
    w.build_ok("1.0.0");
    let admin = pg::shared().create_database("logging");
    let db = pg::db_name(&admin).to_owned();
    // The shared server trusts loopback TCP: any well-formed password works.
    w.set_env(
        "DATABASE_URL",
        &format!(
            "{}?sslmode=disable",
            pg::shared().url(&db, "postgres", Some(PASSWORD))
        ),
    );
    w
}

#[track_caller]
fn no_secret(run: &Run) {
    assert!(
        !run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD),
        "the password leaked:\n{}{}",
        run.stdout,
        run.stderr
    );
}

const DECISIONS: [&str; 5] = [
    "configuration file",
    "migration lock taken",
    "plan",
    "segment: one transaction",
    "segment: a no-transaction file",
];

#[test]
fn v_logs_each_decision_and_vv_each_statement_with_its_duration() {
    let w = project();
    let quiet = w.run(&["apply", "1.0.0", "--dry-run"]).success();
    for d in ["migration lock taken", "segment:", "DEBUG", "TRACE"] {
        assert!(
            !quiet.stderr.contains(d),
            "default level logs {d:?}:\n{}",
            quiet.stderr
        );
    }

    let v = w.run(&["-v", "apply", "1.0.0"]).success();
    for d in DECISIONS {
        assert!(v.stderr.contains(d), "-v does not log {d:?}:\n{}", v.stderr);
    }
    assert!(v.stderr.contains("plan: pending"), "{}", v.stderr);
    assert!(v.stderr.contains("pending=2"), "{}", v.stderr);
    assert!(
        !v.stderr.contains("TRACE"),
        "-v logs trace lines:\n{}",
        v.stderr
    );
    // Status on stderr, the result on stdout.
    assert!(
        v.stderr.contains("Acquired the migration lock"),
        "{}",
        v.stderr
    );
    assert!(v.stdout.contains("Applied 1.0.0"), "{}", v.stdout);
    no_secret(&v);

    // A second database for -vv: every statement with its duration.
    let mut w2 = project();
    w2.set_env("RUST_LOG", "off");
    let vv = w2.run(&["-vv", "apply", "1.0.0"]).success();
    // RUST_LOG=off wins over -vv: an explicit filter is taken as given.
    assert!(
        !vv.stderr.contains("DEBUG") && !vv.stderr.contains("TRACE"),
        "{}",
        vv.stderr
    );
    let w3 = project();
    let vv = w3.run(&["-vv", "apply", "1.0.0"]).success();
    assert!(
        vv.stderr.contains("ran the file as one message")
            && vv.stderr.contains("file=migrations/0001_init.sql"),
        "{}",
        vv.stderr
    );
    assert!(
        vv.stderr.contains("ran a statement") && vv.stderr.contains("statement=1"),
        "the no-transaction file's statement is logged:\n{}",
        vv.stderr
    );
    assert!(vv.stderr.contains(" ms="), "{}", vv.stderr);
    no_secret(&vv);
}

#[test]
fn squizzle_log_and_rust_log_set_the_filter_and_a_bad_one_is_named() {
    let mut w = project();
    w.set_env("RUST_LOG", "squizzle=debug");
    let r = w.run(&["apply", "1.0.0", "--dry-run"]).success();
    assert!(
        r.stderr.contains("configuration file"),
        "RUST_LOG is honoured:\n{}",
        r.stderr
    );
    // SQUIZZLE_LOG comes first.
    w.set_env("SQUIZZLE_LOG", "squizzle=error");
    let r = w.run(&["apply", "1.0.0", "--dry-run"]).success();
    assert!(!r.stderr.contains("configuration file"), "{}", r.stderr);
    // A directive that does not parse is named, and the next source is used.
    w.set_env("SQUIZZLE_LOG", "squizzle=loud");
    let r = w.run(&["apply", "1.0.0", "--dry-run"]).success();
    assert!(
        r.stderr
            .contains("SQUIZZLE_LOG=\"squizzle=loud\" is not a log filter"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("configuration file"),
        "falls back to RUST_LOG:\n{}",
        r.stderr
    );
    no_secret(&r);
}

#[test]
fn registry_requests_and_the_credential_source_are_logged_without_the_secret() {
    let reg = Registry::start(RegistryOptions {
        auth: Auth::Basic {
            user: "ci".into(),
            password: PASSWORD.into(),
        },
    });
    let mut w = World::new();
    w.config(&format!(
        "{PLAIN_CONFIG}\n[registry]\nurl = \"{}/acme/db\"\nusername = \"ci\"\npassword = \"${{REG_PASSWORD}}\"\n",
        reg.url()
    ));
    w.write("migrations/0001_init.sql", "CREATE TABLE t (id int);\n");
    w.set_env("REG_PASSWORD", PASSWORD);
    w.build_ok("1.0.0");
    let r = w.run(&["-v", "push", "1.0.0"]).success();
    assert!(
        r.stderr
            .contains("registry credentials: the configured username and password"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("auth=\"basic\"") || r.stderr.contains("auth=basic"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("method=PUT"), "{}", r.stderr);
    assert!(r.stderr.contains("status=201"), "{}", r.stderr);
    no_secret(&r);

    // Anonymous: said so.
    let anon = Registry::start(RegistryOptions { auth: Auth::None });
    let mut w = World::new();
    w.config(&format!(
        "{PLAIN_CONFIG}\n[registry]\nurl = \"{}/acme/db\"\n",
        anon.url()
    ));
    w.write("migrations/0001_init.sql", "CREATE TABLE t (id int);\n");
    w.build_ok("1.0.0");
    w.set_env(
        "DOCKER_CONFIG",
        w.home().join("no-docker").to_str().unwrap(),
    );
    let r = w.run(&["-v", "push", "1.0.0"]).success();
    assert!(r.stderr.contains("anonymous"), "{}", r.stderr);
}

/// Which referrers were found, what each one's signed predicate says, and
/// what the signature policy decided: at -v, and never the passphrase.
#[test]
fn evidence_and_the_policy_decision_are_logged() {
    let mut w = World::plain();
    w.set_env("SQUIZZLE_KEY_PASSWORD", PASSWORD);
    w.build_ok("1.0.0");
    w.run(&["keygen"]).success();
    w.run(&["sign", "1.0.0", "--key", "squizzle.key"]).success();
    let r = w
        .run(&["-v", "verify", "1.0.0", "--key", "squizzle.pub"])
        .success();
    assert!(r.stderr.contains("evidence referrer"), "{}", r.stderr);
    assert!(r.stderr.contains("counts=true"), "{}", r.stderr);
    assert!(r.stderr.contains("signature policy"), "{}", r.stderr);
    assert!(
        r.stderr.contains("signature accepted by the policy"),
        "{}",
        r.stderr
    );
    no_secret(&r);

    // Another key: the refusal and its reason are logged too.
    let mut other = World::new();
    other.set_env("SQUIZZLE_KEY_PASSWORD", "another passphrase");
    other.run(&["keygen"]).success();
    std::fs::copy(other.path("squizzle.pub"), w.path("other.pub")).unwrap();
    let r = w
        .run(&["-v", "verify", "1.0.0", "--key", "other.pub"])
        .code(9);
    assert!(r.stderr.contains("signature refused"), "{}", r.stderr);
    no_secret(&r);
}
