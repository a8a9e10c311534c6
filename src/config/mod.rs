//! `squizzle.toml`: discovery, `${VAR}` expansion, secret rules, env overrides.
//!
//! Secrets never come from the file itself: any key that holds a credential must
//! be a `${VAR}` reference, and URLs may only carry a password through one. A
//! literal secret is refused with the key's name and the fix. Expanded secret
//! values are registered with [`crate::core::redact`] so they are masked in every
//! message from then on. Expansion happens on parsed string values, never on the
//! TOML text, so a variable's content cannot change the file's structure.
//!
//! This module reads files and the process environment; it never prints.

mod expand;
pub mod targets;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::core::paths;
use crate::core::redact;

pub use crate::core::env::Env;

pub const FILE_NAME: &str = "squizzle.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no {FILE_NAME} found in {start} or any parent directory; run `squizzle init` to create one, or pass --config PATH"
    )]
    NotFound { start: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(
        "{path}: `{key}` contains a literal {what}. Secrets are never read from the config file: put the value in an environment variable and write {fix}"
    )]
    LiteralSecret {
        path: PathBuf,
        key: String,
        what: &'static str,
        fix: String,
    },
    #[error(
        "{path}: `{key}` refers to ${{{var}}}, which is not set; export {var} or write ${{{var}:-default}}"
    )]
    UnsetVariable {
        path: PathBuf,
        key: String,
        var: String,
    },
    #[error("{path}: `{key}`: {message}")]
    BadReference {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("environment {name:?} is not defined in {path}; {known}")]
    UnknownEnvironment {
        path: PathBuf,
        name: String,
        known: String,
    },
    #[error(
        "--env {name} (or SQUIZZLE_ENV) names an environment, but there is no {FILE_NAME} in {start} or any parent directory to define it; without a config file, drop --env and give the database with DATABASE_URL (or the PG* variables), or pass --config PATH"
    )]
    NoFileForEnvironment { name: String, start: PathBuf },
    #[error(
        "no {FILE_NAME} found in {start} or any parent directory, and no cache folder to keep releases in (neither XDG_CACHE_HOME nor HOME is set); run in a project, pass --config PATH, or set XDG_CACHE_HOME"
    )]
    NoCacheFolder { start: PathBuf },
}

/// Which folder layout the migrations use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum MigrationFormat {
    /// Detected from the folder (see `artifact::collect::detect`).
    #[default]
    Auto,
    Drizzle,
    Plain,
    Prisma,
    Flyway,
    Sqlx,
    GolangMigrate,
    Dbmate,
    Atlas,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Project {
    pub name: Option<String>,
    pub migrations: String,
    pub format: MigrationFormat,
    pub rollbacks: Option<String>,
    pub seeds: Option<String>,
    pub tarballs: String,
    pub store: String,
}

