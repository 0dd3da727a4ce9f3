//! File resources on the hub: a body streamed into the chunk store ([`FileIngest`]), the
//! version committed through the document's shell like any write ([`Hub::write_file`]), the
//! published version graph for readers, and chunk reads.
//!
//! Order, and why: every chunk of a version is durable in the chunk store (and claimed by the
//! upload, so the collector leaves it alone) before the version's batch is committed, and the
//! batch holds the version's record and its chunk references together. So an acknowledged
//! version never names a missing chunk, and a crash before the commit leaves only unreferenced
//! chunks, which the collector removes.

use std::sync::Arc;

use bytes::Bytes;

use crate::chunks::gc::Collected;
use crate::chunks::stats::Usage;
use crate::chunks::{ChunkError, ChunkId, ChunkParams, ChunkSize, Chunker, Upload, Vault};
use crate::document::{Command, DocError, FileRetention, FileWriteOutcome, FileWriteRequest, Hold};

use super::retention::RetentionRule;
use crate::file::{ChunkRef, Content, FileChange, FileDoc, FileError, FileVersionId, FileWrite};
use crate::protocol::kind::Kind;
use crate::protocol::VersionSet;

use super::loading::blocking;
use super::shell::Responder;
use super::{Hub, HubError};

/// Where file bytes go, and how they are cut.
#[derive(Clone)]
pub struct FileStore {
    /// The chunk store with its sealing and leases.
    pub vault: Arc<Vault>,
    /// The chunking parameters.
    pub params: ChunkParams,
    /// Largest file accepted, in bytes.
    pub max_file_bytes: u64,
}

impl FileStore {
    /// Chunks in memory, unsealed, default chunking, files up to 1 GiB (tests, `--memory`).
    pub fn in_memory() -> Result<Self, crate::chunks::ChunkError> {
        let params = ChunkParams::default();
        let engine = Arc::new(crate::chunks::MemoryChunkStore::new());
        let vault = Vault::open(engine, None, params.max(), "in memory")?;
        Ok(FileStore { vault: Arc::new(vault), params, max_file_bytes: 1 << 30 })
    }
}

/// A body on its way into the chunk store: feed it frame by frame ([`push`](Self::push)),
/// then [`finish`](Self::finish). Holds at most the largest chunk plus one frame.
pub struct FileIngest {
    chunker: Chunker,
    upload: Upload,
    chunks: Vec<ChunkRef>,
    refs: Vec<(ChunkId, ChunkSize)>,
    received: u64,
    limit: u64,
}

/// A body stored as chunks, not yet a version: the upload keeps its chunks claimed.
pub struct Ingested {
    /// The version's content (without its content type, set by the caller).
    pub size: u64,
    /// SHA-256 of the bytes.
    pub sha256: [u8; 32],
    chunks: Vec<ChunkRef>,
    refs: Vec<(ChunkId, ChunkSize)>,
    upload: Upload,
}

impl FileIngest {
    /// Adds a frame of the body, storing every chunk it completes. Blocking (synced chunk
    /// writes): runs in place on the calling worker (see `loading::blocking`).
    pub fn push(&mut self, frame: &[u8]) -> Result<(), HubError> {
        self.received += frame.len() as u64;
        if self.received > self.limit {
            return Err(HubError::FileTooLarge { limit: self.limit });
        }
        let done = self.chunker.push(frame);
        // Most frames complete no chunk (64 KiB frames, ~1 MiB chunks): only a frame that does
        // hands its worker over for the synced writes (`block_in_place` costs a thread switch).
        if done.is_empty() {
            return Ok(());
        }
        blocking(|| self.store(done))
    }

    fn store(&mut self, done: Vec<crate::chunks::Chunk>) -> Result<(), HubError> {
        for chunk in done {
            let (id, size) = self.upload.put(&chunk.data)?;
            self.chunks.push(ChunkRef { id: id.0, len: chunk.data.len() as u64 });
            self.refs.push((id, size));
        }
        Ok(())
    }

