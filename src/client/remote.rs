//! `Remote`: one HTTP client for talking to a Plait (or Braid) server, shared by every command
//! and the sync daemon: credentials on every request, a user agent, timeouts for connecting
//! (never for reading, since subscriptions last for ever), and error answers turned into
//! `ClientError::Status` with the server's stable error code.
//!
//! Feature-specific calls live beside the code that needs them (`impl Remote` blocks in `cmd`
//! and `sync` files); this file keeps only what all of them share.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Method, RequestBuilder, Response, Url};

use super::error::ClientError;

/// How long a TCP (and TLS) connection may take before the attempt counts as a network error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client for one credential (a token, or none). Cheap to clone: the connection pool is shared.
#[derive(Clone)]
pub struct Remote {
    http: reqwest::Client,
    token: Option<String>,
}

impl Remote {
    /// A client that sends `token` as `Authorization: Bearer` (if any) on every request.
    pub fn new(token: Option<String>) -> Result<Remote, ClientError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("plait/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            // Keep-alive pings are not needed: subscriptions carry Braid heartbeats.
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ClientError::Local(format!("cannot set up HTTP: {e}")))?;
        Ok(Remote { http, token })
    }

    /// The credential this client sends, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// A request with the credential attached. Send it with `send` (errors mapped) or
    /// `send_raw` (any status back).
    pub fn request(&self, method: Method, url: Url) -> RequestBuilder {
        let mut headers = HeaderMap::new();
        if let Some(t) = &self.token {
            if let Ok(v) = HeaderValue::from_str(&format!("Bearer {t}")) {
                headers.insert(AUTHORIZATION, v);
            }
        }
        self.http.request(method, url).headers(headers)
    }

    /// Sends and returns the response whatever its status (for callers that handle 309, 404 or
    /// 409 themselves). Only network failures are errors.
    pub async fn send_raw(&self, req: RequestBuilder) -> Result<Response, ClientError> {
        Ok(req.send().await?)
    }

    /// Sends and returns a successful (1xx-3xx, including Braid's 209) response; a 4xx or 5xx
    /// becomes `ClientError::Status` with the server's code and message.
    pub async fn send(&self, req: RequestBuilder) -> Result<Response, ClientError> {
        let res = self.send_raw(req).await?;
        if res.status().as_u16() >= 400 {
            return Err(status_error(res).await);
        }
        Ok(res)
    }
}

/// Turns an error response into `ClientError::Status`: Plait answers
/// `{"error": code, "message": ...}` and `Plait-Error: code`; other servers (braid-text, a
/// proxy) answer text, of which the first line (bounded) becomes the message.
pub async fn status_error(res: Response) -> ClientError {
    let status = res.status().as_u16();
    let header_code = res.headers().get("plait-error").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let reason = res.status().canonical_reason().unwrap_or("error").to_owned();
    let body = res.bytes().await.unwrap_or_default();
    let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let code = json.as_ref().and_then(|j| j.get("error")).and_then(|c| c.as_str()).map(str::to_owned).or(header_code);
    let message = match json.as_ref().and_then(|j| j.get("message")).and_then(|m| m.as_str()) {
        Some(m) => m.to_owned(),
        None => {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            let first = text.lines().next().unwrap_or("").trim().to_owned();
            if first.is_empty() {
                reason
            } else {
                first
            }
        }
    };
    ClientError::Status { status, code, message }
}

/// `origin` + `/.plait/{endpoint}` + the resource's path (the form of every per-resource
/// endpoint: history, diff, restore, chunks-of, missing, chunk, commit).
pub fn endpoint_url(resource: &Url, endpoint: &str) -> Url {
    let mut u = resource.clone();
    let path = format!("/.plait/{endpoint}{}", resource.path());
    u.set_path(&path);
    u.set_query(None);
    u.set_fragment(None);
    u
}

/// `origin` + `/.plait/{endpoint}` (tokens, shares, uploads, chunks).
pub fn root_endpoint_url(any: &Url, endpoint: &str) -> Url {
    let mut u = any.clone();
    u.set_path(&format!("/.plait/{endpoint}"));
    u.set_query(None);
    u.set_fragment(None);
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls_keep_the_origin_and_the_raw_path() {
        let u = Url::parse("http://127.0.0.1:8080/notes/a%20b?x=1#f").unwrap();
        assert_eq!(endpoint_url(&u, "history").as_str(), "http://127.0.0.1:8080/.plait/history/notes/a%20b");
        assert_eq!(root_endpoint_url(&u, "tokens").as_str(), "http://127.0.0.1:8080/.plait/tokens");
    }
}
