//! How a document's history maps onto store records, and back.
//!
//! A document is one snapshot record plus a log of delta records, one per durable write
//! round (diamond-types' own encoding, behind a one-byte format tag of ours). The log is
//! folded into a fresh snapshot once it outgrows the snapshot, in the same atomic batch
//! that deletes the folded records, so a crash at any point leaves a loadable document.

use crate::protocol::VersionSet;
use crate::store::{keys, Batch, Store};
use crate::text::TextDoc;

use super::history::HistoryMeta;
use super::horizon::Horizon;
use super::HubError;

/// The record format tag: bumped if the envelope ever changes.
const FORMAT_V1: u8 = 1;
/// Fold the log into a snapshot after this many records...
const MAX_LOG_RECORDS: u64 = 512;
/// ...or when the log's bytes exceed this many times the snapshot's (plus a floor).
const LOG_TO_SNAPSHOT_RATIO: usize = 2;
const LOG_BYTES_FLOOR: usize = 256 << 10;

/// Bookkeeping about what is on disk for one document.
#[derive(Debug, Default)]
pub(crate) struct Persisted {
    /// The seq the next log record gets.
    next_seq: u64,
    /// Log records since the snapshot.
    log_records: u64,
    log_bytes: usize,
    snapshot_bytes: usize,
    /// The history listing's records.
    pub history: HistoryMeta,
    /// The merge horizon, once compacted (copied into the document's shared state at load).
    pub horizon: Option<Horizon>,
}

fn wrap(bytes: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 1);
    out.push(FORMAT_V1);
    out.extend_from_slice(&bytes);
    out
}

fn unwrap_record<'a>(key: &[u8], value: &'a [u8]) -> Result<&'a [u8], HubError> {
    match value.split_first() {
        Some((&FORMAT_V1, rest)) => Ok(rest),
        _ => Err(HubError::Corrupt(format!("record {} has an unknown format", String::from_utf8_lossy(key)))),
    }
}

/// Loads a document (an empty one when nothing is stored) and what is on disk for it.
pub(crate) fn load(store: &dyn Store, path: &str) -> Result<(TextDoc, Persisted), HubError> {
    let mut persisted = Persisted {
        history: HistoryMeta::load(store, path)?,
        horizon: Horizon::load(store, path)?,
        ..Persisted::default()
    };
    let snapshot_key = keys::snapshot(path);
    let snapshot = store.get(&snapshot_key)?;
    if let Some(value) = &snapshot {
        persisted.snapshot_bytes = value.len();
    }
    let log = store.scan_prefix(&keys::log_prefix(path))?;
    let mut deltas = Vec::with_capacity(log.len());
    for (key, value) in &log {
        let Some(seq) = keys::log_seq(path, key) else { continue };
        deltas.push(unwrap_record(key, value)?);
        persisted.next_seq = seq + 1;
        persisted.log_records += 1;
        persisted.log_bytes += value.len();
    }
    let snapshot = snapshot.as_deref().map(|value| unwrap_record(&snapshot_key, value)).transpose()?;
    let mut doc = TextDoc::decode_stored(snapshot, &deltas).map_err(|e| HubError::Corrupt(e.to_string()))?;
    if let Some(h) = &persisted.horizon {
        // Not inside diamond-types' encoding: agents whose events were all folded away must
        // continue after them, never reuse their ids.
        doc.set_pruned(&h.pruned);
    }
    Ok((doc, persisted))
}

impl Persisted {
    /// The batch that makes everything since `before` durable: a log record, or a fresh
    /// snapshot that replaces the whole log when the log has grown too large.
    pub fn batch_for(&mut self, path: &str, doc: &TextDoc, before: &VersionSet) -> Result<Batch, HubError> {
        let mut batch = Batch::new();
        let log_is_large = self.log_records >= MAX_LOG_RECORDS
            || self.log_bytes > LOG_BYTES_FLOOR.max(self.snapshot_bytes * LOG_TO_SNAPSHOT_RATIO);
        if log_is_large {
            let record = wrap(doc.encode_full());
            self.snapshot_bytes = record.len();
            self.log_records = 0;
            self.log_bytes = 0;
            batch.put(keys::snapshot(path), record);
            batch.delete_prefix(keys::log_prefix(path));
        } else {
            let record = wrap(doc.encode_since(before)?);
            self.log_records += 1;
            self.log_bytes += record.len();
            batch.put(keys::log_entry(path, self.next_seq), record);
        }
        self.next_seq += 1;
        Ok(batch)
    }

    /// The batch that replaces the document by its compacted form: a fresh snapshot, the log
    /// gone, the horizon record, and the folded history entries (`drop_keys`, `drop_bytes`)
    /// removed, all at once.
    pub fn compaction_batch(
        &mut self,
        path: &str,
        doc: &TextDoc,
        horizon: &Horizon,
        drop_keys: &[Vec<u8>],
        drop_bytes: u64,
    ) -> Result<Batch, HubError> {
        let mut batch = Batch::new();
        batch.delete_prefix(keys::log_prefix(path));
        for key in drop_keys {
            batch.ops.push(crate::store::Op::Delete(key.clone()));
        }
        let record = wrap(doc.encode_full());
        self.snapshot_bytes = record.len();
        self.log_records = 0;
        self.log_bytes = 0;
        self.next_seq += 1;
        batch.put(keys::snapshot(path), record);
        horizon.save(path, &mut batch)?;
        self.history.bytes = self.history.bytes.saturating_sub(drop_bytes);
        self.history.save(path, &mut batch)?;
        self.horizon = Some(horizon.clone());
        Ok(batch)
    }

    /// Bytes the document's history occupies in the store: snapshot, log, and the history
    /// listing's records (keys and values, before the engine's compression).
    pub fn stored_bytes(&self) -> u64 {
        (self.snapshot_bytes + self.log_bytes) as u64 + self.history.bytes
    }

    /// The batch that erases a document and its whole history (listing and checkpoints
    /// included).
    pub fn delete_batch(&mut self, path: &str) -> Batch {
        *self = Persisted { next_seq: self.next_seq, ..Persisted::default() };
        let mut batch = Batch::new();
        for prefix in keys::all_of(path) {
            batch.delete_prefix(prefix);
        }
        batch
    }
}
