//! F1, the change log's cost to durable writes (issue 16: "a watcher of `/` does not slow
//! writes"): B6 as it is (64 writers, one document each, every PATCH synced before its 2xx),
//! with no folder watchers, with one, and with 100 watchers of the whole tree
//! (`GET /?recursive=1` + `Subscribe: true`, raw 209 streams read to the end by the load
//! generator), each on a fresh server, in turn over three rounds so a change in the machine's
//! load hits every side alike. The reference is the run without watchers: throughput,
//! round-trip p50/p99 and server CPU per write are compared with it.
//!
//! A fourth side opens 5,000 idle watchers, each of a folder of its own where nothing is
//! written (`/f1-idle-<i>/`): a change must wake only the watches it concerns, so they must
//! cost the writes nothing.
//!
//! Every watcher of `/` must end at the log's last position (its last update's `Version` is the
//! server's cursor once the writers stopped), and every acknowledged write must be in its
//! document. A watcher that fell behind the in-memory changes reads the store and gets each
//! page coalesced to the latest change per path, so it may receive fewer updates than there
//! were changes: the share it received is reported.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, ensure};

use super::b4_fanout::percentile;
use super::b6_durable::{
    check_docs, server_writes, Writes, FULL_DURATION, SMOKE_WRITERS, SMOKE_WRITES, WARM_UP, WRITERS,
};
use super::client::Conn;
use super::fleet::{check_open_files, Fleet, Spec};
use super::procs::{cpu_ns, own_cpu_ns};
use super::report::{Row, Target};
use super::rocks_ref::Load;
use super::Ctx;

/// Folder watchers of `/` at full size.
const WATCHERS: usize = 100;
const SMOKE_WATCHERS: usize = 5;
/// Idle watchers of folders of their own at full size (the fourth side).
const IDLE_WATCHERS: usize = 5000;
const SMOKE_IDLE_WATCHERS: usize = 20;
/// Rounds of (without, with) at full size.
const ROUNDS: usize = 3;
/// Longest wait for every watcher to reach the log's end after the writers stopped.
const CATCH_UP: Duration = Duration::from_secs(120);

/// The log's position now, as the server names it (`Plait-Cursor` of a one-entry listing).
pub(crate) async fn log_cursor(addr: SocketAddr) -> anyhow::Result<String> {
    let mut conn = Conn::connect(addr).await?;
    let r = conn.request("GET", "/?limit=1", &[("accept", "application/json")], b"").await?;
    ensure!(r.status == 200, "listing / answered {}", r.status);
    r.header("plait-cursor").map(str::to_string).ok_or_else(|| anyhow!("a listing without Plait-Cursor"))
}

/// The position in a cursor (`<epoch>-<seq>`).
pub(crate) fn cursor_seq(cursor: &str) -> anyhow::Result<u64> {
    let seq = cursor.trim_matches('"').rsplit('-').next().unwrap_or("");
    seq.parse().map_err(|_| anyhow!("not a cursor: {cursor:?}"))
}

/// One side of one round.
#[derive(Default)]
struct Side {
    writes: usize,
    elapsed: Duration,
    latencies_ms: Vec<f64>,
    server_cpu_ns: u64,
    own_cpu_ns: u64,
    /// Updates the watchers received, and the changes each could have received (all watchers).
    delivered: usize,
    changes: usize,
}

impl Side {
    fn add(&mut self, other: Side) {
        self.writes += other.writes;
        self.elapsed += other.elapsed;
        self.latencies_ms.extend(other.latencies_ms);
        self.server_cpu_ns += other.server_cpu_ns;
        self.own_cpu_ns += other.own_cpu_ns;
        self.delivered += other.delivered;
        self.changes += other.changes;
    }

