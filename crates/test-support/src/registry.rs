//! Throwaway OCI registries for integration tests.
//!
//! [`Registry::start`] runs CNCF distribution 2.8 (Debian package
//! `docker-registry`, `/usr/bin/docker-registry serve config.yml`) on
//! `127.0.0.1:<free port>`, with filesystem storage in a private temporary
//! directory and manifest/blob deletion enabled. It is ready in well under a
//! second, so every test can have its own. Three authentication modes
//! ([`Auth`]):
//!
//! - `Auth::None`: anonymous access.
//! - `Auth::Basic`: HTTP basic authentication against an `htpasswd` file
//!   (bcrypt, made with the `htpasswd` program from `apache2-utils`).
//! - `Auth::Token`: the Docker/OCI token flow. The registry answers `401` with
//!   `WWW-Authenticate: Bearer realm="http://127.0.0.1:<p>/token",
//!   service="squizzle-test-registry",scope="repository:<repo>:pull,push"`;
//!   a small token server in this test process (one thread, std::net) checks
//!   the client's basic credentials at `GET <realm>?service=..&scope=..`
//!   (or an OAuth2 `POST` with `grant_type=password`) and answers
//!   `{"token", "access_token", "expires_in": 300, "issued_at"}` with an ES256
//!   JWT granting exactly the requested actions. The JWT carries the signing
//!   certificate in its `x5c` header; the registry's `rootcertbundle` is that
//!   self-signed certificate (key and certificate made with rcgen, signatures
//!   by rcgen's ECDSA P-256 key, converted from DER to the 64-byte JOSE form).
//!   Requests are recorded ([`Registry::token_requests`]).
//!
//! [`Registry::http`] is a minimal HTTP/1.1 client (one connection per
//! request, `Connection: close`) that answers a registry's `Basic` or
//! `Bearer` challenge with the configured credentials, so tests can
//! cross-check what squizzle pushed. [`Registry::skopeo_inspect_raw`] asks
//! an independent client (`skopeo`).
//!
//! # Behaviour of distribution 2.8 worth knowing
//!
//! (Pinned by `tests/registry_harness.rs`.)
//!
//! - No referrers API: `GET /v2/<repo>/referrers/<digest>` is `404`, and a
//!   `PUT` of a manifest with `subject` gets no `OCI-Subject` header, although
//!   the `subject` is stored and served unchanged. Referrers need the
//!   tag-schema fallback (`sha256-<hex>` tags).
//! - Blob upload `PUT`s must not be sent as
//!   `application/x-www-form-urlencoded` (curl's default for `--data`): Go
//!   parses the body as a form and the upload fails with `400
//!   DIGEST_INVALID`. `application/octet-stream` (or no `Content-Type`) works.
//! - `/v2/<repo>/tags/list` ignores `n` and `last`: it returns every tag,
//!   unsorted, without a `Link` header. Only `/v2/_catalog` paginates.
//! - `DELETE /v2/<repo>/manifests/<digest>` (`202`) also removes every tag
//!   pointing at that manifest; `DELETE` by tag is refused (`400
//!   DIGEST_INVALID`). Blobs stay until garbage collection.
//! - The actions in a challenge's `scope` come in random order
//!   (`pull,push` or `push,pull`).
//! - A request refused before its body is read (a `401` challenge) is
//!   answered without reading the body; with a large body still in flight the
//!   connection is reset and the answer can be lost (`ECONNRESET`). Hence the
//!   `Expect: 100-continue` in [`http_request`].

//! # No leftover processes
//!
//! Every registry is started as `setpriv --pdeathsig=SIGTERM --
//! /usr/bin/docker-registry serve config.yml` from the harness's one spawner
//! thread ([`crate::process::spawn`]), so the kernel sends it SIGTERM exactly
//! when the test process ends, however it ends (the death signal fires when
//! the spawning *thread* exits). `Drop` stops it (SIGTERM, SIGKILL after 10 s)
//! and removes its directory. Directories left behind by killed test
//! processes (`squizzle-registry.<pid>.*` in the temp dir) are removed by the
//! next start whose process sees that `<pid>` is gone.
//!
//! # Requirements
//!
//! `docker-registry`, `apache2-utils` (for `Auth::Basic`), `skopeo` (for
//! [`Registry::skopeo_inspect_raw`]) and util-linux's `setpriv`:
//! `scripts/lib/setup.sh: ensure_registry`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rcgen::{CertificateParams, DnType, KeyPair, SigningKey as _};
use sha2::{Digest as _, Sha256};

pub use crate::process::process_alive;
use crate::process::{self, free_port, which};

