//! The loopback Sigstore services (`squizzle_test_support::sigstore`) are right enough
//! that independent verifiers accept what is signed against them: the
//! Merkle tree against RFC 6962 known answers and an RFC 9162 proof
//! verifier written here; sigstore-rust signing and verification; and the
//! PyPI `sigstore` 4.x CLI (`scripts/lib/setup.sh: ensure_sigstore_python`)
//! verifying what sigstore-rust signed and signing what sigstore-rust
//! verifies. The Python tests fail, never skip, without the package.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest as _, Sha256};
use sigstore_sign::oidc::IdentityToken;
use sigstore_sign::{SigningContext, SigningServices};
use sigstore_verify::trust_root::TrustedRoot;
use sigstore_verify::types::Bundle;
use sigstore_verify::{VerificationPolicy, VerificationResult, Verifier};
use squizzle_test_support::sigstore::merkle::{self, Hash};
use squizzle_test_support::sigstore::{
    self, Identity, SigstoreOptions, SigstoreServices, TokenOptions, python,
};

const EMAIL: &str = "release@acme.example";
const WORKFLOW: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0";

// ---------------------------------------------------------------- Merkle --

fn h(hex_str: &str) -> Hash {
    hex::decode(hex_str).unwrap().try_into().unwrap()
}

/// RFC 9162 §2.1.3.2: verify an inclusion proof, independently of the tree
/// code under test.
fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let node = |l: &Hash, r: &Hash| -> Hash {
        let mut d = Sha256::new();
        d.update([1u8]);
        d.update(l);
        d.update(r);
        d.finalize().into()
    };
    let (mut fnn, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return false;
        }
        if fnn & 1 == 1 || fnn == sn {
            r = node(p, &r);
            if fnn & 1 == 0 {
                while fnn & 1 == 0 && fnn != 0 {
                    fnn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node(&r, p);
        }
        fnn >>= 1;
        sn >>= 1;
    }
    sn == 0 && &r == root
}

#[test]
fn merkle_tree_matches_rfc6962_known_answers() {
    assert_eq!(
        merkle::root(&[]),
        h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    assert_eq!(
        merkle::leaf_hash(b""),
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    );
    // The RFC 6962 reference inputs and the roots of their first n leaves
    // (certificate-transparency test vectors).
    let inputs: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];
    let roots = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
    let mut tree = merkle::Tree::new();
    for (input, root) in inputs.iter().zip(roots) {
        tree.append(input);
        assert_eq!(
            hex::encode(tree.root()),
            root,
            "root of {} leaves",
            tree.size()
        );
    }
}

#[test]
fn merkle_inclusion_proofs_verify_independently_for_sizes_1_to_20() {
    let mut tree = merkle::Tree::new();
    for size in 1..=20u64 {
        tree.append(format!("leaf {size}").as_bytes());
        let root = tree.root();
        for index in 0..size {
            let leaf = merkle::leaf_hash(format!("leaf {}", index + 1).as_bytes());
            let proof = tree.proof(index as usize, size as usize);
            assert!(
                verify_inclusion(index, size, &leaf, &proof, &root),
                "leaf {index} of {size}"
            );
            // And the verifier is not a rubber stamp.
            assert!(!verify_inclusion(
                index,
                size,
                &merkle::leaf_hash(b"other"),
                &proof,
                &root
            ));
            if let Some(first) = proof.first() {
                let mut bad = proof.clone();
                bad[0] = merkle::leaf_hash(first);
                assert!(!verify_inclusion(index, size, &leaf, &bad, &root));
            }
            if size > 1 {
                assert!(!verify_inclusion(
                    (index + 1) % size,
                    size,
                    &leaf,
                    &proof,
                    &root
                ));
            }
        }
    }
}

// ------------------------------------------------------------ Rust sign --

