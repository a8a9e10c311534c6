//! The destination's own check of a release's content, run by the copy
//! before anything in the destination names the release.
//!
//! A push checks nothing here ([`NoVet`]): the release comes from the local
//! store, where it was checked on the way in. A pull ([`PullVet`]) inspects
//! the tarball as `verify` does (every entry, every file hash, UTF-8 without
//! NUL, the directives build accepts, the shape limits: `unpack`'s one walk)
//! while its bytes download: the layer's stream is
//! tapped on its way to the staging folder and fed to an inspection on
//! threads of its own, so the check overlaps the download instead of reading
//! the staged file a second time afterwards.
//!
//! What this module must never do: accept what the inspection of the staged
//! file would refuse, or refuse it differently. A streamed verdict is used
//! only when it is a pass over exactly the layer's bytes (its digest and size
//! are the descriptor's); anything else (a refusal, a download that started
//! over, a layer that was already staged) is settled by inspecting the staged
//! file, which gives the same errors as before this tap existed.

use std::cell::RefCell;
use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;

use crate::artifact::unpack::{self, Inspection, Limits, UnpackError};
use crate::core::digest::Digest;
use crate::core::manifest::{FileEntry, Manifest};
use crate::core::oci::Descriptor;
use crate::core::version::Version;
use crate::ops::{Error, Result};
use crate::store::layout::Staged;
use crate::store::{BlobSource, BlobStream, StoreError};

/// Chunks of the download waiting for the inspection: bounded, so a slow
/// inspection slows the download instead of growing memory. A chunk may pin
/// a whole HTTP read buffer (a few hundred KiB), so only a few wait: with 32
/// the pull's peak RSS doubled (16 to 32 MiB on the 200 MB release).
const TAP_DEPTH: usize = 4;

/// How a copy's destination judges the release before its tag is written.
pub trait Vet {
    /// The layer's source as the copy should read it (a check may watch the
    /// bytes go by). Called only when the layer is actually copied.
    fn watch<'a>(
        &'a self,
        m: &Manifest,
        source: Box<dyn BlobSource + 'a>,
    ) -> Box<dyn BlobSource + 'a>;

    /// The verdict, once the config and the layer are in the destination.
    fn judge(&self, m: &Manifest, layer: &Descriptor) -> Result<()>;
}

/// Checks nothing: a push, whose source is the already checked local store.
pub struct NoVet;

impl Vet for NoVet {
    fn watch<'a>(
        &'a self,
        _: &Manifest,
        source: Box<dyn BlobSource + 'a>,
    ) -> Box<dyn BlobSource + 'a> {
        source
    }

    fn judge(&self, _: &Manifest, _: &Descriptor) -> Result<()> {
        Ok(())
    }
}

/// A pull's check: only releases that pass the integrity checks enter the
/// store (see the module docs for how the streamed and the stored
/// inspection share the work).
pub struct PullVet<'s> {
    staged: &'s Staged<'s>,
    version: Version,
    tap: Tap,
}

impl<'s> PullVet<'s> {
    pub fn new(staged: &'s Staged<'s>, version: &Version, limits: Limits) -> Self {
        Self {
            staged,
            version: version.clone(),
            tap: Tap {
                limits,
                inspection: RefCell::new(None),
            },
        }
    }

    fn refuse(&self, why: String) -> Error {
        Error::Integrity(format!(
            "{} from the registry fails its integrity checks: {why}; it was not stored (the local store is as it was)",
            self.version
        ))
    }

    fn verdict(&self, inspection: &Inspection) -> Result<()> {
        match inspection.files.iter().find(|f| !f.matches()) {
            Some(bad) => Err(self.refuse(format!(
                "{} does not match the hash its manifest lists",
                bad.path
            ))),
            None => Ok(()),
        }
    }
}

