//! An OCI image layout on disk (`oci-layout`, `index.json`, `blobs/sha256/`).
//!
//! Invariants: a blob file's name is the digest of its bytes (blobs are written
//! to a temporary file, verified, then renamed); `index.json` is replaced
//! atomically under an exclusive lock, so concurrent builds cannot lose a tag;
//! every read of a blob is checked against its digest by the reader, because
//! the folder may have been edited by anyone with write access.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;

use super::progress::{Direction, TransferEvent};
use super::{BlobSource, BlobStream, StoreError, Target, is_valid_tag};
use crate::core::digest::{Digest, HashingReader};
use crate::core::oci::{self, Descriptor, ImageIndex, ImageManifest};

/// Prefix of the staging folders a pull writes into (see [`Staged`]).
const STAGING_PREFIX: &str = ".tmp-pull-";

/// A staging folder older than this was left by a crashed pull: no live pull
/// takes that long between creating it and committing or dropping it. Only
/// for folders without an owner lock (written by older versions, or by a pull
/// killed before it took the lock).
const STALE_STAGING: Duration = Duration::from_secs(60 * 60);

/// The file in a staging folder its pull holds an exclusive lock on while it
/// lives: a folder whose lock anyone can take has no live owner.
const OWNER_LOCK: &str = ".owner.lock";

#[derive(Debug, Clone)]
pub struct LayoutStore {
    root: PathBuf,
}

/// Size of one read from a blob file handed to another store.
const READ_CHUNK: usize = 1024 * 1024;

/// A blob file as a [`BlobSource`]: every `open` rewinds it.
struct FileSource {
    file: File,
    path: PathBuf,
}

impl BlobSource for FileSource {
    fn open(&self) -> LocalBoxFuture<'_, Result<BlobStream<'_>, StoreError>> {
        Box::pin(async move {
            let io = |source| StoreError::Io {
                path: self.path.clone(),
                source,
            };
            let mut file = self.file.try_clone().map_err(io)?;
            io::Seek::rewind(&mut file).map_err(io)?;
            let path = self.path.clone();
            let chunks = futures_util::stream::unfold(Some(file), move |file| {
                let path = path.clone();
                async move {
                    let mut file = file?;
                    let mut buf = vec![0u8; READ_CHUNK];
                    let mut filled = 0;
                    while filled < READ_CHUNK {
                        match file.read(&mut buf[filled..]) {
                            Ok(0) => break,
                            Ok(n) => filled += n,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(source) => {
                                return Some((Err(StoreError::Io { path, source }), None));
                            }
                        }
                    }
                    if filled == 0 {
                        return None;
                    }
                    buf.truncate(filled);
                    Some((Ok(Bytes::from(buf)), Some(file)))
                }
            });
            Ok(chunks.boxed_local())
        })
    }

    fn mismatch(
        &self,
        expected: &Descriptor,
        actual: Digest,
        actual_size: u64,
        _too_long: bool,
    ) -> StoreError {
        StoreError::DigestMismatch {
            path: self.path.clone(),
            expected: expected.digest,
            actual,
            expected_size: expected.size,
            actual_size,
        }
    }
}

/// Upper bound for `index.json`: ~10,000 tags.
const MAX_INDEX_BYTES: u64 = 8 * 1024 * 1024;

