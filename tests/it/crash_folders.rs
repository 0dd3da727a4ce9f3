//! Crash test for folders (issue 16): the real `plait` binary on a RocksDB data dir is killed
//! with `kill -9` at random moments and restarted on the same dir while 4 clients write text and
//! files under `/cf/` and one watcher follows the folder, resuming from its last cursor after
//! every kill (a `209` watch with `Parents`, or `?since=` long polls, chosen at random, cut at
//! random points). Cursors must survive a restart (the log's epoch is stored): a resumed watch
//! is never reset, never repeats a change and never skips one (`Parents` of each update is the
//! cursor before it).
//!
//! Each client owns its paths, so each path's history is the client's: text writes insert a few
//! characters under a fresh, explicit `Version`; file writes name their id; an operation whose
//! connection failed is sent again, the same request, until it is answered (a known version is
//! an idempotent 200), so every operation ends acknowledged. At the end (after one more kill)
//! the watcher, and a read of the whole log from the first cursor, must hold per path exactly
//! the acknowledged versions in the order acknowledged, nothing else.
//!
//! The self-test runs the same program against `--unsafe-ack-before-durable-ms 200` (writes
//! answered before they are durable): it must report acknowledged changes missing from the log.
//!
//! Knobs: `PLAIT_FOLDERCRASH_SEED` (replay a run), `PLAIT_FOLDERCRASH_KILLS` (default 10).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;

use crate::folders_resume::{compare, Acked};
use crate::support::folder_watch::{seq_of, Ended, Seen, Watcher};
use crate::support::killable::{
    env_u64, kill_server, seed_from_env, server_complaints, start_server, Caller, Notes, Up,
};

const CLIENTS: usize = 4;
const PATHS: usize = 6;
const FOLDER: &str = "/cf/";
/// The whole run, kills and checks, at most.
const BUDGET: Duration = Duration::from_secs(80);

struct Config {
    seed: u64,
    kills: u64,
    args: Vec<String>,
}

#[derive(Debug, Default)]
struct Report {
    kills: u64,
    acked: u64,
    retried: u64,
    refused: u64,
    /// Acknowledged changes missing from the log read after the last restart.
    lost: u64,
    watcher: Vec<String>,
    log: Vec<String>,
    seen: usize,
    logged: usize,
    streams: u64,
    polls: u64,
    failed_sessions: u64,
    notes: Vec<String>,
}

struct Shared {
    stop: AtomicBool,
    /// Acknowledged writes so far (the controller waits on it).
    acked: watch::Sender<u64>,
    deadline: Instant,
}

fn path_of(k: usize, j: usize) -> String {
    if j % 2 == 0 {
        format!("{FOLDER}c{k}/t{j}")
    } else {
        format!("{FOLDER}c{k}/f{j}.bin")
    }
}