impl Vet for PullVet<'_> {
    fn watch<'a>(
        &'a self,
        m: &Manifest,
        source: Box<dyn BlobSource + 'a>,
    ) -> Box<dyn BlobSource + 'a> {
        Box::new(Tapped {
            inner: source,
            tap: &self.tap,
            files: m.files.clone(),
        })
    }

    fn judge(&self, m: &Manifest, layer: &Descriptor) -> Result<()> {
        // The download is over, so the tap's sender is gone and the
        // inspection finishes reading; a panic there is just no verdict.
        let streamed = self
            .tap
            .inspection
            .borrow_mut()
            .take()
            .and_then(|h| h.join().ok());
        if let Some(Ok(inspection)) = streamed
            && inspection.compressed_digest == layer.digest
            && inspection.compressed_size == layer.size
        {
            tracing::debug!(layer = %layer.digest, "tarball inspected while it downloaded");
            return self.verdict(&inspection);
        }
        tracing::debug!(layer = %layer.digest, "inspecting the staged tarball");
        let path = self.staged.blob_file(layer);
        let file = std::fs::File::open(&path).map_err(|source| Error::Io {
            action: "read",
            path: path.clone(),
            source,
        })?;
        let inspection = unpack::inspect(
            io::BufReader::with_capacity(256 * 1024, file),
            &m.files,
            &self.tap.limits,
        )
        .map_err(|e| match e {
            UnpackError::Io { .. } | UnpackError::ReadInput { .. } => e.into(),
            e => self.refuse(e.to_string()),
        })?;
        self.verdict(&inspection)
    }
}

/// The inspection fed by the download: the latest one started, if any.
struct Tap {
    limits: Limits,
    inspection: RefCell<Option<JoinHandle<std::result::Result<Inspection, UnpackError>>>>,
}

impl Tap {
    /// Starts an inspection of a fresh stream and returns where its bytes go.
    /// One started earlier (a download that started over) is abandoned: its
    /// thread ends when its sender is dropped, and its verdict is never read.
    fn start(&self, files: Vec<FileEntry>) -> SyncSender<Bytes> {
        let (tx, rx) = mpsc::sync_channel(TAP_DEPTH);
        let limits = self.limits.clone();
        let spawned = std::thread::Builder::new()
            .name("pull-inspect".into())
            .spawn(move || unpack::inspect(Chunks::new(rx), &files, &limits));
        // Without a thread the receiver is gone, the first send fails and the
        // tap stops; `judge` then inspects the staged file.
        *self.inspection.borrow_mut() = spawned.ok();
        tx
    }
}

/// A layer's source whose every fresh reader also feeds a new inspection.
struct Tapped<'a> {
    inner: Box<dyn BlobSource + 'a>,
    tap: &'a Tap,
    files: Vec<FileEntry>,
}

impl BlobSource for Tapped<'_> {
    fn open(&self) -> LocalBoxFuture<'_, std::result::Result<BlobStream<'_>, StoreError>> {
        Box::pin(async move {
            let chunks = self.inner.open().await?;
            let mut to_inspection = Some(self.tap.start(self.files.clone()));
            Ok(chunks
                .map(move |chunk| {
                    if let (Ok(bytes), Some(tx)) = (&chunk, &to_inspection)
                        // The inspection stopped (it refused something):
                        // the download goes on, `judge` settles it.
                        && tx.send(bytes.clone()).is_err()
                    {
                        to_inspection = None;
                    }
                    chunk
                })
                .boxed_local())
        })
    }

    fn mismatch(
        &self,
        expected: &Descriptor,
        actual: Digest,
        actual_size: u64,
        too_long: bool,
    ) -> StoreError {
        self.inner.mismatch(expected, actual, actual_size, too_long)
    }
}

/// The tapped chunks as a reader; the end of the stream is the sender's drop.
struct Chunks {
    rx: Receiver<Bytes>,
    current: Bytes,
}

impl Chunks {
    fn new(rx: Receiver<Bytes>) -> Self {
        Self {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.current.is_empty() {
            match self.rx.recv() {
                Ok(chunk) => self.current = chunk,
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}
