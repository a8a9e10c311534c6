//! Exit codes are a public contract: every code the current commands can produce
//! comes out of a real scenario, and `--help` and docs/exit-codes.md list them all.

use squizzle::core::exit::ExitCode;
use squizzle_test_support::{PLAIN_CONFIG, Run, World};

/// A plain project with 1.0.0 built.
fn released() -> World {
    let w = World::plain();
    w.build_ok("1.0.0");
    w
}

/// A real command line that ends in `code`, or `None` for codes reserved for
/// commands that do not exist yet. `json` adds `--output json`.
fn scenario(code: ExitCode, json: bool) -> Option<Run> {
    let with = |args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        if json {
            v.extend(["--output".to_owned(), "json".to_owned()]);
        }
        v
    };
    let run = |w: &World, args: &[&str]| {
        let args = with(args);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        w.run(&refs)
    };
    Some(match code {
        ExitCode::Ok => run(&World::plain(), &["build", "1.0.0"]),
        ExitCode::General => {
            let w = World::plain();
            w.write("db/tarballs", "a file where a folder should be");
            run(&w, &["build", "1.0.0"])
        }
        ExitCode::Usage => run(&World::plain(), &["build", "1.0"]),
        ExitCode::VersionConflict => {
            let w = released();
            w.write(
                "migrations/0001_create_users.sql",
                "CREATE TABLE users (id uuid PRIMARY KEY);\n",
            );
            run(&w, &["build", "1.0.0"])
        }
        ExitCode::Integrity => {
            let w = released();
            std::fs::remove_file(w.blob_path(&w.layer_digest("1.0.0"))).unwrap();
            run(&w, &["verify", "1.0.0"])
        }
        ExitCode::Signature => {
            let w = released();
            w.config(&format!(
                "{}\n[security]\nrequire_signature = true\n[[security.signers]]\nidentity = \"ci@acme.example\"\nissuer = \"https://issuer.example\"\n",
                PLAIN_CONFIG
            ));
            run(&w, &["verify", "1.0.0"])
        }
        ExitCode::Revoked => {
            let w = released();
            let key = [("SQUIZZLE_KEY_PASSWORD", "exit code scenario")];
            w.run_with_env(&["keygen"], &key).success();
            w.run_with_env(
                &[
                    "revoke",
                    "1.0.0",
                    "--reason",
                    "scenario",
                    "--key",
                    "squizzle.key",
                ],
                &key,
            )
            .success();
            run(&w, &["verify", "1.0.0"])
        }
        ExitCode::NotFound => run(&released(), &["verify", "2.0.0"]),
        ExitCode::Connection
        | ExitCode::Authentication
        | ExitCode::RollbackFailed
        | ExitCode::LockTimeout
        | ExitCode::MigrationFailed
        // Needs a real database: tests/drift_pg.rs, tests/fleet_pg.rs.
        | ExitCode::SchemaDrift
        | ExitCode::FleetPartial
        | ExitCode::FleetFailed => return None,
    })
}

#[test]
fn every_exit_code_the_commands_can_produce_comes_from_a_real_scenario() {
    let mut produced = Vec::new();
    for code in ExitCode::ALL {
        if let Some(run) = scenario(code, false) {
            run.code(i32::from(code.code()));
            produced.push(code.code());
        }
    }
    assert_eq!(produced, [0, 1, 2, 5, 6, 9, 10, 12]);
}

#[test]
fn json_errors_carry_the_exit_code_and_its_name() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../schemas/error.v1.schema.json")).unwrap();
    let error_schema = jsonschema::draft202012::new(&schema).unwrap();
    for code in ExitCode::ALL {
        let Some(run) = scenario(code, true) else {
            continue;
        };
        let run = run.code(i32::from(code.code()));
        let doc = run.json();
        if code == ExitCode::Ok || code == ExitCode::Signature || code == ExitCode::Revoked {
            // Successes and verify reports are reports, not error documents.
            assert!(doc.get("error").is_none(), "{doc}");
            continue;
        }
        assert_eq!(doc["error"]["code"], code.code(), "{doc}");
        assert_eq!(doc["error"]["kind"], code.name(), "{doc}");
        assert!(!doc["error"]["message"].as_str().unwrap().is_empty());
        // And the envelope follows its schema.
        let errors: Vec<String> = error_schema
            .iter_errors(&doc)
            .map(|e| format!("{e} at {}", e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}\n{doc:#}");
    }
}

#[test]
fn help_lists_every_exit_code_with_its_name() {
    let w = World::new();
    let r = w
        .run(&["--help"])
        .success()
        .stdout_has("Exit codes (stable; see docs/exit-codes.md):");
    for code in ExitCode::ALL {
        let row = format!("{:>2}  {}", code.code(), code.name());
        assert!(
            r.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(row.trim_start())),
            "--help should list {row:?}:\n{}",
            r.stdout
        );
    }
}

#[test]
fn command_line_usage_errors_exit_2() {
    let w = World::plain();
    let cases: &[&[&str]] = &[
        &[],
        &["frobnicate"],
        &["build"],
        &["verify"],
        &["build", "1.0.0", "--no-such-flag"],
        &["list", "--output", "xml"],
        &["-q", "-v", "list"],
        &["list", "extra-argument"],
    ];
    for args in cases {
        let r = w.run(args).code(2);
        assert!(
            r.stderr.contains("Usage:") || r.stderr.contains("error:"),
            "{args:?}: {}",
            r.stderr
        );
    }
    assert!(!w.exists("db"), "no usage error touched the project");
}

#[test]
fn help_and_version_exit_0() {
    let w = World::new();
    for args in [
        &["--help"][..],
        &["-h"],
        &["help"],
        &["help", "build"],
        &["build", "--help"],
        &["--version"],
    ] {
        let r = w.run(args).success();
        assert!(!r.stdout.is_empty(), "{args:?} prints on stdout");
    }
    w.run(&["--version"])
        .success()
        .stdout_has(env!("CARGO_PKG_VERSION"));
}

/// Word-ish tokens of a line: letters, digits and '_'.
fn tokens(line: &str) -> Vec<&str> {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|t| !t.is_empty())
        .collect()
}

#[test]
fn docs_exit_codes_md_lists_every_code_with_its_name() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/exit-codes.md");
    let doc = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} must exist: {e}", path.display()));
    for code in ExitCode::ALL {
        let number = code.code().to_string();
        assert!(
            doc.lines().any(|l| {
                let t = tokens(l);
                t.first() == Some(&number.as_str()) && t.contains(&code.name())
            }),
            "docs/exit-codes.md should have a line for {} `{}`",
            number,
            code.name()
        );
    }
}

#[test]
fn exit_codes_are_distinct_and_stable() {
    let pairs: Vec<(u8, &str)> = ExitCode::ALL.iter().map(|c| (c.code(), c.name())).collect();
    assert_eq!(
        pairs,
        [
            (0, "ok"),
            (1, "general"),
            (2, "usage"),
            (3, "connection"),
            (4, "authentication"),
            (5, "version_conflict"),
            (6, "integrity"),
            (7, "rollback_failed"),
            (8, "lock_timeout"),
            (9, "signature"),
            (10, "revoked"),
            (11, "migration_failed"),
            (12, "not_found"),
            (13, "schema_drift"),
            (14, "fleet_partial"),
            (15, "fleet_failed"),
        ]
    );
}
