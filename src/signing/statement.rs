//! The in-toto statements squizzle signs.
//!
//! Every statement names exactly one subject: the OCI manifest digest of the
//! release. That digest covers the config blob (the squizzle manifest, with
//! the version and every file hash) and the layer, so signing it signs all
//! of them, and a statement can never be moved to another release. The
//! predicate type says what the statement is for; a verifier that wants a
//! signature must refuse a provenance or revocation statement about the
//! same digest, which is why it is checked as strictly as the subject.

use serde::Deserialize;

use crate::core::digest::Digest;

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The predicate cosign v3 uses for container signatures, so stock verifiers
/// (cosign, sigstore-python) understand the bundle.
pub const SIGNATURE_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";
/// SLSA provenance v1.
pub const PROVENANCE_PREDICATE: &str = "https://slsa.dev/provenance/v1";
/// squizzle's own revocation statement (docs/revocation.md,
/// schemas/revocation.v1.schema.json). An identifier, not a fetched URL.
pub const REVOCATION_PREDICATE: &str = "https://squizzle.dev/revocation/v1";

/// A statement about `digest`, as compact JSON bytes.
pub fn statement(
    subject_name: &str,
    digest: &Digest,
    predicate_type: &str,
    predicate: serde_json::Value,
) -> Vec<u8> {
    let value = serde_json::json!({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject_name, "digest": {"sha256": digest.hex()}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    });
    serde_json::to_vec(&value).expect("a JSON value serializes")
}

/// The signature statement for a release.
pub fn signature_statement(subject_name: &str, digest: &Digest) -> Vec<u8> {
    statement(
        subject_name,
        digest,
        SIGNATURE_PREDICATE,
        serde_json::json!({}),
    )
}

/// A parsed statement, as much as squizzle needs of it.
#[derive(Debug, Clone, Deserialize)]
pub struct ParsedStatement {
    #[serde(rename = "_type")]
    pub type_: String,
    pub subject: Vec<ParsedSubject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    #[serde(default)]
    pub predicate: serde_json::Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ParsedSubject {
    #[serde(default)]
    pub name: String,
    pub digest: std::collections::BTreeMap<String, String>,
}

impl ParsedStatement {
    pub fn parse(payload: &[u8]) -> Result<Self, String> {
        let s: ParsedStatement = serde_json::from_slice(payload)
            .map_err(|e| format!("the signed payload is not an in-toto statement: {e}"))?;
        if s.type_ != STATEMENT_TYPE {
            return Err(format!(
                "the signed payload is a {:?} statement; expected {STATEMENT_TYPE}",
                s.type_
            ));
        }
        Ok(s)
    }

    /// Every subject with its SHA-256 digest, in order. Refuses a statement
    /// with no subject, or with a subject that has no well-formed `sha256`
    /// (64 lowercase hex digits): such a statement names nothing squizzle can
    /// compare with a release.
    pub fn sha256_subjects(&self) -> Result<Vec<(String, Digest)>, String> {
        if self.subject.is_empty() {
            return Err("the statement has no subject".into());
        }
        self.subject
            .iter()
            .map(|s| {
                let hex = s
                    .digest
                    .get("sha256")
                    .ok_or_else(|| format!("subject {:?} has no sha256 digest", s.name))?;
                let digest = Digest::from_hex(hex).map_err(|_| {
                    format!(
                        "subject {:?} has a malformed sha256 digest {hex:?} (expected 64 lowercase hex digits)",
                        s.name
                    )
                })?;
                Ok((s.name.clone(), digest))
            })
            .collect()
    }

    /// Checks that the statement is about `digest` and only about it, and that
    /// it is the kind of statement wanted.
    pub fn check(&self, digest: &Digest, predicate_type: &str) -> Result<(), String> {
        if self.predicate_type != predicate_type {
            return Err(format!(
                "the bundle signs a {:?} statement, not {predicate_type:?}",
                self.predicate_type
            ));
        }
        let subjects: Vec<String> = self
            .subject
            .iter()
            .map(|s| {
                s.digest
                    .get("sha256")
                    .map_or_else(|| "(no sha256)".to_owned(), |h| format!("sha256:{h}"))
            })
            .collect();
        let ours = digest.to_string();
        if subjects.len() != 1 || subjects[0] != ours {
            return Err(format!(
                "the bundle is for another artifact: it signs {}, but this release is {ours}",
                if subjects.is_empty() {
                    "no subject".to_owned()
                } else {
                    subjects.join(", ")
                }
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_round_trip_and_bind_digest_and_kind() {
        let d = Digest::of(b"manifest");
        let other = Digest::of(b"other");
        let s = ParsedStatement::parse(&signature_statement("acme/db", &d)).unwrap();
        s.check(&d, SIGNATURE_PREDICATE).unwrap();
        assert!(
            s.check(&other, SIGNATURE_PREDICATE)
                .unwrap_err()
                .contains("another artifact")
        );
        assert!(
            s.check(&d, "https://slsa.dev/provenance/v1")
                .unwrap_err()
                .contains("statement")
        );
        let two = serde_json::json!({"_type": STATEMENT_TYPE, "subject": [
            {"digest": {"sha256": d.hex()}}, {"digest": {"sha256": other.hex()}}],
            "predicateType": SIGNATURE_PREDICATE, "predicate": {}});
        let s2 = ParsedStatement::parse(&serde_json::to_vec(&two).unwrap()).unwrap();
        assert!(s2.check(&d, SIGNATURE_PREDICATE).is_err());
        assert!(
            ParsedStatement::parse(b"{\"_type\":\"x\",\"subject\":[],\"predicateType\":\"p\"}")
                .is_err()
        );
    }

    #[test]
    fn sha256_subjects_need_a_usable_digest() {
        let d = Digest::of(b"manifest");
        let s = ParsedStatement::parse(&signature_statement("acme/db", &d)).unwrap();
        assert_eq!(
            s.sha256_subjects().unwrap(),
            vec![("acme/db".to_owned(), d)]
        );
        for subject in [
            serde_json::json!([]),
            serde_json::json!([{"digest": {"sha512": d.hex()}}]),
            serde_json::json!([{"digest": {"sha256": "00"}}]),
            serde_json::json!([{"digest": {"sha256": d.hex().to_uppercase()}}]),
        ] {
            let json = serde_json::json!({"_type": STATEMENT_TYPE, "subject": subject,
                "predicateType": SIGNATURE_PREDICATE});
            let s = ParsedStatement::parse(&serde_json::to_vec(&json).unwrap()).unwrap();
            assert!(s.sha256_subjects().is_err(), "{json}");
        }
    }
}
