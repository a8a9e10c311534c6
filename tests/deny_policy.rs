//! Per-environment deny policy (issue 14, section 3): `[environments.NAME]
//! deny = [...]` (and `--deny` / `SQUIZZLE_DENY`) makes `apply` refuse a
//! release whose recorded findings it names (exit 9) before it connects,
//! unless the release carries an allowance (`build --allow ID:FILE
//! --reason`) that verify, apply and audit show. Real PostgreSQL 15, real
//! docker-registry and loopback Sigstore services from
//! `squizzle_test_support`.

use serde_json::Value;
use squizzle_test_support::registry::{Auth, Registry, RegistryOptions, sha256_digest};
use squizzle_test_support::sigstore::{Identity, SigstoreServices};
use squizzle_test_support::{World, pg};

const CLEANUP: &str = "CREATE TABLE legacy (id int);\nDROP TABLE legacy;\nTRUNCATE orders;\n";
const FILE: &str = "migrations/0004_cleanup.sql";

fn config(production_deny: &str) -> String {
    format!(
        "[project]\nmigrations = \"migrations\"\n\n\
         [environments.production]\ndatabase_url = \"${{PROD_URL}}\"\ndeny = {production_deny}\n\n\
         [environments.staging]\ndatabase_url = \"${{STAGING_URL}}\"\n"
    )
}

/// The plain project plus a destructive migration, production denying
/// destructive findings; each environment has a database of its own.
fn project(prefix: &str) -> (World, String, String) {
    let mut w = World::plain();
    w.config(&config("[\"destructive\"]"));
    w.write(FILE, CLEANUP);
    let prod = pg::shared().create_database(&format!("{prefix}_prod"));
    let staging = pg::shared().create_database(&format!("{prefix}_staging"));
    w.set_env("PROD_URL", &format!("{prod}?sslmode=disable"));
    w.set_env("STAGING_URL", &format!("{staging}?sslmode=disable"));
    (w, prod, staging)
}

fn one(db: &str, sql: &str) -> String {
    pg::shared().query(db, sql)[0][0]
        .clone()
        .unwrap_or_default()
}

