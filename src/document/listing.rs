//! The history listing's records: one entry per accepted write, kept beside the document.
//!
//! Why records of our own: diamond-types keeps events, not when they arrived or who sent
//! them. Each write that adds events gets an entry (its version, parents, receive time,
//! author, characters inserted and deleted), numbered in commit order and written in the
//! same atomic batch as the edit itself, so the listing never shows a write that is not
//! durable and never misses one that is.
//!
//! Entries are stored in blocks of up to [`BLOCK_SLOTS`] (`listing_block`: each entry coded
//! against the one before, a few bytes per keystroke), keyed by the number of their first
//! entry; the core keeps the newest block open in memory and rewrites it with each round. A run
//! index maps `(agent, first seq)` of each run of one agent's consecutive events to its block,
//! so `before=V` pages start anywhere without reading the entries after it (the readers of
//! these records live in `hub::history`). This file is pure: it turns entries into records and
//! stored bytes into bookkeeping, and never reads the store itself.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::store::{keys, Batch};

use super::listing_block::{self, Slots, BLOCK_SLOTS, BLOCK_TAG};
use super::DocError;

/// One accepted write, as the listing shows it.
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

/// Per-document bookkeeping of the listing's records, and the open block.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    /// The number the next entry gets.
    pub next_n: u64,
    /// Bytes of every listing record (blocks and run index).
    pub bytes: u64,
    /// The newest block while it has room (None: the next entry starts a block).
    open: Option<OpenBlock>,
}

/// The stored form of the bookkeeping ('M' record, JSON).
#[derive(Default, Serialize, Deserialize)]
struct MetaRecord {
    next_n: u64,
    bytes: u64,
}

/// The block the next entries go into, as last written.
#[derive(Clone, Debug)]
struct OpenBlock {
    first_n: u64,
    slots: usize,
    value: Vec<u8>,
    /// The entry the next one is coded against.
    last: Option<HistoryEntry>,
    /// Key and value bytes of the block as counted in `bytes`.
    counted: u64,
    /// Its run-index keys, `(agent, seq)`: a start repeats only when merge versions repeat
    /// an id, and is then stored (and counted) once.
    starts: BTreeSet<(String, u64)>,
}

/// The number the next entry gets, from a stored bookkeeping record alone.
pub fn next_n_of(path: &str, meta: Option<&[u8]>) -> Result<u64, DocError> {
    Ok(parse_meta(path, meta)?.map_or(0, |r| r.next_n))
}

fn parse_meta(path: &str, meta: Option<&[u8]>) -> Result<Option<MetaRecord>, DocError> {
    meta.map(serde_json::from_slice)
        .transpose()
        .map_err(|e| DocError::Corrupt(format!("history bookkeeping of {path}: {e}")))
}

impl Listing {
    /// The bookkeeping from its stored record (`meta`; none yet: an empty listing) and the
    /// newest listing record (`newest`: key and value), which is reopened if it has room.
    pub fn from_stored(path: &str, meta: Option<&[u8]>, newest: Option<(&[u8], &[u8])>) -> Result<Self, DocError> {
        let Some(record) = parse_meta(path, meta)? else { return Ok(Listing::default()) };
        let mut listing = Listing { next_n: record.next_n, bytes: record.bytes, open: None };
        if let Some((key, value)) = newest {
            let first_n = record_n(path, key)?;
            let slots = decode_record(path, first_n, value)?;
            if slots.len() < BLOCK_SLOTS && first_n + slots.len() as u64 == listing.next_n {
                let last = slots.iter().rev().flatten().next().cloned();
                let counted = (key.len() + value.len()) as u64;
                let starts = listing_block::run_starts(&slots).into_iter().collect();
                listing.open =
                    Some(OpenBlock { first_n, slots: slots.len(), value: value.to_vec(), last, counted, starts });
            }
        }
        Ok(listing)
    }

    /// Adds `entries` (in commit order) to `batch`: the blocks they land in, their run-index
    /// records and the updated bookkeeping.
    pub fn record(&mut self, path: &str, entries: &[HistoryEntry], batch: &mut Batch) -> Result<(), DocError> {
        if entries.is_empty() {
            return Ok(());
        }
        for entry in entries {
            let open = self.open.get_or_insert_with(|| OpenBlock {
                first_n: self.next_n,
                slots: 0,
                value: vec![BLOCK_TAG],
                last: None,
                counted: 0,
                starts: BTreeSet::new(),
            });
            for (agent, seq) in listing_block::starts_of(open.last.as_ref(), entry) {
                let key = keys::run_index(path, &agent, seq, open.first_n);
                if !open.starts.insert((agent, seq)) {
                    continue;
                }
                self.bytes += key.len() as u64;
                batch.put(key, Vec::new());
            }
            listing_block::encode_entry(open.last.as_ref(), entry, &mut open.value);
            open.last = Some(entry.clone());
            open.slots += 1;
            self.next_n += 1;
            if open.slots >= BLOCK_SLOTS {
                self.put_open(path, batch);
                self.open = None;
            }
        }
        self.put_open(path, batch);
        self.save(path, batch)
    }

