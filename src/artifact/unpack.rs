//! Reading release tarballs back without trusting them.
//!
//! A tarball comes from a registry, a cache or a colleague's laptop, so every byte
//! is treated as hostile: this module checks what squizzle itself would have written
//! (one gzip member holding a tar stream of regular files with plain relative paths,
//! each listed in the manifest) and refuses anything else with an error naming what
//! it found. [`inspect`] makes one streaming pass and writes nothing; [`extract`]
//! inspects first, then writes into a private staging directory, re-hashing as it
//! writes, and renames it into place only when every byte matched.
//!
//! What this module must never do:
//! - write outside the staging directory, follow a symlink, or create anything but
//!   regular files and the directories that hold them;
//! - hold an entry or the archive in memory (memory stays constant however large
//!   the artifact; only paths and extension records, each capped, are buffered);
//! - inflate more than the limits allow: sizes are checked from headers before data
//!   is read and the compression ratio is watched while streaming, so a bomb stops
//!   early;
//! - leave anything at the destination when it fails.
//!
//! The tar layer is parsed in `tar`'s raw mode: GNU long names and pax records are
//! read here, with size caps, instead of letting `tar` buffer them unbounded.

use crate::artifact::directive::{self, DirectiveError};
use crate::artifact::utf8::{Utf8Problem, Utf8Validator};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};

use flate2::bufread::GzDecoder;

use crate::core::digest::{Digest, Hasher};
use crate::core::manifest::{FileEntry, TransactionMode};
use crate::core::paths::{self, PathError};

const BLOCK: u64 = 512;
/// GNU tar and `tar::Builder` end an archive with two zero blocks.
const END_OF_ARCHIVE: u64 = 2 * BLOCK;
/// Streaming chunk: the only per-entry buffer, whatever the entry's size.
const CHUNK: usize = 64 * 1024;
/// Decompressed bytes go from the inflating thread to the tar walker in
/// pieces of this size, at most `PIPE_DEPTH` of them in flight (a few hundred
/// KiB in all, whatever the artifact's size). Pieces are handed back for reuse.
const PIECE: usize = 128 * 1024;
const PIPE_DEPTH: usize = 6;
/// A GNU long name holds a path and its NUL; longer ones fail `validate_relative`
/// anyway, so there is no reason to read more.
const MAX_LONG_NAME_BYTES: u64 = paths::MAX_PATH_BYTES as u64 + 1;
/// A pax record set for one entry: squizzle never writes them; a path and a few
/// timestamps fit in far less.
const MAX_PAX_BYTES: u64 = 64 * 1024;
/// Pax keys that only carry metadata we ignore anyway. `path` is handled; anything
/// else (`size`, `linkpath`, `GNU.sparse.*`, ...) could make another reader see a
/// different archive than we did, so it is refused.
const IGNORED_PAX_KEYS: &[&str] = &[
    "mtime", "atime", "ctime", "uid", "gid", "uname", "gname", "comment",
];
/// Hostile paths are shown escaped and cut to this many bytes.
const MAX_SHOWN_PATH_BYTES: usize = 200;

/// Bounds on what reading one tarball may cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most file entries in one tarball.
    pub max_entries: u64,
    /// Largest single file, checked from its header before any data is read.
    pub max_entry_bytes: u64,
    /// Most decompressed bytes (the whole tar stream, headers and padding included).
    pub max_total_bytes: u64,
    /// Highest decompressed/compressed ratio tolerated once past `ratio_grace_bytes`.
    pub max_ratio: u64,
    /// Decompressed bytes allowed before the ratio is enforced: tiny tarballs of
    /// zero padding legitimately compress far better than 200:1.
    pub ratio_grace_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            max_entry_bytes: 256 * 1024 * 1024,
            max_total_bytes: 2 * 1024 * 1024 * 1024,
            max_ratio: 200,
            ratio_grace_bytes: 16 * 1024 * 1024,
        }
    }
}

/// What one expected file turned out to be in the tarball.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCheck {
    pub path: String,
    pub expected: Digest,
    pub actual: Digest,
    pub expected_size: u64,
    pub actual_size: u64,
}

impl FileCheck {
    pub fn matches(&self) -> bool {
        self.expected == self.actual && self.expected_size == self.actual_size
    }
}

/// The result of a successful [`inspect`]: the tarball is well formed; whether its
/// contents are the expected ones is in `files`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// One per expected file, in the order of the `expected` slice.
    pub files: Vec<FileCheck>,
    /// SHA-256 of every raw input byte (the `.tar.gz` as given).
    pub compressed_digest: Digest,
    pub compressed_size: u64,
    /// Length of the decompressed tar stream.
    pub uncompressed_size: u64,
}

impl Inspection {
    pub fn mismatches(&self) -> impl Iterator<Item = &FileCheck> {
        self.files.iter().filter(|f| !f.matches())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error(
        "the input is not a gzip stream (it starts with {found}); expected a squizzle release tarball (.tar.gz)"
    )]
    NotGzip { found: String },

    #[error(
        "the gzip stream is corrupt ({detail}); this is not a squizzle tarball or it was damaged: fetch it again"
    )]
    CorruptGzip { detail: String },

    #[error("the tarball is truncated: {detail}; fetch it again")]
    Truncated { detail: String },

    #[error("the tar stream is malformed: {detail}; this is not a tarball squizzle wrote")]
    CorruptTar { detail: String },

    #[error(
        "found bytes after the end of the gzip stream, at byte {offset} of the input; a squizzle tarball is \
         exactly one gzip member with nothing after it (trailing garbage or a second member)"
    )]
    TrailingBytesAfterGzip { offset: u64 },

    #[error(
        "found non-zero data at byte {offset} of the tar stream, after its end-of-archive marker; only zero \
         padding may follow it (hidden entries?)"
    )]
    DataAfterEndOfArchive { offset: u64 },

    #[error(
        "entry {path} has an unsafe path: it {reason}; squizzle tarballs hold relative paths like `drizzle/0001_init.sql`"
    )]
    UnsafePath { path: String, reason: PathError },

    #[error("entry {path} has a path that is not UTF-8; squizzle tarballs only hold UTF-8 paths")]
    NonUtf8Path { path: String },

    #[error(
        "entry {path} is not valid UTF-8 (first bad byte at offset {offset}); squizzle only packs UTF-8 SQL, so this release was not built by squizzle or was altered: do not apply it; rebuild it from source with `squizzle build`"
    )]
    NotUtf8 { path: String, offset: u64 },

    #[error(
        "entry {path} contains a NUL byte at offset {offset}, which PostgreSQL cannot execute; squizzle never packs one, so this release was not built by squizzle or was altered: do not apply it; rebuild it from source with `squizzle build`"
    )]
    Nul { path: String, offset: u64 },

    #[error(
        "entry {path} has a directive squizzle build refuses ({source}), so this release was not built by squizzle or was altered: do not apply it; rebuild it from source with `squizzle build`"
    )]
    Directive {
        path: String,
        source: DirectiveError,
    },

    #[error(
        "entry {path} starts with `-- squizzle:no-transaction` but the manifest lists it as transactional; squizzle build never writes that disagreement, so this release was altered: do not apply it; rebuild it from source with `squizzle build`"
    )]
    TransactionDisagrees { path: String },

    #[error(
        "entry {path} is {kind}; squizzle tarballs contain only regular files, so it is refused"
    )]
    UnsupportedEntryType { path: String, kind: String },

    #[error(
        "a pax extended header sets `{key}`; squizzle never writes pax records and only tolerates `path` and \
         timestamps/ownership, so the tarball is refused"
    )]
    UnsupportedPaxRecord { key: String },

    #[error(
        "a {what} at byte {offset} of the tar stream claims {size} bytes, above the maximum of {max}; refused before reading it"
    )]
    ExtensionTooLarge {
        what: &'static str,
        offset: u64,
        size: u64,
        max: u64,
    },

    #[error("entry {path} appears twice in the tarball; each file may appear once")]
    DuplicateEntry { path: String },

    #[error(
        "entry {path} is in the tarball but not in the manifest; refusing a tarball with unlisted files"
    )]
    UnexpectedEntry { path: String },

    #[error("{} listed in the manifest {} missing from the tarball: {}", count_files(.paths.len()), if .paths.len() == 1 { "is" } else { "are" }, list(.paths))]
    MissingFiles { paths: Vec<String> },

    #[error(
        "entry {path} declares {size} bytes, above the limit of {max} bytes per file (max_entry_bytes); refused \
         before reading it; raise the limit if this file is legitimate"
    )]
    EntryTooLarge { path: String, size: u64, max: u64 },

    #[error(
        "the tarball has more than {max} entries (max_entries); raise the limit if this release is legitimate"
    )]
    TooManyEntries { max: u64 },

    #[error(
        "the tarball decompresses to more than {max} bytes (max_total_bytes); stopped there; raise the limit if \
         this release is legitimate"
    )]
    TotalTooLarge { max: u64 },

    #[error(
        "the tarball inflated {decompressed} bytes out of {compressed} compressed bytes, a ratio above \
         {max_ratio}:1 (max_ratio); this looks like a decompression bomb and was stopped"
    )]
    CompressionRatio {
        decompressed: u64,
        compressed: u64,
        max_ratio: u64,
    },

    #[error("the manifest lists {path} twice; every file must be listed once")]
    DuplicateInManifest { path: String },

    #[error(
        "{path} does not match the manifest: expected {expected}, found {actual}; the tarball was altered or belongs to another release"
    )]
    ChecksumMismatch {
        path: String,
        expected: Digest,
        actual: Digest,
    },

    #[error(
        "the tarball changed while it was being extracted (first read {first}, then {second}); nothing was \
         extracted, retry once nothing else writes it"
    )]
    TarballChanged { first: Digest, second: Digest },

    #[error("{} already exists; extraction needs a destination that does not exist yet", .path.display())]
    DestinationExists { path: PathBuf },

    #[error("cannot extract into {}: {reason}", .path.display())]
    InvalidDestination { path: PathBuf, reason: String },

    #[error("reading the tarball failed: {source}")]
    ReadInput { source: io::Error },

    #[error("could not {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },

    /// The reader of [`each_file`] stopped the pass before its end.
    #[error("the pass over the tarball was stopped before its end")]
    Stopped,
}

