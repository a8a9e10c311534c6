//! The squizzle manifest: the OCI config blob that describes a release.
//!
//! Format v1 is a stable, public contract (`schemas/manifest.v1.schema.json`). It is
//! serialized canonically (struct field order, compact, no trailing newline) so the
//! same release always has the same bytes and therefore the same digest. Adding an
//! optional field is allowed; renaming or reinterpreting one is a new format version.

use std::collections::{BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

use crate::core::digest::Digest;
use crate::core::paths;
use crate::core::version::Version;

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.squizzle.manifest.v1+json";
pub const SCHEMA_VERSION: u32 = 1;

/// The largest manifest squizzle will parse. A 10,000-file release is ~3 MB.
pub const MAX_MANIFEST_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    pub schema_version: u32,
    pub media_type: String,
    pub version: Version,
    pub previous_version: Option<Version>,
    /// RFC 3339, UTC, second precision.
    pub created_at: String,
    pub notes: Option<String>,
    pub tool: Tool,
    pub source: Option<Source>,
    /// Where the files came from: `drizzle` (journal order) or `plain` (NNNN_ prefix).
    pub format: SourceFormat,
    pub tarball: Tarball,
    pub files: Vec<FileEntry>,
    /// What this release was compared with when it was built, and the signed
    /// allowances for released migrations it changes. Absent in manifests
    /// written before squizzle checked history at build time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<Lineage>,
}

/// The history check `build` ran: which earlier release the migrations were
/// compared with (or why none was), and what was let through on purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Lineage {
    /// The release compared with; `None` when there was none to compare with.
    pub previous: Option<PreviousRelease>,
    /// Why nothing was compared, when `previous` is `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unchecked: Option<String>,
    /// Changes to released migrations, and new migrations placed before
    /// released ones, that the build was told to accept, each with its reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowances: Vec<Allowance>,
    /// What the SQL of the migrations new or edited since `previous` does
    /// (all migrations when there is none), as `squizzle lint` reports it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<RecordedFinding>,
    /// The build analysed the SQL (an empty `findings` then means none were
    /// found). False in releases built before findings were recorded: a deny
    /// policy refuses those as not analysed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub analysed: bool,
    /// Findings the build was told to accept (`build --allow ID:FILE
    /// --reason`), each with its reason; a deny policy lets these through.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_findings: Vec<FindingAllowance>,
}

/// One finding id accepted in one file, signed with the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FindingAllowance {
    /// The finding's id, e.g. `drop-table`.
    pub id: String,
    /// The file, as the findings name it.
    pub path: String,
    /// `--reason`, as given.
    pub reason: String,
}

/// A finding about a migration's SQL, recorded at build (ids in docs/lint.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordedFinding {
    pub id: String,
    /// `destructive`, `blocking`, `incompatible`, `concurrency` or `notAnalysed`.
    pub category: String,
    pub path: String,
    pub line: u64,
    pub message: String,
}

/// Where the release a build compared with came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PreviousSource {
    /// The local store (`project.store`).
    Store,
    /// The configured registry (pulled into the store, digests checked).
    Registry,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreviousRelease {
    pub version: Version,
    /// Digest of its OCI manifest: which release of that version it was.
    pub digest: Digest,
    pub found_in: PreviousSource,
    /// It was named with `--previous` rather than found as the newest older one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub named: bool,
}

/// How a released migration differs in a new build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChangeKind {
    /// Same id, other content.
    Edited,
    /// Its id and its content are gone.
    Removed,
    /// Its content is back under another id (apply would run it again).
    Renamed,
    /// Same id and content, another place in the order.
    Moved,
    /// A new migration ordered before a released one.
    OutOfOrder,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Edited => "edited",
            ChangeKind::Removed => "removed",
            ChangeKind::Renamed => "renamed",
            ChangeKind::Moved => "moved",
            ChangeKind::OutOfOrder => "out of order",
        }
    }
}

