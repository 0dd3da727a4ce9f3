//! The RocksDB engine: the only file that touches the `rocksdb` crate.
//!
//! A failed write (typically a full disk) leaves RocksDB in a sticky error state that the
//! Rust binding offers no way to clear, so the store reopens the database once writing
//! can work again: after a failure, each later write first probes the directory with a
//! small file and, when that succeeds, closes and reopens RocksDB (which replays its WAL,
//! so nothing acknowledged is lost). Reads keep using the old handle until then.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use rocksdb::{DBCompressionType, Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB};

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

/// How often a broken store tries to recover.
const REOPEN_EVERY: Duration = Duration::from_millis(250);
/// Free space a recovery needs to see before it reopens RocksDB.
const PROBE_BYTES: usize = 1 << 20;

/// RocksDB at a directory, with WAL syncing according to [`Durability`].
pub struct RocksStore {
    dir: PathBuf,
    durability: Durability,
    /// None only while a reopen failed; reads and writes then answer `StoreError`.
    db: RwLock<Option<DB>>,
    /// Set by a failed write: the next write tries to recover first.
    broken: AtomicBool,
    last_attempt: Mutex<Option<Instant>>,
}

fn open_db(dir: &Path) -> Result<DB, StoreError> {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    // The write-ahead log is what makes a synced write durable; keep it small and
    // recycle it instead of letting it grow between memtable flushes.
    opts.set_max_total_wal_size(64 << 20);
    opts.set_keep_log_file_num(4);
    compress_sst_files(&mut opts);
    DB::open(&opts, dir).map_err(engine)
}

/// SST files are compressed block by block: LZ4 for every level a write passes through, and
/// ZSTD for the bottommost level, where most of a long-lived store ends up and is read far
/// more often than rewritten. The write-ahead log (what a synced write waits for) is not
/// compressed, so writes do not pay for it; flushes and compactions (background threads) and
/// reads of blocks not in the block cache do. Measured in docs/BENCHMARKS.md (B3's data dir
/// and a bigger one, B3's cold reads, B6).
fn compress_sst_files(opts: &mut Options) {
    opts.set_compression_type(DBCompressionType::Lz4);
    opts.set_bottommost_compression_type(DBCompressionType::Zstd);
}

fn engine(e: rocksdb::Error) -> StoreError {
    let msg = e.into_string();
    if msg.contains("No space left") {
        StoreError::NoSpace(msg)
    } else {
        StoreError::Engine(msg)
    }
}

fn closed() -> StoreError {
    StoreError::Engine("the database is being reopened after a write failure".into())
}

impl RocksStore {
    /// Opens (creating if needed) the database under `dir`, and checks its format version
    /// (a new database gets the current one): a store in another format is closed again and
    /// refused with [`StoreError::Format`].
    pub fn open(dir: &Path, durability: Durability) -> Result<Self, StoreError> {
        let store = Self::open_unchecked(dir, durability)?;
        super::format::check(&store, &dir.display().to_string())?;
        Ok(store)
    }

    /// Opens without the format check: `open` checks next, the store's tests prepare stores
    /// in other formats with it.
    pub(super) fn open_unchecked(dir: &Path, durability: Durability) -> Result<Self, StoreError> {
        Ok(RocksStore {
            dir: dir.to_path_buf(),
            durability,
            db: RwLock::new(Some(open_db(dir)?)),
            broken: AtomicBool::new(false),
            last_attempt: Mutex::new(None),
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, Option<DB>> {
        // A panic while holding this lock cannot leave the handle half-changed.
        self.db.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Recovers from an earlier failed write, if the disk looks writable again.
    fn recover(&self) -> Result<(), StoreError> {
        {
            let mut last = self.last_attempt.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < REOPEN_EVERY) {
                return Err(StoreError::Engine("storage is recovering from a write failure".into()));
            }
            *last = Some(Instant::now());
        }
        self.probe_space()?;
        let mut db = self.db.write().unwrap_or_else(|p| p.into_inner());
        *db = None; // RocksDB holds a lock file: the old instance must close first
        *db = Some(open_db(&self.dir)?);
        self.broken.store(false, Ordering::SeqCst);
        tracing::warn!(dir = %self.dir.display(), "storage recovered: RocksDB reopened");
        Ok(())
    }

    /// Writes and removes a small file, to tell whether the disk has room again.
    fn probe_space(&self) -> Result<(), StoreError> {
        let probe = self.dir.join(".plait-space-probe");
        let result =
            std::fs::write(&probe, vec![0u8; PROBE_BYTES]).and_then(|()| std::fs::File::open(&probe)?.sync_all());
        let _ = std::fs::remove_file(&probe);
        result.map_err(|e| StoreError::NoSpace(format!("disk still not writable: {e}")))
    }
}

impl Store for RocksStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.read().as_ref().ok_or_else(closed)?.get(key).map_err(engine)
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<KvPairs, StoreError> {
        let guard = self.read();
        let db = guard.as_ref().ok_or_else(closed)?;
        let mut out = Vec::new();
        for item in db.iterator(IteratorMode::From(prefix, Direction::Forward)) {
            let (k, v) = item.map_err(engine)?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.into_vec(), v.into_vec()));
        }
        Ok(out)
    }

