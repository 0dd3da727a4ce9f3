//! [`TextDoc`]: a diamond-types OpLog, a Branch kept at its tip (checked out on first use),
//! and the next seq per agent.
//!
//! This file holds the state and the read-only accessors (text, version, old texts, lengths).
//! Writing lives in `apply.rs`, subscriber views in `xf.rs` / `history.rs`, bytes in `codec.rs`.

use super::delta::RecentRuns;
use super::frontier::{to_local, to_remote};
use super::lengths::Lengths;
use super::TextError;
use crate::protocol::VersionSet;
use diamond_types::list::operation::{OpKind, Operation};
use diamond_types::list::{Branch, OpLog};
use diamond_types::AgentId;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::OnceLock;

/// One text resource's full history and current state.
///
/// Invariants: `branch`, once checked out, is always at `oplog`'s tip (it is checked out
/// lazily: a document loaded to answer a read of an old version or of the updates since one
/// never pays for building its current text, measured as B3 in docs/BENCHMARKS.md); `next_seq[agent]` is one past the agent's
/// highest known seq (diamond-types 1.0.0 has no public accessor for it, notes §2.1); every
/// entry of `lengths` is the true text length at its version; `pruned[agent]` holds the
/// agent's seq ranges dropped by compaction (sorted, merged; see `pruned.rs`), and
/// [`next_seq`](Self::next_seq) is the larger of `next_seq[agent]` and their end, so that no
/// id is ever minted twice.
#[derive(Clone, Debug)]
pub struct TextDoc {
    pub(super) oplog: OpLog,
    branch: OnceLock<Branch>,
    pub(super) next_seq: HashMap<String, u64>,
    pub(super) lengths: Lengths,
    pub(super) pruned: HashMap<String, Vec<Range<u64>>>,
    /// What `apply` added since the last persisted delta (see `delta.rs`).
    pub(super) recent: RecentRuns,
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
        let branch = branch.map_or_else(OnceLock::new, OnceLock::from);
        let recent = RecentRuns::starting_at(oplog.local_version_ref(), oplog.len());
        TextDoc { oplog, branch, next_seq, lengths: Lengths::default(), pruned: HashMap::new(), recent }
    }

    /// The tip, checked out now if it was not yet.
    pub(super) fn branch(&self) -> &Branch {
        self.branch.get_or_init(|| self.oplog.checkout_tip())
    }

    /// Brings a checked-out tip up to the log after events were added (a tip not checked out
    /// yet needs nothing: it will be checked out with them).
    pub(super) fn advance_branch(&mut self) {
        if let Some(branch) = self.branch.get_mut() {
            branch.merge(&self.oplog, self.oplog.local_version_ref());
        }
    }

    /// Adds `ops` (validated against the tip) as `agent`'s next events on top of the tip, and
    /// brings the tip along in the same step: diamond-types' local-edit path, which skips the
    /// merge `advance_branch` would run. Why: a merge walks the ops since the tip's version
    /// through diamond-types' run-length spans, and splitting a long typing run there counts
    /// characters from the run's start, so each write cost O(document length) (B6 in
    /// docs/BENCHMARKS.md). Returns the last event's local time.
    pub(super) fn add_at_tip(&mut self, agent: AgentId, ops: &[Operation]) -> usize {
        self.branch(); // checked out now if it was not yet: the caller needs the tip anyway
        match self.branch.get_mut() {
            Some(branch) => branch.apply_local_operations(&mut self.oplog, agent, ops),
            None => {
                let tip = self.oplog.local_version();
                let lv = self.oplog.add_operations_at(agent, &tip, ops);
                self.advance_branch();
                lv
            }
        }
    }

    /// The tip if it is checked out (to advance a copy of it somewhere safe).
    pub(super) fn checked_out(&self) -> Option<&Branch> {
        self.branch.get()
    }

    /// Swaps in a log that has this document's events and more, with its tip if checked out.
    pub(super) fn install(&mut self, oplog: OpLog, branch: Option<Branch>) {
        self.next_seq = seq_map(&oplog);
        self.oplog = oplog;
        self.branch = branch.map_or_else(OnceLock::new, OnceLock::from);
        self.restart_delta();
    }

    /// The current frontier as wire ids, sorted.
    pub fn version(&self) -> VersionSet {
        to_remote(&self.oplog, self.oplog.local_version_ref())
    }

    /// The current text.
    pub fn text(&self) -> String {
        self.branch().content().to_string()
    }

    /// The current length in code points.
    pub fn len_chars(&self) -> usize {
        self.branch().len()
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

    /// Length of the text at `lv`: remembered for recent versions (see `lengths.rs`), else the
    /// current length minus what the ops after `lv` inserted plus what they deleted (notes §1),
    /// without checking out the old text.
    pub(super) fn len_at_local(&self, lv: &[usize]) -> Result<usize, TextError> {
        if self.is_tip(lv) {
            return Ok(self.branch().len());
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
        (self.branch().len() + del)
            .checked_sub(ins)
            .ok_or_else(|| TextError::CorruptEncoding("history lengths are inconsistent".into()))
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
