//! The private key file's DER: an RFC 5958 `EncryptedPrivateKeyInfo` whose
//! scheme is RFC 8018 PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC), around an
//! RFC 5208 `PrivateKeyInfo` holding an ECDSA P-256 key.
//!
//! The structures are the `pkcs8` and `pkcs5` crates' (used for their types
//! only: they never encrypt); PBKDF2 and AES-CBC are aws-lc-rs's. Reading is
//! strict: one scheme is accepted, with its exact algorithm identifiers, an
//! iteration count in [`MIN_PBKDF2_ITERATIONS`]..=[`MAX_PBKDF2_ITERATIONS`],
//! and an unencrypted key is refused. Derived keys and decrypted key bytes
//! are wiped when dropped (`zeroize`). Nothing here knows about PEM or about
//! signing.

use std::num::NonZeroU32;

use aws_lc_rs::cipher::{
    AES_256, DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey,
    PaddedBlockEncryptingKey, UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::pbkdf2;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef};
use der::{Decode as _, Encode as _};
use pkcs5::pbes2::{self, Kdf, Pbkdf2Params, Pbkdf2Prf};
use pkcs8::{EncryptedPrivateKeyInfo, PrivateKeyInfo};
use spki::AlgorithmIdentifierRef;
use zeroize::Zeroizing;

use super::error::{KeyError, Result, SUPPORTED_ENCRYPTION, malformed};
use super::oid;

/// PBKDF2 iterations `squizzle keygen` writes (OWASP's 2023 figure for
/// PBKDF2-HMAC-SHA256).
pub const DEFAULT_PBKDF2_ITERATIONS: u32 = 600_000;
/// The fewest PBKDF2 iterations a key may be protected by. RFC 8018's floor
/// (1,000) and OpenSSL's default (2,048) date from hardware that guessed
/// thousands of times more slowly; 100,000 is a sixth of OWASP's current
/// figure, so keys made by tools that follow older advice (OWASP 2021 said
/// 310,000) still load, while a key that costs an attacker next to nothing
/// per guess is refused. Every key `squizzle keygen` wrote has 600,000.
pub const MIN_PBKDF2_ITERATIONS: u32 = 100_000;
/// The most PBKDF2 iterations a key may ask for: a key file is input, and a
/// huge count would make loading hang.
pub const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

const _: () = assert!(
    MIN_PBKDF2_ITERATIONS <= DEFAULT_PBKDF2_ITERATIONS
        && DEFAULT_PBKDF2_ITERATIONS <= MAX_PBKDF2_ITERATIONS,
    "squizzle must be able to read the keys it writes"
);

const SALT_LEN: usize = 16;
const IV_LEN: usize = 16;
const AES_256_KEY_LEN: usize = 32;
const AES_BLOCK_LEN: usize = 16;
const WHAT: &str = "encrypted private key";

/// The parts of an accepted `EncryptedPrivateKeyInfo`.
struct Pbes2Key<'a> {
    salt: &'a [u8],
    iterations: NonZeroU32,
    iv: [u8; IV_LEN],
    ciphertext: &'a [u8],
}

/// Encrypts the DER `PrivateKeyInfo` `pkcs8` under `passphrase` with a random
/// 16-byte salt and IV, and returns the `EncryptedPrivateKeyInfo` DER.
pub(super) fn encrypt(pkcs8: &[u8], passphrase: &str, iterations: u32) -> Result<Vec<u8>> {
    let iterations = NonZeroU32::new(iterations)
        .filter(|n| n.get() <= MAX_PBKDF2_ITERATIONS)
        .ok_or(KeyError::Crypto("PBKDF2 iteration count out of range"))?;
    let rng = SystemRandom::new();
    let mut salt = [0u8; SALT_LEN];
    let mut iv = [0u8; IV_LEN];
    rng.fill(&mut salt)
        .and_then(|()| rng.fill(&mut iv))
        .map_err(|_| KeyError::Crypto("the system random generator failed"))?;
    let key = derive_key(passphrase, &salt, iterations);
    let cipher = UnboundCipherKey::new(&AES_256, key.as_ref())
        .and_then(PaddedBlockEncryptingKey::cbc_pkcs7)
        .map_err(|_| KeyError::Crypto("AES-256-CBC key setup failed"))?;
    let mut data = Zeroizing::new(pkcs8.to_vec());
    cipher
        .less_safe_encrypt(&mut *data, EncryptionContext::Iv128(FixedLength::from(iv)))
        .map_err(|_| KeyError::Crypto("AES-256-CBC encryption failed"))?;
    encode(&salt, iterations.get(), &iv, &data)
}

