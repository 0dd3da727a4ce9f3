//! `GET /.plait/history/{path}?limit=N&before=V`: the document's writes, newest first, one
//! page at a time; and `/.plait/checkpoints/{path}`: naming versions.
//!
//! A page carries `next`, the value to pass as `before` for the next (older) page, and
//! `next_url`, the whole link, so curl users can follow it without building URLs.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::hub::{Checkpoint, HistoryPage};
use crate::protocol::VersionSet;

use super::query;
use super::{reply, ApiError, AppState};

/// Entries per page when `limit` is not given.
const DEFAULT_LIMIT: usize = 50;
/// The largest page.
const MAX_LIMIT: usize = 1000;
/// Largest checkpoint request body.
const MAX_BODY: usize = 64 << 10;

/// `GET /.plait/history/{path}`.
pub async fn history(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let path = query::endpoint_target(&req, &[Method::GET, Method::HEAD])?;
    let (mut limit, mut before) = (DEFAULT_LIMIT, None);
    for (key, value) in query::params(&req)? {
        match key.as_str() {
            "limit" => {
                limit = value.parse().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
                    ApiError::BadQuery(format!("limit must be a whole number from 1 to {MAX_LIMIT}, not {value:?}"))
                })?;
            }
            "before" => {
                let version = query::parse_version(&value).map_err(|e| ApiError::BadQuery(format!("before: {e}")))?;
                match version.ids() {
                    [one] => before = Some(one.clone()),
                    _ => return Err(ApiError::BadQuery("before must be one version id from a history page".into())),
                }
            }
            _ => return Err(ApiError::BadQuery(format!("unknown parameter {key:?}; use limit and before"))),
        }
    }
    if let Some(file) = state.hub.file(&path).await? {
        let usage = state.hub.file_usage(&path)?;
        let body = super::file_history::page(&path, &file, &usage, limit, before.as_deref())?;
        return Ok((
            StatusCode::OK,
            [("content-type", "application/json"), ("cache-control", "no-cache")],
            body.to_string(),
        )
            .into_response());
    }
    let page = state.hub.history(&path, before, limit).await?;
    let body = page_json(&path, limit, &page);
    let mut res = (StatusCode::OK, [("content-type", "application/json")], body.to_string()).into_response();
    reply::set_version(res.headers_mut(), "current-version", &page.current);
    if let Some(h) = &page.horizon {
        reply::set_version(res.headers_mut(), "merge-horizon", &h.version_set());
    }
    reply::set(res.headers_mut(), "cache-control", "no-cache");
    Ok(res)
}

fn page_json(path: &str, limit: usize, page: &HistoryPage) -> Value {
    let versions: Vec<Value> = page
        .entries
        .iter()
        .map(|numbered| {
            let e = &numbered.entry;
            let names: Vec<&str> =
                page.checkpoints.iter().filter(|c| c.version == e.version).map(|c| c.name.as_str()).collect();
            let mut v = json!({
                "version": e.version,
                "parents": e.parents,
                "received": rfc3339(e.received_ms),
                "received_ms": e.received_ms,
                "author": e.author,
                "inserted": e.inserted,
                "deleted": e.deleted,
                "checkpoints": names,
            });
            if let Some(from) = &e.restored_from {
                v["restored_from"] = json!(from);
            }
            v
        })
        .collect();
    let next = page.next.as_ref().map(|id| VersionSet::new([id.clone()]).to_header());
    let next_url = next.as_ref().map(|n| format!("/.plait/history{path}?limit={limit}&before={}", escape(n)));
    json!({
        "path": path,
        "current": page.current.ids(),
        "stored_bytes": page.stored_bytes,
        "document_bytes": page.stored_bytes.saturating_sub(page.listing_bytes),
        "listing_bytes": page.listing_bytes,
        "horizon": page.horizon.as_ref().map(|h| json!({
            "version": h.version,
            "replaces": h.replaces,
            "compactions": h.generation,
            "compacted": rfc3339(h.compacted_ms),
        })),
        "versions": versions,
        "checkpoints": page.checkpoints.iter().map(checkpoint_json).collect::<Vec<_>>(),
        "next": next,
        "next_url": next_url,
    })
}

fn checkpoint_json(c: &Checkpoint) -> Value {
    json!({ "name": c.name, "version": c.version, "created": rfc3339(c.created_ms), "created_ms": c.created_ms })
}

/// The body of `POST /.plait/checkpoints/{path}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointBody {
    name: String,
    /// Defaults to the current version.
    version: Option<Vec<String>>,
}

/// `/.plait/checkpoints/{path}`: GET lists, POST names a version, DELETE `?name=` removes.
pub async fn checkpoints(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let allowed = [Method::GET, Method::HEAD, Method::POST, Method::DELETE];
    let path = query::endpoint_target(&req, &allowed)?;
    let method = req.method().clone();
    if state.hub.file(&path).await?.is_some() {
        // A file keeps every version until retention drops it; checkpoints name text versions.
        return Err(ApiError::NotText(path));
    }
    if method == Method::GET || method == Method::HEAD {
        let list = state.hub.checkpoints(&path).await?;
        let body = json!({ "path": path, "checkpoints": list.iter().map(checkpoint_json).collect::<Vec<_>>() });
        return Ok((StatusCode::OK, [("content-type", "application/json")], body.to_string()).into_response());
    }
    if method == Method::DELETE {
        let name = query::params(&req)?.into_iter().find(|(k, _)| k == "name").map(|(_, v)| v);
        let name = name.ok_or_else(|| ApiError::BadQuery("say which checkpoint: ?name=...".into()))?;
        state.hub.delete_checkpoint(&path, name).await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let body: CheckpointBody = query::read_json(req, MAX_BODY, state.settings.body_timeout).await?;
    let (checkpoint, created) =
        state.hub.create_checkpoint(&path, body.name, body.version.map(VersionSet::new)).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, [("content-type", "application/json")], checkpoint_json(&checkpoint).to_string()).into_response())
}

/// Percent-encodes everything but unreserved characters, for a query value.
pub(super) fn escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `2026-11-25T07:00:00.123Z` for milliseconds since the Unix epoch (UTC, proleptic
/// Gregorian; Howard Hinnant's days-to-civil algorithm).
pub(super) fn rfc3339(ms: u64) -> String {
    let (days, rem) = ((ms / 86_400_000) as i64, ms % 86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_escapes() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_590_642_123), "2026-11-25T07:10:42.123Z");
        assert_eq!(escape("\"a-1\""), "%22a-1%22");
    }
}
