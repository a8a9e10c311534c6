//! The splitter against a real drizzle-kit history: Dokploy's 186 PostgreSQL
//! migrations in `fixtures/dokploy-drizzle/` (see its SOURCE.md). The expected
//! counts come from running the files with psql, not from this splitter.

use std::path::{Path, PathBuf};
use std::time::Instant;

use squizzle::db::split::{BREAKPOINT, SplitMode, line_of, split, transaction_control};

/// psql executed this many statements over all files (`log_statement=all`;
/// a `DO $$ ... $$` block is one statement), per SOURCE.md.
const PSQL_STATEMENTS: usize = 887;
/// `--> statement-breakpoint` markers over all files, per SOURCE.md.
const BREAKPOINTS: usize = 653;
const FILES: usize = 186;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dokploy-drizzle")
}

/// (tag, text) of every migration, in journal order.
fn corpus() -> Vec<(String, String)> {
    let dir = corpus_dir();
    let journal: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("meta/_journal.json")).unwrap())
            .unwrap();
    journal["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let tag = entry["tag"].as_str().unwrap().to_owned();
            let text = std::fs::read_to_string(dir.join(format!("{tag}.sql"))).unwrap();
            (tag, text)
        })
        .collect()
}

#[test]
fn plain_mode_finds_exactly_the_statements_psql_ran() {
    let files = corpus();
    assert_eq!(files.len(), FILES);
    let mut total = 0;
    for (tag, text) in &files {
        let stmts = split(text, SplitMode::Plain).unwrap_or_else(|e| panic!("{tag}: {e}"));
        for (i, s) in stmts.iter().enumerate() {
            assert_eq!(s.index, i, "{tag}");
            assert_eq!(
                &text[s.start_offset..s.start_offset + s.sql.len()],
                s.sql,
                "{tag}"
            );
            assert_eq!(s.start_line, line_of(text, s.start_offset), "{tag}");
            assert!(!s.sql.ends_with(';'), "{tag}: {}", s.sql);
        }
        total += stmts.len();
    }
    assert_eq!(total, PSQL_STATEMENTS);
}

#[test]
fn drizzle_mode_chunks_match_the_breakpoints() {
    let files = corpus();
    let markers: usize = files
        .iter()
        .map(|(_, text)| text.matches(BREAKPOINT).count())
        .sum();
    assert_eq!(markers, BREAKPOINTS);

    // Splitting n files with m markers in all gives m + n chunks. Two of them
    // are empty and dropped, and the data shows which:
    // - 0072_green_susan_delgado ends with a marker (no final newline), so its
    //   last chunk is "";
    // - 0107_loud_kang has two markers with only blank lines between them.
    // No chunk holds only comments. Hence 653 + 186 - 2 = 837.
    let empty_chunks: Vec<(&str, usize)> = files
        .iter()
        .flat_map(|(tag, text)| {
            text.split(BREAKPOINT)
                .enumerate()
                .filter(|(_, chunk)| chunk.trim().trim_end_matches(';').trim().is_empty())
                .map(move |(i, _)| (tag.as_str(), i))
        })
        .collect();
    assert_eq!(
        empty_chunks,
        [("0072_green_susan_delgado", 2), ("0107_loud_kang", 15)]
    );
    assert!(files[72].1.ends_with(BREAKPOINT));
    assert!(
        files[107]
            .1
            .contains("--> statement-breakpoint\n\n\n--> statement-breakpoint")
    );

    let mut chunks = 0;
    let mut statements_in_chunks = 0;
    for (tag, text) in &files {
        let file_chunks = split(text, SplitMode::Drizzle).unwrap_or_else(|e| panic!("{tag}: {e}"));
        for c in &file_chunks {
            assert_eq!(
                &text[c.start_offset..c.start_offset + c.sql.len()],
                c.sql,
                "{tag}"
            );
            assert_eq!(c.start_line, line_of(text, c.start_offset), "{tag}");
            // Each chunk, split at its semicolons, holds at least one statement.
            let inner = split(c.sql, SplitMode::Plain).unwrap_or_else(|e| panic!("{tag}: {e}"));
            assert!(!inner.is_empty(), "{tag}: {}", c.sql);
            statements_in_chunks += inner.len();
        }
        chunks += file_chunks.len();
    }
    assert_eq!(chunks, BREAKPOINTS + FILES - empty_chunks.len());
    assert_eq!(chunks, 837);
    // The drizzle chunks hold the same statements that psql ran: some chunks
    // hold several (a breakpoint the author left out).
    assert_eq!(statements_in_chunks, PSQL_STATEMENTS);
}

#[test]
fn no_migration_controls_its_own_transaction() {
    for (tag, text) in corpus() {
        for s in split(&text, SplitMode::Plain).unwrap() {
            assert_eq!(
                transaction_control(s.sql),
                None,
                "{tag} line {}: {}",
                s.start_line,
                s.sql
            );
        }
    }
}

#[test]
fn splitting_the_corpus_is_fast() {
    let files = corpus();
    let started = Instant::now();
    let mut total = 0;
    for (_, text) in &files {
        total += split(text, SplitMode::Plain).unwrap().len();
        total += split(text, SplitMode::Drizzle).unwrap().len();
    }
    let elapsed = started.elapsed();
    assert_eq!(total, PSQL_STATEMENTS + 837);
    // Not asserted: timings are noisy under `cargo test`. For the record, run
    // `cargo test --release --test split_corpus -- --nocapture`.
    println!(
        "split {} bytes in both modes in {elapsed:?}",
        files.iter().map(|(_, t)| t.len()).sum::<usize>()
    );
}
