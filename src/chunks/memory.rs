//! An in-memory chunk engine: `--memory` mode and tests. Nothing survives a restart.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use super::{ChunkError, ChunkId, ChunkSize, ChunkStore, EngineStats};

#[derive(Default)]
struct Inner {
    chunks: BTreeMap<ChunkId, (Vec<u8>, u32)>,
    header: Option<Vec<u8>>,
}

/// Sealed chunks in a `BTreeMap` behind a mutex.
#[derive(Default)]
pub struct MemoryChunkStore {
    inner: Mutex<Inner>,
}

impl MemoryChunkStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every change is one map operation: a panic elsewhere cannot leave it half-done.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces a stored chunk's bytes: tests corrupt chunks with it.
    #[cfg(test)]
    pub(crate) fn overwrite(&self, id: &ChunkId, sealed: Vec<u8>) {
        if let Some(entry) = self.lock().chunks.get_mut(id) {
            entry.0 = sealed;
        }
    }
}

impl ChunkStore for MemoryChunkStore {
    fn put(&self, id: &ChunkId, sealed: &[u8], plain_len: u32) -> Result<bool, ChunkError> {
        let mut inner = self.lock();
        if inner.chunks.contains_key(id) {
            return Ok(false);
        }
        inner.chunks.insert(*id, (sealed.to_vec(), plain_len));
        Ok(true)
    }

    fn get(&self, id: &ChunkId) -> Result<Option<Vec<u8>>, ChunkError> {
        Ok(self.lock().chunks.get(id).map(|(bytes, _)| bytes.clone()))
    }

    fn lookup(&self, ids: &[ChunkId]) -> Result<Vec<Option<ChunkSize>>, ChunkError> {
        let inner = self.lock();
        Ok(ids
            .iter()
            .map(|id| inner.chunks.get(id).map(|(b, plain)| ChunkSize { plain: *plain, stored: b.len() as u32 }))
            .collect())
    }

    fn delete(&self, ids: &[ChunkId]) -> Result<(), ChunkError> {
        let mut inner = self.lock();
        for id in ids {
            inner.chunks.remove(id);
        }
        Ok(())
    }

    fn ids(&self, after: Option<&ChunkId>, limit: usize) -> Result<Vec<ChunkId>, ChunkError> {
        use std::ops::Bound;
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(self.lock().chunks.range((lower, Bound::Unbounded)).take(limit).map(|(id, _)| *id).collect())
    }

    fn stats(&self) -> Result<EngineStats, ChunkError> {
        let inner = self.lock();
        let mut stats = EngineStats::default();
        let mut plain_bytes = 0;
        for (bytes, plain) in inner.chunks.values() {
            stats.chunks += 1;
            stats.stored_bytes += bytes.len() as u64;
            plain_bytes += u64::from(*plain);
        }
        Ok(EngineStats { plain_bytes: Some(plain_bytes), ..stats })
    }

    fn header(&self) -> Result<Option<Vec<u8>>, ChunkError> {
        Ok(self.lock().header.clone())
    }

    fn set_header(&self, value: &[u8]) -> Result<(), ChunkError> {
        self.lock().header = Some(value.to_vec());
        Ok(())
    }
}
