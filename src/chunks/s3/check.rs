//! The start-up check of the S3 engine: before the server listens, the bucket must be
//! reachable with these credentials, exist, and take a write, a read and a delete; with direct
//! uploads on, it must also answer a browser's CORS preflight and expose `ETag` (the browser
//! reads each part's ETag, which completion needs). Any failure is one clear error, and
//! `plait serve` exits instead of failing on the first upload.
//!
//! [`S3ChunkStore::claim`] then ties the prefix to one data dir (see there).
//!
//! Cost: one LIST, one PUT, one GET, one DELETE and one HEAD of a small probe object under
//! `prefix/probe/`; with direct uploads, per origin one OPTIONS and one presigned PUT and
//! DELETE under `prefix/uploads/`. The requests are not retried: a store that fails at
//! start-up is reported at once rather than after a minute of back-off.

use std::time::Duration;

use bytes::Bytes;
use http::header::{
    ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN,
};
use http::{HeaderMap, Method};
use object_store::client::HttpRequestBody;
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{BackoffConfig, ObjectStore, ObjectStoreExt, PutMode, PutPayload, RetryConfig};
use ring::rand::{SecureRandom, SystemRandom};

use super::client::Http;
use super::error::Site;
use super::{build_store, S3ChunkStore, S3Error};

/// No retries, so a failing store is reported at once.
fn no_retries() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(50),
            base: 2.0,
        },
        max_retries: 0,
        retry_timeout: Duration::from_secs(5),
    }
}

fn random_hex() -> Result<String, S3Error> {
    let mut bytes = [0u8; 12];
    SystemRandom::new().fill(&mut bytes).map_err(|_| S3Error::Config("the OS random source failed".into()))?;
    Ok(hex::encode(bytes))
}

impl S3ChunkStore {
    /// Checks the bucket (see the module doc); `cors_origins` are the browser origins that
    /// must be allowed to upload parts directly (empty: direct uploads are off).
    pub fn check(&self, cors_origins: &[String]) -> Result<(), S3Error> {
        let shared = &self.shared;
        let store = build_store(&shared.config, &shared.http, no_retries())?;
        let site = shared.site.clone();
        let prefix = shared.config.location.prefix.clone();
        let probe = shared.key(&format!("probe/{}", random_hex()?));
        let uploads = shared.key(&format!("uploads/.cors-probe-{}", random_hex()?));
        let (http, origins) = (shared.http.clone(), cors_origins.to_vec());
        shared.block(async move {
            // Reachable, credentials accepted, bucket exists (a listing of a missing bucket is 404).
            let listed = store.list_with_delimiter(Some(&Path::from(prefix.as_str()))).await;
            listed.map_err(|e| site.error(e, None))?;
            // Writable, readable, deletable.
            let path = Path::from(probe.as_str());
            let body = Bytes::from(format!("plait start-up probe {probe}"));
            store.put(&path, PutPayload::from(body.clone())).await.map_err(|e| not_writable(&site, e, &probe))?;
            let read = async { store.get(&path).await?.bytes().await };
            let back = read.await.map_err(|e| site.error(e, Some(&probe)))?;
            if back != body {
                return Err(site.failed(format!("the probe object {probe} read back other bytes than were written")));
            }
            store.delete(&path).await.map_err(|e| not_writable(&site, e, &probe))?;
            match store.head(&path).await {
                Err(object_store::Error::NotFound { .. }) => {}
                Ok(_) => return Err(site.failed(format!("the probe object {probe} is still there after a delete"))),
                Err(e) => return Err(site.error(e, Some(&probe))),
            }
            for origin in &origins {
                cors(&store, &http, &site, &uploads, origin).await?;
            }
            Ok(())
        })
    }
}

/// The object naming the data dir whose versions reference this prefix's chunks.
const OWNER: &str = "owner";

impl S3ChunkStore {
    /// Claims the prefix for the document store whose change log epoch is `epoch`, or
    /// refuses a prefix another store claimed: its collector deletes every chunk that its own
    /// versions do not reference, so two data dirs sharing a prefix would delete each other's
    /// chunks. One GET, and one conditional PUT the first time.
    pub fn claim(&self, epoch: u64) -> Result<(), S3Error> {
        let shared = &self.shared;
        let ours = format!("plait-owner 1 {epoch:016x}");
        let key = shared.key(OWNER);
        let (store, site) = (shared.store.clone(), shared.site.clone());
        let location = shared.config.location.to_string();
        shared.block(async move {
            let path = Path::from(key.as_str());
            for _ in 0..2 {
                let read = async { store.get(&path).await?.bytes().await };
                match read.await {
                    Ok(found) if found == ours.as_bytes() => return Ok(()),
                    Ok(found) => {
                        let owner = String::from_utf8_lossy(&found).chars().take(64).collect();
                        return Err(S3Error::Foreign { location, owner, ours });
                    }
                    Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(site.error(e, Some(&key))),
                }
                let claim = store.put_opts(&path, PutPayload::from(ours.clone().into_bytes()), PutMode::Create.into());
                match claim.await {
                    Ok(_) => return Ok(()),
                    // Another server claimed it in between: read whose it is.
                    Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {}
                    Err(e) => return Err(not_writable(&site, e, &key)),
                }
            }
            Err(site.failed(format!("{key} could neither be read nor created")))
        })
    }
}

