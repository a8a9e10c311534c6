//! Who may sign: certificate identity and OIDC issuer rules.
//!
//! A rule pairs an identity matcher with an issuer matcher; each is an exact
//! string or a regular expression that must match the WHOLE value (it is
//! anchored here, so `https://github.com/acme/` can never accept
//! `https://github.com/acme/app/...` by prefix, nor `acme.evil` by suffix).
//! Both halves are required: an identity without an issuer would trust the
//! same name minted by any OIDC provider the CA accepts.

use regex::Regex;
use serde::Deserialize;

/// One accepted signer: the certificate identity (SAN) and the OIDC issuer,
/// each exact or a regular expression that must match the whole value.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SignerSpec {
    pub identity: Option<String>,
    pub identity_regexp: Option<String>,
    pub issuer: Option<String>,
    pub issuer_regexp: Option<String>,
}

/// One half of a rule.
#[derive(Debug, Clone)]
pub enum Matcher {
    Exact(String),
    Pattern(Regex),
}

impl Matcher {
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(e) => e == value,
            Matcher::Pattern(r) => r.is_match(value),
        }
    }

    fn pattern(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("the regular expression is empty".into());
        }
        Regex::new(&format!("^(?:{raw})$"))
            .map(Matcher::Pattern)
            .map_err(|e| format!("invalid regular expression {raw:?}: {e}"))
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Matcher::Exact(e) => write!(f, "{e}"),
            // Shown as written: strip the anchoring we added.
            Matcher::Pattern(r) => {
                let s = r.as_str();
                let inner = s
                    .strip_prefix("^(?:")
                    .and_then(|s| s.strip_suffix(")$"))
                    .unwrap_or(s);
                write!(f, "/{inner}/")
            }
        }
    }
}

/// An accepted keyless signer.
#[derive(Debug, Clone)]
pub struct SignerRule {
    pub identity: Matcher,
    pub issuer: Matcher,
}

impl SignerRule {
    /// Builds a rule from its config/CLI form: exactly one of
    /// identity/identity_regexp and exactly one of issuer/issuer_regexp.
    pub fn from_spec(s: &SignerSpec) -> Result<Self, String> {
        let identity = one_of(
            "identity",
            s.identity.as_deref(),
            "identity_regexp",
            s.identity_regexp.as_deref(),
        )?;
        let issuer = one_of(
            "issuer",
            s.issuer.as_deref(),
            "issuer_regexp",
            s.issuer_regexp.as_deref(),
        )?;
        Ok(SignerRule { identity, issuer })
    }

    pub fn matches(&self, identity: &str, issuer: &str) -> bool {
        self.identity.matches(identity) && self.issuer.matches(issuer)
    }
}

impl std::fmt::Display for SignerRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "identity {} from issuer {}", self.identity, self.issuer)
    }
}

fn one_of(
    exact_key: &str,
    exact: Option<&str>,
    pattern_key: &str,
    pattern: Option<&str>,
) -> Result<Matcher, String> {
    match (exact, pattern) {
        (Some(_), Some(_)) => Err(format!(
            "give either `{exact_key}` or `{pattern_key}`, not both"
        )),
        (None, None) => Err(format!(
            "`{exact_key}` (exact) or `{pattern_key}` (regular expression matching the whole value) is required"
        )),
        (Some(""), None) => Err(format!("`{exact_key}` is empty")),
        (Some(e), None) => Ok(Matcher::Exact(e.to_owned())),
        (None, Some(p)) => Matcher::pattern(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(identity_regexp: &str, issuer: &str) -> SignerRule {
        SignerRule::from_spec(&SignerSpec {
            identity_regexp: Some(identity_regexp.into()),
            issuer: Some(issuer.into()),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn patterns_match_the_whole_value_only() {
        let r = rule(
            r"https://github\.com/acme/app/\.github/workflows/release\.yml@refs/tags/v.*",
            "https://token.actions.githubusercontent.com",
        );
        let iss = "https://token.actions.githubusercontent.com";
        assert!(r.matches(
            "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.2.0",
            iss
        ));
        // A longer value that merely starts with a match is refused...
        assert!(!r.matches(
            "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main",
            iss
        ));
        let prefix = rule(r"https://github\.com/acme/", iss);
        assert!(!prefix.matches(
            "https://github.com/acme/evil/.github/workflows/x.yml@refs/heads/main",
            iss
        ));
        // ...and so is one that contains a match after a prefix.
        let r2 = rule(r"ci@acme\.com", iss);
        assert!(!r2.matches("evil-ci@acme.com", iss));
        assert!(!r2.matches("ci@acme.com.evil", iss));
        // Alternation cannot escape the anchors.
        let alt = rule("a|b", iss);
        assert!(alt.matches("a", iss) && alt.matches("b", iss) && !alt.matches("ab", iss));
        assert!(!r2.matches("ci@acme.com", "https://accounts.example"));
    }

    #[test]
    fn both_halves_are_required_and_exclusive() {
        let bad = |s: SignerSpec| SignerRule::from_spec(&s).unwrap_err();
        assert!(
            bad(SignerSpec {
                identity: Some("a".into()),
                ..Default::default()
            })
            .contains("issuer")
        );
        assert!(
            bad(SignerSpec {
                identity: Some("a".into()),
                identity_regexp: Some("a".into()),
                issuer: Some("i".into()),
                ..Default::default()
            })
            .contains("not both")
        );
        assert!(
            bad(SignerSpec {
                identity_regexp: Some("(".into()),
                issuer: Some("i".into()),
                ..Default::default()
            })
            .contains("invalid regular expression")
        );
    }
}
