//! `plait sync`: the daemon that keeps local folders and server folders the same, both ways,
//! and the commands that control it.
//!
//! - `plait sync DIR URL [...]` or `plait sync --config FILE` runs the daemon (`daemon`): one
//!   engine per folder (`engine`), the control API beside them (`control`).
//! - `plait sync status|pause|resume|rescan|conflicts|activity` ask a running daemon (`ask`).
//! - `plait sync install-service` writes a systemd user unit (`service`).

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};
use reqwest::Method;

use super::config::{config_path, UserConfig};
use super::error::{ClientError, ExitCode};

pub mod ask;
pub mod control;
pub mod daemon;
pub mod engine;
pub mod service;
pub mod spec;
pub mod status;

use daemon::{ControlAddr, DaemonConfig, Defaults, Runner};

/// `plait sync`: run the daemon, or control a running one.
#[derive(Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Examples:
  plait sync ~/Notes http://127.0.0.1:8080/notes/
  plait sync --config ~/.config/plait/sync.toml
  plait sync status
  plait sync pause --dir ~/Notes"
)]
pub struct SyncArgs {
    #[command(subcommand)]
    pub command: Option<SyncCommand>,
    #[command(flatten)]
    pub daemon: Box<DaemonArgs>,
}

/// The daemon's own options.
#[derive(Args, Debug)]
pub struct DaemonArgs {
    /// The local folder (created if missing).
    #[arg(required_unless_present = "config", requires = "url")]
    pub dir: Option<PathBuf>,
    /// The server folder's URL (a missing final `/` is added).
    pub url: Option<String>,
    /// Several folders (and servers) from a TOML file instead of DIR URL (see docs/SYNC.md).
    #[arg(long, conflicts_with_all = ["dir", "token", "state_dir"])]
    pub config: Option<PathBuf>,
    /// The token for the server (default: `$PLAIT_TOKEN`, else the one `plait login` stored).
    #[arg(long)]
    pub token: Option<String>,
    /// Where the folder's local database lives (default: the user data directory, one
    /// subdirectory per folder and URL).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Where the control API listens: `127.0.0.1:PORT` (0 picks one) or `unix:/path`
    /// (default: a Unix socket in `$XDG_RUNTIME_DIR/plait/`).
    #[arg(long, env = "PLAIT_SYNC_CONTROL")]
    pub control: Option<String>,
    /// Seconds between full rescans, the safety net under filesystem events (default 600).
    #[arg(long)]
    pub rescan_secs: Option<u64>,
    /// This device's name in versions and conflict copies (default: the host name).
    #[arg(long)]
    pub device: Option<String>,
    /// Log filter for stderr (`info`, `debug`, `plait=debug`, ...).
    #[arg(long, env = "PLAIT_LOG", default_value = "info")]
    pub log: String,
}

