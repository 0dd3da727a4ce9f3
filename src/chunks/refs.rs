//! Chunk references: which versions of which resources use which chunks, kept in the
//! key-value store as ops of the same atomic `store::Batch` as the version record that adds
//! or drops them.
//!
//! A reference is a record per (chunk, owner), not a counter: adding and dropping are plain
//! puts and deletes, so batches of different documents, committed by different shells in any
//! order, never race on a read-modify-write, and a retried batch is idempotent. A chunk is
//! referenced while any record under its prefix exists (one seek). Each reference is written
//! twice, under the chunk (for the collector) and under its owner (for per-resource stats and
//! for dropping a whole resource):
//!
//! ```text
//! 'k' ‖ chunk id (32) ‖ u32 BE resource length ‖ resource ‖ version  → RefValue
//! 'o' ‖ u32 BE resource length ‖ resource ‖ u32 BE version length ‖ version ‖ chunk id → RefValue
//! ```
//! `RefValue` is three u32 BE: how often the version uses the chunk, its plaintext length and
//! its stored length. The tags are lowercase so that they never meet the documents' tags in
//! `store::keys` (uppercase; a test checks it).
//!
//! Pure: keys and batch ops, plus the few reads the collector and the stats make through the
//! `store::Store` trait.

use std::collections::BTreeMap;

use crate::store::{Batch, Store, StoreError};

use super::{ChunkId, ChunkSize};

const BY_CHUNK: u8 = b'k';
const BY_OWNER: u8 = b'o';

/// The owner name under which resumable uploads in progress reference their chunks (version:
/// the upload's id, or the id with `~tail` for its uncut last bytes). No resource path has it
/// (paths start with `/`), and [`resources`] leaves it out.
pub const UPLOADS: &str = "\u{0}uploads";

/// Who references a chunk: one version of one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner<'a> {
    /// The resource's path.
    pub resource: &'a str,
    /// The version's id.
    pub version: &'a str,
}

/// What a reference records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefValue {
    /// How many times the version's chunk list names the chunk.
    pub uses: u32,
    /// The chunk's sizes.
    pub size: ChunkSize,
}

impl RefValue {
    fn encode(&self) -> Vec<u8> {
        [self.uses, self.size.plain, self.size.stored].iter().flat_map(|n| n.to_be_bytes()).collect()
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let n = |i: usize| Some(u32::from_be_bytes(bytes.get(i * 4..i * 4 + 4)?.try_into().ok()?));
        (bytes.len() == 12).then_some(())?;
        Some(RefValue { uses: n(0)?, size: ChunkSize { plain: n(1)?, stored: n(2)? } })
    }
}

fn with_len(key: &mut Vec<u8>, text: &str) {
    key.extend_from_slice(&(text.len() as u32).to_be_bytes());
    key.extend_from_slice(text.as_bytes());
}

/// The prefix of every reference to `id`.
pub fn chunk_prefix(id: &ChunkId) -> Vec<u8> {
    let mut key = Vec::with_capacity(33);
    key.push(BY_CHUNK);
    key.extend_from_slice(&id.0);
    key
}

fn chunk_key(id: &ChunkId, owner: Owner<'_>) -> Vec<u8> {
    let mut key = chunk_prefix(id);
    with_len(&mut key, owner.resource);
    key.extend_from_slice(owner.version.as_bytes());
    key
}

/// The prefix of every reference of one resource (all its versions).
pub fn resource_prefix(resource: &str) -> Vec<u8> {
    let mut key = vec![BY_OWNER];
    with_len(&mut key, resource);
    key
}

fn version_prefix(owner: Owner<'_>) -> Vec<u8> {
    let mut key = resource_prefix(owner.resource);
    with_len(&mut key, owner.version);
    key
}

/// The prefix of every owner-side reference: one scan sums the server's logical bytes.
pub fn all_owners() -> Vec<u8> {
    vec![BY_OWNER]
}

/// Adds, to `batch`, the references of a version whose chunk list is `chunks` (in order,
/// repeats allowed). Write it in the batch that records the version.
pub fn add(batch: &mut Batch, owner: Owner<'_>, chunks: &[(ChunkId, ChunkSize)]) {
    let mut uses: BTreeMap<ChunkId, RefValue> = BTreeMap::new();
    for (id, size) in chunks {
        uses.entry(*id).or_insert(RefValue { uses: 0, size: *size }).uses += 1;
    }
    let prefix = version_prefix(owner);
    for (id, value) in uses {
        let value = value.encode();
        batch.put(chunk_key(&id, owner), value.clone());
        let mut key = prefix.clone();
        key.extend_from_slice(&id.0);
        batch.put(key, value);
    }
}

