//! Garbage collection of chunks: upload leases, and the collector that removes chunks no
//! version references and no upload in progress has claimed.
//!
//! The rules, and why they never delete a chunk that is still needed (docs/CHUNKS.md has the
//! longer argument):
//! 1. An upload claims every chunk id it will reference (the ones it stores and the ones it
//!    found already stored) in the in-memory lease table *before* it stores or relies on them,
//!    and keeps the claims until its version's batch, with the references, is durable (or it
//!    gives up). So a chunk that an upload in progress needs is claimed.
//! 2. A version's references go into the same atomic batch as its record (`refs::add`), and
//!    only for chunks the upload claimed (or that an existing version of the same resource
//!    already references, in the batch of the shell that owns both).
//! 3. The collector deletes a chunk only when, with the lease table locked, the chunk is not
//!    claimed and the key-value store holds no reference to it. A claim made after that waits
//!    for the lock and then finds the chunk missing (and stores it again); a reference made
//!    before it was made by an upload whose claim was released only after its batch was
//!    durable, so the collector's read, which follows the lock, sees the reference.
//! 4. `kill -9` loses the lease table with every upload in progress: nothing of theirs was
//!    acknowledged, so their chunks are orphans until the next collection removes them.
//!    Versions that committed have their references in the store, which survived.
//!
//! Holding the lock across one page of reference reads and deletes (at most `page` chunks)
//! makes a claim wait for one page's worth of I/O, never for the whole collection.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::store::Store;

use super::{refs, ChunkError, ChunkId, ChunkStore};

/// Chunk ids claimed by uploads in progress, with how many uploads claim each.
#[derive(Default)]
pub struct Leases {
    claims: Mutex<HashMap<ChunkId, u32>>,
}

impl Leases {
    /// An empty table (a fresh process: no upload survives a restart).
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ChunkId, u32>> {
        // Each change is one map update: a panic elsewhere cannot leave it half-done.
        self.claims.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claims `ids` for one upload (each id once per upload: the caller dedupes).
    pub(super) fn claim<'a>(&self, ids: impl IntoIterator<Item = &'a ChunkId>) {
        let mut claims = self.lock();
        for id in ids {
            *claims.entry(*id).or_insert(0) += 1;
        }
    }

    /// Releases one upload's claims.
    pub(super) fn release<'a>(&self, ids: impl IntoIterator<Item = &'a ChunkId>) {
        let mut claims = self.lock();
        for id in ids {
            if let Some(n) = claims.get_mut(id) {
                *n -= 1;
                if *n == 0 {
                    claims.remove(id);
                }
            }
        }
    }

    /// How many distinct ids are claimed.
    pub fn claimed(&self) -> usize {
        self.lock().len()
    }
}

/// What a collection did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Collected {
    /// Chunks looked at.
    pub examined: u64,
    /// Chunks deleted.
    pub deleted: u64,
    /// Their bytes at rest.
    pub freed_bytes: u64,
}

/// Deletes every stored chunk that no version references and no upload claims, `page`
/// chunks at a time (see the module's rules).
pub fn collect(
    engine: &dyn ChunkStore,
    leases: &Leases,
    store: &dyn Store,
    page: usize,
) -> Result<Collected, ChunkError> {
    let mut done = Collected::default();
    let mut after: Option<ChunkId> = None;
    loop {
        let ids = engine.ids(after.as_ref(), page.max(1))?;
        let Some(last) = ids.last() else { break };
        after = Some(*last);
        done.examined += ids.len() as u64;
        let claims = leases.lock();
        let mut doomed = Vec::new();
        for id in ids {
            if !claims.contains_key(&id) && !refs::is_referenced(store, &id)? {
                doomed.push(id);
            }
        }
        if doomed.is_empty() {
            continue;
        }
        let sizes = engine.lookup(&doomed)?;
        engine.delete(&doomed)?;
        drop(claims);
        done.deleted += doomed.len() as u64;
        done.freed_bytes += sizes.iter().flatten().map(|s| u64::from(s.stored)).sum::<u64>();
    }
    Ok(done)
}
