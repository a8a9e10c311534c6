//! Retrying registry requests that failed for a reason that may pass.
//!
//! Every request [`super::RegistryStore`] makes goes through
//! [`RegistryStore::retrying`]: one attempt is one closure call, and a failed
//! attempt carries its verdict ([`Attempt`]): transient or permanent.
//!
//! - Transient: connection refused, reset or aborted (also mid-body), timeouts,
//!   a body cut short, HTTP 408, 429, 500, 502, 503, 504 and the registry error
//!   codes `TOOMANYREQUESTS` / `UNAVAILABLE`. Retried with capped exponential
//!   backoff and full jitter ([`RetryPolicy`]). The lone 500 is retried
//!   because proxies and overloaded registries emit it for passing trouble.
//! - Permanent: everything else, notably 400, 401/403, 404, digest or size
//!   mismatches and local I/O errors. Returned at once, unchanged.
//!
//! `Retry-After` is not honoured: oci-client turns a 429 into an error value
//! without the response headers, so a 429 waits like any other transient
//! failure (at least [`MIN_429_DELAY`] scaled by the test knob).
//!
//! When the attempts or the time budget run out, the error says how many
//! attempts were made, over how long, and the last cause, and keeps the exit
//! code mapping: network failures (refused, reset, timed out, body cut) and
//! the availability statuses 502/503/504/408/429 are
//! [`StoreError::RemoteUnreachable`] (exit 3, `connection`: the registry cannot
//! be used right now, try again later); a persistent 500 stays a registry
//! failure (exit 1, `general`), as it was before retries existed.
//!
//! The raw requests of `referrers.rs` (referrers API, referrer manifests,
//! `DELETE`, paginated tags, small blobs) go through the same [`run`] with
//! [`reqwest_verdict`] and [`http_verdict`]: one attempt there is one request
//! with its body read, including a token exchange on a `401`.
//!
//! Each retry is logged with `tracing` at info (the subscriber redacts).
//! This module never prints.
//!
//! # Test and operations knob
//!
//! `SQUIZZLE_RETRY_BASE_MS` (milliseconds) can only *shorten* the waits: it
//! lowers the base delay (values above [`BASE_DELAY`] are ignored) and scales
//! the cap and the 429 floor by the same factor. Tests set it to a few
//! milliseconds to stay fast; an operator can set it to `0` for a fail-fast
//! run. It never changes what is retried or how many attempts are made.

use std::hash::{BuildHasher, Hasher as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use oci_client::errors::{OciDistributionError, OciErrorCode};

use super::RegistryStore;
use crate::store::StoreError;

/// Ceiling of the first wait. Long enough for a load balancer to drop a bad
/// backend or a registry pod to restart, short enough that a one-off blip
/// costs almost nothing.
pub const BASE_DELAY: Duration = Duration::from_millis(200);
/// Ceiling of any single wait: beyond a few seconds, waiting longer rarely
/// helps a CLI run, and the total budget matters more.
pub const MAX_DELAY: Duration = Duration::from_secs(5);
/// Attempts per request, the first included: 4 retries ride out a restart or
/// a short burst of 503s without hammering a registry that is really down.
pub const MAX_ATTEMPTS: u32 = 5;
/// No new attempt starts after this long since the first: a deploy step
/// should fail within half a minute rather than hang on a dead registry.
pub const BUDGET: Duration = Duration::from_secs(30);
/// Rate limiting asks for patience: a 429 waits at least this long (we cannot
/// read its `Retry-After`, see the module doc).
pub const MIN_429_DELAY: Duration = Duration::from_secs(1);
/// Environment variable that can only shorten the waits (module doc).
pub const BASE_MS_ENV: &str = "SQUIZZLE_RETRY_BASE_MS";

/// How long to wait between attempts, and how many to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub cap: Duration,
    pub min_429: Duration,
    pub max_attempts: u32,
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: BASE_DELAY,
            cap: MAX_DELAY,
            min_429: MIN_429_DELAY,
            max_attempts: MAX_ATTEMPTS,
            budget: BUDGET,
        }
    }
}

impl RetryPolicy {
    /// The default policy, with waits shortened by `SQUIZZLE_RETRY_BASE_MS`.
    pub fn from_env() -> Self {
        let base_ms = std::env::var(BASE_MS_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok());
        Self::default().shortened(base_ms)
    }

    /// Lowers the base to `base_ms` (never raises it) and scales the cap and
    /// the 429 floor alike.
    pub fn shortened(self, base_ms: Option<u64>) -> Self {
        let default_ms = self.base.as_millis() as u64;
        match base_ms {
            Some(ms) if ms < default_ms && default_ms > 0 => {
                let scale = |d: Duration| d.mul_f64(ms as f64 / default_ms as f64);
                Self {
                    base: Duration::from_millis(ms),
                    cap: scale(self.cap),
                    min_429: scale(self.min_429),
                    ..self
                }
            }
            _ => self,
        }
    }

