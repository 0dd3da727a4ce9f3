//! One suite, run against every chunk engine: what any [`ChunkStore`] must do, directly and
//! under a [`Vault`] (sealing, keys, uploads, collection).
//!
//! Public, and not only compiled for the unit tests, so that the integration tests run it
//! against engines that need a server of their own (S3 against a real SeaweedFS, in
//! `tests/it/s3.rs`); the server never calls it. Its failures are assertions: it is a test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use super::refs::Owner;
use super::*;
use crate::store::{Batch, MemoryStore, Store};

fn id(n: u32) -> ChunkId {
    ChunkId::of(&n.to_be_bytes())
}

/// Checks an engine's totals; the plaintext bytes only where the engine counts them.
fn assert_totals(engine: &dyn ChunkStore, chunks: u64, stored_bytes: u64, plain_bytes: u64) {
    let stats = engine.stats().unwrap();
    assert_eq!((stats.chunks, stats.stored_bytes), (chunks, stored_bytes), "{stats:?}");
    if let Some(plain) = stats.plain_bytes {
        assert_eq!(plain, plain_bytes, "{stats:?}");
    }
}

/// The engine's own contract, on an empty engine.
pub fn engine_suite(engine: &dyn ChunkStore) {
    assert_eq!(engine.header().unwrap(), None);
    assert_totals(engine, 0, 0, 0);
    assert!(engine.ids(None, 10).unwrap().is_empty());
    let (a, b, c) = (id(1), id(2), id(3));
    assert!(engine.put(&a, b"sealed-a", 100).unwrap());
    assert!(engine.put(&b, b"sealed-bb", 200).unwrap());
    // Idempotent: a second put of an id changes nothing, whatever bytes it brings.
    assert!(!engine.put(&a, b"other bytes", 999).unwrap());
    assert_eq!(engine.get(&a).unwrap().as_deref(), Some(&b"sealed-a"[..]));
    assert_eq!(engine.get(&c).unwrap(), None);
    assert_eq!(
        engine.lookup(&[b, c, a]).unwrap(),
        vec![Some(ChunkSize { plain: 200, stored: 9 }), None, Some(ChunkSize { plain: 100, stored: 8 })]
    );
    assert_eq!(engine.missing(&[c, a, c, b]).unwrap(), vec![c, c]);
    assert_totals(engine, 2, 17, 300);

    // Pages in id order, after an id, bounded by the limit.
    let mut all: Vec<ChunkId> = (10..40).map(id).collect();
    for x in &all {
        engine.put(x, &[7u8; 3], 3).unwrap();
    }
    all.extend([a, b]);
    all.sort();
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = engine.ids(after.as_ref(), 7).unwrap();
        assert!(page.len() <= 7);
        let Some(last) = page.last() else { break };
        after = Some(*last);
        paged.extend(page);
    }
    assert_eq!(paged, all);
    assert_eq!(engine.ids(Some(&all[29]), 10).unwrap(), all[30..].to_vec());

    engine.delete(&all[2..]).unwrap();
    engine.delete(&[c]).unwrap(); // absent: no error
    assert_eq!(engine.ids(None, 100).unwrap(), all[..2].to_vec());
    let left = engine.lookup(&all[..2]).unwrap();
    let stored: u64 = left.iter().flatten().map(|s| u64::from(s.stored)).sum();
    assert_eq!(engine.stats().unwrap().chunks, 2);
    assert_eq!(engine.stats().unwrap().stored_bytes, stored);
    engine.delete(&all[..2]).unwrap();
    assert_totals(engine, 0, 0, 0);

    engine.set_header(b"plait-chunks 1 plain").unwrap();
    assert_eq!(engine.header().unwrap().as_deref(), Some(&b"plait-chunks 1 plain"[..]));
}

