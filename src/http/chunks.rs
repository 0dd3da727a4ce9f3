//! The delta exchange over HTTP, and the chunk store's figures and collector:
//! - `GET /.plait/chunks`: the chunking parameters (clients cut their files the same way) and
//!   the server's storage figures, and the bytes received since the start (chunks, file bodies);
//! - `GET /.plait/chunks-of/{path}` (+ `Version`): a version's chunk list;
//! - `POST /.plait/missing/{path}` with `{"chunks": [id, …]}`: the ids to upload;
//! - `PUT /.plait/chunk/{path}?id=<id>` with the chunk's bytes: one chunk;
//! - `POST /.plait/commit/{path}` with `{"chunks": [{"id", "len"}, …]}`, `Repr-Digest`, and
//!   optionally `Version`, `Parents`, `Content-Type`, `Peer`: the version, like a `PUT`;
//! - `POST /.plait/collect` (admin): one collector pass now.
//!
//! Ids are BLAKE3 of the chunk's bytes, 64 lowercase or uppercase hex digits. The rules that
//! keep it safe are in `hub::delta`.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::chunks::ChunkId;
use crate::file::{ChunkRef, FileWrite};
use crate::hub::{HubError, SessionKey, MAX_LIST};

use super::file::{file_ids, one_file_id, unknown};
use super::headers::BraidHeaders;
use super::{query, ApiError, AppState};

/// Largest JSON body of a list (100,000 entries of ~90 bytes).
const MAX_LIST_BODY: usize = 10 << 20;

fn json_response(value: serde_json::Value) -> Response {
    (StatusCode::OK, [("content-type", "application/json"), ("cache-control", "no-store")], value.to_string())
        .into_response()
}

/// `GET /.plait/chunks`.
pub async fn overview(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    query::endpoint_target(&req, &[Method::GET, Method::HEAD])?;
    let p = state.hub.chunk_params();
    let usage = state.hub.files_usage()?;
    let (received_chunk_bytes, received_body_bytes) = state.hub.received_bytes();
    Ok(json_response(json!({
        "chunking": { "algorithm": "fastcdc-v2020", "hash": "blake3", "min": p.min(), "avg": p.avg(), "max": p.max() },
        "max_file_bytes": state.hub.file_limit(),
        "stored_bytes": usage.stored_bytes,
        "logical_bytes": usage.logical_bytes,
        "chunks": usage.chunks,
        "dedupe_ratio": usage.dedupe_ratio(),
        "delta_sessions": state.hub.delta_sessions(),
        "uploads_in_use": state.hub.uploads_in_use(),
        "received_chunk_bytes": received_chunk_bytes,
        "received_body_bytes": received_body_bytes,
    })))
}

