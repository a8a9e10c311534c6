//! Deny policies and allowances over findings (issue 14, section 3).
//!
//! A policy is a list of categories (`destructive`, `blocking`,
//! `incompatible`, `concurrency`, `not-analysed`) or rule ids (`drop-table`).
//! `apply` refuses a release whose recorded findings a policy names, unless
//! the release carries an allowance (`build --allow ID:FILE --reason`) for
//! that id in that file; `lint --deny` fails a pull request on the same list.

use crate::core::manifest::{FindingAllowance, Lineage, RecordedFinding};
use crate::ops::{Error, Result};

use super::{Category, Finding};

/// The categories as a policy names them, and as the manifest records them.
const CATEGORIES: &[(&str, &str)] = &[
    ("destructive", "destructive"),
    ("blocking", "blocking"),
    ("incompatible", "incompatible"),
    ("concurrency", "concurrency"),
    ("not-analysed", "notAnalysed"),
];

fn category_name(c: Category) -> &'static str {
    match c {
        Category::Destructive => "destructive",
        Category::Blocking => "blocking",
        Category::Incompatible => "incompatible",
        Category::Concurrency => "concurrency",
        Category::NotAnalysed => "notAnalysed",
    }
}

/// A validated deny list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deny {
    /// Categories, as the manifest records them (`notAnalysed`).
    categories: Vec<&'static str>,
    ids: Vec<&'static str>,
    /// As written, for messages.
    pub entries: Vec<String>,
}

fn valid_names() -> String {
    let cats: Vec<&str> = CATEGORIES.iter().map(|(n, _)| *n).collect();
    let ids: Vec<&str> = super::ids().map(|(id, _)| id).collect();
    format!("categories: {}; ids: {}", cats.join(", "), ids.join(", "))
}

impl Deny {
    /// Validates `entries` (each may itself be a comma-separated list, as
    /// `SQUIZZLE_DENY` gives them); `source` names where they came from.
    /// An unknown name is a usage error (exit 2) listing the valid ones.
    pub fn parse<S: AsRef<str>>(entries: &[S], source: &str) -> Result<Deny> {
        let mut deny = Deny::default();
        for raw in entries.iter().flat_map(|e| e.as_ref().split(',')) {
            let name = raw.trim();
            if name.is_empty() {
                continue;
            }
            let lower = name.to_ascii_lowercase();
            if let Some((_, recorded)) = CATEGORIES
                .iter()
                .find(|(n, r)| *n == lower || r.eq_ignore_ascii_case(&lower))
            {
                if !deny.categories.contains(recorded) {
                    deny.categories.push(recorded);
                }
            } else if let Some((id, _)) = super::ids().find(|(id, _)| *id == lower) {
                if !deny.ids.contains(&id) {
                    deny.ids.push(id);
                }
            } else {
                return Err(Error::Usage(format!(
                    "{source}: {name:?} is neither a finding category nor a finding id ({}; docs/lint.md)",
                    valid_names()
                )));
            }
            if !deny.entries.contains(&lower) {
                deny.entries.push(lower);
            }
        }
        Ok(deny)
    }

    pub fn is_empty(&self) -> bool {
        self.categories.is_empty() && self.ids.is_empty()
    }

    /// Adds another list (a flag on top of the environment's).
    pub fn extend(&mut self, other: Deny) {
        for c in other.categories {
            if !self.categories.contains(&c) {
                self.categories.push(c);
            }
        }
        for i in other.ids {
            if !self.ids.contains(&i) {
                self.ids.push(i);
            }
        }
        for e in other.entries {
            if !self.entries.contains(&e) {
                self.entries.push(e);
            }
        }
    }

    /// Whether the policy names a finding with this id and category (as the
    /// manifest records it).
    pub fn names(&self, id: &str, category: &str) -> bool {
        self.ids.contains(&id) || self.categories.contains(&category)
    }

    /// The findings of `lint` this policy names.
    pub fn denied<'f>(&self, findings: &'f [Finding]) -> Vec<&'f Finding> {
        findings
            .iter()
            .filter(|f| self.names(f.id, category_name(f.category)))
            .collect()
    }
}

