//! braid-text 0.5.27 transcripts (`spec/WIRE.md` §7 says what each showed; DT-FACTS §2.4 how they were
//! checked): exact numbering, versions, texts and views.

use super::*;
use crate::protocol::Bound;
use crate::text::{HistoryUpdate, Outcome, TextError};

fn text_at(doc: &TextDoc, ids: &[&str]) -> String {
    doc.text_at(&vs(ids)).unwrap()
}

fn upd(version: &str, parents: &[&str], patch: Patch) -> HistoryUpdate {
    HistoryUpdate { version: vs(&[version]), parents: vs(parents), patch }
}

#[test]
fn t03_body_create() {
    let mut doc = TextDoc::new();
    let a = put_body(&mut doc, "alice-4", &[], "hello");
    assert_eq!((a.version, a.added, a.outcome), (vs(&["alice-4"]), 5, Outcome::Fresh));
    assert_eq!(doc.text(), "hello");
    assert_eq!(doc.version(), vs(&["alice-4"]));
    assert_eq!(doc.next_seq("alice"), 5);
    assert_consistent(&doc);
}

#[test]
fn t04_range_patch() {
    let mut doc = hello("alice");
    put(&mut doc, "bob-5", &["alice-4"], vec![p(5, 5, " world")]);
    assert_eq!(doc.text(), "hello world");
    assert_eq!(doc.version(), vs(&["bob-5"]));
    assert_eq!(text_at(&doc, &["bob-0"]), "hello ");
}

#[test]
fn t05_multi_patches_numbering() {
    for order in [vec![p(0, 1, "H"), p(5, 5, "!")], vec![p(5, 5, "!"), p(0, 1, "H")]] {
        let mut doc = hello("alice");
        let a = put(&mut doc, "bob-2", &["alice-4"], order);
        assert_eq!(a.added, 3);
        assert_eq!(doc.text(), "Hello!");
        assert_eq!(text_at(&doc, &["bob-0"]), "ello");
        assert_eq!(text_at(&doc, &["bob-1"]), "Hello");
        assert_eq!(text_at(&doc, &["bob-2"]), "Hello!");
        assert_consistent(&doc);
    }
}

#[test]
fn t08_code_points() {
    let mut doc = TextDoc::new();
    put_body(&mut doc, "u-2", &[], "a😀b");
    put(&mut doc, "v-0", &["u-2"], vec![p(2, 2, "é")]);
    assert_eq!(doc.text(), "a😀éb");
    assert_eq!(doc.len_chars(), 4);
    assert_eq!(doc.event_count(), 4);
    assert_eq!(doc.version(), vs(&["v-0"]));
}

#[test]
fn t10_old_version() {
    let doc = doc11();
    assert_eq!(doc.text(), "ello world");
    assert_eq!(doc.version(), vs(&["carol-0"]));
    assert_eq!(text_at(&doc, &["alice-4"]), "hello");
    assert_eq!(text_at(&doc, &[]), "");
}

#[test]
fn t11_history_since_parents() {
    let doc = doc11();
    let h = doc.history_since(&vs(&["alice-4"]), &doc.version()).unwrap();
    assert_eq!(h, vec![upd("bob-5", &["alice-4"], p(5, 5, " world")), upd("carol-0", &["bob-5"], p(0, 1, ""))]);
}

#[test]
fn t16_history_from_root() {
    let doc = doc11();
    let h = doc.history_since(&vs(&[]), &doc.version()).unwrap();
    assert_eq!(
        h,
        vec![
            upd("alice-4", &[], p(0, 0, "hello")),
            upd("bob-5", &["alice-4"], p(5, 5, " world")),
            upd("carol-0", &["bob-5"], p(0, 1, "")),
        ]
    );
    // Bounded by `to`.
    let h = doc.history_since(&vs(&[]), &vs(&["bob-2"])).unwrap();
    assert_eq!(h, vec![upd("alice-4", &[], p(0, 0, "hello")), upd("bob-2", &["alice-4"], p(5, 5, " wo"))]);
    assert!(doc.history_since(&doc.version(), &doc.version()).unwrap().is_empty());
}

