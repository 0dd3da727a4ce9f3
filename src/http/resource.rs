//! Handlers for resources: any path outside the reserved prefixes. Text is served here; file
//! resources are told apart here and served by `file` and `file_stream`.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::ext::ReasonPhrase;
use rand::Rng;

use crate::hub::{HubError, ReadOutcome, ReadRequest, SubscribeRequest, WriteRequest};
use crate::protocol::{self, encode_update, UpdateBody, VersionSet};
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
    // Set by the access guard or a share link; None with access control off.
    let grant = super::access::grant_of(&req);
    check_path(&path)?;
    check_transfer_encoding(req.headers())?;
    // The IETF draft's upload creation on the resource itself (`Upload-Complete`).
    if matches!(*req.method(), Method::PUT | Method::POST) && super::uploads::is_creation(req.headers()) {
        return Ok(super::uploads::at_target(&state, &path, req).await);
    }
    let braid = BraidHeaders::parse(req.headers())?;
    let max_ids = state.settings.max_version_ids;
    for (name, v) in [("Version", &braid.version), ("Parents", &braid.parents)] {
        if let Some(v) = v {
            if v.ids().len() > max_ids {
                return Err(ApiError::TooManyIds { header: name, count: v.ids().len(), limit: max_ids });
            }
        }
    }
    let inm = req.headers().get("if-none-match").cloned();
    let navigation = braid.subscribe.is_none() && braid.version.is_none() && braid.parents.is_none();
    // HEAD answers what GET would, minus the body (hyper never sends a HEAD's body).
    let get_or_head = matches!(*req.method(), Method::GET | Method::HEAD);
    let reader = Reader {
        private: grant.is_some(),
        editable: grant.as_ref().is_none_or(|g| g.allows(crate::auth::Action::Write, &path)),
    };
    // A folder: its listing, changes, watch or event stream.
    if path.ends_with('/') {
        return super::folder::route(&state, &path, braid, req, grant).await;
    }
    // A document's changes as server-sent events (for `EventSource`).
    if get_or_head && super::folder::wants_events(req.headers()) {
        let q = super::folder::FolderQuery::parse(&req, &braid, state.settings.max_poll)?;
        let visible = super::folder::visible(grant.as_ref());
        let ended = grant.as_ref().and_then(crate::auth::Grant::ended);
        let scope = crate::hub::Scope::Path(path.clone());
        return super::folder_stream::events(&state, scope, q.since, visible, &req, ended);
    }
    // A file resource: its bytes (a browser sees the photo, not the text editor).
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::DELETE) {
        if let Some(file) = state.hub.file(&path).await? {
            return file_request(&state, &path, braid, req, grant, file, reader).await;
        }
    }
    if get_or_head && navigation && state.settings.editor && super::editor::wants_page(req.headers()) {
        return Ok(super::editor::page());
    }
    match *req.method() {
        // A HEAD subscription gets the 209's head, refusals included (`Version` with
        // `Subscribe`, subscription limits); dropping its unsent body ends the subscription.
        Method::GET | Method::HEAD if braid.subscribe.is_some() => {
            // A GET's stream leaves hyper after the head (HTTP/1.1); a HEAD sends no body.
            let takeover = (req.method() == Method::GET).then(|| super::takeover::Takeover::of(&req)).flatten();
            subscribe(&state, &path, braid, grant.and_then(|g| g.ended()), reader.editable, takeover).await
        }
        Method::GET if braid.head_override => read(&state, &path, braid, inm, false, reader).await,
        Method::GET => read(&state, &path, braid, inm, true, reader).await,
        Method::HEAD => read(&state, &path, braid, inm, false, reader).await,
        Method::PUT | Method::PATCH | Method::POST => write(&state, &path, braid, req, grant).await,
        // Text: the document and its whole history are erased (a file's DELETE is above).
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

/// GET, HEAD (subscriptions included) and DELETE of a file resource.
async fn file_request(
    state: &AppState,
    path: &str,
    braid: BraidHeaders,
    req: Request,
    grant: Option<crate::auth::Grant>,
    file: std::sync::Arc<crate::file::FileDoc>,
    reader: Reader,
) -> Result<Response, ApiError> {
    let method = req.method().clone();
    if method == Method::DELETE {
        // `?erase`: the resource and its whole history go (then the path may hold text).
        if req.uri().query().is_some_and(|q| q.split('&').any(|p| p == "erase" || p.starts_with("erase="))) {
            state.hub.delete(path).await?;
            return Ok(StatusCode::OK.into_response());
        }
        return super::file::delete(state, path, braid, grant.as_ref()).await;
    }
    if braid.subscribe.is_some() {
        if braid.version.is_some() {
            return Err(ApiError::VersionWithSubscribe);
        }
        let takeover = (method == Method::GET).then(|| super::takeover::Takeover::of(&req)).flatten();
        let sub = state.hub.subscribe_file(path, braid.parents.clone(), braid.peer.clone()).await?;
        let current = sub.current.clone();
        let heartbeat = braid.heartbeats.as_ref().map(|(secs, _)| std::time::Duration::from_secs_f64(*secs));
        let ended = grant.and_then(|g| g.ended());
        let chunks = super::file_stream::chunks(
            sub,
            state.hub.clone(),
            heartbeat,
            state.shutdown.clone(),
            ended,
            braid.head_override,
        );
        let body = match takeover {
            Some(takeover) => takeover.arm(chunks),
            None => stream::chunks_body(chunks),
        };
        return Ok(multiresponse(body, &braid, |h| {
            reply::set_version(h, reply::CURRENT_VERSION, &current);
            reply::set(h, "merge-type", "aww");
        }));
    }
    let with_body = method == Method::GET && !braid.head_override;
    let file_reader = super::file::FileReader { with_body, private: reader.private, editable: reader.editable };
    super::file::read(state, path, &braid, req.headers(), file, file_reader).await
}

/// The longest document path accepted, in bytes as sent (percent-escapes included).
pub(crate) const MAX_PATH_BYTES: usize = 4096;

/// Checks that a request path can name a document, before anything else looks at it.
///
/// Paths are opaque keys (never mapped to files), so nothing here is about escaping a
/// directory. But a path that other software reads differently from us is refused, so each
/// document has one unambiguous name: browsers resolve `..` and `%2e%2e` segments before
/// sending, proxies decode `%00` and `%ff`, and `*` (asterisk-form) is not a path at all.
/// Refused (400 `bad_path`): no leading `/`; a `%` not followed by two hex digits; escapes
/// that decode to invalid UTF-8 (`%ff`, overlong `%c0%ae`) or to a control character
/// (`%00`, `%0a`); a `.` or `..` segment, raw or escaped; an escaped reserved prefix
/// (`/%2eplait/...`). Longer than [`MAX_PATH_BYTES`]: 414 `path_too_long`. The query string
/// is not part of the path and is ignored.
pub(crate) fn check_path(path: &str) -> Result<(), ApiError> {
    if path.len() > MAX_PATH_BYTES {
        return Err(ApiError::PathTooLong { len: path.len(), limit: MAX_PATH_BYTES });
    }
    if !path.starts_with('/') {
        return Err(ApiError::BadPath("the path must start with /"));
    }
    let decoded = percent_decode(path.as_bytes()).ok_or(ApiError::BadPath("a % is not followed by two hex digits"))?;
    let decoded = String::from_utf8(decoded).map_err(|_| ApiError::BadPath("percent-escapes that are not UTF-8"))?;
    if decoded.chars().any(char::is_control) {
        return Err(ApiError::BadPath("a control character"));
    }
    if decoded.split('/').any(|segment| segment == "." || segment == "..") {
        return Err(ApiError::BadPath("a `.` or `..` segment"));
    }
    if decoded.starts_with("/.plait/") || decoded.starts_with("/.well-known/multiplexer") {
        return Err(ApiError::BadPath("an escaped reserved prefix"));
    }
    Ok(())
}

/// `raw` with every `%XX` escape decoded; None when a `%` is not followed by two hex digits.
pub(crate) fn percent_decode(raw: &[u8]) -> Option<Vec<u8>> {
    let mut decoded = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
            decoded.push((hex(raw.get(i + 1))? * 16 + hex(raw.get(i + 2))?) as u8);
            i += 3;
        } else {
            decoded.push(raw[i]);
            i += 1;
        }
    }
    Some(decoded)
}

