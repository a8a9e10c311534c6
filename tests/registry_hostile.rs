//! `squizzle pull` against a registry that lies (`squizzle_test_support::fake_registry`):
//! blob bytes that do not match their digest, a tag replayed onto an older
//! release, manifests of the wrong kind or size, a manifest redirected to
//! another host, and a token realm on another host that must never see the
//! configured password. Every refusal leaves the local store exactly as it was.

use std::collections::BTreeMap;
use std::sync::Arc;

use squizzle_test_support::World;
use squizzle_test_support::fake_registry::{
    self, DOCKER_MANIFEST, FakeRegistry, OCI_MANIFEST, Release, Response,
};

const REPO: &str = "acme/migrations";
const USER: &str = "squizzle-ci";
const PASSWORD: &str = "hostile-Test-passw0rd";

/// A release built by the real binary, as bytes to serve.
fn built(version: &str, extra_migration: bool) -> Release {
    let w = World::plain();
    if extra_migration {
        w.write("migrations/0004_more.sql", "CREATE TABLE more (id int);\n");
    }
    w.build_ok(version);
    let digest = w.tag_digest(version);
    let mut r = Release {
        manifest: w.blob(&digest),
        ..Release::default()
    };
    for d in [r.config_digest(), r.layer_digest()] {
        r.blobs.insert(d.clone(), w.blob(&d));
    }
    r
}

/// A project whose registry is `host`, with a local store that already holds
/// another release (so "untouched" is checked against real content).
fn puller(host: &str, creds: bool) -> World {
    let mut w = World::plain();
    let mut cfg =
        format!("[project]\nmigrations = \"migrations\"\n\n[registry]\nurl = \"{host}/{REPO}\"\n");
    if creds {
        cfg.push_str("username = \"${REG_USER}\"\npassword = \"${REG_PASSWORD}\"\n");
        w.set_env("REG_USER", USER);
        w.set_env("REG_PASSWORD", PASSWORD);
    }
    w.config(&cfg);
    // Other content than the served releases, so no blob is shared.
    w.write(
        "migrations/0005_local.sql",
        "CREATE TABLE local_only (id int);\n",
    );
    w.build_ok("0.1.0");
    w
}

/// Every file of the local store with its content.
fn snapshot(w: &World) -> BTreeMap<String, Vec<u8>> {
    w.files_under("db/oci")
        .into_iter()
        .map(|f| {
            let bytes = w.read(&format!("db/oci/{f}"));
            (f, bytes)
        })
        .collect()
}

fn serve(release: Release, tag: &'static str) -> FakeRegistry {
    FakeRegistry::start("127.0.0.1", move |req| {
        release
            .answer(REPO, tag, req)
            .unwrap_or_else(|| Response::not_found("NAME_UNKNOWN"))
    })
}

fn blob_requests(reg: &FakeRegistry, digest: &str) -> usize {
    reg.requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path().ends_with(&format!("/blobs/{digest}")))
        .count()
}

#[test]
fn a_layer_whose_bytes_do_not_match_its_digest_exits_6_and_leaves_the_store_untouched() {
    let mut release = built("1.0.0", false);
    let layer = release.layer_digest();
    let bytes = release.blobs.get_mut(&layer).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    let reg = serve(release, "1.0.0");
    let w = puller(&reg.host(), false);
    let before = snapshot(&w);
    w.run(&["pull", "1.0.0"]).code(6).says(&layer);
    assert_eq!(snapshot(&w), before, "the store changed");
    w.run(&["verify", "1.0.0", "--offline"]).code(12);
    assert_eq!(blob_requests(&reg, &layer), 1);
}

