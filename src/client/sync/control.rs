//! The sync daemon's control API: a small JSON REST API on a loopback port or a Unix socket, for
//! `plait sync status` and friends, and for other programs (a tray icon, a script). It reads and
//! writes the [`StatusBoard`] only; the engines see pause, resume and rescan requests there.
//!
//! Routes (docs/SYNC.md has an example of each):
//! - `GET /v1/status` → `{"folders": [FolderStatus, …]}`
//! - `GET /v1/conflicts` → `{"conflicts": [{"dir", "path", "copy", "versions"}, …]}`
//! - `GET /v1/activity?limit=N` → `{"activity": [{"dir", "at_ms", "what", "path", "detail"}, …]}`,
//!   newest first (default 50, at most 1000)
//! - `POST /v1/pause`, `POST /v1/resume`, `POST /v1/rescan` (each with an optional `?dir=`) →
//!   `{"folders": [dir, …]}`, the folders it applied to
//!
//! Errors are `{"error": code, "message": …}`: `400 bad_query`, `404 unknown_folder`,
//! `404 not_found`, `405 method_not_allowed`, `403 forbidden_origin`.
//!
//! The API has no credentials of its own, so it listens on loopback or on a socket only this
//! user can open, and it refuses what a web page could send it: requests carrying an `Origin`
//! (a page's cross-site `fetch` or form post) and requests for a host name that is not a
//! loopback name (DNS rebinding).

use std::path::PathBuf;

use axum::body::Body;
use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use serde_json::json;
use tokio::sync::watch;

use super::daemon::ControlAddr;
use super::status::StatusBoard;
use crate::client::error::ClientError;

/// Default and largest `limit` of `GET /v1/activity`.
const ACTIVITY_DEFAULT: usize = 50;
const ACTIVITY_MAX: usize = 1000;

/// A bound control listener, not yet serving.
pub struct Bound {
    address: ControlAddr,
    listener: Listener,
}

enum Listener {
    Tcp(tokio::net::TcpListener),
    #[cfg(unix)]
    Unix(tokio::net::UnixListener),
}

impl Bound {
    /// The address it listens on (with the port the system chose for `:0`).
    pub fn address(&self) -> &ControlAddr {
        &self.address
    }
}

/// Binds the control address. A Unix socket's directory is created (mode 0700) and the socket
/// made owner-only; a socket file left by a daemon that died is replaced, one that answers is
/// another daemon, which is an error.
pub async fn bind(addr: &ControlAddr) -> Result<Bound, ClientError> {
    match addr {
        ControlAddr::Tcp(a) => {
            let l = tokio::net::TcpListener::bind(a)
                .await
                .map_err(|e| ClientError::Local(format!("control API: cannot listen on {a}: {e}")))?;
            let bound = l.local_addr()?;
            Ok(Bound { address: ControlAddr::Tcp(bound), listener: Listener::Tcp(l) })
        }
        #[cfg(unix)]
        ControlAddr::Unix(path) => bind_unix(path).await,
        #[cfg(not(unix))]
        ControlAddr::Unix(_) => {
            Err(ClientError::Usage("Unix sockets need a Unix system: use --control 127.0.0.1:0".into()))
        }
    }
}

#[cfg(unix)]
async fn bind_unix(path: &std::path::Path) -> Result<Bound, ClientError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let fail = |e: std::io::Error| ClientError::Local(format!("control API: {}: {e}", path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(fail)?;
    }
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Err(ClientError::Local(format!(
                "another sync daemon listens on {}: stop it, or give this one --control",
                path.display()
            )));
        }
        std::fs::remove_file(path).map_err(fail)?;
    }
    let l = tokio::net::UnixListener::bind(path).map_err(fail)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
    Ok(Bound { address: ControlAddr::Unix(path.to_path_buf()), listener: Listener::Unix(l) })
}

