//! What an upload request can run into, each with a stable code (mapped to HTTP in one place,
//! `http::error`).

/// A refusal of the upload layer. All are the client's doing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    /// No upload has this id (never created, cancelled, or expired and collected).
    #[error("no upload {0} here (it never existed, was cancelled or has expired)")]
    NotFound(String),
    /// The request's `Upload-Offset` is not where the upload is.
    #[error("Upload-Offset is {sent} but the upload holds {held} bytes: resume from {held}")]
    OffsetMismatch {
        /// What the client sent.
        sent: u64,
        /// What the server holds (the offset to resume from).
        held: u64,
    },
    /// More bytes than the upload's declared length.
    #[error("the upload is {length} bytes long; this request would take it to {reached}")]
    PastLength {
        /// The declared length.
        length: u64,
        /// Where the request would have ended.
        reached: u64,
    },
    /// A length other than the one already declared, or a complete upload whose bytes are not
    /// its declared length.
    #[error("the upload's length is {declared}, not {other}")]
    LengthMismatch {
        /// The length declared first.
        declared: u64,
        /// The one in this request (or the bytes held at completion).
        other: u64,
    },
    /// An upload larger than allowed for this caller.
    #[error("uploads are limited to {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The caller already has as many uploads in progress as allowed.
    #[error("{limit} uploads are already in progress for this credential; finish or cancel one")]
    TooMany {
        /// The limit.
        limit: usize,
    },
    /// The append's `Upload-Checksum` does not match its bytes: the bytes were discarded.
    #[error("the request's bytes do not match its Upload-Checksum ({algorithm}); they were discarded")]
    ChecksumMismatch {
        /// The algorithm named.
        algorithm: &'static str,
    },
    /// The upload is complete: it takes no more bytes.
    #[error("the upload is complete and takes no more bytes")]
    Completed,
    /// A newer request for the same upload took over; this one stopped where it was.
    #[error("a newer request for this upload took over; this one stopped at offset {0}")]
    Superseded(u64),
    /// `Upload-Metadata` without a target (`path`, or `folder` and `filename`), or with one
    /// that is not a resource path.
    #[error("Upload-Metadata: {0}")]
    BadTarget(String),
    /// A final concatenation names an upload that is not a complete partial upload of the caller.
    #[error("Upload-Concat: {0}")]
    BadConcat(String),
    /// Direct uploads to the object store are not configured.
    #[error("direct uploads are off here: the server needs --blob-store s3://… and --direct-uploads")]
    NoDirectUploads,
    /// A direct-upload endpoint (a grant) that is unknown or expired.
    #[error("this direct-upload endpoint is unknown or has expired: ask for a new one (POST /.plait/direct)")]
    BadGrant,
    /// A completion's parts that do not complete the upload, or a part number out of range.
    #[error("{0}")]
    BadParts(String),
    /// A single-request (non-multipart) direct upload, which is not offered.
    #[error("single-request direct uploads are not offered: use multipart (Uppy: shouldUseMultipart: true)")]
    UseMultipart,
    /// An append without the content type its protocol requires.
    #[error("an append needs Content-Type: {0}")]
    WrongContentType(&'static str),
}

impl UploadError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            UploadError::NotFound(_) => "no_upload",
            UploadError::OffsetMismatch { .. } => "upload_offset",
            UploadError::PastLength { .. } => "past_upload_length",
            UploadError::LengthMismatch { .. } => "upload_length_mismatch",
            UploadError::TooLarge { .. } => "upload_too_large",
            UploadError::TooMany { .. } => "too_many_uploads",
            UploadError::ChecksumMismatch { .. } => "checksum_mismatch",
            UploadError::Completed => "upload_complete",
            UploadError::Superseded(_) => "upload_superseded",
            UploadError::BadTarget(_) => "bad_upload_target",
            UploadError::BadConcat(_) => "bad_upload_concat",
            UploadError::WrongContentType(_) => "upload_content_type",
            UploadError::NoDirectUploads => "no_direct_uploads",
            UploadError::BadGrant => "bad_grant",
            UploadError::BadParts(_) => "bad_parts",
            UploadError::UseMultipart => "use_multipart",
        }
    }
}
