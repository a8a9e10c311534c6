//! `squizzle verify`: every digest and file hash of a stored release, plus the
//! signature policy; tampering of any kind is caught and named.

use serde_json::Value;
use squizzle_test_support::{DRIZZLE_CONFIG, PLAIN_CONFIG, World};

const TAMPERED: &str = "drizzle/0130_perpetual_screwball.sql";

/// The dokploy corpus built as 1.0.0.
fn dokploy_release() -> World {
    let w = World::dokploy();
    w.build_ok("1.0.0");
    w
}

/// A small plain project built as 1.0.0.
fn plain_release() -> World {
    let w = World::plain();
    w.build_ok("1.0.0");
    w
}

#[test]
fn verify_passes_with_seed_style_lines() {
    let w = dokploy_release();
    let digest = w.tag_digest("1.0.0");
    w.run(&["verify", "1.0.0"])
        .success()
        .stdout_has("✓ Verifying artifact checksum...\n")
        .stdout_has("✓ Verifying file checksums (186/186)...\n")
        .stdout_has("✓ Integrity verified\n")
        .stdout_has("✓ Not revoked\n")
        .stdout_has("– Not signed (the policy does not require a signature)")
        .stdout_has("– No provenance (the policy does not require it)")
        .stdout_has(&format!("1.0.0 {digest} verified"))
        .does_not_say("✗");
}

#[test]
fn verify_lines_come_in_order() {
    let w = plain_release();
    let r = w.run(&["verify", "1.0.0"]).success();
    let pos = |s: &str| {
        r.stdout
            .find(s)
            .unwrap_or_else(|| panic!("{s:?} missing:\n{}", r.stdout))
    };
    assert!(pos("Verifying artifact checksum") < pos("Verifying file checksums (3/3)"));
    assert!(pos("Verifying file checksums (3/3)") < pos("Integrity verified"));
    assert!(pos("Integrity verified") < pos("Not revoked"));
    assert!(pos("Not revoked") < pos("Not signed"));
    assert!(pos("Not signed") < pos("No provenance"));
}

#[test]
fn verify_json_reports_every_file() {
    let w = dokploy_release();
    let r = w.run(&["verify", "1.0.0", "--output", "json"]).success();
    let report = r.json();
    assert_eq!(report["verified"], true);
    assert_eq!(report["version"], "1.0.0");
    assert_eq!(report["digest"], w.tag_digest("1.0.0"));
    assert!(report["createdAt"].as_str().unwrap().ends_with('Z'));

    let files = report["files"].as_array().unwrap();
    assert_eq!(files.len(), 186);
    for f in files {
        assert_eq!(f["ok"], true, "{f}");
        assert_eq!(f["expectedSha256"], f["actualSha256"]);
        assert_eq!(f["expectedSize"], f["actualSize"]);
    }
    assert!(files.iter().any(|f| f["path"] == TAMPERED));

    let checks: Vec<(&str, &str)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        checks,
        [
            ("artifact", "pass"),
            ("files", "pass"),
            ("revocation", "pass"),
            ("signature", "skip"),
            ("provenance", "skip")
        ]
    );
}

// ---------------------------------------------------------------------------
// Tampering
// ---------------------------------------------------------------------------

/// Builds the dokploy corpus with one file changed in a scratch world and
/// returns that tarball's bytes: a well-formed squizzle tarball whose only
/// difference is the content of `TAMPERED`.
fn tarball_with_one_file_changed() -> Vec<u8> {
    let scratch = World::dokploy();
    let original = scratch.read_string(TAMPERED);
    assert!(original.contains(" text;"), "{original}");
    // Same length, different bytes: a column type quietly changed.
    scratch.write(TAMPERED, original.replace(" text;", " TEXT;"));
    scratch.build_ok("1.0.0");
    scratch.read("db/tarballs/squizzle-1.0.0.tar.gz")
}

