//! The command examples of README.md and docs/*.md, run so they cannot rot.
//!
//! Every fenced block that shows commands (language `sh`, `console`, `bash`
//! or `shell`, or an untyped or `text` block with a line starting with `$ `
//! or `squizzle `)
//! says in its info string whether it runs:
//!
//! - ```` ```console exec world=dokploy ````: runs. A `console` block is a
//!   transcript: `$ ` lines are commands (a trailing `\` continues one), the
//!   lines under a command are its output (stdout and stderr, in the order
//!   written), compared line by line; a line `...` stands for any number of
//!   lines, and `[..]` or `…` for any text within a line (`...` inside a line
//!   is literal). A `sh` block is a script:
//!   every line is a command and only exit codes are checked. A command
//!   expects exit 0 unless it ends with the comment `# exit N`.
//! - ```` ```sh no-exec: REASON ````: shown, not run, and counted with its reason.
//!
//! Blocks of one page run in order in one temporary project (a [`World`]),
//! so later blocks see what earlier ones made. Attributes after `exec`:
//! `world=empty|plain|dokploy|drizzle` starts a fresh project (`drizzle`: the
//! dokploy drizzle-kit folder without a `squizzle.toml`; the default for a
//! page's first block is `empty`); `built=VERSION` builds that release first;
//! `db` sets `DATABASE_URL` to a new database on the test PostgreSQL;
//! `envs=a,b` adds `[environments.a]` and `[environments.b]` to
//! `squizzle.toml`, each with a new database; `git` commits the project to a
//! new git repository first.
//!
//! docs/incident-response.md is the exception: its `console` blocks are the
//! runbook `incident_drill` runs against real services, so this module only
//! counts them.

use std::collections::BTreeMap;
use std::path::Path;

use squizzle_test_support::{World, pg, repo_root};

/// Pages whose command blocks another test runs, and that test.
const RUN_ELSEWHERE: &[(&str, &str)] = &[(
    "docs/incident-response.md",
    "incident_drill::the_incident_response_runbook_runs_as_written",
)];

const COMMAND_LANGS: &[&str] = &["sh", "console", "bash", "shell"];

#[derive(Debug)]
enum Mark {
    Exec(Vec<String>),
    NoExec(String),
    Elsewhere(&'static str),
    Missing,
}

#[derive(Debug)]
struct Block {
    page: String,
    line: usize,
    lang: String,
    mark: Mark,
    body: Vec<String>,
}

impl Block {
    fn at(&self) -> String {
        format!("{}:{}", self.page, self.line)
    }
}

/// README.md and docs/*.md, in a stable order.
fn pages() -> Vec<String> {
    let root = repo_root();
    let mut pages = vec!["README.md".to_owned()];
    let mut docs: Vec<String> = std::fs::read_dir(root.join("docs"))
        .expect("read docs/")
        .map(|e| e.expect("entry of docs/").file_name())
        .filter_map(|n| n.to_str().map(str::to_owned))
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// A block in a shell language, or an untyped/`text` block with command
/// lines (configuration such as `yaml` or `toml` is never a command block).
fn shows_commands(lang: &str, body: &[String]) -> bool {
    COMMAND_LANGS.contains(&lang)
        || (matches!(lang, "" | "text")
            && body.iter().any(|l| {
                let l = l.trim_start();
                l.starts_with("$ ") || l.starts_with("squizzle ")
            }))
}

/// The command blocks of one page.
fn command_blocks(page: &str) -> Vec<Block> {
    let text = std::fs::read_to_string(repo_root().join(page))
        .unwrap_or_else(|e| panic!("read {page}: {e}"));
    let elsewhere = RUN_ELSEWHERE
        .iter()
        .find(|(p, _)| *p == page)
        .map(|(_, test)| *test);
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String, Vec<String>)> = None;
    for (i, line) in text.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (open.is_some(), fence) {
            (false, Some(info)) => open = Some((i + 1, info.trim().to_owned(), Vec::new())),
            (true, Some(_)) => {
                let (line, info, body) = open.take().expect("an open block");
                let (lang, attrs) = info.split_once(' ').unwrap_or((info.as_str(), ""));
                if !shows_commands(lang, &body) {
                    continue;
                }
                let attrs = attrs.trim();
                let mark = if let Some(test) = elsewhere {
                    Mark::Elsewhere(test)
                } else if let Some(reason) = attrs.strip_prefix("no-exec:") {
                    Mark::NoExec(reason.trim().to_owned())
                } else if let Some(rest) = attrs.strip_prefix("exec") {
                    Mark::Exec(rest.split_whitespace().map(str::to_owned).collect())
                } else {
                    Mark::Missing
                };
                blocks.push(Block {
                    page: page.to_owned(),
                    line,
                    lang: lang.to_owned(),
                    mark,
                    body,
                });
            }
            (true, None) => {
                if let Some((_, _, body)) = &mut open {
                    body.push(line.to_owned());
                }
            }
            (false, None) => {}
        }
    }
    assert!(open.is_none(), "{page}: a fenced block is never closed");
    blocks
}

