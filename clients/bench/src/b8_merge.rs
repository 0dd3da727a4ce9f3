//! B8, merge cost: the cost of a write must not grow with the document's history when the
//! writes are concurrent with each other.
//!
//! Two patterns, each with 8 writers on their own connections, writing two characters per PUT at
//! a random position of the text they know:
//! - **independent**: writers that never see each other's writes (each PUT's `Parents` is the
//!   writer's own previous PUT), as offline or unsubscribed clients write;
//! - **overlapping**: a steady stream of overlapping concurrent writes (each PUT's `Parents` is
//!   the version the server answered the writer's previous PUT with, which the other writers
//!   have moved on from meanwhile).
//!
//! The server's CPU per write is measured over a window of writes right after the history
//! reaches each checkpoint (1k, 10k and 50k writes); flat means the last window costs what the
//! first does (target: ≤ 1.5×). Then the server is killed (SIGKILL) and restarted, and the first
//! full GET is timed against the reference of the same history: diamond-types decoding its
//! `ENCODE_FULL` bytes and checking out the tip, in process, run alternately with the restarts
//! (target: ≤ 2× in wall time; the server's CPU for the GET is compared with the reference's).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context};

use super::client::Conn;
use super::procs::{cpu_ns, thread_cpu_ns};
use super::report::{Row, Target};
use super::{Ctx, Server};
use plait::text::reference::decode_and_checkout;
use plait::text::reference_concurrent::{encode_concurrent, ReplayTxn};

/// Writers at once.
const WRITERS: usize = 8;
/// Writes measured after each checkpoint.
const WINDOW: usize = 500;
const SMOKE_WINDOW: usize = 20;
const SMOKE_CHECKPOINTS: [usize; 2] = [40, 120];
/// Restarts for the cold GET, each after a run of its reference (the medians are reported).
const COLD_RUNS: usize = 3;
/// Characters each write inserts.
const WRITE: &str = "xy";

/// How a writer picks its `Parents`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pattern {
    Independent,
    Overlapping,
}

impl Pattern {
    fn name(self) -> &'static str {
        match self {
            Pattern::Independent => "independent writers",
            Pattern::Overlapping => "overlapping writers",
        }
    }
}

/// One acknowledged write, for the reference history.
struct Sent {
    writer: usize,
    id: String,
    parents: Vec<String>,
    pos: usize,
}

/// What the writers share: the count of acknowledged writes, the server CPU readings at the
/// windows' edges, and the writes sent.
struct Shared {
    pid: u32,
    marks: Vec<usize>,
    readings: Mutex<HashMap<usize, u64>>,
    sent: Mutex<Vec<Sent>>,
    done: std::sync::atomic::AtomicUsize,
}

impl Shared {
    /// Counts one acknowledged write and reads the server's CPU when it is a window's edge.
    fn count(&self) -> anyhow::Result<usize> {
        let n = self.done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if self.marks.contains(&n) {
            let cpu = cpu_ns(self.pid)?;
            self.readings.lock().map_err(|_| anyhow!("poisoned"))?.insert(n, cpu);
        }
        Ok(n)
    }
}

/// A small xorshift generator: positions must be reproducible from run to run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// A version header value from ids.
fn header(ids: &[String]) -> String {
    ids.iter().map(|id| format!("\"{id}\"")).collect::<Vec<_>>().join(", ")
}

/// The ids of a `Version` header the server sent (plain ids: these writers' agents are `wN`).
fn ids(value: &str) -> Vec<String> {
    value.split(',').map(|s| s.trim().trim_matches('"').to_string()).filter(|s| !s.is_empty()).collect()
}

