//! File bytes on the way out: a version's bytes (or a range of them) as a response body, read
//! chunk by chunk from the chunk store, and a file subscription as a `209` stream whose updates
//! carry whole versions, also chunk by chunk. Neither holds more than one chunk in memory.

use std::collections::VecDeque;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::Interval;

use crate::chunks::ChunkId;
use crate::file::{ChunkRef, FileVersion};
use crate::hub::{FileSubscription, Hub};
use crate::protocol::file_update::{encode_file_update_head, FileBodyHead, FileUpdateHead, FILE_UPDATE_END};
use crate::protocol::{self, VersionSet};

use super::stream::{self, Chunk, Chunks};

/// Bytes `start..end` of a version whose chunks are `chunks`, read one chunk at a time. A chunk
/// that cannot be read ends the body early (hyper then aborts the response: the client sees a
/// short body, never other bytes).
pub fn bytes(hub: Hub, chunks: Vec<ChunkRef>, start: u64, end: u64) -> Body {
    let stream =
        futures_util::stream::unfold((hub, chunks, 0usize, 0u64), move |(hub, chunks, mut i, mut at)| async move {
            loop {
                let c = chunks.get(i)?;
                let c_end = at + c.len;
                if c_end <= start {
                    i += 1;
                    at = c_end;
                    continue;
                }
                if at >= end {
                    return None;
                }
                let piece = read_piece(&hub, c, start.saturating_sub(at), end.min(c_end) - at);
                return Some((piece, (hub, chunks, i + 1, c_end)));
            }
        });
    Body::from_stream(stream)
}

/// Bytes `from..to` of one chunk.
fn read_piece(hub: &Hub, c: &ChunkRef, from: u64, to: u64) -> Result<Bytes, std::io::Error> {
    let data = hub.read_chunk(&ChunkId(c.id)).map_err(|e| {
        tracing::error!(chunk = %ChunkId(c.id), error = %e, "a chunk of a served version could not be read");
        std::io::Error::other(e.to_string())
    })?;
    if data.len() as u64 != c.len {
        return Err(std::io::Error::other("a chunk's length differs from its version's record"));
    }
    Ok(data.slice(from as usize..to as usize))
}

/// A file subscription on its way to the wire: the subscription, the body chunks of the update
/// being sent, heartbeats between updates, and what ends it (as `stream::Feed` for text).
struct FileFeed {
    sub: FileSubscription,
    hub: Hub,
    /// Chunks of the current update's body still to send; then its end.
    pending: VecDeque<ChunkRef>,
    end_pending: bool,
    beats: Option<Interval>,
    ended: Option<watch::Receiver<bool>>,
    shutdown: watch::Receiver<bool>,
    header_only: bool,
}

impl FileFeed {
    /// The next chunk: the rest of the update being sent, else the next update or a
    /// heartbeat; None once the stream is over.
    async fn next(&mut self) -> Option<Chunk> {
        if *self.shutdown.borrow() {
            return None;
        }
        if let Some(c) = self.pending.pop_front() {
            // The update cannot be completed: end the stream (the client resumes).
            return read_piece(&self.hub, &c, 0, c.len).ok().map(|data| Chunk::new(&data));
        }
        if std::mem::take(&mut self.end_pending) {
            return Some(Chunk::new(FILE_UPDATE_END));
        }
        let version = tokio::select! {
            version = self.sub.next() => Some(version?),
            () = stream::tick(&mut self.beats) => None,
            () = stream::revoked(&mut self.ended) => return None,
        };
        if *self.shutdown.borrow() {
            return None;
        }
        let Some(version) = version else { return Some(stream::heartbeat()) };
        let (head, body) = update_head(&version, self.header_only);
        self.pending = body;
        self.end_pending = true;
        Some(head)
    }
}

/// The chunks of a file subscription: one update per new served version (`header_only`: the
/// heads without bodies, a change feed), heartbeats between updates, ended by the credential's
/// end or shutdown like text subscriptions.
pub fn chunks(
    sub: FileSubscription,
    hub: Hub,
    heartbeat: Option<Duration>,
    shutdown: watch::Receiver<bool>,
    ended: Option<watch::Receiver<bool>>,
    header_only: bool,
) -> Chunks {
    let beats = stream::beats(heartbeat);
    let feed = FileFeed { sub, hub, pending: VecDeque::new(), end_pending: false, beats, ended, shutdown, header_only };
    Box::pin(futures_util::stream::unfold(feed, |mut feed| async move {
        let chunk = feed.next().await?;
        Some((chunk, feed))
    }))
}

/// The head of the update for `version`, and the chunks its body is made of.
fn update_head(version: &FileVersion, header_only: bool) -> (Chunk, VecDeque<ChunkRef>) {
    let body = version.content.as_ref().map(|c| FileBodyHead {
        content_type: c.content_type.clone(),
        len: (!header_only).then_some(c.size),
        repr_digest: protocol::repr_digest_sha256(&c.sha256),
    });
    let head = FileUpdateHead {
        version: VersionSet::new([version.id.to_string()]),
        parents: VersionSet::new(version.parents.iter().map(|p| p.to_string())),
        wallclockish: version.id.is_wallclockish(),
        body,
    };
    let mut out = Vec::new();
    encode_file_update_head(&head, &mut out);
    let chunks = match &version.content {
        Some(c) if !header_only => c.chunks.iter().copied().collect(),
        _ => VecDeque::new(),
    };
    (Chunk::new(&out), chunks)
}
