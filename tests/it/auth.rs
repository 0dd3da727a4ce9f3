//! Access control (docs/ACCESS.md): a matrix of credentials × requests over real HTTP,
//! against RocksDB in token mode. Every row is a request and the status (and error code) it
//! must get; every row runs, the whole table is printed, and the test fails if any row
//! deviates. The helpers here (token server, creating tokens and links) are shared with
//! `auth_live.rs`.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use plait::config::{AuthMode, ServeConfig};
use serde_json::{json, Value};

use crate::support::client::{request, Conn, Response};
use crate::support::server::{Engine, TestServer};

/// The admin token of every in-process token-mode server (64 hex characters, as
/// `openssl rand -hex 32` makes).
pub const ADMIN: &str = "a1d2m3i4n5a6d7m8i9n0a1d2m3i4n5a6d7m8i9n0a1d2m3i4n5a6d7m8i9n0abcd";

/// The text of `/secret`: no response to anyone but the admin may contain it.
const SECRET_TEXT: &str = "TOP-SECRET-7f3c9a-do-not-leak";

/// `Bearer <token>`.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Milliseconds since the Unix epoch (the clock `created_ms`/`expires_ms` are on).
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// An in-process server in token mode with [`ADMIN`] as its admin token and failure
/// throttling effectively off (tests that fail on purpose would otherwise be throttled).
pub async fn token_server(engine: Engine, tweak: impl FnOnce(&mut ServeConfig)) -> TestServer {
    TestServer::start_with(engine, |c| {
        c.auth = AuthMode::Token;
        c.admin_token = Some(ADMIN.to_string());
        c.auth_failures_per_minute = 1_000_000;
        tweak(c);
    })
    .await
}

/// One request with `Authorization: Bearer <token>` (plus `headers`).
pub async fn with_token(
    addr: SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let auth = bearer(token);
    let mut all = vec![("Authorization", auth.as_str())];
    all.extend_from_slice(headers);
    request(addr, method, path, &all, body).await
}

/// A token made through `POST /.plait/tokens`.
#[derive(Clone, Debug)]
pub struct Token {
    pub id: String,
    pub token: String,
    pub expires_ms: Option<u64>,
    pub json: Value,
}

impl Token {
    /// The secret part (after the last `_`).
    pub fn secret(&self) -> &str {
        self.token.rsplit('_').next().unwrap()
    }
}

/// A share link made through `POST /.plait/shares`.
#[derive(Clone, Debug)]
pub struct Share {
    pub id: String,
    /// The link part of the URL: `<id>_<secret>`.
    pub link: String,
    /// `/.plait/s/<link>`.
    pub href: String,
    pub expires_ms: Option<u64>,
    pub json: Value,
}

impl Share {
    pub fn secret(&self) -> &str {
        self.link.rsplit('_').next().unwrap()
    }
}

/// True for `plait_<16 hex>_<64 hex>`.
pub fn token_shape_ok(t: &str) -> bool {
    let parts: Vec<&str> = t.split('_').collect();
    let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    parts.len() == 3
        && parts[0] == "plait"
        && parts[1].len() == 16
        && parts[2].len() == 64
        && hex(parts[1])
        && hex(parts[2])
}

/// Creates a token as `by` (which must be allowed to); panics unless the answer is 201.
pub async fn create_token(
    addr: SocketAddr,
    by: &str,
    label: &str,
    rights: &str,
    prefixes: &[&str],
    expires_in_secs: Option<u64>,
) -> Token {
    let mut body = json!({"label": label, "rights": rights, "prefixes": prefixes});
    if let Some(e) = expires_in_secs {
        body["expires_in_secs"] = json!(e);
    }
    let r = with_token(
        addr,
        by,
        "POST",
        "/.plait/tokens",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 201, "creating token {label:?}: {}", r.text());
    let j = r.json();
    let token = j["token"].as_str().unwrap_or_else(|| panic!("no token in {j}")).to_string();
    let id = j["id"].as_str().unwrap_or_else(|| panic!("no id in {j}")).to_string();
    assert!(token_shape_ok(&token), "token {token:?} is not plait_<16 hex>_<64 hex>");
    assert_eq!(token.split('_').nth(1), Some(id.as_str()), "the token names its id");
    Token { id, token, expires_ms: j["expires_ms"].as_u64(), json: j }
}

/// Creates a share link as `by`; panics unless the answer is 201.
pub async fn create_share(addr: SocketAddr, by: &str, body: Value) -> Share {
    let r = try_create_share(addr, by, &body).await;
    assert_eq!(r.status, 201, "creating share {body}: {}", r.text());
    let j = r.json();
    let id = j["id"].as_str().unwrap_or_else(|| panic!("no id in {j}")).to_string();
    let href = j["href"].as_str().unwrap_or_else(|| panic!("no href in {j}")).to_string();
    let link =
        href.strip_prefix("/.plait/s/").unwrap_or_else(|| panic!("href {href:?} not under /.plait/s/")).to_string();
    assert!(link.starts_with(&id), "link {link:?} does not start with its id {id:?}");
    assert!(j["url"].as_str().is_some_and(|u| u.ends_with(&href)), "url does not end with href: {j}");
    Share { id, link, href, expires_ms: j["expires_ms"].as_u64(), json: j }
}

/// `POST /.plait/shares` as `by`, whatever the answer.
pub async fn try_create_share(addr: SocketAddr, by: &str, body: &Value) -> Response {
    with_token(addr, by, "POST", "/.plait/shares", &[("Content-Type", "application/json")], body.to_string().as_bytes())
        .await
}

// ---------------------------------------------------------------------------------------
// The matrix.

/// What a row must get.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Exactly this status (a success).
    Status(u16),
    /// Any 2xx.
    Success,
    /// This status with this error code (JSON `error` and `Plait-Error`).
    Error(u16, &'static str),
    /// 400, whatever the code (validation of JSON bodies, where the code is not specified).
    BadRequest,
    /// Anything but a 2xx (and never the secret text).
    Refused,
}

