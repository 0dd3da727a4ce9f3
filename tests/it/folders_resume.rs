//! Resuming a folder watch under load (issue 16): 8 writers change 200 resources (text `PUT`
//! and `PATCH`, file `PUT`s, a few deletes of both kinds) on a real server with RocksDB while one
//! watcher of the folder disconnects at random points and resumes from its last cursor, by a
//! `209` watch (`Parents`) or by `?since=` long polls. At the end it must hold exactly the
//! changes the writers made: for each resource, the acknowledged versions in the order they were
//! acknowledged, none twice, nothing else; and its last change per path must agree with a fresh
//! listing. The seed is printed (`PLAIT_FOLDER_SEED` replays a run).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::folders::{get_json, ids};
use crate::support::client::request;
use crate::support::folder_watch::{seq_of, Seen, Watcher};
use crate::support::killable::seed_from_env;
use crate::support::server::{Engine, TestServer};

const WRITERS: usize = 8;
const RESOURCES: usize = 200;
const OPS_PER_WRITER: usize = 70;
const FOLDER: &str = "/load/";

/// What a writer's acknowledged operation must show in the log: the resource's version after
/// it (empty for a delete).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acked {
    pub deleted: bool,
    pub version: Vec<String>,
}

/// Resource `i`: text or a file, directly in the folder or in one of three sub-folders.
fn path_of(i: usize) -> String {
    let name = if i % 4 == 3 { format!("f{i}.bin") } else { format!("t{i}") };
    match i % 3 {
        0 => format!("{FOLDER}{name}"),
        n => format!("{FOLDER}sub{n}/{name}"),
    }
}

fn is_file(path: &str) -> bool {
    path.ends_with(".bin")
}

/// One writer: owns every resource `i` with `i % WRITERS == w`, so each resource's writes are
/// sequential and each acknowledgement names the version the log must show next.
async fn writer(addr: SocketAddr, w: usize, seed: u64) -> BTreeMap<String, Vec<Acked>> {
    let mut rng = StdRng::seed_from_u64(seed ^ (w as u64 + 1).wrapping_mul(0x9e37_79b9));
    let mine: Vec<String> = (0..RESOURCES).filter(|i| i % WRITERS == w).map(path_of).collect();
    let mut live: BTreeMap<String, bool> = mine.iter().map(|p| (p.clone(), false)).collect();
    let mut acked: BTreeMap<String, Vec<Acked>> = BTreeMap::new();
    // Every resource first, then random operations.
    let order: Vec<String> = mine
        .iter()
        .cloned()
        .chain((0..OPS_PER_WRITER).map(|_| mine[rng.random_range(0..mine.len())].clone()))
        .collect();
    for (n, path) in order.into_iter().enumerate() {
        let exists = live[&path];
        let delete = exists && rng.random_ratio(1, 12);
        let r = if delete {
            request(addr, "DELETE", &path, &[], b"").await
        } else if is_file(&path) {
            let body = format!("\0w{w} n{n} {}", "x".repeat(rng.random_range(0..64)));
            request(addr, "PUT", &path, &[("Merge-Type", "aww")], body.as_bytes()).await
        } else if exists && rng.random_bool(0.5) {
            request(addr, "PATCH", &path, &[("Content-Range", "text [0:0]")], format!("w{w}n{n},").as_bytes()).await
        } else {
            request(addr, "PUT", &path, &[], format!("w{w} n{n}").as_bytes()).await
        };
        assert!(r.ok(), "{} {path}: {} {}", if delete { "DELETE" } else { "write" }, r.status, r.text());
        let a = if delete {
            Acked { deleted: true, version: Vec::new() }
        } else {
            Acked { deleted: false, version: ids(r.header("version")) }
        };
        live.insert(path.clone(), !delete);
        acked.entry(path).or_default().push(a);
    }
    acked
}

/// The watcher: sessions of random length, alternating at random between a `209` watch and
/// long polls, until the writers are done and it has reached `end` (set once they are).
async fn watch(
    addr: SocketAddr,
    from: String,
    seed: u64,
    done: Arc<AtomicBool>,
    end: Arc<std::sync::Mutex<Option<u64>>>,
) -> Watcher {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let mut w = Watcher::new(FOLDER, &from);
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        if done.load(Ordering::Acquire) {
            let target = end.lock().unwrap().expect("the end is set before done");
            if w.seq() >= target {
                return w;
            }
        }
        assert!(Instant::now() < deadline, "the watcher did not catch up within 45 s: {w:?}");
        if rng.random_ratio(2, 3) {
            // Cut after a random number of changes: often mid-chunk, with more already sent.
            let max = rng.random_range(1..=40);
            let ended = w.stream(addr, max, Duration::from_millis(500)).await;
            assert_eq!(ended, crate::support::folder_watch::Ended::Done, "the server is up");
        } else {
            for _ in 0..rng.random_range(1..=3) {
                let limit = rng.random_range(1..=30);
                w.poll(addr, Duration::from_millis(300), limit).await;
            }
        }
    }
}

