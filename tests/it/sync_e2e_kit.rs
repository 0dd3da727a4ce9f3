//! The kit of the end-to-end sync tests (`sync_e2e`): the real `plait serve` as a child process
//! that can be stopped and restarted on the same port (its RocksDB in a temp dir), `plait sync`
//! daemons as child processes (ready line, control API, `kill -9`, SIGTERM), waiting for a
//! synced state on the control API's status and the server's change log, and the folder trees
//! (local and the server's) to compare.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::client::request;
use crate::support::server::plait_binary;

/// The longest any wait for a synced state may take.
pub const SYNC_WAIT: Duration = Duration::from_secs(60);

/// Reads a child's first stdout line within 60 s (the rest is drained so it never blocks).
fn first_line(child: &mut Child) -> Result<String, String> {
    crate::support::server::first_line(child.stdout.take().ok_or("no stdout")?)
}

fn log_file(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap()
}

/// The last lines of a log, for failure messages.
pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Sends SIGTERM to a child (the clean stop).
fn sigterm(child: &Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
}

/// Waits (bounded) for a child to exit; kills it if it does not.
fn reap(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// `plait serve` on a RocksDB in `data`, restartable on the same port.
pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    data: PathBuf,
    log: PathBuf,
}

impl Server {
    /// Starts on a free port.
    pub fn start(data: &Path, log: &Path) -> Server {
        let mut s = Server { child: None, addr: "127.0.0.1:0".parse().unwrap(), data: data.into(), log: log.into() };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let mut child = Command::new(plait_binary())
            .args(["serve", "--listen", &self.addr.to_string(), "--data-dir"])
            .arg(&self.data)
            .env("PLAIT_LOG", "warn")
            .env("PLAIT_AUTH", "none")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file(&self.log)))
            .spawn()
            .unwrap();
        let line = first_line(&mut child).unwrap_or_else(|e| panic!("server: {e}\n{}", tail(&self.log)));
        self.addr = line
            .split("://")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected start-up line {line:?}"));
        self.child = Some(child);
    }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s): the daemons go offline.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            sigterm(&c);
            reap(&mut c, Duration::from_secs(10));
        }
    }

    /// Starts it again on the same port and data (the daemons' URLs stay right).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop it first");
        self.spawn();
    }

    /// `GET /.plait/chunks`'s (received_chunk_bytes, received_body_bytes).
    pub async fn received(&self) -> (u64, u64) {
        let o = request(self.addr, "GET", "/.plait/chunks", &[], b"").await.json();
        (o["received_chunk_bytes"].as_u64().unwrap(), o["received_body_bytes"].as_u64().unwrap())
    }

    /// Every resource under `folder` (recursive) and its current content, relative paths.
    pub async fn tree(&self, folder: &str) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut after: Option<String> = None;
        loop {
            let mut url = format!("{folder}?recursive=1&limit=10000");
            if let Some(a) = &after {
                url.push_str(&format!("&after={}", percent(a)));
            }
            let page = request(self.addr, "GET", &url, &[("Accept", "application/json")], b"").await;
            assert_eq!(page.status, 200, "{}", page.text());
            let page = page.json();
            for e in page["entries"].as_array().unwrap() {
                let path = e["path"].as_str().unwrap();
                if e["type"] == "folder" {
                    continue;
                }
                let body = request(self.addr, "GET", path, &[], b"").await;
                if body.status == 404 || body.status == 410 {
                    // Deleted between the listing and the read: a daemon is still at work, and
                    // the caller's comparison will look again.
                    continue;
                }
                assert_eq!(body.status, 200, "GET {path}: {}", body.text());
                out.insert(path[folder.len()..].to_owned(), body.body);
            }
            match page["next"].as_str() {
                Some(n) => after = Some(n.to_owned()),
                None => return out,
            }
        }
    }

    /// Whether the folder has changes after `cursor` (a cursor the server no longer answers
    /// counts as having changes).
    pub async fn changed_since(&self, folder: &str, cursor: &str) -> bool {
        let url = format!("{folder}?since={}&recursive=1", percent(cursor));
        let r = request(self.addr, "GET", &url, &[("Accept", "application/json")], b"").await;
        if r.status != 200 {
            return true;
        }
        let v = r.json();
        v["reset"] == true || !v["changes"].as_array().is_some_and(|c| c.is_empty())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A `plait sync` daemon process.
pub struct Daemon {
    child: Option<Child>,
    pub control: SocketAddr,
    pub args: Vec<String>,
    pub log: PathBuf,
    /// An empty user config, so the developer's own tokens never leak into a test.
    pub user_config: PathBuf,
}

impl Daemon {
    /// `plait sync DIR URL --state-dir STATE --device DEVICE --control 127.0.0.1:0`.
    pub fn start_folder(dir: &Path, url: &str, state: &Path, device: &str, log: &Path) -> Daemon {
        let args = vec![
            dir.display().to_string(),
            url.to_owned(),
            "--state-dir".into(),
            state.display().to_string(),
            "--device".into(),
            device.into(),
            "--rescan-secs".into(),
            "30".into(),
        ];
        Daemon::start(args, log)
    }

    /// `plait sync` with `args` and `--control 127.0.0.1:0`; waits for the ready line.
    pub fn start(args: Vec<String>, log: &Path) -> Daemon {
        let user_config = log.with_extension("user.toml");
        let mut d = Daemon { child: None, control: "127.0.0.1:0".parse().unwrap(), args, log: log.into(), user_config };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        let mut child = Command::new(plait_binary())
            .arg("sync")
            .args(&self.args)
            .args(["--control", "127.0.0.1:0"])
            .env("PLAIT_CONFIG", &self.user_config)
            .env_remove("PLAIT_TOKEN")
            .env("PLAIT_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file(&self.log)))
            .spawn()
            .unwrap();
        let line = first_line(&mut child).unwrap_or_else(|e| panic!("daemon: {e}\n{}", tail(&self.log)));
        let addr = line
            .strip_prefix("plait sync ready: control http://")
            .map(str::trim)
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected ready line {line:?}\n{}", tail(&self.log)));
        self.control = addr;
        self.child = Some(child);
    }

    /// `kill -9`, then a start on the same state directory.
    pub fn kill9_and_restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.spawn();
    }

    /// SIGTERM; returns the exit status (None if it had to be killed after 30 s).
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        sigterm(&c);
        reap(&mut c, Duration::from_secs(30))
    }

    /// The control API's answer to `GET route`.
    pub async fn get(&self, route: &str) -> Value {
        let (status, v) = self.call("GET", route, &[]).await;
        assert_eq!(status, 200, "{route}: {v}");
        v
    }

    /// Any request to the control API (as a real client sends it: `Host: 127.0.0.1:PORT`):
    /// its status and JSON body.
    pub async fn call(&self, method: &str, route: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .request(method.parse().unwrap(), format!("http://{}{route}", self.control))
            .timeout(Duration::from_secs(10));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    /// The status of the daemon's only (or first) folder.
    pub async fn folder(&self) -> Value {
        self.get("/v1/status").await["folders"][0].clone()
    }

    /// The local paths of the conflicted copies the daemon reports.
    pub async fn conflict_copies(&self) -> Vec<String> {
        let v = self.get("/v1/conflicts").await;
        v["conflicts"].as_array().unwrap().iter().map(|c| c["copy"].as_str().unwrap().to_owned()).collect()
    }

    /// `plait sync <args> --control <this daemon>` as a command, its stdout and exit code.
    pub fn command(&self, args: &[&str]) -> (String, i32) {
        let out = Command::new(plait_binary())
            .arg("sync")
            .args(args)
            .args(["--control", &format!("http://{}", self.control)])
            .output()
            .unwrap();
        (String::from_utf8_lossy(&out.stdout).into_owned(), out.status.code().unwrap_or(-1))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Whether a folder's status says it is in sync with `server` (idle, nothing pending, and no
/// change on the server after its cursor).
pub async fn folder_synced(status: &Value, server: &Server, folder: &str) -> bool {
    if status["state"] != "idle" || status["pending_up"] != 0 || status["pending_down"] != 0 {
        return false;
    }
    match status["cursor"].as_str() {
        Some(c) => !server.changed_since(folder, c).await,
        None => false,
    }
}

/// Every file under `dir` (relative `/`-separated paths) and its bytes, without `skip`.
pub fn local_tree(dir: &Path, skip: &[String]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().replace('\\', "/");
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() && !skip.contains(&rel) => {
                    if let Ok(bytes) = std::fs::read(&p) {
                        out.insert(rel, bytes);
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// Waits until every daemon's folder is synced with `server` and every local tree (without
/// its conflicted copies) equals the server's folder; returns the server's tree. Polls the
/// control APIs (the event the test waits for is their state), bounded by `SYNC_WAIT`.
pub async fn until_synced(server: &Server, folder: &str, daemons: &[(&Daemon, &Path)]) -> BTreeMap<String, Vec<u8>> {
    let deadline = Instant::now() + SYNC_WAIT;
    let mut last = String::new();
    loop {
        let mut all = true;
        for (d, _) in daemons {
            let st = d.folder().await;
            if !folder_synced(&st, server, folder).await {
                last = format!("not synced: {st}");
                all = false;
                break;
            }
        }
        if all {
            let remote = server.tree(folder).await;
            let mut same = true;
            for (d, dir) in daemons {
                let local = local_tree(dir, &d.conflict_copies().await);
                if local != remote {
                    last = format!("{} differs from the server: {}", dir.display(), diff(&local, &remote));
                    same = false;
                    break;
                }
            }
            if same {
                return remote;
            }
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = daemons.iter().map(|(d, _)| tail(&d.log)).collect();
            panic!("never synced within {SYNC_WAIT:?}: {last}\ndaemon logs:\n{}", logs.join("\n---\n"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A short description of how two trees differ.
pub fn diff(a: &BTreeMap<String, Vec<u8>>, b: &BTreeMap<String, Vec<u8>>) -> String {
    let mut out = Vec::new();
    for (k, v) in a {
        match b.get(k) {
            None => out.push(format!("{k} only local")),
            Some(w) if w != v => out.push(format!("{k} differs ({} vs {} bytes)", v.len(), w.len())),
            _ => {}
        }
    }
    for k in b.keys().filter(|k| !a.contains_key(*k)) {
        out.push(format!("{k} only on the server"));
    }
    out.truncate(10);
    out.join(", ")
}

/// `len` pseudo-random bytes from `seed` (xorshift).
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Writes `bytes` to `dir/rel`, creating its directories.
pub fn save(dir: &Path, rel: &str, bytes: &[u8]) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, bytes).unwrap();
}
