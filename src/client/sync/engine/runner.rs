//! The engine's loop: gathers dirty paths (start-up scan, filesystem events, the folder's
//! change log, the periodic rescan), reconciles them, and keeps the status board true. The
//! server being unreachable only changes the state to Offline and retries with backoff; the
//! dirty set is rebuilt from the disk and the database on every start, so it needs no saving.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until, Instant};

use super::remote::Changes;
use super::{fsio, ignore, local_watch, paths, scan, Dirty, Folder, Outcome};
use super::{Conflict, FolderState, BACKOFF_FIRST, BACKOFF_MAX, DEBOUNCE, MAX_AGAIN, POLL_WAIT_SECS};
use crate::client::ClientError;

struct Loop {
    f: Folder,
    dirty: BTreeMap<String, Dirty>,
    /// Paths still being written, and when to look again.
    unsettled: BTreeSet<String>,
    retry_at: Option<Instant>,
    cursor: Option<String>,
    caught_up: bool,
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
        let prefix = format!("{rel}/");
        if let Ok(recorded) = self.f.db.paths() {
            for r in recorded.into_iter().filter(|r| r.starts_with(&prefix)) {
                self.add(r, true);
            }
        }
        if !abs.is_dir() {
            self.add(rel, true);
        }
    }

    fn rescan(&mut self) -> Result<(), ClientError> {
        let ignore = ignore::Ignore::load(&self.f.root);
        let found = scan::changed_paths(&self.f.root, &self.f.db, &ignore)?;
        *self.f.ignore.lock().unwrap_or_else(|p| p.into_inner()) = ignore;
        for rel in found {
            self.add(rel, true);
        }
        Ok(())
    }

    fn publish(&self, state: Option<FolderState>) {
        let up = self.dirty.values().filter(|d| d.up).count() + self.unsettled.len();
        let down = self.dirty.values().filter(|d| d.down && !d.up).count();
        let conflicts: Vec<Conflict> = self
            .f
            .db
            .conflicts()
            .unwrap_or_default()
            .into_iter()
            .map(|(path, c)| Conflict { path, copy: c.copy, versions: c.versions })
            .collect();
        let idle = up == 0 && down == 0 && self.caught_up;
        self.f.board.update(&self.f.key, |s| {
            s.pending_up = up as u64;
            s.pending_down = down as u64;
            s.cursor = self.cursor.clone();
            s.conflicts = conflicts;
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
        let more: Vec<String> = std::mem::take(&mut *self.f.more.lock().unwrap_or_else(|p| p.into_inner())).into_iter().collect();
        for rel in more {
            self.add(rel, true);
        }
        let todo: Vec<String> = self.dirty.keys().cloned().collect();
        for rel in todo {
            if *stop.borrow() || self.f.board.update(&self.f.key, |s| s.paused) {
                return Ok(());
            }
            let out = self.f.reconcile(&rel).await;
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
                Err(e) if e.is_transient() => return Err(e),
                Err(e) => {
                    self.dirty.remove(&rel);
                    self.fail(&rel, e.to_string());
                }
            }
            self.publish(None);
        }
        Ok(())
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
            self.caught_up = false;
            return None;
        }
        self.caught_up = ch.changes.is_empty() && !ch.more;
        for c in ch.changes {
            if let Some(rel) = paths::relative(&self.f.server.folder, &c.path) {
                if !self.f.is_ignored(&rel) {
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

async fn join_or_never(h: &mut Option<JoinHandle<Result<Changes, ClientError>>>) -> Result<Changes, ClientError> {
    match h {
        Some(j) => j.await.unwrap_or_else(|e| Err(ClientError::Network(e.to_string()))),
        None => std::future::pending().await,
    }
}

/// The loop of one folder, until `stop` says so.
pub(super) async fn run(f: Folder, mut stop: tokio::sync::watch::Receiver<bool>) -> Result<(), ClientError> {
    let cursor = f.db.cursor()?;
    let mut lp = Loop { f, dirty: BTreeMap::new(), unsettled: BTreeSet::new(), retry_at: None, cursor, caught_up: false };
    let (watch, mut events) = match local_watch::start(&lp.f.root) {
        Some((w, rx)) => (Some(w), Some(rx)),
        None => (None, None),
    };
    lp.rescan()?;
    lp.publish(Some(FolderState::Starting));
    let mut connected = false;
    let mut backoff = BACKOFF_FIRST;
    let mut poll: Option<JoinHandle<Result<Changes, ClientError>>> = None;
    let mut listing_cursor: Option<String> = None;
    let mut next_rescan = Instant::now() + lp.f.spec.rescan_every;
    while !*stop.borrow() {
        if lp.f.board.update(&lp.f.key, |s| s.paused) {
            if let Some(p) = poll.take() {
                p.abort();
            }
            lp.publish(Some(FolderState::Paused));
            tokio::select! {
                _ = stop.changed() => {}
                _ = sleep(Duration::from_millis(200)) => {}
                Some(p) = recv_or_never(&mut events) => lp.add_event(p),
            }
            continue;
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
            if !e.is_transient() && !matches!(e, ClientError::Status { .. } | ClientError::Protocol(_)) {
                // The local database or the folder failed: nothing to retry.
                if let Some(p) = poll.take() {
                    p.abort();
                }
                return Err(e);
            }
            connected = false;
            if let Some(p) = poll.take() {
                p.abort();
            }
            lp.offline(&e);
            tokio::select! {
                _ = stop.changed() => {}
                _ = sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
            continue;
        }
        lp.publish(None);
        if poll.is_none() {
            if let Some(c) = lp.cursor.clone() {
                let server = lp.f.server.clone();
                let wait = if lp.caught_up && lp.dirty.is_empty() { POLL_WAIT_SECS } else { 0 };
                poll = Some(tokio::spawn(async move { server.poll(&c, wait).await }));
            }
        }
        let again = !lp.dirty.is_empty();
        tokio::select! {
            _ = stop.changed() => {}
            _ = sleep(Duration::from_millis(20)), if again => {}
            res = join_or_never(&mut poll) => {
                poll = None;
                match res {
                    Ok(ch) => {
                        if let Some(c) = lp.take_changes(ch) {
                            // Saved once the changes are applied (next round), so a crash
                            // before that fetches them again.
                            listing_cursor = Some(c);
                        }
                    }
                    Err(ClientError::Status { status: 400, .. }) => {
                        // The cursor is refused (another store's): list again.
                        lp.cursor = None;
                    }
                    Err(e) => {
                        connected = false;
                        lp.offline(&e);
                    }
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
    }
    if let Some(p) = poll.take() {
        p.abort();
    }
    drop(watch);
    Ok(())
}
