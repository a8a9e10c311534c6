//! What a new user meets first, through the real binary: flags that take an
//! optional value never swallow the version, usage errors in JSON mode are the
//! JSON error envelope, `--help` lists a command's own options before the
//! global ones and its examples survive a copy and paste, and the messages of
//! apply and status read right (counts, SQLSTATE, failures) against a real
//! PostgreSQL.

use squizzle_test_support::World;
use squizzle_test_support::pg;

const COMMANDS: [&str; 15] = [
    "init", "build", "sign", "verify", "list", "push", "pull", "apply", "status", "baseline",
    "rollback", "keygen", "revoke", "audit", "drift",
];

const GLOBAL_FLAGS: [&str; 5] = ["--config", "--env", "--output", "--verbose", "--quiet"];

fn with_db(w: &mut World, prefix: &str) -> String {
    let db = pg::shared().create_database(prefix);
    w.set_env("DATABASE_URL", &format!("{db}?sslmode=disable"));
    db
}

#[test]
fn dry_run_before_the_version_plans_that_version() {
    let mut w = World::plain();
    let db = with_db(&mut w, "dry_run_order");
    w.build_ok("1.1.0");
    w.run(&["apply", "--dry-run", "1.1.0"])
        .success()
        .says("Dry run: 3 migrations would run");
    // The value still works with `=`, and a bad one is still refused.
    w.run(&["apply", "--dry-run=execute", "1.1.0"])
        .success()
        .says("rolled everything back");
    w.run(&["apply", "--dry-run=maybe", "1.1.0"])
        .code(2)
        .says("maybe");
    let schemas = pg::shared().query(
        &db,
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'squizzle'",
    );
    assert_eq!(
        schemas[0][0].as_deref(),
        Some("0"),
        "a dry run wrote history"
    );
    // clap's own usage line shows the form that works.
    w.run(&["apply", "--help"]).success().says("--dry-run[=<");
}

#[test]
fn usage_errors_in_json_mode_are_the_json_error_envelope() {
    let w = World::new();
    for args in [
        vec!["apply", "--output", "json", "--no-such-flag", "1.0.0"],
        vec!["--output=json", "apply"],
        vec![
            "verify",
            "1.0.0",
            "--output",
            "json",
            "--certificate-identity",
        ],
        vec!["apply", "1.0.0", "--dry-run=maybe", "--output", "json"],
    ] {
        let run = w.run(&args).code(2);
        let doc = run.json();
        assert_eq!(doc["error"]["kind"], "usage", "{args:?}: {doc}");
        assert_eq!(doc["error"]["code"], 2, "{args:?}: {doc}");
        let message = doc["error"]["message"].as_str().unwrap();
        assert!(
            !message.is_empty() && !message.starts_with("error:"),
            "{message}"
        );
        assert!(run.stderr.is_empty(), "{args:?}: {}", run.stderr);
    }
    // Text mode keeps clap's text on stderr; --help is still help.
    let run = w.run(&["apply", "--no-such-flag", "1.0.0"]).code(2);
    assert!(
        run.stdout.is_empty() && run.stderr.contains("error:"),
        "{}",
        run.stderr
    );
    w.run(&["apply", "--help", "--output", "json"])
        .success()
        .stdout_has("Usage: squizzle apply");
}

/// The option names of one `--help` section (from its heading to the next).
fn section_flags(help: &str, heading: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim_end() != heading)
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .filter_map(|l| {
            let t = l.trim_start();
            let t = t
                .strip_prefix("-v, ")
                .or(t.strip_prefix("-q, "))
                .unwrap_or(t);
            let t = t.strip_prefix("-h, ").unwrap_or(t);
            t.starts_with("--")
                .then(|| t.split([' ', '[', '.', '=']).next().unwrap().to_owned())
        })
        .collect()
}

#[test]
fn help_lists_a_commands_own_options_before_the_global_ones() {
    let w = World::new();
    for cmd in COMMANDS {
        let help = w.run(&[cmd, "--help"]).success().stdout;
        let own = section_flags(&help, "Options:");
        let global = section_flags(&help, "Global options:");
        for flag in GLOBAL_FLAGS {
            assert!(
                !own.contains(&flag.to_owned()),
                "{cmd}: {flag} among its own options\n{help}"
            );
        }
        let expected: Vec<&str> = if cmd == "init" {
            // init writes the config: it has no config or environment to pick.
            vec!["--output", "--verbose", "--quiet"]
        } else {
            GLOBAL_FLAGS.to_vec()
        };
        assert_eq!(global, expected, "{cmd}\n{help}");
        assert!(
            help.find("Options:") < help.find("Global options:"),
            "{cmd}\n{help}"
        );
    }
    w.run(&["init", "--env", "production"])
        .code(2)
        .says("init takes neither --config nor --env");
}

