//! Reproducible builds: the tarball is a pure function of the files' paths and
//! bytes; the release digest adds only the version, notes and build time.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use squizzle_test_support::{DRIZZLE_CONFIG, PLAIN_CONFIG, World, copy_dir, dokploy_fixture};

const EPOCH: &str = "1700000000";

const FILES: [(&str, &str); 5] = [
    (
        "migrations/0001_create_users.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL);\n",
    ),
    (
        "migrations/0001_create_users.down.sql",
        "DROP TABLE users;\n",
    ),
    (
        "migrations/0002_add_email.sql",
        "ALTER TABLE users ADD COLUMN email text;\n-- café ✓\n",
    ),
    (
        "migrations/0003_index_email.sql",
        "-- squizzle:no-transaction\nCREATE INDEX CONCURRENTLY users_email ON users (email);\n",
    ),
    (
        "migrations/10_orders.sql",
        "CREATE TABLE orders (id bigint PRIMARY KEY);\n",
    ),
];

/// Writes the files in the given order, each with `mode` and mtime `mtime`.
fn checkout(name: &str, order: &[usize], mode: u32, mtime: SystemTime) -> World {
    let w = World::named(name);
    w.config(PLAIN_CONFIG);
    for &i in order {
        let (rel, body) = FILES[i];
        let path = w.write(rel, body);
        stamp(&path, mode, mtime);
    }
    w
}

fn stamp(path: &Path, mode: u32, mtime: SystemTime) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
}

fn build(w: &World, version: &str, epoch: &str) -> Value {
    w.run_with_env(
        &["build", version, "--output", "json"],
        &[("SOURCE_DATE_EPOCH", epoch)],
    )
    .success()
    .json()
}

fn tarball(w: &World, version: &str) -> Vec<u8> {
    w.read(&format!("db/tarballs/squizzle-{version}.tar.gz"))
}

fn manifest_file(w: &World, version: &str) -> Vec<u8> {
    w.read(&format!("db/tarballs/squizzle-{version}.manifest.json"))
}

fn checkouts() -> (World, World) {
    let a = checkout(
        "checkout-a",
        &[0, 1, 2, 3, 4],
        0o644,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000),
    );
    let b = checkout(
        "somewhere/much/deeper/checkout-b",
        &[4, 2, 0, 3, 1],
        0o600,
        SystemTime::now() - Duration::from_secs(3600),
    );
    assert_ne!(a.root(), b.root());
    (a, b)
}

#[test]
fn two_checkouts_at_different_paths_build_byte_identical_releases() {
    let (a, b) = checkouts();

    let ra = build(&a, "1.0.0", EPOCH);
    let rb = build(&b, "1.0.0", EPOCH);

    assert_eq!(
        tarball(&a, "1.0.0"),
        tarball(&b, "1.0.0"),
        "byte-identical tarballs"
    );
    assert_eq!(
        manifest_file(&a, "1.0.0"),
        manifest_file(&b, "1.0.0"),
        "byte-identical manifest.json"
    );
    assert_eq!(ra["tarballSha256"], rb["tarballSha256"]);
    assert_eq!(ra["digest"], rb["digest"], "same OCI manifest digest");
    assert_eq!(
        a.blob(ra["digest"].as_str().unwrap()),
        b.blob(rb["digest"].as_str().unwrap())
    );
    assert_eq!(
        a.squizzle_manifest("1.0.0")["createdAt"],
        "2023-11-14T22:13:20Z"
    );
}

#[test]
fn the_dokploy_corpus_builds_identically_from_two_differently_written_copies() {
    let a = World::named("first");
    a.copy_dokploy("drizzle");
    a.config(DRIZZLE_CONFIG);

    // Second copy: files written newest first, read-only for others, other mtimes.
    let b = World::named("second/checkout");
    b.config(DRIZZLE_CONFIG);
    let src = dokploy_fixture();
    let mut names: Vec<_> = fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    names.reverse();
    for (i, name) in names.iter().enumerate() {
        let from = src.join(name);
        if from.is_dir() {
            copy_dir(&from, &b.path("drizzle").join(name));
            continue;
        }
        let to = b.write(
            &format!("drizzle/{}", name.to_str().unwrap()),
            fs::read(&from).unwrap(),
        );
        stamp(
            &to,
            if i % 2 == 0 { 0o600 } else { 0o664 },
            SystemTime::UNIX_EPOCH + Duration::from_secs(i as u64 * 7919),
        );
    }

    let ra = build(&a, "1.0.0", EPOCH);
    let rb = build(&b, "1.0.0", EPOCH);
    assert_eq!(ra["migrations"], 186);
    assert_eq!(tarball(&a, "1.0.0"), tarball(&b, "1.0.0"));
    assert_eq!(manifest_file(&a, "1.0.0"), manifest_file(&b, "1.0.0"));
    assert_eq!(ra["digest"], rb["digest"]);
}

