//! Resumable uploads (tus 1.0.0 and the IETF "Resumable Uploads for HTTP" draft): the durable
//! record of an upload in progress, its keys in the key-value store, and the rules that decide
//! whether an append, a completion or a concatenation may happen.
//!
//! An upload's bytes go into the chunk store as they arrive; what makes them resumable is the
//! record kept here: the target, the length (once known), how many bytes are kept, and the list
//! of chunks those bytes were cut into, plus the last bytes not yet cut (the *tail*, stored as a
//! chunk of its own). Every acknowledged `Upload-Offset` is backed by a synced record, and the
//! chunks it lists are referenced by the upload (`chunks::refs::UPLOADS`) so the collector keeps
//! them until the upload completes, is cancelled or expires.
//!
//! Pure: values, keys and store ops; no I/O, HTTP or documents (the hub drives it, tidy checks it).
//! The wire behaviour is written down in docs/UPLOADS.md.

pub mod direct;
pub mod error;
pub mod record;

pub use error::UploadError;
pub use record::{Done, PartRef, UploadId, UploadRecord};
