//! PEM files (RFC 7468) as key files really are: the first block is taken and
//! text around it is ignored (OpenSSL does the same, and `openssl pkcs12`
//! output starts with "Bag Attributes" lines); blanks around a line and any
//! line length are tolerated. Decoding and encoding are `pem-rfc7468`'s: this file
//! only finds the block and names what is wrong with it.

use pem_rfc7468::LineEnding;

use super::error::{KeyError, Result};

/// Key files are a few hundred bytes; anything far larger is not one.
const MAX_PEM_LEN: usize = 64 * 1024;
/// The line length RFC 7468 (strict) and OpenSSL write.
const BASE64_LINE: usize = 64;

/// The first PEM block of a file, not yet decoded.
pub(super) struct Block<'a> {
    label: &'a str,
    /// The lines between the boundaries, trimmed.
    body: Vec<&'a str>,
}

impl<'a> Block<'a> {
    /// Finds the first block of `text`. `what` and `expected` only word the
    /// error ("the public key is not PEM: expected `-----BEGIN PUBLIC KEY-----`").
    pub(super) fn find(text: &'a str, what: &'static str, expected: &'static str) -> Result<Self> {
        let not_pem = |detail: String| KeyError::NotPem {
            what,
            label: expected,
            detail,
        };
        if text.len() > MAX_PEM_LEN {
            return Err(not_pem("the file is larger than 64 KiB".into()));
        }
        let mut lines = text.lines().map(str::trim);
        let label = lines
            .find_map(|line| {
                line.strip_prefix("-----BEGIN ")
                    .and_then(|rest| rest.strip_suffix("-----"))
            })
            .ok_or_else(|| not_pem("no `-----BEGIN` line".into()))?;
        let end = format!("-----END {label}-----");
        let mut body = Vec::new();
        for line in lines {
            if line == end {
                return Ok(Self { label, body });
            }
            body.push(line);
        }
        Err(not_pem(format!("no `{end}` line")))
    }

    pub(super) fn label(&self) -> &'a str {
        self.label
    }

    /// Whether the block carries the `Proc-Type: 4,ENCRYPTED` header of
    /// OpenSSL's legacy (pre-PKCS#8) key encryption.
    pub(super) fn has_legacy_encryption(&self) -> bool {
        self.body.iter().any(|line| {
            line.split_once(':').is_some_and(|(name, value)| {
                name.trim() == "Proc-Type" && value.contains("ENCRYPTED")
            })
        })
    }

    /// The DER inside the block, decoded by `pem-rfc7468` (strict base64, no
    /// headers).
    pub(super) fn decode(&self, what: &'static str, expected: &'static str) -> Result<Vec<u8>> {
        let not_pem = |detail: &str| KeyError::NotPem {
            what,
            label: expected,
            detail: detail.to_owned(),
        };
        if self.body.iter().any(|line| line.contains(':')) {
            return Err(not_pem(
                "the block has headers, which key files of this kind never have",
            ));
        }
        // pem-rfc7468 reads only the 64-column layout; files reflowed by
        // other tools (`base64` wraps at 76) are re-wrapped first.
        let mut normalized = format!("-----BEGIN {}-----\n", self.label);
        for (i, c) in self.body.concat().chars().enumerate() {
            if i > 0 && i % BASE64_LINE == 0 {
                normalized.push('\n');
            }
            normalized.push(c);
        }
        normalized.push_str(&format!("\n-----END {}-----\n", self.label));
        let (_, der) = pem_rfc7468::decode_vec(normalized.as_bytes()).map_err(|e| match e {
            pem_rfc7468::Error::Base64(_) => not_pem("the body is not valid base64"),
            pem_rfc7468::Error::HeaderDisallowed => {
                not_pem("the block has headers, which key files of this kind never have")
            }
            other => not_pem(&format!("the block does not decode: {other}")),
        })?;
        if der.is_empty() {
            return Err(not_pem("the block is empty"));
        }
        Ok(der)
    }
}

/// `der` as a PEM block: base64 wrapped at 64 columns, `\n` line ends, a
/// final newline (the layout OpenSSL writes).
pub(super) fn encode(label: &'static str, der: &[u8]) -> String {
    // Invariant: every label passed here is one of the fixed RFC 7468 labels
    // of the key files, and key DER is far below any length limit, so
    // encoding cannot fail.
    pem_rfc7468::encode_string(label, LineEnding::LF, der)
        .expect("a fixed RFC 7468 label and a small DER always encode")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LABEL: &str = "PUBLIC KEY";

    fn decode(text: &str) -> Result<Vec<u8>> {
        Block::find(text, "key", LABEL)?.decode("key", LABEL)
    }

    #[test]
    fn round_trip_and_layout() {
        let der: Vec<u8> = (0..=255u8).collect();
        let pem = encode(LABEL, &der);
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(pem.ends_with("\n-----END PUBLIC KEY-----\n"));
        let body: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let (last, full) = body.split_last().unwrap();
        assert!(full.iter().all(|l| l.len() == 64));
        assert!(!last.is_empty() && last.len() <= 64);
        assert_eq!(decode(&pem).unwrap(), der);
    }

    #[test]
    fn tolerates_what_files_carry() {
        let der = vec![0x30, 0x03, 0x02, 0x01, 0x00];
        let pem = encode(LABEL, &der);
        // Text around the block, CRLF line ends, indentation.
        let wrapped = format!("Bag Attributes\n  friendlyName: x\n{pem}trailing words\n");
        assert_eq!(decode(&wrapped).unwrap(), der);
        assert_eq!(decode(&pem.replace('\n', "\r\n")).unwrap(), der);
        let indented: String = pem.lines().map(|l| format!("  {l}  \n")).collect();
        assert_eq!(decode(&indented).unwrap(), der);
        // Other line lengths.
        let long: Vec<u8> = (0..200u8).collect();
        let body: String = encode(LABEL, &long)
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        for width in [48, 76, body.len()] {
            let lines: Vec<&str> = body
                .as_bytes()
                .chunks(width)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect();
            let text = format!(
                "-----BEGIN {LABEL}-----\n{}\n-----END {LABEL}-----\n",
                lines.join("\n")
            );
            assert_eq!(decode(&text).unwrap(), long, "width {width}");
        }
    }

    #[test]
    fn hostile_blocks() {
        for text in [
            "",
            "hello",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
            "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n",
            "-----BEGIN PUBLIC KEY-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END PUBLIC KEY-----\n",
        ] {
            let e = decode(text).unwrap_err();
            assert!(matches!(e, KeyError::NotPem { .. }), "{text:?}: {e:?}");
        }
        let e = decode("-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n").unwrap_err();
        assert!(e.to_string().contains("base64"), "{e}");
        let huge = format!("{}{}", " ".repeat(MAX_PEM_LEN), encode(LABEL, &[1]));
        assert!(decode(&huge).unwrap_err().to_string().contains("64 KiB"));
    }

    #[test]
    fn legacy_headers_are_seen() {
        let legacy = "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00112233445566778899AABBCCDDEEFF\n\nMAA=\n-----END EC PRIVATE KEY-----\n";
        let block = Block::find(legacy, "key", LABEL).unwrap();
        assert_eq!(block.label(), "EC PRIVATE KEY");
        assert!(block.has_legacy_encryption());
        let plain = encode("EC PRIVATE KEY", &[0x30, 0x00]);
        assert!(
            !Block::find(&plain, "key", LABEL)
                .unwrap()
                .has_legacy_encryption()
        );
    }
}
