//! One suite, run against every engine: what any [`Store`] must do.

use super::*;

fn suite(store: &dyn Store) {
    // A new store holds the current format version and nothing else.
    let (version_key, current) = format::current_record();
    assert_eq!(store.get(&version_key).unwrap(), Some(current.clone()));
    assert_eq!(store.get(&version_key).unwrap(), Some(FORMAT_VERSION.to_string().into_bytes()));
    assert_eq!(store.scan_prefix_rev(&[], None, 5).unwrap().len(), 1);
    format::check(store, "here").unwrap();
    assert_eq!(store.get(b"k").unwrap(), None);
    let mut b = Batch::new();
    b.put(b"a/1".to_vec(), b"one".to_vec());
    b.put(b"a/2".to_vec(), b"two".to_vec());
    b.put(b"ab".to_vec(), b"other".to_vec());
    b.put(b"b".to_vec(), b"bee".to_vec());
    store.write(&b).unwrap();
    assert_eq!(store.get(b"a/1").unwrap(), Some(b"one".to_vec()));
    let scan = store.scan_prefix(b"a/").unwrap();
    assert_eq!(scan, vec![(b"a/1".to_vec(), b"one".to_vec()), (b"a/2".to_vec(), b"two".to_vec())]);

    let mut b = Batch::new();
    b.delete_prefix(b"a/".to_vec());
    b.ops.push(Op::Delete(b"b".to_vec()));
    b.put(b"c".to_vec(), b"sea".to_vec());
    store.write(&b).unwrap();
    assert!(store.scan_prefix(b"a/").unwrap().is_empty());
    assert_eq!(store.get(b"ab").unwrap(), Some(b"other".to_vec()));
    assert_eq!(store.get(b"b").unwrap(), None);
    assert_eq!(store.get(b"c").unwrap(), Some(b"sea".to_vec()));

    // A prefix of all 0xFF has no successor key: the delete must still work.
    let mut b = Batch::new();
    b.put(vec![0xFF, 0xFF, 1], b"x".to_vec());
    store.write(&b).unwrap();
    let mut b = Batch::new();
    b.delete_prefix(vec![0xFF, 0xFF]);
    store.write(&b).unwrap();
    assert_eq!(store.get(&[0xFF, 0xFF, 1]).unwrap(), None);

    reverse_pages(store);
    format_versions(store);
}

/// What `format::check` answers for each version record, on a store that holds data.
fn format_versions(store: &dyn Store) {
    let (version_key, current) = format::current_record();
    let set = |value: Option<&[u8]>| {
        let mut b = Batch::new();
        match value {
            Some(v) => b.put(version_key.clone(), v.to_vec()),
            None => b.delete(version_key.clone()),
        }
        store.write(&b).unwrap();
    };
    let refused = |value: Option<&[u8]>| {
        set(value);
        match format::check(store, "/srv/x") {
            Err(StoreError::Format { location, problem }) => {
                assert_eq!(location, "/srv/x");
                // A refusal writes nothing: the record is as it was.
                assert_eq!(store.get(&version_key).unwrap().as_deref(), value);
                problem
            }
            other => panic!("{:?}: {other:?}", value.map(|v| v.escape_ascii().to_string())),
        }
    };
    let next = (FORMAT_VERSION + 1).to_string();
    assert_eq!(refused(Some(next.as_bytes())), FormatError::Unknown { found: FORMAT_VERSION + 1 });
    assert_eq!(refused(Some(b"0")), FormatError::Unknown { found: 0 });
    assert_eq!(refused(Some(b"x9\xff")), FormatError::Unreadable { found: b"x9\xff".to_vec() });
    assert_eq!(refused(Some(b"")), FormatError::Unreadable { found: Vec::new() });
    // Data without a record: a pre-release store, refused rather than adopted.
    assert_eq!(refused(None), FormatError::Unversioned);
    set(Some(&current));
    format::check(store, "/srv/x").unwrap();
    // Versions 1 (before file resources) and 2 (before the change log) are upgraded in place,
    // their resources marked for the change log's backfill.
    for old in [b"1", b"2"] {
        set(Some(old));
        format::check(store, "/srv/x").unwrap();
        assert_eq!(store.get(&version_key).unwrap(), Some(current.clone()));
        assert!(super::ChangeLog::needs_backfill(store).unwrap());
        let mut b = Batch::new();
        b.delete(vec![b'v']);
        store.write(&b).unwrap();
    }
}

