//! Request ids and request spans, so a log line can be tied to the request (and the client's
//! own logs) it came from.
//!
//! Every request gets an id: the client's `X-Request-Id` when it sent exactly one that is
//! short and printable (1 to [`MAX_CLIENT_ID`] visible ASCII characters), else one minted here
//! (`<run>-<n>`: a random prefix per server start and a counter, unique without a lookup). The
//! id is echoed in the response's `X-Request-Id`, errors and 209 streams included.
//!
//! Every request runs inside an `info`-level span `request{method, path, request_id}`, so
//! whatever is logged while serving it (a server fault at `error`, a warning) names it. The
//! per-request line itself, `response{status, latency_ms}` when the response head is ready (for
//! a 209, when the stream starts), is at `debug`: at the default `--log info` a line per
//! request would be the loudest thing in a production log. A body's end is at `trace`.
//! Server faults are logged once, by `error.rs`, which knows which 5xx are the client's doing
//! (550); the trace layer's own failure log is off.
//!
//! Paths are logged up to [`MAX_LOGGED_PATH`] bytes, and a share link's path only up to its
//! public id: the rest of `/.plait/s/<id>_<secret>` is a credential.
//!
//! The layers are tower-http's (`SetRequestIdLayer`, `PropagateRequestIdLayer`, `TraceLayer`);
//! what is ours is which id to trust, the span's fields and the levels.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::Router;
use rand::Rng;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::{MakeSpan, OnEos, OnResponse, TraceLayer};
use tracing::Span;

/// The request and response header carrying the request id.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The longest client-sent request id reused; longer ones are replaced by a minted id.
pub const MAX_CLIENT_ID: usize = 64;
/// The longest path written into a span; longer ones end in `…`.
pub const MAX_LOGGED_PATH: usize = 256;

/// `router` with request ids and spans around everything it answers.
pub fn wrap(router: Router) -> Router {
    let trace = TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_request(())
        .on_response(LogResponse)
        .on_body_chunk(())
        .on_eos(LogEnd)
        .on_failure(());
    router.layer(
        ServiceBuilder::new()
            .map_request(drop_unusable_id as fn(Request) -> Request)
            .layer(SetRequestIdLayer::new(X_REQUEST_ID, MintId { run: rand::rng().random() }))
            .layer(PropagateRequestIdLayer::new(X_REQUEST_ID))
            .layer(trace),
    )
}

/// Whether a client's request id is reused: short, printable, no spaces.
fn usable(id: &[u8]) -> bool {
    (1..=MAX_CLIENT_ID).contains(&id.len()) && id.iter().all(u8::is_ascii_graphic)
}

/// Removes the client's `X-Request-Id` unless it sent exactly one usable id, so that
/// `SetRequestIdLayer` (which keeps any id it finds) mints one instead.
fn drop_unusable_id(mut req: Request) -> Request {
    let mut ids = req.headers().get_all(X_REQUEST_ID).iter();
    let keep = match (ids.next(), ids.next()) {
        (None, _) => true,
        (Some(one), None) => usable(one.as_bytes()),
        (Some(_), Some(_)) => false,
    };
    if !keep {
        req.headers_mut().remove(X_REQUEST_ID);
    }
    req
}

/// Counter of minted ids, shared by every server in the process (each has its own prefix).
static MINTED: AtomicU64 = AtomicU64::new(0);

/// Mints `<run>-<n>`: `run` is random per router, `n` counts up.
#[derive(Clone, Copy)]
struct MintId {
    run: u32,
}

impl MakeRequestId for MintId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = MINTED.fetch_add(1, Ordering::Relaxed);
        let id = format!("{:08x}-{n:x}", self.run);
        HeaderValue::from_maybe_shared(bytes::Bytes::from(id)).ok().map(RequestId::new)
    }
}

/// The `request` span.
#[derive(Clone, Copy)]
struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, req: &axum::http::Request<B>) -> Span {
        // The fields are only evaluated when the span is enabled.
        tracing::info_span!(
            "request",
            method = %Capped(req.method().as_str()),
            path = %LoggedPath(req.uri().path()),
            request_id = %req.headers().get(X_REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default(),
        )
    }
}

/// The per-request line, when the response head is ready.
#[derive(Clone, Copy)]
struct LogResponse;

