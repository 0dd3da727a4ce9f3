//! `plait sync`: the daemon that keeps local folders and server folders the same, both ways,
//! and the commands that control it.

use clap::Args;

use super::error::ExitCode;

pub mod engine;
pub mod spec;
pub mod status;

/// `plait sync DIR URL` (and, later, its control subcommands).
#[derive(Args, Debug)]
pub struct SyncArgs {
    /// The local folder.
    pub dir: std::path::PathBuf,
    /// The server folder's URL (ends in `/`).
    pub url: String,
}

/// Runs the daemon (or a control command) and returns the process exit code.
pub async fn run(args: SyncArgs) -> i32 {
    eprintln!("plait sync {} {}: not built yet", args.dir.display(), args.url);
    ExitCode::Failure as i32
}
