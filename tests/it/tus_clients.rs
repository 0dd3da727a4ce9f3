//! Resumable uploads with real clients nobody here wrote (issue 17): tus-js-client 4.3.1 from
//! Node (`tus-v1`, `ietf-draft-05`, and `tus-v1` with `parallelUploads: 3`, which uses the
//! concatenation extension) and tuspy 1.1.0 with `upload_checksum=True`, each sending a 30 MB
//! file (a seeded RNG's bytes) through a proxy that cuts every connection at 50% of the file
//! (`support::cut_proxy`), then resuming: tus-js-client by its own retries, tuspy by being run
//! again with the upload URL it printed. On Plait the committed version must read back with
//! exactly the file's bytes and `Repr-Digest`, and a `HEAD` of the upload must say it is whole.
//! The same scripts run against the reference server, `@tus/server` 2.4.5 with its file store
//! (tests/js/tus_reference_server.mjs): there the stored file must be the file. Each run prints
//! the request bytes that crossed the proxy beyond the file's size (the bytes re-sent after the
//! cut, plus the request heads) for both servers; docs/BENCHMARKS.md quotes them. What the
//! reference does not implement (the IETF draft, concatenation) is asserted as refused, so
//! the day it changes the test says so. And `kill -9` of the real `plait` binary mid-upload,
//! a restart on the same data dir, and tus-js-client resuming from the offset the restarted
//! server reports, which must not be below any offset acknowledged before the kill.
//!
//! Needs what `.ci/setup` installs: Node with tests/js/node_modules, and the tuspy venv at
//! `${PLAIT_TOOLS:-$HOME/.cache/plait/tools}/py`.
//!
//! ```sh
//! cargo test --test it tus_clients:: -- --nocapture
//! ```

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rand::{RngCore, SeedableRng};
use serde_json::{json, Value};
use sha2::Digest;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use crate::auth::{bearer, create_token, token_server, ADMIN};
use crate::support::client::request;
use crate::support::cut_proxy::{CutPlan, CutProxy};
use crate::support::killable::{kill_server, start_server, tail, Notes};
use crate::support::server::Engine;

/// The file every upload sends: tens of MB, not a multiple of any chunk size.
const SIZE: usize = 30_000_000;
/// Bound on one client run (the scripts have their own, shorter, timeouts).
const RUN_LIMIT: Duration = Duration::from_secs(150);
/// Where the uploads are created on Plait.
const PLAIT_UPLOADS: &str = "/.plait/uploads/";
/// Where the reference server answers.
const REFERENCE_UPLOADS: &str = "/files/";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The venv's python that `.ci/setup` made (tuspy 1.1.0, pinned by hash).
fn tuspy_python() -> PathBuf {
    let tools = std::env::var_os("PLAIT_TOOLS").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").expect("HOME is not set")).join(".cache/plait/tools")
    });
    let python = tools.join("py/bin/python");
    assert!(python.exists(), "{} is missing: run .ci/setup (the README's test command does)", python.display());
    python
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(bytes).into()
}

/// A file of `SIZE` bytes from a seeded RNG in `dir`, and its SHA-256.
fn seeded_file(dir: &Path, seed: u64) -> (PathBuf, [u8; 32]) {
    let mut bytes = vec![0u8; SIZE];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut bytes);
    let path = dir.join(format!("upload-{seed}.bin"));
    std::fs::write(&path, &bytes).unwrap();
    (path, sha256(&bytes))
}

// ---------------------------------------------------------------------------------------------
// The clients

#[derive(Clone, Copy, Debug, PartialEq)]
enum Client {
    JsTusV1,
    JsIetfDraft05,
    JsParallel3,
    TuspyChecksums,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::JsTusV1 => "tus-js-client tus-v1",
            Client::JsIetfDraft05 => "tus-js-client ietf-draft-05",
            Client::JsParallel3 => "tus-js-client tus-v1 parallelUploads 3",
            Client::TuspyChecksums => "tuspy upload_checksum",
        }
    }

    /// The script's options for one upload of `file` to `endpoint`.
    fn options(self, endpoint: &str, file: &Path, metadata: Value) -> Value {
        let mut opts = json!({"endpoint": endpoint, "file": file, "metadata": metadata});
        match self {
            Client::JsTusV1 => opts["protocol"] = json!("tus-v1"),
            Client::JsIetfDraft05 => opts["protocol"] = json!("ietf-draft-05"),
            Client::JsParallel3 => opts["parallelUploads"] = json!(3),
            Client::TuspyChecksums => opts["chunkSize"] = json!(4 << 20),
        }
        opts
    }
}