/// Through a vault: chunks stored once, read back verified, referenced, collected.
pub fn vault_suite(engine: Arc<dyn ChunkStore>, key: Option<&ChunkKey>) {
    let store = MemoryStore::new();
    let vault = Arc::new(Vault::open(engine.clone(), key, 1 << 16, "here").unwrap());
    let text = b"a chunk of text that compresses well; ".repeat(100);
    let noise: Vec<u8> = (0..5000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let mut upload = vault.begin();
    let (t, t_size) = upload.put(&text).unwrap();
    let (n, _) = upload.put(&noise).unwrap();
    assert_eq!(upload.put(&text).unwrap(), (t, t_size), "a second put of the same bytes");
    assert!(t_size.stored < t_size.plain / 4, "{t_size:?}: not compressed");
    assert!(matches!(upload.put(&vec![0u8; (1 << 16) + 1]), Err(ChunkError::TooLarge { .. })));
    let stranger = ChunkId::of(b"never stored");
    assert_eq!(upload.claim(&[t, stranger]).unwrap(), vec![stranger]);
    let mut batch = Batch::new();
    let owner = Owner { resource: "/f", version: "v1" };
    assert!(
        matches!(upload.reference(&mut batch, owner, &[t, stranger]), Err(ChunkError::NotClaimed(x)) if x == stranger)
    );
    upload.reference(&mut batch, owner, &[t, n, t]).unwrap();
    store.write(&batch).unwrap();
    drop(upload);
    assert_eq!(vault.claimed(), 0);
    assert_eq!(vault.read(&t).unwrap(), Some(text.clone()));
    assert_eq!(vault.read(&n).unwrap(), Some(noise.clone()));
    assert_eq!(vault.read(&stranger).unwrap(), None);

    // An abandoned upload leaves an orphan, which collection removes; referenced chunks stay.
    let mut abandoned = vault.begin();
    let (orphan, _) = abandoned.put(b"orphan bytes").unwrap();
    assert_eq!(vault.collect(&store).unwrap().deleted, 0, "claimed: kept");
    drop(abandoned);
    let done = vault.collect(&store).unwrap();
    assert_eq!((done.examined, done.deleted), (3, 1));
    assert_eq!(vault.missing(&[orphan, t, n]).unwrap(), vec![orphan]);

    let usage = stats::resource(&store, "/f").unwrap();
    assert_eq!(usage.logical_bytes, 2 * text.len() as u64 + noise.len() as u64);
    assert_eq!(usage.chunks, 2);
    let server = stats::server(&store, engine.as_ref()).unwrap();
    assert_eq!(server.stored_bytes, usage.stored_bytes);
    assert!(usage.dedupe_ratio() > 2.0, "{usage:?}");

    // Dropping the version frees both chunks.
    let mut batch = Batch::new();
    refs::remove(&mut batch, owner, &[t, n, t]);
    store.write(&batch).unwrap();
    assert_eq!(vault.collect(&store).unwrap().deleted, 2);
    assert_totals(engine.as_ref(), 0, 0, 0);
}

/// The key checks at open, on an engine that holds a chunk.
pub fn key_suite(engine: Arc<dyn ChunkStore>) {
    let key = ChunkKey::from_bytes(&[7u8; 32]);
    let vault = Arc::new(Vault::open(engine.clone(), Some(&key), 1 << 16, "/srv/chunks").unwrap());
    let (id, _) = vault.begin().put(b"secret").unwrap();
    drop(vault);
    let refusal = |key: Option<&ChunkKey>| match Vault::open(engine.clone(), key, 1 << 16, "/srv/chunks") {
        Err(ChunkError::Key { location, problem }) => {
            assert_eq!(location, "/srv/chunks");
            problem
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("opened"),
    };
    assert_eq!(refusal(None), KeyError::Missing);
    assert!(matches!(refusal(Some(&ChunkKey::from_bytes(&[8u8; 32]))), KeyError::Wrong { .. }));
    let vault = Vault::open(engine.clone(), Some(&key), 1 << 16, "/srv/chunks").unwrap();
    assert_eq!(vault.read(&id).unwrap().as_deref(), Some(&b"secret"[..]));
}

/// Every suite, each on a fresh (empty) engine from `fresh`.
pub fn every_suite(fresh: impl Fn() -> Arc<dyn ChunkStore>) {
    engine_suite(fresh().as_ref());
    vault_suite(fresh(), None);
    vault_suite(fresh(), Some(&ChunkKey::from_bytes(&[1u8; 32])));
    key_suite(fresh());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_engine_conforms() {
        every_suite(|| Arc::new(MemoryChunkStore::new()));
    }

    #[cfg(feature = "rocksdb")]
    #[test]
    fn rocks_engine_conforms_and_persists() {
        let dirs: std::cell::RefCell<Vec<tempfile::TempDir>> = Default::default();
        every_suite(|| {
            let dir = tempfile::tempdir().unwrap();
            let engine = Arc::new(RocksChunkStore::open(dir.path()).unwrap());
            dirs.borrow_mut().push(dir);
            engine
        });
        // A reopened engine has its chunks, header and totals.
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (id(1), id(2));
        {
            let engine = RocksChunkStore::open(dir.path()).unwrap();
            engine.put(&a, &[1u8; 5000], 6000).unwrap();
            engine.put(&b, b"small", 5).unwrap();
            engine.set_header(b"h1").unwrap();
        }
        let engine = RocksChunkStore::open(dir.path()).unwrap();
        assert_eq!(engine.get(&a).unwrap(), Some(vec![1u8; 5000]));
        assert_eq!(engine.header().unwrap().as_deref(), Some(&b"h1"[..]));
        assert_eq!(engine.stats().unwrap(), EngineStats { chunks: 2, stored_bytes: 5005, plain_bytes: Some(6005) });
    }

    /// Bytes changed at rest are an error on read, never other bytes (the engine's bytes are
    /// altered behind the vault's back).
    #[test]
    fn a_corrupted_chunk_is_an_error() {
        for key in [None, Some(ChunkKey::from_bytes(&[3u8; 32]))] {
            let engine = Arc::new(MemoryChunkStore::new());
            let vault = Arc::new(Vault::open(engine.clone(), key.as_ref(), 1 << 16, "here").unwrap());
            let (id, _) = vault.begin().put(&b"precious ".repeat(50)).unwrap();
            let mut bytes = engine.get(&id).unwrap().unwrap();
            let last = bytes.len() - 1;
            bytes[last] ^= 0x40;
            engine.overwrite(&id, bytes);
            assert!(matches!(vault.read(&id), Err(ChunkError::Corrupt { id: bad, .. }) if bad == id));
        }
    }
}
