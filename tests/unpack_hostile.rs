//! Every hostile fixture in `fixtures/hostile/` (see its README.md) must be refused
//! by both `inspect` and `extract`, with the specific error variant, and `extract`
//! must leave nothing behind: no destination, no staging directory, and nothing
//! written anywhere else.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use squizzle::artifact::unpack::{self, Limits, UnpackError};
use squizzle::core::digest::Digest;
use squizzle::core::manifest::{FileEntry, FileKind, TransactionMode};
use squizzle::core::paths::PathError;

/// The expected file set the fixtures assume (README.md).
const PATH: &str = "migrations/0001_init.sql";
const CONTENT: &[u8] = b"CREATE TABLE t (id int);\n";
/// Where `absolute.tar.gz` points.
const ABSOLUTE_TARGET: &str = "/tmp/squizzle-hostile-absolute.sql";

fn file(path: &str, content: &[u8], order: u32) -> FileEntry {
    FileEntry {
        id: path
            .rsplit('/')
            .next()
            .unwrap()
            .trim_end_matches(".sql")
            .to_owned(),
        path: path.to_owned(),
        sha256: Digest::of(content),
        size: content.len() as u64,
        kind: FileKind::Migration,
        transaction: TransactionMode::Default,
        order,
        rollback_for: None,
    }
}

fn standard() -> Vec<FileEntry> {
    vec![file(PATH, CONTENT, 0)]
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/hostile")
        .join(format!("{name}.tar.gz"))
}

/// Runs `inspect` and `extract` on one fixture; both must fail with an error
/// `accept` recognises, and `extract` must leave the scratch tree untouched.
fn refused(name: &str, expected: &[FileEntry], limits: &Limits, accept: fn(&UnpackError) -> bool) {
    let path = fixture(name);
    let inspected = unpack::inspect(File::open(&path).unwrap(), expected, limits);
    match &inspected {
        Err(e) if accept(e) => {}
        other => panic!("{name}: inspect returned {other:?}"),
    }

    // dest sits three levels down so a `..` escape would land inside `base`.
    let base = tempfile::tempdir().unwrap();
    let work = base.path().join("a/b/c");
    fs::create_dir_all(&work).unwrap();
    let dest = work.join("out");
    match unpack::extract(&path, expected, limits, &dest) {
        Err(e) if accept(&e) => {
            // Messages say what was found; make sure they render.
            assert!(!e.to_string().is_empty());
        }
        other => panic!("{name}: extract returned {other:?}"),
    }
    assert!(!dest.exists(), "{name}: dest left behind");
    let mut seen = Vec::new();
    walk(base.path(), base.path(), &mut seen);
    seen.sort();
    assert_eq!(
        seen,
        ["a/", "a/b/", "a/b/c/"],
        "{name}: extract wrote something (or left a staging dir)"
    );
    assert!(
        !Path::new(ABSOLUTE_TARGET).exists(),
        "{name}: wrote {ABSOLUTE_TARGET}"
    );
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            out.push(format!("{rel}/"));
            walk(root, &entry.path(), out);
        } else {
            out.push(rel);
        }
    }
}

fn defaults() -> Limits {
    Limits::default()
}

macro_rules! refuses {
    ($test:ident, $name:literal, $pattern:pat) => {
        refuses!($test, $name, standard(), defaults(), $pattern);
    };
    ($test:ident, $name:literal, $expected:expr, $limits:expr, $pattern:pat) => {
        #[test]
        fn $test() {
            refused($name, &$expected, &$limits, |e| matches!(e, $pattern));
        }
    };
}

// Paths refused by `core::paths::validate_relative`.
refuses!(
    dotdot,
    "dotdot",
    UnpackError::UnsafePath {
        reason: PathError::Traversal,
        ..
    }
);
refuses!(
    absolute,
    "absolute",
    UnpackError::UnsafePath {
        reason: PathError::Absolute,
        ..
    }
);
refuses!(
    backslash,
    "backslash",
    UnpackError::UnsafePath {
        reason: PathError::Backslash,
        ..
    }
);
refuses!(
    dot_slash,
    "dot-slash",
    UnpackError::UnsafePath {
        reason: PathError::Traversal,
        ..
    }
);
refuses!(
    empty_segment,
    "empty-segment",
    UnpackError::UnsafePath {
        reason: PathError::EmptySegment,
        ..
    }
);
refuses!(
    control_char,
    "control-char",
    UnpackError::UnsafePath {
        reason: PathError::Control,
        ..
    }
);
refuses!(non_utf8, "non-utf8", UnpackError::NonUtf8Path { .. });
refuses!(
    long_name_dotdot,
    "long-name-dotdot",
    UnpackError::UnsafePath {
        reason: PathError::Traversal,
        ..
    }
);
refuses!(
    pax_path_override,
    "pax-path-override",
    UnpackError::UnsafePath {
        reason: PathError::Traversal,
        ..
    }
);

