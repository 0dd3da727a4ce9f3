//! The per-user client configuration: which token to send to which server. `plait login URL`
//! writes it; every command and the sync daemon read it.
//!
//! Location: `$PLAIT_CONFIG` if set, else the platform's config directory (`directories`):
//! `~/.config/plait/config.toml` on Linux (honouring `$XDG_CONFIG_HOME`),
//! `~/Library/Application Support/plait/config.toml` on macOS, `%APPDATA%\plait\config\config.toml`
//! on Windows. The file holds secrets, so it is written with mode 0600 (through a temp file and a
//! rename, so a crash never leaves half a file). `$PLAIT_TOKEN` overrides the file for any server.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::error::ClientError;

/// The whole file.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct UserConfig {
    /// Credentials per server origin (`http://host:port`, no path).
    #[serde(default)]
    pub servers: BTreeMap<String, ServerEntry>,
}

/// What is remembered for one server.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServerEntry {
    /// The token (`plait_<id>_<secret>`) sent as `Authorization: Bearer`.
    pub token: String,
}

/// The config file's path: `$PLAIT_CONFIG`, else the platform convention.
pub fn config_path() -> Result<PathBuf, ClientError> {
    if let Some(p) = std::env::var_os("PLAIT_CONFIG") {
        return Ok(PathBuf::from(p));
    }
    directories::ProjectDirs::from("", "", "plait")
        .map(|d| d.config_dir().join("config.toml"))
        .ok_or_else(|| ClientError::Local("no home directory: set PLAIT_CONFIG to a config file path".into()))
}

/// The origin a URL's credentials are kept under (`http://127.0.0.1:8080`).
pub fn origin_of(url: &Url) -> String {
    url.origin().ascii_serialization()
}

impl UserConfig {
    /// Reads the file at `path`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<UserConfig, ClientError> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text)
                .map_err(|e| ClientError::Local(format!("{}: not a valid config file: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(UserConfig::default()),
            Err(e) => Err(ClientError::Local(format!("{}: {e}", path.display()))),
        }
    }

    /// Writes the file atomically with mode 0600 (its directory is created if needed).
    pub fn save(&self, path: &Path) -> Result<(), ClientError> {
        let text = toml::to_string_pretty(self).map_err(|e| ClientError::Local(e.to_string()))?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| ClientError::Local(format!("{}: {e}", dir.display())))?;
        let tmp = dir.join(format!(".{}.tmp", std::process::id()));
        write_private(&tmp, text.as_bytes()).map_err(|e| ClientError::Local(format!("{}: {e}", tmp.display())))?;
        std::fs::rename(&tmp, path).map_err(|e| ClientError::Local(format!("{}: {e}", path.display())))
    }

    /// The token for `url`: `$PLAIT_TOKEN` if set, else the one stored for its origin.
    pub fn token_for(&self, url: &Url) -> Option<String> {
        if let Ok(t) = std::env::var("PLAIT_TOKEN") {
            if !t.is_empty() {
                return Some(t);
            }
        }
        self.servers.get(&origin_of(url)).map(|e| e.token.clone())
    }
}

/// Creates (or truncates) `path` readable by its owner only, writes `bytes` and syncs.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(bytes)?;
    f.sync_all()
}