impl Expect {
    fn allows_success(self) -> bool {
        matches!(self, Expect::Status(_) | Expect::Success)
    }
    fn describe(self) -> String {
        match self {
            Expect::Status(s) => s.to_string(),
            Expect::Success => "2xx".into(),
            Expect::Error(s, c) => format!("{s} {c}"),
            Expect::BadRequest => "400".into(),
            Expect::Refused => "not 2xx".into(),
        }
    }
}

/// One row: a request and what it must get.
struct Case {
    name: String,
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    expect: Expect,
    /// The exact body a success must have.
    text: Option<String>,
    /// Only the admin's reads of /secret may show its text.
    sees_secret: bool,
}

impl Case {
    fn new(name: impl Into<String>, method: &'static str, path: impl Into<String>, expect: Expect) -> Case {
        Case {
            name: name.into(),
            method,
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
            expect,
            text: None,
            sees_secret: false,
        }
    }
    fn auth(self, token: &str) -> Case {
        self.header("Authorization", bearer(token))
    }
    fn header(mut self, name: &str, value: impl Into<String>) -> Case {
        self.headers.push((name.to_string(), value.into()));
        self
    }
    fn body(mut self, body: impl Into<Vec<u8>>) -> Case {
        self.body = body.into();
        self
    }
    fn json(self, v: Value) -> Case {
        self.header("Content-Type", "application/json").body(v.to_string())
    }
    fn subscribe(self) -> Case {
        self.header("Subscribe", "true")
    }
    fn text(mut self, t: &str) -> Case {
        self.text = Some(t.to_string());
        self
    }
    fn sees_secret(mut self) -> Case {
        self.sees_secret = true;
        self
    }
    fn is_subscribe(&self) -> bool {
        self.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("subscribe"))
    }
}

/// What a row got, and what was wrong with it.
struct Outcome {
    status: u16,
    code: String,
    problems: Vec<String>,
}

async fn run_case(addr: SocketAddr, c: &Case) -> Outcome {
    let headers: Vec<(&str, &str)> = c.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let mut conn = Conn::open(addr).await;
    conn.send(c.method, &c.path, &headers, &c.body).await;
    // A subscription's 209 never ends: only its head is read (errors carry Plait-Error).
    let res = if c.is_subscribe() { conn.read_head().await } else { conn.read_response(c.method).await };
    let header_code = res.header("plait-error").map(str::to_string);
    let body_text = String::from_utf8_lossy(&res.body).into_owned();
    let json_code = if res.status >= 400 && !res.body.is_empty() {
        serde_json::from_slice::<Value>(&res.body).ok().map(|j| j["error"].as_str().unwrap_or("").to_string())
    } else {
        None
    };
    let code = header_code.clone().or_else(|| json_code.clone()).unwrap_or_default();
    let mut problems = Vec::new();
    let success = (200..300).contains(&res.status);
    if success && !c.expect.allows_success() {
        problems.push("LET THROUGH (2xx)".to_string());
    }
    match c.expect {
        Expect::Status(s) if res.status != s => problems.push(format!("status {} (want {s})", res.status)),
        Expect::Success if !success => problems.push(format!("status {} (want 2xx)", res.status)),
        Expect::Error(s, want) => {
            if res.status != s {
                problems.push(format!("status {} (want {s})", res.status));
            }
            if header_code.as_deref() != Some(want) {
                problems.push(format!("Plait-Error {header_code:?} (want {want})"));
            }
            let body_expected = !c.is_subscribe() && c.method != "HEAD";
            if body_expected && json_code.as_deref() != Some(want) {
                problems.push(format!("JSON error {json_code:?} (want {want}); body {body_text:?}"));
            }
        }
        Expect::BadRequest if res.status != 400 => problems.push(format!("status {} (want 400)", res.status)),
        _ => {}
    }
    if res.status >= 400 && json_code.is_some() && header_code.is_some() && json_code != header_code {
        problems.push(format!("JSON error {json_code:?} differs from Plait-Error {header_code:?}"));
    }
    if let (Some(want), true) = (&c.text, success) {
        if &body_text != want {
            problems.push(format!("body {body_text:?} (want {want:?})"));
        }
    }
    if !c.sees_secret && body_text.contains(SECRET_TEXT) {
        problems.push("LEAKED the text of /secret".to_string());
    }
    if res.status == 401 {
        let www = res.header("www-authenticate").unwrap_or("");
        if code == "auth_required" && www != "Bearer realm=\"plait\"" {
            problems.push(format!("WWW-Authenticate {www:?} (want Bearer realm=\"plait\")"));
        }
        if code == "invalid_token" && !(www.starts_with("Bearer") && www.contains("error=\"invalid_token\"")) {
            problems.push(format!("WWW-Authenticate {www:?} (want Bearer realm=\"plait\", error=\"invalid_token\")"));
        }
    }
    if res.status == 429 && res.header("retry-after").is_none() {
        problems.push("429 without Retry-After".to_string());
    }
    Outcome { status: res.status, code, problems }
}

/// Runs rows in order, printing each; returns the failing rows' descriptions.
async fn run_rows(addr: SocketAddr, rows: Vec<Case>, table: &mut Vec<String>, failures: &mut Vec<String>) -> usize {
    let n = rows.len();
    for c in rows {
        let o = run_case(addr, &c).await;
        let line = format!(
            "{:4} {:>3} {:<22} | {} {} -> want {}",
            if o.problems.is_empty() { "ok" } else { "FAIL" },
            o.status,
            o.code,
            c.method,
            c.name,
            c.expect.describe()
        );
        if !o.problems.is_empty() {
            failures.push(format!("{} {} [{}]: {}", c.method, c.name, c.path, o.problems.join("; ")));
        }
        table.push(line);
    }
    n
}

/// The token with byte `i` XOR 0x01.
fn flip(s: &str, i: usize) -> String {
    let mut b = s.as_bytes().to_vec();
    b[i] ^= 0x01;
    String::from_utf8(b).unwrap()
}

/// Bytes the HTTP stack accepts raw in a request path (the rest are percent-escaped, so a
/// flipped link still reaches the server: it is then a different, malformed link).
fn path_byte_ok(b: u8) -> bool {
    matches!(b, 0x21 | 0x24..=0x3B | 0x3D | 0x40..=0x5F | 0x61..=0x7A | 0x7C | 0x7E)
}

