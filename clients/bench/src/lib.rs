//! `plait-bench`: the load generator behind docs/BENCHMARKS.md.
//!
//! Each scenario (B1–B8, see the issue and docs/BENCHMARKS.md) drives a Braid server over real
//! sockets and measures, in the same run, the reference it is judged against (the same client
//! against the no-op handler on the same HTTP stack, diamond-types in process, RocksDB's own
//! synced write rate, plain `write()`s), then prints one Markdown table of figures, ratios and
//! targets. By default it starts `plait serve` itself (a child process on a temp RocksDB dir,
//! so its CPU can be read from /proc): the `plait` binary next to its own executable (both are
//! built into the same target dir), or the one named with `--plait`; `--url` points it at any
//! other Braid server instead. The two references that are servers run as children too, from
//! this same executable (`plait-bench noop`, `plait-bench sink`, see `main.rs`).
//! `--smoke` runs every scenario at a tiny size: the test suite does that so they keep working.
//!
//! It is its own crate (a client of the server, under `clients/`) so that the server neither
//! ships it nor its dependencies (`flate2`, `tempfile`). It never reaches into the server's
//! internals (no hub, no app, no axum); references that need an engine use the same public
//! modules of the `plait` library the server is built from (tidy checks both).
//!
//! A scenario is one file `bN_<what>.rs` with `pub async fn run(&Ctx) -> anyhow::Result<Vec<Row>>`,
//! a `mod` line below, an arm in [`run`] and its name in the `--scenarios` default. `CHUNKS`
//! (`chunks_ref`) is an in-process reference, not a server scenario: file ingest's, which
//! `FILES` (`files`, issue 15: files as resources) judges the server's file PUTs against;
//! FILES's download reference is nginx serving the same bytes (`nginx`). `F1`–`F5` (`fN_*.rs`,
//! all five as `FOLDERS`) are issue 16's folders: the change log's cost to B6's durable writes
//! with 100 watchers of `/`, delivery latency to folder watchers against document subscribers,
//! listing 100,000 entries, idle watchers' memory against B5's subscriptions, a stalled watcher.
//! `U1`–`U3` (`uN_*.rs`, all three as `UPLOADS`, over the tus client in `tus.rs` and the
//! direct-upload client in `direct.rs`) are issue 17's resumable uploads: 10–128 MiB through a
//! plain `PUT`, tus and direct to S3 (a SeaweedFS started by `seaweed.rs`) against the same
//! requests to the no-op handler and the same bytes written to SeaweedFS alone, the cost of
//! finishing an upload cut at 50%, memory during a 1 GiB tus upload. `S1`–`S3` (`sN_*.rs`, all
//! three as `SYNC`, over `sync_kit.rs`) are issue 18's `plait sync` daemons: the initial sync of
//! 10,000 small files and of a 1 GiB file against `rsync -a` and `cp -r`, the time from a local
//! save to the other daemon's file, and the CPU of a restart over unchanged files against
//! hashing them once.

mod b1_sequential;
mod b2_concurrent;
mod b2_follow;
mod b3_cold_open;
mod b4_fanout;
mod b5_idle_memory;
mod b6_durable;
mod b7_reads;
mod b8_merge;
mod chunks_ref;
pub mod client;
mod direct;
mod f1_watch_overhead;
mod f2_delivery;
mod f3_listing;
mod f4_idle_watchers;
mod f5_slow_watcher;
mod files;
pub mod fleet;
mod nginx;
pub mod procs;
pub mod replay;
pub mod report;
mod rocks_ref;
mod s1_initial;
mod s2_latency;
mod s3_restart;
mod seaweed;
pub mod sink;
mod sync_kit;
pub mod trace;
mod tus;
mod u1_upload_paths;
mod u2_resume;
mod u3_upload_memory;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};

use procs::ServerProc;
use report::Row;

