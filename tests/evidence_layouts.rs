//! Evidence found wherever it is kept: a second revocation through a real
//! registry (CNCF distribution, no referrers API), and OCI layouts copied
//! from that registry with `skopeo copy --all`, which keep a release's
//! referrers in the `sha256-<hex>` tag-schema index instead of as untagged
//! manifests of their own.

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use squizzle_test_support::World;
use squizzle_test_support::registry::{Auth, Registry, RegistryOptions};

const PASS: &str = "evidence layouts test passphrase";

fn registry() -> Registry {
    Registry::start(RegistryOptions { auth: Auth::None })
}

/// A project with a key pair whose config names `reg` and nothing about who
/// may sign or revoke.
fn project(name: &str, reg: &Registry) -> World {
    let mut w = World::named(name);
    w.set_env("SQUIZZLE_KEY_PASSWORD", PASS);
    w.config(&format!(
        "[project]\nmigrations = \"migrations\"\n[registry]\nurl = \"{}/acme/db\"\n",
        reg.url()
    ));
    w.write(
        "migrations/0001_init.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY);\n",
    );
    w
}

/// How many referrers the registry's tag-schema index lists for `digest`.
fn registry_referrers(reg: &Registry, digest: &str) -> usize {
    let tag = format!("sha256-{}", digest.trim_start_matches("sha256:"));
    reg.get_manifest("acme/db", &tag)
        .map(|(_, bytes)| {
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            v["manifests"].as_array().map_or(0, Vec::len)
        })
        .unwrap_or(0)
}

#[test]
fn a_second_revocation_through_the_registry_is_refused_unless_forced() {
    let reg = registry();
    let ci = project("ci", &reg);
    ci.run(&["keygen"]).success();
    ci.build_ok("1.0.0");
    ci.run(&["sign", "1.0.0", "--key", "squizzle.key"])
        .success();
    ci.run(&["push", "1.0.0"]).success();
    let digest = ci.tag_digest("1.0.0");
    let revoke = |w: &World, extra: &[&str]| {
        let mut args = vec![
            "revoke",
            "1.0.0",
            "--reason",
            "drops the orders index (INC-7)",
            "--key",
            "squizzle.key",
        ];
        args.extend_from_slice(extra);
        w.run(&args)
    };
    revoke(&ci, &[]).success().says("Published the revocation");
    assert_eq!(
        registry_referrers(&reg, &digest),
        2,
        "signature + revocation"
    );

    // Another machine, with the same key given on the command line only and
    // nothing in its config to verify the first revocation with: it learns
    // of it from the registry and refuses to add a second one.
    let other = project("other", &reg);
    std::fs::copy(ci.path("squizzle.key"), other.path("squizzle.key")).unwrap();
    revoke(&other, &[])
        .code(10)
        .says("1.0.0 is already revoked by key ")
        .says("not verified by this project's policy")
        .says("drops the orders index (INC-7)")
        .says("--force");
    assert_eq!(
        registry_referrers(&reg, &digest),
        2,
        "nothing was published"
    );
    // The machine that revoked first is refused too.
    revoke(&ci, &[]).code(10).says("already revoked");
    revoke(&other, &["--force"])
        .success()
        .says("Published the revocation");
    assert_eq!(registry_referrers(&reg, &digest), 3);
}

