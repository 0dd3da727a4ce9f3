//! HTTP hygiene (issue 14, part 7): the `Host` check as browsers, access control and HTTP/2
//! see it, HEAD answering what GET answers, and request ids. The malformed-request suite
//! (`malformed.rs`) holds the raw HTTP/1.x `Host` cases; the logs are in `logs.rs`.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::client::conn::http2::SendRequest;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use crate::support::client::{request, Conn, Response, WAIT};
use crate::support::server::{Engine, TestServer};

/// One raw request (bytes exactly as given) on a fresh connection; its response.
async fn raw(addr: std::net::SocketAddr, bytes: &[u8], method: &str) -> Response {
    let mut conn = Conn::open(addr).await;
    conn.send_raw(bytes).await;
    conn.read_response(method).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_refusals_carry_cors_headers_and_a_request_id() {
    let s = TestServer::start_with(Engine::Memory, |c| c.cors_origins = vec!["http://app.example".into()]).await;
    let cases: [(&str, &[u8]); 3] = [
        ("GET", b"GET /h/doc HTTP/1.1\r\nOrigin: http://app.example\r\n\r\n"),
        ("GET", b"GET /h/doc HTTP/1.1\r\nHost: a\r\nHost: b\r\nOrigin: http://app.example\r\n\r\n"),
        // A preflight, which the CORS layer would otherwise answer by itself.
        (
            "OPTIONS",
            b"OPTIONS /h/doc HTTP/1.1\r\nOrigin: http://app.example\r\nAccess-Control-Request-Method: PUT\r\n\r\n",
        ),
    ];
    for (method, bytes) in cases {
        let r = raw(s.addr, bytes, method).await;
        let what = String::from_utf8_lossy(bytes);
        assert_eq!(r.status, 400, "{what}: {r:?}");
        assert_eq!(r.header("plait-error"), Some("bad_host"), "{what}");
        assert_eq!(r.json()["error"], "bad_host", "{what}");
        assert_eq!(r.header("access-control-allow-origin"), Some("http://app.example"), "{what}: {r:?}");
        assert_eq!(r.header("access-control-allow-credentials"), Some("true"), "{what}");
        let exposed = r.header("access-control-expose-headers").unwrap_or_default();
        assert!(exposed.contains("plait-error") && exposed.contains("x-request-id"), "{what}: {exposed}");
        assert!(r.header("x-request-id").is_some_and(|id| !id.is_empty()), "{what}: {r:?}");
        assert!(r.header("access-control-allow-methods").is_none(), "{what}: a refusal is not a preflight answer");
    }
    // The same preflight with a Host is answered as a preflight.
    let ok = raw(
        s.addr,
        b"OPTIONS /h/doc HTTP/1.1\r\nHost: x\r\nOrigin: http://app.example\r\nAccess-Control-Request-Method: PUT\r\n\r\n",
        "OPTIONS",
    )
    .await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(ok.header("access-control-allow-methods").is_some_and(|m| m.contains("PUT")), "{ok:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_is_checked_before_access_control() {
    let s = TestServer::start_with(Engine::Memory, |c| {
        c.auth = plait::config::AuthMode::Token;
        c.admin_token = Some("a".repeat(40));
    })
    .await;
    // No credential and no Host: the malformed request is refused as such, not as a 401.
    let r = raw(s.addr, b"GET /h/doc HTTP/1.1\r\n\r\n", "GET").await;
    assert_eq!((r.status, r.header("plait-error")), (400, Some("bad_host")), "{r:?}");
    let r = raw(s.addr, b"GET /.plait/health HTTP/1.1\r\n\r\n", "GET").await;
    assert_eq!((r.status, r.header("plait-error")), (400, Some("bad_host")), "{r:?}");
    // With a Host, the guard answers as usual.
    let r = request(s.addr, "GET", "/h/doc", &[], b"").await;
    assert_eq!((r.status, r.header("plait-error")), (401, Some("auth_required")), "{r:?}");
    s.stop().await;
}

async fn h2(addr: std::net::SocketAddr) -> SendRequest<Empty<Bytes>> {
    let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
    let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await.unwrap();
    tokio::spawn(conn);
    send
}

/// Status and `Plait-Error` of one HTTP/2 request (or the client's error, as text).
async fn h2_status(send: &mut SendRequest<Empty<Bytes>>, req: Request<Empty<Bytes>>) -> Result<(u16, String), String> {
    let res = tokio::time::timeout(WAIT, send.send_request(req)).await.unwrap().map_err(|e| e.to_string())?;
    assert_eq!(res.version(), hyper::Version::HTTP_2);
    let code = res.headers().get("plait-error").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    Ok((res.status().as_u16(), code))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_takes_authority_for_host() {
    let s = TestServer::start(Engine::Memory).await;
    let mut send = h2(s.addr).await;
    let url = s.url("/h2/doc");
    // :authority and no Host: fine.
    let req = Request::get(&url).body(Empty::new()).unwrap();
    assert_eq!(h2_status(&mut send, req).await, Ok((200, String::new())));
    // A Host beside :authority must still be one valid line.
    let req = Request::get(&url).header("host", "bad host").body(Empty::new()).unwrap();
    assert_eq!(h2_status(&mut send, req).await, Ok((400, "bad_host".into())));
    let req = Request::get(&url).header("host", "a").header("host", "b").body(Empty::new()).unwrap();
    assert_eq!(h2_status(&mut send, req).await, Ok((400, "bad_host".into())));
    // A Host alone (no :authority) names the host as in HTTP/1.1.
    let req = Request::get("/h2/doc").header("host", "x").body(Empty::new()).unwrap();
    let alone = h2_status(&mut send, req).await;
    // Neither: 400 (RFC 9113 §8.3.1), unless the HTTP/2 layer refused the stream first.
    let req = Request::get("/h2/doc").body(Empty::new()).unwrap();
    let neither = h2_status(&mut send, req).await;
    println!("h2: Host without :authority {alone:?}; neither {neither:?}");
    assert_eq!(alone, Ok((200, String::new())));
    assert!(matches!(&neither, Ok((400, code)) if code == "bad_host") || neither.is_err(), "{neither:?}");
    // The connection still serves.
    let req = Request::get(&url).body(Empty::new()).unwrap();
    assert_eq!(h2_status(&mut h2(s.addr).await, req).await, Ok((200, String::new())));
    // HEAD with Subscribe: the 209 head, and a body that ends at once (hyper does not drop a
    // HEAD's body on HTTP/2; axum's router does).
    let mut send = h2(s.addr).await;
    let req = Request::head(&url).header("subscribe", "true").body(Empty::new()).unwrap();
    let res = tokio::time::timeout(WAIT, send.send_request(req)).await.unwrap().unwrap();
    assert_eq!(res.status().as_u16(), 209);
    let body = tokio::time::timeout(WAIT, http_body_util::BodyExt::collect(res.into_body())).await;
    let body = body.expect("the HEAD's body ended").unwrap().to_bytes();
    assert!(body.is_empty(), "{body:?}");
    s.stop().await;
}

/// The headers of `res` that a HEAD must repeat from the GET: all but the body's framing,
/// the date and the per-request id.
fn comparable(res: &Response) -> Vec<(String, String)> {
    let skip = ["date", "transfer-encoding", "x-request-id"];
    let mut h: Vec<_> = res.headers.iter().filter(|(n, _)| !skip.contains(&n.as_str())).cloned().collect();
    h.sort();
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_answers_what_get_answers() {
    let s = TestServer::start(Engine::Memory).await;
    assert_eq!(
        request(s.addr, "PUT", "/head/doc", &[("Version", "\"h-4\""), ("Parents", "")], b"hello").await.status,
        200
    );
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("subscribe", vec![("Subscribe", "true")]),
        ("subscribe-with-parents", vec![("Subscribe", "true"), ("Parents", "\"h-1\"")]),
        ("subscribe-dt", vec![("Subscribe", "true"), ("Merge-Type", "dt")]),
        ("subscribe-with-version", vec![("Subscribe", "true"), ("Version", "\"h-4\"")]),
        ("subscribe-with-unknown-version", vec![("Subscribe", "true"), ("Version", "\"nobody-1\"")]),
        ("subscribe-bad-heartbeats", vec![("Subscribe", "true"), ("Heartbeats", "-1")]),
        ("browser-navigation", vec![("Accept", "text/html,application/xhtml+xml")]),
        ("plain", vec![]),
        ("version", vec![("Version", "\"h-1\"")]),
        ("parents", vec![("Parents", "\"h-1\"")]),
    ];
    for (name, headers) in cases {
        let mut conn = Conn::open(s.addr).await;
        conn.send("GET", "/head/doc", &headers, b"").await;
        let get = conn.read_head().await;
        // The HEAD on a fresh connection: a 209 GET's body never ends.
        let head = Conn::open(s.addr).await.request("HEAD", "/head/doc", &headers, b"").await;
        assert_eq!(head.status, get.status, "{name}: HEAD {head:?}\nGET {get:?}");
        assert_eq!(comparable(&head), comparable(&get), "{name}");
        drop(conn);
    }
    // A HEAD subscription holds nothing once answered: no subscription stays counted.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let health = request(s.addr, "GET", "/.plait/health", &[], b"").await.json();
        if health["subscriptions"] == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "subscriptions still open: {health}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_echoed_or_minted() {
    let s = TestServer::start(Engine::Memory).await;
    let id = |r: &Response| r.header("x-request-id").map(str::to_string);
    // A short printable id is echoed, on success, error and 209 alike.
    let r = request(s.addr, "GET", "/ids/a", &[("X-Request-Id", "client-id.42")], b"").await;
    assert_eq!((r.status, id(&r).as_deref()), (200, Some("client-id.42")));
    let r = request(s.addr, "GET", "/ids/a", &[("X-Request-Id", "e-1"), ("Version", "bad")], b"").await;
    assert_eq!((r.status, id(&r).as_deref()), (400, Some("e-1")));
    let mut conn = Conn::open(s.addr).await;
    conn.send("GET", "/ids/a", &[("Subscribe", "true"), ("X-Request-Id", "sub-1")], b"").await;
    let sub = conn.read_head().await;
    assert_eq!((sub.status, id(&sub).as_deref()), (209, Some("sub-1")));
    drop(conn);
    // Without one, each request gets its own.
    let a = id(&request(s.addr, "GET", "/ids/a", &[], b"").await).expect("a minted id");
    let b = id(&request(s.addr, "GET", "/ids/a", &[], b"").await).expect("a minted id");
    assert_ne!(a, b);
    for minted in [&a, &b] {
        assert!(minted.len() <= 64 && minted.bytes().all(|c| c.is_ascii_graphic()), "{minted}");
    }
    // Unusable ids (too long, spaces, two of them) are replaced, not echoed.
    let long = "x".repeat(65);
    for headers in [
        vec![("X-Request-Id", long.as_str())],
        vec![("X-Request-Id", "has space")],
        vec![("X-Request-Id", "one"), ("X-Request-Id", "two")],
    ] {
        let r = request(s.addr, "GET", "/ids/a", &headers, b"").await;
        let got = r.headers_named("x-request-id");
        assert_eq!(got.len(), 1, "{headers:?}: {got:?}");
        assert!(!headers.iter().any(|(_, v)| *v == got[0]), "{headers:?}: echoed {got:?}");
        assert_ne!(got[0], a);
    }
    s.stop().await;
}
