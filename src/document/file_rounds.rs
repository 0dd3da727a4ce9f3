//! File resources in the core: the round of one file write, and what its commit publishes.
//!
//! A file write reaches the core with its bytes already in the chunk store (the hub streams
//! them there first) and the chunk references its version will hold. `file::FileDoc::apply`
//! judges it (duplicate, reused id, unknown parents, siblings); the round's batch holds the
//! version's record and its chunk references, so a version is never durable without them and
//! no reference outlives its version's batch. A file round holds one write: file writes are
//! rare next to their bytes, and one write per round keeps a refused one from touching others.

use std::sync::Arc;

use crate::chunks::refs::{self, Owner};
use crate::file::FileDoc;
use crate::protocol::kind::Kind;
use crate::protocol::VersionSet;
use crate::store::Batch;

use super::changed;
use super::command::{AckPolicy, FileRetention, FileWriteOutcome, FileWriteRequest};
use super::doc_core::{DocCore, State};
use super::published::{PeerWrite, Published};
use super::records;
use super::round::{Reply, Round, StagedFile, Work};
use super::DocError;

/// A file's heads as a version set (the resource's `Current-Version`).
pub(super) fn heads_of(file: &FileDoc) -> VersionSet {
    VersionSet::new(file.heads().iter().map(|id| id.as_str().to_string()))
}

impl<R> DocCore<R> {
    /// The resource's kind, None while it has never been written (or was erased).
    pub fn kind(&self) -> Option<Kind> {
        if !self.file.is_empty() {
            Some(Kind::File)
        } else if !self.doc.version().is_empty() {
            Some(Kind::Text)
        } else {
            None
        }
    }

    /// The resource as it is now, as a change record (None: never written, or deleted).
    pub fn describe(&self) -> Option<crate::changes::Change> {
        changed::current(&self.path, &self.doc, &self.file)
    }

    /// The head the document's state has now (the text's version, or the file's heads).
    pub(super) fn current_head(&self) -> VersionSet {
        if self.file.is_empty() {
            self.doc.version()
        } else {
            heads_of(&self.file)
        }
    }

    /// The snapshot record of the document as it is now, whatever its kind.
    pub(super) fn snapshot_record(&self) -> Vec<u8> {
        if self.file.is_empty() {
            records::text_snapshot_record(&self.doc)
        } else {
            records::file_snapshot_record(&self.file)
        }
    }

    /// Adds the removal of every file version's chunk references to `batch` (erasing the
    /// resource: the collector may then delete chunks nothing else uses).
    pub(super) fn drop_file_refs(&self, batch: &mut Batch) {
        for v in self.file.history() {
            if let Some(content) = &v.content {
                let ids: Vec<_> = content.chunks.iter().map(|c| crate::chunks::ChunkId(c.id)).collect();
                refs::remove(batch, Owner { resource: &self.path, version: v.id.as_str() }, &ids);
            }
        }
    }

    /// The round of one file write.
    pub(super) fn plan_file_write(
        &mut self,
        req: Box<FileWriteRequest>,
        reply: R,
        mut replies: Vec<Reply<R>>,
    ) -> Round<R> {
        let refuse = |replies: &mut Vec<Reply<R>>, reply: R, e: DocError| {
            replies.push(Reply::file(reply, Err(e)));
        };
        if self.kind() == Some(Kind::Text) {
            let e = DocError::KindMismatch { path: self.path.clone(), existing: Kind::Text, written: Kind::File };
            refuse(&mut replies, reply, e);
            return Round { batch: None, replies, work: Work::Nothing };
        }
        if let Err(e) = check_refs(&req) {
            refuse(&mut replies, reply, e);
            return Round { batch: None, replies, work: Work::Nothing };
        }
        let heads_before = self.file.heads().len();
        let live_before = self.file.current().is_some();
        let applied = match self.file.apply(req.write.clone()) {
            Ok(applied) => applied,
            Err(crate::file::FileError::UnknownParents { ids }) => {
                refuse(&mut replies, reply, DocError::UnknownVersion(VersionSet::new(ids)));
                return Round { batch: None, replies, work: Work::Nothing };
            }
            Err(e) => {
                refuse(&mut replies, reply, DocError::File(e));
                return Round { batch: None, replies, work: Work::Nothing };
            }
        };
        let Some(version) = &applied.record else {
            // A retry of a durable version: nothing to store.
            replies.push(Reply::file(reply, Ok(FileWriteOutcome { applied })));
            return Round { batch: None, replies, work: Work::Nothing };
        };
        let mut records = self.records.clone();
        let mut batch = records.file_round_batch(&self.path, &self.file, version);
        if version.content.is_some() {
            refs::add(&mut batch, Owner { resource: &self.path, version: version.id.as_str() }, &req.refs);
        }
        batch.ops.extend(req.also.iter().cloned());
        batch.log(changed::file_version(&self.path, &self.file, heads_before, live_before).entry());
        let mut reply = Some(reply);
        if self.settings.ack == AckPolicy::UnsafeBeforeDurable {
            // Test-only: answer before the commit (see `AckPolicy`).
            replies.extend(reply.take().map(|r| Reply::file(r, Ok(FileWriteOutcome { applied: applied.clone() }))));
        }
        self.state = State::InFlight;
        Round { batch: Some(batch), replies, work: Work::File(Box::new(StagedFile { req, applied, records, reply })) }
    }

