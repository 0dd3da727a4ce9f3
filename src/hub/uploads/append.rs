//! An append: the request's body streamed into the chunk store from the upload's offset,
//! checkpointed as it goes and at its end, then (when it was the last one) the completion.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha1::Digest as _;
use sha2::Sha256;

use crate::chunks::{ChunkId, ChunkSize, Chunker};
use crate::document::FileWriteOutcome;
use crate::protocol::upload::ChecksumAlgorithm;
use crate::store::Batch;
use crate::upload::record::UploadRecord;
use crate::upload::{UploadError, UploadId};

use super::super::files::Stored;
use super::super::loading::blocking;
use super::{commit_error, state, Held, Hub, HubError, CHECKPOINT_EVERY};

/// A superseded request keeps reading while bytes come at least this often...
const DRAIN_GAP: std::time::Duration = std::time::Duration::from_millis(20);
/// ...and for at most this long.
const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);

/// What the request says besides its body.
#[derive(Clone, Debug, Default)]
pub struct Append {
    /// Where the client says its bytes start.
    pub offset: u64,
    /// The length, when this request declares it (deferred length, IETF `Upload-Length`).
    pub length: Option<u64>,
    /// `Upload-Checksum` of this request's bytes: nothing is kept unless they match.
    pub checksum: Option<(ChecksumAlgorithm, Vec<u8>)>,
    /// IETF `Upload-Complete`: `Some(true)` ends the upload with this body, `Some(false)` says
    /// more will follow; None (tus) completes once the declared length is reached.
    pub complete: Option<bool>,
    /// The SHA-256 the whole content must have (`Repr-Digest` of the complete content).
    pub expect_sha256: Option<[u8; 32]>,
    /// The body's length when the request declares it (`Content-Length`): a body that cannot
    /// fit is refused before a byte is read.
    pub declared: Option<u64>,
    /// Request time, ms since 1970.
    pub now_ms: u64,
}

/// Where an append left the upload.
#[derive(Debug)]
pub struct Appended {
    /// The record after the append.
    pub record: UploadRecord,
    /// The version the upload became, when it completed with this request.
    pub version: Option<FileWriteOutcome>,
}

/// How the body's stream ended.
enum Ended {
    /// All of it arrived.
    Whole,
    /// The connection failed or the client went away.
    Cut,
    /// A newer request for the upload took over.
    Superseded,
    /// More bytes than the upload may hold.
    Overflow(UploadError),
}

/// A hasher for `Upload-Checksum`.
enum Check {
    Sha1(sha1::Sha1),
    Sha256(Sha256),
}

impl Check {
    fn new(algorithm: ChecksumAlgorithm) -> Self {
        match algorithm {
            ChecksumAlgorithm::Sha1 => Check::Sha1(sha1::Sha1::new()),
            ChecksumAlgorithm::Sha256 => Check::Sha256(Sha256::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Check::Sha1(h) => h.update(bytes),
            Check::Sha256(h) => h.update(bytes),
        }
    }

    fn matches(self, want: &[u8]) -> bool {
        match self {
            Check::Sha1(h) => h.finalize().as_slice() == want,
            Check::Sha256(h) => h.finalize().as_slice() == want,
        }
    }
}

fn algorithm_name(a: ChecksumAlgorithm) -> &'static str {
    match a {
        ChecksumAlgorithm::Sha1 => "sha1",
        ChecksumAlgorithm::Sha256 => "sha256",
    }
}