#[test]
fn a_layer_with_one_changed_file_names_that_file_and_only_that_file() {
    let w = dokploy_release();
    let layer = w.layer_digest("1.0.0");
    std::fs::write(w.blob_path(&layer), tarball_with_one_file_changed()).unwrap();

    let r = w.run(&["verify", "1.0.0"]).code(6);
    let r = r
        .stdout_has(&format!("✗ Checksum mismatch in {TAMPERED}\n"))
        .stdout_has("✗ Verifying file checksums (185/186)...")
        .stdout_has("✗ Integrity check failed for 1.0.0")
        .does_not_say("✓ Integrity verified")
        .does_not_say("✓ Verifying file checksums");
    assert_eq!(
        r.stdout.matches("Checksum mismatch in drizzle/").count(),
        1,
        "only the changed file:\n{}",
        r.stdout
    );

    // Expected/Actual lines follow the file's mismatch line.
    let after = &r.stdout[r
        .stdout
        .find(&format!("Checksum mismatch in {TAMPERED}"))
        .unwrap()..];
    let mut lines = after.lines().skip(1);
    let expected = lines.next().unwrap();
    let actual = lines.next().unwrap();
    assert!(
        expected.trim_start().starts_with("Expected: sha256:"),
        "{expected}"
    );
    assert!(
        actual.trim_start().starts_with("Actual:   sha256:"),
        "{actual}"
    );
    assert_ne!(
        expected.split_whitespace().nth(1),
        actual.split_whitespace().nth(1)
    );

    let report = w
        .run(&["verify", "1.0.0", "--output", "json"])
        .code(6)
        .json();
    assert_eq!(report["verified"], false);
    let bad: Vec<&str> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["ok"] == false)
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(bad, [TAMPERED]);
}

#[test]
fn a_flipped_byte_in_the_config_blob_is_an_integrity_failure() {
    let w = plain_release();
    let config = w.oci_manifest("1.0.0")["config"]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    w.corrupt_blob(&config);
    w.run(&["verify", "1.0.0"])
        .code(6)
        .says(&config)
        .says("does not match its digest");
}

#[test]
fn a_flipped_byte_in_the_manifest_blob_is_an_integrity_failure() {
    let w = plain_release();
    let digest = w.tag_digest("1.0.0");
    w.corrupt_blob(&digest);
    w.run(&["verify", "1.0.0"])
        .code(6)
        .says("does not match its digest");
}

#[test]
fn a_flipped_byte_in_the_layer_blob_is_an_integrity_failure() {
    let w = plain_release();
    let layer = w.layer_digest("1.0.0");
    w.corrupt_blob(&layer);
    let r = w.run(&["verify", "1.0.0"]).code(6);
    assert!(!r.output().contains("Integrity verified"), "{}", r.output());
    // The damage is reported as what it is, in the checksum line with both
    // digests, not as a decompression error.
    r.says("Checksum mismatch in squizzle-1.0.0.tar.gz")
        .says(&format!("Expected: {layer}"))
        .does_not_say("gzip stream is corrupt");
    let json = w
        .run(&["verify", "1.0.0", "--output", "json"])
        .code(6)
        .json();
    assert_eq!(json["checks"][0]["name"], "artifact", "{json:#}");
    assert_eq!(json["checks"][0]["status"], "fail", "{json:#}");
    assert_eq!(json["checks"][0]["expected"], layer.as_str(), "{json:#}");
}

#[test]
fn a_deleted_layer_blob_is_an_integrity_failure_with_a_clear_message() {
    let w = plain_release();
    let layer = w.layer_digest("1.0.0");
    std::fs::remove_file(w.blob_path(&layer)).unwrap();
    w.run(&["verify", "1.0.0"])
        .code(6)
        .says(&format!("blob {layer} is missing from the store"));
}

