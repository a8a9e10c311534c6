//! Registry credentials found in Docker's `config.json`: `auths` entries
//! (base64 `user:password`, or an `identitytoken`), per-registry
//! `credHelpers` and the global `credsStore` (both run
//! `docker-credential-<name> get`).
//!
//! Only consulted when squizzle's own configuration names no credentials
//! (precedence: token > username/password > docker config > anonymous; the
//! caller decides). Every secret found is registered with the redactor before
//! it is returned, and no error built here contains one: a failing helper is
//! reported by its name, exit status and the first line of its stderr.
//!
//! Written here rather than taken from the `docker_credential` crate because
//! that crate's helper error displays the helper's whole stdout (which may
//! hold a secret), waits for a hanging helper forever, and does not match
//! `credHelpers` keys through docker.io's aliases.
//!
//! [`Authorizer`] is the authentication layer of the store's one client,
//! and the one place a secret is sent over the network by squizzle itself:
//! the password or identity token goes only to a token realm that
//! [`realm_allowed`] accepts (the registry's own host, or over HTTPS a
//! sibling host under the same parent domain, as Docker Hub's
//! `auth.docker.io` for `registry-1.docker.io`); basic credentials go to the
//! registry itself only when it asks for them with a `Basic` challenge.
//! Tokens are kept per scope (`pull`, `pull,push`, `delete`), so a token
//! that expires or lacks a scope is exchanged again once, not per request.
//!
//! Must never: print, or return a secret that is not registered with
//! `core::redact`.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde::Deserialize;

use super::reference::RegistryRef;
use super::retry::{self, Attempt, Verdict};
use super::transport::{Credential, HeldCredential, Request, Transport};
use crate::core::redact::register_secret;
use crate::store::StoreError;

/// How long a credential helper may take.
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);
/// Larger `config.json` files or helper answers are refused.
const MAX_BYTES: u64 = 1024 * 1024;
/// The server address docker uses for Docker Hub.
const DOCKER_HUB_ADDRESS: &str = "https://index.docker.io/v1/";

/// A credential found in the Docker configuration.
#[derive(Clone, PartialEq, Eq)]
pub enum DockerCredential {
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth2 refresh token for the registry's token service (docker's
    /// `identitytoken`, or a helper answer whose Username is `<token>`).
    IdentityToken(String),
}

impl std::fmt::Debug for DockerCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Basic { username, .. } => write!(f, "Basic({username:?}, ***)"),
            Self::IdentityToken(_) => write!(f, "IdentityToken(***)"),
        }
    }
}

