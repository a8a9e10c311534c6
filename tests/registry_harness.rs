//! Smoke tests of `squizzle_test_support::registry` against the real registry
//! (CNCF distribution 2.8, Debian's `docker-registry`), in each
//! authentication mode. They also pin down the registry behaviour squizzle's
//! OCI push/pull relies on (or must work around):
//!
//! - blob upload: `POST /v2/<repo>/blobs/uploads/` (202 + `Location`), then
//!   `PUT <Location>&digest=` with `Content-Type: application/octet-stream`
//!   (or none; as `application/x-www-form-urlencoded` it fails with 400
//!   `DIGEST_INVALID`);
//! - OCI image manifests with `artifactType` (and `subject`) are stored and
//!   served byte-for-byte, with `Content-Type` and `Docker-Content-Digest`;
//! - there is NO referrers API (`GET /v2/<repo>/referrers/<digest>` is 404,
//!   and a `PUT` of a manifest with `subject` gets no `OCI-Subject` header),
//!   so referrers must use the tag-schema fallback;
//! - `/v2/<repo>/tags/list` ignores `n` and `last`: it always returns every
//!   tag, unsorted, without a `Link` header (only `/v2/_catalog` paginates);
//! - `DELETE` of a manifest by digest works (and drops its tags); by tag it
//!   is refused with 400 `DIGEST_INVALID`.

use std::process::Command;
use std::time::{Duration, Instant};

use squizzle_test_support::registry::{
    self, Auth, OCI_MANIFEST, Registry, RegistryOptions, TOKEN_ISSUER, TOKEN_SERVICE, b64_decode,
    parse_challenge, sha256_digest,
};

const USER: &str = "squizzle-ci";
/// With a colon and a space, which basic auth and `--creds` must survive.
const PASSWORD: &str = "correct horse:battery";
const ARTIFACT_TYPE: &str = "application/vnd.squizzle.migrations.v1";
const CONFIG_TYPE: &str = "application/vnd.squizzle.config.v1+json";
const LAYER_TYPE: &str = "application/vnd.squizzle.migrations.layer.v1.tar+gzip";
const CHILD_ENV: &str = "SQUIZZLE_REGISTRY_HARNESS_CHILD";

fn start(auth: Auth) -> Registry {
    Registry::start(RegistryOptions { auth })
}

/// An OCI image manifest (pretty-printed, so byte identity is meaningful).
fn manifest(
    config: (&str, usize),
    layer: (&str, usize),
    subject: Option<(&str, usize)>,
) -> Vec<u8> {
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "digest": config.0, "size": config.1},
        "layers": [{
            "mediaType": LAYER_TYPE,
            "digest": layer.0,
            "size": layer.1,
            "annotations": {"org.opencontainers.image.title": "migrations.tar.gz"},
        }],
        "annotations": {"org.opencontainers.image.version": "1.0.0"},
    });
    if let Some((digest, size)) = subject {
        m["subject"] =
            serde_json::json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": size});
    }
    let mut bytes = serde_json::to_vec_pretty(&m).unwrap();
    bytes.push(b'\n');
    bytes
}

