//! Every command's `--output json` document has a schema in `schemas/`, and
//! what the real binary prints validates against it: successes, edge cases
//! (nothing to do, empty lists, dry runs) and failures (a failed migration, an
//! unsigned release, a usage error), against real PostgreSQL and a real
//! registry. Each document is then broken on purpose (a field removed, a field
//! of the wrong type, an unknown field, `schemaVersion: 2`) and the schema
//! must refuse every variation, so no schema is vacuous.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;
use squizzle_test_support::registry::{Auth, Registry, RegistryOptions};
use squizzle_test_support::{PLAIN_CONFIG as PLAIN, World, pg};

/// Every subcommand, and the schema its `--output json` document follows.
/// `None`: the command prints no JSON document (its reason is in the comment).
/// A new subcommand missing here fails `every_command_has_a_schema`.
const COMMANDS: &[(&str, Option<&str>)] = &[
    ("init", Some("init")),
    ("build", Some("build")),
    ("check", Some("check")),
    ("sign", Some("sign")),
    ("verify", Some("verify")),
    ("list", Some("list")),
    ("push", Some("push")),
    ("pull", Some("pull")),
    ("apply", Some("apply")),
    ("status", Some("status")),
    ("drift", Some("drift")),
    ("baseline", Some("baseline")),
    ("rollback", Some("rollback")),
    ("keygen", Some("keygen")),
    ("version", Some("version")),
    ("lint", Some("lint")),
    ("revoke", Some("revoke")),
    ("audit", Some("audit")),
    // Generated text: a shell script, man pages, help.
    ("completions", None),
    ("man", None),
    ("help", None),
];

/// Schemas in `schemas/` that are not a command's output.
const OTHER_SCHEMAS: &[&str] = &[
    "error.v1.schema.json",
    // `apply` and `status` over a fleet (tests/fleet_pg.rs validates them).
    "fleet-apply.v1.schema.json",
    "fleet-status.v1.schema.json",
    "config.schema.json",
    "manifest.v1.schema.json",
    "provenance.v1.schema.json",
    "revocation.v1.schema.json",
];

/// Documents written by other work in progress (not yet on this branch's
/// commands list) are allowed to exist without an entry above.
const FOREIGN_SCHEMAS: &[&str] = &[];

fn schemas_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

fn load(file: &str) -> Value {
    let text = std::fs::read_to_string(schemas_dir().join(file))
        .unwrap_or_else(|e| panic!("schemas/{file}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("schemas/{file} is not JSON: {e}"))
}

fn validator(name: &str) -> jsonschema::Validator {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&load(&format!("{name}.v1.schema.json")))
        .unwrap_or_else(|e| panic!("schemas/{name}.v1.schema.json: {e}"))
}

fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect()
}

/// A value of another JSON type than `v`.
fn wrong_type(v: &Value) -> Value {
    match v {
        Value::String(_) => Value::from(12345),
        Value::Number(_) => Value::from("12"),
        Value::Bool(_) => Value::from("true"),
        Value::Array(_) => serde_json::json!({ "unexpected": true }),
        Value::Object(_) => serde_json::json!([]),
        // A null field is usually "null or an object/array/string": a
        // boolean is wrong for all of those.
        Value::Null => Value::from(true),
    }
}

/// Every variation of `doc` its schema must refuse: each top-level field
/// missing (those the schema requires), each field at the top, in a nested
/// object or in an array's first element with the wrong type, an unknown
/// top-level field, and another schema version.
fn hostile_variations(schema: &Value, doc: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let top = doc.as_object().expect("a JSON object");
    let mut required: BTreeSet<String> = BTreeSet::new();
    let mut collect = |s: &Value| {
        for r in s["required"].as_array().into_iter().flatten() {
            required.insert(r.as_str().unwrap().to_owned());
        }
    };
    collect(schema);
    for (_, def) in schema["$defs"].as_object().into_iter().flatten() {
        if def["properties"]["schemaVersion"].is_object() {
            collect(def);
        }
    }
    for key in top.keys() {
        if required.contains(key) {
            let mut d = doc.clone();
            d.as_object_mut().unwrap().remove(key);
            out.push((format!("without {key}"), d));
        }
    }
    fn pointers(path: String, v: &Value, depth: usize, out: &mut Vec<String>) {
        out.push(path.clone());
        if depth == 0 {
            return;
        }
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    pointers(format!("{path}/{k}"), x, depth - 1, out);
                }
            }
            Value::Array(a) => {
                if let Some(first) = a.first() {
                    pointers(format!("{path}/0"), first, depth - 1, out);
                }
            }
            _ => {}
        }
    }
    let mut all = Vec::new();
    for (k, v) in top {
        pointers(format!("/{k}"), v, 3, &mut all);
    }
    for p in all {
        let mut d = doc.clone();
        let slot = d.pointer_mut(&p).unwrap();
        *slot = wrong_type(slot);
        out.push((format!("{p} of the wrong type"), d));
    }
    let mut d = doc.clone();
    d["schemaVersion"] = Value::from(2);
    out.push(("schemaVersion 2".into(), d));
    let mut d = doc.clone();
    d["surpriseField"] = Value::from(1);
    out.push(("an unknown top-level field".into(), d));
    out
}

