//! Browsers uploading straight to the object store (issue 17, parts 5 and 6), in headless
//! Chromium against a real SeaweedFS started here and a `plait serve --blob-store s3://…
//! --direct-uploads` child: the folder page's own multipart client (`direct.js`) through a
//! tampered part URL, the browser offline and back, and a reload (`tests/js/upload_page_s3.mjs`);
//! stock Uppy (Core + AwsS3 from the npm bundle, `companionEndpoint` = a grant) through a
//! tampered and an expired part URL, each retried with `uppy.retryAll()`
//! (`tests/js/uppy_s3.mjs`). The scripts reach Plait through a proxy that counts what the
//! browser sends it, and fail unless that is a small fraction of the files: the bytes go to the
//! bucket. The files come from a seeded RNG; each committed version is read back with `GET`
//! and its bytes and `Repr-Digest` checked.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::direct_s3::curl_put;
use crate::s3::fresh_prefix;
use crate::support::client::request;
use crate::support::seaweed::{Seaweed, BUCKET};
use crate::support::server::ChildServer;
use crate::uploads_browser::{assert_committed_at, make_file, needs_browser, run_script};

const MIB: usize = 1 << 20;
/// The parts' size, the page's and Uppy's (S3's least).
const PART: usize = 5 * MIB;

/// What a test runs against.
struct Setup {
    weed: Seaweed,
    s: ChildServer,
    /// Plait's prefix in the bucket.
    prefix: String,
    /// A token that may write under `/up/` (and nowhere else), labelled "page uploads".
    token: String,
}

/// SeaweedFS, and Plait on a fresh prefix of its bucket with direct uploads on and access
/// control (tokens), with a write token for `/up/`.
async fn seaweed_and_plait(data: &std::path::Path, extra: &[&str]) -> Setup {
    let weed = tokio::task::spawn_blocking(Seaweed::start).await.unwrap();
    let prefix = fresh_prefix("browser");
    let store = format!("s3://{BUCKET}/{prefix}");
    let mut args = vec!["--blob-store", store.as_str(), "--direct-uploads", "--auth", "token"];
    args.extend_from_slice(extra);
    let admin: String = (0..40).map(|i| char::from(b'a' + (i * 7 % 26) as u8)).collect();
    let mut env = weed.env();
    env.push(("PLAIT_ADMIN_TOKEN", admin.clone()));
    let s = ChildServer::start_with_env(data, &args, &env);
    let bearer = format!("Bearer {admin}");
    let body = br#"{"label": "page uploads", "rights": "write", "prefixes": ["/up/"]}"#;
    let res = request(s.addr, "POST", "/.plait/tokens", &[("authorization", &bearer)], body).await;
    assert_eq!(res.status, 201, "{}", res.text());
    let token = res.json()["token"].as_str().unwrap().to_string();
    Setup { weed, s, prefix, token }
}

/// The other reference: the same bytes sent by curl straight to the bucket, in the same 5 MiB
/// parts, one after the other, on URLs signed by the same code (no browser, no Plait), then
/// completed; in milliseconds. The object is deleted after.
async fn reference_direct(weed: &Seaweed, prefix: &str, file: &std::path::Path) -> u128 {
    let bucket = weed.engine(prefix).bucket();
    let key = bucket.upload_key("reference/direct.bin").unwrap();
    let bytes = std::fs::read(file).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let id = bucket.create_multipart(&key).await.unwrap();
    let mut parts = Vec::new();
    for (i, piece) in bytes.chunks(PART).enumerate() {
        let n = i as u32 + 1;
        let url = bucket.sign_part(&key, &id, n, Duration::from_secs(600)).await.unwrap();
        let (status, etag) = curl_put(&url, piece, scratch.path());
        assert_eq!(status, 200, "the reference's part {n}");
        parts.push((n, etag.expect("an ETag")));
    }
    bucket.complete(&key, &id, &parts).await.unwrap();
    let ms = t.elapsed().as_millis();
    assert_eq!(bucket.size(&key).await.unwrap(), Some(bytes.len() as u64));
    bucket.delete(&key).await.unwrap();
    ms
}

