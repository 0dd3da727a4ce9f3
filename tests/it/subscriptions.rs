//! Subscriptions: the 209 stream, simpleton and dt semantics, resume, slow readers.

use std::time::Duration;

use plait::protocol::{DecodedUpdate, UpdateBody};

use crate::engines;
use crate::support::client::request;
use crate::support::server::{Engine, TestServer};
use crate::support::{apply_update as apply, SubscriptionReader};

trait BodyLen {
    fn body_len(&self) -> usize;
}

impl BodyLen for DecodedUpdate {
    /// Code points this update inserts (the updates here only insert).
    fn body_len(&self) -> usize {
        match &self.body {
            UpdateBody::Snapshot(s) => s.chars().count(),
            UpdateBody::Patches(p) => p.iter().map(|p| p.content.chars().count()).sum(),
        }
    }
}

fn ver(u: &DecodedUpdate) -> String {
    u.version.as_ref().map(|v| v.to_header()).unwrap_or_default()
}

fn par(u: &DecodedUpdate) -> String {
    u.parents.as_ref().map(|v| v.to_header()).unwrap_or_else(|| "<absent>".into())
}

async fn put(s: &TestServer, path: &str, headers: &[(&str, &str)], body: &str) {
    let r = request(s.addr, "PUT", path, headers, body.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

engines!(simpleton_snapshot_then_live_patches, |engine: Engine| async move {
    let s = TestServer::start(engine).await;
    put(&s, "/s", &[("Version", "\"alice-4\""), ("Parents", "")], "hello").await;
    let mut sub = SubscriptionReader::open(s.addr, "/s", &[("Heartbeats", "20"), ("Peer", "watcher")]).await;
    assert_eq!(sub.head.status, 209);
    assert_eq!(sub.head.reason, "Multiresponse");
    assert_eq!(sub.head.header("subscribe"), Some("true"));
    assert_eq!(sub.head.header("heartbeats"), Some("20"));
    assert_eq!(sub.head.header("current-version"), Some("\"alice-4\""));
    assert_eq!(sub.head.header("content-type"), Some("application/http-history"));
    assert_eq!(sub.head.header("x-accel-buffering"), Some("no"));
    let first = sub.next().await;
    assert_eq!((ver(&first).as_str(), par(&first).as_str()), ("\"alice-4\"", ""));
    let mut text = apply("", &first);
    assert_eq!(text, "hello");
    put(
        &s,
        "/s",
        &[("Version", "\"bob-5\""), ("Parents", "\"alice-4\""), ("Content-Range", "text [5:5]"), ("Peer", "bob")],
        " world",
    )
    .await;
    let u = sub.next().await;
    assert_eq!((ver(&u).as_str(), par(&u).as_str()), ("\"bob-5\"", "\"alice-4\""));
    text = apply(&text, &u);
    assert_eq!(text, "hello world");
    assert!(u.headers.iter().any(|(n, _)| n == "repr-digest"));
    s.stop().await;
});

engines!(sender_is_not_echoed_but_gets_a_rebase_after_a_merge, |engine: Engine| async move {
    let s = TestServer::start(engine).await;
    put(&s, "/r", &[("Version", "\"a-4\""), ("Parents", "")], "hello").await;
    let mut p1 = SubscriptionReader::open(s.addr, "/r", &[("Peer", "p1")]).await;
    let mut text = apply("", &p1.next().await);
    // p1's own edit: not echoed (the next thing p1 sees is q's edit, rebased onto p1's).
    put(
        &s,
        "/r",
        &[("Version", "\"p1-0\""), ("Parents", "\"a-4\""), ("Content-Range", "text [0:0]"), ("Peer", "p1")],
        "X",
    )
    .await;
    text = format!("X{text}");
    // q edits concurrently from a-4, unaware of p1-0.
    put(
        &s,
        "/r",
        &[("Version", "\"q-0\""), ("Parents", "\"a-4\""), ("Content-Range", "text [5:5]"), ("Peer", "q")],
        "!",
    )
    .await;
    let u = p1.next().await;
    assert_eq!(par(&u), "\"p1-0\"");
    assert_eq!(ver(&u), "\"p1-0\", \"q-0\"");
    text = apply(&text, &u);
    assert_eq!(text, "Xhello!");
    // Now p1 writes concurrently with r; p1 gets a rebase from its own version.
    put(
        &s,
        "/r",
        &[("Version", "\"r-0\""), ("Parents", "\"p1-0\", \"q-0\""), ("Content-Range", "text [0:0]"), ("Peer", "r")],
        "<",
    )
    .await;
    put(
        &s,
        "/r",
        &[("Version", "\"p1-1\""), ("Parents", "\"p1-0\", \"q-0\""), ("Content-Range", "text [7:7]"), ("Peer", "p1")],
        ">",
    )
    .await;
    // p1 may first see r's edit (sent before p1's write arrived), which a real simpleton
    // client drops because its version has moved to p1-1; it must then get the rebase.
    let mut client_version = "\"p1-1\"".to_string();
    text = format!("{text}>");
    loop {
        let u = p1.next().await;
        if par(&u) == client_version {
            text = apply(&text, &u);
            client_version = ver(&u);
            break;
        }
    }
    assert_eq!(client_version, "\"p1-1\", \"r-0\"");
    assert_eq!(text, "<Xhello!>");
    let r = request(s.addr, "GET", "/r", &[], b"").await;
    assert_eq!(r.text(), text);
    s.stop().await;
});

engines!(resume_with_parents_sends_only_what_was_missed, |engine: Engine| async move {
    let s = TestServer::start(engine).await;
    put(&s, "/res", &[("Version", "\"a-4\""), ("Parents", "")], "hello").await;
    put(&s, "/res", &[("Version", "\"b-5\""), ("Parents", "\"a-4\""), ("Content-Range", "text [5:5]")], " world").await;
    let mut sub = SubscriptionReader::open(s.addr, "/res", &[("Parents", "\"a-4\"")]).await;
    let u = sub.next().await;
    assert_eq!((ver(&u).as_str(), par(&u).as_str()), ("\"b-5\"", "\"a-4\""));
    assert_eq!(apply("hello", &u), "hello world");
    // Already current: nothing is sent until the next change.
    let mut current = SubscriptionReader::open(s.addr, "/res", &[("Parents", "\"b-5\"")]).await;
    assert_eq!(current.head.status, 209);
    assert!(current.next_within(Duration::from_millis(300)).await.is_none());
    put(&s, "/res", &[("Version", "\"c-0\""), ("Parents", "\"b-5\""), ("Content-Range", "text [0:0]")], ">").await;
    let u = current.next().await;
    assert_eq!((ver(&u).as_str(), par(&u).as_str()), ("\"c-0\"", "\"b-5\""));
    s.stop().await;
});

engines!(simpleton_subscription_waits_for_unknown_parents, |engine: Engine| async move {
    let s = TestServer::start(engine).await;
    put(&s, "/lost", &[("Version", "\"a-4\""), ("Parents", "")], "hello").await;
    // The client's own PUT (me-0) was lost while offline; it resubscribes from it.
    let mut sub = SubscriptionReader::open(s.addr, "/lost", &[("Parents", "\"me-0\""), ("Peer", "me")]).await;
    assert_eq!(sub.head.status, 209, "simpleton must not get 309 here");
    // Meanwhile someone else edits: nothing can be sent to a client at me-0 yet.
    put(&s, "/lost", &[("Version", "\"o-0\""), ("Parents", "\"a-4\""), ("Content-Range", "text [0:0]")], "<").await;
    assert!(sub.next_within(Duration::from_millis(300)).await.is_none());
    // The lost PUT is retried: the client gets its rebase from me-0.
    put(
        &s,
        "/lost",
        &[("Version", "\"me-0\""), ("Parents", "\"a-4\""), ("Content-Range", "text [5:5]"), ("Peer", "me")],
        "!",
    )
    .await;
    let u = sub.next().await;
    assert_eq!(par(&u), "\"me-0\"");
    assert_eq!(apply("hello!", &u), "<hello!");
    // dt has no such exception: unknown parents are a 309.
    let r = request(
        s.addr,
        "GET",
        "/lost",
        &[("Subscribe", "true"), ("Merge-Type", "dt"), ("Parents", "\"nobody-1\"")],
        b"",
    )
    .await;
    assert_eq!(r.status, 309);
    s.stop().await;
});

engines!(dt_subscribers_get_history_and_no_echo, |engine: Engine| async move {
    let s = TestServer::start(engine).await;
    put(&s, "/dt", &[("Version", "\"alice-4\""), ("Parents", "")], "hello").await;
    let mut sub = SubscriptionReader::open(s.addr, "/dt", &[("Merge-Type", "dt"), ("Peer", "d1")]).await;
    assert_eq!(sub.head.header("merge-type"), Some("dt"));
    let first = sub.next().await;
    assert_eq!((ver(&first).as_str(), par(&first).as_str()), ("", ""));
    let u = sub.next().await;
    assert_eq!((ver(&u).as_str(), par(&u).as_str()), ("\"alice-4\"", ""));
    // Its own write is not echoed; another peer's is delivered in original coordinates.
    put(
        &s,
        "/dt",
        &[
            ("Version", "\"d1-0\""),
            ("Parents", "\"alice-4\""),
            ("Content-Range", "text [0:0]"),
            ("Peer", "d1"),
            ("Merge-Type", "dt"),
        ],
        "A",
    )
    .await;
    put(
        &s,
        "/dt",
        &[("Version", "\"e-0\""), ("Parents", "\"alice-4\""), ("Content-Range", "text [5:5]"), ("Peer", "e")],
        "Z",
    )
    .await;
    let u = sub.next().await;
    assert_eq!((ver(&u).as_str(), par(&u).as_str()), ("\"e-0\"", "\"alice-4\""));
    let UpdateBody::Patches(p) = &u.body else { panic!("expected a patch") };
    assert_eq!(p[0].range.to_string(), "text [5:5]");
    assert!(sub.next_within(Duration::from_millis(200)).await.is_none());
    s.stop().await;
});

engines!(heartbeats_arrive_between_updates, |engine: Engine| async move {
    let s = TestServer::start(engine).await;
    let mut sub = SubscriptionReader::open(s.addr, "/hb", &[("Heartbeats", "0.2")]).await;
    let _ = sub.next().await;
    let before = sub.raw.len();
    // Nothing else happens: within 2 s at least two CRLF heartbeats must arrive.
    let raw = sub.raw_at_least(before + 4).await.to_vec();
    assert!(raw[before..].iter().all(|b| *b == b'\r' || *b == b'\n'));
    s.stop().await;
});

engines!(slow_subscriber_gets_one_coalesced_catch_up, |engine: Engine| async move {
    let s = TestServer::start(engine).await;
    put(&s, "/slow", &[("Version", "\"a-0\""), ("Parents", "")], "x").await;
    let mut sub = SubscriptionReader::open(s.addr, "/slow", &[]).await;
    let _snapshot = sub.next().await;
    let mut len = 1;
    // 100 writes of 128 KiB while the subscriber reads nothing: far more than the socket
    // buffers hold, so the stream stalls and must coalesce what it could not send.
    const CHUNK: usize = 128 << 10;
    let chunk = "y".repeat(CHUNK);
    let mut parents = "\"a-0\"".to_string();
    for i in 0..100 {
        let v = format!("\"w-{}\"", (i + 1) * CHUNK - 1);
        put(&s, "/slow", &[("Version", &v), ("Parents", &parents), ("Content-Range", "text [-0:-0]")], &chunk).await;
        parents = v;
    }
    let mut updates = 0;
    while len < 1 + 100 * CHUNK {
        let u = sub.next().await;
        len += u.body_len();
        updates += 1;
    }
    assert_eq!(len, 1 + 100 * CHUNK);
    assert!(updates < 100, "{updates} updates for 100 writes: not coalesced");
    s.stop().await;
});

engines!(method_override_head_subscription_is_a_header_only_change_feed, |engine: Engine| async move {
    use plait::protocol::UpdateBody;
    let s = TestServer::start(engine).await;
    put(&s, "/feed", &[("Version", "\"alice-4\""), ("Parents", "")], "hello").await;
    let mut feed = SubscriptionReader::open(s.addr, "/feed", &[("Method-Override", "HEAD")]).await;
    assert_eq!(feed.head.status, 209);
    // The current version is announced once, without the text.
    let first = feed.next().await;
    assert_eq!((ver(&first).as_str(), par(&first).as_str()), ("\"alice-4\"", ""));
    assert_eq!(first.body, UpdateBody::Snapshot(String::new()));
    assert_eq!(first.header("content-length"), Some("0"));
    put(
        &s,
        "/feed",
        &[("Version", "\"bob-5\""), ("Parents", "\"alice-4\""), ("Content-Range", "text [5:5]")],
        " world",
    )
    .await;
    let u = feed.next().await;
    assert_eq!((ver(&u).as_str(), par(&u).as_str()), ("\"bob-5\"", "\"alice-4\""));
    assert_eq!(u.body, UpdateBody::Snapshot(String::new()));
    assert!(!String::from_utf8_lossy(&feed.raw).contains("world"), "a change feed carries no text");
    // Without Subscribe, Method-Override: HEAD is a HEAD: the GET's headers, no body.
    let mut c = crate::support::client::Conn::open(s.addr).await;
    c.send("GET", "/feed", &[("Method-Override", "HEAD")], b"").await;
    let head = c.read_response("GET").await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("version"), Some("\"bob-5\""));
    // At the HTTP level this is still a GET, so its framing must say "no body".
    assert_eq!(head.header("content-length"), Some("0"));
    c.send("GET", "/feed", &[], b"").await;
    assert_eq!(c.read_response("GET").await.text(), "hello world", "no stray body on the connection");

    // Parents already current: nothing until the next change.
    let mut quiet =
        SubscriptionReader::open(s.addr, "/feed", &[("Method-Override", "HEAD"), ("Parents", "\"bob-5\"")]).await;
    assert!(quiet.next_within(std::time::Duration::from_millis(300)).await.is_none());
    put(&s, "/feed", &[("Version", "\"carol-0\""), ("Parents", "\"bob-5\""), ("Content-Range", "text [0:0]")], ">")
        .await;
    let u = quiet.next().await;
    assert_eq!((ver(&u).as_str(), par(&u).as_str()), ("\"carol-0\"", "\"bob-5\""));
    assert_eq!(u.body, UpdateBody::Snapshot(String::new()));
    s.stop().await;
});