fn count_files(n: usize) -> String {
    if n == 1 {
        "1 file".into()
    } else {
        format!("{n} files")
    }
}

fn list(paths: &[String]) -> String {
    let mut out = String::new();
    for (i, p) in paths.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{p}");
    }
    out
}

/// Renders an untrusted path for a message: escaped (no terminal control
/// sequences reach the user) and bounded.
fn shown(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(MAX_SHOWN_PATH_BYTES)];
    let mut s = format!("\"{}\"", cut.escape_ascii());
    if bytes.len() > cut.len() {
        let _ = write!(s, "... ({} bytes)", bytes.len());
    }
    s
}

/// One streaming pass over `reader`, writing nothing.
///
/// Structural problems are errors; per-file hash/size differences are not: they
/// are reported in [`Inspection::files`] so a caller can list every mismatch.
pub fn inspect<R: Read>(
    reader: R,
    expected: &[FileEntry],
    limits: &Limits,
) -> Result<Inspection, UnpackError> {
    walk(reader, expected, limits, Sink::None)
}

/// Extracts into `dest`, which must not exist yet (its parent must).
///
/// Inspects the whole file first and refuses on any error or mismatch; then
/// extracts into a staging directory next to `dest`, re-hashing while writing
/// since the file may change between the passes, and renames the staging
/// directory to `dest` only when everything matched. On failure nothing is left
/// at `dest` and the staging directory is removed.
pub fn extract(
    tarball: &Path,
    expected: &[FileEntry],
    limits: &Limits,
    dest: &Path,
) -> Result<(), UnpackError> {
    extract_with(tarball, expected, limits, dest, Durability::Synced)
}

/// Whether extracted files are flushed to stable storage before `extract`
/// returns. A private working copy that is read once and deleted (apply's)
/// does not need it, and on a journaling file system a few hundred fsyncs
/// cost more than everything else apply does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    Synced,
    Scratch,
}

/// [`extract`], choosing the [`Durability`] of what it writes.
pub fn extract_with(
    tarball: &Path,
    expected: &[FileEntry],
    limits: &Limits,
    dest: &Path,
    durability: Durability,
) -> Result<(), UnpackError> {
    let io_err = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| UnpackError::Io {
            action,
            path,
            source,
        }
    };
    // Reading errors from the generic walker lack the file name; add it back.
    let with_path = |e: UnpackError| match e {
        UnpackError::ReadInput { source } => UnpackError::Io {
            action: "read",
            path: tarball.to_path_buf(),
            source,
        },
        other => other,
    };

    let (parent, name) = destination_parts(dest)?;

    let mut file = File::open(tarball).map_err(io_err("open", tarball))?;
    let first = inspect(&mut file, expected, limits).map_err(with_path)?;
    refuse_mismatch(&first)?;

    file.seek(SeekFrom::Start(0))
        .map_err(io_err("rewind", tarball))?;
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    prefix.push(".squizzle-staging-");
    // Created 0700: nobody else can add a symlink or file to it while we write.
    let staging = tempfile::Builder::new()
        .prefix(&prefix)
        .tempdir_in(parent)
        .map_err(io_err("create a staging directory in", parent))?;

    let second = walk(
        &mut file,
        expected,
        limits,
        Sink::Dir(staging.path(), durability == Durability::Synced),
    )
    .map_err(with_path)?;
    refuse_mismatch(&second)?;
    if second.compressed_digest != first.compressed_digest {
        return Err(UnpackError::TarballChanged {
            first: first.compressed_digest,
            second: second.compressed_digest,
        });
    }

    set_mode(staging.path(), 0o755).map_err(io_err("set permissions on", staging.path()))?;
    // Checked again right before the rename: a directory created meanwhile would
    // otherwise be replaced if empty. (Without renameat2 a tiny race remains.)
    if fs::symlink_metadata(dest).is_ok() {
        return Err(UnpackError::DestinationExists {
            path: dest.to_path_buf(),
        });
    }
    fs::rename(staging.path(), dest).map_err(io_err("move the extracted files to", dest))?;
    // Renamed away: there is nothing left for the guard to delete.
    let _ = staging.keep();
    // Durability of the rename is best effort: the files themselves are synced,
    // and failing here would report an error while `dest` is complete.
    if durability == Durability::Synced
        && let Ok(dir) = File::open(parent)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// The text of the files of `expected` whose index `wanted` marks, read in
/// one streaming pass over `tarball` that checks it exactly as [`inspect`]
/// does and refuses it on any mismatch with the manifest. Nothing is
/// written to disk; memory holds only the wanted files (each within the
/// per-file limit). `texts[i]` is `Some` exactly where `wanted[i]` is true.
pub fn read_files(
    tarball: &Path,
    expected: &[FileEntry],
    wanted: &[bool],
    limits: &Limits,
) -> Result<Vec<Option<String>>, UnpackError> {
    assert_eq!(wanted.len(), expected.len(), "one mark per manifest file");
    let mut kept: Vec<Option<Vec<u8>>> = vec![None; expected.len()];
    let inspection = walk_file(tarball, expected, limits, Sink::Memory(wanted, &mut kept))?;
    refuse_mismatch(&inspection)?;
    kept.into_iter()
        .zip(expected)
        .map(|(bytes, entry)| {
            bytes
                .map(|b| {
                    // The walker validated UTF-8 already; this cannot fail
                    // for a file it accepted, but nothing is assumed.
                    String::from_utf8(b).map_err(|e| UnpackError::NotUtf8 {
                        path: entry.path.clone(),
                        offset: e.utf8_error().valid_up_to() as u64,
                    })
                })
                .transpose()
        })
        .collect()
}

