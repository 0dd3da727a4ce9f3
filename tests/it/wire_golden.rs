//! Golden bytes: what the server writes must equal the captures in `spec/WIRE.md` §2.2
//! (braid-http 1.4.7 / braid-text 0.6 framing) and the PUT shapes of WIRE §3.1.

use plait::protocol::repr_digest;

use crate::support::client::request;
use crate::support::server::{Engine, TestServer};
use crate::support::SubscriptionReader;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_bytes_match_the_braid_http_capture() {
    let s = TestServer::start(Engine::Memory).await;
    let r = request(s.addr, "PUT", "/doc", &[("Version", "\"alice-4\""), ("Parents", "")], b"hello").await;
    assert_eq!(r.status, 200);
    let mut sub = SubscriptionReader::open(
        s.addr,
        "/doc",
        &[("Subscribe", "?1"), ("Heartbeats", "20"), ("Merge-Type", "simpleton"), ("Peer", "abc123")],
    )
    .await;
    // Status line and the headers clients look for.
    assert_eq!((sub.head.status, sub.head.reason.as_str()), (209, "Multiresponse"));
    assert_eq!(sub.head.header("transfer-encoding"), Some("chunked"));
    for (name, value) in [
        ("subscribe", "?1"),
        ("heartbeats", "20"),
        ("current-version", "\"alice-4\""),
        ("merge-type", "simpleton"),
        ("accept-subscribe", "true"),
        ("editable", "true"),
        ("repr-type", "text/plain; charset=utf-8"),
        ("content-type", "application/http-history"),
        ("cache-control", "no-cache, no-transform, no-store"),
        ("x-accel-buffering", "no"),
    ] {
        assert_eq!(sub.head.header(name), Some(value), "header {name}");
    }
    assert!(sub.head.header("multiplex-version").is_none());
    // Update 1 of the capture, byte for byte.
    let update1: &[u8] = b"HTTP 200 OK\r\nVersion: \"alice-4\"\r\nParents: \r\nrepr-digest: sha-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=:\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n\r\nhello\r\n\r\n";
    assert_eq!(String::from_utf8_lossy(sub.raw_at_least(update1.len()).await), String::from_utf8_lossy(update1));
    // Update 2: one inline patch (with the repr-digest braid-text adds when current).
    let r = request(
        s.addr,
        "PUT",
        "/doc",
        &[("Version", "\"bob-2\""), ("Parents", "\"alice-4\""), ("Content-Range", "text [5:5]"), ("Peer", "bob")],
        b" yo",
    )
    .await;
    assert_eq!(r.status, 200);
    let update2 = format!(
        "HTTP 200 OK\r\nVersion: \"bob-2\"\r\nParents: \"alice-4\"\r\nrepr-digest: {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\nContent-Range: text [5:5]\r\n\r\n yo\r\n\r\n",
        repr_digest("hello yo")
    );
    let all = sub.raw_at_least(update1.len() + update2.len()).await;
    assert_eq!(String::from_utf8_lossy(&all[update1.len()..]), update2);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_update_uses_a_patches_block() {
    let s = TestServer::start(Engine::Memory).await;
    request(s.addr, "PUT", "/doc", &[("Version", "\"alice-4\""), ("Parents", "")], b"hello").await;
    let mut sub = SubscriptionReader::open(s.addr, "/doc", &[("Peer", "watch")]).await;
    let _ = sub.next().await;
    let start = sub.raw.len();
    // One write that both inserts at 0 and deletes at the end: two patches in one update.
    let body = b"Content-Length: 1\r\nContent-Range: text [0:0]\r\n\r\nA\r\n\r\nContent-Length: 0\r\nContent-Range: text [3:5]\r\n\r\n";
    let r = request(
        s.addr,
        "PUT",
        "/doc",
        &[("Version", "\"carol-2\""), ("Parents", "\"alice-4\""), ("Patches", "2"), ("Peer", "carol")],
        body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let expected = format!(
        "HTTP 200 OK\r\nVersion: \"carol-2\"\r\nParents: \"alice-4\"\r\nrepr-digest: {}\r\nContent-Type: application/http-patches; count=2\r\nPatches: 2\r\n\r\nContent-Length: 1\r\nContent-Range: text [0:0]\r\n\r\nA\r\n\r\nContent-Length: 0\r\nContent-Range: text [3:5]\r\n\r\n\r\n\r\n",
        repr_digest("Ahel")
    );
    let all = sub.raw_at_least(start + expected.len()).await;
    assert_eq!(String::from_utf8_lossy(&all[start..]), expected);
    s.stop().await;
}
