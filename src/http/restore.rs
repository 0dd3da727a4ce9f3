//! `POST /.plait/restore/{path}` with `{"version": ["id", ...]}`: a new version, child of the
//! current one, whose text equals the text at that version.
//!
//! Nothing is rewritten: the restore is an ordinary write (server-named events, the minimal
//! change from the current text), so subscribers see an ordinary update, history keeps every
//! version, and concurrent editors merge with it like with any other edit. The write is
//! parented on the version current when it is applied, so a write that lands between reading
//! the old text and writing it is undone too: the result is exactly the old text.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::hub::WriteRequest;
use crate::protocol::{MergeType, VersionSet};
use crate::text::{Change, Edit};

use super::query;
use super::resource::text_at;
use super::{reply, ApiError, AppState};

/// Largest restore request body: a list of ids, never large.
const MAX_BODY: usize = 64 << 10;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RestoreBody {
    version: Vec<String>,
}

/// The handler.
pub async fn restore(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let path = query::endpoint_target(&req, &[Method::POST])?;
    // The restorer's Peer, if it sent one, is the author the history listing shows.
    let peer = req.headers().get("peer").and_then(|v| v.to_str().ok()).map(str::to_string);
    let principal = super::access::grant_of(&req).as_ref().map(super::access::principal);
    let grant = super::access::grant_of(&req);
    let parsed: RestoreBody = query::read_json(req, MAX_BODY, state.settings.body_timeout).await?;
    let version = VersionSet::new(parsed.version);
    if state.hub.file(&path).await?.is_some() {
        return restore_file(&state, &path, &version, grant.as_ref(), peer).await;
    }
    let (old, _) = text_at(&state, &path, Some(version.clone())).await?;
    let edit = Edit {
        version: None,
        fallback_agent: super::resource::random_agent(),
        parents: None,
        change: Change::Snapshot(old),
    };
    let mut request = WriteRequest::new(edit, peer, MergeType::Simpleton);
    request.restored_from = Some(version.clone());
    request.principal = principal;
    let outcome = state.hub.write(&path, request).await?;
    let json = serde_json::json!({
        "restored": version.ids(),
        "version": outcome.current.ids(),
        "changed": outcome.applied.added > 0,
    });
    let mut res = (StatusCode::OK, [("content-type", "application/json")], json.to_string()).into_response();
    reply::set_version(res.headers_mut(), "version", &outcome.current);
    Ok(res)
}

/// A file restore: a new version (on top of the served one) with the old version's chunks.
async fn restore_file(
    state: &AppState,
    path: &str,
    version: &VersionSet,
    grant: Option<&crate::auth::Grant>,
    peer: Option<String>,
) -> Result<Response, ApiError> {
    let from = super::file::one_file_id(version)?;
    let author = super::file::author(grant, peer.as_deref());
    let outcome = state.hub.restore_file(path, &from, author, peer, super::file::now_ms()).await?;
    let json = serde_json::json!({
        "restored": version.ids(),
        "version": [outcome.applied.version.as_str()],
        "changed": true,
    });
    let mut res = (StatusCode::OK, [("content-type", "application/json")], json.to_string()).into_response();
    reply::set_version(res.headers_mut(), "version", &VersionSet::new([outcome.applied.version.to_string()]));
    Ok(res)
}
