//! The S3 chunk engine (`--blob-store s3://bucket/prefix`): sealed chunks as objects in an
//! S3-compatible bucket (AWS S3, MinIO, SeaweedFS, R2, ...), through Apache Arrow's
//! `object_store` on our own HTTP client ([`client`]).
//!
//! Layout under the prefix (docs/OBJECT-STORAGE.md has the longer story):
//! - `chunks/<64 hex digits>`: one object per chunk, its sealed bytes, with the plaintext
//!   length as user metadata (`x-amz-meta-plain-len`), so [`ChunkStore::lookup`] is one HEAD
//!   per id and never downloads a chunk. Flat, no fan-out directories: ids are uniformly
//!   random hex, so S3 spreads them over its partitions by itself (its request-rate limits
//!   are per partitioned prefix), and one flat listing in key order is exactly
//!   [`ChunkStore::ids`]' id order (lowercase hex sorts like the bytes it spells).
//! - `header`: the sealing header (see `seal::Header`).
//! - `owner`: which data dir's versions reference these chunks ([`S3ChunkStore::claim`]).
//! - `uploads/…`: objects that browsers upload in parts ([`bucket::Bucket`]).
//! - `probe/<random>`: the start-up check's short-lived object ([`check`]).
//!
//! Costs, per call: `put` one conditional PUT (`If-None-Match: *`: a chunk already stored is
//! left alone, atomically); `get` one GET; `lookup`/`missing` one HEAD per id, 16 at a time;
//! `delete` one bulk `DeleteObjects` per 1,000 ids; `ids` one LIST; `header`/`set_header` one
//! GET or PUT; `stats` see [`S3ChunkStore::stats`]. Every call is bounded (`driver`).
//! Consistency: S3 is strongly consistent for reads after writes and for listings since
//! December 2020; so are MinIO and SeaweedFS.
//!
//! Errors: any failure is `ChunkError::Engine` with a message naming the endpoint and bucket
//! (see [`S3Error`]); nothing here panics on a store's answer.

pub mod bucket;
pub mod check;
mod client;
pub mod config;
mod driver;
mod error;
mod parts;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, BackoffConfig, GetOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig,
};

pub use bucket::{Bucket, CompletedObject, ObjectStream, StoredPart};
pub use config::{S3Config, S3Location};
pub use error::S3Error;

use self::client::Http;
use self::driver::Driver;
use self::error::Site;
use super::{ChunkError, ChunkId, ChunkSize, ChunkStore, EngineStats};

/// The user metadata key holding a chunk's plaintext length.
const PLAIN_LEN: &str = "plain-len";
/// HEADs in flight at once for one `lookup`.
const LOOKUP_CONCURRENCY: usize = 16;
/// How long `stats` keeps the totals of its last listing (see [`S3ChunkStore::stats`]).
const TOTALS_FRESH: Duration = Duration::from_secs(600);
/// The most keys S3 returns per LIST.
const LIST_PAGE: usize = 1000;

/// What every operation shares: the store, our HTTP client, the runtime, where it all is.
pub(crate) struct Shared {
    store: Arc<AmazonS3>,
    http: Http,
    driver: Driver,
    site: Site,
    config: S3Config,
}

impl Shared {
    fn key(&self, name: &str) -> String {
        self.config.location.key(name)
    }

    fn chunk_key(&self, id: &ChunkId) -> String {
        self.key(&format!("chunks/{id}"))
    }

    /// Runs `work` to completion from a synchronous caller.
    fn block<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = Result<T, S3Error>> + Send + 'static,
    ) -> Result<T, S3Error> {
        self.driver.block(work).map_err(|s| self.site.stopped(s))?
    }
}

/// The retry policy of chunk operations: a few quick retries of transient failures (5xx,
/// throttling, dropped connections), all within the operation's deadline.
fn retry_policy() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: 4,
        retry_timeout: Duration::from_secs(30),
    }
}

/// Builds object_store's client for `config` on `http`.
fn build_store(config: &S3Config, http: &Http, retry: RetryConfig) -> Result<AmazonS3, S3Error> {
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&config.location.bucket)
        .with_region(&config.region)
        .with_access_key_id(&config.access_key_id)
        .with_secret_access_key(&config.secret_access_key)
        .with_virtual_hosted_style_request(config.virtual_hosted)
        .with_allow_http(config.plain_http())
        .with_retry(retry)
        .with_http_connector(http.connector());
    if let Some(endpoint) = &config.endpoint {
        builder = builder.with_endpoint(endpoint.trim_end_matches('/'));
    }
    if let Some(token) = &config.session_token {
        builder = builder.with_token(token);
    }
    builder.build().map_err(|e| S3Error::Config(format!("{}: {}", config.location, error::chain(&e))))
}

