//! B2, concurrent replay: the friendsforever and clownschool traces sent as their agents typed
//! them, one keep-alive connection per agent, each transaction a PUT with its own `Version`
//! and `Parents`, and every agent also subscribed. Everything must converge to the trace's
//! `endContent`; the server's CPU for the whole replay is judged against the same PUTs on the
//! no-op handler (txns × R_http) plus diamond-types replaying the trace in process.
//!
//! How a transaction becomes a PUT: agent `n` is `a<n>`, its seqs continue across its
//! transactions (one event per inserted or deleted code point), the PUT's `Version` is its
//! last event and its `Parents` are the versions of its parent transactions, which is exactly
//! the document its agent saw. A PUT is sent only once all its parents were acknowledged.
//! The subscribers are simpleton subscribers without a `Peer`, so each receives every change
//! (its own agent's too), applies it and must end at the final text; see [`super::b2_follow`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use tokio::sync::watch;

use plait::protocol::{encode_patches_body, Patch, TextRange, VersionSet};
use plait::text::reference_concurrent::{replay_concurrent, ReplayTxn};

use super::b2_follow::{subscribe, Follower};
use super::client::Conn;
use super::procs::{cpu_ns, thread_cpu_ns, ServerProc};
use super::report::{Row, Target};
use super::rocks_ref::sync_cpu_per_write;
use super::trace::{self, ConcurrentTrace};
use super::Ctx;

/// The traces replayed.
const TRACES: [&str; 2] = ["friendsforever", "clownschool"];
/// Smoke size: this many transactions from the start of each trace (any prefix of a trace is
/// closed under parents, since parents always come earlier).
const SMOKE_TXNS: usize = 120;
/// Synced RocksDB writes per agent behind R_sync.
const SYNC_WRITES: usize = 1000;
const SMOKE_SYNC_WRITES: usize = 20;
/// Longest wait for one response, for a parent's acknowledgement, or for the subscribers to
/// catch up after the last PUT.
const STALL: Duration = Duration::from_secs(60);

/// One transaction as the PUT that carries it.
struct Put {
    agent: usize,
    parents: Vec<usize>,
    version: String,
    parents_header: String,
    /// `Content-Range` for a single patch, or the count of a `Patches: N` body.
    framing: Framing,
    body: Vec<u8>,
}

enum Framing {
    Range(String),
    Patches(String),
}

/// A trace (or a prefix of it) ready to send.
pub(super) struct Plan {
    puts: Vec<Put>,
    agents: usize,
    /// The final version: every transaction no other one builds on.
    pub(super) heads: VersionSet,
    replay: Vec<ReplayTxn>,
}

/// A transaction's patches (each read against the result of the previous one, in descending
/// position order) as absolute, sorted, non-overlapping Braid patches against its parents.
fn absolute_patches(i: usize, patches: &[trace::TracePatch]) -> anyhow::Result<Vec<Patch>> {
    for w in patches.windows(2) {
        // A later patch entirely before an earlier one leaves its positions unchanged.
        ensure!(w[1].0 + w[1].1 <= w[0].0, "txn {i}: patches are not in descending position order");
    }
    let mut out: Vec<(usize, usize, String)> = Vec::new();
    for p in patches.iter().rev() {
        match out.last_mut() {
            // Touching patches become one (the later-applied one's text goes first).
            Some(last) if last.1 == p.0 => {
                last.1 = p.0 + p.1;
                last.2.push_str(&p.2);
            }
            _ => out.push((p.0, p.0 + p.1, p.2.clone())),
        }
    }
    Ok(out
        .into_iter()
        .map(|(a, b, content)| Patch { range: TextRange::absolute(a as u64, b as u64), content })
        .collect())
}

