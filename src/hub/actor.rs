//! The document actor: the single writer of one document.
//!
//! Each turn it takes every queued command, applies the writes in memory, makes them
//! durable with ONE commit (which the committer may further share with other documents),
//! and only then publishes the new head and acknowledges. A write whose parents are not
//! known yet is parked until they arrive or its deadline passes (then 309).
//! If a commit fails, the in-memory document is reloaded from the store, so nothing that
//! was not acknowledged survives in memory either.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::protocol::{MergeType, VersionSet};
use crate::store::{Batch, Committer, Store};
use crate::text::{Applied, EventId, Outcome, TextDoc, TextError};

use super::compaction::Plan;
use super::doc::{DocShared, Head};
use super::history::{Author, HistoryEntry};
use super::horizon::Horizon;
use super::persist::{self, Persisted};
use super::registry::HubStats;
use super::registry::Registry;
use super::{AckPolicy, HubError, HubSettings, WriteOutcome, WriteRequest};

pub(crate) type Reply<T> = oneshot::Sender<Result<T, HubError>>;

/// A request to the actor.
pub(crate) enum Command {
    Write { req: Box<WriteRequest>, deadline: Instant, reply: Reply<WriteOutcome> },
    Delete { reply: Reply<()> },
    Compact { plan: Box<Plan>, reply: Reply<()> },
}

struct PendingWrite {
    req: Box<WriteRequest>,
    deadline: Instant,
    reply: Reply<WriteOutcome>,
}

/// A write applied in memory this round, waiting for its commit.
struct AppliedWrite {
    req: Box<WriteRequest>,
    applied: Applied,
    /// Taken when answered (early, only under `AckPolicy::UnsafeBeforeDurable`).
    reply: Option<Reply<WriteOutcome>>,
}

impl AppliedWrite {
    fn answer(&mut self, result: Result<WriteOutcome, HubError>) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(result);
        }
    }
}

/// What the actor needs from the hub; cloned into each actor.
#[derive(Clone)]
pub(crate) struct ActorEnv {
    pub stats: Arc<HubStats>,
    pub store: Arc<dyn Store>,
    pub committer: Committer,
    pub settings: HubSettings,
    pub registry: Registry,
}

pub(crate) struct Actor {
    shared: Arc<DocShared>,
    rx: mpsc::Receiver<Command>,
    env: ActorEnv,
    persisted: Persisted,
    parked: Vec<PendingWrite>,
    /// How many parked writes this actor has counted in `HubStats::parked_writes`.
    reported_parked: usize,
    last_activity: Instant,
    /// No quiet fold before this (pushed back after a failed one, so a full disk is not
    /// retried in a loop).
    fold_not_before: Instant,
}

/// Commands taken per turn, so one turn's commit stays bounded.
const MAX_TURN: usize = 512;
/// How long writes must pause before the log is folded into a snapshot.
const QUIET_FOLD_AFTER: std::time::Duration = std::time::Duration::from_millis(500);
/// How long after a failed fold the next is tried.
const FOLD_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

impl Actor {
    pub fn new(shared: Arc<DocShared>, rx: mpsc::Receiver<Command>, env: ActorEnv, persisted: Persisted) -> Self {
        shared.report_bytes(Some(&persisted));
        let now = Instant::now();
        Actor {
            shared,
            rx,
            env,
            persisted,
            parked: Vec::new(),
            reported_parked: 0,
            last_activity: now,
            fold_not_before: now,
        }
    }

    pub async fn run(mut self) {
        let guard = ExitGuard { shared: self.shared.clone(), registry: self.env.registry.clone() };
        self.run_loop().await;
        self.parked.clear();
        self.report_parked();
        drop(guard);
    }

