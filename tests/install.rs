//! `scripts/install.sh` and the GitHub Action in `action.yml`, run against a
//! local file server standing in for a GitHub release page, with
//! `SHA256SUMS` signed keyless by the PyPI `sigstore` client against the
//! loopback Sigstore services (as squizzle's release workflow signs it on
//! GitHub). The binary served is the squizzle under test, debug info
//! stripped.
//!
//! Every refusal is checked for its exit code, its message and for leaving
//! the install folder exactly as it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};
use squizzle_test_support::file_server::FileServer;
use squizzle_test_support::sigstore::{Identity, SigstoreServices, python};
use squizzle_test_support::{repo_root, squizzle_bin};

const VERSION: &str = "0.1.0";

fn target() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x86_64-unknown-linux-gnu",
        "aarch64" => "aarch64-unknown-linux-gnu",
        other => panic!("no release target for {other}"),
    }
}

fn asset() -> String {
    format!("squizzle-{}", target())
}

/// The identity install.sh expects by default: squizzle's release workflow
/// on the version's tag.
fn release_identity() -> String {
    format!(
        "https://github.com/squizzle-dev/squizzle/.github/workflows/release.yml@refs/tags/v{VERSION}"
    )
}

fn sha256_hex(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A release page: the binary, SHA256SUMS (with a second target's line, as
/// the real one has) and SHA256SUMS.sigstore.json signed by `signer`.
struct Release {
    dir: tempfile::TempDir,
}

impl Release {
    fn new(s: &SigstoreServices, signer: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join(asset());
        let o = Command::new("objcopy")
            .arg("--strip-debug")
            .arg(squizzle_bin())
            .arg(&bin)
            .output()
            .expect("objcopy runs (binutils)");
        assert!(o.status.success(), "objcopy: {}", text(&o));
        let r = Release { dir };
        r.write_sums(&format!(
            "{}  {}\n{}  squizzle-riscv64gc-unknown-linux-gnu\n",
            sha256_hex(&bin),
            asset(),
            "ab".repeat(32)
        ));
        r.sign(s, signer);
        r
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write_sums(&self, body: &str) {
        std::fs::write(self.path("SHA256SUMS"), body).unwrap();
    }

    /// Signs SHA256SUMS as the release workflow does (sigstore-python).
    fn sign(&self, s: &SigstoreServices, signer: &str) {
        let bundle = self.path("SHA256SUMS.sigstore.json");
        let _ = std::fs::remove_file(&bundle);
        let token = s.mint_token(&Identity::uri(signer));
        let o = python::sigstore(&[
            "--trust-config",
            s.trust_config_path().to_str().unwrap(),
            "sign",
            "--identity-token",
            &token,
            "--bundle",
            bundle.to_str().unwrap(),
            self.path("SHA256SUMS").to_str().unwrap(),
        ]);
        assert!(
            o.status.success(),
            "sigstore sign: {}",
            python::describe(&o)
        );
    }

    /// Flips one byte near the end of the served binary.
    fn tamper_binary(&self) {
        let p = self.path(&asset());
        let mut b = std::fs::read(&p).unwrap();
        let i = b.len() - 100;
        b[i] ^= 0x55;
        std::fs::write(&p, b).unwrap();
    }
}

/// Runs install.sh against `server`, trusting the loopback Sigstore.
fn install(s: &SigstoreServices, server: &FileServer, dest: &Path, extra: &[&str]) -> Output {
    install_with_path(s, server, dest, extra, None)
}

fn install_with_path(
    s: &SigstoreServices,
    server: &FileServer,
    dest: &Path,
    extra: &[&str],
    path: Option<&str>,
) -> Output {
    let mut cmd = Command::new("sh");
    cmd.arg(repo_root().join("scripts/install.sh"))
        .args(["--version", VERSION, "--release-url", &server.url()])
        .arg("--dir")
        .arg(dest)
        .args(["--cert-oidc-issuer", &s.issuer_url()])
        .arg("--trust-config")
        .arg(s.trust_config_path())
        .args(extra)
        .env("SIGSTORE_NO_CACHE", "1");
    for (k, _) in std::env::vars() {
        if k.starts_with("SQUIZZLE_INSTALL_") {
            cmd.env_remove(k);
        }
    }
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    cmd.output().expect("sh runs")
}

/// The folder's files and their contents.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect()
        })
        .unwrap_or_default()
}

