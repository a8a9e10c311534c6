//! Provenance and revocation through the real binary, with key pairs (the
//! keyless path is the same code after signing; tests/incident_drill.rs runs
//! it keylessly end to end): what verify shows, what policy refuses, and the
//! hostile cases: provenance for another release or from an unexpected
//! builder, a revocation by an untrusted signer, and a revocation referrer
//! hung on a release it does not name.

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use squizzle_test_support::World;
use squizzle_test_support::registry;

const PASS: &str = "supply chain test passphrase";

fn config(extra: &str) -> String {
    format!(
        "[project]\nmigrations = \"migrations\"\n[security]\nrequire_signature = true\npublic_keys = [\"squizzle.pub\"]\n{extra}"
    )
}

fn world(extra: &str) -> World {
    let mut w = World::plain();
    w.set_env("SQUIZZLE_KEY_PASSWORD", PASS);
    w.run(&["keygen"]).success();
    w.config(&config(extra));
    w
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Hangs `bundle` on the release tagged `tag` as a referrer of `artifact_type`
/// (as someone with push rights to the store could).
fn attach(w: &World, tag: &str, artifact_type: &str, bundle: &[u8]) {
    let subject = w.tag_digest(tag);
    let subject_size = w.blob(&subject).len();
    let put = |bytes: &[u8]| {
        let d = format!("sha256:{}", sha256_hex(bytes));
        std::fs::write(w.blob_path(&d), bytes).unwrap();
        (d, bytes.len())
    };
    let (layer, layer_size) = put(bundle);
    let (config, config_size) = put(b"{}");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": config_size},
        "layers": [{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "digest": layer, "size": layer_size}],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject, "size": subject_size},
    });
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

#[test]
fn provenance_is_shown_and_pinned_builders_and_sources_are_enforced() {
    let w = world(
        "require_provenance = true\nbuilder_ids = [\"https://github.com/acme/api/.github/workflows/release.yml\"]\nsource_repositories = [\"https://github.com/acme/api\"]\n",
    );
    let gha = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_REPOSITORY", "acme/api"),
        (
            "GITHUB_WORKFLOW_REF",
            "acme/api/.github/workflows/release.yml@refs/tags/v1.0.0",
        ),
        ("GITHUB_REF", "refs/tags/v1.0.0"),
        ("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567"),
        ("GITHUB_RUN_ID", "42"),
    ];
    w.run_with_env(
        &[
            "build",
            "1.0.0",
            "--sign",
            "--provenance",
            "--key",
            "squizzle.key",
        ],
        &gha,
    )
    .success()
    .says("Provenance signed");
    w.run(&["verify", "1.0.0"])
        .success()
        .says("Builder: https://github.com/acme/api/.github/workflows/release.yml")
        .says("Source: https://github.com/acme/api refs/tags/v1.0.0 (0123456789abcdef0123456789abcdef01234567)")
        .says("Build run: https://github.com/acme/api/actions/runs/42/attempts/1");
    let j = w
        .run(&["verify", "1.0.0", "--output", "json"])
        .success()
        .json();
    assert_eq!(
        j["provenance"]["builderId"],
        "https://github.com/acme/api/.github/workflows/release.yml"
    );

    // Built by an unexpected builder (a laptop), and from another repository.
    w.write("migrations/0004_more.sql", "CREATE TABLE more (id int);\n");
    w.run_with_env(
        &[
            "build",
            "1.1.0",
            "--sign",
            "--provenance",
            "--key",
            "squizzle.key",
        ],
        &[("SQUIZZLE_BUILDER_ID", "local://mallory@laptop")],
    )
    .success();
    w.run(&["verify", "1.1.0"])
        .code(9)
        .says("not an accepted builder");
    let mut fork = gha;
    fork[2] = ("GITHUB_REPOSITORY", "evil/api");
    fork[3] = (
        "GITHUB_WORKFLOW_REF",
        "acme/api/.github/workflows/release.yml@refs/tags/v1.2.0",
    );
    w.write("migrations/0005_more.sql", "CREATE TABLE more2 (id int);\n");
    w.run_with_env(
        &[
            "build",
            "1.2.0",
            "--sign",
            "--provenance",
            "--key",
            "squizzle.key",
        ],
        &fork,
    )
    .success();
    w.run(&["verify", "1.2.0"])
        .code(9)
        .says("not an accepted source repository");

    // No provenance at all while it is required.
    w.write("migrations/0006_more.sql", "CREATE TABLE more3 (id int);\n");
    w.run(&["build", "1.3.0", "--sign", "--key", "squizzle.key"])
        .success();
    w.run(&["verify", "1.3.0"])
        .code(9)
        .says("No provenance found");

    // 1.0.0's provenance hung on 1.3.0: it names another digest.
    let prov = w.read("db/tarballs/squizzle-1.0.0.provenance.sigstore.json");
    attach(
        &w,
        "1.3.0",
        "application/vnd.in-toto.slsa.provenance.v1+json",
        &prov,
    );
    w.run(&["verify", "1.3.0"]).code(9).says("another artifact");
}

