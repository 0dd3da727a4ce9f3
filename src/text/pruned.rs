//! Seq floors after compaction: which `agent-seq` ids a compaction dropped, so that they are
//! never minted again.
//!
//! A compacted document no longer knows its pruned events, and diamond-types' own seq counter
//! for an agent whose events were all pruned restarts at 0. The document therefore remembers
//! the pruned ranges per agent (they are not part of DT's encoding: the store persists them and
//! hands them back through [`TextDoc::set_pruned`] after loading). [`TextDoc::next_seq`] never
//! goes below the end of an agent's pruned ranges (its floor), and `apply` refuses to write an
//! id that was pruned.

use super::event::EventId;
use super::TextDoc;
use std::collections::HashMap;
use std::ops::Range;

/// Is `id` one of the events a compaction dropped? (False for malformed ids.)
pub fn pruned_contains(pruned: &[(String, Range<u64>)], id: &str) -> bool {
    EventId::parse(id).is_ok_and(|id| pruned.iter().any(|(a, r)| *a == id.agent && r.contains(&id.seq)))
}

/// Sorts by (agent, start), drops empty ranges and merges overlapping or touching ones.
pub(super) fn merge_ranges(mut all: Vec<(String, Range<u64>)>) -> Vec<(String, Range<u64>)> {
    all.retain(|(_, r)| r.start < r.end);
    all.sort_by(|a, b| (&a.0, a.1.start).cmp(&(&b.0, b.1.start)));
    let mut out: Vec<(String, Range<u64>)> = Vec::with_capacity(all.len());
    for (agent, r) in all {
        match out.last_mut() {
            Some((a, last)) if *a == agent && r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push((agent, r)),
        }
    }
    out
}

impl TextDoc {
    /// Remembers ids dropped by compaction (per-agent seq ranges, as in
    /// [`Compacted::pruned`](super::Compacted::pruned)), merged with those already remembered:
    /// the floors only ever rise. Call it after loading a compacted document from storage,
    /// with every range its compactions pruned; [`compact`](Self::compact) sets them itself.
    pub fn set_pruned(&mut self, pruned: &[(String, Range<u64>)]) {
        let mut all = self.pruned_list();
        all.extend(pruned.iter().cloned());
        let mut map: HashMap<String, Vec<Range<u64>>> = HashMap::new();
        for (agent, r) in merge_ranges(all) {
            map.entry(agent).or_default().push(r);
        }
        self.pruned = map;
    }

    /// Every remembered pruned range, sorted by (agent, start) and merged.
    pub(super) fn pruned_list(&self) -> Vec<(String, Range<u64>)> {
        let mut all: Vec<(String, Range<u64>)> =
            self.pruned.iter().flat_map(|(a, rs)| rs.iter().map(move |r| (a.clone(), r.clone()))).collect();
        all.sort_by(|a, b| (&a.0, a.1.start).cmp(&(&b.0, b.1.start)));
        all
    }

    /// One past the agent's highest pruned seq (0 if none were pruned).
    pub(super) fn seq_floor(&self, agent: &str) -> u64 {
        self.pruned.get(agent).and_then(|rs| rs.last()).map_or(0, |r| r.end)
    }

    /// Was `agent-seq` dropped by a compaction?
    pub(super) fn is_pruned(&self, agent: &str, seq: u64) -> bool {
        self.pruned.get(agent).is_some_and(|rs| {
            let i = rs.partition_point(|r| r.end <= seq);
            rs.get(i).is_some_and(|r| r.contains(&seq))
        })
    }
}
