//! HTTP/1.1 subscriptions taken over from hyper after the 209 head (src/http/takeover.rs):
//! the bytes on the wire are hyper's (chunk framing included), the connection serves its next
//! request once the stream ended, a client that closes releases its subscription, requests
//! pipelined behind a subscription never run, TLS is taken over too, HTTP/1.0 stays on hyper,
//! and a stop with a stuck subscriber still closes the store.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use plait::protocol::{DecodedUpdate, Decoder, UpdateBody};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::client::{request, Conn, SubscriptionReader, WAIT};
use crate::support::server::{Engine, TestServer};

/// A connection read byte for byte (TCP or TLS).
struct Raw<S> {
    io: S,
    buf: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl<S: AsyncRead + AsyncWrite + Unpin> Raw<S> {
    fn new(io: S) -> Self {
        Raw { io, buf: Vec::new() }
    }

    async fn send(&mut self, bytes: &[u8]) {
        tokio::time::timeout(WAIT, self.io.write_all(bytes)).await.unwrap().unwrap();
    }

    /// Reads more; false at end of file.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, self.io.read(&mut chunk)).await.expect("timed out reading").unwrap();
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// Bytes up to and including `end`.
    async fn until(&mut self, end: &[u8]) -> String {
        loop {
            if let Some(i) = find(&self.buf, end) {
                let out: Vec<u8> = self.buf.drain(..i + end.len()).collect();
                return String::from_utf8(out).unwrap();
            }
            assert!(self.fill().await, "connection closed before {:?}", String::from_utf8_lossy(end));
        }
    }

    /// A response head, lowercased.
    async fn head(&mut self) -> String {
        self.until(b"\r\n\r\n").await.to_ascii_lowercase()
    }

    /// A whole response with a `Content-Length` body: its head and body.
    async fn response(&mut self) -> (String, String) {
        let head = self.head().await;
        let len: usize =
            head.lines().find_map(|l| l.strip_prefix("content-length: ")).map_or(0, |n| n.trim().parse().unwrap());
        while self.buf.len() < len {
            assert!(self.fill().await, "connection closed mid-body");
        }
        let body = String::from_utf8(self.buf.drain(..len).collect()).unwrap();
        (head, body)
    }

    /// One chunk: its size line as sent, and its payload (the CRLF after it checked).
    async fn chunk(&mut self) -> (String, Vec<u8>) {
        let line = self.until(b"\r\n").await;
        let size = usize::from_str_radix(line.trim_end(), 16).unwrap_or_else(|_| panic!("bad size line {line:?}"));
        while self.buf.len() < size + 2 {
            assert!(self.fill().await, "connection closed mid-chunk");
        }
        let payload: Vec<u8> = self.buf.drain(..size).collect();
        assert_eq!(self.buf.drain(..2).collect::<Vec<u8>>(), b"\r\n", "chunk not followed by CRLF");
        (line, payload)
    }

    /// The next update of a chunked 209 body (heartbeats skipped).
    async fn update(&mut self, decoder: &mut Decoder) -> DecodedUpdate {
        loop {
            if let Some(u) = decoder.next_update().unwrap() {
                return u;
            }
            let (line, payload) = self.chunk().await;
            assert_ne!(line, "0\r\n", "the stream ended");
            // Framed exactly as hyper frames a chunk: upper-case hex, no extensions.
            assert_eq!(line, format!("{:X}\r\n", payload.len()));
            decoder.push(&payload);
        }
    }

    /// True when the peer closed the connection with nothing more to read.
    async fn closed(&mut self) -> bool {
        self.buf.is_empty() && !self.fill().await
    }
}

async fn tcp(addr: SocketAddr) -> Raw<TcpStream> {
    Raw::new(tokio::time::timeout(WAIT, TcpStream::connect(addr)).await.unwrap().unwrap())
}

fn text(u: &DecodedUpdate) -> String {
    match &u.body {
        UpdateBody::Snapshot(s) => s.clone(),
        UpdateBody::Patches(p) => p.iter().map(|p| p.content.as_str()).collect(),
    }
}

async fn subscriptions(addr: SocketAddr) -> u64 {
    request(addr, "GET", "/.plait/health", &[], b"").await.json()["subscriptions"].as_u64().unwrap()
}

/// Waits (bounded) until the server counts `n` live subscriptions.
async fn until_subscriptions(addr: SocketAddr, n: u64) {
    let deadline = Instant::now() + WAIT;
    while subscriptions(addr).await != n {
        assert!(Instant::now() < deadline, "still {} subscriptions, expected {n}", subscriptions(addr).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const SUBSCRIBE: &[u8] = b"GET /t HTTP/1.1\r\nHost: x\r\nSubscribe: true\r\nOrigin: https://app.example\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_is_framed_as_hyper_frames_it_and_the_connection_serves_on() {
    let s = TestServer::start(Engine::Memory).await;
    let r = request(s.addr, "PUT", "/t", &[("Version", "\"a-4\""), ("Parents", "")], b"hello").await;
    assert_eq!(r.status, 200);
    let mut raw = tcp(s.addr).await;
    raw.send(SUBSCRIBE).await;
    let head = raw.head().await;
    assert!(head.starts_with("http/1.1 209 multiresponse\r\n"), "{head}");
    // The head is hyper's, with what the layers add (CORS, Vary), and keeps the connection.
    for line in ["transfer-encoding: chunked\r\n", "access-control-allow-origin: *\r\n", "vary: ", "date: "] {
        assert!(head.contains(line), "{line:?} missing from {head}");
    }
    assert!(!head.contains("connection:"), "{head}");
    let mut decoder = Decoder::new();
    assert_eq!(text(&raw.update(&mut decoder).await), "hello");
    // A long update: its size has hex letters, upper case as hyper writes them.
    let long = "0123456789".repeat(30);
    let r = request(s.addr, "PUT", "/t", &[("Content-Range", "text [5:5]")], long.as_bytes()).await;
    assert_eq!(r.status, 200);
    assert_eq!(text(&raw.update(&mut decoder).await), long);
    // Deleting the document ends the stream with hyper's last chunk...
    assert_eq!(request(s.addr, "DELETE", "/t", &[], b"").await.status, 200);
    assert_eq!(raw.chunk().await, ("0\r\n".to_string(), Vec::new()));
    // ... and the same connection serves the next request, and a new subscription.
    raw.send(b"GET /.plait/health HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let (head, health) = raw.response().await;
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    assert!(health.contains("\"subscriptions\":0"), "{health}");
    raw.send(SUBSCRIBE).await;
    assert!(raw.head().await.starts_with("http/1.1 209"));
    let mut decoder = Decoder::new();
    assert_eq!(text(&raw.update(&mut decoder).await), "");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_that_asked_to_close_closes_after_the_stream() {
    let s = TestServer::start(Engine::Memory).await;
    request(s.addr, "PUT", "/t", &[], b"bye").await;
    let mut raw = tcp(s.addr).await;
    raw.send(b"GET /t HTTP/1.1\r\nHost: x\r\nSubscribe: true\r\nConnection: close\r\n\r\n").await;
    let head = raw.head().await;
    assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
    let mut decoder = Decoder::new();
    assert_eq!(text(&raw.update(&mut decoder).await), "bye");
    assert_eq!(request(s.addr, "DELETE", "/t", &[], b"").await.status, 200);
    assert_eq!(raw.chunk().await, ("0\r\n".to_string(), Vec::new()));
    assert!(raw.closed().await, "the connection stayed open after a `Connection: close` exchange");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_closes_an_idle_subscription_releases_it() {
    let s = TestServer::start(Engine::Memory).await;
    let mut sub = SubscriptionReader::open(s.addr, "/idle", &[]).await;
    let _ = sub.next().await;
    assert_eq!(subscriptions(s.addr).await, 1);
    // No heartbeats and no updates: only the read side can notice the client left.
    drop(sub);
    until_subscriptions(s.addr, 0).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_pipelined_behind_a_subscription_never_runs() {
    let s = TestServer::start(Engine::Memory).await;
    request(s.addr, "PUT", "/t", &[], b"watched").await;
    // In the same packet: hyper reads the PUT along with the subscription's GET.
    let mut raw = tcp(s.addr).await;
    let mut both = SUBSCRIBE.to_vec();
    both.extend_from_slice(b"PUT /other HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nbad");
    raw.send(&both).await;
    assert!(raw.head().await.starts_with("http/1.1 209"));
    let mut decoder = Decoder::new();
    assert_eq!(text(&raw.update(&mut decoder).await), "watched");
    // Sent during the stream: read by the subscription's writer.
    let mut late = tcp(s.addr).await;
    late.send(SUBSCRIBE).await;
    assert!(late.head().await.starts_with("http/1.1 209"));
    let mut late_decoder = Decoder::new();
    let _ = late.update(&mut late_decoder).await;
    late.send(b"PUT /other HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nbad").await;
    // Both streams end with the last chunk, then the connections close: the PUTs are not
    // answered (the clients send them again), and they did not run.
    assert_eq!(request(s.addr, "DELETE", "/t", &[], b"").await.status, 200);
    for conn in [&mut raw, &mut late] {
        assert_eq!(conn.chunk().await, ("0\r\n".to_string(), Vec::new()));
        assert!(conn.closed().await, "the connection still open after a pipelined request");
    }
    assert_eq!(request(s.addr, "GET", "/other", &[], b"").await.text(), "");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_pipelined_before_the_subscription_reach_the_client_whole() {
    let s = TestServer::start(Engine::Memory).await;
    request(s.addr, "PUT", "/t", &[], b"twice").await;
    let mut raw = tcp(s.addr).await;
    let mut both = b"GET /t HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    both.extend_from_slice(SUBSCRIBE);
    raw.send(&both).await;
    let (head, body) = raw.response().await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(body, "twice");
    assert!(raw.head().await.starts_with("http/1.1 209"));
    let mut decoder = Decoder::new();
    assert_eq!(text(&raw.update(&mut decoder).await), "twice");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_http1_subscriptions_are_taken_over_too() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, cert_path, key_path) = crate::http2::self_signed(dir.path());
    let s = TestServer::start_with(Engine::Memory, |c| {
        c.tls_cert = Some(cert_path.clone());
        c.tls_key = Some(key_path.clone());
    })
    .await;
    let mut raw = Raw::new(crate::http2::tls_connect(s.addr, &cert, &[b"http/1.1"]).await);
    raw.send(b"PUT /t HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi").await;
    assert!(raw.head().await.starts_with("http/1.1 200"));
    raw.send(SUBSCRIBE).await;
    assert!(raw.head().await.starts_with("http/1.1 209"));
    let mut decoder = Decoder::new();
    assert_eq!(text(&raw.update(&mut decoder).await), "hi");
    // An update written on another connection.
    let mut writer = Raw::new(crate::http2::tls_connect(s.addr, &cert, &[b"http/1.1"]).await);
    writer.send(b"PUT /t HTTP/1.1\r\nHost: x\r\nContent-Range: text [2:2]\r\nContent-Length: 1\r\n\r\n!").await;
    assert!(writer.head().await.starts_with("http/1.1 200"));
    assert_eq!(text(&raw.update(&mut decoder).await), "!");
    writer.send(b"DELETE /t HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(writer.head().await.starts_with("http/1.1 200"));
    assert_eq!(raw.chunk().await, ("0\r\n".to_string(), Vec::new()));
    raw.send(b"GET /.plait/health HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(raw.response().await.0.starts_with("http/1.1 200 ok\r\n"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_0_subscriptions_stay_on_hyper() {
    let s = TestServer::start(Engine::Memory).await;
    request(s.addr, "PUT", "/t", &[], b"old").await;
    let mut raw = tcp(s.addr).await;
    raw.send(b"GET /t HTTP/1.0\r\nSubscribe: true\r\n\r\n").await;
    let head = raw.head().await;
    // No chunked framing in HTTP/1.0: the body runs until the connection closes.
    assert!(head.starts_with("http/1.0 209"), "{head}");
    assert!(!head.contains("\r\ntransfer-encoding:"), "{head}");
    let mut decoder = Decoder::new();
    loop {
        decoder.push(&std::mem::take(&mut raw.buf));
        if let Some(u) = decoder.next_update().unwrap() {
            assert_eq!(text(&u), "old");
            break;
        }
        assert!(raw.fill().await);
    }
    assert_eq!(request(s.addr, "DELETE", "/t", &[], b"").await.status, 200);
    assert!(raw.closed().await);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_with_a_stuck_subscriber_still_closes_the_store() {
    let s = TestServer::start(Engine::Rocks).await;
    let r = request(s.addr, "PUT", "/stuck", &[("Version", "\"a-0\""), ("Parents", "")], b"x").await;
    assert_eq!(r.status, 200);
    // A subscriber with a tiny receive buffer that reads nothing after its snapshot.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(s.addr).await.unwrap();
    let mut stuck = SubscriptionReader::open_on(Conn::from_stream(stream), "/stuck", &[]).await;
    let _ = stuck.next().await;
    // More than the socket buffers hold: its writer blocks in a write.
    let chunk = "y".repeat(1 << 20);
    let mut parents = "\"a-0\"".to_string();
    for i in 0..12 {
        let v = format!("\"w-{}\"", (i + 1) * chunk.len() - 1);
        let headers = [("Version", v.as_str()), ("Parents", parents.as_str()), ("Content-Range", "text [-0:-0]")];
        assert_eq!(request(s.addr, "PUT", "/stuck", &headers, chunk.as_bytes()).await.status, 200);
        parents = v;
    }
    let started = Instant::now();
    let dir = tokio::time::timeout(Duration::from_secs(20), s.stop_keeping_data())
        .await
        .expect("the server did not stop")
        .expect("a RocksDB server has a data dir");
    eprintln!("stopped in {:?} with a stuck subscriber", started.elapsed());
    let store = plait::store::RocksStore::open(dir.path(), plait::store::rocks::Durability::Sync)
        .unwrap_or_else(|e| panic!("the database is still open after stop: {e}"));
    drop(store);
    drop(stuck);
}
