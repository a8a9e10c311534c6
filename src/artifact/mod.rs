//! Migration files as an artifact: finding them in order ([`collect`]), reading
//! their directives ([`directive`]), packing them into a deterministic tarball
//! ([`pack`]) and reading tarballs back without trusting them ([`unpack`]).
//!
//! This layer works on files and byte streams only; it knows nothing of OCI,
//! registries, signatures or databases.

pub mod collect;
pub mod directive;
pub mod pack;
pub mod unpack;
pub mod utf8;