fn flip_for_path(s: &str, i: usize) -> String {
    let flipped = flip(s, i);
    flipped.bytes().map(|b| if path_byte_ok(b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// A PUT with the admin token that must succeed.
pub async fn admin_put(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
    let r = with_token(addr, ADMIN, "PUT", path, headers, body.as_bytes()).await;
    assert_eq!(r.status, 200, "admin PUT {path}: {}", r.text());
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_matrix() {
    let s = token_server(Engine::Rocks, |_| {}).await;
    let a = s.addr;

    // Documents, written by the admin.
    admin_put(a, "/secret", &[], SECRET_TEXT).await;
    admin_put(a, "/notes/a", &[("Version", "\"seed-11\""), ("Parents", "")], "notes a text").await;
    admin_put(a, "/notes", &[], "the notes root").await;
    admin_put(a, "/notes/w", &[], "writable").await;
    admin_put(a, "/notes/del", &[], "to delete").await;
    admin_put(a, "/other", &[], "other text").await;
    for (i, t) in ["one", "one two", "one two three"].iter().enumerate() {
        admin_put(a, "/notes/compactme", &[], t).await;
        admin_put(a, "/other", &[], &format!("other text {i}")).await;
    }

    // Credentials that expire first, so that their expiry is reached while the rest runs.
    let exp = create_token(a, ADMIN, "short-lived", "read", &["/notes/"], Some(1)).await;
    let l_exp = create_share(a, ADMIN, json!({"path": "/notes/a", "rights": "read", "expires_in_secs": 1})).await;
    let exp_deadline = exp.expires_ms.expect("expires_ms").max(l_exp.expires_ms.expect("link expires_ms"));

    let w = create_token(a, ADMIN, "writer", "write", &["/notes/"], None).await;
    let r = create_token(a, ADMIN, "reader", "read", &["/notes/"], None).await;
    let an = create_token(a, ADMIN, "notes admin", "admin", &["/notes/"], None).await;
    let multi = create_token(a, ADMIN, "multi", "read", &["/notes", "/other"], None).await;
    let rev = create_token(a, ADMIN, "to revoke", "read", &["/notes/"], None).await;

    let l_read = create_share(a, &r.token, json!({"path": "/notes/a", "rights": "read", "label": "read link"})).await;
    let l_sub = create_share(a, &r.token, json!({"path": "/notes/a", "rights": "subscribe"})).await;
    let l_write = create_share(a, &w.token, json!({"path": "/notes/w", "rights": "write"})).await;
    let l_rev = create_share(a, ADMIN, json!({"path": "/notes/a", "rights": "read"})).await;
    let l_admin = create_share(a, ADMIN, json!({"path": "/secret", "rights": "read"})).await;

    let mut table = Vec::new();
    let mut failures = Vec::new();
    let mut cases = 0;

    // Phase A: the expiring credentials work before their deadline.
    let early = vec![
        Case::new("expiring token before expiry", "GET", "/notes/a", Expect::Status(200)).auth(&exp.token),
        Case::new("expiring link before expiry", "GET", l_exp.href.clone(), Expect::Status(200)),
    ];
    if now_ms() + 300 < exp.expires_ms.unwrap().min(l_exp.expires_ms.unwrap()) {
        cases += run_rows(a, early, &mut table, &mut failures).await;
    } else {
        table.push("skip: the machine was too slow to use the 1 s credentials before they expired".into());
    }

    // Revocations.
    let d = with_token(a, ADMIN, "DELETE", &format!("/.plait/tokens/{}", rev.id), &[], b"").await;
    assert_eq!(d.status, 204, "revoking a token: {}", d.text());
    let d = with_token(a, ADMIN, "DELETE", &format!("/.plait/shares/{}", l_rev.id), &[], b"").await;
    assert_eq!(d.status, 204, "revoking a link: {}", d.text());

    let mut m: Vec<Case> = Vec::new();
    use Expect::*;
    let forbidden = Error(403, "forbidden");
    let required = Error(401, "auth_required");
    let invalid = Error(401, "invalid_token");
    let bad_link = Error(403, "invalid_share_link");
    let bad_path = Error(400, "bad_path");
    let dup = Error(400, "duplicate_header");
    let token_body = json!({"label": "x", "rights": "read", "prefixes": ["/notes/"]});

    // -- No credentials needed.
    m.push(Case::new("health, no token", "GET", "/.plait/health", Status(200)));
    m.push(Case::new("editor.js, no token", "GET", "/.plait/client/editor.js", Status(200)));
    m.push(Case::new("simpleton.js, no token", "GET", "/.plait/client/simpleton.js", Status(200)));
    m.push(
        Case::new("CORS preflight for PUT /secret, no token", "OPTIONS", "/secret", Success)
            .header("Origin", "https://app.example")
            .header("Access-Control-Request-Method", "PUT")
            .header("Access-Control-Request-Headers", "authorization"),
    );
    m.push(
        Case::new("CORS preflight for subscribe, no token", "OPTIONS", "/notes/a", Success)
            .header("Origin", "https://app.example")
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", "authorization, subscribe"),
    );

    // -- No Authorization header.
    for (method, path) in [
        ("GET", "/notes/a"),
        ("GET", "/secret"),
        ("HEAD", "/notes/a"),
        ("PUT", "/notes/a"),
        ("PATCH", "/notes/a"),
        ("POST", "/notes/a"),
        ("DELETE", "/secret"),
        ("GET", "/"),
        ("OPTIONS", "/notes/a"), // not a CORS preflight: no Origin
        ("GET", "/.plait/tokens"),
        ("POST", "/.plait/tokens"),
        ("GET", "/.plait/shares"),
        ("POST", "/.plait/shares"),
        ("GET", "/.plait/history/secret"),
        ("GET", "/.plait/diff/secret"),
        ("GET", "/.plait/checkpoints/secret"),
        ("POST", "/.plait/restore/secret"),
        ("POST", "/.plait/compact/secret?versions=1"),
    ] {
        m.push(Case::new(format!("{path}, no Authorization"), method, path, required));
    }
    m.push(Case::new("subscribe /notes/a, no Authorization", "GET", "/notes/a", required).subscribe());

    // -- Malformed or wrong Authorization.
    let raw = |name: &str, value: String| Case::new(name, "GET", "/notes/a", invalid).header("Authorization", value);
    m.push(raw("Basic scheme", "Basic YWRtaW46YWRtaW4=".into()));
    m.push(raw("Basic scheme carrying the admin token", format!("Basic {ADMIN}")));
    m.push(raw("Token scheme with a valid token", format!("Token {}", r.token)));
    m.push(raw("token without a scheme", r.token.clone()));
    m.push(raw("Bearer with an empty token", "Bearer".into()));
    m.push(raw("Bearer with only spaces", "Bearer    ".into()));
    m.push(raw("Bearer token plus extra word", format!("Bearer {} extra", r.token)));
    m.push(raw("Bearer token plus a byte", format!("Bearer {}0", r.token)));
    m.push(raw("Bearer token minus its last byte", format!("Bearer {}", &r.token[..r.token.len() - 1])));
    m.push(raw("Bearer token with the secret cut off", format!("Bearer plait_{}_", r.id)));
    m.push(raw("Bearer token id only", format!("Bearer plait_{}", r.id)));
    m.push(raw("Bearer plait_", "Bearer plait_".into()));
    m.push(raw("Bearer unknown id", format!("Bearer plait_0000000000000000_{}", "0".repeat(64))));
    m.push(raw("Bearer known id, all-zero secret", format!("Bearer plait_{}_{}", r.id, "0".repeat(64))));
    m.push(raw("Bearer id of one token, secret of another", format!("Bearer plait_{}_{}", r.id, w.secret())));
    m.push(raw("Bearer token upper-cased", format!("Bearer {}", r.token.to_uppercase())));
    m.push(raw("Bearer admin token minus last byte", format!("Bearer {}", &ADMIN[..ADMIN.len() - 1])));
    m.push(raw("Bearer admin token plus a byte", format!("Bearer {ADMIN}0")));
    m.push(raw("Bearer admin token upper-cased", format!("Bearer {}", ADMIN.to_uppercase())));
    m.push(raw("Bearer admin token, last byte flipped", format!("Bearer {}", flip(ADMIN, ADMIN.len() - 1))));
    m.push(raw("Bearer admin token, first byte flipped", format!("Bearer {}", flip(ADMIN, 0))));
    m.push(raw("Bearer with a share link", format!("Bearer {}", l_read.link)));
    m.push(raw("revoked token", bearer(&rev.token)));
    m.push(Case::new("revoked token, PUT", "PUT", "/notes/w", invalid).auth(&rev.token).body("x"));
    m.push(Case::new("revoked token, subscribe", "GET", "/notes/a", invalid).auth(&rev.token).subscribe());
    m.push(Case::new("invalid token on /secret", "GET", "/secret", invalid).auth(&flip(&w.token, 30)));

    // -- The scheme is case-insensitive.
    m.push(
        Case::new("lower-case bearer, read token", "GET", "/notes/a", Status(200))
            .header("Authorization", format!("bearer {}", r.token))
            .text("notes a text"),
    );
    m.push(
        Case::new("upper-case BEARER, read token", "GET", "/notes/a", Status(200))
            .header("Authorization", format!("BEARER {}", r.token))
            .text("notes a text"),
    );
    m.push(
        Case::new("mixed-case bEaReR, admin token", "GET", "/secret", Status(200))
            .header("Authorization", format!("bEaReR {ADMIN}"))
            .text(SECRET_TEXT)
            .sees_secret(),
    );

    // -- Two Authorization headers, even when both are valid.
    let two = |name: &str, method: &'static str, path: &str, x: &str, y: &str| {
        Case::new(name, method, path, dup).header("Authorization", bearer(x)).header("Authorization", bearer(y))
    };
    m.push(two("two identical read tokens", "GET", "/notes/a", &r.token, &r.token));
    m.push(two("two admin tokens on /secret", "GET", "/secret", ADMIN, ADMIN));
    m.push(two("read token then garbage", "GET", "/notes/a", &r.token, "garbage"));
    m.push(two("garbage then admin token", "GET", "/secret", "garbage", ADMIN));
    m.push(two("read token then write token", "GET", "/notes/a", &r.token, &w.token));
    m.push(two("two write tokens on PUT", "PUT", "/notes/w", &w.token, &w.token).body("dup"));
    m.push(two("two admin tokens on /.plait/tokens", "GET", "/.plait/tokens", ADMIN, ADMIN));

    // -- Every byte of a valid token flipped.
    for i in 0..w.token.len() {
        let bad = flip(&w.token, i);
        let from = w.token.as_bytes()[i] as char;
        let to = bad.as_bytes()[i] as char;
        m.push(
            Case::new(format!("write token byte {i} flipped ({from:?}->{to:?})"), "GET", "/notes/a", invalid)
                .auth(&bad),
        );
    }

    // -- Every byte of a share link's link part flipped.
    for i in 0..l_sub.link.len() {
        let bad = flip_for_path(&l_sub.link, i);
        let from = l_sub.link.as_bytes()[i] as char;
        m.push(Case::new(
            format!("subscribe link byte {i} flipped ({from:?})"),
            "GET",
            format!("/.plait/s/{bad}"),
            bad_link,
        ));
    }

    // -- Malformed, revoked and misused links.
    m.push(Case::new("empty link", "GET", "/.plait/s/", bad_link));
    m.push(Case::new("garbage link", "GET", "/.plait/s/garbage", bad_link));
    m.push(Case::new("token used as a link", "GET", format!("/.plait/s/{}", w.token), bad_link));
    m.push(Case::new("link id only", "GET", format!("/.plait/s/{}", l_read.id), bad_link));
    m.push(Case::new("link plus a byte", "GET", format!("/.plait/s/{}0", l_read.link), bad_link));
    m.push(Case::new(
        "link minus its last byte",
        "GET",
        format!("/.plait/s/{}", &l_read.link[..l_read.link.len() - 1]),
        bad_link,
    ));
    m.push(Case::new("link upper-cased", "GET", format!("/.plait/s/{}", l_read.link.to_uppercase()), bad_link));
    m.push(Case::new(
        "link id with another link's secret",
        "GET",
        format!("/.plait/s/{}_{}", l_read.id, l_sub.secret()),
        bad_link,
    ));
    m.push(Case::new("revoked link", "GET", l_rev.href.clone(), bad_link));
    m.push(Case::new("revoked link, subscribe", "GET", l_rev.href.clone(), bad_link).subscribe());

    // -- The admin token.
    m.push(Case::new("admin reads /secret", "GET", "/secret", Status(200)).auth(ADMIN).text(SECRET_TEXT).sees_secret());
    m.push(Case::new("admin writes", "PUT", "/admin-doc", Status(200)).auth(ADMIN).body("by admin"));
    m.push(Case::new("admin lists tokens", "GET", "/.plait/tokens", Status(200)).auth(ADMIN));
    m.push(Case::new("admin lists shares", "GET", "/.plait/shares", Status(200)).auth(ADMIN).sees_secret());
    m.push(
        Case::new("admin history of /secret", "GET", "/.plait/history/secret", Status(200)).auth(ADMIN).sees_secret(),
    );
    m.push(Case::new("admin compacts /other", "POST", "/.plait/compact/other?versions=1", Status(200)).auth(ADMIN));
    m.push(
        Case::new(
            "admin revokes unknown token",
            "DELETE",
            "/.plait/tokens/ffffffffffffffff",
            Error(404, "no_such_token"),
        )
        .auth(ADMIN),
    );
    m.push(
        Case::new(
            "admin revokes a revoked token",
            "DELETE",
            format!("/.plait/tokens/{}", rev.id),
            Error(404, "no_such_token"),
        )
        .auth(ADMIN),
    );
    m.push(
        Case::new(
            "admin revokes unknown share",
            "DELETE",
            "/.plait/shares/ffffffffffffffff",
            Error(404, "no_such_share"),
        )
        .auth(ADMIN),
    );
    m.push(
        Case::new("admin creates a token", "POST", "/.plait/tokens", Status(201)).auth(ADMIN).json(token_body.clone()),
    );

    // -- Token creation is validated.
    let long = "x".repeat(201);
    let prefixes33: Vec<String> = (0..33).map(|i| format!("/p{i}/")).collect();
    let prefixes32: Vec<String> = (0..32).map(|i| format!("/p{i}/")).collect();
    for (name, body) in [
        ("empty label", json!({"label": "", "rights": "read", "prefixes": ["/notes/"]})),
        ("label of 201 characters", json!({"label": long, "rights": "read", "prefixes": ["/notes/"]})),
        ("label with a control character", json!({"label": "a\u{7}b", "rights": "read", "prefixes": ["/notes/"]})),
        ("label missing", json!({"rights": "read", "prefixes": ["/notes/"]})),
        ("rights root", json!({"label": "x", "rights": "root", "prefixes": ["/notes/"]})),
        ("rights missing", json!({"label": "x", "prefixes": ["/notes/"]})),
        ("no prefixes", json!({"label": "x", "rights": "read", "prefixes": []})),
        ("prefix without /", json!({"label": "x", "rights": "read", "prefixes": ["notes"]})),
        ("prefix with ..", json!({"label": "x", "rights": "read", "prefixes": ["/notes/../"]})),
        ("33 prefixes", json!({"label": "x", "rights": "read", "prefixes": prefixes33})),
        ("expires_in_secs 0", json!({"label": "x", "rights": "read", "prefixes": ["/"], "expires_in_secs": 0})),
        (
            "expires_in_secs over 10 years",
            json!({"label": "x", "rights": "read", "prefixes": ["/"], "expires_in_secs": 400_000_000u64}),
        ),
    ] {
        m.push(Case::new(format!("create token: {name}"), "POST", "/.plait/tokens", BadRequest).auth(ADMIN).json(body));
    }
    m.push(Case::new("create token: not JSON", "POST", "/.plait/tokens", BadRequest).auth(ADMIN).body("label=x"));
    m.push(
        Case::new("create token: 32 prefixes, 200-char label", "POST", "/.plait/tokens", Status(201))
            .auth(ADMIN)
            .json(json!({"label": "y".repeat(200), "rights": "read", "prefixes": prefixes32})),
    );

    // -- A write token on /notes/.
    let wt = &w.token;
    m.push(Case::new("write token reads its prefix", "GET", "/notes/a", Status(200)).auth(wt).text("notes a text"));
    m.push(
        Case::new("write token reads /notes (the prefix itself)", "GET", "/notes", Status(200))
            .auth(wt)
            .text("the notes root"),
    );
    m.push(Case::new("write token reads a deep path", "GET", "/notes/sub/deep/x", Status(200)).auth(wt));
    m.push(Case::new("write token PUT", "PUT", "/notes/w", Status(200)).auth(wt).body("put by w"));
    m.push(
        Case::new("write token PATCH", "PATCH", "/notes/w", Success)
            .auth(wt)
            .header("Content-Range", "text [0:0]")
            .body(">"),
    );
    m.push(
        Case::new("write token POST", "POST", "/notes/w", Success)
            .auth(wt)
            .header("Content-Range", "text [0:0]")
            .body(">"),
    );
    m.push(Case::new("write token DELETE", "DELETE", "/notes/del", Success).auth(wt));
    m.push(
        Case::new("write token restore", "POST", "/.plait/restore/notes/a", Status(200))
            .auth(wt)
            .json(json!({"version": ["seed-11"]})),
    );
    m.push(
        Case::new("write token names a checkpoint", "POST", "/.plait/checkpoints/notes/a", Success)
            .auth(wt)
            .json(json!({"name": "w-cp"})),
    );
    m.push(
        Case::new("write token removes a checkpoint", "DELETE", "/.plait/checkpoints/notes/a?name=w-cp", Success)
            .auth(wt),
    );
    m.push(Case::new("write token history", "GET", "/.plait/history/notes/a", Status(200)).auth(wt));
    m.push(Case::new("write token subscribes", "GET", "/notes/a", Status(209)).auth(wt).subscribe());
    m.push(Case::new("write token lists its shares", "GET", "/.plait/shares", Status(200)).auth(wt));
    m.push(
        Case::new("write token creates a write link", "POST", "/.plait/shares", Status(201))
            .auth(wt)
            .json(json!({"path": "/notes/w", "rights": "write"})),
    );
    m.push(
        Case::new(
            "write token compacts (needs admin)",
            "POST",
            "/.plait/compact/notes/compactme?versions=1",
            forbidden,
        )
        .auth(wt),
    );
    m.push(Case::new("write token lists tokens", "GET", "/.plait/tokens", forbidden).auth(wt));
    m.push(
        Case::new("write token creates a token", "POST", "/.plait/tokens", forbidden).auth(wt).json(token_body.clone()),
    );
    m.push(Case::new("write token revokes a token", "DELETE", format!("/.plait/tokens/{}", r.id), forbidden).auth(wt));
    m.push(
        Case::new(
            "write token revokes the admin's link",
            "DELETE",
            format!("/.plait/shares/{}", l_admin.id),
            Error(404, "no_such_share"),
        )
        .auth(wt),
    );
    m.push(
        Case::new("write token shares /secret", "POST", "/.plait/shares", forbidden)
            .auth(wt)
            .json(json!({"path": "/secret", "rights": "read"})),
    );
    // Wrong prefixes.
    for path in ["/other", "/notes2", "/Notes/a", "/%6Eotes/a", "//notes/a", "/secret", "/note", "/xnotes/a", "/other/"]
    {
        m.push(Case::new(format!("write token on /notes/ reads {path}"), "GET", path, forbidden).auth(wt));
    }
    // The root folder lists what the token reads (only `notes/`: tests/it/folders.rs).
    m.push(Case::new("write token on /notes/ lists /", "GET", "/", Status(200)).auth(wt));
    for path in ["/other", "/notes2", "/Notes/a", "/%6Eotes/a", "//notes/a", "/secret"] {
        m.push(Case::new(format!("write token on /notes/ writes {path}"), "PUT", path, forbidden).auth(wt).body("x"));
    }
    m.push(Case::new("write token deletes /secret", "DELETE", "/secret", forbidden).auth(wt));
    m.push(Case::new("write token subscribes /secret", "GET", "/secret", forbidden).auth(wt).subscribe());
    m.push(Case::new("write token history of /secret", "GET", "/.plait/history/secret", forbidden).auth(wt));
    m.push(Case::new("write token diff of /secret", "GET", "/.plait/diff/secret", forbidden).auth(wt));
    m.push(Case::new("write token checkpoints of /secret", "GET", "/.plait/checkpoints/secret", forbidden).auth(wt));
    m.push(
        Case::new("write token restores /secret", "POST", "/.plait/restore/secret", forbidden)
            .auth(wt)
            .json(json!({"version": []})),
    );

    // -- A read token on /notes/.
    let rt = &r.token;
    m.push(Case::new("read token GET", "GET", "/notes/a", Status(200)).auth(rt).text("notes a text"));
    m.push(Case::new("read token HEAD", "HEAD", "/notes/a", Status(200)).auth(rt));
    m.push(Case::new("read token subscribes", "GET", "/notes/a", Status(209)).auth(rt).subscribe());
    m.push(Case::new("read token OPTIONS", "OPTIONS", "/notes/a", Success).auth(rt));
    m.push(
        Case::new("read token GET with Version", "GET", "/notes/a", Status(200))
            .auth(rt)
            .header("Version", "\"seed-11\"")
            .text("notes a text"),
    );
    m.push(Case::new("read token history", "GET", "/.plait/history/notes/a", Status(200)).auth(rt));
    m.push(Case::new("read token diff", "GET", "/.plait/diff/notes/a", Status(200)).auth(rt));
    m.push(Case::new("read token lists checkpoints", "GET", "/.plait/checkpoints/notes/a", Status(200)).auth(rt));
    m.push(
        Case::new("read token creates a read link", "POST", "/.plait/shares", Status(201))
            .auth(rt)
            .json(json!({"path": "/notes/a", "rights": "read"})),
    );
    m.push(
        Case::new("read token creates a subscribe link", "POST", "/.plait/shares", Status(201))
            .auth(rt)
            .json(json!({"path": "/notes/a", "rights": "subscribe"})),
    );
    m.push(Case::new("read token PUT", "PUT", "/notes/a", forbidden).auth(rt).body("overwritten"));
    m.push(
        Case::new("read token PATCH", "PATCH", "/notes/a", forbidden)
            .auth(rt)
            .header("Content-Range", "text [0:0]")
            .body("x"),
    );
    m.push(
        Case::new("read token POST", "POST", "/notes/a", forbidden)
            .auth(rt)
            .header("Content-Range", "text [0:0]")
            .body("x"),
    );
    m.push(Case::new("read token DELETE", "DELETE", "/notes/a", forbidden).auth(rt));
    m.push(
        Case::new("read token restore", "POST", "/.plait/restore/notes/a", forbidden)
            .auth(rt)
            .json(json!({"version": ["seed-11"]})),
    );
    m.push(Case::new("read token compact", "POST", "/.plait/compact/notes/a?versions=1", forbidden).auth(rt));
    m.push(
        Case::new("read token names a checkpoint", "POST", "/.plait/checkpoints/notes/a", forbidden)
            .auth(rt)
            .json(json!({"name": "r-cp"})),
    );
    m.push(
        Case::new("read token removes a checkpoint", "DELETE", "/.plait/checkpoints/notes/a?name=x", forbidden)
            .auth(rt),
    );
    m.push(
        Case::new("read token creates a write link", "POST", "/.plait/shares", forbidden)
            .auth(rt)
            .json(json!({"path": "/notes/a", "rights": "write"})),
    );
    m.push(
        Case::new("read token creates a token", "POST", "/.plait/tokens", forbidden).auth(rt).json(token_body.clone()),
    );
    m.push(Case::new("read token lists tokens", "GET", "/.plait/tokens", forbidden).auth(rt));
    m.push(Case::new("read token revokes a token", "DELETE", format!("/.plait/tokens/{}", w.id), forbidden).auth(rt));
    m.push(Case::new("read token revokes itself", "DELETE", format!("/.plait/tokens/{}", r.id), forbidden).auth(rt));
    m.push(Case::new("read token reads /secret", "GET", "/secret", forbidden).auth(rt));
    m.push(
        Case::new("read token shares /secret", "POST", "/.plait/shares", forbidden)
            .auth(rt)
            .json(json!({"path": "/secret", "rights": "read"})),
    );

    // -- An admin token on /notes/ only.
    let at = &an.token;
    m.push(
        Case::new(
            "notes admin compacts under /notes/",
            "POST",
            "/.plait/compact/notes/compactme?versions=1",
            Status(200),
        )
        .auth(at),
    );
    m.push(
        Case::new("notes admin writes under /notes/", "PUT", "/notes/w", Status(200)).auth(at).body("by notes admin"),
    );
    m.push(Case::new("notes admin compacts /other", "POST", "/.plait/compact/other?versions=1", forbidden).auth(at));
    m.push(Case::new("notes admin lists tokens (needs admin on /)", "GET", "/.plait/tokens", forbidden).auth(at));
    m.push(
        Case::new("notes admin creates a token (needs admin on /)", "POST", "/.plait/tokens", forbidden)
            .auth(at)
            .json(token_body.clone()),
    );
    m.push(
        Case::new(
            "notes admin revokes a token (needs admin on /)",
            "DELETE",
            format!("/.plait/tokens/{}", w.id),
            forbidden,
        )
        .auth(at),
    );
    m.push(Case::new("notes admin reads /secret", "GET", "/secret", forbidden).auth(at));

    // -- Prefixes without a trailing slash, several prefixes.
    let mt = &multi.token;
    m.push(Case::new("prefix /notes covers /notes", "GET", "/notes", Status(200)).auth(mt).text("the notes root"));
    m.push(Case::new("prefix /notes covers /notes/a", "GET", "/notes/a", Status(200)).auth(mt).text("notes a text"));
    m.push(Case::new("second prefix /other covers /other", "GET", "/other", Status(200)).auth(mt));
    m.push(Case::new("prefix /notes does not cover /notes2", "GET", "/notes2", forbidden).auth(mt));
    m.push(Case::new("prefix /other does not cover /other2", "GET", "/other2", forbidden).auth(mt));
    m.push(Case::new("prefix /other does not cover /othe", "GET", "/othe", forbidden).auth(mt));
    m.push(Case::new("multi read token writes", "PUT", "/other", forbidden).auth(mt).body("x"));

    // -- Share links: what each right allows.
    let lr = &l_read.href;
    m.push(Case::new("read link GET, no headers", "GET", lr.clone(), Status(200)).text("notes a text"));
    m.push(Case::new("read link HEAD", "HEAD", lr.clone(), Status(200)));
    m.push(Case::new("read link subscribe", "GET", lr.clone(), forbidden).subscribe());
    for method in ["PUT", "PATCH", "POST"] {
        m.push(
            Case::new(format!("read link {method}"), method, lr.clone(), forbidden)
                .header("Content-Range", "text [0:0]")
                .body("x"),
        );
    }
    m.push(Case::new("read link DELETE", "DELETE", lr.clone(), forbidden));
    let ls = &l_sub.href;
    m.push(Case::new("subscribe link GET", "GET", ls.clone(), Status(200)).text("notes a text"));
    m.push(Case::new("subscribe link subscribes", "GET", ls.clone(), Status(209)).subscribe());
    for method in ["PUT", "PATCH", "POST"] {
        m.push(
            Case::new(format!("subscribe link {method}"), method, ls.clone(), forbidden)
                .header("Content-Range", "text [0:0]")
                .body("x"),
        );
    }
    m.push(Case::new("subscribe link DELETE", "DELETE", ls.clone(), forbidden));
    let lw = &l_write.href;
    m.push(Case::new("write link GET", "GET", lw.clone(), Status(200)));
    m.push(Case::new("write link subscribes", "GET", lw.clone(), Status(209)).subscribe());
    m.push(Case::new("write link PUT", "PUT", lw.clone(), Status(200)).body("by link"));
    m.push(Case::new("write link PATCH", "PATCH", lw.clone(), Success).header("Content-Range", "text [0:0]").body("<"));
    m.push(Case::new("write link POST", "POST", lw.clone(), Success).header("Content-Range", "text [0:0]").body("<"));
    m.push(Case::new("write link DELETE (never allowed)", "DELETE", lw.clone(), forbidden));
    m.push(
        Case::new("link to /secret read by its URL", "GET", l_admin.href.clone(), Status(200))
            .text(SECRET_TEXT)
            .sees_secret(),
    );

    // -- Path tricks that try to leave a prefix: refused before any right is checked.
    let tricks = [
        "/notes/../secret",
        "/notes/%2e%2e/secret",
        "/notes/%2E%2E/secret",
        "/notes/..%2fsecret",
        "/notes/..%2Fsecret",
        "/notes/%2e%2e%2fsecret",
        "/notes/./../secret",
        "/notes/.%2e/secret",
        "/notes/a/../../secret",
        "/notes/%2e%2e%2f%2e%2e%2fsecret",
    ];
    for p in tricks {
        m.push(Case::new(format!("write token GET {p}"), "GET", p, bad_path).auth(wt));
    }
    m.push(Case::new("write token PUT /notes/../secret", "PUT", "/notes/../secret", bad_path).auth(wt).body("pwned"));
    m.push(Case::new("write token DELETE /notes/%2e%2e/secret", "DELETE", "/notes/%2e%2e/secret", bad_path).auth(wt));
    m.push(
        Case::new("read token subscribe /notes/../secret", "GET", "/notes/../secret", bad_path).auth(rt).subscribe(),
    );
    for p in [
        "/.plait/history/notes/../secret",
        "/.plait/history/notes/%2e%2e/secret",
        "/.plait/diff/notes/../secret",
        "/.plait/diff/notes/%2E%2E/secret",
        "/.plait/checkpoints/notes/..%2fsecret",
    ] {
        m.push(Case::new(format!("read token GET {p}"), "GET", p, bad_path).auth(rt));
    }
    m.push(
        Case::new("write token restore /notes/../secret", "POST", "/.plait/restore/notes/../secret", bad_path)
            .auth(wt)
            .json(json!({"version": []})),
    );
    m.push(
        Case::new(
            "notes admin compact /notes/%2e%2e/secret",
            "POST",
            "/.plait/compact/notes/%2e%2e/secret?versions=1",
            bad_path,
        )
        .auth(at),
    );
    m.push(Case::new("read link followed by /../../secret", "GET", format!("{lr}/../../secret"), Refused));
    m.push(Case::new("read link followed by %2f..%2f..%2fsecret", "GET", format!("{lr}%2f..%2f..%2fsecret"), Refused));
    m.push(Case::new("read link path with ..", "GET", format!("/.plait/s/../../secret?{}", l_read.link), Refused));
    m.push(
        Case::new("read token shares /notes/../secret", "POST", "/.plait/shares", BadRequest)
            .auth(rt)
            .json(json!({"path": "/notes/../secret", "rights": "read"})),
    );

    // -- Share creation is validated.
    m.push(
        Case::new("share: unknown rights", "POST", "/.plait/shares", BadRequest)
            .auth(ADMIN)
            .json(json!({"path": "/notes/a", "rights": "owner"})),
    );
    m.push(
        Case::new("share: path without /", "POST", "/.plait/shares", BadRequest)
            .auth(ADMIN)
            .json(json!({"path": "notes/a", "rights": "read"})),
    );
    m.push(
        Case::new("share: pinned subscribe link", "POST", "/.plait/shares", BadRequest)
            .auth(ADMIN)
            .json(json!({"path": "/notes/a", "rights": "subscribe", "version": ["seed-11"]})),
    );
    m.push(
        Case::new("share: pinned write link", "POST", "/.plait/shares", BadRequest)
            .auth(ADMIN)
            .json(json!({"path": "/notes/a", "rights": "write", "version": ["seed-11"]})),
    );
    m.push(
        Case::new("share: expires_in_secs 0", "POST", "/.plait/shares", BadRequest)
            .auth(ADMIN)
            .json(json!({"path": "/notes/a", "rights": "read", "expires_in_secs": 0})),
    );

    cases += run_rows(a, m, &mut table, &mut failures).await;

    // Phase C: the 1 s credentials, after their deadline (measured, bounded).
    let waited = Instant::now();
    while now_ms() <= exp_deadline + 50 {
        assert!(waited.elapsed() < Duration::from_secs(5), "expires_ms is more than 5 s away");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let late = vec![
        Case::new("expired token", "GET", "/notes/a", invalid).auth(&exp.token),
        Case::new("expired token, subscribe", "GET", "/notes/a", invalid).auth(&exp.token).subscribe(),
        Case::new("expired link", "GET", l_exp.href.clone(), bad_link),
        Case::new("expired link, HEAD", "HEAD", l_exp.href.clone(), bad_link),
    ];
    cases += run_rows(a, late, &mut table, &mut failures).await;

    // Listings never show a secret; a caller lists only the links it created.
    let tokens = with_token(a, ADMIN, "GET", "/.plait/tokens", &[], b"").await;
    let listing = tokens.text();
    for t in [&w, &r, &an, &multi, &exp] {
        if listing.contains(t.secret()) {
            failures.push(format!("GET /.plait/tokens shows the secret of {}", t.id));
        }
        if !listing.contains(&t.id) {
            failures.push(format!("GET /.plait/tokens does not list {}", t.id));
        }
    }
    if listing.contains(&rev.id) {
        failures.push(format!("GET /.plait/tokens still lists the revoked token {}", rev.id));
    }
    let j = tokens.json();
    match j["tokens"].as_array() {
        Some(list) => {
            for t in list {
                for field in ["id", "label", "rights", "prefixes", "created_ms", "expires_ms", "expired"] {
                    if t.get(field).is_none() {
                        failures.push(format!("token listing entry without {field}: {t}"));
                    }
                }
                if t.get("token").is_some() {
                    failures.push(format!("token listing entry has a token field: {t}"));
                }
            }
            let created: Vec<u64> = list.iter().filter_map(|t| t["created_ms"].as_u64()).collect();
            if !created.windows(2).all(|p| p[0] <= p[1]) {
                failures.push("token listing is not oldest first".into());
            }
            let expired = list.iter().find(|t| t["id"] == json!(exp.id));
            if expired.is_some_and(|t| t["expired"] != json!(true)) {
                failures.push(format!("the expired token is not marked expired: {expired:?}"));
            }
        }
        None => failures.push(format!("GET /.plait/tokens has no tokens array: {j}")),
    }
    let all_shares = with_token(a, ADMIN, "GET", "/.plait/shares", &[], b"").await.text();
    let mine = with_token(a, rt, "GET", "/.plait/shares", &[], b"").await.text();
    for l in [&l_read, &l_sub, &l_write, &l_admin, &l_exp] {
        if all_shares.contains(l.secret()) || mine.contains(l.secret()) {
            failures.push(format!("a share listing shows the secret of link {}", l.id));
        }
        if !all_shares.contains(&l.id) {
            failures.push(format!("the admin's share listing does not show {}", l.id));
        }
    }
    if !(mine.contains(&l_read.id) && mine.contains(&l_sub.id)) {
        failures.push(format!("the reader's share listing misses its own links: {mine}"));
    }
    if mine.contains(&l_write.id) || mine.contains(&l_admin.id) {
        failures.push(format!("the reader's share listing shows links others created: {mine}"));
    }
    // Nothing above changed /secret or /notes/a.
    let secret = with_token(a, ADMIN, "GET", "/secret", &[], b"").await;
    if secret.text() != SECRET_TEXT {
        failures.push(format!("/secret changed: {:?}", secret.text()));
    }
    let notes = with_token(a, ADMIN, "GET", "/notes/a", &[], b"").await;
    if notes.text() != "notes a text" {
        failures.push(format!("/notes/a changed: {:?}", notes.text()));
    }

    println!("access matrix: {cases} cases\n{}", table.join("\n"));
    assert!(cases >= 100, "only {cases} cases");
    assert!(failures.is_empty(), "{} of {cases} cases failed:\n{}", failures.len(), failures.join("\n"));
    s.stop().await;
}