/// The registry program.
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
/// `service` of the token flow (the JWT's `aud`).
pub const TOKEN_SERVICE: &str = "squizzle-test-registry";
/// `issuer` of the token flow (the JWT's `iss`).
pub const TOKEN_ISSUER: &str = "squizzle-test-token-issuer";
/// Lifetime of issued tokens, in seconds.
pub const TOKEN_TTL_SECS: u64 = 300;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
    application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.docker.distribution.manifest.list.v2+json";

const READY_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const IO_TIMEOUT: Duration = Duration::from_secs(30);
const DIR_PREFIX: &str = "squizzle-registry.";

/// How clients authenticate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Auth {
    /// Anonymous access to everything.
    #[default]
    None,
    /// HTTP basic authentication (htpasswd, bcrypt) with one user.
    Basic { user: String, password: String },
    /// Bearer tokens from a token server in this process that knows one user.
    Token { user: String, password: String },
}

impl Auth {
    pub fn basic(user: &str, password: &str) -> Auth {
        Auth::Basic {
            user: user.into(),
            password: password.into(),
        }
    }

    pub fn token(user: &str, password: &str) -> Auth {
        Auth::Token {
            user: user.into(),
            password: password.into(),
        }
    }

    /// `(user, password)` unless `Auth::None`.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        match self {
            Auth::None => None,
            Auth::Basic { user, password } | Auth::Token { user, password } => {
                Some((user, password))
            }
        }
    }
}

/// How to configure a registry.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    pub auth: Auth,
}

/// One running distribution registry on 127.0.0.1.
pub struct Registry {
    dir: tempfile::TempDir,
    port: u16,
    log: PathBuf,
    auth: Auth,
    child: Mutex<Option<Child>>,
    token_server: Option<TokenServer>,
}

/// A response read by [`Registry::http`].
#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// In the order received; names as sent by the server.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All headers called `name` (case-insensitive).
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("registry harness: body is not JSON ({e}): {}", self.text()))
    }
}

/// One request the token server answered (or refused).
#[derive(Clone, Debug)]
pub struct TokenRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// The user name presented (basic credentials or OAuth2 form), if any.
    pub user: Option<String>,
    pub service: Option<String>,
    /// Every `scope` parameter, as sent.
    pub scopes: Vec<String>,
    /// True if a token was issued.
    pub granted: bool,
}

// ---------------------------------------------------------------------------
// Starting and stopping.

enum LaunchError {
    PortInUse,
    Failed(String),
}

impl Registry {
    /// Starts a registry and waits until `GET /v2/` answers (200, or 401 with
    /// authentication). Panics with the log's tail if it is not ready within
    /// 20 s.
    pub fn start(opts: RegistryOptions) -> Registry {
        let started = Instant::now();
        sweep_stale_dirs();
        let dir = tempfile::Builder::new()
            .prefix(&format!("{DIR_PREFIX}{}.", std::process::id()))
            .tempdir()
            .expect("registry harness: create temp dir");
        let log = dir.path().join("registry.log");
        fs::create_dir(dir.path().join("data")).expect("registry harness: create data dir");

        let token_server = match &opts.auth {
            Auth::Token { user, password } => Some(TokenServer::start(dir.path(), user, password)),
            Auth::Basic { user, password } => {
                write_htpasswd(&dir.path().join("htpasswd"), user, password);
                None
            }
            Auth::None => None,
        };

        let mut registry = Registry {
            dir,
            port: 0,
            log,
            auth: opts.auth,
            child: Mutex::new(None),
            token_server,
        };
        let mut attempts = 0;
        loop {
            attempts += 1;
            registry.port = free_port();
            fs::write(registry.dir.path().join("config.yml"), registry.config())
                .expect("registry harness: write config.yml");
            match registry.launch() {
                Ok(child) => {
                    *registry.lock_child() = Some(child);
                    break;
                }
                Err(LaunchError::PortInUse) if attempts < 5 => {
                    eprintln!(
                        "registry harness: port {} was taken; retrying",
                        registry.port
                    );
                }
                Err(LaunchError::PortInUse) => registry.fail("no free port after 5 attempts"),
                Err(LaunchError::Failed(why)) => registry.fail(&why),
            }
        }
        eprintln!(
            "registry harness: registry ({}) on {} ready in {:.2?} ({})",
            match registry.auth {
                Auth::None => "no auth",
                Auth::Basic { .. } => "basic auth",
                Auth::Token { .. } => "token auth",
            },
            registry.url(),
            started.elapsed(),
            registry.dir.path().display()
        );
        registry
    }

