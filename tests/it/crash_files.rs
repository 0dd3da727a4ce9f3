//! Crash test for files (issue 15): the real `plait` binary on a RocksDB data dir is killed
//! with `kill -9` at random moments, during file uploads and chunk collections, and restarted
//! on the same dir, while clients write file versions and keep a synced, append-only oracle
//! log of every outcome. Afterwards every acknowledged version must read back with exactly its
//! bytes and a complete chunk list, every version that is there must be whole (never partial),
//! and one more collection must lose nothing.
//!
//! How it works:
//! - Client `k` owns three paths (`/fc/c{k}/f{j}.bin`), so each path's history is a sequence
//!   the oracle knows. Each operation is one of: a plain `PUT` (the server mints the version
//!   id), a `PUT` with an explicit wallclockish `Version` and `Parents` (the client's last
//!   version of the path), the delta exchange (`POST /.plait/missing`, `PUT /.plait/chunk` for
//!   the missing ones, `POST /.plait/commit`, with or without `Version` + `Parents`), a restore
//!   of one of its earlier versions of the path (`POST /.plait/restore`: a new version reusing
//!   the old chunks), a `DELETE` with an explicit `Version` (a tombstone), or `DELETE ?erase`
//!   (the whole history).
//! - Bodies run from a few bytes to 3.5 MiB, so uploads span several 1 MiB chunks. Each starts
//!   with a NUL and the client and operation number (so it is a file, and unique), then either
//!   noise or a slice of one of four shared 4 MiB blobs: versions of different paths then share
//!   chunks, so erasing one path and collecting must keep the chunks another path uses, and
//!   the delta exchange finds chunks that other versions reference.
//! - An operation whose connection fails (the server was killed) is logged `unknown` and sent
//!   again, the same request (the delta exchange from its start), until it is answered: 2xx is
//!   `acked`, anything else `rejected` (a failure unless durability is switched off). Every
//!   outcome is one JSON line, written and synced before the client moves on, with the SHA-256
//!   and size of the body. Now and then a client reads its path and checks it gets the version
//!   it last wrote, whole.
//! - Another task calls `POST /.plait/collect` in a loop, and `--chunk-collect-interval-secs 1`
//!   runs the collector in the background as well.
//! - A controller kills the server (seeded RNG; the seed is printed): every fourth kill right
//!   after the collect task has sent a request (once the clients have made progress on the new
//!   server); of the others, one in three 0-100 ms after the start (while retries arrive), the
//!   rest 20-250 ms after the clients have made progress. It counts the kills that landed while
//!   an upload or a collection was in flight; the run needs at least one of each.
//! - At the end: kill -9 and restart, then for every path the file history is read, every
//!   version in it is read back (`GET` + `Version`, SHA-256 of the body) with its chunk list
//!   (`GET /.plait/chunks-of` + `Version`: lengths adding up to the size, the same digest), and
//!   compared with the oracle: an acknowledged version (after the last acknowledged erase of
//!   its path) missing is lost, read back with other bytes or an incomplete chunk list is
//!   broken; a version there that no operation since the last acknowledged erase could have
//!   made is unexpected; an unacknowledged version that is there must be whole. Then one
//!   collection, the same checks, and the chunk store must hold exactly the chunks the
//!   versions name (no orphan of a killed upload left); then kill -9, restart, the same checks.
//!
//! The CI run: at least 10 kills and 150 acknowledged writes (about 100 MiB), within 60 s (a
//! run takes 15-25 s on two busy cores). Two self-tests run the same program and must fail its
//! checks: against `--unsafe-ack-before-durable-ms 200` (file writes answered before their
//! version is durable), 5 kills, it must report lost versions; with one chunk that a version
//! names deleted from the chunk store behind the server's back, a version that is not whole.
//!
//! ```sh
//! cargo test --test it crash_files:: -- --nocapture
//! ```
//!
//! Knobs: `PLAIT_FILECRASH_SEED` (replay a run), `PLAIT_FILECRASH_KILLS`,
//! `PLAIT_FILECRASH_WRITES`, `PLAIT_FILECRASH_CLIENTS` (default 4), `PLAIT_FILECRASH_TIMEOUT_SECS`,
//! `PLAIT_FILECRASH_CHUNK_AVG` (average chunk in bytes, min a quarter, max four times: e.g.
//! 16384 for about 200 times as many chunks),
//! `PLAIT_CRASH_KEEP=1` (keep the temp dir: data dir, oracle logs, server stderr; kept anyway
//! on failure).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use plait::chunks::chunker::chunk_all;
use plait::chunks::ChunkParams;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use serde_json::{json, Value};
use sha2::Digest;
use tokio::sync::watch;

use crate::support::killable::{
    env_u64, kill_server, read_logs, seed_from_env, server_complaints, start_server, Caller, Link, Notes, OracleLog,
    Up, MAX_NOTES,
};
use crate::support::Response;

/// The share of the time budget for the kill loop; the final checks get the rest.
const LOAD_SHARE: f64 = 0.6;
/// How long the controller waits for the clients to make progress on a new server.
const PROGRESS_WAIT: Duration = Duration::from_secs(10);
/// How long the clients write before a loaded kill, in ms.
const LOAD_MS: std::ops::RangeInclusive<u64> = 20..=250;
/// Paths per client.
const PATHS: usize = 3;
/// The shared blobs bodies are cut from, and their length.
const BLOBS: u64 = 4;
const BLOB_LEN: usize = 4 << 20;
/// The largest body.
const MAX_BODY: usize = 3_500_000;
/// One operation in this many is a read of the client's own path instead.
const READ_ONE_IN: u32 = 8;
/// The collector's background pass, in seconds.
const COLLECT_EVERY: &str = "1";

// ---------------------------------------------------------------------------------------------
// Configuration and report

