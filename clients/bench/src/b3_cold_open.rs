//! B3, cold open: the automerge-paper document as B1 builds it (one PUT per edit, so the same
//! history and the same per-write records), then, each right after a server restart: the
//! first full GET, a GET at a mid-history `Version`, and a GET with `Parents` near the end
//! (the updates since then); and the bytes the document occupies in RocksDB.
//!
//! Reference, measured in the same run: bare diamond-types decoding the same history (its
//! `ENCODE_FULL` bytes) and checking out the same version, and the size of those bytes.
//! Targets: each cold GET ≤ 2 × decode + checkout; stored bytes ≤ 1.5 × the encoded size.
//!
//! When B1 ran earlier in the same invocation, B3 restarts B1's server and opens B1's
//! document; otherwise it builds the same document the same way itself (one synced PUT per
//! edit: as slow as B1's replay), so it also runs alone.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context};

use super::b1_sequential::{check_text, per_run, reference, reference_min, Built, SMOKE_EDITS, TRACE};
use super::client::{Conn, Response};
use super::procs::cpu_ns;
use super::replay::{self, events, Edits};
use super::report::{Row, Target};
use super::{Ctx, Server};
use plait::text::reference::decode_and_checkout;

/// How far before the end the `Parents` GET starts (in edits).
const SINCE_EDITS: usize = 1000;
const SMOKE_SINCE_EDITS: usize = 50;
/// Restarts per cold measurement (the median is reported: one cold request is noisy).
const COLD_RUNS: usize = 5;
const SMOKE_COLD_RUNS: usize = 3;