/// The text at `version` (None: the current one) and the version it is at; the empty version
/// is the empty document. Shared by the endpoints that read whole old texts (restore, diff).
pub(crate) async fn text_at(
    state: &AppState,
    path: &str,
    version: Option<VersionSet>,
) -> Result<(String, VersionSet), ApiError> {
    if state.hub.file(path).await?.is_some() {
        return Err(ApiError::NotText(path.to_string()));
    }
    if version.as_ref().is_some_and(|v| v.ids().is_empty()) {
        return Ok((String::new(), VersionSet::new(Vec::<String>::new())));
    }
    match state.hub.read(path, ReadRequest { version, parents: None }).await? {
        ReadOutcome::Snapshot { text, version, .. } => {
            let text = String::from_utf8(text.to_vec()).map_err(|_| corrupt("a document's text is not UTF-8"))?;
            Ok((text, version))
        }
        // A read without Parents is always a snapshot.
        ReadOutcome::History { .. } => Err(corrupt("a snapshot read returned history")),
    }
}

fn corrupt(what: &str) -> ApiError {
    ApiError::Hub(HubError::Doc(crate::document::DocError::Corrupt(what.into())))
}

/// Accepts no `Transfer-Encoding`, or exactly one `chunked` coding. hyper de-chunks the body
/// but hands any other coding through as if the bytes were the body (`gzip, chunked` would
/// store gzip bytes, `chunked, chunked` the inner chunk framing), so those are refused.
/// (hyper itself refuses a last coding other than `chunked`, and `Transfer-Encoding` on
/// HTTP/1.0, with an empty 400.)
fn check_transfer_encoding(headers: &HeaderMap) -> Result<(), ApiError> {
    let values: Vec<&[u8]> =
        headers.get_all(axum::http::header::TRANSFER_ENCODING).iter().map(|v| v.as_bytes()).collect();
    let codings: Vec<&[u8]> = values.iter().flat_map(|v| v.split(|&b| b == b',')).map(|c| c.trim_ascii()).collect();
    match codings.as_slice() {
        [] => Ok(()),
        [one] if one.eq_ignore_ascii_case(b"chunked") => Ok(()),
        _ => Err(ApiError::BadTransferEncoding(String::from_utf8_lossy(&values.join(&b", "[..])).into_owned())),
    }
}

