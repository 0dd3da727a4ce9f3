//! B4, fan-out: 1,000 and 10,000 subscribers on one simpleton document, then 50 small
//! PATCHes (one-character appends), each sent 50 ms after the previous one or once that one
//! reached every subscriber, whichever is later, so updates never coalesce.
//!
//! Measured: publish-to-receive latency of every delivery (from just before the PATCH is
//! written to the read that completes the update at the subscriber), the latency to the last
//! subscriber of each update, and server CPU per delivery. The reference is `plait-bench
//! sink` (one blocking `write()` per socket, see `sink.rs`) fed the exact bytes the
//! server sent, read by the same subscriber tasks: its CPU per write is the floor, and its
//! latency shows how much of ours is the load generator reading 10,000 sockets on the same
//! cores. Targets: CPU per delivery ≤ 2 × the write() reference; p99 (over the updates) of the
//! latency to the last of 10,000 subscribers ≤ 50 ms.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure};

use super::client::Conn;
use super::fleet::{check_open_files, Fleet, Received, Spec, Start};
use super::procs::{cpu_ns, own_cpu_ns, ServerProc};
use super::report::{Row, Target};
use super::sink::Control;
use super::Ctx;

/// Least time between two PATCHes.
pub(crate) const PACE: Duration = Duration::from_millis(50);
/// Longest wait for one update to reach every subscriber.
pub(crate) const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// Quiet time after the subscribers started, before measuring.
pub(crate) const SETTLE: Duration = Duration::from_millis(500);
/// The latency target to the last of 10,000 subscribers, in ms.
const LAST_P99_MS: f64 = 50.0;

/// Latencies of one run, in ms.
pub(crate) struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    /// Over the updates, of the latency to each update's last subscriber.
    pub last_p50: f64,
    pub last_p99: f64,
}

/// One run against the server or the sink.
struct Measured {
    latency: Latency,
    /// The measured process's CPU per delivery, µs.
    cpu_us: f64,
    /// The load generator's CPU per delivery, µs.
    own_cpu_us: f64,
    /// PATCH round trips (the server answers once the write is durable), p50 in ms.
    ack_p50: Option<f64>,
}

/// Nearest-rank percentile of sorted values.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub(crate) fn latency(publish: &[Instant], got: &[Received]) -> Latency {
    let mut all = Vec::with_capacity(got.len() * publish.len());
    let mut last = vec![0.0f64; publish.len()];
    for r in got {
        for ((t, sent), last) in r.times.iter().zip(publish).zip(last.iter_mut()) {
            let l = ms(t.saturating_duration_since(*sent));
            all.push(l);
            *last = last.max(l);
        }
    }
    all.sort_by(f64::total_cmp);
    last.sort_by(f64::total_cmp);
    Latency {
        p50: percentile(&all, 0.5),
        p99: percentile(&all, 0.99),
        max: all.last().copied().unwrap_or(0.0),
        last_p50: percentile(&last, 0.5),
        last_p99: percentile(&last, 0.99),
    }
}

/// Every subscriber got every update, once, in order, with the expected versions.
fn check(got: &[Received], expected: &[String]) -> anyhow::Result<()> {
    for (i, r) in got.iter().enumerate() {
        ensure!(r.versions == expected, "subscriber {i} received versions {:?}, expected {expected:?}", r.versions);
    }
    Ok(())
}

pub(crate) async fn pace(publish: &[Instant]) {
    if let Some(prev) = publish.last() {
        tokio::time::sleep_until(tokio::time::Instant::from_std(*prev + PACE)).await;
    }
}

/// Subscribes `subs` times to a fresh document, sends `updates` PATCHes; returns the figures,
/// the versions and the bytes subscriber 0 received for each update.
async fn against_server(
    ctx: &Ctx,
    subs: usize,
    updates: usize,
) -> anyhow::Result<(Measured, Vec<String>, Vec<Vec<u8>>)> {
    let server = ctx.server(&[])?;
    let pid = server.pid().ok_or_else(|| anyhow!("B4 needs the server's CPU time: pass --server-pid with --url"))?;
    let doc = ctx.doc(&format!("b4-{subs}"));
    let mut writer = Conn::connect(server.addr()).await?;
    let r = writer.request("PUT", &doc, &[], b"fan-out\n").await?;
    ensure!(r.status == 200, "creating {doc} answered {}", r.status);
    tracing::info!(subs, "B4: opening subscriptions");
    let fleet = Fleet::open(&Spec::subscription(server.addr(), &doc, updates), subs).await?;
    tokio::time::sleep(SETTLE).await;
    tracing::info!(subs, updates, "B4: publishing");
    let (cpu0, own0) = (cpu_ns(pid)?, own_cpu_ns()?);
    let (mut publish, mut acks, mut versions) = (Vec::new(), Vec::new(), Vec::new());
    for k in 0..updates {
        pace(&publish).await;
        let body = [b'a' + (k % 26) as u8];
        let headers = [("content-range", "text [-0:-0]"), ("peer", "b4-writer")];
        let sent = Instant::now();
        publish.push(sent);
        let r = writer.request("PATCH", &doc, &headers, &body).await?;
        acks.push(ms(sent.elapsed()));
        ensure!(r.status == 200, "PATCH {} answered {}", k + 1, r.status);
        versions.push(r.header("version").unwrap_or_default().to_string());
        fleet.wait_delivered(k, DELIVERY_TIMEOUT).await?;
    }
    let (cpu1, own1) = (cpu_ns(pid)?, own_cpu_ns()?);
    let got = fleet.close().await?;
    check(&got, &versions)?;
    let raw = got.first().map(|r| r.raw.clone()).unwrap_or_default();
    let deliveries = (subs * updates) as f64;
    acks.sort_by(f64::total_cmp);
    let measured = Measured {
        latency: latency(&publish, &got),
        cpu_us: cpu1.saturating_sub(cpu0) as f64 / 1000.0 / deliveries,
        own_cpu_us: own1.saturating_sub(own0) as f64 / 1000.0 / deliveries,
        ack_p50: Some(percentile(&acks, 0.5)),
    };
    Ok((measured, versions, raw))
}