/// Adds, to `batch`, the removal of a version's references (its chunk list, repeats
/// allowed). Write it in the batch that drops the version.
pub fn remove(batch: &mut Batch, owner: Owner<'_>, chunks: &[ChunkId]) {
    let prefix = version_prefix(owner);
    let mut seen = std::collections::BTreeSet::new();
    for id in chunks.iter().filter(|id| seen.insert(**id)) {
        batch.delete(chunk_key(id, owner));
        let mut key = prefix.clone();
        key.extend_from_slice(&id.0);
        batch.delete(key);
    }
}

/// Whether any version references `id` (one seek).
pub fn is_referenced(store: &dyn Store, id: &ChunkId) -> Result<bool, StoreError> {
    Ok(!store.scan_prefix_rev(&chunk_prefix(id), None, 1)?.is_empty())
}

/// Whether a version of a resource that `accept` accepts references `id`: the "do you have
/// this chunk" answer scoped to what one caller may read (never revealing other tenants'
/// chunks). Pages through the chunk's owners newest key first and stops at the first match.
pub fn referenced_by(store: &dyn Store, id: &ChunkId, accept: impl Fn(&str) -> bool) -> Result<bool, StoreError> {
    let prefix = chunk_prefix(id);
    let mut before: Option<Vec<u8>> = None;
    loop {
        let page = store.scan_prefix_rev(&prefix, before.as_deref(), 256)?;
        for (key, _) in &page {
            let resource = key[prefix.len()..]
                .split_first_chunk::<4>()
                .and_then(|(len, rest)| rest.get(..u32::from_be_bytes(*len) as usize))
                .and_then(|r| std::str::from_utf8(r).ok());
            if resource.is_some_and(&accept) {
                return Ok(true);
            }
        }
        match page.last() {
            Some((key, _)) if page.len() == 256 => before = Some(key.clone()),
            _ => return Ok(false),
        }
    }
}

/// One reference of a resource, as [`of_resource`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceRef {
    /// The version.
    pub version: String,
    /// The chunk.
    pub id: ChunkId,
    /// What is recorded.
    pub value: RefValue,
}

/// Every reference of one resource, by version then chunk id.
pub fn of_resource(store: &dyn Store, resource: &str) -> Result<Vec<ResourceRef>, StoreError> {
    let prefix = resource_prefix(resource);
    let corrupt =
        |key: &[u8]| StoreError::Engine(format!("unreadable chunk reference {:?}", key.escape_ascii().to_string()));
    let mut out = Vec::new();
    for (key, value) in store.scan_prefix(&prefix)? {
        let rest = &key[prefix.len()..];
        let parsed = (|| {
            let (len, rest) = rest.split_first_chunk::<4>()?;
            let (version, id) = rest.split_at_checked(u32::from_be_bytes(*len) as usize)?;
            Some(ResourceRef {
                version: String::from_utf8(version.to_vec()).ok()?,
                id: ChunkId(id.try_into().ok()?),
                value: RefValue::decode(&value)?,
            })
        })();
        out.push(parsed.ok_or_else(|| corrupt(&key))?);
    }
    Ok(out)
}

/// Adds, to `batch`, the removal of every reference of a resource (deleting it whole).
pub fn remove_resource(store: &dyn Store, batch: &mut Batch, resource: &str) -> Result<(), StoreError> {
    for r in of_resource(store, resource)? {
        batch.delete(chunk_key(&r.id, Owner { resource, version: &r.version }));
    }
    batch.delete_prefix(resource_prefix(resource));
    Ok(())
}

/// Every resource that holds chunk references (file resources with content), each once, in
/// key order: what a retention pass walks. One scan of the owner side.
pub fn resources(store: &dyn Store) -> Result<Vec<String>, StoreError> {
    let mut out: Vec<String> = Vec::new();
    for (key, _) in store.scan_prefix(&all_owners())? {
        let name = key[1..]
            .split_first_chunk::<4>()
            .and_then(|(len, rest)| rest.get(..u32::from_be_bytes(*len) as usize))
            .and_then(|r| std::str::from_utf8(r).ok());
        let name = name.filter(|n| *n != UPLOADS);
        if let Some(name) = name.filter(|n| out.last().map(String::as_str) != Some(*n)) {
            out.push(name.to_string());
        }
    }
    Ok(out)
}

