//! Plait: a Braid-HTTP sync server. Every URL is a live, versioned resource, text or a file:
//! clients edit text with `PUT`/`PATCH`, store files with `PUT`, and follow either with
//! `GET` + `Subscribe`; concurrent text edits merge through diamond-types, concurrent file
//! versions are kept as siblings; every acknowledged write is durable in RocksDB.
//!
//! Layers, leaves first (see ARCHITECTURE.md):
//! - [`protocol`]: the Braid wire format, pure;
//! - [`text`]: text documents over diamond-types (the only user of that crate), pure;
//! - [`file`]: file versions (siblings, tombstones, winner order), pure;
//! - [`store`]: a narrow key-value trait with memory and RocksDB engines, group commit;
//! - [`chunks`]: file bytes as content-defined chunks, stored once, sealed at rest, collected;
//! - [`changes`]: the server-wide change log of folders (issue 16, not wired yet), pure;
//! - [`document`]: one resource's state and write rules, sans-IO;
//! - [`hub`]: document actors, durability before acknowledgement, subscriptions;
//! - [`http`]: axum handlers and the single error-to-status mapping;
//! - [`config`] and [`app`]: configuration and wiring.

pub mod app;
pub mod auth;
pub mod changes;
pub mod chunks;
pub mod client;
pub mod config;
pub mod document;
pub mod file;
pub mod http;
pub mod hub;
pub mod protocol;
pub mod store;
pub mod text;
pub mod upload;
