use super::*;

fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_str(
        text,
        Path::new("/proj/squizzle.toml"),
        &Env::from_pairs(env.iter().copied()),
        None,
    )
}

#[test]
fn empty_file_gives_documented_defaults() {
    let c = load("", &[]).unwrap();
    assert_eq!(c.root, Path::new("/proj"));
    assert_eq!(c.migrations_dir(), Path::new("/proj/migrations"));
    assert_eq!(c.tarballs_dir(), Path::new("/proj/db/tarballs"));
    assert_eq!(c.store_dir(), Path::new("/proj/db/oci"));
    assert!(c.registry.is_none());
    assert!(!c.require_signature());
}

#[test]
fn expands_variables_with_defaults_and_escapes() {
    let c = load(
        r#"
[project]
migrations = "${MIG_DIR}"
name = "${NAME:-fallback}-$${literal}-$5"
"#,
        &[("MIG_DIR", "drizzle")],
    )
    .unwrap();
    assert_eq!(c.project.migrations, "drizzle");
    assert_eq!(c.project.name.as_deref(), Some("fallback-${literal}-$5"));
}

#[test]
fn unset_variable_names_key_and_variable() {
    let e = load("[project]\nmigrations = \"${NOPE}\"\n", &[]).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ConfigError::UnsetVariable { .. }), "{msg}");
    assert!(
        msg.contains("project.migrations") && msg.contains("NOPE"),
        "{msg}"
    );
}

#[test]
fn literal_password_in_database_url_is_refused_and_not_echoed() {
    let e = load(
        "[environments.production]\ndatabase_url = \"postgres://app:hunter2-canary@db/prod\"\n",
        &[],
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ConfigError::LiteralSecret { .. }), "{msg}");
    assert!(
        msg.contains("environments.production.database_url"),
        "{msg}"
    );
    assert!(msg.contains("${PRODUCTION_DATABASE_URL}"), "{msg}");
    assert!(!msg.contains("hunter2-canary"), "{msg}");
}

#[test]
fn literal_registry_password_and_token_are_refused() {
    for key in ["password", "token"] {
        let e = load(
            &format!("[registry]\nurl = \"r.example/x\"\n{key} = \"abc123\"\n"),
            &[],
        )
        .unwrap_err();
        assert!(matches!(e, ConfigError::LiteralSecret { .. }), "{e}");
        assert!(e.to_string().contains(&format!("registry.{key}")), "{e}");
    }
    let e = load("[registry]\ntoken = 12345\n", &[]).unwrap_err();
    assert!(matches!(e, ConfigError::LiteralSecret { .. }), "{e}");
}

#[test]
fn literal_password_parameter_is_refused() {
    for url in [
        "postgres://app@db/prod?sslmode=require&password=x1",
        "host=db password=x1 user=app",
    ] {
        let e = load(
            &format!("[environments.prod]\ndatabase_url = \"{url}\"\n"),
            &[],
        )
        .unwrap_err();
        assert!(matches!(e, ConfigError::LiteralSecret { .. }), "{url}: {e}");
    }
}

#[test]
fn referenced_secrets_expand_and_are_registered_for_redaction() {
    let c = load(
        "[environments.prod]\ndatabase_url = \"postgres://app:${PGPW}@db/prod\"\n[registry]\nurl = \"r.example/x\"\npassword = \"${REG_PW}\"\n",
        &[("PGPW", "pw-canary-8841"), ("REG_PW", "reg-canary-1177")],
    )
    .unwrap();
    assert_eq!(
        c.environments["prod"].database_url.as_deref(),
        Some("postgres://app:pw-canary-8841@db/prod")
    );
    assert_eq!(
        redact::redact("x pw-canary-8841 reg-canary-1177"),
        "x *** ***"
    );
}

#[test]
fn env_overrides_apply() {
    let c = load(
        "[environments.prod]\ndatabase_url = \"postgres://a@b/c\"\n",
        &[
            ("SQUIZZLE_REGISTRY", "127.0.0.1:5000/acme/db"),
            ("SQUIZZLE_REGISTRY_TOKEN", "tok-canary-5521"),
            ("DATABASE_URL", "postgres://u:dburl-canary-9@h/d"),
            ("SQUIZZLE_ENV", "prod"),
        ],
    )
    .unwrap();
    let r = c.registry.as_ref().unwrap();
    assert_eq!(r.url.as_deref(), Some("127.0.0.1:5000/acme/db"));
    assert_eq!(r.token.as_deref(), Some("tok-canary-5521"));
    assert_eq!(c.environment.as_deref(), Some("prod"));
    assert_eq!(
        c.environments["prod"].database_url.as_deref(),
        Some("postgres://u:dburl-canary-9@h/d")
    );
    assert_eq!(redact::redact("tok-canary-5521 dburl-canary-9"), "*** ***");
}

