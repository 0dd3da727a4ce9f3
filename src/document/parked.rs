//! Writes waiting for parents they name but the document does not have yet.
//!
//! Why wait at all: clients that write to several servers, or that pipeline, can send a write
//! before the write it builds on arrives; braid-text answers 309 at once, which costs the client a
//! round trip. A parked write is retried after every round that adds events, and answered 309
//! when its deadline passes.

use tokio::time::Instant;

use crate::protocol::VersionSet;
use crate::text::{TextDoc, TextError};

use super::command::WriteRequest;
use super::round::Reply;
use super::DocError;

/// One parked write.
pub(super) struct ParkedWrite<R> {
    pub req: Box<WriteRequest>,
    pub deadline: Instant,
    pub reply: R,
}

/// The parked writes of one document, bounded by `CoreSettings::max_parked_writes`.
pub(super) struct Parked<R> {
    writes: Vec<ParkedWrite<R>>,
}

impl<R> Default for Parked<R> {
    fn default() -> Self {
        Parked { writes: Vec::new() }
    }
}

impl<R> Parked<R> {
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The earliest deadline, if any write waits.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.writes.iter().map(|p| p.deadline).min()
    }

    /// Parks `w` when it may still wait and there is room; otherwise answers it: 503 when the
    /// document already has too many waiting, 309 when its deadline has passed.
    pub fn park_or_refuse(
        &mut self,
        w: ParkedWrite<R>,
        unknown: VersionSet,
        max: usize,
        now: Instant,
    ) -> Option<Reply<R>> {
        let waiting = w.deadline > now;
        if waiting && self.writes.len() < max {
            self.writes.push(w);
            None
        } else if waiting {
            Some(Reply::write(w.reply, Err(DocError::Overloaded)))
        } else {
            Some(Reply::write(w.reply, Err(DocError::UnknownVersion(unknown))))
        }
    }

    /// Every parked write, to retry.
    pub fn take_all(&mut self) -> Vec<ParkedWrite<R>> {
        std::mem::take(&mut self.writes)
    }

    /// Answers 309 to every write whose deadline has passed, naming the parents still unknown.
    pub fn expire(&mut self, now: Instant, doc: &TextDoc) -> Vec<Reply<R>> {
        let (expired, kept): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.writes).into_iter().partition(|p| p.deadline <= now);
        self.writes = kept;
        expired
            .into_iter()
            .map(|p| {
                let parents = p.req.edit.parents.clone().unwrap_or_default();
                let unknown = match doc.check_known(&parents) {
                    Err(TextError::UnknownVersion(ids)) => ids,
                    _ => parents,
                };
                Reply::write(p.reply, Err(DocError::UnknownVersion(unknown)))
            })
            .collect()
    }

    /// Answers every parked write with `error` (the document was deleted).
    pub fn refuse_all(&mut self, error: impl Fn() -> DocError) -> Vec<Reply<R>> {
        std::mem::take(&mut self.writes).into_iter().map(|p| Reply::write(p.reply, Err(error()))).collect()
    }
}