#[test]
fn a_tag_replayed_onto_an_older_release_exits_5_before_fetching_the_tarball() {
    // A genuine 0.9.0, served as 1.0.0.
    let old = built("0.9.0", false);
    let layer = old.layer_digest();
    let reg = serve(old, "1.0.0");
    let w = puller(&reg.host(), false);
    let before = snapshot(&w);
    w.run(&["pull", "1.0.0"])
        .code(5)
        .says("1.0.0")
        .says("0.9.0");
    assert_eq!(snapshot(&w), before, "the store changed");
    assert_eq!(
        blob_requests(&reg, &layer),
        0,
        "the tarball was fetched although the version was already known to be wrong"
    );
    w.run(&["verify", "1.0.0", "--offline"]).code(12);
}

/// Serves `release` with its manifest JSON changed by `edit`, under
/// `content_type`.
fn serve_edited(
    release: Release,
    content_type: &'static str,
    edit: impl Fn(&mut serde_json::Value),
) -> FakeRegistry {
    let mut m = release.manifest_json();
    edit(&mut m);
    let bytes = serde_json::to_vec(&m).unwrap();
    let digest = fake_registry::sha256_digest(&bytes);
    FakeRegistry::start("127.0.0.1", move |req| {
        let path = req.path();
        if path.ends_with("/manifests/1.0.0") || path.ends_with(&format!("/manifests/{digest}")) {
            return Response::manifest(content_type, &bytes);
        }
        release
            .answer(REPO, "1.0.0", req)
            .unwrap_or_else(|| Response::not_found("NAME_UNKNOWN"))
    })
}

