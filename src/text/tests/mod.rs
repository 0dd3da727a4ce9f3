//! Tests for the text module: braid-text transcripts, xf and history views, a seeded multi-agent
//! convergence property, persistence and bad inputs. Shared helpers live here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bad_inputs;
mod codec;
mod compact;
mod lengths;
mod props;
mod pruned;
mod sim;
mod transcripts;

use super::{Applied, Change, Edit, TextDoc};
use crate::protocol::{Patch, TextRange, VersionSet};

pub(super) fn vs(ids: &[&str]) -> VersionSet {
    VersionSet::new(ids.iter().map(|s| s.to_string()))
}

pub(super) fn p(s: u64, e: u64, c: &str) -> Patch {
    Patch { range: TextRange::absolute(s, e), content: c.to_string() }
}

pub(super) fn edit(version: &str, parents: &[&str], change: Change) -> Edit {
    Edit { version: Some(version.to_string()), fallback_agent: "server".into(), parents: Some(vs(parents)), change }
}

pub(super) fn put(doc: &mut TextDoc, version: &str, parents: &[&str], patches: Vec<Patch>) -> Applied {
    doc.apply(edit(version, parents, Change::Patches(patches))).unwrap()
}

pub(super) fn put_body(doc: &mut TextDoc, version: &str, parents: &[&str], body: &str) -> Applied {
    doc.apply(edit(version, parents, Change::Snapshot(body.to_string()))).unwrap()
}

/// `alice-4` = "hello" (transcript t03's setup, used by most transcripts; `spec/WIRE.md` §7).
pub(super) fn hello(agent: &str) -> TextDoc {
    let mut doc = TextDoc::new();
    put_body(&mut doc, &format!("{agent}-4"), &[], "hello");
    doc
}

/// Transcripts t10, t11, t14, t16: alice-4 "hello", bob-5 " world" at [5:5], carol-0 deletes [0:1].
pub(super) fn doc11() -> TextDoc {
    let mut doc = hello("alice");
    put(&mut doc, "bob-5", &["alice-4"], vec![p(5, 5, " world")]);
    put(&mut doc, "carol-0", &["bob-5"], vec![p(0, 1, "")]);
    doc
}

/// Applies sorted, non-overlapping absolute patches to `text`.
pub(super) fn apply_patches(text: &str, patches: &[Patch]) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut cursor = 0usize;
    for pt in patches {
        let (s, e) = pt.range.resolve(chars.len() as u64).unwrap();
        let (s, e) = (s as usize, e as usize);
        assert!(s >= cursor, "patches not sorted/disjoint: {patches:?}");
        out.extend(&chars[cursor..s]);
        out.push_str(&pt.content);
        cursor = e;
    }
    out.extend(&chars[cursor..]);
    out
}

/// Internal consistency: the incremental branch equals a fresh checkout of the tip.
pub(super) fn assert_consistent(doc: &TextDoc) {
    assert_eq!(doc.oplog.checkout_tip().content().to_string(), doc.text());
    assert_eq!(doc.len_chars(), doc.text().chars().count());
    assert_eq!(super::doc::seq_map(&doc.oplog), doc.next_seq);
}

#[test]
fn text_doc_is_send_and_sync() {
    fn check<T: Send + Sync + 'static>() {}
    check::<TextDoc>();
    check::<super::TextError>();
}
