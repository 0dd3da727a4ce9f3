//! Durable state: a narrow, synchronous key-value trait with a memory and a RocksDB engine.
//!
//! Architecture invariant: the store knows bytes and the key layout ([`keys`]), nothing about
//! documents, diamond-types or HTTP. A successful [`Store::write`] is atomic, and durable
//! (synced to disk) when the engine has a disk. Group commit lives in [`commit`], on top of
//! any engine, so concurrent writers share one sync. Every store holds a format version
//! ([`format`]); opening one in another format fails instead of misreading it.

pub mod changelog;
pub mod closing;
pub mod commit;
#[cfg(test)]
pub mod fault;
pub mod format;
pub mod keys;
pub mod memory;
#[cfg(feature = "rocksdb")]
pub mod rocks;

pub use changelog::{ChangeLog, LogEntry, Logged, DEFAULT_WINDOW, MIN_WINDOW};
pub use closing::{track_close, CloseWatch};
pub use commit::{CommitStats, Committer};
pub use format::{FormatError, FORMAT_VERSION};
pub use memory::MemoryStore;
#[cfg(feature = "rocksdb")]
pub use rocks::RocksStore;

/// One change inside an atomic [`Batch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Set `key` to `value`.
    Put(Vec<u8>, Vec<u8>),
    /// Remove `key` (no error when absent).
    Delete(Vec<u8>),
    /// Remove every key that starts with the prefix.
    DeletePrefix(Vec<u8>),
}

/// A list of changes applied all together or not at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// The changes, applied in order.
    pub ops: Vec<Op>,
    /// Entries for the server's change log, written with the ops once [`ChangeLog::write`] has
    /// given them their positions (an engine's own `write` does not look at them).
    pub log: Vec<LogEntry>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Batch::default()
    }

    /// Adds a put.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push(Op::Put(key, value));
    }

    /// Adds a delete of one key.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.ops.push(Op::Delete(key));
    }

    /// Adds a delete of every key under `prefix`.
    pub fn delete_prefix(&mut self, prefix: Vec<u8>) {
        self.ops.push(Op::DeletePrefix(prefix));
    }

    /// Adds an entry for the change log.
    pub fn log(&mut self, entry: LogEntry) {
        self.log.push(entry);
    }

    /// True when the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.log.is_empty()
    }

    /// Total key and value bytes, used to bound group-commit batches.
    pub fn byte_len(&self) -> usize {
        self.ops
            .iter()
            .map(|op| match op {
                Op::Put(k, v) => k.len() + v.len(),
                Op::Delete(k) | Op::DeletePrefix(k) => k.len(),
            })
            .sum::<usize>()
            + self.log.iter().map(|e| 2 * (e.path.len() + e.record.len())).sum::<usize>()
    }
}

/// A failure of the storage engine. Never caused by client input.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The engine reported an error (I/O error, corruption).
    #[error("storage engine error: {0}")]
    Engine(String),
    /// The disk is full: the write was not made.
    #[error("no space left on the storage device: {0}")]
    NoSpace(String),
    /// The group-commit thread is gone (the server is shutting down).
    #[error("storage is shutting down")]
    Closed,
    /// The store is in a format this build does not read (see [`format`]): it was not opened.
    #[error("the data dir {location} {problem}")]
    Format {
        /// Where the store is (its directory).
        location: String,
        /// What was found.
        problem: FormatError,
    },
}

/// Key-value pairs in key order, as a prefix scan returns them.
pub type KvPairs = Vec<(Vec<u8>, Vec<u8>)>;

/// A key-value engine. Synchronous on purpose: both engines are embedded, and the one
/// caller that blocks on durability (the group-commit thread) runs on its own thread.
pub trait Store: Send + Sync + 'static {
    /// Reads one key.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every key-value pair whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Result<KvPairs, StoreError>;
    /// At most `limit` pairs whose key starts with `prefix` and is below `below` (when
    /// given), in descending key order: newest-first pages of a long record list without
    /// reading all of it.
    fn scan_prefix_rev(&self, prefix: &[u8], below: Option<&[u8]>, limit: usize) -> Result<KvPairs, StoreError>;
    /// At most `limit` pairs whose key starts with `prefix` and is at or after `from`, in key
    /// order: pages of a long range from where the last page stopped, and seeks past a
    /// subtree (folder listings, the change log).
    fn scan_from(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<KvPairs, StoreError>;
    /// Applies the batch atomically; when it returns Ok the batch survives a crash
    /// (for engines with a disk).
    fn write(&self, batch: &Batch) -> Result<(), StoreError>;
}

/// RocksDB at `dir`, every write synced: the server's durable engine, for callers that must not
/// name the engine themselves (the benchmarks' group-commit reference). Without the `rocksdb`
/// feature it is an error.
pub fn open_synced(dir: &std::path::Path) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    #[cfg(feature = "rocksdb")]
    return Ok(std::sync::Arc::new(RocksStore::open(dir, rocks::Durability::Sync)?));
    #[cfg(not(feature = "rocksdb"))]
    return Err(StoreError::Engine(format!(
        "no RocksDB in this build (feature `rocksdb` is off) for {}",
        dir.display()
    )));
}

/// The smallest key greater than every key starting with `prefix`, or None when the
/// prefix is all 0xFF (then the range is unbounded above).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod conformance;
