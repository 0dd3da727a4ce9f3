//! Reading Braid request headers into typed values, once, at the edge.

use axum::http::HeaderMap;

use crate::protocol::{self, MergeType, VersionSet};

use super::ApiError;

/// The Braid headers of one request, parsed.
#[derive(Debug)]
pub struct BraidHeaders {
    /// `Version`.
    pub version: Option<VersionSet>,
    /// `Parents` (absent differs from empty: empty is the root).
    pub parents: Option<VersionSet>,
    /// `Subscribe`, raw: any value, even empty, means subscribe.
    pub subscribe: Option<Vec<u8>>,
    /// `Peer`, unquoted.
    pub peer: Option<String>,
    /// `Heartbeats`: seconds, and the raw value to echo.
    pub heartbeats: Option<(f64, String)>,
    /// `Merge-Type` (default simpleton).
    pub merge_type: MergeType,
    /// `Content-Range`, raw.
    pub content_range: Option<Vec<u8>>,
    /// From `Patches` or `Content-Type: application/http-patches; count=N`.
    pub patch_count: Option<usize>,
    /// `Method-Override: HEAD`.
    pub head_override: bool,
    /// The SHA-256 in `Repr-Digest` (RFC 9530); other algorithms are ignored, as the RFC allows.
    pub repr_digest: Option<[u8; 32]>,
    /// `Merge-Type: aww`: braid-blob's, a file resource (`merge_type` is then the default).
    pub aww: bool,
}

/// The Braid-relevant headers of a request, raw, each at most once.
#[derive(Default)]
struct Raw<'a> {
    version: Option<&'a [u8]>,
    parents: Option<&'a [u8]>,
    subscribe: Option<&'a [u8]>,
    peer: Option<&'a [u8]>,
    heartbeats: Option<&'a [u8]>,
    merge_type: Option<&'a [u8]>,
    content_range: Option<&'a [u8]>,
    patches: Option<&'a [u8]>,
    content_type: Option<&'a [u8]>,
    method_override: Option<&'a [u8]>,
    repr_digest: Option<&'a [u8]>,
}

impl<'a> Raw<'a> {
    /// One pass over the request's headers (a handful, usually): cheaper than eleven hashed
    /// lookups, which cost a small GET a tenth of its time. A header that may appear only
    /// once and appears twice is an error.
    fn collect(headers: &'a HeaderMap) -> Result<Self, ApiError> {
        let mut raw = Raw::default();
        for (name, value) in headers {
            let (slot, label) = match name.as_str() {
                "version" => (&mut raw.version, "version"),
                "parents" => (&mut raw.parents, "parents"),
                "subscribe" => (&mut raw.subscribe, "subscribe"),
                "peer" => (&mut raw.peer, "peer"),
                "heartbeats" => (&mut raw.heartbeats, "heartbeats"),
                "merge-type" => (&mut raw.merge_type, "merge-type"),
                "content-range" => (&mut raw.content_range, "content-range"),
                "patches" => (&mut raw.patches, "patches"),
                "content-type" => (&mut raw.content_type, "content-type"),
                "method-override" => (&mut raw.method_override, "method-override"),
                "repr-digest" => (&mut raw.repr_digest, "repr-digest"),
                _ => continue,
            };
            if slot.replace(value.as_bytes()).is_some() {
                return Err(ApiError::DuplicateHeader(label));
            }
        }
        Ok(raw)
    }
}

impl BraidHeaders {
    /// Parses every Braid header of a request.
    pub fn parse(headers: &HeaderMap) -> Result<Self, ApiError> {
        let raw = Raw::collect(headers)?;
        let version = raw.version.map(VersionSet::parse_header).transpose()?;
        let parents = raw.parents.map(VersionSet::parse_header).transpose()?;
        let subscribe = raw.subscribe.map(<[u8]>::to_vec);
        let peer = raw.peer.map(protocol::parse_peer).transpose()?;
        let heartbeats = match raw.heartbeats {
            Some(raw) => Some((protocol::parse_heartbeats(raw)?, String::from_utf8_lossy(raw).into_owned())),
            None => None,
        };
        // braid-blob's merge type names a file resource (see `protocol::kind`); text's parser
        // does not know it, and text requests never send it.
        let aww = raw.merge_type.is_some_and(|m| m.trim_ascii() == b"aww");
        let merge_type = if aww { MergeType::Simpleton } else { MergeType::parse(raw.merge_type)? };
        let content_range = raw.content_range.map(<[u8]>::to_vec);
        let patch_count = protocol::patch_count(raw.patches, raw.content_type)?;
        let head_override = raw.method_override.is_some_and(|v| v.eq_ignore_ascii_case(b"HEAD"));
        let repr_digest = raw.repr_digest.and_then(protocol::parse_repr_digest);
        Ok(BraidHeaders {
            version,
            parents,
            subscribe,
            peer,
            heartbeats,
            merge_type,
            content_range,
            patch_count,
            head_override,
            repr_digest,
            aww,
        })
    }
}
