//! What the SYNC scenarios (S1–S3, issue 18) share: `plait sync` daemons as child processes
//! (their ready line, their control API's status), waiting until a folder is in sync, folders of
//! generated files, and the references run as processes (`rsync -a`, `cp -r`).
//!
//! A folder is in sync when the daemon's status says `idle` with nothing pending and the
//! server's change log has nothing after the daemon's cursor (`GET folder?since=cursor`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use rand::{Rng, SeedableRng};
use serde_json::Value;

use super::client::Conn;

/// How long any wait for a synced state may take (the 1 GiB file at full size included).
pub const SYNC_WAIT: Duration = Duration::from_secs(1800);

/// A `plait sync DIR URL` daemon.
pub struct Daemon {
    child: Child,
    /// Its control API.
    pub control: SocketAddr,
    program: PathBuf,
    args: Vec<String>,
    _user_config: tempfile::TempDir,
}

impl Daemon {
    /// Starts `plait sync dir url` with its database in `state` (an empty user config, no
    /// token) and waits for its ready line.
    pub fn start(plait: &Path, dir: &Path, url: &str, state: &Path, device: &str) -> anyhow::Result<Daemon> {
        let args = vec![
            "sync".to_owned(),
            dir.display().to_string(),
            url.to_owned(),
            "--state-dir".into(),
            state.display().to_string(),
            "--device".into(),
            device.into(),
            "--control".into(),
            "127.0.0.1:0".into(),
            "--log".into(),
            "warn".into(),
        ];
        let user_config = tempfile::tempdir()?;
        let (child, control) = spawn(plait, &args, user_config.path())?;
        Ok(Daemon { child, control, program: plait.to_path_buf(), args, _user_config: user_config })
    }

    /// Its process id (for CPU readings).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops it with SIGTERM (a clean stop) and starts it again on the same folder and state.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop()?;
        let (child, control) = spawn(&self.program, &self.args, self._user_config.path())?;
        self.child = child;
        self.control = control;
        Ok(())
    }

    /// SIGTERM, then waits (bounded) for the exit.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        bail!("the daemon did not stop within 30 s of SIGTERM")
    }

    /// The status of its (only) folder.
    pub async fn folder(&self) -> anyhow::Result<Value> {
        let mut c = Conn::connect(self.control).await?;
        let r = c.request("GET", "/v1/status", &[], b"").await?;
        if r.status != 200 {
            bail!("GET /v1/status: {}", r.status);
        }
        let v: Value = serde_json::from_slice(&r.body)?;
        Ok(v["folders"][0].clone())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(plait: &Path, args: &[String], user_config: &Path) -> anyhow::Result<(Child, SocketAddr)> {
    let mut child = Command::new(plait)
        .args(args)
        .env("PLAIT_CONFIG", user_config.join("config.toml"))
        .env_remove("PLAIT_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {} sync", plait.display()))?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let line = super::procs::first_line(stdout).map_err(|e| anyhow!("plait sync printed no ready line: {e}"))?;
    let control = line
        .trim()
        .strip_prefix("plait sync ready: control http://")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| anyhow!("unexpected ready line {line:?}"))?;
    Ok((child, control))
}

/// Whether the server's folder has changes after `cursor`.
async fn changed_since(server: SocketAddr, folder: &str, cursor: &str) -> anyhow::Result<bool> {
    let mut c = Conn::connect(server).await?;
    let r = c
        .request("GET", &format!("{folder}?since={cursor}&recursive=1"), &[("accept", "application/json")], b"")
        .await?;
    if r.status != 200 {
        return Ok(true);
    }
    let v: Value = serde_json::from_slice(&r.body)?;
    Ok(v["reset"] == true || !v["changes"].as_array().is_some_and(|c| c.is_empty()))
}

/// Whether the daemon's folder is in sync with `folder` on `server`.
pub async fn synced(d: &Daemon, server: SocketAddr, folder: &str) -> anyhow::Result<bool> {
    let st = d.folder().await?;
    if st["state"] == "failed" {
        bail!("the folder failed: {st}");
    }
    if st["state"] != "idle" || st["pending_up"] != 0 || st["pending_down"] != 0 {
        return Ok(false);
    }
    match st["cursor"].as_str() {
        Some(c) => Ok(!changed_since(server, folder, c).await?),
        None => Ok(false),
    }
}

/// Waits until every daemon is in sync (polling every 10 ms, bounded by [`SYNC_WAIT`]).
pub async fn until_synced(daemons: &[&Daemon], server: SocketAddr, folder: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + SYNC_WAIT;
    loop {
        let mut all = true;
        for d in daemons {
            if !synced(d, server, folder).await? {
                all = false;
                break;
            }
        }
        if all {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("not in sync after {SYNC_WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Writes `n` small files (1–4 KiB; half text, half binary) in 100 sub-folders of `dir`;
/// returns their total size.
pub fn small_files(dir: &Path, n: usize, seed: u64) -> anyhow::Result<u64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut total = 0u64;
    for i in 0..n {
        let sub = dir.join(format!("d{:02}", i % 100));
        std::fs::create_dir_all(&sub)?;
        let len = rng.random_range(1024..4096);
        let (name, bytes) = if i % 2 == 0 {
            let line = format!("note {i}: the quick brown fox jumps over the lazy dog\n");
            (format!("n{i}.txt"), line.repeat(len / line.len() + 1).into_bytes())
        } else {
            let mut b = vec![0u8; len];
            rng.fill(&mut b[..]);
            (format!("b{i}.bin"), b)
        };
        total += bytes.len() as u64;
        std::fs::write(sub.join(name), bytes)?;
    }
    Ok(total)
}

/// Writes one file of `len` random bytes at `path`, 1 MiB at a time.
pub fn big_file(path: &Path, len: usize, seed: u64) -> anyhow::Result<()> {
    use std::io::Write;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len());
        rng.fill(&mut buf[..n]);
        f.write_all(&buf[..n])?;
        left -= n;
    }
    f.flush()?;
    Ok(())
}

/// Runs a reference command and returns its wall time in seconds.
pub fn timed(program: &str, args: &[&str]) -> anyhow::Result<f64> {
    let started = Instant::now();
    let status = Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("running {program} (install it: .ci/setup)"))?;
    if !status.success() {
        bail!("{program} failed: {status}");
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Every file under `dir` (relative path → size), to check a copy is complete.
pub fn listing(dir: &Path) -> anyhow::Result<std::collections::BTreeMap<String, u64>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let t = e.file_type()?;
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                let rel = e.path().strip_prefix(dir)?.display().to_string();
                out.insert(rel, e.metadata()?.len());
            }
        }
    }
    Ok(out)
}