#[derive(Clone, Debug)]
struct Config {
    seed: u64,
    clients: usize,
    min_kills: u64,
    min_acked: u64,
    server_args: Vec<String>,
    durable: bool,
    timeout: Duration,
    keep_dir: bool,
    /// The chunk control: delete one chunk a version names before the last checks.
    sabotage: bool,
}

/// The server's arguments: the collector's background pass, and the chunking a long run may
/// ask for (`PLAIT_FILECRASH_CHUNK_AVG`, in bytes: more, smaller chunks shared more widely).
fn chunking_args() -> Vec<String> {
    let mut args = vec!["--chunk-collect-interval-secs".to_string(), COLLECT_EVERY.to_string()];
    if env_u64("PLAIT_FILECRASH_CHUNK_AVG").is_some() {
        let p = chunk_params();
        for (flag, v) in
            [("--chunk-min-bytes", p.min()), ("--chunk-avg-bytes", p.avg()), ("--chunk-max-bytes", p.max())]
        {
            args.extend([flag.to_string(), v.to_string()]);
        }
    }
    args
}

/// The chunking the server is started with (the delta clients cut their files the same way).
fn chunk_params() -> ChunkParams {
    match env_u64("PLAIT_FILECRASH_CHUNK_AVG") {
        Some(avg) => {
            let avg = avg as usize;
            ChunkParams::new(avg / 4, avg, avg * 4).unwrap_or_else(|e| panic!("PLAIT_FILECRASH_CHUNK_AVG={avg}: {e}"))
        }
        None => ChunkParams::default(),
    }
}

impl Config {
    fn durable_from_env() -> Config {
        let min_kills = env_u64("PLAIT_FILECRASH_KILLS").unwrap_or(10);
        let min_acked = env_u64("PLAIT_FILECRASH_WRITES").unwrap_or(150);
        let default_timeout = 60 + min_kills.saturating_sub(10) * 3 + min_acked.saturating_sub(150) / 10;
        Config {
            seed: seed_from_env("PLAIT_FILECRASH_SEED"),
            clients: env_u64("PLAIT_FILECRASH_CLIENTS").unwrap_or(4) as usize,
            min_kills,
            min_acked,
            server_args: chunking_args(),
            durable: true,
            timeout: Duration::from_secs(env_u64("PLAIT_FILECRASH_TIMEOUT_SECS").unwrap_or(default_timeout)),
            keep_dir: std::env::var("PLAIT_CRASH_KEEP").is_ok_and(|v| v == "1"),
            sabotage: false,
        }
    }

    /// The chunk control: durable, a short run, then one chunk deleted from the store.
    fn missing_chunk_self_test() -> Config {
        Config {
            min_kills: 2,
            min_acked: 30,
            timeout: Duration::from_secs(40),
            sabotage: true,
            ..Self::durable_from_env()
        }
    }

    fn unsafe_self_test() -> Config {
        Config {
            seed: seed_from_env("PLAIT_FILECRASH_SEED"),
            clients: 4,
            min_kills: 5,
            min_acked: 0,
            server_args: [chunking_args(), ["--unsafe-ack-before-durable-ms".into(), "200".into()].to_vec()].concat(),
            durable: false,
            timeout: Duration::from_secs(40),
            keep_dir: std::env::var("PLAIT_CRASH_KEEP").is_ok_and(|v| v == "1"),
            sabotage: false,
        }
    }
}

#[derive(Debug, Default)]
struct Report {
    seed: u64,
    kills: u64,
    kills_during_uploads: u64,
    kills_during_collections: u64,
    /// Operations logged, acknowledged, with a first attempt of unknown outcome, still unknown
    /// at the end, refused.
    ops: u64,
    acked: u64,
    unknown: u64,
    unresolved: u64,
    rejected: u64,
    /// MiB of bodies acknowledged.
    acked_mib: f64,
    /// Answers of 500 or more, from any request.
    server_errors: u64,
    collections: u64,
    /// What the final checks found, by kind, each version once however many checks see it:
    /// `lost` (an acknowledged version missing from its path's history), `broken` (there,
    /// but with other bytes, or not whole), `partial` (a version there, acknowledged or not,
    /// that does not read back whole with the bytes its history names), `incomplete_chunk_lists`
    /// (a chunk list that does not add up to its version's size and digest), `unexpected` (a
    /// version that no operation since the path's last acknowledged erase could have made).
    found: BTreeMap<&'static str, BTreeSet<String>>,
    /// Acknowledged operations by kind.
    acked_ops: BTreeMap<String, u64>,
    /// Chunks the collect loop deleted.
    collected_chunks: u64,
    /// Chunks stored after the final collection that no version names.
    orphans: u64,
    live_read_failures: u64,
    stray_errors: u64,
    stalled_epochs: u64,
    server_failures: u64,
    thresholds_met: bool,
    elapsed: Duration,
    notes: Vec<String>,
    dir: std::path::PathBuf,
}

impl Report {
    fn summary(&self) -> String {
        format!(
            "crash_files: seed={} kills={} (during uploads {}, during collections {}) ops={} acked={} \
             ({:.0} MiB; {:?}) unknown={} unresolved={} rejected={} server_errors={} collections={} \
             (chunks deleted {}) lost={} broken={} partial={} incomplete_chunk_lists={} unexpected={} orphans={} \
             live_read_failures={} stray_errors={} stalled_epochs={} server_failures={} thresholds_met={} \
             elapsed={:.1}s",
            self.seed,
            self.kills,
            self.kills_during_uploads,
            self.kills_during_collections,
            self.ops,
            self.acked,
            self.acked_mib,
            self.acked_ops,
            self.unknown,
            self.unresolved,
            self.rejected,
            self.server_errors,
            self.collections,
            self.collected_chunks,
            self.count("lost"),
            self.count("broken"),
            self.count("partial"),
            self.count("incomplete_chunk_lists"),
            self.count("unexpected"),
            self.orphans,
            self.live_read_failures,
            self.stray_errors,
            self.stalled_epochs,
            self.server_failures,
            self.thresholds_met,
            self.elapsed.as_secs_f64(),
        )
    }

