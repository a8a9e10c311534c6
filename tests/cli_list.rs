//! `squizzle list`: the versions in the store, oldest first by semver.

use serde_json::Value;
use squizzle_test_support::World;

fn versions(listing: &Value) -> Vec<String> {
    listing["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap().to_owned())
        .collect()
}

/// First column of each table row (after the header).
fn listed_rows(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn versions_are_listed_by_semver_not_by_name_or_build_order() {
    let w = World::plain();
    for v in ["1.10.0", "1.2.0", "1.9.0"] {
        w.build_ok(v);
    }

    let r = w.run(&["list"]).success();
    let header = r.stdout.lines().next().unwrap();
    for col in ["VERSION", "DIGEST", "CREATED", "MIGRATIONS", "NOTES"] {
        assert!(header.contains(col), "{header}");
    }
    assert_eq!(listed_rows(&r.stdout), ["1.2.0", "1.9.0", "1.10.0"]);

    let listing = w.run(&["list", "--output", "json"]).success().json();
    assert_eq!(versions(&listing), ["1.2.0", "1.9.0", "1.10.0"]);
}

#[test]
fn pre_releases_sort_before_their_release() {
    let w = World::plain();
    for v in ["1.0.0", "1.0.0-rc.2", "1.0.0-rc.10", "0.9.0"] {
        w.build_ok(v);
    }
    let listing = w.run(&["list", "--output", "json"]).success().json();
    assert_eq!(
        versions(&listing),
        ["0.9.0", "1.0.0-rc.2", "1.0.0-rc.10", "1.0.0"]
    );
}

#[test]
fn the_table_shows_digest_date_count_and_first_line_of_notes() {
    let w = World::plain();
    w.run_with_env(
        &["build", "1.0.0", "--notes", "add orders\nand more details"],
        &[("SOURCE_DATE_EPOCH", "1700000000")],
    )
    .success();
    let digest = w.tag_digest("1.0.0");

    let r = w.run(&["list"]).success();
    let row = r.stdout.lines().nth(1).unwrap();
    assert!(row.starts_with("1.0.0 "), "{row}");
    assert!(
        row.contains(&digest[..19]),
        "short digest {}: {row}",
        &digest[..19]
    );
    assert!(row.contains("2023-11-14T22:13:20Z"), "{row}");
    assert!(row.contains(" 3 "), "migration count: {row}");
    assert!(
        row.ends_with("add orders"),
        "first line of the notes: {row}"
    );
    assert!(!r.stdout.contains("and more details"));
}

#[test]
fn list_json_describes_each_release() {
    let w = World::plain();
    w.run_with_env(
        &["build", "1.0.0", "--notes", "first"],
        &[("SOURCE_DATE_EPOCH", "1700000000")],
    )
    .success();

    let listing = w.run(&["list", "--output", "json"]).success().json();
    assert!(
        listing["store"].as_str().unwrap().ends_with("db/oci"),
        "{listing}"
    );
    assert_eq!(listing["otherTags"], serde_json::json!([]));
    let v = &listing["versions"][0];
    assert_eq!(v["version"], "1.0.0");
    assert_eq!(v["digest"], w.tag_digest("1.0.0"));
    assert_eq!(v["createdAt"], "2023-11-14T22:13:20Z");
    assert_eq!(v["notes"], "first");
    assert_eq!(v["migrations"], 3);
    assert!(v.get("problem").is_none(), "{v}");
}

#[test]
fn an_empty_store_says_so() {
    let w = World::plain();
    w.run(&["list"])
        .success()
        .stdout_has("No versions in")
        .stdout_has("run `squizzle build <version>`");

    let listing = w.run(&["list", "--output", "json"]).success().json();
    assert_eq!(listing["versions"], serde_json::json!([]));
    assert!(!w.exists("db/oci"), "listing does not create the store");
}

#[test]
fn a_store_emptied_by_a_failed_build_is_empty_too() {
    let w = World::plain();
    w.write("migrations/0004_bad.sql", b"\xff");
    w.run(&["build", "1.0.0"]).code(2);
    w.run(&["list"]).success().stdout_has("No versions in");
}

#[test]
fn a_damaged_release_is_listed_with_its_problem_instead_of_failing_the_listing() {
    let w = World::plain();
    for v in ["1.0.0", "1.1.0", "1.2.0"] {
        w.build_ok(v);
    }
    let config = w.oci_manifest("1.1.0")["config"]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    w.corrupt_blob(&config);

    let r = w.run(&["list"]).success();
    assert_eq!(
        listed_rows(&r.stdout),
        ["1.0.0", "✗", "1.2.0"],
        "{}",
        r.stdout
    );
    let bad = r.stdout.lines().find(|l| l.contains("1.1.0")).unwrap();
    assert!(bad.starts_with("✗ 1.1.0"), "{bad}");
    assert!(
        bad.contains("unreadable:") && bad.contains("does not match its digest"),
        "{bad}"
    );

    let listing = w.run(&["list", "--output", "json"]).success().json();
    assert_eq!(versions(&listing), ["1.0.0", "1.1.0", "1.2.0"]);
    let damaged = &listing["versions"][1];
    assert!(
        damaged["problem"]
            .as_str()
            .unwrap()
            .contains("does not match its digest"),
        "{damaged}"
    );
    assert_eq!(damaged["migrations"], Value::Null);
    assert!(listing["versions"][0].get("problem").is_none());
    assert!(listing["versions"][2].get("problem").is_none());
}

#[test]
fn a_release_with_a_missing_manifest_blob_is_listed_with_its_problem() {
    let w = World::plain();
    w.build_ok("1.0.0");
    w.build_ok("2.0.0");
    std::fs::remove_file(w.blob_path(&w.tag_digest("2.0.0"))).unwrap();

    let listing = w.run(&["list", "--output", "json"]).success().json();
    assert!(
        listing["versions"][1]["problem"]
            .as_str()
            .unwrap()
            .contains("is missing from the store")
    );
    assert!(listing["versions"][0].get("problem").is_none());
}

#[test]
fn tags_that_are_not_versions_are_reported_and_ignored() {
    let w = World::plain();
    w.build_ok("1.0.0");
    let mut index = w.index();
    let mut latest = index["manifests"][0].clone();
    latest["annotations"]["org.opencontainers.image.ref.name"] = "latest".into();
    index["manifests"].as_array_mut().unwrap().push(latest);
    w.write_index(&index);

    let r = w
        .run(&["list"])
        .success()
        .stderr_has("tag \"latest\" is not a version; squizzle ignores it");
    assert_eq!(listed_rows(&r.stdout), ["1.0.0"]);
    let listing = w.run(&["list", "--output", "json"]).success().json();
    assert_eq!(listing["otherTags"], serde_json::json!(["latest"]));
    assert_eq!(versions(&listing), ["1.0.0"]);
}

#[test]
fn list_without_squizzle_toml_reads_the_cache_and_says_how_to_name_a_registry() {
    let w = World::new();
    w.run(&["list"])
        .success()
        .says("no squizzle.toml here")
        .says("SQUIZZLE_REGISTRY")
        .says("squizzle init");
    assert!(!w.exists("db"), "no project folders are created");
}
