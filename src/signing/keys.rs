//! Air-gapped key-pair signing: `squizzle keygen`, `squizzle sign --key` and
//! verification with a public key, with no network, no Fulcio and no Rekor.
//!
//! - Keys are ECDSA P-256. The private key is stored as a standard encrypted
//!   PKCS#8 PEM (`-----BEGIN ENCRYPTED PRIVATE KEY-----`, RFC 5958
//!   `EncryptedPrivateKeyInfo`, PBES2 from RFC 8018 with PBKDF2-HMAC-SHA256
//!   and AES-256-CBC), so `openssl pkey -in squizzle.key -passin env:X` reads
//!   it and a key encrypted by `openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf
//!   hmacWithSHA256` loads here. The public key is an SPKI PEM
//!   (`-----BEGIN PUBLIC KEY-----`).
//! - The DER is written and read by hand (it is a fixed, small structure), and
//!   read strictly: only the exact algorithm identifiers written here are
//!   accepted, the iteration count is capped, unencrypted keys are refused.
//! - A signature is a DSSE envelope over an in-toto Statement v1 in a Sigstore
//!   bundle v0.3 whose verification material is a public-key hint (the key's
//!   [`PublicKey::fingerprint`]) and which has no transparency-log entries.
//!
//! Secrets never reach an error message or a `Debug` output: the passphrase
//! is never stored, and [`PrivateKey`] and [`GeneratedKeys`] implement
//! `Debug` by hand.
//!
//! All cryptography is aws-lc-rs (the crate's one crypto stack).

use std::fmt;
use std::num::NonZeroU32;

use aws_lc_rs::cipher::{
    AES_256, DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey,
    PaddedBlockEncryptingKey, UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::pbkdf2;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _,
    ParsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest as _, Sha256};
use sigstore_verify::bundle::{BundleV03, VerificationMaterialV03};
use sigstore_verify::types::{
    Bundle, DsseEnvelope, DsseSignature, KeyId, PayloadBytes, SignatureBytes, SignatureContent,
    Statement, VerificationMaterialContent,
};

use crate::core::Digest;

/// The environment variable holding the private key's passphrase.
pub const PASSWORD_ENV: &str = "SQUIZZLE_KEY_PASSWORD";
/// DSSE payload type of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE_V1: &str = "https://in-toto.io/Statement/v1";
/// PBKDF2 iterations used by [`generate`] (OWASP 2023 for PBKDF2-HMAC-SHA256).
pub const DEFAULT_PBKDF2_ITERATIONS: u32 = 600_000;
/// The largest PBKDF2 iteration count [`load_private_key`] accepts: a key file
/// is input, and a huge count would make loading hang.
pub const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

const ENCRYPTED_LABEL: &str = "ENCRYPTED PRIVATE KEY";
const PUBLIC_LABEL: &str = "PUBLIC KEY";
const SALT_LEN: usize = 16;
const IV_LEN: usize = 16;
const AES_256_KEY_LEN: usize = 32;
/// An uncompressed SEC1 P-256 point: `04 || X || Y`.
const P256_POINT_LEN: usize = 65;
/// Encrypted private keys are a few hundred bytes; anything far larger is not one.
const MAX_PEM_LEN: usize = 64 * 1024;

// DER-encoded OBJECT IDENTIFIER contents (without tag and length).
/// 1.2.840.113549.1.5.13 (PBES2)
const OID_PBES2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d];
/// 1.2.840.113549.1.5.12 (PBKDF2)
const OID_PBKDF2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0c];
/// 1.2.840.113549.2.9 (hmacWithSHA256)
const OID_HMAC_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x09];
/// 2.16.840.1.101.3.4.1.42 (aes256-CBC)
const OID_AES256_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a];
/// 1.2.840.10045.2.1 (id-ecPublicKey)
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// 1.2.840.10045.3.1.7 (prime256v1 / P-256)
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;

const SUPPORTED_ENCRYPTION: &str = "PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC (what `squizzle keygen` writes, or \
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

    #[error("the DSSE payload type is `{found}`, expected `{IN_TOTO_PAYLOAD_TYPE}`")]
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
        "the signed payload is not an in-toto Statement v1 (`_type` {STATEMENT_TYPE_V1}): {detail}"
    )]
    BadStatement { detail: String },
}

/// Result alias for this module.
pub type Result<T, E = KeyError> = std::result::Result<T, E>;

fn malformed(what: &'static str, detail: impl Into<String>) -> KeyError {
    KeyError::Malformed {
        what,
        detail: detail.into(),
    }
}

// ---------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------

/// A freshly generated key pair, as the two PEM files `squizzle keygen` writes.
///
/// `Debug` omits the private key PEM (it is encrypted, but still not for logs).
#[non_exhaustive]
pub struct GeneratedKeys {
    /// `-----BEGIN ENCRYPTED PRIVATE KEY-----` (PKCS#8, PBES2).
    pub private_key_pem: String,
    /// `-----BEGIN PUBLIC KEY-----` (SPKI).
    pub public_key_pem: String,
    /// The public key, including its fingerprint.
    pub public_key: PublicKey,
}

impl fmt::Debug for GeneratedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKeys")
            .field("private_key_pem", &"<encrypted, omitted>")
            .field("public_key", &self.public_key)
            .finish()
    }
}

/// An ECDSA P-256 public key (SubjectPublicKeyInfo).
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    spki_der: Vec<u8>,
    point: Vec<u8>,
    fingerprint: String,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("algorithm", &"ECDSA P-256")
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl PublicKey {
    /// Builds the key from an uncompressed SEC1 point, checking it is on P-256.
    fn from_point(point: &[u8]) -> Result<Self> {
        if point.len() != P256_POINT_LEN || point[0] != 0x04 {
            return Err(malformed(
                "public key",
                "the EC point is not an uncompressed P-256 point (65 bytes starting with 04)",
            ));
        }
        ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
            .map_err(|_| malformed("public key", "the EC point is not on the P-256 curve"))?;
        let spki_der = encode_spki(point);
        let fingerprint = hex::encode(Sha256::digest(&spki_der));
        Ok(Self {
            spki_der,
            point: point.to_vec(),
            fingerprint,
        })
    }

    /// Hex SHA-256 of the DER SubjectPublicKeyInfo: the key id, written as the
    /// bundle's `verificationMaterial.publicKey.hint`.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The `-----BEGIN PUBLIC KEY-----` PEM, wrapped at 64 columns.
    pub fn to_pem(&self) -> String {
        pem_encode(PUBLIC_LABEL, &self.spki_der)
    }

    /// Whether `signature` (ASN.1 DER ECDSA) signs `message` (SHA-256).
    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        aws_lc_rs::signature::UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &self.point)
            .verify(message, signature)
            .is_ok()
    }
}

