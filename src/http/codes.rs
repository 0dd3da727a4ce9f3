//! The table of every stable error code the server answers with: one row per code, holding
//! its status, reason phrase, `Retry-After`, who is at fault and what it means.
//!
//! Why a table: the codes are an API (clients branch on them) and were spread over the lower
//! layers' `code()` functions, the HTTP mapping and the docs, with nothing keeping them equal.
//! Here they are data. `http::error` maps each error variant to an [`ErrorCode`] (exhaustive
//! matches, no catch-all arm, so a new variant does not compile until it is classified) and
//! builds the response from the code's [`Row`]; `tests/it/error_codes.rs` checks every row is
//! reached by some error value and regenerates the "Error codes" section of
//! `spec/CONFORMANCE.md` from this table, failing with the diff when the two differ.
//!
//! To add a code: add a line below (the variant's position is its place in the docs), map
//! the error variant to it in `http::error`, add a sample value to `tests/it/error_codes.rs`,
//! and run `UPDATE_CONFORMANCE=1 cargo test --locked --test it error_codes` to rewrite the
//! docs section.

use hyper::ext::ReasonPhrase;

/// Where a code is described in the docs: roughly, which layer refuses the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// The wire format (`ProtocolError`): a header or body that does not parse.
    Wire,
    /// The subscription-stream decoder (`protocol::Decoder`): client side only, never answered.
    Decoder,
    /// The text layer (`TextError`): an edit or version that cannot apply to this document.
    Text,
    /// The HTTP layer (`ApiError`'s own variants): request shape, limits, routes.
    Request,
    /// Documents (`HubError`): state of the document, history and checkpoints.
    Document,
    /// Resumable uploads (`UploadError`, `UploadHeaderError`): tus and the IETF draft.
    Upload,
    /// Access control (`AuthError`).
    Access,
    /// Server-side faults of any layer: logged once, answered with a generic message.
    Server,
}

impl Group {
    /// Every group, in the order of the docs.
    pub const ALL: &'static [Group] = &[
        Group::Wire,
        Group::Text,
        Group::Request,
        Group::Document,
        Group::Upload,
        Group::Access,
        Group::Server,
        Group::Decoder,
    ];
}

/// Whether a response carries `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// No `Retry-After`.
    No,
    /// `Retry-After` with this many seconds.
    Seconds(u64),
    /// `Retry-After` with the seconds the error value carries (the auth throttle's window).
    FromError,
}

/// Whose fault a code is, which decides its message and whether it is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The client's: the error's own message is answered, nothing is logged.
    Client,
    /// The server's: logged once at `error` level, answered with this generic message (the
    /// real one may hold paths or internals).
    Server(&'static str),
}

/// Everything the server answers for one code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// The stable code: the JSON `error` field and the `Plait-Error` header.
    pub code: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// A reason phrase other than the status's standard one (Braid's 309, braid-text's 550).
    pub reason: Option<&'static str>,
    /// Whether `Retry-After` is sent.
    pub retry_after: RetryAfter,
    /// The `WWW-Authenticate` challenge sent with it (RFC 6750), if any.
    pub challenge: Option<&'static str>,
    /// Whose fault it is.
    pub fault: Fault,
    /// Where the docs list it.
    pub group: Group,
    /// One line, Markdown: what the client did (or what happened), for the docs.
    pub meaning: &'static str,
}

/// The generic message of a server fault that a retry may cure.
const RETRY_SHORTLY: &str = "the server cannot take this request right now; retry shortly";

impl Row {
    /// A client fault without extra headers.
    const fn new(group: Group, code: &'static str, status: u16, meaning: &'static str) -> Row {
        Row {
            code,
            status,
            reason: None,
            retry_after: RetryAfter::No,
            challenge: None,
            fault: Fault::Client,
            group,
            meaning,
        }
    }

    /// A server fault answered with `message`.
    const fn server(code: &'static str, status: u16, message: &'static str, meaning: &'static str) -> Row {
        Row { fault: Fault::Server(message), ..Row::new(Group::Server, code, status, meaning) }
    }