/// `doc` validates against `schemas/<name>.v1.schema.json`, starts with
/// `"schemaVersion": 1`, and every hostile variation of it is refused.
#[track_caller]
fn check(name: &str, doc: &Value) {
    let v = validator(name);
    let errs = errors(&v, doc);
    assert!(errs.is_empty(), "{name}: {errs:#?}\n{doc:#}");
    assert_eq!(doc["schemaVersion"], 1, "{name}: {doc:#}");
    let schema = load(&format!("{name}.v1.schema.json"));
    for (what, bad) in hostile_variations(&schema, doc) {
        assert!(
            !v.is_valid(&bad),
            "{name}: the schema accepts the document {what}:\n{bad:#}"
        );
    }
}

/// Runs `args` with `--output json`, expects exit `code`, checks stdout
/// against `schema` (and that the document's first field is schemaVersion).
#[track_caller]
fn json(w: &World, args: &[&str], code: i32, schema: &str) -> Value {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--output", "json"]);
    let run = w.run(&all).code(code);
    let out = run.output();
    assert!(
        out.trim_start().starts_with("{\n  \"schemaVersion\": "),
        "{args:?}: schemaVersion is not the first field:\n{out}"
    );
    let doc = run.json();
    check(schema, &doc);
    doc
}

// ---------------------------------------------------------------------------
// The schemas themselves
// ---------------------------------------------------------------------------

#[test]
fn every_schema_is_a_valid_draft_2020_12_schema_with_its_own_id() {
    let mut seen = 0;
    for entry in std::fs::read_dir(schemas_dir()).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_owned();
        if !file.ends_with(".schema.json") {
            continue;
        }
        let schema = load(&file);
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{file}"
        );
        assert_eq!(
            schema["$id"],
            format!("https://squizzle.dev/schemas/{file}"),
            "{file}"
        );
        if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
            panic!("{file} is not a valid 2020-12 schema: {e}");
        }
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        seen += 1;
    }
    assert!(seen >= COMMANDS.len(), "only {seen} schemas");
}

#[test]
fn every_command_has_a_schema() {
    // The subcommands clap knows, from the help text of the real binary.
    let help = World::new().run(&["--help"]).success().output();
    let listed: BTreeSet<String> = help
        .split("Commands:")
        .nth(1)
        .and_then(|s| s.split("Options:").next())
        .expect("a Commands: section")
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    let known: BTreeSet<String> = COMMANDS.iter().map(|(c, _)| (*c).to_owned()).collect();
    let missing: Vec<_> = listed.difference(&known).collect();
    assert!(
        missing.is_empty(),
        "commands without an entry (and a schema) in COMMANDS: {missing:?}"
    );
    let gone: Vec<_> = known.difference(&listed).collect();
    assert!(
        gone.is_empty(),
        "COMMANDS lists commands that do not exist: {gone:?}"
    );

    let mut expected: BTreeSet<String> = COMMANDS
        .iter()
        .filter_map(|(_, s)| s.map(|s| format!("{s}.v1.schema.json")))
        .collect();
    for file in &expected {
        let schema = load(file);
        assert_eq!(
            schema["properties"]["schemaVersion"]["const"], 1,
            "{file}: no schemaVersion 1"
        );
        assert!(
            schema["required"]
                .as_array()
                .is_some_and(|r| r.contains(&Value::from("schemaVersion"))),
            "{file}: schemaVersion is not required"
        );
    }
    expected.extend(OTHER_SCHEMAS.iter().map(|s| (*s).to_owned()));
    let present: BTreeSet<String> = std::fs::read_dir(schemas_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".schema.json") && !FOREIGN_SCHEMAS.contains(&f.as_str()))
        .collect();
    assert_eq!(present, expected, "schemas/ and COMMANDS disagree");
}

