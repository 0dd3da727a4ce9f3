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
#[derive(Clone, Debug, PartialEq, Eq)]
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
pub struct FolderWatch {
    hub: Hub,
    scope: Scope,
    visible: Visible,
    /// The last position delivered (or looked at).
    at: u64,
    end: watch::Receiver<u64>,
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
        let end = log.watch();
        let now = *end.borrow();
        let (at, start) = match since {
            None => (now, Start::Fresh),
            Some(c) if c.check(log.epoch(), now).is_ok() && c.seq >= log.floor() => (c.seq, Start::Resumed),
            Some(_) => (now, Start::Reset),
        };
        let watch = FolderWatch { hub: self.clone(), scope, visible, at, end };
        Ok((watch, start))
    }
}

impl FolderWatch {
    /// The position delivered so far.
    pub fn cursor(&self) -> Cursor {
        Cursor { epoch: self.hub.0.log.epoch(), seq: self.at }
    }

    /// Up to `limit` changes after the position, waiting until there is at least one; None
    /// once the log is gone (the server is shutting down).
    pub async fn next(&mut self, limit: usize) -> Option<Result<Vec<Arc<Logged>>, HubError>> {
        loop {
            let end = *self.end.borrow_and_update();
            if self.at < end {
                match self.read(limit) {
                    Ok(changes) if changes.is_empty() => continue,
                    other => return Some(other),
                }
            }
            self.end.changed().await.ok()?;
        }
    }

    /// Up to `limit` changes after the position that are there now (maybe none).
    pub fn ready(&mut self, limit: usize) -> Result<Vec<Arc<Logged>>, HubError> {
        while self.at < self.hub.0.log.end() {
            let changes = self.read(limit)?;
            if !changes.is_empty() {
                return Ok(changes);
            }
        }
        Ok(Vec::new())
    }

    /// Waits until the log moves past the position (cancel-safe).
    pub async fn changed(&mut self) -> bool {
        loop {
            if self.at < *self.end.borrow_and_update() {
                return true;
            }
            if self.end.changed().await.is_err() {
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
