//! Access control over time and at the edges (docs/ACCESS.md): revocation and expiry ending
//! live subscriptions, resuming with a new credential, throttling of failed
//! authentications, CORS with credentials, attribution in the history, pinned links,
//! secrets kept out of the logs, and the start-up checks of the binary.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use plait::config::AuthMode;
use plait::protocol::{DecodedUpdate, UpdateBody};
use serde_json::{json, Value};

use crate::auth::{
    admin_put, bearer, create_share, create_token, now_ms, token_server, try_create_share, with_token, Share, Token,
    ADMIN,
};
use crate::support::apply_update;
use crate::support::client::{request, Conn, Response, SubscriptionReader, WAIT};
use crate::support::server::{plait_binary, Engine, TestServer};

fn ver(u: &DecodedUpdate) -> String {
    u.version.as_ref().map(|v| v.to_header()).unwrap_or_default()
}

fn par(u: &DecodedUpdate) -> String {
    u.parents.as_ref().map(|v| v.to_header()).unwrap_or_else(|| "<absent>".into())
}

/// Reads a 209 body until it ends; the moment it ended, or None if it was still open after
/// `limit`.
async fn until_end(sub: &mut SubscriptionReader, limit: Duration) -> Option<Instant> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, sub.conn.read_chunk()).await {
            Err(_) => return None,
            Ok(None) => return Some(Instant::now()),
            Ok(Some(chunk)) => {
                sub.raw.extend_from_slice(&chunk);
                sub.decoder.push(&chunk);
            }
        }
    }
}

/// Sends one more request on the connection a subscription used, after its body ended:
/// the body must have ended cleanly (the connection stays usable).
async fn reuse(sub: SubscriptionReader, path: &str, headers: &[(&str, &str)]) -> Response {
    let conn: Conn = sub.conn;
    let path = path.to_string();
    let headers: Vec<(String, String)> = headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
    let task = tokio::spawn(async move {
        let mut conn = conn;
        let h: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        conn.request("GET", &path, &h, b"").await
    });
    match task.await {
        Ok(r) => r,
        Err(e) => panic!("the connection of the ended subscription was not usable (body not ended cleanly?): {e}"),
    }
}

fn code(r: &Response) -> (u16, Option<String>) {
    (r.status, r.header("plait-error").map(str::to_string))
}

fn err(status: u16, code: &str) -> (u16, Option<String>) {
    (status, Some(code.to_string()))
}

