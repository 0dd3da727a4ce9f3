//! The sync daemon's shell: which folders to sync (one from the command line, or several from a
//! TOML config file), where its control API listens, and the run itself: one engine per folder
//! on a shared [`StatusBoard`], the control API beside them, the ready line, and a clean stop
//! on SIGTERM or Ctrl-C.
//!
//! The engine is passed in as a [`Runner`], so this file knows the engine only through the
//! contract in `sync::spec` (and its unit tests run the shell with a fake engine).

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use sha2::Digest;
use tokio::sync::watch;

use super::control;
use super::spec::FolderSpec;
use super::status::{FolderState, StatusBoard};
use crate::client::config::UserConfig;
use crate::client::error::ClientError;

/// How often a folder is rescanned when neither the config nor `--rescan-secs` says.
pub const DEFAULT_RESCAN: Duration = Duration::from_secs(600);
/// How long a stop waits for the engines to finish what they are doing before it drops them
/// (dropping is safe too: the engines keep every local change in their database first).
const STOP_GRACE: Duration = Duration::from_secs(20);

/// What an engine run is: the future of `Engine::run(spec, board, stop)`.
pub type FolderRun = Pin<Box<dyn Future<Output = Result<(), ClientError>> + Send>>;
/// Starts one folder's engine.
pub type Runner = Arc<dyn Fn(FolderSpec, StatusBoard, watch::Receiver<bool>) -> FolderRun + Send + Sync>;

/// The config file of `plait sync --config FILE`.
///
/// ```toml
/// control = "127.0.0.1:7878"     # optional: a loopback port, or "unix:/path"
/// device = "laptop"              # optional: defaults to the host name
/// rescan_secs = 600              # optional: for every folder
///
/// [[folder]]
/// dir = "/home/me/Notes"
/// url = "http://127.0.0.1:8080/notes/"
/// token = "plait_..."            # optional: else the one `plait login` stored for the server
/// rescan_secs = 300              # optional
/// state_dir = "/var/tmp/notes"   # optional
/// ```
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    pub control: Option<String>,
    pub device: Option<String>,
    pub rescan_secs: Option<u64>,
    #[serde(default, rename = "folder")]
    pub folders: Vec<FolderEntry>,
}

/// One `[[folder]]` of the config file (or the `DIR URL` of the command line).
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct FolderEntry {
    pub dir: PathBuf,
    pub url: String,
    pub token: Option<String>,
    pub rescan_secs: Option<u64>,
    pub state_dir: Option<PathBuf>,
}

impl DaemonConfig {
    /// Reads and checks the file at `path` (relative folder paths are relative to the file).
    pub fn load(path: &Path) -> Result<DaemonConfig, ClientError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ClientError::Usage(format!("{}: cannot read the sync config: {e}", path.display())))?;
        let mut config: DaemonConfig = toml::from_str(&text)
            .map_err(|e| ClientError::Usage(format!("{}: not a valid sync config: {e}", path.display())))?;
        if config.folders.is_empty() {
            return Err(ClientError::Usage(format!("{}: no [[folder]] to sync", path.display())));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        for f in &mut config.folders {
            if f.dir.is_relative() {
                f.dir = base.join(&f.dir);
            }
        }
        Ok(config)
    }
}

/// Where the control API listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlAddr {
    /// A loopback TCP address (port 0 picks one; the ready line tells which).
    Tcp(SocketAddr),
    /// A Unix socket, readable and writable by this user only.
    Unix(PathBuf),
}

