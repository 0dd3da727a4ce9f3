//! [`Counts`] and [`TextDoc::len_floor_at_local`]: a lower bound of the text length at any
//! version, found by counting events instead of transforming them.
//!
//! Why: a write's ranges must fit the text at its `Parents`. For a version that is neither the
//! tip nor remembered by `lengths.rs`, diamond-types 1.0.0 can only give the exact length by
//! transforming every operation since the last point where all branches met (a version every
//! later event descends from). Under a steady stream of overlapping concurrent writes there is
//! no such point after the first few writes, so that transform walks the whole history: the
//! cost per write grew with the history (B8 in docs/BENCHMARKS.md).
//!
//! Counting is enough to check that an edit fits. Every event inserts or deletes one code point,
//! and a delete removes a code point present at its parents; two concurrent deletes may remove
//! the same code point. So, counting over the events a version `V` contains,
//! `len(V) = inserted(V) - |deleted code points of V| >= inserted(V) - deletes(V)`, with equality
//! when `V` contains no deletes. The counts over `V` are the whole log's counts minus those of the
//! events `V` lacks, and diamond-types lists those (`iter_range_since`) by walking back only until
//! every branch it follows is shared with `V`: the concurrent region, not the whole history.
//!
//! An edit whose ranges fit the floor fits the text. One that does not, or whose meaning depends
//! on the exact length (ranges counted from the end, a whole-text replace), falls back to the
//! exact length (`TextDoc::len_at_local`).

use super::TextDoc;
use diamond_types::list::operation::OpKind;
use diamond_types::LocalVersion;

/// Inserted and deleted code points over the whole log, counted up to `at` (caught up lazily
/// with the events added since).
#[derive(Clone, Debug, Default)]
pub(super) struct Counts {
    /// The log's frontier when last counted (an ancestor of every later frontier of the same log).
    at: LocalVersion,
    /// The log's event count then (equal to the current one: nothing to catch up).
    events: usize,
    inserted: usize,
    deleted: usize,
}

/// A text length that is either exact or a lower bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct LenFloor {
    pub len: usize,
    /// `len` is the exact length (else the true length is `len` or more).
    pub exact: bool,
}

impl LenFloor {
    pub(super) fn exact(len: usize) -> LenFloor {
        LenFloor { len, exact: true }
    }
}

impl TextDoc {
    /// Brings the whole-log counts up to the current log: O(events added since the last call,
    /// and the concurrent region behind them).
    fn catch_up_counts(&mut self) {
        if self.counts.events == self.oplog.len() {
            return;
        }
        let (ins, del) = self.counted_since(&self.counts.at);
        self.counts = Counts {
            at: self.oplog.local_version(),
            events: self.oplog.len(),
            inserted: self.counts.inserted + ins,
            deleted: self.counts.deleted + del,
        };
    }

    /// The text length at `lv` (a version of this log): exact when the tip's length or a
    /// remembered length answers, or when the version contains no deletes; otherwise a lower
    /// bound (see the module doc). Never transforms operations.
    pub(super) fn len_floor_at_local(&mut self, lv: &[usize]) -> LenFloor {
        if self.is_tip(lv) {
            if let Some(len) = self.known_tip_len() {
                return LenFloor::exact(len);
            }
        } else if let Some(len) = self.lengths.get(lv) {
            return LenFloor::exact(len);
        }
        self.catch_up_counts();
        let (lacked_ins, lacked_del) = self.counted_since(lv);
        let ins = self.counts.inserted.saturating_sub(lacked_ins);
        let del = self.counts.deleted.saturating_sub(lacked_del);
        LenFloor { len: ins.saturating_sub(del), exact: del == 0 }
    }

    /// Code points inserted and deleted by the events the tip has and `lv` lacks.
    fn counted_since(&self, lv: &[usize]) -> (usize, usize) {
        let (mut ins, mut del) = (0usize, 0usize);
        for op in self.oplog.iter_range_since(lv) {
            let n = op.end() - op.start();
            match op.kind {
                OpKind::Ins => ins += n,
                OpKind::Del => del += n,
            }
        }
        (ins, del)
    }
}
