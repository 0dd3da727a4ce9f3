//! The file version graph's rules, one test per rule of `doc.rs`, plus the winner order and
//! records.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn id(s: &str) -> FileVersionId {
    FileVersionId::parse(s).unwrap()
}

fn content(byte: u8) -> Content {
    Content {
        content_type: "image/jpeg".into(),
        size: 1,
        sha256: [byte; 32],
        chunks: vec![ChunkRef { id: [byte; 32], len: 1 }],
    }
}

fn put(version: Option<&str>, parents: Option<&[&str]>, byte: u8, now_ms: u64) -> FileWrite {
    FileWrite {
        version: version.map(id),
        parents: parents.map(|p| p.iter().map(|s| id(s)).collect()),
        change: FileChange::Content(content(byte)),
        author: None,
        now_ms,
    }
}

fn delete(now_ms: u64) -> FileWrite {
    FileWrite { version: None, parents: None, change: FileChange::Delete, author: None, now_ms }
}

#[test]
fn decimal_ids_win_by_value_above_other_ids() {
    let order = ["alice-3", "zed", "9", "10", "10.5", "10.50000", "010.6", "1768467700.000", "1768467700.0001"];
    for w in order.windows(2) {
        assert_eq!(id(w[1]).winner_cmp(&id(w[0])), std::cmp::Ordering::Greater, "{} should beat {}", w[1], w[0]);
    }
    // Equal values are still ordered (by bytes), so the winner is never ambiguous.
    assert_ne!(id("1.5").winner_cmp(&id("1.50")), std::cmp::Ordering::Equal);
}

#[test]
fn bad_ids_are_refused() {
    for bad in ["", "a b", "quote\"d", "back\\slash", "é", &"x".repeat(201)] {
        assert!(matches!(FileVersionId::parse(bad), Err(FileError::BadVersionId { .. })), "{bad:?}");
    }
    assert!(FileVersionId::parse(&"x".repeat(200)).is_ok());
}

#[test]
fn minted_ids_are_wallclock_milliseconds_above_every_decimal_id() {
    assert_eq!(FileVersionId::mint(1_768_467_700_123, []).as_str(), "1768467700.123");
    let known = [id("1768467800.5"), id("bob-9")];
    assert_eq!(FileVersionId::mint(1_768_467_700_123, &known).as_str(), "1768467800.501");
    let fine = [id("5.0009")];
    let minted = FileVersionId::mint(0, &fine);
    assert_eq!(minted.winner_cmp(&fine[0]), std::cmp::Ordering::Greater, "{minted}");
}

#[test]
fn a_write_without_parents_replaces_the_served_version_and_keeps_history() {
    let mut doc = FileDoc::new();
    let first = doc.apply(put(None, None, 1, 1_000)).unwrap();
    let second = doc.apply(put(None, None, 2, 1_000)).unwrap();
    assert_eq!(doc.heads(), vec![second.version.clone()]);
    assert_eq!(doc.current(), Some(&content(2)));
    assert_eq!(doc.version(&second.version).unwrap().parents, vec![first.version.clone()]);
    assert_eq!(doc.history().count(), 2);
    assert!(!second.lost && !doc.in_conflict());
}

#[test]
fn concurrent_writes_become_siblings_and_the_highest_is_served() {
    let mut doc = FileDoc::new();
    doc.apply(put(Some("100.000"), None, 1, 0)).unwrap();
    let high = doc.apply(put(Some("200.000"), Some(&["100.000"]), 2, 0)).unwrap();
    let low = doc.apply(put(Some("150.000"), Some(&["100.000"]), 3, 0)).unwrap();
    assert!(!high.lost);
    assert!(low.lost, "the writer of the losing sibling is told");
    assert!(doc.in_conflict());
    assert_eq!(doc.heads(), vec![id("200.000"), id("150.000")]);
    assert_eq!(doc.current(), Some(&content(2)));
    assert_eq!(doc.version(&id("150.000")).unwrap().content, Some(content(3)), "the loser stays readable");
}

#[test]
fn a_write_naming_every_head_resolves_the_conflict() {
    let mut doc = FileDoc::new();
    doc.apply(put(Some("1"), None, 1, 0)).unwrap();
    doc.apply(put(Some("2"), Some(&["1"]), 2, 0)).unwrap();
    doc.apply(put(Some("3"), Some(&["1"]), 3, 0)).unwrap();
    // Naming one head only leaves the other standing.
    doc.apply(put(Some("4"), Some(&["2"]), 4, 0)).unwrap();
    assert_eq!(doc.heads(), vec![id("4"), id("3")]);
    let resolved = doc.apply(put(Some("5"), Some(&["3", "4"]), 5, 0)).unwrap();
    assert_eq!(resolved.heads, vec![id("5")]);
    assert!(!doc.in_conflict());
}

#[test]
fn unknown_parents_are_listed_and_change_nothing() {
    let mut doc = FileDoc::new();
    doc.apply(put(Some("1"), None, 1, 0)).unwrap();
    let err = doc.apply(put(Some("2"), Some(&["1", "nope", "gone"]), 2, 0)).unwrap_err();
    assert_eq!(err, FileError::UnknownParents { ids: vec!["nope".into(), "gone".into()] });
    assert_eq!(doc.history().count(), 1);
}

