//! The key pair itself: generating one, reading and writing its two files
//! (`squizzle.key`, an encrypted PKCS#8 PEM; `squizzle.pub`, an SPKI PEM),
//! and the public key's id (its fingerprint). Signatures are `dsse`'s; the
//! private key's encryption is `encrypted`'s.

use std::fmt;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _,
    ParsedPublicKey,
};
use der::asn1::{AnyRef, BitStringRef, ObjectIdentifier};
use der::pem::PemLabel as _;
use der::{Decode as _, Encode as _};
use sha2::{Digest as _, Sha256};
use spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};

use super::encrypted::{self, DEFAULT_PBKDF2_ITERATIONS};
use super::error::{KeyError, Result, SUPPORTED_ENCRYPTION, malformed};
use super::oid;
use super::pem;

const ENCRYPTED_LABEL: &str = pkcs8::EncryptedPrivateKeyInfo::PEM_LABEL;
const PRIVATE_LABEL: &str = pkcs8::PrivateKeyInfo::PEM_LABEL;
const PUBLIC_LABEL: &str = SubjectPublicKeyInfoRef::PEM_LABEL;
/// An uncompressed SEC1 P-256 point: `04 || X || Y`.
const P256_POINT_LEN: usize = 65;

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
        let spki_der = encode_spki(point)?;
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
        pem::encode(PUBLIC_LABEL, &self.spki_der)
    }

    /// Whether `signature` (ASN.1 DER ECDSA) signs `message` (SHA-256).
    pub(super) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
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
    pub(super) fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
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

/// [`generate`] with a chosen iteration count: unit tests make cheap (and
/// weak) keys with it.
pub(super) fn generate_with_iterations(passphrase: &str, iterations: u32) -> Result<GeneratedKeys> {
    if passphrase.is_empty() {
        return Err(KeyError::EmptyPassphrase);
    }
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
        .map_err(|_| KeyError::Crypto("ECDSA P-256 key generation failed"))?;
    let private = PrivateKey::from_pkcs8(pkcs8.as_ref())?;
    let der = encrypted::encrypt(pkcs8.as_ref(), passphrase, iterations)?;
    let public_key = private.public_key.clone();
    Ok(GeneratedKeys {
        private_key_pem: pem::encode(ENCRYPTED_LABEL, &der),
        public_key_pem: public_key.to_pem(),
        public_key,
    })
}

