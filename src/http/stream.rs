//! The body of a 209 subscription response: encoded updates, heartbeats between them, and
//! an end when the document is deleted, the credential that opened the stream ends, or the
//! server shuts down.
//!
//! One [`Feed`] of chunks ([`chunks`]) goes out three ways: as hyper's response body
//! ([`body`]: HTTP/2, HTTP/1.0), or, on an HTTP/1.1 connection taken over after the 209 head
//! (see `takeover`), written by [`write_chunked`] in a task of its own (TLS), or by its task
//! and its document's fan-out writer (`fanout`: plain TCP), which take the feed apart.
//!
//! Each [`Chunk`] is framed once, when it is encoded, as hyper frames a chunk of a chunked
//! body; the update shared by every subscriber at the previous head is encoded and framed
//! once per round (`SharedUpdate::encoded`). So a delivery on a taken-over connection is one
//! `write` of bytes that already exist, with no per-subscriber size line, allocation or
//! vectored write (B4 in docs/BENCHMARKS.md); hyper's body takes the data inside the frame.

use std::pin::Pin;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_stream::{Stream, StreamExt};

use crate::document::SharedUpdate;
use crate::hub::{Delivery, Subscription};
use crate::protocol::{encode_update, Update, UpdateContent};

use super::reply::REPR_TYPE;

/// A subscription's chunks: each an encoded batch of updates or a heartbeat.
pub type Chunks = Pin<Box<dyn Stream<Item = Chunk> + Send>>;

/// Room for a size line in front of an encoding: a usize has at most 16 hex digits, + CRLF.
const LINE_ROOM: usize = 18;

/// One chunk of a chunked body, framed: `{len:X}\r\n`, the data, `\r\n`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    framed: Bytes,
    /// Where the data starts (after the size line).
    start: usize,
}

impl Chunk {
    /// Frames `data` (one copy; the encoders below write after room left for the size line).
    pub fn new(data: &[u8]) -> Chunk {
        let mut out = vec![0u8; LINE_ROOM];
        out.extend_from_slice(data);
        Chunk::frame(out)
    }

    /// Frames what `out` holds after its first [`LINE_ROOM`] bytes, in place: the size line
    /// goes right before the data, and the chunk starts there.
    fn frame(mut out: Vec<u8>) -> Chunk {
        let len = out.len().saturating_sub(LINE_ROOM);
        let mut line = [0u8; LINE_ROOM];
        let n = size_line(len, &mut line);
        let at = LINE_ROOM - n;
        out[at..LINE_ROOM].copy_from_slice(&line[..n]);
        out.extend_from_slice(b"\r\n");
        Chunk { framed: Bytes::from(out).slice(at..), start: n }
    }

    /// A chunk from bytes [`Chunk::framed`] returned (a shared update's slot).
    fn from_framed(framed: Bytes) -> Chunk {
        let start = framed.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
        Chunk { framed, start }
    }

    /// The whole frame, as written to a taken-over connection.
    pub fn framed(&self) -> &Bytes {
        &self.framed
    }

    /// The data alone, as hyper's body sends it (hyper frames it itself).
    pub fn data(&self) -> Bytes {
        self.framed.slice(self.start..self.framed.len().saturating_sub(2).max(self.start))
    }

    /// True for a chunk without data (which would read as the end of the body).
    pub fn is_empty(&self) -> bool {
        self.framed.len() <= self.start + 2
    }
}

/// A subscription on its way to the wire: its updates, heartbeats between them, and what
/// ends it. The subscription computes an update only when [`Feed::next`] is called, and the
/// writers call it only when the socket can take more, so a client that stops reading stops
/// its updates from being computed: no queue grows. `header_only` (a `Method-Override: HEAD`
/// subscription, a change feed) sends each update's `Version` and `Parents` with an empty
/// body. `shutdown` is checked before each chunk, never waited on: at shutdown the hub ends
/// subscriptions through their documents (`Hub::end_subscriptions`). Its parts are open to
/// the fan-out (`super::fanout`), which takes the subscription out while it writes for it.
pub struct Feed {
    /// Boxed: the fan-out moves it between its seat and its task (B5: one copy, not two).
    pub(super) sub: Box<Subscription>,
    pub(super) beats: Option<Interval>,
    /// Fires when the credential that opened the stream is revoked or expires.
    pub(super) ended: Option<watch::Receiver<bool>>,
    pub(super) shutdown: watch::Receiver<bool>,
    pub(super) header_only: bool,
}

