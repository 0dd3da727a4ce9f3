//! Malformed requests (issue 3, item 3): several hundred broken or hostile requests, sent as
//! raw bytes to the real `plait` binary (RocksDB in a temp dir, `--max-body-bytes 65536`).
//!
//! For every case: a complete response arrives within [`BOUND`]; it is a 4xx (309 only for
//! well-formed but unknown versions), never a 5xx, a hang or a connection closed without an
//! answer. When our code answers, the body is `{"error": <code>, "message": <text>}` and
//! `Plait-Error` repeats the code. Requests that hyper's HTTP/1 parser refuses before any of
//! our code runs get hyper's own empty 4xx: those are exactly the [`Expect::Hyper`] cases (and
//! [`Expect::HeaderLimitOr`] when a header limit is hit), printed by name at the end. A few
//! requests that look malformed but are not (HTTP/1.0 without `Host`, an absolute-form target
//! naming another host) must be served normally: [`Expect::Served`].
//!
//! Many malformed writes aim at one control document; every 50 cases the health endpoint and
//! a valid PUT + GET on that document must work, and its text and version must be exactly what
//! the valid writes made. The whole set then runs 3 more times (8 connections at a time) and
//! the server's resident memory must plateau.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use crate::support::client::request;
use crate::support::server::plait_binary;
use crate::support::Response as Resp;

/// Every case must be fully answered within this.
const BOUND: Duration = Duration::from_secs(5);
/// The document most malformed writes aim at.
const CTL: &str = "/malformed/control";
/// The control document's first version: "hello".
const CTL_V: &[u8] = b"\"ctl-4\"";
/// `--max-body-bytes` of the child.
const MAX_BODY: usize = 65536;
/// `--parents-wait-ms` of the child: how long a write with unknown parents waits before 309.
const PARENTS_WAIT_MS: &str = "200";

