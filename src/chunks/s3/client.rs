//! The HTTP client under object_store: hyper's client with rustls on ring, so the S3 engine
//! brings no second TLS stack and no C build (object_store's own client is reqwest with
//! aws-lc). One client per engine; object_store signs and retries, this only moves bytes.
//!
//! It also sends the few requests object_store does not make (a presigned ListParts, the CORS
//! checks): [`Http::send`]. HTTP/1.1 only: S3 and its look-alikes do not speak HTTP/2.
//! Certificates are the system's (`ca-certificates`); a machine without any can still reach a
//! plain-http loopback store, and an https one then fails with "unknown issuer".

use std::time::Duration;

use async_trait::async_trait;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use object_store::client::{
    HttpClient, HttpError, HttpErrorKind, HttpRequest, HttpRequestBody, HttpResponse, HttpResponseBody, HttpService,
};
use object_store::ClientOptions;
use tokio_rustls::rustls;

/// How long a TCP (and TLS) connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a response's head may take once the request is sent (S3 answers a 4 MiB PUT's
/// head once it has the bytes: this bounds a stalled upload, not a slow one).
const HEAD_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle pooled connections are closed after this long (S3 closes them after ~20 s anyway).
const POOL_IDLE: Duration = Duration::from_secs(15);

/// The engine's HTTP client.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpsConnector<HttpConnector>, HttpRequestBody>,
    /// Whether `http://` URLs may be requested at all (else only https).
    plain_http: bool,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Http(plain_http: {})", self.plain_http)
    }
}

/// The TLS settings: rustls on ring with the system's roots (none found: an empty store, so
/// that plain-http loopback stores still work on a machine without certificates).
fn tls_config() -> rustls::ClientConfig {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = match rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions() {
        Ok(b) => b,
        // ring's provider supports the default versions; this cannot fail.
        Err(_) => unreachable!("ring supports TLS 1.2 and 1.3"),
    };
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        tracing::warn!(
            "no CA certificates found on this system: https S3 endpoints will be refused (install ca-certificates)"
        );
    }
    builder.with_root_certificates(roots).with_no_client_auth()
}

impl Http {
    /// A client; `plain_http` allows `http://` URLs.
    pub fn new(plain_http: bool) -> Self {
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
        tcp.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config())
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(64)
            .build(connector);
        Http { client, plain_http }
    }

    /// Sends one request and returns the response with its body unread. Must run on the
    /// engine's runtime (the connection's task is spawned there).
    pub async fn send(&self, req: http::Request<HttpRequestBody>) -> Result<http::Response<Incoming>, HttpError> {
        if !self.plain_http && req.uri().scheme_str() != Some("https") {
            return Err(HttpError::new(
                HttpErrorKind::Unknown,
                std::io::Error::other(format!(
                    "refusing a plain http request to {}",
                    req.uri().authority().map_or("?", |a| a.as_str())
                )),
            ));
        }
        match tokio::time::timeout(HEAD_TIMEOUT, self.client.request(req)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => {
                let kind = if e.is_connect() { HttpErrorKind::Connect } else { HttpErrorKind::Request };
                Err(HttpError::new(kind, e))
            }
            Err(elapsed) => Err(HttpError::new(HttpErrorKind::Timeout, elapsed)),
        }
    }

    /// object_store's view of this client.
    pub fn connector(&self) -> Connector {
        Connector(self.clone())
    }
}

#[async_trait]
impl HttpService for Http {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let (parts, body) = self.send(req).await?.into_parts();
        let body = body.map_err(|e| HttpError::new(HttpErrorKind::Interrupted, e));
        Ok(HttpResponse::from_parts(parts, HttpResponseBody::new(body)))
    }
}

/// Hands object_store our client (it calls `connect` once per store it builds).
#[derive(Debug)]
pub struct Connector(Http);

impl object_store::client::HttpConnector for Connector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(self.0.clone()))
    }
}
