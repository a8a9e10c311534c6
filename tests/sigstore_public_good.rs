//! Real public-good bundles (fixtures/sigstore-public-good, from the
//! sigstore-verify crate's test data) through squizzle's own verification
//! path, offline, with the trusted root embedded in squizzle: the shape and
//! binding checks, sigstore-verify's cryptography (certificate chain, SCT,
//! Rekor inclusion proof and checkpoint, SET) and squizzle's signer rules.

use std::path::PathBuf;

use squizzle::config::Signer;
use squizzle::core::digest::Digest;
use squizzle::core::policy::SignerRule;
use squizzle::signing::statement::SIGNATURE_PREDICATE;
use squizzle::signing::trust;
use squizzle::signing::verify::{Policy, Rejection, verify_bundle};

const CONDA_WORKFLOW: &str =
    "https://github.com/prefix-dev/sigstore-example/.github/workflows/action.yaml@refs/heads/main";
const CONDA_PREDICATE: &str = "https://schemas.conda.org/attestations-publish-1.schema.json";
const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// A change made to a bundle's JSON.
type Mutation = Box<dyn Fn(&mut serde_json::Value)>;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/sigstore-public-good")
            .join(name),
    )
    .unwrap()
}

fn subject_digest(bundle: &[u8]) -> Digest {
    use base64::Engine as _;
    let b: serde_json::Value = serde_json::from_slice(bundle).unwrap();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(b["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    let st: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    Digest::from_hex(st["subject"][0]["digest"]["sha256"].as_str().unwrap()).unwrap()
}

fn rule(identity: Option<&str>, identity_regexp: Option<&str>, issuer: &str) -> SignerRule {
    SignerRule::from_spec(&Signer {
        identity: identity.map(str::to_owned),
        identity_regexp: identity_regexp.map(str::to_owned),
        issuer: Some(issuer.to_owned()),
        issuer_regexp: None,
    })
    .unwrap()
}

#[test]
fn a_public_good_dsse_attestation_verifies_offline_with_the_embedded_root() {
    let t = trust::embedded().unwrap();
    let verifier = sigstore_verify::Verifier::new(&t.root).unwrap();
    let bundle = fixture("conda-attestation.sigstore.json");
    let digest = subject_digest(&bundle);
    let rules = [rule(Some(CONDA_WORKFLOW), None, GITHUB_ISSUER)];
    let policy = Policy {
        rules: &rules,
        keys: &[],
        verifier: Some(&verifier),
        trust_source: &t.source,
    };
    let v = verify_bundle(&bundle, &digest, CONDA_PREDICATE, &policy).expect("verifies");
    assert_eq!(v.identity, CONDA_WORKFLOW);
    assert_eq!(v.issuer, GITHUB_ISSUER);
    assert_eq!(v.log_index, Some(456119071));
    assert!(v.transparency_log);
    assert_eq!(v.signed_at.as_deref(), Some("2025-09-01T12:13:59Z"));

    // The same bundle against squizzle's expectations: another kind of
    // statement, another artifact, another signer, a prefix-only pattern.
    let why = verify_bundle(&bundle, &digest, SIGNATURE_PREDICATE, &policy)
        .unwrap_err()
        .to_string();
    assert!(why.contains("statement"), "{why}");
    let other = Digest::of(b"another artifact");
    let why = verify_bundle(&bundle, &other, CONDA_PREDICATE, &policy)
        .unwrap_err()
        .to_string();
    assert!(why.contains("another artifact"), "{why}");
    for bad in [
        rule(
            Some(
                "https://github.com/prefix-dev/sigstore-example/.github/workflows/other.yaml@refs/heads/main",
            ),
            None,
            GITHUB_ISSUER,
        ),
        rule(Some(CONDA_WORKFLOW), None, "https://accounts.google.com"),
        rule(
            None,
            Some(r"https://github\.com/prefix-dev/"),
            GITHUB_ISSUER,
        ),
    ] {
        let rules = [bad];
        let p = Policy {
            rules: &rules,
            ..policy
        };
        let why = verify_bundle(&bundle, &digest, CONDA_PREDICATE, &p)
            .unwrap_err()
            .to_string();
        assert!(why.contains("not an accepted signer"), "{why}");
    }
    let rules = [rule(
        None,
        Some(
            r"https://github\.com/prefix-dev/sigstore-example/\.github/workflows/action\.yaml@refs/heads/.*",
        ),
        GITHUB_ISSUER,
    )];
    verify_bundle(
        &bundle,
        &digest,
        CONDA_PREDICATE,
        &Policy {
            rules: &rules,
            ..policy
        },
    )
    .expect("pattern over the whole value");
}

#[test]
fn a_public_good_bundle_with_any_changed_byte_of_its_log_proof_is_refused() {
    let t = trust::embedded().unwrap();
    let verifier = sigstore_verify::Verifier::new(&t.root).unwrap();
    let policy = Policy {
        rules: &[],
        keys: &[],
        verifier: Some(&verifier),
        trust_source: &t.source,
    };
    let bundle = fixture("conda-attestation.sigstore.json");
    let digest = subject_digest(&bundle);
    let original: serde_json::Value = serde_json::from_slice(&bundle).unwrap();
    let mutations: Vec<(&str, Mutation)> = vec![
        (
            "a proof hash changed",
            Box::new(|b| {
                let h =
                    &mut b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"][0];
                let mut s = h.as_str().unwrap().to_owned();
                s.replace_range(
                    0..4,
                    if s.starts_with("AAAA") {
                        "BBBB"
                    } else {
                        "AAAA"
                    },
                );
                *h = serde_json::Value::String(s);
            }),
        ),
        (
            "the proof truncated",
            Box::new(|b| {
                b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"]
                    .as_array_mut()
                    .unwrap()
                    .pop();
            }),
        ),
        (
            "the log index moved",
            Box::new(|b| {
                b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["logIndex"] =
                    serde_json::Value::String("1".into());
            }),
        ),
        (
            "the checkpoint's root swapped",
            Box::new(|b| {
                b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["rootHash"] =
                    serde_json::Value::String(
                        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into(),
                    );
            }),
        ),
        (
            "the integrated time changed",
            Box::new(|b| {
                b["verificationMaterial"]["tlogEntries"][0]["integratedTime"] =
                    serde_json::Value::String("1756728840".into());
            }),
        ),
    ];
    for (what, mutate) in mutations {
        let mut b = original.clone();
        mutate(&mut b);
        let bytes = serde_json::to_vec(&b).unwrap();
        let why = verify_bundle(&bytes, &digest, CONDA_PREDICATE, &policy)
            .expect_err(&format!("{what}: must be refused"))
            .to_string();
        assert!(!why.is_empty(), "{what}");
    }
}

#[test]
fn a_public_good_message_signature_over_the_artifact_counts_as_a_signature() {
    let t = trust::embedded().unwrap();
    let verifier = sigstore_verify::Verifier::new(&t.root).unwrap();
    let bundle = fixture("cosign-v3-blob.sigstore.json");
    let digest = Digest::of(&fixture("cosign-v3-blob.txt"));
    // Nobody trusted for keyless signatures: refused, whoever signed.
    let nobody = Policy {
        rules: &[],
        keys: &[],
        verifier: Some(&verifier),
        trust_source: &t.source,
    };
    let refused = verify_bundle(&bundle, &digest, SIGNATURE_PREDICATE, &nobody).unwrap_err();
    assert_eq!(refused.kind, Rejection::NotAccepted, "{refused}");
    assert!(
        refused
            .to_string()
            .contains("signed keylessly by w.vollprecht@gmail.com"),
        "{refused}"
    );
    let signer = [SignerRule::from_spec(&Signer {
        identity: Some("w.vollprecht@gmail.com".into()),
        issuer_regexp: Some("https://.*".into()),
        ..Default::default()
    })
    .unwrap()];
    let policy = Policy {
        rules: &signer,
        keys: &[],
        verifier: Some(&verifier),
        trust_source: &t.source,
    };
    let v = verify_bundle(&bundle, &digest, SIGNATURE_PREDICATE, &policy).expect("verifies");
    assert_eq!(v.identity, "w.vollprecht@gmail.com");
    assert_eq!(v.log_index, Some(738312748));
    // Not for another artifact, and never as another kind of statement.
    assert!(verify_bundle(&bundle, &Digest::of(b"x"), SIGNATURE_PREDICATE, &policy).is_err());
    assert!(verify_bundle(&bundle, &digest, "https://slsa.dev/provenance/v1", &policy).is_err());
}
