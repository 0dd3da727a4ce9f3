//! Command line and environment configuration. `plait serve --help` is the reference;
//! every flag can also be set through the `PLAIT_*` environment variable it names.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::hub::{AckPolicy, HubSettings, RetentionRule};

/// Plait: a Braid-HTTP sync server.
#[derive(Parser, Debug)]
#[command(name = "plait", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands (the load generator is its own binary, `plait-bench`).
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server.
    Serve(Box<ServeConfig>),
    /// Keep local folders and server folders the same, both ways (a daemon), or control it.
    Sync(crate::client::sync::SyncArgs),
    #[command(flatten)]
    Client(crate::client::cmd::ClientCommand),
}

/// Whether requests need credentials.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// Every request needs a token or a share link (except `/.plait/health`).
    Token,
    /// Anyone who can reach the server reads and writes everything.
    None,
}

/// How log lines are written to stderr.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event, the span's fields in front (`request{method=GET ...}`).
    Text,
    /// One JSON object per line, with the fields of every span the event is in (`spans`), for
    /// log collectors.
    Json,
}

/// Everything `plait serve` can be told.
#[derive(Args, Clone, Debug)]
pub struct ServeConfig {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, env = "PLAIT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory of the RocksDB database holding every document's history.
    #[arg(long, env = "PLAIT_DATA_DIR", default_value = "./plait-data")]
    pub data_dir: PathBuf,

    /// Keep everything in memory instead (nothing survives a restart).
    #[arg(long, env = "PLAIT_MEMORY", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub memory: bool,

    /// Do not serve the live editor page to browsers (they get the plain text instead).
    #[arg(long, env = "PLAIT_NO_EDITOR", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub no_editor: bool,

    /// Never compress responses (by default finite responses are gzip/brotli-compressed when the
    /// client accepts it; subscriptions never are).
    #[arg(long, env = "PLAIT_NO_COMPRESSION", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub no_compression: bool,

    /// Origins allowed by CORS, comma separated; `*` allows any origin (without credentials).
    #[arg(long, env = "PLAIT_CORS_ORIGINS", value_delimiter = ',', default_value = "*")]
    pub cors_origins: Vec<String>,

    /// How long a write waits for parents it names but the server lacks, before 309.
    #[arg(long, env = "PLAIT_PARENTS_WAIT_MS", default_value_t = 3000)]
    pub parents_wait_ms: u64,

    /// Unload a document from memory after this many idle seconds without subscribers.
    #[arg(long, env = "PLAIT_IDLE_UNLOAD_SECS", default_value_t = 60)]
    pub idle_unload_secs: u64,

    /// History retention for a path prefix, repeatable: `"/notes/ days=30 versions=1000"`
    /// keeps writes from the last 30 days or among the last 1000 and compacts older ones into
    /// a snapshot; `"/docs/ all"` keeps everything (the default for unmatched paths). The
    /// longest prefix wins. In the environment, separate rules with `;`.
    #[arg(long = "retention", env = "PLAIT_RETENTION", value_delimiter = ';')]
    pub retention: Vec<RetentionRule>,

