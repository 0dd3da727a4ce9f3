//! The store side of uploads: reading an upload's chunk list, the batches of a checkpoint and
//! of dropping an upload, and counting a caller's uploads. Blocking reads; callers run them
//! through `blocking`.

use crate::chunks::refs::{self, Owner, UPLOADS};
use crate::chunks::{ChunkId, ChunkSize};
use crate::store::{Batch, Store, StoreError};
use crate::upload::record::{self, PartRef, UploadRecord};
use crate::upload::UploadId;

/// The owner version naming an upload's uncut tail chunk (its list's chunks use the bare id).
pub(super) fn tail_version(id: &UploadId) -> String {
    format!("{id}~tail")
}

/// An upload's chunk list, in order.
pub(super) fn parts(store: &dyn Store, id: &UploadId) -> Result<Vec<PartRef>, StoreError> {
    let rows = store.scan_prefix(&record::parts_prefix(id))?;
    rows.iter()
        .map(|(_, v)| PartRef::decode(v).ok_or_else(|| StoreError::Engine("an upload's chunk entry is corrupt".into())))
        .collect()
}

/// Adds to `batch` what a checkpoint writes: the parts `new` (stored, with their sizes)
/// appended to the list, references to them, the tail swapped for `tail`, and `record` (already
/// updated by the caller).
pub(super) fn checkpoint(
    batch: &mut Batch,
    id: &UploadId,
    record: &UploadRecord,
    from: u32,
    new: &[(ChunkId, ChunkSize)],
    old_tail: Option<[u8; 32]>,
    tail: Option<(ChunkId, ChunkSize)>,
) {
    let parts: Vec<PartRef> = new.iter().map(|(id, size)| PartRef { id: id.0, len: u64::from(size.plain) }).collect();
    record::append_parts(batch, id, from, &parts);
    let name = id.to_string();
    refs::add(batch, Owner { resource: UPLOADS, version: &name }, new);
    let tail_name = tail_version(id);
    let tail_owner = Owner { resource: UPLOADS, version: &tail_name };
    if let Some(old) = old_tail {
        refs::remove(batch, tail_owner, &[ChunkId(old)]);
    }
    if let Some(tail) = tail {
        refs::add(batch, tail_owner, &[tail]);
    }
    batch.put(record::record_key(id), record.encode());
}

/// Adds to `batch` the removal of an upload's chunk list and references (not its record).
pub(super) fn drop_parts(
    store: &dyn Store,
    batch: &mut Batch,
    id: &UploadId,
    rec: &UploadRecord,
) -> Result<(), StoreError> {
    let ids: Vec<ChunkId> = parts(store, id)?.iter().map(|p| ChunkId(p.id)).collect();
    let name = id.to_string();
    refs::remove(batch, Owner { resource: UPLOADS, version: &name }, &ids);
    if let Some((tail, _)) = rec.tail_id() {
        let tail_name = tail_version(id);
        refs::remove(batch, Owner { resource: UPLOADS, version: &tail_name }, &[ChunkId(tail)]);
    }
    record::drop_parts(batch, id);
    Ok(())
}

/// Adds to `batch` the removal of everything an upload holds, its record included.
pub(super) fn drop_upload(
    store: &dyn Store,
    batch: &mut Batch,
    id: &UploadId,
    rec: &UploadRecord,
) -> Result<(), StoreError> {
    drop_parts(store, batch, id, rec)?;
    batch.delete(record::record_key(id));
    Ok(())
}

/// Uploads of `owner` neither finished nor expired at `now_ms`.
pub(super) fn count_owned(store: &dyn Store, owner: &str, now_ms: u64) -> Result<usize, StoreError> {
    let rows = store.scan_prefix(&record::records_prefix())?;
    Ok(rows
        .iter()
        .filter_map(|(_, v)| UploadRecord::decode(v))
        .filter(|r| r.owner == owner && r.done.is_none() && r.expires_ms > now_ms)
        .count())
}

/// Every upload record (the expiry pass).
pub(super) fn all(store: &dyn Store) -> Result<Vec<(UploadId, UploadRecord)>, StoreError> {
    let rows = store.scan_prefix(&record::records_prefix())?;
    Ok(rows.iter().filter_map(|(k, v)| Some((record::id_of_record_key(k)?, UploadRecord::decode(v)?))).collect())
}
