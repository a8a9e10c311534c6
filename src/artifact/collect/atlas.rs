//! Atlas: `.sql` files in name order, checked against `atlas.sum` first.

use std::collections::HashMap;
use std::path::Path;

use super::common::{CollectError, Downs, Listing, SourceFile, TxRule};
use crate::core::manifest::{FileKind, TransactionMode};

pub const ATLAS_SUM: &str = "atlas.sum";

/// Atlas's integrity file as Atlas computes it: one SHA-256 runs over every
/// `.sql` file of the folder in name order, fed the file's name and then its
/// bytes; after each file the running digest (base64) is that file's line,
/// and the first line is the SHA-256 of all the names and line digests.
pub(super) fn atlas_sum(files: &[(String, Vec<u8>)]) -> (String, Vec<(String, String)>) {
    use base64::Engine as _;
    use sha2::Digest as _;
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    let mut running = sha2::Sha256::new();
    let mut lines = Vec::with_capacity(files.len());
    for (name, bytes) in files {
        running.update(name.as_bytes());
        running.update(bytes);
        lines.push((name.clone(), b64(&running.clone().finalize())));
    }
    let mut total = sha2::Sha256::new();
    for (n, h) in &lines {
        total.update(n.as_bytes());
        total.update(h.as_bytes());
    }
    (b64(&total.finalize()), lines)
}

/// Atlas's directives in a file's leading comments: `atlas:txmode none` runs
/// the file outside a transaction, `atlas:nolint` is for Atlas's linter; any
/// other (`delimiter`, `checkpoint`, `sum`, ...) changes what Atlas runs and is
/// refused rather than ignored.
pub(super) fn atlas_tx(text: &str, path: &Path) -> Result<TxRule, CollectError> {
    let mut rule = TxRule::Directives;
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        let Some(comment) = t.strip_prefix("--") else {
            break;
        };
        let Some(directive) = comment.trim().strip_prefix("atlas:") else {
            continue;
        };
        let mut words = directive.split_whitespace();
        match (words.next(), words.next()) {
            (Some("txmode"), Some("none")) => rule = TxRule::Fixed(TransactionMode::None),
            (Some("txmode"), Some("file" | "all")) => {}
            (Some("nolint"), _) => {}
            _ => {
                return Err(CollectError::Unsupported {
                    path: path.to_path_buf(),
                    message: format!(
                        "has the Atlas directive `atlas:{directive}`, which squizzle does not follow; it understands atlas:txmode and atlas:nolint"
                    ),
                });
            }
        }
    }
    Ok(rule)
}

/// Atlas: every `.sql` file in name order, checked against `atlas.sum`
/// before anything else: a file edited, added or removed without
/// `atlas migrate hash` is refused, naming it.
pub(super) fn atlas(
    dir: &Path,
    listing: &Listing,
) -> Result<(Vec<SourceFile>, Downs), CollectError> {
    let sum_path = dir.join(ATLAS_SUM);
    let sum_err = |problem: String| CollectError::AtlasSum {
        sum: sum_path.clone(),
        problem,
    };
    let text = std::fs::read_to_string(&sum_path).map_err(|source| CollectError::Io {
        path: sum_path.clone(),
        source,
    })?;
    let mut lines = text.lines();
    let written_total = lines
        .next()
        .and_then(|l| l.strip_prefix("h1:"))
        .ok_or_else(|| sum_err("its first line is not `h1:<sum>`".into()))?;
    let mut written: Vec<(String, String)> = Vec::new();
    for line in lines {
        let (name, hash) = line
            .split_once("h1:")
            .ok_or_else(|| sum_err(format!("the line {line:?} is not `<file> h1:<hash>`")))?;
        written.push((name.trim().to_owned(), hash.to_owned()));
    }
    let mut contents = Vec::with_capacity(listing.len());
    for (name, (abs, _)) in listing {
        let bytes = std::fs::read(abs).map_err(|source| CollectError::Io {
            path: abs.clone(),
            source,
        })?;
        contents.push((name.clone(), bytes));
    }
    let (total, computed) = atlas_sum(&contents);
    // Name the first file that differs; the running hash makes every later
    // line differ too, so only the first says which file changed.
    for i in 0..written.len().max(computed.len()) {
        match (written.get(i), computed.get(i)) {
            (Some(w), Some(c)) if w == c => {}
            (Some(w), Some(c)) if w.0 == c.0 => {
                return Err(sum_err(format!(
                    "{} has changed since the sum was written",
                    c.0
                )));
            }
            (Some(w), Some(c)) => {
                return Err(sum_err(format!(
                    "the folder has {} where the sum lists {}",
                    c.0, w.0
                )));
            }
            (Some(w), None) => {
                return Err(sum_err(format!("{} is listed but missing", w.0)));
            }
            (None, Some(c)) => {
                return Err(sum_err(format!("{} is not listed", c.0)));
            }
            (None, None) => {}
        }
    }
    if written_total != total {
        return Err(sum_err(
            "its first line (the sum of the lines) is wrong".into(),
        ));
    }
    let mut files = Vec::with_capacity(listing.len());
    let mut versions: HashMap<&str, &str> = HashMap::new();
    for (i, ((name, (abs, path)), (_, bytes))) in listing.iter().zip(&contents).enumerate() {
        let version = name
            .split('_')
            .next()
            .unwrap_or(name)
            .trim_end_matches(".sql");
        if let Some(first) = versions.insert(version, path) {
            return Err(CollectError::DuplicateNumber {
                first: first.to_owned(),
                second: path.clone(),
                number: version.to_owned(),
            });
        }
        let text = String::from_utf8_lossy(bytes);
        files.push(SourceFile {
            id: name.strip_suffix(".sql").unwrap_or(name).to_owned(),
            abs: abs.clone(),
            path: path.clone(),
            kind: FileKind::Migration,
            order: i as u32,
            rollback_for: None,
            transaction: atlas_tx(&text, abs)?,
            section: None,
        });
    }
    Ok((files, Downs::new()))
}
