//! The bottom layer of the registry client: one `reqwest` client per store,
//! the scheme, the redirect policy, sending one request, reading a capped
//! body, and the one map from an HTTP answer to a [`StoreError`].
//!
//! Layers, as oras-go has them: this transport (with the retry policy of
//! `retry.rs` around whole attempts), then authentication (`auth.rs`: the
//! challenge, one token exchange, a token cache per scope), then the
//! repository operations (`repository.rs`, `referrers.rs`). Nothing here
//! knows about tokens or OCI content.
//!
//! Rules:
//! - HTTPS always, except plain HTTP for a loopback host or `insecure = true`;
//!   decided once, in [`Transport::new`].
//! - Redirects are followed (at most 5 hops), but a manifest request may only
//!   be redirected on the registry's own `host:port`: a redirect elsewhere is
//!   [`StoreError::RemoteRedirect`] (exit 6) and the other host is never
//!   asked. Blobs may be redirected anywhere (a CDN): their bytes are checked
//!   against their digests. Credentials never follow a redirect to another
//!   host (reqwest drops `Authorization` on a cross-host hop).
//! - No credential reaches an error: messages are built from status codes,
//!   registry error codes, bodies of error answers and URLs that never carry
//!   userinfo (refused at parse).

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};

use super::reference::{RegistryOptions, RegistryRef};
use super::retry::{self, Attempt, Verdict};
use crate::core::errors::error_chain;
use crate::store::StoreError;

/// Redirect hops followed at most.
const MAX_REDIRECTS: usize = 5;

/// What a request carries to prove who we are.
#[derive(Clone, Copy)]
pub(super) enum Credential<'a> {
    Bearer(&'a str),
    Basic(&'a str, &'a str),
}

/// A [`Credential`] held beyond one call.
pub(super) enum HeldCredential {
    Bearer(String),
    Basic(String, String),
}

impl HeldCredential {
    pub fn credential(&self) -> Credential<'_> {
        match self {
            Self::Bearer(t) => Credential::Bearer(t),
            Self::Basic(u, p) => Credential::Basic(u, p),
        }
    }
}

/// One request: what it is (for messages), where it goes, what it carries.
pub(super) struct Request<'a> {
    pub what: &'a str,
    pub method: Method,
    pub url: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: Option<Bytes>,
    /// Body bytes read at most by [`Transport::read`].
    pub limit: u64,
}

/// One answer of the registry with its body read (at most the request's limit).
pub(super) struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Bytes,
    /// The body was longer than the limit (and `body` holds only the start).
    pub overflow: bool,
    /// Which attempt of the retry policy got this answer (1 for the first).
    pub attempt: u32,
}

