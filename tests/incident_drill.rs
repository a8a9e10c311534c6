//! The incident drill: every `$` command of docs/incident-response.md, in the
//! order written, against a real docker-registry, three real PostgreSQL
//! databases and the loopback Sigstore services, with the configuration block
//! of that page. A `# exit N` comment is the expected exit code (0 without
//! one). Then the end state is checked in the databases and through `audit`
//! and `status` JSON, so the runbook cannot drift from what squizzle does.
//!
//! The only things the page does not say are test plumbing: where the
//! services are (the Sigstore URLs, trust root and issuer are pointed at the
//! loopback instance), the database URLs, and the migration files each
//! release is built from (written just before its `build`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use squizzle_test_support::World;
use squizzle_test_support::pg;
use squizzle_test_support::registry::{Auth, Registry, RegistryOptions};
use squizzle_test_support::sigstore::{Identity, SigstoreServices};

const RUNBOOK: &str = "docs/incident-response.md";
const WORKFLOW: &str = "https://github.com/acme/shop/.github/workflows/release.yml";
const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";
const GOOGLE_ISSUER: &str = "https://accounts.google.com";
const SECURITY_TEAM: &str = "security@acme.example";

/// What the CI system (GitHub Actions, on the version's tag) and the person
/// at the keyboard bring to a command: the identity token, and for builds the
/// CI variables provenance is made from.
fn ci_env(s: &SigstoreServices, command: &str) -> Vec<(String, String)> {
    let words: Vec<&str> = command.split_whitespace().collect();
    match words.get(1..3) {
        Some(["build", v]) => {
            let tag = format!("refs/tags/v{v}");
            vec![
                (
                    "SIGSTORE_ID_TOKEN".into(),
                    s.mint_token(&Identity::uri(format!("{WORKFLOW}@{tag}"))),
                ),
                ("GITHUB_ACTIONS".into(), "true".into()),
                ("GITHUB_SERVER_URL".into(), "https://github.com".into()),
                ("GITHUB_REPOSITORY".into(), "acme/shop".into()),
                (
                    "GITHUB_WORKFLOW_REF".into(),
                    format!("acme/shop/.github/workflows/release.yml@{tag}"),
                ),
                ("GITHUB_REF".into(), tag),
                ("GITHUB_SHA".into(), format!("{:0>40}", v.replace('.', ""))),
                ("GITHUB_RUN_ID".into(), "4711".into()),
            ]
        }
        Some(["revoke", _]) => vec![(
            "SIGSTORE_ID_TOKEN".into(),
            s.mint_token(&Identity::email(SECURITY_TEAM)),
        )],
        _ => Vec::new(),
    }
}

#[derive(Debug)]
struct Step {
    section: String,
    command: String,
    exit: i32,
}

/// The `$` lines of the runbook's `console` blocks, and its `toml` block.
fn runbook() -> (Vec<Step>, String) {
    let text =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(RUNBOOK)).unwrap();
    let mut steps = Vec::new();
    let mut toml = None;
    let mut section = String::new();
    let mut block: Option<(String, Vec<String>)> = None;
    for line in text.lines() {
        if let Some((lang, lines)) = &mut block {
            if line.trim_start().starts_with("```") {
                if lang == "toml" && toml.is_none() {
                    toml = Some(lines.join("\n") + "\n");
                }
                if lang == "console" {
                    for l in lines.iter().filter_map(|l| l.strip_prefix("$ ")) {
                        let (command, exit) = match l.split_once("# exit ") {
                            Some((c, n)) => {
                                (c.trim().to_owned(), n.trim().parse().expect("exit code"))
                            }
                            None => (l.trim().to_owned(), 0),
                        };
                        steps.push(Step {
                            section: section.clone(),
                            command,
                            exit,
                        });
                    }
                }
                block = None;
            } else {
                lines.push(line.to_owned());
            }
            continue;
        }
        if let Some(h) = line.strip_prefix("## ") {
            section = h.trim().to_owned();
        } else if let Some(lang) = line.trim_start().strip_prefix("```") {
            block = Some((lang.trim().to_owned(), Vec::new()));
        }
    }
    (
        steps,
        toml.expect("the runbook has a toml configuration block"),
    )
}