/// The same deliveries from `plait-bench sink`: `raw[k]` written to every socket.
async fn against_sink(subs: usize, raw: &[Vec<u8>], versions: &[String]) -> anyhow::Result<Measured> {
    let sink = ServerProc::sink()?;
    let mut control = Control::connect(sink.addr).await?;
    let spec = Spec {
        addr: sink.addr,
        request: Arc::new(Vec::new()),
        start: Start::Bare,
        updates: raw.len(),
        tally: false,
        numbered: false,
    };
    let fleet = Fleet::open(&spec, subs).await?;
    let started = Instant::now();
    while control.subscribers().await? < subs {
        ensure!(started.elapsed() < DELIVERY_TIMEOUT, "the sink did not accept {subs} connections");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(SETTLE).await;
    let (cpu0, own0) = (cpu_ns(sink.pid())?, own_cpu_ns()?);
    let mut publish = Vec::new();
    for (k, bytes) in raw.iter().enumerate() {
        pace(&publish).await;
        publish.push(Instant::now());
        let written = control.write_all(bytes).await?;
        ensure!(written == subs, "the sink wrote update {} to {written} of {subs} sockets", k + 1);
        fleet.wait_delivered(k, DELIVERY_TIMEOUT).await?;
    }
    let (cpu1, own1) = (cpu_ns(sink.pid())?, own_cpu_ns()?);
    let got = fleet.close().await?;
    check(&got, versions)?;
    let deliveries = (subs * raw.len()) as f64;
    Ok(Measured {
        latency: latency(&publish, &got),
        cpu_us: cpu1.saturating_sub(cpu0) as f64 / 1000.0 / deliveries,
        own_cpu_us: own1.saturating_sub(own0) as f64 / 1000.0 / deliveries,
        ack_p50: None,
    })
}

fn label(subs: usize) -> String {
    if subs >= 1000 && subs % 1000 == 0 {
        format!("B4 ({}k)", subs / 1000)
    } else {
        format!("B4 ({subs})")
    }
}

fn rows(subs: usize, real: &Measured, floor: &Measured) -> Vec<Row> {
    let scenario = label(subs);
    let with_ref = |metric: &str, value: f64, reference: f64, unit, target| Row {
        scenario: scenario.clone(),
        metric: metric.into(),
        value,
        unit,
        reference: Some(("write() sink, same client".into(), reference)),
        target,
    };
    let (l, f) = (&real.latency, &floor.latency);
    let last_target = if subs >= 10_000 { Target::AbsoluteAtMost(LAST_P99_MS) } else { Target::None };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut rows = vec![
        with_ref("publish-to-receive latency, p50 of every delivery", l.p50, f.p50, "ms", Target::None),
        with_ref("publish-to-receive latency, p99 of every delivery", l.p99, f.p99, "ms", Target::None),
        with_ref("publish-to-receive latency, max", l.max, f.max, "ms", Target::None),
        with_ref("latency to the last subscriber, p50 over updates", l.last_p50, f.last_p50, "ms", Target::None),
        with_ref("latency to the last subscriber, p99 over updates", l.last_p99, f.last_p99, "ms", last_target),
        Row {
            reference: Some(("one write() per socket (bench-sink)".into(), floor.cpu_us)),
            target: Target::AtMost(2.0),
            ..Row::info(&scenario, "server CPU per delivery", real.cpu_us, "µs")
        },
        Row::info(
            &scenario,
            &format!("load generator CPU per delivery (it shares the {cores} cores with the server)"),
            real.own_cpu_us,
            "µs",
        ),
    ];
    if let Some(ack) = real.ack_p50 {
        rows.push(Row::info(&scenario, "PATCH round trip (answered once durable), p50", ack, "ms"));
    }
    rows
}

/// Runs B4.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let (sizes, updates): (&[usize], usize) = if ctx.smoke { (&[20], 5) } else { (&[1000, 10_000], 50) };
    check_open_files(sizes.iter().copied().max().unwrap_or(0))?;
    let mut out = Vec::new();
    for &subs in sizes {
        let (real, versions, raw) = against_server(ctx, subs, updates).await?;
        tracing::info!(subs, "B4: the write() reference");
        let floor = against_sink(subs, &raw, &versions).await?;
        out.extend(rows(subs, &real, &floor));
    }
    Ok(out)
}
