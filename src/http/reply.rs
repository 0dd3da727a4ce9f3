//! Building responses: the Braid headers every resource response carries.

use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;

use crate::protocol::{MergeType, VersionSet};

/// The media type of every text resource.
pub const REPR_TYPE: &str = "text/plain; charset=utf-8";
/// The framing media type of a 209 body.
pub const HISTORY_TYPE: &str = "application/http-history";

/// Sets a header from a string we built; our values are always valid header values
/// (versions are ASCII-escaped), so a failure is skipped rather than turned into a panic.
pub fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// `Version`-style header value of a version set.
pub fn set_version(headers: &mut HeaderMap, name: &'static str, v: &VersionSet) {
    set(headers, name, &v.to_header());
}

/// Headers common to reads of a resource: what it is, where it is, how it merges.
pub fn resource_headers(headers: &mut HeaderMap, current: &VersionSet, merge_type: MergeType) {
    set_version(headers, "current-version", current);
    set(headers, "merge-type", merge_type.as_str());
    set(headers, "accept-subscribe", "true");
    set(headers, "editable", "true");
    set(headers, "repr-type", REPR_TYPE);
}

/// `Vary: Version, Parents, Subscribe, Accept` on every response, so caches keep versioned
/// responses (and the editor page) apart (added after the CORS layer's own `Vary` entries).
pub async fn add_vary(mut res: Response) -> Response {
    res.headers_mut().append("vary", HeaderValue::from_static("Version, Parents, Subscribe, Accept"));
    res
}
