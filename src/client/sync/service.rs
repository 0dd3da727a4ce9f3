//! `plait sync install-service`: runs the daemon as a systemd user service, so folders sync from
//! login to logout without a terminal. It writes `~/.config/systemd/user/plait-sync.service`
//! (honouring `$XDG_CONFIG_HOME`) for `plait sync --config FILE` with this very binary, and
//! prints the `systemctl --user` line that enables and starts it (it does not run systemctl
//! itself: the user sees and decides). `--print` only prints the unit.

use std::path::{Path, PathBuf};

use crate::client::error::ClientError;

/// The unit's file name.
pub const UNIT_NAME: &str = "plait-sync.service";

/// The unit text for `binary sync --config config`.
pub fn unit(binary: &Path, config: &Path) -> String {
    format!(
        "[Unit]
Description=Plait folder sync (plait sync)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart={} sync --config {}
# SIGTERM stops it cleanly; what is not sent yet is kept in its local database either way.
KillSignal=SIGTERM
TimeoutStopSec=30
Restart=on-failure
RestartSec=10

[Install]
WantedBy=default.target
",
        quote(binary),
        quote(config)
    )
}

/// A path as one systemd `ExecStart` word: double-quoted, with `\\`, `\"`, `%%` and `$$`.
fn quote(p: &Path) -> String {
    let mut out = String::from("\"");
    for c in p.display().to_string().chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The default daemon config file: `sync.toml` beside the user config (`~/.config/plait/`).
pub fn default_config() -> Result<PathBuf, ClientError> {
    directories::ProjectDirs::from("", "", "plait")
        .map(|d| d.config_dir().join("sync.toml"))
        .ok_or_else(|| ClientError::Local("no home directory: give --config FILE".into()))
}

/// Where the unit goes: `$XDG_CONFIG_HOME/systemd/user/` (`~/.config/systemd/user/`).
pub fn unit_path() -> Result<PathBuf, ClientError> {
    directories::BaseDirs::new()
        .map(|d| d.config_dir().join("systemd").join("user").join(UNIT_NAME))
        .ok_or_else(|| ClientError::Local("no home directory to install a user service in".into()))
}

/// Writes (or, with `print`, prints) the unit for `config` (default: [`default_config`]).
/// The config must exist and hold folders, so the service does not fail at every restart.
pub fn install(config: Option<PathBuf>, print: bool) -> Result<(), ClientError> {
    let config = match config {
        Some(c) => std::env::current_dir()?.join(c),
        None => default_config()?,
    };
    super::daemon::DaemonConfig::load(&config)?;
    let binary = std::env::current_exe()?;
    let text = unit(&binary, &config);
    if print {
        print!("{text}");
        return Ok(());
    }
    let path = unit_path()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| ClientError::Local(format!("{}: {e}", dir.display())))?;
    }
    let tmp = path.with_extension("service.tmp");
    std::fs::write(&tmp, &text).map_err(|e| ClientError::Local(format!("{}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, &path).map_err(|e| ClientError::Local(format!("{}: {e}", path.display())))?;
    println!("wrote {}", path.display());
    println!("start it now and at every login with:");
    println!("  systemctl --user daemon-reload && systemctl --user enable --now {UNIT_NAME}");
    println!("follow it with: journalctl --user -u {UNIT_NAME} -f   (and plait sync status)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_quotes_paths_for_systemd() {
        let u = unit(Path::new("/opt/my apps/plait"), Path::new("/home/me/100%/$x\"y.toml"));
        assert!(u.contains("ExecStart=\"/opt/my apps/plait\" sync --config \"/home/me/100%%/$$x\\\"y.toml\"\n"), "{u}");
        assert!(u.contains("WantedBy=default.target"));
    }
}
