//! FILES (issue 15): files as versioned resources, each figure against a reference measured in
//! the same run. Every file is random bytes (incompressible: LZ4 is tried on every chunk and
//! saves nothing, so chunks are stored as they are), sent as `application/octet-stream`.
//!
//! - **Ingest**: server CPU per MiB of a 256 MiB `PUT` against the same bytes through the same
//!   pipeline in process (`chunks_ref::ingest`: chunking + BLAKE3 + SHA-256 + LZ4 attempt +
//!   synced `RocksChunkStore` writes). Target ≤ 1.5×. Two rounds of fresh bytes, alternating.
//!   Both sides' CPU comes from `/proc/<pid>/stat`, which keeps the time of exited threads
//!   (the server's upload writer thread ends with its upload).
//! - **Memory**: the server's RSS, sampled from /proc every 5 ms during a 1 GiB `PUT`, against
//!   its RSS before it. Target: growth ≤ 64 MiB.
//! - **Download**: a whole 256 MiB `GET` and a 64 MiB `Range` from its middle, read to the end
//!   by the same plain HTTP/1.1 client (each piece compared with the bytes sent), against nginx
//!   serving the same bytes from a file (`nginx.rs`). Target ≥ 0.5× nginx's throughput.
//! - **Dedupe**: 20 versions of a 64 MiB file, each a few KiB changed at a random place, then
//!   the chunk store's size on disk (`<data-dir>/chunks`) against one copy of the file and
//!   against the distinct chunks of the 20 versions (chunked in process: what any store of
//!   these chunks must keep). No target was set; the figures say how close it comes.
//!
//! - **Delta**: bytes on the wire (both ways) to commit a 256 MiB file after a 1 MiB change in
//!   its middle through the delta exchange (`/.plait/missing`, `/.plait/chunk`,
//!   `/.plait/commit`: only the chunks the server lacks travel), against the same file sent
//!   whole. No target was set.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Context};
use rand::{Rng, RngCore, SeedableRng};

use super::client::Conn;
use super::nginx::Nginx;
use super::procs::{cpu_ns, cpu_ns_with_exited, rss_bytes};
use super::report::{Row, Target};
use super::{chunks_ref, Ctx, Server};
use plait::chunks::{chunker::chunk_all, ChunkId, ChunkParams};

pub(crate) const MIB: f64 = 1024.0 * 1024.0;
/// The client writes request bodies in pieces of this size.
pub(crate) const PIECE: usize = 1 << 20;
/// How often the memory run reads the server's RSS.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// How much of everything (full sizes as the issue says; smoke: seconds, a few MiB of disk).
struct Sizes {
    ingest: usize,
    ingest_rounds: u64,
    memory: u64,
    /// The ranged GET: first byte and length, within the ingested file.
    range: (u64, u64),
    download_rounds: usize,
    dedupe: usize,
    versions: usize,
    /// The delta exchange: the file, and the bytes changed in its middle.
    delta: usize,
    delta_change: usize,
}

const FULL: Sizes = Sizes {
    ingest: 256 << 20,
    ingest_rounds: 2,
    memory: 1 << 30,
    range: (96 << 20, 64 << 20),
    download_rounds: 3,
    dedupe: 64 << 20,
    versions: 20,
    delta: 256 << 20,
    delta_change: 1 << 20,
};

const SMOKE: Sizes = Sizes {
    ingest: 4 << 20,
    ingest_rounds: 1,
    memory: 8 << 20,
    range: (3 << 19, 1 << 20),
    download_rounds: 1,
    dedupe: 2 << 20,
    versions: 3,
    delta: 8 << 20,
    delta_change: 256 << 10,
};

pub(crate) fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut bytes);
    bytes
}

pub(crate) fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB
}

