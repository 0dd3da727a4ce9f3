//! A folder watch on the wire: a Braid `209` stream of one update per change (`Version` = the
//! change's cursor, `Parents` = the log position just before it, a JSON body), or server-sent events
//! (`id:` = the cursor, so a browser's `EventSource` resumes with `Last-Event-ID` by itself,
//! after the `retry:` delay the stream's first line asks for).
//!
//! Both start the same way: a watch resumed from a cursor sends the changes after it; a fresh
//! one, or one whose cursor the log cannot answer exactly (`reset`), first sends the folder's
//! listing (its first page; later pages come from `GET ?after=`) with the cursor the stream
//! continues from. Changes come from the hub's `FolderWatch`, which pulls a page of the log only
//! when the writer asks for the next chunk: a stalled client holds no queue.

use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;
use tokio::time::{Instant, Interval};

use crate::changes::Cursor;
use crate::hub::{FolderWatch, Hub, Logged, Scope, Start, Visible};
use crate::protocol::{encode_update, Update, UpdateContent, VersionSet};

use super::folder::{change_json, listing_json, DEFAULT_PAGE};
use super::headers::BraidHeaders;
use super::stream::{self, Chunk, Chunks};
use super::{reply, ApiError, AppState};

/// Changes written in one chunk at most.
const CHUNK_CHANGES: usize = 256;
/// Under sustained writes a watch writes at most one chunk per this long: the changes made
/// meanwhile go out together, one socket write instead of one per change (each delivery is a
/// wake-up and a `send`; with 100 watchers of `/` that, not the log, is what slows writes:
/// F1 in docs/BENCHMARKS.md). A change after a quiet spell goes out at once.
const FLUSH_GAP: Duration = Duration::from_millis(5);
/// Heartbeats of an event stream when the client asked for none (proxies close idle streams).
const EVENT_HEARTBEAT: Duration = Duration::from_secs(25);
/// The reconnection delay an event stream asks of `EventSource` (its first line, `retry:`):
/// browsers otherwise wait their own default (3 s in Chromium) before resuming with
/// `Last-Event-ID`, and a resume costs one log read, so a stream cut by a proxy or a restart
/// catches up a second later.
const EVENT_RETRY_MS: u64 = 1000;

/// How the stream is written (the index of its slot in `Logged::encoded`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wire {
    Braid = 0,
    Events = 1,
}

struct WatchFeed {
    hub: Hub,
    watch: FolderWatch,
    scope: Scope,
    visible: Visible,
    wire: Wire,
    /// How the watch started; taken by the first chunk.
    start: Option<Start>,
    /// The log's epoch (the first half of every cursor).
    epoch: u64,
    /// When changes were last written (see [`FLUSH_GAP`]).
    sent_at: Option<Instant>,
    beats: Option<Interval>,
    ended: Option<watch::Receiver<bool>>,
    shutdown: watch::Receiver<bool>,
}

impl WatchFeed {
    async fn next(&mut self) -> Option<Chunk> {
        if *self.shutdown.borrow() {
            return None;
        }
        if let Some(start) = self.start.take() {
            return self.first(start).await;
        }
        if let Some(due) = self.sent_at.map(|at| at + FLUSH_GAP).filter(|due| *due > Instant::now()) {
            tokio::select! {
                () = tokio::time::sleep_until(due) => {}
                () = stream::revoked(&mut self.ended) => return None,
                _ = self.shutdown.changed() => return None,
            }
        }
        let changes = tokio::select! {
            changes = self.watch.next(CHUNK_CHANGES) => Some(changes?),
            () = stream::tick(&mut self.beats) => None,
            () = stream::revoked(&mut self.ended) => return None,
            _ = self.shutdown.changed() => return None,
        };
        let Some(changes) = changes else {
            return Some(match self.wire {
                Wire::Braid => stream::heartbeat(),
                Wire::Events => Chunk::new(b": \n\n"),
            });
        };
        let changes = match changes {
            Ok(changes) => changes,
            Err(e) => {
                // The log could not be read: end the stream (the client resumes from its cursor).
                tracing::error!(error = %e, "a folder watch could not read the change log");
                return None;
            }
        };
        let (epoch, wire) = (self.epoch, self.wire);
        let mut out = Vec::new();
        for l in &changes {
            // Encoded once per change, shared by every watcher that reads it from memory.
            out.extend_from_slice(l.encoded[wire as usize].get_or_init(|| encode_change(wire, epoch, l)));
        }
        self.sent_at = Some(Instant::now());
        Some(Chunk::new(&out))
    }

