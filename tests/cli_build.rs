//! `squizzle build`: collect -> pack -> manifest -> OCI artifact in db/oci.

use serde_json::Value;
use sha2::{Digest as _, Sha256};
use squizzle_test_support::{DOKPLOY_MIGRATIONS, PLAIN_CONFIG, World};

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn ids(manifest: &Value, kind: &str) -> Vec<String> {
    let mut files: Vec<&Value> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == kind)
        .collect();
    files.sort_by_key(|f| f["order"].as_u64().unwrap());
    files
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect()
}

fn file<'a>(manifest: &'a Value, path: &str) -> &'a Value {
    manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("{path} not in manifest: {manifest:#}"))
}

// ---------------------------------------------------------------------------
// The dokploy drizzle-kit corpus
// ---------------------------------------------------------------------------

#[test]
fn building_the_dokploy_corpus_writes_the_tarball_and_manifest() {
    let w = World::dokploy();

    let report = w.build_ok("1.0.0");

    assert!(w.path("db/tarballs/squizzle-1.0.0.tar.gz").is_file());
    assert!(w.path("db/tarballs/squizzle-1.0.0.manifest.json").is_file());
    assert_eq!(report["version"], "1.0.0");
    assert_eq!(report["migrations"], DOKPLOY_MIGRATIONS);
    assert_eq!(report["rollbacks"], 0);
    assert_eq!(report["seeds"], 0);
    assert_eq!(report["format"], "drizzle");
    assert_eq!(report["unchanged"], false);
    assert_eq!(report["previousVersion"], Value::Null);
    // The only warnings: a first build has nothing to compare with, and
    // what the SQL of its migrations does (docs/lint.md).
    let warnings = report["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .starts_with("no earlier release to compare the migrations with"),
        "{warnings:?}"
    );
    assert!(
        warnings[1]
            .as_str()
            .unwrap()
            .starts_with("77 findings in the new or edited migrations (63 destructive"),
        "{warnings:?}"
    );
    let digest = report["digest"].as_str().unwrap();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    assert_eq!(
        digest,
        w.tag_digest("1.0.0"),
        "the report's digest is the tagged OCI manifest"
    );

    // The tarball's recorded digest and size are those of the file on disk.
    let tarball = w.read("db/tarballs/squizzle-1.0.0.tar.gz");
    assert_eq!(report["tarballSha256"], sha256(&tarball));
    assert_eq!(report["tarballSize"], tarball.len());
    assert!(
        report["tarball"]
            .as_str()
            .unwrap()
            .ends_with("db/tarballs/squizzle-1.0.0.tar.gz")
    );
    assert!(
        report["manifest"]
            .as_str()
            .unwrap()
            .ends_with("db/tarballs/squizzle-1.0.0.manifest.json")
    );
}

#[test]
fn building_prints_seed_style_lines_in_text_mode() {
    let w = World::dokploy();
    w.run(&["build", "1.0.0"])
        .success()
        .stdout_has("✓ Collected 186 migrations (drizzle-kit journal order), 0 rollbacks, 0 seeds")
        .stdout_has("✓ Packed db/tarballs/squizzle-1.0.0.tar.gz")
        .stdout_has("✓ Stored 1.0.0 in db/oci")
        .stdout_has("→ Digest: sha256:");
}

#[test]
fn manifest_file_order_follows_the_drizzle_journal() {
    let w = World::dokploy();
    w.build_ok("1.0.0");

    let manifest = w.read_json("db/tarballs/squizzle-1.0.0.manifest.json");
    let journal = w.read_json("drizzle/meta/_journal.json");
    let journal_tags: Vec<String> = journal["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["tag"].as_str().unwrap().to_owned())
        .collect();

    let migrations = ids(&manifest, "migration");
    assert_eq!(migrations.len(), DOKPLOY_MIGRATIONS);
    assert_eq!(migrations, journal_tags, "run order is the journal's order");
    assert_eq!(migrations[130], "0130_perpetual_screwball");

    let f130 = file(&manifest, "drizzle/0130_perpetual_screwball.sql");
    assert_eq!(f130["order"], 130);
    assert_eq!(f130["kind"], "migration");
    assert_eq!(f130["transaction"], "default");
    let body = w.read("drizzle/0130_perpetual_screwball.sql");
    assert_eq!(f130["size"], body.len());
    assert_eq!(
        f130["sha256"],
        sha256(&body),
        "per-file hash is sha256 of the file"
    );

    assert_eq!(manifest["format"], "drizzle");
    assert_eq!(manifest["version"], "1.0.0");
    assert_eq!(manifest["tarball"]["name"], "squizzle-1.0.0.tar.gz");
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.squizzle.manifest.v1+json"
    );
}

