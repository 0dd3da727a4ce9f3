//! The hub: finds or loads the actor of a path, and offers reads, writes and subscriptions.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, OnceCell};
use tokio::time::Instant;

use crate::protocol::VersionSet;
use crate::store::{Committer, Store};

use super::actor::{Actor, ActorEnv, Command};
use super::doc::DocShared;
use super::error::SubscriptionLimit;
use super::persist;
use super::subscription::Subscription;
use super::{HubError, ReadOutcome, ReadRequest, SubscribeRequest, WriteOutcome, WriteRequest};

/// Tunables of the hub, set from the configuration.
#[derive(Clone, Debug)]
pub struct HubSettings {
    /// How long a write waits for unknown parents before it is answered 309.
    pub parents_wait: Duration,
    /// A document with no activity and no subscriber for this long is unloaded.
    pub idle_unload: Duration,
    /// Writes that may wait for missing parents on one document at once.
    pub max_parked_writes: usize,
    /// When writes are acknowledged.
    pub ack: AckPolicy,
    /// Live subscriptions allowed on one document.
    pub max_subscriptions_per_doc: usize,
    /// Live subscriptions allowed on the whole server.
    pub max_subscriptions: usize,
    /// Largest document, in code points; a write that could grow a document past it is refused.
    pub max_document_chars: usize,
}

/// When a write is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckPolicy {
    /// After it is durable: the only policy for real use.
    AfterDurable,
    /// Before it is durable. Exists only so crash tests can prove that they detect lost
    /// acknowledged writes (hidden flag `--unsafe-ack-before-durable-ms`).
    UnsafeBeforeDurable,
}

impl HubSettings {
    /// The defaults of `plait serve`.
    pub fn standard() -> Self {
        HubSettings {
            parents_wait: Duration::from_secs(3),
            idle_unload: Duration::from_secs(60),
            max_parked_writes: 1024,
            ack: AckPolicy::AfterDurable,
            max_subscriptions_per_doc: 10_000,
            max_subscriptions: 100_000,
            max_document_chars: 32 << 20,
        }
    }
}

/// Hub-wide gauges, for the health endpoint and tests.
#[derive(Debug, Default)]
pub struct HubStats {
    /// Writes currently waiting for parents they name.
    pub parked_writes: std::sync::atomic::AtomicUsize,
    /// Live subscriptions on the whole server.
    pub subscriptions: std::sync::atomic::AtomicUsize,
}

/// A loaded document as the registry hands it out.
pub(crate) struct DocHandle {
    pub tx: mpsc::Sender<Command>,
    pub shared: Arc<DocShared>,
}

/// One registry entry. The cell lets concurrent first requests share one load.
#[derive(Default)]
pub(crate) struct Slot {
    cell: OnceCell<Arc<DocHandle>>,
}

/// Path → loaded document.
#[derive(Clone, Default)]
pub(crate) struct Registry(Arc<Mutex<HashMap<String, Arc<Slot>>>>);

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Slot>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Removes the entry of `doc` if it is still the registered one for its path and
    /// `decide` (run under the registry lock) agrees. Returns whether `decide` agreed.
    pub(crate) fn remove_if(&self, doc: &Arc<DocShared>, decide: impl FnOnce() -> bool) -> bool {
        let mut map = self.lock();
        if !decide() {
            return false;
        }
        let ours =
            map.get(&doc.path).and_then(|slot| slot.cell.get()).is_some_and(|handle| Arc::ptr_eq(&handle.shared, doc));
        if ours {
            map.remove(&doc.path);
        }
        true
    }

    fn slot(&self, path: &str) -> Arc<Slot> {
        self.lock().entry(path.to_string()).or_default().clone()
    }

    fn forget(&self, path: &str, slot: &Arc<Slot>) {
        let mut map = self.lock();
        if map.get(path).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            map.remove(path);
        }
    }

    /// Every loaded document's shared state.
    fn loaded(&self) -> Vec<Arc<DocShared>> {
        self.lock().values().filter_map(|slot| slot.cell.get().map(|h| h.shared.clone())).collect()
    }

    /// Forgets every document. Each actor then sees its mailbox close once the requests
    /// still holding its handle are gone, and exits.
    fn clear(&self) {
        self.lock().clear();
    }

    /// How many documents are loaded.
    pub fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The entry point of the application core.
