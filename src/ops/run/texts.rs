//! The text of the files a run executes, read from the verified layer while
//! the run goes, one file at a time.
//!
//! Memory must not grow with the release: a 200 MB release is not held
//! whole. A run makes a first pass over the layer that looks at each
//! pending file and keeps only what it learns (statements, transaction
//! control, enum values), so that a file that would be refused is refused
//! before anything runs; then a second pass hands the files to the runner as
//! it reaches them, through a channel that holds one file. Every file handed
//! over was checked against the manifest (digest, size, UTF-8, directives)
//! on the way, so only the signed text ever runs; the end of the pass
//! (trailing data, missing entries) is awaited before the run's last commit.
//!
//! The tarball is ordered by path, the run by the source tool's order (a
//! Flyway `V10` sorts before `V2`): a file that arrives before it is needed
//! is kept while the kept files stay under [`EARLY_BUDGET`], and read again in
//! a later pass otherwise, so the order never costs more than that budget.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::artifact::unpack::{self, Limits, UnpackError};
use crate::config::Config;
use crate::core::manifest::FileEntry;
use crate::ops::release::limits;
use crate::ops::release::resolve::ResolvedRelease;
use crate::ops::{Error, Result};
use crate::store::layout::LayoutStore;

/// Bytes of files that arrived before their turn kept in memory at most.
pub const EARLY_BUDGET: usize = 32 * 1024 * 1024;

/// Where the texts come from: the verified release's layer in the local store.
pub struct Source {
    blob: PathBuf,
    expected: Vec<FileEntry>,
    limits: Limits,
}

impl Source {
    pub fn of(config: &Config, store: &LayoutStore, release: &ResolvedRelease) -> Arc<Source> {
        Arc::new(Source {
            blob: store.blob_path(&release.layer.digest),
            expected: release.manifest.files.clone(),
            limits: limits(config),
        })
    }

    /// The manifest slot of each of `paths`, or a usage error naming the one
    /// that is not a file of the release.
    pub fn slots(&self, paths: &[&str]) -> Result<Vec<usize>> {
        let slot: HashMap<&str, usize> = self
            .expected
            .iter()
            .enumerate()
            .map(|(i, f)| (f.path.as_str(), i))
            .collect();
        paths
            .iter()
            .map(|p| {
                slot.get(p)
                    .copied()
                    .ok_or_else(|| Error::Usage(format!("{p} is not a file of the release")))
            })
            .collect()
    }

    /// Starts a pass that sends the files at `wanted` slots, as each is
    /// checked, through a channel that holds one.
    fn pass(self: &Arc<Self>, wanted: Vec<bool>) -> Pass {
        let (tx, rx) = mpsc::channel(1);
        let source = Arc::clone(self);
        let handle = tokio::task::spawn_blocking(move || {
            unpack::each_file(
                &source.blob,
                &source.expected,
                &wanted,
                &source.limits,
                // A closed channel (the run stopped) stops the pass.
                &mut |slot, text| tx.blocking_send((slot, text)).is_ok(),
            )
        });
        Pass { rx, handle }
    }
}

/// One pass over the layer in progress.
struct Pass {
    rx: mpsc::Receiver<(usize, String)>,
    handle: JoinHandle<std::result::Result<(), UnpackError>>,
}

impl Pass {
    /// Waits for the end of the pass (after its last file was received) and
    /// returns its verdict on the whole layer.
    async fn end(mut self) -> Result<()> {
        while self.rx.recv().await.is_some() {}
        match self.handle.await {
            Ok(verdict) => verdict.map_err(Error::Unpack),
            Err(e) => Err(Error::Usage(format!(
                "reading the release's files stopped unexpectedly: {e}"
            ))),
        }
    }
}