/// Runs a client script once with `opts`; returns its JSON line and whether it exited 0.
async fn run_client(client: Client, opts: &Value) -> (bool, Value) {
    let mut cmd = match client {
        Client::TuspyChecksums => {
            let mut c = tokio::process::Command::new(tuspy_python());
            c.arg(repo().join("tests/py/tus_upload.py"));
            c
        }
        _ => {
            assert!(
                repo().join("tests/js/node_modules/tus-js-client").exists(),
                "tests/js/node_modules/tus-js-client is missing: run .ci/setup (the README's test command does)"
            );
            let mut c = tokio::process::Command::new("node");
            c.arg(repo().join("tests/js/tus_upload.mjs"));
            c
        }
    };
    let child = cmd
        .arg(opts.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", client.name()));
    let out = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{} did not finish within {RUN_LIMIT:?}", client.name()))
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or("");
    let report: Value = serde_json::from_str(line).unwrap_or_else(|e| {
        panic!("{} printed no JSON line ({e}):\n{stdout}\n{}", client.name(), String::from_utf8_lossy(&out.stderr))
    });
    (out.status.success(), report)
}

// ---------------------------------------------------------------------------------------------
// The reference server

/// `@tus/server` 2.4.5 with its file store in a temp dir, as a Node child.
struct ReferenceServer {
    addr: std::net::SocketAddr,
    dir: tempfile::TempDir,
    _child: tokio::process::Child,
}

impl ReferenceServer {
    async fn start() -> ReferenceServer {
        assert!(
            repo().join("tests/js/node_modules/@tus/server").exists(),
            "tests/js/node_modules/@tus/server is missing: run .ci/setup (the README's test command does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let mut child = tokio::process::Command::new("node")
            .arg(repo().join("tests/js/tus_reference_server.mjs"))
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node is required for the upload tests");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the reference server did not start within 30 s")
            .unwrap()
            .unwrap_or_default();
        let port: u16 = line.strip_prefix("LISTENING ").and_then(|p| p.trim().parse().ok()).unwrap_or_else(|| {
            panic!("unexpected first line from the reference server: {line:?}");
        });
        ReferenceServer { addr: ([127, 0, 0, 1], port).into(), dir, _child: child }
    }

    /// The bytes the file store holds for the upload at `url` (its id is the last segment).
    fn stored(&self, url: &str) -> Vec<u8> {
        let id = url.rsplit('/').next().unwrap();
        std::fs::read(self.dir.path().join(id)).unwrap_or_else(|e| panic!("no stored file for {url}: {e}"))
    }
}

// ---------------------------------------------------------------------------------------------
// One upload through a cut

/// What an upload through the cut proxy cost.
struct Outcome {
    url: String,
    report: Value,
    /// Request bytes that crossed the proxy, all connections together.
    request_bytes: u64,
    connections: usize,
    elapsed: Duration,
}

/// Uploads `file` with `client` to `endpoint_path` on `upstream`, through a proxy that cuts
/// every connection once `SIZE / 2` request bytes have passed, and resumes to the end.
async fn upload_through_cut(
    client: Client,
    upstream: std::net::SocketAddr,
    endpoint_path: &str,
    file: &Path,
    metadata: Value,
    headers: Value,
) -> Outcome {
    let proxy = CutProxy::start(upstream, CutPlan { after_bytes: SIZE as u64 / 2, times: 1 }).await;
    let endpoint = format!("{}{endpoint_path}", proxy.base());
    let started = Instant::now();
    let mut opts = client.options(&endpoint, file, metadata);
    opts["headers"] = headers;
    let (mut ok, mut report) = run_client(client, &opts).await;
    if client == Client::TuspyChecksums {
        // tuspy does not retry by itself here: the cut ends the run, and the test runs it again
        // with the upload URL, as an application that stored it would.
        assert!(!ok, "tuspy finished although the proxy cut its connection: {report}");
        let url = report["url"].as_str().unwrap_or_else(|| panic!("tuspy printed no upload URL: {report}"));
        opts["uploadUrl"] = json!(url);
        (ok, report) = run_client(client, &opts).await;
    }
    let elapsed = started.elapsed();
    assert!(ok, "{} did not finish the upload: {report}", client.name());
    assert_eq!(proxy.cuts(), 1, "the proxy never cut ({} request bytes)", proxy.forwarded_up());
    let conns = proxy.connections();
    assert!(conns.iter().any(|c| c.cut), "no connection was cut: {conns:?}");
    let url = report["url"].as_str().unwrap_or_else(|| panic!("no upload URL in {report}")).to_string();
    Outcome { url, report, request_bytes: proxy.forwarded_up(), connections: conns.len(), elapsed }
}

fn print_outcome(client: Client, server: &str, o: &Outcome) {
    let resumed = match client {
        Client::TuspyChecksums => o.report["resumeOffset"].to_string(),
        _ => o.report["resumeOffsets"].to_string(),
    };
    eprintln!(
        "tus_clients: {} on {server}: {SIZE} bytes, cut at {}; {} request bytes over {} connections = {} beyond \
         the file (re-sent after the cut + request heads); resumed from {resumed}; {} ms",
        client.name(),
        SIZE / 2,
        o.request_bytes,
        o.connections,
        o.request_bytes as i64 - SIZE as i64,
        o.elapsed.as_millis(),
    );
    if let Some(answers) = o.report.get("requests") {
        eprintln!("tus_clients: {} on {server}: answers {answers}", client.name());
    }
}

/// The `Repr-Digest` of bytes whose SHA-256 is `digest`.
fn repr_digest(digest: &[u8; 32]) -> String {
    format!("sha-256=:{}:", base64::engine::general_purpose::STANDARD.encode(digest))
}

/// The path of an absolute or relative URL.
fn url_path(url: &str) -> &str {
    match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => url,
    }
}

