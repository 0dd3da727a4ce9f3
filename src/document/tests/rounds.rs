//! The round contract: answers and heads come out only after `committed`; one round at a time;
//! failures leave the durable state and recover; parked writes wait and expire; folds run when
//! the document is quiet; deletes and idle unloading.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::document::{AckPolicy, Answer, DocError};
use crate::store::Store;

use super::harness::{insert, settings, Harness};

#[test]
fn nothing_is_acknowledged_or_published_before_the_round_is_durable() {
    let mut h = Harness::new();
    let a = h.write(insert("a-4", Some(&[]), 0, "hello"));
    let b = h.write(insert("b-0", Some(&["a-4"]), 5, "!"));
    let round = h.plan().expect("a round");
    assert!(round.needs_commit());
    assert!(h.answers.is_empty(), "answered before the commit: {:?}", h.answers.len());
    assert!(h.published.is_empty());
    assert_eq!(h.durable_text(), "", "nothing is in the store yet");
    // One round at a time: nothing else is planned while this one is out.
    let c = h.write(insert("c-0", None, 0, ">"));
    assert!(h.plan().is_none());
    h.commit(round);
    for token in [a, b] {
        let outcome = h.write_answer(token).unwrap().as_ref().unwrap();
        assert_eq!(outcome.current.to_header(), "\"b-0\"");
    }
    assert!(!h.answered(c), "the next round has not run");
    assert_eq!(h.published.last().unwrap().head.to_header(), "\"b-0\"");
    assert_eq!(h.durable_text(), "hello!");
    h.settle();
    assert_eq!(h.write_answer(c).unwrap().as_ref().unwrap().current.to_header(), "\"c-0\"");
    assert_eq!(h.durable_text(), ">hello!");
    let last = h.published.last().unwrap();
    assert_eq!((last.prev_head.to_header(), last.head.to_header()), ("\"b-0\"".into(), "\"c-0\"".into()));
}

#[test]
fn a_linear_round_publishes_its_catch_up_step_with_the_head_digest() {
    let mut h = Harness::new();
    h.write(insert("a-4", Some(&[]), 0, "hello"));
    h.settle();
    h.write(insert("a-5", Some(&["a-4"]), 5, "!"));
    h.settle();
    let p = h.published.last().unwrap();
    let step = p.step.get().expect("a linear round carries its step");
    assert_eq!(step.update.parents.to_header(), "\"a-4\"");
    assert_eq!(step.update.version.to_header(), "\"a-5\"");
    // The digest of the head's text, hashed from the rope; the text itself is not copied by
    // the writer (the first reader fills `current`).
    assert_eq!(step.update.repr_digest, Some(crate::protocol::repr_digest("hello!")));
    assert!(p.current.get().is_none());
}

#[test]
fn a_merge_is_not_computed_by_the_writer() {
    let mut h = Harness::new();
    h.write(insert("a-4", Some(&[]), 0, "hello"));
    h.settle();
    h.write(insert("x-0", Some(&["a-4"]), 0, "["));
    h.write(insert("y-0", Some(&["a-4"]), 5, "]"));
    h.settle();
    let p = h.published.last().unwrap();
    assert_eq!(p.head.to_header(), "\"x-0\", \"y-0\"");
    assert!(p.step.get().is_none() && p.current.get().is_none(), "left to the readers' copy");
    assert_eq!(h.durable_text(), "[hello]");
}

#[test]
fn a_failed_round_changes_nothing_durable_and_the_next_write_succeeds() {
    let mut h = Harness::new();
    h.write(insert("a-4", Some(&[]), 0, "hello"));
    h.settle();
    let before = h.published.len();
    let lost = h.write(insert("a-5", Some(&["a-4"]), 5, "?"));
    let round = h.plan().unwrap();
    h.fail(round);
    match h.write_answer(lost) {
        Some(Err(DocError::Storage(_))) => {}
        other => panic!("the failed write got {other:?}"),
    }
    assert_eq!(h.published.len(), before, "a failed round publishes nothing");
    assert_eq!(h.durable_text(), "hello");
    // The core forgot the failed write: the same id writes again, with other content.
    let again = h.write(insert("a-5", Some(&["a-4"]), 5, "!"));
    h.settle();
    assert_eq!(h.write_answer(again).unwrap().as_ref().unwrap().applied.added, 1);
    assert_eq!(h.durable_text(), "hello!");
    assert_eq!(h.core.doc_copy().text(), "hello!");
}

#[test]
fn a_failed_delete_or_fold_needs_no_reload() {
    let mut h = Harness::new();
    for i in 0..10u64 {
        let parents: Vec<String> = if i == 0 { vec![] } else { vec![format!("a-{}", i - 1)] };
        let parents: Vec<&str> = parents.iter().map(String::as_str).collect();
        h.write(insert(&format!("a-{i}"), Some(&parents), i, "x"));
        h.settle();
    }
    let del = h.delete();
    let round = h.plan().unwrap();
    h.fail(round);
    assert!(matches!(h.answers.iter().find(|(t, _)| *t == del), Some((_, Answer::Done(Err(_))))));
    assert_eq!(h.core.doc_copy().text(), "x".repeat(10), "a failed delete keeps the document");
    // The log has 10 records: after 500 ms of quiet it folds; a failed fold is retried later.
    h.now += Duration::from_secs(1);
    let fold = h.plan().expect("a fold round");
    h.fail(fold);
    assert!(h.plan().is_none(), "not retried at once");
    h.now += Duration::from_secs(31);
    let fold = h.plan().expect("retried after 30 s");
    h.commit(fold);
    assert_eq!(h.store.scan_prefix(&crate::store::keys::log_prefix(super::harness::PATH)).unwrap().len(), 0);
    assert_eq!(h.durable_text(), "x".repeat(10));
}

