//! Numbered files: plain `NNNN_name.sql`, sqlx and golang-migrate
//! (`<version>_<name>[.up|.down].sql`), ordered by the number.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::common::{CollectError, Downs, Listing, SourceFile, TxRule};
use crate::core::manifest::FileKind;

/// Splits `0012_add_users` into (numeric prefix, rest).
pub(super) fn number_prefix(stem: &str) -> Option<(&str, &str)> {
    let digits = stem.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let rest = stem[digits..].strip_prefix('_')?;
    (!rest.is_empty()).then_some((&stem[..digits], rest))
}

/// The rules of a folder of `<number>_<name>.sql` files.
#[derive(Clone, Copy)]
pub(super) struct Numbered {
    /// Plain `<n>_<name>.sql` (no `.up`/`.down`) is a migration.
    bare: bool,
    /// Refuse timestamps of different widths whose numeric and text order
    /// disagree (a tool that compares numbers settles it, so only for plain).
    refuse_mixed_widths: bool,
    /// The largest version the tool parses (digits after leading zeros).
    max_digits: Option<(usize, &'static str)>,
    tx: TxRule,
    example: &'static str,
}

impl Numbered {
    pub(super) const PLAIN: Numbered = Numbered {
        bare: true,
        refuse_mixed_widths: true,
        max_digits: None,
        tx: TxRule::Directives,
        example: "migration file names start with a number and '_', like 0001_create_users.sql (rollbacks: 0001_create_users.down.sql)",
    };
    // sqlx parses the version as an i64: at most 19 digits (and below 2^63).
    pub(super) const SQLX: Numbered = Numbered {
        bare: true,
        refuse_mixed_widths: false,
        max_digits: Some((19, "sqlx reads the version as a 64-bit signed integer")),
        tx: TxRule::SqlxFirstLine,
        example: "sqlx migration names are <version>_<description>.sql, or .up.sql and .down.sql, like 20240101120000_create_users.sql",
    };
    // golang-migrate parses the version as a uint64 and needs .up/.down.
    pub(super) const GOLANG_MIGRATE: Numbered = Numbered {
        bare: false,
        refuse_mixed_widths: false,
        max_digits: Some((
            20,
            "golang-migrate reads the version as a 64-bit unsigned integer",
        )),
        tx: TxRule::Directives,
        example: "golang-migrate names are <version>_<title>.up.sql and <version>_<title>.down.sql, like 000001_create_users.up.sql",
    };
}

pub(super) fn numbered(
    listing: &Listing,
    rules: Numbered,
) -> Result<(Vec<SourceFile>, Downs), CollectError> {
    // (numeric value, id) -> file; numbers compared without leading zeros.
    let mut ordered: BTreeMap<(usize, String), (String, String, PathBuf, String)> = BTreeMap::new();
    let mut downs = Downs::new();
    for (name, (abs, path)) in listing {
        let (stem, is_down, marked) = if let Some(s) = name.strip_suffix(".down.sql") {
            (s, true, true)
        } else if let Some(s) = name.strip_suffix(".up.sql") {
            (s, false, true)
        } else {
            (name.strip_suffix(".sql").unwrap_or(name), false, false)
        };
        let Some((num, _)) = number_prefix(stem).filter(|_| marked || rules.bare) else {
            return Err(CollectError::BadName {
                path: abs.clone(),
                message: rules.example.into(),
            });
        };
        let trimmed = num.trim_start_matches('0');
        if let Some((max, why)) = rules.max_digits {
            let too_big = trimmed.len() > max
                || (trimmed.len() == max
                    && trimmed
                        .parse::<u64>()
                        .map_or(true, |v| max == 19 && v > i64::MAX as u64));
            if too_big {
                return Err(CollectError::BadName {
                    path: abs.clone(),
                    message: format!("version {num} is too large: {why}"),
                });
            }
        }
        if is_down {
            downs.insert(stem.to_owned(), (abs.clone(), path.clone()));
            continue;
        }
        let key = (trimmed.len(), trimmed.to_owned());
        if let Some((_, _, _, first)) = ordered.get(&key) {
            return Err(CollectError::DuplicateNumber {
                first: first.clone(),
                second: path.clone(),
                number: num.to_owned(),
            });
        }
        ordered.insert(
            key,
            (num.to_owned(), stem.to_owned(), abs.clone(), path.clone()),
        );
    }
    if rules.refuse_mixed_widths {
        check_widths(
            ordered
                .values()
                .map(|(num, _, _, path)| (num.as_str(), path.as_str())),
        )?;
    }
    let files = ordered
        .into_values()
        .enumerate()
        .map(|(i, (_, id, abs, path))| SourceFile {
            id,
            abs,
            path,
            kind: FileKind::Migration,
            order: i as u32,
            rollback_for: None,
            transaction: rules.tx,
            section: None,
        })
        .collect();
    Ok((files, downs))
}

/// Numbers this wide are timestamps, not counters: `2` before `10` is
/// obviously meant, `202401011200000` before `20231231120000000` is not.
pub(super) const TIMESTAMP_DIGITS: usize = 8;

/// `numbers` in numeric order: refuses when a timestamp-wide number and its
/// neighbour sort differently as text, since the tool that wrote them may have
/// compared them either way.
pub(super) fn check_widths<'a>(
    numbers: impl Iterator<Item = (&'a str, &'a str)>,
) -> Result<(), CollectError> {
    let mut prev: Option<(&str, &str)> = None;
    for (num, path) in numbers {
        if let Some((pn, pp)) = prev
            && pn > num
            && pn.len().max(num.len()) >= TIMESTAMP_DIGITS
        {
            return Err(CollectError::AmbiguousOrder {
                first: pp.to_owned(),
                second: path.to_owned(),
                first_digits: pn.len(),
                second_digits: num.len(),
                hint: " (for a Prisma history, point `project.migrations` at the original folders instead: they carry Prisma's own order)",
            });
        }
        prev = Some((num, path));
    }
    Ok(())
}