#[derive(Clone)]
pub struct Hub {
    pub(super) env: ActorEnv,
}

/// Lookups retried when a document is unloaded under our feet.
const MAX_LOOKUPS: usize = 8;

impl Hub {
    /// A hub over `store`, committing through `committer`.
    pub fn new(store: Arc<dyn Store>, committer: Committer, settings: HubSettings) -> Self {
        Hub { env: ActorEnv { stats: Arc::default(), store, committer, settings, registry: Registry::default() } }
    }

    /// Shuts the hub down: every document actor exits once the requests using it are gone,
    /// releasing its share of the store. The actors hold the registry themselves, so without
    /// this they would keep each other (and the store) alive until idle unloading.
    pub fn close(&self) {
        self.env.registry.clear();
    }

    /// Ends every open subscription (their streams finish; clients resume with `Parents`),
    /// for shutdown. Done here, through each document's head, so that a stream waits on one
    /// channel, not also on a server-wide shutdown signal that every one of 10,000 streams
    /// would register with and leave again on every update (B4 in docs/BENCHMARKS.md).
    pub fn end_subscriptions(&self) {
        for shared in self.env.registry.loaded() {
            shared.head.send_modify(|h| h.generation += 1);
        }
    }

    /// How many documents are in memory now.
    pub fn loaded_documents(&self) -> usize {
        self.env.registry.len()
    }

    /// Live subscriptions right now.
    pub fn subscriptions(&self) -> usize {
        self.env.stats.subscriptions.load(Ordering::Relaxed)
    }

    /// Writes waiting for missing parents right now.
    pub fn parked_writes(&self) -> usize {
        self.env.stats.parked_writes.load(Ordering::Relaxed)
    }

    /// The group-commit counters.
    pub fn committer(&self) -> &Committer {
        &self.env.committer
    }

    pub(crate) async fn doc(&self, path: &str) -> Result<Arc<DocHandle>, HubError> {
        for _ in 0..MAX_LOOKUPS {
            let slot = self.env.registry.slot(path);
            let handle = slot.cell.get_or_try_init(|| self.load(path)).await?.clone();
            if !handle.shared.closed.load(Ordering::SeqCst) {
                return Ok(handle);
            }
            self.env.registry.forget(path, &slot);
        }
        Err(HubError::Unavailable)
    }

    async fn load(&self, path: &str) -> Result<Arc<DocHandle>, HubError> {
        let store = self.env.store.clone();
        let owned = path.to_string();
        let (doc, persisted) = run_load(move || persist::load(store.as_ref(), &owned)).await?;
        let shared = Arc::new(DocShared::new(path.to_string(), doc));
        shared.lock().horizon = persisted.horizon.clone();
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(Actor::new(shared.clone(), rx, self.env.clone(), persisted).run());
        Ok(Arc::new(DocHandle { tx, shared }))
    }

    /// Applies one edit; returns once it is durable.
    pub async fn write(&self, path: &str, req: WriteRequest) -> Result<WriteOutcome, HubError> {
        let deadline = Instant::now() + self.env.settings.parents_wait;
        let req = Box::new(req);
        for _ in 0..MAX_LOOKUPS {
            let handle = self.doc(path).await?;
            let (reply, answer) = oneshot::channel();
            if handle.tx.send(Command::Write { req: req.clone(), deadline, reply }).await.is_err() {
                continue; // the actor exited between lookup and send: look up again
            }
            match answer.await {
                Ok(result) => return result,
                // Dropped unanswered: only an actor that was unloading does that.
                Err(_) if handle.shared.closed.load(Ordering::SeqCst) => continue,
                Err(_) => return Err(HubError::Unavailable),
            }
        }
        Err(HubError::Unavailable)
    }

