//! Taking an HTTP/1.1 connection over from hyper once a subscription's 209 head is written.
//!
//! Why: hyper keeps about 25 KiB for every HTTP/1 connection for as long as it lives (an
//! 8 KiB write buffer, a read buffer grown to 16 KiB, its connection task), and hyper 1.x has
//! no setting for either buffer. A subscription lives for hours writing a chunk now and then,
//! so those buffers were most of what an idle subscriber cost (B5 in docs/BENCHMARKS.md).
//!
//! How, without an HTTP server of our own: hyper still parses the request and writes the 209
//! head, with every header the layers add. The handler *arms* the connection's [`Takeover`]
//! with the subscription's stream of chunks and answers a body of one sentinel chunk (16
//! random bytes) followed by its end. [`HandOff`], the socket wrapper hyper writes to, passes
//! everything before the sentinel chunk through (the head, and whatever hyper still had
//! buffered before it), swallows the sentinel and the end, reports end-of-file to reads and
//! ignores hyper's shutdown. hyper then sees a finished exchange and a client that closed an
//! idle connection: it ends the connection, frees its buffers and task, and drops the
//! wrapper, which hands the socket over ([`Claim::take`]); the accept loop runs the
//! subscription's writer on it as a small task of its own (`fanout::write_fanned` on plain
//! TCP, [`super::stream::write_chunked`] on TLS). When the stream ends,
//! the writer sends the last chunk and the accept loop serves the socket with hyper again,
//! so the connection stays usable, as it was when hyper wrote the stream itself.
//!
//! A request pipelined behind the subscription would be lost in hyper's buffer: hyper reads
//! it before it lets go, meets end-of-file in the middle of it and ends with an error (and
//! should it ever call the service first, [`Takeover::refuse_pipelined`] keeps the request
//! from running: its answer could not reach the client). The connection then closes after
//! the stream, so the client knows to send it again. The writers treat bytes the client
//! sends during the stream the same way.
//!
//! Why a random sentinel rather than "the first blank line after arming": with pipelining,
//! the tail of an earlier response may still sit in hyper's buffer in front of the 209 head,
//! and a document may contain any text; no client can predict 16 random bytes. hyper buffers
//! a chunk's size line, data and CRLF together, and [`HandOff`] never passes a byte from the
//! sentinel chunk on, so the sentinel is always whole within one write.
//!
//! Only HTTP/1.1 requests are taken over: HTTP/2 streams share their connection (they stay on
//! hyper), and HTTP/1.0 has no chunked framing. HTTPS over HTTP/1.1 is taken over like
//! cleartext: the wrapper sits above the TLS stream, so the task writes through TLS.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::Version;
use bytes::Bytes;
use http_body::Frame;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

use super::stream::Source;

/// Length of the sentinel chunk's data.
const NONCE_LEN: usize = 16;
/// The sentinel chunk's size line, as hyper writes it (16 in hex).
const SENTINEL_LINE: &[u8] = b"10\r\n";

/// What the handler leaves for the connection: the sentinel and the stream to write.
struct Job {
    nonce: [u8; NONCE_LEN],
    source: Source,
}

/// Shared by the connection's socket wrapper, its requests and its task.
#[derive(Default)]
struct Arming {
    /// Set once a job is in place; read on every write, so it is an atomic, not the lock.
    armed: AtomicBool,
    /// The connection must close after the stream: the request asked to (`Connection:
    /// close`), or hyper had read a request pipelined behind the subscription.
    closing: AtomicBool,
    job: Mutex<Option<Job>>,
}

impl Arming {
    fn job(&self) -> std::sync::MutexGuard<'_, Option<Job>> {
        // Nothing panics while holding the lock; a poisoned lock still holds a sound value.
        self.job.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A request extension: lets the subscription handler take its HTTP/1.1 connection over.
#[derive(Clone)]
pub struct Takeover(Arc<Arming>);

impl Takeover {
    /// The handle of `req`'s connection, when it can be taken over (an HTTP/1.1 request on a
    /// connection served by [`super::server`]).
    pub fn of(req: &Request) -> Option<Takeover> {
        if req.version() != Version::HTTP_11 {
            return None;
        }
        let takeover = req.extensions().get::<Takeover>()?;
        if asks_to_close(req.headers()) {
            // hyper answers it with `Connection: close`, whether or not it is taken over.
            takeover.0.closing.store(true, Ordering::Release);
        }
        Some(takeover.clone())
    }

