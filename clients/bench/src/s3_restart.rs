//! S3 (issue 18): what a daemon restart costs over a folder that did not change: the CPU time
//! of the restarted daemon process (all threads, exited ones included) from its start until
//! its folder is in sync again, over 10,000 small files (smoke: 60). A restart must not re-read
//! or re-hash unchanged files (the engine keeps size, mtime and inode per path), so the
//! reference, in the same run, is reading and hashing every file once in process the way the
//! engine would (the server's chunker: BLAKE3 per chunk and SHA-256 of the whole): the target
//! is a restart that costs less than that. It also checks that the restart sent nothing (the
//! server's `received_chunk_bytes` and `received_body_bytes` do not move).

use anyhow::ensure;
use plait::chunks::chunker::chunk_all;
use plait::chunks::ChunkParams;
use serde_json::Value;

use super::client::Conn;
use super::procs::{cpu_ns_with_exited, thread_cpu_ns};
use super::report::{Row, Target};
use super::sync_kit::{listing, small_files, until_synced, Daemon};
use super::Ctx;

pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let Some(plait) = ctx.plait_binary() else {
        tracing::warn!("S3 needs the plait binary (it starts plait sync): skipped with --url");
        return Ok(Vec::new());
    };
    let files = if ctx.smoke { 60 } else { 10_000 };
    let server = ctx.server(&[])?;
    let folder = format!("{}/", ctx.doc("s3"));
    let url = format!("http://{}{folder}", server.addr());
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("a");
    small_files(&dir, files, 33)?;
    let mut a = Daemon::start(plait, &dir, &url, &tmp.path().join("sa"), "a")?;
    until_synced(&[&a], server.addr(), &folder).await?;

    let before = received(server.addr()).await?;
    a.restart()?;
    until_synced(&[&a], server.addr(), &folder).await?;
    let restart_ms = cpu_ns_with_exited(a.pid())? as f64 / 1e6;
    ensure!(received(server.addr()).await? == before, "the restart sent bytes to the server");

    // The reference: read and hash every file once, on this thread.
    let params = ChunkParams::default();
    let paths = listing(&dir)?;
    let t0 = thread_cpu_ns().unwrap_or(0);
    let mut chunks = 0usize;
    for rel in paths.keys() {
        let bytes = std::fs::read(dir.join(rel))?;
        chunks += chunk_all(params, &bytes).0.len();
    }
    let hash_ms = thread_cpu_ns().unwrap_or(0).saturating_sub(t0) as f64 / 1e6;
    ensure!(chunks >= files, "every file hashed");
    Ok(vec![Row {
        scenario: format!("S3 ({files} unchanged files)"),
        metric: "daemon CPU for a restart until in sync".into(),
        value: restart_ms,
        unit: "ms",
        reference: Some(("reading and hashing every file once (chunker)".into(), hash_ms)),
        target: Target::AtMost(1.0),
    }])
}

/// The server's (received_chunk_bytes, received_body_bytes).
async fn received(addr: std::net::SocketAddr) -> anyhow::Result<(u64, u64)> {
    let r = Conn::connect(addr).await?.request("GET", "/.plait/chunks", &[], b"").await?;
    let v: Value = serde_json::from_slice(&r.body)?;
    Ok((v["received_chunk_bytes"].as_u64().unwrap_or(0), v["received_body_bytes"].as_u64().unwrap_or(0)))
}