/// Hands each file of `expected` that `wanted` marks to `each` (its slot
/// in the manifest and its text), in the order of the tarball, during one
/// streaming pass over `tarball` that checks it exactly as [`inspect`] does.
/// A file is handed over only after all its bytes were read and found to be
/// the file the manifest lists (digest and size, UTF-8 without NUL,
/// directives agreeing): nothing unchecked reaches the caller, and memory
/// holds about one file at a time whatever the release's size. A file that
/// differs from the manifest is never handed over; the pass then ends with
/// [`UnpackError::ChecksumMismatch`]. `each` returns false to stop early,
/// which ends the pass with [`UnpackError::Stopped`].
pub fn each_file(
    tarball: &Path,
    expected: &[FileEntry],
    wanted: &[bool],
    limits: &Limits,
    each: &mut (dyn FnMut(usize, String) -> bool + Send),
) -> Result<(), UnpackError> {
    assert_eq!(wanted.len(), expected.len(), "one mark per manifest file");
    let inspection = walk_file(tarball, expected, limits, Sink::Each(wanted, each))?;
    refuse_mismatch(&inspection)
}

/// [`walk`] over the file at `tarball`, its read errors naming the file.
fn walk_file(
    tarball: &Path,
    expected: &[FileEntry],
    limits: &Limits,
    out: Sink<'_>,
) -> Result<Inspection, UnpackError> {
    let file = File::open(tarball).map_err(|source| UnpackError::Io {
        action: "open",
        path: tarball.to_path_buf(),
        source,
    })?;
    walk(file, expected, limits, out).map_err(|e| match e {
        UnpackError::ReadInput { source } => UnpackError::Io {
            action: "read",
            path: tarball.to_path_buf(),
            source,
        },
        other => other,
    })
}

fn destination_parts(dest: &Path) -> Result<(&Path, &std::ffi::OsStr), UnpackError> {
    let invalid = |reason: &str| UnpackError::InvalidDestination {
        path: dest.to_path_buf(),
        reason: reason.to_owned(),
    };
    if fs::symlink_metadata(dest).is_ok() {
        return Err(UnpackError::DestinationExists {
            path: dest.to_path_buf(),
        });
    }
    let name = dest
        .file_name()
        .ok_or_else(|| invalid("it has no final directory name"))?;
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match fs::metadata(parent) {
        Ok(m) if m.is_dir() => Ok((parent, name)),
        Ok(_) => Err(invalid("its parent is not a directory")),
        Err(_) => Err(invalid(
            "its parent directory does not exist; create it first",
        )),
    }
}

fn refuse_mismatch(inspection: &Inspection) -> Result<(), UnpackError> {
    match inspection.mismatches().next() {
        Some(f) => Err(UnpackError::ChecksumMismatch {
            path: f.path.clone(),
            expected: f.expected,
            actual: f.actual,
        }),
        None => Ok(()),
    }
}

/// The raw input as the decoder reads it: counted, and remembering its own
/// failures so they are not mistaken for corrupt gzip data once they surface
/// through the decoder. (It is hashed by the stage that reads it.)
struct Source<R> {
    inner: R,
    read: u64,
    error: Option<io::Error>,
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf).inspect_err(|e| {
            self.error = Some(io::Error::new(e.kind(), e.to_string()));
        })?;
        self.read += n as u64;
        Ok(n)
    }
}

/// The decompressed tar stream, enforcing the size and ratio limits on every read.
/// The first failure is kept as a typed error and the stream stays failed; the
/// `io::Error` it returns only tells the tar parser to stop.
struct Stream<'l, R> {
    decoder: GzDecoder<BufReader<Source<R>>>,
    limits: &'l Limits,
    decompressed: u64,
    failure: Option<UnpackError>,
}

impl<'l, R: Read> Stream<'l, R> {
    fn open(reader: R, limits: &'l Limits) -> Result<Self, UnpackError> {
        let mut raw = BufReader::with_capacity(
            CHUNK,
            Source {
                inner: reader,
                read: 0,
                error: None,
            },
        );
        let head = raw
            .fill_buf()
            .map_err(|source| UnpackError::ReadInput { source })?;
        if head.is_empty() {
            return Err(UnpackError::NotGzip {
                found: "nothing: the input is empty".into(),
            });
        }
        // A short first read cannot be judged here; the decoder will reject it.
        if head.len() >= 2 && head[..2] != [0x1f, 0x8b] {
            return Err(UnpackError::NotGzip {
                found: describe_start(head),
            });
        }
        Ok(Self {
            decoder: GzDecoder::new(raw),
            limits,
            decompressed: 0,
            failure: None,
        })
    }

    /// Compressed bytes the decoder actually consumed (read-ahead excluded).
    fn compressed(&self) -> u64 {
        let raw = self.decoder.get_ref();
        raw.get_ref().read - raw.buffer().len() as u64
    }

    fn check_limits(&self) -> Option<UnpackError> {
        let l = self.limits;
        if self.decompressed > l.max_total_bytes {
            return Some(UnpackError::TotalTooLarge {
                max: l.max_total_bytes,
            });
        }
        let compressed = self.compressed();
        if self.decompressed > l.ratio_grace_bytes
            && self.decompressed > compressed.saturating_mul(l.max_ratio)
        {
            return Some(UnpackError::CompressionRatio {
                decompressed: self.decompressed,
                compressed,
                max_ratio: l.max_ratio,
            });
        }
        None
    }

    fn decoder_failure(&mut self, e: io::Error) -> UnpackError {
        if let Some(source) = self.decoder.get_mut().get_mut().error.take() {
            return UnpackError::ReadInput { source };
        }
        if e.kind() == io::ErrorKind::UnexpectedEof {
            return UnpackError::Truncated {
                detail: format!(
                    "the gzip stream ends after {} bytes, before its end marker and checksum",
                    self.compressed()
                ),
            };
        }
        UnpackError::CorruptGzip {
            detail: e.to_string(),
        }
    }

    /// After the gzip member ended: nothing may follow it. Returns the length
    /// of all the input.
    fn finish(self) -> Result<u64, UnpackError> {
        let mut raw = self.decoder.into_inner();
        let rest = raw
            .fill_buf()
            .map_err(|source| UnpackError::ReadInput { source })?
            .len();
        let read = raw.get_ref().read;
        if rest > 0 {
            return Err(UnpackError::TrailingBytesAfterGzip {
                offset: read - rest as u64,
            });
        }
        Ok(read)
    }
}

impl<R: Read> Read for Stream<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failure.is_some() {
            return Err(io::Error::other("reading stopped after an earlier failure"));
        }
        match self.decoder.read(buf) {
            Ok(0) => Ok(0),
            Ok(n) => {
                self.decompressed += n as u64;
                match self.check_limits() {
                    None => Ok(n),
                    Some(f) => {
                        self.failure = Some(f);
                        Err(io::Error::other("a limit was exceeded"))
                    }
                }
            }
            Err(e) => {
                let f = self.decoder_failure(e);
                self.failure = Some(f);
                Err(io::Error::other("the gzip stream failed"))
            }
        }
    }
}

/// What one stage sends the next: a piece of its output (the buffer and how
/// much of it is filled), the end of it, or the error that stopped it.
enum Piece {
    Data(Vec<u8>, usize),
    End,
    Failed(io::Error),
}

/// How [`feed`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fed {
    /// The reader reached its end and the next stage was told.
    End,
    /// The reader failed and the next stage was told.
    Failed,
    /// The next stage hung up (it stopped on something of its own).
    Stopped,
}