/// A decrypted ECDSA P-256 private key, ready to sign.
///
/// `Debug` shows only the public key fingerprint.
pub struct PrivateKey {
    key_pair: EcdsaKeyPair,
    public_key: PublicKey,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &"ECDSA P-256")
            .field("fingerprint", &self.public_key.fingerprint)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    fn from_pkcs8(pkcs8: &[u8]) -> Result<Self> {
        let key_pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8)
            .map_err(|_| KeyError::Crypto("the decrypted PKCS#8 key was rejected"))?;
        let public_key = PublicKey::from_point(key_pair.public_key().as_ref())?;
        Ok(Self {
            key_pair,
            public_key,
        })
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// ECDSA P-256 SHA-256 signature, ASN.1 DER encoded.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let signature = self
            .key_pair
            .sign(&SystemRandom::new(), message)
            .map_err(|_| KeyError::Crypto("ECDSA signing failed"))?;
        Ok(signature.as_ref().to_vec())
    }
}

/// Generates an ECDSA P-256 key pair and encrypts the private key with
/// `passphrase` (PBKDF2-HMAC-SHA256, [`DEFAULT_PBKDF2_ITERATIONS`], random
/// 16-byte salt; AES-256-CBC with a random IV).
///
/// # Errors
/// [`KeyError::EmptyPassphrase`] for an empty passphrase; [`KeyError::Crypto`]
/// if the system random generator fails.
pub fn generate(passphrase: &str) -> Result<GeneratedKeys> {
    generate_with_iterations(passphrase, DEFAULT_PBKDF2_ITERATIONS)
}

/// [`generate`] with a chosen iteration count: unit tests use a small one.
pub(crate) fn generate_with_iterations(passphrase: &str, iterations: u32) -> Result<GeneratedKeys> {
    if passphrase.is_empty() {
        return Err(KeyError::EmptyPassphrase);
    }
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .map_err(|_| KeyError::Crypto("ECDSA P-256 key generation failed"))?;
    let private = PrivateKey::from_pkcs8(pkcs8.as_ref())?;
    let der = encrypt_pkcs8(pkcs8.as_ref(), passphrase, iterations)?;
    let public_key = private.public_key.clone();
    Ok(GeneratedKeys {
        private_key_pem: pem_encode(ENCRYPTED_LABEL, &der),
        public_key_pem: public_key.to_pem(),
        public_key,
    })
}

/// Decrypts an `-----BEGIN ENCRYPTED PRIVATE KEY-----` PEM with `passphrase`.
///
/// Only PBES2 / PBKDF2-HMAC-SHA256 (1..=[`MAX_PBKDF2_ITERATIONS`] iterations)
/// / AES-256-CBC and an ECDSA P-256 key are accepted.
///
/// # Errors
/// [`KeyError::NotPem`], [`KeyError::UnencryptedPrivateKey`],
/// [`KeyError::WrongPemLabel`], [`KeyError::Malformed`],
/// [`KeyError::Unsupported`], [`KeyError::IterationCount`],
/// [`KeyError::WrongPassphrase`].
pub fn load_private_key(pem: &str, passphrase: &str) -> Result<PrivateKey> {
    let block = pem_decode(pem, "private key", ENCRYPTED_LABEL)?;
    match block.label.as_str() {
        ENCRYPTED_LABEL => {}
        "PRIVATE KEY" => {
            return Err(KeyError::UnencryptedPrivateKey {
                found: "a `-----BEGIN PRIVATE KEY-----` PKCS#8 block",
            });
        }
        "EC PRIVATE KEY" | "RSA PRIVATE KEY" if block.encrypted_legacy => {
            return Err(KeyError::Unsupported {
                what: "private key encryption",
                found: "legacy OpenSSL PEM encryption (Proc-Type/DEK-Info headers)".into(),
                supported: SUPPORTED_ENCRYPTION,
            });
        }
        "EC PRIVATE KEY" | "RSA PRIVATE KEY" => {
            return Err(KeyError::UnencryptedPrivateKey {
                found: "a traditional `-----BEGIN EC/RSA PRIVATE KEY-----` block",
            });
        }
        other => {
            return Err(KeyError::WrongPemLabel {
                what: "private key",
                found: other.to_owned(),
                expected: ENCRYPTED_LABEL,
                hint: if other == PUBLIC_LABEL {
                    ": this is the public key; pass the private key file (squizzle.key)"
                } else {
                    ""
                },
            });
        }
    }
    let info = parse_encrypted_private_key_info(&block.der)?;
    let mut plaintext = decrypt(&info, passphrase)?;
    // A key that does not load after its padding checked out was decrypted
    // with the wrong passphrase (or the file is corrupted).
    let result = check_private_key_info(&plaintext)
        .and_then(|()| PrivateKey::from_pkcs8(&plaintext).map_err(|_| KeyError::WrongPassphrase));
    wipe(&mut plaintext);
    result
}

/// Reads a `-----BEGIN PUBLIC KEY-----` (SPKI) PEM holding an ECDSA P-256 key.
///
/// # Errors
/// [`KeyError::NotPem`], [`KeyError::WrongPemLabel`], [`KeyError::Malformed`],
/// [`KeyError::Unsupported`] (not an EC key, or not P-256).
pub fn load_public_key(pem: &str) -> Result<PublicKey> {
    let block = pem_decode(pem, "public key", PUBLIC_LABEL)?;
    if block.label != PUBLIC_LABEL {
        let is_private = block.label.contains("PRIVATE KEY");
        return Err(KeyError::WrongPemLabel {
            what: "public key",
            found: block.label,
            expected: PUBLIC_LABEL,
            hint: if is_private {
                ": this is a private key; pass the public key file (squizzle.pub)"
            } else {
                ""
            },
        });
    }
    let point = parse_spki(&block.der)?;
    PublicKey::from_point(point)
}

// ---------------------------------------------------------------------------
// Signing and verification
// ---------------------------------------------------------------------------

/// Signs an in-toto Statement v1 (`statement_json`, signed byte for byte) as a
/// DSSE envelope in a Sigstore bundle v0.3 with a public-key hint and no
/// transparency-log entries. Serialize it with [`Bundle::to_json`].
///
/// # Errors
/// [`KeyError::StatementToSign`] if the bytes are not an in-toto Statement v1;
/// [`KeyError::Crypto`] if signing fails.
pub fn sign_statement(key: &PrivateKey, statement_json: &[u8]) -> Result<Bundle> {
    parse_statement(statement_json).map_err(|detail| KeyError::StatementToSign { detail })?;
    let pae = sigstore_verify::types::pae(IN_TOTO_PAYLOAD_TYPE, statement_json);
    let signature = key.sign(&pae)?;
    let envelope = DsseEnvelope::new(
        IN_TOTO_PAYLOAD_TYPE,
        PayloadBytes::from_bytes(statement_json),
        DsseSignature::new(SignatureBytes::new(signature), KeyId::default()),
    );
    Ok(BundleV03::new(
        VerificationMaterialV03::PublicKey {
            hint: key.public_key.fingerprint.clone(),
        },
        SignatureContent::DsseEnvelope(envelope),
    )
    .into_bundle())
}

/// Parses bundle JSON (as written by `squizzle sign`), with a clear error for
/// anything that is not a Sigstore bundle.
///
/// # Errors
/// [`KeyError::BundleJson`].
pub fn parse_bundle(json: &[u8]) -> Result<Bundle> {
    let text = std::str::from_utf8(json).map_err(|_| KeyError::BundleJson {
        detail: "it is not UTF-8 text".into(),
    })?;
    Bundle::from_json(text).map_err(|e| KeyError::BundleJson {
        detail: e.to_string(),
    })
}

