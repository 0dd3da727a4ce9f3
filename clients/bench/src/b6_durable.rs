//! B6, durable throughput: 64 concurrent writers, one document each, every PATCH synced to
//! disk before its 2xx (the server's default). Reference: RocksDB's own synced write rate with
//! the same number of threads (its group commit), writing batches shaped like the server's
//! (log record, the history listing's open block, bookkeeping) to a temp dir on the same disk.
//! Target: writes/s ≥ 0.8 × the RocksDB rate.
//!
//! Also measured, to tell a slow server from a full machine: the no-op handler's CPU per PATCH
//! under the same writers, RocksDB's own CPU per synced write, and the load generator's CPU
//! per write. Their sum is what any server on this HTTP stack and disk spends at least per
//! write, so the machine's cores divided by it bound the rate any server could reach here.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};

use super::client::Conn;
use super::procs::{cpu_ns, own_cpu_ns, ServerProc};
use super::report::{Row, Target};
use super::rocks_ref::{synced_writes, Load};
use super::Ctx;

/// Concurrent writers (and documents) at full size.
pub(crate) const WRITERS: usize = 64;
/// Smoke size: writers × writes each.
pub(crate) const SMOKE_WRITERS: usize = 8;
pub(crate) const SMOKE_WRITES: usize = 20;
/// How long each side is measured at full size.
pub(crate) const FULL_DURATION: Duration = Duration::from_secs(10);
/// Writes per writer before measuring (documents created and loaded, connections warm).
pub(crate) const WARM_UP: usize = 3;
/// How long the no-op handler is measured at full size (its CPU per request is steady).
const NOOP_DURATION: Duration = Duration::from_secs(3);
/// Longest wait for one acknowledgement.
const STALL: Duration = Duration::from_secs(30);

/// The text writer `w` appends with its `n`th write: about as much as a typing burst.
fn line(w: usize, n: usize) -> String {
    format!("writer {w:02} write {n:06}: the quick brown fox\n")
}

/// What [`server_writes`] did.
pub(crate) struct Writes {
    /// Writes acknowledged per writer.
    pub counts: Vec<usize>,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Every write's round trip (sent to acknowledged, i.e. durable), ms, unsorted.
    pub latencies_ms: Vec<f64>,
}

/// Each writer appends lines to its own document over one connection.
pub(crate) async fn server_writes(
    addr: SocketAddr,
    docs: &[String],
    load: Load,
    first: usize,
) -> anyhow::Result<Writes> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (w, doc) in docs.iter().enumerate() {
        let doc = doc.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::connect(addr).await?;
            let peer = format!("w{w}");
            let mut latencies = Vec::new();
            while load.more(latencies.len(), started) {
                let body = line(w, first + latencies.len());
                let headers = [("content-range", "text [-0:-0]"), ("peer", peer.as_str())];
                let sent = Instant::now();
                let r = tokio::time::timeout(STALL, conn.request("PATCH", &doc, &headers, body.as_bytes()))
                    .await
                    .with_context(|| format!("writer {w}: no acknowledgement in {STALL:?}"))??;
                ensure!(r.status == 200 && r.header("version").is_some(), "writer {w}: PATCH answered {}", r.status);
                latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
            }
            anyhow::Ok(latencies)
        }));
    }
    let (mut counts, mut latencies_ms) = (Vec::new(), Vec::new());
    for t in tasks {
        let one = t.await??;
        counts.push(one.len());
        latencies_ms.extend(one);
    }
    Ok(Writes { counts, elapsed: started.elapsed(), latencies_ms })
}

/// Every acknowledged write is in its document, in order (`counts` after `WARM_UP` each).
pub(crate) async fn check_docs(addr: SocketAddr, docs: &[String], counts: &[usize]) -> anyhow::Result<()> {
    let mut conn = Conn::connect(addr).await?;
    for (w, (doc, &n)) in docs.iter().zip(counts).enumerate() {
        let r = conn.request("GET", doc, &[], b"").await?;
        let expected: String = (0..WARM_UP + n).map(|i| line(w, i)).collect();
        if r.status != 200 || r.body != expected.as_bytes() {
            bail!("{doc}: after {} acknowledged writes the text is not every line in order", WARM_UP + n);
        }
    }
    Ok(())
}