/// Where a credential came from, for logs and messages (never the secret).
#[derive(Debug, Clone)]
pub struct Found {
    pub credential: DockerCredential,
    pub source: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

/// The folder of `config.json`: `$DOCKER_CONFIG`, else `$HOME/.docker`.
pub fn config_dir(docker_config: Option<&str>, home: Option<&str>) -> Option<PathBuf> {
    match docker_config.filter(|d| !d.is_empty()) {
        Some(d) => Some(PathBuf::from(d)),
        None => home
            .filter(|h| !h.is_empty())
            .map(|h| Path::new(h).join(".docker")),
    }
}

/// Credentials for `reference` from `config.json` in docker's configuration
/// folder `dir` (`$DOCKER_CONFIG`, else `~/.docker`: see [`config_dir`]);
/// `None` when there is no file or it names none.
pub fn lookup(reference: &RegistryRef, dir: Option<&Path>) -> Result<Option<Found>, StoreError> {
    match dir {
        Some(dir) => lookup_in(&dir.join("config.json"), reference),
        None => Ok(None),
    }
}

/// As [`lookup`], from one `config.json`.
pub fn lookup_in(path: &Path, reference: &RegistryRef) -> Result<Option<Found>, StoreError> {
    let bad = |reason: String| StoreError::RemoteAuth {
        registry: reference.to_string(),
        reason: format!("docker configuration {}: {reason}", path.display()),
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(format!("cannot read it: {e}"))),
    };
    let mut text = Vec::new();
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|e| bad(format!("cannot read it: {e}")))?;
    if text.len() as u64 > MAX_BYTES {
        return Err(bad("it is larger than 1 MiB".into()));
    }
    // serde_json's error names a line and column, never the content.
    let config: ConfigFile =
        serde_json::from_slice(&text).map_err(|e| bad(format!("it is not valid JSON ({e})")))?;
    let wanted = normalize(&reference.registry);

    if let Some((key, helper)) = config
        .cred_helpers
        .iter()
        .find(|(k, h)| !h.is_empty() && normalize(k) == wanted)
    {
        return run_helper(helper, &server_address(reference), reference).map(|c| {
            c.map(|credential| {
                found(
                    credential,
                    format!("credHelpers.{key} in {}", path.display()),
                )
            })
        });
    }
    if let Some((key, entry)) = config.auths.iter().find(|(k, _)| normalize(k) == wanted)
        && let Some(credential) =
            from_entry(entry).map_err(|why| bad(format!("auths.{key}: {why}")))?
    {
        return Ok(Some(found(
            credential,
            format!("auths.{key} in {}", path.display()),
        )));
    }
    match config.creds_store.as_deref().filter(|s| !s.is_empty()) {
        Some(store) => run_helper(store, &server_address(reference), reference).map(|c| {
            c.map(|credential| found(credential, format!("credsStore in {}", path.display())))
        }),
        None => Ok(None),
    }
}

fn found(credential: DockerCredential, source: String) -> Found {
    match &credential {
        DockerCredential::Basic { password, .. } => register_secret(password),
        DockerCredential::IdentityToken(t) => register_secret(t),
    }
    Found { credential, source }
}

/// `host[:port]` of a config key written as a host, `host/path` or a URL,
/// lower-cased, with docker.io's aliases folded into `index.docker.io`.
fn normalize(key: &str) -> String {
    let k = key.trim();
    let k = k.split_once("://").map_or(k, |(_, rest)| rest);
    let host = k.split('/').next().unwrap_or(k).to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "registry-1.docker.io" | "index.docker.io" => "index.docker.io".into(),
        _ => host,
    }
}

/// What docker hands a helper on stdin: Docker Hub's historical URL, or the
/// registry's `host[:port]`.
fn server_address(reference: &RegistryRef) -> String {
    if normalize(&reference.registry) == "index.docker.io" {
        DOCKER_HUB_ADDRESS.into()
    } else {
        reference.registry.clone()
    }
}

