//! Direct uploads to the object store (issue 17, part 5) against a real SeaweedFS: a grant,
//! then the Companion-compatible routes Uppy's `@uppy/aws-s3` calls, with the parts sent by curl
//! straight to the bucket on URLs Plait signed one at a time. The finished object becomes one
//! version (bytes and `Repr-Digest` checked, listed in its folder) and leaves the bucket; a
//! tampered and an expired part URL are refused by the store itself and a re-signed one works;
//! an aborted or expired upload is gone from the ledger and from S3. Chromium + stock Uppy run
//! the same routes in `uploads_browser`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::s3::fresh_prefix;
use crate::s3_serve::noise;
use crate::support::client::{request, Response};
use crate::support::seaweed::{Seaweed, BUCKET};
use crate::support::server::ChildServer;

/// `PUT`s `body` to a presigned URL with curl (it sends the `Host` the signature covers);
/// returns the status and the ETag.
pub(crate) fn curl_put(url: &str, body: &[u8], dir: &Path) -> (u16, Option<String>) {
    let file = dir.join("part");
    std::fs::write(&file, body).unwrap();
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-D", "-", "-X", "PUT", "-H", "Expect:", "--max-time", "60", "--data-binary"])
        .arg(format!("@{}", file.display()))
        .arg(url)
        .output()
        .expect("curl runs (installed by .ci/setup)");
    let head = String::from_utf8_lossy(&out.stdout).to_string();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let etag = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("etag:"))
        .map(|l| l[5..].trim().trim_matches('"').to_string());
    (status, etag)
}

async fn post_json(s: &ChildServer, path: &str, body: serde_json::Value) -> Response {
    request(s.addr, "POST", path, &[("Content-Type", "application/json")], body.to_string().as_bytes()).await
}

