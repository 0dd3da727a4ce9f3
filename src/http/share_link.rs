//! `/.plait/s/{link}`: a share link, usable with no account and no headers. An unpinned link
//! is its document's own URL under another name (every Braid header works, within the link's
//! rights); a pinned link serves the text copied when it was made, forever.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::auth::{Action, ShareRecord};
use crate::protocol::{self, VersionSet};

use super::access::{client_addr, forbidden};
use super::reply::{self, REPR_TYPE};
use super::{ApiError, AppState};

/// The handler.
pub async fn serve_link(State(state): State<AppState>, req: Request) -> Response {
    match serve(state, req).await {
        Ok(res) => res,
        Err(e) => e.into_response(),
    }
}

async fn serve(state: AppState, mut req: Request) -> Result<Response, ApiError> {
    let access = state.access.clone().ok_or(ApiError::Auth(crate::auth::AuthError::Disabled))?;
    let client = client_addr(&req, state.settings.client_ip_header.as_ref());
    let raw = req.uri().path();
    let link = raw.strip_prefix("/.plait/s/").or_else(|| raw.strip_prefix("/.plait/s")).unwrap_or_default();
    // Logs name a link by its public id only: the rest of the path is its secret.
    let (grant, record) = match access.attempt(client, |a| a.authenticate_link(link)) {
        Ok(found) => found,
        Err(e) => {
            tracing::debug!(method = %req.method(), %client, "refused share link");
            return Err(e.into());
        }
    };
    tracing::debug!(method = %req.method(), link = %record.id, path = %record.path, "share link");
    let action = match (req.method().clone(), req.headers().contains_key("subscribe")) {
        (Method::GET | Method::HEAD | Method::OPTIONS, true) => Action::Subscribe,
        (Method::GET | Method::HEAD | Method::OPTIONS, false) => Action::Read,
        (Method::PUT | Method::PATCH | Method::POST, _) => Action::Write,
        // DELETE and anything else: no link may.
        _ => Action::Admin,
    };
    if !grant.allows(action, &record.path) {
        return Err(forbidden(action, &record.path).into());
    }
    if record.version.is_some() {
        let head = req.method() == Method::HEAD;
        let inm = req.headers().get("if-none-match").cloned();
        return pinned(&access, &record, head, inm).await;
    }
    let target = match req.uri().query() {
        Some(q) => format!("{}?{q}", record.path),
        None => record.path.clone(),
    };
    *req.uri_mut() = target.parse::<Uri>().map_err(|_| ApiError::BadPath("the shared path is not a valid URI"))?;
    req.extensions_mut().insert(grant);
    Ok(super::resource::handle(State(state), req).await)
}

/// The pinned text, with the headers of a snapshot at a named version.
async fn pinned(
    access: &crate::auth::Access,
    record: &ShareRecord,
    head: bool,
    if_none_match: Option<HeaderValue>,
) -> Result<Response, ApiError> {
    let text = access.pinned_text(&record.id).await?;
    let version = VersionSet::new(record.version.clone().unwrap_or_default());
    let etag = protocol::etag(&version);
    let not_modified = if_none_match.is_some_and(|v| protocol::if_none_match(v.as_bytes(), &etag));
    let len = text.len();
    let body = if not_modified || head { Body::empty() } else { Body::from(text) };
    let mut res = Response::new(body);
    if not_modified {
        *res.status_mut() = StatusCode::NOT_MODIFIED;
    }
    let h = res.headers_mut();
    reply::set_version(h, "version", &version);
    reply::set(h, "etag", &etag);
    reply::set(h, "cache-control", super::resource::PRIVATE_IMMUTABLE);
    reply::set(h, "content-type", REPR_TYPE);
    if !not_modified {
        reply::set(h, "content-length", &len.to_string());
    }
    Ok(res)
}
