//! Errors of the document core: why a write, a delete or a compaction was refused or failed.
//!
//! Client faults and server faults are separate variants so that the HTTP layer can map them
//! without guessing; the hub wraps these in its own error type (`HubError::Doc`).

use std::sync::Arc;

use crate::file::FileError;
use crate::protocol::kind::Kind;
use crate::protocol::VersionSet;
use crate::store::StoreError;
use crate::text::TextError;

/// Why the document core refused or failed a command.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    /// The edit was invalid for this document (a client fault).
    #[error(transparent)]
    Text(#[from] TextError),
    /// The request named events this server does not have (yet).
    #[error("version unknown here: {}", .0.to_header())]
    UnknownVersion(VersionSet),
    /// Too many writes are already waiting on this document for missing parents.
    #[error("too many writes waiting for missing parents on this document")]
    Overloaded,
    /// The write could make the document larger than the configured limit.
    #[error("the document would exceed the limit of {limit} code points")]
    DocumentTooLarge {
        /// The limit, in code points.
        limit: usize,
    },
    /// The document was deleted while the request was in flight.
    #[error("the document was deleted")]
    Deleted,
    /// Making the round durable failed; nothing from it was acknowledged.
    #[error("storage failure: {0}")]
    Storage(Arc<StoreError>),
    /// Stored bytes could not be decoded (a server-side fault, never the client's).
    #[error("stored document is unreadable: {0}")]
    Corrupt(String),
    /// The request names versions that compaction folded away behind the merge horizon.
    #[error("that version is behind this document's merge horizon ({}): fetch the current text (GET {snapshot} without Parents or Version) and continue from its version", .horizon.to_header())]
    BehindHorizon {
        /// The oldest version requests may name.
        horizon: VersionSet,
        /// The document's path, where the current snapshot is.
        snapshot: String,
    },
    /// The write was refused by the file layer (a client fault, except a corrupt record).
    #[error(transparent)]
    File(#[from] FileError),
    /// A write of the other kind than the resource's (text to a file, a file to text).
    #[error("{path} is {} and this write is {}: a resource keeps its kind; delete it first (DELETE {path}?erase for a file) to store the other kind", kind_name(*.existing), kind_name(*.written))]
    KindMismatch {
        /// The resource.
        path: String,
        /// What it is.
        existing: Kind,
        /// What the write was.
        written: Kind,
    },
    /// A compaction planned against an older state of the document (another compaction
    /// finished first); it is dropped, and the next pass plans again.
    #[error("a concurrent compaction changed the document; this one was dropped")]
    CompactionRaced,
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Text => "text",
        Kind::File => "a file",
    }
}

impl DocError {
    /// True when the failure is a full disk (the write was not made; retry later).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, DocError::Storage(e) if matches!(**e, StoreError::NoSpace(_)))
    }

    /// A copy for the second and later waiters of one failed commit. Only failures that can
    /// be shared that way are copied; anything else (never produced for a whole round) becomes
    /// a storage failure of the same text.
    pub(crate) fn duplicate(&self) -> DocError {
        match self {
            DocError::Storage(e) => DocError::Storage(e.clone()),
            DocError::Corrupt(msg) => DocError::Corrupt(msg.clone()),
            other => DocError::Corrupt(other.to_string()),
        }
    }
}

impl From<StoreError> for DocError {
    fn from(e: StoreError) -> Self {
        DocError::Storage(Arc::new(e))
    }
}