impl ControlAddr {
    /// Parses `127.0.0.1:PORT`, `http://127.0.0.1:PORT`, `unix:/path` or an absolute path.
    /// Only loopback addresses are accepted: the API has no credentials of its own.
    pub fn parse(s: &str) -> Result<ControlAddr, ClientError> {
        if let Some(path) = s.strip_prefix("unix:") {
            return Ok(ControlAddr::Unix(PathBuf::from(path)));
        }
        if s.starts_with('/') {
            return Ok(ControlAddr::Unix(PathBuf::from(s)));
        }
        let hostport = s.strip_prefix("http://").unwrap_or(s).trim_end_matches('/');
        let addr: SocketAddr = hostport.parse().map_err(|_| {
            ClientError::Usage(format!("--control {s:?}: expected 127.0.0.1:PORT, unix:/path or an absolute path"))
        })?;
        if !addr.ip().is_loopback() {
            return Err(ClientError::Usage(format!(
                "--control {s:?}: the control API has no credentials, so it listens on loopback only"
            )));
        }
        Ok(ControlAddr::Tcp(addr))
    }

    /// The default: a Unix socket in the user's runtime directory (`$XDG_RUNTIME_DIR/plait`),
    /// else in the data directory.
    pub fn default_socket() -> Result<ControlAddr, ClientError> {
        let dirs = project_dirs()?;
        let dir = dirs.runtime_dir().unwrap_or(dirs.data_local_dir()).to_path_buf();
        Ok(ControlAddr::Unix(dir.join("sync.sock")))
    }

    /// How the ready line and `--control` name it: `http://127.0.0.1:PORT` or `unix:/path`.
    pub fn display(&self) -> String {
        match self {
            ControlAddr::Tcp(a) => format!("http://{a}"),
            ControlAddr::Unix(p) => format!("unix:{}", p.display()),
        }
    }
}

fn project_dirs() -> Result<directories::ProjectDirs, ClientError> {
    directories::ProjectDirs::from("", "", "plait")
        .ok_or_else(|| ClientError::Local("no home directory: give --state-dir and --control".into()))
}

/// Settings that apply to every folder unless the folder says otherwise.
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    pub device: Option<String>,
    pub rescan_secs: Option<u64>,
}

/// Turns folder entries into engine specs: absolute folder paths, folder URLs ending in `/`,
/// tokens (the entry's, else the user config's for that server), state directories, and no
/// folder given twice or inside another one (two engines would fight over the same files).
pub fn resolve(
    entries: &[FolderEntry],
    defaults: &Defaults,
    user: &UserConfig,
) -> Result<Vec<FolderSpec>, ClientError> {
    let device = match &defaults.device {
        Some(d) if !d.trim().is_empty() => d.trim().to_owned(),
        Some(_) => return Err(ClientError::Usage("the device name is empty".into())),
        None => host_name(),
    };
    let cwd = std::env::current_dir()?;
    let mut specs: Vec<FolderSpec> = Vec::new();
    for e in entries {
        let dir = normalize(&cwd.join(&e.dir));
        let mut url =
            Url::parse(&e.url).map_err(|err| ClientError::Usage(format!("{:?} is not a URL: {err}", e.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ClientError::Usage(format!("{:?}: only http:// and https:// URLs are supported", e.url)));
        }
        if !url.path().ends_with('/') {
            // A folder on the server is a path ending in `/`; `.../notes` means `.../notes/`.
            url.set_path(&format!("{}/", url.path()));
        }
        url.set_query(None);
        url.set_fragment(None);
        for other in &specs {
            if dir.starts_with(&other.dir) || other.dir.starts_with(&dir) {
                return Err(ClientError::Usage(format!(
                    "{} and {} overlap: a folder can be synced by one entry only",
                    other.dir.display(),
                    dir.display()
                )));
            }
        }
        let token = e.token.clone().filter(|t| !t.is_empty()).or_else(|| user.token_for(&url));
        let state_dir = match &e.state_dir {
            Some(d) => cwd.join(d),
            None => project_dirs()?.data_local_dir().join("folders").join(folder_key(&dir, &url)),
        };
        if state_dir.starts_with(&dir) {
            return Err(ClientError::Usage(format!(
                "the state directory {} is inside the synced folder {}",
                state_dir.display(),
                dir.display()
            )));
        }
        let secs = e.rescan_secs.or(defaults.rescan_secs).unwrap_or(DEFAULT_RESCAN.as_secs());
        if secs == 0 {
            return Err(ClientError::Usage(format!("{}: rescan_secs must be at least 1", dir.display())));
        }
        specs.push(FolderSpec {
            dir,
            url,
            token,
            state_dir,
            rescan_every: Duration::from_secs(secs),
            device: device.clone(),
        });
    }
    Ok(specs)
}

/// `a/./b/../c` → `a/c`, without touching the filesystem (the folder may not exist yet).
fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The default state directory's name: a hash of the folder and the URL, so the same folder
/// synced with another server starts afresh, and restarts find their database again.
fn folder_key(dir: &Path, url: &Url) -> String {
    let mut h = sha2::Sha256::new();
    h.update(dir.as_os_str().as_encoded_bytes());
    h.update([0]);
    h.update(url.as_str().as_bytes());
    hex::encode(&h.finalize()[..12])
}

/// This machine's name, the default device name.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "device".to_owned())
}