    fn config(&self) -> String {
        let path = |p: PathBuf| serde_json::to_string(&p.display().to_string()).unwrap();
        let dir = self.dir.path();
        let mut yml = format!(
            "# written by the squizzle test harness (registry)\n\
             version: 0.1\n\
             log:\n  level: warn\n  formatter: text\n\
             storage:\n  filesystem:\n    rootdirectory: {data}\n\
            \x20 delete:\n    enabled: true\n\
            \x20 maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: squizzle-test-{pid}-{port}\n\
             health:\n  storagedriver:\n    enabled: false\n",
            data = path(dir.join("data")),
            port = self.port,
            pid = std::process::id(),
        );
        match (&self.auth, &self.token_server) {
            (Auth::Basic { .. }, _) => {
                let _ = write!(
                    yml,
                    "auth:\n  htpasswd:\n    realm: squizzle-test\n    path: {}\n",
                    path(dir.join("htpasswd"))
                );
            }
            (Auth::Token { .. }, Some(ts)) => {
                let _ = write!(
                    yml,
                    "auth:\n  token:\n    realm: {realm}\n    service: {TOKEN_SERVICE}\n    \
                     issuer: {TOKEN_ISSUER}\n    rootcertbundle: {bundle}\n",
                    realm = ts.realm(),
                    bundle = path(ts.cert_path.clone())
                );
            }
            _ => {}
        }
        yml
    }