fn from_entry(entry: &AuthEntry) -> Result<Option<DockerCredential>, String> {
    if let Some(t) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(DockerCredential::IdentityToken(t.to_owned())));
    }
    if let Some(a) = entry.auth.as_deref().filter(|a| !a.trim().is_empty()) {
        let decoded = b64_decode(a.trim())
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or("`auth` is not base64 of user:password")?;
        let (u, p) = decoded
            .split_once(':')
            .ok_or("`auth` is not base64 of user:password")?;
        return Ok(Some(DockerCredential::Basic {
            username: u.to_owned(),
            password: p.to_owned(),
        }));
    }
    match (&entry.username, &entry.password) {
        (Some(u), Some(p)) if !u.is_empty() => Ok(Some(DockerCredential::Basic {
            username: u.clone(),
            password: p.clone(),
        })),
        _ => Ok(None),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

/// Runs `docker-credential-<name> get` with `address` on stdin. A helper that
/// says it has no credentials for the address gives `None` (as in docker);
/// any other failure is an authentication error.
fn run_helper(
    name: &str,
    address: &str,
    reference: &RegistryRef,
) -> Result<Option<DockerCredential>, StoreError> {
    let program = format!("docker-credential-{name}");
    let fail = |reason: String| StoreError::RemoteAuth {
        registry: reference.to_string(),
        reason: format!("credential helper {program}: {reason}"),
    };
    if name.contains(['/', '\\']) || name.trim() != name {
        return Err(fail("the helper name must be a plain name".into()));
    }
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            fail(if e.kind() == std::io::ErrorKind::NotFound {
                "not found on PATH (install it, or remove it from the docker configuration)".into()
            } else {
                format!("cannot start it: {e}")
            })
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading is reported by its status below.
        let _ = stdin.write_all(address.as_bytes());
    }
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(p) = pipe {
                let _ = p.take(MAX_BYTES).read_to_end(&mut out);
            }
            out
        })
    };
    let stdout = read(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = read(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > HELPER_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "no answer within {} s",
                    HELPER_TIMEOUT.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(fail(format!("cannot wait for it: {e}"))),
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        // docker-credential-helpers say "credentials not found" on stdout.
        let not_found = |b: &[u8]| {
            String::from_utf8_lossy(b)
                .to_ascii_lowercase()
                .contains("credentials not found")
        };
        if not_found(&stdout) || not_found(&stderr) {
            return Ok(None);
        }
        // Only stderr is shown, its first line, redacted: stdout is where a
        // helper writes secrets, and a failing one may have written some.
        let said = String::from_utf8_lossy(&stderr);
        let first = said.lines().next().unwrap_or("").trim();
        let first: String = crate::core::redact::redact(first)
            .chars()
            .take(200)
            .collect();
        return Err(fail(format!(
            "`get` for {address} failed ({status}){}",
            if first.is_empty() {
                String::new()
            } else {
                format!(": {first}")
            }
        )));
    }
    let answer: HelperAnswer = serde_json::from_slice(&stdout).map_err(|_| {
        fail(format!(
            "`get` for {address} did not answer {{\"Username\": ..., \"Secret\": ...}}"
        ))
    })?;
    if answer.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(if answer.username == "<token>" {
        DockerCredential::IdentityToken(answer.secret)
    } else {
        DockerCredential::Basic {
            username: answer.username,
            password: answer.secret,
        }
    }))
}

/// The authentication layer of a registry store, between the transport and
/// the repository operations: which credential a request carries first, and
/// what to do with a `401`.
///
/// A request carries the token cached for its scope (`pull`; `pull,push`;
/// `delete`), else the configured token, else nothing (or the basic
/// credentials once the registry has asked for them). On a `401` with a
/// `Bearer` challenge, the one token exchange ([`Authorizer::exchange`]) runs
/// at the challenge's realm and the request is sent once more; that second
/// answer is final. Without a `Bearer` challenge the basic credentials go to
/// the registry itself.
pub(super) struct Authorizer {
    reference: RegistryRef,
    /// Username and password: exchanged for a token, or sent to the
    /// registry itself when it asks for basic authentication.
    basic: Option<(String, String)>,
    /// Docker's identity token: an OAuth2 refresh token for the token service.
    identity: Option<String>,
    /// `SQUIZZLE_REGISTRY_TOKEN` / `[registry] token`: sent first.
    configured: Option<String>,
    /// Tokens the exchange gave, by the scope of the request that needed them.
    tokens: Mutex<HashMap<&'static str, String>>,
    /// The registry asked for basic credentials: send them from the start.
    basic_registry: AtomicBool,
}

/// The scope a request needs, by its method: reading, writing, deleting.
fn actions(method: &Method) -> &'static str {
    match *method {
        Method::GET | Method::HEAD => "pull",
        Method::DELETE => "delete",
        _ => "pull,push",
    }
}

impl Authorizer {
    pub(super) fn new(reference: &RegistryRef, opts: &super::reference::RegistryOptions) -> Self {
        let basic = opts
            .username
            .as_deref()
            .filter(|u| !u.is_empty())
            .map(|u| (u.to_owned(), opts.password.clone().unwrap_or_default()));
        Self {
            reference: reference.clone(),
            basic,
            identity: opts.identity_token.clone().filter(|t| !t.is_empty()),
            configured: opts.token.clone().filter(|t| !t.is_empty()),
            tokens: Mutex::new(HashMap::new()),
            basic_registry: AtomicBool::new(false),
        }
    }