/// Runs B6.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let load = if ctx.smoke {
        Load { writers: SMOKE_WRITERS, per_writer: SMOKE_WRITES, duration: None }
    } else {
        Load { writers: WRITERS, per_writer: usize::MAX, duration: Some(FULL_DURATION) }
    };
    let rocks = tokio::task::spawn_blocking(move || synced_writes(load, WARM_UP)).await??;
    let reference = rocks.rate();

    // The HTTP floor under the same load: the same writers against the no-op handler.
    let noop = ServerProc::noop()?;
    let noop_docs: Vec<String> = (0..load.writers).map(|w| ctx.doc(&format!("b6-noop-{w:02}"))).collect();
    let noop_load = Load { duration: load.duration.map(|_| NOOP_DURATION), ..load };
    server_writes(noop.addr, &noop_docs, Load { per_writer: WARM_UP, duration: None, ..load }, 0).await?;
    let noop_before = cpu_ns(noop.pid())?;
    let noop_counts = server_writes(noop.addr, &noop_docs, noop_load, WARM_UP).await?.counts;
    let noop_cpu = cpu_ns(noop.pid())?.saturating_sub(noop_before);
    let noop_per_write = noop_cpu as f64 / 1000.0 / noop_counts.iter().sum::<usize>().max(1) as f64;
    drop(noop);

    let server = ctx.server(&[])?;
    let docs: Vec<String> = (0..load.writers).map(|w| ctx.doc(&format!("b6-{w:02}"))).collect();
    server_writes(server.addr(), &docs, Load { per_writer: WARM_UP, duration: None, ..load }, 0).await?;
    let cpu_before = server.pid().map(cpu_ns).transpose()?;
    let own_before = own_cpu_ns()?;
    let Writes { counts, elapsed, .. } = server_writes(server.addr(), &docs, load, WARM_UP).await?;
    let own_cpu = own_cpu_ns()?.saturating_sub(own_before);
    let cpu_after = server.pid().map(cpu_ns).transpose()?;
    let total: usize = counts.iter().sum();
    let rate = total as f64 / elapsed.as_secs_f64();

    check_docs(server.addr(), &docs, &counts).await?;
    tracing::info!(writers = load.writers, total, ?elapsed, rate, reference, "B6 done");

    let scenario = format!("B6 ({} writers, {} docs)", load.writers, load.writers);
    let mut rows = vec![Row {
        scenario: scenario.clone(),
        metric: "synced PATCHes per second".into(),
        value: rate,
        unit: "writes/s",
        reference: Some((format!("RocksDB synced writes, {} threads", load.writers), reference)),
        target: Target::AtLeast(0.8),
    }];
    // On a small machine the server and the load generator share the cores: say how busy
    // both were, since a CPU-bound run cannot reach the disk's group-commit rate.
    let cores = |ns: u64| ns as f64 / 1e9 / elapsed.as_secs_f64();
    if let (Some(a), Some(b)) = (cpu_before, cpu_after) {
        let per_write = b.saturating_sub(a) as f64 / 1000.0 / total.max(1) as f64;
        rows.push(Row::info(&scenario, "server CPU per synced PATCH", per_write, "µs"));
        rows.push(Row::info(&scenario, "server CPU busy (cores)", cores(b.saturating_sub(a)), "cores"));
    }
    let machine = std::thread::available_parallelism().map_or(0, |n| n.get());
    rows.push(Row::info(&scenario, &format!("load generator CPU busy (of {machine} cores)"), cores(own_cpu), "cores"));
    // What any server on this stack and disk could reach here: every write needs at least the
    // no-op handler's CPU, RocksDB's own CPU for a synced write, and the load generator's CPU,
    // and the machine's cores are all there is.
    let generator_per_write = own_cpu as f64 / 1000.0 / total.max(1) as f64;
    let floor = noop_per_write + rocks.cpu_per_write_us() + generator_per_write;
    rows.push(Row::info(
        &scenario,
        "RocksDB reference: CPU per synced write (its own threads)",
        rocks.cpu_per_write_us(),
        "µs",
    ));
    rows.push(Row::info(&scenario, "no-op handler CPU per PATCH (same writers, same bytes)", noop_per_write, "µs"));
    rows.push(Row::info(&scenario, "load generator CPU per PATCH", generator_per_write, "µs"));
    rows.push(Row {
        scenario: scenario.clone(),
        metric: format!(
            "CPU-bound ceiling: {machine} cores ÷ (no-op handler + RocksDB + load generator CPU per write, {floor:.1} µs)"
        ),
        value: machine as f64 * 1e6 / floor.max(f64::MIN_POSITIVE),
        unit: "writes/s",
        reference: Some((format!("RocksDB synced writes, {} threads", load.writers), reference)),
        target: Target::None,
    });
    Ok(rows)
}
