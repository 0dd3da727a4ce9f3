//! Logs of the real `plait` binary (issue 14, part 7): `--log-format json` writes one JSON
//! object per line on stderr, with the request span's fields; every request's line carries
//! its id (the one echoed in `X-Request-Id`), method, path and status; a 209 logs when its
//! head is sent; at the default `--log info` there is no line per request.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::client::{request, Conn, WAIT};
use crate::support::server::{plait_binary, read_listen_addr};

/// `plait serve --memory` with `args`, its stderr going to a file.
struct Logged {
    child: Child,
    addr: std::net::SocketAddr,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Logged {
    fn start(args: &[&str]) -> Logged {
        let dir = tempfile::tempdir().unwrap();
        let stderr = dir.path().join("stderr.log");
        let mut child = Command::new(plait_binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--memory"])
            .args(args)
            .env("PLAIT_AUTH", "none")
            .env_remove("PLAIT_LOG")
            .env_remove("PLAIT_LOG_FORMAT")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let addr = read_listen_addr(child.stdout.take().unwrap()).unwrap_or_else(|e| panic!("no start: {e}"));
        Logged { child, addr, stderr, _dir: dir }
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits (bounded) for a line `pick` accepts and returns it. The line is written before
    /// the response leaves the server, so this rarely waits at all.
    async fn wait_for<T>(&self, what: &str, pick: impl Fn(&str) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(found) = self.text().lines().find_map(&pick) {
                return found;
            }
            assert!(tokio::time::Instant::now() < deadline, "no log line {what} in:\n{}", self.text());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The JSON line of `request_id`'s response: its event fields and its request span.
fn response_line(line: &str, request_id: &str) -> Option<(Value, Value)> {
    let json: Value = serde_json::from_str(line).ok()?;
    let span = json["spans"].as_array()?.iter().find(|s| s["name"] == "request")?.clone();
    (span["request_id"] == request_id && json["fields"]["message"] == "response")
        .then(|| (json["fields"].clone(), span))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_request_id_method_path_and_status() {
    let server = Logged::start(&["--log-format", "json", "--log", "info,plait=debug"]);
    let r = request(server.addr, "PUT", "/logs/doc", &[("X-Request-Id", "put-7f3a")], b"hello").await;
    assert_eq!((r.status, r.header("x-request-id")), (200, Some("put-7f3a")));
    let r = request(server.addr, "GET", "/logs/doc?x=1", &[("X-Request-Id", "get-7f3b")], b"").await;
    assert_eq!((r.status, r.header("x-request-id")), (200, Some("get-7f3b")));
    let r = request(server.addr, "GET", "/logs/doc", &[("X-Request-Id", "bad-7f3c"), ("Version", "nope")], b"").await;
    assert_eq!((r.status, r.header("x-request-id")), (400, Some("bad-7f3c")));

    for (id, method, status) in [("put-7f3a", "PUT", 200), ("get-7f3b", "GET", 200), ("bad-7f3c", "GET", 400)] {
        let (fields, span) = server.wait_for(id, |l| response_line(l, id)).await;
        assert_eq!(span["method"], method, "{span}");
        assert_eq!(span["path"], "/logs/doc", "{span}: the path, without the query");
        assert_eq!(fields["status"], status, "{fields}");
        assert!(fields["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{fields}");
    }
    // Every line on stderr is one JSON object (the start-up lines too).
    for line in server.text().lines() {
        let json: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(json["level"].is_string() && json["timestamp"].is_string(), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minted_ids_are_logged_and_a_subscription_logs_when_its_head_is_sent() {
    let server = Logged::start(&["--log-format", "json", "--log", "warn,plait=debug"]);
    let a = request(server.addr, "GET", "/logs/a", &[], b"").await;
    let b = request(server.addr, "GET", "/logs/a", &[], b"").await;
    let (a, b) = (a.header("x-request-id").unwrap().to_string(), b.header("x-request-id").unwrap().to_string());
    assert_ne!(a, b, "two requests, two ids");
    for id in [&a, &b] {
        let (fields, span) = server.wait_for(id, |l| response_line(l, id)).await;
        assert_eq!((span["method"].as_str(), fields["status"].as_u64()), (Some("GET"), Some(200)));
    }
    // The 209's line is there while the subscription is still open.
    let mut sub = Conn::open(server.addr).await;
    sub.send("GET", "/logs/a", &[("Subscribe", "true"), ("X-Request-Id", "sub-9")], b"").await;
    let head = sub.read_head().await;
    assert_eq!((head.status, head.header("x-request-id")), (209, Some("sub-9")));
    let (fields, span) = server.wait_for("sub-9", |l| response_line(l, "sub-9")).await;
    assert_eq!((fields["status"].as_u64(), span["path"].as_str()), (Some(209), Some("/logs/a")));
    let health = request(server.addr, "GET", "/.plait/health", &[], b"").await.json();
    assert_eq!(health["subscriptions"], 1, "the subscription is still open: {health}");
    drop(sub);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_name_the_request_and_the_default_level_has_no_line_per_request() {
    let debug = Logged::start(&["--log", "info,plait=debug"]);
    let r = request(debug.addr, "GET", "/logs/t", &[("X-Request-Id", "txt-1")], b"").await;
    assert_eq!(r.status, 200);
    let line = debug.wait_for("txt-1", |l| l.contains("request_id=txt-1").then(|| l.to_string())).await;
    for part in ["method=GET", "path=/logs/t", "response", "status=200", "latency_ms="] {
        assert!(line.contains(part), "{part:?} missing from {line:?}");
    }

    // `--log info` (the default): requests run in their spans, but nothing is logged for
    // an ordinary request. The response line would be written before the response left.
    let quiet = Logged::start(&[]);
    for i in 0..5 {
        let r = request(quiet.addr, "GET", "/logs/t", &[("X-Request-Id", &format!("quiet-{i}"))], b"").await;
        assert_eq!(r.status, 200);
    }
    let text = quiet.text();
    assert!(text.contains("access control is OFF"), "the start-up warning is logged: {text}");
    assert!(!text.contains("quiet-"), "a line per request at the default level:\n{text}");
}
