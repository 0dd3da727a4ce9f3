//! Property tests of reference counting and collection: random interleavings of uploads
//! (put, claim), commits, dropped versions, collections and crashes between any two steps;
//! no committed version ever misses a chunk, and unreferenced chunks are eventually
//! collected. Plus collections racing uploads on two threads, and orphans of a killed
//! process collected after a RocksDB reopen.

use std::collections::BTreeSet;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::refs::{self, Owner};
use super::*;
use crate::store::{Batch, MemoryStore, Store};

const MAX: usize = 1 << 12;

/// The contents chunks are drawn from: few, so uploads share chunks all the time.
fn pool() -> Vec<Vec<u8>> {
    (0..12u32).map(|i| format!("chunk {i} ").repeat(1 + i as usize * 7).into_bytes()).collect()
}

struct Pending {
    upload: Upload,
    resource: String,
    version: String,
    contents: Vec<usize>,
    /// How many of `contents` have been stored or claimed and found.
    done: usize,
    /// Whether it began with the "which are missing" exchange.
    claimed_first: bool,
}

struct Committed {
    resource: String,
    version: String,
    ids: Vec<ChunkId>,
    contents: Vec<usize>,
}

/// One run of `steps` random steps.
fn run(seed: u64, steps: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let pool = pool();
    let engine: Arc<dyn ChunkStore> = Arc::new(MemoryChunkStore::new());
    let store = MemoryStore::new();
    let open = || Arc::new(Vault::open(engine.clone(), None, MAX, "test").unwrap());
    let mut vault = open();
    let mut pending: Vec<Pending> = Vec::new();
    let mut committed: Vec<Committed> = Vec::new();
    let mut next_version = 0u64;
    for step in 0..steps {
        match rng.random_range(0..100) {
            // Begin an upload.
            0..=14 => {
                let n = rng.random_range(1..=4);
                next_version += 1;
                let mut upload = vault.begin();
                let contents: Vec<usize> = (0..n).map(|_| rng.random_range(0..pool.len())).collect();
                let claimed_first = rng.random_bool(0.5);
                let mut done = 0;
                if claimed_first {
                    let ids: Vec<ChunkId> = contents.iter().map(|&c| ChunkId::of(&pool[c])).collect();
                    let missing = upload.claim(&ids).unwrap();
                    // Found chunks need no upload: skip past the leading ones.
                    while done < ids.len() && !missing.contains(&ids[done]) {
                        done += 1;
                    }
                }
                pending.push(Pending {
                    upload,
                    resource: format!("/r{}", rng.random_range(0..3)),
                    version: next_version.to_string(),
                    contents,
                    done,
                    claimed_first,
                });
            }
            // Store the next chunk of an upload (or, after a claim, skip found ones).
            15..=44 if !pending.is_empty() => {
                let i = rng.random_range(0..pending.len());
                let p = &mut pending[i];
                if p.done < p.contents.len() {
                    let content = &pool[p.contents[p.done]];
                    let id = ChunkId::of(content);
                    let stored = p.claimed_first && vault.missing(&[id]).unwrap().is_empty();
                    if !stored || !p.claimed_first {
                        p.upload.put(content).unwrap();
                    } else {
                        // Found at claim time, or stored by an earlier put: claims cover it.
                        p.upload.claim(&[id]).unwrap();
                    }
                    p.done += 1;
                }
            }
            // Commit a finished upload: version record and references in one batch.
            45..=64 if pending.iter().any(|p| p.done == p.contents.len()) => {
                let i = pending.iter().position(|p| p.done == p.contents.len()).unwrap_or_default();
                let p = pending.remove(i);
                let ids: Vec<ChunkId> = p.contents.iter().map(|&c| ChunkId::of(&pool[c])).collect();
                let mut batch = Batch::new();
                batch.put(format!("version {} {}", p.resource, p.version).into_bytes(), vec![1]);
                let owner = Owner { resource: &p.resource, version: &p.version };
                p.upload.reference(&mut batch, owner, &ids).unwrap();
                store.write(&batch).unwrap();
                committed.push(Committed { resource: p.resource, version: p.version, ids, contents: p.contents });
                drop(p.upload);
            }
            // Drop a committed version (retention, delete).
            65..=74 if !committed.is_empty() => {
                let c = committed.remove(rng.random_range(0..committed.len()));
                let mut batch = Batch::new();
                batch.delete(format!("version {} {}", c.resource, c.version).into_bytes());
                refs::remove(&mut batch, Owner { resource: &c.resource, version: &c.version }, &c.ids);
                store.write(&batch).unwrap();
            }
            // Abandon an upload.
            75..=79 if !pending.is_empty() => {
                pending.remove(rng.random_range(0..pending.len()));
            }
            // Collect.
            80..=94 => {
                vault.collect(&store).unwrap();
            }
            // kill -9: every upload in progress and the lease table are gone; the stores
            // (durable) stay. Leaked, not dropped: a dead process releases nothing.
            _ => {
                for p in pending.drain(..) {
                    std::mem::forget(p.upload);
                }
                vault = open();
            }
        }
        // No committed version ever misses a chunk, and every chunk reads back verified.
        for c in &committed {
            for (id, &content) in c.ids.iter().zip(&c.contents) {
                let read = vault.read(id).unwrap();
                assert_eq!(
                    read.as_ref(),
                    Some(&pool[content]),
                    "seed {seed} step {step}: {} {} lost {id}",
                    c.resource,
                    c.version
                );
            }
        }
    }
    // Eventually: with no upload left, one collection leaves exactly the referenced chunks.
    pending.clear();
    vault.collect(&store).unwrap();
    let stored: BTreeSet<ChunkId> = engine.ids(None, usize::MAX).unwrap().into_iter().collect();
    let referenced: BTreeSet<ChunkId> = committed.iter().flat_map(|c| c.ids.iter().copied()).collect();
    assert_eq!(stored, referenced, "seed {seed}");
    // And the stats agree with the oracle.
    for r in ["/r0", "/r1", "/r2"] {
        let logical: u64 =
            committed.iter().filter(|c| c.resource == r).flat_map(|c| &c.contents).map(|&i| pool[i].len() as u64).sum();
        assert_eq!(stats::resource(&store, r).unwrap().logical_bytes, logical, "seed {seed} {r}");
    }
}