    /// The first chunk: the listing for a fresh or reset watch; for a resumed one, the first
    /// changes (or, for events, a `ready` event naming the cursor).
    async fn first(&mut self, start: Start) -> Option<Chunk> {
        let cursor = self.watch.cursor();
        let mut out = Vec::new();
        if self.wire == Wire::Events {
            // Its own block: a `retry:` field takes effect as it is read, whatever follows.
            out.extend_from_slice(format!("retry: {EVENT_RETRY_MS}\n\n").as_bytes());
        }
        match (&self.scope, start) {
            (Scope::Folder { folder, recursive }, Start::Fresh | Start::Reset) => {
                let listing =
                    match self.hub.list_folder(folder, *recursive, None, DEFAULT_PAGE, self.visible.clone()).await {
                        Ok(listing) => listing,
                        Err(e) => {
                            tracing::error!(error = %e, "a folder watch could not list its folder");
                            return None;
                        }
                    };
                let page = &listing.page;
                let json = listing_json(folder, &page.entries, page.next.as_deref(), cursor, Some(start));
                match self.wire {
                    Wire::Braid => braid_update(cursor, VersionSet::default(), json, &mut out),
                    Wire::Events => event(Some("listing"), cursor, &json, &mut out),
                }
            }
            (_, start) => {
                if self.wire == Wire::Braid && start == Start::Resumed {
                    return Box::pin(self.next()).await;
                }
                let json = format!("{{\"cursor\":\"{cursor}\",\"reset\":{}}}", start == Start::Reset);
                event(Some(if start == Start::Reset { "reset" } else { "ready" }), cursor, json.as_bytes(), &mut out);
            }
        }
        Some(Chunk::new(&out))
    }
}

/// One change as `wire` writes it: a Braid update whose `Version` is its cursor and whose
/// `Parents` is the position just before it (the state a watcher of any scope had before this
/// change: what it did not see in between was outside its scope), or an event whose `id:` is its
/// cursor; the change JSON as the body.
fn encode_change(wire: Wire, epoch: u64, l: &Logged) -> Vec<u8> {
    let cursor = Cursor { epoch, seq: l.seq };
    let mut json = Vec::new();
    change_json(cursor, l, &mut json);
    let mut out = Vec::new();
    match wire {
        Wire::Braid => {
            let before = Cursor { epoch, seq: l.seq.saturating_sub(1) };
            braid_update(cursor, VersionSet::new([before.to_string()]), json, &mut out);
        }
        Wire::Events => event(None, cursor, &json, &mut out),
    }
    out
}

/// One Braid update: `Version` = the cursor, the JSON as its body.
fn braid_update(cursor: Cursor, parents: VersionSet, json: Vec<u8>, out: &mut Vec<u8>) {
    let body = String::from_utf8(json).unwrap_or_default();
    let update = Update {
        version: VersionSet::new([cursor.to_string()]),
        parents,
        content: UpdateContent::Snapshot(body),
        repr_digest: None,
    };
    encode_update(&update, "application/json", out);
}

/// One server-sent event. The JSON is one line today, but a line break in it would end the
/// field (and a bare CR ends a line too): each line gets its own `data:` field, which
/// `EventSource` joins back with LF, and CRs go (in valid JSON they are only whitespace).
fn event(name: Option<&str>, cursor: Cursor, json: &[u8], out: &mut Vec<u8>) {
    if let Some(name) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(format!("id: {cursor}\n").as_bytes());
    for line in json.strip_suffix(b"\n").unwrap_or(json).split(|b| *b == b'\n') {
        out.extend_from_slice(b"data: ");
        out.extend(line.iter().filter(|b| **b != b'\r'));
        out.push(b'\n');
    }
    out.push(b'\n');
}

#[allow(clippy::too_many_arguments)]
fn chunks(
    state: &AppState,
    scope: Scope,
    since: Option<Cursor>,
    visible: Visible,
    wire: Wire,
    heartbeat: Option<Duration>,
    ended: Option<watch::Receiver<bool>>,
) -> Result<Chunks, ApiError> {
    let (watch, start) = state.hub.watch_changes(scope.clone(), since, visible.clone())?;
    let epoch = watch.cursor().epoch;
    let beats = stream::beats(heartbeat);
    let feed = WatchFeed {
        hub: state.hub.clone(),
        watch,
        scope,
        visible,
        wire,
        start: Some(start),
        epoch,
        sent_at: None,
        beats,
        ended,
        shutdown: state.shutdown.clone(),
    };
    Ok(Box::pin(futures_util::stream::unfold(feed, |mut feed| async move {
        let chunk = feed.next().await?;
        Some((chunk, feed))
    })))
}

