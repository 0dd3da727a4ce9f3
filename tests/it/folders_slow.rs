//! A slow folder watcher (issue 16: "a slow watcher gets a coalesced catch-up, never unbounded
//! buffering"): a watcher with a 4 KiB receive buffer reads the folder's listing, then stops
//! reading while 8 connections make more changes to the folder's documents than the log keeps
//! whole (`--change-log-window 10000`, the smallest) plus what the kernel's socket buffers hold
//! (the server's send buffer grows up to `tcp_wmem`'s 4 MiB; the documents' long names make each
//! update ~0.8 KiB). When it reads again it must reach the log's end in fewer updates than there
//! were changes (pages read from behind the window come coalesced to the latest change per path),
//! having named every document at its current version. The memory side (no
//! queue held for it while it stalls) is measured by `plait-bench` F5 against the same writes
//! with no watcher, which needs a second server and release speed.

use std::collections::HashMap;
use std::time::Duration;

use plait::protocol::{UpdateBody, VersionSet};

use crate::support::client::{request, Conn};
use crate::support::server::{Engine, TestServer};
use crate::support::SubscriptionReader;

/// Documents in the folder, connections writing, and changes made while the watcher stalls
/// (well past the window the log keeps whole, and the kernel's buffers).
const DOCS: usize = 50;
const WRITERS: usize = 8;
const WINDOW: u64 = 10_000;
const CHANGES: usize = 20_000;
/// Longest catch-up.
const CATCH_UP: Duration = Duration::from_secs(30);

/// The position in a cursor (`<epoch>-<seq>`).
fn seq(cursor: &str) -> u64 {
    cursor.rsplit('-').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_watcher_gets_a_coalesced_catch_up_ending_at_the_latest_state() {
    let server = TestServer::start_with(Engine::Rocks, |c| c.change_log_window = WINDOW).await;
    let addr = server.addr;
    let long = "n".repeat(500);
    let docs: Vec<String> = (0..DOCS).map(|d| format!("/slow/{long}{d:02}")).collect();
    for doc in &docs {
        assert_eq!(request(addr, "PUT", doc, &[], b"start\n").await.status, 200);
    }
    // A delete that will age out of the window: a cursor from before it must then reset.
    assert_eq!(request(addr, "PUT", "/gone/x", &[], b"soon deleted").await.status, 200);
    let before_delete = request(addr, "GET", "/gone/", &[], b"").await.header("plait-cursor").unwrap().to_string();
    assert_eq!(request(addr, "DELETE", "/gone/x", &[], b"").await.status, 200);

    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let mut watcher = SubscriptionReader::open_on(Conn::from_stream(stream), "/slow/", &[]).await;
    assert_eq!(watcher.head.status, 209);
    let listing = watcher.next().await;
    let UpdateBody::Snapshot(listing) = &listing.body else { panic!("the listing is not a snapshot") };
    let listing: serde_json::Value = serde_json::from_str(listing).unwrap();
    assert_eq!(listing["entries"].as_array().map(Vec::len), Some(DOCS), "{listing}");
    let start = seq(listing["cursor"].as_str().unwrap());

    // The watcher reads nothing while these are made.
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let docs = docs.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await;
            for i in (w..CHANGES).step_by(WRITERS) {
                let doc = &docs[i % DOCS];
                let r = conn.request("PATCH", doc, &[("Content-Range", "text [-0:-0]")], b"x").await;
                assert_eq!(r.status, 200, "PATCH {doc}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let r = request(addr, "GET", "/slow/?limit=1", &[("Accept", "application/json")], b"").await;
    let end = r.header("plait-cursor").expect("a listing names the log's cursor").to_string();
    // Concurrent PATCHes of one document may commit as one change: count the log's positions.
    let changes = usize::try_from(seq(&end) - start).unwrap();
    let end = format!("\"{end}\"");

    // Reading again: up to the log's end, each document's last change kept.
    let deadline = tokio::time::Instant::now() + CATCH_UP;
    let (mut updates, mut latest) = (0usize, HashMap::new());
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let u = watcher.next_within(left).await.expect("the catch-up reached the log's end in time");
        updates += 1;
        let UpdateBody::Snapshot(body) = &u.body else { panic!("a change that is not a snapshot") };
        let change: serde_json::Value = serde_json::from_str(body).unwrap();
        latest.insert(change["path"].as_str().unwrap().to_string(), change["version"].clone());
        if u.header("version") == Some(end.as_str()) {
            break;
        }
    }
    assert!(changes > WINDOW as usize + DOCS, "only {changes} changes were logged");
    assert!(updates < changes, "{updates} updates for {changes} changes: the catch-up was not coalesced");
    // The delete has left the log: a cursor from before it cannot be answered exactly.
    let poll = request(addr, "GET", &format!("/gone/?since={before_delete}"), &[], b"").await;
    let poll: serde_json::Value = serde_json::from_str(&poll.text()).unwrap();
    assert_eq!(poll["reset"], true, "{poll}");
    let poll = request(addr, "GET", &format!("/slow/?since={}", end.trim_matches('"')), &[], b"").await;
    let poll: serde_json::Value = serde_json::from_str(&poll.text()).unwrap();
    assert_eq!(poll["reset"], false, "a recent cursor resumes: {poll}");
    for doc in &docs {
        let r = request(addr, "GET", doc, &[], b"").await;
        let current = VersionSet::parse_header(r.header("version").unwrap().as_bytes()).unwrap();
        assert_eq!(latest.get(doc), Some(&serde_json::json!(current.ids())), "{doc}: the catch-up's last version");
    }
    server.stop().await;
}
