//! A release as every reader sees it: resolved from the local store and
//! digest-checked (`resolve`), its evidence (signatures, provenance,
//! revocations: `evidence`, signed by `attest`), its verification (`verify`,
//! `provenance`), and how it gets into the store (`fetch`), which hands out
//! one `VerifiedRelease`.

pub mod attest;
pub mod evidence;
pub mod fetch;
pub mod provenance;
pub mod resolve;
pub mod verify;
pub mod vet;

use crate::artifact::unpack::Limits;
use crate::config::Config;

/// Tarball safety limits, from config with the unpacker's defaults.
pub fn limits(config: &Config) -> Limits {
    let d = Limits::default();
    let l = &config.limits;
    Limits {
        max_entries: l.max_entries.unwrap_or(d.max_entries),
        max_entry_bytes: l.max_entry_bytes.unwrap_or(d.max_entry_bytes),
        max_total_bytes: l.max_total_bytes.unwrap_or(d.max_total_bytes),
        max_ratio: l.max_ratio.unwrap_or(d.max_ratio),
        ..d
    }
}
