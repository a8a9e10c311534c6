//! Referrers (OCI 1.1 `subject`) against a real registry (CNCF distribution 2.8,
//! which has no referrers API, so the `sha256-<hex>` tag-schema index is what
//! makes them discoverable), manifest deletion, and `squizzle list` from the
//! registry with semver order and referrer markers. A small in-process
//! registry double covers what distribution 2.8 cannot show: the referrers
//! API, `Link` pagination of tags, and a registry that refuses deletion.

use std::collections::BTreeMap;

use squizzle::core::digest::Digest;
use squizzle::core::oci::{self, Descriptor, ImageManifest};
use squizzle::store::layout::LayoutStore;
use squizzle::store::registry::referrers::ReferrerBlob;
use squizzle::store::registry::{RegistryRef, RegistryStore};
use squizzle::store::{StoreError, Target};
use squizzle_test_support::World;
use squizzle_test_support::registry::{Auth, Registry, RegistryOptions};

const REPO: &str = "acme/migrations";
const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn store(reg: &Registry) -> RegistryStore {
    let (username, password) = match reg.credentials() {
        Some((u, p)) => (Some(u.to_owned()), Some(p.to_owned())),
        None => (None, None),
    };
    RegistryStore::new(
        RegistryRef::parse(&format!("{}/{REPO}", reg.url())).unwrap(),
        &squizzle::store::registry::RegistryOptions {
            username,
            password,
            ..Default::default()
        },
    )
}

fn project(reg: &Registry, name: &str) -> World {
    let mut w = World::named(name);
    let mut config = format!(
        "[project]\nmigrations = \"migrations\"\n\n[registry]\nurl = \"{}/{REPO}\"\n",
        reg.url()
    );
    if let Some((user, password)) = reg.credentials() {
        config.push_str("username = \"${REG_USER}\"\npassword = \"${REG_PASSWORD}\"\n");
        w.set_env("REG_USER", user);
        w.set_env("REG_PASSWORD", password);
    }
    w.config(&config);
    if !w.exists("migrations") {
        w.write(
            "migrations/0001_init.sql",
            "CREATE TABLE users (id bigint PRIMARY KEY);\n",
        );
    }
    w
}

/// A project with `versions` built and pushed; returns it.
fn pushed(reg: &Registry, versions: &[&str]) -> World {
    let w = project(reg, "origin");
    for v in versions {
        w.build_ok(v);
        w.run(&["push", v]).success();
    }
    w
}

fn release(rt: &tokio::runtime::Runtime, s: &RegistryStore, tag: &str) -> Descriptor {
    rt.block_on(s.resolve(tag)).unwrap().expect("release tag")
}

fn push_referrer(
    rt: &tokio::runtime::Runtime,
    s: &RegistryStore,
    subject: &Descriptor,
    artifact_type: &str,
    note: &str,
) -> Descriptor {
    let layer = format!("{{\"note\":\"{note}\"}}");
    rt.block_on(s.attach_referrer(
        subject,
        artifact_type,
        None,
        &[ReferrerBlob {
            media_type: BUNDLE,
            data: layer.as_bytes(),
        }],
        BTreeMap::from([("org.example.note".to_owned(), note.to_owned())]),
    ))
    .unwrap()
}

fn referrers_tag(digest: &Digest) -> String {
    format!("sha256-{}", digest.hex())
}

