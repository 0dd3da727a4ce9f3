//! U3 (issue 17): the server's memory during a 1 GiB tus upload, against the same server's RSS
//! when idle, in the same run.
//!
//! A fresh server answers one `GET /.plait/health`; its RSS then is the idle figure. A 4 MiB
//! upload the same way follows (FILES's warm-up: what is measured is an upload, not the chunk
//! engine's first use) and the RSS after it is the base of the growth figures, as in FILES. Its
//! RSS high-water mark is reset (`/proc/<pid>/clear_refs`), the 1 GiB upload of fresh random
//! bytes follows (made piece by piece as they are written: the client never holds the file),
//! and the high-water mark (`VmHWM`) afterwards is the peak, exact where a sampler could miss
//! it; RSS is also sampled every 5 ms against the bytes sent, so the peak over the body's
//! second half can be set against its first half: a server whose memory grew with the upload
//! would show it there. The same on fresh servers for the 5 MiB `PATCH` variant and for a
//! plain `PUT` (FILES's memory path), as context. Each version's `Repr-Digest` is checked.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, ensure, Context};
use rand::{RngCore, SeedableRng};
use sha2::Digest as _;

use super::client::Conn;
use super::files::{child, mib, put_file, sample_rss};
use super::procs::{reset_rss_high_water, rss_bytes, rss_high_water};
use super::report::{Row, Target};
use super::tus::{self, Peer};
use super::Ctx;

/// How much: the upload, the chunked variant's `PATCH` size.
struct Sizes {
    upload: u64,
    patch: u64,
}

const FULL: Sizes = Sizes { upload: 1 << 30, patch: 5 << 20 };
const SMOKE: Sizes = Sizes { upload: 8 << 20, patch: 3 << 20 };

/// The bound FILES holds a plain `PUT` of 1 GiB to (issue 15): the same ingest, reached by tus.
const GROWTH_BOUND_MIB: f64 = 64.0;

/// What one upload did to the server's memory (bytes).
struct Memory {
    idle: u64,
    /// After the warm-up upload, just before the measured one.
    before: u64,
    high_water: u64,
    first_half: u64,
    second_half: u64,
    after: u64,
}

/// The upload itself: `patch` bytes per `PATCH` (`None`: a plain `PUT`), each piece of random
/// bytes from `seed`; returns the SHA-256 of what was sent.
async fn upload(
    addr: SocketAddr,
    target: &str,
    len: u64,
    patch: Option<u64>,
    seed: u64,
    sent: &AtomicU64,
) -> anyhow::Result<[u8; 32]> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut hash = sha2::Sha256::new();
    let mut fill = |at: u64, piece: &mut [u8]| {
        rng.fill_bytes(piece);
        hash.update(&*piece);
        sent.store(at + piece.len() as u64, Ordering::Relaxed);
    };
    match patch {
        None => {
            put_file(addr, target, len, sent, &mut fill).await?;
        }
        Some(patch) => {
            let mut conn = Conn::connect(addr).await?;
            let url = tus::create(&mut conn, Peer::Plait, target, len).await?;
            let mut offset = 0;
            while offset < len {
                let n = patch.min(len - offset);
                offset = tus::append_with(&mut conn, Peer::Plait, &url, offset, n, &mut fill).await?;
            }
        }
    }
    Ok(hash.finalize().into())
}

