//! dt merge type: the original updates for events in `to`'s history but not in `from`'s, one per
//! run, exactly as the fork's `updates_since` (DT-FACTS §3.2; WIRE §7 t11 and t16).
//!
//! Steps: per history entry, the wanted times are `[first not in from, first not in to)` (both
//! memberships are prefixes of an entry); the original ops from `iter_range_since(from)` are
//! walked alongside the per-entry ranges to give each op its times; ops are split at entry,
//! agent-run and range boundaries; each piece becomes one update with its original position.
//! Forward deletes (and reversed inserts, which only foreign logs contain) become one update per
//! event, because a text range cannot carry that numbering. No transformation happens here.

use super::frontier::{contains_time, remote_id, to_remote};
use super::{HistoryUpdate, TextDoc, TextError};
use crate::protocol::{Patch, TextRange, VersionSet};
use diamond_types::list::operation::{OpKind, Operation};

/// Times of one history entry after `from`: `[start, want_end)` are wanted, `[want_end, end)` are
/// walked past (in `from`'s complement but not in `to`'s history).
struct EntryRange {
    start: usize,
    want_end: usize,
    end: usize,
    entry_start: usize,
    parents: Vec<usize>,
}

fn inconsistent() -> TextError {
    TextError::CorruptEncoding("history walk does not match the operation log".into())
}

fn abs(s: usize, e: usize, content: String) -> Patch {
    Patch { range: TextRange::absolute(s as u64, e as u64), content }
}

impl TextDoc {
    /// The original history updates for events in `to`'s history but not in `from`'s, one per
    /// run, in local time order (so each update's parents precede it).
    pub fn history_since(&self, from: &VersionSet, to: &VersionSet) -> Result<Vec<HistoryUpdate>, TextError> {
        let (v, t) = self.two_local(from, to)?;
        let oplog = &self.oplog;
        let to_is_tip = self.is_tip(&t);
        // First time of [s, e) not in version `lv` (membership is a prefix of each entry).
        let first_not_in = |lv: &[usize], s: usize, e: usize| {
            let (mut lo, mut hi) = (s, e);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if contains_time(oplog, lv, mid) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            lo
        };
        let mut ranges = Vec::new();
        for e in oplog.iter_history() {
            let (s, end) = (e.span.start, e.span.end);
            let start = first_not_in(&v, s, end);
            if start == end {
                continue;
            }
            let want_end = if to_is_tip { end } else { first_not_in(&t, start, end) };
            ranges.push(EntryRange { start, want_end, end, entry_start: s, parents: e.parents.to_vec() });
        }

        let mut out = Vec::new();
        let mut idx = 0usize; // current entry range
        let mut cursor = ranges.first().map_or(0, |r| r.start); // next time to assign
        for op in oplog.iter_range_since(&v) {
            let len = op.end() - op.start();
            let mut done = 0usize; // op offset already assigned
            while done < len {
                let r = ranges.get(idx).ok_or_else(inconsistent)?;
                let n = (r.end - cursor).min(len - done);
                // Wanted part of [cursor, cursor + n).
                let want_to = (cursor + n).min(r.want_end);
                if cursor < want_to {
                    self.emit(&op, done, cursor, want_to, r, &mut out)?;
                }
                cursor += n;
                done += n;
                if cursor == r.end {
                    idx += 1;
                    if let Some(next) = ranges.get(idx) {
                        cursor = next.start;
                    }
                }
            }
        }
        if idx != ranges.len() {
            return Err(inconsistent());
        }
        Ok(out)
    }

    /// Emits times `[t0, t1)` of `op` (whose time `t0` is op offset `i0`), split at agent runs.
    fn emit(
        &self,
        op: &Operation,
        i0: usize,
        t0: usize,
        t1: usize,
        r: &EntryRange,
        out: &mut Vec<HistoryUpdate>,
    ) -> Result<(), TextError> {
        let mut a = t0;
        for span in self.oplog.iter_mappings_range((t0..t1).into()) {
            let b = (a + (span.seq_range.end - span.seq_range.start)).min(t1);
            if b <= a {
                break;
            }
            self.emit_piece(op, i0 + (a - t0), a, b, r, out)?;
            a = b;
        }
        if a != t1 {
            return Err(inconsistent());
        }
        Ok(())
    }

    /// One run `[a, b)` of a single agent, op offsets starting at `i0`.
    fn emit_piece(
        &self,
        op: &Operation,
        i0: usize,
        a: usize,
        b: usize,
        r: &EntryRange,
        out: &mut Vec<HistoryUpdate>,
    ) -> Result<(), TextError> {
        let oplog = &self.oplog;
        let parents_of = |t: usize| {
            if t == r.entry_start {
                to_remote(oplog, &r.parents)
            } else {
                VersionSet::new([remote_id(oplog, t - 1)])
            }
        };
        let mut push = |first: usize, last: usize, patch: Patch| {
            out.push(HistoryUpdate {
                version: VersionSet::new([remote_id(oplog, last)]),
                parents: parents_of(first),
                patch,
            })
        };
        let n = b - a;
        let (start, end, len) = (op.start(), op.end(), op.end() - op.start());
        match op.kind {
            OpKind::Ins => {
                let content = op.content_as_str().ok_or_else(inconsistent)?;
                let chars: Vec<char> = content.chars().skip(i0).take(n).collect();
                if chars.len() != n {
                    return Err(inconsistent());
                }
                if op.loc.fwd || (n == 1 && len == 1) {
                    push(a, b - 1, abs(start + i0, start + i0, chars.into_iter().collect()));
                } else {
                    // Reversed insert: each event prepends its char at `start`.
                    for (k, c) in chars.into_iter().enumerate() {
                        push(a + k, a + k, abs(start, start, c.to_string()));
                    }
                }
            }
            OpKind::Del if !op.loc.fwd || len == 1 => {
                // Backward run: event i deleted char end-1-i.
                push(a, b - 1, abs(end - i0 - n, end - i0, String::new()));
            }
            OpKind::Del => {
                // Forward run (Delete key): every event deleted the char at `start`.
                for k in 0..n {
                    push(a + k, a + k, abs(start, start + 1, String::new()));
                }
            }
        }
        Ok(())
    }
}