/// The migrations each release is built from: 1.1.0 adds an index that
/// locks the table; 1.1.1 replaces it with one built concurrently.
fn before(w: &World, command: &str) {
    if command.starts_with("squizzle build 1.0.0") {
        w.write(
            "migrations/0001_create_orders.sql",
            "CREATE TABLE orders (id bigint PRIMARY KEY, customer text NOT NULL, total numeric NOT NULL);\n",
        );
    }
    if command.starts_with("squizzle build 1.1.0") {
        w.write(
            "migrations/0002_orders_customer_index.sql",
            "CREATE INDEX orders_customer ON orders (customer);\n",
        );
        w.write(
            "migrations/0002_orders_customer_index.down.sql",
            "DROP INDEX orders_customer;\n",
        );
    }
    if command.starts_with("squizzle build 1.1.1") {
        w.remove("migrations/0002_orders_customer_index.sql");
        w.remove("migrations/0002_orders_customer_index.down.sql");
        w.write(
            "migrations/0003_orders_customer_index_concurrently.sql",
            "-- squizzle:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_v2 ON orders (customer);\n",
        );
        w.write(
            "migrations/0003_orders_customer_index_concurrently.down.sql",
            "-- squizzle:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS orders_customer_v2;\n",
        );
    }
}

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_squizzle"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn the_incident_response_runbook_runs_as_written() {
    let (steps, toml) = runbook();
    assert!(steps.len() >= 20, "the runbook lost its steps: {steps:?}");
    let s = SigstoreServices::start();
    let reg = Registry::start(RegistryOptions { auth: Auth::None });
    let server = pg::shared();
    let dbs: Vec<(&str, String)> = ["staging", "production", "canary"]
        .into_iter()
        .map(|e| (e, server.create_database(&format!("drill_{e}"))))
        .collect();

    let w = World::new();
    // The runbook's configuration, pointed at the loopback Sigstore instance.
    let config = toml
        .replace(GITHUB_ISSUER, &s.issuer_url())
        .replace(GOOGLE_ISSUER, &s.issuer_url())
        .replacen(
        "require_signature = true\n",
        &format!(
            "require_signature = true\nfulcio_url = {:?}\nrekor_url = {:?}\ntrusted_root = {:?}\n",
            s.fulcio_url(),
            s.rekor_url(),
            s.trusted_root_path().display().to_string()
        ),
        1,
    );
    w.config(&config);
    let token = s.mint_token(&Identity::uri(WORKFLOW));
    let mut env: Vec<(String, String)> = vec![
        (
            "SQUIZZLE_REGISTRY".into(),
            format!("{}/acme/shop", reg.url()),
        ),
        ("SIGSTORE_ID_TOKEN".into(), token),
        ("NO_COLOR".into(), "1".into()),
        (
            "PATH".into(),
            format!(
                "{}:{}",
                bin_dir().display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        ),
        ("HOME".into(), w.home().display().to_string()),
    ];
    for (name, url) in &dbs {
        env.push((
            format!("{}_DATABASE_URL", name.to_uppercase()),
            format!("{url}?sslmode=disable"),
        ));
    }

    let mut transcript = String::new();
    let mut section = String::new();
    for step in &steps {
        if step.section != section {
            section = step.section.clone();
            transcript.push_str(&format!("\n## {section}\n"));
        }
        before(&w, &step.command);
        let out = Command::new("bash")
            .args(["-c", &step.command])
            .current_dir(w.root())
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(ci_env(&s, &step.command))
            .output()
            .unwrap();
        let code = out.status.code().unwrap_or(-1);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        transcript.push_str(&format!("\n$ {}\n{}", step.command, text));
        if code != 0 {
            transcript.push_str(&format!("(exit {code})\n"));
        }
        assert_eq!(
            code, step.exit,
            "runbook step `{}` (section {:?}) exited {code}, the runbook says {}\n{text}",
            step.command, step.section, step.exit
        );
    }
    // The transcript is kept for people reading the drill's result.
    let keep = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("incident-drill-transcript.txt");
    std::fs::write(&keep, &transcript).unwrap();
    eprintln!("transcript: {}", keep.display());

    // The end state, from the databases themselves.
    let history = |db: &str| -> Vec<(String, String, String)> {
        server
            .query(
                db,
                "SELECT version, operation, success::text FROM squizzle.releases ORDER BY id",
            )
            .into_iter()
            .map(|r| {
                (
                    r[0].clone().unwrap(),
                    r[1].clone().unwrap(),
                    r[2].clone().unwrap(),
                )
            })
            .collect()
    };
    let row = |v: &str, op: &str| (v.to_owned(), op.to_owned(), "true".to_owned());
    for (name, db) in &dbs[..2] {
        assert_eq!(
            history(db),
            vec![
                row("1.0.0", "apply"),
                row("1.1.0", "apply"),
                row("1.1.0", "rollback"),
                row("1.1.1", "apply")
            ],
            "{name}"
        );
    }
    assert_eq!(
        history(&dbs[2].1),
        vec![row("1.1.1", "apply")],
        "canary never ran 1.1.0"
    );
    for (name, db) in &dbs {
        let indexes = server.query(
            db,
            "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE tablename = 'orders'",
        );
        assert_eq!(
            indexes[0][0].as_deref(),
            Some("orders_customer_v2,orders_pkey"),
            "{name}"
        );
    }

    // And as audit and status tell it.
    let run_json = |args: &[&str]| -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_squizzle"))
            .args(args)
            .args(["--output", "json"])
            .current_dir(w.root())
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}\n{}", String::from_utf8_lossy(&out.stdout)))
    };
    let audit = run_json(&["audit", "1.1.0"]);
    let text = audit.to_string();
    assert!(
        text.contains("INC-4711"),
        "audit shows the revocation: {audit:#}"
    );
    check_audit(&audit);
    let status = run_json(&["status", "--env", "production"]);
    let applied: Vec<&str> = status["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["version"].as_str().unwrap())
        .collect();
    assert_eq!(
        applied,
        ["1.0.0", "1.1.1"],
        "1.1.0 is no longer in effect: {status:#}"
    );
    assert_eq!(status["pending"], serde_json::json!([]), "{status:#}");
    assert_eq!(status["upToDate"], true, "{status:#}");
}

/// `audit 1.1.0`: applied then rolled back in staging and production, never
/// in canary, revoked.
fn check_audit(audit: &Value) {
    let envs = audit["environments"].as_array().expect("environments");
    let find = |n: &str| {
        envs.iter()
            .find(|e| e["name"] == n || e["environment"] == n)
            .unwrap_or_else(|| panic!("{n} in {audit:#}"))
    };
    for n in ["staging", "production"] {
        let e = find(n).to_string();
        assert!(e.contains("rollback") || e.contains("rolled"), "{n}: {e}");
    }
    let canary = find("canary").to_string();
    assert!(!canary.contains("\"apply\""), "canary: {canary}");
}
