//! F5, a slow folder watcher (issue 16: "a slow watcher gets a coalesced catch-up, never
//! unbounded buffering"): one watcher of a folder (a 4 KiB receive buffer) reads the listing,
//! then stops reading while 16 connections make 20,000 changes to 100 documents in it. The
//! server's RSS is sampled throughout; the reference is the same writes on a fresh server with
//! no watcher, so what the writes themselves cost (RocksDB's memtable, the documents) is not
//! charged to the watcher. Then the watcher reads again: it must end at the log's last
//! position with every document's latest version, in no more updates than there were changes
//! (within the log's window, 100,000 changes by default, every change comes; a watcher behind
//! it gets each page coalesced to the latest per path; the updates already in the kernel's
//! socket buffers when it stopped, up to `tcp_wmem`'s 4 MiB, arrive as they were sent).
//! `tests/it/folders_slow.rs` checks that the catch-up is coalesced once the changes exceed
//! the window (the smallest, 10,000) and the buffers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context};
use plait::protocol::{Decoder, UpdateBody, VersionSet};

use super::client::Conn;
use super::f1_watch_overhead::log_cursor;
use super::f3_listing::Sampler;
use super::procs::rss_bytes;
use super::report::{Row, Target};
use super::Ctx;

/// Changes made while the watcher does not read, at full size.
const CHANGES: usize = 20_000;
const SMOKE_CHANGES: usize = 400;
/// Documents they go to, and connections making them.
const DOCS: usize = 100;
const WRITERS: usize = 16;
/// What the stalled watcher may add to the server's RSS growth, MiB.
const BOUND_MIB: f64 = 4.0;
/// Longest catch-up.
const CATCH_UP: Duration = Duration::from_secs(60);

/// The watcher: its connection and the decoder of its stream.
struct Watcher {
    conn: Conn,
    decoder: Decoder,
}

impl Watcher {
    /// Opens a watch of `folder` and reads its first update (the listing).
    async fn open(addr: SocketAddr, folder: &str) -> anyhow::Result<Watcher> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_recv_buffer_size(4096)?;
        let stream = socket.connect(addr).await.context("connecting the watcher")?;
        let mut conn = Conn::from_stream(stream, addr);
        conn.send("GET", folder, &[("subscribe", "true")], b"").await?;
        let head = conn.read_head().await?;
        ensure!(head.status == 209, "the watch answered {}", head.status);
        let mut w = Watcher { conn, decoder: Decoder::new() };
        w.next().await?;
        Ok(w)
    }

    /// The next update: its `Version` and JSON body.
    async fn next(&mut self) -> anyhow::Result<(String, serde_json::Value)> {
        loop {
            if let Some(u) = self.decoder.next_update().map_err(|e| anyhow!("bad watch stream: {e}"))? {
                let version = u.header("version").unwrap_or_default().to_string();
                let UpdateBody::Snapshot(body) = &u.body else { bail!("a watch update that is not a snapshot") };
                return Ok((version, serde_json::from_str(body).context("an update's JSON")?));
            }
            let chunk = self.conn.read_chunk().await?.ok_or_else(|| anyhow!("the watch ended"))?;
            self.decoder.push(&chunk);
        }
    }
}