    /// The round that drops the old versions `keep` does not keep: a fresh snapshot of the
    /// versions that stay (replacing the log) and the removal of the dropped versions' chunk
    /// references, in one batch. Nothing to drop: answered at once.
    pub(super) fn plan_prune(&mut self, keep: FileRetention, reply: R, mut replies: Vec<Reply<R>>) -> Round<R> {
        let mut file = self.file.clone();
        let dropped = file.prune(|rank, v| keep.keeps(rank, v.time_ms));
        if dropped.is_empty() {
            replies.push(Reply::done(reply, Ok(())));
            return Round { batch: None, replies, work: Work::Nothing };
        }
        let mut records = self.records.clone();
        let mut batch = records.fold_batch(&self.path, records::file_snapshot_record(&file));
        for v in &dropped {
            if let Some(content) = &v.content {
                let ids: Vec<_> = content.chunks.iter().map(|c| crate::chunks::ChunkId(c.id)).collect();
                refs::remove(&mut batch, Owner { resource: &self.path, version: v.id.as_str() }, &ids);
            }
        }
        self.state = State::InFlight;
        Round { batch: Some(batch), replies, work: Work::Prune { reply, file: Box::new(file), records } }
    }

    /// A publication of the file graph as it is now, at the same head (after a prune).
    pub(super) fn file_publication(&mut self) -> Option<Published> {
        self.round += 1;
        let mut published = Published::loaded(self.head.clone(), self.horizon.clone());
        published.round = self.round;
        published.file = Some(Arc::new(self.file.clone()));
        Some(published)
    }

    /// Installs a durable file round: answers its write and returns the publication.
    pub(super) fn file_committed(&mut self, staged: StagedFile<R>, replies: &mut Vec<Reply<R>>) -> Option<Published> {
        let StagedFile { req, applied, records, reply } = staged;
        self.records = records;
        self.round += 1;
        let prev_head = std::mem::replace(&mut self.head, heads_of(&self.file));
        let writers = req
            .peer
            .clone()
            .map(|peer| PeerWrite { peer, version: VersionSet::new([applied.version.to_string()]), simpleton: false })
            .into_iter()
            .collect();
        replies.extend(reply.map(|r| Reply::file(r, Ok(FileWriteOutcome { applied }))));
        // `req` (and the upload's claims it holds) is dropped here, after the commit.
        drop(req);
        let mut published = Published::loaded(self.head.clone(), self.horizon.clone());
        published.prev_head = prev_head;
        published.round = self.round;
        published.writers = writers;
        published.file = Some(Arc::new(self.file.clone()));
        Some(published)
    }
}

/// The references must be exactly the content's chunk list (ids in order): a mismatch is a
/// bug of the caller, refused before anything changes.
fn check_refs(req: &FileWriteRequest) -> Result<(), DocError> {
    let crate::file::FileChange::Content(content) = &req.write.change else { return Ok(()) };
    let same = content.chunks.len() == req.refs.len()
        && content.chunks.iter().zip(&req.refs).all(|(c, (id, size))| c.id == id.0 && c.len == u64::from(size.plain));
    if same {
        Ok(())
    } else {
        Err(DocError::Corrupt("a file write's chunk references do not match its chunk list".into()))
    }
}
