//! The harness of squizzle's integration tests (`tests/main.rs`), written once
//! and linked once: every test module imports what it needs from here.
//!
//! - [`World`] (in `world`): one isolated temporary project per test, and the
//!   real `squizzle` binary run inside it with a clean environment.
//! - [`pg`]: throwaway PostgreSQL servers (one shared per test process, or one
//!   per test) and a database per test.
//! - [`pgbouncer`]: a PgBouncer in front of a harness PostgreSQL, in
//!   transaction or session pooling mode.
//! - [`registry`]: throwaway CNCF distribution registries (anonymous, basic or
//!   token auth) and a small HTTP client to cross-check what was pushed.
//! - [`ci`]: a release built, signed keyless and pushed, as CI leaves it.
//! - [`fake_registry`]: a scripted registry that lies, for hostile answers.
//! - [`fault_proxy`]: a TCP proxy that injects faults in front of a registry.
//! - [`file_server`]: a static file server standing in for a release page.
//! - [`tls`]: throwaway certificate authorities and a rustls connector.
//! - [`sigstore`]: loopback Sigstore services (OIDC issuer, Fulcio, Rekor,
//!   TSA) and their trust material.
//! - [`process`]: the one spawner every long-running server is started from.
//!
//! Servers listen on 127.0.0.1 only, and every process the harness starts
//! ends with the test process. Nothing here asserts behaviour of squizzle:
//! that is the tests' job.

pub mod ci;
pub mod fake_registry;
pub mod fault_proxy;
pub mod file_server;
pub mod pg;
pub mod pgbouncer;
pub mod process;
pub mod registry;
pub mod sigstore;
pub mod tls;
mod world;

pub use world::{
    DOKPLOY_MIGRATIONS, DRIZZLE_CONFIG, PLAIN_CONFIG, Run, World, copy_dir, dokploy_fixture,
    repo_root, squizzle_bin,
};