// ---------------------------------------------------------------------------------------
// (a) Revocation and expiry reach live subscriptions.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_token_ends_its_subscriptions_within_a_second() {
    let s = token_server(Engine::Rocks, |_| {}).await;
    let a = s.addr;
    admin_put(a, "/live/doc", &[], "hello").await;
    let t = create_token(a, ADMIN, "watcher", "read", &["/live/"], None).await;
    let other = create_token(a, ADMIN, "bystander", "read", &["/live/"], None).await;
    let auth = bearer(&t.token);
    let mut sub = SubscriptionReader::open(a, "/live/doc", &[("Authorization", &auth)]).await;
    assert_eq!(sub.head.status, 209);
    assert_eq!(apply_update("", &sub.next().await), "hello");
    let other_auth = bearer(&other.token);
    let mut bystander = SubscriptionReader::open(a, "/live/doc", &[("Authorization", &other_auth)]).await;
    assert_eq!(bystander.head.status, 209);
    let mut seen = apply_update("", &bystander.next().await);

    let d = with_token(a, ADMIN, "DELETE", &format!("/.plait/tokens/{}", t.id), &[], b"").await;
    assert_eq!(d.status, 204, "{}", d.text());
    let revoked_at = Instant::now();
    let ended = until_end(&mut sub, Duration::from_secs(3)).await;
    let took = ended.expect("the subscription was still open 3 s after its token was revoked") - revoked_at;
    eprintln!("subscription ended {took:?} after the revocation");
    assert!(took < Duration::from_secs(1), "the subscription ended {took:?} after the revocation (limit 1 s)");

    // The next request with the token, on the same connection and on a fresh one, is 401.
    let again = reuse(sub, "/live/doc", &[("Authorization", &auth)]).await;
    assert_eq!(code(&again), err(401, "invalid_token"), "{}", again.text());
    let fresh = with_token(a, &t.token, "GET", "/live/doc", &[], b"").await;
    assert_eq!(code(&fresh), err(401, "invalid_token"));
    // Another token's subscription is untouched.
    admin_put(a, "/live/doc", &[("Content-Range", "text [5:5]")], "!").await;
    seen = apply_update(&seen, &bystander.next().await);
    assert_eq!(seen, "hello!");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_share_link_ends_its_subscriptions_within_a_second() {
    let s = token_server(Engine::Rocks, |_| {}).await;
    let a = s.addr;
    admin_put(a, "/live/doc", &[], "hello").await;
    // The link's creator (a read token) revokes it.
    let creator = create_token(a, ADMIN, "creator", "read", &["/live/"], None).await;
    let link = create_share(a, &creator.token, json!({"path": "/live/doc", "rights": "subscribe"})).await;
    let keep = create_share(a, &creator.token, json!({"path": "/live/doc", "rights": "subscribe"})).await;
    let mut sub = SubscriptionReader::open(a, &link.href, &[]).await;
    assert_eq!(sub.head.status, 209);
    assert_eq!(apply_update("", &sub.next().await), "hello");
    let mut other = SubscriptionReader::open(a, &keep.href, &[]).await;
    assert_eq!(other.head.status, 209);
    let mut seen = apply_update("", &other.next().await);

    let d = with_token(a, &creator.token, "DELETE", &format!("/.plait/shares/{}", link.id), &[], b"").await;
    assert_eq!(d.status, 204, "{}", d.text());
    let revoked_at = Instant::now();
    let ended = until_end(&mut sub, Duration::from_secs(3)).await;
    let took = ended.expect("the subscription was still open 3 s after its link was revoked") - revoked_at;
    eprintln!("subscription ended {took:?} after the revocation");
    assert!(took < Duration::from_secs(1), "the subscription ended {took:?} after the revocation (limit 1 s)");

    let again = reuse(sub, &link.href, &[]).await;
    assert_eq!(code(&again), err(403, "invalid_share_link"), "{}", again.text());
    let fresh = request(a, "GET", &link.href, &[], b"").await;
    assert_eq!(code(&fresh), err(403, "invalid_share_link"));
    // Revoking it again: 404.
    let d = with_token(a, &creator.token, "DELETE", &format!("/.plait/shares/{}", link.id), &[], b"").await;
    assert_eq!(code(&d), err(404, "no_such_share"));
    admin_put(a, "/live/doc", &[("Content-Range", "text [5:5]")], "!").await;
    seen = apply_update(&seen, &other.next().await);
    assert_eq!(seen, "hello!", "another link's subscription is untouched");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_ends_subscriptions_within_a_second_of_expires_ms() {
    let s = token_server(Engine::Rocks, |_| {}).await;
    let a = s.addr;
    admin_put(a, "/live/doc", &[], "hello").await;
    let t: Token = create_token(a, ADMIN, "brief", "read", &["/live/"], Some(1)).await;
    let l: Share =
        create_share(a, ADMIN, json!({"path": "/live/doc", "rights": "subscribe", "expires_in_secs": 1})).await;
    let (t_exp, l_exp) = (t.expires_ms.expect("token expires_ms"), l.expires_ms.expect("link expires_ms"));
    let created = t.json["created_ms"].as_u64().expect("created_ms");
    assert!((990..=1010).contains(&(t_exp - created)), "expires_ms {t_exp} is not created_ms {created} + 1 s");

    let auth = bearer(&t.token);
    let mut st = SubscriptionReader::open(a, "/live/doc", &[("Authorization", &auth)]).await;
    let mut sl = SubscriptionReader::open(a, &l.href, &[]).await;
    assert!(now_ms() < t_exp.min(l_exp), "too slow: the credentials expired before the subscriptions opened");
    assert_eq!((st.head.status, sl.head.status), (209, 209));
    st.next().await;
    sl.next().await;
    let limit = Duration::from_millis((t_exp.max(l_exp) + 3000).saturating_sub(now_ms()));
    let (et, el) = tokio::join!(until_end(&mut st, limit), until_end(&mut sl, limit));
    // Wall-clock ms of each end, from the Instant it was seen.
    let to_ms = |i: Instant| now_ms() - Instant::now().duration_since(i).as_millis() as u64;
    let et = to_ms(et.expect("the token's subscription was still open 3 s after expires_ms"));
    let el = to_ms(el.expect("the link's subscription was still open 3 s after expires_ms"));
    eprintln!(
        "token stream ended {} ms after expires_ms, link stream {} ms",
        et as i64 - t_exp as i64,
        el as i64 - l_exp as i64
    );
    assert!(et + 20 >= t_exp, "the token's subscription ended {} ms before expires_ms", t_exp - et);
    assert!(et < t_exp + 1000, "the token's subscription ended {} ms after expires_ms (limit 1 s)", et - t_exp);
    assert!(el + 20 >= l_exp, "the link's subscription ended {} ms before expires_ms", l_exp - el);
    assert!(el < l_exp + 1000, "the link's subscription ended {} ms after expires_ms (limit 1 s)", el - l_exp);

    let again = reuse(st, "/live/doc", &[("Authorization", &auth)]).await;
    assert_eq!(code(&again), err(401, "invalid_token"), "{}", again.text());
    let again = reuse(sl, &l.href, &[]).await;
    assert_eq!(code(&again), err(403, "invalid_share_link"), "{}", again.text());
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// (b) A client that gets a new credential resumes with Parents and misses nothing.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_token_resumes_with_parents_and_gets_every_missed_update() {
    let s = token_server(Engine::Rocks, |_| {}).await;
    let a = s.addr;
    let w = create_token(a, ADMIN, "writer", "write", &["/r/"], None).await;
    let r1 = create_token(a, ADMIN, "client, first token", "read", &["/r/"], None).await;
    let put = |headers: Vec<(&'static str, &'static str)>, body: &'static str| {
        let token = w.token.clone();
        async move {
            let r = with_token(a, &token, "PUT", "/r/doc", &headers, body.as_bytes()).await;
            assert_eq!(r.status, 200, "{}", r.text());
        }
    };
    put(vec![("Version", "\"w-4\""), ("Parents", "")], "hello").await;

    let auth1 = bearer(&r1.token);
    let mut sub = SubscriptionReader::open(a, "/r/doc", &[("Authorization", &auth1)]).await;
    assert_eq!(sub.head.status, 209);
    let u = sub.next().await;
    let mut text = apply_update("", &u);
    assert_eq!(text, "hello");
    put(vec![("Version", "\"w-5\""), ("Parents", "\"w-4\""), ("Content-Range", "text [5:5]")], "!").await;
    let u = sub.next().await;
    text = apply_update(&text, &u);
    let last = ver(&u);
    assert_eq!((text.as_str(), last.as_str()), ("hello!", "\"w-5\""));

    // The token is revoked: the stream ends.
    let d = with_token(a, ADMIN, "DELETE", &format!("/.plait/tokens/{}", r1.id), &[], b"").await;
    assert_eq!(d.status, 204);
    assert!(until_end(&mut sub, Duration::from_secs(3)).await.is_some(), "the stream did not end on revocation");

    // Meanwhile another token writes, three times.
    put(vec![("Version", "\"p-0\""), ("Parents", "\"w-5\""), ("Content-Range", "text [0:0]")], ">").await;
    put(vec![("Version", "\"q-0\""), ("Parents", "\"p-0\""), ("Content-Range", "text [7:7]")], "?").await;
    put(vec![("Version", "\"r-1\""), ("Parents", "\"q-0\""), ("Content-Range", "text [1:2]")], "H").await;

    // A new token; the client resumes from the last version it saw.
    let r2 = create_token(a, ADMIN, "client, second token", "read", &["/r/"], None).await;
    let auth2 = bearer(&r2.token);
    let fresh = with_token(a, &r2.token, "GET", "/r/doc", &[], b"").await;
    assert_eq!(fresh.status, 200);
    let (want_text, want_version) = (fresh.text(), fresh.header("version").unwrap().to_string());
    assert_eq!(want_text, ">Hello!?");
    // A simpleton client catches up with patches from the last version it saw to the head
    // (spec: one catch-up update), for any number of missed writes.
    let resumed = catch_up(a, &auth2, &[], &last, &text, &want_text, &want_version).await;
    assert!(!resumed.is_empty());
    // A dt client gets every missed update itself, in order.
    let resumed = catch_up(a, &auth2, &[("Merge-Type", "dt")], &last, &text, &want_text, &want_version).await;
    let ids: Vec<String> = resumed.iter().flat_map(|v| v.iter().cloned()).collect();
    for id in ["p-0", "q-0", "r-1"] {
        assert!(ids.iter().any(|v| v == id), "dt: the update {id} written meanwhile never arrived: {ids:?}");
    }
    s.stop().await;
}