impl LayoutStore {
    /// Opens an existing layout; refuses a folder that is not one.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        let marker = root.join("oci-layout");
        let text = fs::read_to_string(&marker).map_err(|e| StoreError::NotALayout {
            path: root.to_path_buf(),
            reason: format!("cannot read {}: {e}", marker.display()),
        })?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| StoreError::NotALayout {
                path: root.to_path_buf(),
                reason: format!("oci-layout is not JSON: {e}"),
            })?;
        if v.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
            return Err(StoreError::NotALayout {
                path: root.to_path_buf(),
                reason: "oci-layout does not declare imageLayoutVersion 1.0.0".into(),
            });
        }
        remove_stale_staging(root);
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// Opens the layout, creating an empty one if the folder does not exist or is empty.
    pub fn open_or_init(root: &Path) -> Result<Self, StoreError> {
        let io = |source| StoreError::Io {
            path: root.to_path_buf(),
            source,
        };
        let empty = match fs::read_dir(root) {
            Ok(mut d) => d.next().is_none(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(e) => return Err(io(e)),
        };
        if !empty {
            return Self::open(root);
        }
        fs::create_dir_all(root.join("blobs/sha256")).map_err(io)?;
        let store = Self {
            root: root.to_path_buf(),
        };
        store.write_atomic(
            &root.join("index.json"),
            &serde_json::to_vec(&ImageIndex::empty()).unwrap_or_default(),
        )?;
        store.write_atomic(&root.join("oci-layout"), oci::OCI_LAYOUT_FILE.as_bytes())?;
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    pub fn has_blob(&self, desc: &Descriptor) -> bool {
        fs::metadata(self.blob_path(&desc.digest))
            .is_ok_and(|m| m.is_file() && m.len() == desc.size)
    }

    /// Opens a blob for streaming; the caller must check the digest of what it reads
    /// (use [`HashingReader`]) — or use [`Self::read_blob`] for small blobs.
    pub fn open_blob(&self, digest: &Digest) -> Result<File, StoreError> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::MissingBlob {
                digest: *digest,
                path,
            },
            _ => StoreError::Io { path, source: e },
        })
    }

    /// Reads a small blob fully, refusing anything above `limit` bytes, and checks
    /// its digest and size against the descriptor.
    pub fn read_blob(
        &self,
        desc: &Descriptor,
        limit: u64,
        what: &'static str,
    ) -> Result<Vec<u8>, StoreError> {
        if desc.size > limit {
            return Err(StoreError::TooLarge {
                digest: desc.digest,
                limit,
                what,
            });
        }
        let path = self.blob_path(&desc.digest);
        let file = self.open_blob(&desc.digest)?;
        let mut buf = Vec::with_capacity(desc.size as usize);
        let mut reader = HashingReader::new(file.take(limit + 1));
        reader
            .read_to_end(&mut buf)
            .map_err(|source| StoreError::Io {
                path: path.clone(),
                source,
            })?;
        let (_, actual, actual_size) = reader.finish();
        if actual != desc.digest || actual_size != desc.size {
            return Err(StoreError::DigestMismatch {
                path,
                expected: desc.digest,
                actual,
                expected_size: desc.size,
                actual_size,
            });
        }
        Ok(buf)
    }

    /// Stores bytes as a blob and returns its descriptor.
    pub fn put_bytes(&self, media_type: &str, bytes: &[u8]) -> Result<Descriptor, StoreError> {
        let desc = Descriptor::new(media_type, Digest::of(bytes), bytes.len() as u64);
        self.put_blob(&desc, bytes)?;
        Ok(desc)
    }

    /// Streams a blob into the store, verifying it matches `desc` before it becomes
    /// visible. A blob that is already present (same digest and size) is skipped.
    pub fn put_blob(&self, desc: &Descriptor, reader: impl Read) -> Result<(), StoreError> {
        if self.has_blob(desc) {
            return Ok(());
        }
        let dir = self.root.join("blobs/sha256");
        let io = |source| StoreError::Io {
            path: dir.clone(),
            source,
        };
        fs::create_dir_all(&dir).map_err(io)?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&dir)
            .map_err(io)?;
        let mut hashing = HashingReader::new(reader.take(desc.size + 1));
        io::copy(&mut hashing, &mut tmp).map_err(io)?;
        let (_, actual, actual_size) = hashing.finish();
        if actual != desc.digest || actual_size != desc.size {
            return Err(StoreError::DigestMismatch {
                path: self.blob_path(&desc.digest),
                expected: desc.digest,
                actual,
                expected_size: desc.size,
                actual_size,
            });
        }
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(self.blob_path(&desc.digest))
            .map_err(|e| io(e.error))?;
        Ok(())
    }

    /// Writes the blob `desc` from `source` into a temporary file beside the
    /// blobs, hashing while it writes, and renames it into place once digest
    /// and size match; a failed copy leaves no file behind.
    async fn put_from(
        &self,
        desc: &Descriptor,
        source: &dyn BlobSource,
        progress: &dyn Fn(&TransferEvent),
    ) -> Result<(), StoreError> {
        let dir = self.root.join("blobs/sha256");
        let io = |source| StoreError::Io {
            path: dir.clone(),
            source,
        };
        fs::create_dir_all(&dir).map_err(io)?;
        let mut chunks = source.open().await?;
        progress(&TransferEvent::Started {
            direction: Direction::Pull,
            digest: desc.digest,
            media_type: desc.media_type.clone(),
            total: desc.size,
            attempt: 1,
        });
        // Dropped (and so deleted) on any early return.
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&dir)
            .map_err(io)?;
        let mut hasher = crate::core::digest::Hasher::new();
        let mut too_long = false;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            hasher.update(&chunk);
            if hasher.len() > desc.size {
                too_long = true;
                break;
            }
            tmp.write_all(&chunk).map_err(io)?;
            progress(&TransferEvent::Progress {
                direction: Direction::Pull,
                digest: desc.digest,
                done: hasher.len(),
                total: desc.size,
            });
        }
        drop(chunks);
        let actual_size = hasher.len();
        let actual = hasher.finish();
        if too_long || actual != desc.digest || actual_size != desc.size {
            return Err(source.mismatch(desc, actual, actual_size, too_long));
        }
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(self.blob_path(&desc.digest))
            .map_err(|e| io(e.error))?;
        progress(&TransferEvent::Finished {
            direction: Direction::Pull,
            digest: desc.digest,
            bytes: desc.size,
        });
        Ok(())
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    /// Reads `index.json`.
    pub fn index(&self) -> Result<ImageIndex, StoreError> {
        let path = self.index_path();
        let file = File::open(&path).map_err(|source| StoreError::Io {
            path: path.clone(),
            source,
        })?;
        let mut bytes = Vec::new();
        file.take(MAX_INDEX_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| StoreError::Io {
                path: path.clone(),
                source,
            })?;
        if bytes.len() as u64 > MAX_INDEX_BYTES {
            return Err(StoreError::Corrupt {
                path,
                reason: format!("larger than {MAX_INDEX_BYTES} bytes"),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            path,
            reason: format!("not an OCI image index: {e}"),
        })
    }

    /// Every tagged manifest: (tag, descriptor), in index order.
    pub fn tags(&self) -> Result<Vec<(String, Descriptor)>, StoreError> {
        Ok(self
            .index()?
            .manifests
            .into_iter()
            .filter_map(|d| {
                d.annotations
                    .get(oci::ANNOTATION_REF_NAME)
                    .cloned()
                    .map(|t| (t, d))
            })
            .collect())
    }

    /// The manifest descriptor a tag points at, if any. Two entries for one tag
    /// is a corrupt (or tampered) index and an error, never a silent choice.
    pub fn resolve(&self, tag: &str) -> Result<Option<Descriptor>, StoreError> {
        let mut found = self
            .tags()?
            .into_iter()
            .filter(|(t, _)| t == tag)
            .map(|(_, d)| d);
        let first = found.next();
        if found.next().is_some() {
            return Err(StoreError::Corrupt {
                path: self.index_path(),
                reason: format!("tag {tag:?} points at more than one manifest"),
            });
        }
        Ok(first)
    }

    /// Points `tag` at `desc` (a manifest already stored), replacing any previous
    /// entry for that tag. Serialized with other writers by a lock file.
    pub fn tag(&self, tag: &str, desc: &Descriptor) -> Result<(), StoreError> {
        if !is_valid_tag(tag) {
            return Err(StoreError::BadTag {
                tag: tag.to_owned(),
            });
        }
        let mut entry = desc.clone();
        entry
            .annotations
            .insert(oci::ANNOTATION_REF_NAME.to_owned(), tag.to_owned());
        self.update_index(|index| {
            index.manifests.retain(|d| {
                d.annotations
                    .get(oci::ANNOTATION_REF_NAME)
                    .map(String::as_str)
                    != Some(tag)
            });
            index.manifests.push(entry);
        })
    }

    /// Stores a referrer (an OCI image manifest with a `subject`, given as its
    /// exact bytes) and lists it in `index.json` as an untagged entry, once.
    /// Its config and layer blobs must already be in the store.
    ///
    /// Local referrers are found by reading the `subject` of every untagged
    /// manifest in the index ([`Self::referrers`]): the manifest itself is the
    /// only record, so nothing can disagree with it.
    pub fn add_referrer(&self, bytes: &[u8]) -> Result<Descriptor, StoreError> {
        let bad = |reason: String| StoreError::Corrupt {
            path: self.index_path(),
            reason,
        };
        let m: ImageManifest = serde_json::from_slice(bytes)
            .map_err(|e| bad(format!("a referrer must be an OCI image manifest: {e}")))?;
        if m.media_type != oci::IMAGE_MANIFEST_MEDIA_TYPE || m.subject.is_none() {
            return Err(bad(
                "a referrer must be an OCI image manifest with a subject".into(),
            ));
        }
        for blob in std::iter::once(&m.config).chain(&m.layers) {
            if !self.has_blob(blob) {
                return Err(StoreError::MissingBlob {
                    digest: blob.digest,
                    path: self.blob_path(&blob.digest),
                });
            }
        }
        let desc = m.referrer_descriptor(bytes);
        self.put_blob(&desc, bytes)?;
        let entry = desc.clone();
        self.update_index(|index| {
            let present = index.manifests.iter().any(|d| {
                d.digest == entry.digest && !d.annotations.contains_key(oci::ANNOTATION_REF_NAME)
            });
            if !present {
                index.manifests.push(entry);
            }
        })?;
        Ok(desc)
    }

    /// The referrers of `subject` stored here (descriptors with
    /// `artifactType` and the referrer's annotations), in index order,
    /// optionally only those of one `artifact_type`.
    ///
    /// Two forms are read: untagged manifests listed in `index.json` (as
    /// squizzle stores them), and the entries of the `sha256-<hex>`
    /// tag-schema index (as `skopeo copy` and other OCI tools leave them when
    /// they copy a registry without the referrers API). Either way a
    /// manifest only counts if its own `subject` is `subject`: a listing is
    /// an index, never proof. Tag-schema entries whose manifest is not in
    /// the layout are skipped (a copy of the release alone is not an error).
    pub fn referrers(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>, StoreError> {
        let index = self.index()?;
        let schema_tag = oci::referrers_tag(subject);
        let mut candidates: Vec<Descriptor> = Vec::new();
        let mut schema_indexes: Vec<Descriptor> = Vec::new();
        for d in index.manifests {
            match d.annotations.get(oci::ANNOTATION_REF_NAME) {
                None if d.media_type == oci::IMAGE_MANIFEST_MEDIA_TYPE => candidates.push(d),
                Some(tag) if *tag == schema_tag && d.media_type == oci::IMAGE_INDEX_MEDIA_TYPE => {
                    schema_indexes.push(d);
                }
                _ => {}
            }
        }
        for d in schema_indexes {
            let bytes = self.read_blob(&d, oci::MAX_MANIFEST_BYTES, "referrers index")?;
            let Ok(listed) = serde_json::from_slice::<ImageIndex>(&bytes) else {
                continue;
            };
            candidates.extend(listed.manifests.into_iter().filter(|e| {
                e.media_type == oci::IMAGE_MANIFEST_MEDIA_TYPE
                    && e.size <= oci::MAX_MANIFEST_BYTES
                    && self.has_blob(e)
            }));
        }
        let mut out: Vec<Descriptor> = Vec::new();
        for d in candidates {
            if out.iter().any(|o| o.digest == d.digest) {
                continue;
            }
            let bytes = self.read_blob(&d, oci::MAX_MANIFEST_BYTES, "manifest")?;
            let Ok(m) = serde_json::from_slice::<ImageManifest>(&bytes) else {
                continue;
            };
            if m.subject.as_ref().map(|s| s.digest) != Some(*subject) {
                continue;
            }
            let r = m.referrer_descriptor(&bytes);
            if artifact_type.is_none_or(|t| r.artifact_type.as_deref() == Some(t)) {
                out.push(r);
            }
        }
        Ok(out)
    }

    fn update_index(&self, change: impl FnOnce(&mut ImageIndex)) -> Result<(), StoreError> {
        let lock_path = self.root.join(".index.lock");
        let io = |source| StoreError::Io {
            path: lock_path.clone(),
            source,
        };
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io)?;
        lock.lock().map_err(io)?;
        let mut index = self.index()?;
        change(&mut index);
        let bytes = serde_json::to_vec(&index).unwrap_or_default();
        let result = self.write_atomic(&self.index_path(), &bytes);
        // Dropping the file releases the lock as well; unlock explicitly for clarity.
        let _ = lock.unlock();
        result
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let dir = path.parent().unwrap_or(&self.root);
        let io = |source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(dir)
            .map_err(io)?;
        tmp.write_all(bytes).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }
}