fn with_status(status: u16, reason: &'static [u8], body: Body) -> Response {
    let mut res = Response::new(body);
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    res.extensions_mut().insert(ReasonPhrase::from_static(reason));
    res
}

/// Who is reading, as far as the response headers care.
#[derive(Clone, Copy)]
struct Reader {
    /// The request needed a credential: no shared cache may keep the answer.
    private: bool,
    /// The reader may also write (`Editable: true`); false for read-only credentials.
    editable: bool,
}

/// `Cache-Control` of a snapshot at a named `Version`: the text of a version never changes.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The same for a response that needed a credential: no shared cache may keep it (it would
/// serve it to anyone, and after the credential is revoked).
pub(crate) const PRIVATE_IMMUTABLE: &str = "private, max-age=31536000, immutable";
/// `Cache-Control` of the current snapshot: caches may keep it but must revalidate (ETag).
const REVALIDATE: &str = "no-cache";

async fn read(
    state: &AppState,
    path: &str,
    braid: BraidHeaders,
    if_none_match: Option<HeaderValue>,
    with_body: bool,
    reader: Reader,
) -> Result<Response, ApiError> {
    let pinned = braid.version.is_some();
    let immutable = if reader.private { PRIVATE_IMMUTABLE } else { IMMUTABLE };
    let outcome = state.hub.read(path, ReadRequest { version: braid.version, parents: braid.parents }).await?;
    match outcome {
        ReadOutcome::Snapshot { text, version, current, digest, horizon } => {
            let etag = protocol::etag(&version);
            let not_modified = if_none_match.is_some_and(|v| protocol::if_none_match(v.as_bytes(), &etag));
            let len = text.len();
            let mut res = if not_modified {
                let mut res = Response::new(Body::empty());
                *res.status_mut() = StatusCode::NOT_MODIFIED;
                res
            } else {
                Response::new(if with_body { Body::from(text) } else { Body::empty() })
            };
            let h = res.headers_mut();
            reply::resource_headers(h, &current, braid.merge_type, reader.editable);
            match (version == current, h.get(reply::CURRENT_VERSION).cloned()) {
                (true, Some(same)) => {
                    h.insert(reply::VERSION, same);
                }
                _ => reply::set_version(h, reply::VERSION, &version),
            }
            reply::set(h, header::ETAG, &etag);
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static(if pinned { immutable } else { REVALIDATE }));
            reply::set(h, reply::REPR_DIGEST, &digest);
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(REPR_TYPE));
            if let Some(horizon) = &horizon {
                reply::set_version(h, reply::MERGE_HORIZON, horizon);
            }
            if !not_modified {
                h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            }
            Ok(res)
        }
        ReadOutcome::History { updates, current, horizon } => {
            let mut bytes = Vec::new();
            for u in &updates {
                encode_update(u, REPR_TYPE, &mut bytes);
            }
            // The length is set here, not left to the body, so a HEAD says what its GET sends.
            let len = bytes.len();
            let body = if with_body { Body::from(bytes) } else { Body::empty() };
            let mut res = with_status(MULTIRESPONSE, b"Multiresponse", body);
            let h = res.headers_mut();
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            reply::resource_headers(h, &current, braid.merge_type, reader.editable);
            reply::set(h, "content-type", HISTORY_TYPE);
            reply::set(h, "cache-control", "no-store");
            if let Some(horizon) = &horizon {
                reply::set_version(h, "merge-horizon", horizon);
            }
            Ok(res)
        }
    }
}

