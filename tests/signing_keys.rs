//! Cross-checks the key-pair signing of `squizzle::signing::keys` against the
//! OpenSSL command-line tool: the key files are standard (encrypted PKCS#8 and
//! SPKI PEM) and the signatures are plain ECDSA P-256 SHA-256 over the DSSE
//! PAE, so another implementation reads and verifies them.
//!
//! Needs the `openssl` binary (the Debian package `openssl`); the crate itself
//! never links OpenSSL.

use std::path::Path;
use std::process::{Command, Output};

use sigstore_verify::types::{DsseEnvelope, SignatureBytes, SignatureContent};
use squizzle::signing::keys::{self, KeyError};

const PASS: &str = "tr0ub4dor&3 with spaces";
const PASS_VAR: &str = "SQUIZZLE_TEST_OPENSSL_PASS";
const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// Runs `openssl` with `args` (the passphrase in `PASS_VAR`), panicking with
/// an install hint if the tool is missing.
fn openssl(dir: &Path, args: &[&str]) -> Output {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .env(PASS_VAR, PASS)
        .output();
    match output {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "tests/signing_keys.rs needs the `openssl` command-line tool to cross-check the key \
             and signature formats; install it (Debian: `apt-get install openssl`)"
        ),
        Err(e) => panic!("cannot run openssl: {e}"),
    }
}

/// Like [`openssl`], but the command must succeed.
fn openssl_ok(dir: &Path, args: &[&str]) -> Output {
    let output = openssl(dir, args);
    assert!(
        output.status.success(),
        "openssl {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn statement() -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "app", "digest": {"sha256": DIGEST}}],
        "predicateType": "https://squizzle.dev/attestation/release/v1",
        "predicate": {},
    }))
    .unwrap()
}

fn envelope(bundle: &sigstore_verify::types::Bundle) -> &DsseEnvelope {
    match &bundle.content {
        SignatureContent::DsseEnvelope(envelope) => envelope,
        _ => panic!("the bundle has no DSSE envelope"),
    }
}

/// (a) `openssl pkey` decrypts our key with the passphrase, and the public
/// key it derives is byte for byte ours.
#[test]
fn openssl_reads_our_encrypted_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let generated = keys::generate(PASS).unwrap();
    write(d, "squizzle.key", &generated.private_key_pem);
    write(d, "squizzle.pub", &generated.public_key_pem);

    let pass = format!("env:{PASS_VAR}");
    openssl_ok(
        d,
        &[
            "pkey",
            "-in",
            "squizzle.key",
            "-passin",
            &pass,
            "-pubout",
            "-out",
            "derived.pub",
        ],
    );
    assert_eq!(read(d, "derived.pub"), generated.public_key_pem);

    // The public key file is one OpenSSL reads, too.
    openssl_ok(
        d,
        &[
            "pkey",
            "-pubin",
            "-in",
            "squizzle.pub",
            "-pubout",
            "-out",
            "again.pub",
        ],
    );
    assert_eq!(read(d, "again.pub"), generated.public_key_pem);

    // A wrong passphrase fails in OpenSSL as well.
    let wrong = openssl(
        d,
        &[
            "pkey",
            "-in",
            "squizzle.key",
            "-passin",
            "pass:not-it",
            "-noout",
        ],
    );
    assert!(!wrong.status.success());

    // The structure is the standard PBES2 one, with >= 600000 iterations.
    let parsed = openssl_ok(d, &["asn1parse", "-in", "squizzle.key"]);
    let text = String::from_utf8_lossy(&parsed.stdout);
    for expected in ["PBES2", "PBKDF2", "hmacWithSHA256", "aes-256-cbc"] {
        assert!(text.contains(expected), "no {expected} in:\n{text}");
    }
    let iterations = text
        .lines()
        .find_map(|l| l.split("INTEGER           :").nth(1))
        .map(|hex| u64::from_str_radix(hex.trim(), 16).unwrap())
        .expect("an iteration count");
    assert!(iterations >= 600_000, "{iterations}");
}

