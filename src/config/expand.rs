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

/// Checks one raw string for literal secrets, then returns its expansion.
fn check_string(
    raw: &str,
    key_path: &str,
    leaf: &str,
    path: &Path,
    env: &Env,
    is_secret_key: fn(&str) -> bool,
    is_url_key: fn(&str) -> bool,
) -> Result<String, ConfigError> {
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
        if let Some(pw) = crate::core::url::userinfo_password(raw)
            && !is_whole_reference(pw)
        {
            return Err(literal_secret(
                path,
                key_path,
                "password",
                format!(
                    "`{leaf} = \"postgres://USER:${{{}}}@HOST/DB\"` (or set the whole URL from a variable, e.g. DATABASE_URL)",
                    suggested_var(key_path)
                ),
            ));
        }
        if has_literal_password_param(raw) {
            return Err(literal_secret(
                path,
                key_path,
                "password parameter",
                format!("`password=${{{}}}`", suggested_var(key_path)),
            ));
        }
        let value = expand(raw, key_path, path, env)?;
        super::register_url_password(&value);
        return Ok(value);
    }
    expand(raw, key_path, path, env)
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

pub(super) fn check_and_expand(
    table: &mut toml::Table,
    path: &Path,
    env: &Env,
    is_secret_key: fn(&str) -> bool,
    is_url_key: fn(&str) -> bool,
) -> Result<(), ConfigError> {
    fn walk(
        value: &mut toml::Value,
        key_path: &str,
        leaf: &str,
        path: &Path,
        env: &Env,
        sk: fn(&str) -> bool,
        uk: fn(&str) -> bool,
    ) -> Result<(), ConfigError> {
        match value {
            toml::Value::String(s) => {
                *s = check_string(s, key_path, leaf, path, env, sk, uk)?;
            }
            toml::Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    walk(item, &format!("{key_path}[{i}]"), leaf, path, env, sk, uk)?;
                }
            }
            toml::Value::Table(t) => {
                for (k, v) in t.iter_mut() {
                    walk(v, &format!("{key_path}.{k}"), k, path, env, sk, uk)?;
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
    for (k, v) in table.iter_mut() {
        walk(v, k, k, path, env, is_secret_key, is_url_key)?;
    }
    Ok(())
}