/// `plait-bench` options.
#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    /// Scenarios to run, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "B1,B2,B3,B4,B5,B6,B7,B8,CHUNKS,FILES,FOLDERS,UPLOADS,SYNC")]
    pub scenarios: Vec<String>,
    /// B8: the history sizes (writes) after which the cost of a write is measured.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,50000")]
    pub merge_checkpoints: Vec<usize>,
    /// Measure this running Braid server (e.g. http://127.0.0.1:8080) instead of starting
    /// `plait serve`. Scenarios that must restart the server are then skipped.
    #[arg(long)]
    pub url: Option<String>,
    /// The process id of the `--url` server, so its CPU time and memory can be read.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Tiny sizes: proves every scenario still runs end to end (the test suite uses it).
    #[arg(long)]
    pub smoke: bool,
    /// The editing traces directory: a clone of https://github.com/josephg/editing-traces
    /// (the default is one in the working directory).
    #[arg(long, env = "PLAIT_TRACES", default_value = "editing-traces")]
    pub traces: PathBuf,
    /// The `plait` binary to start (default: the `plait` next to this executable, which
    /// `cargo build --release` puts there). Not needed with `--url`.
    #[arg(long, env = "PLAIT_BIN")]
    pub plait: Option<PathBuf>,
}

/// What every scenario gets.
pub struct Ctx {
    /// Run at smoke size.
    pub smoke: bool,
    /// Where the traces are.
    pub traces: PathBuf,
    external: Option<(SocketAddr, Option<u32>)>,
    /// The `plait` binary `server` starts (None with `--url`).
    plait: Option<PathBuf>,
    /// B1's document, for B3 when both run.
    handover: b1_sequential::Handover,
    /// B8's checkpoints.
    pub merge_checkpoints: Vec<usize>,
}

/// The server a scenario measures.
pub enum Server {
    /// Given with `--url` (and maybe `--server-pid`).
    External {
        /// Where it listens.
        addr: SocketAddr,
        /// Its process, if known.
        pid: Option<u32>,
    },
    /// Started by the benchmark.
    Child(ServerProc),
}

impl Server {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Server::External { addr, .. } => *addr,
            Server::Child(p) => p.addr,
        }
    }

    /// Its process id, when known (CPU and memory readings need it).
    pub fn pid(&self) -> Option<u32> {
        match self {
            Server::External { pid, .. } => *pid,
            Server::Child(p) => Some(p.pid()),
        }
    }

    /// Restarts a server the benchmark started; Ok(false) for an external one.
    pub fn restart(&mut self) -> anyhow::Result<bool> {
        match self {
            Server::External { .. } => Ok(false),
            Server::Child(p) => p.restart().map(|()| true),
        }
    }
}

impl Ctx {
    /// A fresh server for one scenario (`plait serve` with `extra` flags), or the `--url` one.
    pub fn server(&self, extra: &[&str]) -> anyhow::Result<Server> {
        match (self.external, &self.plait) {
            (Some((addr, pid)), _) => Ok(Server::External { addr, pid }),
            (None, Some(plait)) => Ok(Server::Child(ServerProc::plait(plait, extra)?)),
            (None, None) => bail!("no plait binary and no --url"),
        }
    }

    /// A fresh `plait serve` with `extra` flags and `env` in its environment; fails with
    /// `--url` (the benchmark cannot choose an external server's store).
    pub fn server_with_env(&self, extra: &[&str], env: &[(&str, String)]) -> anyhow::Result<Server> {
        match (self.external, &self.plait) {
            (Some(_), _) => bail!("this side starts plait with a store of its own: run it without --url"),
            (None, Some(plait)) => Ok(Server::Child(ServerProc::plait_with_env(plait, extra, env)?)),
            (None, None) => bail!("no plait binary and no --url"),
        }
    }

    /// The `plait` binary the scenarios start (None with `--url`): the SYNC scenarios run
    /// `plait sync` daemons from it.
    pub fn plait_binary(&self) -> Option<&std::path::Path> {
        self.plait.as_deref()
    }

