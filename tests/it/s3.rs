//! The S3 chunk engine and its bucket operations against a real SeaweedFS
//! (`support::seaweed`): the chunk-store conformance suite, calls from every kind of thread,
//! the start-up checks and their refusals, and the multipart primitives of direct uploads with
//! parts uploaded by curl through presigned URLs (tampered, expired and foreign-key URLs
//! refused by the store). The `plait` binary on S3 is `s3_serve`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use plait::chunks::s3::{S3Config, S3Error, S3Location};
use plait::chunks::{ChunkError, ChunkId, ChunkSize, ChunkStore, S3ChunkStore};

use crate::support::seaweed::{Seaweed, BUCKET, READ_ONLY_KEY, READ_ONLY_SECRET};

/// A prefix no other engine of this run uses.
pub fn fresh_prefix(test: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{test}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A loopback port nothing listens on.
pub fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn the_chunk_engine_conformance_suite_passes_against_seaweedfs() {
    let weed = Seaweed::start();
    plait::chunks::conformance::every_suite(|| {
        Arc::new(weed.engine(&fresh_prefix("conformance"))) as Arc<dyn ChunkStore>
    });
}

/// The trait is synchronous and called from `block_in_place`, the blocking pool, threads no
/// runtime knows and (at start-up) a runtime's own worker; the engine is dropped in async code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_answers_from_every_kind_of_thread() {
    let weed = tokio::task::spawn_blocking(Seaweed::start).await.unwrap();
    let engine = Arc::new(weed.engine(&fresh_prefix("threads")));
    let id = |n: u8| ChunkId::of(&[n]);
    assert!(tokio::task::block_in_place(|| engine.put(&id(1), b"one", 1)).unwrap());
    let e = engine.clone();
    assert!(tokio::task::spawn_blocking(move || e.put(&id(2), b"two!", 1)).await.unwrap().unwrap());
    let e = engine.clone();
    let sizes = std::thread::spawn(move || e.lookup(&[id(1), id(2), id(3)]).unwrap()).join().unwrap();
    assert_eq!(sizes, vec![Some(ChunkSize { plain: 1, stored: 3 }), Some(ChunkSize { plain: 1, stored: 4 }), None]);
    let e = engine.clone();
    let from_current_thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async { e.get(&id(2)) })
    });
    assert_eq!(from_current_thread.join().unwrap().unwrap().as_deref(), Some(&b"two!"[..]));
    // Directly on this runtime's worker, as `App::build` does at start-up.
    assert_eq!(engine.ids(None, 10).unwrap().len(), 2);
    drop(engine);
    tokio::task::spawn_blocking(move || drop(weed)).await.unwrap();
}

#[test]
fn a_store_that_fails_is_an_engine_error_naming_endpoint_and_bucket() {
    let port = dead_port();
    let location = S3Location::parse(&format!("s3://{BUCKET}/x")).unwrap();
    let config = S3Config::new(location, &format!("http://127.0.0.1:{port}"), "k", "s");
    let engine = S3ChunkStore::open(config).unwrap();
    let started = Instant::now();
    let err = engine.get(&ChunkId::of(b"x")).unwrap_err();
    let ChunkError::Engine(msg) = &err else { panic!("{err:?}") };
    assert!(msg.contains(&format!("http://127.0.0.1:{port}")) && msg.contains(BUCKET), "{msg}");
    assert!(msg.starts_with("cannot reach the S3 endpoint"), "{msg}");
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
}

fn refusal(config: S3Config, origins: &[String]) -> S3Error {
    S3ChunkStore::open(config).unwrap().check(origins).unwrap_err()
}

