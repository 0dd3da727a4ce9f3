//! The application core's async side: the registry of loaded documents, the shell around each
//! document's core (`crate::document`, which holds every rule and does no I/O), the readers'
//! copy of each document, reads, subscriptions, the history listing's readers, compaction.
//!
//! Architecture invariants:
//! - each loaded document has exactly one writer, its shell ([`shell`]), which alone owns the
//!   document core; every write goes through it;
//! - an edit is acknowledged and made visible to readers and subscribers only after it is
//!   durable: readers see the published head ([`crate::document::Published`]), never the
//!   writer's state;
//! - readers never wait for the writer and the writer never waits for readers: readers work
//!   on their own copy of the document ([`replica`]), behind a lock the writer never takes;
//! - subscribers pull what they miss instead of buffering pushed updates, so a slow
//!   subscriber costs O(1) memory and gets one coalesced catch-up;
//! - no lock guard is held across an `.await`.
//!
//! The hub knows diamond-types only through `crate::text`, storage only through
//! `crate::store`, and HTTP not at all.

mod backfill;
mod browse;
mod compaction;
mod delta;
mod direct;
mod durability;
mod error;
mod file_subscription;
mod files;
mod folders;
#[cfg(test)]
mod folders_tests;
mod history;
#[cfg(test)]
mod history_tests;
mod interest;
mod loading;
mod reads;
mod registry;
mod replica;
mod requests;
mod retention;
mod shared;
mod shell;
#[cfg(test)]
mod shell_tests;
mod subscription;
mod uploads;

pub use crate::document::{
    AckPolicy, Author, DocError, FileWriteOutcome, HistoryEntry, Horizon, NumberedEntry, Principal, WriteOutcome,
    WriteRequest,
};
pub use crate::store::Logged;
pub use browse::{Checkpoint, HistoryPage, MAX_CHECKPOINTS, MAX_CHECKPOINT_NAME};
pub use compaction::{run_retention, CompactionReport};
pub use delta::{SessionKey, MAX_LIST};
pub use durability::{CommitFuture, Durability};
pub use error::{HubError, SubscriptionLimit};
pub use file_subscription::FileSubscription;
pub use files::{run_collector, DirectBucket, FileIngest, FileStore, Ingested};
pub use folders::{FolderWatch, Listing, Scope, Start, Visible};
pub use registry::{Hub, HubSettings, HubStats};
pub use requests::{ReadOutcome, ReadRequest, SubscribeRequest};
pub use retention::{RetentionPolicy, RetentionRule};
pub use subscription::{Delivery, FanOut, Subscription};
pub use uploads::{run_expiry, Append, Appended, NewUpload, UploadSettings, CHECKPOINT_EVERY};