    /// A document path unique to this run, so runs against a long-lived server never collide.
    pub fn doc(&self, name: &str) -> String {
        format!("/bench/{}/{name}", std::process::id())
    }
}

fn parse_url(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url.strip_prefix("http://").ok_or_else(|| anyhow!("--url must start with http://"))?;
    let host = rest.split('/').next().unwrap_or(rest);
    host.to_socket_addrs()
        .with_context(|| format!("resolving {host}"))?
        .next()
        .ok_or_else(|| anyhow!("{host} resolves to nothing"))
}

/// Runs the chosen scenarios; returns every row (also printed as a table).
pub async fn run(args: &BenchArgs) -> anyhow::Result<Vec<Row>> {
    let external = match &args.url {
        Some(url) => Some((parse_url(url)?, args.server_pid)),
        None => None,
    };
    // Found before any scenario runs, so a missing binary fails at once with what to do.
    let plait = match external {
        Some(_) => None,
        None => Some(procs::find_plait(args.plait.as_deref())?),
    };
    let ctx = Ctx {
        smoke: args.smoke,
        traces: args.traces.clone(),
        external,
        plait,
        handover: Default::default(),
        merge_checkpoints: args.merge_checkpoints.clone(),
    };
    let mut rows = Vec::new();
    for name in &args.scenarios {
        let started = std::time::Instant::now();
        let got = match name.trim().to_ascii_uppercase().as_str() {
            "B1" => b1_sequential::run(&ctx).await?,
            "B2" => b2_concurrent::run(&ctx).await?,
            "B3" => b3_cold_open::run(&ctx).await?,
            "B4" => b4_fanout::run(&ctx).await?,
            "B5" => b5_idle_memory::run(&ctx).await?,
            "B6" => b6_durable::run(&ctx).await?,
            "B7" => b7_reads::run(&ctx).await?,
            "B8" => b8_merge::run(&ctx).await?,
            "CHUNKS" => chunks_ref::run(&ctx).await?,
            "FILES" => files::run(&ctx).await?,
            "F1" => f1_watch_overhead::run(&ctx).await?,
            "F2" => f2_delivery::run(&ctx).await?,
            "F3" => f3_listing::run(&ctx).await?,
            "F4" => f4_idle_watchers::run(&ctx).await?,
            "F5" => f5_slow_watcher::run(&ctx).await?,
            "FOLDERS" => {
                let mut all = f1_watch_overhead::run(&ctx).await?;
                all.extend(f2_delivery::run(&ctx).await?);
                all.extend(f3_listing::run(&ctx).await?);
                all.extend(f4_idle_watchers::run(&ctx).await?);
                all.extend(f5_slow_watcher::run(&ctx).await?);
                all
            }
            "U1" => u1_upload_paths::run(&ctx).await?,
            "U2" => u2_resume::run(&ctx).await?,
            "U3" => u3_upload_memory::run(&ctx).await?,
            "S1" => s1_initial::run(&ctx).await?,
            "S2" => s2_latency::run(&ctx).await?,
            "S3" => s3_restart::run(&ctx).await?,
            "SYNC" => {
                let mut all = s1_initial::run(&ctx).await?;
                all.extend(s2_latency::run(&ctx).await?);
                all.extend(s3_restart::run(&ctx).await?);
                all
            }
            "UPLOADS" => {
                let mut all = u1_upload_paths::run(&ctx).await?;
                all.extend(u2_resume::run(&ctx).await?);
                all.extend(u3_upload_memory::run(&ctx).await?);
                all
            }
            other => {
                bail!("unknown scenario {other:?}; use B1 … B8, CHUNKS, FILES, F1 … F5, FOLDERS, U1 … U3, UPLOADS, S1 … S3 or SYNC")
            }
        };
        tracing::info!(scenario = %name, seconds = started.elapsed().as_secs_f64(), "scenario done");
        rows.extend(got);
    }
    Ok(rows)
}
