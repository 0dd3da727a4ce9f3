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

use tokio::sync::{mpsc, oneshot};

use crate::chunks::gc::Collected;
use crate::chunks::stats::Usage;
use crate::chunks::{Chunk, ChunkError, ChunkId, ChunkParams, ChunkSize, Chunker, Upload, Vault};
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
    /// The bucket browsers upload parts to directly (`--blob-store s3://…` with
    /// `--direct-uploads`); None: direct uploads are off.
    pub direct: Option<DirectBucket>,
}

/// Where browsers upload parts straight to.
#[derive(Clone, Debug)]
pub struct DirectBucket {
    /// The bucket's direct-upload operations.
    pub bucket: crate::chunks::s3::Bucket,
    /// The origin its part URLs point at ([`Bucket::origin`](crate::chunks::s3::Bucket::origin)):
    /// pages that upload parts must be allowed to connect there.
    pub origin: String,
}

impl FileStore {
    /// Chunks in memory, unsealed, default chunking, files up to 1 GiB (tests, `--memory`).
    pub fn in_memory() -> Result<Self, crate::chunks::ChunkError> {
        let params = ChunkParams::default();
        let engine = Arc::new(crate::chunks::MemoryChunkStore::new());
        let vault = Vault::open(engine, None, params.max(), "in memory")?;
        Ok(FileStore { vault: Arc::new(vault), params, max_file_bytes: 1 << 30, direct: None })
    }
}

/// A body on its way into the chunk store: feed it frame by frame ([`push`](Self::push)),
/// then [`finish`](Self::finish). Holds at most the largest chunk plus one frame, the frames
/// queued for the writer (16 at most) and the chunk being stored.
///
/// The body is cut in place until its first chunk is complete (a body smaller than the largest
/// chunk is stored in place at the end); from then on a thread of the upload's own
/// ([`Writer`]) takes the chunker and the frames as they arrive, cuts, seals and stores. So the
/// body keeps arriving while a chunk is synced, no async worker spends the chunking's CPU or
/// blocks on the disk, and the large buffers of chunking, sealing and RocksDB's writes all come
/// and go on one thread: spread over the workers `block_in_place` hands a task to, glibc kept
/// tens of MiB more of them in its per-thread arenas during a 1 GiB PUT (docs/BENCHMARKS.md,
/// FILES).
pub struct FileIngest {
    /// Cutting and storing in place, while no writer thread owns them.
    here: Option<(Chunker, Stored)>,
    writer: Option<Writer>,
    received: u64,
    limit: u64,
}

/// The chunks of one body stored so far, and the upload that claims them.
pub(super) struct Stored {
    pub(super) upload: Upload,
    pub(super) chunks: Vec<ChunkRef>,
    pub(super) refs: Vec<(ChunkId, ChunkSize)>,
}

impl Stored {
    /// Nothing stored yet, claims held by `upload`.
    pub(super) fn new(upload: Upload) -> Self {
        Stored { upload, chunks: Vec::new(), refs: Vec::new() }
    }

    /// Stores `done` (blocking: synced writes).
    pub(super) fn store(&mut self, done: Vec<Chunk>) -> Result<(), HubError> {
        for chunk in done {
            let (id, size) = self.upload.put(&chunk.data)?;
            self.chunks.push(ChunkRef { id: id.0, len: chunk.data.len() as u64 });
            self.refs.push((id, size));
        }
        Ok(())
    }
}

/// Bytes of a file looked at to name a media type its writer did not send (uploads that
/// complete later, objects read back from S3).
pub(super) const SNIFF_BYTES: usize = 8192;

/// Frames queued for an upload's writer thread, at most.
const QUEUED_FRAMES: usize = 16;

/// What an upload's writer thread hands back: the chunker with the bytes not yet cut, and
/// everything stored.
type Written = Result<(Chunker, Stored), HubError>;

/// What an upload's writer thread is fed: frames, in order, and requests to report progress.
enum Feed {
    Frame(Bytes),
    Flush(oneshot::Sender<Flushed>),
}

/// The chunks stored since the last flush (taken out of [`Stored`]) and where the bytes not yet
/// cut start: what a resumable upload's checkpoint in the middle of a long request records,
/// without stopping the writer thread.
pub(super) struct Flushed {
    pub(super) refs: Vec<(ChunkId, ChunkSize)>,
    pub(super) tail_offset: u64,
}

impl Stored {
    fn flushed(&mut self, chunker: &Chunker) -> Flushed {
        self.chunks.clear();
        Flushed { refs: std::mem::take(&mut self.refs), tail_offset: chunker.tail_offset() }
    }
}

/// An upload's writer thread: cuts the frames it receives, in order, and stores each chunk;
/// hands back the chunker and [`Stored`] once the sender is dropped, or its first error. A request that goes
/// away drops the sender: the thread stores what it holds and ends, and the upload's claims go
/// with it (its chunks are orphans for the collector).
struct Writer {
    tx: mpsc::Sender<Feed>,
    result: oneshot::Receiver<Written>,
}

fn writer_gone() -> HubError {
    HubError::Chunks(ChunkError::Engine("the upload's chunk writer thread stopped".into()))
}

