//! The shell of one document: the async task around its [`DocCore`]. It receives commands,
//! asks the core for rounds, makes each round's batch durable through [`Durability`], then
//! publishes and answers. It holds no rules: every decision is the core's.
//!
//! The order after a durable commit is fixed: the peer table first (so that a subscription
//! woken by the new head already knows which writes were its own), then the head, then the
//! answers (so that a client that reads right after its write's answer sees the write).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::document::{Answer, Command, DocCore, DocError, FileWriteOutcome, Published, Reply, WriteOutcome};

use super::durability::Durability;
use super::loading::{blocking, read_stored};
use super::registry::{HubStats, WeakRegistry};
use super::shared::{lock, DocShared};
use super::HubError;
use crate::store::Store;

/// Commands taken per wake-up at most (the core bounds each round further).
const MAX_TAKEN: usize = 512;

/// Where the answer to one command goes.
pub(crate) enum Responder {
    /// A write's caller.
    Write(oneshot::Sender<Result<WriteOutcome, HubError>>),
    /// A delete's or a compaction's caller.
    Done(oneshot::Sender<Result<(), HubError>>),
    /// A file write's caller.
    File(oneshot::Sender<Result<FileWriteOutcome, HubError>>),
}

impl Responder {
    fn send(self, answer: Answer) {
        // A caller that went away (its client disconnected) needs no answer.
        match (self, answer) {
            (Responder::Write(tx), Answer::Write(result)) => {
                let _ = tx.send(result.map_err(HubError::from));
            }
            (Responder::Done(tx), Answer::Done(result)) => {
                let _ = tx.send(result.map_err(HubError::from));
            }
            (Responder::File(tx), Answer::File(result)) => {
                let _ = tx.send(result.map_err(HubError::from));
            }
            // The core answers each command with its own kind of answer; never reached.
            (Responder::Write(tx), _) => {
                let _ = tx.send(Err(HubError::Unavailable));
            }
            (Responder::Done(tx), _) => {
                let _ = tx.send(Err(HubError::Unavailable));
            }
            (Responder::File(tx), _) => {
                let _ = tx.send(Err(HubError::Unavailable));
            }
        }
    }
}

/// A command as the shell's mailbox carries it.
pub(crate) type Mail = Command<Responder>;

/// What every shell shares with the hub.
#[derive(Clone)]
pub(crate) struct ShellEnv {
    pub store: Arc<dyn Store>,
    pub durability: Arc<dyn Durability>,
    pub stats: Arc<HubStats>,
    pub registry: WeakRegistry,
}

/// One document's shell.
pub(crate) struct Shell {
    core: DocCore<Responder>,
    shared: Arc<DocShared>,
    rx: mpsc::Receiver<Mail>,
    env: ShellEnv,
    /// How many parked writes this shell has counted in `HubStats::parked_writes`.
    reported_parked: usize,
}

impl Shell {
    pub fn new(core: DocCore<Responder>, shared: Arc<DocShared>, rx: mpsc::Receiver<Mail>, env: ShellEnv) -> Self {
        Shell { core, shared, rx, env, reported_parked: 0 }
    }

    /// Runs until the document is unloaded, the hub goes away, or its state cannot be read
    /// back after a failure.
    pub async fn run(mut self) {
        let guard = ExitGuard { shared: self.shared.clone(), registry: self.env.registry.clone() };
        self.run_loop().await;
        self.core.abandon();
        self.report_parked();
        drop(guard);
    }

    async fn run_loop(&mut self) {
        loop {
            let wake_at = self.core.next_wake();
            tokio::select! {
                cmd = self.rx.recv() => match cmd {
                    Some(cmd) => self.core.submit(cmd, Instant::now()),
                    None => break,
                },
                _ = tokio::time::sleep_until(wake_at) => {}
            }
            for _ in 1..MAX_TAKEN {
                match self.rx.try_recv() {
                    Ok(cmd) => self.core.submit(cmd, Instant::now()),
                    Err(_) => break,
                }
            }
            if !self.run_rounds().await {
                break;
            }
            self.report_parked();
            if self.core.may_unload(Instant::now()) {
                if self.try_unload() {
                    break;
                }
                self.core.stay_loaded(Instant::now());
            }
        }
    }

