//! Just enough DER to write X.509 certificates and read back the parts the
//! services need (SubjectPublicKeyInfo, a CSR's signed body).

/// A tag-length-value with `content`.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

pub fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

pub fn set(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x31, &parts.concat())
}

/// A non-negative INTEGER from big-endian magnitude bytes.
pub fn uint(bytes: &[u8]) -> Vec<u8> {
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    let mut v = bytes[skip.min(bytes.len().saturating_sub(1))..].to_vec();
    if v.is_empty() {
        v.push(0);
    }
    if v[0] & 0x80 != 0 {
        v.insert(0, 0);
    }
    tlv(0x02, &v)
}

pub fn small_uint(n: u64) -> Vec<u8> {
    uint(&n.to_be_bytes())
}

pub fn boolean(b: bool) -> Vec<u8> {
    tlv(0x01, &[if b { 0xff } else { 0 }])
}

pub fn oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted.split('.').map(|a| a.parse().unwrap()).collect();
    let mut body = Vec::new();
    let mut push = |mut v: u64| {
        let mut tmp = vec![(v & 0x7f) as u8];
        v >>= 7;
        while v > 0 {
            tmp.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        tmp.reverse();
        body.extend_from_slice(&tmp);
    };
    push(arcs[0] * 40 + arcs[1]);
    for a in &arcs[2..] {
        push(*a);
    }
    tlv(0x06, &body)
}

pub fn octets(b: &[u8]) -> Vec<u8> {
    tlv(0x04, b)
}

/// A BIT STRING with no unused bits.
pub fn bits(b: &[u8]) -> Vec<u8> {
    let mut v = vec![0];
    v.extend_from_slice(b);
    tlv(0x03, &v)
}

pub fn utf8(s: &str) -> Vec<u8> {
    tlv(0x0c, s.as_bytes())
}

/// Context-specific constructed `[n]` (EXPLICIT) around `content`.
pub fn explicit(n: u8, content: &[u8]) -> Vec<u8> {
    tlv(0xa0 | n, content)
}

/// X.509 Time: UTCTime before 2050, GeneralizedTime from 2050 on.
pub fn time(unix: i64) -> Vec<u8> {
    let t = ::time::OffsetDateTime::from_unix_timestamp(unix).expect("valid time");
    let (y, mo, d) = (t.year(), t.month() as u8, t.day());
    let (h, mi, s) = (t.hour(), t.minute(), t.second());
    if (1950..2050).contains(&y) {
        let txt = format!("{:02}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z", y % 100);
        tlv(0x17, txt.as_bytes())
    } else {
        let txt = format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z");
        tlv(0x18, txt.as_bytes())
    }
}

/// One element read from DER: its tag, its content, and the whole TLV.
#[derive(Clone, Copy, Debug)]
pub struct Elem<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub raw: &'a [u8],
}

/// Read the first element of `input`, returning it and the rest.
pub fn read(input: &[u8]) -> Result<(Elem<'_>, &[u8]), String> {
    let tag = *input.first().ok_or("DER: empty input")?;
    let first = *input.get(1).ok_or("DER: truncated length")?;
    let (len, hdr) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return Err("DER: bad length".into());
        }
        let bytes = input.get(2..2 + n).ok_or("DER: truncated length")?;
        (
            bytes.iter().fold(0usize, |a, b| (a << 8) | *b as usize),
            2 + n,
        )
    };
    let end = hdr.checked_add(len).ok_or("DER: overflow")?;
    if input.len() < end {
        return Err("DER: truncated content".into());
    }
    Ok((
        Elem {
            tag,
            content: &input[hdr..end],
            raw: &input[..end],
        },
        &input[end..],
    ))
}

/// The elements inside a constructed element's content.
pub fn children(content: &[u8]) -> Result<Vec<Elem<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = content;
    while !rest.is_empty() {
        let (e, r) = read(rest)?;
        out.push(e);
        rest = r;
    }
    Ok(out)
}

/// Parse a whole input that must be exactly one element.
pub fn parse_one(input: &[u8]) -> Result<Elem<'_>, String> {
    let (e, rest) = read(input)?;
    if !rest.is_empty() {
        return Err("DER: trailing data".into());
    }
    Ok(e)
}

/// The TBSCertificate element of a certificate.
pub fn cert_tbs(cert: &[u8]) -> Result<Elem<'_>, String> {
    let c = parse_one(cert)?;
    Ok(children(c.content)?.first().copied().ok_or("no TBS")?)
}

/// The DER SubjectPublicKeyInfo of a certificate.
pub fn cert_spki(cert: &[u8]) -> Result<Vec<u8>, String> {
    let tbs = cert_tbs(cert)?;
    let fields = children(tbs.content)?;
    // [0] version, serial, signature, issuer, validity, subject, spki
    let offset = usize::from(fields.first().map(|f| f.tag) == Some(0xa0));
    fields
        .get(5 + offset)
        .map(|e| e.raw.to_vec())
        .ok_or_else(|| "certificate has no SubjectPublicKeyInfo".into())
}

/// PEM armour, wrapped at 64 columns, LF line endings.
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The DER inside the first PEM block with `label` (any line endings).
pub fn from_pem(text: &str, label: &str) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin).ok_or_else(|| format!("no {begin}"))? + begin.len();
    let stop = text[start..]
        .find(&end)
        .ok_or_else(|| format!("no {end}"))?
        + start;
    let b64: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("PEM base64: {e}"))
}

/// GeneralizedTime (seconds, `Z`), as RFC 3161 `genTime` requires.
pub fn generalized_time(unix: i64) -> Vec<u8> {
    let t = ::time::OffsetDateTime::from_unix_timestamp(unix).expect("valid time");
    let txt = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    tlv(0x18, txt.as_bytes())
}

/// A DER SET OF: elements sorted by their encodings.
pub fn set_of(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut sorted = parts.to_vec();
    sorted.sort();
    tlv(0x31, &sorted.concat())
}