impl Default for Project {
    fn default() -> Self {
        Self {
            name: None,
            migrations: "migrations".into(),
            format: MigrationFormat::Auto,
            rollbacks: None,
            seeds: None,
            tarballs: "db/tarballs".into(),
            store: "db/oci".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// `host[:port]/path/repo`; the tag is the version.
    pub url: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    #[serde(default)]
    pub insecure: bool,
    pub ca_file: Option<String>,
    /// Keys left out because a `${VAR}` they refer to is not set; only a
    /// command that talks to the registry is refused for them
    /// ([`Config::check_registry`]).
    #[serde(skip)]
    pub unresolved: Vec<Unresolved>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Security {
    /// Refuse to verify or apply a release that carries no valid signature.
    pub require_signature: bool,
    /// Who may sign releases (keyless): a signature is accepted when its
    /// certificate matches one of these. Environments may replace the list.
    pub signers: Vec<Signer>,
    /// Public keys (PEM files, project-relative) whose key-pair signatures are
    /// accepted.
    pub public_keys: Vec<String>,
    /// `trusted_root.json` of the Sigstore instance (project-relative).
    /// Default: the public-good root embedded in squizzle.
    pub trusted_root: Option<String>,
    /// Signing services of a private instance. Default: public-good.
    pub fulcio_url: Option<String>,
    pub rekor_url: Option<String>,
    pub tsa_url: Option<String>,
    pub oidc_url: Option<String>,
    /// A Sigstore `signing_config.json` naming the services (instead of the URLs).
    pub signing_config: Option<String>,
    /// Refuse a release without a verified SLSA provenance statement.
    pub require_provenance: bool,
    /// Accepted provenance `builder.id` values (exact). Empty: any builder.
    pub builder_ids: Vec<String>,
    /// Accepted source repositories in provenance (exact). Empty: any.
    pub source_repositories: Vec<String>,
    /// Refuse to verify or apply (exit 3) when a configured registry cannot
    /// be asked for revocations published since the release was pulled, and
    /// refuse `--offline`. Default: false (warn and use local evidence).
    pub require_fresh_revocations: bool,
    /// Whose revocations are verified as authentic. Default: the signers.
    /// A revocation that does not verify still blocks the release.
    pub revokers: Option<Vec<Signer>>,
}

/// One accepted signer as written (`[[security.signers]]`): the raw spec,
/// turned into a rule by `core::policy`.
pub use crate::core::policy::SignerSpec as Signer;

/// Safety limits for reading release tarballs (see `artifact::unpack::Limits`).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_entries: Option<u64>,
    pub max_entry_bytes: Option<u64>,
    pub max_total_bytes: Option<u64>,
    pub max_ratio: Option<u64>,
}

/// How pending migrations are grouped into transactions.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, serde::Serialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum TxMode {
    /// Everything pending in one transaction (files marked no-transaction run alone).
    #[default]
    Release,
    /// Each migration commits on its own.
    File,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    pub database_url: Option<String>,
    pub require_signature: Option<bool>,
    /// Replaces `[security] signers` for this environment.
    pub signers: Option<Vec<Signer>>,
    pub require_provenance: Option<bool>,
    pub builder_ids: Option<Vec<String>>,
    pub source_repositories: Option<Vec<String>>,
    /// Schema for squizzle's own tables. Default: `squizzle`.
    pub history_schema: Option<String>,
    /// Finding categories or ids (docs/lint.md) that `apply` refuses unless
    /// the release carries an allowance for them.
    pub deny: Option<Vec<String>>,
    pub tx_mode: Option<TxMode>,
    /// How long to wait for the migration lock (e.g. `5m`).
    pub lock_timeout: Option<String>,
    /// PostgreSQL `statement_timeout` for migration statements.
    pub statement_timeout: Option<String>,
    /// PostgreSQL `lock_timeout`: how long one statement may wait for a table lock.
    pub statement_lock_timeout: Option<String>,
    /// The one schema migrations run in (`SET LOCAL search_path`); tenant
    /// schema targets set it to their schema.
    pub search_path: Option<String>,
    /// A fleet (docs/fleet.md): database URLs, or `{ name, database_url,
    /// schema }` tables.
    pub targets: Option<Vec<targets::TargetEntry>>,
    /// Tenant schemas in this environment's `database_url`.
    pub schemas: Option<Vec<String>>,
    /// A file of targets (project-relative): one URL per line, or TOML
    /// `[[targets]]` tables.
    pub targets_file: Option<String>,
    /// SQL run against `catalog_url` (default `database_url`) whose first
    /// column is a connection string or a tenant schema name (second: a name).
    pub targets_query: Option<String>,
    pub catalog_url: Option<String>,
    /// Where a tenant schema's history lives; `{schema}` is its name.
    /// Default `squizzle_{schema}`.
    pub tenant_history_schema: Option<String>,
    /// Keys left out because a `${VAR}` they refer to is not set; they only
    /// matter to a command that reads them.
    #[serde(skip)]
    pub unresolved: Vec<Unresolved>,
}

/// One key of an environment whose variable was not set when loading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    pub key: String,
    pub var: String,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileModel {
    #[serde(default)]
    project: Project,
    registry: Option<Registry>,
    #[serde(default)]
    security: Security,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    environments: BTreeMap<String, Environment>,
}

/// A loaded, expanded, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The project root: the directory holding `squizzle.toml`; without a
    /// file, squizzle's folder in the user's cache.
    pub root: PathBuf,
    /// `squizzle.toml`, or `None` when every setting comes from flags and
    /// the environment (a deploy job without a checkout).
    pub file: Option<PathBuf>,
    pub project: Project,
    pub registry: Option<Registry>,
    pub security: Security,
    pub limits: Limits,
    pub environments: BTreeMap<String, Environment>,
    /// Selected by `--env` or `SQUIZZLE_ENV`.
    pub environment: Option<String>,
    /// Docker's configuration folder (`$DOCKER_CONFIG`, else `~/.docker`),
    /// where registry credentials may be found.
    pub docker_config_dir: Option<PathBuf>,
    /// `SQUIZZLE_RETRY_BASE_MS`: shortens the registry retry waits.
    pub retry_base_ms: Option<u64>,
}