#[test]
fn a_revocation_blocks_verify_pull_and_apply_and_is_listed() {
    let w = world("");
    w.run(&["build", "1.0.0", "--sign", "--key", "squizzle.key"])
        .success();
    w.run(&["revoke", "1.0.0"]).code(2).says("--reason");
    w.run(&[
        "revoke",
        "1.0.0",
        "--reason",
        "   ",
        "--key",
        "squizzle.key",
    ])
    .code(2)
    .says("reason");
    w.run(&["revoke", "2.0.0", "--reason", "x", "--key", "squizzle.key"])
        .code(12);
    let essay = "x".repeat(5000);
    w.run(&[
        "revoke",
        "1.0.0",
        "--reason",
        &essay,
        "--key",
        "squizzle.key",
    ])
    .code(2)
    .says("keep it under 4096");
    w.run(&[
        "revoke",
        "1.0.0",
        "--reason",
        "drops an index (INC-1)",
        "--key",
        "squizzle.key",
    ])
    .success()
    .says("Revoked 1.0.0");
    w.run(&["verify", "1.0.0"])
        .code(10)
        .says("Revoked by key ")
        .says("drops an index (INC-1)");
    w.run_with_env(
        &["apply", "1.0.0"],
        &[("DATABASE_URL", "postgres://nobody@127.0.0.1:9/none")],
    )
    .code(10)
    .says("revoked");
    w.run(&["list"]).success().says("revoked");
    // Twice: refused, naming the first.
    w.run(&[
        "revoke",
        "1.0.0",
        "--reason",
        "again",
        "--key",
        "squizzle.key",
    ])
    .code(10)
    .says("already revoked");
    let j = w
        .run(&["verify", "1.0.0", "--output", "json"])
        .code(10)
        .json();
    assert_eq!(j["revocation"]["verified"], true);
    assert_eq!(j["revocation"]["reason"], "drops an index (INC-1)");
}

#[test]
fn unverifiable_revocations_still_block_and_say_so() {
    let mut w = world("");
    w.run(&["build", "1.0.0", "--sign", "--key", "squizzle.key"])
        .success();
    w.write("migrations/0004_more.sql", "CREATE TABLE more (id int);\n");
    w.run(&["build", "1.1.0", "--sign", "--key", "squizzle.key"])
        .success();
    // Someone else's key (not in public_keys) revokes 1.0.0.
    w.set_env("SQUIZZLE_KEY_PASSWORD", "mallory's passphrase");
    w.run(&["keygen", "--output-prefix", "mallory"]).success();
    w.run(&[
        "revoke",
        "1.0.0",
        "--reason",
        "not yours to revoke",
        "--key",
        "mallory.key",
    ])
    .success();
    w.run(&["verify", "1.0.0"])
        .code(10)
        .says("UNVERIFIED")
        .says("not yours to revoke");
    // 1.0.0's revocation hung on 1.1.0: it names another release. Still
    // blocking (fail secure), and saying why it does not verify.
    let rev = w.read("db/tarballs/squizzle-1.0.0.revocation.sigstore.json");
    w.run(&["verify", "1.1.0"]).success();
    attach(
        &w,
        "1.1.0",
        "application/vnd.squizzle.revocation.v1+json",
        &rev,
    );
    w.run(&["verify", "1.1.0"])
        .code(10)
        .says("UNVERIFIED")
        .says("another artifact");
    // Garbage in a revocation referrer blocks too.
    w.write("migrations/0005_more.sql", "CREATE TABLE more2 (id int);\n");
    w.set_env("SQUIZZLE_KEY_PASSWORD", PASS);
    w.run(&["build", "1.2.0", "--sign", "--key", "squizzle.key"])
        .success();
    attach(
        &w,
        "1.2.0",
        "application/vnd.squizzle.revocation.v1+json",
        b"{\"not\": \"a bundle\"}",
    );
    let j: Value = w
        .run(&["verify", "1.2.0", "--output", "json"])
        .code(10)
        .json();
    assert_eq!(j["revocation"]["verified"], false);
}