#[test]
fn help_examples_are_whole_commands_that_clap_does_not_wrap() {
    let w = World::new();
    for cmd in COMMANDS {
        let help = w.run(&[cmd, "--help"]).success().stdout;
        let Some(examples) = help.split("Examples:\n").nth(1) else {
            continue;
        };
        let mut continued = false;
        for line in examples.lines().take_while(|l| !l.is_empty()) {
            // clap wraps help wider than 100 columns when not on a terminal.
            assert!(
                line.chars().count() <= 100,
                "{cmd}: wider than 100 columns: {line}"
            );
            let text = line.trim_start();
            if !continued {
                let starts = text.starts_with("squizzle ")
                    || text.contains(" squizzle ")
                        && text.split(' ').next().is_some_and(|w| w.contains('='));
                assert!(
                    starts,
                    "{cmd}: example line is not a command: {line:?}\n{examples}"
                );
            }
            continued = text.ends_with('\\');
        }
    }
}

#[test]
fn counts_read_right_for_one_migration_and_one_statement() {
    let mut w = World::new();
    w.config(squizzle_test_support::PLAIN_CONFIG);
    w.write(
        "migrations/0001_only.sql",
        "CREATE TABLE only_one (id int);\n",
    );
    with_db(&mut w, "plurals");
    w.run(&["build", "1.0.0"])
        .success()
        .says("Collected 1 migration ");
    w.run(&["apply", "1.0.0", "--dry-run"])
        .success()
        .says("Dry run: 1 migration would run");
    w.run(&["apply", "1.0.0"])
        .success()
        .says("(1 statement, ")
        .says(": 1 migration, 1 statement in ")
        .does_not_say("1 migrations")
        .does_not_say("1 statements");
    w.run(&["status"]).success().says("), 1 migration\n");
}

#[test]
fn a_failures_sqlstate_is_shown_once() {
    let mut w = World::new();
    w.config(squizzle_test_support::PLAIN_CONFIG);
    w.write("migrations/0001_bad.sql", "SELECT 1/0;\n");
    with_db(&mut w, "sqlstate_once");
    w.build_ok("1.0.0");
    let run = w.run(&["apply", "1.0.0"]).code(11);
    let detail = run
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("SQLSTATE 22012:"))
        .unwrap_or_else(|| panic!("no SQLSTATE detail line\n{}", run.stdout))
        .to_owned();
    assert!(!detail.contains("(SQLSTATE 22012)"), "{detail}");
}

#[test]
fn a_failed_attempt_is_shown_only_until_a_later_run_succeeds() {
    let mut w = World::new();
    w.config(squizzle_test_support::PLAIN_CONFIG);
    w.write("migrations/0001_t.sql", "CREATE TABLE t (id int);\n");
    w.write("migrations/0002_bad.sql", "SELECT 1/0;\n");
    with_db(&mut w, "stale_failure");
    w.build_ok("1.0.0");
    w.run(&["apply", "1.0.0"]).code(11);
    w.run(&["status"]).says("Last failed attempt: 1.0.0");

    // The fix ships in 1.0.1 (the failed file never applied anywhere, so it
    // is fixed in place, which build lets through only when told why);
    // after it applies, the old failure is history.
    w.write("migrations/0002_bad.sql", "SELECT 1;\n");
    w.run(&[
        "build",
        "1.0.1",
        "--allow-rewrite",
        "0002_bad",
        "--reason",
        "it failed everywhere and was rolled back",
    ])
    .success();
    w.run(&["apply", "1.0.1"]).success();
    w.run(&["status"])
        .success()
        .does_not_say("Last failed attempt");
    // A new failure after that success is news again.
    w.write("migrations/0003_bad.sql", "SELECT 1/0;\n");
    w.build_ok("1.0.2");
    w.run(&["apply", "1.0.2"]).code(11);
    w.run(&["status"]).says("Last failed attempt: 1.0.2");
}

#[test]
fn a_failing_execute_dry_run_says_it_records_nothing_by_design() {
    let mut w = World::new();
    w.config(squizzle_test_support::PLAIN_CONFIG);
    w.write("migrations/0001_bad.sql", "SELECT 1/0;\n");
    with_db(&mut w, "dry_run_failure");
    w.build_ok("1.0.0");
    w.run(&["apply", "1.0.0", "--dry-run=execute"])
        .code(11)
        .says("a dry run records nothing")
        .does_not_say("could not be recorded");
    let run = w
        .run(&["apply", "1.0.0", "--dry-run=execute", "--output", "json"])
        .code(11);
    let doc = run.json();
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(message.contains("a dry run records nothing"), "{message}");
    assert_eq!(doc["error"]["failure"]["sqlstate"], "22012", "{doc}");
}

#[test]
fn an_unknown_environment_without_environments_does_not_offer_default() {
    let mut w = World::plain();
    with_db(&mut w, "no_envs");
    w.run(&["status", "--env", "prod"])
        .code(2)
        .says("defines no environments")
        .does_not_say("defined: default");
}
