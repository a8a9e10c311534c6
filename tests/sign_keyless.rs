//! Keyless signing end to end through the real binary, against the loopback
//! Sigstore services of `squizzle_test_support::sigstore` (OIDC issuer, Fulcio-style
//! CA with embedded SCTs, Rekor-style log with RFC 6962 proofs), a real
//! docker-registry and a real PostgreSQL: build -> sign -> push -> verify ->
//! apply, sigstore-python checking squizzle's bundles and squizzle checking
//! sigstore-python's, and every hostile case refused by verify AND apply with
//! exit 9 before the database is touched.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;
use squizzle_test_support::World;
use squizzle_test_support::pg;
use squizzle_test_support::registry::{Auth, Registry, RegistryOptions};
use squizzle_test_support::sigstore::{self, Identity, SigstoreServices, TokenOptions, python};

const WORKFLOW: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0";

/// A change made to a bundle's JSON.
type Mutation<'a> = Box<dyn Fn(&mut Value) + 'a>;

/// Signer rules for the config (TOML array-of-tables text).
fn signer(identity: &str, issuer: &str) -> String {
    format!("[[security.signers]]\nidentity = {identity:?}\nissuer = {issuer:?}\n")
}

fn config(s: &SigstoreServices, registry: Option<&str>, signers: &str) -> String {
    let registry = registry
        .map(|u| format!("[registry]\nurl = \"{u}/acme/db\"\n\n"))
        .unwrap_or_default();
    format!(
        "[project]\nmigrations = \"migrations\"\n\n{registry}[security]\nrequire_signature = true\nfulcio_url = {:?}\nrekor_url = {:?}\ntrusted_root = {:?}\n\n{signers}",
        s.fulcio_url(),
        s.rekor_url(),
        s.trusted_root_path().display().to_string(),
    )
}

fn token(s: &SigstoreServices) -> String {
    s.mint_token(&Identity::uri(WORKFLOW))
}

/// A project with 1.0.0 built and signed keylessly as WORKFLOW.
fn signed(s: &SigstoreServices, registry: Option<&str>) -> World {
    let w = World::plain();
    w.config(&config(s, registry, &signer(WORKFLOW, &s.issuer_url())));
    w.build_ok("1.0.0");
    w.run_with_env(&["sign", "1.0.0"], &[("SIGSTORE_ID_TOKEN", &token(s))])
        .success();
    w
}

fn bundle_path(version: &str) -> String {
    format!("db/tarballs/squizzle-{version}.sigstore.json")
}

/// Keeps only the bundle file as evidence (drops the signature referrers).
fn drop_referrers(w: &World) {
    let mut index = w.index();
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["artifactType"] != "application/vnd.dev.sigstore.bundle.v0.3+json");
    w.write_index(&index);
}

/// The hostile case must be refused by `verify` and by `apply` with exit 9,
/// with `reason` in the message, and apply must not touch the database.
#[track_caller]
fn refused(w: &World, db: &str, version: &str, reason: &str) {
    w.run(&["verify", version, "--offline"])
        .code(9)
        .says(reason);
    w.run_with_env(
        &["apply", version, "--offline"],
        &[("DATABASE_URL", &format!("{db}?sslmode=disable"))],
    )
    .code(9)
    .says(reason);
    let schemas = pg::shared().query(
        db,
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'squizzle'",
    );
    assert_eq!(
        schemas[0][0].as_deref(),
        Some("0"),
        "apply touched the database"
    );
}

