//! Folders over HTTP (paths ending in `/`): `GET` lists the folder (JSON, an HTML page built
//! by `folder_page`, or plain lines), `?since=` (with `?wait=`: a long poll) answers the changes after a cursor,
//! `Subscribe` watches it as a `209` stream, and `Accept: text/event-stream` as server-sent
//! events (`folder_stream`). docs/FOLDERS.md is the user's guide.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::auth::{Action, Grant};
use crate::changes::{folder_problem, Cursor, Entry, ResourceKind};
use crate::hub::{Logged, Scope, Start, Visible};

use super::headers::BraidHeaders;
use super::history::{escape as query_escape, rfc3339};
use super::{reply, ApiError, AppState};

/// Entries per listing page unless `?limit=` says otherwise, and the most it may ask.
pub(super) const DEFAULT_PAGE: usize = 1000;
const MAX_PAGE: usize = 10_000;

/// What a folder request asks, from its query and headers.
pub(super) struct FolderQuery {
    pub recursive: bool,
    pub limit: usize,
    pub after: Option<String>,
    /// The cursor to start after: `?since=`, else `Parents`, else `Last-Event-ID`.
    pub since: Option<Cursor>,
    /// A long poll's wait (`?wait=` seconds, capped by `--max-poll-secs`).
    pub wait: Option<Duration>,
}

fn flag(key: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "" | "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        _ => Err(ApiError::BadQuery(format!("{key}: expected 1 or 0, got {value:?}"))),
    }
}

fn cursor(text: &str) -> Result<Cursor, ApiError> {
    Cursor::parse(text).map_err(|e| ApiError::BadCursor(e.to_string()))
}

impl FolderQuery {
    pub(super) fn parse(req: &Request, braid: &BraidHeaders, max_wait: Duration) -> Result<FolderQuery, ApiError> {
        let mut q = FolderQuery { recursive: false, limit: DEFAULT_PAGE, after: None, since: None, wait: None };
        for (key, value) in super::query::params(req)? {
            match key.as_str() {
                "recursive" => q.recursive = flag(&key, &value)?,
                "limit" => {
                    q.limit = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_PAGE).contains(n))
                        .ok_or_else(|| ApiError::BadQuery(format!("limit: a number from 1 to {MAX_PAGE}")))?;
                }
                "after" => q.after = Some(value),
                "since" => q.since = Some(cursor(&value)?),
                "wait" => {
                    let secs = value
                        .parse::<f64>()
                        .ok()
                        .filter(|s| s.is_finite() && *s >= 0.0)
                        .ok_or_else(|| ApiError::BadQuery("wait: seconds, a number >= 0".into()))?;
                    q.wait = Some(Duration::from_secs_f64(secs.min(max_wait.as_secs_f64())));
                }
                _ => return Err(ApiError::BadQuery(format!("{key}: unknown parameter of a folder"))),
            }
        }
        if q.since.is_none() {
            if let Some(parents) = &braid.parents {
                match parents.ids() {
                    [one] => q.since = Some(cursor(one)?),
                    [] => {}
                    _ => return Err(ApiError::BadCursor("Parents names one cursor on a folder".into())),
                }
            }
        }
        if q.since.is_none() {
            if let Some(id) = req.headers().get("last-event-id") {
                let id = id.to_str().map_err(|_| ApiError::BadCursor("Last-Event-ID is not text".into()))?;
                if !id.is_empty() {
                    q.since = Some(cursor(id)?);
                }
            }
        }
        if q.wait.is_some() && q.since.is_none() {
            return Err(ApiError::BadCursor("a long poll (?wait=) needs a cursor (?since=)".into()));
        }
        Ok(q)
    }
}

/// What the caller may see: everything with access control off, else what its grant reads.
pub(super) fn visible(grant: Option<&Grant>) -> Visible {
    match grant.cloned() {
        None => Arc::new(|_: &str| true),
        Some(g) => Arc::new(
            move |p: &str| {
                if p.ends_with('/') {
                    g.allows_under(Action::Read, p)
                } else {
                    g.allows(Action::Read, p)
                }
            },
        ),
    }
}

/// Whether the client asked for server-sent events.
pub(super) fn wants_events(headers: &HeaderMap) -> bool {
    headers
        .get_all("accept")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case("text/event-stream"))
}

