//! The state one loaded document shares between its actor, readers and subscribers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::watch;

use crate::protocol::{repr_digest, Update, UpdateContent, VersionSet};
use crate::text::{TextDoc, TextError};

use super::horizon::Horizon;
use super::HubError;

/// How many versions' digests a document keeps.
const DIGESTS_KEPT: usize = 4;

/// What has been made durable and published: readers and subscribers never look past it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    /// The durable current version.
    pub version: VersionSet,
    /// Bumped when the document is deleted: subscriptions of an older generation end.
    pub generation: u64,
}

/// What the hub remembers about a peer's own writes, kept only while that peer has a live
/// subscription to this document (so the map is bounded by the subscriptions).
#[derive(Clone, Debug, Default)]
pub(crate) struct PeerWrites {
    /// Count of simpleton writes: a subscription compares it with what it has accounted.
    pub simpleton_writes: u64,
    /// The version of the peer's latest simpleton write: the simpleton client's state.
    pub last_simpleton: VersionSet,
    /// Everything the peer has written: a dt subscriber already has all of it.
    pub known: VersionSet,
}

/// The mutable part, behind a mutex that is never held across an await.
pub(crate) struct DocState {
    /// The document, possibly ahead of the published head while a commit is in flight.
    pub doc: TextDoc,
    /// Writes of peers that have live subscriptions.
    pub peers: HashMap<String, PeerWrites>,
    /// Live subscriptions per peer.
    pub peer_subscriptions: HashMap<String, usize>,
    /// The repr-digests of the last few versions asked for (newest first), each computed once.
    /// More than one: a subscriber that read the head just before the next one was published
    /// still finds its digest, instead of checking out the whole history to recompute it.
    digests: Vec<(VersionSet, String)>,
    /// The merge horizon, once the document has been compacted.
    pub horizon: Option<Horizon>,
    /// The last simpleton update computed: most subscribers of a document sit at the same
    /// version, so after a write they all need this same update (fan-out computes it once).
    last_xf: Option<SimpletonStep>,
}

/// A simpleton update from one version to another, as computed for one subscriber.
#[derive(Clone, Debug)]
pub(crate) struct SimpletonStep {
    /// The subscriber's version before the update (the update's `Parents`).
    pub from: VersionSet,
    /// The head it was computed against.
    pub head: VersionSet,
    /// The update's `Version`: from ∪ head.
    pub version: VersionSet,
    /// The transformed patches, absolute against the text at `from`.
    pub patches: Vec<crate::protocol::Patch>,
    /// `Repr-Digest` when `version` is the head.
    pub digest: Option<String>,
}

impl DocState {
    pub fn new(doc: TextDoc) -> Self {
        DocState {
            doc,
            peers: HashMap::new(),
            peer_subscriptions: HashMap::new(),
            horizon: None,
            digests: Vec::new(),
            last_xf: None,
        }
    }

    /// Replaces the document by its compacted form: caches and peer bookkeeping name
    /// versions that may be gone, so they start over.
    pub fn install_compacted(&mut self, doc: TextDoc, horizon: Horizon) {
        self.doc = doc;
        self.horizon = Some(horizon);
        self.peers.clear();
        self.digests.clear();
        self.last_xf = None;
    }

    /// The text at `version` and its digest (cached for the last few versions asked).
    pub fn text_and_digest(&mut self, version: &VersionSet) -> Result<(String, String), TextError> {
        let text = self.doc.text_at(version)?;
        if let Some(d) = self.cached_digest(version) {
            return Ok((text, d));
        }
        let digest = repr_digest(&text);
        self.digests.insert(0, (version.clone(), digest.clone()));
        self.digests.truncate(DIGESTS_KEPT);
        Ok((text, digest))
    }

    /// The digest of the text at `version`, without building the text when it is cached.
    pub fn digest_at(&mut self, version: &VersionSet) -> Result<String, TextError> {
        match self.cached_digest(version) {
            Some(d) => Ok(d),
            None => Ok(self.text_and_digest(version)?.1),
        }
    }

    fn cached_digest(&self, version: &VersionSet) -> Option<String> {
        self.digests.iter().find(|(v, _)| v == version).map(|(_, d)| d.clone())
    }

