//! The error-code table (`plait::http::ErrorCode`, `src/http/codes.rs`) against the error
//! values that reach it, the responses built from it, and the docs that list it.
//!
//! - every row is reached by some error value, and each value's response (status, reason
//!   phrase, `Plait-Error`, JSON body, `Retry-After`, `WWW-Authenticate`, message) is what
//!   its row says; a real server answers the same;
//! - codes are snake_case and unique, and the lower layers' `code()` names agree with them;
//! - the "Error codes" section of `spec/CONFORMANCE.md` is exactly the table rendered, so a
//!   code cannot be added without documenting it, nor documented without existing.
//!   `UPDATE_CONFORMANCE=1 cargo test --locked --test it error_codes` rewrites the section.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::response::IntoResponse;
use http_body_util::BodyExt;
use plait::auth::AuthError;
use plait::chunks::ChunkError;
use plait::document::DocError;
use plait::file::FileError;
use plait::http::{ApiError, ErrorCode, Fault, Group, RetryAfter, Row};
use plait::hub::{Hub, HubError, HubSettings, SubscribeRequest};
use plait::protocol::kind::Kind;
use plait::protocol::upload::UploadHeaderError;
use plait::protocol::{MergeType, ProtocolError, VersionSet};
use plait::store::{Committer, MemoryStore, Store, StoreError};
use plait::text::TextError;
use plait::upload::UploadError;
use serde_json::Value;

use crate::auth::{token_server, with_token, ADMIN};
use crate::support::client::request;
use crate::support::server::Engine;

/// Codes answered with two statuses, each long tested: the wire format refuses a declared
/// count over 10 000 with 400, the HTTP layer more than `--max-patches` patches with 413.
const SHARED_CODES: &[&str] = &["too_many_patches"];

/// Lower-layer `code()` names answered under another code.
const RENAMED: &[(&str, &str)] = &[("unknown_version", "version_unknown")];

fn vs(ids: &[&str]) -> VersionSet {
    VersionSet::new(ids.iter().map(|s| s.to_string()))
}

/// `HubError::TooManySubscriptions` from a real hub whose documents allow no subscriber
/// (its `SubscriptionLimit` is not nameable outside `hub`).
async fn too_many_subscriptions() -> HubError {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
    let settings = HubSettings { max_subscriptions_per_doc: 0, ..HubSettings::standard() };
    let hub = Hub::new(
        store.clone(),
        Committer::start(store).unwrap(),
        settings,
        plait::hub::FileStore::in_memory().unwrap(),
    );
    let req = SubscribeRequest {
        parents: None,
        merge_type: MergeType::Simpleton,
        peer: None,
        max_rebase_delay: Duration::from_secs(3),
    };
    let err = hub.subscribe("/limit", req).await.err().expect("a hub allowing no subscriber refuses one");
    hub.close();
    err
}

fn protocol_samples() -> Vec<ProtocolError> {
    let s = String::from;
    vec![
        ProtocolError::BadVersionHeader { value: s("\"x"), reason: s("unterminated string") },
        ProtocolError::BadContentRange { value: s("text [a:b]"), reason: "not a number" },
        ProtocolError::UnsupportedRangeUnit { unit: s("json") },
        ProtocolError::BadPatchCount { value: s("two"), reason: "not a number" },
        ProtocolError::TooManyPatches { count: 10_001, max: 10_000 },
        ProtocolError::BadPatches { reason: s("trailing bytes") },
        ProtocolError::PatchCountMismatch { declared: 2, found: 1 },
        ProtocolError::BadContentLength { value: s("-1") },
        ProtocolError::InvalidUtf8 { what: "the body" },
        ProtocolError::BadPeer { value: s(""), reason: "empty" },
        ProtocolError::UnknownMergeType { value: s("ot") },
        ProtocolError::BadHeartbeats { value: s("-5"), reason: "not a number" },
        ProtocolError::BadFraming { reason: s("no blank line") },
        ProtocolError::HeaderTooLarge { limit: 64 },
        ProtocolError::BodyTooLarge { len: 100, limit: 10 },
    ]
}

