//! U1 (issue 17): 10, 64 and 128 MiB uploads through each way into Plait, every figure against
//! a reference measured in the same run, alternating, three rounds (medians of the wall times,
//! CPU summed over the rounds).
//!
//! The paths: (a) a plain `PUT` of the file resource (FILES's ingest, `files::put_file`);
//! (b) tus, `POST` then one streaming `PATCH` (tus-js-client's default `chunkSize: Infinity`),
//! and `POST` then 5 MiB `PATCH`es (a `chunkSize` people set for proxies and retries), one
//! keep-alive connection as a browser uses. The references: the very same requests, same bytes,
//! same client, sent to the no-op handler (`plait-bench noop`: the server's own HTTP stack
//! reading the body and doing nothing: what moving the bytes costs), and for tus the plain
//! `PUT` into the same server (what resumability costs over it). Every Plait upload is checked
//! afterwards: the target's `Repr-Digest` must be the SHA-256 of the bytes sent.
//!
//! Path (c), direct to S3-compatible storage via presigned parts, and the reference of the same
//! bytes written to the S3 server alone, need the S3 chunk engine (`--blob-store`): not yet in
//! this tree, so docs/BENCHMARKS.md marks those columns "not measured yet".
//!
//! Each round uses a fresh server per size (warmed up by a 1 MiB `PUT`) (its temp dir removed after), so the disk holds at
//! most one round of one size; each upload carries fresh random bytes, so no upload dedupes
//! against another.

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::Context;

use super::client::Conn;
use super::files::{child, mib, put_bytes, put_file, random};
use super::procs::{cpu_ns, cpu_ns_with_exited, ServerProc};
use super::report::Row;
use super::tus::{self, Peer};
use super::Ctx;

/// How much: the file sizes, the chunked variant's `PATCH` size, the rounds.
struct Sizes {
    files: &'static [usize],
    patch: usize,
    rounds: usize,
}

const FULL: Sizes = Sizes { files: &[10 << 20, 64 << 20, 128 << 20], patch: 5 << 20, rounds: 3 };
/// Smoke: sizes that still make several `PATCH`es and an uneven last one.
const SMOKE: Sizes = Sizes { files: &[1 << 20, 3 << 20], patch: 768 << 10, rounds: 1 };

/// One way in.
#[derive(Clone, Copy, Debug)]
enum Way {
    Put,
    TusOne,
    TusChunked,
}

const WAYS: [Way; 3] = [Way::Put, Way::TusOne, Way::TusChunked];

/// Wall times and CPU of one way at one size, over the rounds.
#[derive(Default)]
struct Runs {
    walls: Vec<f64>,
    cpu: f64,
}

impl Runs {
    fn median_ms(&mut self) -> f64 {
        self.walls.sort_by(f64::total_cmp);
        self.walls.get(self.walls.len() / 2).copied().unwrap_or(0.0) * 1000.0
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

/// Runs U1.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let sizes = if ctx.smoke { &SMOKE } else { &FULL };
    let noop = ServerProc::noop()?;
    let mut rows = Vec::new();
    for &len in sizes.files {
        // [Plait, no-op] × WAYS
        let mut runs: [[Runs; 3]; 2] = Default::default();
        for round in 0..sizes.rounds {
            tracing::info!(round, mib = mib(len as u64), "U1: uploads, each way");
            let server = ctx.server(&[])?;
            let (pid, _) = child(&server)?;
            // A small file first, so no way pays for the chunk engine's first use.
            put_bytes(server.addr(), &ctx.doc("u1-warm-up.bin"), &random(1 << 20, 100)).await?;
            for k in 0..WAYS.len() {
                // Each round starts with another way, so no way always goes first.
                let which = (round + k) % WAYS.len();
                let way = WAYS[which];
                let data = random(len, (len as u64) ^ (((round * 3 + which) as u64) << 40));
                let sha = tokio::task::block_in_place(|| tus::sha256(&data));
                let target = ctx.doc(&format!("u1-{}-{round}-{which}.bin", len >> 20));
                let before = cpu_ns_with_exited(pid)?;
                let wall = send(way, Peer::Plait, server.addr(), &target, &data, sizes.patch).await?;
                runs[0][which].cpu += cpu_ns_with_exited(pid)?.saturating_sub(before) as f64 / 1e9;
                runs[0][which].walls.push(wall);
                tus::check_version(server.addr(), &target, len as u64, &sha)
                    .await
                    .with_context(|| format!("U1 {way:?} of {len} bytes"))?;

                let before = cpu_ns(noop.pid())?;
                let wall = send(way, Peer::Noop, noop.addr, &target, &data, sizes.patch).await?;
                runs[1][which].cpu += cpu_ns(noop.pid())?.saturating_sub(before) as f64 / 1e9;
                runs[1][which].walls.push(wall);
            }
        }
        report(len, sizes, &mut runs, &mut rows);
    }
    Ok(rows)
}

/// The rows of one size.
fn report(len: usize, sizes: &Sizes, runs: &mut [[Runs; 3]; 2], rows: &mut Vec<Row>) {
    let scenario = format!("U1 ({} MiB)", len >> 20);
    let patches = len.div_ceil(sizes.patch);
    let patch = tus::size_label(sizes.patch);
    let labels = [
        "plain PUT of the file resource".to_string(),
        "tus, POST + one PATCH (tus-js-client's default chunkSize: Infinity)".to_string(),
        format!("tus, POST + {patches} PATCHes of {patch}"),
    ];
    let noop_refs = [
        "the same PUT to the no-op handler",
        "the same 2 requests to the no-op handler",
        "the same requests to the no-op handler",
    ];
    let n = sizes.rounds;
    let total = mib(len as u64) * n as f64;
    let walls: Vec<(f64, f64)> = (0..3).map(|w| (runs[0][w].median_ms(), runs[1][w].median_ms())).collect();
    let cpu = |side: usize, w: usize| runs[side][w].cpu * 1000.0 / total;
    for (w, label) in labels.iter().enumerate() {
        rows.push(Row {
            reference: Some((noop_refs[w].to_string(), walls[w].1)),
            ..Row::info(&scenario, &format!("{label}, wall (median of {n})"), walls[w].0, "ms")
        });
    }
    for (w, label) in labels.iter().enumerate().skip(1) {
        rows.push(Row {
            reference: Some(("plain PUT into the same server".into(), walls[0].0)),
            ..Row::info(&scenario, &format!("{label}, wall"), walls[w].0, "ms")
        });
    }
    rows.push(Row {
        reference: Some(("the no-op handler reading the same PUT, CPU per MiB".into(), cpu(1, 0))),
        ..Row::info(&scenario, &format!("{}, server CPU per MiB", labels[0]), cpu(0, 0), "ms/MiB")
    });
    for (w, label) in labels.iter().enumerate().skip(1) {
        rows.push(Row {
            reference: Some(("plain PUT, server CPU per MiB".into(), cpu(0, 0))),
            ..Row::info(&scenario, &format!("{label}, server CPU per MiB"), cpu(0, w), "ms/MiB")
        });
    }
}