    /// Arms the connection: once hyper has written the response head, the connection's task
    /// writes `source` to the socket. Returns the body to answer with (the sentinel chunk).
    pub fn arm(self, source: impl Into<Source>) -> Body {
        let nonce: [u8; NONCE_LEN] = rand::random();
        *self.0.job() = Some(Job { nonce, source: source.into() });
        self.0.armed.store(true, Ordering::Release);
        Body::new(Sentinel(Some(Bytes::copy_from_slice(&nonce))))
    }

    /// For a request that arrives on an armed connection: it was pipelined behind the
    /// subscription, and hyper read it along with the subscription's request. True when it
    /// must be refused (its answer could not reach the client); the connection then closes
    /// when the stream ends instead of serving more requests.
    pub fn refuse_pipelined(&self) -> bool {
        let armed = self.0.armed.load(Ordering::Acquire);
        if armed {
            self.0.closing.store(true, Ordering::Release);
        }
        armed
    }
}

/// Whether a `Connection` header of `headers` has the `close` option.
fn asks_to_close(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get_all(axum::http::header::CONNECTION)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|option| option.trim().eq_ignore_ascii_case("close"))))
}

/// The body hyper sends on an armed connection: the sentinel as one chunk, then the end.
/// Its length is unknown to hyper, so the head says `Transfer-Encoding: chunked`.
struct Sentinel(Option<Bytes>);

impl http_body::Body for Sentinel {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.get_mut().0.take().map(|nonce| Ok(Frame::data(nonce))))
    }
}

/// Wraps `io` for hyper. Returns the wrapper, the handle for the connection's requests, and
/// the claim that gets the socket back once hyper is done with it.
pub fn wrap<T>(io: T) -> (HandOff<T>, Takeover, Claim<T>) {
    let arming = Arc::new(Arming::default());
    let (tx, rx) = oneshot::channel();
    let wrapper = HandOff { inner: Some(io), arming: arming.clone(), phase: Phase::Hyper, out: Some(tx) };
    (wrapper, Takeover(arming.clone()), Claim { arming, rx })
}

/// Where the connection stands.
#[derive(Clone, Copy)]
enum Phase {
    /// hyper's connection: everything passes through.
    Hyper,
    /// Armed: bytes pass through up to the sentinel chunk with this nonce.
    Head([u8; NONCE_LEN]),
    /// The head is out: hyper's writes are swallowed, its reads see end-of-file, and the
    /// socket goes to the claim when hyper drops the wrapper.
    Ours,
}

/// The socket as hyper sees it (see the module doc).
pub struct HandOff<T> {
    /// Always Some until dropped (then it moves to the claim).
    inner: Option<T>,
    arming: Arc<Arming>,
    phase: Phase,
    out: Option<oneshot::Sender<T>>,
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the connection was handed over")
}

/// Where the sentinel chunk (its size line) starts in `bytes`, if it is there.
fn sentinel_at(bytes: &[u8], nonce: &[u8; NONCE_LEN]) -> Option<usize> {
    let at = bytes.windows(NONCE_LEN).position(|w| w == nonce)?;
    let line = at.checked_sub(SENTINEL_LINE.len())?;
    (bytes.get(line..at) == Some(SENTINEL_LINE)).then_some(line)
}

impl<T: AsyncWrite + Unpin> HandOff<T> {
    /// Notices the arming on the first write after it.
    fn check_armed(&mut self) {
        if let Phase::Hyper = self.phase {
            if self.arming.armed.load(Ordering::Acquire) {
                if let Some(job) = self.arming.job().as_ref() {
                    self.phase = Phase::Head(job.nonce);
                }
            }
        }
    }

