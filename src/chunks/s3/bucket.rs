//! The bucket operations of direct uploads (issue 17 part 5): browsers upload an object in
//! parts straight to S3, with part URLs Plait signs one at a time, and the server then reads the
//! finished object into chunks. No HTTP routing here: the upload endpoints call these.
//!
//! Every object key is under `prefix/uploads/` ([`UploadKey`]), so nothing a caller names can
//! reach the chunks or the header. S3's limits, which callers must respect (S3 refuses
//! otherwise): parts of 5 MiB to 5 GiB except the last, part numbers 1 to 10,000, and
//! completion needs every part's ETag. An upload neither completed nor aborted keeps its parts
//! (and costs storage) until aborted: callers keep a ledger and abort what expires (a bucket
//! lifecycle rule `AbortIncompleteMultipartUpload` is the backstop, docs/OBJECT-STORAGE.md).
//!
//! All calls are async and run on the engine's runtime (`Driver::spawn`), so any runtime may
//! await them; each is bounded by the engine's deadline, and a byte stream by an idle limit.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::Method;
use http_body_util::BodyExt;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::signer::{SignedUrlOptions, Signer};
use object_store::ObjectStoreExt;

pub use super::parts::StoredPart;
use super::parts::{parse_error, parse_list_parts};
use super::{error, S3Error, Shared};

/// The most parts S3 takes in one upload.
pub const MAX_PARTS: u32 = 10_000;
/// The longest a presigned URL may live (SigV4's limit: 7 days).
pub const MAX_URL_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a read of an object may go without a byte from the store, or without its reader
/// taking one, before it is cut.
const STREAM_IDLE: Duration = Duration::from_secs(60);
/// Frames buffered between the engine's runtime and the reader of an object.
const STREAM_FRAMES: usize = 8;
/// How long the presigned ListParts requests the server sends itself are valid.
const LIST_URL_LIFETIME: Duration = Duration::from_secs(300);

/// The key of an object under `prefix/uploads/`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UploadKey(String);

impl UploadKey {
    /// The full object key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A completed upload's object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletedObject {
    /// Its key.
    pub key: UploadKey,
    /// The ETag S3 gave it (a multipart ETag: `"<md5 of the parts' md5s>-<parts>"`).
    pub etag: Option<String>,
}

/// An object's bytes, in the order stored.
pub type ObjectStream = Pin<Box<dyn Stream<Item = Result<Bytes, S3Error>> + Send>>;

/// The direct-upload operations of one engine's bucket and prefix.
#[derive(Clone)]
pub struct Bucket {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bucket({})", self.shared.config.location)
    }
}

