//! The sync engine (`plait::client::sync::engine`), run in-process against a real server with
//! RocksDB: local changes reach the server, server changes reach the folder, two engines on two
//! folders merge concurrent text edits and keep binary conflicts as one conflicted copy, a 1 MiB
//! change in a 32 MiB file sends about one chunk, a restart re-hashes nothing unchanged,
//! `.plaitignore` works both ways, a stopped server queues changes, and an engine dropped in the
//! middle of a transfer loses and duplicates nothing. Every wait is on the engine's status
//! board or the server's state, with a deadline.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use plait::client::sync::engine::{counters, CounterSnapshot, Engine};
use plait::client::sync::spec::FolderSpec;
use plait::client::sync::status::{FolderState, FolderStatus, StatusBoard};
use plait::client::ClientError;
use serde_json::Value;

use crate::support::client::request;
use crate::support::server::{Engine as Store, TestServer};

pub const DEADLINE: Duration = Duration::from_secs(25);

/// One engine syncing one temp folder.
pub struct Synced {
    pub dir: PathBuf,
    pub state: PathBuf,
    pub board: StatusBoard,
    stop: tokio::sync::watch::Sender<bool>,
    pub task: tokio::task::JoinHandle<Result<(), ClientError>>,
    _tmp: Option<tempfile::TempDir>,
}

impl Synced {
    /// A new engine on a new temp folder for `url` (a server folder URL).
    pub fn start(url: &str, device: &str) -> Synced {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("folder");
        let state = tmp.path().join("state");
        let mut s = Synced::start_in(&dir, &state, url, device);
        s._tmp = Some(tmp);
        s
    }

    /// An engine on `dir` with its database in `state`.
    pub fn start_in(dir: &Path, state: &Path, url: &str, device: &str) -> Synced {
        Synced::start_with(dir, state, url, device, None)
    }

