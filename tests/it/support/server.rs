//! Starting the real server: in-process (memory or RocksDB in a temp dir) or as the
//! `plait` binary in a child process (for restarts and kill -9).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use plait::app::Running;
use plait::config::ServeConfig;

/// Which store a test server uses.
#[derive(Clone, Copy, Debug)]
pub enum Engine {
    Memory,
    Rocks,
}

/// A server running inside the test process.
pub struct TestServer {
    pub addr: SocketAddr,
    running: Option<Running>,
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    pub async fn start(engine: Engine) -> TestServer {
        Self::start_with(engine, |_| {}).await
    }

    pub async fn start_with(engine: Engine, tweak: impl FnOnce(&mut ServeConfig)) -> TestServer {
        let dir = match engine {
            Engine::Memory => None,
            Engine::Rocks => Some(tempfile::tempdir().unwrap()),
        };
        let mut cfg = ServeConfig::for_tests(dir.as_ref().map(|d| d.path().to_path_buf()));
        tweak(&mut cfg);
        let running = Running::start(cfg).await.unwrap();
        TestServer { addr: running.addr, running: Some(running), _dir: dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.unwrap();
        }
    }

    /// Stops the server and starts a new one on the same data directory (RocksDB only), on a
    /// new port, with the test configuration as `tweak` changes it.
    pub async fn restart(self, tweak: impl FnOnce(&mut ServeConfig)) -> TestServer {
        let dir = self.stop_keeping_data().await.expect("only a RocksDB server keeps its data across a restart");
        let mut cfg = ServeConfig::for_tests(Some(dir.path().to_path_buf()));
        tweak(&mut cfg);
        let running = Running::start(cfg).await.unwrap();
        TestServer { addr: running.addr, running: Some(running), _dir: Some(dir) }
    }

    /// Stops the server and hands over its data directory (None for the memory engine),
    /// so a test can look at what the server left behind.
    pub async fn stop_keeping_data(mut self) -> Option<tempfile::TempDir> {
        if let Some(r) = self.running.take() {
            r.stop().await.unwrap();
        }
        self._dir.take()
    }
}

/// The `plait` binary built for this test run.
pub fn plait_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_plait"))
}

/// A `plait serve` child process.
pub struct ChildServer {
    pub addr: SocketAddr,
    child: Child,
}

impl ChildServer {
    /// Starts the binary on a free port with RocksDB under `data_dir`; waits for its
    /// "listening" line (bounded).
    pub fn start(data_dir: &Path, extra: &[&str]) -> ChildServer {
        Self::start_with_env(data_dir, extra, &[])
    }

    /// [`ChildServer::start`] with more environment variables (an object store's endpoint
    /// and credentials).
    pub fn start_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, String)]) -> ChildServer {
        let mut child = Command::new(plait_binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("PLAIT_LOG", "warn")
            // Access control has its own tests (auth, auth_live); these servers are open.
            .env("PLAIT_AUTH", "none")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let addr = read_listen_addr(stdout).unwrap_or_else(|e| panic!("server did not start: {e}"));
        ChildServer { addr, child }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits (at most `limit`) for the process to exit; returns how long
    /// it took, or None if it was still running at the limit.
    pub fn terminate(mut self, limit: Duration) -> Option<Duration> {
        let started = std::time::Instant::now();
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        while started.elapsed() < limit {
            if self.child.try_wait().unwrap().is_some() {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// `kill -9`: no chance to flush or clean up.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (up to 60 s) for a child's first stdout line; keeps draining stdout afterwards so the
/// child never writes into a closed pipe.
pub fn first_line(stdout: ChildStdout) -> Result<String, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        let mut rest = String::new();
        while reader.read_line(&mut rest).unwrap_or(0) > 0 {
            rest.clear();
        }
    });
    rx.recv_timeout(Duration::from_secs(60)).map_err(|_| "no first line within 60 s".to_string())
}

/// Waits (up to 60 s) for a `plait serve` child's start-up line on its stdout and returns the
/// address it listens on; keeps draining stdout afterwards so the child never writes into a
/// closed pipe. `Err` carries the line it got (empty if none), for the caller's message.
pub fn read_listen_addr(stdout: ChildStdout) -> Result<SocketAddr, String> {
    let line = first_line(stdout)?;
    line.split("://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("unexpected start-up line {line:?}"))
}