    fn scan_prefix_rev(&self, prefix: &[u8], below: Option<&[u8]>, limit: usize) -> Result<KvPairs, StoreError> {
        let guard = self.read();
        let db = guard.as_ref().ok_or_else(closed)?;
        // Start at the smaller of `below` and the prefix's end; both are exclusive bounds,
        // while RocksDB's reverse seek lands on the last key <= its start.
        let upper = match (below, prefix_end(prefix)) {
            (Some(b), Some(end)) => Some(b.to_vec().min(end)),
            (Some(b), None) => Some(b.to_vec()),
            (None, end) => end,
        };
        let mode = match &upper {
            Some(u) => IteratorMode::From(u, Direction::Reverse),
            None => IteratorMode::End,
        };
        let mut out = Vec::new();
        for item in db.iterator(mode) {
            let (k, v) = item.map_err(engine)?;
            if upper.as_deref().is_some_and(|u| &*k >= u) {
                continue; // the seek landed on the bound itself
            }
            if !k.starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push((k.into_vec(), v.into_vec()));
        }
        Ok(out)
    }

    fn scan_from(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<KvPairs, StoreError> {
        let guard = self.read();
        let db = guard.as_ref().ok_or_else(closed)?;
        let start = prefix.max(from);
        let mut out = Vec::new();
        for item in db.iterator(IteratorMode::From(start, Direction::Forward)) {
            let (k, v) = item.map_err(engine)?;
            if !k.starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push((k.into_vec(), v.into_vec()));
        }
        Ok(out)
    }

    fn write(&self, batch: &Batch) -> Result<(), StoreError> {
        if self.broken.load(Ordering::SeqCst) || self.read().is_none() {
            self.recover()?;
        }
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
        let result = self.read().as_ref().ok_or_else(closed)?.write_opt(wb, &wo).map_err(engine);
        if result.is_err() {
            self.broken.store(true, Ordering::SeqCst);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Repetitive text, the kind a history of small edits stores: `n` records of ~400 bytes.
    fn compressible(n: u32) -> (Batch, u64) {
        let mut batch = Batch::new();
        for i in 0..n {
            let value = format!("{i}: the quick brown fox jumps over the lazy dog. ").repeat(8).into_bytes();
            batch.put(format!("k{i:08}").into_bytes(), value);
        }
        let raw = batch.byte_len() as u64;
        (batch, raw)
    }

    fn sst_bytes(db: &DB) -> u64 {
        db.property_int_value("rocksdb.total-sst-files-size").unwrap().unwrap()
    }

    /// A flush (LZ4) writes SST files a fraction of the raw size, and a full compaction into
    /// the bottommost level (ZSTD) a clearly smaller one again. Fails if either library is not
    /// compiled in (RocksDB refuses to open with a compression it lacks), if nothing is
    /// compressed (raw SST files are a little larger than the data), or if the bottommost
    /// level is LZ4 too.
    #[test]
    fn sst_files_are_compressed_when_flushed_and_in_the_bottommost_level() {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(dir.path(), Durability::NoSync).unwrap();
        let (batch, raw) = compressible(4096);
        store.write(&batch).unwrap();
        let guard = store.read();
        let db = guard.as_ref().unwrap();
        db.flush().unwrap();
        let flushed = sst_bytes(db);
        assert!(flushed * 3 < raw, "flushed: {flushed} bytes of SST for {raw} bytes of data");
        // Rewrite every file into the bottommost level (no trivial move of the flushed one).
        let mut full = rocksdb::CompactOptions::default();
        full.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
        db.compact_range_opt::<&[u8], &[u8]>(None, None, &full);
        let compacted = sst_bytes(db);
        // ZSTD takes this data to ~0.72 of LZ4's size; LZ4 rewriting it again, to ~0.93.
        assert!(compacted * 5 < flushed * 4, "bottommost (ZSTD): {compacted} bytes, after the flush (LZ4): {flushed}");
        drop(guard);
        drop(store);
        let store = RocksStore::open(dir.path(), Durability::NoSync).unwrap();
        let (key, value) = batch
            .ops
            .iter()
            .find_map(|op| match op {
                Op::Put(k, v) => Some((k.clone(), v.clone())),
                _ => None,
            })
            .unwrap();
        assert_eq!(store.get(&key).unwrap(), Some(value));
    }
}