    const fn reason(self, reason: &'static str) -> Row {
        Row { reason: Some(reason), ..self }
    }

    const fn retry_after(self, retry_after: RetryAfter) -> Row {
        Row { retry_after, ..self }
    }

    const fn challenge(self, challenge: &'static str) -> Row {
        Row { challenge: Some(challenge), ..self }
    }

    /// Fails the build (every row is checked in a `const` below) on a status `StatusCode`
    /// would refuse or a reason phrase hyper would panic on, so neither can fail at run time.
    const fn check(&self) {
        assert!(self.status >= 300 && self.status <= 599, "an error status is 3xx, 4xx or 5xx");
        if let Some(reason) = self.reason {
            std::mem::forget(ReasonPhrase::from_static(reason.as_bytes()));
        }
    }
}

/// Declares [`ErrorCode`], its `ALL` list and its `row()` from one list of `Variant => row`.
macro_rules! error_codes {
    ($($variant:ident => $row:expr,)+) => {
        /// A stable error code. Its [`Row`] says how it is answered and what it means.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($variant,)+
        }

        impl ErrorCode {
            /// Every code, in the order of the table.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// How this code is answered.
            pub const fn row(self) -> Row {
                match self {
                    $(ErrorCode::$variant => $row,)+
                }
            }
        }
    };
}

use Group::{Access, Decoder, Document, Request, Text, Upload, Wire};
use RetryAfter::{FromError, Seconds};

