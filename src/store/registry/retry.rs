//! Retrying registry requests that failed for a reason that may pass.
//!
//! Every request of a registry store goes through [`run`] (by way of
//! `client.rs`): one attempt is one closure call, and a failed attempt
//! carries its verdict ([`Attempt`]): transient or permanent.
//!
//! - Transient: connection refused, reset or aborted (also mid-body), timeouts,
//!   a body cut short, HTTP 408, 429, 500, 502, 503, 504 and the registry error
//!   codes `TOOMANYREQUESTS` / `UNAVAILABLE`. Retried with capped exponential
//!   backoff and full jitter ([`RetryPolicy`]). The lone 500 is retried
//!   because proxies and overloaded registries emit it for passing trouble.
//! - Permanent: everything else, notably 400, 401/403, 404, digest or size
//!   mismatches and local I/O errors. Returned at once, unchanged.
//!
//! `Retry-After` (delay-seconds or an HTTP-date) is honoured: the next
//! attempt waits at least that long, but never past the time budget (a
//! registry asking for more than the budget leaves gets one last attempt at
//! the budget's end). A 429 without it waits at least [`MIN_429_DELAY`].
//!
//! When the attempts or the time budget run out, the error says how many
//! attempts were made, over how long, and the last cause, and keeps the exit
//! code mapping: network failures (refused, reset, timed out, body cut) and
//! the availability statuses 502/503/504/408/429 are
//! [`StoreError::RemoteUnreachable`] (exit 3, `connection`: the registry cannot
//! be used right now, try again later); a persistent 500 stays a registry
//! failure (exit 1, `general`), as it was before retries existed.
//!
//! Each retry is logged with `tracing` at info (the subscriber redacts).
//! This module never prints.
//!
//! # Test and operations knob
//!
//! `SQUIZZLE_RETRY_BASE_MS` (milliseconds) can only *shorten* the waits: it
//! lowers the base delay (values above [`BASE_DELAY`] are ignored) and scales
//! the cap, the 429 floor and `Retry-After` by the same factor. Tests set it
//! to a few milliseconds to stay fast; an operator can set it to `0` for a
//! fail-fast run. It never changes what is retried or how many attempts are
//! made.

use std::hash::{BuildHasher, Hasher as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

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
/// Rate limiting asks for patience: a 429 without `Retry-After` waits at
/// least this long.
pub const MIN_429_DELAY: Duration = Duration::from_secs(1);

/// How long to wait between attempts, and how many to make.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub cap: Duration,
    pub min_429: Duration,
    /// What `Retry-After` is multiplied by (1, or less with the knob).
    pub retry_after_scale: f64,
    pub max_attempts: u32,
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: BASE_DELAY,
            cap: MAX_DELAY,
            min_429: MIN_429_DELAY,
            retry_after_scale: 1.0,
            max_attempts: MAX_ATTEMPTS,
            budget: BUDGET,
        }
    }
}

