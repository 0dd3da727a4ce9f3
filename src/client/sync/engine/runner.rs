//! The engine's loop: gathers dirty paths (start-up scan, filesystem events, the folder's
//! change log, the periodic rescan), reconciles them, and keeps the status board true. The
//! server being unreachable only changes the state to Offline and retries with backoff; the
//! dirty set is rebuilt from the disk and the database on every start, so it needs no saving.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until, Instant};

use super::remote::{Changes, Expect};
use super::watch::{self, Mode, Watched};
use super::{fsio, ignore, local_watch, paths, scan, Dirty, Folder, Outcome};
use super::{Conflict, FolderState, BACKOFF_FIRST, BACKOFF_MAX, DEBOUNCE, MAX_AGAIN};
use crate::client::ClientError;

/// Paths reconciled at once, and per round between looks at the stop and pause flags.
const PARALLEL: usize = 8;
const BATCH: usize = 64;

/// How often a waiting engine looks at the board's pause flag.
const PAUSE_CHECK: Duration = Duration::from_millis(200);

struct Loop {
    f: Folder,
    dirty: BTreeMap<String, Dirty>,
    /// Paths still being written, and when to look again.
    unsettled: BTreeSet<String>,
    retry_at: Option<Instant>,
    cursor: Option<String>,
    /// The log position the feed said was current: applied up to it means caught up.
    target: Option<u64>,
    /// What the latest change of a dirty path says the server holds.
    expect: BTreeMap<String, Expect>,
}

impl Loop {
    fn add(&mut self, rel: String, up: bool) {
        let d = self.dirty.entry(rel).or_default();
        if up {
            d.up = true;
        } else {
            d.down = true;
        }
    }

    /// Marks the paths an event names: the file, or every file under a folder (and every
    /// recorded path under it, for a folder deleted or renamed away).
    fn add_event(&mut self, abs: PathBuf) {
        let Some(rel) = paths::local_relative(&self.f.root, &abs) else { return };
        if rel == ignore::FILE_NAME {
            *self.f.ignore.lock().unwrap_or_else(|p| p.into_inner()) = ignore::Ignore::load(&self.f.root);
        }
        if self.f.is_ignored(&rel) {
            return;
        }
        if abs.is_dir() {
            for file in fsio::walk(&abs) {
                if let Some(r) = paths::local_relative(&self.f.root, &file) {
                    self.add(r, true);
                }
            }
        }
        if let Ok(recorded) = self.f.db.paths_under(&rel) {
            for r in recorded {
                self.add(r, true);
            }
        }
        if !abs.is_dir() {
            self.add(rel, true);
        }
    }

    fn rescan(&mut self) -> Result<(), ClientError> {
        *self.f.ignore.lock().unwrap_or_else(|p| p.into_inner()) = ignore::Ignore::load(&self.f.root);
        let found = scan::changed_paths(&self.f.root, &self.f.db, &|rel| self.f.is_ignored(rel))?;
        for rel in found {
            self.add(rel, true);
        }
        Ok(())
    }

    fn publish(&self, state: Option<FolderState>) {
        let up = self.dirty.values().filter(|d| d.up).count() + self.unsettled.len();
        let down = self.dirty.values().filter(|d| d.down && !d.up).count();
        // Reading every record is O(folder): only when a conflict came or went.
        let conflicts: Option<Vec<Conflict>> = self.f.conflicts_changed.swap(false, Ordering::Relaxed).then(|| {
            self.f
                .db
                .conflicts()
                .unwrap_or_default()
                .into_iter()
                .map(|(path, c)| Conflict { path, copy: c.copy, versions: c.versions })
                .collect()
        });
        let caught_up = match (self.target, &self.cursor) {
            (Some(t), Some(c)) => seq_of(c) >= t,
            _ => false,
        };
        let idle = up == 0 && down == 0 && caught_up;
        self.f.board.update(&self.f.key, |s| {
            s.pending_up = up as u64;
            s.pending_down = down as u64;
            s.cursor = self.cursor.clone();
            if let Some(c) = conflicts {
                s.conflicts = c;
            }
            s.writable = self.f.writable;
            s.state = match state {
                Some(st) => st,
                None if idle => FolderState::Idle,
                None => FolderState::Syncing,
            };
            if matches!(s.state, FolderState::Idle | FolderState::Syncing) {
                s.last_error = None;
            }
        });
    }

