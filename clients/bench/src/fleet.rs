//! Many light subscribers at once, for the fan-out (B4) and idle-memory (B5) scenarios.
//!
//! `client::Conn` buffers 64 KiB per connection, which at 10,000 subscribers would make the
//! load generator the thing being measured. Here each subscriber is one tokio task with a
//! 4 KiB read buffer: it de-chunks its 209 stream, finds update boundaries with
//! [`plait::protocol::Decoder`], and stamps each update with the time the read holding its
//! last byte returned. Progress is shared through atomics, so the writer can wait until an
//! update reached every subscriber without a message per delivery.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinHandle;

mod parse;

use parse::Parser;

/// Connections being opened at once (keeps the server's accept backlog from overflowing).
const OPENING: usize = 128;
/// Each subscriber's read buffer.
const READ_BUF: usize = 4096;
/// How long opening the whole fleet may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(300);

/// What a subscriber expects before it counts as ready.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Start {
    /// A 209 head, then the initial snapshot (a Braid server).
    Subscription,
    /// Any response head (the no-op server: the connection then idles).
    Head,
    /// Any bytes (the write() sink greets with a blank line once it accepted the
    /// connection), then a bare chunked stream of updates.
    Bare,
}

/// How to open each subscriber.
#[derive(Clone)]
pub struct Spec {
    /// Where to connect.
    pub addr: SocketAddr,
    /// Bytes sent after connecting (the request); empty sends nothing.
    pub request: Arc<Vec<u8>>,
    /// What counts as started.
    pub start: Start,
    /// Updates expected after the start.
    pub updates: usize,
    /// An open-ended stream (a folder watch during a timed load): count the updates and keep
    /// only the last one's `Version` instead of every arrival time, so memory stays flat;
    /// `updates` is then 0 and [`Fleet::wait_version`] waits for a given last version.
    pub tally: bool,
    /// `{i}` in the request stands for the subscriber's index.
    pub numbered: bool,
}

impl Spec {
    /// A `Subscribe: true` GET of `path` on a Braid server.
    pub fn subscription(addr: SocketAddr, path: &str, updates: usize) -> Spec {
        let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nsubscribe: true\r\n\r\n");
        Spec {
            addr,
            request: Arc::new(request.into_bytes()),
            start: Start::Subscription,
            updates,
            tally: false,
            numbered: false,
        }
    }

    /// The same, open-ended: counted, not timed (see [`Spec::tally`]).
    pub fn tally(addr: SocketAddr, path: &str) -> Spec {
        Spec { tally: true, ..Spec::subscription(addr, path, 0) }
    }
}

/// What one subscriber received after its start.
#[derive(Default)]
pub struct Received {
    /// When each update's last byte was read.
    pub times: Vec<Instant>,
    /// Each update's `Version` header.
    pub versions: Vec<String>,
    /// Subscriber 0 only: the exact stream bytes (chunk framing included) of each update.
    pub raw: Vec<Vec<u8>>,
    /// Updates received after the start (also with [`Spec::tally`]).
    pub count: usize,
    /// The last update's `Version` (also with [`Spec::tally`]).
    pub last_version: String,
}

struct Board {
    ready: AtomicUsize,
    got: Vec<AtomicUsize>,
    /// With [`Spec::tally`]: each subscriber's last `Version` so far.
    last: Vec<Mutex<String>>,
    error: Mutex<Option<String>>,
}

impl Board {
    fn error(&self) -> Option<String> {
        self.error.lock().ok().and_then(|e| e.clone())
    }
}

/// Subscribers, each in its own task, open until [`Fleet::close`].
pub struct Fleet {
    size: usize,
    board: Arc<Board>,
    tasks: Vec<JoinHandle<anyhow::Result<Received>>>,
    /// One per subscriber: a shared watch channel would make every read register with,
    /// and every wake-up contend on, one waiter list.
    stops: Vec<oneshot::Sender<()>>,
}