/// Reads `from` to its end in pieces sent down `to` (each shown to `seen`
/// first), reusing the pieces the next stage hands back on `spent`.
fn feed<R: Read>(
    from: &mut R,
    to: &SyncSender<Piece>,
    spent: &Receiver<Vec<u8>>,
    mut seen: impl FnMut(&[u8]),
) -> Fed {
    loop {
        let mut piece = spent.try_recv().unwrap_or_else(|_| vec![0u8; PIECE]);
        match from.read(&mut piece) {
            Ok(0) => {
                return match to.send(Piece::End) {
                    Ok(()) => Fed::End,
                    Err(_) => Fed::Stopped,
                };
            }
            Ok(n) => {
                seen(&piece[..n]);
                if to.send(Piece::Data(piece, n)).is_err() {
                    return Fed::Stopped;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = to.send(Piece::Failed(e));
                return Fed::Failed;
            }
        }
    }
}

/// The receiving end of a pipe between two stages, as a reader. It is read
/// in order, so every refusal is still the first problem in stream order
/// even though the stage before it runs ahead.
struct Pipe {
    from_pump: Receiver<Piece>,
    spent: Sender<Vec<u8>>,
    piece: Vec<u8>,
    filled: usize,
    pos: usize,
    /// Bytes handed to the walker so far.
    delivered: u64,
    /// The reader asked for bytes past the end of the stream.
    eof: bool,
    /// The stage before failed (or died without saying so).
    failed: bool,
}

impl Pipe {
    fn new(from_pump: Receiver<Piece>, spent: Sender<Vec<u8>>) -> Self {
        Self {
            from_pump,
            spent,
            piece: Vec::new(),
            filled: 0,
            pos: 0,
            delivered: 0,
            eof: false,
            failed: false,
        }
    }

    /// After the tar parser stopped at an end marker (or EOF): everything left in
    /// the tar stream must be zeros, and the two zero blocks must be there.
    fn finish_tar(&mut self, data_end: u64) -> Result<(), Stop> {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let before = self.delivered;
            let n = match self.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => return Err(Stop::Tar(e)),
            };
            if let Some(pos) = buf[..n].iter().position(|&b| b != 0) {
                return Err(UnpackError::DataAfterEndOfArchive {
                    offset: before + pos as u64,
                }
                .into());
            }
        }
        if self.delivered.saturating_sub(data_end) < END_OF_ARCHIVE {
            return Err(UnpackError::Truncated {
                detail: "the tar end-of-archive marker (two zero blocks) is missing".into(),
            }
            .into());
        }
        Ok(())
    }
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.pos == self.filled {
            if self.eof {
                return Ok(0);
            }
            match self.from_pump.recv() {
                Ok(Piece::Data(piece, filled)) => {
                    let used = std::mem::replace(&mut self.piece, piece);
                    if !used.is_empty() {
                        // The pump may be gone already; the buffer is then just freed.
                        let _ = self.spent.send(used);
                    }
                    self.filled = filled;
                    self.pos = 0;
                }
                Ok(Piece::End) => {
                    self.eof = true;
                    return Ok(0);
                }
                Ok(Piece::Failed(e)) if !self.failed => {
                    self.failed = true;
                    return Err(e);
                }
                Ok(Piece::Failed(_)) | Err(_) => {
                    self.failed = true;
                    return Err(io::Error::other("reading stopped after an earlier failure"));
                }
            }
        }
        let n = buf.len().min(self.filled - self.pos);
        buf[..n].copy_from_slice(&self.piece[self.pos..self.pos + n]);
        self.pos += n;
        self.delivered += n as u64;
        Ok(n)
    }
}

fn describe_start(head: &[u8]) -> String {
    if head.len() >= 262 && &head[257..262] == b"ustar" {
        return "a tar header: the tarball is not compressed".into();
    }
    let start = &head[..head.len().min(8)];
    format!("bytes {}", hex::encode(start))
}

/// Why the walk over tar entries stopped.
enum Stop {
    /// The tar parser (or the stream beneath it) returned an error.
    Tar(io::Error),
    Refused(UnpackError),
    /// The receiver of [`Sink::Each`] wanted no more files.
    Stopped,
}

impl From<UnpackError> for Stop {
    fn from(e: UnpackError) -> Self {
        Stop::Refused(e)
    }
}

/// Where a walk puts the bytes of the files it accepts, besides hashing them.
enum Sink<'a> {
    /// Nowhere: an inspection.
    None,
    /// Under a directory, each file synced when the flag says so: extraction.
    Dir(&'a Path, bool),
    /// In memory, the files whose slot (index in the manifest) is marked:
    /// apply reads the files it runs this way, never from disk.
    Memory(&'a [bool], &'a mut [Option<Vec<u8>>]),
    /// Handed over one at a time, the marked files that are exactly what the
    /// manifest lists, as soon as each is checked; the callback returns false
    /// to stop the walk.
    Each(
        &'a [bool],
        &'a mut (dyn FnMut(usize, String) -> bool + Send),
    ),
}

/// The common pass of `inspect`, `extract` and `read_files`: each accepted
/// file goes to `out` too, from the same bytes that are hashed.
fn walk<R: Read>(
    reader: R,
    expected: &[FileEntry],
    limits: &Limits,
    out: Sink<'_>,
) -> Result<Inspection, UnpackError> {
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(expected.len());
    for (i, f) in expected.iter().enumerate() {
        if index.insert(f.path.as_str(), i).is_some() {
            return Err(UnpackError::DuplicateInManifest {
                path: format!("{:?}", f.path),
            });
        }
    }
    let mut found: Vec<Option<(Digest, u64)>> = vec![None; expected.len()];

    // Three stages joined by bounded pipes: this thread reads and hashes the
    // input, the inflater decompresses it and enforces the size and ratio
    // limits, the walker parses the tar stream and hashes and checks every
    // file. Each reads its pipe in order, so what is refused, and which
    // problem is reported first, does not depend on how far ahead a stage is.
    let mut input = Hasher::new();
    let (inflated, walked) = std::thread::scope(|scope| {
        let (raw_tx, raw_rx) = mpsc::sync_channel(PIPE_DEPTH);
        let (raw_spent_tx, raw_spent_rx) = mpsc::channel();
        let (tar_tx, tar_rx) = mpsc::sync_channel(PIPE_DEPTH);
        let (tar_spent_tx, tar_spent_rx) = mpsc::channel();
        let (index, found) = (&index, &mut found);
        let walker = scope.spawn(move || {
            let mut pipe = Pipe::new(tar_rx, tar_spent_tx);
            let walked = {
                let mut archive = tar::Archive::new(&mut pipe);
                walk_entries(&mut archive, expected, index, found, limits, out)
            };
            let walked = walked.and_then(|data_end| pipe.finish_tar(data_end));
            (walked, pipe.eof, pipe.failed)
        });
        let inflater = scope.spawn(move || {
            inflate(
                Pipe::new(raw_rx, raw_spent_tx),
                limits,
                &tar_tx,
                &tar_spent_rx,
            )
        });
        let mut reader = reader;
        feed(&mut reader, &raw_tx, &raw_spent_rx, |bytes| {
            input.update(bytes)
        });
        drop(raw_tx);
        (
            inflater
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            walker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        )
    });
    let mut inflated = inflated?;
    match walked {
        (Ok(()), _, _) => {}
        (Err(Stop::Refused(e)), _, _) => return Err(e),
        (Err(Stop::Stopped), _, _) => return Err(UnpackError::Stopped),
        (Err(Stop::Tar(e)), eof, failed) => {
            let failure = if failed {
                inflated.failure.take()
            } else {
                None
            };
            return Err(tar_failure(e, failure, eof));
        }
    }
    // The walker read to `End`, which the inflater sends only at the end
    // of the gzip member, after which it checked what follows.
    let compressed_size = match inflated.end {
        Some(end) => end?,
        None => {
            return Err(UnpackError::Truncated {
                detail: "the gzip stream stopped before its end".into(),
            });
        }
    };
    debug_assert_eq!(compressed_size, input.len());
    let uncompressed_size = inflated.decompressed;
    let compressed_digest = input.finish();

    let missing: Vec<String> = expected
        .iter()
        .zip(&found)
        .filter(|(_, f)| f.is_none())
        .map(|(e, _)| format!("{:?}", e.path))
        .collect();
    if !missing.is_empty() {
        return Err(UnpackError::MissingFiles { paths: missing });
    }
    let files = expected
        .iter()
        .zip(found)
        .filter_map(|(e, f)| {
            f.map(|(actual, actual_size)| FileCheck {
                path: e.path.clone(),
                expected: e.sha256,
                actual,
                expected_size: e.size,
                actual_size,
            })
        })
        .collect();
    Ok(Inspection {
        files,
        compressed_digest,
        compressed_size,
        uncompressed_size,
    })
}

