//! Plait: a Braid-HTTP sync server. Every URL is a live, versioned text resource that
//! clients edit with `PUT`/`PATCH` and follow with `GET` + `Subscribe`; concurrent edits
//! merge through diamond-types; every acknowledged edit is durable in RocksDB.
//!
//! Layers, leaves first (see ARCHITECTURE.md):
//! - [`protocol`]: the Braid wire format, pure;
//! - [`text`]: text documents over diamond-types (the only user of that crate), pure;
//! - [`file`]: file versions (siblings, tombstones, winner order), pure;
//! - [`store`]: a narrow key-value trait with memory and RocksDB engines, group commit;
//! - [`chunks`]: file bytes as content-defined chunks, stored once, sealed at rest, collected;
//! - [`hub`]: document actors, durability before acknowledgement, subscriptions;
//! - [`http`]: axum handlers and the single error-to-status mapping;
//! - [`config`] and [`app`]: configuration and wiring.

pub mod app;
pub mod auth;
pub mod chunks;
pub mod config;
pub mod document;
pub mod file;
pub mod http;
pub mod hub;
pub mod protocol;
pub mod store;
pub mod text;
