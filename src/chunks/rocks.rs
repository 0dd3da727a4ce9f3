//! The RocksDB chunk engine: a RocksDB of its own (the data dir's `chunks/`), with chunks in
//! blob files.
//!
//! Why not the documents' RocksDB: every synced write of a document waits for the shared
//! write-ahead log, and a 1 MiB chunk in that log would make each text write behind it wait
//! for a megabyte to reach the disk. Why blob files: values of 1–4 MiB in the LSM tree would
//! be rewritten by every compaction; in blob files they are written once more at flush and
//! then only by blob garbage collection, which reclaims deleted chunks' space as blob files
//! age. Chunks arrive compressed or encrypted, so neither blob files nor the write-ahead log
//! compress them again. Nothing here needs to be atomic with the documents' store: a chunk is
//! durable before the version that references it commits (see `gc`).
//!
//! Keys: `'c' ‖ id` → sealed bytes (a blob); `'m' ‖ id` → plaintext length ‖ stored length
//! (u32 BE each), written in the same batch, so existence and sizes never read a blob;
//! `'h'` → the sealing header. Totals are counted at open (one scan of the `'m'` keys) and
//! kept in memory.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use rocksdb::{DBCompressionType, Direction, IteratorMode, Options, ReadOptions, WriteBatch, WriteOptions, DB};

use super::{ChunkError, ChunkId, ChunkSize, ChunkStore, EngineStats};

const BODY: u8 = b'c';
const META: u8 = b'm';
const HEADER: &[u8] = b"h";
/// Puts of one id serialise on one of these (the existence check and the write), so the
/// totals count each chunk once; puts of other ids proceed and share RocksDB's group commit.
const STRIPES: usize = 64;

/// Sealed chunks in a RocksDB of their own.
pub struct RocksChunkStore {
    db: DB,
    stripes: Vec<Mutex<()>>,
    chunks: AtomicU64,
    stored: AtomicU64,
    plain: AtomicU64,
}

fn engine(e: rocksdb::Error) -> ChunkError {
    let msg = e.into_string();
    if msg.contains("No space left") {
        ChunkError::NoSpace(msg)
    } else {
        ChunkError::Engine(msg)
    }
}

fn key(tag: u8, id: &ChunkId) -> [u8; 33] {
    let mut k = [0u8; 33];
    k[0] = tag;
    k[1..].copy_from_slice(&id.0);
    k
}

fn sizes(value: &[u8]) -> Option<ChunkSize> {
    let (plain, stored) = value.split_first_chunk::<4>()?;
    Some(ChunkSize { plain: u32::from_be_bytes(*plain), stored: u32::from_be_bytes(stored.try_into().ok()?) })
}

impl RocksChunkStore {
    /// Opens (creating if needed) the chunk database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, ChunkError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_max_total_wal_size(256 << 20);
        opts.set_keep_log_file_num(4);
        opts.set_compression_type(DBCompressionType::Lz4);
        opts.set_enable_blob_files(true);
        // Metadata and the header stay in the LSM tree; every chunk body goes to blob files.
        opts.set_min_blob_size(4096);
        opts.set_blob_file_size(256 << 20);
        opts.set_blob_compression_type(DBCompressionType::None);
        opts.set_enable_blob_gc(true);
        // Chunk bodies sit in the memtable until a flush moves them to a blob file, and RocksDB
        // keeps up to two memtables (one filling, one flushing): 16 MiB each bounds what an
        // upload holds in memory (64 MiB memtables made a 1 GiB PUT grow the server by 128 MiB
        // and more; docs/BENCHMARKS.md, FILES). Each flush writes its own blob file, so they
        // are ~16 MiB, not 256 (`blob_file_size` is only their upper bound).
        opts.set_write_buffer_size(16 << 20);
        // A compaction relocates the live blobs of the oldest blob files (blob GC), rewriting
        // chunk bodies: at RocksDB's default of 4 level-0 files with 16 MiB memtables that ran
        // every 64 MiB written and took a third of an upload's CPU. 16 level-0 files (tiny:
        // ids and blob pointers) compact every 256 MiB, as 4 × 64 MiB memtables did.
        opts.set_level_zero_file_num_compaction_trigger(16);
        // Blob files are about a memtable each, so a 1 TB store has ~64k of them, and RocksDB's
        // default (-1) keeps every file it has opened open: the process would run out of file
        // descriptors. 512 stay open; others are reopened when read.
        opts.set_max_open_files(512);
        let db = DB::open(&opts, dir).map_err(|e| ChunkError::Engine(format!("{}: {}", dir.display(), e)))?;
        let store = RocksChunkStore {
            db,
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            chunks: AtomicU64::new(0),
            stored: AtomicU64::new(0),
            plain: AtomicU64::new(0),
        };
        for item in store.db.iterator(IteratorMode::From(&[META], Direction::Forward)) {
            let (k, v) = item.map_err(engine)?;
            if k.first() != Some(&META) {
                break;
            }
            let size = sizes(&v).ok_or_else(|| ChunkError::Engine("unreadable chunk size record".into()))?;
            store.count(size, 1);
        }
        Ok(store)
    }

    fn stripe(&self, id: &ChunkId) -> MutexGuard<'_, ()> {
        self.stripes[id.0[0] as usize % STRIPES].lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count(&self, size: ChunkSize, sign: i64) {
        let add = |a: &AtomicU64, n: u64| {
            if sign > 0 {
                a.fetch_add(n, Ordering::Relaxed);
            } else {
                a.fetch_sub(n, Ordering::Relaxed);
            }
        };
        add(&self.chunks, 1);
        add(&self.stored, u64::from(size.stored));
        add(&self.plain, u64::from(size.plain));
    }

    fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), ChunkError> {
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        self.db.write_opt(batch, &wo).map_err(engine)
    }
}

