//! The fan-out writer (src/http/fanout.rs): subscribers on plain HTTP/1.1 connections that
//! keep up are written by one task per document, and each goes back to a task of its own for
//! anything else. These tests mix both on one document: every subscriber must still get every
//! update exactly once, in order, framed whole, whatever path wrote it. (Bytes a parked
//! subscriber's client sends, its close, revocation and shutdown are in takeover.rs,
//! auth_live.rs and subscriptions.rs, which run on the fan-out too.)

use plait::protocol::{DecodedUpdate, UpdateBody};

use crate::engines;
use crate::support::client::{request, Conn};
use crate::support::server::{Engine, TestServer};
use crate::support::SubscriptionReader;

fn version(u: &DecodedUpdate) -> String {
    u.version.as_ref().map(|v| v.to_header()).unwrap_or_default()
}

fn parents(u: &DecodedUpdate) -> String {
    u.parents.as_ref().map(|v| v.to_header()).unwrap_or_else(|| "<absent>".into())
}

/// The appended text of an update (these tests only append).
fn appended(u: &DecodedUpdate) -> String {
    match &u.body {
        UpdateBody::Snapshot(s) => s.clone(),
        UpdateBody::Patches(p) => p.iter().map(|p| p.content.as_str()).collect(),
    }
}

/// A subscriber whose receive buffer is small, so a large update does not fit in the socket
/// buffers while it is not reading.
async fn small_buffer_subscriber(addr: std::net::SocketAddr, path: &str) -> SubscriptionReader {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    SubscriptionReader::open_on(Conn::from_stream(stream), path, &[]).await
}

/// Reads `sub` until its text is `len` bytes long, checking that each update continues from
/// the version the one before it named; returns the text and how many updates it took.
async fn follow(sub: &mut SubscriptionReader, mut at: String, mut text: String, len: usize) -> (String, usize) {
    let mut updates = 0;
    while text.len() < len {
        let u = sub.next().await;
        assert_eq!(parents(&u), at, "an update that does not continue from the last one");
        at = version(&u);
        text.push_str(&appended(&u));
        updates += 1;
    }
    assert_eq!(text.len(), len, "more text than was written");
    (text, updates)
}

/// Appends `WRITES` times `chunk` to `path` (which holds ">" at `"a-0"`), and checks after
/// each write that every one of `readers` got exactly it next; returns the last version.
async fn append_and_check(
    s: &TestServer,
    path: &str,
    writes: usize,
    chunk: &str,
    readers: &mut [SubscriptionReader],
) -> String {
    let mut conn = Conn::open(s.addr).await;
    let mut at = "\"a-0\"".to_string();
    for i in 0..writes {
        let v = format!("\"w-{}\"", (i + 1) * chunk.len() - 1);
        let headers = [("Version", v.as_str()), ("Parents", at.as_str()), ("Content-Range", "text [-0:-0]")];
        let r = conn.request("PUT", path, &headers, chunk.as_bytes()).await;
        assert_eq!(r.status, 200, "{}", r.text());
        for sub in readers.iter_mut() {
            let u = sub.next().await;
            assert_eq!((parents(&u), version(&u)), (at.clone(), v.clone()));
            assert!(appended(&u) == chunk, "not this write's text");
        }
        at = v;
    }
    at
}

async fn start_document(s: &TestServer, path: &str) {
    let r = request(s.addr, "PUT", path, &[("Version", "\"a-0\""), ("Parents", "")], b">").await;
    assert_eq!(r.status, 200, "{}", r.text());
}

async fn subscribe(s: &TestServer, path: &str, headers: &[(&str, &str)]) -> SubscriptionReader {
    let mut sub = SubscriptionReader::open(s.addr, path, headers).await;
    assert_eq!(sub.head.status, 209);
    assert_eq!(appended(&sub.next().await), ">");
    sub
}

engines!(every_subscriber_gets_every_update_once_in_order, |engine: Engine| async move {
    const WRITES: usize = 24;
    let s = TestServer::start(engine).await;
    start_document(&s, "/fan").await;
    let mut fast = Vec::new();
    for _ in 0..48 {
        fast.push(subscribe(&s, "/fan", &[]).await);
    }
    // Heartbeats take a parked subscription back and park it again, racing the rounds.
    let mut beating = subscribe(&s, "/fan", &[("Heartbeats", "0.05")]).await;
    let chunk = "z".repeat(1000);
    let at = append_and_check(&s, "/fan", WRITES, &chunk, &mut fast).await;
    let len = 1 + WRITES * chunk.len();
    let (text, updates) = follow(&mut beating, "\"a-0\"".into(), ">".into(), len).await;
    assert_eq!((text[1..] == chunk.repeat(WRITES), updates), (true, WRITES), "every write once, in order");
    // One more write reaches every one of them again.
    let r = request(s.addr, "PUT", "/fan", &[("Parents", at.as_str()), ("Content-Range", "text [-0:-0]")], b"!").await;
    assert_eq!(r.status, 200, "{}", r.text());
    for sub in fast.iter_mut().chain([&mut beating]) {
        let u = sub.next().await;
        assert_eq!((parents(&u), appended(&u)), (at.clone(), "!".to_string()));
    }
    s.stop().await;
});

engines!(what_the_fan_out_could_not_write_its_subscribers_task_finishes, |engine: Engine| async move {
    // More than the socket buffers of a subscriber that does not read hold (4 MiB at most
    // here): the fan-out's writes to it are cut short, then would block; its own task must
    // finish each cut chunk before anything else and then catch it up.
    const WRITES: usize = 48;
    const CHUNK: usize = 128 << 10;
    let s = TestServer::start(engine).await;
    start_document(&s, "/big").await;
    let mut fast = vec![subscribe(&s, "/big", &[]).await, subscribe(&s, "/big", &[]).await];
    let mut slow = small_buffer_subscriber(s.addr, "/big").await;
    assert_eq!(appended(&slow.next().await), ">");
    let chunk = "y".repeat(CHUNK);
    let at = append_and_check(&s, "/big", WRITES, &chunk, &mut fast).await;
    let len = 1 + WRITES * CHUNK;
    let (text, updates) = follow(&mut slow, "\"a-0\"".into(), ">".into(), len).await;
    assert!(text[1..] == chunk.repeat(WRITES) && updates < WRITES, "{updates} updates: none coalesced");
    // Back on the fan-out once it caught up.
    let r = request(s.addr, "PUT", "/big", &[("Parents", at.as_str()), ("Content-Range", "text [-0:-0]")], b"!").await;
    assert_eq!(r.status, 200, "{}", r.text());
    for sub in fast.iter_mut().chain([&mut slow]) {
        let u = sub.next().await;
        assert_eq!((parents(&u), appended(&u)), (at.clone(), "!".to_string()));
    }
    s.stop().await;
});
