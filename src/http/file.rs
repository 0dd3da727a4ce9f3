//! File resources over HTTP: which kind a write makes, file `PUT` (the body streamed into the
//! chunk store), `GET`/`HEAD` with `Range`/`If-Range` and `Version`, and `DELETE` (a
//! tombstone). Subscriptions to files are in `file_stream`.
//!
//! The kind rule (spec/CONFORMANCE.md "Text or file", `protocol::kind`): an existing resource
//! keeps its kind; a first write is a file when its headers say so (`Merge-Type: aww`,
//! `Version-Type: wallclockish`, a non-text `Content-Type`), else when its bytes are not text
//! (not UTF-8, or holding a NUL). Patches (`Content-Range`, `Patches`) are always text edits.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::BodyExt;

use crate::file::{FileChange, FileDoc, FileVersion, FileVersionId, FileWrite};
use crate::hub::{FileWriteOutcome, HubError};
use crate::protocol::byte_range::{self, RangeAnswer};
use crate::protocol::kind::{file_content_type, kind_from_headers, HeaderVerdict, Kind, Sniffer};
use crate::protocol::{self, VersionSet};

use super::headers::BraidHeaders;
use super::reply;
use super::{file_stream, ApiError, AppState};

/// How a write is routed.
pub(super) enum Route {
    /// A text edit; the text path reads the body.
    Text(Body),
    /// A text edit whose body was read to find out that it is text.
    TextRead(Vec<u8>),
    /// A file version: `prefix` (bytes already read) then the rest of `body`.
    File { prefix: Vec<u8>, body: Body },
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Decides whether a `PUT`/`POST`/`PATCH` writes text or a file, reading as little of the body
/// as it takes: the headers, the resource's kind, else the bytes up to the first one that is not
/// text (at most the text limit, `--max-body-bytes`).
pub(super) async fn route(
    state: &AppState,
    path: &str,
    braid: &BraidHeaders,
    headers: &HeaderMap,
    body: Body,
) -> Result<Route, ApiError> {
    if braid.content_range.is_some() || braid.patch_count.is_some() {
        return Ok(Route::Text(body));
    }
    // Larger than any text and any file: refused before a byte is read.
    let declared = super::resource::declared_length(headers);
    let largest = state.hub.file_limit().max(state.settings.max_body_bytes as u64);
    if declared.is_some_and(|n| n > largest) {
        return Err(ApiError::BodyTooLarge { limit: usize::try_from(largest).unwrap_or(usize::MAX) });
    }
    let merge_type = if braid.aww { Some("aww") } else { header_str(headers, "merge-type") };
    let verdict =
        kind_from_headers(header_str(headers, "content-type"), merge_type, header_str(headers, "version-type"));
    let existing = state.hub.kind(path).await?;
    let mismatch = |existing, written| {
        ApiError::Hub(HubError::Doc(crate::document::DocError::KindMismatch {
            path: path.to_string(),
            existing,
            written,
        }))
    };
    match (existing, verdict) {
        (Some(Kind::File), HeaderVerdict::Is(Kind::Text)) => Err(mismatch(Kind::File, Kind::Text)),
        (Some(Kind::File), _) | (None, HeaderVerdict::Is(Kind::File)) => Ok(Route::File { prefix: Vec::new(), body }),
        (Some(Kind::Text), HeaderVerdict::Is(Kind::File)) => Err(mismatch(Kind::Text, Kind::File)),
        (_, HeaderVerdict::Is(Kind::Text)) => Ok(Route::Text(body)),
        (_, HeaderVerdict::TextIfTheBytesAre) => {
            let limit = state.settings.max_body_bytes;
            match sniff(body, limit, state.settings.body_timeout).await? {
                Sniffed::Text(bytes) => Ok(Route::TextRead(bytes)),
                Sniffed::Binary { .. } if existing == Some(Kind::Text) => Err(mismatch(Kind::Text, Kind::File)),
                Sniffed::Binary { prefix, rest } => Ok(Route::File { prefix, body: rest }),
            }
        }
    }
}

enum Sniffed {
    /// The whole body, and it is text.
    Text(Vec<u8>),
    /// Not text: the bytes read so far and the rest.
    Binary { prefix: Vec<u8>, rest: Body },
}

/// Reads the body until it is known not to be text, or to its end (at most `limit` bytes).
async fn sniff(mut body: Body, limit: usize, timeout: std::time::Duration) -> Result<Sniffed, ApiError> {
    let mut sniffer = Sniffer::default();
    let mut read = Vec::new();
    loop {
        let frame = next_frame(&mut body, timeout).await?;
        let Some(data) = frame else { break };
        sniffer.feed(&data);
        read.extend_from_slice(&data);
        if sniffer.is_binary() {
            return Ok(Sniffed::Binary { prefix: read, rest: body });
        }
        if read.len() > limit {
            return Err(ApiError::BodyTooLarge { limit });
        }
    }
    match sniffer.finish() {
        Kind::Text => Ok(Sniffed::Text(read)),
        Kind::File => Ok(Sniffed::Binary { prefix: read, rest: Body::empty() }),
    }
}

/// The next data frame of `body` (trailers skipped), None at its end; each frame must arrive
/// within `timeout` (an idle limit: a large upload may take as long as it keeps sending).
pub(super) async fn next_frame(body: &mut Body, timeout: std::time::Duration) -> Result<Option<Bytes>, ApiError> {
    loop {
        let frame = tokio::time::timeout(timeout, body.frame())
            .await
            .map_err(|_| ApiError::BodyTimeout { secs: timeout.as_secs() })?;
        match frame {
            None => return Ok(None),
            Some(Err(e)) => return Err(ApiError::BadBody(e.to_string())),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            }
        }
    }
}