/// `changes` PATCHes spread over `docs`, from [`WRITERS`] connections.
async fn write(addr: SocketAddr, docs: &[String], changes: usize) -> anyhow::Result<()> {
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let docs = docs.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::connect(addr).await?;
            let peer = format!("f5-{w}");
            for (k, i) in (w..changes).step_by(WRITERS).enumerate() {
                let doc = &docs[(w + k * WRITERS) % docs.len()];
                let headers = [("content-range", "text [-0:-0]"), ("peer", peer.as_str())];
                let r = conn.request("PATCH", doc, &headers, format!("change {i}\n").as_bytes()).await?;
                ensure!(r.status == 200, "PATCH {doc} answered {}", r.status);
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// One server: create the documents, maybe open the stalled watcher, write; returns the RSS
/// growth (peak during the writes against before them), the watcher, the server and the docs.
async fn side(
    ctx: &Ctx,
    stalled: bool,
    changes: usize,
) -> anyhow::Result<(u64, Option<Watcher>, super::Server, Vec<String>, String)> {
    let server = ctx.server(&[])?;
    let (addr, pid) = (server.addr(), server.pid().ok_or_else(|| anyhow!("F5 needs the server's memory"))?);
    let folder = ctx.doc(if stalled { "f5-watched/" } else { "f5-alone/" });
    let docs: Vec<String> = (0..DOCS).map(|d| format!("{folder}d{d:03}")).collect();
    write(addr, &docs, DOCS).await?;
    let watcher = if stalled { Some(Watcher::open(addr, &folder).await?) } else { None };
    let before = rss_bytes(pid)?;
    let sampler = Sampler::start(pid);
    write(addr, &docs, changes).await?;
    let growth = sampler.peak(pid)?.saturating_sub(before);
    Ok((growth, watcher, server, docs, folder))
}

/// Reads the watcher until it reaches the log's end; checks it ends at every document's latest
/// version; returns the updates it read.
async fn catch_up(mut w: Watcher, addr: SocketAddr, docs: &[String]) -> anyhow::Result<usize> {
    let end = format!("\"{}\"", log_cursor(addr).await?);
    let started = Instant::now();
    let (mut count, mut latest) = (0, HashMap::new());
    loop {
        let left = CATCH_UP.checked_sub(started.elapsed()).ok_or_else(|| anyhow!("no catch-up in {CATCH_UP:?}"))?;
        let (version, change) = tokio::time::timeout(left, w.next()).await.context("the catch-up stalled")??;
        count += 1;
        let path = change["path"].as_str().ok_or_else(|| anyhow!("a change without a path: {change}"))?;
        latest.insert(path.to_string(), change["version"].clone());
        if version == end {
            break;
        }
    }
    let mut conn = Conn::connect(addr).await?;
    for doc in docs {
        let r = conn.request("GET", doc, &[], b"").await?;
        let header = r.header("version").ok_or_else(|| anyhow!("GET {doc}: no Version"))?;
        let current = VersionSet::parse_header(header.as_bytes()).map_err(|e| anyhow!("GET {doc}: {e}"))?;
        let seen = latest.get(doc.as_str()).ok_or_else(|| anyhow!("the catch-up never named {doc}"))?;
        ensure!(
            *seen == serde_json::json!(current.ids()),
            "{doc}: the catch-up ended at version {seen}, the document is at {header}"
        );
    }
    Ok(count)
}

/// Runs F5.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let changes = if ctx.smoke { SMOKE_CHANGES } else { CHANGES };
    tracing::info!(changes, "F5: the writes alone (the reference)");
    let (alone, _, server, _, _) = side(ctx, false, changes).await?;
    drop(server);
    tracing::info!(changes, "F5: the writes with a stalled folder watcher");
    let (growth, watcher, server, docs, _) = side(ctx, true, changes).await?;
    let watcher = watcher.ok_or_else(|| anyhow!("no watcher"))?;
    let updates = catch_up(watcher, server.addr(), &docs).await?;

    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let scenario = format!("F5 ({changes} changes, {DOCS} docs)");
    Ok(vec![
        Row {
            reference: Some(("the same writes, no watcher, fresh server".into(), mib(alone))),
            ..Row::info(&scenario, "server RSS growth during the writes, one stalled watcher", mib(growth), "MiB")
        },
        Row {
            target: Target::AbsoluteAtMost(BOUND_MIB),
            ..Row::info(
                &scenario,
                "the stalled watcher's share: growth with it − growth without",
                mib(growth) - mib(alone),
                "MiB",
            )
        },
        Row {
            reference: Some(("changes made while it did not read".into(), changes as f64)),
            target: Target::AtMost(1.0),
            ..Row::info(
                &scenario,
                "updates in its catch-up (ends at every document's latest version)",
                updates as f64,
                "updates",
            )
        },
    ])
}