async fn writer(
    addr: SocketAddr,
    doc: String,
    w: usize,
    pattern: Pattern,
    total: usize,
    shared: Arc<Shared>,
) -> anyhow::Result<()> {
    let mut conn = Conn::connect(addr).await?;
    let mut rng = Rng(0x9E37_79B9 + w as u64);
    let (mut events, mut own_writes, mut parents): (u64, usize, Vec<String>) = (0, 0, Vec::new());
    while shared.done.load(std::sync::atomic::Ordering::SeqCst) < total {
        // The text this writer's parents hold has at least its own writes' characters.
        let pos = rng.below(own_writes * WRITE.len() + 1);
        let id = format!("w{w}-{}", events + WRITE.len() as u64 - 1);
        let (version, parents_value, range) =
            (header(std::slice::from_ref(&id)), header(&parents), format!("text [{pos}:{pos}]"));
        let headers =
            [("Version", version.as_str()), ("Parents", parents_value.as_str()), ("Content-Range", range.as_str())];
        let r = conn.request("PUT", &doc, &headers, WRITE.as_bytes()).await?;
        ensure!(r.status == 200, "B8: PUT {id} answered {} {}", r.status, String::from_utf8_lossy(&r.body));
        shared.sent.lock().map_err(|_| anyhow!("poisoned"))?.push(Sent {
            writer: w,
            id: id.clone(),
            parents: parents.clone(),
            pos,
        });
        shared.count()?;
        events += WRITE.len() as u64;
        own_writes += 1;
        parents = match pattern {
            Pattern::Independent => vec![id],
            Pattern::Overlapping => {
                ids(r.header("version").ok_or_else(|| anyhow!("B8: a PUT answer without Version"))?)
            }
        };
    }
    Ok(())
}

/// The writes in an order where every write comes after its parents, as reference transactions.
fn reference_txns(sent: &[Sent]) -> anyhow::Result<Vec<ReplayTxn>> {
    let index: HashMap<&str, usize> = sent.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
    let mut order: Vec<usize> = Vec::with_capacity(sent.len());
    let mut placed: Vec<Option<usize>> = vec![None; sent.len()];
    let mut pending: Vec<usize> = (0..sent.len()).collect();
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|&i| {
            let ready = sent[i].parents.iter().all(|p| index.get(p.as_str()).is_some_and(|&j| placed[j].is_some()));
            if ready {
                placed[i] = Some(order.len());
                order.push(i);
            }
            !ready
        });
        ensure!(pending.len() < before, "B8: a write names a parent that was never sent");
    }
    order
        .iter()
        .map(|&i| {
            let s = &sent[i];
            let parents = s
                .parents
                .iter()
                .map(|p| index.get(p.as_str()).and_then(|&j| placed[j]).ok_or_else(|| anyhow!("B8: unplaced parent")))
                .collect::<anyhow::Result<Vec<usize>>>()?;
            Ok(ReplayTxn { agent: s.writer, parents, patches: vec![(s.pos, 0, WRITE.to_string())] })
        })
        .collect()
}

/// One pattern: the windows' CPU per write, then the cold GET and its reference.
async fn pattern(ctx: &Ctx, pattern: Pattern, checkpoints: &[usize], window: usize) -> anyhow::Result<Vec<Row>> {
    let mut server = ctx.server(&[])?;
    let Some(pid) = server.pid() else { bail!("B8 needs the server's CPU time: pass --server-pid with --url") };
    let doc = ctx.doc(if pattern == Pattern::Independent { "b8-independent" } else { "b8-overlapping" });
    let total = checkpoints.iter().max().copied().unwrap_or(0) + window;
    let marks = checkpoints.iter().flat_map(|&c| [c, c + window]).collect();
    let shared = Arc::new(Shared {
        pid,
        marks,
        readings: Mutex::new(HashMap::new()),
        sent: Mutex::new(Vec::new()),
        done: Default::default(),
    });
    let started = Instant::now();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(server.addr(), doc.clone(), w, pattern, total, shared.clone())))
        .collect();
    for t in tasks {
        t.await.context("a B8 writer panicked")??;
    }
    let writes = shared.done.load(std::sync::atomic::Ordering::SeqCst);
    tracing::info!(pattern = pattern.name(), writes, seconds = started.elapsed().as_secs_f64(), "B8: writes done");
    let readings = shared.readings.lock().map_err(|_| anyhow!("poisoned"))?.clone();
    let scenario = format!("B8 {}", pattern.name());
    let mut rows = Vec::new();
    let mut per_write = Vec::new();
    for &c in checkpoints {
        let (a, b) = (readings.get(&c), readings.get(&(c + window)));
        let (Some(a), Some(b)) = (a, b) else { bail!("B8: no CPU reading around write {c}") };
        let us = Duration::from_nanos(b.saturating_sub(*a)).as_secs_f64() * 1e6 / window as f64;
        per_write.push((c, us));
        rows.push(Row::info(&scenario, &format!("server CPU per write, writes {c}–{}", c + window), us, "µs"));
    }
    if let (Some(&(first, first_us)), Some(&(last, last_us))) = (per_write.first(), per_write.last()) {
        rows.push(Row {
            scenario: scenario.clone(),
            metric: format!("server CPU per write after {last} writes"),
            value: last_us,
            unit: "µs",
            reference: Some((format!("the same after {first} writes"), first_us)),
            target: Target::AtMost(1.5),
        });
    }
    if ctx.external.is_some() {
        tracing::warn!("B8's cold open skipped: a --url server cannot be restarted");
        return Ok(rows);
    }
    let sent = std::mem::take(&mut *shared.sent.lock().map_err(|_| anyhow!("poisoned"))?);
    let txns = reference_txns(&sent)?;
    let bytes = encode_concurrent(&txns).map_err(|e| anyhow!("B8 reference: {e}"))?;
    let cold = cold_gets(&mut server, &doc, writes, &bytes).await?;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    rows.push(Row {
        scenario: scenario.clone(),
        metric: format!("cold open after kill -9 ({writes} writes): first full GET, wall, median of {COLD_RUNS}"),
        value: ms(cold.server_wall),
        unit: "ms",
        reference: Some(("DT decode + checkout (tip), wall".into(), ms(cold.reference_wall))),
        target: Target::AtMost(2.0),
    });
    rows.push(Row {
        scenario: scenario.clone(),
        metric: "server CPU of that GET, median".into(),
        value: ms(cold.server_cpu),
        unit: "ms",
        reference: Some(("DT decode + checkout (tip), CPU".into(), ms(cold.reference_cpu))),
        target: Target::None,
    });
    Ok(rows)
}

