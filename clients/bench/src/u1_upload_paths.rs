//! U1 (issue 17): 10, 64 and 128 MiB uploads through each way into Plait, every figure against
//! a reference measured in the same run, in three rounds, each round in a rotated order
//! (medians of the wall times, CPU summed over the rounds).
//!
//! The ways: (a) a plain `PUT` of the file resource (FILES's ingest, `files::put_file`);
//! (b) tus, `POST` then one streaming `PATCH` (tus-js-client's default `chunkSize: Infinity`),
//! and `POST` then 5 MiB `PATCH`es (a `chunkSize` people set for proxies and retries), one
//! keep-alive connection as a browser uses; each into Plait with its local chunk engine and
//! into Plait with `--blob-store s3://…` on a SeaweedFS it starts (`seaweed`); (c) direct to
//! S3: Plait signs each 5 MiB part, the client `PUT`s it to SeaweedFS, Plait completes the
//! upload into a version (`direct`: what Uppy's `@uppy/aws-s3` does). The references: the very
//! same requests, same bytes, same client, to the no-op handler (`plait-bench noop`: the
//! server's own HTTP stack reading the body and doing nothing: what moving the bytes costs);
//! the same bytes written to SeaweedFS alone, in presigned 5 MiB parts (create, one presigned
//! `PUT` per part from the same client, complete: (c) without Plait, signed in process with the
//! server library's `chunks::s3::Bucket`); and for tus the plain `PUT` into the same server
//! (what resumability costs over it). Every Plait upload is checked afterwards: the version's
//! `Repr-Digest` must be the SHA-256 of the bytes sent.
//!
//! Each round uses fresh servers (warmed up by a 1 MiB `PUT`) and each size a fresh SeaweedFS,
//! so the disk holds at most one size's uploads; each upload carries fresh random bytes, so no
//! upload dedupes against another.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Context};
use plait::chunks::s3::Bucket;

use super::client::Conn;
use super::direct;
use super::files::{child, mib, put_bytes, put_file, random};
use super::procs::{cpu_ns, cpu_ns_with_exited, ServerProc};
use super::report::Row;
use super::seaweed::{Seaweed, BUCKET};
use super::tus::{self, Peer};
use super::Ctx;

/// How much: the file sizes, the chunked variants' `PATCH` and part size, the rounds.
struct Sizes {
    files: &'static [usize],
    patch: usize,
    rounds: usize,
}

const FULL: Sizes = Sizes { files: &[10 << 20, 64 << 20, 128 << 20], patch: 5 << 20, rounds: 3 };
/// Smoke: sizes that still make several `PATCH`es and an uneven last one (S3 parts must be
/// 5 MiB but the last: one part here).
const SMOKE: Sizes = Sizes { files: &[1 << 20, 3 << 20], patch: 768 << 10, rounds: 1 };

/// One way in.
#[derive(Clone, Copy, Debug)]
enum Way {
    Put,
    TusOne,
    TusChunked,
}

/// Who receives it.
#[derive(Clone, Copy, Debug)]
enum Side {
    /// Plait with its local chunk engine.
    Plait(Way),
    /// Plait with `--blob-store s3://…`.
    PlaitS3(Way),
    /// The no-op handler (the same requests).
    Noop(Way),
    /// SeaweedFS alone: presigned parts.
    S3Alone,
    /// Direct to SeaweedFS through Plait's signing routes, then a version.
    Direct,
}

const SIDES: [Side; 11] = [
    Side::Plait(Way::Put),
    Side::Plait(Way::TusOne),
    Side::Plait(Way::TusChunked),
    Side::Noop(Way::Put),
    Side::Noop(Way::TusOne),
    Side::Noop(Way::TusChunked),
    Side::PlaitS3(Way::Put),
    Side::PlaitS3(Way::TusOne),
    Side::PlaitS3(Way::TusChunked),
    Side::S3Alone,
    Side::Direct,
];

/// Wall times and CPU of one side at one size, over the rounds.
#[derive(Default)]
struct Runs {
    walls: Vec<f64>,
    cpu: f64,
}

impl Runs {
    fn median_ms(&self) -> f64 {
        let mut walls = self.walls.clone();
        walls.sort_by(f64::total_cmp);
        walls.get(walls.len() / 2).copied().unwrap_or(0.0) * 1000.0
    }
}

/// Sends `data` to `target` one way; returns the wall time from the first request to the last
/// answer (the connection already open).
async fn send(way: Way, peer: Peer, addr: SocketAddr, target: &str, data: &[u8], patch: usize) -> anyhow::Result<f64> {
    if let Way::Put = way {
        let sent = std::sync::atomic::AtomicU64::new(0);
        let (wall, _) = put_file(addr, target, data.len() as u64, &sent, |at, piece| {
            let at = at as usize;
            piece.copy_from_slice(&data[at..at + piece.len()]);
        })
        .await?;
        return Ok(wall);
    }
    let patch = if let Way::TusChunked = way { patch } else { usize::MAX };
    let mut conn = Conn::connect(addr).await?;
    let started = Instant::now();
    tus::upload(&mut conn, peer, target, data, patch).await?;
    Ok(started.elapsed().as_secs_f64())
}

