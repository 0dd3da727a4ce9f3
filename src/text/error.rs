//! [`TextError`]: every way a text operation can be refused.
//!
//! Each variant is client-error-shaped (the HTTP layer maps them to 4xx, except
//! `CorruptEncoding`, which only the store sees, and braid-text's 550 for `DigestMismatch`)
//! and carries the offending values so the message can name them. This file does not decide
//! status codes; that is the HTTP layer's job.

use crate::protocol::VersionSet;

/// Why a text operation was refused. The document is never changed when one is returned.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum TextError {
    /// An event id is not `agent-seq` with a canonical decimal seq <= 2^53-1.
    #[error("invalid event id {id:?}: expected \"agent-seq\" with a decimal seq <= 9007199254740991")]
    InvalidEventId {
        /// The id as received.
        id: String,
    },
    /// An agent name that may not create events (empty, `ROOT`, `~…`, or 50+ UTF-8 bytes).
    #[error("invalid agent {agent:?}: {reason}")]
    InvalidAgent {
        /// The agent name as received.
        agent: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The Parents name the write's own Version, or a later event of the same agent: the
    /// edit would be its own ancestor.
    #[error("cyclic parents: Parents {parent:?} cannot come after the write's own Version {version:?}")]
    CyclicParents {
        /// The write's Version id.
        version: String,
        /// The offending parent id.
        parent: String,
    },
    /// Some ids are not known here (exactly those ids, sorted).
    #[error("unknown version: {}", list_ids(.0))]
    UnknownVersion(VersionSet),
    /// A range whose start is after its end (after resolving negative bounds).
    #[error("range [{start}:{end}] is reversed")]
    RangeReversed {
        /// Resolved start.
        start: i128,
        /// Resolved end.
        end: i128,
    },
    /// A range reaching outside the parent text (after resolving negative bounds).
    #[error("range [{start}:{end}] is outside the parent text of length {len}")]
    RangeOutOfBounds {
        /// Resolved start (may be negative when a `-n` bound exceeds the length).
        start: i128,
        /// Resolved end.
        end: i128,
        /// Length of the parent text in code points.
        len: usize,
    },
    /// Two patches of one edit overlap (after sorting by start).
    #[error("patches overlap: [{first_start}:{first_end}] and [{second_start}:{second_end}]")]
    OverlappingPatches {
        /// The earlier patch's start.
        first_start: usize,
        /// The earlier patch's end.
        first_end: usize,
        /// The later patch's start.
        second_start: usize,
        /// The later patch's end.
        second_end: usize,
    },
    /// The Version's seq cannot name the last of `count` events (braid-text's wording).
    #[error("version seq {seq} is too low for {count} changes \u{2014} use seq >= {}", .count.saturating_sub(1))]
    SeqTooLow {
        /// The seq of the Version id.
        seq: u64,
        /// Number of events the edit makes.
        count: u64,
    },
    /// The edit's first seq would leave a gap after the agent's known events.
    #[error("seq gap for agent {agent:?}: the next seq is {expected}, but the edit starts at {got}")]
    SeqGap {
        /// The agent.
        agent: String,
        /// The agent's next seq here.
        expected: u64,
        /// The edit's first seq.
        got: u64,
    },
    /// The edit names (as its Version, or as the event its tail would continue from) an id that
    /// a compaction dropped: it cannot be written again, nor built on.
    #[error("version {id:?} was pruned by history compaction: it cannot be written again or built on")]
    PrunedVersion {
        /// The pruned id.
        id: String,
    },
    /// Stored bytes (or stored history) failed a check; nothing was loaded.
    #[error("corrupt encoding: {0}")]
    CorruptEncoding(String),
    /// A position, count or seq would overflow.
    #[error("too large: {0}")]
    TooLarge(String),
    /// A compaction horizon that does not dominate the rest of history: `event` is neither in
    /// the horizon's history nor after all of it.
    #[error("invalid horizon {}: event {event:?} is neither in its history nor after all of it", list_ids(.horizon))]
    InvalidHorizon {
        /// The horizon, as normalized.
        horizon: VersionSet,
        /// One event that is concurrent with (part of) the horizon.
        event: String,
    },
    /// The client's `Repr-Digest` does not match the text its edit would produce (checked only
    /// when the edit applies on top of the current version, so no merge is involved).
    #[error("repr-digest mismatch: the edit would give a text whose sha-256 is {actual}, the request says {expected}")]
    DigestMismatch {
        /// The request's digest, as base64.
        expected: String,
        /// The resulting text's digest, as base64.
        actual: String,
    },
}

impl TextError {
    /// A stable snake_case name per variant, for tests and logs. What the server answers is
    /// decided by the HTTP layer's table of codes: the same names, except `UnknownVersion`,
    /// answered as `version_unknown` (309); a test keeps them equal.
    pub fn code(&self) -> &'static str {
        match self {
            TextError::InvalidEventId { .. } => "invalid_event_id",
            TextError::InvalidAgent { .. } => "invalid_agent",
            TextError::CyclicParents { .. } => "cyclic_parents",
            TextError::UnknownVersion(_) => "unknown_version",
            TextError::RangeReversed { .. } => "range_reversed",
            TextError::RangeOutOfBounds { .. } => "range_out_of_bounds",
            TextError::OverlappingPatches { .. } => "overlapping_patches",
            TextError::SeqTooLow { .. } => "seq_too_low",
            TextError::SeqGap { .. } => "seq_gap",
            TextError::PrunedVersion { .. } => "pruned_version",
            TextError::CorruptEncoding(_) => "corrupt_encoding",
            TextError::TooLarge(_) => "too_large",
            TextError::DigestMismatch { .. } => "repr_digest_mismatch",
            TextError::InvalidHorizon { .. } => "invalid_horizon",
        }
    }
}

fn list_ids(v: &VersionSet) -> String {
    let quoted: Vec<String> = v.ids().iter().map(|id| format!("{id:?}")).collect();
    quoted.join(", ")
}
