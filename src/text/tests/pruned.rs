//! Seq floors after compaction: agents whose events were all pruned continue after their pruned
//! ids (with or without a Version, across persistence), pruned ids are never written again, and
//! the floor wins even over kept events.

use super::*;
use crate::text::{pruned_contains, Compacted, Outcome, TextError};

/// "QaxybZ" by w-0..w-5, w-6..w-9 delete all but "ab"; compacted at w-9, so every event of w is
/// pruned. Returns the original, the horizon and the compaction.
fn all_of_w_pruned() -> (TextDoc, VersionSet, Compacted) {
    let mut doc = TextDoc::new();
    put_body(&mut doc, "w-5", &[], "QaxybZ");
    put(&mut doc, "w-9", &["w-5"], vec![p(0, 1, ""), p(2, 4, ""), p(5, 6, "")]);
    let h = doc.version();
    let c = doc.compact(&h, "~t").unwrap();
    assert_eq!((c.doc.text(), c.pruned.clone()), ("ab".to_string(), vec![("w".to_string(), 0..10)]));
    (doc, h, c)
}

fn unnamed(agent: &str, body: String) -> Edit {
    Edit { version: None, fallback_agent: agent.into(), parents: None, change: Change::Snapshot(body) }
}

/// Applies `e` to the original `a` and the compacted `b`: same outcome, ids and text (and
/// parents, the horizon w-9 being the base version ~t-1 in `b`).
fn both(a: &mut TextDoc, b: &mut TextDoc, e: Edit) -> crate::text::Applied {
    let (mut x, y) = (a.apply(e.clone()).unwrap(), b.apply(e).unwrap());
    if x.parents == vs(&["w-9"]) {
        x.parents = vs(&["~t-1"]);
    }
    assert_eq!(x, y);
    assert_eq!((a.text(), a.version()), (b.text(), b.version()));
    assert_consistent(b);
    y
}

#[test]
fn fully_pruned_agents_continue_after_their_pruned_ids() {
    for named_first in [true, false] {
        let (mut a, h, c) = all_of_w_pruned();
        let mut b = c.doc.clone();
        assert_eq!((b.next_seq("w"), b.known_next_seq("w")), (10, 0));
        // The deltas the server would persist after the compacted snapshot, one per write.
        let mut deltas = Vec::new();
        // Someone else's post-horizon event to build on: "aXb".
        let x = edit("x-0", &[], Change::Patches(vec![p(1, 1, "X")]));
        a.apply(Edit { parents: Some(h.clone()), ..x.clone() }).unwrap();
        b.apply(Edit { parents: Some(c.base_version.clone()), ..x }).unwrap();
        deltas.push(b.encode_since(&c.doc.version()).unwrap());
        for named in [named_first, !named_first] {
            let low = b.next_seq("w");
            assert_eq!(a.next_seq("w"), low);
            let e = if named {
                // Two events: delete "a", insert "Q", on top of x-0.
                edit(&format!("w-{}", low + 1), &["x-0"], Change::Patches(vec![p(0, 1, "Q")]))
            } else {
                unnamed("w", format!("{}!", a.text()))
            };
            let v = b.version();
            let y = both(&mut a, &mut b, e);
            deltas.push(b.encode_since(&v).unwrap());
            let last = low + y.added as u64 - 1;
            assert_eq!((y.outcome, y.version), (Outcome::Fresh, vs(&[&format!("w-{last}")])));
            assert_eq!(b.next_seq("w"), last + 1);
            for seq in low..=last {
                let v = vs(&[&format!("w-{seq}")]);
                assert_eq!(b.text_at(&v).unwrap(), a.text_at(&v).unwrap());
                assert!(!pruned_contains(&c.pruned, &format!("w-{seq}")));
            }
        }
        assert_eq!(b.next_seq("w"), 13);
        // Loaded back (snapshot + deltas, or one new snapshot) and given the pruned ranges:
        // the same document, and it keeps agreeing with the original.
        let deltas: Vec<&[u8]> = deltas.iter().map(Vec::as_slice).collect();
        let stored = TextDoc::decode_stored(Some(&c.doc.encode_full()), &deltas).unwrap();
        for mut back in [stored, TextDoc::decode_full(&b.encode_full()).unwrap()] {
            back.set_pruned(&c.pruned);
            assert_eq!((back.text(), back.version(), &back.next_seq), (b.text(), b.version(), &b.next_seq));
            assert_eq!(back.pruned, b.pruned);
            let mut orig = a.clone();
            both(&mut orig, &mut back, unnamed("w", "done".into()));
            // "done" → "!" is five events.
            let v = format!("w-{}", back.next_seq("w") + 4);
            let e = Edit { parents: None, ..edit(&v, &[], Change::Snapshot("!".into())) };
            assert_eq!(both(&mut orig, &mut back, e).version, vs(&[&v]));
        }
    }
}

/// Right after loading a compacted snapshot the pruned ranges are unknown (they are not part of
/// DT's encoding) until the server hands them back.
#[test]
fn loaded_documents_need_their_pruned_ranges() {
    let (mut a, _, c) = all_of_w_pruned();
    let mut back = TextDoc::decode_full(&c.doc.encode_full()).unwrap();
    assert_eq!(back.next_seq("w"), 0);
    back.set_pruned(&c.pruned);
    back.set_pruned(&[("w".into(), 3..5), ("v".into(), 4..4)]); // Merged; empty ranges ignored.
    assert_eq!((back.next_seq("w"), back.next_seq("v")), (10, 0));
    assert_eq!(back.pruned, c.doc.pruned);
    let y = both(&mut a, &mut back, unnamed("w", "abc".into()));
    assert_eq!(y.version, vs(&["w-10"]));
}

