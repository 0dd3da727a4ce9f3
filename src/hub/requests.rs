//! The values that cross between the HTTP layer and the hub.

use std::time::Duration;

use bytes::Bytes;

use crate::protocol::{MergeType, Update, VersionSet};

/// A non-subscribing read.
#[derive(Clone, Debug, Default)]
pub struct ReadRequest {
    /// `Version` header: the text at this version (or the upper end of a range).
    pub version: Option<VersionSet>,
    /// `Parents` header: the updates since this version.
    pub parents: Option<VersionSet>,
}

/// What a read returns.
#[derive(Clone, Debug)]
pub enum ReadOutcome {
    /// The whole text at `version`.
    Snapshot {
        /// The text (UTF-8).
        text: Bytes,
        /// The version of `text`.
        version: VersionSet,
        /// The document's current (published) version.
        current: VersionSet,
        /// `Repr-Digest` of `text`.
        digest: String,
        /// The merge horizon, once the document was compacted.
        horizon: Option<VersionSet>,
    },
    /// The history updates between two versions (dt form, original coordinates).
    History {
        /// The updates, oldest first.
        updates: Vec<Update>,
        /// The document's current version.
        current: VersionSet,
        /// The merge horizon, once the document was compacted.
        horizon: Option<VersionSet>,
    },
}

/// A subscription request.
#[derive(Clone, Debug)]
pub struct SubscribeRequest {
    /// Resume from this version (absent: start with a snapshot).
    pub parents: Option<VersionSet>,
    /// How updates are expressed.
    pub merge_type: MergeType,
    /// The subscriber's `Peer`, linking it to its own writes.
    pub peer: Option<String>,
    /// Ceiling for the simpleton rebase delay (braid-text uses 3 s).
    pub max_rebase_delay: Duration,
}