/// Decrypts an `EncryptedPrivateKeyInfo` DER and returns the `PrivateKeyInfo`
/// DER inside, checked to name an ECDSA P-256 key.
///
/// A key below [`MIN_PBKDF2_ITERATIONS`] is still decrypted (that costs
/// little, by definition) so that a key of another kind is refused as such:
/// re-encrypting it would not make it usable, so that is the more useful
/// thing to say. Any other weak key is refused as weak, whatever the
/// passphrase.
pub(super) fn decrypt(der: &[u8], passphrase: &str) -> Result<Zeroizing<Vec<u8>>> {
    let key = parse(der)?;
    let plaintext = decrypt_cbc(&key, passphrase).and_then(|plaintext| {
        check_private_key_info(&plaintext)?;
        Ok(plaintext)
    });
    if key.iterations.get() < MIN_PBKDF2_ITERATIONS {
        return Err(match plaintext {
            Err(e @ KeyError::Unsupported { .. }) => e,
            _ => KeyError::TooFewIterations {
                found: key.iterations.get(),
                min: MIN_PBKDF2_ITERATIONS,
            },
        });
    }
    plaintext
}

fn derive_key(
    passphrase: &str,
    salt: &[u8],
    iterations: NonZeroU32,
) -> Zeroizing<[u8; AES_256_KEY_LEN]> {
    let mut key = Zeroizing::new([0u8; AES_256_KEY_LEN]);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        passphrase.as_bytes(),
        key.as_mut(),
    );
    key
}

fn decrypt_cbc(key: &Pbes2Key<'_>, passphrase: &str) -> Result<Zeroizing<Vec<u8>>> {
    let aes_key = derive_key(passphrase, key.salt, key.iterations);
    let cipher = UnboundCipherKey::new(&AES_256, aes_key.as_ref())
        .and_then(PaddedBlockDecryptingKey::cbc_pkcs7)
        .map_err(|_| KeyError::Crypto("AES-256-CBC key setup failed"))?;
    let mut data = Zeroizing::new(key.ciphertext.to_vec());
    let len = cipher
        .decrypt(
            &mut data[..],
            DecryptionContext::Iv128(FixedLength::from(key.iv)),
        )
        .map_err(|_| KeyError::WrongPassphrase)?
        .len();
    data.truncate(len);
    Ok(data)
}

/// The `EncryptedPrivateKeyInfo` squizzle writes: PBES2, PBKDF2 with the
/// salt, the count, no key length and hmacWithSHA256 (NULL parameters), then
/// aes256-CBC with the IV.
fn encode(salt: &[u8], iterations: u32, iv: &[u8; IV_LEN], ciphertext: &[u8]) -> Result<Vec<u8>> {
    let scheme = pbes2::Parameters {
        kdf: Kdf::Pbkdf2(Pbkdf2Params {
            salt,
            iteration_count: iterations,
            key_length: None,
            prf: Pbkdf2Prf::HmacWithSha256,
        }),
        encryption: pbes2::EncryptionScheme::Aes256Cbc { iv },
    };
    EncryptedPrivateKeyInfo {
        encryption_algorithm: scheme.into(),
        encrypted_data: ciphertext,
    }
    .to_der()
    .map_err(|_| KeyError::Crypto("encoding the encrypted private key failed"))
}