    fn launch(&self) -> Result<Child, LaunchError> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("registry harness: open log");
        let setpriv = which("setpriv").unwrap_or_else(|| {
            panic!("registry harness: `setpriv` (util-linux) is required to start the registry")
        });
        if !Path::new(REGISTRY_BIN).exists() {
            panic!(
                "registry harness: {REGISTRY_BIN} not found; install the Debian package \
                 docker-registry (scripts/lib/setup.sh: ensure_registry)"
            );
        }
        let mut cmd = Command::new(setpriv);
        cmd.args([
            "--pdeathsig=SIGTERM",
            "--",
            REGISTRY_BIN,
            "serve",
            "config.yml",
        ])
        .current_dir(self.dir.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("registry harness: dup log"))
        .stderr(log);
        // REGISTRY_* variables override config.yml settings.
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(|k| k.starts_with("REGISTRY_")) {
                cmd.env_remove(key);
            }
        }
        let mut child = process::spawn(cmd)
            .map_err(|e| LaunchError::Failed(format!("could not spawn setpriv/registry: {e}")))?;

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let log = fs::read_to_string(&self.log).unwrap_or_default();
                return Err(if log.contains("address already in use") {
                    LaunchError::PortInUse
                } else {
                    LaunchError::Failed(format!("docker-registry exited early ({status})"))
                });
            }
            let ping = self.http_raw("GET", "/v2/", &[], b"");
            if ping
                .as_ref()
                .is_ok_and(|r| r.status == 200 || r.status == 401)
            {
                return Ok(child);
            }
            if Instant::now() > deadline {
                stop_child(&mut child);
                return Err(LaunchError::Failed(format!(
                    "GET /v2/ did not answer 200/401 within {READY_TIMEOUT:?} (last: {})",
                    match ping {
                        Ok(r) => format!("status {}", r.status),
                        Err(e) => e.to_string(),
                    }
                )));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn fail(&self, why: &str) -> ! {
        panic!(
            "registry harness: registry on {} failed to start: {why}\n\
             --- last lines of {} ---\n{}",
            self.url(),
            self.log.display(),
            self.log_tail(40)
        )
    }

    fn lock_child(&self) -> MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops the registry (SIGTERM, then SIGKILL after 10 s). No-op if it is
    /// not running. The directory stays until drop.
    pub fn stop(&self) {
        if let Some(mut child) = self.lock_child().take() {
            stop_child(&mut child);
        }
    }

    /// True while the registry process runs.
    pub fn is_running(&self) -> bool {
        self.lock_child()
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// The registry's pid (setpriv execs it), if running.
    pub fn pid(&self) -> Option<u32> {
        self.lock_child().as_ref().map(Child::id)
    }

    // -----------------------------------------------------------------------
    // Addresses and files.

    /// `127.0.0.1:PORT`, the registry part of a reference
    /// (`127.0.0.1:PORT/repo:tag`).
    pub fn url(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The configured `(user, password)`, unless `Auth::None`.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.auth.credentials()
    }

    /// The registry's directory (config.yml, registry.log, data/, htpasswd or
    /// token-root.pem).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the registry's log (warnings, errors and the
    /// access log).
    pub fn log_tail(&self, lines: usize) -> String {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// `http://127.0.0.1:P/token` with `Auth::Token`.
    pub fn token_realm(&self) -> Option<String> {
        self.token_server.as_ref().map(TokenServer::realm)
    }

    /// Requests the token server has seen, oldest first (empty unless
    /// `Auth::Token`).
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.token_server
            .as_ref()
            .map(|ts| ts.state.requests.lock().unwrap().clone())
            .unwrap_or_default()
    }

    /// With `Auth::Token`: a JWT for the configured user granting `actions`
    /// on each repository, signed like the token server's (for tests that
    /// need a token with less access than a client would ask for).
    pub fn issue_token(&self, access: &[(&str, &[&str])]) -> String {
        let ts = self
            .token_server
            .as_ref()
            .expect("registry harness: issue_token needs Auth::Token");
        let access = access
            .iter()
            .map(|(repo, actions)| {
                serde_json::json!({"type": "repository", "name": repo, "actions": actions})
            })
            .collect();
        ts.state.jwt(&ts.state.user, access)
    }

    /// The PEM certificate whose key signs the tokens (the registry's
    /// `rootcertbundle`), with `Auth::Token`.
    pub fn token_cert_pem(&self) -> Option<String> {
        self.token_server
            .as_ref()
            .map(|ts| fs::read_to_string(&ts.cert_path).expect("read token-root.pem"))
    }

    // -----------------------------------------------------------------------
    // HTTP.

    /// One request with the configured credentials: sent without
    /// `Authorization` first; on a `401` with a `Basic` challenge it is resent
    /// with basic credentials, on a `Bearer` challenge a token is fetched from
    /// the challenge's realm (with basic credentials, `service` and `scope`
    /// from the challenge) and the request is resent with it. If the token
    /// endpoint refuses, its response is returned. `path` is `/v2/...` or an
    /// absolute `http://127.0.0.1:PORT/...` URL of this registry (such as an
    /// upload `Location`). `Host`, `Connection: close` and `Content-Length`
    /// are added.
    pub fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        self.http_as(self.credentials(), method, path, headers, body)
    }

    /// [`Registry::http`] with other credentials (`None`: anonymous; the
    /// registry's challenge is returned as is).
    pub fn http_as(
        &self,
        creds: Option<(&str, &str)>,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        let first = self.expect_http(method, path, headers, body);
        let Some((user, password)) = creds else {
            return first;
        };
        if first.status != 401 {
            return first;
        }
        let Some(challenge) = first.header("WWW-Authenticate").map(parse_challenge) else {
            return first;
        };
        let authorization = match challenge.scheme.to_ascii_lowercase().as_str() {
            "basic" => basic_authorization(user, password),
            "bearer" => match fetch_token(&challenge, user, password) {
                Ok(token) => format!("Bearer {token}"),
                Err(refused) => return refused,
            },
            _ => return first,
        };
        let mut with_auth: Vec<(&str, &str)> = headers.to_vec();
        with_auth.push(("Authorization", &authorization));
        self.expect_http(method, path, &with_auth, body)
    }

    fn expect_http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        self.http_raw(method, path, headers, body)
            .unwrap_or_else(|e| {
                panic!(
                    "registry harness: {method} {path} failed: {e}\n--- registry log ---\n{}",
                    self.log_tail(20)
                )
            })
    }

    /// Exactly one request, with no authentication handling.
    pub fn http_raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<HttpResponse> {
        let target = match path.strip_prefix("http://") {
            Some(rest) => {
                let (authority, target) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                if authority != self.url() && authority != format!("localhost:{}", self.port) {
                    return Err(io::Error::other(format!(
                        "{path} is not on this registry ({})",
                        self.url()
                    )));
                }
                if target.is_empty() { "/" } else { target }
            }
            None => path,
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        http_request(addr, method, target, headers, body)
    }

    // -----------------------------------------------------------------------
    // Registry operations (with the configured credentials; they panic on
    // unexpected answers, showing the registry's log).

    fn unexpected(&self, what: &str, resp: &HttpResponse) -> ! {
        panic!(
            "registry harness: {what}: status {}\nheaders: {:?}\nbody: {}\n--- registry log ---\n{}",
            resp.status,
            resp.headers,
            resp.text(),
            self.log_tail(20)
        )
    }

    /// Uploads `data` (monolithic: `POST` then `PUT ?digest=`) and returns
    /// its digest.
    pub fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let digest = sha256_digest(data);
        let start = self.http("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"");
        if start.status != 202 {
            self.unexpected(&format!("start upload to {repo}"), &start);
        }
        let location = start
            .header("Location")
            .expect("upload Location header")
            .to_string();
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = self.http(
            "PUT",
            &format!("{location}{sep}digest={}", pct(&digest)),
            &[("Content-Type", "application/octet-stream")],
            data,
        );
        if put.status != 201 {
            self.unexpected(&format!("finish upload of {digest} to {repo}"), &put);
        }
        digest
    }

    /// `PUT /v2/<repo>/manifests/<reference>`; returns the registry's
    /// `Docker-Content-Digest`.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        manifest: &[u8],
    ) -> String {
        let resp = self.http(
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Content-Type", media_type)],
            manifest,
        );
        if resp.status != 201 {
            self.unexpected(&format!("put manifest {repo}:{reference}"), &resp);
        }
        resp.header("Docker-Content-Digest")
            .expect("Docker-Content-Digest header")
            .to_string()
    }

    /// `(Content-Type, bytes)` of a manifest, or `None` on 404.
    pub fn get_manifest(&self, repo: &str, reference: &str) -> Option<(String, Vec<u8>)> {
        let resp = self.http(
            "GET",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Accept", MANIFEST_ACCEPT)],
            b"",
        );
        match resp.status {
            200 => Some((
                resp.header("Content-Type").unwrap_or_default().to_string(),
                resp.body,
            )),
            404 => None,
            _ => self.unexpected(&format!("get manifest {repo}:{reference}"), &resp),
        }
    }

    /// A blob's bytes, or `None` on 404.
    pub fn get_blob(&self, repo: &str, digest: &str) -> Option<Vec<u8>> {
        let resp = self.http("GET", &format!("/v2/{repo}/blobs/{digest}"), &[], b"");
        match resp.status {
            200 => Some(resp.body),
            404 => None,
            _ => self.unexpected(&format!("get blob {repo}@{digest}"), &resp),
        }
    }

    /// All tags of `repo` (following `Link` pages), or empty if the
    /// repository does not exist.
    pub fn tags(&self, repo: &str) -> Vec<String> {
        let mut tags = Vec::new();
        let mut next = Some(format!("/v2/{repo}/tags/list"));
        while let Some(path) = next.take() {
            let resp = self.http("GET", &path, &[], b"");
            match resp.status {
                200 => {}
                404 => return tags,
                _ => self.unexpected(&format!("list tags of {repo}"), &resp),
            }
            if let Some(list) = resp.json()["tags"].as_array() {
                tags.extend(list.iter().filter_map(|t| t.as_str().map(String::from)));
            }
            next = resp.header("Link").and_then(link_next);
        }
        tags
    }

    /// `skopeo inspect --raw` of `repo_tag` (`repo:tag` or `repo@digest`) on
    /// this registry, with `--creds` when authentication is configured.
    /// `None` (with skopeo's stderr printed) if skopeo fails.
    pub fn skopeo_inspect_raw(&self, repo_tag: &str) -> Option<String> {
        let mut cmd = Command::new("skopeo");
        cmd.args([
            "--command-timeout",
            "20s",
            "inspect",
            "--raw",
            "--tls-verify=false",
        ])
        .args(["--retry-times", "0"]);
        if let Some((user, password)) = self.credentials() {
            cmd.arg("--creds").arg(format!("{user}:{password}"));
        } else {
            cmd.arg("--no-creds");
        }
        // Keep the user's auth files and registries.conf out of it.
        let home = self.dir.path().join("skopeo-home");
        let _ = fs::create_dir_all(&home);
        cmd.arg(format!("docker://{}/{repo_tag}", self.url()))
            .env("HOME", &home)
            .env("XDG_RUNTIME_DIR", &home)
            .env("XDG_CONFIG_HOME", &home)
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("DOCKER_CONFIG")
            .stdin(Stdio::null());
        let out = match cmd.output() {
            Ok(out) => out,
            Err(e) => {
                eprintln!(
                    "registry harness: could not run skopeo ({e}); install it \
                     (scripts/lib/setup.sh: ensure_registry)"
                );
                return None;
            }
        };
        if !out.status.success() {
            eprintln!(
                "registry harness: skopeo inspect {repo_tag} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        Some(String::from_utf8(out.stdout).expect("skopeo output is UTF-8"))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
        // Then the fields drop: `dir` (a TempDir) is removed and the token
        // server's thread stops.
    }
}

fn write_htpasswd(path: &Path, user: &str, password: &str) {
    let out = Command::new("htpasswd")
        .args(["-Bbn", user, password])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "registry harness: could not run htpasswd ({e}); install apache2-utils \
                 (scripts/lib/setup.sh: ensure_registry)"
            )
        });
    assert!(
        out.status.success(),
        "registry harness: htpasswd failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout).expect("htpasswd output is UTF-8");
    fs::write(path, format!("{}\n", line.trim())).expect("registry harness: write htpasswd");
}