/// What a deny policy makes of a release's recorded findings.
#[derive(Debug, Clone)]
pub struct Judgement<'l> {
    /// Named by the policy and not allowed: the apply is refused.
    pub denied: Vec<&'l RecordedFinding>,
    /// Named by the policy and let through by an allowance in the release.
    pub allowed: Vec<(&'l RecordedFinding, &'l FindingAllowance)>,
}

/// Judges a release's lineage under `deny`. A release without recorded
/// analysis (built before findings were recorded) is refused as not
/// analysed: nothing says what its SQL does.
pub fn judge<'l>(
    lineage: Option<&'l Lineage>,
    deny: &Deny,
    release: &str,
) -> Result<Judgement<'l>> {
    let mut j = Judgement {
        denied: Vec::new(),
        allowed: Vec::new(),
    };
    if deny.is_empty() {
        return Ok(j);
    }
    let Some(lineage) = lineage.filter(|l| l.analysed) else {
        return Err(Error::Denied(format!(
            "{release} was built by a squizzle that did not record findings about its SQL, so the deny policy ({}) cannot be checked; nothing was run. Build the migrations as a new version with this squizzle (findings are recorded at build), or apply it where no deny policy is set",
            deny.entries.join(", ")
        )));
    };
    for f in &lineage.findings {
        if !deny.names(&f.id, &f.category) {
            continue;
        }
        match lineage
            .allowed_findings
            .iter()
            .find(|a| a.id == f.id && a.path == f.path)
        {
            Some(a) => j.allowed.push((f, a)),
            None => j.denied.push(f),
        }
    }
    Ok(j)
}

/// The refusal for denied findings (exit 9), each with file and line.
pub fn refusal(denied: &[&RecordedFinding], deny: &Deny, release: &str, env: &str) -> Error {
    let mut msg = format!(
        "{release} is refused by the deny policy of {env} ({}): {} finding{} it names, and the release carries no allowance for {}; nothing was run:",
        deny.entries.join(", "),
        denied.len(),
        if denied.len() == 1 { "" } else { "s" },
        if denied.len() == 1 { "it" } else { "them" },
    );
    let mut flags: Vec<String> = Vec::new();
    for f in denied {
        msg.push_str(&format!(
            "\n  {}:{}: {} [{}]",
            f.path, f.line, f.message, f.id
        ));
        let flag = format!("--allow {}:{}", f.id, f.path);
        if !flags.contains(&flag) {
            flags.push(flag);
        }
    }
    msg.push_str(&format!(
        "\nChange the migrations in a new version, or, if they are meant, build a new version with {} --reason \"...\" (recorded in the signed manifest)",
        flags.join(" ")
    ));
    Error::Denied(msg)
}

/// `--allow ID:FILE`, parsed: the id must be a finding id.
pub fn parse_allow(spec: &str) -> Result<(String, String)> {
    let Some((id, file)) = spec.split_once(':') else {
        return Err(Error::Usage(format!(
            "--allow {spec:?}: expected ID:FILE, e.g. --allow drop-table:migrations/0005_drop.sql"
        )));
    };
    let (id, file) = (id.trim().to_ascii_lowercase(), file.trim());
    if file.is_empty() {
        return Err(Error::Usage(format!(
            "--allow {spec:?}: the file is missing; expected ID:FILE"
        )));
    }
    if !super::ids().any(|(known, _)| known == id) {
        let ids: Vec<&str> = super::ids().map(|(id, _)| id).collect();
        return Err(Error::Usage(format!(
            "--allow {spec:?}: {id:?} is not a finding id (ids: {}; docs/lint.md)",
            ids.join(", ")
        )));
    }
    Ok((id, file.to_owned()))
}

