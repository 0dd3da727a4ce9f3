//! A live subscription: catch-up first, then every published change, pulled on demand.
//!
//! A subscription holds no queue. It remembers what its client has (`client`) and, each
//! time it is polled after the head moved, computes the one update that brings the client
//! from there to the head. So a subscriber that stops reading costs nothing but this
//! struct, and when it drains it gets a single coalesced catch-up.
//!
//! Simpleton (braid-wire.md §4.2): the client only accepts updates whose `Parents` equal
//! its version. The client's version is what we last sent it, or its own latest write
//! (known through its `Peer`). After its own write merged with concurrent edits it gets a
//! rebase after a short, growing delay (braid-text's backpressure), so a typing client is
//! not flooded with rebases it would drop. A subscription whose `Parents` are unknown
//! waits for them instead of failing (the written simpleton spec).
//!
//! dt: the client keeps full history, so it gets the original updates it lacks; its own
//! writes are never echoed because they count as already known.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::protocol::{MergeType, Update, UpdateContent, VersionSet};

use super::doc::{DocShared, DocState, Head};
use super::registry::HubStats;
use super::{HubError, SubscribeRequest};

/// One subscriber's position and pending work.
pub struct Subscription {
    shared: Arc<DocShared>,
    /// Server-wide counters: this subscription is counted in `subscriptions`.
    stats: Arc<HubStats>,
    head_rx: watch::Receiver<Head>,
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
    /// The document's version when the subscription started (`Current-Version`).
    pub current: VersionSet,
}

impl Subscription {
    /// Builds the subscription and its catch-up. The caller has already counted it in
    /// `shared.subscribers`; dropping it uncounts it.
    pub(crate) fn start(shared: Arc<DocShared>, stats: Arc<HubStats>, req: SubscribeRequest) -> Result<Self, HubError> {
        let head_rx = shared.head.subscribe();
        let head = head_rx.borrow().clone();
        let mut sub = Subscription {
            shared: shared.clone(),
            stats,
            head_rx,
            merge_type: req.merge_type,
            peer: None,
            client: VersionSet::root(),
            waiting_for_parents: false,
            seen_writes: 0,
            generation: head.generation,
            rebase_at: None,
            unsent_rebases: 0,
            max_rebase_delay: req.max_rebase_delay,
            initial: Vec::new(),
            current: head.version.clone(),
        };
        let mut state = shared.lock();
        if let Some(peer) = req.peer {
            *state.peer_subscriptions.entry(peer.clone()).or_default() += 1;
            sub.seen_writes = state.peers.get(&peer).map_or(0, |p| p.simpleton_writes);
            sub.peer = Some(peer);
        }
        sub.initial = sub.catch_up(&mut state, &head.version, req.parents)?;
        drop(state);
        Ok(sub)
    }

    fn catch_up(
        &mut self,
        state: &mut DocState,
        head: &VersionSet,
        parents: Option<VersionSet>,
    ) -> Result<Vec<Update>, HubError> {
        match (self.merge_type, parents) {
            (MergeType::Simpleton, None) => {
                let (text, digest) = state.text_and_digest(head)?;
                self.client = head.clone();
                Ok(vec![Update {
                    version: head.clone(),
                    parents: VersionSet::root(),
                    content: UpdateContent::Snapshot(text),
                    repr_digest: Some(digest),
                }])
            }
            (MergeType::Simpleton, Some(parents)) => {
                self.client = parents;
                if !state.unpublished_ids(head, &self.client)?.is_empty() {
                    self.waiting_for_parents = true;
                    return Ok(Vec::new());
                }
                Ok(self.simpleton_update(state, head)?.into_iter().collect())
            }
            (MergeType::Dt, parents) => {
                let from = parents.unwrap_or_default();
                let unknown = state.unpublished_ids(head, &from)?;
                if !unknown.is_empty() {
                    return Err(HubError::UnknownVersion(unknown));
                }
                let mut updates = Vec::new();
                if from.is_empty() {
                    // braid-text starts a dt stream with an empty version marker.
                    updates.push(Update {
                        version: VersionSet::root(),
                        parents: VersionSet::root(),
                        content: UpdateContent::HeaderOnly,
                        repr_digest: None,
                    });
                }
                self.client = from;
                updates.extend(self.dt_updates(state, head)?);
                Ok(updates)
            }
        }
    }

