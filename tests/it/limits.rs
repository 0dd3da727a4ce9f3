//! Connection limits and shutdown: oversized heads, slow heads, SIGTERM with open
//! subscriptions.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::client::request;
use crate::support::server::{ChildServer, Engine, TestServer};
use crate::support::{apply_update as apply, SubscriptionReader};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_limits_per_document_and_per_server() {
    let s = TestServer::start_with(Engine::Memory, |c| {
        c.max_subscriptions_per_doc = 2;
        c.max_subscriptions = 3;
    })
    .await;
    let a1 = SubscriptionReader::open(s.addr, "/a", &[]).await;
    let a2 = SubscriptionReader::open(s.addr, "/a", &[]).await;
    assert_eq!((a1.head.status, a2.head.status), (209, 209));
    let a3 = request(s.addr, "GET", "/a", &[("Subscribe", "true")], b"").await;
    assert_eq!(a3.status, 429);
    assert_eq!(a3.json()["error"], "too_many_subscriptions");
    assert_eq!(a3.header("retry-after"), Some("1"));
    let b1 = SubscriptionReader::open(s.addr, "/b", &[]).await;
    assert_eq!(b1.head.status, 209);
    let b2 = request(s.addr, "GET", "/b", &[("Subscribe", "true")], b"").await;
    assert_eq!(b2.status, 429, "the server-wide limit of 3 is reached");
    // Closing one frees its place (once the server notices the disconnect).
    drop(a1);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let h = request(s.addr, "GET", "/.plait/health", &[], b"").await.json();
        if h["subscriptions"] == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "closed subscription still counted: {h}");
        tokio::task::yield_now().await;
    }
    let again = SubscriptionReader::open(s.addr, "/a", &[]).await;
    assert_eq!(again.head.status, 209);
    drop((a2, b1, again));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_cannot_grow_past_the_size_limit() {
    let s = TestServer::start_with(Engine::Memory, |c| c.max_document_chars = 10).await;
    let r = request(s.addr, "PUT", "/big", &[("Version", "\"a-7\""), ("Parents", "")], "12345678".as_bytes()).await;
    assert_eq!(r.status, 200);
    let r = request(
        s.addr,
        "PUT",
        "/big",
        &[("Version", "\"b-4\""), ("Parents", "\"a-7\""), ("Content-Range", "text [8:8]")],
        b"9abcd",
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.json()["error"], "document_too_large");
    // Replacing the whole text with something within the limit is fine.
    let r = request(s.addr, "PUT", "/big", &[], "0123456789".as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(request(s.addr, "GET", "/big", &[], b"").await.text(), "0123456789");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_subscribers_are_closed_and_resume_without_loss() {
    let s = TestServer::start_with(Engine::Memory, |c| c.stall_timeout_secs = 1).await;
    let r = request(s.addr, "PUT", "/stall", &[("Version", "\"a-0\""), ("Parents", "")], b"x").await;
    assert_eq!(r.status, 200);
    // A subscriber with a tiny receive buffer that stops reading after its snapshot.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(s.addr).await.unwrap();
    let mut stalled =
        SubscriptionReader::open_on(crate::support::client::Conn::from_stream(stream), "/stall", &[]).await;
    let first = stalled.next().await;
    let mut text = apply("", &first);
    let mut version = first.version.clone().unwrap().to_header();
    // A healthy subscriber keeps reading throughout.
    let mut healthy = SubscriptionReader::open(s.addr, "/stall", &[]).await;
    let mut healthy_text = apply("", &healthy.next().await);
    // 24 writes of 256 KiB: far more than the socket buffers hold.
    const CHUNK: usize = 256 << 10;
    const WRITES: usize = 24;
    let addr = s.addr;
    let writer = tokio::spawn(async move {
        let chunk = "y".repeat(CHUNK);
        let mut parents = "\"a-0\"".to_string();
        for i in 0..WRITES {
            let v = format!("\"w-{}\"", (i + 1) * CHUNK - 1);
            let r = request(
                addr,
                "PUT",
                "/stall",
                &[("Version", &v), ("Parents", &parents), ("Content-Range", "text [-0:-0]")],
                chunk.as_bytes(),
            )
            .await;
            assert_eq!(r.status, 200);
            parents = v;
        }
    });
    let full_len = 1 + WRITES * CHUNK;
    while healthy_text.len() < full_len {
        healthy_text = apply(&healthy_text, &healthy.next().await);
    }
    writer.await.unwrap();
    // The stalled subscription is closed by the server (only the healthy one remains).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let h = request(s.addr, "GET", "/.plait/health", &[], b"").await.json();
        if h["subscriptions"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "stalled subscription never closed: {h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The stalled client drains what reached it, then resumes from its last version.
    while let Some(u) = stalled.next_within(Duration::from_secs(2)).await {
        text = apply(&text, &u);
        version = u.version.clone().unwrap().to_header();
    }
    assert!(text.len() < full_len, "the stalled client had everything already");
    let mut resumed = SubscriptionReader::open(s.addr, "/stall", &[("Parents", &version)]).await;
    while text.len() < full_len {
        text = apply(&text, &resumed.next().await);
    }
    assert_eq!(text, healthy_text);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_bodies_get_408() {
    let s = TestServer::start_with(Engine::Memory, |c| c.body_timeout_secs = 1).await;
    let mut conn = crate::support::client::Conn::open(s.addr).await;
    conn.send_raw(b"PUT /slowbody HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc").await;
    let started = Instant::now();
    let r = conn.read_response("PUT").await;
    assert_eq!(r.status, 408, "{}", r.text());
    assert_eq!(r.json()["error"], "body_timeout");
    assert!(started.elapsed() >= Duration::from_millis(900));
    // Nothing was written.
    assert_eq!(request(s.addr, "GET", "/slowbody", &[], b"").await.text(), "");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_and_patch_counts_are_limited() {
    let s = TestServer::start_with(Engine::Memory, |c| {
        c.max_version_ids = 3;
        c.max_patches = 2;
    })
    .await;
    let four = "\"a-0\", \"b-0\", \"c-0\", \"d-0\"";
    let r = request(s.addr, "GET", "/ids", &[("Parents", four)], b"").await;
    assert_eq!(r.status, 431);
    assert_eq!(r.json()["error"], "too_many_ids");
    let three = "\"a-0\", \"b-0\", \"c-0\"";
    assert_eq!(request(s.addr, "GET", "/ids", &[("Parents", three)], b"").await.status, 309);
    let patch = |at: usize| format!("Content-Length: 1\r\nContent-Range: text [{at}:{at}]\r\n\r\nx");
    let body = [patch(0), patch(0), patch(0)].join("\r\n");
    let r = request(s.addr, "PUT", "/ids", &[("Patches", "3")], body.as_bytes()).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.json()["error"], "too_many_patches");
    let body = [patch(0), patch(0)].join("\r\n");
    let r = request(s.addr, "PUT", "/ids", &[("Patches", "2")], body.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    s.stop().await;
}