/// Resubscribes with `auth` and `Parents: last`, applying updates to `text` until it is
/// `want_text` at `want_version` (bounded); returns each update's version ids.
async fn catch_up(
    a: SocketAddr,
    auth: &str,
    extra: &[(&str, &str)],
    last: &str,
    text: &str,
    want_text: &str,
    want_version: &str,
) -> Vec<Vec<String>> {
    let mut headers = vec![("Authorization", auth), ("Parents", last)];
    headers.extend_from_slice(extra);
    let mut sub = SubscriptionReader::open(a, "/r/doc", &headers).await;
    assert_eq!(sub.head.status, 209, "resuming with a new token {extra:?}");
    let deadline = Instant::now() + WAIT;
    let (mut text, mut current) = (text.to_string(), last.to_string());
    let mut versions = Vec::new();
    while text != want_text || current != want_version {
        let left = deadline.saturating_duration_since(Instant::now());
        let u = sub
            .next_within(left)
            .await
            .unwrap_or_else(|| panic!("{extra:?}: stuck at {text:?} ({current}); want {want_text:?} ({want_version})"));
        if versions.is_empty() {
            assert_eq!(par(&u), last, "{extra:?}: the first update is on top of the last version seen");
        }
        assert!(matches!(u.body, UpdateBody::Patches(_)), "{extra:?}: patches, not a snapshot: {u:?}");
        text = apply_update(&text, &u);
        current = ver(&u);
        versions.push(u.version.as_ref().map(|v| v.ids().to_vec()).unwrap_or_default());
    }
    versions
}

// ---------------------------------------------------------------------------------------
// (c) Throttling of failed authentications.

