//! The container image of `scripts/image.py`, built without a container
//! daemon from the squizzle under test (debug info stripped), then run the
//! way a runtime runs it: its layer unpacked, the root file system mounted
//! read-only with a tmpfs on /tmp (a private mount namespace, `unshare -m`),
//! `chroot` as uid 65532 with only the image's environment and the deploy
//! job's variables. Inside, `squizzle apply` pulls a keyless-signed release
//! from a real docker-registry, verifies it against the loopback Sigstore
//! services and applies it to a real PostgreSQL.
//!
//! Needs root (mount namespaces, chroot), as CI and `scripts/test.sh` run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use squizzle_test_support::registry::{Auth, Registry, RegistryOptions};
use squizzle_test_support::sigstore::SigstoreServices;
use squizzle_test_support::{pg, repo_root, squizzle_bin};

const WORKFLOW: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0";

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn run(cmd: &mut Command) -> Output {
    let o = cmd.output().expect("command runs");
    assert!(o.status.success(), "{cmd:?}: {}", text(&o));
    o
}

/// The squizzle under test without its debug info (as release builds are).
fn stripped_binary(dir: &Path) -> PathBuf {
    let bin = dir.join("squizzle");
    run(Command::new("objcopy")
        .arg("--strip-debug")
        .arg(squizzle_bin())
        .arg(&bin));
    bin
}

/// `scripts/image.py build`; returns the digest it printed.
fn build_image(binary: &Path, out: &Path) -> String {
    let o = run(Command::new("python3")
        .arg(repo_root().join("scripts/image.py"))
        .arg("build")
        .arg("--binary")
        .arg(binary)
        .arg("--out")
        .arg(out)
        .args(["--tag", "test"]));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    std::fs::read(
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap_or_else(|e| panic!("blob {digest}: {e}"))
}

fn json_blob(layout: &Path, digest: &str) -> Value {
    serde_json::from_slice(&blob(layout, digest)).unwrap()
}

/// (manifest, config, layer path) of the layout's one image.
fn image(layout: &Path) -> (Value, Value, PathBuf) {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1);
    let manifest = json_blob(layout, manifests[0]["digest"].as_str().unwrap());
    let config = json_blob(layout, manifest["config"]["digest"].as_str().unwrap());
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "one layer");
    let layer = layout.join("blobs/sha256").join(
        layers[0]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:"),
    );
    (manifest, config, layer)
}

/// `tar -tvzf`: (mode, owner, path) of every entry.
fn layer_entries(layer: &Path) -> Vec<(String, String, String)> {
    let o = run(Command::new("tar")
        .args(["--numeric-owner", "-tvzf"])
        .arg(layer));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].to_string(),
                f[1].to_string(),
                f.last().unwrap().trim_end_matches('/').to_string(),
            )
        })
        .collect()
}

#[test]
fn the_image_is_minimal_non_root_and_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = stripped_binary(tmp.path());
    let a = build_image(&bin, &tmp.path().join("a"));
    let b = build_image(&bin, &tmp.path().join("b"));
    assert!(a.starts_with("sha256:"), "{a}");
    assert_eq!(a, b, "same binary, same image digest");
    assert_eq!(
        std::fs::read(tmp.path().join("a/index.json")).unwrap(),
        std::fs::read(tmp.path().join("b/index.json")).unwrap()
    );

    let (manifest, config, layer) = image(&tmp.path().join("a"));
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(config["config"]["User"], "65532:65532");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/usr/local/bin/squizzle"])
    );
    assert_eq!(config["os"], "linux");

    // Nothing but the binary, what it links, CA certificates and the user.
    let entries = layer_entries(&layer);
    let paths: BTreeSet<&str> = entries.iter().map(|e| e.2.as_str()).collect();
    for must in [
        "usr/local/bin/squizzle",
        "etc/ssl/certs/ca-certificates.crt",
        "etc/passwd",
        "etc/group",
        "home/nonroot",
        "tmp",
    ] {
        assert!(paths.contains(must), "{must} missing from {paths:?}");
    }
    let ldd = run(Command::new("ldd").arg(&bin));
    let linked = String::from_utf8_lossy(&ldd.stdout).into_owned();
    for (mode, owner, path) in &entries {
        let allowed = path.starts_with("usr/local/bin")
            || path.starts_with("etc")
            || path.starts_with("home")
            || path.starts_with("usr")
            || path == "tmp"
            || (path.starts_with("lib")
                && (mode.starts_with('d') || linked.contains(&format!("/{path} "))));
        assert!(allowed, "unexpected entry {path} ({mode}) in the image");
        let expected_owner = if path == "home/nonroot" {
            "65532/65532"
        } else {
            "0/0"
        };
        assert_eq!(owner, expected_owner, "{path}");
    }
    let home = entries.iter().find(|e| e.2 == "home/nonroot").unwrap();
    assert_eq!(home.0, "drwx------");
    let tmp_dir = entries.iter().find(|e| e.2 == "tmp").unwrap();
    assert_eq!(tmp_dir.0, "drwxrwxrwt");
}