/// A request for a folder: `path` ends with `/`.
pub(super) async fn route(
    state: &AppState,
    path: &str,
    braid: BraidHeaders,
    req: Request,
    grant: Option<Grant>,
) -> Result<Response, ApiError> {
    match *req.method() {
        Method::GET | Method::HEAD => {}
        Method::OPTIONS => {
            let mut res = StatusCode::OK.into_response();
            reply::set(res.headers_mut(), "allow", "GET, HEAD, OPTIONS");
            return Ok(res);
        }
        ref other => return Err(ApiError::MethodNotAllowed(format!("{other} on a folder (a path ending in /)"))),
    }
    if let Some(problem) = folder_problem(path) {
        return Err(ApiError::BadFolder(problem));
    }
    let q = FolderQuery::parse(&req, &braid, state.settings.max_poll)?;
    let visible = visible(grant.as_ref());
    let ended = grant.as_ref().and_then(Grant::ended);
    let scope = Scope::Folder { folder: path.to_string(), recursive: q.recursive };
    if wants_events(req.headers()) {
        return super::folder_stream::events(state, scope, q.since, visible, &req, ended);
    }
    if braid.subscribe.is_some() {
        return super::folder_stream::watch(state, scope, q.since, visible, &req, &braid, ended);
    }
    if let Some(since) = q.since {
        return changes(state, scope, since, q.wait, q.limit, visible).await;
    }
    let listing = state.hub.list_folder(path, q.recursive, q.after.as_deref(), q.limit, visible).await?;
    if !wants_json(req.headers()) && super::editor::wants_page(req.headers()) {
        let mut res = super::folder_page::listing(
            path,
            &listing.page.entries,
            listing.page.next.as_deref(),
            q.recursive,
            listing.cursor,
            state.hub.direct_origin(),
        );
        reply::set(res.headers_mut(), "plait-cursor", &listing.cursor.to_string());
        return Ok(res);
    }
    let (body, content_type) = if wants_json(req.headers()) {
        (
            listing_json(path, &listing.page.entries, listing.page.next.as_deref(), listing.cursor, None),
            "application/json",
        )
    } else {
        (
            listing_text(&listing.page.entries, path, listing.page.next.as_deref(), listing.cursor),
            "text/plain; charset=utf-8",
        )
    };
    let mut res = (StatusCode::OK, body).into_response();
    reply::set(res.headers_mut(), "content-type", content_type);
    reply::set(res.headers_mut(), "cache-control", "no-cache");
    reply::set(res.headers_mut(), "plait-cursor", &listing.cursor.to_string());
    Ok(res)
}

fn wants_json(headers: &HeaderMap) -> bool {
    let accept = headers.get("accept").and_then(|v| v.to_str().ok()).unwrap_or_default();
    accept.split(',').any(|t| {
        let t = t.split(';').next().unwrap_or_default().trim();
        t.eq_ignore_ascii_case("application/json") || t.to_ascii_lowercase().ends_with("+json")
    })
}

/// The changes after `since` (waiting up to `wait` for the first), as JSON.
async fn changes(
    state: &AppState,
    scope: Scope,
    since: Cursor,
    wait: Option<Duration>,
    limit: usize,
    visible: Visible,
) -> Result<Response, ApiError> {
    let (mut watch, start) = state.hub.watch_changes(scope, Some(since), visible)?;
    let mut found = Vec::new();
    if start == Start::Resumed {
        found = watch.ready(limit)?;
        if let (true, Some(wait)) = (found.is_empty(), wait.filter(|w| !w.is_zero())) {
            let mut shutdown = state.shutdown.clone();
            tokio::select! {
                true = watch.changed() => found = watch.ready(limit)?,
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.wait_for(|s| *s) => {}
            }
        }
    }
    let cursor = watch.cursor();
    let mut body = format!(
        "{{\"cursor\":\"{cursor}\",\"reset\":{},\"more\":{},\"changes\":[",
        start == Start::Reset,
        found.len() >= limit
    )
    .into_bytes();
    for (i, l) in found.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        change_json(Cursor { epoch: cursor.epoch, seq: l.seq }, l, &mut body);
    }
    body.extend_from_slice(b"]}\n");
    let mut res = (StatusCode::OK, body).into_response();
    reply::set(res.headers_mut(), "content-type", "application/json");
    reply::set(res.headers_mut(), "cache-control", "no-store");
    reply::set(res.headers_mut(), "plait-cursor", &cursor.to_string());
    Ok(res)
}