/// Serves the API until `stop` turns true; removes its Unix socket file afterwards.
pub async fn serve(bound: Bound, board: StatusBoard, mut stop: watch::Receiver<bool>) {
    let app = router(board);
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let result = match bound.listener {
        Listener::Tcp(l) => axum::serve(l, app).with_graceful_shutdown(stopped).await,
        #[cfg(unix)]
        Listener::Unix(l) => axum::serve(l, app).with_graceful_shutdown(stopped).await,
    };
    if let Err(e) = result {
        tracing::error!(error = %e, "control API stopped");
    }
    if let ControlAddr::Unix(path) = &bound.address {
        let _ = std::fs::remove_file(path);
    }
}

/// The routes, on `board`.
pub fn router(board: StatusBoard) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/conflicts", get(conflicts))
        .route("/v1/activity", get(activity))
        .route("/v1/pause", post(pause))
        .route("/v1/resume", post(resume))
        .route("/v1/rescan", post(rescan))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such route; see GET /v1/status") })
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "GET the /v1/status, conflicts and activity; POST pause, resume and rescan",
            )
        })
        .layer(axum::middleware::from_fn(guard))
        .with_state(board)
}

/// Refuses requests a web page could make (see the module docs).
async fn guard(req: Request, next: Next) -> Response {
    if req.headers().contains_key(header::ORIGIN) {
        return error(StatusCode::FORBIDDEN, "forbidden_origin", "the control API does not answer web pages");
    }
    if !loopback_host(req.headers()) {
        return error(StatusCode::FORBIDDEN, "forbidden_origin", "the control API answers only loopback host names");
    }
    next.run(req).await
}

fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return true;
    };
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    matches!(name, "127.0.0.1" | "localhost" | "[::1]")
}

fn json_ok(value: impl Serialize) -> Response {
    match serde_json::to_string(&value) {
        Ok(text) => (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], text).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", &e.to_string()),
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "error": code, "message": message }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], Body::from(body)).into_response()
}

async fn status(State(board): State<StatusBoard>, RawQuery(q): RawQuery) -> Response {
    if let Err(e) = params(q.as_deref(), &[]) {
        return *e;
    }
    json_ok(json!({ "folders": board.snapshot() }))
}

async fn conflicts(State(board): State<StatusBoard>, RawQuery(q): RawQuery) -> Response {
    if let Err(e) = params(q.as_deref(), &[]) {
        return *e;
    }
    let list: Vec<_> = board
        .snapshot()
        .into_iter()
        .flat_map(|f| {
            let dir = f.dir.clone();
            f.conflicts
                .into_iter()
                .map(move |c| json!({ "dir": dir, "path": c.path, "copy": c.copy, "versions": c.versions }))
        })
        .collect();
    json_ok(json!({ "conflicts": list }))
}

async fn activity(State(board): State<StatusBoard>, RawQuery(q): RawQuery) -> Response {
    let limit = match params(q.as_deref(), &["limit"]) {
        Ok(p) => match p.iter().find(|(k, _)| k == "limit") {
            None => ACTIVITY_DEFAULT,
            Some((_, v)) => match v.parse::<usize>() {
                Ok(n) if (1..=ACTIVITY_MAX).contains(&n) => n,
                _ => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "bad_query",
                        &format!("limit={v:?}: a number from 1 to {ACTIVITY_MAX}"),
                    )
                }
            },
        },
        Err(e) => return *e,
    };
    let mut all: Vec<_> = board
        .snapshot()
        .into_iter()
        .flat_map(|f| {
            let dir = f.dir.clone();
            f.activity.into_iter().map(move |a| (dir.clone(), a))
        })
        .collect();
    // Newest first; the sort is stable, so lines of the same millisecond keep their order
    // reversed as well.
    all.reverse();
    all.sort_by_key(|(_, a)| std::cmp::Reverse(a.at_ms));
    let list: Vec<_> = all
        .into_iter()
        .take(limit)
        .map(|(dir, a)| json!({ "dir": dir, "at_ms": a.at_ms, "what": a.what, "path": a.path, "detail": a.detail }))
        .collect();
    json_ok(json!({ "activity": list }))
}