/// One timed request on a fresh connection: its response, wall time and server CPU.
async fn timed(
    server: &Server,
    pid: u32,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<(Response, Duration, Duration)> {
    let mut conn = Conn::connect(server.addr()).await?;
    let (cpu0, wall0) = (cpu_ns(pid)?, Instant::now());
    let r = conn.request("GET", path, headers, b"").await?;
    let wall = wall0.elapsed();
    let cpu = Duration::from_nanos(cpu_ns(pid)?.saturating_sub(cpu0));
    Ok((r, wall, cpu))
}

/// Restarts the server; returns its new pid and how long it took to listen again.
fn restart(server: &mut Server) -> anyhow::Result<(u32, Duration)> {
    let started = Instant::now();
    ensure!(server.restart()?, "B3 cannot restart a --url server");
    let pid = server.pid().ok_or_else(|| anyhow!("the restarted server has no pid"))?;
    Ok((pid, started.elapsed()))
}

/// Medians of `runs` cold requests.
struct Cold {
    /// The last response.
    response: Response,
    wall: Duration,
    cpu: Duration,
    restart: Duration,
}

/// `runs` times: restart the server, then one timed GET of `path` with `headers`.
async fn cold(server: &mut Server, runs: usize, path: &str, headers: &[(&str, &str)]) -> anyhow::Result<Cold> {
    let (mut walls, mut cpus, mut restarts, mut response) = (Vec::new(), Vec::new(), Vec::new(), None);
    for _ in 0..runs.max(1) {
        let (pid, restart_time) = restart(server)?;
        let (r, wall, cpu) = timed(server, pid, path, headers).await?;
        walls.push(wall);
        cpus.push(cpu);
        restarts.push(restart_time);
        response = Some(r);
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let response = response.ok_or_else(|| anyhow!("no cold request was made"))?;
    Ok(Cold { response, wall: median(walls), cpu: median(cpus), restart: median(restarts) })
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() { dir_bytes(&entry.path())? } else { meta.len() };
    }
    Ok(total)
}

/// B1's document, or the same built here.
async fn document(ctx: &Ctx, trace: &Edits) -> anyhow::Result<Built> {
    if let Some(built) = ctx.handover.take() {
        return Ok(built);
    }
    let server = ctx.server(&[])?;
    let doc = ctx.doc("b3");
    let mut conn = Conn::connect(server.addr()).await?;
    let build = Instant::now();
    replay::send_all(&mut conn, &doc, &replay::sequential_puts("b3", &trace.edits), true).await?;
    check_text(&mut conn, &doc, &trace.expected).await?;
    tracing::info!(puts = trace.edits.len(), seconds = build.elapsed().as_secs_f64(), "B3: document built");
    Ok(Built { server, doc, agent: "b3" })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs B3.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    if ctx.external.is_some() {
        tracing::warn!("B3 skipped: it must restart the server, and a --url server cannot be restarted");
        return Ok(Vec::new());
    }
    let (limit, since_edits) = if ctx.smoke { (Some(SMOKE_EDITS), SMOKE_SINCE_EDITS) } else { (None, SINCE_EDITS) };
    let trace = replay::load(&ctx.traces, TRACE, limit)?;
    let n = trace.edits.len();
    let events_to = |edits: usize| trace.edits[..edits].iter().map(events).sum::<usize>();
    let (mid_events, since_events) = (events_to(n / 2), events_to(n.saturating_sub(since_edits)));
    let last = events_to(n);
    ensure!(mid_events > 0 && since_events > 0, "the trace is too short for B3");

    // The reference: the same history in diamond-types' format, decoded and checked out.
    let min = reference_min(ctx);
    let (replayed, _) = reference(Duration::ZERO, &trace.edits, &trace.expected)?;
    let bytes = replayed.encode();
    let (tip_text, dt_tip) = per_run(min, || Ok(decode_and_checkout(&bytes, None)?))?;
    ensure!(tip_text == trace.expected, "diamond-types' decoded text differs from the trace");
    let (mid_text, dt_mid) = per_run(min, || Ok(decode_and_checkout(&bytes, Some(mid_events))?))?;

    let Built { mut server, doc, agent } = document(ctx, &trace).await?;
    let runs = if ctx.smoke { SMOKE_COLD_RUNS } else { COLD_RUNS };
    let full = cold(&mut server, runs, &doc, &[]).await?;
    ensure!(full.response.status == 200, "cold GET answered {}", full.response.status);
    if full.response.body != trace.expected.as_bytes() {
        bail!(
            "cold GET after a restart: {} bytes, not the {} of the trace (writes lost?)",
            full.response.body.len(),
            trace.expected.len()
        );
    }

    let mid_version = format!("\"{agent}-{}\"", mid_events - 1);
    let mid = cold(&mut server, runs, &doc, &[("version", &mid_version)]).await?;
    ensure!(mid.response.status == 200, "cold GET at {mid_version} answered {}", mid.response.status);
    ensure!(mid.response.body == mid_text.as_bytes(), "GET at {mid_version} differs from diamond-types' text there");

    let since_version = format!("\"{agent}-{}\"", since_events - 1);
    let since = cold(&mut server, runs, &doc, &[("parents", &since_version)]).await?;
    ensure!(since.response.status == 209, "cold GET with Parents {since_version} answered {}", since.response.status);
    let tip = format!("\"{agent}-{}\"", last - 1);
    ensure!(
        String::from_utf8_lossy(&since.response.body).contains(&tip),
        "the updates since {since_version} do not reach {tip}"
    );

    let pid = server.pid().ok_or_else(|| anyhow!("the server has no pid"))?;
    // Twice: the first full GET after the cold reads of old versions may still check out the
    // tip (the server builds the current text on first use); the second is the warm one.
    timed(&server, pid, &doc, &[]).await?;
    let (_, warm_wall, _) = timed(&server, pid, &doc, &[]).await?;
    let (page, _, _) = timed(&server, pid, &format!("/.plait/history{doc}?limit=1"), &[]).await?;
    ensure!(page.status == 200, "GET /.plait/history{doc} answered {}", page.status);
    let page: serde_json::Value = serde_json::from_slice(&page.body).context("parsing the history page")?;
    let stored = page["stored_bytes"].as_u64().ok_or_else(|| anyhow!("the history page has no stored_bytes"))?;
    // Plait splits it; other servers have no such figure.
    let document = page["document_bytes"].as_u64();
    let on_disk = match &server {
        Server::Child(p) => p.data.as_ref().map(|d| dir_bytes(d.path())).transpose()?,
        Server::External { .. } => None,
    };

    let scenario = "B3";
    let kib = |b: u64| b as f64 / 1024.0;
    let decode_tip = "DT decode + checkout (tip), CPU";
    let mut rows = vec![
        Row {
            scenario: scenario.into(),
            metric: format!("cold open: first full GET after a restart ({last} events), wall, median of {runs}"),
            value: ms(full.wall),
            unit: "ms",
            reference: Some((decode_tip.into(), ms(dt_tip))),
            target: Target::AtMost(2.0),
        },
        Row {
            scenario: scenario.into(),
            metric: format!("cold GET at mid-history Version ({mid_events} events), wall, median of {runs}"),
            value: ms(mid.wall),
            unit: "ms",
            reference: Some(("DT decode + checkout (same version), CPU".into(), ms(dt_mid))),
            target: Target::AtMost(2.0),
        },
        Row {
            scenario: scenario.into(),
            metric: format!("cold GET with Parents {since_edits} edits before the end (updates since), wall, median"),
            value: ms(since.wall),
            unit: "ms",
            reference: Some((decode_tip.into(), ms(dt_tip))),
            target: Target::AtMost(2.0),
        },
        Row {
            scenario: scenario.into(),
            metric: "stored bytes (the server's stored_bytes)".into(),
            value: kib(stored),
            unit: "KiB",
            reference: Some(("DT ENCODE_FULL size".into(), kib(bytes.len() as u64))),
            target: Target::AtMost(1.5),
        },
        Row::info(scenario, "server CPU of the cold full GET, median", ms(full.cpu), "ms"),
        Row::info(scenario, "server CPU of the cold GET at mid-history Version, median", ms(mid.cpu), "ms"),
        Row::info(scenario, "server CPU of the cold GET with Parents, median", ms(since.cpu), "ms"),
        Row::info(scenario, "restart: kill to listening again (RocksDB open), median", ms(full.restart), "ms"),
        Row::info(scenario, "warm full GET, wall", ms(warm_wall), "ms"),
    ];
    if let Some(document) = document {
        rows.push(Row {
            scenario: scenario.into(),
            metric: "of which the document itself (snapshot + log, without the history listing)".into(),
            value: kib(document),
            unit: "KiB",
            reference: Some(("DT ENCODE_FULL size".into(), kib(bytes.len() as u64))),
            target: Target::None,
        });
    }
    if let Some(b) = on_disk {
        rows.push(Row::info(scenario, "data dir on disk after the restarts (all RocksDB files)", kib(b), "KiB"));
    }
    Ok(rows)
}
