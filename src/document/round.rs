//! [`Round`]: one unit of work the core hands the shell (what to make durable, and who is
//! answered when), and the answers it produces.

use std::sync::Arc;

use crate::protocol::VersionSet;
use crate::store::Batch;
use crate::text::{Applied, TextDoc};

use super::command::{FileWriteOutcome, FileWriteRequest, WriteOutcome, WriteRequest};
use super::horizon::Horizon;
use super::listing::Listing;
use super::published::Published;
use super::records::Records;
use super::DocError;

/// An answer for the shell to send to `to`.
pub struct Reply<R> {
    /// The reply token of the command being answered.
    pub to: R,
    /// The answer.
    pub answer: Answer,
}

/// What a command is answered with.
#[derive(Debug)]
pub enum Answer {
    /// The answer to a write.
    Write(Result<WriteOutcome, DocError>),
    /// The answer to a delete or a compaction.
    Done(Result<(), DocError>),
    /// The answer to a file write.
    File(Result<FileWriteOutcome, DocError>),
}

impl<R> Reply<R> {
    pub(super) fn write(to: R, result: Result<WriteOutcome, DocError>) -> Self {
        Reply { to, answer: Answer::Write(result) }
    }

    pub(super) fn done(to: R, result: Result<(), DocError>) -> Self {
        Reply { to, answer: Answer::Done(result) }
    }

    pub(super) fn file(to: R, result: Result<FileWriteOutcome, DocError>) -> Self {
        Reply { to, answer: Answer::File(result) }
    }
}

/// One round: the shell sends `replies` now, makes `batch` durable (when there is one), and then
/// tells the core how it went (`DocCore::committed` or `DocCore::failed`). A round without a
/// batch is complete: nothing in it waits.
pub struct Round<R> {
    /// What makes the round durable; None when nothing needs to be.
    pub batch: Option<Batch>,
    /// Answers that need nothing durable (refusals, writes whose events are all durable).
    pub replies: Vec<Reply<R>>,
    pub(super) work: Work<R>,
}

impl<R> Round<R> {
    /// Whether the shell must make `batch` durable and report back.
    pub fn needs_commit(&self) -> bool {
        self.batch.is_some()
    }
}

/// A write the core applied in memory, waiting for its round's commit.
pub(super) struct Accepted<R> {
    pub req: Box<WriteRequest>,
    pub applied: Applied,
    /// Taken when answered early (only under `AckPolicy::UnsafeBeforeDurable`).
    pub reply: Option<R>,
}

/// What the round does, kept inside it until the shell reports back.
pub(super) enum Work<R> {
    /// Nothing waits (the replies say everything).
    Nothing,
    /// Writes applied in memory (boxed: the largest variant by far).
    Writes(Box<StagedWrites<R>>),
    /// The log folded into a snapshot.
    Fold { records: Records },
    /// The document and its whole history erased.
    Delete { reply: R, records: Records },
    /// A compacted document swapped in.
    Compact { reply: R, staged: Box<CompactStaged> },
    /// One file version applied in memory (boxed: it holds the request).
    File(Box<StagedFile<R>>),
    /// A file's old versions dropped (the graph that remains, once durable).
    Prune { reply: R, file: Box<crate::file::FileDoc>, records: Records },
}

/// A file write round's work: `records` is the bookkeeping once durable.
pub(super) struct StagedFile<R> {
    pub req: Box<FileWriteRequest>,
    pub applied: crate::file::Applied,
    pub records: Records,
    pub reply: Option<R>,
}

/// A write round's work: `records` and `listing` are the bookkeeping once durable.
pub(super) struct StagedWrites<R> {
    pub accepted: Vec<Accepted<R>>,
    pub records: Records,
    pub listing: Listing,
    /// The round's delta, for the readers' copy of the document.
    pub delta: Arc<Vec<Vec<u8>>>,
    /// Every write of the round was on top of the tip (no merge): the catch-up step for
    /// subscribers is cheap to compute.
    pub linear: bool,
}

/// What a compaction round installs once durable.
pub(super) struct CompactStaged {
    pub doc: TextDoc,
    pub horizon: Horizon,
    pub records: Records,
    pub listing: Listing,
}

/// What the shell does after a round was made durable.
pub struct Committed<R> {
    /// Answers to send now.
    pub replies: Vec<Reply<R>>,
    /// What to make visible to readers and subscribers (after the answers' commit, before or
    /// with the answers); None when nothing visible changed.
    pub published: Option<Published>,
}

/// What the shell does after making a round durable failed.
pub struct Failed<R> {
    /// Answers to send now (the failure, to everyone who waited on the round).
    pub replies: Vec<Reply<R>>,
    /// The core's in-memory document holds events that are not durable and must be rebuilt
    /// from the store: read it and call `DocCore::reload` before anything else.
    pub reload: bool,
}

/// The version a write is acknowledged with.
pub(super) fn outcome(applied: Applied, current: &VersionSet) -> WriteOutcome {
    WriteOutcome { applied, current: current.clone() }
}
