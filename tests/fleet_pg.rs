//! `apply` and `status` over a fleet, against two real PostgreSQL servers:
//! databases on both, tenant schemas in one database, one target nobody
//! listens for, and one where the migration fails. Every claim is read back
//! from the databases themselves, not only from squizzle's report.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde_json::Value;
use squizzle_test_support::pg::{self, PgOptions, PgServer};
use squizzle_test_support::{PLAIN_CONFIG, World};

/// A second server, so that the fleet spans two.
fn second() -> &'static PgServer {
    static SECOND: OnceLock<PgServer> = OnceLock::new();
    SECOND.get_or_init(|| PgServer::start(PgOptions::default()))
}

/// A database of its own on `server`: (name, URL squizzle gets).
fn database(server: &PgServer, prefix: &str) -> (String, String) {
    let admin = server.create_database(prefix);
    (
        pg::db_name(&admin).to_owned(),
        format!("{admin}?sslmode=disable"),
    )
}

const USERS: &str = "CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL);\n";
const INDEX: &str = "CREATE INDEX users_email ON users (email);\n";
const PHONE: &str = "ALTER TABLE users ADD COLUMN phone text;\n";

/// No server listens on port 1 of the loopback: refused at once.
const UNREACHABLE: &str =
    "postgres://app:${UNREACHABLE_PW}@127.0.0.1:1/nowhere?sslmode=disable&connect_timeout=3";
const UNREACHABLE_PW: &str = "fleet-secret-0f3c9";

/// The databases and tenant schemas of one test's fleet.
struct Fleet {
    a1: (String, String),
    a2: (String, String),
    b1: (String, String),
    /// Its `users` table exists already: the release's first migration fails there.
    bad: (String, String),
    /// Tenant schemas t1..t3 live here.
    tenants: (String, String),
}

impl Fleet {
    fn new() -> Fleet {
        let a = pg::shared();
        let f = Fleet {
            a1: database(a, "fleet_a1"),
            a2: database(a, "fleet_a2"),
            b1: database(second(), "fleet_b1"),
            bad: database(second(), "fleet_bad"),
            tenants: database(a, "fleet_tenants"),
        };
        second().query(&f.bad.0, "CREATE TABLE users (id int)");
        for t in ["t1", "t2", "t3"] {
            a.query(&f.tenants.0, &format!("CREATE SCHEMA {t}"));
        }
        f
    }

    /// `targets = [...]` entries by name.
    fn entry(&self, name: &str) -> String {
        let url = |d: &(String, String)| d.1.clone();
        match name {
            "a1" => format!("{{ name = \"a1\", database_url = \"{}\" }}", url(&self.a1)),
            "a2" => format!("{{ name = \"a2\", database_url = \"{}\" }}", url(&self.a2)),
            "b1" => format!("{{ name = \"b1\", database_url = \"{}\" }}", url(&self.b1)),
            "bad" => format!(
                "{{ name = \"bad\", database_url = \"{}\" }}",
                url(&self.bad)
            ),
            "down" => format!("{{ name = \"down\", database_url = \"{UNREACHABLE}\" }}"),
            t => format!("{{ name = \"{t}\", schema = \"{t}\" }}"),
        }
    }

    /// A project with release 1.0.0 (two migrations) and an environment
    /// `fleet` of the named targets, in that order.
    fn project(&self, names: &[&str]) -> World {
        let mut w = World::new();
        w.config(&self.config(names));
        w.write("migrations/0001_users.sql", USERS);
        w.write("migrations/0002_users_email.sql", INDEX);
        w.build_ok("1.0.0");
        w.set_env("UNREACHABLE_PW", UNREACHABLE_PW);
        w
    }

    fn config(&self, names: &[&str]) -> String {
        let entries: Vec<String> = names.iter().map(|n| self.entry(n)).collect();
        format!(
            "{PLAIN_CONFIG}\n[environments.fleet]\ndatabase_url = \"{}\"\ntargets = [\n  {}\n]\n",
            self.tenants.1,
            entries.join(",\n  ")
        )
    }

    fn has_table(&self, server: &PgServer, db: &str, rel: &str) -> bool {
        server.query(
            db,
            &format!("SELECT to_regclass({}) IS NOT NULL", pg::quote_literal(rel)),
        )[0][0]
            .as_deref()
            == Some("t")
    }

