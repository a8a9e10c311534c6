//! The one error type of the key-pair path, shared by every file of
//! `signing::keys`. It sits at the bottom: it imports none of its siblings.
//!
//! No message ever holds the passphrase or key material.

use crate::signing::statement::{PAYLOAD_TYPE, STATEMENT_TYPE};

/// The environment variable holding the private key's passphrase.
pub const PASSWORD_ENV: &str = "SQUIZZLE_KEY_PASSWORD";

/// The one private-key encryption squizzle reads, and how to produce it.
pub(super) const SUPPORTED_ENCRYPTION: &str = "PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC (what `squizzle keygen` writes, or \
     `openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256 -iter 600000`)";

/// Errors of key generation, loading, signing and verification.
///
/// Messages say what was expected and what to do. None of them ever contains
/// the passphrase or key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error(
        "the passphrase is empty: set {PASSWORD_ENV} to a non-empty passphrase; the private key is always stored encrypted"
    )]
    EmptyPassphrase,

    #[error(
        "the {what} is not PEM: expected a `-----BEGIN {label}-----` block ({detail}); pass the file written by `squizzle keygen`"
    )]
    NotPem {
        what: &'static str,
        label: &'static str,
        detail: String,
    },

    #[error(
        "the {what} is a `-----BEGIN {found}-----` PEM block, expected `-----BEGIN {expected}-----`{hint}"
    )]
    WrongPemLabel {
        what: &'static str,
        found: String,
        expected: &'static str,
        hint: &'static str,
    },

    #[error(
        "the private key is not encrypted ({found}): squizzle only uses passphrase-protected keys; generate one with `squizzle keygen`, or encrypt this one with `openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256 -iter 600000`"
    )]
    UnencryptedPrivateKey { found: &'static str },

    #[error("the {what} is malformed: {detail}")]
    Malformed { what: &'static str, detail: String },

    #[error("unsupported {what}: found {found}; squizzle supports only {supported}")]
    Unsupported {
        what: &'static str,
        found: String,
        supported: &'static str,
    },

    #[error(
        "the private key's PBKDF2 iteration count {found} is outside 1..={max}: refusing to derive a key from it; re-encrypt the key with `openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256 -iter 600000`"
    )]
    IterationCount { found: String, max: u32 },

    #[error(
        "the private key is protected by only {found} PBKDF2 iterations; squizzle requires at least {min} (`squizzle keygen` writes 600000), because a passphrase behind fewer is cheap to guess once the file leaks: re-encrypt the key with `openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256 -iter 600000 -in OLD.key -out squizzle.key`, or generate a new pair with `squizzle keygen` and trust its public key instead"
    )]
    TooFewIterations { found: u32, min: u32 },

    #[error(
        "wrong passphrase or corrupted key: the private key could not be decrypted; set {PASSWORD_ENV} to the passphrase used by `squizzle keygen`"
    )]
    WrongPassphrase,

    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),

    #[error("the statement to sign is not an in-toto Statement v1: {detail}")]
    StatementToSign { detail: String },

    #[error(
        "the bundle is not valid Sigstore bundle JSON: {detail}; expected the `.sigstore.json` written by `squizzle sign`"
    )]
    BundleJson { detail: String },

    #[error(
        "the bundle holds a message signature, not a DSSE envelope: key-pair verification expects an in-toto statement signed by `squizzle sign --key`"
    )]
    NotDsse,

    #[error(
        "the bundle's verification material is {found}, not a public-key hint: it was not signed with `squizzle sign --key`; verify a keyless bundle against a signer identity (--certificate-identity and --certificate-oidc-issuer) instead of --key"
    )]
    NotKeySigned { found: &'static str },

    #[error("the DSSE payload type is `{found}`, expected `{PAYLOAD_TYPE}`")]
    PayloadType { found: String },

    #[error("the DSSE envelope carries an empty signature: the bundle was not signed")]
    MissingSignature,

    #[error(
        "the bundle says it was signed by key {bundle_hint}, but the public key given has fingerprint {key_fingerprint}: pass the public key of the signer, or check that this is the release you meant"
    )]
    HintMismatch {
        bundle_hint: String,
        key_fingerprint: String,
    },

    #[error(
        "the signature does not verify with public key {fingerprint}: the statement was changed after signing, or it was signed by another key"
    )]
    BadSignature { fingerprint: String },

    #[error(
        "the signed payload is not an in-toto Statement v1 (`_type` {STATEMENT_TYPE}): {detail}"
    )]
    BadStatement { detail: String },
}

/// Result alias for `signing::keys`.
pub type Result<T, E = KeyError> = std::result::Result<T, E>;

pub(super) fn malformed(what: &'static str, detail: impl Into<String>) -> KeyError {
    KeyError::Malformed {
        what,
        detail: detail.into(),
    }
}
