//! The history listing's records: one entry per accepted write, kept beside the document.
//!
//! Why records of our own: diamond-types keeps events, not when they arrived or who sent
//! them. Each write that adds events gets an entry (its version, parents, receive time,
//! author, characters inserted and deleted), numbered in commit order and written in the
//! same atomic batch as the edit itself, so the listing never shows a write that is not
//! durable and never misses one that is. An index from each entry's event id to its number
//! lets `before=V` pages start anywhere without reading the entries after it, so listing a
//! document with millions of writes reads only the page asked for.

use serde::{Deserialize, Serialize};

use crate::store::{keys, Batch, Store};

use super::HubError;

/// One accepted write, as the listing shows it (and as it is stored, JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The write's version (its last event).
    pub version: Vec<String>,
    /// The version it was written on top of.
    pub parents: Vec<String>,
    /// When the server received it, in milliseconds since the Unix epoch.
    pub received_ms: u64,
    /// Who wrote it.
    pub author: Author,
    /// Code points it inserted.
    pub inserted: u64,
    /// Code points it deleted.
    pub deleted: u64,
    /// For a restore: the version whose text it brought back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<Vec<String>>,
}

/// Who wrote a version.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    /// The agent part of the version id.
    pub agent: String,
    /// The writer's `Peer` header, if it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// The credential that made the write (None with access control off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<Principal>,
}

/// The credential behind a write, as history shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// `token`, `share` or `admin`.
    pub kind: String,
    /// The credential's public id.
    pub id: String,
    /// The credential's label.
    pub label: String,
}

/// A stored entry with its number (newest = highest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumberedEntry {
    /// Commit order within the document, from 0.
    pub n: u64,
    /// The entry.
    pub entry: HistoryEntry,
}

/// Per-document bookkeeping of the history records ('M' record).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryMeta {
    /// The number the next entry gets.
    pub next_n: u64,
    /// Bytes of every entry and index record.
    pub bytes: u64,
}

impl HistoryMeta {
    /// Reads the bookkeeping record (zero when the document has none yet).
    pub fn load(store: &dyn Store, path: &str) -> Result<Self, HubError> {
        match store.get(&keys::meta(path))? {
            None => Ok(HistoryMeta::default()),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| HubError::Corrupt(format!("history bookkeeping of {path}: {e}"))),
        }
    }

    /// Adds `entries` (in commit order) to `batch`, with their index records and the updated
    /// bookkeeping.
    pub fn record(&mut self, path: &str, entries: &[HistoryEntry], batch: &mut Batch) -> Result<(), HubError> {
        if entries.is_empty() {
            return Ok(());
        }
        for entry in entries {
            let value = serde_json::to_vec(entry).map_err(|e| HubError::Corrupt(e.to_string()))?;
            let key = keys::history_entry(path, self.next_n);
            self.bytes += (key.len() + value.len()) as u64;
            for id in &entry.version {
                let index = keys::id_index(path, id);
                self.bytes += (index.len() + 8) as u64;
                batch.put(index, self.next_n.to_be_bytes().to_vec());
            }
            batch.put(key, value);
            self.next_n += 1;
        }
        self.save(path, batch)
    }

    /// Adds the bookkeeping record itself to `batch`.
    pub fn save(&self, path: &str, batch: &mut Batch) -> Result<(), HubError> {
        let meta = serde_json::to_vec(self).map_err(|e| HubError::Corrupt(e.to_string()))?;
        batch.put(keys::meta(path), meta);
        Ok(())
    }
}

/// The number of the entry that wrote event `id`, if it is listed.
pub fn entry_of(store: &dyn Store, path: &str, id: &str) -> Result<Option<u64>, HubError> {
    let Some(bytes) = store.get(&keys::id_index(path, id))? else { return Ok(None) };
    let n: [u8; 8] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| HubError::Corrupt(format!("history index of {path} has a {}-byte entry", bytes.len())))?;
    Ok(Some(u64::from_be_bytes(n)))
}

/// Up to `limit` entries numbered below `below` (all when None), newest first.
pub fn page(store: &dyn Store, path: &str, below: Option<u64>, limit: usize) -> Result<Vec<NumberedEntry>, HubError> {
    let bound = below.map(|n| keys::history_entry(path, n));
    let pairs = store.scan_prefix_rev(&keys::history_prefix(path), bound.as_deref(), limit)?;
    pairs
        .into_iter()
        .map(|(key, value)| {
            let n = keys::history_n(path, &key)
                .ok_or_else(|| HubError::Corrupt(format!("history key of {path} has a bad number")))?;
            let entry = serde_json::from_slice(&value)
                .map_err(|e| HubError::Corrupt(format!("history entry {n} of {path}: {e}")))?;
            Ok(NumberedEntry { n, entry })
        })
        .collect()
}
