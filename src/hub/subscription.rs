//! A live subscription: catch-up first, then every published change, pulled on demand.
//!
//! A subscription holds no queue. It remembers what its client has (`client`) and, each
//! time it is polled after the head moved, computes the one update that brings the client
//! from there to the head. So a subscriber that stops reading costs nothing but this
//! struct, and when it drains it gets a single coalesced catch-up.
//!
//! Simpleton (the subscription semantics braid-text calls simpleton): the client only accepts
//! updates whose `Parents` equal its version. The client's version is what we last sent it, or
//! its own latest write (known through its `Peer`). After its own write merged with concurrent
//! edits it gets a rebase after a short, growing delay (braid-text's backpressure), so a typing
//! client is not flooded with rebases it would drop. A subscription whose `Parents` are unknown
//! waits for them instead of failing. A subscriber at the previous head (the common case: every
//! subscriber that kept up) takes the update the writer published with the head, without any
//! lock; anything else is computed on the readers' copy of the document.
//!
//! dt: the client keeps full history, so it gets the original updates it lacks; its own
//! writes are never echoed because they count as already known.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::document::{Published, SharedUpdate};
use crate::protocol::{MergeType, Update, UpdateContent, VersionSet};
use crate::store::Store;

use super::loading::blocking;
use super::registry::HubStats;
use super::replica::Replica;
use super::shared::{lock, DocShared};
use super::{Hub, HubError, SubscribeRequest};

/// What a subscription sends next.
#[derive(Clone, Debug)]
pub enum Delivery {
    /// Updates computed for this subscriber.
    Updates(Vec<Update>),
    /// The update every subscriber at the same version gets, shared between them.
    Shared(Arc<SharedUpdate>),
}

impl Delivery {
    /// The updates, copied out.
    pub fn into_updates(self) -> Vec<Update> {
        match self {
            Delivery::Updates(updates) => updates,
            Delivery::Shared(shared) => vec![shared.update.clone()],
        }
    }
}

/// One subscriber's position and pending work.
pub struct Subscription {
    shared: Arc<DocShared>,
    store: Arc<dyn Store>,
    /// Server-wide counters: this subscription is counted in `subscriptions`.
    stats: Arc<HubStats>,
    head_rx: watch::Receiver<Arc<Published>>,
    merge_type: MergeType,
    peer: Option<String>,
    /// Simpleton: the client's version. dt: everything the client has.
    client: VersionSet,
    /// Simpleton only: `client` names events we do not have yet.
    waiting_for_parents: bool,
    /// How many of the peer's own simpleton writes we have accounted for.
    seen_writes: u64,
    generation: u64,
    rebase_at: Option<Instant>,
    unsent_rebases: u32,
    max_rebase_delay: Duration,
    initial: Vec<Update>,
    /// The document was replaced (a new generation of its head): the subscription is over.
    ended: bool,
    /// The document's version when the subscription started (`Current-Version`).
    pub current: VersionSet,
}

enum Step {
    Send(Delivery),
    Wait,
    End,
}

/// What a fan-out writer does for a waiting subscription at a new publication
/// ([`Subscription::fan_out`]).
#[derive(Debug)]
pub enum FanOut<'a> {
    /// Write this shared update, the publication's step (the client now counts as having it).
    Send(&'a SharedUpdate),
    /// Nothing: the client is at the head already.
    Idle,
    /// Anything else (a coalesced catch-up, its peer's own write, the end): the subscription
    /// goes back to a task of its own, which computes what to send.
    Own,
}