    fn cached(&self, scope: &'static str) -> Option<String> {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        // A token that may push may also read.
        let wider = (scope == "pull").then(|| tokens.get("pull,push")).flatten();
        tokens.get(scope).or(wider).cloned()
    }

    fn remember(&self, scope: &'static str, token: String) {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(scope, token);
    }

    /// The credential a `method` request is sent with first (a streamed
    /// body cannot be sent twice, so it only ever gets this one).
    pub(super) fn held(&self, method: &Method) -> Option<HeldCredential> {
        match (
            self.cached(actions(method))
                .or_else(|| self.configured.clone()),
            &self.basic,
        ) {
            (Some(t), _) => Some(HeldCredential::Bearer(t)),
            (None, Some((u, p))) if self.basic_registry.load(Ordering::Relaxed) => {
                Some(HeldCredential::Basic(u.clone(), p.clone()))
            }
            _ => None,
        }
    }

    /// One attempt of `req`: sent with the credential held for its scope; on
    /// a `401`, one token exchange (or the basic credentials) and the request
    /// once more, whose answer is final. The answer's body is not read.
    pub(super) async fn send(
        &self,
        transport: &Transport,
        req: &Request<'_>,
    ) -> Result<reqwest::Response, Attempt> {
        let scope = actions(&req.method);
        let held = self.cached(scope).or_else(|| self.configured.clone());
        let first = match (&held, &self.basic) {
            (Some(t), _) => Some(Credential::Bearer(t)),
            (None, Some((u, p))) if self.basic_registry.load(Ordering::Relaxed) => {
                Some(Credential::Basic(u, p))
            }
            _ => None,
        };
        let answer = transport.send(req, first).await?;
        if answer.status() != StatusCode::UNAUTHORIZED {
            return Ok(answer);
        }
        let challenges: Vec<Challenge> = answer
            .headers()
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(parse_challenge)
            .collect();
        let bearer = challenges
            .iter()
            .find(|c| c.scheme.eq_ignore_ascii_case("bearer") && c.param("realm").is_some());
        let fresh = match bearer {
            Some(c) => self.exchange(transport, req.what, c, scope).await?,
            None => None,
        };
        let again = match (&fresh, &self.basic) {
            (Some(t), _) => Credential::Bearer(t),
            (None, Some((u, p))) if bearer.is_none() => {
                self.basic_registry.store(true, Ordering::Relaxed);
                Credential::Basic(u, p)
            }
            (None, _) if bearer.is_none() && self.identity.is_some() => {
                return Err(Attempt::permanent(StoreError::RemoteAuth {
                    registry: transport.name().to_owned(),
                    reason: "the docker configuration holds an identity token, but the registry does not ask for a bearer token (no `WWW-Authenticate: Bearer`); use [registry] username/password or SQUIZZLE_REGISTRY_TOKEN".into(),
                }));
            }
            _ => return Ok(answer),
        };
        if held.is_some() {
            tracing::debug!(
                what = req.what,
                "the registry refused the token (expired?); exchanged the credentials again"
            );
        }
        let second = transport.send(req, Some(again)).await?;
        if second.status() == StatusCode::UNAUTHORIZED && held.is_some() && fresh.is_some() {
            return Err(Attempt::permanent(StoreError::RemoteAuth {
                registry: transport.name().to_owned(),
                reason: format!(
                    "{}: the registry refused its token, and then a freshly issued one too (401 Unauthorized); check [registry] username/password or SQUIZZLE_REGISTRY_TOKEN",
                    req.what
                ),
            }));
        }
        if let Some(t) = fresh
            && second.status() != StatusCode::UNAUTHORIZED
        {
            self.remember(scope, t);
        }
        Ok(second)
    }