/// Removes `.tmp-pull-*` staging folders in `root` that no live pull owns: a
/// pull that was killed (one that fails normally removes its own) leaves its
/// folder with an owner lock nobody holds, which the next command to open the
/// store removes at once. A folder without a lock file is removed once older
/// than [`STALE_STAGING`]. Best effort: a folder that cannot be removed is left
/// for the next time.
fn remove_stale_staging(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(STAGING_PREFIX) {
            continue;
        }
        if !entry.metadata().is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let orphaned = match File::open(entry.path().join(OWNER_LOCK)) {
            // Holding the lock here means nobody else does; it is released
            // when `lock` is dropped, after the folder is gone.
            Ok(lock) => lock.try_lock().is_ok(),
            Err(_) => entry
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > STALE_STAGING),
        };
        if orphaned {
            let path = entry.path();
            match fs::remove_dir_all(&path) {
                Ok(()) => tracing::info!(
                    path = %path.display(),
                    "removed a staging folder left by an interrupted pull"
                ),
                Err(e) => {
                    tracing::debug!(path = %path.display(), error = %e, "cannot remove a stale staging folder")
                }
            }
        }
    }
}

/// The `artifactType` of manifest bytes, for the index entry that names them.
fn artifact_type_of(bytes: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()?
        .get("artifactType")?
        .as_str()
        .map(str::to_owned)
}