#[track_caller]
fn untouched(db: &str) {
    assert_eq!(
        one(
            db,
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'squizzle'"
        ),
        "0",
        "no squizzle schema may be created"
    );
    assert_eq!(
        one(
            db,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        "0",
        "no migration may run"
    );
}

#[track_caller]
fn valid(schema_name: &str, doc: &Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(schema_name);
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let v = jsonschema::draft202012::new(&schema).unwrap();
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{schema_name}: {errors:?}\n{doc:#}");
}

#[test]
fn production_denies_a_destructive_release_before_connecting_while_staging_applies_it() {
    let (w, prod, staging) = project("deny_block");
    w.build_ok("1.0.0");

    let run = w
        .run(&["apply", "1.0.0", "--env", "production"])
        .code(9)
        .stderr_has("1.0.0 is refused by the deny policy of production (destructive)")
        .stderr_has(&format!(
            "{FILE}:2: DROP TABLE deletes the table and its rows [drop-table]"
        ))
        .stderr_has(&format!("{FILE}:3: TRUNCATE deletes every row [truncate]"))
        .stderr_has(&format!(
            "--allow drop-table:{FILE} --allow truncate:{FILE} --reason"
        ))
        .does_not_say("Connected");
    drop(run);
    untouched(&prod);
    // A plan-only dry run is judged the same way.
    w.run(&["apply", "1.0.0", "--env", "production", "--dry-run"])
        .code(9);
    let j = w
        .run(&["apply", "1.0.0", "--env", "production", "--output", "json"])
        .code(9)
        .json();
    assert_eq!(j["error"]["code"], 9);
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap()
            .contains("[truncate]")
    );
    untouched(&prod);

    // The same release, staging (no deny list): applied.
    w.run(&["apply", "1.0.0", "--env", "staging"])
        .success()
        .says("Applied 1.0.0");
    assert_eq!(
        one(&staging, "SELECT count(*) FROM squizzle.migrations"),
        "4"
    );

    // --deny / SQUIZZLE_DENY add ids or categories for a job without a
    // config entry: an id names just that finding.
    let run = w
        .run_with_env(
            &["apply", "1.0.0", "--env", "staging"],
            &[("SQUIZZLE_DENY", "blocking, truncate")],
        )
        .code(9)
        .stderr_has(&format!("{FILE}:3: TRUNCATE deletes every row [truncate]"));
    let out = run.output();
    let refusal = &out[out.find("error:").expect("a refusal")..];
    assert!(!refusal.contains("[drop-table]"), "{out}");
    assert!(refusal.contains("1 finding it names"), "{out}");
    w.run(&["apply", "1.0.0", "--env", "staging", "--deny", "drop-view"])
        .success()
        .says("nothing to do");
}

#[test]
fn an_allowance_built_into_the_release_lets_production_apply_and_is_shown() {
    let (w, prod, _staging) = project("deny_allow");
    let reason = "legacy was never used; orders is rebuilt by the importer (CHG-7)";
    w.run(&[
        "build",
        "1.0.0",
        "--allow",
        "drop-table:0004_cleanup.sql",
        "--allow",
        &format!("truncate:{FILE}"),
        "--reason",
        reason,
    ])
    .success();
    let m = w.read_json("db/tarballs/squizzle-1.0.0.manifest.json");
    valid("manifest.v1.schema.json", &m);
    assert_eq!(m["lineage"]["analysed"], true);
    let allowed = m["lineage"]["allowedFindings"].as_array().unwrap();
    assert_eq!(allowed.len(), 2);
    assert_eq!(allowed[0]["id"], "drop-table");
    assert_eq!(
        allowed[0]["path"], FILE,
        "the file name is recorded as the path"
    );
    assert_eq!(allowed[1]["id"], "truncate");
    assert_eq!(allowed[1]["reason"], reason);

    let shown = format!("Finding allowed at build: drop-table in {FILE}; reason: {reason}");
    w.run(&["verify", "1.0.0", "--offline"])
        .success()
        .stdout_has(&shown);
    let v = w
        .run(&["verify", "1.0.0", "--offline", "--output", "json"])
        .success()
        .json();
    assert_eq!(v["lineage"]["allowedFindings"][1]["id"], "truncate");

    w.run(&["apply", "1.0.0", "--env", "production"])
        .success()
        .stdout_has(&shown)
        .stderr_has(&format!(
            "{FILE}:2: DROP TABLE deletes the table and its rows [drop-table] is denied in production but the release allows it: {reason}"
        ))
        .says("Applied 1.0.0");
    assert_eq!(one(&prod, "SELECT count(*) FROM squizzle.migrations"), "4");

    // A deny list that names nothing the release has lets it through.
    w.run(&[
        "apply",
        "1.0.0",
        "--env",
        "production",
        "--deny",
        "create-index-blocking,lock-table",
    ])
    .success();

    let audit = w.run(&["audit", "1.0.0"]).success();
    assert!(
        audit.output().contains(&format!(
            "Allows:      truncate in {FILE} (reason: {reason})"
        )),
        "{}",
        audit.output()
    );
    let a = w
        .run(&["audit", "1.0.0", "--output", "json"])
        .success()
        .json();
    valid("audit.v1.schema.json", &a);
    assert_eq!(a["artifact"]["allowedFindings"][0]["id"], "drop-table");
}

#[test]
fn hostile_policies_and_allowances_are_refused_with_exit_2() {
    let (w, prod, _staging) = project("deny_hostile");
    // An allowance must name a finding the release has, with a reason.
    w.run(&[
        "build",
        "1.0.0",
        "--allow",
        "drop-column:0004_cleanup.sql",
        "--reason",
        "x",
    ])
    .code(2)
    .stderr_has("this release has no drop-column finding in 0004_cleanup.sql")
    .stderr_has(&format!("drop-table:{FILE}, truncate:{FILE}"));
    w.run(&[
        "build",
        "1.0.0",
        "--allow",
        "drop-table:migrations/0003_create_orders.sql",
        "--reason",
        "x",
    ])
    .code(2)
    .stderr_has("no drop-table finding in migrations/0003_create_orders.sql");
    w.run(&[
        "build",
        "1.0.0",
        "--allow",
        "drop-tables:0004_cleanup.sql",
        "--reason",
        "x",
    ])
    .code(2)
    .stderr_has("\"drop-tables\" is not a finding id")
    .stderr_has("drop-table, drop-schema");
    w.run(&["build", "1.0.0", "--allow", "drop-table", "--reason", "x"])
        .code(2)
        .stderr_has("expected ID:FILE");
    w.run(&["build", "1.0.0", "--allow", "drop-table:0004_cleanup.sql"])
        .code(2)
        .stderr_has("--reason");
    w.run(&[
        "build",
        "1.0.0",
        "--allow",
        "drop-table:0004_cleanup.sql",
        "--reason",
        "  ",
    ])
    .code(2)
    .stderr_has("--allow needs --reason");
    assert!(
        !w.exists("db/tarballs/squizzle-1.0.0.tar.gz"),
        "a refused build writes nothing"
    );

    // An unknown name in a deny list: exit 2 naming the valid ones, before
    // anything is fetched or connected.
    w.build_ok("1.0.0");
    w.config(&config("[\"destructiv\"]"));
    w.run(&["apply", "1.0.0", "--env", "production"])
        .code(2)
        .stderr_has("environments.production.deny: \"destructiv\" is neither a finding category nor a finding id")
        .stderr_has("categories: destructive, blocking, incompatible, concurrency, not-analysed")
        .stderr_has("ids: drop-table");
    w.run(&["apply", "1.0.0", "--env", "staging", "--deny", "everything"])
        .code(2)
        .stderr_has("--deny / SQUIZZLE_DENY: \"everything\"");
    untouched(&prod);
}

/// Rewrites the stored release's squizzle manifest with `edit`, keeping every
/// digest consistent (as a release built by another squizzle would be).
fn rewrite_manifest(w: &World, version: &str, edit: impl FnOnce(&mut Value)) {
    let put = |bytes: &[u8]| {
        let digest = sha256_digest(bytes);
        std::fs::write(w.blob_path(&digest), bytes).unwrap();
        digest
    };
    let mut config = w.squizzle_manifest(version);
    edit(&mut config);
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let mut oci = w.oci_manifest(version);
    oci["config"]["digest"] = put(&config_bytes).into();
    oci["config"]["size"] = config_bytes.len().into();
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

#[test]
fn a_release_built_without_recorded_findings_is_refused_under_a_deny_policy_as_not_analysed() {
    let (w, prod, staging) = project("deny_unanalysed");
    w.build_ok("1.0.0");
    // What an older squizzle wrote: no lineage at all, or a lineage without
    // the analysis (no findings, no `analysed`).
    rewrite_manifest(&w, "1.0.0", |m| {
        m.as_object_mut().unwrap().remove("lineage");
    });
    w.run(&["verify", "1.0.0", "--offline"]).success();
    w.run(&["apply", "1.0.0", "--env", "production"])
        .code(9)
        .stderr_has("did not record findings about its SQL")
        .stderr_has("Build the migrations as a new version with this squizzle");
    untouched(&prod);
    w.run(&["apply", "1.0.0", "--env", "staging"])
        .success()
        .says("Applied 1.0.0");
    assert_eq!(
        one(&staging, "SELECT count(*) FROM squizzle.migrations"),
        "4"
    );

    w.build_ok("1.1.0");
    rewrite_manifest(&w, "1.1.0", |m| {
        let l = m["lineage"].as_object_mut().unwrap();
        l.remove("analysed");
        l.remove("findings");
    });
    w.run(&["verify", "1.1.0", "--offline"]).success();
    w.run(&["apply", "1.1.0", "--env", "production"])
        .code(9)
        .stderr_has("did not record findings");
    untouched(&prod);
}

const WORKFLOW: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0";

#[test]
fn a_deploy_job_without_a_config_denies_with_squizzle_deny_and_shows_the_signed_allowance() {
    let s = SigstoreServices::start();
    let reg = Registry::start(RegistryOptions { auth: Auth::None });
    let ci = World::plain();
    ci.config(&format!(
        "[project]\nmigrations = \"migrations\"\n\n[registry]\nurl = \"{}/acme/db\"\n\n[security]\nfulcio_url = {:?}\nrekor_url = {:?}\ntrusted_root = {:?}\n",
        reg.url(),
        s.fulcio_url(),
        s.rekor_url(),
        s.trusted_root_path().display().to_string(),
    ));
    ci.write(FILE, CLEANUP);
    ci.build_ok("1.0.0");
    let reason = "approved in CHG-9";
    ci.write(
        "migrations/0005_more.sql",
        "TRUNCATE users;\nALTER TABLE orders ADD COLUMN note text;\n",
    );
    ci.run(&[
        "build",
        "1.1.0",
        "--allow",
        "drop-column:0005_more.sql",
        "--reason",
        reason,
    ])
    .code(2)
    .stderr_has("no drop-column finding in 0005_more.sql");
    // 1.1.0 carries 0004's findings over from 1.0.0: it allows them too.
    ci.run(&[
        "build",
        "1.1.0",
        "--allow",
        "truncate:0005_more.sql",
        "--allow",
        &format!("truncate:{FILE}"),
        "--allow",
        &format!("drop-table:{FILE}"),
        "--reason",
        reason,
    ])
    .success();
    let token = s.mint_token(&Identity::uri(WORKFLOW));
    for v in ["1.0.0", "1.1.0"] {
        ci.run_with_env(&["sign", v], &[("SIGSTORE_ID_TOKEN", &token)])
            .success();
        ci.run(&["push", v]).success();
    }

    let db = pg::shared().create_database("deny_job");
    let mut job = World::named("job");
    let cache = job.home().join("xdg-cache");
    job.set_env("XDG_CACHE_HOME", cache.to_str().unwrap());
    job.set_env("DATABASE_URL", &format!("{db}?sslmode=disable"));
    job.set_env("SQUIZZLE_REGISTRY", &format!("{}/acme/db", reg.url()));
    job.set_env(
        "SQUIZZLE_TRUSTED_ROOT",
        s.trusted_root_path().to_str().unwrap(),
    );
    job.set_env("SQUIZZLE_CERTIFICATE_IDENTITY", WORKFLOW);
    job.set_env("SQUIZZLE_CERTIFICATE_OIDC_ISSUER", &s.issuer_url());
    job.set_env("SQUIZZLE_DENY", "destructive");

    // 1.0.0 drops a table and truncates without an allowance: refused after
    // the pull and signature check, before the database.
    job.run(&["apply", "1.0.0"])
        .code(9)
        .stderr_has("deny policy of this apply (destructive)")
        .stderr_has(&format!("{FILE}:2:"));
    assert_eq!(
        one(
            &db,
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'squizzle'"
        ),
        "0"
    );
    // Without the variable, the same job applies it.
    job.run_with_env(&["apply", "1.0.0"], &[("SQUIZZLE_DENY", "")])
        .success()
        .says("Applied 1.0.0");
    // 1.1.0 only truncates, and allows it: signer and allowance are shown.
    job.run(&["apply", "1.1.0"])
        .success()
        .stdout_has(&format!("Signed by: {WORKFLOW}"))
        .stdout_has(&format!(
            "Finding allowed at build: truncate in migrations/0005_more.sql; reason: {reason}"
        ))
        .says("Applied 1.1.0");
}

#[test]
fn findings_and_allowances_of_released_migrations_carry_over_so_a_skipped_release_is_still_judged()
{
    let (w, prod, staging) = project("deny_carry");
    w.build_ok("1.0.0");
    w.run(&["apply", "1.0.0", "--env", "staging"]).success();
    // 1.1.0 adds a harmless migration; production never applied 1.0.0, so
    // applying 1.1.0 would run 0004 too: its findings came along.
    w.write(
        "migrations/0005_note.sql",
        "ALTER TABLE orders ADD COLUMN note text;\n",
    );
    w.build_ok("1.1.0");
    let m = w.read_json("db/tarballs/squizzle-1.1.0.manifest.json");
    valid("manifest.v1.schema.json", &m);
    assert_eq!(m["lineage"]["findings"].as_array().unwrap().len(), 2);
    w.run(&["apply", "1.1.0", "--env", "production"])
        .code(9)
        .stderr_has(&format!(
            "{FILE}:2: DROP TABLE deletes the table and its rows [drop-table]"
        ));
    untouched(&prod);

    // An allowance can be given for a carried finding, and is carried on.
    w.run(&[
        "build",
        "1.2.0",
        "--allow",
        "drop-table:0004_cleanup.sql",
        "--allow",
        "truncate:0004_cleanup.sql",
        "--reason",
        "reviewed late (CHG-8)",
    ])
    .success();
    w.write(
        "migrations/0006_more.sql",
        "ALTER TABLE orders ADD COLUMN extra text;\n",
    );
    w.build_ok("1.3.0");
    let m = w.read_json("db/tarballs/squizzle-1.3.0.manifest.json");
    assert_eq!(m["lineage"]["allowedFindings"].as_array().unwrap().len(), 2);
    w.run(&["apply", "1.3.0", "--env", "production"])
        .success()
        .says("Applied 1.3.0");
    w.run(&["apply", "1.3.0", "--env", "staging"]).success();
    assert_eq!(
        one(&staging, "SELECT count(*) FROM squizzle.migrations"),
        "6"
    );
}