#[test]
fn unknown_keys_and_environments_are_refused() {
    let e = load("[project]\nmigration = \"x\"\n", &[]).unwrap_err();
    assert!(
        matches!(e, ConfigError::Invalid { .. }) && e.to_string().contains("migration"),
        "{e}"
    );
    let e = Config::from_str(
        "[environments.staging]\n",
        Path::new("/p/squizzle.toml"),
        &Env::default(),
        Some("prod"),
    )
    .unwrap_err();
    assert!(
        matches!(e, ConfigError::UnknownEnvironment { .. }) && e.to_string().contains("staging"),
        "{e}"
    );
}

#[test]
fn folders_must_stay_inside_the_project() {
    for bad in ["../elsewhere", "/abs/path", "a/../../b"] {
        let e = load(&format!("[project]\nmigrations = \"{bad}\"\n"), &[]).unwrap_err();
        assert!(matches!(e, ConfigError::Invalid { .. }), "{bad}: {e}");
    }
}

#[test]
fn environment_policy_overrides_security_section() {
    let c = Config::from_str(
        "[security]\nrequire_signature = true\n[environments.dev]\nrequire_signature = false\n[environments.prod]\n",
        Path::new("/p/squizzle.toml"),
        &Env::default(),
        Some("dev"),
    )
    .unwrap();
    assert!(!c.require_signature());
    let c = Config::from_str(
        "[security]\nrequire_signature = true\n[environments.prod]\n",
        Path::new("/p/squizzle.toml"),
        &Env::default(),
        Some("prod"),
    )
    .unwrap();
    assert!(c.require_signature());
}

#[test]
fn syntax_errors_say_where() {
    let e = load("[project\n", &[]).unwrap_err();
    assert!(matches!(e, ConfigError::Syntax { .. }), "{e}");
    assert!(e.to_string().contains("line 1"), "{e}");
}

const TWO_ENVS: &str = r#"
[environments.staging]
database_url = "${STAGING_DATABASE_URL}"
[environments.production]
database_url = "${PRODUCTION_DATABASE_URL}"
"#;

fn load_env(
    text: &str,
    env: &[(&str, &str)],
    selected: Option<&str>,
) -> Result<Config, ConfigError> {
    Config::from_str(
        text,
        Path::new("/proj/squizzle.toml"),
        &Env::from_pairs(env.iter().copied()),
        selected,
    )
}

#[test]
fn an_unset_variable_of_an_environment_nobody_uses_breaks_nothing() {
    // No environment selected (build, verify): neither variable is needed.
    let c = load_env(TWO_ENVS, &[], None).unwrap();
    assert!(c.check_database_url().is_ok());
    assert_eq!(c.environments["production"].database_url, None);
    assert_eq!(
        c.environments["production"].unresolved,
        vec![Unresolved {
            key: "database_url".into(),
            var: "PRODUCTION_DATABASE_URL".into()
        }]
    );
    // --env staging: only staging's variable is read.
    let c = load_env(
        TWO_ENVS,
        &[("STAGING_DATABASE_URL", "postgres://app@staging/db")],
        Some("staging"),
    )
    .unwrap();
    c.check_database_url().unwrap();
    assert_eq!(
        c.active_environment().database_url.as_deref(),
        Some("postgres://app@staging/db")
    );
}

