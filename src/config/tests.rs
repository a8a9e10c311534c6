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
