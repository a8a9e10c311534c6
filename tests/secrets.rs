//! Secrets never reach the terminal: not from the environment (DATABASE_URL,
//! SQUIZZLE_REGISTRY_TOKEN), not from `${VAR}` references in squizzle.toml, not in
//! JSON, not in trace logs, not on error paths. Literal secrets in the config
//! file are refused by key name without being echoed.

use squizzle_test_support::{PLAIN_CONFIG, Run, World};

const DB_CANARY: &str = "dbCanary-7Qx2pL9v";
const TOKEN_CANARY: &str = "tokCanary-K3m8Zr1w";
const REG_CANARY: &str = "regCanary-P5n0Yt4s";
const PROD_DB_CANARY: &str = "prodCanary-W6c1Hs8d";
const CANARIES: [&str; 4] = [DB_CANARY, TOKEN_CANARY, REG_CANARY, PROD_DB_CANARY];

const CONFIG_WITH_REFERENCES: &str = r#"[project]
migrations = "migrations"

[registry]
url = "registry.example.com/acme/migrations"
username = "ci"
password = "${REG_PASSWORD}"

[environments.production]
database_url = "postgres://app:${PROD_DB_PASSWORD}@db.internal:5432/prod"
"#;

/// A plain project whose configuration and environment carry every canary.
fn world_with_secrets() -> World {
    let mut w = World::plain();
    w.config(CONFIG_WITH_REFERENCES);
    w.set_env(
        "DATABASE_URL",
        &format!("postgres://app:{DB_CANARY}@db.internal:5432/app"),
    );
    w.set_env("SQUIZZLE_REGISTRY_TOKEN", TOKEN_CANARY);
    w.set_env("REG_PASSWORD", REG_CANARY);
    w.set_env("PROD_DB_PASSWORD", PROD_DB_CANARY);
    w
}

#[track_caller]
fn assert_no_canary(run: &Run) {
    for canary in CANARIES {
        assert!(
            !run.stdout.contains(canary) && !run.stderr.contains(canary),
            "secret {canary:?} leaked by `squizzle {}`:\n--- stdout:\n{}\n--- stderr:\n{}",
            run.args.join(" "),
            run.stdout,
            run.stderr
        );
    }
}

/// Runs `args` in text mode, JSON mode and with -vvv; checks the exit code and
/// that no canary appears.
#[track_caller]
fn run_all_modes(w: &World, args: &[&str], code: i32) {
    for extra in [
        &[][..],
        &["--output", "json"],
        &["-vvv"],
        &["-vvv", "--output", "json"],
        &["--env", "production"],
    ] {
        let mut full: Vec<&str> = args.to_vec();
        full.extend_from_slice(extra);
        let run = w.run(&full).code(code);
        assert_no_canary(&run);
    }
    let run = w
        .run_with_env(args, &[("SQUIZZLE_LOG", "trace")])
        .code(code);
    assert_no_canary(&run);
}

#[test]
fn secrets_from_the_environment_and_config_references_never_reach_the_output() {
    let w = world_with_secrets();

    run_all_modes(&w, &["build", "1.0.0"], 0);
    run_all_modes(&w, &["verify", "1.0.0", "--offline"], 0);
    run_all_modes(&w, &["list"], 0);
    w.build_ok("1.1.0");
    run_all_modes(&w, &["list"], 0);
}

#[test]
fn secrets_never_reach_the_output_on_error_paths() {
    let w = world_with_secrets();
    w.build_ok("1.0.0");

    run_all_modes(&w, &["build", "1.0"], 2);
    run_all_modes(&w, &["build", "1.0.0+meta"], 2);
    // --offline: the configured registry is not reachable from tests.
    run_all_modes(&w, &["verify", "9.9.9", "--offline"], 12);

    w.write(
        "migrations/0002_add_email.sql",
        "ALTER TABLE users ADD COLUMN email varchar(320);\n",
    );
    run_all_modes(&w, &["build", "1.0.0"], 5);

    w.write("migrations/0009_bad.sql", b"SELECT '\xff';\n");
    run_all_modes(&w, &["build", "2.0.0"], 2);

    w.corrupt_blob(&w.layer_digest("1.0.0"));
    run_all_modes(&w, &["verify", "1.0.0", "--offline"], 6);

    for args in [
        &["verify", "1.0.0", "--offline", "--env", "staging"][..],
        &["list", "--env", "staging", "-vvv"],
    ] {
        let run = w
            .run(args)
            .code(2)
            .says("environment \"staging\" is not defined");
        assert_no_canary(&run);
    }
}

#[test]
fn secrets_never_reach_the_output_when_the_signature_policy_fails() {
    let w = world_with_secrets();
    w.build_ok("1.0.0");
    w.config(&format!(
        "{CONFIG_WITH_REFERENCES}\n[security]\nrequire_signature = true\n[[security.signers]]\nidentity = \"ci@acme.example\"\nissuer = \"https://issuer.example\"\n"
    ));
    run_all_modes(&w, &["verify", "1.0.0", "--offline"], 9);
}