/// Calls `each(i, text)` for the file at each of `slots` (`i` its index in
/// `slots`), in one checking pass over the layer, holding one file at a
/// time; returns the results in the order of `slots`.
pub async fn survey<T, F>(source: &Arc<Source>, slots: &[usize], each: F) -> Result<Vec<T>>
where
    T: Send + 'static,
    F: FnMut(usize, &str) -> T + Send + 'static,
{
    let source = Arc::clone(source);
    let slots = slots.to_vec();
    let mut each = each;
    let outcome = tokio::task::spawn_blocking(move || {
        let mut index_of: HashMap<usize, usize> = HashMap::with_capacity(slots.len());
        let mut wanted = vec![false; source.expected.len()];
        for (i, &s) in slots.iter().enumerate() {
            index_of.insert(s, i);
            wanted[s] = true;
        }
        let mut out: Vec<Option<T>> = std::iter::repeat_with(|| None).take(slots.len()).collect();
        let verdict = unpack::each_file(
            &source.blob,
            &source.expected,
            &wanted,
            &source.limits,
            &mut |slot, text| {
                if let Some(&i) = index_of.get(&slot) {
                    out[i] = Some(each(i, &text));
                }
                true
            },
        );
        verdict.map(|()| out)
    })
    .await
    .map_err(|e| {
        Error::Usage(format!(
            "reading the release's files stopped unexpectedly: {e}"
        ))
    })?;
    let out = outcome.map_err(Error::Unpack)?;
    // A pass that ended well handed over every wanted file.
    out.into_iter()
        .map(|t| t.ok_or_else(|| Error::Usage("a file of the release was not read".to_owned())))
        .collect()
}

/// The texts of a run's files, by their index in the run.
pub enum Texts {
    /// In memory already: a fleet reads the release once for every target,
    /// a rollback its few scripts, a plan-only dry run prints them all.
    Held(Arc<Vec<String>>),
    /// Read from the layer as the run reaches them.
    Streamed(Box<Streamed>),
}

pub struct Streamed {
    source: Arc<Source>,
    /// Manifest slot of each file of the run, and the reverse.
    slots: Vec<usize>,
    index_of: HashMap<usize, usize>,
    /// Files of the run already taken.
    taken: Vec<bool>,
    pass: Option<Pass>,
    /// Files that arrived before their turn, by slot, and their total size.
    early: HashMap<usize, String>,
    early_bytes: usize,
    /// [`EARLY_BUDGET`], smaller in tests.
    budget: usize,
}

impl Texts {
    pub fn held(texts: Vec<String>) -> Texts {
        Texts::Held(Arc::new(texts))
    }

    /// The files at `slots` of `source`, streamed in that order.
    pub fn streamed(source: Arc<Source>, slots: Vec<usize>) -> Texts {
        Texts::Streamed(Box::new(Streamed {
            taken: vec![false; slots.len()],
            index_of: slots.iter().enumerate().map(|(i, &s)| (s, i)).collect(),
            source,
            slots,
            pass: None,
            early: HashMap::new(),
            early_bytes: 0,
            budget: EARLY_BUDGET,
        }))
    }

    /// The text of file `i` of the run.
    pub async fn take(&mut self, i: usize) -> Result<String> {
        match self {
            Texts::Held(all) => Ok(all[i].clone()),
            Texts::Streamed(s) => s.take(i).await,
        }
    }

    /// A new source of the texts of files `ids` of this run, in that order
    /// (to replay part of a run); read again from the layer when streamed.
    pub fn again(&self, ids: &[usize]) -> Texts {
        match self {
            Texts::Held(all) => Texts::held(ids.iter().map(|&i| all[i].clone()).collect()),
            Texts::Streamed(s) => Texts::streamed(
                Arc::clone(&s.source),
                ids.iter().map(|&i| s.slots[i]).collect(),
            ),
        }
    }

    /// Waits until the layer was read to its end and checked whole: called
    /// before the run's last commit, so a release whose layer fails at its
    /// end (trailing data, a missing file) is never recorded as applied.
    pub async fn finish(&mut self) -> Result<()> {
        match self {
            Texts::Held(_) => Ok(()),
            Texts::Streamed(s) => match s.pass.take() {
                Some(pass) => pass.end().await,
                None => Ok(()),
            },
        }
    }
}