    fn offline(&self, e: &ClientError) {
        self.publish(Some(FolderState::Offline));
        self.f.board.update(&self.f.key, |s| s.last_error = Some(e.to_string()));
    }

    /// Reconciles every dirty path once. Err: the server went away (the rest stays dirty).
    async fn work(&mut self, stop: &tokio::sync::watch::Receiver<bool>) -> Result<(), ClientError> {
        let more: Vec<String> =
            std::mem::take(&mut *self.f.more.lock().unwrap_or_else(|p| p.into_inner())).into_iter().collect();
        for rel in more {
            self.add(rel, true);
        }
        // A conflicted copy is reconciled through its path: one job per path.
        let mut owners = BTreeSet::new();
        let mut todo = Vec::new();
        for rel in self.dirty.keys().cloned().collect::<Vec<_>>() {
            let owner = self.f.db.copy_of(&rel)?.unwrap_or_else(|| rel.clone());
            if owners.insert(owner) {
                todo.push(rel);
            } else {
                self.dirty.remove(&rel);
            }
        }
        for batch in todo.chunks(BATCH) {
            if *stop.borrow() || self.f.board.update(&self.f.key, |s| s.paused) {
                return Ok(());
            }
            // Paths are independent: several at once (their requests overlap on the wire).
            let jobs: Vec<(String, Option<Expect>)> =
                batch.iter().map(|rel| (rel.clone(), self.expect.get(rel).cloned())).collect();
            let f = &self.f;
            let results: Vec<(String, Result<Outcome, ClientError>)> = futures_util::stream::iter(jobs)
                .map(|(rel, exp)| async move {
                    let out = f.reconcile(&rel, exp.as_ref()).await;
                    (rel, out)
                })
                .buffer_unordered(PARALLEL)
                .collect()
                .await;
            let mut gone: Option<ClientError> = None;
            for (rel, out) in results {
                if !matches!(out, Ok(Outcome::Again)) {
                    self.expect.remove(&rel);
                }
                self.take_outcome(rel, out, &mut gone);
            }
            self.publish(None);
            if let Some(e) = gone {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Applies one reconcile's outcome to the dirty set and the board; a network failure is
    /// kept in `gone` (the path stays dirty).
    fn take_outcome(&mut self, rel: String, out: Result<Outcome, ClientError>, gone: &mut Option<ClientError>) {
        match out {
            Ok(Outcome::Done) => {
                self.dirty.remove(&rel);
                self.f.board.update(&self.f.key, |s| s.errors.remove(&rel));
            }
            Ok(Outcome::Unsettled) => {
                self.dirty.remove(&rel);
                self.unsettled.insert(rel);
                let at = Instant::now() + fsio::SETTLE_TEXT;
                self.retry_at = Some(self.retry_at.map_or(at, |r| r.min(at)));
            }
            Ok(Outcome::Again) => {
                let d = self.dirty.entry(rel.clone()).or_default();
                d.again += 1;
                if d.again >= MAX_AGAIN {
                    self.dirty.remove(&rel);
                    self.fail(&rel, "kept changing while it was being synced; will retry at the next rescan".into());
                }
            }
            Ok(Outcome::Failed(msg)) => {
                self.dirty.remove(&rel);
                self.fail(&rel, msg);
            }
            Err(e) if e.is_transient() => *gone = Some(e),
            Err(e) => {
                self.dirty.remove(&rel);
                self.fail(&rel, e.to_string());
            }
        }
    }

    fn fail(&self, rel: &str, msg: String) {
        self.f.activity("error", rel, &msg);
        self.f.board.update(&self.f.key, |s| {
            s.errors.insert(rel.to_owned(), msg);
        });
    }

    /// Takes a poll's answer: changed paths become dirty; a reset asks for a new listing.
    fn take_changes(&mut self, ch: Changes) -> Option<String> {
        if ch.reset {
            self.cursor = None;
            self.target = None;
            return None;
        }
        for c in ch.changes {
            if let Some(rel) = paths::relative(&self.f.server.folder, &c.path) {
                if !self.f.is_ignored(&rel) {
                    match Expect::of(&c) {
                        Some(e) => self.expect.insert(rel.clone(), e),
                        None => self.expect.remove(&rel),
                    };
                    self.add(rel, false);
                }
            }
        }
        Some(ch.cursor)
    }
}

async fn recv_or_never(rx: &mut Option<mpsc::UnboundedReceiver<PathBuf>>) -> Option<PathBuf> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

fn seq_of(cursor: &str) -> u64 {
    cursor.rsplit('-').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

async fn feed_or_never(feed: &mut Option<watch::Feed>) -> Option<Result<Watched, ClientError>> {
    match feed {
        Some(f) => f.recv().await,
        None => std::future::pending().await,
    }
}

/// The remote feed in use, if any.
struct FeedTask {
    task: JoinHandle<()>,
    rx: Option<watch::Feed>,
}

impl FeedTask {
    fn stop(&mut self) {
        self.task.abort();
        self.rx = None;
    }
}

/// Consecutive breaks of the folder watch (with the server reachable) before the long poll
/// takes over.
const WATCH_BREAKS: u32 = 3;

/// The loop of one folder, until `stop` says so.
pub(super) async fn run(f: Folder, mut stop: tokio::sync::watch::Receiver<bool>) -> Result<(), ClientError> {
    let cursor = f.db.cursor()?;
    let mut lp = Loop {
        f,
        dirty: BTreeMap::new(),
        unsettled: BTreeSet::new(),
        retry_at: None,
        cursor,
        target: None,
        expect: BTreeMap::new(),
    };
    let (local, mut events) = match local_watch::start(&lp.f.root) {
        Some((w, rx)) => (Some(w), Some(rx)),
        None => (None, None),
    };
    lp.rescan()?;
    lp.publish(Some(FolderState::Starting));
    let mut connected = false;
    let mut backoff = BACKOFF_FIRST;
    let mut feed: Option<FeedTask> = None;
    let mut mode = Mode::Watch;
    let mut breaks = 0u32;
    let mut listing_cursor: Option<String> = None;
    let mut next_rescan = Instant::now() + lp.f.spec.rescan_every;
    let board = lp.f.board.clone();
    while !*stop.borrow() {
        // Taken before the flags are read, so a request made in between still wakes the wait.
        let asked = board.asked();
        tokio::pin!(asked);
        asked.as_mut().enable();
        if lp.f.board.update(&lp.f.key, |s| s.paused) {
            if let Some(mut fd) = feed.take() {
                fd.stop();
            }
            lp.target = None;
            lp.publish(Some(FolderState::Paused));
            tokio::select! {
                _ = stop.changed() => {}
                _ = &mut asked => {}
                _ = sleep(PAUSE_CHECK) => {}
                Some(p) = recv_or_never(&mut events) => lp.add_event(p),
            }
            continue;
        }
        if board.take_rescan(&lp.f.key) {
            // `POST /v1/rescan`: what the periodic rescan would find, now.
            lp.rescan()?;
            lp.f.activity("rescan", "", "asked for");
        }
        let step: Result<(), ClientError> = async {
            if !connected {
                lp.f.connect().await?;
                connected = true;
                backoff = BACKOFF_FIRST;
            }
            if lp.cursor.is_none() && listing_cursor.is_none() {
                let (list, c) = lp.f.server.list().await?;
                for p in list {
                    if let Some(rel) = paths::relative(&lp.f.server.folder, &p) {
                        if !lp.f.is_ignored(&rel) {
                            lp.add(rel, false);
                        }
                    }
                }
                lp.rescan()?;
                listing_cursor = Some(c);
            }
            lp.work(&stop).await?;
            if let Some(c) = listing_cursor.take() {
                lp.f.db.set_cursor(&c)?;
                lp.cursor = Some(c);
            }
            Ok(())
        }
        .await;
        if let Err(e) = step {
            if let Some(mut fd) = feed.take() {
                fd.stop();
            }
            lp.target = None;
            if !e.is_transient() && !matches!(e, ClientError::Status { .. } | ClientError::Protocol(_)) {
                // The local database or the folder failed: nothing to retry.
                return Err(e);
            }
            connected = false;
            lp.offline(&e);
            // Local changes keep being noted (and counted as pending) while offline.
            let until = Instant::now() + backoff;
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = sleep_until(until) => break,
                    Some(p) = recv_or_never(&mut events) => {
                        lp.add_event(p);
                        lp.offline(&e);
                    }
                }
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
            continue;
        }
        lp.publish(None);
        if feed.is_none() {
            if let Some(c) = lp.cursor.clone() {
                let (task, rx) = watch::start(lp.f.server.clone(), c, mode);
                feed = Some(FeedTask { task, rx: Some(rx) });
            }
        }
        let again = !lp.dirty.is_empty();
        let mut rx = feed.as_mut().and_then(|f| f.rx.take());
        tokio::select! {
            _ = stop.changed() => {}
            _ = sleep(Duration::from_millis(20)), if again => {}
            // A pause, resume or rescan request: looked at at the top of the loop.
            _ = &mut asked => {}
            _ = sleep(PAUSE_CHECK) => {}
            got = feed_or_never(&mut rx) => {
                let mut got = got;
                loop {
                    match got {
                        Some(Ok(Watched::CaughtUpTo(c))) => lp.target = Some(seq_of(&c)),
                        Some(Ok(Watched::Changes(ch))) => {
                            breaks = 0;
                            match lp.take_changes(ch) {
                                // Saved once the changes are applied (next round), so a crash
                                // before that fetches them again.
                                Some(c) => listing_cursor = Some(c),
                                None => {
                                    // A reset: list again, then watch from the new cursor.
                                    if let Some(mut fd) = feed.take() {
                                        fd.stop();
                                    }
                                    rx = None;
                                    listing_cursor = None;
                                    break;
                                }
                            }
                        }
                        Some(Err(e)) => {
                            if let Some(mut fd) = feed.take() {
                                fd.stop();
                            }
                            rx = None;
                            lp.target = None;
                            breaks += 1;
                            if mode == Mode::Watch && (watch::means_no_streaming(&e) || breaks >= WATCH_BREAKS) {
                                lp.f.activity("long polling", "", &format!("the folder watch does not work here: {e}"));
                                mode = Mode::Poll;
                            } else if matches!(e, ClientError::Status { status: 400, .. }) {
                                // The cursor is refused (another store's): list again.
                                lp.cursor = None;
                            } else {
                                connected = false;
                                lp.offline(&e);
                            }
                            break;
                        }
                        None => {
                            // The feed ended: start it again.
                            feed = None;
                            rx = None;
                            break;
                        }
                    }
                    // Take what else is there now, so one round applies it all.
                    got = match rx.as_mut().map(|r| r.try_recv()) {
                        Some(Ok(x)) => Some(x),
                        _ => break,
                    };
                }
            }
            Some(p) = recv_or_never(&mut events) => {
                lp.add_event(p);
                // Debounce: take what else arrives right after.
                let until = Instant::now() + DEBOUNCE;
                while let Ok(Some(p)) = tokio::time::timeout_at(until, recv_or_never(&mut events)).await {
                    lp.add_event(p);
                }
            }
            _ = sleep_until(lp.retry_at.unwrap_or(next_rescan)), if lp.retry_at.is_some() => {
                lp.retry_at = None;
                for rel in std::mem::take(&mut lp.unsettled) {
                    lp.add(rel, true);
                }
            }
            _ = sleep_until(next_rescan) => {
                next_rescan = Instant::now() + lp.f.spec.rescan_every;
                lp.rescan()?;
            }
        }
        if let (Some(fd), Some(r)) = (feed.as_mut(), rx) {
            fd.rx = Some(r);
        }
    }
    if let Some(mut fd) = feed.take() {
        fd.stop();
    }
    drop(local);
    Ok(())
}