/// `PUT`s a file of `len` bytes at `path`, written piece by piece as `fill(offset, piece)` makes
/// them, counting what was sent in `sent`; returns the wall time to the 200 and the bytes on the
/// wire (request and response).
pub(crate) async fn put_file(
    addr: SocketAddr,
    path: &str,
    len: u64,
    sent: &AtomicU64,
    mut fill: impl FnMut(u64, &mut [u8]),
) -> anyhow::Result<(f64, u64)> {
    let mut conn = Conn::connect(addr).await?;
    let started = Instant::now();
    conn.send_head("PUT", path, &[("content-type", "application/octet-stream")], len).await?;
    let mut piece = vec![0u8; PIECE];
    let mut at = 0u64;
    while at < len {
        let n = usize::try_from(len - at).unwrap_or(PIECE).min(PIECE);
        fill(at, &mut piece[..n]);
        conn.write_body(&piece[..n]).await?;
        at += n as u64;
        sent.store(at, Ordering::Relaxed);
    }
    let res = conn.read_response(false).await?;
    let wall = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&res.body);
    ensure!(res.status == 200, "PUT {path} ({len} bytes) answered {}: {text}", res.status);
    Ok((wall, conn.sent + conn.received))
}

/// `PUT`s `data` at `path`.
pub(crate) async fn put_bytes(addr: SocketAddr, path: &str, data: &[u8]) -> anyhow::Result<f64> {
    let sent = AtomicU64::new(0);
    let (wall, _) = put_file(addr, path, data.len() as u64, &sent, |at, piece| {
        let at = at as usize;
        piece.copy_from_slice(&data[at..at + piece.len()]);
    })
    .await?;
    Ok(wall)
}

/// `GET`s `path` (bytes `start..start + expect.len()` with `Range` when `ranged`) and reads
/// it to the end, comparing every piece with `expect`; returns the wall time.
async fn get_file(addr: SocketAddr, path: &str, ranged: Option<u64>, expect: &[u8]) -> anyhow::Result<f64> {
    let mut conn = Conn::connect(addr).await?;
    let started = Instant::now();
    let range = ranged.map(|start| format!("bytes={start}-{}", start + expect.len() as u64 - 1));
    let headers: Vec<(&str, &str)> = range.iter().map(|r| ("range", r.as_str())).collect();
    conn.send("GET", path, &headers, b"").await?;
    let head = conn.read_head().await?;
    let status = if ranged.is_some() { 206 } else { 200 };
    ensure!(head.status == status, "GET {path} at {addr} answered {}, not {status}", head.status);
    let len: u64 = head.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    ensure!(len == expect.len() as u64, "GET {path} at {addr}: {len} bytes, not {}", expect.len());
    let mut at = 0usize;
    conn.read_body_with(len, |piece| {
        ensure!(piece == &expect[at..at + piece.len()], "GET {path} at {addr}: other bytes at {at}");
        at += piece.len();
        Ok(())
    })
    .await?;
    Ok(started.elapsed().as_secs_f64())
}

/// The server's process id and data dir: FILES and UPLOADS read them, so they need a server
/// they started.
pub(crate) fn child(server: &Server) -> anyhow::Result<(u32, PathBuf)> {
    match server {
        Server::Child(p) => {
            let dir = p.data.as_ref().ok_or_else(|| anyhow!("the server has no data dir"))?;
            Ok((p.pid(), dir.path().to_path_buf()))
        }
        Server::External { .. } => {
            anyhow::bail!("FILES and UPLOADS read the server's data dir and memory: run them without --url")
        }
    }
}

/// Runs FILES.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let sizes = if ctx.smoke { &SMOKE } else { &FULL };
    let mut rows = Vec::new();
    let server = ctx.server(&[])?;
    let (pid, _) = child(&server)?;
    let path = ctx.doc("files-ingest");
    let data = ingest(server.addr(), pid, &path, sizes, &mut rows).await?;
    download(server.addr(), pid, &path, &data, sizes, &mut rows).await?;
    drop((server, data));
    memory(ctx, sizes, &mut rows).await?;
    dedupe(ctx, sizes, &mut rows).await?;
    delta(ctx, sizes, &mut rows).await?;
    Ok(rows)
}