impl LayoutStore {
    /// Stores manifest bytes (after checking that its config and layers are
    /// here) and points `tag` at them.
    fn store_manifest(&self, tag: &str, media_type: &str, bytes: &[u8]) -> Result<(), StoreError> {
        if let Ok(m) = serde_json::from_slice::<ImageManifest>(bytes) {
            for blob in std::iter::once(&m.config).chain(&m.layers) {
                if !self.has_blob(blob) {
                    return Err(StoreError::MissingBlob {
                        digest: blob.digest,
                        path: self.blob_path(&blob.digest),
                    });
                }
            }
        }
        let mut desc = Descriptor::new(media_type, Digest::of(bytes), bytes.len() as u64);
        desc.artifact_type = artifact_type_of(bytes);
        self.put_blob(&desc, bytes)?;
        // Tag last: until now nothing names this manifest.
        self.tag(tag, &desc)
    }

    /// A view of this layout whose new blobs go to a staging folder inside it
    /// (`.tmp-pull-*`) and move in only when a manifest naming them is
    /// pushed: a copy that fails half-way (a digest mismatch, a squizzle
    /// manifest naming another version) leaves the store as it was. Dropping
    /// it removes the staging folder.
    pub fn staged(&self) -> Result<Staged<'_>, StoreError> {
        let dir = tempfile::Builder::new()
            .prefix(STAGING_PREFIX)
            .tempdir_in(&self.root)
            .map_err(|source| StoreError::Io {
                path: self.root.clone(),
                source,
            })?;
        let staging = LayoutStore::open_or_init(dir.path())?;
        let io = |source| StoreError::Io {
            path: dir.path().to_path_buf(),
            source,
        };
        // Locked under a temporary name and then renamed, so that another
        // command never finds the lock file before it is held (until then
        // the folder is new, and only the age rule could remove it).
        let pending = dir.path().join(".owner.lock.tmp");
        let owner = File::create(&pending).map_err(io)?;
        owner.lock().map_err(io)?;
        fs::rename(&pending, dir.path().join(OWNER_LOCK)).map_err(io)?;
        Ok(Staged {
            store: self,
            staging,
            _owner: owner,
            _dir: dir,
        })
    }
}

