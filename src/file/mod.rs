//! The file merge type: a resource whose versions are whole byte strings (photos, PDFs, builds),
//! kept as a version graph whose concurrent heads are siblings until someone resolves them.
//!
//! Why a graph and not last-writer-wins: braid-blob keeps only the highest version and silently
//! drops a concurrent one; a sync product must not lose a photo because two devices saved at
//! once. So every write names the versions it replaces (`Parents`), a write that does not name
//! every current head leaves the others standing as siblings, one winner is served (the highest
//! version, ordered as braid-blob orders them, so braidfs agrees with us), and a write naming
//! all heads resolves the conflict. A delete is a version too (a tombstone), so a late write
//! based on an old version becomes a conflict with the delete instead of resurrecting the file.
//!
//! This module is pure: no I/O, no bytes of content (a version holds its chunk list, size,
//! content type and sha-256; the chunk store holds the bytes), no HTTP. Records are JSON.

mod doc;
mod error;
mod record;
mod version_id;

pub use doc::{Applied, Content, FileChange, FileDoc, FileVersion, FileWrite, Outcome};
pub use error::FileError;
pub use record::ChunkRef;
pub use version_id::FileVersionId;

#[cfg(test)]
mod tests;