#[test]
fn the_release_is_an_oci_artifact_in_the_local_image_layout() {
    let w = World::dokploy();
    let report = w.build_ok("1.0.0");

    let layout = w.read_json("db/oci/oci-layout");
    assert_eq!(layout["imageLayoutVersion"], "1.0.0");

    let index = w.index();
    assert_eq!(index["schemaVersion"], 2);
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{index:#}");
    let entry = &entries[0];
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        "1.0.0"
    );
    assert_eq!(
        entry["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(entry["digest"], report["digest"]);

    let m = w.oci_manifest("1.0.0");
    assert_eq!(m["schemaVersion"], 2);
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(m["artifactType"], "application/vnd.squizzle.migrations.v1");
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.squizzle.manifest.v1+json"
    );
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.squizzle.migrations.v1.tar+gzip"
    );
    assert_eq!(
        layers[0]["annotations"]["org.opencontainers.image.title"],
        "squizzle-1.0.0.tar.gz"
    );
    assert_eq!(layers[0]["digest"], report["tarballSha256"]);
    assert_eq!(
        m["annotations"]["org.opencontainers.image.version"],
        "1.0.0"
    );

    // The layer blob is the tarball; the config blob is the manifest file beside it.
    assert_eq!(
        w.blob(layers[0]["digest"].as_str().unwrap()),
        w.read("db/tarballs/squizzle-1.0.0.tar.gz")
    );
    assert_eq!(
        w.blob(m["config"]["digest"].as_str().unwrap()),
        w.read("db/tarballs/squizzle-1.0.0.manifest.json")
    );

    // Every blob is named by the digest of its bytes, and sizes match descriptors.
    let blobs = w.files_under("db/oci/blobs/sha256");
    assert_eq!(blobs.len(), 3, "manifest, config, layer: {blobs:?}");
    for name in &blobs {
        let bytes = w.read(&format!("db/oci/blobs/sha256/{name}"));
        assert_eq!(sha256(&bytes), format!("sha256:{name}"));
    }
    assert_eq!(
        entry["size"],
        w.blob(report["digest"].as_str().unwrap()).len()
    );
    assert_eq!(
        m["config"]["size"],
        w.read("db/tarballs/squizzle-1.0.0.manifest.json").len()
    );
}

#[test]
fn previous_version_is_the_nearest_older_release_in_the_store() {
    let w = World::dokploy();
    assert_eq!(w.build_ok("1.0.0")["previousVersion"], Value::Null);

    let r = w.build_ok("1.1.0");
    assert_eq!(r["previousVersion"], "1.0.0");
    assert_eq!(w.squizzle_manifest("1.1.0")["previousVersion"], "1.0.0");

    // Built later but older: nothing precedes it.
    let r = w.build_ok("0.9.0");
    assert_eq!(r["previousVersion"], Value::Null);
    assert_eq!(w.squizzle_manifest("0.9.0")["previousVersion"], Value::Null);

    // Nearest older, not the newest.
    assert_eq!(w.build_ok("1.0.5")["previousVersion"], "1.0.0");
    // A pre-release sorts before its release.
    assert_eq!(w.build_ok("2.0.0-rc.1")["previousVersion"], "1.1.0");
    assert_eq!(w.build_ok("2.0.0")["previousVersion"], "2.0.0-rc.1");
}

#[test]
fn notes_are_recorded_in_the_manifest_and_annotations() {
    let w = World::plain();
    w.run(&["build", "1.0.0", "--notes", "add invoices table"])
        .success();

    let manifest = w.squizzle_manifest("1.0.0");
    assert_eq!(manifest["notes"], "add invoices table");
    assert_eq!(
        w.oci_manifest("1.0.0")["annotations"]["org.opencontainers.image.description"],
        "add invoices table"
    );
    assert_eq!(
        w.read_json("db/tarballs/squizzle-1.0.0.manifest.json")["notes"],
        "add invoices table"
    );

    // Without --notes there are none.
    w.run(&["build", "1.1.0"]).success();
    assert_eq!(w.squizzle_manifest("1.1.0")["notes"], Value::Null);
}