#[test]
fn t13_simpleton_updates() {
    let mut doc = hello("alice");
    let v0 = doc.version();
    put(&mut doc, "bob-0", &["alice-4"], vec![p(5, 5, "!")]);
    assert_eq!(doc.xf_patches(&v0, &doc.version()).unwrap(), vec![p(5, 5, "!")]);
    let v1 = doc.version();
    put(&mut doc, "bob-1", &["bob-0"], vec![p(0, 1, "")]);
    assert_eq!(doc.xf_patches(&v1, &doc.version()).unwrap(), vec![p(0, 1, "")]);
    assert!(doc.xf_patches(&doc.version(), &v0).unwrap().is_empty());
}

#[test]
fn t14_simpleton_catch_up() {
    let doc = doc11();
    let xf = doc.xf_patches(&vs(&["alice-4"]), &doc.version()).unwrap();
    assert_eq!(xf, vec![p(0, 1, ""), p(5, 5, " world")]);
}

#[test]
fn t18_peer_rebase() {
    let mut doc = hello("a");
    put(&mut doc, "p1-0", &["a-4"], vec![p(0, 0, "X")]);
    put(&mut doc, "q-1", &["a-4"], vec![p(1, 1, "A"), p(4, 4, "B")]);
    assert_eq!(doc.version(), vs(&["p1-0", "q-1"]));
    assert_eq!(doc.text(), "XhAellBo");
    assert_eq!(doc.xf_patches(&vs(&["p1-0"]), &doc.version()).unwrap(), vec![p(2, 2, "A"), p(5, 5, "B")]);
}

#[test]
fn t20_concurrent_merge() {
    let mut doc = hello("a");
    put(&mut doc, "x-0", &["a-4"], vec![p(0, 0, "[")]);
    put(&mut doc, "y-0", &["a-4"], vec![p(5, 5, "]")]);
    assert_eq!(doc.text(), "[hello]");
    assert_eq!(doc.version(), vs(&["x-0", "y-0"]));
    assert_eq!(doc.union(&vs(&["x-0"]), &vs(&["y-0", "a-2"])).unwrap(), vs(&["x-0", "y-0"]));
    assert!(doc.contains(&vs(&["x-0", "y-0"]), &vs(&["a-4", "y-0"])).unwrap());
    assert!(!doc.contains(&vs(&["x-0"]), &vs(&["y-0"])).unwrap());
    assert!(!doc.contains(&vs(&[]), &vs(&["a-0"])).unwrap());
    // Concurrent from/to: only what `to` has beyond `from`.
    let h = doc.history_since(&vs(&["x-0"]), &vs(&["y-0"])).unwrap();
    assert_eq!(h, vec![upd("y-0", &["a-4"], p(5, 5, "]"))]);
    let xf = doc.xf_patches(&vs(&["x-0"]), &vs(&["y-0"])).unwrap();
    assert_eq!(xf, vec![p(6, 6, "]")]);
    assert!(doc.contains(&vs(&["a-0"]), &vs(&[])).unwrap());
    assert_consistent(&doc);
}

#[test]
fn t21_idempotent_repeat() {
    let mut doc = hello("a");
    let first = put(&mut doc, "b-0", &["a-4"], vec![p(5, 5, ".")]);
    let second = put(&mut doc, "b-0", &["a-4"], vec![p(5, 5, ".")]);
    assert_eq!(first.outcome, Outcome::Fresh);
    assert_eq!((second.outcome, second.added, second.version), (Outcome::Duplicate, 0, vs(&["b-0"])));
    // Content mismatch on a duplicate is ignored, and unknown parents do not matter either.
    let third = put(&mut doc, "b-0", &["zz-9"], vec![p(0, 0, "?")]);
    assert_eq!(third.outcome, Outcome::Duplicate);
    assert_eq!(doc.text(), "hello.");
}