    fn clean(&self) -> bool {
        self.thresholds_met
            && self.kills_during_uploads > 0
            && self.kills_during_collections > 0
            && self.unresolved == 0
            && self.rejected == 0
            && self.server_errors == 0
            && self.found.values().all(BTreeSet::is_empty)
            && self.orphans == 0
            && self.live_read_failures == 0
            && self.stray_errors == 0
            && self.stalled_epochs == 0
            && self.server_failures == 0
    }

    fn count(&self, kind: &str) -> usize {
        self.found.get(kind).map_or(0, BTreeSet::len)
    }

    /// Records a finding about `key` (a path and version), with its note the first time.
    fn flag(&mut self, kind: &'static str, key: &str, note: String) {
        if self.found.entry(kind).or_default().insert(key.to_string()) && self.notes.len() < MAX_NOTES {
            self.notes.push(note);
        }
    }

    fn details(&self) -> String {
        format!("{}\ndir: {}\n{}", self.summary(), self.dir.display(), self.notes.join("\n"))
    }
}

// ---------------------------------------------------------------------------------------------
// Bodies

fn sha_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

fn repr_digest(bytes: &[u8]) -> String {
    format!("sha-256=:{}:", base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes)))
}

/// The shared blobs: the same for every client of a run.
fn blobs(seed: u64) -> Vec<Vec<u8>> {
    (0..BLOBS)
        .map(|b| {
            let mut out = vec![0u8; BLOB_LEN];
            StdRng::seed_from_u64(seed ^ (b + 1).wrapping_mul(0xA076_1D64_78BD_642F)).fill_bytes(&mut out);
            out
        })
        .collect()
}

/// A body: NUL, the operation's name, then noise or a slice of a shared blob; sizes from a few
/// bytes to [`MAX_BODY`], one in four over 1 MiB.
fn body(rng: &mut StdRng, blobs: &[Vec<u8>], k: usize, n: u64) -> Vec<u8> {
    let mut out = format!("\0c{k}:{n}\0").into_bytes();
    let len = match rng.random_range(0..4) {
        0 => rng.random_range(1..2_000),
        1 | 2 => rng.random_range(2_000..700_000),
        _ => rng.random_range(1_200_000..MAX_BODY),
    };
    if rng.random_ratio(1, 2) {
        let blob = &blobs[rng.random_range(0..blobs.len())];
        let at = rng.random_range(0..=BLOB_LEN - len);
        out.extend_from_slice(&blob[at..at + len]);
    } else {
        let start = out.len();
        out.resize(start + len, 0);
        rng.fill_bytes(&mut out[start..]);
    }
    out
}

/// A wallclockish id, unique per client and operation: seconds, milliseconds, then the
/// client and the operation number as further fraction digits.
fn wallclockish(k: usize, n: u64) -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    format!("{}.{:03}{k:02}{n:06}", t.as_secs(), t.subsec_millis())
}

fn path_of(k: usize, j: usize) -> String {
    format!("/fc/c{k}/f{j}.bin")
}

// ---------------------------------------------------------------------------------------------
// Clients

struct Shared {
    stop: AtomicBool,
    /// Acknowledged writes so far (the controller waits on it for progress).
    acked: watch::Sender<u64>,
    /// Collect requests sent so far (the controller waits on it to kill during one).
    collects_sent: watch::Sender<u64>,
    uploads_in_flight: AtomicU64,
    collecting: AtomicBool,
    server_errors: AtomicU64,
    deadline: Instant,
    durable: bool,
    blobs: Vec<Vec<u8>>,
    notes: Notes,
}

impl Shared {
    /// Notes an answer of 500 or more (never acceptable).
    fn check_status(&self, what: &str, r: &Response) {
        if r.status >= 500 {
            self.server_errors.fetch_add(1, Ordering::SeqCst);
            self.notes.add(format!("{what} answered {}: {}", r.status, String::from_utf8_lossy(&r.body)));
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Put,
    PutVersioned,
    Delta,
    DeltaVersioned,
    Restore,
    Delete,
    Erase,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::PutVersioned => "put-versioned",
            Op::Delta => "delta",
            Op::DeltaVersioned => "delta-versioned",
            Op::Restore => "restore",
            Op::Delete => "delete",
            Op::Erase => "erase",
        }
    }
}

/// What a client knows of one of its paths.
#[derive(Default)]
struct PathState {
    /// The version it last wrote or read there (None: nothing there).
    known: Option<String>,
    /// That version's SHA-256 (None: a tombstone, or nothing).
    sha: Option<String>,
    /// The content versions it wrote there since the last erase: id, SHA-256, size (what a
    /// restore may bring back).
    written: Vec<(String, String, u64)>,
}

#[derive(Default)]
struct ClientStats {
    live_read_failures: u64,
    stray_errors: u64,
}

struct Client {
    k: usize,
    rng: StdRng,
    caller: Caller,
    log: OracleLog,
    shared: Arc<Shared>,
    paths: Vec<PathState>,
    stats: ClientStats,
}

/// One operation, ready to be sent (again).
struct Planned {
    op: Op,
    path: String,
    version: Option<String>,
    parents: Option<String>,
    /// The file's bytes (a restore: the request).
    body: Vec<u8>,
    /// The SHA-256 and size of the version it makes (None: a delete or an erase).
    sha: Option<String>,
    size: u64,
}

impl Client {
    async fn run(mut self) -> ClientStats {
        let mut n = 0u64;
        while !self.shared.stop.load(Ordering::SeqCst) && Instant::now() < self.shared.deadline {
            let j = self.rng.random_range(0..PATHS);
            if self.rng.random_ratio(1, READ_ONE_IN) {
                self.check_own(j).await;
            } else {
                let planned = self.plan(j, n);
                self.perform(j, n, planned).await;
                n += 1;
            }
        }
        self.stats
    }