#[test]
fn the_start_up_check_refuses_a_store_that_cannot_serve() {
    let weed = Seaweed::start();
    let good = weed.config(&fresh_prefix("check"));
    let origin = vec!["http://127.0.0.1:8080".to_string()];
    S3ChunkStore::open(good.clone()).unwrap().check(&origin).unwrap();

    let mut wrong_secret = good.clone();
    wrong_secret.secret_access_key = "not-the-secret".into();
    let e = refusal(wrong_secret, &[]);
    assert!(matches!(e, S3Error::Denied { .. }), "{e}");
    assert!(e.to_string().contains(&weed.endpoint), "{e}");

    let mut unknown_key = good.clone();
    unknown_key.access_key_id = "nobody".into();
    assert!(matches!(refusal(unknown_key, &[]), S3Error::Denied { .. }));

    let missing = S3Config { location: S3Location::parse("s3://no-such-bucket/p").unwrap(), ..good.clone() };
    let e = refusal(missing, &[]);
    assert!(matches!(e, S3Error::NoSuchBucket { .. }), "{e}");
    assert!(e.to_string().contains("no-such-bucket"), "{e}");

    let read_only =
        S3Config { access_key_id: READ_ONLY_KEY.into(), secret_access_key: READ_ONLY_SECRET.into(), ..good.clone() };
    let e = refusal(read_only, &[]);
    assert!(matches!(e, S3Error::Denied { .. }) && e.to_string().contains("cannot write"), "{e}");

    let dead = S3Config { endpoint: Some(format!("http://127.0.0.1:{}", dead_port())), ..good.clone() };
    let started = Instant::now();
    let e = refusal(dead, &[]);
    assert!(matches!(e, S3Error::Unreachable { .. }), "{e}");
    assert!(started.elapsed() < Duration::from_secs(10), "a dead endpoint took {:?}", started.elapsed());

    // One data dir per prefix.
    let engine = S3ChunkStore::open(good).unwrap();
    engine.claim(7).unwrap();
    engine.claim(7).unwrap();
    let e = engine.claim(8).unwrap_err();
    assert!(matches!(e, S3Error::Foreign { .. }) && e.to_string().contains("another Plait data dir"), "{e}");
}

#[test]
fn direct_uploads_need_cors_that_lets_the_origin_upload_and_read_etag() {
    let weed = Seaweed::start_with(&["-s3.allowedOrigins=http://uploads.example"]);
    let engine = weed.engine(&fresh_prefix("cors"));
    engine.check(&["http://uploads.example".into()]).unwrap();
    let e = engine.check(&["http://elsewhere.example".into()]).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("CORS") && msg.contains("http://elsewhere.example"), "{msg}");
    // Without direct uploads, CORS is nobody's business.
    engine.check(&[]).unwrap();
}

/// What curl got back from a presigned request.
struct Sent {
    status: u16,
    etag: Option<String>,
}

/// `curl -X PUT --data-binary @file url`, as a browser would send a part.
fn curl_put(url: &str, body: &[u8]) -> Sent {
    let dir = tempfile::tempdir().unwrap();
    let (file, head) = (dir.path().join("part"), dir.path().join("head"));
    std::fs::write(&file, body).unwrap();
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "30", "-o", "/dev/null", "-X", "PUT", "-D"])
        .arg(&head)
        .arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .arg(url)
        .output()
        .expect("curl is installed by .ci/setup");
    assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    let head = std::fs::read_to_string(&head).unwrap();
    let block = head.trim_end().rsplit("\r\n\r\n").next().unwrap().to_string();
    let mut lines = block.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let etag = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("etag"))
        .map(|(_, v)| v.trim().to_string());
    Sent { status, etag }
}

async fn put_part(url: String, body: Vec<u8>) -> Sent {
    tokio::task::spawn_blocking(move || curl_put(&url, &body)).await.unwrap()
}

