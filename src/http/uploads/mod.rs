//! Resumable uploads over HTTP: tus 1.0.0 and the IETF "Resumable Uploads for HTTP" draft on
//! the same upload resources, `/.plait/uploads/<id>` (docs/UPLOADS.md).
//!
//! Each request is read in its dialect ([`Dialect`]: tus when it carries `Tus-Resumable`, the
//! draft when it carries `Upload-Draft-Interop-Version` or `Upload-Complete`), turned into one
//! hub call (`Hub::create_upload`, `append_upload`, `upload_offset`, `cancel_upload`,
//! `concat_uploads`), and answered in the same dialect (`tus`, `ietf`). A Braid `PUT`/`POST` to a
//! resource path with `Upload-Complete` creates an upload for that path (`at_target`).
//!
//! Access: creating needs write access to the target; every later request must come from the
//! credential that created the upload (others get 404, as if it did not exist) and still have
//! write access to the target, so a revoked token stops at its next append.

mod ietf;
pub(super) mod target;
mod tus;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::Stream;

use crate::auth::{Action, Grant};
use crate::hub::{Append, Appended, HubError, NewUpload};
use crate::protocol::upload as headers;
use crate::upload::record::UploadRecord;
use crate::upload::{UploadError, UploadId};

use super::{ApiError, AppState};

pub(super) use ietf::{at_target, is_creation};

/// The path upload resources live under.
pub const UPLOADS: &str = "/.plait/uploads/";