impl<B> OnResponse<B> for LogResponse {
    fn on_response(self, res: &axum::http::Response<B>, latency: Duration, _: &Span) {
        tracing::debug!(status = res.status().as_u16(), latency_ms = millis(latency), "response");
    }
}

/// The end of a response body (a 209 stream's end, when the server ends it).
#[derive(Clone, Copy)]
struct LogEnd;

impl OnEos for LogEnd {
    fn on_eos(self, _: Option<&axum::http::HeaderMap>, stream_duration: Duration, _: &Span) {
        tracing::trace!(body_ms = millis(stream_duration), "body ended");
    }
}

/// Milliseconds, to the microsecond.
fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// A client-chosen string in a log line: at most [`MAX_LOGGED_PATH`] bytes.
struct Capped<'a>(&'a str);

impl fmt::Display for Capped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut end = self.0.len().min(MAX_LOGGED_PATH);
        while !self.0.is_char_boundary(end) {
            end -= 1;
        }
        f.write_str(&self.0[..end])?;
        if end < self.0.len() {
            f.write_str("…")?;
        }
        Ok(())
    }
}

/// A request path as logged: capped, and a share link's secret left out.
struct LoggedPath<'a>(&'a str);

impl fmt::Display for LoggedPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(link) = self.0.strip_prefix("/.plait/s/") else { return Capped(self.0).fmt(f) };
        match link.split_once('_') {
            Some((id, _)) if crate::auth::is_id(id) => write!(f, "/.plait/s/{id}_…"),
            _ if link.is_empty() => f.write_str("/.plait/s/"),
            _ => f.write_str("/.plait/s/…"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn short_printable_ids_are_reused() {
        assert!(usable(b"abc-123") && usable(b"0af7651916cd43dd8448eb211c80319c"));
        assert!(usable(&[b'x'; MAX_CLIENT_ID]));
        assert!(!usable(&[b'x'; MAX_CLIENT_ID + 1]));
        for bad in [&b""[..], b"a b", b"a\tb", b"caf\xc3\xa9", b"\x7f"] {
            assert!(!usable(bad), "{bad:?}");
        }
    }

    #[test]
    fn unusable_and_repeated_ids_are_dropped() {
        let with = |ids: &[&str]| {
            let mut req = Request::new(axum::body::Body::empty());
            for id in ids {
                req.headers_mut().append(X_REQUEST_ID, HeaderValue::from_str(id).unwrap());
            }
            let req = drop_unusable_id(req);
            req.headers().get_all(X_REQUEST_ID).iter().map(|v| v.to_str().unwrap().to_string()).collect::<Vec<_>>()
        };
        assert_eq!(with(&["good-1"]), ["good-1"]);
        assert!(with(&["has space"]).is_empty());
        assert!(with(&["a", "a"]).is_empty());
        assert!(with(&[]).is_empty());
    }

    #[test]
    fn minted_ids_differ_and_are_valid_headers() {
        let mut mint = MintId { run: 0xabc };
        let req = axum::http::Request::new(());
        let a = mint.make_request_id(&req).unwrap();
        let b = mint.make_request_id(&req).unwrap();
        assert_ne!(a.header_value(), b.header_value());
        assert!(a.header_value().to_str().unwrap().starts_with("00000abc-"));
        assert!(usable(a.header_value().as_bytes()), "a minted id is one a client could send back");
    }

    #[test]
    fn paths_are_capped_and_share_link_secrets_left_out() {
        let id = "0123456789abcdef0123456789abcdef";
        let shown = |p: &str| LoggedPath(p).to_string();
        assert_eq!(shown("/notes/a"), "/notes/a");
        assert_eq!(shown(&format!("/.plait/s/{}_{}", &id[..16], "f".repeat(64))).len(), "/.plait/s/".len() + 20);
        assert!(!shown(&format!("/.plait/s/{}_{}", &id[..16], "f".repeat(64))).contains("ffff"));
        assert_eq!(shown("/.plait/s/not-a-link-secret"), "/.plait/s/…");
        assert_eq!(shown("/.plait/s/"), "/.plait/s/");
        let long = format!("/{}", "a".repeat(1000));
        assert_eq!(shown(&long).len(), MAX_LOGGED_PATH + "…".len());
    }
}