/// What the inflating stage ends with.
struct Inflated {
    /// The stream's own failure (limits, gzip, input), if it had one.
    failure: Option<UnpackError>,
    decompressed: u64,
    /// Once the gzip member ended: the input's length, or the refusal of
    /// what follows the member.
    end: Option<Result<u64, UnpackError>>,
}

/// The inflating stage: `raw` (the input) in, the tar stream out to the walker.
fn inflate(
    raw: Pipe,
    limits: &Limits,
    to_walker: &SyncSender<Piece>,
    spent: &Receiver<Vec<u8>>,
) -> Result<Inflated, UnpackError> {
    let mut stream = Stream::open(raw, limits)?;
    let fed = feed(&mut stream, to_walker, spent, |_| {});
    let decompressed = stream.decompressed;
    let failure = stream.failure.take();
    // Only a member that ended is followed by anything worth checking; the
    // input pipe is dropped on return, which stops the reading stage.
    let end = (fed == Fed::End).then(|| stream.finish());
    Ok(Inflated {
        failure,
        decompressed,
        end,
    })
}

/// Turns an error that came out of the tar parser into the typed cause: the
/// stream's own failure when the walker ran into it, a truncation when it had
/// read to the end (`eof`), else a malformed tar stream.
fn tar_failure(e: io::Error, failure: Option<UnpackError>, eof: bool) -> UnpackError {
    if let Some(f) = failure {
        return f;
    }
    if eof {
        UnpackError::Truncated {
            detail: format!("the tar stream ends early ({e})"),
        }
    } else {
        UnpackError::CorruptTar {
            detail: e.to_string(),
        }
    }
}

/// Long names and pax records read so far, to apply to the next entry.
#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    /// `Some` once a pax header was seen; the inner value is its `path`, if any.
    pax: Option<Option<Vec<u8>>>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.long_name.is_none() && self.pax.is_none()
    }
}

/// Walks the entries; returns where the last entry's data (padded) ends, which is
/// where the end-of-archive marker starts.
fn walk_entries<R: Read>(
    archive: &mut tar::Archive<R>,
    expected: &[FileEntry],
    index: &HashMap<&str, usize>,
    found: &mut [Option<(Digest, u64)>],
    limits: &Limits,
    mut out: Sink<'_>,
) -> Result<u64, Stop> {
    // Raw mode: `tar` would otherwise read long names and pax records into memory
    // whatever size their headers claim.
    let entries = archive.entries().map_err(Stop::Tar)?.raw(true);
    let mut buf = vec![0u8; CHUNK];
    // The start of the current file, where build read its directives from
    // (one buffer for every entry).
    let mut head: Vec<u8> = Vec::with_capacity(directive::HEAD_BYTES);
    let mut pending = Pending::default();
    let mut count: u64 = 0;
    let mut data_end: u64 = 0;

    for entry in entries {
        let mut entry = entry.map_err(Stop::Tar)?;
        let offset = entry.raw_header_position();
        let header = entry.header();
        if header.as_gnu().is_none() && header.as_ustar().is_none() {
            return Err(corrupt(format!(
                "the header at byte {offset} has neither GNU nor ustar magic"
            )));
        }
        let size = header.entry_size().map_err(Stop::Tar)?;
        let entry_type = header.entry_type();
        data_end = entry
            .raw_file_position()
            .checked_add(size.div_ceil(BLOCK) * BLOCK)
            .ok_or_else(|| {
                corrupt(format!(
                    "the header at byte {offset} claims an impossible size"
                ))
            })?;

        if entry_type.is_gnu_longname() {
            if pending.long_name.is_some() {
                return Err(corrupt(format!(
                    "two GNU long-name records in a row at byte {offset}"
                )));
            }
            if size > MAX_LONG_NAME_BYTES {
                return Err(UnpackError::ExtensionTooLarge {
                    what: "GNU long-name record",
                    offset,
                    size,
                    max: MAX_LONG_NAME_BYTES,
                }
                .into());
            }
            let mut name = read_small(&mut entry, size, offset)?;
            // The record holds the name and its terminating NUL; like `tar`, drop
            // exactly one, so any other NUL is refused by the path rule.
            if name.last() == Some(&0) {
                name.pop();
            }
            pending.long_name = Some(name);
            continue;
        }
        if entry_type.is_pax_local_extensions() {
            if pending.pax.is_some() {
                return Err(corrupt(format!(
                    "two pax extended headers in a row at byte {offset}"
                )));
            }
            if size > MAX_PAX_BYTES {
                return Err(UnpackError::ExtensionTooLarge {
                    what: "pax extended header",
                    offset,
                    size,
                    max: MAX_PAX_BYTES,
                }
                .into());
            }
            let records = read_small(&mut entry, size, offset)?;
            pending.pax = Some(pax_path(&records, offset)?);
            continue;
        }

        count += 1;
        if count > limits.max_entries {
            return Err(UnpackError::TooManyEntries {
                max: limits.max_entries,
            }
            .into());
        }

        let raw_path = match (pending.long_name.take(), pending.pax.take()) {
            (Some(_), Some(Some(_))) => {
                return Err(corrupt(format!(
                    "the entry at byte {offset} has both a GNU long name and a pax path; readers disagree on which wins"
                )));
            }
            (Some(long), _) => long,
            (None, Some(Some(pax))) => pax,
            (None, _) => entry.header().path_bytes().into_owned(),
        };

        if !entry_type.is_file() {
            return Err(UnpackError::UnsupportedEntryType {
                path: shown(&raw_path),
                kind: type_name(entry_type),
            }
            .into());
        }
        let path = std::str::from_utf8(&raw_path).map_err(|_| UnpackError::NonUtf8Path {
            path: shown(&raw_path),
        })?;
        paths::validate_relative(path).map_err(|reason| UnpackError::UnsafePath {
            path: shown(&raw_path),
            reason,
        })?;
        let &slot = index
            .get(path)
            .ok_or_else(|| UnpackError::UnexpectedEntry {
                path: format!("{path:?}"),
            })?;
        if found[slot].is_some() {
            return Err(UnpackError::DuplicateEntry {
                path: format!("{path:?}"),
            }
            .into());
        }
        if size > limits.max_entry_bytes {
            return Err(UnpackError::EntryTooLarge {
                path: format!("{path:?}"),
                size,
                max: limits.max_entry_bytes,
            }
            .into());
        }

        let mut file = match out {
            Sink::Dir(root, _) => Some(create_file(root, path)?),
            _ => None,
        };
        let mut kept = match &mut out {
            Sink::Memory(wanted, _) | Sink::Each(wanted, _) if wanted[slot] => {
                Some(Vec::with_capacity(usize::try_from(size).unwrap_or(0)))
            }
            _ => None,
        };
        let mut hasher = Hasher::new();
        // Build refuses what is not UTF-8 SQL without NUL bytes; so does
        // every reader, so that nothing gets further than verify would.
        let mut text = Utf8Validator::new();
        head.clear();
        let mut remaining = size;
        while remaining > 0 {
            let want = buf
                .len()
                .min(usize::try_from(remaining).unwrap_or(usize::MAX));
            let n = entry.read(&mut buf[..want]).map_err(Stop::Tar)?;
            if n == 0 {
                return Err(UnpackError::Truncated {
                    detail: format!(
                        "entry {path:?} ends after {} of its {size} bytes",
                        hasher.len()
                    ),
                }
                .into());
            }
            hasher.update(&buf[..n]);
            text.feed(&buf[..n]);
            if head.len() < directive::HEAD_BYTES {
                let take = (directive::HEAD_BYTES - head.len()).min(n);
                head.extend_from_slice(&buf[..take]);
            }
            if let Some((f, p)) = file.as_mut() {
                f.write_all(&buf[..n])
                    .map_err(|source| io_error("write", p, source))?;
            }
            if let Some(kept) = kept.as_mut() {
                kept.extend_from_slice(&buf[..n]);
            }
            remaining -= n as u64;
        }
        if let Some((f, p)) = file
            && matches!(out, Sink::Dir(_, true))
        {
            f.sync_all()
                .map_err(|source| io_error("sync", &p, source))?;
        }
        match text.finish() {
            Ok(()) => {}
            Err(Utf8Problem::Invalid(offset)) => {
                return Err(UnpackError::NotUtf8 {
                    path: path.to_owned(),
                    offset,
                }
                .into());
            }
            Err(Utf8Problem::Nul(offset)) => {
                return Err(UnpackError::Nul {
                    path: path.to_owned(),
                    offset,
                }
                .into());
            }
        }
        let digest = hasher.finish();
        // The directives build read must still say what the manifest says.
        // Only for a file that is the one the manifest lists: one that is
        // not is reported as a mismatch, with every other one.
        let listed = &expected[slot];
        if digest == listed.sha256 && size == listed.size {
            check_directives(path, &head, listed.transaction)?;
        }
        found[slot] = Some((digest, size));
        match (kept, &mut out) {
            (Some(bytes), Sink::Memory(_, into)) => into[slot] = Some(bytes),
            // Only the file the manifest lists goes out; any other is a
            // mismatch, refused once the walk ends.
            (Some(bytes), Sink::Each(_, each))
                if digest == listed.sha256 && size == listed.size =>
            {
                let text = String::from_utf8(bytes).map_err(|e| UnpackError::NotUtf8 {
                    path: path.to_owned(),
                    offset: e.utf8_error().valid_up_to() as u64,
                })?;
                if !each(slot, text) {
                    return Err(Stop::Stopped);
                }
            }
            _ => {}
        }
    }

    if !pending.is_empty() {
        return Err(UnpackError::Truncated {
            detail: "the archive ends right after a long-name or pax record, without the entry it describes".into(),
        }
        .into());
    }
    Ok(data_end)
}

