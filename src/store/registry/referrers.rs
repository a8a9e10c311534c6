//! Referrers, deletion and paginated tag listing on a registry: the calls
//! `oci-client` does not make (or does not let us see the answers of), sent
//! with a small raw HTTP client that shares the store's address rules and
//! credentials.
//!
//! Referrers (OCI distribution spec 1.1):
//! - A referrer is an OCI image manifest with a `subject`, pushed by digest
//!   (untagged).
//! - If the registry has the referrers API (the manifest `PUT` answers with an
//!   `OCI-Subject` header, or `GET /v2/<name>/referrers/<digest>` answers 200
//!   with an image index), the registry lists referrers itself.
//! - Otherwise squizzle maintains the referrers tag schema: the tag
//!   `sha256-<hex of the subject digest>` points at an OCI image index listing
//!   one descriptor per referrer (with `artifactType` and annotations).
//!   Registries without the API have no conditional `PUT` either, so the index
//!   is updated optimistically: read, merge (dedupe by digest), `PUT`, read back
//!   at once and again after a short jittered settle delay; if our entry is
//!   gone (a concurrent writer read the index before our `PUT` and wrote after
//!   it), merge again and retry, a bounded number of times with jittered
//!   backoff. Every writer does the same, so a writer whose entry survives two
//!   read-backs has seen the others' writes land, and entries are only ever
//!   added.
//!
//! Deleting: `DELETE /v2/<name>/manifests/<digest>` (distribution 2.8 deletes by
//! digest only and drops every tag pointing at that manifest). A registry that
//! does not allow deletion (405, or error code `UNSUPPORTED`) gets
//! [`StoreError::RemoteUnsupported`].
//!
//! Tags: `GET /v2/<name>/tags/list`, following `Link: <...>; rel="next"`
//! headers when the registry paginates.
//!
//! Manifests: `GET /v2/<name>/manifests/<tag or digest>`, the body streamed
//! under [`oci::MAX_MANIFEST_BYTES`]. Redirects are followed (at most 5 hops),
//! but a manifest request may only be redirected on the registry's own
//! `host:port`: a redirect elsewhere is [`StoreError::RemoteRedirect`] (exit 6),
//! and the other host is never asked. Blobs may be redirected anywhere (their
//! bytes are checked against their digests).
//!
//! Every raw request goes through the store's retry policy (`retry.rs`): one
//! attempt is the request with its body read; network failures, cut bodies
//! and 408/429/500/502/503/504 answers are tried again with capped jittered
//! backoff, and a registry that stays unavailable ends in
//! [`StoreError::RemoteUnreachable`] (exit 3) naming the attempts. A `DELETE`
//! retried after a lost answer that finds the manifest gone counts as done.
//!
//! Authentication: a request carries the current bearer token (the configured
//! or negotiated one, then the last one exchanged here). On a `401` with a
//! `Bearer` challenge the token is exchanged (again) once at the challenge's
//! realm and the request sent once more; that second answer is final (a
//! second `401` is [`StoreError::RemoteAuth`], exit 4). That is how a token
//! that expires mid-operation, or lacks the scope a request needs (`push`,
//! `delete`), is replaced. The username and password only go to a realm that
//! [`auth::realm_allowed`] accepts (the registry's own host, or an HTTPS
//! sibling under the same parent domain); any other realm gets nothing and the
//! request fails with exit 4. Without a `Bearer` challenge, the basic
//! credentials go to the registry itself.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher as _};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};

use super::retry::{self, Attempt, Verdict};
use super::{RegistryOptions, RegistryRef, RegistryStore, StoreError, auth};
use crate::core::digest::Digest;
use crate::core::errors::error_chain;
use crate::core::oci::{self, Descriptor, ImageIndex, ImageManifest};
use crate::core::redact::register_secret;

/// Attempts to get an entry into the referrers tag-schema index.
const TAG_SCHEMA_ATTEMPTS: u32 = 12;
/// Settle delay before the second read-back (plus up to the same again as jitter).
const SETTLE_MS: u64 = 150;
/// Pages of a paginated tag list squizzle follows at most.
const MAX_PAGES: usize = 10_000;
/// Body bytes kept of answers whose body only matters in an error message.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// A small blob given in memory (config or layer of a referrer).
#[derive(Debug, Clone, Copy)]
pub struct ReferrerBlob<'a> {
    pub media_type: &'a str,
    pub data: &'a [u8],
}