/// Runs the folders until `shutdown` resolves: binds the control API, starts one engine per
/// folder, prints the ready line (`plait sync ready: control <addr>`), then waits. Returns
/// an error if the control API cannot listen, or if every folder's engine failed.
pub async fn run(
    specs: Vec<FolderSpec>,
    control: ControlAddr,
    runner: Runner,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ClientError> {
    let board = StatusBoard::default();
    for s in &specs {
        board.update(&key(s), |st| {
            st.url = s.url.to_string();
            st.state = FolderState::Starting;
        });
    }
    let listener = control::bind(&control).await?;
    let shown = listener.address().display();
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = tokio::spawn(control::serve(listener, board.clone(), stop_rx.clone()));

    let mut engines = tokio::task::JoinSet::new();
    for spec in specs {
        let (board, stop, runner) = (board.clone(), stop_rx.clone(), runner.clone());
        engines.spawn(async move {
            let dir = key(&spec);
            tracing::info!(dir = %dir, url = %spec.url, state = %spec.state_dir.display(), "syncing");
            let outcome = runner(spec, board.clone(), stop).await;
            if let Err(e) = &outcome {
                tracing::error!(dir = %dir, error = %e, "the folder stopped");
                board.update(&dir, |st| {
                    st.state = FolderState::Failed;
                    st.last_error = Some(e.to_string());
                });
            }
            outcome.is_ok()
        });
    }
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "plait sync ready: control {shown}")?;
        out.flush()?;
    }

    let mut failed = 0usize;
    let total = engines.len();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            done = engines.join_next() => match done {
                Some(Ok(true)) => {}
                Some(_) => {
                    failed += 1;
                    if failed == total {
                        tracing::error!("every folder failed; stopping");
                        break;
                    }
                }
                // Every engine ended on its own: go on serving the status until told to stop.
                None => {
                    (&mut shutdown).await;
                    break;
                }
            },
        }
    }
    tracing::info!("stopping");
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(STOP_GRACE, async { while engines.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!("engines still busy after {STOP_GRACE:?}: dropping them (local changes are kept)");
        engines.abort_all();
    }
    let _ = server.await;
    if total > 0 && failed == total {
        return Err(ClientError::Local("every folder failed (see the log)".into()));
    }
    Ok(())
}

/// The board's key for a folder (the contract: its path as displayed).
pub fn key(spec: &FolderSpec) -> String {
    spec.dir.display().to_string()
}

/// The entries of the command line's `DIR URL`.
pub fn single(dir: PathBuf, url: String, token: Option<String>, state_dir: Option<PathBuf>) -> FolderEntry {
    FolderEntry { dir, url, token, rescan_secs: None, state_dir }
}

#[cfg(test)]
#[path = "daemon_tests.rs"]
mod tests;
