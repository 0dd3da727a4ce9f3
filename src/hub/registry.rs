//! The registry of loaded documents, and [`Hub`], the entry point of the application core:
//! finds or loads a document's shell, and offers writes, deletes, reads and subscriptions.
//!
//! Lifetime of a loaded document, decided in one place: it enters the registry when first
//! needed (concurrent first requests share one load) and leaves it under the registry's lock,
//! either because its shell is idle with no subscription ([`WeakRegistry::remove_if`]) or
//! because its shell ended. Subscriptions are added under the same lock ([`Registry::attach`]),
//! so a document is never unloaded while one is being opened. The shells hold the registry
//! only weakly: when the hub goes, every shell's mailbox closes and they exit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, OnceCell};
use tokio::time::Instant;

use crate::document::{AckPolicy, Command, CoreSettings, DocCore};
use crate::store::{ChangeLog, CommitStats, Committer, Store};

use super::delta::Sessions;
use super::durability::Durability;
use super::error::SubscriptionLimit;
use super::files::FileStore;
use super::loading::{blocking, read_stored};
use super::replica::Replica;
use super::shared::DocShared;
use super::shell::{Mail, Responder, Shell, ShellEnv};
use super::{HubError, WriteOutcome, WriteRequest};

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
    /// Resumable uploads' limits and lifetime.
    pub uploads: super::uploads::UploadSettings,
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
            uploads: super::uploads::UploadSettings::default(),
        }
    }

    pub(super) fn core(&self) -> CoreSettings {
        CoreSettings {
            max_parked_writes: self.max_parked_writes,
            max_document_chars: self.max_document_chars,
            ack: self.ack,
            idle_unload: self.idle_unload,
        }
    }
}

/// Hub-wide gauges, for the health endpoint and tests.
#[derive(Debug, Default)]
pub struct HubStats {
    /// Writes currently waiting for parents they name.
    pub parked_writes: AtomicUsize,
    /// Live subscriptions on the whole server (folder watches included).
    pub subscriptions: AtomicUsize,
    /// Live folder watches (and long polls, and event streams).
    pub folder_watches: AtomicUsize,
    /// Documents loaded since the start (each load reads the store and starts a shell).
    pub loads: AtomicUsize,
    /// Bytes accepted by `PUT /.plait/chunk/...` since the start (`GET /.plait/chunks`).
    pub received_chunk_bytes: AtomicU64,
    /// Bytes of file bodies (`PUT`/`POST` of a file, upload appends) received since the start.
    pub received_body_bytes: AtomicU64,
}

/// A loaded document as the registry hands it out.
pub(crate) struct DocHandle {
    pub tx: mpsc::Sender<Mail>,
    pub shared: Arc<DocShared>,
}

/// One registry entry. The cell lets concurrent first requests share one load.
#[derive(Default)]
struct Slot {
    cell: OnceCell<Arc<DocHandle>>,
}

type Map = HashMap<String, Arc<Slot>>;

/// Path → loaded document.
#[derive(Clone, Default)]
pub(crate) struct Registry(Arc<Mutex<Map>>);

/// The registry as a shell holds it: weakly, so that shells and registry do not keep each other.
#[derive(Clone)]
pub(crate) struct WeakRegistry(Weak<Mutex<Map>>);

fn lock_map(map: &Mutex<Map>) -> MutexGuard<'_, Map> {
    map.lock().unwrap_or_else(|p| p.into_inner())
}

impl WeakRegistry {
    /// Removes `doc` if it is still the registered one for its path and `decide` (run under the
    /// registry lock) agrees; marks it closed then. Returns whether `decide` agreed.
    pub fn remove_if(&self, doc: &Arc<DocShared>, decide: impl FnOnce() -> bool) -> bool {
        let Some(map) = self.0.upgrade() else {
            doc.closed.store(true, Ordering::Relaxed);
            return true;
        };
        let mut map = lock_map(&map);
        if !decide() {
            return false;
        }
        doc.closed.store(true, Ordering::Relaxed);
        let ours = map.get(&doc.path).and_then(|slot| slot.cell.get()).is_some_and(|h| Arc::ptr_eq(&h.shared, doc));
        if ours {
            map.remove(&doc.path);
        }
        true
    }
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Map> {
        lock_map(&self.0)
    }

