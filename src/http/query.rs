//! Query strings of the `/.plait/` endpoints: `key=value` pairs, percent-decoded, and
//! versions written the way the `Version` header writes them (or as bare ids).

use axum::extract::Request;
use axum::http::Method;

use crate::protocol::VersionSet;

use super::ApiError;

/// The preamble every `/.plait/<endpoint>/{path}` handler shares: the method must be one of
/// `methods`, and the resource path must be acceptable. The path is taken from the raw
/// request target after `/.plait/<endpoint>`, NOT from axum's percent-decoded capture:
/// documents are named by their raw paths (`/a%20b`), so that is what must be looked up.
pub fn endpoint_target(req: &Request, methods: &[Method]) -> Result<String, ApiError> {
    if !methods.contains(req.method()) {
        return Err(ApiError::MethodNotAllowed(req.method().to_string()));
    }
    let raw = req.uri().path();
    let path = split_endpoint(raw).map_or("/", |(_, target)| target).to_string();
    super::resource::check_path(&path)?;
    Ok(path)
}

/// `/.plait/<endpoint>/<path>` (raw) → (`endpoint`, `/<path>`), the path being `/` when
/// absent; None outside `/.plait/`. Shared by the handlers and the access guard, so both
/// read the same document path from a request.
pub fn split_endpoint(raw: &str) -> Option<(&str, &str)> {
    let rest = raw.strip_prefix("/.plait/")?;
    Some(match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    })
}

/// The decoded `key=value` pairs of `req`'s query, in order. A pair without `=` has an
/// empty value; a bad escape is a 400 naming the key.
pub fn params(req: &Request) -> Result<Vec<(String, String)>, ApiError> {
    let query = req.uri().query().unwrap_or_default();
    let mut out = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(key).ok_or_else(|| ApiError::BadQuery("a parameter name is badly escaped".into()))?;
        let value = percent_decode(value).ok_or_else(|| ApiError::BadQuery(format!("{key}: bad percent-encoding")))?;
        out.push((key, value));
    }
    Ok(out)
}

/// The request's body as JSON of type `T`: at most `limit` bytes, within the body timeout;
/// a body that does not parse is a 400 `bad_json`.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    req: Request,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<T, ApiError> {
    let bytes = super::resource::read_limited(req.into_body(), limit, timeout).await?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::BadJson(e.to_string()))
}

/// A `Version` header value, or bare comma-separated ids; empty = the empty document.
pub fn parse_version(value: &str) -> Result<VersionSet, String> {
    let value = value.trim();
    if value.starts_with('"') {
        return VersionSet::parse_header(value.as_bytes()).map_err(|e| e.to_string());
    }
    Ok(VersionSet::new(value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)))
}

/// `%XX` and `+` decoding of a query value; None on a bad escape or invalid UTF-8.
fn percent_decode(value: &str) -> Option<String> {
    String::from_utf8(super::resource::percent_decode(value.replace('+', " ").as_bytes())?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values() {
        assert_eq!(percent_decode("%22a-4%22%2C%20%22b-1%22").as_deref(), Some("\"a-4\", \"b-1\""));
        assert_eq!(percent_decode("a+b").as_deref(), Some("a b"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%2"), None);
        assert_eq!(percent_decode("%ff"), None);
        let v = |s: &str| parse_version(s).map(|v| v.ids().to_vec());
        assert_eq!(v("a-4,b-1"), Ok(vec!["a-4".to_string(), "b-1".to_string()]));
        assert_eq!(v("\"a-4\""), Ok(vec!["a-4".to_string()]));
        assert_eq!(v(""), Ok(vec![]));
        assert!(v("\"unterminated").is_err());
    }

    #[test]
    fn endpoint_paths_stay_raw() {
        let req = |uri: &str| Request::builder().uri(uri).body(axum::body::Body::empty()).unwrap();
        let get = [Method::GET];
        assert_eq!(endpoint_target(&req("/.plait/history/a%20b/c?limit=1"), &get).unwrap(), "/a%20b/c");
        assert_eq!(endpoint_target(&req("/.plait/diff/x"), &get).unwrap(), "/x");
        assert!(endpoint_target(&req("/.plait/diff/x"), &[Method::POST]).is_err());
    }

    #[test]
    fn pairs_in_order() {
        let req = Request::builder().uri("/x?limit=5&before=%22a-1%22&flag").body(axum::body::Body::empty()).unwrap();
        let got = params(&req).unwrap();
        let want = [("limit", "5"), ("before", "\"a-1\""), ("flag", "")];
        assert_eq!(got, want.map(|(k, v)| (k.to_string(), v.to_string())));
        let bad = Request::builder().uri("/x?to=%zz").body(axum::body::Body::empty()).unwrap();
        assert!(params(&bad).is_err());
    }
}
