//! What one synced folder is: the contract between the daemon's shell (`sync::daemon`, which
//! reads the config, serves the control API and runs folders) and the engine that syncs one
//! folder (`sync::engine`).

use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;

/// One local folder kept equal to one server folder.
#[derive(Debug, Clone)]
pub struct FolderSpec {
    /// The local folder (absolute; created if missing).
    pub dir: PathBuf,
    /// The server folder's URL; its path ends in `/`.
    pub url: Url,
    /// The token sent to that server, if any.
    pub token: Option<String>,
    /// Where this folder's local database lives (one RocksDB per folder, outside `dir`).
    pub state_dir: PathBuf,
    /// How often the whole folder is rescanned as a safety net under filesystem events.
    pub rescan_every: Duration,
    /// A stable name for this device, used in `Peer`, version ids and conflict copy names.
    pub device: String,
}