impl Fleet {
    /// Opens `size` subscribers as `spec` says and waits until every one has started.
    pub async fn open(spec: &Spec, size: usize) -> anyhow::Result<Fleet> {
        let board = Arc::new(Board {
            ready: AtomicUsize::new(0),
            got: (0..spec.updates).map(|_| AtomicUsize::new(0)).collect(),
            last: (0..if spec.tally { size } else { 0 }).map(|_| Mutex::default()).collect(),
            error: Mutex::new(None),
        });
        let opening = Arc::new(Semaphore::new(OPENING));
        let mut stops = Vec::with_capacity(size);
        let tasks = (0..size)
            .map(|i| {
                let (spec, board, opening) = (spec.clone(), board.clone(), opening.clone());
                let (stop, stop_rx) = oneshot::channel();
                stops.push(stop);
                tokio::spawn(async move {
                    let got = subscriber(&spec, i, &board, opening, stop_rx).await;
                    if let Err(e) = &got {
                        if let Ok(mut first) = board.error.lock() {
                            first.get_or_insert_with(|| format!("subscriber {i}: {e:#}"));
                        }
                    }
                    got
                })
            })
            .collect();
        let fleet = Fleet { size, board, tasks, stops };
        let started = Instant::now();
        while fleet.board.ready.load(Ordering::SeqCst) < size {
            if let Some(e) = fleet.board.error() {
                bail!("opening {size} subscribers: {e}");
            }
            ensure!(
                started.elapsed() < OPEN_TIMEOUT,
                "only {} of {size} subscribers started in {OPEN_TIMEOUT:?}",
                fleet.board.ready.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(fleet)
    }

    /// Waits until update `k` (0-based) reached every subscriber.
    pub async fn wait_delivered(&self, k: usize, timeout: Duration) -> anyhow::Result<()> {
        let counter = self.board.got.get(k).ok_or_else(|| anyhow!("update {k} was not expected"))?;
        let started = Instant::now();
        while counter.load(Ordering::SeqCst) < self.size {
            if let Some(e) = self.board.error() {
                bail!("{e}");
            }
            ensure!(
                started.elapsed() < timeout,
                "update {} reached {} of {} subscribers in {timeout:?}",
                k + 1,
                counter.load(Ordering::SeqCst),
                self.size
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(())
    }

    /// Waits until every subscriber's last update has `Version` `version` (a tally fleet).
    pub async fn wait_version(&self, version: &str, timeout: Duration) -> anyhow::Result<()> {
        ensure!(self.board.last.len() == self.size, "wait_version needs a tally fleet");
        let started = Instant::now();
        loop {
            if let Some(e) = self.board.error() {
                bail!("{e}");
            }
            let behind = self.board.last.iter().filter(|l| l.lock().map_or(true, |l| l.as_str() != version)).count();
            if behind == 0 {
                return Ok(());
            }
            ensure!(
                started.elapsed() < timeout,
                "{behind} of {} subscribers had not received version {version} in {timeout:?}",
                self.size
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Closes every connection; returns what each subscriber received, in order.
    pub async fn close(self) -> anyhow::Result<Vec<Received>> {
        for stop in self.stops {
            let _ = stop.send(());
        }
        let mut all = Vec::with_capacity(self.tasks.len());
        for task in self.tasks {
            all.push(task.await.context("a subscriber task panicked")??);
        }
        Ok(all)
    }
}

/// One subscriber: connect, send the request, read until told to stop.
async fn subscriber(
    spec: &Spec,
    index: usize,
    board: &Board,
    opening: Arc<Semaphore>,
    mut stop: oneshot::Receiver<()>,
) -> anyhow::Result<Received> {
    let mut permit = Some(opening.acquire_owned().await.context("opening")?);
    let mut stream = TcpStream::connect(spec.addr).await.with_context(|| format!("connecting to {}", spec.addr))?;
    stream.set_nodelay(true)?;
    if !spec.request.is_empty() {
        let request = match spec.numbered {
            // `{i}` in the request is this subscriber's index (each watches its own folder).
            true => String::from_utf8_lossy(&spec.request).replace("{i}", &index.to_string()).into_bytes(),
            false => spec.request.to_vec(),
        };
        stream.write_all(&request).await.context("sending the request")?;
    }
    let mut parser = Parser::new(spec.start, index == 0 && !spec.tally, spec.tally);
    let mut got = Received {
        times: Vec::with_capacity(spec.updates),
        versions: Vec::with_capacity(spec.updates),
        ..Received::default()
    };
    let mut buf = vec![0u8; READ_BUF];
    loop {
        if parser.started && permit.take().is_some() {
            board.ready.fetch_add(1, Ordering::SeqCst);
        }
        let n = tokio::select! {
            n = stream.read(&mut buf) => n.context("reading the stream")?,
            _ = &mut stop => break,
        };
        let at = Instant::now();
        if n == 0 {
            bail!("the server closed the stream after {} updates", got.times.len());
        }
        let before = got.times.len();
        let counted = got.count;
        parser.feed(&buf[..n], at, &mut got)?;
        if spec.tally {
            if let (true, Some(Ok(mut last))) = (got.count > counted, board.last.get(index).map(Mutex::lock)) {
                last.clone_from(&got.last_version);
            }
            continue;
        }
        ensure!(got.times.len() <= spec.updates, "more updates than the {} expected", spec.updates);
        for k in before..got.times.len() {
            if let Some(counter) = board.got.get(k) {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    Ok(got)
}

/// The soft limit on open files of this process (children inherit it).
pub fn open_files_limit() -> anyhow::Result<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").context("reading /proc/self/limits")?;
    let line =
        limits.lines().find(|l| l.starts_with("Max open files")).ok_or_else(|| anyhow!("no open files limit"))?;
    let soft = line.trim_start_matches("Max open files").split_whitespace().next().unwrap_or("");
    Ok(if soft == "unlimited" { u64::MAX } else { soft.parse().context("parsing the open files limit")? })
}

/// Fails with what to run when `connections` sockets (plus slack) would exceed the limit.
pub fn check_open_files(connections: usize) -> anyhow::Result<()> {
    let needed = connections as u64 + 1024;
    let have = open_files_limit()?;
    ensure!(
        have >= needed,
        "{connections} connections need about {needed} open files, the limit is {have}: run `ulimit -n {needed}` \
         (or `prlimit --nofile={needed} --pid $$`) in this shell first (the server inherits it)"
    );
    Ok(())
}
