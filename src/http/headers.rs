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
}

/// The value of a header that may appear at most once.
fn single<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<Option<&'a [u8]>, ApiError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(ApiError::DuplicateHeader(name));
    }
    Ok(first.map(|v| v.as_bytes()))
}

impl BraidHeaders {
    /// Parses every Braid header of a request.
    pub fn parse(headers: &HeaderMap) -> Result<Self, ApiError> {
        let version = single(headers, "version")?.map(VersionSet::parse_header).transpose()?;
        let parents = single(headers, "parents")?.map(VersionSet::parse_header).transpose()?;
        let subscribe = single(headers, "subscribe")?.map(<[u8]>::to_vec);
        let peer = single(headers, "peer")?.map(protocol::parse_peer).transpose()?;
        let heartbeats = match single(headers, "heartbeats")? {
            Some(raw) => Some((protocol::parse_heartbeats(raw)?, String::from_utf8_lossy(raw).into_owned())),
            None => None,
        };
        let merge_type = MergeType::parse(single(headers, "merge-type")?)?;
        let content_range = single(headers, "content-range")?.map(<[u8]>::to_vec);
        let patch_count = protocol::patch_count(single(headers, "patches")?, single(headers, "content-type")?)?;
        let head_override = single(headers, "method-override")?.is_some_and(|v| v.eq_ignore_ascii_case(b"HEAD"));
        let repr_digest = single(headers, "repr-digest")?.and_then(protocol::parse_repr_digest);
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
        })
    }
}
