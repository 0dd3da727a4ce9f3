//! The access guard: decides what a request needs (an [`Action`] on a path), checks the
//! bearer token, and hands the [`Grant`] to the handlers as a request extension. Share links
//! (`/.plait/s/`) are checked by their own handler, which knows the link's document.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::{Action, AuthError, Grant};

use super::{ApiError, AppState};

/// What a request needs before its handler runs.
#[derive(Debug, PartialEq, Eq)]
enum Need {
    /// Nothing: health and the editor's static scripts.
    Nothing,
    /// A share link, checked by the link handler.
    Link,
    /// Any valid token (the handler checks the details: share management, unknown endpoints).
    AnyToken,
    /// A token allowing `Action` on the path.
    On(Action, String),
    /// A token allowing `Action` on something under the folder (a path ending in `/`; the
    /// listing or watch shows only what the token may read).
    Under(Action, String),
}

/// The middleware, installed only with access control on (with `--auth none` it would let
/// everything through anyway).
pub async fn guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(access) = state.access.as_ref() else { return next.run(req).await };
    let need = need(&req);
    if matches!(need, Need::Nothing | Need::Link) {
        return next.run(req).await;
    }
    let client = client_addr(&req, state.settings.client_ip_header.as_ref());
    let grant = match access.attempt(client, |a| bearer(req.headers()).and_then(|token| a.authenticate_token(token))) {
        Ok(grant) => grant,
        Err(e) => {
            // Paths here are never share links (those go to their own handler), and the
            // token itself is never logged.
            tracing::debug!(method = %req.method(), path = req.uri().path(), %client, error = %e, "refused");
            let signs_in = matches!(e, AuthError::Missing) && is_folder_page(&req, &need);
            let refused = ApiError::from(e).into_response();
            if signs_in {
                return super::folder_page::signin(req.uri().path(), refused, state.hub.direct_origin());
            }
            return refused;
        }
    };
    if let Need::On(action, path) | Need::Under(action, path) = &need {
        if let Err(e) = super::resource::check_path(path) {
            return e.into_response();
        }
        let allowed = match &need {
            Need::Under(..) => grant.allows_under(*action, path),
            _ => grant.allows(*action, path),
        };
        if !allowed {
            tracing::debug!(method = %req.method(), path, credential = grant.id(), "forbidden");
            return ApiError::from(forbidden(*action, path)).into_response();
        }
    }
    tracing::debug!(method = %req.method(), path = req.uri().path(), credential = grant.id(), "authorized");
    req.extensions_mut().insert(grant);
    next.run(req).await
}

/// Whether a request refused for want of a token is a browser opening a folder's page: it gets
/// the page without the listing, where the user can paste a token (the status stays 401).
fn is_folder_page(req: &Request, need: &Need) -> bool {
    matches!(need, Need::Under(Action::Read, _))
        && matches!(*req.method(), Method::GET | Method::HEAD)
        && super::editor::wants_page(req.headers())
}

/// The refusal for a valid credential without the right.
pub fn forbidden(action: Action, path: &str) -> AuthError {
    let action = match action {
        Action::Read => "read",
        Action::Subscribe => "subscribe to",
        Action::Write => "write",
        Action::Admin => "administer",
    };
    AuthError::Forbidden { action, path: path.to_string() }
}

/// What `req` needs, from its raw path and method.
fn need(req: &Request) -> Need {
    let path = req.uri().path();
    if path == "/.plait/health" || path.starts_with("/.plait/client/") {
        return Need::Nothing;
    }
    if path == "/.plait/s" || path.starts_with("/.plait/s/") {
        return Need::Link;
    }
    let method = req.method();
    let reading = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if let Some((endpoint, target)) = super::query::split_endpoint(path) {
        let target = target.to_string();
        return match endpoint {
            "tokens" => Need::On(Action::Admin, "/".into()),
            "history" | "diff" | "chunks-of" => Need::On(Action::Read, target),
            "missing" | "chunk" | "commit" => Need::On(Action::Write, target),
            "collect" => Need::On(Action::Admin, "/".into()),
            // Discovery is open; each upload request checks the token against the upload's
            // target and owner in its handler (the target is in the upload's record).
            "uploads" if *method == Method::OPTIONS => Need::Nothing,
            // A grant for direct uploads needs a token (its handler checks the folder); the
            // grant's own routes are a capability: Uppy's signer calls carry no token.
            "direct" if target == "/" => Need::AnyToken,
            "direct" => Need::Nothing,
            "uploads" => Need::AnyToken,
            "checkpoints" if reading => Need::On(Action::Read, target),
            "checkpoints" | "restore" => Need::On(Action::Write, target),
            "compact" => Need::On(Action::Admin, target),
            _ => Need::AnyToken,
        };
    }
    if path.starts_with("/.well-known/multiplexer") {
        return Need::AnyToken;
    }
    let action = match (reading, req.headers().contains_key("subscribe")) {
        (true, true) => Action::Subscribe,
        (true, false) => Action::Read,
        (false, _) => Action::Write,
    };
    if reading && path.ends_with('/') {
        return Need::Under(action, path.to_string());
    }
    Need::On(action, path.to_string())
}