/// Signs against `s`, timestamping with its TSA when it runs one.
fn context(s: &SigstoreServices) -> SigningContext {
    let mut services = SigningServices::new(s.fulcio_url(), s.rekor_url());
    if let Some(tsa) = s.tsa_url() {
        services = services.with_tsa_url(tsa);
    }
    SigningContext::new(services)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn sign_blob(s: &SigstoreServices, identity: &Identity, data: &[u8]) -> Result<Bundle, String> {
    let token = IdentityToken::from_jwt(&s.mint_token(identity)).unwrap();
    runtime()
        .block_on(context(s).signer(token).sign(data))
        .map_err(|e| e.to_string())
}

/// An in-toto statement whose one subject is `data`'s sha256.
fn statement_for(name: &str, data: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{ "name": name, "digest": { "sha256": hex::encode(Sha256::digest(data)) } }],
        "predicateType": "https://squizzle.dev/release/v1",
        "predicate": { "note": "loopback" },
    }))
    .unwrap()
}

fn sign_statement(
    s: &SigstoreServices,
    identity: &Identity,
    statement: &[u8],
) -> Result<Bundle, String> {
    let token = IdentityToken::from_jwt(&s.mint_token(identity)).unwrap();
    runtime()
        .block_on(context(s).signer(token).sign_raw_statement(statement))
        .map_err(|e| e.to_string())
}

fn verify(
    s: &SigstoreServices,
    artifact: &[u8],
    bundle: &Bundle,
    identity: &str,
    issuer: &str,
) -> Result<VerificationResult, String> {
    let root = TrustedRoot::from_json(&s.trusted_root_json()).map_err(|e| e.to_string())?;
    Verifier::new(&root)
        .map_err(|e| e.to_string())?
        .verify(artifact, bundle, &VerificationPolicy::new(identity, issuer))
        .map_err(|e| e.to_string())
}

fn assert_fully_verified(r: &VerificationResult) {
    assert!(r.tlog_verified(), "tlog verified");
    assert!(r.sct_verified(), "SCT verified");
    assert!(r.certificate_verified(), "certificate verified");
    assert!(r.identity_policy_checked(), "identity checked");
}

#[test]
fn rust_signed_blob_with_uri_identity_verifies_in_rust() {
    let s = SigstoreServices::start();
    let data = b"release 1.0.0 bytes";
    let bundle = sign_blob(&s, &Identity::uri(WORKFLOW), data).expect("sign");
    let r = verify(&s, data, &bundle, WORKFLOW, &s.issuer_url()).expect("verify");
    assert_fully_verified(&r);
    assert_eq!(
        r.identity().map(|i| i.as_str().to_string()).as_deref(),
        Some(WORKFLOW)
    );
    assert_eq!(r.issuer(), Some(s.issuer_url().as_str()));

    let wrong = verify(
        &s,
        data,
        &bundle,
        "https://github.com/evil/app/.github/workflows/x.yml@refs/heads/main",
        &s.issuer_url(),
    );
    assert!(wrong.is_err(), "wrong identity must fail");
    let wrong_issuer = verify(
        &s,
        data,
        &bundle,
        WORKFLOW,
        "https://token.actions.githubusercontent.com",
    );
    assert!(wrong_issuer.is_err(), "wrong issuer must fail");
    assert!(verify(&s, b"other bytes", &bundle, WORKFLOW, &s.issuer_url()).is_err());
}

#[test]
fn rust_signed_statement_with_email_identity_verifies_in_rust() {
    let s = SigstoreServices::start();
    let artifact = b"migrations tarball";
    let statement = statement_for("release.tar.gz", artifact);
    let bundle = sign_statement(&s, &Identity::email(EMAIL), &statement).expect("sign");
    let r = verify(&s, artifact, &bundle, EMAIL, &s.issuer_url()).expect("verify");
    assert_fully_verified(&r);
    assert!(
        verify(
            &s,
            artifact,
            &bundle,
            "mallory@acme.example",
            &s.issuer_url()
        )
        .is_err()
    );

    // Rekor canonicalized the logged body: dsse 0.0.1 with LF PEM verifier.
    let entries = s.log_entries();
    assert_eq!(entries.len(), 1);
    let body: serde_json::Value = serde_json::from_slice(&entries[0].body).unwrap();
    assert_eq!(body["kind"], "dsse");
    let spec = &body["spec"];
    assert_eq!(
        spec["payloadHash"]["value"],
        hex::encode(Sha256::digest(&statement))
    );
    assert!(spec["envelopeHash"]["value"].is_string());
    let verifier = B64
        .decode(spec["signatures"][0]["verifier"].as_str().unwrap())
        .unwrap();
    let verifier = String::from_utf8(verifier).unwrap();
    assert!(verifier.starts_with("-----BEGIN CERTIFICATE-----\n") && !verifier.contains('\r'));
    assert!(verifier.lines().all(|l| l.len() <= 64));
}

