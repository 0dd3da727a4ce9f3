//! [`DocShared`]: what one loaded document shares between its writer (the shell around its
//! document core), its readers and its subscribers.
//!
//! The writer publishes each committed round as an immutable [`Published`] through a `watch`;
//! readers and subscribers take it without any lock. The readers' copy of the document
//! (`replica`) has its own lock, which the writer never takes, and follows the writer through a
//! short feed of the rounds' deltas. The peer table's lock is held only for O(1) updates.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::document::{Needs, PeerTable, Published};
use crate::store::Store;

use super::replica::{Feed, FeedEntry, Replica};
use super::HubError;

/// One loaded document.
pub(crate) struct DocShared {
    /// The resource path (the document's identity).
    pub path: String,
    published: watch::Sender<Arc<Published>>,
    feed: Mutex<Feed>,
    replica: Mutex<Option<Replica>>,
    /// The writes of peers that have live subscriptions.
    pub peers: Mutex<PeerTable>,
    /// Live subscriptions; changed only under the registry's lock when one is added, so that a
    /// document is never unloaded while a subscription is being opened on it.
    pub subscribers: AtomicUsize,
    /// Live simpleton subscriptions: the writer precomputes their catch-up step when cheap.
    pub simpleton_subscribers: AtomicUsize,
    /// Set under the registry's lock when the document leaves memory (its shell is gone or
    /// going): a request that holds its handle must look it up again.
    pub closed: AtomicBool,
    /// Bytes the document occupies in the store, and the part that is the listing's records.
    pub stored_bytes: AtomicU64,
    pub listing_bytes: AtomicU64,
}

/// Locks `m`; a panic while it was held cannot have left these small tables half-changed in a
/// way that matters more than losing the request that panicked.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl DocShared {
    /// A document as loaded: its first publication and the readers' copy.
    pub fn new(path: String, first: Published, replica: Replica) -> Self {
        DocShared {
            path,
            published: watch::Sender::new(Arc::new(first)),
            feed: Mutex::new(Feed::default()),
            replica: Mutex::new(Some(replica)),
            peers: Mutex::new(PeerTable::default()),
            subscribers: AtomicUsize::new(0),
            simpleton_subscribers: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            stored_bytes: AtomicU64::new(0),
            listing_bytes: AtomicU64::new(0),
        }
    }

    /// The published head right now.
    pub fn published(&self) -> Arc<Published> {
        self.published.borrow().clone()
    }

    /// A receiver that wakes on every publication.
    pub fn watch(&self) -> watch::Receiver<Arc<Published>> {
        self.published.subscribe()
    }

    /// Makes a committed round visible: its delta goes to the feed first, then the head to
    /// every reader and subscriber at once.
    pub fn publish(&self, mut published: Published) {
        let mut feed = lock(&self.feed);
        let generation = self.published.borrow().generation;
        published.generation = if published.reset { generation + 1 } else { generation };
        if published.reset || published.delta.is_some() {
            feed.push(FeedEntry { round: published.round, reset: published.reset, delta: published.delta.clone() });
        }
        self.published.send_replace(Arc::new(published));
    }

    /// Ends every subscription (they see a new generation; clients resume with `Parents`).
    pub fn end_subscriptions(&self) {
        let _feed = lock(&self.feed);
        let ended = self.published.borrow().ended();
        self.published.send_replace(Arc::new(ended));
    }

    /// What the live subscriptions want precomputed by the writer.
    pub fn needs(&self) -> Needs {
        Needs { simpleton: self.simpleton_subscribers.load(Ordering::Relaxed) > 0 }
    }

    /// Runs `read` on the readers' copy brought up to the published head (which `read` gets
    /// too: it must bound what it computes by it). Blocking: call it off the scheduler.
    pub fn with_replica<T>(
        &self,
        store: &dyn Store,
        read: impl FnOnce(&mut Replica, &Arc<Published>) -> Result<T, HubError>,
    ) -> Result<T, HubError> {
        let target = self.published();
        let mut slot = lock(&self.replica);
        let caught_up = match slot.take() {
            Some(mut replica) => replica.catch_up(&lock(&self.feed), target.round).then_some(replica),
            None => None,
        };
        let current = match caught_up {
            Some(replica) => replica,
            None => Replica::rebuild(store, &self.path, target.round, &target.head)?,
        };
        let replica = slot.insert(current);
        read(replica, &target)
    }

    /// Records what the document occupies in the store.
    pub fn report_bytes(&self, (total, listing): (u64, u64)) {
        self.stored_bytes.store(total, Ordering::Relaxed);
        self.listing_bytes.store(listing, Ordering::Relaxed);
    }
}