impl Target for LayoutStore {
    fn name(&self) -> String {
        self.root.display().to_string()
    }

    fn place(&self) -> String {
        format!("the local store {}", self.root.display())
    }

    async fn resolve(&self, tag: &str) -> Result<Option<Descriptor>, StoreError> {
        LayoutStore::resolve(self, tag)
    }

    async fn tags(&self) -> Result<Vec<String>, StoreError> {
        Ok(LayoutStore::tags(self)?
            .into_iter()
            .map(|(t, _)| t)
            .collect())
    }

    async fn read_manifest(&self, desc: &Descriptor) -> Result<Vec<u8>, StoreError> {
        self.read_blob(desc, oci::MAX_MANIFEST_BYTES, "manifest")
    }

    async fn read_small_blob(&self, desc: &Descriptor, limit: u64) -> Result<Vec<u8>, StoreError> {
        self.read_blob(desc, limit, "small blob")
    }

    async fn has_blob(&self, desc: &Descriptor) -> Result<bool, StoreError> {
        Ok(LayoutStore::has_blob(self, desc))
    }

    async fn open_blob(&self, desc: &Descriptor) -> Result<Box<dyn BlobSource + '_>, StoreError> {
        Ok(Box::new(FileSource {
            file: LayoutStore::open_blob(self, &desc.digest)?,
            path: self.blob_path(&desc.digest),
        }))
    }

    async fn push_blob(
        &self,
        desc: &Descriptor,
        blob: &dyn BlobSource,
        progress: &dyn Fn(&TransferEvent),
    ) -> Result<bool, StoreError> {
        if LayoutStore::has_blob(self, desc) {
            return Ok(false);
        }
        self.put_from(desc, blob, progress).await?;
        Ok(true)
    }

    async fn push_manifest(
        &self,
        tag: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.store_manifest(tag, media_type, bytes)
    }

    async fn referrers(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>, StoreError> {
        LayoutStore::referrers(self, subject, artifact_type)
    }

    async fn push_referrer(&self, bytes: &[u8]) -> Result<Descriptor, StoreError> {
        self.add_referrer(bytes)
    }
}