/// Newest-first pages: bounded by the prefix on both sides, by `below`, and by `limit`.
fn reverse_pages(store: &dyn Store) {
    let mut b = Batch::new();
    for i in 0..10u8 {
        b.put(vec![b'r', 1, i], vec![i]);
    }
    b.put(vec![b'r', 0, 9], b"before the prefix".to_vec());
    b.put(vec![b'r', 2, 0], b"after the prefix".to_vec());
    b.put(vec![0xFF, 0xFF, 0xFF], b"last key".to_vec());
    store.write(&b).unwrap();
    let keys = |pairs: KvPairs| pairs.into_iter().map(|(k, _)| k[2]).collect::<Vec<u8>>();
    assert_eq!(keys(store.scan_prefix_rev(&[b'r', 1], None, 3).unwrap()), vec![9, 8, 7]);
    assert_eq!(keys(store.scan_prefix_rev(&[b'r', 1], Some(&[b'r', 1, 7]), 3).unwrap()), vec![6, 5, 4]);
    assert_eq!(keys(store.scan_prefix_rev(&[b'r', 1], Some(&[b'r', 1, 2]), 10).unwrap()), vec![1, 0]);
    assert_eq!(keys(store.scan_prefix_rev(&[b'r', 1], Some(&[b'r', 9]), 2).unwrap()), vec![9, 8]);
    assert!(store.scan_prefix_rev(&[b'r', 1], Some(&[b'r', 1, 0]), 5).unwrap().is_empty());
    assert!(store.scan_prefix_rev(&[b'r', 3], None, 5).unwrap().is_empty());
    assert_eq!(store.scan_prefix_rev(&[0xFF, 0xFF], None, 5).unwrap().len(), 1);
    // Forward pages from a key: bounded by the prefix, `from` (inclusive) and `limit`.
    assert_eq!(keys(store.scan_from(&[b'r', 1], &[b'r', 1, 7], 10).unwrap()), vec![7, 8, 9]);
    assert_eq!(keys(store.scan_from(&[b'r', 1], &[b'r', 1, 2], 3).unwrap()), vec![2, 3, 4]);
    assert_eq!(keys(store.scan_from(&[b'r', 1], &[b'r', 0], 2).unwrap()), vec![0, 1]);
    assert!(store.scan_from(&[b'r', 1], &[b'r', 2], 5).unwrap().is_empty());
    assert_eq!(store.scan_from(&[0xFF, 0xFF], &[], 5).unwrap().len(), 1);
}

#[test]
fn memory_store_conforms() {
    suite(&MemoryStore::new());
}

#[test]
fn an_empty_store_without_a_version_gets_the_current_one() {
    let store = MemoryStore::new();
    let mut b = Batch::new();
    b.delete(keys::format_version());
    store.write(&b).unwrap();
    format::check(&store, "here").unwrap();
    assert_eq!(store.get(&keys::format_version()).unwrap(), Some(format::current_record().1));
}

#[cfg(feature = "rocksdb")]
#[test]
fn rocks_store_conforms_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = RocksStore::open(dir.path(), rocks::Durability::Sync).unwrap();
        suite(&store);
    }
    let store = RocksStore::open(dir.path(), rocks::Durability::Sync).unwrap();
    assert_eq!(store.get(b"c").unwrap(), Some(b"sea".to_vec()));
}

/// Reopens `dir` after setting its version record to `value` (None: removing it).
#[cfg(feature = "rocksdb")]
fn reopen_with_version(dir: &std::path::Path, value: Option<&[u8]>) -> Result<RocksStore, StoreError> {
    {
        let store = RocksStore::open_unchecked(dir, rocks::Durability::Sync)?;
        let mut b = Batch::new();
        match value {
            Some(v) => b.put(keys::format_version(), v.to_vec()),
            None => b.delete(keys::format_version()),
        }
        store.write(&b)?;
    }
    RocksStore::open(dir, rocks::Durability::Sync)
}