    async fn run_loop(&mut self) {
        loop {
            let wake_at = self.next_deadline();
            let first = tokio::select! {
                cmd = self.rx.recv() => match cmd {
                    Some(cmd) => Some(cmd),
                    None => break,
                },
                _ = tokio::time::sleep_until(wake_at) => None,
            };
            match first {
                Some(cmd) => {
                    self.last_activity = Instant::now();
                    let mut cmds = vec![cmd];
                    while cmds.len() < MAX_TURN {
                        match self.rx.try_recv() {
                            Ok(cmd) => cmds.push(cmd),
                            Err(_) => break,
                        }
                    }
                    self.turn(cmds).await;
                    self.report_parked();
                    if self.shared.closed.load(Ordering::SeqCst) {
                        break;
                    }
                }
                None => {
                    self.expire_parked();
                    self.report_parked();
                    self.fold_if_quiet().await;
                    if self.try_unload() {
                        break;
                    }
                }
            }
        }
    }

    /// Keeps the hub-wide gauge of parked writes in step with this actor's list.
    fn report_parked(&mut self) {
        let now = self.parked.len();
        let gauge = &self.env.stats.parked_writes;
        if now > self.reported_parked {
            gauge.fetch_add(now - self.reported_parked, Ordering::Relaxed);
        } else {
            gauge.fetch_sub(self.reported_parked - now, Ordering::Relaxed);
        }
        self.reported_parked = now;
    }

    fn next_deadline(&self) -> Instant {
        let idle = self.last_activity + self.env.settings.idle_unload;
        let first = self.parked.iter().map(|p| p.deadline).fold(idle, Instant::min);
        match self.persisted.worth_folding() {
            true => first.min(self.fold_due()),
            false => first,
        }
    }

    fn fold_due(&self) -> Instant {
        (self.last_activity + QUIET_FOLD_AFTER).max(self.fold_not_before)
    }

    /// Folds the log into a snapshot once writes have paused (see `Persisted::fold_batch`).
    /// A failed fold changes nothing durable and is only logged: the log stays loadable.
    async fn fold_if_quiet(&mut self) {
        if !self.persisted.worth_folding() || Instant::now() < self.fold_due() {
            return;
        }
        let batch = {
            let state = self.shared.lock();
            self.persisted.fold_batch(&self.shared.path, &state.doc)
        };
        if let Err(e) = self.env.committer.commit(batch).await {
            tracing::warn!(path = %self.shared.path, error = %e, "folding the log failed; retrying in 30 s");
            self.fold_not_before = Instant::now() + FOLD_RETRY;
            // The fold reset the log counters; the store still has the log: read them back.
            let version = self.shared.current_head().version;
            self.reload(&version);
        }
        self.shared.report_bytes(Some(&self.persisted));
    }

    /// Leaves the registry when idle, with no subscriber and nothing parked. Done under
    /// the registry lock so a concurrent lookup either finds us alive or finds nothing.
    fn try_unload(&mut self) -> bool {
        if !self.parked.is_empty() || Instant::now() < self.last_activity + self.env.settings.idle_unload {
            return false;
        }
        self.env.registry.remove_if(&self.shared, || {
            if self.shared.subscribers.load(Ordering::SeqCst) == 0 && self.rx.is_empty() {
                self.shared.closed.store(true, Ordering::SeqCst);
                true
            } else {
                false
            }
        })
    }

