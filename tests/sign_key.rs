//! Key-pair signing end to end through the real binary: keygen, sign --key,
//! verify --key, and the hostile cases that need no signing services
//! (swapped bundles, tampered payloads, moved tags, wrong keys, unsigned
//! releases under a policy). Keyless signing is in tests/sign_keyless.rs.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;
use squizzle_test_support::World;

const PASS: &str = "correct horse battery staple";

fn signed_world() -> World {
    let mut w = World::plain();
    w.set_env("SQUIZZLE_KEY_PASSWORD", PASS);
    w.run(&["keygen"]).success();
    w.build_ok("1.0.0");
    w.run(&["sign", "1.0.0", "--key", "squizzle.key"]).success();
    w
}

fn bundle(w: &World, version: &str) -> Value {
    w.read_json(&format!("db/tarballs/squizzle-{version}.sigstore.json"))
}

/// Removes the release's signature referrers from the store, so only the
/// bundle file next to the tarball is evidence.
fn drop_referrers(w: &World) {
    let mut index = w.index();
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["artifactType"] != "application/vnd.dev.sigstore.bundle.v0.3+json");
    w.write_index(&index);
}

#[test]
fn key_pair_round_trip_records_signer_and_refuses_other_keys() {
    let w = signed_world();
    let report = w
        .run(&[
            "verify",
            "1.0.0",
            "--key",
            "squizzle.pub",
            "--output",
            "json",
        ])
        .success()
        .json();
    assert_eq!(report["signature"]["method"], "key");
    assert!(
        report["signature"]["identity"]
            .as_str()
            .unwrap()
            .starts_with("key ")
    );
    // The bundle is stored as a referrer of the release, cosign v3 style.
    let digest = w.tag_digest("1.0.0");
    let index = w.index();
    let refs: Vec<&Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["artifactType"] == "application/vnd.dev.sigstore.bundle.v0.3+json")
        .collect();
    assert_eq!(refs.len(), 1);
    let m = w.blob_json(refs[0]["digest"].as_str().unwrap());
    assert_eq!(m["subject"]["digest"], digest.as_str());
    assert_eq!(
        m["annotations"]["dev.sigstore.bundle.predicateType"],
        "https://sigstore.dev/cosign/sign/v1"
    );
    // The DSSE statement's only subject is the OCI manifest digest.
    let b = bundle(&w, "1.0.0");
    let payload = B64
        .decode(b["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    let st: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(st["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        format!(
            "sha256:{}",
            st["subject"][0]["digest"]["sha256"].as_str().unwrap()
        ),
        digest
    );

    // Another key pair's public key does not verify it.
    let mut other = World::new();
    other.set_env("SQUIZZLE_KEY_PASSWORD", "another passphrase");
    other.run(&["keygen"]).success();
    std::fs::copy(other.path("squizzle.pub"), w.path("other.pub")).unwrap();
    w.run(&["verify", "1.0.0", "--key", "other.pub"])
        .code(9)
        .says("fingerprint");
    // With no key to check against, a key-pair signature is not accepted.
    w.config("[project]\nmigrations = \"migrations\"\n[security]\nrequire_signature = true\npublic_keys = [\"squizzle.pub\"]\n");
    w.run(&["verify", "1.0.0"])
        .success()
        .says("Signature verified");
}

#[test]
fn unsigned_release_is_refused_when_the_policy_requires_a_signature() {
    let w = World::plain();
    w.build_ok("1.0.0");
    // Required, but nobody is trusted: a configuration error, not a pass.
    w.config("[project]\nmigrations = \"migrations\"\n[security]\nrequire_signature = true\n");
    w.run(&["verify", "1.0.0"])
        .code(2)
        .says("nobody is trusted to sign");
    w.config("[project]\nmigrations = \"migrations\"\n[security]\nrequire_signature = true\n[[security.signers]]\nidentity = \"ci@acme.example\"\nissuer = \"https://issuer.example\"\n");
    w.run(&["verify", "1.0.0"])
        .code(9)
        .says("No signature found");
    // Not required: reported as not signed, exit 0.
    w.config("[project]\nmigrations = \"migrations\"\n");
    w.run(&["verify", "1.0.0"]).success().says("Not signed");
}