/// Sealed chunks in an S3 bucket.
pub struct S3ChunkStore {
    shared: Arc<Shared>,
    /// The totals of the last listing and when it was made, kept current by this process's
    /// own puts; None until the first `stats` or after a delete.
    totals: Mutex<Option<(EngineStats, Instant)>>,
}

impl std::fmt::Debug for S3ChunkStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3ChunkStore({} at {})", self.shared.config.location, self.shared.site.endpoint)
    }
}

impl S3ChunkStore {
    /// Opens the engine (no request yet: [`S3ChunkStore::check`] is the start-up check).
    pub fn open(config: S3Config) -> Result<Self, S3Error> {
        config.check_endpoint()?;
        let http = Http::new(config.plain_http());
        let store = Arc::new(build_store(&config, &http, retry_policy())?);
        let driver = Driver::new().map_err(|e| S3Error::Config(format!("starting the S3 engine's runtime: {e}")))?;
        let site = Site { endpoint: config.endpoint_url(), bucket: config.location.bucket.clone() };
        let shared = Arc::new(Shared { store, http, driver, site, config });
        Ok(S3ChunkStore { shared, totals: Mutex::new(None) })
    }

    /// Where the chunks are (`s3://bucket/prefix at endpoint`), for messages.
    pub fn describe(&self) -> String {
        format!("{} at {}", self.shared.config.location, self.shared.site.endpoint)
    }

    /// The bytes of the object `key` (None: there is none).
    fn read_object(&self, key: String) -> Result<Option<Vec<u8>>, ChunkError> {
        let (store, site) = (self.shared.store.clone(), self.shared.site.clone());
        Ok(self.shared.block(async move {
            let path = Path::from(key.as_str());
            let read = async { store.get(&path).await?.bytes().await };
            match read.await {
                Ok(bytes) => Ok(Some(bytes.to_vec())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(site.error(e, Some(&key))),
            }
        })?)
    }

    /// The bucket operations of direct uploads, on this engine's client and runtime.
    pub fn bucket(&self) -> Bucket {
        Bucket::new(self.shared.clone())
    }

    fn totals(&self) -> MutexGuard<'_, Option<(EngineStats, Instant)>> {
        // Each change is one assignment: a panic elsewhere cannot leave it half-done.
        self.totals.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts every chunk object: one LIST per 1,000 chunks.
    fn count(&self) -> Result<EngineStats, S3Error> {
        let store = self.shared.store.clone();
        let prefix = Path::from(self.shared.key("chunks/"));
        let site = self.shared.site.clone();
        self.shared.block(async move {
            let mut stream = store.list(Some(&prefix));
            let mut stats = EngineStats { chunks: 0, stored_bytes: 0, plain_bytes: None };
            while let Some(meta) = stream.next().await {
                let meta = meta.map_err(|e| site.error(e, None))?;
                if meta.location.filename().and_then(ChunkId::from_hex).is_some() {
                    stats.chunks += 1;
                    stats.stored_bytes += meta.size;
                }
            }
            Ok(stats)
        })
    }
}

impl ChunkStore for S3ChunkStore {
    fn put(&self, id: &ChunkId, sealed: &[u8], plain_len: u32) -> Result<bool, ChunkError> {
        let key = self.shared.chunk_key(id);
        let (store, site) = (self.shared.store.clone(), self.shared.site.clone());
        let payload = PutPayload::from(Bytes::copy_from_slice(sealed));
        let attributes = Attributes::from_iter([(Attribute::Metadata(PLAIN_LEN.into()), plain_len.to_string())]);
        let created = self.shared.block(async move {
            let opts = PutOptions { mode: PutMode::Create, attributes, ..Default::default() };
            match store.put_opts(&Path::from(key.as_str()), payload, opts).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => Ok(false),
                Err(e) => Err(site.error(e, Some(&key))),
            }
        })?;
        if created {
            if let Some((totals, _)) = self.totals().as_mut() {
                totals.chunks += 1;
                totals.stored_bytes += sealed.len() as u64;
            }
        }
        Ok(created)
    }

    fn get(&self, id: &ChunkId) -> Result<Option<Vec<u8>>, ChunkError> {
        self.read_object(self.shared.chunk_key(id))
    }

    fn lookup(&self, ids: &[ChunkId]) -> Result<Vec<Option<ChunkSize>>, ChunkError> {
        let keys: Vec<String> = ids.iter().map(|id| self.shared.chunk_key(id)).collect();
        let (store, site) = (self.shared.store.clone(), self.shared.site.clone());
        Ok(self.shared.block(async move {
            futures_util::stream::iter(keys)
                .map(|key| {
                    let (store, site) = (store.clone(), site.clone());
                    async move { head(&store, &site, key).await }
                })
                .buffered(LOOKUP_CONCURRENCY)
                .try_collect()
                .await
        })?)
    }