// ---------------------------------------------------------------------------
// Processes.

/// SIGTERM, then SIGKILL if it takes longer than STOP_TIMEOUT; reaps.
fn stop_child(child: &mut Child) {
    if process::stop(child, "TERM", STOP_TIMEOUT) {
        return;
    }
    eprintln!("registry harness: registry did not stop within {STOP_TIMEOUT:?}; killing it");
    let _ = child.kill();
    let _ = child.wait();
}

/// Removes `<tmp>/squizzle-registry.<pid>.*` left by processes that are gone.
fn sweep_stale_dirs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
                continue;
            };
            let Some(pid) = rest.split('.').next().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if pid != std::process::id() && !process_alive(pid) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    });
}

// ---------------------------------------------------------------------------
// The token server.

struct TokenServer {
    addr: SocketAddr,
    cert_path: PathBuf,
    state: Arc<TokenState>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

struct TokenState {
    user: String,
    password: String,
    key: KeyPair,
    /// Base64 (standard, padded) DER of the certificate, for `x5c`.
    cert_b64: String,
    requests: Mutex<Vec<TokenRequest>>,
    counter: AtomicU64,
}

impl TokenServer {
    fn start(dir: &Path, user: &str, password: &str) -> TokenServer {
        let key = KeyPair::generate().expect("registry harness: token signing key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("cert params");
        params
            .distinguished_name
            .push(DnType::CommonName, TOKEN_ISSUER);
        let cert = params
            .self_signed(&key)
            .expect("registry harness: token certificate");
        let cert_path = dir.join("token-root.pem");
        fs::write(&cert_path, cert.pem()).expect("registry harness: write token-root.pem");

        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("registry harness: bind token server");
        let addr = listener.local_addr().expect("token server address");
        let state = Arc::new(TokenState {
            user: user.into(),
            password: password.into(),
            key,
            cert_b64: b64(cert.der(), false),
            requests: Mutex::new(Vec::new()),
            counter: AtomicU64::new(0),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let state = state.clone();
            let stop = stop.clone();
            thread::Builder::new()
                .name("registry-token-server".into())
                .spawn(move || {
                    for conn in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(conn) = conn else { continue };
                        let state = state.clone();
                        let _ = thread::Builder::new()
                            .name("registry-token-conn".into())
                            .spawn(move || {
                                let _ = serve_token(&state, conn);
                            });
                    }
                })
                .expect("registry harness: start token server")
        };
        TokenServer {
            addr,
            cert_path,
            state,
            stop,
            thread: Some(thread),
        }
    }

    fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl TokenState {
    /// An ES256 JWT for `sub` with `access` (a list of
    /// `{"type", "name", "actions"}`), certificate in `x5c`.
    fn jwt(&self, sub: &str, access: Vec<serde_json::Value>) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970");
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let header = serde_json::json!({
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [self.cert_b64],
        });
        let claims = serde_json::json!({
            "iss": TOKEN_ISSUER,
            "sub": sub,
            "aud": TOKEN_SERVICE,
            "exp": now.as_secs() + TOKEN_TTL_SECS,
            "nbf": now.as_secs() - 10,
            "iat": now.as_secs(),
            "jti": format!("{}-{}-{n}", std::process::id(), now.as_nanos()),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes(), true),
            b64(claims.to_string().as_bytes(), true)
        );
        let der = self
            .key
            .sign(signing_input.as_bytes())
            .expect("registry harness: sign token");
        format!("{signing_input}.{}", b64(&ecdsa_der_to_jose(&der), true))
    }
}

/// Answers one request on `conn` (then closes it).
fn serve_token(state: &TokenState, conn: TcpStream) -> io::Result<()> {
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut params = parse_form(query);
    if method == "POST" {
        if header("expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue")) {
            let mut w = conn.try_clone()?;
            w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let len: usize = header("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        params.extend(parse_form(&String::from_utf8_lossy(&body)));
    }
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };

    let mut conn = conn;
    if path != "/token" || (method != "GET" && method != "POST") {
        return respond(&mut conn, 404, &[], r#"{"error":"not found"}"#);
    }
    // Credentials: basic for GET (and POST), or an OAuth2 password grant.
    let presented = match header("authorization").and_then(parse_basic) {
        Some(creds) => Some(creds),
        None if method == "POST" && param("grant_type").as_deref() == Some("password") => {
            param("username").zip(param("password"))
        }
        None => None,
    };
    let service = param("service");
    let scopes: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(String::from).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect();
    let mut record = TokenRequest {
        method: method.clone(),
        user: presented.as_ref().map(|(u, _)| u.clone()),
        service: service.clone(),
        scopes: scopes.clone(),
        granted: false,
    };
    let authenticated = presented
        .as_ref()
        .is_some_and(|(u, p)| *u == state.user && *p == state.password);
    if !authenticated {
        state.requests.lock().unwrap().push(record);
        return respond(
            &mut conn,
            401,
            &[("WWW-Authenticate", "Basic realm=\"squizzle-test-token\"")],
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        );
    }
    if service.as_deref() != Some(TOKEN_SERVICE) {
        state.requests.lock().unwrap().push(record);
        return respond(
            &mut conn,
            400,
            &[],
            r#"{"errors":[{"code":"UNSUPPORTED","message":"unknown service"}]}"#,
        );
    }
    // Grant exactly what is asked (merging repeated scopes per resource).
    let mut access: Vec<(String, String, Vec<String>)> = Vec::new();
    for scope in &scopes {
        let Some((kind, rest)) = scope.split_once(':') else {
            continue;
        };
        let Some((name, actions)) = rest.rsplit_once(':') else {
            continue;
        };
        let idx = match access.iter().position(|(k, n, _)| k == kind && n == name) {
            Some(i) => i,
            None => {
                access.push((kind.into(), name.into(), Vec::new()));
                access.len() - 1
            }
        };
        for action in actions.split(',').filter(|a| !a.is_empty()) {
            if !access[idx].2.iter().any(|a| a == action) {
                access[idx].2.push(action.into());
            }
        }
    }
    let access = access
        .into_iter()
        .map(|(kind, name, actions)| {
            serde_json::json!({"type": kind, "name": name, "actions": actions})
        })
        .collect();
    let token = state.jwt(&state.user, access);
    record.granted = true;
    state.requests.lock().unwrap().push(record);
    let issued_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let body = serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": TOKEN_TTL_SECS,
        "issued_at": issued_at,
    });
    respond(&mut conn, 200, &[], &body.to_string())
}

fn respond(
    conn: &mut TcpStream,
    status: u16,
    headers: &[(&str, &str)],
    body: &str,
) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Error",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    conn.write_all(body.as_bytes())?;
    conn.flush()?;
    let _ = conn.shutdown(Shutdown::Write);
    Ok(())
}

