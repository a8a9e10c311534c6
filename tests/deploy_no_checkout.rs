//! A deploy job with no project checkout: an empty folder, the settings in
//! flags and `DATABASE_URL`/`SQUIZZLE_*` variables, releases kept in the
//! user's cache folder. A release built and signed keylessly by CI (the
//! loopback Sigstore services), pushed to a real docker-registry, pulled,
//! verified and applied to a real PostgreSQL; and the lazy `${VAR}` rules of a
//! checked-out `squizzle.toml` whose unused environments name unset variables.

use squizzle_test_support::World;
use squizzle_test_support::pg;
use squizzle_test_support::registry::{Auth, Registry, RegistryOptions};
use squizzle_test_support::sigstore::SigstoreServices;

const WORKFLOW: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0";

/// CI: a project whose 1.0.0 is built, signed keylessly as WORKFLOW and pushed.
fn released(s: &SigstoreServices, reg: &Registry) -> World {
    squizzle_test_support::ci::release_keyless(s, reg, WORKFLOW, "1.0.0")
}

/// An empty folder with only the variables a deploy job sets.
fn deploy_job(s: &SigstoreServices, reg: &Registry, db: &str) -> World {
    let mut w = World::named("job");
    let cache = w.home().join("xdg-cache");
    w.set_env("XDG_CACHE_HOME", cache.to_str().unwrap());
    w.set_env("DATABASE_URL", &format!("{db}?sslmode=disable"));
    w.set_env("SQUIZZLE_REGISTRY", &format!("{}/acme/db", reg.url()));
    w.set_env(
        "SQUIZZLE_TRUSTED_ROOT",
        s.trusted_root_path().to_str().unwrap(),
    );
    w
}

fn squizzle_schema_count(db: &str) -> String {
    pg::shared().query(
        db,
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'squizzle'",
    )[0][0]
        .clone()
        .unwrap_or_default()
}

#[test]
fn an_empty_folder_pulls_verifies_and_applies_with_flags_and_variables_only() {
    let s = SigstoreServices::start();
    let reg = Registry::start(RegistryOptions { auth: Auth::None });
    let ci = released(&s, &reg);
    let digest = ci.tag_digest("1.0.0");
    let db = pg::shared().create_database("no_checkout");
    let job = deploy_job(&s, &reg, &db);

    let policy = [
        "--certificate-identity",
        WORKFLOW,
        "--certificate-oidc-issuer",
        &s.issuer_url(),
    ];
    let mut args = vec!["apply", "1.0.0"];
    args.extend(policy);
    let run = job.run(&args).success();
    let out = run.output();
    assert!(out.contains("Pulled 1.0.0"), "{out}");
    assert!(out.contains(&format!("Signed by: {WORKFLOW}")), "{out}");
    assert!(out.contains("Applied 1.0.0"), "{out}");

    let rows = pg::shared().query(
        &db,
        "SELECT version, artifact_digest, success FROM squizzle.releases",
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][1].as_deref(), Some(digest.as_str()));
    assert_eq!(rows[0][2].as_deref(), Some("t"));
    // The release went to the cache folder; the job's folder stays empty.
    assert!(
        job.home()
            .join("xdg-cache/squizzle/oci/index.json")
            .is_file(),
        "the store is under XDG_CACHE_HOME"
    );
    assert!(
        job.files_under(".").is_empty(),
        "{:?}",
        job.files_under(".")
    );

    // status and a second apply work the same way.
    job.run(&["status"]).success().says("Up to date with 1.0.0");
    let mut again = vec!["apply", "1.0.0"];
    again.extend(policy);
    job.run(&again).success().says("nothing to do");
    // --plain-http (and its variable) is accepted on a loopback registry too.
    job.run(&["list", "--plain-http"]).success().says("1.0.0");
    let mut verify = vec!["verify", "1.0.0"];
    verify.extend(policy);
    job.run_with_env(&verify, &[("SQUIZZLE_PLAIN_HTTP", "1")])
        .success()
        .says(&format!("Signed by: {WORKFLOW}"));
}