impl Hub {
    /// Appends `body` to upload `id` at `req.offset`. Returns once what it kept is durable.
    pub async fn append_upload<S, E>(&self, id: &UploadId, req: Append, mut body: S) -> Result<Appended, HubError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
    {
        // Offsets only grow: an append behind the durable offset is stale (a browser repeating a
        // cut request, say) and is refused at once, without waiting for its turn or stopping the
        // request in flight.
        let durable = self.upload_record(id)?;
        if req.offset < durable.offset && durable.done.is_none() {
            return Err(HubError::Upload(UploadError::OffsetMismatch { sent: req.offset, held: durable.offset }));
        }
        let slot = self.0.uploads.slot(id);
        let mut held = self.hold(&slot).await;
        let mut record = self.upload_record(id)?;
        if record.done.is_some() {
            return Err(HubError::Upload(UploadError::Completed));
        }
        if req.offset != record.offset {
            return Err(HubError::Upload(UploadError::OffsetMismatch { sent: req.offset, held: record.offset }));
        }
        if let Some(length) = req.length {
            match record.length {
                Some(declared) if declared != length => {
                    return Err(HubError::Upload(UploadError::LengthMismatch { declared, other: length }))
                }
                _ if length < record.offset => {
                    return Err(HubError::Upload(UploadError::LengthMismatch {
                        declared: record.offset,
                        other: length,
                    }))
                }
                _ => record.length = Some(length),
            }
        }
        if let Some(expect) = req.expect_sha256 {
            record.expect_sha256 = Some(hex::encode(expect));
        }
        let limit = self.upload_limit();
        let room = record.length.unwrap_or(limit).min(limit).saturating_sub(record.offset);
        if let Some(declared) = req.declared.filter(|n| *n > room) {
            let reached = record.offset + declared;
            return Err(HubError::Upload(match record.length {
                Some(length) if length <= limit => UploadError::PastLength { length, reached },
                _ => UploadError::TooLarge { limit },
            }));
        }

        let chunker = self.resumed_chunker(&mut held, id, &record)?;
        let hash_known = held.live.hash.is_some();
        let mut check = req.checksum.as_ref().map(|(a, _)| Check::new(*a));
        let mut ingest = self.ingest_resumed(chunker, Stored::new(self.0.files.vault.begin()), room);
        let mut since_checkpoint = 0u64;
        let mut received = 0u64;
        let mut turn = slot.turn.subscribe();
        // Once a newer request asks for the upload, this one still takes the bytes that have
        // already arrived (they are in the socket: dropping them would make the client send
        // them again), then stops.
        let mut draining: Option<tokio::time::Instant> = None;
        let ended = loop {
            let frame = match draining {
                Some(until) => {
                    let wait = DRAIN_GAP.min(until.saturating_duration_since(tokio::time::Instant::now()));
                    match tokio::time::timeout(wait, body.next()).await {
                        Ok(frame) => frame,
                        Err(_) => break Ended::Superseded,
                    }
                }
                None => tokio::select! {
                    biased;
                    changed = turn.wait_for(|t| *t != held.turn) => {
                        let _ = changed;
                        draining = Some(tokio::time::Instant::now() + DRAIN_LIMIT);
                        continue;
                    }
                    frame = body.next() => frame,
                },
            };
            let bytes = match frame {
                None => break Ended::Whole,
                Some(Err(_)) => break Ended::Cut,
                Some(Ok(bytes)) => bytes,
            };
            if received + bytes.len() as u64 > room {
                let reached = record.offset + received + bytes.len() as u64;
                break Ended::Overflow(match record.length {
                    Some(length) if length <= limit => UploadError::PastLength { length, reached },
                    _ => UploadError::TooLarge { limit },
                });
            }
            received += bytes.len() as u64;
            since_checkpoint += bytes.len() as u64;
            if let Some(check) = &mut check {
                check.update(&bytes);
            }
            ingest.push(bytes).await?;
            if check.is_none() && since_checkpoint >= CHECKPOINT_EVERY {
                // A long request keeps what arrived durable as it goes (a crash loses less): the
                // chunks cut so far, up to the end of the last one (the writer thread goes on).
                let flushed = ingest.flush().await?;
                self.record_progress(&mut held, id, &mut record, &flushed.refs, flushed.tail_offset, None, req.now_ms)
                    .await?;
                since_checkpoint = 0;
            }
        };
        let (chunker, mut stored) = ingest.pause().await?;

        // Bytes that cannot be verified or did not match are not kept: the record stays as it was.
        if let (Some((algorithm, want)), Some(check)) = (&req.checksum, check) {
            match ended {
                Ended::Whole if check.matches(want) => {}
                Ended::Whole => {
                    return Err(HubError::Upload(UploadError::ChecksumMismatch {
                        algorithm: algorithm_name(*algorithm),
                    }))
                }
                _ => return Err(self.ended_error(ended, &record)),
            }
        }
        // The draft says only `Upload-Complete: ?1` completes an upload, but tus-js-client's
        // Node file source sends `?0` on the last append of a resumed upload (and then reports
        // success): an upload that reaches its declared length is complete, whatever it says.
        let completes = match (&ended, req.complete) {
            (Ended::Whole, Some(true)) => true,
            (Ended::Whole, _) => record.length == Some(chunker.received()),
            _ => false,
        };
        if completes {
            if let Some(declared) = record.length.filter(|l| *l != chunker.received()) {
                // IETF: `Upload-Complete: ?1` before the declared length was reached.
                self.checkpoint(&mut held, id, &mut record, &chunker, &mut stored, hash_known, req.now_ms).await?;
                return Err(HubError::Upload(UploadError::LengthMismatch { declared, other: chunker.received() }));
            }
            record.length = Some(chunker.received());
            let version = self.complete(&mut held, id, record, chunker, stored, hash_known, req.now_ms).await?;
            return Ok(version);
        }
        self.checkpoint(&mut held, id, &mut record, &chunker, &mut stored, hash_known, req.now_ms).await?;
        match ended {
            Ended::Whole => Ok(Appended { record, version: None }),
            other => Err(self.ended_error(other, &record)),
        }
    }

