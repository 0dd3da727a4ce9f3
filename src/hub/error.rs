//! Errors of the hub layer.

use std::sync::Arc;

use crate::protocol::VersionSet;
use crate::store::StoreError;
use crate::text::TextError;

/// Why a hub operation failed. Client faults and server faults are separate variants so
/// the HTTP layer can map them without guessing.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The edit or request was invalid for this document (a client fault).
    #[error(transparent)]
    Text(#[from] TextError),
    /// The request named events this server does not have (yet).
    #[error("version unknown here: {}", .0.to_header())]
    UnknownVersion(VersionSet),
    /// Too many writes are already waiting on this document for missing parents.
    #[error("too many writes waiting for missing parents on this document")]
    Overloaded,
    /// A subscription limit is reached.
    #[error("{0}")]
    TooManySubscriptions(SubscriptionLimit),
    /// The write could make the document larger than the configured limit.
    #[error("the document would exceed the limit of {limit} code points")]
    DocumentTooLarge {
        /// The limit, in code points.
        limit: usize,
    },
    /// The document was deleted while the request was in flight.
    #[error("the document was deleted")]
    Deleted,
    /// The storage engine failed; nothing from the failed write was acknowledged.
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
    /// A history page was asked to start before a version the listing does not have.
    #[error("{0} is not a version in this document's history listing")]
    NotListed(String),
    /// A checkpoint name is not acceptable.
    #[error("bad checkpoint name: {0}")]
    BadCheckpointName(&'static str),
    /// A checkpoint of that name already names another version.
    #[error("checkpoint {0:?} already exists for another version")]
    CheckpointExists(String),
    /// The document already has as many checkpoints as allowed.
    #[error("this document already has {0} checkpoints; delete one first")]
    TooManyCheckpoints(usize),
    /// No checkpoint has that name.
    #[error("no checkpoint named {0:?}")]
    NoSuchCheckpoint(String),
    /// The document actor went away unexpectedly.
    #[error("document worker unavailable")]
    Unavailable,
}

/// Which subscription limit was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionLimit {
    /// Subscriptions on one document.
    PerDocument(usize),
    /// Subscriptions on the whole server.
    Server(usize),
}

impl std::fmt::Display for SubscriptionLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubscriptionLimit::PerDocument(n) => write!(f, "this document already has {n} subscriptions"),
            SubscriptionLimit::Server(n) => write!(f, "the server already holds {n} subscriptions"),
        }
    }
}

impl HubError {
    /// True when the failure is a full disk (the write was not made; retry later).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, HubError::Storage(e) if matches!(**e, StoreError::NoSpace(_)))
    }

    /// A copy for the second and later waiters of one failed commit. Only storage
    /// failures are shared that way; anything else becomes `Unavailable`.
    pub(crate) fn duplicate(&self) -> HubError {
        match self {
            HubError::Storage(e) => HubError::Storage(e.clone()),
            HubError::Corrupt(msg) => HubError::Corrupt(msg.clone()),
            _ => HubError::Unavailable,
        }
    }
}

impl From<StoreError> for HubError {
    fn from(e: StoreError) -> Self {
        HubError::Storage(Arc::new(e))
    }
}