#[cfg(feature = "rocksdb")]
#[test]
fn rocks_store_refuses_to_open_another_format() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().display().to_string();
    let refusal = |value: Option<&[u8]>| match reopen_with_version(dir.path(), value) {
        Err(StoreError::Format { location: at, problem }) => {
            assert_eq!(at, location);
            problem
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("{:?} opened", value.map(|v| v.escape_ascii().to_string())),
    };
    // A new store gets the current version; an empty one without the record gets it too.
    drop(reopen_with_version(dir.path(), None).unwrap());
    let store = RocksStore::open(dir.path(), rocks::Durability::Sync).unwrap();
    assert_eq!(store.get(&keys::format_version()).unwrap(), Some(format::current_record().1));
    let mut b = Batch::new();
    b.put(keys::token("t1"), b"{}".to_vec());
    store.write(&b).unwrap();
    drop(store);

    let newer = (FORMAT_VERSION + 1).to_string();
    assert_eq!(refusal(Some(newer.as_bytes())), FormatError::Unknown { found: FORMAT_VERSION + 1 });
    let err = RocksStore::open(dir.path(), rocks::Durability::Sync).err().unwrap().to_string();
    let (found, reads) = (format!("version {newer}"), format!("version {FORMAT_VERSION}"));
    assert!(err.contains(&location) && err.contains(&found) && err.contains(&reads), "{err}");
    assert_eq!(refusal(Some(b"0")), FormatError::Unknown { found: 0 });
    assert_eq!(refusal(Some(b"\x01garbage")), FormatError::Unreadable { found: b"\x01garbage".to_vec() });
    assert_eq!(refusal(None), FormatError::Unversioned);
    // Refusals changed nothing: with the record back, the store opens with its data.
    let store = reopen_with_version(dir.path(), Some(FORMAT_VERSION.to_string().as_bytes())).unwrap();
    assert_eq!(store.get(&keys::token("t1")).unwrap(), Some(b"{}".to_vec()));
    drop(store);
    // Format 1 (no file resources yet) is upgraded in place.
    let store = reopen_with_version(dir.path(), Some(b"1")).unwrap();
    assert_eq!(store.get(&keys::format_version()).unwrap(), Some(format::current_record().1));
}

/// A disk that takes a while to sync, so that writers pile up behind each write.
struct SlowStore(MemoryStore);

impl Store for SlowStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.get(key)
    }
    fn scan_prefix(&self, prefix: &[u8]) -> Result<KvPairs, StoreError> {
        self.0.scan_prefix(prefix)
    }
    fn scan_prefix_rev(&self, prefix: &[u8], below: Option<&[u8]>, limit: usize) -> Result<KvPairs, StoreError> {
        self.0.scan_prefix_rev(prefix, below, limit)
    }
    fn scan_from(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<KvPairs, StoreError> {
        self.0.scan_from(prefix, from, limit)
    }
    fn write(&self, batch: &Batch) -> Result<(), StoreError> {
        std::thread::sleep(std::time::Duration::from_millis(5));
        self.0.write(batch)
    }
}

#[test]
fn committer_groups_concurrent_batches() {
    let store: Arc<dyn Store> = Arc::new(SlowStore(MemoryStore::new()));
    let committer = Committer::start(store.clone()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..200u32 {
            let c = committer.clone();
            tasks.push(tokio::spawn(async move {
                let mut b = Batch::new();
                b.put(i.to_be_bytes().to_vec(), vec![1]);
                c.commit(b).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
    });
    for i in 0..200u32 {
        assert_eq!(store.get(&i.to_be_bytes()).unwrap(), Some(vec![1]));
    }
    use std::sync::atomic::Ordering;
    assert_eq!(committer.stats().batches.load(Ordering::Relaxed), 200);
    // 200 writers behind a 5 ms sync: without grouping this would be 200 writes.
    let writes = committer.stats().writes.load(Ordering::Relaxed);
    assert!(writes < 50, "{writes} engine writes for 200 batches: not grouped");
}

use std::sync::Arc;
