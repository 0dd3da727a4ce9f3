//! File rounds in the core: a version and its chunk references in one batch, answers only after
//! the commit, duplicates answered without a round, kinds kept apart, a failed round read back.

use crate::chunks::{refs, ChunkId, ChunkSize};
use crate::document::{DocError, FileWriteRequest};
use crate::file::{ChunkRef, Content, FileChange, FileVersionId, FileWrite, Outcome};
use crate::protocol::kind::Kind;
use crate::store::Store;

use super::harness::{insert, Harness, PATH};

fn id(s: &str) -> FileVersionId {
    FileVersionId::parse(s).unwrap()
}

/// A write of one chunk of `n` bytes named after `byte`, as version `v` on `parents`.
fn file_write(v: &str, parents: Option<&[&str]>, byte: u8, n: u32) -> FileWriteRequest {
    let chunk = ChunkId::of(&vec![byte; n as usize]);
    let content = Content {
        content_type: "application/octet-stream".into(),
        size: u64::from(n),
        sha256: [byte; 32],
        chunks: vec![ChunkRef { id: chunk.0, len: u64::from(n) }],
    };
    FileWriteRequest {
        write: FileWrite {
            version: Some(id(v)),
            parents: parents.map(|p| p.iter().map(|s| id(s)).collect()),
            change: FileChange::Content(content),
            author: None,
            now_ms: 1,
        },
        refs: vec![(chunk, ChunkSize { plain: n, stored: n })],
        peer: Some("peer-a".into()),
        hold: None,
        also: Vec::new(),
    }
}

#[test]
fn a_file_version_and_its_references_commit_together_and_reload() {
    let mut h = Harness::new();
    let w = h.write_file(file_write("1.0", None, 7, 100));
    let round = h.plan().unwrap();
    assert!(round.needs_commit());
    assert!(h.file_answer(w).is_none(), "no answer before the commit");
    h.commit(round);
    let applied = &h.file_answer(w).unwrap().as_ref().unwrap().applied;
    assert_eq!(applied.outcome, Outcome::Fresh);
    let published = h.published.last().unwrap();
    assert_eq!(published.head.ids(), ["1.0"]);
    assert!(published.file.as_ref().is_some_and(|f| f.winner().is_some_and(|v| v.id == id("1.0"))));
    let chunk = ChunkId::of(&[7u8; 100]);
    assert!(refs::is_referenced(&h.store, &chunk).unwrap(), "the reference is in the version's batch");
    let reloaded = h.reloaded();
    assert_eq!(reloaded.kind(), Some(Kind::File));
    // A retry: answered at once, no round.
    let again = h.write_file(file_write("1.0", None, 7, 100));
    assert!(h.plan().is_none_or(|r| !r.needs_commit()), "nothing to make durable");
    assert_eq!(h.file_answer(again).unwrap().as_ref().unwrap().applied.outcome, Outcome::Duplicate);
}

#[test]
fn text_and_file_writes_do_not_mix() {
    let mut h = Harness::new();
    h.write(insert("a-0", None, 0, "x"));
    h.settle();
    let w = h.write_file(file_write("1.0", None, 1, 10));
    h.settle();
    assert!(matches!(h.file_answer(w), Some(Err(DocError::KindMismatch { existing: Kind::Text, .. }))));
    let mut f = Harness::new();
    f.write_file(file_write("1.0", None, 1, 10));
    f.settle();
    let t = f.write(insert("a-0", None, 0, "x"));
    f.settle();
    assert!(matches!(f.write_answer(t), Some(Err(DocError::KindMismatch { existing: Kind::File, .. }))));
}

#[test]
fn a_failed_file_round_leaves_nothing_and_the_next_write_goes_in() {
    let mut h = Harness::new();
    h.write_file(file_write("1.0", None, 1, 10));
    h.settle();
    let w = h.write_file(file_write("2.0", Some(&["1.0"]), 2, 20));
    let round = h.plan().unwrap();
    h.fail(round);
    assert!(matches!(h.file_answer(w), Some(Err(DocError::Storage(_)))));
    assert!(!refs::is_referenced(&h.store, &ChunkId::of(&[2u8; 20])).unwrap());
    let retry = h.write_file(file_write("2.0", Some(&["1.0"]), 2, 20));
    h.settle();
    assert_eq!(
        h.file_answer(retry).unwrap().as_ref().unwrap().applied.outcome,
        Outcome::Fresh,
        "not a duplicate of the failed one"
    );
    assert_eq!(h.reloaded().kind(), Some(Kind::File));
}

#[test]
fn a_long_file_history_folds_into_a_snapshot_and_erasing_drops_every_reference() {
    let mut h = Harness::new();
    let mut parent = String::new();
    for i in 1..=600u32 {
        let v = format!("{i}.0");
        let parents = (i > 1).then(|| vec![parent.as_str()]);
        h.write_file(file_write(&v, parents.as_deref(), (i % 200) as u8, 10 + i));
        h.settle();
        parent = v;
    }
    assert!(h.store.get(&crate::store::keys::snapshot(PATH)).unwrap().is_some(), "600 records fold into a snapshot");
    let reloaded = h.reloaded();
    assert_eq!(reloaded.current_head().ids(), ["600.0"]);
    let d = h.delete();
    h.settle();
    assert!(h.answered(d));
    assert!(h.store.scan_prefix(&refs::all_owners()).unwrap().is_empty(), "no reference outlives an erase");
    assert_eq!(h.reloaded().kind(), None);
}