impl ChunkStore for RocksChunkStore {
    fn put(&self, id: &ChunkId, sealed: &[u8], plain_len: u32) -> Result<bool, ChunkError> {
        let _stripe = self.stripe(id);
        if self.db.get_pinned(key(META, id)).map_err(engine)?.is_some() {
            return Ok(false);
        }
        let size = ChunkSize { plain: plain_len, stored: sealed.len() as u32 };
        let mut meta = [0u8; 8];
        meta[..4].copy_from_slice(&size.plain.to_be_bytes());
        meta[4..].copy_from_slice(&size.stored.to_be_bytes());
        let mut batch = WriteBatch::default();
        batch.put(key(BODY, id), sealed);
        batch.put(key(META, id), meta);
        self.write(batch, true)?;
        self.count(size, 1);
        Ok(true)
    }

    fn get(&self, id: &ChunkId) -> Result<Option<Vec<u8>>, ChunkError> {
        // RocksDB's blob checksum is not checked: the sealed record carries its own CRC-32C and
        // the vault recomputes the chunk's BLAKE3 on every read, so a damaged blob is caught
        // anyway, while RocksDB's CRC-32C (built without SSE 4.2 here) cost 44% of a
        // download's CPU (docs/BENCHMARKS.md, FILES).
        let mut ro = ReadOptions::default();
        ro.set_verify_checksums(false);
        self.db.get_opt(key(BODY, id), &ro).map_err(engine)
    }

    fn lookup(&self, ids: &[ChunkId]) -> Result<Vec<Option<ChunkSize>>, ChunkError> {
        let keys = ids.iter().map(|id| key(META, id));
        self.db
            .multi_get(keys)
            .into_iter()
            .map(|r| {
                let value = r.map_err(engine)?;
                value
                    .map(|v| sizes(&v).ok_or_else(|| ChunkError::Engine("unreadable chunk size record".into())))
                    .transpose()
            })
            .collect()
    }

    fn delete(&self, ids: &[ChunkId]) -> Result<(), ChunkError> {
        for id in ids {
            let _stripe = self.stripe(id);
            let Some(value) = self.db.get_pinned(key(META, id)).map_err(engine)? else { continue };
            let size = sizes(&value).ok_or_else(|| ChunkError::Engine("unreadable chunk size record".into()))?;
            let mut batch = WriteBatch::default();
            batch.delete(key(BODY, id));
            batch.delete(key(META, id));
            self.write(batch, false)?;
            self.count(size, -1);
        }
        Ok(())
    }

    fn ids(&self, after: Option<&ChunkId>, limit: usize) -> Result<Vec<ChunkId>, ChunkError> {
        let start = after.map_or_else(|| vec![META], |id| key(META, id).to_vec());
        let mut out = Vec::new();
        for item in self.db.iterator(IteratorMode::From(&start, Direction::Forward)) {
            let (k, _) = item.map_err(engine)?;
            let Some(rest) = k.strip_prefix(&[META]) else { break };
            let Ok(bytes) = <[u8; 32]>::try_from(rest) else { continue };
            let id = ChunkId(bytes);
            if after == Some(&id) {
                continue;
            }
            if out.len() >= limit {
                break;
            }
            out.push(id);
        }
        Ok(out)
    }

    fn stats(&self) -> Result<EngineStats, ChunkError> {
        Ok(EngineStats {
            chunks: self.chunks.load(Ordering::Relaxed),
            stored_bytes: self.stored.load(Ordering::Relaxed),
            plain_bytes: Some(self.plain.load(Ordering::Relaxed)),
        })
    }

    fn header(&self) -> Result<Option<Vec<u8>>, ChunkError> {
        self.db.get(HEADER).map_err(engine)
    }

    fn set_header(&self, value: &[u8]) -> Result<(), ChunkError> {
        let mut batch = WriteBatch::default();
        batch.put(HEADER, value);
        self.write(batch, true)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use super::*;
    use crate::chunks::Vault;

    /// A byte flipped in a blob file on disk is `Corrupt` on read: RocksDB's own blob checksum
    /// is not checked on reads (see `get`), the vault's CRC-32C and BLAKE3 catch it.
    #[test]
    fn a_byte_flipped_in_a_blob_file_is_corrupt_on_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chunks");
        let plain: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let id = {
            let engine = Arc::new(RocksChunkStore::open(&path).unwrap());
            let vault = Arc::new(Vault::open(engine.clone(), None, 1 << 20, "here").unwrap());
            let (id, _) = vault.begin().put(&plain).unwrap();
            engine.db.flush().unwrap();
            id
        };
        let blob = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "blob"))
            .expect("the chunk went to a blob file");
        let mut bytes = std::fs::read(&blob).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x08;
        std::fs::write(&blob, bytes).unwrap();
        let engine = Arc::new(RocksChunkStore::open(&path).unwrap());
        let vault = Vault::open(engine, None, 1 << 20, "here").unwrap();
        assert!(matches!(vault.read(&id), Err(ChunkError::Corrupt { id: bad, .. }) if bad == id));
    }
}