/// The ingest rounds; returns the first round's bytes (stored at `path`, for the downloads).
async fn ingest(addr: SocketAddr, pid: u32, path: &str, sizes: &Sizes, rows: &mut Vec<Row>) -> anyhow::Result<Vec<u8>> {
    let (mut server_cpu, mut server_wall, mut ref_cpu, mut ref_wall) = (0.0, 0.0, 0.0, 0.0);
    let mut kept = None;
    for round in 0..sizes.ingest_rounds {
        let data = random(sizes.ingest, 10 + round);
        tracing::info!(round, mib = mib(data.len() as u64), "FILES: ingest, in-process reference");
        let dir = tempfile::tempdir().context("reference temp dir")?;
        let (cpu, wall) = tokio::task::block_in_place(|| chunks_ref::ingest(&data, &dir.path().join("chunks")))?;
        drop(dir);
        ref_cpu += cpu;
        ref_wall += wall;
        tracing::info!(round, "FILES: ingest, PUT");
        let target = if round == 0 { path.to_string() } else { format!("{path}-{round}") };
        let before = cpu_ns_with_exited(pid)?;
        server_wall += put_bytes(addr, &target, &data).await?;
        server_cpu += cpu_ns_with_exited(pid)?.saturating_sub(before) as f64 / 1e9;
        if round == 0 {
            kept = Some(data);
        }
    }
    let total = mib(sizes.ingest as u64 * sizes.ingest_rounds);
    let scenario = format!("FILES ingest ({} MiB)", sizes.ingest >> 20);
    let what = format!("{} PUTs of {} MiB of random bytes", sizes.ingest_rounds, sizes.ingest >> 20);
    rows.push(Row {
        reference: Some((
            "in process, same bytes: chunking + BLAKE3 + SHA-256 + LZ4 attempt + synced RocksChunkStore puts".into(),
            ref_cpu * 1000.0 / total,
        )),
        target: Target::AtMost(1.5),
        ..Row::info(&scenario, &format!("server CPU per MiB ({what})"), server_cpu * 1000.0 / total, "ms/MiB")
    });
    rows.push(Row {
        reference: Some(("the in-process reference, wall".into(), total / ref_wall)),
        ..Row::info(&scenario, "PUT throughput, wall (request head to 200)", total / server_wall, "MiB/s")
    });
    kept.ok_or_else(|| anyhow!("no ingest round ran"))
}

/// Throughputs and CPU of the downloads, summed over rounds.
#[derive(Default)]
struct Reads {
    walls: Vec<f64>,
    cpu: f64,
}

impl Reads {
    fn median(&mut self, bytes: u64) -> f64 {
        self.walls.sort_by(f64::total_cmp);
        mib(bytes) / self.walls[self.walls.len() / 2]
    }
}

/// Whole and ranged GETs of the ingested file from plait and from nginx, alternating.
async fn download(
    addr: SocketAddr,
    pid: u32,
    path: &str,
    data: &[u8],
    sizes: &Sizes,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let nginx = Nginx::start(&[("file.bin", data)])?;
    let (start, len) = sizes.range;
    let range = &data[start as usize..(start + len) as usize];
    // [plait, nginx sendfile, nginx copying] × [whole, ranged]
    let mut reads: [[Reads; 2]; 3] = Default::default();
    let servers =
        [(addr, pid, path), (nginx.sendfile, nginx.pid(), "/file.bin"), (nginx.copying, nginx.pid(), "/file.bin")];
    // plait's CPU with its exited threads (10 ms ticks: ~1% of its CPU per read here); nginx
    // is one thread that never exits, and spends too little for ticks: its `schedstat`.
    let cpu = |which: usize, pid: u32| if which == 0 { cpu_ns_with_exited(pid) } else { cpu_ns(pid) };
    // One unmeasured read each first: the bytes in the page cache for all of them alike.
    for (addr, _, path) in servers {
        get_file(addr, path, None, data).await?;
    }
    for round in 0..sizes.download_rounds {
        tracing::info!(round, "FILES: downloads");
        for (which, (addr, pid, path)) in servers.into_iter().enumerate() {
            for (kind, (ranged, expect)) in [(None, data), (Some(start), range)].into_iter().enumerate() {
                let before = cpu(which, pid)?;
                let wall = get_file(addr, path, ranged, expect).await?;
                let r = &mut reads[which][kind];
                r.cpu += cpu(which, pid)?.saturating_sub(before) as f64 / 1e9;
                r.walls.push(wall);
            }
        }
    }
    let rounds = sizes.download_rounds as f64;
    let labels = [format!("whole {} MiB GET", data.len() >> 20), format!("Range: {} MiB from byte {start}", len >> 20)];
    for (kind, (bytes, label)) in [(data.len() as u64, &labels[0]), (len, &labels[1])].into_iter().enumerate() {
        let scenario = "FILES download";
        let n = sizes.download_rounds;
        let plait = reads[0][kind].median(bytes);
        let sendfile = reads[1][kind].median(bytes);
        let copying = reads[2][kind].median(bytes);
        let cpu = |which: usize| reads[which][kind].cpu * 1000.0 / (mib(bytes) * rounds);
        rows.push(Row {
            reference: Some(("nginx, same bytes from a file, sendfile on".into(), sendfile)),
            target: Target::AtLeast(0.5),
            ..Row::info(scenario, &format!("{label}, throughput (median of {n}, same client)"), plait, "MiB/s")
        });
        rows.push(Row {
            reference: Some(("nginx, sendfile off (read + write, 64 KiB buffers)".into(), copying)),
            ..Row::info(scenario, &format!("{label}, throughput"), plait, "MiB/s")
        });
        rows.push(Row {
            reference: Some(("nginx CPU per MiB, sendfile on".into(), cpu(1))),
            ..Row::info(scenario, &format!("{label}, server CPU per MiB"), cpu(0), "ms/MiB")
        });
        rows.push(Row {
            reference: Some(("nginx CPU per MiB, sendfile off".into(), cpu(2))),
            ..Row::info(scenario, &format!("{label}, server CPU per MiB"), cpu(0), "ms/MiB")
        });
    }
    Ok(())
}