/// The [`Feed`] of `sub`, with a heartbeat every `heartbeat` when the client asked for them.
pub fn chunks(
    sub: Subscription,
    heartbeat: Option<Duration>,
    shutdown: watch::Receiver<bool>,
    ended: Option<watch::Receiver<bool>>,
    header_only: bool,
) -> Feed {
    let beats = beats(heartbeat);
    Feed { sub: Box::new(sub), beats, ended, shutdown, header_only }
}

impl Feed {
    /// The next chunk, or None once the stream is over.
    pub async fn next(&mut self) -> Option<Chunk> {
        next_chunk(&mut self.sub, &mut self.beats, &mut self.ended, &self.shutdown, self.header_only).await
    }

    /// The feed as a stream of chunks (hyper's body, the writer of a TLS connection).
    pub fn into_chunks(self) -> Chunks {
        Box::pin(futures_util::stream::unfold(self, |mut feed| async move {
            let chunk = feed.next().await?;
            Some((chunk, feed))
        }))
    }
}

/// The next chunk of a feed whose parts are apart (see [`Feed`]): an update, a heartbeat, or
/// None when the subscription, the credential or the server ended it. Cancel-safe: what a
/// dropped call had not returned is computed again by the next.
pub(super) async fn next_chunk(
    sub: &mut Subscription,
    beats: &mut Option<Interval>,
    ended: &mut Option<watch::Receiver<bool>>,
    shutdown: &watch::Receiver<bool>,
    header_only: bool,
) -> Option<Chunk> {
    let next = tokio::select! {
        delivery = sub.next_delivery() => Next::Delivery(delivery?),
        () = tick(beats) => Next::Beat,
        () = revoked(ended) => return None,
    };
    if *shutdown.borrow() {
        return None;
    }
    Some(match next {
        // Every subscriber at the previous head sends the same bytes: the first encodes and
        // frames them, the rest share them (B4: one encoding per round, not per subscriber).
        Next::Delivery(Delivery::Shared(shared)) if !header_only => shared_chunk(&shared),
        Next::Delivery(delivery) => encode(delivery.into_updates(), header_only),
        Next::Beat => heartbeat(),
    })
}

enum Next {
    Delivery(Delivery),
    Beat,
}

/// The chunk of an update shared by every subscriber at the previous head, encoded and
/// framed by the first that sends it.
fn shared_chunk(shared: &SharedUpdate) -> Chunk {
    Chunk::from_framed(shared_framed(shared).clone())
}

/// [`shared_chunk`]'s framed bytes, borrowed (the fan-out writes them as they are).
pub(super) fn shared_framed(shared: &SharedUpdate) -> &Bytes {
    shared.encoded.get_or_init(|| encode(vec![shared.update.clone()], false).framed)
}

/// A heartbeat chunk.
pub(super) fn heartbeat() -> Chunk {
    Chunk::from_framed(Bytes::from_static(HEARTBEAT_CHUNK))
}

/// The heartbeat timer of a stream whose client asked for one every `heartbeat` (the first
/// after one period; a late tick delays the next instead of bursting).
pub(super) fn beats(heartbeat: Option<Duration>) -> Option<Interval> {
    heartbeat.map(|every| {
        let mut interval = tokio::time::interval_at(Instant::now() + every, every);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        interval
    })
}

