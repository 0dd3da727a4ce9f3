//! The server-wide change log of folders, as stored: every committed change to a resource gets a
//! position in one sequence, written **in the same atomic batch as the change itself**, so the
//! log never shows a change that was not acknowledged and never misses one that was, across
//! `kill -9`.
//!
//! Why here, in the store: positions must follow commit order, and the one place that orders
//! commits is the writer of batches ([`ChangeLog::write`], called by the group-commit thread for
//! each merged group). A document core stages a [`LogEntry`] (its path, whether it ends the
//! resource, and the record's bytes, opaque here) with its round's batch; `write` gives each
//! entry the next seq, adds its keys to the batch, writes it, and only then shows the entries to
//! readers (a failed write's positions stay unused: holes that readers skip).
//!
//! What is kept: every change of the last `window` positions (a watcher that resumes within it
//! gets every change), and for older positions only the latest change of each path (catching up
//! needs no more). Each new position `n` retires position `n - window`: dropped if its path has
//! changed since; kept if it is the path's latest, unless it says the path was deleted, in which
//! case both its keys go and the log's `floor` rises to it. A cursor below the floor may have
//! missed a delete: readers must then list afresh (never a silent gap). So the log holds the
//! live paths plus the last `window` changes, with one read or two per write to keep it so.
//!
//! Keys (lowercase tags, apart from the documents' uppercase ones and the chunk references'
//! `k`/`o`):
//! ```text
//! 'q' ‖ u64 BE seq  → u32 BE path length ‖ path ‖ u8 deleted ‖ record
//! 'y' ‖ path        → u64 BE seq ‖ u8 deleted     (the path's latest change; in path order,
//!                                                 so a folder is one range; the record itself
//!                                                 is read from 'q', not written twice per change)
//! 'e'               → u64 BE epoch (random, written when the log starts)
//! 'w'               → u64 BE floor
//! 'v'               → (empty) the store's resources still have to enter the log (a store
//!                     upgraded from format 2 or older; `Hub::backfill_changes`)
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};

use super::{Batch, Store, StoreError};

const CHANGE: u8 = b'q';
const LATEST: u8 = b'y';
const EPOCH: u8 = b'e';
const FLOOR: u8 = b'w';
/// Present while the resources of a store written before the change log are not in it yet.
const BACKFILL: u8 = b'v';

/// Changes of every path kept whole by default (see the module doc).
pub const DEFAULT_WINDOW: u64 = 100_000;
/// The smallest window accepted: larger than any one group of batches, so a position never
/// retires one written in the same group.
pub const MIN_WINDOW: u64 = 10_000;
/// Recent changes kept in memory for watchers that are (nearly) caught up.
const RECENT: usize = 4096;

/// A change staged with a batch, before it has a position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// The resource's path.
    pub path: String,
    /// The change ends the resource (a delete): it leaves folder listings.
    pub deleted: bool,
    /// The change record (JSON, written by the `changes` module; opaque here).
    pub record: Vec<u8>,
}

/// A change with its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logged {
    pub seq: u64,
    pub path: String,
    pub deleted: bool,
    pub record: Vec<u8>,
    /// The change as its readers write it to the wire, one slot per wire format, filled once by
    /// the first reader of a recent change and shared by every reader after it (a change goes
    /// to every watcher of `/`: encoding it once per watcher would cost more than the log).
    pub encoded: [OnceLock<Vec<u8>>; 2],
}

impl Logged {
    pub fn new(seq: u64, path: String, deleted: bool, record: Vec<u8>) -> Logged {
        Logged { seq, path, deleted, record, encoded: Default::default() }
    }
}

/// The key of the change at `seq`.
fn change_key(seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(9);
    key.push(CHANGE);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The key of a path's latest change.
fn latest_key(path: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + path.len());
    key.push(LATEST);
    key.extend_from_slice(path.as_bytes());
    key
}

