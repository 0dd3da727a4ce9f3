//! B5, idle subscriber memory: the server's resident memory per idle subscription at 10,000
//! subscriptions on one document (RSS once they are open and settled, minus RSS before, over
//! their number). Target: ≤ 10 KiB. For context, the same figure for an idle keep-alive
//! connection (after one request) on the no-op server, which runs the same HTTP stack: what
//! the connection alone costs before any subscription state.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, ensure};

use super::client::Conn;
use super::fleet::{check_open_files, Fleet, Spec, Start};
use super::procs::{rss_bytes, ServerProc};
use super::report::{Row, Target};
use super::Ctx;

/// Quiet time before reading RSS (smoke runs only check that everything works).
pub(crate) const SETTLE: Duration = Duration::from_secs(2);
pub(crate) const SMOKE_SETTLE: Duration = Duration::from_millis(100);
/// The target, KiB per idle subscription.
const TARGET_KIB: f64 = 10.0;
/// Connections opened and closed first, so what is measured is not the first-use cost.
const WARM_UP: usize = 100;

/// RSS growth of process `pid` per connection while `n` connections opened as `spec` says
/// are open and idle, in KiB.
pub(crate) async fn kib_per_connection(pid: u32, spec: &Spec, n: usize, settle: Duration) -> anyhow::Result<f64> {
    Fleet::open(spec, WARM_UP.min(n)).await?.close().await?;
    tokio::time::sleep(settle).await;
    let before = rss_bytes(pid)?;
    let fleet = Fleet::open(spec, n).await?;
    tokio::time::sleep(settle).await;
    let after = rss_bytes(pid)?;
    fleet.close().await?;
    Ok(after.saturating_sub(before) as f64 / 1024.0 / n as f64)
}

/// Runs B5.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let (n, settle) = if ctx.smoke { (20, SMOKE_SETTLE) } else { (10_000, SETTLE) };
    check_open_files(n)?;
    let server = ctx.server(&[])?;
    let pid = server.pid().ok_or_else(|| anyhow!("B5 needs the server's memory: pass --server-pid with --url"))?;
    let doc = ctx.doc("b5");
    let mut conn = Conn::connect(server.addr()).await?;
    let r = conn.request("PUT", &doc, &[], b"idle subscribers\n").await?;
    ensure!(r.status == 200, "creating {doc} answered {}", r.status);
    tracing::info!(n, "B5: idle subscriptions");
    let real = kib_per_connection(pid, &Spec::subscription(server.addr(), &doc, 0), n, settle).await?;
    drop(server);

    let noop = ServerProc::noop()?;
    let request = format!("GET {doc} HTTP/1.1\r\nhost: {}\r\n\r\n", noop.addr);
    let spec = Spec {
        addr: noop.addr,
        request: Arc::new(request.into_bytes()),
        start: Start::Head,
        updates: 0,
        tally: false,
        numbered: false,
    };
    tracing::info!(n, "B5: idle keep-alive connections on the no-op server");
    let floor = kib_per_connection(noop.pid(), &spec, n, settle).await?;

    let scenario = if n >= 1000 { format!("B5 ({}k)", n / 1000) } else { format!("B5 ({n})") };
    Ok(vec![Row {
        reference: Some(("idle keep-alive connection, no-op server".into(), floor)),
        target: Target::AbsoluteAtMost(TARGET_KIB),
        ..Row::info(&scenario, "server RSS per idle subscription", real, "KiB")
    }])
}
