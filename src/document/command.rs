//! What the shell hands the document core: commands, with the reply token `R` the core gives
//! back with each answer (the shell's reply channel; a number in unit tests), and the core's
//! settings.

use std::time::Duration;

use tokio::time::Instant;

use std::sync::Arc;

use crate::chunks::{ChunkId, ChunkSize};
use crate::file::{Applied as FileApplied, FileWrite};
use crate::protocol::{MergeType, VersionSet};
use crate::text::{Applied, Edit};

use super::compaction::CompactionPlan;
use super::listing::Principal;

/// A request to one document.
pub enum Command<R> {
    /// Apply an edit; answered once it is durable (or refused).
    Write {
        /// The write.
        req: Box<WriteRequest>,
        /// Until when the write may wait for parents it names but the document lacks.
        deadline: Instant,
        /// Where the answer goes.
        reply: R,
    },
    /// Delete the document and its whole history.
    Delete {
        /// Where the answer goes.
        reply: R,
    },
    /// Write one version of a file resource (or a tombstone); answered once it is durable.
    WriteFile {
        /// The write.
        req: Box<FileWriteRequest>,
        /// Where the answer goes.
        reply: R,
    },
    /// Drop a file's old versions as a retention rule says (their chunks become collectable).
    PruneFile {
        /// What to keep.
        keep: FileRetention,
        /// Where the answer goes.
        reply: R,
    },
    /// Install a compaction prepared from a copy of the document (see `hub::compaction`).
    Compact {
        /// The prepared compaction.
        plan: Box<CompactionPlan>,
        /// Where the answer goes.
        reply: R,
    },
}

/// One edit to apply.
#[derive(Clone, Debug)]
pub struct WriteRequest {
    /// The edit itself.
    pub edit: Edit,
    /// The `Peer` of the writer, for echo suppression and simpleton rebases.
    pub peer: Option<String>,
    /// The writer's merge type: a `dt` writer is never treated as a simpleton sender.
    pub merge_type: MergeType,
    /// The SHA-256 the client's `Repr-Digest` says the resulting text has, if it sent one.
    pub expect_sha256: Option<[u8; 32]>,
    /// When the server received the request (shown in the history listing).
    pub received: std::time::SystemTime,
    /// For a restore: the version whose text this write brings back.
    pub restored_from: Option<VersionSet>,
    /// Who is writing (shown in history), when access control names somebody.
    pub principal: Option<Principal>,
}

impl WriteRequest {
    /// A write received now, with no digest check, not a restore.
    pub fn new(edit: Edit, peer: Option<String>, merge_type: MergeType) -> Self {
        WriteRequest {
            edit,
            peer,
            merge_type,
            expect_sha256: None,
            received: std::time::SystemTime::now(),
            restored_from: None,
            principal: None,
        }
    }
}

/// One write to a file resource: the version's metadata, and the chunks its bytes were
/// stored under before the write reached the core (the core never holds a file's bytes).
#[derive(Clone)]
pub struct FileWriteRequest {
    /// The write as the file layer judges it.
    pub write: FileWrite,
    /// Every distinct chunk of the content with its sizes: the references the version's
    /// record adds, in the same batch.
    pub refs: Vec<(ChunkId, ChunkSize)>,
    /// The writer's `Peer` (its own subscriptions do not get its write back).
    pub peer: Option<String>,
    /// Kept until the round is durable: the upload's claims on its chunks, so the collector
    /// cannot delete one between the upload and the commit, even if the caller goes away.
    pub hold: Option<Hold>,
    /// Other records that must change in the same atomic batch as the version (a resumable
    /// upload's record and chunk list give way to the version it became). Written only when
    /// the write makes a new version.
    pub also: Vec<crate::store::Op>,
}

/// Something kept alive until a round is durable (an upload's claims on its chunks).
pub type Hold = Arc<dyn Send + Sync>;

impl std::fmt::Debug for FileWriteRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWriteRequest").field("write", &self.write).field("refs", &self.refs.len()).finish()
    }
}

/// Which file versions a retention rule keeps: those received within `days` of `now_ms`, or
/// among the newest `versions` (either suffices); the heads always.
#[derive(Clone, Copy, Debug)]
pub struct FileRetention {
    /// Keep versions younger than this many days.
    pub days: Option<u64>,
    /// Keep this many newest versions.
    pub versions: Option<u64>,
    /// Now, in milliseconds since 1970.
    pub now_ms: u64,
}

impl FileRetention {
    /// Whether the version of rank `rank` (0 = newest) received at `time_ms` is kept.
    pub fn keeps(&self, rank: usize, time_ms: u64) -> bool {
        let young = self.days.is_some_and(|d| time_ms.saturating_add(d.saturating_mul(86_400_000)) >= self.now_ms);
        let recent = self.versions.is_some_and(|n| (rank as u64) < n);
        (self.days.is_none() && self.versions.is_none()) || young || recent
    }
}

/// The result of a durable file write.
#[derive(Clone, Debug)]
pub struct FileWriteOutcome {
    /// What the file layer did (the version, duplicate or not, the heads, lost or not).
    pub applied: FileApplied,
}

/// The result of a durable write.
#[derive(Clone, Debug)]
pub struct WriteOutcome {
    /// What the text layer did with the edit.
    pub applied: Applied,
    /// The document's version once the write is durable.
    pub current: VersionSet,
}

/// When a write is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckPolicy {
    /// After it is durable: the only policy for real use.
    AfterDurable,
    /// Before it is durable. Exists only so crash tests can prove that they detect lost
    /// acknowledged writes (hidden flag `--unsafe-ack-before-durable-ms`).
    UnsafeBeforeDurable,
}

/// The rules' numbers, set from the configuration.
#[derive(Clone, Debug)]
pub struct CoreSettings {
    /// Writes that may wait for missing parents on one document at once.
    pub max_parked_writes: usize,
    /// Largest document, in code points; a write that could grow a document past it is refused.
    pub max_document_chars: usize,
    /// When writes are acknowledged.
    pub ack: AckPolicy,
    /// A document with no activity for this long may be unloaded (the shell asks the registry).
    pub idle_unload: Duration,
}