/// The bearer token of a request: exactly one `Authorization: Bearer <token>` (the scheme
/// is case-insensitive).
fn bearer(headers: &HeaderMap) -> Result<&str, AuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or(AuthError::Missing)?;
    if values.next().is_some() {
        return Err(AuthError::Doubled);
    }
    let value = value.to_str().map_err(|_| AuthError::InvalidToken)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::InvalidToken)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::InvalidToken);
    }
    let token = token.trim_start_matches(' ');
    if token.is_empty() {
        return Err(AuthError::InvalidToken);
    }
    Ok(token)
}

/// The client's address for throttling: the configured proxy header's last address when it
/// is set and parses, else the TCP peer.
pub fn client_addr(req: &Request, ip_header: Option<&header::HeaderName>) -> IpAddr {
    let from_header = ip_header
        .and_then(|name| req.headers().get(name))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse::<IpAddr>().ok());
    from_header
        .or_else(|| req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()))
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// How history names the credential behind a write.
pub fn principal(grant: &Grant) -> crate::hub::Principal {
    crate::hub::Principal {
        kind: grant.kind().as_str().to_string(),
        id: grant.id().to_string(),
        label: grant.label().to_string(),
    }
}

/// The grant the guard (or the share-link handler) attached, if access control is on.
pub fn grant_of(req: &Request) -> Option<Grant> {
    req.extensions().get::<Grant>().cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, uri: &str, subscribe: bool) -> Request {
        let mut b = Request::builder().method(method).uri(uri);
        if subscribe {
            b = b.header("subscribe", "true");
        }
        b.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn what_requests_need() {
        let on = |a, p: &str| Need::On(a, p.to_string());
        assert_eq!(need(&req("GET", "/.plait/health", false)), Need::Nothing);
        assert_eq!(need(&req("GET", "/.plait/client/editor.js", false)), Need::Nothing);
        assert_eq!(need(&req("GET", "/.plait/s/abc", true)), Need::Link);
        assert_eq!(need(&req("GET", "/.plait/shares", false)), Need::AnyToken);
        assert_eq!(need(&req("GET", "/.plait/nope/x", false)), Need::AnyToken);
        assert_eq!(need(&req("POST", "/.plait/tokens", false)), on(Action::Admin, "/"));
        assert_eq!(need(&req("DELETE", "/.plait/tokens/0123", false)), on(Action::Admin, "/"));
        assert_eq!(need(&req("GET", "/.plait/history/a/b", false)), on(Action::Read, "/a/b"));
        assert_eq!(need(&req("POST", "/.plait/checkpoints/a", false)), on(Action::Write, "/a"));
        assert_eq!(need(&req("POST", "/.plait/restore/a", false)), on(Action::Write, "/a"));
        assert_eq!(need(&req("POST", "/.plait/compact/a", false)), on(Action::Admin, "/a"));
        assert_eq!(need(&req("GET", "/.plait/chunks-of/a/b", false)), on(Action::Read, "/a/b"));
        assert_eq!(need(&req("POST", "/.plait/missing/a", false)), on(Action::Write, "/a"));
        assert_eq!(need(&req("PUT", "/.plait/chunk/a", false)), on(Action::Write, "/a"));
        assert_eq!(need(&req("POST", "/.plait/commit/a", false)), on(Action::Write, "/a"));
        assert_eq!(need(&req("POST", "/.plait/collect", false)), on(Action::Admin, "/"));
        assert_eq!(need(&req("GET", "/.plait/chunks", false)), Need::AnyToken);
        assert_eq!(need(&req("GET", "/doc", true)), on(Action::Subscribe, "/doc"));
        assert_eq!(need(&req("HEAD", "/doc", false)), on(Action::Read, "/doc"));
        assert_eq!(need(&req("DELETE", "/doc", false)), on(Action::Write, "/doc"));
        assert_eq!(need(&req("BREW", "/doc", false)), on(Action::Write, "/doc"));
    }

    #[test]
    fn bearer_tokens() {
        let h = |values: &[&str]| {
            let mut map = HeaderMap::new();
            for v in values {
                map.append(header::AUTHORIZATION, v.parse().unwrap());
            }
            map
        };
        assert_eq!(bearer(&h(&["Bearer abc"])).unwrap(), "abc");
        assert_eq!(bearer(&h(&["bearer  abc"])).unwrap(), "abc");
        assert!(matches!(bearer(&h(&[])), Err(AuthError::Missing)));
        assert!(matches!(bearer(&h(&["Bearer a", "Bearer a"])), Err(AuthError::Doubled)));
        for bad in ["Basic abc", "Bearer", "Bearer ", "Token abc", "abc"] {
            assert!(matches!(bearer(&h(&[bad])), Err(AuthError::InvalidToken)), "{bad}");
        }
    }
}
