//! Turning an edit's patches into diamond-types operations with braid-text's exact numbering.
//!
//! Recipe (DT-FACTS §2.1): resolve negative bounds against the parent length, sort by start,
//! require `prev_end <= start <= end <= len`; then per patch a backward delete run (one event per
//! code point, `loc.fwd = false`, even for one char) followed by the insert run, positions read
//! against the document left by the previous op. Also the partial-duplicate trim (DT-FACTS §2.2), the
//! final "does every op fit" check, and the minimal snapshot diff. No DT log is touched here.

use super::TextError;
use crate::protocol::{Bound, Patch};
use diamond_types::list::operation::{OpKind, Operation};

/// A validated patch in absolute code points of the parent text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Span {
    pub start: usize,
    pub end: usize,
    pub content: String,
    pub chars: usize,
}

fn too_large(what: &str) -> TextError {
    TextError::TooLarge(what.to_string())
}

fn resolve_bound(b: Bound, len: usize) -> i128 {
    match b {
        Bound::FromStart(n) => i128::from(n),
        Bound::FromEnd(n) => len as i128 - i128::from(n),
    }
}

/// Resolves, validates and sorts patches against a parent text of `len` code points.
pub(super) fn resolve(patches: Vec<Patch>, len: usize) -> Result<Vec<Span>, TextError> {
    let mut spans = Vec::with_capacity(patches.len());
    for p in patches {
        let start = resolve_bound(p.range.start, len);
        let end = resolve_bound(p.range.end, len);
        if start > end {
            return Err(TextError::RangeReversed { start, end });
        }
        if start < 0 || end > len as i128 {
            return Err(TextError::RangeOutOfBounds { start, end, len });
        }
        let (start, end) = (start as usize, end as usize);
        let chars = p.content.chars().count();
        spans.push(Span { start, end, content: p.content, chars });
    }
    // Stable: patches with equal starts keep their order, as JS's sort does.
    spans.sort_by_key(|s| s.start);
    for w in spans.windows(2) {
        if w[0].end > w[1].start {
            return Err(TextError::OverlappingPatches {
                first_start: w[0].start,
                first_end: w[0].end,
                second_start: w[1].start,
                second_end: w[1].end,
            });
        }
    }
    Ok(spans)
}

/// `text` with validated, sorted, non-overlapping `spans` applied (code point offsets).
pub(super) fn apply_spans(text: &str, spans: &[Span]) -> String {
    let mut out = String::with_capacity(text.len() + spans.iter().map(|s| s.content.len()).sum::<usize>());
    let mut chars = text.chars();
    let mut at = 0;
    for span in spans {
        out.extend(chars.by_ref().take(span.start - at));
        out.push_str(&span.content);
        chars.by_ref().take(span.end - span.start).for_each(drop);
        at = span.end;
    }
    out.extend(chars);
    out
}

/// `[0:len]` + body: what a whole-body PUT with a Version means in braid-text.
pub(super) fn whole_replace(len: usize, body: String) -> Vec<Span> {
    let chars = body.chars().count();
    vec![Span { start: 0, end: len, content: body, chars }]
}

/// The single common-prefix/suffix patch turning `old` into `new` (none if they are equal).
pub(super) fn minimal_diff(old: &str, new: &str) -> Vec<Span> {
    let a: Vec<char> = old.chars().collect();
    let b: Vec<char> = new.chars().collect();
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let max_suffix = a.len().min(b.len()) - prefix;
    let suffix = a.iter().rev().zip(b.iter().rev()).take(max_suffix).take_while(|(x, y)| x == y).count();
    let (end, new_end) = (a.len() - suffix, b.len() - suffix);
    if prefix == end && prefix == new_end {
        return Vec::new();
    }
    let content: String = b[prefix..new_end].iter().collect();
    vec![Span { start: prefix, end, content, chars: new_end - prefix }]
}

/// Number of events: one per deleted and per inserted code point.
pub(super) fn count(spans: &[Span]) -> Result<u64, TextError> {
    spans.iter().try_fold(0u64, |acc, s| {
        acc.checked_add((s.end - s.start) as u64)
            .and_then(|a| a.checked_add(s.chars as u64))
            .ok_or_else(|| too_large("event count"))
    })
}

fn backward_delete(start: usize, len: usize) -> Operation {
    let mut op = Operation::new_delete(start..start + len);
    op.loc.fwd = false;
    op
}

/// The DT ops for validated spans, in braid-text's event order.
pub(super) fn build_ops(spans: &[Span]) -> Result<Vec<Operation>, TextError> {
    let mut ops = Vec::new();
    let (mut inserted, mut deleted) = (0usize, 0usize);
    for s in spans {
        // Position in the evolving document of absolute parent position p: p + inserted - deleted
        // (deleted <= s.start because patches are sorted and disjoint).
        let shift = |p: usize, inserted: usize, deleted: usize| {
            p.checked_add(inserted).and_then(|x| x.checked_sub(deleted)).ok_or_else(|| too_large("position"))
        };
        let n = s.end - s.start;
        if n > 0 {
            ops.push(backward_delete(shift(s.start, inserted, deleted)?, n));
            deleted += n;
        }
        if s.chars > 0 {
            ops.push(Operation::new_insert(shift(s.end, inserted, deleted)?, &s.content));
            inserted = inserted.checked_add(s.chars).ok_or_else(|| too_large("position"))?;
        }
    }
    Ok(ops)
}