/// RSS of `pid` (bytes) against the bytes sent so far, until `stop`.
pub(crate) fn sample_rss(
    pid: u32,
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<(u64, u64)>> {
    std::thread::spawn(move || {
        let mut samples = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            if let Ok(rss) = rss_bytes(pid) {
                samples.push((sent.load(Ordering::Relaxed), rss));
            }
            std::thread::sleep(SAMPLE_EVERY);
        }
        samples
    })
}

/// A `PUT` of `sizes.memory` fresh random bytes with the server's RSS sampled throughout.
async fn memory(ctx: &Ctx, sizes: &Sizes, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let server = ctx.server(&[])?;
    let (pid, _) = child(&server)?;
    let fresh = rss_bytes(pid)?;
    // A small file first, so what is measured is an upload, not the chunk engine's first use.
    put_bytes(server.addr(), &ctx.doc("files-warm-up"), &random(4 << 20, 20)).await?;
    let before = rss_bytes(pid)?;
    let len = sizes.memory;
    tracing::info!(mib = mib(len), "FILES: memory during a PUT");
    let (sent, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let sampler = sample_rss(pid, sent.clone(), stop.clone());
    let mut rng = rand::rngs::StdRng::seed_from_u64(21);
    let put = put_file(server.addr(), &ctx.doc("files-memory"), len, &sent, |_, piece| rng.fill_bytes(piece)).await;
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().map_err(|_| anyhow!("the RSS sampler panicked"))?;
    let (wall, _) = put?;
    let after = rss_bytes(pid)?;
    let peak = |from: u64, to: u64| {
        samples.iter().filter(|(s, _)| (from..to).contains(s)).map(|(_, rss)| *rss).max().unwrap_or(before)
    };
    let growth = |rss: u64| mib(rss.saturating_sub(before));
    let scenario = format!("FILES memory ({} MiB PUT)", len >> 20);
    rows.push(Row {
        target: Target::AbsoluteAtMost(64.0),
        ..Row::info(
            &scenario,
            &format!(
                "server RSS growth, peak during the PUT ({} samples, every 5 ms; against RSS before it)",
                samples.len()
            ),
            growth(peak(0, u64::MAX)),
            "MiB",
        )
    });
    rows.push(Row::info(&scenario, "the same, peak over the first half of the body", growth(peak(0, len / 2)), "MiB"));
    rows.push(Row::info(&scenario, "the same, peak over the second half", growth(peak(len / 2, u64::MAX)), "MiB"));
    rows.push(Row::info(&scenario, "server RSS growth once answered", growth(after), "MiB"));
    rows.push(Row::info(&scenario, "server RSS before the PUT (after a 4 MiB warm-up PUT)", mib(before), "MiB"));
    rows.push(Row::info(&scenario, "server RSS when it started, before the warm-up", mib(fresh), "MiB"));
    rows.push(Row::info(&scenario, "PUT throughput, wall", mib(len) / wall, "MiB/s"));
    Ok(())
}

/// Bytes of the files under `dir`: (allocated on disk, apparent lengths).
fn dir_size(dir: &Path) -> anyhow::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let (mut allocated, mut apparent) = (0, 0);
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            let (a, b) = dir_size(&entry.path())?;
            allocated += a;
            apparent += b;
        } else {
            allocated += meta.blocks() * 512;
            apparent += meta.len();
        }
    }
    Ok((allocated, apparent))
}

