//! B1, sequential replay: the automerge-paper trace (259,778 one-character edits) sent as one
//! PUT per edit, each with the previous PUT's Version as `Parents`, over one keep-alive
//! connection to a durable `plait serve`; then the same trace as multi-patch PUTs of 1,000
//! edits each.
//!
//! Measured in the same run:
//! - server CPU per PUT, against R_http (the same client sending the same bytes to the no-op
//!   handler on the same HTTP stack, CPU per request) plus R_dt (bare diamond-types applying
//!   the same edits in process, CPU per edit). Target: ≤ 1.5 × (R_http + R_dt);
//! - batched server CPU per edit, against R_dt per edit. Target: ≤ 3 ×;
//! - R_sync, the durability floor: RocksDB alone writing the same records synced, one thread
//!   (`rocks_ref`), CPU per write. R_http syncs nothing, but every PUT here is synced before
//!   its 2xx, so R_http + R_dt + R_sync is the least any durable server pays per PUT.
//!
//! Both documents must end with the trace's text (a `--smoke` prefix: that prefix's text).
//! The one-edit-per-PUT document is handed to B3 (cold open) when it runs later in the same
//! invocation, which saves replaying it again.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure};

use super::client::Conn;
use super::procs::{cpu_ns, thread_cpu_ns, ServerProc};
use super::replay::{self, Put, SeqEdit};
use super::report::{Row, Target};
use super::rocks_ref::sync_cpu_per_write;
use super::{Ctx, Server};
use plait::text::reference::{self, Replayed};

/// The trace.
pub const TRACE: &str = "automerge-paper";
/// Edits replayed at smoke size (every PUT is synced, a few ms each).
pub const SMOKE_EDITS: usize = 400;
/// Edits per batched PUT (the figure; smaller at smoke size).
const PER_PUT: usize = 1000;
const SMOKE_PER_PUT: usize = 100;
/// The references are repeated until they have run this long (wall), for a stable CPU
/// reading (the kernel accounts thread CPU time in ~4 ms ticks).
const REFERENCE_MIN: Duration = Duration::from_millis(500);
const SMOKE_REFERENCE_MIN: Duration = Duration::from_millis(40);
/// Synced RocksDB writes behind R_sync.
const SYNC_WRITES: usize = 2000;
const SMOKE_SYNC_WRITES: usize = 50;

/// A document built the way B1 builds it, and the server holding it.
pub struct Built {
    /// The server (B3 restarts it).
    pub server: Server,
    /// The document's path.
    pub doc: String,
    /// The agent its versions are numbered under (`<agent>-<seq>`).
    pub agent: &'static str,
}

/// B1's document, handed to B3 when both run in one invocation; otherwise dropped with the
/// context, which stops its server.
#[derive(Default)]
pub struct Handover(std::sync::Mutex<Option<Built>>);

impl Handover {
    /// Keeps `built` for a later scenario.
    pub fn put(&self, built: Built) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(built);
        }
    }

    /// Takes what B1 left, if anything.
    pub fn take(&self) -> Option<Built> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// Runs `work` on this thread until it has taken `min` of wall time (at least once); returns
