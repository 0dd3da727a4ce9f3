//! [`FileDoc`]: one file resource's versions, its heads (concurrent versions not yet replaced:
//! siblings when there is more than one), the served winner, and [`FileDoc::apply`], the one
//! place where a file write is judged.
//!
//! Rules (see the module doc of `file` for why):
//! - `Version` given and known: the same content (digest, size, type, deleted or not) is a
//!   duplicate, answered as success without a new version (idempotent retries); different
//!   content is refused, an id names one content forever. Not given: the server mints one.
//! - `Parents` given: every id must be known (else refused, listing the unknown ones, so the
//!   client can send them first or retry); an empty list means "from nothing" (a write that
//!   knew no version: concurrent with every head). Not given: on top of the served winner, so
//!   a plain `curl -X PUT` replaces what a `GET` shows and keeps it in the history, and leaves
//!   any other sibling standing.
//! - The new version replaces the heads it names; heads it does not name stay: siblings.
//! - A delete is a version with no content (a tombstone) on top of every head: it resolves a
//!   conflict by deleting. A later write naming an older version is concurrent with it.

use super::version_id::FileVersionId;
use super::{ChunkRef, FileError};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// What a version holds: the bytes' metadata and where they are, or nothing (deleted).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Content {
    /// The `Content-Type` it was written with (`application/octet-stream` when none).
    pub content_type: String,
    /// Length in bytes.
    pub size: u64,
    /// SHA-256 of the bytes (`Repr-Digest`).
    #[serde(serialize_with = "super::record::to_hex", deserialize_with = "super::record::from_hex")]
    pub sha256: [u8; 32],
    /// The chunks, in order; their lengths add up to `size`.
    pub chunks: Vec<ChunkRef>,
}

/// One stored version.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileVersion {
    pub id: FileVersionId,
    /// The versions this one replaces (sorted, no duplicates).
    pub parents: Vec<FileVersionId>,
    /// None for a delete (a tombstone).
    pub content: Option<Content>,
    /// Who wrote it (the token's principal or the peer), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// When the server accepted it, in milliseconds since 1970.
    pub time_ms: u64,
}

/// What a write does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileChange {
    /// New bytes (already in the chunk store).
    Content(Content),
    /// Delete: a tombstone on top of every head.
    Delete,
}

/// One write to a file resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileWrite {
    pub version: Option<FileVersionId>,
    pub parents: Option<Vec<FileVersionId>>,
    pub change: FileChange,
    pub author: Option<String>,
    pub now_ms: u64,
}

/// How a write went in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A new version.
    Fresh,
    /// The version existed with this content: nothing changed.
    Duplicate,
}

/// The result of an accepted write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The written (or already known) version.
    pub version: FileVersionId,
    pub outcome: Outcome,
    /// The heads after the write, winner first (more than one: a conflict).
    pub heads: Vec<FileVersionId>,
    /// The new version is not the served one: a sibling won (the writer should be told).
    pub lost: bool,
    /// The record to store for a fresh version (None for a duplicate).
    pub record: Option<FileVersion>,
}

/// One file resource's version graph.
#[derive(Clone, Debug, Default)]
pub struct FileDoc {
    /// Shared, so that a copy of the graph (published after each write for readers) copies
    /// pointers, not chunk lists.
    versions: HashMap<FileVersionId, Arc<FileVersion>>,
    /// Ids in the order they were accepted (history order).
    order: Vec<FileVersionId>,
    heads: BTreeSet<FileVersionId>,
}

impl FileDoc {
    /// An empty resource (no version yet).
    pub fn new() -> FileDoc {
        FileDoc::default()
    }

    /// Rebuilds a resource from its stored versions, in the order they were accepted.
    pub fn from_records(records: impl IntoIterator<Item = FileVersion>) -> Result<FileDoc, FileError> {
        let mut doc = FileDoc::new();
        for v in records {
            if let Some(missing) = v.parents.iter().find(|p| !doc.versions.contains_key(*p)) {
                return Err(FileError::CorruptRecord(format!("version {} names unknown parent {missing}", v.id)));
            }
            if doc.versions.contains_key(&v.id) {
                return Err(FileError::CorruptRecord(format!("version {} stored twice", v.id)));
            }
            doc.install(v);
        }
        Ok(doc)
    }

    /// Whether the resource has any version (deleted or not).
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The heads, winner first.
    pub fn heads(&self) -> Vec<FileVersionId> {
        let mut heads: Vec<FileVersionId> = self.heads.iter().cloned().collect();
        heads.sort_by(|a, b| b.winner_cmp(a));
        heads
    }

    /// The served version: the highest head (None before the first write).
    pub fn winner(&self) -> Option<&FileVersion> {
        self.heads.iter().max_by(|a, b| a.winner_cmp(b)).and_then(|id| self.versions.get(id)).map(|v| &**v)
    }

