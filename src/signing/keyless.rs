//! Keyless signing: identity token -> ephemeral key -> Fulcio certificate ->
//! DSSE envelope over the statement -> Rekor entry (-> RFC 3161 timestamp
//! when a TSA is configured) -> bundle v0.3. The sigstore-sign crate does
//! the protocol; this module picks the services and the HTTP client and
//! reports what happened.

use std::time::Duration;

use sigstore_sign::oidc::IdentityToken;
use sigstore_sign::types::Bundle;
use sigstore_sign::{SigningContext, SigningServices};

use super::SigningError;

/// What a keyless signature recorded.
#[derive(Debug, Clone)]
pub struct Signed {
    pub bundle: Bundle,
    pub log_index: Option<u64>,
    pub rekor_url: String,
    pub timestamped: bool,
}

pub async fn sign_statement(
    services: SigningServices,
    token: IdentityToken,
    statement: &[u8],
) -> Result<Signed, SigningError> {
    let rekor_url = services.rekor_url().to_owned();
    let timestamped = services.tsa_url().is_some();
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .timeout(Duration::from_secs(120))
        .user_agent(concat!("squizzle/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| SigningError::Service(format!("cannot set up the HTTP client: {e}")))?;
    let signer = SigningContext::new(services)
        .with_http_client(http)
        .signer(token);
    let bundle = signer
        .sign_raw_statement(statement)
        .await
        .map_err(classify)?;
    let log_index = bundle
        .verification_material
        .tlog_entries
        .first()
        .map(|e| e.log_index.get());
    Ok(Signed {
        bundle,
        log_index,
        rekor_url,
        timestamped,
    })
}

/// Sorts a signing failure into what the user must do about it, by the
/// error's kind rather than its text: a configuration the library refuses is a
/// usage error (nothing was sent), Fulcio refusing the token (401/403) is an
/// authentication problem, and anything else from a service (unreachable,
/// failing, malformed answers) is a connection problem.
fn classify(e: sigstore_sign::Error) -> SigningError {
    use sigstore_sign::Error as E;
    use sigstore_sign::fulcio::Error as Fulcio;
    let text = crate::core::errors::error_chain(&e);
    match &e {
        E::Config(_) => SigningError::Usage(text),
        E::Fulcio(Fulcio::Status {
            status: 401 | 403, ..
        }) => SigningError::Rejected(text),
        _ => SigningError::Service(text),
    }
}