#[test]
fn log_serves_entries_and_proofs_consistent_with_its_tree() {
    let s = SigstoreServices::start();
    for i in 0..3 {
        sign_blob(
            &s,
            &Identity::email(EMAIL),
            format!("artifact {i}").as_bytes(),
        )
        .expect("sign");
    }
    let (size, root) = s.log_root();
    assert_eq!(size, 3);
    let entries = s.log_entries();
    for e in &entries {
        let v: serde_json::Value = http_get(&format!(
            "{}/api/v1/log/entries?logIndex={}",
            s.rekor_url(),
            e.index
        ));
        let (uuid, got) = v.as_object().unwrap().iter().next().unwrap();
        assert_eq!(uuid, &e.uuid);
        let proof = &got["verification"]["inclusionProof"];
        assert_eq!(proof["treeSize"], 3);
        assert_eq!(proof["rootHash"], hex::encode(root));
        let hashes: Vec<Hash> = proof["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| h(x.as_str().unwrap()))
            .collect();
        assert!(verify_inclusion(
            e.index,
            3,
            &merkle::leaf_hash(&e.body),
            &hashes,
            &root
        ));
        let by_uuid: serde_json::Value =
            http_get(&format!("{}/api/v1/log/entries/{}", s.rekor_url(), e.uuid));
        assert_eq!(by_uuid[&e.uuid]["body"], got["body"]);
    }
    let log: serde_json::Value = http_get(&format!("{}/api/v1/log", s.rekor_url()));
    assert_eq!(log["treeSize"], 3);
    assert_eq!(log["rootHash"], hex::encode(root));
    let checkpoint = log["signedTreeHead"].as_str().unwrap();
    assert!(
        checkpoint.contains(&format!("\n3\n{}\n\n", B64.encode(root))),
        "{checkpoint}"
    );

    // Retrieval by UUID, and a replayed proposal is a conflict.
    let (status, found) = http_post(
        &format!("{}/api/v1/log/entries/retrieve", s.rekor_url()),
        &serde_json::json!({ "entryUUIDs": [entries[1].uuid] }),
    );
    assert_eq!(status, 200);
    assert_eq!(found.as_array().map(Vec::len), Some(1));
    assert!(found[0].get(&entries[1].uuid).is_some());
    let body: serde_json::Value = serde_json::from_slice(&entries[0].body).unwrap();
    let (status, _) = http_post(&format!("{}/api/v1/log/entries", s.rekor_url()), &body);
    assert_eq!(status, 409, "the canonical body again");
    assert_eq!(s.log_root().0, 3);
}

fn http_post(url: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    runtime().block_on(async {
        let r = sigstore_sign::reqwest::Client::new()
            .post(url)
            .json(body)
            .send()
            .await
            .expect("POST");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or_default())
    })
}

fn http_get(url: &str) -> serde_json::Value {
    runtime().block_on(async {
        let r = sigstore_sign::reqwest::get(url).await.expect("GET");
        assert!(r.status().is_success(), "GET {url}: {}", r.status());
        r.json().await.expect("JSON")
    })
}

// --------------------------------------------------------------- hostile --

