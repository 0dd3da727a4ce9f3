//! Resumable uploads (issue 17) on the real server over raw HTTP: tus 1.0.0 and the IETF draft
//! on the same upload resources, creation on the resource itself, concatenation, checksums,
//! expiry with collection, access, and every malformed request answered with a clear 4xx that
//! changes nothing. The real clients (tus-js-client, tuspy, Uppy) have their own tests.

use base64::Engine as _;
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

use crate::auth::{create_token, token_server, with_token, ADMIN};
use crate::support::client::{request, Response};
use crate::support::server::{Engine, TestServer};

const TUS: (&str, &str) = ("Tus-Resumable", "1.0.0");
const OCTETS: (&str, &str) = ("Content-Type", "application/offset+octet-stream");

fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut out);
    out
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn meta_path(path: &str) -> String {
    format!("path {},filetype {}", b64(path), b64("application/x-test"))
}

fn repr_digest(data: &[u8]) -> String {
    format!("sha-256=:{}:", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(data)))
}

async fn create(s: &TestServer, extra: &[(&str, &str)]) -> Response {
    let mut h = vec![TUS];
    h.extend_from_slice(extra);
    request(s.addr, "POST", "/.plait/uploads/", &h, b"").await
}

async fn patch(s: &TestServer, loc: &str, offset: u64, body: &[u8], extra: &[(&str, &str)]) -> Response {
    let off = offset.to_string();
    let mut h = vec![TUS, OCTETS, ("Upload-Offset", off.as_str())];
    h.extend_from_slice(extra);
    request(s.addr, "PATCH", loc, &h, body).await
}

async fn head(s: &TestServer, loc: &str) -> Response {
    request(s.addr, "HEAD", loc, &[TUS], b"").await
}

/// Reads a resource back and checks its bytes and `Repr-Digest`.
async fn check_file(s: &TestServer, path: &str, data: &[u8]) {
    let r = request(s.addr, "GET", path, &[], b"").await;
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    assert!(r.body == data, "{path}: {} bytes back, {} uploaded", r.body.len(), data.len());
    assert_eq!(r.header("repr-digest"), Some(repr_digest(data).as_str()));
}

crate::engines!(tus_in_pieces_becomes_one_version_in_the_folder, |engine| async move {
    let s = TestServer::start(engine).await;
    let data = bytes(1, 3 << 20);
    let len = data.len().to_string();
    let c = create(&s, &[("Upload-Length", &len), ("Upload-Metadata", &meta_path("/up/a.bin"))]).await;
    assert_eq!(c.status, 201, "{}", c.text());
    let loc = c.header("location").unwrap().to_string();
    assert!(loc.starts_with("/.plait/uploads/") && loc.len() == 16 + 32, "{loc}");
    assert!(c.header("upload-expires").is_some_and(|e| e.ends_with("GMT")));
    let mut offset = 0u64;
    for piece in data.chunks(700_001) {
        let r = patch(&s, &loc, offset, piece, &[]).await;
        assert_eq!(r.status, 204, "{}", r.text());
        offset += piece.len() as u64;
        assert_eq!(r.header("upload-offset"), Some(offset.to_string().as_str()));
        assert_eq!(r.header("tus-resumable"), Some("1.0.0"));
        let h = head(&s, &loc).await;
        assert_eq!((h.status, h.header("upload-offset")), (200, Some(offset.to_string().as_str())));
        assert_eq!(h.header("upload-length"), Some(len.as_str()));
        assert_eq!(h.header("cache-control"), Some("no-store"));
    }
    check_file(&s, "/up/a.bin", &data).await;
    let head_file = request(s.addr, "HEAD", "/up/a.bin", &[], b"").await;
    assert_eq!(head_file.header("content-type"), Some("application/x-test"));
    let listing = request(s.addr, "GET", "/up/", &[("Accept", "application/json")], b"").await;
    assert!(listing.text().contains("a.bin"), "the folder lists the upload: {}", listing.text());
    // Appending to a complete upload is refused; HEAD still says where it ended.
    let again = patch(&s, &loc, offset, b"x", &[]).await;
    assert_eq!((again.status, again.header("plait-error")), (409, Some("upload_complete")));
    assert_eq!(head(&s, &loc).await.header("upload-offset"), Some(len.as_str()));
    s.stop().await;
});

