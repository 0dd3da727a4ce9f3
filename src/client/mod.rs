//! The `plait` client: commands for people and scripts (`cmd`), and the two-way folder sync
//! daemon (`sync`), both speaking plain HTTP to any Plait server (and, for text, to any
//! Braid-HTTP server such as braid-text).
//!
//! The client shares the server's binary but none of its shell: it never touches `hub`,
//! `http`, `document` or `app`. It reuses the pure parts it must agree with the server on:
//! `protocol` (Version/Parents, subscription updates), `chunks::chunker` (content-defined
//! chunks cut and named exactly as the server cuts them, so the delta exchange sends only
//! what the server lacks) and `store` (the daemon's local database is one of the server's
//! own engines, RocksDB synced on every batch). `tests/it/tidy.rs` enforces this.

pub mod cmd;
pub mod config;
pub mod error;
pub mod output;
pub mod progress;
pub mod remote;
pub mod sync;
pub mod transfer;

pub use error::{ClientError, ExitCode};
pub use remote::Remote;