#[test]
fn t23_negative_ranges() {
    let mut doc = hello("a");
    let end = TextRange { start: Bound::FromEnd(0), end: Bound::FromEnd(0) };
    put(&mut doc, "b-0", &["a-4"], vec![Patch { range: end, content: "$".into() }]);
    assert_eq!(doc.text(), "hello$");
    let last2 = TextRange { start: Bound::FromEnd(3), end: Bound::FromEnd(1) };
    put(&mut doc, "b-2", &["b-0"], vec![Patch { range: last2, content: String::new() }]);
    assert_eq!(doc.text(), "hel$");
}

#[test]
fn t24_full_body_replace() {
    let mut doc = hello("a");
    let err = doc.apply(edit("b-2", &["a-4"], Change::Snapshot("bye".into()))).unwrap_err();
    assert_eq!(err, TextError::SeqTooLow { seq: 2, count: 8 });
    assert_eq!(err.to_string(), "version seq 2 is too low for 8 changes \u{2014} use seq >= 7");
    put_body(&mut doc, "b-7", &["a-4"], "bye");
    assert_eq!(doc.text(), "bye");
    assert_eq!(doc.version(), vs(&["b-7"]));
    for (id, text) in [("b-0", "hell"), ("b-1", "hel"), ("b-4", ""), ("b-5", "b")] {
        assert_eq!(text_at(&doc, &[id]), text, "{id}");
    }
}

#[test]
fn t25_partial_overlap() {
    let mut doc = hello("a");
    put(&mut doc, "bob-0", &["a-4"], vec![p(5, 5, "!")]);
    let a = put(&mut doc, "bob-2", &["bob-0"], vec![p(0, 1, "H"), p(6, 6, "?")]);
    assert_eq!((a.outcome, a.added, a.version), (Outcome::Partial, 2, vs(&["bob-2"])));
    assert_eq!(doc.text(), "Hhello?!");
    assert_eq!(doc.version(), vs(&["bob-2"]));
    assert_consistent(&doc);
}

#[test]
fn t40_seq_too_low() {
    let mut doc = hello("a");
    let err = doc.apply(edit("z-0", &["a-4"], Change::Patches(vec![p(0, 0, "xyz")]))).unwrap_err();
    assert_eq!(err.to_string(), "version seq 0 is too low for 3 changes \u{2014} use seq >= 2");
    assert_eq!(err.code(), "seq_too_low");
    assert_eq!(doc.text(), "hello");
}

#[test]
fn versionless_edits_do_not_collide() {
    let mut doc = TextDoc::new();
    let mk = |change| Edit { version: None, fallback_agent: "peer".into(), parents: None, change };
    let a = doc.apply(mk(Change::Patches(vec![p(0, 0, "abc")]))).unwrap();
    assert_eq!(a.version, vs(&["peer-2"]));
    let b = doc.apply(mk(Change::Patches(vec![p(3, 3, "d")]))).unwrap();
    assert_eq!((b.version, b.outcome), (vs(&["peer-3"]), Outcome::Fresh));
    // Snapshot without Version: a minimal patch, here deleting "b" only (1 event).
    let c = doc.apply(mk(Change::Snapshot("acd".into()))).unwrap();
    assert_eq!((c.version, c.added), (vs(&["peer-4"]), 1));
    assert_eq!(doc.text(), "acd");
    // Unchanged snapshot: Empty, nothing added, the current version.
    let d = doc.apply(mk(Change::Snapshot("acd".into()))).unwrap();
    assert_eq!((d.outcome, d.added, d.version), (Outcome::Empty, 0, vs(&["peer-4"])));
    // Snapshot without Version against an old parent.
    let e = doc.apply(Edit { parents: Some(vs(&["peer-2"])), ..mk(Change::Snapshot("abcX".into())) }).unwrap();
    assert_eq!((e.version, e.added), (vs(&["peer-5"]), 1));
    assert_eq!(doc.text(), "acdX");
    assert_consistent(&doc);
}

#[test]
fn empty_edits_add_nothing() {
    let mut doc = hello("a");
    let a = put(&mut doc, "b-3", &["a-4"], vec![p(2, 2, "")]);
    assert_eq!((a.outcome, a.added, a.version), (Outcome::Empty, 0, vs(&["a-4"])));
    assert_eq!(doc.event_count(), 5);
    assert_eq!(doc.next_seq("b"), 0);
}