/// A subject of a verified statement.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedSubject {
    /// The subject's name (may be empty).
    pub name: String,
    /// Its SHA-256 digest.
    pub sha256: Digest,
}

/// What a valid signature vouches for. The caller still has to check that a
/// subject's digest is the artifact it is verifying.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct VerifiedStatement {
    /// Every subject, each with a SHA-256 digest.
    pub subjects: Vec<VerifiedSubject>,
    /// The statement's `predicateType`.
    pub predicate_type: String,
    /// The statement's `predicate` (`{}` when absent).
    pub predicate: serde_json::Value,
    /// Fingerprint of the key the signature verified with.
    pub key_fingerprint: String,
}

/// Verifies a key-pair-signed bundle with `public_key`, which must come from
/// the verifier (the bundle's hint is only compared, never trusted).
///
/// Checks, in order: DSSE envelope (not a message signature); public-key
/// verification material whose hint, if not empty, is the key's fingerprint;
/// payload type `application/vnd.in-toto+json`; a non-empty signature that
/// verifies over the DSSE PAE (ECDSA P-256 SHA-256, ASN.1); the payload is an
/// in-toto Statement v1 whose subjects all carry a SHA-256 digest.
/// An envelope with no signature or more than one cannot be represented by
/// [`Bundle`] (its parser refuses it; see [`parse_bundle`]).
/// Transparency-log entries, if any, are not checked (this is the air-gapped
/// path).
///
/// # Errors
/// [`KeyError::NotDsse`], [`KeyError::NotKeySigned`],
/// [`KeyError::HintMismatch`], [`KeyError::PayloadType`],
/// [`KeyError::MissingSignature`], [`KeyError::BadSignature`],
/// [`KeyError::BadStatement`].
pub fn verify_statement(bundle: &Bundle, public_key: &PublicKey) -> Result<VerifiedStatement> {
    let envelope = match &bundle.content {
        SignatureContent::DsseEnvelope(envelope) => envelope,
        _ => return Err(KeyError::NotDsse),
    };
    match &bundle.verification_material.content {
        VerificationMaterialContent::PublicKey(id) => {
            if !id.hint.is_empty() && id.hint != public_key.fingerprint {
                return Err(KeyError::HintMismatch {
                    bundle_hint: id.hint.clone(),
                    key_fingerprint: public_key.fingerprint.clone(),
                });
            }
        }
        VerificationMaterialContent::Certificate(_) => {
            return Err(KeyError::NotKeySigned {
                found: "a certificate",
            });
        }
        VerificationMaterialContent::X509CertificateChain { .. } => {
            return Err(KeyError::NotKeySigned {
                found: "a certificate chain",
            });
        }
        _ => {
            return Err(KeyError::NotKeySigned {
                found: "an unknown kind",
            });
        }
    }
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(KeyError::PayloadType {
            found: envelope.payload_type.clone(),
        });
    }
    let signature = envelope.signature.sig.as_bytes();
    if signature.is_empty() {
        return Err(KeyError::MissingSignature);
    }
    if !public_key.verifies(&envelope.pae(), signature) {
        return Err(KeyError::BadSignature {
            fingerprint: public_key.fingerprint.clone(),
        });
    }
    let statement = parse_statement(envelope.payload.as_bytes())
        .map_err(|detail| KeyError::BadStatement { detail })?;
    let subjects = statement
        .subject
        .iter()
        .map(|subject| {
            let sha256 = subject
                .digest
                .sha256
                .as_ref()
                .ok_or_else(|| KeyError::BadStatement {
                    detail: format!("subject {:?} has no sha256 digest", subject.name),
                })?;
            Ok(VerifiedSubject {
                name: subject.name.clone(),
                sha256: Digest::from_bytes(*sha256.as_bytes()),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(VerifiedStatement {
        subjects,
        predicate_type: statement.predicate_type,
        predicate: statement.predicate,
        key_fingerprint: public_key.fingerprint.clone(),
    })
}

/// Parses an in-toto Statement v1 with at least one subject.
fn parse_statement(json: &[u8]) -> std::result::Result<Statement, String> {
    let statement: Statement =
        serde_json::from_slice(json).map_err(|e| format!("invalid statement JSON: {e}"))?;
    if statement.type_ != STATEMENT_TYPE_V1 {
        return Err(format!(
            "`_type` is {:?}, expected {STATEMENT_TYPE_V1:?}",
            statement.type_
        ));
    }
    if statement.subject.is_empty() {
        return Err("the statement has no subject".into());
    }
    Ok(statement)
}

// ---------------------------------------------------------------------------
// PBES2 encryption (RFC 8018) and EncryptedPrivateKeyInfo (RFC 5958)
// ---------------------------------------------------------------------------

/// The parameters and ciphertext of an `EncryptedPrivateKeyInfo`.
struct EncryptedKeyInfo<'a> {
    salt: &'a [u8],
    iterations: NonZeroU32,
    iv: [u8; IV_LEN],
    ciphertext: &'a [u8],
}

fn derive_key(passphrase: &str, salt: &[u8], iterations: NonZeroU32) -> [u8; AES_256_KEY_LEN] {
    let mut key = [0u8; AES_256_KEY_LEN];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        passphrase.as_bytes(),
        &mut key,
    );
    key
}

fn encrypt_pkcs8(pkcs8: &[u8], passphrase: &str, iterations: u32) -> Result<Vec<u8>> {
    let iterations = NonZeroU32::new(iterations)
        .filter(|n| n.get() <= MAX_PBKDF2_ITERATIONS)
        .ok_or(KeyError::Crypto("PBKDF2 iteration count out of range"))?;
    let rng = SystemRandom::new();
    let mut salt = [0u8; SALT_LEN];
    let mut iv = [0u8; IV_LEN];
    rng.fill(&mut salt)
        .and_then(|()| rng.fill(&mut iv))
        .map_err(|_| KeyError::Crypto("the system random generator failed"))?;
    let mut key = derive_key(passphrase, &salt, iterations);
    let cipher = UnboundCipherKey::new(&AES_256, &key)
        .and_then(PaddedBlockEncryptingKey::cbc_pkcs7)
        .map_err(|_| KeyError::Crypto("AES-256-CBC key setup failed"));
    wipe(&mut key);
    let mut data = pkcs8.to_vec();
    let encrypted = cipher.and_then(|cipher| {
        cipher
            .less_safe_encrypt(&mut data, EncryptionContext::Iv128(FixedLength::from(iv)))
            .map_err(|_| KeyError::Crypto("AES-256-CBC encryption failed"))
    });
    if let Err(e) = encrypted {
        wipe(&mut data);
        return Err(e);
    }
    Ok(encode_encrypted_private_key_info(
        &salt,
        iterations.get(),
        &iv,
        &data,
    ))
}

fn encode_encrypted_private_key_info(
    salt: &[u8],
    iterations: u32,
    iv: &[u8],
    ciphertext: &[u8],
) -> Vec<u8> {
    encode_encrypted_private_key_info_raw(salt, &der_uint(u64::from(iterations)), iv, ciphertext)
}

/// `EncryptedPrivateKeyInfo` with the iteration count given as a DER INTEGER.
fn encode_encrypted_private_key_info_raw(
    salt: &[u8],
    iterations_der: &[u8],
    iv: &[u8],
    ciphertext: &[u8],
) -> Vec<u8> {
    let pbkdf2_params = der_seq(&[
        &der_tlv(TAG_OCTET_STRING, salt),
        iterations_der,
        &der_seq(&[&der_tlv(TAG_OID, OID_HMAC_SHA256), &der_tlv(TAG_NULL, &[])]),
    ]);
    let kdf = der_seq(&[&der_tlv(TAG_OID, OID_PBKDF2), &pbkdf2_params]);
    let scheme = der_seq(&[
        &der_tlv(TAG_OID, OID_AES256_CBC),
        &der_tlv(TAG_OCTET_STRING, iv),
    ]);
    let algorithm = der_seq(&[&der_tlv(TAG_OID, OID_PBES2), &der_seq(&[&kdf, &scheme])]);
    der_seq(&[&algorithm, &der_tlv(TAG_OCTET_STRING, ciphertext)])
}

fn oid_name(oid: &[u8]) -> String {
    let known: &[(&[u8], &str)] = &[
        (OID_PBES2, "PBES2"),
        (OID_PBKDF2, "PBKDF2"),
        (OID_HMAC_SHA256, "hmacWithSHA256"),
        (OID_AES256_CBC, "aes256-CBC"),
        (OID_EC_PUBLIC_KEY, "id-ecPublicKey"),
        (OID_P256, "P-256"),
        (
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x07],
            "hmacWithSHA1",
        ),
        (
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x0b],
            "hmacWithSHA512",
        ),
        (
            &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02],
            "aes128-CBC",
        ),
        (
            &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x16],
            "aes192-CBC",
        ),
        (
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x03, 0x07],
            "des-ede3-cbc",
        ),
        (
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x03],
            "pbeWithMD5AndDES-CBC",
        ),
        (
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
            "rsaEncryption",
        ),
        (&[0x2b, 0x65, 0x70], "Ed25519"),
        (&[0x2b, 0x81, 0x04, 0x00, 0x22], "P-384"),
        (&[0x2b, 0x81, 0x04, 0x00, 0x23], "P-521"),
        (
            &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01],
            "scrypt",
        ),
    ];
    known
        .iter()
        .find(|(k, _)| *k == oid)
        .map(|(_, name)| format!("`{name}`"))
        .unwrap_or_else(|| format!("OID {}", oid_dotted(oid)))
}

