//! Sigstore signing and verification: identity tokens, keyless and key-pair
//! signatures, bundle verification against a trust root and an identity
//! policy.

pub mod keys;
