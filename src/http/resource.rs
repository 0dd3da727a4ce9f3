//! Handlers for text resources: any path outside the reserved prefixes.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::ext::ReasonPhrase;
use rand::Rng;

use crate::hub::{ReadOutcome, ReadRequest, SubscribeRequest, WriteRequest};
use crate::protocol::{self, encode_update, UpdateBody};
use crate::text::{Change, Edit};

use super::headers::BraidHeaders;
use super::reply::{self, HISTORY_TYPE, REPR_TYPE};
use super::{stream, ApiError, AppState};

/// Braid's subscription status.
const MULTIRESPONSE: u16 = 209;

/// Dispatches on the method.
pub async fn handle(State(state): State<AppState>, req: Request) -> Response {
    match dispatch(state, req).await {
        Ok(res) => res,
        Err(e) => e.into_response(),
    }
}

async fn dispatch(state: AppState, req: Request) -> Result<Response, ApiError> {
    let path = req.uri().path().to_string();
    let braid = BraidHeaders::parse(req.headers())?;
    match *req.method() {
        Method::GET if braid.head_override && braid.subscribe.is_none() => read(&state, &path, braid, false).await,
        Method::GET => match braid.subscribe.is_some() {
            true => subscribe(&state, &path, braid).await,
            false => read(&state, &path, braid, true).await,
        },
        Method::HEAD => read(&state, &path, braid, false).await,
        Method::PUT | Method::PATCH | Method::POST => write(&state, &path, braid, req).await,
        Method::DELETE => {
            state.hub.delete(&path).await?;
            Ok(StatusCode::OK.into_response())
        }
        Method::OPTIONS => {
            let mut res = StatusCode::OK.into_response();
            reply::set(res.headers_mut(), "allow", "GET, HEAD, PUT, PATCH, POST, DELETE, OPTIONS");
            Ok(res)
        }
        ref other => Err(ApiError::MethodNotAllowed(other.to_string())),
    }
}

fn with_status(status: u16, reason: &'static [u8], body: Body) -> Response {
    let mut res = Response::new(body);
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    res.extensions_mut().insert(ReasonPhrase::from_static(reason));
    res
}

async fn read(state: &AppState, path: &str, braid: BraidHeaders, with_body: bool) -> Result<Response, ApiError> {
    let outcome = state.hub.read(path, ReadRequest { version: braid.version, parents: braid.parents }).await?;
    match outcome {
        ReadOutcome::Snapshot { text, version, current, digest } => {
            let len = text.len();
            let body = if with_body { Body::from(text) } else { Body::empty() };
            let mut res = Response::new(body);
            let h = res.headers_mut();
            reply::resource_headers(h, &current, braid.merge_type);
            reply::set_version(h, "version", &version);
            reply::set(h, "repr-digest", &digest);
            reply::set(h, "content-type", REPR_TYPE);
            reply::set(h, "content-length", &len.to_string());
            Ok(res)
        }
        ReadOutcome::History { updates, current } => {
            let mut bytes = Vec::new();
            for u in &updates {
                encode_update(u, REPR_TYPE, &mut bytes);
            }
            let body = if with_body { Body::from(bytes) } else { Body::empty() };
            let mut res = with_status(MULTIRESPONSE, b"Multiresponse", body);
            let h = res.headers_mut();
            reply::resource_headers(h, &current, braid.merge_type);
            reply::set(h, "content-type", HISTORY_TYPE);
            reply::set(h, "cache-control", "no-store");
            Ok(res)
        }
    }
}

async fn subscribe(state: &AppState, path: &str, braid: BraidHeaders) -> Result<Response, ApiError> {
    if braid.version.is_some() {
        return Err(ApiError::VersionWithSubscribe);
    }
    let sub = state
        .hub
        .subscribe(
            path,
            SubscribeRequest {
                parents: braid.parents,
                merge_type: braid.merge_type,
                peer: braid.peer,
                max_rebase_delay: state.settings.max_rebase_delay,
            },
        )
        .await?;
    let current = sub.current.clone();
    let heartbeat = braid.heartbeats.as_ref().map(|(secs, _)| std::time::Duration::from_secs_f64(*secs));
    let body = stream::subscription_body(sub, heartbeat, state.shutdown.clone());
    let mut res = with_status(MULTIRESPONSE, b"Multiresponse", body);
    let h = res.headers_mut();
    reply::resource_headers(h, &current, braid.merge_type);
    reply::set(h, "subscribe", protocol::subscribe_echo(braid.subscribe.as_deref().unwrap_or_default()));
    reply::set(h, "content-type", HISTORY_TYPE);
    reply::set(h, "cache-control", "no-cache, no-transform, no-store");
    reply::set(h, "x-accel-buffering", "no");
    if let Some((_, raw)) = &braid.heartbeats {
        reply::set(h, "heartbeats", raw);
    }
    Ok(res)
}

/// A random agent name for writes that name neither a Version nor a usable Peer.
fn random_agent() -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..10).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// The agent for server-numbered events: the peer when it is a usable agent name.
fn fallback_agent(peer: Option<&str>) -> String {
    match peer {
        Some(p) if !p.is_empty() && p.len() < 50 && p != "ROOT" && !p.contains(|c: char| c.is_control()) => {
            p.to_string()
        }
        _ => random_agent(),
    }
}

async fn write(state: &AppState, path: &str, braid: BraidHeaders, req: Request) -> Result<Response, ApiError> {
    let version = match &braid.version {
        Some(v) if v.ids().len() > 1 => return Err(ApiError::MultipleVersionIds(v.to_header())),
        Some(v) => v.single().map(str::to_string),
        None => None,
    };
    let declared = declared_length(req.headers());
    let body = read_body(declared, req.into_body(), state.settings.max_body_bytes).await?;
    let change = match protocol::classify_body(braid.content_range.as_deref(), braid.patch_count, &body)? {
        UpdateBody::Snapshot(text) => Change::Snapshot(text),
        UpdateBody::Patches(patches) => Change::Patches(patches),
    };
    tracing::debug!(path, version = ?version, parents = ?braid.parents.as_ref().map(|p| p.to_header()), change = ?change, peer = ?braid.peer, "write");
    let edit = Edit { version, fallback_agent: fallback_agent(braid.peer.as_deref()), parents: braid.parents, change };
    let outcome = state.hub.write(path, WriteRequest { edit, peer: braid.peer, merge_type: braid.merge_type }).await?;
    let mut res = StatusCode::OK.into_response();
    reply::set_version(res.headers_mut(), "version", &outcome.current);
    Ok(res)
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok())
}

/// Reads the body up to `limit` bytes, refusing early when `Content-Length` says it is larger.
async fn read_body(declared: Option<u64>, body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::BodyTooLarge { limit });
    }
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(e) => {
            let too_large = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_large {
                Err(ApiError::BodyTooLarge { limit })
            } else {
                Err(ApiError::BadBody(e.to_string()))
            }
        }
    }
}