#[test]
fn writes_wait_for_their_parents_then_expire() {
    let mut h = Harness::new();
    let early = h.write(insert("b-0", Some(&["a-4"]), 5, "!"));
    assert!(h.plan().is_none(), "a parked write makes no round");
    assert!(!h.answered(early));
    h.write(insert("a-4", Some(&[]), 0, "hello"));
    h.settle();
    assert_eq!(h.write_answer(early).unwrap().as_ref().unwrap().current.to_header(), "\"b-0\"");
    assert_eq!(h.durable_text(), "hello!");

    let never = h.write(insert("c-0", Some(&["zz-9"]), 0, "?"));
    assert!(h.plan().is_none());
    assert!(h.core.next_wake() <= h.now + Duration::from_secs(3));
    h.now += Duration::from_secs(4);
    h.settle();
    match h.write_answer(never) {
        Some(Err(DocError::UnknownVersion(v))) => assert_eq!(v.to_header(), "\"zz-9\""),
        other => panic!("got {other:?}"),
    }
}

#[test]
fn too_many_parked_writes_are_refused() {
    let mut h = Harness::new();
    let tokens: Vec<u32> = (0..6).map(|i| h.write(insert(&format!("w{i}-0"), Some(&["a-4"]), 0, "?"))).collect();
    assert!(h.plan().is_some(), "the refusals come out in a round");
    let refused = tokens.iter().filter(|t| matches!(h.write_answer(**t), Some(Err(DocError::Overloaded)))).count();
    assert_eq!(refused, 6 - settings().max_parked_writes);
}

#[test]
fn duplicates_of_durable_writes_need_no_commit() {
    let mut h = Harness::new();
    h.write(insert("a-4", Some(&[]), 0, "hello"));
    h.settle();
    let again = h.write(insert("a-4", Some(&[]), 0, "hello"));
    let round = h.plan().unwrap();
    assert!(!round.needs_commit());
    assert_eq!(h.write_answer(again).unwrap().as_ref().unwrap().current.to_header(), "\"a-4\"");
}

#[test]
fn refusals_are_immediate_and_change_nothing() {
    let mut h = Harness::new();
    h.write(insert("a-4", Some(&[]), 0, "hello"));
    h.settle();
    let bad = h.write(insert("b-0", Some(&["a-4"]), 99, "!"));
    let big = h.write(insert("c-2000", Some(&["a-4"]), 0, &"z".repeat(2001)));
    let round = h.plan().unwrap();
    assert!(!round.needs_commit());
    assert!(matches!(h.write_answer(bad), Some(Err(DocError::Text(_)))));
    assert!(matches!(h.write_answer(big), Some(Err(DocError::DocumentTooLarge { limit: 1000 }))));
    assert_eq!(h.core.doc_copy().text(), "hello");
}

#[test]
fn a_delete_erases_everything_and_refuses_parked_writes() {
    let mut h = Harness::new();
    h.write(insert("a-4", Some(&[]), 0, "hello"));
    h.settle();
    let parked = h.write(insert("b-0", Some(&["q-1"]), 0, "?"));
    let del = h.delete();
    h.settle();
    assert!(matches!(h.answers.iter().find(|(t, _)| *t == del), Some((_, Answer::Done(Ok(()))))));
    assert!(matches!(h.write_answer(parked), Some(Err(DocError::Deleted))));
    assert!(h.published.last().unwrap().reset);
    assert_eq!(h.durable_text(), "");
    // Only the store's own format record is left.
    let (format_key, _) = crate::store::format::current_record();
    let left: Vec<Vec<u8>> = h.store.scan_prefix(b"").unwrap().into_iter().map(|(k, _)| k).collect();
    assert_eq!(left, vec![format_key], "no record of the document is left");
}

#[test]
fn an_idle_document_may_unload_and_reloads_to_the_same_state() {
    let mut h = Harness::new();
    h.write(insert("a-4", Some(&[]), 0, "hello"));
    h.write(insert("b-1", Some(&["a-4"]), 5, "!?"));
    h.settle();
    assert!(!h.core.may_unload(h.now));
    h.now += Duration::from_secs(61);
    h.settle(); // the quiet fold
    assert!(h.core.may_unload(h.now));
    let reloaded = h.reloaded();
    assert_eq!(reloaded.doc_copy().text(), h.core.doc_copy().text());
    assert_eq!(reloaded.doc_copy().version(), h.core.doc_copy().version());
    assert_eq!(reloaded.stored_bytes(), h.core.stored_bytes());
    // A parked write keeps it loaded.
    h.write(insert("c-0", Some(&["nope-1"]), 0, "?"));
    h.plan();
    h.now += Duration::from_secs(1);
    assert!(!h.core.may_unload(h.now));
}

#[test]
fn unsafe_ack_answers_before_the_commit() {
    let mut h = Harness::with(crate::document::CoreSettings { ack: AckPolicy::UnsafeBeforeDurable, ..settings() });
    let a = h.write(insert("a-4", Some(&[]), 0, "hello"));
    let round = h.plan().unwrap();
    assert!(h.answered(a), "the test-only policy answers at once");
    h.commit(round);
    assert_eq!(h.answers.iter().filter(|(t, _)| *t == a).count(), 1, "answered once");
}
