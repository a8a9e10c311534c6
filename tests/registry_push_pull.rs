//! `squizzle push` and `squizzle pull` against a real registry (CNCF
//! distribution 2.8 from `squizzle_test_support::registry`), in each authentication
//! mode, plus the failure cases and their exit codes: unreachable (3), refused
//! credentials (4), conflicting version (5), tampered blob (6), missing
//! version (12).

use std::fs;
use std::net::TcpListener;
use std::path::PathBuf;

use squizzle_test_support::World;
use squizzle_test_support::registry::{self, Auth, Registry, RegistryOptions};

const REPO: &str = "acme/migrations";
const USER: &str = "squizzle-ci";
/// With a colon and a space, which basic auth must survive.
const PASSWORD: &str = "correct horse:battery";

fn start(auth: Auth) -> Registry {
    Registry::start(RegistryOptions { auth })
}

/// `squizzle.toml` for a plain project pointing at `url`, with credentials
/// from `${REG_USER}` / `${REG_PASSWORD}` when `creds`.
fn config(url: &str, creds: bool) -> String {
    let mut s = format!("[project]\nmigrations = \"migrations\"\n\n[registry]\nurl = \"{url}\"\n");
    if creds {
        s.push_str("username = \"${REG_USER}\"\npassword = \"${REG_PASSWORD}\"\n");
    }
    s
}

fn project(reg: &Registry, password: Option<&str>) -> World {
    let mut w = World::plain();
    w.config(&config(
        &format!("{}/{REPO}", reg.url()),
        password.is_some(),
    ));
    if let Some(p) = password {
        w.set_env("REG_USER", USER);
        w.set_env("REG_PASSWORD", p);
    }
    w
}

/// An empty checkout elsewhere with the same configuration.
fn fresh(reg: &Registry, password: Option<&str>) -> World {
    let mut w = World::named("elsewhere");
    w.config(&config(
        &format!("{}/{REPO}", reg.url()),
        password.is_some(),
    ));
    if let Some(p) = password {
        w.set_env("REG_USER", USER);
        w.set_env("REG_PASSWORD", p);
    }
    w
}

/// Blob downloads the registry has served so far (from its access log).
fn blob_gets(reg: &Registry) -> usize {
    fs::read_to_string(reg.log_path())
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&format!("\"GET /v2/{REPO}/blobs/sha256:")))
        .count()
}

fn round_trip(reg: &Registry, password: Option<&str>) {
    let w = project(reg, password);
    w.build_ok("1.0.0");
    let digest = w.tag_digest("1.0.0");
    let pushed = w
        .run(&["push", "1.0.0", "--output", "json"])
        .success()
        .json();
    assert_eq!(pushed["digest"], digest.as_str());
    assert_eq!(pushed["blobsCopied"], 2);
    assert_eq!(pushed["alreadyThere"], false);

    // An independent client sees exactly the bytes we built.
    let raw = reg
        .skopeo_inspect_raw(&format!("{REPO}:1.0.0"))
        .expect("skopeo inspect");
    assert_eq!(raw.as_bytes(), w.blob(&digest).as_slice());
    let m: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(m["artifactType"], "application/vnd.squizzle.migrations.v1");
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.squizzle.migrations.v1.tar+gzip"
    );

    // Pushing again is a no-op.
    let again = w
        .run(&["push", "1.0.0", "--output", "json"])
        .success()
        .json();
    assert_eq!(again["alreadyThere"], true);
    w.run(&["push", "1.0.0"]).success().says("already in");

    // Elsewhere: pull, then verify from the local store.
    let other = fresh(reg, password);
    other.run(&["verify", "1.0.0", "--offline"]).code(12);
    let pulled = other
        .run(&["pull", "1.0.0", "--output", "json"])
        .success()
        .json();
    assert_eq!(pulled["digest"], digest.as_str());
    assert_eq!(pulled["blobsCopied"], 2);
    assert_eq!(other.tag_digest("1.0.0"), digest);
    assert_eq!(other.blob(&digest), w.blob(&digest));
    other
        .run(&["verify", "1.0.0"])
        .success()
        .says("Verifying file checksums (3/3)");

    // A second pull fetches no blob.
    let before = blob_gets(reg);
    assert!(before >= 2, "the access log should show the first pull");
    let second = other
        .run(&["pull", "1.0.0", "--output", "json"])
        .success()
        .json();
    assert_eq!(second["alreadyThere"], true);
    assert_eq!(second["blobsCopied"], 0);
    assert_eq!(blob_gets(reg), before, "{}", reg.log_tail(20));

    // Pulling a version the registry lacks: 12, naming what exists.
    other.run(&["pull", "9.9.9"]).code(12).says("1.0.0");
}

#[test]
fn push_pull_verify_anonymous() {
    let reg = start(Auth::None);
    round_trip(&reg, None);
}

#[test]
fn push_pull_verify_basic_auth() {
    let reg = start(Auth::basic(USER, PASSWORD));
    round_trip(&reg, Some(PASSWORD));
}

#[test]
fn push_pull_verify_token_auth() {
    let reg = start(Auth::token(USER, PASSWORD));
    round_trip(&reg, Some(PASSWORD));
    assert!(
        reg.token_requests().iter().any(|r| r.granted),
        "the token flow should have been used"
    );
}