/// Keys whose value is a credential and must be a whole `${VAR}` reference.
fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "token", "passphrase", "secret"]
        .iter()
        .any(|s| k == *s || k.ends_with(&format!("_{s}")))
}

/// Keys whose value is a URL that may carry a password in its userinfo.
fn is_url_key(key: &str) -> bool {
    // `targets` holds plain URL strings (its tables have `database_url`).
    key == "url" || key.ends_with("_url") || key == "targets"
}

impl Config {
    /// Finds `squizzle.toml` (explicit path, or `start` and its parents) and loads it.
    pub fn discover(
        explicit: Option<&Path>,
        start: &Path,
        env: &Env,
        environment: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let file = match explicit {
            Some(p) => p.to_path_buf(),
            None => start
                .ancestors()
                .map(|d| d.join(FILE_NAME))
                .find(|p| p.is_file())
                .ok_or_else(|| ConfigError::NotFound {
                    start: start.to_path_buf(),
                })?,
        };
        tracing::debug!(file = %file.display(), "configuration file");
        let text = std::fs::read_to_string(&file).map_err(|source| ConfigError::Read {
            path: file.clone(),
            source,
        })?;
        Self::from_str(&text, &file, env, environment)
    }

    /// Like [`Config::discover`], but without a `squizzle.toml` the settings
    /// come from the environment alone and releases are kept in the user's
    /// cache folder (`$XDG_CACHE_HOME/squizzle`, else `~/.cache/squizzle`).
    /// An explicit path must exist.
    pub fn discover_or_defaults(
        explicit: Option<&Path>,
        start: &Path,
        env: &Env,
        environment: Option<&str>,
    ) -> Result<Self, ConfigError> {
        match Self::discover(explicit, start, env, environment) {
            Err(ConfigError::NotFound { start }) => Self::without_file(&start, env, environment),
            other => other,
        }
    }

    /// The configuration of a deploy job with no project checkout.
    pub fn without_file(
        start: &Path,
        env: &Env,
        environment: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let selected = environment
            .map(str::to_owned)
            .or_else(|| env.get("SQUIZZLE_ENV"))
            .filter(|n| !n.is_empty());
        if let Some(name) = selected {
            return Err(ConfigError::NoFileForEnvironment {
                name,
                start: start.to_path_buf(),
            });
        }
        let root = user_cache_dir(env)
            .ok_or_else(|| ConfigError::NoCacheFolder {
                start: start.to_path_buf(),
            })?
            .join("squizzle");
        tracing::debug!(
            start = %start.display(),
            store = %root.display(),
            "no squizzle.toml here or above: settings from flags and variables, releases in the user cache"
        );
        let mut cfg = Config {
            root,
            file: None,
            project: Project {
                store: "oci".into(),
                tarballs: "bundles".into(),
                ..Project::default()
            },
            registry: None,
            security: Security::default(),
            limits: Limits::default(),
            environments: BTreeMap::new(),
            environment: None,
            docker_config_dir: None,
            retry_base_ms: None,
        };
        cfg.apply_env_overrides(env);
        cfg.validate()?;
        Ok(cfg)
    }

    /// Whether the settings come from a `squizzle.toml`.
    pub fn has_file(&self) -> bool {
        self.file.is_some()
    }

    /// The file for messages; without one, a phrase saying so.
    pub fn source(&self) -> PathBuf {
        self.file.clone().unwrap_or_else(|| {
            PathBuf::from("(no squizzle.toml: settings from flags and variables)")
        })
    }

