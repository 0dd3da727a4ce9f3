//! The RocksDB engine: the only file that touches the `rocksdb` crate.

use std::path::Path;

use rocksdb::{Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB};

use super::{prefix_end, Batch, KvPairs, Op, Store, StoreError};

/// Whether a write waits for the disk before it counts as done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Every write is synced (fsync of the WAL) before it returns: the default.
    Sync,
    /// Writes return once they are in the OS page cache. A `kill -9` keeps them, a power loss
    /// does not. Only for tests that must prove they can detect lost writes.
    NoSync,
}

/// RocksDB at a directory, with WAL syncing according to [`Durability`].
pub struct RocksStore {
    db: DB,
    durability: Durability,
}

impl RocksStore {
    /// Opens (creating if needed) the database under `dir`.
    pub fn open(dir: &Path, durability: Durability) -> Result<Self, StoreError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        // The write-ahead log is what makes a synced write durable; keep it small and
        // recycle it instead of letting it grow between memtable flushes.
        opts.set_max_total_wal_size(64 << 20);
        opts.set_keep_log_file_num(4);
        let db = DB::open(&opts, dir).map_err(engine)?;
        Ok(RocksStore { db, durability })
    }
}

fn engine(e: rocksdb::Error) -> StoreError {
    StoreError::Engine(e.into_string())
}

impl Store for RocksStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.get(key).map_err(engine)
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<KvPairs, StoreError> {
        let mut out = Vec::new();
        for item in self.db.iterator(IteratorMode::From(prefix, Direction::Forward)) {
            let (k, v) = item.map_err(engine)?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.into_vec(), v.into_vec()));
        }
        Ok(out)
    }

    fn write(&self, batch: &Batch) -> Result<(), StoreError> {
        let mut wb = WriteBatch::default();
        for op in &batch.ops {
            match op {
                Op::Put(k, v) => wb.put(k, v),
                Op::Delete(k) => wb.delete(k),
                Op::DeletePrefix(prefix) => match prefix_end(prefix) {
                    Some(end) => wb.delete_range(prefix, &end),
                    None => {
                        for (k, _) in self.scan_prefix(prefix)? {
                            wb.delete(k);
                        }
                    }
                },
            }
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(self.durability == Durability::Sync);
        self.db.write_opt(wb, &wo).map_err(engine)
    }
}