/// One change the build let through, recorded (and signed with the manifest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Allowance {
    pub kind: ChangeKind,
    /// The migration's id: the released one, or the new one for `outOfOrder`.
    pub id: String,
    /// Where the released file was, and its hash (absent for `outOfOrder`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_sha256: Option<Digest>,
    /// The file in this release (absent for `removed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Digest>,
    /// `--reason`, as given.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Source {
    pub repository: Option<String>,
    pub revision: Option<String>,
}

/// The layout the migrations were read from, which decides their order and how
/// their files are split into statements. Values are only ever added; a reader
/// older than a value refuses the manifest as not format v1 (it cannot know
/// how to run the files), which is the safe side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceFormat {
    Drizzle,
    Plain,
    Prisma,
    Flyway,
    Sqlx,
    GolangMigrate,
    Dbmate,
    Atlas,
}

impl SourceFormat {
    /// The name in the manifest and in `project.format`.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceFormat::Drizzle => "drizzle",
            SourceFormat::Plain => "plain",
            SourceFormat::Prisma => "prisma",
            SourceFormat::Flyway => "flyway",
            SourceFormat::Sqlx => "sqlx",
            SourceFormat::GolangMigrate => "golang-migrate",
            SourceFormat::Dbmate => "dbmate",
            SourceFormat::Atlas => "atlas",
        }
    }

    /// How the order was decided, for people.
    pub fn order_rule(self) -> &'static str {
        match self {
            SourceFormat::Drizzle => "drizzle-kit journal order",
            SourceFormat::Plain => "numbered files",
            SourceFormat::Prisma => "Prisma folder order",
            SourceFormat::Flyway => "Flyway version order",
            SourceFormat::Sqlx => "sqlx version order",
            SourceFormat::GolangMigrate => "golang-migrate version order",
            SourceFormat::Dbmate => "dbmate file-name order",
            SourceFormat::Atlas => "Atlas file-name order, atlas.sum verified",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tarball {
    pub name: String,
    pub sha256: Digest,
    pub size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Migration,
    Rollback,
    Seed,
}

impl FileKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Migration => "migration",
            FileKind::Rollback => "rollback",
            FileKind::Seed => "seed",
        }
    }
}

/// How a file relates to transactions when it is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransactionMode {
    /// Runs inside the transaction the apply mode chooses (release or file).
    Default,
    /// Opted out with `-- squizzle:no-transaction`: runs on its own, outside any
    /// transaction (CREATE INDEX CONCURRENTLY, ALTER TYPE ... ADD VALUE on old servers).
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileEntry {
    /// Stable identity of the migration across releases: the file name without
    /// `.sql` (and without `.up`/`.down`), e.g. `0001_initial`.
    pub id: String,
    /// Path inside the tarball, relative, `/`-separated, e.g. `drizzle/0001_initial.sql`.
    pub path: String,
    pub sha256: Digest,
    pub size: u64,
    pub kind: FileKind,
    pub transaction: TransactionMode,
    /// Position among the files of the same kind, from 0: run order for migrations
    /// and seeds; rollbacks run in reverse migration order regardless.
    pub order: u32,
    /// For a rollback: the `id` of the migration it undoes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_for: Option<String>,
}

