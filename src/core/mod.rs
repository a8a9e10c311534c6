//! Core domain types shared by every layer: versions, digests, the squizzle
//! manifest, the OCI documents, path rules, exit codes and secret redaction.
//!
//! This layer does no I/O and knows nothing of the CLI, the database or the
//! network; everything above depends on it, it depends on nothing above.

pub mod digest;
pub mod duration;
pub mod env;
pub mod errors;
pub mod exit;
pub mod ident;
pub mod manifest;
pub mod oci;
pub mod paths;
pub mod policy;
pub mod redact;
pub mod url;
pub mod version;

pub use digest::Digest;
pub use exit::ExitCode;
pub use manifest::Manifest;
pub use version::Version;