fn oid_dotted(oid: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for &b in oid {
        value = value
            .saturating_mul(128)
            .saturating_add(u64::from(b & 0x7f));
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    if arcs.is_empty() {
        return "(empty)".into();
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

fn expect_oid(
    reader: &mut DerReader<'_>,
    expected: &[u8],
    what: &'static str,
    supported: &'static str,
) -> Result<()> {
    let oid = reader.read(TAG_OID, "encrypted private key")?;
    if oid != expected {
        return Err(KeyError::Unsupported {
            what,
            found: oid_name(oid),
            supported,
        });
    }
    Ok(())
}

fn parse_encrypted_private_key_info(der: &[u8]) -> Result<EncryptedKeyInfo<'_>> {
    const WHAT: &str = "encrypted private key";
    let mut outer = DerReader::new(der);
    let mut info = outer.read_seq(WHAT)?;
    outer.finish(WHAT)?;

    // A PrivateKeyInfo (unencrypted) starts with INTEGER version.
    if info.peek_tag() == Some(TAG_INTEGER) {
        return Err(KeyError::UnencryptedPrivateKey {
            found: "an unencrypted PKCS#8 key inside an `ENCRYPTED PRIVATE KEY` block",
        });
    }

    let mut algorithm = info.read_seq(WHAT)?;
    expect_oid(
        &mut algorithm,
        OID_PBES2,
        "private key encryption scheme",
        SUPPORTED_ENCRYPTION,
    )?;
    let mut pbes2 = algorithm.read_seq(WHAT)?;
    algorithm.finish(WHAT)?;

    let mut kdf = pbes2.read_seq(WHAT)?;
    expect_oid(
        &mut kdf,
        OID_PBKDF2,
        "key derivation function",
        SUPPORTED_ENCRYPTION,
    )?;
    let mut params = kdf.read_seq(WHAT)?;
    kdf.finish(WHAT)?;
    let salt = params.read(TAG_OCTET_STRING, WHAT)?;
    if !(8..=64).contains(&salt.len()) {
        return Err(malformed(
            WHAT,
            format!("the PBKDF2 salt is {} bytes, expected 8 to 64", salt.len()),
        ));
    }
    let iterations = params.read_uint(WHAT)?;
    let iterations = match iterations {
        Some(n) if (1..=u64::from(MAX_PBKDF2_ITERATIONS)).contains(&n) => {
            NonZeroU32::new(n as u32).expect("checked non-zero")
        }
        Some(n) => {
            return Err(KeyError::IterationCount {
                found: n.to_string(),
                max: MAX_PBKDF2_ITERATIONS,
            });
        }
        None => {
            return Err(KeyError::IterationCount {
                found: "(larger than 2^64)".into(),
                max: MAX_PBKDF2_ITERATIONS,
            });
        }
    };
    // keyLength OPTIONAL: if present it must be AES-256's.
    if params.peek_tag() == Some(TAG_INTEGER) {
        let key_length = params.read_uint(WHAT)?;
        if key_length != Some(AES_256_KEY_LEN as u64) {
            return Err(malformed(
                WHAT,
                "the PBKDF2 keyLength does not match AES-256 (32 bytes)",
            ));
        }
    }
    // prf: DEFAULT hmacWithSHA1, which we refuse, so it must be present.
    if params.is_empty() {
        return Err(KeyError::Unsupported {
            what: "PBKDF2 pseudo-random function",
            found: "`hmacWithSHA1` (the default, when none is named)".into(),
            supported: SUPPORTED_ENCRYPTION,
        });
    }
    let mut prf = params.read_seq(WHAT)?;
    params.finish(WHAT)?;
    expect_oid(
        &mut prf,
        OID_HMAC_SHA256,
        "PBKDF2 pseudo-random function",
        SUPPORTED_ENCRYPTION,
    )?;
    if !prf.is_empty() {
        prf.read(TAG_NULL, WHAT)?;
    }
    prf.finish(WHAT)?;

    let mut scheme = pbes2.read_seq(WHAT)?;
    pbes2.finish(WHAT)?;
    expect_oid(
        &mut scheme,
        OID_AES256_CBC,
        "private key cipher",
        SUPPORTED_ENCRYPTION,
    )?;
    let iv: [u8; IV_LEN] = scheme
        .read(TAG_OCTET_STRING, WHAT)?
        .try_into()
        .map_err(|_| malformed(WHAT, "the AES-256-CBC IV is not 16 bytes"))?;
    scheme.finish(WHAT)?;

    let ciphertext = info.read(TAG_OCTET_STRING, WHAT)?;
    info.finish(WHAT)?;
    if ciphertext.is_empty() || ciphertext.len() % 16 != 0 {
        return Err(malformed(
            WHAT,
            format!(
                "the ciphertext is {} bytes, expected a non-zero multiple of the AES block size (16)",
                ciphertext.len()
            ),
        ));
    }
    Ok(EncryptedKeyInfo {
        salt,
        iterations,
        iv,
        ciphertext,
    })
}

fn decrypt(info: &EncryptedKeyInfo<'_>, passphrase: &str) -> Result<Vec<u8>> {
    let mut key = derive_key(passphrase, info.salt, info.iterations);
    let cipher = UnboundCipherKey::new(&AES_256, &key)
        .and_then(PaddedBlockDecryptingKey::cbc_pkcs7)
        .map_err(|_| KeyError::Crypto("AES-256-CBC key setup failed"));
    wipe(&mut key);
    let cipher = cipher?;
    let mut data = info.ciphertext.to_vec();
    let len = match cipher.decrypt(
        &mut data,
        DecryptionContext::Iv128(FixedLength::from(info.iv)),
    ) {
        Ok(plaintext) => plaintext.len(),
        Err(_) => {
            wipe(&mut data);
            return Err(KeyError::WrongPassphrase);
        }
    };
    data.truncate(len);
    Ok(data)
}

/// Checks the decrypted `PrivateKeyInfo` names an ECDSA P-256 key. A DER
/// structure that does not parse means the passphrase was wrong (the padding
/// happened to check out) or the file was corrupted.
fn check_private_key_info(der: &[u8]) -> Result<()> {
    let garbled = |_| KeyError::WrongPassphrase;
    let mut outer = DerReader::new(der);
    let mut info = outer.read_seq("").map_err(garbled)?;
    outer.finish("").map_err(garbled)?;
    let version = info.read_uint("").map_err(garbled)?;
    if !matches!(version, Some(0 | 1)) {
        return Err(KeyError::WrongPassphrase);
    }
    let mut algorithm = info.read_seq("").map_err(garbled)?;
    let oid = algorithm.read(TAG_OID, "").map_err(garbled)?;
    if oid != OID_EC_PUBLIC_KEY {
        return Err(KeyError::Unsupported {
            what: "private key algorithm",
            found: oid_name(oid),
            supported: "ECDSA P-256 keys",
        });
    }
    if algorithm.peek_tag() == Some(TAG_OID) {
        let curve = algorithm.read(TAG_OID, "").map_err(garbled)?;
        if curve != OID_P256 {
            return Err(KeyError::Unsupported {
                what: "private key curve",
                found: oid_name(curve),
                supported: "ECDSA P-256 keys",
            });
        }
    }
    Ok(())
}

/// Parses a SubjectPublicKeyInfo and returns its P-256 point.
fn parse_spki(der: &[u8]) -> Result<&[u8]> {
    const WHAT: &str = "public key";
    let mut outer = DerReader::new(der);
    let mut spki = outer.read_seq(WHAT)?;
    outer.finish(WHAT)?;
    let mut algorithm = spki.read_seq(WHAT)?;
    let oid = algorithm.read(TAG_OID, WHAT)?;
    if oid != OID_EC_PUBLIC_KEY {
        return Err(KeyError::Unsupported {
            what: "public key algorithm",
            found: oid_name(oid),
            supported: "ECDSA P-256 keys (`squizzle keygen` writes one)",
        });
    }
    let curve = if algorithm.peek_tag() == Some(TAG_OID) {
        algorithm.read(TAG_OID, WHAT)?
    } else {
        return Err(KeyError::Unsupported {
            what: "public key curve",
            found: "explicit (unnamed) curve parameters".into(),
            supported: "the named curve P-256",
        });
    };
    if curve != OID_P256 {
        return Err(KeyError::Unsupported {
            what: "public key curve",
            found: oid_name(curve),
            supported: "ECDSA P-256 keys (`squizzle keygen` writes one)",
        });
    }
    algorithm.finish(WHAT)?;
    let bits = spki.read(TAG_BIT_STRING, WHAT)?;
    spki.finish(WHAT)?;
    match bits.split_first() {
        Some((0, point)) => Ok(point),
        _ => Err(malformed(WHAT, "the key BIT STRING has unused bits")),
    }
}

fn encode_spki(point: &[u8]) -> Vec<u8> {
    let mut bits = Vec::with_capacity(point.len() + 1);
    bits.push(0);
    bits.extend_from_slice(point);
    der_seq(&[
        &der_seq(&[
            &der_tlv(TAG_OID, OID_EC_PUBLIC_KEY),
            &der_tlv(TAG_OID, OID_P256),
        ]),
        &der_tlv(TAG_BIT_STRING, &bits),
    ])
}

/// Best-effort zeroing of secret bytes.
fn wipe(bytes: &mut [u8]) {
    for b in bytes.iter_mut() {
        // SAFETY: `b` is a valid, exclusive reference to a byte.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

// ---------------------------------------------------------------------------
// DER
// ---------------------------------------------------------------------------

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

fn der_seq(parts: &[&[u8]]) -> Vec<u8> {
    der_tlv(TAG_SEQUENCE, &parts.concat())
}

/// A non-negative INTEGER, minimally encoded.
fn der_uint(value: u64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count().min(7);
    let mut content = Vec::with_capacity(9);
    if bytes[skip] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(&bytes[skip..]);
    der_tlv(TAG_INTEGER, &content)
}

/// A strict DER reader: definite, minimal lengths, single-byte tags.
struct DerReader<'a> {
    data: &'a [u8],
}

impl<'a> DerReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    fn read(&mut self, tag: u8, what: &'static str) -> Result<&'a [u8]> {
        let truncated = || malformed(what, "the DER is truncated");
        let (&found, rest) = self.data.split_first().ok_or_else(truncated)?;
        if found != tag {
            return Err(malformed(
                what,
                format!("expected DER tag 0x{tag:02x}, found 0x{found:02x}"),
            ));
        }
        let (&first, mut rest) = rest.split_first().ok_or_else(truncated)?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err(malformed(what, "the DER has an invalid length"));
            }
            let (len_bytes, after) = rest.split_at(n);
            rest = after;
            if len_bytes[0] == 0 {
                return Err(malformed(what, "the DER length is not minimal"));
            }
            let len = len_bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            if len < 0x80 {
                return Err(malformed(what, "the DER length is not minimal"));
            }
            len
        };
        if rest.len() < len {
            return Err(truncated());
        }
        let (content, after) = rest.split_at(len);
        self.data = after;
        Ok(content)
    }

    fn read_seq(&mut self, what: &'static str) -> Result<DerReader<'a>> {
        self.read(TAG_SEQUENCE, what).map(DerReader::new)
    }

    /// A non-negative INTEGER; `None` if it does not fit in a u64.
    fn read_uint(&mut self, what: &'static str) -> Result<Option<u64>> {
        let content = self.read(TAG_INTEGER, what)?;
        match content {
            [] => Err(malformed(what, "empty DER INTEGER")),
            [first, ..] if first & 0x80 != 0 => Err(malformed(what, "negative DER INTEGER")),
            [0, second, ..] if second & 0x80 == 0 => {
                Err(malformed(what, "the DER INTEGER is not minimal"))
            }
            _ => {
                let digits = match content {
                    [0, rest @ ..] => rest,
                    _ => content,
                };
                if digits.len() > 8 {
                    return Ok(None);
                }
                Ok(Some(
                    digits
                        .iter()
                        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
                ))
            }
        }
    }

    fn finish(&self, what: &'static str) -> Result<()> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(malformed(what, "unexpected trailing DER data"))
        }
    }
}

