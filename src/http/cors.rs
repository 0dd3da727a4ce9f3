//! CORS on every response (errors and 209 streams included), exposing the Braid headers
//! that browser clients read (`spec/WIRE.md` §3.4).

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

/// Which origins may read responses. A listed origin is echoed exactly (with `Vary:
/// Origin` and `Access-Control-Allow-Credentials: true`); any other gets no
/// `Access-Control-Allow-Origin` at all.
#[derive(Clone, Debug)]
pub enum CorsOrigins {
    /// `Access-Control-Allow-Origin: *` (no credentials): the default.
    Any,
    /// Only these origins, echoed exactly.
    List(Vec<HeaderValue>),
}

impl CorsOrigins {
    /// From the configuration: `*` or a list of origins.
    pub fn from_config(origins: &[String]) -> Result<Self, String> {
        if origins.is_empty() || origins.iter().any(|o| o == "*") {
            return Ok(CorsOrigins::Any);
        }
        origins
            .iter()
            .map(|o| HeaderValue::from_str(o.trim()).map_err(|_| format!("invalid CORS origin {o:?}")))
            .collect::<Result<Vec<_>, _>>()
            .map(CorsOrigins::List)
    }
}

const EXPOSED: &[&str] = &[
    "version",
    "parents",
    "current-version",
    "merge-type",
    "subscribe",
    "heartbeats",
    "repr-type",
    "repr-digest",
    "content-type",
    "editable",
    "accept-subscribe",
    "retry-after",
    "x-transfer-encoding",
    "vary",
    "plait-error",
    "etag",
    "merge-horizon",
    "link",
    "www-authenticate",
    "x-request-id",
    // File resources.
    "version-type",
    "conflict",
    "served-version",
    "accept-ranges",
    "content-range",
    // Folders: the cursor a listing was read at (`GET ?since=` continues from it).
    "plait-cursor",
    // Resumable uploads (tus and the IETF draft): browsers' clients read these.
    "location",
    "upload-offset",
    "upload-length",
    "upload-expires",
    "upload-complete",
    "upload-limit",
    "upload-metadata",
    "upload-concat",
    "upload-defer-length",
    "upload-draft-interop-version",
    "tus-resumable",
    "tus-version",
    "tus-extension",
    "tus-max-size",
    "tus-checksum-algorithm",
];

fn names(list: &[&'static str]) -> Vec<HeaderName> {
    list.iter().map(|n| HeaderName::from_static(n)).collect()
}

/// The CORS middleware for `origins`.
pub fn layer(origins: &CorsOrigins) -> CorsLayer {
    // Credentials only with an allow-list: `*` with credentials is invalid CORS (any site
    // could read a signed-in user's documents), and tower-http refuses to build it.
    let (allow_origin, credentials) = match origins {
        CorsOrigins::Any => (AllowOrigin::any(), false),
        CorsOrigins::List(list) => (AllowOrigin::list(list.clone()), true),
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_credentials(credentials)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::PUT,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        // Mirror what the preflight asks for (Subscribe, Version, Parents, Peer, ...), as
        // braid-text's `*` does, but valid with credentials too, so apps may add their own.
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers(names(EXPOSED))
        .max_age(Duration::from_secs(600))
}
