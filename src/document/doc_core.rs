//! [`DocCore`]: one document's state and the life of its rounds (see the module doc of
//! `document` for the contract with the shell).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::file::FileDoc;
use crate::protocol::{MergeType, VersionSet};
use crate::store::Batch;
use crate::text::{EventId, Outcome, TextDoc};

use super::changed;
use super::command::{AckPolicy, Command, CoreSettings, WriteRequest};
use super::compaction::CompactionPlan;
use super::file_rounds::heads_of;
use super::horizon::Horizon;
use super::listing::{Author, HistoryEntry, Listing};
use super::parked::{Parked, ParkedWrite};
use super::published::{PeerWrite, Published, SharedUpdate};
use super::records::{self, Records};
use super::round::{outcome, Accepted, Committed, CompactStaged, Failed, Reply, Round, StagedWrites, Work};
use super::stored::StoredDoc;
use super::write_rules::{judge, Verdict, WriteContext};
use super::DocError;

/// Writes taken into one round at most, so one round's batch stays bounded.
const MAX_ROUND_WRITES: usize = 512;
/// How long writes must pause before the log is folded into a snapshot.
const QUIET_FOLD_AFTER: Duration = Duration::from_millis(500);
/// How long after a failed fold the next is tried.
const FOLD_RETRY: Duration = Duration::from_secs(30);

/// Whether the core can plan a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// Ready for the next round.
    Ready,
    /// A round is out with the shell.
    InFlight,
    /// A round failed after changing the document in memory: it must be rebuilt from the
    /// store (`reload`) before anything else.
    NeedsReload,
}

/// What the subscribers of the document need from a round beyond its head, as the shell counts
/// them when the round commits.
#[derive(Clone, Copy, Debug, Default)]
pub struct Needs {
    /// Some simpleton subscriptions are live: publish the catch-up step when it is cheap.
    pub simpleton: bool,
}

/// One document: its state, the commands waiting, the writes parked, and the rules that turn
/// commands into rounds. `R` is the shell's reply token.
pub struct DocCore<R> {
    pub(super) path: String,
    /// The text, for a text resource (empty for a file or a resource never written).
    pub(super) doc: TextDoc,
    /// The version graph, for a file resource (empty otherwise; see `file_rounds`).
    pub(super) file: FileDoc,
    pub(super) records: Records,
    listing: Listing,
    /// Shared with every publication (it changes only with a compaction).
    pub(super) horizon: Option<Arc<Horizon>>,
    pub(super) settings: CoreSettings,
    queue: VecDeque<Command<R>>,
    parked: Parked<R>,
    /// A round added events: the parked writes may now find their parents.
    retry_parked: bool,
    /// Write rounds committed since the load.
    pub(super) round: u64,
    /// The head as last published: what is durable and visible.
    pub(super) head: VersionSet,
    pub(super) state: State,
    last_activity: Instant,
    /// No quiet fold before this (pushed back after a failed one, so that a full disk is not
    /// retried in a loop).
    fold_not_before: Instant,
}

impl<R> DocCore<R> {
    /// The core of `path` from its stored records, and its first publication.
    pub fn load(
        path: &str,
        stored: &StoredDoc,
        settings: CoreSettings,
        now: Instant,
    ) -> Result<(Self, Published), DocError> {
        let records::Decoded { doc, file, records, listing, horizon } = records::decode(path, stored)?;
        let horizon = horizon.map(Arc::new);
        let head = if file.is_empty() { doc.version() } else { heads_of(&file) };
        let mut published = Published::loaded(head.clone(), horizon.clone());
        published.file = (!file.is_empty()).then(|| Arc::new(file.clone()));
        let core = DocCore {
            path: path.to_string(),
            doc,
            file,
            records,
            listing,
            horizon,
            settings,
            queue: VecDeque::new(),
            parked: Parked::default(),
            retry_parked: false,
            round: 0,
            head,
            state: State::Ready,
            last_activity: now,
            fold_not_before: now,
        };
        Ok((core, published))
    }

    /// The document's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// A copy of the document as it is now (the readers' copy starts from it).
    pub fn doc_copy(&self) -> TextDoc {
        self.doc.clone()
    }

    /// Bytes the document occupies in the store, and the part that is the listing's records.
    pub fn stored_bytes(&self) -> (u64, u64) {
        (self.records.bytes() + self.listing.bytes, self.listing.bytes)
    }