    /// Refuses, with the variable to set, when the active environment's
    /// `database_url` refers to a variable that is not set. Commands that
    /// connect call this first; others never need the value.
    pub fn check_database_url(&self) -> Result<(), ConfigError> {
        let name = self
            .environment
            .clone()
            .unwrap_or_else(|| "default".to_owned());
        match self.unresolved_error(&name, Some("database_url")) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Refuses, with the variable to set, when a `[registry]` key the
    /// registry client reads refers to a variable that is not set (and no
    /// `SQUIZZLE_REGISTRY*` variable replaced it). Commands call this when
    /// they are about to talk to the registry.
    pub fn check_registry(&self) -> Result<(), ConfigError> {
        match self.registry.as_ref().and_then(|r| r.unresolved.first()) {
            Some(u) => Err(ConfigError::UnsetVariable {
                path: self.source(),
                key: format!("registry.{}", u.key),
                var: u.var.clone(),
            }),
            None => Ok(()),
        }
    }

    /// The error for a key of environment `name` left unresolved (any key
    /// when `key` is `None`).
    pub fn unresolved_error(&self, name: &str, key: Option<&str>) -> Option<ConfigError> {
        let u = self
            .environments
            .get(name)?
            .unresolved
            .iter()
            .find(|u| key.is_none_or(|k| u.key == k))?;
        Some(ConfigError::UnsetVariable {
            path: self.source(),
            key: format!("environments.{name}.{}", u.key),
            var: u.var.clone(),
        })
    }

    /// Parses `text` as the contents of `file` (whose directory is the project root).
    pub fn from_str(
        text: &str,
        file: &Path,
        env: &Env,
        environment: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let path = file.to_path_buf();
        // Only the parser's message and position: its default rendering quotes
        // the offending line, which may hold a secret the user mistyped.
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let position = e.span().map(|span| {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                format!("line {line}, column {column}: ")
            });
            ConfigError::Syntax {
                path: path.clone(),
                message: format!("{}{}", position.unwrap_or_default(), e.message()),
            }
        })?;
        let selected = environment
            .map(str::to_owned)
            .or_else(|| env.get("SQUIZZLE_ENV"))
            .filter(|n| !n.is_empty());
        let plan = expand::Plan {
            selected: Some(selected.as_deref().unwrap_or("default")),
            database_url_from_env: env.get("DATABASE_URL").is_some_and(|u| !u.is_empty()),
        };
        let deferred =
            expand::check_and_expand(&mut table, &path, env, is_secret_key, is_url_key, &plan)?;
        let model: FileModel =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Invalid {
                    path: path.clone(),
                    message: e.to_string(),
                })?;

        let root = file
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let mut environments = model.environments;
        let mut registry = model.registry;
        for d in deferred {
            let ConfigError::UnsetVariable { var, .. } = d.error else {
                continue;
            };
            let unresolved = Unresolved { key: d.key, var };
            match &d.environment {
                Some(name) => {
                    if let Some(e) = environments.get_mut(name) {
                        e.unresolved.push(unresolved);
                    }
                }
                None => registry
                    .get_or_insert_with(Registry::default)
                    .unresolved
                    .push(unresolved),
            }
        }
        let defined: Vec<String> = environments.keys().cloned().collect();
        let mut cfg = Config {
            root,
            file: Some(path.clone()),
            project: model.project,
            registry,
            security: model.security,
            limits: model.limits,
            environments,
            environment: None,
            docker_config_dir: None,
            retry_base_ms: None,
        };
        cfg.apply_env_overrides(env);
        cfg.validate()?;
        cfg.select_environment(selected, &defined)?;
        Ok(cfg)
    }

    fn apply_env_overrides(&mut self, env: &Env) {
        self.docker_config_dir = env
            .get("DOCKER_CONFIG")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                env.get("HOME")
                    .filter(|h| !h.is_empty())
                    .map(|h| Path::new(&h).join(".docker"))
            });
        self.retry_base_ms = env
            .get("SQUIZZLE_RETRY_BASE_MS")
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(url) = env.get("SQUIZZLE_REGISTRY").filter(|s| !s.is_empty()) {
            let r = self.registry.get_or_insert_with(Registry::default);
            r.url = Some(url);
        }
        if let Some(user) = env
            .get("SQUIZZLE_REGISTRY_USERNAME")
            .filter(|s| !s.is_empty())
        {
            let r = self.registry.get_or_insert_with(Registry::default);
            r.username = Some(user);
            r.unresolved.retain(|u| u.key != "username");
        }
        if let Some(pw) = env
            .get("SQUIZZLE_REGISTRY_PASSWORD")
            .filter(|s| !s.is_empty())
        {
            redact::register_secret(&pw);
            let r = self.registry.get_or_insert_with(Registry::default);
            r.password = Some(pw);
            r.unresolved.retain(|u| u.key != "password");
        }
        if let Some(token) = env.get("SQUIZZLE_REGISTRY_TOKEN").filter(|s| !s.is_empty()) {
            redact::register_secret(&token);
            let r = self.registry.get_or_insert_with(Registry::default);
            r.token = Some(token);
            r.unresolved.retain(|u| u.key != "token");
        }
        if let Some(schema) = env.get("SQUIZZLE_HISTORY_SCHEMA").filter(|s| !s.is_empty()) {
            // Like DATABASE_URL: for whichever environment runs.
            for e in self.environments.values_mut() {
                e.history_schema = Some(schema.clone());
            }
            self.environments
                .entry("default".into())
                .or_default()
                .history_schema = Some(schema);
        }
        if let Some(url) = env.get("DATABASE_URL").filter(|s| !s.is_empty()) {
            register_url_password(&url);
            // DATABASE_URL wins over the file for whichever environment runs
            // (the file's value was never expanded).
            for e in self.environments.values_mut() {
                e.database_url = Some(url.clone());
                e.unresolved.retain(|u| u.key != "database_url");
            }
            self.environments
                .entry("default".into())
                .or_default()
                .database_url = Some(url);
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: self.source(),
            message,
        };
        for (key, value) in [
            ("project.migrations", Some(&self.project.migrations)),
            ("project.tarballs", Some(&self.project.tarballs)),
            ("project.store", Some(&self.project.store)),
            ("project.rollbacks", self.project.rollbacks.as_ref()),
            ("project.seeds", self.project.seeds.as_ref()),
        ] {
            if let Some(v) = value {
                let trimmed = v.trim_end_matches('/');
                paths::validate_relative(trimmed).map_err(|e| {
                    invalid(format!(
                        "`{key}` = {v:?} {e}; it must be a folder inside the project, relative to {}",
                        self.root.display()
                    ))
                })?;
            }
        }
        for name in self.environments.keys() {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(invalid(format!(
                    "environment name {name:?} may only contain letters, digits, '-' and '_'"
                )));
            }
        }
        for (name, e) in &self.environments {
            for (key, value) in [
                ("lock_timeout", &e.lock_timeout),
                ("statement_timeout", &e.statement_timeout),
                ("statement_lock_timeout", &e.statement_lock_timeout),
            ] {
                if let Some(v) = value {
                    crate::core::duration::parse(v)
                        .map_err(|m| invalid(format!("`environments.{name}.{key}`: {m}")))?;
                }
            }
            if let Some(schema) = &e.history_schema {
                crate::core::ident::Ident::new(schema)
                    .map_err(|m| invalid(format!("`environments.{name}.history_schema`: {m}")))?;
            }
            if let Some(schema) = &e.search_path {
                crate::core::ident::Ident::new(schema)
                    .map_err(|m| invalid(format!("`environments.{name}.search_path`: {m}")))?;
            }
            targets::validate(name, e).map_err(invalid)?;
        }
        let mut signer_lists: Vec<(String, &Vec<Signer>)> =
            vec![("security.signers".into(), &self.security.signers)];
        for (name, e) in &self.environments {
            if let Some(list) = &e.signers {
                signer_lists.push((format!("environments.{name}.signers"), list));
            }
        }
        if let Some(list) = &self.security.revokers {
            signer_lists.push(("security.revokers".into(), list));
        }
        for (key, list) in signer_lists {
            for (i, s) in list.iter().enumerate() {
                crate::core::policy::SignerRule::from_spec(s)
                    .map_err(|m| invalid(format!("`{key}[{i}]`: {m}")))?;
            }
        }
        for (key, value) in [
            ("security.trusted_root", self.security.trusted_root.as_ref()),
            (
                "security.signing_config",
                self.security.signing_config.as_ref(),
            ),
        ]
        .into_iter()
        .chain(
            self.security
                .public_keys
                .iter()
                .map(|k| ("security.public_keys", Some(k))),
        ) {
            if let Some(v) = value
                && v.trim().is_empty()
            {
                return Err(invalid(format!(
                    "`{key}` is empty; give a file path or remove the key"
                )));
            }
        }
        if let Some(l) = &self.limits.max_ratio
            && *l == 0
        {
            return Err(invalid("`limits.max_ratio` must be at least 1".into()));
        }
        Ok(())
    }

    /// `defined`: the environments the file names (DATABASE_URL's implicit
    /// `default` is not one a user can be told to pick).
    fn select_environment(
        &mut self,
        name: Option<String>,
        defined: &[String],
    ) -> Result<(), ConfigError> {
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            if !self.environments.contains_key(&name) {
                return Err(ConfigError::UnknownEnvironment {
                    path: self.source(),
                    name: name.clone(),
                    known: if defined.is_empty() {
                        format!(
                            "it defines no environments; add an [environments.{name}] section with its database_url, or drop --env"
                        )
                    } else {
                        format!("defined: {}", defined.join(", "))
                    },
                });
            }
            self.environment = Some(name);
        }
        Ok(())
    }

    /// Resolves a project-relative folder to a path under the root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_end_matches('/'))
    }

    pub fn migrations_dir(&self) -> PathBuf {
        self.path(&self.project.migrations)
    }
    pub fn tarballs_dir(&self) -> PathBuf {
        self.path(&self.project.tarballs)
    }
    pub fn store_dir(&self) -> PathBuf {
        self.path(&self.project.store)
    }

    /// The selected environment's settings (an empty default when none is selected).
    pub fn active_environment(&self) -> Environment {
        self.environment
            .as_ref()
            .and_then(|n| self.environments.get(n))
            .or_else(|| self.environments.get("default"))
            .cloned()
            .unwrap_or_default()
    }

    /// Whether the active policy requires a signature: the environment's setting
    /// when one is selected and says so, otherwise `[security]`.
    pub fn require_signature(&self) -> bool {
        self.selected()
            .and_then(|e| e.require_signature)
            .unwrap_or(self.security.require_signature)
    }

    /// The environment selected with `--env`/`SQUIZZLE_ENV`, for policy keys
    /// it may override.
    fn selected(&self) -> Option<&Environment> {
        self.environment
            .as_ref()
            .and_then(|n| self.environments.get(n))
    }

    /// Whether the active policy requires verified provenance.
    pub fn require_provenance(&self) -> bool {
        self.selected()
            .and_then(|e| e.require_provenance)
            .unwrap_or(self.security.require_provenance)
    }

    /// Accepted provenance builder ids (empty: any).
    pub fn builder_ids(&self) -> Vec<String> {
        self.selected()
            .and_then(|e| e.builder_ids.clone())
            .unwrap_or_else(|| self.security.builder_ids.clone())
    }

    /// Accepted provenance source repositories (empty: any).
    pub fn source_repositories(&self) -> Vec<String> {
        self.selected()
            .and_then(|e| e.source_repositories.clone())
            .unwrap_or_else(|| self.security.source_repositories.clone())
    }

    /// Whose revocations verify as authentic: `[security] revokers`, else the
    /// active signers.
    pub fn revokers(&self) -> Vec<Signer> {
        self.security
            .revokers
            .clone()
            .unwrap_or_else(|| self.signers())
    }

    /// The accepted keyless signers: the selected environment's list when it
    /// has one, otherwise `[security] signers`.
    pub fn signers(&self) -> Vec<Signer> {
        self.selected()
            .and_then(|e| e.signers.clone())
            .unwrap_or_else(|| self.security.signers.clone())
    }
}

/// The user's cache folder: `$XDG_CACHE_HOME` when it is an absolute path
/// (the XDG rule), else `$HOME/.cache`.
fn user_cache_dir(env: &Env) -> Option<PathBuf> {
    env.get("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            env.get("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| Path::new(&h).join(".cache"))
        })
}

/// Registers the password in a URL's userinfo (if any) as a secret.
pub fn register_url_password(url: &str) {
    if let Some(pw) = crate::core::url::userinfo_password(url) {
        redact::register_secret(pw);
        if let Some(decoded) = crate::core::url::percent_decode(pw) {
            redact::register_secret(&decoded);
        }
    }
}

#[cfg(test)]
mod tests;