/// A [`LayoutStore`] written through a staging folder: see
/// [`LayoutStore::staged`]. Reads see the store and the staged blobs; pushing
/// a manifest or a referrer first moves every staged (already verified) blob
/// into the store, then writes the manifest, then the tag.
pub struct Staged<'a> {
    store: &'a LayoutStore,
    staging: LayoutStore,
    /// Held while the pull lives (see [`OWNER_LOCK`]); dropped before `_dir`.
    _owner: File,
    _dir: tempfile::TempDir,
}

impl Staged<'_> {
    /// The file holding `desc`'s bytes: staged, or already in the store.
    pub fn blob_file(&self, desc: &Descriptor) -> PathBuf {
        self.holder(desc).blob_path(&desc.digest)
    }

    fn holder(&self, desc: &Descriptor) -> &LayoutStore {
        if self.staging.has_blob(desc) {
            &self.staging
        } else {
            self.store
        }
    }

    /// Moves every staged blob into the store.
    fn commit_blobs(&self) -> Result<(), StoreError> {
        let dir = self.staging.root.join("blobs/sha256");
        let io = |path: &Path, source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        };
        for entry in fs::read_dir(&dir).map_err(|e| io(&dir, e))? {
            let entry = entry.map_err(|e| io(&dir, e))?;
            let name = entry.file_name();
            let Some(hex) = name.to_str().filter(|n| !n.starts_with('.')) else {
                continue;
            };
            let to = self.store.root.join("blobs/sha256").join(hex);
            fs::rename(entry.path(), &to).map_err(|e| io(&to, e))?;
        }
        Ok(())
    }
}