    /// Ends the body: stores the last chunks and checks the client's `Repr-Digest`.
    pub fn finish(mut self, expect_sha256: Option<[u8; 32]>) -> Result<Ingested, HubError> {
        let chunker = std::mem::replace(&mut self.chunker, Chunker::new(ChunkParams::default()));
        let (last, summary) = chunker.finish();
        blocking(|| self.store(last))?;
        if let Some(expected) = expect_sha256.filter(|e| *e != summary.sha256) {
            return Err(HubError::DigestMismatch { expected: hex(&expected), actual: hex(&summary.sha256) });
        }
        Ok(Ingested {
            size: summary.len,
            sha256: summary.sha256,
            chunks: self.chunks,
            refs: self.refs,
            upload: self.upload,
        })
    }
}

fn hex(bytes: &[u8; 32]) -> String {
    hex::encode(bytes)
}

impl Ingested {
    /// The bytes of an empty body (a zero-length file).
    fn content(&self, content_type: String) -> Content {
        Content { content_type, size: self.size, sha256: self.sha256, chunks: self.chunks.clone() }
    }
}

impl Hub {
    /// The file store's chunking parameters (clients that chunk themselves use the same).
    pub fn chunk_params(&self) -> ChunkParams {
        self.0.files.params
    }

    /// The largest file accepted, in bytes.
    pub fn file_limit(&self) -> u64 {
        self.0.files.max_file_bytes
    }

    /// Starts storing a body.
    pub fn ingest(&self) -> FileIngest {
        FileIngest {
            chunker: Chunker::new(self.0.files.params),
            upload: self.0.files.vault.begin(),
            chunks: Vec::new(),
            refs: Vec::new(),
            received: 0,
            limit: self.0.files.max_file_bytes,
        }
    }

    /// The resource's kind: None when it has never been written (or was erased).
    pub async fn kind(&self, path: &str) -> Result<Option<Kind>, HubError> {
        let published = self.doc(path).await?.shared.published();
        Ok(if published.file.is_some() {
            Some(Kind::File)
        } else if published.head.is_empty() {
            None
        } else {
            Some(Kind::Text)
        })
    }

    /// A file resource's published version graph (None: not a file).
    pub async fn file(&self, path: &str) -> Result<Option<Arc<FileDoc>>, HubError> {
        Ok(self.doc(path).await?.shared.published().file.clone())
    }

    /// Commits a new version of a file: `body` for content (already stored), None for a
    /// delete. Returns once the version is durable.
    pub async fn write_file(
        &self,
        path: &str,
        mut write: FileWrite,
        body: Option<(Ingested, String)>,
        peer: Option<String>,
    ) -> Result<FileWriteOutcome, HubError> {
        let (refs, hold): (Vec<(ChunkId, ChunkSize)>, Option<Hold>) = match body {
            Some((ingested, content_type)) => {
                write.change = FileChange::Content(ingested.content(content_type));
                let refs = ingested.refs;
                (refs, Some(Arc::new(ingested.upload)))
            }
            None => (Vec::new(), None),
        };
        let req = FileWriteRequest { write, refs, peer, hold };
        self.command(path, |reply| Command::WriteFile { req: Box::new(req.clone()), reply: Responder::File(reply) })
            .await
    }