    fn plan(&mut self, j: usize, n: u64) -> Planned {
        let st = &self.paths[j];
        let live = st.sha.is_some();
        let roll = self.rng.random_range(0..100);
        let op = match roll {
            0..30 => Op::Put,
            30..55 => Op::PutVersioned,
            55..65 => Op::Delta,
            65..80 => Op::DeltaVersioned,
            80..86 if !st.written.is_empty() => Op::Restore,
            86..93 if live => Op::Delete,
            93.. if st.known.is_some() => Op::Erase,
            _ => Op::Put,
        };
        let versioned = matches!(op, Op::PutVersioned | Op::DeltaVersioned | Op::Delete);
        let version = versioned.then(|| wallclockish(self.k, n));
        let parents = if matches!(op, Op::PutVersioned | Op::DeltaVersioned) { st.known.clone() } else { None };
        let (body, sha, size) = match op {
            Op::Delete | Op::Erase => (Vec::new(), None, 0),
            Op::Restore => {
                let (id, sha, size) = st.written[self.rng.random_range(0..st.written.len())].clone();
                (json!({ "version": [id] }).to_string().into_bytes(), Some(sha), size)
            }
            _ => {
                let body = body(&mut self.rng, &self.shared.blobs, self.k, n);
                let (sha, size) = (sha_hex(&body), body.len() as u64);
                (body, Some(sha), size)
            }
        };
        Planned { op, path: path_of(self.k, j), version, parents, body, sha, size }
    }

    /// Sends `p` until it is answered (or the run ends), logging every outcome.
    async fn perform(&mut self, j: usize, n: u64, p: Planned) {
        let mut uncertain = false;
        loop {
            let uploading = matches!(p.op, Op::Put | Op::PutVersioned | Op::Delta | Op::DeltaVersioned);
            if uploading {
                self.shared.uploads_in_flight.fetch_add(1, Ordering::SeqCst);
            }
            let answer = self.send(&p).await;
            if uploading {
                self.shared.uploads_in_flight.fetch_sub(1, Ordering::SeqCst);
            }
            match answer {
                Ok(r) if r.ok() => {
                    let answered = r.header("version").map(unquote);
                    if p.op != Op::Erase && answered.is_none() {
                        self.shared.notes.add(format!(
                            "client {}: {} {}: 2xx without Version",
                            self.k,
                            p.op.name(),
                            p.path
                        ));
                    }
                    let st = &mut self.paths[j];
                    match p.op {
                        Op::Erase => *st = PathState::default(),
                        _ => {
                            st.known = answered.clone();
                            st.sha = p.sha.clone();
                            if let (Some(id), Some(sha)) = (&answered, &p.sha) {
                                st.written.push((id.clone(), sha.clone(), p.size));
                            }
                        }
                    }
                    self.log(n, &p, "acked", answered, Value::Null).await;
                    self.shared.acked.send_modify(|a| *a += 1);
                    return;
                }
                Ok(r) => {
                    self.shared.check_status(&format!("client {}: {} {}", self.k, p.op.name(), p.path), &r);
                    let detail = json!({"status": r.status, "body": String::from_utf8_lossy(&r.body)});
                    if self.shared.durable {
                        self.shared.notes.add(format!(
                            "client {}: {} {} #{n} (retried: {uncertain}) refused: {detail}",
                            self.k,
                            p.op.name(),
                            p.path
                        ));
                    }
                    self.log(n, &p, "rejected", None, detail).await;
                    self.resync(j).await;
                    return;
                }
                Err((epoch, e)) => {
                    if !uncertain {
                        uncertain = true;
                        self.log(n, &p, "unknown", None, json!({"error": e.to_string()})).await;
                    }
                    self.recover(epoch, &e).await;
                    if Instant::now() >= self.shared.deadline {
                        return; // stays `unknown`
                    }
                }
            }
        }
    }

    /// One attempt at `p`: the final answer, or the connection error.
    async fn send(&mut self, p: &Planned) -> Result<Response, (u64, io::Error)> {
        let mut headers: Vec<(&str, String)> = Vec::new();
        if let Some(v) = &p.version {
            headers.push(("Version", format!("\"{v}\"")));
        }
        if let Some(ps) = &p.parents {
            headers.push(("Parents", format!("\"{ps}\"")));
        }
        match p.op {
            Op::Put | Op::PutVersioned => {
                // Both ways of saying "a file", the same on every retry.
                if p.body.len() % 2 == 0 {
                    headers.push(("Content-Type", "application/octet-stream".into()));
                } else {
                    headers.push(("Merge-Type", "aww".into()));
                }
                let h: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
                self.caller.call("PUT", &p.path, &h, &p.body).await
            }
            Op::Delete => {
                let h: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
                self.caller.call("DELETE", &p.path, &h, b"").await
            }
            Op::Erase => self.caller.call("DELETE", &format!("{}?erase", p.path), &[], b"").await,
            Op::Restore => self.caller.call("POST", &format!("/.plait/restore{}", p.path), &[], &p.body).await,
            Op::Delta | Op::DeltaVersioned => self.delta(p, headers).await,
        }
    }

    /// The delta exchange from its start: which chunks are missing, those uploaded, the
    /// commit. A refusal on the way is the answer.
    async fn delta(&mut self, p: &Planned, mut headers: Vec<(&str, String)>) -> Result<Response, (u64, io::Error)> {
        let (chunks, _) = chunk_all(chunk_params(), &p.body);
        let ids: Vec<String> = chunks.iter().map(|c| c.id.to_string()).collect();
        let ask = json!({ "chunks": ids }).to_string();
        let r = self.caller.call("POST", &format!("/.plait/missing{}", p.path), &[], ask.as_bytes()).await?;
        if r.status != 200 {
            return Ok(r);
        }
        let missing: Vec<String> = serde_json::from_slice::<Value>(&r.body)
            .ok()
            .and_then(|v| serde_json::from_value(v["missing"].clone()).ok())
            .unwrap_or_default();
        for c in chunks.iter().filter(|c| missing.contains(&c.id.to_string())) {
            let url = format!("/.plait/chunk{}?id={}", p.path, c.id);
            let r = self.caller.call("PUT", &url, &[], &c.data).await?;
            if r.status != 200 {
                return Ok(r);
            }
        }
        let list: Vec<Value> = chunks.iter().map(|c| json!({ "id": c.id.to_string(), "len": c.data.len() })).collect();
        headers.push(("Repr-Digest", repr_digest(&p.body)));
        headers.push(("Content-Type", "application/octet-stream".into()));
        let h: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let commit = json!({ "chunks": list }).to_string();
        self.caller.call("POST", &format!("/.plait/commit{}", p.path), &h, commit.as_bytes()).await
    }

