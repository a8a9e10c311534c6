//! Evidence in cosign's shape, judged by what it signs: every squizzle
//! referrer is a single-layer Sigstore bundle referrer as cosign v3 writes
//! them; an independent discovery that walks the referrers as `cosign
//! verify` does (every single-layer bundle referrer, verified against the
//! manifest digest by the PyPI sigstore client) finds exactly the signature,
//! never the provenance or the revocation; provenance written by another
//! tool (sigstore-python's `attest`, as GitHub's attest action and `cosign
//! attest` write it) counts as provenance; and the manifest's unsigned
//! annotation never decides what a bundle is.

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use squizzle_test_support::World;
use squizzle_test_support::registry::{Auth, Registry, RegistryOptions};
use squizzle_test_support::sigstore::{Identity, SigstoreServices, python};

const WORKFLOW: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0";
const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";
const SLSA: &str = "https://slsa.dev/provenance/v1";

fn config(s: &SigstoreServices, registry: Option<&str>, extra: &str) -> String {
    let registry = registry
        .map(|u| format!("[registry]\nurl = \"{u}/acme/db\"\n\n"))
        .unwrap_or_default();
    format!(
        "[project]\nmigrations = \"migrations\"\n\n{registry}[security]\nrequire_signature = true\nfulcio_url = {:?}\nrekor_url = {:?}\ntrusted_root = {:?}\n{extra}\n[[security.signers]]\nidentity = {WORKFLOW:?}\nissuer = {:?}\n",
        s.fulcio_url(),
        s.rekor_url(),
        s.trusted_root_path().display().to_string(),
        s.issuer_url(),
    )
}

fn token(s: &SigstoreServices) -> String {
    s.mint_token(&Identity::uri(WORKFLOW))
}

fn ci_env(s: &SigstoreServices) -> Vec<(String, String)> {
    vec![
        ("SIGSTORE_ID_TOKEN".into(), token(s)),
        ("GITHUB_ACTIONS".into(), "true".into()),
        ("GITHUB_SERVER_URL".into(), "https://github.com".into()),
        ("GITHUB_REPOSITORY".into(), "acme/app".into()),
        (
            "GITHUB_WORKFLOW_REF".into(),
            "acme/app/.github/workflows/release.yml@refs/tags/v1.0.0".into(),
        ),
        ("GITHUB_REF".into(), "refs/tags/v1.0.0".into()),
        ("GITHUB_SHA".into(), "a".repeat(40)),
        ("GITHUB_RUN_ID".into(), "4711".into()),
    ]
}

fn run_env(w: &World, args: &[&str], env: &[(String, String)]) -> squizzle_test_support::Run {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    w.run_with_env(args, &env)
}

/// Lists the referrers of `repo:tag` in the registry as cosign's
/// `GetBundles` does (the referrers API, else the `sha256-<hex>` tag
/// schema), keeps those `ociremote.Bundle` accepts (exactly one layer, of a
/// Sigstore bundle media type, whatever the `artifactType` or annotations),
/// and verifies each with `sigstore verify identity` against the manifest
/// bytes, as `cosign verify` checks every candidate against the digest.
const DISCOVER: &str = r#"
import hashlib, json, subprocess, sys, urllib.request, urllib.error, os
registry, repo, tag, identity, issuer, trust, out = sys.argv[1:8]
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
def get(path, accept):
    req = urllib.request.Request(f"http://{registry}/v2/{repo}/{path}", headers={"Accept": accept})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, "", b""
status, _, manifest = get(f"manifests/{tag}", MANIFEST)
assert status == 200, status
digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
manifest_file = os.path.join(out, "manifest.json")
open(manifest_file, "wb").write(manifest)
status, ctype, body = get(f"referrers/{digest}", INDEX)
if status != 200 or not ctype.startswith(INDEX):
    status, _, body = get("manifests/sha256-" + digest[7:], INDEX)
