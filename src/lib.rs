//! squizzle: database migrations as signed, verifiable OCI release artifacts.
//!
//! Layers, top to bottom (arrows point down only):
//! - [`cli`]: argument parsing and printing; the only layer that writes to the terminal.
//! - [`ops`]: one operation per command (init, build, sign, keygen, verify,
//!   list, push, pull, apply, status, baseline, rollback, revoke, audit),
//!   orchestrating the capabilities below through shared rooms (`host`,
//!   `registry`, `release`, `run`); commands never import each other.
//! - capabilities that know nothing of each other: [`artifact`] (collecting,
//!   packing and safely unpacking migration files), [`store`] (the OCI layout
//!   on disk and registries, behind one `Target` trait), [`config`] (reading
//!   `squizzle.toml`), [`db`] (PostgreSQL connection, history, lock, SQL
//!   splitting), [`signing`] (Sigstore keyless and key-pair signatures).
//! - [`core`]: domain types with no I/O, the `Env` snapshot and signer rules.
//!
//! See `ARCHITECTURE.md` for the map and the invariants.

pub mod artifact;
pub mod cli;
pub mod config;
pub mod core;
pub mod db;
pub mod ops;
pub mod signing;
pub mod store;