    /// The served content (None when there is none or the winner is a delete).
    pub fn current(&self) -> Option<&Content> {
        self.winner().and_then(|v| v.content.as_ref())
    }

    /// Whether concurrent versions wait to be resolved.
    pub fn in_conflict(&self) -> bool {
        self.heads.len() > 1
    }

    /// One version by id.
    pub fn version(&self, id: &FileVersionId) -> Option<&FileVersion> {
        self.versions.get(id).map(|v| &**v)
    }

    /// Every version, oldest first.
    pub fn history(&self) -> impl Iterator<Item = &FileVersion> {
        self.order.iter().filter_map(|id| self.versions.get(id)).map(|v| &**v)
    }

    /// Judges and applies one write; on `Err` nothing changed.
    pub fn apply(&mut self, write: FileWrite) -> Result<Applied, FileError> {
        if let Some(id) = &write.version {
            if let Some(existing) = self.versions.get(id) {
                return self.duplicate(existing, &write.change);
            }
        }
        let parents: Vec<FileVersionId> = match write.parents {
            Some(p) => {
                let unknown: Vec<String> =
                    p.iter().filter(|id| !self.versions.contains_key(*id)).map(|id| id.to_string()).collect();
                if !unknown.is_empty() {
                    return Err(FileError::UnknownParents { ids: unknown });
                }
                p
            }
            None => self.winner().map(|w| vec![w.id.clone()]).unwrap_or_default(),
        };
        let content = match write.change {
            FileChange::Content(c) => Some(c),
            // A delete replaces every head, whatever the client named.
            FileChange::Delete if self.current().is_none() && !self.in_conflict() => {
                return Err(FileError::NothingToDelete);
            }
            FileChange::Delete => None,
        };
        let mut parents = if content.is_none() { self.heads.iter().cloned().collect() } else { parents };
        parents.sort();
        parents.dedup();
        let id = write.version.unwrap_or_else(|| FileVersionId::mint(write.now_ms, self.order.iter()));
        let version = FileVersion { id: id.clone(), parents, content, author: write.author, time_ms: write.now_ms };
        self.install(version.clone());
        let lost = self.winner().is_some_and(|w| w.id != id);
        Ok(Applied { version: id, outcome: Outcome::Fresh, heads: self.heads(), lost, record: Some(version) })
    }

    fn duplicate(&self, existing: &FileVersion, change: &FileChange) -> Result<Applied, FileError> {
        let same = match (change, &existing.content) {
            (FileChange::Delete, None) => true,
            // The bytes decide (chunk boundaries may differ if the chunking parameters changed).
            (FileChange::Content(c), Some(e)) => c.sha256 == e.sha256 && c.size == e.size,
            _ => false,
        };
        if !same {
            return Err(FileError::VersionReused { id: existing.id.to_string() });
        }
        let lost = self.winner().is_some_and(|w| w.id != existing.id);
        Ok(Applied {
            version: existing.id.clone(),
            outcome: Outcome::Duplicate,
            heads: self.heads(),
            lost,
            record: None,
        })
    }

    /// Drops the versions that are not heads and that `keep` (given each version's rank from
    /// the newest, 0 being the newest, and the version) does not keep; returns them, oldest
    /// first. Kept versions forget dropped parents (they then start the remaining history),
    /// so the graph stays closed; the heads, and so the served version and any conflict, stay.
    pub fn prune(&mut self, keep: impl Fn(usize, &FileVersion) -> bool) -> Vec<FileVersion> {
        let n = self.order.len();
        let mut dropped = Vec::new();
        let mut order = Vec::with_capacity(n);
        for (i, id) in std::mem::take(&mut self.order).into_iter().enumerate() {
            let Some(v) = self.versions.get(&id) else { continue };
            if self.heads.contains(&id) || keep(n - 1 - i, v) {
                order.push(id);
            } else if let Some(v) = self.versions.remove(&id) {
                dropped.push(Arc::unwrap_or_clone(v));
            }
        }
        self.order = order;
        if !dropped.is_empty() {
            let gone: std::collections::HashSet<&FileVersionId> = dropped.iter().map(|d| &d.id).collect();
            for v in self.versions.values_mut() {
                if v.parents.iter().any(|p| gone.contains(p)) {
                    Arc::make_mut(v).parents.retain(|p| !gone.contains(p));
                }
            }
        }
        dropped
    }

    /// Adds a validated version (parents known, id new) and moves the heads.
    fn install(&mut self, v: FileVersion) {
        for p in &v.parents {
            self.heads.remove(p);
        }
        self.heads.insert(v.id.clone());
        self.order.push(v.id.clone());
        self.versions.insert(v.id.clone(), Arc::new(v));
    }
}
