//! `/.plait/tokens` and `/.plait/shares`: create, list and revoke credentials (docs/ACCESS.md).
//! The guard has already checked the caller's token: admin on `/` for tokens, any token for
//! shares (whose rights on the shared path are checked here).

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::auth::{self, Access, Action, Grant, NewShare, NewToken, Right, ShareRight};

use super::query;
use super::resource::{check_path, text_at};
use super::{ApiError, AppState};

/// Largest create request body.
const MAX_BODY: usize = 64 << 10;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    label: String,
    rights: Right,
    prefixes: Vec<String>,
    #[serde(default)]
    expires_in_secs: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShareBody {
    path: String,
    rights: ShareRight,
    #[serde(default)]
    version: Option<VersionField>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    expires_in_secs: Option<u64>,
}

/// A pinned version: a list of ids, or a `Version` header value.
#[derive(Deserialize)]
#[serde(untagged)]
enum VersionField {
    Ids(Vec<String>),
    Header(String),
}

/// `/.plait/tokens` and `/.plait/tokens/{id}`.
pub async fn tokens(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let access = enabled(&state)?;
    match (req.method().clone(), item_id(&req, "tokens")?) {
        (Method::POST, None) => {
            let body: TokenBody = read_json(&state, req).await?;
            let new = NewToken {
                label: body.label,
                rights: body.rights,
                prefixes: body.prefixes,
                expires_in_secs: body.expires_in_secs,
            };
            let (record, token) = access.create_token(new).await?;
            tracing::info!(id = %record.id, label = %record.label, rights = ?record.rights, "token created");
            let mut json = record.listing(auth::now_ms());
            json["token"] = serde_json::Value::String(token);
            Ok(created(json))
        }
        (Method::GET | Method::HEAD, None) => {
            let now = auth::now_ms();
            let list: Vec<_> = access.tokens().iter().map(|t| t.listing(now)).collect();
            Ok(json(StatusCode::OK, serde_json::json!({ "tokens": list })))
        }
        (Method::DELETE, Some(id)) => {
            access.revoke_token(&id).await?;
            tracing::info!(%id, "token revoked");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (m, _) => Err(ApiError::MethodNotAllowed(m.to_string())),
    }
}

/// `/.plait/shares` and `/.plait/shares/{id}`.
pub async fn shares(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let access = enabled(&state)?.clone();
    let grant = super::access::grant_of(&req).ok_or(auth::AuthError::Missing)?;
    match (req.method().clone(), item_id(&req, "shares")?) {
        (Method::POST, None) => create_share(&state, &access, &grant, req).await,
        (Method::GET | Method::HEAD, None) => {
            let path = query::params(&req)?.into_iter().find(|(k, _)| k == "path").map(|(_, v)| v);
            let now = auth::now_ms();
            let list: Vec<_> = access.shares(&grant, path.as_deref()).iter().map(|s| s.listing(now)).collect();
            Ok(json(StatusCode::OK, serde_json::json!({ "shares": list })))
        }
        (Method::DELETE, Some(id)) => {
            access.revoke_share(&id, &grant).await?;
            tracing::info!(%id, "share link revoked");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (m, _) => Err(ApiError::MethodNotAllowed(m.to_string())),
    }
}

async fn create_share(state: &AppState, access: &Access, grant: &Grant, req: Request) -> Result<Response, ApiError> {
    let base = link_base(state, &req);
    let body: ShareBody = read_json(state, req).await?;
    check_path(&body.path)?;
    let needed = if body.rights == ShareRight::Write { Action::Write } else { Action::Read };
    if !grant.allows(needed, &body.path) {
        return Err(super::access::forbidden(needed, &body.path).into());
    }
    let pinned = match body.version {
        None => None,
        Some(v) => {
            let version = match v {
                VersionField::Ids(ids) => crate::protocol::VersionSet::new(ids),
                VersionField::Header(h) => query::parse_version(&h).map_err(ApiError::BadJson)?,
            };
            auth::check_pinned_rights(body.rights)?;
            let (text, at) = text_at(state, &body.path, Some(version)).await?;
            Some((at.ids().to_vec(), text))
        }
    };
    let new = NewShare {
        path: body.path,
        rights: body.rights,
        pinned,
        label: body.label,
        expires_in_secs: body.expires_in_secs,
    };
    let (record, link) = access.create_share(new, grant).await?;
    tracing::info!(id = %record.id, path = %record.path, rights = ?record.rights, "share link created");
    let href = format!("/.plait/s/{link}");
    let mut json = record.listing(auth::now_ms());
    json["href"] = serde_json::Value::String(href.clone());
    json["url"] = base.map_or(serde_json::Value::Null, |b| serde_json::Value::String(format!("{b}{href}")));
    Ok(created(json))
}

/// `scheme://host` of the request, for absolute share URLs (None without a Host).
fn link_base(state: &AppState, req: &Request) -> Option<String> {
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).map(str::to_string))?;
    if host.is_empty() || host.contains(['/', ' ', '@']) {
        return None;
    }
    let forwarded_https =
        req.headers().get("x-forwarded-proto").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let scheme = if state.settings.https || forwarded_https { "https" } else { "http" };
    Some(format!("{scheme}://{host}"))
}

fn enabled(state: &AppState) -> Result<&Access, ApiError> {
    state.access.as_ref().ok_or(ApiError::Auth(auth::AuthError::Disabled))
}

/// The `{id}` of `/.plait/<endpoint>/{id}`, None for the collection itself.
fn item_id(req: &Request, endpoint: &str) -> Result<Option<String>, ApiError> {
    let target = query::split_endpoint(req.uri().path()).map_or("/", |(_, target)| target);
    match target.strip_prefix('/') {
        None | Some("") => Ok(None),
        Some(id) if auth::is_id(id) => Ok(Some(id.to_string())),
        Some(_) => Err(ApiError::NotFound(format!("/.plait/{endpoint}/<not an id>"))),
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(state: &AppState, req: Request) -> Result<T, ApiError> {
    query::read_json(req, MAX_BODY, state.settings.body_timeout).await
}

fn json(status: StatusCode, value: serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

fn created(value: serde_json::Value) -> Response {
    let mut res = json(StatusCode::CREATED, value);
    // The answer carries a secret: no cache may keep it.
    res.headers_mut().insert(header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    res
}