fn text_samples() -> Vec<TextError> {
    let s = String::from;
    vec![
        TextError::InvalidEventId { id: s("a") },
        TextError::InvalidAgent { agent: s("ROOT"), reason: "reserved" },
        TextError::CyclicParents { version: s("a-1"), parent: s("a-2") },
        TextError::UnknownVersion(vs(&["zz-1"])),
        TextError::RangeReversed { start: 3, end: 1 },
        TextError::RangeOutOfBounds { start: 0, end: 9, len: 5 },
        TextError::OverlappingPatches { first_start: 0, first_end: 2, second_start: 1, second_end: 3 },
        TextError::SeqTooLow { seq: 0, count: 3 },
        TextError::SeqGap { agent: s("a"), expected: 5, got: 9 },
        TextError::PrunedVersion { id: s("a-1") },
        TextError::CorruptEncoding(s("CRC mismatch")),
        TextError::TooLarge(s("seq")),
        TextError::InvalidHorizon { horizon: vs(&["a-1"]), event: s("b-0") },
        TextError::DigestMismatch { expected: s("AAAA"), actual: s("BBBB") },
    ]
}

/// One value of every error variant (both sides of the disk-full split of storage errors).
async fn samples() -> Vec<ApiError> {
    let s = String::from;
    let hub = [
        DocError::UnknownVersion(vs(&["zz-1", "yy-2"])).into(),
        DocError::Overloaded.into(),
        too_many_subscriptions().await,
        DocError::DocumentTooLarge { limit: 100 }.into(),
        DocError::Deleted.into(),
        DocError::Storage(Arc::new(StoreError::NoSpace(s("ENOSPC")))).into(),
        DocError::Storage(Arc::new(StoreError::Engine(s("I/O error")))).into(),
        DocError::Corrupt(s("bad snapshot")).into(),
        DocError::BehindHorizon { horizon: vs(&["~h1-4"]), snapshot: s("/notes/a") }.into(),
        DocError::CompactionRaced.into(),
        HubError::NotListed(s("\"a-1\"")),
        HubError::BadCheckpointName("empty"),
        HubError::CheckpointExists(s("draft")),
        HubError::TooManyCheckpoints(1000),
        HubError::NoSuchCheckpoint(s("draft")),
        HubError::Unavailable,
        HubError::FileTooLarge { limit: 1 << 30 },
        HubError::DigestMismatch { expected: s("00"), actual: s("ff") },
        HubError::Chunks(ChunkError::NoSpace(s("ENOSPC"))),
        HubError::Chunks(ChunkError::Engine(s("I/O error"))),
        DocError::KindMismatch { path: s("/a"), existing: Kind::Text, written: Kind::File }.into(),
        DocError::File(FileError::BadVersionId { id: s("a b"), why: "only visible ASCII" }).into(),
        DocError::File(FileError::VersionReused { id: s("1.5") }).into(),
        DocError::File(FileError::NothingToDelete).into(),
        DocError::File(FileError::NothingToRestore { id: s("1.5") }).into(),
    ];
    let auth = [
        AuthError::Missing,
        AuthError::Doubled,
        AuthError::InvalidToken,
        AuthError::InvalidLink,
        AuthError::Forbidden { action: "write", path: s("/private") },
        AuthError::Throttled { retry_after_secs: 42 },
        AuthError::NoSuchToken(s("t1")),
        AuthError::NoSuchShare(s("s1")),
        AuthError::Disabled,
        AuthError::BadRequest(s("bad label")),
        AuthError::TooMany { what: "tokens", limit: 10_000 },
        AuthError::Random(s("getrandom failed")),
        AuthError::Corrupt(s("bad record")),
        AuthError::Storage(StoreError::NoSpace(s("ENOSPC"))),
        AuthError::Storage(StoreError::Closed),
    ];
    let api = [
        ApiError::DuplicateHeader("Version"),
        ApiError::VersionWithSubscribe,
        ApiError::MultipleVersionIds(s("\"a-1\", \"b-2\"")),
        ApiError::BodyTooLarge { limit: 1024 },
        ApiError::TooManyIds { header: "Parents", count: 4, limit: 3 },
        ApiError::TooManyPatches { count: 3, limit: 2 },
        ApiError::BodyTimeout { secs: 10 },
        ApiError::BadBody(s("connection reset")),
        ApiError::MethodNotAllowed(s("BREW")),
        ApiError::BadTransferEncoding(s("gzip")),
        ApiError::BadHost(s("an HTTP/1.1 request needs a Host header")),
        ApiError::BadPath("empty segment"),
        ApiError::PathTooLong { len: 9000, limit: 8192 },
        ApiError::BadJson(s("expected a list")),
        ApiError::BadQuery(s("limit")),
        ApiError::BadCursor(s("not a cursor: \"x\"")),
        ApiError::BadFolder("a folder path has no empty segment (//)"),
        ApiError::NotFound(s("/.plait/nothing")),
        ApiError::MultiplexingNotSupported,
        ApiError::RangeNotSatisfiable { range: s("bytes=900-"), len: 10 },
        ApiError::FileDeleted { path: s("/a.jpg"), version: s("1.5") },
        ApiError::BadChunkList(s("expected a list")),
        ApiError::ChunkTooLarge { max: 4 << 20 },
        ApiError::ChunkIdMismatch { said: s("00"), actual: s("ff") },
        ApiError::NotAFile(s("/a")),
        ApiError::NotText(s("/a.jpg")),
        HubError::ChunksMissing(vec![plait::chunks::ChunkId::of(b"x")]).into(),
        HubError::ChunkLength { id: s("00"), said: 5, stored: 4 }.into(),
        HubError::Upload(UploadError::NotFound(s("00"))).into(),
        HubError::Upload(UploadError::OffsetMismatch { sent: 1, held: 2 }).into(),
        HubError::Upload(UploadError::PastLength { length: 1, reached: 2 }).into(),
        HubError::Upload(UploadError::LengthMismatch { declared: 1, other: 2 }).into(),
        HubError::Upload(UploadError::TooLarge { limit: 1 }).into(),
        HubError::Upload(UploadError::TooMany { limit: 1 }).into(),
        HubError::Upload(UploadError::ChecksumMismatch { algorithm: "sha1" }).into(),
        HubError::Upload(UploadError::Completed).into(),
        HubError::Upload(UploadError::Superseded(3)).into(),
        HubError::Upload(UploadError::BadTarget(s("x"))).into(),
        HubError::Upload(UploadError::BadConcat(s("x"))).into(),
        HubError::Upload(UploadError::WrongContentType("application/offset+octet-stream")).into(),
        HubError::Upload(UploadError::NoDirectUploads).into(),
        HubError::Upload(UploadError::BadGrant).into(),
        HubError::Upload(UploadError::BadParts(s("x"))).into(),
        HubError::Upload(UploadError::UseMultipart).into(),
        UploadHeaderError::UnsupportedVersion(s("0.2.2")).into(),
        UploadHeaderError::BadNumber { header: "Upload-Length", value: s("-1") }.into(),
        UploadHeaderError::BadMetadata("x").into(),
        UploadHeaderError::BadChecksum("x").into(),
        UploadHeaderError::UnsupportedChecksum(s("md5")).into(),
        UploadHeaderError::BadConcat("x").into(),
        UploadHeaderError::BadComplete(s("yes")).into(),
        UploadHeaderError::UnsupportedInterop(99).into(),
    ];
    let mut all: Vec<ApiError> = Vec::new();
    all.extend(protocol_samples().into_iter().map(ApiError::from));
    all.extend(text_samples().into_iter().map(ApiError::from));
    all.extend(hub.into_iter().map(ApiError::from));
    all.extend(auth.into_iter().map(ApiError::from));
    all.extend(api);
    all
}