/// The medians of the cold GETs and of their reference runs.
struct Cold {
    server_wall: Duration,
    server_cpu: Duration,
    reference_wall: Duration,
    reference_cpu: Duration,
}

/// Restarts the server (SIGKILL) `COLD_RUNS` times and times its first GET, each time right
/// after a run of the reference (diamond-types decoding `bytes`, the same history, and checking
/// out its tip, in process). Alternating them puts both under the same load of this shared
/// machine: a wall time measured while other processes compete for the cores is inflated by
/// them, and a reference measured as CPU time is not, so the wall time is compared with the
/// reference's wall time and the server's CPU with the reference's CPU.
async fn cold_gets(server: &mut Server, doc: &str, writes: usize, bytes: &[u8]) -> anyhow::Result<Cold> {
    let (mut walls, mut cpus, mut ref_walls, mut ref_cpus) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..COLD_RUNS {
        let (cpu0, wall0) = (thread_cpu_ns().ok_or_else(|| anyhow!("no thread CPU clock"))?, Instant::now());
        let text = decode_and_checkout(bytes, None)?;
        ref_walls.push(wall0.elapsed());
        ref_cpus.push(Duration::from_nanos(thread_cpu_ns().unwrap_or(cpu0).saturating_sub(cpu0)));
        ensure!(text.chars().count() == writes * WRITE.len(), "B8: the reference text has the wrong length");
        ensure!(server.restart()?, "B8 cannot restart this server");
        let pid = server.pid().ok_or_else(|| anyhow!("the restarted server has no pid"))?;
        let mut conn = Conn::connect(server.addr()).await?;
        let (cpu0, wall0) = (cpu_ns(pid)?, Instant::now());
        let r = conn.request("GET", doc, &[], b"").await?;
        walls.push(wall0.elapsed());
        cpus.push(Duration::from_nanos(cpu_ns(pid)?.saturating_sub(cpu0)));
        ensure!(
            r.status == 200 && r.body.len() == writes * WRITE.len(),
            "B8: the cold GET got {} with {} bytes",
            r.status,
            r.body.len()
        );
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    Ok(Cold {
        server_wall: median(walls),
        server_cpu: median(cpus),
        reference_wall: median(ref_walls),
        reference_cpu: median(ref_cpus),
    })
}

/// Runs B8.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let (checkpoints, window) = match ctx.smoke {
        true => (SMOKE_CHECKPOINTS.to_vec(), SMOKE_WINDOW),
        false => (ctx.merge_checkpoints.clone(), WINDOW),
    };
    ensure!(!checkpoints.is_empty(), "B8 needs at least one checkpoint");
    let mut rows = pattern(ctx, Pattern::Independent, &checkpoints, window).await?;
    rows.extend(pattern(ctx, Pattern::Overlapping, &checkpoints, window).await?);
    Ok(rows)
}