/// A subscription; `ended` fires when the credential that opened it is revoked or expires,
/// and then the stream ends. With `takeover` (an HTTP/1.1 request), hyper writes the head
/// and the connection's own task writes the stream (see `takeover`).
async fn subscribe(
    state: &AppState,
    path: &str,
    braid: BraidHeaders,
    ended: Option<tokio::sync::watch::Receiver<bool>>,
    editable: bool,
    takeover: Option<super::takeover::Takeover>,
) -> Result<Response, ApiError> {
    if braid.version.is_some() {
        return Err(ApiError::VersionWithSubscribe);
    }
    let sub = state
        .hub
        .subscribe(
            path,
            SubscribeRequest {
                parents: braid.parents.clone(),
                merge_type: braid.merge_type,
                peer: braid.peer.clone(),
                max_rebase_delay: state.settings.max_rebase_delay,
            },
        )
        .await?;
    let current = sub.current.clone();
    let heartbeat = braid.heartbeats.as_ref().map(|(secs, _)| std::time::Duration::from_secs_f64(*secs));
    let chunks = stream::chunks(sub, heartbeat, state.shutdown.clone(), ended, braid.head_override);
    let body = match takeover {
        Some(takeover) => takeover.arm(chunks),
        None => stream::body(chunks),
    };
    Ok(multiresponse(body, &braid, |h| reply::resource_headers(h, &current, braid.merge_type, editable)))
}

/// The 209 head of a subscription, text or file: the resource's headers (`resource`), then
/// the stream's own (never cached, never buffered by a proxy, `Subscribe` and `Heartbeats`
/// echoed).
pub(super) fn multiresponse(body: Body, braid: &BraidHeaders, resource: impl FnOnce(&mut HeaderMap)) -> Response {
    let mut res = with_status(MULTIRESPONSE, b"Multiresponse", body);
    let h = res.headers_mut();
    resource(h);
    reply::set(h, "subscribe", protocol::subscribe_echo(braid.subscribe.as_deref().unwrap_or_default()));
    reply::set(h, "content-type", HISTORY_TYPE);
    reply::set(h, "cache-control", "no-cache, no-transform, no-store");
    reply::set(h, "x-accel-buffering", "no");
    if let Some((_, raw)) = &braid.heartbeats {
        reply::set(h, "heartbeats", raw);
    }
    res
}