    /// A new version of `path` whose bytes are those of its version `from` (a restore): the
    /// same chunks, claimed again for the commit, so nothing is copied.
    pub async fn restore_file(
        &self,
        path: &str,
        from: &FileVersionId,
        author: Option<String>,
        peer: Option<String>,
        now_ms: u64,
    ) -> Result<FileWriteOutcome, HubError> {
        let file =
            self.file(path).await?.ok_or_else(|| DocError::UnknownVersion(VersionSet::new([from.to_string()])))?;
        let old = file.version(from).ok_or_else(|| DocError::UnknownVersion(VersionSet::new([from.to_string()])))?;
        let content =
            old.content.clone().ok_or(DocError::File(FileError::NothingToRestore { id: from.to_string() }))?;
        let ids: Vec<ChunkId> = content.chunks.iter().map(|c| ChunkId(c.id)).collect();
        let mut upload = self.0.files.vault.begin();
        let missing = blocking(|| upload.claim(&ids))?;
        if let Some(id) = missing.first() {
            return Err(HubError::Chunks(ChunkError::Corrupt {
                id: *id,
                why: "a stored version's chunk is missing".into(),
            }));
        }
        let refs = upload.sizes(&ids)?;
        let write = FileWrite { version: None, parents: None, change: FileChange::Content(content), author, now_ms };
        let req = FileWriteRequest { write, refs, peer, hold: Some(Arc::new(upload)) };
        self.command(path, |reply| Command::WriteFile { req: Box::new(req.clone()), reply: Responder::File(reply) })
            .await
    }

    /// Drops a file's versions that `rule` does not keep (the heads always stay); returns how
    /// many went. Their chunks are then collectable unless other versions use them.
    pub async fn prune_file(&self, path: &str, rule: &RetentionRule) -> Result<usize, HubError> {
        let Some(before) = self.file(path).await? else { return Ok(0) };
        let now_ms = super::browse::now_ms();
        let keep = FileRetention { days: rule.keep_days, versions: rule.keep_versions, now_ms };
        self.command(path, |reply| Command::PruneFile { keep, reply: Responder::Done(reply) }).await?;
        let after = self.file(path).await?.map_or(0, |f| f.history().count());
        Ok(before.history().count().saturating_sub(after))
    }

    /// Every file resource with content (for retention passes).
    pub async fn file_paths(&self) -> Result<Vec<String>, HubError> {
        let store = self.0.store.clone();
        Ok(blocking(|| crate::chunks::refs::resources(store.as_ref()))?)
    }

    /// One resource's storage figures (its versions' bytes, and its distinct chunks at rest).
    pub fn file_usage(&self, path: &str) -> Result<Usage, HubError> {
        Ok(blocking(|| crate::chunks::stats::resource(self.0.store.as_ref(), path))?)
    }

    /// The server's storage figures for files.
    pub fn files_usage(&self) -> Result<Usage, HubError> {
        Ok(blocking(|| crate::chunks::stats::server(self.0.store.as_ref(), self.0.files.vault.engine()))?)
    }

    /// Deletes every chunk no version references and no upload claims (the collector). Runs
    /// on the blocking pool: a pass pages through every stored chunk.
    pub async fn collect_chunks(&self) -> Result<Collected, HubError> {
        let (vault, store) = (self.0.files.vault.clone(), self.0.store.clone());
        let run = tokio::task::spawn_blocking(move || vault.collect(store.as_ref()));
        Ok(run.await.map_err(|_| HubError::Unavailable)??)
    }

    /// The verified bytes of a chunk. Blocking read, in place.
    pub fn read_chunk(&self, id: &ChunkId) -> Result<Bytes, HubError> {
        match blocking(|| self.0.files.vault.read(id))? {
            Some(bytes) => Ok(Bytes::from(bytes)),
            None => Err(HubError::Chunks(crate::chunks::ChunkError::Corrupt {
                id: *id,
                why: "a version names it but the chunk store does not have it".into(),
            })),
        }
    }
}

/// The chunk collector's background pass, every `every` (the first one `every` after start).
pub async fn run_collector(hub: Hub, every: std::time::Duration) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match hub.collect_chunks().await {
            Ok(done) if done.deleted > 0 => {
                tracing::info!(
                    examined = done.examined,
                    deleted = done.deleted,
                    freed = done.freed_bytes,
                    "chunks collected"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "chunk collection failed; next pass later"),
        }
    }
}