/// A small edit at a random place: odd versions overwrite 4 KiB, even ones insert 2 KiB
/// (content-defined chunks realign after an insertion; fixed-size blocks would not).
fn edit(file: &mut Vec<u8>, version: usize, rng: &mut rand::rngs::StdRng) {
    let at = rng.random_range(0..file.len() - 4096);
    if version % 2 == 1 {
        rng.fill_bytes(&mut file[at..at + 4096]);
    } else {
        let mut insert = vec![0u8; 2048];
        rng.fill_bytes(&mut insert);
        file.splice(at..at, insert);
    }
}

/// `sizes.versions` versions of one file, then the chunk store's size.
async fn dedupe(ctx: &Ctx, sizes: &Sizes, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let mut server = ctx.server(&[])?;
    let (_, data_dir) = child(&server)?;
    let chunks_dir = data_dir.join("chunks");
    let path = ctx.doc("files-dedupe");
    let mut rng = rand::rngs::StdRng::seed_from_u64(30);
    let mut file = random(sizes.dedupe, 31);
    let mut distinct: HashMap<ChunkId, u64> = HashMap::new();
    let mut logical = 0u64;
    tracing::info!(versions = sizes.versions, mib = mib(file.len() as u64), "FILES: dedupe");
    for version in 0..sizes.versions {
        if version > 0 {
            edit(&mut file, version, &mut rng);
        }
        let (chunks, _) = tokio::task::block_in_place(|| chunk_all(ChunkParams::default(), &file));
        distinct.extend(chunks.iter().map(|c| (c.id, c.data.len() as u64)));
        logical += file.len() as u64;
        put_bytes(server.addr(), &path, &file).await?;
    }
    let (now, _) = dir_size(&chunks_dir)?;
    // A restart replays RocksDB's write-ahead log into the blob files and drops the log: what
    // the store keeps for good.
    server.restart()?;
    let (kept, kept_apparent) = dir_size(&chunks_dir)?;
    get_file(server.addr(), &path, None, &file).await.context("the last version after the restart")?;
    let overview = chunks_overview(server.addr()).await?;
    let figure = |name: &str| overview[name].as_u64().ok_or_else(|| anyhow!("/.plait/chunks has no {name}"));
    let (stored, server_logical) = (figure("stored_bytes")?, figure("logical_bytes")?);
    ensure!(server_logical == logical, "the server counts {server_logical} logical bytes, {logical} were sent");
    let one = mib(sizes.dedupe as u64);
    let ideal = mib(distinct.values().sum());
    let n = sizes.versions;
    let scenario = format!("FILES dedupe ({n} versions of {} MiB)", sizes.dedupe >> 20);
    let copy = || Some(("one copy of the file".to_string(), one));
    let rows_here = [
        Row { reference: copy(), ..Row::info(&scenario, "chunk store on disk right after the PUTs", mib(now), "MiB") },
        Row { reference: copy(), ..Row::info(&scenario, "chunk store on disk after a restart", mib(kept), "MiB") },
        Row {
            reference: copy(),
            ..Row::info(&scenario, "distinct chunks of the versions, chunked in process", ideal, "MiB")
        },
        Row {
            reference: copy(),
            ..Row::info(&scenario, "stored bytes, the server's own figure (`GET /.plait/chunks`)", mib(stored), "MiB")
        },
        Row {
            reference: Some(("distinct chunks (the floor for any chunk store)".into(), ideal)),
            ..Row::info(&scenario, "chunk store on disk after a restart (file lengths)", mib(kept_apparent), "MiB")
        },
        Row {
            reference: Some(("chunk store on disk after a restart".into(), mib(kept))),
            ..Row::info(
                &scenario,
                &format!("logical bytes of the {n} versions (ratio: dedupe factor)"),
                mib(logical),
                "MiB",
            )
        },
    ];
    rows.extend(rows_here);
    Ok(())
}