    /// The wait before retry number `retry` (1 for the first retry): full
    /// jitter, a uniform draw in `[0, min(cap, base * 2^(retry-1))]`, so many
    /// clients failing together do not come back together. `unit` is a
    /// random number in `[0, 1)`.
    pub fn delay(&self, retry: u32, rate_limited: bool, unit: f64) -> Duration {
        let exp = self.base.saturating_mul(
            1u32.checked_shl(retry.saturating_sub(1))
                .unwrap_or(u32::MAX),
        );
        let ceiling = exp.min(self.cap);
        let d = ceiling.mul_f64(unit.clamp(0.0, 1.0));
        if rate_limited { d.max(self.min_429) } else { d }
    }
}

/// Why one attempt failed, and whether another may succeed.
#[derive(Debug)]
pub struct Attempt {
    pub error: StoreError,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Trying again cannot help.
    Permanent,
    /// The registry failed (500): retried; if it persists, the error keeps
    /// its kind.
    ServerError,
    /// The network or the registry's availability (refused, reset, timeout,
    /// body cut, 502/503/504/408): retried; if it persists, the registry is
    /// unreachable (exit 3).
    Unavailable,
    /// The registry asked us to slow down (429): retried after at least
    /// [`MIN_429_DELAY`]; if it persists, unreachable (exit 3).
    RateLimited,
}

impl Attempt {
    pub fn permanent(error: StoreError) -> Self {
        Self {
            error,
            verdict: Verdict::Permanent,
        }
    }

    /// A failure with the given verdict.
    pub fn with_verdict(error: StoreError, verdict: Verdict) -> Self {
        Self { error, verdict }
    }

    /// A network-level failure: retried, and unreachable if it persists.
    pub fn unavailable(error: StoreError) -> Self {
        Self {
            error,
            verdict: Verdict::Unavailable,
        }
    }
}

/// Local failures (file I/O, a blob that does not match its descriptor) and
/// everything already sorted into a [`StoreError`] are permanent.
impl From<StoreError> for Attempt {
    fn from(error: StoreError) -> Self {
        Self::permanent(error)
    }
}

/// Sorts an oci-client error: may trying again help?
pub fn classify(e: &OciDistributionError) -> Verdict {
    match e {
        OciDistributionError::ServerError { code, .. } => status_verdict(*code),
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes = || envelope.errors.iter().map(|e| &e.code);
            if codes().any(|c| matches!(c, OciErrorCode::Toomanyrequests)) {
                Verdict::RateLimited
            } else if codes().any(|c| matches!(c, OciErrorCode::Other(o) if o == "UNAVAILABLE")) {
                Verdict::Unavailable
            } else {
                Verdict::Permanent
            }
        }
        OciDistributionError::RequestError(r) => match r.status() {
            Some(s) => status_verdict(s.as_u16()),
            // A malformed request or a redirect loop will fail the same way again.
            None if r.is_builder() || r.is_redirect() => Verdict::Permanent,
            // connect, timeout, request (sending failed), body, decode: the network.
            None => Verdict::Unavailable,
        },
        OciDistributionError::IoError(io) => io_verdict(io),
        _ => Verdict::Permanent,
    }
}

/// Sorts a failure of squizzle's own raw HTTP client (`referrers.rs`):
/// connect, timeout, sending and body errors are the network (transient); a
/// malformed request or a redirect loop fails the same way again.
pub fn reqwest_verdict(e: &reqwest::Error) -> Verdict {
    match e.status() {
        Some(s) => status_verdict(s.as_u16()),
        None if e.is_builder() || e.is_redirect() => Verdict::Permanent,
        None => Verdict::Unavailable,
    }
}

/// Sorts an HTTP status answered to a raw request: 408, 429, 500, 502, 503
/// and 504 are transient, everything else is the answer.
pub fn http_verdict(status: u16) -> Verdict {
    status_verdict(status)
}

fn status_verdict(code: u16) -> Verdict {
    match code {
        429 => Verdict::RateLimited,
        500 => Verdict::ServerError,
        408 | 502 | 503 | 504 => Verdict::Unavailable,
        _ => Verdict::Permanent,
    }
}

/// Errors inside a response body stream reach us as `io::Error`s wrapping the
/// HTTP client's error (always with an inner error); a digest mismatch found
/// by oci-client's verifying stream wraps a `DigestError`. OS errors without
/// an inner error come from local files (permanent) unless their kind is a
/// network one.
pub fn io_verdict(io: &std::io::Error) -> Verdict {
    use std::io::ErrorKind as K;
    if let Some(inner) = io.get_ref() {
        if inner.is::<oci_client::errors::DigestError>() {
            return Verdict::Permanent;
        }
        return Verdict::Unavailable;
    }
    match io.kind() {
        K::ConnectionRefused
        | K::ConnectionReset
        | K::ConnectionAborted
        | K::BrokenPipe
        | K::NotConnected
        | K::TimedOut
        | K::UnexpectedEof
        | K::Interrupted => Verdict::Unavailable,
        _ => Verdict::Permanent,
    }
}

