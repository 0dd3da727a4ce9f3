//! The key that encrypts chunks at rest: read from a key file, refused with a clear message
//! when the file is unsafe or malformed, and checked against the store's key check value.
//!
//! The file holds 32 random bytes as 64 hex digits (one line; surrounding whitespace is
//! ignored), e.g. from `openssl rand -hex 32`. It must be a regular file that its owner alone
//! may read (mode 0600 or 0400): a key readable by others protects nothing. The file's key is
//! never used directly: BLAKE3's key derivation makes the AES-256-GCM key and, separately,
//! the key check value kept in the store's header, so the check value reveals nothing about
//! the encryption key.

use std::path::Path;

/// What is wrong with a key file or with the key it holds.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The file cannot be read.
    #[error("cannot read the chunk key file {path}: {why}")]
    Unreadable {
        /// The key file.
        path: String,
        /// The I/O error.
        why: String,
    },
    /// Group or others may read or write it.
    #[error("the chunk key file {path} is accessible to other users (mode {mode:o}); run `chmod 600 {path}`")]
    Permissions {
        /// The key file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// Not 64 hex digits.
    #[error(
        "the chunk key file {path} does not hold a key: expected 64 hex digits (32 bytes, e.g. `openssl rand -hex 32`)"
    )]
    Malformed {
        /// The key file.
        path: String,
    },
    /// The store was encrypted, no key is configured.
    #[error("is encrypted at rest, but no chunk key file is configured: configure the key file it was created with")]
    Missing,
    /// The configured key is not the store's key (its check value differs).
    #[error("was encrypted with another key: the configured key file's key check value {found} does not match the store's {expected}")]
    Wrong {
        /// The store's check value (hex).
        expected: String,
        /// The configured key's (hex).
        found: String,
    },
    /// A key is configured for a store created without encryption.
    #[error("was created without encryption and holds chunks: it cannot be encrypted in place; start without the chunk key file, or with an empty chunk store")]
    Unencrypted,
    /// The header record is not one this build reads.
    #[error("has an unreadable sealing header (`{0}`)")]
    Header(String),
}

/// The chunk encryption key: the derived AES-256-GCM key and its check value.
#[derive(Clone)]
pub struct ChunkKey {
    aead: [u8; 32],
    check: [u8; 16],
}

impl std::fmt::Debug for ChunkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChunkKey(check {})", self.check_hex())
    }
}

const AEAD_CONTEXT: &str = "plait 2026-12 chunk store AES-256-GCM key";
const CHECK_CONTEXT: &str = "plait 2026-12 chunk store key check value";

impl ChunkKey {
    /// Derives the keys from the 32 bytes of a key file.
    pub fn from_bytes(master: &[u8; 32]) -> Self {
        let aead = blake3::derive_key(AEAD_CONTEXT, master);
        let full = blake3::derive_key(CHECK_CONTEXT, master);
        let mut check = [0u8; 16];
        check.copy_from_slice(&full[..16]);
        ChunkKey { aead, check }
    }

    /// Reads a key file, refusing files others may access and contents that are not a key.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        let unreadable = |e: std::io::Error| KeyError::Unreadable { path: shown.clone(), why: e.to_string() };
        let meta = std::fs::metadata(path).map_err(unreadable)?;
        if !meta.is_file() {
            return Err(KeyError::Unreadable { path: shown, why: "not a regular file".into() });
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::Permissions { path: shown, mode });
            }
        }
        // A key file is 65 bytes; do not read a large file someone pointed us at.
        if meta.len() > 1024 {
            return Err(KeyError::Malformed { path: shown });
        }
        let text = std::fs::read_to_string(path).map_err(|_| KeyError::Malformed { path: shown.clone() })?;
        Self::parse(text.trim()).ok_or(KeyError::Malformed { path: shown })
    }

    /// 64 hex digits, nothing else.
    fn parse(text: &str) -> Option<Self> {
        let id = super::ChunkId::from_hex(text)?;
        Some(Self::from_bytes(&id.0))
    }

    /// The AES-256-GCM key.
    pub(super) fn aead_key(&self) -> &[u8; 32] {
        &self.aead
    }

    /// The key check value, as the header stores it.
    pub fn check_hex(&self) -> String {
        hex::encode(self.check)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write_key(dir: &Path, name: &str, text: &str, mode: u32) -> std::path::PathBuf {
        let path = dir.join(name);
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        #[cfg(not(unix))]
        let _ = mode;
        path
    }

    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn a_private_file_of_64_hex_digits_is_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = ChunkKey::load(&write_key(dir.path(), "k", &format!("{HEX}\n"), 0o600)).unwrap();
        let again =
            ChunkKey::load(&write_key(dir.path(), "k2", &format!("  {}\r\n", HEX.to_uppercase()), 0o400)).unwrap();
        assert_eq!(key.check_hex(), again.check_hex());
        assert_eq!(key.aead_key(), again.aead_key());
        // Derived, not the file's bytes; check value and AEAD key are unrelated.
        let raw = crate::chunks::ChunkId::from_hex(HEX).unwrap().0;
        assert_ne!(key.aead_key(), &raw);
        assert_ne!(key.check_hex(), HEX[..32]);
        assert!(!format!("{key:?}").contains(&HEX[..16]), "Debug shows the key");
        let other = ChunkKey::from_bytes(&[9u8; 32]);
        assert_ne!(other.check_hex(), key.check_hex());
    }

    #[test]
    fn unsafe_or_malformed_key_files_are_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        #[cfg(unix)]
        {
            let open = write_key(dir.path(), "open", HEX, 0o644);
            let err = ChunkKey::load(&open).unwrap_err();
            assert_eq!(err, KeyError::Permissions { path: open.display().to_string(), mode: 0o644 });
            assert!(err.to_string().contains("chmod 600"), "{err}");
            assert!(matches!(
                ChunkKey::load(&write_key(dir.path(), "g", HEX, 0o640)),
                Err(KeyError::Permissions { .. })
            ));
        }
        for (name, text) in
            [("short", &HEX[2..]), ("long", &format!("{HEX}00")[..]), ("words", "not a key"), ("empty", "")]
        {
            let err = ChunkKey::load(&write_key(dir.path(), name, text, 0o600)).unwrap_err();
            assert!(matches!(err, KeyError::Malformed { .. }), "{name}: {err}");
            assert!(err.to_string().contains("64 hex digits"), "{err}");
        }
        let missing = ChunkKey::load(&dir.path().join("absent")).unwrap_err();
        assert!(matches!(missing, KeyError::Unreadable { .. }), "{missing}");
        assert!(matches!(ChunkKey::load(dir.path()), Err(KeyError::Unreadable { .. })));
    }
}