impl Hub {
    /// Opens a subscription: counted against the limits, then its catch-up computed on the
    /// readers' copy of the document.
    pub async fn subscribe(&self, path: &str, req: SubscribeRequest) -> Result<Subscription, HubError> {
        let handle = self.attach_subscriber(path).await?;
        let shared = handle.shared.clone();
        if req.merge_type == MergeType::Simpleton {
            shared.simpleton_subscribers.fetch_add(1, Ordering::Relaxed);
        }
        let mut sub = Subscription {
            head_rx: shared.watch(),
            shared,
            store: self.0.store.clone(),
            stats: self.0.stats.clone(),
            merge_type: req.merge_type,
            peer: None,
            client: VersionSet::root(),
            waiting_for_parents: false,
            seen_writes: 0,
            generation: 0,
            rebase_at: None,
            unsent_rebases: 0,
            max_rebase_delay: req.max_rebase_delay,
            initial: Vec::new(),
            ended: false,
            current: VersionSet::root(),
        };
        if let Some(peer) = req.peer {
            sub.seen_writes = lock(&sub.shared.peers).subscribe(&peer);
            sub.peer = Some(peer);
        }
        let (shared, store) = (sub.shared.clone(), sub.store.clone());
        blocking(|| {
            shared.with_replica(store.as_ref(), |replica, published| sub.start(replica, published, req.parents))
        })?;
        Ok(sub)
    }
}

impl Subscription {
    /// The catch-up: what the client gets first.
    fn start(
        &mut self,
        replica: &mut Replica,
        published: &Arc<Published>,
        parents: Option<VersionSet>,
    ) -> Result<(), HubError> {
        self.generation = published.generation;
        self.current = published.head.clone();
        let head = &published.head;
        let horizon = published.horizon.as_deref();
        match (self.merge_type, parents) {
            (MergeType::Simpleton, None) => {
                let (text, digest) = replica.text_and_digest(head)?;
                self.client = head.clone();
                self.initial = vec![Update {
                    version: head.clone(),
                    parents: VersionSet::root(),
                    content: UpdateContent::Snapshot(text),
                    repr_digest: Some(digest),
                }];
            }
            (MergeType::Simpleton, Some(parents)) => {
                self.client = parents;
                if !replica.unpublished_ids(head, &self.client, horizon)?.is_empty() {
                    self.waiting_for_parents = true;
                    return Ok(());
                }
                if self.client != *head {
                    let step = replica.simpleton_step(&self.client, head)?;
                    self.client = step.update.version.clone();
                    self.initial = vec![step.update.clone()];
                }
            }
            (MergeType::Dt, parents) => {
                let from = parents.unwrap_or_default();
                let unknown = replica.unpublished_ids(head, &from, horizon)?;
                if !unknown.is_empty() {
                    return Err(crate::document::DocError::UnknownVersion(unknown).into());
                }
                if from.is_empty() {
                    // braid-text starts a dt stream with an empty version marker.
                    self.initial.push(Update {
                        version: VersionSet::root(),
                        parents: VersionSet::root(),
                        content: UpdateContent::HeaderOnly,
                        repr_digest: None,
                    });
                }
                self.client = from;
                let updates = self.dt_updates(replica, head)?;
                self.initial.extend(updates);
            }
        }
        Ok(())
    }

    /// The next batch of updates to send, or None when the subscription ended (the document
    /// was deleted or replaced, or the server is shutting down). Waits while there is nothing
    /// to send.
    pub async fn next(&mut self) -> Option<Vec<Update>> {
        self.next_delivery().await.map(Delivery::into_updates)
    }

    /// [`next`](Self::next), with updates shared between subscribers left shared.
    pub async fn next_delivery(&mut self) -> Option<Delivery> {
        if !self.initial.is_empty() {
            return Some(Delivery::Updates(std::mem::take(&mut self.initial)));
        }
        loop {
            let rebase_due = self.rebase_at.is_some_and(|at| at <= Instant::now());
            match self.step(rebase_due) {
                Step::Send(delivery) => return Some(delivery),
                Step::End => return None,
                Step::Wait => {}
            }
            let sleep_until = self.rebase_at;
            tokio::select! {
                changed = self.head_rx.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                _ = sleep_opt(sleep_until) => {}
            }
        }
    }

    /// The publication the subscription is at when all it has to do is wait for the next
    /// one: a simpleton subscriber at the head with nothing pending (no catch-up, rebase,
    /// unknown parents or own write to account). Until the head moves, [`fan_out`](Self::fan_out)
    /// can then stand in for [`next_delivery`](Self::next_delivery).
    pub fn idle_at(&mut self) -> Option<Arc<Published>> {
        if self.merge_type != MergeType::Simpleton
            || self.ended
            || self.waiting_for_parents
            || self.rebase_at.is_some()
            || !self.initial.is_empty()
        {
            return None;
        }
        let published = self.head_rx.borrow_and_update().clone();
        let idle = published.generation == self.generation && self.client == published.head;
        (idle && !self.own_write_pending()).then_some(published)
    }

