//! Runs the loopback Sigstore services of the test harness
//! (`squizzle_test_support::sigstore`: OIDC
//! issuer, Fulcio, Rekor) for scripts outside `cargo test`, such as
//! `bench/verify.sh`.
//!
//! ```sh
//! cargo run --example sigstore_services -- 'https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0'
//! ```
//!
//! argv[1] is the identity (a URI SAN) the printed token is minted for. Prints
//! one JSON line to stdout:
//! `{"fulcio":..,"rekor":..,"issuer":..,"trustedRoot":..,"trustConfig":..,"token":..}`
//! (the token is valid for 10 minutes), then serves until stdin reaches EOF.
//! Dropping the services stops their threads and removes their temp dir, so
//! close stdin to stop it (killing the process leaves the dir behind).

use std::io::Write as _;
use std::process::ExitCode;

use squizzle_test_support::sigstore::{Identity, SigstoreServices};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(identity), None) = (args.next(), args.next()) else {
        eprintln!("usage: sigstore_services <identity URI>  (serves until stdin reaches EOF)");
        return ExitCode::from(2);
    };
    let services = SigstoreServices::start();
    let line = serde_json::json!({
        "fulcio": services.fulcio_url(),
        "rekor": services.rekor_url(),
        "issuer": services.issuer_url(),
        "trustedRoot": services.trusted_root_path(),
        "trustConfig": services.trust_config_path(),
        "token": services.mint_token(&Identity::uri(identity)),
    });
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        return ExitCode::FAILURE;
    }
    drop(out);
    // Serve until the caller closes our stdin (EOF) or reading it fails.
    let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
    drop(services);
    ExitCode::SUCCESS
}
