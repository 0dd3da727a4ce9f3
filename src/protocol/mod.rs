//! The Braid-HTTP wire format: pure parsing and formatting, no I/O.
//!
//! Architecture invariant: nothing here imports tokio, axum, diamond-types or the store.
//! Every function takes bytes or strings and returns values or a [`ProtocolError`].
//!
//! Modules (the spec is `spec/WIRE.md`, §1-§3; cited as "WIRE §N"):
//! - [`version`]: `Version`/`Parents` values, parsed as JSON and written as ASCII JSON strings;
//! - [`headers`]: `Peer`, `Heartbeats`, `Merge-Type` and the `Subscribe` echo;
//! - [`range`]: `Content-Range: text [a:b]` and [`Patch`];
//! - [`body`]: PUT bodies (snapshot, one patch, or a `Patches: N` block) and patch counts;
//! - [`digest`]: `Repr-Digest: sha-256=:..:`;
//! - [`framing`]: encoding one update of a subscription stream (server side);
//! - [`decode`]: the incremental subscription-stream decoder (client side, fuzz target);
//! - [`error`]: [`ProtocolError`] with stable codes.
//!
//! Deliberately not here: HTTP status codes and response headers, timing (heartbeats),
//! and anything that needs the document (range bounds, version ancestry, digests to check).

mod block;
pub mod body;
pub mod byte_range;
pub mod cache;
pub mod decode;
pub mod digest;
pub mod error;
pub mod file_update;
pub mod framing;
pub mod headers;
pub mod kind;
pub mod range;
pub mod sse;
pub mod upload;
pub mod version;

#[cfg(test)]
mod decode_tests;
#[cfg(test)]
pub(crate) mod test_util;

pub use body::{classify_body, parse_patches, patch_count, UpdateBody, MAX_PATCHES};
pub use cache::{etag, if_none_match};
pub use decode::{DecodedUpdate, Decoder, DEFAULT_MAX_BODY, MAX_HEADER_BLOCK};
pub use digest::{parse_repr_digest, repr_digest, repr_digest_of, repr_digest_sha256, text_sha256};
pub use error::ProtocolError;
pub use framing::{encode_patches_body, encode_update, Update, UpdateContent, HEARTBEAT};
pub use headers::{parse_heartbeats, parse_peer, subscribe_echo, MergeType};
pub use range::{parse_content_range, Bound, Patch, TextRange};
pub use version::VersionSet;
