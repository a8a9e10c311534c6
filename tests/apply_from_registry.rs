//! A deploy job with an empty workspace: `squizzle apply` finds the release in
//! the configured registry, pulls it (digest-checked), verifies it and applies
//! it to a real PostgreSQL; a second apply from another empty workspace is a
//! no-op. Real docker-registry and PostgreSQL 15 from `squizzle_test_support`.

use squizzle_test_support::World;
use squizzle_test_support::pg;
use squizzle_test_support::registry::{Auth, Registry, RegistryOptions};

fn config(url: &str) -> String {
    format!("[project]\nmigrations = \"migrations\"\n\n[registry]\nurl = \"{url}/acme/db\"\n")
}

#[test]
fn apply_pulls_a_missing_release_from_the_registry_then_verifies_and_applies_it() {
    let reg = Registry::start(RegistryOptions { auth: Auth::None });
    let server = pg::shared();
    let db = server.create_database("from_registry");

    // CI: build and push.
    let ci = World::plain();
    ci.config(&config(&reg.url()));
    ci.build_ok("1.0.0");
    let digest = ci.tag_digest("1.0.0");
    ci.run(&["push", "1.0.0"]).success();

    // Deploy job: an empty checkout with only the configuration.
    let mut deploy = World::named("deploy");
    deploy.config(&config(&reg.url()));
    deploy.set_env("DATABASE_URL", &format!("{db}?sslmode=disable"));
    let run = deploy.run(&["apply", "1.0.0"]).success();
    assert!(run.stderr.contains("Pulled 1.0.0"), "{}", run.stderr);
    assert!(run.stdout.contains("Integrity verified"), "{}", run.stdout);
    assert!(run.stdout.contains("Applied 1.0.0"), "{}", run.stdout);
    assert_eq!(deploy.tag_digest("1.0.0"), digest);

    let rows = server.query(
        &db,
        "SELECT version, artifact_digest, success FROM squizzle.releases",
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0].as_deref(), Some("1.0.0"));
    assert_eq!(rows[0][1].as_deref(), Some(digest.as_str()));
    assert_eq!(rows[0][2].as_deref(), Some("t"));

    // Another empty workspace: pulls again, finds nothing to do.
    let mut again = World::named("deploy-again");
    again.config(&config(&reg.url()));
    again.set_env("DATABASE_URL", &format!("{db}?sslmode=disable"));
    let run = again.run(&["apply", "1.0.0"]).success();
    assert!(run.stdout.contains("nothing to do"), "{}", run.stdout);
    assert_eq!(
        server.query(&db, "SELECT count(*) FROM squizzle.releases")[0][0].as_deref(),
        Some("1")
    );
}

#[test]
fn apply_of_a_version_the_registry_does_not_have_is_not_found_and_touches_nothing() {
    let reg = Registry::start(RegistryOptions { auth: Auth::None });
    let server = pg::shared();
    let db = server.create_database("from_registry_missing");
    let mut deploy = World::named("deploy");
    deploy.config(&config(&reg.url()));
    deploy.set_env("DATABASE_URL", &format!("{db}?sslmode=disable"));
    deploy.run(&["apply", "2.0.0"]).code(12);
    let schemas = server.query(
        &db,
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'squizzle'",
    );
    assert_eq!(schemas[0][0].as_deref(), Some("0"));
}