impl Writer {
    /// Starts the thread with the chunker, what is stored so far and the chunks just cut.
    fn start(mut chunker: Chunker, mut stored: Stored, first: Vec<Chunk>) -> Result<Writer, HubError> {
        let (tx, mut rx) = mpsc::channel::<Feed>(QUEUED_FRAMES);
        let (done, result) = oneshot::channel();
        std::thread::Builder::new()
            .name("plait-chunk-writer".into())
            .spawn(move || {
                let outcome = stored.store(first).and_then(|()| {
                    while let Some(feed) = rx.blocking_recv() {
                        match feed {
                            Feed::Frame(frame) => stored.store(chunker.push(&frame))?,
                            Feed::Flush(reply) => {
                                let _ = reply.send(stored.flushed(&chunker));
                            }
                        }
                    }
                    Ok(())
                });
                let _ = done.send(outcome.map(|()| (chunker, stored)));
            })
            .map_err(|e| HubError::Chunks(ChunkError::Engine(format!("starting a chunk writer thread: {e}"))))?;
        Ok(Writer { tx, result })
    }

    /// Queues a frame, waiting while the queue is full; the writer's error if it stopped.
    async fn send(&mut self, feed: Feed) -> Result<(), HubError> {
        if self.tx.send(feed).await.is_ok() {
            return Ok(());
        }
        match (&mut self.result).await {
            Ok(Err(e)) => Err(e),
            _ => Err(writer_gone()),
        }
    }

    /// Ends the frames and waits until every chunk cut from them is stored.
    async fn end(self) -> Written {
        drop(self.tx);
        self.result.await.unwrap_or_else(|_| Err(writer_gone()))
    }
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
    /// Adds a frame of the body. Waits while the writer thread is behind.
    pub async fn push(&mut self, frame: Bytes) -> Result<(), HubError> {
        self.received += frame.len() as u64;
        if self.received > self.limit {
            return Err(HubError::FileTooLarge { limit: self.limit });
        }
        if let Some(writer) = &mut self.writer {
            return writer.send(Feed::Frame(frame)).await;
        }
        let (chunker, _) = self.here.as_mut().ok_or_else(writer_gone)?;
        let done = chunker.push(&frame);
        if done.is_empty() {
            return Ok(());
        }
        let (chunker, stored) = self.here.take().ok_or_else(writer_gone)?;
        self.writer = Some(Writer::start(chunker, stored, done)?);
        Ok(())
    }

    /// Waits until every frame pushed so far is cut and its chunks stored, and takes those
    /// chunks (the writer thread goes on).
    pub(super) async fn flush(&mut self) -> Result<Flushed, HubError> {
        if let Some(writer) = &mut self.writer {
            let (reply, flushed) = oneshot::channel();
            writer.send(Feed::Flush(reply)).await?;
            return flushed.await.map_err(|_| writer_gone());
        }
        let (chunker, stored) = self.here.as_mut().ok_or_else(writer_gone)?;
        Ok(stored.flushed(chunker))
    }

    /// Stops feeding: waits until every chunk cut so far is stored and hands back the chunker
    /// (holding the bytes not yet cut) and what is stored. A resumable upload pauses at the end
    /// of each request and continues later with [`Hub::ingest_resumed`].
    pub(super) async fn pause(self) -> Written {
        match (self.writer, self.here) {
            (Some(writer), _) => writer.end().await,
            (None, Some(here)) => Ok(here),
            (None, None) => Err(writer_gone()),
        }
    }

    /// Ends the body: stores the last chunks and checks the client's `Repr-Digest`.
    pub async fn finish(self, expect_sha256: Option<[u8; 32]>) -> Result<Ingested, HubError> {
        let (chunker, mut stored) = self.pause().await?;
        // The last chunks (at most the largest chunk's bytes) are stored in place.
        let (last, summary) = chunker.finish();
        blocking(|| stored.store(last))?;
        if let Some(expected) = expect_sha256.filter(|e| *e != summary.sha256) {
            return Err(HubError::DigestMismatch {
                expected: hex::encode(expected),
                actual: hex::encode(summary.sha256),
            });
        }
        Ok(Ingested {
            size: summary.len,
            sha256: summary.sha256,
            chunks: stored.chunks,
            refs: stored.refs,
            upload: stored.upload,
        })
    }
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
        let stored = Stored::new(self.0.files.vault.begin());
        self.ingest_resumed(Chunker::new(self.0.files.params), stored, self.0.files.max_file_bytes)
    }

    /// Continues storing a body with `chunker` (which may hold bytes not yet cut), taking at
    /// most `limit` more bytes.
    pub(super) fn ingest_resumed(&self, chunker: Chunker, stored: Stored, limit: u64) -> FileIngest {
        FileIngest { here: Some((chunker, stored)), writer: None, received: 0, limit }
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
        let req = FileWriteRequest { write, refs, peer, hold, also: Vec::new() };
        self.send_file_write(path, req).await
    }

    /// Hands a file write to the document's shell; returns once it is durable (or refused).
    pub(super) async fn send_file_write(
        &self,
        path: &str,
        req: FileWriteRequest,
    ) -> Result<FileWriteOutcome, HubError> {
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
        let req = FileWriteRequest { write, refs, peer, hold: Some(Arc::new(upload)), also: Vec::new() };
        self.send_file_write(path, req).await
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
