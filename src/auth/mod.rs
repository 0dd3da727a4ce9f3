//! Access control: tokens with rights on path prefixes, share links to one document, the
//! throttle on failed authentication, and the signal that ends live responses when a
//! credential is revoked or expires. See docs/ACCESS.md for the behaviour as users see it.
//!
//! Layering: depends on `store` (records are bytes under `store::keys`) and nothing above
//! it; the HTTP layer decides what a request needs ([`Action`] on a path) and asks here.

mod error;
mod grant;
mod records;
mod registry;
mod rights;
mod secret;
mod throttle;

pub use error::AuthError;
pub use grant::{Grant, Kind};
pub use records::{ShareRecord, TokenRecord};
pub use registry::{check_pinned_rights, Access, NewShare, NewToken, MAX_SHARES, MAX_TOKENS};
pub use rights::{covers, prefix_problem, Action, Right, ShareRight};
pub use secret::{is_id, TOKEN_PREFIX};
pub use throttle::{Throttle, WINDOW as THROTTLE_WINDOW};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
