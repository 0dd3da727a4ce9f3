//! How a file version is stored: one JSON record per version (its parents, content metadata and
//! chunk list), and [`ChunkRef`], a chunk's id and length as a version refers to it.
//!
//! JSON because a record is small next to the bytes it describes (a 256 MiB file at the default
//! 1 MiB average chunk is ~256 references, ~25 KB) and readable with any tool when an operator
//! has to look at a store; chunk ids are lowercase hex, as BLAKE3 prints them.

use super::doc::FileVersion;
use super::FileError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One chunk of a version's bytes, in order: its content id (BLAKE3 of the plaintext) and length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChunkRef {
    #[serde(serialize_with = "to_hex", deserialize_with = "from_hex")]
    pub id: [u8; 32],
    pub len: u64,
}

/// Serializes a 32-byte id or hash as 64 lowercase hex digits.
pub(super) fn to_hex<S: Serializer>(id: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(id))
}

/// The inverse of [`to_hex`]; only lowercase, as it writes.
pub(super) fn from_hex<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
    let s = String::deserialize(d)?;
    let mut out = [0u8; 32];
    let lowercase = !s.bytes().any(|b| b.is_ascii_uppercase());
    match lowercase && hex::decode_to_slice(&s, &mut out).is_ok() {
        true => Ok(out),
        false => Err(serde::de::Error::custom("a chunk id or sha-256 is 64 lowercase hex digits")),
    }
}

impl FileVersion {
    /// The stored form of this version.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain data (strings, numbers, arrays) into memory cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A version from its stored form.
    pub fn decode(bytes: &[u8]) -> Result<FileVersion, FileError> {
        serde_json::from_slice(bytes).map_err(|e| FileError::CorruptRecord(e.to_string()))
    }
}