    /// The one token exchange: a token from the challenge's realm for its
    /// service and scope (the request's own scope when the challenge names
    /// none). The password (a `GET` with basic credentials) or the identity
    /// token (an OAuth2 `refresh_token` grant) only goes to a realm
    /// [`realm_allowed`] accepts; an anonymous exchange needs HTTPS unless
    /// the registry itself is reached over plain HTTP.
    async fn exchange(
        &self,
        transport: &Transport,
        what: &str,
        c: &Challenge,
        actions: &str,
    ) -> Result<Option<String>, Attempt> {
        let refuse = |reason: String| {
            Attempt::permanent(StoreError::RemoteAuth {
                registry: transport.name().to_owned(),
                reason: format!("{what}: {reason}"),
            })
        };
        let realm = c.param("realm").unwrap_or_default();
        let plain_http = transport.plain_http();
        let mut url = if self.basic.is_some() || self.identity.is_some() {
            realm_allowed(&self.reference, plain_http, realm).map_err(refuse)?
        } else if realm.starts_with("https://") || (plain_http && realm.starts_with("http://")) {
            reqwest::Url::parse(realm)
                .map_err(|_| refuse(format!("the token service {realm:?} is not a URL")))?
        } else {
            return Err(refuse(format!(
                "the token service {realm:?} is not HTTPS; not asking it for a token"
            )));
        };
        let scope = c
            .param("scope")
            .map(str::to_owned)
            .unwrap_or_else(|| format!("repository:{}:{actions}", self.reference.repository));
        let token_what = format!("{what}: token service");
        let (method, body, credential, form);
        if let Some(refresh) = &self.identity {
            let mut pairs = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.as_str()),
                ("client_id", "squizzle"),
            ];
            if let Some(service) = c.param("service") {
                pairs.push(("service", service));
            }
            pairs.push(("scope", &scope));
            method = Method::POST;
            body = Some(bytes::Bytes::from(form_urlencoded(&pairs)));
            credential = None;
            form = true;
        } else {
            {
                let mut q = url.query_pairs_mut();
                if let Some(service) = c.param("service") {
                    q.append_pair("service", service);
                }
                q.append_pair("scope", &scope);
            }
            method = Method::GET;
            body = None;
            credential = self.basic.as_ref().map(|(u, p)| Credential::Basic(u, p));
            form = false;
        }
        const LIMIT: u64 = 1024 * 1024;
        let content_type = [("Content-Type", "application/x-www-form-urlencoded")];
        let request = Request {
            what: &token_what,
            method,
            url: url.as_str(),
            headers: if form { &content_type } else { &[] },
            body,
            limit: LIMIT,
        };
        let resp = transport.send(&request, credential).await?;
        let answer = transport
            .read(&token_what, &request.method, resp, LIMIT)
            .await?;
        let status = answer.status;
        match retry::http_verdict(status.as_u16()) {
            Verdict::Permanent => {}
            verdict => {
                return Err(Attempt::with_verdict(
                    StoreError::RemoteUnreachable {
                        registry: transport.name().to_owned(),
                        reason: format!("{token_what} answered {status}"),
                    },
                    verdict,
                ));
            }
        }
        if !status.is_success() {
            return Err(refuse(format!(
                "the token service {realm} refused the credentials ({status}); check [registry] username/password, SQUIZZLE_REGISTRY_TOKEN or the docker configuration"
            )));
        }
        if answer.overflow {
            return Err(Attempt::permanent(transport.too_large(&token_what, LIMIT)));
        }
        #[derive(Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let parsed: TokenAnswer = serde_json::from_slice(&answer.body)
            .map_err(|_| refuse("the token service did not answer with a token".into()))?;
        let token = parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty());
        if let Some(t) = &token {
            register_secret(t);
        }
        Ok(token)
    }
}

