//! Folders on top of the change log (`store::changelog`, `changes`): a listing page, and a
//! watch that delivers every change under a folder after a cursor, waiting for new ones.
//!
//! A watch pulls, like a document subscription: it holds a position and reads the next page
//! of the log only when its writer asks for more, from the recent changes in memory when it is
//! nearly caught up, else from the store. So a stalled watcher holds O(1) memory; one that
//! resumes within the log's window (`--change-log-window`) gets every change, one behind it
//! gets each page coalesced to the latest change per path (all the log still holds there).

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::watch;

use crate::changes::{listing, under, Cursor, ListPage};
use crate::store::{ChangeLog, Logged};

use super::interest::Wanted;
use super::loading::blocking;
use super::{Hub, HubError, SubscriptionLimit};

/// Whether the caller may see a path (or, for a path ending in `/`, anything under it).
pub type Visible = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Log records one listing page reads at most (a page of a folder full of deleted or hidden
/// paths ends early instead of reading on).
const LIST_BUDGET: usize = 20_000;
/// Positions one store read of a watch looks at, at most.
const WATCH_SCAN: usize = 4096;

/// A page of a folder's listing with the log's position when it was read: a watch from that
/// cursor sees every change made after the page.
#[derive(Debug)]
pub struct Listing {
    pub page: ListPage,
    pub cursor: Cursor,
}

/// Where a watch starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// From the cursor given: the changes after it follow.
    Resumed,
    /// No cursor given: from now (the caller sends the listing first).
    Fresh,
    /// The cursor cannot be answered exactly (older than a delete the log has forgotten, from
    /// another log, or ahead of this one): from now, and the caller sends a fresh listing.
    Reset,
}

/// What a watch follows.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The resources in a folder (a path ending in `/`): its children, or its whole subtree.
    Folder { folder: String, recursive: bool },
    /// One resource (an event stream of a document).
    Path(String),
}

impl Scope {
    /// Whether a change of `path` concerns this scope.
    pub fn holds(&self, path: &str) -> bool {
        match self {
            Scope::Folder { folder, recursive } => under(path, folder, *recursive),
            Scope::Path(own) => own == path,
        }
    }
}

/// A watch of one folder (or one resource).
///
/// Two phases: while its position is behind where it joined its scope (`scan_until`: a watch
/// resumed from an older cursor), it scans the log; from there on it reads exactly the
/// positions its scope's entry recorded (`interest`), woken only by changes it concerns.
pub struct FolderWatch {
    hub: Hub,
    scope: Scope,
    visible: Visible,
    /// The last position delivered (or looked at).
    at: u64,
    /// Scan the log up to here before relying on the scope's recorded positions.
    scan_until: u64,
    /// The scope's entry; `None` only while being dropped.
    wanted: Option<Arc<Wanted>>,
    rx: watch::Receiver<u64>,
}

impl Hub {
    /// The change log.
    pub fn change_log(&self) -> &Arc<ChangeLog> {
        &self.0.log
    }

    /// The log's position now, as a cursor.
    pub fn cursor(&self) -> Cursor {
        Cursor { epoch: self.0.log.epoch(), seq: self.0.log.end() }
    }

    /// Up to `limit` entries of `folder` after `after`, with the position they were read at.
    pub async fn list_folder(
        &self,
        folder: &str,
        recursive: bool,
        after: Option<&str>,
        limit: usize,
        visible: Visible,
    ) -> Result<Listing, HubError> {
        let cursor = self.cursor();
        let store = self.0.store.clone();
        let page = blocking(|| {
            listing::page(store.as_ref(), folder, recursive, after, limit, LIST_BUDGET, |p: &str| visible(p))
        })?;
        Ok(Listing { page, cursor })
    }

    /// A watch of `scope` from `since` (None: from now), and how it starts. It counts against
    /// the server's subscription limit (`--max-subscriptions`) while it lives.
    pub fn watch_changes(
        &self,
        scope: Scope,
        since: Option<Cursor>,
        visible: Visible,
    ) -> Result<(FolderWatch, Start), HubError> {
        let stats = &self.0.stats;
        let total = stats.subscriptions.fetch_add(1, Ordering::Relaxed) + 1;
        if total > self.0.settings.max_subscriptions {
            stats.subscriptions.fetch_sub(1, Ordering::Relaxed);
            return Err(HubError::TooManySubscriptions(SubscriptionLimit::Server(self.0.settings.max_subscriptions)));
        }
        stats.folder_watches.fetch_add(1, Ordering::Relaxed);
        let log = &self.0.log;
        // Joined while no write is being shown: every change after `now` reaches the entry.
        let (wanted, now) = log.at_end(|now| (self.0.interest.join(&scope), now));
        let (at, start) = match since {
            None => (now, Start::Fresh),
            Some(c) if c.check(log.epoch(), now).is_ok() && c.seq >= log.floor() => (c.seq, Start::Resumed),
            Some(_) => (now, Start::Reset),
        };
        let rx = wanted.tx.subscribe();
        let watch = FolderWatch { hub: self.clone(), scope, visible, at, scan_until: now, wanted: Some(wanted), rx };
        Ok((watch, start))
    }
}

