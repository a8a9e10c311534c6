//! Progress of blob transfers, reported to a callback the caller passes down.
//!
//! The store never prints: it calls `&dyn Fn(&TransferEvent)` and the CLI
//! decides what (if anything) reaches the terminal and how often. Events come
//! as often as chunks arrive (pull) or every [`TICK`] (push); throttling is
//! the printer's job.

use std::future::Future;
use std::time::Duration;

use crate::core::digest::Digest;

/// How often a push in flight reports the bytes handed to the HTTP client.
pub const TICK: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Push,
    Pull,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferEvent {
    /// A blob transfer starts, or starts over (`attempt` > 1) after a
    /// transient failure: progress goes back to zero.
    Started {
        direction: Direction,
        digest: Digest,
        media_type: String,
        total: u64,
        attempt: u32,
    },
    /// `done` of `total` bytes so far.
    Progress {
        direction: Direction,
        digest: Digest,
        done: u64,
        total: u64,
    },
    /// The blob is in place (verified and renamed, or committed remotely).
    Finished {
        direction: Direction,
        digest: Digest,
        bytes: u64,
    },
}

/// A callback that ignores every event.
pub fn silent(_: &TransferEvent) {}

/// Awaits `fut`, calling `tick` every [`TICK`] until it completes.
pub(crate) async fn with_ticks<F: Future>(fut: F, mut tick: impl FnMut()) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            out = &mut fut => return out,
            _ = interval.tick() => tick(),
        }
    }
}
