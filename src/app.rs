//! The composition root: builds the store, hub and router from the configuration, and
//! serves until shutdown. The only place that constructs concrete engines.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::Access;
use crate::chunks::s3::S3Config;
use crate::chunks::{ChunkKey, ChunkParams, ChunkStore, MemoryChunkStore, RocksChunkStore, S3ChunkStore, Vault};
use crate::config::{AuthMode, ServeConfig};
use crate::http::{self, AppState, ConnLimits, CorsOrigins, HttpSettings};
use crate::hub::{run_collector, run_retention, DirectBucket, FileStore, Hub, RetentionPolicy};
use crate::store::{track_close, ChangeLog, CloseWatch, Committer, MemoryStore, Store, StoreError};

/// Opens the configured store.
pub fn open_store(cfg: &ServeConfig) -> anyhow::Result<Arc<dyn Store>> {
    if cfg.memory {
        return Ok(Arc::new(MemoryStore::new()));
    }
    open_rocks(cfg)
}

fn open_rocks(cfg: &ServeConfig) -> anyhow::Result<Arc<dyn Store>> {
    std::fs::create_dir_all(&cfg.data_dir).with_context(|| format!("creating {}", cfg.data_dir.display()))?;
    crate::store::open_synced(&cfg.data_dir).map_err(|e| match e {
        // Says itself which data dir, what it holds and what this build reads.
        StoreError::Format { .. } => anyhow::Error::new(e),
        e => anyhow::Error::new(e)
            .context(format!("opening RocksDB at {} (a build without RocksDB needs --memory)", cfg.data_dir.display())),
    })
}

/// Opens the chunk store of file resources: `<data-dir>/chunks` (a RocksDB of its own), an S3
/// bucket with `--blob-store s3://…`, or memory with `--memory`; sealed with the key file when
/// one is configured (a store written with another key, or with a key when none is given, is
/// refused here). `epoch` is the document store's change log epoch: an S3 prefix is tied to it.
pub fn open_files(cfg: &ServeConfig, epoch: u64) -> anyhow::Result<FileStore> {
    let params = ChunkParams::new(cfg.chunk_min_bytes, cfg.chunk_avg_bytes, cfg.chunk_max_bytes)
        .context("--chunk-min-bytes/--chunk-avg-bytes/--chunk-max-bytes")?;
    let key = match &cfg.chunk_key_file {
        Some(path) => Some(ChunkKey::load(path).with_context(|| format!("loading the chunk key {}", path.display()))?),
        None => None,
    };
    let mut direct = None;
    let (engine, location): (Arc<dyn ChunkStore>, String) = if let Some(url) = &cfg.blob_store {
        let engine = open_s3(cfg, url, epoch)?;
        let location = engine.describe();
        if cfg.direct_uploads {
            let bucket = engine.bucket();
            let origin = bucket.origin().map_err(|e| anyhow::anyhow!("the chunk store {url}: {e}"))?;
            direct = Some(DirectBucket { bucket, origin });
        }
        (Arc::new(engine), location)
    } else if cfg.memory {
        (Arc::new(MemoryChunkStore::new()), "in memory".into())
    } else {
        let dir = cfg.data_dir.join("chunks");
        let engine =
            RocksChunkStore::open(&dir).with_context(|| format!("opening the chunk store {}", dir.display()))?;
        (Arc::new(engine), dir.display().to_string())
    };
    // Chunks as large as the chunker's maximum: a store written with a larger maximum still
    // reads (the limit applies to what is written).
    let vault = Vault::open(engine, key.as_ref(), params.max(), &location)?;
    Ok(FileStore { vault: Arc::new(vault), params, max_file_bytes: cfg.max_file_bytes, direct })
}

/// Opens and checks the S3 engine of `--blob-store`. Every refusal is one line naming the
/// store, and `plait serve` exits with it before listening.
fn open_s3(cfg: &ServeConfig, url: &str, epoch: u64) -> anyhow::Result<S3ChunkStore> {
    anyhow::ensure!(
        !cfg.memory,
        "--blob-store {url} with --memory: the versions that reference the chunks would be lost at exit, and \
         the next start's collector would delete every chunk under the prefix"
    );
    let fail = |e: crate::chunks::s3::S3Error| anyhow::anyhow!("the chunk store {url}: {e}");
    let engine = S3ChunkStore::open(S3Config::from_env(url).map_err(fail)?).map_err(fail)?;
    let origins = if cfg.direct_uploads { direct_upload_origins(cfg) } else { Vec::new() };
    engine.check(&origins).map_err(fail)?;
    engine.claim(epoch).map_err(fail)?;
    tracing::info!(chunks = %engine.describe(), direct_uploads = cfg.direct_uploads, "file chunks are in S3");
    Ok(engine)
}