#[test]
fn a_revocation_reaches_other_machines_through_the_registry_and_delete_tag_removes_the_release() {
    let reg = registry::Registry::start(registry::RegistryOptions {
        auth: registry::Auth::None,
    });
    let registry_config = |w: &World| {
        w.config(&format!(
            "{}[registry]\nurl = \"{}/acme/db\"\n",
            config(""),
            reg.url()
        ));
    };
    let ci = world("");
    registry_config(&ci);
    ci.run(&["build", "1.0.0", "--sign", "--key", "squizzle.key"])
        .success();
    ci.run(&["push", "1.0.0"]).success();
    ci.write("migrations/0004_more.sql", "CREATE TABLE more (id int);\n");
    ci.run(&["build", "1.1.0", "--sign", "--key", "squizzle.key"])
        .success();
    ci.run(&["push", "1.1.0"]).success();

    // A deploy machine that pulled 1.0.0 before it was revoked.
    let early = World::named("early");
    registry_config(&early);
    std::fs::copy(ci.path("squizzle.pub"), early.path("squizzle.pub")).unwrap();
    early.run(&["pull", "1.0.0"]).success();
    early.run(&["verify", "1.0.0"]).success();

    ci.run(&[
        "revoke",
        "1.0.0",
        "--reason",
        "bad index (INC-2)",
        "--key",
        "squizzle.key",
    ])
    .success()
    .says("Published the revocation");
    // It learns of the revocation on its next verify (referrers refreshed).
    early
        .run(&["verify", "1.0.0"])
        .code(10)
        .says("bad index (INC-2)");
    // A fresh machine: pull brings the release and its revocation, and fails.
    let fresh = World::named("fresh");
    registry_config(&fresh);
    std::fs::copy(ci.path("squizzle.pub"), fresh.path("squizzle.pub")).unwrap();
    fresh
        .run(&["pull", "1.0.0"])
        .code(10)
        .says("bad index (INC-2)");
    fresh.run(&["list"]).success().says("revoked");

    // --delete-tag: the release is gone from the registry; machines that have
    // it keep seeing the revocation.
    ci.run(&[
        "revoke",
        "1.1.0",
        "--reason",
        "secret in a seed",
        "--delete-tag",
        "--key",
        "squizzle.key",
    ])
    .success()
    .says("Deleted 1.1.0 from the registry");
    let late = World::named("late");
    registry_config(&late);
    late.run(&["pull", "1.1.0"]).code(12);
    ci.run(&["verify", "1.1.0", "--offline"])
        .code(10)
        .says("secret in a seed");
    // Without a registry, --delete-tag has nothing to delete.
    let local = world("");
    local
        .run(&["build", "1.0.0", "--sign", "--key", "squizzle.key"])
        .success();
    local
        .run(&[
            "revoke",
            "1.0.0",
            "--reason",
            "x",
            "--delete-tag",
            "--key",
            "squizzle.key",
        ])
        .code(2)
        .says("no registry is configured");
}

#[test]
fn a_policy_can_require_fresh_revocations_from_the_registry() {
    // The registry is down (nothing listens on port 9); 1.0.0 is local.
    let w = world("");
    w.run(&["build", "1.0.0", "--sign", "--key", "squizzle.key"])
        .success();
    let down = "[registry]\nurl = \"127.0.0.1:9/acme/db\"\n";
    w.config(&format!("{}{down}", config("")));
    // By default: warn, and judge with the local evidence.
    w.run(&["verify", "1.0.0"])
        .success()
        .says("Could not check the registry for new signatures or revocations");
    // Required: no verdict without the registry, and no --offline escape.
    w.config(&format!(
        "{}{down}",
        config("require_fresh_revocations = true\n")
    ));
    w.run(&["verify", "1.0.0"])
        .code(3)
        .says("cannot reach the registry");
    w.run(&["verify", "1.0.0", "--offline"])
        .code(2)
        .says("require_fresh_revocations");
    w.run_with_env(
        &["apply", "1.0.0"],
        &[("DATABASE_URL", "postgres://deploy@127.0.0.1:9/app")],
    )
    .code(3)
    .says("registry");
}
