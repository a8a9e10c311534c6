//! The registry a project names, wired once: whether one is configured, where
//! it is, how to authenticate (token > username/password > docker config >
//! anonymous), and the hint when a registry only speaks plain HTTP.

use crate::config::Config;
use crate::ops::{Error, Result};
use crate::store::StoreError;
use crate::store::registry::{RegistryOptions, RegistryRef, RegistryStore, auth};

/// Whether a registry is configured (by file or environment).
pub fn registry_configured(config: &Config) -> bool {
    config
        .registry
        .as_ref()
        .and_then(|r| r.url.as_deref())
        .is_some_and(|u| !u.trim().is_empty())
}

/// The registry named by the configuration (`[registry]`, `SQUIZZLE_REGISTRY`,
/// `SQUIZZLE_REGISTRY_TOKEN`), with the docker configuration's credentials
/// as the fallback. The store exchanges them for tokens itself (the password
/// only goes to a token realm on the registry's own host).
pub async fn authenticated_store(config: &Config) -> Result<RegistryStore> {
    let (reference, mut opts, identity_token) = registry_options(config)?;
    opts.identity_token = identity_token.map(|(token, _)| token);
    Ok(RegistryStore::new(reference, &opts))
}

/// An identity token from the docker configuration, and where it was found:
/// it still has to be exchanged for a registry token.
pub type IdentityToken = Option<(String, String)>;

/// Where the registry is and how to authenticate, with the docker
/// configuration as the fallback for credentials.
pub fn registry_options(config: &Config) -> Result<(RegistryRef, RegistryOptions, IdentityToken)> {
    let reg = config.registry.as_ref();
    let url = reg
        .and_then(|r| r.url.as_deref())
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| {
            Error::Usage(match &config.file {
                Some(file) => format!(
                    "no registry configured: set `url` in the [registry] section of {} (host[:port]/repository), or SQUIZZLE_REGISTRY",
                    file.display()
                ),
                None => "no registry configured: set SQUIZZLE_REGISTRY=host[:port]/repository (there is no squizzle.toml here)".to_owned(),
            })
        })?;
    let reference = RegistryRef::parse(url)?;
    // A credential whose ${VAR} is unset stops only a command that gets here.
    config.check_registry()?;
    let reg = reg.cloned().unwrap_or_default();
    let ca_pem = match &reg.ca_file {
        Some(f) if !f.is_empty() => {
            let path = config.root.join(f);
            Some(std::fs::read(&path).map_err(|source| Error::Io {
                action: "read the registry CA file",
                path,
                source,
            })?)
        }
        _ => None,
    };
    let mut opts = RegistryOptions {
        username: reg.username,
        password: reg.password,
        token: reg.token,
        insecure: reg.insecure,
        ca_pem,
        retry_base_ms: config.retry_base_ms,
        ..RegistryOptions::default()
    };
    let configured = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.is_empty());
    // Precedence: token > username/password > docker config.json > anonymous.
    if !configured(&opts.token) && !configured(&opts.username) {
        match auth::lookup(&reference, config.docker_config_dir.as_deref())? {
            Some(auth::Found {
                credential: auth::DockerCredential::Basic { username, password },
                source,
            }) => {
                tracing::debug!(%source, "registry credentials from the docker configuration");
                opts.username = Some(username);
                opts.password = Some(password);
            }
            Some(auth::Found {
                credential: auth::DockerCredential::IdentityToken(token),
                source,
            }) => {
                tracing::debug!(%source, "registry identity token from the docker configuration");
                return Ok((reference, opts, Some((token, source))));
            }
            None => tracing::debug!(
                registry = %reference,
                "no registry credentials configured or in the docker configuration: anonymous"
            ),
        }
    } else if configured(&opts.token) {
        tracing::debug!(registry = %reference, "registry credentials: the configured token");
    } else {
        tracing::debug!(registry = %reference, "registry credentials: the configured username and password");
    }
    Ok((reference, opts, None))
}

/// Adds the way out to a failure to reach a non-loopback registry over
/// HTTPS: it may only speak plain HTTP.
pub fn insecure_hint(reference: &RegistryRef, config: &Config, e: Error) -> Error {
    let insecure = config.registry.as_ref().is_some_and(|r| r.insecure);
    match e {
        Error::Store(StoreError::RemoteUnreachable { registry, reason })
            if !insecure && !reference.is_loopback() =>
        {
            Error::Store(StoreError::RemoteUnreachable {
                registry,
                reason: format!(
                    "{reason} (squizzle speaks HTTPS to registries that are not on loopback; if this one only serves plain HTTP, pass --plain-http or set [registry] insecure = true)"
                ),
            })
        }
        e => e,
    }
}