    fn rate(&self) -> f64 {
        self.writes as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    fn cpu_per_write_us(&self) -> f64 {
        self.server_cpu_ns as f64 / 1000.0 / self.writes.max(1) as f64
    }

    fn cores(ns: u64, elapsed: Duration) -> f64 {
        ns as f64 / 1e9 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// Who watches during one side's B6.
#[derive(Clone, Copy)]
enum Watching {
    /// `n` watchers of `/` (recursive), each reading every change.
    Root(usize),
    /// `n` watchers of folders of their own, where nothing is written.
    Elsewhere(usize),
}

/// B6 on a fresh server with its watchers open throughout.
async fn one(ctx: &Ctx, load: Load, watching: Watching, tag: &str) -> anyhow::Result<Side> {
    let server = ctx.server(&[])?;
    let addr = server.addr();
    let pid = server.pid().ok_or_else(|| anyhow!("F1 needs the server's CPU time: pass --server-pid with --url"))?;
    let start = cursor_seq(&log_cursor(addr).await?)?;
    let (fleet, idle, watchers) = match watching {
        Watching::Root(0) => (None, None, 0),
        Watching::Root(n) => (Some(Fleet::open(&Spec::tally(addr, "/?recursive=1"), n).await?), None, n),
        Watching::Elsewhere(n) => {
            let spec = Spec { numbered: true, ..Spec::tally(addr, "/f1-idle-{i}/") };
            (None, Some(Fleet::open(&spec, n).await?), n)
        }
    };
    let docs: Vec<String> = (0..load.writers).map(|w| ctx.doc(&format!("f1-{tag}-{w:02}"))).collect();
    server_writes(addr, &docs, Load { per_writer: WARM_UP, duration: None, ..load }, 0).await?;
    let (cpu0, own0) = (cpu_ns(pid)?, own_cpu_ns()?);
    let Writes { counts, elapsed, latencies_ms } = server_writes(addr, &docs, load, WARM_UP).await?;
    let (cpu1, own1) = (cpu_ns(pid)?, own_cpu_ns()?);
    check_docs(addr, &docs, &counts).await?;
    let end = log_cursor(addr).await?;
    let changes = usize::try_from(cursor_seq(&end)?.saturating_sub(start))?;
    let mut side = Side {
        writes: counts.iter().sum(),
        elapsed,
        latencies_ms,
        server_cpu_ns: cpu1.saturating_sub(cpu0),
        own_cpu_ns: own1.saturating_sub(own0),
        ..Side::default()
    };
    if let Some(idle) = idle {
        let got = idle.close().await?;
        // Each received its folder's (empty) listing and nothing else.
        ensure!(got.iter().all(|r| r.count <= 1), "an idle watcher of an untouched folder received a change");
    }
    if let Some(fleet) = fleet {
        fleet.wait_version(&format!("\"{end}\""), CATCH_UP).await?;
        let got = fleet.close().await?;
        for (i, r) in got.iter().enumerate() {
            ensure!(r.count <= changes, "watcher {i} received {} updates for {changes} changes", r.count);
        }
        side.delivered = got.iter().map(|r| r.count).sum();
        side.changes = changes * got.len();
    }
    tracing::info!(watchers, writes = side.writes, rate = side.rate(), changes, delivered = side.delivered, "F1 side");
    Ok(side)
}

/// Runs F1.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let (load, watchers, idle_watchers, rounds) = if ctx.smoke {
        (
            Load { writers: SMOKE_WRITERS, per_writer: SMOKE_WRITES, duration: None },
            SMOKE_WATCHERS,
            SMOKE_IDLE_WATCHERS,
            1,
        )
    } else {
        let load = Load { writers: WRITERS, per_writer: usize::MAX, duration: Some(FULL_DURATION) };
        (load, WATCHERS, IDLE_WATCHERS, ROUNDS)
    };
    check_open_files(idle_watchers.max(watchers) + load.writers)?;
    let (mut without, mut single, mut with) = (Side::default(), Side::default(), Side::default());
    let mut elsewhere = Side::default();
    for round in 0..rounds {
        tracing::info!(round, "F1: B6 without folder watchers");
        without.add(one(ctx, load, Watching::Root(0), &format!("r{round}-0")).await?);
        tracing::info!(round, "F1: B6 with one folder watcher of /");
        single.add(one(ctx, load, Watching::Root(1), &format!("r{round}-1")).await?);
        tracing::info!(round, watchers, "F1: B6 with folder watchers of /");
        with.add(one(ctx, load, Watching::Root(watchers), &format!("r{round}-{watchers}")).await?);
        tracing::info!(round, idle_watchers, "F1: B6 with idle watchers of other folders");
        elsewhere.add(one(ctx, load, Watching::Elsewhere(idle_watchers), &format!("r{round}-e")).await?);
    }
    for side in [&mut without, &mut single, &mut with, &mut elsewhere] {
        side.latencies_ms.sort_by(f64::total_cmp);
    }

    let scenario = format!("F1 ({} writers, {watchers} watchers of /)", load.writers);
    let compared = |metric: &str, value: f64, reference: f64, unit, what: &str, target| Row {
        reference: Some((format!("{what}, no watchers (B6)"), reference)),
        target,
        ..Row::info(&scenario, metric, value, unit)
    };
    let machine = std::thread::available_parallelism().map_or(0, |n| n.get());
    Ok(vec![
        compared(
            &format!("synced PATCHes per second with {idle_watchers} idle watchers of other folders"),
            elsewhere.rate(),
            without.rate(),
            "writes/s",
            "synced PATCHes per second",
            Target::AtLeast(0.8),
        ),
        compared(
            &format!("server CPU per synced PATCH with {idle_watchers} idle watchers of other folders"),
            elsewhere.cpu_per_write_us(),
            without.cpu_per_write_us(),
            "µs",
            "server CPU per synced PATCH",
            Target::None,
        ),
        compared(
            "synced PATCHes per second with one watcher of /",
            single.rate(),
            without.rate(),
            "writes/s",
            "synced PATCHes per second",
            Target::AtLeast(0.8),
        ),
        compared(
            "server CPU per synced PATCH with one watcher of /",
            single.cpu_per_write_us(),
            without.cpu_per_write_us(),
            "µs",
            "server CPU per synced PATCH",
            Target::None,
        ),
        compared(
            &format!("synced PATCHes per second with the {watchers} watchers"),
            with.rate(),
            without.rate(),
            "writes/s",
            "synced PATCHes per second",
            Target::AtLeast(0.8),
        ),
        compared(
            "PATCH round trip (answered once durable), p50",
            percentile(&with.latencies_ms, 0.5),
            percentile(&without.latencies_ms, 0.5),
            "ms",
            "p50",
            Target::None,
        ),
        compared(
            "PATCH round trip (answered once durable), p99",
            percentile(&with.latencies_ms, 0.99),
            percentile(&without.latencies_ms, 0.99),
            "ms",
            "p99",
            Target::None,
        ),
        compared(
            "server CPU per synced PATCH (delivery to the watchers included)",
            with.cpu_per_write_us(),
            without.cpu_per_write_us(),
            "µs",
            "server CPU per synced PATCH",
            Target::None,
        ),
        Row {
            reference: Some(("changes made × watchers".into(), with.changes as f64)),
            ..Row::info(
                &scenario,
                "updates the watchers received (coalesced when behind)",
                with.delivered as f64,
                "updates",
            )
        },
        Row::info(
            &scenario,
            &format!("load generator CPU busy with the watchers (of {machine} cores)"),
            Side::cores(with.own_cpu_ns, with.elapsed),
            "cores",
        ),
        Row::info(
            &scenario,
            &format!("load generator CPU busy without (of {machine} cores)"),
            Side::cores(without.own_cpu_ns, without.elapsed),
            "cores",
        ),
    ])
}