fn encode_change(e: &LogEntry) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + e.path.len() + e.record.len());
    v.extend_from_slice(&(e.path.len() as u32).to_be_bytes());
    v.extend_from_slice(e.path.as_bytes());
    v.push(u8::from(e.deleted));
    v.extend_from_slice(&e.record);
    v
}

fn decode_change(seq: u64, v: &[u8]) -> Option<Logged> {
    let (len, rest) = v.split_at_checked(4)?;
    let len = u32::from_be_bytes(len.try_into().ok()?) as usize;
    let (path, rest) = rest.split_at_checked(len)?;
    let (&deleted, record) = rest.split_first()?;
    Some(Logged::new(seq, String::from_utf8(path.to_vec()).ok()?, deleted == 1, record.to_vec()))
}

fn encode_latest(seq: u64, e: &LogEntry) -> Vec<u8> {
    let mut v = Vec::with_capacity(9);
    v.extend_from_slice(&seq.to_be_bytes());
    v.push(u8::from(e.deleted));
    v
}

fn latest_seq(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.get(..8)?.try_into().ok()?))
}

/// A path's latest-change index entry: its path, seq and whether it is a delete.
fn decode_latest(key: &[u8], v: &[u8]) -> Option<(String, u64, bool)> {
    let path = std::str::from_utf8(key.strip_prefix(&[LATEST])?).ok()?;
    Some((path.to_string(), latest_seq(v)?, *v.get(8)? == 1))
}

fn read_u64(store: &dyn Store, key: &[u8]) -> Result<Option<u64>, StoreError> {
    Ok(store.get(key)?.and_then(|v| Some(u64::from_be_bytes(v.as_slice().try_into().ok()?))))
}

/// A page of changes read from the log: those that matched, and the last position looked at
/// (the next page starts after it, even when nothing matched).
#[derive(Debug, Default)]
pub struct Page<T> {
    pub changes: Vec<T>,
    pub through: u64,
}

/// The change log of one store: its epoch, the writer's position, the recent changes in memory,
/// and a watch of the last durable position.
pub struct ChangeLog {
    epoch: u64,
    window: u64,
    /// The last position handed out and durable; held across a write so that positions follow
    /// the order of writes.
    writer: Mutex<u64>,
    /// Read by every watcher after each write (they share the lock), written once per write.
    recent: RwLock<VecDeque<Arc<Logged>>>,
    floor: AtomicU64,
    /// The last durable position (moved under `publish`).
    end: AtomicU64,
    /// Held while a write's changes are shown to readers (the recent changes, the listener,
    /// `end`), so that whoever reads `end` under it (`at_end`) sees every change up to it
    /// already handed to the listener, and every later one still to come.
    publish: Mutex<()>,
    /// Told of every durable change, in order (the hub routes them to the watches they concern).
    listener: OnceLock<Listener>,
}