// Anything but a regular file.
refuses!(symlink, "symlink", UnpackError::UnsupportedEntryType { .. });
refuses!(
    hardlink,
    "hardlink",
    UnpackError::UnsupportedEntryType { .. }
);
refuses!(chardev, "chardev", UnpackError::UnsupportedEntryType { .. });
refuses!(
    blockdev,
    "blockdev",
    UnpackError::UnsupportedEntryType { .. }
);
refuses!(fifo, "fifo", UnpackError::UnsupportedEntryType { .. });
refuses!(
    directory,
    "directory",
    UnpackError::UnsupportedEntryType { .. }
);
refuses!(
    pax_global,
    "pax-global",
    UnpackError::UnsupportedEntryType { .. }
);
refuses!(sparse, "sparse", UnpackError::UnsupportedEntryType { .. });
refuses!(
    unknown_type,
    "unknown-type",
    UnpackError::UnsupportedEntryType { .. }
);
refuses!(
    pax_size_override,
    "pax-size-override",
    UnpackError::UnsupportedPaxRecord { .. }
);

// The set of entries.
refuses!(duplicate, "duplicate", UnpackError::DuplicateEntry { .. });
refuses!(
    unexpected,
    "unexpected",
    UnpackError::UnexpectedEntry { .. }
);

#[test]
fn missing_lists_every_missing_file() {
    let expected = vec![
        file(PATH, CONTENT, 0),
        file("migrations/0002_more.sql", b"SELECT 2;\n", 1),
    ];
    refused(
        "missing",
        &expected,
        &defaults(),
        |e| matches!(e, UnpackError::MissingFiles { paths } if paths.len() == 2),
    );
}

#[test]
fn unexpected_names_the_entry() {
    let err = unpack::inspect(
        File::open(fixture("unexpected")).unwrap(),
        &standard(),
        &defaults(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("migrations/0002_evil.sql"),
        "{err}"
    );
}

fn hundred_and_one() -> Vec<FileEntry> {
    (1..=101u32)
        .map(|n| {
            file(
                &format!("migrations/{n:04}_m.sql"),
                format!("SELECT {n};\n").as_bytes(),
                n - 1,
            )
        })
        .collect()
}

refuses!(
    too_many_entries,
    "too-many-entries",
    hundred_and_one(),
    Limits {
        max_entries: 100,
        ..Limits::default()
    },
    UnpackError::TooManyEntries { max: 100 }
);

#[test]
fn too_many_entries_fixture_is_fine_within_the_limit() {
    let got = unpack::inspect(
        File::open(fixture("too-many-entries")).unwrap(),
        &hundred_and_one(),
        &defaults(),
    )
    .unwrap();
    assert_eq!(got.mismatches().count(), 0);
}

// Sizes and ratios.
refuses!(
    oversize_entry,
    "oversize-entry",
    UnpackError::EntryTooLarge { .. }
);
refuses!(
    long_name_huge,
    "long-name-huge",
    UnpackError::ExtensionTooLarge { .. }
);
// With DEFAULT limits: the ratio trips just past the 16 MiB grace, long before
// the 64 MiB are inflated.
#[test]
fn gzip_bomb() {
    refused(
        "gzip-bomb",
        &standard(),
        &defaults(),
        |e| matches!(e, UnpackError::CompressionRatio { decompressed, .. } if *decompressed < 17 * 1024 * 1024),
    );
}
refuses!(
    total_too_large,
    "total-too-large",
    standard(),
    Limits {
        max_total_bytes: 1024 * 1024,
        ..Limits::default()
    },
    UnpackError::TotalTooLarge { .. }
);

// Framing.
refuses!(
    trailing_garbage,
    "trailing-garbage",
    UnpackError::TrailingBytesAfterGzip { .. }
);
refuses!(
    second_member,
    "second-member",
    UnpackError::TrailingBytesAfterGzip { .. }
);
refuses!(
    hidden_after_end,
    "hidden-after-end",
    UnpackError::DataAfterEndOfArchive { .. }
);
refuses!(
    no_end_marker,
    "no-end-marker",
    UnpackError::Truncated { .. }
);
refuses!(not_gzip, "not-gzip", UnpackError::NotGzip { .. });
refuses!(empty, "empty", UnpackError::NotGzip { .. });
refuses!(truncated, "truncated", UnpackError::Truncated { .. });
refuses!(
    truncated_tar,
    "truncated-tar",
    UnpackError::Truncated { .. }
);
refuses!(
    corrupt_gzip,
    "corrupt-gzip",
    UnpackError::CorruptGzip { .. }
);

/// The framing fixtures are built from one good tarball: make sure it is good, so
/// the refusals above are caused by what was added, not by the base.
#[test]
fn the_base_of_the_framing_fixtures_is_accepted() {
    let bytes = fs::read(fixture("trailing-garbage")).unwrap();
    let end = bytes.windows(7).position(|w| w == b"GARBAGE").unwrap();
    let got = unpack::inspect(&bytes[..end], &standard(), &defaults()).unwrap();
    assert_eq!(got.mismatches().count(), 0);
    assert_eq!(got.compressed_digest, Digest::of(&bytes[..end]));
    assert_eq!(got.files[0].actual, Digest::of(CONTENT));
}
