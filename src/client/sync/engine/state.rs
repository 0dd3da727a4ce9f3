//! The engine's local database: what it last agreed with the server about, per path, plus the
//! folder watch's cursor. One RocksDB per folder (`store::open_synced`: every batch synced), so
//! each record below survives `kill -9` the moment `put` returns.
//!
//! Keys:
//! - `p` ‖ path → [`PathRecord`] (JSON): the last synced state of one path.
//! - `t` ‖ path → the last synced text of a text path (kept apart so records stay small).
//! - `k` ‖ conflicted copy's path → the path whose conflict it shows.
//! - `c` → the folder watch's cursor.
//!
//! The crash-safety argument (docs/SYNC.md, "Crash safety") rests on three rules: a record is
//! only ever written after the server acknowledged what it says, or before acting, as an intent
//! the next reconcile checks (`intent`, `landing`, queued text writes with fixed version ids);
//! every record change is one batch; and the local file itself is the queue of binary changes
//! (a restart compares it with the record, so nothing local is lost).

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::client::ClientError;
use crate::store::{Batch, Store};

/// What the filesystem says about a file, to tell "unchanged" without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    pub size: u64,
    /// Modification time, nanoseconds since 1970.
    pub mtime_ns: i128,
    pub inode: u64,
}

/// A text write recorded before it is sent: a fixed `Version`, so re-sending it after a crash
/// or a lost answer is an idempotent `200` on the server (spec/WIRE.md §3.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedWrite {
    pub version: String,
    pub parents: Vec<String>,
    /// `(start, end, content)` in code points of the parent text, sorted, not overlapping.
    pub patches: Vec<(u64, u64, String)>,
}

/// A conflict shown as a conflicted copy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictRecord {
    /// The copy's path relative to the folder.
    pub copy: String,
    /// The server's heads when the copy was made.
    pub versions: Vec<String>,
    /// SHA-256 (hex) of the copy as written, to tell an untouched copy from an edited one.
    pub copy_sha256: String,
}

/// The kind of a synced path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathKind {
    Text,
    File,
}

/// The last state of one path that the folder and the server agreed on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathRecord {
    pub kind: PathKind,
    /// The local file as it was when it matched `version` (None: not written locally yet).
    pub stat: Option<Stat>,
    /// SHA-256 (hex) of that content.
    pub sha256: String,
    /// The server version(s) it matched: a text frontier, or a file's heads.
    pub version: Vec<String>,
    /// Text: this device's agent for the path (a new one for each life of the document), and
    /// the next event sequence number it will use.
    #[serde(default)]
    pub agent: String,
    #[serde(default)]
    pub next_seq: u64,
    /// Text writes recorded but not yet acknowledged, in order.
    #[serde(default)]
    pub queue: Vec<QueuedWrite>,
    /// A file commit about to be sent: its fixed version id and content hash. If the server
    /// has that version, the commit happened (even if the answer was lost).
    #[serde(default)]
    pub intent: Option<(String, String)>,
    /// Content about to be renamed into place: its server version and hash. If the file holds
    /// that hash after a crash, the rename happened.
    #[serde(default)]
    pub landing: Option<(Vec<String>, String)>,
    #[serde(default)]
    pub conflict: Option<ConflictRecord>,
}

/// The per-folder database.
#[derive(Clone)]
pub struct State {
    store: Arc<dyn Store>,
}

fn err(e: impl std::fmt::Display) -> ClientError {
    ClientError::Local(format!("local sync database: {e}"))
}

fn key(prefix: u8, path: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + path.len());
    k.push(prefix);
    k.extend_from_slice(path.as_bytes());
    k
}

impl State {
    /// Opens (creating) the database in `dir`.
    pub fn open(dir: &Path) -> Result<State, ClientError> {
        std::fs::create_dir_all(dir).map_err(err)?;
        Ok(State { store: crate::store::open_synced(dir).map_err(err)? })
    }

    /// A database on any store (the memory store in unit tests).
    pub fn on(store: Arc<dyn Store>) -> State {
        State { store }
    }