    /// An engine on `dir` with its database in `state`, sending `token`.
    pub fn start_with(dir: &Path, state: &Path, url: &str, device: &str, token: Option<String>) -> Synced {
        let spec = FolderSpec {
            dir: dir.to_path_buf(),
            url: url.parse().unwrap(),
            token,
            state_dir: state.to_path_buf(),
            rescan_every: Duration::from_secs(3600),
            device: device.to_owned(),
        };
        let board = StatusBoard::default();
        let (stop, rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(Engine::run(spec, board.clone(), rx));
        Synced { dir: dir.to_path_buf(), state: state.to_path_buf(), board, stop, task, _tmp: None }
    }

    pub fn status(&self) -> FolderStatus {
        self.board.update(&self.dir.display().to_string(), |s| s.clone())
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    pub fn set_paused(&self, paused: bool) {
        self.board.update(&self.dir.display().to_string(), |s| s.paused = paused);
    }

    /// Waits until `f` holds, or fails with `what` and this engine's status.
    pub async fn until(&self, what: &str, mut f: impl FnMut() -> bool) {
        let start = Instant::now();
        while !f() {
            assert!(start.elapsed() < DEADLINE, "{what}: not after {DEADLINE:?}; {:?}", self.status());
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    pub fn counters(&self) -> CounterSnapshot {
        counters(&self.dir)
    }

    /// Stops the engine and waits for it; the temp folder stays.
    pub async fn stop(self) -> (PathBuf, PathBuf, Option<tempfile::TempDir>) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(DEADLINE, self.task).await.expect("the engine stops").unwrap().unwrap();
        (self.dir, self.state, self._tmp)
    }

    /// Waits until the folder is in sync with the server's folder `folder` (idle, nothing
    /// pending, its cursor at or past the server's latest).
    pub async fn synced(&self, s: impl Addr, folder: &str) {
        let start = Instant::now();
        loop {
            let latest = server_cursor(s.addr(), folder).await;
            let st = self.status();
            let at = st.cursor.as_deref().map(seq_of).unwrap_or(0);
            if st.state == FolderState::Idle && st.pending_up == 0 && st.pending_down == 0 && at >= latest {
                return;
            }
            assert!(start.elapsed() < DEADLINE, "not in sync after {DEADLINE:?}: {st:?}, server at {latest}");
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
}

fn seq_of(cursor: &str) -> u64 {
    cursor.rsplit('-').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// The server log's latest position.
pub async fn server_cursor(addr: SocketAddr, folder: &str) -> u64 {
    let r = request(addr, "GET", &format!("{folder}?since=0000000000000000-0&recursive=1"), &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    seq_of(r.json()["cursor"].as_str().unwrap())
}

/// Waits until `f` holds, or fails with `what`.
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < DEADLINE, "{what}: not after {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// Writes a file and backdates it past the settle time, so the engine takes it at once.
pub fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(5);
    std::fs::File::options().write(true).open(path).unwrap().set_modified(old).unwrap();
}

pub async fn get(s: impl Addr, path: &str) -> (u16, Vec<u8>) {
    let r = request(s.addr(), "GET", path, &[], b"").await;
    (r.status, r.body)
}

/// Waits until the server answers `GET path` with `want` (status and body).
pub async fn server_has(s: impl Addr, path: &str, want: (u16, &[u8])) {
    let start = Instant::now();
    loop {
        let (status, body) = get(s.addr(), path).await;
        if status == want.0 && body == want.1 {
            return;
        }
        assert!(start.elapsed() < DEADLINE, "GET {path}: {status} {} bytes, not {want:?}", body.len());
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// Anything with the server's address.
pub trait Addr: Copy {
    fn addr(self) -> SocketAddr;
}

impl Addr for &TestServer {
    fn addr(self) -> SocketAddr {
        self.addr
    }
}

impl Addr for SocketAddr {
    fn addr(self) -> SocketAddr {
        self
    }
}

/// `len` pseudo-random bytes from `seed` (with a NUL, so always a file).
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut v: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    if let Some(b) = v.first_mut() {
        *b = 0;
    }
    v
}

/// The versions of a file in its history.
pub async fn file_versions(s: &TestServer, path: &str) -> Vec<Value> {
    let r = request(s.addr, "GET", &format!("/.plait/history{path}"), &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["versions"].as_array().unwrap().clone()
}

pub fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_and_server_changes_go_both_ways() {
    let s = TestServer::start(Store::Rocks).await;
    let a = Synced::start(&s.url("/f/"), "laptop");
    write(&a.path("a.txt"), b"hello\n");
    write(&a.path("sub/c.md"), "sub text é\n".as_bytes());
    let bin = noise(1, 300_000);
    write(&a.path("b.bin"), &bin);
    server_has(&s, "/f/b.bin", (200, &bin)).await;
    server_has(&s, "/f/a.txt", (200, b"hello\n")).await;
    a.synced(&s, "/f/").await;
    assert_eq!(get(&s, "/f/a.txt").await, (200, b"hello\n".to_vec()));
    assert_eq!(get(&s, "/f/sub/c.md").await, (200, "sub text é\n".as_bytes().to_vec()));
    assert_eq!(get(&s, "/f/b.bin").await, (200, bin.clone()));

    // An edit, a rename (no chunk sent), a delete.
    write(&a.path("a.txt"), b"hello world\n");
    let before = a.counters();
    std::fs::rename(a.path("b.bin"), a.path("renamed.bin")).unwrap();
    std::fs::remove_file(a.path("sub/c.md")).unwrap();
    server_has(&s, "/f/renamed.bin", (200, &bin)).await;
    server_has(&s, "/f/sub/c.md", (200, b"")).await;
    server_has(&s, "/f/a.txt", (200, b"hello world\n")).await;
    a.synced(&s, "/f/").await;
    assert_eq!(get(&s, "/f/a.txt").await, (200, b"hello world\n".to_vec()));
    assert_eq!(get(&s, "/f/renamed.bin").await, (200, bin.clone()));
    assert_eq!(get(&s, "/f/b.bin").await.0, 404);
    assert_eq!(get(&s, "/f/sub/c.md").await, (200, vec![]));
    assert_eq!(a.counters().chunks_uploaded, before.chunks_uploaded, "a rename sends no chunk");

    // The server's changes land here: a text, a file, a delete.
    let r = request(s.addr, "PUT", "/f/from-server.txt", &[], b"typed in a browser").await;
    assert_eq!(r.status, 200);
    let png = noise(2, 5000);
    let r = request(s.addr, "PUT", "/f/deep/pic.bin", &[("Content-Type", "application/octet-stream")], &png).await;
    assert_eq!(r.status, 200);
    let r = request(s.addr, "DELETE", "/f/renamed.bin", &[], b"").await;
    assert_eq!(r.status, 200);
    eventually("the delete lands", || !a.path("renamed.bin").exists()).await;
    a.synced(&s, "/f/").await;
    assert_eq!(
        std::fs::read(a.path("from-server.txt")).ok().as_deref(),
        Some(&b"typed in a browser"[..]),
        "{:?}",
        a.status()
    );
    assert_eq!(std::fs::read(a.path("deep/pic.bin")).unwrap(), png);
    assert!(!a.path("renamed.bin").exists());
    assert_eq!(files(&a.dir), vec!["a.txt", "deep/pic.bin", "from-server.txt"]);
    // Remote changes came through the folder watch (the 209 stream), not the long poll.
    assert!(a.status().activity.iter().all(|x| x.what != "long polling"), "{:?}", a.status().activity);
    let health = request(s.addr, "GET", "/.plait/health", &[], b"").await.json();
    assert_eq!(health["folder_watches"], 1, "{health}");
    a.stop().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_text_edits_on_two_machines_merge() {
    let s = TestServer::start(Store::Rocks).await;
    let a = Synced::start(&s.url("/n/"), "a");
    let b = Synced::start(&s.url("/n/"), "b");
    write(&a.path("note.txt"), b"one\ntwo\nthree\n");
    server_has(&s, "/n/note.txt", (200, b"one\ntwo\nthree\n")).await;
    b.until("b has it", || b.path("note.txt").exists()).await;
    a.synced(&s, "/n/").await;
    b.synced(&s, "/n/").await;
    assert_eq!(std::fs::read(b.path("note.txt")).unwrap(), b"one\ntwo\nthree\n");

    // Both edit while neither sends (paused), then both go.
    a.set_paused(true);
    b.set_paused(true);
    eventually("both paused", || a.status().state == FolderState::Paused && b.status().state == FolderState::Paused)
        .await;
    write(&a.path("note.txt"), b"ONE\ntwo\nthree\n");
    write(&b.path("note.txt"), b"one\ntwo\nthree\nfour\n");
    a.set_paused(false);
    b.set_paused(false);
    let merged = b"ONE\ntwo\nthree\nfour\n".to_vec();
    eventually("both folders merged", || {
        std::fs::read(a.path("note.txt")).ok() == Some(merged.clone())
            && std::fs::read(b.path("note.txt")).ok() == Some(merged.clone())
    })
    .await;
    a.synced(&s, "/n/").await;
    b.synced(&s, "/n/").await;
    assert_eq!(get(&s, "/n/note.txt").await, (200, merged));
    assert_eq!(files(&a.dir), vec!["note.txt"]);
    assert_eq!(files(&b.dir), vec!["note.txt"]);
    assert!(a.status().conflicts.is_empty() && b.status().conflicts.is_empty());
    a.stop().await;
    b.stop().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_conflict_makes_one_copy_and_deleting_it_resolves_it() {
    let s = TestServer::start(Store::Rocks).await;
    let a = Synced::start(&s.url("/p/"), "a");
    let b = Synced::start(&s.url("/p/"), "b");
    write(&a.path("pic.bin"), &noise(10, 20_000));
    server_has(&s, "/p/pic.bin", (200, &noise(10, 20_000))).await;
    b.until("b has it", || b.path("pic.bin").exists()).await;
    a.synced(&s, "/p/").await;
    b.synced(&s, "/p/").await;
    a.set_paused(true);
    b.set_paused(true);
    eventually("both paused", || a.status().state == FolderState::Paused && b.status().state == FolderState::Paused)
        .await;
    let (va, vb) = (noise(11, 20_000), noise(12, 20_000));
    write(&a.path("pic.bin"), &va);
    write(&b.path("pic.bin"), &vb);
    a.set_paused(false);
    server_has(&s, "/p/pic.bin", (200, &va)).await;
    b.set_paused(false);
    eventually("a conflicted copy in both", || {
        files(&a.dir).iter().any(|n| n.contains("conflicted")) && files(&b.dir).iter().any(|n| n.contains("conflicted"))
    })
    .await;
    b.synced(&s, "/p/").await;
    a.synced(&s, "/p/").await;

    // The server keeps both; each folder has the winner plus one conflicted copy.
    let head = request(s.addr, "HEAD", "/p/pic.bin", &[], b"").await;
    assert!(head.header("conflict").is_some(), "{:?}", head.headers);
    let (_, winner) = get(&s, "/p/pic.bin").await;
    for (x, mine) in [(&a, &va), (&b, &vb)] {
        let names = files(&x.dir);
        assert_eq!(names.len(), 2, "{names:?}");
        assert_eq!(std::fs::read(x.path("pic.bin")).unwrap(), winner);
        let copy = names.iter().find(|n| n.contains("(conflicted copy ")).unwrap();
        assert!(copy.ends_with(").bin"), "{copy}");
        let other = if winner == va { &vb } else { &va };
        assert_eq!(&std::fs::read(x.path(copy)).unwrap(), other, "the copy holds the losing side");
        assert!(*mine == winner || std::fs::read(x.path(copy)).unwrap() == *mine);
        assert_eq!(x.status().conflicts.len(), 1);
    }

    // Deleting the copy in one folder resolves it on the server and in the other folder.
    let copy = files(&a.dir).into_iter().find(|n| n.contains("conflicted")).unwrap();
    std::fs::remove_file(a.path(&copy)).unwrap();
    eventually("resolved here", || a.status().conflicts.is_empty()).await;
    a.synced(&s, "/p/").await;
    let head = request(s.addr, "HEAD", "/p/pic.bin", &[], b"").await;
    assert!(head.header("conflict").is_none(), "{:?}", head.headers);
    assert_eq!(get(&s, "/p/pic.bin").await.1, winner);
    eventually("the other copy goes", || files(&b.dir) == vec!["pic.bin".to_string()]).await;
    b.synced(&s, "/p/").await;
    assert!(a.status().conflicts.is_empty() && b.status().conflicts.is_empty());
    a.stop().await;
    b.stop().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1_mib_change_in_a_32_mib_file_sends_about_one_chunk_and_a_restart_rehashes_nothing() {
    let s = TestServer::start(Store::Rocks).await;
    let a = Synced::start(&s.url("/big/"), "a");
    let mut big = noise(20, 32 << 20);
    write(&a.path("big.bin"), &big);
    for i in 0..40 {
        write(&a.path(&format!("small/{i}.txt")), format!("note {i}\n").as_bytes());
    }
    server_has(&s, "/big/small/39.txt", (200, b"note 39\n")).await;
    server_has(&s, "/big/big.bin", (200, &big)).await;
    a.synced(&s, "/big/").await;
    let first = a.counters();
    let received = |v: Value| v["received_chunk_bytes"].as_u64().unwrap();
    let server_before = received(request(s.addr, "GET", "/.plait/chunks", &[], b"").await.json());
    assert!(first.chunk_bytes_uploaded >= 32 << 20, "{first:?}");

    for b in &mut big[16 << 20..17 << 20] {
        *b = b.wrapping_add(1);
    }
    write(&a.path("big.bin"), &big);
    server_has(&s, "/big/big.bin", (200, &big)).await;
    a.synced(&s, "/big/").await;
    let second = a.counters();
    assert_eq!(second.missing_calls, first.missing_calls + 1, "{second:?}");
    let sent = second.chunk_bytes_uploaded - first.chunk_bytes_uploaded;
    let chunks = second.chunks_uploaded - first.chunks_uploaded;
    assert!(chunks <= 3 && sent <= 8 << 20, "a 1 MiB change sent {chunks} chunks, {sent} bytes");
    // The server counted the same bytes arriving (and no others).
    let server_after = received(request(s.addr, "GET", "/.plait/chunks", &[], b"").await.json());
    assert_eq!(server_after - server_before, sent);

    // A restart over the same state re-reads nothing.
    let (dir, state, tmp) = a.stop().await;
    let before = counters(&dir);
    let a = Synced::start_in(&dir, &state, &s.url("/big/"), "a");
    a.synced(&s, "/big/").await;
    assert_eq!(a.counters().files_hashed, before.files_hashed, "a restart hashed unchanged files");
    a.stop().await;
    drop(tmp);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaitignore_and_the_defaults_apply_both_ways() {
    let s = TestServer::start(Store::Rocks).await;
    let a = Synced::start(&s.url("/i/"), "a");
    write(&a.path(".plaitignore"), b"*.log\nbuild/\n");
    write(&a.path("keep.txt"), b"kept");
    write(&a.path("debug.log"), b"no");
    write(&a.path("build/out.txt"), b"no");
    write(&a.path(".keep.txt.swp"), b"no");
    write(&a.path(".DS_Store"), b"no");
    server_has(&s, "/i/keep.txt", (200, b"kept")).await;
    a.synced(&s, "/i/").await;
    let list = request(s.addr, "GET", "/i/?recursive=1", &[("Accept", "application/json")], b"").await.json();
    let names: Vec<&str> = list["entries"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["/i/.plaitignore", "/i/keep.txt"]);
    // From the server: an ignored path is not written here.
    assert_eq!(request(s.addr, "PUT", "/i/server.log", &[], b"x").await.status, 200);
    assert_eq!(request(s.addr, "PUT", "/i/server.txt", &[], b"y").await.status, 200);
    eventually("server.txt lands", || a.path("server.txt").exists()).await;
    a.synced(&s, "/i/").await;
    assert_eq!(std::fs::read(a.path("server.txt")).unwrap(), b"y");
    assert!(!a.path("server.log").exists());
    a.stop().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_while_the_server_is_down_are_sent_when_it_is_back() {
    let s = TestServer::start(Store::Rocks).await;
    let addr = s.addr;
    let a = Synced::start(&s.url("/o/"), "a");
    write(&a.path("a.txt"), b"before");
    server_has(&s, "/o/a.txt", (200, b"before")).await;
    a.synced(&s, "/o/").await;
    let data = s.stop_keeping_data().await.unwrap();
    let st = || a.status();
    // Changed once the engine knows the server is gone, so only its offline wait can note them.
    eventually(&format!("offline ({:?})", st()), || st().state == FolderState::Offline).await;
    write(&a.path("a.txt"), b"while offline");
    write(&a.path("new.bin"), &noise(30, 10_000));
    eventually(&format!("2 pending ({:?})", st()), || st().state == FolderState::Offline && st().pending_up == 2).await;
    let mut cfg = plait::config::ServeConfig::for_tests(Some(data.path().to_path_buf()));
    cfg.listen = addr;
    let running = plait::app::Running::start(cfg).await.unwrap();
    server_has(addr, "/o/a.txt", (200, b"while offline")).await;
    server_has(addr, "/o/new.bin", (200, &noise(30, 10_000))).await;
    a.synced(addr, "/o/").await;
    a.stop().await;
    running.stop().await.unwrap();
    drop(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_dropped_mid_transfer_loses_nothing_and_duplicates_nothing() {
    let s = TestServer::start(Store::Rocks).await;
    let a = Synced::start(&s.url("/k/"), "a");
    a.synced(&s, "/k/").await;
    let big = noise(40, 24 << 20);
    write(&a.path("big.bin"), &big);
    write(&a.path("t.txt"), b"text written with the big file");
    eventually("a transfer starts", || !a.status().transfers.is_empty()).await;
    a.task.abort();
    let _ = a.task.await;
    let b = Synced::start_in(&a.dir, &a.state, &s.url("/k/"), "a");
    server_has(&s, "/k/big.bin", (200, &big)).await;
    server_has(&s, "/k/t.txt", (200, b"text written with the big file")).await;
    b.synced(&s, "/k/").await;
    assert_eq!(get(&s, "/k/big.bin").await.1, big);
    assert_eq!(get(&s, "/k/t.txt").await.1, b"text written with the big file");
    assert_eq!(file_versions(&s, "/k/big.bin").await.len(), 1, "one version, not two");
    let r = request(s.addr, "GET", "/.plait/history/k/t.txt", &[], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["versions"].as_array().map(Vec::len), Some(1), "{}", r.text());
    b.stop().await;
    drop(a._tmp);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renaming_a_conflicted_copy_resolves_it_and_the_new_name_costs_no_chunk() {
    let s = TestServer::start(Store::Rocks).await;
    let a = Synced::start(&s.url("/r/"), "a");
    write(&a.path("doc.bin"), &noise(50, 40_000));
    server_has(&s, "/r/doc.bin", (200, &noise(50, 40_000))).await;
    a.synced(&s, "/r/").await;
    // Someone else writes on top of the same version while this folder does too.
    a.set_paused(true);
    a.until("paused", || a.status().state == FolderState::Paused).await;
    let theirs = noise(51, 40_000);
    let v = request(s.addr, "HEAD", "/r/doc.bin", &[], b"").await.header("version").unwrap().to_owned();
    let r = request(
        s.addr,
        "PUT",
        "/r/doc.bin",
        &[("Parents", &v), ("Version", "\"9999999999.000\""), ("Content-Type", "application/octet-stream")],
        &theirs,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let mine = noise(52, 40_000);
    write(&a.path("doc.bin"), &mine);
    a.set_paused(false);
    a.until("a conflicted copy", || a.status().conflicts.len() == 1).await;
    a.synced(&s, "/r/").await;
    // The server's id is the highest: theirs wins, mine is the copy.
    assert_eq!(std::fs::read(a.path("doc.bin")).unwrap(), theirs);
    let copy = a.status().conflicts[0].copy.clone();
    assert_eq!(std::fs::read(a.path(&copy)).unwrap(), mine);

    let before = a.counters();
    std::fs::rename(a.path(&copy), a.path("mine.bin")).unwrap();
    server_has(&s, "/r/mine.bin", (200, &mine)).await;
    a.until("resolved", || a.status().conflicts.is_empty()).await;
    a.synced(&s, "/r/").await;
    let head = request(s.addr, "HEAD", "/r/doc.bin", &[], b"").await;
    assert!(head.header("conflict").is_none(), "{:?}", head.headers);
    assert_eq!(get(&s, "/r/doc.bin").await.1, theirs);
    assert_eq!(a.counters().chunks_uploaded, before.chunks_uploaded, "the renamed copy's chunks were on the server");
    assert_eq!(files(&a.dir), vec!["doc.bin", "mine.bin"]);
    a.stop().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_token_makes_local_files_read_only_and_never_uploads() {
    use crate::auth::{create_token, token_server, with_token, ADMIN};
    let s = token_server(Store::Rocks, |_| {}).await;
    assert_eq!(with_token(s.addr, ADMIN, "PUT", "/ro/a.txt", &[], b"shared note").await.status, 200);
    let reader = create_token(s.addr, ADMIN, "reader", "read", &["/ro/"], None).await;
    let tmp = tempfile::tempdir().unwrap();
    let a = Synced::start_with(
        &tmp.path().join("f"),
        &tmp.path().join("s"),
        &s.url("/ro/"),
        "a",
        Some(reader.token.clone()),
    );
    a.until("the note lands", || a.path("a.txt").exists()).await;
    a.until("not writable", || !a.status().writable && a.status().state == FolderState::Idle).await;
    assert_eq!(std::fs::read(a.path("a.txt")).unwrap(), b"shared note");
    assert!(std::fs::metadata(a.path("a.txt")).unwrap().permissions().readonly());

    // A local file is not sent (an error says why); the server's edits still arrive.
    write(&a.path("mine.txt"), b"local only");
    a.until("refused locally", || a.status().errors.contains_key("mine.txt")).await;
    assert_eq!(with_token(s.addr, ADMIN, "PUT", "/ro/a.txt", &[], b"edited by the owner").await.status, 200);
    a.until("the edit lands", || std::fs::read(a.path("a.txt")).ok().as_deref() == Some(&b"edited by the owner"[..]))
        .await;
    assert!(std::fs::metadata(a.path("a.txt")).unwrap().permissions().readonly());
    assert_eq!(with_token(s.addr, ADMIN, "GET", "/ro/mine.txt", &[], b"").await.body, b"");
    a.stop().await;
    s.stop().await;
}
