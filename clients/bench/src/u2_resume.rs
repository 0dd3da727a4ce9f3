//! U2 (issue 17): what finishing an upload costs after its connection was cut half way.
//!
//! The client writes the first half of a 128 MiB body, then cuts its own connection with a TCP
//! reset (`Conn::abort`: what the kernel still held unsent is lost, as when a network drops or
//! a tab closes) and finishes the upload the only way each protocol allows: tus asks the
//! server for the offset it kept (`HEAD`) and sends the rest (one `PATCH`, or 5 MiB `PATCH`es,
//! the cut falling inside one of them); a direct upload to S3 (issue 17 part 5, on a SeaweedFS
//! the benchmark starts) lists the parts the store holds through Plait and sends the others (the
//! cut falls inside a 5 MiB part's `PUT`, which S3 does not keep); a plain `PUT` has nothing to
//! resume from and sends the whole file again. The reference of each tus figure is the plain `PUT`'s, in the same run on
//! the same server. Each side checks that the cut left no version (an empty `Version`) and that the
//! finished version's `Repr-Digest` is the SHA-256 of the file. Bytes are counted on the wire
//! (both ways, request and response heads included). A resumption that fails (e.g. `409
//! upload_superseded`: the cut request reached the upload after the new one) asks for the
//! offset again, as tus-js-client does, and is counted. Three rounds, a fresh server each;
//! medians.

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::{ensure, Context};

use super::client::Conn;
use super::direct;
use super::files::{mib, put_bytes, put_file, random, PIECE};
use super::report::Row;
use super::seaweed::{Seaweed, BUCKET};
use super::tus::{self, Peer};
use super::Ctx;

/// How much: the file, the chunked variant's `PATCH` size, the rounds.
struct Sizes {
    file: usize,
    patch: usize,
    rounds: usize,
}

const FULL: Sizes = Sizes { file: 128 << 20, patch: 5 << 20, rounds: 3 };
/// Smoke: the cut (at 1 MiB) falls inside the second `PATCH`, as at full size.
const SMOKE: Sizes = Sizes { file: 2 << 20, patch: 768 << 10, rounds: 1 };

/// At most this many resumptions after the first one (tus-js-client's default `retryDelays`
/// allow four attempts).
const RETRIES: u32 = 3;

/// What one cut and its recovery cost.
#[derive(Clone, Copy, Default)]
struct Recovery {
    /// Body bytes the server had kept at the cut (the first tus offset; 0 for a `PUT`).
    kept: u64,
    /// Bytes on the wire before the cut (both ways, heads included).
    before: u64,
    /// Bytes on the wire from the cut to the version (both ways, heads included).
    after: u64,
    /// Resumptions that failed and were tried again.
    retries: u32,
    /// Wall time from reconnecting to the version, seconds.
    wall: f64,
}

/// One resumption: `HEAD` for the offset (the first one answered is kept in `first`), then the
/// rest from there.
async fn resume_once(
    conn: &mut Conn,
    url: &str,
    data: &[u8],
    patch: usize,
    first: &mut Option<u64>,
) -> anyhow::Result<()> {
    let kept = tus::offset(conn, url).await?;
    first.get_or_insert(kept);
    tus::append_from(conn, Peer::Plait, url, data, kept, patch).await?;
    Ok(())
}

/// A tus upload cut at `cut`, then resumed as tus-js-client does: from the offset the server
/// reports, asking again when a resumption fails; `patch` is the `PATCH` size (`usize::MAX`: one).
async fn tus_side(addr: SocketAddr, target: &str, data: &[u8], patch: usize, cut: u64) -> anyhow::Result<Recovery> {
    let len = data.len() as u64;
    let step = (patch as u64).min(len);
    let mut conn = Conn::connect(addr).await?;
    let url = tus::create(&mut conn, Peer::Plait, target, len).await?;
    // The whole `PATCH`es before the one the cut falls in.
    let mut offset = 0u64;
    while (offset + step).min(len) <= cut {
        offset =
            tus::append(&mut conn, Peer::Plait, &url, offset, &data[offset as usize..(offset + step) as usize]).await?;
    }
    let end = (offset + step).min(len);
    tus::send_patch_head(&mut conn, &url, offset, end - offset).await?;
    for piece in data[offset as usize..cut as usize].chunks(PIECE) {
        conn.write_body(piece).await?;
    }
    let before = conn.sent + conn.received;
    conn.abort()?;
    ensure!(tus::no_version(addr, target).await?, "{target} is a version after a cut upload");

    let started = Instant::now();
    let (mut after, mut retries, mut kept) = (0, 0, None);
    loop {
        let mut conn = Conn::connect(addr).await?;
        let attempt = resume_once(&mut conn, &url, data, patch, &mut kept).await;
        after += conn.sent + conn.received;
        match attempt {
            Ok(()) => break,
            Err(e) if retries < RETRIES => {
                // E.g. 409 `upload_superseded`: the cut request reached the upload after this one.
                tracing::warn!(error = %e, "U2: a resumption failed; asking for the offset again");
                retries += 1;
            }
            Err(e) => return Err(e),
        }
    }
    let kept = kept.unwrap_or(0);
    ensure!(kept <= cut, "the server kept {kept} bytes of the {cut} sent before the cut");
    Ok(Recovery { kept, before, after, retries, wall: started.elapsed().as_secs_f64() })
}