#[test]
fn a_leading_v_is_dropped_from_the_version() {
    let w = World::plain();
    let r = w.build_ok("v1.2.0");
    assert_eq!(r["version"], "1.2.0");
    assert!(w.exists("db/tarballs/squizzle-1.2.0.tar.gz"));
    assert!(w.exists("db/tarballs/squizzle-1.2.0.manifest.json"));
    assert!(!w.exists("db/tarballs/squizzle-v1.2.0.tar.gz"));
    assert_eq!(w.squizzle_manifest("1.2.0")["version"], "1.2.0");
    w.run(&["verify", "1.2.0"]).success();
    w.run(&["verify", "v1.2.0"]).success();
}

// ---------------------------------------------------------------------------
// Plain folders
// ---------------------------------------------------------------------------

#[test]
fn plain_folders_run_in_numeric_order() {
    let w = World::new();
    w.config(PLAIN_CONFIG);
    w.write("migrations/10_c.sql", "SELECT 10;\n");
    w.write("migrations/2_b.sql", "SELECT 2;\n");
    w.write("migrations/0001_a.sql", "SELECT 1;\n");
    w.write("migrations/README.md", "not a migration");

    let r = w.build_ok("1.0.0");
    assert_eq!(r["format"], "plain");
    assert_eq!(r["migrations"], 3);

    let manifest = w.squizzle_manifest("1.0.0");
    assert_eq!(
        ids(&manifest, "migration"),
        ["0001_a", "2_b", "10_c"],
        "10 comes after 2"
    );
    assert_eq!(file(&manifest, "migrations/0001_a.sql")["order"], 0);
    assert_eq!(file(&manifest, "migrations/2_b.sql")["order"], 1);
    assert_eq!(file(&manifest, "migrations/10_c.sql")["order"], 2);
    assert_eq!(
        manifest["files"].as_array().unwrap().len(),
        3,
        "README.md is not packed"
    );
}

#[test]
fn down_sql_files_are_rollbacks_for_their_migration() {
    let w = World::plain();
    w.write(
        "migrations/0001_create_users.down.sql",
        "DROP TABLE users;\n",
    );
    w.write(
        "migrations/0003_create_orders.down.sql",
        "DROP TABLE orders;\n",
    );

    let r = w.build_ok("1.0.0");
    assert_eq!(r["migrations"], 3);
    assert_eq!(r["rollbacks"], 2);

    let manifest = w.squizzle_manifest("1.0.0");
    assert_eq!(
        ids(&manifest, "migration"),
        ["0001_create_users", "0002_add_email", "0003_create_orders"]
    );
    let down = file(&manifest, "migrations/0001_create_users.down.sql");
    assert_eq!(down["kind"], "rollback");
    assert_eq!(down["rollbackFor"], "0001_create_users");
    let down = file(&manifest, "migrations/0003_create_orders.down.sql");
    assert_eq!(down["kind"], "rollback");
    assert_eq!(down["rollbackFor"], "0003_create_orders");
    assert!(
        file(&manifest, "migrations/0001_create_users.sql")
            .get("rollbackFor")
            .is_none()
    );
}

#[test]
fn rollback_and_seed_folders_are_packed_when_configured() {
    let w = World::plain();
    w.config("[project]\nmigrations = \"migrations\"\nrollbacks = \"db/rollback\"\nseeds = \"db/seeds\"\n");
    w.write(
        "db/rollback/0002_add_email.sql",
        "ALTER TABLE users DROP COLUMN email;\n",
    );
    w.write(
        "db/seeds/b_orders.sql",
        "INSERT INTO orders VALUES (1, 1);\n",
    );
    w.write("db/seeds/a_users.sql", "INSERT INTO users VALUES (1);\n");

    let r = w.build_ok("1.0.0");
    assert_eq!(
        (
            r["migrations"].as_u64(),
            r["rollbacks"].as_u64(),
            r["seeds"].as_u64()
        ),
        (Some(3), Some(1), Some(2))
    );
    let manifest = w.squizzle_manifest("1.0.0");
    assert_eq!(
        file(&manifest, "db/rollback/0002_add_email.sql")["rollbackFor"],
        "0002_add_email"
    );
    assert_eq!(ids(&manifest, "seed"), ["a_users", "b_orders"]);
    w.run(&["build", "1.0.1"])
        .success()
        .stdout_has("3 migrations (numbered files), 1 rollback, 2 seeds");
}