/// `data` written to the bucket alone as a multipart upload of `part`-byte parts, each `PUT` to
/// a presigned URL by the benchmark's client on one keep-alive connection; returns the wall
/// time from creation to completion (the object is deleted afterwards).
async fn s3_alone(bucket: &Bucket, name: &str, data: &[u8], part: usize) -> anyhow::Result<f64> {
    let s3 = |e: plait::chunks::s3::S3Error| anyhow!("{e}");
    let key = bucket.upload_key(name).map_err(s3)?;
    let started = Instant::now();
    let upload = bucket.create_multipart(&key).await.map_err(s3)?;
    let mut conn = None;
    let mut parts = Vec::new();
    for (i, bytes) in data.chunks(part).enumerate() {
        let number = i as u32 + 1;
        let url = bucket.sign_part(&key, &upload, number, Duration::from_secs(3600)).await.map_err(s3)?;
        parts.push((number, direct::put_part(&mut conn, &url, bytes).await?));
    }
    bucket.complete(&key, &upload, &parts).await.map_err(s3)?;
    let wall = started.elapsed().as_secs_f64();
    let size = bucket.size(&key).await.map_err(s3)?;
    ensure!(size == Some(data.len() as u64), "the completed object holds {size:?} bytes, not {}", data.len());
    bucket.delete(&key).await.map_err(s3)?;
    Ok(wall)
}

/// A direct upload through Plait's routes (grant `endpoint`), parts of `part` bytes; returns
/// the wall time from creation to the version, and the version's path.
async fn through_plait(
    addr: SocketAddr,
    endpoint: &str,
    name: &str,
    data: &[u8],
    part: usize,
) -> anyhow::Result<(f64, String)> {
    let mut conn = Conn::connect(addr).await?;
    let started = Instant::now();
    let location = direct::upload(&mut conn, endpoint, name, data, part).await?;
    Ok((started.elapsed().as_secs_f64(), location))
}

/// Runs U1.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let sizes = if ctx.smoke { &SMOKE } else { &FULL };
    let noop = ServerProc::noop()?;
    // S3's parts are 5 MiB at least, but the last (smoke: one part).
    let part = sizes.patch.max(5 << 20);
    let mut rows = Vec::new();
    for &len in sizes.files {
        let weed = tokio::task::block_in_place(Seaweed::start)?;
        let bucket = weed.engine("reference")?.bucket();
        let mut runs: [Runs; SIDES.len()] = Default::default();
        for round in 0..sizes.rounds {
            tracing::info!(round, mib = mib(len as u64), "U1: uploads, each way");
            let local = ctx.server(&[])?;
            let store = format!("s3://{BUCKET}/u1-{}-{round}", len >> 20);
            let remote = ctx.server_with_env(&["--blob-store", &store, "--direct-uploads"], &weed.env())?;
            for server in [&local, &remote] {
                put_bytes(server.addr(), &ctx.doc("u1-warm-up.bin"), &random(1 << 20, 100)).await?;
            }
            let folder = format!("{}/", ctx.doc(&format!("u1-direct-{round}")));
            let endpoint = direct::grant(&mut Conn::connect(remote.addr()).await?, &folder).await?;
            for k in 0..SIDES.len() {
                // Each round starts with another side, so none always goes first.
                let which = (round * 3 + k) % SIDES.len();
                let data = random(len, (len as u64) ^ (((round * SIDES.len() + which) as u64) << 40));
                let target = ctx.doc(&format!("u1-{}-{round}-{which}.bin", len >> 20));
                let (wall, cpu) = match SIDES[which] {
                    Side::Plait(way) | Side::PlaitS3(way) => {
                        let server = if let Side::Plait(_) = SIDES[which] { &local } else { &remote };
                        let (pid, _) = child(server)?;
                        let sha = tokio::task::block_in_place(|| tus::sha256(&data));
                        let before = cpu_ns_with_exited(pid)?;
                        let wall = send(way, Peer::Plait, server.addr(), &target, &data, sizes.patch).await?;
                        let cpu = cpu_ns_with_exited(pid)?.saturating_sub(before);
                        tus::check_version(server.addr(), &target, len as u64, &sha)
                            .await
                            .with_context(|| format!("U1 {:?} of {len} bytes", SIDES[which]))?;
                        (wall, cpu)
                    }
                    Side::Noop(way) => {
                        let before = cpu_ns(noop.pid())?;
                        let wall = send(way, Peer::Noop, noop.addr, &target, &data, sizes.patch).await?;
                        (wall, cpu_ns(noop.pid())?.saturating_sub(before))
                    }
                    Side::S3Alone => {
                        let name = format!("{}-{round}.bin", len >> 20);
                        (s3_alone(&bucket, &name, &data, part).await?, 0)
                    }
                    Side::Direct => {
                        let (pid, _) = child(&remote)?;
                        let sha = tokio::task::block_in_place(|| tus::sha256(&data));
                        let name = format!("u1-{}-{round}.bin", len >> 20);
                        let before = cpu_ns_with_exited(pid)?;
                        let (wall, location) = through_plait(remote.addr(), &endpoint, &name, &data, part).await?;
                        let cpu = cpu_ns_with_exited(pid)?.saturating_sub(before);
                        tus::check_version(remote.addr(), &location, len as u64, &sha).await.context("U1 direct")?;
                        (wall, cpu)
                    }
                };
                runs[which].walls.push(wall);
                runs[which].cpu += cpu as f64 / 1e9;
            }
        }
        report(len, sizes, &runs, &mut rows);
    }
    Ok(rows)
}

