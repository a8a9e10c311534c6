//! The history rule, as a pure function: what a new set of migrations does to
//! the migrations an earlier release shipped. No I/O, so every case is a unit
//! test here.
//!
//! A migration's identity is its `id` (apply keys its history by it), so:
//! - same id, other sha256: **edited**;
//! - id gone, and no file of the new set has its bytes: **removed**;
//! - id gone, and a file with a new id has exactly its bytes: **renamed**
//!   (apply would take it for a new migration and run it again);
//! - same id and bytes, but the released migrations no longer keep their
//!   released relative order: **moved** (the fewest ids that explain the
//!   new order are named: those outside a longest run kept in order);
//! - a new id ordered before a released one: **outOfOrder** (a database that
//!   applied the released ones would have to run it out of order).
//!
//! A path change with the same id and bytes (the folder was renamed) is none
//! of these: apply never looks at paths to decide what ran. Rollback scripts
//! and seeds are not compared: fixing a rollback script is how a broken one
//! is repaired.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::core::digest::Digest;
use crate::core::manifest::{ChangeKind, FileEntry, FileKind};

/// One difference between the released migrations and the new ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub kind: ChangeKind,
    /// The released id; for `OutOfOrder`, the new migration's id.
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub released_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub released_sha256: Option<Digest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Digest>,
    /// For `OutOfOrder`: the released migration it now comes before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
}

fn migrations(files: &[FileEntry]) -> Vec<&FileEntry> {
    let mut m: Vec<&FileEntry> = files
        .iter()
        .filter(|f| f.kind == FileKind::Migration)
        .collect();
    m.sort_by_key(|f| f.order);
    m
}

/// Every change from `released` (the previous release's files) to `current`
/// (this build's files): first the released migrations in their released
/// order, then the new migrations placed before released ones.
pub fn compare(released: &[FileEntry], current: &[FileEntry]) -> Vec<Change> {
    let old = migrations(released);
    let new = migrations(current);
    let old_ids: HashSet<&str> = old.iter().map(|f| f.id.as_str()).collect();
    let new_pos: HashMap<&str, usize> = new
        .iter()
        .enumerate()
        .map(|(i, f)| (f.id.as_str(), i))
        .collect();
    let mut changes = Vec::new();
    let mut rename_targets: HashSet<&str> = HashSet::new();
    for f in &old {
        match new_pos.get(f.id.as_str()) {
            Some(&i) if new[i].sha256 != f.sha256 => changes.push(Change {
                kind: ChangeKind::Edited,
                id: f.id.clone(),
                released_path: Some(f.path.clone()),
                released_sha256: Some(f.sha256),
                path: Some(new[i].path.clone()),
                sha256: Some(new[i].sha256),
                before: None,
            }),
            Some(_) => {}
            None => {
                let renamed = new.iter().find(|n| {
                    n.sha256 == f.sha256
                        && !old_ids.contains(n.id.as_str())
                        && !rename_targets.contains(n.id.as_str())
                });
                if let Some(n) = renamed {
                    rename_targets.insert(n.id.as_str());
                }
                changes.push(Change {
                    kind: if renamed.is_some() {
                        ChangeKind::Renamed
                    } else {
                        ChangeKind::Removed
                    },
                    id: f.id.clone(),
                    released_path: Some(f.path.clone()),
                    released_sha256: Some(f.sha256),
                    path: renamed.map(|n| n.path.clone()),
                    sha256: renamed.map(|n| n.sha256),
                    before: None,
                });
            }
        }
    }
    // Released ids still present, in their new order, as released positions.
    let mut kept: Vec<(usize, usize, &FileEntry)> = old
        .iter()
        .enumerate()
        .filter_map(|(oi, f)| new_pos.get(f.id.as_str()).map(|&ni| (ni, oi, *f)))
        .collect();
    kept.sort_by_key(|(ni, _, _)| *ni);
    let kept: Vec<(usize, &FileEntry)> = kept.into_iter().map(|(_, oi, f)| (oi, f)).collect();
    let in_place = longest_increasing(&kept.iter().map(|(oi, _)| *oi).collect::<Vec<_>>());
    let mut moved: Vec<(usize, &FileEntry)> = kept
        .iter()
        .enumerate()
        .filter(|(k, _)| !in_place.contains(k))
        .map(|(_, &(oi, f))| (oi, f))
        .collect();
    moved.sort_by_key(|(oi, _)| *oi);
    for (_, f) in moved {
        let n = new[new_pos[f.id.as_str()]];
        changes.push(Change {
            kind: ChangeKind::Moved,
            id: f.id.clone(),
            released_path: Some(f.path.clone()),
            released_sha256: Some(f.sha256),
            path: Some(n.path.clone()),
            sha256: Some(n.sha256),
            before: None,
        });
    }
    // The last released migration in the new order: a new one before it
    // would run out of order wherever the released ones were applied.
    let last_released = new.iter().rposition(|f| old_ids.contains(f.id.as_str()));
    if let Some(last) = last_released {
        for (i, f) in new.iter().enumerate().take(last) {
            if old_ids.contains(f.id.as_str()) || rename_targets.contains(f.id.as_str()) {
                continue;
            }
            let before = new[i + 1..]
                .iter()
                .find(|n| old_ids.contains(n.id.as_str()))
                .map(|n| n.id.clone());
            changes.push(Change {
                kind: ChangeKind::OutOfOrder,
                id: f.id.clone(),
                released_path: None,
                released_sha256: None,
                path: Some(f.path.clone()),
                sha256: Some(f.sha256),
                before,
            });
        }
    }
    changes
}