/// A random number in `[0, 1)`: std's per-process random hasher keys, mixed
/// with a counter, are plenty for jitter.
fn unit_random() -> f64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::hash::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// The text of an error without the `registry X:` and `what:` prefixes.
fn cause(e: &StoreError, what: &str) -> String {
    match e {
        StoreError::RemoteUnreachable { reason, .. } | StoreError::Registry { reason, .. } => {
            reason
                .strip_prefix(what)
                .and_then(|r| r.strip_prefix(": "))
                .unwrap_or(reason)
                .to_owned()
        }
        other => other.to_string(),
    }
}

/// Runs `attempt` until it succeeds, fails permanently, or the policy gives up.
pub async fn run<T>(
    policy: &RetryPolicy,
    registry: &str,
    what: &str,
    mut attempt: impl AsyncFnMut(u32) -> Result<T, Attempt>,
) -> Result<T, StoreError> {
    let started = Instant::now();
    let mut n = 0;
    loop {
        n += 1;
        let failure = match attempt(n).await {
            Ok(v) => return Ok(v),
            Err(f) => f,
        };
        if failure.verdict == Verdict::Permanent {
            return Err(failure.error);
        }
        let wait = policy.delay(n, failure.verdict == Verdict::RateLimited, unit_random());
        if n >= policy.max_attempts || started.elapsed() + wait > policy.budget {
            let reason = format!(
                "{what}: gave up after {n} attempt{s} over {secs:.1} s; last error: {last}",
                s = if n == 1 { "" } else { "s" },
                secs = started.elapsed().as_secs_f64(),
                last = cause(&failure.error, what),
            );
            let registry = registry.to_owned();
            return Err(match (failure.verdict, failure.error) {
                (Verdict::ServerError, StoreError::Registry { .. }) => {
                    StoreError::Registry { registry, reason }
                }
                (Verdict::ServerError, other) => other,
                _ => StoreError::RemoteUnreachable { registry, reason },
            });
        }
        tracing::info!(
            attempt = n,
            max_attempts = policy.max_attempts,
            wait_ms = wait.as_millis() as u64,
            "{what} failed ({}); retrying",
            cause(&failure.error, what)
        );
        tokio::time::sleep(wait).await;
    }
}

impl RegistryStore {
    /// Runs one registry request under the retry policy (`what` names it in
    /// messages: "manifest 1.0.0", "blob sha256:...").
    pub(super) async fn retrying<T>(
        &self,
        what: &str,
        attempt: impl AsyncFnMut(u32) -> Result<T, Attempt>,
    ) -> Result<T, StoreError> {
        run(
            &RetryPolicy::from_env(),
            &self.reference.to_string(),
            what,
            attempt,
        )
        .await
    }

