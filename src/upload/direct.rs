//! Direct uploads' records: a browser uploads a file's parts straight to the S3 bucket with part
//! URLs the server signs one at a time (Uppy's `@uppy/aws-s3` through a Companion-compatible
//! endpoint), then the server reads the finished object into chunks and commits the version.
//!
//! ```text
//! 'g' ‖ grant id (16)  → Grant (JSON): who may start direct uploads into which folder, until when
//! 'd' ‖ upload name (16) → DirectRecord (JSON): one multipart upload in the bucket (the ledger)
//! ```
//!
//! A *grant* is a capability: Uppy's signer calls carry no `Authorization` header (the plugin
//! cannot add one), so a client with a token first asks for a grant, and the grant's URL is
//! Uppy's `companionEndpoint`. The ledger is what lets the server bound and expire multipart
//! uploads (S3 keeps incomplete ones, and bills for them, until they are aborted) and check that
//! every call names an upload the grant started.

use serde::{Deserialize, Serialize};

const GRANT: u8 = b'g';
const DIRECT: u8 = b'd';

/// Who may start direct uploads, into which folder, until when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The credential that asked for it ("" with access control off).
    pub owner: String,
    /// Who, for the versions' records.
    pub author: Option<String>,
    /// The folder (ending in `/`) its uploads land in.
    pub folder: String,
    /// When it stops working, ms since 1970.
    pub expires_ms: u64,
}

/// One multipart upload in the bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectRecord {
    /// S3's upload id.
    pub upload_id: String,
    /// The grant that started it.
    pub grant: String,
    /// The resource it becomes a version of.
    pub target: String,
    /// The media type the client named.
    pub content_type: Option<String>,
    /// When it is aborted unless completed, ms since 1970.
    pub expires_ms: u64,
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

impl Grant {
    /// The stored form.
    pub fn encode(&self) -> Vec<u8> {
        json(self)
    }

    /// Decodes a stored grant.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

impl DirectRecord {
    /// The stored form.
    pub fn encode(&self) -> Vec<u8> {
        json(self)
    }

    /// Decodes a stored record.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

/// A fresh random name (32 hex digits) for a grant or an upload.
pub fn fresh_name() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Whether `name` is one [`fresh_name`] could have made.
pub fn is_name(name: &str) -> bool {
    name.len() == 32 && name.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn key(tag: u8, name: &str) -> Vec<u8> {
    let mut key = vec![tag];
    key.extend_from_slice(name.as_bytes());
    key
}

/// The key of a grant.
pub fn grant_key(name: &str) -> Vec<u8> {
    key(GRANT, name)
}

/// The key of a direct upload's record.
pub fn direct_key(name: &str) -> Vec<u8> {
    key(DIRECT, name)
}

/// The prefix of every grant (the expiry pass).
pub fn grants_prefix() -> Vec<u8> {
    vec![GRANT]
}

/// The prefix of every direct upload (the expiry pass).
pub fn directs_prefix() -> Vec<u8> {
    vec![DIRECT]
}

/// The name in a grant's or a direct upload's key.
pub fn name_of_key(key: &[u8]) -> Option<&str> {
    std::str::from_utf8(key.get(1..)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_records_round_trip() {
        let name = fresh_name();
        assert!(is_name(&name) && !is_name("../x") && !is_name(&name[1..]));
        assert_eq!(name_of_key(&grant_key(&name)), Some(name.as_str()));
        let grant = Grant { owner: "t".into(), author: None, folder: "/a/".into(), expires_ms: 5 };
        assert_eq!(Grant::decode(&grant.encode()), Some(grant));
        let rec = DirectRecord {
            upload_id: "u".into(),
            grant: name.clone(),
            target: "/a/b".into(),
            content_type: Some("image/png".into()),
            expires_ms: 9,
        };
        assert_eq!(DirectRecord::decode(&rec.encode()), Some(rec));
    }
}