/// `GET /.plait/chunks`: the server's chunking parameters and store figures.
async fn chunks_overview(addr: SocketAddr) -> anyhow::Result<serde_json::Value> {
    let mut conn = Conn::connect(addr).await?;
    let res = conn.request("GET", "/.plait/chunks", &[], b"").await?;
    ensure!(res.status == 200, "GET /.plait/chunks answered {}", res.status);
    serde_json::from_slice(&res.body).context("GET /.plait/chunks: not JSON")
}

/// A file `PUT` whole, then `sizes.delta_change` bytes in its middle changed and committed
/// through the delta exchange, counting every byte on the wire both ways.
async fn delta(ctx: &Ctx, sizes: &Sizes, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let server = ctx.server(&[])?;
    let addr = server.addr();
    let path = ctx.doc("files-delta");
    let mut file = random(sizes.delta, 40);
    tracing::info!(mib = mib(file.len() as u64), "FILES: delta exchange");
    let sent = AtomicU64::new(0);
    let (_, whole) = put_file(addr, &path, file.len() as u64, &sent, |at, piece| {
        let at = at as usize;
        piece.copy_from_slice(&file[at..at + piece.len()]);
    })
    .await?;
    let overview = chunks_overview(addr).await?;
    let param = |name: &str| overview["chunking"][name].as_u64().map(|n| n as usize);
    let params = match (param("min"), param("avg"), param("max")) {
        (Some(min), Some(avg), Some(max)) => ChunkParams::new(min, avg, max).map_err(|e| anyhow!("{e}"))?,
        _ => anyhow::bail!("GET /.plait/chunks has no chunking parameters: {overview}"),
    };
    let at = (file.len() - sizes.delta_change) / 2;
    rand::rngs::StdRng::seed_from_u64(41).fill_bytes(&mut file[at..at + sizes.delta_change]);
    let (chunks, summary) = tokio::task::block_in_place(|| chunk_all(params, &file));

    let mut conn = Conn::connect(addr).await?;
    let ids: Vec<String> = chunks.iter().map(|c| c.id.to_string()).collect();
    let ask = serde_json::json!({ "chunks": ids }).to_string();
    let res = conn.request("POST", &format!("/.plait/missing{path}"), &[], ask.as_bytes()).await?;
    ensure!(res.status == 200, "POST /.plait/missing answered {}", res.status);
    let answer: serde_json::Value = serde_json::from_slice(&res.body).context("missing: not JSON")?;
    let missing: Vec<&str> = answer["missing"].as_array().into_iter().flatten().filter_map(|v| v.as_str()).collect();
    let mut new_bytes = 0u64;
    for c in chunks.iter().filter(|c| missing.contains(&c.id.to_string().as_str())) {
        let res = conn.request("PUT", &format!("/.plait/chunk{path}?id={}", c.id), &[], &c.data).await?;
        ensure!(res.status == 200, "PUT /.plait/chunk answered {}", res.status);
        new_bytes += c.data.len() as u64;
    }
    let list: Vec<serde_json::Value> =
        chunks.iter().map(|c| serde_json::json!({ "id": c.id.to_string(), "len": c.data.len() })).collect();
    let digest = plait::protocol::digest::repr_digest_sha256(&summary.sha256);
    let headers = [("repr-digest", digest.as_str()), ("content-type", "application/octet-stream")];
    let body = serde_json::json!({ "chunks": list }).to_string();
    let res = conn.request("POST", &format!("/.plait/commit{path}"), &headers, body.as_bytes()).await?;
    ensure!(res.status == 200, "POST /.plait/commit answered {}: {}", res.status, String::from_utf8_lossy(&res.body));
    let wire = conn.sent + conn.received;
    get_file(addr, &path, None, &file).await.context("the committed version")?;

    let scenario = format!("FILES delta ({} MiB file)", sizes.delta >> 20);
    let change = format!("{} KiB", sizes.delta_change >> 10);
    rows.push(Row {
        reference: Some(("the same file sent whole (a PUT), both ways".into(), mib(whole))),
        ..Row::info(
            &scenario,
            &format!("bytes on the wire to commit it after {change} changed in its middle (missing, chunks, commit; both ways)"),
            mib(wire),
            "MiB",
        )
    });
    rows.push(Row {
        reference: Some((format!("the {change} changed"), mib(sizes.delta_change as u64))),
        ..Row::info(
            &scenario,
            &format!("bytes of the {} chunks sent, of {}", missing.len(), chunks.len()),
            mib(new_bytes),
            "MiB",
        )
    });
    Ok(())
}
