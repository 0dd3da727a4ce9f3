//! An in-memory engine: `--memory` mode and tests. Nothing survives a restart, so every
//! memory store is new: it starts with the current format version record, like a new
//! RocksDB store.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{prefix_end, Batch, KvPairs, Op, Store, StoreError};

/// A `BTreeMap` behind a mutex; batches apply atomically under the lock.
pub struct MemoryStore {
    map: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A new store: no data, the current format version.
    pub fn new() -> Self {
        let (key, value) = super::format::current_record();
        MemoryStore { map: Mutex::new(BTreeMap::from([(key, value)])) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>> {
        // A panic while holding the lock cannot leave a half-applied batch (we apply to a
        // clone-free map in one go only after validation), so the data is still usable.
        self.map.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Store for MemoryStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().get(key).cloned())
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<KvPairs, StoreError> {
        Ok(self
            .lock()
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn scan_prefix_rev(&self, prefix: &[u8], below: Option<&[u8]>, limit: usize) -> Result<KvPairs, StoreError> {
        use std::ops::Bound;
        let upper = match (below, prefix_end(prefix)) {
            (Some(b), Some(end)) => Bound::Excluded(b.to_vec().min(end)),
            (Some(b), None) => Bound::Excluded(b.to_vec()),
            (None, Some(end)) => Bound::Excluded(end),
            (None, None) => Bound::Unbounded,
        };
        Ok(self
            .lock()
            .range((Bound::Included(prefix.to_vec()), upper))
            .rev()
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn scan_from(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<KvPairs, StoreError> {
        let start = prefix.max(from).to_vec();
        Ok(self
            .lock()
            .range(start..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn write(&self, batch: &Batch) -> Result<(), StoreError> {
        let mut map = self.lock();
        for op in &batch.ops {
            match op {
                Op::Put(k, v) => {
                    map.insert(k.clone(), v.clone());
                }
                Op::Delete(k) => {
                    map.remove(k);
                }
                Op::DeletePrefix(prefix) => {
                    let doomed: Vec<Vec<u8>> = match prefix_end(prefix) {
                        Some(end) => map.range(prefix.clone()..end).map(|(k, _)| k.clone()).collect(),
                        None => map.range(prefix.clone()..).map(|(k, _)| k.clone()).collect(),
                    };
                    for k in doomed {
                        map.remove(&k);
                    }
                }
            }
        }
        Ok(())
    }
}