crate::engines!(tus_creation_with_upload_deferred_length_checksums_and_termination, |engine| async move {
    let s = TestServer::start(engine).await;
    let data = bytes(2, 600_000);
    // creation-with-upload + a sha1 checksum of the bytes sent with it.
    let sha1 = base64::engine::general_purpose::STANDARD.encode(<sha1::Sha1 as sha1::Digest>::digest(&data[..200_000]));
    let h = [
        TUS,
        OCTETS,
        ("Upload-Defer-Length", "1"),
        ("Upload-Metadata", &meta_path("/up/deferred.bin")),
        ("Upload-Checksum", &format!("sha1 {sha1}")),
    ];
    let c = request(s.addr, "POST", "/.plait/uploads/", &h, &data[..200_000]).await;
    assert_eq!((c.status, c.header("upload-offset")), (201, Some("200000")), "{}", c.text());
    let loc = c.header("location").unwrap().to_string();
    assert_eq!(head(&s, &loc).await.header("upload-defer-length"), Some("1"));
    // A wrong sha256: 460, nothing kept.
    let wrong = format!("sha256 {}", base64::engine::general_purpose::STANDARD.encode([0u8; 32]));
    let r = patch(&s, &loc, 200_000, &data[200_000..400_000], &[("Upload-Checksum", &wrong)]).await;
    assert_eq!((r.status, r.header("plait-error")), (460, Some("checksum_mismatch")), "{}", r.text());
    assert_eq!(head(&s, &loc).await.header("upload-offset"), Some("200000"));
    // The right one, and the length declared with the last append.
    let right =
        format!("sha256 {}", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&data[200_000..])));
    let r =
        patch(&s, &loc, 200_000, &data[200_000..], &[("Upload-Checksum", &right), ("Upload-Length", "600000")]).await;
    assert_eq!((r.status, r.header("upload-offset")), (204, Some("600000")), "{}", r.text());
    check_file(&s, "/up/deferred.bin", &data).await;
    // Termination of another upload: 204, then it is gone.
    let c = create(&s, &[("Upload-Length", "10"), ("Upload-Metadata", &meta_path("/up/gone.bin"))]).await;
    let loc = c.header("location").unwrap().to_string();
    let d = request(s.addr, "DELETE", &loc, &[TUS], b"").await;
    assert_eq!(d.status, 204);
    assert_eq!(head(&s, &loc).await.status, 404);
    s.stop().await;
});

crate::engines!(tus_concatenation_makes_one_version_of_the_parts, |engine| async move {
    let s = TestServer::start(engine).await;
    let data = bytes(3, 900_000);
    let mut urls = Vec::new();
    for piece in data.chunks(300_000) {
        let len = piece.len().to_string();
        let c = create(&s, &[("Upload-Length", &len), ("Upload-Concat", "partial")]).await;
        assert_eq!(c.status, 201, "{}", c.text());
        let loc = c.header("location").unwrap().to_string();
        assert_eq!(patch(&s, &loc, 0, piece, &[]).await.status, 204);
        urls.push(format!("http://{}{loc}", s.addr));
    }
    let concat = format!("final;{}", urls.join(" "));
    let f = create(&s, &[("Upload-Concat", &concat), ("Upload-Metadata", &meta_path("/up/cat.bin"))]).await;
    assert_eq!(f.status, 201, "{}", f.text());
    check_file(&s, "/up/cat.bin", &data).await;
    // The parts went with the commit: a second final of them is refused.
    let again = create(&s, &[("Upload-Concat", &concat), ("Upload-Metadata", &meta_path("/up/cat2.bin"))]).await;
    assert_eq!((again.status, again.header("plait-error")), (400, Some("bad_upload_concat")));
    s.stop().await;
});