    fn weak(&self) -> WeakRegistry {
        WeakRegistry(Arc::downgrade(&self.0))
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

    /// Counts a new subscription on `doc`, unless the document is closing (then look it up
    /// again). Under the registry lock, like the unload decision.
    fn attach(&self, doc: &DocShared) -> Option<usize> {
        let _map = self.lock();
        if doc.closed.load(Ordering::Relaxed) {
            return None;
        }
        Some(doc.subscribers.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// Every loaded document's shared state.
    fn loaded(&self) -> Vec<Arc<DocShared>> {
        self.lock().values().filter_map(|slot| slot.cell.get().map(|h| h.shared.clone())).collect()
    }

    /// Forgets every document: each shell sees its mailbox close once the requests still
    /// holding its handle are gone, and exits.
    fn clear(&self) {
        self.lock().clear();
    }

    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The entry point of the application core. Cloning is cheap (one `Arc`).
#[derive(Clone)]
pub struct Hub(pub(super) Arc<HubInner>);

pub(crate) struct HubInner {
    /// File bytes. Declared before `store` so that it is dropped (and its engine closed)
    /// first: the app waits for the store to close before the process exits.
    pub files: FileStore,
    pub store: Arc<dyn Store>,
    pub durability: Arc<dyn Durability>,
    /// The folders' change log (positions handed out by whoever writes the batches).
    pub log: Arc<ChangeLog>,
    /// Which folder watches each change concerns (told by the log's listener).
    pub interest: Arc<super::interest::Interest>,
    /// The group-commit thread, when durability is RocksDB's (for its counters).
    pub committer: Option<Committer>,
    pub settings: HubSettings,
    pub stats: Arc<HubStats>,
    registry: Registry,
    /// Delta-exchange sessions (`delta`).
    pub deltas: Sessions,
    /// Resumable uploads in use (`uploads`).
    pub uploads: super::uploads::Uploads,
}

/// Lookups retried when a document is unloaded under our feet.
const MAX_LOOKUPS: usize = 8;

impl Hub {
    /// A hub over `store`, making rounds durable through the group-commit thread `committer`,
    /// with file bytes in `files`.
    pub fn new(store: Arc<dyn Store>, committer: Committer, settings: HubSettings, files: FileStore) -> Self {
        let durability: Arc<dyn Durability> = Arc::new(committer.clone());
        let log = committer.log().clone();
        Hub::build(store, durability, log, Some(committer), settings, files)
    }

    /// A hub whose rounds are made durable by `durability` (tests inject failures this way).
    /// `log` is the change log `durability` writes the batches' entries into.
    pub fn with_durability(
        store: Arc<dyn Store>,
        durability: Arc<dyn Durability>,
        log: Arc<ChangeLog>,
        settings: HubSettings,
        files: FileStore,
    ) -> Self {
        Hub::build(store, durability, log, None, settings, files)
    }

    fn build(
        store: Arc<dyn Store>,
        durability: Arc<dyn Durability>,
        log: Arc<ChangeLog>,
        committer: Option<Committer>,
        settings: HubSettings,
        files: FileStore,
    ) -> Self {
        let interest = Arc::new(super::interest::Interest::default());
        let told = Arc::downgrade(&interest);
        log.set_listener(Box::new(move |changes| {
            if let Some(interest) = told.upgrade() {
                interest.publish(changes);
            }
        }));
        Hub(Arc::new(HubInner {
            files,
            store,
            durability,
            log,
            interest,
            committer,
            settings,
            stats: Arc::default(),
            registry: Registry::default(),
            deltas: Sessions::default(),
            uploads: Default::default(),
        }))
    }

    /// Shuts the hub down: every document shell exits once the requests using it are gone.
    pub fn close(&self) {
        self.0.registry.clear();
    }

    /// Ends every open subscription (their streams finish; clients resume with `Parents`),
    /// for shutdown: through each document's published head, so that a stream waits on one
    /// channel only (B4 in docs/BENCHMARKS.md).
    pub fn end_subscriptions(&self) {
        for shared in self.0.registry.loaded() {
            shared.end_subscriptions();
        }
    }

    /// How many documents are in memory now.
    pub fn loaded_documents(&self) -> usize {
        self.0.registry.len()
    }

    /// Live subscriptions right now.
    pub fn subscriptions(&self) -> usize {
        self.0.stats.subscriptions.load(Ordering::Relaxed)
    }

    /// Live folder watches (209 watches, event streams, long polls), within `subscriptions`.
    pub fn folder_watches(&self) -> usize {
        self.0.stats.folder_watches.load(Ordering::Relaxed)
    }

    /// Writes waiting for missing parents right now.
    pub fn parked_writes(&self) -> usize {
        self.0.stats.parked_writes.load(Ordering::Relaxed)
    }

    /// Documents loaded from the store since the start.
    pub fn loads(&self) -> usize {
        self.0.stats.loads.load(Ordering::Relaxed)
    }

    /// Counts the bytes of a chunk accepted over the wire. Sync clients and their tests read
    /// the totals (`GET /.plait/chunks`) to check that a delta sent only a delta.
    pub fn count_chunk_bytes(&self, n: usize) {
        self.0.stats.received_chunk_bytes.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Counts the bytes of a file body frame received (a file write or an upload append).
    pub fn count_body_bytes(&self, n: usize) {
        self.0.stats.received_body_bytes.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// (chunk bytes, file body bytes) received since the start.
    pub fn received_bytes(&self) -> (u64, u64) {
        let s = &self.0.stats;
        (s.received_chunk_bytes.load(Ordering::Relaxed), s.received_body_bytes.load(Ordering::Relaxed))
    }

    /// The group-commit counters, when durability is the group-commit thread's.
    pub fn commit_stats(&self) -> Option<&CommitStats> {
        self.0.committer.as_ref().map(Committer::stats)
    }

    pub(crate) async fn doc(&self, path: &str) -> Result<Arc<DocHandle>, HubError> {
        for _ in 0..MAX_LOOKUPS {
            let slot = self.0.registry.slot(path);
            let handle = slot.cell.get_or_try_init(|| self.load(path)).await?.clone();
            if !handle.shared.closed.load(Ordering::Relaxed) {
                return Ok(handle);
            }
            self.0.registry.forget(path, &slot);
        }
        Err(HubError::Unavailable)
    }

    /// Reads the document's records, builds its core and the readers' copy (off the scheduler:
    /// decoding is O(history)), and starts its shell.
    async fn load(&self, path: &str) -> Result<Arc<DocHandle>, HubError> {
        let (store, owned, settings) = (self.0.store.clone(), path.to_string(), self.0.settings.core());
        let (core, first, replica) = blocking(|| {
            let stored = read_stored(store.as_ref(), &owned)?;
            let (core, first) = DocCore::<Responder>::load(&owned, &stored, settings, Instant::now())?;
            let replica = Replica::new(core.doc_copy(), first.round);
            Ok::<_, HubError>((core, first, replica))
        })?;
        self.0.stats.loads.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(DocShared::new(path.to_string(), first, replica));
        shared.report_bytes(core.stored_bytes());
        let (tx, rx) = mpsc::channel(1024);
        let env = ShellEnv {
            store: self.0.store.clone(),
            durability: self.0.durability.clone(),
            stats: self.0.stats.clone(),
            registry: self.0.registry.weak(),
        };
        tokio::spawn(Shell::new(core, shared.clone(), rx, env).run());
        Ok(Arc::new(DocHandle { tx, shared }))
    }

    /// Sends a command to the document's shell and waits for its answer, looking the document
    /// up again when it was unloaded in between.
    pub(super) async fn command<T>(
        &self,
        path: &str,
        make: impl Fn(oneshot::Sender<Result<T, HubError>>) -> Mail,
    ) -> Result<T, HubError> {
        for _ in 0..MAX_LOOKUPS {
            let handle = self.doc(path).await?;
            let (reply, answer) = oneshot::channel();
            if handle.tx.send(make(reply)).await.is_err() {
                continue; // the shell exited between lookup and send: look up again
            }
            match answer.await {
                Ok(result) => return result,
                // Dropped unanswered: only a shell that was leaving does that.
                Err(_) if handle.shared.closed.load(Ordering::Relaxed) => continue,
                Err(_) => return Err(HubError::Unavailable),
            }
        }
        Err(HubError::Unavailable)
    }

    /// Applies one edit; returns once it is durable.
    pub async fn write(&self, path: &str, req: WriteRequest) -> Result<WriteOutcome, HubError> {
        let deadline = Instant::now() + self.0.settings.parents_wait;
        let req = Box::new(req);
        self.command(path, |reply| Command::Write { req: req.clone(), deadline, reply: Responder::Write(reply) }).await
    }

    /// Deletes a document and its whole history; its subscriptions end.
    pub async fn delete(&self, path: &str) -> Result<(), HubError> {
        self.command(path, |reply| Command::Delete { reply: Responder::Done(reply) }).await
    }

    /// Sends a prepared compaction to the document's shell.
    pub(crate) async fn install_compaction(
        &self,
        handle: &DocHandle,
        plan: crate::document::CompactionPlan,
    ) -> Result<(), HubError> {
        let (reply, answer) = oneshot::channel();
        let mail = Command::Compact { plan: Box::new(plan), reply: Responder::Done(reply) };
        handle.tx.send(mail).await.map_err(|_| HubError::Unavailable)?;
        answer.await.map_err(|_| HubError::Unavailable)?
    }

    /// Counts a new subscription on the document of `path` against the limits, returning its
    /// handle (see `subscription` for the rest).
    pub(crate) async fn attach_subscriber(&self, path: &str) -> Result<Arc<DocHandle>, HubError> {
        for _ in 0..MAX_LOOKUPS {
            let handle = self.doc(path).await?;
            let Some(on_doc) = self.0.registry.attach(&handle.shared) else { continue };
            let total = self.0.stats.subscriptions.fetch_add(1, Ordering::Relaxed) + 1;
            let settings = &self.0.settings;
            if on_doc > settings.max_subscriptions_per_doc || total > settings.max_subscriptions {
                handle.shared.subscribers.fetch_sub(1, Ordering::Relaxed);
                self.0.stats.subscriptions.fetch_sub(1, Ordering::Relaxed);
                let limit = if on_doc > settings.max_subscriptions_per_doc {
                    SubscriptionLimit::PerDocument(settings.max_subscriptions_per_doc)
                } else {
                    SubscriptionLimit::Server(settings.max_subscriptions)
                };
                return Err(HubError::TooManySubscriptions(limit));
            }
            return Ok(handle);
        }
        Err(HubError::Unavailable)
    }
}
