//! Direct uploads to the object store over HTTP (docs/UPLOADS.md, "Straight to S3"):
//! `POST /.plait/direct` gives a caller with a token a *grant* for a folder, and
//! `/.plait/direct/<grant>` is then a Companion-compatible endpoint, the routes Uppy's
//! `@uppy/aws-s3` calls with `companionEndpoint` (create a multipart upload, sign one part URL at
//! a time, list the parts S3 holds, complete, abort). The browser sends the file's bytes to the
//! bucket itself; Plait's tokens decide who may upload where, through the grant, because the
//! plugin's signer calls carry no `Authorization` header.

use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::auth::Action;
use crate::hub::HubError;
use crate::upload::UploadError;

use super::uploads::target;
use super::{query, ApiError, AppState};

/// Largest JSON body of these routes (a completion of 10,000 parts is about 600 KB).
const MAX_BODY: usize = 2 << 20;

fn json_answer(status: StatusCode, value: serde_json::Value) -> Response {
    (status, [("content-type", "application/json"), ("cache-control", "no-store")], value.to_string()).into_response()
}

#[derive(Deserialize)]
struct GrantAsk {
    folder: String,
}

/// `POST /.plait/direct` `{"folder": "/photos/"}` → `201 {"endpoint", "folder", "expires_ms"}`:
/// a grant to upload straight to the bucket into that folder (the caller must be allowed to
/// write there).
pub async fn grants(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    if req.method() != Method::POST {
        return Err(ApiError::MethodNotAllowed(req.method().to_string()));
    }
    let grant = super::access::grant_of(&req);
    let ask: GrantAsk = query::read_json(req, MAX_BODY, state.settings.body_timeout).await?;
    let folder = ask.folder;
    if !folder.starts_with('/') || !folder.ends_with('/') || folder.starts_with("/.plait/") {
        return Err(HubError::Upload(UploadError::BadTarget(format!("{folder:?} is not a folder (/…/)"))).into());
    }
    super::resource::check_path(&folder)?;
    if let Some(g) = &grant {
        if !g.allows(Action::Write, &folder) {
            return Err(super::access::forbidden(Action::Write, &folder).into());
        }
    }
    let owner = grant.as_ref().map(|g| g.id().to_string()).unwrap_or_default();
    let author = super::file::author(grant.as_ref(), None);
    let now = super::file::now_ms();
    let (name, g) = state.hub.create_grant(owner, author, folder, now).await?;
    let endpoint = format!("/.plait/direct/{name}");
    Ok(json_answer(
        StatusCode::CREATED,
        json!({ "endpoint": endpoint, "folder": g.folder, "expires_ms": g.expires_ms }),
    ))
}

#[derive(Deserialize)]
struct Create {
    filename: String,
    #[serde(default, rename = "type")]
    content_type: Option<String>,
}

#[derive(Deserialize)]
struct Completion {
    parts: Vec<CompletedPart>,
}

#[derive(Deserialize)]
struct CompletedPart {
    #[serde(rename = "PartNumber")]
    number: u32,
    #[serde(rename = "ETag")]
    etag: String,
}

/// The `key` query parameter every call after creation carries.
fn key_param(req: &Request) -> Result<String, ApiError> {
    let params = query::params(req)?;
    params
        .into_iter()
        .find(|(k, _)| k == "key")
        .map(|(_, v)| v)
        .ok_or_else(|| ApiError::BadQuery("the `key` parameter is missing".into()))
}

/// `/.plait/direct/<grant>/s3/...`: the Companion routes.
pub async fn companion(
    State(state): State<AppState>,
    Path((grant_name, rest)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let now = super::file::now_ms();
    let grant = state.hub.grant(&grant_name, now)?;
    let method = req.method().clone();
    let segments: Vec<String> = rest
        .split('/')
        .map(|s| super::resource::percent_decode(s.as_bytes()).and_then(|b| String::from_utf8(b).ok()))
        .collect::<Option<_>>()
        .ok_or_else(|| ApiError::BadQuery("a badly escaped path segment".into()))?;
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (&method, segments.as_slice()) {
        (&Method::GET, ["params"]) => Err(HubError::Upload(UploadError::UseMultipart).into()),
        (&Method::POST, ["multipart"]) => {
            let ask: Create = query::read_json(req, MAX_BODY, state.settings.body_timeout).await?;
            let path = target::path_in(&grant.folder, &ask.filename)?;
            target::check_target(&path)?;
            let content_type = ask.content_type.filter(|t| target::usable_media_type(t));
            let (key, upload_id) = state.hub.direct_create(&grant_name, path, content_type, now).await?;
            Ok(json_answer(StatusCode::OK, json!({ "key": key, "uploadId": upload_id })))
        }
        (&Method::GET, ["multipart", upload_id]) => {
            let parts = state.hub.direct_parts(&grant_name, &key_param(&req)?, upload_id).await?;
            let list: Vec<_> =
                parts.iter().map(|p| json!({ "PartNumber": p.number, "ETag": p.etag, "Size": p.size })).collect();
            Ok(json_answer(StatusCode::OK, json!(list)))
        }
        (&Method::DELETE, ["multipart", upload_id]) => {
            state.hub.direct_abort(&grant_name, &key_param(&req)?, upload_id).await?;
            Ok(json_answer(StatusCode::OK, json!({})))
        }
        (&Method::POST, ["multipart", upload_id, "complete"]) => {
            let key = key_param(&req)?;
            let done: Completion = query::read_json(req, MAX_BODY, state.settings.body_timeout).await?;
            let parts: Vec<(u32, String)> = done.parts.into_iter().map(|p| (p.number, p.etag)).collect();
            let (path, outcome) = state.hub.direct_complete(&grant, &grant_name, &key, upload_id, &parts, now).await?;
            let mut res = json_answer(StatusCode::OK, json!({ "location": path, "key": key }));
            let written = super::file::written(&outcome);
            for name in ["version", "current-version", "merge-type"] {
                if let Some(v) = written.headers().get(name) {
                    res.headers_mut().insert(name, v.clone());
                }
            }
            Ok(res)
        }
        (&Method::GET, ["multipart", upload_id, number]) => {
            let number: u32 = number.parse().map_err(|_| {
                HubError::Upload(UploadError::BadParts(format!("part number {number:?} is not a number")))
            })?;
            let url = state.hub.direct_sign(&grant_name, &key_param(&req)?, upload_id, number).await?;
            Ok(json_answer(StatusCode::OK, json!({ "url": url })))
        }
        _ => Err(ApiError::MethodNotAllowed(method.to_string())),
    }
}
