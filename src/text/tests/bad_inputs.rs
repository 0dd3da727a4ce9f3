//! Bad client inputs: typed errors, no panic, the document unchanged and still usable.

use super::*;
use crate::protocol::Bound;
use crate::text::{Outcome, TextError};

fn try_put(doc: &mut TextDoc, version: &str, parents: &[&str], patches: Vec<Patch>) -> TextError {
    let before = (doc.text(), doc.version(), doc.event_count(), doc.encode_full());
    let err = doc.apply(edit(version, parents, Change::Patches(patches))).unwrap_err();
    assert_eq!(before, (doc.text(), doc.version(), doc.event_count(), doc.encode_full()), "{err}");
    assert!(!err.to_string().is_empty());
    err
}

#[test]
fn bad_ranges() {
    let mut doc = hello("a");
    put(&mut doc, "a-5", &["a-4"], vec![p(5, 5, "!")]);
    let e = try_put(&mut doc, "b-0", &["a-4"], vec![p(6, 6, "x")]);
    assert_eq!(e, TextError::RangeOutOfBounds { start: 6, end: 6, len: 5 });
    let e = try_put(&mut doc, "b-1", &["a-4"], vec![p(3, 1, "")]);
    assert_eq!(e.code(), "range_reversed");
    let e = try_put(&mut doc, "b-3", &["a-4"], vec![p(0, 2, ""), p(1, 3, "")]);
    assert_eq!(e.code(), "overlapping_patches");
    let neg = TextRange { start: Bound::FromEnd(7), end: Bound::FromEnd(0) };
    let e = try_put(&mut doc, "b-6", &["a-4"], vec![Patch { range: neg, content: String::new() }]);
    assert_eq!(e, TextError::RangeOutOfBounds { start: -2, end: 5, len: 5 });
    let huge = TextRange { start: Bound::FromStart(u64::MAX), end: Bound::FromStart(u64::MAX) };
    let e = try_put(&mut doc, "b-0", &[], vec![Patch { range: huge, content: "x".into() }]);
    assert_eq!(e.code(), "range_out_of_bounds");
    // Against the current version (length 6) the same range is fine.
    put(&mut doc, "b-0", &["a-5"], vec![p(6, 6, "x")]);
    assert_eq!(doc.text(), "hello!x");
    assert_consistent(&doc);
}

#[test]
fn unknown_and_malformed_parents() {
    let mut doc = hello("a");
    let e = try_put(&mut doc, "b-0", &["a-4", "zz-1", "a-5"], vec![p(0, 0, "x")]);
    assert_eq!(e, TextError::UnknownVersion(vs(&["a-5", "zz-1"])));
    // Ids no agent can ever write are refused, not "unknown" (which would mean 309: retry).
    let long = format!("{}-0", "x".repeat(50));
    for bad in ["ROOT-0", "-3", long.as_str()] {
        let e = try_put(&mut doc, "b-0", &["a-4", "zz-1", bad], vec![p(0, 0, "x")]);
        assert_eq!(e.code(), "invalid_agent", "{bad}");
        assert_eq!(doc.check_known(&vs(&[bad])).unwrap_err().code(), "invalid_agent", "{bad}");
    }
    let e = try_put(&mut doc, "b-0", &["a-x"], vec![p(0, 0, "x")]);
    assert_eq!(e.code(), "invalid_event_id");
    assert_eq!(doc.check_known(&vs(&["a-9", "a-1"])).unwrap_err(), TextError::UnknownVersion(vs(&["a-9"])));
    assert!(doc.check_known(&vs(&["a-0", "a-4"])).is_ok());
    assert_eq!(doc.text_at(&vs(&["q-0"])).unwrap_err().code(), "unknown_version");
    assert_eq!(
        doc.union(&vs(&["q-0"]), &vs(&["r-1", "a-1"])).unwrap_err(),
        TextError::UnknownVersion(vs(&["q-0", "r-1"]))
    );
    assert_eq!(doc.xf_patches(&vs(&["a-99999"]), &doc.version()).unwrap_err().code(), "unknown_version");
    assert_eq!(doc.history_since(&vs(&["ROOT-1"]), &doc.version()).unwrap_err().code(), "invalid_agent");
    // Redundant parents are reduced to an antichain (DT would be poisoned by them).
    put(&mut doc, "b-0", &["a-1", "a-4", "a-3"], vec![p(5, 5, "!")]);
    assert_eq!(doc.text(), "hello!");
    assert_consistent(&doc);
}

