//! ECDSA P-256 keys (aws-lc-rs) and the small key encodings the services use.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, UnparsedPublicKey,
};
use sha2::{Digest as _, Sha256};

use super::der;

pub const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
pub const OID_P256: &str = "1.2.840.10045.3.1.7";
pub const OID_ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";

/// A P-256 key pair that signs either DER (X.509, SCT, SET, notes) or
/// fixed-width r‖s (JWS ES256) signatures.
pub struct EcKey {
    asn1: EcdsaKeyPair,
    fixed: EcdsaKeyPair,
    point: Vec<u8>,
}

impl EcKey {
    pub fn generate() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .expect("generate P-256 key");
        let asn1 = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
            .expect("load P-256 key");
        let fixed = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .expect("load P-256 key");
        let point = asn1.public_key().as_ref().to_vec();
        Self { asn1, fixed, point }
    }

    /// ECDSA-SHA256 signature, ASN.1 DER encoded.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.asn1
            .sign(&SystemRandom::new(), msg)
            .expect("sign")
            .as_ref()
            .to_vec()
    }

    /// ECDSA-SHA256 signature as 64 bytes r‖s (JWS ES256).
    pub fn sign_fixed(&self, msg: &[u8]) -> Vec<u8> {
        self.fixed
            .sign(&SystemRandom::new(), msg)
            .expect("sign")
            .as_ref()
            .to_vec()
    }

    /// The uncompressed public point (65 bytes).
    pub fn point(&self) -> &[u8] {
        &self.point
    }

    /// DER SubjectPublicKeyInfo.
    pub fn spki(&self) -> Vec<u8> {
        spki_for_point(&self.point)
    }

    /// SHA-256 of the DER SubjectPublicKeyInfo: a log ID / key ID.
    pub fn key_id(&self) -> [u8; 32] {
        Sha256::digest(self.spki()).into()
    }

    pub fn public_pem(&self) -> String {
        der::pem("PUBLIC KEY", &self.spki())
    }
}

pub fn spki_for_point(point: &[u8]) -> Vec<u8> {
    der::seq(&[
        der::seq(&[der::oid(OID_EC_PUBLIC_KEY), der::oid(OID_P256)]),
        der::bits(point),
    ])
}

/// The P-256 point of a DER SubjectPublicKeyInfo; anything else is an error.
pub fn point_from_spki(spki: &[u8]) -> Result<Vec<u8>, String> {
    let top = der::parse_one(spki)?;
    let parts = der::children(top.content)?;
    let [alg, key] = parts.as_slice() else {
        return Err("SPKI: expected algorithm and key".into());
    };
    let alg_parts = der::children(alg.content)?;
    if alg_parts.len() != 2
        || alg_parts[0].raw != der::oid(OID_EC_PUBLIC_KEY).as_slice()
        || alg_parts[1].raw != der::oid(OID_P256).as_slice()
    {
        return Err("SPKI: not an ECDSA P-256 key".into());
    }
    if key.tag != 0x03 || key.content.len() != 66 || key.content[0] != 0 || key.content[1] != 4 {
        return Err("SPKI: malformed P-256 point".into());
    }
    Ok(key.content[1..].to_vec())
}

pub fn verify_asn1(point: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
        .verify(msg, sig)
        .is_ok()
}

pub fn verify_fixed(point: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
        .verify(msg, sig)
        .is_ok()
}

/// Verify a DER ECDSA signature over an already computed SHA-256 digest.
pub fn verify_digest_asn1(point: &[u8], digest: &[u8], sig: &[u8]) -> bool {
    let Ok(d) = aws_lc_rs::digest::Digest::import_less_safe(digest, &aws_lc_rs::digest::SHA256)
    else {
        return false;
    };
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
        .verify_digest(&d, sig)
        .is_ok()
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Random bytes from the system generator.
pub fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    aws_lc_rs::rand::fill(&mut b).expect("random");
    b
}