/// Reads an `EncryptedPrivateKeyInfo`, accepting only what [`encode`] writes
/// (and OpenSSL writes for `-v2 aes-256-cbc -v2prf hmacWithSHA256`), with an
/// iteration count in 1..=[`MAX_PBKDF2_ITERATIONS`]; the minimum is
/// [`decrypt`]'s to check.
fn parse(der: &[u8]) -> Result<Pbes2Key<'_>> {
    let info = EncryptedPrivateKeyInfo::from_der(der).map_err(|e| {
        if PrivateKeyInfo::from_der(der).is_ok() {
            return KeyError::UnencryptedPrivateKey {
                found: "an unencrypted PKCS#8 key inside an `ENCRYPTED PRIVATE KEY` block",
            };
        }
        match outer_scheme(der) {
            // `pkcs5` reads other schemes' parameters too, and may fail on
            // them: name the scheme rather than its parameters.
            Some(scheme) if scheme != pbes2::PBES2_OID => KeyError::Unsupported {
                what: "private key encryption scheme",
                found: oid::name(&scheme),
                supported: SUPPORTED_ENCRYPTION,
            },
            _ => decode_error(e),
        }
    })?;
    let unsupported = |what: &'static str, found: String| KeyError::Unsupported {
        what,
        found,
        supported: SUPPORTED_ENCRYPTION,
    };
    let scheme = match &info.encryption_algorithm {
        pkcs5::EncryptionScheme::Pbes2(scheme) => scheme,
        other => {
            return Err(unsupported(
                "private key encryption scheme",
                oid::name(&other.oid()),
            ));
        }
    };
    let params = match &scheme.kdf {
        Kdf::Pbkdf2(params) => params,
        other => {
            return Err(unsupported(
                "key derivation function",
                oid::name(&other.oid()),
            ));
        }
    };
    if !(8..=64).contains(&params.salt.len()) {
        return Err(malformed(
            WHAT,
            format!(
                "the PBKDF2 salt is {} bytes, expected 8 to 64",
                params.salt.len()
            ),
        ));
    }
    let iterations = NonZeroU32::new(params.iteration_count)
        .filter(|n| n.get() <= MAX_PBKDF2_ITERATIONS)
        .ok_or_else(|| KeyError::IterationCount {
            found: params.iteration_count.to_string(),
            max: MAX_PBKDF2_ITERATIONS,
        })?;
    if params
        .key_length
        .is_some_and(|len| usize::from(len) != AES_256_KEY_LEN)
    {
        return Err(malformed(
            WHAT,
            "the PBKDF2 keyLength does not match AES-256 (32 bytes)",
        ));
    }
    match params.prf {
        Pbkdf2Prf::HmacWithSha256 => {}
        // RFC 8018 makes SHA-1 the default, so a key that names no function
        // lands here too.
        Pbkdf2Prf::HmacWithSha1 => {
            return Err(unsupported(
                "PBKDF2 pseudo-random function",
                format!(
                    "{} (named, or the default when none is)",
                    oid::name(&Pbkdf2Prf::HmacWithSha1.oid())
                ),
            ));
        }
        other => {
            return Err(unsupported(
                "PBKDF2 pseudo-random function",
                oid::name(&other.oid()),
            ));
        }
    }
    let iv = match scheme.encryption {
        pbes2::EncryptionScheme::Aes256Cbc { iv } => *iv,
        other => return Err(unsupported("private key cipher", oid::name(&other.oid()))),
    };
    let ciphertext = info.encrypted_data;
    if ciphertext.is_empty() || ciphertext.len() % AES_BLOCK_LEN != 0 {
        return Err(malformed(
            WHAT,
            format!(
                "the ciphertext is {} bytes, expected a non-zero multiple of the AES block size (16)",
                ciphertext.len()
            ),
        ));
    }
    Ok(Pbes2Key {
        salt: params.salt,
        iterations,
        iv,
        ciphertext,
    })
}

/// The scheme of an `EncryptedPrivateKeyInfo`, whatever its parameters.
fn outer_scheme(der: &[u8]) -> Option<ObjectIdentifier> {
    AnyRef::from_der(der)
        .and_then(|info| {
            info.sequence(|reader| {
                let scheme = AlgorithmIdentifierRef::decode(reader)?;
                OctetStringRef::decode(reader)?;
                Ok(scheme.oid)
            })
        })
        .ok()
}

/// An algorithm identifier `pkcs5` does not know is named; anything else is
/// a broken structure.
fn decode_error(e: der::Error) -> KeyError {
    match e.kind() {
        der::ErrorKind::OidUnknown { oid } => KeyError::Unsupported {
            what: "private key encryption",
            found: oid::name(&oid),
            supported: SUPPORTED_ENCRYPTION,
        },
        _ => malformed(WHAT, e.to_string()),
    }
}