    fn expire_parked(&mut self) {
        let now = Instant::now();
        let (expired, kept): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.parked).into_iter().partition(|p| p.deadline <= now);
        self.parked = kept;
        if expired.is_empty() {
            return;
        }
        let state = self.shared.lock();
        for p in expired {
            let parents = p.req.edit.parents.clone().unwrap_or_default();
            let unknown = match state.doc.check_known(&parents) {
                Err(TextError::UnknownVersion(ids)) => ids,
                _ => parents,
            };
            let _ = p.reply.send(Err(HubError::UnknownVersion(unknown)));
        }
    }

    async fn turn(&mut self, cmds: Vec<Command>) {
        let mut writes = Vec::new();
        for cmd in cmds {
            match cmd {
                Command::Write { req, deadline, reply } => writes.push(PendingWrite { req, deadline, reply }),
                Command::Delete { reply } => {
                    self.write_round(std::mem::take(&mut writes)).await;
                    let result = self.delete().await;
                    let _ = reply.send(result);
                }
                Command::Compact { plan, reply } => {
                    self.write_round(std::mem::take(&mut writes)).await;
                    let result = self.install_compaction(*plan).await;
                    let _ = reply.send(result);
                }
            }
        }
        self.write_round(writes).await;
    }

    /// Applies `writes` (and any parked write they unblock) and commits them together.
    async fn write_round(&mut self, mut writes: Vec<PendingWrite>) {
        while !writes.is_empty() {
            let added = self.apply_and_commit(writes).await;
            writes = if added && !self.parked.is_empty() { std::mem::take(&mut self.parked) } else { Vec::new() };
        }
    }

    /// Returns whether any event was added (so parked writes may now proceed).
    async fn apply_and_commit(&mut self, writes: Vec<PendingWrite>) -> bool {
        let mut done: Vec<AppliedWrite> = Vec::new();
        let shared = self.shared.clone();
        let (before, batch) = {
            let mut state = shared.lock();
            let before = state.doc.version();
            for w in writes {
                let limit = self.env.settings.max_document_chars;
                if max_len_after(state.doc.len_chars(), &w.req.edit) > limit {
                    let _ = w.reply.send(Err(HubError::DocumentTooLarge { limit }));
                    continue;
                }
                if let Some(h) = state.horizon.as_ref().filter(|h| h.refuses_parents(w.req.edit.parents.as_ref())) {
                    let _ = w.reply.send(Err(h.gone()));
                    continue;
                }
                match state.doc.apply_checked(w.req.edit.clone(), w.req.expect_sha256) {
                    Ok(applied) => done.push(AppliedWrite { req: w.req, applied, reply: Some(w.reply) }),
                    Err(TextError::UnknownVersion(ids)) => match &state.horizon {
                        // Folded away by compaction: they will never arrive, so no waiting.
                        Some(h) if h.behind(&ids) => {
                            let _ = w.reply.send(Err(h.gone()));
                        }
                        _ => self.park_or_refuse(w, ids),
                    },
                    // A retry of a write that compaction folded away.
                    Err(TextError::PrunedVersion { .. }) if state.horizon.is_some() => {
                        let gone = state.horizon.as_ref().map(Horizon::gone).unwrap_or(HubError::Unavailable);
                        let _ = w.reply.send(Err(gone));
                    }
                    Err(e) => {
                        let _ = w.reply.send(Err(HubError::Text(e)));
                    }
                }
            }
            let added = done.iter().any(|d| d.applied.added > 0);
            let batch = if added { Some(self.batch_for(&mut state.doc, &before, &done)) } else { None };
            if added && self.env.settings.ack == AckPolicy::UnsafeBeforeDurable {
                // Test-only: answer now, before the commit, so crash tests can prove they
                // notice acknowledged writes that were lost.
                let current = state.doc.version();
                for d in &mut done {
                    let applied = d.applied.clone();
                    d.answer(Ok(WriteOutcome { applied, current: current.clone() }));
                }
            }
            (before, batch)
        };
        let Some(batch) = batch else {
            // Only duplicates and no-ops: everything they name is already durable.
            let current = self.shared.current_head().version;
            for mut d in done {
                let applied = d.applied.clone();
                d.answer(Ok(WriteOutcome { applied, current: current.clone() }));
            }
            return false;
        };
        let committed = match batch {
            Ok(batch) => self.env.committer.commit(batch).await.map_err(HubError::Storage),
            Err(e) => Err(e),
        };
        self.shared.report_bytes(Some(&self.persisted));
        match committed {
            Ok(()) => {
                let current = self.publish(&done);
                for mut d in done {
                    let applied = d.applied.clone();
                    d.answer(Ok(WriteOutcome { applied, current: current.clone() }));
                }
                true
            }
            Err(e) => {
                tracing::error!(path = %self.shared.path, error = %e, "commit failed; reloading document from the store");
                self.reload(&before);
                for mut d in done {
                    d.answer(Err(e.duplicate()));
                }
                false
            }
        }
    }

    /// The durable form of this round: the document's new record and one history entry per
    /// write that added events.
    fn batch_for(&mut self, doc: &mut TextDoc, before: &VersionSet, done: &[AppliedWrite]) -> Result<Batch, HubError> {
        let mut batch = self.persisted.batch_for(&self.shared.path, doc, before)?;
        let entries: Vec<HistoryEntry> = done.iter().filter(|d| d.applied.added > 0).map(history_entry).collect();
        self.persisted.history.record(&self.shared.path, &entries, &mut batch)?;
        Ok(batch)
    }

    /// A write whose parents are unknown waits for them until its deadline, unless too
    /// many writes already wait on this document.
    fn park_or_refuse(&mut self, w: PendingWrite, unknown: VersionSet) {
        let waiting = w.deadline > Instant::now();
        if waiting && self.parked.len() < self.env.settings.max_parked_writes {
            self.parked.push(w);
        } else if waiting {
            let _ = w.reply.send(Err(HubError::Overloaded));
        } else {
            let _ = w.reply.send(Err(HubError::UnknownVersion(unknown)));
        }
    }

    /// Makes the committed state visible: peer bookkeeping, then the new head.
    fn publish(&self, done: &[AppliedWrite]) -> VersionSet {
        let mut state = self.shared.lock();
        for AppliedWrite { req: w, applied, .. } in done {
            // A retried write (duplicate) says nothing new about where its client is: the
            // client may have moved on with updates since its first attempt.
            if matches!(applied.outcome, Outcome::Empty | Outcome::Duplicate) {
                continue;
            }
            if let Some(peer) = &w.peer {
                let simpleton = w.merge_type == MergeType::Simpleton;
                state.record_peer_write(peer, &applied.version, simpleton);
            }
        }
        let version = state.doc.version();
        if self.shared.subscribers.load(Ordering::Relaxed) > 0 {
            // Live simpleton updates carry the head's digest. Take it now, while the head is the
            // tip (one hash of the text): once the next round is applied, the text at the head
            // would need a checkout of the whole history for every update (found by benchmark B2).
            if let Err(e) = state.digest_at(&version) {
                tracing::warn!(path = %self.shared.path, error = %e, "no digest for the new head");
            }
        }
        drop(state);
        self.shared.head.send_modify(|h| h.version = version.clone());
        version
    }

    /// Throws away unacknowledged in-memory edits by reading the document back.
    fn reload(&mut self, before: &VersionSet) {
        match persist::load(self.env.store.as_ref(), &self.shared.path) {
            Ok((doc, persisted)) => {
                self.shared.report_bytes(Some(&persisted));
                self.persisted = persisted;
                self.shared.lock().doc = doc;
            }
            Err(e) => {
                // diamond-types cannot roll back in memory and the store cannot be read:
                // leave the registry so the next request loads the document afresh.
                tracing::error!(path = %self.shared.path, error = %e, version = %before.to_header(), "reload failed");
                self.env.registry.remove_if(&self.shared, || {
                    self.shared.closed.store(true, Ordering::SeqCst);
                    true
                });
            }
        }
    }

    /// Swaps in a compacted document built from a copy: adds the writes that arrived since
    /// the copy, commits snapshot, horizon and listing changes at once, then publishes and ends
    /// the document's subscriptions (their versions may be gone; clients resume or get 410).
    async fn install_compaction(&mut self, plan: Plan) -> Result<(), HubError> {
        let Plan { compacted, based_on, horizon, drop_entries, .. } = plan;
        let mut doc = compacted.doc;
        let (before, batch) = {
            let state = self.shared.lock();
            if state.doc.version() != based_on {
                // Fails if a write behind the new horizon arrived meanwhile: the horizon no
                // longer dominates the history, so this compaction is dropped.
                doc.apply_encoded(&state.doc.encode_since(&based_on)?)?;
            }
            if doc.text() != state.doc.text() {
                return Err(HubError::Corrupt("the compacted document differs; compaction dropped".into()));
            }
            let batch = self.persisted.compaction_batch(
                self.env.store.as_ref(),
                &self.shared.path,
                &doc,
                &horizon,
                &drop_entries,
            );
            (state.doc.version(), batch)
        };
        let committed = match batch {
            Ok(batch) => self.env.committer.commit(batch).await.map_err(HubError::Storage),
            Err(e) => Err(e),
        };
        if let Err(e) = committed {
            self.reload(&before);
            return Err(e);
        }
        self.shared.report_bytes(Some(&self.persisted));
        let version = {
            let mut state = self.shared.lock();
            state.install_compacted(doc, horizon);
            state.doc.version()
        };
        self.shared.head.send_modify(|h| {
            h.version = version;
            h.generation += 1;
        });
        Ok(())
    }

    async fn delete(&mut self) -> Result<(), HubError> {
        let batch = self.persisted.delete_batch(&self.shared.path);
        self.env.committer.commit(batch).await.map_err(HubError::Storage)?;
        self.shared.report_bytes(None);
        {
            let mut state = self.shared.lock();
            state.doc = crate::text::TextDoc::new();
            state.peers.clear();
        }
        let generation = self.shared.current_head().generation + 1;
        self.shared.head.send_replace(Head { version: VersionSet::root(), generation });
        for p in std::mem::take(&mut self.parked) {
            let _ = p.reply.send(Err(HubError::Deleted));
        }
        Ok(())
    }
}

