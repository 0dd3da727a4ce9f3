//! The merge horizon of a compacted document: what was folded away, and how to tell a client
//! whose versions fall behind it (410 Gone) from one naming versions that never existed (309).
//!
//! Stored as one record per document ('Z' key), written in the same batch as the compacted
//! snapshot, so a crash leaves either the old history or the new one with its horizon.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::protocol::VersionSet;
use crate::store::{keys, Batch};
use crate::text::pruned_contains;

use super::DocError;

/// Everything known about a document's last compaction.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Horizon {
    /// The version that now stands for the folded history (the base run's last event; empty
    /// when the text at the horizon was empty). Clients may name it, or anything after it.
    pub version: Vec<String>,
    /// The original version the base replaced.
    pub replaces: Vec<String>,
    /// How many compactions this document has had (names the next base agent).
    pub generation: u64,
    /// Every event folded away, as per-agent seq ranges, across all compactions.
    pub pruned: Vec<(String, Range<u64>)>,
    /// History listing entries below this number were folded away.
    pub first_entry: u64,
    /// When the last compaction ran, in milliseconds since the Unix epoch.
    pub compacted_ms: u64,
    /// The document's path (not stored: the key says it), for the 410's pointer to the
    /// current snapshot.
    #[serde(skip)]
    pub path: String,
}

impl Horizon {
    /// The document's horizon from its stored record (the `keys::horizon` value), if it was
    /// ever compacted.
    pub fn from_stored(path: &str, bytes: Option<&[u8]>) -> Result<Option<Horizon>, DocError> {
        let Some(bytes) = bytes else { return Ok(None) };
        let mut horizon: Horizon =
            serde_json::from_slice(bytes).map_err(|e| DocError::Corrupt(format!("horizon of {path}: {e}")))?;
        horizon.path = path.to_string();
        Ok(Some(horizon))
    }

    /// Adds the record to `batch`.
    pub fn save(&self, path: &str, batch: &mut Batch) -> Result<(), DocError> {
        let bytes = serde_json::to_vec(self).map_err(|e| DocError::Corrupt(e.to_string()))?;
        batch.put(keys::horizon(path), bytes);
        Ok(())
    }

    /// True when some id of `v` was folded away by a compaction.
    pub fn behind(&self, v: &VersionSet) -> bool {
        v.ids().iter().any(|id| pruned_contains(&self.pruned, id))
    }

    /// True when a write on top of `parents` cannot be merged any more: its parents are the
    /// empty document (the root is always "known", but behind a non-empty horizon the
    /// compacted document places such a write differently than the original would have).
    /// Pruned ids are caught by [`Horizon::behind`] once the text layer reports them unknown.
    pub fn refuses_parents(&self, parents: Option<&VersionSet>) -> bool {
        parents.is_some_and(|p| p.ids().is_empty()) && !self.version.is_empty()
    }

    /// The error for a request that falls behind this horizon.
    pub fn gone(&self) -> DocError {
        DocError::BehindHorizon { horizon: self.version_set(), snapshot: self.path.clone() }
    }

    /// The horizon as a version set.
    pub fn version_set(&self) -> VersionSet {
        VersionSet::new(self.version.clone())
    }

    /// The synthetic agent that names the next compaction's base run. `~` names are
    /// reserved for the server, so no client can collide with it.
    pub fn next_base_agent(&self) -> String {
        format!("~h{}", self.generation + 1)
    }

    /// Adds newly pruned ranges, merging neighbours of one agent.
    pub fn add_pruned(&mut self, more: Vec<(String, Range<u64>)>) {
        self.pruned.extend(more);
        self.pruned.sort_by(|a, b| (&a.0, a.1.start).cmp(&(&b.0, b.1.start)));
        let mut merged: Vec<(String, Range<u64>)> = Vec::with_capacity(self.pruned.len());
        for (agent, range) in self.pruned.drain(..) {
            match merged.last_mut() {
                Some((a, r)) if *a == agent && range.start <= r.end => r.end = r.end.max(range.end),
                _ => merged.push((agent, range)),
            }
        }
        self.pruned = merged;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruned_ranges_merge_and_answer_behind() {
        let mut h = Horizon::default();
        h.add_pruned(vec![("a".into(), 0..3), ("b".into(), 5..6)]);
        h.add_pruned(vec![("a".into(), 3..9), ("~h1".into(), 0..4)]);
        assert_eq!(h.pruned, vec![("a".into(), 0..9), ("b".into(), 5..6), ("~h1".into(), 0..4)]);
        assert!(h.behind(&VersionSet::new(["a-8".to_string()])));
        assert!(h.behind(&VersionSet::new(["x-1".to_string(), "~h1-3".to_string()])));
        assert!(!h.behind(&VersionSet::new(["a-9".to_string(), "b-4".to_string()])));
        assert_eq!(h.next_base_agent(), "~h1");
        assert!(!h.refuses_parents(None), "no Parents: on top of the current version");
        assert!(!h.refuses_parents(Some(&VersionSet::new(["a-9".to_string()]))));
        assert!(!h.refuses_parents(Some(&VersionSet::root())), "an empty horizon is the root itself");
        h.version = vec!["~h1-3".into()];
        assert!(h.refuses_parents(Some(&VersionSet::root())));
    }
}