/// `k=v&k2=v2`, form-encoded.
fn form_urlencoded(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&percent_encode(k));
        out.push('=');
        out.push_str(&percent_encode(v));
    }
    out
}

/// `application/x-www-form-urlencoded` escaping: unreserved bytes stay.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'*') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// May a token realm receive the registry password? Only over HTTPS (or
/// plain HTTP where the registry itself may use it), and only on the
/// registry's own host, or a host under the registry host's parent domain
/// when that parent has at least two labels (`auth.docker.io` for
/// `registry-1.docker.io`, never `evil.io` for `ghcr.io`). IP addresses must
/// match exactly.
pub fn realm_allowed(
    reference: &RegistryRef,
    plain_http: bool,
    realm: &str,
) -> Result<reqwest::Url, String> {
    let refuse = |why: &str| {
        Err(format!(
            "the registry sends clients to the token service {realm:?}, {why}; squizzle does not send the registry password there. If that service is genuine, get a token from it yourself and set SQUIZZLE_REGISTRY_TOKEN"
        ))
    };
    let Ok(url) = reqwest::Url::parse(realm) else {
        return refuse("which is not a URL");
    };
    let Some(realm_host) = url.host_str() else {
        return refuse("which names no host");
    };
    let realm_host = realm_host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let reg_host = reference.host().to_ascii_lowercase();
    let same = realm_host == reg_host;
    match url.scheme() {
        "https" => {}
        "http" if plain_http && same => {}
        _ => return refuse("which does not use HTTPS"),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return refuse("which carries credentials");
    }
    let is_ip = |h: &str| h.parse::<std::net::IpAddr>().is_ok();
    let sibling = !is_ip(&reg_host)
        && !is_ip(&realm_host)
        && reg_host.split_once('.').is_some_and(|(_, parent)| {
            parent.contains('.') && realm_host.ends_with(&format!(".{parent}"))
        });
    if same || sibling {
        Ok(url)
    } else {
        refuse(&format!(
            "on another host ({realm_host}) than the registry ({reg_host})"
        ))
    }
}

pub(super) struct Challenge {
    pub(super) scheme: String,
    params: Vec<(String, String)>,
}

impl Challenge {
    pub(super) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `Scheme k="v", k2=v2` (one challenge per header value).
pub(super) fn parse_challenge(header: &str) -> Challenge {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.trim().is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        params.push((key.trim().to_owned(), value.trim().to_owned()));
    }
    Challenge {
        scheme: scheme.to_owned(),
        params,
    }
}