/// What a client sees of an error response.
struct Seen {
    status: u16,
    reason: Option<String>,
    plait_error: Option<String>,
    retry_after: Option<String>,
    challenge: Option<String>,
    body: Value,
}

async fn seen(e: ApiError) -> Seen {
    let res = e.into_response();
    let header = |name: &str| res.headers().get(name).map(|v| v.to_str().unwrap().to_string());
    let (plait_error, retry_after, challenge) =
        (header("plait-error"), header("retry-after"), header("www-authenticate"));
    assert_eq!(header("content-type").as_deref(), Some("application/json"));
    let reason =
        res.extensions().get::<hyper::ext::ReasonPhrase>().map(|r| String::from_utf8_lossy(r.as_bytes()).into());
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    Seen { status, reason, plait_error, retry_after, challenge, body: serde_json::from_slice(&body).unwrap() }
}

/// The `Retry-After` value `row` asks for, given the seconds the error carries.
fn retry_after(row: &Row, from_error: Option<u64>) -> Option<String> {
    match row.retry_after {
        RetryAfter::No => None,
        RetryAfter::Seconds(n) => Some(n.to_string()),
        RetryAfter::FromError => {
            Some(from_error.expect("a FromError row reached by an error without seconds").to_string())
        }
    }
}

#[tokio::test]
async fn every_row_is_reached_and_answered_as_it_says() {
    let mut reached = BTreeSet::new();
    for e in samples().await {
        let (code, message, what) = (e.code(), e.to_string(), format!("{e:?}"));
        let throttle = if let ApiError::Auth(AuthError::Throttled { retry_after_secs }) = &e {
            Some(*retry_after_secs)
        } else {
            None
        };
        let row = code.row();
        reached.insert(format!("{} {}", row.code, row.status));
        let got = seen(e).await;
        assert_eq!(got.status, row.status, "{what}");
        assert_eq!(got.reason.as_deref(), row.reason, "{what}");
        assert_eq!(got.plait_error.as_deref(), Some(row.code), "{what}");
        assert_eq!(got.body["error"], row.code, "{what}");
        assert_eq!(got.retry_after, retry_after(&row, throttle), "{what}");
        assert_eq!(got.challenge.as_deref(), row.challenge, "{what}");
        let want_message = match row.fault {
            Fault::Client => message.as_str(),
            Fault::Server(generic) => generic,
        };
        assert_eq!(got.body["message"], want_message, "{what}");
    }
    let rows: BTreeSet<String> =
        ErrorCode::ALL.iter().map(|c| format!("{} {}", c.row().code, c.row().status)).collect();
    let dead: Vec<_> = rows.difference(&reached).collect();
    assert!(dead.is_empty(), "rows no error value reaches (add a sample, or remove the row): {dead:?}");
}

