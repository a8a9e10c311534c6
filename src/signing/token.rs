//! The OIDC identity token for keyless signing.
//!
//! In order: `--identity-token`, `SIGSTORE_ID_TOKEN`, then the CI system's
//! ambient credentials (GitHub Actions with `id-token: write`, GitLab's
//! `SIGSTORE_ID_TOKEN`, Buildkite, CircleCI; detected by the sigstore-oidc
//! crate with audience `sigstore`). The raw token is registered with the
//! redactor the moment it is known, so it cannot reach any output.

use sigstore_sign::oidc::IdentityToken;

use super::SigningError;
use crate::core::env::Env;
use crate::core::redact;

/// Where the token came from, for the "Logged in as" line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    Flag,
    Environment,
    Ambient,
}

impl std::fmt::Display for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TokenSource::Flag => "--identity-token",
            TokenSource::Environment => "SIGSTORE_ID_TOKEN",
            TokenSource::Ambient => "CI credentials",
        })
    }
}

pub async fn identity_token(
    flag: Option<&str>,
    env: &Env,
) -> Result<(IdentityToken, TokenSource), SigningError> {
    let (raw, source) = if let Some(t) = flag.filter(|t| !t.is_empty()) {
        (t.to_owned(), TokenSource::Flag)
    } else if let Some(t) = env.get("SIGSTORE_ID_TOKEN").filter(|t| !t.is_empty()) {
        (t, TokenSource::Environment)
    } else {
        match IdentityToken::detect_ambient().await {
            Ok(Some(t)) => {
                redact::register_secret(t.expose_secret());
                return check(t).map(|t| (t, TokenSource::Ambient));
            }
            Ok(None) => return Err(SigningError::NoToken),
            Err(e) => {
                return Err(SigningError::Token(format!(
                    "the CI system's identity token could not be obtained: {e} (GitHub Actions needs `permissions: id-token: write` on the job; GitLab needs `id_tokens: SIGSTORE_ID_TOKEN: aud: sigstore`)"
                )));
            }
        }
    };
    redact::register_secret(raw.trim());
    let token = IdentityToken::from_jwt(raw.trim()).map_err(|e| {
        SigningError::Token(format!(
            "the identity token from {source} is not a JWT ({e}); pass the raw OIDC token"
        ))
    })?;
    check(token).map(|t| (t, source))
}

fn check(token: IdentityToken) -> Result<IdentityToken, SigningError> {
    if token.is_expired() {
        return Err(SigningError::Token(format!(
            "the identity token for {} expired at {}; request a fresh one (CI tokens live for minutes)",
            token.identity(),
            token.expiration()
        )));
    }
    Ok(token)
}
