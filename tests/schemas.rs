//! The JSON Schemas in `schemas/` describe what squizzle really writes and reads:
//! every manifest the builder produces validates, hostile variations do not, and
//! the documented example config validates against the config schema.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn schema(name: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(root().join("schemas").join(name)).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    jsonschema::draft202012::new(&value).unwrap()
}

fn errors(v: &jsonschema::Validator, doc: &serde_json::Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

fn build(project: &Path, version: &str, extra_env: &[(&str, &str)]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_squizzle"))
        .current_dir(project)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(extra_env.iter().copied())
        .args(["build", version])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = project
        .join("db/tarballs")
        .join(format!("squizzle-{version}.manifest.json"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn every_manifest_the_builder_writes_validates() {
    let v = schema("manifest.v1.schema.json");
    let t = tempfile::tempdir().unwrap();
    let p = t.path();

    // The real drizzle corpus.
    copy_dir(&root().join("fixtures/dokploy-drizzle"), &p.join("drizzle"));
    std::fs::write(
        p.join("squizzle.toml"),
        "[project]\nmigrations = \"drizzle\"\n",
    )
    .unwrap();
    let first = build(p, "1.0.0", &[]);
    assert_eq!(errors(&v, &first), Vec::<String>::new());
    assert_eq!(first["previousVersion"], serde_json::Value::Null);
    assert_eq!(first["files"].as_array().unwrap().len(), 186);

    // A plain folder with rollbacks, seeds, a no-transaction file, CI source info.
    let q = t.path().join("plain");
    std::fs::create_dir_all(q.join("m")).unwrap();
    std::fs::create_dir_all(q.join("seeds")).unwrap();
    std::fs::write(q.join("m/0001_a.sql"), "CREATE TABLE a (id int);").unwrap();
    std::fs::write(q.join("m/0001_a.down.sql"), "DROP TABLE a;").unwrap();
    std::fs::write(
        q.join("m/0002_idx.sql"),
        "-- squizzle:no-transaction\nCREATE INDEX CONCURRENTLY i ON a (id);\n",
    )
    .unwrap();
    std::fs::write(q.join("seeds/base.sql"), "INSERT INTO a VALUES (1);").unwrap();
    std::fs::write(
        q.join("squizzle.toml"),
        "[project]\nmigrations = \"m\"\nseeds = \"seeds\"\n",
    )
    .unwrap();
    let env = [
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_REPOSITORY", "acme/api"),
        ("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567"),
        ("SOURCE_DATE_EPOCH", "1700000000"),
    ];
    build(&q, "0.9.0", &env);
    let m = build(&q, "1.0.0-rc.1", &env);
    assert_eq!(errors(&v, &m), Vec::<String>::new());
    assert_eq!(m["previousVersion"], "0.9.0");
    assert_eq!(m["source"]["repository"], "https://github.com/acme/api");
    let kinds: Vec<&str> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["migration", "migration", "rollback", "seed"]);
    assert_eq!(m["files"][1]["transaction"], "none");
}

#[test]
fn the_manifest_schema_rejects_hostile_variations() {
    let v = schema("manifest.v1.schema.json");
    let digest = format!("sha256:{}", "a".repeat(64));
    let good = serde_json::json!({
        "schemaVersion": 1,
        "mediaType": "application/vnd.squizzle.manifest.v1+json",
        "version": "1.0.0",
        "previousVersion": null,
        "createdAt": "2026-01-01T00:00:00Z",
        "notes": null,
        "tool": {"name": "squizzle", "version": "0.1.0"},
        "source": null,
        "format": "plain",
        "tarball": {"name": "squizzle-1.0.0.tar.gz", "sha256": digest, "size": 10},
        "files": [{"id": "0001_a", "path": "m/0001_a.sql", "sha256": digest, "size": 1,
                   "kind": "migration", "transaction": "default", "order": 0}]
    });
    assert_eq!(errors(&v, &good), Vec::<String>::new());
    let mutate = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut m = good.clone();
        f(&mut m);
        m
    };
    let bad = [
        (
            "path traversal",
            mutate(&|m| m["files"][0]["path"] = "../etc/passwd".into()),
        ),
        (
            "absolute path",
            mutate(&|m| m["files"][0]["path"] = "/etc/passwd".into()),
        ),
        (
            "dot segment",
            mutate(&|m| m["files"][0]["path"] = "m/./a.sql".into()),
        ),
        (
            "backslash",
            mutate(&|m| m["files"][0]["path"] = "m\\a.sql".into()),
        ),
        (
            "sha512",
            mutate(&|m| m["files"][0]["sha256"] = format!("sha512:{}", "a".repeat(128)).into()),
        ),
        (
            "uppercase hex",
            mutate(&|m| m["tarball"]["sha256"] = format!("sha256:{}", "A".repeat(64)).into()),
        ),
        (
            "build metadata",
            mutate(&|m| m["version"] = "1.0.0+x".into()),
        ),
        ("leading v", mutate(&|m| m["version"] = "v1.0.0".into())),
        ("unknown field", mutate(&|m| m["extra"] = true.into())),
        (
            "unknown kind",
            mutate(&|m| m["files"][0]["kind"] = "script".into()),
        ),
        (
            "rollback without target",
            mutate(&|m| m["files"][0]["kind"] = "rollback".into()),
        ),
        ("no files", mutate(&|m| m["files"] = serde_json::json!([]))),
        (
            "wrong media type",
            mutate(&|m| m["mediaType"] = "application/json".into()),
        ),
    ];
    for (what, doc) in bad {
        assert!(!errors(&v, &doc).is_empty(), "schema accepted: {what}");
    }
}

fn toml_to_json(text: &str) -> serde_json::Value {
    let value: toml::Value = toml::from_str(text).unwrap();
    serde_json::to_value(value).unwrap()
}

#[test]
fn the_example_config_validates_and_documents_every_schema_key() {
    let v = schema("config.schema.json");
    let text = std::fs::read_to_string(root().join("squizzle.toml.example")).unwrap();
    let doc = toml_to_json(&text);
    assert_eq!(errors(&v, &doc), Vec::<String>::new());

    // Every property the schema knows appears in the example (set or commented out).
    let schema_text = std::fs::read_to_string(root().join("schemas/config.schema.json")).unwrap();
    let schema_json: serde_json::Value = serde_json::from_str(&schema_text).unwrap();
    for (section, body) in schema_json["properties"].as_object().unwrap() {
        assert!(
            text.contains(&format!("[{section}")),
            "example lacks [{section}]"
        );
        let keys = body["properties"]
            .as_object()
            .or_else(|| body["additionalProperties"]["properties"].as_object())
            .unwrap();
        for key in keys.keys() {
            assert!(
                text.contains(&format!("{key} =")),
                "example does not document {section}.{key}"
            );
        }
    }
}

#[test]
fn the_example_config_is_accepted_by_squizzle_itself() {
    let t = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("squizzle.toml.example"),
        t.path().join("squizzle.toml"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_squizzle"))
        .current_dir(t.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("REGISTRY_PASSWORD", "x-reg-pw")
        .env("STAGING_DB_PASSWORD", "x-db-pw")
        .env("PRODUCTION_DATABASE_URL", "postgres://u:x-prod-pw@h/db")
        .args(["list", "--env", "production"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_config_schema_rejects_literal_secrets_and_unknown_keys() {
    let v = schema("config.schema.json");
    for bad in [
        "[registry]\npassword = \"hunter2\"\n",
        "[environments.prod]\ndatabase_url = \"postgres://u:hunter2@h/db\"\n",
        "[project]\nmigration = \"typo\"\n",
        "[project]\nmigrations = \"../outside\"\n",
        "[environments.\"bad name\"]\n",
    ] {
        assert!(
            !errors(&v, &toml_to_json(bad)).is_empty(),
            "schema accepted: {bad}"
        );
    }
    let ok = "[environments.prod]\ndatabase_url = \"postgres://u:${PW}@h/db\"\n";
    assert_eq!(errors(&v, &toml_to_json(ok)), Vec::<String>::new());
}

/// The payload of a signed bundle (DSSE in-toto statement).
fn statement_of(bundle: &Path) -> serde_json::Value {
    use base64::Engine as _;
    let b: serde_json::Value = serde_json::from_slice(&std::fs::read(bundle).unwrap()).unwrap();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(b["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&payload).unwrap()
}

#[test]
fn provenance_and_revocation_statements_validate_and_tampered_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path();
    std::fs::create_dir_all(project.join("migrations")).unwrap();
    std::fs::write(
        project.join("migrations/0001_a.sql"),
        "CREATE TABLE a (id int);\n",
    )
    .unwrap();
    std::fs::write(
        project.join("squizzle.toml"),
        "[project]\nmigrations = \"migrations\"\n",
    )
    .unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let out = Command::new(env!("CARGO_BIN_EXE_squizzle"))
            .current_dir(project)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SQUIZZLE_KEY_PASSWORD", "schema test passphrase")
            .envs(env.iter().copied())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["keygen"], &[]);
    // As in GitHub Actions, so every optional field is filled in.
    run(
        &["build", "1.0.0", "--provenance", "--key", "squizzle.key"],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "acme/api"),
            (
                "GITHUB_WORKFLOW_REF",
                "acme/api/.github/workflows/release.yml@refs/tags/v1.0.0",
            ),
            ("GITHUB_REF", "refs/tags/v1.0.0"),
            ("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567"),
            ("GITHUB_RUN_ID", "42"),
            ("SOURCE_DATE_EPOCH", "1700000000"),
        ],
    );
    run(
        &[
            "revoke",
            "1.0.0",
            "--reason",
            "schema test",
            "--key",
            "squizzle.key",
        ],
        &[],
    );
    let prov = statement_of(&project.join("db/tarballs/squizzle-1.0.0.provenance.sigstore.json"));
    let rev = statement_of(&project.join("db/tarballs/squizzle-1.0.0.revocation.sigstore.json"));
    let pv = schema("provenance.v1.schema.json");
    let rv = schema("revocation.v1.schema.json");
    assert_eq!(errors(&pv, &prov), Vec::<String>::new());
    assert_eq!(errors(&rv, &rev), Vec::<String>::new());
    assert_eq!(
        prov["predicate"]["runDetails"]["builder"]["id"],
        "https://github.com/acme/api/.github/workflows/release.yml"
    );
    assert_eq!(
        prov["predicate"]["buildDefinition"]["resolvedDependencies"][0]["uri"],
        "git+https://github.com/acme/api@refs/tags/v1.0.0"
    );
    // Each schema refuses the other statement and a damaged one.
    assert!(!errors(&pv, &rev).is_empty());
    assert!(!errors(&rv, &prov).is_empty());
    let mut bad = rev.clone();
    bad["predicate"]["reason"] = serde_json::json!("");
    assert!(!errors(&rv, &bad).is_empty());
    let mut bad = prov.clone();
    bad["subject"][0]["digest"]["sha256"] = serde_json::json!("abc");
    assert!(!errors(&pv, &bad).is_empty());
}
