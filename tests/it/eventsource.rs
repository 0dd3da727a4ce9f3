//! Server-sent events as browsers use them: Chromium's own `EventSource` on a folder and a
//! document through a proxy that cuts the connection while the server restarts
//! (tests/js/eventsource_browser.mjs), and the parts of the wire a browser relies on: the
//! `retry:` first line, CORS on the stream, `Last-Event-ID` in preflights.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use plait::config::ServeConfig;

use crate::support::client::{request, Conn};
use crate::support::server::{Engine, TestServer};

const APP: &str = "http://app.example";

/// The event stream's bytes until `want` of them arrived (the head is checked by the caller).
async fn events_until(conn: &mut Conn, want: &str) -> String {
    let mut text = String::new();
    while !text.contains(want) {
        let chunk = conn.read_chunk().await.unwrap_or_else(|| panic!("the stream ended before {want:?}: {text:?}"));
        text.push_str(&String::from_utf8(chunk).unwrap());
    }
    text
}

/// Opens an event stream on `path` as a browser of `APP` would; returns the connection past
/// the head, which must be a CORS-readable `text/event-stream`.
async fn open_events(s: &TestServer, path: &str, extra: &[(&str, &str)]) -> Conn {
    let mut conn = Conn::open(s.addr).await;
    let mut headers = vec![("Accept", "text/event-stream"), ("Origin", APP), ("Cache-Control", "no-cache")];
    headers.extend_from_slice(extra);
    conn.send("GET", path, &headers, b"").await;
    let head = conn.read_head().await;
    assert_eq!(head.status, 200, "{path}");
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    assert_eq!(head.header("access-control-allow-origin"), Some(APP), "the stream is readable by the page");
    assert_eq!(head.header("access-control-allow-credentials"), Some("true"));
    assert!(head.header("content-encoding").is_none(), "an event stream is never compressed");
    conn
}

/// Every event stream asks for a one-second reconnection delay first, then starts as
/// documented (a folder's listing, a document's or a resumed stream's `ready`), and carries
/// the CORS headers of an allow-listed origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_start_with_retry_and_are_readable_cross_origin() {
    let s = TestServer::start_with(Engine::Rocks, |cfg| cfg.cors_origins = vec![APP.into()]).await;
    assert_eq!(request(s.addr, "PUT", "/notes/a", &[], b"alpha").await.status, 200);

    let mut folder = open_events(&s, "/notes/", &[("Accept-Encoding", "gzip, br")]).await;
    let first = events_until(&mut folder, "}\n\n").await;
    assert!(first.starts_with("retry: 1000\n\nevent: listing\nid: "), "{first:?}");
    let cursor = first.split("id: ").nth(1).unwrap().split('\n').next().unwrap().to_string();

    let mut doc = open_events(&s, "/notes/a", &[]).await;
    let first = events_until(&mut doc, "}\n\n").await;
    assert!(first.starts_with("retry: 1000\n\nevent: ready\nid: "), "{first:?}");

    assert_eq!(request(s.addr, "PUT", "/notes/b", &[], b"beta").await.status, 200);
    let change = events_until(&mut folder, "/notes/b").await;
    let next = change.split("id: ").nth(1).unwrap().split('\n').next().unwrap().to_string();
    assert!(change.contains(&format!("data: {{\"cursor\":\"{next}\",\"path\":\"/notes/b\"")), "{change:?}");

    // A browser's reconnection: `Last-Event-ID` → `ready` at that cursor, then what followed.
    let mut resumed = open_events(&s, "/notes/", &[("Last-Event-ID", &cursor)]).await;
    let text = events_until(&mut resumed, "/notes/b").await;
    assert!(text.starts_with(&format!("retry: 1000\n\nevent: ready\nid: {cursor}\n")), "{text:?}");
    assert!(text.contains(&format!("id: {next}\n")), "{text:?}");
    s.stop().await;
}

/// A `Last-Event-ID` the log cannot answer (another store's: a restored backup, a wiped data
/// dir) never leaves a silent gap: a folder stream starts over with its listing marked
/// `reset`, a document's with a `reset` event, each naming the fresh cursor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_from_another_store_resets_the_event_stream() {
    let s = TestServer::start_with(Engine::Rocks, |cfg| cfg.cors_origins = vec![APP.into()]).await;
    assert_eq!(request(s.addr, "PUT", "/notes/a", &[], b"alpha").await.status, 200);
    let mut fresh = open_events(&s, "/notes/", &[]).await;
    let first = events_until(&mut fresh, "}\n\n").await;
    let ours = first.split("id: ").nth(1).unwrap().split('\n').next().unwrap().to_string();
    let (epoch, _) = ours.split_once('-').unwrap();
    let other = if epoch == "00c0ffee00c0ffee" { "00c0ffee00c0fff0-1" } else { "00c0ffee00c0ffee-1" };

    let mut folder = open_events(&s, "/notes/", &[("Last-Event-ID", other)]).await;
    let text = events_until(&mut folder, "}\n\n").await;
    assert!(text.starts_with(&format!("retry: 1000\n\nevent: listing\nid: {ours}\n")), "{text:?}");
    assert!(text.contains("\"path\":\"/notes/a\"") && text.contains("\"reset\":true"), "{text:?}");

    let mut doc = open_events(&s, "/notes/a", &[("Last-Event-ID", other)]).await;
    let text = events_until(&mut doc, "}\n\n").await;
    let want = format!("retry: 1000\n\nevent: reset\nid: {ours}\ndata: {{\"cursor\":\"{ours}\",\"reset\":true}}\n\n");
    assert_eq!(text, want);
    s.stop().await;
}

