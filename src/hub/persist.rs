//! How a document's history maps onto store records, and back.
//!
//! A document is one snapshot record plus a log of delta records, one per durable write
//! round (diamond-types' own encoding, behind a one-byte format tag of ours). The log is
//! folded into a fresh snapshot once it outgrows the snapshot, or once the document has been
//! quiet for a moment with a few records in its log (so the next cold open decodes one
//! snapshot instead of hundreds of deltas), in the same atomic batch that deletes the folded
//! records, so a crash at any point leaves a loadable document.

use crate::protocol::VersionSet;
use crate::store::{keys, Batch, Store};
use crate::text::TextDoc;

use super::history::HistoryMeta;
use super::horizon::Horizon;
use super::HubError;

/// The record format tags. V1: one diamond-types file. V2: several, each behind its u32
/// little-endian length, added in order (a write round that applied several writes: see
/// `TextDoc::take_delta_since`).
const FORMAT_V1: u8 = 1;
const FORMAT_V2: u8 = 2;
/// Fold the log into a snapshot after this many records...
const MAX_LOG_RECORDS: u64 = 512;
/// ...or when the log's bytes exceed this many times the snapshot's (plus a floor).
const LOG_TO_SNAPSHOT_RATIO: usize = 2;
const LOG_BYTES_FLOOR: usize = 256 << 10;
/// A quiet document folds its log when it holds at least this many records.
const QUIET_FOLD_RECORDS: u64 = 8;

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

/// One file as V1 (the common case: a round of one write), several as V2.
fn wrap_files(mut files: Vec<Vec<u8>>) -> Vec<u8> {
    if files.len() == 1 {
        return wrap(files.remove(0));
    }
    let mut out = Vec::with_capacity(1 + files.iter().map(|f| f.len() + 4).sum::<usize>());
    out.push(FORMAT_V2);
    for file in &files {
        out.extend_from_slice(&(file.len() as u32).to_le_bytes());
        out.extend_from_slice(file);
    }
    out
}