#[test]
fn another_build_time_gives_the_same_tarball_but_another_release_digest() {
    let (a, b) = checkouts();
    let ra = build(&a, "1.0.0", EPOCH);
    let rb = build(&b, "1.0.0", "1700000001");

    assert_eq!(
        tarball(&a, "1.0.0"),
        tarball(&b, "1.0.0"),
        "the tarball does not depend on the clock"
    );
    assert_eq!(ra["tarballSha256"], rb["tarballSha256"]);
    assert_ne!(
        ra["digest"], rb["digest"],
        "createdAt is part of the release"
    );
    assert_ne!(manifest_file(&a, "1.0.0"), manifest_file(&b, "1.0.0"));
    assert_eq!(
        b.squizzle_manifest("1.0.0")["createdAt"],
        "2023-11-14T22:13:21Z"
    );
}

#[test]
fn changing_one_byte_of_one_file_changes_the_tarball_digest() {
    let (a, b) = checkouts();
    let body = FILES[2].1.replace("email text", "email TEXT");
    b.write(FILES[2].0, body);

    let ra = build(&a, "1.0.0", EPOCH);
    let rb = build(&b, "1.0.0", EPOCH);
    assert_ne!(ra["tarballSha256"], rb["tarballSha256"]);
    assert_ne!(ra["digest"], rb["digest"]);
    let (ma, mb) = (a.squizzle_manifest("1.0.0"), b.squizzle_manifest("1.0.0"));
    let changed: Vec<&str> = ma["files"]
        .as_array()
        .unwrap()
        .iter()
        .zip(mb["files"].as_array().unwrap())
        .filter(|(x, y)| x["sha256"] != y["sha256"])
        .map(|(x, _)| x["path"].as_str().unwrap())
        .collect();
    // The per-file record pins down which one.
    let expected: Vec<&str> = vec![FILES[2].0];
    assert_eq!(changed, expected);
}

#[test]
fn the_gzip_header_has_no_timestamp_name_or_platform() {
    let (a, _) = checkouts();
    build(&a, "1.0.0", EPOCH);
    let gz = tarball(&a, "1.0.0");

    assert_eq!(&gz[0..3], &[0x1f, 0x8b, 8], "gzip magic and deflate");
    assert_eq!(gz[3], 0, "FLG: no file name, comment or extra field");
    assert_eq!(&gz[4..8], &[0, 0, 0, 0], "MTIME is zero");
    assert_eq!(gz[9], 255, "OS is 'unknown' on every platform");
}

#[test]
fn tar_entries_are_sorted_and_carry_no_owner_mode_or_time_from_the_checkout() {
    let (_, b) = checkouts();
    build(&b, "1.0.0", EPOCH);
    let file = File::open(b.path("db/tarballs/squizzle-1.0.0.tar.gz")).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));

    let mut paths = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let h = entry.header();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        assert_eq!(h.mode().unwrap(), 0o644, "{path}");
        assert_eq!(h.uid().unwrap(), 0, "{path}");
        assert_eq!(h.gid().unwrap(), 0, "{path}");
        assert_eq!(h.mtime().unwrap(), 0, "{path}");
        assert_eq!(h.username().unwrap().unwrap_or(""), "", "{path}");
        assert_eq!(h.groupname().unwrap().unwrap_or(""), "", "{path}");
        assert!(h.entry_type().is_file(), "{path}");
        let mut body = String::new();
        entry.read_to_string(&mut body).unwrap();
        let source = FILES
            .iter()
            .find(|(p, _)| *p == path)
            .unwrap_or_else(|| panic!("unexpected entry {path}"));
        assert_eq!(body, source.1);
        paths.push(path);
    }
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "entries sorted by path");
    assert_eq!(paths.len(), FILES.len());
}