// ---------------------------------------------------------------------------
// HTTP client pieces.

/// One HTTP/1.1 request to `addr` (`Connection: close`); reads the whole
/// response, decoding chunked bodies.
///
/// A non-empty body is sent with `Expect: 100-continue` and only after the
/// server's `100 Continue`: a registry that refuses a request early (401)
/// answers without reading the body and closes the connection, and a body
/// still in flight would make the kernel reset the connection and drop that
/// answer. If no interim answer comes within 2 s, the body is sent anyway.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<HttpResponse> {
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    if (!body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH")) && !has("Content-Length") {
        let _ = write!(head, "Content-Length: {}\r\n", body.len());
    }
    if !has("User-Agent") {
        head.push_str("User-Agent: squizzle-test-harness\r\n");
    }
    let expect_continue = !body.is_empty() && !has("Expect");
    if expect_continue {
        head.push_str("Expect: 100-continue\r\n");
    }
    for (k, v) in headers {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    let mut reader = BufReader::new(conn.try_clone()?);

    let mut body_sent = !expect_continue;
    if body_sent {
        conn.write_all(body)?;
    } else {
        conn.set_read_timeout(Some(Duration::from_secs(2)))?;
        let ready = reader.fill_buf().map(|b| !b.is_empty());
        conn.set_read_timeout(Some(IO_TIMEOUT))?;
        match ready {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                conn.write_all(body)?;
                body_sent = true;
            }
            Err(e) => return Err(e),
        }
    }
    let (status, headers) = loop {
        let (status, headers) = read_head(&mut reader)?;
        if !(100..200).contains(&status) {
            break (status, headers);
        }
        if status == 100 && !body_sent {
            conn.write_all(body)?;
            body_sent = true;
        }
    };
    let mut resp = HttpResponse {
        status,
        headers,
        body: Vec::new(),
    };
    if method == "HEAD" || status == 204 || status == 304 {
        return Ok(resp);
    }
    if resp
        .header("Transfer-Encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"))
    {
        resp.body = read_chunked(&mut reader)?;
    } else if let Some(len) = resp.header("Content-Length").and_then(|l| l.parse().ok()) {
        resp.body = vec![0; len];
        reader.read_exact(&mut resp.body)?;
    } else {
        reader.read_to_end(&mut resp.body)?;
    }
    Ok(resp)
}

fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before the response was complete",
        ));
    }
    Ok(String::from_utf8_lossy(&line).trim_end().to_string())
}

/// Status line and headers.
fn read_head(reader: &mut impl BufRead) -> io::Result<(u16, Vec<(String, String)>)> {
    let status_line = read_line(reader)?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            return Ok((status, headers));
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
}

fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let size_line = read_line(reader)?;
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| io::Error::other(format!("bad chunk size {size_line:?}")))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line(reader)?.is_empty() {}
            return Ok(out);
        }
        let start = out.len();
        out.resize(start + size, 0);
        reader.read_exact(&mut out[start..])?;
        read_line(reader)?;
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Clone, Debug, Default)]
pub struct Challenge {
    pub scheme: String,
    /// Parameter names lower-cased.
    pub params: HashMap<String, String>,
}

/// Parses `Scheme k="v",k2="v,2"` (one challenge).
pub fn parse_challenge(header: &str) -> Challenge {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
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
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
        }
        params.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    Challenge {
        scheme: scheme.to_string(),
        params,
    }
}

/// Gets a token for a `Bearer` challenge; `Err` carries the refusal.
fn fetch_token(challenge: &Challenge, user: &str, password: &str) -> Result<String, HttpResponse> {
    let realm = challenge
        .params
        .get("realm")
        .expect("Bearer challenge without realm");
    let rest = realm
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("registry harness: token realm {realm} is not http://"));
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr: SocketAddr = authority.parse().unwrap_or_else(|_| {
        panic!("registry harness: token realm host {authority} is not ip:port")
    });
    let mut query = Vec::new();
    if let Some(service) = challenge.params.get("service") {
        query.push(format!("service={}", pct(service)));
    }
    if let Some(scope) = challenge.params.get("scope") {
        query.extend(scope.split(' ').map(|s| format!("scope={}", pct(s))));
    }
    let target = format!(
        "{}?{}",
        if path.is_empty() { "/" } else { path },
        query.join("&")
    );
    let auth = basic_authorization(user, password);
    let resp = http_request(addr, "GET", &target, &[("Authorization", &auth)], b"")
        .unwrap_or_else(|e| panic!("registry harness: token request to {realm} failed: {e}"));
    if resp.status != 200 {
        return Err(resp);
    }
    let json = resp.json();
    Ok(json["token"]
        .as_str()
        .or_else(|| json["access_token"].as_str())
        .expect("token response without token")
        .to_string())
}

