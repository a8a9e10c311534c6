//! `squizzle push` and `pull` through a faulty network: a fault-injecting
//! proxy (`squizzle_test_support::fault_proxy`) in front of a real registry
//! (`squizzle_test_support::registry`).
//!
//! Transient failures (bursts of 503, 429 with `Retry-After`, a connection cut
//! mid-blob, a stall) are ridden out by the retry policy
//! (`src/store/registry/retry.rs`); a registry that stays unavailable ends in
//! exit 3 with a message naming the attempts, and leaves the local store
//! without a tag or a temporary file; permanent refusals are not retried.
//!
//! The waits are shortened with `SQUIZZLE_RETRY_BASE_MS` (it can only shorten
//! them), so the whole file runs in seconds.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use squizzle_test_support::World;
use squizzle_test_support::fault_proxy::{Fault, FaultProxy, Rule};
use squizzle_test_support::registry::{Registry, RegistryOptions};

const REPO: &str = "acme/migrations";
/// Requests about our repository (not the `GET /v2/` pings, whose failures
/// oci-client ignores).
const REPO_PATH: &str = "/v2/acme/migrations/";

struct Setup {
    // Field order: the proxy goes before the registry behind it.
    proxy: FaultProxy,
    _registry: Registry,
}

fn setup() -> Setup {
    let registry = Registry::start(RegistryOptions::default());
    let upstream = format!("127.0.0.1:{}", registry.port()).parse().unwrap();
    Setup {
        proxy: FaultProxy::start(upstream),
        _registry: registry,
    }
}

fn config(proxy: &FaultProxy) -> String {
    format!(
        "[project]\nmigrations = \"migrations\"\n\n[registry]\nurl = \"{}/{REPO}\"\n",
        proxy.url()
    )
}

fn world(name: &str, proxy: &FaultProxy) -> World {
    let mut w = World::named(name);
    w.config(&config(proxy));
    w.set_env("SQUIZZLE_RETRY_BASE_MS", "5");
    w
}

/// A project whose layer is a few MB: one migration of ~5 MB of INSERTs
/// with incompressible-ish (pseudo-random hex) values.
fn big_project(proxy: &FaultProxy) -> World {
    let w = world("project", proxy);
    w.write(
        "migrations/0001_create.sql",
        "CREATE TABLE blobs (id bigint PRIMARY KEY, v text);\n",
    );
    let mut sql = String::with_capacity(5_200_000);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut id = 0u64;
    while sql.len() < 5_000_000 {
        id += 1;
        let _ = write!(sql, "INSERT INTO blobs VALUES ({id}, '");
        for _ in 0..8 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let _ = write!(sql, "{x:016x}");
        }
        sql.push_str("');\n");
    }
    w.write("migrations/0002_fill.sql", sql);
    w
}

fn small_project(proxy: &FaultProxy) -> World {
    let w = world("project", proxy);
    w.write(
        "migrations/0001_create_users.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY);\n",
    );
    w
}

fn tmp_files(w: &World) -> Vec<String> {
    w.files_under("db/oci")
        .into_iter()
        .filter(|f| f.contains(".tmp"))
        .collect()
}

/// Pulls `version` into a fresh checkout and verifies it there.
fn pull_and_verify(proxy: &FaultProxy, digest: &str) -> World {
    let other = world("elsewhere", proxy);
    // The tarball is judged from the download stream itself, resumed or
    // retried as it may have been, not from a second read of the file.
    let pulled = other
        .run(&["pull", "1.0.0", "--output", "json", "-vv"])
        .success()
        .stderr_has("tarball inspected while it downloaded")
        .json();
    assert_eq!(pulled["digest"], digest);
    assert_eq!(other.tag_digest("1.0.0"), digest);
    other.run(&["verify", "1.0.0"]).success();
    assert_eq!(tmp_files(&other), Vec::<String>::new());
    other
}

#[test]
fn a_burst_of_503_is_ridden_out_both_ways() {
    let s = setup();
    let w = small_project(&s.proxy);
    w.build_ok("1.0.0");
    let digest = w.tag_digest("1.0.0");

    let burst = Fault::status(503);
    s.proxy.arm(Rule::times(burst.clone(), 3).path(REPO_PATH));
    let run = w
        .run(&["push", "1.0.0", "--output", "json", "-v"])
        .success()
        .stderr_has("retrying");
    assert_eq!(run.json()["digest"], digest.as_str());
    assert_eq!(s.proxy.count(&burst), 3);

    s.proxy.arm(Rule::times(burst.clone(), 3).path(REPO_PATH));
    pull_and_verify(&s.proxy, &digest);
    assert_eq!(s.proxy.count(&burst), 6);
}