impl Answer {
    pub fn header(&self, name: impl reqwest::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `next` target of the answer's `Link` headers, if any.
    pub fn next_link(&self) -> Option<String> {
        self.headers
            .get_all(reqwest::header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(next_link)
    }
}

/// The one HTTP client of a registry store.
pub(super) struct Transport {
    http: Result<reqwest::Client, String>,
    /// `http(s)://host[:port]`
    origin: String,
    /// Whether the registry itself is reached over plain HTTP.
    plain_http: bool,
    /// `host[:port]/repository`, for messages.
    name: String,
}

impl Transport {
    pub fn new(reference: &RegistryRef, opts: &RegistryOptions) -> Self {
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
        Self {
            http,
            origin: format!("{scheme}://{}", reference.registry),
            plain_http,
            name: reference.to_string(),
        }
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn plain_http(&self) -> bool {
        self.plain_http
    }

    /// `host[:port]/repository`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// An absolute URL for a `Location` or `Link` target the registry gave
    /// (absolute, or a path on the registry).
    pub fn absolute(&self, target: &str) -> String {
        if target.starts_with('/') {
            format!("{}{target}", self.origin)
        } else {
            target.to_owned()
        }
    }

    fn client(&self) -> Result<&reqwest::Client, Attempt> {
        self.http.as_ref().map_err(|e| {
            Attempt::permanent(StoreError::Registry {
                registry: self.name.clone(),
                reason: e.clone(),
            })
        })
    }

    /// Sends `req` once with `credential`; the answer's body is not read yet.
    pub async fn send(
        &self,
        req: &Request<'_>,
        credential: Option<Credential<'_>>,
    ) -> Result<reqwest::Response, Attempt> {
        self.send_body(req, req.body.clone().map(reqwest::Body::from), credential)
            .await
    }

    /// [`Self::send`] with `body` instead of the request's own (a stream,
    /// which cannot be sent twice).
    pub async fn send_body(
        &self,
        req: &Request<'_>,
        body: Option<reqwest::Body>,
        credential: Option<Credential<'_>>,
    ) -> Result<reqwest::Response, Attempt> {
        let mut rb = self.client()?.request(req.method.clone(), req.url);
        for (k, v) in req.headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.body(b);
        }
        let auth = match credential {
            Some(Credential::Bearer(_)) => "bearer",
            Some(Credential::Basic(..)) => "basic",
            None => "anonymous",
        };
        rb = match credential {
            Some(Credential::Bearer(t)) => rb.bearer_auth(t),
            Some(Credential::Basic(u, p)) => rb.basic_auth(u, Some(p)),
            None => rb,
        };
        // The URL without its query: a redirect target may carry a signature.
        let url = req.url.split('?').next().unwrap_or_default();
        let started = std::time::Instant::now();
        let sent = rb.send().await;
        match &sent {
            Ok(r) => tracing::debug!(
                method = %req.method, %url, auth, status = r.status().as_u16(),
                ms = started.elapsed().as_millis() as u64, "{}", req.what
            ),
            Err(e) => tracing::debug!(method = %req.method, %url, auth, error = %e, "{}", req.what),
        }
        sent.map_err(|e| match foreign_redirect(&e) {
            Some(to) => Attempt::permanent(StoreError::RemoteRedirect {
                registry: self.name.clone(),
                what: req.what.to_owned(),
                to,
            }),
            None => self.http_err(req.what, &e),
        })
    }

    /// Reads the body of `resp` (at most `limit` bytes; a `HEAD` has none).
    pub async fn read(
        &self,
        what: &str,
        method: &Method,
        resp: reqwest::Response,
        limit: u64,
    ) -> Result<Answer, Attempt> {
        let status = resp.status();
        let headers = resp.headers().clone();
        let mut overflow = resp.content_length().is_some_and(|n| n > limit);
        let mut body = Vec::new();
        if !overflow && *method != Method::HEAD {
            let mut stream = resp.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| self.http_err(what, &e))?;
                let room = (limit as usize).saturating_sub(body.len());
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

    /// A failed request or body, sorted for the exit codes, with its retry
    /// verdict.
    pub fn http_err(&self, what: &str, e: &reqwest::Error) -> Attempt {
        let chain = error_chain(e);
        let verdict = retry::reqwest_verdict(e);
        let error = if e.is_connect() || e.is_timeout() {
            StoreError::RemoteUnreachable {
                registry: self.name.clone(),
                reason: format!("{what}: {chain}"),
            }
        } else {
            StoreError::Registry {
                registry: self.name.clone(),
                reason: format!("{what}: {chain}"),
            }
        };
        Attempt::with_verdict(error, verdict)
    }

    /// Content larger than a request allows.
    pub fn too_large(&self, what: &str, limit: u64) -> StoreError {
        StoreError::Registry {
            registry: self.name.clone(),
            reason: format!("{what}: larger than {limit} bytes"),
        }
    }

    /// A registry failure that is not an HTTP status.
    pub fn failure(&self, what: &str, reason: impl std::fmt::Display) -> StoreError {
        StoreError::Registry {
            registry: self.name.clone(),
            reason: format!("{what}: {reason}"),
        }
    }

    /// An answer that is not a success, with its retry verdict: 408, 429,
    /// 500, 502, 503 and 504 (and the error codes `TOOMANYREQUESTS` and
    /// `UNAVAILABLE`) may pass, and `Retry-After` says when to ask again.
    pub fn refusal(&self, what: &str, answer: &Answer) -> Attempt {
        let text = error_text(&answer.body);
        let verdict = match retry::http_verdict(answer.status.as_u16()) {
            Verdict::Permanent if text.contains("\"TOOMANYREQUESTS\"") => Verdict::RateLimited,
            Verdict::Permanent if text.contains("\"UNAVAILABLE\"") => Verdict::Unavailable,
            v => v,
        };
        Attempt::with_verdict(self.status_err(what, answer), verdict).retry_after(
            answer
                .header(reqwest::header::RETRY_AFTER)
                .and_then(|v| parse_retry_after(v, SystemTime::now())),
        )
    }

    /// The one map from a registry's refusal to the kinds the CLI gives exit
    /// codes to.
    pub fn status_err(&self, what: &str, answer: &Answer) -> StoreError {
        let status = answer.status;
        let text = error_text(&answer.body);
        let registry = self.name.clone();
        let has_code = |c: &str| text.contains(&format!("\"{c}\""));
        let auth_hint = "check [registry] username/password or SQUIZZLE_REGISTRY_TOKEN";
        match status.as_u16() {
            401 => StoreError::RemoteAuth {
                registry,
                reason: format!(
                    "{what}: the registry refused the credentials (401 Unauthorized); {auth_hint}"
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
            _ if has_code("UNAUTHORIZED") => StoreError::RemoteAuth {
                registry,
                reason: format!("{what}: the registry refused the credentials; {auth_hint}"),
            },
            _ if has_code("DENIED") => StoreError::RemoteAuth {
                registry,
                reason: format!("{what}: access denied"),
            },
            _ if has_code("MANIFEST_UNKNOWN")
                || has_code("BLOB_UNKNOWN")
                || has_code("NAME_UNKNOWN") =>
            {
                StoreError::RemoteNotFound {
                    what: what.to_owned(),
                    registry,
                }
            }
            _ if has_code("DIGEST_INVALID") || has_code("SIZE_INVALID") => {
                StoreError::RemoteDigestMismatch {
                    what: what.to_owned(),
                    registry,
                    expected: "content matching its digest".into(),
                    actual: format!("{status}: {}", text.trim()),
                }
            }
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
}

/// The start of an error answer's body, as text.
fn error_text(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(2048)]).into_owned()
}

/// `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 10.2.3); a date in
/// the past means now.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(v, &format)
        .ok()?
        .assume_utc();
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(at.unix_timestamp()).ok()?);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
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

/// A manifest request the registry redirected to another host, refused by
/// [`redirect_policy`] (found again in the error chain by [`Transport::send`]).
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
    fn parses_retry_after_in_both_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn plain_http_only_for_loopback_or_when_allowed() {
        let t = |r: &str, insecure| {
            let reference = RegistryRef::parse(r).unwrap();
            let opts = RegistryOptions {
                insecure,
                ..Default::default()
            };
            Transport::new(&reference, &opts).origin().to_owned()
        };
        assert_eq!(t("ghcr.io/acme/m", false), "https://ghcr.io");
        assert_eq!(t("ghcr.io/acme/m", true), "http://ghcr.io");
        for local in [
            "127.0.0.1:5000/x",
            "localhost:5000/x",
            "[::1]:5000/x",
            "127.1.2.3/x",
        ] {
            assert!(t(local, false).starts_with("http://"), "{local}");
        }
        // Names that merely start like loopback are not loopback.
        for remote in [
            "127.0.0.1.example.com/x",
            "localhost.example.com/x",
            "10.0.0.1/x",
        ] {
            assert!(t(remote, false).starts_with("https://"), "{remote}");
        }
    }
}