// ---------------------------------------------------------------------------
// PEM
// ---------------------------------------------------------------------------

struct PemBlock {
    label: String,
    der: Vec<u8>,
    /// Legacy OpenSSL `Proc-Type: 4,ENCRYPTED` headers were present.
    encrypted_legacy: bool,
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let body = BASE64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Reads the first PEM block of `text`. Text before it is ignored (as OpenSSL
/// does); the base64 body is decoded strictly.
fn pem_decode(text: &str, what: &'static str, expected: &'static str) -> Result<PemBlock> {
    let not_pem = |detail: &str| KeyError::NotPem {
        what,
        label: expected,
        detail: detail.to_owned(),
    };
    if text.len() > MAX_PEM_LEN {
        return Err(not_pem("the file is larger than 64 KiB"));
    }
    let mut lines = text.lines().map(str::trim);
    let label = loop {
        let Some(line) = lines.next() else {
            return Err(not_pem("no `-----BEGIN` line"));
        };
        if let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
        {
            break label.to_owned();
        }
    };
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    let mut encrypted_legacy = false;
    let mut ended = false;
    for line in lines.by_ref() {
        if line == end {
            ended = true;
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim() == "Proc-Type" && value.contains("ENCRYPTED") {
                encrypted_legacy = true;
            }
            continue;
        }
        body.push_str(line);
    }
    if !ended {
        return Err(not_pem(&format!("no `{end}` line")));
    }
    let der = BASE64
        .decode(body.as_bytes())
        .map_err(|_| not_pem("the body is not valid base64"))?;
    if der.is_empty() {
        return Err(not_pem("the block is empty"));
    }
    Ok(PemBlock {
        label,
        der,
        encrypted_legacy,
    })
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    const PASS: &str = "correct horse battery staple";
    const FAST: u32 = 1_000;

    fn keys() -> &'static GeneratedKeys {
        static KEYS: OnceLock<GeneratedKeys> = OnceLock::new();
        KEYS.get_or_init(|| generate_with_iterations(PASS, FAST).unwrap())
    }

    fn private() -> PrivateKey {
        load_private_key(&keys().private_key_pem, PASS).unwrap()
    }

    fn statement(digest_hex: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "_type": STATEMENT_TYPE_V1,
            "subject": [{"name": "app-migrations", "digest": {"sha256": digest_hex}}],
            "predicateType": "https://squizzle.dev/release/v1",
            "predicate": {"version": "1.2.3"},
        }))
        .unwrap()
    }

    const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn signed() -> Bundle {
        sign_statement(&private(), &statement(DIGEST)).unwrap()
    }

    fn envelope_mut(bundle: &mut Bundle) -> &mut DsseEnvelope {
        match &mut bundle.content {
            SignatureContent::DsseEnvelope(e) => e,
            _ => panic!("not DSSE"),
        }
    }

    /// Replaces the DER of the encrypted key with `der`, as a PEM.
    fn encrypted_pem(der: &[u8]) -> String {
        pem_encode(ENCRYPTED_LABEL, der)
    }

    fn key_der() -> Vec<u8> {
        pem_decode(&keys().private_key_pem, "private key", ENCRYPTED_LABEL)
            .unwrap()
            .der
    }

    #[test]
    fn generated_pem_shapes() {
        let k = keys();
        assert!(
            k.private_key_pem
                .starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
        );
        assert!(
            k.private_key_pem
                .ends_with("-----END ENCRYPTED PRIVATE KEY-----\n")
        );
        assert!(k.public_key_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        for pem in [&k.private_key_pem, &k.public_key_pem] {
            let body: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            let (last, full) = body.split_last().unwrap();
            assert!(full.iter().all(|l| l.len() == 64), "{pem}");
            assert!(!last.is_empty() && last.len() <= 64);
        }
        assert_eq!(k.public_key.fingerprint().len(), 64);
        assert_eq!(
            k.public_key.fingerprint(),
            hex::encode(Sha256::digest(k.public_key.spki_der()))
        );
    }

    #[test]
    fn der_round_trip() {
        let der = key_der();
        let info = parse_encrypted_private_key_info(&der).unwrap();
        assert_eq!(info.iterations.get(), FAST);
        assert_eq!(info.salt.len(), SALT_LEN);
        let again = encode_encrypted_private_key_info(info.salt, FAST, &info.iv, info.ciphertext);
        assert_eq!(again, der);
        // Two encryptions use different salts and IVs.
        let other = generate_with_iterations(PASS, FAST).unwrap();
        assert_ne!(other.private_key_pem, keys().private_key_pem);

        let key = private();
        assert_eq!(key.public_key(), &keys().public_key);
        let public = load_public_key(&keys().public_key_pem).unwrap();
        assert_eq!(public, keys().public_key);
        assert_eq!(public.to_pem(), keys().public_key_pem);
        // Large lengths and integers.
        assert_eq!(der_uint(600_000), vec![0x02, 0x03, 0x09, 0x27, 0xc0]);
        assert_eq!(der_uint(128), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(der_uint(0), vec![0x02, 0x01, 0x00]);
        let long = der_tlv(TAG_OCTET_STRING, &[7u8; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let mut r = DerReader::new(&long);
        assert_eq!(r.read(TAG_OCTET_STRING, "x").unwrap().len(), 300);
        assert!(r.is_empty());
    }

    #[test]
    fn default_iterations_are_strong() {
        const { assert!(DEFAULT_PBKDF2_ITERATIONS >= 600_000) };
    }

    #[test]
    fn wrong_passphrase() {
        let e = load_private_key(&keys().private_key_pem, "not the passphrase").unwrap_err();
        assert!(matches!(e, KeyError::WrongPassphrase), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains("wrong passphrase or corrupted key"), "{msg}");
        assert!(msg.contains(PASSWORD_ENV), "{msg}");
        assert!(!msg.contains("not the passphrase"));
        assert!(!format!("{e:?}").contains("not the passphrase"));
    }

    #[test]
    fn empty_passphrase_refused_at_generation() {
        assert!(matches!(
            generate_with_iterations("", FAST),
            Err(KeyError::EmptyPassphrase)
        ));
    }

    #[test]
    fn corrupted_ciphertext_is_wrong_passphrase() {
        let mut der = key_der();
        let n = der.len();
        der[n - 20] ^= 0x55; // inside the last-but-one block: garbles the plaintext
        der[n - 1] ^= 0x01;
        let e = load_private_key(&encrypted_pem(&der), PASS).unwrap_err();
        assert!(matches!(e, KeyError::WrongPassphrase), "{e:?}");
    }

    #[test]
    fn truncated_der() {
        let der = key_der();
        for cut in [1, 10, der.len() / 2, der.len() - 1] {
            let e = load_private_key(&encrypted_pem(&der[..cut]), PASS).unwrap_err();
            assert!(matches!(e, KeyError::Malformed { .. }), "cut {cut}: {e:?}");
        }
        let mut trailing = der.clone();
        trailing.push(0);
        let e = load_private_key(&encrypted_pem(&trailing), PASS).unwrap_err();
        assert!(e.to_string().contains("trailing"), "{e}");
    }

    #[test]
    fn not_pem() {
        for text in ["", "hello", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n"] {
            let e = load_private_key(text, PASS).unwrap_err();
            assert!(matches!(e, KeyError::NotPem { .. }), "{e:?}");
        }
        let e = load_private_key(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\n!!!!\n-----END ENCRYPTED PRIVATE KEY-----\n",
            PASS,
        )
        .unwrap_err();
        assert!(e.to_string().contains("base64"), "{e}");
        let e = load_private_key(&keys().public_key_pem, PASS).unwrap_err();
        assert!(matches!(e, KeyError::WrongPemLabel { .. }), "{e:?}");
        assert!(e.to_string().contains("squizzle.key"), "{e}");
        let e = load_public_key(&keys().private_key_pem).unwrap_err();
        assert!(e.to_string().contains("squizzle.pub"), "{e}");
    }

    #[test]
    fn unencrypted_pkcs8_refused() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let plain = pem_encode("PRIVATE KEY", pkcs8.as_ref());
        let e = load_private_key(&plain, PASS).unwrap_err();
        assert!(matches!(e, KeyError::UnencryptedPrivateKey { .. }), "{e:?}");
        assert!(e.to_string().contains("squizzle keygen"), "{e}");
        // The same DER under the encrypted label.
        let e = load_private_key(&encrypted_pem(pkcs8.as_ref()), PASS).unwrap_err();
        assert!(matches!(e, KeyError::UnencryptedPrivateKey { .. }), "{e:?}");
        let e = load_private_key(&pem_encode("EC PRIVATE KEY", &[0x30, 0x00]), PASS).unwrap_err();
        assert!(matches!(e, KeyError::UnencryptedPrivateKey { .. }), "{e:?}");
        let legacy = "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00112233445566778899AABBCCDDEEFF\n\nMAA=\n-----END EC PRIVATE KEY-----\n";
        let e = load_private_key(legacy, PASS).unwrap_err();
        assert!(matches!(e, KeyError::Unsupported { .. }), "{e:?}");
    }

    #[test]
    fn absurd_iteration_count_refused_before_deriving() {
        let der = key_der();
        let info = parse_encrypted_private_key_info(&der).unwrap();
        let huge =
            encode_encrypted_private_key_info(info.salt, u32::MAX, &info.iv, info.ciphertext);
        let start = std::time::Instant::now();
        let e = load_private_key(&encrypted_pem(&huge), PASS).unwrap_err();
        assert!(matches!(e, KeyError::IterationCount { .. }), "{e:?}");
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        let zero = encode_encrypted_private_key_info(info.salt, 0, &info.iv, info.ciphertext);
        let e = load_private_key(&encrypted_pem(&zero), PASS).unwrap_err();
        assert!(matches!(e, KeyError::IterationCount { .. }), "{e:?}");
        // An INTEGER wider than 64 bits.
        let wide = encode_encrypted_private_key_info_raw(
            info.salt,
            &der_tlv(TAG_INTEGER, &[0x7f; 12]),
            &info.iv,
            info.ciphertext,
        );
        let e = load_private_key(&encrypted_pem(&wide), PASS).unwrap_err();
        assert!(matches!(e, KeyError::IterationCount { .. }), "{e:?}");
        assert!(e.to_string().contains("600000"), "{e}");
        // A negative one.
        let negative = encode_encrypted_private_key_info_raw(
            info.salt,
            &der_tlv(TAG_INTEGER, &[0xff]),
            &info.iv,
            info.ciphertext,
        );
        let e = load_private_key(&encrypted_pem(&negative), PASS).unwrap_err();
        assert!(matches!(e, KeyError::Malformed { .. }), "{e:?}");
    }

    #[test]
    fn unsupported_algorithms_named() {
        let der = key_der();
        // aes256-CBC -> aes128-CBC (last OID byte 0x2a -> 0x02).
        let mut aes128 = der.clone();
        let pos = aes128
            .windows(OID_AES256_CBC.len())
            .position(|w| w == OID_AES256_CBC)
            .unwrap();
        aes128[pos + OID_AES256_CBC.len() - 1] = 0x02;
        let e = load_private_key(&encrypted_pem(&aes128), PASS).unwrap_err();
        assert!(matches!(e, KeyError::Unsupported { .. }), "{e:?}");
        assert!(e.to_string().contains("aes128-CBC"), "{e}");
        // hmacWithSHA256 -> hmacWithSHA1.
        let mut sha1 = der.clone();
        let pos = sha1
            .windows(OID_HMAC_SHA256.len())
            .position(|w| w == OID_HMAC_SHA256)
            .unwrap();
        sha1[pos + OID_HMAC_SHA256.len() - 1] = 0x07;
        let e = load_private_key(&encrypted_pem(&sha1), PASS).unwrap_err();
        assert!(e.to_string().contains("hmacWithSHA1"), "{e}");
        // PBES2 -> PBES1 pbeWithMD5AndDES-CBC.
        let mut pbes1 = der.clone();
        let pos = pbes1
            .windows(OID_PBES2.len())
            .position(|w| w == OID_PBES2)
            .unwrap();
        pbes1[pos + OID_PBES2.len() - 1] = 0x03;
        let e = load_private_key(&encrypted_pem(&pbes1), PASS).unwrap_err();
        assert!(e.to_string().contains("pbeWithMD5AndDES-CBC"), "{e}");
    }

    #[test]
    fn public_key_must_be_p256() {
        // An Ed25519 SPKI.
        let mut ed = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        ed.extend_from_slice(&[9u8; 32]);
        let e = load_public_key(&pem_encode(PUBLIC_LABEL, &ed)).unwrap_err();
        assert!(matches!(e, KeyError::Unsupported { .. }), "{e:?}");
        assert!(e.to_string().contains("Ed25519"), "{e}");
        // A point not on the curve.
        let mut point = vec![0x04];
        point.extend_from_slice(&[1u8; 64]);
        let e = load_public_key(&pem_encode(PUBLIC_LABEL, &encode_spki(&point))).unwrap_err();
        assert!(matches!(e, KeyError::Malformed { .. }), "{e:?}");
    }

    #[test]
    fn debug_output_hides_secrets() {
        let key = private();
        let debug = format!("{key:?} {:?}", keys());
        assert!(debug.contains(keys().public_key.fingerprint()), "{debug}");
        assert!(!debug.contains("BEGIN"), "{debug}");
        assert!(!debug.contains(PASS));
    }

    #[test]
    fn sign_and_verify() {
        let bundle = signed();
        let json = bundle.to_json().unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            value["mediaType"],
            "application/vnd.dev.sigstore.bundle.v0.3+json"
        );
        assert_eq!(
            value["verificationMaterial"]["publicKey"]["hint"],
            keys().public_key.fingerprint()
        );
        assert_eq!(value["dsseEnvelope"]["payloadType"], IN_TOTO_PAYLOAD_TYPE);
        assert_eq!(
            value["dsseEnvelope"]["signatures"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert!(
            value["verificationMaterial"]["tlogEntries"]
                .as_array()
                .is_none_or(|a| a.is_empty())
        );

        let parsed = parse_bundle(json.as_bytes()).unwrap();
        let verified = verify_statement(&parsed, &keys().public_key).unwrap();
        assert_eq!(verified.subjects.len(), 1);
        assert_eq!(verified.subjects[0].name, "app-migrations");
        assert_eq!(verified.subjects[0].sha256.hex(), DIGEST);
        assert_eq!(verified.predicate_type, "https://squizzle.dev/release/v1");
        assert_eq!(verified.predicate["version"], "1.2.3");
        assert_eq!(verified.key_fingerprint, keys().public_key.fingerprint());

        // Signed with a key that was loaded from its file.
        let public = load_public_key(&keys().public_key_pem).unwrap();
        verify_statement(&parsed, &public).unwrap();
    }

    #[test]
    fn refuses_to_sign_non_statements() {
        let key = private();
        let e = sign_statement(&key, b"not json").unwrap_err();
        assert!(matches!(e, KeyError::StatementToSign { .. }), "{e:?}");
        let wrong_type = serde_json::to_vec(&serde_json::json!({
            "_type": "https://in-toto.io/Statement/v0.1",
            "subject": [{"name": "x", "digest": {"sha256": DIGEST}}],
            "predicateType": "p",
        }))
        .unwrap();
        assert!(sign_statement(&key, &wrong_type).is_err());
    }

    #[test]
    fn wrong_key() {
        let bundle = signed();
        let other = generate_with_iterations(PASS, FAST).unwrap();
        let e = verify_statement(&bundle, &other.public_key).unwrap_err();
        assert!(matches!(e, KeyError::HintMismatch { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains(keys().public_key.fingerprint()), "{msg}");
        assert!(msg.contains(other.public_key.fingerprint()), "{msg}");

        // Without the hint, the signature check itself refuses.
        let mut no_hint = bundle.clone();
        no_hint.verification_material.content = VerificationMaterialContent::PublicKey(
            sigstore_verify::types::PublicKeyIdentifier::new(""),
        );
        let e = verify_statement(&no_hint, &other.public_key).unwrap_err();
        assert!(matches!(e, KeyError::BadSignature { .. }), "{e:?}");
        verify_statement(&no_hint, &keys().public_key).unwrap();
    }

    #[test]
    fn tampered_payload() {
        let mut bundle = signed();
        let other = statement(&"f".repeat(64));
        envelope_mut(&mut bundle).payload = PayloadBytes::new(other);
        let e = verify_statement(&bundle, &keys().public_key).unwrap_err();
        assert!(matches!(e, KeyError::BadSignature { .. }), "{e:?}");

        let mut bundle = signed();
        let mut bytes = envelope_mut(&mut bundle).payload.as_bytes().to_vec();
        let last = bytes.len() - 1;
        bytes[last] = b' ';
        envelope_mut(&mut bundle).payload = PayloadBytes::new(bytes);
        let e = verify_statement(&bundle, &keys().public_key).unwrap_err();
        assert!(matches!(e, KeyError::BadSignature { .. }), "{e:?}");

        let mut bundle = signed();
        envelope_mut(&mut bundle).payload_type = "application/json".into();
        let e = verify_statement(&bundle, &keys().public_key).unwrap_err();
        assert!(matches!(e, KeyError::PayloadType { .. }), "{e:?}");
    }

    #[test]
    fn tampered_signature() {
        let mut bundle = signed();
        let mut sig = envelope_mut(&mut bundle).signature.sig.as_bytes().to_vec();
        let n = sig.len();
        sig[n - 1] ^= 0x01;
        envelope_mut(&mut bundle).signature.sig = SignatureBytes::new(sig);
        let e = verify_statement(&bundle, &keys().public_key).unwrap_err();
        assert!(matches!(e, KeyError::BadSignature { .. }), "{e:?}");

        envelope_mut(&mut bundle).signature.sig = SignatureBytes::new(vec![1, 2, 3]);
        let e = verify_statement(&bundle, &keys().public_key).unwrap_err();
        assert!(matches!(e, KeyError::BadSignature { .. }), "{e:?}");

        envelope_mut(&mut bundle).signature.sig = SignatureBytes::new(Vec::new());
        let e = verify_statement(&bundle, &keys().public_key).unwrap_err();
        assert!(matches!(e, KeyError::MissingSignature), "{e:?}");
    }

    #[test]
    fn hint_mismatch_names_both() {
        let mut bundle = signed();
        bundle.verification_material.content = VerificationMaterialContent::PublicKey(
            sigstore_verify::types::PublicKeyIdentifier::new("someone-else"),
        );
        let e = verify_statement(&bundle, &keys().public_key).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("someone-else"), "{msg}");
        assert!(msg.contains(keys().public_key.fingerprint()), "{msg}");
    }

    #[test]
    fn hostile_bundles() {
        // Garbage.
        for json in [&b"garbage"[..], b"{}", b"[1,2]", b"\xff\xfe"] {
            let e = parse_bundle(json).unwrap_err();
            assert!(matches!(e, KeyError::BundleJson { .. }), "{e:?}");
        }
        // No signatures / two signatures in the DSSE list.
        let json = signed().to_json().unwrap();
        let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let sig = value["dsseEnvelope"]["signatures"][0].clone();
        value["dsseEnvelope"]["signatures"] = serde_json::json!([]);
        assert!(parse_bundle(value.to_string().as_bytes()).is_err());
        value["dsseEnvelope"]["signatures"] = serde_json::json!([sig.clone(), sig]);
        assert!(parse_bundle(value.to_string().as_bytes()).is_err());

        // A message-signature bundle.
        let message = serde_json::json!({
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {"publicKey": {"hint": keys().public_key.fingerprint()}},
            "messageSignature": {
                "messageDigest": {"algorithm": "SHA2_256", "digest": BASE64.encode([0u8; 32])},
                "signature": BASE64.encode([1u8; 64]),
            },
        });
        let bundle = parse_bundle(message.to_string().as_bytes()).unwrap();
        let e = verify_statement(&bundle, &keys().public_key).unwrap_err();
        assert!(matches!(e, KeyError::NotDsse), "{e:?}");

        // A keyless (certificate) bundle.
        let mut keyless = signed();
        keyless.verification_material.content = VerificationMaterialContent::Certificate(
            sigstore_verify::types::CertificateContent::new(
                sigstore_verify::types::DerCertificate::new(vec![0x30, 0x00]),
            ),
        );
        let e = verify_statement(&keyless, &keys().public_key).unwrap_err();
        assert!(matches!(e, KeyError::NotKeySigned { .. }), "{e:?}");

        // A signed payload that is not an in-toto statement v1.
        let key = private();
        let payload = br#"{"_type":"https://in-toto.io/Statement/v0.1","subject":[{"name":"x","digest":{"sha256":"00"}}],"predicateType":"p"}"#;
        let pae = sigstore_verify::types::pae(IN_TOTO_PAYLOAD_TYPE, payload);
        let mut bundle = signed();
        envelope_mut(&mut bundle).payload = PayloadBytes::from_bytes(payload);
        envelope_mut(&mut bundle).signature.sig = SignatureBytes::new(key.sign(&pae).unwrap());
        let e = verify_statement(&bundle, &keys().public_key).unwrap_err();
        assert!(matches!(e, KeyError::BadStatement { .. }), "{e:?}");
    }
}
