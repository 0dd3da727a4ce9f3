//! [`Published`]: what a committed round makes visible, as one immutable value that readers and
//! subscribers take from a `watch` channel without any lock.
//!
//! Why: the writer must never wait for readers, and readers must never wait for the writer. So
//! the writer publishes, after each durable round, everything a reader of the new head needs:
//! the head, the round's delta (for the readers' own copy of the document, `hub::replica`), and
//! the catch-up step shared by every simpleton subscriber that was at the previous head. What is
//! expensive to compute and often unneeded (the head's text and digest; the step when the round
//! merged concurrent writes) is a slot filled once, by the first reader that needs it.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::file::FileDoc;
use crate::protocol::{Patch, Update, UpdateContent, VersionSet};

use super::horizon::Horizon;

/// The head of a document as of one committed round.
#[derive(Debug)]
pub struct Published {
    /// The durable current version.
    pub head: VersionSet,
    /// The head before this round (equal to `head` for publications that add no events).
    pub prev_head: VersionSet,
    /// Write rounds committed since the document was loaded: orders the deltas.
    pub round: u64,
    /// True when the document was replaced (deleted, compacted, reloaded): subscriptions end
    /// (their clients resume with `Parents`) and readers' copies are rebuilt from the store.
    pub reset: bool,
    /// Bumped by every reset (and by the shell when it ends every subscription): a subscription
    /// ends when it sees a generation other than its own.
    pub generation: u64,
    /// The round's delta as diamond-types files, for the readers' copy of the document.
    pub delta: Option<Arc<Vec<Vec<u8>>>>,
    /// The round's writes by peers, in order (what the subscriptions of those peers account
    /// as their own, so that they are not echoed).
    pub writers: Vec<PeerWrite>,
    /// The update that takes a simpleton subscriber from `prev_head` to `head`: filled by the
    /// writer when the round only added to the tip (cheap), else by the first subscriber that
    /// needs it.
    pub step: OnceLock<Arc<SharedUpdate>>,
    /// The text at `head` and its digest: filled by the first reader that needs them (the writer
    /// never copies the whole text; it hashes the digest for the step from the rope).
    pub current: OnceLock<Arc<Current>>,
    /// The merge horizon, once the document was compacted.
    pub horizon: Option<Arc<Horizon>>,
    /// A file resource's version graph as of `head` (None for text): readers and subscribers
    /// of files need nothing else (the bytes are in the chunk store).
    pub file: Option<Arc<FileDoc>>,
}

impl Published {
    /// The publication of a document as loaded: nothing happened yet.
    pub fn loaded(head: VersionSet, horizon: Option<Arc<Horizon>>) -> Self {
        Published {
            prev_head: head.clone(),
            head,
            round: 0,
            reset: false,
            generation: 0,
            delta: None,
            writers: Vec::new(),
            step: OnceLock::new(),
            current: OnceLock::new(),
            horizon,
            file: None,
        }
    }

    /// The same head, one generation on: every subscription ends (shutdown, a panicked writer).
    pub fn ended(&self) -> Self {
        Published {
            head: self.head.clone(),
            prev_head: self.head.clone(),
            round: self.round,
            reset: false,
            generation: self.generation + 1,
            delta: None,
            writers: Vec::new(),
            step: OnceLock::new(),
            current: self.current.clone(),
            horizon: self.horizon.clone(),
            file: self.file.clone(),
        }
    }
}

/// The text of the head and its `Repr-Digest`.
#[derive(Debug)]
pub struct Current {
    /// The text, UTF-8.
    pub text: Bytes,
    /// `sha-256=:…:` of the text.
    pub digest: String,
}

/// A write by a peer, as its subscriptions account it.
#[derive(Clone, Debug)]
pub struct PeerWrite {
    /// The writer's `Peer`.
    pub peer: String,
    /// The write's version.
    pub version: VersionSet,
    /// Whether it was a simpleton write (its client's state is then exactly this version).
    pub simpleton: bool,
}

/// An update shared by every subscriber that needs exactly it (most subscribers of a document
/// sit at the same version): computed once, taken by each without a lock, with a slot for its
/// wire bytes so that it is encoded once too.
#[derive(Debug)]
pub struct SharedUpdate {
    /// The update.
    pub update: Update,
    /// Its wire bytes, framed as one chunk of a chunked body (`http::stream::Chunk`), filled
    /// by the first subscription that sends it.
    pub encoded: OnceLock<Bytes>,
}

impl SharedUpdate {
    /// A simpleton update from `from` to `version` with absolute `patches` against the text at
    /// `from` (and the digest when `version` is the head).
    pub fn simpleton(from: VersionSet, version: VersionSet, patches: Vec<Patch>, digest: Option<String>) -> Self {
        SharedUpdate {
            update: Update { version, parents: from, content: UpdateContent::Patches(patches), repr_digest: digest },
            encoded: OnceLock::new(),
        }
    }
}