    /// Runs every round the core has now. False when the shell must stop (the document could
    /// not be read back after a failed round).
    async fn run_rounds(&mut self) -> bool {
        while let Some(mut round) = self.core.plan_round(Instant::now()) {
            for reply in std::mem::take(&mut round.replies) {
                send(reply);
            }
            let Some(batch) = round.batch.take() else { continue };
            match self.env.durability.commit(batch).await {
                Ok(()) => {
                    let committed = self.core.committed(round, self.shared.needs());
                    self.shared.report_bytes(self.core.stored_bytes());
                    if let Some(published) = committed.published {
                        self.publish(published);
                    }
                    committed.replies.into_iter().for_each(send);
                }
                Err(e) => {
                    let failed = self.core.failed(round, DocError::Storage(e.clone()), Instant::now());
                    // Read back first: a client told of the failure then reads what the store
                    // holds (what a restart would find), not the state before the round.
                    let alive = !failed.reload || self.reload().await;
                    failed.replies.into_iter().for_each(send);
                    if !alive {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// Makes a committed round visible (see the module doc for the order).
    fn publish(&self, published: Published) {
        if !published.writers.is_empty() {
            lock(&self.shared.peers).record(&published.writers, |a, b| self.core.union(a, b));
        }
        if published.reset {
            lock(&self.shared.peers).forget_writes();
        }
        self.shared.publish(published);
    }

    /// Rebuilds the core's document from the store after a failed write round; false when the
    /// store cannot be read (the document then leaves memory; the next request loads it again).
    async fn reload(&mut self) -> bool {
        let (store, path) = (self.env.store.clone(), self.shared.path.clone());
        let stored = blocking(|| read_stored(store.as_ref(), &path));
        let reloaded = stored.and_then(|stored| self.core.reload(&stored).map_err(HubError::from));
        match reloaded {
            Ok(published) => {
                self.shared.report_bytes(self.core.stored_bytes());
                if let Some(published) = published {
                    self.publish(published);
                }
                true
            }
            Err(e) => {
                tracing::error!(path = %self.shared.path, error = %e, "reading the document back after a failed commit failed");
                false
            }
        }
    }

    /// Leaves the registry when idle with no subscriber and nothing waiting. Decided under the
    /// registry's lock, where subscriptions are also added: a concurrent request either finds
    /// the document alive or finds nothing and loads it again.
    fn try_unload(&mut self) -> bool {
        let rx = &self.rx;
        let shared = &self.shared;
        self.env.registry.remove_if(shared, || shared.subscribers.load(Ordering::Relaxed) == 0 && rx.is_empty())
    }

    /// Keeps the hub-wide gauge of parked writes in step with this document's.
    fn report_parked(&mut self) {
        let now = self.core.parked_writes();
        let gauge = &self.env.stats.parked_writes;
        if now > self.reported_parked {
            gauge.fetch_add(now - self.reported_parked, Ordering::Relaxed);
        } else {
            gauge.fetch_sub(self.reported_parked - now, Ordering::Relaxed);
        }
        self.reported_parked = now;
    }
}

fn send(reply: Reply<Responder>) {
    reply.to.send(reply.answer);
}

/// Whatever ends the shell, including a panic, the document leaves the registry so the next
/// request loads it afresh from the store. After a panic its subscriptions end too (their
/// clients reconnect and resume with `Parents`), since what they read may be half-changed.
struct ExitGuard {
    shared: Arc<DocShared>,
    registry: WeakRegistry,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        self.registry.remove_if(&self.shared, || true);
        self.shared.closed.store(true, Ordering::Relaxed);
        if panicking {
            tracing::error!(path = %self.shared.path, "document shell panicked; the document will be reloaded");
            self.shared.end_subscriptions();
        }
    }
}