fn skopeo_copy(reg: &Registry, tag: &str, layout: &std::path::Path) {
    let out = std::process::Command::new("skopeo")
        .args([
            "--command-timeout",
            "60s",
            "copy",
            "--all",
            "--src-tls-verify=false",
            &format!("docker://{}/acme/db:{tag}", reg.url()),
            &format!("oci:{}:{tag}", layout.display()),
        ])
        .output()
        .expect("skopeo runs (Debian package skopeo)");
    assert!(
        out.status.success(),
        "skopeo copy {tag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A machine with no registry that trusts `key_from`'s public key and
/// requires a signature; its store is what skopeo wrote.
fn offline_reader(name: &str, key_from: &World) -> World {
    let w = World::named(name);
    w.config(
        "[project]\nmigrations = \"migrations\"\n[security]\nrequire_signature = true\npublic_keys = [\"squizzle.pub\"]\n",
    );
    std::fs::copy(key_from.path("squizzle.pub"), w.path("squizzle.pub")).unwrap();
    w
}

/// The release and its tag-schema referrers index, copied as skopeo copies
/// them: two tags in one layout.
fn copy_with_skopeo(reg: &Registry, tag: &str, digest: &str, into: &World) {
    let layout = into.path("db/oci");
    std::fs::create_dir_all(into.path("db")).unwrap();
    skopeo_copy(reg, tag, &layout);
    let schema_tag = format!("sha256-{}", digest.trim_start_matches("sha256:"));
    skopeo_copy(reg, &schema_tag, &layout);
}

#[test]
fn a_layout_copied_by_skopeo_keeps_its_signature_and_revocation() {
    let reg = registry();
    let ci = project("ci", &reg);
    ci.run(&["keygen"]).success();
    ci.build_ok("1.0.0");
    ci.run(&["sign", "1.0.0", "--key", "squizzle.key"])
        .success();
    ci.run(&["push", "1.0.0"]).success();
    let digest = ci.tag_digest("1.0.0");

    let copy = offline_reader("skopeo", &ci);
    copy_with_skopeo(&reg, "1.0.0", &digest, &copy);
    // skopeo keeps referrers only in the tag-schema index.
    let index = copy.index();
    let tags: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .collect();
    assert!(tags.iter().any(|t| t.starts_with("sha256-")), "{index}");
    copy.run(&["verify", "1.0.0"])
        .success()
        .says("Signature verified");
    // The tag-schema tag is not a release.
    copy.run(&["list"])
        .success()
        .says("1.0.0")
        .does_not_say("sha256-");

    // A revocation published later reaches a new copy the same way.
    ci.run(&[
        "revoke",
        "1.0.0",
        "--reason",
        "bad index (INC-8)",
        "--key",
        "squizzle.key",
    ])
    .success();
    let later = offline_reader("skopeo-later", &ci);
    copy_with_skopeo(&reg, "1.0.0", &digest, &later);
    later
        .run(&["verify", "1.0.0"])
        .code(10)
        .says("bad index (INC-8)");
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Writes `bytes` as a blob of `w`'s layout; returns its digest and size.
fn put_blob(w: &World, bytes: &[u8]) -> (String, usize) {
    let d = format!("sha256:{}", sha256_hex(bytes));
    std::fs::write(w.blob_path(&d), bytes).unwrap();
    (d, bytes.len())
}

/// Replaces the tag-schema index of `subject` in `w`'s layout with one
/// listing `entries`.
fn set_schema_index(w: &World, subject: &str, entries: Vec<Value>) {
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    });
    let (d, size) = put_blob(w, &serde_json::to_vec(&index).unwrap());
    let tag = format!("sha256-{}", subject.trim_start_matches("sha256:"));
    let mut top = w.index();
    let list = top["manifests"].as_array_mut().unwrap();
    list.retain(|m| m["annotations"]["org.opencontainers.image.ref.name"] != json!(tag));
    list.push(json!({
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": d,
        "size": size,
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }));
    std::fs::write(
        w.path("db/oci/index.json"),
        serde_json::to_vec(&top).unwrap(),
    )
    .unwrap();
}

#[test]
fn a_tag_schema_index_counts_only_referrers_whose_subject_is_the_release() {
    let reg = registry();
    let ci = project("ci", &reg);
    ci.run(&["keygen"]).success();
    ci.build_ok("1.0.0");
    ci.write("migrations/0002_more.sql", "CREATE TABLE more (id int);\n");
    ci.build_ok("2.0.0");
    // Only 2.0.0 is signed.
    ci.run(&["sign", "2.0.0", "--key", "squizzle.key"])
        .success();
    ci.run(&["push", "1.0.0"]).success();
    ci.run(&["push", "2.0.0"]).success();
    let d1 = ci.tag_digest("1.0.0");
    let d2 = ci.tag_digest("2.0.0");

    let copy = offline_reader("hostile", &ci);
    copy_with_skopeo(&reg, "2.0.0", &d2, &copy);
    skopeo_copy(&reg, "1.0.0", &copy.path("db/oci"));
    copy.run(&["verify", "2.0.0"]).success();
    copy.run(&["verify", "1.0.0"])
        .code(9)
        .says("No signature found");

    // 2.0.0's signature listed in 1.0.0's tag-schema index: its subject is
    // 2.0.0, so it must not count for 1.0.0.
    let schema2 = format!("sha256-{}", d2.trim_start_matches("sha256:"));
    let index2 = copy.index()["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == json!(schema2))
        .cloned()
        .unwrap();
    let entries: Value =
        serde_json::from_slice(&copy.blob(index2["digest"].as_str().unwrap())).unwrap();
    let stolen = entries["manifests"].as_array().unwrap().clone();
    assert_eq!(stolen.len(), 1);
    set_schema_index(&copy, &d1, stolen.clone());
    copy.run(&["verify", "1.0.0"])
        .code(9)
        .says("No signature found");

    // An entry naming a manifest that is not in the layout, and one that is
    // not a manifest at all: still nothing found, and no crash.
    let (junk, junk_size) = put_blob(&copy, b"not a manifest");
    set_schema_index(
        &copy,
        &d1,
        vec![
            json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": format!("sha256:{}", "ab".repeat(32)),
                "size": 10,
                "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            }),
            json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": junk,
                "size": junk_size,
                "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            }),
        ],
    );
    copy.run(&["verify", "1.0.0"])
        .code(9)
        .says("No signature found");
    // 2.0.0 is unaffected by 1.0.0's index.
    copy.run(&["verify", "2.0.0"]).success();
}
