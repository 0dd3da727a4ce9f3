//! [`Change`]: one entry of the change log, as a folder listing or watcher shows it.

use serde::{Deserialize, Serialize};

use crate::store::LogEntry;

/// What kind of resource changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    Text,
    File,
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// The first version of a resource.
    Create,
    /// A new version (an edit, a replaced file).
    Version,
    /// Concurrent versions now stand side by side (files).
    Conflict,
    /// A write named every head: the conflict is gone.
    Resolve,
    /// An old version brought back as a new one.
    Restore,
    /// Deleted (a file's tombstone, or a text document erased).
    Delete,
    /// Compaction moved the merge horizon (clients behind it must refetch).
    Compact,
}

/// One change, as stored in the log and sent to folder watchers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The resource's path.
    pub path: String,
    pub kind: ResourceKind,
    pub what: ChangeKind,
    /// The resource's version after the change (its heads; empty once deleted).
    pub version: Vec<String>,
    /// Bytes (files) or code points (text) after the change.
    pub size: u64,
    /// When it was committed, in milliseconds since 1970.
    pub time_ms: u64,
    /// Who made it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// A file's media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// A file with concurrent versions side by side (siblings) after the change.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub conflict: bool,
}

impl Change {
    /// The stored form.
    pub fn encode(&self) -> Vec<u8> {
        // Plain data into memory: cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A change from its stored form (None: unreadable).
    pub fn decode(bytes: &[u8]) -> Option<Change> {
        serde_json::from_slice(bytes).ok()
    }

    /// Whether the resource is gone after this change.
    pub fn deleted(&self) -> bool {
        self.what == ChangeKind::Delete
    }

    /// The entry that stages this change into a batch (the log gives it its position when the
    /// batch is written).
    pub fn entry(&self) -> LogEntry {
        LogEntry { path: self.path.clone(), deleted: self.deleted(), record: self.encode() }
    }
}