/// One command of a block: the command line, its expected exit code and (in
/// a transcript) its expected output lines.
#[derive(Debug)]
struct Step {
    command: String,
    exit: i32,
    output: Option<Vec<String>>,
}

fn split_exit(command: &str) -> (String, i32) {
    match command.rsplit_once("# exit ") {
        Some((c, n)) => (
            c.trim().to_owned(),
            n.trim().parse().expect("`# exit N` names a number"),
        ),
        None => (command.trim().to_owned(), 0),
    }
}

fn steps(block: &Block) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut lines = block.body.iter();
    let transcript = block.lang == "console";
    while let Some(line) = lines.next() {
        let command = if transcript {
            match line.strip_prefix("$ ") {
                Some(c) => c,
                None => {
                    let last = steps.last_mut().unwrap_or_else(|| {
                        panic!("{}: output before the first `$ ` command", block.at())
                    });
                    last.output.get_or_insert_with(Vec::new).push(line.clone());
                    continue;
                }
            }
        } else {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            line.as_str()
        };
        let mut command = command.to_owned();
        while command.trim_end().ends_with('\\') {
            let next = lines
                .next()
                .unwrap_or_else(|| panic!("{}: `\\` on the last line", block.at()));
            command = format!("{}\n{next}", command.trim_end());
        }
        let (command, exit) = split_exit(&command);
        steps.push(Step {
            command,
            exit,
            output: None,
        });
    }
    steps
}

/// `expected` (with `...` lines and `[..]` spans) against `actual`, line by line.
fn output_matches(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first.trim() == "..." => {
            (0..=actual.len()).any(|skip| output_matches(rest, &actual[skip..]))
        }
        Some((first, rest)) => match actual.split_first() {
            Some((line, more)) => line_matches(first, line) && output_matches(rest, more),
            None => false,
        },
    }
}