impl Target for Staged<'_> {
    fn name(&self) -> String {
        self.store.name()
    }

    fn place(&self) -> String {
        self.store.place()
    }

    async fn resolve(&self, tag: &str) -> Result<Option<Descriptor>, StoreError> {
        self.store.resolve(tag)
    }

    async fn tags(&self) -> Result<Vec<String>, StoreError> {
        Target::tags(self.store).await
    }

    async fn read_manifest(&self, desc: &Descriptor) -> Result<Vec<u8>, StoreError> {
        self.holder(desc)
            .read_blob(desc, oci::MAX_MANIFEST_BYTES, "manifest")
    }

    async fn read_small_blob(&self, desc: &Descriptor, limit: u64) -> Result<Vec<u8>, StoreError> {
        self.holder(desc).read_blob(desc, limit, "small blob")
    }

    async fn has_blob(&self, desc: &Descriptor) -> Result<bool, StoreError> {
        Ok(self.store.has_blob(desc) || self.staging.has_blob(desc))
    }

    async fn open_blob(&self, desc: &Descriptor) -> Result<Box<dyn BlobSource + '_>, StoreError> {
        Target::open_blob(self.holder(desc), desc).await
    }

    async fn push_blob(
        &self,
        desc: &Descriptor,
        blob: &dyn BlobSource,
        progress: &dyn Fn(&TransferEvent),
    ) -> Result<bool, StoreError> {
        if self.store.has_blob(desc) {
            return Ok(false);
        }
        Target::push_blob(&self.staging, desc, blob, progress).await
    }

    async fn push_manifest(
        &self,
        tag: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.commit_blobs()?;
        self.store.store_manifest(tag, media_type, bytes)
    }

    async fn referrers(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>, StoreError> {
        self.store.referrers(subject, artifact_type)
    }

    async fn push_referrer(&self, bytes: &[u8]) -> Result<Descriptor, StoreError> {
        self.commit_blobs()?;
        self.store.add_referrer(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_put_tag_resolve_round_trip() {
        let t = tempfile::tempdir().unwrap();
        let s = LayoutStore::open_or_init(&t.path().join("store")).unwrap();
        let d = s.put_bytes("application/x-test", b"hello").unwrap();
        assert_eq!(s.read_blob(&d, 100, "test").unwrap(), b"hello");
        s.tag("1.0.0", &d).unwrap();
        s.tag("1.0.0", &d).unwrap();
        assert_eq!(s.tags().unwrap().len(), 1);
        assert_eq!(s.resolve("1.0.0").unwrap().unwrap().digest, d.digest);
        assert!(s.resolve("2.0.0").unwrap().is_none());
        // Reopening finds the same content.
        let s2 = LayoutStore::open(s.root()).unwrap();
        assert_eq!(s2.resolve("1.0.0").unwrap().unwrap().digest, d.digest);
    }

    #[test]
    fn tampered_blob_is_detected_on_read() {
        let t = tempfile::tempdir().unwrap();
        let s = LayoutStore::open_or_init(t.path()).unwrap();
        let d = s.put_bytes("x", b"original").unwrap();
        fs::write(s.blob_path(&d.digest), b"tampered").unwrap();
        assert!(matches!(
            s.read_blob(&d, 100, "test"),
            Err(StoreError::DigestMismatch { .. })
        ));
    }

    #[test]
    fn put_blob_refuses_content_that_does_not_match() {
        let t = tempfile::tempdir().unwrap();
        let s = LayoutStore::open_or_init(t.path()).unwrap();
        let desc = Descriptor::new("x", Digest::of(b"expected"), 8);
        assert!(matches!(
            s.put_blob(&desc, &b"imposter"[..]),
            Err(StoreError::DigestMismatch { .. })
        ));
        assert!(!s.blob_path(&desc.digest).exists());
        // No temporary files are left behind either.
        let leftovers: Vec<_> = fs::read_dir(t.path().join("blobs/sha256"))
            .unwrap()
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn refuses_non_layouts_and_bad_tags() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("file"), b"x").unwrap();
        assert!(matches!(
            LayoutStore::open_or_init(t.path()),
            Err(StoreError::NotALayout { .. })
        ));
        let s = LayoutStore::open_or_init(&t.path().join("s")).unwrap();
        let d = s.put_bytes("x", b"y").unwrap();
        for bad in ["", "-x", "a+b", &"a".repeat(129)] {
            assert!(
                matches!(s.tag(bad, &d), Err(StoreError::BadTag { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn referrers_are_untagged_entries_found_by_subject() {
        let t = tempfile::tempdir().unwrap();
        let s = LayoutStore::open_or_init(t.path()).unwrap();
        let subject = s.put_bytes(oci::IMAGE_MANIFEST_MEDIA_TYPE, b"{}").unwrap();
        s.tag("1.0.0", &subject).unwrap();
        let config = s.put_bytes(oci::EMPTY_MEDIA_TYPE, b"{}").unwrap();
        let make = |at: &str| {
            let m = ImageManifest {
                schema_version: 2,
                media_type: oci::IMAGE_MANIFEST_MEDIA_TYPE.into(),
                artifact_type: Some(at.into()),
                config: config.clone(),
                layers: vec![config.clone()],
                subject: Some(subject.clone()),
                annotations: Default::default(),
            };
            s.add_referrer(&m.to_canonical_json()).unwrap()
        };
        let sig = make(oci::SIGNATURE_ARTIFACT_TYPE);
        make(oci::REVOCATION_ARTIFACT_TYPE);
        make(oci::SIGNATURE_ARTIFACT_TYPE); // the same one again: listed once
        assert_eq!(s.referrers(&subject.digest, None).unwrap().len(), 2);
        let sigs = s
            .referrers(&subject.digest, Some(oci::SIGNATURE_ARTIFACT_TYPE))
            .unwrap();
        assert_eq!(sigs, vec![sig]);
        assert!(
            s.referrers(&Digest::of(b"another"), None)
                .unwrap()
                .is_empty()
        );
        // Referrers are not tags.
        assert_eq!(s.tags().unwrap().len(), 1);
        assert!(s.add_referrer(b"{}").is_err());
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn staged_blobs_stay_invisible_until_a_manifest_names_them() {
        let t = tempfile::tempdir().unwrap();
        let s = LayoutStore::open_or_init(t.path()).unwrap();
        let src = LayoutStore::open_or_init(&t.path().join("src")).unwrap();
        let blob = src.put_bytes("x", b"content").unwrap();
        let staged = s.staged().unwrap();
        block_on(async {
            let reader = Target::open_blob(&src, &blob).await.unwrap();
            assert!(
                Target::push_blob(&staged, &blob, &*reader, &|_| {})
                    .await
                    .unwrap()
            );
            assert!(Target::has_blob(&staged, &blob).await.unwrap());
            assert!(!s.has_blob(&blob), "visible before the manifest");
            let m = ImageManifest {
                schema_version: 2,
                media_type: oci::IMAGE_MANIFEST_MEDIA_TYPE.into(),
                artifact_type: Some("application/x-test".into()),
                config: blob.clone(),
                layers: vec![blob.clone()],
                subject: None,
                annotations: Default::default(),
            };
            let bytes = m.to_canonical_json();
            staged
                .push_manifest("1.0.0", oci::IMAGE_MANIFEST_MEDIA_TYPE, &bytes)
                .await
                .unwrap();
        });
        assert!(s.has_blob(&blob));
        let tagged = s.resolve("1.0.0").unwrap().unwrap();
        assert_eq!(tagged.artifact_type.as_deref(), Some("application/x-test"));
        drop(staged);
        let left: Vec<_> = fs::read_dir(t.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(STAGING_PREFIX))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn open_removes_only_stale_staging_folders() {
        let t = tempfile::tempdir().unwrap();
        LayoutStore::open_or_init(t.path()).unwrap();
        let stale = t.path().join(".tmp-pull-stale");
        let fresh = t.path().join(".tmp-pull-fresh");
        for d in [&stale, &fresh] {
            fs::create_dir_all(d.join("blobs/sha256")).unwrap();
        }
        let old = SystemTime::now() - Duration::from_secs(2 * 60 * 60);
        File::open(&stale).unwrap().set_modified(old).unwrap();
        LayoutStore::open(t.path()).unwrap();
        assert!(!stale.exists());
        assert!(fresh.exists());
    }

    #[test]
    fn a_staging_folder_nobody_owns_is_removed_at_once_and_a_live_one_is_kept() {
        let t = tempfile::tempdir().unwrap();
        let store = LayoutStore::open_or_init(t.path()).unwrap();
        // A killed pull: fresh, with an owner lock nobody holds any more.
        let killed = t.path().join(".tmp-pull-killed");
        fs::create_dir_all(killed.join("blobs/sha256")).unwrap();
        File::create(killed.join(OWNER_LOCK)).unwrap();
        // A live pull in this process.
        let live = store.staged().unwrap();
        let live_dir = live.staging.root().to_path_buf();
        assert!(live_dir.join(OWNER_LOCK).exists());
        LayoutStore::open(t.path()).unwrap();
        assert!(!killed.exists(), "an orphaned staging folder is removed");
        assert!(live_dir.exists(), "a live pull's folder is kept");
        drop(live);
        assert!(!live_dir.exists());
    }

    #[test]
    fn concurrent_taggers_lose_no_tag() {
        let t = tempfile::tempdir().unwrap();
        let s = LayoutStore::open_or_init(t.path()).unwrap();
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for j in 0..10 {
                        let d = s.put_bytes("x", format!("{i}-{j}").as_bytes()).unwrap();
                        s.tag(&format!("v{i}-{j}"), &d).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(s.tags().unwrap().len(), 80);
    }
}
