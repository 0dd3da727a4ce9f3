//! S1 (issue 18): the initial sync of a folder, against copying it with `rsync -a` between two
//! local directories (what a person would use instead) and a raw `cp -r`, in the same run on
//! the same files (so in the same page cache).
//!
//! The sync side is the whole trip: daemon A starts on the full folder and uploads it, daemon
//! B starts on an empty folder and downloads it; the clock runs from starting A until both are
//! in sync and B's folder holds every file at its size. Two folders: 10,000 small files (1–4
//! KiB, half text, which syncs as Braid text, half binary) and one 1 GiB file (smoke: 60 files
//! and 8 MiB). The references copy on one machine without any server, hashing or durability,
//! so the ratio is the price of going through a server and keeping both sides durable.

use std::path::Path;
use std::time::Instant;

use anyhow::ensure;

use super::report::{Row, Target};
use super::sync_kit::{big_file, listing, small_files, timed, until_synced, Daemon};
use super::Ctx;

pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let Some(plait) = ctx.plait_binary() else {
        tracing::warn!("S1 needs the plait binary (it starts plait sync): skipped with --url");
        return Ok(Vec::new());
    };
    let (files, big) = if ctx.smoke { (60, 8 << 20) } else { (10_000, 1 << 30) };
    let mut rows = Vec::new();
    let tmp = tempfile::tempdir()?;
    let src = tmp.path().join("small");
    let bytes = small_files(&src, files, 18)?;
    rows.extend(one(ctx, plait, &src, &format!("S1 ({files} files, {} KiB)", bytes >> 10), "s1small").await?);
    std::fs::remove_dir_all(&src)?;
    let src = tmp.path().join("big");
    std::fs::create_dir_all(&src)?;
    big_file(&src.join("big.bin"), big, 19)?;
    rows.extend(one(ctx, plait, &src, &format!("S1 (one {} MiB file)", big >> 20), "s1big").await?);
    Ok(rows)
}

/// Copies `src` with rsync and cp, then syncs it through a server; the rows.
async fn one(ctx: &Ctx, plait: &Path, src: &Path, scenario: &str, name: &str) -> anyhow::Result<Vec<Row>> {
    let work = tempfile::tempdir()?;
    let want = listing(src)?;
    let (rsync_dst, cp_dst) = (work.path().join("rsync"), work.path().join("cp"));
    let rsync = timed("rsync", &["-a", &format!("{}/", src.display()), &rsync_dst.display().to_string()])?;
    ensure!(listing(&rsync_dst)? == want, "rsync copied something else");
    std::fs::remove_dir_all(&rsync_dst)?;
    let cp = timed("cp", &["-r", &src.display().to_string(), &cp_dst.display().to_string()])?;
    ensure!(listing(&cp_dst)? == want, "cp copied something else");
    std::fs::remove_dir_all(&cp_dst)?;

    let server = ctx.server(&[])?;
    let url = format!("http://{}{}/", server.addr(), ctx.doc(name));
    let folder = format!("{}/", ctx.doc(name));
    let dst = work.path().join("b");
    let started = Instant::now();
    let a = Daemon::start(plait, src, &url, &work.path().join("state-a"), "a")?;
    let b = Daemon::start(plait, &dst, &url, &work.path().join("state-b"), "b")?;
    loop {
        until_synced(&[&a, &b], server.addr(), &folder).await?;
        if listing(&dst)? == want {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    tracing::info!(scenario, secs, rsync, cp, "S1");
    Ok(vec![
        Row {
            scenario: scenario.into(),
            metric: "initial sync: folder A → server → empty folder B (wall)".into(),
            value: secs,
            unit: "s",
            reference: Some(("rsync -a between two local directories".into(), rsync)),
            target: Target::None,
        },
        Row {
            scenario: scenario.into(),
            metric: "the same against a raw copy".into(),
            value: secs,
            unit: "s",
            reference: Some(("cp -r".into(), cp)),
            target: Target::None,
        },
    ])
}