#[test]
fn certificate_from_an_untrusted_ca_fails_verification() {
    let s = SigstoreServices::start();
    s.use_untrusted_ca(true);
    let data = b"payload";
    let bundle = sign_blob(&s, &Identity::email(EMAIL), data).expect("the log accepts it");
    let err = verify(&s, data, &bundle, EMAIL, &s.issuer_url()).expect_err("untrusted CA");
    assert!(err.contains("chain"), "{err}");
    // The same flow from the trusted CA passes: the failure is the CA.
    s.use_untrusted_ca(false);
    let bundle = sign_blob(&s, &Identity::email(EMAIL), data).expect("sign");
    assert_fully_verified(&verify(&s, data, &bundle, EMAIL, &s.issuer_url()).unwrap());
}

#[test]
fn certificate_not_valid_at_integrated_time_fails_verification() {
    let s = SigstoreServices::start();
    let now = sigstore::oidc::now();
    s.set_cert_validity(Some((now - 7200, now - 3600)));
    let data = b"payload";
    let bundle = sign_blob(&s, &Identity::email(EMAIL), data).expect("sign");
    let err = verify(&s, data, &bundle, EMAIL, &s.issuer_url()).expect_err("expired at log time");
    assert!(err.contains("chain") || err.contains("xpired"), "{err}");

    let s = SigstoreServices::start();
    s.set_log_time_offset(86_400);
    let bundle = sign_blob(&s, &Identity::email(EMAIL), data).expect("sign");
    assert!(s.log_entries()[0].integrated_time > now + 80_000);
    let err =
        verify(&s, data, &bundle, EMAIL, &s.issuer_url()).expect_err("logged a day after the cert");
    assert!(err.contains("integrated time"), "{err}");

    let s = SigstoreServices::start();
    s.set_log_time_offset(-86_400);
    let bundle = sign_blob(&s, &Identity::email(EMAIL), data).expect("sign");
    let err = verify(&s, data, &bundle, EMAIL, &s.issuer_url())
        .expect_err("logged a day before the cert");
    assert!(!err.is_empty());
}

#[test]
fn fulcio_rejects_bad_tokens() {
    let s = SigstoreServices::start();
    let id = Identity::email(EMAIL);
    let cases = [
        (
            "expired",
            TokenOptions {
                expires_in: -60,
                ..TokenOptions::new(id.clone())
            },
        ),
        (
            "wrong audience",
            TokenOptions {
                audience: "not-sigstore".into(),
                ..TokenOptions::new(id.clone())
            },
        ),
        (
            "foreign key",
            TokenOptions {
                foreign_key: true,
                ..TokenOptions::new(id.clone())
            },
        ),
        (
            "unverified email",
            TokenOptions {
                email_verified: false,
                ..TokenOptions::new(id.clone())
            },
        ),
        (
            "other issuer",
            TokenOptions {
                issuer: Some("https://issuer.example".into()),
                ..TokenOptions::new(id.clone())
            },
        ),
    ];
    for (what, options) in cases {
        let body = serde_json::json!({
            "credentials": { "oidcIdentityToken": s.mint_token_with(&options) },
            "publicKeyRequest": { "publicKey": { "algorithm": "", "content": "x" }, "proofOfPossession": "" },
        });
        let status = runtime().block_on(async {
            sigstore_sign::reqwest::Client::new()
                .post(format!("{}/api/v2/signingCert", s.fulcio_url()))
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        });
        assert_eq!(status.as_u16(), 401, "{what}");
    }
    // A valid token goes through the real client.
    sign_blob(&s, &id, b"x").expect("valid token signs");
    assert_eq!(s.issued_certificates().len(), 1);
}

// ------------------------------------------------------ sigstore-python --

