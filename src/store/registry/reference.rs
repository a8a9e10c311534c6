//! Where a registry repository is (`host[:port]/repository`, parsed and
//! checked) and how to reach it ([`RegistryOptions`]). Imports nothing else
//! from the registry client.

use std::net::IpAddr;

use crate::store::StoreError;

/// Where a registry repository is, parsed from `host[:port]/path/repo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRef {
    /// `host` or `host:port` (IPv6 hosts in brackets).
    pub registry: String,
    pub repository: String,
}

impl RegistryRef {
    pub fn parse(value: &str) -> Result<Self, StoreError> {
        // Never echo credentials someone put in the URL.
        let shown = match value.rsplit_once('@') {
            Some((_, after)) => format!("***@{after}"),
            None => value.to_owned(),
        };
        let bad = |reason: String| StoreError::BadRegistryRef {
            value: shown.clone(),
            reason,
        };
        let v = value.trim();
        if let Some((scheme, rest)) = v.split_once("://") {
            let rest = rest.rsplit_once('@').map_or(rest, |(_, after)| after);
            let creds = if v.contains('@') {
                " and without credentials (put them in [registry] username/password as ${VAR}, or SQUIZZLE_REGISTRY_TOKEN)"
            } else {
                ""
            };
            return Err(bad(format!(
                "write it without the scheme ({scheme}://){creds}: `{rest}`; squizzle uses HTTPS, or plain HTTP for loopback hosts and `insecure = true`"
            )));
        }
        if v.contains('@') {
            return Err(bad(
                "it must not contain credentials or a digest; put credentials in [registry] username/password (as ${VAR}) or SQUIZZLE_REGISTRY_TOKEN".into(),
            ));
        }
        let (registry, repository) = v.split_once('/').ok_or_else(|| {
            bad("expected host[:port]/repository, e.g. ghcr.io/acme/migrations".into())
        })?;
        let repository = repository.trim_end_matches('/');
        validate_host(registry).map_err(bad)?;
        if repository.is_empty() {
            return Err(bad("the repository path is empty".into()));
        }
        for part in repository.split('/') {
            if !valid_path_component(part) {
                return Err(bad(format!(
                    "repository path component {part:?} is invalid: lowercase letters and digits, separated by '.', '_', '__' or '-'; the tag is the version and is not part of the URL"
                )));
            }
        }
        Ok(Self {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
        })
    }

    /// The host without port or brackets.
    pub fn host(&self) -> &str {
        let r = self.registry.as_str();
        if let Some(rest) = r.strip_prefix('[') {
            return rest.split(']').next().unwrap_or(rest);
        }
        r.rsplit_once(':').map_or(r, |(h, _)| h)
    }

    /// localhost, 127.0.0.0/8 or ::1.
    pub fn is_loopback(&self) -> bool {
        let host = self.host();
        host.eq_ignore_ascii_case("localhost")
            || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

impl std::fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)
    }
}

fn validate_host(registry: &str) -> Result<(), String> {
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("host {registry:?} has an unclosed '['"))?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{h:?} is not an IPv6 address"));
        }
        (None, after.strip_prefix(':'))
    } else {
        match registry.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(registry), None),
        }
    };
    if let Some(h) = host {
        let ok = !h.is_empty()
            && h.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !ok {
            return Err(format!("{h:?} is not a valid host name"));
        }
    }
    if let Some(p) = port
        && p.parse::<u16>().map_or(true, |p| p == 0)
    {
        return Err(format!("port {p:?} is not a valid port number"));
    }
    Ok(())
}

/// Distribution spec: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_path_component(part: &str) -> bool {
    let b = part.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    if !part
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
    {
        return false;
    }
    // Separators: '.', '_', '__' or a run of '-'; never mixed or doubled otherwise.
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let sep = &part[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-')) {
            return false;
        }
    }
    true
}

/// How to reach and authenticate to a registry.
#[derive(Clone, Default)]
pub struct RegistryOptions {
    pub username: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    /// Docker's identity token (an OAuth2 refresh token), exchanged at the
    /// registry's token service.
    pub identity_token: Option<String>,
    /// Allow plain HTTP to a non-loopback host.
    pub insecure: bool,
    /// PEM CA certificate(s) to trust in addition to the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Lowers the retry waits' base (`SQUIZZLE_RETRY_BASE_MS`; never raises it).
    pub retry_base_ms: Option<u64>,
}

impl std::fmt::Debug for RegistryOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryOptions")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field(
                "identity_token",
                &self.identity_token.as_ref().map(|_| "***"),
            )
            .field("insecure", &self.insecure)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        let r = RegistryRef::parse("127.0.0.1:5000/acme/db-migrations").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "acme/db-migrations");
        assert!(r.is_loopback());
        let r = RegistryRef::parse("ghcr.io/acme/migrations").unwrap();
        assert_eq!(r.host(), "ghcr.io");
        assert!(!r.is_loopback());
        assert!(RegistryRef::parse("localhost/x").unwrap().is_loopback());
        assert!(RegistryRef::parse("[::1]:5000/x").unwrap().is_loopback());
        assert!(
            RegistryRef::parse("127.8.9.1:80/a/b__c/d-e")
                .unwrap()
                .is_loopback()
        );
    }

    #[test]
    fn refuses_bad_references_and_says_what_to_write() {
        for (bad, hint) in [
            ("https://ghcr.io/acme/m", "`ghcr.io/acme/m`"),
            ("user:pw@ghcr.io/acme/m", "credentials"),
            ("ghcr.io", "host[:port]/repository"),
            ("ghcr.io/", "empty"),
            ("ghcr.io/Acme/m", "Acme"),
            ("ghcr.io/acme/m:1.0.0", "m:1.0.0"),
            ("ghcr.io:0/acme", "port"),
            ("gh cr.io/acme", "host"),
            ("ghcr.io/a..b", "a..b"),
        ] {
            let e = RegistryRef::parse(bad).unwrap_err().to_string();
            assert!(e.contains(hint), "{bad}: {e}");
        }
        let e = RegistryRef::parse("https://u:secretpw@h/r").unwrap_err();
        assert!(matches!(e, StoreError::BadRegistryRef { .. }));
    }
}
