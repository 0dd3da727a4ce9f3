//! [`Sequencer`]: hands out the change log's positions in commit order and stages each change
//! into the batch that makes it durable, with the removal of the path's previous entry.

use crate::store::Batch;

use super::record::Change;

const CHANGE: u8 = b'q';
const LATEST: u8 = b'y';

/// The key of the change at `seq`.
pub fn change_key(seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(9);
    key.push(CHANGE);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The prefix of every change (one scan from a cursor reads what came after it).
pub fn change_prefix() -> Vec<u8> {
    vec![CHANGE]
}

/// The seq of a key made by [`change_key`].
pub fn change_seq(key: &[u8]) -> Option<u64> {
    let rest = key.strip_prefix(&[CHANGE])?;
    Some(u64::from_be_bytes(rest.try_into().ok()?))
}

/// The key of a path's latest-change index entry.
pub fn latest_key(path: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(5 + path.len());
    key.push(LATEST);
    key.extend_from_slice(&(path.len() as u32).to_be_bytes());
    key.extend_from_slice(path.as_bytes());
    key
}

/// Whether `path` is in the folder `folder` (which ends with `/`): directly (`recursive`
/// false: `/a/` holds `/a/b` and the folder `/a/b/`'s entries are not listed one by one) or
/// anywhere below it.
pub fn under(path: &str, folder: &str, recursive: bool) -> bool {
    match path.strip_prefix(folder) {
        Some(rest) if !rest.is_empty() => recursive || !rest.contains('/'),
        _ => false,
    }
}

/// The next position of the log, owned by whoever orders commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sequencer {
    /// The last seq handed out (0: none yet).
    last: u64,
}

impl Sequencer {
    /// A sequencer that continues after `last` (the highest stored seq, read at start).
    pub fn resume(last: Option<u64>) -> Sequencer {
        Sequencer { last: last.unwrap_or(0) }
    }

    /// The last seq handed out.
    pub fn last(&self) -> u64 {
        self.last
    }

    /// Stages `change` into `batch` at the next position: the log entry, the path's index entry
    /// pointing at it, and the removal of the path's `previous` entry (its index entry's value,
    /// read by the caller), so the log keeps only the latest change per path. Returns the seq.
    pub fn stage(&mut self, batch: &mut Batch, change: &Change, previous: Option<u64>) -> u64 {
        self.last += 1;
        if let Some(prev) = previous.filter(|p| *p < self.last) {
            batch.delete(change_key(prev));
        }
        batch.put(change_key(self.last), change.encode());
        batch.put(latest_key(&change.path), self.last.to_be_bytes().to_vec());
        self.last
    }

    /// The write of the batches staged since `mark` failed: their positions are handed out
    /// again (the log never shows them).
    pub fn roll_back(&mut self, mark: u64) {
        self.last = mark.min(self.last);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::changes::{ChangeKind, ResourceKind};
    use crate::store::{MemoryStore, Store};

    fn change(path: &str, v: &str) -> Change {
        Change {
            path: path.into(),
            kind: ResourceKind::File,
            what: ChangeKind::Version,
            version: vec![v.into()],
            size: 3,
            time_ms: 1,
            author: None,
        }
    }

    /// Stages and commits one change the way the committer would: the previous seq read from
    /// the store's index.
    fn commit(store: &MemoryStore, seq: &mut Sequencer, c: &Change) -> u64 {
        let previous = store.get(&latest_key(&c.path)).unwrap().map(|v| u64::from_be_bytes(v.try_into().unwrap()));
        let mut batch = Batch::new();
        let n = seq.stage(&mut batch, c, previous);
        store.write(&batch).unwrap();
        n
    }

    fn log(store: &MemoryStore) -> Vec<(u64, Change)> {
        let pairs = store.scan_prefix(&change_prefix()).unwrap();
        pairs.iter().map(|(k, v)| (change_seq(k).unwrap(), Change::decode(v).unwrap())).collect()
    }

    #[test]
    fn the_log_keeps_the_latest_change_per_path_in_commit_order() {
        let store = MemoryStore::new();
        let mut seq = Sequencer::resume(None);
        assert_eq!(commit(&store, &mut seq, &change("/a", "1")), 1);
        assert_eq!(commit(&store, &mut seq, &change("/b", "1")), 2);
        assert_eq!(commit(&store, &mut seq, &change("/a", "2")), 3);
        let entries: Vec<(u64, String, String)> =
            log(&store).into_iter().map(|(n, c)| (n, c.path, c.version[0].clone())).collect();
        assert_eq!(entries, vec![(2, "/b".into(), "1".into()), (3, "/a".into(), "2".into())]);
        // A restart continues after the highest stored seq.
        let last = store.scan_prefix_rev(&change_prefix(), None, 1).unwrap().first().and_then(|(k, _)| change_seq(k));
        let mut again = Sequencer::resume(last);
        assert_eq!(commit(&store, &mut again, &change("/c", "1")), 4);
    }

    #[test]
    fn a_failed_write_hands_its_positions_out_again() {
        let mut seq = Sequencer::resume(Some(10));
        let mark = seq.last();
        let mut batch = Batch::new();
        seq.stage(&mut batch, &change("/a", "1"), None);
        seq.stage(&mut batch, &change("/b", "1"), None);
        seq.roll_back(mark);
        assert_eq!(seq.stage(&mut Batch::new(), &change("/a", "1"), None), 11);
    }

    #[test]
    fn keys_sort_by_seq_and_stay_apart_from_other_records() {
        assert!(change_key(2) < change_key(10) && change_key(255) < change_key(256));
        assert_eq!(change_seq(&change_key(7)), Some(7));
        assert_eq!(change_seq(&latest_key("/a")), None);
        // Documents' tags are uppercase, chunk references use `k` and `o`.
        for tag in [CHANGE, LATEST] {
            assert!(tag.is_ascii_lowercase() && tag != b'k' && tag != b'o');
        }
    }

    #[test]
    fn folders_hold_their_children_or_their_subtree() {
        assert!(under("/a/b", "/a/", false) && under("/a/b/c", "/a/", true));
        assert!(!under("/a/b/c", "/a/", false), "grandchildren are under the sub-folder");
        assert!(!under("/a/", "/a/", true) && !under("/ab", "/a/", true) && !under("/a", "/a/", true));
        assert!(under("/x", "/", false) && !under("/x/y", "/", false));
    }

    #[test]
    fn records_round_trip() {
        let c = change("/a b/ü", "1.5");
        assert_eq!(Change::decode(&c.encode()), Some(c.clone()));
        assert!(Change::decode(b"{}").is_none());
        assert!(!c.deleted());
    }
}