#[test]
fn rate_limiting_429_is_waited_out() {
    let s = setup();
    let w = small_project(&s.proxy);
    w.build_ok("1.0.0");
    let digest = w.tag_digest("1.0.0");

    let limited = Fault::too_many_requests();
    // During the push: the blob existence checks and upload sessions.
    s.proxy.arm(Rule::times(limited.clone(), 2).path("/blobs/"));
    // Not a terminal: one plain progress line per blob sent, no redraws.
    let layer = w.layer_digest("1.0.0");
    let run = w
        .run(&["push", "1.0.0"])
        .success()
        .stderr_has(&format!("↑ layer {}…", &layer[..19]))
        .stderr_has("↑ config sha256:");
    assert!(!run.stderr.contains('\r'), "{}", run.stderr);
    assert!(
        !run.stdout.contains('↑'),
        "progress is not a result: {}",
        run.stdout
    );
    assert_eq!(s.proxy.count(&limited), 2);

    // During the pull: the blob downloads.
    s.proxy.arm(
        Rule::times(limited.clone(), 2)
            .method("GET")
            .path("/blobs/"),
    );
    let other = pull_and_verify(&s.proxy, &digest);
    assert_eq!(s.proxy.count(&limited), 4);
    // JSON mode prints the report only; text mode names each blob fetched
    // (on stderr: progress, not the result).
    other.remove(&format!(
        "db/oci/blobs/sha256/{}",
        layer.trim_start_matches("sha256:")
    ));
    other
        .run(&["pull", "1.0.0"])
        .success()
        .stderr_has(&format!("↓ layer {}…", &layer[..19]));
}

#[test]
fn a_connection_cut_mid_blob_restarts_the_transfer_cleanly() {
    let s = setup();
    let w = big_project(&s.proxy);
    w.build_ok("1.0.0");
    let digest = w.tag_digest("1.0.0");
    let layer = w.layer_digest("1.0.0");
    let layer_size = w.blob(&layer).len();
    assert!(
        layer_size > 2_000_000,
        "the layer should be a few MB, is {layer_size} bytes"
    );
    // The first upload request of the layer is cut: the upload starts over
    // (a new session, the file read again from its start).
    let cut_upload = Fault::DropAfter { bytes: 0 };
    s.proxy.arm(
        Rule::times(cut_upload.clone(), 1)
            .method("PATCH")
            .path("/blobs/uploads/"),
    );
    w.run(&["push", "1.0.0"]).success();
    assert_eq!(s.proxy.count(&cut_upload), 1);

    // Cut the first download of the layer after 1 MB, twice in a row.
    let cut = Fault::DropAfter { bytes: 1_000_000 };
    s.proxy.arm(
        Rule::times(cut.clone(), 2)
            .method("GET")
            .path(&format!("/blobs/{layer}")),
    );
    let other = pull_and_verify(&s.proxy, &digest);
    assert_eq!(s.proxy.count(&cut), 2);
    assert_eq!(other.blob(&layer), w.blob(&layer));
    let layer_gets = s
        .proxy
        .log()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with(&layer))
        .count();
    assert_eq!(layer_gets, 3, "two cut downloads and one whole one");
}

#[test]
fn a_stall_shorter_than_the_timeout_only_slows_things_down() {
    let s = setup();
    let w = small_project(&s.proxy);
    w.build_ok("1.0.0");
    let digest = w.tag_digest("1.0.0");

    let stall = Fault::Stall(Duration::from_millis(1500));
    s.proxy
        .arm(Rule::times(stall.clone(), 1).method("HEAD").path("/blobs/"));
    let started = Instant::now();
    w.run(&["push", "1.0.0"]).success();
    assert!(started.elapsed() >= Duration::from_millis(1500));

    s.proxy
        .arm(Rule::times(stall.clone(), 1).method("GET").path("/blobs/"));
    pull_and_verify(&s.proxy, &digest);
    assert_eq!(s.proxy.count(&stall), 2);
}

#[test]
fn a_registry_that_stays_unavailable_exits_3_and_leaves_no_trace() {
    let s = setup();
    let w = small_project(&s.proxy);
    w.build_ok("1.0.0");
    w.run(&["push", "1.0.0"]).success();
    let layer = w.layer_digest("1.0.0");

    // Manifest and config come through; the layer never does.
    let down = Fault::status(503);
    s.proxy
        .arm(Rule::forever(down.clone()).path(&format!("/blobs/{layer}")));
    let other = world("elsewhere", &s.proxy);
    other
        .run(&["pull", "1.0.0"])
        .code(3)
        .says("cannot reach the registry")
        .says(&format!("blob {layer}: gave up after 5 attempts"))
        .says("503");
    assert_eq!(s.proxy.count(&down), 5);
    assert!(!other.blob_path(&layer).exists());
    assert_eq!(tmp_files(&other), Vec::<String>::new());
    assert_eq!(other.index()["manifests"], serde_json::json!([]));
    other.run(&["verify", "1.0.0", "--offline"]).code(12);

    // Pushing to a registry that answers 503 to everything: exit 3 too.
    s.proxy.clear();
    s.proxy.arm(Rule::forever(down.clone()).path(REPO_PATH));
    w.build_ok("1.0.1");
    w.run(&["push", "1.0.1"])
        .code(3)
        .says("gave up after 5 attempts");
}

#[test]
fn permanent_refusals_are_not_retried() {
    let s = setup();
    let w = small_project(&s.proxy);
    w.build_ok("1.0.0");

    let forbidden = Fault::status(403);
    s.proxy
        .arm(Rule::forever(forbidden.clone()).path(REPO_PATH));
    w.run(&["push", "1.0.0"]).code(4).says("403");
    assert_eq!(s.proxy.count(&forbidden), 1, "one attempt, no retry");
}