#[test]
fn bad_versions_and_agents() {
    let mut doc = hello("a");
    for (v, code) in [
        ("ROOT-0", "invalid_agent"),
        ("-0", "invalid_agent"),
        (&*format!("{}-0", "x".repeat(50)), "invalid_agent"),
        ("b-9007199254740992", "invalid_event_id"),
        ("b", "invalid_event_id"),
        ("b-01", "invalid_event_id"),
    ] {
        assert_eq!(try_put(&mut doc, v, &["a-4"], vec![p(0, 0, "x")]).code(), code, "{v}");
    }
    let mut e = edit("b-0", &["a-4"], Change::Patches(vec![p(0, 0, "x")]));
    e.version = None;
    e.fallback_agent = "ROOT".into();
    assert_eq!(doc.apply(e).unwrap_err().code(), "invalid_agent");
    // Seq gap: b's next seq is 0, the edit starts at 5.
    let e = try_put(&mut doc, "b-5", &["a-4"], vec![p(0, 0, "x")]);
    assert_eq!(e, TextError::SeqGap { agent: "b".into(), expected: 0, got: 5 });
    // The biggest seq is accepted syntactically but is a gap here.
    let e = try_put(&mut doc, "b-9007199254740991", &["a-4"], vec![p(0, 0, "x")]);
    assert_eq!(e.code(), "seq_gap");
    // Every code is distinct and snake_case.
    assert_eq!(doc.apply(edit("b-0", &["a-4"], Change::Patches(vec![p(0, 0, "x")]))).unwrap().outcome, Outcome::Fresh);
    assert_eq!(doc.text(), "xhello");
}

#[test]
fn parents_at_or_after_the_own_version_are_cyclic() {
    let mut doc = hello("a");
    // Self-parent, unknown or known (a duplicate retry cannot name itself as parent either),
    // and a later event of the same agent; refused before unknown parents would park it.
    for (version, parents) in
        [("c-0", &["c-0"][..]), ("a-4", &["a-4"][..]), ("c-1", &["a-4", "c-5"][..]), ("a-9", &["a-9", "a-4"][..])]
    {
        let e = try_put(&mut doc, version, parents, vec![p(0, 0, "x")]);
        assert_eq!(e.code(), "cyclic_parents", "{version} {parents:?}");
    }
    // An earlier event of the same agent is an ordinary parent.
    put(&mut doc, "a-5", &["a-4"], vec![p(5, 5, "!")]);
    assert_eq!(doc.text(), "hello!");
    assert_consistent(&doc);
}

#[test]
fn partial_tail_that_does_not_fit_is_refused() {
    // b-0..b-4 delete all of "hello". A retry claiming b-4..b-5 = "xy" appended to "hello" would
    // hang its tail ("y" at 6) off b-4, where the text is empty: refused, nothing added.
    let mut doc = hello("a");
    put(&mut doc, "b-4", &["a-4"], vec![p(0, 5, "")]);
    let e = try_put(&mut doc, "b-5", &["a-4"], vec![p(5, 5, "xy")]);
    assert_eq!(e, TextError::RangeOutOfBounds { start: 6, end: 7, len: 0 });
    // A fitting partial retry is applied.
    let a = put(&mut doc, "b-5", &["a-4"], vec![p(0, 5, "y")]);
    assert_eq!((a.outcome, a.added), (Outcome::Partial, 1));
    assert_eq!(doc.text(), "y");
    assert_consistent(&doc);
}

#[test]
fn error_codes_are_stable() {
    let all = [
        TextError::InvalidEventId { id: "x".into() },
        TextError::InvalidAgent { agent: "ROOT".into(), reason: "r" },
        TextError::UnknownVersion(vs(&["a-1"])),
        TextError::CyclicParents { version: "a-1".into(), parent: "a-1".into() },
        TextError::RangeReversed { start: 2, end: 1 },
        TextError::RangeOutOfBounds { start: 0, end: 9, len: 1 },
        TextError::OverlappingPatches { first_start: 0, first_end: 2, second_start: 1, second_end: 3 },
        TextError::SeqTooLow { seq: 0, count: 3 },
        TextError::SeqGap { agent: "a".into(), expected: 0, got: 2 },
        TextError::CorruptEncoding("x".into()),
        TextError::TooLarge("x".into()),
    ];
    let codes: Vec<&str> = all.iter().map(TextError::code).collect();
    let mut dedup = codes.clone();
    dedup.sort_unstable();
    dedup.dedup();
    assert_eq!(dedup.len(), all.len());
    assert!(codes.iter().all(|c| c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_')));
    assert_eq!(all[2].to_string(), "unknown version: \"a-1\"");
}