#[test]
fn a_percent_encoded_database_password_is_hidden_in_both_forms() {
    let mut w = world_with_secrets();
    w.set_env(
        "DATABASE_URL",
        "postgres://app:pct%2FCanary%40x9@db.internal/app",
    );
    for args in [
        &["build", "1.0.0", "-vvv"][..],
        &["verify", "1.0.0", "--output", "json"],
        &["verify", "7.0.0", "-vvv"],
    ] {
        let run = w.run(args);
        for form in ["pct%2FCanary%40x9", "pct/Canary@x9"] {
            assert!(
                !run.output().contains(form),
                "{form} leaked:\n{}",
                run.output()
            );
        }
    }
}

#[test]
fn an_unset_variable_behind_a_secret_key_is_named_but_has_no_value_to_leak() {
    let w = world_with_secrets();
    let run = w
        .run_with_env(&["build", "1.0.0"], &[("REG_PASSWORD", "")])
        .code(2);
    let run = run.says("`registry.password` refers to ${REG_PASSWORD}, which is not set");
    assert_no_canary(&run);
}

// ---------------------------------------------------------------------------
// Literal secrets in squizzle.toml
// ---------------------------------------------------------------------------

const LITERAL: &str = "literalCanary-J4v7Nq2e";

#[track_caller]
fn refused(w: &World, key: &str) {
    for extra in [&[][..], &["--output", "json"], &["-vvv"]] {
        let mut args = vec!["build", "1.0.0"];
        args.extend_from_slice(extra);
        let run = w
            .run(&args)
            .code(2)
            .says(&format!("`{key}` contains a literal"));
        assert!(
            !run.output().contains(LITERAL),
            "the literal secret is echoed:\n{}",
            run.output()
        );
    }
    assert!(
        !w.exists("db/tarballs/squizzle-1.0.0.tar.gz"),
        "nothing is built"
    );
}

#[test]
fn a_literal_registry_password_is_refused_by_key_without_echoing_it() {
    let w = World::plain();
    w.config(&format!(
        "{}\n[registry]\nurl = \"registry.example.com/x\"\npassword = \"{LITERAL}\"\n",
        PLAIN_CONFIG
    ));
    refused(&w, "registry.password");
}

#[test]
fn a_literal_registry_token_is_refused_even_when_it_is_not_a_string() {
    let w = World::plain();
    w.config(&format!(
        "{}\n[registry]\nurl = \"registry.example.com/x\"\ntoken = \"{LITERAL}\"\n",
        PLAIN_CONFIG
    ));
    refused(&w, "registry.token");
    w.config(&format!(
        "{}\n[registry]\ntoken = 4711471147114711\n",
        PLAIN_CONFIG
    ));
    w.run(&["build", "1.0.0"])
        .code(2)
        .says("`registry.token` contains a literal secret")
        .does_not_say("4711471147114711");
}

#[test]
fn a_literal_password_in_a_database_url_is_refused_by_key_without_echoing_it() {
    let w = World::plain();
    w.config(&format!(
        "{}\n[environments.production]\ndatabase_url = \"postgres://app:{LITERAL}@db.internal:5432/prod\"\n",
        PLAIN_CONFIG
    ));
    refused(&w, "environments.production.database_url");
}

#[test]
fn a_literal_password_parameter_in_a_database_url_is_refused() {
    let w = World::plain();
    w.config(&format!(
        "{}\n[environments.production]\ndatabase_url = \"postgres://db.internal/prod?user=app&password={LITERAL}\"\n",
        PLAIN_CONFIG
    ));
    refused(&w, "environments.production.database_url");
}

#[test]
fn a_literal_secret_error_tells_the_user_which_variable_reference_to_write() {
    // The error promises "write {fix}": the fix must survive redaction, or the
    // message ends in "write `password = ***`", which tells the user nothing.
    let w = World::plain();
    w.config(&format!(
        "{}\n[registry]\nurl = \"registry.example.com/x\"\npassword = \"{LITERAL}\"\n",
        PLAIN_CONFIG
    ));
    refused(&w, "registry.password");
    w.run(&["build", "1.0.0"])
        .code(2)
        .says("${REGISTRY_PASSWORD}");
}

#[test]
fn a_syntax_error_next_to_a_literal_password_does_not_echo_it() {
    // A typo (the closing quote is missing) turns the file into invalid TOML; the
    // parse error quotes the offending line, which holds the password.
    let w = World::plain();
    w.config(&format!(
        "{}\n[registry]\nurl = \"registry.example.com/x\"\npassword = \"{LITERAL}\n",
        PLAIN_CONFIG
    ));
    for extra in [&[][..], &["--output", "json"], &["-vvv"]] {
        let mut args = vec!["build", "1.0.0"];
        args.extend_from_slice(extra);
        let run = w.run(&args).code(2).says("not valid TOML");
        assert!(
            !run.output().contains(LITERAL),
            "the literal secret is echoed:\n{}",
            run.output()
        );
    }
}

#[test]
fn a_syntax_error_on_a_quoted_literal_password_line_does_not_echo_it() {
    let w = World::plain();
    w.config(&format!(
        "{}\n[registry]\nurl = \"registry.example.com/x\"\npassword = \"{LITERAL}\" oops\n",
        PLAIN_CONFIG
    ));
    let run = w.run(&["build", "1.0.0"]).code(2).says("not valid TOML");
    assert!(
        !run.output().contains(LITERAL),
        "the literal secret is echoed:\n{}",
        run.output()
    );
}
