//! The GitHub Actions workflows in `.github/workflows/` (squizzle's own CI and
//! the example release workflow of docs/cicd.md) pass two linters:
//!
//! - `actionlint`: workflow syntax, expression types, runner labels, and the
//!   `run:` scripts through shellcheck;
//! - `zizmor --offline --persona pedantic`: security audits (template
//!   injection, unpinned actions and images, credential persistence,
//!   excessive permissions, missing concurrency limits, ...) without the
//!   GitHub API.
//!
//! Both are installed, pinned, by `scripts/lib/setup.sh: ensure_workflow_linters`
//! (which `scripts/test.sh` calls); the versions are read from that file. A
//! missing tool, or another version, fails these tests: it never skips them.
//! The negative tests feed each linter a workflow it must refuse, so a linter
//! that silently checks nothing cannot pass.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `NAME=value` from scripts/lib/setup.sh, the single place the pins live.
fn pinned(name: &str) -> String {
    let setup = std::fs::read_to_string(repo().join("scripts/lib/setup.sh"))
        .expect("read scripts/lib/setup.sh");
    let prefix = format!("{name}=");
    setup
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("scripts/lib/setup.sh sets no {name}"))
        .trim()
        .to_string()
}

/// Runs a linter; a linter that is not installed is a failure that says how
/// to install it.
fn run(program: &str, args: &[&str], cwd: &Path) -> Output {
    match Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env_remove("GH_TOKEN")
        .env_remove("GITHUB_TOKEN")
        .env_remove("ZIZMOR_GITHUB_TOKEN")
        .env_remove("ZIZMOR_CONFIG")
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "`{program}` is not installed (not on PATH): run `bash scripts/test.sh`, \
             which installs it (scripts/lib/setup.sh: ensure_workflow_linters)"
        ),
        Err(e) => panic!("cannot run `{program}`: {e}"),
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `.github/workflows/*.yml`, relative to the repository, sorted.
fn workflows() -> Vec<String> {
    let dir = repo().join(".github/workflows");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| {
            e.expect("directory entry")
                .file_name()
                .into_string()
                .unwrap()
        })
        .filter(|n| n.ends_with(".yml") || n.ends_with(".yaml"))
        .map(|n| format!(".github/workflows/{n}"))
        .collect();
    files.sort();
    for expected in [
        ".github/workflows/ci.yml",
        ".github/workflows/release-example.yml",
        ".github/workflows/release.yml",
    ] {
        assert!(
            files.iter().any(|f| f == expected),
            "{expected} is missing: {files:?}"
        );
    }
    files
}

fn actionlint(files: &[&str], cwd: &Path) -> Output {
    let mut args = vec!["-no-color"];
    args.extend_from_slice(files);
    run("actionlint", &args, cwd)
}

/// zizmor without the network or the GitHub API (`--offline`), without any
/// user or repository configuration (`--no-config`; inline
/// `# zizmor: ignore[...]` comments still count, each with its reason beside
/// it), and with the pedantic persona: the workflows are short and meant to
/// be copied, so code smells are worth fixing too. Any finding is a non-zero
/// exit.
fn zizmor(files: &[&str], cwd: &Path) -> Output {
    let mut args = vec![
        "--offline",
        "--no-config",
        "--persona",
        "pedantic",
        "--no-progress",
        "--color",
        "never",
        "--format",
        "plain",
    ];
    args.extend_from_slice(files);
    run("zizmor", &args, cwd)
}

/// A throwaway folder with one workflow in `.github/workflows/`.
fn scratch_workflow(name: &str, body: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temporary folder");
    let dir = tmp.path().join(".github/workflows");
    std::fs::create_dir_all(&dir).expect("create .github/workflows");
    let file = dir.join(name);
    std::fs::write(&file, body).expect("write workflow");
    (tmp, file)
}

#[test]
fn linters_are_the_pinned_versions() {
    let want = pinned("ACTIONLINT_VERSION");
    let out = run("actionlint", &["-version"], repo());
    let first = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(
        out.status.success() && first.ends_with(&format!(" {want}")),
        "actionlint is not version {want} (scripts/lib/setup.sh); run `bash scripts/test.sh`\n{}",
        text(&out)
    );

    let want = pinned("ZIZMOR_VERSION");
    let out = run("zizmor", &["--version"], repo());
    assert!(
        out.status.success()
            && String::from_utf8_lossy(&out.stdout).trim() == format!("zizmor {want}"),
        "zizmor is not version {want} (scripts/lib/setup.sh); run `bash scripts/test.sh`\n{}",
        text(&out)
    );
}

#[test]
fn actionlint_accepts_the_workflows() {
    let files = workflows();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let out = actionlint(&files, repo());
    assert!(
        out.status.success(),
        "actionlint found problems in {files:?}:\n{}",
        text(&out)
    );
}

