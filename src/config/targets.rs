//! Fleets: the many databases, or tenant schemas, that one environment names.
//!
//! An environment becomes a fleet with any of `targets` (URLs or
//! `{ name, database_url, schema }` tables), `schemas` (tenant schemas in its
//! `database_url`), `targets_file` (one URL per line, or TOML `[[targets]]`)
//! and `targets_query` (SQL the caller runs against the catalog database).
//! Everything here is what the file says; asking the catalog is the caller's
//! job, since the configuration never connects to a database.
//!
//! A targets file follows the rules of `squizzle.toml`: a password in a URL
//! only through a whole `${VAR}`, expanded values registered as secrets.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Config, ConfigError, Environment, expand};
use crate::core::env::Env;
use crate::core::ident::Ident;

/// Where a tenant schema's history lives unless the environment says.
pub const DEFAULT_TENANT_HISTORY: &str = "squizzle_{schema}";

/// One entry of `targets` as written.
#[derive(Debug, Clone)]
pub enum TargetEntry {
    Url(String),
    Table(TargetTable),
}

// By hand rather than `#[serde(untagged)]`, whose only error is "did not
// match any variant": a misspelt key in a table is named this way.
impl<'de> Deserialize<'de> for TargetEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entry;
        impl<'de> serde::de::Visitor<'de> for Entry {
            type Value = TargetEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a database URL, or a table { name, database_url, schema }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TargetEntry, E> {
                Ok(TargetEntry::Url(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<TargetEntry, A::Error> {
                TargetTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(TargetEntry::Table)
            }
        }
        d.deserialize_any(Entry)
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TargetTable {
    pub name: Option<String>,
    pub database_url: Option<String>,
    pub schema: Option<String>,
}

/// One configured target. `database_url: None` means the environment's
/// `database_url` (a tenant schema in the shared database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: Option<String>,
    pub database_url: Option<String>,
    pub schema: Option<String>,
}

impl From<TargetEntry> for Target {
    fn from(e: TargetEntry) -> Self {
        match e {
            TargetEntry::Url(url) => Target {
                name: None,
                database_url: Some(url),
                schema: None,
            },
            TargetEntry::Table(t) => Target {
                name: t.name,
                database_url: t.database_url,
                schema: t.schema,
            },
        }
    }
}

/// The fleet of the selected environment, as configured.
#[derive(Debug, Clone)]
pub struct FleetSpec {
    /// `targets` then `schemas`, in the file's order.
    pub listed: Vec<Target>,
    pub file: Option<PathBuf>,
    pub query: Option<String>,
    /// Where `query` runs: `catalog_url`, else `database_url`.
    pub catalog_url: Option<String>,
    /// The environment's `database_url`: the database of tenant schemas.
    pub database_url: Option<String>,
    /// `tenant_history_schema`, with `{schema}` still in it.
    pub tenant_history: String,
    /// The environment's `history_schema` for whole-database targets.
    pub history_schema: Option<String>,
}

impl FleetSpec {
    /// The history schema of a tenant schema target.
    pub fn tenant_history_schema(&self, schema: &str) -> Result<String, String> {
        let name = self.tenant_history.replace("{schema}", schema);
        Ident::new(&name).map_err(|e| {
            format!(
                "the history schema of tenant {schema:?} would be {name:?} (tenant_history_schema = {:?}): {e}",
                self.tenant_history
            )
        })?;
        Ok(name)
    }
}

fn is_fleet(e: &Environment) -> bool {
    e.targets.is_some()
        || e.schemas.is_some()
        || e.targets_file.is_some()
        || e.targets_query.is_some()
}

impl Environment {
    /// Whether this environment names a fleet rather than one database.
    pub fn is_fleet(&self) -> bool {
        is_fleet(self)
    }
}

/// Refuses what cannot describe a target, with the key to fix.
pub(super) fn validate(name: &str, e: &Environment) -> Result<(), String> {
    let key = |k: &str| format!("`environments.{name}.{k}`");
    for (i, t) in e.targets.iter().flatten().enumerate() {
        if let TargetEntry::Table(t) = t {
            if t.database_url.is_none() && t.schema.is_none() {
                return Err(format!(
                    "{}[{i}] names neither a database_url nor a schema; give one of them",
                    key("targets")
                ));
            }
            if let Some(s) = &t.schema {
                Ident::new(s).map_err(|m| format!("{}[{i}].schema: {m}", key("targets")))?;
            }
            if t.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
                return Err(format!(
                    "{}[{i}].name is empty; remove it or name the target",
                    key("targets")
                ));
            }
        }
    }
    for (i, s) in e.schemas.iter().flatten().enumerate() {
        Ident::new(s).map_err(|m| format!("{}[{i}]: {m}", key("schemas")))?;
    }
    if let Some(t) = &e.tenant_history_schema
        && !t.contains("{schema}")
    {
        return Err(format!(
            "{} = {t:?} has no {{schema}}: every tenant needs a history of its own (e.g. \"squizzle_{{schema}}\", or \"{{schema}}\" for the tenant's own schema)",
            key("tenant_history_schema")
        ));
    }
    if is_fleet(e) && e.search_path.is_some() {
        return Err(format!(
            "{} cannot be combined with a fleet: each tenant schema target sets its own search_path",
            key("search_path")
        ));
    }
    if let Some(q) = &e.targets_query
        && q.trim().is_empty()
    {
        return Err(format!(
            "{} is empty; give the SQL that lists the targets",
            key("targets_query")
        ));
    }
    Ok(())
}

impl Config {
    /// The selected environment's fleet, or `None` for a single database.
    pub fn fleet(&self) -> Option<FleetSpec> {
        self.fleet_of(&self.active_environment())
    }

    /// The fleet environment `e` names, or `None` for a single database.
    pub fn fleet_of(&self, e: &Environment) -> Option<FleetSpec> {
        if !is_fleet(e) {
            return None;
        }
        let mut listed: Vec<Target> = e
            .targets
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(Target::from)
            .collect();
        listed.extend(e.schemas.iter().flatten().map(|s| Target {
            name: None,
            database_url: None,
            schema: Some(s.clone()),
        }));
        Some(FleetSpec {
            listed,
            file: e.targets_file.as_deref().map(|f| self.root.join(f)),
            query: e.targets_query.clone(),
            catalog_url: e.catalog_url.clone().or_else(|| e.database_url.clone()),
            database_url: e.database_url.clone(),
            tenant_history: e
                .tenant_history_schema
                .clone()
                .unwrap_or_else(|| DEFAULT_TENANT_HISTORY.to_owned()),
            history_schema: e.history_schema.clone(),
        })
    }

    /// This configuration narrowed to one target of its fleet: the selected
    /// environment's database, history schema and search path replaced, the
    /// fleet keys gone, every policy kept.
    pub fn for_target(
        &self,
        database_url: &str,
        history_schema: Option<&str>,
        search_path: Option<&str>,
    ) -> Config {
        let mut c = self.clone();
        let name = c
            .environment
            .clone()
            .unwrap_or_else(|| "default".to_owned());
        let e = c.environments.entry(name).or_default();
        e.database_url = Some(database_url.to_owned());
        e.unresolved.retain(|u| u.key != "database_url");
        e.history_schema = history_schema.map(str::to_owned);
        e.search_path = search_path.map(str::to_owned);
        e.targets = None;
        e.schemas = None;
        e.targets_file = None;
        e.targets_query = None;
        c
    }
}

/// Reads a targets file: TOML (`.toml`, with `targets = [...]` or
/// `[[targets]]` tables) or one URL per line (blank lines and `#` comments
/// skipped). `${VAR}` expands as in `squizzle.toml`.
pub fn read_file(path: &Path, env: &Env) -> Result<Vec<Target>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut table: toml::Table = if path.extension().is_some_and(|x| x == "toml") {
        text.parse()
            .map_err(|e: toml::de::Error| ConfigError::Syntax {
                path: path.to_path_buf(),
                // The parser's message only: its rendering quotes the line.
                message: e.message().to_owned(),
            })?
    } else {
        let lines: Vec<toml::Value> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| toml::Value::String(l.to_owned()))
            .collect();
        let mut t = toml::Table::new();
        t.insert("targets".into(), toml::Value::Array(lines));
        t
    };
    let plan = expand::Plan {
        selected: None,
        database_url_from_env: false,
    };
    expand::check_and_expand(
        &mut table,
        path,
        env,
        super::is_secret_key,
        super::is_url_key,
        &plan,
    )?;
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[serde(default)]
        targets: Vec<TargetEntry>,
    }
    let file: File =
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid {
                path: path.to_path_buf(),
                message: format!(
                    "{}; expected `targets = [\"postgres://...\", {{ name = \"...\", database_url = \"...\", schema = \"...\" }}]`",
                    e.message()
                ),
            })?;
    let env_like = Environment {
        targets: Some(file.targets.clone()),
        ..Environment::default()
    };
    validate("(file)", &env_like).map_err(|message| ConfigError::Invalid {
        path: path.to_path_buf(),
        message: message.replace("`environments.(file).targets`", "`targets`"),
    })?;
    Ok(file.targets.into_iter().map(Target::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::from_pairs(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn a_line_file_expands_variables_and_refuses_a_literal_password() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fleet.txt");
        std::fs::write(
            &p,
            "# eu\npostgres://app:${EU_PW}@eu/db\n\n  postgres://us/db  \n",
        )
        .unwrap();
        let t = read_file(&p, &env(&[("EU_PW", "s3cret")])).unwrap();
        assert_eq!(
            t.iter()
                .map(|t| t.database_url.clone().unwrap())
                .collect::<Vec<_>>(),
            ["postgres://app:s3cret@eu/db", "postgres://us/db"]
        );
        std::fs::write(&p, "postgres://app:hunter2@eu/db\n").unwrap();
        let e = read_file(&p, &env(&[])).unwrap_err().to_string();
        assert!(e.contains("literal password"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        std::fs::write(&p, "postgres://app:${NOPE}@eu/db\n").unwrap();
        let e = read_file(&p, &env(&[])).unwrap_err().to_string();
        assert!(e.contains("NOPE"), "{e}");
    }

    #[test]
    fn a_toml_file_holds_tables_and_refuses_one_without_a_database_or_schema() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fleet.toml");
        std::fs::write(
            &p,
            "[[targets]]\nname = \"eu\"\ndatabase_url = \"postgres://eu/db\"\n[[targets]]\nschema = \"tenant_a\"\n",
        )
        .unwrap();
        let t = read_file(&p, &env(&[])).unwrap();
        assert_eq!(t[0].name.as_deref(), Some("eu"));
        assert_eq!(t[1].schema.as_deref(), Some("tenant_a"));
        std::fs::write(&p, "[[targets]]\nname = \"eu\"\n").unwrap();
        let e = read_file(&p, &env(&[])).unwrap_err().to_string();
        assert!(e.contains("neither a database_url nor a schema"), "{e}");
        std::fs::write(&p, "[[targets]]\nschema = \"Bad-Name\"\n").unwrap();
        assert!(read_file(&p, &env(&[])).is_err());
        std::fs::write(&p, "[[targets]]\nnmae = \"eu\"\nschema = \"t\"\n").unwrap();
        let e = read_file(&p, &env(&[])).unwrap_err().to_string();
        assert!(e.contains("unknown field `nmae`"), "{e}");
        std::fs::write(&p, "targets = [42]\n").unwrap();
        let e = read_file(&p, &env(&[])).unwrap_err().to_string();
        assert!(e.contains("a database URL, or a table"), "{e}");
    }

    #[test]
    fn a_tenant_history_schema_is_the_template_with_the_tenant_in_it() {
        let spec = FleetSpec {
            listed: vec![],
            file: None,
            query: None,
            catalog_url: None,
            database_url: None,
            tenant_history: DEFAULT_TENANT_HISTORY.into(),
            history_schema: None,
        };
        assert_eq!(
            spec.tenant_history_schema("tenant_a").unwrap(),
            "squizzle_tenant_a"
        );
        let long = "t".repeat(60);
        assert!(spec.tenant_history_schema(&long).is_err());
    }
}