fn assert_throttled(r: &Response, what: &str) {
    assert_eq!(code(r), err(429, "auth_throttled"), "{what}: {}", r.text());
    assert_eq!(r.json()["error"], "auth_throttled", "{what}");
    let retry: u64 = r
        .header("retry-after")
        .unwrap_or_else(|| panic!("{what}: 429 without Retry-After"))
        .parse()
        .unwrap_or_else(|e| panic!("{what}: Retry-After is not seconds: {e}"));
    assert!((1..=60).contains(&retry), "{what}: Retry-After {retry}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentications_are_throttled_per_address() {
    let s = token_server(Engine::Rocks, |c| c.auth_failures_per_minute = 5).await;
    let a = s.addr;
    admin_put(a, "/t", &[], "text").await;
    let link = create_share(a, ADMIN, json!({"path": "/t", "rights": "read"})).await;
    // A missing header is not a failed authentication.
    for _ in 0..10 {
        assert_eq!(code(&request(a, "GET", "/t", &[], b"").await), err(401, "auth_required"));
    }
    assert_eq!(with_token(a, ADMIN, "GET", "/t", &[], b"").await.status, 200, "throttled without any failure");

    let bad = format!("{}x", &ADMIN[..ADMIN.len() - 1]);
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = with_token(a, &bad, "GET", "/t", &[], b"").await;
        statuses.push(code(&r));
        if r.status == 429 {
            assert_throttled(&r, "the 6th bad token");
        }
    }
    let want: Vec<_> = (0..5).map(|_| err(401, "invalid_token")).chain([err(429, "auth_throttled")]).collect();
    assert_eq!(statuses, want, "five failures are allowed, the sixth request is throttled");

    // Now every request from this address that needs a credential is 429, valid ones too.
    assert_throttled(&with_token(a, ADMIN, "GET", "/t", &[], b"").await, "the valid admin token");
    assert_throttled(&request(a, "GET", &link.href, &[], b"").await, "a valid share link");
    assert_throttled(&request(a, "GET", "/t", &[], b"").await, "a request without a token");
    // The header naming the client is trusted only when --client-ip-header names it.
    let spoofed = with_token(a, ADMIN, "GET", "/t", &[("X-Real-IP", "10.9.9.9")], b"").await;
    assert_throttled(&spoofed, "the admin token with an untrusted X-Real-IP");
    // What needs no credential still answers.
    assert_eq!(request(a, "GET", "/.plait/health", &[], b"").await.status, 200);
    assert_eq!(request(a, "GET", "/.plait/client/editor.js", &[], b"").await.status, 200);
    s.stop().await;

    // Behind a proxy: clients told apart by X-Real-IP.
    let s = token_server(Engine::Rocks, |c| {
        c.auth_failures_per_minute = 5;
        c.client_ip_header = Some("X-Real-IP".into());
    })
    .await;
    let a = s.addr;
    admin_put(a, "/t", &[("X-Real-IP", "10.0.0.2")], "text").await;
    let link = create_share(a, ADMIN, json!({"path": "/t", "rights": "read"})).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(code(&with_token(a, &bad, "GET", "/t", &[("X-Real-IP", "10.0.0.1")], b"").await));
    }
    let want: Vec<_> = (0..5).map(|_| err(401, "invalid_token")).chain([err(429, "auth_throttled")]).collect();
    assert_eq!(statuses, want, "10.0.0.1 is throttled after five failures");
    let one = with_token(a, ADMIN, "GET", "/t", &[("X-Real-IP", "10.0.0.1")], b"").await;
    assert_throttled(&one, "the admin token from 10.0.0.1");
    let two = with_token(a, ADMIN, "GET", "/t", &[("X-Real-IP", "10.0.0.2")], b"").await;
    assert_eq!((two.status, two.text()), (200, "text".to_string()), "10.0.0.2 pays for 10.0.0.1's failures");
    // Bad share links count as failures too.
    let wrong = format!("/.plait/s/{}_{}", link.id, "0".repeat(link.secret().len()));
    for i in 0..5 {
        let r = request(a, "GET", &wrong, &[("X-Real-IP", "10.0.0.3")], b"").await;
        assert_eq!(code(&r), err(403, "invalid_share_link"), "bad link {i}");
    }
    assert_throttled(&with_token(a, ADMIN, "GET", "/t", &[("X-Real-IP", "10.0.0.3")], b"").await, "after 5 bad links");
    assert_eq!(request(a, "GET", &link.href, &[("X-Real-IP", "10.0.0.2")], b"").await.status, 200);
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// (d) CORS with credentials.