/// The raw HTTP side of a [`RegistryStore`].
pub(super) struct Raw {
    http: Result<reqwest::Client, String>,
    /// `http(s)://host[:port]`
    origin: String,
    /// Whether the registry itself is reached over plain HTTP.
    plain_http: bool,
    /// Username and password to exchange for a token (or to send to the
    /// registry itself when it asks for basic authentication).
    basic: Option<(String, String)>,
    /// The bearer token sent first: the configured (or negotiated) one, then
    /// the last one a token exchange here gave.
    token: Mutex<Option<String>>,
    /// Whether the registry has the referrers API, once known.
    api: Mutex<Option<bool>>,
}

impl Raw {
    pub(super) fn new(reference: &RegistryRef, opts: &RegistryOptions) -> Self {
        let plain_http = reference.is_loopback() || opts.insecure;
        let scheme = if plain_http { "http" } else { "https" };
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(120))
            .user_agent(concat!("squizzle/", env!("CARGO_PKG_VERSION")))
            .redirect(redirect_policy(reference, scheme));
        let mut http = Ok(());
        if let Some(pem) = &opts.ca_pem {
            match reqwest::Certificate::from_pem_bundle(pem) {
                Ok(certs) => builder = builder.tls_certs_merge(certs),
                Err(e) => http = Err(format!("the registry CA file is not valid PEM: {e}")),
            }
        }
        let http = http.and_then(|()| {
            builder
                .build()
                .map_err(|e| format!("cannot set up the HTTP client: {}", error_chain(&e)))
        });
        let basic = opts
            .username
            .as_deref()
            .filter(|u| !u.is_empty())
            .map(|u| (u.to_owned(), opts.password.clone().unwrap_or_default()));
        let token = opts.token.clone().filter(|t| !t.is_empty());
        Self {
            http,
            origin: format!("{scheme}://{}", reference.registry),
            plain_http,
            basic,
            token: Mutex::new(token),
            api: Mutex::new(None),
        }
    }

    fn api(&self) -> Option<bool> {
        *self.api.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_api(&self, value: bool) {
        *self.api.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
    }

    fn token(&self) -> Option<String> {
        self.token.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_token(&self, token: String) {
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = Some(token);
    }
}

/// Redirect hops followed at most.
const MAX_REDIRECTS: usize = 5;

/// A manifest request the registry redirected to another host, refused by
/// [`redirect_policy`] (found again in the error chain by `send_once`).
#[derive(Debug)]
struct ForeignRedirect {
    /// `host:port` of the redirect target.
    to: String,
}

impl std::fmt::Display for ForeignRedirect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "manifest redirect to {} refused", self.to)
    }
}

impl std::error::Error for ForeignRedirect {}

/// `host:port` of a URL (the scheme's default port when none is given).
fn authority(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// Up to [`MAX_REDIRECTS`] hops; a manifest request (`/manifests/` in the
/// path of the first URL) may only be redirected on the registry's own
/// `host:port`. Blobs and everything else may go elsewhere (a CDN): their
/// content is checked against digests.
fn redirect_policy(reference: &RegistryRef, scheme: &str) -> reqwest::redirect::Policy {
    let home = reqwest::Url::parse(&format!("{scheme}://{}/", reference.registry))
        .map(|u| authority(&u))
        .unwrap_or_else(|_| reference.registry.clone());
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        let manifest = attempt
            .previous()
            .first()
            .is_some_and(|u| u.path().contains("/manifests/"));
        let to = authority(attempt.url());
        if manifest && to != home {
            return attempt.error(ForeignRedirect { to });
        }
        attempt.follow()
    })
}

/// The refused redirect target, if `e` is a refused manifest redirect.
fn foreign_redirect(e: &reqwest::Error) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(r) = err.downcast_ref::<ForeignRedirect>() {
            return Some(r.to.clone());
        }
        source = err.source();
    }
    None
}

/// What a raw request is sent with.
enum Credential<'a> {
    Bearer(&'a str),
    Basic(&'a str, &'a str),
}

/// One answer of the registry, its body read (at most the request's limit).
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Bytes,
    /// The body was longer than the limit (and `body` holds only the start).
    overflow: bool,
    /// Which attempt of the retry policy got this answer (1 for the first).
    attempt: u32,
}

impl Answer {
    fn header(&self, name: impl reqwest::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn next_link(&self) -> Option<String> {
        self.headers
            .get_all(reqwest::header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(next_link)
    }
}

/// One raw request: what it is, where it goes, what it carries.
struct Request<'a> {
    what: &'a str,
    method: Method,
    url: &'a str,
    headers: &'a [(&'a str, &'a str)],
    body: Option<Bytes>,
    /// Body bytes read at most.
    limit: u64,
}

/// The `next` target of an RFC 8288 `Link` header, if any.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|link| {
        let link = link.trim();
        let (target, params) = link.strip_prefix('<')?.split_once('>')?;
        params
            .split(';')
            .filter_map(|p| p.trim().split_once('='))
            .any(|(k, v)| {
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            })
            .then(|| target.trim().to_owned())
    })
}