#[test]
fn build_sign_push_verify_apply_end_to_end() {
    let s = SigstoreServices::start();
    let reg = Registry::start(RegistryOptions { auth: Auth::None });
    let server = pg::shared();
    let db = server.create_database("keyless_e2e");

    // CI: build --sign, then push (the bundle travels as a referrer).
    let ci = World::plain();
    ci.config(&config(
        &s,
        Some(&reg.url()),
        &signer(WORKFLOW, &s.issuer_url()),
    ));
    let run = ci
        .run_with_env(
            &["build", "1.0.0", "--sign"],
            &[("SIGSTORE_ID_TOKEN", &token(&s))],
        )
        .success()
        .says("Authenticating with Sigstore...")
        .says(&format!("Logged in as {WORKFLOW}"))
        .says("Recording in transparency log...")
        .says("Entry: 0");
    assert!(!run.output().contains(&token(&s)[..40]), "token leaked");
    let digest = ci.tag_digest("1.0.0");
    ci.run(&["push", "1.0.0"]).success();
    ci.run(&["list"]).success().says("signed");

    // Deploy: an empty checkout with the configuration only.
    let mut deploy = World::named("deploy");
    deploy.config(&config(
        &s,
        Some(&reg.url()),
        &signer(WORKFLOW, &s.issuer_url()),
    ));
    let v = deploy.run(&["verify", "1.0.0"]).success();
    assert!(v.stderr.contains("Pulled 1.0.0"), "{}", v.stderr);
    assert!(
        v.stdout.contains(&format!("Signed by: {WORKFLOW}")),
        "{}",
        v.stdout
    );
    assert!(
        v.stdout.contains(&format!("Issuer: {}", s.issuer_url())),
        "{}",
        v.stdout
    );
    assert!(
        v.stdout
            .contains("Transparency log index: 0 (inclusion proof verified)"),
        "{}",
        v.stdout
    );
    let json = deploy
        .run(&["verify", "1.0.0", "--output", "json"])
        .success()
        .json();
    assert_eq!(json["signature"]["identity"], WORKFLOW);
    assert_eq!(json["signature"]["logIndex"], 0);

    deploy.set_env("DATABASE_URL", &format!("{db}?sslmode=disable"));
    deploy
        .run(&["apply", "1.0.0"])
        .success()
        .says("Applied 1.0.0");
    let row = server.query(
        &db,
        "SELECT artifact_digest, signer_identity, signer_issuer, rekor_log_index::text FROM squizzle.releases",
    );
    assert_eq!(row.len(), 1);
    assert_eq!(row[0][0].as_deref(), Some(digest.as_str()));
    assert_eq!(row[0][1].as_deref(), Some(WORKFLOW));
    assert_eq!(row[0][2].as_deref(), Some(s.issuer_url().as_str()));
    assert_eq!(row[0][3].as_deref(), Some("0"));

    // Signed after the push: pushing again publishes the new signature, and a
    // deploy checkout that pulled 1.1.0 unsigned sees it on its next verify.
    ci.write("migrations/0004_more.sql", "CREATE TABLE more (id int);\n");
    ci.build_ok("1.1.0");
    ci.run(&["push", "1.1.0"]).success();
    deploy
        .run(&["verify", "1.1.0"])
        .code(9)
        .says("No signature found");
    let workflow_110 = WORKFLOW.replace("v1.0.0", "v1.1.0");
    ci.run_with_env(
        &["sign", "1.1.0"],
        &[(
            "SIGSTORE_ID_TOKEN",
            &s.mint_token(&Identity::uri(&workflow_110)),
        )],
    )
    .success();
    ci.run(&["push", "1.1.0"]).success().says("new signature");
    // The deploy policy pins v1.0.0's workflow run exactly: 1.1.0 is refused...
    deploy
        .run(&["verify", "1.1.0"])
        .code(9)
        .says("not an accepted signer");
    // ...and accepted by a policy that accepts any version tag of the workflow.
    deploy.config(&config(
        &s,
        Some(&reg.url()),
        &format!(
            "[[security.signers]]\nidentity_regexp = 'https://github\\.com/acme/app/\\.github/workflows/release\\.yml@refs/tags/v.*'\nissuer = {:?}\n",
            s.issuer_url()
        ),
    ));
    deploy
        .run(&["apply", "1.1.0"])
        .success()
        .says("Applied 1.1.0");
}