/// The browser origins direct uploads come from: each `--cors-origins` origin, or with `*`
/// this server's own (a page it serves).
fn direct_upload_origins(cfg: &ServeConfig) -> Vec<String> {
    let listed: Vec<String> =
        cfg.cors_origins.iter().map(|o| o.trim().to_string()).filter(|o| !o.is_empty() && o != "*").collect();
    if listed.is_empty() || cfg.cors_origins.iter().any(|o| o.trim() == "*") {
        let mut own = vec![format!("{}://{}", scheme(cfg), cfg.listen)];
        own.extend(listed);
        own
    } else {
        listed
    }
}

/// The URL scheme the server answers on.
pub fn scheme(cfg: &ServeConfig) -> &'static str {
    if cfg.tls_cert.is_some() {
        "https"
    } else {
        "http"
    }
}

/// A description of the store for the start-up line.
pub fn store_description(cfg: &ServeConfig) -> String {
    let documents = if cfg.memory {
        "memory (nothing is kept after exit)".to_string()
    } else {
        format!("rocksdb at {}", cfg.data_dir.display())
    };
    match &cfg.blob_store {
        Some(url) => format!("{documents}, file chunks in {url}"),
        None => documents,
    }
}

/// A description of the access mode for the start-up line.
pub fn auth_description(cfg: &ServeConfig) -> &'static str {
    match cfg.auth {
        AuthMode::Token => "token",
        AuthMode::None => "none",
    }
}

/// Access control for `cfg`: None with `--auth none` (`check_auth_mode` has allowed it).
fn open_access(cfg: &ServeConfig, store: &Arc<dyn Store>) -> anyhow::Result<Option<Access>> {
    if cfg.auth == AuthMode::None {
        tracing::warn!(
            listen = %cfg.listen,
            "access control is OFF (--auth none): anyone who can connect reads and writes every document"
        );
        return Ok(None);
    }
    let admin = cfg.admin_secret()?;
    let access = Access::open(store.clone(), admin.as_deref(), cfg.auth_failures_per_minute)
        .context("loading tokens and share links")?;
    anyhow::ensure!(
        access.has_credentials(),
        "--auth token needs an admin token to create the first tokens: set PLAIT_ADMIN_TOKEN or \
         --admin-token-file (at least 32 characters, e.g. `openssl rand -hex 32`), or use --auth none on a \
         loopback address"
    );
    let (tokens, shares) = access.counts();
    tracing::info!(
        admin_token = cfg.admin_source(),
        tokens,
        shares,
        "access control is on (--auth token): every request needs a token or share link, except /.plait/health"
    );
    if admin.is_none() {
        tracing::warn!("no admin token configured: tokens and share links cannot be managed until one is");
    }
    Ok(Some(access))
}

/// Everything needed to serve, built (store opened) before the listener is announced.
pub struct App {
    state: AppState,
    stop: watch::Sender<bool>,
    limits: ConnLimits,
    /// Closed after the last connection ends, so its document actors exit.
    hub: Hub,
    /// The background compaction pass, when a retention rule compacts.
    retention: Option<(RetentionPolicy, Duration)>,
    /// How often the chunk collector runs (None: only on request).
    collect_every: Option<Duration>,
    /// Fires once the store's last handle is gone and the engine has closed.
    store_closed: CloseWatch,
    /// Tokens and share links (for the expiry task), when access control is on.
    access: Option<Access>,
}

/// How long shutdown waits for the store to close after the last connection ended.
const STORE_CLOSE_LIMIT: Duration = Duration::from_secs(10);