/// The allowances `--allow` asks for, matched against the findings the
/// build recorded. FILE is the path the findings name or its file name. An
/// allowance that matches no finding is refused (exit 2): a typo must not
/// pass for a recorded decision.
pub fn allowances(
    specs: &[String],
    reason: Option<&str>,
    findings: &[RecordedFinding],
) -> Result<Vec<FindingAllowance>> {
    let mut out: Vec<FindingAllowance> = Vec::new();
    if specs.is_empty() {
        return Ok(out);
    }
    let reason = reason
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            Error::Usage(
                "--allow needs --reason \"...\": it is recorded in the signed manifest".into(),
            )
        })?;
    for spec in specs {
        let (id, file) = parse_allow(spec)?;
        let matching: Vec<&RecordedFinding> = findings
            .iter()
            .filter(|f| {
                f.id == id && (f.path == file || f.path.rsplit('/').next() == Some(file.as_str()))
            })
            .collect();
        let Some(first) = matching.first() else {
            let listed: Vec<String> = findings
                .iter()
                .map(|f| format!("{}:{}", f.id, f.path))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            return Err(Error::Usage(format!(
                "--allow {spec}: this release has no {id} finding in {file}; {}",
                if listed.is_empty() {
                    "it has no findings at all, so nothing needs allowing".to_owned()
                } else {
                    format!("its findings: {}", listed.join(", "))
                }
            )));
        };
        if matching.iter().any(|f| f.path != first.path) {
            return Err(Error::Usage(format!(
                "--allow {spec}: {file} names more than one file with {id} findings; give the path as the findings name it"
            )));
        }
        if !out.iter().any(|a| a.id == id && a.path == first.path) {
            out.push(FindingAllowance {
                id,
                path: first.path.clone(),
                reason: reason.to_owned(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(id: &str, category: &str, path: &str) -> RecordedFinding {
        RecordedFinding {
            id: id.into(),
            category: category.into(),
            path: path.into(),
            line: 1,
            message: "m".into(),
        }
    }

    #[test]
    fn deny_accepts_categories_and_ids_and_names_the_valid_ones() {
        let d = Deny::parse(&["Destructive, lock-table", "not-analysed"], "x").unwrap();
        assert!(d.names("drop-table", "destructive"));
        assert!(d.names("lock-table", "blocking"));
        assert!(d.names("not-analysed", "notAnalysed"));
        assert!(!d.names("set-not-null", "blocking"));
        let e = Deny::parse(&["destructiv"], "environments.production.deny").unwrap_err();
        let m = e.to_string();
        assert!(m.contains("\"destructiv\""), "{m}");
        assert!(m.contains("destructive") && m.contains("drop-table"), "{m}");
        assert!(Deny::parse::<&str>(&[], "x").unwrap().is_empty());
    }

    #[test]
    fn allow_must_match_a_finding_and_have_a_reason() {
        let f = vec![finding(
            "drop-table",
            "destructive",
            "migrations/0002_drop.sql",
        )];
        let a = allowances(&["drop-table:0002_drop.sql".into()], Some("gone"), &f).unwrap();
        assert_eq!(a[0].path, "migrations/0002_drop.sql");
        assert!(allowances(&["drop-table:0002_drop.sql".into()], None, &f).is_err());
        assert!(allowances(&["drop-table:0002_drop.sql".into()], Some("  "), &f).is_err());
        let e = allowances(&["drop-column:0002_drop.sql".into()], Some("r"), &f).unwrap_err();
        assert!(
            e.to_string()
                .contains("drop-table:migrations/0002_drop.sql"),
            "{e}"
        );
        assert!(allowances(&["nope:0002_drop.sql".into()], Some("r"), &f).is_err());
        assert!(allowances(&["drop-table".into()], Some("r"), &f).is_err());
    }

    #[test]
    fn judge_refuses_unanalysed_releases_and_honours_allowances() {
        let deny = Deny::parse(&["destructive"], "x").unwrap();
        let mut l = Lineage {
            previous: None,
            unchecked: Some("first".into()),
            allowances: Vec::new(),
            findings: vec![
                finding("drop-table", "destructive", "a.sql"),
                finding("truncate", "destructive", "b.sql"),
                finding("lock-table", "blocking", "b.sql"),
            ],
            analysed: false,
            allowed_findings: vec![FindingAllowance {
                id: "drop-table".into(),
                path: "a.sql".into(),
                reason: "r".into(),
            }],
        };
        assert!(matches!(
            judge(Some(&l), &deny, "1.0.0"),
            Err(Error::Denied(_))
        ));
        assert!(matches!(judge(None, &deny, "1.0.0"), Err(Error::Denied(_))));
        assert!(judge(None, &Deny::default(), "1.0.0").is_ok());
        l.analysed = true;
        let j = judge(Some(&l), &deny, "1.0.0").unwrap();
        assert_eq!(j.denied.len(), 1);
        assert_eq!(j.denied[0].id, "truncate");
        assert_eq!(j.allowed.len(), 1);
    }
}
