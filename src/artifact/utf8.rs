//! Streaming UTF-8 validation: chunks arrive at arbitrary boundaries, so a
//! multi-byte character may be split; at most 3 bytes are carried over.

#[derive(Debug, Default)]
pub struct Utf8Validator {
    carry: Vec<u8>,
    offset: u64,
    error: Option<Utf8Problem>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Utf8Problem {
    /// Invalid UTF-8 at this byte offset.
    Invalid(u64),
    /// A NUL byte at this offset (valid UTF-8, but PostgreSQL cannot take it).
    Nul(u64),
}

impl Utf8Validator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn feed(&mut self, mut data: &[u8]) {
        if self.error.is_some() {
            return;
        }
        // Finish a character split across the previous chunk boundary.
        while !self.carry.is_empty() && !data.is_empty() {
            self.carry.push(data[0]);
            data = &data[1..];
            match std::str::from_utf8(&self.carry) {
                Ok(_) => {
                    self.offset += self.carry.len() as u64;
                    self.carry.clear();
                }
                Err(e) if e.error_len().is_some() || self.carry.len() >= 4 => {
                    self.error = Some(Utf8Problem::Invalid(self.offset));
                    return;
                }
                Err(_) => {}
            }
        }
        if data.is_empty() {
            return;
        }
        if let Some(pos) = memchr_nul(data) {
            // Validate the prefix first so an earlier invalid byte is reported first.
            if let Err(e) = std::str::from_utf8(&data[..pos]) {
                self.error = Some(Utf8Problem::Invalid(self.offset + e.valid_up_to() as u64));
            } else {
                self.error = Some(Utf8Problem::Nul(self.offset + pos as u64));
            }
            return;
        }
        match std::str::from_utf8(data) {
            Ok(_) => self.offset += data.len() as u64,
            Err(e) => match e.error_len() {
                Some(_) => {
                    self.error = Some(Utf8Problem::Invalid(self.offset + e.valid_up_to() as u64))
                }
                None => {
                    self.offset += e.valid_up_to() as u64;
                    self.carry.extend_from_slice(&data[e.valid_up_to()..]);
                }
            },
        }
    }

    /// Call at end of input: a dangling partial character is invalid.
    pub fn finish(self) -> Result<(), Utf8Problem> {
        match self.error {
            Some(p) => Err(p),
            None if !self.carry.is_empty() => Err(Utf8Problem::Invalid(self.offset)),
            None => Ok(()),
        }
    }
}

/// `contains` on a byte slice is the standard library's word-at-a-time
/// search, many times faster than a byte loop on the (almost always NUL-free)
/// text; the byte loop only runs to place a NUL that is there.
fn memchr_nul(data: &[u8]) -> Option<usize> {
    if !data.contains(&0) {
        return None;
    }
    data.iter().position(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_chunked(data: &[u8], chunk: usize) -> Result<(), Utf8Problem> {
        let mut v = Utf8Validator::new();
        for c in data.chunks(chunk) {
            v.feed(c);
        }
        v.finish()
    }

    #[test]
    fn valid_text_split_anywhere_is_valid() {
        let text = "café — ünïcødé 🚀 SELECT 'ok';".repeat(5);
        for chunk in 1..9 {
            assert_eq!(
                check_chunked(text.as_bytes(), chunk),
                Ok(()),
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn invalid_bytes_report_their_offset() {
        let mut data = b"SELECT 1;".to_vec();
        data.push(0xff);
        for chunk in 1..5 {
            assert_eq!(
                check_chunked(&data, chunk),
                Err(Utf8Problem::Invalid(9)),
                "chunk {chunk}"
            );
        }
        // Truncated multi-byte character at end of input.
        assert_eq!(
            check_chunked(&"é".as_bytes()[..1], 1),
            Err(Utf8Problem::Invalid(0))
        );
        // Latin-1 é (0xE9) followed by ASCII.
        assert_eq!(check_chunked(b"caf\xe9 x", 2), Err(Utf8Problem::Invalid(3)));
    }

    #[test]
    fn nul_is_refused() {
        assert_eq!(check_chunked(b"ab\0c", 64), Err(Utf8Problem::Nul(2)));
    }
}
