//! A streaming content-defined chunker: fed body frames as they arrive, it returns each chunk
//! as soon as its end is certain, with its BLAKE3 id, and hashes the whole stream with
//! SHA-256 (for `Repr-Digest`) in the same pass.
//!
//! FastCDC v2020 decides a chunk's end from the bytes after its start only, looking at most
//! `max` bytes ahead, so a cut found in a window of `max` buffered bytes is final whatever
//! follows. The chunker therefore cuts only while it holds at least `max` bytes (and at the
//! end of the stream), and never holds more than `max` bytes plus the frame being added. The
//! chunks it returns are the ones `fastcdc::v2020::FastCDC` finds in the whole stream at once,
//! however the stream is split into frames (tested).

use fastcdc::v2020;
use sha2::{Digest, Sha256};

use super::{ChunkId, ChunkParams};

/// One chunk of a stream.
#[derive(Clone, PartialEq, Eq)]
pub struct Chunk {
    /// BLAKE3 of `data`.
    pub id: ChunkId,
    /// Where it starts in the stream.
    pub offset: u64,
    /// Its bytes.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Chunk({} at {}, {} bytes)", self.id, self.offset, self.data.len())
    }
}

/// What the whole stream was, once it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSummary {
    /// Its length.
    pub len: u64,
    /// SHA-256 of all its bytes.
    pub sha256: [u8; 32],
}

/// The incremental chunker: [`Chunker::push`] each frame, then [`Chunker::finish`].
pub struct Chunker {
    params: ChunkParams,
    masks: (u64, u64),
    /// Buffered bytes not yet cut: `buf[start..]`.
    buf: Vec<u8>,
    start: usize,
    /// Stream offset of `buf[start]`.
    offset: u64,
    sha: Sha256,
}

impl Chunker {
    /// A chunker for one stream.
    pub fn new(params: ChunkParams) -> Self {
        Chunker {
            params,
            masks: v2020::select_masks(params.avg(), v2020::Normalization::Level1),
            buf: Vec::with_capacity(params.max()),
            start: 0,
            offset: 0,
            sha: Sha256::new(),
        }
    }

    /// A chunker that continues a stream paused earlier (a resumable upload): the stream's
    /// first `tail_offset + tail.len()` bytes arrived before, `tail` are the last of them, not
    /// yet cut, and `sha` is the SHA-256 state over all of them. Content-defined cuts depend only
    /// on the bytes after the last cut, so the chunks it returns are those the stream would
    /// have given uninterrupted.
    pub fn resume(params: ChunkParams, tail_offset: u64, tail: &[u8], sha: Sha256) -> Self {
        let mut chunker = Chunker::new(params);
        chunker.buf.extend_from_slice(tail);
        chunker.offset = tail_offset;
        chunker.sha = sha;
        chunker
    }

    /// The bytes received and not yet cut (what a paused upload must keep).
    pub fn tail(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Where [`tail`](Self::tail) starts in the stream: the end of the last chunk returned.
    pub fn tail_offset(&self) -> u64 {
        self.offset
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.offset + self.buffered() as u64
    }

    /// The SHA-256 state over every byte received (to resume or roll back a stream).
    pub fn digest_state(&self) -> Sha256 {
        self.sha.clone()
    }

    /// Bytes held and not yet returned as a chunk (at most `max` between calls).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Adds a frame; returns the chunks it completed (usually none or one).
    pub fn push(&mut self, frame: &[u8]) -> Vec<Chunk> {
        self.sha.update(frame);
        // Drop what earlier calls cut before growing the buffer: it stays within max + frame.
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(frame);
        let mut chunks = Vec::new();
        while self.buffered() >= self.params.max() {
            chunks.push(self.cut());
        }
        chunks
    }

    /// Ends the stream: the last chunks and the stream's length and SHA-256.
    pub fn finish(mut self) -> (Vec<Chunk>, StreamSummary) {
        let mut chunks = Vec::new();
        while self.buffered() > 0 {
            chunks.push(self.cut());
        }
        let summary = StreamSummary { len: self.offset, sha256: self.sha.finalize().into() };
        (chunks, summary)
    }

    /// Cuts the next chunk from the buffer (which holds `max` bytes or the stream's end).
    fn cut(&mut self) -> Chunk {
        let p = &self.params;
        let (mask_s, mask_l) = self.masks;
        let window = &self.buf[self.start..];
        let (_, len) = v2020::cut(window, p.min(), p.avg(), p.max(), mask_s, mask_l, mask_s << 1, mask_l << 1);
        // `cut` returns at least one byte of a non-empty window; never loop on zero.
        let len = len.clamp(1, window.len());
        let data = window[..len].to_vec();
        let chunk = Chunk { id: ChunkId::of(&data), offset: self.offset, data };
        self.start += len;
        self.offset += len as u64;
        chunk
    }
}

/// Chunks a whole buffer at once: the same chunks as streaming it (for tests and tools).
pub fn chunk_all(params: ChunkParams, bytes: &[u8]) -> (Vec<Chunk>, StreamSummary) {
    let mut chunker = Chunker::new(params);
    let mut chunks = chunker.push(bytes);
    let (tail, summary) = chunker.finish();
    chunks.extend(tail);
    (chunks, summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, RngCore, SeedableRng};

    fn small() -> ChunkParams {
        ChunkParams::new(256, 1024, 4096).unwrap()
    }

    fn random_bytes(rng: &mut rand::rngs::StdRng, len: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; len];
        rng.fill_bytes(&mut bytes);
        bytes
    }