/// A preflight naming `Last-Event-ID` (a polyfill or a fetch-based client sends one) is
/// allowed, and a listing's `Plait-Cursor` header is readable by the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflights_allow_last_event_id_and_listings_expose_the_cursor() {
    let s = TestServer::start_with(Engine::Memory, |cfg| cfg.cors_origins = vec![APP.into()]).await;
    let pre = request(
        s.addr,
        "OPTIONS",
        "/notes/",
        &[
            ("Origin", APP),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "last-event-id"),
        ],
        b"",
    )
    .await;
    assert_eq!(pre.status, 200);
    assert_eq!(pre.header("access-control-allow-origin"), Some(APP));
    let allowed = pre.header("access-control-allow-headers").unwrap_or_default().to_ascii_lowercase();
    assert!(allowed.split(',').any(|h| h.trim() == "last-event-id"), "{allowed:?}");

    let listing = request(s.addr, "GET", "/notes/", &[("Origin", APP), ("Accept", "application/json")], b"").await;
    assert_eq!(listing.status, 200);
    assert!(listing.header("plait-cursor").is_some());
    let exposed = listing.header("access-control-expose-headers").unwrap_or_default();
    assert!(exposed.split(',').any(|h| h.trim() == "plait-cursor"), "{exposed:?}");
    s.stop().await;
}

/// Runs tests/js/eventsource_browser.mjs against `server` (reached at `url`), restarting the
/// server (with `tweak`) when the script prints `RESTART` and giving it the new URL on stdin.
/// What the browser received is kept as a test artifact (`$CARGO_TARGET_TMPDIR/<log>`).
async fn run_eventsource_browser(
    server: TestServer,
    url: impl Fn(&TestServer) -> String,
    log: &str,
    mode: &[&str],
    env: &[(&str, &str)],
    tweak: impl Fn(&mut ServeConfig),
) {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: run .ci/setup (the README's test command does)"
    );
    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    assert!(
        repo.join("tests/js/node_modules/playwright-core").exists(),
        "tests/js/node_modules is missing: run .ci/setup"
    );
    let log = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(log);
    let _ = std::fs::remove_file(&log);
    let mut child = tokio::process::Command::new("node")
        .arg(repo.join("tests/js/eventsource_browser.mjs"))
        .arg(url(&server))
        .arg(&log)
        .args(mode)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node is required for the browser tests");
    let mut server = Some(server);
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut restarts = 0;
    // The script bounds itself at 30 s; this bounds the driver (restart included) as well.
    let finished = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line == "RESTART" {
                let s = server.take().unwrap().restart(&tweak).await;
                stdin.write_all(format!("{}\n", url(&s)).as_bytes()).await.unwrap();
                server = Some(s);
                restarts += 1;
            }
            seen.push(line);
        }
        child.wait().await.unwrap()
    })
    .await;
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err).await;
    let out = seen.join("\n");
    let status = finished.unwrap_or_else(|_| panic!("eventsource_browser.mjs took over 30 s:\n{out}\n{err}"));
    assert!(status.success() && out.contains(" passed, 0 failed"), "eventsource_browser.mjs failed:\n{out}\n{err}");
    assert_eq!(restarts, 1, "the script asks for one restart");
    let kept: serde_json::Value = serde_json::from_slice(&std::fs::read(&log).unwrap()).unwrap();
    assert!(
        kept["events"]["folder"].as_array().is_some_and(|e| e.len() > 8),
        "the browser's events in {}",
        log.display()
    );
    eprintln!("{out}\nthe browser's events: {}", log.display());
    server.unwrap().stop().await;
}

/// Chromium's `EventSource` on a page of another origin resumes by itself with
/// `Last-Event-ID` (seen by the proxy) after a cut and a server restart, and gets exactly the
/// changes it missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventsource_in_a_real_browser_resumes_after_a_cut_and_a_restart() {
    let server = TestServer::start(Engine::Rocks).await;
    run_eventsource_browser(server, |s| s.url(""), "eventsource.json", &[], &[], |_| {}).await;
}

/// The same over HTTPS and HTTP/2: the page and both event streams share one h2 connection
/// through the proxy, which cuts it; the server restarts with the same certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventsource_over_https_h2_resumes_after_a_cut_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = crate::http2::self_signed(dir.path());
    let tls = |cfg: &mut ServeConfig| {
        cfg.tls_cert = Some(cert.clone());
        cfg.tls_key = Some(key.clone());
    };
    let server = TestServer::start_with(Engine::Rocks, tls).await;
    let url = |s: &TestServer| format!("https://localhost:{}", s.addr.port());
    // Node's fetch (the script's own writes) must accept the self-signed certificate.
    let env = [("NODE_TLS_REJECT_UNAUTHORIZED", "0")];
    run_eventsource_browser(server, url, "eventsource-h2.json", &["h2"], &env, tls).await;
}