    /// For a subscription that was idle ([`idle_at`](Self::idle_at)) at the head before
    /// `published`: the step every subscriber at the previous head shares (computed here when
    /// the writer left it and `published` is still the newest), or `Own` for anything else.
    /// Takes no lock but the peer table's, and only for a subscription with a `Peer`.
    pub fn fan_out<'a>(&mut self, published: &'a Arc<Published>) -> FanOut<'a> {
        if published.generation != self.generation || self.own_write_pending() {
            return FanOut::Own;
        }
        if self.client == published.head {
            return FanOut::Idle;
        }
        if self.client != published.prev_head {
            return FanOut::Own;
        }
        if published.step.get().is_none() {
            // Computed on the readers' copy, which is at the newest head: only when that is
            // `published` does the step fill its slot.
            let computed = self.on_replica(|sub, replica, newest| match Arc::ptr_eq(newest, published) {
                true => replica.simpleton_step(&sub.client, &newest.head).map(Some),
                false => Ok(None),
            });
            let Ok(Some(step)) = computed else { return FanOut::Own };
            let _ = published.step.set(step);
        }
        let Some(step) = published.step.get() else { return FanOut::Own };
        self.advance(step);
        FanOut::Send(step)
    }

    /// Identifies the subscription's document for as long as the subscription lives (a
    /// fan-out writer serves the subscribers of one document).
    pub fn document_key(&self) -> usize {
        Arc::as_ptr(&self.shared) as usize
    }

    /// A receiver of the document's publications.
    pub fn watch(&self) -> watch::Receiver<Arc<Published>> {
        self.head_rx.clone()
    }

    fn step(&mut self, rebase_due: bool) -> Step {
        let published = self.head_rx.borrow_and_update().clone();
        if published.generation != self.generation {
            return Step::End;
        }
        let result = match self.merge_type {
            MergeType::Simpleton => self.simpleton(&published, rebase_due),
            MergeType::Dt => self.on_replica(|sub, replica, p| {
                let updates = sub.dt_updates(replica, &p.head)?;
                Ok((!updates.is_empty()).then_some(Delivery::Updates(updates)))
            }),
        };
        match result {
            _ if self.ended => Step::End,
            Ok(Some(delivery)) => Step::Send(delivery),
            Ok(None) => Step::Wait,
            Err(e) => {
                tracing::warn!(path = %self.shared.path, error = %e, "ending subscription");
                Step::End
            }
        }
    }

    /// Runs `compute` on the readers' copy brought up to the newest head; a head of another
    /// generation ends the subscription. Inline on the async worker, unlike reads: a
    /// subscriber that keeps up needs O(one round) here, and handing every wake-up of
    /// thousands of subscriptions to another thread (`block_in_place`) starts threads, each with
    /// its own malloc arena (measured: a thousand stalled subscribers then cost 50 MB more).
    fn on_replica<T>(
        &mut self,
        compute: impl FnOnce(&mut Self, &mut Replica, &Arc<Published>) -> Result<Option<T>, HubError>,
    ) -> Result<Option<T>, HubError> {
        let (shared, store) = (self.shared.clone(), self.store.clone());
        shared.with_replica(store.as_ref(), |replica, published| {
            if published.generation != self.generation {
                self.ended = true;
                return Ok(None);
            }
            compute(self, replica, published)
        })
    }

    /// Folds the peer's own durable simpleton writes into `client`. Returns true when a new one
    /// was seen.
    fn account_own_writes(&mut self) -> bool {
        let Some(peer) = &self.peer else { return false };
        let peers = lock(&self.shared.peers);
        let Some(writes) = peers.get(peer) else { return false };
        if writes.simpleton_writes <= self.seen_writes {
            return false;
        }
        self.seen_writes = writes.simpleton_writes;
        self.client = writes.last_simpleton.clone();
        self.waiting_for_parents = false;
        true
    }

    /// Whether the peer's table holds a simpleton write of its own not yet accounted (without
    /// accounting it: `account_own_writes` does that, and schedules the rebase).
    fn own_write_pending(&self) -> bool {
        let Some(peer) = &self.peer else { return false };
        lock(&self.shared.peers).get(peer).is_some_and(|writes| writes.simpleton_writes > self.seen_writes)
    }

    fn simpleton(&mut self, published: &Arc<Published>, rebase_due: bool) -> Result<Option<Delivery>, HubError> {
        let own_write = self.account_own_writes();
        if self.waiting_for_parents {
            return self.on_replica(|sub, replica, p| {
                if !replica.unpublished_ids(&p.head, &sub.client, p.horizon.as_deref())?.is_empty() {
                    return Ok(None);
                }
                sub.waiting_for_parents = false;
                sub.simpleton_update(replica, p)
            });
        }
        if self.client == published.head {
            self.rebase_at = None;
            self.unsent_rebases = 0;
            return Ok(None);
        }
        if own_write {
            // The client's own write merged with concurrent edits: rebase it, later.
            self.unsent_rebases += 1;
            let delay = rebase_delay(self.unsent_rebases, self.max_rebase_delay);
            self.rebase_at = Some(Instant::now() + delay);
            return Ok(None);
        }
        if self.rebase_at.is_some() && !rebase_due {
            return Ok(None);
        }
        if self.client == published.prev_head {
            if let Some(step) = published.step.get() {
                return Ok(Some(self.deliver(step.clone())));
            }
        }
        self.on_replica(|sub, replica, p| sub.simpleton_update(replica, p))
    }

    /// The update that takes a simpleton client from `client` to the head, computed on the
    /// readers' copy (and shared through the head when the client was at the previous one).
    fn simpleton_update(
        &mut self,
        replica: &mut Replica,
        published: &Arc<Published>,
    ) -> Result<Option<Delivery>, HubError> {
        if self.client == published.head {
            return Ok(None);
        }
        let step = replica.simpleton_step(&self.client, &published.head)?;
        if self.client == published.prev_head {
            let _ = published.step.set(step.clone());
        }
        Ok(Some(self.deliver(step)))
    }

    fn deliver(&mut self, step: Arc<SharedUpdate>) -> Delivery {
        self.advance(&step);
        Delivery::Shared(step)
    }

    /// The client gets `step`: it is at its version now.
    fn advance(&mut self, step: &SharedUpdate) {
        self.rebase_at = None;
        self.unsent_rebases = 0;
        self.client.clone_from(&step.update.version);
    }

    /// dt: the original updates the client lacks up to `head`; its peer's own writes count as
    /// known.
    fn dt_updates(&mut self, replica: &Replica, head: &VersionSet) -> Result<Vec<Update>, HubError> {
        let doc = replica.doc();
        if let Some(peer) = &self.peer {
            let known = lock(&self.shared.peers).get(peer).map(|w| w.known.clone());
            if let Some(known) = known {
                if let Ok(union) = doc.union(&self.client, &known) {
                    self.client = union;
                }
            }
        }
        if doc.contains(&self.client, head)? {
            return Ok(Vec::new());
        }
        let updates = replica.history_updates(&self.client, head)?;
        self.client = doc.union(&self.client, head)?;
        Ok(updates)
    }
}

/// braid-text's rebase backoff: min(cap, 23 ms · 1.5^(n−1)).
fn rebase_delay(unsent: u32, cap: Duration) -> Duration {
    let ms = 23.0 * 1.5f64.powi(unsent.saturating_sub(1).min(64) as i32);
    Duration::from_millis(ms as u64).min(cap)
}

async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(peer) = &self.peer {
            lock(&self.shared.peers).unsubscribe(peer);
        }
        if self.merge_type == MergeType::Simpleton {
            self.shared.simpleton_subscribers.fetch_sub(1, Ordering::Relaxed);
        }
        self.shared.subscribers.fetch_sub(1, Ordering::Relaxed);
        self.stats.subscriptions.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebase_delay_grows_then_caps() {
        let cap = Duration::from_secs(3);
        assert_eq!(rebase_delay(1, cap), Duration::from_millis(23));
        assert_eq!(rebase_delay(2, cap), Duration::from_millis(34));
        assert_eq!(rebase_delay(30, cap), cap);
    }
}