#[test]
fn codes_are_snake_case_unique_and_rows_consistent() {
    let mut seen: Vec<&Row> = Vec::new();
    let rows: Vec<Row> = ErrorCode::ALL.iter().map(|c| c.row()).collect();
    for row in &rows {
        let words: Vec<&str> = row.code.split('_').collect();
        let snake =
            words.iter().all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
                && row.code.starts_with(|c: char| c.is_ascii_lowercase());
        assert!(snake, "{} is not snake_case", row.code);
        for other in seen.iter().filter(|o| o.code == row.code) {
            assert!(SHARED_CODES.contains(&row.code), "{} is in the table twice", row.code);
            assert_ne!(other.status, row.status, "{} twice with one status: make it one row", row.code);
        }
        seen.push(row);
        let one_line = !row.meaning.is_empty() && !row.meaning.contains(['\n', '|']);
        assert!(one_line, "{}: the meaning must be one line without '|' (it is a table cell)", row.code);
        // Server faults are 5xx and listed together; the reverse is not true (550, 501).
        assert_eq!(matches!(row.fault, Fault::Server(_)), row.group == Group::Server, "{}", row.code);
        assert!(row.group != Group::Server || row.status >= 500, "{}", row.code);
    }
    for shared in SHARED_CODES {
        assert!(rows.iter().filter(|r| r.code == *shared).count() > 1, "{shared} is no longer shared: drop it");
    }
}

