//! A live subscription to a file resource: each new served version, whole, as braid-blob's
//! server sends it (and a delete as a `404` update).
//!
//! Like text subscriptions it holds no queue: it remembers the version its client has and,
//! each time the published head moves, looks at the served version (the winner) only. A
//! subscriber that stops reading misses nothing that matters: when it drains it gets the
//! version served then, once (intermediate versions stay in the history). A version written
//! by the subscriber's own `Peer` is not sent back to it.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::watch;

use crate::document::Published;
use crate::file::{FileDoc, FileVersion};
use crate::protocol::VersionSet;

use super::registry::HubStats;
use super::shared::DocShared;
use super::{Hub, HubError};

/// One subscriber to a file.
pub struct FileSubscription {
    shared: Arc<DocShared>,
    stats: Arc<HubStats>,
    head_rx: watch::Receiver<Arc<Published>>,
    peer: Option<String>,
    /// The version the client has (None: nothing yet).
    client: Option<String>,
    generation: u64,
    /// The resource's heads when the subscription started (`Current-Version`).
    pub current: VersionSet,
}

impl Hub {
    /// Opens a subscription to a file resource, counted against the subscription limits.
    /// `parents` is the version the client has (braidfs resumes with it).
    pub async fn subscribe_file(
        &self,
        path: &str,
        parents: Option<VersionSet>,
        peer: Option<String>,
    ) -> Result<FileSubscription, HubError> {
        let handle = self.attach_subscriber(path).await?;
        let shared = handle.shared.clone();
        let head_rx = shared.watch();
        let published = head_rx.borrow().clone();
        let client = parents.and_then(|p| p.single().map(str::to_string));
        Ok(FileSubscription {
            generation: published.generation,
            current: published.head.clone(),
            shared,
            stats: self.0.stats.clone(),
            head_rx,
            peer,
            client,
        })
    }
}

impl FileSubscription {
    /// The next version to send (a delete is a version without content), or None when the
    /// subscription ended (the resource was erased or replaced, or the server is stopping).
    pub async fn next(&mut self) -> Option<FileVersion> {
        loop {
            let published = self.head_rx.borrow_and_update().clone();
            if published.generation != self.generation {
                return None;
            }
            match &published.file {
                Some(file) => {
                    if let Some(version) = self.take(&published, file) {
                        return Some(version);
                    }
                }
                // Erased (or never a file) after the client had a version: nothing to follow.
                None if self.client.is_some() && published.reset => return None,
                None => {}
            }
            if self.head_rx.changed().await.is_err() {
                return None;
            }
        }
    }

    /// The served version if the client lacks it and did not write it.
    fn take(&mut self, published: &Published, file: &FileDoc) -> Option<FileVersion> {
        let winner = file.winner()?;
        let id = winner.id.as_str();
        if self.client.as_deref() == Some(id) {
            return None;
        }
        let had_nothing = self.client.is_none();
        self.client = Some(id.to_string());
        let own = self
            .peer
            .as_ref()
            .is_some_and(|peer| published.writers.iter().any(|w| &w.peer == peer && w.version.single() == Some(id)));
        // A delete means nothing to a client that has nothing.
        if own || (had_nothing && winner.content.is_none()) {
            return None;
        }
        Some(winner.clone())
    }
}

impl Drop for FileSubscription {
    fn drop(&mut self) {
        self.shared.subscribers.fetch_sub(1, Ordering::Relaxed);
        self.stats.subscriptions.fetch_sub(1, Ordering::Relaxed);
    }
}