    fn ended_error(&self, ended: Ended, record: &UploadRecord) -> HubError {
        match ended {
            Ended::Overflow(e) => HubError::Upload(e),
            Ended::Superseded => HubError::Upload(UploadError::Superseded(record.offset)),
            // Nobody reads the answer to a cut request; the error says what was kept.
            Ended::Cut | Ended::Whole => HubError::Upload(UploadError::Superseded(record.offset)),
        }
    }

    /// The chunker that continues the upload from its record: the tail's bytes (cached, or read
    /// back from the chunk store) and the hash state (when still in memory).
    fn resumed_chunker(&self, held: &mut Held<'_>, id: &UploadId, record: &UploadRecord) -> Result<Chunker, HubError> {
        let tail = match (&held.live.tail, record.tail_id()) {
            (_, None) => Vec::new(),
            (Some(cached), Some((_, len))) if cached.len() as u64 == len => cached.clone(),
            (_, Some((tail, _))) => {
                let bytes = blocking(|| self.0.files.vault.read(&ChunkId(tail)))?;
                bytes.ok_or_else(|| {
                    HubError::Chunks(crate::chunks::ChunkError::Corrupt {
                        id: ChunkId(tail),
                        why: format!("the tail of upload {id} is missing"),
                    })
                })?
            }
        };
        if record.offset == 0 {
            held.live.hash = Some(Sha256::new());
        }
        let hash = held.live.hash.clone().unwrap_or_default();
        let tail_offset = record.offset - tail.len() as u64;
        Ok(Chunker::resume(self.0.files.params, tail_offset, &tail, hash))
    }

    /// Makes everything `chunker` and `stored` hold durable in the upload's record, at the end
    /// of a request: the new chunks, and the uncut tail as a chunk of its own. `hash_known`:
    /// the chunker's SHA-256 state covers the whole upload (it was not lost to a restart).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn checkpoint(
        &self,
        held: &mut Held<'_>,
        id: &UploadId,
        record: &mut UploadRecord,
        chunker: &Chunker,
        stored: &mut Stored,
        hash_known: bool,
        now_ms: u64,
    ) -> Result<(), HubError> {
        let tail_bytes = chunker.tail();
        let tail = match tail_bytes.is_empty() {
            true => None,
            false => Some(blocking(|| stored.upload.put(tail_bytes))?),
        };
        let refs = std::mem::take(&mut stored.refs);
        stored.chunks.clear();
        self.record_progress(held, id, record, &refs, chunker.received(), tail, now_ms).await?;
        held.live.hash = hash_known.then(|| chunker.digest_state());
        let bytes = tail_bytes.to_vec();
        self.cache_tail(&mut held.live, &bytes);
        Ok(())
    }

    /// Commits one checkpoint: `refs` (chunks stored since the last one, in order) appended to
    /// the upload's list, `offset` the bytes now kept, `tail` the uncut last bytes' chunk (None:
    /// the offset ends at a chunk's end). The chunks must be stored (and claimed) already.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn record_progress(
        &self,
        held: &mut Held<'_>,
        id: &UploadId,
        record: &mut UploadRecord,
        refs: &[(ChunkId, ChunkSize)],
        offset: u64,
        tail: Option<(ChunkId, ChunkSize)>,
        now_ms: u64,
    ) -> Result<(), HubError> {
        if offset == record.offset && refs.is_empty() && tail.map(|t| t.0 .0) == record.tail_id().map(|t| t.0) {
            return Ok(());
        }
        let old_tail = record.tail_id().map(|(t, _)| t);
        let from = record.parts;
        record.parts += refs.len() as u32;
        record.offset = offset;
        record.tail = tail.map(|(t, size)| (t.to_string(), u64::from(size.plain)));
        record.expires_ms = now_ms + self.0.settings.uploads.expiry.as_millis() as u64;
        let mut batch = Batch::new();
        state::checkpoint(&mut batch, id, record, from, refs, old_tail, tail);
        if self.0.settings.ack == crate::document::AckPolicy::UnsafeBeforeDurable {
            // Test-only (`--unsafe-ack-before-durable-ms`): the offset is answered before the
            // checkpoint is durable, so the crash tests can show they catch the loss.
            let durability = self.0.durability.clone();
            tokio::spawn(async move { durability.commit(batch).await });
        } else {
            self.0.durability.commit(batch).await.map_err(commit_error)?;
        }
        // Until the request's end says otherwise, the tail and the hash state in memory are
        // stale (were the request to fail now, the next one rehashes at completion).
        self.uncache_tail(&mut held.live);
        held.live.hash = None;
        Ok(())
    }
}