#[test]
fn manifests_of_the_wrong_kind_are_refused_with_exit_6() {
    let release = built("1.0.0", false);
    let cases: Vec<(FakeRegistry, &str)> = vec![
        // A docker image manifest.
        (
            serve_edited(release.clone(), DOCKER_MANIFEST, |m| {
                m["mediaType"] = DOCKER_MANIFEST.into();
            }),
            DOCKER_MANIFEST,
        ),
        // A plain OCI image manifest without our artifactType.
        (
            serve_edited(release.clone(), OCI_MANIFEST, |m| {
                m.as_object_mut().unwrap().remove("artifactType");
            }),
            "artifactType",
        ),
        // A container image: image config, not a squizzle manifest.
        (
            serve_edited(release.clone(), OCI_MANIFEST, |m| {
                m["config"]["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
            }),
            "config mediaType",
        ),
    ];
    for (reg, says) in cases {
        let w = puller(&reg.host(), false);
        let before = snapshot(&w);
        w.run(&["pull", "1.0.0"]).code(6).says(says);
        assert_eq!(snapshot(&w), before, "the store changed");
    }
}

#[test]
fn an_oversized_manifest_is_refused_with_exit_6() {
    const SIZE: u64 = 5 * 1024 * 1024;
    let reg = FakeRegistry::start("127.0.0.1", |req| {
        if req.path().contains("/manifests/") {
            return Response::new(200)
                .header("Content-Type", OCI_MANIFEST)
                .filler(SIZE, b' ');
        }
        Response::new(200).body("{}")
    });
    let w = puller(&reg.host(), false);
    let before = snapshot(&w);
    w.run(&["pull", "1.0.0"])
        .code(6)
        .says("manifest")
        .says(&(4 * 1024 * 1024).to_string());
    assert_eq!(snapshot(&w), before, "the store changed");
    // The manifest body is streamed with a running count: reading stops
    // once the 4 MiB cap is passed (see docs/registry.md).
    eprintln!(
        "oversized manifest: the client accepted {} of {SIZE} bytes",
        reg.body_bytes_sent()
    );
}

/// Decision (docs/registry.md): a manifest comes from the registry host
/// itself. A registry that redirects a manifest request to another host is
/// refused with exit 6 (integrity: an untrusted content source) before the
/// other host is asked anything; blobs may still be redirected (to a CDN).
#[test]
fn a_manifest_redirected_to_another_host_is_refused() {
    let release = built("1.0.0", false);
    let other = serve(release.clone(), "1.0.0");
    let other_host = other.host().replace("127.0.0.1", "localhost");
    let target = other_host.clone();
    let release = Arc::new(release);
    let reg = FakeRegistry::start("127.0.0.1", move |req| {
        if req.header("Authorization").is_none() {
            return Response::new(401).header("WWW-Authenticate", r#"Basic realm="fake""#);
        }
        if req.path().contains("/manifests/") {
            return Response::new(307)
                .header("Location", &format!("http://{target}{}", req.target));
        }
        release
            .answer(REPO, "1.0.0", req)
            .unwrap_or_else(|| Response::not_found("NAME_UNKNOWN"))
    });
    let w = puller(&reg.host(), true);
    let before = snapshot(&w);
    w.run(&["pull", "1.0.0"])
        .code(6)
        .says("redirected")
        .says(&other_host)
        .says("refuses manifests from anywhere but the registry")
        .does_not_say(PASSWORD);
    assert_eq!(snapshot(&w), before, "the store changed");
    assert!(
        reg.requests()
            .iter()
            .any(|r| r.header("Authorization").is_some()),
        "the registry should have been asked with credentials"
    );
    let redirected = other.requests();
    assert!(
        redirected.is_empty(),
        "the redirect target was asked: {redirected:?}"
    );
}

#[test]
fn a_token_realm_on_another_host_never_receives_the_password() {
    // The "token service" on another loopback address records what it gets.
    let realm = FakeRegistry::start("127.0.0.2", |_| {
        Response::new(200)
            .header("Content-Type", "application/json")
            .body(r#"{"token":"stolen-nothing","expires_in":300}"#)
    });
    let realm_url = format!("http://{}/token", realm.host());
    let release = built("1.0.0", false);
    let reg = FakeRegistry::start("127.0.0.1", move |req| {
        if req.header("Authorization").is_none() {
            return Response::new(401)
                .header(
                    "WWW-Authenticate",
                    &format!(
                        r#"Bearer realm="{realm_url}",service="fake",scope="repository:{REPO}:pull""#
                    ),
                )
                .header("Content-Type", "application/json")
                .body(r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":{}}]}"#);
        }
        release
            .answer(REPO, "1.0.0", req)
            .unwrap_or_else(|| Response::not_found("NAME_UNKNOWN"))
    });
    let w = puller(&reg.host(), true);
    let before = snapshot(&w);
    w.run(&["pull", "1.0.0", "-vvv"])
        .code(4)
        .says(&realm.host())
        .does_not_say(PASSWORD);
    assert_eq!(snapshot(&w), before, "the store changed");
    for r in realm.requests() {
        assert!(
            r.header("Authorization").is_none()
                && !String::from_utf8_lossy(&r.body).contains(PASSWORD),
            "the password went to the foreign realm: {r:?}"
        );
    }
}

/// `[::ffff:127.0.0.1]` reaches the loopback listener but is not a loopback
/// name to squizzle, so it stands in for a remote plain-HTTP registry.
#[test]
fn plain_http_to_a_non_loopback_registry_needs_the_plain_http_flag() {
    let release = built("1.0.0", false);
    let reg = serve(release, "1.0.0");
    let host = format!(
        "[::ffff:127.0.0.1]:{}",
        reg.host().rsplit(':').next().unwrap()
    );
    for creds in [false, true] {
        let w = puller(&host, creds);
        let before = snapshot(&w);
        w.run(&["pull", "1.0.0"]).code(3).says("--plain-http");
        assert_eq!(snapshot(&w), before, "the store changed");
        w.run(&["pull", "1.0.0", "--insecure-registry"]).success();
        w.run(&["verify", "1.0.0"]).success();
    }
    // The configuration key does the same.
    let w = puller(&host, false);
    let cfg = w.read_string("squizzle.toml");
    w.config(&format!("{cfg}insecure = true\n"));
    w.run(&["pull", "1.0.0"]).success();
}

/// Every command that reaches the registry refuses plain HTTP to a host that
/// is not on loopback, naming the flag, and takes it with the flag, either
/// alias or the variable (not only push and pull).
#[test]
fn plain_http_is_a_flag_of_every_command_that_talks_to_a_registry() {
    let release = built("1.0.0", false);
    let reg = serve(release, "1.0.0");
    let host = format!(
        "[::ffff:127.0.0.1]:{}",
        reg.host().rsplit(':').next().unwrap()
    );
    let db = squizzle_test_support::pg::shared().create_database("plain_http");
    let url = format!("{db}?sslmode=disable");
    let commands: [&[&str]; 4] = [
        &["verify", "1.0.0"],
        &["list"],
        &["apply", "1.0.0", "--dry-run"],
        &["audit", "1.0.0"],
    ];
    for args in commands {
        let w = puller(&host, false);
        let refused = w.run_with_env(args, &[("DATABASE_URL", &url)]);
        if args[0] == "audit" || args[0] == "list" {
            // Both report what they could not read instead of failing
            // (list falls back to the local store).
            refused.says("--plain-http");
        } else {
            refused.code(3).says("--plain-http");
        }
        for how in [
            "--plain-http",
            "--allow-http-registry",
            "--insecure-registry",
            "",
        ] {
            let w = puller(&host, false);
            let mut with: Vec<&str> = args.to_vec();
            let mut env = vec![("DATABASE_URL", url.as_str())];
            if how.is_empty() {
                env.push(("SQUIZZLE_PLAIN_HTTP", "true"));
            } else {
                with.push(how);
            }
            let run = w.run_with_env(&with, &env).success();
            assert!(
                !run.output().contains("--plain-http"),
                "{with:?} {how}: {}",
                run.output()
            );
        }
    }
}

/// `release` with its tarball replaced by `tarball`: the squizzle manifest's
/// tarball record and every descriptor are made to agree with it, as a
/// hostile publisher would, so only the tarball's contents are wrong.
fn with_tarball(release: &Release, tarball: Vec<u8>) -> Release {
    let layer_digest = fake_registry::sha256_digest(&tarball);
    let mut config: serde_json::Value =
        serde_json::from_slice(&release.blobs[&release.config_digest()]).unwrap();
    config["tarball"]["sha256"] = layer_digest.clone().into();
    config["tarball"]["size"] = tarball.len().into();
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_digest = fake_registry::sha256_digest(&config_bytes);
    let mut manifest = release.manifest_json();
    manifest["config"]["digest"] = config_digest.clone().into();
    manifest["config"]["size"] = config_bytes.len().into();
    manifest["layers"][0]["digest"] = layer_digest.clone().into();
    manifest["layers"][0]["size"] = tarball.len().into();
    let mut r = Release {
        manifest: serde_json::to_vec(&manifest).unwrap(),
        ..Release::default()
    };
    r.blobs.insert(config_digest, config_bytes);
    r.blobs.insert(layer_digest, tarball);
    r
}

#[test]
fn a_hostile_tarball_is_refused_by_pull_and_never_enters_the_store() {
    let release = built("1.0.0", false);
    for name in ["symlink", "duplicate", "unexpected", "missing", "gzip-bomb"] {
        let tarball = std::fs::read(
            squizzle_test_support::repo_root().join(format!("fixtures/hostile/{name}.tar.gz")),
        )
        .unwrap();
        let reg = serve(with_tarball(&release, tarball), "1.0.0");
        let w = puller(&reg.host(), false);
        let before = snapshot(&w);
        w.run(&["pull", "1.0.0", "-vv"])
            .code(6)
            .says("fails its integrity checks")
            .says("it was not stored")
            // A refusal met while downloading is settled by inspecting the
            // staged file, which gives the error a pull always gave.
            .stderr_has("inspecting the staged tarball");
        assert_eq!(snapshot(&w), before, "{name}: the store changed");
        w.run(&["verify", "1.0.0", "--offline"]).code(12);
    }
}

/// The release's tarball rebuilt with `edit` applied to the bytes of its
/// first file, and the squizzle manifest updated to list the new hash and
/// size: a release consistent in every digest, whose content squizzle's
/// build would have refused.
fn with_edited_file(release: &Release, edit: impl Fn(&mut Vec<u8>)) -> Release {
    edited(release, edit, true)
}

/// The release's tarball rebuilt with `edit` applied to its first file;
/// with `relist`, the squizzle manifest lists the edited file's hash and
/// size, else it keeps the original ones (every blob digest still agrees).
fn edited(release: &Release, edit: impl Fn(&mut Vec<u8>), relist: bool) -> Release {
    use std::io::Read;
    let layer = &release.blobs[&release.layer_digest()];
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&layer[..]));
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        entries.push((path, bytes));
    }
    edit(&mut entries[0].1);
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    for (path, bytes) in &entries {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, path, &bytes[..]).unwrap();
    }
    let tarball = builder.into_inner().unwrap().finish().unwrap();
    let mut edited = with_tarball(release, tarball);
    if !relist {
        return edited;
    }
    // List the edited file's new hash and size in the squizzle manifest.
    let config_digest = edited.config_digest();
    let mut config: serde_json::Value =
        serde_json::from_slice(&edited.blobs[&config_digest]).unwrap();
    let (path, bytes) = &entries[0];
    for f in config["files"].as_array_mut().unwrap() {
        if f["path"] == path.as_str() {
            f["sha256"] = fake_registry::sha256_digest(bytes).into();
            f["size"] = bytes.len().into();
        }
    }
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let new_digest = fake_registry::sha256_digest(&config_bytes);
    let mut manifest = edited.manifest_json();
    manifest["config"]["digest"] = new_digest.clone().into();
    manifest["config"]["size"] = config_bytes.len().into();
    edited.blobs.remove(&config_digest);
    edited.blobs.insert(new_digest, config_bytes);
    edited.manifest = serde_json::to_vec(&manifest).unwrap();
    edited
}