/// The rows of one size.
fn report(len: usize, sizes: &Sizes, runs: &[Runs; SIDES.len()], rows: &mut Vec<Row>) {
    let scenario = format!("U1 ({} MiB)", len >> 20);
    let patch = tus::size_label(sizes.patch);
    let labels = [
        "plain PUT of the file resource".to_string(),
        "tus, POST + one PATCH (tus-js-client's default chunkSize: Infinity)".to_string(),
        format!("tus, POST + {} PATCHes of {patch}", len.div_ceil(sizes.patch)),
    ];
    let noop_refs = [
        "the same PUT to the no-op handler",
        "the same 2 requests to the no-op handler",
        "the same requests to the no-op handler",
    ];
    let part = sizes.patch.max(5 << 20);
    let s3_alone = format!(
        "SeaweedFS alone, the same bytes as presigned parts of ≤ {} ({} of them)",
        tus::size_label(part),
        len.div_ceil(part)
    );
    let n = sizes.rounds;
    let total = mib(len as u64) * n as f64;
    let wall = |side: usize| runs[side].median_ms();
    let cpu = |side: usize| runs[side].cpu * 1000.0 / total;
    let row = |metric: String, value: f64, unit: &'static str, reference: &str, of: f64| Row {
        reference: Some((reference.to_string(), of)),
        ..Row::info(&scenario, &metric, value, unit)
    };
    for (w, label) in labels.iter().enumerate() {
        rows.push(row(format!("{label}, wall (median of {n})"), wall(w), "ms", noop_refs[w], wall(3 + w)));
    }
    for (w, label) in labels.iter().enumerate().skip(1) {
        rows.push(row(format!("{label}, wall"), wall(w), "ms", "plain PUT into the same server", wall(0)));
    }
    let noop_cpu = "the no-op handler reading the same PUT, CPU per MiB";
    rows.push(row(format!("{}, server CPU per MiB", labels[0]), cpu(0), "ms/MiB", noop_cpu, cpu(3)));
    for (w, label) in labels.iter().enumerate().skip(1) {
        let put_cpu = "plain PUT, server CPU per MiB";
        rows.push(row(format!("{label}, server CPU per MiB"), cpu(w), "ms/MiB", put_cpu, cpu(0)));
    }
    rows.push(row(format!("{s3_alone}, wall"), wall(9), "ms", noop_refs[0], wall(3)));
    for (w, label) in labels.iter().enumerate() {
        let metric = format!("{label}, S3 engine (--blob-store on SeaweedFS), wall");
        rows.push(row(metric, wall(6 + w), "ms", &s3_alone, wall(9)));
    }
    rows.push(row(
        format!(
            "(c) direct to S3: Plait signs each part, the parts go to SeaweedFS, Plait completes ({} × ≤ {}), wall",
            len.div_ceil(part),
            tus::size_label(part)
        ),
        wall(10),
        "ms",
        &s3_alone,
        wall(9),
    ));
    rows.push(row("(c) direct to S3, wall".to_string(), wall(10), "ms", "plain PUT into the S3 engine", wall(6)));
    rows.push(row(
        "(c) direct to S3, Plait's CPU per MiB (signing, completion: reading the object into chunks)".to_string(),
        cpu(10),
        "ms/MiB",
        "plain PUT into the S3 engine",
        cpu(6),
    ));
    let local = "the same into the local chunk engine";
    rows.push(row(format!("{}, S3 engine, wall", labels[0]), wall(6), "ms", local, wall(0)));
    rows.push(row(format!("{}, S3 engine, Plait's CPU per MiB", labels[0]), cpu(6), "ms/MiB", local, cpu(0)));
}