#[test]
fn lower_layer_code_names_are_the_answered_codes() {
    let lower: Vec<(&str, ApiError)> = (protocol_samples().into_iter().map(|e| (e.code(), ApiError::from(e))))
        .chain(text_samples().into_iter().map(|e| (e.code(), ApiError::from(e))))
        .collect();
    for (name, e) in lower {
        let answered = e.code().row().code;
        let renamed = RENAMED.iter().find(|(from, _)| *from == name).map(|(_, to)| *to);
        assert_eq!(answered, renamed.unwrap_or(name), "{e:?}");
    }
}

/// A real server answers as the rows say, for a request of each kind of extra header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_server_answers_as_the_rows_say() {
    let s = token_server(Engine::Memory, |c| c.auth_failures_per_minute = 1).await;
    let a = s.addr;
    let bad = format!("{}x", &ADMIN[..ADMIN.len() - 1]);
    let cases = [
        ("version_unknown", with_token(a, ADMIN, "GET", "/codes/d", &[("Version", "\"nobody-5\"")], b"").await),
        ("unknown_merge_type", with_token(a, ADMIN, "GET", "/codes/d", &[("Merge-Type", "nope")], b"").await),
        ("multiplexing_not_supported", with_token(a, ADMIN, "POST", "/.well-known/multiplexer/x", &[], b"").await),
        ("auth_required", request(a, "GET", "/codes/d", &[], b"").await),
        ("invalid_token", with_token(a, &bad, "GET", "/codes/d", &[], b"").await),
        ("auth_throttled", with_token(a, &bad, "GET", "/codes/d", &[], b"").await),
    ];
    for (code, r) in cases {
        let row = ErrorCode::ALL.iter().map(|c| c.row()).find(|row| row.code == code).unwrap();
        let what = format!("{code}: {r:?}");
        assert_eq!((r.status, r.header("plait-error")), (row.status, Some(code)), "{what}");
        assert_eq!(r.json()["error"], code, "{what}");
        let standard = axum::http::StatusCode::from_u16(row.status).unwrap().canonical_reason().unwrap_or("");
        assert_eq!(r.reason, row.reason.unwrap_or(standard), "{what}");
        assert_eq!(r.header("www-authenticate"), row.challenge, "{what}");
        match row.retry_after {
            RetryAfter::No => assert_eq!(r.header("retry-after"), None, "{what}"),
            RetryAfter::Seconds(n) => assert_eq!(r.header("retry-after"), Some(n.to_string().as_str()), "{what}"),
            RetryAfter::FromError => {
                let secs: u64 = r.header("retry-after").unwrap().parse().unwrap();
                assert!((1..=60).contains(&secs), "{what}");
            }
        }
        // A client's fault keeps its own message (the 501 once got "internal server error").
        let message = r.json()["message"].as_str().unwrap().to_string();
        let generic = ErrorCode::ALL.iter().any(|c| matches!(c.row().fault, Fault::Server(g) if g == message));
        assert_eq!(generic, matches!(row.fault, Fault::Server(_)), "{what}");
    }
    s.stop().await;
}

// ---- The "Error codes" section of spec/CONFORMANCE.md, rendered from the table ----

const BEGIN: &str = "<!-- BEGIN error codes: generated from src/http/codes.rs by tests/it/error_codes.rs -->\n";
const END: &str = "<!-- END error codes -->\n";

