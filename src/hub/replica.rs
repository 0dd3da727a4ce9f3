//! The readers' copy of a document: reads and subscriptions compute on it, never on the
//! writer's, so that readers never wait for the writer and the writer never waits for readers.
//!
//! Why a copy: diamond-types' log cannot be shared between a thread that appends to it and
//! threads that walk it, and the walks readers need (an old version's text, the updates since a
//! version, a simpleton catch-up after a merge) are O(history). So each loaded document has two
//! copies of its log: the writer's (inside the document core) and this one, behind its own lock.
//! This copy follows the writer's by adding each committed round's delta (`Published::delta`,
//! kept in a short feed beside the document), lazily, when a reader needs it; it is rebuilt from
//! the store when it fell too far behind or the document was replaced (a delete, a compaction).
//! Every computation is bounded by the published head the reader holds, never by how far this
//! copy happens to be.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::document::{decode_text, Horizon, SharedUpdate};
use crate::protocol::{repr_digest, Update, UpdateContent, VersionSet};
use crate::store::Store;
use crate::text::{TextDoc, TextError};

use super::loading::read_stored;
use super::HubError;

/// How many versions' digests a copy keeps.
const DIGESTS_KEPT: usize = 4;
/// Rounds the feed keeps for a copy to catch up with, at most...
const FEED_ROUNDS: usize = 1024;
/// ...and bytes of deltas: a copy further behind is rebuilt from the store instead.
const FEED_BYTES: usize = 8 << 20;
/// Rebuilds retried when the store was read while a fold changed it.
const REBUILD_TRIES: usize = 8;

/// One committed round as the readers' copy needs it.
pub(crate) struct FeedEntry {
    pub round: u64,
    /// The document was replaced: a copy must be rebuilt.
    pub reset: bool,
    pub delta: Option<Arc<Vec<Vec<u8>>>>,
}

/// The last committed rounds, oldest first, bounded by [`FEED_ROUNDS`] and [`FEED_BYTES`].
#[derive(Default)]
pub(crate) struct Feed {
    entries: VecDeque<FeedEntry>,
    bytes: usize,
}

impl Feed {
    pub fn push(&mut self, entry: FeedEntry) {
        self.bytes += delta_bytes(&entry);
        self.entries.push_back(entry);
        while self.entries.len() > FEED_ROUNDS || (self.bytes > FEED_BYTES && self.entries.len() > 1) {
            if let Some(old) = self.entries.pop_front() {
                self.bytes = self.bytes.saturating_sub(delta_bytes(&old));
            }
        }
    }

    /// The deltas of rounds `after + 1 ..= upto`, or None when one is missing or a reset.
    fn since(&self, after: u64, upto: u64) -> Option<Vec<Arc<Vec<Vec<u8>>>>> {
        let mut out = Vec::new();
        let mut next = after + 1;
        for e in self.entries.iter().filter(|e| e.round > after && e.round <= upto) {
            if e.round != next || e.reset {
                return None;
            }
            out.push(e.delta.clone()?);
            next += 1;
        }
        (next == upto + 1).then_some(out)
    }
}

fn delta_bytes(e: &FeedEntry) -> usize {
    e.delta.as_ref().map_or(0, |d| d.iter().map(Vec::len).sum())
}

/// The readers' copy of one document.
pub(crate) struct Replica {
    doc: TextDoc,
    /// The last round whose delta it holds.
    round: u64,
    /// The repr-digests of the last few versions asked for (newest first), each computed once.
    digests: Vec<(VersionSet, String)>,
    /// The last simpleton update computed: subscribers of a document mostly sit at the same
    /// version, so after a write they all need this same update (computed once).
    last_step: Option<(VersionSet, VersionSet, Arc<SharedUpdate>)>,
}

impl Replica {
    /// A copy of `doc`, which holds every round up to `round`.
    pub fn new(doc: TextDoc, round: u64) -> Self {
        Replica { doc, round, digests: Vec::new(), last_step: None }
    }

    /// Reads the document from the store again, as of round `round` whose head is `head`. The
    /// records are read one by one while the writer goes on, so a fold committing in between can
    /// show an old snapshot without its log: such a read misses `head` and is tried again.
    pub fn rebuild(store: &dyn Store, path: &str, round: u64, head: &VersionSet) -> Result<Self, HubError> {
        for _ in 0..REBUILD_TRIES {
            let stored = read_stored(store, path)?;
            match decode_text(path, &stored) {
                Ok(doc) if doc.check_known(head).is_ok() => return Ok(Replica::new(doc, round)),
                Ok(_) | Err(_) => continue,
            }
        }
        tracing::error!(%path, "the readers' copy could not be rebuilt from the store");
        Err(HubError::Unavailable)
    }

    /// Brings the copy up to round `upto` with the feed's deltas; false when it cannot (the
    /// feed no longer has them, or the document was replaced): then it must be rebuilt.
    pub fn catch_up(&mut self, feed: &Feed, upto: u64) -> bool {
        if self.round >= upto {
            return true;
        }
        let Some(deltas) = feed.since(self.round, upto) else { return false };
        for delta in deltas {
            if let Err(e) = self.doc.add_delta(&delta) {
                tracing::warn!(error = %e, "the readers' copy could not add a round; rebuilding it");
                return false;
            }
        }
        self.round = upto;
        true
    }

    /// The document as this copy has it.
    pub fn doc(&self) -> &TextDoc {
        &self.doc
    }

    /// The text at `version` and its digest (cached for the last few versions asked).
    pub fn text_and_digest(&mut self, version: &VersionSet) -> Result<(String, String), HubError> {
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
    pub fn digest_at(&mut self, version: &VersionSet) -> Result<String, HubError> {
        match self.cached_digest(version) {
            Some(d) => Ok(d),
            None => Ok(self.text_and_digest(version)?.1),
        }
    }

    fn cached_digest(&self, version: &VersionSet) -> Option<String> {
        self.digests.iter().find(|(v, _)| v == version).map(|(_, d)| d.clone())
    }

    /// The simpleton update from `from` to `head`, shared between subscribers at `from`.
    pub fn simpleton_step(&mut self, from: &VersionSet, head: &VersionSet) -> Result<Arc<SharedUpdate>, HubError> {
        if let Some((f, h, step)) = &self.last_step {
            if f == from && h == head {
                return Ok(step.clone());
            }
        }
        let patches = self.doc.xf_patches(from, head)?;
        let version = self.doc.union(from, head)?;
        let digest = if version == *head { Some(self.digest_at(head)?) } else { None };
        let step = Arc::new(SharedUpdate::simpleton(from.clone(), version, patches, digest));
        self.last_step = Some((from.clone(), head.clone(), step.clone()));
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

    /// The ids of `v` that are not part of the published `head` (unknown, or not yet
    /// published), so that a request never sees an unacknowledged edit; an error when some are
    /// behind the `horizon`.
    pub fn unpublished_ids(
        &self,
        head: &VersionSet,
        v: &VersionSet,
        horizon: Option<&Horizon>,
    ) -> Result<VersionSet, HubError> {
        if let Err(e) = self.doc.check_known(v) {
            return match e {
                TextError::UnknownVersion(ids) => match horizon {
                    Some(h) if h.behind(&ids) => Err(h.gone().into()),
                    _ => Ok(ids),
                },
                other => Err(other.into()),
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
}