impl Streamed {
    async fn take(&mut self, i: usize) -> Result<String> {
        let slot = self.slots[i];
        self.taken[i] = true;
        if let Some(text) = self.early.remove(&slot) {
            self.early_bytes -= text.len();
            return Ok(text);
        }
        // At most two passes: one already running (which may have sent this
        // file while it was not yet wanted and found no room for it), then a
        // fresh one that asks for it.
        let mut fresh = false;
        loop {
            if self.pass.is_none() {
                if fresh {
                    return Err(Error::Usage(format!(
                        "{} was not found in the release's layer",
                        self.source.expected[slot].path
                    )));
                }
                fresh = true;
                let mut wanted = vec![false; self.source.expected.len()];
                for (k, &s) in self.slots.iter().enumerate() {
                    if !self.taken[k] || k == i {
                        wanted[s] = true;
                    }
                }
                for s in self.early.keys() {
                    wanted[*s] = false;
                }
                wanted[slot] = true;
                self.pass = Some(self.source.pass(wanted));
            }
            let pass = self.pass.as_mut().expect("a pass is running");
            match pass.rx.recv().await {
                Some((s, text)) if s == slot => return Ok(text),
                Some((s, text)) => {
                    // Wanted later (and not yet kept) when there is room; read
                    // again by a later pass otherwise.
                    let later = self.index_of.get(&s).is_some_and(|&k| !self.taken[k]);
                    if later
                        && !self.early.contains_key(&s)
                        && self.early_bytes + text.len() <= self.budget
                    {
                        self.early_bytes += text.len();
                        self.early.insert(s, text);
                    }
                }
                None => {
                    // The pass ended without this file: an error of the
                    // layer, or the file went by before it was wanted.
                    let ended = self.pass.take().expect("a pass is running");
                    ended.end().await?;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::digest::Digest;
    use crate::core::manifest::{FileKind, TransactionMode};

    fn entry(path: &str, content: &str) -> FileEntry {
        FileEntry {
            id: path.trim_end_matches(".sql").to_owned(),
            path: path.to_owned(),
            sha256: Digest::of(content.as_bytes()),
            size: content.len() as u64,
            kind: FileKind::Migration,
            transaction: TransactionMode::Default,
            order: 0,
            rollback_for: None,
        }
    }

    /// A layer holding `files` in that order (as the packer writes them),
    /// followed by `trailer` after the gzip stream.
    fn layer(dir: &std::path::Path, files: &[(&str, &str)], trailer: &[u8]) -> PathBuf {
        let files: Vec<(&str, &[u8])> = files.iter().map(|(p, c)| (*p, c.as_bytes())).collect();
        let mut bytes = crate::artifact::unpack::tests::tar_gz(&files);
        bytes.extend_from_slice(trailer);
        let path = dir.join("layer.tar.gz");
        std::fs::write(&path, bytes).unwrap();
        path
    }

    const FILES: [(&str, &str); 4] = [
        ("a.sql", "CREATE TABLE a (id int);"),
        ("b.sql", "CREATE TABLE b (id int);"),
        ("c.sql", "CREATE TABLE c (id int);"),
        ("d.sql", "CREATE TABLE d (id int);"),
    ];

    fn source(dir: &std::path::Path, in_tar: &[(&str, &str)], trailer: &[u8]) -> Arc<Source> {
        Arc::new(Source {
            blob: layer(dir, in_tar, trailer),
            expected: FILES.iter().map(|(p, c)| entry(p, c)).collect(),
            limits: Limits::default(),
        })
    }

    fn streamed(source: &Arc<Source>, paths: &[&str], budget: usize) -> Texts {
        let slots = source.slots(paths).unwrap();
        match Texts::streamed(Arc::clone(source), slots) {
            Texts::Streamed(mut s) => {
                s.budget = budget;
                Texts::Streamed(s)
            }
            Texts::Held(_) => unreachable!(),
        }
    }

    fn text_of(path: &str) -> &'static str {
        FILES.iter().find(|(p, _)| *p == path).unwrap().1
    }

    #[tokio::test]
    async fn files_come_in_the_run_order_whatever_the_tarball_order() {
        let dir = tempfile::tempdir().unwrap();
        let src = source(dir.path(), &FILES, b"");
        let order = ["d.sql", "b.sql", "a.sql", "c.sql"];
        // With room for early files, and with none (every early file is read
        // again by a later pass).
        for budget in [EARLY_BUDGET, 0] {
            let mut texts = streamed(&src, &order, budget);
            for (i, p) in order.iter().enumerate() {
                assert_eq!(texts.take(i).await.unwrap(), text_of(p), "budget {budget}");
            }
            texts.finish().await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_replay_reads_the_files_again() {
        let dir = tempfile::tempdir().unwrap();
        let src = source(dir.path(), &FILES, b"");
        let order = ["c.sql", "a.sql", "d.sql"];
        let mut texts = streamed(&src, &order, EARLY_BUDGET);
        for i in 0..order.len() {
            texts.take(i).await.unwrap();
        }
        let mut again = texts.again(&[2, 0]);
        assert_eq!(again.take(0).await.unwrap(), text_of("d.sql"));
        assert_eq!(again.take(1).await.unwrap(), text_of("c.sql"));
        again.finish().await.unwrap();
        texts.finish().await.unwrap();
    }

    #[tokio::test]
    async fn a_file_that_differs_from_the_manifest_is_never_handed_over() {
        let dir = tempfile::tempdir().unwrap();
        let mut tampered = FILES;
        tampered[1].1 = "DROP TABLE a;";
        let src = source(dir.path(), &tampered, b"");
        let order = ["a.sql", "b.sql", "c.sql"];
        let mut texts = streamed(&src, &order, EARLY_BUDGET);
        assert_eq!(texts.take(0).await.unwrap(), text_of("a.sql"));
        let err = texts.take(1).await.unwrap_err();
        assert!(
            matches!(err, Error::Unpack(UnpackError::ChecksumMismatch { ref path, .. }) if path == "b.sql"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn the_end_of_the_layer_is_checked_before_the_run_ends() {
        let dir = tempfile::tempdir().unwrap();
        let src = source(dir.path(), &FILES, b"junk after the gzip stream");
        let order = ["a.sql", "b.sql"];
        let mut texts = streamed(&src, &order, EARLY_BUDGET);
        // Each file is what the manifest lists, so it is handed over...
        assert_eq!(texts.take(0).await.unwrap(), text_of("a.sql"));
        assert_eq!(texts.take(1).await.unwrap(), text_of("b.sql"));
        // ...but the layer as a whole is refused before the last commit.
        let err = texts.finish().await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Unpack(UnpackError::TrailingBytesAfterGzip { .. })
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_missing_file_is_an_error_not_a_wait() {
        let dir = tempfile::tempdir().unwrap();
        let src = source(dir.path(), &FILES[..3], b"");
        let mut texts = streamed(&src, &["d.sql"], 0);
        let err = texts.take(0).await.unwrap_err();
        assert!(
            matches!(err, Error::Unpack(UnpackError::MissingFiles { .. })),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn survey_looks_at_each_file_in_the_order_asked() {
        let dir = tempfile::tempdir().unwrap();
        let src = source(dir.path(), &FILES, b"");
        let slots = src.slots(&["c.sql", "a.sql"]).unwrap();
        let seen = survey(&src, &slots, |i, text| (i, text.to_owned()))
            .await
            .unwrap();
        assert_eq!(
            seen,
            vec![
                (0, text_of("c.sql").to_owned()),
                (1, text_of("a.sql").to_owned())
            ]
        );
        let mut tampered = FILES;
        tampered[0].1 = "DROP TABLE b;";
        let bad = source(dir.path(), &tampered, b"");
        let err = survey(&bad, &slots, |_, _| ()).await.unwrap_err();
        assert!(
            matches!(err, Error::Unpack(UnpackError::ChecksumMismatch { .. })),
            "{err:?}"
        );
        assert!(matches!(src.slots(&["z.sql"]), Err(Error::Usage(_))));
    }
}
