//! [`TextDoc`]: a diamond-types OpLog, the checked-out text at (or behind) its tip, and the
//! next seq per agent.
//!
//! This file holds the state and the read-only accessors (text, version, old texts, lengths).
//! Writing lives in `apply.rs`, subscriber views in `xf.rs` / `history.rs`, bytes in `codec.rs`.
//!
//! Why the checked-out text may lag the log: keeping it at the tip means merging every write
//! into it, and diamond-types 1.0.0 merges a write that is concurrent with the tip by walking
//! every operation since the two sides' common ancestor (re-checking its whole merge index on
//! every step back). For clients that never see each other's writes (each PUT parented on its
//! own previous one) that is the whole history, per write (docs/BENCHMARKS.md, the flat-merge
//! scenario). Most writes need no text at all (their ranges are checked against remembered
//! lengths or a counted lower bound, `floor.rs`), so a write off the tip only appends to the log, and the text is brought up to the
//! tip, in one merge, by the first caller that needs it.

use super::delta::RecentRuns;
use super::floor::Counts;
use super::frontier::{to_local, to_remote};
use super::lengths::Lengths;
use super::TextError;
use crate::protocol::VersionSet;
use diamond_types::list::operation::{OpKind, Operation};
use diamond_types::list::{Branch, OpLog};
use diamond_types::AgentId;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Mutex, MutexGuard};

/// One text resource's full history and current state.
///
/// Invariants: `tip.branch`, when present, is at a version the log has (at or behind the log's
/// tip: see the module doc); `tip.len`, when known, is the exact length of the text at the log's
/// tip, and `len_bound` is never below it; `next_seq[agent]` is one past the agent's highest
/// known seq (diamond-types 1.0.0 has no public accessor for it); every entry of `lengths` is the
/// true text length at its version; `pruned[agent]` holds the agent's seq ranges dropped by
/// compaction (sorted, merged; see `pruned.rs`), and [`next_seq`](Self::next_seq) is the larger
/// of `next_seq[agent]` and their end, so that no id is ever minted twice.
#[derive(Debug)]
pub struct TextDoc {
    pub(super) oplog: OpLog,
    /// The checked-out text, behind a lock only so that `&self` readers can bring it up to the
    /// tip (a document is owned by one thread at a time; the lock is never contended).
    tip: Mutex<Tip>,
    pub(super) next_seq: HashMap<String, u64>,
    pub(super) lengths: Lengths,
    /// Inserted and deleted code points over the whole log (see `floor.rs`).
    pub(super) counts: Counts,
    pub(super) pruned: HashMap<String, Vec<Range<u64>>>,
    /// What `apply` added since the last persisted delta (see `delta.rs`).
    pub(super) recent: RecentRuns,
    /// An upper bound of the tip's length in code points, kept without merging (writes off the
    /// tip add what they insert): the document size limit is checked against it.
    pub(super) len_bound: usize,
}

/// The checked-out text and what is known of the tip's length.
#[derive(Clone, Debug, Default)]
pub(super) struct Tip {
    /// None until first needed (a document loaded to answer a read of an old version never
    /// pays for building its current text: B3 in docs/BENCHMARKS.md).
    branch: Option<Branch>,
    /// The exact length at the log's tip, when known without merging.
    len: Option<usize>,
}

impl Clone for TextDoc {
    fn clone(&self) -> Self {
        TextDoc {
            oplog: self.oplog.clone(),
            tip: Mutex::new(self.lock_tip().clone()),
            next_seq: self.next_seq.clone(),
            lengths: self.lengths.clone(),
            counts: self.counts.clone(),
            pruned: self.pruned.clone(),
            recent: self.recent.clone(),
            len_bound: self.len_bound,
        }
    }
}

impl Default for TextDoc {
    fn default() -> Self {
        TextDoc::new()
    }
}

impl TextDoc {
    /// An empty document at the root version.
    pub fn new() -> Self {
        TextDoc::from_parts(OpLog::new(), Some(Branch::new()))
    }

    /// Builds a document around a decoded log and, if already checked out, its tip (else the
    /// tip is checked out on first use): rebuilds the seq map. No pruned ranges: see
    /// [`set_pruned`](Self::set_pruned).
    pub(super) fn from_parts(oplog: OpLog, branch: Option<Branch>) -> Self {
        let next_seq = seq_map(&oplog);
        let recent = RecentRuns::starting_at(oplog.local_version_ref(), oplog.len());
        let len = branch.as_ref().map(Branch::len);
        // Every event inserts or deletes one code point: the event count bounds the length.
        let len_bound = len.unwrap_or(oplog.len());
        TextDoc {
            oplog,
            tip: Mutex::new(Tip { branch, len }),
            next_seq,
            lengths: Lengths::default(),
            counts: Counts::default(),
            pruned: HashMap::new(),
            recent,
            len_bound,
        }
    }