async fn start(weed: &Seaweed, data: &Path, prefix: &str, extra: &[&str]) -> ChildServer {
    let store = format!("s3://{BUCKET}/{prefix}");
    let mut args = vec!["--blob-store", store.as_str(), "--direct-uploads"];
    args.extend_from_slice(extra);
    ChildServer::start_with_env(data, &args, &weed.env())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_style_direct_upload_becomes_one_version_and_leaves_the_bucket() {
    let weed = tokio::task::spawn_blocking(Seaweed::start).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let prefix = fresh_prefix("direct");
    let s = start(&weed, data.path(), &prefix, &["--direct-part-url-secs", "2"]).await;

    let g = post_json(&s, "/.plait/direct", json!({"folder": "/direct/"})).await;
    assert_eq!(g.status, 201, "{}", g.text());
    let ep = g.json()["endpoint"].as_str().unwrap().to_string();
    let c = post_json(
        &s,
        &format!("{ep}/s3/multipart"),
        json!({"filename": "big file.bin", "type": "application/x-test", "metadata": {}}),
    )
    .await;
    assert_eq!(c.status, 200, "{}", c.text());
    let (key, upload_id) =
        (c.json()["key"].as_str().unwrap().to_string(), c.json()["uploadId"].as_str().unwrap().to_string());
    let enc_id = upload_id.replace('%', "%25").replace('/', "%2F").replace('+', "%2B").replace('=', "%3D");
    let sign = |n: u32| format!("{ep}/s3/multipart/{enc_id}/{n}?key={key}");

    let body = noise((5 << 20) + (1 << 20) + 12345);
    let pieces = [&body[..5 << 20], &body[5 << 20..]];
    let mut etags = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let n = i as u32 + 1;
        let url = request(s.addr, "GET", &sign(n), &[], b"").await.json()["url"].as_str().unwrap().to_string();
        if n == 1 {
            // A tampered signature: the store refuses it; a URL signed again works.
            let sig_at = url.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
            let mut bad = url.clone().into_bytes();
            bad[sig_at] = if bad[sig_at] == b'0' { b'1' } else { b'0' };
            let (status, _) = curl_put(&String::from_utf8(bad).unwrap(), piece, scratch.path());
            assert_eq!(status, 403, "a tampered part URL must be refused by the store");
        }
        if n == 2 {
            // An expired URL (they live 2 s here): refused by the store, then signed again.
            let deadline = Instant::now() + Duration::from_secs(3);
            let stale = url.clone();
            tokio::time::sleep_until(deadline.into()).await;
            assert_eq!(curl_put(&stale, piece, scratch.path()).0, 403, "an expired part URL must be refused");
        }
        let url = request(s.addr, "GET", &sign(n), &[], b"").await.json()["url"].as_str().unwrap().to_string();
        let (status, etag) = curl_put(&url, piece, scratch.path());
        assert_eq!(status, 200, "part {n}");
        etags.push(etag.expect("S3 answers a part with its ETag"));
    }
    let listed = request(s.addr, "GET", &format!("{ep}/s3/multipart/{enc_id}?key={key}"), &[], b"").await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    let listed = listed.json();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(listed[0]["PartNumber"], 1);
    assert_eq!(listed[1]["ETag"].as_str().map(|e| e.trim_matches('"')), Some(etags[1].as_str()));

    // A wrong ETag is refused by S3 and changes nothing; the right ones complete it.
    let wrong = json!({"parts": [{"PartNumber": 1, "ETag": "00000000000000000000000000000000"}, {"PartNumber": 2, "ETag": etags[1]}]});
    let r = post_json(&s, &format!("{ep}/s3/multipart/{enc_id}/complete?key={key}"), wrong).await;
    assert_eq!((r.status, r.header("plait-error")), (400, Some("bad_parts")), "{}", r.text());
    let parts: Vec<_> = etags.iter().enumerate().map(|(i, e)| json!({"PartNumber": i + 1, "ETag": e})).collect();
    let r = post_json(&s, &format!("{ep}/s3/multipart/{enc_id}/complete?key={key}"), json!({ "parts": parts })).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["location"], "/direct/big%20file.bin");
    assert!(r.header("version").is_some());

    let got = request(s.addr, "GET", "/direct/big%20file.bin", &[], b"").await;
    assert_eq!(got.status, 200);
    assert!(got.body == body, "the version's bytes differ from the parts sent");
    let digest = format!("sha-256=:{}:", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&body)));
    assert_eq!(got.header("repr-digest"), Some(digest.as_str()));
    assert_eq!(got.header("content-type"), Some("application/x-test"));
    let listing = request(s.addr, "GET", "/direct/", &[("Accept", "application/json")], b"").await;
    assert!(listing.text().contains("big%20file.bin"), "{}", listing.text());
    // The object left the bucket; the upload left the ledger.
    let bucket = weed.engine(&prefix).bucket();
    let object = bucket.upload_key(&format!("direct/{key}")).unwrap();
    assert_eq!(bucket.size(&object).await.unwrap(), None, "the completed object was deleted");
    let again = request(s.addr, "GET", &sign(1), &[], b"").await;
    assert_eq!((again.status, again.header("plait-error")), (404, Some("no_upload")));

    // Abort; an unknown grant; single-request uploads are not offered.
    let c = post_json(&s, &format!("{ep}/s3/multipart"), json!({"filename": "x.bin"})).await;
    let (key2, id2) =
        (c.json()["key"].as_str().unwrap().to_string(), c.json()["uploadId"].as_str().unwrap().to_string());
    let enc2 = id2.replace('%', "%25").replace('/', "%2F").replace('+', "%2B").replace('=', "%3D");
    let d = request(s.addr, "DELETE", &format!("{ep}/s3/multipart/{enc2}?key={key2}"), &[], b"").await;
    assert_eq!(d.status, 200, "{}", d.text());
    let gone = bucket.list_parts(&bucket.upload_key(&format!("direct/{key2}")).unwrap(), &id2).await;
    assert!(gone.is_err(), "an aborted upload is gone from S3");
    let bad =
        request(s.addr, "GET", &format!("/.plait/direct/{}/s3/params?filename=a", "0".repeat(32)), &[], b"").await;
    assert_eq!((bad.status, bad.header("plait-error")), (404, Some("bad_grant")));
    let single = request(s.addr, "GET", &format!("{ep}/s3/params?filename=a&type=b"), &[], b"").await;
    assert_eq!((single.status, single.header("plait-error")), (400, Some("use_multipart")));
    let dots = post_json(&s, &format!("{ep}/s3/multipart"), json!({"filename": ".."})).await;
    assert_eq!((dots.status, dots.header("plait-error")), (400, Some("bad_upload_target")));
    s.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_direct_upload_is_aborted_in_the_bucket_when_it_expires() {
    let weed = tokio::task::spawn_blocking(Seaweed::start).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let prefix = fresh_prefix("direct-expiry");
    let s = start(&weed, data.path(), &prefix, &["--upload-expiry-secs", "1"]).await;
    let g = post_json(&s, "/.plait/direct", json!({"folder": "/late/"})).await;
    let ep = g.json()["endpoint"].as_str().unwrap().to_string();
    let c = post_json(&s, &format!("{ep}/s3/multipart"), json!({"filename": "a.bin"})).await;
    let (key, id) = (c.json()["key"].as_str().unwrap().to_string(), c.json()["uploadId"].as_str().unwrap().to_string());
    let bucket = weed.engine(&prefix).bucket();
    let object = bucket.upload_key(&format!("direct/{key}")).unwrap();
    assert!(bucket.list_parts(&object, &id).await.is_ok(), "the upload exists in S3");
    // The expiry pass runs every second here: wait (bounded) for the abort to reach S3.
    let deadline = Instant::now() + Duration::from_secs(20);
    while bucket.list_parts(&object, &id).await.is_ok() {
        assert!(Instant::now() < deadline, "the expired upload was never aborted in the bucket");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    s.kill9();
}