/// The next heartbeat; never, without heartbeats.
pub(super) async fn tick(beats: &mut Option<Interval>) {
    match beats {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Completes when the credential is revoked or expires (or its registry entry is gone);
/// never, for a stream opened without one.
pub(super) async fn revoked(ended: &mut Option<watch::Receiver<bool>>) {
    match ended {
        Some(ended) => {
            let _ = ended.wait_for(|ended| *ended).await;
        }
        None => std::future::pending().await,
    }
}

/// What a taken-over connection writes: a live subscription's feed (which a plain TCP
/// connection writes through the fan-out, `super::fanout`), or any stream of chunks.
pub enum Source {
    /// A subscription.
    Live(Box<Feed>),
    /// Chunks from elsewhere: a file subscription (`file_stream`), tests.
    Chunks(Chunks),
}

impl Source {
    /// The chunks to write, for a writer of its own.
    pub fn into_chunks(self) -> Chunks {
        match self {
            Source::Live(feed) => feed.into_chunks(),
            Source::Chunks(chunks) => chunks,
        }
    }
}

impl From<Feed> for Source {
    fn from(feed: Feed) -> Source {
        Source::Live(Box::new(feed))
    }
}

impl From<Chunks> for Source {
    fn from(chunks: Chunks) -> Source {
        Source::Chunks(chunks)
    }
}

/// A heartbeat (`protocol::HEARTBEAT`, CRLF) as a framed chunk.
const HEARTBEAT_CHUNK: &[u8] = b"2\r\n\r\n\r\n";

fn encode(updates: Vec<Update>, header_only: bool) -> Chunk {
    let mut out = vec![0u8; LINE_ROOM];
    for mut u in updates {
        if header_only {
            u.content = UpdateContent::HeaderOnly;
        }
        encode_update(&u, REPR_TYPE, &mut out);
    }
    Chunk::frame(out)
}

/// `feed` as hyper's response body, which hyper frames itself.
pub fn body(feed: Feed) -> Body {
    chunks_body(feed.into_chunks())
}

/// Any stream of chunks as hyper's response body (hyper frames each chunk itself).
pub fn chunks_body(chunks: Chunks) -> Body {
    Body::from_stream(chunks.map(|chunk| Ok::<Bytes, std::convert::Infallible>(chunk.data())))
}

/// Writes `chunks` to a connection taken over after its 209 head, framed as hyper frames a
/// chunked body (`{len:X}\r\n…\r\n` per chunk, one write each), until the stream ends or
/// the client goes away. `io` is the stall guard, so a client that stops reading is cut off
/// here as it was under hyper. At the end of the stream it writes the last chunk
/// (`0\r\n\r\n`) and returns the socket, at a request boundary, for hyper to serve the
/// connection's next request; unless `reusable` is false or the client sent bytes during the
/// stream (a request pipelined behind it, which is dropped): then it closes the connection,
/// and the client sends that request again.
pub async fn write_chunked<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: S,
    mut chunks: Chunks,
    mut reusable: bool,
) -> Option<S> {
    let mut discard = [0u8; 64];
    loop {
        let chunk = tokio::select! {
            // The client's side first, so that bytes it sent count before the stream's end.
            biased;
            read = io.read(&mut discard) => match read {
                Ok(n) if n > 0 => {
                    reusable = false;
                    continue;
                }
                // The client closed the connection, or it broke: release the subscription.
                _ => return None,
            },
            chunk = chunks.next() => chunk,
        };
        let Some(chunk) = chunk else { break };
        // An empty chunk would read as the end of the body.
        if !chunk.is_empty() && write_chunk(&mut io, chunk.framed()).await.is_err() {
            return None;
        }
    }
    io.write_all(b"0\r\n\r\n").await.ok()?;
    io.flush().await.ok()?;
    if reusable {
        return Some(io);
    }
    let _ = io.shutdown().await;
    None
}

/// One framed chunk, in one write when the socket takes it whole.
pub(super) async fn write_chunk<W: AsyncWrite + Unpin>(io: &mut W, framed: &[u8]) -> std::io::Result<()> {
    io.write_all(framed).await?;
    // A TLS stream may hold what it encrypted until flushed.
    io.flush().await
}

/// `{len:X}\r\n` into `out` (a usize has at most 16 hex digits); returns its length.
fn size_line(len: usize, out: &mut [u8; LINE_ROOM]) -> usize {
    use std::io::Write;
    let mut rest = &mut out[..];
    let _ = write!(rest, "{len:X}\r\n");
    let left = rest.len();
    out.len() - left
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn size_lines_are_hyper_s() {
        let mut out = [0u8; 18];
        for (len, line) in [(0, "0\r\n"), (5, "5\r\n"), (255, "FF\r\n"), (usize::MAX, "FFFFFFFFFFFFFFFF\r\n")] {
            let n = size_line(len, &mut out);
            assert_eq!(std::str::from_utf8(&out[..n]).unwrap(), line);
        }
    }

    #[test]
    fn chunks_are_framed_once_and_hyper_gets_the_data_inside() {
        for data in [&b""[..], b"x", &[b'y'; 300]] {
            let chunk = Chunk::new(data);
            let mut expected = format!("{:X}\r\n", data.len()).into_bytes();
            expected.extend_from_slice(data);
            expected.extend_from_slice(b"\r\n");
            assert_eq!(chunk.framed().as_ref(), expected);
            assert_eq!(chunk.data().as_ref(), data);
            assert_eq!(chunk.is_empty(), data.is_empty());
            // A shared update's slot keeps the frame; the chunk is found again from it.
            assert_eq!(Chunk::from_framed(chunk.framed().clone()), chunk);
        }
        let beat = heartbeat();
        assert_eq!(beat.data().as_ref(), crate::protocol::HEARTBEAT);
        assert_eq!(beat, Chunk::new(crate::protocol::HEARTBEAT));
    }

    #[test]
    fn an_encoded_update_is_framed_in_place() {
        let update = Update {
            version: crate::protocol::VersionSet::new(["a-1".to_string()]),
            parents: crate::protocol::VersionSet::new(["a-0".to_string()]),
            content: UpdateContent::Snapshot("hello".into()),
            repr_digest: None,
        };
        let mut bare = Vec::new();
        encode_update(&update, REPR_TYPE, &mut bare);
        let chunk = encode(vec![update], false);
        assert_eq!(chunk, Chunk::new(&bare));
    }

    #[tokio::test]
    async fn chunks_are_framed_and_the_stream_ends_with_the_last_chunk() {
        let (mut client, server) = tokio::io::duplex(1024);
        let chunks: Chunks =
            Box::pin(tokio_stream::iter(["hello", "", "a longer chunk of 26 bytes"].map(|s| Chunk::new(s.as_bytes()))));
        let server = write_chunked(server, chunks, true).await.expect("the socket back");
        drop(server);
        let mut out = Vec::new();
        client.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"5\r\nhello\r\n1A\r\na longer chunk of 26 bytes\r\n0\r\n\r\n");
    }

    #[tokio::test]
    async fn bytes_from_the_client_during_the_stream_close_the_connection_after_it() {
        let (mut client, server) = tokio::io::duplex(1024);
        let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(1);
        let chunks: Chunks = Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx));
        let task = tokio::spawn(write_chunked(server, chunks, true));
        client.write_all(b"GET /pipelined HTTP/1.1\r\n\r\n").await.unwrap();
        tx.send(Chunk::new(b"x")).await.unwrap();
        let mut first = [0u8; 6];
        client.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"1\r\nx\r\n");
        drop(tx);
        assert!(task.await.unwrap().is_none(), "the connection must not serve the pipelined request");
        let mut out = Vec::new();
        client.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"0\r\n\r\n");
    }

    #[tokio::test]
    async fn a_client_that_closes_ends_the_task_without_a_write() {
        let (client, server) = tokio::io::duplex(1024);
        let chunks: Chunks = Box::pin(tokio_stream::pending());
        let task = tokio::spawn(write_chunked(server, chunks, true));
        drop(client);
        assert!(tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().is_none());
    }
}
