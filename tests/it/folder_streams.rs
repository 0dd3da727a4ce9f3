//! Folder watches behind proxies and on HTTP/2 (issue 16, item 3: "heartbeats, proxies and
//! HTTP/2 work as they do for documents"). Through real nginx and HAProxy running the configs
//! in `docs/proxies/`: a folder's `209` watch and its server-sent events deliver every change
//! promptly (the added latency against a direct watch, measured in the same run), a resume with
//! the cursor (`Parents` or `Last-Event-ID`) gets exactly the changes after it, and heartbeats
//! keep an idle folder watch open past the proxy's idle timeout, which cuts one without them.
//! On one h2c connection: a folder watch, an event stream and a document subscription at once.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use plait::protocol::{DecodedUpdate, UpdateBody};
use tokio::net::TcpStream;

use crate::proxies::{idle_until_closed, Kind, Proxy};
use crate::support::client::{request, Conn, SubscriptionReader};
use crate::support::server::{Engine, TestServer};

/// One server-sent event: (type, id, data). Blocks without data (`retry:`, heartbeats)
/// dispatch nothing (WHATWG HTML §9.2.6) and are skipped.
type Event = (String, String, String);

fn parse_event(block: &str) -> Option<Event> {
    plait::protocol::sse::interpret(block).map(|e| (e.kind, e.id, e.data))
}

/// Events split from text as it arrives.
#[derive(Default)]
struct EventBuf(String);

impl EventBuf {
    fn next(&mut self) -> Option<Event> {
        while let Some(end) = self.0.find("\n\n") {
            let block: String = self.0.drain(..end + 2).collect();
            if let Some(event) = parse_event(&block) {
                return Some(event);
            }
        }
        None
    }
}

/// An event stream over HTTP/1.1.
struct Events {
    conn: Conn,
    buf: EventBuf,
}

impl Events {
    async fn open(addr: std::net::SocketAddr, path: &str, headers: &[(&str, &str)]) -> Events {
        let mut conn = Conn::open(addr).await;
        let mut all = vec![("Accept", "text/event-stream")];
        all.extend_from_slice(headers);
        conn.send("GET", path, &all, b"").await;
        let head = conn.read_head().await;
        assert_eq!(head.status, 200, "event stream on {path} via {addr}");
        assert_eq!(head.header("content-type"), Some("text/event-stream"));
        Events { conn, buf: EventBuf::default() }
    }

    async fn next(&mut self) -> Event {
        loop {
            if let Some(event) = self.buf.next() {
                return event;
            }
            let chunk = self.conn.read_chunk().await.expect("the event stream ended");
            self.buf.0.push_str(&String::from_utf8(chunk).unwrap());
        }
    }
}

/// A folder watch's update: (its `Version`, its `Parents`, the JSON body).
fn watch_update(u: &DecodedUpdate) -> (String, String, serde_json::Value) {
    let ids = |v: &Option<plait::protocol::VersionSet>| v.as_ref().map(|v| v.ids().join(",")).unwrap_or_default();
    let UpdateBody::Snapshot(body) = &u.body else { panic!("a folder update is a JSON snapshot: {u:?}") };
    (ids(&u.version), ids(&u.parents), serde_json::from_str(body).unwrap())
}

/// Median ms from a PUT under `folder` (written to the server directly) to its change on a
/// folder watch opened at `via`; checks each change names the path and chains its `Parents`.
async fn median_folder_delivery_ms(
    via: std::net::SocketAddr,
    writer: std::net::SocketAddr,
    folder: &str,
    n: usize,
) -> f64 {
    let mut watch = SubscriptionReader::open(via, folder, &[]).await;
    assert_eq!(watch.head.status, 209, "folder watch via {via}");
    let (mut last, _, listing) = watch_update(&watch.next().await);
    assert_eq!(listing["folder"], folder);
    let mut times = Vec::new();
    for i in 0..n {
        let path = format!("{folder}doc-{i}");
        let sent = Instant::now();
        assert_eq!(request(writer, "PUT", &path, &[], b"x").await.status, 200);
        let u = watch.next_within(Duration::from_secs(10)).await.unwrap_or_else(|| panic!("change {i} via {via}"));
        times.push(sent.elapsed().as_secs_f64() * 1000.0);
        let (version, parents, change) = watch_update(&u);
        assert_eq!((change["path"].as_str(), parents.as_str()), (Some(path.as_str()), last.as_str()));
        last = version;
    }
    times.sort_by(f64::total_cmp);
    times[n / 2]
}

