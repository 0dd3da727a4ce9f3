//! A core under test: reply tokens are numbers, "durable" means written to a memory store, and
//! time is whatever the test says.

use std::time::Duration;

use tokio::time::Instant;

use crate::document::{
    AckPolicy, Answer, Command, CoreSettings, DocCore, DocError, Needs, Published, Reply, Round, StoredDoc,
    WriteOutcome, WriteRequest,
};
use crate::protocol::{MergeType, Patch, TextRange, VersionSet};
use crate::store::{keys, MemoryStore, Store};
use crate::text::{Change, Edit};

pub const PATH: &str = "/t/core";

pub fn settings() -> CoreSettings {
    CoreSettings {
        max_parked_writes: 4,
        max_document_chars: 1000,
        ack: AckPolicy::AfterDurable,
        idle_unload: Duration::from_secs(60),
    }
}

/// What the store holds for `PATH`, as the shell would read it.
pub fn stored(store: &MemoryStore) -> StoredDoc {
    StoredDoc {
        snapshot: store.get(&keys::snapshot(PATH)).unwrap(),
        log: store.scan_prefix(&keys::log_prefix(PATH)).unwrap(),
        meta: store.get(&keys::meta(PATH)).unwrap(),
        newest_block: store.scan_prefix_rev(&keys::history_prefix(PATH), None, 1).unwrap().pop(),
        horizon: store.get(&keys::horizon(PATH)).unwrap(),
    }
}

pub struct Harness {
    pub core: DocCore<u32>,
    pub store: MemoryStore,
    pub now: Instant,
    /// Answers received so far, by token.
    pub answers: Vec<(u32, Answer)>,
    /// Heads published so far.
    pub published: Vec<Published>,
    next_token: u32,
}

impl Harness {
    pub fn new() -> Self {
        Self::with(settings())
    }

    pub fn with(settings: CoreSettings) -> Self {
        let store = MemoryStore::new();
        let now = Instant::now();
        let (core, _) = DocCore::load(PATH, &stored(&store), settings, now).unwrap();
        Harness { core, store, now, answers: Vec::new(), published: Vec::new(), next_token: 0 }
    }

    /// A fresh core over the same store (a reload after unloading).
    pub fn reloaded(&self) -> DocCore<u32> {
        DocCore::load(PATH, &stored(&self.store), settings(), self.now).unwrap().0
    }

    /// Submits a write; returns its token.
    pub fn write(&mut self, edit: Edit) -> u32 {
        self.next_token += 1;
        let req = Box::new(WriteRequest::new(edit, None, MergeType::Simpleton));
        let deadline = self.now + Duration::from_secs(3);
        self.core.submit(Command::Write { req, deadline, reply: self.next_token }, self.now);
        self.next_token
    }

    /// Submits a file write; returns its token.
    pub fn write_file(&mut self, req: crate::document::FileWriteRequest) -> u32 {
        self.next_token += 1;
        self.core.submit(Command::WriteFile { req: Box::new(req), reply: self.next_token }, self.now);
        self.next_token
    }

    /// The answer to a file write, if it came.
    pub fn file_answer(&self, token: u32) -> Option<&Result<crate::document::FileWriteOutcome, DocError>> {
        self.answers.iter().find(|(t, _)| *t == token).and_then(|(_, a)| match a {
            Answer::File(r) => Some(r),
            _ => None,
        })
    }

    pub fn delete(&mut self) -> u32 {
        self.next_token += 1;
        self.core.submit(Command::Delete { reply: self.next_token }, self.now);
        self.next_token
    }

    pub fn take(&mut self, replies: Vec<Reply<u32>>) {
        self.answers.extend(replies.into_iter().map(|r| (r.to, r.answer)));
    }

    /// Plans one round, keeping its immediate answers.
    pub fn plan(&mut self) -> Option<Round<u32>> {
        let mut round = self.core.plan_round(self.now)?;
        let replies = std::mem::take(&mut round.replies);
        self.take(replies);
        Some(round)
    }

    /// Makes `round` durable in the store and reports it committed.
    pub fn commit(&mut self, mut round: Round<u32>) {
        if let Some(batch) = round.batch.take() {
            self.store.write(&batch).unwrap();
        }
        let committed = self.core.committed(round, Needs { simpleton: true });
        self.take(committed.replies);
        self.published.extend(committed.published);
    }

    /// Reports `round` failed (nothing written) and reloads when the core asks to.
    pub fn fail(&mut self, mut round: Round<u32>) {
        round.batch.take();
        let error = DocError::Storage(std::sync::Arc::new(crate::store::StoreError::NoSpace("full".into())));
        let failed = self.core.failed(round, error, self.now);
        self.take(failed.replies);
        if failed.reload {
            let published = self.core.reload(&stored(&self.store)).unwrap();
            self.published.extend(published);
        }
    }

    /// Runs rounds until none is left, committing each.
    pub fn settle(&mut self) {
        while let Some(round) = self.plan() {
            self.commit(round);
        }
    }

    /// The answer to a write, if it came.
    pub fn write_answer(&self, token: u32) -> Option<&Result<WriteOutcome, DocError>> {
        self.answers.iter().find(|(t, _)| *t == token).and_then(|(_, a)| match a {
            Answer::Write(r) => Some(r),
            Answer::Done(_) | Answer::File(_) => None,
        })
    }

    pub fn answered(&self, token: u32) -> bool {
        self.answers.iter().any(|(t, _)| *t == token)
    }

    /// The text of the last published head, read back from the store like a fresh load would.
    pub fn durable_text(&self) -> String {
        self.reloaded().doc_copy().text()
    }
}

/// A write of `content` at `pos`, as `id` on top of `parents` (None: the current version).
pub fn insert(id: &str, parents: Option<&[&str]>, pos: u64, content: &str) -> Edit {
    Edit {
        version: Some(id.to_string()),
        fallback_agent: "x".into(),
        parents: parents.map(|p| VersionSet::new(p.iter().map(|s| s.to_string()))),
        change: Change::Patches(vec![Patch { range: TextRange::absolute(pos, pos), content: content.into() }]),
    }
}
