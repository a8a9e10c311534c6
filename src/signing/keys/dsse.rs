//! Key-pair signatures: an in-toto statement in a DSSE envelope inside a
//! Sigstore bundle v0.3 whose verification material is a public-key hint
//! (the key's [`PublicKey::fingerprint`]) and which has no transparency-log
//! entries. Statements are read by `signing::statement`, the one parser of
//! them; keys come from `model`.

use sigstore_verify::bundle::{BundleV03, VerificationMaterialV03};
use sigstore_verify::types::{
    Bundle, DsseEnvelope, DsseSignature, KeyId, PayloadBytes, SignatureBytes, SignatureContent,
    VerificationMaterialContent,
};

use super::error::{KeyError, Result};
use super::model::{PrivateKey, PublicKey};
use crate::core::Digest;
use crate::signing::statement::{PAYLOAD_TYPE, ParsedStatement};

/// Signs an in-toto Statement v1 (`statement_json`, signed byte for byte) as a
/// DSSE envelope in a Sigstore bundle v0.3 with a public-key hint and no
/// transparency-log entries. Serialize it with [`Bundle::to_json`].
///
/// # Errors
/// [`KeyError::StatementToSign`] if the bytes are not an in-toto Statement v1
/// that [`verify_statement`] would accept; [`KeyError::Crypto`] if signing
/// fails.
pub fn sign_statement(key: &PrivateKey, statement_json: &[u8]) -> Result<Bundle> {
    ParsedStatement::parse(statement_json)
        .and_then(|statement| statement.sha256_subjects())
        .map_err(|detail| KeyError::StatementToSign { detail })?;
    let pae = sigstore_verify::types::pae(PAYLOAD_TYPE, statement_json);
    let signature = key.sign(&pae)?;
    let envelope = DsseEnvelope::new(
        PAYLOAD_TYPE,
        PayloadBytes::from_bytes(statement_json),
        DsseSignature::new(SignatureBytes::new(signature), KeyId::default()),
    );
    Ok(BundleV03::new(
        VerificationMaterialV03::PublicKey {
            hint: key.public_key().fingerprint().to_owned(),
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
/// subject's digest is the artifact it is verifying (`signing::verify` does,
/// with [`ParsedStatement::check`], before any cryptography).
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
            if !id.hint.is_empty() && id.hint != public_key.fingerprint() {
                return Err(KeyError::HintMismatch {
                    bundle_hint: id.hint.clone(),
                    key_fingerprint: public_key.fingerprint().to_owned(),
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
    if envelope.payload_type != PAYLOAD_TYPE {
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
            fingerprint: public_key.fingerprint().to_owned(),
        });
    }
    let statement = ParsedStatement::parse(envelope.payload.as_bytes())
        .map_err(|detail| KeyError::BadStatement { detail })?;
    let subjects = statement
        .sha256_subjects()
        .map_err(|detail| KeyError::BadStatement { detail })?
        .into_iter()
        .map(|(name, sha256)| VerifiedSubject { name, sha256 })
        .collect();
    Ok(VerifiedStatement {
        subjects,
        predicate_type: statement.predicate_type,
        predicate: statement.predicate,
        key_fingerprint: public_key.fingerprint().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::encrypted::MIN_PBKDF2_ITERATIONS;
    use super::super::model::{
        GeneratedKeys, generate_with_iterations, load_private_key, load_public_key,
    };
    use super::*;
    use crate::signing::statement::STATEMENT_TYPE;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use std::sync::OnceLock;

    const PASS: &str = "correct horse battery staple";
    const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn keys() -> &'static GeneratedKeys {
        static KEYS: OnceLock<GeneratedKeys> = OnceLock::new();
        KEYS.get_or_init(|| generate_with_iterations(PASS, MIN_PBKDF2_ITERATIONS).unwrap())
    }

    fn private() -> &'static PrivateKey {
        static KEY: OnceLock<PrivateKey> = OnceLock::new();
        KEY.get_or_init(|| load_private_key(&keys().private_key_pem, PASS).unwrap())
    }

    fn statement(digest_hex: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "_type": STATEMENT_TYPE,
            "subject": [{"name": "app-migrations", "digest": {"sha256": digest_hex}}],
            "predicateType": "https://squizzle.dev/release/v1",
            "predicate": {"version": "1.2.3"},
        }))
        .unwrap()
    }

    fn signed() -> Bundle {
        sign_statement(private(), &statement(DIGEST)).unwrap()
    }

    fn envelope_mut(bundle: &mut Bundle) -> &mut DsseEnvelope {
        match &mut bundle.content {
            SignatureContent::DsseEnvelope(e) => e,
            _ => panic!("not DSSE"),
        }
    }

    /// `payload` signed by [`private`] into [`signed`]'s envelope.
    fn resigned(payload: &[u8]) -> Bundle {
        let pae = sigstore_verify::types::pae(PAYLOAD_TYPE, payload);
        let mut bundle = signed();
        envelope_mut(&mut bundle).payload = PayloadBytes::from_bytes(payload);
        envelope_mut(&mut bundle).signature.sig =
            SignatureBytes::new(private().sign(&pae).unwrap());
        bundle
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
        assert_eq!(value["dsseEnvelope"]["payloadType"], PAYLOAD_TYPE);
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

        // Verified with a key that was loaded from its file.
        let public = load_public_key(&keys().public_key_pem).unwrap();
        verify_statement(&parsed, &public).unwrap();
    }

    #[test]
    fn refuses_to_sign_non_statements() {
        let key = private();
        let e = sign_statement(key, b"not json").unwrap_err();
        assert!(matches!(e, KeyError::StatementToSign { .. }), "{e:?}");
        for statement in [
            serde_json::json!({
                "_type": "https://in-toto.io/Statement/v0.1",
                "subject": [{"name": "x", "digest": {"sha256": DIGEST}}],
                "predicateType": "p",
            }),
            serde_json::json!({"_type": STATEMENT_TYPE, "subject": [], "predicateType": "p"}),
            serde_json::json!({
                "_type": STATEMENT_TYPE,
                "subject": [{"name": "x", "digest": {"sha512": DIGEST}}],
                "predicateType": "p",
            }),
        ] {
            let e = sign_statement(key, &serde_json::to_vec(&statement).unwrap()).unwrap_err();
            assert!(matches!(e, KeyError::StatementToSign { .. }), "{e:?}");
        }
    }

    #[test]
    fn wrong_key() {
        let bundle = signed();
        let other = generate_with_iterations(PASS, MIN_PBKDF2_ITERATIONS).unwrap();
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
    }

    #[test]
    fn signed_payloads_that_are_not_statements_we_take() {
        for payload in [
            // Another statement version.
            &br#"{"_type":"https://in-toto.io/Statement/v0.1","subject":[{"name":"x","digest":{"sha256":"00"}}],"predicateType":"p"}"#[..],
            // No subject.
            br#"{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"p"}"#,
            // A subject without a usable sha256.
            br#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x","digest":{"sha256":"00"}}],"predicateType":"p"}"#,
            br#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x","digest":{"sha1":"00"}}],"predicateType":"p"}"#,
        ] {
            let e = verify_statement(&resigned(payload), &keys().public_key).unwrap_err();
            assert!(matches!(e, KeyError::BadStatement { .. }), "{e:?}");
        }
    }
}
