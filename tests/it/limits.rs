//! Connection limits and shutdown: oversized heads, slow heads, SIGTERM with open
//! subscriptions.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::client::request;
use crate::support::server::{ChildServer, Engine, TestServer};
use crate::support::SubscriptionReader;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_head_gets_431_and_the_server_keeps_serving() {
    let s = TestServer::start_with(Engine::Memory, |c| c.max_header_bytes = 16 << 10).await;
    let big = "x".repeat(32 << 10);
    let r = request(s.addr, "GET", "/big", &[("X-Big", &big)], b"").await;
    assert_eq!(r.status, 431);
    // A head just under the limit is fine.
    let ok = "y".repeat(8 << 10);
    assert_eq!(request(s.addr, "GET", "/big", &[("X-Ok", &ok)], b"").await.status, 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_heads_are_cut_off() {
    let s = TestServer::start_with(Engine::Memory, |c| c.header_timeout_secs = 1).await;
    let mut slow = TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = Instant::now();
    // The server must give up on us (a 408 or a close) within a few seconds, not wait forever.
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "connection still open after 5 s");
    assert!(started.elapsed() >= Duration::from_millis(900), "closed before the timeout");
    let head = String::from_utf8_lossy(&buf);
    assert!(buf.is_empty() || head.starts_with("HTTP/1.1 408"), "{head}");
    // Everyone else is served meanwhile.
    assert_eq!(request(s.addr, "GET", "/.plait/health", &[], b"").await.status, 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_subscriptions_and_exits_within_two_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let server = ChildServer::start(dir.path(), &[]);
    let r = request(server.addr, "PUT", "/t", &[("Version", "\"a-4\""), ("Parents", "")], b"hello").await;
    assert_eq!(r.status, 200);
    let mut subs = Vec::new();
    for _ in 0..5 {
        let mut sub = SubscriptionReader::open(server.addr, "/t", &[("Heartbeats", "1")]).await;
        let _ = sub.next().await;
        subs.push(sub);
    }
    let took = tokio::task::spawn_blocking(move || server.terminate(Duration::from_secs(2))).await.unwrap();
    let took = took.expect("plait did not exit within 2 s of SIGTERM");
    // Each subscription ended with a proper end of the chunked body, not a reset.
    for mut sub in subs {
        let mut chunks = 0;
        while sub.conn.read_chunk().await.is_some() {
            chunks += 1;
            assert!(chunks < 100, "stream did not end");
        }
    }
    eprintln!("exited {took:?} after SIGTERM");
    // The data written before the shutdown is there after a restart.
    let server = ChildServer::start(dir.path(), &[]);
    assert_eq!(request(server.addr, "GET", "/t", &[], b"").await.text(), "hello");
}
