//! `GET /.plait/diff/{path}?from=V1&to=V2`: the patches that turn V1's text into V2's, in
//! Braid patch form (a multi-patch PUT body with `Parents: V1`, `Version: V2`), or a unified
//! line diff when the client asks for `text/x-diff`.
//!
//! `from` and `to` take a `Version` header value (`"a-4", "b-2"`, URL-encoded) or bare ids
//! separated by commas; `from` defaults to the empty document, `to` to the current version.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::protocol::{encode_patches_body, VersionSet};
use crate::text::{patches_between, unified};

use super::query;
use super::resource::text_at;
use super::{reply, ApiError, AppState};

/// The handler.
pub async fn diff(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let path = query::endpoint_target(&req, &[Method::GET, Method::HEAD])?;
    let (mut from, mut to) = (VersionSet::new(Vec::<String>::new()), None);
    for (key, value) in query::params(&req)? {
        let version = query::parse_version(&value).map_err(|e| ApiError::BadQuery(format!("{key}: {e}")))?;
        match key.as_str() {
            "from" => from = version,
            "to" => to = Some(version),
            _ => return Err(ApiError::BadQuery(format!("unknown parameter {key:?}; use from and to"))),
        }
    }
    let (old, _) = text_at(&state, &path, Some(from.clone())).await?;
    let (new, to) = text_at(&state, &path, to).await?;
    let wants_unified = req
        .headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.split(',').any(|m| m.trim().starts_with("text/x-diff")));
    let mut res = if wants_unified {
        let body =
            unified(&old, &new, &format!("{path} @ {}", from.to_header()), &format!("{path} @ {}", to.to_header()));
        (StatusCode::OK, [("content-type", "text/x-diff; charset=utf-8")], body).into_response()
    } else {
        let patches = patches_between(&old, &new);
        let mut body = Vec::new();
        encode_patches_body(&patches, &mut body);
        let count = patches.len().to_string();
        let mut res = (StatusCode::OK, body).into_response();
        reply::set(res.headers_mut(), "patches", &count);
        reply::set(res.headers_mut(), "content-type", &format!("application/http-patches; count={count}"));
        res
    };
    reply::set_version(res.headers_mut(), "parents", &from);
    reply::set_version(res.headers_mut(), "version", &to);
    // Without `to` the answer follows the document, so caches must revalidate.
    reply::set(res.headers_mut(), "cache-control", "no-cache");
    Ok(res)
}
