//! How a document's history maps onto store records, and back (pure: the shell reads and
//! writes the bytes).
//!
//! A document is one snapshot record plus a log of delta records, one per durable write
//! round (diamond-types' own encoding, behind a one-byte format tag of ours). The log is
//! folded into a fresh snapshot once it outgrows the snapshot, or once the document has been
//! quiet for a moment with a few records in its log (so the next cold open decodes one
//! snapshot instead of hundreds of deltas), in the same atomic batch that deletes the folded
//! records, so a crash at any point leaves a loadable document.

use crate::file::{FileDoc, FileVersion};
use crate::protocol::VersionSet;
use crate::store::{keys, Batch};
use crate::text::TextDoc;

use super::horizon::Horizon;
use super::listing::Listing;
use super::stored::StoredDoc;
use super::DocError;

/// The record format tags. V1: one diamond-types file. V2: several, each behind its u32
/// little-endian length, added in order (a write round that applied several writes: see
/// `TextDoc::take_delta_since`).
const FORMAT_V1: u8 = 1;
const FORMAT_V2: u8 = 2;
/// File resources: a log record is one file version (its JSON record, `file::FileVersion`),
/// a snapshot every version in acceptance order (a JSON array). The first byte of any record
/// says the kind of the resource, so a build that knows only text refuses a file resource as
/// unreadable instead of serving it as empty text.
const FILE_VERSION: u8 = 3;
const FILE_SNAPSHOT: u8 = 4;
/// Fold the log into a snapshot after this many records...
const MAX_LOG_RECORDS: u64 = 512;
/// ...or when the log's bytes exceed this many times the snapshot's (plus a floor).
const LOG_TO_SNAPSHOT_RATIO: usize = 2;
const LOG_BYTES_FLOOR: usize = 256 << 10;
/// A quiet document folds its log when it holds at least this many records.
const QUIET_FOLD_RECORDS: u64 = 8;

/// Bookkeeping about what is on disk for one document's snapshot and log (the listing and the
/// horizon keep their own). Small and `Clone`: a round stages a copy and the core installs it
/// only once the round is durable.
#[derive(Clone, Debug, Default)]
pub struct Records {
    /// The seq the next log record gets.
    next_seq: u64,
    /// Log records since the snapshot.
    log_records: u64,
    log_bytes: usize,
    snapshot_bytes: usize,
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
fn unwrap_record<'a>(key: &[u8], value: &'a [u8]) -> Result<Vec<&'a [u8]>, DocError> {
    let corrupt = |what: &str| DocError::Corrupt(format!("record {} {what}", String::from_utf8_lossy(key)));
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

/// A document as its stored records say: text (`doc`) or a file (`file` not empty); a path
/// never written is empty text.
pub struct Decoded {
    pub doc: TextDoc,
    pub file: FileDoc,
    pub records: Records,
    pub listing: Listing,
    pub horizon: Option<Horizon>,
}

/// Decodes a document's stored records (an empty document when nothing is stored): the
/// document, the snapshot-and-log bookkeeping, the listing's and the horizon.
pub fn decode(path: &str, stored: &StoredDoc) -> Result<Decoded, DocError> {
    let listing = Listing::from_stored(
        path,
        stored.meta.as_deref(),
        stored.newest_block.as_ref().map(|(k, v)| (k.as_slice(), v.as_slice())),
    )?;
    let horizon = Horizon::from_stored(path, stored.horizon.as_deref())?;
    let mut records = Records::default();
    let snapshot_key = keys::snapshot(path);
    if let Some(value) = &stored.snapshot {
        records.snapshot_bytes = value.len();
    }
    for (key, value) in &stored.log {
        let Some(seq) = keys::log_seq(path, key) else { continue };
        records.next_seq = seq + 1;
        records.log_records += 1;
        records.log_bytes += value.len();
    }
    let is_file = |tag: Option<&u8>| matches!(tag, Some(&FILE_VERSION | &FILE_SNAPSHOT));
    let first = stored.snapshot.as_deref().or(stored.log.first().map(|(_, v)| v.as_slice()));
    if is_file(first.and_then(|v| v.first())) {
        let file = decode_file(path, stored)?;
        return Ok(Decoded { doc: TextDoc::new(), file, records, listing, horizon });
    }
    let mut deltas = Vec::with_capacity(stored.log.len());
    for (key, value) in &stored.log {
        if keys::log_seq(path, key).is_some() {
            deltas.extend(unwrap_record(key, value)?);
        }
    }
    let snapshot = match stored.snapshot.as_deref().map(|value| unwrap_record(&snapshot_key, value)).transpose()? {
        None => None,
        Some(files) if files.len() == 1 => files.first().copied(),
        Some(_) => return Err(DocError::Corrupt(format!("the snapshot of {path} holds several files"))),
    };
    let mut doc = TextDoc::decode_stored(snapshot, &deltas).map_err(|e| DocError::Corrupt(e.to_string()))?;
    if let Some(h) = &horizon {
        // Not inside diamond-types' encoding: agents whose events were all folded away must
        // continue after them, never reuse their ids.
        doc.set_pruned(&h.pruned);
    }
    Ok(Decoded { doc, file: FileDoc::new(), records, listing, horizon })
}