/// The paragraph that introduces a group's table.
fn intro(group: Group) -> &'static str {
    match group {
        Group::Wire => "From the wire format (`ProtocolError`, `src/protocol/error.rs`):",
        Group::Text => {
            "From the text layer (`TextError`, `src/text/error.rs`; its `UnknownVersion` is answered as \
             `version_unknown`, below):"
        }
        Group::Request => "From the HTTP layer (`ApiError`, `src/http/error.rs`):",
        Group::Document => "From documents (`HubError`, `src/hub/error.rs`):",
        Group::Upload => "From resumable uploads (`UploadError`, `src/upload/error.rs`, and `UploadHeaderError`, `src/protocol/upload.rs`; see docs/UPLOADS.md):",
        Group::Access => "From access control (`AuthError`, `src/auth/error.rs`; see docs/ACCESS.md):",
        Group::Server => {
            "Server-side faults, from any layer: logged once by the server, answered with a generic message \
             (the real one may name paths or internals):"
        }
        Group::Decoder => {
            "**Never answered by the server**: errors of the subscription-stream decoder \
             (`protocol::Decoder`), which clients, tests and benchmarks run on what they receive. Its \
             `body_too_large` (an update body over its limit) is answered as the `413` above if it ever \
             reached a response."
        }
    }
}

/// The Status cell: the status, a non-standard reason phrase, and the headers it implies.
fn status_cell(row: &Row) -> String {
    let mut cell = row.status.to_string();
    if let Some(reason) = row.reason {
        cell += &format!(" `{reason}`");
    }
    match row.retry_after {
        RetryAfter::No => {}
        RetryAfter::Seconds(n) => cell += &format!(" + `Retry-After: {n}`"),
        RetryAfter::FromError => cell += " + `Retry-After: <seconds>`",
    }
    if let Some(challenge) = row.challenge {
        cell += &format!(" + `WWW-Authenticate: {challenge}`");
    }
    cell
}

/// The section's generated part, between [`BEGIN`] and [`END`].
fn render() -> String {
    let mut out = String::from(BEGIN);
    for &group in Group::ALL {
        out += &format!("\n{}\n\n", intro(group));
        out += match group {
            Group::Decoder => "| Code | Meaning |\n|---|---|\n",
            Group::Server => "| Code | Status | Meaning | Message |\n|---|---|---|---|\n",
            _ => "| Code | Status | Meaning |\n|---|---|---|\n",
        };
        for row in ErrorCode::ALL.iter().map(|c| c.row()).filter(|r| r.group == group) {
            out += &match (group, row.fault) {
                (Group::Decoder, _) => format!("| `{}` | {} |\n", row.code, row.meaning),
                (_, Fault::Server(generic)) => {
                    format!("| `{}` | {} | {} | \"{generic}\" |\n", row.code, status_cell(&row), row.meaning)
                }
                (_, Fault::Client) => format!("| `{}` | {} | {} |\n", row.code, status_cell(&row), row.meaning),
            };
        }
    }
    out + "\n" + END
}

#[test]
fn conformance_lists_exactly_the_error_code_table() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("spec/CONFORMANCE.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let start = doc.find(BEGIN).expect("spec/CONFORMANCE.md lost its BEGIN error codes marker");
    let end = doc[start..].find(END).expect("spec/CONFORMANCE.md lost its END error codes marker") + start + END.len();
    let (written, wanted) = (&doc[start..end], render());
    if written == wanted {
        return;
    }
    if std::env::var_os("UPDATE_CONFORMANCE").is_some() {
        std::fs::write(&path, format!("{}{wanted}{}", &doc[..start], &doc[end..])).unwrap();
        return;
    }
    panic!(
        "spec/CONFORMANCE.md's error codes differ from src/http/codes.rs; if the table is right, run\n  \
         UPDATE_CONFORMANCE=1 cargo test --locked --test it error_codes\nto rewrite the section:\n{}",
        plait::text::unified(written, &wanted, "spec/CONFORMANCE.md", "src/http/codes.rs")
    );
}
