//! The download reference of scenario `FILES`: nginx serving the same bytes from a plain file,
//! a child process of the benchmark with a config of its own in a temp dir (the way
//! `tests/it/proxies.rs` runs it: `daemon off`, one process, errors to our stderr).
//!
//! One nginx, two ports on the same static root: `sendfile on` (how nginx serves static
//! files in practice: page cache to socket inside the kernel, no copy through user space; the
//! reference the target is judged against) and `sendfile off` (nginx reads the file into its
//! own buffers and writes them, as a server that has to look at the bytes must: context).
//! nginx comes from Debian (`nginx-light`, installed by `.ci/setup`).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// A running nginx; killed on drop.
pub struct Nginx {
    child: Child,
    /// The port with `sendfile on`.
    pub sendfile: SocketAddr,
    /// The port with `sendfile off` (64 KiB output buffers).
    pub copying: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

impl Nginx {
    /// Starts nginx serving `files` (name, bytes), written into a fresh static root, at
    /// `/<name>`; returns once both ports accept connections (10 s bound).
    pub fn start(files: &[(&str, &[u8])]) -> anyhow::Result<Nginx> {
        let dir = tempfile::tempdir().context("nginx temp dir")?;
        let root = dir.path().join("root");
        std::fs::create_dir(&root)?;
        for (name, bytes) in files {
            std::fs::write(root.join(name), bytes).with_context(|| format!("writing {name} for nginx"))?;
        }
        let (sendfile, copying) = (free_addr()?, free_addr()?);
        let conf = format!(
            "pid nginx.pid;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n\
               access_log off;\n\
               default_type application/octet-stream;\n\
               server {{ listen {sendfile}; root {root}; sendfile on; tcp_nopush on; }}\n\
               server {{ listen {copying}; root {root}; sendfile off; output_buffers 2 64k; }}\n\
             }}\n",
            root = root.display()
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf)?;
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&path)
            .args(["-g", "daemon off; master_process off; worker_processes 1; error_log stderr warn;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("starting nginx (install it with .ci/setup: Debian's nginx-light)")?;
        let mut nginx = Nginx { child, sendfile, copying, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        for addr in [sendfile, copying] {
            while std::net::TcpStream::connect(addr).is_err() {
                if let Ok(Some(status)) = nginx.child.try_wait() {
                    bail!("nginx exited at start-up: {status}");
                }
                if Instant::now() > deadline {
                    bail!("nginx did not listen on {addr} within 10 s");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(nginx)
    }

    /// Its process id (one process: `master_process off`), for CPU readings.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}