#[test]
fn random_interleavings_with_crashes_never_lose_a_committed_chunk() {
    for seed in 0..200 {
        run(seed, 300);
    }
}

/// Collections in a loop on one thread while another uploads, dedupes against chunks that
/// just became unreferenced, commits and drops versions: the lock-step of claims and
/// collection pages, not just the order of whole steps.
#[test]
fn collections_racing_uploads_never_lose_a_committed_chunk() {
    let pool = pool();
    let engine: Arc<dyn ChunkStore> = Arc::new(MemoryChunkStore::new());
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let vault = Arc::new(Vault::open(engine, None, MAX, "test").unwrap());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let collector = {
        let (vault, store, stop) = (vault.clone(), store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut rounds = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                vault.collect(store.as_ref()).unwrap();
                rounds += 1;
            }
            rounds
        })
    };
    let mut rng = StdRng::seed_from_u64(99);
    let mut live: Vec<(String, Vec<usize>)> = Vec::new();
    for v in 0..3000 {
        let contents: Vec<usize> = (0..rng.random_range(1..4)).map(|_| rng.random_range(0..pool.len())).collect();
        let ids: Vec<ChunkId> = contents.iter().map(|&c| ChunkId::of(&pool[c])).collect();
        let mut upload = vault.begin();
        let missing = upload.claim(&ids).unwrap();
        for (id, &c) in ids.iter().zip(&contents) {
            if missing.contains(id) {
                upload.put(&pool[c]).unwrap();
            }
        }
        let version = v.to_string();
        let mut batch = Batch::new();
        upload.reference(&mut batch, Owner { resource: "/f", version: &version }, &ids).unwrap();
        store.write(&batch).unwrap();
        drop(upload);
        live.push((version, contents));
        // Keep few versions, so chunks keep becoming unreferenced and found again.
        if live.len() > 2 {
            let (version, contents) = live.remove(0);
            let ids: Vec<ChunkId> = contents.iter().map(|&c| ChunkId::of(&pool[c])).collect();
            let mut batch = Batch::new();
            refs::remove(&mut batch, Owner { resource: "/f", version: &version }, &ids);
            store.write(&batch).unwrap();
        }
        for (version, contents) in &live {
            for &c in contents {
                let read = vault.read(&ChunkId::of(&pool[c])).unwrap();
                assert_eq!(read.as_ref(), Some(&pool[c]), "version {version} lost chunk {c} (after {v} versions)");
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let rounds = collector.join().unwrap();
    assert!(rounds > 10, "only {rounds} collections ran: no race was tested");
}

/// A process killed mid-upload (its chunks durable, its version never committed) leaves
/// orphans in RocksDB; after a reopen, a collection removes them and keeps committed ones.
#[cfg(feature = "rocksdb")]
#[test]
fn orphans_of_a_killed_process_are_collected_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = MemoryStore::new(); // the documents' store: only the references matter here
    let (kept, orphan) = (b"committed bytes".repeat(10), b"orphaned bytes".repeat(10));
    {
        let engine: Arc<dyn ChunkStore> = Arc::new(RocksChunkStore::open(&dir.path().join("chunks")).unwrap());
        let vault = Arc::new(Vault::open(engine, None, MAX, "test").unwrap());
        let mut done = vault.begin();
        let (id, _) = done.put(&kept).unwrap();
        let mut batch = Batch::new();
        done.reference(&mut batch, Owner { resource: "/f", version: "1" }, &[id]).unwrap();
        store.write(&batch).unwrap();
        drop(done);
        let mut killed = vault.begin();
        killed.put(&orphan).unwrap();
        // The process dies with the upload in progress: its leases lived in memory only, and
        // everything of it goes (the engine too, or RocksDB's lock would outlive the "process").
        drop(killed);
        drop(vault);
    }
    let engine: Arc<dyn ChunkStore> = Arc::new(RocksChunkStore::open(&dir.path().join("chunks")).unwrap());
    let vault = Vault::open(engine.clone(), None, MAX, "test").unwrap();
    assert_eq!(engine.stats().unwrap().chunks, 2);
    let done = vault.collect(&store).unwrap();
    assert_eq!(done.deleted, 1);
    assert_eq!(vault.read(&ChunkId::of(&kept)).unwrap(), Some(kept));
    assert_eq!(vault.read(&ChunkId::of(&orphan)).unwrap(), None);
}
