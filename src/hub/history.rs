//! The history listing's records: one entry per accepted write, kept beside the document.
//!
//! Why records of our own: diamond-types keeps events, not when they arrived or who sent
//! them. Each write that adds events gets an entry (its version, parents, receive time,
//! author, characters inserted and deleted), numbered in commit order and written in the
//! same atomic batch as the edit itself, so the listing never shows a write that is not
//! durable and never misses one that is.
//!
//! Entries are stored in blocks of up to [`BLOCK_SLOTS`] (`history_block`: each entry coded
//! against the one before, a few bytes per keystroke), keyed by the number of their first
//! entry; the actor keeps the newest block open in memory and rewrites it with each round.
//! A run index maps `(agent, first seq)` of each run of one agent's consecutive events to its
//! block, so `before=V` pages start anywhere without reading the entries after it: listing a
//! document with millions of writes reads only the page asked for.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::store::{keys, Batch, Store};
use crate::text::EventId;

use super::history_block::{self, Slots, BLOCK_SLOTS, BLOCK_TAG};
use super::HubError;

/// One accepted write, as the listing shows it (stored in `history_block`'s binary form).
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

/// Per-document bookkeeping of the history records, and the open block.
#[derive(Clone, Debug, Default)]
pub struct HistoryMeta {
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

impl MetaRecord {
    fn load(store: &dyn Store, path: &str) -> Result<Option<Self>, HubError> {
        store
            .get(&keys::meta(path))?
            .map(|bytes| serde_json::from_slice(&bytes))
            .transpose()
            .map_err(|e| HubError::Corrupt(format!("history bookkeeping of {path}: {e}")))
    }
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

impl HistoryMeta {
    /// The number the next entry gets, from the bookkeeping record alone (no block read).
    pub fn next_n(store: &dyn Store, path: &str) -> Result<u64, HubError> {
        Ok(MetaRecord::load(store, path)?.map_or(0, |r| r.next_n))
    }

    /// Reads the bookkeeping record (zero when the document has none yet) and reopens the
    /// newest block if it has room.
    pub fn load(store: &dyn Store, path: &str) -> Result<Self, HubError> {
        let Some(record) = MetaRecord::load(store, path)? else { return Ok(HistoryMeta::default()) };
        let mut meta = HistoryMeta { next_n: record.next_n, bytes: record.bytes, open: None };
        if let Some((key, value)) = store.scan_prefix_rev(&keys::history_prefix(path), None, 1)?.pop() {
            let first_n = record_n(path, &key)?;
            let slots = decode(path, first_n, &value)?;
            if slots.len() < BLOCK_SLOTS && first_n + slots.len() as u64 == meta.next_n {
                let last = slots.iter().rev().flatten().next().cloned();
                let counted = (key.len() + value.len()) as u64;
                let starts = history_block::run_starts(&slots).into_iter().collect();
                meta.open = Some(OpenBlock { first_n, slots: slots.len(), value, last, counted, starts });
            }
        }
        Ok(meta)
    }