fn vary_has_origin(r: &Response) -> bool {
    r.headers_named("vary").iter().any(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("origin")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_echoes_allowed_origins_with_credentials_and_nothing_else() {
    let s = token_server(Engine::Rocks, |c| c.cors_origins = vec!["https://app.example".into()]).await;
    let a = s.addr;
    admin_put(a, "/c", &[], "text").await;
    let good = [("Origin", "https://app.example")];
    let bad_token = bearer(&format!("{ADMIN}x"));
    for (what, r) in [
        ("valid token", with_token(a, ADMIN, "GET", "/c", &good, b"").await),
        ("no token (401)", request(a, "GET", "/c", &good, b"").await),
        ("bad token (401)", request(a, "GET", "/c", &[good[0], ("Authorization", &bad_token)], b"").await),
        ("forbidden (403)", request(a, "GET", "/.plait/s/nope", &good, b"").await),
    ] {
        assert_eq!(r.header("access-control-allow-origin"), Some("https://app.example"), "{what}: {r:?}");
        assert_eq!(r.header("access-control-allow-credentials"), Some("true"), "{what}: {r:?}");
        assert!(vary_has_origin(&r), "{what}: no Vary: Origin in {r:?}");
        assert_eq!(r.headers_named("access-control-allow-origin").len(), 1, "{what}");
    }
    for origin in
        ["https://evil.example", "https://app.example.evil", "http://app.example", "null", "https://app.example:444"]
    {
        for (what, r) in [
            ("valid token", with_token(a, ADMIN, "GET", "/c", &[("Origin", origin)], b"").await),
            ("no token", request(a, "GET", "/c", &[("Origin", origin)], b"").await),
        ] {
            assert_eq!(r.header("access-control-allow-origin"), None, "{origin}, {what}: {r:?}");
        }
    }
    // A preflight carries no credentials and is answered.
    async fn preflight(a: SocketAddr, origin: &str) -> Response {
        let headers = [
            ("Origin", origin),
            ("Access-Control-Request-Method", "PUT"),
            ("Access-Control-Request-Headers", "authorization, subscribe"),
        ];
        request(a, "OPTIONS", "/c", &headers, b"").await
    }
    let pre = preflight(a, "https://app.example").await;
    assert!(pre.ok(), "preflight without a token: {pre:?}");
    assert_eq!(pre.header("access-control-allow-origin"), Some("https://app.example"));
    assert_eq!(pre.header("access-control-allow-credentials"), Some("true"));
    let allowed = pre.header("access-control-allow-headers").unwrap_or_default().to_ascii_lowercase();
    // With credentials a `*` is taken literally: the headers must be named.
    for h in ["authorization", "subscribe"] {
        assert!(allowed.split(',').any(|x| x.trim() == h), "{h} not allowed in {allowed:?}");
    }
    assert!(pre.header("access-control-allow-methods").unwrap_or_default().contains("PUT"), "{pre:?}");
    let evil = preflight(a, "https://evil.example").await;
    assert_eq!(evil.header("access-control-allow-origin"), None, "{evil:?}");
    s.stop().await;

    // The default `*`: any origin, no credentials; preflights mirror Authorization.
    let s = token_server(Engine::Rocks, |_| {}).await;
    let a = s.addr;
    admin_put(a, "/c", &[], "text").await;
    let r = with_token(a, ADMIN, "GET", "/c", &[("Origin", "https://any.example")], b"").await;
    assert_eq!((r.status, r.header("access-control-allow-origin")), (200, Some("*")));
    assert_ne!(r.header("access-control-allow-credentials"), Some("true"));
    let r = request(a, "GET", "/c", &[("Origin", "https://any.example")], b"").await;
    assert_eq!((r.status, r.header("access-control-allow-origin")), (401, Some("*")));
    let pre = request(
        a,
        "OPTIONS",
        "/c",
        &[
            ("Origin", "https://any.example"),
            ("Access-Control-Request-Method", "PUT"),
            ("Access-Control-Request-Headers", "authorization, subscribe"),
        ],
        b"",
    )
    .await;
    assert!(pre.ok(), "{pre:?}");
    let allowed = pre.header("access-control-allow-headers").unwrap_or_default().to_ascii_lowercase();
    assert!(allowed.split(',').any(|x| x.trim() == "authorization"), "{allowed:?}");
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// (e) Attribution.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_record_their_principal_in_the_history() {
    let s = token_server(Engine::Rocks, |_| {}).await;
    let a = s.addr;
    let w = create_token(a, ADMIN, "alice laptop", "write", &["/att/"], None).await;
    let r = with_token(a, &w.token, "PUT", "/att/doc", &[("Version", "\"tok-4\""), ("Parents", "")], b"hello").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let link = create_share(a, ADMIN, json!({"path": "/att/doc", "rights": "write", "label": "for Bob"})).await;
    assert_eq!(link.json["label"], "for Bob");
    let headers = [("Version", "\"lnk-0\""), ("Parents", "\"tok-4\""), ("Content-Range", "text [5:5]")];
    let r = request(a, "PUT", &link.href, &headers, b"!").await;
    assert_eq!(r.status, 200, "{}", r.text());
    admin_put(
        a,
        "/att/doc",
        &[("Version", "\"adm-0\""), ("Parents", "\"lnk-0\""), ("Content-Range", "text [6:6]")],
        "?",
    )
    .await;
    // A link the token creates names it as its creator; the label defaults to the path.
    let own = create_share(a, &w.token, json!({"path": "/att/doc", "rights": "write"})).await;
    assert_eq!(own.json["created_by"], json!(w.id));
    assert_eq!(own.json["label"], "/att/doc");
    let headers = [("Version", "\"own-0\""), ("Parents", "\"adm-0\""), ("Content-Range", "text [7:7]")];
    assert_eq!(request(a, "PUT", &own.href, &headers, b".").await.status, 200);

    let listing = with_token(a, &w.token, "GET", "/.plait/history/att/doc", &[], b"").await;
    assert_eq!(listing.status, 200, "{}", listing.text());
    let page = listing.json();
    let principal = |id: &str| -> Value {
        let versions = page["versions"].as_array().unwrap_or_else(|| panic!("no versions in {page}"));
        let e =
            versions.iter().find(|e| e["version"] == json!([id])).unwrap_or_else(|| panic!("{id} not listed: {page}"));
        e["author"]["principal"].clone()
    };
    assert_eq!(principal("tok-4"), json!({"kind": "token", "id": w.id, "label": "alice laptop"}));
    assert_eq!(principal("lnk-0"), json!({"kind": "share", "id": link.id, "label": "for Bob"}));
    assert_eq!(principal("adm-0"), json!({"kind": "admin", "id": "admin", "label": "admin"}));
    assert_eq!(principal("own-0"), json!({"kind": "share", "id": own.id, "label": "/att/doc"}));
    let body = listing.text();
    for secret in [w.secret(), link.secret(), own.secret(), ADMIN] {
        assert!(!body.contains(secret), "the history listing shows a secret");
    }
    s.stop().await;

    // With --auth none there is no principal, and the credential endpoints are off.
    let s = TestServer::start_with(Engine::Rocks, |c| c.auth = AuthMode::None).await;
    let a = s.addr;
    let r = request(a, "PUT", "/att/doc", &[("Version", "\"anon-4\""), ("Parents", "")], b"hello").await;
    assert_eq!(r.status, 200);
    let page = request(a, "GET", "/.plait/history/att/doc", &[], b"").await.json();
    let author = &page["versions"][0]["author"];
    assert!(author.get("principal").is_none_or(Value::is_null), "a principal with --auth none: {author}");
    for (method, path) in
        [("GET", "/.plait/tokens"), ("POST", "/.plait/tokens"), ("GET", "/.plait/shares"), ("POST", "/.plait/shares")]
    {
        let body: &[u8] = if method == "POST" { b"{}" } else { b"" };
        let r = request(a, method, path, &[("Content-Type", "application/json")], body).await;
        assert_eq!(code(&r), err(404, "auth_disabled"), "{method} {path}");
    }
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// (f) Pinned links.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_link_serves_its_text_forever() {
    let s = token_server(Engine::Rocks, |_| {}).await;
    let a = s.addr;
    admin_put(a, "/pin/doc", &[("Version", "\"p-4\""), ("Parents", "")], "first").await;
    let pinned = create_share(a, ADMIN, json!({"path": "/pin/doc", "rights": "read", "version": ["p-4"]})).await;
    assert!(!pinned.json["version"].is_null(), "the answer names the pinned version: {}", pinned.json);
    let by_header = create_share(a, ADMIN, json!({"path": "/pin/doc", "rights": "read", "version": "\"p-4\""})).await;
    let live = create_share(a, ADMIN, json!({"path": "/pin/doc", "rights": "read"})).await;

    let check = |when: &'static str| {
        let (p1, p2) = (pinned.href.clone(), by_header.href.clone());
        async move {
            for href in [p1, p2] {
                let r = request(a, "GET", &href, &[], b"").await;
                assert_eq!((r.status, r.text()), (200, "first".to_string()), "{when}");
                assert_eq!(r.header("version"), Some("\"p-4\""), "{when}");
                let cc = r.header("cache-control").unwrap_or_default();
                assert!(cc.contains("immutable"), "{when}: Cache-Control {cc:?}");
                let head = request(a, "HEAD", &href, &[], b"").await;
                assert_eq!((head.status, head.header("version")), (200, Some("\"p-4\"")), "{when}");
            }
        }
    };
    check("right after creation").await;
    admin_put(a, "/pin/doc", &[("Version", "\"q-0\""), ("Parents", "\"p-4\""), ("Content-Range", "text [5:5]")], "!")
        .await;
    admin_put(a, "/pin/doc", &[("Content-Range", "text [0:1]")], "F").await;
    assert_eq!(request(a, "GET", &live.href, &[], b"").await.text(), "First!", "the unpinned link is live");
    check("after later writes").await;
    let r = with_token(a, ADMIN, "POST", "/.plait/compact/pin/doc?versions=1", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    check("after compaction").await;
    let r = with_token(a, ADMIN, "DELETE", "/pin/doc", &[], b"").await;
    assert!(r.ok(), "{}", r.text());
    check("after the document was deleted").await;

    // Pinning is only for read links.
    for rights in ["subscribe", "write"] {
        let r = try_create_share(a, ADMIN, &json!({"path": "/pin/doc", "rights": rights, "version": ["p-4"]})).await;
        assert_eq!(r.status, 400, "a pinned {rights} link: {}", r.text());
    }
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// The binary: (g) secrets never logged, (h) start-up checks.

/// A `plait serve` child with stdout and stderr captured whole.
struct Plait {
    child: Child,
    /// The first stdout line ("plait listening on ..."), empty if the process exited first.
    line: String,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
}

impl Plait {
    /// Starts `plait serve <args>` with `env` (and no auth settings inherited from the test's
    /// environment); waits (bounded) for the start-up line or the end of stdout.
    fn start(args: &[&str], env: &[(&str, &str)]) -> Plait {
        let mut cmd = Command::new(plait_binary());
        cmd.arg("serve").args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
        for var in
            ["PLAIT_ADMIN_TOKEN", "PLAIT_ADMIN_TOKEN_FILE", "PLAIT_AUTH", "PLAIT_ALLOW_ANONYMOUS", "PLAIT_LISTEN"]
        {
            cmd.env_remove(var);
        }
        cmd.env("PLAIT_LOG", "warn");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = std::thread::spawn(move || {
            let mut reader = BufReader::new(out);
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let _ = tx.send(first.clone());
            let mut rest = String::new();
            let _ = reader.read_to_string(&mut rest);
            format!("{first}{rest}")
        });
        let stderr = std::thread::spawn(move || {
            let mut all = String::new();
            let _ = err.read_to_string(&mut all);
            all
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).expect("neither a start-up line nor an exit within 60 s");
        Plait { child, line, stdout: Some(stdout), stderr: Some(stderr) }
    }

    fn listening(&self) -> bool {
        self.line.starts_with("plait listening on ")
    }

    fn addr(&self) -> SocketAddr {
        assert!(self.listening(), "not listening: {:?}", self.line);
        self.line.split("://").nth(1).and_then(|r| r.split_whitespace().next()).unwrap().parse().unwrap()
    }

    /// Waits (bounded) for the process to exit on its own: its status, stdout and stderr.
    fn exit(mut self) -> (ExitStatus, String, String) {
        assert!(!self.listening(), "started, but should have refused: {:?}", self.line);
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "still running 30 s later; stdout {:?}", self.line);
            std::thread::sleep(Duration::from_millis(10));
        };
        let (out, err) = self.outputs();
        (status, out, err)
    }

    /// SIGTERM, then waits (bounded; SIGKILL after 10 s): stdout and stderr.
    fn stop(mut self) -> (String, String) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let started = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.outputs()
    }

    fn outputs(&mut self) -> (String, String) {
        let out = self.stdout.take().map(|h| h.join().unwrap()).unwrap_or_default();
        let err = self.stderr.take().map(|h| h.join().unwrap()).unwrap_or_default();
        (out, err)
    }
}

impl Drop for Plait {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh random admin token (64 hex), so it can be searched for in logs.
fn random_admin() -> String {
    (0..4).map(|_| format!("{:016x}", rand::random::<u64>())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let admin = random_admin();
    let data = dir.path().to_str().unwrap();
    let p = Plait::start(
        &["--listen", "127.0.0.1:0", "--data-dir", data, "--auth", "token"],
        &[("PLAIT_ADMIN_TOKEN", &admin), ("PLAIT_LOG", "trace")],
    );
    let a = p.addr();
    assert!(p.line.contains("auth: token"), "{}", p.line);

    let t = create_token(a, &admin, "logged?", "write", &["/"], None).await;
    assert_eq!(with_token(a, &t.token, "PUT", "/g/doc", &[], b"hello").await.status, 200);
    assert_eq!(with_token(a, &t.token, "GET", "/g/doc", &[], b"").await.text(), "hello");
    let auth = bearer(&t.token);
    let mut sub = SubscriptionReader::open(a, "/g/doc", &[("Authorization", &auth)]).await;
    assert_eq!(sub.head.status, 209);
    sub.next().await;
    drop(sub);
    let l = create_share(a, &t.token, json!({"path": "/g/doc", "rights": "write", "label": "log test"})).await;
    assert_eq!(request(a, "GET", &l.href, &[], b"").await.text(), "hello");
    assert_eq!(request(a, "PUT", &l.href, &[("Content-Range", "text [5:5]")], b"!").await.status, 200);
    let mut sub = SubscriptionReader::open(a, &l.href, &[]).await;
    assert_eq!(sub.head.status, 209);
    sub.next().await;
    drop(sub);

    // Failures: near-misses of every secret (each one byte off), duplicates, garbage.
    let bad_token = format!("{}{}", &t.token[..t.token.len() - 1], if t.token.ends_with('0') { "1" } else { "0" });
    let bad_admin = format!("{}{}", &admin[..admin.len() - 1], if admin.ends_with('0') { "1" } else { "0" });
    let bad_link = format!("{}{}", &l.link[..l.link.len() - 1], if l.link.ends_with('0') { "1" } else { "0" });
    assert_eq!(with_token(a, &bad_token, "GET", "/g/doc", &[], b"").await.status, 401);
    assert_eq!(with_token(a, &bad_admin, "GET", "/.plait/tokens", &[], b"").await.status, 401);
    assert_eq!(request(a, "GET", &format!("/.plait/s/{bad_link}"), &[], b"").await.status, 403);
    let dup = request(a, "GET", "/g/doc", &[("Authorization", &auth), ("Authorization", &auth)], b"").await;
    assert_eq!(dup.status, 400);
    let basic = request(a, "GET", "/g/doc", &[("Authorization", &format!("Basic {admin}"))], b"").await;
    assert_eq!(basic.status, 401);
    // Revocations, and the revoked credentials used once more.
    assert_eq!(with_token(a, &admin, "DELETE", &format!("/.plait/shares/{}", l.id), &[], b"").await.status, 204);
    assert_eq!(request(a, "GET", &l.href, &[], b"").await.status, 403);
    assert_eq!(with_token(a, &admin, "DELETE", &format!("/.plait/tokens/{}", t.id), &[], b"").await.status, 204);
    assert_eq!(with_token(a, &t.token, "GET", "/g/doc", &[], b"").await.status, 401);

    let (stdout, stderr) = p.stop();
    assert!(!stderr.trim().is_empty(), "PLAIT_LOG=trace logged nothing: the test would prove nothing");
    let logs = format!("{stdout}\n{stderr}");
    for (what, secret) in [
        ("the admin token", admin.as_str()),
        ("the token", t.token.as_str()),
        ("the token's secret", t.secret()),
        ("the link", l.link.as_str()),
        ("the link's secret", l.secret()),
        ("a near-miss token", bad_token.as_str()),
        ("a near-miss admin token", bad_admin.as_str()),
        ("a near-miss link", bad_link.as_str()),
    ] {
        if let Some(at) = logs.find(secret) {
            let before = logs[..at].rsplit('\n').next().unwrap_or("");
            let after = logs[at..].lines().next().unwrap_or("");
            let line = format!("{before}{after}");
            panic!("{what} appears in the logs: {line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_refuses_unsafe_or_useless_configurations() {
    // --auth none on a non-loopback address: refused unless --allow-anonymous.
    let (status, _, stderr) = Plait::start(&["--memory", "--auth", "none", "--listen", "0.0.0.0:0"], &[]).exit();
    assert!(!status.success(), "--auth none on 0.0.0.0 started");
    assert!(stderr.contains("allow-anonymous"), "the refusal does not say how to allow it: {stderr}");
    let p = Plait::start(&["--memory", "--auth", "none", "--listen", "0.0.0.0:0", "--allow-anonymous"], &[]);
    assert!(p.listening() && p.line.contains("auth: none"), "{:?}", p.line);
    drop(p);
    let p = Plait::start(&["--memory", "--auth", "none", "--listen", "127.0.0.1:0"], &[]);
    assert!(p.listening() && p.line.contains("auth: none"), "loopback needs no --allow-anonymous: {:?}", p.line);
    let a = p.addr();
    assert_eq!(request(a, "PUT", "/open", &[], b"x").await.status, 200, "--auth none needs no token");
    drop(p);

    // Token mode without an admin token and without stored tokens: nobody could get in.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let (status, _, stderr) =
        Plait::start(&["--data-dir", &data, "--auth", "token", "--listen", "127.0.0.1:0"], &[]).exit();
    assert!(!status.success(), "--auth token with no admin token started");
    assert!(stderr.to_ascii_lowercase().contains("admin"), "{stderr}");
    // Token mode is the default.
    let (status, _, _) = Plait::start(&["--memory", "--listen", "127.0.0.1:0"], &[]).exit();
    assert!(!status.success(), "the default (token) mode started with no admin token");

    // Admin tokens shorter than 32 characters are refused, from the environment or a file.
    let short = "0123456789abcdef0123456789abcde"; // 31
    let (status, _, stderr) =
        Plait::start(&["--memory", "--auth", "token", "--listen", "127.0.0.1:0"], &[("PLAIT_ADMIN_TOKEN", short)])
            .exit();
    assert!(!status.success(), "a 31-character admin token was accepted");
    assert!(stderr.contains("32"), "the refusal does not name the minimum: {stderr}");
    let file = dir.path().join("admin-token");
    std::fs::write(&file, format!("{short}\n")).unwrap();
    let f = file.to_str().unwrap().to_string();
    let (status, _, _) =
        Plait::start(&["--memory", "--auth", "token", "--listen", "127.0.0.1:0", "--admin-token-file", &f], &[]).exit();
    assert!(!status.success(), "a 31-character admin token file was accepted");

    // 32 characters are enough; the line says token mode; the token works.
    let admin32 = "0123456789abcdef0123456789abcdef";
    let store = tempfile::tempdir().unwrap();
    let store_dir = store.path().to_str().unwrap().to_string();
    let p = Plait::start(
        &["--data-dir", &store_dir, "--auth", "token", "--listen", "127.0.0.1:0"],
        &[("PLAIT_ADMIN_TOKEN", admin32)],
    );
    assert!(p.listening() && p.line.contains("auth: token"), "{:?}", p.line);
    let a = p.addr();
    assert_eq!(with_token(a, admin32, "GET", "/.plait/tokens", &[], b"").await.status, 200);
    assert_eq!(code(&request(a, "GET", "/x", &[], b"").await), err(401, "auth_required"));
    let kept = create_token(a, admin32, "survives restarts", "read", &["/"], None).await;
    p.stop();
    // Stored tokens alone are enough to start; the admin token itself was never stored.
    let p = Plait::start(&["--data-dir", &store_dir, "--auth", "token", "--listen", "127.0.0.1:0"], &[]);
    assert!(p.listening(), "a store with tokens in it should start without an admin token: {:?}", p.line);
    let a = p.addr();
    assert_eq!(with_token(a, &kept.token, "GET", "/x", &[], b"").await.status, 200);
    assert_eq!(code(&with_token(a, admin32, "GET", "/x", &[], b"").await), err(401, "invalid_token"));
    p.stop();

    // --admin-token-file: its first line.
    let admin = random_admin();
    std::fs::write(&file, format!("{admin}\nnot part of the token\n")).unwrap();
    let p = Plait::start(&["--memory", "--auth", "token", "--listen", "127.0.0.1:0", "--admin-token-file", &f], &[]);
    assert!(p.listening() && p.line.contains("auth: token"), "{:?}", p.line);
    let a = p.addr();
    assert_eq!(with_token(a, &admin, "GET", "/.plait/tokens", &[], b"").await.status, 200);
    drop(p);
}
