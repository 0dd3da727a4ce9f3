//! RocksDB alone, writing synced batches shaped like the server's writes: the storage
//! reference of B6 (group commit at 64 threads) and the durability floor of B1 and B2 (what
//! one synced write costs before any HTTP or diamond-types work).
//!
//! Why a floor at all: B1's and B2's targets compare the server with R_http (a no-op handler
//! that syncs nothing) and bare diamond-types, but the server must sync every write before
//! its 2xx. Measuring RocksDB's own CPU per synced write in the same run shows how much of
//! the gap is the price of durability itself, which no server on this disk can avoid.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::procs::{own_cpu_ns, thread_cpu_ns};
use plait::store::{keys, open_synced, Batch, Store};

/// How much the writers write: a count each, or as many as fit in a duration.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// Concurrent writer threads.
    pub writers: usize,
    /// Writes per writer (an upper bound when `duration` is set).
    pub per_writer: usize,
    /// Stop starting writes after this long.
    pub duration: Option<Duration>,
}

impl Load {
    /// Whether a writer that has done `done` writes should do another.
    pub fn more(&self, done: usize, started: Instant) -> bool {
        done < self.per_writer && self.duration.is_none_or(|d| started.elapsed() < d)
    }
}

/// What a run of synced writes cost.
#[derive(Clone, Copy, Debug)]
pub struct Synced {
    /// Writes made (all writers).
    pub writes: usize,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// CPU of the writers and of the benchmark process's other threads (RocksDB's background
    /// threads) during the run. Nothing else runs in it meanwhile.
    pub cpu: Duration,
}

impl Synced {
    /// Writes per second.
    pub fn rate(&self) -> f64 {
        self.writes as f64 / self.elapsed.as_secs_f64()
    }

    /// CPU per write, in microseconds.
    pub fn cpu_per_write_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.writes.max(1) as f64
    }
}

/// One server write's records: a log record, the history listing's open block (rewritten by
/// each write; half full on average) and the history bookkeeping, with the server's key
/// layout and typical sizes.
fn shaped_batch(writer: usize, n: usize) -> Batch {
    let path = format!("/bench/{}/w{writer:02}", std::process::id());
    let mut b = Batch::new();
    b.put(keys::log_entry(&path, n as u64), vec![b'L'; 80]);
    b.put(keys::history_entry(&path, (n / 64 * 64) as u64), vec![b'H'; 160]);
    b.put(keys::meta(&path), vec![b'M'; 40]);
    b
}

/// Runs the writers; returns the writes made, the wall time and the writer threads' CPU
/// (each reads its own: an exited thread's CPU no longer shows in `/proc/<pid>/task`).
fn run(store: &Arc<dyn Store>, load: Load, first: usize) -> anyhow::Result<(usize, Duration, u64)> {
    let started = Instant::now();
    let threads: Vec<_> = (0..load.writers)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || -> anyhow::Result<(usize, u64)> {
                let cpu_before = thread_cpu_ns().unwrap_or(0);
                let mut done = 0;
                while load.more(done, started) {
                    store.write(&shaped_batch(w, first + done))?;
                    done += 1;
                }
                Ok((done, thread_cpu_ns().unwrap_or(0).saturating_sub(cpu_before)))
            })
        })
        .collect();
    let (mut total, mut cpu) = (0, 0);
    for t in threads {
        let (done, ns) = t.join().map_err(|_| anyhow::anyhow!("a RocksDB writer thread panicked"))??;
        total += done;
        cpu += ns;
    }
    Ok((total, started.elapsed(), cpu))
}

/// `load.writers` threads writing synced batches to a fresh RocksDB in a temp dir (on the
/// same disk as the servers' data), after `warm_up` writes each that are not counted.
/// Blocking: call it from a blocking thread.
pub fn synced_writes(load: Load, warm_up: usize) -> anyhow::Result<Synced> {
    let dir = tempfile::tempdir().context("creating a temp dir for RocksDB")?;
    let store = open_synced(dir.path())?;
    run(&store, Load { per_writer: warm_up, duration: None, ..load }, 0)?;
    // The process's other threads (RocksDB's own among them) outlive the run: read them as a
    // whole; the writers report their own CPU.
    let others_before = own_cpu_ns()?;
    let (writes, elapsed, writers_cpu) = run(&store, load, warm_up)?;
    let others = own_cpu_ns()?.saturating_sub(others_before);
    let cpu = Duration::from_nanos(writers_cpu + others);
    Ok(Synced { writes, elapsed, cpu })
}

/// RocksDB's own CPU per synced write (µs) with `writers` threads writing `writes_each` each
/// (after a short warm-up): the durability floor B1 and B2 set beside their references.
pub async fn sync_cpu_per_write(writers: usize, writes_each: usize) -> anyhow::Result<f64> {
    let load = Load { writers, per_writer: writes_each, duration: None };
    Ok(tokio::task::spawn_blocking(move || synced_writes(load, 5)).await??.cpu_per_write_us())
}