/// As many bytes as `size`, from another seed (the same bytes would be deduplicated against the
/// version just made, and cost less), as one plain `PUT` from curl into the same server (through
/// Plait into the bucket's chunks): the reference for the figures, in milliseconds (not
/// asserted: a shared machine).
async fn reference_put(t: &Setup, dir: &std::path::Path, size: usize, path: &str) -> u128 {
    let sha = make_file(dir, "reference.bin", size, 97);
    let file = dir.join("reference.bin");
    let started = Instant::now();
    let put = tokio::process::Command::new("curl")
        .args(["-sS", "-f", "-o", "/dev/null", "-T", file.to_str().unwrap(), "-H"])
        .arg(format!("Authorization: Bearer {}", t.token))
        .arg(format!("http://{}{path}", t.s.addr))
        .status()
        .await
        .expect("curl is required (.ci/setup installs it)");
    assert!(put.success(), "the reference PUT failed");
    let ms = started.elapsed().as_millis();
    assert_committed_at(t.s.addr, Some(&t.token), path, &sha).await;
    ms
}

/// The folder page with direct uploads: a 40 MiB file dropped, a tampered part URL refused by
/// the bucket and sent again, the browser offline and back, a reload that goes on with the
/// parts the bucket lacks; the screenshot is kept under the target directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_folder_page_uploads_straight_to_the_bucket_through_a_tampered_url_offline_and_a_reload() {
    needs_browser();
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let sha = make_file(dir.path(), "straight-40.bin", 40 * MIB, 31);
    let file = dir.path().join("straight-40.bin");
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("upload-page-s3.png");
    let _ = std::fs::remove_file(&shot);
    let t = seaweed_and_plait(data.path(), &[]).await;

    let result = run_script(
        "upload_page_s3.mjs",
        t.s.addr,
        &[&t.token, file.to_str().unwrap(), shot.to_str().unwrap()],
        Duration::from_secs(260),
    )
    .await;

    assert_committed_at(t.s.addr, Some(&t.token), "/up/straight-40.bin", &sha).await;
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 1000, "no screenshot at {}", shot.display());
    let reference_ms = reference_put(&t, dir.path(), 40 * MIB, "/up/reference.bin").await;
    let direct_ms = reference_direct(&t.weed, &t.prefix, &file).await;
    eprintln!(
        "upload page (direct): {result}\nreferences: curl PUT of as many other bytes through Plait {reference_ms} ms; \
         curl sending the file's 5 MiB parts straight to the bucket {direct_ms} ms\nscreenshot: {}\ntook {:?}",
        shot.display(),
        started.elapsed()
    );
    t.s.kill9();
}

/// Stock Uppy (Core + AwsS3 6.1.0) on a grant: a tampered and an expired part URL, each refused
/// by the bucket, each file completed by `uppy.retryAll()`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_uppy_uploads_straight_to_the_bucket_and_retries_a_tampered_and_an_expired_url() {
    needs_browser();
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let sha_a = make_file(dir.path(), "uppy-a.bin", 40 * MIB, 37);
    let sha_b = make_file(dir.path(), "uppy-b.bin", 20 * MIB + 12345, 41);
    let (a, b) = (dir.path().join("uppy-a.bin"), dir.path().join("uppy-b.bin"));
    // Part URLs live 2 s: the script holds one PUT back 3 s.
    let t = seaweed_and_plait(data.path(), &["--direct-part-url-secs", "2"]).await;
    // The page's CSP and the part URLs name the same origin: the bucket's endpoint.
    let bucket = t.weed.engine(&t.prefix).bucket();
    let origin = tokio::task::spawn_blocking(move || bucket.origin()).await.unwrap().unwrap();
    assert_eq!(origin, t.weed.endpoint);

    let result = run_script(
        "uppy_s3.mjs",
        t.s.addr,
        &[&t.token, a.to_str().unwrap(), b.to_str().unwrap(), "/up/s3/"],
        Duration::from_secs(220),
    )
    .await;

    assert_committed_at(t.s.addr, Some(&t.token), "/up/s3/uppy-a.bin", &sha_a).await;
    assert_committed_at(t.s.addr, Some(&t.token), "/up/s3/uppy-b.bin", &sha_b).await;
    let reference_ms = reference_put(&t, dir.path(), 40 * MIB, "/up/s3/reference.bin").await;
    let direct_ms = reference_direct(&t.weed, &t.prefix, &a).await;
    eprintln!(
        "uppy (direct): {result}\nreferences for file a: curl PUT of as many other bytes through Plait {reference_ms} ms; \
         curl sending its 5 MiB parts straight to the bucket {direct_ms} ms\ntook {:?}",
        started.elapsed()
    );
    t.s.kill9();
}