/// One client: writes its paths until told to stop, each operation retried until answered.
async fn client(
    k: usize,
    seed: u64,
    up: watch::Receiver<Up>,
    shared: Arc<Shared>,
) -> (BTreeMap<String, Vec<Acked>>, u64, u64) {
    let mut rng = StdRng::seed_from_u64(seed ^ (k as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut caller = Caller::new(up);
    let mut acked: BTreeMap<String, Vec<Acked>> = BTreeMap::new();
    let (mut retried, mut refused) = (0, 0);
    let mut n = 0u64;
    while !shared.stop.load(Ordering::Acquire) && Instant::now() < shared.deadline {
        n += 1;
        let path = path_of(k, rng.random_range(0..PATHS));
        let (headers, body, id): (Vec<(&str, String)>, Vec<u8>, String) = if path.ends_with(".bin") {
            let id = format!("c{k}o{n}");
            let h = vec![("Merge-Type", "aww".into()), ("Version", format!("\"{id}\""))];
            (h, format!("\0c{k} o{n}").into_bytes(), id)
        } else {
            let len = rng.random_range(1..=4usize);
            let id = format!("c{k}o{n}-{}", len - 1);
            let h = vec![("Version", format!("\"{id}\"")), ("Content-Range", "text [0:0]".into())];
            (h, b"abcd"[..len].to_vec(), id)
        };
        let headers: Vec<(&str, &str)> = headers.iter().map(|(a, b)| (*a, b.as_str())).collect();
        let answer = loop {
            match caller.call("PUT", &path, &headers, &body).await {
                Ok(r) => break Some(r),
                Err((epoch, _)) => {
                    retried += 1;
                    // Resent once the next server is up (or after a short wait if the error
                    // was not a kill), until the deadline.
                    caller.wait_for_restart(epoch, Duration::from_millis(20), shared.deadline).await;
                    if Instant::now() >= shared.deadline {
                        break None;
                    }
                }
            }
        };
        let Some(r) = answer else { break };
        if r.ok() {
            shared.acked.send_modify(|n| *n += 1);
            acked.entry(path).or_default().push(Acked { deleted: false, version: vec![id] });
        } else {
            refused += 1;
        }
    }
    (acked, retried, refused)
}

/// The watcher: random sessions against whichever server is up, until told to stop and caught
/// up with `end`.
async fn watcher(
    seed: u64,
    from: String,
    mut up: watch::Receiver<Up>,
    end: watch::Receiver<Option<u64>>,
    deadline: Instant,
) -> Watcher {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xfeed);
    let mut w = Watcher::new(FOLDER, &from);
    loop {
        if let Some(end) = *end.borrow() {
            if w.seq() >= end {
                return w;
            }
        }
        if Instant::now() >= deadline || w.problems.len() > 20 {
            w.problems.push(format!("the watcher stopped at {} (deadline or too many problems)", w.cursor));
            return w;
        }
        let Up { epoch, addr } = *up.borrow_and_update();
        let Some(addr) = addr else {
            let _ = tokio::time::timeout(Duration::from_secs(5), up.changed()).await;
            continue;
        };
        let ended = if rng.random_ratio(2, 3) {
            w.stream(addr, rng.random_range(1..=30), Duration::from_millis(400)).await
        } else {
            w.poll(addr, Duration::from_millis(300), rng.random_range(1..=20)).await
        };
        if let Ended::Failed(_) = ended {
            // Wait for the next server (bounded), then resume from the cursor.
            let _ = tokio::time::timeout(Duration::from_secs(5), up.wait_for(|u| u.epoch != epoch && u.addr.is_some()))
                .await;
        }
    }
}

/// The whole log under the folder from `from`, read with `?since=` pages (no waiting).
async fn read_log(addr: SocketAddr, from: &str) -> Watcher {
    let mut w = Watcher::new(FOLDER, from);
    loop {
        let before = w.cursor.clone();
        assert_eq!(w.poll(addr, Duration::ZERO, 500).await, Ended::Done);
        if w.cursor == before || !w.problems.is_empty() {
            return w;
        }
    }
}

async fn run(cfg: Config) -> Report {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let (data, log) = (tmp.path().join("data"), tmp.path().join("server-stderr.log"));
    let notes = Notes::default();
    let mut report = Report::default();
    eprintln!("crash_folders: seed {} (PLAIT_FOLDERCRASH_SEED={} replays it)", cfg.seed, cfg.seed);
    let mut proc = start_server(&data, &cfg.args, &log).await;
    // The first cursor: before any change.
    let first = crate::support::client::request(proc.addr, "GET", FOLDER, &[("Accept", "application/json")], b"").await;
    let start = first.header("plait-cursor").unwrap().to_string();
    let shared =
        Arc::new(Shared { stop: AtomicBool::new(false), acked: watch::Sender::new(0), deadline: started + BUDGET / 2 });
    let (up_tx, up_rx) = watch::channel(Up { epoch: 1, addr: Some(proc.addr) });
    let (end_tx, end_rx) = watch::channel(None);
    let watch_task = tokio::spawn(watcher(cfg.seed, start.clone(), up_rx.clone(), end_rx, started + BUDGET * 3 / 4));
    let clients: Vec<_> =
        (0..CLIENTS).map(|k| tokio::spawn(client(k, cfg.seed, up_rx.clone(), shared.clone()))).collect();

    // Kills: once the clients have made progress on the new server, after another 30-300 ms.
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let mut epoch = 1;
    while report.kills < cfg.kills && Instant::now() < shared.deadline {
        let mut acked = shared.acked.subscribe();
        let before = *acked.borrow_and_update();
        // (The guard `wait_for` returns is dropped at once: it holds the channel's lock.)
        let progress = tokio::time::timeout(Duration::from_secs(10), acked.wait_for(|n| *n >= before + 10))
            .await
            .is_ok_and(|r| r.is_ok());
        if !progress {
            notes.add(format!("epoch {epoch}: fewer than 10 writes acknowledged within 10 s"));
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(30..=300))).await;
        let mut died = 0;
        kill_server(proc, &mut died, &notes).await;
        report.kills += 1;
        up_tx.send_replace(Up { epoch, addr: None });
        proc = start_server(&data, &cfg.args, &log).await;
        epoch += 1;
        up_tx.send_replace(Up { epoch, addr: Some(proc.addr) });
    }
    shared.stop.store(true, Ordering::Release);
    let mut acked = BTreeMap::new();
    for c in clients {
        let (a, retried, refused) = c.await.unwrap();
        acked.extend(a);
        report.retried += retried;
        report.refused += refused;
    }
    report.acked = acked.values().map(|v| v.len() as u64).sum();

    // One more kill; the watcher catches up with the restarted server.
    let mut died = 0;
    kill_server(proc, &mut died, &notes).await;
    up_tx.send_replace(Up { epoch, addr: None });
    let proc = start_server(&data, &cfg.args, &log).await;
    up_tx.send_replace(Up { epoch: epoch + 1, addr: Some(proc.addr) });
    let now = crate::support::client::request(proc.addr, "GET", FOLDER, &[("Accept", "application/json")], b"").await;
    let end = seq_of(now.header("plait-cursor").unwrap());
    end_tx.send_replace(Some(end));
    let w = watch_task.await.unwrap();
    let logged = read_log(proc.addr, &start).await;
    report.seen = w.seen.len();
    report.logged = logged.seen.len();
    (report.streams, report.polls, report.failed_sessions) = (w.streams, w.polls, w.failed);
    report.watcher = w.problems.clone();
    report.watcher.extend(compare(&w.seen, &acked));
    report.log = logged.problems.clone();
    report.log.extend(compare(&logged.seen, &acked));
    if logged.seen != w.seen {
        report.log.push(format!("the watcher saw {} changes, the log holds {}", w.seen.len(), logged.seen.len()));
    }
    report.lost = lost(&logged.seen, &acked);
    drop(proc);
    server_complaints(&log, &notes);
    report.notes = notes.drain();
    report
}