/// Checks what Plait committed at `target` (read with `auth`) for the upload at `url` (asked
/// with the `uploader`'s credential).
async fn check_plait(
    s: std::net::SocketAddr,
    auth: &[(&str, &str)],
    uploader: &[(&str, &str)],
    target: &str,
    url: &str,
    digest: &[u8; 32],
    concatenated: bool,
) {
    let got = request(s, "GET", target, auth, b"").await;
    assert_eq!(got.status, 200, "GET {target}: {}", got.text());
    assert_eq!(got.body.len(), SIZE, "GET {target}: wrong length");
    assert!(sha256(&got.body) == *digest, "GET {target}: the bytes differ from the file");
    assert_eq!(got.header("repr-digest"), Some(repr_digest(digest).as_str()), "GET {target}: Repr-Digest");
    // Only the credential that created the upload may see it.
    let head_headers = [uploader, &[("Tus-Resumable", "1.0.0")]].concat();
    let head = request(s, "HEAD", url_path(url), &head_headers, b"").await;
    assert!(head.status < 300, "HEAD {url} after the upload: {} {}", head.status, head.text());
    let offset = head.header("upload-offset");
    // A final concatenated upload may leave Upload-Offset out (tus 1.0.0, concatenation).
    if !(concatenated && offset.is_none()) {
        assert_eq!(offset, Some(SIZE.to_string().as_str()), "HEAD {url}: Upload-Offset after the upload");
    }
}

/// One client against Plait with access control on: cut at 50%, resume, check the committed
/// version. The client holds a write token for `/up/` only (sent on every request through the
/// libraries' `headers` options), so creation and every append are checked.
async fn cut_and_resume_on_plait(client: Client, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (file, digest) = seeded_file(dir.path(), seed);
    let s = token_server(Engine::Rocks, |_| {}).await;
    let writer = create_token(s.addr, ADMIN, "uploader", "write", &["/up/"], None).await;
    let target = format!("/up/seed-{seed}.bin");
    let metadata =
        json!({"path": target, "filename": format!("seed-{seed}.bin"), "filetype": "application/octet-stream"});
    let headers = json!({"Authorization": bearer(&writer.token)});
    let o = upload_through_cut(client, s.addr, PLAIT_UPLOADS, &file, metadata, headers).await;
    print_outcome(client, "Plait", &o);
    let (reader, writer) = (bearer(ADMIN), bearer(&writer.token));
    check_plait(
        s.addr,
        &[("Authorization", &reader)],
        &[("Authorization", &writer)],
        &target,
        &o.url,
        &digest,
        client == Client::JsParallel3,
    )
    .await;
    s.stop().await;
}