/// Builds the PUTs of the first `limit` transactions.
pub(super) fn plan(trace: &ConcurrentTrace, limit: usize) -> anyhow::Result<Plan> {
    let txns = &trace.txns[..limit.min(trace.txns.len())];
    let agents = txns.iter().map(|t| t.agent + 1).max().unwrap_or(0);
    let mut next_seq = vec![0usize; agents];
    let mut ids: Vec<String> = Vec::with_capacity(txns.len());
    let mut has_child = vec![false; txns.len()];
    let mut puts = Vec::with_capacity(txns.len());
    for (i, t) in txns.iter().enumerate() {
        ensure!(t.parents.iter().all(|&p| p < i), "txn {i} names a later parent");
        let count: usize = t.patches.iter().map(|p| p.1 + p.2.chars().count()).sum();
        ensure!(count > 0, "txn {i} changes nothing: it would have no version of its own");
        next_seq[t.agent] += count;
        ids.push(format!("a{}-{}", t.agent, next_seq[t.agent] - 1));
        t.parents.iter().for_each(|&p| has_child[p] = true);
        let patches = absolute_patches(i, &t.patches)?;
        let (framing, body) = match patches.as_slice() {
            [one] => (Framing::Range(one.range.to_string()), one.content.clone().into_bytes()),
            many => {
                let mut body = Vec::new();
                encode_patches_body(many, &mut body);
                (Framing::Patches(many.len().to_string()), body)
            }
        };
        puts.push(Put {
            agent: t.agent,
            parents: t.parents.clone(),
            version: VersionSet::new([ids[i].clone()]).to_header(),
            parents_header: VersionSet::new(t.parents.iter().map(|&p| ids[p].clone())).to_header(),
            framing,
            body,
        });
    }
    let heads = VersionSet::new(ids.iter().zip(&has_child).filter(|(_, c)| !**c).map(|(id, _)| id.clone()));
    let replay = txns
        .iter()
        .map(|t| ReplayTxn {
            agent: t.agent,
            parents: t.parents.clone(),
            patches: t.patches.iter().map(|p| (p.0, p.1, p.2.clone())).collect(),
        })
        .collect();
    Ok(Plan { puts, agents, heads, replay })
}