error_codes! {
    // The wire format: all 400.
    BadVersionHeader => Row::new(Wire, "bad_version_header", 400,
        "`Version`/`Parents` is not a JSON list of non-empty strings"),
    BadContentRange => Row::new(Wire, "bad_content_range", 400,
        "`Content-Range` is not `text [start:end]` with integer bounds ≤ 2^53−1, or is visibly reversed"),
    UnsupportedRangeUnit => Row::new(Wire, "unsupported_range_unit", 400,
        "a range unit other than `text` (`json`, `bytes`, ...)"),
    BadPatchCount => Row::new(Wire, "bad_patch_count", 400,
        "`Patches`/`count=` is not a number, or the two disagree, or `application/http-patches` has no count"),
    // The one code with two statuses (both long answered and tested): the protocol refuses
    // the declared count before reading any patch; `TooManyPatches` counts the patches read.
    TooManyPatchesDeclared => Row::new(Wire, "too_many_patches", 400,
        "`Patches`/`count=` declares more than 10 000 patches (more than `--max-patches` actual patches is the `413` below)"),
    BadPatches => Row::new(Wire, "bad_patches", 400,
        "a `Patches` body that breaks the grammar (missing per-patch header, trailing bytes, both `Content-Range` and a count)"),
    PatchCountMismatch => Row::new(Wire, "patch_count_mismatch", 400,
        "fewer patches in the body than declared"),
    BadContentLength => Row::new(Wire, "bad_content_length", 400,
        "a per-patch `Content-Length` that is not a decimal byte count"),
    InvalidUtf8 => Row::new(Wire, "invalid_utf8", 400,
        "patch content that is not UTF-8 (a whole body that is not text is a file: `kind_mismatch` on a text resource)"),
    BadPeer => Row::new(Wire, "bad_peer", 400,
        "a `Peer` that is empty, not UTF-8, or holds control characters"),
    UnknownMergeType => Row::new(Wire, "unknown_merge_type", 400,
        "a `Merge-Type` other than `simpleton` or `dt`"),
    BadHeartbeats => Row::new(Wire, "bad_heartbeats", 400,
        "a `Heartbeats` value that is not a sane number of seconds"),

    // The text layer.
    InvalidEventId => Row::new(Text, "invalid_event_id", 400,
        "an id that is not `agent-seq` with a canonical decimal seq ≤ 2^53−1"),
    InvalidAgent => Row::new(Text, "invalid_agent", 400,
        "an agent that is empty, `ROOT`, or 50+ UTF-8 bytes; writing as a `~…` agent (reserved for compaction bases)"),
    CyclicParents => Row::new(Text, "cyclic_parents", 400,
        "`Parents` name the write's own `Version` or a later event of the same agent"),
    RangeReversed => Row::new(Text, "range_reversed", 400,
        "a range whose start is after its end once negative bounds are resolved"),
    RangeOutOfBounds => Row::new(Text, "range_out_of_bounds", 400,
        "a range reaching outside the parent text"),
    OverlappingPatches => Row::new(Text, "overlapping_patches", 400,
        "two patches of one write overlap"),
    SeqTooLow => Row::new(Text, "seq_too_low", 400,
        "the `Version` seq cannot name the last of the write's events"),
    SeqGap => Row::new(Text, "seq_gap", 400,
        "the write's first seq leaves a gap after the agent's known events"),
    PrunedVersion => Row::new(Text, "pruned_version", 400,
        "a write naming an id that compaction folded away, on a document without a horizon record (with one, the answer is `behind_horizon`)"),
    InvalidHorizon => Row::new(Text, "invalid_horizon", 400,
        "(internal to compaction) a horizon that does not dominate later history"),
    TooLarge => Row::new(Text, "too_large", 413,
        "a position, count or seq would overflow 2^53−1"),
    ReprDigestMismatch => Row::new(Text, "repr_digest_mismatch", 550,
        "the PUT's `Repr-Digest` is not the sha-256 of the text its edit would produce (the one 5xx a client causes: braid-text's fatal code for simpleton clients)")
        .reason("Repr-Digest Mismatch"),

    // The HTTP layer's own refusals.
    VersionUnknown => Row::new(Request, "version_unknown", 309,
        "`Version` or `Parents` name events this server does not have (after waiting, for writes); the `Version` header lists them")
        .reason("Version Unknown Here").retry_after(Seconds(1)),
    DuplicateHeader => Row::new(Request, "duplicate_header", 400,
        "a single-valued Braid header, or `Authorization`, appeared twice"),
    VersionWithSubscribe => Row::new(Request, "version_with_subscribe", 400,
        "`Version` together with `Subscribe` (use `Parents` to resume)"),
    MultipleVersionIds => Row::new(Request, "multiple_version_ids", 400,
        "a write's `Version` names more than one event"),
    BadFileVersion => Row::new(Request, "bad_file_version", 400,
        "a file's `Version`/`Parents` id is empty, longer than 200 bytes, or not visible ASCII without `\"` and `\\`"),
    DigestMismatch => Row::new(Request, "digest_mismatch", 400,
        "a file body's SHA-256 differs from its `Repr-Digest`; nothing was stored"),
    BadChunkList => Row::new(Request, "bad_chunk_list", 400,
        "a chunk list (missing/commit) that is not `{\"chunks\": [...]}` of 64-hex ids (with lengths for a commit), longer than 100,000, or whose lengths differ from the stored chunks"),
    ChunkIdMismatch => Row::new(Request, "chunk_id_mismatch", 400,
        "an uploaded chunk's BLAKE3 is not the id it was sent as; nothing was stored"),
    ChunkTooLarge => Row::new(Request, "chunk_too_large", 413,
        "an uploaded chunk larger than the chunking maximum (`GET /.plait/chunks` says it)"),
    BadBody => Row::new(Request, "bad_body", 400,
        "the request body could not be read"),
    BadTransferEncoding => Row::new(Request, "bad_transfer_encoding", 400,
        "a `Transfer-Encoding` other than a single `chunked`"),
    BadHost => Row::new(Request, "bad_host", 400,
        "an HTTP/1.1 request without `Host`; more than one `Host` line; a `Host` or target authority that is not `uri-host [\":\" port]`; an HTTP/2 request with neither `:authority` nor `Host`"),
    BadPath => Row::new(Request, "bad_path", 400,
        "a request path that cannot name a document"),
    BadQuery => Row::new(Request, "bad_query", 400,
        "a query parameter of a `/.plait/` endpoint that does not parse, or an unknown one"),
    BadCursor => Row::new(Request, "bad_cursor", 400,
        "a folder cursor (`Parents`, `?since=`, `Last-Event-ID`) that is not a cursor, or a long poll (`?wait=`) without one"),
    BadFolder => Row::new(Request, "bad_folder", 400,
        "a folder path (ending in `/`) with an empty segment"),
    BadJson => Row::new(Request, "bad_json", 400,
        "a JSON request body (restore, checkpoints) that does not parse or has the wrong shape"),
    NotFound => Row::new(Request, "not_found", 404,
        "an unknown `/.plait/` endpoint"),
    MethodNotAllowed => Row::new(Request, "method_not_allowed", 405,
        "a method not supported on this path"),
    BodyTimeout => Row::new(Request, "body_timeout", 408,
        "the request body did not arrive within `--body-timeout-secs`"),
    BodyTooLarge => Row::new(Request, "body_too_large", 413,
        "the request body exceeds `--max-body-bytes`"),
    TooManyPatches => Row::new(Request, "too_many_patches", 413,
        "an update carries more than `--max-patches` patches"),
    FileTooLarge => Row::new(Request, "file_too_large", 413,
        "a file body larger than `--max-file-bytes`; nothing was stored"),
    PathTooLong => Row::new(Request, "path_too_long", 414,
        "a request path longer than a document path may be"),
    RangeNotSatisfiable => Row::new(Request, "range_not_satisfiable", 416,
        "a `Range` none of whose ranges starts inside the file; `Content-Range: bytes */<length>` says its length"),
    TooManyIds => Row::new(Request, "too_many_ids", 431,
        "a `Version` or `Parents` header names more than `--max-version-ids` ids"),
    MultiplexingNotSupported => Row::new(Request, "multiplexing_not_supported", 501,
        "`/.well-known/multiplexer/*`: Braid multiplexing is not offered (clients fall back to plain requests)"),

    // Documents.
    NotInHistory => Row::new(Document, "not_in_history", 400,
        "a history page's `before` is not a version of the listing"),
    BadCheckpointName => Row::new(Document, "bad_checkpoint_name", 400,
        "a checkpoint name that is empty, longer than 128 bytes or has control characters"),
    NotText => Row::new(Document, "not_text", 404,
        "a text endpoint (diff, checkpoints) on a file resource"),
    NotAFile => Row::new(Document, "not_a_file", 404,
        "a file endpoint (chunk list) on a path that holds no file"),
    FileDeleted => Row::new(Document, "file_deleted", 404,
        "the file's served version is a delete; older versions stay readable with `Version`"),
    NothingToDelete => Row::new(Document, "nothing_to_delete", 404,
        "a DELETE of a file that has no version, or whose served version is already a delete"),
    NothingToRestore => Row::new(Document, "nothing_to_restore", 400,
        "a file restore names a version that is a delete"),
    NoSuchCheckpoint => Row::new(Document, "no_such_checkpoint", 404,
        "no checkpoint has that name"),
    Deleted => Row::new(Document, "deleted", 409,
        "the document was deleted while the request was in flight"),
    KindMismatch => Row::new(Document, "kind_mismatch", 409,
        "a write of the other kind than the resource's (text to a file, a file to text); erase the resource first"),
    VersionReused => Row::new(Document, "version_reused", 409,
        "a file write's `Version` already names other bytes of this file (an id names one content forever)"),
    ChunksMissing => Row::new(Document, "chunks_missing", 409,
        "a commit by chunk list names chunks not uploaded by this caller nor visible to it; the body's `missing` lists them"),
    CheckpointExists => Row::new(Document, "checkpoint_exists", 409,
        "a checkpoint of that name names another version"),
    TooManyCheckpoints => Row::new(Document, "too_many_checkpoints", 409,
        "the document has 1000 checkpoints"),
    // Resumable uploads (tus 1.0.0 and the IETF draft; docs/UPLOADS.md).
    TusVersion => Row::new(Upload, "tus_version", 412,
        "`Tus-Resumable` names a version other than 1.0.0; `Tus-Version` lists the one spoken"),
    BadUploadLength => Row::new(Upload, "bad_upload_length", 400,
        "`Upload-Length`, `Upload-Offset` or `Upload-Defer-Length` is not a plain non-negative integer (or `1`), or neither a length nor a deferred length was given"),
    BadUploadMetadata => Row::new(Upload, "bad_upload_metadata", 400,
        "`Upload-Metadata` is not comma-separated `key base64` pairs with unique keys"),
    BadChecksum => Row::new(Upload, "bad_checksum", 400,
        "`Upload-Checksum` is not `<algorithm> <base64 digest of the right length>`"),
    ChecksumAlgorithm => Row::new(Upload, "checksum_algorithm", 400,
        "`Upload-Checksum` names an algorithm other than sha1 and sha256"),
    BadUploadConcat => Row::new(Upload, "bad_upload_concat", 400,
        "`Upload-Concat` is not `partial` or `final;<upload URLs>`, or names an upload that is not a complete partial upload of the caller"),
    BadUploadComplete => Row::new(Upload, "bad_upload_complete", 400,
        "`Upload-Complete` is not `?1` or `?0`"),
    BadParts => Row::new(Upload, "bad_parts", 400,
        "a direct upload's completion whose parts S3 does not accept (missing, wrong ETag, out of order, under 5 MiB but the last), or a part number outside 1..10000"),
    UseMultipart => Row::new(Upload, "use_multipart", 400,
        "`/s3/params`: single-request direct uploads are not offered; configure Uppy with `shouldUseMultipart: true`"),
    BadGrant => Row::new(Upload, "bad_grant", 404,
        "a direct-upload endpoint (`/.plait/direct/<grant>/`) that is unknown or has expired"),
    NoDirectUploads => Row::new(Upload, "no_direct_uploads", 404,
        "direct uploads are off: the server needs `--blob-store s3://…` and `--direct-uploads`"),
    UploadInteropVersion => Row::new(Upload, "upload_interop_version", 400,
        "`Upload-Draft-Interop-Version` other than 5, 6, 7 or 8"),
    BadUploadTarget => Row::new(Upload, "bad_upload_target", 400,
        "`Upload-Metadata` names no target (`path`, or `folder` and `filename`) or one that is not a resource path"),
    NoUpload => Row::new(Upload, "no_upload", 404,
        "no upload has this id: it never existed, was cancelled, or expired"),
    UploadOffset => Row::new(Upload, "upload_offset", 409,
        "`Upload-Offset` is not the upload's offset; nothing changed; the response's `Upload-Offset` says where to resume"),
    UploadComplete => Row::new(Upload, "upload_complete", 409,
        "an append to an upload that is already complete"),
    UploadSuperseded => Row::new(Upload, "upload_superseded", 409,
        "a newer request for the same upload took over; this one stopped and kept what it had received"),
    UploadLengthMismatch => Row::new(Upload, "upload_length_mismatch", 409,
        "a length other than the one declared, or a completion whose bytes are not the declared length"),
    TooManyUploads => Row::new(Upload, "too_many_uploads", 409,
        "the credential already has `--max-uploads-per-token` uploads in progress"),
    PastUploadLength => Row::new(Upload, "past_upload_length", 413,
        "an append that would take the upload past its declared length: refused before a byte is read when it has a `Content-Length`; a chunked body keeps the bytes that fitted"),
    UploadTooLarge => Row::new(Upload, "upload_too_large", 413,
        "an upload longer than `--max-upload-bytes` (or `--max-file-bytes`)"),
    UploadContentType => Row::new(Upload, "upload_content_type", 415,
        "a tus append without `Content-Type: application/offset+octet-stream`"),
    ChecksumMismatch => Row::new(Upload, "checksum_mismatch", 460,
        "the append's bytes do not match its `Upload-Checksum`; they were discarded").reason("Checksum Mismatch"),

    BehindHorizon => Row::new(Document, "behind_horizon", 410,
        "the request names versions compaction folded away; body (`horizon`, `snapshot`), `Merge-Horizon` and `Link: <path>; rel=\"latest-version\"` say where to refetch (GET without `Parents`) and continue"),
    DocumentTooLarge => Row::new(Document, "document_too_large", 413,
        "the write would make the document larger than the configured limit (code points)"),
    TooManySubscriptions => Row::new(Document, "too_many_subscriptions", 429,
        "the per-document or server-wide subscription limit is reached")
        .retry_after(Seconds(1)),

    // Access control.
    BadCredentialRequest => Row::new(Access, "bad_credential_request", 400,
        "a token or share to create that is invalid (label, prefixes, expiry, pinned rights)"),
    AuthRequired => Row::new(Access, "auth_required", 401,
        "no `Authorization` header where a credential is needed (`--auth token`)")
        .challenge("Bearer realm=\"plait\""),
    InvalidToken => Row::new(Access, "invalid_token", 401,
        "not a bearer token, or malformed, unknown, expired or revoked")
        .challenge("Bearer realm=\"plait\", error=\"invalid_token\""),
    InvalidShareLink => Row::new(Access, "invalid_share_link", 403,
        "a share link that is malformed, unknown, revoked or expired"),
    Forbidden => Row::new(Access, "forbidden", 403,
        "a valid credential without the right for this method and path"),
    NoSuchToken => Row::new(Access, "no_such_token", 404,
        "revoking a token that does not exist"),
    NoSuchShare => Row::new(Access, "no_such_share", 404,
        "revoking a share link that does not exist (or is not yours)"),
    AuthDisabled => Row::new(Access, "auth_disabled", 404,
        "`/.plait/tokens`, `/.plait/shares` or `/.plait/s/` with `--auth none`"),
    TooManyCredentials => Row::new(Access, "too_many_credentials", 409,
        "10,000 tokens or 100,000 share links exist already"),
    AuthThrottled => Row::new(Access, "auth_throttled", 429,
        "too many failed authentications from this client address, until the minute ends")
        .retry_after(FromError),

    // Server-side faults.
    Internal => Row::server("internal", 500, "internal server error",
        "stored bytes or access records could not be decoded, or the OS random source failed"),
    CorruptEncoding => Row::server("corrupt_encoding", 500, "internal server error",
        "stored history failed a consistency check while computing a read (never the client's fault)"),
    Overloaded => Row::server("overloaded", 503, RETRY_SHORTLY,
        "too many writes already waiting for missing parents on this document")
        .retry_after(Seconds(1)),
    StorageUnavailable => Row::server("storage_unavailable", 503, RETRY_SHORTLY,
        "the store failed; nothing of the write was acknowledged")
        .retry_after(Seconds(1)),
    Unavailable => Row::server("unavailable", 503, RETRY_SHORTLY,
        "the document's worker went away")
        .retry_after(Seconds(1)),
    InsufficientStorage => Row::server("insufficient_storage", 507,
        "the server's disk is full; nothing was written; retry later",
        "the disk is full; nothing of the write was acknowledged; writing resumes by itself when space returns")
        .retry_after(Seconds(1)),

    // The subscription decoder (client side): never answered.
    BadFraming => Row::new(Decoder, "bad_framing", 400,
        "a subscription stream that breaks the update grammar"),
    HeaderTooLarge => Row::new(Decoder, "header_too_large", 400,
        "an update's header block longer than the decoder's limit"),
}

// Every row is checked when the crate compiles.
const _: () = {
    let mut i = 0;
    while i < ErrorCode::ALL.len() {
        ErrorCode::ALL[i].row().check();
        i += 1;
    }
};
