//! The chunk store of file resources: content-defined chunks, stored once, sealed at rest.
//!
//! A file's bytes arrive as a stream of body frames. [`chunker::Chunker`] cuts them into
//! content-defined chunks (FastCDC v2020) as they arrive, names each by the BLAKE3 hash of its
//! plaintext ([`ChunkId`]) and hashes the whole stream with SHA-256 (`Repr-Digest`) in the same
//! pass. [`seal`] turns a chunk into the bytes kept at rest (LZ4 when that saves space,
//! AES-256-GCM when a key file is configured, see [`keyfile`]) and back, verifying the id on
//! every read. A [`ChunkStore`] engine keeps sealed chunks by id ([`memory`], [`rocks`],
//! [`s3`]: objects in an S3-compatible bucket); the
//! [`vault::Vault`] puts these together with the upload leases and the collector ([`gc`]), and
//! [`refs`] is the reference bookkeeping that goes into the key-value store's atomic
//! `store::Batch` beside the version record that adds or drops the references.
//!
//! Architecture invariant: knows bytes, chunk ids and the key-value store's value types and
//! trait; never HTTP, documents or diamond-types (tidy checks it). The file kind's core and
//! the HTTP layer call it; it calls nobody above it. The design and the on-disk formats are
//! written down in docs/CHUNKS.md.

pub mod chunker;
pub mod conformance;
pub mod gc;
#[cfg(test)]
mod gc_tests;
pub mod keyfile;
pub mod memory;
pub mod params;
pub mod refs;
#[cfg(feature = "rocksdb")]
pub mod rocks;
pub mod s3;
pub mod seal;
pub mod stats;
pub mod vault;

use std::fmt;

pub use chunker::{Chunk, Chunker, StreamSummary};
pub use keyfile::{ChunkKey, KeyError};
pub use memory::MemoryChunkStore;
pub use params::{ChunkParams, ParamsError};
#[cfg(feature = "rocksdb")]
pub use rocks::RocksChunkStore;
pub use s3::S3ChunkStore;
pub use vault::{Upload, Vault};

use crate::store::StoreError;

/// A chunk's id: the BLAKE3 hash of its plaintext. Clients compute the same id from the
/// same bytes (the "which chunks are missing" exchange), whatever the store does at rest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChunkId(pub [u8; 32]);

impl ChunkId {
    /// The id of `plaintext`.
    pub fn of(plaintext: &[u8]) -> Self {
        ChunkId(*blake3::hash(plaintext).as_bytes())
    }

    /// Parses 64 lowercase or uppercase hex digits (the id's text form).
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut id = [0u8; 32];
        hex::decode_to_slice(text, &mut id).ok()?;
        Some(ChunkId(id))
    }
}

impl fmt::Display for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkId({self})")
    }
}

/// What an engine knows about one stored chunk, without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkSize {
    /// Plaintext bytes.
    pub plain: u32,
    /// Bytes at rest (sealed: compressed and/or encrypted, with their header).
    pub stored: u32,
}

/// An engine's totals: what is stored, once per chunk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Chunks stored.
    pub chunks: u64,
    /// Bytes at rest, summed over the chunks.
    pub stored_bytes: u64,
    /// Plaintext bytes, summed over the distinct chunks (each counted once); None when the
    /// engine cannot tell without reading every chunk's metadata (S3).
    pub plain_bytes: Option<u64>,
}