    /// Adds `entries` (in commit order) to `batch`: the blocks they land in, their run-index
    /// records and the updated bookkeeping.
    pub fn record(&mut self, path: &str, entries: &[HistoryEntry], batch: &mut Batch) -> Result<(), HubError> {
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
            for (agent, seq) in history_block::starts_of(open.last.as_ref(), entry) {
                let key = keys::run_index(path, &agent, seq, open.first_n);
                if !open.starts.insert((agent, seq)) {
                    continue;
                }
                self.bytes += key.len() as u64;
                batch.put(key, Vec::new());
            }
            history_block::encode_entry(open.last.as_ref(), entry, &mut open.value);
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
    pub fn save(&self, path: &str, batch: &mut Batch) -> Result<(), HubError> {
        let record = MetaRecord { next_n: self.next_n, bytes: self.bytes };
        let meta = serde_json::to_vec(&record).map_err(|e| HubError::Corrupt(e.to_string()))?;
        batch.put(keys::meta(path), meta);
        Ok(())
    }

    /// Adds to `batch` the removal of entries `ns` (compaction folded their writes): a block
    /// keeps a dropped slot's number with a one-byte marker and goes once all are dropped.
    /// Run-index records follow the blocks' new runs.
    /// Reads the store: call it from the document's actor, between rounds.
    pub fn drop_entries(
        &mut self,
        store: &dyn Store,
        path: &str,
        ns: &[u64],
        batch: &mut Batch,
    ) -> Result<(), HubError> {
        let mut pending: BTreeSet<u64> = ns.iter().copied().collect();
        while let Some(&n) = pending.first() {
            let Some((key, value)) = record_at(store, path, n)? else {
                pending.remove(&n);
                continue;
            };
            let first_n = record_n(path, &key)?;
            let slots = decode(path, first_n, &value)?;
            let end = first_n + slots.len() as u64;
            if n >= end {
                // Not stored (already dropped): the record found is an older one's.
                pending.remove(&n);
                continue;
            }
            let here: Vec<u64> = pending.range(n..end).copied().collect();
            for m in &here {
                pending.remove(m);
            }
            if self.open.as_ref().is_some_and(|o| o.first_n == first_n) {
                // Its stored value changes under it: the next entries start a new block.
                self.open = None;
            }
            let old_bytes = (key.len() + value.len()) as u64;
            let mut kept = slots.clone();
            for m in &here {
                if let Some(slot) = kept.get_mut((m - first_n) as usize) {
                    *slot = None;
                }
            }
            let (before, after): (BTreeSet<_>, BTreeSet<_>) = (
                history_block::run_starts(&slots).into_iter().collect(),
                history_block::run_starts(&kept).into_iter().collect(),
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
                let value = history_block::encode_block(&kept);
                self.bytes += (key.len() + value.len()) as u64;
                batch.put(key, value);
            } else {
                batch.delete(key);
            }
        }
        Ok(())
    }
}

/// The number of the first entry of a listing record's key.
fn record_n(path: &str, key: &[u8]) -> Result<u64, HubError> {
    keys::history_n(path, key).ok_or_else(|| HubError::Corrupt(format!("history key of {path} has a bad number")))
}

/// The slots of one listing block.
fn decode(path: &str, first_n: u64, value: &[u8]) -> Result<Slots, HubError> {
    history_block::decode_block(value)
        .map_err(|e| HubError::Corrupt(format!("history record {first_n} of {path}: {e}")))
}

/// One stored key and its value.
type KeyValue = (Vec<u8>, Vec<u8>);

/// The record holding entry `n` (the one with the greatest first number at or below it).
fn record_at(store: &dyn Store, path: &str, n: u64) -> Result<Option<KeyValue>, HubError> {
    let bound = keys::history_entry(path, n.saturating_add(1));
    Ok(store.scan_prefix_rev(&keys::history_prefix(path), Some(&bound), 1)?.pop())
}

/// Entry `n`, if it is listed.
pub fn entry_at(store: &dyn Store, path: &str, n: u64) -> Result<Option<HistoryEntry>, HubError> {
    let Some((key, value)) = record_at(store, path, n)? else { return Ok(None) };
    let first_n = record_n(path, &key)?;
    let slots = decode(path, first_n, &value)?;
    Ok(usize::try_from(n - first_n).ok().and_then(|i| slots.into_iter().nth(i)).flatten())
}

/// How many run-index keys with the same start a lookup tries (several blocks can list one
/// id only when versions of several ids repeat it).
const SAME_START_CANDIDATES: usize = 8;

/// The number of the entry whose version holds event `id`, if it is listed (the newest such
/// entry, when several list it).
pub fn entry_of(store: &dyn Store, path: &str, id: &str) -> Result<Option<u64>, HubError> {
    let Ok(event) = EventId::parse(id) else { return Ok(None) };
    // The run holding the event starts at the greatest seq at or below it.
    let bound = keys::run_index(path, &event.agent, event.seq.saturating_add(1), 0);
    let runs =
        store.scan_prefix_rev(&keys::run_index_agent(path, &event.agent), Some(&bound), SAME_START_CANDIDATES)?;
    let mut start = None;
    for (key, _) in &runs {
        let (seq, first_n) =
            keys::run_index_parts(key).ok_or_else(|| HubError::Corrupt(format!("run index key of {path} is short")))?;
        if *start.get_or_insert(seq) != seq {
            break;
        }
        let Some(value) = store.get(&keys::history_entry(path, first_n))? else { continue };
        let slots = decode(path, first_n, &value)?;
        let holds = |s: &Option<HistoryEntry>| s.as_ref().is_some_and(|e| e.version.iter().any(|v| v == id));
        if let Some(i) = slots.iter().rposition(holds) {
            return Ok(Some(first_n + i as u64));
        }
    }
    Ok(None)
}

/// Up to `limit` entries numbered below `below` (all when None), newest first.
pub fn page(store: &dyn Store, path: &str, below: Option<u64>, limit: usize) -> Result<Vec<NumberedEntry>, HubError> {
    let prefix = keys::history_prefix(path);
    let mut out = Vec::new();
    let mut bound = below.map(|n| keys::history_entry(path, n));
    // Each record holds at least one entry: `limit` records are always enough for a page.
    let per_scan = limit.max(1);
    while out.len() < limit {
        let records = store.scan_prefix_rev(&prefix, bound.as_deref(), per_scan)?;
        for (key, value) in &records {
            let first_n = record_n(path, key)?;
            let slots = decode(path, first_n, value)?;
            for (i, slot) in slots.into_iter().enumerate().rev() {
                let n = first_n + i as u64;
                match slot {
                    Some(entry) if below.is_none_or(|b| n < b) && out.len() < limit => {
                        out.push(NumberedEntry { n, entry })
                    }
                    _ => {}
                }
            }
        }
        match records.last() {
            Some((key, _)) if records.len() == per_scan => bound = Some(key.clone()),
            _ => break,
        }
    }
    Ok(out)
}