impl RetryPolicy {
    /// Lowers the base to `base_ms` (never raises it) and scales the cap and
    /// the 429 floor alike.
    pub fn shortened(self, base_ms: Option<u64>) -> Self {
        let default_ms = self.base.as_millis() as u64;
        match base_ms {
            Some(ms) if ms < default_ms && default_ms > 0 => {
                let factor = ms as f64 / default_ms as f64;
                let scale = |d: Duration| d.mul_f64(factor);
                Self {
                    base: Duration::from_millis(ms),
                    cap: scale(self.cap),
                    min_429: scale(self.min_429),
                    retry_after_scale: self.retry_after_scale * factor,
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
    /// How long the registry asked us to wait (`Retry-After`), in
    /// milliseconds (kept small: every fallible registry call returns this).
    retry_after_ms: Option<u32>,
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
        Self::with_verdict(error, Verdict::Permanent)
    }

    /// A failure with the given verdict.
    pub fn with_verdict(error: StoreError, verdict: Verdict) -> Self {
        Self {
            error,
            verdict,
            retry_after_ms: None,
        }
    }

    /// The same failure, with the registry's `Retry-After`.
    pub fn retry_after(self, wait: Option<Duration>) -> Self {
        Self {
            retry_after_ms: wait.map(|d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX)),
            ..self
        }
    }

    fn asked_wait(&self) -> Option<Duration> {
        self.retry_after_ms
            .map(|ms| Duration::from_millis(u64::from(ms)))
    }

    /// A network-level failure: retried, and unreachable if it persists.
    pub fn unavailable(error: StoreError) -> Self {
        Self::with_verdict(error, Verdict::Unavailable)
    }
}

/// Local failures (file I/O, a blob that does not match its descriptor) and
/// everything already sorted into a [`StoreError`] are permanent.
impl From<StoreError> for Attempt {
    fn from(error: StoreError) -> Self {
        Self::permanent(error)
    }
}

/// Sorts a failure of the HTTP client: connect, timeout, sending and body
/// errors are the network (transient); a malformed request or a redirect
/// loop fails the same way again.
pub fn reqwest_verdict(e: &reqwest::Error) -> Verdict {
    match e.status() {
        Some(s) => status_verdict(s.as_u16()),
        None if e.is_builder() || e.is_redirect() => Verdict::Permanent,
        None => Verdict::Unavailable,
    }
}

/// Sorts an HTTP status: 408, 429, 500, 502, 503 and 504 are transient,
/// everything else is the answer.
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

impl RetryPolicy {
    /// The wait before the next attempt after `failure`, attempt `n` of a
    /// request first tried at `started`; `None` when the policy gives up
    /// (permanent failure, attempts or budget spent).
    pub fn next_wait(&self, n: u32, started: Instant, failure: &Attempt) -> Option<Duration> {
        if failure.verdict == Verdict::Permanent {
            return None;
        }
        let asked = failure.asked_wait();
        let rate_limited = failure.verdict == Verdict::RateLimited && asked.is_none();
        let elapsed = started.elapsed();
        let mut wait = self.delay(n, rate_limited, unit_random());
        if let Some(asked) = asked {
            let left = self.budget.saturating_sub(elapsed);
            wait = wait.max(asked.mul_f64(self.retry_after_scale).min(left));
        }
        if n >= self.max_attempts || elapsed + wait > self.budget {
            return None;
        }
        Some(wait)
    }
}

/// The error once the policy gave up after `n` attempts: how many, over how
/// long, the last cause, and the exit code mapping of the module doc.
pub fn gave_up(
    registry: &str,
    what: &str,
    n: u32,
    started: Instant,
    failure: Attempt,
) -> StoreError {
    if failure.verdict == Verdict::Permanent {
        return failure.error;
    }
    let reason = format!(
        "{what}: gave up after {n} attempt{s} over {secs:.1} s; last error: {last}",
        s = if n == 1 { "" } else { "s" },
        secs = started.elapsed().as_secs_f64(),
        last = cause(&failure.error, what),
    );
    let registry = registry.to_owned();
    match (failure.verdict, failure.error) {
        (Verdict::ServerError, StoreError::Registry { .. }) => {
            StoreError::Registry { registry, reason }
        }
        (Verdict::ServerError, other) => other,
        _ => StoreError::RemoteUnreachable { registry, reason },
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
        let Some(wait) = policy.next_wait(n, started, &failure) else {
            return Err(gave_up(registry, what, n, started, failure));
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn sorts_transient_from_permanent() {
        for code in [408, 502, 503, 504] {
            assert_eq!(http_verdict(code), Verdict::Unavailable, "{code}");
        }
        assert_eq!(http_verdict(429), Verdict::RateLimited);
        assert_eq!(http_verdict(500), Verdict::ServerError);
        for code in [200, 201, 202, 400, 401, 403, 404, 405, 501] {
            assert_eq!(http_verdict(code), Verdict::Permanent, "{code}");
        }
    }

    #[test]
    fn retry_after_is_honoured_within_the_budget() {
        let p = RetryPolicy::default();
        let started = Instant::now();
        let asked = |secs| {
            Attempt::with_verdict(
                StoreError::Registry {
                    registry: "r".into(),
                    reason: "429".into(),
                },
                Verdict::RateLimited,
            )
            .retry_after(Some(Duration::from_secs(secs)))
        };
        let wait = p.next_wait(1, started, &asked(7)).unwrap();
        assert!(
            wait >= Duration::from_secs(7) && wait <= Duration::from_secs(8),
            "{wait:?}"
        );
        // More than the budget leaves: capped at the budget's end.
        let wait = p.next_wait(1, started, &asked(3600)).unwrap();
        assert!(
            wait <= BUDGET && wait > BUDGET - Duration::from_secs(1),
            "{wait:?}"
        );
        // The knob shortens it like every other wait.
        let fast = p.shortened(Some(2));
        let wait = fast.next_wait(1, started, &asked(1)).unwrap();
        assert!(wait <= Duration::from_millis(11), "{wait:?}");
        assert_eq!(p.next_wait(MAX_ATTEMPTS, started, &asked(1)), None);
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
            Err(Attempt::with_verdict(
                StoreError::Registry {
                    registry: "r".into(),
                    reason: "blob x: code: 500".into(),
                },
                Verdict::ServerError,
            ))
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