/// Acknowledged versions that are nowhere in `seen`.
fn lost(seen: &[Seen], acked: &BTreeMap<String, Vec<Acked>>) -> u64 {
    let there: std::collections::HashSet<(&str, &Vec<String>)> =
        seen.iter().map(|s| (s.path.as_str(), &s.version)).collect();
    acked
        .iter()
        .flat_map(|(p, v)| v.iter().map(move |a| (p.as_str(), &a.version)))
        .filter(|k| !there.contains(k))
        .count() as u64
}

fn summary(r: &Report) -> String {
    format!(
        "{} kills, {} acknowledged writes ({} retried sends, {} refused); watcher: {} changes in {} watches and {} polls \
         ({} cut by a kill); the log after the last restart: {} changes, {} acknowledged missing\n\
         watcher problems ({}):\n  {}\nlog problems ({}):\n  {}\nnotes:\n  {}",
        r.kills,
        r.acked,
        r.retried,
        r.refused,
        r.seen,
        r.streams,
        r.polls,
        r.failed_sessions,
        r.logged,
        r.lost,
        r.watcher.len(),
        r.watcher.iter().take(15).cloned().collect::<Vec<_>>().join("\n  "),
        r.log.len(),
        r.log.iter().take(15).cloned().collect::<Vec<_>>().join("\n  "),
        if r.notes.is_empty() { "none".to_string() } else { r.notes.join("\n  ") }
    )
}

async fn bounded(cfg: Config) -> Report {
    let seed = cfg.seed;
    tokio::time::timeout(BUDGET + Duration::from_secs(20), run(cfg))
        .await
        .unwrap_or_else(|_| panic!("the folder crash test did not finish in time (seed {seed})"))
}

/// A watcher resuming across `kill -9` gets every acknowledged change once, in order, and the
/// log after the last restart holds exactly them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_watch_resumes_across_kill_9_without_gaps_or_repeats() {
    let cfg = Config {
        seed: seed_from_env("PLAIT_FOLDERCRASH_SEED"),
        kills: env_u64("PLAIT_FOLDERCRASH_KILLS").unwrap_or(10),
        args: Vec::new(),
    };
    let kills = cfg.kills;
    let r = bounded(cfg).await;
    eprintln!("{}", summary(&r));
    assert!(r.kills >= kills && r.acked >= 100, "the run did too little:\n{}", summary(&r));
    assert!(r.failed_sessions > 0, "no watch was ever cut by a kill:\n{}", summary(&r));
    let clean = r.watcher.is_empty() && r.log.is_empty() && r.lost == 0 && r.refused == 0 && r.notes.is_empty();
    assert!(clean, "the folder crash test failed:\n{}", summary(&r));
}

/// The checks can fail: against a server that acknowledges before durability, the same program
/// must find acknowledged changes missing from the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_folder_crash_test_catches_acknowledged_changes_lost_by_an_unsafe_server() {
    let cfg = Config {
        seed: seed_from_env("PLAIT_FOLDERCRASH_SEED"),
        kills: 5,
        args: vec!["--unsafe-ack-before-durable-ms".into(), "200".into()],
    };
    let r = bounded(cfg).await;
    eprintln!("{}", summary(&r));
    assert!(r.kills >= 5 && r.acked > 0, "the self-test did not run as planned:\n{}", summary(&r));
    assert!(r.lost > 0, "no lost change found against an unsafe server:\n{}", summary(&r));
    assert!(r.log.iter().any(|p| p.contains("acknowledged")), "the per-path check missed the loss:\n{}", summary(&r));
}