#[test]
fn a_foreign_binary_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = tmp.path().join("squizzle");
    let mut elf = std::fs::read(squizzle_bin()).unwrap()[..64].to_vec();
    // e_machine of another architecture (RISC-V, 0xF3).
    elf[18] = 0xF3;
    elf[19] = 0;
    std::fs::write(&fake, elf).unwrap();
    let o = Command::new("python3")
        .arg(repo_root().join("scripts/image.py"))
        .args(["build", "--tag", "t", "--binary"])
        .arg(&fake)
        .arg("--out")
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("build each platform's image on a machine of that platform")
    );
    assert!(!tmp.path().join("out/index.json").exists());
}

#[test]
fn squizzle_applies_a_registry_release_from_inside_the_image_as_uid_65532_on_a_read_only_root() {
    let s = SigstoreServices::start();
    let reg = Registry::start(RegistryOptions { auth: Auth::None });
    // CI: build, sign keyless, push.
    let ci = squizzle_test_support::ci::release_keyless(&s, &reg, WORKFLOW, "1.0.0");
    let digest = ci.tag_digest("1.0.0");

    // The image, unpacked as a runtime would.
    let tmp = tempfile::tempdir().unwrap();
    let bin = stripped_binary(tmp.path());
    let layout = tmp.path().join("layout");
    build_image(&bin, &layout);
    let (_, config, layer) = image(&layout);
    let root = tmp.path().join("rootfs");
    std::fs::create_dir(&root).unwrap();
    run(Command::new("tar")
        .args(["--same-owner", "--numeric-owner", "-xzf"])
        .arg(&layer)
        .arg("-C")
        .arg(&root));

    let db = pg::shared().create_database("image_apply");
    let chroot =
        String::from_utf8_lossy(&run(Command::new("sh").args(["-c", "command -v chroot"])).stdout)
            .trim()
            .to_string();
    let r = root.to_str().unwrap();
    // Inside the namespace: read-only root, tmpfs on /tmp, the trusted
    // root copied into it (as a mounted secret would be), then chroot.
    let script = format!(
        "set -e; mount --bind {r} {r}; mount -o remount,bind,ro {r}; \
         mount -t tmpfs -o mode=1777 tmpfs {r}/tmp; \
         cp {trusted} {r}/tmp/trusted_root.json; chmod 0644 {r}/tmp/trusted_root.json; \
         exec \"$@\"",
        trusted = s.trusted_root_path().display(),
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "sh", "-c", &script, "sh"]);
    cmd.env_clear();
    for kv in config["config"]["Env"].as_array().unwrap() {
        let (k, v) = kv.as_str().unwrap().split_once('=').unwrap();
        cmd.env(k, v);
    }
    cmd.env("DATABASE_URL", format!("{db}?sslmode=disable"))
        .env("SQUIZZLE_REGISTRY", format!("{}/acme/db", reg.url()))
        .env("SQUIZZLE_TRUSTED_ROOT", "/tmp/trusted_root.json")
        .arg(&chroot)
        .arg("--userspec=65532:65532")
        .arg(&root)
        .arg(config["config"]["Entrypoint"][0].as_str().unwrap())
        .args([
            "apply",
            "1.0.0",
            "--certificate-identity",
            WORKFLOW,
            "--certificate-oidc-issuer",
            &s.issuer_url(),
        ]);
    let o = cmd.output().expect("unshare runs");
    assert!(o.status.success(), "apply inside the image: {}", text(&o));
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains(&format!("Signed by: {WORKFLOW}")), "{out}");
    assert!(out.contains("Applied 1.0.0"), "{out}");
    let rows = pg::shared().query(
        &db,
        "SELECT artifact_digest, success FROM squizzle.releases",
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0].as_deref(), Some(digest.as_str()));
    assert_eq!(rows[0][1].as_deref(), Some("t"));
    // The read-only root kept nothing: the pulled release lived in the tmpfs.
    assert!(!root.join("tmp/cache").exists());
    assert!(!root.join("home/nonroot/.cache").exists());
}
