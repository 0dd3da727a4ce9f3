//! B7, the read ceiling: `GET` of a small document, against the same GET answered by the no-op
//! handler on the same HTTP stack. Target: server CPU per request ≤ 1.5 × the no-op's.

use std::net::SocketAddr;

use anyhow::ensure;

use super::client::Conn;
use super::procs::{cpu_ns, ServerProc};
use super::report::{Row, Target};
use super::Ctx;

/// Connections kept busy at once (a small pool, as a browser or proxy would use).
const CONNECTIONS: usize = 8;

/// Sends `per_conn` GETs of `path` on each of `CONNECTIONS` keep-alive connections; returns
/// the server CPU per request in µs.
async fn cpu_per_get(addr: SocketAddr, pid: u32, path: &str, per_conn: usize) -> anyhow::Result<f64> {
    let before = cpu_ns(pid)?;
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let path = path.to_string();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::connect(addr).await?;
            for _ in 0..per_conn {
                let r = conn.request("GET", &path, &[], b"").await?;
                ensure!(r.status == 200, "GET {path} answered {}", r.status);
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let spent = cpu_ns(pid)?.saturating_sub(before);
    Ok(spent as f64 / 1000.0 / (CONNECTIONS * per_conn) as f64)
}

/// Runs B7.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let per_conn = if ctx.smoke { 20 } else { 5000 };
    let server = ctx.server(&[])?;
    let Some(pid) = server.pid() else {
        anyhow::bail!("B7 needs the server's CPU time: pass --server-pid with --url");
    };
    let doc = ctx.doc("b7");
    let mut conn = Conn::connect(server.addr()).await?;
    let r = conn.request("PUT", &doc, &[], "a small document, about one line of text.\n".as_bytes()).await?;
    ensure!(r.status == 200, "creating {doc} answered {}", r.status);
    let noop = ServerProc::noop()?;
    // Warm both up (connections, caches, the document loaded), then measure.
    cpu_per_get(server.addr(), pid, &doc, per_conn / 10 + 1).await?;
    cpu_per_get(noop.addr, noop.pid(), &doc, per_conn / 10 + 1).await?;
    let real = cpu_per_get(server.addr(), pid, &doc, per_conn).await?;
    let floor = cpu_per_get(noop.addr, noop.pid(), &doc, per_conn).await?;
    Ok(vec![Row {
        scenario: "B7".into(),
        metric: "server CPU per GET of a small document".into(),
        value: real,
        unit: "µs",
        reference: Some(("no-op handler, same HTTP stack".into(), floor)),
        target: Target::AtMost(1.5),
    }])
}