async fn folder_streams_pass_through(kind: Kind) {
    let s = TestServer::start(Engine::Rocks).await;
    let proxy = Proxy::start(kind, s.addr, None).await;
    let n = 20;
    let direct_ms = median_folder_delivery_ms(s.addr, s.addr, "/direct/", n).await;
    // The events of the proxied run, on a stream opened before it.
    let mut events = Events::open(proxy.addr, "/via/", &[]).await;
    assert_eq!(events.next().await.0, "listing");
    let proxied_ms = median_folder_delivery_ms(proxy.addr, s.addr, "/via/", n).await;
    eprintln!(
        "{kind:?}: median PUT-to-folder-change {proxied_ms:.2} ms through the proxy vs {direct_ms:.2} ms direct \
         (added {:.2} ms)",
        proxied_ms - direct_ms
    );
    assert!(proxied_ms < direct_ms + 50.0, "{kind:?} holds folder changes back: {proxied_ms:.1} vs {direct_ms:.1} ms");
    let mut cursors = Vec::new();
    for i in 0..n {
        let (kind_, id, data) = events.next().await;
        let change: serde_json::Value = serde_json::from_str(&data).unwrap();
        assert_eq!((kind_.as_str(), change["path"].as_str()), ("message", Some(format!("/via/doc-{i}").as_str())));
        assert_eq!(change["cursor"].as_str(), Some(id.as_str()));
        cursors.push(id);
    }

    // Resumes through the proxy: exactly the changes after the cursor, then the next live one.
    let from = n / 2;
    let marker = "/via/marker";
    let mut watch =
        SubscriptionReader::open(proxy.addr, "/via/", &[("Parents", &format!("\"{}\"", cursors[from - 1]))]).await;
    assert_eq!(watch.head.status, 209);
    let mut resumed = Events::open(proxy.addr, "/via/", &[("Last-Event-ID", &cursors[from - 1])]).await;
    let (kind_, id, data) = resumed.next().await;
    assert_eq!((kind_.as_str(), id.as_str()), ("ready", cursors[from - 1].as_str()), "{data}");
    assert_eq!(request(s.addr, "PUT", marker, &[], b"m").await.status, 200);
    let mut want: Vec<String> = (from..n).map(|i| format!("/via/doc-{i}")).collect();
    want.push(marker.into());
    for (i, path) in want.iter().enumerate() {
        let (_, _, change) = watch_update(&watch.next().await);
        assert_eq!(change["path"].as_str(), Some(path.as_str()), "{kind:?} 209 resume, change {i}");
        let (_, id, data) = resumed.next().await;
        let change: serde_json::Value = serde_json::from_str(&data).unwrap();
        assert_eq!(change["path"].as_str(), Some(path.as_str()), "{kind:?} event resume, change {i}");
        if let Some(cursor) = cursors.get(from + i) {
            assert_eq!(&id, cursor);
        }
    }
    drop(proxy);
    s.stop().await;
}