impl FolderWatch {
    /// The position delivered so far.
    pub fn cursor(&self) -> Cursor {
        Cursor { epoch: self.hub.0.log.epoch(), seq: self.at }
    }

    /// Up to `limit` changes after the position, waiting until there is at least one; None
    /// once the server is shutting down.
    pub async fn next(&mut self, limit: usize) -> Option<Result<Vec<Arc<Logged>>, HubError>> {
        loop {
            self.rx.borrow_and_update();
            match self.ready(limit) {
                Ok(changes) if changes.is_empty() => self.rx.changed().await.ok()?,
                other => return Some(other),
            }
        }
    }

    /// Up to `limit` changes after the position that are there now (maybe none; then the
    /// position moves to the log's end: nothing up to there concerned the watch).
    pub fn ready(&mut self, limit: usize) -> Result<Vec<Arc<Logged>>, HubError> {
        loop {
            if self.at < self.scan_until {
                let changes = self.read(limit)?;
                if !changes.is_empty() {
                    return Ok(changes);
                }
                continue;
            }
            let log = &self.hub.0.log;
            // Read before the recorded positions: every change up to it has been recorded.
            let end = log.end();
            let Some(wanted) = &self.wanted else { return Ok(Vec::new()) };
            let Some(seqs) = wanted.after(self.at) else {
                // It fell behind what its scope keeps: scan up to the last recorded position.
                self.scan_until = *self.rx.borrow();
                continue;
            };
            if seqs.is_empty() {
                self.at = self.at.max(end);
                return Ok(Vec::new());
            }
            let mut out = Vec::new();
            for seq in seqs.into_iter().take(limit) {
                let change = match log.recent_at(seq) {
                    Some(l) => Some(l),
                    None => blocking(|| ChangeLog::stored_at(self.hub.0.store.as_ref(), seq))?.map(Arc::new),
                };
                self.at = seq;
                if let Some(l) = change.filter(|l| self.scope.holds(&l.path) && (self.visible)(&l.path)) {
                    out.push(l);
                }
            }
            if !out.is_empty() {
                return Ok(out);
            }
        }
    }

    /// Waits until something after the position may concern the watch (cancel-safe).
    pub async fn changed(&mut self) -> bool {
        loop {
            self.rx.borrow_and_update();
            let pending = self.at < self.scan_until
                || self.wanted.as_ref().is_some_and(|w| w.after(self.at).is_none_or(|s| !s.is_empty()));
            if pending {
                return true;
            }
            if self.rx.changed().await.is_err() {
                return false;
            }
        }
    }

    /// One page after the position (advancing it past every position looked at).
    fn read(&mut self, limit: usize) -> Result<Vec<Arc<Logged>>, HubError> {
        let (scope, visible) = (&self.scope, &self.visible);
        let keep = |l: &Logged| scope.holds(&l.path) && visible(&l.path);
        let log = &self.hub.0.log;
        if let Some(page) = log.recent_after(self.at, limit, keep) {
            self.at = page.through;
            return Ok(page.changes);
        }
        let store = self.hub.0.store.clone();
        let at = self.at;
        // Behind the window the log holds only each path's latest change: the watcher is owed
        // no more, so its page is coalesced. Within the window every change is kept and owed
        // (after a restart the recent changes in memory are empty: a watcher resuming there
        // reads the store, and must still get each change once).
        let behind_window = at.saturating_add(log.window()) < log.end();
        let page = blocking(|| ChangeLog::stored_after(store.as_ref(), at, limit, WATCH_SCAN, keep))?;
        self.at = page.through;
        Ok(if behind_window { coalesce(page.changes) } else { page.changes.into_iter().map(Arc::new).collect() })
    }
}

impl Drop for FolderWatch {
    fn drop(&mut self) {
        if let Some(wanted) = self.wanted.take() {
            self.hub.0.interest.leave(&self.scope, wanted);
        }
        let stats = &self.hub.0.stats;
        stats.folder_watches.fetch_sub(1, Ordering::Relaxed);
        stats.subscriptions.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Keeps the last change of each path (in log order): a watcher this far behind needs no more.
pub(super) fn coalesce(changes: Vec<Logged>) -> Vec<Arc<Logged>> {
    let mut seen = HashSet::new();
    let mut kept: Vec<Arc<Logged>> =
        changes.into_iter().rev().filter(|l| seen.insert(l.path.clone())).map(Arc::new).collect();
    kept.reverse();
    kept
}