impl App {
    /// Opens the store and wires the hub and the router.
    pub fn build(cfg: &ServeConfig) -> anyhow::Result<App> {
        cfg.check_auth_mode()?;
        anyhow::ensure!(
            !cfg.direct_uploads || cfg.blob_store.is_some(),
            "--direct-uploads needs an object store for the browsers to upload to: add --blob-store s3://bucket/prefix"
        );
        let (store, store_closed) = track_close(open_store(cfg)?);
        let access = open_access(cfg, &store)?;
        let log = Arc::new(ChangeLog::open(store.as_ref(), cfg.change_log_window).context("opening the change log")?);
        let epoch = log.epoch();
        let delay = match cfg.unsafe_ack_before_durable_ms {
            Some(ms) => {
                tracing::warn!(delay_ms = ms, "UNSAFE: acknowledging writes before they are durable (testing only)");
                Duration::from_millis(ms)
            }
            None => Duration::ZERO,
        };
        let committer = Committer::start_with(store.clone(), log, delay).context("starting the commit thread")?;
        let files = open_files(cfg, epoch)?;
        let hub = Hub::new(store, committer, cfg.hub_settings(), files);
        hub.backfill_changes().context("adding the stored resources to the change log")?;
        let hub_handle = hub.clone();
        let cors = CorsOrigins::from_config(&cfg.cors_origins).map_err(anyhow::Error::msg)?;
        let policy = RetentionPolicy::new(cfg.retention.clone());
        let retention = (!policy.keeps_everything())
            .then(|| (policy.clone(), Duration::from_secs(cfg.compaction_interval_secs.max(1))));
        let settings = HttpSettings {
            max_body_bytes: cfg.max_body_bytes,
            body_timeout: Duration::from_secs(cfg.body_timeout_secs.max(1)),
            max_version_ids: cfg.max_version_ids,
            max_patches: cfg.max_patches,
            max_rebase_delay: Duration::from_millis(cfg.max_rebase_delay_ms),
            cors,
            compression: !cfg.no_compression,
            max_poll: Duration::from_secs(cfg.max_poll_secs),
            editor: !cfg.no_editor,
            retention: policy.clone(),
            client_ip_header: match &cfg.client_ip_header {
                Some(name) => Some(
                    http::header_name(name)
                        .with_context(|| format!("--client-ip-header {name:?} is not a header name"))?,
                ),
                None => None,
            },
            https: cfg.tls_cert.is_some(),
        };
        let (stop, stop_rx) = watch::channel(false);
        let limits = ConnLimits {
            max_header_bytes: cfg.max_header_bytes,
            header_timeout: Duration::from_secs(cfg.header_timeout_secs.max(1)),
            shutdown_grace: Duration::from_millis(1500),
            stall_timeout: Duration::from_secs(cfg.stall_timeout_secs.max(1)),
            tls: match (&cfg.tls_cert, &cfg.tls_key) {
                (Some(cert), Some(key)) => Some(http::tls_acceptor(cert, key)?),
                _ => None,
            },
        };
        Ok(App {
            state: AppState::new(hub, settings, stop_rx, access.clone()),
            stop,
            limits,
            hub: hub_handle,
            retention,
            collect_every: (cfg.chunk_collect_interval_secs > 0)
                .then(|| Duration::from_secs(cfg.chunk_collect_interval_secs)),
            store_closed,
            access,
        })
    }

    /// Serves on `listener` until `shutdown` completes, then ends subscriptions and
    /// connections, and returns once the store has closed (so RocksDB is never still
    /// closing while the process exits).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let App { state, stop, limits, hub, retention, collect_every, store_closed, access } = self;
        let compaction = retention.map(|(policy, every)| tokio::spawn(run_retention(hub.clone(), policy, every)));
        let collector = collect_every.map(|every| tokio::spawn(run_collector(hub.clone(), every)));
        // Abandoned uploads: a pass every quarter of their lifetime, at least every minute.
        let every = (hub.upload_expiry() / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
        let uploads = Some(tokio::spawn(crate::hub::run_expiry(hub.clone(), every)));
        // The expiry task holds the store (through `Access`): it must be gone before the wait below.
        let expiry = access.map(|a| tokio::spawn(a.run_expiry()));
        // At shutdown, subscriptions end through their documents (see `Hub::end_subscriptions`).
        let mut stopping = stop.subscribe();
        let ending_hub = hub.clone();
        let ender = tokio::spawn(async move {
            if stopping.wait_for(|stop| *stop).await.is_ok() {
                ending_hub.end_subscriptions();
            }
        });
        http::serve_api(listener, state, limits, stop, shutdown).await.context("serving HTTP")?;
        for task in [compaction, collector, expiry, uploads, Some(ender)].into_iter().flatten() {
            task.abort();
            let _ = task.await;
        }
        hub.close();
        drop(hub);
        let closed = tokio::task::spawn_blocking(move || store_closed.wait(STORE_CLOSE_LIMIT))
            .await
            .context("waiting for the store to close")?;
        anyhow::ensure!(closed, "the store was still in use {STORE_CLOSE_LIMIT:?} after the last connection ended");
        Ok(())
    }
}

/// A server running in the background of the current runtime, for tests and embedding.
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Binds `cfg.listen` and serves in a spawned task.
    pub async fn start(cfg: ServeConfig) -> anyhow::Result<Running> {
        let listener = TcpListener::bind(cfg.listen).await.with_context(|| format!("binding {}", cfg.listen))?;
        let addr = listener.local_addr()?;
        let app = App::build(&cfg)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.serve(listener, async move {
            let _ = stopped.await;
        }));
        Ok(Running { addr, stop: Some(stop), task })
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.context("server task")?
    }
}