/// Checks what the watcher saw against what the writers were told: per path, exactly the
/// acknowledged changes in order.
pub fn compare(seen: &[Seen], acked: &BTreeMap<String, Vec<Acked>>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut by_path: BTreeMap<&str, Vec<Acked>> = BTreeMap::new();
    for s in seen {
        let deleted = s.what == "delete";
        by_path.entry(&s.path).or_default().push(Acked { deleted, version: s.version.clone() });
    }
    for (path, want) in acked {
        let got = by_path.remove(path.as_str()).unwrap_or_default();
        if &got != want {
            let first = got.iter().zip(want).position(|(g, w)| g != w).unwrap_or(got.len().min(want.len()));
            problems.push(format!(
                "{path}: {} changes seen, {} acknowledged; first difference at #{first}: seen {:?}, acknowledged {:?}",
                got.len(),
                want.len(),
                got.get(first),
                want.get(first)
            ));
        }
    }
    for (path, got) in by_path {
        problems.push(format!("{path}: {} changes seen that no writer made", got.len()));
    }
    problems
}

/// Checks the watcher's last change per path against a fresh listing of the subtree.
pub async fn compare_with_listing(addr: SocketAddr, folder: &str, seen: &[Seen]) -> Vec<String> {
    let mut last: BTreeMap<&str, &Seen> = BTreeMap::new();
    for s in seen {
        last.insert(&s.path, s);
    }
    let mut listed: BTreeMap<String, Value> = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let mut target = format!("{folder}?recursive=1&limit=50");
        if let Some(a) = &after {
            target.push_str(&format!("&after={a}"));
        }
        let page = get_json(addr, &target).await;
        for e in page["entries"].as_array().unwrap() {
            listed.insert(e["path"].as_str().unwrap().to_string(), e.clone());
        }
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    let mut problems = Vec::new();
    for (path, s) in &last {
        match (listed.remove(*path), s.what == "delete") {
            (None, true) => {}
            (Some(e), false) => {
                let version: Vec<String> =
                    e["version"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
                if version != s.version || e["type"] != s.kind.as_str() {
                    problems.push(format!("{path}: listed {e}, last change seen {s:?}"));
                }
            }
            (listed, _) => problems.push(format!("{path}: listed {listed:?}, last change seen {s:?}")),
        }
    }
    for path in listed.keys() {
        problems.push(format!("{path}: listed but no change seen"));
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_keeps_resuming_gets_exactly_the_acknowledged_changes() {
    let seed = seed_from_env("PLAIT_FOLDER_SEED");
    eprintln!("folders_resume seed {seed} (PLAIT_FOLDER_SEED={seed} replays it)");
    let s = TestServer::start(Engine::Rocks).await;
    let a = s.addr;
    let start = get_json(a, FOLDER).await["cursor"].as_str().unwrap().to_string();
    let done = Arc::new(AtomicBool::new(false));
    let end = Arc::new(std::sync::Mutex::new(None));
    let watcher = tokio::spawn(watch(a, start.clone(), seed, done.clone(), end.clone()));
    let writers: Vec<_> = (0..WRITERS).map(|w| tokio::spawn(writer(a, w, seed))).collect();
    let mut acked = BTreeMap::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    let last = seq_of(get_json(a, FOLDER).await["cursor"].as_str().unwrap());
    *end.lock().unwrap() = Some(last);
    done.store(true, Ordering::Release);
    let w = tokio::time::timeout(Duration::from_secs(60), watcher).await.expect("the watcher finishes").unwrap();
    let total: usize = acked.values().map(Vec::len).sum();
    let deletes = acked.values().flatten().filter(|a| a.deleted).count();
    eprintln!(
        "{total} acknowledged changes ({deletes} deletes) on {} resources; the watcher saw {} in {} watches and {} polls",
        acked.len(),
        w.seen.len(),
        w.streams,
        w.polls
    );
    assert!(w.problems.is_empty(), "protocol problems:\n{}", w.problems.join("\n"));
    assert!(deletes > 0 && w.streams > 5 && w.polls > 5, "the run exercised too little");
    let mut problems = compare(&w.seen, &acked);
    problems.extend(compare_with_listing(a, FOLDER, &w.seen).await);
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    assert_eq!(w.seen.len(), total);
    // The checks can fail: a change dropped, one repeated, or a path's two changes swapped.
    let mut dropped = w.seen.clone();
    dropped.remove(dropped.len() / 2);
    let mut repeated = w.seen.clone();
    repeated.push(repeated[0].clone());
    let mut swapped = w.seen.clone();
    // Two changes of one path (whichever path changed twice first: writers pick paths at random).
    let (i, j) = (0..swapped.len())
        .find_map(|i| swapped[i + 1..].iter().position(|c| c.path == swapped[i].path).map(|k| (i, i + 1 + k)))
        .expect("some path changed twice");
    swapped.swap(i, j);
    for (name, bad) in [("dropped", dropped), ("repeated", repeated), ("swapped", swapped)] {
        assert!(!compare(&bad, &acked).is_empty(), "the comparison misses a {name} change");
    }
    s.stop().await;
}