/// Decrypts an `-----BEGIN ENCRYPTED PRIVATE KEY-----` PEM with `passphrase`.
///
/// Only PBES2 / PBKDF2-HMAC-SHA256
/// ([`MIN_PBKDF2_ITERATIONS`](super::MIN_PBKDF2_ITERATIONS)..=[`MAX_PBKDF2_ITERATIONS`](super::MAX_PBKDF2_ITERATIONS)
/// iterations) / AES-256-CBC and an ECDSA P-256 key are accepted.
///
/// # Errors
/// [`KeyError::NotPem`], [`KeyError::UnencryptedPrivateKey`],
/// [`KeyError::WrongPemLabel`], [`KeyError::Malformed`],
/// [`KeyError::Unsupported`], [`KeyError::IterationCount`],
/// [`KeyError::TooFewIterations`], [`KeyError::WrongPassphrase`].
pub fn load_private_key(pem: &str, passphrase: &str) -> Result<PrivateKey> {
    let block = pem::Block::find(pem, "private key", ENCRYPTED_LABEL)?;
    match block.label() {
        ENCRYPTED_LABEL => {}
        PRIVATE_LABEL => {
            return Err(KeyError::UnencryptedPrivateKey {
                found: "a `-----BEGIN PRIVATE KEY-----` PKCS#8 block",
            });
        }
        "EC PRIVATE KEY" | "RSA PRIVATE KEY" if block.has_legacy_encryption() => {
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
    let der = block.decode("private key", ENCRYPTED_LABEL)?;
    let pkcs8 = encrypted::decrypt(&der, passphrase)?;
    // A key that does not load after its padding and structure checked out
    // was decrypted with the wrong passphrase (or the file is corrupted).
    PrivateKey::from_pkcs8(&pkcs8).map_err(|_| KeyError::WrongPassphrase)
}

/// Reads a `-----BEGIN PUBLIC KEY-----` (SPKI) PEM holding an ECDSA P-256 key.
///
/// # Errors
/// [`KeyError::NotPem`], [`KeyError::WrongPemLabel`], [`KeyError::Malformed`],
/// [`KeyError::Unsupported`] (not an EC key, or not P-256).
pub fn load_public_key(pem: &str) -> Result<PublicKey> {
    let block = pem::Block::find(pem, "public key", PUBLIC_LABEL)?;
    if block.label() != PUBLIC_LABEL {
        let is_private = block.label().contains("PRIVATE KEY");
        return Err(KeyError::WrongPemLabel {
            what: "public key",
            found: block.label().to_owned(),
            expected: PUBLIC_LABEL,
            hint: if is_private {
                ": this is a private key; pass the public key file (squizzle.pub)"
            } else {
                ""
            },
        });
    }
    let der = block.decode("public key", PUBLIC_LABEL)?;
    PublicKey::from_point(parse_spki(&der)?)
}

/// Reads a SubjectPublicKeyInfo and returns its P-256 point.
fn parse_spki(der: &[u8]) -> Result<&[u8]> {
    const WHAT: &str = "public key";
    const SUPPORTED: &str = "ECDSA P-256 keys (`squizzle keygen` writes one)";
    let spki =
        SubjectPublicKeyInfoRef::from_der(der).map_err(|e| malformed(WHAT, e.to_string()))?;
    let algorithm = spki.algorithm;
    if algorithm.oid != oid::EC_PUBLIC_KEY {
        return Err(KeyError::Unsupported {
            what: "public key algorithm",
            found: oid::name(&algorithm.oid),
            supported: SUPPORTED,
        });
    }
    let curve = algorithm
        .parameters
        .and_then(|params| params.decode_as::<ObjectIdentifier>().ok())
        .ok_or_else(|| KeyError::Unsupported {
            what: "public key curve",
            found: "explicit (unnamed) curve parameters".into(),
            supported: "the named curve P-256",
        })?;
    if curve != oid::P256 {
        return Err(KeyError::Unsupported {
            what: "public key curve",
            found: oid::name(&curve),
            supported: SUPPORTED,
        });
    }
    spki.subject_public_key
        .as_bytes()
        .ok_or_else(|| malformed(WHAT, "the key BIT STRING has unused bits"))
}

/// The SubjectPublicKeyInfo of a P-256 point: id-ecPublicKey with the named
/// curve as parameters (RFC 5480).
fn encode_spki(point: &[u8]) -> Result<Vec<u8>> {
    let bad = |_| KeyError::Crypto("encoding the public key failed");
    SubjectPublicKeyInfoRef {
        algorithm: AlgorithmIdentifierRef {
            oid: oid::EC_PUBLIC_KEY,
            parameters: Some(AnyRef::from(&oid::P256)),
        },
        subject_public_key: BitStringRef::from_bytes(point).map_err(bad)?,
    }
    .to_der()
    .map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::super::encrypted::MIN_PBKDF2_ITERATIONS;
    use super::super::error::PASSWORD_ENV;
    use super::*;
    use std::sync::OnceLock;

    const PASS: &str = "correct horse battery staple";

    /// A key written by squizzle before its key files were read and written
    /// through the RustCrypto encoding crates (`squizzle keygen`, 600,000
    /// iterations, passphrase `golden passphrase`).
    const GOLDEN_KEY: &str = include_str!("golden/squizzle.key");
    const GOLDEN_PUB: &str = include_str!("golden/squizzle.pub");
    const GOLDEN_FINGERPRINT: &str = include_str!("golden/fingerprint");

    fn keys() -> &'static GeneratedKeys {
        static KEYS: OnceLock<GeneratedKeys> = OnceLock::new();
        KEYS.get_or_init(|| generate_with_iterations(PASS, MIN_PBKDF2_ITERATIONS).unwrap())
    }

    fn key_der() -> Vec<u8> {
        pem::Block::find(&keys().private_key_pem, "", ENCRYPTED_LABEL)
            .unwrap()
            .decode("", ENCRYPTED_LABEL)
            .unwrap()
    }

    #[test]
    fn keys_written_before_load_and_read_back_the_same() {
        let public = load_public_key(GOLDEN_PUB).unwrap();
        assert_eq!(public.fingerprint(), GOLDEN_FINGERPRINT.trim());
        assert_eq!(public.to_pem(), GOLDEN_PUB);
        let private = load_private_key(GOLDEN_KEY, "golden passphrase").unwrap();
        assert_eq!(private.public_key(), &public);
        // Same labels as then; the DER layout is compared in `encrypted`.
        assert_eq!(
            keys().private_key_pem.lines().next(),
            GOLDEN_KEY.lines().next()
        );
        assert_eq!(
            keys().public_key_pem.lines().next(),
            GOLDEN_PUB.lines().next()
        );
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
    fn round_trip() {
        let key = load_private_key(&keys().private_key_pem, PASS).unwrap();
        assert_eq!(key.public_key(), &keys().public_key);
        let public = load_public_key(&keys().public_key_pem).unwrap();
        assert_eq!(public, keys().public_key);
        assert_eq!(public.to_pem(), keys().public_key_pem);
        let other = generate_with_iterations(PASS, MIN_PBKDF2_ITERATIONS).unwrap();
        assert_ne!(other.private_key_pem, keys().private_key_pem);
    }

    #[test]
    fn weak_key_refused_with_advice() {
        let weak = generate_with_iterations(PASS, 2_048).unwrap();
        let e = load_private_key(&weak.private_key_pem, PASS).unwrap_err();
        assert!(
            matches!(e, KeyError::TooFewIterations { found: 2_048, .. }),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(msg.contains("2048") && msg.contains("100000"), "{msg}");
        assert!(msg.contains("squizzle keygen"), "{msg}");
        assert!(!msg.contains(PASS));
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
            generate_with_iterations("", MIN_PBKDF2_ITERATIONS),
            Err(KeyError::EmptyPassphrase)
        ));
    }

    #[test]
    fn not_pem_or_wrong_label() {
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
        assert!(matches!(e, KeyError::WrongPemLabel { .. }), "{e:?}");
        assert!(e.to_string().contains("squizzle.pub"), "{e}");
        let e = load_public_key(&pem::encode("CERTIFICATE", &[0x30, 0x00])).unwrap_err();
        assert!(matches!(e, KeyError::WrongPemLabel { .. }), "{e:?}");
    }

    #[test]
    fn truncated_and_trailing_der_in_pem() {
        let der = key_der();
        let e = load_private_key(&pem::encode(ENCRYPTED_LABEL, &der[..der.len() / 2]), PASS)
            .unwrap_err();
        assert!(matches!(e, KeyError::Malformed { .. }), "{e:?}");
        let mut trailing = der.clone();
        trailing.push(0);
        let e = load_private_key(&pem::encode(ENCRYPTED_LABEL, &trailing), PASS).unwrap_err();
        assert!(e.to_string().contains("trailing"), "{e}");
        let spki = keys().public_key.spki_der();
        for cut in [1, 10, spki.len() - 1] {
            let e = load_public_key(&pem::encode(PUBLIC_LABEL, &spki[..cut])).unwrap_err();
            assert!(matches!(e, KeyError::Malformed { .. }), "cut {cut}: {e:?}");
        }
        let mut trailing = spki.to_vec();
        trailing.push(0);
        let e = load_public_key(&pem::encode(PUBLIC_LABEL, &trailing)).unwrap_err();
        assert!(e.to_string().contains("trailing"), "{e}");
    }

    #[test]
    fn unencrypted_private_keys_refused() {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
                .unwrap();
        let plain = pem::encode(PRIVATE_LABEL, pkcs8.as_ref());
        let e = load_private_key(&plain, PASS).unwrap_err();
        assert!(matches!(e, KeyError::UnencryptedPrivateKey { .. }), "{e:?}");
        assert!(e.to_string().contains("squizzle keygen"), "{e}");
        // The same DER under the encrypted label.
        let e = load_private_key(&pem::encode(ENCRYPTED_LABEL, pkcs8.as_ref()), PASS).unwrap_err();
        assert!(matches!(e, KeyError::UnencryptedPrivateKey { .. }), "{e:?}");
        let e = load_private_key(&pem::encode("EC PRIVATE KEY", &[0x30, 0x00]), PASS).unwrap_err();
        assert!(matches!(e, KeyError::UnencryptedPrivateKey { .. }), "{e:?}");
        let legacy = "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00112233445566778899AABBCCDDEEFF\n\nMAA=\n-----END EC PRIVATE KEY-----\n";
        let e = load_private_key(legacy, PASS).unwrap_err();
        assert!(matches!(e, KeyError::Unsupported { .. }), "{e:?}");
    }

    #[test]
    fn public_key_must_be_p256() {
        // An Ed25519 SPKI.
        let mut ed = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        ed.extend_from_slice(&[9u8; 32]);
        let e = load_public_key(&pem::encode(PUBLIC_LABEL, &ed)).unwrap_err();
        assert!(matches!(e, KeyError::Unsupported { .. }), "{e:?}");
        assert!(e.to_string().contains("Ed25519"), "{e}");
        // P-384 named where P-256 belongs (same length as an OID: no).
        let spki = keys().public_key.spki_der().to_vec();
        let p256 = oid::P256.to_der().unwrap();
        let pos = spki.windows(p256.len()).position(|w| w == p256).unwrap();
        let mut wrong_curve = spki.clone();
        // 1.2.840.10045.3.1.7 -> 1.2.840.10045.3.1.1 (P-192), same length.
        wrong_curve[pos + p256.len() - 1] = 0x01;
        let e = load_public_key(&pem::encode(PUBLIC_LABEL, &wrong_curve)).unwrap_err();
        assert!(matches!(e, KeyError::Unsupported { .. }), "{e:?}");
        // id-ecPublicKey -> another OID of the same length.
        let ec = oid::EC_PUBLIC_KEY.to_der().unwrap();
        let pos = spki.windows(ec.len()).position(|w| w == ec).unwrap();
        let mut wrong_alg = spki.clone();
        wrong_alg[pos + ec.len() - 1] = 0x02;
        let e = load_public_key(&pem::encode(PUBLIC_LABEL, &wrong_alg)).unwrap_err();
        assert!(matches!(e, KeyError::Unsupported { .. }), "{e:?}");
        assert!(e.to_string().contains("OID 1.2.840.10045.2.2"), "{e}");
        // A point not on the curve.
        let mut point = vec![0x04];
        point.extend_from_slice(&[1u8; 64]);
        let e =
            load_public_key(&pem::encode(PUBLIC_LABEL, &encode_spki(&point).unwrap())).unwrap_err();
        assert!(matches!(e, KeyError::Malformed { .. }), "{e:?}");
    }

    #[test]
    fn debug_output_hides_secrets() {
        let key = load_private_key(&keys().private_key_pem, PASS).unwrap();
        let debug = format!("{key:?} {:?}", keys());
        assert!(debug.contains(keys().public_key.fingerprint()), "{debug}");
        assert!(!debug.contains("BEGIN"), "{debug}");
        assert!(!debug.contains(PASS));
    }
}
