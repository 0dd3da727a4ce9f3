//! The sync engine: keeps ONE local folder and ONE server folder the same, both ways.
//!
//! Everything is per path and idempotent: a local event, a remote change, the start-up scan or
//! the periodic rescan only mark a path dirty, and [`Folder::reconcile`] compares three states
//! (the local file, the server's `HEAD`, and the record of what both last agreed on, in the
//! folder's local database) and does what makes them agree: upload, download, delete, merge
//! (text) or keep both (a binary conflict). Running it twice, or again after a crash, does
//! nothing new. The loop in [`Engine::run`] feeds it: filesystem notifications (debounced),
//! the folder's change log (long poll from the stored cursor, recursive), a rescan every
//! `spec.rescan_every`, and retries with backoff while the server cannot be reached.
//!
//! Layout: `state` (the local database), `scan` and `local_watch` (what changed here),
//! `remote` (the server calls), `text` and `binary` (one path of each kind), `conflicts`,
//! `ignore` (`.plaitignore`), `paths` (names ↔ URLs), `fsio` (stat, chunking, atomic writes).
//! docs/SYNC.md explains the behaviour and the crash-safety argument.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::spec::FolderSpec;
use super::status::{Activity, Conflict, FolderState, StatusBoard, Transfer};
use crate::chunks::ChunkParams;
use crate::client::{ClientError, Remote};

pub mod binary;
pub mod conflicts;
pub mod fsio;
pub mod ignore;
pub mod local_watch;
pub mod paths;
pub mod remote;
mod runner;
pub mod scan;
pub mod state;
pub mod text;
pub mod watch;

use state::PathKind;

/// The first and the longest wait between attempts to reach the server.
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Filesystem events closer than this are handled together.
const DEBOUNCE: Duration = Duration::from_millis(50);
/// A path that needs another look this many times in a row is reported as an error.
const MAX_AGAIN: u32 = 8;
/// How long a reconcile waits for `HEAD` to show what the change log announced (the log can
/// wake a watcher a moment before the server's reads show the change): tries × pause. Still
/// unseen after that, the reconcile ends `Again` (the path stays dirty with its expectation)
/// rather than acting on the stale `HEAD`: acting on it lost downloads under load (a create
/// not yet readable looked like "nothing anywhere", the path was dropped and the cursor moved
/// past it).
const EXPECT_TRIES: u32 = 100;
const EXPECT_PAUSE: Duration = Duration::from_millis(20);
/// Local files larger than this are never sent as text.
const MAX_TEXT_BYTES: u64 = 16 << 20;

/// What one reconcile of a path ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Local, server and record agree.
    Done,
    /// The local file is still being written: look again once it settles.
    Unsettled,
    /// Something moved meanwhile: look again now.
    Again,
    /// It cannot sync as it is (shown as the path's error until it changes).
    Failed(String),
}

/// What the engine did, per folder, for tests and benchmarks (not persisted).
#[derive(Debug, Default)]
pub struct Counters {
    files_hashed: AtomicU64,
    missing_calls: AtomicU64,
    chunks_asked: AtomicU64,
    chunks_missing: AtomicU64,
    chunks_uploaded: AtomicU64,
    chunk_bytes_uploaded: AtomicU64,
    downloads: AtomicU64,
}

/// A copy of [`Counters`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// Local files read in full to hash or cut them.
    pub files_hashed: u64,
    pub missing_calls: u64,
    pub chunks_asked: u64,
    pub chunks_missing: u64,
    pub chunks_uploaded: u64,
    pub chunk_bytes_uploaded: u64,
    pub downloads: u64,
}

impl Counters {
    fn count_hashed(&self) {
        self.files_hashed.fetch_add(1, Ordering::Relaxed);
    }
    fn count_missing_call(&self, asked: u64, missing: u64) {
        self.missing_calls.fetch_add(1, Ordering::Relaxed);
        self.chunks_asked.fetch_add(asked, Ordering::Relaxed);
        self.chunks_missing.fetch_add(missing, Ordering::Relaxed);
    }
    fn count_chunk(&self, len: u64) {
        self.chunks_uploaded.fetch_add(1, Ordering::Relaxed);
        self.chunk_bytes_uploaded.fetch_add(len, Ordering::Relaxed);
    }
    fn count_download(&self) {
        self.downloads.fetch_add(1, Ordering::Relaxed);
    }
    fn snapshot(&self) -> CounterSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CounterSnapshot {
            files_hashed: l(&self.files_hashed),
            missing_calls: l(&self.missing_calls),
            chunks_asked: l(&self.chunks_asked),
            chunks_missing: l(&self.chunks_missing),
            chunks_uploaded: l(&self.chunks_uploaded),
            chunk_bytes_uploaded: l(&self.chunk_bytes_uploaded),
            downloads: l(&self.downloads),
        }
    }
}