/// A file's directives, read from `head` exactly as `build` read them
/// ([`directive::parse`] over the same first bytes), against the mode the
/// manifest lists: an invalid directive, or a `no-transaction` file listed
/// as transactional, is refused. (A file may run without a transaction
/// without saying so: the source format's own rules can decide it.)
fn check_directives(path: &str, head: &[u8], listed: TransactionMode) -> Result<(), Stop> {
    // The same text `pack` read (`from_utf8_lossy`), through the fast
    // validating path: the file is valid UTF-8, so only a head that cuts a
    // character at its end takes the slow one.
    let text = match std::str::from_utf8(head) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(head),
    };
    // Only a line holding `squizzle:` can be a directive: without one the
    // file says nothing (and the line-by-line read is skipped).
    if !text.contains(directive::PREFIX) {
        return Ok(());
    }
    let from_file = directive::parse(&text).map_err(|source| UnpackError::Directive {
        path: path.to_owned(),
        source,
    })?;
    if from_file == TransactionMode::None && listed != TransactionMode::None {
        return Err(UnpackError::TransactionDisagrees {
            path: path.to_owned(),
        }
        .into());
    }
    Ok(())
}

fn corrupt(detail: String) -> Stop {
    Stop::Refused(UnpackError::CorruptTar { detail })
}

fn io_error(action: &'static str, path: &Path, source: io::Error) -> Stop {
    Stop::Refused(UnpackError::Io {
        action,
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a small record fully (its size was already capped by the caller).
fn read_small<R: Read>(entry: &mut R, size: u64, offset: u64) -> Result<Vec<u8>, Stop> {
    let mut data = Vec::new();
    entry.take(size).read_to_end(&mut data).map_err(Stop::Tar)?;
    if (data.len() as u64) < size {
        return Err(UnpackError::Truncated {
            detail: format!("the record at byte {offset} is cut short"),
        }
        .into());
    }
    Ok(data)
}

/// Parses pax records; returns the `path` they set, refusing keys that would
/// change how the archive reads.
fn pax_path(records: &[u8], offset: u64) -> Result<Option<Vec<u8>>, Stop> {
    let mut path = None;
    for record in tar::PaxExtensions::new(records) {
        let record = record.map_err(|_| {
            corrupt(format!(
                "unreadable pax record in the header at byte {offset}"
            ))
        })?;
        let key = record
            .key()
            .map_err(|_| corrupt(format!("a pax key that is not UTF-8 at byte {offset}")))?;
        match key {
            "path" => path = Some(record.value_bytes().to_vec()),
            k if IGNORED_PAX_KEYS.contains(&k) => {}
            k => {
                return Err(UnpackError::UnsupportedPaxRecord {
                    key: k.escape_debug().to_string(),
                }
                .into());
            }
        }
    }
    Ok(path)
}

fn type_name(t: tar::EntryType) -> String {
    use tar::EntryType as T;
    match t {
        T::Symlink => "a symbolic link".into(),
        T::Link => "a hard link".into(),
        T::Char => "a character device".into(),
        T::Block => "a block device".into(),
        T::Fifo => "a FIFO (named pipe)".into(),
        T::Directory => "a directory".into(),
        T::Continuous => "a contiguous file (type `7`)".into(),
        T::GNULongLink => "a GNU long link-name record".into(),
        T::GNUSparse => "a GNU sparse file".into(),
        T::XGlobalHeader => "a pax global header".into(),
        other => format!(
            "an entry of unknown type `{}`",
            other.as_byte().escape_ascii()
        ),
    }
}

/// Creates `rel` (already validated) under `root` with `create_new`: the final
/// component is never an existing file or symlink, and every directory on the way
/// is one we created ourselves (or a real directory, never a symlink).
fn create_file(root: &Path, rel: &str) -> Result<(File, PathBuf), Stop> {
    let mut dir = root.to_path_buf();
    let mut segments: Vec<&str> = rel.split('/').collect();
    let name = segments.pop().unwrap_or(rel);
    for seg in segments {
        dir.push(seg);
        match create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                match fs::symlink_metadata(&dir) {
                    Ok(m) if m.file_type().is_dir() => {}
                    _ => return Err(io_error("create the directory", &dir, e)),
                }
            }
            Err(e) => return Err(io_error("create the directory", &dir, e)),
        }
    }
    let path = dir.join(name);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o644);
    }
    let file = options
        .open(&path)
        .map_err(|e| io_error("create", &path, e))?;
    // The mode passed to open is filtered by the umask; set it exactly, on the
    // open handle so no path is followed.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o644))
            .map_err(|e| io_error("set permissions on", &path, e))?;
    }
    Ok((file, path))
}

fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o755);
    }
    builder.create(dir)?;
    set_mode(dir, 0o755)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::core::manifest::{FileKind, TransactionMode};
    use flate2::Compression;
    use flate2::write::GzEncoder;

    fn entry(path: &str, content: &[u8]) -> FileEntry {
        FileEntry {
            id: path
                .rsplit('/')
                .next()
                .unwrap_or(path)
                .trim_end_matches(".sql")
                .to_owned(),
            path: path.to_owned(),
            sha256: Digest::of(content),
            size: content.len() as u64,
            kind: FileKind::Migration,
            transaction: TransactionMode::Default,
            order: 0,
            rollback_for: None,
        }
    }

    /// Same settings as the packer: GNU headers, 0644, uid/gid 0, mtime 0.
    pub(crate) fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
        let gz = GzEncoder::new(Vec::new(), Compression::default());
        let mut tar = tar::Builder::new(gz);
        for (path, content) in files {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            tar.append_data(&mut header, path, *content).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap()
    }

    const INIT: &[u8] = b"CREATE TABLE t (id int);\n";
    const MORE: &[u8] = b"ALTER TABLE t ADD COLUMN name text;\n";

    fn sample() -> (Vec<u8>, Vec<FileEntry>) {
        let files: [(&str, &[u8]); 2] = [
            ("drizzle/0001_init.sql", INIT),
            ("drizzle/0002_more.sql", MORE),
        ];
        (
            tar_gz(&files),
            files.iter().map(|(p, c)| entry(p, c)).collect(),
        )
    }

    #[test]
    fn inspect_reports_matching_digests_and_sizes() {
        let (gz, expected) = sample();
        let got = inspect(&gz[..], &expected, &Limits::default()).unwrap();
        assert_eq!(got.files.len(), 2);
        assert_eq!(got.files[0].path, "drizzle/0001_init.sql");
        assert_eq!(got.files[0].actual, Digest::of(INIT));
        assert_eq!(got.files[1].actual, Digest::of(MORE));
        assert_eq!(got.files[1].actual_size, MORE.len() as u64);
        assert!(got.files.iter().all(FileCheck::matches));
        assert_eq!(got.mismatches().count(), 0);
        assert_eq!(got.compressed_digest, Digest::of(&gz));
        assert_eq!(got.compressed_size, gz.len() as u64);
        // Two headers + two padded data blocks + the 1024-byte end marker, at least.
        assert!(got.uncompressed_size >= 4 * 512 + 1024);
    }

    #[test]
    fn files_are_reported_in_the_order_of_the_expected_slice() {
        let (gz, mut expected) = sample();
        expected.reverse();
        let got = inspect(&gz[..], &expected, &Limits::default()).unwrap();
        assert_eq!(got.files[0].path, "drizzle/0002_more.sql");
        assert_eq!(got.files[0].actual, Digest::of(MORE));
    }

    #[test]
    fn long_names_are_applied_and_accepted_when_safe() {
        let long = format!("drizzle/{}/0001_init.sql", "d".repeat(150));
        let gz = tar_gz(&[(&long, INIT)]);
        let got = inspect(&gz[..], &[entry(&long, INIT)], &Limits::default()).unwrap();
        assert!(got.files[0].matches());
    }

    /// A pax record `len key=value\n`, `len` counting the whole record.
    fn pax_record(key: &str, value: &str) -> Vec<u8> {
        let body = format!(" {key}={value}\n");
        let mut len = body.len() + 1;
        while (len.to_string().len() + body.len()) != len {
            len += 1;
        }
        format!("{len}{body}").into_bytes()
    }

    fn raw_tar_gz(members: &[(tar::EntryType, &str, &[u8])]) -> Vec<u8> {
        let gz = GzEncoder::new(Vec::new(), Compression::default());
        let mut tar = tar::Builder::new(gz);
        for (kind, name, data) in members {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(*kind);
            header.set_path(name).unwrap();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append(&header, *data).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn pax_paths_are_applied_and_accepted_when_safe() {
        let pax = pax_record("path", "drizzle/0001_init.sql");
        let gz = raw_tar_gz(&[
            (tar::EntryType::XHeader, "PaxHeader", &pax),
            (tar::EntryType::Regular, "something-else.sql", INIT),
        ]);
        let got = inspect(
            &gz[..],
            &[entry("drizzle/0001_init.sql", INIT)],
            &Limits::default(),
        )
        .unwrap();
        assert!(got.files[0].matches());
    }

    #[test]
    fn a_long_name_and_a_pax_path_together_are_refused() {
        let pax = pax_record("path", "drizzle/0001_init.sql");
        let long = b"drizzle/0002_more.sql\0";
        let gz = raw_tar_gz(&[
            (tar::EntryType::GNULongName, "././@LongLink", long),
            (tar::EntryType::XHeader, "PaxHeader", &pax),
            (tar::EntryType::Regular, "x.sql", INIT),
        ]);
        let (_, expected) = sample();
        assert!(matches!(
            inspect(&gz[..], &expected, &Limits::default()),
            Err(UnpackError::CorruptTar { .. })
        ));
    }

    #[test]
    fn a_dangling_long_name_is_refused() {
        let gz = raw_tar_gz(&[(
            tar::EntryType::GNULongName,
            "././@LongLink",
            b"drizzle/0001_init.sql\0",
        )]);
        let (_, expected) = sample();
        assert!(matches!(
            inspect(&gz[..], &expected, &Limits::default()),
            Err(UnpackError::Truncated { .. })
        ));
    }

    #[test]
    fn a_hash_or_size_difference_is_reported_not_raised() {
        let (gz, mut expected) = sample();
        expected[1].sha256 = Digest::of(b"something else");
        expected[0].size += 1;
        let got = inspect(&gz[..], &expected, &Limits::default()).unwrap();
        let bad: Vec<&str> = got.mismatches().map(|f| f.path.as_str()).collect();
        assert_eq!(bad, ["drizzle/0001_init.sql", "drizzle/0002_more.sql"]);
        assert_eq!(got.files[0].actual_size, INIT.len() as u64);
        assert_eq!(got.files[1].actual, Digest::of(MORE));
    }

    #[test]
    fn missing_files_are_all_listed() {
        let (gz, mut expected) = sample();
        expected.push(entry("drizzle/0003_x.sql", b"x"));
        expected.push(entry("drizzle/0004_y.sql", b"y"));
        match inspect(&gz[..], &expected, &Limits::default()) {
            Err(UnpackError::MissingFiles { paths }) => assert_eq!(paths.len(), 2, "{paths:?}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unlisted_entry_is_refused_by_name() {
        let (gz, expected) = sample();
        match inspect(&gz[..], &expected[..1], &Limits::default()) {
            Err(e @ UnpackError::UnexpectedEntry { .. }) => {
                assert!(e.to_string().contains("0002_more.sql"), "{e}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn directives_build_refuses_are_refused_and_the_manifest_mode_must_agree() {
        let limits = Limits::default();
        let inspect_one = |content: &[u8], mode: TransactionMode| {
            let mut e = entry("m/0001_a.sql", content);
            e.transaction = mode;
            inspect(&tar_gz(&[("m/0001_a.sql", content)])[..], &[e], &limits)
        };
        let unknown = b"-- squizzle:no-transactions\nSELECT 1;\n";
        assert!(matches!(
            inspect_one(unknown, TransactionMode::Default),
            Err(UnpackError::Directive {
                source: DirectiveError::Unknown { line: 1, .. },
                ..
            })
        ));
        let late = b"SELECT 1;\n-- squizzle:no-transaction\n";
        assert!(matches!(
            inspect_one(late, TransactionMode::Default),
            Err(UnpackError::Directive {
                source: DirectiveError::AfterSql { line: 2, .. },
                ..
            })
        ));
        let marked = b"-- squizzle:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (c);\n";
        assert!(matches!(
            inspect_one(marked, TransactionMode::Default),
            Err(UnpackError::TransactionDisagrees { .. })
        ));
        // What build writes is accepted: the marked file listed as such, and
        // a file a format's own rule runs alone without a directive.
        inspect_one(marked, TransactionMode::None).unwrap();
        inspect_one(b"SELECT 1;\n", TransactionMode::None).unwrap();
        // A directive cut by the end of the head is refused, as build refuses it.
        let mut long = vec![b'\n'; directive::HEAD_BYTES - 16];
        long.extend_from_slice(b"-- squizzle:no-transaction\nSELECT 1;\n");
        assert!(matches!(
            inspect_one(&long, TransactionMode::None),
            Err(UnpackError::Directive {
                source: DirectiveError::Unknown { .. },
                ..
            })
        ));
    }

    #[test]
    fn a_directive_in_a_file_that_differs_from_the_manifest_is_a_mismatch() {
        let listed = entry("m/0001_a.sql", b"SELECT 1;\n");
        let bad = b"-- squizzle:bogus\nSELECT 1;\n";
        let i = inspect(
            &tar_gz(&[("m/0001_a.sql", bad)])[..],
            &[listed],
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(i.mismatches().count(), 1);
    }

    #[test]
    fn a_ratio_bomb_stops_early() {
        let zeros = vec![0u8; 8 * 1024 * 1024];
        let gz = tar_gz(&[("drizzle/0001_init.sql", &zeros)]);
        let limits = Limits {
            ratio_grace_bytes: 1024 * 1024,
            ..Limits::default()
        };
        match inspect(&gz[..], &[entry("drizzle/0001_init.sql", &zeros)], &limits) {
            Err(UnpackError::CompressionRatio { decompressed, .. }) => {
                assert!(decompressed < 2 * 1024 * 1024)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn read_errors_are_not_blamed_on_the_data() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let (gz, expected) = sample();
        let reader = (&gz[..20]).chain(Failing);
        assert!(matches!(
            inspect(reader, &expected, &Limits::default()),
            Err(UnpackError::ReadInput { .. })
        ));
    }

    #[test]
    fn extract_writes_files_only_when_everything_matches() {
        let (gz, expected) = sample();
        let tmp = tempfile::tempdir().unwrap();
        let tarball = tmp.path().join("release.tar.gz");
        fs::write(&tarball, &gz).unwrap();
        let dest = tmp.path().join("out");
        extract(&tarball, &expected, &Limits::default(), &dest).unwrap();
        assert_eq!(fs::read(dest.join("drizzle/0001_init.sql")).unwrap(), INIT);
        assert_eq!(fs::read(dest.join("drizzle/0002_more.sql")).unwrap(), MORE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dest), 0o755);
            assert_eq!(mode(&dest.join("drizzle")), 0o755);
            assert_eq!(mode(&dest.join("drizzle/0001_init.sql")), 0o644);
        }
        // Only the tarball and the destination: the staging directory is gone.
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 2);

        assert!(matches!(
            extract(&tarball, &expected, &Limits::default(), &dest),
            Err(UnpackError::DestinationExists { .. })
        ));
    }

    #[test]
    fn extract_leaves_nothing_behind_on_failure() {
        let (gz, mut expected) = sample();
        expected[1].sha256 = Digest::of(b"tampered");
        let tmp = tempfile::tempdir().unwrap();
        let tarball = tmp.path().join("release.tar.gz");
        fs::write(&tarball, &gz).unwrap();
        let dest = tmp.path().join("out");
        match extract(&tarball, &expected, &Limits::default(), &dest) {
            Err(UnpackError::ChecksumMismatch { path, actual, .. }) => {
                assert_eq!(path, "drizzle/0002_more.sql");
                assert_eq!(actual, Digest::of(MORE));
            }
            other => panic!("{other:?}"),
        }
        let left: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["release.tar.gz"]);
    }

    #[test]
    fn extract_needs_an_existing_parent() {
        let (gz, expected) = sample();
        let tmp = tempfile::tempdir().unwrap();
        let tarball = tmp.path().join("release.tar.gz");
        fs::write(&tarball, &gz).unwrap();
        let dest = tmp.path().join("no/such/out");
        assert!(matches!(
            extract(&tarball, &expected, &Limits::default(), &dest),
            Err(UnpackError::InvalidDestination { .. })
        ));
    }

    #[test]
    fn the_write_pass_rehashes_instead_of_trusting_the_first() {
        // A source that serves a different tarball on its second pass is caught by
        // the walker itself: exercise it directly with the altered bytes.
        let (_, expected) = sample();
        let altered = tar_gz(&[
            ("drizzle/0001_init.sql", b"DROP TABLE t;\n"),
            ("drizzle/0002_more.sql", MORE),
        ]);
        let tmp = tempfile::tempdir().unwrap();
        let got = walk(
            &altered[..],
            &expected,
            &Limits::default(),
            Sink::Dir(tmp.path(), true),
        )
        .unwrap();
        assert!(matches!(
            refuse_mismatch(&got),
            Err(UnpackError::ChecksumMismatch { .. })
        ));
    }

    /// Text of `len` bytes that compresses about as badly as SQL does, so a
    /// few MiB span many pipe pieces.
    fn text(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if i % 61 == 60 {
                    b'\n'
                } else {
                    b'a' + (x % 26) as u8
                }
            })
            .collect()
    }

    /// Several files, together many pipe pieces long (the two stages run
    /// concurrently over a long stream).
    fn big() -> (Vec<u8>, Vec<FileEntry>, Vec<Vec<u8>>) {
        let contents: Vec<Vec<u8>> = (0..5).map(|i| text(700_000 + i * 1013, i as u64)).collect();
        let names: Vec<String> = (0..5).map(|i| format!("drizzle/{i:04}_big.sql")).collect();
        let files: Vec<(&str, &[u8])> = names
            .iter()
            .zip(&contents)
            .map(|(n, c)| (n.as_str(), c.as_slice()))
            .collect();
        let expected = files.iter().map(|(p, c)| entry(p, c)).collect();
        (tar_gz(&files), expected, contents)
    }

    #[test]
    fn a_stream_of_many_pieces_is_hashed_whole() {
        let (gz, expected, contents) = big();
        let got = inspect(&gz[..], &expected, &Limits::default()).unwrap();
        assert!(got.files.iter().all(FileCheck::matches));
        assert_eq!(got.files[4].actual, Digest::of(&contents[4]));
        assert_eq!(got.compressed_digest, Digest::of(&gz));
        assert!(got.uncompressed_size > 5 * PIECE as u64 * 5);
    }

    #[test]
    fn problems_far_into_a_long_stream_keep_their_kind_and_offset() {
        let (_, mut expected, mut contents) = big();
        // A NUL in the fourth file, 3 MiB into the stream: the file and offset
        // are named exactly, whatever piece boundary it fell on.
        contents[3][654_321] = 0;
        expected[3] = entry("drizzle/0003_big.sql", &contents[3]);
        let names: Vec<String> = (0..5).map(|i| format!("drizzle/{i:04}_big.sql")).collect();
        let files: Vec<(&str, &[u8])> = names
            .iter()
            .zip(&contents)
            .map(|(n, c)| (n.as_str(), c.as_slice()))
            .collect();
        let gz = tar_gz(&files);
        match inspect(&gz[..], &expected, &Limits::default()) {
            Err(UnpackError::Nul { path, offset }) => {
                assert_eq!(path, "drizzle/0003_big.sql");
                assert_eq!(offset, 654_321);
            }
            other => panic!("{other:?}"),
        }

        // The gzip checksum at the very end is wrong: every entry inflates
        // and walks cleanly, and the failure, found by the inflater after the
        // walker has all the data, still surfaces as a corrupt gzip stream.
        let (gz, expected, _) = big();
        let mut damaged = gz.clone();
        let crc = damaged.len() - 8;
        damaged[crc] ^= 0xff;
        match inspect(&damaged[..], &expected, &Limits::default()) {
            Err(UnpackError::CorruptGzip { .. }) => {}
            other => panic!("{other:?}"),
        }
        // Bytes flipped in the middle: refused or reported, never a pass.
        let mut damaged = gz.clone();
        let mid = damaged.len() / 2;
        for b in &mut damaged[mid..mid + 64] {
            *b ^= 0x55;
        }
        if let Ok(i) = inspect(&damaged[..], &expected, &Limits::default()) {
            assert!(i.mismatches().count() > 0);
        }
        let mid = gz.len() / 2;

        // Cut in the middle: truncated, not malformed.
        match inspect(&gz[..mid], &expected, &Limits::default()) {
            Err(UnpackError::Truncated { .. }) => {}
            other => panic!("{other:?}"),
        }

        // Whole, then a second member: the tar walk passes, the trailing
        // bytes are refused with their exact offset.
        let mut two = gz.clone();
        two.extend_from_slice(&tar_gz(&[("x.sql", b"SELECT 1;\n")]));
        match inspect(&two[..], &expected, &Limits::default()) {
            Err(UnpackError::TrailingBytesAfterGzip { offset }) => {
                assert_eq!(offset, gz.len() as u64)
            }
            other => panic!("{other:?}"),
        }

        // The total limit stops inflation partway, as a typed refusal.
        let small = Limits {
            max_total_bytes: 2 * 1024 * 1024,
            ..Limits::default()
        };
        assert!(matches!(
            inspect(&gz[..], &expected, &small),
            Err(UnpackError::TotalTooLarge { .. })
        ));
    }

    #[test]
    fn a_refusal_early_in_a_long_stream_stops_the_inflating_stage() {
        // The first entry is unlisted: the walker refuses it at once and the
        // pump, blocked on a full pipe, must notice and stop (no hang).
        let (gz, mut expected, _) = big();
        expected.remove(0);
        assert!(matches!(
            inspect(&gz[..], &expected, &Limits::default()),
            Err(UnpackError::UnexpectedEntry { .. })
        ));
    }
}