    /// Reads path `j` and checks it serves the version this client last wrote there, whole.
    async fn check_own(&mut self, j: usize) {
        let path = path_of(self.k, j);
        match self.caller.call("GET", &path, &[], b"").await {
            Ok(r) => {
                self.shared.check_status(&format!("client {}: GET {path}", self.k), &r);
                let st = &self.paths[j];
                let seen = observed(&r);
                if seen.as_ref().is_none_or(|s| s.known != st.known || s.sha != st.sha) {
                    self.stats.live_read_failures += 1;
                    if self.shared.durable {
                        self.shared.notes.add(format!(
                            "client {}: GET {path}: {} {:?} ({} bytes), wanted {:?} sha {:?}",
                            self.k,
                            r.status,
                            r.header("version"),
                            r.body.len(),
                            st.known,
                            st.sha
                        ));
                    }
                    self.resync(j).await;
                }
            }
            Err((epoch, e)) => self.recover(epoch, &e).await,
        }
    }

    /// After a refusal or a failed check (expected only without durability): learn what the
    /// server has at path `j` now.
    async fn resync(&mut self, j: usize) {
        let path = path_of(self.k, j);
        while Instant::now() < self.shared.deadline {
            match self.caller.call("GET", &path, &[], b"").await {
                Ok(r) => {
                    self.shared.check_status(&format!("client {}: GET {path}", self.k), &r);
                    if let Some(seen) = observed(&r) {
                        self.paths[j] = seen;
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err((epoch, e)) => self.recover(epoch, &e).await,
            }
        }
    }

    async fn recover(&mut self, epoch: u64, err: &io::Error) {
        let backoff = Duration::from_millis(self.rng.random_range(5..=20));
        if !self.caller.wait_for_restart(epoch, backoff, self.shared.deadline).await {
            self.stats.stray_errors += 1;
            self.shared.notes.add(format!("client {}: error not explained by a kill (epoch {epoch}): {err}", self.k));
        }
    }

    async fn log(&mut self, n: u64, p: &Planned, outcome: &str, answered: Option<String>, detail: Value) {
        let line = json!({
            "client": self.k, "n": n, "op": p.op.name(), "path": p.path, "version": p.version,
            "parents": p.parents, "sha256": p.sha, "size": p.size, "outcome": outcome,
            "answered": answered, "detail": detail,
        });
        self.log.append(&line).await;
    }
}

/// What a `GET` of a client's path says is there: a file version (its id and digest), a
/// tombstone (its id), nothing (an empty text resource, as any unwritten URL reads); None for
/// anything else.
fn observed(r: &Response) -> Option<PathState> {
    let file = r.header("merge-type") == Some("aww");
    let known = r.header("version").map(unquote);
    match r.status {
        200 if file => Some(PathState { known, sha: Some(sha_hex(&r.body)), written: Vec::new() }),
        404 if file => Some(PathState { known, sha: None, written: Vec::new() }),
        200 if r.body.is_empty() => Some(PathState::default()),
        _ => None,
    }
}

fn unquote(v: &str) -> String {
    v.trim().trim_matches('"').to_string()
}

/// Calls `POST /.plait/collect` in a loop until the run stops; returns how many passes ran,
/// how many chunks they deleted, and the errors no kill explains.
async fn collect_loop(shared: Arc<Shared>, up: watch::Receiver<Up>, seed: u64) -> (u64, u64, u64) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xC011_EC70);
    let mut caller = Caller::new(up);
    let (mut passes, mut deleted, mut stray) = (0, 0, 0);
    while !shared.stop.load(Ordering::SeqCst) && Instant::now() < shared.deadline {
        shared.collecting.store(true, Ordering::SeqCst);
        shared.collects_sent.send_modify(|n| *n += 1);
        let answer = caller.call("POST", "/.plait/collect", &[], b"").await;
        shared.collecting.store(false, Ordering::SeqCst);
        match answer {
            Ok(r) if r.status == 200 => {
                passes += 1;
                let done = serde_json::from_slice::<Value>(&r.body).unwrap_or(Value::Null);
                deleted += done["deleted"].as_u64().unwrap_or(0);
            }
            Ok(r) => {
                shared.check_status("POST /.plait/collect", &r);
                shared.notes.add(format!("POST /.plait/collect answered {}", r.status));
                stray += 1;
            }
            Err((epoch, e)) => {
                if !caller.wait_for_restart(epoch, Duration::from_millis(5), shared.deadline).await {
                    stray += 1;
                    shared.notes.add(format!("collect: error not explained by a kill (epoch {epoch}): {e}"));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..=60))).await;
    }
    (passes, deleted, stray)
}

// ---------------------------------------------------------------------------------------------
// The oracle, read back from disk

/// Everything the logs say about one operation.
struct Logged {
    n: u64,
    op: String,
    path: String,
    sha: Option<String>,
    size: u64,
    acked: bool,
    unknown: bool,
    rejected: bool,
    /// The version its 2xx answer named.
    answered: Option<String>,
    /// The explicit version it sent.
    version: Option<String>,
    lines: Vec<String>,
}

