//! Browsing a document's past: the paged history listing and named checkpoints.
//!
//! Both read and write their own records (see [`super::history`]) straight from the store,
//! off the async threads, so a page costs the same for a document with ten writes or ten
//! million. The document is still loaded, for its published version and stored size.

use serde::{Deserialize, Serialize};

use crate::protocol::VersionSet;
use crate::store::{keys, Batch, Store};

use crate::document::{DocError, NumberedEntry};

use super::history;
use super::loading::blocking;
use super::{Hub, HubError};

/// The longest checkpoint name, in bytes.
pub const MAX_CHECKPOINT_NAME: usize = 128;
/// Checkpoints one document may have: they are listed whole on every history page.
pub const MAX_CHECKPOINTS: usize = 1000;

/// A named version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The name, unique per document.
    pub name: String,
    /// The version it names.
    pub version: Vec<String>,
    /// When it was made, in milliseconds since the Unix epoch.
    pub created_ms: u64,
}

/// One page of the history listing.
#[derive(Clone, Debug)]
pub struct HistoryPage {
    /// The document's current (published) version.
    pub current: VersionSet,
    /// Newest first.
    pub entries: Vec<NumberedEntry>,
    /// Pass as `before` to get the next (older) page; None on the last page.
    pub next: Option<String>,
    /// Every checkpoint of the document, oldest first.
    pub checkpoints: Vec<Checkpoint>,
    /// Bytes the document's history occupies in the store.
    pub stored_bytes: u64,
    /// The part of `stored_bytes` that is this listing's own records.
    pub listing_bytes: u64,
    /// The merge horizon, once the document was compacted.
    pub horizon: Option<crate::document::Horizon>,
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub(super) fn checkpoints_of(store: &dyn Store, path: &str) -> Result<Vec<Checkpoint>, HubError> {
    let mut out: Vec<Checkpoint> = store
        .scan_prefix(&keys::checkpoint_prefix(path))?
        .into_iter()
        .map(|(_, value)| {
            serde_json::from_slice(&value)
                .map_err(|e| HubError::from(DocError::Corrupt(format!("checkpoint of {path}: {e}"))))
        })
        .collect::<Result<_, _>>()?;
    out.sort_by(|a, b| (a.created_ms, &a.name).cmp(&(b.created_ms, &b.name)));
    Ok(out)
}

fn check_name(name: &str) -> Result<(), HubError> {
    if name.trim().is_empty() {
        Err(HubError::BadCheckpointName("the name is empty"))
    } else if name.len() > MAX_CHECKPOINT_NAME {
        Err(HubError::BadCheckpointName("the name is longer than 128 bytes"))
    } else if name.chars().any(char::is_control) {
        Err(HubError::BadCheckpointName("the name contains control characters"))
    } else {
        Ok(())
    }
}

impl Hub {
    /// Runs a store job on the blocking pool with this hub's store.
    pub(super) async fn with_store<T: Send + 'static>(
        &self,
        job: impl FnOnce(&dyn Store) -> Result<T, HubError> + Send + 'static,
    ) -> Result<T, HubError> {
        let store = self.0.store.clone();
        tokio::task::spawn_blocking(move || job(store.as_ref())).await.map_err(|_| HubError::Unavailable)?
    }

    /// Up to `limit` writes, newest first, older than the write of event `before` (a
    /// version from an earlier page) when given.
    pub async fn history(&self, path: &str, before: Option<String>, limit: usize) -> Result<HistoryPage, HubError> {
        let handle = self.doc(path).await?;
        let published = handle.shared.published();
        let current = published.head.clone();
        let stored_bytes = handle.shared.stored_bytes.load(std::sync::atomic::Ordering::Relaxed);
        let listing_bytes = handle.shared.listing_bytes.load(std::sync::atomic::Ordering::Relaxed);
        let horizon = published.horizon.as_deref().cloned();
        if let (Some(h), Some(id)) = (&horizon, &before) {
            if h.behind(&VersionSet::new([id.clone()])) {
                return Err(h.gone().into());
            }
        }
        let owned = path.to_string();
        let (entries, next, checkpoints) = self
            .with_store(move |store| {
                let below = match before {
                    None => None,
                    Some(id) => Some(history::entry_of(store, &owned, &id)?.ok_or(HubError::NotListed(id))?),
                };
                let mut entries = history::page(store, &owned, below, limit.saturating_add(1))?;
                let more = entries.len() > limit;
                entries.truncate(limit);
                let next = if more { entries.last().and_then(|e| e.entry.version.first().cloned()) } else { None };
                Ok((entries, next, checkpoints_of(store, &owned)?))
            })
            .await?;
        Ok(HistoryPage { current, entries, next, checkpoints, stored_bytes, listing_bytes, horizon })
    }

    /// Every checkpoint of a document, oldest first.
    pub async fn checkpoints(&self, path: &str) -> Result<Vec<Checkpoint>, HubError> {
        let owned = path.to_string();
        self.with_store(move |store| checkpoints_of(store, &owned)).await
    }

    /// Names `version` (the current version when None). Returns the checkpoint and whether
    /// it is new: naming the same version again under the same name changes nothing.
    pub async fn create_checkpoint(
        &self,
        path: &str,
        name: String,
        version: Option<VersionSet>,
    ) -> Result<(Checkpoint, bool), HubError> {
        check_name(&name)?;
        let handle = self.doc(path).await?;
        let (shared, store) = (handle.shared.clone(), self.0.store.clone());
        let version = blocking(|| {
            shared.with_replica(store.as_ref(), |replica, published| {
                let version = version.unwrap_or_else(|| published.head.clone());
                let unknown = replica.unpublished_ids(&published.head, &version, published.horizon.as_deref())?;
                match unknown.is_empty() {
                    true => Ok(version),
                    false => Err(DocError::UnknownVersion(unknown).into()),
                }
            })
        })?;
        let owned = path.to_string();
        let checkpoint = Checkpoint { name, version: version.ids().to_vec(), created_ms: now_ms() };
        let (checkpoint, batch) = self
            .with_store(move |store| {
                let existing = checkpoints_of(store, &owned)?;
                if let Some(old) = existing.iter().find(|c| c.name == checkpoint.name) {
                    return if old.version == checkpoint.version {
                        Ok((old.clone(), None))
                    } else {
                        Err(HubError::CheckpointExists(checkpoint.name))
                    };
                }
                if existing.len() >= MAX_CHECKPOINTS {
                    return Err(HubError::TooManyCheckpoints(MAX_CHECKPOINTS));
                }
                let mut batch = Batch::new();
                let value = serde_json::to_vec(&checkpoint).map_err(|e| DocError::Corrupt(e.to_string()))?;
                batch.put(keys::checkpoint(&owned, &checkpoint.name), value);
                Ok((checkpoint, Some(batch)))
            })
            .await?;
        let Some(batch) = batch else { return Ok((checkpoint, false)) };
        self.0.durability.commit(batch).await.map_err(DocError::Storage)?;
        Ok((checkpoint, true))
    }

    /// Removes a checkpoint (its version may then be pruned by retention).
    pub async fn delete_checkpoint(&self, path: &str, name: String) -> Result<(), HubError> {
        let key = keys::checkpoint(path, &name);
        let probe = key.clone();
        if self.with_store(move |store| Ok(store.get(&probe)?.is_none())).await? {
            return Err(HubError::NoSuchCheckpoint(name));
        }
        let mut batch = Batch::new();
        batch.ops.push(crate::store::Op::Delete(key));
        Ok(self.0.durability.commit(batch).await.map_err(DocError::Storage)?)
    }
}
