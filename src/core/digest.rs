//! Content digests (`sha256:<hex>`) and streaming hashers.
//!
//! Every byte squizzle trusts is addressed by a SHA-256 digest. This module parses
//! digests strictly (only `sha256`, only 64 lowercase hex digits) so that a hostile
//! manifest cannot smuggle in an algorithm we do not check, and offers reader/writer
//! adapters that hash while data streams past, so no caller needs to buffer a blob.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use aws_lc_rs::digest::{self as lc, SHA256};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A SHA-256 digest, displayed and serialized as `sha256:<64 lowercase hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("digest {0:?} uses an unsupported algorithm; expected `sha256:<64 hex digits>`")]
    UnsupportedAlgorithm(String),
    #[error("digest {0:?} is malformed; expected `sha256:<64 lowercase hex digits>`")]
    Malformed(String),
}

impl Digest {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Digest of an in-memory byte slice (manifests, small JSON documents).
    pub fn of(data: &[u8]) -> Self {
        Self::from_lc(&lc::digest(&SHA256, data))
    }

    /// Parses a bare 64-digit lowercase hex string (as used in file names and
    /// in the squizzle manifest's per-file `sha256` field).
    pub fn from_hex(hex_str: &str) -> Result<Self, DigestError> {
        if hex_str.len() != 64
            || !hex_str
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DigestError::Malformed(hex_str.to_owned()));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_str, &mut out)
            .map_err(|_| DigestError::Malformed(hex_str.to_owned()))?;
        Ok(Self(out))
    }

    fn from_lc(d: &lc::Digest) -> Self {
        let mut out = [0u8; 32];
        // SHA-256 output is always 32 bytes.
        out.copy_from_slice(d.as_ref());
        Self(out)
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A short form for humans (`sha256:0123456789ab`), never for comparison.
    pub fn short(&self) -> String {
        format!("sha256:{}", &self.hex()[..12])
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some(("sha256", hex_part)) => {
                Self::from_hex(hex_part).map_err(|_| DigestError::Malformed(s.to_owned()))
            }
            Some((alg, _)) if !alg.is_empty() => {
                Err(DigestError::UnsupportedAlgorithm(s.to_owned()))
            }
            _ => Err(DigestError::Malformed(s.to_owned())),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Incremental SHA-256 that also counts bytes.
///
/// aws-lc-rs's SHA-256 (already the TLS stack's crypto library): on the
/// reference machine it is about 8% faster than `sha2` with its SHA-NI path
/// (both use the CPU's SHA instructions), and release content is hashed
/// twice over on every verify and pull, so it is the one used.
#[derive(Clone)]
pub struct Hasher {
    inner: lc::Context,
    len: u64,
}

impl Default for Hasher {
    fn default() -> Self {
        Self {
            inner: lc::Context::new(&SHA256),
            len: 0,
        }
    }
}

impl Hasher {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
        self.len += data.len() as u64;
    }
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn finish(self) -> Digest {
        Digest::from_lc(&self.inner.finish())
    }
}

/// Reader adapter: hashes everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Hasher::new(),
        }
    }
    pub fn bytes_read(&self) -> u64 {
        self.hasher.len()
    }
    /// Returns the inner reader, the digest and the byte count of what was read.
    pub fn finish(self) -> (R, Digest, u64) {
        let len = self.hasher.len();
        (self.inner, self.hasher.finish(), len)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Writer adapter: hashes everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Hasher::new(),
        }
    }
    pub fn finish(self) -> (W, Digest, u64) {
        let len = self.hasher.len();
        (self.inner, self.hasher.finish(), len)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn digest_of_empty_input_is_the_well_known_value() {
        assert_eq!(Digest::of(b"").hex(), EMPTY);
        assert_eq!(Hasher::new().finish().hex(), EMPTY);
    }

    #[test]
    fn parses_and_prints_round_trip() {
        let d: Digest = format!("sha256:{EMPTY}").parse().unwrap();
        assert_eq!(d.to_string(), format!("sha256:{EMPTY}"));
        assert_eq!(d.short(), "sha256:e3b0c44298fc");
    }

    #[test]
    fn refuses_other_algorithms_and_malformed_hex() {
        assert!(matches!(
            format!("sha512:{EMPTY}").parse::<Digest>(),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
        for bad in [
            EMPTY.to_string(),
            format!("sha256:{}", EMPTY.to_uppercase()),
            format!("sha256:{}", &EMPTY[..63]),
            format!("sha256:{EMPTY}0"),
            format!("sha256:{}g", &EMPTY[..63]),
            "sha256:".to_string(),
            ":abc".to_string(),
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn hashing_adapters_match_one_shot_digest() {
        let data = vec![7u8; 100_000];
        let mut r = HashingReader::new(&data[..]);
        io::copy(&mut r, &mut io::sink()).unwrap();
        let (_, d, n) = r.finish();
        assert_eq!((d, n), (Digest::of(&data), data.len() as u64));

        let mut w = HashingWriter::new(Vec::new());
        w.write_all(&data).unwrap();
        let (out, d, n) = w.finish();
        assert_eq!(out, data);
        assert_eq!((d, n), (Digest::of(&data), data.len() as u64));
    }
}