/// What the final state of one path must (and may) hold.
#[derive(Default)]
struct Expected<'a> {
    /// Acknowledged writes after the last erase that may have happened.
    must: Vec<&'a Logged>,
    /// Digests of every content write (any outcome but refused) since the last acknowledged
    /// erase, and the ids of the deletes among them.
    may_shas: BTreeSet<String>,
    may_tombstones: BTreeSet<String>,
}

fn read_oracle(dir: &Path) -> BTreeMap<(u64, u64), Logged> {
    let mut out: BTreeMap<(u64, u64), Logged> = BTreeMap::new();
    for (line, v) in read_logs(dir) {
        let s = |k: &str| v[k].as_str().map(str::to_string);
        let key = (v["client"].as_u64().unwrap(), v["n"].as_u64().unwrap());
        let e = out.entry(key).or_insert_with(|| Logged {
            n: key.1,
            op: s("op").unwrap(),
            path: s("path").unwrap(),
            sha: s("sha256"),
            size: v["size"].as_u64().unwrap(),
            acked: false,
            unknown: false,
            rejected: false,
            answered: None,
            version: s("version"),
            lines: Vec::new(),
        });
        match v["outcome"].as_str().unwrap() {
            "acked" => {
                e.acked = true;
                e.answered = s("answered");
            }
            "unknown" => e.unknown = true,
            "rejected" => e.rejected = true,
            other => panic!("unknown outcome {other}"),
        }
        e.lines.push(line);
    }
    out
}

