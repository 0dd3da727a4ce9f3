//! Folders (issue 16) over real HTTP against RocksDB: listings (JSON fields checked against
//! each resource's own `Current-Version`, pagination, `recursive`, deletes, the plain-text and
//! HTML forms, `/a` beside `/a/`), access filtering with `--auth token` (listing, long poll
//! and watch), the long poll's wake-up, timeout and cap, resets, malformed input, and a watch
//! over HTTP/2. Resuming under load is `folders_resume.rs`; across `kill -9`,
//! `crash_folders.rs`; through nginx and HAProxy, `proxies.rs`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use plait::protocol::{UpdateBody, VersionSet};
use serde_json::Value;

use crate::auth::{create_token, token_server, with_token, ADMIN};
use crate::support::client::{request, Response, SubscriptionReader};
use crate::support::server::{Engine, TestServer};

/// The ids of a `Version`/`Current-Version` header value, sorted as the server sorts them.
pub fn ids(header: Option<&str>) -> Vec<String> {
    let h = header.unwrap_or_else(|| panic!("no version header"));
    VersionSet::parse_header(h.as_bytes()).unwrap().ids().to_vec()
}

/// A JPEG by its magic bytes, so the server stores a file.
fn jpeg(tag: &str) -> Vec<u8> {
    let mut out = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00];
    out.extend_from_slice(tag.as_bytes());
    out
}

/// A file version: `Merge-Type: aww`, an explicit id and parents when given.
pub async fn put_file(addr: SocketAddr, path: &str, version: &str, parents: Option<&str>, body: &[u8]) -> Response {
    let mut h = vec![("Merge-Type", "aww"), ("Content-Type", "application/octet-stream")];
    if !version.is_empty() {
        h.push(("Version", version));
    }
    if let Some(p) = parents {
        h.push(("Parents", p));
    }
    let r = request(addr, "PUT", path, &h, body).await;
    assert!(r.ok(), "PUT file {path}: {} {}", r.status, r.text());
    r
}

async fn put_text(addr: SocketAddr, path: &str, text: &str) -> Response {
    let r = request(addr, "PUT", path, &[("Peer", "alice")], text.as_bytes()).await;
    assert!(r.ok(), "PUT {path}: {} {}", r.status, r.text());
    r
}

/// `GET target` as JSON (200 expected).
pub async fn get_json(addr: SocketAddr, target: &str) -> Value {
    let r = request(addr, "GET", target, &[("Accept", "application/json")], b"").await;
    assert_eq!(r.status, 200, "GET {target}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(r.header("plait-cursor"), v["cursor"].as_str(), "the Plait-Cursor header is the body's cursor");
    v
}

fn names(listing: &Value) -> Vec<String> {
    listing["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_string()).collect()
}

fn entry<'a>(listing: &'a Value, name: &str) -> &'a Value {
    let entries = listing["entries"].as_array().unwrap();
    entries.iter().find(|e| e["name"] == name).unwrap_or_else(|| panic!("no entry {name:?} in {listing}"))
}

