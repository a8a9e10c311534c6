//! `sign`: a signature statement over the release's digest, signed keylessly
//! or with a key, stored as a referrer of the release and beside its tarball.
//! The signing itself lives in `ops::release::attest`, shared with build and
//! revoke; this command is exactly that operation.

pub use crate::ops::release::attest::sign_release as sign;