impl Bucket {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Bucket { shared }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = Result<T, S3Error>> + Send + 'static,
    ) -> Result<T, S3Error> {
        self.shared.driver.spawn(work).await.map_err(|s| self.shared.site.stopped(s))?
    }

    /// The key of `name` under `prefix/uploads/`: segments of letters, digits, `-`, `_` and
    /// `.` separated by single slashes (no `.`/`..`), at most 512 bytes.
    pub fn upload_key(&self, name: &str) -> Result<UploadKey, S3Error> {
        let ok = !name.is_empty()
            && name.len() <= 512
            && name.split('/').all(|s| {
                !s.is_empty()
                    && s != "."
                    && s != ".."
                    && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            });
        if !ok {
            return Err(S3Error::Config(format!("{name:?} is not a valid upload object name")));
        }
        Ok(UploadKey(self.shared.key(&format!("uploads/{name}"))))
    }

    /// Starts a multipart upload of `key`; returns S3's upload id.
    pub async fn create_multipart(&self, key: &UploadKey) -> Result<String, S3Error> {
        let (store, site, key) = (self.shared.store.clone(), self.shared.site.clone(), key.0.clone());
        self.run(async move {
            store.create_multipart(&Path::from(key.as_str())).await.map_err(|e| site.error(e, Some(&key)))
        })
        .await
    }

    /// A URL that lets its holder `PUT` the bytes of part `number` (1 to 10,000) of an upload
    /// for `expires_in` (at most 7 days). The browser reads the part's ETag from the answer.
    pub async fn sign_part(
        &self,
        key: &UploadKey,
        upload_id: &str,
        number: u32,
        expires_in: Duration,
    ) -> Result<String, S3Error> {
        if !(1..=MAX_PARTS).contains(&number) {
            return Err(S3Error::InvalidParts {
                key: key.0.clone(),
                why: format!("part number {number} is not 1 to {MAX_PARTS}"),
            });
        }
        if expires_in.is_zero() || expires_in > MAX_URL_LIFETIME {
            return Err(S3Error::Config(format!("a part URL lives 1 s to 7 days, not {expires_in:?}")));
        }
        let query = [("partNumber", number.to_string()), ("uploadId", upload_id.to_string())];
        let (store, site, key) = (self.shared.store.clone(), self.shared.site.clone(), key.0.clone());
        self.run(async move {
            let options = SignedUrlOptions::default().with_query(query);
            let url = store.signed_url_opts(Method::PUT, &Path::from(key.as_str()), expires_in, &options).await;
            url.map(|u| u.to_string()).map_err(|e| site.error(e, Some(&key)))
        })
        .await
    }

    /// The origin (`scheme://host[:port]`) the part URLs point at: what a page that uploads
    /// parts must be allowed to connect to (the folder page's CSP). Read from a URL signed here
    /// for a throwaway key (signing sends no request), so it is exactly what browsers get
    /// whichever addressing style (path or virtual-hosted) the client uses.
    pub fn origin(&self) -> Result<String, S3Error> {
        let (store, site) = (self.shared.store.clone(), self.shared.site.clone());
        let key = self.shared.key("uploads/origin");
        let url = self.shared.block(async move {
            let signed = store.signed_url(Method::PUT, &Path::from(key.as_str()), Duration::from_secs(60)).await;
            signed.map_err(|e| site.error(e, Some(&key)))
        })?;
        Ok(url.origin().ascii_serialization())
    }

    /// The parts S3 holds for an upload, in part-number order (object_store has no ListParts:
    /// this presigns the request with its signer and reads the answer itself, page by page).
    pub async fn list_parts(&self, key: &UploadKey, upload_id: &str) -> Result<Vec<StoredPart>, S3Error> {
        let (store, http, site) = (self.shared.store.clone(), self.shared.http.clone(), self.shared.site.clone());
        let (key, upload_id) = (key.0.clone(), upload_id.to_string());
        self.run(async move {
            let mut parts = Vec::new();
            let mut marker: Option<u32> = None;
            loop {
                let mut query = vec![("uploadId", upload_id.clone())];
                if let Some(m) = marker {
                    query.push(("part-number-marker", m.to_string()));
                }
                let options = SignedUrlOptions::default().with_query(query);
                let url = store
                    .signed_url_opts(Method::GET, &Path::from(key.as_str()), LIST_URL_LIFETIME, &options)
                    .await
                    .map_err(|e| site.error(e, Some(&key)))?;
                let request = http::Request::get(url.as_str())
                    .body(object_store::client::HttpRequestBody::empty())
                    .map_err(|e| site.failed(format!("building ListParts: {e}")))?;
                let unreachable = |e: &dyn std::error::Error| S3Error::Unreachable {
                    endpoint: site.endpoint.clone(),
                    bucket: site.bucket.clone(),
                    why: e.to_string(),
                };
                let (head, body) = http.send(request).await.map_err(|e| unreachable(&e))?.into_parts();
                let body = body.collect().await.map_err(|e| unreachable(&e))?.to_bytes();
                if !head.status.is_success() {
                    return Err(match parse_error(&body) {
                        Some((code, _)) if code == "NoSuchUpload" => S3Error::NoSuchUpload { key, upload_id },
                        Some((code, _)) if code == "NoSuchBucket" => {
                            S3Error::NoSuchBucket { endpoint: site.endpoint.clone(), bucket: site.bucket.clone() }
                        }
                        Some((code, message)) => site.failed(format!("ListParts: {} {code}: {message}", head.status)),
                        None => site.failed(format!("ListParts: {}", head.status)),
                    });
                }
                let page = parse_list_parts(&body).map_err(|why| site.failed(why))?;
                parts.extend(page.parts);
                match page.next_marker {
                    // A marker that does not move on would loop forever.
                    Some(next) if marker.is_none_or(|m| next > m) => marker = Some(next),
                    Some(_) => return Err(site.failed("ListParts: the next page marker does not advance")),
                    None => break,
                }
            }
            Ok(parts)
        })
        .await
    }

    /// Completes an upload from its parts' (number, ETag) pairs: numbers 1 to n, each once
    /// (object_store numbers the parts it sends by position), in any order given.
    pub async fn complete(
        &self,
        key: &UploadKey,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> Result<CompletedObject, S3Error> {
        let mut sorted = parts.to_vec();
        sorted.sort_by_key(|(n, _)| *n);
        let invalid = |why: String| S3Error::InvalidParts { key: key.0.clone(), why };
        if sorted.is_empty() {
            return Err(invalid("no parts".into()));
        }
        if let Some((i, (n, _))) = sorted.iter().enumerate().find(|(i, (n, _))| *n as usize != i + 1) {
            return Err(invalid(format!(
                "parts must be numbered 1 to {} without gaps or repeats; found {n} at position {}",
                sorted.len(),
                i + 1
            )));
        }
        let ids: Vec<PartId> = sorted.into_iter().map(|(_, etag)| PartId { content_id: etag }).collect();
        let (store, site) = (self.shared.store.clone(), self.shared.site.clone());
        let (full, upload_id) = (key.clone(), upload_id.to_string());
        self.run(async move {
            let path = Path::from(full.0.as_str());
            match store.complete_multipart(&path, &upload_id, ids).await {
                Ok(done) => Ok(CompletedObject { key: full, etag: done.e_tag }),
                Err(e) => Err(upload_error(&site, e, &full.0, &upload_id)),
            }
        })
        .await
    }

    /// Aborts an upload: S3 drops its parts.
    pub async fn abort(&self, key: &UploadKey, upload_id: &str) -> Result<(), S3Error> {
        let (store, site) = (self.shared.store.clone(), self.shared.site.clone());
        let (key, upload_id) = (key.0.clone(), upload_id.to_string());
        self.run(async move {
            let path = Path::from(key.as_str());
            store.abort_multipart(&path, &upload_id).await.map_err(|e| upload_error(&site, e, &key, &upload_id))
        })
        .await
    }

    /// The size of an object, None when there is none.
    pub async fn size(&self, key: &UploadKey) -> Result<Option<u64>, S3Error> {
        let (store, site, key) = (self.shared.store.clone(), self.shared.site.clone(), key.0.clone());
        self.run(async move {
            match store.head(&Path::from(key.as_str())).await {
                Ok(meta) => Ok(Some(meta.size)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(site.error(e, Some(&key))),
            }
        })
        .await
    }

    /// An object's size and bytes, streamed (a few frames buffered; the download runs on the
    /// engine's runtime and stops when the stream is dropped). A stream that goes a minute
    /// without a byte ends with an error.
    pub async fn read(&self, key: &UploadKey) -> Result<(u64, ObjectStream), S3Error> {
        let (store, site, key) = (self.shared.store.clone(), self.shared.site.clone(), key.0.clone());
        let opened = {
            let (site, key) = (site.clone(), key.clone());
            self.run(async move { store.get(&Path::from(key.as_str())).await.map_err(|e| site.error(e, Some(&key))) })
                .await?
        };
        let size = opened.meta.size;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, S3Error>>(STREAM_FRAMES);
        self.shared.driver.handle().spawn(async move {
            let mut body = opened.into_stream();
            loop {
                let item = match tokio::time::timeout(STREAM_IDLE, body.next()).await {
                    Ok(None) => break,
                    Ok(Some(Ok(bytes))) => Ok(bytes),
                    Ok(Some(Err(e))) => Err(site.error(e, Some(&key))),
                    Err(_) => Err(S3Error::Unreachable {
                        endpoint: site.endpoint.clone(),
                        bucket: site.bucket.clone(),
                        why: format!("reading {key}: no byte for {} s", STREAM_IDLE.as_secs()),
                    }),
                };
                let failed = item.is_err();
                // A reader that stopped reading (or left) ends the download too.
                match tokio::time::timeout(STREAM_IDLE, tx.send(item)).await {
                    Ok(Ok(())) if !failed => {}
                    _ => break,
                }
            }
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
        Ok((size, stream.boxed()))
    }

    /// Deletes an object (none there: no error).
    pub async fn delete(&self, key: &UploadKey) -> Result<(), S3Error> {
        let (store, site, key) = (self.shared.store.clone(), self.shared.site.clone(), key.0.clone());
        self.run(async move {
            match store.delete(&Path::from(key.as_str())).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(site.error(e, Some(&key))),
            }
        })
        .await
    }
}

/// The error of an operation on an upload: S3's codes for unknown uploads and refused parts
/// first, then the general classification.
fn upload_error(site: &error::Site, e: object_store::Error, key: &str, upload_id: &str) -> S3Error {
    let text = error::chain(&e);
    if text.contains("NoSuchUpload") {
        return S3Error::NoSuchUpload { key: key.to_string(), upload_id: upload_id.to_string() };
    }
    for code in ["InvalidPartOrder", "InvalidPart", "EntityTooSmall", "MalformedXML"] {
        if text.contains(code) {
            return S3Error::InvalidParts { key: key.to_string(), why: text };
        }
    }
    site.error(e, Some(key))
}
