//! B6, durable throughput: 64 concurrent writers, one document each, every PATCH synced to
//! disk before its 2xx (the server's default). Reference: RocksDB's own synced write rate with
//! the same number of threads (its group commit), writing batches shaped like the server's
//! (log record, history entry, id index, bookkeeping) to a temp dir on the same disk.
//! Target: writes/s ≥ 0.8 × the RocksDB rate.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};

use super::client::Conn;
use super::procs::{cpu_ns, own_cpu_ns};
use super::report::{Row, Target};
use super::Ctx;

/// Concurrent writers (and documents) at full size.
const WRITERS: usize = 64;
/// Smoke size: writers × writes each.
const SMOKE_WRITERS: usize = 8;
const SMOKE_WRITES: usize = 20;
/// How long each side is measured at full size.
const FULL_DURATION: Duration = Duration::from_secs(10);
/// Writes per writer before measuring (documents created and loaded, connections warm).
const WARM_UP: usize = 3;
/// Longest wait for one acknowledgement.
const STALL: Duration = Duration::from_secs(30);

/// How much each side writes: a count per writer, or as many as fit in a duration.
#[derive(Clone, Copy)]
struct Load {
    writers: usize,
    per_writer: usize,
    duration: Option<Duration>,
}

impl Load {
    fn more(&self, done: usize, started: Instant) -> bool {
        done < self.per_writer && self.duration.is_none_or(|d| started.elapsed() < d)
    }
}

/// The text writer `w` appends with its `n`th write: about as much as a typing burst.
fn line(w: usize, n: usize) -> String {
    format!("writer {w:02} write {n:06}: the quick brown fox\n")
}

/// Each writer appends lines to its own document over one connection. Returns the writes
/// acknowledged per writer and the wall time.
async fn server_writes(
    addr: SocketAddr,
    docs: &[String],
    load: Load,
    first: usize,
) -> anyhow::Result<(Vec<usize>, Duration)> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (w, doc) in docs.iter().enumerate() {
        let doc = doc.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::connect(addr).await?;
            let peer = format!("w{w}");
            let mut done = 0;
            while load.more(done, started) {
                let body = line(w, first + done);
                let headers = [("content-range", "text [-0:-0]"), ("peer", peer.as_str())];
                let r = tokio::time::timeout(STALL, conn.request("PATCH", &doc, &headers, body.as_bytes()))
                    .await
                    .with_context(|| format!("writer {w}: no acknowledgement in {STALL:?}"))??;
                ensure!(r.status == 200 && r.header("version").is_some(), "writer {w}: PATCH answered {}", r.status);
                done += 1;
            }
            anyhow::Ok(done)
        }));
    }
    let mut counts = Vec::new();
    for t in tasks {
        counts.push(t.await??);
    }
    Ok((counts, started.elapsed()))
}

/// RocksDB alone: `load.writers` threads, each writing synced batches shaped like one
/// server write, to a fresh database in a temp dir. Returns writes per second.
fn rocks_rate(load: Load) -> anyhow::Result<f64> {
    use crate::store::{keys, open_synced, Batch};

    let dir = tempfile::tempdir().context("creating a temp dir for RocksDB")?;
    let store = open_synced(dir.path())?;
    let batch = |w: usize, n: usize| {
        let path = format!("/bench/{}/b6-{w:02}", std::process::id());
        let mut b = Batch::new();
        b.put(keys::log_entry(&path, n as u64), vec![b'L'; 80]);
        b.put(keys::history_entry(&path, n as u64), vec![b'H'; 160]);
        b.put(keys::id_index(&path, &format!("w{w}-{}", n * 48 + 47)), (n as u64).to_be_bytes().to_vec());
        b.put(keys::meta(&path), vec![b'M'; 40]);
        b
    };
    let run = |load: Load, first: usize| -> anyhow::Result<(usize, Duration)> {
        let started = Instant::now();
        let threads: Vec<_> = (0..load.writers)
            .map(|w| {
                let store = store.clone();
                std::thread::spawn(move || -> anyhow::Result<usize> {
                    let mut done = 0;
                    while load.more(done, started) {
                        store.write(&batch(w, first + done))?;
                        done += 1;
                    }
                    Ok(done)
                })
            })
            .collect();
        let mut total = 0;
        for t in threads {
            total += t.join().map_err(|_| anyhow::anyhow!("a RocksDB writer thread panicked"))??;
        }
        Ok((total, started.elapsed()))
    };
    run(Load { per_writer: WARM_UP, duration: None, ..load }, 0)?;
    let (total, elapsed) = run(load, WARM_UP)?;
    Ok(total as f64 / elapsed.as_secs_f64())
}

/// Runs B6.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let load = if ctx.smoke {
        Load { writers: SMOKE_WRITERS, per_writer: SMOKE_WRITES, duration: None }
    } else {
        Load { writers: WRITERS, per_writer: usize::MAX, duration: Some(FULL_DURATION) }
    };
    let reference = tokio::task::spawn_blocking(move || rocks_rate(load)).await??;

    let server = ctx.server(&[])?;
    let docs: Vec<String> = (0..load.writers).map(|w| ctx.doc(&format!("b6-{w:02}"))).collect();
    server_writes(server.addr(), &docs, Load { per_writer: WARM_UP, duration: None, ..load }, 0).await?;
    let cpu_before = server.pid().map(cpu_ns).transpose()?;
    let own_before = own_cpu_ns()?;
    let (counts, elapsed) = server_writes(server.addr(), &docs, load, WARM_UP).await?;
    let own_cpu = own_cpu_ns()?.saturating_sub(own_before);
    let cpu_after = server.pid().map(cpu_ns).transpose()?;
    let total: usize = counts.iter().sum();
    let rate = total as f64 / elapsed.as_secs_f64();

    // Every acknowledged write is in its document, in order.
    let mut conn = Conn::connect(server.addr()).await?;
    for (w, (doc, &n)) in docs.iter().zip(&counts).enumerate() {
        let r = conn.request("GET", doc, &[], b"").await?;
        let expected: String = (0..WARM_UP + n).map(|i| line(w, i)).collect();
        if r.status != 200 || r.body != expected.as_bytes() {
            bail!("{doc}: after {} acknowledged writes the text is not every line in order", WARM_UP + n);
        }
    }
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
    Ok(rows)
}