#[test]
fn a_tag_moved_to_another_release_is_a_version_conflict() {
    let w = plain_release();
    w.write("migrations/0004_more.sql", "SELECT 4;\n");
    w.build_ok("2.0.0");
    let v1 = w.tag_digest("1.0.0");

    // Point tag 2.0.0 at the 1.0.0 release (a replayed, older artifact).
    let mut index = w.index();
    let v1_entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["digest"] == v1.as_str())
        .unwrap()
        .clone();
    for m in index["manifests"].as_array_mut().unwrap() {
        if m["annotations"]["org.opencontainers.image.ref.name"] == "2.0.0" {
            m["digest"] = v1_entry["digest"].clone();
            m["size"] = v1_entry["size"].clone();
        }
    }
    w.write_index(&index);

    w.run(&["verify", "2.0.0"])
        .code(5)
        .says("tagged 2.0.0 declares version 1.0.0")
        .says("moved or replayed");
    w.run(&["verify", "1.0.0"]).success();
}

#[test]
fn a_tag_listed_twice_is_refused() {
    let w = plain_release();
    let mut index = w.index();
    let entry = index["manifests"][0].clone();
    index["manifests"].as_array_mut().unwrap().push(entry);
    w.write_index(&index);
    w.run(&["verify", "1.0.0"])
        .code(6)
        .says("more than one manifest");
}

#[test]
fn a_required_signature_that_is_missing_fails_with_exit_9() {
    let w = plain_release();
    w.config(&format!(
        "{}\n[security]\nrequire_signature = true\n[[security.signers]]\nidentity = \"ci@acme.example\"\nissuer = \"https://issuer.example\"\n",
        PLAIN_CONFIG
    ));
    let r = w.run(&["verify", "1.0.0"]).code(9);
    r.stdout_has("✓ Integrity verified")
        .stdout_has("✗ No signature found for 1.0.0 and the policy requires one")
        .stdout_has("✗ Signature policy not satisfied for 1.0.0");

    let report = w
        .run(&["verify", "1.0.0", "--output", "json"])
        .code(9)
        .json();
    assert_eq!(report["verified"], false);
    let sig = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "signature")
        .unwrap()
        .clone();
    assert_eq!(sig["status"], "fail");
}

#[test]
fn an_unverifiable_signature_bundle_does_not_satisfy_the_policy() {
    let w = plain_release();
    w.config(&format!(
        "{}\n[security]\nrequire_signature = true\n[[security.signers]]\nidentity = \"ci@acme.example\"\nissuer = \"https://issuer.example\"\n",
        PLAIN_CONFIG
    ));
    w.write("db/tarballs/squizzle-1.0.0.sigstore.json", "{}");
    w.run(&["verify", "1.0.0"])
        .code(9)
        .says("not a Sigstore bundle");
    // Required with nobody trusted to sign is a configuration error.
    w.config(&format!(
        "{}\n[security]\nrequire_signature = true\n",
        PLAIN_CONFIG
    ));
    w.run(&["verify", "1.0.0"])
        .code(2)
        .says("nobody is trusted to sign");
}

#[test]
fn an_environment_can_require_signatures() {
    let w = plain_release();
    w.config(&format!(
        "{}\n[[security.signers]]\nidentity = \"ci@acme.example\"\nissuer = \"https://issuer.example\"\n\n[environments.production]\nrequire_signature = true\n\n[environments.staging]\n",
        PLAIN_CONFIG
    ));
    w.run(&["verify", "1.0.0"]).success();
    w.run(&["verify", "1.0.0", "--env", "staging"]).success();
    w.run(&["verify", "1.0.0", "--env", "production"]).code(9);
    w.run_with_env(&["verify", "1.0.0"], &[("SQUIZZLE_ENV", "production")])
        .code(9);
    w.run(&["verify", "1.0.0", "--env", "qa"])
        .code(2)
        .says("environment \"qa\" is not defined")
        .says("production, staging");
}

