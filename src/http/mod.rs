//! The HTTP layer: the only module that knows axum, and the only one that chooses
//! status codes (in [`error`]).
//!
//! Every path is a text resource except two reserved prefixes: `/.plait/` (the server's
//! own endpoints) and `/.well-known/multiplexer/` (braid-http's multiplexer, answered 501
//! so that clients fall back to plain requests).

mod access;
mod chunks;
mod codes;
mod compact;
mod compress;
mod cors;
mod credentials;
mod diff;
mod direct;
mod editor;
mod error;
mod fanout;
mod file;
mod file_history;
mod file_stream;
mod folder;
mod folder_page;
mod folder_stream;
mod headers;
mod history;
mod host;
mod noop;
mod query;
mod reply;
mod resource;
mod restore;
mod server;
mod share_link;
mod stall;
mod stream;
mod takeover;
mod tls;
mod trace;
mod uploads;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use tokio::sync::watch;

use crate::auth::Access;
use crate::hub::{Hub, RetentionPolicy};

pub use codes::{ErrorCode, Fault, Group, RetryAfter, Row};
pub use cors::CorsOrigins;
pub use error::ApiError;
pub use noop::serve_noop;
pub use server::{serve, ConnLimits};
pub use tls::{acceptor as tls_acceptor, TlsError};

/// Settings of the HTTP layer, from the configuration.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most event ids in one `Version` or `Parents` header.
    pub max_version_ids: usize,
    /// Most patches in one update.
    pub max_patches: usize,
    /// A request body must arrive within this time (slow uploads are cut off with 408).
    pub body_timeout: Duration,
    /// Ceiling of the simpleton rebase delay.
    pub max_rebase_delay: Duration,
    /// Origins allowed by CORS.
    pub cors: CorsOrigins,
    /// Compress finite responses when the client accepts gzip or brotli (never subscriptions).
    pub compression: bool,
    /// Serve the live editor page to browser navigations (`Accept: text/html` first).
    pub editor: bool,
    /// How much history each path prefix keeps (for `POST /.plait/compact/{path}`).
    pub retention: RetentionPolicy,
    /// The request header a trusted proxy puts the client address in (for throttling).
    pub client_ip_header: Option<axum::http::HeaderName>,
    /// Whether the server answers on HTTPS (for the absolute URLs of share links).
    pub https: bool,
    /// The longest a folder long poll may wait.
    pub max_poll: Duration,
}

/// What every handler can reach. One `Arc`: axum clones the state for every request and
/// every layer, so a clone must cost one atomic increment, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