/// One client against the reference: cut at 50%, resume, check the stored file.
async fn cut_and_resume_on_reference(client: Client, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (file, digest) = seeded_file(dir.path(), seed);
    let r = ReferenceServer::start().await;
    let metadata = json!({"filename": format!("seed-{seed}.bin"), "filetype": "application/octet-stream"});
    let o = upload_through_cut(client, r.addr, REFERENCE_UPLOADS, &file, metadata, json!({})).await;
    print_outcome(client, "@tus/server", &o);
    let stored = r.stored(&o.url);
    assert_eq!(stored.len(), SIZE, "the reference stored a file of another length");
    assert!(sha256(&stored) == digest, "the reference stored other bytes");
}

/// What the reference does not implement: `client` is refused at creation with `status`.
async fn refused_by_reference(client: Client, status: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = seeded_file(dir.path(), 99);
    let r = ReferenceServer::start().await;
    let mut opts = client.options(&format!("http://{}{REFERENCE_UPLOADS}", r.addr), &file, json!({"filename": "x"}));
    opts["retryDelays"] = json!([]);
    let (ok, report) = run_client(client, &opts).await;
    assert!(!ok, "the reference accepted {} (update the docs: it is no longer refused): {report}", client.name());
    let first = report["requests"][0].as_str().unwrap_or("");
    assert_eq!(first, format!("POST {status}"), "{report}");
    eprintln!("tus_clients: {} on @tus/server: refused, {first}: {}", client.name(), report["error"]);
}

// ---------------------------------------------------------------------------------------------
// The tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tus_js_v1_resumes_after_a_cut_on_plait() {
    cut_and_resume_on_plait(Client::JsTusV1, 1701).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tus_js_v1_resumes_after_a_cut_on_the_reference() {
    cut_and_resume_on_reference(Client::JsTusV1, 1701).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tus_js_ietf_draft_05_resumes_after_a_cut_on_plait() {
    cut_and_resume_on_plait(Client::JsIetfDraft05, 1702).await;
}

/// @tus/server 2.4.5 speaks only tus 1.0.0: `412 Tus-Resumable Required`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tus_js_ietf_draft_05_is_refused_by_the_reference() {
    refused_by_reference(Client::JsIetfDraft05, 412).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tus_js_parallel_uploads_resume_after_a_cut_on_plait() {
    cut_and_resume_on_plait(Client::JsParallel3, 1703).await;
}

/// @tus/file-store 2.1.1 has no concatenation: `501 Concatenation extension is not (yet)
/// supported`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tus_js_parallel_uploads_are_refused_by_the_reference() {
    refused_by_reference(Client::JsParallel3, 501).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuspy_with_checksums_resumes_after_a_cut_on_plait() {
    cut_and_resume_on_plait(Client::TuspyChecksums, 1704).await;
}

/// The reference has no checksum extension: it takes tuspy's `Upload-Checksum` headers without
/// checking them (its OPTIONS lists no `checksum`), so this shows the resume, not the checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuspy_with_checksums_resumes_after_a_cut_on_the_reference() {
    cut_and_resume_on_reference(Client::TuspyChecksums, 1704).await;
}