    /// A write while armed: what precedes the sentinel chunk goes out; once all of it has,
    /// the whole write counts as done and the connection is ours.
    fn write_head(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
        nonce: [u8; NONCE_LEN],
    ) -> Poll<io::Result<usize>> {
        // Rare (once per subscription) and small (the head): one flat copy keeps it simple.
        let flat: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
        let sentinel = sentinel_at(&flat, &nonce);
        let upto = sentinel.unwrap_or(flat.len());
        if sentinel == Some(0) {
            self.phase = Phase::Ours;
            return Poll::Ready(Ok(flat.len()));
        }
        let Some(inner) = self.inner.as_mut() else { return Poll::Ready(Err(gone())) };
        match Pin::new(inner).poll_write(cx, &flat[..upto]) {
            Poll::Ready(Ok(n)) if sentinel.is_some() && n == upto => {
                self.phase = Phase::Ours;
                Poll::Ready(Ok(flat.len()))
            }
            other => other,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for HandOff<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if let Phase::Ours = self.phase {
            return Poll::Ready(Ok(()));
        }
        match self.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_read(cx, buf),
            None => Poll::Ready(Err(gone())),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for HandOff<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.check_armed();
        match this.phase {
            Phase::Hyper => match this.inner.as_mut() {
                Some(inner) => Pin::new(inner).poll_write(cx, buf),
                None => Poll::Ready(Err(gone())),
            },
            Phase::Head(nonce) => this.write_head(cx, &[io::IoSlice::new(buf)], nonce),
            Phase::Ours => Poll::Ready(Ok(buf.len())),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.check_armed();
        match this.phase {
            Phase::Hyper => match this.inner.as_mut() {
                Some(inner) => Pin::new(inner).poll_write_vectored(cx, bufs),
                None => Poll::Ready(Err(gone())),
            },
            Phase::Head(nonce) => this.write_head(cx, bufs, nonce),
            Phase::Ours => Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(|i| i.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Also once ours: a TLS stream may still hold the end of the head.
        match self.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Phase::Ours = self.phase {
            return Poll::Ready(Ok(()));
        }
        match self.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

impl<T> Drop for HandOff<T> {
    fn drop(&mut self) {
        if let (Phase::Ours, Some(inner), Some(out)) = (self.phase, self.inner.take(), self.out.take()) {
            // The claim may be gone already (its task aborted at shutdown): the socket closes.
            let _ = out.send(inner);
        }
    }
}

/// The connection task's side: after hyper is done, the socket and the stream to write on
/// it, if a subscription took the connection over.
pub struct Claim<T> {
    arming: Arc<Arming>,
    rx: oneshot::Receiver<T>,
}

impl<T> Claim<T> {
    /// Call once hyper's connection future has finished (and dropped the wrapper), with
    /// whether it ended cleanly. The flag returned says whether the connection may serve
    /// more requests after the stream: not when the request asked to close, and not when
    /// hyper read a request pipelined behind the subscription. hyper ends cleanly only when
    /// the end-of-file it was shown came at a request boundary with nothing read ahead; a
    /// pipelined request makes it end with an error (end-of-file mid-request) or, should it
    /// get as far as the service, is refused there.
    pub fn take(mut self, ended_cleanly: bool) -> Option<(T, Source, bool)> {
        let io = self.rx.try_recv().ok()?;
        let job = self.arming.job().take()?;
        Some((io, job.source, ended_cleanly && !self.arming.closing.load(Ordering::Acquire)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::http::stream::Chunks;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn armed<T>(io: T) -> (HandOff<T>, Claim<T>, Vec<u8>) {
        let (wrapper, takeover, claim) = wrap(io);
        let chunks: Chunks = Box::pin(tokio_stream::iter([super::super::stream::Chunk::new(b"update")]));
        let _body = takeover.clone().arm(chunks);
        let nonce = takeover.0.job().as_ref().unwrap().nonce;
        let mut sentinel = SENTINEL_LINE.to_vec();
        sentinel.extend_from_slice(&nonce);
        sentinel.extend_from_slice(b"\r\n0\r\n\r\n");
        (wrapper, claim, sentinel)
    }

    #[tokio::test]
    async fn before_arming_everything_passes_and_the_socket_stays() {
        let (mut client, server) = tokio::io::duplex(4096);
        let (mut wrapper, _takeover, claim) = wrap(server);
        wrapper.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi").await.unwrap();
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut got = [0u8; 18];
        wrapper.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"GET / HTTP/1.1\r\n\r\n");
        drop(wrapper);
        assert!(claim.take(true).is_none(), "a connection nobody armed is not handed over");
        let mut out = Vec::new();
        client.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi");
    }

    #[tokio::test]
    async fn the_head_and_what_precedes_it_pass_the_sentinel_does_not() {
        let (mut client, server) = tokio::io::duplex(4096);
        let (mut wrapper, claim, sentinel) = armed(server);
        // A pipelined response still buffered in front of the head, whose body looks like a head.
        let earlier = b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nx\r\n\r\nyz\r\n";
        let head = b"HTTP/1.1 209 Multiresponse\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n";
        let slices = [io::IoSlice::new(earlier), io::IoSlice::new(head), io::IoSlice::new(&sentinel)];
        let n =
            futures_util::future::poll_fn(|cx| Pin::new(&mut wrapper).poll_write_vectored(cx, &slices)).await.unwrap();
        assert_eq!(n, earlier.len() + head.len() + sentinel.len(), "the whole write counts as done");
        // Now hyper's writes vanish, its reads end and its shutdown does nothing.
        assert_eq!(wrapper.write(b"junk").await.unwrap(), 4);
        client.write_all(b"pipelined").await.unwrap();
        assert_eq!(wrapper.read(&mut [0u8; 16]).await.unwrap(), 0);
        wrapper.shutdown().await.unwrap();
        drop(wrapper);
        let (mut socket, source, reusable) = claim.take(true).expect("handed over");
        let mut chunks = source.into_chunks();
        assert!(reusable);
        // The socket is the same one, unread bytes included.
        let mut pipelined = [0u8; 9];
        socket.read_exact(&mut pipelined).await.unwrap();
        assert_eq!(&pipelined, b"pipelined");
        assert_eq!(tokio_stream::StreamExt::next(&mut chunks).await.unwrap().data(), Bytes::from_static(b"update"));
        socket.write_all(b"ours").await.unwrap();
        drop(socket);
        let mut out = Vec::new();
        client.read_to_end(&mut out).await.unwrap();
        let mut expected = earlier.to_vec();
        expected.extend_from_slice(head);
        expected.extend_from_slice(b"ours");
        assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(&expected));
    }

    #[tokio::test]
    async fn a_head_written_in_pieces_passes_until_the_sentinel() {
        let (mut client, server) = tokio::io::duplex(4096);
        let (mut wrapper, claim, sentinel) = armed(server);
        wrapper.write_all(b"HTTP/1.1 209 Multiresponse\r\n").await.unwrap();
        wrapper.write_all(b"connection: close\r\n\r\n").await.unwrap();
        let mut tail = b"10\r\n".to_vec();
        tail.extend_from_slice(&sentinel[SENTINEL_LINE.len()..]);
        wrapper.write_all(&tail).await.unwrap();
        drop(wrapper);
        let (_, _, reusable) = claim.take(false).unwrap();
        assert!(!reusable, "hyper ended with an error: something was read ahead");
        let mut out = Vec::new();
        client.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"HTTP/1.1 209 Multiresponse\r\nconnection: close\r\n\r\n");
    }

    #[tokio::test]
    async fn a_partial_write_of_the_head_is_retried_not_lost() {
        // A socket that takes 7 bytes at a time.
        let (mut client, server) = tokio::io::duplex(7);
        let (wrapper, claim, sentinel) = armed(server);
        let head = b"HTTP/1.1 209 Multiresponse\r\n\r\n".to_vec();
        let reader = tokio::spawn(async move {
            let mut out = Vec::new();
            client.read_to_end(&mut out).await.unwrap();
            out
        });
        let mut wrapper = wrapper;
        let mut all = head.clone();
        all.extend_from_slice(&sentinel);
        let mut done = 0;
        while done < all.len() {
            let n = wrapper.write(&all[done..]).await.unwrap();
            assert!(n > 0);
            assert!(done + n <= head.len() || done + n == all.len(), "a write ended inside the sentinel");
            done += n;
        }
        drop(wrapper);
        let (socket, _, _) = claim.take(true).unwrap();
        drop(socket);
        assert_eq!(reader.await.unwrap(), head);
    }

    #[tokio::test]
    async fn a_request_after_arming_is_refused_and_the_connection_not_reused() {
        let (client, server) = tokio::io::duplex(4096);
        let (mut wrapper, takeover, claim) = wrap(server);
        assert!(!takeover.refuse_pipelined(), "nothing armed yet");
        let chunks: Chunks = Box::pin(tokio_stream::pending());
        let _body = takeover.clone().arm(chunks);
        assert!(takeover.refuse_pipelined());
        let nonce = takeover.0.job().as_ref().unwrap().nonce;
        let mut head = b"HTTP/1.1 209 Multiresponse\r\n\r\n10\r\n".to_vec();
        head.extend_from_slice(&nonce);
        wrapper.write_all(&head).await.unwrap();
        drop(wrapper);
        let (_, _, reusable) = claim.take(true).unwrap();
        assert!(!reusable);
        drop(client);
    }

    #[test]
    fn connection_close_is_an_option_among_others() {
        let with = |values: &[&str]| {
            let mut headers = axum::http::HeaderMap::new();
            for v in values {
                headers.append(axum::http::header::CONNECTION, v.parse().unwrap());
            }
            asks_to_close(&headers)
        };
        assert!(with(&["close"]));
        assert!(with(&["keep-alive", "Upgrade, CLOSE"]));
        assert!(!with(&["keep-alive"]));
        assert!(!with(&["closed"]));
        assert!(!with(&[]));
    }

    #[test]
    fn the_sentinel_needs_its_size_line() {
        let nonce = [7u8; NONCE_LEN];
        let mut bytes = b"head\r\n\r\n10\r\n".to_vec();
        bytes.extend_from_slice(&nonce);
        assert_eq!(sentinel_at(&bytes, &nonce), Some(8));
        assert_eq!(sentinel_at(&nonce, &nonce), None, "no size line before it");
        assert_eq!(sentinel_at(b"head", &nonce), None);
    }
}