    /// Writes parked now.
    pub fn parked_writes(&self) -> usize {
        self.parked.len()
    }

    /// The union of two versions of the document (for the peer table).
    pub fn union(&self, a: &VersionSet, b: &VersionSet) -> VersionSet {
        self.doc.union(a, b).unwrap_or_else(|_| b.clone())
    }

    /// Drops every queued command and parked write unanswered (the shell is going away: their
    /// callers see the document closed and look it up again).
    pub fn abandon(&mut self) {
        self.queue.clear();
        drop(self.parked.take_all());
    }

    /// Queues a command; it is taken by a later `plan_round`.
    pub fn submit(&mut self, cmd: Command<R>, now: Instant) {
        self.last_activity = now;
        self.queue.push_back(cmd);
    }

    /// When the shell should call `plan_round` again even if no command arrives: the earliest
    /// parked deadline, the quiet fold, or the moment the document may be unloaded.
    pub fn next_wake(&self) -> Instant {
        let idle = self.last_activity + self.settings.idle_unload;
        let mut wake = self.parked.next_deadline().map_or(idle, |d| d.min(idle));
        if self.records.worth_folding() {
            wake = wake.min(self.fold_due());
        }
        wake
    }

    fn fold_due(&self) -> Instant {
        (self.last_activity + QUIET_FOLD_AFTER).max(self.fold_not_before)
    }

    /// Whether the document may leave memory now: idle long enough, nothing queued, parked or
    /// in flight. (The registry also checks that no subscription is live.)
    pub fn may_unload(&self, now: Instant) -> bool {
        self.state == State::Ready
            && self.queue.is_empty()
            && self.parked.is_empty()
            && now >= self.last_activity + self.settings.idle_unload
    }

    /// The shell could not unload the document (a subscription is live, or a command arrived):
    /// counts as activity, so the next idle check is a full idle period away instead of now.
    pub fn stay_loaded(&mut self, now: Instant) {
        self.last_activity = now;
    }

    /// The next round, or None when there is nothing to do now (or a round is out, or the core
    /// waits for `reload`).
    pub fn plan_round(&mut self, now: Instant) -> Option<Round<R>> {
        loop {
            let round = self.plan_once(now)?;
            let empty = round.batch.is_none() && round.replies.is_empty() && matches!(round.work, Work::Nothing);
            if !empty {
                return Some(round);
            }
            // Every write of that round was parked: nothing to do for it, but more commands
            // may be queued behind it.
            if self.queue.is_empty() {
                return None;
            }
        }
    }

    fn plan_once(&mut self, now: Instant) -> Option<Round<R>> {
        if self.state != State::Ready {
            return None;
        }
        let replies = self.parked.expire(now, &self.doc);
        let mut writes: Vec<ParkedWrite<R>> = Vec::new();
        if std::mem::take(&mut self.retry_parked) {
            writes = self.parked.take_all();
        }
        while writes.len() < MAX_ROUND_WRITES {
            match self.queue.pop_front() {
                None => break,
                Some(Command::Write { req, deadline, reply }) => writes.push(ParkedWrite { req, deadline, reply }),
                Some(other) if !writes.is_empty() => {
                    // Writes queued before it go first, in their own round.
                    self.queue.push_front(other);
                    break;
                }
                Some(Command::Delete { reply }) => return Some(self.plan_delete(reply, replies)),
                Some(Command::WriteFile { req, reply }) => return Some(self.plan_file_write(req, reply, replies)),
                Some(Command::PruneFile { keep, reply }) => return Some(self.plan_prune(keep, reply, replies)),
                Some(Command::Compact { plan, reply }) => return Some(self.plan_compaction(*plan, reply, replies)),
            }
        }
        if !writes.is_empty() {
            return Some(self.plan_writes(writes, replies, now));
        }
        if self.records.worth_folding() && now >= self.fold_due() {
            let mut records = self.records.clone();
            let batch = records.fold_batch(&self.path, self.snapshot_record());
            self.state = State::InFlight;
            return Some(Round { batch: Some(batch), replies, work: Work::Fold { records } });
        }
        if replies.is_empty() {
            return None;
        }
        Some(Round { batch: None, replies, work: Work::Nothing })
    }