entries = json.loads(body)["manifests"] if status == 200 else []
candidates, verified = [], []
for e in entries:
    status, _, m = get("manifests/" + e["digest"], MANIFEST)
    if status != 200:
        continue
    m = json.loads(m)
    layers = m.get("layers", [])
    if len(layers) != 1 or not layers[0]["mediaType"].startswith("application/vnd.dev.sigstore.bundle"):
        continue
    candidates.append(e["digest"])
    status, _, bundle = get("blobs/" + layers[0]["digest"], "*/*")
    path = os.path.join(out, e["digest"][7:] + ".sigstore.json")
    open(path, "wb").write(bundle)
    r = subprocess.run([sys.executable, "-m", "sigstore", "--trust-config", trust, "verify", "identity",
                        "--bundle", path, "--cert-identity", identity, "--cert-oidc-issuer", issuer,
                        manifest_file], capture_output=True, text=True, env={**os.environ, "SIGSTORE_NO_CACHE": "1"})
    if r.returncode == 0:
        verified.append(e["digest"])
print(json.dumps({"manifest": digest, "candidates": candidates, "verified": verified}))
"#;

fn discover(s: &SigstoreServices, reg: &Registry, w: &World, tag: &str) -> Value {
    let script = w.write("discover.py", DISCOVER);
    let out_dir = w.path("discovered");
    std::fs::create_dir_all(&out_dir).unwrap();
    // The PyPI client must be there (the harness says how to install it).
    let _ = python::sigstore(&["--version"]);
    let o = std::process::Command::new("python3")
        .arg(&script)
        .args([
            &reg.url(),
            "acme/db",
            tag,
            WORKFLOW,
            &s.issuer_url(),
            s.trust_config_path().to_str().unwrap(),
            out_dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "discover.py: {}", python::describe(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn a_stock_discovery_finds_the_signature_and_never_the_provenance_or_the_revocation() {
    let s = SigstoreServices::start();
    let reg = Registry::start(RegistryOptions { auth: Auth::None });
    let ci = World::named("ci");
    ci.config(&config(&s, Some(&reg.url()), "require_provenance = true\n"));
    ci.write("migrations/0001_init.sql", "CREATE TABLE t (id int);\n");
    let env = ci_env(&s);
    let built: Value = run_env(
        &ci,
        &[
            "build",
            "1.0.0",
            "--sign",
            "--provenance",
            "--output",
            "json",
        ],
        &env,
    )
    .success()
    .json();
    ci.run(&["push", "1.0.0"]).success();
    let revoked: Value = run_env(
        &ci,
        &[
            "revoke",
            "1.0.0",
            "--reason",
            "bad index (INC-9)",
            "--output",
            "json",
        ],
        &env,
    )
    .success()
    .json();

    // cosign's walk: three candidates, one signature.
    let found = discover(&s, &reg, &ci, "1.0.0");
    assert_eq!(found["manifest"].as_str().unwrap(), ci.tag_digest("1.0.0"));
    assert_eq!(found["candidates"].as_array().unwrap().len(), 3, "{found}");
    let signature = built["signature"]["referrer"]
        .as_str()
        .or_else(|| built["sign"]["referrer"].as_str())
        .map(str::to_owned);
    assert_eq!(
        found["verified"].as_array().unwrap().len(),
        1,
        "only the signature may pass as one: {found}"
    );
    let verified = found["verified"][0].as_str().unwrap();
    assert_ne!(verified, revoked["referrer"].as_str().unwrap());
    let m: Value = serde_json::from_slice(&ci.blob(verified)).unwrap();
    assert_eq!(
        m["annotations"]["dev.sigstore.bundle.predicateType"],
        SIGN_PREDICATE
    );
    if let Some(sig) = signature {
        assert_eq!(verified, sig);
    }

    // Every piece of evidence has cosign v3's shape.
    let index = ci.index();
    let referrers: Vec<&Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["annotations"]["org.opencontainers.image.ref.name"].is_null())
        .collect();
    assert_eq!(referrers.len(), 3, "{index}");
    let mut predicates = Vec::new();
    for r in &referrers {
        let m: Value = serde_json::from_slice(&ci.blob(r["digest"].as_str().unwrap())).unwrap();
        assert_eq!(m["artifactType"], BUNDLE, "{m}");
        assert_eq!(m["layers"].as_array().unwrap().len(), 1);
        assert_eq!(m["layers"][0]["mediaType"], BUNDLE);
        predicates.push(
            m["annotations"]["dev.sigstore.bundle.predicateType"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    predicates.sort();
    assert_eq!(
        predicates,
        [
            SIGN_PREDICATE,
            "https://slsa.dev/provenance/v1",
            "https://squizzle.dev/revocation/v1"
        ]
    );

    // squizzle itself still reads all three, on another machine.
    let deploy = World::named("deploy");
    deploy.config(&config(&s, Some(&reg.url()), "require_provenance = true\n"));
    deploy
        .run(&["verify", "1.0.0"])
        .code(10)
        .says("bad index (INC-9)");
    let j: Value = deploy
        .run(&["verify", "1.0.0", "--output", "json"])
        .code(10)
        .json();
    assert_eq!(j["revocation"]["verified"], true, "{j}");
    assert!(j.to_string().contains("Signature verified"), "{j}");
    assert!(j.to_string().contains("acme/app"), "provenance read: {j}");
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Hangs `bundle` on `tag` in `w`'s layout as a single-layer bundle
/// referrer with `artifact_type` and, if given, the predicate-type
/// annotation (what cosign, GitHub's attest action or an attacker with push
/// rights could write).
fn attach(w: &World, tag: &str, artifact_type: &str, annotation: Option<&str>, bundle: &[u8]) {
    let subject = w.tag_digest(tag);
    let subject_size = w.blob(&subject).len();
    let put = |bytes: &[u8]| {
        let d = format!("sha256:{}", sha256_hex(bytes));
        std::fs::write(w.blob_path(&d), bytes).unwrap();
        (d, bytes.len())
    };
    let (layer, layer_size) = put(bundle);
    let (config, config_size) = put(b"{}");
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": config_size},
        "layers": [{"mediaType": BUNDLE, "digest": layer, "size": layer_size}],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject, "size": subject_size},
    });
    if let Some(p) = annotation {
        manifest["annotations"] = json!({"dev.sigstore.bundle.predicateType": p});
    }
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let (d, size) = put(&bytes);
    let mut index = w.index();
    index["manifests"].as_array_mut().unwrap().push(json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": d,
        "size": size,
        "artifactType": artifact_type,
    }));
    w.write_index(&index);
}

/// GitHub's attest action's SLSA v1 predicate, in short.
fn github_predicate() -> Value {
    json!({
        "buildDefinition": {
            "buildType": "https://actions.github.io/buildtypes/workflow/v1",
            "externalParameters": {"workflow": {
                "ref": "refs/tags/v1.0.0",
                "repository": "https://github.com/acme/app",
                "path": ".github/workflows/release.yml",
            }},
            "resolvedDependencies": [{
                "uri": "git+https://github.com/acme/app@refs/tags/v1.0.0",
                "digest": {"gitCommit": "b".repeat(40)},
            }],
        },
        "runDetails": {
            "builder": {"id": "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0"},
            "metadata": {"invocationId": "https://github.com/acme/app/actions/runs/1/attempts/1"},
        },
    })
}

#[test]
fn provenance_written_by_another_tool_is_recognised_by_its_signed_predicate_type() {
    let s = SigstoreServices::start();
    let w = World::plain();
    w.config(&config(&s, None, "require_provenance = true\n"));
    w.build_ok("1.0.0");
    run_env(&w, &["sign", "1.0.0"], &ci_env(&s)).success();
    w.run(&["verify", "1.0.0"])
        .code(9)
        .says("No provenance found");

    // sigstore-python attests the release manifest, as GitHub's attest
    // action and `cosign attest --new-bundle-format` do for an image.
    let manifest = w.blob_path(&w.tag_digest("1.0.0"));
    let predicate = w.write("predicate.json", github_predicate().to_string());
    let attestation = w.path("attestation.sigstore.json");
    let o = python::sigstore(&[
        "--trust-config",
        s.trust_config_path().to_str().unwrap(),
        "attest",
        "--identity-token",
        &token(&s),
        "--predicate-type",
        SLSA,
        "--predicate",
        predicate.to_str().unwrap(),
        "--bundle",
        attestation.to_str().unwrap(),
        manifest.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "sigstore attest: {}",
        python::describe(&o)
    );
    let attestation = std::fs::read(&attestation).unwrap();

    // A referrer whose annotation lies (says "signature"): the signed
    // statement says provenance, so it counts as provenance only.
    attach(&w, "1.0.0", BUNDLE, Some(SIGN_PREDICATE), &attestation);
    w.run(&["verify", "1.0.0"])
        .success()
        .says("github.com/acme/app");
    // It never counts as a signature: with the real signature gone, the
    // release is unsigned.
    // Drop every squizzle signature (the first and the one just made).
    let mut kept = w.index();
    kept["manifests"].as_array_mut().unwrap().retain(|m| {
        let d = m["digest"].as_str().unwrap_or_default();
        m["annotations"]["org.opencontainers.image.ref.name"].is_string()
            || serde_json::from_slice::<Value>(&w.blob(d))
                .ok()
                .and_then(|mm| {
                    let layer = mm["layers"][0]["digest"].as_str()?.to_owned();
                    Some(w.blob(&layer) == attestation)
                })
                .unwrap_or(false)
    });
    w.write_index(&kept);
    w.remove("db/tarballs/squizzle-1.0.0.sigstore.json");
    w.run(&["verify", "1.0.0"])
        .code(9)
        .says("No signature found");

    // The other way round: a signature bundle annotated as provenance is
    // still only a signature, and provenance is still missing.
    let other = World::named("annotated");
    other.config(&config(&s, None, "require_provenance = true\n"));
    other.write("migrations/0001_init.sql", "CREATE TABLE t (id int);\n");
    other.build_ok("1.0.0");
    run_env(&other, &["sign", "1.0.0"], &ci_env(&s)).success();
    let bundle = std::fs::read(other.path("db/tarballs/squizzle-1.0.0.sigstore.json")).unwrap();
    attach(&other, "1.0.0", BUNDLE, Some(SLSA), &bundle);
    other
        .run(&["verify", "1.0.0"])
        .code(9)
        .says("No provenance found");

    // Provenance under the artifactType older squizzle releases used still
    // counts.
    let legacy = World::named("legacy");
    legacy.config(&config(&s, None, "require_provenance = true\n"));
    legacy.write("migrations/0001_init.sql", "CREATE TABLE t (id int);\n");
    legacy.build_ok("1.0.0");
    run_env(&legacy, &["sign", "1.0.0"], &ci_env(&s)).success();
    let manifest = legacy.blob_path(&legacy.tag_digest("1.0.0"));
    let att = legacy.path("att.sigstore.json");
    let o = python::sigstore(&[
        "--trust-config",
        s.trust_config_path().to_str().unwrap(),
        "attest",
        "--identity-token",
        &token(&s),
        "--predicate-type",
        SLSA,
        "--predicate",
        predicate.to_str().unwrap(),
        "--bundle",
        att.to_str().unwrap(),
        manifest.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "sigstore attest: {}",
        python::describe(&o)
    );
    attach(
        &legacy,
        "1.0.0",
        "application/vnd.in-toto.slsa.provenance.v1+json",
        None,
        &std::fs::read(&att).unwrap(),
    );
    legacy.run(&["verify", "1.0.0"]).success();
}

const PASS: &str = "evidence cosign test passphrase";

/// A project with a key pair that requires a signature made with it and
/// trusts it to revoke; 1.0.0 built and signed.
fn keyed(name: &str) -> World {
    let mut w = World::named(name);
    w.set_env("SQUIZZLE_KEY_PASSWORD", PASS);
    w.config(
        "[project]\nmigrations = \"migrations\"\n[security]\nrequire_signature = true\npublic_keys = [\"squizzle.pub\"]\n",
    );
    w.write("migrations/0001_init.sql", "CREATE TABLE t (id int);\n");
    w.run(&["keygen"]).success();
    w.build_ok("1.0.0");
    w.run(&["sign", "1.0.0", "--key", "squizzle.key"]).success();
    w
}

/// Removes the referrer whose bundle layer is `bundle` from `w`'s index.
fn detach(w: &World, bundle: &[u8]) {
    let mut index = w.index();
    index["manifests"].as_array_mut().unwrap().retain(|m| {
        m["annotations"]["org.opencontainers.image.ref.name"].is_string()
            || serde_json::from_slice::<Value>(&w.blob(m["digest"].as_str().unwrap()))
                .ok()
                .and_then(|mm| Some(w.blob(mm["layers"][0]["digest"].as_str()?) != bundle))
                .unwrap_or(true)
    });
    w.write_index(&index);
}

#[test]
fn a_revocation_is_known_by_what_it_signs_not_by_its_annotation() {
    let w = keyed("mislabelled");
    w.run(&[
        "revoke",
        "1.0.0",
        "--reason",
        "leaks a token (INC-10)",
        "--key",
        "squizzle.key",
    ])
    .success();
    let revocation =
        std::fs::read(w.path("db/tarballs/squizzle-1.0.0.revocation.sigstore.json")).unwrap();
    // The statement names the config blob, not the manifest digest; the
    // predicate names the manifest digest.
    let b: Value = serde_json::from_slice(&revocation).unwrap();
    use base64::Engine as _;
    let st: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(b["dsseEnvelope"]["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let oci: Value = serde_json::from_slice(&w.blob(&w.tag_digest("1.0.0"))).unwrap();
    assert_eq!(
        format!(
            "sha256:{}",
            st["subject"][0]["digest"]["sha256"].as_str().unwrap()
        ),
        oci["config"]["digest"].as_str().unwrap()
    );
    assert_eq!(st["predicate"]["digest"], json!(w.tag_digest("1.0.0")));

    // Re-attached under an annotation that says "signature": still a
    // revocation, verified.
    detach(&w, &revocation);
    w.run(&["verify", "1.0.0"]).success().says("Not revoked");
    attach(&w, "1.0.0", BUNDLE, Some(SIGN_PREDICATE), &revocation);
    let j: Value = w
        .run(&["verify", "1.0.0", "--output", "json"])
        .code(10)
        .json();
    assert_eq!(j["revocation"]["verified"], true, "{j}");
    assert!(j.to_string().contains("leaks a token (INC-10)"), "{j}");

    // A signature bundle annotated as a revocation revokes nothing.
    let clean = keyed("clean");
    let signature = std::fs::read(clean.path("db/tarballs/squizzle-1.0.0.sigstore.json")).unwrap();
    attach(
        &clean,
        "1.0.0",
        BUNDLE,
        Some("https://squizzle.dev/revocation/v1"),
        &signature,
    );
    clean
        .run(&["verify", "1.0.0"])
        .success()
        .says("Not revoked");
}

/// Signs an arbitrary in-toto statement with sigstore-python's API (its CLI
/// only attests SLSA predicates).
const SIGN_STATEMENT: &str = r#"
import json, sys
from pathlib import Path
from sigstore.dsse import StatementBuilder, Subject
from sigstore.models import ClientTrustConfig
from sigstore.oidc import IdentityToken
from sigstore.sign import SigningContext
trust, token, statement, out = sys.argv[1:5]
st = json.loads(Path(statement).read_text())
ctx = SigningContext.from_trust_config(ClientTrustConfig.from_json(Path(trust).read_text()))
with ctx.signer(IdentityToken(token)) as signer:
    built = StatementBuilder(
        subjects=[Subject(name=s["name"], digest=s["digest"]) for s in st["subject"]],
        predicate_type=st["predicateType"],
        predicate=st["predicate"],
    ).build()
    Path(out).write_text(signer.sign_dsse(built).to_json())
"#;

#[test]
fn a_revocation_in_the_older_layout_written_by_another_client_still_blocks_verified() {
    // Older squizzle revocations named the manifest digest and had their own
    // artifactType; this one is written by sigstore-python, so the reading
    // side is checked against an independent writer.
    let s = SigstoreServices::start();
    let w = World::plain();
    w.config(&config(&s, None, ""));
    w.build_ok("1.0.0");
    run_env(&w, &["sign", "1.0.0"], &ci_env(&s)).success();
    let digest = w.tag_digest("1.0.0");
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "squizzle", "digest": {"sha256": digest.trim_start_matches("sha256:")}}],
        "predicateType": "https://squizzle.dev/revocation/v1",
        "predicate": {
            "version": "1.0.0",
            "digest": digest,
            "reason": "drops a column (INC-11)",
            "revokedBy": WORKFLOW,
            "revokedAt": "2026-01-01T00:00:00Z",
        },
    });
    let st_path = w.write("statement.json", statement.to_string());
    let script = w.write("sign_statement.py", SIGN_STATEMENT);
    let out = w.path("legacy-revocation.sigstore.json");
    let o = std::process::Command::new("python3")
        .arg(&script)
        .args([
            s.trust_config_path().to_str().unwrap(),
            &token(&s),
            st_path.to_str().unwrap(),
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "sign_statement.py: {}",
        python::describe(&o)
    );
    attach(
        &w,
        "1.0.0",
        "application/vnd.squizzle.revocation.v1+json",
        None,
        &std::fs::read(&out).unwrap(),
    );
    let j: Value = w
        .run(&["verify", "1.0.0", "--output", "json"])
        .code(10)
        .json();
    assert_eq!(j["revocation"]["verified"], true, "{j}");
    assert_eq!(j["revocation"]["reason"], "drops a column (INC-11)", "{j}");
}