/// Checks the decrypted `PrivateKeyInfo` names an ECDSA P-256 key. A
/// structure that does not parse means the passphrase was wrong (the padding
/// happened to check out) or the file was corrupted.
fn check_private_key_info(der: &[u8]) -> Result<()> {
    let info = PrivateKeyInfo::from_der(der).map_err(|_| KeyError::WrongPassphrase)?;
    if info.algorithm.oid != oid::EC_PUBLIC_KEY {
        return Err(KeyError::Unsupported {
            what: "private key algorithm",
            found: oid::name(&info.algorithm.oid),
            supported: "ECDSA P-256 keys",
        });
    }
    // Parameters that are not a named curve are left to aws-lc-rs, which
    // refuses them when it loads the key.
    if let Ok(curve) = info.algorithm.parameters_oid()
        && curve != oid::P256
    {
        return Err(KeyError::Unsupported {
            what: "private key curve",
            found: oid::name(&curve),
            supported: "ECDSA P-256 keys",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
    use std::sync::OnceLock;

    const PASS: &str = "correct horse battery staple";

    fn pkcs8() -> &'static [u8] {
        static KEY: OnceLock<Vec<u8>> = OnceLock::new();
        KEY.get_or_init(|| {
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
                .unwrap()
                .as_ref()
                .to_vec()
        })
    }

    /// A key at the minimum count: as cheap as a loadable key gets.
    fn encrypted() -> &'static [u8] {
        static DER: OnceLock<Vec<u8>> = OnceLock::new();
        DER.get_or_init(|| encrypt(pkcs8(), PASS, MIN_PBKDF2_ITERATIONS).unwrap())
    }

    /// A SEQUENCE of the given DER elements.
    fn seq(parts: &[&[u8]]) -> Vec<u8> {
        parts
            .iter()
            .map(|part| AnyRef::from_der(part).unwrap())
            .collect::<Vec<_>>()
            .to_der()
            .unwrap()
    }

    fn alg(oid: ObjectIdentifier, params: Option<&[u8]>) -> Vec<u8> {
        AlgorithmIdentifierRef {
            oid,
            parameters: params.map(|p| AnyRef::from_der(p).unwrap()),
        }
        .to_der()
        .unwrap()
    }

    fn octets(bytes: &[u8]) -> Vec<u8> {
        OctetStringRef::new(bytes).unwrap().to_der().unwrap()
    }

    /// An `EncryptedPrivateKeyInfo` around the ciphertext of [`encrypted`],
    /// with the given KDF and cipher algorithm identifiers.
    fn build(kdf: &[u8], cipher: &[u8]) -> Vec<u8> {
        let key = parse(encrypted()).unwrap();
        let scheme = alg(pbes2::PBES2_OID, Some(&seq(&[kdf, cipher])));
        seq(&[&scheme, &octets(key.ciphertext)])
    }

    fn aes256(iv: &[u8]) -> Vec<u8> {
        alg(pbes2::AES_256_CBC_OID, Some(&octets(iv)))
    }

    /// [`encrypted`] with the PBKDF2 count given as raw DER.
    fn with_raw_count(count_der: &[u8]) -> Vec<u8> {
        let key = parse(encrypted()).unwrap();
        let prf = alg(pbes2::HMAC_WITH_SHA256_OID, Some(&[0x05, 0x00]));
        let kdf_params = seq(&[&octets(key.salt), count_der, &prf]);
        build(&alg(pbes2::PBKDF2_OID, Some(&kdf_params)), &aes256(&key.iv))
    }

    fn with_count(count: u32) -> Vec<u8> {
        with_raw_count(&count.to_der().unwrap())
    }

    /// `der` with the first occurrence of `from` replaced by `to` (same
    /// length, so every enclosing length stays right).
    fn replaced(der: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
        let pos = der.windows(from.len()).position(|w| w == from).unwrap();
        let mut out = der.to_vec();
        out[pos..pos + from.len()].copy_from_slice(to);
        out
    }

    fn oid_der(oid: &ObjectIdentifier) -> Vec<u8> {
        oid.to_der().unwrap()
    }

    #[test]
    fn round_trip_and_structure() {
        let der = encrypted();
        let key = parse(der).unwrap();
        assert_eq!(key.iterations.get(), MIN_PBKDF2_ITERATIONS);
        assert_eq!(key.salt.len(), SALT_LEN);
        assert_eq!(
            encode(key.salt, MIN_PBKDF2_ITERATIONS, &key.iv, key.ciphertext).unwrap(),
            der
        );
        // The same bytes as an independent encoding of the layout.
        assert_eq!(with_count(MIN_PBKDF2_ITERATIONS), der);
        assert_eq!(&decrypt(der, PASS).unwrap()[..], pkcs8());
        // Two encryptions use different salts and IVs.
        let again = encrypt(pkcs8(), PASS, MIN_PBKDF2_ITERATIONS).unwrap();
        let other = parse(&again).unwrap();
        assert_ne!(other.salt, key.salt);
        assert_ne!(other.iv, key.iv);
    }

    #[test]
    fn keys_written_before_are_read_and_rewritten_byte_for_byte() {
        // Written by `squizzle keygen` before this file used the RustCrypto
        // encoding crates (passphrase `golden passphrase`).
        let (_, golden) = pem_rfc7468::decode_vec(include_bytes!("golden/squizzle.key")).unwrap();
        let key = parse(&golden).unwrap();
        assert_eq!(key.iterations.get(), DEFAULT_PBKDF2_ITERATIONS);
        let again = encode(key.salt, key.iterations.get(), &key.iv, key.ciphertext).unwrap();
        assert_eq!(again, golden);
        decrypt(&golden, "golden passphrase").unwrap();
    }

    #[test]
    fn default_iterations_are_strong() {
        const { assert!(DEFAULT_PBKDF2_ITERATIONS >= 600_000) };
        const { assert!(MIN_PBKDF2_ITERATIONS >= 100_000) };
    }

    #[test]
    fn weak_keys_refused_at_and_below_the_boundary() {
        // What `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes without -iter.
        let weak = encrypt(pkcs8(), PASS, 2_048).unwrap();
        let e = decrypt(&weak, PASS).unwrap_err();
        assert!(
            matches!(
                e,
                KeyError::TooFewIterations {
                    found: 2_048,
                    min: MIN_PBKDF2_ITERATIONS
                }
            ),
            "{e:?}"
        );
        let msg = e.to_string();
        for needle in ["2048", "100000", "squizzle keygen", "-iter 600000"] {
            assert!(msg.contains(needle), "{needle}: {msg}");
        }
        // The passphrase does not matter: the key is refused either way.
        let e = decrypt(&weak, "not the passphrase").unwrap_err();
        assert!(matches!(e, KeyError::TooFewIterations { .. }), "{e:?}");
        // One below the minimum is refused, the minimum loads.
        let below = encrypt(pkcs8(), PASS, MIN_PBKDF2_ITERATIONS - 1).unwrap();
        let e = decrypt(&below, PASS).unwrap_err();
        assert!(
            matches!(e, KeyError::TooFewIterations { found, .. } if found == MIN_PBKDF2_ITERATIONS - 1),
            "{e:?}"
        );
        decrypt(encrypted(), PASS).unwrap();
    }

    #[test]
    fn absurd_iteration_counts_refused_before_deriving() {
        let start = std::time::Instant::now();
        for count in [u32::MAX, MAX_PBKDF2_ITERATIONS + 1, 0] {
            let e = decrypt(&with_count(count), PASS).unwrap_err();
            assert!(
                matches!(e, KeyError::IterationCount { .. }),
                "{count}: {e:?}"
            );
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        // An INTEGER wider than the 32 bits of a count, and a negative one.
        for raw in [
            &[
                0x02, 0x0c, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f,
            ][..],
            &[0x02, 0x01, 0xff],
        ] {
            let e = decrypt(&with_raw_count(raw), PASS).unwrap_err();
            assert!(matches!(e, KeyError::Malformed { .. }), "{e:?}");
        }
    }

    #[test]
    fn wrong_passphrase_and_corruption() {
        let e = decrypt(encrypted(), "not the passphrase").unwrap_err();
        assert!(matches!(e, KeyError::WrongPassphrase), "{e:?}");
        let mut der = encrypted().to_vec();
        let n = der.len();
        der[n - 20] ^= 0x55; // inside the last-but-one block: garbles the plaintext
        der[n - 1] ^= 0x01;
        let e = decrypt(&der, PASS).unwrap_err();
        assert!(matches!(e, KeyError::WrongPassphrase), "{e:?}");
    }

    #[test]
    fn truncated_and_trailing_der() {
        let der = encrypted();
        for cut in [1, 10, der.len() / 2, der.len() - 1] {
            let e = decrypt(&der[..cut], PASS).unwrap_err();
            assert!(matches!(e, KeyError::Malformed { .. }), "cut {cut}: {e:?}");
        }
        let mut trailing = der.to_vec();
        trailing.push(0);
        let e = decrypt(&trailing, PASS).unwrap_err();
        assert!(matches!(e, KeyError::Malformed { .. }), "{e:?}");
        assert!(e.to_string().contains("trailing"), "{e}");
        // Bad lengths inside: an IV of 15 bytes, no ciphertext.
        let key = parse(der).unwrap();
        let prf = alg(pbes2::HMAC_WITH_SHA256_OID, Some(&[0x05, 0x00]));
        let count = MIN_PBKDF2_ITERATIONS.to_der().unwrap();
        let kdf = alg(
            pbes2::PBKDF2_OID,
            Some(&seq(&[&octets(key.salt), &count, &prf])),
        );
        let short_iv = build(&kdf, &aes256(&key.iv[..15]));
        let e = decrypt(&short_iv, PASS).unwrap_err();
        assert!(matches!(e, KeyError::Malformed { .. }), "{e:?}");
        // A salt of 4 bytes.
        let short_salt = build(
            &alg(
                pbes2::PBKDF2_OID,
                Some(&seq(&[&octets(&[1; 4]), &count, &prf])),
            ),
            &aes256(&key.iv),
        );
        let e = decrypt(&short_salt, PASS).unwrap_err();
        assert!(e.to_string().contains("salt"), "{e}");
        // No PRF named: the default, hmacWithSHA1.
        let default_prf = build(
            &alg(pbes2::PBKDF2_OID, Some(&seq(&[&octets(key.salt), &count]))),
            &aes256(&key.iv),
        );
        let e = decrypt(&default_prf, PASS).unwrap_err();
        assert!(e.to_string().contains("hmacWithSHA1"), "{e}");
        let e = decrypt(
            &encode(key.salt, MIN_PBKDF2_ITERATIONS, &key.iv, &[]).unwrap(),
            PASS,
        )
        .unwrap_err();
        assert!(matches!(e, KeyError::Malformed { .. }), "{e:?}");
    }

    #[test]
    fn unencrypted_pkcs8_refused() {
        let e = decrypt(pkcs8(), PASS).unwrap_err();
        assert!(matches!(e, KeyError::UnencryptedPrivateKey { .. }), "{e:?}");
    }

    #[test]
    fn unsupported_algorithms_named() {
        let der = encrypted();
        let cases: [(ObjectIdentifier, ObjectIdentifier, &str); 4] = [
            (pbes2::AES_256_CBC_OID, pbes2::AES_128_CBC_OID, "aes128-CBC"),
            (
                pbes2::HMAC_WITH_SHA256_OID,
                pbes2::HMAC_WITH_SHA1_OID,
                "hmacWithSHA1",
            ),
            (
                pbes2::PBES2_OID,
                pkcs5::pbes1::PBE_WITH_MD5_AND_DES_CBC_OID,
                "pbeWithMD5AndDES-CBC",
            ),
            // An identifier nobody knows.
            (
                pbes2::AES_256_CBC_OID,
                ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.99"),
                "OID 2.16.840.1.101.3.4.1.99",
            ),
        ];
        for (from, to, name) in cases {
            let changed = replaced(der, &oid_der(&from), &oid_der(&to));
            let e = decrypt(&changed, PASS).unwrap_err();
            assert!(matches!(e, KeyError::Unsupported { .. }), "{name}: {e:?}");
            assert!(e.to_string().contains(name), "{e}");
        }
        // scrypt as the KDF.
        let key = parse(der).unwrap();
        let scrypt_params = seq(&[
            &octets(key.salt),
            &16_384u32.to_der().unwrap(),
            &8u16.to_der().unwrap(),
            &1u16.to_der().unwrap(),
        ]);
        let scrypt = build(
            &alg(pbes2::SCRYPT_OID, Some(&scrypt_params)),
            &aes256(&key.iv),
        );
        let e = decrypt(&scrypt, PASS).unwrap_err();
        assert!(matches!(e, KeyError::Unsupported { .. }), "{e:?}");
        assert!(e.to_string().contains("scrypt"), "{e}");
        // Not a KDF at all where the KDF belongs.
        let e = decrypt(
            &replaced(
                der,
                &oid_der(&pbes2::PBKDF2_OID),
                &oid_der(&pbes2::PBES2_OID),
            ),
            PASS,
        )
        .unwrap_err();
        assert!(matches!(e, KeyError::Unsupported { .. }), "{e:?}");
    }

    #[test]
    fn other_key_types_refused_after_decrypting() {
        // An Ed25519 PKCS#8 (RFC 8410) encrypted the squizzle way.
        let mut ed = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        ed.extend_from_slice(&[7u8; 32]);
        let der = encrypt(&ed, PASS, MIN_PBKDF2_ITERATIONS).unwrap();
        let e = decrypt(&der, PASS).unwrap_err();
        assert!(matches!(e, KeyError::Unsupported { .. }), "{e:?}");
        assert!(e.to_string().contains("Ed25519"), "{e}");
        // Also when it is weakly encrypted: its kind is the first reason.
        let weak = encrypt(&ed, PASS, 1_000).unwrap();
        let e = decrypt(&weak, PASS).unwrap_err();
        assert!(e.to_string().contains("Ed25519"), "{e}");
    }
}