    /// Applies `writes` in memory and builds the batch that makes them durable.
    fn plan_writes(&mut self, writes: Vec<ParkedWrite<R>>, mut replies: Vec<Reply<R>>, now: Instant) -> Round<R> {
        let before = self.doc.version();
        let mut accepted: Vec<Accepted<R>> = Vec::new();
        let mut linear = true;
        for w in writes {
            let on_tip = w.req.edit.parents.as_ref().is_none_or(|p| *p == self.doc.version());
            let mut ctx = WriteContext {
                path: &self.path,
                is_file: !self.file.is_empty(),
                doc: &mut self.doc,
                horizon: self.horizon.as_deref(),
                max_document_chars: self.settings.max_document_chars,
            };
            match judge(&mut ctx, &w.req) {
                Verdict::Applied(applied) => {
                    linear &= on_tip || applied.added == 0;
                    accepted.push(Accepted { req: w.req, applied, reply: Some(w.reply) });
                }
                Verdict::Wait(unknown) => {
                    let max = self.settings.max_parked_writes;
                    replies.extend(self.parked.park_or_refuse(w, unknown, max, now));
                }
                Verdict::Refused(e) => replies.push(Reply::write(w.reply, Err(e))),
            }
        }
        if !accepted.iter().any(|a| a.applied.added > 0) {
            // Only duplicates and no-ops: everything they name is durable already.
            for a in accepted {
                replies.extend(a.reply.map(|r| Reply::write(r, Ok(outcome(a.applied, &self.head)))));
            }
            return Round { batch: None, replies, work: Work::Nothing };
        }
        let mut records = self.records.clone();
        let mut listing = self.listing.clone();
        let entries: Vec<HistoryEntry> = accepted.iter().filter(|a| a.applied.added > 0).map(history_entry).collect();
        let built = records.round_batch(&self.path, &mut self.doc, &before).and_then(|(mut batch, delta)| {
            listing.record(&self.path, &entries, &mut batch)?;
            if let (Some(last), Some(entry)) = (accepted.iter().rfind(|a| a.applied.added > 0), entries.last()) {
                let change =
                    changed::text_round(&self.path, &self.doc, before.is_empty(), &last.req, &entry.author.agent);
                batch.log(change.entry());
            }
            Ok((batch, delta))
        });
        let (batch, delta) = match built {
            Ok(built) => built,
            Err(e) => {
                // The document holds the round's events in memory but they cannot be made
                // durable: refuse them all and rebuild the document from the store.
                tracing::error!(path = %self.path, error = %e, "could not encode a write round; reloading");
                self.state = State::NeedsReload;
                replies
                    .extend(accepted.into_iter().filter_map(|a| a.reply).map(|r| Reply::write(r, Err(e.duplicate()))));
                return Round { batch: None, replies, work: Work::Nothing };
            }
        };
        if self.settings.ack == AckPolicy::UnsafeBeforeDurable {
            // Test-only: answer now, before the commit, so that crash tests can prove they
            // notice acknowledged writes that were lost.
            let current = self.doc.version();
            for a in &mut accepted {
                let applied = a.applied.clone();
                replies.extend(a.reply.take().map(|r| Reply::write(r, Ok(outcome(applied, &current)))));
            }
        }
        self.state = State::InFlight;
        Round {
            batch: Some(batch),
            replies,
            work: Work::Writes(Box::new(StagedWrites { accepted, records, listing, delta: Arc::new(delta), linear })),
        }
    }

    /// The round that erases the document and its whole history.
    fn plan_delete(&mut self, reply: R, replies: Vec<Reply<R>>) -> Round<R> {
        let mut records = self.records.clone();
        let mut batch = records.delete_batch(&self.path);
        self.drop_file_refs(&mut batch);
        if let Some(kind) = self.kind() {
            batch.log(changed::erased(&self.path, kind).entry());
        }
        self.state = State::InFlight;
        Round { batch: Some(batch), replies, work: Work::Delete { reply, records } }
    }

    /// The round that swaps in a compacted document built from a copy: it adds the writes that
    /// arrived since the copy, and commits snapshot, horizon and listing changes at once.
    fn plan_compaction(&mut self, plan: CompactionPlan, reply: R, mut replies: Vec<Reply<R>>) -> Round<R> {
        match self.stage_compaction(plan) {
            Ok((batch, staged)) => {
                self.state = State::InFlight;
                Round { batch: Some(batch), replies, work: Work::Compact { reply, staged: Box::new(staged) } }
            }
            Err(e) => {
                replies.push(Reply::done(reply, Err(e)));
                Round { batch: None, replies, work: Work::Nothing }
            }
        }
    }