    /// Seconds between background compaction passes (when a retention rule compacts).
    #[arg(long, env = "PLAIT_COMPACTION_INTERVAL_SECS", default_value_t = 3600)]
    pub compaction_interval_secs: u64,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "PLAIT_MAX_BODY_BYTES", default_value_t = 16 << 20)]
    pub max_body_bytes: usize,

    /// Largest file accepted in one body, in bytes (files stream into the chunk store, so
    /// this bounds disk use, not memory).
    #[arg(long, env = "PLAIT_MAX_FILE_BYTES", default_value_t = 64 << 30)]
    pub max_file_bytes: u64,

    /// Content-defined chunking of files (FastCDC v2020): smallest chunk, in bytes.
    #[arg(long, env = "PLAIT_CHUNK_MIN_BYTES", default_value_t = 256 << 10)]
    pub chunk_min_bytes: usize,

    /// Average chunk, in bytes (a power of two).
    #[arg(long, env = "PLAIT_CHUNK_AVG_BYTES", default_value_t = 1 << 20)]
    pub chunk_avg_bytes: usize,

    /// Largest chunk, in bytes.
    #[arg(long, env = "PLAIT_CHUNK_MAX_BYTES", default_value_t = 4 << 20)]
    pub chunk_max_bytes: usize,

    /// Seconds between passes of the chunk collector, which deletes chunks that no version
    /// references (after an erase, or an abandoned upload); 0 runs it only on
    /// `POST /.plait/collect`.
    #[arg(long, env = "PLAIT_CHUNK_COLLECT_INTERVAL_SECS", default_value_t = 3600)]
    pub chunk_collect_interval_secs: u64,

    /// Resumable uploads (tus, the IETF draft): an upload nobody continues for this many
    /// seconds expires, and its chunks are collected (each append extends it).
    #[arg(long, env = "PLAIT_UPLOAD_EXPIRY_SECS", default_value_t = 24 * 3600)]
    pub upload_expiry_secs: u64,

    /// Largest resumable upload, in bytes (default: `--max-file-bytes`).
    #[arg(long, env = "PLAIT_MAX_UPLOAD_BYTES")]
    pub max_upload_bytes: Option<u64>,

    /// Direct uploads: how long a part URL signed for a browser works, in seconds (at most 7
    /// days); a client whose URL expired gets it signed again.
    #[arg(long, env = "PLAIT_DIRECT_PART_URL_SECS", default_value_t = 3600)]
    pub direct_part_url_secs: u64,

    /// Resumable uploads in progress per credential (with `--auth none`: in all).
    #[arg(long, env = "PLAIT_MAX_UPLOADS_PER_TOKEN", default_value_t = 100)]
    pub max_uploads_per_token: usize,

    /// Folder change log: how many of the latest changes are kept whole, so a watcher resuming
    /// within them gets every change; older positions keep only each path's latest change, and
    /// deletes that age out make older cursors list afresh (see docs/FOLDERS.md). At least 10000.
    #[arg(long, env = "PLAIT_CHANGE_LOG_WINDOW", default_value_t = 100_000)]
    pub change_log_window: u64,

    /// The longest a folder long poll (`?wait=`) may wait, in seconds.
    #[arg(long, env = "PLAIT_MAX_POLL_SECS", default_value_t = 300)]
    pub max_poll_secs: u64,

    /// Encrypt file chunks at rest (AES-256-GCM) with the key in this file: 64 hex digits,
    /// readable by the owner only (`openssl rand -hex 32 > key; chmod 600 key`). A store
    /// written with a key refuses to start without it, or with another one.
    #[arg(long, env = "PLAIT_CHUNK_KEY_FILE")]
    pub chunk_key_file: Option<PathBuf>,

    /// Where file chunks are kept: `s3://bucket/prefix` for an S3-compatible object store
    /// (endpoint, region and credentials from `AWS_ENDPOINT_URL`, `AWS_REGION`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, or `PLAIT_S3_*`; see
    /// docs/OBJECT-STORAGE.md). Default: a RocksDB of their own in the data dir's `chunks/`.
    /// Start-up checks the bucket and exits when it is unusable.
    #[arg(long, env = "PLAIT_BLOB_STORE")]
    pub blob_store: Option<String>,

    /// Browsers upload file parts straight to the object store (needs `--blob-store s3://…`);
    /// start-up also checks that the bucket's CORS rules let them (PUT allowed, `ETag`
    /// exposed) from each `--cors-origins` origin, or this server's own origin with `*`.
    #[arg(long, env = "PLAIT_DIRECT_UPLOADS", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub direct_uploads: bool,

    /// Serve HTTPS with this PEM certificate chain (leaf first); needs `--tls-key`. ALPN offers
    /// h2 and http/1.1. Without it the server speaks cleartext HTTP/1.1 and h2c.
    #[arg(long, env = "PLAIT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key (PKCS#8, PKCS#1 or SEC1) for `--tls-cert`.
    #[arg(long, env = "PLAIT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Largest request head (request line plus headers), in bytes; larger gets 431.
    #[arg(long, env = "PLAIT_MAX_HEADER_BYTES", default_value_t = 64 << 10)]
    pub max_header_bytes: usize,

    /// Seconds a client has to send its whole request head before the connection is
    /// closed (protects against slowloris connections).
    #[arg(long, env = "PLAIT_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,

    /// Close a connection whose client has not read anything for this many seconds while
    /// the server had data for it (a stalled subscriber); it can resume with `Parents`.
    #[arg(long, env = "PLAIT_STALL_TIMEOUT_SECS", default_value_t = 60)]
    pub stall_timeout_secs: u64,

    /// Most event ids in one `Version` or `Parents` header; more get 431.
    #[arg(long, env = "PLAIT_MAX_VERSION_IDS", default_value_t = 100)]
    pub max_version_ids: usize,

    /// Most patches in one update; more get 413.
    #[arg(long, env = "PLAIT_MAX_PATCHES", default_value_t = 1000)]
    pub max_patches: usize,

    /// Seconds a client has to send a whole request body; slower uploads get 408.
    #[arg(long, env = "PLAIT_BODY_TIMEOUT_SECS", default_value_t = 30)]
    pub body_timeout_secs: u64,

    /// Live subscriptions allowed on one document; more get 429.
    #[arg(long, env = "PLAIT_MAX_SUBSCRIPTIONS_PER_DOC", default_value_t = 10_000)]
    pub max_subscriptions_per_doc: usize,

    /// Live subscriptions allowed on the whole server; more get 429.
    #[arg(long, env = "PLAIT_MAX_SUBSCRIPTIONS", default_value_t = 100_000)]
    pub max_subscriptions: usize,

    /// Largest document, in Unicode code points; writes that could exceed it get 413.
    #[arg(long, env = "PLAIT_MAX_DOCUMENT_CHARS", default_value_t = 32 << 20)]
    pub max_document_chars: usize,

    /// Ceiling of the delay before a simpleton writer gets its rebase (braid-text: 3000).
    #[arg(long, env = "PLAIT_MAX_REBASE_DELAY_MS", default_value_t = 3000)]
    pub max_rebase_delay_ms: u64,

    /// TESTING ONLY: acknowledge writes before they are durable and hold every commit back
    /// this many milliseconds, so crash tests can prove they detect lost acknowledged
    /// writes. Never use it for real data.
    #[arg(long, env = "PLAIT_UNSAFE_ACK_BEFORE_DURABLE_MS", hide = true)]
    pub unsafe_ack_before_durable_ms: Option<u64>,

    /// Access control: `token` (every request needs a token or share link; see
    /// docs/ACCESS.md) or `none` (anyone who can connect may read and write everything;
    /// only on a loopback address unless `--allow-anonymous`).
    #[arg(long, env = "PLAIT_AUTH", value_enum, default_value = "token")]
    pub auth: AuthMode,

    /// Allow `--auth none` on a non-loopback listen address.
    #[arg(long, env = "PLAIT_ALLOW_ANONYMOUS", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_anonymous: bool,

    /// The admin token (at least 32 characters, e.g. `openssl rand -hex 32`). Prefer the
    /// environment variable or `--admin-token-file`: command lines are visible to other users.
    #[arg(long, env = "PLAIT_ADMIN_TOKEN", hide_env_values = true, conflicts_with = "admin_token_file")]
    pub admin_token: Option<String>,

    /// Read the admin token from the first line of this file.
    #[arg(long, env = "PLAIT_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// Failed authentications allowed per client address per minute; then 429 until the
    /// minute is over.
    #[arg(long, env = "PLAIT_AUTH_FAILURES_PER_MINUTE", default_value_t = 20)]
    pub auth_failures_per_minute: u32,

    /// Take the client address for throttling from this request header (e.g. `X-Real-IP`),
    /// as set by a trusted reverse proxy. Without it, the TCP peer address is used.
    #[arg(long, env = "PLAIT_CLIENT_IP_HEADER")]
    pub client_ip_header: Option<String>,

    /// Log filter (tracing `EnvFilter` syntax, e.g. `info` or `plait=debug`).
    #[arg(long, env = "PLAIT_LOG", default_value = "info")]
    pub log: String,

    /// Log line format on stderr: `text` or `json` (one object per line).
    #[arg(long, env = "PLAIT_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