/// Commands that talk to a running daemon, and the service installer.
#[derive(Subcommand, Debug)]
pub enum SyncCommand {
    /// Show each folder's state, pending changes, transfers, conflicts and errors.
    Status(Control),
    /// Stop sending and fetching (changes are still recorded) for one folder or all.
    Pause(ControlDir),
    /// Go on after a pause.
    Resume(ControlDir),
    /// Rescan the folder(s) now instead of waiting for the periodic rescan.
    Rescan(ControlDir),
    /// List the conflicts kept as conflicted copies.
    Conflicts(Control),
    /// Show recent activity (uploads, downloads, deletes, merges, conflicts, errors).
    Activity {
        #[command(flatten)]
        control: Control,
        /// How many lines (newest), at most 1000.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Write a systemd user unit that runs `plait sync --config FILE` at login.
    InstallService {
        /// The daemon's config file (default: sync.toml in the user config directory).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Only print the unit.
        #[arg(long)]
        print: bool,
    },
}

/// How to reach the daemon.
#[derive(Args, Debug)]
pub struct Control {
    /// The daemon's control address, as its ready line says (`http://127.0.0.1:PORT` or
    /// `unix:/path`; default: the default Unix socket).
    #[arg(long, env = "PLAIT_SYNC_CONTROL")]
    pub control: Option<String>,
    /// Print the control API's JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// How to reach the daemon, and which folder (default: all).
#[derive(Args, Debug)]
pub struct ControlDir {
    #[command(flatten)]
    pub control: Control,
    /// Only this local folder.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

impl SyncArgs {
    /// The log filter when the daemon runs; control commands log warnings only.
    pub fn log_filter(&self) -> &str {
        if self.command.is_some() {
            "warn"
        } else {
            &self.daemon.log
        }
    }
}

/// Runs the daemon (or a control command) and returns the process exit code.
pub async fn run(args: SyncArgs) -> i32 {
    let outcome = match args.command {
        Some(cmd) => command(cmd).await,
        None => run_daemon(*args.daemon, engine_runner(), shutdown_signal()).await,
    };
    match outcome {
        Ok(()) => ExitCode::Ok as i32,
        Err(e) => {
            eprintln!("plait sync: {e}");
            e.exit_code() as i32
        }
    }
}

/// The folder runner of a real daemon: the engine of the contract in `spec`.
fn engine_runner() -> Runner {
    Arc::new(|spec, board, stop| Box::pin(engine::Engine::run(spec, board, stop)))
}

/// Reads the folders from the command line or the config file, then runs them until `stop`.
pub async fn run_daemon(
    a: DaemonArgs,
    runner: Runner,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), ClientError> {
    let user = UserConfig::load(&config_path()?)?;
    let (entries, file_control, defaults) = match &a.config {
        Some(path) => {
            let c = DaemonConfig::load(path)?;
            let defaults =
                Defaults { device: a.device.clone().or(c.device), rescan_secs: a.rescan_secs.or(c.rescan_secs) };
            (c.folders, c.control, defaults)
        }
        None => {
            let (Some(dir), Some(url)) = (a.dir.clone(), a.url.clone()) else {
                return Err(ClientError::Usage("give DIR URL, or --config FILE".into()));
            };
            let entry = daemon::single(dir, url, a.token.clone(), a.state_dir.clone());
            (vec![entry], None, Defaults { device: a.device.clone(), rescan_secs: a.rescan_secs })
        }
    };
    let specs = daemon::resolve(&entries, &defaults, &user)?;
    let control = match a.control.or(file_control) {
        Some(s) => ControlAddr::parse(&s)?,
        None => ControlAddr::default_socket()?,
    };
    daemon::run(specs, control, runner, stop).await
}

async fn command(cmd: SyncCommand) -> Result<(), ClientError> {
    let (control, json) = match &cmd {
        SyncCommand::InstallService { config, print } => return service::install(config.clone(), *print),
        SyncCommand::Status(c) | SyncCommand::Conflicts(c) | SyncCommand::Activity { control: c, .. } => {
            (c.control.as_deref(), c.json)
        }
        SyncCommand::Pause(c) | SyncCommand::Resume(c) | SyncCommand::Rescan(c) => {
            (c.control.control.as_deref(), c.control.json)
        }
    };
    let addr = match control {
        Some(s) => ControlAddr::parse(s)?,
        None => ControlAddr::default_socket()?,
    };
    let dir_query = |d: &ControlDir| -> Result<Vec<(&'static str, String)>, ClientError> {
        Ok(match &d.dir {
            Some(dir) => vec![("dir", std::env::current_dir()?.join(dir).display().to_string())],
            None => vec![],
        })
    };
    let (answer, print): (_, fn(&serde_json::Value)) = match &cmd {
        SyncCommand::Status(_) => (ask::ask(&addr, Method::GET, "/v1/status", &[]).await?, ask::print_status),
        SyncCommand::Conflicts(_) => (ask::ask(&addr, Method::GET, "/v1/conflicts", &[]).await?, ask::print_conflicts),
        SyncCommand::Activity { limit, .. } => {
            let q = [("limit", limit.to_string())];
            (ask::ask(&addr, Method::GET, "/v1/activity", &q).await?, ask::print_activity)
        }
        SyncCommand::Pause(d) => (ask::ask(&addr, Method::POST, "/v1/pause", &dir_query(d)?).await?, print_paused),
        SyncCommand::Resume(d) => (ask::ask(&addr, Method::POST, "/v1/resume", &dir_query(d)?).await?, print_resumed),
        SyncCommand::Rescan(d) => (ask::ask(&addr, Method::POST, "/v1/rescan", &dir_query(d)?).await?, print_rescan),
        SyncCommand::InstallService { .. } => return Ok(()),
    };
    if json {
        println!("{answer}");
    } else {
        print(&answer);
    }
    Ok(())
}

fn folders_of(v: &serde_json::Value) -> Vec<String> {
    v["folders"].as_array().into_iter().flatten().filter_map(|d| d.as_str().map(str::to_owned)).collect()
}

fn print_paused(v: &serde_json::Value) {
    folders_of(v).iter().for_each(|d| println!("paused {d}"));
}

fn print_resumed(v: &serde_json::Value) {
    folders_of(v).iter().for_each(|d| println!("resumed {d}"));
}

fn print_rescan(v: &serde_json::Value) {
    folders_of(v).iter().for_each(|d| println!("rescan asked for {d}"));
}

/// Resolves at SIGTERM or Ctrl-C (the server's `plait serve` stops on the same signals).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
