//! The remembered lengths (`lengths.rs`) agree with the real text at every version clients
//! name as Parents: each PUT's own version and every tip, under concurrent chains with
//! deletes, emoji and partial retries.

use super::{edit, p};
use crate::protocol::VersionSet;
use crate::text::frontier::to_local;
use crate::text::{Change, TextDoc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[test]
fn remembered_lengths_match_checked_out_texts() {
    for seed in 0..5u64 {
        // Mostly each agent's own chain (long concurrent branches), sometimes the tip.
        let (doc, seen) = random_history(seed, Shape { deletes: true, overlapping: false });
        // A copy with nothing remembered computes every length from history instead.
        let fresh = TextDoc::decode_full(&doc.encode_full()).unwrap();
        for v in &seen {
            let lv = to_local(&doc.oplog, v).unwrap();
            let truth = doc.text_at(v).unwrap().chars().count();
            assert_eq!(doc.len_at_local(&lv).unwrap(), truth, "seed {seed}, version {v:?}");
            let fresh_lv = to_local(&fresh.oplog, v).unwrap(); // local times differ per log
            assert_eq!(fresh.len_at_local(&fresh_lv).unwrap(), truth, "seed {seed}, version {v:?} (recomputed)");
        }
        assert!(doc.lengths.get(&to_local(&doc.oplog, &seen[0]).unwrap()).is_some(), "seed {seed}: nothing remembered");
    }
}

/// How [`random_history`]'s writers behave.
#[derive(Clone, Copy)]
struct Shape {
    /// Edits delete as well as insert.
    deletes: bool,
    /// Each writer continues from the head it was answered with (else from its own last
    /// version: chains that never see each other), and a third of the writes are on the tip
    /// (else a quarter).
    overlapping: bool,
}

/// A random concurrent history: the document and the versions clients were answered or named
/// (each write's own version first, then the head, then its parents).
fn random_history(seed: u64, shape: Shape) -> (TextDoc, Vec<VersionSet>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut doc = TextDoc::new();
    let agents = ["a", "b", "c", "d"];
    let mut last: Vec<VersionSet> = vec![VersionSet::new(Vec::<String>::new()); agents.len()];
    let mut seen = Vec::new();
    let tip_ratio = if shape.overlapping { 3 } else { 4 };
    for _ in 0..150 {
        let k = rng.random_range(0..agents.len());
        let parents = if rng.random_ratio(1, tip_ratio) { doc.version() } else { last[k].clone() };
        let len = doc.text_at(&parents).unwrap().chars().count() as u64;
        let start = rng.random_range(0..=len);
        let end = if shape.deletes { (start + rng.random_range(0..4)).min(len) } else { start };
        let content = ["x", "😀é", "", "yz"][rng.random_range(0..4)];
        if start == end && content.is_empty() {
            continue;
        }
        let chars = content.chars().count() as u64 + (end - start);
        let agent = agents[k];
        let seq = doc.next_seq(agent) + chars - 1;
        let ids: Vec<&str> = parents.ids().iter().map(String::as_str).collect();
        let e = edit(&format!("{agent}-{seq}"), &ids, Change::Patches(vec![p(start, end, content)]));
        let applied = doc.apply(e).unwrap();
        last[k] = if shape.overlapping { doc.version() } else { applied.version.clone() };
        seen.push(applied.version);
        seen.push(doc.version());
        seen.push(parents);
    }
    (doc, seen)
}

#[test]
fn counted_floors_never_exceed_the_text_and_are_exact_without_deletes() {
    let mut inexact = 0;
    for seed in 0..6u64 {
        for deletes in [false, true] {
            let (doc, seen) = random_history(seed, Shape { deletes, overlapping: true });
            // A fresh decode remembers nothing: every floor is counted.
            let mut fresh = TextDoc::decode_full(&doc.encode_full()).unwrap();
            for v in &seen {
                let truth = doc.text_at(v).unwrap().chars().count();
                let lv = to_local(&fresh.oplog, v).unwrap();
                let floor = fresh.len_floor_at_local(&lv);
                assert!(floor.len <= truth, "seed {seed}, {v:?}: floor {} above the text's {truth}", floor.len);
                if floor.exact || !deletes {
                    assert_eq!(floor.len, truth, "seed {seed}, {v:?}: an exact floor must be the length");
                }
                inexact += usize::from(!floor.exact);
            }
        }
    }
    assert!(inexact > 0, "no history exercised the inexact floor");
}

#[test]
fn ranges_beyond_an_inexact_floor_are_judged_on_the_exact_length() {
    // "abc", then b and c delete the same "b" concurrently: the text is "ac" (2) but counting
    // gives 3 - 2 = 1. Ranges up to 2 are good, 3 is not; the floor must not decide either.
    let mut doc = TextDoc::new();
    doc.apply(edit("a-2", &[], Change::Patches(vec![p(0, 0, "abc")]))).unwrap();
    doc.apply(edit("b-0", &["a-2"], Change::Patches(vec![p(1, 2, "")]))).unwrap();
    doc.apply(edit("c-0", &["a-2"], Change::Patches(vec![p(1, 2, "")]))).unwrap();
    let mut fresh = TextDoc::decode_full(&doc.encode_full()).unwrap();
    let head = fresh.version();
    let floor = fresh.len_floor_at_local(&to_local(&fresh.oplog, &head).unwrap());
    assert_eq!((floor.len, floor.exact), (1, false));
    let ids: Vec<&str> = head.ids().iter().map(String::as_str).collect();
    let err = fresh.apply(edit("d-0", &ids, Change::Patches(vec![p(3, 3, "z")]))).unwrap_err();
    assert!(matches!(err, crate::text::TextError::RangeOutOfBounds { len: 2, .. }), "{err:?}");
    fresh.apply(edit("d-0", &ids, Change::Patches(vec![p(2, 2, "z")]))).unwrap();
    assert_eq!(fresh.text(), "acz");
}

#[test]
fn the_upper_bound_restarts_from_a_merged_length() {
    // Concurrent chains that insert and then delete their own text: the bound adds every
    // insert, so it drifts above the text until a merge tells the exact length again.
    let mut doc = TextDoc::new();
    doc.apply(edit("a-9", &[], Change::Patches(vec![p(0, 0, "0123456789")]))).unwrap();
    doc.apply(edit("b-4", &["a-9"], Change::Patches(vec![p(0, 0, "bbbbb")]))).unwrap();
    doc.apply(edit("c-4", &["a-9"], Change::Patches(vec![p(0, 0, "ccccc")]))).unwrap();
    doc.apply(edit("b-9", &["b-4"], Change::Patches(vec![p(0, 5, "")]))).unwrap();
    doc.apply(edit("c-9", &["c-4"], Change::Patches(vec![p(0, 5, "")]))).unwrap();
    assert!(doc.len_upper_bound() >= 20, "the bound kept the deleted inserts: {}", doc.len_upper_bound());
    assert_eq!(doc.len_chars(), 10, "merged");
    doc.apply(edit("d-0", &["a-9"], Change::Patches(vec![p(0, 0, "d")]))).unwrap();
    assert_eq!(doc.len_upper_bound(), 11, "the bound starts again from the merged length");
    assert_eq!(doc.len_chars(), 11);
}
