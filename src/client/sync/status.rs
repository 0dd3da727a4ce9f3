//! The status board: what each folder's engine is doing, written by the engine and read by the
//! control API (`plait sync status`), so neither knows the other.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use serde::Serialize;

/// How many recent activity entries a folder keeps.
pub const ACTIVITY_KEPT: usize = 200;

/// A folder's overall state.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum FolderState {
    /// Starting: opening the database, the first scan, the first catch-up.
    #[default]
    Starting,
    /// Nothing left to do: local and server agree as far as this daemon knows.
    Idle,
    /// Sending or receiving.
    Syncing,
    /// The server cannot be reached; local changes are queued.
    Offline,
    /// Paused by the user (`plait sync pause`): changes are recorded but not sent or fetched.
    Paused,
    /// Stopped by an error it cannot retry (see `last_error`).
    Failed,
}

/// One transfer in progress.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Transfer {
    /// Path relative to the folder, `/`-separated.
    pub path: String,
    /// `"up"` or `"down"`.
    pub direction: &'static str,
    /// Bytes done and total (the total may be unknown: 0).
    pub done: u64,
    pub total: u64,
}

/// A conflict kept on the server (siblings) and shown locally as a conflicted copy.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Conflict {
    /// The file's path relative to the folder.
    pub path: String,
    /// The conflicted copy's path relative to the folder.
    pub copy: String,
    /// The sibling versions on the server.
    pub versions: Vec<String>,
}

/// One line of recent activity.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Activity {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// e.g. `"uploaded"`, `"downloaded"`, `"deleted locally"`, `"deleted on server"`,
    /// `"merged"`, `"conflict"`, `"error"`.
    pub what: String,
    /// Path relative to the folder.
    pub path: String,
    /// Free text (sizes, versions, the error).
    pub detail: String,
}

/// Everything the control API shows about one folder.
#[derive(Debug, Clone, Serialize, Default)]
pub struct FolderStatus {
    pub dir: String,
    pub url: String,
    pub state: FolderState,
    /// Local changes recorded but not yet on the server.
    pub pending_up: u64,
    /// Remote changes seen but not yet applied locally.
    pub pending_down: u64,
    /// The last folder-watch cursor applied.
    pub cursor: Option<String>,
    pub transfers: Vec<Transfer>,
    pub conflicts: Vec<Conflict>,
    /// Per-file errors (path → message), kept until that file syncs.
    pub errors: BTreeMap<String, String>,
    pub last_error: Option<String>,
    /// Whether the server lets this token write (a read-only token makes local files read-only).
    pub writable: bool,
    #[serde(skip)]
    pub activity: VecDeque<Activity>,
    /// Whether a pause was asked for (the engine reads it).
    #[serde(skip)]
    pub paused: bool,
    /// Whether a full rescan was asked for (`POST /v1/rescan`); the engine takes it with
    /// [`StatusBoard::take_rescan`] and rescans as it would on its periodic timer.
    #[serde(skip)]
    pub rescan_asked: bool,
}

/// Shared, cheap to clone; one per daemon, keyed by the folder's local path.
#[derive(Clone, Default)]
pub struct StatusBoard {
    inner: Arc<Mutex<BTreeMap<String, FolderStatus>>>,
    /// Woken when the control API asks something of the engines (pause, resume, rescan), so an
    /// engine waiting for work can `select!` on [`StatusBoard::asked`] instead of polling.
    asked: Arc<Notify>,
}

impl StatusBoard {
    /// Runs `f` on a folder's status (created on first use).
    pub fn update<R>(&self, dir: &str, f: impl FnOnce(&mut FolderStatus) -> R) -> R {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let entry =
            map.entry(dir.to_owned()).or_insert_with(|| FolderStatus { dir: dir.to_owned(), ..Default::default() });
        f(entry)
    }

    /// Appends an activity line, keeping the last `ACTIVITY_KEPT`.
    pub fn record(&self, dir: &str, activity: Activity) {
        self.update(dir, |s| {
            s.activity.push_back(activity);
            while s.activity.len() > ACTIVITY_KEPT {
                s.activity.pop_front();
            }
        })
    }

    /// Asks `dir`'s engine to pause (or go on), and wakes the engines.
    pub fn set_paused(&self, dir: &str, paused: bool) {
        self.update(dir, |s| s.paused = paused);
        self.asked.notify_waiters();
    }

    /// Whether a pause is asked for `dir` (the engine checks before each transfer).
    pub fn is_paused(&self, dir: &str) -> bool {
        self.update(dir, |s| s.paused)
    }

    /// Asks `dir`'s engine for a full rescan, and wakes the engines.
    pub fn ask_rescan(&self, dir: &str) {
        self.update(dir, |s| s.rescan_asked = true);
        self.asked.notify_waiters();
    }

    /// Whether a rescan was asked for `dir` since the last call (clears the request).
    pub fn take_rescan(&self, dir: &str) -> bool {
        self.update(dir, |s| std::mem::take(&mut s.rescan_asked))
    }

    /// Resolves at the next request from the control API (pause, resume, rescan). Take it
    /// *before* reading the flags (`is_paused`, `take_rescan`), then await it: a request made in
    /// between still wakes it, and requests made while nobody waits stay in the flags.
    pub fn asked(&self) -> tokio::sync::futures::Notified<'_> {
        self.asked.notified()
    }

    /// Whether the board knows folder `dir`.
    pub fn has(&self, dir: &str) -> bool {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).contains_key(dir)
    }

    /// A copy of every folder's status.
    pub fn snapshot(&self) -> Vec<FolderStatus> {
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.values().cloned().collect()
    }
}