/// `kill -9` of the real binary while tus-js-client sends 4 MiB PATCHes, at 50% of the file;
/// a restart on the same data dir behind the same proxy address; the client's own retries
/// resume from the offset the restarted server reports (HEAD), which must be at least every
/// offset acknowledged (a PATCH's 204) before the kill, and at most what had been sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tus_js_resumes_after_kill_9_of_plait() {
    let dir = tempfile::tempdir().unwrap();
    let (file, digest) = seeded_file(dir.path(), 1705);
    let (data, log) = (dir.path().join("data"), dir.path().join("stderr.log"));
    let proc = start_server(&data, &[], &log).await;
    let proxy = CutProxy::start(proc.addr, CutPlan { after_bytes: 0, times: 0 }).await;
    let target = "/up/killed.bin";
    let mut opts = Client::JsTusV1.options(
        &format!("{}{PLAIT_UPLOADS}", proxy.base()),
        &file,
        json!({"path": target, "filetype": "application/octet-stream"}),
    );
    opts["chunkSize"] = json!(4 << 20);
    opts["retryDelays"] = json!([0, 250, 500, 1000, 1000, 2000, 2000, 4000, 4000]);
    let started = Instant::now();
    let run = tokio::spawn(async move { run_client(Client::JsTusV1, &opts).await });

    assert!(
        proxy.wait_forwarded(SIZE as u64 / 2, Duration::from_secs(60)).await,
        "the upload did not reach 50% within 60 s ({} bytes); server stderr:\n{}",
        proxy.forwarded_up(),
        tail(&log)
    );
    let (mut died, notes) = (0, Notes::default());
    kill_server(proc, &mut died, &notes).await;
    let sent_at_kill = proxy.forwarded_up();
    assert!(!run.is_finished(), "the upload had ended before the kill");
    let restarted = start_server(&data, &[], &log).await;
    proxy.set_upstream(restarted.addr);

    let (ok, report) = run.await.unwrap();
    assert!(ok, "tus-js-client did not finish after the restart: {report}\nserver stderr:\n{}", tail(&log));
    assert_eq!(died, 0, "the server had died by itself: {:?}", notes.drain());
    let answers: Vec<(String, Option<u64>)> = report["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let r = r.as_str().unwrap();
            let offset = r.split_once(" @").and_then(|(_, o)| o.parse().ok());
            (r.split(" @").next().unwrap().to_string(), offset)
        })
        .collect();
    let resume = answers.iter().position(|(a, _)| a.starts_with("HEAD 2")).unwrap_or_else(|| {
        panic!("the client never asked for the offset after the kill: {report}");
    });
    let acked = answers[..resume].iter().filter(|(a, _)| a.starts_with("PATCH 2")).filter_map(|(_, o)| *o).max();
    let resumed_at = answers[resume].1.unwrap_or_else(|| panic!("HEAD without Upload-Offset: {report}"));
    assert!(
        resumed_at >= acked.unwrap_or(0),
        "the restarted server lost acknowledged bytes: acknowledged {acked:?}, resumed at {resumed_at}: {report}"
    );
    assert!(resumed_at <= sent_at_kill, "resumed at {resumed_at}, beyond the {sent_at_kill} bytes sent");
    eprintln!(
        "tus_clients: kill -9 at {sent_at_kill} request bytes; acknowledged before the kill {acked:?}; resumed \
         at {resumed_at}; {} request bytes in all ({} beyond the file); {} ms",
        proxy.forwarded_up(),
        proxy.forwarded_up() as i64 - SIZE as i64,
        started.elapsed().as_millis()
    );
    let url = report["url"].as_str().unwrap().to_string();
    check_plait(restarted.addr, &[], &[], target, &url, &digest, false).await;
    let complaints = crate::support::killable::server_complaints(&log, &notes);
    assert_eq!(complaints, 0, "the server logged errors: {:?}", notes.drain());
}

/// The harness itself: the proxy forwards exactly the planned bytes, resets the client, and
/// lets the next connection through whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cut_proxy_cuts_at_the_planned_byte_then_lets_connections_through() {
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    let (tx, mut received) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (mut conn, _) = upstream.accept().await.unwrap();
            let tx = tx.clone();
            tokio::spawn(async move {
                let (mut n, mut buf) = (0usize, vec![0u8; 16 << 10]);
                while let Ok(k @ 1..) = conn.read(&mut buf).await {
                    n += k;
                }
                let _ = tx.send(n);
            });
        }
    });
    let proxy = CutProxy::start(upstream_addr, CutPlan { after_bytes: 40_000, times: 1 }).await;
    let payload = vec![7u8; 100_000];

    let mut first = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let _ = first.write_all(&payload).await; // may fail once the reset arrives
    assert!(proxy.wait_cuts(1, Duration::from_secs(10)).await, "no cut");
    let got = tokio::time::timeout(Duration::from_secs(10), received.recv()).await.unwrap().unwrap();
    assert_eq!(got, 40_000, "the server got other than the planned bytes");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), first.read_to_end(&mut rest)).await.unwrap();
    assert_eq!(read.map_err(|e| e.kind()), Err(std::io::ErrorKind::ConnectionReset), "the client was not reset");

    let mut second = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    second.write_all(&payload).await.unwrap();
    second.shutdown().await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), received.recv()).await.unwrap().unwrap();
    assert_eq!(got, payload.len(), "a connection after the cut did not pass whole");
    let conns = proxy.connections();
    assert_eq!(conns.len(), 2);
    assert!(conns[0].cut && conns[0].up == 40_000, "{conns:?}");
    assert!(!conns[1].cut && conns[1].up == payload.len() as u64, "{conns:?}");
}