#[test]
fn two_referrers_are_listed_in_a_valid_tag_schema_index_and_filter_by_type() {
    let reg = Registry::start(RegistryOptions { auth: Auth::None });
    let _w = pushed(&reg, &["1.0.0"]);
    let rt = rt();
    let s = store(&reg);
    let subject = release(&rt, &s, "1.0.0");

    let sig = push_referrer(&rt, &s, &subject, BUNDLE, "signature");
    let prov = push_referrer(
        &rt,
        &s,
        &subject,
        oci::PROVENANCE_ARTIFACT_TYPE,
        "provenance",
    );
    assert_eq!(sig.artifact_type.as_deref(), Some(BUNDLE));

    // Independent check with the harness's own HTTP client.
    let (content_type, body) = reg
        .get_manifest(REPO, &referrers_tag(&subject.digest))
        .expect("the sha256-<hex> tag exists");
    assert_eq!(content_type, "application/vnd.oci.image.index.v1+json");
    let index: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{index:#}");
    for (entry, want) in entries.iter().zip([&sig, &prov]) {
        assert_eq!(entry["digest"], want.digest.to_string());
        assert_eq!(entry["size"], want.size);
        assert_eq!(
            entry["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert_eq!(
            entry["artifactType"],
            want.artifact_type.as_deref().unwrap()
        );
        assert!(entry["annotations"]["org.example.note"].is_string());
    }
    // The referrer manifests themselves are stored untagged with the subject.
    let (_, raw) = reg
        .get_manifest(REPO, &sig.digest.to_string())
        .expect("referrer manifest");
    let m: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(m["subject"]["digest"], subject.digest.to_string());
    assert_eq!(m["artifactType"], BUNDLE);
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );

    // Our reader: all, and filtered by artifactType.
    let all = rt.block_on(s.referrers(&subject.digest, None)).unwrap();
    assert_eq!(all, vec![sig.clone(), prov.clone()]);
    let sigs = rt
        .block_on(s.referrers(&subject.digest, Some(BUNDLE)))
        .unwrap();
    assert_eq!(sigs, vec![sig.clone()]);
    let none = rt
        .block_on(s.referrers(&subject.digest, Some(oci::REVOCATION_ARTIFACT_TYPE)))
        .unwrap();
    assert!(none.is_empty());

    // An independent reader (oci-client's tag-schema fallback) sees them too.
    let client = oci_client::Client::new(oci_client::client::ClientConfig {
        protocol: oci_client::client::ClientProtocol::Http,
        ..Default::default()
    });
    let reference: oci_client::Reference = format!("{}/{REPO}@{}", reg.url(), subject.digest)
        .parse()
        .unwrap();
    let theirs = rt
        .block_on(client.pull_referrers(&reference, Some(BUNDLE)))
        .unwrap();
    assert_eq!(theirs.manifests.len(), 1);
    assert_eq!(theirs.manifests[0].digest, sig.digest.to_string());

    // Pushing the same referrer again changes nothing.
    let again = push_referrer(&rt, &s, &subject, BUNDLE, "signature");
    assert_eq!(again, sig);
    assert_eq!(
        rt.block_on(s.referrers(&subject.digest, None))
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn eight_concurrent_referrer_pushes_all_end_up_in_the_index() {
    let reg = Registry::start(RegistryOptions { auth: Auth::None });
    let _w = pushed(&reg, &["1.0.0"]);
    let subject = release(&rt(), &store(&reg), "1.0.0");

    let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
    let pushed: Vec<Descriptor> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let barrier = barrier.clone();
                let reg = &reg;
                let subject = &subject;
                scope.spawn(move || {
                    let rt = rt();
                    let s = store(reg);
                    barrier.wait();
                    push_referrer(&rt, &s, subject, BUNDLE, &format!("writer-{i}"))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let (_, body) = reg
        .get_manifest(REPO, &referrers_tag(&subject.digest))
        .unwrap();
    let index: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let listed: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["digest"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 8, "{index:#}");
    for p in &pushed {
        assert!(
            listed.contains(&p.digest.to_string().as_str()),
            "{p:?} lost"
        );
    }
}

/// A hand-made Sigstore-bundle referrer of the local release `tag`.
fn local_referrer(w: &World, tag: &str, note: &str) -> Descriptor {
    let local = LayoutStore::open(&w.store()).unwrap();
    let subject = local.resolve(tag).unwrap().unwrap();
    let config = local.put_bytes(oci::EMPTY_MEDIA_TYPE, b"{}").unwrap();
    let layer = local
        .put_bytes(BUNDLE, format!("{{\"bundle\":\"{note}\"}}").as_bytes())
        .unwrap();
    let m = ImageManifest {
        schema_version: 2,
        media_type: oci::IMAGE_MANIFEST_MEDIA_TYPE.into(),
        artifact_type: Some(BUNDLE.into()),
        config,
        layers: vec![layer],
        subject: Some(Descriptor::new(
            &subject.media_type,
            subject.digest,
            subject.size,
        )),
        annotations: BTreeMap::new(),
    };
    local.add_referrer(&m.to_canonical_json()).unwrap()
}

#[test]
fn push_copies_local_referrers_and_pull_brings_them_back() {
    let reg = Registry::start(RegistryOptions { auth: Auth::None });
    let w = project(&reg, "origin");
    w.build_ok("1.0.0");
    let digest: Digest = w.tag_digest("1.0.0").parse().unwrap();
    let sig = local_referrer(&w, "1.0.0", "first");

    let pushed = w
        .run(&["push", "1.0.0", "--output", "json"])
        .success()
        .json();
    assert_eq!(pushed["referrersCopied"], 1);
    let rt = rt();
    let s = store(&reg);
    assert_eq!(
        rt.block_on(s.referrers(&digest, None)).unwrap(),
        vec![sig.clone()]
    );

    // A referrer made after the release was pushed goes up on the next push.
    let later = local_referrer(&w, "1.0.0", "second");
    let again = w
        .run(&["push", "1.0.0", "--output", "json"])
        .success()
        .json();
    assert_eq!(again["alreadyThere"], true);
    assert_eq!(again["referrersCopied"], 1);
    let again = w
        .run(&["push", "1.0.0", "--output", "json"])
        .success()
        .json();
    assert_eq!(again["referrersCopied"], 0);

    // Elsewhere: pull brings the release and both referrers, blobs included.
    let other = project(&reg, "elsewhere");
    let pulled = other
        .run(&["pull", "1.0.0", "--output", "json"])
        .success()
        .json();
    assert_eq!(pulled["referrersCopied"], 2);
    let local = LayoutStore::open(&other.store()).unwrap();
    let mut got = local.referrers(&digest, Some(BUNDLE)).unwrap();
    got.sort_by_key(|d| d.digest.to_string());
    let mut want = vec![sig, later];
    want.sort_by_key(|d| d.digest.to_string());
    assert_eq!(got, want);
    for d in &got {
        let bytes = local
            .read_blob(d, oci::MAX_MANIFEST_BYTES, "manifest")
            .unwrap();
        let m: ImageManifest = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(m.subject.unwrap().digest, digest);
        assert!(local.has_blob(&m.config) && local.has_blob(&m.layers[0]));
    }
    // The pulled referrers are what verify judges: these stand-ins are not
    // real bundles, and a signature that does not verify fails the release.
    other
        .run(&["verify", "1.0.0", "--offline"])
        .code(9)
        .says("not a Sigstore bundle");
    let again = other
        .run(&["pull", "1.0.0", "--output", "json"])
        .success()
        .json();
    assert_eq!(again["referrersCopied"], 0);
}

#[test]
fn delete_manifest_removes_the_release_and_its_tag() {
    let reg = Registry::start(RegistryOptions { auth: Auth::None });
    let _w = pushed(&reg, &["1.0.0", "1.1.0"]);
    let rt = rt();
    let s = store(&reg);
    let doomed = release(&rt, &s, "1.0.0");

    rt.block_on(s.delete_manifest(&doomed.digest)).unwrap();
    assert!(rt.block_on(s.resolve("1.0.0")).unwrap().is_none());
    assert_eq!(reg.tags(REPO), vec!["1.1.0".to_owned()]);
    assert!(reg.get_manifest(REPO, &doomed.digest.to_string()).is_none());
    assert_eq!(rt.block_on(s.tags()).unwrap(), vec!["1.1.0".to_owned()]);

    // Again: it is gone.
    match rt.block_on(s.delete_manifest(&doomed.digest)) {
        Err(StoreError::RemoteNotFound { .. }) => {}
        other => panic!("expected RemoteNotFound, got {other:?}"),
    }
}

#[test]
fn list_reads_the_registry_in_semver_order_with_markers() {
    let reg = Registry::start(RegistryOptions { auth: Auth::None });
    let _w = pushed(&reg, &["1.10.0", "1.2.0", "1.9.0"]);
    let rt = rt();
    let s = store(&reg);
    let v12 = release(&rt, &s, "1.2.0");
    let v19 = release(&rt, &s, "1.9.0");
    let v110 = release(&rt, &s, "1.10.0");
    push_referrer(&rt, &s, &v12, BUNDLE, "sig");
    push_referrer(&rt, &s, &v12, oci::PROVENANCE_ARTIFACT_TYPE, "prov");
    push_referrer(&rt, &s, &v19, oci::REVOCATION_ARTIFACT_TYPE, "revoked");
    // A non-version tag on the 1.10.0 manifest.
    let (_, bytes) = reg.get_manifest(REPO, &v110.digest.to_string()).unwrap();
    reg.put_manifest(REPO, "stable", oci::IMAGE_MANIFEST_MEDIA_TYPE, &bytes);

    // A checkout with an empty local store: everything comes from the registry.
    let other = project(&reg, "elsewhere");
    let listing = other.run(&["list", "--output", "json"]).success().json();
    assert_eq!(listing["source"], "registry");
    let versions: Vec<&str> = listing["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1.2.0", "1.9.0", "1.10.0"]);
    let marks = |i: usize| {
        let v = &listing["versions"][i];
        (
            v["signed"].as_bool().unwrap(),
            v["provenance"].as_bool().unwrap(),
            v["revoked"].as_bool().unwrap(),
        )
    };
    assert_eq!(marks(0), (true, true, false));
    assert_eq!(marks(1), (false, false, true));
    assert_eq!(marks(2), (false, false, false));
    assert_eq!(listing["versions"][0]["digest"], v12.digest.to_string());
    assert_eq!(listing["versions"][0]["migrations"], 1);
    assert!(listing["versions"][0].get("problem").is_none());
    // Referrers tags are not "other tags"; `stable` is.
    assert_eq!(listing["otherTags"], serde_json::json!(["stable"]));

    let r = other.run(&["list"]).success();
    let rows: Vec<&str> = r.stdout.lines().skip(1).take(3).collect();
    assert!(r.stdout.lines().next().unwrap().contains("MARKERS"));
    assert!(rows[0].starts_with("1.2.0 ") && rows[0].contains("signed,provenance"));
    assert!(rows[1].starts_with("1.9.0 ") && rows[1].contains("revoked"));
    assert!(rows[2].starts_with("1.10.0 ") && !rows[2].contains("signed"));
    assert!(
        r.stdout
            .contains(&format!("from the registry {}/{REPO}", reg.url()))
    );
}

#[test]
fn list_falls_back_to_the_local_store_when_the_registry_is_down() {
    let reg = Registry::start(RegistryOptions { auth: Auth::None });
    let w = pushed(&reg, &["1.0.0"]);
    local_referrer(&w, "1.0.0", "local");
    reg.stop();
    let r = w.run(&["list", "--output", "json"]).success();
    let listing = r.json();
    assert_eq!(listing["source"], "local");
    assert!(
        listing["warning"]
            .as_str()
            .unwrap()
            .contains("cannot reach the registry")
    );
    assert_eq!(listing["versions"][0]["signed"], true);
}

#[test]
fn referrers_delete_and_list_work_with_basic_and_token_auth() {
    for auth in [
        Auth::basic("squizzle-ci", "correct horse:battery"),
        Auth::token("squizzle-ci", "correct horse:battery"),
    ] {
        let reg = Registry::start(RegistryOptions { auth });
        let _w = pushed(&reg, &["1.0.0", "1.1.0"]);
        let rt = rt();
        let s = store(&reg);
        let v10 = release(&rt, &s, "1.0.0");
        let sig = push_referrer(&rt, &s, &v10, BUNDLE, "sig");
        assert_eq!(
            rt.block_on(s.referrers(&v10.digest, None)).unwrap(),
            vec![sig]
        );

        let other = project(&reg, "elsewhere");
        let listing = other.run(&["list", "--output", "json"]).success().json();
        assert_eq!(listing["source"], "registry");
        assert_eq!(listing["versions"][0]["signed"], true);
        assert_eq!(listing["versions"][1]["signed"], false);
        let pulled = other
            .run(&["pull", "1.0.0", "--output", "json"])
            .success()
            .json();
        assert_eq!(pulled["referrersCopied"], 1);

        let v11 = release(&rt, &s, "1.1.0");
        rt.block_on(s.delete_manifest(&v11.digest)).unwrap();
        assert!(rt.block_on(s.resolve("1.1.0")).unwrap().is_none());
        let tags = rt.block_on(s.tags()).unwrap();
        assert!(tags.contains(&"1.0.0".to_owned()) && !tags.contains(&"1.1.0".to_owned()));
    }
}

/// A minimal registry double on loopback for what distribution 2.8 cannot
/// show: the referrers API (`OCI-Subject` on manifest PUT, `GET
/// /v2/<name>/referrers/<digest>`), a paginated tag list, and a registry that
/// refuses deletion. Records `METHOD path` of every request.
struct Double {
    addr: std::net::SocketAddr,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Double {
    fn start() -> Double {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            let mut referrers: Vec<(String, Vec<u8>)> = Vec::new(); // (subject, manifest)
            let mut tagged: Vec<(String, Vec<u8>)> = Vec::new(); // (tag, manifest)
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or("").to_owned();
                let path = parts.next().unwrap_or("").to_owned();
                let mut length = 0usize;
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':')
                        && k.eq_ignore_ascii_case("content-length")
                    {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                log.lock().unwrap().push(format!("{method} {path}"));
                let prefix = format!("/v2/{REPO}/");
                let rest = path.strip_prefix(&prefix).unwrap_or("");
                let (status, headers, out): (&str, Vec<(String, String)>, Vec<u8>) =
                    match (method.as_str(), rest) {
                        ("GET", _) if path == "/v2/" => ("200 OK", vec![], b"{}".to_vec()),
                        ("PUT", r) if r.starts_with("manifests/sha256:") => {
                            let m: serde_json::Value = serde_json::from_slice(&body).unwrap();
                            let subject = m["subject"]["digest"].as_str().unwrap().to_owned();
                            let digest = Digest::of(&body).to_string();
                            referrers.push((subject.clone(), body.clone()));
                            (
                                "201 Created",
                                vec![
                                    ("OCI-Subject".into(), subject),
                                    ("Docker-Content-Digest".into(), digest.clone()),
                                    ("Location".into(), format!("{prefix}manifests/{digest}")),
                                ],
                                vec![],
                            )
                        }
                        ("PUT", r) if r.starts_with("manifests/") => {
                            let tag = r["manifests/".len()..].to_owned();
                            let digest = Digest::of(&body).to_string();
                            tagged.retain(|(t, _)| *t != tag);
                            tagged.push((tag, body.clone()));
                            (
                                "201 Created",
                                vec![("Docker-Content-Digest".into(), digest)],
                                vec![],
                            )
                        }
                        ("GET", r)
                            if r.starts_with("manifests/")
                                && tagged.iter().any(|(t, _)| *t == r["manifests/".len()..]) =>
                        {
                            let tag = &r["manifests/".len()..];
                            let body = tagged.iter().find(|(t, _)| t == tag).unwrap().1.clone();
                            let media_type: serde_json::Value =
                                serde_json::from_slice(&body).unwrap();
                            (
                                "200 OK",
                                vec![
                                    (
                                        "Content-Type".into(),
                                        media_type["mediaType"].as_str().unwrap().to_owned(),
                                    ),
                                    ("Docker-Content-Digest".into(), Digest::of(&body).to_string()),
                                ],
                                body,
                            )
                        }
                        ("GET", r) if r.starts_with("referrers/") => {
                            let subject = r["referrers/".len()..].split('?').next().unwrap();
                            let manifests: Vec<serde_json::Value> = referrers
                                .iter()
                                .filter(|(s, _)| s == subject)
                                .map(|(_, b)| {
                                    let m: serde_json::Value = serde_json::from_slice(b).unwrap();
                                    serde_json::json!({
                                        "mediaType": oci::IMAGE_MANIFEST_MEDIA_TYPE,
                                        "digest": Digest::of(b).to_string(),
                                        "size": b.len(),
                                        "artifactType": m["artifactType"],
                                    })
                                })
                                .collect();
                            let index = serde_json::json!({
                                "schemaVersion": 2,
                                "mediaType": oci::IMAGE_INDEX_MEDIA_TYPE,
                                "manifests": manifests,
                            });
                            (
                                "200 OK",
                                vec![("Content-Type".into(), oci::IMAGE_INDEX_MEDIA_TYPE.into())],
                                serde_json::to_vec(&index).unwrap(),
                            )
                        }
                        ("GET", "tags/list") => (
                            "200 OK",
                            vec![(
                                "Link".into(),
                                format!("<{prefix}tags/list?n=2&last=b>; rel=\"next\""),
                            )],
                            format!(r#"{{"name":"{REPO}","tags":["1.0.0","b"]}}"#).into_bytes(),
                        ),
                        ("GET", "tags/list?n=2&last=b") => (
                            "200 OK",
                            vec![],
                            format!(r#"{{"name":"{REPO}","tags":["1.10.0"]}}"#).into_bytes(),
                        ),
                        ("DELETE", _) => (
                            "405 Method Not Allowed",
                            vec![],
                            br#"{"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}"#.to_vec(),
                        ),
                        _ => ("404 Not Found", vec![], br#"{"errors":[{"code":"NAME_UNKNOWN","message":"unknown"}]}"#.to_vec()),
                    };
                let mut resp = format!(
                    "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n",
                    out.len()
                );
                if !headers.iter().any(|(k, _)| k == "Content-Type") {
                    resp.push_str("Content-Type: application/json\r\n");
                }
                for (k, v) in &headers {
                    resp.push_str(&format!("{k}: {v}\r\n"));
                }
                resp.push_str("\r\n");
                let _ = conn.write_all(resp.as_bytes());
                let _ = conn.write_all(&out);
            }
        });
        Double { addr, seen }
    }

    fn store(&self) -> RegistryStore {
        RegistryStore::new(
            RegistryRef::parse(&format!("{}/{REPO}", self.addr)).unwrap(),
            &Default::default(),
        )
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn referrer_manifest(subject: &Digest, artifact_type: &str) -> Vec<u8> {
    let empty = Descriptor::new(oci::EMPTY_MEDIA_TYPE, Digest::of(b"{}"), 2);
    ImageManifest {
        schema_version: 2,
        media_type: oci::IMAGE_MANIFEST_MEDIA_TYPE.into(),
        artifact_type: Some(artifact_type.into()),
        config: empty.clone(),
        layers: vec![empty],
        subject: Some(Descriptor::new(
            oci::IMAGE_MANIFEST_MEDIA_TYPE,
            *subject,
            100,
        )),
        annotations: BTreeMap::new(),
    }
    .to_canonical_json()
}

#[test]
fn with_the_referrers_api_no_tag_schema_index_is_written() {
    let d = Double::start();
    let s = d.store();
    let rt = rt();
    let subject = Digest::of(b"the release");
    let sig = rt
        .block_on(s.push_referrer(&referrer_manifest(&subject, BUNDLE)))
        .unwrap();
    rt.block_on(s.push_referrer(&referrer_manifest(&subject, oci::REVOCATION_ARTIFACT_TYPE)))
        .unwrap();
    let seen = d.seen();
    assert!(
        !seen.iter().any(|r| r.contains("sha256-")),
        "the tag schema must not be used with the referrers API: {seen:?}"
    );
    let sigs = rt.block_on(s.referrers(&subject, Some(BUNDLE))).unwrap();
    assert_eq!(sigs.len(), 1);
    assert_eq!(sigs[0].digest, sig.digest);
    assert_eq!(rt.block_on(s.referrers(&subject, None)).unwrap().len(), 2);
    assert!(
        d.seen()
            .iter()
            .any(|r| r.starts_with(&format!("GET /v2/{REPO}/referrers/{subject}")))
    );
}

#[test]
fn with_the_referrers_api_a_tag_schema_index_left_by_a_copy_is_read_too() {
    // A copy made by a tool that only knows the tag schema (skopeo copy of
    // the `sha256-<hex>` tag) into a registry with the referrers API.
    let d = Double::start();
    let s = d.store();
    let rt = rt();
    let subject = Digest::of(b"the release");
    let from_api = rt
        .block_on(s.push_referrer(&referrer_manifest(&subject, BUNDLE)))
        .unwrap();
    let copied = referrer_manifest(&subject, oci::PROVENANCE_ARTIFACT_TYPE);
    let copied = Descriptor {
        artifact_type: Some(BUNDLE.into()),
        ..Descriptor::new(
            oci::IMAGE_MANIFEST_MEDIA_TYPE,
            Digest::of(&copied),
            copied.len() as u64,
        )
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": oci::IMAGE_INDEX_MEDIA_TYPE,
        "manifests": [copied, from_api],
    });
    rt.block_on(s.push_manifest(
        &referrers_tag(&subject),
        oci::IMAGE_INDEX_MEDIA_TYPE,
        &serde_json::to_vec(&index).unwrap(),
    ))
    .unwrap();
    let listed = rt.block_on(s.referrers(&subject, None)).unwrap();
    let digests: Vec<Digest> = listed.iter().map(|l| l.digest).collect();
    assert_eq!(
        digests,
        [from_api.digest, copied.digest],
        "listed once each"
    );
}

#[test]
fn tag_lists_follow_link_pagination() {
    let d = Double::start();
    let rt = rt();
    let tags = rt.block_on(d.store().tags()).unwrap();
    assert_eq!(tags, ["1.0.0", "b", "1.10.0"]);
    let pages = d.seen().iter().filter(|r| r.contains("/tags/list")).count();
    assert_eq!(pages, 2);
}

#[test]
fn a_registry_that_refuses_deletion_gets_a_clear_error() {
    let d = Double::start();
    let rt = rt();
    match rt.block_on(d.store().delete_manifest(&Digest::of(b"x"))) {
        Err(e @ StoreError::RemoteUnsupported { .. }) => {
            assert!(e.to_string().contains("does not allow deleting"), "{e}");
        }
        other => panic!("expected RemoteUnsupported, got {other:?}"),
    }
}

#[test]
fn a_release_and_its_signature_copy_from_one_registry_to_another() {
    // Source: basic auth; destination: bearer tokens. The same copy routine
    // push and pull use, with both ends remote.
    let from = Registry::start(RegistryOptions {
        auth: Auth::Basic {
            user: "ci".into(),
            password: "from-pw".into(),
        },
    });
    let to = Registry::start(RegistryOptions {
        auth: Auth::Token {
            user: "mirror".into(),
            password: "to-pw".into(),
        },
    });
    let w = project(&from, "origin");
    w.build_ok("1.0.0");
    w.run_with_env(&["keygen"], &[("SQUIZZLE_KEY_PASSWORD", "k-pass")])
        .success();
    w.run_with_env(
        &["sign", "1.0.0", "--key", "squizzle.key"],
        &[("SQUIZZLE_KEY_PASSWORD", "k-pass")],
    )
    .success();
    w.run(&["push", "1.0.0"]).success();

    let rt = rt();
    let version = squizzle::core::version::Version::parse("1.0.0").unwrap();
    let (src, dst) = (store(&from), store(&to));
    let copied = rt
        .block_on(squizzle::ops::release::fetch::copy_release(
            &src,
            &dst,
            &version,
            "empty",
            &|_| {},
            &squizzle::ops::release::vet::NoVet,
        ))
        .expect("registry to registry copy");
    assert!(!copied.already_there);
    assert_eq!(copied.blobs_copied, 2, "config and layer");
    assert_eq!(copied.referrers_copied, 1, "the signature");
    assert_eq!(
        release(&rt, &dst, "1.0.0").digest,
        release(&rt, &src, "1.0.0").digest
    );
    // Copying again finds everything there.
    let again = rt
        .block_on(squizzle::ops::release::fetch::copy_release(
            &src,
            &dst,
            &version,
            "empty",
            &|_| {},
            &squizzle::ops::release::vet::NoVet,
        ))
        .unwrap();
    assert!(again.already_there, "{again:?}");
    assert_eq!(again.blobs_copied, 0);

    // A deploy job reading the mirror pulls and verifies the signed release.
    let mirror = project(&to, "deploy");
    std::fs::copy(w.path("squizzle.pub"), mirror.path("squizzle.pub")).unwrap();
    mirror.run(&["pull", "1.0.0"]).success();
    mirror
        .run(&["verify", "1.0.0", "--offline", "--key", "squizzle.pub"])
        .success()
        .stdout_has("verified");
}
