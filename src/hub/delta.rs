//! The delta exchange of file versions (what Seafile and Dropbox do): a client that chunks its
//! file itself asks which chunk ids the server lacks, uploads only those, and commits the
//! version by its chunk list. A 1 MiB change in a 256 MiB file then costs a chunk or two.
//!
//! Safety rules, and where they hold:
//! - "missing" is answered per caller: a chunk counts as present only when a version of a
//!   resource the caller may read references it, or the caller uploaded it in this session.
//!   So a client can neither probe for other tenants' files nor commit (and then read) chunks
//!   it never had.
//! - an uploaded chunk's id is recomputed from its bytes (never taken from the client), and a
//!   chunk is at most the chunker's maximum;
//! - the commit needs every chunk present for the caller, checks each length, and hashes the
//!   whole content against the client's `Repr-Digest` before the version exists;
//! - every chunk a session stored or found stays claimed by the session's upload (the
//!   collector leaves it alone) until the commit is durable or the session expires.
//!
//! A session is per caller (its credential, or everyone when access control is off) and path;
//! sessions idle for [`SESSION_IDLE`] are dropped, and there are at most [`MAX_SESSIONS`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::chunks::{refs, ChunkId, Upload};
use crate::document::{FileWriteOutcome, FileWriteRequest};
use crate::file::{ChunkRef, Content, FileChange, FileWrite};

use super::loading::blocking;
use super::{Hub, HubError};

/// A session left alone this long is dropped (its chunks become collectable).
pub const SESSION_IDLE: Duration = Duration::from_secs(3600);
/// Sessions held at once; the oldest goes when a new one would pass it.
pub const MAX_SESSIONS: usize = 10_000;
/// Chunk ids in one "missing" question or one commit.
pub const MAX_LIST: usize = 100_000;

/// Who is asking, and about which path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionKey {
    /// The caller's credential id ("" with access control off: one domain).
    pub caller: String,
    /// The resource.
    pub path: String,
}

struct Session {
    upload: Upload,
    used: Instant,
}

/// The open delta sessions.
#[derive(Default)]
pub(crate) struct Sessions(Mutex<HashMap<SessionKey, Session>>);

impl Sessions {
    /// Runs `f` on the session of `key` (opened when absent), dropping expired ones first.
    fn with<T>(&self, hub: &Hub, key: &SessionKey, f: impl FnOnce(&mut Upload) -> T) -> T {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, s| now.duration_since(s.used) < SESSION_IDLE);
        if !map.contains_key(key) && map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.used).map(|(k, _)| k.clone()) {
                map.remove(&oldest);
            }
        }
        let session =
            map.entry(key.clone()).or_insert_with(|| Session { upload: hub.0.files.vault.begin(), used: now });
        session.used = now;
        f(&mut session.upload)
    }

    fn take(&self, key: &SessionKey) -> Option<Upload> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(key).map(|s| s.upload)
    }

    /// Open sessions (for tests and stats).
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Hub {
    /// The ids among `ids` that the caller must upload: those neither in its session nor
    /// referenced by a resource it may read (`may_read`). The others are claimed for its
    /// session, so they stay until its commit.
    pub fn missing_chunks(
        &self,
        key: &SessionKey,
        ids: &[ChunkId],
        may_read: impl Fn(&str) -> bool,
    ) -> Result<Vec<ChunkId>, HubError> {
        blocking(|| {
            let store = self.0.store.clone();
            let mut visible = Vec::new();
            let mut missing = Vec::new();
            for id in ids {
                if refs::referenced_by(store.as_ref(), id, &may_read)? {
                    visible.push(*id);
                } else {
                    missing.push(*id);
                }
            }
            self.0.deltas.with(self, key, |upload| {
                // Visible chunks are claimed for the session (one the engine lost is missing);
                // the rest are missing unless the session stored them itself.
                let mut out = upload.claim(&visible)?;
                out.extend(own_missing(upload, &missing));
                Ok(out)
            })
        })
    }

    /// Stores one uploaded chunk in the caller's session; returns its id (computed here).
    pub fn put_chunk(&self, key: &SessionKey, bytes: &[u8]) -> Result<ChunkId, HubError> {
        blocking(|| self.0.deltas.with(self, key, |upload| Ok(upload.put(bytes)?.0)))
    }

    /// Commits a version of `path` made of `chunks` (every one present for the caller), after
    /// checking their lengths and the content's SHA-256 against `sha256`.
    pub async fn commit_chunks(
        &self,
        key: &SessionKey,
        chunks: Vec<ChunkRef>,
        sha256: [u8; 32],
        mut write: FileWrite,
        content_type: String,
        peer: Option<String>,
    ) -> Result<FileWriteOutcome, HubError> {
        let ids: Vec<ChunkId> = chunks.iter().map(|c| ChunkId(c.id)).collect();
        let refs = blocking(|| {
            self.0.deltas.with(self, key, |upload| {
                let missing = own_missing(upload, &ids);
                if !missing.is_empty() {
                    return Err(HubError::ChunksMissing(missing));
                }
                let refs = upload.sizes(&ids)?;
                for (c, (id, size)) in chunks.iter().zip(&refs) {
                    if u64::from(size.plain) != c.len {
                        return Err(HubError::ChunkLength { id: id.to_string(), said: c.len, stored: size.plain });
                    }
                }
                Ok(refs)
            })
        })?;
        let actual = blocking(|| self.hash_chunks(&ids))?;
        if actual != sha256 {
            return Err(HubError::DigestMismatch { expected: hex::encode(sha256), actual: hex::encode(actual) });
        }
        let size = chunks.iter().map(|c| c.len).sum();
        write.change = FileChange::Content(Content { content_type, size, sha256, chunks });
        // The session's claims now belong to the commit, and go with it.
        let hold = self.0.deltas.take(key).map(|u| Arc::new(u) as crate::document::Hold);
        let req = FileWriteRequest { write, refs, peer, hold, also: Vec::new() };
        self.send_file_write(&key.path, req).await
    }

    /// SHA-256 of the chunks' bytes, in order, read back (and verified) from the store.
    pub(super) fn hash_chunks(&self, ids: &[ChunkId]) -> Result<[u8; 32], HubError> {
        let mut hasher = Sha256::new();
        for id in ids {
            let bytes = self.0.files.vault.read(id)?.ok_or_else(|| HubError::ChunksMissing(vec![*id]))?;
            hasher.update(&bytes);
        }
        Ok(hasher.finalize().into())
    }

    /// Open delta sessions.
    pub fn delta_sessions(&self) -> usize {
        self.0.deltas.len()
    }
}

/// The ids the session has neither stored nor found, each once, in the order asked.
fn own_missing(upload: &Upload, ids: &[ChunkId]) -> Vec<ChunkId> {
    let mut seen = std::collections::HashSet::new();
    ids.iter().filter(|id| !upload.holds(id) && seen.insert(**id)).copied().collect()
}