crate::engines!(ietf_draft_interop_6_and_8_and_creation_on_the_resource, |engine| async move {
    let s = TestServer::start(engine).await;
    let data = bytes(4, 1 << 20);
    for interop in ["6", "8"] {
        let path = format!("/ietf/v{interop}.bin");
        let v = ("Upload-Draft-Interop-Version", interop);
        let len = data.len().to_string();
        let meta = meta_path(&path);
        let h = [v, ("Upload-Complete", "?0"), ("Upload-Length", len.as_str()), ("Upload-Metadata", meta.as_str())];
        let c = request(s.addr, "POST", "/.plait/uploads/", &h, b"").await;
        assert_eq!((c.status, c.header("upload-complete")), (201, Some("?0")), "{}", c.text());
        assert!(c.header("upload-limit").is_some_and(|l| l.contains("max-size=")));
        assert_eq!(c.header("upload-draft-interop-version"), Some(interop));
        let loc = c.header("location").unwrap().to_string();
        let part = ("Content-Type", "application/partial-upload");
        let r = request(
            s.addr,
            "PATCH",
            &loc,
            &[v, part, ("Upload-Offset", "0"), ("Upload-Complete", "?0")],
            &data[..400_000],
        )
        .await;
        assert_eq!((r.status, r.header("upload-offset")), (204, Some("400000")), "{}", r.text());
        // A stale offset: 409 problem with the right offset.
        let r =
            request(s.addr, "PATCH", &loc, &[v, part, ("Upload-Offset", "3"), ("Upload-Complete", "?0")], b"ab").await;
        assert_eq!((r.status, r.header("upload-offset")), (409, Some("400000")));
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        assert_eq!(r.json()["expected-offset"], 400_000);
        let h = request(s.addr, "HEAD", &loc, &[v], b"").await;
        assert_eq!(
            (h.status, h.header("upload-offset"), h.header("upload-complete")),
            (204, Some("400000"), Some("?0"))
        );
        assert_eq!(h.header("upload-length"), Some(len.as_str()));
        let r = request(
            s.addr,
            "PATCH",
            &loc,
            &[v, part, ("Upload-Offset", "400000"), ("Upload-Complete", "?1")],
            &data[400_000..],
        )
        .await;
        assert_eq!((r.status, r.header("upload-complete")), (200, Some("?1")), "{}", r.text());
        assert!(r.header("version").is_some(), "the completing append answers like the file write");
        check_file(&s, &path, &data).await;
        // An empty ?1 at the end replays the success (what a client sends after a HEAD).
        let r =
            request(s.addr, "PATCH", &loc, &[v, part, ("Upload-Offset", &len), ("Upload-Complete", "?1")], b"").await;
        assert_eq!((r.status, r.header("upload-complete")), (204, Some("?1")));
    }
    // Creation on the resource itself: a Braid PUT with `Upload-Complete: ?1` is a file write.
    let r =
        request(s.addr, "PUT", "/ietf/direct.png", &[("Upload-Complete", "?1"), ("Content-Type", "image/png")], &data)
            .await;
    assert_eq!((r.status, r.header("upload-complete")), (200, Some("?1")), "{}", r.text());
    assert!(r.header("location").is_some_and(|l| l.starts_with("/.plait/uploads/")));
    check_file(&s, "/ietf/direct.png", &data).await;
    let head_file = request(s.addr, "HEAD", "/ietf/direct.png", &[], b"").await;
    assert_eq!(head_file.header("content-type"), Some("image/png"));
    // `?0` on the resource: 201 and the upload to continue.
    let r = request(s.addr, "PUT", "/ietf/later.bin", &[("Upload-Complete", "?0")], &data[..1000]).await;
    assert_eq!((r.status, r.header("upload-offset")), (201, Some("1000")), "{}", r.text());
    let loc = r.header("location").unwrap().to_string();
    let r =
        request(s.addr, "PATCH", &loc, &[("Upload-Offset", "1000"), ("Upload-Complete", "?1")], &data[1000..]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    check_file(&s, "/ietf/later.bin", &data).await;
    s.stop().await;
});

/// A malformed request: method, path, headers, body, then the status and code it must get.
type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, &'a [u8], u16, &'a str);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_upload_requests_get_clear_4xx_and_change_nothing() {
    let s = TestServer::start_with(Engine::Rocks, |c| c.max_upload_bytes = Some(1 << 20)).await;
    let meta = meta_path("/m/x.bin");
    let c = create(&s, &[("Upload-Length", "1000"), ("Upload-Metadata", &meta)]).await;
    let loc = c.header("location").unwrap().to_string();
    assert_eq!(patch(&s, &loc, 0, &[7u8; 100], &[]).await.status, 204);
    let unknown = "/.plait/uploads/00000000000000000000000000000000";
    let cases: Vec<Case> = vec![
        ("POST", "/.plait/uploads/", vec![("Upload-Length", "5")], b"", 412, "tus_version"),
        ("POST", "/.plait/uploads/", vec![("Tus-Resumable", "0.2.2"), ("Upload-Length", "5")], b"", 412, "tus_version"),
        ("POST", "/.plait/uploads/", vec![TUS, ("Upload-Metadata", &meta)], b"", 400, "bad_upload_length"),
        (
            "POST",
            "/.plait/uploads/",
            vec![TUS, ("Upload-Length", "-1"), ("Upload-Metadata", &meta)],
            b"",
            400,
            "bad_upload_length",
        ),
        (
            "POST",
            "/.plait/uploads/",
            vec![TUS, ("Upload-Length", "5"), ("Upload-Metadata", "path !!!")],
            b"",
            400,
            "bad_upload_metadata",
        ),
        ("POST", "/.plait/uploads/", vec![TUS, ("Upload-Length", "5")], b"", 400, "bad_upload_target"),
        (
            "POST",
            "/.plait/uploads/",
            vec![TUS, ("Upload-Length", "5"), ("Upload-Metadata", "path L2EvYi8=")],
            b"",
            400,
            "bad_upload_target",
        ),
        (
            "POST",
            "/.plait/uploads/",
            vec![TUS, ("Upload-Length", "2000000"), ("Upload-Metadata", &meta)],
            b"",
            413,
            "upload_too_large",
        ),
        (
            "POST",
            "/.plait/uploads/",
            vec![TUS, ("Upload-Length", "5"), ("Upload-Metadata", &meta), ("Content-Type", "text/plain")],
            b"hello",
            415,
            "upload_content_type",
        ),
        (
            "POST",
            "/.plait/uploads/",
            vec![TUS, ("Upload-Concat", "final;/nope"), ("Upload-Metadata", &meta)],
            b"",
            400,
            "bad_upload_concat",
        ),
        (
            "POST",
            "/.plait/uploads/",
            vec![("Upload-Draft-Interop-Version", "99"), ("Upload-Complete", "?0")],
            b"",
            400,
            "upload_interop_version",
        ),
        (
            "POST",
            "/.plait/uploads/",
            vec![("Upload-Draft-Interop-Version", "6"), ("Upload-Complete", "yes"), ("Upload-Metadata", &meta)],
            b"",
            400,
            "bad_upload_complete",
        ),
        ("HEAD", unknown, vec![TUS], b"", 404, "no_upload"),
        ("HEAD", "/.plait/uploads/nothex", vec![TUS], b"", 404, "no_upload"),
        ("PATCH", unknown, vec![TUS, OCTETS, ("Upload-Offset", "0")], b"x", 404, "no_upload"),
        ("PATCH", &loc, vec![TUS, ("Upload-Offset", "100")], b"x", 415, "upload_content_type"),
        ("PATCH", &loc, vec![TUS, OCTETS], b"x", 400, "bad_upload_length"),
        ("PATCH", &loc, vec![TUS, OCTETS, ("Upload-Offset", "1e2")], b"x", 400, "bad_upload_length"),
        ("PATCH", &loc, vec![TUS, OCTETS, ("Upload-Offset", "99")], b"x", 409, "upload_offset"),
        (
            "PATCH",
            &loc,
            vec![TUS, OCTETS, ("Upload-Offset", "100"), ("Upload-Length", "7")],
            b"x",
            409,
            "upload_length_mismatch",
        ),
        (
            "PATCH",
            &loc,
            vec![TUS, OCTETS, ("Upload-Offset", "100"), ("Upload-Checksum", "md5 AAAA")],
            b"x",
            400,
            "checksum_algorithm",
        ),
        (
            "PATCH",
            &loc,
            vec![TUS, OCTETS, ("Upload-Offset", "100"), ("Upload-Checksum", "sha1 AAAA")],
            b"x",
            400,
            "bad_checksum",
        ),
        ("PATCH", &loc, vec![TUS, OCTETS, ("Upload-Offset", "100")], &[1u8; 901], 413, "past_upload_length"),
        ("PUT", &loc, vec![TUS], b"x", 405, "method_not_allowed"),
    ];
    for (method, path, headers, body, status, code) in cases {
        let r = request(s.addr, method, path, &headers, body).await;
        assert_eq!(
            (r.status, r.header("plait-error")),
            (status, Some(code)),
            "{method} {path} {headers:?}: {}",
            r.text()
        );
        if status == 412 {
            assert_eq!(r.header("tus-version"), Some("1.0.0"));
        }
        if code == "upload_offset" {
            assert_eq!(r.header("upload-offset"), Some("100"), "a 409 says where to resume");
        }
        // Nothing changed the upload.
        assert_eq!(head(&s, &loc).await.header("upload-offset"), Some("100"), "after {method} {path} {headers:?}");
    }
    let listing = request(s.addr, "GET", "/m/", &[("Accept", "application/json")], b"").await;
    assert!(!listing.text().contains("x.bin"), "no version was made: {}", listing.text());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_creator_continues_an_upload_and_only_where_it_may_write() {
    let s = token_server(Engine::Rocks, |_| {}).await;
    let a = create_token(s.addr, ADMIN, "a", "write", &["/team/"], None).await;
    let b = create_token(s.addr, ADMIN, "b", "write", &["/team/"], None).await;
    let meta = meta_path("/team/big.bin");
    let h = [TUS, ("Upload-Length", "10"), ("Upload-Metadata", meta.as_str())];
    let anon = request(s.addr, "POST", "/.plait/uploads/", &h, b"").await;
    assert_eq!(anon.status, 401);
    let outside = meta_path("/elsewhere/x.bin");
    let r = with_token(
        s.addr,
        &a.token,
        "POST",
        "/.plait/uploads/",
        &[TUS, ("Upload-Length", "10"), ("Upload-Metadata", &outside)],
        b"",
    )
    .await;
    assert_eq!((r.status, r.header("plait-error")), (403, Some("forbidden")), "{}", r.text());
    let c = with_token(s.addr, &a.token, "POST", "/.plait/uploads/", &h, b"").await;
    assert_eq!(c.status, 201, "{}", c.text());
    let loc = c.header("location").unwrap().to_string();
    let other = with_token(s.addr, &b.token, "HEAD", &loc, &[TUS], b"").await;
    assert_eq!(other.status, 404, "another credential does not see the upload");
    let p = with_token(s.addr, &b.token, "PATCH", &loc, &[TUS, OCTETS, ("Upload-Offset", "0")], b"0123456789").await;
    assert_eq!(p.status, 404);
    let p = with_token(s.addr, &a.token, "PATCH", &loc, &[TUS, OCTETS, ("Upload-Offset", "0")], b"0123456789").await;
    assert_eq!(p.status, 204, "{}", p.text());
    let got = with_token(s.addr, &a.token, "GET", "/team/big.bin", &[], b"").await;
    assert_eq!(got.body, b"0123456789");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_upload_expires_and_its_chunks_are_collected() {
    let s = TestServer::start_with(Engine::Rocks, |c| c.upload_expiry_secs = 1).await;
    let chunks = |r: Response| r.json()["chunks"].as_u64().unwrap_or_else(|| panic!("{}", r.text()));
    let before = chunks(request(s.addr, "GET", "/.plait/chunks", &[], b"").await);
    let c = create(&s, &[("Upload-Length", "9000000"), ("Upload-Metadata", &meta_path("/exp/a.bin"))]).await;
    let loc = c.header("location").unwrap().to_string();
    assert_eq!(patch(&s, &loc, 0, &bytes(5, 6 << 20), &[]).await.status, 204);
    let collect = request(s.addr, "POST", "/.plait/collect", &[], b"").await;
    assert_eq!(collect.status, 200, "{}", collect.text());
    let held = chunks(request(s.addr, "GET", "/.plait/chunks", &[], b"").await);
    assert!(held >= before + 2, "the live upload's chunks survive a collection ({before} -> {held})");
    // The expiry pass runs every second: wait (bounded) for the upload to be gone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while head(&s, &loc).await.status != 404 {
        assert!(std::time::Instant::now() < deadline, "the upload did not expire");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    request(s.addr, "POST", "/.plait/collect", &[], b"").await;
    let after = chunks(request(s.addr, "GET", "/.plait/chunks", &[], b"").await);
    assert_eq!(after, before, "every chunk of the expired upload was collected");
    s.stop().await;
}