    fn has_schema(&self, server: &PgServer, db: &str, schema: &str) -> bool {
        server.query(
            db,
            &format!(
                "SELECT count(*) FROM pg_namespace WHERE nspname = {}",
                pg::quote_literal(schema)
            ),
        )[0][0]
            .as_deref()
            == Some("1")
    }

    /// Successful release rows in a history schema.
    fn applied(&self, server: &PgServer, db: &str, history: &str) -> Vec<String> {
        server
            .query(
                db,
                &format!("SELECT version FROM {history}.releases WHERE success ORDER BY id"),
            )
            .into_iter()
            .map(|r| r[0].clone().unwrap())
            .collect()
    }
}

fn row<'a>(report: &'a Value, target: &str) -> &'a Value {
    report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["target"] == target)
        .unwrap_or_else(|| panic!("no row for {target}: {report:#}"))
}

fn outcomes(report: &Value) -> Vec<(String, String)> {
    report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["target"].as_str().unwrap().to_owned(),
                r["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn schema(name: &str) -> jsonschema::Validator {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(name);
    let value: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft202012::new(&value).unwrap()
}

fn assert_valid(report: &Value) {
    assert_valid_as("fleet-apply.v1.schema.json", report);
}

fn assert_valid_as(name: &str, report: &Value) {
    let v = schema(name);
    let errors: Vec<String> = v
        .iter_errors(report)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{report:#}");
}

#[test]
fn a_fleet_apply_verifies_once_runs_every_target_and_reports_some_succeeded() {
    let f = Fleet::new();
    let w = f.project(&["a1", "down", "b1", "bad", "t1", "a2", "t2"]);
    let run = w
        .run(&["apply", "1.0.0", "--env", "fleet", "--parallel", "3"])
        .code(14);
    // The release is verified once for the whole fleet, not per target.
    assert_eq!(
        run.output().matches("Integrity verified").count(),
        1,
        "{}",
        run.output()
    );
    let run = run
        .stdout_has("TARGET")
        .stdout_has("5 of 7 targets took 1.0.0: 2 failed, 0 not started");
    assert!(!run.output().contains(UNREACHABLE_PW), "{}", run.output());

    let (a, b) = (pg::shared(), second());
    for (server, db) in [(a, &f.a1.0), (a, &f.a2.0), (b, &f.b1.0)] {
        assert!(f.has_table(server, db, "public.users"), "{db}");
        assert_eq!(f.applied(server, db, "squizzle"), ["1.0.0"]);
    }
    // The failing database: rolled back and the failure recorded there.
    assert!(!f.has_table(b, &f.bad.0, "public.users_email"));
    let failed = b.query(
        &f.bad.0,
        "SELECT count(*) FROM squizzle.releases WHERE NOT success",
    );
    assert_eq!(failed[0][0].as_deref(), Some("1"));

    // A re-run as JSON: the schema, and every target's outcome.
    let run = w
        .run(&["apply", "1.0.0", "--env", "fleet", "--output", "json"])
        .code(14);
    assert!(!run.output().contains(UNREACHABLE_PW));
    let report = run.json();
    assert_valid(&report);
    assert_eq!(report["outcome"], "some_succeeded");
    assert_eq!(report["summary"]["succeeded"], 5);
    assert_eq!(report["summary"]["failed"], 2);
    for t in ["a1", "b1", "t1", "a2", "t2"] {
        assert_eq!(row(&report, t)["outcome"], "nothing_to_do", "{t}");
    }
    let down = row(&report, "down");
    assert_eq!(down["outcome"], "failed");
    assert_eq!(down["error"]["kind"], "connection");
    assert_eq!(down["error"]["code"], 3);
    let bad = row(&report, "bad");
    assert_eq!(bad["error"]["kind"], "migration_failed");
    assert_eq!(bad["error"]["code"], 11);
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already exists"),
        "{bad}"
    );
    // Fleet order, whatever order they finished in.
    let order: Vec<String> = outcomes(&report).into_iter().map(|(t, _)| t).collect();
    assert_eq!(order, ["a1", "down", "b1", "bad", "t1", "a2", "t2"]);
}

#[test]
fn tenant_schemas_get_the_tables_and_a_history_of_their_own() {
    let f = Fleet::new();
    let a = pg::shared();
    let db = &f.tenants.0;
    let mut w = f.project(&["t1", "t2"]);
    w.run(&["apply", "1.0.0", "--env", "fleet"]).success();
    for t in ["t1", "t2"] {
        assert!(f.has_table(a, db, &format!("{t}.users")), "{t}");
        assert!(f.has_table(a, db, &format!("{t}.users_email")), "{t}");
        assert_eq!(f.applied(a, db, &format!("squizzle_{t}")), ["1.0.0"]);
    }
    // Nothing leaked into the shared schemas, and no shared history.
    assert!(!f.has_table(a, db, "public.users"));
    assert!(!f.has_schema(a, db, "squizzle"));
    assert!(!f.has_table(a, db, "t3.users"));

    // 1.1.0 to t1 only: t2's history and tables stay as they were.
    w.write("migrations/0003_users_phone.sql", PHONE);
    w.build_ok("1.1.0");
    w.config(&f.config(&["t1"]));
    w.run(&["apply", "1.1.0", "--env", "fleet"]).success();
    assert_eq!(f.applied(a, db, "squizzle_t1"), ["1.0.0", "1.1.0"]);
    assert_eq!(f.applied(a, db, "squizzle_t2"), ["1.0.0"]);
    let phone = |t: &str| {
        a.query(
            db,
            &format!(
                "SELECT count(*) FROM information_schema.columns WHERE table_schema = '{t}' AND column_name = 'phone'"
            ),
        )[0][0]
            .clone()
    };
    assert_eq!(phone("t1").as_deref(), Some("1"));
    assert_eq!(phone("t2").as_deref(), Some("0"));

    // status over both: which tenant is at which release, what is pending.
    w.config(&f.config(&["t1", "t2", "down"]));
    w.set_env("UNREACHABLE_PW", UNREACHABLE_PW);
    let run = w
        .run(&[
            "status",
            "--env",
            "fleet",
            "--version",
            "1.1.0",
            "--output",
            "json",
        ])
        .code(14);
    assert!(!run.output().contains(UNREACHABLE_PW));
    let s = run.json();
    assert_valid_as("fleet-status.v1.schema.json", &s);
    let rows = s["rows"].as_array().unwrap();
    assert_eq!(rows[0]["applied"], "1.1.0");
    assert_eq!(rows[0]["upToDate"], true);
    assert_eq!(rows[1]["applied"], "1.0.0");
    assert_eq!(rows[1]["pending"], 1);
    assert!(rows[2]["error"].is_string());
    assert_eq!(s["versions"]["1.1.0"], 1);
    assert_eq!(s["versions"]["1.0.0"], 1);
    assert_eq!(s["unreadable"], 1);
    w.run(&["status", "--env", "fleet", "--version", "1.1.0"])
        .code(14)
        .stdout_has("up to date")
        .stdout_has("1 of 3 targets up to date with 1.1.0");

    // audit over the fleet: where 1.1.0 is applied, target by target.
    let run = w
        .run(&["audit", "1.1.0", "--env", "fleet", "--output", "json"])
        .success();
    assert!(!run.output().contains(UNREACHABLE_PW));
    let audit = run.json();
    let v = schema("audit.v1.schema.json");
    assert_eq!(v.iter_errors(&audit).count(), 0, "{audit:#}");
    let by_label: Vec<(String, String)> = audit["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["environment"].as_str().unwrap().to_owned(),
                e["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        by_label,
        [
            ("fleet/t1".into(), "applied".into()),
            ("fleet/t2".into(), "not_applied".into()),
            ("fleet/down".into(), "unreachable".into()),
        ]
    );
    assert_eq!(audit["environments"][0]["target"], "t1");
    assert_eq!(audit["environments"][0]["historySchema"], "squizzle_t1");

    // Each tenant's fingerprint covers its own schema only: a column added
    // out of band in t2 is drift in t2, and t1 (same database) is clean.
    w.config(&f.config(&["t1", "t2"]));
    let clean = w
        .run(&["status", "--env", "fleet", "--drift", "--output", "json"])
        .success()
        .json();
    assert_valid_as("fleet-status.v1.schema.json", &clean);
    assert_eq!(clean["schemaDrifted"], 0);
    assert_eq!(clean["rows"][0]["schemaDrift"], "no_drift");
    assert_eq!(clean["rows"][1]["schemaDrift"], "no_drift");
    a.query(db, "ALTER TABLE t2.users ADD COLUMN out_of_band int");
    let drifted = w
        .run(&["status", "--env", "fleet", "--drift", "--output", "json"])
        .code(13)
        .json();
    assert_valid_as("fleet-status.v1.schema.json", &drifted);
    assert_eq!(drifted["schemaDrifted"], 1);
    assert_eq!(drifted["rows"][0]["schemaDrift"], "no_drift");
    assert_eq!(drifted["rows"][1]["schemaDrift"], "drift");
    assert_eq!(drifted["rows"][1]["driftedObjects"], 1);
    w.run(&["status", "--env", "fleet", "--drift"])
        .code(13)
        .stdout_has("schema drift: 1 object");
}

#[test]
fn a_failing_canary_leaves_every_other_target_untouched() {
    let f = Fleet::new();
    let (a, b) = (pg::shared(), second());
    let w = f.project(&["bad", "a1", "b1", "t1"]);
    let report = w
        .run(&[
            "apply", "1.0.0", "--env", "fleet", "--canary", "1", "--output", "json",
        ])
        .code(15)
        .json();
    assert_valid(&report);
    assert_eq!(report["outcome"], "none_succeeded");
    assert_eq!(
        outcomes(&report),
        [
            ("bad".into(), "failed".into()),
            ("a1".into(), "not_started".into()),
            ("b1".into(), "not_started".into()),
            ("t1".into(), "not_started".into()),
        ]
    );
    assert_eq!(row(&report, "bad")["canary"], true);
    // Not touched: not even squizzle's history tables were created.
    assert!(!f.has_schema(a, &f.a1.0, "squizzle"));
    assert!(!f.has_schema(b, &f.b1.0, "squizzle"));
    assert!(!f.has_schema(a, &f.tenants.0, "squizzle_t1"));

    // A canary that succeeds lets the rest go.
    let w = f.project(&["a1", "b1", "t1"]);
    let report = w
        .run(&[
            "apply", "1.0.0", "--env", "fleet", "--canary", "1", "--output", "json",
        ])
        .success()
        .json();
    assert_eq!(report["summary"]["succeeded"], 3);
    assert!(f.has_table(a, &f.tenants.0, "t1.users"));
}

#[test]
fn no_target_starts_once_max_failures_is_reached() {
    let f = Fleet::new();
    let a = pg::shared();
    let w = f.project(&["a1", "down", "bad", "a2", "t1"]);
    let report = w
        .run(&[
            "apply",
            "1.0.0",
            "--env",
            "fleet",
            "--parallel",
            "1",
            "--max-failures",
            "2",
            "--output",
            "json",
        ])
        .code(14)
        .json();
    assert_valid(&report);
    assert_eq!(
        outcomes(&report),
        [
            ("a1".into(), "applied".into()),
            ("down".into(), "failed".into()),
            ("bad".into(), "failed".into()),
            ("a2".into(), "not_started".into()),
            ("t1".into(), "not_started".into()),
        ]
    );
    assert_eq!(report["summary"]["notStarted"], 2);
    assert!(!f.has_schema(a, &f.a2.0, "squizzle"));
    assert!(!f.has_schema(a, &f.tenants.0, "squizzle_t1"));
    // Text: the table names the failures.
    let w = f.project(&["down", "a2"]);
    w.run(&[
        "apply",
        "1.0.0",
        "--env",
        "fleet",
        "--max-failures",
        "1",
        "--parallel",
        "1",
    ])
    .code(15)
    .stdout_has("not started")
    .stdout_has("connection:");
}

#[test]
fn shards_add_up_to_exactly_the_whole_fleet() {
    let f = Fleet::new();
    let a = pg::shared();
    // Eight tenants from a catalog query plus two databases from a file.
    for i in 1..=8 {
        a.query(&f.tenants.0, &format!("CREATE SCHEMA IF NOT EXISTS s{i}"));
    }
    a.query(
        &f.tenants.0,
        "CREATE TABLE tenants (schema_name text, active bool)",
    );
    a.query(
        &f.tenants.0,
        "INSERT INTO tenants SELECT 's' || i, true FROM generate_series(1, 8) i; INSERT INTO tenants VALUES ('gone', false)",
    );
    let w = World::new();
    w.write("migrations/0001_users.sql", USERS);
    w.write(
        "fleet.txt",
        format!("# two whole databases\n{}\n\n{}\n", f.a1.1, f.b1.1),
    );
    w.config(&format!(
        "{PLAIN_CONFIG}\n[environments.fleet]\ndatabase_url = \"{}\"\ntargets_file = \"fleet.txt\"\ntargets_query = \"SELECT schema_name FROM tenants WHERE active ORDER BY 1\"\n",
        f.tenants.1
    ));
    w.build_ok("1.0.0");
    let n = 3;
    let mut seen: Vec<String> = Vec::new();
    let mut per_shard: Vec<Vec<String>> = Vec::new();
    for i in 0..n {
        let report = w
            .run(&[
                "apply",
                "1.0.0",
                "--env",
                "fleet",
                "--shard",
                &format!("{i}/{n}"),
                "--output",
                "json",
            ])
            .success()
            .json();
        assert_valid(&report);
        assert_eq!(report["summary"]["fleet"], 10);
        assert_eq!(report["shard"]["index"], i);
        let these: Vec<String> = outcomes(&report)
            .into_iter()
            .map(|(t, o)| {
                assert_eq!(o, "applied", "{t}");
                t
            })
            .collect();
        seen.extend(these.iter().cloned());
        per_shard.push(these);
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(seen.len(), 10, "no target in two shards: {seen:?}");
    assert_eq!(unique.len(), 10);
    for i in 1..=8 {
        assert!(f.has_table(a, &f.tenants.0, &format!("s{i}.users")), "s{i}");
    }
    assert!(f.has_table(a, &f.a1.0, "public.users"));
    assert!(f.has_table(second(), &f.b1.0, "public.users"));
    assert!(!f.has_schema(a, &f.tenants.0, "squizzle_gone"));
    // A Kubernetes Indexed Job gives the index in a variable: that shard's
    // status rows are exactly the targets its apply ran.
    let status = w.sh(
        "export JOB_COMPLETION_INDEX=2\nsquizzle status --env fleet --shard \"$JOB_COMPLETION_INDEX/3\" --output json 2>/dev/null",
    );
    let status = status.success().json();
    assert_valid_as("fleet-status.v1.schema.json", &status);
    assert_eq!(status["shard"]["index"], 2);
    let rows: Vec<String> = status["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["target"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(rows, per_shard[2]);
    assert_eq!(status["upToDate"], rows.len());
    w.run(&["apply", "1.0.0", "--env", "fleet", "--shard", "3/3"])
        .code(2)
        .says("0 <= I < N");
}

#[test]
fn fleet_mistakes_are_refused_with_what_to_fix_and_touch_nothing_they_concern() {
    let f = Fleet::new();
    let a = pg::shared();
    let w = f.project(&["a1", "a1"]);
    w.run(&["apply", "1.0.0", "--env", "fleet"])
        .code(2)
        .says("are the same target (a1)");
    assert!(!f.has_schema(a, &f.a1.0, "squizzle"));
    // A tenant schema that does not exist: that target fails, clearly,
    // and nothing of squizzle's is created for it.
    w.config(&f.config(&["t1", "nosuch"]));
    let report = w
        .run(&["apply", "1.0.0", "--env", "fleet", "--output", "json"])
        .code(14)
        .json();
    let nosuch = row(&report, "nosuch");
    assert_eq!(nosuch["error"]["kind"], "usage", "{nosuch}");
    assert!(
        nosuch["error"]["message"]
            .as_str()
            .unwrap()
            .contains("schema nosuch does not exist"),
        "{nosuch}"
    );
    assert!(!f.has_schema(a, &f.tenants.0, "squizzle_nosuch"));
    assert!(f.has_table(a, &f.tenants.0, "t1.users"));
    // A fleet flag on one database.
    w.config(&format!(
        "{PLAIN_CONFIG}\n[environments.one]\ndatabase_url = \"{}\"\n",
        f.a1.1
    ));
    w.run(&["apply", "1.0.0", "--env", "one", "--canary", "1"])
        .code(2)
        .says("--canary is for fleets");
    // A literal password in a target URL.
    w.config(&format!(
        "{PLAIN_CONFIG}\n[environments.fleet]\ntargets = [\"postgres://app:hunter2@127.0.0.1:1/x\"]\n"
    ));
    let run = w.run(&["apply", "1.0.0", "--env", "fleet"]).code(2);
    assert!(!run.output().contains("hunter2"), "{}", run.output());
    // A tenant schema with no database to find it in.
    w.config(&format!(
        "{PLAIN_CONFIG}\n[environments.fleet]\nschemas = [\"t1\"]\n"
    ));
    w.run(&["apply", "1.0.0", "--env", "fleet"])
        .code(2)
        .says("has no database_url");
    // A release that fails verification touches no target: exit 6, as for
    // one database, and no target was connected to.
    w.config(&f.config(&["a2", "t2"]));
    w.corrupt_blob(&w.layer_digest("1.0.0"));
    w.run(&["apply", "1.0.0", "--env", "fleet", "--output", "json"])
        .code(6);
    assert!(!f.has_schema(a, &f.a2.0, "squizzle"));
    assert!(!f.has_schema(a, &f.tenants.0, "squizzle_t2"));
}

#[test]
fn the_catalog_query_gives_named_databases_and_its_passwords_are_never_shown() {
    let f = Fleet::new();
    let a = pg::shared();
    let catalog = &f.tenants.0;
    let pw = "catalog-pw-7731";
    a.query(catalog, "CREATE TABLE shards (url text, name text, n int)");
    // The shared server trusts TCP connections: the password only has to be well-formed.
    let with_pw = f.a1.1.replace("postgres@", &format!("postgres:{pw}@"));
    a.query(
        catalog,
        &format!(
            "INSERT INTO shards VALUES ({}, 'first', 1), ('postgres://app:{pw}@127.0.0.1:1/x?sslmode=disable&connect_timeout=3', 'gone', 2)",
            pg::quote_literal(&with_pw)
        ),
    );
    let w = World::new();
    w.config(PLAIN_CONFIG);
    w.write("migrations/0001_users.sql", USERS);
    w.build_ok("1.0.0");
    let config = |sql: &str| {
        format!(
            "{PLAIN_CONFIG}\n[environments.fleet]\ncatalog_url = \"{}\"\ntargets_query = \"{sql}\"\n",
            f.tenants.1
        )
    };
    w.config(&config("SELECT url, name FROM shards ORDER BY n"));
    // A dry run plans every target and touches none.
    let report = w
        .run(&[
            "apply",
            "1.0.0",
            "--env",
            "fleet",
            "--dry-run",
            "--output",
            "json",
        ])
        .code(14)
        .json();
    assert_eq!(row(&report, "first")["outcome"], "dry_run");
    assert!(!f.has_schema(a, &f.a1.0, "squizzle"));
    let run = w.run(&["apply", "1.0.0", "--env", "fleet"]).code(14);
    assert!(!run.output().contains(pw), "{}", run.output());
    let report = w
        .run(&["apply", "1.0.0", "--env", "fleet", "--output", "json"])
        .code(14);
    assert!(!report.output().contains(pw), "{}", report.output());
    let report = report.json();
    assert_eq!(row(&report, "first")["outcome"], "nothing_to_do");
    assert_eq!(row(&report, "gone")["error"]["kind"], "connection");
    assert!(f.has_table(a, &f.a1.0, "public.users"));

    // A row that is neither a connection string nor a schema name: refused,
    // without echoing it, before any target is touched.
    a.query(
        catalog,
        "INSERT INTO shards VALUES ('Not A Schema; secret=1', 'odd', 3)",
    );
    w.config(&config("SELECT url, name FROM shards ORDER BY n"));
    let run = w.run(&["apply", "1.0.0", "--env", "fleet"]).code(2);
    let run = run.says("row 3 of environments.fleet.targets_query");
    assert!(!run.output().contains("secret=1"), "{}", run.output());
    // A query the catalog refuses names the key.
    w.config(&config("SELECT nope FROM nowhere"));
    let run = w.run(&["apply", "1.0.0", "--env", "fleet"]);
    assert_ne!(run.code, 0);
    run.says("targets_query");
}
