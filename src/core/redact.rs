//! Secret redaction: the one function every printer, error path and log line
//! goes through before text leaves the process.
//!
//! Two layers: (1) values registered as secrets at runtime (expanded `${VAR}`
//! values of secret config keys, `SQUIZZLE_REGISTRY_TOKEN`, the database URL's
//! password) are replaced wherever they appear, in any context; (2) patterns that
//! look like credentials (URL userinfo passwords, `password=`, `Authorization:`
//! headers, bearer tokens, JWTs) are masked even when nobody registered them.

use std::borrow::Cow;
use std::sync::{OnceLock, RwLock};

use regex::Regex;

pub const MASK: &str = "***";

/// Shorter values are not registered: masking "a" everywhere would destroy output
/// without protecting anything real.
const MIN_SECRET_LEN: usize = 4;

fn registry() -> &'static RwLock<Vec<String>> {
    static SECRETS: OnceLock<RwLock<Vec<String>>> = OnceLock::new();
    SECRETS.get_or_init(|| RwLock::new(Vec::new()))
}

/// Registers a secret value so that [`redact`] masks it everywhere from now on.
/// Also registers its percent-encoded form, as it appears inside URLs.
pub fn register_secret(value: &str) {
    if value.len() < MIN_SECRET_LEN {
        return;
    }
    let mut guard = match registry().write() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    for v in [value.to_owned(), percent_encode(value)] {
        if !guard.contains(&v) {
            guard.push(v);
        }
    }
    // Longest first, so a secret that contains another is masked whole.
    guard.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

struct Patterns {
    url_password: Regex,
    key_value: Regex,
    authorization: Regex,
    bearer: Regex,
    jwt: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    // The patterns are literals checked by the tests below; a failure to compile
    // would be a programming error caught by every test run.
    P.get_or_init(|| Patterns {
        url_password: Regex::new(r"(?i)([a-z][a-z0-9+.\-]*://[^/\s:@]*:)([^@\s/]*)@").expect("static regex"),
        key_value: Regex::new(
            // A credential field's name: a known word, perhaps after
            // `word_` qualifiers (`db_password`), never part of a path or a
            // hyphenated name (`acme/down-token` is a repository, not a key).
            r#"(?i)(^|[^\w/.\-])((?:[a-z0-9]+_)*(?:password|passwd|passphrase|secret|token|api_?key|pwd))(["']?\s*[=:]\s*)("[^"\n]*"?|'[^'\n]*'?|[^\s&;,"'}]+)"#,
        )
        .expect("static regex"),
        authorization: Regex::new(r"(?i)\b(authorization\s*:\s*)([a-z]+\s+)?[^\s,;]+").expect("static regex"),
        bearer: Regex::new(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=\-]{8,}").expect("static regex"),
        jwt: Regex::new(r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*").expect("static regex"),
    })
}

fn is_reference(v: &str) -> bool {
    v.strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// `word:` — a nested YAML key rather than a value.
fn is_yaml_key(v: &str) -> bool {
    v.strip_suffix(':').is_some_and(|k| {
        k.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    })
}

/// Masks every known secret and every credential-looking pattern in `text`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out: Cow<'_, str> = Cow::Borrowed(text);
    {
        let guard = match registry().read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        for secret in guard.iter() {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), MASK));
            }
        }
    }
    let p = patterns();
    fn replace<'a>(input: Cow<'a, str>, re: &Regex, rep: &str) -> Cow<'a, str> {
        match re.replace_all(&input, rep) {
            Cow::Borrowed(_) => input,
            Cow::Owned(s) => Cow::Owned(s),
        }
    }
    // `${1}` keeps the prefix (scheme://user:, key=, Authorization: ...).
    // A `${VAR}` reference names where a secret comes from; it is not one.
    if p.url_password.is_match(&out) {
        let replaced = p.url_password.replace_all(&out, |c: &regex::Captures<'_>| {
            if is_reference(&c[2]) {
                c[0].to_owned()
            } else {
                format!("{}{MASK}@", &c[1])
            }
        });
        out = Cow::Owned(replaced.into_owned());
    }
    // Keep the quotes of a quoted value so JSON stays JSON.
    if p.key_value.is_match(&out) {
        let replaced = p.key_value.replace_all(&out, |c: &regex::Captures<'_>| {
            let value = &c[4];
            if is_reference(value.trim_matches(|ch| ch == '"' || ch == '\'')) {
                return c[0].to_owned();
            }
            // `SIGSTORE_ID_TOKEN: aud: sigstore` (YAML in a hint): the word
            // after the field is the next key, not the field's value.
            if is_yaml_key(value) {
                return c[0].to_owned();
            }
            let quote = if value.starts_with('"') {
                "\""
            } else if value.starts_with('\'') {
                "'"
            } else {
                ""
            };
            format!("{}{}{}{quote}{MASK}{quote}", &c[1], &c[2], &c[3])
        });
        out = Cow::Owned(replaced.into_owned());
    }
    out = replace(out, &p.authorization, "${1}***");
    out = replace(out, &p.bearer, "${1}${2}***");
    out = replace(out, &p.jwt, MASK);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_name_before_a_colon_is_not_a_credential_field() {
        // The message of a wrong passphrase names the key file and the word
        // "passphrase"; none of it is a secret, all of it must stay readable.
        for text in [
            "squizzle.key: wrong passphrase",
            "squizzle.key: wrong passphrase or corrupted key: the private key could not be decrypted; set SQUIZZLE_KEY_PASSWORD to the passphrase used by `squizzle keygen`",
            "/srv/keys/release.key: wrong passphrase",
        ] {
            assert_eq!(redact(text), text);
        }
        // ... while real credential fields next to it are still masked.
        assert_eq!(
            redact("squizzle.key: passphrase: hunter2hunter2"),
            "squizzle.key: passphrase: ***"
        );
        assert_eq!(redact("api_key: sk_live_abcdef"), "api_key: ***");
        assert_eq!(
            redact("SQUIZZLE_KEY_PASSWORD=correct-horse-battery"),
            "SQUIZZLE_KEY_PASSWORD=***"
        );
    }

    #[test]
    fn masks_url_passwords_but_keeps_user_and_host() {
        assert_eq!(
            redact("connect postgres://app:s3cr%40t@db.example:5432/prod failed"),
            "connect postgres://app:***@db.example:5432/prod failed"
        );
        assert_eq!(redact("https://host/path?x=1"), "https://host/path?x=1");
    }

    #[test]
    fn masks_key_value_and_header_forms() {
        assert_eq!(
            redact("host=db password=hunter22 user=x"),
            "host=db password=*** user=x"
        );
        assert_eq!(redact(r#"{"token":"abc.def"}"#), r#"{"token":"***"}"#);
        assert_eq!(
            redact("postgres://h/db?sslmode=require&password=pw1"),
            "postgres://h/db?sslmode=require&password=***"
        );
        assert_eq!(
            redact("Authorization: Bearer abcdefghijkl"),
            "Authorization: ***"
        );
        assert_eq!(
            redact("got Bearer abcdefghijklmnop back"),
            "got Bearer *** back"
        );
        assert_eq!(
            redact("tok eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl end"),
            "tok *** end"
        );
    }

    #[test]
    fn masks_registered_secrets_in_any_context_including_percent_encoded() {
        register_secret("canary-Zq9/x@");
        assert_eq!(redact("value canary-Zq9/x@ here"), "value *** here");
        assert_eq!(
            redact("url user:canary-Zq9%2Fx%40 no at"),
            "url user:*** no at"
        );
        register_secret("ab"); // too short to register
        assert_eq!(redact("ab"), "ab");
    }

    #[test]
    fn masks_unterminated_quotes_and_prefixed_keys_but_not_references() {
        assert_eq!(
            redact(r#"6 | password = "unterminated-canary"#),
            r#"6 | password = "***""#
        );
        assert_eq!(
            redact(r#"db_password = "x1y2z3" x"#),
            r#"db_password = "***" x"#
        );
        assert_eq!(
            redact(r#"write `password = "${REGISTRY_PASSWORD}"`"#),
            r#"write `password = "${REGISTRY_PASSWORD}"`"#
        );
        assert_eq!(
            redact("postgres://USER:${DB_PW}@HOST/DB"),
            "postgres://USER:${DB_PW}@HOST/DB"
        );
    }

    #[test]
    fn names_that_merely_end_in_a_credential_word_are_left_alone() {
        assert_eq!(
            redact("pushed ghcr.io/acme/down-token: 1.0.0"),
            "pushed ghcr.io/acme/down-token: 1.0.0"
        );
        assert_eq!(redact("the auth-token: expired"), "the auth-token: expired");
        // Credential fields still are, with or without qualifiers.
        assert_eq!(redact("REG_PASSWORD=hunter22"), "REG_PASSWORD=***");
        assert_eq!(redact("refresh_token: abc123"), "refresh_token: ***");
        assert_eq!(redact("token: abc123"), "token: ***");
    }

    /// Issue 11 §3: repository and tag names are shown as they are, in the
    /// shapes `list`, `push` and JSON print them; every credential shape
    /// masked before still is.
    #[test]
    fn repository_names_with_credential_words_stay_readable() {
        for text in [
            "ghcr.io/acme/down-token: 1.0.0",
            "down-token: 1.0.0",
            "password-reset: 1.0.0, 1.1.0",
            "localhost:5000/acme/password-reset: 2.0.0",
            "registry.example/team/secret-rotation: 0.1.0",
            "acme/api-key-service: 3.0.0",
            r#"{"repository":"acme/down-token","tags":["1.0.0"]}"#,
            r#"{"repository":"password-reset"}"#,
            "pushed localhost:5000/acme/token-store:1.0.0",
            "✓ Pushed acme/down-token 1.0.0 sha256:0123456789ab",
        ] {
            assert_eq!(redact(text), text, "over-masked");
        }
        // Credential fields and values, in every shape masked before.
        for (text, masked) in [
            ("password=hunter22", "password=***"),
            ("password: hunter22", "password: ***"),
            ("token=abc123", "token=***"),
            ("db_password = \"x1y2z3\"", "db_password = \"***\""),
            (r#"{"password":"pw-canary"}"#, r#"{"password":"***"}"#),
            (r#"{"secret": "s-canary"}"#, r#"{"secret": "***"}"#),
            ("API_KEY=sk_live_1", "API_KEY=***"),
            ("apikey: sk_live_1", "apikey: ***"),
            ("passwd=pw1234", "passwd=***"),
            ("pwd=pw1234", "pwd=***"),
            (
                "https://user:pa55word@ghcr.io/acme/down-token",
                "https://user:***@ghcr.io/acme/down-token",
            ),
            ("Authorization: Basic dXNlcjpwYXNz", "Authorization: ***"),
        ] {
            assert_eq!(redact(text), masked, "{text}");
        }
        // squizzle's own hint about GitLab's YAML keeps its key names.
        let hint = "GitLab needs `id_tokens: SIGSTORE_ID_TOKEN: aud: sigstore`";
        assert_eq!(redact(hint), hint);
        assert_eq!(redact("password: s3cr:3t x"), "password: *** x");
        // A registered secret is masked even inside a name-like word.
        register_secret("zz-registered-canary-77");
        assert_eq!(
            redact("acme/zz-registered-canary-77: 1.0.0"),
            "acme/***: 1.0.0"
        );
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        let s = "✓ Verifying file checksums (4/4)... sha256:e3b0c44298fc";
        assert!(matches!(redact(s), Cow::Borrowed(_)));
    }
}