#[test]
fn a_release_with_text_squizzle_would_not_build_is_refused_by_pull() {
    let release = built("1.0.0", false);
    for (what, edit, says) in [
        (
            "invalid UTF-8",
            Box::new(|b: &mut Vec<u8>| b.extend_from_slice(b"-- \xff\xfe\n"))
                as Box<dyn Fn(&mut Vec<u8>)>,
            "is not valid UTF-8",
        ),
        (
            "a NUL byte",
            Box::new(|b: &mut Vec<u8>| b.extend_from_slice(b"-- \0\n")),
            "contains a NUL byte",
        ),
    ] {
        let reg = serve(with_edited_file(&release, edit), "1.0.0");
        let w = puller(&reg.host(), false);
        let before = snapshot(&w);
        w.run(&["pull", "1.0.0"])
            .code(6)
            .says(says)
            .says("it was not stored");
        assert_eq!(snapshot(&w), before, "{what}: the store changed");
    }
}

/// The tarball is well formed and every blob digest agrees, but one file is
/// not what the squizzle manifest lists: the pull's inspection (run while the
/// layer downloads) refuses it, names the file, and stores nothing; the
/// untouched release then pulls and verifies.
#[test]
fn a_file_that_differs_from_its_manifest_hash_is_refused_by_pull() {
    let release = built("1.0.0", false);
    let bad = edited(
        &release,
        |b: &mut Vec<u8>| b.extend_from_slice(b"DROP TABLE users;\n"),
        false,
    );
    let reg = serve(bad, "1.0.0");
    let w = puller(&reg.host(), false);
    let before = snapshot(&w);
    w.run(&["pull", "1.0.0", "-vv"])
        .code(6)
        .says("fails its integrity checks")
        .says("does not match the hash its manifest lists")
        .says("it was not stored")
        // Well formed: the verdict is the one reached while it downloaded.
        .stderr_has("tarball inspected while it downloaded");
    assert_eq!(snapshot(&w), before, "the store changed");

    let reg = serve(release, "1.0.0");
    let w = puller(&reg.host(), false);
    w.run(&["pull", "1.0.0", "-vv"])
        .success()
        .stderr_has("tarball inspected while it downloaded");
    w.run(&["verify", "1.0.0", "--offline"]).success();
}
