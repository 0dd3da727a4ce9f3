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

use crate::chunks::{ChunkId, ChunkParams, ChunkSize, Chunker, Upload, Vault};
use crate::document::{Command, FileWriteOutcome, FileWriteRequest, Hold};
use crate::file::{ChunkRef, Content, FileChange, FileDoc, FileWrite};
use crate::protocol::kind::Kind;

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
