//! One integration-test binary: every test starts the real server on 127.0.0.1:0.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod auth;
mod auth_live;
mod cli;
mod client_cmds;
mod client_cmds_resume;
mod compression;
mod convergence;
mod cors_and_reserved;
mod crash;
mod crash_files;
mod crash_folders;
mod crash_uploads;
mod direct_s3;
mod disk;
mod durability;
mod error_codes;
mod eventsource;
mod fanout;
mod files;
mod files_delta;
mod folder_streams;
mod folders;
mod folders_resume;
mod folders_slow;
mod fuzz_corpus;
mod history;
mod http2;
mod hygiene;
mod interop_js;
mod limits;
mod listing;
mod logs;
mod malformed;
mod proxies;
mod reads_writes;
mod retention;
mod s3;
mod s3_serve;
mod slow_subscribers;
mod store_format;
mod subscriptions;
mod sync_browser;
mod sync_e2e;
mod sync_e2e_kit;
mod sync_engine;
mod sync_engine_more;
mod sync_many;
mod takeover;
mod tidy;
mod tus_clients;
mod uploads;
mod uploads_browser;
mod uploads_browser_s3;
mod wire_golden;

/// Runs an async test body once against the memory store and once against RocksDB in a
/// temp dir: `engines!(name, |engine| async move { ... })`.
#[macro_export]
macro_rules! engines {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                ($body)($crate::support::server::Engine::Memory).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn rocksdb() {
                ($body)($crate::support::server::Engine::Rocks).await
            }
        }
    };
}