fn registry() -> &'static Mutex<HashMap<PathBuf, Arc<Counters>>> {
    static R: OnceLock<Mutex<HashMap<PathBuf, Arc<Counters>>>> = OnceLock::new();
    R.get_or_init(Default::default)
}

fn counters_for(dir: &Path) -> Arc<Counters> {
    let mut m = registry().lock().unwrap_or_else(|p| p.into_inner());
    m.entry(dir.to_path_buf()).or_default().clone()
}

/// What the engines of `dir` (its `FolderSpec::dir`) did since this process started.
pub fn counters(dir: &Path) -> CounterSnapshot {
    counters_for(dir).snapshot()
}

/// One folder being synced: what every reconcile needs.
pub struct Folder {
    spec: FolderSpec,
    /// The folder, canonical (events name canonical paths).
    root: PathBuf,
    key: String,
    board: StatusBoard,
    db: state::State,
    server: remote::Server,
    ignore: Mutex<ignore::Ignore>,
    params: Mutex<Option<ChunkParams>>,
    writable: bool,
    counters: Arc<Counters>,
    /// Paths a reconcile found need a look too (a released conflicted copy).
    more: Mutex<BTreeSet<String>>,
    /// The state dir's path relative to the folder, when it is inside it.
    state_rel: Option<String>,
    /// Set when a conflict is recorded or resolved (the status board's list is re-read).
    conflicts_changed: std::sync::atomic::AtomicBool,
}

impl Folder {
    fn abs(&self, rel: &str) -> PathBuf {
        let mut p = self.root.clone();
        for seg in rel.split('/') {
            p.push(seg);
        }
        p
    }

    fn params(&self) -> Result<ChunkParams, ClientError> {
        let p = *self.params.lock().unwrap_or_else(|p| p.into_inner());
        p.ok_or_else(|| ClientError::Network("chunking parameters not known yet".into()))
    }

    fn mark_dirty(&self, rel: &str) {
        self.more.lock().unwrap_or_else(|p| p.into_inner()).insert(rel.to_owned());
    }

    fn is_ignored(&self, rel: &str) -> bool {
        // The engine's own database, if someone put it inside the folder, is never synced.
        if let Some(s) = &self.state_rel {
            if rel == s || rel.strip_prefix(s.as_str()).is_some_and(|r| r.starts_with('/')) {
                return true;
            }
        }
        self.ignore.lock().unwrap_or_else(|p| p.into_inner()).is_ignored(rel)
    }

    fn activity(&self, what: &str, path: &str, detail: &str) {
        if matches!(what, "conflict" | "resolved") {
            self.conflicts_changed.store(true, Ordering::Relaxed);
        }
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        tracing::info!(folder = %self.key, path, detail, "{what}");
        self.board.record(
            &self.key,
            Activity { at_ms, what: what.to_owned(), path: path.to_owned(), detail: detail.to_owned() },
        );
    }

    fn transfer(&self, rel: &str, direction: &'static str, done: u64, total: u64) {
        self.board.update(&self.key, |s| match s.transfers.iter_mut().find(|t| t.path == rel) {
            Some(t) => {
                t.done = done;
                t.total = total;
            }
            None => s.transfers.push(Transfer { path: rel.to_owned(), direction, done, total }),
        });
    }

    fn transfer_done(&self, rel: &str) {
        self.board.update(&self.key, |s| s.transfers.retain(|t| t.path != rel));
    }

    /// Learns the chunking parameters and whether this token may write.
    async fn connect(&mut self) -> Result<(), ClientError> {
        let params = self.server.chunk_params().await?;
        *self.params.lock().unwrap_or_else(|p| p.into_inner()) = Some(params);
        let writable = self.server.writable().await?;
        if writable != self.writable {
            self.writable = writable;
            // A read-only token: local files become read-only, so nobody edits in vain.
            for rel in self.db.paths()? {
                fsio::set_readonly(&self.abs(&rel), !writable);
            }
        }
        self.board.update(&self.key, |s| s.writable = writable);
        Ok(())
    }