    #[test]
    fn a_resumed_stream_cuts_and_hashes_like_an_uninterrupted_one() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(17);
        let bytes = random_bytes(&mut rng, 50_000);
        let (whole, summary) = chunk_all(small(), &bytes);
        for pause in [0usize, 1, 3000, 4096, 27_123, 49_999, 50_000] {
            let mut first = Chunker::new(small());
            let mut chunks = first.push(&bytes[..pause]);
            assert_eq!(first.received(), pause as u64);
            let tail = first.tail().to_vec();
            assert_eq!(first.tail_offset() + tail.len() as u64, pause as u64);
            let mut second = Chunker::resume(small(), first.tail_offset(), &tail, first.digest_state());
            drop(first);
            chunks.extend(second.push(&bytes[pause..]));
            let (last, got) = second.finish();
            chunks.extend(last);
            assert_eq!(chunks, whole, "paused at {pause}");
            assert_eq!(got, summary, "paused at {pause}");
        }
    }

    /// FastCDC over the whole buffer: the chunks every split into frames must reproduce.
    fn reference(params: ChunkParams, bytes: &[u8]) -> Vec<(usize, usize)> {
        v2020::FastCDC::new(bytes, params.min(), params.avg(), params.max()).map(|c| (c.offset, c.length)).collect()
    }

    #[test]
    fn any_framing_gives_fastcdc_s_chunks_ids_and_the_stream_digest() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(15);
        for case in 0..60 {
            let len = rng.random_range(0..40_000);
            let mut bytes = random_bytes(&mut rng, len);
            if case % 5 == 0 {
                // Runs of one byte value: FastCDC falls back to max-sized chunks there.
                let at = rng.random_range(0..=len);
                bytes.splice(at..at, std::iter::repeat_n(7u8, 10_000));
            }
            let params = small();
            let mut chunker = Chunker::new(params);
            let mut chunks = Vec::new();
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let n = rng.random_range(1..=rest.len().min(9000));
                chunks.extend(chunker.push(&rest[..n]));
                assert!(chunker.buffered() < params.max(), "holds {} bytes", chunker.buffered());
                rest = &rest[n..];
            }
            let (tail, summary) = chunker.finish();
            chunks.extend(tail);
            let got: Vec<(usize, usize)> = chunks.iter().map(|c| (c.offset as usize, c.data.len())).collect();
            assert_eq!(got, reference(params, &bytes), "case {case}, {} bytes", bytes.len());
            for c in &chunks {
                let at = c.offset as usize;
                assert_eq!(c.data, bytes[at..at + c.data.len()]);
                assert_eq!(c.id, ChunkId(*blake3::hash(&c.data).as_bytes()));
                assert!(c.data.len() <= params.max());
            }
            assert_eq!(summary.len, bytes.len() as u64);
            assert_eq!(summary.sha256, <[u8; 32]>::from(Sha256::digest(&bytes)));
            assert_eq!(chunk_all(params, &bytes).0, chunks);
        }
    }

    #[test]
    fn an_edit_in_the_middle_changes_only_the_chunks_around_it() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let params = small();
        let before = random_bytes(&mut rng, 200_000);
        let mut after = before.clone();
        after.splice(100_000..100_010, *b"an edit of a different length");
        let ids = |bytes: &[u8]| chunk_all(params, bytes).0.into_iter().map(|c| c.id).collect::<Vec<_>>();
        let (old, new) = (ids(&before), ids(&after));
        let shared = new.iter().filter(|id| old.contains(id)).count();
        // ~200 chunks of ~1 KiB: all but the one or two around the edit are reused.
        assert!(old.len() > 100, "{} chunks", old.len());
        assert!(new.len() - shared <= 3, "{} of {} chunks are new", new.len() - shared, new.len());
    }

    #[test]
    fn an_empty_stream_has_no_chunks_and_the_empty_digest() {
        let (chunks, summary) = Chunker::new(small()).finish();
        assert!(chunks.is_empty());
        assert_eq!(summary.len, 0);
        assert_eq!(summary.sha256, <[u8; 32]>::from(Sha256::digest(b"")));
    }
}