    fn stage_compaction(&self, plan: CompactionPlan) -> Result<(Batch, CompactStaged), DocError> {
        let CompactionPlan { compacted, based_on, horizon, drop_entries, stored_blocks, .. } = plan;
        let generation = self.horizon.as_ref().map_or(0, |h| h.generation);
        if horizon.generation != generation + 1 {
            return Err(DocError::CompactionRaced);
        }
        let mut doc = compacted.doc;
        if self.doc.version() != based_on {
            // Fails if a write behind the new horizon arrived meanwhile: the horizon no longer
            // dominates the history, so this compaction is dropped.
            doc.apply_encoded(&self.doc.encode_since(&based_on)?)?;
        }
        if doc.text() != self.doc.text() {
            return Err(DocError::Corrupt("the compacted document differs; compaction dropped".into()));
        }
        let mut batch = Batch::new();
        let mut records = self.records.clone();
        let mut listing = self.listing.clone();
        records.compaction_into(&self.path, &doc, &mut batch);
        listing.drop_entries(&self.path, &stored_blocks, &drop_entries, &mut batch)?;
        horizon.save(&self.path, &mut batch)?;
        listing.save(&self.path, &mut batch)?;
        batch.log(changed::compaction(&self.path, &doc).entry());
        Ok((batch, CompactStaged { doc, horizon, records, listing }))
    }

    /// The shell made `round` durable: installs what it staged, answers its writes, and says
    /// what to publish. `needs` says what the live subscriptions want precomputed.
    pub fn committed(&mut self, round: Round<R>, needs: Needs) -> Committed<R> {
        self.state = State::Ready;
        let mut replies = round.replies;
        let published = match round.work {
            Work::Nothing => None,
            Work::Fold { records } => {
                self.records = records;
                None
            }
            Work::Writes(staged) => {
                let StagedWrites { accepted, records, listing, delta, linear } = *staged;
                self.records = records;
                self.listing = listing;
                self.round += 1;
                self.retry_parked = true;
                let prev_head = std::mem::replace(&mut self.head, self.doc.version());
                let mut writers = Vec::new();
                for a in accepted {
                    if let Some(w) = peer_write(&a) {
                        writers.push(w);
                    }
                    let reply = a.reply.map(|r| Reply::write(r, Ok(outcome(a.applied, &self.head))));
                    replies.extend(reply);
                }
                let published = Published {
                    head: self.head.clone(),
                    prev_head,
                    round: self.round,
                    reset: false,
                    generation: 0,
                    delta: Some(delta),
                    writers,
                    step: Default::default(),
                    current: Default::default(),
                    horizon: self.horizon.clone(),
                    file: None,
                };
                if needs.simpleton && linear {
                    self.fill_step(&published);
                }
                Some(published)
            }
            Work::Delete { reply, records } => {
                self.records = records;
                self.listing = Listing::default();
                self.horizon = None;
                self.doc = TextDoc::new();
                self.file = FileDoc::new();
                replies.extend(self.parked.refuse_all(|| DocError::Deleted));
                replies.push(Reply::done(reply, Ok(())));
                Some(self.reset_publication())
            }
            Work::Compact { reply, staged } => {
                let CompactStaged { doc, horizon, records, listing } = *staged;
                self.doc = doc;
                self.horizon = Some(Arc::new(horizon));
                self.records = records;
                self.listing = listing;
                replies.push(Reply::done(reply, Ok(())));
                Some(self.reset_publication())
            }
            Work::File(staged) => self.file_committed(*staged, &mut replies),
            Work::Prune { reply, file, records } => {
                self.file = *file;
                self.records = records;
                replies.push(Reply::done(reply, Ok(())));
                self.file_publication()
            }
        };
        Committed { replies, published }
    }

    /// A publication that replaces the document for readers and subscribers.
    fn reset_publication(&mut self) -> Published {
        self.round += 1;
        let head = self.current_head();
        let prev_head = std::mem::replace(&mut self.head, head);
        let mut published = Published::loaded(self.head.clone(), self.horizon.clone());
        published.file = (!self.file.is_empty()).then(|| Arc::new(self.file.clone()));
        published.prev_head = prev_head;
        published.round = self.round;
        published.reset = true;
        published
    }