#[test]
fn a_deploy_job_without_a_config_still_enforces_the_signer_flags() {
    let s = SigstoreServices::start();
    let reg = Registry::start(RegistryOptions { auth: Auth::None });
    released(&s, &reg);
    let db = pg::shared().create_database("no_checkout_policy");
    let job = deploy_job(&s, &reg, &db);
    // The same flags, given as variables, with an identity that did not sign.
    job.run_with_env(
        &["apply", "1.0.0"],
        &[
            (
                "SQUIZZLE_CERTIFICATE_IDENTITY",
                "https://github.com/evil/app/.github/workflows/release.yml@refs/tags/v1.0.0",
            ),
            ("SQUIZZLE_CERTIFICATE_OIDC_ISSUER", &s.issuer_url()),
        ],
    )
    .code(9);
    assert_eq!(
        squizzle_schema_count(&db),
        "0",
        "apply touched the database"
    );
}

#[test]
fn env_without_a_config_file_is_a_clear_usage_error() {
    let mut w = World::new();
    w.set_env("DATABASE_URL", "postgres://app@127.0.0.1:1/app");
    for args in [
        vec!["apply", "1.0.0", "--env", "production"],
        vec!["status", "--env", "production"],
        vec!["verify", "1.0.0", "--env", "production"],
    ] {
        w.run(&args)
            .code(2)
            .says("--env production")
            .says("no squizzle.toml")
            .does_not_say("defined: default");
    }
    w.run_with_env(&["status"], &[("SQUIZZLE_ENV", "staging")])
        .code(2)
        .says("no squizzle.toml");
    // build needs a project; it says so instead of building from nothing.
    w.run(&["build", "1.0.0"])
        .code(2)
        .says("no squizzle.toml found")
        .says("squizzle init");
}

const TWO_ENVIRONMENTS: &str = "[project]\nmigrations = \"migrations\"\n\n[environments.staging]\ndatabase_url = \"${STAGING_DATABASE_URL}\"\n\n[environments.production]\ndatabase_url = \"${PRODUCTION_DATABASE_URL}\"\n";

#[test]
fn an_unset_variable_of_an_unused_environment_breaks_no_command() {
    let db = pg::shared().create_database("lazy_staging");
    let mut w = World::plain();
    w.config(TWO_ENVIRONMENTS);
    w.set_env("STAGING_DATABASE_URL", &format!("{db}?sslmode=disable"));
    // PRODUCTION_DATABASE_URL is never set.
    w.build_ok("1.0.0");
    w.run(&["verify", "1.0.0"]).success();
    w.run(&["list"]).success().says("1.0.0");
    w.run(&["apply", "1.0.0", "--env", "staging"])
        .success()
        .says("Applied 1.0.0");
    w.run(&["status", "--env", "staging"])
        .success()
        .says("Up to date with 1.0.0");
    // audit reports production as not auditable, with the variable to set.
    w.run(&["audit", "1.0.0"]).says("PRODUCTION_DATABASE_URL");
}

/// `[registry]` credentials resolve lazily too: a deploy job that never
/// talks to the registry (the release is in its store) needs no
/// REG_PASSWORD; a command that does is refused naming the variable, and a
/// SQUIZZLE_REGISTRY_PASSWORD replaces the file's reference.
#[test]
fn an_unset_registry_credential_stops_only_commands_that_use_the_registry() {
    let reg = Registry::start(RegistryOptions {
        auth: Auth::Basic {
            user: "ci".into(),
            password: "s3cret-reg".into(),
        },
    });
    let db = pg::shared().create_database("lazy_registry");
    let mut w = World::plain();
    w.config(&format!(
        "[project]\nmigrations = \"migrations\"\n\n[registry]\nurl = \"{}/acme/db\"\nusername = \"ci\"\npassword = \"${{REG_PASSWORD}}\"\n",
        reg.url()
    ));
    w.set_env("REG_PASSWORD", "s3cret-reg");
    w.build_ok("1.0.0");
    w.run(&["push", "1.0.0"]).success();
    w.unset_env("REG_PASSWORD");
    w.set_env("DATABASE_URL", &format!("{db}?sslmode=disable"));
    w.run(&["apply", "1.0.0"]).success().says("Applied 1.0.0");
    w.run(&["status"]).success().says("Up to date with 1.0.0");
    for args in [vec!["pull", "1.0.0"], vec!["list"]] {
        w.run(&args)
            .code(2)
            .says("registry.password")
            .says("REG_PASSWORD");
    }
    w.run_with_env(&["list"], &[("SQUIZZLE_REGISTRY_PASSWORD", "s3cret-reg")])
        .success()
        .says("1.0.0");
}

#[test]
fn database_url_replaces_the_files_reference_without_expanding_it() {
    let db = pg::shared().create_database("lazy_override");
    let w = World::plain();
    w.config(TWO_ENVIRONMENTS);
    w.build_ok("1.0.0");
    w.run_with_env(
        &["apply", "1.0.0", "--env", "production"],
        &[("DATABASE_URL", &format!("{db}?sslmode=disable"))],
    )
    .success()
    .says("Applied 1.0.0");
}