    /// The simpleton update from `from` to `head`, shared between subscribers at `from`.
    pub fn simpleton_step(&mut self, from: &VersionSet, head: &VersionSet) -> Result<SimpletonStep, HubError> {
        if let Some(step) = &self.last_xf {
            if step.from == *from && step.head == *head {
                return Ok(step.clone());
            }
        }
        let patches = self.doc.xf_patches(from, head)?;
        let version = self.doc.union(from, head)?;
        let digest = if version == *head { Some(self.digest_at(head)?) } else { None };
        let step = SimpletonStep { from: from.clone(), head: head.clone(), version, patches, digest };
        self.last_xf = Some(step.clone());
        Ok(step)
    }

    /// The original (dt) history updates for events in `to` but not in `from`, as wire
    /// updates: what GET + `Parents` and dt subscriptions send.
    pub fn history_updates(&self, from: &VersionSet, to: &VersionSet) -> Result<Vec<Update>, HubError> {
        Ok(self
            .doc
            .history_since(from, to)?
            .into_iter()
            .map(|h| Update {
                version: h.version,
                parents: h.parents,
                content: UpdateContent::Patches(vec![h.patch]),
                repr_digest: None,
            })
            .collect())
    }

    /// The ids of `v` that are not part of the published `head` (unknown, or still being
    /// committed), so that a request never sees an unacknowledged edit.
    pub fn unpublished_ids(&self, head: &VersionSet, v: &VersionSet) -> Result<VersionSet, HubError> {
        if let Err(e) = self.doc.check_known(v) {
            return match e {
                TextError::UnknownVersion(ids) => match &self.horizon {
                    Some(h) if h.behind(&ids) => Err(h.gone()),
                    _ => Ok(ids),
                },
                other => Err(HubError::Text(other)),
            };
        }
        let mut missing = Vec::new();
        for id in v.ids() {
            let one = VersionSet::new([id.clone()]);
            if !self.doc.contains(head, &one)? {
                missing.push(id.clone());
            }
        }
        Ok(VersionSet::new(missing))
    }

    /// Records a durable write by `peer`, if that peer is subscribed here.
    pub fn record_peer_write(&mut self, peer: &str, version: &VersionSet, simpleton: bool) {
        if !self.peer_subscriptions.contains_key(peer) {
            return;
        }
        let known = self.peers.get(peer).map(|p| p.known.clone()).unwrap_or_default();
        let union = self.doc.union(&known, version).unwrap_or_else(|_| version.clone());
        let entry = self.peers.entry(peer.to_string()).or_default();
        entry.known = union;
        if simpleton {
            entry.simpleton_writes += 1;
            entry.last_simpleton = version.clone();
        }
    }
}

/// One loaded document.
pub(crate) struct DocShared {
    /// The resource path (the document's identity).
    pub path: String,
    state: Mutex<DocState>,
    /// The published head; subscribers wait on it.
    pub head: watch::Sender<Head>,
    /// Live subscriptions: the actor does not unload the document while any exist.
    pub subscribers: AtomicUsize,
    /// Set (under the registry lock) when the actor has exited; a subscriber that sees it
    /// after registering must start over with a fresh handle.
    pub closed: AtomicBool,
    /// Bytes the document's history occupies in the store, kept current by the actor.
    pub stored_bytes: AtomicU64,
    /// The part of `stored_bytes` that is the history listing's records (the rest is the
    /// document itself: snapshot and log).
    pub listing_bytes: AtomicU64,
}

impl DocShared {
    /// Publishes what is on disk for the document (`None`: nothing, it was deleted).
    pub fn report_bytes(&self, persisted: Option<&super::persist::Persisted>) {
        let (total, listing) = persisted.map_or((0, 0), |p| (p.stored_bytes(), p.history.bytes));
        self.stored_bytes.store(total, std::sync::atomic::Ordering::Relaxed);
        self.listing_bytes.store(listing, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn new(path: String, doc: TextDoc) -> Self {
        let head = Head { version: doc.version(), generation: 0 };
        DocShared {
            path,
            state: Mutex::new(DocState::new(doc)),
            head: watch::Sender::new(head),
            subscribers: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            stored_bytes: AtomicU64::new(0),
            listing_bytes: AtomicU64::new(0),
        }
    }

    /// Locks the state. A panic while it was held cannot have left a half-applied edit
    /// (the text layer validates before it mutates), so a poisoned lock is still usable.
    pub fn lock(&self) -> MutexGuard<'_, DocState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The published head right now.
    pub fn current_head(&self) -> Head {
        self.head.borrow().clone()
    }
}