    /// Computes the simpleton catch-up step from the previous head (and the head's text and
    /// digest) into `published`, for a round that only added to the tip: the transform is a
    /// walk over the round's own operations.
    fn fill_step(&self, published: &Published) {
        // The digest is hashed from the rope; the head's text itself is left for the first
        // reader to fill in (`Published::current`): copying the whole text for every round
        // cost O(document) per write and, under many subscribers, kept the allocator's heap
        // growing with each round's larger copy.
        let digest = self.doc.repr_digest();
        let step = self.doc.xf_patches(&published.prev_head, &published.head).map(|patches| {
            SharedUpdate::simpleton(published.prev_head.clone(), published.head.clone(), patches, Some(digest.clone()))
        });
        match step {
            Ok(step) => {
                let _ = published.step.set(Arc::new(step));
            }
            Err(e) => tracing::warn!(path = %self.path, error = %e, "no catch-up step for the new head"),
        }
    }

    /// Making `round` durable failed with `error`: everyone who waited on it gets the error;
    /// a write round leaves the core waiting for `reload` (diamond-types cannot forget events,
    /// so the durable state is read back); other rounds staged everything and change nothing.
    pub fn failed(&mut self, round: Round<R>, error: DocError, now: Instant) -> Failed<R> {
        let mut replies = round.replies;
        let mut reload = false;
        match round.work {
            Work::Nothing => {}
            Work::Fold { .. } => {
                tracing::warn!(path = %self.path, error = %error, "folding the log failed; retrying in 30 s");
                self.fold_not_before = now + FOLD_RETRY;
            }
            Work::Writes(staged) => {
                reload = true;
                for a in staged.accepted {
                    replies.extend(a.reply.map(|r| Reply::write(r, Err(error.duplicate()))));
                }
            }
            Work::Delete { reply, .. } | Work::Compact { reply, .. } | Work::Prune { reply, .. } => {
                replies.push(Reply::done(reply, Err(error.duplicate())));
            }
            Work::File(staged) => {
                reload = true;
                replies.extend(staged.reply.map(|r| Reply::file(r, Err(error.duplicate()))));
            }
        }
        self.state = if reload { State::NeedsReload } else { State::Ready };
        Failed { replies, reload }
    }

    /// Rebuilds the document from its stored records after a failed write round. Commands
    /// queued and parked writes are kept. Returns a publication when the store holds more than
    /// what was published (a commit that failed after writing: its events are durable, so
    /// they become visible, to every reader at once).
    pub fn reload(&mut self, stored: &StoredDoc) -> Result<Option<Published>, DocError> {
        let records::Decoded { doc, file, records, listing, horizon } = records::decode(&self.path, stored)?;
        self.doc = doc;
        self.file = file;
        self.records = records;
        self.listing = listing;
        self.horizon = horizon.map(Arc::new);
        self.state = State::Ready;
        self.retry_parked = true;
        if self.current_head() == self.head {
            return Ok(None);
        }
        Ok(Some(self.reset_publication()))
    }
}

/// The history listing's entry for a write that added events.
fn history_entry<R>(a: &Accepted<R>) -> HistoryEntry {
    let applied = &a.applied;
    let agent = applied.version.ids().first().and_then(|id| EventId::parse(id).ok()).map(|id| id.agent);
    HistoryEntry {
        version: applied.version.ids().to_vec(),
        parents: applied.parents.ids().to_vec(),
        received_ms: a
            .req
            .received
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        author: Author {
            agent: agent.unwrap_or_default(),
            peer: a.req.peer.clone(),
            principal: a.req.principal.clone(),
        },
        inserted: applied.inserted as u64,
        deleted: applied.deleted as u64,
        restored_from: a.req.restored_from.as_ref().map(|v| v.ids().to_vec()),
    }
}

/// The peer bookkeeping's record of an accepted write. A retried write (duplicate) says
/// nothing new about where its client is: the client may have moved on since its first attempt.
fn peer_write<R>(a: &Accepted<R>) -> Option<PeerWrite> {
    if matches!(a.applied.outcome, Outcome::Empty | Outcome::Duplicate) {
        return None;
    }
    let req: &WriteRequest = &a.req;
    let peer = req.peer.clone()?;
    Some(PeerWrite { peer, version: a.applied.version.clone(), simpleton: req.merge_type == MergeType::Simpleton })
}