/// What one response on a case's connection must be.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// Answered by our handlers: this status, the JSON body and `Plait-Error` with this code.
    Api(u16, &'static str),
    /// Refused by hyper's HTTP/1 parser before our code runs: this status, an empty body,
    /// `connection: close`, and the connection then closes.
    Hyper(u16),
    /// Refused by hyper with either status: an over-long request line is hyper's 414, or 431
    /// when the server's header-size limit (which counts the request line) is lower.
    HyperOneOf(u16, u16),
    /// An oversized header: hyper's header-size limit (431, empty body, closed) if the server
    /// has one that small, else our answer.
    HeaderLimitOr(u16, &'static str),
    /// Both `Content-Length` and `Transfer-Encoding: chunked`: hyper frames the body by the
    /// chunks, removes `Content-Length` (so our code cannot see the conflict), lets our handler
    /// answer, then closes the connection. `None`: a success (not a 4xx!) is what happens.
    TeOverCl(u16, Option<&'static str>),
    /// Looks malformed but is not (HTTP/1.0 without `Host`, an absolute-form target whose
    /// authority differs from `Host`): served normally, with this status and no error.
    Served(u16),
}

impl Expect {
    fn allowed_status(self) -> bool {
        let s = match self {
            Expect::Api(s, _) | Expect::Hyper(s) | Expect::HeaderLimitOr(s, _) => s,
            Expect::HyperOneOf(a, b) => a.max(b),
            Expect::TeOverCl(s, Some(_)) => s,
            Expect::TeOverCl(s, None) | Expect::Served(s) => return s == 200,
        };
        (400..500).contains(&s) || s == 309
    }
}

struct Case {
    name: String,
    bytes: Vec<u8>,
    /// Half-close our side after sending: the server sees EOF (a body shorter than declared).
    shutdown: bool,
    /// The responses expected on this one connection, in order.
    expect: Vec<Expect>,
}

/// Who answered a case, for the summary.
#[derive(Clone, Debug, PartialEq)]
enum Answer {
    Ours,
    Hyper(u16),
}

// ---------------------------------------------------------------------------------------------
// Building requests

/// A request with exactly the given headers after `Host` (no `Content-Length` added).
fn raw(method: &str, target: &[u8], headers: &[(&str, &[u8])], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target);
    out.extend_from_slice(b" HTTP/1.1\r\nHost: test\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// A request with a correct `Content-Length` (always for PUT/POST/PATCH).
fn req(method: &str, target: &str, headers: &[(&str, &[u8])], body: &[u8]) -> Vec<u8> {
    let len = body.len().to_string();
    let mut all = headers.to_vec();
    if !body.is_empty() || matches!(method, "PUT" | "POST" | "PATCH") {
        all.push(("Content-Length", len.as_bytes()));
    }
    raw(method, target.as_bytes(), &all, body)
}

/// One `Patches: N` patch.
fn patch(range: &str, content: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\nContent-Range: {range}\r\n\r\n", content.len()).into_bytes();
    out.extend_from_slice(content);
    out
}

fn join(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A JSON-string id of `n` bytes of agent, then `-1`.
fn long_id(n: usize) -> Vec<u8> {
    format!("\"{}-1\"", "a".repeat(n)).into_bytes()
}

struct Cases(Vec<Case>);

impl Cases {
    fn add(&mut self, name: impl Into<String>, bytes: Vec<u8>, expect: Expect) {
        self.0.push(Case { name: name.into(), bytes, shutdown: false, expect: vec![expect] });
    }
    fn add_seq(&mut self, name: impl Into<String>, bytes: Vec<u8>, expect: &[Expect]) {
        self.0.push(Case { name: name.into(), bytes, shutdown: false, expect: expect.to_vec() });
    }
    fn add_shut(&mut self, name: impl Into<String>, bytes: Vec<u8>, expect: Expect) {
        self.0.push(Case { name: name.into(), bytes, shutdown: true, expect: vec![expect] });
    }
}

use Expect::{Api, HeaderLimitOr, Hyper, HyperOneOf, Served, TeOverCl};

/// Every malformed request, named. Writes aim at the control document and would change it if
/// any malformed part were ignored (ranges and patches are valid against `ctl-4` = "hello").
fn all_cases() -> Vec<Case> {
    let mut c = Cases(Vec::new());
    versions(&mut c);
    ranges(&mut c);
    patches(&mut c);
    small_headers(&mut c);
    duplicates(&mut c);
    methods_and_paths(&mut c);
    framing(&mut c);
    hyper_level(&mut c);
    hosts(&mut c);
    files(&mut c);
    folders(&mut c);
    c.0
}

/// Folders (paths ending in `/`, issue 16): bad cursors however they are sent, empty segments,
/// bad query parameters, writes to a folder.
fn folders(c: &mut Cases) {
    let f = "/malformed/";
    let sub: (&str, &[u8]) = ("Subscribe", b"true");
    let sse: (&str, &[u8]) = ("Accept", b"text/event-stream");
    c.add("folder/since not a cursor", req("GET", "/malformed/?since=zz", &[], b""), Api(400, "bad_cursor"));
    c.add("folder/since short epoch", req("GET", "/malformed/?since=c0ffee-1", &[], b""), Api(400, "bad_cursor"));
    c.add("folder/Parents not a cursor", req("GET", f, &[sub, ("Parents", b"\"x\"")], b""), Api(400, "bad_cursor"));
    let two: &[u8] = b"\"00c0ffee00c0ffee-1\", \"00c0ffee00c0ffee-2\"";
    c.add("folder/two Parents", req("GET", f, &[sub, ("Parents", two)], b""), Api(400, "bad_cursor"));
    let nope: (&str, &[u8]) = ("Last-Event-ID", b"nope");
    c.add("folder/Last-Event-ID not a cursor", req("GET", f, &[sse, nope], b""), Api(400, "bad_cursor"));
    c.add("folder/Last-Event-ID on a document", req("GET", CTL, &[sse, nope], b""), Api(400, "bad_cursor"));
    c.add("folder/wait without a cursor", req("GET", "/malformed/?wait=1", &[], b""), Api(400, "bad_cursor"));
    c.add("folder/empty segment", req("GET", "/a//", &[], b""), Api(400, "bad_folder"));
    c.add("folder/empty inner segment", req("GET", "/malformed//x/", &[], b""), Api(400, "bad_folder"));
    c.add("folder/limit=0", req("GET", "/malformed/?limit=0", &[], b""), Api(400, "bad_query"));
    c.add("folder/limit too large", req("GET", "/malformed/?limit=10001", &[], b""), Api(400, "bad_query"));
    c.add("folder/unknown parameter", req("GET", "/malformed/?bogus=1", &[], b""), Api(400, "bad_query"));
    let neg = "/malformed/?since=00c0ffee00c0ffee-0&wait=-1";
    c.add("folder/negative wait", req("GET", neg, &[], b""), Api(400, "bad_query"));
    for method in ["PUT", "DELETE", "PATCH", "POST"] {
        c.add(format!("folder/{method}"), req(method, f, &[], b"x"), Api(405, "method_not_allowed"));
    }
}

/// The control file: created with these bytes as version `FILE_V`; no case may change it.
const FILE: &str = "/malformed/file";
const FILE_V: &str = "\"1.000\"";
const FILE_BYTES: &[u8] = b"\0\x01\x02control file bytes";

/// File resources: bad ranges, ids, digests, kinds, and the delta exchange's endpoints.
fn files(c: &mut Cases) {
    let aww: (&str, &[u8]) = ("Merge-Type", b"aww");
    c.add(
        "file/range beyond the end",
        req("GET", FILE, &[("Range", b"bytes=999999-")], b""),
        Api(416, "range_not_satisfiable"),
    );
    c.add("file/GET bad id", req("GET", FILE, &[("Version", b"\"a b\"")], b""), Api(400, "bad_file_version"));
    c.add("file/GET unknown version", req("GET", FILE, &[("Version", b"\"9.5\"")], b""), Api(309, "version_unknown"));
    c.add("file/PUT bad id", req("PUT", FILE, &[aww, ("Version", b"\"a b\"")], b"x"), Api(400, "bad_file_version"));
    let long = format!("\"{}\"", "9".repeat(201));
    c.add(
        "file/PUT id too long",
        req("PUT", FILE, &[aww, ("Version", long.as_bytes())], b"x"),
        Api(400, "bad_file_version"),
    );
    c.add(
        "file/PUT unknown parents",
        req("PUT", FILE, &[aww, ("Parents", b"\"8.5\"")], b"x"),
        Api(309, "version_unknown"),
    );
    c.add(
        "file/PUT reused id",
        req("PUT", FILE, &[aww, ("Version", FILE_V.as_bytes())], b"other"),
        Api(409, "version_reused"),
    );
    c.add("file/PUT dt", req("PUT", FILE, &[("Merge-Type", b"dt")], b"x"), Api(409, "kind_mismatch"));
    c.add(
        "file/PATCH text range",
        req("PATCH", FILE, &[("Content-Range", b"text [0:0]")], b"x"),
        Api(409, "kind_mismatch"),
    );
    let wrong = b"sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:";
    c.add("file/PUT wrong digest", req("PUT", FILE, &[aww, ("Repr-Digest", wrong)], b"x"), Api(400, "digest_mismatch"));
    c.add("file/binary onto text", req("PUT", CTL, &[], b"\0\xff"), Api(409, "kind_mismatch"));
    let short = raw("PUT", FILE.as_bytes(), &[aww, ("Content-Length", b"100")], b"only ten b");
    c.add_shut("file/PUT body cut short", short, Api(400, "bad_body"));
    let missing = "/.plait/missing/malformed/file";
    c.add("file/missing not JSON", req("POST", missing, &[], b"{"), Api(400, "bad_chunk_list"));
    c.add("file/missing bad id", req("POST", missing, &[], b"{\"chunks\": [\"zz\"]}"), Api(400, "bad_chunk_list"));
    c.add(
        "file/missing extra field",
        req("POST", missing, &[], b"{\"chunks\": [], \"x\": 1}"),
        Api(400, "bad_chunk_list"),
    );
    let zero = "0".repeat(64);
    c.add("file/chunk without id", req("PUT", "/.plait/chunk/malformed/file", &[], b"x"), Api(400, "bad_query"));
    let wrong_id = format!("/.plait/chunk/malformed/file?id={zero}");
    c.add("file/chunk wrong id", req("PUT", &wrong_id, &[], b"x"), Api(400, "chunk_id_mismatch"));
    let commit = "/.plait/commit/malformed/file";
    let list = format!("{{\"chunks\": [{{\"id\": \"{zero}\", \"len\": 1}}]}}");
    c.add("file/commit without digest", req("POST", commit, &[], list.as_bytes()), Api(400, "bad_chunk_list"));
    c.add(
        "file/commit missing chunk",
        req("POST", commit, &[("Repr-Digest", wrong)], list.as_bytes()),
        Api(409, "chunks_missing"),
    );
    c.add("file/chunks of text", req("GET", "/.plait/chunks-of/malformed/control", &[], b""), Api(404, "not_a_file"));
    c.add("file/diff of a file", req("GET", "/.plait/diff/malformed/file", &[], b""), Api(404, "not_text"));
}

/// `Version` / `Parents`: bad JSON, bad ids, unknown, cyclic, with `Subscribe`.
fn versions(c: &mut Cases) {
    const BAD_JSON: &[(&str, &[u8])] = &[
        ("unquoted", b"a-1"),
        ("unterminated", b"\"a-1"),
        ("open-bracket", b"[oops"),
        ("number", b"1"),
        ("float", b"1e999"),
        ("object", b"{\"a\":1}"),
        ("nested-array", b"[\"a-1\"]"),
        ("bracket-injection", b"\"a-1\"]"),
        ("trailing-comma", b"\"a-1\","),
        ("missing-comma", b"\"a-1\" \"b-2\""),
        ("mixed-types", b"\"a-1\", 2"),
        ("null", b"null"),
        ("true", b"true"),
        ("single-quotes", b"'a-1'"),
        ("empty-id", b"\"\""),
        ("empty-id-in-list", b"\"a-1\", \"\""),
        ("invalid-utf8", b"\"a\xff-1\""),
        ("raw-tab-in-string", b"\"a\tb-1\""),
        ("lone-surrogate", b"\"\\ud800-1\""),
        ("bad-escape", b"\"a\\x-1\""),
        ("sf-display-string", b"%\"caf%c3%a9-1\""),
    ];
    // Well-formed JSON, but ids no event can have.
    let too_long_agent = long_id(50);
    let long_utf8_agent = format!("\"{}-0\"", "\u{e9}".repeat(25)).into_bytes();
    let bad_ids: Vec<(&str, &[u8], &'static str)> = vec![
        ("id-without-seq", b"\"a\"", "invalid_event_id"),
        ("id-empty-seq", b"\"a-\"", "invalid_event_id"),
        ("id-alpha-seq", b"\"a-x\"", "invalid_event_id"),
        ("id-leading-zero", b"\"a-01\"", "invalid_event_id"),
        ("id-plus-seq", b"\"a-+1\"", "invalid_event_id"),
        ("seq-overflow-u64", b"\"a-99999999999999999999\"", "invalid_event_id"),
        ("seq-over-2^53", b"\"a-9007199254740992\"", "invalid_event_id"),
        ("root-agent", b"\"ROOT-0\"", "invalid_agent"),
        ("empty-agent", b"\"-0\"", "invalid_agent"),
        ("agent-50-bytes", &too_long_agent, "invalid_agent"),
        ("agent-50-utf8-bytes", &long_utf8_agent, "invalid_agent"),
    ];
    for (name, value) in BAD_JSON {
        add_version_slots(c, &format!("version/bad-json/{name}"), value, "bad_version_header");
    }
    for (name, value, code) in &bad_ids {
        add_version_slots(c, &format!("version/bad-id/{name}"), value, code);
    }
    // 100 KB values: our answer unless the server's header limit is lower (then hyper's 431).
    let huge_id = long_id(100_000);
    let mut huge_unterminated = b"\"".to_vec();
    huge_unterminated.extend(std::iter::repeat_n(b'a', 100_000));
    for (slot, headers) in [("GET Version", "Version"), ("GET Parents", "Parents")] {
        let r = req("GET", CTL, &[(headers, &huge_id)], b"");
        c.add(format!("version/huge-100kb-id/{slot}"), r, HeaderLimitOr(400, "invalid_agent"));
        let r = req("GET", CTL, &[(headers, &huge_unterminated)], b"");
        c.add(format!("version/huge-100kb-unterminated/{slot}"), r, HeaderLimitOr(400, "bad_version_header"));
    }
    let r = req("PUT", CTL, &[("Version", &huge_id), ("Parents", CTL_V), ("Content-Range", b"text [5:5]")], b"x");
    c.add("version/huge-100kb-id/PUT Version", r, HeaderLimitOr(400, "invalid_agent"));

    // Unknown but well-formed: 309 version_unknown (a write after --parents-wait-ms).
    c.add(
        "version/unknown/GET Version",
        req("GET", CTL, &[("Version", b"\"nobody-5\"")], b""),
        Api(309, "version_unknown"),
    );
    c.add(
        "version/unknown/GET Parents",
        req("GET", CTL, &[("Parents", b"\"nobody-5\"")], b""),
        Api(309, "version_unknown"),
    );
    c.add(
        "version/unknown/HEAD Version",
        req("HEAD", CTL, &[("Version", b"\"nobody-5\"")], b""),
        Api(309, "version_unknown"),
    );
    c.add(
        "version/unknown/GET Version known+unknown",
        req("GET", CTL, &[("Version", b"\"ctl-4\", \"nobody-1\"")], b""),
        Api(309, "version_unknown"),
    );
    c.add(
        "version/unknown/GET Version escaped NUL agent",
        req("GET", CTL, &[("Version", b"\"\\u0000-0\"")], b""),
        Api(309, "version_unknown"),
    );
    c.add(
        "version/unknown/GET Subscribe dt Parents",
        req("GET", CTL, &[("Subscribe", b"true"), ("Merge-Type", b"dt"), ("Parents", b"\"nobody-5\"")], b""),
        Api(309, "version_unknown"),
    );
    c.add(
        "version/unknown/PUT Parents",
        req("PUT", CTL, &[("Parents", b"\"nobody-5\""), ("Content-Range", b"text [0:0]")], b"x"),
        Api(309, "version_unknown"),
    );
    c.add(
        "version/unknown/PUT Parents known+unknown",
        req(
            "PUT",
            CTL,
            &[("Version", b"\"m-0\""), ("Parents", b"\"ctl-4\", \"nobody-5\""), ("Content-Range", b"text [0:0]")],
            b"x",
        ),
        Api(309, "version_unknown"),
    );

    // Cyclic: Parents at or after the write's own Version.
    for (name, version, parents) in [
        ("self-unknown", &b"\"cyc-0\""[..], &b"\"cyc-0\""[..]),
        ("self-known", b"\"ctl-4\"", b"\"ctl-4\""),
        ("later-same-agent", b"\"cyc-1\"", b"\"ctl-4\", \"cyc-3\""),
        ("later-known-agent", b"\"ctl-4\"", b"\"ctl-9\""),
    ] {
        let r = req("PUT", CTL, &[("Version", version), ("Parents", parents), ("Content-Range", b"text [0:0]")], b"x");
        c.add(format!("version/cyclic/{name}"), r, Api(400, "cyclic_parents"));
    }
    // A write names one event (its last).
    for (name, version) in [
        ("two-ids", &b"\"m-0\", \"m-1\""[..]),
        ("two-agents", b"\"m-0\", \"n-0\""),
        ("three-ids", b"\"m-0\", \"n-0\", \"o-0\""),
    ] {
        let r = req("PUT", CTL, &[("Version", version), ("Parents", CTL_V), ("Content-Range", b"text [0:0]")], b"x");
        c.add(format!("version/multiple-ids/{name}"), r, Api(400, "multiple_version_ids"));
    }
    // Version with Subscribe.
    for (name, headers, expect) in [
        ("known", vec![("Version", CTL_V)], Api(400, "version_with_subscribe")),
        ("unknown", vec![("Version", &b"\"nobody-1\""[..])], Api(400, "version_with_subscribe")),
        ("bad-json", vec![("Version", &b"a-1"[..])], Api(400, "bad_version_header")),
        ("with-parents", vec![("Version", CTL_V), ("Parents", CTL_V)], Api(400, "version_with_subscribe")),
        ("parents-root-agent", vec![("Parents", &b"\"ROOT-0\""[..])], Api(400, "invalid_agent")),
        ("parents-bad-id", vec![("Parents", &b"\"a\""[..])], Api(400, "invalid_event_id")),
    ] {
        let mut all = vec![("Subscribe", &b"true"[..])];
        all.extend(headers);
        c.add(format!("version/subscribe/{name}"), req("GET", CTL, &all, b""), expect);
    }
}

/// One bad `Version`/`Parents` value in each slot: GET Version, GET Parents, PUT Version,
/// PUT Parents (the PUT is otherwise a valid insert into "hello").
fn add_version_slots(c: &mut Cases, name: &str, value: &[u8], code: &'static str) {
    c.add(format!("{name}/GET Version"), req("GET", CTL, &[("Version", value)], b""), Api(400, code));
    c.add(format!("{name}/GET Parents"), req("GET", CTL, &[("Parents", value)], b""), Api(400, code));
    let put = req("PUT", CTL, &[("Version", value), ("Parents", CTL_V), ("Content-Range", b"text [5:5]")], b"x");
    c.add(format!("{name}/PUT Version"), put, Api(400, code));
    let put = req("PUT", CTL, &[("Parents", value), ("Content-Range", b"text [0:0]")], b"x");
    c.add(format!("{name}/PUT Parents"), put, Api(400, code));
}

/// `Content-Range` on a write against "hello" (`ctl-4`, 5 code points).
fn ranges(c: &mut Cases) {
    let cases: &[(&str, &[u8], &'static str)] = &[
        ("empty", b"", "bad_content_range"),
        ("unit-only", b"text", "bad_content_range"),
        ("no-brackets", b"text 1:2", "bad_content_range"),
        ("open-bracket", b"text [1:2", "bad_content_range"),
        ("close-bracket", b"text 1:2]", "bad_content_range"),
        ("one-bound", b"text [1]", "bad_content_range"),
        ("three-bounds", b"text [1:2:3]", "bad_content_range"),
        ("missing-start", b"text [:2]", "bad_content_range"),
        ("missing-end", b"text [1:]", "bad_content_range"),
        ("only-colon", b"text [ : ]", "bad_content_range"),
        ("letters", b"text [a:b]", "bad_content_range"),
        ("plus-sign", b"text [+1:2]", "bad_content_range"),
        ("fraction", b"text [1.5:2]", "bad_content_range"),
        ("double-minus", b"text [--1:2]", "bad_content_range"),
        ("hex", b"text [0x1:2]", "bad_content_range"),
        ("exponent", b"text [1e3:2]", "bad_content_range"),
        ("trailing-garbage", b"text [1:2] x", "bad_content_range"),
        ("invalid-utf8", b"text [\xff:1]", "bad_content_range"),
        ("arabic-digit", "text [\u{661}:2]".as_bytes(), "bad_content_range"),
        ("reversed", b"text [4:2]", "bad_content_range"),
        ("reversed-negative", b"text [-2:-4]", "bad_content_range"),
        ("reversed-mixed", b"text [-1:0]", "range_reversed"),
        ("negative-beyond-length", b"text [-6:-0]", "range_out_of_bounds"),
        ("negative-far-beyond", b"text [-9007199254740991:-0]", "range_out_of_bounds"),
        ("negative-end-beyond", b"text [0:-6]", "range_reversed"),
        ("past-end-insert", b"text [6:6]", "range_out_of_bounds"),
        ("past-end-delete", b"text [5:6]", "range_out_of_bounds"),
        ("max-position", b"text [9007199254740991:9007199254740991]", "range_out_of_bounds"),
        ("over-2^53", b"text [0:9007199254740992]", "bad_content_range"),
        ("u64-max", b"text [0:18446744073709551615]", "bad_content_range"),
        ("u64-overflow", b"text [0:18446744073709551616]", "bad_content_range"),
        ("huge-digits", b"text [99999999999999999999999999999999:0]", "bad_content_range"),
        ("unit-bytes", b"bytes 0-1", "unsupported_range_unit"),
        ("unit-json-path", b"json .a", "unsupported_range_unit"),
        ("unit-json-index", b"json [0]", "unsupported_range_unit"),
        ("unit-lines", b"lines [0:1]", "unsupported_range_unit"),
        ("unit-TEXT", b"TEXT [0:0]", "unsupported_range_unit"),
        ("unit-Text", b"Text [0:0]", "unsupported_range_unit"),
        ("unit-glued", b"text[0:0]", "unsupported_range_unit"),
        ("unit-xml", b"xml /a", "unsupported_range_unit"),
    ];
    for (name, range, code) in cases {
        let r = req("PUT", CTL, &[("Parents", CTL_V), ("Content-Range", range)], b"x");
        c.add(format!("range/{name}/PUT"), r, Api(400, code));
    }
    for method in ["POST", "PATCH"] {
        for (name, range, code) in [
            ("reversed", &b"text [4:2]"[..], "bad_content_range"),
            ("past-end", b"text [6:6]", "range_out_of_bounds"),
            ("unit-json", b"json .a", "unsupported_range_unit"),
        ] {
            let r = req(method, CTL, &[("Parents", CTL_V), ("Content-Range", range)], b"x");
            c.add(format!("range/{name}/{method}"), r, Api(400, code));
        }
    }
    // Not against ctl-4 but against the current version, which only grows.
    let r = req("PUT", CTL, &[("Content-Range", b"text [1000000:1000000]")], b"x");
    c.add("range/past-end-of-current/PUT", r, Api(400, "range_out_of_bounds"));
}

/// `Patches: N` bodies, patch counts, and UTF-8 of bodies.
fn patches(c: &mut Cases) {
    let one = patch("text [0:0]", b"x");
    let two = join(&[&one, b"\r\n", &patch("text [5:5]", b"y")]);
    let put = |count: &[u8], body: &[u8]| req("PUT", CTL, &[("Parents", CTL_V), ("Patches", count)], body);
    let cases: Vec<(&str, Vec<u8>, &'static str)> = vec![
        ("count-2-holds-1", put(b"2", &one), "patch_count_mismatch"),
        ("count-3-holds-2", put(b"3", &two), "patch_count_mismatch"),
        ("count-1-holds-2", put(b"1", &two), "bad_patches"),
        ("count-0-with-body", put(b"0", &one), "bad_patches"),
        ("count-1-empty-body", put(b"1", b""), "patch_count_mismatch"),
        ("count-1-only-crlf", put(b"1", b"\r\n\r\n"), "patch_count_mismatch"),
        ("count-10001", put(b"10001", &one), "too_many_patches"),
        ("count-u64-overflow", put(b"99999999999999999999999", &one), "too_many_patches"),
        ("count-alpha", put(b"two", &one), "bad_patch_count"),
        ("count-negative", put(b"-1", &one), "bad_patch_count"),
        ("count-empty", put(b"", &one), "bad_patch_count"),
        ("count-fraction", put(b"1.5", &one), "bad_patch_count"),
        ("count-hex", put(b"0x1", &one), "bad_patch_count"),
        ("count-plus", put(b"+1", &one), "bad_patch_count"),
        ("count-two-numbers", put(b"1 2", &one), "bad_patch_count"),
        ("count-invalid-utf8", put(b"\xff", &one), "bad_patch_count"),
        ("missing-content-length", put(b"1", b"Content-Range: text [0:0]\r\n\r\nx"), "bad_patches"),
        ("missing-content-range", put(b"1", b"Content-Length: 1\r\n\r\nx"), "bad_patches"),
        ("length-alpha", put(b"1", b"Content-Length: one\r\nContent-Range: text [0:0]\r\n\r\nx"), "bad_content_length"),
        (
            "length-negative",
            put(b"1", b"Content-Length: -1\r\nContent-Range: text [0:0]\r\n\r\nx"),
            "bad_content_length",
        ),
        (
            "length-overflow",
            put(b"1", b"Content-Length: 99999999999999999999\r\nContent-Range: text [0:0]\r\n\r\nx"),
            "bad_content_length",
        ),
        ("length-empty", put(b"1", b"Content-Length:\r\nContent-Range: text [0:0]\r\n\r\nx"), "bad_content_length"),
        ("length-plus", put(b"1", b"Content-Length: +1\r\nContent-Range: text [0:0]\r\n\r\nx"), "bad_content_length"),
        ("length-past-end", put(b"1", b"Content-Length: 50\r\nContent-Range: text [0:0]\r\n\r\nx"), "bad_patches"),
        (
            "length-u64-max",
            put(b"1", b"Content-Length: 9999999999999999999\r\nContent-Range: text [0:0]\r\n\r\nx"),
            "bad_patches",
        ),
        ("garbage-between", put(b"2", &join(&[&one, b"\r\nGARBAGE\r\n", &patch("text [5:5]", b"y")])), "bad_patches"),
        ("garbage-before", put(b"1", &join(&[b"GARBAGE\r\n", &one])), "bad_patches"),
        ("garbage-after", put(b"1", &join(&[&one, b"zz"])), "bad_patches"),
        ("no-blank-line", put(b"1", b"Content-Length: 1\r\nContent-Range: text [0:0]\r\n"), "bad_patches"),
        ("header-without-colon", put(b"1", b"Content-Length 1\r\nContent-Range: text [0:0]\r\n\r\nx"), "bad_patches"),
        (
            "duplicate-patch-length",
            put(b"1", b"Content-Length: 1\r\nContent-Length: 1\r\nContent-Range: text [0:0]\r\n\r\nx"),
            "bad_patches",
        ),
        (
            "duplicate-patch-range",
            put(b"1", b"Content-Length: 1\r\nContent-Range: text [0:0]\r\nContent-Range: text [1:1]\r\n\r\nx"),
            "bad_patches",
        ),
        (
            "invalid-utf8-patch-header",
            put(b"1", b"Content-Length: 1\r\nContent-Range: text [0:0]\r\nX: \xff\r\n\r\nx"),
            "bad_patches",
        ),
        ("invalid-utf8-patch-body", put(b"1", &patch("text [0:0]", b"\xff")), "invalid_utf8"),
        ("truncated-utf8-patch-body", put(b"1", &patch("text [0:0]", b"\xe2\x82")), "invalid_utf8"),
        ("overlong-utf8-patch-body", put(b"1", &patch("text [0:0]", b"\xc0\xae")), "invalid_utf8"),
        ("surrogate-utf8-patch-body", put(b"1", &patch("text [0:0]", b"\xed\xa0\x80")), "invalid_utf8"),
        ("patch-reversed", put(b"1", &patch("text [3:1]", b"x")), "bad_content_range"),
        ("patch-past-end", put(b"1", &patch("text [9:9]", b"x")), "range_out_of_bounds"),
        ("patch-unit-json", put(b"1", &patch("json .a", b"1")), "unsupported_range_unit"),
        (
            "patches-overlap",
            put(b"2", &join(&[&patch("text [0:2]", b""), &patch("text [1:3]", b"")])),
            "overlapping_patches",
        ),
    ];
    for (name, r, code) in cases {
        c.add(format!("patches/{name}"), r, Api(400, code));
    }
    // Content-Range with a count is ambiguous.
    let r = req("PUT", CTL, &[("Parents", CTL_V), ("Patches", b"1"), ("Content-Range", b"text [0:0]")], &one);
    c.add("patches/with-content-range", r, Api(400, "bad_patches"));
    // Content-Type count= against Patches.
    let ct = |v: &'static [u8], patches: Option<&'static [u8]>, body: &[u8]| {
        let mut h: Vec<(&str, &[u8])> = vec![("Parents", CTL_V), ("Content-Type", v)];
        if let Some(p) = patches {
            h.push(("Patches", p));
        }
        req("PUT", CTL, &h, body)
    };
    for (name, r, code) in [
        ("count-param-disagrees", ct(b"application/http-patches; count=2", Some(b"1"), &one), "bad_patch_count"),
        (
            "count-param-quoted-disagrees",
            ct(b"application/http-patches; count=\"3\"", Some(b"2"), &two),
            "bad_patch_count",
        ),
        ("count-param-missing", ct(b"application/http-patches", None, &one), "bad_patch_count"),
        ("count-param-alpha", ct(b"application/http-patches; count=x", None, &one), "bad_patch_count"),
        ("count-param-negative", ct(b"application/http-patches; count=-1", None, &one), "bad_patch_count"),
        ("count-param-huge", ct(b"application/http-patches; count=10001", None, &one), "too_many_patches"),
        ("count-param-lies", ct(b"application/http-patches; count=2", None, &one), "patch_count_mismatch"),
    ] {
        c.add(format!("patches/content-type/{name}"), r, Api(400, code));
    }
    // Invalid UTF-8 in a snapshot body (bytes that are not text: a file's, refused on a text
    // resource) and in an inline patch (always text), through each write method.
    for method in ["PUT", "POST", "PATCH"] {
        for (name, body) in [
            ("ff", &b"\xff"[..]),
            ("truncated", b"abc\xe2\x82"),
            ("overlong-dot", b"\xc0\xae"),
            ("surrogate", b"\xed\xa0\x80"),
            ("latin1", b"caf\xe9"),
        ] {
            let r = req(method, CTL, &[("Version", b"\"m-0\""), ("Parents", CTL_V)], body);
            c.add(format!("utf8/snapshot-{name}/{method}"), r, Api(409, "kind_mismatch"));
        }
        let r = req(method, CTL, &[("Parents", CTL_V), ("Content-Range", b"text [0:0]")], b"x\xffy");
        c.add(format!("utf8/inline-patch/{method}"), r, Api(400, "invalid_utf8"));
    }
}

/// `Merge-Type`, `Heartbeats`, `Peer`.
fn small_headers(c: &mut Cases) {
    let merge: &[(&str, &[u8])] = &[
        ("yjs", b"yjs"),
        ("capitalized", b"Simpleton"),
        ("upper-dt", b"DT"),
        ("upper", b"SIMPLETON"),
        ("sync9", b"sync9"),
        ("list", b"simpleton, dt"),
        ("params", b"dt;q=1"),
        ("inner-tab", b"simpleton\tx"),
        ("invalid-utf8", b"\xff"),
    ];
    for (name, value) in merge {
        let get = req("GET", CTL, &[("Merge-Type", value)], b"");
        c.add(format!("merge-type/{name}/GET"), get, Api(400, "unknown_merge_type"));
        let sub = req("GET", CTL, &[("Subscribe", b"true"), ("Merge-Type", value)], b"");
        c.add(format!("merge-type/{name}/Subscribe"), sub, Api(400, "unknown_merge_type"));
        let put = req("PUT", CTL, &[("Merge-Type", value), ("Parents", CTL_V), ("Content-Range", b"text [0:0]")], b"x");
        c.add(format!("merge-type/{name}/PUT"), put, Api(400, "unknown_merge_type"));
    }
    let beats: &[(&str, &[u8])] = &[
        ("alpha", b"abc"),
        ("negative", b"-5"),
        ("zero", b"0"),
        ("negative-zero", b"-0"),
        ("too-frequent", b"0.001"),
        ("tiny-exponent", b"1e-9"),
        ("infinite", b"1e999"),
        ("huge", b"99999999"),
        ("nan", b"NaN"),
        ("infinity-word", b"Infinity"),
        ("empty", b""),
        ("space", b" "),
        ("invalid-utf8", b"\xff"),
    ];
    for (name, value) in beats {
        let get = req("GET", CTL, &[("Heartbeats", value)], b"");
        c.add(format!("heartbeats/{name}/GET"), get, Api(400, "bad_heartbeats"));
        let sub = req("GET", CTL, &[("Subscribe", b"true"), ("Heartbeats", value)], b"");
        c.add(format!("heartbeats/{name}/Subscribe"), sub, Api(400, "bad_heartbeats"));
        let put = req("PUT", CTL, &[("Heartbeats", value), ("Parents", CTL_V), ("Content-Range", b"text [0:0]")], b"x");
        c.add(format!("heartbeats/{name}/PUT"), put, Api(400, "bad_heartbeats"));
    }
    let peers: &[(&str, &[u8])] = &[
        ("empty", b""),
        ("empty-quoted", b"\"\""),
        ("tab", b"a\tb"),
        ("quoted-tab", b"\"a\tb\""),
        ("c1-control-utf8", b"a\xc2\x85b"),
        ("invalid-utf8", b"\xff\xfe"),
        ("lone-continuation", b"a\x80"),
    ];
    for (name, value) in peers {
        let sub = req("GET", CTL, &[("Subscribe", b"true"), ("Peer", value)], b"");
        c.add(format!("peer/{name}/Subscribe"), sub, Api(400, "bad_peer"));
        let put = req("PUT", CTL, &[("Peer", value), ("Parents", CTL_V), ("Content-Range", b"text [0:0]")], b"x");
        c.add(format!("peer/{name}/PUT"), put, Api(400, "bad_peer"));
    }
    // Raw control characters never reach us: httparse refuses them in header values.
    for (name, value) in
        [("nul", &b"a\x00b"[..]), ("soh", b"a\x01b"), ("esc", b"a\x1bb"), ("del", b"a\x7fb"), ("bare-cr", b"a\rb")]
    {
        c.add(
            format!("peer/raw-{name}/Subscribe"),
            req("GET", CTL, &[("Subscribe", b"true"), ("Peer", value)], b""),
            Hyper(400),
        );
    }
    let huge_peer = join(&[&[b'p'; 100_000][..], b"\t"]);
    c.add(
        "peer/huge-100kb-with-tab/GET",
        req("GET", CTL, &[("Peer", &huge_peer)], b""),
        HeaderLimitOr(400, "bad_peer"),
    );
    let huge_merge = vec![b'm'; 100_000];
    c.add(
        "merge-type/huge-100kb/GET",
        req("GET", CTL, &[("Merge-Type", &huge_merge)], b""),
        HeaderLimitOr(400, "unknown_merge_type"),
    );
    let huge_beats = vec![b'9'; 100_000];
    c.add(
        "heartbeats/huge-100kb/GET",
        req("GET", CTL, &[("Heartbeats", &huge_beats)], b""),
        HeaderLimitOr(400, "bad_heartbeats"),
    );
    let huge_range = join(&[b"text [", &[b'1'; 100_000][..], b":0]"]);
    let r = req("PUT", CTL, &[("Parents", CTL_V), ("Content-Range", &huge_range)], b"x");
    c.add("range/huge-100kb/PUT", r, HeaderLimitOr(400, "bad_content_range"));
    let huge_count = vec![b'7'; 100_000];
    let r = req("PUT", CTL, &[("Parents", CTL_V), ("Patches", &huge_count)], &patch("text [0:0]", b"x"));
    c.add("patches/huge-100kb-count/PUT", r, HeaderLimitOr(400, "too_many_patches"));
    let junk = vec![b'j'; 60_000];
    let r = req(
        "PUT",
        CTL,
        &[("X-Junk", &junk), ("Version", b"a-1"), ("Parents", CTL_V), ("Content-Range", b"text [0:0]")],
        b"x",
    );
    c.add("headers/60kb-junk-and-bad-version/PUT", r, HeaderLimitOr(400, "bad_version_header"));
    let many: Vec<Vec<u8>> = (0..9).map(|_| vec![b'k'; 30_000]).collect();
    let mut h: Vec<(&str, &[u8])> = many.iter().map(|v| ("X-Junk", v.as_slice())).collect();
    h.push(("Version", b"a-1"));
    c.add(
        "headers/270kb-in-9-headers-and-bad-version/GET",
        req("GET", CTL, &h, b""),
        HeaderLimitOr(400, "bad_version_header"),
    );
}

/// Braid headers that may appear once, twice.
fn duplicates(c: &mut Cases) {
    let names: &[(&str, &[u8])] = &[
        ("Version", b"\"m-0\""),
        ("Parents", b"\"ctl-4\""),
        ("Subscribe", b"true"),
        ("Peer", b"p1"),
        ("Heartbeats", b"10"),
        ("Merge-Type", b"simpleton"),
        ("Content-Range", b"text [0:0]"),
        ("Patches", b"1"),
        ("Content-Type", b"text/plain"),
        ("Method-Override", b"HEAD"),
    ];
    for (name, value) in names {
        let get = req("GET", CTL, &[(name, value), (name, value)], b"");
        c.add(format!("duplicate/{name}/GET"), get, Api(400, "duplicate_header"));
        let put = req("PUT", CTL, &[(name, value), ("Parents", CTL_V), (name, value)], &patch("text [0:0]", b"x"));
        c.add(format!("duplicate/{name}/PUT"), put, Api(400, "duplicate_header"));
    }
    let r = req("PUT", CTL, &[("Version", b"\"m-0\""), ("Version", b"\"n-0\""), ("Parents", CTL_V)], b"x");
    c.add("duplicate/Version-differing/PUT", r, Api(400, "duplicate_header"));
}

/// Methods, reserved endpoints, and paths.
fn methods_and_paths(c: &mut Cases) {
    for method in ["FOO", "TRACE", "PROPFIND", "MKCOL", "LINK", "get", "Put"] {
        c.add(format!("method/{method}/document"), req(method, CTL, &[], b""), Api(405, "method_not_allowed"));
    }
    let long_method = "X".repeat(2000);
    c.add("method/2kb-token/document", req(&long_method, CTL, &[], b""), Api(405, "method_not_allowed"));
    c.add("method/CONNECT/document", req("CONNECT", CTL, &[], b""), Api(405, "method_not_allowed"));
    for method in ["PUT", "POST", "PATCH", "DELETE", "FOO", "TRACE"] {
        c.add(
            format!("method/{method}/health"),
            req(method, "/.plait/health", &[], b"x"),
            Api(405, "method_not_allowed"),
        );
    }
    c.add("method/PUT/unknown-endpoint", req("PUT", "/.plait/nope", &[], b"x"), Api(404, "not_found"));

    let long_10k = format!("/{}", "a".repeat(10_000));
    let long_4097 = format!("/{}", "b".repeat(4096));
    let paths: Vec<(&str, String, &'static str)> = vec![
        ("asterisk", "*".into(), "bad_path"),
        ("dotdot-escaped", "/%2e%2e/%2e%2e/etc/passwd".into(), "bad_path"),
        ("dotdot-escaped-mixed-case", "/%2E%2e/x".into(), "bad_path"),
        ("dotdot-half-escaped", "/.%2e/x".into(), "bad_path"),
        ("dotdot-raw", "/../x".into(), "bad_path"),
        ("dotdot-inner", "/a/../b".into(), "bad_path"),
        ("dotdot-trailing", "/a/..".into(), "bad_path"),
        ("dotdot-via-escaped-slash", "/a%2f..%2fb".into(), "bad_path"),
        ("dot-segment", "/./x".into(), "bad_path"),
        ("dot-trailing", "/a/.".into(), "bad_path"),
        ("nul-escaped", "/a%00b".into(), "bad_path"),
        ("nul-only", "/%00".into(), "bad_path"),
        ("newline-escaped", "/a%0a".into(), "bad_path"),
        ("crlf-injection", "/a%0d%0aSet-Cookie:%20x".into(), "bad_path"),
        ("del-escaped", "/%7f".into(), "bad_path"),
        ("ff-escaped", "/%ff".into(), "bad_path"),
        ("fe-ff-escaped", "/%fe%ff".into(), "bad_path"),
        ("overlong-dot", "/%c0%ae%c0%ae/x".into(), "bad_path"),
        ("overlong-slash", "/a%c0%afb".into(), "bad_path"),
        ("overlong-3-byte-dot", "/%e0%80%ae".into(), "bad_path"),
        ("utf8-surrogate", "/%ed%a0%80".into(), "bad_path"),
        ("utf8-5-byte", "/%f8%88%80%80%80".into(), "bad_path"),
        ("utf8-truncated", "/%e2%82".into(), "bad_path"),
        ("percent-alone", "/%".into(), "bad_path"),
        ("percent-one-digit", "/%2".into(), "bad_path"),
        ("percent-non-hex", "/%zz".into(), "bad_path"),
        ("percent-double", "/%%32%65".into(), "bad_path"),
        ("escaped-reserved-plait", "/%2eplait/health".into(), "bad_path"),
        ("escaped-reserved-multiplexer", "/.well-known%2fmultiplexer/x".into(), "bad_path"),
        ("dotdot-with-query", "/%2e%2e?x=1".into(), "bad_path"),
        ("nul-with-query", "/a%00b?c=d".into(), "bad_path"),
        ("dotdot-raw-with-query", "/..?x".into(), "bad_path"),
        ("absolute-form-dotdot", "http://example.com/%2e%2e/x".into(), "bad_path"),
        ("authority-form", "example.com:80".into(), "bad_path"),
        ("4097-bytes", long_4097, "path_too_long"),
        ("10kb", long_10k.clone(), "path_too_long"),
        ("10kb-with-query", format!("{long_10k}?q=1"), "path_too_long"),
    ];
    for (name, path, code) in &paths {
        // Our 414 unless the server's header-size limit (which counts the request line) is
        // below 10 KB, when hyper answers 431 first.
        let expect = match *code {
            "path_too_long" if path.len() > 10_000 => HeaderLimitOr(414, code),
            "path_too_long" => Api(414, code),
            _ => Api(400, code),
        };
        c.add(format!("path/{name}/GET"), req("GET", path, &[], b""), expect);
        c.add(format!("path/{name}/PUT"), req("PUT", path, &[], b"x"), expect);
    }
    for (name, path, code) in paths.iter().step_by(3) {
        let status = if *code == "path_too_long" { 414 } else { 400 };
        c.add(format!("path/{name}/DELETE"), req("DELETE", path, &[], b""), Api(status, code));
        c.add(format!("path/{name}/HEAD"), req("HEAD", path, &[], b""), Api(status, code));
    }
    // hyper refuses these request targets itself.
    let huge_path = format!("/{}", "c".repeat(100_000));
    c.add("path/100kb/GET", req("GET", &huge_path, &[], b""), HyperOneOf(414, 431));
    c.add("path/100kb/PUT", req("PUT", &huge_path, &[], b"x"), HyperOneOf(414, 431));
    for (name, target) in [
        ("raw-nul", &b"/a\x00b"[..]),
        ("raw-ff", b"/a\xffb"),
        ("raw-overlong", b"/\xc0\xae\xc0\xae/x"),
        ("raw-del", b"/a\x7fb"),
        ("raw-tab", b"/a\tb"),
        ("raw-angle-brackets", b"/a<b>"),
        ("asterisk-with-query", b"*?x"),
    ] {
        c.add(format!("path/{name}/GET"), raw("GET", target, &[], b""), Hyper(400));
    }
    c.add("path/raw-space/GET", b"GET /a b HTTP/1.1\r\nHost: test\r\n\r\n".to_vec(), Hyper(400));
}

/// Bodies shorter, longer or larger than declared, and conflicting framing headers.
fn framing(c: &mut Cases) {
    let h = ctl_headers;
    // Larger than --max-body-bytes: refused from Content-Length alone, before the body.
    let big = (MAX_BODY * 16).to_string();
    let mut r = raw("PUT", CTL.as_bytes(), &h(&[("Content-Length", big.as_bytes())]), b"");
    r.extend(std::iter::repeat_n(b'a', 1024));
    c.add("body/too-large-declared-1mb-1kb-sent/PUT", r, Api(413, "body_too_large"));
    let r = req("PUT", CTL, &h(&[]), &vec![b'a'; MAX_BODY + 1]);
    c.add("body/too-large-by-one-byte/PUT", r, Api(413, "body_too_large"));
    let r = raw("POST", CTL.as_bytes(), &[("Content-Length", b"9223372036854775807")], b"abc");
    c.add("body/too-large-i64-max-declared/POST", r, Api(413, "body_too_large"));
    let mut chunked = Vec::new();
    for _ in 0..9 {
        chunked.extend_from_slice(format!("{:x}\r\n", 8192).as_bytes());
        chunked.extend(std::iter::repeat_n(b'a', 8192));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let r = raw("PUT", CTL.as_bytes(), &h(&[("Transfer-Encoding", b"chunked")]), &chunked);
    c.add("body/too-large-chunked-72kb/PUT", r, Api(413, "body_too_large"));
    let mut r =
        raw("PATCH", CTL.as_bytes(), &[("Parents", CTL_V), ("Patches", b"1"), ("Content-Length", b"100000")], b"");
    r.extend_from_slice(&patch("text [0:0]", b"x"));
    c.add("body/too-large-patches-declared/PATCH", r, Api(413, "body_too_large"));

    // Shorter than declared, then our write side shut: the server sees EOF mid-body.
    let r = raw("PUT", CTL.as_bytes(), &h(&[("Content-Length", b"10")]), b"abc");
    c.add_shut("body/short-3-of-10/PUT", r, Api(400, "bad_body"));
    let r = raw("PUT", CTL.as_bytes(), &h(&[("Content-Length", b"100")]), b"");
    c.add_shut("body/short-0-of-100/PUT", r, Api(400, "bad_body"));
    let r = raw("POST", CTL.as_bytes(), &[("Parents", CTL_V), ("Content-Length", b"5")], b"ab");
    c.add_shut("body/short-2-of-5/POST", r, Api(400, "bad_body"));
    let p = patch("text [0:0]", b"xyz");
    let r = raw(
        "PUT",
        CTL.as_bytes(),
        &[("Parents", CTL_V), ("Patches", b"1"), ("Content-Length", b"200")],
        &p[..p.len() - 2],
    );
    c.add_shut("body/short-patches/PUT", r, Api(400, "bad_body"));
    let r = raw("PUT", CTL.as_bytes(), &h(&[("Transfer-Encoding", b"chunked")]), b"10\r\nabc");
    c.add_shut("body/short-chunk/PUT", r, Api(400, "bad_body"));
    let r = raw("PUT", CTL.as_bytes(), &h(&[("Transfer-Encoding", b"chunked")]), b"3\r\nabc\r\n");
    c.add_shut("body/chunked-without-last-chunk/PUT", r, Api(400, "bad_body"));

    // Longer than declared: the declared part is answered, the rest is read as the next
    // request on the connection, which hyper refuses.
    let one = patch("text [0:0]", b"x");
    let r = raw(
        "PUT",
        CTL.as_bytes(),
        &[("Parents", CTL_V), ("Patches", b"2"), ("Content-Length", one.len().to_string().as_bytes())],
        &join(&[&one, b"\r\n", &patch("text [5:5]", b"y")]),
    );
    c.add_seq("body/longer-patches-cut-by-length/PUT", r, &[Api(400, "patch_count_mismatch"), Hyper(400)]);
    let r = raw("PUT", CTL.as_bytes(), &[("Version", b"a-1"), ("Content-Length", b"3")], b"abcdef\r\n\r\n");
    c.add_seq("body/longer-after-bad-header/PUT", r, &[Api(400, "bad_version_header"), Hyper(400)]);
    let r = raw("PUT", CTL.as_bytes(), &[("Version", b"\"m-0\""), ("Content-Length", b"1")], b"\xffGARBAGE\r\n\r\n");
    c.add_seq("body/longer-invalid-utf8/PUT", r, &[Api(409, "kind_mismatch"), Hyper(400)]);

    // Chunked framing errors reach our body reader.
    for (name, body) in [
        ("bad-size", &b"zz\r\nabc\r\n0\r\n\r\n"[..]),
        ("size-overflow", b"fffffffffffffffffff\r\nabc\r\n0\r\n\r\n"),
        ("missing-crlf-after-data", b"3\r\nabcX\r\n0\r\n\r\n"),
    ] {
        let r = raw("PUT", CTL.as_bytes(), &h(&[("Transfer-Encoding", b"chunked")]), body);
        c.add(format!("chunked/{name}/PUT"), r, Api(400, "bad_body"));
    }
    // Transfer codings hyper passes through as if they were the body.
    for (name, te) in [("gzip-then-chunked", &b"gzip, chunked"[..]), ("chunked-twice", b"chunked, chunked")] {
        let r = raw("PUT", CTL.as_bytes(), &h(&[("Transfer-Encoding", te)]), b"1\r\nx\r\n0\r\n\r\n");
        c.add(format!("transfer-encoding/{name}/PUT"), r, Api(400, "bad_transfer_encoding"));
    }
    let r = raw(
        "PUT",
        CTL.as_bytes(),
        &h(&[("Transfer-Encoding", b"chunked"), ("Transfer-Encoding", b"chunked")]),
        b"1\r\nx\r\n0\r\n\r\n",
    );
    c.add("transfer-encoding/two-headers/PUT", r, Api(400, "bad_transfer_encoding"));

    // Content-Length with Transfer-Encoding.
    let chunk = b"1\r\nx\r\n0\r\n\r\n";
    let r = raw("PUT", CTL.as_bytes(), &h(&[("Content-Length", b"3"), ("Transfer-Encoding", b"gzip")]), chunk);
    c.add("cl-te/te-not-chunked/PUT", r, Hyper(400));
    let r = raw("PUT", CTL.as_bytes(), &h(&[("Content-Length", b"3"), ("Transfer-Encoding", b"gzip, chunked")]), chunk);
    c.add("cl-te/gzip-chunked/PUT", r, TeOverCl(400, Some("bad_transfer_encoding")));
    let r = raw(
        "PUT",
        CTL.as_bytes(),
        &[("Version", b"a-1"), ("Content-Length", b"3"), ("Transfer-Encoding", b"chunked")],
        chunk,
    );
    c.add("cl-te/cl-first-bad-version/PUT", r, TeOverCl(400, Some("bad_version_header")));
    let r = raw(
        "PUT",
        CTL.as_bytes(),
        &[("Transfer-Encoding", b"chunked"), ("Content-Length", b"3"), ("Version", b"a-1")],
        chunk,
    );
    c.add("cl-te/te-first-bad-version/PUT", r, TeOverCl(400, Some("bad_version_header")));
    let r = raw(
        "PUT",
        CTL.as_bytes(),
        &h(&[("Content-Length", b"3"), ("Transfer-Encoding", b"chunked")]),
        b"zz\r\nabc\r\n0\r\n\r\n",
    );
    c.add("cl-te/bad-chunk/PUT", r, TeOverCl(400, Some("bad_body")));
    // A valid chunked body with a conflicting Content-Length: hyper accepts (RFC 9112 §6.3
    // allows it when the connection is closed after), our code never sees the Content-Length.
    // Aimed at a scratch document; a version-less snapshot of the same text is a no-op on repeats.
    let scratch = b"/malformed/te-scratch";
    let r =
        raw("PUT", scratch, &[("Content-Length", b"3"), ("Transfer-Encoding", b"chunked")], b"5\r\nhello\r\n0\r\n\r\n");
    c.add("cl-te/cl-first-valid-chunks/PUT", r, TeOverCl(200, None));
    let r = raw(
        "PUT",
        scratch,
        &[("Transfer-Encoding", b"chunked"), ("Content-Length", b"100")],
        b"5\r\nhello\r\n0\r\n\r\n",
    );
    c.add("cl-te/te-first-valid-chunks/PUT", r, TeOverCl(200, None));

    // Bad Content-Length values: hyper.
    for (name, cl) in [
        ("alpha", &b"abc"[..]),
        ("negative", b"-1"),
        ("plus", b"+3"),
        ("hex", b"0x3"),
        ("empty", b""),
        ("list-same", b"3, 3"),
        ("list-differing", b"3, 4"),
        ("overflow", b"99999999999999999999999"),
    ] {
        let r = raw("PUT", CTL.as_bytes(), &h(&[("Content-Length", cl)]), b"abc");
        c.add(format!("content-length/{name}/PUT"), r, Hyper(400));
    }
    let r = raw("PUT", CTL.as_bytes(), &h(&[("Content-Length", b"3"), ("Content-Length", b"4")]), b"abcd");
    c.add("content-length/two-differing-headers/PUT", r, Hyper(400));
    let r = raw("PUT", CTL.as_bytes(), &h(&[("Content-Length", b"18446744073709551615")]), b"abc");
    c.add("content-length/u64-max/PUT", r, Hyper(431));
}

/// `Parents: "ctl-4"`, `Content-Range: text [0:0]`, then `extra`.
fn ctl_headers<'a>(extra: &[(&'a str, &'a [u8])]) -> Vec<(&'a str, &'a [u8])> {
    let mut all: Vec<(&str, &[u8])> = vec![("Parents", CTL_V), ("Content-Range", b"text [0:0]")];
    all.extend_from_slice(extra);
    all
}

/// Request lines and header syntax that hyper's HTTP/1 parser refuses.
fn hyper_level(c: &mut Cases) {
    let lines: &[(&str, &[u8])] = &[
        ("garbage", b"GARBAGE\r\n\r\n"),
        ("http-2.0", b"GET /x HTTP/2.0\r\nHost: test\r\n\r\n"),
        ("http-9.9", b"GET /x HTTP/9.9\r\nHost: test\r\n\r\n"),
        ("http-1.2", b"GET /x HTTP/1.2\r\nHost: test\r\n\r\n"),
        ("lowercase-http", b"GET /x http/1.1\r\nHost: test\r\n\r\n"),
        ("extra-token", b"GET /x HTTP/1.1 extra\r\nHost: test\r\n\r\n"),
        ("double-space", b"GET  /x HTTP/1.1\r\nHost: test\r\n\r\n"),
        ("http-0.9", b"GET /x\r\nHost: test\r\n\r\n"),
        ("no-method", b"/x HTTP/1.1\r\nHost: test\r\n\r\n"),
        ("bad-method-char", b"G@T /x HTTP/1.1\r\nHost: test\r\n\r\n"),
        ("h2-preface-in-h1", b"PRI * HTTP/2.0\r\nHost: test\r\n\r\n"),
        ("http-1.0-with-te", b"PUT /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"),
    ];
    for (name, bytes) in lines {
        c.add(format!("request-line/{name}"), bytes.to_vec(), Hyper(400));
    }
    let headers: &[(&str, &[u8])] = &[
        ("no-colon", b"nocolon"),
        ("empty-name", b": x"),
        ("space-in-name", b"Ver sion: \"a-1\""),
        ("space-before-colon", b"Version : \"a-1\""),
        ("paren-in-name", b"(Version): \"a-1\""),
        ("non-ascii-name", b"V\xc3\xa9rsion: \"a-1\""),
        ("nul-in-value", b"Version: \"a\x00-1\""),
        ("soh-in-value", b"Version: \"a\x01-1\""),
        ("bare-lf-in-value", b"Version: \"a\nb-1\""),
        ("obs-fold", b"Version: \"a-1\"\r\n  , \"b-2\""),
    ];
    for (name, line) in headers {
        let r = join(&[b"GET ", CTL.as_bytes(), b" HTTP/1.1\r\nHost: test\r\n", line, b"\r\n\r\n"]);
        c.add(format!("header-syntax/{name}"), r, Hyper(400));
    }
    let lines: Vec<String> = (0..120).map(|i| format!("X-{i}: 1")).collect();
    let r = format!("GET {CTL} HTTP/1.1\r\nHost: test\r\n{}\r\n\r\n", lines.join("\r\n")).into_bytes();
    c.add("headers/120-headers", r, Hyper(431));
    // Over --max-header-bytes (64 KiB by default): the server's own limit, answered by hyper.
    let r = req("GET", CTL, &[("X-Junk", &vec![b'j'; 100_000])], b"");
    c.add("headers/100kb-unrelated-header", r, Hyper(431));
    // Over hyper's own buffer limit as well.
    let r = req("GET", CTL, &[("X-Junk", &vec![b'j'; 500_000])], b"");
    c.add("headers/500kb-header", r, Hyper(431));
}

/// `Host` (RFC 9112 §3.2): missing, repeated or invalid on HTTP/1.1 → `400 bad_host`, on every
/// route; optional on HTTP/1.0; required with absolute-form targets too, whose authority wins.
/// Two equal `Host` lines are refused like two different ones: the RFC counts field lines.
/// And HEAD with `Subscribe` answers what GET does.
fn hosts(c: &mut Cases) {
    // `request line`, then these header lines, then a blank line.
    let head = |line: &str, headers: &[&[u8]]| {
        let mut out = format!("{line}\r\n").into_bytes();
        for h in headers {
            out.extend_from_slice(h);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    };
    let get = format!("GET {CTL} HTTP/1.1");
    let bad = Api(400, "bad_host");
    c.add("host/missing/GET", head(&get, &[]), bad);
    c.add("host/missing/HEAD", head(&format!("HEAD {CTL} HTTP/1.1"), &[]), bad);
    c.add("host/missing/health", head("GET /.plait/health HTTP/1.1", &[]), bad);
    c.add("host/missing/history", head(&format!("GET /.plait/history{CTL} HTTP/1.1"), &[]), bad);
    c.add("host/missing/unknown-endpoint", head("GET /.plait/nope HTTP/1.1", &[]), bad);
    c.add("host/missing/multiplexer", head("GET /.well-known/multiplexer/x HTTP/1.1", &[]), bad);
    c.add("host/missing/DELETE", head(&format!("DELETE {CTL} HTTP/1.1"), &[]), bad);
    c.add("host/missing/OPTIONS", head(&format!("OPTIONS {CTL} HTTP/1.1"), &[]), bad);
    c.add(
        "host/missing/OPTIONS-preflight",
        head(
            &format!("OPTIONS {CTL} HTTP/1.1"),
            &[b"Origin: http://app.example", b"Access-Control-Request-Method: PUT"],
        ),
        bad,
    );
    c.add("host/missing/Subscribe", head(&get, &[b"Subscribe: true"]), bad);
    // A valid write without Host: refused before anything is written.
    let mut put = head(
        &format!("PUT {CTL} HTTP/1.1"),
        &[b"Parents: \"ctl-4\"", b"Content-Range: text [0:0]", b"Content-Length: 1"],
    );
    put.push(b'x');
    c.add("host/missing/PUT", put, bad);
    for (name, lines) in [
        ("two-different", &[&b"Host: test"[..], b"Host: other"][..]),
        ("two-equal", &[b"Host: test", b"Host: test"]),
        ("three", &[b"Host: test", b"Host: test", b"Host: test"]),
        ("two-with-header-between", &[b"Host: test", b"Accept: */*", b"Host: test"]),
        ("one-line-list", &[b"Host: test, other"]),
    ] {
        c.add(format!("host/repeated/{name}/GET"), head(&get, lines), bad);
    }
    let mut put = head(
        &format!("PUT {CTL} HTTP/1.1"),
        &[b"Host: test", b"Host: other", b"Parents: \"ctl-4\"", b"Content-Range: text [0:0]", b"Content-Length: 1"],
    );
    put.push(b'x');
    c.add("host/repeated/two-different/PUT", put, bad);
    let long_host = [&[b'h'; 10_000][..], b" x"].concat();
    for (name, value) in [
        ("space", &b"te st"[..]),
        ("tab", b"te\tst"),
        ("userinfo", b"user@test"),
        ("userinfo-password", b"user:pw@test"),
        ("port-alpha", b"test:http"),
        ("port-negative", b"test:-1"),
        ("port-65536", b"test:65536"),
        ("port-huge", b"test:99999999999999999999"),
        ("two-ports", b"test:80:80"),
        ("path", b"test/x"),
        ("query", b"test?x"),
        ("quoted", b"\"test\""),
        ("angle-brackets", b"<test>"),
        ("bad-escape", b"te%zzst"),
        ("non-ascii", b"caf\xc3\xa9.example"),
        ("obs-text", b"te\xffst"),
        ("ipv6-unclosed", b"[::1"),
        ("ipv6-junk-after", b"[::1]x"),
        ("ipv6-not-an-address", b"[test]"),
        ("ipv6-zone", b"[fe80::1%25eth0]"),
        ("bare-ipv6", b"::1"),
        ("10kb-with-a-space", &long_host),
    ] {
        let line = [&b"Host: "[..], value].concat();
        c.add(format!("host/invalid/{name}/GET"), head(&get, &[&line]), bad);
    }
    // Raw control characters never reach us: httparse refuses them in any header value.
    c.add("host/invalid/raw-soh/GET", head(&get, &[b"Host: te\x01st"]), Hyper(400));
    // HTTP/1.0: Host optional, but one at most and valid.
    c.add("host/http-1.0/missing/GET", head(&format!("GET {CTL} HTTP/1.0"), &[]), Served(200));
    c.add("host/http-1.0/missing/health", head("GET /.plait/health HTTP/1.0", &[]), Served(200));
    c.add("host/http-1.0/invalid/GET", head(&format!("GET {CTL} HTTP/1.0"), &[b"Host: te st"]), bad);
    c.add("host/http-1.0/two/GET", head(&format!("GET {CTL} HTTP/1.0"), &[b"Host: test", b"Host: test"]), bad);
    // Absolute-form targets: Host still required and checked; the target's authority wins.
    let absolute = format!("GET http://test{CTL} HTTP/1.1");
    c.add("host/absolute-form/missing/GET", head(&absolute, &[]), bad);
    c.add("host/absolute-form/invalid-host/GET", head(&absolute, &[b"Host: te st"]), bad);
    c.add("host/absolute-form/two-hosts/GET", head(&absolute, &[b"Host: test", b"Host: test"]), bad);
    c.add("host/absolute-form/other-host/GET", head(&absolute, &[b"Host: elsewhere.example:8080"]), Served(200));
    c.add(
        "host/absolute-form/userinfo/GET",
        head(&format!("GET http://user@test{CTL} HTTP/1.1"), &[b"Host: test"]),
        bad,
    );
    c.add(
        "host/absolute-form/port-65536/GET",
        head(&format!("GET http://test:65536{CTL} HTTP/1.1"), &[b"Host: test"]),
        bad,
    );

    // HEAD with Subscribe answers what GET with Subscribe answers.
    for (name, headers, expect) in [
        ("known-version", vec![("Version", CTL_V)], Api(400, "version_with_subscribe")),
        ("unknown-version", vec![("Version", &b"\"nobody-1\""[..])], Api(400, "version_with_subscribe")),
        ("version-and-parents", vec![("Version", CTL_V), ("Parents", CTL_V)], Api(400, "version_with_subscribe")),
        ("bad-version", vec![("Version", &b"a-1"[..])], Api(400, "bad_version_header")),
        (
            "dt-unknown-parents",
            vec![("Merge-Type", &b"dt"[..]), ("Parents", b"\"nobody-5\"")],
            Api(309, "version_unknown"),
        ),
        ("bad-heartbeats", vec![("Heartbeats", &b"-5"[..])], Api(400, "bad_heartbeats")),
    ] {
        let mut all = vec![("Subscribe", &b"true"[..])];
        all.extend(headers);
        c.add(format!("head-subscribe/{name}/HEAD"), req("HEAD", CTL, &all, b""), expect);
    }
}

// ---------------------------------------------------------------------------------------------
// Sending and checking

struct Reader {
    rd: tokio::net::tcp::OwnedReadHalf,
    buf: Vec<u8>,
    deadline: Instant,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Reader {
    /// More bytes; Ok(false) at EOF.
    async fn fill(&mut self) -> Result<bool, String> {
        let mut chunk = [0u8; 16384];
        match timeout_at(self.deadline, self.rd.read(&mut chunk)).await {
            Err(_) => Err(format!("no complete response within {BOUND:?} (have {} bytes)", self.buf.len())),
            Ok(Err(e)) => Err(format!("read error: {e}")),
            Ok(Ok(0)) => Ok(false),
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
        }
    }

    async fn need(&mut self, n: usize, what: &str) -> Result<(), String> {
        while self.buf.len() < n {
            if !self.fill().await? {
                return Err(format!("connection closed in the middle of {what}"));
            }
        }
        Ok(())
    }

    async fn response(&mut self, head_request: bool) -> Result<Resp, String> {
        let end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            if !self.fill().await? {
                return Err(format!(
                    "connection closed without a (complete) response: {:?}",
                    String::from_utf8_lossy(&self.buf)
                ));
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or(format!("bad status line {status_line:?}"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut res = Resp { status, reason: String::new(), headers, body: Vec::new() };
        if head_request {
            return Ok(res);
        }
        if res.header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
            loop {
                let line_end = loop {
                    if let Some(i) = find(&self.buf, b"\r\n") {
                        break i;
                    }
                    if !self.fill().await? {
                        return Err("connection closed mid-chunk".into());
                    }
                };
                let size_text = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
                let size = usize::from_str_radix(size_text.trim(), 16).map_err(|e| format!("bad chunk size: {e}"))?;
                self.buf.drain(..line_end + 2);
                self.need(size + 2, "a chunk").await?;
                res.body.extend(self.buf.drain(..size));
                self.buf.drain(..2);
                if size == 0 {
                    break;
                }
            }
        } else {
            let len: usize =
                res.header("content-length").map_or(Ok(0), str::parse).map_err(|e| format!("bad length: {e}"))?;
            self.need(len, "the body").await?;
            res.body = self.buf.drain(..len).collect();
        }
        Ok(res)
    }

    /// The server closes the connection (nothing more than EOF arrives).
    async fn closed(&mut self) -> Result<(), String> {
        while self.fill().await? {}
        match self.buf.is_empty() {
            true => Ok(()),
            false => Err(format!("unexpected bytes before close: {:?}", String::from_utf8_lossy(&self.buf))),
        }
    }
}

/// Checks an error answer of ours: status, JSON body, `Plait-Error`.
fn check_ours(res: &Resp, status: u16, code: &str, head_request: bool) -> Result<(), String> {
    if res.status != status {
        return Err(format!(
            "status {} (expected {status}), body {:?}",
            res.status,
            String::from_utf8_lossy(&res.body)
        ));
    }
    if res.header("plait-error") != Some(code) {
        return Err(format!(
            "plait-error {:?}, expected {code:?}; body {:?}",
            res.header("plait-error"),
            String::from_utf8_lossy(&res.body)
        ));
    }
    if res.header("content-type") != Some("application/json") {
        return Err(format!("content-type {:?}", res.header("content-type")));
    }
    if head_request {
        return Ok(());
    }
    let json: serde_json::Value = serde_json::from_slice(&res.body)
        .map_err(|e| format!("body is not JSON ({e}): {:?}", String::from_utf8_lossy(&res.body)))?;
    if json["error"].as_str() != Some(code) {
        return Err(format!("JSON error {:?}, expected {code:?}", json["error"]));
    }
    if json["message"].as_str().is_none_or(str::is_empty) {
        return Err(format!("JSON message missing or empty: {json}"));
    }
    // Documented extras: the ids a `chunks_missing` commit lacks.
    let extras = usize::from(code == "chunks_missing" && json.get("missing").is_some());
    if json.as_object().map_or(0, |o| o.len()) != 2 + extras {
        return Err(format!("JSON body has other fields: {json}"));
    }
    if json["message"].as_str().is_some_and(|m| m.len() > 1000) {
        return Err(format!(
            "message of {} bytes: an error must not echo huge input",
            json["message"].as_str().unwrap_or("").len()
        ));
    }
    if status == 309 && (res.header("version").is_none() || res.header("retry-after") != Some("1")) {
        return Err("309 without Version or Retry-After: 1".into());
    }
    Ok(())
}

/// Checks hyper's own refusal: status, empty body, `connection: close`.
fn check_hyper(res: &Resp, status: u16) -> Result<(), String> {
    if res.status != status {
        return Err(format!(
            "status {} (expected hyper's {status}), plait-error {:?}, body {:?}",
            res.status,
            res.header("plait-error"),
            String::from_utf8_lossy(&res.body)
        ));
    }
    if res.header("plait-error").is_some() || !res.body.is_empty() {
        return Err(format!("expected hyper's empty refusal, got {:?}", String::from_utf8_lossy(&res.body)));
    }
    if res.header("connection") != Some("close") {
        return Err("hyper refusal without connection: close".into());
    }
    Ok(())
}

/// Sends one case on a fresh connection and checks every response; returns who answered.
async fn run_case(addr: std::net::SocketAddr, case: &Case) -> Result<Vec<Answer>, String> {
    let deadline = Instant::now() + BOUND;
    let stream = timeout_at(deadline, TcpStream::connect(addr))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (rd, mut wr) = stream.into_split();
    // Write concurrently with reading: the server may answer (and stop reading) before the
    // whole request is sent. A write error (the server closed early) is not a failure by
    // itself; what matters is the answer.
    let bytes = case.bytes.clone();
    let shutdown = case.shutdown;
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&bytes).await;
        if shutdown {
            let _ = wr.shutdown().await;
        }
        wr
    });
    let mut reader = Reader { rd, buf: Vec::new(), deadline };
    let head_request = case.bytes.starts_with(b"HEAD ");
    let mut answers = Vec::new();
    let mut must_close = false;
    for (i, exp) in case.expect.iter().enumerate() {
        let res = reader.response(head_request && i == 0).await.map_err(|e| format!("response {}: {e}", i + 1))?;
        if res.status >= 500 {
            return Err(format!("5xx: {} {:?}", res.status, String::from_utf8_lossy(&res.body)));
        }
        let checked = match *exp {
            Api(status, code) => check_ours(&res, status, code, head_request && i == 0).map(|_| Answer::Ours),
            Hyper(status) => {
                must_close = true;
                check_hyper(&res, status).map(|_| Answer::Hyper(status))
            }
            HyperOneOf(a, b) => {
                must_close = true;
                let status = if res.status == b { b } else { a };
                check_hyper(&res, status).map(|_| Answer::Hyper(status))
            }
            HeaderLimitOr(status, code) => {
                if res.status == 431 && res.header("plait-error").is_none() {
                    must_close = true;
                    check_hyper(&res, 431).map(|_| Answer::Hyper(431))
                } else {
                    check_ours(&res, status, code, head_request && i == 0).map(|_| Answer::Ours)
                }
            }
            Served(status) => match (res.status == status, res.header("plait-error")) {
                (true, None) => Ok(Answer::Ours),
                (_, error) => Err(format!("status {} (expected {status}), plait-error {error:?}", res.status)),
            },
            TeOverCl(status, code) => {
                must_close = true;
                match code {
                    Some(code) => check_ours(&res, status, code, false).map(|_| Answer::Ours),
                    None if res.status == status => Ok(Answer::Ours),
                    None => Err(format!("status {} (expected {status})", res.status)),
                }
            }
        };
        answers.push(checked.map_err(|e| format!("response {}: {e}", i + 1))?);
    }
    if must_close {
        reader.closed().await.map_err(|e| format!("after the refusal: {e}"))?;
    }
    if let Ok(Ok(mut wr)) = timeout_at(deadline, writer).await {
        let _ = wr.shutdown().await;
    }
    Ok(answers)
}

// ---------------------------------------------------------------------------------------------
// The server, the control document, memory

/// The `plait` binary as a child process, so we can read its memory.
struct Server {
    child: Child,
    addr: std::net::SocketAddr,
}

impl Server {
    fn start(data_dir: &Path, log: &Path) -> Server {
        let mut child = Command::new(plait_binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(["--max-body-bytes", &MAX_BODY.to_string(), "--parents-wait-ms", PARENTS_WAIT_MS])
            .env("PLAIT_LOG", "warn")
            .env("PLAIT_AUTH", "none")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let addr =
            crate::support::server::read_listen_addr(stdout).unwrap_or_else(|e| panic!("server did not start: {e}"));
        Server { child, addr }
    }

    /// Resident memory, in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// VmRSS once the server has finished with the connections just closed: the first reading
    /// that repeats over 100 ms (bounded: 3 s, then the last reading), instead of a fixed sleep.
    async fn settled_rss_kib(&self) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(3);
        let (mut last, mut same) = (self.rss_kib(), 0);
        while same < 4 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(25)).await;
            let now = self.rss_kib();
            same = if now == last { same + 1 } else { 0 };
            last = now;
        }
        last
    }

    fn still_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the control document must hold: only the valid writes made it.
struct Control {
    text: String,
    version: String,
    next_seq: u64,
}

impl Control {
    async fn create(addr: std::net::SocketAddr) -> Control {
        let r = request(addr, "PUT", CTL, &[("Version", "\"ctl-4\""), ("Parents", "")], b"hello").await;
        assert_eq!(r.status, 200, "{r:?}");
        let r = request(addr, "PUT", FILE, &[("Merge-Type", "aww"), ("Version", FILE_V)], FILE_BYTES).await;
        assert_eq!(r.status, 200, "{r:?}");
        Control { text: "hello".into(), version: "\"ctl-4\"".into(), next_seq: 0 }
    }

    /// The document is exactly as the valid writes left it.
    async fn verify(&self, addr: std::net::SocketAddr, when: &str) {
        let r = request(addr, "GET", CTL, &[], b"").await;
        assert_eq!(r.status, 200, "{when}: {r:?}");
        assert_eq!(r.text(), self.text, "{when}: a malformed request changed the control document");
        assert_eq!(r.header("version"), Some(self.version.as_str()), "{when}: the control document's version moved");
        let f = request(addr, "GET", FILE, &[], b"").await;
        assert_eq!(
            (f.status, f.body.as_slice()),
            (200, FILE_BYTES),
            "{when}: a malformed request changed the control file"
        );
        assert_eq!(f.header("version"), Some(FILE_V), "{when}: the control file's version moved");
    }

    /// Health, then one valid append and a read of the control document.
    async fn check(&mut self, addr: std::net::SocketAddr, when: &str) {
        let h = request(addr, "GET", "/.plait/health", &[], b"").await;
        assert_eq!(h.status, 200, "{when}: health {h:?}");
        assert_eq!(h.json()["status"], "ok");
        self.verify(addr, when).await;
        let version = format!("\"chk-{}\"", self.next_seq);
        let len = self.text.chars().count();
        let range = format!("text [{len}:{len}]");
        let headers =
            [("Version", version.as_str()), ("Parents", self.version.as_str()), ("Content-Range", range.as_str())];
        let r = request(addr, "PUT", CTL, &headers, b".").await;
        assert_eq!(r.status, 200, "{when}: a valid write failed: {r:?}");
        self.next_seq += 1;
        self.text.push('.');
        self.version = version;
        self.verify(addr, when).await;
    }
}

/// Valid traffic before the baseline, so lazily built state (allocator arenas, RocksDB
/// memtables, the control document) is not counted as growth.
async fn warm_up(addr: std::net::SocketAddr, ctl: &mut Control) {
    for i in 0..40 {
        let path = format!("/malformed/warm-{}", i % 4);
        let r = request(addr, "PUT", &path, &[], format!("warm text {i}").as_bytes()).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(request(addr, "GET", &path, &[], b"").await.status, 200);
        if i % 10 == 0 {
            ctl.check(addr, "warm-up").await;
        }
    }
}

/// Runs every case once, `workers` connections at a time; returns failures and answers.
async fn run_all(
    addr: std::net::SocketAddr,
    cases: Arc<Vec<Case>>,
    workers: usize,
) -> Vec<(usize, Result<Vec<Answer>, String>)> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (cases, next) = (cases.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(case) = cases.get(i) else { break };
                out.push((i, run_case(addr, case).await));
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_by_key(|(i, _)| *i);
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_requests_get_4xx_json_and_the_server_stays_healthy() {
    let started = std::time::Instant::now();
    let cases = all_cases();
    assert!(cases.len() >= 300, "only {} cases", cases.len());
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before, "case names must be unique");
    for case in &cases {
        for e in &case.expect {
            assert!(e.allowed_status(), "{}: expectation {e:?} is not a 4xx/309", case.name);
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let mut server = Server::start(&dir.path().join("data"), &log);
    let addr = server.addr;
    let mut ctl = Control::create(addr).await;
    warm_up(addr, &mut ctl).await;
    let baseline = server.settled_rss_kib().await;

    // Pass 1: one case at a time, health and the control document checked every 50.
    let mut failures = Vec::new();
    let mut by_hyper: Vec<(String, u16)> = Vec::new();
    let mut by_us = 0;
    for (i, case) in cases.iter().enumerate() {
        if i % 50 == 0 {
            ctl.check(addr, &format!("before case {i}")).await;
        }
        match run_case(addr, case).await {
            Ok(answers) => {
                for a in answers {
                    match a {
                        Answer::Hyper(status) => by_hyper.push((case.name.clone(), status)),
                        Answer::Ours => by_us += 1,
                    }
                }
            }
            Err(e) => failures.push(format!("{}: {e}", case.name)),
        }
    }
    ctl.check(addr, "after pass 1").await;
    assert!(server.still_running(), "the server exited");
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
    let after_one = server.settled_rss_kib().await;

    // Passes 2-4: the whole set three more times, 8 connections at a time.
    let shared = Arc::new(cases);
    for pass in 2..=4 {
        for (i, result) in run_all(addr, shared.clone(), 8).await {
            if let Err(e) = result {
                failures.push(format!("pass {pass}: {}: {e}", shared[i].name));
            }
        }
        ctl.check(addr, &format!("after pass {pass}")).await;
    }
    assert!(failures.is_empty(), "{} failures in the repeats:\n{}", failures.len(), failures.join("\n"));
    let after_repeats = server.settled_rss_kib().await;

    let mut categories: Vec<(String, usize)> = Vec::new();
    for case in shared.iter() {
        let cat = case.name.split('/').next().unwrap_or_default().to_string();
        match categories.iter_mut().find(|(c, _)| *c == cat) {
            Some((_, n)) => *n += 1,
            None => categories.push((cat, 1)),
        }
    }
    println!("malformed: {} cases x 4 passes in {:.1?}", shared.len(), started.elapsed());
    println!("malformed: categories {categories:?}");
    println!("malformed: {by_us} responses from our handlers, {} from hyper itself:", by_hyper.len());
    for (name, status) in &by_hyper {
        println!("malformed:   hyper {status}  {name}");
    }
    println!(
        "malformed: VmRSS baseline {baseline} KiB, after pass 1 {after_one} KiB, after 3 more passes {after_repeats} KiB"
    );
    let bound = after_one * 3 / 2 + 20 * 1024;
    assert!(
        after_repeats <= bound,
        "memory keeps growing: {after_one} KiB after one pass, {after_repeats} KiB after four"
    );

    ctl.verify(addr, "at the end").await;
    // Nothing is left behind: parked writes expired, failed subscriptions uncounted.
    let health = request(addr, "GET", "/.plait/health", &[], b"").await.json();
    println!("malformed: health at the end {health}");
    assert_eq!(health["parked_writes"], 0, "{health}");
    if let Some(subs) = health.get("subscriptions") {
        assert_eq!(subs, 0, "{health}");
    }
    assert!(server.still_running(), "the server exited");
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!log_text.contains("panicked"), "the server panicked:\n{log_text}");
    assert!(!log_text.contains("ERROR"), "the server logged errors:\n{log_text}");
}
