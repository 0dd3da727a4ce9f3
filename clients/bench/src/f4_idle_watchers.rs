//! F4, idle folder watchers' memory (issue 16: "10,000 idle folder watchers cost no more memory
//! each than a document subscription"): B5's method (RSS once 10,000 connections are open and
//! settled, minus RSS before, over their number, after a warm-up of 100) for watchers of a
//! folder holding one document, against the same for subscriptions of that document, each on a
//! fresh server so neither reuses memory the other freed.

use anyhow::{anyhow, ensure};

use super::b5_idle_memory::{kib_per_connection, SETTLE, SMOKE_SETTLE};
use super::client::Conn;
use super::fleet::{check_open_files, Spec};
use super::report::{Row, Target};
use super::Ctx;

/// KiB per idle connection of `Spec::subscription(path)` on a fresh server whose `folder` holds
/// one document.
async fn per_connection(ctx: &Ctx, watch_folder: bool, n: usize, settle: std::time::Duration) -> anyhow::Result<f64> {
    let server = ctx.server(&[])?;
    let pid = server.pid().ok_or_else(|| anyhow!("F4 needs the server's memory: pass --server-pid with --url"))?;
    let folder = ctx.doc("f4/");
    let doc = format!("{folder}doc");
    let mut conn = Conn::connect(server.addr()).await?;
    let r = conn.request("PUT", &doc, &[], b"idle watchers\n").await?;
    ensure!(r.status == 200, "creating {doc} answered {}", r.status);
    let path = if watch_folder { &folder } else { &doc };
    kib_per_connection(pid, &Spec::subscription(server.addr(), path, 0), n, settle).await
}

/// Runs F4.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let (n, settle) = if ctx.smoke { (20, SMOKE_SETTLE) } else { (10_000, SETTLE) };
    check_open_files(n)?;
    tracing::info!(n, "F4: idle document subscriptions (the reference)");
    let subscription = per_connection(ctx, false, n, settle).await?;
    tracing::info!(n, "F4: idle folder watchers");
    let watcher = per_connection(ctx, true, n, settle).await?;
    let scenario = if n >= 1000 { format!("F4 ({}k)", n / 1000) } else { format!("F4 ({n})") };
    Ok(vec![Row {
        reference: Some(("idle document subscription (B5's method), fresh server".into(), subscription)),
        target: Target::AtMost(1.0),
        ..Row::info(&scenario, "server RSS per idle folder watcher", watcher, "KiB")
    }])
}