#[test]
fn a_no_transaction_directive_is_recorded_in_the_manifest() {
    let w = World::plain();
    w.write(
        "migrations/0004_index_email.sql",
        "-- add the index without locking the table\n-- squizzle:no-transaction\nCREATE INDEX CONCURRENTLY users_email ON users (email);\n",
    );

    w.build_ok("1.0.0");

    let manifest = w.squizzle_manifest("1.0.0");
    assert_eq!(
        file(&manifest, "migrations/0004_index_email.sql")["transaction"],
        "none"
    );
    for other in ["0001_create_users", "0002_add_email", "0003_create_orders"] {
        assert_eq!(
            file(&manifest, &format!("migrations/{other}.sql"))["transaction"],
            "default",
            "{other}"
        );
    }
}

#[test]
fn a_drizzle_file_missing_from_the_journal_is_left_out_with_a_warning() {
    let w = World::dokploy();
    w.write("drizzle/0186_not_generated.sql", "SELECT 1;\n");
    w.run(&["build", "1.0.0"])
        .success()
        .stderr_has("0186_not_generated.sql is not in meta/_journal.json");
    assert_eq!(
        w.squizzle_manifest("1.0.0")["files"]
            .as_array()
            .unwrap()
            .len(),
        DOKPLOY_MIGRATIONS
    );
}

// ---------------------------------------------------------------------------
// Rebuilding a version
// ---------------------------------------------------------------------------

#[test]
fn rebuilding_identical_content_is_a_no_op_that_reports_unchanged() {
    let mut w = World::plain();
    w.set_env("SOURCE_DATE_EPOCH", "1700000000");
    let first = w.build_ok("1.0.0");
    let manifest_before = w.read("db/tarballs/squizzle-1.0.0.manifest.json");
    let index_before = w.index();

    // A different build time does not make it a different release.
    let again = w
        .run_with_env(
            &["build", "1.0.0", "--output", "json"],
            &[("SOURCE_DATE_EPOCH", "1800000000")],
        )
        .success()
        .json();
    assert_eq!(again["unchanged"], true);
    assert_eq!(again["digest"], first["digest"]);
    assert_eq!(again["tarballSha256"], first["tarballSha256"]);
    assert_eq!(
        w.read("db/tarballs/squizzle-1.0.0.manifest.json"),
        manifest_before,
        "createdAt kept"
    );
    assert_eq!(w.index(), index_before);

    w.run(&["build", "1.0.0"])
        .success()
        .stdout_has("1.0.0 is already in db/oci with identical content; nothing changed");
}

#[test]
fn rebuilding_identical_content_restores_deleted_tarball_files() {
    let w = World::plain();
    let first = w.build_ok("1.0.0");
    let tarball = w.read("db/tarballs/squizzle-1.0.0.tar.gz");
    let manifest = w.read("db/tarballs/squizzle-1.0.0.manifest.json");
    w.remove("db/tarballs/squizzle-1.0.0.tar.gz");
    w.remove("db/tarballs/squizzle-1.0.0.manifest.json");

    let again = w.build_ok("1.0.0");
    assert_eq!(again["unchanged"], true);
    assert_eq!(again["digest"], first["digest"]);
    assert_eq!(w.read("db/tarballs/squizzle-1.0.0.tar.gz"), tarball);
    assert_eq!(w.read("db/tarballs/squizzle-1.0.0.manifest.json"), manifest);
}

#[test]
fn rebuilding_a_version_with_different_content_is_refused_and_changes_nothing() {
    let w = World::plain();
    let first = w.build_ok("1.0.0");
    let tarball = w.read("db/tarballs/squizzle-1.0.0.tar.gz");
    let manifest = w.read("db/tarballs/squizzle-1.0.0.manifest.json");
    let index = w.index();
    let blobs = w.files_under("db/oci");

    w.write(
        "migrations/0002_add_email.sql",
        "ALTER TABLE users ADD COLUMN email varchar(320);\n",
    );
    w.run(&["build", "1.0.0"])
        .code(5)
        .says("version 1.0.0 already exists with different content")
        .says("build the change as a new version");

    // The stored release is exactly what it was.
    assert_eq!(w.tag_digest("1.0.0"), first["digest"].as_str().unwrap());
    assert_eq!(w.index(), index);
    assert_eq!(w.read("db/tarballs/squizzle-1.0.0.tar.gz"), tarball);
    assert_eq!(w.read("db/tarballs/squizzle-1.0.0.manifest.json"), manifest);
    assert_eq!(
        w.files_under("db/tarballs").len(),
        2,
        "no leftovers: {:?}",
        w.files_under("db/tarballs")
    );
    assert_eq!(w.files_under("db/oci"), blobs, "no new blobs");
    let verified = w
        .run(&["verify", "1.0.0", "--output", "json"])
        .success()
        .json();
    assert_eq!(verified["verified"], true);
    assert_eq!(verified["digest"], first["digest"]);

    // As a new version it edits a migration 1.0.0 released: refused unless
    // allowed with a reason.
    w.run(&["build", "1.0.1"])
        .code(5)
        .says("migrations/0002_add_email.sql (0002_add_email) was edited");
    w.run(&[
        "build",
        "1.0.1",
        "--allow-rewrite",
        "0002_add_email",
        "--reason",
        "widen the column before any database applied 1.0.0",
    ])
    .success();
}