/// A random agent name for writes that name neither a Version nor a usable Peer.
pub(crate) fn random_agent() -> String {
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

async fn write(
    state: &AppState,
    path: &str,
    braid: BraidHeaders,
    req: Request,
    grant: Option<crate::auth::Grant>,
) -> Result<Response, ApiError> {
    let version = match &braid.version {
        Some(v) if v.ids().len() > 1 => return Err(ApiError::MultipleVersionIds(v.to_header())),
        Some(v) => v.single().map(str::to_string),
        None => None,
    };
    let declared = declared_length(req.headers());
    let (parts, body) = req.into_parts();
    let body = match super::file::route(state, path, &braid, &parts.headers, body).await? {
        super::file::Route::File { prefix, body } => {
            return super::file::put(state, path, braid, &parts.headers, grant.as_ref(), prefix, body).await;
        }
        super::file::Route::TextRead(bytes) => bytes,
        super::file::Route::Text(body) => {
            tokio::time::timeout(state.settings.body_timeout, read_body(declared, body, state.settings.max_body_bytes))
                .await
                .map_err(|_| ApiError::BodyTimeout { secs: state.settings.body_timeout.as_secs() })??
        }
    };
    let change = match protocol::classify_body(braid.content_range.as_deref(), braid.patch_count, &body)? {
        UpdateBody::Snapshot(text) => Change::Snapshot(text),
        UpdateBody::Patches(patches) if patches.len() > state.settings.max_patches => {
            return Err(ApiError::TooManyPatches { count: patches.len(), limit: state.settings.max_patches });
        }
        UpdateBody::Patches(patches) => Change::Patches(patches),
    };
    tracing::debug!(path, version = ?version, parents = ?braid.parents.as_ref().map(|p| p.to_header()), change = ?change, peer = ?braid.peer, "write");
    let edit = Edit { version, fallback_agent: fallback_agent(braid.peer.as_deref()), parents: braid.parents, change };
    let request = WriteRequest {
        expect_sha256: braid.repr_digest,
        principal: grant.as_ref().map(super::access::principal),
        ..WriteRequest::new(edit, braid.peer, braid.merge_type)
    };
    let outcome = state.hub.write(path, request).await?;
    let mut res = StatusCode::OK.into_response();
    reply::set_version(res.headers_mut(), "version", &outcome.current);
    Ok(res)
}

pub(super) fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok())
}

/// Reads a whole (small) request body: at most `limit` bytes, within `timeout`.
pub(crate) async fn read_limited(body: Body, limit: usize, timeout: std::time::Duration) -> Result<Vec<u8>, ApiError> {
    tokio::time::timeout(timeout, read_body(None, body, limit))
        .await
        .map_err(|_| ApiError::BodyTimeout { secs: timeout.as_secs() })?
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn code(path: &str) -> Option<&'static str> {
        check_path(path).err().map(|e| match e {
            ApiError::BadPath(_) => "bad_path",
            ApiError::PathTooLong { .. } => "path_too_long",
            _ => "other",
        })
    }

    #[test]
    fn ordinary_paths_are_documents() {
        for ok in ["/", "/notes/a", "/a.txt", "/a..b/.c/d.", "/caf%C3%A9", "/a%20b", "/a%2Fb", "//x", "/.plait"] {
            assert_eq!(code(ok), None, "{ok}");
        }
        assert_eq!(code(&format!("/{}", "a".repeat(MAX_PATH_BYTES - 1))), None);
    }

    #[test]
    fn only_a_single_chunked_coding_is_accepted() {
        let te = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(axum::http::header::TRANSFER_ENCODING, v.parse().unwrap());
            }
            check_transfer_encoding(&h).is_ok()
        };
        assert!(te(&[]) && te(&["chunked"]) && te(&["CHUNKED "]));
        assert!(!te(&["gzip, chunked"]) && !te(&["chunked, chunked"]) && !te(&["chunked", "chunked"]));
        assert!(!te(&["gzip"]) && !te(&[""]) && !te(&["chunked,"]));
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        for bad in [
            "*",
            "",
            "x/y",
            "/%",
            "/%2",
            "/%zz",
            "/a%00b",
            "/%0a",
            "/%7f",
            "/%ff",
            "/%c0%ae",
            "/%ed%a0%80",
            "/..",
            "/a/../b",
            "/./a",
            "/a/.",
            "/%2e%2e/x",
            "/%2E/x",
            "/a%2f..%2fb",
            "/%2eplait/health",
            "/%2ewell-known/multiplexer/x",
        ] {
            assert_eq!(code(bad), Some("bad_path"), "{bad}");
        }
        assert_eq!(code(&format!("/{}", "a".repeat(MAX_PATH_BYTES))), Some("path_too_long"));
    }
}