fn line_matches(expected: &str, actual: &str) -> bool {
    let expected = expected.trim_end().replace('…', "[..]");
    let actual = actual.trim_end();
    let mut parts = expected.split("[..]");
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = actual.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// Sets up a project as the block's attributes ask.
fn prepare(world: &mut Option<World>, block: &Block, attrs: &[String]) {
    let fresh = attrs.iter().find_map(|a| a.strip_prefix("world="));
    if fresh.is_some() || world.is_none() {
        *world = Some(match fresh.unwrap_or("empty") {
            "empty" => World::new(),
            "plain" => World::plain(),
            "dokploy" => World::dokploy(),
            "drizzle" => {
                let w = World::new();
                w.copy_dokploy("drizzle");
                w
            }
            other => panic!("{}: unknown world={other}", block.at()),
        });
    }
    let w = world.as_mut().expect("a world");
    for attr in attrs {
        if let Some(version) = attr.strip_prefix("built=") {
            w.build_ok(version);
        } else if attr == "db" {
            let url = pg::shared().create_database("doc_examples");
            w.set_env("DATABASE_URL", &url);
        } else if let Some(names) = attr.strip_prefix("envs=") {
            let mut toml = w.read_string("squizzle.toml");
            for name in names.split(',') {
                let url = pg::shared().create_database(name);
                toml.push_str(&format!(
                    "\n[environments.{name}]\ndatabase_url = \"{url}\"\n"
                ));
            }
            w.config(&toml);
        } else if attr == "git" {
            w.sh("git init -q && git add -A && \
                 git -c user.name=docs -c user.email=docs@example.com commit -q -m docs")
                .success();
        } else if !attr.starts_with("world=") {
            panic!("{}: unknown attribute {attr:?}", block.at());
        }
    }
}

fn run_block(world: &mut Option<World>, block: &Block, attrs: &[String]) {
    prepare(world, block, attrs);
    let w = world.as_ref().expect("a world");
    let steps = steps(block);
    assert!(!steps.is_empty(), "{}: no commands", block.at());
    for step in steps {
        let run = w.sh(&step.command);
        assert_eq!(
            run.code,
            step.exit,
            "{}: `{}` exited {} (expected {})\n--- output:\n{}",
            block.at(),
            step.command,
            run.code,
            step.exit,
            run.stdout
        );
        if let Some(expected) = &step.output {
            let actual: Vec<&str> = run.stdout.lines().collect();
            assert!(
                output_matches(expected, &actual),
                "{}: `{}` printed other output than the page shows\n--- page:\n{}\n--- actual:\n{}",
                block.at(),
                step.command,
                expected.join("\n"),
                run.stdout
            );
        }
    }
}

#[test]
fn readme_and_docs_command_examples_run_as_written() {
    let mut ran = 0;
    let mut elsewhere: BTreeMap<&str, usize> = BTreeMap::new();
    let mut not_run = Vec::new();
    let mut unmarked = Vec::new();
    for page in pages() {
        let mut world = None;
        for block in command_blocks(&page) {
            match &block.mark {
                Mark::Exec(attrs) => {
                    run_block(&mut world, &block, attrs);
                    ran += 1;
                }
                Mark::NoExec(reason) if !reason.is_empty() => {
                    not_run.push(format!("{}: {reason}", block.at()));
                }
                Mark::NoExec(_) | Mark::Missing => unmarked.push(block.at()),
                Mark::Elsewhere(test) => *elsewhere.entry(test).or_default() += 1,
            }
        }
    }
    eprintln!("doc examples: {ran} blocks run here");
    for (test, n) in &elsewhere {
        eprintln!("doc examples: {n} blocks run by {test}");
    }
    eprintln!("doc examples: {} blocks not run:", not_run.len());
    for line in &not_run {
        eprintln!("  {line}");
    }
    assert!(
        unmarked.is_empty(),
        "command blocks that neither run (`exec`) nor say why not (`no-exec: REASON`):\n  {}",
        unmarked.join("\n  ")
    );
    assert!(ran > 0, "no doc example ran");
}

#[test]
fn transcript_matching_follows_the_rules_above() {
    let lines = |s: &[&str]| s.iter().map(|l| (*l).to_owned()).collect::<Vec<_>>();
    assert!(output_matches(
        &lines(&["a", "...", "d"]),
        &["a", "b", "c", "d"]
    ));
    assert!(output_matches(&lines(&["a", "...", "b"]), &["a", "b"]));
    assert!(!output_matches(&lines(&["a", "b"]), &["a", "b", "c"]));
    assert!(line_matches(
        "Signed 1.0.0 sha256:[..]",
        "Signed 1.0.0 sha256:ab12"
    ));
    assert!(line_matches("a [..] c [..]", "a b c d"));
    assert!(!line_matches("a [..] c", "a b d"));
    assert!(line_matches("Verifying...", "Verifying..."));
    assert!(!line_matches("Verifying...", "Verifying"));
    assert!(line_matches("→ Digest: sha256:…", "→ Digest: sha256:01b2"));
    assert_eq!(
        split_exit("squizzle verify 1.1.0   # exit 10"),
        ("squizzle verify 1.1.0".to_owned(), 10)
    );
    assert!(Path::new(&repo_root()).join("README.md").is_file());
}