    fn delete(&self, ids: &[ChunkId]) -> Result<(), ChunkError> {
        if ids.is_empty() {
            return Ok(());
        }
        let paths: Vec<object_store::Result<Path>> =
            ids.iter().map(|id| Ok(Path::from(self.shared.chunk_key(id)))).collect();
        let (store, site) = (self.shared.store.clone(), self.shared.site.clone());
        // The totals no longer hold; the next `stats` lists again.
        *self.totals() = None;
        Ok(self.shared.block(async move {
            let mut deleted = store.delete_stream(futures_util::stream::iter(paths).boxed());
            while let Some(done) = deleted.next().await {
                match done {
                    Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(site.error(e, None)),
                }
            }
            Ok(())
        })?)
    }

    fn ids(&self, after: Option<&ChunkId>, limit: usize) -> Result<Vec<ChunkId>, ChunkError> {
        let prefix = self.shared.key("chunks/");
        let offset = after.map(|id| self.shared.chunk_key(id));
        let (store, site) = (self.shared.store.clone(), self.shared.site.clone());
        Ok(self.shared.block(async move {
            let mut out = Vec::new();
            let mut page_token = None;
            while out.len() < limit {
                let opts = PaginatedListOptions {
                    offset: offset.clone(),
                    max_keys: Some((limit - out.len()).min(LIST_PAGE)),
                    page_token: page_token.take(),
                    ..Default::default()
                };
                let page = store.list_paginated(Some(&prefix), opts).await.map_err(|e| site.error(e, None))?;
                for meta in page.result.objects {
                    // Keys that are not chunk ids (nothing writes any) are not chunks.
                    if let Some(id) = meta.location.filename().and_then(ChunkId::from_hex) {
                        if out.len() < limit {
                            out.push(id);
                        }
                    }
                }
                match page.page_token {
                    Some(token) => page_token = Some(token),
                    None => break,
                }
            }
            out.sort();
            Ok(out)
        })?)
    }

    /// The totals: the number of chunk objects and their bytes from a listing of
    /// `chunks/` (one LIST per 1,000 chunks: about a second per 100,000 chunks), made on
    /// the first call and again when the last is older than ten minutes or a delete ran
    /// since; in between, this server's own puts keep them current (another server writing
    /// the same prefix shows at the next listing). `plain_bytes` is None: a listing does not
    /// return the metadata that holds it, and a HEAD per chunk would cost more than the figure
    /// is worth. Only `GET /.plait/chunks` and tests ask for it, never a write or a read.
    fn stats(&self) -> Result<EngineStats, ChunkError> {
        if let Some((totals, at)) = *self.totals() {
            if at.elapsed() < TOTALS_FRESH {
                return Ok(totals);
            }
        }
        let counted = self.count()?;
        *self.totals() = Some((counted, Instant::now()));
        Ok(counted)
    }

    fn header(&self) -> Result<Option<Vec<u8>>, ChunkError> {
        self.read_object(self.shared.key("header"))
    }

    fn set_header(&self, value: &[u8]) -> Result<(), ChunkError> {
        let key = self.shared.key("header");
        let (store, site) = (self.shared.store.clone(), self.shared.site.clone());
        let payload = PutPayload::from(Bytes::copy_from_slice(value));
        Ok(self.shared.block(async move {
            store.put(&Path::from(key.as_str()), payload).await.map(|_| ()).map_err(|e| site.error(e, Some(&key)))
        })?)
    }
}

/// One chunk's sizes from a HEAD: stored = the object's size, plain = its metadata.
async fn head(store: &AmazonS3, site: &Site, key: String) -> Result<Option<ChunkSize>, S3Error> {
    let opts = GetOptions { head: true, ..Default::default() };
    let result = match store.get_opts(&Path::from(key.as_str()), opts).await {
        Ok(result) => result,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(site.error(e, Some(&key))),
    };
    let plain = result
        .attributes
        .get(&Attribute::Metadata(PLAIN_LEN.into()))
        .and_then(|v| v.as_ref().parse::<u32>().ok())
        .ok_or_else(|| site.failed(format!("chunk object {key} has no {PLAIN_LEN} metadata")))?;
    let stored = u32::try_from(result.meta.size)
        .map_err(|_| site.failed(format!("chunk object {key} is {} bytes, larger than any chunk", result.meta.size)))?;
    Ok(Some(ChunkSize { plain, stored }))
}
