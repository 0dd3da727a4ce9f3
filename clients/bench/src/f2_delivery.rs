//! F2, delivery latency to folder watchers (issue 16): 1,000 watchers of a folder, then (on the
//! same server, same document) 1,000 subscribers of the one document in it, each fleet alone
//! while 50 one-character PATCHes are sent as B4 sends them (each 50 ms after the previous one
//! or once that one reached everyone, whichever is later, so nothing coalesces). The document
//! subscribers are the reference: the same writes, the same client, the same machine.
//!
//! Measured per delivery: from just before the PATCH is sent, and from its acknowledgement
//! (the server answers once the write is durable, which is also when it is published), to the
//! read that completes the update at the subscriber; and the server's CPU per delivery. Every
//! watcher must get one update per PATCH, the same cursors in the same order.

use std::time::Instant;

use anyhow::{anyhow, ensure};

use super::b4_fanout::{latency, ms, pace, percentile, DELIVERY_TIMEOUT, SETTLE};
use super::client::Conn;
use super::fleet::{check_open_files, Fleet, Received, Spec};
use super::procs::{cpu_ns, own_cpu_ns};
use super::report::Row;
use super::Ctx;

/// What one fleet saw.
struct Measured {
    /// From the PATCH's send, every delivery, ms (sorted).
    from_send: Vec<f64>,
    /// From its acknowledgement, every delivery, ms (sorted; 0 when it arrived first).
    from_ack: Vec<f64>,
    /// Latency to the last subscriber of each update, p99 over updates, ms.
    last_p99: f64,
    /// Server CPU per delivery, µs.
    cpu_us: f64,
    /// Load generator CPU per delivery, µs.
    own_cpu_us: f64,
    /// PATCH round trips, p50, ms.
    ack_p50: f64,
}

/// Every delivery's time since `from[k]`, sorted.
fn since(from: &[Instant], got: &[Received]) -> Vec<f64> {
    let mut all: Vec<f64> =
        got.iter().flat_map(|r| r.times.iter().zip(from).map(|(t, f)| ms(t.saturating_duration_since(*f)))).collect();
    all.sort_by(f64::total_cmp);
    all
}

/// Opens `n` subscribers of `path`, sends `updates` PATCHes to `doc`; returns the figures and
/// what every subscriber received (checked to be one update per PATCH, the same for all).
async fn fleet_run(
    addr: std::net::SocketAddr,
    pid: u32,
    path: &str,
    doc: &str,
    n: usize,
    updates: usize,
) -> anyhow::Result<(Measured, Vec<String>)> {
    let fleet = Fleet::open(&Spec::subscription(addr, path, updates), n).await?;
    tokio::time::sleep(SETTLE).await;
    let mut writer = Conn::connect(addr).await?;
    let (cpu0, own0) = (cpu_ns(pid)?, own_cpu_ns()?);
    let (mut sent, mut acked) = (Vec::new(), Vec::new());
    for k in 0..updates {
        pace(&sent).await;
        let body = [b'a' + (k % 26) as u8];
        let headers = [("content-range", "text [-0:-0]"), ("peer", "f2-writer")];
        sent.push(Instant::now());
        let r = writer.request("PATCH", doc, &headers, &body).await?;
        acked.push(Instant::now());
        ensure!(r.status == 200, "PATCH {} answered {}", k + 1, r.status);
        fleet.wait_delivered(k, DELIVERY_TIMEOUT).await?;
    }
    let (cpu1, own1) = (cpu_ns(pid)?, own_cpu_ns()?);
    let got = fleet.close().await?;
    let versions = got.first().map(|r| r.versions.clone()).unwrap_or_default();
    ensure!(versions.len() == updates, "{path}: {} updates for {updates} PATCHes", versions.len());
    for (i, r) in got.iter().enumerate() {
        ensure!(r.versions == versions, "{path}: subscriber {i} received {:?}, subscriber 0 {versions:?}", r.versions);
    }
    let deliveries = (n * updates) as f64;
    let measured = Measured {
        from_send: since(&sent, &got),
        from_ack: since(&acked, &got),
        last_p99: latency(&sent, &got).last_p99,
        cpu_us: cpu1.saturating_sub(cpu0) as f64 / 1000.0 / deliveries,
        own_cpu_us: own1.saturating_sub(own0) as f64 / 1000.0 / deliveries,
        ack_p50: {
            let mut rtt: Vec<f64> = sent.iter().zip(&acked).map(|(s, a)| ms(a.duration_since(*s))).collect();
            rtt.sort_by(f64::total_cmp);
            percentile(&rtt, 0.5)
        },
    };
    Ok((measured, versions))
}

/// Runs F2.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let (n, updates) = if ctx.smoke { (20, 5) } else { (1000, 50) };
    check_open_files(n)?;
    let server = ctx.server(&[])?;
    let addr = server.addr();
    let pid = server.pid().ok_or_else(|| anyhow!("F2 needs the server's CPU time: pass --server-pid with --url"))?;
    let folder = ctx.doc("f2/");
    let doc = format!("{folder}doc");
    let mut conn = Conn::connect(addr).await?;
    let r = conn.request("PUT", &doc, &[], b"watched\n").await?;
    ensure!(r.status == 200, "creating {doc} answered {}", r.status);

    tracing::info!(n, "F2: folder watchers");
    let (watchers, cursors) = fleet_run(addr, pid, &folder, &doc, n, updates).await?;
    let seqs: Vec<u64> = cursors.iter().map(|c| super::f1_watch_overhead::cursor_seq(c)).collect::<Result<_, _>>()?;
    ensure!(seqs.windows(2).all(|w| w[0] < w[1]), "the watchers' cursors do not increase: {cursors:?}");
    tracing::info!(n, "F2: document subscribers (the reference)");
    let (subs, _) = fleet_run(addr, pid, &doc, &doc, n, updates).await?;

    let label = if n >= 1000 { format!("F2 ({}k)", n / 1000) } else { format!("F2 ({n})") };
    let compared = |metric: &str, value: f64, reference: f64, unit| Row {
        reference: Some(("document subscribers, same writes".into(), reference)),
        ..Row::info(&label, metric, value, unit)
    };
    let (w, s) = (&watchers, &subs);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    Ok(vec![
        compared(
            "send-to-receive latency to folder watchers, p50",
            percentile(&w.from_send, 0.5),
            percentile(&s.from_send, 0.5),
            "ms",
        ),
        compared(
            "send-to-receive latency to folder watchers, p99",
            percentile(&w.from_send, 0.99),
            percentile(&s.from_send, 0.99),
            "ms",
        ),
        compared(
            "ack-to-receive latency to folder watchers, p99 (0 when the update arrived first)",
            percentile(&w.from_ack, 0.99),
            percentile(&s.from_ack, 0.99),
            "ms",
        ),
        Row::info(
            &label,
            "PATCH round trip (answered once durable), p50, while the watchers listened",
            w.ack_p50,
            "ms",
        ),
        compared("latency to the last watcher, p99 over updates", w.last_p99, s.last_p99, "ms"),
        compared("server CPU per delivery to a folder watcher", w.cpu_us, s.cpu_us, "µs"),
        Row::info(
            &label,
            &format!("load generator CPU per delivery, watchers (it shares the {cores} cores)"),
            w.own_cpu_us,
            "µs",
        ),
    ])
}
