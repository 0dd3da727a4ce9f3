//! The vault: a chunk engine with its sealer and upload leases, the one thing callers use to
//! store and read file bytes.
//!
//! [`Vault::open`] checks the engine's sealing header against the configured key (a missing or
//! wrong key is refused here, at start-up). [`Vault::begin`] starts an [`Upload`]: it stores or
//! claims the chunks of one new version, adds the version's references to the batch that
//! records it, and is dropped once that batch is durable (or abandoned). [`Vault::read`]
//! returns a chunk's verified plaintext. [`Vault::collect`] is the garbage collector (`gc`).

use std::collections::HashMap;
use std::sync::Arc;

use crate::store::{Batch, Store};

use super::gc::{self, Collected, Leases};
use super::refs::{self, Owner};
use super::seal::{self, Sealer};
use super::{ChunkError, ChunkId, ChunkKey, ChunkSize, ChunkStore, EngineStats};

/// Chunks per collector page.
const COLLECT_PAGE: usize = 256;

/// A chunk engine, sealed with one key (or none), with its leases.
pub struct Vault {
    engine: Arc<dyn ChunkStore>,
    sealer: Sealer,
    leases: Leases,
}

impl Vault {
    /// Opens `engine` (at `location`, for messages) for chunks of at most `max_len` bytes,
    /// encrypted with `key` when given. Refuses a store whose header says another key, or
    /// encryption when no key is given, or none when one is.
    pub fn open(
        engine: Arc<dyn ChunkStore>,
        key: Option<&ChunkKey>,
        max_len: usize,
        location: &str,
    ) -> Result<Self, ChunkError> {
        let stored = engine.header()?;
        let empty = engine.ids(None, 1)?.is_empty();
        let refuse = |problem| ChunkError::Key { location: location.to_string(), problem };
        if let Some(header) = seal::check_header(stored.as_deref(), empty, key).map_err(refuse)? {
            engine.set_header(&header.encode())?;
        }
        Ok(Vault { engine, sealer: Sealer::new(key, max_len), leases: Leases::new() })
    }

    /// Starts an upload.
    pub fn begin(self: &Arc<Self>) -> Upload {
        Upload { vault: self.clone(), claimed: HashMap::new() }
    }

    /// The verified plaintext of a chunk (None: not stored).
    pub fn read(&self, id: &ChunkId) -> Result<Option<Vec<u8>>, ChunkError> {
        match self.engine.get(id)? {
            Some(sealed) => self.sealer.open(id, &sealed).map(Some),
            None => Ok(None),
        }
    }

    /// The ids in `ids` that are not stored.
    pub fn missing(&self, ids: &[ChunkId]) -> Result<Vec<ChunkId>, ChunkError> {
        self.engine.missing(ids)
    }

    /// Removes every chunk that no version references and no upload claims.
    pub fn collect(&self, store: &dyn Store) -> Result<Collected, ChunkError> {
        gc::collect(self.engine.as_ref(), &self.leases, store, COLLECT_PAGE)
    }

    /// The engine's totals.
    pub fn stats(&self) -> Result<EngineStats, ChunkError> {
        self.engine.stats()
    }

    /// The engine (stats per resource read sizes through it).
    pub fn engine(&self) -> &dyn ChunkStore {
        self.engine.as_ref()
    }

    /// Distinct ids claimed by uploads in progress.
    pub fn claimed(&self) -> usize {
        self.leases.claimed()
    }
}

/// One version's chunks on their way in: stored or claimed, then referenced by the batch
/// that records the version. Dropping it releases its claims: do that after the batch is
/// durable, or to abandon the upload (its new chunks are then orphans for the collector).
pub struct Upload {
    vault: Arc<Vault>,
    claimed: HashMap<ChunkId, Option<ChunkSize>>,
}

impl Upload {
    fn claim_new(&mut self, ids: &[ChunkId]) {
        let mut fresh = Vec::new();
        for id in ids {
            if !self.claimed.contains_key(id) {
                self.claimed.insert(*id, None);
                fresh.push(*id);
            }
        }
        self.vault.leases.claim(&fresh);
    }

    /// Stores a chunk (its id is computed here, never taken from the caller), claimed first
    /// so no collection removes it before the version commits. Idempotent.
    pub fn put(&mut self, plain: &[u8]) -> Result<(ChunkId, ChunkSize), ChunkError> {
        let max = self.vault.sealer.max_len();
        if plain.len() > max {
            return Err(ChunkError::TooLarge { len: plain.len(), max });
        }
        let id = ChunkId::of(plain);
        self.claim_new(&[id]);
        if let Some(Some(size)) = self.claimed.get(&id) {
            return Ok((id, *size));
        }
        let size = match self.vault.engine.lookup(&[id])?.pop().flatten() {
            Some(size) => size,
            None => {
                let sealed = self.vault.sealer.seal(&id, plain)?;
                let size = ChunkSize { plain: plain.len() as u32, stored: sealed.len() as u32 };
                self.vault.engine.put(&id, &sealed, size.plain)?;
                // A concurrent put of the same bytes may have won: report what is stored.
                self.vault.engine.lookup(&[id])?.pop().flatten().unwrap_or(size)
            }
        };
        self.claimed.insert(id, Some(size));
        Ok((id, size))
    }

    /// Claims chunks the client says it has (the "which are missing" exchange) and answers
    /// which of them are not stored: those the client must upload with [`Upload::put`].
    pub fn claim(&mut self, ids: &[ChunkId]) -> Result<Vec<ChunkId>, ChunkError> {
        self.claim_new(ids);
        let sizes = self.vault.engine.lookup(ids)?;
        let mut missing = Vec::new();
        for (id, size) in ids.iter().zip(sizes) {
            match size {
                Some(size) => {
                    self.claimed.insert(*id, Some(size));
                }
                None => missing.push(*id),
            }
        }
        Ok(missing)
    }

    /// Whether this upload stored or claimed-and-found `id`.
    pub fn holds(&self, id: &ChunkId) -> bool {
        matches!(self.claimed.get(id), Some(Some(_)))
    }

    /// The sizes of `chunks` (in order, repeats kept): every one must have been stored or
    /// claimed and found by this upload. What a version's references are built from.
    pub fn sizes(&self, chunks: &[ChunkId]) -> Result<Vec<(ChunkId, ChunkSize)>, ChunkError> {
        chunks
            .iter()
            .map(|id| match self.claimed.get(id) {
                Some(Some(size)) => Ok((*id, *size)),
                _ => Err(ChunkError::NotClaimed(*id)),
            })
            .collect()
    }

    /// Adds the references of the version `owner`, whose chunk list is `chunks`, to `batch`
    /// (the batch that records the version). Every chunk must have been stored or claimed
    /// and found by this upload.
    pub fn reference(&self, batch: &mut Batch, owner: Owner<'_>, chunks: &[ChunkId]) -> Result<(), ChunkError> {
        let list = self.sizes(chunks)?;
        refs::add(batch, owner, &list);
        Ok(())
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        self.vault.leases.release(self.claimed.keys());
    }
}