#[test]
fn integrity_failures_take_precedence_over_signature_failures() {
    let w = dokploy_release();
    w.config(&format!(
        "{}\n[security]\nrequire_signature = true\n",
        DRIZZLE_CONFIG
    ));
    std::fs::write(
        w.blob_path(&w.layer_digest("1.0.0")),
        tarball_with_one_file_changed(),
    )
    .unwrap();
    w.run(&["verify", "1.0.0"]).code(6);
}

#[test]
fn an_unknown_version_is_not_found_and_the_message_lists_what_exists() {
    let w = plain_release();
    w.build_ok("1.1.0");
    w.run(&["verify", "9.9.9"])
        .code(12)
        .says("version 9.9.9 is not in the store")
        .says("available: 1.0.0, 1.1.0");

    let err = w
        .run(&["verify", "9.9.9", "--output", "json"])
        .code(12)
        .json();
    assert_eq!(err["error"]["kind"], "not_found");
    assert_eq!(err["error"]["code"], 12);
}

#[test]
fn verify_before_any_build_is_not_found() {
    let w = World::plain();
    w.run(&["verify", "1.0.0"])
        .code(12)
        .says("squizzle build 1.0.0");
}

#[test]
fn verify_of_an_invalid_version_is_a_usage_error() {
    let w = plain_release();
    w.run(&["verify", "latest"])
        .code(2)
        .says("not a semantic version");
}

#[test]
fn a_damaged_store_is_an_integrity_failure_not_a_missing_store() {
    let w = plain_release();
    // The store is there (blobs, index, tag), but its oci-layout marker is damaged.
    w.write("db/oci/oci-layout", "{}");
    // list and build already call this an integrity problem (exit 6)...
    w.run(&["list"]).code(6).says("not an OCI image layout");
    // ...and verify must not claim that there is no store yet.
    w.run(&["verify", "1.0.0"])
        .code(6)
        .says("not an OCI image layout")
        .does_not_say("no store there yet");
}

#[test]
fn verify_does_not_modify_the_store() {
    let w = plain_release();
    let before: Vec<(String, Vec<u8>)> = w
        .files_under("db")
        .into_iter()
        .map(|f| (f.clone(), w.read(&format!("db/{f}"))))
        .collect();
    w.run(&["verify", "1.0.0"]).success();
    w.run(&["verify", "1.0.0", "--output", "json"]).success();
    let after: Vec<(String, Vec<u8>)> = w
        .files_under("db")
        .into_iter()
        .map(|f| (f.clone(), w.read(&format!("db/{f}"))))
        .collect();
    assert_eq!(before, after);
}

#[test]
fn verify_json_is_the_only_thing_on_stdout_even_when_it_fails() {
    let w = plain_release();
    w.corrupt_blob(&w.layer_digest("1.0.0"));
    let r = w.run(&["verify", "1.0.0", "--output", "json"]).code(6);
    let v: Value = r.json();
    assert!(v.is_object());
}

#[test]
fn quiet_verify_prints_only_failures() {
    let w = plain_release();
    let r = w.run(&["-q", "verify", "1.0.0"]).success();
    assert_eq!(r.stdout, "", "nothing to say when all is well");

    // Swap in the well-formed layer of another build whose one file differs.
    w.write(
        "migrations/0002_add_email.sql",
        "ALTER TABLE users ADD COLUMN email TEXT;\n",
    );
    w.run(&[
        "build",
        "1.0.1",
        "--allow-rewrite",
        "0002_add_email",
        "--reason",
        "a second layer for the test",
    ])
    .success();
    std::fs::write(
        w.blob_path(&w.layer_digest("1.0.0")),
        w.blob(&w.layer_digest("1.0.1")),
    )
    .unwrap();

    let r = w
        .run(&["-q", "verify", "1.0.0"])
        .code(6)
        .stdout_has("✗ Checksum mismatch in migrations/0002_add_email.sql\n")
        .stdout_has("Expected: sha256:")
        .stdout_has("✗ Integrity check failed for 1.0.0");
    assert!(
        !r.stdout.contains('✓'),
        "no passing checks with -q:\n{}",
        r.stdout
    );
}