/// its last result and its CPU time per run (wall time if CPU is unreadable).
pub fn per_run<T>(min: Duration, mut work: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<(T, Duration)> {
    let (cpu0, wall0) = (thread_cpu_ns(), Instant::now());
    let mut out = work()?;
    let mut runs = 1u32;
    while wall0.elapsed() < min {
        out = work()?;
        runs += 1;
    }
    let spent = match (cpu0, thread_cpu_ns()) {
        (Some(a), Some(b)) => Duration::from_nanos(b.saturating_sub(a)),
        _ => wall0.elapsed(),
    };
    Ok((out, spent / runs))
}

/// How long [`per_run`] repeats a reference.
pub fn reference_min(ctx: &Ctx) -> Duration {
    if ctx.smoke {
        SMOKE_REFERENCE_MIN
    } else {
        REFERENCE_MIN
    }
}

/// R_dt: the edits replayed by bare diamond-types as a server must (remote ops on the previous
/// version, branch merged after each); checked against `expected`. Returns the history and
/// its CPU time per replay.
pub fn reference(min: Duration, edits: &[SeqEdit], expected: &str) -> anyhow::Result<(Replayed, Duration)> {
    let prepared = reference::prepare(edits)?;
    let (replayed, cpu) = per_run(min, || Ok(prepared.replay_sequential()))?;
    ensure!(replayed.text() == expected, "diamond-types' replay does not end at the trace's text");
    Ok((replayed, cpu))
}

/// GETs `path` and checks its text.
pub async fn check_text(conn: &mut Conn, path: &str, expected: &str) -> anyhow::Result<()> {
    let r = conn.request("GET", path, &[], b"").await?;
    ensure!(r.status == 200, "GET {path} answered {}", r.status);
    if r.body != expected.as_bytes() {
        bail!("GET {path}: {} bytes, not the {} bytes of the replayed trace", r.body.len(), expected.len());
    }
    Ok(())
}

/// Sends `puts` to `path` on a fresh connection (`check_version`: each answer must carry the
/// PUT's own Version, which the no-op server does not); returns the server's CPU and the wall
/// time.
async fn replay_to(
    addr: std::net::SocketAddr,
    pid: u32,
    path: &str,
    puts: &[Put],
    check_version: bool,
) -> anyhow::Result<(Duration, Duration)> {
    let mut conn = Conn::connect(addr).await?;
    let (cpu0, wall0) = (cpu_ns(pid)?, Instant::now());
    replay::send_all(&mut conn, path, puts, check_version).await?;
    let wall = wall0.elapsed();
    Ok((Duration::from_nanos(cpu_ns(pid)?.saturating_sub(cpu0)), wall))
}

fn us(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e6 / n.max(1) as f64
}

/// Runs B1.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let (limit, per_put) = if ctx.smoke { (Some(SMOKE_EDITS), SMOKE_PER_PUT) } else { (None, PER_PUT) };
    let trace = replay::load(&ctx.traces, TRACE, limit)?;
    let n = trace.edits.len();
    let (_, dt_cpu) = reference(reference_min(ctx), &trace.edits, &trace.expected)?;
    let prepared = reference::prepare(&trace.edits)?;
    let (_, dt_local_cpu) = per_run(reference_min(ctx), || Ok(prepared.replay_local()))?;
    let (r_dt, r_dt_local) = (us(dt_cpu, n), us(dt_local_cpu, n));
    tracing::info!(edits = n, r_dt_us = r_dt, "B1: reference replayed");
    let sync_writes = if ctx.smoke { SMOKE_SYNC_WRITES } else { SYNC_WRITES };
    let r_sync = sync_cpu_per_write(1, sync_writes).await?;

    let sequential = replay::sequential_puts("b1", &trace.edits);
    let batched = replay::batched_puts("b1b", &trace.edits, per_put)?;
    let patches: usize = batched.iter().map(|p| p.patches).sum();

    let server = ctx.server(&[])?;
    let Some(pid) = server.pid() else {
        bail!("B1 needs the server's CPU time: pass --server-pid with --url");
    };
    let doc = ctx.doc("b1");
    let (seq_cpu, seq_wall) = replay_to(server.addr(), pid, &doc, &sequential, true).await?;
    let mut conn = Conn::connect(server.addr()).await?;
    check_text(&mut conn, &doc, &trace.expected).await?;
    tracing::info!(puts = n, seconds = seq_wall.as_secs_f64(), "B1: sequential replay done");

    let noop = ServerProc::noop()?;
    let (http_cpu, _) = replay_to(noop.addr, noop.pid(), &doc, &sequential, false).await?;
    drop(noop);

    drop(conn);
    ctx.handover.put(Built { server, doc, agent: "b1" });

    // The batched variant on a server of its own (so B3's data dir holds only B1's document).
    let server = ctx.server(&[])?;
    let pid = server.pid().ok_or_else(|| anyhow!("no server pid"))?;
    let bdoc = ctx.doc("b1-batched");
    let (batch_cpu, batch_wall) = replay_to(server.addr(), pid, &bdoc, &batched, true).await?;
    check_text(&mut Conn::connect(server.addr()).await?, &bdoc, &trace.expected).await?;

    let (per_put_cpu, r_http) = (us(seq_cpu, n), us(http_cpu, n));
    let scenario = "B1";
    let batched_scenario = format!("B1 batched ({per_put}/PUT)");
    Ok(vec![
        Row {
            scenario: scenario.into(),
            metric: format!("server CPU per PUT ({n} one-edit PUTs, Parents = previous, one connection)"),
            value: per_put_cpu,
            unit: "µs",
            reference: Some((format!("R_http {r_http:.1} + R_dt {r_dt:.2}"), r_http + r_dt)),
            target: Target::AtMost(1.5),
        },
        Row::info(scenario, "R_http: no-op handler CPU per request (same bytes)", r_http, "µs"),
        Row::info(scenario, "R_dt: diamond-types CPU per edit (add_operations_at + merge)", r_dt, "µs"),
        Row::info(scenario, "R_sync: RocksDB alone, one synced write of the same records, CPU", r_sync, "µs"),
        Row {
            scenario: scenario.into(),
            metric: "server CPU per PUT against the durable floor (every PUT synced before its 2xx)".into(),
            value: per_put_cpu,
            unit: "µs",
            reference: Some((
                format!("R_http {r_http:.1} + R_dt {r_dt:.2} + R_sync {r_sync:.1}"),
                r_http + r_dt + r_sync,
            )),
            target: Target::None,
        },
        Row::info(scenario, "diamond-types CPU per edit, local edits (Branch floor)", r_dt_local, "µs"),
        Row::info(
            scenario,
            "sequential PUTs per second (wall, each synced)",
            n as f64 / seq_wall.as_secs_f64(),
            "PUT/s",
        ),
        Row {
            scenario: batched_scenario.clone(),
            metric: format!("server CPU per edit ({} PUTs, {patches} patches)", batched.len()),
            value: us(batch_cpu, n),
            unit: "µs",
            reference: Some(("R_dt per edit".into(), r_dt)),
            target: Target::AtMost(3.0),
        },
        Row::info(&batched_scenario, "server CPU per batched PUT", us(batch_cpu, batched.len()) / 1000.0, "ms"),
        Row::info(&batched_scenario, "edits per second (wall)", n as f64 / batch_wall.as_secs_f64(), "edits/s"),
    ])
}