#[test]
fn sigstore_python_accepts_squizzle_bundles_and_squizzle_accepts_sigstore_python_signatures() {
    let s = SigstoreServices::start();
    let w = signed(&s, None);
    // The signed artifact is the OCI manifest: give sigstore-python its bytes.
    let manifest = w.blob_path(&w.tag_digest("1.0.0"));
    let bundle = w.path(&bundle_path("1.0.0"));
    let o = python::verify_identity(&s, &bundle, &manifest, WORKFLOW);
    assert!(
        o.status.success(),
        "sigstore-python must accept: {}",
        python::describe(&o)
    );
    let o = python::verify_identity(
        &s,
        &bundle,
        &manifest,
        "https://github.com/evil/app/.github/workflows/x.yml@refs/heads/main",
    );
    assert!(
        !o.status.success(),
        "sigstore-python must refuse another identity: {}",
        python::describe(&o)
    );
    // Not for another artifact either (the tarball is not what was signed).
    let tarball = w.path("db/tarballs/squizzle-1.0.0.tar.gz");
    let o = python::verify_identity(&s, &bundle, &tarball, WORKFLOW);
    assert!(
        !o.status.success(),
        "sigstore-python must refuse another artifact: {}",
        python::describe(&o)
    );

    // sigstore-python signs the manifest; squizzle verifies that bundle.
    let py_bundle = w.path("py.sigstore.json");
    let o = python::sigstore(&[
        "--trust-config",
        s.trust_config_path().to_str().unwrap(),
        "sign",
        "--identity-token",
        &token(&s),
        "--bundle",
        py_bundle.to_str().unwrap(),
        manifest.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "sigstore sign: {}",
        python::describe(&o)
    );
    drop_referrers(&w);
    w.remove(&bundle_path("1.0.0"));
    w.run(&["verify", "1.0.0"])
        .code(9)
        .says("No signature found");
    w.run(&["verify", "1.0.0", "--bundle", "py.sigstore.json"])
        .success()
        .says(&format!("Signed by: {WORKFLOW}"));
}

#[test]
fn policy_mismatches_are_refused_by_verify_and_apply() {
    let s = SigstoreServices::start();
    let db = pg::shared().create_database("keyless_policy");
    let w = signed(&s, None);
    w.run(&["verify", "1.0.0", "--offline"]).success();

    // Wrong identity, wrong issuer, a pattern that only matches a prefix.
    w.config(&config(
        &s,
        None,
        &signer(
            "https://github.com/acme/app/.github/workflows/other.yml@refs/tags/v1.0.0",
            &s.issuer_url(),
        ),
    ));
    refused(&w, &db, "1.0.0", "not an accepted signer");
    w.config(&config(
        &s,
        None,
        &signer(WORKFLOW, "https://token.actions.githubusercontent.com"),
    ));
    refused(&w, &db, "1.0.0", "not an accepted signer");
    w.config(&config(
        &s,
        None,
        &format!("[[security.signers]]\nidentity_regexp = 'https://github\\.com/acme/app/'\nissuer = {:?}\n", s.issuer_url()),
    ));
    refused(&w, &db, "1.0.0", "not an accepted signer");
    // The command-line flags replace the configured rules.
    w.run(&[
        "verify",
        "1.0.0",
        "--offline",
        "--certificate-identity",
        WORKFLOW,
        "--certificate-oidc-issuer",
        &s.issuer_url(),
    ])
    .success();
    w.run(&[
        "verify",
        "1.0.0",
        "--offline",
        "--certificate-identity-regexp",
        "https://github\\.com/acme/.*",
        "--certificate-oidc-issuer-regexp",
        "http://127\\.0\\.0\\.1:[0-9]+",
    ])
    .success();
    w.run(&[
        "verify",
        "1.0.0",
        "--offline",
        "--certificate-identity",
        WORKFLOW,
    ])
    .code(2)
    .says("issuer");

    // A release trusted by another root (the public-good one) fails the chain.
    w.config(&format!(
        "[project]\nmigrations = \"migrations\"\n[security]\nrequire_signature = true\n{}",
        signer(WORKFLOW, &s.issuer_url())
    ));
    refused(&w, &db, "1.0.0", "trusted root");
}

#[test]
fn tampered_or_misbound_bundles_are_refused_by_verify_and_apply() {
    let s = SigstoreServices::start();
    let db = pg::shared().create_database("keyless_tamper");
    let w = signed(&s, None);
    // Two more signed versions, so the log has several entries and proofs
    // have hashes to tamper with.
    for v in ["1.1.0", "1.2.0"] {
        w.write(
            &format!(
                "migrations/0{}_x.sql",
                100 + v.len() + v.as_bytes()[2] as usize
            ),
            "SELECT 1;\n",
        );
        w.build_ok(v);
        w.run_with_env(&["sign", v], &[("SIGSTORE_ID_TOKEN", &token(&s))])
            .success();
    }
    // Signed again last: its proof now runs through a tree of four entries.
    w.run_with_env(&["sign", "1.0.0"], &[("SIGSTORE_ID_TOKEN", &token(&s))])
        .success();
    drop_referrers(&w);
    let original: Value = w.read_json(&bundle_path("1.0.0"));
    let other: Value = w.read_json(&bundle_path("1.1.0"));
    assert!(
        !original["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"]
            .as_array()
            .unwrap()
            .is_empty(),
        "the last entry of a 4-entry log has an audit path"
    );
    w.run(&["verify", "1.0.0", "--offline"]).success();

    let put = |b: &Value| w.write(&bundle_path("1.0.0"), serde_json::to_vec(b).unwrap());
    let cases: Vec<(&str, Mutation, &str)> = vec![
        (
            "bundle of another version",
            Box::new(|b| *b = other.clone()),
            "another artifact",
        ),
        (
            "tampered DSSE payload",
            Box::new(|b| {
                let p = B64
                    .decode(b["dsseEnvelope"]["payload"].as_str().unwrap())
                    .unwrap();
                let mut st: Value = serde_json::from_slice(&p).unwrap();
                st["predicate"] = serde_json::json!({"injected": true});
                b["dsseEnvelope"]["payload"] =
                    Value::String(B64.encode(serde_json::to_vec(&st).unwrap()));
            }),
            "DSSE signature verification failed",
        ),
        (
            "tampered inclusion proof",
            Box::new(|b| {
                let h =
                    &mut b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"][0];
                let mut raw = B64.decode(h.as_str().unwrap()).unwrap();
                raw[0] ^= 1;
                *h = Value::String(B64.encode(raw));
            }),
            "invalid inclusion proof",
        ),
        (
            "truncated inclusion proof",
            Box::new(|b| {
                b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"]
                    .as_array_mut()
                    .unwrap()
                    .pop();
            }),
            "invalid inclusion proof",
        ),
        (
            "log entry body of another entry",
            Box::new(|b| {
                b["verificationMaterial"]["tlogEntries"][0]["canonicalizedBody"] =
                    other["verificationMaterial"]["tlogEntries"][0]["canonicalizedBody"].clone();
            }),
            "SET verification failed",
        ),
        (
            "no transparency log entry",
            Box::new(|b| {
                b["verificationMaterial"]["tlogEntries"] = serde_json::json!([]);
            }),
            "must have an inclusion proof",
        ),
    ];
    for (what, mutate, reason) in cases {
        let mut b = original.clone();
        mutate(&mut b);
        put(&b);
        eprintln!("case: {what}");
        refused(&w, &db, "1.0.0", reason);
    }
    put(&original);
    w.run(&["verify", "1.0.0", "--offline"]).success();
}

#[test]
fn certificates_the_trust_root_does_not_vouch_for_are_refused() {
    let s = SigstoreServices::start();
    let db = pg::shared().create_database("keyless_certs");
    let w = World::plain();
    w.config(&config(&s, None, &signer(WORKFLOW, &s.issuer_url())));
    w.build_ok("1.0.0");
    let sign = |w: &World| {
        w.run_with_env(&["sign", "1.0.0"], &[("SIGSTORE_ID_TOKEN", &token(&s))])
            .success();
    };
    // A certificate from a CA outside the trusted root.
    s.use_untrusted_ca(true);
    sign(&w);
    s.use_untrusted_ca(false);
    refused(&w, &db, "1.0.0", "certificate chain");
    drop_referrers(&w);
    // A certificate that had expired when the log recorded the signature.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    s.set_cert_validity(Some((now - 7200, now - 3600)));
    sign(&w);
    s.set_cert_validity(None);
    drop_referrers(&w);
    refused(&w, &db, "1.0.0", "CertExpired");
    // A log entry stamped in the future (a log whose clock lies).
    s.set_log_time_offset(3600);
    sign(&w);
    s.set_log_time_offset(0);
    drop_referrers(&w);
    refused(&w, &db, "1.0.0", "in the future");
    // A correct one is accepted: the refusals were about the certificates.
    sign(&w);
    w.run(&["verify", "1.0.0", "--offline"]).success();
}

#[test]
fn unsigned_releases_and_bad_tokens_are_refused_clearly() {
    let s = SigstoreServices::start();
    let db = pg::shared().create_database("keyless_unsigned");
    let w = World::plain();
    w.config(&config(&s, None, &signer(WORKFLOW, &s.issuer_url())));
    w.build_ok("1.0.0");
    refused(&w, &db, "1.0.0", "No signature found");
    // No token anywhere: usage error naming the ways to get one.
    w.run(&["sign", "1.0.0"]).code(2).says("SIGSTORE_ID_TOKEN");
    // Not a JWT, expired, wrong audience, unknown signing key.
    w.run_with_env(&["sign", "1.0.0"], &[("SIGSTORE_ID_TOKEN", "not-a-jwt")])
        .code(2);
    let expired = s.mint_token_with(&TokenOptions {
        expires_in: -600,
        issued_in: -1200,
        ..TokenOptions::new(Identity::uri(WORKFLOW))
    });
    w.run_with_env(&["sign", "1.0.0"], &[("SIGSTORE_ID_TOKEN", &expired)])
        .code(2)
        .says("expired");
    for bad in [
        TokenOptions {
            audience: "not-sigstore".into(),
            ..TokenOptions::new(Identity::uri(WORKFLOW))
        },
        TokenOptions {
            foreign_key: true,
            ..TokenOptions::new(Identity::uri(WORKFLOW))
        },
    ] {
        let t = s.mint_token_with(&bad);
        let r = w
            .run_with_env(&["sign", "1.0.0"], &[("SIGSTORE_ID_TOKEN", &t)])
            .code(4);
        assert!(
            !r.output().contains(&t),
            "the token leaked:\n{}",
            r.output()
        );
    }
    // Unreachable services: connection error, nothing written.
    let dead = "[project]\nmigrations = \"migrations\"\n[security]\nfulcio_url = \"http://127.0.0.1:9\"\nrekor_url = \"http://127.0.0.1:9\"\n";
    w.config(dead);
    w.run_with_env(&["sign", "1.0.0"], &[("SIGSTORE_ID_TOKEN", &token(&s))])
        .code(3);
    assert!(!w.exists(&bundle_path("1.0.0")));
}

#[test]
fn a_configured_tsa_timestamps_every_bundle_and_a_late_timestamp_is_refused() {
    let s = SigstoreServices::start_with(sigstore::SigstoreOptions { tsa: true });
    let db = pg::shared().create_database("keyless_tsa");
    let tsa = s.tsa_url().expect("the TSA runs");
    let w = World::plain();
    let with_tsa = config(&s, None, &signer(WORKFLOW, &s.issuer_url())).replacen(
        "rekor_url",
        &format!("tsa_url = {tsa:?}\nrekor_url"),
        1,
    );
    w.config(&with_tsa);
    w.build_ok("1.0.0");
    w.run_with_env(&["sign", "1.0.0"], &[("SIGSTORE_ID_TOKEN", &token(&s))])
        .success();
    let b = w.read_json(&bundle_path("1.0.0"));
    assert_eq!(
        b["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "{b:#}"
    );
    w.run(&["verify", "1.0.0", "--offline"]).success();
    // A timestamp authority whose clock is three hours late: the signed time
    // no longer falls inside the certificate's validity.
    s.set_tsa_time_offset(3 * 3600);
    w.run_with_env(&["sign", "1.0.0"], &[("SIGSTORE_ID_TOKEN", &token(&s))])
        .success();
    drop_referrers(&w);
    refused(&w, &db, "1.0.0", "Signature verification failed");
}

#[test]
fn offline_verification_never_contacts_the_registry() {
    let s = SigstoreServices::start();
    // A registry address where nothing listens: any contact would fail.
    let w = signed(&s, Some("127.0.0.1:9"));
    w.run(&["verify", "1.0.0", "--offline"])
        .success()
        .says("Signature verified");
    let online = w.run(&["verify", "1.0.0"]).success();
    assert!(
        online.output().contains("Could not check the registry"),
        "{}",
        online.output()
    );
}

#[test]
fn ambient_github_actions_credentials_are_used_and_never_shown() {
    use std::sync::{Arc, Mutex};
    let s = SigstoreServices::start();
    let jwt = token(&s);
    // GitHub's ID-token endpoint: answers {"value": JWT} to a bearer request.
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let addr = server.server_addr().to_ip().unwrap();
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let log = Arc::clone(&seen);
    let answer = jwt.clone();
    let handle = std::thread::spawn(move || {
        if let Ok(req) = server.recv() {
            let auth = req
                .headers()
                .iter()
                .find(|h| h.field.equiv("Authorization"))
                .map(|h| h.value.to_string())
                .unwrap_or_default();
            log.lock().unwrap().push((req.url().to_owned(), auth));
            let body = serde_json::json!({ "value": answer }).to_string();
            let _ = req.respond(tiny_http::Response::from_string(body));
        }
    });
    let w = World::plain();
    w.config(&config(&s, None, &signer(WORKFLOW, &s.issuer_url())));
    w.build_ok("1.0.0");
    let request_token = "ghs_request_token_that_must_stay_secret";
    let r = w
        .run_with_env(
            &["sign", "1.0.0", "-vv"],
            &[
                ("GITHUB_ACTIONS", "true"),
                (
                    "ACTIONS_ID_TOKEN_REQUEST_URL",
                    &format!("http://{addr}/token?api-version=2.0"),
                ),
                ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", request_token),
            ],
        )
        .success()
        .says("token from CI credentials");
    handle.join().unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].0.contains("audience=sigstore"), "{seen:?}");
    assert_eq!(seen[0].1, format!("Bearer {request_token}"));
    assert!(
        !r.output().contains(request_token),
        "request token leaked:\n{}",
        r.output()
    );
    assert!(
        !r.output().contains(&jwt),
        "identity token leaked:\n{}",
        r.output()
    );
    w.run(&["verify", "1.0.0", "--offline"]).success();
}

#[test]
fn a_private_instance_can_be_named_by_its_signing_config() {
    // sigstore-sign takes a timestamp authority from a signing config (it
    // refuses one without), so this instance runs one.
    let s = SigstoreServices::start_with(sigstore::SigstoreOptions { tsa: true });
    let w = World::plain();
    // No URLs: the services come from the instance's signing_config.json.
    let cfg = config(&s, None, &signer(WORKFLOW, &s.issuer_url()))
        .replacen(&format!("fulcio_url = {:?}\n", s.fulcio_url()), "", 1)
        .replacen(
            &format!("rekor_url = {:?}\n", s.rekor_url()),
            &format!(
                "signing_config = {:?}\n",
                s.signing_config_path().display().to_string()
            ),
            1,
        );
    assert!(
        !cfg.contains("fulcio_url") && cfg.contains("signing_config"),
        "{cfg}"
    );
    w.config(&cfg);
    w.build_ok("1.0.0");
    w.run_with_env(&["sign", "1.0.0"], &[("SIGSTORE_ID_TOKEN", &token(&s))])
        .success()
        .says(&format!("({})", s.rekor_url()));
    let b = w.read_json(&bundle_path("1.0.0"));
    assert!(
        b["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"][0].is_object(),
        "the config's TSA timestamped the bundle: {b:#}"
    );
    w.run(&["verify", "1.0.0", "--offline"]).success();
    // A file that is not a signing config is a configuration error, before
    // any token is used.
    w.write("bogus.json", "{}");
    w.config(&cfg.replace(&s.signing_config_path().display().to_string(), "bogus.json"));
    let r = w
        .run_with_env(&["sign", "1.0.0"], &[("SIGSTORE_ID_TOKEN", &token(&s))])
        .code(2)
        .says("bogus.json");
    assert!(!r.output().contains("Authenticating"), "{}", r.output());
}

/// Issue: a trusted key and no signer rule let a keyless signature of ANY
/// identity through. Every (policy) x (bundle kind): keyless bundles count
/// only against a signer rule, key bundles only against a trusted key, and a
/// kind nobody is trusted for is refused (exit 9) saying what to configure.
#[test]
fn each_kind_of_signature_is_accepted_only_by_its_own_kind_of_policy() {
    let s = SigstoreServices::start();
    let stranger = "https://github.com/mallory/fork/.github/workflows/release.yml@refs/heads/main";
    // The release, signed keylessly by someone nobody named, and with a key.
    let make = |signers: &str, keys: bool| {
        let w = World::plain();
        let mut cfg = config(&s, None, signers);
        if keys {
            cfg = cfg.replace(
                "[security]\n",
                "[security]\npublic_keys = [\"squizzle.pub\"]\n",
            );
        }
        w.config(&cfg);
        w.run_with_env(&["keygen"], &[("SQUIZZLE_KEY_PASSWORD", "pw")])
            .success();
        w.build_ok("1.0.0");
        w
    };
    let sign_keyless = |w: &World, who: &str| {
        w.run_with_env(
            &["sign", "1.0.0"],
            &[("SIGSTORE_ID_TOKEN", &s.mint_token(&Identity::uri(who)))],
        )
        .success();
    };
    let sign_key = |w: &World| {
        w.run_with_env(
            &["sign", "1.0.0", "--key", "squizzle.key"],
            &[("SQUIZZLE_KEY_PASSWORD", "pw")],
        )
        .success();
    };
    let rule = signer(WORKFLOW, &s.issuer_url());
    let db = pg::shared().create_database("kinds");

    // Keys only: the stranger's keyless signature is refused, verify and apply.
    let w = make("", true);
    sign_keyless(&w, stranger);
    refused(&w, &db, "1.0.0", "no keyless signer is trusted");
    w.run(&["verify", "1.0.0", "--offline"])
        .code(9)
        .says("add [[security.signers]]")
        .does_not_say("any identity");
    // ... and a key signature passes.
    let w = make("", true);
    sign_key(&w);
    w.run(&["verify", "1.0.0", "--offline"]).success();

    // Rules only: a key signature is refused (no key trusted), a keyless one
    // by the named workflow passes, a stranger's is refused.
    let w = make(&rule, false);
    sign_key(&w);
    refused(&w, &db, "1.0.0", "no public key is trusted");
    let w = make(&rule, false);
    sign_keyless(&w, WORKFLOW);
    w.run(&["verify", "1.0.0", "--offline"]).success();
    let w = make(&rule, false);
    sign_keyless(&w, stranger);
    refused(&w, &db, "1.0.0", "not an accepted signer");

    // Both: each kind is judged by its own list.
    let w = make(&rule, true);
    sign_key(&w);
    w.run(&["verify", "1.0.0", "--offline"]).success();
    let w = make(&rule, true);
    sign_keyless(&w, stranger);
    refused(&w, &db, "1.0.0", "not an accepted signer");

    // Neither, with a signature required: a configuration error, as before.
    let w = make("", false);
    sign_key(&w);
    w.run(&["verify", "1.0.0", "--offline"])
        .code(2)
        .says("nobody is trusted to sign");
}

/// A cosign-shaped `sign-blob --key k --bundle b` bundle over `blob`: the
/// signature of the bytes with `key`, logged as a hashedrekord entry in the
/// loopback Rekor (over its HTTP API), the entry's proof, checkpoint and
/// signed entry timestamp as Rekor answered them, and cosign's key hint
/// (base64 of the SHA-256 of the DER public key, unlike squizzle's hex one).
fn key_signed_message_bundle(
    s: &SigstoreServices,
    key: &sigstore::keys::EcKey,
    blob: &[u8],
) -> Value {
    let digest = sigstore::keys::sha256(blob);
    let sig = key.sign(blob);
    let proposed = serde_json::json!({
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": { "hash": { "algorithm": "sha256", "value": hex::encode(digest) } },
            "signature": {
                "content": B64.encode(&sig),
                "publicKey": { "content": B64.encode(key.public_pem()) },
            },
        },
    });
    let url = format!("{}/api/v1/log/entries", s.rekor_url());
    let answer: Value = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let r = sigstore_sign::reqwest::Client::new()
                .post(&url)
                .json(&proposed)
                .send()
                .await
                .expect("POST to the loopback Rekor");
            assert_eq!(r.status().as_u16(), 201, "Rekor refused the entry");
            r.json().await.expect("Rekor's answer is JSON")
        });
    let entry = answer.as_object().unwrap().values().next().unwrap().clone();
    let proof = &entry["verification"]["inclusionProof"];
    let hashes: Vec<Value> = proof["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| Value::String(B64.encode(hex::decode(h.as_str().unwrap()).unwrap())))
        .collect();
    serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {
            "publicKey": { "hint": B64.encode(key.key_id()) },
            "tlogEntries": [{
                "logIndex": entry["logIndex"].to_string(),
                "logId": { "keyId": B64.encode(hex::decode(entry["logID"].as_str().unwrap()).unwrap()) },
                "kindVersion": { "kind": "hashedrekord", "version": "0.0.1" },
                "integratedTime": entry["integratedTime"].to_string(),
                "inclusionPromise": { "signedEntryTimestamp": entry["verification"]["signedEntryTimestamp"] },
                "inclusionProof": {
                    "logIndex": proof["logIndex"].to_string(),
                    "rootHash": B64.encode(hex::decode(proof["rootHash"].as_str().unwrap()).unwrap()),
                    "treeSize": proof["treeSize"].to_string(),
                    "hashes": hashes,
                    "checkpoint": { "envelope": proof["checkpoint"] },
                },
                "canonicalizedBody": entry["body"],
            }],
        },
        "messageSignature": {
            "messageDigest": { "algorithm": "SHA2_256", "digest": B64.encode(digest) },
            "signature": B64.encode(&sig),
        },
    })
}