/// The file version ids of a `Version` or `Parents` header.
pub(super) fn file_ids(v: &VersionSet) -> Result<Vec<FileVersionId>, ApiError> {
    v.ids().iter().map(|id| FileVersionId::parse(id).map_err(file_error)).collect()
}

/// The one file version id a `Version` header names (any other count: `multiple_version_ids`).
pub(super) fn one_file_id(v: &VersionSet) -> Result<FileVersionId, ApiError> {
    match v.ids() {
        [one] => FileVersionId::parse(one).map_err(file_error),
        _ => Err(ApiError::MultipleVersionIds(v.to_header())),
    }
}

pub(super) fn file_error(e: crate::file::FileError) -> ApiError {
    ApiError::Hub(HubError::Doc(crate::document::DocError::File(e)))
}

pub(super) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Who wrote: the credential's label and id, else the `Peer`.
pub(super) fn author(grant: Option<&crate::auth::Grant>, peer: Option<&str>) -> Option<String> {
    match grant {
        Some(g) => {
            let p = super::access::principal(g);
            Some(format!("{} {} ({})", p.kind, p.id, p.label))
        }
        None => peer.map(str::to_string),
    }
}

/// A file `PUT` (or `POST`/`PATCH` with a whole body): streams the body into the chunk store,
/// then commits the version; answered once both are durable.
pub(super) async fn put(
    state: &AppState,
    path: &str,
    braid: BraidHeaders,
    headers: &HeaderMap,
    grant: Option<&crate::auth::Grant>,
    prefix: Vec<u8>,
    mut body: Body,
) -> Result<Response, ApiError> {
    let version = match &braid.version {
        Some(v) if v.ids().len() > 1 => return Err(ApiError::MultipleVersionIds(v.to_header())),
        Some(v) => file_ids(v)?.pop(),
        None => None,
    };
    let parents = braid.parents.as_ref().map(file_ids).transpose()?;
    let limit = state.hub.file_limit();
    if super::resource::declared_length(headers).is_some_and(|n| n > limit) {
        return Err(HubError::FileTooLarge { limit }.into());
    }
    let content_type = file_content_type(header_str(headers, "content-type"), &prefix);
    let mut ingest = state.hub.ingest();
    state.hub.count_body_bytes(prefix.len());
    ingest.push(Bytes::from(prefix)).await?;
    while let Some(data) = next_frame(&mut body, state.settings.body_timeout).await? {
        state.hub.count_body_bytes(data.len());
        ingest.push(data).await?;
    }
    let ingested = ingest.finish(braid.repr_digest).await?;
    let write = FileWrite {
        version,
        parents,
        change: FileChange::Delete,
        author: author(grant, braid.peer.as_deref()),
        now_ms: now_ms(),
    };
    let outcome = state.hub.write_file(path, write, Some((ingested, content_type)), braid.peer).await?;
    Ok(written(&outcome))
}

/// A file `DELETE`: a tombstone on top of every head (the history stays).
pub(super) async fn delete(
    state: &AppState,
    path: &str,
    braid: BraidHeaders,
    grant: Option<&crate::auth::Grant>,
) -> Result<Response, ApiError> {
    let version = match &braid.version {
        Some(v) => file_ids(v)?.pop(),
        None => None,
    };
    let write = FileWrite {
        version,
        parents: None,
        change: FileChange::Delete,
        author: author(grant, braid.peer.as_deref()),
        now_ms: now_ms(),
    };
    let outcome = state.hub.write_file(path, write, None, braid.peer).await?;
    Ok(written(&outcome))
}

