//! The benchmarks' no-op reference server (`plait-bench noop`): the very HTTP stack `plait
//! serve` runs (hyper-util accept loop, limits, stall guard, axum routing), in front of a
//! handler that reads the request body and answers 200 without doing anything. The cost of
//! a request here is the floor any handler pays; `plait-bench` compares the real server with it.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body_util::BodyExt;
use tokio::net::TcpListener;

use super::{serve, ConnLimits};

async fn nothing(req: Request) -> Response {
    // Read the body like a real handler must, so the reference pays for it too: frame by
    // frame, each dropped as it comes, so an upload of any size (the UPLOADS scenarios send up
    // to 128 MiB) is read to its end without being held.
    let mut body = req.into_body();
    while let Some(Ok(_)) = body.frame().await {}
    (StatusCode::OK, [("version", "\"noop-0\"")], Body::empty()).into_response()
}

/// Serves the no-op handler on `listener` until `shutdown` completes.
pub async fn serve_noop(
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = ConnLimits {
        max_header_bytes: 64 << 10,
        header_timeout: Duration::from_secs(10),
        shutdown_grace: Duration::from_millis(100),
        stall_timeout: Duration::from_secs(60),
        tls: None,
    };
    let (stop, _) = tokio::sync::watch::channel(false);
    serve(listener, Router::new().fallback(nothing), limits, stop, shutdown).await
}
