//! Building responses: the Braid headers every resource response carries.

use axum::http::header::IntoHeaderName;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;

use crate::protocol::{MergeType, VersionSet};

/// The media type of every text resource.
pub const REPR_TYPE: &str = "text/plain; charset=utf-8";
/// The framing media type of a 209 body.
pub const HISTORY_TYPE: &str = "application/http-history";

// The names of the headers every read sets, built once: a name given as a string is parsed
// and looked up on every insert (measured: ~10% of a small GET's user-space time).
/// `Version`.
pub const VERSION: HeaderName = HeaderName::from_static("version");
/// `Current-Version`.
pub const CURRENT_VERSION: HeaderName = HeaderName::from_static("current-version");
const MERGE_TYPE: HeaderName = HeaderName::from_static("merge-type");
const ACCEPT_SUBSCRIBE: HeaderName = HeaderName::from_static("accept-subscribe");
const EDITABLE: HeaderName = HeaderName::from_static("editable");
const REPR_TYPE_NAME: HeaderName = HeaderName::from_static("repr-type");
/// `Repr-Digest`.
pub const REPR_DIGEST: HeaderName = HeaderName::from_static("repr-digest");
/// `Merge-Horizon`.
pub const MERGE_HORIZON: HeaderName = HeaderName::from_static("merge-horizon");

/// Sets a header from a string we built; our values are always valid header values
/// (versions are ASCII-escaped), so a failure is skipped rather than turned into a panic.
pub fn set(headers: &mut HeaderMap, name: impl IntoHeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// `Version`-style header value of a version set.
pub fn set_version(headers: &mut HeaderMap, name: impl IntoHeaderName, v: &VersionSet) {
    set(headers, name, &v.to_header());
}

/// Headers common to reads of a resource: what it is, where it is, how it merges.
/// `editable` is false for a client that may read but not write (a read-only credential).
pub fn resource_headers(headers: &mut HeaderMap, current: &VersionSet, merge_type: MergeType, editable: bool) {
    set_version(headers, CURRENT_VERSION, current);
    headers.insert(MERGE_TYPE, HeaderValue::from_static(merge_type.as_str()));
    headers.insert(ACCEPT_SUBSCRIBE, HeaderValue::from_static("true"));
    headers.insert(EDITABLE, HeaderValue::from_static(if editable { "true" } else { "false" }));
    headers.insert(REPR_TYPE_NAME, HeaderValue::from_static(REPR_TYPE));
}

/// `Vary: Version, Parents, Subscribe, Accept` on every response, so caches keep versioned
/// responses (and the editor page) apart (added after the CORS layer's own `Vary` entries).
pub async fn add_vary(mut res: Response) -> Response {
    res.headers_mut().append(axum::http::header::VARY, HeaderValue::from_static("Version, Parents, Subscribe, Accept"));
    res
}