/// A change record as JSON with its cursor first: `{"cursor":"…",` + the stored record's fields.
pub(super) fn change_json(cursor: Cursor, l: &Logged, out: &mut Vec<u8>) {
    let _ = write!(Sink(out), "{{\"cursor\":\"{cursor}\"");
    match l.record.strip_prefix(b"{") {
        Some(rest) if rest.first() != Some(&b'}') => {
            out.push(b',');
            out.extend_from_slice(rest);
        }
        _ => out.push(b'}'),
    }
}

/// `write!` into a byte vector.
struct Sink<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Sink<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// The entry's name inside `folder` (a sub-folder's ends with `/`).
pub(super) fn name<'a>(folder: &str, entry: &'a Entry) -> &'a str {
    let path = entry.path();
    path.get(folder.len()..).unwrap_or(path)
}

/// One listing entry as JSON, borrowed from the entry (a page is written entry by entry, never
/// built as one tree: 10,000 entries as `serde_json::Value`s cost tens of MiB).
#[derive(serde::Serialize)]
struct EntryJson<'a> {
    name: &'a str,
    path: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    modified_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    modified: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conflict: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    author: Option<&'a str>,
}

fn entry_json<'a>(folder: &str, e: &'a Entry) -> EntryJson<'a> {
    let name = name(folder, e);
    match e {
        Entry::Folder(path) => EntryJson {
            name,
            path,
            kind: "folder",
            size: None,
            version: None,
            modified_ms: None,
            modified: None,
            conflict: None,
            content_type: None,
            author: None,
        },
        Entry::Resource(c) => EntryJson {
            name,
            path: &c.path,
            kind: kind_name(c.kind),
            size: Some(c.size),
            version: Some(&c.version),
            modified_ms: Some(c.time_ms),
            modified: Some(rfc3339(c.time_ms)),
            conflict: Some(c.conflict),
            content_type: c.content_type.as_deref(),
            author: c.author.as_deref(),
        },
    }
}

pub(super) fn kind_name(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Text => "text",
        ResourceKind::File => "file",
    }
}

/// The JSON listing (also the first update of a watch: `start` says how it started).
pub(super) fn listing_json(
    folder: &str,
    entries: &[Entry],
    next: Option<&str>,
    cursor: Cursor,
    start: Option<Start>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + entries.len() * 256);
    out.extend_from_slice(b"{\"folder\":");
    json(&mut out, &folder);
    out.extend_from_slice(format!(",\"cursor\":\"{cursor}\",\"entries\":[").as_bytes());
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json(&mut out, &entry_json(folder, e));
    }
    out.extend_from_slice(b"],\"next\":");
    json(&mut out, &next);
    if let Some(start) = start {
        out.extend_from_slice(format!(",\"reset\":{}", start == Start::Reset).as_bytes());
    }
    out.extend_from_slice(b"}\n");
    out
}

/// Appends `v` as JSON (plain data into memory: it cannot fail).
fn json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    let _ = serde_json::to_writer(out, v);
}

/// Plain lines for curl: a header comment, then `kind<TAB>size<TAB>modified<TAB>name`.
fn listing_text(entries: &[Entry], folder: &str, next: Option<&str>, cursor: Cursor) -> Vec<u8> {
    let mut out = format!("# {folder} (cursor {cursor})\n");
    for e in entries {
        match e {
            Entry::Folder(_) => {
                let _ = writeln!(out, "folder\t-\t-\t{}", name(folder, e));
            }
            Entry::Resource(c) => {
                let conflict = if c.conflict { "\t(conflict)" } else { "" };
                let _ = writeln!(
                    out,
                    "{}\t{}\t{}\t{}{conflict}",
                    kind_name(c.kind),
                    c.size,
                    rfc3339(c.time_ms),
                    name(folder, e)
                );
            }
        }
    }
    if let Some(next) = next {
        let _ = writeln!(out, "# more: ?after={}", query_escape(next));
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_records_get_their_cursor_first() {
        let l = Logged::new(7, "/a".into(), false, br#"{"path":"/a"}"#.to_vec());
        let mut out = Vec::new();
        change_json(Cursor { epoch: 1, seq: 7 }, &l, &mut out);
        assert_eq!(out, br#"{"cursor":"0000000000000001-7","path":"/a"}"#);
    }
}
