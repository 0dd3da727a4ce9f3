//! Knowing when the store has really closed.
//!
//! Why: RocksDB must be closed before the process exits. Its C++ static objects are
//! destroyed at exit, and a database still closing on another thread (the group-commit
//! thread, a blocking load) then touches freed memory: heap corruption at exit, seen as
//! `malloc_consolidate(): unaligned fastbin chunk detected` in CI. The store is shared by
//! many owners (hub actors, the commit thread, blocking loads), so whoever drops it last
//! closes it; [`track_close`] lets shutdown wait for that moment.

use std::sync::{mpsc, Arc};
use std::time::Duration;

use super::{Batch, KvPairs, Store, StoreError};

/// A store that signals when it has been dropped, engine included.
struct Tracked {
    /// Declared before `_closed`, so it is dropped (the engine closed) first.
    inner: Arc<dyn Store>,
    /// Dropped last: its receiver then sees the channel disconnect.
    _closed: mpsc::Sender<()>,
}

impl Store for Tracked {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<KvPairs, StoreError> {
        self.inner.scan_prefix(prefix)
    }

    fn scan_prefix_rev(&self, prefix: &[u8], below: Option<&[u8]>, limit: usize) -> Result<KvPairs, StoreError> {
        self.inner.scan_prefix_rev(prefix, below, limit)
    }

    fn scan_from(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<KvPairs, StoreError> {
        self.inner.scan_from(prefix, from, limit)
    }

    fn write(&self, batch: &Batch) -> Result<(), StoreError> {
        self.inner.write(batch)
    }
}

/// Waits for a tracked store to close.
pub struct CloseWatch(mpsc::Receiver<()>);

impl CloseWatch {
    /// Blocks until every handle of the store is dropped and the engine has closed, or
    /// `limit` passes. Returns whether it closed.
    pub fn wait(&self, limit: Duration) -> bool {
        matches!(self.0.recv_timeout(limit), Err(mpsc::RecvTimeoutError::Disconnected))
    }
}

/// Wraps `store` (which must not be shared elsewhere) so that [`CloseWatch::wait`] can tell
/// when the last handle is gone and the engine is closed.
pub fn track_close(store: Arc<dyn Store>) -> (Arc<dyn Store>, CloseWatch) {
    let (tx, rx) = mpsc::channel();
    (Arc::new(Tracked { inner: store, _closed: tx }), CloseWatch(rx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn the_watch_fires_only_after_the_last_handle_is_dropped() {
        let (store, watch) = track_close(Arc::new(MemoryStore::default()));
        let other = store.clone();
        drop(store);
        assert!(!watch.wait(Duration::from_millis(20)), "a handle is still alive");
        let closer = std::thread::spawn(move || drop(other));
        assert!(watch.wait(Duration::from_secs(5)));
        closer.join().unwrap();
    }
}
