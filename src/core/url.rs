//! Small, dependency-free helpers for the URL forms squizzle handles
//! (`postgres://user:pass@host/db`, git remotes): finding, decoding and
//! removing the credentials in a URL's userinfo. Never used to *build* URLs.

/// The authority part (`user:pass@host:port`) of `scheme://authority/...`.
fn authority(url: &str) -> Option<(usize, &str)> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some((start, &rest[..end]))
}

/// The password in the userinfo of `scheme://user:password@host/...`, still
/// percent-encoded as written.
pub fn userinfo_password(url: &str) -> Option<&str> {
    let (_, auth) = authority(url)?;
    let userinfo = &auth[..auth.rfind('@')?];
    userinfo.split_once(':').map(|(_, pw)| pw)
}

/// `scheme://host/...` without any `user[:password]@`.
pub fn strip_userinfo(url: &str) -> String {
    match authority(url) {
        Some((start, auth)) => match auth.rfind('@') {
            Some(at) => format!("{}{}", &url[..start], &url[start + at + 1..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Decodes `%XX` escapes; `None` for a malformed escape or non-UTF-8 result.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_strips_userinfo() {
        assert_eq!(
            userinfo_password("postgres://u:p%40ss@h:5/db?x=@"),
            Some("p%40ss")
        );
        assert_eq!(userinfo_password("postgres://u@h/db"), None);
        assert_eq!(userinfo_password("host=h password=x"), None);
        assert_eq!(
            strip_userinfo("https://user:tok@github.com/a/b.git"),
            "https://github.com/a/b.git"
        );
        assert_eq!(
            strip_userinfo("https://github.com/a/b.git"),
            "https://github.com/a/b.git"
        );
        assert_eq!(
            strip_userinfo("git@github.com:a/b.git"),
            "git@github.com:a/b.git"
        );
    }

    #[test]
    fn decodes_percent_escapes_and_refuses_broken_ones() {
        assert_eq!(
            percent_decode("%2Ftmp%2Fca.pem").as_deref(),
            Some("/tmp/ca.pem")
        );
        assert_eq!(percent_decode("plain").as_deref(), Some("plain"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%ff"), None);
    }
}
