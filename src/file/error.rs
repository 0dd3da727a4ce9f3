//! [`FileError`]: why a write to a file resource was refused. Mapped to HTTP in one place
//! (`http/error.rs`); every variant is the client's doing except `CorruptRecord`.

/// A refused file write or an unreadable record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// A `Version` or `Parents` id that is empty, too long, or has characters a header list
    /// cannot carry.
    #[error("invalid file version id {id:?}: {why}")]
    BadVersionId { id: String, why: &'static str },
    /// `Parents` names versions this resource does not have.
    #[error("unknown parent versions: {}", ids.join(", "))]
    UnknownParents { ids: Vec<String> },
    /// The `Version` exists already with different content: ids name one content forever.
    #[error("version {id} already exists with different content")]
    VersionReused { id: String },
    /// A delete of a resource that has no version, or whose served version is already deleted
    /// and has no sibling.
    #[error("nothing to delete")]
    NothingToDelete,
    /// A restore of a version that is a delete (it has no bytes to bring back).
    #[error("version {id} is a delete: there are no bytes to restore")]
    NothingToRestore { id: String },
    /// A stored record that does not decode (the store was damaged or written by a bug).
    #[error("corrupt file record: {0}")]
    CorruptRecord(String),
}
