//! The async application core: one actor per loaded document, and subscriptions.
//!
//! Architecture invariants:
//! - each document has exactly one writer, its actor ([`actor`]); every write goes through it;
//! - an edit is acknowledged and made visible to readers and subscribers only after it is
//!   durable: readers see the published [`Head`], never the actor's unpublished state;
//! - subscribers pull what they miss from the document instead of buffering pushed
//!   updates, so a slow subscriber costs O(1) memory and gets one coalesced catch-up;
//! - no lock guard is held across an `.await`.
//!
//! The hub knows diamond-types only through `crate::text`, storage only through
//! `crate::store`, and HTTP not at all.

mod actor;
mod browse;
mod compaction;
mod doc;
mod error;
mod history;
mod history_block;
#[cfg(test)]
mod history_tests;
mod horizon;
mod persist;
mod registry;
mod requests;
mod retention;
mod subscription;

pub use browse::{Checkpoint, HistoryPage, MAX_CHECKPOINTS, MAX_CHECKPOINT_NAME};
pub use compaction::{run_retention, CompactionReport};
pub use error::HubError;
pub use history::{Author, HistoryEntry, NumberedEntry, Principal};
pub use horizon::Horizon;
pub use registry::{AckPolicy, Hub, HubSettings};
pub use requests::{ReadOutcome, ReadRequest, SubscribeRequest, WriteOutcome, WriteRequest};
pub use retention::{RetentionPolicy, RetentionRule};
pub use subscription::Subscription;
