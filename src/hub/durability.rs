//! [`Durability`]: what makes a round's batch durable, as the document shell sees it.
//!
//! Why a trait: where durability comes from is the shell's business, not the document core's,
//! and not always the same. Today it is the group-commit thread over a synced RocksDB write
//! ([`Committer`]); tests use an in-runtime one that can fail or hold a commit on purpose; a
//! replicated log's acknowledgement is the next one.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::store::{Batch, Committer, StoreError};

/// A commit in progress.
pub type CommitFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Arc<StoreError>>> + Send + 'a>>;

/// Makes batches durable. A successful commit survives a crash; a failed one may or may not
/// have been written (a sync that failed), and the shell treats it as not acknowledged.
pub trait Durability: Send + Sync + 'static {
    /// Makes `batch` durable, sharing the cost with concurrent commits where it can.
    fn commit(&self, batch: Batch) -> CommitFuture<'_>;
}

impl Durability for Committer {
    fn commit(&self, batch: Batch) -> CommitFuture<'_> {
        Box::pin(Committer::commit(self, batch))
    }
}
