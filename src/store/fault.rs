//! A store that fails or holds writes on purpose, for the tests of what the layers above promise
//! when the disk misbehaves: fail the Nth write (nothing written), fail the sync (written, but
//! reported failed: the write is not acknowledged, yet a restart would find it), and a slow sync
//! (the write waits at a gate the test opens). Test-only.

use std::sync::{Condvar, Mutex};

use super::{Batch, KvPairs, MemoryStore, Store, StoreError};

/// What the next writes do.
#[derive(Debug, Default)]
struct Faults {
    /// Writes so far.
    writes: usize,
    /// The write with this number (1-based) fails without writing.
    fail_nth: Option<usize>,
    /// The write with this number is applied, then reported failed.
    fail_sync_nth: Option<usize>,
    /// While true, writes wait at the gate.
    gated: bool,
    /// Writes waiting at the gate now.
    waiting: usize,
}

/// A memory store with injectable write faults.
#[derive(Default)]
pub struct FaultStore {
    inner: MemoryStore,
    faults: Mutex<Faults>,
    changed: Condvar,
}

impl FaultStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The `n`th write from now (1 = the next) fails and writes nothing.
    pub fn fail_write_in(&self, n: usize) {
        let mut f = self.faults();
        f.fail_nth = Some(f.writes + n);
    }

    /// The `n`th write from now is applied, then reported failed (a failed fsync).
    pub fn fail_sync_in(&self, n: usize) {
        let mut f = self.faults();
        f.fail_sync_nth = Some(f.writes + n);
    }

    /// Makes writes wait until [`open`](Self::open).
    pub fn close_gate(&self) {
        self.faults().gated = true;
    }

    /// Lets waiting and later writes through.
    pub fn open(&self) {
        self.faults().gated = false;
        self.changed.notify_all();
    }

    /// Blocks until a write waits at the closed gate (at most `limit`); true if one does.
    pub fn wait_for_a_held_write(&self, limit: std::time::Duration) -> bool {
        let f = self.faults();
        let (f, _) = self.changed.wait_timeout_while(f, limit, |f| f.waiting == 0).unwrap_or_else(|p| p.into_inner());
        f.waiting > 0
    }

    /// Writes so far (failed ones included).
    pub fn writes(&self) -> usize {
        self.faults().writes
    }
}

impl Store for FaultStore {
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
        let mut f = self.faults();
        f.writes += 1;
        let n = f.writes;
        if f.gated {
            f.waiting += 1;
            self.changed.notify_all();
            f = self.changed.wait_while(f, |f| f.gated).unwrap_or_else(|p| p.into_inner());
            f.waiting -= 1;
        }
        if f.fail_nth == Some(n) {
            return Err(StoreError::NoSpace(format!("injected: write {n} fails")));
        }
        let fail_sync = f.fail_sync_nth == Some(n);
        drop(f);
        self.inner.write(batch)?;
        match fail_sync {
            true => Err(StoreError::Engine(format!("injected: write {n} was written but its sync failed"))),
            false => Ok(()),
        }
    }
}
