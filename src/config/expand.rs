//! `${VAR}` expansion over parsed TOML values, and the literal-secret check.

use std::path::Path;

use super::ConfigError;
use crate::core::env::Env;
use crate::core::redact;

/// `${NAME}` exactly, nothing around it.
fn is_whole_reference(s: &str) -> bool {
    s.strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .is_some_and(is_var_name)
}

fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Expands `${NAME}` and `${NAME:-default}`; `$${` stands for a literal `${`.
fn expand(raw: &str, key: &str, path: &Path, env: &Env) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail.find('}').ok_or_else(|| ConfigError::BadReference {
                path: path.to_path_buf(),
                key: key.to_owned(),
                message: "a `${` is never closed by `}`; write `$${` for a literal `${`".into(),
            })?;
            let inner = &tail[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            if !is_var_name(name) {
                return Err(ConfigError::BadReference {
                    path: path.to_path_buf(),
                    key: key.to_owned(),
                    message: format!(
                        "`${{{inner}}}` is not a variable reference; names are letters, digits and '_'"
                    ),
                });
            }
            match (env.get(name), default) {
                (Some(v), _) if !v.is_empty() => out.push_str(&v),
                (_, Some(d)) => out.push_str(d),
                (Some(_), None) | (None, None) => {
                    return Err(ConfigError::UnsetVariable {
                        path: path.to_path_buf(),
                        key: key.to_owned(),
                        var: name.to_owned(),
                    });
                }
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn literal_secret(path: &Path, key: &str, what: &'static str, fix: String) -> ConfigError {
    ConfigError::LiteralSecret {
        path: path.to_path_buf(),
        key: key.to_owned(),
        what,
        fix,
    }
}

/// Checks one raw string for literal secrets, then returns its expansion
/// (or the raw string when `expand_value` is false).
#[allow(clippy::too_many_arguments)]
fn check_string(
    raw: &str,
    key_path: &str,
    leaf: &str,
    path: &Path,
    env: &Env,
    is_secret_key: fn(&str) -> bool,
    is_url_key: fn(&str) -> bool,
    expand_value: bool,
) -> Result<String, ConfigError> {
    if !expand_value {
        // Checked for literal secrets like any other value, but never expanded:
        // something else replaces it (DATABASE_URL over `database_url`).
        if is_url_key(leaf) {
            check_url_literals(raw, key_path, leaf, path)?;
        }
        return Ok(raw.to_owned());
    }
    if is_secret_key(leaf) {
        if !is_whole_reference(raw) {
            return Err(literal_secret(
                path,
                key_path,
                "secret",
                format!("`{leaf} = \"${{{}}}\"`", suggested_var(key_path)),
            ));
        }
        let value = expand(raw, key_path, path, env)?;
        redact::register_secret(&value);
        return Ok(value);
    }
    if is_url_key(leaf) {
        check_url_literals(raw, key_path, leaf, path)?;
        let value = expand(raw, key_path, path, env)?;
        super::register_url_password(&value);
        return Ok(value);
    }
    expand(raw, key_path, path, env)
}

/// A URL may carry a password only through a whole `${VAR}` reference.
fn check_url_literals(
    raw: &str,
    key_path: &str,
    leaf: &str,
    path: &Path,
) -> Result<(), ConfigError> {
    if let Some(pw) = crate::core::url::userinfo_password(raw)
        && !is_whole_reference(pw)
    {
        return Err(literal_secret(
            path,
            key_path,
            "password",
            format!(
                "`{leaf} = \"postgres://USER:${{{}}}@HOST/DB\"` (or set the whole URL from a variable, e.g. `{leaf} = \"${{{}}}\"`)",
                suggested_password_var(key_path),
                suggested_var(key_path)
            ),
        ));
    }
    if has_literal_password_param(raw) {
        return Err(literal_secret(
            path,
            key_path,
            "password parameter",
            format!("`password=${{{}}}`", suggested_password_var(key_path)),
        ));
    }
    Ok(())
}

/// The variable to suggest for the password inside a URL: `staging.database_url`
/// gives `STAGING_DATABASE_PASSWORD`, not the URL's own name.
fn suggested_password_var(key_path: &str) -> String {
    let var = suggested_var(key_path);
    match var.strip_suffix("_URL") {
        Some(stem) => format!("{stem}_PASSWORD"),
        None => format!("{var}_PASSWORD"),
    }
}

/// `?password=...`, `&password=...` or libpq `password=...` with a literal value.
fn has_literal_password_param(raw: &str) -> bool {
    let lower = raw.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("password") {
        let start = from + i;
        let before_ok =
            start == 0 || matches!(lower.as_bytes()[start - 1], b'?' | b'&' | b' ' | b'\t');
        let after = lower[start + "password".len()..].trim_start();
        if before_ok && let Some(v) = after.strip_prefix('=') {
            let v = v.trim_start();
            let end = v.find(['&', ' ', '\t']).unwrap_or(v.len());
            let value = &raw[raw.len() - v.len()..][..end];
            if !value.is_empty() && !is_whole_reference(value) {
                return true;
            }
        }
        from = start + 1;
    }
    false
}

fn suggested_var(key_path: &str) -> String {
    let mut s: String = key_path
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    s = s.trim_start_matches("ENVIRONMENTS_").to_owned();
    s
}

/// What expansion may leave for later: which environment the command runs
/// against, and whether DATABASE_URL replaces every `database_url`.
pub(super) struct Plan<'a> {
    pub selected: Option<&'a str>,
    pub database_url_from_env: bool,
}

/// A key of an environment whose `${VAR}` is not set, left out of the
/// configuration until a command needs it.
pub(super) struct Deferred {
    /// The environment's name, or `None` for a key of `[registry]`.
    pub environment: Option<String>,
    pub key: String,
    pub error: ConfigError,
}

/// Checks every value for literal secrets and expands `${VAR}`s. Values of
/// `[environments.*]` resolve lazily: an unset variable there only fails now in
/// the selected environment (outside its `database_url`, which only commands
/// that connect need); elsewhere the key is dropped and reported in the
/// returned list, so a command that never reads it is not stopped by it.
/// `[registry]` credentials resolve lazily too: only commands that talk to
/// the registry need them (its `url` is needed to know whether there is one).
pub(super) fn check_and_expand(
    table: &mut toml::Table,
    path: &Path,
    env: &Env,
    is_secret_key: fn(&str) -> bool,
    is_url_key: fn(&str) -> bool,
    plan: &Plan<'_>,
) -> Result<Vec<Deferred>, ConfigError> {
    #[allow(clippy::too_many_arguments)]
    fn walk(
        value: &mut toml::Value,
        key_path: &str,
        leaf: &str,
        path: &Path,
        env: &Env,
        sk: fn(&str) -> bool,
        uk: fn(&str) -> bool,
        expand_value: bool,
    ) -> Result<(), ConfigError> {
        match value {
            toml::Value::String(s) => {
                *s = check_string(s, key_path, leaf, path, env, sk, uk, expand_value)?;
            }
            toml::Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    let kp = format!("{key_path}[{i}]");
                    walk(item, &kp, leaf, path, env, sk, uk, expand_value)?;
                }
            }
            toml::Value::Table(t) => {
                for (k, v) in t.iter_mut() {
                    walk(
                        v,
                        &format!("{key_path}.{k}"),
                        k,
                        path,
                        env,
                        sk,
                        uk,
                        expand_value,
                    )?;
                }
            }
            _ if sk(leaf) => {
                return Err(literal_secret(
                    path,
                    key_path,
                    "secret",
                    format!("`{leaf} = \"${{{}}}\"`", suggested_var(key_path)),
                ));
            }
            _ => {}
        }
        Ok(())
    }
    let (sk, uk) = (is_secret_key, is_url_key);
    let mut deferred = Vec::new();
    for (k, v) in table.iter_mut() {
        let toml::Value::Table(environments) = v else {
            walk(v, k, k, path, env, sk, uk, true)?;
            continue;
        };
        if k == "registry" {
            let mut dropped = Vec::new();
            for (sub, value) in environments.iter_mut() {
                match walk(value, &format!("{k}.{sub}"), sub, path, env, sk, uk, true) {
                    Ok(()) => {}
                    // Credentials only: an unset `url` would make the
                    // registry look unconfigured, so it fails now.
                    Err(error @ ConfigError::UnsetVariable { .. }) if sub != "url" => {
                        dropped.push(sub.clone());
                        deferred.push(Deferred {
                            environment: None,
                            key: sub.clone(),
                            error,
                        });
                    }
                    Err(e) => return Err(e),
                }
            }
            for key in dropped {
                environments.remove(&key);
            }
            continue;
        }
        if k != "environments" {
            for (sub, value) in environments.iter_mut() {
                walk(value, &format!("{k}.{sub}"), sub, path, env, sk, uk, true)?;
            }
            continue;
        }
        for (name, e) in environments.iter_mut() {
            let key_path = format!("environments.{name}");
            let toml::Value::Table(keys) = e else {
                walk(e, &key_path, name, path, env, sk, uk, true)?;
                continue;
            };
            let selected = plan.selected == Some(name.as_str());
            let mut dropped = Vec::new();
            for (key, value) in keys.iter_mut() {
                let kp = format!("{key_path}.{key}");
                let is_db = key == "database_url";
                let expand_value = !(is_db && plan.database_url_from_env);
                match walk(value, &kp, key, path, env, sk, uk, expand_value) {
                    Ok(()) => {}
                    Err(error @ ConfigError::UnsetVariable { .. }) if !selected || is_db => {
                        dropped.push(key.clone());
                        deferred.push(Deferred {
                            environment: Some(name.clone()),
                            key: key.clone(),
                            error,
                        });
                    }
                    Err(e) => return Err(e),
                }
            }
            for key in dropped {
                keys.remove(&key);
            }
        }
    }
    Ok(deferred)
}