    pub fn record(&self, path: &str) -> Result<Option<PathRecord>, ClientError> {
        match self.store.get(&key(b'p', path)).map_err(err)? {
            Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(err)?)),
            None => Ok(None),
        }
    }

    pub fn text(&self, path: &str) -> Result<String, ClientError> {
        let v = self.store.get(&key(b't', path)).map_err(err)?.unwrap_or_default();
        String::from_utf8(v).map_err(err)
    }

    /// Writes a record (and, for text, the synced text) in one synced batch.
    pub fn put(&self, path: &str, rec: &PathRecord, text: Option<&str>) -> Result<(), ClientError> {
        let mut b = Batch::new();
        b.put(key(b'p', path), serde_json::to_vec(rec).map_err(err)?);
        if let Some(t) = text {
            b.put(key(b't', path), t.as_bytes().to_vec());
        }
        self.store.write(&b).map_err(err)
    }

    /// Forgets a path (and any conflicted copy pointing at it).
    pub fn remove(&self, path: &str, copy: Option<&str>) -> Result<(), ClientError> {
        let mut b = Batch::new();
        b.delete(key(b'p', path));
        b.delete(key(b't', path));
        if let Some(c) = copy {
            b.delete(key(b'k', c));
        }
        self.store.write(&b).map_err(err)
    }

    /// Every recorded path, in order.
    pub fn paths(&self) -> Result<Vec<String>, ClientError> {
        let pairs = self.store.scan_prefix(b"p").map_err(err)?;
        Ok(pairs.into_iter().map(|(k, _)| String::from_utf8_lossy(&k[1..]).into_owned()).collect())
    }

    /// Every recorded path under the folder `dir` (`a/b` → `a/b/…`).
    pub fn paths_under(&self, dir: &str) -> Result<Vec<String>, ClientError> {
        let prefix = key(b'p', &format!("{dir}/"));
        let pairs = self.store.scan_prefix(&prefix).map_err(err)?;
        Ok(pairs.into_iter().map(|(k, _)| String::from_utf8_lossy(&k[1..]).into_owned()).collect())
    }

    /// Every record with a conflict.
    pub fn conflicts(&self) -> Result<Vec<(String, ConflictRecord)>, ClientError> {
        let pairs = self.store.scan_prefix(b"p").map_err(err)?;
        let mut out = Vec::new();
        for (k, v) in pairs {
            let rec: PathRecord = serde_json::from_slice(&v).map_err(err)?;
            if let Some(c) = rec.conflict {
                out.push((String::from_utf8_lossy(&k[1..]).into_owned(), c));
            }
        }
        Ok(out)
    }

    /// Notes that `copy` is the conflicted copy of `path` (before the copy is written).
    pub fn put_copy(&self, copy: &str, path: &str) -> Result<(), ClientError> {
        let mut b = Batch::new();
        b.put(key(b'k', copy), path.as_bytes().to_vec());
        self.store.write(&b).map_err(err)
    }

    pub fn remove_copy(&self, copy: &str) -> Result<(), ClientError> {
        let mut b = Batch::new();
        b.delete(key(b'k', copy));
        self.store.write(&b).map_err(err)
    }

    /// The path whose conflicted copy `copy` is, if it is one.
    pub fn copy_of(&self, copy: &str) -> Result<Option<String>, ClientError> {
        Ok(self.store.get(&key(b'k', copy)).map_err(err)?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    pub fn cursor(&self) -> Result<Option<String>, ClientError> {
        Ok(self.store.get(b"c").map_err(err)?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    pub fn set_cursor(&self, cursor: &str) -> Result<(), ClientError> {
        let mut b = Batch::new();
        b.put(b"c".to_vec(), cursor.as_bytes().to_vec());
        self.store.write(&b).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> PathRecord {
        PathRecord {
            kind: PathKind::Text,
            stat: Some(Stat { size: 1, mtime_ns: 2, inode: 3 }),
            sha256: "ab".into(),
            version: vec!["a-1".into()],
            agent: "a".into(),
            next_seq: 2,
            queue: vec![QueuedWrite { version: "a-1".into(), parents: vec![], patches: vec![(0, 0, "hi".into())] }],
            intent: None,
            landing: None,
            conflict: None,
        }
    }

    #[test]
    fn records_texts_copies_and_the_cursor_round_trip() {
        let s = State::on(Arc::new(crate::store::MemoryStore::new()));
        s.put("a/b.txt", &rec(), Some("hi")).unwrap();
        assert_eq!(s.record("a/b.txt").unwrap(), Some(rec()));
        assert_eq!(s.text("a/b.txt").unwrap(), "hi");
        assert_eq!(s.paths().unwrap(), vec!["a/b.txt".to_string()]);
        assert_eq!(s.paths_under("a").unwrap(), vec!["a/b.txt".to_string()]);
        assert!(s.paths_under("a/b.txt").unwrap().is_empty());
        s.put_copy("a/b (conflicted copy).txt", "a/b.txt").unwrap();
        assert_eq!(s.copy_of("a/b (conflicted copy).txt").unwrap().as_deref(), Some("a/b.txt"));
        s.remove("a/b.txt", Some("a/b (conflicted copy).txt")).unwrap();
        assert_eq!(s.record("a/b.txt").unwrap(), None);
        assert_eq!(s.copy_of("a/b (conflicted copy).txt").unwrap(), None);
        assert_eq!(s.cursor().unwrap(), None);
        s.set_cursor("00-1").unwrap();
        assert_eq!(s.cursor().unwrap().as_deref(), Some("00-1"));
    }
}