#[test]
fn the_selected_environments_unset_variable_is_named_before_anything_is_touched() {
    let db = pg::shared().create_database("lazy_refused");
    let mut w = World::plain();
    w.config(TWO_ENVIRONMENTS);
    w.set_env("STAGING_DATABASE_URL", &format!("{db}?sslmode=disable"));
    w.build_ok("1.0.0");
    for args in [
        vec!["apply", "1.0.0", "--env", "production"],
        vec!["status", "--env", "production"],
    ] {
        w.run(&args)
            .code(2)
            .says("environments.production.database_url")
            .says("PRODUCTION_DATABASE_URL");
    }
    // verify needs no database: production's policy is all it reads.
    w.run(&["verify", "1.0.0", "--env", "production"]).success();
    assert_eq!(squizzle_schema_count(&db), "0");
}

#[test]
fn results_go_to_stdout_and_progress_to_stderr() {
    let s = SigstoreServices::start();
    let reg = Registry::start(RegistryOptions { auth: Auth::None });
    released(&s, &reg);
    // A checkout with a config this time: the streams do not depend on it.
    let w = World::named("deploy");
    w.config(&format!(
        "[project]\nmigrations = \"migrations\"\n\n[registry]\nurl = \"{}/acme/db\"\n\n[security]\ntrusted_root = {:?}\n\n[[security.signers]]\nidentity = {WORKFLOW:?}\nissuer = {:?}\n",
        reg.url(),
        s.trusted_root_path().display().to_string(),
        s.issuer_url(),
    ));
    // A first verify pulls: the pull is progress, the checks are the report.
    let run = w.sh("squizzle verify 1.0.0 > report.txt").success();
    assert!(run.stdout.contains("Pulled 1.0.0"), "{}", run.stdout);
    let report = w.read_string("report.txt");
    assert!(report.contains("Integrity verified"), "{report}");
    assert!(report.contains("1.0.0 sha256:"), "{report}");
    assert!(!report.contains("Pulled"), "{report}");
    // pull's transfer lines are progress too; its summary is the result.
    std::fs::remove_dir_all(w.path("db")).unwrap();
    let run = w.sh("squizzle pull 1.0.0 > pulled.txt").success();
    assert!(run.stdout.contains("↓ layer"), "{}", run.stdout);
    let pulled = w.read_string("pulled.txt");
    assert!(pulled.contains("Pulled 1.0.0"), "{pulled}");
    assert!(!pulled.contains('↓'), "{pulled}");
    // JSON: stdout is one document a pipe can read.
    let run = w
        .sh("squizzle list --output json | jq -e '.versions[0].version == \"1.0.0\"'")
        .success();
    assert!(run.stdout.trim_end().ends_with("true"), "{}", run.stdout);
}

#[test]
fn registry_credentials_come_from_variables_and_are_never_shown() {
    use squizzle_test_support::registry::Auth as RegAuth;
    let password = "s3cret-registry-pass";
    let reg = Registry::start(RegistryOptions {
        auth: RegAuth::basic("deployer", password),
    });
    let mut ci = World::plain();
    ci.config(&format!(
        "[project]\nmigrations = \"migrations\"\n\n[registry]\nurl = \"{}/acme/db\"\nusername = \"${{REG_USER}}\"\npassword = \"${{REG_PASSWORD}}\"\n",
        reg.url()
    ));
    ci.set_env("REG_USER", "deployer");
    ci.set_env("REG_PASSWORD", password);
    ci.build_ok("1.0.0");
    ci.run(&["push", "1.0.0"]).success();

    let mut job = World::named("job");
    job.set_env("SQUIZZLE_REGISTRY", &format!("{}/acme/db", reg.url()));
    job.set_env("SQUIZZLE_REGISTRY_USERNAME", "deployer");
    // Without the password the registry refuses: exit 4, as with a config.
    job.run(&["pull", "1.0.0"]).code(4);
    job.set_env("SQUIZZLE_REGISTRY_PASSWORD", password);
    let run = job.run(&["pull", "1.0.0", "-vv"]).success();
    assert!(!run.output().contains(password), "{}", run.output());
    job.run(&["list", "--output", "json"]).success().json()["versions"][0]["version"]
        .as_str()
        .map(|v| assert_eq!(v, "1.0.0"))
        .expect("a listed version");
}