/// Issue 11 §4: a plain message signature made with a key pair and logged in
/// Rekor (as `cosign sign-blob --key k --bundle b` writes it) was refused "by
/// design". It now counts when a trusted key verifies it AND its log entry
/// checks out; another key, no trusted key, a broken or missing log entry, a
/// signature the log never saw, or another artifact are refused (exit 9,
/// verify and apply, the database untouched).
#[test]
fn key_pair_message_signatures_with_a_log_entry_count_only_for_a_trusted_key() {
    let s = SigstoreServices::start();
    let db = pg::shared().create_database("key_message");
    let w = World::plain();
    let with_keys = |keys: &str, signers: &str| {
        config(&s, None, signers).replace("[security]\n", &format!("[security]\n{keys}"))
    };
    w.config(&with_keys("public_keys = [\"cosign.pub\"]\n", ""));
    w.build_ok("1.0.0");
    w.write("migrations/0100_more.sql", "SELECT 2;\n");
    w.build_ok("1.1.0");
    let key = sigstore::keys::EcKey::generate();
    let other_key = sigstore::keys::EcKey::generate();
    w.write("cosign.pub", key.public_pem());
    w.write("other.pub", other_key.public_pem());
    let manifest = w.blob(&w.tag_digest("1.0.0"));
    let bundle = key_signed_message_bundle(&s, &key, &manifest);
    let put = |b: &Value| w.write(&bundle_path("1.0.0"), serde_json::to_vec(b).unwrap());
    put(&bundle);

    let ok = w.run(&["verify", "1.0.0", "--offline"]).success();
    let fingerprint = hex::encode(key.key_id());
    ok.says(&format!("Signed by: key {fingerprint} ("))
        .says("Transparency log index: ")
        .says("Signature verified");
    // The same through --key on the command line, and in JSON.
    w.config(&with_keys("", ""));
    w.run(&["verify", "1.0.0", "--offline", "--key", "cosign.pub"])
        .success();
    let json = w
        .run(&[
            "verify",
            "1.0.0",
            "--offline",
            "--key",
            "cosign.pub",
            "--output",
            "json",
        ])
        .success();
    let compact: String = json.output().split_whitespace().collect();
    assert!(
        compact.contains("\"transparencyLog\":true"),
        "{}",
        json.output()
    );

    // Another key trusted: refused.
    w.config(&with_keys("public_keys = [\"other.pub\"]\n", ""));
    refused(&w, &db, "1.0.0", "other.pub: invalid signature");
    // No key trusted, only a signer rule: refused, saying what to configure.
    w.config(&with_keys("", &signer(WORKFLOW, &s.issuer_url())));
    refused(&w, &db, "1.0.0", "no public key is trusted");

    w.config(&with_keys("public_keys = [\"cosign.pub\"]\n", ""));
    let other_manifest = w.blob(&w.tag_digest("1.1.0"));
    let cases: Vec<(&str, Mutation, &str)> = vec![
        (
            "no transparency-log entry",
            Box::new(|b| b["verificationMaterial"]["tlogEntries"] = serde_json::json!([])),
            "must carry a transparency-log entry",
        ),
        (
            "tampered inclusion proof root",
            Box::new(|b| {
                let h =
                    &mut b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["rootHash"];
                let mut raw = B64.decode(h.as_str().unwrap()).unwrap();
                raw[0] ^= 1;
                *h = Value::String(B64.encode(raw));
            }),
            "root hash does not match",
        ),
        (
            "a valid signature by the key that the log never recorded",
            Box::new(|b| {
                b["messageSignature"]["signature"] = Value::String(B64.encode(key.sign(&manifest)));
            }),
            "signature in bundle does not match signature in Rekor entry",
        ),
        (
            "the bundle of another release",
            Box::new(|b| *b = key_signed_message_bundle(&s, &key, &other_manifest)),
            "another artifact",
        ),
    ];
    for (what, mutate, reason) in cases {
        let mut b = bundle.clone();
        mutate(&mut b);
        put(&b);
        eprintln!("case: {what}");
        refused(&w, &db, "1.0.0", reason);
    }
    put(&bundle);
    w.run(&["verify", "1.0.0", "--offline"]).success();
    // apply accepts it too and records the key as the signer.
    w.run_with_env(
        &["apply", "1.0.0", "--offline"],
        &[("DATABASE_URL", &format!("{db}?sslmode=disable"))],
    )
    .success()
    .says("Applied 1.0.0");
}