/// A failure of the chunk layer. `Corrupt` and the engine errors are the server's fault;
/// `NotClaimed` is a caller's bug; none is caused by client bytes directly (callers
/// validate ids and sizes before they get here).
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    /// The engine failed (I/O error, engine corruption).
    #[error("chunk storage engine error: {0}")]
    Engine(String),
    /// The disk is full: the chunk was not stored.
    #[error("no space left for chunks: {0}")]
    NoSpace(String),
    /// A stored chunk does not decode to the bytes its id names: never served.
    #[error("chunk {id} is corrupt: {why}")]
    Corrupt {
        /// The chunk.
        id: ChunkId,
        /// What failed (decryption, decompression, the recomputed id).
        why: String,
    },
    /// A chunk larger than the store takes (the chunking maximum).
    #[error("chunk of {len} bytes is larger than the largest chunk stored ({max} bytes)")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A version referenced a chunk its upload neither stored nor claimed.
    #[error("chunk {0} was not stored or claimed by this upload")]
    NotClaimed(ChunkId),
    /// The store's sealing header and the configured key disagree: refused at start-up.
    #[error("the chunk store {location} {problem}")]
    Key {
        /// Where the store is.
        location: String,
        /// What does not match.
        problem: KeyError,
    },
    /// The key-value store holding the references failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ChunkError {
    /// A stable name for logs and tests.
    pub fn code(&self) -> &'static str {
        match self {
            ChunkError::Engine(_) => "chunk_engine",
            ChunkError::NoSpace(_) => "chunk_no_space",
            ChunkError::Corrupt { .. } => "chunk_corrupt",
            ChunkError::TooLarge { .. } => "chunk_too_large",
            ChunkError::NotClaimed(_) => "chunk_not_claimed",
            ChunkError::Key { .. } => "chunk_key",
            ChunkError::Store(_) => "store",
        }
    }
}

/// Where sealed chunks live: a map from [`ChunkId`] to opaque bytes, plus one small header
/// record saying how the chunks are sealed. Engines neither seal nor verify (the [`vault`]
/// does), so an object store ([`s3`]) or a replicated engine implements the same few calls.
/// Synchronous, like `store::Store`: callers on async threads use `block_in_place` or the
/// blocking pool.
pub trait ChunkStore: Send + Sync + 'static {
    /// Stores `sealed` under `id` unless a chunk with that id is already stored (then nothing
    /// changes and it returns false). Durable when it returns Ok, for engines with a disk.
    fn put(&self, id: &ChunkId, sealed: &[u8], plain_len: u32) -> Result<bool, ChunkError>;
    /// The sealed bytes of a chunk, if stored.
    fn get(&self, id: &ChunkId) -> Result<Option<Vec<u8>>, ChunkError>;
    /// The sizes of the chunks that are stored, in the order asked (None: not stored).
    fn lookup(&self, ids: &[ChunkId]) -> Result<Vec<Option<ChunkSize>>, ChunkError>;
    /// Removes chunks (absent ones are no error). Need not be synced: a delete lost in a
    /// crash leaves an unreferenced chunk, which the next collection removes again.
    fn delete(&self, ids: &[ChunkId]) -> Result<(), ChunkError>;
    /// At most `limit` stored ids after `after` (from the first when None), in id order: the
    /// collector pages through every chunk with it.
    fn ids(&self, after: Option<&ChunkId>, limit: usize) -> Result<Vec<ChunkId>, ChunkError>;
    /// The totals over every stored chunk.
    fn stats(&self) -> Result<EngineStats, ChunkError>;
    /// The sealing header (see [`seal::Header`]), None in a new store.
    fn header(&self) -> Result<Option<Vec<u8>>, ChunkError>;
    /// Writes the sealing header, synced.
    fn set_header(&self, value: &[u8]) -> Result<(), ChunkError>;

    /// The ids that are not stored, in the order asked.
    fn missing(&self, ids: &[ChunkId]) -> Result<Vec<ChunkId>, ChunkError> {
        let sizes = self.lookup(ids)?;
        Ok(ids.iter().zip(sizes).filter(|(_, size)| size.is_none()).map(|(id, _)| *id).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_parse_as_hex() {
        let id = ChunkId::of(b"hello");
        let text = id.to_string();
        assert_eq!(text, blake3::hash(b"hello").to_hex().as_str());
        assert_eq!(ChunkId::from_hex(&text), Some(id));
        assert_eq!(ChunkId::from_hex(&text.to_uppercase()), Some(id));
        assert_eq!(ChunkId::from_hex(&text[1..]), None);
        assert_eq!(ChunkId::from_hex(&format!("{}g", &text[1..])), None);
        assert_eq!(ChunkId::from_hex(&format!("{}é", &text[2..])), None);
    }
}
