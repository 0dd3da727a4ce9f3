//! The IETF draft's requests and answers (interop versions 5 to 8): `Upload-Complete`, the
//! offset and length as Structured Fields, `Upload-Limit`, the `mismatching-upload-offset`
//! problem, and creation on the target resource itself (a Braid `PUT` with `Upload-Complete`).
//! No `104 Upload Resumption Supported`: hyper cannot send informational responses, so creation
//! answers `201` + `Location` once the request's bytes are in ("careful creation").

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::hub::{Append, Appended};
use crate::protocol::upload as headers;
use crate::upload::record::UploadRecord;
use crate::upload::UploadId;

use super::super::reply::set;
use super::{header, location, ApiError, AppState, Dialect};

/// `Upload-Complete` (required on creation and appends).
pub(super) fn complete(h: &HeaderMap) -> Result<bool, ApiError> {
    let v = header(h, "upload-complete").ok_or(headers::UploadHeaderError::BadComplete("(missing)".into()))?;
    Ok(headers::upload_complete(v)?)
}

/// An append's headers: `Upload-Offset`, `Upload-Complete`, optionally `Upload-Length`.
/// (`Content-Type: application/partial-upload` is what clients send; it is not required: draft
/// -03 clients send none.)
pub(super) fn append(_version: u8, h: &HeaderMap) -> Result<Append, ApiError> {
    let offset = header(h, "upload-offset")
        .ok_or(headers::UploadHeaderError::BadNumber { header: "Upload-Offset", value: "(missing)".into() })?;
    Ok(Append {
        offset: headers::sf_integer("Upload-Offset", offset)?,
        length: header(h, "upload-length").map(|v| headers::sf_integer("Upload-Length", v)).transpose()?,
        complete: Some(complete(h)?),
        declared: super::super::resource::declared_length(h),
        now_ms: super::super::file::now_ms(),
        ..Append::default()
    })
}

/// The `Upload-Limit` dictionary: the largest upload and how long an idle one lives.
pub(super) fn limits(state: &AppState) -> String {
    format!("max-size={}, max-age={}", state.hub.upload_limit(), state.hub.upload_expiry().as_secs())
}

fn common(state: &AppState, h: &mut HeaderMap, record: &UploadRecord) {
    h.insert("upload-offset", HeaderValue::from(record.offset));
    let done = if record.done.is_some() { "?1" } else { "?0" };
    h.insert("upload-complete", HeaderValue::from_static(done));
    if let Some(length) = record.length {
        h.insert("upload-length", HeaderValue::from(length));
    }
    set(h, "upload-limit", &limits(state));
}

/// Offset retrieval: `204` with the offset, completeness, length and limits; never cached.
pub(super) fn offset(state: &AppState, _version: u8, record: &UploadRecord) -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    common(state, h, record);
    h.insert("cache-control", HeaderValue::from_static("no-store"));
    res
}

/// The answer to a creation or an append: `201` + `Location` for a creation that is not
/// complete, `204` for an append that is not; once complete, the target's own answer to a
/// file write (`200`, its `Version`), with `Upload-Complete: ?1`.
pub(super) fn appended(state: &AppState, _version: u8, id: &UploadId, done: &Appended, creation: bool) -> Response {
    let mut res = match (&done.version, creation) {
        (Some(outcome), _) => super::super::file::written(outcome),
        (None, true) => StatusCode::CREATED.into_response(),
        (None, false) => StatusCode::NO_CONTENT.into_response(),
    };
    let h = res.headers_mut();
    if creation {
        set(h, "location", &location(id));
    }
    common(state, h, &done.record);
    res
}

/// `409` with the `mismatching-upload-offset` problem and the right `Upload-Offset`.
pub(super) fn mismatch(_version: u8, sent: u64, held: u64) -> Response {
    let body = serde_json::json!({
        "type": "https://iana.org/assignments/http-problem-types#mismatching-upload-offset",
        "title": "offset from request does not match offset of resource",
        "expected-offset": held,
        "provided-offset": sent,
        "error": "upload_offset",
    });
    let mut res = (StatusCode::CONFLICT, body.to_string()).into_response();
    let h = res.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/problem+json"));
    h.insert("upload-offset", HeaderValue::from(held));
    h.insert("upload-complete", HeaderValue::from_static("?0"));
    h.insert("plait-error", HeaderValue::from_static("upload_offset"));
    res
}

/// Whether a write to a resource path is the draft's upload creation (it carries
/// `Upload-Complete` or an interop version).
pub(crate) fn is_creation(h: &HeaderMap) -> bool {
    h.contains_key("upload-complete") || h.contains_key("upload-draft-interop-version")
}

/// A `PUT`/`POST` to `path` with `Upload-Complete`: an upload of that resource. With `?1` and
/// every byte arriving, the answer is the file write's own; cut short, the client resumes at the
/// `Location` it was given... once it has one: without `104`, a client learns the upload's URL
/// only from a completed creation request, so a cut `?1` request is retried whole.
pub(crate) async fn at_target(state: &AppState, path: &str, req: Request) -> Response {
    match super::dialect(req.headers()) {
        Ok(d @ Dialect::Ietf(_)) => super::answer(Some(d), super::create(state, d, Some(path), req).await),
        Ok(Dialect::Tus) => {
            let e = headers::UploadHeaderError::BadComplete("(a tus request to a resource path)".into());
            super::answer(Some(Dialect::Tus), Err(e.into()))
        }
        Err(e) => super::answer(None, Err(e)),
    }
}
