//! The values that go in and out of [`TextDoc::apply`](super::TextDoc::apply) and the history
//! readers: [`Edit`], [`Change`], [`Applied`], [`Outcome`], [`HistoryUpdate`].
//!
//! Plain data only; no logic lives here.

use crate::protocol::{Patch, VersionSet};

/// One write (a PUT) against a text document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    /// The single id of the request's `Version` header ("agent-seq", split at the LAST '-'), or
    /// None when the client sent no Version: then the server names the events itself with agent
    /// `fallback_agent` and seqs `next_seq(agent)..` (not braid-text's colliding `-(count-1)`).
    pub version: Option<String>,
    /// The agent used when `version` is None (e.g. the Peer, or a random name).
    pub fallback_agent: String,
    /// Parents: None = the document's current version; Some(root/empty) = the empty document.
    pub parents: Option<VersionSet>,
    /// What changes.
    pub change: Change,
}

/// The content of an [`Edit`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Whole new text. With `version: Some(..)` it replaces the whole parent text (`[0:len]` +
    /// body, exactly as braid-text numbers it, WIRE §7 t24). With `version: None` the server
    /// computes a minimal single patch (common prefix/suffix, in code points) against the parent.
    Snapshot(String),
    /// Range patches, absolute against the parent text, in code points; negative bounds are
    /// resolved against the parent text's length.
    Patches(Vec<Patch>),
}

/// What [`TextDoc::apply`](super::TextDoc::apply) did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// `[the edit's last event]`; the document's current version for an [`Outcome::Empty`] edit.
    pub version: VersionSet,
    /// Number of events actually added.
    pub added: usize,
    /// Which case applied.
    pub outcome: Outcome,
    /// The parents the added events hang off (for the history listing); empty when nothing
    /// was added.
    pub parents: VersionSet,
    /// Code points inserted and deleted by the added events.
    pub inserted: usize,
    /// See `inserted`.
    pub deleted: usize,
}

impl Applied {
    /// An edit that added nothing: a duplicate, or one that changes nothing.
    pub(super) fn nothing(version: VersionSet, outcome: Outcome) -> Self {
        Applied { version, added: 0, outcome, parents: VersionSet::default(), inserted: 0, deleted: 0 }
    }
}

/// The four ways an accepted edit can land.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// All events were new.
    Fresh,
    /// The first events were already known; only the tail was added (braid-text's overlap case).
    Partial,
    /// Every event was already known; nothing was added (content is not compared, as braid-text).
    Duplicate,
    /// The edit changes nothing (zero events); nothing was added.
    Empty,
}

/// One dt-merge-type update: an original run of events, positioned against its parents' text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryUpdate {
    /// The run's last event (a single id).
    pub version: VersionSet,
    /// The parents of the run's first event.
    pub parents: VersionSet,
    /// The run as one absolute patch against the text at `parents`.
    pub patch: Patch,
}
