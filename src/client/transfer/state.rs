//! The resume state of unfinished transfers: one small JSON file per transfer under the
//! platform cache dir (`$PLAIT_CACHE_DIR`, else `~/.cache/plait` on Linux, honouring
//! `$XDG_CACHE_HOME`), named by a hash of what identifies the transfer, so running the same
//! command again finds it and a different file (or a changed one) never does.
//!
//! Files are written through a temp file and a rename: a crash leaves the old state or the new,
//! never half of one. Losing the state only costs a fresh start, never a wrong file.

use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::client::error::ClientError;

/// The cache dir transfers keep their state in.
pub fn cache_dir() -> Result<PathBuf, ClientError> {
    if let Some(p) = std::env::var_os("PLAIT_CACHE_DIR") {
        return Ok(PathBuf::from(p));
    }
    directories::ProjectDirs::from("", "", "plait")
        .map(|d| d.cache_dir().to_path_buf())
        .ok_or_else(|| ClientError::Local("no home directory: set PLAIT_CACHE_DIR".into()))
}

/// One transfer's state file: `<cache>/<kind>/<sha256 of the key parts>.json`.
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The state file of the transfer identified by `key` (each part separated, so `("ab","c")`
    /// and `("a","bc")` differ).
    pub fn new(kind: &str, key: &[&str]) -> Result<StateFile, ClientError> {
        let mut h = Sha256::new();
        for part in key {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        let name = format!("{}.json", hex::encode(&h.finalize()[..16]));
        Ok(StateFile { path: cache_dir()?.join(kind).join(name) })
    }

    /// The saved state; None if there is none or it cannot be read (a fresh start then).
    pub fn load<T: DeserializeOwned>(&self) -> Option<T> {
        let text = std::fs::read(&self.path).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Saves `value` (atomically, synced).
    pub fn save<T: Serialize>(&self, value: &T) -> Result<(), ClientError> {
        use std::io::Write;
        let local = |e: std::io::Error| ClientError::Local(format!("{}: {e}", self.path.display()));
        let dir = self.path.parent().ok_or_else(|| ClientError::Local("bad state path".into()))?;
        std::fs::create_dir_all(dir).map_err(local)?;
        let tmp = self.path.with_extension(format!("{}.tmp", std::process::id()));
        let bytes = serde_json::to_vec(value).map_err(|e| ClientError::Local(e.to_string()))?;
        let mut f = std::fs::File::create(&tmp).map_err(local)?;
        f.write_all(&bytes).map_err(local)?;
        f.sync_all().map_err(local)?;
        std::fs::rename(&tmp, &self.path).map_err(local)
    }

    /// Forgets the state (the transfer finished, or cannot be resumed).
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