/// Which protocol a request speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    Tus,
    /// The IETF draft, at this interop version.
    Ietf(u8),
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The request's dialect: the draft's interop version, else `Tus-Resumable` (which must be
/// 1.0.0), else the newest draft when it carries `Upload-Complete`; a request with none of
/// them is a tus request without its version (412).
fn dialect(h: &HeaderMap) -> Result<Dialect, ApiError> {
    if let Some(v) = header(h, "upload-draft-interop-version") {
        return Ok(Dialect::Ietf(headers::interop_version(v)?));
    }
    if let Some(v) = header(h, "tus-resumable") {
        headers::tus_version(v)?;
        return Ok(Dialect::Tus);
    }
    if h.contains_key("upload-complete") {
        return Ok(Dialect::Ietf(*headers::INTEROP_VERSIONS.end() as u8));
    }
    Err(headers::UploadHeaderError::UnsupportedVersion(String::new()).into())
}

/// Who is asking: their grant (None with access control off).
struct Caller(Option<Grant>);

impl Caller {
    fn of(req: &Request) -> Self {
        Caller(super::access::grant_of(req))
    }

    fn owner(&self) -> String {
        self.0.as_ref().map(|g| g.id().to_string()).unwrap_or_default()
    }

    fn author(&self) -> Option<String> {
        super::file::author(self.0.as_ref(), None)
    }

    fn may_write(&self, path: &str) -> Result<(), ApiError> {
        match &self.0 {
            Some(grant) if !grant.allows(Action::Write, path) => {
                Err(super::access::forbidden(Action::Write, path).into())
            }
            _ => Ok(()),
        }
    }

    /// Whether the caller may continue `record`: its creator, still allowed to write the
    /// target. Another credential is told the upload does not exist.
    fn may_continue(&self, id: &UploadId, record: &UploadRecord) -> Result<(), ApiError> {
        if record.owner != self.owner() {
            return Err(HubError::Upload(UploadError::NotFound(id.to_string())).into());
        }
        match &record.target {
            Some(target) => self.may_write(target),
            None => Ok(()),
        }
    }
}

/// The body as the stream of frames the hub reads, each frame within the body timeout.
fn frames(body: Body, state: &AppState) -> impl Stream<Item = Result<Bytes, ApiError>> + Unpin {
    let timeout = state.settings.body_timeout;
    let hub = state.hub.clone();
    Box::pin(futures_util::stream::unfold(Some(body), move |body| {
        let hub = hub.clone();
        async move {
            let mut body = body?;
            match super::file::next_frame(&mut body, timeout).await {
                Ok(Some(bytes)) => {
                    hub.count_body_bytes(bytes.len());
                    Some((Ok(bytes), Some(body)))
                }
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        }
    }))
}

/// Runs an append in a task of its own, so that it ends the same way however the request
/// ends: when the client's connection fails, hyper drops the request's future, and an append
/// running inside it would stop wherever it was, without the checkpoint that keeps the bytes
/// received since the last one. In its own task the append sees its body fail and checkpoints.
async fn append_detached(state: &AppState, id: UploadId, append: Append, body: Body) -> Result<Appended, HubError> {
    let hub = state.hub.clone();
    let frames = frames(body, state);
    let task = tokio::spawn(async move { hub.append_upload(&id, append, frames).await });
    task.await.unwrap_or(Err(HubError::Unavailable))
}

/// The upload an URL (or a path) names: the 32 hex digits after the last `/.plait/uploads/`.
fn id_in_url(url: &str) -> Option<UploadId> {
    let at = url.rfind(UPLOADS)?;
    UploadId::parse(url[at + UPLOADS.len()..].trim_end_matches('/'))
}

fn location(id: &UploadId) -> String {
    format!("{UPLOADS}{id}")
}

/// `/.plait/uploads` and `/.plait/uploads/`: discovery (`OPTIONS`) and creation (`POST`).
pub async fn collection(State(state): State<AppState>, req: Request) -> Response {
    if req.method() == Method::OPTIONS {
        return tus::options(&state);
    }
    let dialect = match dialect(req.headers()) {
        Ok(d) => d,
        Err(e) => return answer(None, Err(e)),
    };
    let result = match req.method().clone() {
        Method::POST => create(&state, dialect, None, req).await,
        m => Err(ApiError::MethodNotAllowed(m.to_string())),
    };
    answer(Some(dialect), result)
}

/// `/.plait/uploads/<id>`: the offset (`HEAD`, `GET` in the newest draft), appends (`PATCH`)
/// and cancellation (`DELETE`).
pub async fn one(State(state): State<AppState>, Path(raw): Path<String>, req: Request) -> Response {
    if req.method() == Method::OPTIONS {
        return tus::options(&state);
    }
    let dialect = match dialect(req.headers()) {
        Ok(d) => d,
        Err(e) => return answer(None, Err(e)),
    };
    let result = match UploadId::parse(&raw) {
        None => Err(HubError::Upload(UploadError::NotFound(raw.chars().take(40).collect())).into()),
        Some(id) => on_upload(&state, dialect, id, req).await,
    };
    answer(Some(dialect), result)
}

async fn on_upload(state: &AppState, dialect: Dialect, id: UploadId, req: Request) -> Result<Response, ApiError> {
    let caller = Caller::of(&req);
    let record = state.hub.upload(&id).await?;
    caller.may_continue(&id, &record)?;
    match req.method().clone() {
        Method::HEAD | Method::GET => {
            let record = state.hub.upload_offset(&id).await?;
            Ok(match dialect {
                Dialect::Tus => tus::offset(&record),
                Dialect::Ietf(v) => ietf::offset(state, v, &record),
            })
        }
        Method::PATCH => {
            let (parts, body) = req.into_parts();
            let append = match dialect {
                Dialect::Tus => tus::append(&parts.headers)?,
                Dialect::Ietf(v) => ietf::append(v, &parts.headers)?,
            };
            if let (Dialect::Ietf(v), Some(done)) = (dialect, replay(&record, &append)) {
                return Ok(ietf::appended(state, v, &id, &done, false));
            }
            let appended = append_detached(state, id, append, body).await;
            match (dialect, appended) {
                (Dialect::Tus, r) => Ok(tus::appended(&r?)),
                (Dialect::Ietf(v), Err(HubError::Upload(UploadError::OffsetMismatch { sent, held }))) => {
                    Ok(ietf::mismatch(v, sent, held))
                }
                (Dialect::Ietf(v), r) => Ok(ietf::appended(state, v, &id, &r?, false)),
            }
        }
        Method::DELETE => {
            state.hub.cancel_upload(&id).await?;
            Ok(axum::http::StatusCode::NO_CONTENT.into_response())
        }
        m => Err(ApiError::MethodNotAllowed(m.to_string())),
    }
}

/// An empty `Upload-Complete: ?1` append at the end of an upload already complete: the draft
/// lets a server replay the final answer (tus-js-client sends it when a `HEAD` lacked the length).
fn replay(record: &UploadRecord, append: &Append) -> Option<Appended> {
    let done = record.done.is_some() && append.complete == Some(true) && append.offset == record.offset;
    done.then(|| Appended { record: record.clone(), version: None })
}

/// Creation (tus `POST`, the draft's upload creation): the upload, then the request's own
/// bytes when it carries some; `at` is the target when the request went to the resource itself.
async fn create(state: &AppState, dialect: Dialect, at: Option<&str>, req: Request) -> Result<Response, ApiError> {
    let caller = Caller::of(&req);
    let (parts, body) = req.into_parts();
    let h = &parts.headers;
    let meta = header(h, "upload-metadata").map(headers::metadata).transpose()?.unwrap_or_default();
    let concat = header(h, "upload-concat").map(headers::concat).transpose()?;
    let described = target::describe(&meta, at, header(h, "content-type"), dialect)?;
    let length = match dialect {
        Dialect::Tus => tus::declared_length(h, concat.is_some())?,
        Dialect::Ietf(_) => header(h, "upload-length").map(|v| headers::sf_integer("Upload-Length", v)).transpose()?,
    };
    let expect_sha256 = match h.get("repr-digest") {
        Some(v) => Some(crate::protocol::digest::parse_repr_digest(v.as_bytes()).ok_or_else(|| {
            ApiError::Hub(HubError::Upload(UploadError::BadTarget("Repr-Digest must be sha-256=:<base64>:".into())))
        })?),
        None => None,
    };
    let now_ms = super::file::now_ms();
    let new = NewUpload {
        target: described.target.clone(),
        content_type: described.content_type,
        length,
        owner: caller.owner(),
        author: caller.author(),
        partial: matches!(concat, Some(headers::Concat::Partial)),
        expect_sha256,
    };
    if let Some(target) = &new.target {
        caller.may_write(target)?;
    } else if !new.partial {
        return Err(HubError::Upload(UploadError::BadTarget(
            "name the target with `path`, or `folder` and `filename`".into(),
        ))
        .into());
    }
    if let Some(headers::Concat::Final(urls)) = &concat {
        let ids = urls
            .iter()
            .map(|u| id_in_url(u).ok_or_else(|| UploadError::BadConcat(format!("{u:?} is not an upload URL"))))
            .collect::<Result<Vec<_>, _>>()
            .map_err(HubError::Upload)?;
        let (id, done) = state.hub.concat_uploads(new, &ids, now_ms).await?;
        return Ok(tus::created(&id, &done.record, true));
    }
    let (id, record) = state.hub.create_upload(new, now_ms).await?;
    match dialect {
        Dialect::Tus => {
            let carries = tus::carries_bytes(h)?;
            if !carries && record.length != Some(0) {
                return Ok(tus::created(&id, &record, false));
            }
            let declared = super::resource::declared_length(h);
            let append = Append { checksum: tus::checksum(h)?, declared, now_ms, ..Append::default() };
            let done = append_detached(state, id, append, body).await?;
            Ok(tus::created(&id, &done.record, true))
        }
        Dialect::Ietf(v) => {
            let complete = ietf::complete(h)?;
            // A zero-length upload is complete at creation (tus-js-client never sends `?1` for it).
            let complete = if record.length == Some(0) { Some(true) } else { Some(complete) };
            let declared = super::resource::declared_length(h);
            let append = Append { complete, declared, now_ms, ..Append::default() };
            let done = match append_detached(state, id, append, body).await {
                Ok(done) => done,
                Err(e) => return Err(e.into()),
            };
            Ok(ietf::appended(state, v, &id, &done, true))
        }
    }
}

/// Adds the dialect's headers to every answer (tus: `Tus-Resumable`, and `Tus-Version` on 412;
/// the draft: its interop version), errors included.
fn answer(dialect: Option<Dialect>, result: Result<Response, ApiError>) -> Response {
    let mut res = result.unwrap_or_else(IntoResponse::into_response);
    let h = res.headers_mut();
    match dialect {
        Some(Dialect::Ietf(v)) => super::reply::set(h, "upload-draft-interop-version", &v.to_string()),
        _ => {
            super::reply::set(h, "tus-resumable", headers::TUS_VERSION);
            super::reply::set(h, "tus-version", headers::TUS_VERSION);
        }
    }
    res
}