/// A folder holding an older "squizzle" that a refused install must keep.
fn dest_with_old_binary() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("squizzle"), b"#!/bin/sh\necho old squizzle\n").unwrap();
    d
}

fn assert_refused(
    o: &Output,
    code: i32,
    message: &str,
    dest: &Path,
    before: &BTreeMap<String, Vec<u8>>,
) {
    assert_eq!(o.status.code(), Some(code), "{}", text(o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(message),
        "expected {message:?} in:\n{}",
        text(o)
    );
    assert!(!err.contains("installed /"), "{}", text(o));
    assert_eq!(&snapshot(dest), before, "the install folder changed");
}

// ------------------------------------------------------------ install.sh --

#[test]
fn install_sh_installs_a_signed_release_that_runs() {
    let s = SigstoreServices::start();
    let release = Release::new(&s, &release_identity());
    let server = FileServer::start(release.dir.path());
    let dest = dest_with_old_binary();
    let o = install(&s, &server, dest.path(), &[]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("signature OK"), "{err}");
    assert!(err.contains("checksum OK"), "{err}");
    let installed = dest.path().join("squizzle");
    assert_eq!(sha256_hex(&installed), sha256_hex(&release.path(&asset())));
    let v = Command::new(&installed).arg("version").output().unwrap();
    assert!(v.status.success() && String::from_utf8_lossy(&v.stdout).starts_with("squizzle "));
    // Only the binary: no temporary file left beside it.
    assert_eq!(snapshot(dest.path()).len(), 1);

    // Pinning the right hash also installs.
    let pin = sha256_hex(&release.path(&asset()));
    let again = tempfile::tempdir().unwrap();
    let o = install(
        &s,
        &server,
        again.path(),
        &["--sha256", &pin.to_uppercase()],
    );
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn a_tampered_binary_is_not_installed() {
    let s = SigstoreServices::start();
    let release = Release::new(&s, &release_identity());
    release.tamper_binary();
    let server = FileServer::start(release.dir.path());
    let dest = dest_with_old_binary();
    let before = snapshot(dest.path());
    let o = install(&s, &server, dest.path(), &[]);
    assert_refused(&o, 4, "checksum mismatch", dest.path(), &before);
}

#[test]
fn sums_rewritten_after_signing_fail_the_signature() {
    // The attacker controls the release page: tampered binary AND a
    // SHA256SUMS that matches it, but cannot re-sign as the workflow.
    let s = SigstoreServices::start();
    let release = Release::new(&s, &release_identity());
    release.tamper_binary();
    release.write_sums(&format!(
        "{}  {}\n",
        sha256_hex(&release.path(&asset())),
        asset()
    ));
    let server = FileServer::start(release.dir.path());
    let dest = dest_with_old_binary();
    let before = snapshot(dest.path());
    let o = install(&s, &server, dest.path(), &[]);
    assert_refused(
        &o,
        4,
        "signature of SHA256SUMS does not verify",
        dest.path(),
        &before,
    );
}

#[test]
fn sums_signed_by_another_identity_are_refused() {
    let s = SigstoreServices::start();
    let release = Release::new(
        &s,
        "https://github.com/mallory/squizzle/.github/workflows/release.yml@refs/tags/v0.1.0",
    );
    let server = FileServer::start(release.dir.path());
    let dest = dest_with_old_binary();
    let before = snapshot(dest.path());
    let o = install(&s, &server, dest.path(), &[]);
    assert_refused(&o, 4, "does not verify for signer", dest.path(), &before);

    // The workflow of another tag is another identity too.
    let other_tag = Release::new(
        &s,
        "https://github.com/squizzle-dev/squizzle/.github/workflows/release.yml@refs/tags/v0.0.9",
    );
    let server = FileServer::start(other_tag.dir.path());
    let o = install(&s, &server, dest.path(), &[]);
    assert_refused(&o, 4, "does not verify for signer", dest.path(), &before);
}

#[test]
fn a_missing_signature_or_verifier_is_refused_when_required() {
    let s = SigstoreServices::start();
    let release = Release::new(&s, &release_identity());
    let server = FileServer::start(release.dir.path());
    let dest = dest_with_old_binary();
    let before = snapshot(dest.path());

    std::fs::remove_file(release.path("SHA256SUMS.sigstore.json")).unwrap();
    let o = install(&s, &server, dest.path(), &[]);
    assert_refused(&o, 3, "SHA256SUMS.sigstore.json", dest.path(), &before);

    // No verifier on PATH: `require` refuses, `auto` warns and installs on
    // the checksum alone, saying so.
    let bare = tempfile::tempdir().unwrap();
    for tool in [
        "sh",
        "curl",
        "sha256sum",
        "awk",
        "grep",
        "tr",
        "cut",
        "mktemp",
        "rm",
        "mkdir",
        "chmod",
        "cp",
        "mv",
        "cat",
        "id",
        "uname",
        "head",
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .unwrap();
        let at = String::from_utf8_lossy(&found.stdout).trim().to_string();
        assert!(!at.is_empty(), "{tool} is not installed");
        std::os::unix::fs::symlink(at, bare.path().join(tool)).unwrap();
    }
    let path = bare.path().to_str().unwrap();
    let o = install_with_path(
        &s,
        &server,
        dest.path(),
        &["--signature", "require"],
        Some(path),
    );
    assert_refused(
        &o,
        4,
        "neither cosign nor the PyPI sigstore client",
        dest.path(),
        &before,
    );
    let o = install_with_path(&s, &server, dest.path(), &[], Some(path));
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("warning: signature NOT checked"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_wrong_pin_is_refused() {
    let s = SigstoreServices::start();
    let release = Release::new(&s, &release_identity());
    let server = FileServer::start(release.dir.path());
    let dest = dest_with_old_binary();
    let before = snapshot(dest.path());
    let o = install(&s, &server, dest.path(), &["--sha256", &"0".repeat(64)]);
    assert_refused(&o, 4, "not the pinned --sha256", dest.path(), &before);
    let o = install(&s, &server, dest.path(), &["--sha256", "abc"]);
    assert_refused(&o, 2, "64 hex digits", dest.path(), &before);
}

#[test]
fn sums_that_do_not_list_the_binary_once_are_refused() {
    let s = SigstoreServices::start();
    let release = Release::new(&s, &release_identity());
    let line = format!("{}  {}\n", sha256_hex(&release.path(&asset())), asset());
    let server = FileServer::start(release.dir.path());
    let dest = dest_with_old_binary();
    let before = snapshot(dest.path());
    for sums in [format!("{line}{line}"), "ab  squizzle-other\n".to_string()] {
        release.write_sums(&sums);
        release.sign(&s, &release_identity());
        let o = install(&s, &server, dest.path(), &[]);
        assert_refused(&o, 4, "exactly once", dest.path(), &before);
    }
}

#[test]
fn bad_arguments_and_missing_releases_say_what_to_do() {
    let s = SigstoreServices::start();
    let release = Release::new(&s, &release_identity());
    let server = FileServer::start(release.dir.path());
    let dest = dest_with_old_binary();
    let before = snapshot(dest.path());

    let run = |args: &[&str]| {
        let mut cmd = Command::new("sh");
        cmd.arg(repo_root().join("scripts/install.sh"))
            .arg("--dir")
            .arg(dest.path())
            .args(args);
        cmd.output().unwrap()
    };
    assert_refused(&run(&[]), 2, "Pass --version", dest.path(), &before);
    assert_refused(
        &run(&["--version", "latest"]),
        2,
        "not a release version",
        dest.path(),
        &before,
    );
    assert_refused(
        &run(&[
            "--version",
            VERSION,
            "--release-url",
            "http://example.com/r",
        ]),
        2,
        "must be https://",
        dest.path(),
        &before,
    );
    assert_refused(
        &run(&["--version", VERSION, "--target", "x86_64-pc-windows-msvc"]),
        2,
        "no prebuilt squizzle",
        dest.path(),
        &before,
    );
    assert_refused(
        &run(&["--frobnicate"]),
        2,
        "unknown argument",
        dest.path(),
        &before,
    );
    // A version the release page does not have: the download fails (404).
    let o = Command::new("sh")
        .arg(repo_root().join("scripts/install.sh"))
        .args([
            "--version",
            "9.9.9",
            "--release-url",
            &format!("{}/nope", server.url()),
        ])
        .arg("--dir")
        .arg(dest.path())
        .output()
        .unwrap();
    assert_refused(&o, 3, "could not download", dest.path(), &before);
}

// ------------------------------------------------------------ action.yml --

/// action.yml as JSON (PyYAML, pinned in scripts/lib/setup.sh).
fn action() -> serde_json::Value {
    let o = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(repo_root().join("action.yml"))
        .output()
        .expect("python3 runs");
    assert!(
        o.status.success(),
        "PyYAML reads action.yml (scripts/lib/setup.sh: ensure_workflow_linters installs it): {}",
        text(&o)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Runs the composite action's steps as the runner does: each step's `env`
/// with `${{ inputs.NAME }}` replaced (the only expressions it may use),
/// `run` in `bash -e -o pipefail`, GITHUB_PATH/GITHUB_OUTPUT files. Returns
/// the failed step's output, or the lines added to GITHUB_PATH and GITHUB_OUTPUT.
fn run_action(
    s: &SigstoreServices,
    inputs: &[(&str, &str)],
    runner_temp: &Path,
) -> Result<(String, String), Output> {
    let action = action();
    let mut given: BTreeMap<String, String> = BTreeMap::new();
    for (name, spec) in action["inputs"].as_object().unwrap() {
        if let Some(d) = spec.get("default").and_then(|d| d.as_str()) {
            given.insert(name.clone(), d.to_string());
        }
    }
    for (k, v) in inputs {
        assert!(
            action["inputs"].get(*k).is_some(),
            "action.yml has no input {k}"
        );
        given.insert(k.to_string(), v.to_string());
    }
    let gh_path = runner_temp.join("github_path");
    let gh_out = runner_temp.join("github_output");
    std::fs::write(&gh_path, "").unwrap();
    std::fs::write(&gh_out, "").unwrap();
    assert_eq!(action["runs"]["using"], "composite");
    for step in action["runs"]["steps"].as_array().unwrap() {
        assert_eq!(step["shell"], "bash");
        let run = step["run"].as_str().unwrap();
        assert!(
            !run.contains("${{"),
            "expressions belong in env:, not in run: ({run})"
        );
        let mut cmd = Command::new("bash");
        cmd.args(["--noprofile", "--norc", "-e", "-o", "pipefail", "-c", run])
            .env("GITHUB_ACTION_PATH", repo_root())
            .env("RUNNER_TEMP", runner_temp)
            .env("GITHUB_PATH", &gh_path)
            .env("GITHUB_OUTPUT", &gh_out)
            // Not inputs of the action: the loopback Sigstore stands in for
            // GitHub's issuer and the public-good instance.
            .env("SQUIZZLE_INSTALL_CERT_OIDC_ISSUER", s.issuer_url())
            .env("SQUIZZLE_INSTALL_TRUST_CONFIG", s.trust_config_path())
            .env("SIGSTORE_NO_CACHE", "1");
        if let Some(env) = step.get("env").and_then(|e| e.as_object()) {
            for (k, v) in env {
                let mut v = v.as_str().unwrap().to_string();
                while let Some(at) = v.find("${{ inputs.") {
                    let end = at + v[at..].find("}}").unwrap() + 2;
                    let name = v[at + "${{ inputs.".len()..end - 2].trim().to_string();
                    let value = given.get(&name).cloned().unwrap_or_default();
                    v.replace_range(at..end, &value);
                }
                assert!(!v.contains("${{"), "unsupported expression in {k}: {v}");
                cmd.env(k, v);
            }
        }
        let o = cmd.output().unwrap();
        if !o.status.success() {
            return Err(o);
        }
    }
    Ok((
        std::fs::read_to_string(gh_path).unwrap(),
        std::fs::read_to_string(gh_out).unwrap(),
    ))
}

#[test]
fn the_action_installs_the_pinned_version_and_puts_it_on_path() {
    let s = SigstoreServices::start();
    let release = Release::new(&s, &release_identity());
    let server = FileServer::start(release.dir.path());
    let temp = tempfile::tempdir().unwrap();
    let url = server.url();
    let (path, output) = run_action(
        &s,
        &[("version", VERSION), ("release-url", &url)],
        temp.path(),
    )
    .unwrap_or_else(|o| panic!("the action failed: {}", text(&o)));
    let dir = temp.path().join("squizzle-bin");
    assert_eq!(path.trim(), dir.to_str().unwrap());
    assert_eq!(output.trim(), format!("path={}/squizzle", dir.display()));
    assert_eq!(
        sha256_hex(&dir.join("squizzle")),
        sha256_hex(&release.path(&asset()))
    );
}

#[test]
fn the_action_fails_the_job_on_a_tampered_release_and_changes_no_path() {
    let s = SigstoreServices::start();
    let release = Release::new(&s, &release_identity());
    release.tamper_binary();
    let server = FileServer::start(release.dir.path());
    let temp = tempfile::tempdir().unwrap();
    let url = server.url();
    let o = run_action(
        &s,
        &[("version", VERSION), ("release-url", &url)],
        temp.path(),
    )
    .expect_err("a tampered release must fail the action");
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("checksum mismatch"));
    assert_eq!(
        std::fs::read_to_string(temp.path().join("github_path")).unwrap(),
        ""
    );
    assert!(!temp.path().join("squizzle-bin/squizzle").exists());

    // A wrong `sha256` input fails it too, even with an intact release.
    let good = Release::new(&s, &release_identity());
    let server = FileServer::start(good.dir.path());
    let url = server.url();
    let zeros = "0".repeat(64);
    let o = run_action(
        &s,
        &[
            ("version", VERSION),
            ("release-url", &url),
            ("sha256", &zeros),
        ],
        temp.path(),
    )
    .expect_err("a wrong pin must fail the action");
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
}

// --------------------------------------------- release.yml <-> install.sh --

fn yaml(path: &str) -> serde_json::Value {
    let o = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(repo_root().join(path))
        .output()
        .expect("python3 runs");
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// What the release workflow publishes is what install.sh and the action
/// look for: the targets, the asset names, the workflow file that is the
/// signer identity, and one pinned sigstore client everywhere.
#[test]
fn the_release_workflow_publishes_what_the_installers_check() {
    let wf = yaml(".github/workflows/release.yml");
    let script = std::fs::read_to_string(repo_root().join("scripts/install.sh")).unwrap();
    let targets: Vec<String> = wf["jobs"]["build"]["strategy"]["matrix"]["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["target"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        targets,
        ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"]
    );
    for t in &targets {
        assert!(
            script.contains(&format!("target={t}")),
            "install.sh does not map a machine to {t}"
        );
    }
    let all = serde_json::to_string(&wf).unwrap();
    assert!(
        all.contains("dist/squizzle-$TARGET"),
        "binaries are published as squizzle-<target>"
    );
    assert!(all.contains("sha256sum squizzle-* install.sh > SHA256SUMS"));
    assert!(all.contains("-m sigstore sign SHA256SUMS"));
    assert!(
        script.contains("/.github/workflows/release.yml@refs/tags/v$version"),
        "install.sh's default signer is this workflow file on the version's tag"
    );
    assert_eq!(wf["jobs"]["publish"]["permissions"]["id-token"], "write");

    let setup = std::fs::read_to_string(repo_root().join("scripts/lib/setup.sh")).unwrap();
    let pinned = setup
        .lines()
        .find_map(|l| l.strip_prefix("SIGSTORE_PYTHON_VERSION="))
        .unwrap()
        .trim()
        .to_string();
    let action = std::fs::read_to_string(repo_root().join("action.yml")).unwrap();
    for (name, body) in [("release.yml", &all), ("action.yml", &action)] {
        assert!(
            body.contains(&format!("sigstore=={pinned}")),
            "{name} pins another sigstore than scripts/lib/setup.sh ({pinned})"
        );
    }
}

// ------------------------------------------- nothing -> applied database --

/// The whole adoption path of a deploy job, in an empty folder: command 1
/// installs squizzle from the release page (signature and checksum
/// checked), command 2 pulls a keyless-signed migration release from a real
/// registry, verifies it and applies it to a real PostgreSQL, with nothing
/// but flags and variables. Prints how long the two commands took.
#[test]
fn two_commands_take_an_empty_folder_to_an_applied_database() {
    use squizzle_test_support::pg;
    use squizzle_test_support::registry::{Auth, Registry, RegistryOptions};
    const APP: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0";

    let s = SigstoreServices::start();
    let reg = Registry::start(RegistryOptions { auth: Auth::None });
    // The application's CI released its migrations 1.0.0.
    squizzle_test_support::ci::release_keyless(&s, &reg, APP, "1.0.0");
    // squizzle's release page.
    let release = Release::new(&s, &release_identity());
    let server = FileServer::start(release.dir.path());
    let db = pg::shared().create_database("two_commands");

    let job = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    // 1.
    let o = install(&s, &server, &home.path().join("bin"), &[]);
    assert!(o.status.success(), "{}", text(&o));
    let installed = started.elapsed();
    // 2.
    let o = Command::new(home.path().join("bin/squizzle"))
        .current_dir(job.path())
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", "/usr/bin:/bin")
        .env("DATABASE_URL", format!("{db}?sslmode=disable"))
        .env("SQUIZZLE_REGISTRY", format!("{}/acme/db", reg.url()))
        .env("SQUIZZLE_TRUSTED_ROOT", s.trusted_root_path())
        .args([
            "apply",
            "1.0.0",
            "--certificate-identity",
            APP,
            "--certificate-oidc-issuer",
            &s.issuer_url(),
        ])
        .output()
        .unwrap();
    let applied = started.elapsed();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("Applied 1.0.0"), "{}", text(&o));
    let rows = pg::shared().query(&db, "SELECT success FROM squizzle.releases");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0].as_deref(), Some("t"));
    assert_eq!(
        std::fs::read_dir(job.path()).unwrap().count(),
        0,
        "the job folder stays empty"
    );
    eprintln!(
        "nothing -> applied database: install {:.2} s, apply {:.2} s, total {:.2} s \
         (loopback file server, registry, Sigstore and PostgreSQL; debug build)",
        installed.as_secs_f64(),
        (applied - installed).as_secs_f64(),
        applied.as_secs_f64()
    );
}

// ---------------------------------------------------------- cargo package --

/// The crate is ready to publish: `cargo package --list` (offline) ships the
/// sources with the build script and the user docs, and nothing of the test
/// suite, fixtures or benchmarks. (`cargo package --offline`, which also
/// builds the packaged sources, is run by hand: docs/install.md.)
#[test]
fn the_crate_package_holds_the_sources_and_docs_only() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let o = Command::new(cargo)
        .args(["package", "--list", "--offline", "--allow-dirty", "--quiet"])
        .current_dir(repo_root())
        .output()
        .expect("cargo runs");
    assert!(o.status.success(), "{}", text(&o));
    let list = String::from_utf8_lossy(&o.stdout);
    let files: Vec<&str> = list.lines().collect();
    for must in [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "README.md",
        "src/main.rs",
        "src/lib.rs",
        "docs/install.md",
    ] {
        assert!(files.contains(&must), "{must} is not packaged: {files:?}");
    }
    for f in &files {
        assert!(
            !f.starts_with("tests/")
                && !f.starts_with("fixtures/")
                && !f.starts_with("bench/")
                && !f.starts_with("crates/")
                && !f.starts_with(".github/"),
            "{f} should not be in the crate"
        );
    }
    let manifest = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    for key in [
        "description",
        "license",
        "repository",
        "readme",
        "rust-version",
    ] {
        assert!(
            manifest.contains(&format!("\n{key} = ")),
            "Cargo.toml lacks {key}"
        );
    }
}