/// Standard base64, padding optional (docker writes it padded; people do not).
fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(s: &str) -> RegistryRef {
        RegistryRef::parse(s).unwrap()
    }

    fn write(json: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(&p, json).unwrap();
        (dir, p)
    }

    #[test]
    fn keys_match_as_docker_matches_them() {
        assert_eq!(normalize("https://index.docker.io/v1/"), "index.docker.io");
        assert_eq!(normalize("docker.io"), "index.docker.io");
        assert_eq!(normalize("registry-1.docker.io"), "index.docker.io");
        assert_eq!(normalize("http://127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(normalize("GHCR.io/acme"), "ghcr.io");
        assert_ne!(normalize("127.0.0.1:5001"), normalize("127.0.0.1:5000"));
        assert_eq!(server_address(&reg("docker.io/acme/m")), DOCKER_HUB_ADDRESS);
        assert_eq!(server_address(&reg("127.0.0.1:5000/a")), "127.0.0.1:5000");
    }

    #[test]
    fn reads_auths_entries() {
        // "ci:pa:ss" with and without padding, under a URL key.
        let (_d, p) = write(
            r#"{"auths":{"https://127.0.0.1:5000/v2/":{"auth":"Y2k6cGE6c3M="},"ghcr.io":{"auth":"Y2k6cGE6c3M"},"quay.io":{"identitytoken":"idtok-123"},"other.io":{}}}"#,
        );
        for r in ["127.0.0.1:5000/a", "ghcr.io/acme/m"] {
            let f = lookup_in(&p, &reg(r)).unwrap().unwrap();
            assert_eq!(
                f.credential,
                DockerCredential::Basic {
                    username: "ci".into(),
                    password: "pa:ss".into()
                },
                "{r}"
            );
        }
        assert_eq!(
            lookup_in(&p, &reg("quay.io/a"))
                .unwrap()
                .unwrap()
                .credential,
            DockerCredential::IdentityToken("idtok-123".into())
        );
        assert!(lookup_in(&p, &reg("other.io/a")).unwrap().is_none());
        assert!(lookup_in(&p, &reg("127.0.0.1:5001/a")).unwrap().is_none());
        assert!(
            lookup_in(&p.with_file_name("missing.json"), &reg("ghcr.io/a"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn bad_files_are_auth_errors_without_content() {
        let (_d, p) = write(r#"{"auths":{"ghcr.io":{"auth":"not base64!! s3cr3t"}}}"#);
        let e = lookup_in(&p, &reg("ghcr.io/a")).unwrap_err();
        assert!(matches!(e, StoreError::RemoteAuth { .. }));
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        let (_d, p) = write("{ not json s3cr3t");
        let e = lookup_in(&p, &reg("ghcr.io/a")).unwrap_err().to_string();
        assert!(!e.contains("s3cr3t"), "{e}");
    }

    #[test]
    fn a_missing_helper_is_named() {
        let (_d, p) = write(r#"{"credHelpers":{"ghcr.io":"squizzle-surely-not-installed"}}"#);
        let e = lookup_in(&p, &reg("ghcr.io/a")).unwrap_err().to_string();
        assert!(
            e.contains("docker-credential-squizzle-surely-not-installed") && e.contains("PATH"),
            "{e}"
        );
    }

    #[test]
    fn realms_that_may_receive_the_password() {
        let hub = reg("registry-1.docker.io/library/x");
        assert!(realm_allowed(&hub, false, "https://auth.docker.io/token").is_ok());
        assert!(realm_allowed(&hub, false, "https://registry-1.docker.io/token").is_ok());
        assert!(realm_allowed(&hub, false, "http://auth.docker.io/token").is_err());
        assert!(realm_allowed(&hub, false, "https://docker.io.evil.com/token").is_err());
        let gh = reg("ghcr.io/acme/m");
        assert!(realm_allowed(&gh, false, "https://ghcr.io/token").is_ok());
        assert!(realm_allowed(&gh, false, "https://evil.io/token").is_err());
        assert!(realm_allowed(&gh, false, "https://u:p@ghcr.io/token").is_err());
        let local = reg("127.0.0.1:5000/a");
        assert!(realm_allowed(&local, true, "http://127.0.0.1:5001/token").is_ok());
        let e = realm_allowed(&local, true, "http://127.0.0.2:5001/token").unwrap_err();
        assert!(
            e.contains("127.0.0.2") && e.contains("SQUIZZLE_REGISTRY_TOKEN"),
            "{e}"
        );
        assert!(realm_allowed(&local, true, "not a url").is_err());
    }

    #[test]
    fn parses_challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://a.b/token",service="reg, one",scope="repository:x:pull,push""#,
        );
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(c.param("realm"), Some("https://a.b/token"));
        assert_eq!(c.param("SERVICE"), Some("reg, one"));
        assert_eq!(c.param("scope"), Some("repository:x:pull,push"));
    }

    #[test]
    fn config_dir_prefers_docker_config() {
        assert_eq!(
            config_dir(Some("/d"), Some("/h")),
            Some(PathBuf::from("/d"))
        );
        assert_eq!(
            config_dir(None, Some("/h")),
            Some(PathBuf::from("/h/.docker"))
        );
        assert_eq!(config_dir(Some(""), None), None);
    }
}