/// A `PUT` cut at `cut`, then sent again whole.
async fn put_side(addr: SocketAddr, target: &str, data: &[u8], cut: u64) -> anyhow::Result<Recovery> {
    let mut conn = Conn::connect(addr).await?;
    conn.send_head("PUT", target, &[("content-type", "application/octet-stream")], data.len() as u64).await?;
    for piece in data[..cut as usize].chunks(PIECE) {
        conn.write_body(piece).await?;
    }
    let before = conn.sent + conn.received;
    conn.abort()?;
    ensure!(tus::no_version(addr, target).await?, "{target} is a version after a cut PUT");
    let sent = std::sync::atomic::AtomicU64::new(0);
    let (wall, after) = put_file(addr, target, data.len() as u64, &sent, |at, piece| {
        let at = at as usize;
        piece.copy_from_slice(&data[at..at + piece.len()]);
    })
    .await?;
    Ok(Recovery { kept: 0, before, after, retries: 0, wall })
}

/// A direct upload (issue 17 part 5) in `part`-byte parts cut at `cut` (inside a part's `PUT` to
/// the store), then resumed as Uppy's `@uppy/aws-s3` does: the parts S3 holds (listed through
/// Plait), the others signed and sent, completion. Returns the recovery and the version's path.
async fn direct_side(
    addr: SocketAddr,
    endpoint: &str,
    (name, target): (&str, &str),
    data: &[u8],
    part: usize,
    cut: u64,
) -> anyhow::Result<(Recovery, String)> {
    let mut plait = Conn::connect(addr).await?;
    let upload = direct::Upload::create(&mut plait, endpoint, name).await?;
    let mut s3 = None;
    let pieces: Vec<&[u8]> = data.chunks(part).collect();
    let mut before = 0;
    for (i, bytes) in pieces.iter().enumerate() {
        let (start, number) = ((i * part) as u64, i as u32 + 1);
        let url = upload.sign(&mut plait, number).await?;
        if start + bytes.len() as u64 > cut {
            // The part the cut falls in: its first bytes, then the connection dies.
            before += direct::cut_part(&url, bytes.len() as u64, &bytes[..(cut - start) as usize]).await?;
            break;
        }
        direct::put_part(&mut s3, &url, bytes).await?;
    }
    before += plait.sent + plait.received + s3.as_ref().map_or(0, |c: &Conn| c.sent + c.received);
    drop((plait, s3));
    ensure!(tus::no_version(addr, target).await?, "{target} is a version after a cut direct upload");

    let mut plait = Conn::connect(addr).await?;
    let started = Instant::now();
    let mut parts = upload.parts(&mut plait).await?;
    let kept: u64 = parts.iter().map(|(n, _)| pieces.get(*n as usize - 1).map_or(0, |p| p.len() as u64)).sum();
    let mut s3 = None;
    for (i, bytes) in pieces.iter().enumerate() {
        let number = i as u32 + 1;
        if parts.iter().any(|(n, _)| *n == number) {
            continue;
        }
        let url = upload.sign(&mut plait, number).await?;
        parts.push((number, direct::put_part(&mut s3, &url, bytes).await?));
    }
    parts.sort_by_key(|(n, _)| *n);
    let location = upload.complete(&mut plait, &parts).await?;
    let wall = started.elapsed().as_secs_f64();
    let after = plait.sent + plait.received + s3.as_ref().map_or(0, |c: &Conn| c.sent + c.received);
    Ok((Recovery { kept, before, after, retries: 0, wall }, location))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Runs U2.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let sizes = if ctx.smoke { &SMOKE } else { &FULL };
    let (len, cut) = (sizes.file as u64, sizes.file as u64 / 2);
    // S3's parts are 5 MiB at least, but the last.
    let part = sizes.patch.max(5 << 20);
    let weed = tokio::task::block_in_place(Seaweed::start)?;
    // [PUT, tus one PATCH, tus chunked, direct] × rounds
    let mut got: [Vec<Recovery>; 4] = Default::default();
    for round in 0..sizes.rounds {
        tracing::info!(round, mib = mib(len), "U2: uploads cut at 50%, then finished");
        let server = ctx.server(&[])?;
        put_bytes(server.addr(), &ctx.doc("u2-warm-up.bin"), &random(1 << 20, 199)).await?;
        let store = format!("s3://{BUCKET}/u2-{round}");
        let remote = ctx.server_with_env(&["--blob-store", &store, "--direct-uploads"], &weed.env())?;
        let folder = format!("{}/", ctx.doc(&format!("u2-direct-{round}")));
        let endpoint = direct::grant(&mut Conn::connect(remote.addr()).await?, &folder).await?;
        for k in 0..4 {
            let which = (round + k) % 4;
            let data = random(sizes.file, 200 + (round * 4 + which) as u64);
            let sha = tokio::task::block_in_place(|| tus::sha256(&data));
            let target = ctx.doc(&format!("u2-{round}-{which}.bin"));
            let addr = server.addr();
            let (recovery, addr, target) = match which {
                0 => (put_side(addr, &target, &data, cut).await?, addr, target),
                1 => (tus_side(addr, &target, &data, usize::MAX, cut).await?, addr, target),
                2 => (tus_side(addr, &target, &data, sizes.patch, cut).await?, addr, target),
                _ => {
                    let name = format!("u2-{round}.bin");
                    let at = format!("{folder}{name}");
                    let (recovery, location) =
                        direct_side(remote.addr(), &endpoint, (&name, &at), &data, part, cut).await?;
                    (recovery, remote.addr(), location)
                }
            };
            tus::check_version(addr, &target, len, &sha).await.with_context(|| format!("U2 side {which}"))?;
            got[which].push(recovery);
        }
    }

    let scenario = format!("U2 ({} MiB, cut at 50%)", sizes.file >> 20);
    let n = sizes.rounds;
    let med = |which: usize, f: &dyn Fn(&Recovery) -> f64| median(got[which].iter().map(f).collect());
    let put_after = med(0, &|r| r.after as f64);
    let put_wall = med(0, &|r| r.wall) * 1000.0;
    let mut rows = vec![Row {
        reference: Some(("the file".into(), mib(len))),
        ..Row::info(
            &scenario,
            &format!("plain PUT: bytes on the wire for the version, both attempts (median of {n})"),
            mib(med(0, &|r| (r.before + r.after) as f64) as u64),
            "MiB",
        )
    }];
    let patch = tus::size_label(sizes.patch);
    for (which, label) in [(1, "tus, one PATCH".to_string()), (2, format!("tus, {patch} PATCHes"))] {
        let lost = med(which, &|r| cut.saturating_sub(r.kept) as f64) as u64;
        rows.push(Row {
            reference: Some(("plain PUT: the whole file again".into(), mib(put_after as u64))),
            ..Row::info(
                &scenario,
                &format!("{label}: bytes on the wire after the cut"),
                mib(med(which, &|r| r.after as f64) as u64),
                "MiB",
            )
        });
        rows.push(Row {
            reference: Some(("bytes written before the cut (a PUT loses them all)".into(), mib(cut))),
            ..Row::info(
                &scenario,
                &format!("{label}: bytes written before the cut, not kept (sent again)"),
                mib(lost),
                "MiB",
            )
        });
        rows.push(Row {
            reference: Some(("the file".into(), mib(len))),
            ..Row::info(
                &scenario,
                &format!("{label}: bytes on the wire for the version, both attempts"),
                mib(med(which, &|r| (r.before + r.after) as f64) as u64),
                "MiB",
            )
        });
        rows.push(Row {
            reference: Some(("plain PUT: the whole PUT again".into(), put_wall)),
            ..Row::info(
                &scenario,
                &format!("{label}: wall from reconnecting to the version"),
                med(which, &|r| r.wall) * 1000.0,
                "ms",
            )
        });
        let retries: u32 = got[which].iter().map(|r| r.retries).sum();
        rows.push(Row::info(
            &scenario,
            &format!("{label}: resumptions refused or broken and asked again, all {n} rounds"),
            f64::from(retries),
            "times",
        ));
    }
    let label = format!("direct to S3, {} parts (S3 keeps the parts it received whole)", tus::size_label(part));
    let lost = med(3, &|r| cut.saturating_sub(r.kept) as f64) as u64;
    rows.push(Row {
        reference: Some(("plain PUT: the whole file again".into(), mib(put_after as u64))),
        ..Row::info(
            &scenario,
            &format!("{label}: bytes on the wire after the cut"),
            mib(med(3, &|r| r.after as f64) as u64),
            "MiB",
        )
    });
    rows.push(Row {
        reference: Some(("bytes written before the cut (a PUT loses them all)".into(), mib(cut))),
        ..Row::info(
            &scenario,
            &format!("{label}: bytes written before the cut, not kept (sent again)"),
            mib(lost),
            "MiB",
        )
    });
    rows.push(Row {
        reference: Some(("the file".into(), mib(len))),
        ..Row::info(
            &scenario,
            &format!("{label}: bytes on the wire for the version, both attempts (Plait and the store)"),
            mib(med(3, &|r| (r.before + r.after) as f64) as u64),
            "MiB",
        )
    });
    rows.push(Row::info(
        &scenario,
        &format!("{label}: wall from reconnecting to the version (list, sign, parts, complete)"),
        med(3, &|r| r.wall) * 1000.0,
        "ms",
    ));
    Ok(rows)
}
