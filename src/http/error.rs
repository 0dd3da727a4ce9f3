//! `ApiError`: every failure a request can meet, and the ONE place that maps failures to
//! HTTP statuses and stable error codes.
//!
//! Client faults are 4xx with a JSON body `{"error": "<code>", "message": "..."}` and the
//! code repeated in a `Plait-Error` header. Server faults are logged here, once, and the
//! client gets a generic message.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::ext::ReasonPhrase;

use crate::auth::AuthError;
use crate::hub::HubError;
use crate::protocol::error::show;
use crate::protocol::{ProtocolError, VersionSet};
use crate::text::TextError;

/// Braid's "Version Unknown Here" status, as braid-text sends it.
pub const VERSION_UNKNOWN: u16 = 309;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A header or body did not parse.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// A header appeared more than once where only one is allowed.
    #[error("the {0} header may appear only once")]
    DuplicateHeader(&'static str),
    /// `Version` and `Subscribe` together (braid-http-04 §2.5).
    #[error("Version is not allowed with Subscribe; use Parents to resume")]
    VersionWithSubscribe,
    /// A write named more than one event in `Version`.
    #[error("a write's Version must name exactly one event (its last), got {0}")]
    MultipleVersionIds(String),
    /// The request body exceeded the configured limit.
    #[error("request body exceeds the limit of {limit} bytes")]
    BodyTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A `Version` or `Parents` header names more event ids than allowed.
    #[error("the {header} header names {count} event ids; at most {limit} are allowed")]
    TooManyIds {
        /// Which header.
        header: &'static str,
        /// How many ids it named.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// An update carries more patches than allowed.
    #[error("the update carries {count} patches; at most {limit} are allowed")]
    TooManyPatches {
        /// How many patches it carried.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// The request body did not arrive in time.
    #[error("the request body did not arrive within {secs} s")]
    BodyTimeout {
        /// The timeout, in seconds.
        secs: u64,
    },
    /// The request body could not be read.
    #[error("could not read the request body: {0}")]
    BadBody(String),
    /// The method is not supported on this path.
    /// (The method is quoted truncated: hyper accepts methods of any length, and a 10 KB
    /// one must not come back as a 10 KB message.)
    #[error("method {} is not supported here", show(.0.as_bytes()))]
    MethodNotAllowed(String),
    /// A `Transfer-Encoding` other than one `chunked`: hyper removes only that coding, so
    /// anything else would be taken as the body itself.
    #[error("unsupported Transfer-Encoding {}: only a single \"chunked\" is accepted", show(.0.as_bytes()))]
    BadTransferEncoding(String),
    /// A missing, repeated or malformed `Host`, or a malformed target authority (see `host`).
    #[error("bad host: {0}")]
    BadHost(String),
    /// A request path that cannot name a document (see `resource::check_path`).
    #[error("bad path: {0}")]
    BadPath(&'static str),
    /// A request path longer than any document path may be.
    #[error("the path is {len} bytes long; at most {limit} are allowed")]
    PathTooLong {
        /// The path's length, in bytes as sent.
        len: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// A JSON request body that does not parse or has the wrong shape.
    #[error("bad JSON body: {0}")]
    BadJson(String),
    /// A query string parameter that does not parse.
    #[error("bad query: {0}")]
    BadQuery(String),
    /// Unknown server endpoint under `/.plait/`.
    #[error("no such endpoint: {0}")]
    NotFound(String),
    /// `/.well-known/multiplexer/` (braid-wire.md §5.5: 501 makes clients fall back).
    #[error("Braid multiplexing is not supported by this server; use HTTP/2")]
    MultiplexingNotSupported,
    /// The application core refused or failed.
    #[error(transparent)]
    Hub(#[from] HubError),
    /// Access control refused, or managing a credential failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl From<TextError> for ApiError {
    fn from(e: TextError) -> Self {
        ApiError::Hub(HubError::Text(e))
    }
}

impl ApiError {
    /// Status, stable code, and the ids for a 309.
    fn classify(&self) -> (StatusCode, &'static str, Option<&VersionSet>) {
        use StatusCode as S;
        match self {
            ApiError::Protocol(e) => (S::BAD_REQUEST, e.code(), None),
            ApiError::DuplicateHeader(_) => (S::BAD_REQUEST, "duplicate_header", None),
            ApiError::VersionWithSubscribe => (S::BAD_REQUEST, "version_with_subscribe", None),
            ApiError::MultipleVersionIds(_) => (S::BAD_REQUEST, "multiple_version_ids", None),
            ApiError::BodyTooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "body_too_large", None),
            ApiError::BadBody(_) => (S::BAD_REQUEST, "bad_body", None),
            ApiError::BodyTimeout { .. } => (S::REQUEST_TIMEOUT, "body_timeout", None),
            ApiError::TooManyIds { .. } => (S::REQUEST_HEADER_FIELDS_TOO_LARGE, "too_many_ids", None),
            ApiError::TooManyPatches { .. } => (S::PAYLOAD_TOO_LARGE, "too_many_patches", None),
            ApiError::BadTransferEncoding(_) => (S::BAD_REQUEST, "bad_transfer_encoding", None),
            ApiError::BadHost(_) => (S::BAD_REQUEST, "bad_host", None),
            ApiError::BadPath(_) => (S::BAD_REQUEST, "bad_path", None),
            ApiError::PathTooLong { .. } => (S::URI_TOO_LONG, "path_too_long", None),
            ApiError::MethodNotAllowed(_) => (S::METHOD_NOT_ALLOWED, "method_not_allowed", None),
            ApiError::NotFound(_) => (S::NOT_FOUND, "not_found", None),
            ApiError::BadJson(_) => (S::BAD_REQUEST, "bad_json", None),
            ApiError::BadQuery(_) => (S::BAD_REQUEST, "bad_query", None),
            ApiError::MultiplexingNotSupported => (S::NOT_IMPLEMENTED, "multiplexing_not_supported", None),
            ApiError::Auth(a) => {
                let (status, code) = auth_class(a);
                (status, code, None)
            }
            ApiError::Hub(h) => match h {
                HubError::Text(TextError::UnknownVersion(ids)) | HubError::UnknownVersion(ids) => {
                    (version_unknown(), "version_unknown", Some(ids))
                }
                HubError::Text(t) => (text_status(t), t.code(), None),
                HubError::Overloaded => (S::SERVICE_UNAVAILABLE, "overloaded", None),
                HubError::TooManySubscriptions(_) => (S::TOO_MANY_REQUESTS, "too_many_subscriptions", None),
                HubError::DocumentTooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "document_too_large", None),
                HubError::Deleted => (S::CONFLICT, "deleted", None),
                HubError::Storage(_) if h.is_disk_full() => (S::INSUFFICIENT_STORAGE, "insufficient_storage", None),
                HubError::Storage(_) => (S::SERVICE_UNAVAILABLE, "storage_unavailable", None),
                HubError::BehindHorizon { .. } => (S::GONE, "behind_horizon", None),
                HubError::NotListed(_) => (S::BAD_REQUEST, "not_in_history", None),
                HubError::BadCheckpointName(_) => (S::BAD_REQUEST, "bad_checkpoint_name", None),
                HubError::CheckpointExists(_) => (S::CONFLICT, "checkpoint_exists", None),
                HubError::TooManyCheckpoints(_) => (S::CONFLICT, "too_many_checkpoints", None),
                HubError::NoSuchCheckpoint(_) => (S::NOT_FOUND, "no_such_checkpoint", None),
                HubError::Unavailable => (S::SERVICE_UNAVAILABLE, "unavailable", None),
                HubError::Corrupt(_) => (S::INTERNAL_SERVER_ERROR, "internal", None),
            },
        }
    }
}

fn auth_class(e: &AuthError) -> (StatusCode, &'static str) {
    use StatusCode as S;
    match e {
        AuthError::Missing => (S::UNAUTHORIZED, "auth_required"),
        AuthError::InvalidToken => (S::UNAUTHORIZED, "invalid_token"),
        AuthError::Doubled => (S::BAD_REQUEST, "duplicate_header"),
        AuthError::BadRequest(_) => (S::BAD_REQUEST, "bad_credential_request"),
        AuthError::InvalidLink => (S::FORBIDDEN, "invalid_share_link"),
        AuthError::Forbidden { .. } => (S::FORBIDDEN, "forbidden"),
        AuthError::Throttled { .. } => (S::TOO_MANY_REQUESTS, "auth_throttled"),
        AuthError::NoSuchToken(_) => (S::NOT_FOUND, "no_such_token"),
        AuthError::NoSuchShare(_) => (S::NOT_FOUND, "no_such_share"),
        AuthError::Disabled => (S::NOT_FOUND, "auth_disabled"),
        AuthError::TooMany { .. } => (S::CONFLICT, "too_many_credentials"),
        AuthError::Storage(_) if e.is_disk_full() => (S::INSUFFICIENT_STORAGE, "insufficient_storage"),
        AuthError::Storage(_) => (S::SERVICE_UNAVAILABLE, "storage_unavailable"),
        AuthError::Random(_) | AuthError::Corrupt(_) => (S::INTERNAL_SERVER_ERROR, "internal"),
    }
}

fn version_unknown() -> StatusCode {
    StatusCode::from_u16(VERSION_UNKNOWN).unwrap_or(StatusCode::CONFLICT)
}

fn text_status(e: &TextError) -> StatusCode {
    match e {
        TextError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        // Only ever raised by bytes the server stored itself: never the client's fault.
        TextError::CorruptEncoding(_) => StatusCode::INTERNAL_SERVER_ERROR,
        // braid-text's status, fatal for simpleton clients (they and the server disagree).
        TextError::DigestMismatch { .. } => StatusCode::from_u16(550).unwrap_or(StatusCode::CONFLICT),
        _ => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, unknown) = self.classify();
        // 550 (Repr-Digest mismatch) is braid-text's code for a client-side disagreement, not a
        // server failure: it keeps its real message and is not logged as an error.
        let client_caused = status.as_u16() == 550;
        let message = if status.is_server_error() && !client_caused {
            tracing::error!(error = %self, code, "request failed on the server side");
            match status {
                StatusCode::SERVICE_UNAVAILABLE => {
                    "the server cannot take this request right now; retry shortly".to_string()
                }
                StatusCode::INSUFFICIENT_STORAGE => {
                    "the server's disk is full; nothing was written; retry later".to_string()
                }
                _ => "internal server error".to_string(),
            }
        } else {
            self.to_string()
        };
        let mut body = serde_json::json!({ "error": code, "message": message });
        let gone = match &self {
            ApiError::Hub(HubError::BehindHorizon { horizon, snapshot }) => Some((horizon.clone(), snapshot.clone())),
            _ => None,
        };
        if let Some((horizon, snapshot)) = &gone {
            body["horizon"] = serde_json::json!(horizon.ids());
            body["snapshot"] = serde_json::json!(snapshot);
        }
        let body = body.to_string();
        let mut res = (status, body).into_response();
        let headers = res.headers_mut();
        headers.insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert("plait-error", HeaderValue::from_static(code));
        if let Some((horizon, snapshot)) = gone {
            super::reply::set_version(headers, "merge-horizon", &horizon);
            // RFC 5829's relation for "the current version of this resource".
            super::reply::set(headers, "link", &format!("<{snapshot}>; rel=\"latest-version\""));
        }
        match &self {
            ApiError::Auth(AuthError::Missing) => {
                headers
                    .insert(axum::http::header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"plait\""));
            }
            ApiError::Auth(AuthError::InvalidToken) => {
                headers.insert(
                    axum::http::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"plait\", error=\"invalid_token\""),
                );
            }
            ApiError::Auth(AuthError::Throttled { retry_after_secs }) => {
                headers.insert(axum::http::header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
                return res;
            }
            _ => {}
        }
        if let Some(ids) = unknown {
            if let Ok(v) = HeaderValue::from_str(&ids.to_header()) {
                headers.insert("version", v);
            }
            headers.insert(axum::http::header::RETRY_AFTER, HeaderValue::from_static("1"));
            res.extensions_mut().insert(ReasonPhrase::from_static(b"Version Unknown Here"));
        } else if client_caused {
            res.extensions_mut().insert(ReasonPhrase::from_static(b"Repr-Digest Mismatch"));
        } else if matches!(
            status,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS | StatusCode::INSUFFICIENT_STORAGE
        ) {
            headers.insert(axum::http::header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        res
    }
}