/// `WWW-Authenticate: Bearer realm="..",service="..",scope=".."`.
#[derive(Debug, PartialEq, Eq)]
struct BearerChallenge {
    realm: String,
    service: Option<String>,
    scope: Option<String>,
}

/// A Bearer challenge with a realm, read with the one challenge parser
/// ([`auth::parse_challenge`]).
fn parse_bearer_challenge(header: &str) -> Option<BearerChallenge> {
    let c = auth::parse_challenge(header);
    if !c.scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    Some(BearerChallenge {
        realm: c.param("realm")?.to_owned(),
        service: c.param("service").map(str::to_owned),
        scope: c.param("scope").map(str::to_owned),
    })
}

/// A pseudo-random delay below `max_ms`, different in every process and call.
fn jitter(max_ms: u64) -> Duration {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    Duration::from_millis(h.finish() % max_ms.max(1))
}

#[derive(serde::Deserialize)]
struct TagPage {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl RegistryStore {
    fn registry_name(&self) -> String {
        self.reference.to_string()
    }

    fn repo_url(&self, rest: &str) -> String {
        format!(
            "{}/v2/{}/{rest}",
            self.raw.origin, self.reference.repository
        )
    }

    /// A failed request or body, sorted for the exit codes, with its retry
    /// verdict.
    fn http_err(&self, what: &str, e: &reqwest::Error) -> Attempt {
        let chain = error_chain(e);
        let verdict = retry::reqwest_verdict(e);
        let error = if e.is_connect() || e.is_timeout() {
            StoreError::RemoteUnreachable {
                registry: self.registry_name(),
                reason: format!("{what}: {chain}"),
            }
        } else {
            StoreError::Registry {
                registry: self.registry_name(),
                reason: format!("{what}: {chain}"),
            }
        };
        Attempt::with_verdict(error, verdict)
    }

    fn too_large(&self, what: &str, limit: u64) -> StoreError {
        StoreError::Registry {
            registry: self.registry_name(),
            reason: format!("{what}: larger than {limit} bytes"),
        }
    }

    /// Sends `req` under the retry policy (`retry.rs`): network failures,
    /// cut bodies and 408/429/500/502/503/504 answers are tried again; any
    /// other answer is returned as it is, for the caller to sort.
    async fn request(&self, req: Request<'_>) -> Result<Answer, StoreError> {
        let http = self.raw.http.as_ref().map_err(|e| StoreError::Registry {
            registry: self.registry_name(),
            reason: e.clone(),
        })?;
        self.retrying(req.what, async |attempt| {
            let mut answer = self.authenticated(http, &req).await?;
            answer.attempt = attempt;
            match retry::http_verdict(answer.status.as_u16()) {
                Verdict::Permanent => Ok(answer),
                verdict => Err(Attempt::with_verdict(
                    self.status_err(req.what, &answer),
                    verdict,
                )),
            }
        })
        .await
    }

    /// One attempt: the request with the current token (if any); on a `401`
    /// one token exchange (or, without a `Bearer` challenge, the basic
    /// credentials) and the request once more, whose answer is final.
    async fn authenticated(
        &self,
        http: &reqwest::Client,
        req: &Request<'_>,
    ) -> Result<Answer, Attempt> {
        let held = self.raw.token();
        let first = self
            .send_once(http, req, held.as_deref().map(Credential::Bearer))
            .await?;
        if first.status != StatusCode::UNAUTHORIZED {
            return Ok(first);
        }
        let challenge = first
            .headers
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(parse_bearer_challenge);
        let basic = self.raw.basic.as_ref();
        let fresh = match challenge {
            // The challenge names the scope this request needs (for DELETE:
            // the `delete` action, which oci-client never asks for).
            Some(c) => self.fetch_token(http, req.what, &c).await?,
            None => None,
        };
        let again = match (&fresh, basic) {
            (Some(t), _) => Credential::Bearer(t),
            (None, Some((u, p))) => Credential::Basic(u, p),
            (None, None) => return Ok(first),
        };
        if held.is_some() {
            tracing::debug!(
                what = req.what,
                "the registry refused the token (expired?); exchanged the credentials again"
            );
        }
        let second = self.send_once(http, req, Some(again)).await?;
        if second.status == StatusCode::UNAUTHORIZED && held.is_some() && fresh.is_some() {
            return Err(Attempt::permanent(StoreError::RemoteAuth {
                registry: self.registry_name(),
                reason: format!(
                    "{}: the registry refused its token, and then a freshly issued one too (401 Unauthorized); check [registry] username/password or SQUIZZLE_REGISTRY_TOKEN",
                    req.what
                ),
            }));
        }
        if let Some(t) = fresh
            && second.status != StatusCode::UNAUTHORIZED
        {
            self.raw.set_token(t);
        }
        Ok(second)
    }