/// Every entry of a listing, following `next` with pages of `limit`.
async fn all_pages(addr: SocketAddr, folder: &str, extra: &str, limit: usize) -> (Vec<String>, usize) {
    let (mut paths, mut pages, mut after) = (Vec::new(), 0, None::<String>);
    loop {
        let mut target = format!("{folder}?limit={limit}{extra}");
        if let Some(a) = &after {
            target.push_str(&format!("&after={}", a.replace('%', "%25").replace(' ', "%20")));
        }
        let page = get_json(addr, &target).await;
        pages += 1;
        let entries = page["entries"].as_array().unwrap();
        assert!(entries.len() <= limit, "a page of {} entries, limit {limit}", entries.len());
        paths.extend(entries.iter().map(|e| e["path"].as_str().unwrap().to_string()));
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => return (paths, pages),
        }
        assert!(pages < 10_000, "pagination does not end");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_shows_kinds_versions_conflicts_and_sub_folders() {
    let s = TestServer::start(Engine::Rocks).await;
    let a = s.addr;
    put_text(a, "/notes/a.txt", "hello wörld").await;
    let photo = jpeg("photo");
    let r = request(a, "PUT", "/notes/pic.jpg", &[("Content-Type", "image/jpeg")], &photo).await;
    assert!(r.ok(), "{}", r.text());
    // Two concurrent file versions on one parent: a conflict.
    put_file(a, "/notes/c.bin", "\"1.000\"", None, b"\0base").await;
    put_file(a, "/notes/c.bin", "\"2.000\"", Some("\"1.000\""), b"\0from phone").await;
    put_file(a, "/notes/c.bin", "\"3.000\"", Some("\"1.000\""), b"\0from laptop").await;
    put_text(a, "/notes/sub/x", "in a sub-folder").await;
    put_file(a, "/notes/sub/deep/y.bin", "", None, b"\0deep").await;
    put_text(a, "/notes", "a resource beside its folder").await;

    let l = get_json(a, "/notes/").await;
    assert_eq!(l["folder"], "/notes/");
    assert_eq!(names(&l), ["a.txt", "c.bin", "pic.jpg", "sub/"], "children then sub-folders, in path order");
    assert_eq!(l["next"], Value::Null);
    for name in ["a.txt", "c.bin", "pic.jpg"] {
        let path = format!("/notes/{name}");
        let g = request(a, "GET", &path, &[], b"").await;
        let e = entry(&l, name);
        assert_eq!(e["path"], path.as_str());
        assert_eq!(e["version"], serde_json::json!(ids(g.header("current-version"))), "{name}: the resource's version");
        let modified = e["modified_ms"].as_u64().unwrap();
        assert!(modified > 1_700_000_000_000, "{name}: modified_ms {modified}");
        assert!(e["modified"].as_str().unwrap().ends_with('Z'));
    }
    let t = entry(&l, "a.txt");
    assert_eq!((t["type"].as_str(), t["size"].as_u64()), (Some("text"), Some(11)), "text size in code points");
    assert_eq!((t["author"].as_str(), t["conflict"].as_bool()), (Some("alice"), Some(false)));
    assert!(t.get("content_type").is_none(), "{t}");
    let p = entry(&l, "pic.jpg");
    assert_eq!((p["type"].as_str(), p["size"].as_u64()), (Some("file"), Some(photo.len() as u64)));
    assert_eq!(p["content_type"], "image/jpeg");
    let c = entry(&l, "c.bin");
    assert_eq!(c["conflict"], true, "two versions on one parent: {c}");
    assert_eq!(c["version"], serde_json::json!(["2.000", "3.000"]));
    assert_eq!(entry(&l, "sub/")["type"], "folder");
    assert_eq!(entry(&l, "sub/")["path"], "/notes/sub/");

    // `/notes` (a resource) and `/notes/` (a folder) are both in the root.
    let root = get_json(a, "/").await;
    assert_eq!(names(&root), ["notes", "notes/"]);
    assert_eq!(entry(&root, "notes")["type"], "text");

    // The subtree, without folder entries.
    let deep = get_json(a, "/notes/?recursive=1").await;
    let paths: Vec<&str> = deep["entries"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/notes/a.txt", "/notes/c.bin", "/notes/pic.jpg", "/notes/sub/deep/y.bin", "/notes/sub/x"]);

    // Plain lines for curl: a comment with the cursor, then kind, size, time, name.
    let plain = request(a, "GET", "/notes/", &[], b"").await;
    assert_eq!(plain.header("content-type"), Some("text/plain; charset=utf-8"));
    let text = plain.text();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(format!("# /notes/ (cursor {})", plain.header("plait-cursor").unwrap()).as_str()));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 4, "{text}");
    assert_eq!((rows[0][0], rows[0][1], rows[0][3]), ("text", "11", "a.txt"));
    assert_eq!((rows[1][0], rows[1][3], rows[1].get(4).copied()), ("file", "c.bin", Some("(conflict)")));
    assert_eq!(rows[3], ["folder", "-", "-", "sub/"]);
    // A browser gets a page with a link per entry.
    let html = request(a, "GET", "/notes/", &[("Accept", "text/html,application/xhtml+xml")], b"").await;
    assert_eq!(html.header("content-type"), Some("text/html; charset=utf-8"));
    let page = html.text();
    for name in ["a.txt", "c.bin", "pic.jpg", "sub/"] {
        assert!(page.contains(&format!("<a href=\"{name}\">")), "no link to {name} in {page}");
    }

    // Deletes: a file's tombstone and an erased text leave; the emptied folders go with them.
    assert!(request(a, "DELETE", "/notes/sub/deep/y.bin", &[], b"").await.ok());
    assert_eq!(names(&get_json(a, "/notes/sub/").await), ["x"], "deep/ went with its last resource");
    assert!(request(a, "DELETE", "/notes/sub/x", &[], b"").await.ok());
    assert_eq!(names(&get_json(a, "/notes/").await), ["a.txt", "c.bin", "pic.jpg"], "sub/ is gone");
    let empty = get_json(a, "/notes/sub/").await;
    assert_eq!(empty["entries"], serde_json::json!([]), "an empty folder lists nothing");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_return_every_entry_once_in_path_order() {
    let s = TestServer::start(Engine::Rocks).await;
    let a = s.addr;
    // 300 resources: text and files directly in /many/, a few in sub-folders, names that sort
    // differently by bytes than by number.
    let mut expected_direct = BTreeSet::new();
    let mut expected_deep = BTreeSet::new();
    let mut writes = Vec::new();
    for i in 0..300u32 {
        let path = match i % 10 {
            0 => format!("/many/s{}/r{i}", i % 30),
            1 => format!("/many/r{i} é.bin"),
            _ => format!("/many/r{i}"),
        };
        expected_deep.insert(path.clone());
        let direct = path.strip_prefix("/many/").unwrap();
        expected_direct.insert(match direct.split_once('/') {
            Some((sub, _)) => format!("/many/{sub}/"),
            None => path.clone(),
        });
        writes.push(path);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in writes.chunks(40) {
        let chunk = chunk.to_vec();
        tasks.spawn(async move {
            for path in chunk {
                let target = path.replace(' ', "%20").replace('é', "%C3%A9");
                if path.ends_with(".bin") {
                    put_file(a, &target, "", None, b"\0bytes").await;
                } else {
                    put_text(a, &target, &path).await;
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    // Listed paths are the raw (escaped) paths; compare in that form.
    let esc = |p: &String| p.replace(' ', "%20").replace('é', "%C3%A9");
    let mut want: Vec<String> = expected_direct.iter().map(esc).collect();
    want.sort();
    let (got, pages) = all_pages(a, "/many/", "", 7).await;
    assert_eq!(got, want, "each entry once, in path order");
    assert!(pages >= want.len() / 7, "{pages} pages");
    let mut want_deep: Vec<String> = expected_deep.iter().map(esc).collect();
    want_deep.sort();
    let (deep, _) = all_pages(a, "/many/", "&recursive=1", 13).await;
    assert_eq!(deep, want_deep, "the subtree, each resource once");
    // The plain form's `# more:` line leads to the next page.
    let first = request(a, "GET", "/many/?limit=5", &[], b"").await.text();
    let more = first.lines().last().unwrap().strip_prefix("# more: ").unwrap_or_else(|| panic!("{first}"));
    let second = request(a, "GET", &format!("/many/{more}&limit=5"), &[], b"").await.text();
    let name_of = |l: &str| l.rsplit('\t').next().unwrap().to_string();
    let firsts: Vec<String> = first.lines().filter(|l| !l.starts_with('#')).map(name_of).collect();
    let seconds: Vec<String> = second.lines().filter(|l| !l.starts_with('#')).map(name_of).collect();
    let joined: Vec<String> = firsts.into_iter().chain(seconds).map(|n| format!("/many/{n}")).collect();
    assert_eq!(joined, want[..10], "page two of the plain form follows page one");
    s.stop().await;
}

/// The changes of a long poll answer, as (path, what).
fn changes_of(v: &Value) -> Vec<(String, String)> {
    let list = v["changes"].as_array().unwrap_or_else(|| panic!("no changes in {v}"));
    list.iter().map(|c| (c["path"].as_str().unwrap().to_string(), c["what"].as_str().unwrap().to_string())).collect()
}

/// The JSON body of the next watch update.
async fn next_json(sub: &mut SubscriptionReader) -> (Option<VersionSet>, Value) {
    let u = sub.next().await;
    let UpdateBody::Snapshot(body) = &u.body else { panic!("a folder update is a snapshot: {:?}", u.body) };
    (u.version.clone(), serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_sees_only_what_it_may_read() {
    let s = token_server(Engine::Rocks, |_| {}).await;
    let a = s.addr;
    let admin_put = |path: &'static str| async move {
        let r = with_token(a, ADMIN, "PUT", path, &[], path.as_bytes()).await;
        assert!(r.ok(), "{path}: {}", r.text());
    };
    for p in ["/notes/a", "/notes/b/x", "/notes/c", "/notes/d/y", "/other/z"] {
        admin_put(p).await;
    }
    let t = create_token(a, ADMIN, "reader", "read", &["/notes/a", "/notes/b/"], None).await;
    let get = |target: &'static str, extra: Vec<(&'static str, &'static str)>| {
        let token = t.token.clone();
        async move {
            let mut h = vec![("Accept", "application/json")];
            h.extend(extra);
            with_token(a, &token, "GET", target, &h, b"").await
        }
    };
    let l = get("/notes/", vec![]).await;
    assert_eq!(l.status, 200, "{}", l.text());
    assert_eq!(names(&l.json()), ["a", "b/"], "only what the token may read");
    let admin = with_token(a, ADMIN, "GET", "/notes/", &[("Accept", "application/json")], b"").await;
    assert_eq!(names(&admin.json()), ["a", "b/", "c", "d/"], "the admin sees everything (the control)");
    let other = get("/other/", vec![]).await;
    assert_eq!((other.status, other.json()["error"].as_str()), (403, Some("forbidden")));
    let deep = get("/notes/?recursive=1", vec![]).await.json();
    let paths: Vec<&str> = deep["entries"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/notes/a", "/notes/b/x"]);

    // The watch (recursive) and the long poll show only visible changes.
    let cursor = l.header("plait-cursor").unwrap().to_string();
    let auth = crate::auth::bearer(&t.token);
    let parents = format!("\"{cursor}\"");
    let mut sub = SubscriptionReader::open(
        a,
        "/notes/?recursive=1",
        &[("Authorization", auth.as_str()), ("Parents", parents.as_str())],
    )
    .await;
    assert_eq!(sub.head.status, 209, "{:?}", sub.head);
    for p in ["/notes/c", "/notes/d/y", "/notes/b/x", "/other/z", "/notes/a"] {
        let r = with_token(a, ADMIN, "PUT", p, &[], format!("{p} again").as_bytes()).await;
        assert!(r.ok());
    }
    let (_, first) = next_json(&mut sub).await;
    let (_, second) = next_json(&mut sub).await;
    assert_eq!((first["path"].as_str(), second["path"].as_str()), (Some("/notes/b/x"), Some("/notes/a")));
    assert!(sub.next_within(Duration::from_millis(300)).await.is_none(), "nothing else is shown");
    let poll_target = format!("/notes/?recursive=1&since={cursor}");
    let poll = with_token(a, &t.token, "GET", &poll_target, &[], b"").await;
    assert_eq!(poll.status, 200, "{}", poll.text());
    let polled = changes_of(&poll.json());
    assert_eq!(polled, [("/notes/b/x".into(), "version".into()), ("/notes/a".into(), "version".into())]);
    let admin_poll = with_token(a, ADMIN, "GET", &poll_target, &[], b"").await;
    assert_eq!(changes_of(&admin_poll.json()).len(), 4, "the admin's poll sees the other changes (the control)");
    s.stop().await;
}

/// The log's current cursor, from a listing.
async fn cursor_now(addr: SocketAddr) -> String {
    let r = request(addr, "GET", "/", &[("Accept", "application/json")], b"").await;
    r.header("plait-cursor").unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_returns_when_a_change_lands_or_empty_after_its_wait() {
    let s = TestServer::start_with(Engine::Rocks, |c| c.max_poll_secs = 2).await;
    let a = s.addr;
    put_text(a, "/poll/a", "one").await;
    let cursor = cursor_now(a).await;

    // Nothing changes: empty after the wait, with the same cursor.
    let started = Instant::now();
    let empty = request(a, "GET", &format!("/poll/?since={cursor}&wait=0.3"), &[], b"").await.json();
    let waited = started.elapsed();
    assert_eq!((empty["changes"].clone(), empty["cursor"].as_str()), (serde_json::json!([]), Some(cursor.as_str())));
    assert_eq!((empty["reset"].as_bool(), empty["more"].as_bool()), (Some(false), Some(false)));
    assert!(waited >= Duration::from_millis(290) && waited < Duration::from_secs(2), "waited {waited:?}");

    // A change wakes a waiting poll: it returns soon after the write, long before its wait.
    let poll = tokio::spawn(async move {
        let r = request(a, "GET", &format!("/poll/?since={cursor}&wait=5"), &[], b"").await;
        (r, Instant::now())
    });
    let w = put_text(a, "/poll/b", "two").await;
    let written = Instant::now();
    let (r, returned) = tokio::time::timeout(Duration::from_secs(10), poll).await.unwrap().unwrap();
    let v = r.json();
    assert_eq!(changes_of(&v), [("/poll/b".to_string(), "create".to_string())]);
    assert_eq!(v["changes"][0]["version"], serde_json::json!(ids(w.header("version"))));
    assert_eq!(v["cursor"], v["changes"][0]["cursor"], "the answer's cursor is its last change's");
    let after_write = returned.saturating_duration_since(written);
    assert!(after_write < Duration::from_millis(1500), "the poll returned {after_write:?} after the write");

    // A wait above --max-poll-secs (2 here) is cut to it.
    let now = cursor_now(a).await;
    let started = Instant::now();
    let capped = request(a, "GET", &format!("/poll/?since={now}&wait=60"), &[], b"").await.json();
    let waited = started.elapsed();
    assert_eq!(capped["changes"], serde_json::json!([]));
    assert!(waited >= Duration::from_millis(1900) && waited < Duration::from_secs(5), "waited {waited:?}");
    // Without a wait the answer is immediate, and a poll from an old cursor gets what followed.
    let again =
        request(a, "GET", &format!("/poll/?since={}", v["changes"][0]["cursor"].as_str().unwrap()), &[], b"").await;
    assert_eq!(again.json()["changes"], serde_json::json!([]));
    s.stop().await;
}

/// `cursor` with its epoch's last hex digit changed.
fn other_epoch(cursor: &str) -> String {
    let (epoch, seq) = cursor.split_once('-').unwrap();
    let last = epoch.chars().last().unwrap();
    let flipped = if last == '0' { '1' } else { '0' };
    format!("{}{flipped}-{seq}", &epoch[..15])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursors_from_another_log_or_ahead_of_this_one_reset() {
    let s = TestServer::start(Engine::Rocks).await;
    let a = s.addr;
    put_text(a, "/r/a", "one").await;
    let cursor = cursor_now(a).await;
    let foreign = other_epoch(&cursor);
    let (epoch, seq) = cursor.split_once('-').unwrap();
    let ahead = format!("{epoch}-{}", seq.parse::<u64>().unwrap() + 100);
    for stale in [&foreign, &ahead] {
        let v = request(a, "GET", &format!("/r/?since={stale}&wait=5"), &[], b"").await.json();
        assert_eq!((v["reset"].as_bool(), v["changes"].clone()), (Some(true), serde_json::json!([])), "{stale}: {v}");
        assert_eq!(v["cursor"], cursor.as_str(), "a fresh cursor");
        // The watch starts with a fresh listing marked as a reset.
        let parents = format!("\"{stale}\"");
        let mut sub = SubscriptionReader::open(a, "/r/", &[("Parents", parents.as_str())]).await;
        assert_eq!(sub.head.status, 209);
        let (version, listing) = next_json(&mut sub).await;
        assert_eq!(listing["reset"], true, "{listing}");
        assert_eq!(names(&listing), ["a"]);
        assert_eq!(version.unwrap().ids(), std::slice::from_ref(&cursor));
    }
    // A current cursor is not a reset; a watch without one starts with the listing, reset false.
    let v = request(a, "GET", &format!("/r/?since={cursor}"), &[], b"").await.json();
    assert_eq!(v["reset"], false);
    let mut sub = SubscriptionReader::open(a, "/r/", &[]).await;
    assert_eq!(sub.head.header("current-version"), Some(format!("\"{cursor}\"").as_str()));
    let (_, listing) = next_json(&mut sub).await;
    assert_eq!(listing["reset"], false);
    // Server-sent events with a foreign Last-Event-ID: a listing event marked as a reset.
    let mut events = crate::support::client::Conn::open(a).await;
    events.send("GET", "/r/", &[("Accept", "text/event-stream"), ("Last-Event-ID", foreign.as_str())], b"").await;
    let head = events.read_head().await;
    assert_eq!((head.status, head.header("content-type")), (200, Some("text/event-stream")));
    let chunk = String::from_utf8(events.read_chunk().await.unwrap()).unwrap();
    let chunk = chunk.strip_prefix("retry: 1000\n\n").unwrap_or(&chunk);
    assert!(chunk.starts_with(&format!("event: listing\nid: {cursor}\ndata: {{")), "{chunk:?}");
    assert!(chunk.contains("\"reset\":true"), "{chunk:?}");
    s.stop().await;
}

/// A malformed request: name, method, target, headers, status and error code expected.
type Case<'a> = (&'a str, &'a str, String, Vec<(&'a str, &'a str)>, u16, &'a str);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_folder_requests_are_clear_4xx() {
    let s = TestServer::start(Engine::Rocks).await;
    let a = s.addr;
    put_text(a, "/m/a", "x").await;
    let cursor = cursor_now(a).await;
    let two = format!("\"{cursor}\", \"{}\"", other_epoch(&cursor));
    let sse = ("Accept", "text/event-stream");
    let cases: Vec<Case> = vec![
        ("since=zz", "GET", "/m/?since=zz".into(), vec![], 400, "bad_cursor"),
        ("since empty", "GET", "/m/?since=".into(), vec![], 400, "bad_cursor"),
        ("Parents \"x\"", "GET", "/m/".into(), vec![("Subscribe", "true"), ("Parents", "\"x\"")], 400, "bad_cursor"),
        ("two Parents", "GET", "/m/".into(), vec![("Subscribe", "true"), ("Parents", two.as_str())], 400, "bad_cursor"),
        ("Last-Event-ID nope", "GET", "/m/".into(), vec![sse, ("Last-Event-ID", "nope")], 400, "bad_cursor"),
        ("Last-Event-ID on a document", "GET", "/m/a".into(), vec![sse, ("Last-Event-ID", "nope")], 400, "bad_cursor"),
        ("wait without a cursor", "GET", "/m/?wait=1".into(), vec![], 400, "bad_cursor"),
        ("empty segment", "GET", "/a//".into(), vec![], 400, "bad_folder"),
        ("empty segment deep", "GET", "/m//x/".into(), vec![], 400, "bad_folder"),
        ("limit=0", "GET", "/m/?limit=0".into(), vec![], 400, "bad_query"),
        ("limit too large", "GET", "/m/?limit=10001".into(), vec![], 400, "bad_query"),
        ("limit not a number", "GET", "/m/?limit=ten".into(), vec![], 400, "bad_query"),
        ("unknown parameter", "GET", "/m/?bogus=1".into(), vec![], 400, "bad_query"),
        ("recursive=maybe", "GET", "/m/?recursive=maybe".into(), vec![], 400, "bad_query"),
        ("wait=-1", "GET", format!("/m/?since={cursor}&wait=-1"), vec![], 400, "bad_query"),
        ("wait=NaN", "GET", format!("/m/?since={cursor}&wait=NaN"), vec![], 400, "bad_query"),
        ("PUT on a folder", "PUT", "/m/".into(), vec![], 405, "method_not_allowed"),
        ("DELETE on a folder", "DELETE", "/m/".into(), vec![], 405, "method_not_allowed"),
        ("PATCH on a folder", "PATCH", "/m/".into(), vec![], 405, "method_not_allowed"),
    ];
    let mut failures = Vec::new();
    for (name, method, target, headers, status, code) in &cases {
        let r = request(a, method, target, headers, if *method == "GET" { b"" } else { b"x" }).await;
        let body: Option<Value> = serde_json::from_slice(&r.body).ok();
        let got_code = body.as_ref().and_then(|b| b["error"].as_str().map(str::to_string));
        let message = body.as_ref().and_then(|b| b["message"].as_str().map(str::to_string)).unwrap_or_default();
        if r.status != *status || got_code.as_deref() != Some(*code) || message.is_empty() {
            failures.push(format!("{name}: got {} {:?} {:?}, want {status} {code}", r.status, got_code, r.text()));
        }
        if r.header("plait-error") != Some(*code) && r.status == *status {
            failures.push(format!("{name}: Plait-Error {:?}", r.header("plait-error")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Nothing was written: the folder still holds its one resource, unchanged.
    let l = get_json(a, "/m/").await;
    assert_eq!((names(&l), l["cursor"].as_str()), (vec!["a".to_string()], Some(cursor.as_str())));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_watch_over_h2c_gets_each_change() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let s = TestServer::start(Engine::Rocks).await;
    put_text(s.addr, "/h2/a", "one").await;
    let io = TokioIo::new(tokio::net::TcpStream::connect(s.addr).await.unwrap());
    let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await.unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get(format!("http://{}/h2/", s.addr))
        .header("subscribe", "true")
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let res = tokio::time::timeout(Duration::from_secs(10), send.send_request(req)).await.unwrap().unwrap();
    assert_eq!(res.status().as_u16(), 209);
    assert_eq!(res.version(), hyper::Version::HTTP_2);
    let mut body = res.into_body();
    let mut decoder = plait::protocol::Decoder::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut updates = Vec::new();
    let mut wrote = false;
    while updates.len() < 2 {
        if let Some(u) = decoder.next_update().unwrap() {
            let UpdateBody::Snapshot(b) = u.body else { panic!("not a snapshot") };
            updates.push(serde_json::from_str::<Value>(&b).unwrap());
            if !wrote {
                put_text(s.addr, "/h2/b", "two").await;
                wrote = true;
            }
            continue;
        }
        let frame = tokio::time::timeout_at(deadline, body.frame()).await.expect("no update within 10 s");
        if let Ok(data) = frame.unwrap().unwrap().into_data() {
            decoder.push(&data);
        }
    }
    assert_eq!(names(&updates[0]), ["a"], "the listing first");
    assert_eq!((updates[1]["path"].as_str(), updates[1]["what"].as_str()), (Some("/h2/b"), Some("create")));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursors_survive_a_restart_and_every_change_since_one_is_answered() {
    let s = TestServer::start(Engine::Rocks).await;
    let start = cursor_now(s.addr).await;
    let mut versions = Vec::new();
    for i in 0..5 {
        versions.push(ids(put_text(s.addr, "/again/a", &format!("v{i}")).await.header("version")));
        put_text(s.addr, &format!("/again/b{i}"), "b").await;
    }
    let data = s.stop_keeping_data().await.unwrap();
    let path = data.path().to_path_buf();
    let s = TestServer::start_with(Engine::Rocks, |c| c.data_dir = path).await;
    // The restarted server has no recent changes in memory: these come from the store, each
    // one (the window keeps them all), not coalesced to the latest per path.
    let v = request(s.addr, "GET", &format!("/again/?since={start}"), &[], b"").await.json();
    assert_eq!(v["reset"], false, "the cursor survived the restart (the epoch is stored): {v}");
    let of_a: Vec<Value> =
        v["changes"].as_array().unwrap().iter().filter(|c| c["path"] == "/again/a").cloned().collect();
    let got: Vec<Value> = of_a.iter().map(|c| c["version"].clone()).collect();
    assert_eq!(
        got,
        versions.iter().map(|v| serde_json::json!(v)).collect::<Vec<_>>(),
        "every version of /again/a, in order"
    );
    assert_eq!(v["changes"].as_array().unwrap().len(), 10);
    // The same through a resumed watch.
    let parents = format!("\"{start}\"");
    let mut sub = SubscriptionReader::open(s.addr, "/again/", &[("Parents", parents.as_str())]).await;
    for want in &versions[..3] {
        loop {
            let (_, c) = next_json(&mut sub).await;
            if c["path"] == "/again/a" {
                assert_eq!(c["version"], serde_json::json!(want));
                break;
            }
        }
    }
    s.stop().await;
    drop(data);
}

/// Reads an event stream until `n` events (blank-line separated) have arrived, within 10 s.
async fn events(conn: &mut crate::support::client::Conn, buf: &mut String, n: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while buf.matches("\n\n").count() < n {
        let chunk = tokio::time::timeout_at(deadline, conn.read_chunk()).await.expect("no event within 10 s");
        buf.push_str(&String::from_utf8(chunk.expect("the event stream ended")).unwrap());
        // The stream's opening reconnection delay (tests/it/eventsource.rs checks it).
        if let Some(rest) = buf.strip_prefix("retry: 1000\n\n") {
            *buf = rest.to_string();
        }
    }
    let mut out: Vec<String> = buf.split("\n\n").map(str::to_string).collect();
    *buf = out.split_off(n).join("\n\n");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_resume_with_last_event_id_and_watches_beat() {
    let s = TestServer::start(Engine::Rocks).await;
    let a = s.addr;
    put_text(a, "/ev/a", "one").await;
    let cursor = cursor_now(a).await;
    put_text(a, "/ev/b", "two").await;
    put_text(a, "/ev/a", "three").await;
    // A folder's stream resumed from a cursor: `ready`, then exactly the changes after it.
    let mut folder = crate::support::client::Conn::open(a).await;
    folder.send("GET", "/ev/", &[("Accept", "text/event-stream"), ("Last-Event-ID", cursor.as_str())], b"").await;
    assert_eq!(folder.read_head().await.status, 200);
    let mut buf = String::new();
    let got = events(&mut folder, &mut buf, 3).await;
    assert_eq!(got[0], format!("event: ready\nid: {cursor}\ndata: {{\"cursor\":\"{cursor}\",\"reset\":false}}"));
    let data = |e: &str| -> Value { serde_json::from_str(e.split("\ndata: ").nth(1).unwrap()).unwrap() };
    let (b, a2) = (data(&got[1]), data(&got[2]));
    assert_eq!((b["path"].as_str(), a2["path"].as_str()), (Some("/ev/b"), Some("/ev/a")));
    assert!(got[2].starts_with(&format!("id: {}\n", a2["cursor"].as_str().unwrap())), "{:?}", got[2]);
    // A document's stream: only that resource's changes.
    let mut doc = crate::support::client::Conn::open(a).await;
    doc.send("GET", "/ev/a", &[("Accept", "text/event-stream")], b"").await;
    assert_eq!(doc.read_head().await.status, 200);
    let mut dbuf = String::new();
    assert!(events(&mut doc, &mut dbuf, 1).await[0].starts_with("event: ready\n"));
    put_text(a, "/ev/b", "not this one").await;
    put_text(a, "/ev/a", "this one").await;
    let only = events(&mut doc, &mut dbuf, 1).await;
    assert_eq!(data(&only[0])["path"], "/ev/a", "{only:?}");
    // The folder stream got both.
    let both = events(&mut folder, &mut buf, 2).await;
    assert_eq!((data(&both[0])["path"].as_str(), data(&both[1])["path"].as_str()), (Some("/ev/b"), Some("/ev/a")));
    // A folder watch with Heartbeats: blank heartbeat lines while nothing changes.
    let mut sub = SubscriptionReader::open(a, "/ev/", &[("Heartbeats", "0.2")]).await;
    assert_eq!(sub.head.header("heartbeats"), Some("0.2"));
    next_json(&mut sub).await;
    let before = sub.raw.len();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while sub.raw.len() == before {
        let chunk = tokio::time::timeout_at(deadline, sub.conn.read_chunk()).await.expect("no heartbeat within 5 s");
        sub.raw.extend_from_slice(&chunk.unwrap());
    }
    assert!(sub.raw[before..].iter().all(|b| *b == b'\n' || *b == b'\r'), "a heartbeat is blank lines");
    s.stop().await;
}