fn expectations(oracle: &BTreeMap<(u64, u64), Logged>) -> BTreeMap<String, Expected<'_>> {
    let mut by_path: BTreeMap<&str, Vec<&Logged>> = BTreeMap::new();
    for e in oracle.values() {
        by_path.entry(&e.path).or_default().push(e);
    }
    let mut out = BTreeMap::new();
    for (path, mut ops) in by_path {
        ops.sort_by_key(|e| e.n);
        let erased = |e: &&Logged| e.op == "erase" && e.acked;
        let maybe_erased = |e: &&Logged| e.op == "erase" && (e.acked || (e.unknown && !e.rejected));
        let last_erase = ops.iter().rposition(erased).map_or(0, |i| i + 1);
        let cut = ops.iter().rposition(maybe_erased).map_or(0, |i| i + 1);
        let mut x = Expected::default();
        for e in &ops[last_erase..] {
            if e.op == "erase" || !(e.acked || e.unknown) {
                continue;
            }
            match &e.sha {
                Some(sha) => x.may_shas.insert(sha.clone()),
                None => x.may_tombstones.insert(e.version.clone().unwrap_or_default()),
            };
        }
        x.must = ops[cut..].iter().filter(|e| e.acked && e.op != "erase").copied().collect();
        out.insert(path.to_string(), x);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The final checks

/// One version in a path's history.
struct Listed {
    id: String,
    deleted: bool,
    sha: String,
    size: u64,
    /// Read back whole with the listed digest and a complete chunk list.
    whole: bool,
}

/// A `GET` during the final checks, when the server is up: a connection error (a body cut
/// short) is a status 0 answer, and the link is opened again.
async fn get(link: &mut Link, path: &str, headers: &[(&str, &str)], report: &mut Report) -> Response {
    let r = match link.call("GET", path, headers, b"").await {
        Ok(r) => r,
        Err(e) => {
            note(report, format!("GET {path} {headers:?} failed: {e}"));
            *link = Link::open(link.peer()).await.unwrap();
            Response { status: 0, reason: String::new(), headers: Vec::new(), body: Vec::new() }
        }
    };
    if r.status >= 500 {
        report.server_errors += 1;
        note(report, format!("GET {path} {headers:?} answered {}: {}", r.status, String::from_utf8_lossy(&r.body)));
    }
    r
}

fn note(report: &mut Report, s: String) {
    if report.notes.len() < MAX_NOTES {
        report.notes.push(s);
    }
}

/// Reads every version of every path and compares them with the oracle (counts add up over
/// the checks of a run). Returns the ids of every chunk the versions name.
async fn check(
    addr: SocketAddr,
    expected: &BTreeMap<String, Expected<'_>>,
    label: &str,
    report: &mut Report,
) -> BTreeSet<String> {
    let mut link = Link::open(addr).await.unwrap();
    let mut chunks = BTreeSet::new();
    for (path, x) in expected {
        let h = get(&mut link, &format!("/.plait/history{path}?limit=1000"), &[], report).await;
        let page = serde_json::from_slice::<Value>(&h.body).unwrap_or(Value::Null);
        let versions = if h.status == 200 && page["kind"] == "file" {
            page["versions"].as_array().cloned().unwrap_or_default()
        } else {
            Vec::new()
        };
        let mut listed: HashMap<String, Listed> = HashMap::new();
        for v in versions {
            let mut l = Listed {
                id: v["version"].as_str().unwrap_or_default().to_string(),
                deleted: v["deleted"] == true,
                sha: v["sha256"].as_str().unwrap_or_default().to_string(),
                size: v["size"].as_u64().unwrap_or_default(),
                whole: true,
            };
            let version = format!("\"{}\"", l.id);
            let key = format!("{path} {}", l.id);
            if l.deleted {
                if !x.may_tombstones.contains(&l.id) {
                    report.flag(
                        "unexpected",
                        &key,
                        format!("{label}: {path}: tombstone {} that no delete since the last erase made", l.id),
                    );
                }
            } else {
                if !x.may_shas.contains(&l.sha) {
                    report.flag(
                        "unexpected",
                        &key,
                        format!(
                            "{label}: {path}: version {} (sha {}) that no write since the last erase made",
                            l.id, l.sha
                        ),
                    );
                }
                let r = get(&mut link, path, &[("Version", &version)], report).await;
                if r.status != 200 || r.body.len() as u64 != l.size || sha_hex(&r.body) != l.sha {
                    l.whole = false;
                    report.flag(
                        "partial",
                        &key,
                        format!(
                            "{label}: {path} {}: read back {} with {} bytes (listed {}), sha {}",
                            l.id,
                            r.status,
                            r.body.len(),
                            l.size,
                            sha_hex(&r.body)
                        ),
                    );
                }
                let c = get(&mut link, &format!("/.plait/chunks-of{path}"), &[("Version", &version)], report).await;
                let list = serde_json::from_slice::<Value>(&c.body).unwrap_or(Value::Null);
                let ids: Vec<(String, u64)> = list["chunks"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|c| {
                                (
                                    c["id"].as_str().unwrap_or_default().to_string(),
                                    c["len"].as_u64().unwrap_or_default(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let total: u64 = ids.iter().map(|(_, n)| n).sum();
                if c.status != 200 || total != l.size || list["sha256"].as_str() != Some(l.sha.as_str()) {
                    l.whole = false;
                    report.flag(
                        "incomplete_chunk_lists",
                        &key,
                        format!(
                            "{label}: {path} {}: chunk list {} adds up to {total} of {} bytes: {}",
                            l.id,
                            c.status,
                            l.size,
                            String::from_utf8_lossy(&c.body)
                        ),
                    );
                }
                chunks.extend(ids.into_iter().map(|(id, _)| id));
            }
            listed.insert(l.id.clone(), l);
        }
        for e in &x.must {
            let id = e.answered.clone().unwrap_or_default();
            let key = format!("{path} {id}");
            match listed.get(&id) {
                None => {
                    report.flag("lost", &key, format!("{label}: LOST {path} {id}: {}", e.lines.join(" | ")));
                }
                Some(l) => {
                    let right = match &e.sha {
                        Some(sha) => !l.deleted && &l.sha == sha && l.size == e.size && l.whole,
                        None => l.deleted,
                    };
                    if !right {
                        report.flag(
                            "broken",
                            &key,
                            format!(
                                "{label}: BROKEN {path} {id} (listed sha {}, deleted {}, whole {}): {}",
                                l.sha,
                                l.deleted,
                                l.whole,
                                e.lines.join(" | ")
                            ),
                        );
                    }
                }
            }
        }
    }
    chunks
}

/// `POST /.plait/collect` once, then how many chunks the store holds.
async fn collect_and_count(addr: SocketAddr, report: &mut Report) -> u64 {
    let mut link = Link::open(addr).await.unwrap();
    let r = link.call("POST", "/.plait/collect", &[], b"").await.unwrap();
    if r.status != 200 {
        report.server_errors += u64::from(r.status >= 500);
        note(report, format!("the final collection answered {}: {}", r.status, String::from_utf8_lossy(&r.body)));
    }
    let r = get(&mut link, "/.plait/chunks", &[], report).await;
    serde_json::from_slice::<Value>(&r.body).ok().and_then(|v| v["chunks"].as_u64()).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// The program

async fn run(cfg: Config) -> Report {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let oracle_dir = tmp.path().join("oracle");
    let server_log = tmp.path().join("server-stderr.log");
    std::fs::create_dir_all(&oracle_dir).unwrap();
    let notes = Notes::default();
    let mut report = Report { seed: cfg.seed, ..Report::default() };
    eprintln!(
        "crash_files: seed={} (replay with PLAIT_FILECRASH_SEED={}) dir={}",
        cfg.seed,
        cfg.seed,
        tmp.path().display()
    );

    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        acked: watch::Sender::new(0),
        collects_sent: watch::Sender::new(0),
        uploads_in_flight: AtomicU64::new(0),
        collecting: AtomicBool::new(false),
        server_errors: AtomicU64::new(0),
        deadline: started + cfg.timeout.mul_f64(LOAD_SHARE),
        durable: cfg.durable,
        blobs: blobs(cfg.seed),
        notes: Notes::default(),
    });
    let mut proc = start_server(&data, &cfg.server_args, &server_log).await;
    let (up_tx, up_rx) = watch::channel(Up { epoch: 1, addr: Some(proc.addr) });
    let mut clients = Vec::new();
    for k in 0..cfg.clients {
        let client = Client {
            k,
            rng: StdRng::seed_from_u64(cfg.seed ^ (k as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            caller: Caller::new(up_rx.clone()),
            log: OracleLog::create(&oracle_dir.join(format!("c{k}.jsonl"))),
            shared: shared.clone(),
            paths: (0..PATHS).map(|_| PathState::default()).collect(),
            stats: ClientStats::default(),
        };
        clients.push(tokio::spawn(client.run()));
    }
    let collector = tokio::spawn(collect_loop(shared.clone(), up_rx.clone(), cfg.seed));

    // The controller (see the module doc), until both thresholds are met.
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let mut acked = shared.acked.subscribe();
    let mut collects = shared.collects_sent.subscribe();
    let quota = (cfg.clients as u64).max(cfg.min_acked.div_ceil(cfg.min_kills.max(1)));
    let mut announced = Instant::now();
    let mut epoch = 1;
    loop {
        let met = report.kills >= cfg.min_kills && *acked.borrow() >= cfg.min_acked;
        if met || Instant::now() >= shared.deadline {
            report.thresholds_met = met;
            break;
        }
        // Every fourth kill lands during a collection; of the others one in three is early.
        let mode = if epoch % 4 == 2 { 1 } else { u32::from(!rng.random_ratio(1, 3)) * 2 };
        match mode {
            0 => tokio::time::sleep(Duration::from_millis(rng.random_range(0..=100))).await,
            mode => {
                let start = *acked.borrow();
                let left = shared.deadline.saturating_duration_since(announced).min(PROGRESS_WAIT);
                let progress =
                    tokio::time::timeout_at((announced + left).into(), acked.wait_for(|n| *n >= start + quota));
                if progress.await.is_err() {
                    report.stalled_epochs += 1;
                    notes.add(format!("epoch {epoch}: fewer than {quota} writes acknowledged within {left:?}"));
                }
                if mode == 1 {
                    // Right after the collect task sends its next request.
                    let seen = *collects.borrow_and_update();
                    let _ = tokio::time::timeout(Duration::from_secs(1), collects.wait_for(|n| *n > seen)).await;
                    tokio::time::sleep(Duration::from_millis(rng.random_range(0..=2))).await;
                } else {
                    tokio::time::sleep(Duration::from_millis(rng.random_range(LOAD_MS))).await;
                }
            }
        }
        report.kills_during_uploads += u64::from(shared.uploads_in_flight.load(Ordering::SeqCst) > 0);
        report.kills_during_collections += u64::from(shared.collecting.load(Ordering::SeqCst));
        kill_server(proc, &mut report.server_failures, &notes).await;
        report.kills += 1;
        up_tx.send_replace(Up { epoch, addr: None });
        proc = start_server(&data, &cfg.server_args, &server_log).await;
        epoch += 1;
        up_tx.send_replace(Up { epoch, addr: Some(proc.addr) });
        announced = Instant::now();
    }
    shared.stop.store(true, Ordering::SeqCst);
    for c in clients {
        let s = c.await.unwrap();
        report.live_read_failures += s.live_read_failures;
        report.stray_errors += s.stray_errors;
    }
    let (passes, deleted, stray) = collector.await.unwrap();
    report.collections = passes;
    report.collected_chunks = deleted;
    report.stray_errors += stray;

    // The final state: after one more crash; after one more collection; after one more crash.
    let oracle = read_oracle(&oracle_dir);
    for e in oracle.values() {
        report.ops += 1;
        report.acked += u64::from(e.acked);
        report.unknown += u64::from(e.unknown);
        report.rejected += u64::from(e.rejected);
        report.unresolved += u64::from(e.unknown && !e.acked && !e.rejected);
        if e.acked {
            *report.acked_ops.entry(e.op.clone()).or_default() += 1;
            report.acked_mib += e.size as f64 / f64::from(1 << 20);
        }
    }
    let expected = expectations(&oracle);
    kill_server(proc, &mut report.server_failures, &notes).await;
    let proc = start_server(&data, &cfg.server_args, &server_log).await;
    let named = check(proc.addr, &expected, "after a restart", &mut report).await;
    let proc = match named.iter().next().filter(|_| cfg.sabotage) {
        // The control: one chunk a version names goes missing behind the server's back.
        Some(id) => {
            kill_server(proc, &mut report.server_failures, &notes).await;
            let engine = plait::chunks::RocksChunkStore::open(&data.join("chunks")).unwrap();
            plait::chunks::ChunkStore::delete(&engine, &[plait::chunks::ChunkId::from_hex(id).unwrap()]).unwrap();
            drop(engine);
            start_server(&data, &cfg.server_args, &server_log).await
        }
        None => proc,
    };
    let stored = collect_and_count(proc.addr, &mut report).await;
    let named = check(proc.addr, &expected, "after a collection", &mut report).await;
    if stored != named.len() as u64 {
        report.orphans += stored.saturating_sub(named.len() as u64);
        note(
            &mut report,
            format!("after the final collection the store holds {stored} chunks, the versions name {}", named.len()),
        );
    }
    kill_server(proc, &mut report.server_failures, &notes).await;
    let proc = start_server(&data, &cfg.server_args, &server_log).await;
    check(proc.addr, &expected, "after a collection and a restart", &mut report).await;
    kill_server(proc, &mut report.server_failures, &notes).await;

    report.server_failures += server_complaints(&server_log, &notes);
    report.server_errors += shared.server_errors.load(Ordering::SeqCst);
    report.notes.extend(shared.notes.drain());
    report.notes.extend(notes.drain());
    report.elapsed = started.elapsed();
    let keep = cfg.keep_dir || (cfg.durable && !cfg.sabotage && !report.clean());
    report.dir = if keep { tmp.keep() } else { tmp.path().to_path_buf() };
    report
}

async fn run_bounded(cfg: Config) -> Report {
    let limit = cfg.timeout;
    match tokio::time::timeout(limit, run(cfg.clone())).await {
        Ok(r) => r,
        Err(_) => panic!("the file crash test did not finish within {limit:?} (seed {})", cfg.seed),
    }
}

/// Acknowledged file versions survive repeated `kill -9` during uploads and collections,
/// whole, with complete chunk lists; nothing partial; collection loses nothing and leaves no
/// orphan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_file_versions_survive_kill_9_during_uploads_and_collections() {
    let cfg = Config::durable_from_env();
    let (kills, writes) = (cfg.min_kills, cfg.min_acked);
    let r = run_bounded(cfg).await;
    println!("{}", r.summary());
    assert!(
        r.clean(),
        "file crash test failed (wanted {kills} kills, {writes} acknowledged writes, kills during an upload and \
         a collection):\n{}",
        r.details()
    );
}

/// The checks can fail: with file writes answered before their version is durable, the same
/// program must report lost versions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_crash_test_detects_losses_when_acks_precede_durability() {
    let r = run_bounded(Config::unsafe_self_test()).await;
    println!("{}", r.summary());
    assert!(r.kills >= 5 && r.acked > 0, "the self-test did not run as planned:\n{}", r.details());
    assert!(
        r.count("lost") > 0,
        "the file crash test found no lost versions against a server that acks before durability:\n{}",
        r.details()
    );
}

/// The chunk checks can fail too: with one chunk that a version names deleted from the chunk
/// store (the server killed meanwhile), the same checks must report a version that does not
/// read back whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_crash_test_detects_a_missing_chunk() {
    let r = run_bounded(Config::missing_chunk_self_test()).await;
    println!("{}", r.summary());
    assert!(r.thresholds_met && r.acked > 0, "the self-test did not run as planned:\n{}", r.details());
    assert!(r.count("partial") > 0, "the file crash test did not notice a missing chunk:\n{}", r.details());
}