fn noise(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32).map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_upload_parts_with_presigned_urls_and_the_server_completes_and_reads_them() {
    let weed = tokio::task::spawn_blocking(Seaweed::start).await.unwrap();
    let engine = weed.engine(&fresh_prefix("multipart"));
    let bucket = engine.bucket();
    assert!(bucket.upload_key("../chunks/x").is_err() && bucket.upload_key("a//b").is_err());
    let key = bucket.upload_key("u1/video.bin").unwrap();
    assert!(key.as_str().ends_with("/uploads/u1/video.bin"), "{}", key.as_str());
    let upload = bucket.create_multipart(&key).await.unwrap();
    let hour = Duration::from_secs(3600);

    // Part 2 first, then part 1 (5 MiB, S3's smallest part but the last).
    let (one, two) = (noise(5 << 20, 1), noise(700_000, 2));
    let url2 = bucket.sign_part(&key, &upload, 2, hour).await.unwrap();
    let sent2 = put_part(url2, two.clone()).await;
    assert_eq!(sent2.status, 200);
    let url1 = bucket.sign_part(&key, &upload, 1, hour).await.unwrap();

    // A tampered URL (another part number under the same signature) is refused by the store.
    let tampered = url1.replace("partNumber=1", "partNumber=3");
    assert_ne!(tampered, url1);
    assert_eq!(put_part(tampered, b"x".to_vec()).await.status, 403);
    // So is one signed with a key the store does not know.
    let mut stranger = weed.config(engine_prefix(&key));
    stranger.secret_access_key = "someone-else".into();
    let forged = S3ChunkStore::open(stranger).unwrap().bucket().sign_part(&key, &upload, 1, hour).await.unwrap();
    assert_eq!(put_part(forged, b"x".to_vec()).await.status, 403);
    // And an expired one: valid at first, refused once its second has passed (bounded wait).
    let short = bucket.sign_part(&key, &upload, 4, Duration::from_secs(1)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = put_part(short.clone(), b"late".to_vec()).await.status;
        if status == 403 {
            break;
        }
        assert_eq!(status, 200, "an unexpired URL");
        assert!(Instant::now() < deadline, "an expired URL was still accepted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let sent1 = put_part(url1, one.clone()).await;
    assert_eq!(sent1.status, 200);

    // The store's own list of parts: what a resumed upload asks for.
    let parts = bucket.list_parts(&key, &upload).await.unwrap();
    let numbers: Vec<u32> = parts.iter().map(|p| p.number).collect();
    assert!(numbers.starts_with(&[1, 2]), "{numbers:?}");
    assert_eq!((parts[0].size, parts[1].size), (one.len() as u64, two.len() as u64));
    assert_eq!(Some(&parts[0].etag), sent1.etag.as_ref());

    // Completion checks the numbering before S3 sees it, then S3 checks the ETags.
    let e = bucket.complete(&key, &upload, &[(1, parts[0].etag.clone()), (3, parts[1].etag.clone())]).await;
    assert!(matches!(e, Err(S3Error::InvalidParts { .. })), "{e:?}");
    let e = bucket.complete(&key, &upload, &[(2, parts[1].etag.clone()), (1, "\"0000\"".into())]).await;
    assert!(matches!(e, Err(S3Error::InvalidParts { .. })), "{e:?}");
    let done = bucket.complete(&key, &upload, &[(2, sent2.etag.unwrap()), (1, sent1.etag.unwrap())]).await.unwrap();
    assert_eq!(done.key, key);
    assert!(matches!(bucket.list_parts(&key, &upload).await, Err(S3Error::NoSuchUpload { .. })));

    // The server reads the object back as a stream, byte for byte.
    let (size, mut stream) = bucket.read(&key).await.unwrap();
    assert_eq!(size, (one.len() + two.len()) as u64);
    let mut got = Vec::new();
    while let Some(piece) = stream.next().await {
        got.extend_from_slice(&piece.unwrap());
    }
    assert!(got[..one.len()] == one[..] && got[one.len()..] == two[..], "the object's bytes differ");
    assert_eq!(bucket.size(&key).await.unwrap(), Some(size));
    bucket.delete(&key).await.unwrap();
    bucket.delete(&key).await.unwrap();
    assert_eq!(bucket.size(&key).await.unwrap(), None);
    assert!(matches!(bucket.read(&key).await, Err(S3Error::NotFound { .. })));

    // An aborted upload is gone, parts and all.
    let other = bucket.upload_key("u2/abandoned.bin").unwrap();
    let id = bucket.create_multipart(&other).await.unwrap();
    let url = bucket.sign_part(&other, &id, 1, hour).await.unwrap();
    assert_eq!(put_part(url, b"some bytes".to_vec()).await.status, 200);
    assert_eq!(bucket.list_parts(&other, &id).await.unwrap().len(), 1);
    bucket.abort(&other, &id).await.unwrap();
    assert!(matches!(bucket.list_parts(&other, &id).await, Err(S3Error::NoSuchUpload { .. })));
    let e = bucket.complete(&other, &id, &[(1, "\"x\"".into())]).await;
    assert!(matches!(e, Err(S3Error::NoSuchUpload { .. } | S3Error::InvalidParts { .. })), "{e:?}");
    assert!(bucket.sign_part(&other, &id, 0, hour).await.is_err());
    assert!(bucket.sign_part(&other, &id, 10_001, hour).await.is_err());
    assert!(bucket.sign_part(&other, &id, 1, Duration::from_secs(8 * 24 * 3600)).await.is_err());
    drop(engine);
    tokio::task::spawn_blocking(move || drop(weed)).await.unwrap();
}

/// The engine prefix of an upload key (`<prefix>/uploads/...`).
fn engine_prefix(key: &plait::chunks::s3::bucket::UploadKey) -> &str {
    key.as_str().split("/uploads/").next().unwrap()
}
