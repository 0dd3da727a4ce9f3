//! Why access was refused or a credential could not be managed.

use crate::store::StoreError;

/// Failures of the access layer. `http::error` maps each to a status and a stable code.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header where a credential is needed.
    #[error("this server needs a token: send Authorization: Bearer <token>")]
    Missing,
    /// More than one `Authorization` header.
    #[error("the Authorization header may appear only once")]
    Doubled,
    /// Not a bearer token of ours, or unknown, expired or revoked.
    #[error("the token is invalid, expired or revoked")]
    InvalidToken,
    /// A share link that is malformed, unknown, revoked or expired.
    #[error("this share link is invalid, expired or revoked")]
    InvalidLink,
    /// A valid credential without the right for this request.
    #[error("this credential may not {action} {path}")]
    Forbidden {
        /// What the request tried to do, in words.
        action: &'static str,
        /// The path it tried to do it to.
        path: String,
    },
    /// Too many failed authentications from this address.
    #[error("too many failed authentications from this address; retry in {retry_after_secs} s")]
    Throttled {
        /// Seconds until the address may try again.
        retry_after_secs: u64,
    },
    /// Revoking a token that does not exist.
    #[error("no token with id {0}")]
    NoSuchToken(String),
    /// Revoking a share link that does not exist or is not the caller's.
    #[error("no share link with id {0}")]
    NoSuchShare(String),
    /// Token or share management while access control is off.
    #[error("access control is off (--auth none): there are no tokens or share links")]
    Disabled,
    /// A create request that does not describe a valid credential.
    #[error("{0}")]
    BadRequest(String),
    /// Too many credentials stored already.
    #[error("at most {limit} {what} may exist; revoke some first")]
    TooMany {
        /// Tokens or share links.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// The operating system's random source failed.
    #[error("no random bytes: {0}")]
    Random(String),
    /// A stored record does not parse.
    #[error("corrupt access record: {0}")]
    Corrupt(String),
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StoreError),
}

impl AuthError {
    /// Whether the store refused the write because its disk is full.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, AuthError::Storage(StoreError::NoSpace(_)))
    }
}