/// Everything squizzle's push/pull will do, done by hand, then cross-checked
/// with skopeo.
fn roundtrip(reg: &Registry) {
    let repo = "squizzle/migrations";

    // Blob upload, step by step.
    let layer: Vec<u8> = (0..50_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let layer_digest = sha256_digest(&layer);
    let start = reg.http("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"");
    assert_eq!(start.status, 202, "{}", start.text());
    assert!(start.header("Docker-Upload-UUID").is_some());
    let location = start.header("Location").expect("Location").to_string();
    assert!(
        location.starts_with(&format!("http://{}/v2/{repo}/blobs/uploads/", reg.url())),
        "{location}"
    );
    let put = reg.http(
        "PUT",
        &format!("{location}&digest={layer_digest}"),
        &[("Content-Type", "application/octet-stream")],
        &layer,
    );
    assert_eq!(put.status, 201, "{}", put.text());
    assert_eq!(
        put.header("Docker-Content-Digest"),
        Some(layer_digest.as_str())
    );

    let config = br#"{"squizzle":{"version":"1.0.0"}}"#;
    let config_digest = reg.push_blob(repo, config);
    assert_eq!(config_digest, sha256_digest(config));

    // HEAD/GET blobs.
    let head = reg.http(
        "HEAD",
        &format!("/v2/{repo}/blobs/{layer_digest}"),
        &[],
        b"",
    );
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("Content-Length"),
        Some(layer.len().to_string().as_str())
    );
    assert_eq!(
        head.header("Docker-Content-Digest"),
        Some(layer_digest.as_str())
    );
    assert!(head.body.is_empty());
    let missing = sha256_digest(b"not uploaded");
    let head = reg.http("HEAD", &format!("/v2/{repo}/blobs/{missing}"), &[], b"");
    assert_eq!(head.status, 404);
    assert_eq!(
        reg.get_blob(repo, &layer_digest).as_deref(),
        Some(&layer[..])
    );
    assert_eq!(reg.get_blob(repo, &missing), None);

    // Manifest.
    let bytes = manifest(
        (&config_digest, config.len()),
        (&layer_digest, layer.len()),
        None,
    );
    let digest = reg.put_manifest(repo, "1.0.0", OCI_MANIFEST, &bytes);
    assert_eq!(digest, sha256_digest(&bytes));
    for reference in ["1.0.0", digest.as_str()] {
        let (content_type, got) = reg.get_manifest(repo, reference).expect("manifest");
        assert_eq!(content_type, OCI_MANIFEST);
        assert!(
            got == bytes,
            "manifest {reference} differs:\n{}",
            String::from_utf8_lossy(&got)
        );
    }
    let head = reg.http(
        "HEAD",
        &format!("/v2/{repo}/manifests/1.0.0"),
        &[("Accept", OCI_MANIFEST)],
        b"",
    );
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Docker-Content-Digest"), Some(digest.as_str()));
    assert_eq!(reg.get_manifest(repo, "9.9.9"), None);

    // An independent client sees the same bytes.
    let raw = reg
        .skopeo_inspect_raw(&format!("{repo}:1.0.0"))
        .expect("skopeo inspect --raw");
    assert_eq!(raw.as_bytes(), &bytes[..], "skopeo --raw output differs");

    // A manifest with a subject is stored as is, but there is no referrers
    // API and no OCI-Subject header.
    let referrer = manifest(
        (&config_digest, config.len()),
        (&layer_digest, layer.len()),
        Some((&digest, bytes.len())),
    );
    let referrer_digest = sha256_digest(&referrer);
    let put = reg.http(
        "PUT",
        &format!("/v2/{repo}/manifests/{referrer_digest}"),
        &[("Content-Type", OCI_MANIFEST)],
        &referrer,
    );
    assert_eq!(put.status, 201, "{}", put.text());
    assert_eq!(put.header("OCI-Subject"), None);
    assert_eq!(
        reg.get_manifest(repo, &referrer_digest).map(|(_, b)| b),
        Some(referrer)
    );
    let referrers = reg.http("GET", &format!("/v2/{repo}/referrers/{digest}"), &[], b"");
    assert_eq!(
        referrers.status,
        404,
        "distribution 2.8 has grown a referrers API? {}",
        referrers.text()
    );

    // Tags: distribution 2.8 ignores `n` and `last` on tags/list (it returns
    // every tag, unsorted, and no Link header). Only the catalog paginates.
    for tag in ["1.1.0", "2.0.0"] {
        reg.put_manifest(repo, tag, OCI_MANIFEST, &bytes);
    }
    let page = reg.http("GET", &format!("/v2/{repo}/tags/list?n=2"), &[], b"");
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(page.json()["name"], repo);
    let mut tags: Vec<String> = serde_json::from_value(page.json()["tags"].clone()).unwrap();
    tags.sort();
    assert_eq!(
        tags,
        ["1.0.0", "1.1.0", "2.0.0"],
        "tags/list?n=2 now paginates?"
    );
    assert_eq!(page.header("Link"), None);
    let mut tags = reg.tags(repo);
    tags.sort();
    assert_eq!(tags, ["1.0.0", "1.1.0", "2.0.0"]);
    assert!(reg.tags("squizzle/nothing-here").is_empty());

    // The catalog does paginate, with a Link header.
    let other = "squizzle/zz-other";
    reg.push_blob(other, config);
    reg.push_blob(other, &layer);
    reg.put_manifest(other, "0.1.0", OCI_MANIFEST, &bytes);
    let page = reg.http("GET", "/v2/_catalog?n=1", &[], b"");
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(page.json()["repositories"], serde_json::json!([repo]));
    let next = registry::link_next(page.header("Link").expect("Link header")).expect("rel=next");
    assert_eq!(
        next,
        format!("/v2/_catalog?last={}&n=1", registry::pct(repo))
    );
    let page = reg.http("GET", &next, &[], b"");
    assert_eq!(page.json()["repositories"], serde_json::json!([other]));

    // Deleting by tag is refused (400 DIGEST_INVALID on 2.8).
    let del = reg.http("DELETE", &format!("/v2/{repo}/manifests/1.1.0"), &[], b"");
    assert_eq!(del.status, 400, "{}", del.text());

    // Delete by digest: the manifest and every tag pointing at it go.
    let del = reg.http(
        "DELETE",
        &format!("/v2/{repo}/manifests/{digest}"),
        &[],
        b"",
    );
    assert_eq!(del.status, 202, "{}", del.text());
    assert_eq!(reg.get_manifest(repo, &digest), None);
    assert_eq!(reg.get_manifest(repo, "1.0.0"), None);
    assert_eq!(reg.get_manifest(repo, "2.0.0"), None);
    assert!(reg.tags(repo).is_empty(), "{:?}", reg.tags(repo));
    // Blobs stay until garbage collection.
    assert!(reg.get_blob(repo, &layer_digest).is_some());
}

#[test]
fn no_auth_roundtrip() {
    let reg = start(Auth::None);
    assert_eq!(reg.http("GET", "/v2/", &[], b"").status, 200);
    roundtrip(&reg);
    assert!(reg.token_requests().is_empty());

    // A blob PUT sent as a form (curl's default for --data) fails: Go parses
    // the body as form fields. Without a Content-Type it works.
    let data = b"form-like body";
    let digest = sha256_digest(data);
    for (content_type, status) in [
        (Some("application/x-www-form-urlencoded"), 400),
        (None, 201),
    ] {
        let start = reg.http("POST", "/v2/squizzle/ct/blobs/uploads/", &[], b"");
        let location = start.header("Location").expect("Location").to_string();
        let headers: Vec<(&str, &str)> = content_type
            .map(|ct| ("Content-Type", ct))
            .into_iter()
            .collect();
        let put = reg.http(
            "PUT",
            &format!("{location}&digest={digest}"),
            &headers,
            data,
        );
        assert_eq!(put.status, status, "{content_type:?}: {}", put.text());
        if status == 400 {
            assert!(put.text().contains("DIGEST_INVALID"), "{}", put.text());
        }
    }
}

#[test]
fn basic_auth_roundtrip() {
    let reg = start(Auth::basic(USER, PASSWORD));
    let anon = reg.http_as(None, "GET", "/v2/", &[], b"");
    assert_eq!(anon.status, 401);
    let challenge = parse_challenge(anon.header("WWW-Authenticate").expect("challenge"));
    assert_eq!(challenge.scheme, "Basic");
    assert_eq!(challenge.params["realm"], "squizzle-test");
    let wrong = reg.http_as(Some((USER, "wrong")), "GET", "/v2/", &[], b"");
    assert_eq!(wrong.status, 401);
    let wrong_user = reg.http_as(Some(("nobody", PASSWORD)), "GET", "/v2/_catalog", &[], b"");
    assert_eq!(wrong_user.status, 401);
    assert_eq!(reg.http("GET", "/v2/", &[], b"").status, 200);
    roundtrip(&reg);
    // The catalog needs no extra grant with basic auth.
    let catalog = reg.http("GET", "/v2/_catalog", &[], b"");
    assert_eq!(
        catalog.json()["repositories"],
        serde_json::json!(["squizzle/migrations", "squizzle/zz-other"])
    );
}

#[test]
fn token_auth_roundtrip() {
    let reg = start(Auth::token(USER, PASSWORD));
    let realm = reg.token_realm().expect("realm");

    // The challenges.
    let anon = reg.http_as(None, "GET", "/v2/", &[], b"");
    assert_eq!(anon.status, 401);
    let challenge = parse_challenge(anon.header("WWW-Authenticate").expect("challenge"));
    assert_eq!(challenge.scheme, "Bearer");
    assert_eq!(challenge.params["realm"], realm);
    assert_eq!(challenge.params["service"], TOKEN_SERVICE);
    let anon = reg.http_as(
        None,
        "POST",
        "/v2/squizzle/migrations/blobs/uploads/",
        &[],
        b"",
    );
    assert_eq!(anon.status, 401);
    let challenge = parse_challenge(anon.header("WWW-Authenticate").expect("challenge"));
    // distribution 2.8 lists the actions in random order (a Go map).
    let mut actions: Vec<&str> = challenge.params["scope"]
        .strip_prefix("repository:squizzle/migrations:")
        .expect("repository scope")
        .split(',')
        .collect();
    actions.sort();
    assert_eq!(actions, ["pull", "push"]);

    // Wrong credentials: the token server refuses.
    let wrong = reg.http_as(Some((USER, "wrong")), "GET", "/v2/", &[], b"");
    assert_eq!(wrong.status, 401);
    assert!(
        wrong
            .header("WWW-Authenticate")
            .is_some_and(|h| h.starts_with("Basic"))
    );
    let last = reg.token_requests().pop().expect("token request");
    assert_eq!(last.user.as_deref(), Some(USER));
    assert!(!last.granted);

    assert_eq!(reg.http("GET", "/v2/", &[], b"").status, 200);
    roundtrip(&reg);

    let requests = reg.token_requests();
    assert!(
        requests
            .iter()
            .all(|r| r.service.as_deref() == Some(TOKEN_SERVICE))
    );
    assert!(
        requests
            .iter()
            .any(|r| r.granted && r.scopes == ["repository:squizzle/migrations:pull,push"]),
        "{requests:#?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.granted && r.scopes == ["repository:squizzle/migrations:delete"]),
        "{requests:#?}"
    );
}

/// Decodes a JWT's header and claims (without verifying it).
fn jwt_parts(jwt: &str) -> (serde_json::Value, serde_json::Value, Vec<u8>) {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "{jwt}");
    let json = |s: &str| serde_json::from_slice(&b64_decode(s).expect("base64url")).expect("json");
    (
        json(parts[0]),
        json(parts[1]),
        b64_decode(parts[2]).unwrap(),
    )
}

