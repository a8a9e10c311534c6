//! Deterministic, streaming packing of a release's files into `tar.gz`.
//!
//! Determinism: entries sorted by path; GNU headers with mode 0644, uid/gid 0,
//! empty owner names and mtime 0; gzip header with mtime 0, no file name, and a
//! fixed OS byte; one compression level and backend (fixed by this binary). The
//! tarball is therefore a pure function of the files' paths and bytes: it does
//! not depend on the checkout path, the clock, the umask or the user.
//!
//! Streaming: each file is read once, in chunks, and hashed, UTF-8-checked and
//! compressed as it passes; memory does not grow with file or release size.
//! The output is written to a temporary file beside the target and renamed into
//! place only when complete, so a failed build never leaves a partial tarball.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};

use crate::artifact::collect::SourceFile;
use crate::artifact::directive::{self, DirectiveError};
use crate::artifact::unpack::Limits;
use crate::artifact::utf8::{Utf8Problem, Utf8Validator};
use crate::core::digest::{Digest, Hasher, HashingWriter};
use crate::core::manifest::FileEntry;

use crate::artifact::directive::HEAD_BYTES;
const CHUNK: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("{path} is not valid UTF-8 (first bad byte at offset {offset}); save it as UTF-8")]
    NotUtf8 { path: String, offset: u64 },
    #[error(
        "{path} contains a NUL byte at offset {offset}, which PostgreSQL cannot execute; remove it"
    )]
    Nul { path: String, offset: u64 },
    #[error(
        "{path} changed while it was being packed ({expected} bytes expected, {actual} read); build again when nothing writes to it"
    )]
    Changed {
        path: String,
        expected: u64,
        actual: u64,
    },
    #[error("{path}: {source}")]
    Directive {
        path: String,
        source: DirectiveError,
    },
    #[error(
        "{what} is {actual}, above the limit of {limit} that verify and apply enforce; raise `limits.{key}` in squizzle.toml if this is intended"
    )]
    Limit {
        what: String,
        actual: u64,
        limit: u64,
        key: &'static str,
    },
}

/// A packed release: where the tarball is, its digest, and the manifest entries.
#[derive(Debug, Clone)]
pub struct Packed {
    pub path: PathBuf,
    pub sha256: Digest,
    pub size: u64,
    pub uncompressed_size: u64,
    /// In the order of the input (migrations, rollbacks, seeds).
    pub files: Vec<FileEntry>,
}

/// Reader that hashes, validates UTF-8 and keeps the first bytes of a file.
struct Inspecting<R> {
    inner: R,
    hasher: Hasher,
    utf8: Utf8Validator,
    head: Vec<u8>,
}

impl<R: Read> Read for Inspecting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let data = &buf[..n];
        self.hasher.update(data);
        self.utf8.feed(data);
        if self.head.len() < HEAD_BYTES {
            let take = (HEAD_BYTES - self.head.len()).min(n);
            self.head.extend_from_slice(&data[..take]);
        }
        Ok(n)
    }
}