#[test]
fn writes_naming_pruned_ids_are_refused() {
    let (mut a, _, c) = all_of_w_pruned();
    let mut b = c.doc.clone();
    let before = b.encode_full();
    let base = c.base_version.ids()[0].clone();
    let gone = |id: &str| TextError::PrunedVersion { id: id.into() };
    // The Version itself was pruned (the original has it: a duplicate there).
    let e = edit("w-9", &[&base], Change::Patches(vec![p(0, 0, "!")]));
    let err = b.apply(e).unwrap_err();
    assert_eq!((err.code(), &err), ("pruned_version", &gone("w-9")));
    assert!(err.to_string().contains("pruned by history compaction"), "{err}");
    let e = edit("w-9", &[], Change::Patches(vec![p(0, 0, "!")]));
    assert_eq!(a.apply(e).unwrap().outcome, Outcome::Duplicate);
    // w-8..w-11: the new w-10, w-11 would continue from the pruned w-9 (partial in the original).
    let e = edit("w-11", &[&base], Change::Patches(vec![p(0, 0, "1234")]));
    assert_eq!(b.apply(e).unwrap_err(), gone("w-9"));
    // A whole-body replace of "ab" by "z" is 3 events: w-1..w-3.
    assert_eq!(b.apply(edit("w-3", &[&base], Change::Snapshot("z".into()))).unwrap_err(), gone("w-3"));
    // Pruned parents are unknown here (the server answers those as gone).
    let e = edit("w-10", &["w-9"], Change::Patches(vec![p(0, 0, "!")]));
    assert_eq!(b.apply(e).unwrap_err(), TextError::UnknownVersion(vs(&["w-9"])));
    // Beyond the floor, a gap is still a gap.
    let e = edit("w-12", &[&base], Change::Patches(vec![p(0, 0, "!")]));
    assert_eq!(b.apply(e).unwrap_err(), TextError::SeqGap { agent: "w".into(), expected: 10, got: 12 });
    assert_eq!((b.encode_full(), b.next_seq("w")), (before, 10));
    // Compacting again keeps every floor, and a base agent may not reuse pruned ids.
    let again = c.doc.compact(&c.base_version, "~t2").unwrap();
    assert_eq!(again.pruned, vec![("~t".to_string(), 0..2)]);
    assert_eq!(again.doc.pruned_list(), vec![("w".to_string(), 0..10), ("~t".to_string(), 0..2)]);
    assert_eq!((again.doc.next_seq("~t"), again.doc.next_seq("w")), (2, 10));
    let err = again.doc.compact(&again.base_version, "~t").unwrap_err();
    let reason = "the base agent named events that an earlier compaction pruned";
    assert_eq!(err, TextError::InvalidAgent { agent: "~t".into(), reason });
}

/// Compaction never prunes an agent's events above kept ones (the property test in
/// `compact.rs` checks it: pruned events are a local-time prefix, and an agent's seqs rise with
/// local time). A stored list could still say so: the floor wins, and the write goes in at its
/// explicit seqs, hanging off the agent's own kept events.
#[test]
fn a_floor_above_kept_events_wins() {
    let mut doc = hello("a");
    let mut plain = doc.clone();
    doc.set_pruned(&[("a".into(), 7..9)]);
    assert_eq!((doc.next_seq("a"), doc.known_next_seq("a")), (9, 5));
    let bang = |v: &str| edit(v, &["a-4"], Change::Patches(vec![p(5, 5, "!?")]));
    let err = doc.apply(bang("a-6")).unwrap_err();
    assert_eq!(err, TextError::SeqGap { agent: "a".into(), expected: 9, got: 5 });
    assert_eq!(doc.apply(bang("a-7")).unwrap_err(), TextError::PrunedVersion { id: "a-7".into() });
    assert_eq!(doc.apply(bang("a-9")).unwrap_err(), TextError::PrunedVersion { id: "a-8".into() });
    let y = doc.apply(bang("a-10")).unwrap();
    assert_eq!((y.outcome, &y.version, &y.parents, y.added), (Outcome::Fresh, &vs(&["a-10"]), &vs(&["a-4"]), 2));
    assert_eq!((plain.apply(bang("a-6")).unwrap().added, plain.text()), (2, doc.text()));
    assert_eq!(doc.text_at(&vs(&["a-9"])).unwrap(), plain.text_at(&vs(&["a-5"])).unwrap());
    assert_consistent(&doc);
    // Then DT's own counter is past the floor: the usual path.
    let y = doc.apply(unnamed("a", "hello!?.".into())).unwrap();
    assert_eq!((y.outcome, y.version), (Outcome::Fresh, vs(&["a-11"])));
    let back = TextDoc::decode_full(&doc.encode_full()).unwrap();
    assert_eq!((back.text(), back.version(), back.next_seq("a")), (doc.text(), doc.version(), 12));
    assert_consistent(&doc);
}
