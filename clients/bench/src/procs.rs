//! The processes a benchmark measures: a `plait serve` (or one of the reference servers) run
//! as a child of the benchmark, and CPU and memory readings of any process by pid.
//!
//! `plait serve` is the `plait` binary found by [`find_plait`]; the no-op and `write()`
//! references are this same executable (`plait-bench noop`, `plait-bench sink`).
//!
//! Why child processes: the targets compare *server* CPU per operation, and only a
//! separate process gives a clean reading (`/proc/<pid>/task/*/schedstat`, nanoseconds,
//! every thread), untouched by the load generator's own work.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};

/// A server the benchmark started.
pub struct ServerProc {
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
    /// Its RocksDB directory (kept across restarts; removed on drop).
    pub data: Option<tempfile::TempDir>,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl ServerProc {
    /// `plait serve` (the binary at `plait`) on a fresh RocksDB temp dir, with `extra` flags.
    pub fn plait(plait: &Path, extra: &[&str]) -> anyhow::Result<ServerProc> {
        ServerProc::plait_with_env(plait, extra, &[])
    }

    /// The same with `env` added to its environment (e.g. the S3 store's endpoint and keys).
    pub fn plait_with_env(plait: &Path, extra: &[&str], env: &[(&str, String)]) -> anyhow::Result<ServerProc> {
        let data = tempfile::tempdir().context("creating a temp data dir")?;
        let mut args: Vec<String> = vec!["serve".into(), "--data-dir".into(), data.path().display().to_string()];
        args.extend(["--log".into(), "warn".into()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let program = plait.to_path_buf();
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let (addr, child) = spawn(&program, &args, &env)?;
        Ok(ServerProc { addr, child, data: Some(data), program, args, env })
    }

    /// The no-op reference server (`plait-bench noop`): the server library's own HTTP stack,
    /// a handler that does nothing.
    pub fn noop() -> anyhow::Result<ServerProc> {
        ServerProc::own("noop")
    }

    /// The fan-out reference: one `write()` per socket (`plait-bench sink`, see `sink.rs`).
    pub fn sink() -> anyhow::Result<ServerProc> {
        ServerProc::own("sink")
    }

    /// This executable run with `subcommand`.
    fn own(subcommand: &str) -> anyhow::Result<ServerProc> {
        let program = std::env::current_exe().context("finding the plait-bench executable")?;
        let args = vec![subcommand.to_string()];
        let (addr, child) = spawn(&program, &args, &[])?;
        Ok(ServerProc { addr, child, data: None, program, args, env: Vec::new() })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops it (SIGKILL is enough: durability is what the store promises) and starts it
    /// again on the same data dir, e.g. for a cold-open measurement.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (addr, child) = spawn(&self.program, &self.args, &self.env)?;
        self.addr = addr;
        self.child = child;
        Ok(())
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `plait` binary to start: `explicit` (`--plait`), or else the `plait` next to this
/// executable (`cargo build` puts both binaries of the workspace in the same target dir).
pub fn find_plait(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        if !path.is_file() {
            bail!("--plait {}: no such file", path.display());
        }
        return Ok(path.to_path_buf());
    }
    let own = std::env::current_exe().context("finding the plait-bench executable")?;
    let dir = own.parent().ok_or_else(|| anyhow!("{} has no directory", own.display()))?;
    let plait = dir.join(format!("plait{}", std::env::consts::EXE_SUFFIX));
    if !plait.is_file() {
        // Say the build that puts it here: a debug plait-bench wants a debug plait.
        let build = if dir.ends_with("debug") { "cargo build" } else { "cargo build --release" };
        bail!(
            "no plait binary at {}: build the server next to plait-bench with `{build}` (from the \
             repository root), or name one with --plait PATH",
            plait.display()
        );
    }
    Ok(plait)
}

/// Starts `program` with `args` (and `env`) and reads its "listening on" line (60 s bound).
fn spawn(program: &Path, args: &[String], env: &[(String, String)]) -> anyhow::Result<(SocketAddr, Child)> {
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .arg("--listen")
        .arg("127.0.0.1:0")
        // The servers it starts are on loopback and open: the benchmarks measure Braid, not
        // authentication (only `plait serve` reads this).
        .env("PLAIT_AUTH", "none")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let addr = read_listen_addr(stdout).map_err(|e| anyhow!(e))?;
    Ok((addr, child))
}

/// Waits (up to 60 s) for a child's first stdout line; keeps draining stdout afterwards so the
/// child never writes into a closed pipe.
pub fn first_line(stdout: ChildStdout) -> Result<String, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        let mut rest = String::new();
        while reader.read_line(&mut rest).unwrap_or(0) > 0 {
            rest.clear();
        }
    });
    rx.recv_timeout(Duration::from_secs(60)).map_err(|_| "no first line within 60 s".to_string())
}

/// Waits (up to 60 s) for a server child's start-up line on its stdout and returns the
/// address it listens on; keeps draining stdout afterwards so the child never writes into a
/// closed pipe. `Err` carries the line it got (empty if none), for the caller's message.
pub fn read_listen_addr(stdout: ChildStdout) -> Result<SocketAddr, String> {
    let line = first_line(stdout)?;
    line.split("://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("unexpected start-up line {line:?}"))
}

/// CPU time a process has used so far, all threads, in nanoseconds (Linux).
pub fn cpu_ns(pid: u32) -> anyhow::Result<u64> {
    let tasks = Path::new("/proc").join(pid.to_string()).join("task");
    let mut total = 0u64;
    for task in std::fs::read_dir(&tasks).with_context(|| format!("reading {}", tasks.display()))? {
        let path = task?.path().join("schedstat");
        // A thread may exit between listing and reading: it then no longer counts.
        if let Ok(text) = std::fs::read_to_string(&path) {
            total += text.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    Ok(total)
}

/// CPU time a process has used so far, threads that have exited included, in nanoseconds
/// (Linux `/proc/<pid>/stat` utime + stime, in clock ticks of 10 ms: `USER_HZ` is 100 on
/// Linux). Coarser than [`cpu_ns`], which sums the live threads' `schedstat` and so loses the
/// time of a thread that ends during the measurement (a file upload's writer thread).
pub fn cpu_ns_with_exited(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).context("reading /proc/<pid>/stat")?;
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("").split_whitespace().collect();
    let ticks =
        |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).ok_or_else(|| anyhow!("bad /proc/{pid}/stat"));
    // utime and stime are fields 14 and 15; after the name, field 3 (the state) is index 0.
    Ok((ticks(11)? + ticks(12)?) * 10_000_000)
}

/// A memory figure of `/proc/<pid>/status` (`VmRSS`, `VmHWM`, …), in bytes.
fn status_bytes(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc/<pid>/status")?;
    for line in status.lines() {
        if let Some(kb) = line.strip_prefix(field).and_then(|rest| rest.strip_prefix(':')) {
            let kb: u64 =
                kb.trim().trim_end_matches("kB").trim().parse().with_context(|| format!("parsing {field}"))?;
            return Ok(kb * 1024);
        }
    }
    bail!("no {field} line in /proc/{pid}/status")
}

/// Resident memory of a process, in bytes (Linux `VmRSS`).
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    status_bytes(pid, "VmRSS")
}

/// The high-water mark of a process's resident memory, in bytes (Linux `VmHWM`): the peak
/// since it started or since [`reset_rss_high_water`], whatever a sampler would have missed.
pub fn rss_high_water(pid: u32) -> anyhow::Result<u64> {
    status_bytes(pid, "VmHWM")
}

/// Resets a process's RSS high-water mark to its current RSS (writing 5 to
/// `/proc/<pid>/clear_refs`, Linux 4.0+; the benchmark's own children).
pub fn reset_rss_high_water(pid: u32) -> anyhow::Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").context("resetting VmHWM through /proc/<pid>/clear_refs")
}

/// The calling thread's CPU time in nanoseconds (Linux), for the in-process references.
///
/// The kernel folds a running thread's time into `schedstat` only at scheduler events (about
/// every 4 ms); `sched_yield` is one, so yielding first makes the reading exact.
pub fn thread_cpu_ns() -> Option<u64> {
    std::thread::yield_now();
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// CPU time of the current process (the load generator), all threads, in nanoseconds.
pub fn own_cpu_ns() -> anyhow::Result<u64> {
    cpu_ns(std::process::id())
}