#[test]
fn rebuilding_a_version_with_different_notes_is_refused() {
    let w = World::plain();
    w.run(&["build", "1.0.0", "--notes", "first"]).success();
    w.run(&["build", "1.0.0", "--notes", "second"])
        .code(5)
        .says("already exists");
    assert_eq!(w.squizzle_manifest("1.0.0")["notes"], "first");
}

// ---------------------------------------------------------------------------
// Errors: exit code and a message that names the problem
// ---------------------------------------------------------------------------

#[test]
fn an_invalid_version_is_a_usage_error() {
    let w = World::plain();
    for bad in ["1.0", "latest", "1.0.0.0", "01.0.0"] {
        w.run(&["build", bad])
            .code(2)
            .says(&format!("{bad:?} is not a semantic version"));
    }
    assert!(!w.exists("db"), "nothing is written for an invalid version");
}

#[test]
fn build_metadata_is_refused_because_it_cannot_be_an_oci_tag() {
    let w = World::plain();
    w.run(&["build", "1.0.0+x"])
        .code(2)
        .says("\"1.0.0+x\" has build metadata")
        .says("OCI tag");
    assert!(!w.exists("db/tarballs/squizzle-1.0.0.tar.gz"));
}

#[test]
fn an_empty_migrations_folder_is_refused() {
    let w = World::new();
    w.config(PLAIN_CONFIG);
    std::fs::create_dir_all(w.path("migrations")).unwrap();
    w.write("migrations/notes.txt", "nothing here yet");
    w.run(&["build", "1.0.0"])
        .code(2)
        .says("no migrations found in")
        .says("migrations");
}

#[test]
fn a_missing_migrations_folder_is_refused() {
    let w = World::new();
    w.config("[project]\nmigrations = \"sql\"\n");
    w.run(&["build", "1.0.0"])
        .code(2)
        .says("migrations folder")
        .says("sql does not exist");
}

#[test]
fn a_journal_entry_without_its_file_is_refused() {
    let w = World::dokploy();
    w.remove("drizzle/0130_perpetual_screwball.sql");
    w.run(&["build", "1.0.0"])
        .code(2)
        .says("lists \"0130_perpetual_screwball\" (entry 130)")
        .says("0130_perpetual_screwball.sql does not exist");
}

#[test]
fn a_file_that_is_not_utf8_is_refused_by_name() {
    let w = World::plain();
    w.write(
        "migrations/0004_latin1.sql",
        b"INSERT INTO users (name) VALUES ('caf\xe9');\n",
    );
    w.run(&["build", "1.0.0"])
        .code(2)
        .says("migrations/0004_latin1.sql is not valid UTF-8")
        .says("first bad byte at offset 37");
}

#[test]
fn a_nul_byte_is_refused_by_name() {
    let w = World::plain();
    w.write("migrations/0004_nul.sql", b"SELECT 1;\0\n");
    w.run(&["build", "1.0.0"])
        .code(2)
        .says("migrations/0004_nul.sql contains a NUL byte at offset 9");
}

#[test]
fn an_unknown_directive_is_refused() {
    let w = World::plain();
    w.write(
        "migrations/0004_idx.sql",
        "-- squizzle:no-transactions\nCREATE INDEX CONCURRENTLY i ON users (id);\n",
    );
    w.run(&["build", "1.0.0"])
        .code(2)
        .says("migrations/0004_idx.sql")
        .says("unknown directive `squizzle:no-transactions`");
}

#[test]
fn a_directive_after_sql_is_refused() {
    let w = World::plain();
    w.write(
        "migrations/0004_idx.sql",
        "SELECT 1;\n-- squizzle:no-transaction\n",
    );
    w.run(&["build", "1.0.0"])
        .code(2)
        .says("migrations/0004_idx.sql")
        .says("comes after SQL");
}