/// The plaintext bytes a list of references stands for (each use counted).
pub fn logical_bytes<'a>(refs: impl IntoIterator<Item = &'a RefValue>) -> u64 {
    refs.into_iter().map(|v| u64::from(v.uses) * u64::from(v.size.plain)).sum()
}

/// The server's logical bytes: every version's size, summed (one scan of the owner side).
pub fn server_logical_bytes(store: &dyn Store) -> Result<u64, StoreError> {
    let pairs = store.scan_prefix(&all_owners())?;
    Ok(logical_bytes(pairs.iter().filter_map(|(_, v)| RefValue::decode(v)).collect::<Vec<_>>().iter()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{keys, MemoryStore};

    fn size(n: u32) -> ChunkSize {
        ChunkSize { plain: n, stored: n / 2 }
    }

    #[test]
    fn references_are_records_that_batches_add_and_drop() {
        let store = MemoryStore::new();
        let (a, b, c) = (ChunkId::of(b"a"), ChunkId::of(b"b"), ChunkId::of(b"c"));
        let v1 = Owner { resource: "/f", version: "1" };
        let v2 = Owner { resource: "/f", version: "2" };
        let other = Owner { resource: "/f2", version: "1" };
        let mut batch = Batch::new();
        add(&mut batch, v1, &[(a, size(10)), (b, size(20)), (a, size(10))]);
        add(&mut batch, v2, &[(a, size(10)), (c, size(30))]);
        add(&mut batch, other, &[(c, size(30))]);
        store.write(&batch).unwrap();
        assert!(is_referenced(&store, &a).unwrap() && is_referenced(&store, &b).unwrap());
        let listed = of_resource(&store, "/f").unwrap();
        assert_eq!(listed.len(), 4);
        assert_eq!(listed[0].version, "1");
        let uses_of_a: u32 = listed.iter().filter(|r| r.id == a && r.version == "1").map(|r| r.value.uses).sum();
        assert_eq!(uses_of_a, 2);
        assert_eq!(logical_bytes(listed.iter().map(|r| &r.value)), 10 + 20 + 10 + 10 + 30);
        assert_eq!(server_logical_bytes(&store).unwrap(), 80 + 30);

        // Dropping v1 keeps a (v2 uses it) and frees b.
        let mut batch = Batch::new();
        remove(&mut batch, v1, &[a, b, a]);
        store.write(&batch).unwrap();
        assert!(is_referenced(&store, &a).unwrap());
        assert!(!is_referenced(&store, &b).unwrap());
        // The same batch again changes nothing (a retried commit).
        store.write(&batch).unwrap();
        assert_eq!(of_resource(&store, "/f").unwrap().len(), 2);

        // Deleting /f whole leaves /f2's reference to c, and nothing of /f.
        let mut batch = Batch::new();
        remove_resource(&store, &mut batch, "/f").unwrap();
        store.write(&batch).unwrap();
        assert!(!is_referenced(&store, &a).unwrap());
        assert!(is_referenced(&store, &c).unwrap());
        assert!(of_resource(&store, "/f").unwrap().is_empty());
        assert_eq!(of_resource(&store, "/f2").unwrap().len(), 1);
    }

    #[test]
    fn resource_keys_do_not_collide_and_tags_are_not_the_documents() {
        // "/f" with version "2x" vs "/f2" with version "x": length prefixes keep them apart.
        assert!(!version_prefix(Owner { resource: "/f2", version: "x" }).starts_with(&resource_prefix("/f")));
        assert_ne!(
            chunk_key(&ChunkId::of(b""), Owner { resource: "/f", version: "2x" }),
            chunk_key(&ChunkId::of(b""), Owner { resource: "/f2", version: "x" })
        );
        let documents = [
            keys::snapshot("")[0],
            keys::log_prefix("")[0],
            keys::history_prefix("")[0],
            keys::run_index_prefix("")[0],
            keys::checkpoint_prefix("")[0],
            keys::meta("")[0],
            keys::horizon("")[0],
            keys::token("")[0],
            keys::share("")[0],
            keys::pinned_text("")[0],
            keys::format_version()[0],
        ];
        for tag in [BY_CHUNK, BY_OWNER] {
            assert!(!documents.contains(&tag), "{}", tag as char);
        }
    }
}
