//! Completion: an upload becomes one version of its target, committed through the document's
//! shell like a PUT, with the upload's record, chunk list and references dropped in the same
//! batch. A partial upload instead keeps its chunks for the final upload that concatenates it.

use std::sync::Arc;

use sha2::Digest as _;

use crate::chunks::{ChunkId, Chunker};
use crate::document::{FileWriteOutcome, FileWriteRequest};
use crate::file::{ChunkRef, Content, FileChange, FileWrite};
use crate::protocol::kind::file_content_type;
use crate::store::Batch;
use crate::upload::record::{self, Done, UploadRecord};
use crate::upload::{UploadError, UploadId};

use super::super::files::Stored;
use super::super::loading::blocking;
use super::{commit_error, state, Appended, Held, Hub, HubError, NewUpload};

use super::super::files::SNIFF_BYTES;

/// The ids of a chunk list.
fn ids_of(chunks: &[ChunkRef]) -> Vec<ChunkId> {
    chunks.iter().map(|c| ChunkId(c.id)).collect()
}

impl Hub {
    /// Ends an upload whose every byte is in `chunker`/`stored`: a partial upload keeps its
    /// chunks; any other becomes a version of its target.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn complete(
        &self,
        held: &mut Held<'_>,
        id: &UploadId,
        mut record: UploadRecord,
        chunker: Chunker,
        mut stored: Stored,
        hash_known: bool,
        now_ms: u64,
    ) -> Result<Appended, HubError> {
        let (last, summary) = chunker.finish();
        blocking(|| stored.store(last))?;
        if record.partial {
            // Everything cut, nothing left in a tail: the record lists the whole part.
            let end = Chunker::resume(self.0.files.params, summary.len, &[], sha2::Sha256::new());
            record.done = Some(Done { version: None });
            self.checkpoint(held, id, &mut record, &end, &mut stored, false, now_ms).await?;
            return Ok(Appended { record, version: None });
        }
        let target = record.target.clone().ok_or_else(|| HubError::Upload(UploadError::NotFound(id.to_string())))?;
        let earlier = blocking(|| state::parts(self.0.store.as_ref(), id))?;
        let mut chunks: Vec<ChunkRef> = earlier.iter().map(|p| ChunkRef { id: p.id, len: p.len }).collect();
        chunks.extend(stored.chunks.iter().cloned());
        let sha256 = if hash_known { summary.sha256 } else { blocking(|| self.hash_chunks(&ids_of(&chunks)))? };
        let mut also = Batch::new();
        state::drop_parts(self.0.store.as_ref(), &mut also, id, &record)?;
        record.offset = summary.len;
        record.parts = 0;
        record.tail = None;
        record.done = Some(Done { version: None });
        also.put(record::record_key(id), record.encode());
        let outcome = self.commit_upload(&target, &record, chunks, sha256, stored, also.ops, now_ms).await;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(e @ HubError::DigestMismatch { .. }) => {
                // The content is not what the client said: the upload is void.
                let mut batch = Batch::new();
                state::drop_upload(self.0.store.as_ref(), &mut batch, id, &self.upload_record(id)?)?;
                self.0.durability.commit(batch).await.map_err(commit_error)?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        self.uncache_tail(&mut held.live);
        let record = self.note_version(id, record, &outcome).await;
        Ok(Appended { record, version: Some(outcome) })
    }

    /// Records which version a completed upload became (best effort: the upload is complete
    /// either way; only `HEAD`'s answer about the version would lack it).
    async fn note_version(&self, id: &UploadId, mut record: UploadRecord, outcome: &FileWriteOutcome) -> UploadRecord {
        record.done = Some(Done { version: Some(outcome.applied.version.to_string()) });
        let mut batch = Batch::new();
        batch.put(record::record_key(id), record.encode());
        if let Err(e) = self.0.durability.commit(batch).await {
            tracing::warn!(upload = %id, error = %e, "could not note the version a completed upload became");
        }
        record
    }

    /// Commits `chunks` (all stored, claimed here again for the commit) as a new version of
    /// `target`, after checking the digest the client asked for; `also` joins the batch.
    #[allow(clippy::too_many_arguments)]
    async fn commit_upload(
        &self,
        target: &str,
        record: &UploadRecord,
        chunks: Vec<ChunkRef>,
        sha256: [u8; 32],
        stored: Stored,
        also: Vec<crate::store::Op>,
        now_ms: u64,
    ) -> Result<FileWriteOutcome, HubError> {
        if let Some(expected) = record.expect_sha256.as_ref().filter(|e| **e != hex::encode(sha256)) {
            return Err(HubError::DigestMismatch { expected: expected.clone(), actual: hex::encode(sha256) });
        }
        let ids = ids_of(&chunks);
        let mut upload = stored.upload;
        let missing = blocking(|| upload.claim(&ids))?;
        if let Some(id) = missing.first() {
            return Err(HubError::Chunks(crate::chunks::ChunkError::Corrupt {
                id: *id,
                why: "a chunk of an upload is missing".into(),
            }));
        }
        let refs = upload.sizes(&ids)?;
        let content_type = match &record.content_type {
            Some(sent) => file_content_type(Some(sent), &[]),
            None => file_content_type(None, &self.prefix_of(&chunks)?),
        };
        let size = chunks.iter().map(|c| c.len).sum();
        let content = Content { content_type, size, sha256, chunks };
        let write = FileWrite {
            version: None,
            parents: None,
            change: FileChange::Content(content),
            author: record.author.clone(),
            now_ms,
        };
        let req = FileWriteRequest { write, refs, peer: None, hold: Some(Arc::new(upload)), also };
        self.send_file_write(target, req).await
    }

    /// The first bytes of the content (to sniff its media type).
    fn prefix_of(&self, chunks: &[ChunkRef]) -> Result<Vec<u8>, HubError> {
        let mut out = Vec::new();
        for chunk in chunks {
            if out.len() >= SNIFF_BYTES {
                break;
            }
            if let Some(bytes) = blocking(|| self.0.files.vault.read(&ChunkId(chunk.id)))? {
                out.extend_from_slice(&bytes[..bytes.len().min(SNIFF_BYTES - out.len())]);
            }
        }
        Ok(out)
    }

    /// A final upload (tus concatenation): the complete partial uploads `parts`, in order,
    /// become one version of `new.target`. Returns the final upload's id and outcome.
    pub async fn concat_uploads(
        &self,
        new: NewUpload,
        parts: &[UploadId],
        now_ms: u64,
    ) -> Result<(UploadId, Appended), HubError> {
        let bad = |why: String| HubError::Upload(UploadError::BadConcat(why));
        let target = new.target.clone().ok_or_else(|| bad("a final upload needs a target".into()))?;
        let mut chunks = Vec::new();
        let mut also = Batch::new();
        let mut slots = Vec::new();
        for part in parts {
            slots.push(self.0.uploads.slot(part));
        }
        let mut holds = Vec::new();
        for slot in &slots {
            holds.push(self.hold(slot).await);
        }
        for part in parts {
            let rec = self.upload_record(part).map_err(|_| bad(format!("no upload {part}")))?;
            if !rec.partial || rec.owner != new.owner {
                return Err(bad(format!("{part} is not a partial upload of yours")));
            }
            if rec.done.is_none() {
                return Err(bad(format!("the partial upload {part} is not complete")));
            }
            let list = blocking(|| state::parts(self.0.store.as_ref(), part))?;
            chunks.extend(list.iter().map(|p| ChunkRef { id: p.id, len: p.len }));
            state::drop_upload(self.0.store.as_ref(), &mut also, part, &rec)?;
        }
        let size: u64 = chunks.iter().map(|c| c.len).sum();
        if let Some(length) = new.length.filter(|l| *l != size) {
            return Err(HubError::Upload(UploadError::LengthMismatch { declared: length, other: size }));
        }
        let (id, mut record) = self.create_upload(NewUpload { length: Some(size), ..new }, now_ms).await?;
        let sha256 = blocking(|| self.hash_chunks(&ids_of(&chunks)))?;
        record.offset = size;
        record.done = Some(Done { version: None });
        also.put(record::record_key(&id), record.encode());
        let stored = Stored::new(self.0.files.vault.begin());
        let outcome = match self.commit_upload(&target, &record, chunks, sha256, stored, also.ops, now_ms).await {
            Ok(outcome) => outcome,
            Err(e) => {
                let mut batch = Batch::new();
                batch.delete(record::record_key(&id));
                self.0.durability.commit(batch).await.map_err(commit_error)?;
                return Err(e);
            }
        };
        drop(holds);
        for part in parts {
            self.0.uploads.forget(part);
        }
        let record = self.note_version(&id, record, &outcome).await;
        Ok((id, Appended { record, version: Some(outcome) }))
    }
}
