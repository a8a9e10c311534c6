//! `squizzle version`, `completions` and `man`: about the tool itself, from
//! the clap definitions the parser uses, with no project and no database.

use std::process::Command;

use squizzle_test_support::{World, repo_root};

fn schema(name: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(repo_root().join("schemas").join(name)).unwrap();
    jsonschema::draft202012::new(&serde_json::from_str(&text).unwrap()).unwrap()
}

#[test]
fn version_json_names_the_commit_it_was_built_from_and_fits_its_schema() {
    let w = World::new();
    let run = w.run(&["version", "--output", "json"]).success();
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let errors: Vec<String> = schema("version.v1.schema.json")
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:?}\n{doc:#}");
    assert_eq!(doc["version"], env!("CARGO_PKG_VERSION"));
    // Built from this checkout: the commit is git's, unless it was given.
    if std::env::var_os("SQUIZZLE_BUILD_COMMIT").is_none() {
        let head = Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(repo_root())
            .output()
            .unwrap();
        if head.status.success() {
            assert_eq!(
                doc["commit"],
                String::from_utf8_lossy(&head.stdout).trim(),
                "{doc:#}"
            );
        }
    }
    let text = w.run(&["version"]).success();
    assert!(
        text.stdout
            .contains(&format!("squizzle {}", env!("CARGO_PKG_VERSION")))
    );
    assert!(text.stdout.contains(doc["target"].as_str().unwrap()));
}

#[test]
fn completion_scripts_cover_every_command_and_parse_in_bash() {
    let w = World::new();
    let bash = w.run(&["completions", "bash"]).success().stdout;
    for command in [
        "apply", "verify", "rollback", "audit", "lint", "check", "man",
    ] {
        assert!(bash.contains(command), "bash completion lacks {command}");
    }
    let path = w.write("squizzle.bash", &bash);
    let syntax = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = w.run(&["completions", shell]).success().stdout;
        assert!(out.contains("apply"), "{shell}");
    }
    w.run(&["completions", "tcsh"])
        .code(2)
        .says("possible values: bash, elvish, fish, powershell, zsh");
}

#[test]
fn man_pages_are_written_for_every_command() {
    let w = World::new();
    let top = w.run(&["man"]).success().stdout;
    assert!(
        top.starts_with(".ie") || top.contains(".TH squizzle 1"),
        "{top}"
    );
    w.run(&["man", "--dir", "man1"]).success();
    let pages = w.files_under("man1");
    for page in [
        "squizzle.1",
        "squizzle-apply.1",
        "squizzle-verify.1",
        "squizzle-audit.1",
    ] {
        assert!(
            pages.iter().any(|p| p.ends_with(page)),
            "{page} missing from {pages:?}"
        );
    }
    let apply = w.read_string("man1/squizzle-apply.1");
    assert!(apply.contains("lock\\-timeout"), "{apply}");
    // A file where the folder should be: an I/O error (exit 1) naming it.
    w.write("taken", "x");
    w.run(&["man", "--dir", "taken"]).code(1).says("taken");
}