#[test]
fn retries_are_idempotent_and_ids_name_one_content() {
    let mut doc = FileDoc::new();
    doc.apply(put(Some("7"), None, 1, 0)).unwrap();
    let again = doc.apply(put(Some("7"), None, 1, 0)).unwrap();
    assert_eq!((again.outcome, again.record), (Outcome::Duplicate, None));
    assert_eq!(doc.apply(put(Some("7"), None, 2, 0)).unwrap_err(), FileError::VersionReused { id: "7".into() });
    assert_eq!(doc.history().count(), 1);
}

#[test]
fn a_delete_is_a_tombstone_and_a_late_write_conflicts_with_it() {
    let mut doc = FileDoc::new();
    doc.apply(put(Some("100.000"), None, 1, 0)).unwrap();
    let gone = doc.apply(delete(150_000)).unwrap();
    assert_eq!(gone.version.as_str(), "150.000");
    assert_eq!(doc.current(), None, "deleted");
    assert_eq!(doc.apply(delete(160_000)).unwrap_err(), FileError::NothingToDelete);
    // A device that never saw the delete writes on the old version: not a silent resurrection.
    let late = doc.apply(put(Some("120.000"), Some(&["100.000"]), 2, 0)).unwrap();
    assert!(late.lost && doc.in_conflict());
    assert_eq!(doc.current(), None, "the delete is still served");
    // A plain write after the delete re-creates the file on top of the tombstone.
    let back = doc.apply(put(None, Some(&["150.000", "120.000"]), 3, 200_000)).unwrap();
    assert_eq!(doc.current(), Some(&content(3)));
    assert_eq!(back.heads.len(), 1);
}

#[test]
fn a_delete_resolves_a_conflict_by_replacing_every_head() {
    let mut doc = FileDoc::new();
    doc.apply(put(Some("1"), None, 1, 0)).unwrap();
    doc.apply(put(Some("2"), Some(&["1"]), 2, 0)).unwrap();
    doc.apply(put(Some("3"), Some(&["1"]), 3, 0)).unwrap();
    let gone = doc.apply(delete(10_000)).unwrap();
    assert_eq!(gone.heads, vec![gone.version.clone()]);
    assert_eq!(doc.version(&gone.version).unwrap().parents, vec![id("2"), id("3")]);
}

#[test]
fn records_round_trip_and_rebuild_the_same_graph() {
    let mut doc = FileDoc::new();
    let mut records = Vec::new();
    for w in [
        put(Some("1"), None, 1, 5),
        put(Some("2"), Some(&["1"]), 2, 6),
        put(Some("3"), Some(&["1"]), 3, 7),
        delete(8_000),
    ] {
        records.push(doc.apply(w).unwrap().record.unwrap().encode());
    }
    let decoded: Vec<FileVersion> = records.iter().map(|r| FileVersion::decode(r).unwrap()).collect();
    let rebuilt = FileDoc::from_records(decoded).unwrap();
    assert_eq!(rebuilt.heads(), doc.heads());
    assert_eq!(rebuilt.history().cloned().collect::<Vec<_>>(), doc.history().cloned().collect::<Vec<_>>());
    // A record out of order (parent unknown) or damaged is refused, never half-loaded.
    let reversed: Vec<FileVersion> = records.iter().rev().map(|r| FileVersion::decode(r).unwrap()).collect();
    assert!(matches!(FileDoc::from_records(reversed), Err(FileError::CorruptRecord(_))));
    assert!(matches!(FileVersion::decode(b"{\"id\":\"1\"}"), Err(FileError::CorruptRecord(_))));
    let bad_chunk = String::from_utf8(records[0].clone()).unwrap().replace("0101", "zz01");
    assert!(matches!(FileVersion::decode(bad_chunk.as_bytes()), Err(FileError::CorruptRecord(_))));
}

#[test]
fn pruning_keeps_heads_and_what_the_rule_keeps_and_closes_the_graph() {
    let mut doc = FileDoc::new();
    doc.apply(put(Some("1"), None, 1, 1)).unwrap();
    doc.apply(put(Some("2"), Some(&["1"]), 2, 2)).unwrap();
    doc.apply(put(Some("3"), Some(&["2"]), 3, 3)).unwrap();
    // A sibling of 3 on top of 1: a head, so it stays whatever the rule says.
    doc.apply(put(Some("2.5"), Some(&["1"]), 4, 4)).unwrap();
    doc.apply(put(Some("4"), Some(&["3"]), 5, 5)).unwrap();
    let dropped = doc.prune(|rank, _| rank < 1);
    let gone: Vec<&str> = dropped.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(gone, ["1", "2", "3"]);
    let left: Vec<&str> = doc.history().map(|v| v.id.as_str()).collect();
    assert_eq!(left, ["2.5", "4"], "the heads stay");
    assert!(doc.history().all(|v| v.parents.is_empty()), "no version names a dropped parent");
    assert_eq!(doc.winner().unwrap().id, id("4"));
    assert!(doc.in_conflict(), "the conflict is still there");
    // The pruned graph reloads from its records.
    let again = FileDoc::from_records(doc.history().cloned()).unwrap();
    assert_eq!(again.heads(), doc.heads());
    assert!(matches!(doc.apply(put(Some("5"), Some(&["2"]), 6, 6)), Err(FileError::UnknownParents { .. })));
}
