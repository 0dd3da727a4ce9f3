//! File resources end to end: curl (the real binary) for every read and write form, conflicts
//! from two writers, deletes, kinds, a restart, and a raw subscription's exact bytes.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use sha2::Digest;

use crate::engines;
use crate::support::client::{request, Conn, WAIT};
use crate::support::server::{ChildServer, Engine, TestServer};

/// What curl got: the status, the last header block (names lowercased) and the body.
struct Curl {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Curl {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Runs `curl -sS` with `args` (the URL among them), in a blocking thread.
async fn curl(args: Vec<String>) -> Curl {
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let (head, body) = (dir.path().join("head"), dir.path().join("body"));
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "30", "-D"])
            .arg(&head)
            .arg("-o")
            .arg(&body)
            .args(&args)
            .output()
            .expect("curl is installed by .ci/setup");
        assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let head = std::fs::read_to_string(&head).unwrap();
        // The last block: curl also dumps `100 Continue` heads.
        let block = head.trim_end().rsplit("\r\n\r\n").next().unwrap().to_string();
        let mut lines = block.lines();
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Curl { status, headers, body: std::fs::read(&body).unwrap_or_default() }
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A JPEG by its magic bytes, then `len` pseudo-random bytes (several chunks when large).
fn photo(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00];
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for _ in 0..len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push((x >> 24) as u8);
    }
    out
}

fn write_tmp(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    format!("@{}", p.display())
}

fn digest(bytes: &[u8]) -> String {
    format!("sha-256=:{}:", base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes)))
}

engines!(curl_puts_reads_ranges_and_replaces_a_photo, |engine| async move {
    let s = TestServer::start(engine).await;
    let dir = tempfile::tempdir().unwrap();
    let url = s.url("/photos/cat.jpg");
    // Large enough for several content-defined chunks (1 MiB average).
    let first = photo(1, 3 << 20);
    let put = curl(args(&["-X", "PUT", "--data-binary", &write_tmp(dir.path(), "a.jpg", &first), &url])).await;
    assert_eq!(put.status, 200);
    let v1 = put.header("version").unwrap().to_string();

    let get = curl(args(&[&url])).await;
    assert_eq!(get.status, 200);
    assert!(get.body == first, "GET returns the exact bytes");
    assert_eq!(get.header("content-type"), Some("image/jpeg"), "curl's form type replaced by the bytes' type");
    assert_eq!(get.header("content-length"), Some(first.len().to_string().as_str()));
    assert_eq!(get.header("accept-ranges"), Some("bytes"));
    assert_eq!(get.header("repr-digest"), Some(digest(&first).as_str()));
    assert_eq!(get.header("version"), Some(v1.as_str()));
    assert_eq!(get.header("merge-type"), Some("aww"));
    let etag = get.header("etag").unwrap().to_string();

    let head = curl(args(&["-I", &url])).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), get.header("content-length"));
    let raw_head = request(s.addr, "HEAD", "/photos/cat.jpg", &[], b"").await;
    assert!(raw_head.body.is_empty() && raw_head.header("etag") == Some(etag.as_str()));
    assert_eq!(head.header("merge-type"), Some("aww"), "braidfs tells a blob by HEAD");

    // Ranges: inside one chunk, across chunk boundaries, a suffix, If-Range.
    for (range, from, to) in [("10-19", 10, 20), ("1000000-2500000", 1_000_000, 2_500_001)] {
        let part = curl(args(&["-r", range, &url])).await;
        assert_eq!(part.status, 206, "{range}");
        assert!(part.body == first[from..to], "{range}: the exact bytes");
        let want = format!("bytes {from}-{}/{}", to - 1, first.len());
        assert_eq!(part.header("content-range"), Some(want.as_str()));
    }
    let tail = curl(args(&["-r", "-500", &url])).await;
    assert_eq!((tail.status, tail.body.as_slice()), (206, &first[first.len() - 500..]));
    let fresh = curl(args(&["-r", "0-9", "-H", &format!("If-Range: {etag}"), &url])).await;
    assert_eq!((fresh.status, fresh.body.len()), (206, 10));
    let stale = curl(args(&["-r", "0-9", "-H", "If-Range: \"other\"", &url])).await;
    assert_eq!((stale.status, stale.body.len()), (200, first.len()), "If-Range not matching: the whole file");
    let beyond = curl(args(&["-r", "99999999-", &url])).await;
    assert_eq!(beyond.status, 416);
    assert_eq!(beyond.header("content-range"), Some(format!("bytes */{}", first.len()).as_str()));
    let same = curl(args(&["-H", &format!("If-None-Match: {etag}"), &url])).await;
    assert_eq!((same.status, same.body.len()), (304, 0));

    // Replace: plain curl writes on top of the served version and keeps the old one.
    let second = photo(2, 200_000);
    let put2 = curl(args(&["-X", "PUT", "--data-binary", &write_tmp(dir.path(), "b.jpg", &second), &url])).await;
    assert_eq!(put2.status, 200);
    let v2 = put2.header("version").unwrap().to_string();
    assert_ne!(v1, v2);
    assert!(curl(args(&[&url])).await.body == second);
    let old = curl(args(&["-H", &format!("Version: {v1}"), &url])).await;
    assert_eq!(old.status, 200);
    assert!(old.body == first, "an old version by Version");
    assert!(old.header("cache-control").unwrap().contains("immutable"));
    let unknown = curl(args(&["-H", "Version: \"12.5\"", &url])).await;
    assert_eq!(unknown.status, 309);

    // Text stays text: curl's default form type with UTF-8 bytes.
    let readme = "# README\n\nhéllo 😀\n";
    let t = curl(args(&[
        "-X",
        "PUT",
        "--data-binary",
        &write_tmp(dir.path(), "R.md", readme.as_bytes()),
        &s.url("/README.md"),
    ]))
    .await;
    assert_eq!(t.status, 200);
    let t = curl(args(&[&s.url("/README.md")])).await;
    assert_eq!(String::from_utf8(t.body.clone()).unwrap(), readme);
    assert_eq!(t.header("content-type"), Some("text/plain; charset=utf-8"));
    s.stop().await;
});