    /// Sends the request once and reads its body (at most `req.limit` bytes).
    async fn send_once(
        &self,
        http: &reqwest::Client,
        req: &Request<'_>,
        credential: Option<Credential<'_>>,
    ) -> Result<Answer, Attempt> {
        let mut rb = http.request(req.method.clone(), req.url);
        for (k, v) in req.headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = &req.body {
            rb = rb.body(b.clone());
        }
        rb = match credential {
            Some(Credential::Bearer(t)) => rb.bearer_auth(t),
            Some(Credential::Basic(u, p)) => rb.basic_auth(u, Some(p)),
            None => rb,
        };
        let resp = rb.send().await.map_err(|e| match foreign_redirect(&e) {
            Some(to) => Attempt::permanent(StoreError::RemoteRedirect {
                registry: self.registry_name(),
                what: req.what.to_owned(),
                to,
            }),
            None => self.http_err(req.what, &e),
        })?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let mut overflow = resp.content_length().is_some_and(|n| n > req.limit);
        let mut body = Vec::new();
        if !overflow && req.method != Method::HEAD {
            let mut stream = resp.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| self.http_err(req.what, &e))?;
                let room = (req.limit as usize).saturating_sub(body.len());
                if chunk.len() > room {
                    body.extend_from_slice(&chunk[..room]);
                    overflow = true;
                    break;
                }
                body.extend_from_slice(&chunk);
            }
        }
        Ok(Answer {
            status,
            headers,
            body: Bytes::from(body),
            overflow,
            attempt: 1,
        })
    }

    /// A token from the challenge's realm for its service and scope, with the
    /// configured basic credentials (anonymous otherwise). Credentials only go
    /// to a realm [`auth::realm_allowed`] accepts (the registry's host or an
    /// HTTPS sibling under the same parent domain); an anonymous exchange
    /// needs HTTPS unless this registry itself is reached over plain HTTP.
    async fn fetch_token(
        &self,
        http: &reqwest::Client,
        what: &str,
        c: &BearerChallenge,
    ) -> Result<Option<String>, Attempt> {
        let refuse = |reason: String| {
            Attempt::permanent(StoreError::RemoteAuth {
                registry: self.registry_name(),
                reason: format!("{what}: {reason}"),
            })
        };
        let basic = self.raw.basic.as_ref();
        if basic.is_some() {
            auth::realm_allowed(&self.reference, self.raw.plain_http, &c.realm).map_err(refuse)?;
        } else if !(c.realm.starts_with("https://")
            || (self.raw.plain_http && c.realm.starts_with("http://")))
        {
            return Err(refuse(format!(
                "the token service {:?} is not HTTPS; not asking it for a token",
                c.realm
            )));
        }
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(s) = &c.service {
            query.push(("service", s));
        }
        if let Some(s) = &c.scope {
            query.push(("scope", s));
        }
        let mut rb = http.get(&c.realm).query(&query);
        if let Some((u, p)) = basic {
            rb = rb.basic_auth(u, Some(p));
        }
        let token_what = format!("{what}: token service");
        let resp = rb
            .send()
            .await
            .map_err(|e| self.http_err(&token_what, &e))?;
        let status = resp.status();
        match retry::http_verdict(status.as_u16()) {
            Verdict::Permanent => {}
            verdict => {
                return Err(Attempt::with_verdict(
                    StoreError::RemoteUnreachable {
                        registry: self.registry_name(),
                        reason: format!("{token_what} answered {status}"),
                    },
                    verdict,
                ));
            }
        }
        if !status.is_success() {
            return Err(refuse(format!(
                "the token service refused the credentials ({status}); check [registry] username/password or SQUIZZLE_REGISTRY_TOKEN"
            )));
        }
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        const LIMIT: u64 = 1024 * 1024;
        if resp.content_length().is_some_and(|n| n > LIMIT) {
            return Err(Attempt::permanent(self.too_large(&token_what, LIMIT)));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| self.http_err(&token_what, &e))?;
        if body.len() as u64 > LIMIT {
            return Err(Attempt::permanent(self.too_large(&token_what, LIMIT)));
        }
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|_| refuse("the token service did not answer with a token".into()))?;
        let token = answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty());
        if let Some(t) = &token {
            register_secret(t);
        }
        Ok(token)
    }

    /// A refusal, sorted like `map_error` sorts oci-client's.
    fn status_err(&self, what: &str, answer: &Answer) -> StoreError {
        let status = answer.status;
        let body = &answer.body;
        let text = String::from_utf8_lossy(&body[..body.len().min(2048)]).into_owned();
        let registry = self.registry_name();
        let has_code = |c: &str| text.contains(&format!("\"{c}\""));
        match status.as_u16() {
            401 => StoreError::RemoteAuth {
                registry,
                reason: format!(
                    "{what}: the registry refused the credentials (401 Unauthorized); check [registry] username/password or SQUIZZLE_REGISTRY_TOKEN"
                ),
            },
            403 => StoreError::RemoteAuth {
                registry,
                reason: format!("{what}: access denied (403 Forbidden)"),
            },
            404 => StoreError::RemoteNotFound {
                what: what.to_owned(),
                registry,
            },
            405 => StoreError::RemoteUnsupported {
                registry,
                what: what.to_owned(),
                reason: "405 Method Not Allowed".into(),
            },
            _ if has_code("UNSUPPORTED") => StoreError::RemoteUnsupported {
                registry,
                what: what.to_owned(),
                reason: format!("{status}: {}", text.trim()),
            },
            _ => StoreError::Registry {
                registry,
                reason: format!("{what}: {status}: {}", text.trim()),
            },
        }
    }

    /// `GET` of the manifest `reference` (a tag or a digest) with the OCI and
    /// Docker manifest and index types accepted: its bytes (at most
    /// [`oci::MAX_MANIFEST_BYTES`]; reading stops once the cap is passed) and
    /// its `Docker-Content-Digest`, if given. A redirect to another host is
    /// refused ([`StoreError::RemoteRedirect`]); the caller checks the digest.
    pub(super) async fn fetch_manifest(
        &self,
        reference: &str,
        what: &str,
        expected: Option<&Digest>,
    ) -> Result<(Bytes, Option<String>), StoreError> {
        let accept = super::MANIFEST_ACCEPT.join(", ");
        let answer = self
            .request(Request {
                what,
                method: Method::GET,
                url: &self.repo_url(&format!("manifests/{reference}")),
                headers: &[("Accept", &accept)],
                body: None,
                limit: oci::MAX_MANIFEST_BYTES,
            })
            .await?;
        if !answer.status.is_success() {
            return Err(self.status_err(what, &answer));
        }
        let header_digest = answer
            .header("Docker-Content-Digest")
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_owned);
        if answer.overflow {
            let digest = expected
                .copied()
                .or_else(|| header_digest.as_deref().and_then(|d| d.parse().ok()))
                .unwrap_or_else(|| Digest::of(&answer.body));
            return Err(StoreError::TooLarge {
                digest,
                limit: oci::MAX_MANIFEST_BYTES,
                what: "manifest",
            });
        }
        Ok((answer.body, header_digest))
    }

    /// Every tag of the repository, following `Link` pagination (empty if the
    /// repository does not exist yet).
    pub async fn tags_paginated(&self) -> Result<Vec<String>, StoreError> {
        let mut url = self.repo_url("tags/list");
        let mut tags = Vec::new();
        for _ in 0..MAX_PAGES {
            let answer = self
                .request(Request {
                    what: "tag list",
                    method: Method::GET,
                    url: &url,
                    headers: &[],
                    body: None,
                    limit: oci::MAX_MANIFEST_BYTES,
                })
                .await?;
            if answer.status == StatusCode::NOT_FOUND {
                return Ok(tags);
            }
            if !answer.status.is_success() {
                return Err(self.status_err("tag list", &answer));
            }
            if answer.overflow {
                return Err(self.too_large("tag list", oci::MAX_MANIFEST_BYTES));
            }
            let page: TagPage =
                serde_json::from_slice(&answer.body).map_err(|e| StoreError::Registry {
                    registry: self.registry_name(),
                    reason: format!("tag list: not a tag list: {e}"),
                })?;
            tags.extend(page.tags.unwrap_or_default());
            match answer.next_link() {
                Some(n) if n.starts_with('/') => url = format!("{}{n}", self.raw.origin),
                Some(n) if n.starts_with(&format!("{}/", self.raw.origin)) => url = n,
                Some(n) => {
                    return Err(StoreError::Registry {
                        registry: self.registry_name(),
                        reason: format!(
                            "tag list: the next page {n:?} is not on this registry; not following it"
                        ),
                    });
                }
                None => return Ok(tags),
            }
        }
        Err(StoreError::Registry {
            registry: self.registry_name(),
            reason: format!("tag list: more than {MAX_PAGES} pages"),
        })
    }

    /// Deletes the manifest `digest` (and, on distribution, every tag pointing
    /// at it). A registry that does not allow deletion is
    /// [`StoreError::RemoteUnsupported`]; an unknown digest is
    /// [`StoreError::RemoteNotFound`].
    pub async fn delete_manifest(&self, digest: &Digest) -> Result<(), StoreError> {
        let what = format!("manifest {digest}");
        let answer = self
            .request(Request {
                what: &what,
                method: Method::DELETE,
                url: &self.repo_url(&format!("manifests/{digest}")),
                headers: &[],
                body: None,
                limit: ERROR_BODY_LIMIT,
            })
            .await?;
        // A retried DELETE may find that the attempt whose answer was lost
        // already deleted the manifest.
        if answer.status.is_success()
            || (answer.status == StatusCode::NOT_FOUND && answer.attempt > 1)
        {
            self.lock_cache().remove(digest);
            return Ok(());
        }
        Err(match self.status_err(&what, &answer) {
            StoreError::RemoteUnsupported { registry, what, .. } => StoreError::RemoteUnsupported {
                registry,
                what,
                reason: "the registry does not allow deleting manifests (for distribution: storage.delete.enabled: true)".into(),
            },
            other => other,
        })
    }

    /// Whether the registry answers the referrers API (asked once per store).
    pub async fn has_referrers_api(&self, subject: &Digest) -> Result<bool, StoreError> {
        if let Some(known) = self.raw.api() {
            return Ok(known);
        }
        let answer = self
            .request(Request {
                what: "referrers",
                method: Method::GET,
                url: &self.repo_url(&format!("referrers/{subject}")),
                headers: &[("Accept", oci::IMAGE_INDEX_MEDIA_TYPE)],
                body: None,
                limit: oci::MAX_MANIFEST_BYTES,
            })
            .await?;
        if matches!(answer.status.as_u16(), 401 | 403) {
            return Err(self.status_err("referrers", &answer));
        }
        let is_index = answer
            .header(reqwest::header::CONTENT_TYPE)
            .is_some_and(|v| v.starts_with(oci::IMAGE_INDEX_MEDIA_TYPE));
        let api = answer.status == StatusCode::OK && is_index;
        self.raw.set_api(api);
        Ok(api)
    }

    /// Referrers of `subject`: from the referrers API when the registry has
    /// it, else from the `sha256-<hex>` tag-schema index. Entries of another
    /// `artifact_type` are left out.
    pub async fn referrers(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>, StoreError> {
        let mut found = if self.has_referrers_api(subject).await? {
            self.referrers_from_api(subject, artifact_type).await?
        } else {
            self.referrers_index(subject)
                .await?
                .map(|i| i.manifests)
                .unwrap_or_default()
        };
        found.retain(|d| artifact_type.is_none_or(|t| d.artifact_type.as_deref() == Some(t)));
        Ok(found)
    }

    async fn referrers_from_api(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>, StoreError> {
        let mut url = self.repo_url(&format!("referrers/{subject}"));
        if let Some(t) = artifact_type {
            url.push_str("?artifactType=");
            url.push_str(&t.replace('+', "%2B"));
        }
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let answer = self
                .request(Request {
                    what: "referrers",
                    method: Method::GET,
                    url: &url,
                    headers: &[("Accept", oci::IMAGE_INDEX_MEDIA_TYPE)],
                    body: None,
                    limit: oci::MAX_MANIFEST_BYTES,
                })
                .await?;
            if !answer.status.is_success() {
                return Err(self.status_err("referrers", &answer));
            }
            if answer.overflow {
                return Err(self.too_large("referrers", oci::MAX_MANIFEST_BYTES));
            }
            let index: ImageIndex =
                serde_json::from_slice(&answer.body).map_err(|e| StoreError::Registry {
                    registry: self.registry_name(),
                    reason: format!("referrers of {subject}: not an image index: {e}"),
                })?;
            out.extend(index.manifests);
            match answer.next_link() {
                Some(n) if n.starts_with('/') => url = format!("{}{n}", self.raw.origin),
                Some(n) if n.starts_with(&format!("{}/", self.raw.origin)) => url = n,
                _ => return Ok(out),
            }
        }
        Ok(out)
    }

    /// The tag-schema index of `subject`, if the tag exists.
    pub async fn referrers_index(
        &self,
        subject: &Digest,
    ) -> Result<Option<ImageIndex>, StoreError> {
        let tag = oci::referrers_tag(subject);
        let Some(desc) = self.resolve(&tag).await? else {
            return Ok(None);
        };
        let bytes = self.read_manifest(&desc).await?;
        let index: ImageIndex = serde_json::from_slice(&bytes)
            .ok()
            .filter(|i: &ImageIndex| i.media_type.as_deref() == Some(oci::IMAGE_INDEX_MEDIA_TYPE))
            .ok_or_else(|| StoreError::Registry {
                registry: self.registry_name(),
                reason: format!(
                    "tag {tag} (the referrers of {subject}) does not point at an OCI image index"
                ),
            })?;
        Ok(Some(index))
    }

    /// Uploads a small in-memory blob unless the registry has it.
    pub async fn push_blob_bytes(
        &self,
        media_type: &str,
        data: &[u8],
    ) -> Result<Descriptor, StoreError> {
        let desc = Descriptor::new(media_type, Digest::of(data), data.len() as u64);
        if !self.has_blob(&desc).await? {
            let what = format!("upload of blob {}", desc.digest);
            self.ensure_auth().await;
            self.retrying(&what, async |_| {
                self.client
                    .push_blob(
                        &self.tag_ref("latest"),
                        data.to_vec(),
                        &desc.digest.to_string(),
                    )
                    .await
                    .map_err(|e| self.attempt_err(&what, e))
            })
            .await?;
        }
        Ok(desc)
    }

    /// Reads a small blob into memory, refusing more than `limit` bytes and
    /// anything that does not match `desc`.
    pub async fn read_blob_bytes(
        &self,
        desc: &Descriptor,
        limit: u64,
    ) -> Result<Vec<u8>, StoreError> {
        let what = format!("blob {}", desc.digest);
        if desc.size > limit {
            return Err(StoreError::TooLarge {
                digest: desc.digest,
                limit,
                what: "small blob",
            });
        }
        let answer = self
            .request(Request {
                what: &what,
                method: Method::GET,
                url: &self.repo_url(&format!("blobs/{}", desc.digest)),
                headers: &[],
                body: None,
                limit: desc.size,
            })
            .await?;
        if !answer.status.is_success() {
            return Err(self.status_err(&what, &answer));
        }
        let size = answer.body.len() as u64;
        let actual = Digest::of(&answer.body);
        if answer.overflow || actual != desc.digest || size != desc.size {
            return Err(StoreError::RemoteDigestMismatch {
                what,
                registry: self.registry_name(),
                expected: format!("{} ({} bytes)", desc.digest, desc.size),
                actual: if answer.overflow {
                    format!("more than {} bytes", desc.size)
                } else {
                    format!("{actual} ({size} bytes)")
                },
            });
        }
        Ok(answer.body.to_vec())
    }

    /// Pushes a referrer of `subject`: its blobs (config: the empty `{}` blob
    /// when `None`), then an OCI image manifest with `artifactType`, `subject`
    /// and `annotations`, by digest, made discoverable (see the module docs).
    pub async fn push_referrer(
        &self,
        subject: &Descriptor,
        artifact_type: &str,
        config: Option<ReferrerBlob<'_>>,
        layers: &[ReferrerBlob<'_>],
        annotations: BTreeMap<String, String>,
    ) -> Result<Descriptor, StoreError> {
        let config = config.unwrap_or(ReferrerBlob {
            media_type: oci::EMPTY_MEDIA_TYPE,
            data: b"{}",
        });
        let config = self.push_blob_bytes(config.media_type, config.data).await?;
        let mut layer_descs = Vec::with_capacity(layers.len());
        for l in layers {
            layer_descs.push(self.push_blob_bytes(l.media_type, l.data).await?);
        }
        let subject = Descriptor::new(&subject.media_type, subject.digest, subject.size);
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: oci::IMAGE_MANIFEST_MEDIA_TYPE.into(),
            artifact_type: Some(artifact_type.to_owned()),
            config,
            layers: layer_descs,
            subject: Some(subject),
            annotations,
        };
        self.push_referrer_manifest(&manifest.to_canonical_json())
            .await
    }

    /// Pushes the exact bytes of a referrer manifest (its blobs must be in the
    /// registry already) by digest, then makes it discoverable.
    pub async fn push_referrer_manifest(&self, bytes: &[u8]) -> Result<Descriptor, StoreError> {
        let m: ImageManifest = serde_json::from_slice(bytes)
            .ok()
            .filter(|m: &ImageManifest| m.media_type == oci::IMAGE_MANIFEST_MEDIA_TYPE)
            .ok_or_else(|| StoreError::Registry {
                registry: self.registry_name(),
                reason: "a referrer must be an OCI image manifest".into(),
            })?;
        let Some(subject) = m.subject.clone() else {
            return Err(StoreError::Registry {
                registry: self.registry_name(),
                reason: "a referrer must have a subject".into(),
            });
        };
        let desc = m.referrer_descriptor(bytes);
        let what = format!("referrer manifest {}", desc.digest);
        let answer = self
            .request(Request {
                what: &what,
                method: Method::PUT,
                url: &self.repo_url(&format!("manifests/{}", desc.digest)),
                headers: &[("Content-Type", oci::IMAGE_MANIFEST_MEDIA_TYPE)],
                body: Some(Bytes::copy_from_slice(bytes)),
                limit: ERROR_BODY_LIMIT,
            })
            .await?;
        if !answer.status.is_success() {
            return Err(self.status_err(&what, &answer));
        }
        let oci_subject = answer
            .header("OCI-Subject")
            .is_some_and(|v| v == subject.digest.to_string());
        if oci_subject {
            self.raw.set_api(true);
            return Ok(desc);
        }
        if !self.has_referrers_api(&subject.digest).await? {
            self.add_to_referrers_tag(&subject.digest, &desc).await?;
        }
        Ok(desc)
    }

    fn index_has(index: Option<&ImageIndex>, entry: &Descriptor) -> bool {
        index.is_some_and(|i| i.manifests.iter().any(|d| d == entry))
    }

    /// Puts `entry` into the tag-schema index of `subject`, race-safely as far
    /// as a registry without conditional requests allows (module docs).
    async fn add_to_referrers_tag(
        &self,
        subject: &Digest,
        entry: &Descriptor,
    ) -> Result<(), StoreError> {
        let tag = oci::referrers_tag(subject);
        for attempt in 0..TAG_SCHEMA_ATTEMPTS {
            if attempt > 0 {
                let backoff = 50u64 << attempt.min(5);
                tokio::time::sleep(jitter(backoff)).await;
            }
            let current = self.referrers_index(subject).await?;
            if !Self::index_has(current.as_ref(), entry) {
                let mut index = current.unwrap_or_else(ImageIndex::empty);
                index.schema_version = 2;
                index.media_type = Some(oci::IMAGE_INDEX_MEDIA_TYPE.into());
                oci::merge_referrers(&mut index, std::slice::from_ref(entry));
                let bytes = serde_json::to_vec(&index).unwrap_or_default();
                self.push_manifest(&tag, oci::IMAGE_INDEX_MEDIA_TYPE, &bytes)
                    .await?;
                if !Self::index_has(self.referrers_index(subject).await?.as_ref(), entry) {
                    tracing::debug!(%tag, attempt, "referrers index overwritten by a concurrent writer; merging again");
                    continue;
                }
            }
            // A writer that read the index before our PUT may still write after
            // it: look again once such a read-modify-write has had time to land.
            tokio::time::sleep(Duration::from_millis(SETTLE_MS) + jitter(SETTLE_MS)).await;
            if Self::index_has(self.referrers_index(subject).await?.as_ref(), entry) {
                return Ok(());
            }
            tracing::debug!(%tag, attempt, "referrers index overwritten after settling; merging again");
        }
        Err(StoreError::Registry {
            registry: self.registry_name(),
            reason: format!(
                "could not add referrer {} to the referrers index {tag} after {TAG_SCHEMA_ATTEMPTS} attempts (concurrent writers)",
                entry.digest
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_link_headers() {
        assert_eq!(
            next_link(r#"</v2/acme/m/tags/list?n=2&last=1.2.0>; rel="next""#).as_deref(),
            Some("/v2/acme/m/tags/list?n=2&last=1.2.0")
        );
        assert_eq!(
            next_link(r#"<https://r.example/v2/a/tags/list?last=b&n=1>;rel=next"#).as_deref(),
            Some("https://r.example/v2/a/tags/list?last=b&n=1")
        );
        assert_eq!(
            next_link(r#"</first>; rel="prev", </second>; rel="next""#).as_deref(),
            Some("/second")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn parses_bearer_challenges() {
        let c = parse_bearer_challenge(
            r#"Bearer realm="http://127.0.0.1:1/token",service="reg",scope="repository:a/b:pull,push,delete""#,
        )
        .unwrap();
        assert_eq!(c.realm, "http://127.0.0.1:1/token");
        assert_eq!(c.service.as_deref(), Some("reg"));
        assert_eq!(c.scope.as_deref(), Some("repository:a/b:pull,push,delete"));
        let c = parse_bearer_challenge(r#"bearer realm=https://auth.example/token"#).unwrap();
        assert_eq!(c.realm, "https://auth.example/token");
        assert_eq!(c.scope, None);
        assert_eq!(parse_bearer_challenge(r#"Basic realm="x""#), None);
        assert_eq!(parse_bearer_challenge("Bearer service=x"), None);
    }

    #[test]
    fn jitter_stays_below_its_bound() {
        for _ in 0..100 {
            assert!(jitter(10) < Duration::from_millis(10));
        }
    }
}