fn not_writable(site: &Site, e: object_store::Error, key: &str) -> S3Error {
    match site.error(e, Some(key)) {
        S3Error::Denied { endpoint, bucket, code } => S3Error::Denied {
            endpoint,
            bucket,
            code: format!("{code}: these credentials cannot write or delete {key}"),
        },
        other => other,
    }
}

/// A preflight and a presigned PUT from `origin`, as a browser uploading a part makes them.
async fn cors(
    store: &object_store::aws::AmazonS3,
    http: &Http,
    site: &Site,
    key: &str,
    origin: &str,
) -> Result<(), S3Error> {
    let refused = |why: String| {
        site.failed(format!(
            "direct uploads are on, but the bucket's CORS rules do not let a browser at {origin} upload parts: {why} \
             (allow PUT from that origin and expose the ETag header; docs/OBJECT-STORAGE.md)"
        ))
    };
    let path = Path::from(key);
    let put_url =
        store.signed_url(Method::PUT, &path, Duration::from_secs(60)).await.map_err(|e| site.error(e, Some(key)))?;
    let object_url = format!("{}://{}{}", put_url.scheme(), put_url.authority(), put_url.path());
    let send = |request: http::Request<HttpRequestBody>| async move {
        let (head, _body) = http
            .send(request)
            .await
            .map_err(|e| S3Error::Unreachable {
                endpoint: site.endpoint.clone(),
                bucket: site.bucket.clone(),
                why: super::error::chain(&e),
            })?
            .into_parts();
        Ok::<_, S3Error>(head)
    };
    let build = |r: http::request::Builder, body: HttpRequestBody| r.body(body).map_err(|e| site.failed(e.to_string()));

    let preflight = http::Request::builder()
        .method(Method::OPTIONS)
        .uri(object_url.as_str())
        .header(ORIGIN, origin)
        .header(ACCESS_CONTROL_REQUEST_METHOD, "PUT")
        .header(ACCESS_CONTROL_REQUEST_HEADERS, "content-type");
    let head = send(build(preflight, HttpRequestBody::empty())?).await?;
    if !head.status.is_success() {
        return Err(refused(format!("the preflight was answered {}", head.status)));
    }
    allows_origin(&head.headers, origin).map_err(&refused)?;
    if let Some(methods) = head.headers.get(ACCESS_CONTROL_ALLOW_METHODS) {
        let methods = methods.to_str().unwrap_or_default();
        if !methods.split(',').any(|m| m.trim().eq_ignore_ascii_case("PUT") || m.trim() == "*") {
            return Err(refused(format!("the preflight allows {methods:?}, not PUT")));
        }
    }

    let put = http::Request::builder().method(Method::PUT).uri(put_url.as_str()).header(ORIGIN, origin);
    let head = send(build(put, HttpRequestBody::from(Bytes::from_static(b"cors probe")))?).await?;
    if !head.status.is_success() {
        return Err(refused(format!("a presigned PUT was answered {}", head.status)));
    }
    let exposed = allows_origin(&head.headers, origin).and_then(|()| exposes_etag(&head.headers));
    let removed = store.delete(&path).await.map_err(|e| site.error(e, Some(key)));
    exposed.map_err(refused)?;
    removed
}

/// Whether `Access-Control-Allow-Origin` lets `origin` read the answer.
fn allows_origin(headers: &HeaderMap, origin: &str) -> Result<(), String> {
    match headers.get(ACCESS_CONTROL_ALLOW_ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(v) if v == "*" || v == origin => Ok(()),
        Some(v) => Err(format!("Access-Control-Allow-Origin is {v:?}")),
        None => Err("no Access-Control-Allow-Origin".into()),
    }
}

/// Whether `Access-Control-Expose-Headers` lets a script read `ETag`.
fn exposes_etag(headers: &HeaderMap) -> Result<(), String> {
    let exposed: Vec<&str> = headers
        .get_all(ACCESS_CONTROL_EXPOSE_HEADERS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    if exposed.iter().any(|h| h.eq_ignore_ascii_case("etag") || *h == "*") {
        Ok(())
    } else {
        Err(format!("ETag is not among the exposed headers ({exposed:?})"))
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn cors_answers_are_read_as_a_browser_reads_them() {
        let mut h = HeaderMap::new();
        assert!(allows_origin(&h, "http://a").is_err());
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("http://b"));
        assert!(allows_origin(&h, "http://a").unwrap_err().contains("http://b"));
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        assert!(allows_origin(&h, "http://a").is_ok());
        assert!(exposes_etag(&h).is_err());
        h.append(ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("Content-Length"));
        h.append(ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("x-amz-request-id, etag"));
        assert!(exposes_etag(&h).is_ok());
    }
}