/// Sends every PUT of `plan` to `path`, one connection per agent, each only after its parents
/// were acknowledged. Returns the wall time and the order the transactions were acknowledged in.
async fn send_all(addr: SocketAddr, path: &str, plan: &Arc<Plan>) -> anyhow::Result<(Duration, Vec<usize>)> {
    let started = Instant::now();
    let acked: Arc<Vec<AtomicBool>> = Arc::new(plan.puts.iter().map(|_| AtomicBool::new(false)).collect());
    let order = Arc::new(std::sync::Mutex::new(Vec::with_capacity(plan.puts.len())));
    let (tx, _) = watch::channel(0u64);
    let tx = Arc::new(tx);
    let mut tasks = Vec::new();
    for agent in 0..plan.agents {
        let (plan, acked, tx, path, order) = (plan.clone(), acked.clone(), tx.clone(), path.to_string(), order.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::connect(addr).await?;
            let mut rx = tx.subscribe();
            for (i, put) in plan.puts.iter().enumerate().filter(|(_, p)| p.agent == agent) {
                let ready = || put.parents.iter().all(|&p| acked[p].load(Ordering::Acquire));
                if !ready() {
                    tokio::time::timeout(STALL, rx.wait_for(|_| ready()))
                        .await
                        .with_context(|| format!("txn {i}: its parents were not acknowledged in time"))??;
                }
                let mut headers = vec![("version", put.version.as_str()), ("parents", put.parents_header.as_str())];
                match &put.framing {
                    Framing::Range(r) => headers.push(("content-range", r)),
                    Framing::Patches(n) => headers.push(("patches", n)),
                }
                let r = tokio::time::timeout(STALL, conn.request("PUT", &path, &headers, &put.body))
                    .await
                    .with_context(|| format!("txn {i}: no answer to its PUT"))??;
                if r.status != 200 {
                    bail!("txn {i} ({}) answered {}: {}", put.version, r.status, String::from_utf8_lossy(&r.body));
                }
                order.lock().unwrap_or_else(|p| p.into_inner()).push(i);
                acked[i].store(true, Ordering::Release);
                tx.send_modify(|n| *n += 1);
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let order = std::mem::take(&mut *order.lock().unwrap_or_else(|p| p.into_inner()));
    Ok((started.elapsed(), order))
}

/// The replay input in the order the server acknowledged it (parents renumbered), so the
/// in-process engine can be timed on the same arrival order the server merged in.
fn reordered(replay: &[ReplayTxn], order: &[usize]) -> Vec<ReplayTxn> {
    let mut position = vec![0usize; replay.len()];
    for (new, &old) in order.iter().enumerate() {
        position[old] = new;
    }
    order
        .iter()
        .map(|&old| {
            let t = &replay[old];
            ReplayTxn { parents: t.parents.iter().map(|&p| position[p]).collect(), ..t.clone() }
        })
        .collect()
}

/// One trace's figures.
struct Measured {
    server_cpu: Duration,
    /// The same replay on a fresh server with no subscriber: what delivering costs.
    bare_cpu: Duration,
    noop_cpu: Duration,
    dt_cpu: Duration,
    dt_arrival_cpu: Duration,
    /// txns × RocksDB's own CPU per synced write (one writer thread per agent).
    sync_cpu: Duration,
    wall: Duration,
    txns: usize,
    agents: usize,
}

/// Replays `plan` on a fresh server, with one simpleton subscriber per agent or none, and
/// checks that everything converged to `expected`. Returns the server's CPU time (from before
/// the subscriptions to the last subscriber converging) and the replay's wall time.
async fn server_replay(
    ctx: &Ctx,
    plan: &Arc<Plan>,
    doc: &str,
    subscribers: bool,
    expected: &str,
) -> anyhow::Result<(Duration, Duration, Vec<usize>)> {
    let server = ctx.server(&[])?;
    let Some(pid) = server.pid() else {
        bail!("B2 needs the server's CPU time: pass --server-pid with --url");
    };
    let path = ctx.doc(doc);
    let before = cpu_ns(pid)?;
    let mut followers = Vec::new();
    for _ in 0..if subscribers { plan.agents } else { 0 } {
        let conn = subscribe(server.addr(), &path).await?;
        let heads = plan.heads.clone();
        followers.push(tokio::spawn(async move { Follower::new(conn).follow_to(&heads, STALL).await }));
    }
    let (wall, order) = send_all(server.addr(), &path, plan).await?;
    for (i, f) in followers.into_iter().enumerate() {
        let text = f.await?.with_context(|| format!("{doc}: subscriber {i}"))?;
        ensure!(text == expected, "{doc}: subscriber {i} ended at a different text");
    }
    let cpu = Duration::from_nanos(cpu_ns(pid)?.saturating_sub(before));
    let mut conn = Conn::connect(server.addr()).await?;
    let got = conn.request("GET", &path, &[], b"").await?;
    ensure!(got.status == 200, "{doc}: the final GET answered {}", got.status);
    ensure!(got.body == expected.as_bytes(), "{doc}: the final GET is not the expected text");
    let version = VersionSet::parse_header(got.header("version").unwrap_or_default().as_bytes())?;
    ensure!(version == plan.heads, "{doc}: the server ended at {version:?}, not at the trace's heads");
    Ok((cpu, wall, order))
}

async fn measure(ctx: &Ctx, name: &str) -> anyhow::Result<Measured> {
    let trace = trace::concurrent(&ctx.traces, name)?;
    let limit = if ctx.smoke { SMOKE_TXNS } else { trace.txns.len() };
    let plan = Arc::new(plan(&trace, limit)?);
    let full = limit >= trace.txns.len();

    // The reference engine first: it also tells the text a prefix must converge to.
    let replay_input = plan.clone();
    let dt = tokio::task::spawn_blocking(move || replay_concurrent(&replay_input.replay, thread_cpu_ns)).await??;
    if full {
        ensure!(dt.text == trace.end_content, "{name}: diamond-types in process did not reach endContent");
    }
    let expected = if full { trace.end_content.clone() } else { dt.text.clone() };

    let (server_cpu, wall, order) = server_replay(ctx, &plan, &format!("b2-{name}"), true, &expected).await?;
    let (bare_cpu, _, _) = server_replay(ctx, &plan, &format!("b2-{name}-bare"), false, &expected).await?;
    // The engine again, on the order the server received the transactions in: how much of the
    // server's merge work comes from that order rather than from the server.
    let arrival = reordered(&plan.replay, &order);
    let dt_arrival = tokio::task::spawn_blocking(move || replay_concurrent(&arrival, thread_cpu_ns)).await??;
    ensure!(dt_arrival.text == expected, "{name}: diamond-types in arrival order ended at a different text");

    let noop = ServerProc::noop()?;
    let before = cpu_ns(noop.pid())?;
    send_all(noop.addr, &ctx.doc(&format!("b2-{name}")), &plan).await?;
    let noop_cpu = Duration::from_nanos(cpu_ns(noop.pid())?.saturating_sub(before));
    let dt_cpu = dt.cpu.unwrap_or(dt.wall);
    tracing::info!(
        trace = name,
        txns = plan.puts.len(),
        ?wall,
        ?server_cpu,
        ?bare_cpu,
        ?noop_cpu,
        ?dt_cpu,
        "B2 replay done"
    );
    let dt_arrival_cpu = dt_arrival.cpu.unwrap_or(dt_arrival.wall);
    // The durability floor: RocksDB alone, one writer thread per agent, the same records.
    let per_writer = if ctx.smoke { SMOKE_SYNC_WRITES } else { SYNC_WRITES };
    let sync_per_write = sync_cpu_per_write(plan.agents, per_writer).await?;
    Ok(Measured {
        sync_cpu: Duration::from_secs_f64(sync_per_write * plan.puts.len() as f64 / 1e6),
        server_cpu,
        bare_cpu,
        noop_cpu,
        dt_cpu,
        dt_arrival_cpu,
        wall,
        txns: plan.puts.len(),
        agents: plan.agents,
    })
}

/// Runs B2.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for name in TRACES {
        let m = measure(ctx, name).await?;
        let scenario = format!("B2 {name} ({} txns, {} agents)", m.txns, m.agents);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        rows.push(Row {
            scenario: scenario.clone(),
            metric: "server CPU, whole replay (converged: GET + every subscriber)".into(),
            value: ms(m.server_cpu),
            unit: "ms",
            reference: Some(("txns × R_http + diamond-types replay".into(), ms(m.noop_cpu + m.dt_cpu))),
            target: Target::AtMost(1.5),
        });
        let per_txn = |d: Duration| d.as_secs_f64() * 1e6 / m.txns.max(1) as f64;
        rows.push(Row {
            reference: Some(("R_http, no-op handler".into(), per_txn(m.noop_cpu))),
            ..Row::info(&scenario, "server CPU per txn", per_txn(m.server_cpu), "µs")
        });
        rows.push(Row::info(
            &scenario,
            "server CPU per txn, same replay without subscribers",
            per_txn(m.bare_cpu),
            "µs",
        ));
        rows.push(Row::info(&scenario, "diamond-types replay in process (trace order), CPU", ms(m.dt_cpu), "ms"));
        // The same engine on the order the PUTs reached the server: agents on their own
        // connections interleave far more finely than the trace's order, and diamond-types
        // merges cost more the further apart concurrent branches are.
        rows.push(Row {
            reference: Some((
                "txns × R_http + diamond-types replay in the server's arrival order".into(),
                ms(m.noop_cpu + m.dt_arrival_cpu),
            )),
            ..Row::info(&scenario, "server CPU, whole replay, against the arrival order", ms(m.server_cpu), "ms")
        });
        // Every txn is synced before its 2xx, which neither reference pays for.
        rows.push(Row {
            reference: Some((
                "the arrival-order reference + txns × R_sync (RocksDB alone, one synced write per txn)".into(),
                ms(m.noop_cpu + m.dt_arrival_cpu + m.sync_cpu),
            )),
            ..Row::info(&scenario, "server CPU, whole replay, against the durable floor", ms(m.server_cpu), "ms")
        });
        rows.push(Row::info(&scenario, "R_sync: RocksDB alone, CPU per synced write", per_txn(m.sync_cpu), "µs"));
        rows.push(Row::info(&scenario, "replay wall time", m.wall.as_secs_f64(), "s"));
    }
    Ok(rows)
}