// ---------------------------------------------------------------------------
// Local commands (no services)
// ---------------------------------------------------------------------------

const PASS: &str = "correct horse battery staple";

#[test]
fn local_commands_print_documents_their_schemas_accept() {
    let mut w = World::new();
    w.write(
        "migrations/0001_users.sql",
        "CREATE TABLE users (id bigint);\n",
    );
    json(&w, &["init"], 0, "init");
    // A usage error prints the error envelope.
    let e = json(&w, &["build", "not-a-version"], 2, "error");
    assert_eq!(e["error"]["kind"], "usage");
    let e = json(&w, &["verify", "1.0.0", "--no-such-flag"], 2, "error");
    assert_eq!(e["error"]["code"], 2);
    json(&w, &["version"], 0, "version");

    // Nothing built yet: an empty local list, a missing release.
    let l = json(&w, &["list"], 0, "list");
    assert_eq!(l["source"], "local");
    assert_eq!(l["versions"], serde_json::json!([]));
    let e = json(&w, &["verify", "1.0.0"], 12, "error");
    assert_eq!(e["error"]["kind"], "not_found");

    json(&w, &["check"], 0, "check");
    json(&w, &["lint"], 0, "lint");
    let b = json(&w, &["build", "1.0.0"], 0, "build");
    assert_eq!(b["unchanged"], false);
    let b = json(&w, &["build", "1.0.0"], 0, "build");
    assert_eq!(b["unchanged"], true);

    // A released migration edited: check reports the problem (exit 5).
    w.write(
        "migrations/0001_users.sql",
        "CREATE TABLE users (id bigint, name text);\n",
    );
    let c = json(&w, &["check"], 5, "check");
    assert_eq!(c["ok"], false);
    assert_eq!(c["problems"][0]["kind"], "edited");
    w.write(
        "migrations/0001_users.sql",
        "CREATE TABLE users (id bigint);\n",
    );
    // A destructive new migration that lint is told to deny (exit 9).
    w.write("migrations/0002_drop.sql", "DROP TABLE users;\n");
    let l = json(&w, &["lint", "--deny", "destructive"], 9, "lint");
    assert_eq!(l["findings"][0]["category"], "destructive");
    w.remove("migrations/0002_drop.sql");

    // Unsigned: verify passes with a skipped signature check, then fails
    // under a policy that requires one (exit 9), still as a verify report.
    let v = json(&w, &["verify", "1.0.0"], 0, "verify");
    assert_eq!(v["verified"], true);
    w.set_env("SQUIZZLE_KEY_PASSWORD", PASS);
    json(&w, &["keygen"], 0, "keygen");
    let v = json(
        &w,
        &["verify", "1.0.0", "--key", "squizzle.pub"],
        9,
        "verify",
    );
    assert_eq!(v["verified"], false);

    let s = json(&w, &["sign", "1.0.0", "--key", "squizzle.key"], 0, "sign");
    assert_eq!(s["method"], "key");
    let v = json(
        &w,
        &["verify", "1.0.0", "--key", "squizzle.pub"],
        0,
        "verify",
    );
    assert_eq!(v["signature"]["method"], "key");

    // A second release, built, signed and attested in one go.
    w.write(
        "migrations/0002_orders.sql",
        "CREATE TABLE orders (id bigint);\n",
    );
    let b = json(
        &w,
        &["build", "1.1.0", "--sign", "--key", "squizzle.key"],
        0,
        "build",
    );
    assert_eq!(b["build"]["previousVersion"], "1.0.0");
    assert!(b["signature"].is_object());

    let l = json(&w, &["list"], 0, "list");
    assert_eq!(l["versions"].as_array().unwrap().len(), 2);

    // A corrupted layer: verify fails with exit 6 and says which check.
    let layer = w.layer_digest("1.0.0");
    w.corrupt_blob(&layer);
    let v = json(&w, &["verify", "1.0.0"], 6, "verify");
    assert_eq!(v["verified"], false);

    // Revoked without a registry: published to the local store.
    let r = json(
        &w,
        &[
            "revoke",
            "1.1.0",
            "--reason",
            "breaks the orders page",
            "--key",
            "squizzle.key",
        ],
        0,
        "revoke",
    );
    assert_eq!(r["tagDeleted"], false);
    let v = json(
        &w,
        &["verify", "1.1.0", "--key", "squizzle.pub"],
        10,
        "verify",
    );
    assert!(v["revocation"].is_object());
}