/// Packs `files` into `out` (replaced atomically). Fails if any file breaks a rule
/// that the reading side enforces, so squizzle never builds what it would refuse.
pub fn pack(files: &[SourceFile], out: &Path, limits: &Limits) -> Result<Packed, PackError> {
    if files.len() as u64 > limits.max_entries {
        return Err(PackError::Limit {
            what: "the number of files".into(),
            actual: files.len() as u64,
            limit: limits.max_entries,
            key: "max_entries",
        });
    }
    let dir = out.parent().unwrap_or(Path::new("."));
    let werr = |source| PackError::Write {
        path: out.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(werr)?;
    let tmp = tempfile::Builder::new()
        .prefix(".squizzle-pack-")
        .tempfile_in(dir)
        .map_err(werr)?;

    let hashing = HashingWriter::new(BufWriter::with_capacity(CHUNK, tmp.as_file()));
    // OS byte 255 = "unknown": the same on every platform.
    let gz = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(hashing, Compression::default());
    let mut tar = tar::Builder::new(gz);

    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by(|&a, &b| files[a].path.cmp(&files[b].path));
    let mut entries: Vec<Option<FileEntry>> = vec![None; files.len()];
    let mut total: u64 = 0;
    for i in order {
        let f = &files[i];
        let rerr = |source| PackError::Read {
            path: f.abs.clone(),
            source,
        };
        let mut file = File::open(&f.abs).map_err(rerr)?;
        let whole = file.metadata().map_err(rerr)?.len();
        // A section (a dbmate up or down block) is packed as a file of its own.
        let size = match f.section {
            None => whole,
            Some((start, len)) => {
                if start.checked_add(len).is_none_or(|end| end > whole) {
                    return Err(PackError::Changed {
                        path: f.path.clone(),
                        expected: start.saturating_add(len),
                        actual: whole,
                    });
                }
                file.seek(SeekFrom::Start(start)).map_err(rerr)?;
                len
            }
        };
        if size > limits.max_entry_bytes {
            return Err(PackError::Limit {
                what: format!("the size of {}", f.path),
                actual: size,
                limit: limits.max_entry_bytes,
                key: "max_entry_bytes",
            });
        }
        total += size;
        if total > limits.max_total_bytes {
            return Err(PackError::Limit {
                what: "the total size of the release".into(),
                actual: total,
                limit: limits.max_total_bytes,
                key: "max_total_bytes",
            });
        }
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(size);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        let mut reader = Inspecting {
            inner: io::BufReader::with_capacity(CHUNK, file).take(size),
            hasher: Hasher::new(),
            utf8: Utf8Validator::new(),
            head: Vec::new(),
        };
        tar.append_data(&mut header, &f.path, &mut reader)
            .map_err(werr)?;
        let read = reader.hasher.len();
        if read != size {
            // tar pads to the header's size only as far as it copied: the archive
            // would be corrupt, so the whole build stops here.
            return Err(PackError::Changed {
                path: f.path.clone(),
                expected: size,
                actual: read,
            });
        }
        match reader.utf8.finish() {
            Ok(()) => {}
            Err(Utf8Problem::Invalid(offset)) => {
                return Err(PackError::NotUtf8 {
                    path: f.path.clone(),
                    offset,
                });
            }
            Err(Utf8Problem::Nul(offset)) => {
                return Err(PackError::Nul {
                    path: f.path.clone(),
                    offset,
                });
            }
        }
        // `from_utf8` first: its ASCII path is many times faster than the
        // lossy walk, which only a head that cuts a character still takes.
        let head = match std::str::from_utf8(&reader.head) {
            Ok(s) => std::borrow::Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(&reader.head),
        };
        let transaction = directive::parse(&head).map_err(|source| PackError::Directive {
            path: f.path.clone(),
            source,
        })?;
        let transaction = f.transaction.apply(&head, transaction);
        entries[i] = Some(FileEntry {
            id: f.id.clone(),
            path: f.path.clone(),
            sha256: reader.hasher.finish(),
            size,
            kind: f.kind,
            transaction,
            order: f.order,
            rollback_for: f.rollback_for.clone(),
        });
    }
    let gz = tar.into_inner().map_err(werr)?;
    let hashing = gz.finish().map_err(werr)?;
    let (mut buf, sha256, compressed) = hashing.finish();
    buf.flush().map_err(werr)?;
    drop(buf);

    if total > limits.ratio_grace_bytes && total / compressed.max(1) > limits.max_ratio {
        return Err(PackError::Limit {
            what: "the compression ratio".into(),
            actual: total / compressed.max(1),
            limit: limits.max_ratio,
            key: "max_ratio",
        });
    }
    tmp.as_file().sync_all().map_err(werr)?;
    tmp.persist(out).map_err(|e| werr(e.error))?;
    Ok(Packed {
        path: out.to_path_buf(),
        sha256,
        size: compressed,
        uncompressed_size: total,
        // Every index was filled in the loop above (order is a permutation).
        files: entries.into_iter().flatten().collect(),
    })
}
