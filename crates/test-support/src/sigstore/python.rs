//! The independent verifier: the PyPI `sigstore` 4.x client
//! (sigstore-python, installed by `scripts/lib/setup.sh:
//! ensure_sigstore_python`), run as `python3 -m sigstore` against the
//! loopback instance's trust config.

use std::path::Path;
use std::process::{Command, Output};

use super::SigstoreServices;

/// `python3 -m sigstore ARGS`; fails the test with what to run when the
/// package is missing.
pub fn sigstore(args: &[&str]) -> Output {
    let check = Command::new("python3")
        .args([
            "-c",
            "import sigstore, sys; sys.exit(0 if sigstore.__version__.startswith('4.') else 1)",
        ])
        .output()
        .expect("python3 runs (scripts/lib/setup.sh: ensure_sigstore_python)");
    assert!(
        check.status.success(),
        "the PyPI `sigstore` 4.x package is missing: run scripts/test.sh \
         (scripts/lib/setup.sh: ensure_sigstore_python)\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    Command::new("python3")
        .args(["-m", "sigstore"])
        .args(args)
        .env("SIGSTORE_NO_CACHE", "1")
        .output()
        .expect("python3 -m sigstore runs")
}

/// Status and both streams, for assertion messages.
pub fn describe(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `sigstore verify identity` of `file` with `bundle`, for `identity` from
/// the instance's OIDC issuer.
pub fn verify_identity(s: &SigstoreServices, bundle: &Path, file: &Path, identity: &str) -> Output {
    sigstore(&[
        "--trust-config",
        s.trust_config_path().to_str().unwrap(),
        "verify",
        "identity",
        "--bundle",
        bundle.to_str().unwrap(),
        "--cert-identity",
        identity,
        "--cert-oidc-issuer",
        &s.issuer_url(),
        file.to_str().unwrap(),
    ])
}