/// The body of a stream: written by the connection's own task after the head on HTTP/1.1
/// (`takeover`), else by hyper.
fn body(req: &Request, chunks: Chunks) -> axum::body::Body {
    match super::takeover::Takeover::of(req).filter(|_| req.method() == axum::http::Method::GET) {
        Some(takeover) => takeover.arm(chunks),
        None => stream::chunks_body(chunks),
    }
}

/// `GET` + `Subscribe` on a folder: the `209` watch.
pub(super) fn watch(
    state: &AppState,
    scope: Scope,
    since: Option<Cursor>,
    visible: Visible,
    req: &Request,
    braid: &BraidHeaders,
    ended: Option<watch::Receiver<bool>>,
) -> Result<Response, ApiError> {
    if braid.version.is_some() {
        return Err(ApiError::VersionWithSubscribe);
    }
    let heartbeat = braid.heartbeats.as_ref().map(|(secs, _)| Duration::from_secs_f64(*secs));
    let cursor = state.hub.cursor();
    let chunks = chunks(state, scope, since, visible, Wire::Braid, heartbeat, ended)?;
    Ok(super::resource::multiresponse(body(req, chunks), braid, |h| {
        reply::set_version(h, reply::CURRENT_VERSION, &VersionSet::new([cursor.to_string()]));
        reply::set(h, "content-type", "application/json");
    }))
}

/// `Accept: text/event-stream` on a folder or a document: server-sent events.
pub(super) fn events(
    state: &AppState,
    scope: Scope,
    since: Option<Cursor>,
    visible: Visible,
    req: &Request,
    ended: Option<watch::Receiver<bool>>,
) -> Result<Response, ApiError> {
    let chunks = chunks(state, scope, since, visible, Wire::Events, Some(EVENT_HEARTBEAT), ended)?;
    let mut res = (StatusCode::OK, body(req, chunks)).into_response();
    let h = res.headers_mut();
    reply::set(h, "content-type", "text/event-stream");
    reply::set(h, "cache-control", "no-cache, no-transform");
    // nginx: do not buffer the stream.
    reply::set(h, "x-accel-buffering", "no");
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (event type, last event id, data), as a browser reads the block.
    fn interpret(block: &str) -> (String, String, String) {
        let e = crate::protocol::sse::interpret(block).unwrap_or_else(|| panic!("no event in {block:?}"));
        (e.kind, e.id, e.data)
    }

    #[test]
    fn an_event_is_one_block_whose_data_is_the_json() {
        let cursor = Cursor { epoch: 0x00c0_ffee_00c0_ffee, seq: 42 };
        let mut out = Vec::new();
        event(Some("listing"), cursor, b"{\"a\":1}\n", &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "event: listing\nid: 00c0ffee00c0ffee-42\ndata: {\"a\":1}\n\n");
        let (kind, id, data) = interpret(&text);
        assert_eq!((kind.as_str(), id.as_str(), data.as_str()), ("listing", "00c0ffee00c0ffee-42", "{\"a\":1}"));
    }

    #[test]
    fn line_breaks_in_the_json_cannot_break_the_framing() {
        let cursor = Cursor { epoch: 1, seq: 7 };
        let json = "{\r\n  \"path\": \"/a\",\n  \"id\": \"x\"\r}";
        let mut out = Vec::new();
        event(None, cursor, json.as_bytes(), &mut out);
        let text = String::from_utf8(out).unwrap();
        let blocks: Vec<&str> = text.split("\n\n").filter(|b| !b.is_empty()).collect();
        assert_eq!(blocks.len(), 1, "{text:?}");
        assert!(!text.contains('\r'), "{text:?}");
        let (kind, id, data) = interpret(blocks[0]);
        assert_eq!((kind.as_str(), id.as_str()), ("message", "0000000000000001-7"));
        let parsed: serde_json::Value = serde_json::from_str(&data).unwrap();
        assert_eq!(parsed, serde_json::json!({"path": "/a", "id": "x"}));
    }
}