    /// The tip state. A panic while it was held (diamond-types panicking inside a merge) can
    /// leave a half-merged branch, so a poisoned lock drops the branch: it is checked out anew.
    fn lock_tip(&self) -> MutexGuard<'_, Tip> {
        self.tip.lock().unwrap_or_else(|poisoned| {
            let mut guard = poisoned.into_inner();
            guard.branch = None;
            guard
        })
    }

    /// Runs `f` on the text at the log's tip, merging the checked-out text up to it first (or
    /// checking it out, the first time). O(what it has to merge).
    pub(super) fn with_tip<T>(&self, f: impl FnOnce(&Branch) -> T) -> T {
        let mut tip = self.lock_tip();
        let tip = &mut *tip;
        let branch = tip.branch.get_or_insert_with(|| self.oplog.checkout_tip());
        if branch.local_version_ref() != self.oplog.local_version_ref() {
            branch.merge(&self.oplog, self.oplog.local_version_ref());
        }
        tip.len = Some(branch.len());
        f(branch)
    }

    /// Adds `ops` (validated against the tip) as `agent`'s next events on top of the tip. When
    /// the checked-out text is at the tip it goes along in the same step, through
    /// diamond-types' local-edit path (a merge would walk the ops since the tip's version and
    /// split a long typing run by counting characters from its start: O(document) per write,
    /// B6 in docs/BENCHMARKS.md); otherwise only the log grows. Returns the last event's local
    /// time. `new_len` is the text's length after the ops.
    pub(super) fn add_at_tip(&mut self, agent: AgentId, ops: &[Operation], new_len: usize) -> usize {
        let tip = self.tip.get_mut().unwrap_or_else(|p| p.into_inner());
        let lv = match tip.branch.as_mut() {
            Some(branch) if branch.local_version_ref() == self.oplog.local_version_ref() => {
                branch.apply_local_operations(&mut self.oplog, agent, ops)
            }
            _ => {
                let at = self.oplog.local_version();
                self.oplog.add_operations_at(agent, &at, ops)
            }
        };
        tip.len = Some(new_len);
        self.len_bound = new_len;
        lv
    }

    /// Records that events were added off the tip (or through a chunk): the checked-out text now
    /// lags, the tip's exact length is unknown until the next merge, and `inserted` code points
    /// may have been added to it.
    pub(super) fn added_off_tip(&mut self, inserted: usize) {
        let tip = self.tip.get_mut().unwrap_or_else(|p| p.into_inner());
        // A merge since the last write knew the exact length before this one: start the bound
        // from it, so that off-tip deletes do not leave it drifting up for ever (a bound over
        // the size limit makes the size rule merge on every write).
        let before = tip.len.take().unwrap_or(self.len_bound);
        self.len_bound = before.saturating_add(inserted);
    }

    /// Records that events were added on top of the tip without moving the checked-out text
    /// (through a chunk): it now lags, but the tip's length is `new_len`.
    pub(super) fn added_on_tip(&mut self, new_len: usize) {
        let tip = self.tip.get_mut().unwrap_or_else(|p| p.into_inner());
        tip.len = Some(new_len);
        self.len_bound = new_len;
    }

    /// The tip's exact length if it is known without merging.
    pub(super) fn known_tip_len(&self) -> Option<usize> {
        self.lock_tip().len
    }

    /// The checked-out text if it is at the tip (to advance a copy of it somewhere safe).
    pub(super) fn checked_out(&self) -> Option<Branch> {
        let tip = self.lock_tip();
        tip.branch.clone().filter(|b| b.local_version_ref() == self.oplog.local_version_ref())
    }

    /// Swaps in a log that has this document's events and more, with its tip if checked out.
    pub(super) fn install(&mut self, oplog: OpLog, branch: Option<Branch>) {
        self.next_seq = seq_map(&oplog);
        let at_tip = |b: &Branch| b.local_version_ref() == oplog.local_version_ref();
        let len = branch.as_ref().filter(|b| at_tip(b)).map(Branch::len);
        self.len_bound = len.unwrap_or(oplog.len());
        self.oplog = oplog;
        // Local times differ between logs: count the new one afresh.
        self.counts = Counts::default();
        *self.tip.get_mut().unwrap_or_else(|p| p.into_inner()) = Tip { branch, len };
        self.restart_delta();
    }

    /// The current frontier as wire ids, sorted.
    pub fn version(&self) -> VersionSet {
        to_remote(&self.oplog, self.oplog.local_version_ref())
    }

    /// The `Repr-Digest` of the current text, hashed piece by piece from the rope: no copy of
    /// the whole text (the writer needs the digest of every head, not its text).
    pub fn repr_digest(&self) -> String {
        self.with_tip(|b| crate::protocol::repr_digest_of(b.content().substrings()))
    }

    /// The current text.
    pub fn text(&self) -> String {
        self.with_tip(|b| b.content().to_string())
    }

    /// The current length in code points (merges the checked-out text up to the tip when the
    /// length is not known otherwise).
    pub fn len_chars(&self) -> usize {
        match self.known_tip_len() {
            Some(len) => len,
            None => self.with_tip(Branch::len),
        }
    }

    /// The current length in code points when it is known without merging (the checked-out
    /// text is at the tip, or a write on the tip said it), else an upper bound; and which.
    /// For what a write round reports (a folder listing's size): a merge of concurrent writes
    /// on the writer's path would cost O(history) per round (DT-FACTS).
    pub fn len_cheap(&self) -> (usize, bool) {
        match self.known_tip_len() {
            Some(len) => (len, true),
            None => (self.len_bound, false),
        }
    }

    /// An upper bound of the current length in code points, without merging: exact after a
    /// write on the tip, larger after writes off it. For limits, not for ranges.
    pub fn len_upper_bound(&self) -> usize {
        self.known_tip_len().unwrap_or(self.len_bound)
    }

    /// Number of events (inserted or deleted code points) in the history.
    pub fn event_count(&self) -> usize {
        self.oplog.len()
    }

    /// The seq the agent's next event gets: one past its highest known or pruned seq (see
    /// [`set_pruned`](Self::set_pruned)), 0 if neither.
    pub fn next_seq(&self, agent: &str) -> u64 {
        self.known_next_seq(agent).max(self.seq_floor(agent))
    }

    /// One past the agent's highest seq known to the log (diamond-types' own counter), 0 if none.
    pub(super) fn known_next_seq(&self, agent: &str) -> u64 {
        self.next_seq.get(agent).copied().unwrap_or(0)
    }

    /// The text at an old (or the current) version. O(history) unless `v` is current.
    pub fn text_at(&self, v: &VersionSet) -> Result<String, TextError> {
        let lv = to_local(&self.oplog, v)?;
        Ok(self.text_at_local(&lv))
    }

    pub(super) fn is_tip(&self, lv: &[usize]) -> bool {
        lv == self.oplog.local_version_ref()
    }

    pub(super) fn text_at_local(&self, lv: &[usize]) -> String {
        if self.is_tip(lv) {
            self.text()
        } else {
            self.oplog.checkout(lv).content().to_string()
        }
    }

    /// The exact length of the text at `lv`, for what the floor of `floor.rs` does not settle:
    /// remembered for recent versions (see `lengths.rs`), else the current length minus what the ops after `lv` inserted plus what they deleted (DT-FACTS §3.3),
    /// without checking out the old text.
    pub(super) fn len_at_local(&self, lv: &[usize]) -> Result<usize, TextError> {
        if self.is_tip(lv) {
            return Ok(self.len_chars());
        }
        if let Some(len) = self.lengths.get(lv) {
            return Ok(len);
        }
        let (mut ins, mut del) = (0usize, 0usize);
        for (_, op) in self.oplog.iter_xf_operations_from(lv, self.oplog.local_version_ref()) {
            if let Some(op) = op {
                let n = op.end() - op.start();
                match op.kind {
                    OpKind::Ins => ins = ins.saturating_add(n),
                    OpKind::Del => del = del.saturating_add(n),
                }
            }
        }
        (self.len_chars() + del)
            .checked_sub(ins)
            .ok_or_else(|| TextError::CorruptEncoding("history lengths are inconsistent".into()))
    }
}

impl TextDoc {
    /// Brings `next_seq` up to date with the events at local times `range` (added by decoding).
    pub(super) fn note_seqs(&mut self, range: Range<usize>) {
        for span in self.oplog.iter_mappings_range(range.into()) {
            let name = self.oplog.get_agent_name(span.agent);
            let end = span.seq_range.end as u64;
            match self.next_seq.get_mut(name) {
                Some(next) => *next = (*next).max(end),
                None => {
                    self.next_seq.insert(name.to_string(), end);
                }
            }
        }
    }
}

/// One past the highest seq of every agent in the log.
pub(super) fn seq_map(oplog: &OpLog) -> HashMap<String, u64> {
    let mut map: HashMap<String, u64> = HashMap::new();
    for span in oplog.iter_mappings() {
        let name = oplog.get_agent_name(span.agent).to_string();
        let end = span.seq_range.end as u64;
        let e = map.entry(name).or_insert(0);
        *e = (*e).max(end);
    }
    map
}