#[test]
fn sigstore_python_verifies_what_sigstore_rust_signed() {
    let s = SigstoreServices::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("release.tar.gz");
    std::fs::write(&file, b"migrations release bytes").unwrap();
    let data = std::fs::read(&file).unwrap();

    // DSSE: an in-toto statement whose subject is the file's digest.
    let bundle = sign_statement(
        &s,
        &Identity::uri(WORKFLOW),
        &statement_for("release.tar.gz", &data),
    )
    .expect("sign statement");
    let dsse = dir.path().join("dsse.sigstore.json");
    std::fs::write(&dsse, bundle.to_json().unwrap()).unwrap();
    let ok = python::verify_identity(&s, &dsse, &file, WORKFLOW);
    assert!(
        ok.status.success(),
        "DSSE bundle: {}",
        python::describe(&ok)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("in-toto.io/Statement"));
    let bad = python::verify_identity(
        &s,
        &dsse,
        &file,
        "https://github.com/evil/app/.github/workflows/x.yml@refs/heads/main",
    );
    assert!(
        !bad.status.success(),
        "wrong identity accepted: {}",
        python::describe(&bad)
    );

    // hashedrekord over the file itself, email identity.
    let bundle = sign_blob(&s, &Identity::email(EMAIL), &data).expect("sign blob");
    let blob = dir.path().join("blob.sigstore.json");
    std::fs::write(&blob, bundle.to_json().unwrap()).unwrap();
    let ok = python::verify_identity(&s, &blob, &file, EMAIL);
    assert!(
        ok.status.success(),
        "hashedrekord bundle: {}",
        python::describe(&ok)
    );
    let bad = python::verify_identity(&s, &blob, &file, "mallory@acme.example");
    assert!(
        !bad.status.success(),
        "wrong identity accepted: {}",
        python::describe(&bad)
    );
    let other = dir.path().join("other");
    std::fs::write(&other, b"not the release").unwrap();
    let bad = python::verify_identity(&s, &blob, &other, EMAIL);
    assert!(
        !bad.status.success(),
        "wrong file accepted: {}",
        python::describe(&bad)
    );
    let bad = python::verify_identity(&s, &dsse, &other, WORKFLOW);
    assert!(
        !bad.status.success(),
        "DSSE subject mismatch accepted: {}",
        python::describe(&bad)
    );
}

#[test]
fn sigstore_python_rejects_the_hostile_cases() {
    let s = SigstoreServices::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("release.tar.gz");
    std::fs::write(&file, b"hostile release").unwrap();
    let data = std::fs::read(&file).unwrap();
    let write = |name: &str, b: &Bundle| {
        let p = dir.path().join(name);
        std::fs::write(&p, b.to_json().unwrap()).unwrap();
        p
    };

    s.use_untrusted_ca(true);
    let untrusted = write(
        "untrusted.json",
        &sign_blob(&s, &Identity::email(EMAIL), &data).unwrap(),
    );
    s.use_untrusted_ca(false);
    let o = python::verify_identity(&s, &untrusted, &file, EMAIL);
    assert!(
        !o.status.success(),
        "untrusted CA accepted: {}",
        python::describe(&o)
    );

    let now = sigstore::oidc::now();
    s.set_cert_validity(Some((now - 7200, now - 3600)));
    let expired = write(
        "expired.json",
        &sign_blob(&s, &Identity::email(EMAIL), &data).unwrap(),
    );
    s.set_cert_validity(None);
    let o = python::verify_identity(&s, &expired, &file, EMAIL);
    assert!(
        !o.status.success(),
        "expired certificate accepted: {}",
        python::describe(&o)
    );

    // The control: the same services, untouched, pass.
    let good = write(
        "good.json",
        &sign_blob(&s, &Identity::email(EMAIL), &data).unwrap(),
    );
    let o = python::verify_identity(&s, &good, &file, EMAIL);
    assert!(o.status.success(), "{}", python::describe(&o));
}

