//! Resumable uploads on the hub: creation, the offset, appends that stream into the chunk
//! store, completion into a file version, cancellation, concatenation and expiry.
//!
//! One [`Slot`] per upload in use serialises its requests. A request first takes a *turn*
//! (a counter every in-flight request of the upload watches) and then the slot's lock: an
//! older append that sees a newer turn stops reading, keeps what it received (a checkpoint)
//! and lets go, so a client that reconnects after a cut is never locked out by its own dead
//! connection (the IETF draft's rule, which tus servers learnt the hard way).
//!
//! What is durable when: every chunk is in the chunk store before a checkpoint batch lists it
//! and references it (owner `chunks::refs::UPLOADS`), and a response's `Upload-Offset` is sent
//! only after its checkpoint is committed (synced, through the group-commit thread). Long
//! appends also checkpoint every [`CHECKPOINT_EVERY`] bytes, so a `kill -9` mid-request loses
//! at most that much. Completion commits the version and drops the upload's record, chunk list
//! and references in one batch (`FileWriteRequest::also`), so an upload becomes exactly one
//! version or none.

mod append;
mod complete;
mod expiry;
mod state;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::Sha256;
use tokio::sync::watch;

use crate::store::Batch;
use crate::upload::record::{self, UploadRecord};
use crate::upload::{UploadError, UploadId};

use super::loading::blocking;
use super::{Hub, HubError};

pub use append::{Append, Appended};
pub use expiry::run_expiry;

/// A long append is checkpointed after this many bytes (bounding what a crash loses).
pub const CHECKPOINT_EVERY: u64 = 16 << 20;
/// Uncut tails kept in memory between requests, in total; past it they are read back from
/// the chunk store when the upload continues.
const TAIL_CACHE_BYTES: usize = 256 << 20;

/// The limits and lifetime of uploads.
#[derive(Clone, Copy, Debug)]
pub struct UploadSettings {
    /// An upload untouched this long expires (each append extends it).
    pub expiry: Duration,
    /// Largest upload, in bytes (also bounded by the file limit).
    pub max_bytes: u64,
    /// Uploads in progress per credential.
    pub max_per_owner: usize,
    /// How long a signed part URL of a direct upload works.
    pub part_url_lifetime: Duration,
}

impl Default for UploadSettings {
    fn default() -> Self {
        UploadSettings {
            expiry: Duration::from_secs(24 * 3600),
            max_bytes: 1 << 40,
            max_per_owner: 100,
            part_url_lifetime: Duration::from_secs(3600),
        }
    }
}

/// What a new upload is.
#[derive(Clone, Debug, Default)]
pub struct NewUpload {
    /// The resource it becomes a version of (None: a partial upload).
    pub target: Option<String>,
    /// Its media type, when the client named one.
    pub content_type: Option<String>,
    /// Its length, when known.
    pub length: Option<u64>,
    /// The credential creating it ("" with access control off).
    pub owner: String,
    /// Who, for the version's record.
    pub author: Option<String>,
    /// A part of a later concatenation.
    pub partial: bool,
    /// The SHA-256 the whole content must have.
    pub expect_sha256: Option<[u8; 32]>,
}

/// Per upload in use: its turn counter and its lock.
pub(crate) struct Slot {
    turn: watch::Sender<u64>,
    live: tokio::sync::Mutex<Live>,
}

/// What an upload keeps in memory between requests (all of it can be rebuilt from the store).
#[derive(Default)]
struct Live {
    /// SHA-256 state over the bytes kept (None after a restart: the content is hashed again at
    /// completion).
    hash: Option<Sha256>,
    /// The uncut tail's bytes (None: read the tail chunk back).
    tail: Option<Vec<u8>>,
}

/// The uploads in use.
#[derive(Default)]
pub(crate) struct Uploads {
    slots: Mutex<HashMap<UploadId, Arc<Slot>>>,
    cached_tails: std::sync::atomic::AtomicUsize,
}