#[test]
fn token_contents_and_scopes() {
    let reg = start(Auth::token(USER, PASSWORD));
    let repo = "squizzle/scoped";
    let realm = reg.token_realm().expect("realm");
    let addr: std::net::SocketAddr = realm
        .trim_start_matches("http://")
        .trim_end_matches("/token")
        .parse()
        .unwrap();
    let auth = registry::basic_authorization(USER, PASSWORD);

    // A token as a client gets it (GET, repeated scope parameters).
    let resp = registry::http_request(
        addr,
        "GET",
        &format!(
            "/token?service={TOKEN_SERVICE}&scope=repository%3A{}%3Apull%2Cpush&scope=repository%3Aother%3Apull",
            registry::pct(repo)
        ),
        &[("Authorization", &auth)],
        b"",
    )
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let body = resp.json();
    assert_eq!(body["token"], body["access_token"]);
    assert_eq!(body["expires_in"], 300);
    let (header, claims, sig) = jwt_parts(body["token"].as_str().unwrap());
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["x5c"].as_array().map(Vec::len), Some(1));
    let cert_pem = reg.token_cert_pem().unwrap();
    let cert_b64: String = cert_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert_eq!(header["x5c"][0], cert_b64);
    assert_eq!(sig.len(), 64, "JOSE ES256 signature is r||s");
    assert_eq!(claims["iss"], TOKEN_ISSUER);
    assert_eq!(claims["aud"], TOKEN_SERVICE);
    assert_eq!(claims["sub"], USER);
    assert_eq!(
        claims["access"],
        serde_json::json!([
            {"type": "repository", "name": repo, "actions": ["pull", "push"]},
            {"type": "repository", "name": "other", "actions": ["pull"]},
        ])
    );
    let token = body["token"].as_str().unwrap().to_string();

    // OAuth2 password grant (POST) works too.
    let form = format!(
        "grant_type=password&username={}&password={}&service={TOKEN_SERVICE}&scope=repository%3A{}%3Apull&client_id=test",
        registry::pct(USER),
        registry::pct(PASSWORD),
        registry::pct(repo)
    );
    let resp = registry::http_request(
        addr,
        "POST",
        "/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    // Unknown service: refused.
    let resp = registry::http_request(
        addr,
        "GET",
        "/token?service=elsewhere&scope=repository%3Ax%3Apull",
        &[("Authorization", &auth)],
        b"",
    )
    .unwrap();
    assert_eq!(resp.status, 400);

    // The registry accepts the token for what it grants...
    let bearer = format!("Bearer {token}");
    let config = b"{}";
    let digest = sha256_digest(config);
    let start = reg
        .http_raw(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/"),
            &[("Authorization", &bearer)],
            b"",
        )
        .unwrap();
    assert_eq!(start.status, 202, "{}\n{}", start.text(), reg.log_tail(5));
    let location = start.header("Location").unwrap();
    let put = reg
        .http_raw(
            "PUT",
            &format!("{location}&digest={digest}"),
            &[
                ("Authorization", &bearer),
                ("Content-Type", "application/octet-stream"),
            ],
            config,
        )
        .unwrap();
    assert_eq!(put.status, 201, "{}", put.text());

    // ...but a pull-only token cannot push (401, error="insufficient_scope").
    let pull_only = format!("Bearer {}", reg.issue_token(&[(repo, &["pull"])]));
    let get = reg
        .http_raw(
            "GET",
            &format!("/v2/{repo}/blobs/{digest}"),
            &[("Authorization", &pull_only)],
            b"",
        )
        .unwrap();
    assert_eq!(get.status, 200);
    assert_eq!(get.body, config);
    let push = reg
        .http_raw(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/"),
            &[("Authorization", &pull_only)],
            b"",
        )
        .unwrap();
    assert_eq!(push.status, 401);
    let challenge = parse_challenge(push.header("WWW-Authenticate").unwrap());
    assert_eq!(challenge.params["error"], "insufficient_scope");

    // A token for another repository does not carry over.
    let other = format!(
        "Bearer {}",
        reg.issue_token(&[("other", &["pull", "push"])])
    );
    let get = reg
        .http_raw(
            "GET",
            &format!("/v2/{repo}/blobs/{digest}"),
            &[("Authorization", &other)],
            b"",
        )
        .unwrap();
    assert_eq!(get.status, 401);

    // A token with a tampered signature is rejected. (Flip a character in
    // the middle: the last one of a 64-byte signature carries 4 unused bits.)
    let mut forged: Vec<char> = token.chars().collect();
    let i = forged.len() - 20;
    forged[i] = if forged[i] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    let get = reg
        .http_raw(
            "GET",
            &format!("/v2/{repo}/blobs/{digest}"),
            &[("Authorization", &format!("Bearer {forged}"))],
            b"",
        )
        .unwrap();
    assert_eq!(get.status, 401);
}