#[test]
fn the_selected_environments_unset_database_url_fails_when_a_command_connects() {
    let c = load_env(TWO_ENVS, &[], Some("production")).unwrap();
    let e = c.check_database_url().unwrap_err();
    assert!(matches!(e, ConfigError::UnsetVariable { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("environments.production.database_url"),
        "{msg}"
    );
    assert!(msg.contains("PRODUCTION_DATABASE_URL"), "{msg}");
}

#[test]
fn database_url_from_the_environment_means_the_files_reference_is_never_expanded() {
    let c = load_env(
        TWO_ENVS,
        &[("DATABASE_URL", "postgres://app@override/db")],
        Some("production"),
    )
    .unwrap();
    c.check_database_url().unwrap();
    assert_eq!(
        c.active_environment().database_url.as_deref(),
        Some("postgres://app@override/db")
    );
    assert!(c.environments["production"].unresolved.is_empty());
    // Still checked for a literal password, though.
    let e = load_env(
        "[environments.production]\ndatabase_url = \"postgres://u:hunter2@h/db\"\n",
        &[("DATABASE_URL", "postgres://app@override/db")],
        None,
    )
    .unwrap_err();
    assert!(matches!(e, ConfigError::LiteralSecret { .. }), "{e}");
}

#[test]
fn the_selected_environments_policy_keys_still_fail_at_once() {
    let text = "[environments.production]\nhistory_schema = \"${SCHEMA}\"\n";
    assert!(load_env(text, &[], None).is_ok());
    let e = load_env(text, &[], Some("production")).unwrap_err();
    assert!(matches!(e, ConfigError::UnsetVariable { .. }), "{e}");
}

#[test]
fn the_literal_password_hint_names_a_password_variable_not_the_url() {
    let e = load(
        "[environments.staging]\ndatabase_url = \"postgres://app:hunter2@db/app\"\n",
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("postgres://USER:${STAGING_DATABASE_PASSWORD}@HOST/DB"),
        "{e}"
    );
    assert!(!e.contains("USER:${STAGING_DATABASE_URL}"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
}

#[test]
fn an_unknown_environment_with_none_defined_does_not_offer_the_implicit_default() {
    let e = load_env(
        "",
        &[("DATABASE_URL", "postgres://app@db/app")],
        Some("prod"),
    )
    .unwrap_err()
    .to_string();
    assert!(!e.contains("default"), "{e}");
    assert!(e.contains("defines no environments"), "{e}");
    assert!(e.contains("[environments.prod]"), "{e}");
}

#[test]
fn without_a_file_releases_go_to_the_users_cache_folder() {
    let env = Env::from_pairs([("XDG_CACHE_HOME", "/xdg"), ("HOME", "/home/u")]);
    let c = Config::without_file(Path::new("/empty"), &env, None).unwrap();
    assert!(!c.has_file());
    assert_eq!(c.store_dir(), Path::new("/xdg/squizzle/oci"));
    let env = Env::from_pairs([("XDG_CACHE_HOME", "relative"), ("HOME", "/home/u")]);
    let c = Config::without_file(Path::new("/empty"), &env, None).unwrap();
    assert_eq!(c.store_dir(), Path::new("/home/u/.cache/squizzle/oci"));
    let e = Config::without_file(Path::new("/empty"), &Env::default(), None).unwrap_err();
    assert!(matches!(e, ConfigError::NoCacheFolder { .. }), "{e}");
    // --env needs a file that defines the environment.
    let e = Config::without_file(Path::new("/empty"), &env, Some("production")).unwrap_err();
    assert!(matches!(e, ConfigError::NoFileForEnvironment { .. }), "{e}");
    assert!(e.to_string().contains("no squizzle.toml"), "{e}");
}

#[test]
fn registry_credentials_and_history_schema_come_from_variables_too() {
    let env = Env::from_pairs([
        ("HOME", "/home/u"),
        ("SQUIZZLE_REGISTRY", "registry.example/acme/db"),
        ("SQUIZZLE_REGISTRY_USERNAME", "deployer"),
        ("SQUIZZLE_REGISTRY_PASSWORD", "pw-from-a-ci-secret"),
        ("SQUIZZLE_HISTORY_SCHEMA", "deploy_history"),
    ]);
    let c = Config::without_file(Path::new("/empty"), &env, None).unwrap();
    let r = c.registry.as_ref().unwrap();
    assert_eq!(r.url.as_deref(), Some("registry.example/acme/db"));
    assert_eq!(r.username.as_deref(), Some("deployer"));
    assert_eq!(r.password.as_deref(), Some("pw-from-a-ci-secret"));
    assert_eq!(
        c.active_environment().history_schema.as_deref(),
        Some("deploy_history")
    );
    assert_eq!(
        redact::redact("auth failed for pw-from-a-ci-secret"),
        "auth failed for ***"
    );
    // An invalid schema name from the variable is refused like one in the file.
    let e = load_env("", &[("SQUIZZLE_HISTORY_SCHEMA", "bad name; drop")], None).unwrap_err();
    assert!(matches!(e, ConfigError::Invalid { .. }), "{e}");
}

#[test]
fn without_a_file_variables_are_validated_like_the_files_keys() {
    let env = Env::from_pairs([
        ("HOME", "/home/u"),
        ("SQUIZZLE_HISTORY_SCHEMA", "bad name; drop"),
    ]);
    let e = Config::without_file(Path::new("/empty"), &env, None).unwrap_err();
    assert!(matches!(e, ConfigError::Invalid { .. }), "{e}");
    assert!(e.to_string().contains("no squizzle.toml"), "{e}");
}