/// Issue 11 §4: a bundle whose certificate chain also carries the root CA
/// was accepted silently. It is refused (exit 9, verify and apply), naming
/// the root; the same chain without the root (leaf and intermediate, as v0.2
/// bundles carry it) is still accepted, so the refusal is about the root.
#[test]
fn a_certificate_chain_that_carries_the_root_ca_is_refused() {
    let s = SigstoreServices::start();
    let db = pg::shared().create_database("keyless_root_chain");
    let w = signed(&s, None);
    drop_referrers(&w);
    let original: Value = w.read_json(&bundle_path("1.0.0"));
    let leaf = original["verificationMaterial"]["certificate"]["rawBytes"].clone();
    assert!(leaf.is_string(), "a v0.3 bundle holds the leaf alone");
    let chain: Vec<Value> = s
        .trusted_ca()
        .chain_pem()
        .iter()
        .map(|p| Value::String(B64.encode(sigstore::der::from_pem(p, "CERTIFICATE").unwrap())))
        .collect();
    let with_chain = |certs: Vec<Value>| {
        let mut b = original.clone();
        b["mediaType"] =
            Value::String("application/vnd.dev.sigstore.bundle+json;version=0.2".into());
        let vm = b["verificationMaterial"].as_object_mut().unwrap();
        vm.remove("certificate");
        vm.insert(
            "x509CertificateChain".into(),
            serde_json::json!({ "certificates": certs.into_iter().map(|c| serde_json::json!({ "rawBytes": c })).collect::<Vec<_>>() }),
        );
        b
    };
    let put = |b: &Value| w.write(&bundle_path("1.0.0"), serde_json::to_vec(b).unwrap());

    put(&with_chain(vec![leaf.clone(), chain[0].clone()]));
    w.run(&["verify", "1.0.0", "--offline"])
        .success()
        .says(&format!("Signed by: {WORKFLOW}"));

    put(&with_chain(vec![
        leaf.clone(),
        chain[0].clone(),
        chain[1].clone(),
    ]));
    refused(&w, &db, "1.0.0", "carries a root CA (certificate 3 of 3");
    // sigstore-python, given the same bundle, only warns and accepts it:
    // squizzle is deliberately stricter (docs/signing.md says so).
    let o = python::verify_identity(
        &s,
        &w.path(&bundle_path("1.0.0")),
        &w.blob_path(&w.tag_digest("1.0.0")),
        WORKFLOW,
    );
    let said = python::describe(&o);
    assert!(o.status.success() && said.contains("root CA"), "{said}");
    // The root alone after the leaf too.
    put(&with_chain(vec![leaf.clone(), chain[1].clone()]));
    refused(&w, &db, "1.0.0", "carries a root CA (certificate 2 of 2");
    // Something that is not a certificate in the chain.
    put(&with_chain(vec![
        leaf.clone(),
        Value::String(B64.encode(b"not a certificate")),
    ]));
    refused(
        &w,
        &db,
        "1.0.0",
        "certificate 2 of the bundle's chain is not DER X.509",
    );

    put(&original);
    w.run(&["verify", "1.0.0", "--offline"]).success();
}