engines!(kinds_never_change_silently, |engine| async move {
    let s = TestServer::start(engine).await;
    let bin = [0u8, 1, 2, 255];
    assert!(request(s.addr, "PUT", "/k/text", &[], b"some text").await.ok());
    let r = request(s.addr, "PUT", "/k/text", &[], &bin).await;
    assert_eq!((r.status, r.header("plait-error")), (409, Some("kind_mismatch")), "binary bytes onto text");
    let r = request(s.addr, "PUT", "/k/text", &[("Content-Type", "image/png")], b"x").await;
    assert_eq!((r.status, r.header("plait-error")), (409, Some("kind_mismatch")), "a file type onto text");
    assert!(request(s.addr, "PUT", "/k/file", &[("Merge-Type", "aww")], b"plain").await.ok());
    let patch = [("Content-Range", "text [0:0]")];
    let r = request(s.addr, "PATCH", "/k/file", &patch, b"x").await;
    assert_eq!((r.status, r.header("plait-error")), (409, Some("kind_mismatch")), "a text patch onto a file");
    let r = request(s.addr, "PUT", "/k/file", &[("Merge-Type", "dt")], b"x").await;
    assert_eq!((r.status, r.header("plait-error")), (409, Some("kind_mismatch")), "a text merge type onto a file");
    // UTF-8 onto a file is a new version of the file.
    let r = request(s.addr, "PUT", "/k/file", &[("Content-Type", "text/plain")], b"now text bytes").await;
    assert!(r.ok());
    let g = request(s.addr, "GET", "/k/file", &[], b"").await;
    assert_eq!((g.body.as_slice(), g.header("content-type")), (&b"now text bytes"[..], Some("text/plain")));
    // Erasing a file frees the path for text.
    assert!(request(s.addr, "DELETE", "/k/file?erase", &[], b"").await.ok());
    assert!(request(s.addr, "PUT", "/k/file", &[], b"text at last").await.ok());
    assert_eq!(request(s.addr, "GET", "/k/file", &[], b"").await.text(), "text at last");
    s.stop().await;
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_are_kept_until_resolved_and_deletes_are_versions() {
    let s = TestServer::start(Engine::Memory).await;
    let put = |v: &'static str, parents: &'static str, body: &'static [u8]| {
        let addr = s.addr;
        async move {
            let mut h = vec![("Merge-Type", "aww"), ("Version-Type", "wallclockish")];
            if !v.is_empty() {
                h.push(("Version", v));
            }
            if !parents.is_empty() {
                h.push(("Parents", parents));
            }
            request(addr, "PUT", "/c.bin", &h, body).await
        }
    };
    assert!(put("\"1.000\"", "", b"base").await.ok());
    assert!(put("\"3.000\"", "\"1.000\"", b"from laptop").await.ok());
    let lost = put("\"2.000\"", "\"1.000\"", b"from phone").await;
    assert_eq!(lost.status, 200, "a concurrent write is kept");
    assert_eq!(lost.header("served-version"), Some("\"3.000\""), "its writer is told another version won");
    assert_eq!(lost.header("conflict"), Some("\"2.000\", \"3.000\""));
    let g = request(s.addr, "GET", "/c.bin", &[], b"").await;
    assert_eq!(g.body, b"from laptop", "the highest version is served, as braid-blob does");
    assert_eq!(g.header("conflict"), Some("\"2.000\", \"3.000\""));
    let sibling = request(s.addr, "GET", "/c.bin", &[("Version", "\"2.000\"")], b"").await;
    assert_eq!(sibling.body, b"from phone", "the sibling stays readable");
    // Retries are idempotent; an id never names other bytes.
    assert!(put("\"2.000\"", "\"1.000\"", b"from phone").await.ok());
    let reused = put("\"2.000\"", "\"1.000\"", b"other bytes").await;
    assert_eq!((reused.status, reused.header("plait-error")), (409, Some("version_reused")));
    let unknown = put("\"9.000\"", "\"8.000\"", b"x").await;
    assert_eq!((unknown.status, unknown.header("plait-error")), (309, Some("version_unknown")));
    // Naming both heads resolves.
    let resolved = put("\"4.000\"", "\"2.000\", \"3.000\"", b"merged by hand").await;
    assert!(resolved.ok());
    let g = request(s.addr, "GET", "/c.bin", &[], b"").await;
    assert_eq!((g.body.as_slice(), g.header("conflict")), (&b"merged by hand"[..], None));
    // A delete is a tombstone version; the history stays readable.
    let del = request(s.addr, "DELETE", "/c.bin", &[], b"").await;
    assert!(del.ok());
    let gone = request(s.addr, "GET", "/c.bin", &[], b"").await;
    assert_eq!((gone.status, gone.header("plait-error")), (404, Some("file_deleted")));
    assert_eq!(gone.header("merge-type"), Some("aww"), "braidfs counts a 404 with aww as a blob");
    let again = request(s.addr, "DELETE", "/c.bin", &[], b"").await;
    assert_eq!((again.status, again.header("plait-error")), (404, Some("nothing_to_delete")));
    assert_eq!(request(s.addr, "GET", "/c.bin", &[("Version", "\"4.000\"")], b"").await.body, b"merged by hand");
    // A late write based on the version before the delete does not hide the delete.
    let late = put("\"5.000\"", "\"4.000\"", b"late edit").await;
    assert!(late.ok());
    let g = request(s.addr, "GET", "/c.bin", &[], b"").await;
    assert!(g.header("conflict").is_some(), "the late write is in conflict with the delete: {:?}", g.headers);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_file_writes_store_nothing() {
    let s = TestServer::start_with(Engine::Rocks, |cfg| cfg.max_file_bytes = 100_000).await;
    let aww = ("Merge-Type", "aww");
    let r = request(s.addr, "PUT", "/m.bin", &[aww, ("Version", "\"a b\"")], b"x").await;
    assert_eq!((r.status, r.header("plait-error")), (400, Some("bad_file_version")));
    let r = request(s.addr, "PUT", "/m.bin", &[aww, ("Repr-Digest", &digest(b"other"))], b"x").await;
    assert_eq!((r.status, r.header("plait-error")), (400, Some("digest_mismatch")));
    let big = vec![0u8; 100_001];
    let r = request(s.addr, "PUT", "/m.bin", &[aww], &big).await;
    assert_eq!((r.status, r.header("plait-error")), (413, Some("file_too_large")));
    // Chunked, so no Content-Length tells the server in advance.
    let mut conn = Conn::open(s.addr).await;
    conn.send_raw(b"PUT /m.bin HTTP/1.1\r\nHost: x\r\nMerge-Type: aww\r\nTransfer-Encoding: chunked\r\n\r\n").await;
    for _ in 0..11 {
        conn.send_raw(b"2710\r\n").await;
        conn.send_raw(&[7u8; 10_000]).await;
        conn.send_raw(b"\r\n").await;
    }
    conn.send_raw(b"0\r\n\r\n").await;
    let r = conn.read_response("PUT").await;
    assert_eq!((r.status, r.header("plait-error")), (413, Some("file_too_large")));
    // A body cut short: the connection closes before Content-Length bytes arrive.
    let mut conn = Conn::open(s.addr).await;
    conn.send_raw(b"PUT /m.bin HTTP/1.1\r\nHost: x\r\nMerge-Type: aww\r\nContent-Length: 5000\r\n\r\nonly this").await;
    drop(conn);
    // Nothing of the above became a version.
    let h = request(s.addr, "HEAD", "/m.bin", &[], b"").await;
    assert_ne!(h.header("merge-type"), Some("aww"), "no file exists: {:?}", h.headers);
    let ok = request(s.addr, "PUT", "/m.bin", &[aww, ("Repr-Digest", &digest(b"fine"))], b"fine").await;
    assert!(ok.ok(), "a correct write still goes in");
    s.stop().await;
}

/// Bodies larger than the largest chunk (4 MiB) are stored by the upload's writer thread while
/// the rest arrives: the bytes read back exactly, whole and ranged; a wrong `Repr-Digest`, the
/// size limit crossed, or a client gone mid-body, each after chunks went to the writer, leave
/// no version; and the server takes the next write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_larger_than_a_chunk_stream_through_the_writer_thread() {
    let s = TestServer::start_with(Engine::Rocks, |cfg| cfg.max_file_bytes = 8 << 20).await;
    let big = photo(21, (8 << 20) - 11);
    let r = request(s.addr, "PUT", "/big.jpg", &[("Repr-Digest", &digest(&big))], &big).await;
    assert!(r.ok(), "{} {:?}", r.status, r.header("plait-error"));
    let g = request(s.addr, "GET", "/big.jpg", &[], b"").await;
    assert!(g.status == 200 && g.body == big, "{} bytes back", g.body.len());
    let part = request(s.addr, "GET", "/big.jpg", &[("Range", "bytes=3000000-6999999")], b"").await;
    assert!(part.status == 206 && part.body == big[3_000_000..7_000_000], "{}", part.status);

    let other = photo(22, 7 << 20);
    let r = request(s.addr, "PUT", "/big.jpg", &[("Repr-Digest", &digest(b"not these"))], &other).await;
    assert_eq!((r.status, r.header("plait-error")), (400, Some("digest_mismatch")));
    // Chunked, so only the bytes received cross the limit, with 4 MiB already written.
    let mut conn = Conn::open(s.addr).await;
    conn.send_raw(b"PUT /big.jpg HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n").await;
    for piece in photo(23, 9 << 20).chunks(1 << 20) {
        conn.send_raw(format!("{:x}\r\n", piece.len()).as_bytes()).await;
        conn.send_raw(piece).await;
        conn.send_raw(b"\r\n").await;
    }
    conn.send_raw(b"0\r\n\r\n").await;
    let r = conn.read_response("PUT").await;
    assert_eq!((r.status, r.header("plait-error")), (413, Some("file_too_large")));
    let mut conn = Conn::open(s.addr).await;
    conn.send_raw(b"PUT /big.jpg HTTP/1.1\r\nHost: x\r\nContent-Length: 7000000\r\n\r\n").await;
    conn.send_raw(&other[..6_000_000]).await;
    drop(conn);

    let g = request(s.addr, "GET", "/big.jpg", &[], b"").await;
    assert!(g.status == 200 && g.body == big, "still the first version");
    let r = request(s.addr, "PUT", "/big.jpg", &[], &other).await;
    assert!(r.ok(), "the next write goes in");
    assert_eq!(request(s.addr, "GET", "/big.jpg", &[], b"").await.body, other);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = photo(7, 1_500_000);
    let server = ChildServer::start(dir.path(), &[]);
    let r = request(server.addr, "PUT", "/keep.jpg", &[], &bytes).await;
    assert!(r.ok());
    let v = r.header("version").unwrap().to_string();
    let r2 = request(server.addr, "PUT", "/keep.jpg", &[], b"\0second").await;
    assert!(r2.ok());
    server.kill9();
    let server = ChildServer::start(dir.path(), &[]);
    let g = request(server.addr, "GET", "/keep.jpg", &[("Version", &v)], b"").await;
    assert!(g.status == 200 && g.body == bytes, "the first version after kill -9");
    assert_eq!(request(server.addr, "GET", "/keep.jpg", &[], b"").await.body, b"\0second");
    server.terminate(WAIT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_subscription_streams_whole_versions_with_their_exact_bytes() {
    let s = TestServer::start(Engine::Memory).await;
    let first = photo(3, 2_000_000);
    assert!(request(s.addr, "PUT", "/sub.jpg", &[], &first).await.ok());
    let mut conn = Conn::open(s.addr).await;
    conn.send("GET", "/sub.jpg", &[("Subscribe", "?1"), ("Peer", "me")], b"").await;
    let head = conn.read_head().await;
    assert_eq!((head.status, head.header("merge-type")), (209, Some("aww")));
    let mut stream = Vec::new();
    let has = |buf: &[u8], needle: &[u8]| buf.windows(needle.len()).any(|w| w == needle);
    // The first update is the current version, whole, with its exact bytes.
    let mut first_update = first.clone();
    first_update.extend_from_slice(b"\r\n\r\n");
    read_until(&mut conn, &mut stream, |b| has(b, &first_update)).await;
    let at = stream.windows(first_update.len()).position(|w| w == first_update.as_slice()).unwrap();
    let head_text = String::from_utf8_lossy(&stream[..at]).to_string();
    assert!(head_text.starts_with("HTTP 200 OK\r\n"), "{head_text}");
    assert!(
        head_text.contains("Merge-Type: aww\r\nVersion-Type: wallclockish\r\nContent-Type: image/jpeg\r\n"),
        "{head_text}"
    );
    assert!(head_text.contains(&format!("Content-Length: {}\r\n", first.len())));
    stream.drain(..at + first_update.len());
    // Our own write is not echoed; another writer's is, then a delete as a 404 update.
    assert!(request(s.addr, "PUT", "/sub.jpg", &[("Peer", "me")], b"\0mine").await.ok());
    assert!(request(s.addr, "PUT", "/sub.jpg", &[("Content-Type", "image/gif")], b"\0theirs").await.ok());
    // Received before the delete (a subscriber that lags gets only the newest version).
    read_until(&mut conn, &mut stream, |b| has(b, b"\0theirs\r\n\r\n")).await;
    assert!(request(s.addr, "DELETE", "/sub.jpg", &[], b"").await.ok());
    read_until(&mut conn, &mut stream, |b| has(b, b"HTTP 404 Not Found")).await;
    assert!(has(&stream, b"Content-Type: image/gif\r\nrepr-digest: "), "{:?}", String::from_utf8_lossy(&stream));
    assert!(has(&stream, b"Content-Length: 7\r\n\r\n\0theirs\r\n\r\n"));
    assert!(!has(&stream, b"\0mine"), "the subscriber's own write came back");
    s.stop().await;
}

/// Reads the de-chunked stream into `buf` until `done(buf)`.
async fn read_until(conn: &mut Conn, buf: &mut Vec<u8>, mut done: impl FnMut(&mut Vec<u8>) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done(buf) {
        assert!(tokio::time::Instant::now() < deadline, "timed out; have {:?}", String::from_utf8_lossy(buf));
        match conn.read_chunk().await {
            Some(chunk) => buf.extend_from_slice(&chunk),
            None => panic!("the stream ended; have {:?}", String::from_utf8_lossy(buf)),
        }
    }
}

/// `plait serve` with `extra` flags on `dir`, expected to refuse to start: its stderr.
fn refused(dir: &Path, extra: &[&str]) -> String {
    let out = Command::new(crate::support::server::plait_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--auth", "none", "--data-dir"])
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    assert!(!out.status.success(), "plait serve {extra:?} should refuse to start");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_are_encrypted_with_the_key_file_and_a_wrong_key_is_refused_at_start_up() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key = |name: &str, hex: &str| {
        let p = keys.path().join(name);
        std::fs::write(&p, format!("{hex}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p.display().to_string()
    };
    let (a, b) = (key("a.key", &"a1".repeat(32)), key("b.key", &"b2".repeat(32)));
    // A marker that would show in the chunk store's files if it were stored in the clear.
    let marker = b"PLAINTEXT-MARKER-0123456789".repeat(4000);
    let mut body = vec![0u8];
    body.extend_from_slice(&marker);
    let leaks = |data: &Path| {
        walk(&data.join("chunks"))
            .iter()
            .any(|f| std::fs::read(f).unwrap_or_default().windows(26).any(|w| w == &marker[..26]))
    };
    // The control: without a key the marker is on disk (so the check below can fail).
    let clear = tempfile::tempdir().unwrap();
    let server = ChildServer::start(clear.path(), &[]);
    assert!(request(server.addr, "PUT", "/enc.bin", &[], &body).await.ok());
    assert!(server.terminate(WAIT).is_some());
    assert!(leaks(clear.path()), "the control store holds the marker in the clear");
    let server = ChildServer::start(dir.path(), &["--chunk-key-file", &a]);
    assert!(request(server.addr, "PUT", "/enc.bin", &[], &body).await.ok());
    assert!(server.terminate(WAIT).is_some());
    assert!(!leaks(dir.path()), "chunk bytes are readable on disk without the key");
    let wrong = refused(dir.path(), &["--chunk-key-file", &b]);
    assert!(wrong.contains("chunk") && wrong.contains("key"), "says what is wrong: {wrong}");
    let missing = refused(dir.path(), &[]);
    assert!(missing.contains("key"), "a store written with a key needs it: {missing}");
    let server = ChildServer::start(dir.path(), &["--chunk-key-file", &a]);
    assert_eq!(request(server.addr, "GET", "/enc.bin", &[], b"").await.body, body, "the right key reads it back");
    server.terminate(WAIT);
}

/// Every file under `dir`, recursively.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_feed_subscription_sends_versions_without_their_bytes() {
    let s = TestServer::start(Engine::Memory).await;
    let big = photo(9, 3_000_000);
    assert!(request(s.addr, "PUT", "/feed.jpg", &[], &big).await.ok());
    let mut conn = Conn::open(s.addr).await;
    conn.send("GET", "/feed.jpg", &[("Subscribe", "true"), ("Method-Override", "HEAD")], b"").await;
    assert_eq!(conn.read_head().await.status, 209);
    let mut stream = Vec::new();
    let has = |buf: &[u8], needle: &[u8]| buf.windows(needle.len()).any(|w| w == needle);
    // The current version first (then the next write: one written before the first update
    // went out would be coalesced into it, as a subscriber only needs the newest).
    read_until(&mut conn, &mut stream, |b| b.ends_with(b"Content-Length: 0\r\n\r\n\r\n\r\n")).await;
    let r = request(s.addr, "PUT", "/feed.jpg", &[("Content-Type", "image/png")], b"\0second").await;
    let v2 = r.header("version").unwrap().to_string();
    let second = format!("Version: {v2}\r\n");
    read_until(&mut conn, &mut stream, |b| {
        has(b, second.as_bytes()) && b.ends_with(b"Content-Length: 0\r\n\r\n\r\n\r\n")
    })
    .await;
    assert!(stream.len() < 2000, "heads only: {} bytes for a 3 MB file", stream.len());
    assert!(has(&stream, b"Content-Type: image/jpeg\r\n") && has(&stream, b"Content-Type: image/png\r\n"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_subscription_ends_when_its_path_becomes_a_file() {
    let s = TestServer::start(Engine::Memory).await;
    let mut conn = Conn::open(s.addr).await;
    conn.send("GET", "/later.bin", &[("Subscribe", "true")], b"").await;
    assert_eq!(conn.read_head().await.status, 209);
    let first = conn.read_chunk().await.expect("the empty snapshot");
    assert!(String::from_utf8_lossy(&first).contains("Content-Length: 0"));
    assert!(request(s.addr, "PUT", "/later.bin", &[("Merge-Type", "aww")], b"\0bytes").await.ok());
    // The stream ends (the client resubscribes and gets the file's stream).
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        assert!(tokio::time::Instant::now() < deadline, "the text subscription did not end");
        match tokio::time::timeout(WAIT, conn.read_chunk()).await.expect("no end within the bound") {
            None => break,
            Some(chunk) => {
                assert!(chunk.iter().all(|b| *b == b'\r' || *b == b'\n'), "no text update for a file: {chunk:?}")
            }
        }
    }
    let mut again = Conn::open(s.addr).await;
    again.send("GET", "/later.bin", &[("Subscribe", "true")], b"").await;
    let head = again.read_head().await;
    assert_eq!((head.status, head.header("merge-type")), (209, Some("aww")));
    s.stop().await;
}