    /// An oci-client error sorted for the exit codes, with its retry verdict.
    pub(super) fn attempt_err(&self, what: &str, e: OciDistributionError) -> Attempt {
        let verdict = classify(&e);
        Attempt {
            error: self.err(what, e),
            verdict,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn server(code: u16) -> OciDistributionError {
        OciDistributionError::ServerError {
            code,
            url: String::new(),
            message: String::new(),
        }
    }

    #[test]
    fn sorts_transient_from_permanent() {
        for code in [408, 502, 503, 504] {
            assert_eq!(classify(&server(code)), Verdict::Unavailable, "{code}");
        }
        assert_eq!(classify(&server(500)), Verdict::ServerError);
        assert_eq!(classify(&server(429)), Verdict::RateLimited);
        for code in [400, 401, 403, 404, 405, 501] {
            assert_eq!(classify(&server(code)), Verdict::Permanent, "{code}");
        }
        let envelope = |code: &str| OciDistributionError::RegistryError {
            envelope: serde_json::from_str(&format!(
                r#"{{"errors":[{{"code":"{code}","message":"m"}}]}}"#
            ))
            .unwrap(),
            url: String::new(),
        };
        assert_eq!(classify(&envelope("TOOMANYREQUESTS")), Verdict::RateLimited);
        assert_eq!(classify(&envelope("UNAVAILABLE")), Verdict::Unavailable);
        assert_eq!(classify(&envelope("DIGEST_INVALID")), Verdict::Permanent);
        assert_eq!(classify(&envelope("DENIED")), Verdict::Permanent);
        let digest =
            OciDistributionError::DigestError(oci_client::errors::DigestError::VerificationError {
                expected: "sha256:aa".into(),
                actual: "sha256:bb".into(),
            });
        assert_eq!(classify(&digest), Verdict::Permanent);
        // The raw client's statuses sort the same way.
        for code in [408, 502, 503, 504] {
            assert_eq!(http_verdict(code), Verdict::Unavailable, "{code}");
        }
        assert_eq!(http_verdict(429), Verdict::RateLimited);
        assert_eq!(http_verdict(500), Verdict::ServerError);
        for code in [200, 201, 202, 400, 401, 403, 404, 405] {
            assert_eq!(http_verdict(code), Verdict::Permanent, "{code}");
        }
        let wrapped_digest =
            std::io::Error::other(oci_client::errors::DigestError::VerificationError {
                expected: "sha256:aa".into(),
                actual: "sha256:bb".into(),
            });
        assert_eq!(io_verdict(&wrapped_digest), Verdict::Permanent);
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(io_verdict(&reset), Verdict::Unavailable);
        let body = std::io::Error::other("error decoding response body");
        assert_eq!(io_verdict(&body), Verdict::Unavailable);
        let local = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(io_verdict(&local), Verdict::Permanent);
    }

    #[test]
    fn backoff_is_capped_exponential_with_full_jitter() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, false, 0.0), Duration::ZERO);
        assert_eq!(p.delay(1, false, 0.999_999), BASE_DELAY.mul_f64(0.999_999));
        assert_eq!(p.delay(3, false, 0.5), Duration::from_millis(400));
        assert_eq!(p.delay(10, false, 0.5), MAX_DELAY / 2);
        assert_eq!(p.delay(200, false, 1.0), MAX_DELAY);
        assert_eq!(p.delay(1, true, 0.0), MIN_429_DELAY);
        for _ in 0..1000 {
            let u = unit_random();
            assert!((0.0..1.0).contains(&u));
        }
    }

    #[test]
    fn the_knob_only_shortens() {
        let p = RetryPolicy::default();
        assert_eq!(p.shortened(None), p);
        assert_eq!(p.shortened(Some(10_000)), p);
        let s = p.shortened(Some(2));
        assert_eq!(s.base, Duration::from_millis(2));
        assert_eq!(s.cap, Duration::from_millis(50));
        assert_eq!(s.min_429, Duration::from_millis(10));
        assert_eq!(s.max_attempts, MAX_ATTEMPTS);
        assert_eq!(p.shortened(Some(0)).cap, Duration::ZERO);
    }

    fn fast() -> RetryPolicy {
        RetryPolicy::default().shortened(Some(0))
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn flaky(reason: &str) -> Attempt {
        Attempt::unavailable(StoreError::Registry {
            registry: "r".into(),
            reason: reason.into(),
        })
    }

    #[test]
    fn retries_transient_failures_then_succeeds() {
        let calls = Cell::new(0);
        let out = rt().block_on(run(&fast(), "r", "blob x", async |n| {
            calls.set(n);
            if n < 3 { Err(flaky("503")) } else { Ok(n) }
        }));
        assert_eq!(out.unwrap(), 3);
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn permanent_failures_are_not_retried() {
        let calls = Cell::new(0);
        let out: Result<(), _> = rt().block_on(run(&fast(), "r", "blob x", async |n| {
            calls.set(n);
            Err(Attempt::permanent(StoreError::RemoteNotFound {
                what: "blob x".into(),
                registry: "r".into(),
            }))
        }));
        assert!(matches!(out, Err(StoreError::RemoteNotFound { .. })));
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn giving_up_names_the_attempts_and_the_last_cause() {
        let out: Result<(), _> = rt().block_on(run(&fast(), "r", "blob x", async |n| {
            Err(flaky(&format!("503 number {n}")))
        }));
        let Err(StoreError::RemoteUnreachable { reason, .. }) = out else {
            panic!("expected RemoteUnreachable, got {out:?}");
        };
        assert!(
            reason.starts_with("blob x: gave up after 5 attempts"),
            "{reason}"
        );
        assert!(reason.ends_with("last error: 503 number 5"), "{reason}");

        // A persistent 500 keeps its kind (exit 1), with the same account.
        let out: Result<(), _> = rt().block_on(run(&fast(), "r", "blob x", async |_| {
            Err(Attempt {
                error: StoreError::Registry {
                    registry: "r".into(),
                    reason: "blob x: code: 500".into(),
                },
                verdict: Verdict::ServerError,
            })
        }));
        let Err(StoreError::Registry { reason, .. }) = out else {
            panic!("expected Registry, got {out:?}");
        };
        assert_eq!(
            reason.split_once(" over ").map(|(a, _)| a),
            Some("blob x: gave up after 5 attempts")
        );
        assert!(reason.ends_with("last error: code: 500"), "{reason}");
    }
}