/// The parts of [`AppState`].
pub struct AppParts {
    pub(crate) hub: Hub,
    pub(crate) settings: HttpSettings,
    /// Flips to true at shutdown, ending every subscription stream so connections close.
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Tokens and share links; None with `--auth none` (everything is open).
    pub(crate) access: Option<Access>,
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

impl AppState {
    /// Bundles the hub with the HTTP settings, the shutdown signal and access control.
    pub fn new(hub: Hub, settings: HttpSettings, shutdown: watch::Receiver<bool>, access: Option<Access>) -> Self {
        AppState(Arc::new(AppParts { hub, settings, shutdown, access }))
    }
}

/// Serves the whole API ([`router`]) on `listener` until `shutdown` completes (see
/// [`server::serve`]). The composition root calls this, so that only this module names axum.
pub async fn serve_api(
    listener: tokio::net::TcpListener,
    state: AppState,
    limits: ConnLimits,
    stop: watch::Sender<bool>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve(listener, router(state), limits, stop, shutdown).await
}

/// Parses a header name given in the configuration (`--client-ip-header`).
pub fn header_name(name: &str) -> Result<axum::http::HeaderName, axum::http::header::InvalidHeaderName> {
    axum::http::HeaderName::try_from(name)
}

/// The whole API on one screen. Outermost, around everything that answers (CORS preflights
/// included): request ids and spans, then the `Host` check.
pub fn router(state: AppState) -> Router {
    let cors = cors::layer(&state.settings.cors);
    let refusals = host::refusals(cors.clone());
    let routes = routes(state, cors).layer(axum::middleware::from_fn_with_state(refusals, host::check));
    trace::wrap(routes)
}

/// The routes, behind access control, CORS and compression.
fn routes(state: AppState, cors: tower_http::cors::CorsLayer) -> Router {
    let compression = state.settings.compression;
    let router = Router::new()
        .route("/.plait/health", any(health))
        .route("/.plait/client/{file}", axum::routing::get(editor::asset))
        .route("/.plait/restore/{*path}", any(restore::restore))
        .route("/.plait/diff/{*path}", any(diff::diff))
        .route("/.plait/history/{*path}", any(history::history))
        .route("/.plait/compact/{*path}", any(compact::compact))
        .route("/.plait/checkpoints/{*path}", any(history::checkpoints))
        .route("/.plait/chunks", any(chunks::overview))
        .route("/.plait/chunks-of/{*path}", any(chunks::chunks_of))
        .route("/.plait/missing/{*path}", any(chunks::missing))
        .route("/.plait/chunk/{*path}", any(chunks::upload))
        .route("/.plait/commit/{*path}", any(chunks::commit))
        .route("/.plait/collect", any(chunks::collect))
        .route("/.plait/tokens", any(credentials::tokens))
        .route("/.plait/tokens/{*id}", any(credentials::tokens))
        .route("/.plait/shares", any(credentials::shares))
        .route("/.plait/shares/{*id}", any(credentials::shares))
        .route("/.plait/s", any(share_link::serve_link))
        .route("/.plait/s/", any(share_link::serve_link))
        .route("/.plait/s/{*link}", any(share_link::serve_link))
        .route("/.plait/direct", any(direct::grants))
        .route("/.plait/direct/{grant}/s3/{*rest}", any(direct::companion))
        .route("/.plait/uploads", any(uploads::collection))
        .route("/.plait/uploads/", any(uploads::collection))
        .route("/.plait/uploads/{id}", any(uploads::one))
        .route("/.plait/{*rest}", any(plait_unknown))
        .route("/.well-known/multiplexer", any(multiplexer))
        .route("/.well-known/multiplexer/{*rest}", any(multiplexer))
        .fallback(resource::handle)
        .layer(axum::middleware::map_response(reply::add_vary));
    // Inside CORS, so refusals carry CORS headers (browser apps can read the 401) and
    // preflights, which carry no credentials, are answered before it. Without access control
    // there is nothing to guard, and no layer costs nothing per request.
    let guarded = state.access.is_some();
    let router = match guarded {
        true => router.layer(axum::middleware::from_fn_with_state(state.clone(), access::guard)),
        false => router,
    };
    // tower-http's CORS layer answers every OPTIONS itself. Only real preflights (they carry
    // `Access-Control-Request-Method`, and never credentials) may be answered that way; any
    // other OPTIONS goes past CORS to the guard and the handler like any request (tus clients
    // discover the server's extensions with one).
    let bare: Option<Router> = Some(router.clone().with_state(state.clone()));
    let plain: Router = router.clone().layer(cors.clone()).with_state(state.clone());
    // Subscriptions bypass the compression layer entirely, not just its predicate: its body
    // wrapper is as large as its biggest encoder (~6 KiB), and a 209 stream would carry it
    // for its whole life (B5 in docs/BENCHMARKS.md). Everything else may be compressed.
    let compressed: Option<Router> = compression.then(|| router.layer(compress::layer()).layer(cors).with_state(state));
    if bare.is_none() && compressed.is_none() {
        return plain;
    }
    Router::new().fallback_service(tower::service_fn(move |req: axum::extract::Request| {
        let headers = req.headers();
        let target = match (&bare, &compressed) {
            (Some(bare), _)
                if req.method() == axum::http::Method::OPTIONS
                    && !headers.contains_key(axum::http::header::ACCESS_CONTROL_REQUEST_METHOD) =>
            {
                bare.clone()
            }
            // Nothing to compress for a client that accepts no coding: skip the layer's cost.
            (_, Some(compressed))
                if !headers.contains_key("subscribe") && headers.contains_key(axum::http::header::ACCEPT_ENCODING) =>
            {
                compressed.clone()
            }
            _ => plain.clone(),
        };
        tower::ServiceExt::oneshot(target, req)
    }))
}

async fn health(State(state): State<AppState>, method: axum::http::Method) -> Response {
    if method != axum::http::Method::GET && method != axum::http::Method::HEAD {
        return ApiError::MethodNotAllowed(method.to_string()).into_response();
    }
    let count =
        |c: Option<&std::sync::atomic::AtomicU64>| c.map_or(0, |c| c.load(std::sync::atomic::Ordering::Relaxed));
    let commits = state.hub.commit_stats();
    let body = serde_json::json!({
        "status": "ok",
        "loaded_documents": state.hub.loaded_documents(),
        "parked_writes": state.hub.parked_writes(),
        "subscriptions": state.hub.subscriptions(),
        "folder_watches": state.hub.folder_watches(),
        "change_log_end": state.hub.cursor().to_string(),
        "commit_batches": count(commits.map(|c| &c.batches)),
        "commit_writes": count(commits.map(|c| &c.writes)),
    });
    ([(axum::http::header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

async fn plait_unknown(req: Request) -> ApiError {
    ApiError::NotFound(req.uri().path().to_string())
}

async fn multiplexer() -> ApiError {
    ApiError::MultiplexingNotSupported
}