/// Indexes (into `seq`) of one longest strictly increasing subsequence,
/// O(n log n): the released migrations that kept their relative order.
fn longest_increasing(seq: &[usize]) -> HashSet<usize> {
    // tails[k]: index into seq of the smallest tail of a run of length k+1.
    let mut tails: Vec<usize> = Vec::new();
    let mut prev: Vec<Option<usize>> = vec![None; seq.len()];
    for (i, &v) in seq.iter().enumerate() {
        let k = tails.partition_point(|&t| seq[t] < v);
        if k > 0 {
            prev[i] = Some(tails[k - 1]);
        }
        if k == tails.len() {
            tails.push(i);
        } else {
            tails[k] = i;
        }
    }
    let mut keep = HashSet::new();
    let mut at = tails.last().copied();
    while let Some(i) = at {
        keep.insert(i);
        at = prev[i];
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::manifest::TransactionMode;

    fn files(list: &[(&str, &str)]) -> Vec<FileEntry> {
        list.iter()
            .enumerate()
            .map(|(i, (id, body))| FileEntry {
                id: (*id).into(),
                path: format!("migrations/{id}.sql"),
                sha256: Digest::of(body.as_bytes()),
                size: body.len() as u64,
                kind: FileKind::Migration,
                transaction: TransactionMode::Default,
                order: i as u32,
                rollback_for: None,
            })
            .collect()
    }

    fn kinds(changes: &[Change]) -> Vec<(ChangeKind, &str)> {
        changes.iter().map(|c| (c.kind, c.id.as_str())).collect()
    }

    const V1: &[(&str, &str)] = &[("0001_a", "A"), ("0002_b", "B"), ("0003_c", "C")];

    #[test]
    fn appending_new_migrations_changes_nothing_released() {
        let mut next = V1.to_vec();
        next.push(("0004_d", "D"));
        assert!(compare(&files(V1), &files(&next)).is_empty());
        assert!(compare(&files(V1), &files(V1)).is_empty());
    }

    #[test]
    fn an_edit_names_both_hashes() {
        let next = [("0001_a", "A2"), ("0002_b", "B"), ("0003_c", "C")];
        let c = compare(&files(V1), &files(&next));
        assert_eq!(kinds(&c), [(ChangeKind::Edited, "0001_a")]);
        assert_eq!(c[0].released_sha256, Some(Digest::of(b"A")));
        assert_eq!(c[0].sha256, Some(Digest::of(b"A2")));
    }

    #[test]
    fn removed_and_renamed_are_told_apart_by_content() {
        let next = [("0001_a", "A"), ("0003_c", "C")];
        assert_eq!(
            kinds(&compare(&files(V1), &files(&next))),
            [(ChangeKind::Removed, "0002_b")]
        );
        let next = [("0001_a", "A"), ("0002_bee", "B"), ("0003_c", "C")];
        let c = compare(&files(V1), &files(&next));
        assert_eq!(kinds(&c), [(ChangeKind::Renamed, "0002_b")]);
        assert_eq!(c[0].path.as_deref(), Some("migrations/0002_bee.sql"));
    }

    #[test]
    fn a_move_names_only_the_migration_that_left_its_place() {
        let next = [("0002_b", "B"), ("0003_c", "C"), ("0001_a", "A")];
        assert_eq!(
            kinds(&compare(&files(V1), &files(&next))),
            [(ChangeKind::Moved, "0001_a")]
        );
    }

    #[test]
    fn a_new_migration_before_a_released_one_is_out_of_order() {
        let next = [
            ("0001_a", "A"),
            ("0001b_new", "N"),
            ("0002_b", "B"),
            ("0003_c", "C"),
        ];
        let c = compare(&files(V1), &files(&next));
        assert_eq!(kinds(&c), [(ChangeKind::OutOfOrder, "0001b_new")]);
        assert_eq!(c[0].before.as_deref(), Some("0002_b"));
    }

    #[test]
    fn a_path_change_with_the_same_id_and_bytes_is_no_change() {
        let mut next = files(V1);
        for f in &mut next {
            f.path = f.path.replace("migrations/", "db/migrations/");
        }
        assert!(compare(&files(V1), &next).is_empty());
    }

    #[test]
    fn rollbacks_and_seeds_are_not_compared() {
        let mut old = files(V1);
        let mut down = old[0].clone();
        down.kind = FileKind::Rollback;
        down.rollback_for = Some("0001_a".into());
        down.order = 0;
        down.path = "migrations/0001_a.down.sql".into();
        old.push(down);
        assert!(compare(&old, &files(V1)).is_empty());
    }

    #[test]
    fn longest_increasing_keeps_the_largest_ordered_run() {
        let keep = longest_increasing(&[0, 2, 3, 1, 4]);
        assert_eq!(keep.len(), 4);
        assert!(!keep.contains(&3));
        assert!(longest_increasing(&[]).is_empty());
    }
}