    /// The next batch of updates to send, or None when the document was deleted.
    /// Waits as long as there is nothing to send.
    pub async fn next(&mut self) -> Option<Vec<Update>> {
        if !self.initial.is_empty() {
            return Some(std::mem::take(&mut self.initial));
        }
        loop {
            let rebase_due = self.rebase_at.is_some_and(|at| at <= Instant::now());
            match self.step(rebase_due) {
                Step::Send(updates) => return Some(updates),
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

    fn step(&mut self, rebase_due: bool) -> Step {
        let head = self.head_rx.borrow_and_update().clone();
        if head.generation != self.generation {
            return Step::End;
        }
        let shared = self.shared.clone();
        let mut state = shared.lock();
        let own_write = self.account_own_writes(&state);
        let result = match self.merge_type {
            MergeType::Simpleton => self.simpleton_step(&mut state, &head.version, own_write, rebase_due),
            MergeType::Dt => self.dt_updates(&mut state, &head.version).map(|u| u.into_iter().collect()),
        };
        match result {
            Ok(updates) if updates.is_empty() => Step::Wait,
            Ok(updates) => Step::Send(updates),
            Err(e) => {
                tracing::warn!(path = %self.shared.path, error = %e, "ending subscription");
                Step::End
            }
        }
    }

    /// Folds the peer's own durable writes into `client`. Returns true when a new
    /// simpleton write was seen.
    fn account_own_writes(&mut self, state: &DocState) -> bool {
        let Some(writes) = self.peer.as_ref().and_then(|p| state.peers.get(p)) else {
            return false;
        };
        match self.merge_type {
            MergeType::Simpleton if writes.simpleton_writes > self.seen_writes => {
                self.seen_writes = writes.simpleton_writes;
                self.client = writes.last_simpleton.clone();
                self.waiting_for_parents = false;
                true
            }
            MergeType::Simpleton => false,
            MergeType::Dt => {
                if let Ok(union) = state.doc.union(&self.client, &writes.known) {
                    self.client = union;
                }
                false
            }
        }
    }

    fn simpleton_step(
        &mut self,
        state: &mut DocState,
        head: &VersionSet,
        own_write: bool,
        rebase_due: bool,
    ) -> Result<Vec<Update>, HubError> {
        if self.waiting_for_parents {
            if !state.unpublished_ids(head, &self.client)?.is_empty() {
                return Ok(Vec::new());
            }
            self.waiting_for_parents = false;
        }
        if self.client == *head {
            self.rebase_at = None;
            self.unsent_rebases = 0;
            return Ok(Vec::new());
        }
        if own_write {
            // The client's own write merged with concurrent edits: rebase it, later.
            self.unsent_rebases += 1;
            let delay = rebase_delay(self.unsent_rebases, self.max_rebase_delay);
            self.rebase_at = Some(Instant::now() + delay);
            return Ok(Vec::new());
        }
        if self.rebase_at.is_some() && !rebase_due {
            return Ok(Vec::new());
        }
        Ok(self.simpleton_update(state, head)?.into_iter().collect())
    }

    /// The update that takes a simpleton client from `client` to the head.
    fn simpleton_update(&mut self, state: &mut DocState, head: &VersionSet) -> Result<Option<Update>, HubError> {
        self.rebase_at = None;
        self.unsent_rebases = 0;
        if self.client == *head {
            return Ok(None);
        }
        let step = state.simpleton_step(&self.client, head)?;
        self.client = step.version.clone();
        Ok(Some(Update {
            version: step.version,
            parents: step.from,
            content: UpdateContent::Patches(step.patches),
            repr_digest: step.digest,
        }))
    }

    fn dt_updates(&mut self, state: &mut DocState, head: &VersionSet) -> Result<Vec<Update>, HubError> {
        if state.doc.contains(&self.client, head)? {
            return Ok(Vec::new());
        }
        let updates = state.history_updates(&self.client, head)?;
        self.client = state.doc.union(&self.client, head)?;
        Ok(updates)
    }
}

enum Step {
    Send(Vec<Update>),
    Wait,
    End,
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
            let mut state = self.shared.lock();
            let remaining = match state.peer_subscriptions.get_mut(peer) {
                Some(n) => {
                    *n = n.saturating_sub(1);
                    *n
                }
                None => 0,
            };
            if remaining == 0 {
                state.peer_subscriptions.remove(peer);
                state.peers.remove(peer);
            }
        }
        self.shared.subscribers.fetch_sub(1, Ordering::SeqCst);
        self.stats.subscriptions.fetch_sub(1, Ordering::SeqCst);
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
