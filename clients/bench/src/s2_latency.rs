//! S2 (issue 18): how long a small edit takes to reach the other device: a text file saved in
//! folder A, until the file in folder B (another daemon, same server) holds the new text.
//! Measured edit by edit (each waits until both daemons are in sync again), p50 and p99 over
//! 50 edits (smoke: 3). The reference, in the same run: the same text `PUT` to the server and
//! read back with a `GET` by a plain HTTP client (the network and server floor, with no
//! filesystem events, debounce or polling). The bound: within a second.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure};

use super::client::Conn;
use super::report::{Row, Target};
use super::sync_kit::{until_synced, Daemon};
use super::Ctx;

pub async fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let Some(plait) = ctx.plait_binary() else {
        tracing::warn!("S2 needs the plait binary (it starts plait sync): skipped with --url");
        return Ok(Vec::new());
    };
    let edits = if ctx.smoke { 3 } else { 50 };
    let server = ctx.server(&[])?;
    let folder = format!("{}/", ctx.doc("s2"));
    let url = format!("http://{}{folder}", server.addr());
    let tmp = tempfile::tempdir()?;
    let (da, db) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&da)?;
    std::fs::write(da.join("note.txt"), "first\n")?;
    let a = Daemon::start(plait, &da, &url, &tmp.path().join("sa"), "a")?;
    let b = Daemon::start(plait, &db, &url, &tmp.path().join("sb"), "b")?;
    until_synced(&[&a, &b], server.addr(), &folder).await?;

    let mut sync_ms = Vec::new();
    for i in 0..edits {
        let text = format!("first\nedit {i}: a small change to a note\n");
        let started = Instant::now();
        std::fs::write(da.join("note.txt"), &text)?;
        let deadline = started + Duration::from_secs(60);
        while std::fs::read(db.join("note.txt")).ok().as_deref() != Some(text.as_bytes()) {
            if Instant::now() > deadline {
                bail!("edit {i} never reached folder B");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        sync_ms.push(started.elapsed().as_secs_f64() * 1e3);
        until_synced(&[&a, &b], server.addr(), &folder).await?;
    }

    let mut ref_ms = Vec::new();
    let path = format!("{folder}reference.txt");
    for i in 0..edits {
        let text = format!("first\nedit {i}: a small change to a note\n");
        let started = Instant::now();
        let mut c = Conn::connect(server.addr()).await?;
        let put = c.request("PUT", &path, &[("content-type", "text/plain")], text.as_bytes()).await?;
        ensure!(put.status < 300, "reference PUT: {}", put.status);
        let got = Conn::connect(server.addr()).await?.request("GET", &path, &[], b"").await?;
        ensure!(got.body == text.as_bytes(), "reference GET read something else");
        ref_ms.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let (p50, p99) = (percentile(&mut sync_ms, 0.50), percentile(&mut sync_ms, 0.99));
    let r50 = percentile(&mut ref_ms, 0.50);
    let r99 = percentile(&mut ref_ms, 0.99);
    let scenario = format!("S2 ({edits} edits)");
    Ok(vec![
        Row {
            scenario: scenario.clone(),
            metric: "local save → the other daemon's file updated, p50".into(),
            value: p50,
            unit: "ms",
            reference: Some(("PUT + GET of the same text, p50".into(), r50)),
            target: Target::AbsoluteAtMost(1000.0),
        },
        Row {
            scenario,
            metric: "local save → the other daemon's file updated, p99".into(),
            value: p99,
            unit: "ms",
            reference: Some(("PUT + GET of the same text, p99".into(), r99)),
            target: Target::AbsoluteAtMost(1000.0),
        },
    ])
}

/// The `q` quantile (nearest rank) of `v`.
fn percentile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}
