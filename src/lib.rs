//! squizzle: database migrations as signed, verifiable OCI release artifacts.
//!
//! Layers, top to bottom (arrows point down only):
//! - [`cli`]: argument parsing and printing; the only layer that writes to the terminal.
//! - [`ops`]: one operation per command (build, verify, list, init), orchestrating
//!   the capabilities below.
//! - capabilities that know nothing of each other: [`artifact`] (collecting,
//!   packing and safely unpacking migration files), [`store`] (OCI storage),
//!   [`config`] (reading `squizzle.toml`).
//! - [`core`]: domain types with no I/O.
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