/// A file resource's versions: the snapshot's, then the log's, in acceptance order. Every
/// record must be a file record (a resource is one kind for its whole life).
fn decode_file(path: &str, stored: &StoredDoc) -> Result<FileDoc, DocError> {
    let corrupt = |what: String| DocError::Corrupt(format!("file resource {path}: {what}"));
    let mut versions = Vec::new();
    if let Some(value) = &stored.snapshot {
        match value.split_first() {
            Some((&FILE_SNAPSHOT, json)) => {
                let list: Vec<FileVersion> =
                    serde_json::from_slice(json).map_err(|e| corrupt(format!("snapshot: {e}")))?;
                versions.extend(list);
            }
            _ => return Err(corrupt("the snapshot is not a file snapshot".into())),
        }
    }
    for (key, value) in &stored.log {
        if keys::log_seq(path, key).is_none() {
            continue;
        }
        match value.split_first() {
            Some((&FILE_VERSION, json)) => {
                versions.push(FileVersion::decode(json).map_err(|e| corrupt(e.to_string()))?)
            }
            _ => return Err(corrupt("a log record is not a file version".into())),
        }
    }
    FileDoc::from_records(versions).map_err(|e| corrupt(e.to_string()))
}

/// Decodes the document alone from its stored records (for readers' copies of it; a file
/// resource reads as empty text there, and readers of files never ask).
pub fn decode_text(path: &str, stored: &StoredDoc) -> Result<TextDoc, DocError> {
    Ok(decode(path, stored)?.doc)
}

/// The log record of one file version.
pub fn file_version_record(version: &FileVersion) -> Vec<u8> {
    let mut out = vec![FILE_VERSION];
    out.extend_from_slice(&version.encode());
    out
}

/// The snapshot record of a file resource: every version, in acceptance order.
pub fn file_snapshot_record(file: &FileDoc) -> Vec<u8> {
    let versions: Vec<&FileVersion> = file.history().collect();
    let mut out = vec![FILE_SNAPSHOT];
    // Plain data into memory: cannot fail.
    out.extend_from_slice(&serde_json::to_vec(&versions).unwrap_or_default());
    out
}

/// A text snapshot record.
pub fn text_snapshot_record(doc: &TextDoc) -> Vec<u8> {
    wrap(doc.encode_full())
}

impl Records {
    /// The batch that makes everything since `before` durable (a log record, or a fresh
    /// snapshot that replaces the whole log when the log has grown too large), and the round's
    /// delta as diamond-types files (what the readers' copy of the document adds).
    pub fn round_batch(
        &mut self,
        path: &str,
        doc: &mut TextDoc,
        before: &VersionSet,
    ) -> Result<(Batch, Vec<Vec<u8>>), DocError> {
        let mut batch = Batch::new();
        let files = doc.take_delta_since(before)?;
        if self.log_is_large() {
            self.fold_into(path, text_snapshot_record(doc), &mut batch);
            self.next_seq += 1;
        } else {
            self.append(path, wrap_files(files.clone()), &mut batch);
        }
        Ok((batch, files))
    }

    /// The batch that makes a file resource's new version durable: its log record, or a fresh
    /// snapshot of every version (which then includes it) when the log has grown too large.
    pub fn file_round_batch(&mut self, path: &str, file: &FileDoc, version: &FileVersion) -> Batch {
        let mut batch = Batch::new();
        if self.log_is_large() {
            self.fold_into(path, file_snapshot_record(file), &mut batch);
            self.next_seq += 1;
        } else {
            self.append(path, file_version_record(version), &mut batch);
        }
        batch
    }

    fn log_is_large(&self) -> bool {
        self.log_records >= MAX_LOG_RECORDS
            || self.log_bytes > LOG_BYTES_FLOOR.max(self.snapshot_bytes * LOG_TO_SNAPSHOT_RATIO)
    }

    /// One record at the end of the log.
    fn append(&mut self, path: &str, record: Vec<u8>, batch: &mut Batch) {
        self.log_records += 1;
        self.log_bytes += record.len();
        batch.put(keys::log_entry(path, self.next_seq), record);
        self.next_seq += 1;
    }

    /// Whether a quiet document should fold its log now (see [`fold_batch`](Self::fold_batch)).
    pub fn worth_folding(&self) -> bool {
        self.log_records >= QUIET_FOLD_RECORDS
    }

    /// The batch that replaces the snapshot and the whole log by one fresh snapshot. Loading
    /// a document decodes every log record one by one (measured on B3's document: a few
    /// hundred one-edit records cost more than the snapshot itself), so a document whose
    /// writes have paused folds its log, once per burst.
    pub fn fold_batch(&mut self, path: &str, snapshot: Vec<u8>) -> Batch {
        let mut batch = Batch::new();
        self.fold_into(path, snapshot, &mut batch);
        batch
    }

    fn fold_into(&mut self, path: &str, record: Vec<u8>, batch: &mut Batch) {
        self.snapshot_bytes = record.len();
        self.log_records = 0;
        self.log_bytes = 0;
        batch.put(keys::snapshot(path), record);
        batch.delete_prefix(keys::log_prefix(path));
    }

    /// Adds to `batch` what replaces the document by its compacted form: a fresh snapshot,
    /// the log gone (the caller adds the horizon and the listing's changes to the same batch).
    pub fn compaction_into(&mut self, path: &str, doc: &TextDoc, batch: &mut Batch) {
        batch.delete_prefix(keys::log_prefix(path));
        let record = text_snapshot_record(doc);
        self.snapshot_bytes = record.len();
        self.log_records = 0;
        self.log_bytes = 0;
        self.next_seq += 1;
        batch.put(keys::snapshot(path), record);
    }

    /// Bytes the document's snapshot and log occupy in the store (keys excluded, before the
    /// engine's compression).
    pub fn bytes(&self) -> u64 {
        (self.snapshot_bytes + self.log_bytes) as u64
    }

    /// The batch that erases a document and its whole history (listing and checkpoints
    /// included).
    pub fn delete_batch(&mut self, path: &str) -> Batch {
        *self = Records { next_seq: self.next_seq, ..Records::default() };
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
}