    /// Deletes a document and its whole history; its subscriptions end.
    pub async fn delete(&self, path: &str) -> Result<(), HubError> {
        for _ in 0..MAX_LOOKUPS {
            let handle = self.doc(path).await?;
            let (reply, answer) = oneshot::channel();
            if handle.tx.send(Command::Delete { reply }).await.is_err() {
                continue;
            }
            match answer.await {
                Ok(result) => return result,
                Err(_) if handle.shared.closed.load(Ordering::SeqCst) => continue,
                Err(_) => return Err(HubError::Unavailable),
            }
        }
        Err(HubError::Unavailable)
    }

    /// Reads the text at a version, or the updates between two versions.
    pub async fn read(&self, path: &str, req: ReadRequest) -> Result<ReadOutcome, HubError> {
        let handle = self.doc(path).await?;
        let head = handle.shared.current_head().version;
        let mut state = handle.shared.lock();
        let mut unknown: Vec<String> = Vec::new();
        for v in [&req.version, &req.parents].into_iter().flatten() {
            unknown.extend(state.unpublished_ids(&head, v)?.ids().iter().cloned());
        }
        if !unknown.is_empty() {
            return Err(HubError::UnknownVersion(VersionSet::new(unknown)));
        }
        let target = req.version.clone().unwrap_or_else(|| head.clone());
        let horizon = state.horizon.as_ref().map(|h| h.version_set());
        match &req.parents {
            Some(parents) if *parents != target => {
                let updates = state.history_updates(parents, &target)?;
                Ok(ReadOutcome::History { updates, current: head, horizon })
            }
            _ => {
                let (text, digest) = state.text_and_digest(&target)?;
                Ok(ReadOutcome::Snapshot { text, version: target, current: head, digest, horizon })
            }
        }
    }

    /// Opens a subscription (see [`Subscription`]).
    pub async fn subscribe(&self, path: &str, req: SubscribeRequest) -> Result<Subscription, HubError> {
        for _ in 0..MAX_LOOKUPS {
            let handle = self.doc(path).await?;
            // Register first, then check `closed`: paired with the actor's check of the
            // count before it sets `closed`, one of the two always sees the other.
            let on_doc = handle.shared.subscribers.fetch_add(1, Ordering::SeqCst) + 1;
            if handle.shared.closed.load(Ordering::SeqCst) {
                handle.shared.subscribers.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            let total = self.env.stats.subscriptions.fetch_add(1, Ordering::SeqCst) + 1;
            let settings = &self.env.settings;
            if on_doc > settings.max_subscriptions_per_doc || total > settings.max_subscriptions {
                handle.shared.subscribers.fetch_sub(1, Ordering::SeqCst);
                self.env.stats.subscriptions.fetch_sub(1, Ordering::SeqCst);
                let limit = if on_doc > settings.max_subscriptions_per_doc {
                    SubscriptionLimit::PerDocument(settings.max_subscriptions_per_doc)
                } else {
                    SubscriptionLimit::Server(settings.max_subscriptions)
                };
                return Err(HubError::TooManySubscriptions(limit));
            }
            return Subscription::start(handle.shared.clone(), self.env.stats.clone(), req);
        }
        Err(HubError::Unavailable)
    }
}

/// Runs a document load off the async scheduler. On the multi-threaded runtime it runs in place
/// (`block_in_place`: the worker's other tasks move to another thread meanwhile), so the load
/// and the read that follows it share the calling thread's warm heap instead of a fresh
/// blocking-pool thread and its fresh malloc arena (measured as B3's cold reads in
/// docs/BENCHMARKS.md). Elsewhere (the current-thread runtime of unit tests) it goes to the
/// blocking pool.
async fn run_load<T: Send + 'static>(
    load: impl FnOnce() -> Result<T, HubError> + Send + 'static,
) -> Result<T, HubError> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    if Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread {
        return tokio::task::block_in_place(load);
    }
    tokio::task::spawn_blocking(load).await.map_err(|_| HubError::Unavailable)?
}
