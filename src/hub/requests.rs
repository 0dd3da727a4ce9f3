//! The values that cross between the HTTP layer and the hub.

use std::time::Duration;

use crate::protocol::{MergeType, Update, VersionSet};
use crate::text::{Applied, Edit};

use super::history::Principal;

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
        /// The text.
        text: String,
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

/// One edit to apply.
#[derive(Clone, Debug)]
pub struct WriteRequest {
    /// The edit itself.
    pub edit: Edit,
    /// The `Peer` of the writer, for echo suppression and simpleton rebases.
    pub peer: Option<String>,
    /// The writer's merge type: a `dt` writer is never treated as a simpleton sender.
    pub merge_type: MergeType,
    /// The SHA-256 the client's `Repr-Digest` says the resulting text has, if it sent one.
    pub expect_sha256: Option<[u8; 32]>,
    /// When the server received the request (shown in the history listing).
    pub received: std::time::SystemTime,
    /// For a restore: the version whose text this write brings back.
    pub restored_from: Option<VersionSet>,
    /// Who is writing (shown in history), when access control names somebody.
    pub principal: Option<Principal>,
}

impl WriteRequest {
    /// A write received now, with no digest check, not a restore.
    pub fn new(edit: Edit, peer: Option<String>, merge_type: MergeType) -> Self {
        WriteRequest {
            edit,
            peer,
            merge_type,
            expect_sha256: None,
            received: std::time::SystemTime::now(),
            restored_from: None,
            principal: None,
        }
    }
}

/// The result of a durable write.
#[derive(Clone, Debug)]
pub struct WriteOutcome {
    /// What the text layer did with the edit.
    pub applied: Applied,
    /// The document's version once the write is durable.
    pub current: VersionSet,
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