#[test]
fn drop_stops_the_registry_and_removes_its_directory() {
    let reg = start(Auth::basic(USER, PASSWORD));
    let pid = reg.pid().expect("running");
    let dir = reg.dir().to_path_buf();
    assert!(registry::process_alive(pid));
    let started = Instant::now();
    drop(reg);
    assert!(
        !registry::process_alive(pid),
        "registry {pid} survived drop"
    );
    assert!(!dir.exists(), "{} survived drop", dir.display());
    eprintln!("registry stopped in {:.2?}", started.elapsed());
}

/// Helper for `registry_dies_with_the_test_process`: does nothing unless run
/// as its child process.
#[test]
fn pdeathsig_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let reg = start(Auth::token(USER, PASSWORD));
    println!("REGISTRY_PID={}", reg.pid().expect("running"));
    println!("REGISTRY_DIR={}", reg.dir().display());
    // Never dropped: only the death signal can stop it.
    std::mem::forget(reg);
}

#[test]
fn registry_dies_with_the_test_process() {
    let out = Command::new(std::env::current_exe().expect("test binary path"))
        .args([
            "--exact",
            "registry_harness::pdeathsig_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .expect("run the test binary as a child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.split_once(name).map(|(_, value)| value.trim()))
            .unwrap_or_else(|| panic!("no {name} in child output:\n{stdout}"))
            .to_string()
    };
    let pid: u32 = field("REGISTRY_PID=").parse().expect("pid");
    let dir = field("REGISTRY_DIR=");
    let deadline = Instant::now() + Duration::from_secs(15);
    while registry::process_alive(pid) {
        assert!(
            Instant::now() < deadline,
            "registry {pid} outlived its test process by 15 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Its directory is left behind (the child never dropped it); a later
    // start would sweep it, but clean up now.
    assert!(std::path::Path::new(&dir).exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
