//! The kit of the crash tests (`crash`, `crash_files`): the real `plait` binary as a child that
//! is `kill -9`ed and restarted on the same data dir, an HTTP/1.1 link whose errors are values
//! (the server dies under it all the time), the channel on which clients learn where the
//! restarted server listens, and the client-side oracle log, synced line by line.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::server::{plait_binary, read_listen_addr};
use super::Response;

/// Bound on any single connect or request.
pub const IO_WAIT: Duration = Duration::from_secs(10);
/// How long a client waits for the controller to announce a restarted server.
pub const UP_WAIT: Duration = Duration::from_secs(5);
/// How many anomaly descriptions are kept for a report.
pub const MAX_NOTES: usize = 40;

/// A number from the environment (a knob of a long run), None when unset.
pub fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.trim().parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number")))
}

/// The seed in `var`, else one from the clock (the test prints it, so a run can be replayed).
pub fn seed_from_env(var: &str) -> u64 {
    env_u64(var).unwrap_or_else(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        t.as_nanos() as u64 ^ u64::from(std::process::id())
    })
}

/// Anomalies seen by any task: a count per kind lives in the task's stats, the text here.
#[derive(Default)]
pub struct Notes(pub Mutex<Vec<String>>);

impl Notes {
    pub fn add(&self, note: String) {
        let mut n = self.0.lock().unwrap();
        if n.len() < MAX_NOTES {
            n.push(note);
        }
    }

    pub fn drain(&self) -> Vec<String> {
        self.0.lock().unwrap().drain(..).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The server process

/// A `plait serve` child with its stderr appended to a file, so that a server that dies by
/// itself or logs an error is noticed.
pub struct Proc {
    child: Child,
    pub addr: SocketAddr,
}

impl Proc {
    fn start(data: &Path, args: &[String], stderr_log: &Path) -> Result<Proc, String> {
        let err = OpenOptions::new().create(true).append(true).open(stderr_log).map_err(|e| e.to_string())?;
        let mut child = Command::new(plait_binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(args)
            .env("PLAIT_LOG", "warn")
            .env("PLAIT_AUTH", "none")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(|e| format!("spawning plait: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let addr = read_listen_addr(stdout).map_err(|e| {
            let status = child.try_wait().ok().flatten();
            format!("the server did not start ({e}, exit status {status:?})")
        })?;
        Ok(Proc { child, addr })
    }

    /// `kill -9` and reap. Returns the exit status if the server had already exited by itself.
    fn kill9(mut self) -> Option<std::process::ExitStatus> {
        let early = self.child.try_wait().ok().flatten();
        let _ = self.child.kill();
        let _ = self.child.wait();
        early
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `plait serve` on `data` with `args` (waiting for its start-up line, bounded).
pub async fn start_server(data: &Path, args: &[String], stderr_log: &Path) -> Proc {
    let (data, args, log) = (data.to_path_buf(), args.to_vec(), stderr_log.to_path_buf());
    let started = tokio::task::spawn_blocking(move || Proc::start(&data, &args, &log)).await.unwrap();
    started.unwrap_or_else(|e| panic!("{e}; server stderr:\n{}", tail(stderr_log)))
}

/// Kills `proc` with -9; counts and notes a server that had died by itself.
pub async fn kill_server(proc: Proc, failures: &mut u64, notes: &Notes) {
    if let Some(status) = tokio::task::spawn_blocking(move || proc.kill9()).await.unwrap() {
        *failures += 1;
        notes.add(format!("the server exited by itself before the kill: {status}"));
    }
}

/// The last 30 lines of a log file.
pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Counts (and notes) the lines of the server's stderr that report an error or a panic.
pub fn server_complaints(stderr_log: &Path, notes: &Notes) -> u64 {
    let stderr = std::fs::read_to_string(stderr_log).unwrap_or_default();
    let mut n = 0;
    for line in stderr.lines().filter(|l| l.contains("ERROR") || l.contains("panicked")) {
        n += 1;
        notes.add(format!("server stderr: {line}"));
    }
    n
}

// ---------------------------------------------------------------------------------------------
// A small HTTP/1.1 client whose errors are values

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "timed out")
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// One keep-alive connection; every request is bounded by [`IO_WAIT`].
pub struct Link {
    stream: TcpStream,
    buf: Vec<u8>,
    addr: SocketAddr,
}

impl Link {
    pub async fn open(addr: SocketAddr) -> io::Result<Link> {
        let stream = tokio::time::timeout(IO_WAIT, TcpStream::connect(addr)).await.map_err(|_| timed_out())??;
        stream.set_nodelay(true)?;
        Ok(Link { stream, buf: Vec::new(), addr })
    }

    /// The address the link was opened to.
    pub fn peer(&self) -> SocketAddr {
        self.addr
    }

    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        tokio::time::timeout(IO_WAIT, self.exchange(method, path, headers, body)).await.map_err(|_| timed_out())?
    }

    async fn exchange(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: crash\r\n");
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = req.into_bytes();
        if body.len() <= 64 << 10 {
            // One write: small requests go out in one segment.
            bytes.extend_from_slice(body);
            self.stream.write_all(&bytes).await?;
        } else {
            self.stream.write_all(&bytes).await?;
            self.stream.write_all(body).await?;
        }

        let end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            self.fill().await?;
        };
        let head = String::from_utf8(self.buf[..end].to_vec()).map_err(|_| bad("non-UTF-8 head"))?;
        self.buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("bad status line in {head:?}")))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut res = Response { status, reason: String::new(), headers, body: Vec::new() };
        if method == "HEAD" || status == 304 {
            return Ok(res);
        }
        if res.header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
            loop {
                let line_end = loop {
                    if let Some(i) = find(&self.buf, b"\r\n") {
                        break i;
                    }
                    self.fill().await?;
                };
                let size_line = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
                let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                    .map_err(|_| bad(format!("bad chunk size {size_line:?}")))?;
                self.buf.drain(..line_end + 2);
                while self.buf.len() < size + 2 {
                    self.fill().await?;
                }
                res.body.extend(self.buf.drain(..size));
                self.buf.drain(..2);
                if size == 0 {
                    break;
                }
            }
        } else {
            let len: usize = match res.header("content-length") {
                Some(l) => l.parse().map_err(|_| bad("bad content-length"))?,
                None => 0,
            };
            while self.buf.len() < len {
                self.fill().await?;
            }
            res.body = self.buf.drain(..len).collect();
        }
        Ok(res)
    }

    async fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 16384];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// Where the server is

