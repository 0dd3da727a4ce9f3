//! The durable record of one upload and its keys:
//!
//! ```text
//! 'u' ‖ upload id (16)                → UploadRecord (JSON: small, rewritten at each checkpoint)
//! 'x' ‖ upload id (16) ‖ u32 BE index → PartRef (chunk id 32 ‖ u64 BE length): the chunk list
//! ```
//!
//! The chunk list is append-only (one key per chunk, written in the checkpoint that stored the
//! chunk), so a checkpoint of a 1 GiB upload writes its new chunks, not the whole list. The
//! tags are lowercase and unused by every other record (`store::keys` are uppercase; `k`/`o`
//! are chunk references, `q`/`y`/`e`/`w`/`v` the change log).

use serde::{Deserialize, Serialize};

use crate::store::{prefix_end, Batch};

const RECORD: u8 = b'u';
const PART: u8 = b'x';

/// An upload's id: 16 random bytes, 32 hex digits in its URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UploadId(pub [u8; 16]);

impl UploadId {
    /// A fresh random id.
    pub fn random() -> Self {
        UploadId(rand::random())
    }

    /// Parses exactly 32 hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        let mut id = [0u8; 16];
        (text.len() == 32).then_some(())?;
        hex::decode_to_slice(text, &mut id).ok()?;
        Some(UploadId(id))
    }
}

impl std::fmt::Display for UploadId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// One chunk of an upload: its id and plaintext length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartRef {
    /// BLAKE3 id of the chunk.
    pub id: [u8; 32],
    /// Its length in bytes.
    pub len: u64,
}

impl PartRef {
    fn encode(&self) -> Vec<u8> {
        let mut out = self.id.to_vec();
        out.extend_from_slice(&self.len.to_be_bytes());
        out
    }

    /// Decodes a stored part (None: not 40 bytes).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let (id, len) = bytes.split_first_chunk::<32>()?;
        Some(PartRef { id: *id, len: u64::from_be_bytes(len.try_into().ok()?) })
    }
}

/// How an upload ended, once it has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// The version it became (None for a partial upload: it becomes part of a final one).
    pub version: Option<String>,
}

/// What is known of an upload between requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    /// The resource it becomes a version of (None for a partial upload).
    pub target: Option<String>,
    /// The media type of the version (None: sniffed from the bytes, as for a PUT).
    pub content_type: Option<String>,
    /// The declared length (None: deferred, not yet known).
    pub length: Option<u64>,
    /// Bytes kept: the parts' lengths plus the tail's.
    pub offset: u64,
    /// How many parts the chunk list holds.
    pub parts: u32,
    /// The last bytes, not yet cut into a chunk of the content (stored as a chunk of its own).
    pub tail: Option<(String, u64)>,
    /// The credential that created it ("" when access control is off): only it may continue.
    pub owner: String,
    /// Who wrote it, for the version's record.
    pub author: Option<String>,
    /// A part of a later final upload (tus concatenation).
    pub partial: bool,
    /// The SHA-256 the content must have (from a `Repr-Digest` or a final checksum), hex.
    pub expect_sha256: Option<String>,
    /// Creation time, ms since 1970.
    pub created_ms: u64,
    /// When it expires unless continued, ms since 1970.
    pub expires_ms: u64,
    /// Set once it completed.
    pub done: Option<Done>,
}

impl UploadRecord {
    /// The record's stored form.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes a stored record.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }

    /// The tail chunk's id, decoded.
    pub fn tail_id(&self) -> Option<([u8; 32], u64)> {
        let (hex_id, len) = self.tail.as_ref()?;
        let mut id = [0u8; 32];
        hex::decode_to_slice(hex_id, &mut id).ok()?;
        Some((id, *len))
    }
}

/// The key of an upload's record.
pub fn record_key(id: &UploadId) -> Vec<u8> {
    let mut key = vec![RECORD];
    key.extend_from_slice(&id.0);
    key
}

/// The prefix of every upload record (the expiry sweep scans it).
pub fn records_prefix() -> Vec<u8> {
    vec![RECORD]
}

/// The upload id of a record key.
pub fn id_of_record_key(key: &[u8]) -> Option<UploadId> {
    let rest = key.strip_prefix(&[RECORD])?;
    Some(UploadId(rest.try_into().ok()?))
}

/// The prefix of an upload's chunk list.
pub fn parts_prefix(id: &UploadId) -> Vec<u8> {
    let mut key = vec![PART];
    key.extend_from_slice(&id.0);
    key
}

fn part_key(id: &UploadId, index: u32) -> Vec<u8> {
    let mut key = parts_prefix(id);
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// Adds, to `batch`, the parts `new` appended after the first `from` of the list.
pub fn append_parts(batch: &mut Batch, id: &UploadId, from: u32, new: &[PartRef]) {
    for (i, part) in new.iter().enumerate() {
        batch.put(part_key(id, from + i as u32), part.encode());
    }
}

/// Adds, to `batch`, the removal of an upload's whole chunk list.
pub fn drop_parts(batch: &mut Batch, id: &UploadId) {
    let prefix = parts_prefix(id);
    if prefix_end(&prefix).is_some() {
        batch.delete_prefix(prefix);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_hex_digits() {
        let id = UploadId::random();
        assert_eq!(UploadId::parse(&id.to_string()), Some(id));
        assert_eq!(UploadId::parse(&id.to_string()[1..]), None);
        assert_eq!(UploadId::parse("zz"), None);
        assert_eq!(UploadId::parse(&format!("{id}0")), None);
        assert_eq!(id_of_record_key(&record_key(&id)), Some(id));
    }

    #[test]
    fn records_and_parts_round_trip() {
        let record = UploadRecord {
            target: Some("/a/b.bin".into()),
            content_type: None,
            length: Some(10),
            offset: 4,
            parts: 1,
            tail: Some((hex::encode([3u8; 32]), 1)),
            owner: String::new(),
            author: None,
            partial: false,
            expect_sha256: None,
            created_ms: 1,
            expires_ms: 2,
            done: None,
        };
        assert_eq!(UploadRecord::decode(&record.encode()), Some(record.clone()));
        assert_eq!(record.tail_id(), Some(([3u8; 32], 1)));
        let part = PartRef { id: [9; 32], len: 1 << 40 };
        assert_eq!(PartRef::decode(&part.encode()), Some(part));
        assert_eq!(PartRef::decode(&[0; 39]), None);
    }
}