/// `Basic base64(user:password)`.
pub fn basic_authorization(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        b64(format!("{user}:{password}").as_bytes(), false)
    )
}

fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, value) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(b64_decode(value.trim())?).ok()?;
    let (u, p) = decoded.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// The target of `<...>; rel="next"` in a `Link` header.
pub fn link_next(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `application/x-www-form-urlencoded` (also query strings) into pairs.
fn parse_form(s: &str) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                    match u8::from_str_radix(hex, 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Base64 and ECDSA signature encoding.

const B64_STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Standard base64 with padding, or (`url`) base64url without padding.
pub fn b64(data: &[u8], url: bool) -> String {
    let alphabet = if url { B64_URL } else { B64_STD };
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..=chunk.len() {
            out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
        if !url {
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard or URL-safe base64, padded or not.
pub fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
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

/// DER `SEQUENCE { INTEGER r, INTEGER s }` to the JOSE form `r || s`
/// (32 bytes each, for P-256).
pub fn ecdsa_der_to_jose(der: &[u8]) -> Vec<u8> {
    fn read_len(der: &[u8], i: &mut usize) -> usize {
        let first = der[*i];
        *i += 1;
        if first & 0x80 == 0 {
            return usize::from(first);
        }
        let mut len = 0;
        for _ in 0..(first & 0x7f) {
            len = (len << 8) | usize::from(der[*i]);
            *i += 1;
        }
        len
    }
    fn read_int(der: &[u8], i: &mut usize) -> [u8; 32] {
        assert_eq!(der[*i], 0x02, "ECDSA signature: expected INTEGER");
        *i += 1;
        let len = read_len(der, i);
        let mut bytes = &der[*i..*i + len];
        *i += len;
        while bytes.len() > 32 && bytes[0] == 0 {
            bytes = &bytes[1..];
        }
        assert!(bytes.len() <= 32, "ECDSA signature: integer too long");
        let mut out = [0u8; 32];
        out[32 - bytes.len()..].copy_from_slice(bytes);
        out
    }
    assert_eq!(
        der.first(),
        Some(&0x30),
        "ECDSA signature: expected SEQUENCE"
    );
    let mut i = 1;
    let _ = read_len(der, &mut i);
    let r = read_int(der, &mut i);
    let s = read_int(der, &mut i);
    [r, s].concat()
}