/// `GET /.plait/chunks-of/{path}`.
pub async fn chunks_of(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let path = query::endpoint_target(&req, &[Method::GET, Method::HEAD])?;
    let braid = BraidHeaders::parse(req.headers())?;
    let file = state.hub.file(&path).await?.ok_or_else(|| not_a_file(&path))?;
    let version = match &braid.version {
        Some(v) => {
            let id = one_file_id(v)?;
            file.version(&id).ok_or_else(|| unknown(v))?
        }
        None => file.winner().ok_or_else(|| not_a_file(&path))?,
    };
    let content = version
        .content
        .as_ref()
        .ok_or_else(|| ApiError::FileDeleted { path: path.clone(), version: version.id.to_string() })?;
    let chunks: Vec<_> =
        content.chunks.iter().map(|c| json!({ "id": ChunkId(c.id).to_string(), "len": c.len })).collect();
    Ok(json_response(json!({
        "path": path,
        "version": version.id.as_str(),
        "size": content.size,
        "content_type": content.content_type,
        "sha256": hex::encode(content.sha256),
        "chunks": chunks,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdList {
    chunks: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChunkList {
    chunks: Vec<ListedChunk>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListedChunk {
    id: String,
    len: u64,
}

fn parse_id(text: &str) -> Result<ChunkId, ApiError> {
    ChunkId::from_hex(text)
        .ok_or_else(|| ApiError::BadChunkList(format!("{:?} is not a chunk id (64 hex digits)", truncate(text))))
}

fn truncate(text: &str) -> String {
    text.chars().take(80).collect()
}

fn check_len(n: usize) -> Result<(), ApiError> {
    if n > MAX_LIST {
        return Err(ApiError::BadChunkList(format!("{n} chunks; at most {MAX_LIST} per request")));
    }
    Ok(())
}

/// The caller's session key, and what it may read (the dedupe domain).
fn caller(req: &Request, path: &str) -> (SessionKey, Option<crate::auth::Grant>) {
    let grant = super::access::grant_of(req);
    let who = grant.as_ref().map(|g| format!("{}:{}", g.kind().as_str(), g.id())).unwrap_or_default();
    (SessionKey { caller: who, path: path.to_string() }, grant)
}

/// `POST /.plait/missing/{path}`.
pub async fn missing(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let path = query::endpoint_target(&req, &[Method::POST])?;
    let (key, grant) = caller(&req, &path);
    let list: IdList = read_list(req, &state).await?;
    check_len(list.chunks.len())?;
    let ids = list.chunks.iter().map(|t| parse_id(t)).collect::<Result<Vec<_>, _>>()?;
    let may_read = |resource: &str| grant.as_ref().is_none_or(|g| g.allows(crate::auth::Action::Read, resource));
    let missing = state.hub.missing_chunks(&key, &ids, may_read)?;
    let missing: Vec<String> = missing.iter().map(ChunkId::to_string).collect();
    Ok(json_response(json!({ "missing": missing })))
}

/// `PUT /.plait/chunk/{path}?id=…`.
pub async fn upload(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let path = query::endpoint_target(&req, &[Method::PUT])?;
    let mut said = None;
    for (k, v) in query::params(&req)? {
        match k.as_str() {
            "id" => said = Some(parse_id(&v)?),
            _ => return Err(ApiError::BadQuery(format!("unknown parameter {k:?}; use id"))),
        }
    }
    let said = said.ok_or_else(|| ApiError::BadQuery("id=<the chunk's BLAKE3, hex> is required".into()))?;
    let (key, _) = caller(&req, &path);
    let max = state.hub.chunk_params().max();
    let bytes = super::resource::read_limited(req.into_body(), max, state.settings.body_timeout).await.map_err(
        |e| match e {
            ApiError::BodyTooLarge { .. } => ApiError::ChunkTooLarge { max },
            other => other,
        },
    )?;
    let actual = ChunkId::of(&bytes);
    if actual != said {
        return Err(ApiError::ChunkIdMismatch { said: said.to_string(), actual: actual.to_string() });
    }
    state.hub.put_chunk(&key, &bytes)?;
    state.hub.count_chunk_bytes(bytes.len());
    Ok(json_response(json!({ "id": actual.to_string(), "len": bytes.len() })))
}

/// `POST /.plait/commit/{path}`.
pub async fn commit(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let path = query::endpoint_target(&req, &[Method::POST])?;
    let braid = BraidHeaders::parse(req.headers())?;
    let sha256 = braid
        .repr_digest
        .ok_or_else(|| ApiError::BadChunkList("a commit needs the content's `Repr-Digest: sha-256=:…:`".into()))?;
    let content_type = crate::protocol::kind::file_content_type(
        req.headers().get("content-type").and_then(|v| v.to_str().ok()).filter(|t| !t.starts_with("application/json")),
        &[],
    );
    let (key, grant) = caller(&req, &path);
    let list: ChunkList = read_list(req, &state).await?;
    check_len(list.chunks.len())?;
    let chunks = list
        .chunks
        .iter()
        .map(|c| Ok(ChunkRef { id: parse_id(&c.id)?.0, len: c.len }))
        .collect::<Result<Vec<_>, ApiError>>()?;
    let size: u64 = chunks.iter().map(|c| c.len).sum();
    if size > state.hub.file_limit() {
        return Err(HubError::FileTooLarge { limit: state.hub.file_limit() }.into());
    }
    let version = match &braid.version {
        Some(v) => Some(one_file_id(v)?),
        None => None,
    };
    let parents = braid.parents.as_ref().map(file_ids).transpose()?;
    let write = FileWrite {
        version,
        parents,
        change: crate::file::FileChange::Delete,
        author: super::file::author(grant.as_ref(), braid.peer.as_deref()),
        now_ms: super::file::now_ms(),
    };
    let outcome = state.hub.commit_chunks(&key, chunks, sha256, write, content_type, braid.peer).await?;
    Ok(super::file::written(&outcome))
}

/// `POST /.plait/collect`.
pub async fn collect(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    query::endpoint_target(&req, &[Method::POST])?;
    let done = state.hub.collect_chunks().await?;
    Ok(json_response(json!({ "examined": done.examined, "deleted": done.deleted, "freed_bytes": done.freed_bytes })))
}

async fn read_list<T: serde::de::DeserializeOwned>(req: Request, state: &AppState) -> Result<T, ApiError> {
    let bytes = super::resource::read_limited(req.into_body(), MAX_LIST_BODY, state.settings.body_timeout).await?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::BadChunkList(e.to_string()))
}

fn not_a_file(path: &str) -> ApiError {
    ApiError::NotAFile(path.to_string())
}
