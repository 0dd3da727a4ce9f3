//! tus 1.0.0 requests and answers: discovery, creation (with upload, deferred length,
//! concatenation), offset, append with checksum, and the headers each answer carries.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::hub::{Append, Appended};
use crate::protocol::upload::{self as headers, ChecksumAlgorithm};
use crate::upload::record::UploadRecord;
use crate::upload::{UploadError, UploadId};

use super::super::reply::set;
use super::{header, location, ApiError, AppState};

/// The extensions offered.
const EXTENSIONS: &str =
    "creation,creation-with-upload,creation-defer-length,expiration,checksum,termination,concatenation";

/// `OPTIONS`: what this server speaks (tus discovery, and the draft's `Upload-Limit`).
pub(super) fn options(state: &AppState) -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    set(h, "tus-resumable", headers::TUS_VERSION);
    set(h, "tus-version", headers::TUS_VERSION);
    set(h, "tus-extension", EXTENSIONS);
    set(h, "tus-max-size", &state.hub.upload_limit().to_string());
    set(h, "tus-checksum-algorithm", "sha1,sha256");
    set(h, "upload-limit", &super::ietf::limits(state));
    res
}

/// `Upload-Length`, or None with `Upload-Defer-Length: 1`; one of them is required, except
/// for a final concatenation (its length is its parts').
pub(super) fn declared_length(h: &HeaderMap, concat: bool) -> Result<Option<u64>, ApiError> {
    if let Some(v) = header(h, "upload-length") {
        return Ok(Some(headers::tus_number("Upload-Length", v)?));
    }
    if let Some(v) = header(h, "upload-defer-length") {
        headers::defer_length(v)?;
        return Ok(None);
    }
    if concat {
        return Ok(None);
    }
    Err(headers::UploadHeaderError::BadNumber { header: "Upload-Length", value: "(missing)".into() }.into())
}

/// Whether a creation request carries bytes (creation-with-upload): they must then be typed
/// `application/offset+octet-stream`.
pub(super) fn carries_bytes(h: &HeaderMap) -> Result<bool, ApiError> {
    let declared = super::super::resource::declared_length(h);
    let carries = declared.map_or(h.contains_key("transfer-encoding"), |n| n > 0);
    if carries && header(h, "content-type") != Some("application/offset+octet-stream") {
        return Err(
            crate::hub::HubError::Upload(UploadError::WrongContentType("application/offset+octet-stream")).into()
        );
    }
    Ok(carries)
}

/// `Upload-Checksum`.
pub(super) fn checksum(h: &HeaderMap) -> Result<Option<(ChecksumAlgorithm, Vec<u8>)>, ApiError> {
    Ok(header(h, "upload-checksum").map(headers::checksum).transpose()?)
}

/// An append's headers: `Content-Type: application/offset+octet-stream` (else 415),
/// `Upload-Offset`, and optionally `Upload-Length` (deferred) and `Upload-Checksum`.
pub(super) fn append(h: &HeaderMap) -> Result<Append, ApiError> {
    if header(h, "content-type").map(|t| t.split(';').next().unwrap_or("").trim())
        != Some("application/offset+octet-stream")
    {
        return Err(
            crate::hub::HubError::Upload(UploadError::WrongContentType("application/offset+octet-stream")).into()
        );
    }
    let offset = header(h, "upload-offset")
        .ok_or(headers::UploadHeaderError::BadNumber { header: "Upload-Offset", value: "(missing)".into() })?;
    Ok(Append {
        offset: headers::tus_number("Upload-Offset", offset)?,
        length: header(h, "upload-length").map(|v| headers::tus_number("Upload-Length", v)).transpose()?,
        checksum: checksum(h)?,
        declared: super::super::resource::declared_length(h),
        now_ms: super::super::file::now_ms(),
        ..Append::default()
    })
}

fn expires(h: &mut HeaderMap, record: &UploadRecord) {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(record.expires_ms);
    set(h, "upload-expires", &httpdate::fmt_http_date(at));
}

/// `201 Created` + `Location` (+ `Upload-Offset` when bytes came with it).
pub(super) fn created(id: &UploadId, record: &UploadRecord, with_offset: bool) -> Response {
    let mut res = StatusCode::CREATED.into_response();
    let h = res.headers_mut();
    set(h, "location", &location(id));
    if with_offset {
        h.insert("upload-offset", HeaderValue::from(record.offset));
    }
    if record.done.is_none() {
        expires(h, record);
    }
    res
}

/// `HEAD`: the offset, the length (or that it is deferred), the expiry; never cached.
pub(super) fn offset(record: &UploadRecord) -> Response {
    let mut res = StatusCode::OK.into_response();
    let h = res.headers_mut();
    h.insert("upload-offset", HeaderValue::from(record.offset));
    match record.length {
        Some(length) => h.insert("upload-length", HeaderValue::from(length)),
        None => h.insert("upload-defer-length", HeaderValue::from_static("1")),
    };
    if record.partial {
        h.insert("upload-concat", HeaderValue::from_static("partial"));
    }
    if record.done.is_none() {
        expires(h, record);
    }
    h.insert("cache-control", HeaderValue::from_static("no-store"));
    res
}

/// `204` + the new offset.
pub(super) fn appended(done: &Appended) -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    h.insert("upload-offset", HeaderValue::from(done.record.offset));
    if done.record.done.is_none() {
        expires(h, &done.record);
    }
    if let Some(outcome) = &done.version {
        let written = super::super::file::written(outcome);
        for name in ["version", "current-version", "merge-type"] {
            if let Some(v) = written.headers().get(name) {
                h.insert(name, v.clone());
            }
        }
    }
    res
}