/// What [`ChangeLog::set_listener`] installs.
pub type Listener = Box<dyn Fn(&[Arc<Logged>]) + Send + Sync>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ChangeLog {
    /// The log of `store`, keeping every change of the last `window` positions: reads its
    /// epoch (writing a fresh one into a store that has none), its last position and floor.
    pub fn open(store: &dyn Store, window: u64) -> Result<ChangeLog, StoreError> {
        let epoch = match read_u64(store, &[EPOCH])? {
            Some(epoch) => epoch,
            None => {
                let epoch = rand::random::<u64>();
                let mut batch = Batch::new();
                batch.put(vec![EPOCH], epoch.to_be_bytes().to_vec());
                store.write(&batch)?;
                epoch
            }
        };
        let last = store
            .scan_prefix_rev(&[CHANGE], None, 1)?
            .first()
            .and_then(|(k, _)| Some(u64::from_be_bytes(k.get(1..)?.try_into().ok()?)))
            .unwrap_or(0);
        let floor = read_u64(store, &[FLOOR])?.unwrap_or(0);
        let end = AtomicU64::new(last);
        Ok(ChangeLog {
            epoch,
            window: window.max(MIN_WINDOW),
            writer: Mutex::new(last),
            recent: RwLock::new(VecDeque::new()),
            floor: AtomicU64::new(floor),
            end,
            publish: Mutex::new(()),
            listener: OnceLock::new(),
        })
    }

    /// Writes `batch` to `store`, giving its log entries their positions first; the entries
    /// become visible to readers only once the write succeeded.
    pub fn write(&self, store: &dyn Store, batch: &mut Batch) -> Result<(), StoreError> {
        if batch.log.is_empty() {
            return store.write(batch);
        }
        let mut last = lock(&self.writer);
        let first = *last + 1;
        let entries = std::mem::take(&mut batch.log);
        let mut latest: HashMap<String, u64> = HashMap::new();
        let mut floor = None;
        let mut logged = Vec::with_capacity(entries.len());
        for (seq, e) in (first..).zip(entries) {
            batch.put(change_key(seq), encode_change(&e));
            batch.put(latest_key(&e.path), encode_latest(seq, &e));
            latest.insert(e.path.clone(), seq);
            if let Some(purged) = self.retire(store, seq, first, &latest, batch)? {
                floor = Some(purged);
            }
            logged.push(Arc::new(Logged::new(seq, e.path, e.deleted, e.record)));
        }
        if let Some(floor) = floor {
            batch.put(vec![FLOOR], floor.to_be_bytes().to_vec());
        }
        let result = store.write(batch);
        // A failed write's positions are not handed out again: a failed sync may have written
        // the batch after all (RocksDB then reopens and replays it), and its entries must not be
        // overwritten by other changes at the same positions. Readers then read the store,
        // which has whatever was written, and skip the holes.
        *last = first + logged.len() as u64 - 1;
        if let Err(e) = result {
            self.recent.write().unwrap_or_else(PoisonError::into_inner).clear();
            return Err(e);
        }
        if let Some(floor) = floor {
            self.floor.fetch_max(floor, Ordering::Release);
        }
        let _published = lock(&self.publish);
        let mut recent = self.recent.write().unwrap_or_else(PoisonError::into_inner);
        for l in &logged {
            if recent.len() == RECENT {
                recent.pop_front();
            }
            recent.push_back(l.clone());
        }
        drop(recent);
        if let Some(listener) = self.listener.get() {
            listener(&logged);
        }
        self.end.store(*last, Ordering::Release);
        Ok(())
    }

    /// Installs the one listener told of every durable change (later calls are ignored).
    pub fn set_listener(&self, listener: Listener) {
        let _ = self.listener.set(listener);
    }

    /// Runs `f` with the last durable position while no write is being shown to readers: every
    /// change up to it has reached the listener, every later one will.
    pub fn at_end<T>(&self, f: impl FnOnce(u64) -> T) -> T {
        let _published = lock(&self.publish);
        f(self.end())
    }

    /// The change at `seq` if it is among the recent changes in memory.
    pub fn recent_at(&self, seq: u64) -> Option<Arc<Logged>> {
        let recent = self.recent.read().unwrap_or_else(PoisonError::into_inner);
        recent.binary_search_by_key(&seq, |l| l.seq).ok().map(|i| recent[i].clone())
    }

    /// The change at `seq` as stored (None: a hole, or retired).
    pub fn stored_at(store: &dyn Store, seq: u64) -> Result<Option<Logged>, StoreError> {
        Ok(store.get(&change_key(seq))?.and_then(|v| decode_change(seq, &v)))
    }

    /// Retires position `seq - window` (see the module doc), staging what it drops into
    /// `batch`; returns it when it was a delete that leaves the log (the new floor).
    fn retire(
        &self,
        store: &dyn Store,
        seq: u64,
        first: u64,
        latest: &HashMap<String, u64>,
        batch: &mut Batch,
    ) -> Result<Option<u64>, StoreError> {
        let Some(old) = seq.checked_sub(self.window).filter(|o| *o >= 1 && *o < first) else { return Ok(None) };
        let Some(value) = store.get(&change_key(old))? else { return Ok(None) };
        let Some(entry) = decode_change(old, &value) else {
            batch.delete(change_key(old));
            return Ok(None);
        };
        let newest = match latest.get(&entry.path) {
            Some(seq) => Some(*seq),
            None => store.get(&latest_key(&entry.path))?.as_deref().and_then(latest_seq),
        };
        if newest != Some(old) {
            // Superseded: the path's later change answers for it.
            batch.delete(change_key(old));
            return Ok(None);
        }
        if !entry.deleted {
            // The path's latest change stays: catching up needs it.
            return Ok(None);
        }
        batch.delete(change_key(old));
        batch.delete(latest_key(&entry.path));
        Ok(Some(old))
    }

    /// The log's epoch (cursors name it).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The last durable position (0: nothing logged yet).
    pub fn end(&self) -> u64 {
        self.end.load(Ordering::Acquire)
    }

    /// Cursors below this may have missed a delete that has left the log.
    pub fn floor(&self) -> u64 {
        self.floor.load(Ordering::Acquire)
    }

    /// Positions whose every change is kept: a cursor at or after `end - window` misses
    /// nothing, an older one gets the latest change of each path.
    pub fn window(&self) -> u64 {
        self.window
    }

    /// Up to `limit` changes after `after` that `keep` accepts, from memory; None when the
    /// recent changes do not reach back that far (read [`stored_after`](Self::stored_after)).
    pub fn recent_after(&self, after: u64, limit: usize, keep: impl Fn(&Logged) -> bool) -> Option<Page<Arc<Logged>>> {
        let recent = self.recent.read().unwrap_or_else(PoisonError::into_inner);
        let mut page = Page { changes: Vec::new(), through: after };
        let Some(front) = recent.front() else {
            return (after >= self.end()).then_some(page);
        };
        if front.seq > after + 1 {
            return None;
        }
        let skip = recent.partition_point(|l| l.seq <= after);
        for l in recent.iter().skip(skip) {
            if page.changes.len() >= limit {
                break;
            }
            page.through = l.seq;
            if keep(l) {
                page.changes.push(l.clone());
            }
        }
        Some(page)
    }

    /// Up to `limit` changes after `after` that `keep` accepts, read from `store`, looking at
    /// no more than `scan` positions (so a filter that matches little still answers soon).
    pub fn stored_after(
        store: &dyn Store,
        after: u64,
        limit: usize,
        scan: usize,
        keep: impl Fn(&Logged) -> bool,
    ) -> Result<Page<Logged>, StoreError> {
        let mut page = Page { changes: Vec::new(), through: after };
        let from = change_key(after.saturating_add(1));
        for (key, value) in store.scan_from(&[CHANGE], &from, scan)? {
            let Some(seq) = key.get(1..).and_then(|s| Some(u64::from_be_bytes(s.try_into().ok()?))) else { continue };
            if page.changes.len() >= limit {
                break;
            }
            page.through = seq;
            if let Some(l) = decode_change(seq, &value).filter(&keep) {
                page.changes.push(l);
            }
        }
        Ok(page)
    }

    /// Up to `limit` paths' latest changes, in path order, from the first path at or after
    /// `from` that starts with `prefix` (deleted paths included, without their record: the
    /// caller skips them).
    pub fn latest_from(store: &dyn Store, prefix: &str, from: &str, limit: usize) -> Result<Vec<Logged>, StoreError> {
        let pairs = store.scan_from(&latest_key(prefix), &latest_key(from), limit)?;
        let mut out = Vec::with_capacity(pairs.len());
        for (path, seq, deleted) in pairs.iter().filter_map(|(k, v)| decode_latest(k, v)) {
            if deleted {
                out.push(Logged::new(seq, path, deleted, Vec::new()));
            } else if let Some(l) = Self::record_of(store, &path, seq)? {
                out.push(l);
            }
        }
        Ok(out)
    }

    /// The change at `seq`, the latest of `path` when its index was read. The path may have
    /// changed since and that position retired: then its newer latest change.
    fn record_of(store: &dyn Store, path: &str, seq: u64) -> Result<Option<Logged>, StoreError> {
        if let Some(v) = store.get(&change_key(seq))? {
            return Ok(decode_change(seq, &v));
        }
        let key = latest_key(path);
        match store.get(&key)?.as_deref().and_then(|v| decode_latest(&key, v)) {
            Some((_, newer, false)) if newer != seq => {
                Ok(store.get(&change_key(newer))?.and_then(|v| decode_change(newer, &v)))
            }
            _ => Ok(None),
        }
    }

    /// The op that marks a store whose existing resources must enter the log (format upgrade).
    pub fn backfill_marker(batch: &mut Batch) {
        batch.put(vec![BACKFILL], Vec::new());
    }

    /// Whether the store's existing resources still have to enter the log.
    pub fn needs_backfill(store: &dyn Store) -> Result<bool, StoreError> {
        Ok(store.get(&[BACKFILL])?.is_some())
    }

    /// Writes `batch` (the backfill's last entries) and clears the marker with it.
    pub fn finish_backfill(&self, store: &dyn Store, mut batch: Batch) -> Result<(), StoreError> {
        batch.delete(vec![BACKFILL]);
        self.write(store, &mut batch)
    }

    /// The position of one path's latest change, and whether it is a delete.
    pub fn latest_of(store: &dyn Store, path: &str) -> Result<Option<(u64, bool)>, StoreError> {
        let key = latest_key(path);
        Ok(store.get(&key)?.and_then(|v| decode_latest(&key, &v)).map(|(_, seq, deleted)| (seq, deleted)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::MemoryStore;

    fn entry(path: &str, v: &str, deleted: bool) -> LogEntry {
        LogEntry { path: path.into(), deleted, record: v.as_bytes().to_vec() }
    }

    fn log_one(log: &ChangeLog, store: &MemoryStore, e: LogEntry) {
        let mut batch = Batch::new();
        batch.log(e);
        log.write(store, &mut batch).unwrap();
    }

    fn stored(store: &MemoryStore) -> Vec<(u64, String, String)> {
        let page = ChangeLog::stored_after(store, 0, usize::MAX, usize::MAX, |_| true).unwrap();
        page.changes.into_iter().map(|l| (l.seq, l.path, String::from_utf8(l.record).unwrap())).collect()
    }

    #[test]
    fn positions_follow_writes_and_survive_a_reopen() {
        let store = MemoryStore::new();
        let log = ChangeLog::open(&store, MIN_WINDOW).unwrap();
        let mut batch = Batch::new();
        batch.put(b"doc".to_vec(), b"x".to_vec());
        batch.log(entry("/a", "1", false));
        batch.log(entry("/b", "1", false));
        log.write(&store, &mut batch).unwrap();
        log_one(&log, &store, entry("/a", "2", false));
        assert_eq!(log.end(), 3);
        assert_eq!(store.get(b"doc").unwrap(), Some(b"x".to_vec()), "the batch's own ops are written too");
        let all = stored(&store);
        assert_eq!(all.iter().map(|c| c.0).collect::<Vec<_>>(), vec![1, 2, 3], "every change in the window");
        let again = ChangeLog::open(&store, MIN_WINDOW).unwrap();
        assert_eq!((again.end(), again.epoch()), (3, log.epoch()));
        let latest = ChangeLog::latest_from(&store, "/", "/", 10).unwrap();
        let paths: Vec<(String, u64)> = latest.into_iter().map(|l| (l.path, l.seq)).collect();
        assert_eq!(paths, vec![("/a".into(), 3), ("/b".into(), 2)]);
        let recent = log.recent_after(1, 10, |l| l.path == "/a").unwrap();
        assert_eq!((recent.changes.len(), recent.through), (1, 3));
        assert!(again.recent_after(0, 10, |_| true).is_none(), "a fresh process reads older changes from the store");
    }

    #[test]
    fn outside_the_window_only_each_paths_latest_change_stays_and_deletes_raise_the_floor() {
        let store = MemoryStore::new();
        let log = ChangeLog::open(&store, MIN_WINDOW).unwrap();
        let w = log.window();
        log_one(&log, &store, entry("/kept", "1", false));
        log_one(&log, &store, entry("/over", "1", false));
        log_one(&log, &store, entry("/gone", "1", true));
        log_one(&log, &store, entry("/over", "2", false));
        for i in 5..=(w + 4) {
            log_one(&log, &store, entry("/busy", &i.to_string(), false));
        }
        let all = stored(&store);
        let old: Vec<_> = all.iter().filter(|c| c.0 <= 4).map(|c| (c.0, c.1.as_str())).collect();
        assert_eq!(old, vec![(1, "/kept"), (4, "/over")], "superseded and deleted entries left, latest kept");
        assert_eq!(all.len() as u64, 2 + w, "the window is kept whole");
        assert_eq!(log.floor(), 3, "the delete that left raised the floor");
        assert_eq!(ChangeLog::open(&store, MIN_WINDOW).unwrap().floor(), 3);
        assert!(ChangeLog::latest_of(&store, "/gone").unwrap().is_none());
        assert_eq!(ChangeLog::latest_of(&store, "/over").unwrap(), Some((4, false)));
    }

    #[test]
    fn a_failed_write_shows_nothing_and_its_positions_stay_unused() {
        use crate::store::fault::FaultStore;
        let store = FaultStore::new();
        let log = ChangeLog::open(&store, MIN_WINDOW).unwrap();
        store.fail_write_in(1);
        let mut batch = Batch::new();
        batch.log(entry("/a", "1", false));
        assert!(log.write(&store, &mut batch).is_err());
        assert_eq!(log.end(), 0);
        assert!(log.recent_after(0, 10, |_| true).unwrap().changes.is_empty());
        let mut batch = Batch::new();
        batch.log(entry("/b", "1", false));
        log.write(&store, &mut batch).unwrap();
        assert_eq!(log.end(), 2, "position 1 is a hole");
        // Memory cannot tell the hole from a forgotten change: the store answers.
        assert!(log.recent_after(0, 10, |_| true).is_none());
        let page = ChangeLog::stored_after(&store, 0, 10, 10, |_| true).unwrap();
        assert_eq!(page.changes.iter().map(|l| l.seq).collect::<Vec<_>>(), vec![2]);
        assert_eq!(log.recent_after(1, 10, |_| true).unwrap().changes.len(), 1);
    }

    #[test]
    fn stored_pages_stop_after_scanning_their_share() {
        let store = MemoryStore::new();
        let log = ChangeLog::open(&store, MIN_WINDOW).unwrap();
        for i in 0..10 {
            log_one(&log, &store, entry(if i == 7 { "/x/a" } else { "/y" }, "v", false));
        }
        let page = ChangeLog::stored_after(&store, 0, 100, 5, |l| l.path.starts_with("/x/")).unwrap();
        assert_eq!((page.changes.len(), page.through), (0, 5));
        let page = ChangeLog::stored_after(&store, page.through, 100, 5, |l| l.path.starts_with("/x/")).unwrap();
        assert_eq!((page.changes.len(), page.through), (1, 10));
    }

    #[test]
    fn keys_stay_apart_from_other_records() {
        assert!(change_key(2) < change_key(10) && change_key(255) < change_key(256));
        for tag in [CHANGE, LATEST, EPOCH, FLOOR, BACKFILL] {
            assert!(tag.is_ascii_lowercase() && tag != b'k' && tag != b'o');
        }
        assert_eq!(decode_change(1, &encode_change(&entry("/a b", "r", true))).unwrap().path, "/a b");
    }
}
