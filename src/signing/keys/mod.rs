//! Air-gapped key-pair signing: `squizzle keygen`, `squizzle sign --key` and
//! verification with a public key, with no network, no Fulcio and no Rekor.
//!
//! - Keys are ECDSA P-256. The private key is stored as a standard encrypted
//!   PKCS#8 PEM (`-----BEGIN ENCRYPTED PRIVATE KEY-----`, RFC 5958
//!   `EncryptedPrivateKeyInfo`, PBES2 from RFC 8018 with PBKDF2-HMAC-SHA256
//!   and AES-256-CBC), so `openssl pkey -in squizzle.key -passin env:X` reads
//!   it and a key encrypted by `openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf
//!   hmacWithSHA256 -iter 600000` loads here. The public key is an SPKI PEM
//!   (`-----BEGIN PUBLIC KEY-----`).
//! - A signature is a DSSE envelope over an in-toto Statement v1 in a Sigstore
//!   bundle v0.3 whose verification material is a public-key hint (the key's
//!   [`PublicKey::fingerprint`]) and which has no transparency-log entries.
//!
//! One concern per file, each importing only the ones below it:
//! `dsse` (sign and verify) -> `model` (the key pair, its files and id) ->
//! `encrypted` (the PKCS#8/PBES2 DER) and `pem` -> `oid` and `error`.
//! Encoding goes through the RustCrypto encoding crates (`der`, `spki`,
//! `pkcs8`, `pkcs5` for its types, `pem-rfc7468`, `const-oid`); all
//! cryptography is aws-lc-rs (the crate's one crypto stack); secrets are
//! wiped with `zeroize`.
//!
//! Secrets never reach an error message or a `Debug` output: the passphrase
//! is never stored, and [`PrivateKey`] and [`GeneratedKeys`] implement
//! `Debug` by hand. This module never prints and never touches a file: the
//! callers read and write the PEM text.

mod dsse;
mod encrypted;
mod error;
mod model;
mod oid;
mod pem;

pub use dsse::{
    VerifiedStatement, VerifiedSubject, parse_bundle, sign_statement, verify_statement,
};
pub use encrypted::{DEFAULT_PBKDF2_ITERATIONS, MAX_PBKDF2_ITERATIONS, MIN_PBKDF2_ITERATIONS};
pub use error::{KeyError, PASSWORD_ENV, Result};
pub use model::{
    GeneratedKeys, PrivateKey, PublicKey, generate, load_private_key, load_public_key,
};

/// DSSE payload type of an in-toto statement.
pub use crate::signing::statement::PAYLOAD_TYPE as IN_TOTO_PAYLOAD_TYPE;
/// `_type` of an in-toto Statement v1.
pub use crate::signing::statement::STATEMENT_TYPE as STATEMENT_TYPE_V1;