/// The diamond-types files of a record, in order.
fn unwrap_record<'a>(key: &[u8], value: &'a [u8]) -> Result<Vec<&'a [u8]>, HubError> {
    let corrupt = |what: &str| HubError::Corrupt(format!("record {} {what}", String::from_utf8_lossy(key)));
    match value.split_first() {
        Some((&FORMAT_V1, rest)) => Ok(vec![rest]),
        Some((&FORMAT_V2, mut rest)) => {
            let mut files = Vec::new();
            while !rest.is_empty() {
                let (len, tail) = rest.split_first_chunk::<4>().ok_or_else(|| corrupt("has a truncated length"))?;
                let len = u32::from_le_bytes(*len) as usize;
                if len > tail.len() {
                    return Err(corrupt("has a truncated file"));
                }
                let (file, tail) = tail.split_at(len);
                files.push(file);
                rest = tail;
            }
            Ok(files)
        }
        _ => Err(corrupt("has an unknown format")),
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
        deltas.extend(unwrap_record(key, value)?);
        persisted.next_seq = seq + 1;
        persisted.log_records += 1;
        persisted.log_bytes += value.len();
    }
    let snapshot = match snapshot.as_deref().map(|value| unwrap_record(&snapshot_key, value)).transpose()? {
        None => None,
        Some(files) if files.len() == 1 => files.first().copied(),
        Some(_) => return Err(HubError::Corrupt(format!("the snapshot of {path} holds several files"))),
    };
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
    pub fn batch_for(&mut self, path: &str, doc: &mut TextDoc, before: &VersionSet) -> Result<Batch, HubError> {
        let mut batch = Batch::new();
        let log_is_large = self.log_records >= MAX_LOG_RECORDS
            || self.log_bytes > LOG_BYTES_FLOOR.max(self.snapshot_bytes * LOG_TO_SNAPSHOT_RATIO);
        if log_is_large {
            doc.restart_delta();
            self.fold_into(path, doc, &mut batch);
        } else {
            let record = wrap_files(doc.take_delta_since(before)?);
            self.log_records += 1;
            self.log_bytes += record.len();
            batch.put(keys::log_entry(path, self.next_seq), record);
        }
        self.next_seq += 1;
        Ok(batch)
    }

    /// Whether a quiet document should fold its log now (see [`fold_batch`](Self::fold_batch)).
    pub fn worth_folding(&self) -> bool {
        self.log_records >= QUIET_FOLD_RECORDS
    }

    /// The batch that replaces the snapshot and the whole log by one fresh snapshot. Loading
    /// a document decodes every log record one by one (measured on B3's document: a few
    /// hundred one-edit records cost more than the snapshot itself), so a document whose
    /// writes have paused folds its log, once per burst.
    pub fn fold_batch(&mut self, path: &str, doc: &TextDoc) -> Batch {
        let mut batch = Batch::new();
        self.fold_into(path, doc, &mut batch);
        batch
    }

    fn fold_into(&mut self, path: &str, doc: &TextDoc, batch: &mut Batch) {
        let record = wrap(doc.encode_full());
        self.snapshot_bytes = record.len();
        self.log_records = 0;
        self.log_bytes = 0;
        batch.put(keys::snapshot(path), record);
        batch.delete_prefix(keys::log_prefix(path));
    }

    /// The batch that replaces the document by its compacted form: a fresh snapshot, the log
    /// gone, the horizon record, and the folded history entries (`drop_entries`) removed, all
    /// at once. Reads the listing records it rewrites from `store`.
    pub fn compaction_batch(
        &mut self,
        store: &dyn Store,
        path: &str,
        doc: &TextDoc,
        horizon: &Horizon,
        drop_entries: &[u64],
    ) -> Result<Batch, HubError> {
        let mut batch = Batch::new();
        batch.delete_prefix(keys::log_prefix(path));
        self.history.drop_entries(store, path, drop_entries, &mut batch)?;
        let record = wrap(doc.encode_full());
        self.snapshot_bytes = record.len();
        self.log_records = 0;
        self.log_bytes = 0;
        self.next_seq += 1;
        batch.put(keys::snapshot(path), record);
        horizon.save(path, &mut batch)?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use crate::hub::{Hub, HubSettings, ReadOutcome, ReadRequest, WriteRequest};
    use crate::protocol::MergeType;
    use crate::store::{keys, Committer, MemoryStore, Store};
    use crate::text::{Change, Edit};

    fn hub(store: &Arc<dyn Store>) -> Hub {
        Hub::new(store.clone(), Committer::start(store.clone()).unwrap(), HubSettings::standard())
    }

    async fn text(hub: &Hub, path: &str) -> String {
        match hub.read(path, ReadRequest::default()).await.unwrap() {
            ReadOutcome::Snapshot { text, .. } => text,
            ReadOutcome::History { .. } => panic!("a plain read returned history"),
        }
    }

    #[test]
    fn records_of_several_files_round_trip_and_truncations_are_refused() {
        let files = vec![b"first".to_vec(), Vec::new(), b"third file".to_vec()];
        let record = super::wrap_files(files.clone());
        assert_eq!(record[0], super::FORMAT_V2);
        let back: Vec<Vec<u8>> = super::unwrap_record(b"k", &record).unwrap().into_iter().map(<[u8]>::to_vec).collect();
        assert_eq!(back, files);
        let single = super::wrap_files(vec![b"only".to_vec()]);
        assert_eq!(super::unwrap_record(b"k", &single).unwrap(), vec![b"only".as_slice()]);
        for cut in 1..record.len() {
            let ok = matches!(super::unwrap_record(b"k", &record[..cut]), Ok(f) if f.len() < files.len());
            let err = super::unwrap_record(b"k", &record[..cut]).is_err();
            assert!(ok || err, "a record cut at {cut} read as whole");
        }
        assert!(super::unwrap_record(b"k", &[9, 1, 2]).is_err());
    }

    #[tokio::test]
    async fn a_round_of_concurrent_writes_reloads_from_its_record() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let h = Arc::new(hub(&store));
        let path = "/rounds";
        let first =
            Edit { version: None, fallback_agent: "w".into(), parents: None, change: Change::Snapshot("base".into()) };
        h.write(path, WriteRequest::new(first, None, MergeType::Simpleton)).await.unwrap();
        // Many writers at once: the actor takes several per round, so some log records hold
        // several files.
        let writes = (0..32).map(|i| {
            let h = h.clone();
            tokio::spawn(async move {
                let patch = crate::protocol::Patch {
                    range: crate::protocol::TextRange::absolute(0, 0),
                    content: format!("{i};"),
                };
                let edit = Edit {
                    version: None,
                    fallback_agent: format!("a{i}"),
                    parents: None,
                    change: Change::Patches(vec![patch]),
                };
                h.write(path, WriteRequest::new(edit, None, MergeType::Simpleton)).await.unwrap();
            })
        });
        for w in writes.collect::<Vec<_>>() {
            w.await.unwrap();
        }
        let expected = text(&h, path).await;
        assert_eq!(expected.matches(';').count(), 32);
        let records = store.scan_prefix(&keys::log_prefix(path)).unwrap();
        let multi = records.iter().filter(|(_, v)| v.first() == Some(&super::FORMAT_V2)).count();
        assert!(multi > 0, "no record of several files among {}", records.len());
        assert_eq!(text(&hub(&store), path).await, expected);
    }

    #[tokio::test]
    async fn a_quiet_document_folds_its_log_into_one_snapshot() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let h = hub(&store);
        let path = "/fold";
        for i in 0..20 {
            let change = Change::Snapshot(format!("version {i}"));
            let edit = Edit { version: None, fallback_agent: "w".into(), parents: None, change };
            h.write(path, WriteRequest::new(edit, None, MergeType::Simpleton)).await.unwrap();
        }
        let log = || store.scan_prefix(&keys::log_prefix(path)).unwrap().len();
        assert!(log() >= 8, "each write round should have left a log record, found {}", log());
        let started = Instant::now();
        while log() > 0 {
            assert!(started.elapsed() < Duration::from_secs(10), "the log was never folded");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(store.get(&keys::snapshot(path)).unwrap().is_some());
        assert_eq!(text(&h, path).await, "version 19");
        // A fresh hub on the same store loads the folded document.
        assert_eq!(text(&hub(&store), path).await, "version 19");
    }
}
