//! The durable delta of a write round, encoded from the runs `apply` added rather than read
//! back out of diamond-types.
//!
//! Why: diamond-types keeps a document's inserts as run-length spans, and an author typing
//! at one place builds one long span. `OpLog::encode_from` splits that span at the round's
//! first event by counting characters from the span's start (`chars_to_bytes`), so each
//! write's delta cost O(document length): measured at 10% of the server's worker CPU under
//! B6 (docs/BENCHMARKS.md), and growing with every write. `apply` already holds exactly what
//! it added (agent, seqs, parents, ops), so the round's delta is encoded from that with the
//! hand-built chunk of `chunk.rs`, in O(what the round added).
//!
//! The runs are only trusted when they are provably everything after the version the
//! caller names: the log must hold exactly the recorded events past the recorded base.
//! Anything else (events added another way, a replaced log, too many runs) falls back to
//! `encode_from`, which is always right.

use diamond_types::LocalVersion;

use super::chunk::{encode_run, Run};
use super::codec::with_crc;
use super::frontier::to_local;
use super::{TextDoc, TextError};
use crate::protocol::VersionSet;
use diamond_types::list::encoding::ENCODE_PATCH;

/// More runs than this between two deltas (a document written through `apply` but never
/// persisted, as tests and tools do) stops the recording: memory stays bounded and the next
/// delta falls back to `encode_from`.
const MAX_RECENT_RUNS: usize = 256;

/// The runs `apply` added since the last delta.
#[derive(Clone, Debug)]
pub(super) struct RecentRuns {
    /// The log's frontier and length when recording started.
    base_version: LocalVersion,
    base_len: usize,
    runs: Vec<Run>,
    /// False once something was added that is not recorded.
    complete: bool,
}

impl RecentRuns {
    /// Recording from the current end of `oplog`.
    pub(super) fn starting_at(version: &[usize], len: usize) -> Self {
        RecentRuns { base_version: version.into(), base_len: len, runs: Vec::new(), complete: true }
    }

    /// Records one run `apply` just added.
    pub(super) fn push(&mut self, run: Run) {
        if self.runs.len() >= MAX_RECENT_RUNS {
            self.runs.clear();
            self.complete = false;
        } else if self.complete {
            self.runs.push(run);
        }
    }
}

impl TextDoc {
    /// The events after `v` as one or more diamond-types files (each CRC-terminated), to be
    /// added in order by [`decode_stored`](Self::decode_stored) or
    /// [`apply_encoded`](Self::apply_encoded); and starts recording the next delta from the
    /// current end of the log. The actor calls it once per write round, with the version
    /// the round started from.
    pub fn take_delta_since(&mut self, v: &VersionSet) -> Result<Vec<Vec<u8>>, TextError> {
        let lv = to_local(&self.oplog, v)?;
        let recent = std::mem::replace(
            &mut self.recent,
            RecentRuns::starting_at(self.oplog.local_version_ref(), self.oplog.len()),
        );
        let recorded: usize = recent.runs.iter().map(|r| r.len).sum();
        let exact = recent.complete
            && !recent.runs.is_empty()
            && recent.base_version == lv
            && recent.base_len + recorded == self.oplog.len();
        if exact {
            return Ok(recent.runs.iter().map(|run| with_crc(encode_run(run))).collect());
        }
        Ok(vec![self.oplog.encode_from(ENCODE_PATCH, &lv)])
    }

    /// Starts recording the next delta from the current end of the log, forgetting what was
    /// recorded (the caller persisted the whole document instead).
    pub fn restart_delta(&mut self) {
        self.recent = RecentRuns::starting_at(self.oplog.local_version_ref(), self.oplog.len());
    }
}