impl Uploads {
    fn slot(&self, id: &UploadId) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .entry(*id)
            .or_insert_with(|| Arc::new(Slot { turn: watch::Sender::new(0), live: Default::default() }))
            .clone()
    }

    fn forget(&self, id: &UploadId) {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// Uploads with a slot (in use since the start or the last expiry pass).
    pub fn in_use(&self) -> usize {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Slot {
    /// Takes the next turn: every older request of this upload is asked to stop.
    fn take_turn(&self) -> u64 {
        let mut mine = 0;
        self.turn.send_modify(|t| {
            *t += 1;
            mine = *t;
        });
        mine
    }
}

/// A request's hold on an upload: its turn and the slot's lock.
struct Held<'a> {
    live: tokio::sync::MutexGuard<'a, Live>,
    turn: u64,
}

impl Hub {
    /// The slot of `id`, with the turn taken and the lock held (older requests stopped).
    async fn hold<'a>(&self, slot: &'a Slot) -> Held<'a> {
        let turn = slot.take_turn();
        let live = slot.live.lock().await;
        Held { live, turn }
    }

    /// The stored record of `id`.
    pub(super) fn upload_record(&self, id: &UploadId) -> Result<UploadRecord, HubError> {
        let bytes = blocking(|| self.0.store.get(&record::record_key(id)))?;
        let record = bytes.as_deref().and_then(UploadRecord::decode);
        record.ok_or_else(|| HubError::Upload(UploadError::NotFound(id.to_string())))
    }

    /// An upload's record as stored, without waiting for a request in flight (access checks).
    pub async fn upload(&self, id: &UploadId) -> Result<UploadRecord, HubError> {
        self.upload_record(id)
    }

    /// An upload's record once any append in flight has stopped and kept what it received
    /// (`HEAD`: the offset a client resumes from).
    pub async fn upload_offset(&self, id: &UploadId) -> Result<UploadRecord, HubError> {
        let slot = self.0.uploads.slot(id);
        let _held = self.hold(&slot).await;
        self.upload_record(id)
    }

    /// Creates an upload; returns its id and record.
    pub async fn create_upload(&self, new: NewUpload, now_ms: u64) -> Result<(UploadId, UploadRecord), HubError> {
        let settings = self.0.settings.uploads;
        let limit = self.upload_limit();
        if new.length.is_some_and(|l| l > limit) {
            return Err(HubError::Upload(UploadError::TooLarge { limit }));
        }
        let owned = blocking(|| state::count_owned(self.0.store.as_ref(), &new.owner, now_ms))?;
        if owned >= settings.max_per_owner {
            return Err(HubError::Upload(UploadError::TooMany { limit: settings.max_per_owner }));
        }
        let id = UploadId::random();
        let record = UploadRecord {
            target: new.target,
            content_type: new.content_type,
            length: new.length,
            offset: 0,
            parts: 0,
            tail: None,
            owner: new.owner,
            author: new.author,
            partial: new.partial,
            expect_sha256: new.expect_sha256.map(hex::encode),
            created_ms: now_ms,
            expires_ms: now_ms + settings.expiry.as_millis() as u64,
            done: None,
        };
        let mut batch = Batch::new();
        batch.put(record::record_key(&id), record.encode());
        self.0.durability.commit(batch).await.map_err(crate::document::DocError::Storage)?;
        Ok((id, record))
    }

    /// Cancels an upload (tus termination, IETF cancellation): its record, chunk list and
    /// references go; its chunks are left to the collector.
    pub async fn cancel_upload(&self, id: &UploadId) -> Result<(), HubError> {
        let slot = self.0.uploads.slot(id);
        let mut held = self.hold(&slot).await;
        let record = self.upload_record(id)?;
        let mut batch = Batch::new();
        state::drop_upload(self.0.store.as_ref(), &mut batch, id, &record)?;
        self.0.durability.commit(batch).await.map_err(crate::document::DocError::Storage)?;
        self.uncache_tail(&mut held.live);
        drop(held);
        self.0.uploads.forget(id);
        Ok(())
    }

    fn uncache_tail(&self, live: &mut Live) {
        if let Some(tail) = live.tail.take() {
            self.0.uploads.cached_tails.fetch_sub(tail.len(), std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn cache_tail(&self, live: &mut Live, tail: &[u8]) {
        self.uncache_tail(live);
        let cached = &self.0.uploads.cached_tails;
        if cached.load(std::sync::atomic::Ordering::Relaxed) + tail.len() <= TAIL_CACHE_BYTES {
            cached.fetch_add(tail.len(), std::sync::atomic::Ordering::Relaxed);
            live.tail = Some(tail.to_vec());
        }
    }

    /// The largest upload accepted, in bytes.
    pub fn upload_limit(&self) -> u64 {
        self.0.settings.uploads.max_bytes.min(self.0.files.max_file_bytes)
    }

    /// How long an untouched upload lives.
    pub fn upload_expiry(&self) -> Duration {
        self.0.settings.uploads.expiry
    }

    /// Uploads in use (for stats).
    pub fn uploads_in_use(&self) -> usize {
        self.0.uploads.in_use()
    }
}

pub(super) fn commit_error(e: Arc<crate::store::StoreError>) -> HubError {
    HubError::Doc(crate::document::DocError::Storage(e))
}

#[cfg(test)]
mod uploads_tests;