/// Where the server is: `epoch` grows with every restart; `addr` is None while it is down.
#[derive(Clone, Copy, Debug)]
pub struct Up {
    pub epoch: u64,
    pub addr: Option<SocketAddr>,
}

/// A client's connection to whichever server is up: reopened on the announced address after
/// a failure.
pub struct Caller {
    up: watch::Receiver<Up>,
    link: Option<(u64, Link)>,
}

impl Caller {
    pub fn new(up: watch::Receiver<Up>) -> Caller {
        Caller { up, link: None }
    }

    /// One request on the current connection (opened to the current address if needed). On
    /// error the connection is dropped and the error carries the epoch it belonged to.
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, (u64, io::Error)> {
        let (epoch, mut link) = match self.link.take() {
            Some(l) => l,
            None => {
                let up = *self.up.borrow();
                let Some(addr) = up.addr else {
                    return Err((up.epoch, io::Error::new(io::ErrorKind::NotConnected, "server down")));
                };
                (up.epoch, Link::open(addr).await.map_err(|e| (up.epoch, e))?)
            }
        };
        match link.call(method, path, headers, body).await {
            Ok(r) => {
                self.link = Some((epoch, link));
                Ok(r)
            }
            Err(e) => Err((epoch, e)),
        }
    }

    /// After a failed request on `epoch`: backs off for `backoff`, then waits (at most
    /// [`UP_WAIT`], and not past `deadline`) until a server of a later epoch is announced.
    /// Returns false when none was: the error was not caused by a kill.
    pub async fn wait_for_restart(&mut self, epoch: u64, backoff: Duration, deadline: Instant) -> bool {
        tokio::time::sleep(backoff).await;
        let left = deadline.saturating_duration_since(Instant::now()).min(UP_WAIT);
        let waited = tokio::time::timeout(left, self.up.wait_for(|u| u.epoch != epoch && u.addr.is_some())).await;
        matches!(waited, Ok(Ok(_))) || Instant::now() >= deadline
    }
}

// ---------------------------------------------------------------------------------------------
// The oracle log

/// A client's append-only log of outcomes: each line is written and synced before the client
/// moves on, so what the checks read back is what the client knew.
pub struct OracleLog(Option<File>);

impl OracleLog {
    pub fn create(path: &Path) -> OracleLog {
        OracleLog(Some(OpenOptions::new().create(true).append(true).open(path).unwrap()))
    }

    /// Appends `line` as one JSON line and syncs it.
    pub async fn append(&mut self, line: &serde_json::Value) {
        let mut bytes = serde_json::to_vec(line).unwrap();
        bytes.push(b'\n');
        let mut file = self.0.take().unwrap();
        let file = tokio::task::spawn_blocking(move || {
            file.write_all(&bytes)?;
            file.sync_data()?;
            Ok::<_, io::Error>(file)
        })
        .await
        .unwrap()
        .unwrap();
        self.0 = Some(file);
    }
}

/// Every line of every `*.jsonl` file in `dir`, files in name order, as JSON values.
pub fn read_logs(dir: &Path) -> Vec<(String, serde_json::Value)> {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        for line in std::fs::read_to_string(&file).unwrap().lines() {
            let v = serde_json::from_str(line).unwrap_or_else(|e| panic!("bad oracle line {line:?}: {e}"));
            out.push((line.to_string(), v));
        }
    }
    out
}
