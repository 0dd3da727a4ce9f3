//! The stored records of tokens and share links (JSON values under `store::keys::token` and
//! `store::keys::share`), and what each shows in a listing. Secrets are never here: only
//! their SHA-256 (`hash`), which listings and `Debug` leave out.

use serde::{Deserialize, Serialize};

use super::rights::{Right, ShareRight};

/// An access token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The public id.
    pub id: String,
    /// Who or what it is for; shown in history.
    pub label: String,
    /// Its right on every prefix.
    pub rights: Right,
    /// The path prefixes it covers.
    pub prefixes: Vec<String>,
    /// When it was made, in milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// When it stops working (None: never).
    pub expires_ms: Option<u64>,
    /// Lowercase hex SHA-256 of the secret.
    pub hash: String,
}

/// A share link.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareRecord {
    /// The public id.
    pub id: String,
    /// The one document it opens (raw path).
    pub path: String,
    /// What it may do there.
    pub rights: ShareRight,
    /// The version it is pinned to, if any (its text is kept under `keys::pinned_text`).
    pub version: Option<Vec<String>>,
    /// A name for listings and history (defaults to the path).
    pub label: String,
    /// When it was made, in milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// When it stops working (None: never).
    pub expires_ms: Option<u64>,
    /// The id of the credential that made it (`admin` for the configured admin token).
    pub created_by: String,
    /// Lowercase hex SHA-256 of the secret.
    pub hash: String,
}

/// Whether a credential with this expiry has expired at `now_ms`.
pub fn expired(expires_ms: Option<u64>, now_ms: u64) -> bool {
    expires_ms.is_some_and(|e| e <= now_ms)
}

impl TokenRecord {
    /// The listing's view: everything but the hash.
    pub fn listing(&self, now_ms: u64) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "label": self.label,
            "rights": self.rights,
            "prefixes": self.prefixes,
            "created_ms": self.created_ms,
            "expires_ms": self.expires_ms,
            "expired": expired(self.expires_ms, now_ms),
        })
    }
}

impl ShareRecord {
    /// The listing's view: everything but the hash (the link itself is not kept).
    pub fn listing(&self, now_ms: u64) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "path": self.path,
            "rights": self.rights,
            "version": self.version,
            "label": self.label,
            "created_ms": self.created_ms,
            "expires_ms": self.expires_ms,
            "created_by": self.created_by,
            "expired": expired(self.expires_ms, now_ms),
        })
    }
}

impl std::fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRecord")
            .field("id", &self.id)
            .field("label", &self.label)
            .field("rights", &self.rights)
            .field("prefixes", &self.prefixes)
            .field("expires_ms", &self.expires_ms)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ShareRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareRecord")
            .field("id", &self.id)
            .field("path", &self.path)
            .field("rights", &self.rights)
            .field("version", &self.version)
            .field("expires_ms", &self.expires_ms)
            .finish_non_exhaustive()
    }
}