#[test]
fn two_migrations_with_one_number_are_refused() {
    let w = World::plain();
    w.write("migrations/2_duplicate.sql", "SELECT 2;\n");
    w.run(&["build", "1.0.0"]).code(2).says("both have number");
}

#[test]
fn a_rollback_for_no_migration_is_refused() {
    let w = World::plain();
    w.write("migrations/0009_gone.down.sql", "SELECT 1;\n");
    w.run(&["build", "1.0.0"])
        .code(2)
        .says("0009_gone.down.sql is a rollback for \"0009_gone\"");
}

#[test]
fn without_squizzle_toml_build_suggests_init() {
    let w = World::new();
    w.write("migrations/0001_a.sql", "SELECT 1;\n");
    w.run(&["build", "1.0.0"])
        .code(2)
        .says("no squizzle.toml found")
        .says("squizzle init");
}

#[test]
fn an_explicit_config_path_is_used() {
    let w = World::new();
    w.write("config/squizzle.toml", PLAIN_CONFIG);
    w.write("config/migrations/0001_a.sql", "SELECT 1;\n");
    let r = w
        .run(&[
            "build",
            "1.0.0",
            "--config",
            "config/squizzle.toml",
            "--output",
            "json",
        ])
        .success()
        .json();
    assert_eq!(r["migrations"], 1);
    assert!(
        w.exists("config/db/tarballs/squizzle-1.0.0.tar.gz"),
        "paths are relative to the config's folder"
    );
    // SQUIZZLE_CONFIG is the same as --config.
    let r = w
        .run_with_env(
            &["build", "1.0.0", "--output", "json"],
            &[("SQUIZZLE_CONFIG", "config/squizzle.toml")],
        )
        .success()
        .json();
    assert_eq!(r["unchanged"], true);
    w.run(&["build", "1.0.0", "--config", "nope.toml"])
        .code(2)
        .says("nope.toml");
}

#[test]
fn an_invalid_source_date_epoch_is_a_usage_error() {
    let w = World::plain();
    w.run_with_env(&["build", "1.0.0"], &[("SOURCE_DATE_EPOCH", "yesterday")])
        .code(2)
        .says("SOURCE_DATE_EPOCH");
}

#[test]
fn a_tarballs_path_that_is_a_regular_file_is_a_general_error() {
    let w = World::plain();
    w.write("db/tarballs", "I am a file, not a folder");
    w.run(&["build", "1.0.0"])
        .code(1)
        .says("cannot write")
        .says("db/tarballs");
    assert_eq!(w.read_string("db/tarballs"), "I am a file, not a folder");
}

#[test]
fn a_failed_build_leaves_no_partial_tarball_and_no_tag() {
    let w = World::plain();
    // A large valid file first, so packing is well under way when it fails.
    w.write("migrations/0000_big.sql", "SELECT 1;\n".repeat(50_000));
    w.write("migrations/0004_nul.sql", b"SELECT 1;\0\n");

    w.run(&["build", "1.0.0"]).code(2).says("NUL byte");

    assert_eq!(
        w.files_under("db/tarballs"),
        Vec::<String>::new(),
        "no tarball, manifest or temporary file"
    );
    w.run(&["verify", "1.0.0"])
        .code(12)
        .says("1.0.0 is not in the store");
    let listed = w.run(&["list", "--output", "json"]).success().json();
    assert_eq!(listed["versions"], serde_json::json!([]));
}

#[test]
fn build_output_json_is_one_document_and_errors_are_json_too() {
    let w = World::plain();
    let r = w.run(&["build", "1.0.0", "--output", "json"]).success();
    // Only the warning that a first build has nothing to compare with.
    assert_eq!(
        r.stderr.lines().count(),
        1,
        "one warning on stderr: {}",
        r.stderr
    );
    assert!(
        r.stderr.contains("no earlier release to compare"),
        "{}",
        r.stderr
    );
    r.json();

    let err = w.run(&["build", "nope", "--output", "json"]).code(2).json();
    assert_eq!(err["error"]["kind"], "usage");
    assert_eq!(err["error"]["code"], 2);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a semantic version"),
        "{err}"
    );
}

#[test]
fn quiet_build_prints_nothing_on_success() {
    let w = World::plain();
    let r = w.run(&["-q", "build", "1.0.0"]).success();
    assert_eq!(r.stdout, "");
    assert_eq!(r.stderr, "");
}