    /// The kind a local file would get on the server: the server's own rule on its bytes.
    fn local_kind(&self, abs: &Path) -> Option<PathKind> {
        let st = fsio::stat(abs)?;
        if st.size > MAX_TEXT_BYTES {
            return Some(PathKind::File);
        }
        let bytes = std::fs::read(abs).ok()?;
        let text = !bytes.contains(&0) && std::str::from_utf8(&bytes).is_ok();
        Some(if text { PathKind::Text } else { PathKind::File })
    }

    /// Brings one path to agreement (see the module doc). `expect`: what the change that
    /// made it dirty says the server holds.
    pub async fn reconcile(&self, rel: &str, expect: Option<&remote::Expect>) -> Result<Outcome, ClientError> {
        if self.is_ignored(rel) {
            return Ok(Outcome::Done);
        }
        let rel = match self.db.copy_of(rel)? {
            Some(owner) => owner,
            None => rel.to_owned(),
        };
        let abs = self.abs(&rel);
        if abs.is_dir() {
            return Ok(Outcome::Done);
        }
        let mut head = self.server.head(&rel).await?;
        if let Some(e) = expect {
            for _ in 0..EXPECT_TRIES {
                if e.seen_in(&head) {
                    break;
                }
                tokio::time::sleep(EXPECT_PAUSE).await;
                head = self.server.head(&rel).await?;
            }
            if !e.seen_in(&head) {
                return Ok(Outcome::Again);
            }
        }
        let rec = self.db.record(&rel)?;
        let kind = head.kind.or_else(|| self.local_kind(&abs)).or(rec.as_ref().map(|r| r.kind));
        let Some(kind) = kind else {
            // Nothing anywhere: forget whatever was recorded.
            if rec.is_some() {
                self.db.remove(&rel, None).await?;
            }
            return Ok(Outcome::Done);
        };
        if rec.as_ref().is_some_and(|r| r.kind != kind && r.conflict.is_none()) {
            self.db.remove(&rel, None).await?;
        }
        match kind {
            PathKind::Text => self.sync_text(&rel, &head).await,
            PathKind::File => self.sync_file(&rel, &head).await,
        }
    }
}

/// Which way a dirty path came from (for the pending counts).
#[derive(Clone, Copy, Default)]
struct Dirty {
    up: bool,
    down: bool,
    again: u32,
}

/// The engine of one folder.
pub struct Engine;

impl Engine {
    /// Opens the folder's local database (spec.state_dir), then runs until `stop` fires:
    /// initial scan + catch-up, then local events, remote watch, retries. Never returns early
    /// on network errors (it goes Offline and retries with backoff); returns Err only for
    /// errors it cannot retry (local database corrupt, folder not creatable).
    pub async fn run(
        spec: FolderSpec,
        board: StatusBoard,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), ClientError> {
        let key = spec.dir.display().to_string();
        board.update(&key, |s| {
            s.url = spec.url.to_string();
            s.state = FolderState::Starting;
            s.writable = true;
        });
        let opened = open(&spec, board.clone()).await;
        let folder = match opened {
            Ok(f) => f,
            Err(e) => {
                board.update(&key, |s| {
                    s.state = FolderState::Failed;
                    s.last_error = Some(e.to_string());
                });
                return Err(e);
            }
        };
        let out = runner::run(folder, stop).await;
        if let Err(e) = &out {
            board.update(&key, |s| {
                s.state = FolderState::Failed;
                s.last_error = Some(e.to_string());
            });
        }
        out
    }
}

async fn open(spec: &FolderSpec, board: StatusBoard) -> Result<Folder, ClientError> {
    std::fs::create_dir_all(&spec.dir)
        .map_err(|e| ClientError::Local(format!("cannot create {}: {e}", spec.dir.display())))?;
    let root = std::fs::canonicalize(&spec.dir)?;
    let db = state::State::open(&spec.state_dir)?;
    let state_rel = std::fs::canonicalize(&spec.state_dir).ok().and_then(|s| paths::local_relative(&root, &s));
    fsio::remove_temps(&root);
    Ok(Folder {
        key: spec.dir.display().to_string(),
        board,
        server: remote::Server { remote: Remote::new(spec.token.clone())?, folder: spec.url.clone() },
        ignore: Mutex::new(ignore::Ignore::load(&root)),
        params: Mutex::new(None),
        writable: true,
        counters: counters_for(&spec.dir),
        more: Mutex::new(BTreeSet::new()),
        conflicts_changed: std::sync::atomic::AtomicBool::new(true),
        state_rel,
        root,
        db,
        spec: spec.clone(),
    })
}