async fn pause(State(board): State<StatusBoard>, RawQuery(q): RawQuery) -> Response {
    each_folder(&board, q.as_deref(), |b, dir| b.set_paused(dir, true))
}

async fn resume(State(board): State<StatusBoard>, RawQuery(q): RawQuery) -> Response {
    each_folder(&board, q.as_deref(), |b, dir| b.set_paused(dir, false))
}

async fn rescan(State(board): State<StatusBoard>, RawQuery(q): RawQuery) -> Response {
    each_folder(&board, q.as_deref(), |b, dir| b.ask_rescan(dir))
}

/// Applies `f` to the folder `?dir=` names, or to every folder.
fn each_folder(board: &StatusBoard, query: Option<&str>, f: impl Fn(&StatusBoard, &str)) -> Response {
    let p = match params(query, &["dir"]) {
        Ok(p) => p,
        Err(e) => return *e,
    };
    let dirs: Vec<String> = match p.into_iter().find(|(k, _)| k == "dir") {
        Some((_, dir)) => {
            let dir = trim_dir(&dir);
            if !board.has(&dir) {
                return error(
                    StatusCode::NOT_FOUND,
                    "unknown_folder",
                    &format!("{dir:?} is not a folder this daemon syncs"),
                );
            }
            vec![dir]
        }
        None => board.snapshot().into_iter().map(|s| s.dir).collect(),
    };
    for d in &dirs {
        f(board, d);
    }
    json_ok(json!({ "folders": dirs }))
}

/// `/home/me/Notes/` names the folder `/home/me/Notes`.
fn trim_dir(dir: &str) -> String {
    let trimmed = dir.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_owned()
    } else {
        PathBuf::from(trimmed).display().to_string()
    }
}

/// The query's `key=value` pairs, percent-decoded; a key not in `known` is a `400 bad_query`.
fn params(query: Option<&str>, known: &[&str]) -> Result<Vec<(String, String)>, Box<Response>> {
    let mut out = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = match (decode(k), decode(v)) {
            (Some(k), Some(v)) => (k, v),
            _ => {
                return Err(Box::new(error(
                    StatusCode::BAD_REQUEST,
                    "bad_query",
                    "the query is not valid percent-encoded UTF-8",
                )))
            }
        };
        if !known.contains(&k.as_str()) {
            let expected = if known.is_empty() { "none".to_owned() } else { known.join(", ") };
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "bad_query",
                &format!("unknown parameter {k:?}; expected: {expected}"),
            )));
        }
        out.push((k, v));
    }
    Ok(out)
}

/// Percent-decodes a query component (`+` is a space, as forms send it).
fn decode(s: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(s.len());
    let mut it = s.bytes();
    while let Some(b) = it.next() {
        match b {
            b'%' => {
                let hi = (it.next()? as char).to_digit(16)?;
                let lo = (it.next()? as char).to_digit(16)?;
                bytes.push((hi * 16 + lo) as u8);
            }
            b'+' => bytes.push(b' '),
            b => bytes.push(b),
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_host_names_pass() {
        let host = |h: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::HOST, h.parse().unwrap());
            loopback_host(&m)
        };
        assert!(host("127.0.0.1:7878") && host("localhost") && host("[::1]:80"));
        assert!(!host("evil.example:7878") && !host("127.0.0.1.evil.example") && !host("localhost:x"));
        assert!(loopback_host(&HeaderMap::new()), "HTTP/1.0 without Host (curl --unix-socket)");
    }

    #[test]
    fn query_components_are_percent_decoded() {
        assert_eq!(decode("%2Fhome%2Fme%2FMy+Notes").as_deref(), Some("/home/me/My Notes"));
        assert_eq!(decode("%zz"), None);
        assert_eq!(decode("%ff"), None, "not UTF-8");
        assert!(params(Some("dir=%2Fa&limit=3"), &["dir", "limit"]).is_ok());
        assert!(params(Some("other=1"), &["dir"]).is_err());
        assert_eq!(trim_dir("/a/b/"), "/a/b");
    }
}