/// One upload on a fresh server, its memory measured.
async fn measure(ctx: &Ctx, name: &str, len: u64, patch: Option<u64>, seed: u64) -> anyhow::Result<Memory> {
    let server = ctx.server(&[])?;
    let (pid, _) = child(&server)?;
    let addr = server.addr();
    let health = Conn::connect(addr).await?.request("GET", "/.plait/health", &[], b"").await?;
    ensure!(health.status == 200, "GET /.plait/health answered {}", health.status);
    let idle = rss_bytes(pid)?;
    let warm_up = ctx.doc(&format!("u3-{name}-warm-up.bin"));
    upload(addr, &warm_up, 4 << 20, patch.map(|p| p.min(1 << 20)), seed + 1000, &AtomicU64::new(0)).await?;
    let before = rss_bytes(pid)?;
    let exact = match reset_rss_high_water(pid) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "U3: VmHWM cannot be reset; the peak is the 5 ms samples'");
            false
        }
    };
    tracing::info!(side = name, mib = mib(len), "U3: memory during an upload");
    let (sent, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let sampler = sample_rss(pid, sent.clone(), stop.clone());
    let target = ctx.doc(&format!("u3-{name}.bin"));
    let done = upload(addr, &target, len, patch, seed, &sent).await;
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().map_err(|_| anyhow!("the RSS sampler panicked"))?;
    let sha = done?;
    let high_water = rss_high_water(pid)?;
    let after = rss_bytes(pid)?;
    tus::check_version(addr, &target, len, &sha).await.with_context(|| format!("U3 {name}"))?;
    let peak = |from: u64, to: u64| {
        samples.iter().filter(|(s, _)| (from..to).contains(s)).map(|(_, rss)| *rss).max().unwrap_or(before)
    };
    let sampled = peak(0, u64::MAX);
    Ok(Memory {
        idle,
        before,
        high_water: if exact { high_water.max(sampled) } else { sampled },
        first_half: peak(0, len / 2),
        second_half: peak(len / 2, u64::MAX),
        after,
    })
}

/// Runs U3.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let sizes = if ctx.smoke { &SMOKE } else { &FULL };
    let len = sizes.upload;
    let one = measure(ctx, "tus-one-patch", len, Some(u64::MAX), 300).await?;
    let chunked = measure(ctx, "tus-chunked", len, Some(sizes.patch), 301).await?;
    let put = measure(ctx, "put", len, None, 302).await?;

    let scenario = format!("U3 ({} MiB)", len >> 20);
    let growth = |m: &Memory, rss: u64| mib(rss.saturating_sub(m.before));
    let chunked_label = format!("tus, {} PATCHes", tus::size_label(sizes.patch as usize));
    let sides = [("tus, one PATCH", &one), (chunked_label.as_str(), &chunked), ("plain PUT", &put)];
    let mut rows = Vec::new();
    for (label, m) in sides {
        rows.push(Row {
            reference: Some(("the same server idle (started, one GET)".into(), mib(m.idle))),
            ..Row::info(
                &scenario,
                &format!("{label}: server RSS high-water during the upload (VmHWM)"),
                mib(m.high_water),
                "MiB",
            )
        });
    }
    rows.push(Row {
        reference: Some(("plain PUT, fresh server, the same way".into(), growth(&put, put.high_water))),
        target: Target::AbsoluteAtMost(GROWTH_BOUND_MIB),
        ..Row::info(
            &scenario,
            "tus, one PATCH: RSS growth, high-water − RSS before it (after a 4 MiB warm-up upload)",
            growth(&one, one.high_water),
            "MiB",
        )
    });
    rows.push(Row {
        reference: Some(("tus, one PATCH".into(), growth(&one, one.high_water))),
        ..Row::info(
            &scenario,
            &format!("{chunked_label}: RSS growth, high-water − RSS before it"),
            growth(&chunked, chunked.high_water),
            "MiB",
        )
    });
    for (label, m) in &sides[..2] {
        rows.push(Row {
            reference: Some(("the same over the first half".into(), growth(m, m.first_half))),
            ..Row::info(
                &scenario,
                &format!("{label}: RSS growth, peak over the body's second half (5 ms samples)"),
                growth(m, m.second_half),
                "MiB",
            )
        });
    }
    rows.push(Row::info(&scenario, "tus, one PATCH: RSS growth once answered", growth(&one, one.after), "MiB"));
    Ok(rows)
}
