//! What the hub remembers about peers' own writes, so that their subscriptions do not echo them
//! back (and simpleton writers get their rebase).
//!
//! Kept only for peers with a live subscription to the document, so it is bounded by the
//! subscriptions. The table lives beside the document (`hub::shared`), behind a lock held only
//! for these O(1) updates; the rule of what to record is here.

use std::collections::HashMap;

use crate::protocol::VersionSet;

use super::published::PeerWrite;

/// One peer's writes, as its subscriptions need them.
#[derive(Clone, Debug, Default)]
pub struct PeerWrites {
    /// Count of simpleton writes: a subscription compares it with what it has accounted.
    pub simpleton_writes: u64,
    /// The version of the peer's latest simpleton write: the simpleton client's state.
    pub last_simpleton: VersionSet,
    /// Everything the peer has written: a dt subscriber already has all of it.
    pub known: VersionSet,
}

/// The peers with live subscriptions, and their writes.
#[derive(Debug, Default)]
pub struct PeerTable {
    subscriptions: HashMap<String, usize>,
    writes: HashMap<String, PeerWrites>,
}

impl PeerTable {
    /// A subscription of `peer` starts; returns the peer's simpleton writes so far.
    pub fn subscribe(&mut self, peer: &str) -> u64 {
        *self.subscriptions.entry(peer.to_string()).or_default() += 1;
        self.writes.get(peer).map_or(0, |w| w.simpleton_writes)
    }

    /// A subscription of `peer` ends; the peer is forgotten with its last one.
    pub fn unsubscribe(&mut self, peer: &str) {
        let remaining = match self.subscriptions.get_mut(peer) {
            Some(n) => {
                *n = n.saturating_sub(1);
                *n
            }
            None => 0,
        };
        if remaining == 0 {
            self.subscriptions.remove(peer);
            self.writes.remove(peer);
        }
    }

    /// What `peer` has written, if it is subscribed and wrote anything.
    pub fn get(&self, peer: &str) -> Option<&PeerWrites> {
        self.writes.get(peer)
    }

    /// Whether some subscription of `peer` is live.
    pub fn is_subscribed(&self, peer: &str) -> bool {
        self.subscriptions.contains_key(peer)
    }

    /// Records a round's durable writes of subscribed peers; `union` joins two versions of the
    /// document (the writer's copy computes it).
    pub fn record(&mut self, writes: &[PeerWrite], union: impl Fn(&VersionSet, &VersionSet) -> VersionSet) {
        for w in writes {
            if !self.subscriptions.contains_key(&w.peer) {
                continue;
            }
            let entry = self.writes.entry(w.peer.clone()).or_default();
            entry.known = union(&entry.known, &w.version);
            if w.simpleton {
                entry.simpleton_writes += 1;
                entry.last_simpleton = w.version.clone();
            }
        }
    }

    /// Forgets every write (the document was replaced: the versions they name may be gone).
    pub fn forget_writes(&mut self) {
        self.writes.clear();
    }
}
