//! `GET /.plait/history/{path}` for a file resource: its versions newest first (size, type,
//! author, time, digest, parents; deletes and siblings marked), with the resource's storage
//! figures, paged like a text document's history (`limit`, `before`, `next`, `next_url`).

use serde_json::{json, Value};

use crate::chunks::stats::Usage;
use crate::file::{FileDoc, FileVersion};

use super::history::{escape, rfc3339};
use super::ApiError;

/// One page of `file`'s history, starting after `before` (an id from an earlier page).
pub(super) fn page(
    path: &str,
    file: &FileDoc,
    usage: &Usage,
    limit: usize,
    before: Option<&str>,
) -> Result<Value, ApiError> {
    let all: Vec<&FileVersion> = file.history().collect();
    let end = match before {
        None => all.len(),
        Some(id) => all
            .iter()
            .position(|v| v.id.as_str() == id)
            .ok_or_else(|| ApiError::Hub(crate::hub::HubError::NotListed(id.to_string())))?,
    };
    let start = end.saturating_sub(limit);
    let heads = file.heads();
    let served = file.winner().map(|w| w.id.clone());
    let versions: Vec<Value> = all[start..end]
        .iter()
        .rev()
        .map(|v| {
            let mut entry = json!({
                "version": v.id.as_str(),
                "parents": v.parents.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
                "received": rfc3339(v.time_ms),
                "received_ms": v.time_ms,
                "author": v.author,
                "deleted": v.content.is_none(),
                "head": heads.contains(&v.id),
                "served": served.as_ref() == Some(&v.id),
            });
            if let Some(c) = &v.content {
                entry["size"] = json!(c.size);
                entry["content_type"] = json!(c.content_type);
                entry["sha256"] = json!(hex::encode(c.sha256));
                entry["chunks"] = json!(c.chunks.len());
            }
            entry
        })
        .collect();
    let next = (start > 0).then(|| format!("\"{}\"", all[start].id.as_str()));
    let next_url = next.as_ref().map(|n| format!("/.plait/history{path}?limit={limit}&before={}", escape(n)));
    Ok(json!({
        "path": path,
        "kind": "file",
        "current": heads.iter().map(|h| h.as_str()).collect::<Vec<_>>(),
        "served": served.as_ref().map(|s| s.as_str()),
        "conflict": heads.len() > 1,
        "stored_bytes": usage.stored_bytes,
        "logical_bytes": usage.logical_bytes,
        "dedupe_ratio": usage.dedupe_ratio(),
        "versions": versions,
        "next": next,
        "next_url": next_url,
    }))
}