impl Lineage {
    fn validate(&self, previous_version: Option<&Version>) -> Result<(), ManifestError> {
        let bad = |msg: String| Err(ManifestError::Invalid(msg));
        match (&self.previous, previous_version) {
            (Some(p), Some(v)) if &p.version != v => {
                return bad(format!(
                    "lineage.previous is {} but previousVersion is {v}",
                    p.version
                ));
            }
            (Some(p), None) => {
                return bad(format!(
                    "lineage.previous is {} but previousVersion is null",
                    p.version
                ));
            }
            (None, _)
                if self
                    .unchecked
                    .as_deref()
                    .is_none_or(|u| u.trim().is_empty()) =>
            {
                return bad("lineage has neither a previous release nor a reason why not".into());
            }
            _ => {}
        }
        for a in &self.allowed_findings {
            if a.reason.trim().is_empty() {
                return bad(format!(
                    "the allowance for {} in {} has no reason",
                    a.id, a.path
                ));
            }
            if !self
                .findings
                .iter()
                .any(|f| f.id == a.id && f.path == a.path)
            {
                return bad(format!(
                    "the allowance for {} in {} matches no recorded finding",
                    a.id, a.path
                ));
            }
        }
        for a in &self.allowances {
            if a.reason.trim().is_empty() {
                return bad(format!("the allowance for {} has no reason", a.id));
            }
            if a.id.is_empty() || a.id.contains('/') || a.id.chars().any(char::is_control) {
                return bad(format!("allowance id {:?} is not a plain name", a.id));
            }
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("manifest is not valid JSON for format v1: {0}")]
    Parse(String),
    #[error("manifest is larger than {MAX_MANIFEST_BYTES} bytes")]
    TooLarge,
    #[error("manifest is invalid: {0}")]
    Invalid(String),
}

impl Manifest {
    /// Canonical bytes: these are hashed and stored as the OCI config blob.
    pub fn to_canonical_json(&self) -> Vec<u8> {
        // Serializing plain structs with string/number fields cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses and validates untrusted bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ManifestError> {
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge);
        }
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Parse(e.to_string()))?;
        m.validate()?;
        Ok(m)
    }

    pub fn migrations(&self) -> impl Iterator<Item = &FileEntry> {
        self.files.iter().filter(|f| f.kind == FileKind::Migration)
    }

    pub fn file(&self, path: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.path == path)
    }

    /// Structural rules the JSON Schema cannot express on its own.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let bad = |msg: String| Err(ManifestError::Invalid(msg));
        if self.schema_version != SCHEMA_VERSION {
            return bad(format!(
                "schemaVersion {} is not supported (this squizzle reads {SCHEMA_VERSION}); upgrade squizzle",
                self.schema_version
            ));
        }
        if self.media_type != MANIFEST_MEDIA_TYPE {
            return bad(format!(
                "mediaType {:?}, expected {MANIFEST_MEDIA_TYPE:?}",
                self.media_type
            ));
        }
        if time::OffsetDateTime::parse(
            &self.created_at,
            &time::format_description::well_known::Rfc3339,
        )
        .is_err()
        {
            return bad(format!(
                "createdAt {:?} is not an RFC 3339 timestamp",
                self.created_at
            ));
        }
        if let Some(prev) = &self.previous_version
            && prev >= &self.version
        {
            return bad(format!(
                "previousVersion {prev} is not older than version {}",
                self.version
            ));
        }
        if self.files.iter().all(|f| f.kind != FileKind::Migration) {
            return bad("it lists no migration".into());
        }
        let mut paths = HashSet::new();
        let mut ids: [HashSet<&str>; 3] = Default::default();
        let mut orders: [BTreeSet<u32>; 3] = Default::default();
        for f in &self.files {
            if let Err(e) = paths::validate_relative(&f.path) {
                return bad(format!("file path {:?}: {e}", f.path));
            }
            if !paths.insert(f.path.as_str()) {
                return bad(format!("file path {:?} is listed twice", f.path));
            }
            if f.id.is_empty() || f.id.contains('/') || f.id.chars().any(char::is_control) {
                return bad(format!("file id {:?} is not a plain name", f.id));
            }
            let k = f.kind as usize;
            if !ids[k].insert(f.id.as_str()) {
                return bad(format!("{} id {:?} is listed twice", f.kind.as_str(), f.id));
            }
            if !orders[k].insert(f.order) {
                return bad(format!(
                    "{} order {} is used twice",
                    f.kind.as_str(),
                    f.order
                ));
            }
            match (f.kind, &f.rollback_for) {
                (FileKind::Rollback, None) => {
                    return bad(format!(
                        "rollback {:?} does not say which migration it undoes",
                        f.path
                    ));
                }
                (FileKind::Migration | FileKind::Seed, Some(_)) => {
                    return bad(format!(
                        "{} {:?} has rollbackFor, which only rollbacks may have",
                        f.kind.as_str(),
                        f.path
                    ));
                }
                _ => {}
            }
        }
        if let Some(lineage) = &self.lineage {
            lineage.validate(self.previous_version.as_ref())?;
        }
        for (k, set) in orders.iter().enumerate() {
            if let Some(max) = set.last()
                && *max as usize + 1 != set.len()
            {
                return bad(format!(
                    "the order numbers of kind #{k} are not contiguous from 0"
                ));
            }
        }
        for f in &self.files {
            if let Some(target) = &f.rollback_for
                && !ids[FileKind::Migration as usize].contains(target.as_str())
            {
                return bad(format!(
                    "rollback {:?} undoes {target:?}, which is not a migration of this release",
                    f.path
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(previous: Option<&str>, lineage: Option<serde_json::Value>) -> Vec<u8> {
        let mut m = serde_json::json!({
            "schemaVersion": 1,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "version": "1.1.0",
            "previousVersion": previous,
            "createdAt": "2026-01-01T00:00:00Z",
            "notes": null,
            "tool": {"name": "squizzle", "version": "0"},
            "source": null,
            "format": "plain",
            "tarball": {"name": "squizzle-1.1.0.tar.gz", "sha256": Digest::of(b"t").to_string(), "size": 1},
            "files": [{"id": "0001_a", "path": "m/0001_a.sql", "sha256": Digest::of(b"a").to_string(),
                       "size": 1, "kind": "migration", "transaction": "default", "order": 0}],
        });
        if let Some(l) = lineage {
            m["lineage"] = l;
        }
        serde_json::to_vec(&m).unwrap()
    }

    #[test]
    fn a_manifest_without_lineage_is_still_read_and_written_without_it() {
        let m = Manifest::from_json(&manifest(Some("1.0.0"), None)).unwrap();
        assert_eq!(m.lineage, None);
        assert!(
            !String::from_utf8(m.to_canonical_json())
                .unwrap()
                .contains("lineage")
        );
    }

    #[test]
    fn lineage_must_agree_with_previous_version_and_say_why_when_empty() {
        let digest = Digest::of(b"prev").to_string();
        let ok = serde_json::json!({
            "previous": {"version": "1.0.0", "digest": digest, "foundIn": "registry"},
            "allowances": [{"kind": "edited", "id": "0001_a", "reason": "typo"}],
        });
        let m = Manifest::from_json(&manifest(Some("1.0.0"), Some(ok))).unwrap();
        let l = m.lineage.clone().unwrap();
        assert_eq!(l.previous.unwrap().found_in, PreviousSource::Registry);
        assert_eq!(l.allowances[0].kind, ChangeKind::Edited);
        // Round trip: the bytes read are the bytes written.
        assert_eq!(Manifest::from_json(&m.to_canonical_json()).unwrap(), m);

        let bad = [
            (
                Some("0.9.0"),
                serde_json::json!({"previous": {"version": "1.0.0", "digest": digest, "foundIn": "store"}}),
                "previousVersion is 0.9.0",
            ),
            (
                None,
                serde_json::json!({"previous": {"version": "1.0.0", "digest": digest, "foundIn": "store"}}),
                "previousVersion is null",
            ),
            (
                None,
                serde_json::json!({"previous": null}),
                "neither a previous release nor a reason",
            ),
            (
                None,
                serde_json::json!({"previous": null, "unchecked": "first", "allowances": [{"kind": "removed", "id": "x", "reason": "  "}]}),
                "has no reason",
            ),
        ];
        for (prev, lineage, says) in bad {
            let e = Manifest::from_json(&manifest(prev, Some(lineage))).unwrap_err();
            assert!(e.to_string().contains(says), "{e}");
        }
        let unknown = serde_json::json!({"previous": null, "unchecked": "x", "extra": 1});
        assert!(Manifest::from_json(&manifest(None, Some(unknown))).is_err());
    }
}