    /// Adds the open block's current value to `batch`, counting the bytes it adds.
    fn put_open(&mut self, path: &str, batch: &mut Batch) {
        let Some(open) = &mut self.open else { return };
        let key = keys::history_entry(path, open.first_n);
        let now = (key.len() + open.value.len()) as u64;
        self.bytes = self.bytes.saturating_sub(open.counted) + now;
        open.counted = now;
        batch.put(key, open.value.clone());
    }

    /// Adds the bookkeeping record itself to `batch`.
    pub fn save(&self, path: &str, batch: &mut Batch) -> Result<(), DocError> {
        let record = MetaRecord { next_n: self.next_n, bytes: self.bytes };
        let meta = serde_json::to_vec(&record).map_err(|e| DocError::Corrupt(e.to_string()))?;
        batch.put(keys::meta(path), meta);
        Ok(())
    }

    /// The number of the open block's first entry, if one is open.
    pub fn open_block(&self) -> Option<u64> {
        self.open.as_ref().map(|o| o.first_n)
    }

    /// Adds to `batch` the removal of entries `ns` (compaction folded their writes): a block
    /// keeps a dropped slot's number with a one-byte marker and goes once all are dropped;
    /// run-index records follow the blocks' new runs. `stored` holds the current records that
    /// hold those entries (first entry number → value, as read from the store by the
    /// compaction planner); the open block is taken from memory instead, since it changes with
    /// every round.
    pub fn drop_entries(
        &mut self,
        path: &str,
        stored: &BTreeMap<u64, Vec<u8>>,
        ns: &[u64],
        batch: &mut Batch,
    ) -> Result<(), DocError> {
        let mut records: BTreeMap<u64, Vec<u8>> = stored.clone();
        if let Some(open) = &self.open {
            records.insert(open.first_n, open.value.clone());
        }
        let mut pending: BTreeSet<u64> = ns.iter().copied().collect();
        while let Some(&n) = pending.first() {
            let Some((&first_n, value)) = records.range(..=n).next_back() else {
                pending.remove(&n);
                continue;
            };
            let slots = decode_record(path, first_n, value)?;
            let end = first_n + slots.len() as u64;
            let here: Vec<u64> = pending.range(n..end.max(n + 1)).copied().collect();
            for m in &here {
                pending.remove(m);
            }
            if n >= end {
                continue; // not stored (already dropped): the record found is an older one's
            }
            if self.open.as_ref().is_some_and(|o| o.first_n == first_n) {
                // Its stored value changes under it: the next entries start a new block.
                self.open = None;
            }
            let key = keys::history_entry(path, first_n);
            let old_bytes = (key.len() + value.len()) as u64;
            let mut kept = slots.clone();
            for m in &here {
                if let Some(slot) = kept.get_mut((m - first_n) as usize) {
                    *slot = None;
                }
            }
            let (before, after): (BTreeSet<_>, BTreeSet<_>) = (
                listing_block::run_starts(&slots).into_iter().collect(),
                listing_block::run_starts(&kept).into_iter().collect(),
            );
            for (agent, seq) in before.difference(&after) {
                let index = keys::run_index(path, agent, *seq, first_n);
                self.bytes = self.bytes.saturating_sub(index.len() as u64);
                batch.delete(index);
            }
            for (agent, seq) in after.difference(&before) {
                let index = keys::run_index(path, agent, *seq, first_n);
                self.bytes += index.len() as u64;
                batch.put(index, Vec::new());
            }
            self.bytes = self.bytes.saturating_sub(old_bytes);
            if kept.iter().any(Option::is_some) {
                let value = listing_block::encode_block(&kept);
                self.bytes += (key.len() + value.len()) as u64;
                records.insert(first_n, value.clone());
                batch.put(key, value);
            } else {
                records.remove(&first_n);
                batch.delete(key);
            }
        }
        Ok(())
    }
}

/// The number of the first entry of a listing record's key.
pub fn record_n(path: &str, key: &[u8]) -> Result<u64, DocError> {
    keys::history_n(path, key).ok_or_else(|| DocError::Corrupt(format!("history key of {path} has a bad number")))
}

/// The slots of one listing record (a block).
pub fn decode_record(path: &str, first_n: u64, value: &[u8]) -> Result<Slots, DocError> {
    listing_block::decode_block(value)
        .map_err(|e| DocError::Corrupt(format!("history record {first_n} of {path}: {e}")))
}
