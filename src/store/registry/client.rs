//! The registry client a store talks through: the transport (`transport.rs`)
//! decorated with the retry policy (`retry.rs`) around whole attempts and the
//! authentication layer (`auth.rs`) inside each attempt. The repository
//! operations (`repository.rs`, `referrers.rs`) send every request here.

use super::auth::Authorizer;
use super::reference::{RegistryOptions, RegistryRef};
use super::retry::{self, Attempt, RetryPolicy, Verdict};
use super::transport::{Answer, Request, Transport};
use crate::store::StoreError;

/// Body bytes kept of answers whose body only matters in an error message.
pub(super) const ERROR_BODY_LIMIT: u64 = 64 * 1024;

pub(super) struct Client {
    transport: Transport,
    auth: Authorizer,
    retry: RetryPolicy,
}

impl Client {
    pub fn new(reference: &RegistryRef, opts: &RegistryOptions) -> Self {
        Self {
            transport: Transport::new(reference, opts),
            retry: RetryPolicy::default().shortened(opts.retry_base_ms),
            auth: Authorizer::new(reference, opts),
        }
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The retry policy every request of this client runs under.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Runs `attempt` under the retry policy; `what` names it in messages.
    pub async fn retrying<T>(
        &self,
        what: &str,
        attempt: impl AsyncFnMut(u32) -> Result<T, Attempt>,
    ) -> Result<T, StoreError> {
        retry::run(&self.retry, self.transport.name(), what, attempt).await
    }

    /// One attempt of `req`, authorized, its body read (at most `req.limit`
    /// bytes). Not retried: an upload session is one attempt of many requests.
    pub async fn attempt(&self, req: &Request<'_>) -> Result<Answer, Attempt> {
        let resp = self.auth.send(&self.transport, req).await?;
        self.transport
            .read(req.what, &req.method, resp, req.limit)
            .await
    }

    /// One `PATCH` of `body` (a stream of `size` bytes) to `url`, with the credential held
    /// for uploads; its answer's body read. Not retried, not
    /// re-authenticated: a stream cannot be sent twice.
    pub async fn attempt_streamed(
        &self,
        what: &str,
        url: &str,
        body: reqwest::Body,
        size: u64,
    ) -> Result<Answer, Attempt> {
        // A known length, not chunked encoding: proxies and registries can
        // tell where the body ends.
        let len = size.to_string();
        let req = Request {
            what,
            method: reqwest::Method::PATCH,
            url,
            headers: &[
                ("Content-Type", "application/octet-stream"),
                ("Content-Length", &len),
            ],
            body: None,
            limit: ERROR_BODY_LIMIT,
        };
        let held = self.auth.held(&req.method);
        let resp = self
            .transport
            .send_body(&req, Some(body), held.as_ref().map(|c| c.credential()))
            .await?;
        self.transport
            .read(what, &req.method, resp, ERROR_BODY_LIMIT)
            .await
    }

    /// Sends `req` under the retry policy: network failures, cut bodies and
    /// transient answers (408, 429, 500, 502, 503, 504) are tried again; any
    /// other answer is returned as it is, for the caller to sort.
    pub async fn request(&self, req: Request<'_>) -> Result<Answer, StoreError> {
        self.retrying(req.what, async |n| {
            let mut answer = self.attempt(&req).await?;
            answer.attempt = n;
            if answer.status.is_success() {
                return Ok(answer);
            }
            let refusal = self.transport.refusal(req.what, &answer);
            if refusal.verdict == Verdict::Permanent {
                Ok(answer)
            } else {
                Err(refusal)
            }
        })
        .await
    }

    /// A successful answer to `req` whose body is still to be read (a blob),
    /// under the retry policy up to its headers. Any other answer is an error.
    pub async fn open(&self, req: Request<'_>) -> Result<reqwest::Response, StoreError> {
        self.retrying(req.what, async |_| {
            let resp = self.auth.send(&self.transport, &req).await?;
            if resp.status().is_success() {
                return Ok(resp);
            }
            let answer = self
                .transport
                .read(req.what, &req.method, resp, ERROR_BODY_LIMIT)
                .await?;
            Err(self.transport.refusal(req.what, &answer))
        })
        .await
    }
}