/// (b) A key encrypted by `openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf
/// hmacWithSHA256` loads with our loader; other ciphers and unencrypted keys
/// are refused with a clear error.
#[test]
fn openssl_encrypted_key_loads() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pass = format!("env:{PASS_VAR}");
    openssl_ok(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "plain.pem",
        ],
    );
    openssl_ok(
        d,
        &["pkey", "-in", "plain.pem", "-pubout", "-out", "plain.pub"],
    );
    openssl_ok(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-v2prf",
            "hmacWithSHA256",
            "-iter",
            "600000",
            "-in",
            "plain.pem",
            "-passout",
            &pass,
            "-out",
            "enc.pem",
        ],
    );

    let key = keys::load_private_key(&read(d, "enc.pem"), PASS).unwrap();
    assert_eq!(key.public_key().to_pem(), read(d, "plain.pub"));
    let public = keys::load_public_key(&read(d, "plain.pub")).unwrap();
    assert_eq!(&public, key.public_key());

    let e = keys::load_private_key(&read(d, "enc.pem"), "not-it").unwrap_err();
    assert!(matches!(e, KeyError::WrongPassphrase), "{e:?}");
    let e = keys::load_private_key(&read(d, "plain.pem"), PASS).unwrap_err();
    assert!(matches!(e, KeyError::UnencryptedPrivateKey { .. }), "{e:?}");

    openssl_ok(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-128-cbc",
            "-v2prf",
            "hmacWithSHA256",
            "-in",
            "plain.pem",
            "-passout",
            &pass,
            "-out",
            "aes128.pem",
        ],
    );
    let e = keys::load_private_key(&read(d, "aes128.pem"), PASS).unwrap_err();
    assert!(matches!(e, KeyError::Unsupported { .. }), "{e:?}");
    assert!(e.to_string().contains("aes128-CBC"), "{e}");

    // Not P-256.
    openssl_ok(d, &["genpkey", "-algorithm", "ED25519", "-out", "ed.pem"]);
    openssl_ok(d, &["pkey", "-in", "ed.pem", "-pubout", "-out", "ed.pub"]);
    let e = keys::load_public_key(&read(d, "ed.pub")).unwrap_err();
    assert!(matches!(e, KeyError::Unsupported { .. }), "{e:?}");
    openssl_ok(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-v2prf",
            "hmacWithSHA256",
            "-iter",
            "1000",
            "-in",
            "ed.pem",
            "-passout",
            &pass,
            "-out",
            "ed-enc.pem",
        ],
    );
    let e = keys::load_private_key(&read(d, "ed-enc.pem"), PASS).unwrap_err();
    assert!(matches!(e, KeyError::Unsupported { .. }), "{e:?}");
    assert!(e.to_string().contains("Ed25519"), "{e}");
}

/// (c) Our DSSE signature verifies with `openssl dgst -verify` over the PAE,
/// and a signature OpenSSL makes over the PAE verifies with our verifier.
#[test]
fn signatures_interoperate_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let generated = keys::generate(PASS).unwrap();
    write(d, "squizzle.key", &generated.private_key_pem);
    write(d, "squizzle.pub", &generated.public_key_pem);
    let key = keys::load_private_key(&generated.private_key_pem, PASS).unwrap();

    let bundle = keys::sign_statement(&key, &statement()).unwrap();
    let env = envelope(&bundle);
    write(d, "pae.bin", env.pae());
    write(d, "sig.der", env.signature.sig.as_bytes());
    let out = openssl_ok(
        d,
        &[
            "dgst",
            "-sha256",
            "-verify",
            "squizzle.pub",
            "-signature",
            "sig.der",
            "pae.bin",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Verified OK"));

    // The same signature over a changed PAE fails in OpenSSL.
    let mut tampered = env.pae();
    *tampered.last_mut().unwrap() ^= 1;
    write(d, "tampered.bin", &tampered);
    let out = openssl(
        d,
        &[
            "dgst",
            "-sha256",
            "-verify",
            "squizzle.pub",
            "-signature",
            "sig.der",
            "tampered.bin",
        ],
    );
    assert!(!out.status.success());

    // The bundle survives JSON and verifies with the public key file.
    let json = bundle.to_json().unwrap();
    let parsed = keys::parse_bundle(json.as_bytes()).unwrap();
    let public = keys::load_public_key(&generated.public_key_pem).unwrap();
    let verified = keys::verify_statement(&parsed, &public).unwrap();
    assert_eq!(verified.subjects[0].sha256.hex(), DIGEST);

    // OpenSSL signs the PAE with our private key; we verify that signature.
    let pass = format!("env:{PASS_VAR}");
    openssl_ok(
        d,
        &[
            "dgst",
            "-sha256",
            "-sign",
            "squizzle.key",
            "-passin",
            &pass,
            "-out",
            "ossl.der",
            "pae.bin",
        ],
    );
    let mut by_openssl = parsed.clone();
    match &mut by_openssl.content {
        SignatureContent::DsseEnvelope(env) => {
            env.signature.sig = SignatureBytes::new(std::fs::read(d.join("ossl.der")).unwrap());
        }
        _ => unreachable!(),
    }
    assert_ne!(by_openssl, parsed, "ECDSA signatures are randomized");
    keys::verify_statement(&by_openssl, &public).unwrap();
}