// ---------------------------------------------------------------------------
// Against PostgreSQL
// ---------------------------------------------------------------------------

/// [`json`] with `--env prod`.
#[track_caller]
fn on_prod(w: &World, args: &[&str], code: i32, schema: &str) -> Value {
    let mut all = args.to_vec();
    all.extend(["--env", "prod"]);
    json(w, &all, code, schema)
}

fn database(prefix: &str) -> String {
    format!("{}?sslmode=disable", pg::shared().create_database(prefix))
}

#[test]
fn database_commands_print_documents_their_schemas_accept() {
    let prod = database("schemas_prod");
    let adopted = database("schemas_adopted");
    let w = World::new();
    w.config(&format!(
        "[project]\nmigrations = \"migrations\"\n\n[environments.prod]\ndatabase_url = \"{prod}\"\n\n[environments.adopted]\ndatabase_url = \"{adopted}\"\n"
    ));
    w.write(
        "migrations/0001_users.sql",
        "CREATE TABLE users (id bigint);\n",
    );
    w.write("migrations/0001_users.down.sql", "DROP TABLE users;\n");
    w.build_ok("1.0.0");

    // An empty database: no history, one release pending.
    let s = on_prod(&w, &["status"], 0, "status");
    assert_eq!(s["historyExists"], false);
    assert_eq!(s["pending"].as_array().unwrap().len(), 1);

    let a = on_prod(&w, &["apply", "1.0.0", "--dry-run"], 0, "apply");
    assert_eq!(a["outcome"], "dry_run");
    let a = on_prod(&w, &["apply", "1.0.0", "--dry-run=execute"], 0, "apply");
    assert_eq!(a["outcome"], "dry_run_executed");
    let a = on_prod(&w, &["apply", "1.0.0"], 0, "apply");
    assert_eq!(a["outcome"], "applied");
    let a = on_prod(&w, &["apply", "1.0.0"], 0, "apply");
    assert_eq!(a["outcome"], "nothing_to_do");
    let s = on_prod(&w, &["status"], 0, "status");
    assert_eq!(s["upToDate"], true);
    assert!(!s["recent"].as_array().unwrap().is_empty());
    // Drift: none, then an out-of-band column (exit 13), in both commands.
    let d = on_prod(&w, &["drift"], 0, "drift");
    assert_eq!(d["outcome"], "no_drift");
    let s = on_prod(&w, &["status", "--drift"], 0, "status");
    assert_eq!(s["drift"]["outcome"], "no_drift");
    let db = pg::db_name(prod.split('?').next().unwrap()).to_owned();
    pg::shared().query(&db, "ALTER TABLE users ADD COLUMN oob int");
    let d = on_prod(&w, &["drift"], 13, "drift");
    assert_eq!(d["outcome"], "drift");
    let s = on_prod(&w, &["status", "--drift"], 13, "status");
    assert_eq!(s["drift"]["outcome"], "drift");
    pg::shared().query(&db, "ALTER TABLE users DROP COLUMN oob");

    // An index whose concurrent build failed shows in status.
    let name = pg::db_name(prod.split('?').next().unwrap()).to_owned();
    pg::shared().query(&name, "INSERT INTO users VALUES (1), (1)");
    pg::shared()
        .try_query(
            &name,
            "CREATE UNIQUE INDEX CONCURRENTLY users_once ON users (id)",
        )
        .expect_err("duplicate ids");
    let s = on_prod(&w, &["status"], 0, "status");
    assert_eq!(s["invalidIndexes"][0]["name"], "users_once");
    assert_eq!(s["upToDate"], false);
    pg::shared().query(&name, "DROP INDEX users_once");

    // A release whose migration fails: the error envelope with the failure.
    w.write(
        "migrations/0002_bad.sql",
        "CREATE TABLE orders (id bigint);\nSELECT 1/0;\n",
    );
    w.write("migrations/0002_bad.down.sql", "DROP TABLE orders;\n");
    w.build_ok("1.1.0");
    let s = on_prod(&w, &["status", "--version", "1.1.0"], 0, "status");
    assert_eq!(s["pending"].as_array().unwrap().len(), 1);
    let e = on_prod(&w, &["apply", "1.1.0"], 11, "error");
    assert_eq!(e["error"]["kind"], "migration_failed");
    assert_eq!(e["error"]["failure"]["sqlstate"], "22012");
    let e = on_prod(&w, &["apply", "1.1.0", "--dry-run=execute"], 11, "error");
    assert_eq!(e["error"]["failure"]["migration"], "0002_bad");

    // Rollback: a dry run, the real one, then nothing left to do.
    let r = on_prod(&w, &["rollback", "1.0.0", "--dry-run"], 0, "rollback");
    assert_eq!(r["outcome"], "dry_run");
    let r = on_prod(&w, &["rollback", "1.0.0"], 0, "rollback");
    assert_eq!(r["outcome"], "rolled_back");
    let r = on_prod(&w, &["rollback", "1.0.0"], 0, "rollback");
    assert_eq!(r["outcome"], "nothing_to_do");

    // Baseline on another database, then audit over both environments.
    let b = json(
        &w,
        &["baseline", "1.0.0", "--env", "adopted"],
        0,
        "baseline",
    );
    assert_eq!(b["migrationsRecorded"], 1);
    let a = json(&w, &["audit", "1.1.0"], 0, "audit");
    assert_eq!(a["environments"].as_array().unwrap().len(), 2);
    let a = json(&w, &["audit", "1.0.0"], 0, "audit");
    assert_eq!(a["artifact"]["found"], true);

    // Another session holds the migration lock: status names it, apply
    // gives up after --lock-timeout with the error envelope (exit 8).
    let key = squizzle::db::lock::key_for(&squizzle::core::ident::Ident::new("squizzle").unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut holder = pg::shared().admin_config(&name);
    holder.application_name("schema-blocker");
    let blocker = rt.block_on(async {
        let (client, conn) = holder.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client
            .execute(
                "SELECT pg_advisory_lock($1, $2)",
                &[&key.class, &key.object],
            )
            .await
            .unwrap();
        client
    });
    let s = on_prod(&w, &["status"], 0, "status");
    assert_eq!(s["lockHolder"]["applicationName"], "schema-blocker");
    let e = on_prod(&w, &["apply", "1.0.0", "--lock-timeout", "1s"], 8, "error");
    assert_eq!(e["error"]["kind"], "lock_timeout");
    drop(blocker);
    drop(rt);

    // A rollback script that fails: the error envelope with the failure, exit 7.
    let broken = database("schemas_broken");
    let mut b = World::new();
    b.config(PLAIN);
    b.set_env("DATABASE_URL", &broken);
    b.write("migrations/0001_t.sql", "CREATE TABLE t (id int);\n");
    b.write("migrations/0001_t.down.sql", "DROP TABLE t;\nSELECT 1/0;\n");
    b.build_ok("1.0.0");
    json(&b, &["apply", "1.0.0"], 0, "apply");
    let e = json(&b, &["rollback", "1.0.0"], 7, "error");
    assert_eq!(e["error"]["kind"], "rollback_failed");
    assert_eq!(e["error"]["failure"]["statement"], 2);

    // A database that does not answer: the error envelope, exit 3.
    let mut down = World::plain();
    down.set_env(
        "DATABASE_URL",
        "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2",
    );
    let e = json(&down, &["status"], 3, "error");
    assert_eq!(e["error"]["kind"], "connection");
}

// ---------------------------------------------------------------------------
// Against a registry
// ---------------------------------------------------------------------------

#[test]
fn registry_commands_print_documents_their_schemas_accept() {
    let reg = Registry::start(RegistryOptions { auth: Auth::None });
    let config = format!(
        "[project]\nmigrations = \"migrations\"\n\n[registry]\nurl = \"{}/acme/migrations\"\n",
        reg.url()
    );
    let mut w = World::plain();
    w.config(&config);
    w.set_env("SQUIZZLE_KEY_PASSWORD", PASS);

    // An empty repository lists nothing.
    let l = json(&w, &["list"], 0, "list");
    assert_eq!(l["source"], "registry");
    assert_eq!(l["versions"], serde_json::json!([]));
    let e = json(&w, &["pull", "1.0.0"], 12, "error");
    assert_eq!(e["error"]["kind"], "not_found");

    w.run(&["keygen"]).success();
    w.build_ok("1.0.0");
    w.run(&["sign", "1.0.0", "--key", "squizzle.key"]).success();
    let p = json(&w, &["push", "1.0.0"], 0, "push");
    assert_eq!(p["alreadyThere"], false);
    let p = json(&w, &["push", "1.0.0"], 0, "push");
    assert_eq!(p["alreadyThere"], true);
    let l = json(&w, &["list"], 0, "list");
    assert_eq!(l["versions"][0]["signed"], true);

    let other = World::named("elsewhere");
    other.config(&config);
    let p = json(&other, &["pull", "1.0.0"], 0, "pull");
    assert!(p["blobsCopied"].as_u64().unwrap() > 0);
    let p = json(&other, &["pull", "1.0.0"], 0, "pull");
    assert_eq!(p["alreadyThere"], true);

    let r = json(
        &w,
        &[
            "revoke",
            "1.0.0",
            "--reason",
            "leaks emails",
            "--key",
            "squizzle.key",
        ],
        0,
        "revoke",
    );
    assert!(r["registry"].is_string());
    let l = json(&w, &["list"], 0, "list");
    assert_eq!(l["versions"][0]["revoked"], true);

    // Credentials the registry refuses: the error envelope, exit 4.
    let locked = Registry::start(RegistryOptions {
        auth: Auth::basic("ci", "right password"),
    });
    let mut refused = World::plain();
    refused.config(&format!(
        "[project]\nmigrations = \"migrations\"\n\n[registry]\nurl = \"{}/acme/migrations\"\nusername = \"ci\"\npassword = \"${{REG_PASSWORD}}\"\n",
        locked.url()
    ));
    refused.set_env("REG_PASSWORD", "wrong password");
    refused.build_ok("1.0.0");
    let e = json(&refused, &["push", "1.0.0"], 4, "error");
    assert_eq!(e["error"]["kind"], "authentication");
    assert!(!e.to_string().contains("wrong password"));
    locked.stop();

    // The registry gone: push fails with the error envelope (exit 3).
    reg.stop();
    let e = json(&w, &["push", "1.0.0"], 3, "error");
    assert_eq!(e["error"]["kind"], "connection");
}

// ---------------------------------------------------------------------------
// Keyless signing against the loopback Sigstore services
// ---------------------------------------------------------------------------

#[test]
fn keyless_signing_and_provenance_documents_fit_their_schemas() {
    use squizzle_test_support::sigstore::{Identity, SigstoreServices};
    const WORKFLOW: &str =
        "https://github.com/acme/api/.github/workflows/release.yml@refs/tags/v1.0.0";
    let s = SigstoreServices::start();
    let w = World::plain();
    w.config(&format!(
        "[project]\nmigrations = \"migrations\"\n\n[security]\nrequire_signature = true\nfulcio_url = {:?}\nrekor_url = {:?}\ntrusted_root = {:?}\n\n[[security.signers]]\nidentity = {WORKFLOW:?}\nissuer = {:?}\n",
        s.fulcio_url(),
        s.rekor_url(),
        s.trusted_root_path().display().to_string(),
        s.issuer_url(),
    ));
    let token = s.mint_token(&Identity::uri(WORKFLOW));
    let gha = [
        ("SIGSTORE_ID_TOKEN", token.as_str()),
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
    ];
    let run = |args: &[&str], code: i32, schema: &str| {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let doc = w.run_with_env(&all, &gha).code(code).json();
        check(schema, &doc);
        doc
    };

    // Unsigned under a policy that requires a signature: exit 9.
    w.build_ok("0.9.0");
    let v = run(&["verify", "0.9.0"], 9, "verify");
    assert_eq!(v["verified"], false);

    let b = run(&["build", "1.0.0", "--sign", "--provenance"], 0, "build");
    assert_eq!(b["signature"]["method"], "keyless");
    assert!(b["provenance"]["builderId"].is_string());
    let v = run(&["verify", "1.0.0"], 0, "verify");
    assert!(v["signature"]["logIndex"].is_u64());
    assert!(v["provenance"]["builderId"].is_string());

    let sig = run(&["sign", "0.9.0"], 0, "sign");
    assert_eq!(sig["method"], "keyless");
    assert!(sig["logIndex"].is_u64());
    let l = run(&["list"], 0, "list");
    assert_eq!(l["versions"][1]["provenance"], true);
}

#[test]
fn the_examples_in_docs_json_output_md_fit_their_schemas() {
    let page = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/json-output.md"),
    )
    .unwrap();
    let blocks: Vec<Value> = page
        .split("```json\n")
        .skip(1)
        .map(|b| serde_json::from_str(b.split("```").next().unwrap()).unwrap())
        .collect();
    assert_eq!(blocks.len(), 2, "docs/json-output.md shows two documents");
    check("init", &blocks[0]);
    check("error", &blocks[1]);
}