#[test]
fn refused_credentials_exit_4_without_leaking_the_password() {
    for auth in [Auth::basic(USER, PASSWORD), Auth::token(USER, PASSWORD)] {
        let reg = start(auth);
        let wrong = "wrong-Passw0rd-never-printed";
        let w = project(&reg, Some(wrong));
        w.build_ok("1.0.0");
        for args in [
            &["push", "1.0.0"][..],
            &["push", "1.0.0", "--output", "json"],
            &["pull", "1.0.0", "-vvv"],
        ] {
            w.run(args)
                .code(4)
                .says("refused")
                .does_not_say(wrong)
                .does_not_say(PASSWORD);
        }
        // Not even at the most verbose logging of every library.
        let encoded = registry::basic_authorization(USER, wrong);
        let encoded = encoded.trim_start_matches("Basic ");
        let traced = w
            .run_with_env(&["pull", "1.0.0"], &[("SQUIZZLE_LOG", "trace")])
            .code(4)
            .does_not_say(wrong)
            .does_not_say(encoded);
        assert!(
            traced.stderr.lines().count() > 10,
            "trace logging should be on: {}",
            traced.stderr
        );
        // No credentials at all against a registry that wants them: also 4.
        let anon = World::plain();
        anon.config(&config(&format!("{}/{REPO}", reg.url()), false));
        anon.build_ok("1.0.0");
        anon.run(&["push", "1.0.0"]).code(4);
    }
}

#[test]
fn unreachable_registry_exits_3() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let w = World::plain();
    w.config(&config(&format!("127.0.0.1:{port}/{REPO}"), false));
    w.build_ok("1.0.0");
    w.run(&["push", "1.0.0"]).code(3).says("cannot reach");
    w.run(&["pull", "1.0.0"]).code(3);
}

#[test]
fn bad_registry_urls_are_usage_errors() {
    let w = World::plain();
    w.build_ok("1.0.0");
    w.config(&config("https://user:s3cret-pw@ghcr.io/acme/m", false));
    // A literal password in a URL is refused by the config loader or the parser.
    let run = w.run(&["push", "1.0.0"]).code(2);
    assert!(!run.output().contains("s3cret-pw"), "{}", run.output());
    w.config(&config("https://ghcr.io/acme/m", false));
    w.run(&["push", "1.0.0"]).code(2).says("ghcr.io/acme/m");
    w.config("[project]\nmigrations = \"migrations\"\n");
    w.run(&["push", "1.0.0"])
        .code(2)
        .says("no registry configured");
}

#[test]
fn push_of_a_version_the_registry_has_with_other_content_exits_5() {
    let reg = start(Auth::None);
    let a = project(&reg, None);
    a.build_ok("1.0.0");
    a.run(&["push", "1.0.0"]).success();
    let b = project(&reg, None);
    b.write("migrations/0004_more.sql", "CREATE TABLE more (id int);\n");
    b.build_ok("1.0.0");
    b.run(&["push", "1.0.0"]).code(5).says("immutable");
    // The registry still serves the first release.
    let raw = reg.skopeo_inspect_raw(&format!("{REPO}:1.0.0")).unwrap();
    assert_eq!(raw.as_bytes(), a.blob(&a.tag_digest("1.0.0")).as_slice());
    // Pulling it into a store that has another 1.0.0 is refused too.
    b.run(&["pull", "1.0.0"]).code(5);
}

/// The data file of a blob in the registry's storage.
fn registry_blob_file(reg: &Registry, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap();
    reg.dir()
        .join("data/docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
}

#[test]
fn tampered_blob_in_the_registry_exits_6_and_leaves_nothing_usable() {
    let reg = start(Auth::None);
    let w = project(&reg, None);
    w.build_ok("1.0.0");
    w.run(&["push", "1.0.0"]).success();
    let layer = w.layer_digest("1.0.0");
    let file = registry_blob_file(&reg, &layer);
    let mut bytes = fs::read(&file).expect("the layer in the registry's storage");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&file, &bytes).unwrap();

    let other = fresh(&reg, None);
    other.run(&["pull", "1.0.0"]).code(6).says(&layer);
    other.run(&["verify", "1.0.0", "--offline"]).code(12);
    // No half-written blob and no layer blob under its name.
    let leftovers: Vec<String> = other
        .files_under("db/oci/blobs/sha256")
        .into_iter()
        .filter(|f| f.starts_with(".tmp") || f == layer.strip_prefix("sha256:").unwrap())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn grown_blob_exits_6_and_a_tampered_manifest_fails_the_pull() {
    let reg = start(Auth::None);
    let w = project(&reg, None);
    w.build_ok("1.0.0");
    w.run(&["push", "1.0.0"]).success();

    // The layer with bytes appended: refused once it exceeds its size.
    let layer = w.layer_digest("1.0.0");
    let file = registry_blob_file(&reg, &layer);
    let original = fs::read(&file).unwrap();
    let mut grown = original.clone();
    grown.extend_from_slice(&[0u8; 4096]);
    fs::write(&file, &grown).unwrap();
    let other = fresh(&reg, None);
    other
        .run(&["pull", "1.0.0"])
        .code(6)
        .says(&format!("more than {} bytes", original.len()));
    other.run(&["verify", "1.0.0", "--offline"]).code(12);
    fs::write(&file, &original).unwrap();

    // The manifest itself altered in storage: distribution 2.8 checks its
    // manifests on the way out and answers 500, which squizzle reports as a
    // registry failure (1); either way nothing lands in the local store.
    let digest = w.tag_digest("1.0.0");
    let file = registry_blob_file(&reg, &digest);
    let text = fs::read_to_string(&file).unwrap();
    fs::write(
        &file,
        text.replacen("schemaVersion\":2", "schemaVersion\":3", 1),
    )
    .unwrap();
    let third = fresh(&reg, None);
    third.run(&["pull", "1.0.0"]).code(1).says("500");
    third.run(&["verify", "1.0.0", "--offline"]).code(12);
}
