//! Release versions: semantic versions that are also valid OCI tags.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A release version. It is a SemVer 2.0 version without build metadata, because
/// `+` is not allowed in an OCI tag and the version *is* the tag. A leading `v`
/// (as in git tags like `v1.2.0`) is accepted on input and dropped.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version(semver::Version);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VersionError {
    #[error(
        "{input:?} is not a semantic version ({reason}); expected MAJOR.MINOR.PATCH, optionally with a pre-release such as 1.2.0-rc.1"
    )]
    Invalid { input: String, reason: String },
    #[error(
        "{0:?} has build metadata (+...), which cannot be part of an OCI tag; use a pre-release such as -rc.1 instead"
    )]
    BuildMetadata(String),
}

impl Version {
    pub fn parse(input: &str) -> Result<Self, VersionError> {
        let trimmed = input.strip_prefix('v').unwrap_or(input);
        let v = semver::Version::parse(trimmed).map_err(|e| VersionError::Invalid {
            input: input.to_owned(),
            reason: e.to_string(),
        })?;
        if !v.build.is_empty() {
            return Err(VersionError::BuildMetadata(input.to_owned()));
        }
        Ok(Self(v))
    }

    /// The OCI tag this version is stored under.
    pub fn tag(&self) -> String {
        self.0.to_string()
    }

    pub fn semver(&self) -> &semver::Version {
        &self.0
    }
}

impl FromStr for Version {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({})", self.0)
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        // Stored documents must already be canonical: no `v` prefix there.
        if s.starts_with('v') {
            return Err(serde::de::Error::custom(format!(
                "version {s:?} must not start with 'v' in a manifest"
            )));
        }
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_semver_and_strips_leading_v() {
        assert_eq!(Version::parse("1.2.3").unwrap().tag(), "1.2.3");
        assert_eq!(Version::parse("v1.2.3-rc.1").unwrap().tag(), "1.2.3-rc.1");
    }

    #[test]
    fn refuses_non_semver_and_build_metadata() {
        for bad in ["1.2", "latest", "", "1.2.3.4", "01.2.3", "v", "1.2.3 "] {
            assert!(
                matches!(Version::parse(bad), Err(VersionError::Invalid { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            Version::parse("1.2.3+build.5"),
            Err(VersionError::BuildMetadata(_))
        ));
    }

    #[test]
    fn orders_by_semver_precedence() {
        let mut v: Vec<Version> = ["1.10.0", "1.2.0", "1.2.0-rc.1", "0.9.9"]
            .iter()
            .map(|s| Version::parse(s).unwrap())
            .collect();
        v.sort();
        let tags: Vec<String> = v.iter().map(Version::tag).collect();
        assert_eq!(tags, ["0.9.9", "1.2.0-rc.1", "1.2.0", "1.10.0"]);
    }
}