/// Drops the first `k` events (already known): a straddled backward delete keeps its position
/// and shrinks; a straddled insert moves right by `k` and loses its first `k` chars (DT-FACTS §2.2).
pub(super) fn trim_front(ops: Vec<Operation>, mut k: usize) -> Vec<Operation> {
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        let len = op.end() - op.start();
        if k >= len {
            k -= len;
            continue;
        }
        if k == 0 {
            out.push(op);
            continue;
        }
        match op.kind {
            OpKind::Del => out.push(backward_delete(op.start(), len - k)),
            OpKind::Ins => {
                let rest: String = op.content_as_str().unwrap_or_default().chars().skip(k).collect();
                out.push(Operation::new_insert(op.start() + k, &rest));
            }
        }
        k = 0;
    }
    out
}

/// Checks that each op, read against the document left by the previous one, stays inside a
/// document of initial length `len`. DT accepts out-of-range ops and is then poisoned (DT-FACTS §6).
pub(super) fn check_ops_fit(ops: &[Operation], len: usize) -> Result<usize, TextError> {
    let mut cur = len;
    for op in ops {
        let n = op.end() - op.start();
        let fits = match op.kind {
            OpKind::Ins => op.start() <= cur,
            OpKind::Del => op.end() <= cur,
        };
        if !fits {
            return Err(TextError::RangeOutOfBounds { start: op.start() as i128, end: op.end() as i128, len: cur });
        }
        cur = match op.kind {
            OpKind::Ins => cur.checked_add(n).ok_or_else(|| too_large("document length"))?,
            OpKind::Del => cur - n,
        };
    }
    Ok(cur)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::protocol::TextRange;

    fn patch(s: u64, e: u64, c: &str) -> Patch {
        Patch { range: TextRange::absolute(s, e), content: c.into() }
    }

    #[test]
    fn numbering_delete_then_insert() {
        let spans = resolve(vec![patch(5, 5, "!"), patch(0, 1, "H")], 5).unwrap();
        assert_eq!(count(&spans).unwrap(), 3);
        let ops = build_ops(&spans).unwrap();
        assert_eq!(ops.len(), 3);
        assert_eq!((ops[0].kind, ops[0].start(), ops[0].end(), ops[0].loc.fwd), (OpKind::Del, 0, 1, false));
        assert_eq!((ops[1].kind, ops[1].start()), (OpKind::Ins, 0));
        assert_eq!((ops[2].kind, ops[2].start()), (OpKind::Ins, 5));
    }

    #[test]
    fn negative_bounds() {
        let p = Patch {
            range: crate::protocol::TextRange { start: Bound::FromEnd(0), end: Bound::FromEnd(0) },
            content: "$".into(),
        };
        assert_eq!(resolve(vec![p], 5).unwrap()[0].start, 5);
        let p = Patch {
            range: crate::protocol::TextRange { start: Bound::FromEnd(6), end: Bound::FromEnd(0) },
            content: String::new(),
        };
        assert_eq!(resolve(vec![p], 5).unwrap_err().code(), "range_out_of_bounds");
    }

    #[test]
    fn trims() {
        let ops = build_ops(&resolve(vec![patch(1, 4, "xyz")], 5).unwrap()).unwrap();
        let t = trim_front(ops.clone(), 1);
        assert_eq!((t[0].kind, t[0].start(), t[0].end(), t[0].loc.fwd), (OpKind::Del, 1, 3, false));
        let t = trim_front(ops, 4);
        assert_eq!((t[0].start(), t[0].content_as_str()), (2, Some("yz")));
    }

    #[test]
    fn diff_is_minimal() {
        assert_eq!(minimal_diff("hello", "hello"), vec![]);
        let d = minimal_diff("a😀b", "a😀éb");
        assert_eq!(d, vec![Span { start: 2, end: 2, content: "é".into(), chars: 1 }]);
        let d = minimal_diff("aaa", "aa");
        assert_eq!((d[0].start, d[0].end, d[0].chars), (2, 3, 0));
    }

    #[test]
    fn spans_apply_in_code_points() {
        let spans = vec![
            Span { start: 0, end: 1, content: "H".into(), chars: 1 },
            Span { start: 2, end: 2, content: "é".into(), chars: 1 },
            Span { start: 3, end: 4, content: "".into(), chars: 0 },
        ];
        assert_eq!(apply_spans("h😀yz", &spans), "H😀éy");
        assert_eq!(apply_spans("abc", &[]), "abc");
    }

    #[test]
    fn fit_check() {
        let ops = vec![Operation::new_insert(3, "ab"), backward_delete(3, 2)];
        // 3 chars, +2 inserted, -2 deleted: the check also yields the resulting length.
        assert_eq!(check_ops_fit(&ops, 3).ok(), Some(3));
        assert_eq!(check_ops_fit(&ops[..1], 3).ok(), Some(5));
        assert!(check_ops_fit(&ops, 2).is_err());
        assert!(check_ops_fit(&[backward_delete(0, 4)], 3).is_err());
    }
}
