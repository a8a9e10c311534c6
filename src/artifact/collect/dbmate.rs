//! dbmate: `-- migrate:up` / `-- migrate:down` sections in file-name order.

use std::collections::HashMap;
use std::path::Path;

use super::common::{CollectError, Downs, Listing, SourceFile, TxRule};
use crate::core::manifest::{FileKind, TransactionMode};
use crate::core::paths;

/// Where the first `-- migrate:<which>` line starts and the options after it,
/// as dbmate's pattern finds it: at the very start of a line, `--`, optional
/// spaces, `migrate:up`/`migrate:down`, then the end of the line or spaces and
/// options. Also how many such lines there are.
pub(super) fn dbmate_directive(text: &str, which: &str) -> Option<(usize, String, usize)> {
    let mut found: Option<(usize, String)> = None;
    let mut count = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let Some(rest) = line.strip_prefix("--") else {
            continue;
        };
        let Some(rest) = rest.trim_start().strip_prefix("migrate:") else {
            continue;
        };
        let Some(after) = rest.strip_prefix(which) else {
            continue;
        };
        if !(after.trim().is_empty() || after.starts_with(char::is_whitespace)) {
            continue;
        }
        count += 1;
        if found.is_none() {
            found = Some((start, after.trim().to_owned()));
        }
    }
    found.map(|(start, options)| (start, options, count))
}

/// dbmate's options on a directive line: `transaction:false` runs the
/// section outside a transaction; any other option is refused.
pub(super) fn dbmate_tx(options: &str, path: &Path, which: &str) -> Result<TxRule, CollectError> {
    let mut rule = TxRule::Directives;
    for pair in options.split_whitespace() {
        match pair {
            "transaction:false" => rule = TxRule::Fixed(TransactionMode::None),
            "transaction:true" => rule = TxRule::Fixed(TransactionMode::Default),
            other => {
                return Err(CollectError::Unsupported {
                    path: path.to_path_buf(),
                    message: format!(
                        "the `-- migrate:{which}` line has the option {other:?}; squizzle understands transaction:false and transaction:true"
                    ),
                });
            }
        }
    }
    Ok(rule)
}

/// dbmate: every `<digits>...sql` file, in file-name order (dbmate sorts the
/// names as text), holds a `-- migrate:up` block and then a `-- migrate:down`
/// block. The up block is the migration and the down block its rollback, each
/// packed as its own file (`<name>.up.sql`, `<name>.down.sql`) so apply never
/// sees the other half.
pub(super) fn dbmate(
    listing: &Listing,
    down_sections: &mut HashMap<String, ((u64, u64), TxRule)>,
    warnings: &mut Vec<String>,
) -> Result<(Vec<SourceFile>, Downs), CollectError> {
    let mut files = Vec::new();
    let mut downs = Downs::new();
    let mut versions: HashMap<String, String> = HashMap::new();
    // BTreeMap keys: file names in byte order, which is Go's string order.
    for (name, (abs, path)) in listing {
        let digits = name.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            warnings.push(format!(
                "{path} does not start with a version number, so dbmate never runs it; it is left out of the release"
            ));
            continue;
        }
        let version = &name[..digits];
        if let Some(first) = versions.insert(version.to_owned(), path.clone()) {
            return Err(CollectError::DuplicateNumber {
                first,
                second: path.clone(),
                number: version.to_owned(),
            });
        }
        let text = std::fs::read_to_string(abs).map_err(|source| CollectError::Io {
            path: abs.clone(),
            source,
        })?;
        let bad = |message: &str| CollectError::Unsupported {
            path: abs.clone(),
            message: message.to_owned(),
        };
        let Some((up, up_options, ups)) = dbmate_directive(&text, "up") else {
            return Err(bad(
                "has no `-- migrate:up` line; dbmate needs one before the migration's SQL (and `-- migrate:down` before its rollback)",
            ));
        };
        let Some((down, down_options, downs_count)) = dbmate_directive(&text, "down") else {
            return Err(bad(
                "has no `-- migrate:down` line; dbmate needs one after the up block (it may be followed by nothing)",
            ));
        };
        if ups > 1 || downs_count > 1 {
            return Err(bad(
                "has more than one `-- migrate:up` or `-- migrate:down` block; split it into one migration file per pair",
            ));
        }
        if up > down {
            return Err(bad(
                "has `-- migrate:down` before `-- migrate:up`; dbmate needs up first",
            ));
        }
        let before = &text[..up];
        if before
            .lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
        {
            return Err(bad(
                "has SQL before `-- migrate:up`; dbmate refuses that too. Move it into the up block",
            ));
        }
        let stem = name.strip_suffix(".sql").unwrap_or(name).to_owned();
        let base = path.strip_suffix(".sql").unwrap_or(path);
        let up_path = format!("{base}.up.sql");
        let down_path = format!("{base}.down.sql");
        for p in [&up_path, &down_path] {
            paths::validate_relative(p).map_err(|e| CollectError::BadName {
                path: abs.clone(),
                message: format!("the stored path {p:?} {e}"),
            })?;
        }
        files.push(SourceFile {
            id: stem.clone(),
            abs: abs.clone(),
            path: up_path,
            kind: FileKind::Migration,
            order: files.len() as u32,
            rollback_for: None,
            transaction: dbmate_tx(&up_options, abs, "up")?,
            section: Some((up as u64, (down - up) as u64)),
        });
        down_sections.insert(
            stem.clone(),
            (
                (down as u64, (text.len() - down) as u64),
                dbmate_tx(&down_options, abs, "down")?,
            ),
        );
        downs.insert(stem, (abs.clone(), down_path));
    }
    Ok((files, downs))
}
