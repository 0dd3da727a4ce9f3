//! `ApiError`: every failure a request can meet, and the ONE place that maps failures to
//! HTTP responses.
//!
//! Each error variant maps to a stable [`ErrorCode`] (`ApiError::code`: one exhaustive match
//! per error type, no catch-all arm); the response's status, reason phrase, `Retry-After`,
//! challenge and message come from that code's row in [`super::codes`]. The body is JSON
//! `{"error": "<code>", "message": "..."}` and the code is repeated in a `Plait-Error`
//! header. Server faults are logged here, once, and the client gets the row's generic
//! message.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::ext::ReasonPhrase;

use crate::auth::AuthError;
use crate::chunks::ChunkError;
use crate::document::DocError;
use crate::file::FileError;
use crate::hub::HubError;
use crate::protocol::error::show;
use crate::protocol::{ProtocolError, VersionSet};
use crate::text::TextError;

use super::codes::{ErrorCode, Fault, RetryAfter};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A header or body did not parse.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// A header appeared more than once where only one is allowed.
    #[error("the {0} header may appear only once")]
    DuplicateHeader(&'static str),
    /// `Version` and `Subscribe` together (braid-http-04 §2.5).
    #[error("Version is not allowed with Subscribe; use Parents to resume")]
    VersionWithSubscribe,
    /// A write named more than one event in `Version`.
    #[error("a write's Version must name exactly one event (its last), got {0}")]
    MultipleVersionIds(String),
    /// The request body exceeded the configured limit.
    #[error("request body exceeds the limit of {limit} bytes")]
    BodyTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A `Version` or `Parents` header names more event ids than allowed.
    #[error("the {header} header names {count} event ids; at most {limit} are allowed")]
    TooManyIds {
        /// Which header.
        header: &'static str,
        /// How many ids it named.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// An update carries more patches than allowed.
    #[error("the update carries {count} patches; at most {limit} are allowed")]
    TooManyPatches {
        /// How many patches it carried.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// The request body did not arrive in time.
    #[error("the request body did not arrive within {secs} s")]
    BodyTimeout {
        /// The timeout, in seconds.
        secs: u64,
    },
    /// The request body could not be read.
    #[error("could not read the request body: {0}")]
    BadBody(String),
    /// The method is not supported on this path.
    /// (The method is quoted truncated: hyper accepts methods of any length, and a 10 KB
    /// one must not come back as a 10 KB message.)
    #[error("method {} is not supported here", show(.0.as_bytes()))]
    MethodNotAllowed(String),
    /// A `Transfer-Encoding` other than one `chunked`: hyper removes only that coding, so
    /// anything else would be taken as the body itself.
    #[error("unsupported Transfer-Encoding {}: only a single \"chunked\" is accepted", show(.0.as_bytes()))]
    BadTransferEncoding(String),
    /// A missing, repeated or malformed `Host`, or a malformed target authority (see `host`).
    #[error("bad host: {0}")]
    BadHost(String),
    /// A request path that cannot name a document (see `resource::check_path`).
    #[error("bad path: {0}")]
    BadPath(&'static str),
    /// A request path longer than any document path may be.
    #[error("the path is {len} bytes long; at most {limit} are allowed")]
    PathTooLong {
        /// The path's length, in bytes as sent.
        len: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// A JSON request body that does not parse or has the wrong shape.
    #[error("bad JSON body: {0}")]
    BadJson(String),
    /// A query string parameter that does not parse.
    #[error("bad query: {0}")]
    BadQuery(String),
    /// A change-log cursor that does not parse (or a long poll without one).
    #[error("{0}")]
    BadCursor(String),
    /// A folder path that cannot name a folder (an empty segment).
    #[error("bad folder path: {0}")]
    BadFolder(&'static str),
    /// A `Range` that no byte of the file satisfies (416 with `Content-Range: bytes */len`).
    #[error("no range of {range:?} starts inside the {len} bytes of this file")]
    RangeNotSatisfiable {
        /// The `Range` header, as sent (truncated).
        range: String,
        /// The file's length.
        len: u64,
    },
    /// The served version of the file is a delete.
    #[error("{path} was deleted (version {version}); its history stays readable with Version")]
    FileDeleted {
        /// The resource.
        path: String,
        /// The tombstone's version.
        version: String,
    },
    /// A chunk list that does not parse, or is too long.
    #[error("bad chunk list: {0}")]
    BadChunkList(String),
    /// An uploaded chunk larger than the chunking maximum.
    #[error("a chunk is at most {max} bytes")]
    ChunkTooLarge {
        /// The maximum.
        max: usize,
    },
    /// An uploaded chunk whose BLAKE3 is not the id it was sent as.
    #[error("the chunk's BLAKE3 is {actual}, not {said}: nothing was stored")]
    ChunkIdMismatch {
        /// The id in the request.
        said: String,
        /// The id of the bytes.
        actual: String,
    },
    /// A text endpoint (diff, checkpoints) on a file resource.
    #[error("{0} is a file: diffs and checkpoints are for text (its versions are in /.plait/history)")]
    NotText(String),
    /// A file endpoint on a path that holds no file.
    #[error("{0} is not a file resource")]
    NotAFile(String),
    /// Unknown server endpoint under `/.plait/`.
    #[error("no such endpoint: {0}")]
    NotFound(String),
    /// `/.well-known/multiplexer/` (`spec/WIRE.md` §5.5: 501 makes clients fall back).
    #[error("Braid multiplexing is not supported by this server; use HTTP/2")]
    MultiplexingNotSupported,
    /// The application core refused or failed.
    #[error(transparent)]
    Hub(#[from] HubError),
    /// A header of a resumable upload did not parse.
    #[error(transparent)]
    UploadHeader(#[from] crate::protocol::upload::UploadHeaderError),
    /// Access control refused, or managing a credential failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl From<TextError> for ApiError {
    fn from(e: TextError) -> Self {
        ApiError::Hub(HubError::from(e))
    }
}

impl ApiError {
    /// The stable code this error is answered with; its [`Row`] gives the status, reason
    /// phrase, `Retry-After` and fault. One exhaustive match per error type, none with a
    /// catch-all arm: a new variant does not compile until it is given a code.
    pub fn code(&self) -> ErrorCode {
        use ErrorCode as C;
        match self {
            ApiError::Protocol(e) => protocol_code(e),
            ApiError::DuplicateHeader(_) => C::DuplicateHeader,
            ApiError::VersionWithSubscribe => C::VersionWithSubscribe,
            ApiError::MultipleVersionIds(_) => C::MultipleVersionIds,
            ApiError::BodyTooLarge { .. } => C::BodyTooLarge,
            ApiError::TooManyIds { .. } => C::TooManyIds,
            ApiError::TooManyPatches { .. } => C::TooManyPatches,
            ApiError::BodyTimeout { .. } => C::BodyTimeout,
            ApiError::BadBody(_) => C::BadBody,
            ApiError::MethodNotAllowed(_) => C::MethodNotAllowed,
            ApiError::BadTransferEncoding(_) => C::BadTransferEncoding,
            ApiError::BadHost(_) => C::BadHost,
            ApiError::BadPath(_) => C::BadPath,
            ApiError::PathTooLong { .. } => C::PathTooLong,
            ApiError::BadJson(_) => C::BadJson,
            ApiError::BadQuery(_) => C::BadQuery,
            ApiError::BadCursor(_) => C::BadCursor,
            ApiError::BadFolder(_) => C::BadFolder,
            ApiError::NotFound(_) => C::NotFound,
            ApiError::RangeNotSatisfiable { .. } => C::RangeNotSatisfiable,
            ApiError::FileDeleted { .. } => C::FileDeleted,
            ApiError::BadChunkList(_) => C::BadChunkList,
            ApiError::ChunkTooLarge { .. } => C::ChunkTooLarge,
            ApiError::ChunkIdMismatch { .. } => C::ChunkIdMismatch,
            ApiError::NotAFile(_) => C::NotAFile,
            ApiError::NotText(_) => C::NotText,
            ApiError::MultiplexingNotSupported => C::MultiplexingNotSupported,
            ApiError::Hub(e) => hub_code(e),
            ApiError::UploadHeader(e) => upload_header_code(e),
            ApiError::Auth(e) => auth_code(e),
        }
    }

    /// The ids a 309 names in its `Version` header.
    fn unknown_ids(&self) -> Option<&VersionSet> {
        if let ApiError::Hub(HubError::Doc(
            DocError::Text(TextError::UnknownVersion(ids)) | DocError::UnknownVersion(ids),
        )) = self
        {
            Some(ids)
        } else {
            None
        }
    }

    /// The seconds of a [`RetryAfter::FromError`] row.
    fn retry_after_secs(&self) -> Option<u64> {
        if let ApiError::Auth(AuthError::Throttled { retry_after_secs }) = self {
            Some(*retry_after_secs)
        } else {
            None
        }
    }
}

fn protocol_code(e: &ProtocolError) -> ErrorCode {
    use ErrorCode as C;
    match e {
        ProtocolError::BadVersionHeader { .. } => C::BadVersionHeader,
        ProtocolError::BadContentRange { .. } => C::BadContentRange,
        ProtocolError::UnsupportedRangeUnit { .. } => C::UnsupportedRangeUnit,
        ProtocolError::BadPatchCount { .. } => C::BadPatchCount,
        ProtocolError::TooManyPatches { .. } => C::TooManyPatchesDeclared,
        ProtocolError::BadPatches { .. } => C::BadPatches,
        ProtocolError::PatchCountMismatch { .. } => C::PatchCountMismatch,
        ProtocolError::BadContentLength { .. } => C::BadContentLength,
        ProtocolError::InvalidUtf8 { .. } => C::InvalidUtf8,
        ProtocolError::BadPeer { .. } => C::BadPeer,
        ProtocolError::UnknownMergeType { .. } => C::UnknownMergeType,
        ProtocolError::BadHeartbeats { .. } => C::BadHeartbeats,
        // Decoder errors: only clients decode subscription streams.
        ProtocolError::BadFraming { .. } => C::BadFraming,
        ProtocolError::HeaderTooLarge { .. } => C::HeaderTooLarge,
        ProtocolError::BodyTooLarge { .. } => C::BodyTooLarge,
    }
}

fn text_code(e: &TextError) -> ErrorCode {
    use ErrorCode as C;
    match e {
        TextError::InvalidEventId { .. } => C::InvalidEventId,
        TextError::InvalidAgent { .. } => C::InvalidAgent,
        TextError::CyclicParents { .. } => C::CyclicParents,
        TextError::UnknownVersion(_) => C::VersionUnknown,
        TextError::RangeReversed { .. } => C::RangeReversed,
        TextError::RangeOutOfBounds { .. } => C::RangeOutOfBounds,
        TextError::OverlappingPatches { .. } => C::OverlappingPatches,
        TextError::SeqTooLow { .. } => C::SeqTooLow,
        TextError::SeqGap { .. } => C::SeqGap,
        TextError::PrunedVersion { .. } => C::PrunedVersion,
        // Only ever raised by bytes the server stored itself: never the client's fault.
        TextError::CorruptEncoding(_) => C::CorruptEncoding,
        TextError::TooLarge(_) => C::TooLarge,
        TextError::InvalidHorizon { .. } => C::InvalidHorizon,
        // braid-text's status, fatal for simpleton clients (they and the server disagree).
        TextError::DigestMismatch { .. } => C::ReprDigestMismatch,
    }
}

fn hub_code(e: &HubError) -> ErrorCode {
    use ErrorCode as C;
    match e {
        HubError::Doc(d) => doc_code(d),
        HubError::TooManySubscriptions(_) => C::TooManySubscriptions,
        HubError::NotListed(_) => C::NotInHistory,
        HubError::BadCheckpointName(_) => C::BadCheckpointName,
        HubError::CheckpointExists(_) => C::CheckpointExists,
        HubError::TooManyCheckpoints(_) => C::TooManyCheckpoints,
        HubError::NoSuchCheckpoint(_) => C::NoSuchCheckpoint,
        HubError::Unavailable => C::Unavailable,
        HubError::Chunks(c) => chunk_code(c),
        HubError::FileTooLarge { .. } => C::FileTooLarge,
        HubError::DigestMismatch { .. } => C::DigestMismatch,
        HubError::ChunksMissing(_) => C::ChunksMissing,
        HubError::ChunkLength { .. } => C::BadChunkList,
        HubError::Upload(u) => upload_code(u),
    }
}

fn upload_code(e: &crate::upload::UploadError) -> ErrorCode {
    use crate::upload::UploadError as U;
    use ErrorCode as C;
    match e {
        U::NotFound(_) => C::NoUpload,
        U::OffsetMismatch { .. } => C::UploadOffset,
        U::PastLength { .. } => C::PastUploadLength,
        U::LengthMismatch { .. } => C::UploadLengthMismatch,
        U::TooLarge { .. } => C::UploadTooLarge,
        U::TooMany { .. } => C::TooManyUploads,
        U::ChecksumMismatch { .. } => C::ChecksumMismatch,
        U::Completed => C::UploadComplete,
        U::Superseded(_) => C::UploadSuperseded,
        U::BadTarget(_) => C::BadUploadTarget,
        U::BadConcat(_) => C::BadUploadConcat,
        U::WrongContentType(_) => C::UploadContentType,
        U::NoDirectUploads => C::NoDirectUploads,
        U::BadGrant => C::BadGrant,
        U::BadParts(_) => C::BadParts,
        U::UseMultipart => C::UseMultipart,
    }
}

fn upload_header_code(e: &crate::protocol::upload::UploadHeaderError) -> ErrorCode {
    use crate::protocol::upload::UploadHeaderError as H;
    use ErrorCode as C;
    match e {
        H::UnsupportedVersion(_) => C::TusVersion,
        H::BadNumber { .. } | H::BadDeferLength => C::BadUploadLength,
        H::BadMetadata(_) => C::BadUploadMetadata,
        H::BadChecksum(_) => C::BadChecksum,
        H::UnsupportedChecksum(_) => C::ChecksumAlgorithm,
        H::BadConcat(_) => C::BadUploadConcat,
        H::BadComplete(_) => C::BadUploadComplete,
        H::UnsupportedInterop(_) => C::UploadInteropVersion,
    }
}

fn chunk_code(e: &ChunkError) -> ErrorCode {
    use ErrorCode as C;
    match e {
        ChunkError::NoSpace(_) => C::InsufficientStorage,
        ChunkError::Engine(_) | ChunkError::Store(_) => C::StorageUnavailable,
        // Never the client's bytes: a stored chunk that does not verify, a chunk larger than the
        // chunker makes, a reference to an unclaimed chunk, a key problem (refused at start-up).
        ChunkError::Corrupt { .. }
        | ChunkError::TooLarge { .. }
        | ChunkError::NotClaimed(_)
        | ChunkError::Key { .. } => C::Internal,
    }
}

fn file_code(e: &FileError) -> ErrorCode {
    use ErrorCode as C;
    match e {
        FileError::BadVersionId { .. } => C::BadFileVersion,
        FileError::UnknownParents { .. } => C::VersionUnknown,
        FileError::VersionReused { .. } => C::VersionReused,
        FileError::NothingToDelete => C::NothingToDelete,
        FileError::NothingToRestore { .. } => C::NothingToRestore,
        FileError::CorruptRecord(_) => C::Internal,
    }
}

fn doc_code(e: &DocError) -> ErrorCode {
    use ErrorCode as C;
    match e {
        DocError::Text(t) => text_code(t),
        DocError::UnknownVersion(_) => C::VersionUnknown,
        DocError::Overloaded => C::Overloaded,
        DocError::DocumentTooLarge { .. } => C::DocumentTooLarge,
        DocError::Deleted => C::Deleted,
        DocError::Storage(_) if e.is_disk_full() => C::InsufficientStorage,
        DocError::Storage(_) => C::StorageUnavailable,
        DocError::Corrupt(_) => C::Internal,
        DocError::BehindHorizon { .. } => C::BehindHorizon,
        // Another compaction (the background pass, or a second request) finished first:
        // nothing was changed by this one, and asking again plans against the new state.
        DocError::CompactionRaced => C::Unavailable,
        DocError::File(f) => file_code(f),
        DocError::KindMismatch { .. } => C::KindMismatch,
    }
}

fn auth_code(e: &AuthError) -> ErrorCode {
    use ErrorCode as C;
    match e {
        AuthError::Missing => C::AuthRequired,
        AuthError::Doubled => C::DuplicateHeader,
        AuthError::InvalidToken => C::InvalidToken,
        AuthError::InvalidLink => C::InvalidShareLink,
        AuthError::Forbidden { .. } => C::Forbidden,
        AuthError::Throttled { .. } => C::AuthThrottled,
        AuthError::NoSuchToken(_) => C::NoSuchToken,
        AuthError::NoSuchShare(_) => C::NoSuchShare,
        AuthError::Disabled => C::AuthDisabled,
        AuthError::BadRequest(_) => C::BadCredentialRequest,
        AuthError::TooMany { .. } => C::TooManyCredentials,
        AuthError::Storage(_) if e.is_disk_full() => C::InsufficientStorage,
        AuthError::Storage(_) => C::StorageUnavailable,
        AuthError::Random(_) | AuthError::Corrupt(_) => C::Internal,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let row = self.code().row();
        let message = match row.fault {
            Fault::Client => self.to_string(),
            Fault::Server(generic) => {
                tracing::error!(error = %self, code = row.code, "request failed on the server side");
                generic.to_string()
            }
        };
        let mut body = serde_json::json!({ "error": row.code, "message": message });
        let gone = if let ApiError::Hub(HubError::Doc(DocError::BehindHorizon { horizon, snapshot })) = &self {
            body["horizon"] = serde_json::json!(horizon.ids());
            body["snapshot"] = serde_json::json!(snapshot);
            Some((horizon, snapshot))
        } else {
            None
        };
        let resume_at = match &self {
            ApiError::Hub(HubError::Upload(
                crate::upload::UploadError::OffsetMismatch { held, .. } | crate::upload::UploadError::Superseded(held),
            )) => Some(*held),
            _ => None,
        };
        if let ApiError::Hub(HubError::ChunksMissing(ids)) = &self {
            body["missing"] = serde_json::json!(ids.iter().map(|id| id.to_string()).collect::<Vec<_>>());
        }
        // The rows' statuses are checked when the crate compiles (`codes::Row::check`).
        let status = StatusCode::from_u16(row.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut res = (status, body.to_string()).into_response();
        let headers = res.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert("plait-error", HeaderValue::from_static(row.code));
        if let Some(offset) = resume_at {
            // Where the upload is: the client resumes from here (tus and the IETF draft).
            headers.insert("upload-offset", HeaderValue::from(offset));
        }
        if let Some((horizon, snapshot)) = gone {
            super::reply::set_version(headers, "merge-horizon", horizon);
            // RFC 5829's relation for "the current version of this resource".
            super::reply::set(headers, "link", &format!("<{snapshot}>; rel=\"latest-version\""));
        }
        if let Some(ids) = self.unknown_ids() {
            if let Ok(v) = HeaderValue::from_str(&ids.to_header()) {
                headers.insert("version", v);
            }
        }
        if let ApiError::RangeNotSatisfiable { len, .. } = &self {
            super::reply::set(headers, "content-range", &format!("bytes */{len}"));
        }
        if let Some(challenge) = row.challenge {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        let retry_after = match row.retry_after {
            RetryAfter::No => None,
            RetryAfter::Seconds(secs) => Some(secs),
            RetryAfter::FromError => Some(self.retry_after_secs().unwrap_or(1)),
        };
        if let Some(secs) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(reason) = row.reason {
            // Checked when the crate compiles (`codes::Row::check`): cannot panic here.
            res.extensions_mut().insert(ReasonPhrase::from_static(reason.as_bytes()));
        }
        res
    }
}