/// The history listing's entry for a write that added events.
fn history_entry(write: &AppliedWrite) -> HistoryEntry {
    let applied = &write.applied;
    let agent = applied.version.ids().first().and_then(|id| EventId::parse(id).ok()).map(|id| id.agent);
    HistoryEntry {
        version: applied.version.ids().to_vec(),
        parents: applied.parents.ids().to_vec(),
        received_ms: write
            .req
            .received
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        author: Author {
            agent: agent.unwrap_or_default(),
            peer: write.req.peer.clone(),
            principal: write.req.principal.clone(),
        },
        inserted: applied.inserted as u64,
        deleted: applied.deleted as u64,
        restored_from: write.req.restored_from.as_ref().map(|v| v.ids().to_vec()),
    }
}

/// An upper bound of the document's length after `edit`: a snapshot replaces the text, and
/// patches can at most add what they insert (deletes only shrink it).
fn max_len_after(current: usize, edit: &crate::text::Edit) -> usize {
    match &edit.change {
        crate::text::Change::Snapshot(text) => text.chars().count(),
        crate::text::Change::Patches(patches) => {
            current.saturating_add(patches.iter().map(|p| p.content.chars().count()).sum::<usize>())
        }
    }
}

/// Whatever ends the actor, including a panic, the document leaves the registry so the next
/// request loads it afresh from the store. After a panic its subscriptions are ended too
/// (their clients reconnect and resume with `Parents`), since the in-memory state they read
/// may be half-changed.
struct ExitGuard {
    shared: Arc<DocShared>,
    registry: Registry,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        self.registry.remove_if(&self.shared, || {
            self.shared.closed.store(true, Ordering::SeqCst);
            true
        });
        if panicking {
            tracing::error!(path = %self.shared.path, "document actor panicked; the document will be reloaded");
            self.shared.head.send_modify(|h| h.generation += 1);
        }
    }
}