#[test]
fn a_bundle_swapped_in_from_another_version_is_refused() {
    let w = signed_world();
    w.write("migrations/0004_more.sql", "CREATE TABLE more (id int);\n");
    w.build_ok("1.1.0");
    std::fs::copy(
        w.path("db/tarballs/squizzle-1.0.0.sigstore.json"),
        w.path("db/tarballs/squizzle-1.1.0.sigstore.json"),
    )
    .unwrap();
    w.run(&["verify", "1.1.0", "--key", "squizzle.pub"])
        .code(9)
        .says("the bundle is for another artifact");
    w.run_with_env(
        &["apply", "1.1.0", "--offline", "--key", "squizzle.pub"],
        &[("DATABASE_URL", "postgres://deploy@127.0.0.1:9/app")],
    )
    .code(9);
    // And a copy of 1.0.0's referrer manifest re-pointed at 1.1.0 is refused
    // the same way: the statement inside still names 1.0.0.
    w.run(&["verify", "1.0.0", "--key", "squizzle.pub"])
        .success();
}

#[test]
fn a_tampered_payload_or_signature_is_refused() {
    let w = signed_world();
    drop_referrers(&w);
    let original = bundle(&w, "1.0.0");
    // 1. The statement re-pointed at another digest (the attacker's release).
    let mut b = original.clone();
    let payload = B64
        .decode(b["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    let mut st: Value = serde_json::from_slice(&payload).unwrap();
    st["predicate"] = serde_json::json!({"note": "tampered"});
    b["dsseEnvelope"]["payload"] = Value::String(B64.encode(serde_json::to_vec(&st).unwrap()));
    w.write(
        "db/tarballs/squizzle-1.0.0.sigstore.json",
        serde_json::to_vec(&b).unwrap(),
    );
    w.run(&["verify", "1.0.0", "--key", "squizzle.pub"])
        .code(9)
        .says("signature");
    // 2. A flipped signature byte.
    let mut b = original.clone();
    let mut sig = B64
        .decode(b["dsseEnvelope"]["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    let n = sig.len();
    sig[n - 3] ^= 0x01;
    b["dsseEnvelope"]["signatures"][0]["sig"] = Value::String(B64.encode(sig));
    w.write(
        "db/tarballs/squizzle-1.0.0.sigstore.json",
        serde_json::to_vec(&b).unwrap(),
    );
    w.run(&["verify", "1.0.0", "--key", "squizzle.pub"]).code(9);
    // 3. Garbage, and an oversized file.
    w.write("db/tarballs/squizzle-1.0.0.sigstore.json", "{not json");
    w.run(&["verify", "1.0.0", "--key", "squizzle.pub"])
        .code(9)
        .says("not a Sigstore bundle");
    w.write(
        "db/tarballs/squizzle-1.0.0.sigstore.json",
        vec![b' '; 2 * 1024 * 1024],
    );
    w.run(&["verify", "1.0.0", "--key", "squizzle.pub"])
        .code(9)
        .says("larger than");
    // The original still verifies: the failures above were about the bytes.
    w.write(
        "db/tarballs/squizzle-1.0.0.sigstore.json",
        serde_json::to_vec(&original).unwrap(),
    );
    w.run(&["verify", "1.0.0", "--key", "squizzle.pub"])
        .success();
}

#[test]
fn a_signature_does_not_follow_a_moved_tag() {
    let w = signed_world();
    // An attacker builds a different "1.0.0" elsewhere and moves the tag to it.
    let evil = World::plain();
    evil.write("migrations/0009_evil.sql", "DROP TABLE users;\n");
    evil.build_ok("1.0.0");
    let evil_digest = evil.tag_digest("1.0.0");
    let evil_manifest = evil.oci_manifest("1.0.0");
    for d in std::iter::once(evil_digest.clone())
        .chain(std::iter::once(
            evil_manifest["config"]["digest"]
                .as_str()
                .unwrap()
                .to_owned(),
        ))
        .chain(std::iter::once(
            evil_manifest["layers"][0]["digest"]
                .as_str()
                .unwrap()
                .to_owned(),
        ))
    {
        std::fs::copy(evil.blob_path(&d), w.blob_path(&d)).unwrap();
    }
    let mut index = w.index();
    for m in index["manifests"].as_array_mut().unwrap() {
        if m["annotations"]["org.opencontainers.image.ref.name"] == "1.0.0" {
            m["digest"] = Value::String(evil_digest.clone());
            m["size"] = Value::from(evil.blob(&evil_digest).len());
        }
    }
    w.write_index(&index);
    // The old bundle (file next to the tarball) signs the old digest; the
    // referrer hangs off the old digest and is not found for the new one.
    w.run(&["verify", "1.0.0", "--key", "squizzle.pub"])
        .code(9)
        .says("the bundle is for another artifact");
    // apply refuses before it connects: nothing listens on that port, so
    // reaching the database would have been exit 3.
    w.run_with_env(
        &["apply", "1.0.0", "--offline", "--key", "squizzle.pub"],
        &[("DATABASE_URL", "postgres://deploy@127.0.0.1:9/app")],
    )
    .code(9)
    .says("another artifact");
}

#[test]
fn keygen_and_sign_refuse_bad_input_without_leaking_the_passphrase() {
    let mut w = World::plain();
    w.run(&["keygen"]).code(2).says("SQUIZZLE_KEY_PASSWORD");
    w.set_env("SQUIZZLE_KEY_PASSWORD", PASS);
    w.run(&["keygen"]).success();
    let key = w.read_string("squizzle.key");
    assert!(key.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    w.run(&["keygen"]).code(2).says("never overwrites");
    w.build_ok("1.0.0");
    let wrong = "wrong passphrase 123";
    let r = w
        .run_with_env(
            &["sign", "1.0.0", "--key", "squizzle.key", "-vvv"],
            &[("SQUIZZLE_KEY_PASSWORD", wrong)],
        )
        .code(2)
        .says("passphrase");
    assert!(
        !r.output().contains(wrong),
        "the passphrase leaked:\n{}",
        r.output()
    );
    w.run(&["sign", "1.0.0", "--key", "missing.key"])
        .code(2)
        .says("missing.key");
    w.run(&["sign", "9.9.9", "--key", "squizzle.key"]).code(12);
    // Unencrypted keys are refused: squizzle never writes or reads a bare private key.
    w.write("plain.key", "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n");
    w.run(&["sign", "1.0.0", "--key", "plain.key"]).code(2);
    // build --sign --key signs right after building.
    w.write("migrations/0004_more.sql", "CREATE TABLE more (id int);\n");
    w.run(&["build", "1.1.0", "--sign", "--key", "squizzle.key"])
        .success()
        .says("Signed 1.1.0");
    w.run(&["verify", "1.1.0", "--key", "squizzle.pub"])
        .success();
    w.run(&["build", "1.2.0", "--key", "squizzle.key"])
        .code(2)
        .says("--sign");
}

#[test]
fn a_release_that_fails_integrity_is_never_signed() {
    let mut w = World::plain();
    w.set_env("SQUIZZLE_KEY_PASSWORD", PASS);
    w.run(&["keygen"]).success();
    w.build_ok("1.0.0");
    let layer = w.layer_digest("1.0.0");
    w.corrupt_blob(&layer);
    let referrers_before = w.index()["manifests"].as_array().unwrap().len();
    w.run(&["sign", "1.0.0", "--key", "squizzle.key"])
        .code(6)
        .says("fails its integrity checks, so squizzle will not sign it");
    assert!(!w.exists("db/tarballs/squizzle-1.0.0.sigstore.json"));
    assert_eq!(
        w.index()["manifests"].as_array().unwrap().len(),
        referrers_before,
        "no signature referrer was stored"
    );
    w.run(&["build", "1.0.0", "--sign", "--key", "squizzle.key"])
        .code(6);
}

#[test]
fn a_second_revocation_is_refused_unless_forced_verified_or_not() {
    let mut w = World::plain();
    w.set_env("SQUIZZLE_KEY_PASSWORD", PASS);
    w.run(&["keygen"]).success();
    w.build_ok("1.0.0");
    // The key is given on the command line only: nothing in the project's
    // policy can verify this revocation.
    let revoke = |extra: &[&str]| {
        let mut args = vec![
            "revoke",
            "1.0.0",
            "--reason",
            "drops the orders index (INC-1)",
            "--key",
            "squizzle.key",
        ];
        args.extend_from_slice(extra);
        w.run(&args)
    };
    revoke(&[]).success();
    // Every revocation is one more (untagged) manifest in the store's index.
    let count = || w.index()["manifests"].as_array().unwrap().len();
    let once = count();
    revoke(&[])
        .code(10)
        .says("1.0.0 is already revoked by key ")
        .says("not verified by this project's policy")
        .says("drops the orders index (INC-1)")
        .says("--force");
    assert_eq!(count(), once, "nothing was added");
    revoke(&["--force"]).success();
    assert_eq!(count(), once + 1);
}