/// The answer to an accepted file write: its version, the heads, and whether it lost.
pub(super) fn written(outcome: &FileWriteOutcome) -> Response {
    let applied = &outcome.applied;
    let mut res = StatusCode::OK.into_response();
    let h = res.headers_mut();
    reply::set_version(h, reply::VERSION, &VersionSet::new([applied.version.to_string()]));
    let heads = VersionSet::new(applied.heads.iter().map(|id| id.to_string()));
    reply::set_version(h, reply::CURRENT_VERSION, &heads);
    h.insert("merge-type", HeaderValue::from_static("aww"));
    if applied.heads.len() > 1 {
        reply::set_version(h, "conflict", &heads);
    }
    if applied.lost {
        // The write is kept (a sibling), but a GET serves another version.
        if let Some(winner) = applied.heads.first() {
            reply::set_version(h, "served-version", &VersionSet::new([winner.to_string()]));
        }
    }
    res
}

/// What a file read needs to know about the reader.
pub(super) struct FileReader {
    pub with_body: bool,
    pub private: bool,
    pub editable: bool,
}

/// `GET`/`HEAD` of a file: the served version, or the one `Version` names; `Range`/`If-Range`.
pub(super) async fn read(
    state: &AppState,
    path: &str,
    braid: &BraidHeaders,
    headers: &HeaderMap,
    file: Arc<FileDoc>,
    reader: FileReader,
) -> Result<Response, ApiError> {
    let pinned = braid.version.is_some();
    let version: &FileVersion = match &braid.version {
        Some(v) => {
            let id = one_file_id(v)?;
            file.version(&id).ok_or_else(|| unknown(v))?
        }
        None => file.winner().ok_or_else(|| unknown(&VersionSet::root()))?,
    };
    let heads = VersionSet::new(file.heads().iter().map(|id| id.to_string()));
    let Some(content) = &version.content else {
        let mut res = ApiError::FileDeleted { path: path.to_string(), version: version.id.to_string() }.into_response();
        blob_headers(res.headers_mut(), version, &heads, reader.editable);
        return Ok(res);
    };
    let etag = protocol::etag(&VersionSet::new([version.id.to_string()]));
    let not_modified = headers.get(header::IF_NONE_MATCH).is_some_and(|v| protocol::if_none_match(v.as_bytes(), &etag));
    let if_range = headers.get(header::IF_RANGE).map(|v| v.as_bytes() == etag.as_bytes());
    let range = header_str(headers, "range");
    let answer = byte_range::answer(range, content.size, if_range.unwrap_or(true));
    let (status, start, end) = match answer {
        _ if not_modified => (StatusCode::NOT_MODIFIED, 0, 0),
        RangeAnswer::Whole => (StatusCode::OK, 0, content.size),
        RangeAnswer::Partial { start, end, .. } => (StatusCode::PARTIAL_CONTENT, start, end),
        RangeAnswer::Unsatisfiable { len } => {
            return Err(ApiError::RangeNotSatisfiable {
                range: range.unwrap_or_default().chars().take(100).collect(),
                len,
            })
        }
    };
    let body = if reader.with_body && status != StatusCode::NOT_MODIFIED {
        file_stream::bytes(state.hub.clone(), content.chunks.clone(), start, end)
    } else {
        Body::empty()
    };
    let mut res = Response::new(body);
    *res.status_mut() = status;
    let h = res.headers_mut();
    blob_headers(h, version, &heads, reader.editable);
    reply::set(h, header::ETAG, &etag);
    let immutable =
        if reader.private { super::resource::PRIVATE_IMMUTABLE } else { "public, max-age=31536000, immutable" };
    reply::set(h, header::CACHE_CONTROL, if pinned { immutable } else { "no-cache" });
    reply::set(h, reply::REPR_DIGEST, &protocol::repr_digest_sha256(&content.sha256));
    reply::set(h, header::ACCEPT_RANGES, "bytes");
    if status != StatusCode::NOT_MODIFIED {
        reply::set(h, header::CONTENT_TYPE, &content.content_type);
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    }
    if let Some(cr) = answer.content_range().filter(|_| status == StatusCode::PARTIAL_CONTENT) {
        reply::set(h, header::CONTENT_RANGE, &cr);
    }
    Ok(res)
}

pub(super) fn unknown(v: &VersionSet) -> ApiError {
    ApiError::Hub(HubError::Doc(crate::document::DocError::UnknownVersion(v.clone())))
}

/// The headers of every file response: version, heads, conflict, and braid-blob's merge type
/// (braidfs tells blobs from text by it).
fn blob_headers(h: &mut HeaderMap, version: &FileVersion, heads: &VersionSet, editable: bool) {
    reply::set_version(h, reply::VERSION, &VersionSet::new([version.id.to_string()]));
    reply::set_version(h, reply::CURRENT_VERSION, heads);
    if heads.ids().len() > 1 {
        reply::set_version(h, "conflict", heads);
    }
    h.insert("merge-type", HeaderValue::from_static("aww"));
    if version.id.is_wallclockish() {
        h.insert("version-type", HeaderValue::from_static("wallclockish"));
    }
    h.insert("accept-subscribe", HeaderValue::from_static("true"));
    h.insert("editable", HeaderValue::from_static(if editable { "true" } else { "false" }));
}