/// Issue 11 §1, the cells the matrix above leaves out: a key given on the
/// command line (`--key squizzle.pub`, nothing in the file) never lets a
/// stranger's keyless signature through, in verify and apply; with keys and
/// rules both configured the named workflow's keyless signature passes; with
/// neither, a keyless bundle is a configuration error like a key one; and
/// `require_signature = false` does not turn a refused signature into a pass.
#[test]
fn the_rest_of_the_policy_matrix_holds() {
    let s = SigstoreServices::start();
    let stranger = "https://github.com/mallory/fork/.github/workflows/release.yml@refs/heads/main";
    let rule = signer(WORKFLOW, &s.issuer_url());
    let db = pg::shared().create_database("kinds_rest");
    let project = |cfg: &str| {
        let w = World::plain();
        w.config(cfg);
        w.run_with_env(&["keygen"], &[("SQUIZZLE_KEY_PASSWORD", "pw")])
            .success();
        w.build_ok("1.0.0");
        w
    };
    let sign_as = |w: &World, who: &str| {
        w.run_with_env(
            &["sign", "1.0.0"],
            &[("SIGSTORE_ID_TOKEN", &s.mint_token(&Identity::uri(who)))],
        )
        .success();
    };

    // --key on the command line, no signer rule, no key in the file.
    let w = project(&config(&s, None, ""));
    sign_as(&w, stranger);
    for args in [
        &["verify", "1.0.0", "--offline", "--key", "squizzle.pub"][..],
        &[
            "verify",
            "1.0.0",
            "--offline",
            "--key",
            "squizzle.pub",
            "--output",
            "json",
        ],
    ] {
        w.run(args)
            .code(9)
            .says("no keyless signer is trusted")
            .says("[[security.signers]]")
            .does_not_say("any identity");
    }
    w.run_with_env(
        &["apply", "1.0.0", "--offline", "--key", "squizzle.pub"],
        &[("DATABASE_URL", &format!("{db}?sslmode=disable"))],
    )
    .code(9)
    .says("no keyless signer is trusted");
    let schemas = pg::shared().query(
        &db,
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'squizzle'",
    );
    assert_eq!(
        schemas[0][0].as_deref(),
        Some("0"),
        "apply touched the database"
    );

    // Keys and rules: the named workflow's keyless signature passes.
    let both = config(&s, None, &rule).replace(
        "[security]\n",
        "[security]\npublic_keys = [\"squizzle.pub\"]\n",
    );
    let w = project(&both);
    sign_as(&w, WORKFLOW);
    w.run(&["verify", "1.0.0", "--offline"])
        .success()
        .says(&format!("Signed by: {WORKFLOW}"));

    // Neither, signature required: a keyless bundle is a configuration
    // error (exit 2) naming what to configure, as a key one is.
    let w = project(&config(&s, None, ""));
    sign_as(&w, WORKFLOW);
    w.run(&["verify", "1.0.0", "--offline"])
        .code(2)
        .says("nobody is trusted to sign");

    // Signature not required, a key trusted, a stranger's keyless bundle:
    // still refused, never reported as verified.
    let optional = config(&s, None, "")
        .replace("require_signature = true\n", "require_signature = false\n")
        .replace(
            "[security]\n",
            "[security]\npublic_keys = [\"squizzle.pub\"]\n",
        );
    let w = project(&optional);
    sign_as(&w, stranger);
    refused(&w, &db, "1.0.0", "no keyless signer is trusted");
}

/// Issue 11 §3 (over-masking): when the CI credentials cannot be had, the
/// hint's YAML (`SIGSTORE_ID_TOKEN: aud: sigstore`) is shown whole, not
/// read as a token field and masked; the request token still never shows.
#[test]
fn the_ci_token_hint_is_shown_whole_and_the_request_token_never() {
    let s = SigstoreServices::start();
    let w = World::plain();
    w.config(&config(&s, None, &signer(WORKFLOW, &s.issuer_url())));
    w.build_ok("1.0.0");
    let request_token = "ghs_request_token_for_a_dead_endpoint";
    for args in [
        &["sign", "1.0.0"][..],
        &["sign", "1.0.0", "--output", "json"],
    ] {
        w.run_with_env(
            args,
            &[
                ("GITHUB_ACTIONS", "true"),
                (
                    "ACTIONS_ID_TOKEN_REQUEST_URL",
                    "http://127.0.0.1:9/token?api-version=2.0",
                ),
                ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", request_token),
            ],
        )
        .code(2)
        .says("SIGSTORE_ID_TOKEN: aud: sigstore")
        .does_not_say("***")
        .does_not_say(request_token);
    }
}