#[test]
fn sigstore_rust_verifies_what_sigstore_python_signed() {
    let s = SigstoreServices::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("release.tar.gz");
    std::fs::write(&file, b"release signed by python").unwrap();
    let out = dir.path().join("py.sigstore.json");
    let token = s.mint_token(&Identity::uri(WORKFLOW));
    let o = python::sigstore(&[
        "--trust-config",
        s.trust_config_path().to_str().unwrap(),
        "sign",
        "--identity-token",
        &token,
        "--bundle",
        out.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "sigstore sign: {}",
        python::describe(&o)
    );
    let bundle = Bundle::from_json(&std::fs::read_to_string(&out).unwrap()).expect("bundle parses");
    let data = std::fs::read(&file).unwrap();
    let r = verify(&s, &data, &bundle, WORKFLOW, &s.issuer_url()).expect("rust verifies");
    assert_fully_verified(&r);
    assert!(
        verify(
            &s,
            &data,
            &bundle,
            "https://github.com/evil/app/.github/workflows/x.yml@refs/heads/main",
            &s.issuer_url()
        )
        .is_err()
    );
    // Python's own verifier agrees.
    let ok = python::verify_identity(&s, &out, &file, WORKFLOW);
    assert!(ok.status.success(), "{}", python::describe(&ok));
}

// ------------------------------------------------------------------ OIDC --

/// PyJWT (a sigstore-python dependency) discovers the issuer, fetches its
/// JWKS and checks each token; prints one verdict per token.
const PYJWT_CHECK: &str = r#"
import json, sys, urllib.request
import jwt
issuer, tokens = sys.argv[1], sys.argv[2:]
config = json.load(urllib.request.urlopen(issuer + "/.well-known/openid-configuration"))
assert config["issuer"] == issuer, config
client = jwt.PyJWKClient(config["jwks_uri"])
for token in tokens:
    try:
        key = client.get_signing_key_from_jwt(token)
        claims = jwt.decode(token, key.key, algorithms=["ES256"], audience="sigstore",
                            issuer=issuer, options={"require": ["exp", "iat", "sub"]})
        print("ok " + claims["sub"])
    except Exception as e:
        print("rejected " + type(e).__name__)
"#;

#[test]
fn pyjwt_accepts_minted_tokens_and_rejects_hostile_ones() {
    let s = SigstoreServices::start();
    let email = Identity::email(EMAIL);
    let tokens = [
        s.mint_token(&Identity::uri(WORKFLOW)),
        s.mint_token(&email),
        s.mint_token_with(&TokenOptions {
            expires_in: -60,
            ..TokenOptions::new(email.clone())
        }),
        s.mint_token_with(&TokenOptions {
            audience: "other".into(),
            ..TokenOptions::new(email.clone())
        }),
        s.mint_token_with(&TokenOptions {
            foreign_key: true,
            ..TokenOptions::new(email.clone())
        }),
    ];
    let out = Command::new("python3")
        .arg("-c")
        .arg(PYJWT_CHECK)
        .arg(s.issuer_url())
        .args(&tokens)
        .output()
        .expect("python3 runs (scripts/lib/setup.sh: ensure_sigstore_python)");
    assert!(
        out.status.success(),
        "PyJWT check: {}",
        python::describe(&out)
    );
    let verdicts: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(verdicts.len(), 5, "{}", python::describe(&out));
    assert_eq!(verdicts[0], format!("ok {WORKFLOW}"));
    assert!(verdicts[1].starts_with("ok user-"), "{verdicts:?}");
    assert_eq!(verdicts[2], "rejected ExpiredSignatureError");
    assert_eq!(verdicts[3], "rejected InvalidAudienceError");
    assert_eq!(verdicts[4], "rejected InvalidSignatureError");
}

// ------------------------------------------------------------------- TSA --

/// rfc3161-client (sigstore-python's TSA verifier) checks every timestamp
/// in a bundle against the trusted root's TSA chain, as sigstore-python
/// does; sigstore-python itself silently drops timestamps that fail.
const RFC3161_CHECK: &str = r#"
import base64, json, sys
from cryptography import x509
from rfc3161_client import decode_timestamp_response, VerifierBuilder
root, bundle = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
certs = [x509.load_der_x509_certificate(base64.b64decode(c["rawBytes"]))
         for c in root["timestampAuthorities"][0]["certChain"]["certificates"]]
vm = bundle["verificationMaterial"]
sig = base64.b64decode(bundle["messageSignature"]["signature"] if "messageSignature" in bundle
                       else bundle["dsseEnvelope"]["signatures"][0]["sig"])
for ts in vm["timestampVerificationData"]["rfc3161Timestamps"]:
    resp = decode_timestamp_response(base64.b64decode(ts["signedTimestamp"]))
    v = VerifierBuilder().tsa_certificate(certs[0]).add_root_certificate(certs[-1]).build()
    v.verify_message(resp, sig)
    print("verified", resp.tst_info.gen_time.isoformat())
"#;

fn rfc3161_client_verifies(s: &SigstoreServices, bundle: &Path) -> usize {
    let o = Command::new("python3")
        .arg("-c")
        .arg(RFC3161_CHECK)
        .arg(s.trusted_root_path())
        .arg(bundle)
        .output()
        .expect("python3 runs");
    assert!(
        o.status.success(),
        "rfc3161-client: {}",
        python::describe(&o)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.starts_with("verified "))
        .count()
}

fn rfc3161_count(bundle_json: &str) -> usize {
    let v: serde_json::Value = serde_json::from_str(bundle_json).unwrap();
    v["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"]
        .as_array()
        .map_or(0, Vec::len)
}

#[test]
fn tsa_timestamps_verify_in_rust_and_python() {
    let s = SigstoreServices::start_with(SigstoreOptions { tsa: true });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("release.tar.gz");
    std::fs::write(&file, b"timestamped release").unwrap();
    let data = std::fs::read(&file).unwrap();

    // sigstore-rust signs with a timestamp; both verifiers accept it.
    let bundle = sign_blob(&s, &Identity::email(EMAIL), &data).expect("sign");
    assert_eq!(s.timestamps_issued(), 1);
    let json = bundle.to_json().unwrap();
    assert_eq!(rfc3161_count(&json), 1);
    let r = verify(&s, &data, &bundle, EMAIL, &s.issuer_url()).expect("rust verifies");
    assert_fully_verified(&r);
    assert!(
        !r.verified_timestamps().is_empty(),
        "TSA timestamp verified"
    );
    let path = dir.path().join("rust.sigstore.json");
    std::fs::write(&path, &json).unwrap();
    assert_eq!(rfc3161_client_verifies(&s, &path), 1);
    let o = python::verify_identity(&s, &path, &file, EMAIL);
    assert!(
        o.status.success(),
        "python verifies the timestamp: {}",
        python::describe(&o)
    );

    // sigstore-python timestamps too (the signing config lists the TSA).
    let out = dir.path().join("py.sigstore.json");
    let o = python::sigstore(&[
        "--trust-config",
        s.trust_config_path().to_str().unwrap(),
        "sign",
        "--identity-token",
        &s.mint_token(&Identity::uri(WORKFLOW)),
        "--bundle",
        out.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "sigstore sign: {}",
        python::describe(&o)
    );
    assert_eq!(s.timestamps_issued(), 2);
    let json = std::fs::read_to_string(&out).unwrap();
    assert_eq!(rfc3161_count(&json), 1);
    assert_eq!(rfc3161_client_verifies(&s, &out), 1);
    let bundle = Bundle::from_json(&json).unwrap();
    let r = verify(&s, &data, &bundle, WORKFLOW, &s.issuer_url()).expect("rust verifies");
    assert!(!r.verified_timestamps().is_empty());
}

#[test]
fn tsa_timestamp_outside_certificate_validity_fails() {
    let s = SigstoreServices::start_with(SigstoreOptions { tsa: true });
    s.set_tsa_time_offset(3 * 3600);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("release.tar.gz");
    std::fs::write(&file, b"late timestamp").unwrap();
    let data = std::fs::read(&file).unwrap();
    let bundle = sign_blob(&s, &Identity::email(EMAIL), &data).expect("sign");
    let err = verify(&s, &data, &bundle, EMAIL, &s.issuer_url())
        .expect_err("timestamp after the certificate expired");
    assert!(!err.is_empty());
    let path = dir.path().join("late.sigstore.json");
    std::fs::write(&path, bundle.to_json().unwrap()).unwrap();
    // The token itself is sound; only its time is wrong.
    assert_eq!(rfc3161_client_verifies(&s, &path), 1);
    let o = python::verify_identity(&s, &path, &file, EMAIL);
    assert!(
        !o.status.success(),
        "late timestamp accepted: {}",
        python::describe(&o)
    );
}