#[test]
fn zizmor_finds_nothing_in_the_workflows() {
    let files = workflows();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let out = zizmor(&files, repo());
    assert!(
        out.status.success(),
        "zizmor found problems in {files:?}:\n{}",
        text(&out)
    );
}

/// The classic script injection: an issue title spliced into a shell script.
const INJECTION: &str = r#"name: greet
on:
  issues:
    types: [opened]
permissions: {}
jobs:
  greet:
    name: Greet
    runs-on: ubuntu-24.04
    timeout-minutes: 5
    steps:
      - name: Echo the title
        run: echo "${{ github.event.issue.title }}"
"#;

#[test]
fn zizmor_reports_template_injection() {
    let (tmp, _) = scratch_workflow("greet.yml", INJECTION);
    let out = zizmor(&[".github/workflows/greet.yml"], tmp.path());
    let all = text(&out);
    assert!(!out.status.success(), "zizmor passed an injection:\n{all}");
    assert!(
        all.contains("template-injection"),
        "zizmor did not name the template injection:\n{all}"
    );
}

#[test]
fn actionlint_reports_untrusted_input_in_a_script() {
    let (tmp, _) = scratch_workflow("greet.yml", INJECTION);
    let out = actionlint(&[".github/workflows/greet.yml"], tmp.path());
    let all = text(&out);
    assert!(
        !out.status.success(),
        "actionlint passed an injection:\n{all}"
    );
    assert!(
        all.contains("github.event.issue.title") && all.contains("untrusted"),
        "actionlint did not flag the untrusted input:\n{all}"
    );
}

#[test]
fn actionlint_reports_an_invalid_workflow() {
    // An unknown context property and a timeout that is not a number.
    let invalid = r#"name: invalid
on: push
permissions: {}
jobs:
  build:
    runs-on: ubuntu-24.04
    timeout-minutes: soon
    steps:
      - run: echo "${{ github.no_such_property }}"
"#;
    let (tmp, _) = scratch_workflow("invalid.yml", invalid);
    let out = actionlint(&[".github/workflows/invalid.yml"], tmp.path());
    let all = text(&out);
    assert!(
        !out.status.success(),
        "actionlint passed an invalid workflow:\n{all}"
    );
    assert!(
        all.contains(r#"property "no_such_property" is not defined"#)
            && all.contains("invalid.yml:7:")
            && all.contains("[syntax-check]"),
        "actionlint did not report both problems:\n{all}"
    );
}

#[test]
fn actionlint_runs_shellcheck_on_scripts() {
    let unquoted = r#"name: unquoted
on: push
permissions: {}
jobs:
  build:
    runs-on: ubuntu-24.04
    steps:
      - run: echo $HOME
"#;
    let (tmp, _) = scratch_workflow("unquoted.yml", unquoted);
    let out = actionlint(&[".github/workflows/unquoted.yml"], tmp.path());
    let all = text(&out);
    assert!(
        !out.status.success() && all.contains("SC2086"),
        "actionlint did not run shellcheck on a `run:` script (is shellcheck installed? \
         run `bash scripts/test.sh`):\n{all}"
    );
}

/// Every `squizzle <command> --flag` the example release workflow runs is a
/// flag that command has today (`squizzle <command> --help`).
#[test]
fn release_example_uses_existing_squizzle_flags() {
    let yml = std::fs::read_to_string(repo().join(".github/workflows/release-example.yml"))
        .expect("read release-example.yml");
    let joined = yml.replace("\\\n", " ");
    let call = regex::Regex::new(r"\bsquizzle ([a-z]+)\b([^\n]*)").unwrap();
    let flag = regex::Regex::new(r"(?:^|\s)(--[a-z][a-z-]*)").unwrap();
    let mut seen = Vec::new();
    for line in joined.lines().filter(|l| !l.trim_start().starts_with('#')) {
        for c in call.captures_iter(line) {
            let command = c[1].to_string();
            let help = Command::new(env!("CARGO_BIN_EXE_squizzle"))
                .args([command.as_str(), "--help"])
                .output()
                .expect("run squizzle --help");
            assert!(help.status.success(), "squizzle {command} --help failed");
            let help = String::from_utf8_lossy(&help.stdout);
            for f in flag.captures_iter(&c[2]) {
                assert!(
                    help.contains(&f[1]),
                    "release-example.yml runs `squizzle {command} {}`, which `squizzle {command} --help` does not list",
                    &f[1]
                );
            }
            seen.push(command);
        }
    }
    for command in ["build", "push", "apply"] {
        assert!(
            seen.iter().any(|s| s == command),
            "release-example.yml does not run `squizzle {command}`"
        );
    }
}

/// The GitHub Action in `action.yml` (tests/install.rs runs its steps)
/// passes zizmor too: no expression in a `run:` script, no unexplained
/// write to an environment file.
#[test]
fn zizmor_finds_nothing_in_the_action() {
    let out = zizmor(&["action.yml"], repo());
    assert!(
        out.status.success(),
        "zizmor found problems in action.yml:\n{}",
        text(&out)
    );
}
