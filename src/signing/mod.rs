//! Sigstore signing and verification: identity tokens, keyless and key-pair
//! signatures, bundle verification against a trust root and an identity
//! policy. A capability: it never prints and knows nothing of stores or
//! databases; `ops::sign` and `ops::verify` put it to work.

pub mod keyless;
pub mod keys;
pub mod statement;
pub mod token;
pub mod trust;
pub mod verify;

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// Wrong or missing configuration or input.
    #[error("{0}")]
    Usage(String),
    #[error(
        "no identity token for keyless signing: pass --identity-token, set SIGSTORE_ID_TOKEN, run in CI with OIDC enabled (GitHub Actions: `permissions: id-token: write`), or sign with --key"
    )]
    NoToken,
    /// The token could not be read or is expired.
    #[error("{0}")]
    Token(String),
    /// A Sigstore service refused the identity.
    #[error("the signing service refused the identity: {0}")]
    Rejected(String),
    /// A Sigstore service was unreachable or failed.
    #[error("signing failed talking to Sigstore: {0}")]
    Service(String),
    #[error(transparent)]
    Key(#[from] keys::KeyError),
}