/// The shortest admin token accepted.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;

impl ServeConfig {
    /// A configuration for tests: in memory or under `data_dir`, on a free loopback port.
    pub fn for_tests(data_dir: Option<PathBuf>) -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            memory: data_dir.is_none(),
            no_compression: false,
            no_editor: false,
            data_dir: data_dir.unwrap_or_default(),
            cors_origins: vec!["*".into()],
            parents_wait_ms: 3000,
            idle_unload_secs: 60,
            retention: Vec::new(),
            compaction_interval_secs: 3600,
            max_body_bytes: 16 << 20,
            max_file_bytes: 64 << 30,
            chunk_min_bytes: 256 << 10,
            chunk_avg_bytes: 1 << 20,
            chunk_max_bytes: 4 << 20,
            chunk_key_file: None,
            blob_store: None,
            direct_uploads: false,
            chunk_collect_interval_secs: 3600,
            upload_expiry_secs: 24 * 3600,
            max_upload_bytes: None,
            max_uploads_per_token: 100,
            direct_part_url_secs: 3600,
            change_log_window: 100_000,
            max_poll_secs: 300,
            max_header_bytes: 64 << 10,
            stall_timeout_secs: 60,
            body_timeout_secs: 30,
            max_version_ids: 100,
            max_patches: 1000,
            max_subscriptions_per_doc: 10_000,
            max_subscriptions: 100_000,
            max_document_chars: 32 << 20,
            header_timeout_secs: 10,
            tls_cert: None,
            tls_key: None,
            max_rebase_delay_ms: 3000,
            unsafe_ack_before_durable_ms: None,
            auth: AuthMode::None,
            allow_anonymous: false,
            admin_token: None,
            admin_token_file: None,
            auth_failures_per_minute: 20,
            client_ip_header: None,
            log: "warn".into(),
            log_format: LogFormat::Text,
        }
    }

    /// The admin token, from `--admin-token`/`PLAIT_ADMIN_TOKEN` or the file; an error when
    /// it is too short to be a secret or the file cannot be read.
    pub fn admin_secret(&self) -> anyhow::Result<Option<String>> {
        let token = match (&self.admin_token, &self.admin_token_file) {
            (Some(t), _) => t.trim().to_string(),
            (None, Some(file)) => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| anyhow::anyhow!("reading the admin token file {}: {e}", file.display()))?;
                text.lines().next().unwrap_or_default().trim().to_string()
            }
            (None, None) => return Ok(None),
        };
        anyhow::ensure!(
            token.chars().count() >= MIN_ADMIN_TOKEN_CHARS,
            "the admin token must be at least {MIN_ADMIN_TOKEN_CHARS} characters (try `openssl rand -hex 32`)"
        );
        Ok(Some(token))
    }

    /// Where the admin token comes from, for the start-up log (never the token itself).
    pub fn admin_source(&self) -> &'static str {
        match (&self.admin_token, &self.admin_token_file) {
            (Some(_), _) => "PLAIT_ADMIN_TOKEN / --admin-token",
            (None, Some(_)) => "--admin-token-file",
            (None, None) => "none configured",
        }
    }

    /// Refuses `--auth none` on an address others can reach, unless allowed explicitly.
    pub fn check_auth_mode(&self) -> anyhow::Result<()> {
        if self.auth == AuthMode::None && !self.listen.ip().is_loopback() && !self.allow_anonymous {
            anyhow::bail!(
                "--auth none on {} would let anyone who can reach it read and write every document; \
                 listen on a loopback address, use --auth token, or add --allow-anonymous if that is what you want",
                self.listen
            );
        }
        Ok(())
    }

    /// The hub's part of the configuration.
    pub fn hub_settings(&self) -> HubSettings {
        HubSettings {
            parents_wait: Duration::from_millis(self.parents_wait_ms),
            idle_unload: Duration::from_secs(self.idle_unload_secs.max(1)),
            ack: match self.unsafe_ack_before_durable_ms {
                Some(_) => AckPolicy::UnsafeBeforeDurable,
                None => AckPolicy::AfterDurable,
            },
            max_subscriptions_per_doc: self.max_subscriptions_per_doc,
            max_subscriptions: self.max_subscriptions,
            max_document_chars: self.max_document_chars,
            uploads: crate::hub::UploadSettings {
                expiry: Duration::from_secs(self.upload_expiry_secs.max(1)),
                max_bytes: self.max_upload_bytes.unwrap_or(u64::MAX),
                max_per_owner: self.max_uploads_per_token,
                part_url_lifetime: Duration::from_secs(self.direct_part_url_secs.clamp(1, 7 * 24 * 3600)),
            },
            ..HubSettings::standard()
        }
    }
}