/// Heartbeats keep an idle folder watch open through a proxy whose idle timeout cuts one
/// that asked for none.
async fn folder_heartbeats_outlive_the_idle_timeout(kind: Kind) {
    let s = TestServer::start(Engine::Memory).await;
    let idle = 2;
    let proxy = Proxy::start(kind, s.addr, Some(idle)).await;
    let mut quiet = SubscriptionReader::open(proxy.addr, "/idle/", &[]).await;
    assert_eq!(quiet.head.status, 209);
    quiet.next().await; // the listing
    let closed = idle_until_closed(&mut quiet, Duration::from_secs(10)).await;
    assert!(closed.is_some(), "{kind:?}: an idle folder watch without heartbeats was not cut within 10 s");

    let mut beating = SubscriptionReader::open(proxy.addr, "/idle/", &[("Heartbeats", "0.5")]).await;
    assert_eq!(beating.head.status, 209);
    beating.next().await;
    let closed = idle_until_closed(&mut beating, Duration::from_secs(3 * idle as u64)).await;
    assert_eq!(closed, None, "{kind:?}: the proxy cut a folder watch that had heartbeats");
    assert_eq!(request(s.addr, "PUT", "/idle/after", &[], b"x").await.status, 200);
    let (_, _, change) = watch_update(&beating.next().await);
    assert_eq!(change["path"], "/idle/after", "{kind:?}: the change after the idle period");
    drop(proxy);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_passes_folder_watches_and_events() {
    folder_streams_pass_through(Kind::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_passes_folder_watches_and_events() {
    folder_streams_pass_through(Kind::Haproxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_heartbeats_keep_idle_folder_watches_open() {
    folder_heartbeats_outlive_the_idle_timeout(Kind::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_heartbeats_keep_idle_folder_watches_open() {
    folder_heartbeats_outlive_the_idle_timeout(Kind::Haproxy).await;
}

/// The next event of an event stream read as an HTTP/2 body (10 s at most).
async fn next_h2_event(events: &mut hyper::body::Incoming, buf: &mut EventBuf) -> Event {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(event) = buf.next() {
            return event;
        }
        let frame = tokio::time::timeout_at(deadline, events.frame()).await.expect("an event in time");
        if let Ok(data) = frame.expect("the event stream ended").unwrap().into_data() {
            buf.0.push_str(std::str::from_utf8(&data).unwrap());
        }
    }
}

/// One h2c connection carries a folder watch, the folder's event stream and a document
/// subscription at once; changes written on another connection reach all three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_h2c_connection_carries_folder_watches_and_events() {
    use hyper::Request;

    let s = TestServer::start(Engine::Rocks).await;
    let mut send = crate::http2::h2::<Empty<Bytes>, _>(TcpStream::connect(s.addr).await.unwrap()).await;
    let mut writer = crate::http2::h2::<Full<Bytes>, _>(TcpStream::connect(s.addr).await.unwrap()).await;
    let uri = |path: &str| format!("http://{}{path}", s.addr);
    let limit = Duration::from_secs(10);
    let mut open = |req: Request<Empty<Bytes>>| {
        let sent = send.send_request(req);
        async move {
            let res = tokio::time::timeout(limit, sent).await.unwrap().unwrap();
            assert_eq!(res.version(), hyper::Version::HTTP_2);
            res
        }
    };
    let res = open(Request::get(uri("/h2f/")).header("subscribe", "true").body(Empty::new()).unwrap()).await;
    assert_eq!(res.status().as_u16(), 209);
    let (mut watch, mut decoder) = (res.into_body(), plait::protocol::Decoder::new());
    let res = open(Request::get(uri("/h2f/")).header("accept", "text/event-stream").body(Empty::new()).unwrap()).await;
    assert_eq!(res.status().as_u16(), 200);
    let (mut events, mut buf) = (res.into_body(), EventBuf::default());
    let res = open(Request::get(uri("/h2f/doc")).header("subscribe", "true").body(Empty::new()).unwrap()).await;
    assert_eq!(res.status().as_u16(), 209);
    let (mut doc, mut doc_decoder) = (res.into_body(), plait::protocol::Decoder::new());

    let listing = crate::http2::next_update(&mut watch, &mut decoder, limit).await;
    assert!(matches!(&listing, Some(UpdateBody::Snapshot(j)) if j.contains("\"folder\":\"/h2f/\"")), "{listing:?}");
    assert_eq!(next_h2_event(&mut events, &mut buf).await.0, "listing");
    let first = crate::http2::next_update(&mut doc, &mut doc_decoder, limit).await;
    assert_eq!(first, Some(UpdateBody::Snapshot(String::new())), "the document's initial snapshot");

    for (i, path) in ["/h2f/doc", "/h2f/other", "/h2f/doc"].iter().enumerate() {
        let body = format!("round {i}");
        let res = writer.send_request(Request::put(uri(path)).body(Full::new(Bytes::from(body.clone()))).unwrap());
        assert_eq!(res.await.unwrap().status().as_u16(), 200);
        let change = crate::http2::next_update(&mut watch, &mut decoder, limit).await;
        assert!(
            matches!(&change, Some(UpdateBody::Snapshot(j)) if j.contains(&format!("\"path\":\"{path}\""))),
            "{change:?}"
        );
        let (kind, _, data) = next_h2_event(&mut events, &mut buf).await;
        assert!(kind == "message" && data.contains(&format!("\"path\":\"{path}\"")), "{kind} {data}");
        if *path == "/h2f/doc" {
            let got = crate::http2::next_update(&mut doc, &mut doc_decoder, limit).await;
            assert!(got.is_some(), "round {i}: the document subscription got nothing");
        }
    }
    s.stop().await;
}
