//! Errors of the hub layer: the document core's refusals and failures ([`DocError`]), and
//! what only the hub can fail at (subscriptions, the listing and checkpoints, the workers).

use std::sync::Arc;

use crate::chunks::ChunkError;
use crate::document::DocError;
use crate::store::StoreError;
use crate::text::TextError;

/// Why a hub operation failed. Client faults and server faults are separate variants so
/// the HTTP layer can map them without guessing.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The document core refused or failed the command.
    #[error(transparent)]
    Doc(#[from] DocError),
    /// A subscription limit is reached.
    #[error("{0}")]
    TooManySubscriptions(SubscriptionLimit),
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
    /// The chunk store failed (or, for a stored chunk, found it corrupt).
    #[error(transparent)]
    Chunks(#[from] ChunkError),
    /// A file body larger than the configured limit.
    #[error("the file is larger than the limit of {limit} bytes")]
    FileTooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The body's SHA-256 is not what its `Repr-Digest` says: nothing was stored.
    #[error("the body's sha-256 is {actual}, its Repr-Digest says {expected}: nothing was stored")]
    DigestMismatch {
        /// What the client said, hex.
        expected: String,
        /// What the bytes hash to, hex.
        actual: String,
    },
    /// A commit by chunk list names chunks the caller has not uploaded (and cannot see).
    #[error("{} chunks of the list are missing here: upload them first", .0.len())]
    ChunksMissing(Vec<crate::chunks::ChunkId>),
    /// A commit by chunk list gives a chunk a length other than its stored one.
    #[error("chunk {id} is {stored} bytes, the list says {said}")]
    ChunkLength {
        /// The chunk.
        id: String,
        /// The length in the list.
        said: u64,
        /// The stored length.
        stored: u32,
    },
    /// A resumable upload's request was refused.
    #[error(transparent)]
    Upload(#[from] crate::upload::UploadError),
    /// The document's worker went away unexpectedly.
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
        match self {
            HubError::Doc(e) => e.is_disk_full(),
            HubError::Chunks(ChunkError::NoSpace(_)) => true,
            _ => false,
        }
    }
}

impl From<StoreError> for HubError {
    fn from(e: StoreError) -> Self {
        HubError::Doc(DocError::Storage(Arc::new(e)))
    }
}

impl From<TextError> for HubError {
    fn from(e: TextError) -> Self {
        HubError::Doc(DocError::Text(e))
    }
}
