//! CORS on every response, and the reserved paths.

use crate::support::client::request;
use crate::support::server::{Engine, TestServer};
use crate::support::SubscriptionReader;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_headers_on_success_error_and_209() {
    let s = TestServer::start(Engine::Memory).await;
    let origin = [("Origin", "https://app.example")];
    let ok = request(s.addr, "GET", "/c", &origin, b"").await;
    let err = request(s.addr, "GET", "/c", &[("Origin", "https://app.example"), ("Merge-Type", "nope")], b"").await;
    assert_eq!(err.status, 400);
    let sub = SubscriptionReader::open(s.addr, "/c", &origin).await;
    for r in [&ok, &err, &sub.head] {
        assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{r:?}");
        let exposed = r.header("access-control-expose-headers").unwrap_or_default().to_ascii_lowercase();
        for h in
            ["version", "parents", "current-version", "merge-type", "subscribe", "heartbeats", "repr-type", "editable"]
        {
            assert!(exposed.split(',').any(|e| e.trim() == h), "{h} not exposed in {exposed}");
        }
    }
    // A browser preflight for a Braid PUT.
    let pre = request(
        s.addr,
        "OPTIONS",
        "/c",
        &[
            ("Origin", "https://app.example"),
            ("Access-Control-Request-Method", "PUT"),
            ("Access-Control-Request-Headers", "version, parents, content-range, peer, subscribe"),
        ],
        b"",
    )
    .await;
    assert_eq!(pre.status, 200);
    let allowed = pre.header("access-control-allow-headers").unwrap_or_default().to_ascii_lowercase();
    for h in ["version", "parents", "content-range", "peer", "subscribe"] {
        assert!(allowed.contains(h), "{h} not allowed in {allowed}");
    }
    assert!(pre.header("access-control-allow-methods").unwrap_or_default().contains("PUT"));
    // Plain OPTIONS without CORS request headers is a 200 too.
    assert_eq!(request(s.addr, "OPTIONS", "/c", &[], b"").await.status, 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_origins_are_echoed_and_others_refused() {
    let s = TestServer::start_with(Engine::Memory, |c| c.cors_origins = vec!["https://good.example".into()]).await;
    let good = request(s.addr, "GET", "/c", &[("Origin", "https://good.example")], b"").await;
    assert_eq!(good.header("access-control-allow-origin"), Some("https://good.example"));
    assert!(good.headers_named("vary").iter().any(|v| v.to_ascii_lowercase().contains("origin")));
    let bad = request(s.addr, "GET", "/c", &[("Origin", "https://evil.example")], b"").await;
    assert_eq!(bad.header("access-control-allow-origin"), None);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_paths() {
    let s = TestServer::start(Engine::Memory).await;
    let mux = request(s.addr, "POST", "/.well-known/multiplexer/abc", &[("Multiplex-Version", "1.0")], b"").await;
    assert_eq!(mux.status, 501);
    assert!(mux.header("multiplex-version").is_none());
    assert_eq!(mux.json()["error"], "multiplexing_not_supported");
    let health = request(s.addr, "GET", "/.plait/health", &[], b"").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    let unknown = request(s.addr, "GET", "/.plait/nope", &[], b"").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["error"], "not_found");
    // Reserved paths are not documents: a PUT there does not create one.
    let put = request(s.addr, "PUT", "/.plait/health", &[], b"x").await;
    assert_ne!(put.status, 200, "{put:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_get_the_editor_unless_it_is_off() {
    use crate::support::client::request;
    use crate::support::server::{Engine, TestServer};
    let nav = [("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")];
    let s = TestServer::start(Engine::Memory).await;
    request(s.addr, "PUT", "/page", &[], b"plain words").await;
    let r = request(s.addr, "GET", "/page", &nav, b"").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap_or_default().starts_with("text/html"));
    assert!(r.text().contains("/.plait/client/editor.js"));
    assert!(r.headers_named("vary").iter().any(|v| v.contains("Accept")));
    // API clients, subscriptions and versioned reads are untouched.
    assert_eq!(request(s.addr, "GET", "/page", &[("Accept", "*/*")], b"").await.text(), "plain words");
    assert_eq!(request(s.addr, "GET", "/page", &[], b"").await.text(), "plain words");
    let r = request(s.addr, "GET", "/page", &[nav[0], ("Version", "\"x-0\"")], b"").await;
    assert_ne!(r.header("content-type"), Some("text/html; charset=utf-8"));
    // The modules the page imports.
    for file in ["editor.js", "simpleton.js", "framing.js", "text.js"] {
        let r = request(s.addr, "GET", &format!("/.plait/client/{file}"), &[], b"").await;
        assert_eq!(r.status, 200, "{file}");
        assert!(r.header("content-type").unwrap_or_default().starts_with("text/javascript"), "{file}");
    }
    let r = request(s.addr, "GET", "/.plait/client/../../etc/passwd", &[], b"").await;
    assert!((400..500).contains(&r.status), "{}", r.status);
    assert_eq!(request(s.addr, "GET", "/.plait/client/nope.js", &[], b"").await.status, 404);
    s.stop().await;

    let s = TestServer::start_with(Engine::Memory, |c| c.no_editor = true).await;
    request(s.addr, "PUT", "/page", &[], b"plain words").await;
    assert_eq!(request(s.addr, "GET", "/page", &nav, b"").await.text(), "plain words");
    s.stop().await;
}
