//! The real `plait` binary with `--blob-store s3://…` against a real SeaweedFS: a multi-chunk
//! file written, read back byte for byte, again after a restart, an orphan chunk object
//! removed by the collector; and start-ups that must fail, each with one clear line: a wrong
//! key, a missing bucket, an unreachable endpoint, no credentials, CORS that would stop
//! browsers, a prefix that belongs to another data dir.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use plait::chunks::seal::Sealer;
use plait::chunks::{ChunkId, ChunkStore};

use crate::s3::{dead_port, fresh_prefix};
use crate::support::client::request;
use crate::support::seaweed::{Seaweed, BUCKET};
use crate::support::server::{plait_binary, ChildServer};

/// Incompressible bytes that never repeat (xorshift64), so every chunk is distinct.
pub fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_live_in_the_bucket_across_restarts_and_orphans_are_collected() {
    let weed = tokio::task::spawn_blocking(Seaweed::start).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let prefix = fresh_prefix("serve");
    let store = format!("s3://{BUCKET}/{prefix}");
    let args = ["--blob-store", store.as_str()];
    let server = ChildServer::start_with_env(data.path(), &args, &weed.env());

    // 6 MiB of noise: about six chunks of the default 1 MiB average.
    let bytes = noise(6 << 20);
    let put =
        request(server.addr, "PUT", "/media/big.bin", &[("content-type", "application/octet-stream")], &bytes).await;
    assert!(put.ok(), "{} {}", put.status, put.text());
    let got = request(server.addr, "GET", "/media/big.bin", &[], b"").await;
    assert_eq!(got.status, 200);
    assert!(got.body == bytes, "the file read back differs ({} bytes)", got.body.len());

    // The chunks are objects under the prefix, and the server's figures come from the bucket.
    let engine = weed.engine(&prefix);
    let (engine, ids) = tokio::task::spawn_blocking(move || {
        let ids = engine.ids(None, 1000).unwrap();
        (engine, ids)
    })
    .await
    .unwrap();
    assert!(ids.len() >= 3, "{} chunk objects", ids.len());
    let overview = request(server.addr, "GET", "/.plait/chunks", &[], b"").await.json();
    assert_eq!(overview["chunks"].as_u64(), Some(ids.len() as u64), "{overview}");

    // An orphan: a sealed chunk no version references (an upload that died half-way).
    let orphan_bytes = b"an orphan chunk that nothing references".to_vec();
    let orphan = ChunkId::of(&orphan_bytes);
    let sealed = Sealer::new(None, 1 << 20).seal(&orphan, &orphan_bytes).unwrap();
    let (engine, stored) = tokio::task::spawn_blocking(move || {
        let stored = engine.put(&orphan, &sealed, orphan_bytes.len() as u32).unwrap();
        (engine, stored)
    })
    .await
    .unwrap();
    assert!(stored);

    // Restart on the same data dir and prefix: the same bytes.
    assert!(server.terminate(Duration::from_secs(10)).is_some(), "the server did not stop");
    let server = ChildServer::start_with_env(data.path(), &args, &weed.env());
    let again = request(server.addr, "GET", "/media/big.bin", &[], b"").await;
    assert!(
        again.status == 200 && again.body == bytes,
        "after a restart: {} ({} bytes)",
        again.status,
        again.body.len()
    );

    let collected = request(server.addr, "POST", "/.plait/collect", &[], b"").await;
    assert!(collected.ok(), "{}", collected.text());
    assert_eq!(collected.json()["deleted"].as_u64(), Some(1), "{}", collected.text());
    let (left, orphan_now) =
        tokio::task::spawn_blocking(move || (engine.ids(None, 1000).unwrap(), engine.lookup(&[orphan]).unwrap()))
            .await
            .unwrap();
    assert_eq!(orphan_now, vec![None], "the orphan is gone");
    assert_eq!(left, ids, "every referenced chunk stays");
    let after = request(server.addr, "GET", "/media/big.bin", &[], b"").await;
    assert!(after.body == bytes);
    drop(server);
    tokio::task::spawn_blocking(move || drop(weed)).await.unwrap();
}

/// Runs `plait serve` expecting it to exit by itself (bounded); returns its stderr.
fn refused_start(data: &std::path::Path, args: &[&str], env: &[(&str, String)]) -> String {
    let mut child = Command::new(plait_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(args)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_ENDPOINT_URL")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("PLAIT_LOG", "warn")
        .env("PLAIT_AUTH", "none")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("plait serve {args:?} still running after 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(!status.success(), "plait serve {args:?} started: {stdout}");
    assert!(!stdout.contains("listening"), "it listened before failing: {stdout}");
    stderr
}

/// The error line of a refused start-up, checked to be one line that says `what`.
fn assert_one_line(stderr: &str, what: &str) {
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("Error: ")).collect();
    assert_eq!(errors.len(), 1, "one error line expected:\n{stderr}");
    assert!(errors[0].contains(what), "expected {what:?} in:\n{stderr}");
    assert!(!stderr.contains("Caused by"), "a chain, not one line:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plait_refuses_to_start_on_a_store_it_cannot_use() {
    let weed = tokio::task::spawn_blocking(Seaweed::start).await.unwrap();
    let check = move || {
        let prefix = fresh_prefix("refused");
        let store = format!("s3://{BUCKET}/{prefix}");
        let dir = tempfile::tempdir().unwrap();
        let args = ["--blob-store", store.as_str()];
        let with = |name: &'static str, value: String| {
            let mut env = weed.env();
            env.retain(|(k, _)| *k != name);
            env.push((name, value));
            env
        };

        let err = refused_start(dir.path(), &args, &with("AWS_SECRET_ACCESS_KEY", "wrong-secret".into()));
        assert_one_line(&err, &format!("refused access to bucket {BUCKET}"));
        assert_one_line(&err, "SignatureDoesNotMatch");

        let err = refused_start(dir.path(), &["--blob-store", "s3://no-such-bucket/x"], &weed.env());
        assert_one_line(&err, "the S3 bucket no-such-bucket does not exist");

        let dead = format!("http://127.0.0.1:{}", dead_port());
        let started = Instant::now();
        let err = refused_start(dir.path(), &args, &with("AWS_ENDPOINT_URL", dead.clone()));
        assert_one_line(&err, &format!("cannot reach the S3 endpoint {dead} (bucket {BUCKET})"));
        assert!(started.elapsed() < Duration::from_secs(20), "an unreachable store took {:?}", started.elapsed());

        let err = refused_start(dir.path(), &args, &[("AWS_ENDPOINT_URL", weed.endpoint.clone())]);
        assert_one_line(&err, "no S3 credentials");
        let err = refused_start(dir.path(), &["--direct-uploads"], &weed.env());
        assert_one_line(&err, "--direct-uploads needs an object store");
        let err = refused_start(dir.path(), &["--memory", "--blob-store", store.as_str()], &weed.env());
        assert_one_line(&err, "with --memory");

        // A second data dir on a prefix the first one uses.
        drop(ChildServer::start_with_env(dir.path(), &args, &weed.env()));
        let other = tempfile::tempdir().unwrap();
        let err = refused_start(other.path(), &args, &weed.env());
        assert_one_line(&err, "belongs to another Plait data dir");
        weed
    };
    let weed = tokio::task::spawn_blocking(check).await.unwrap();
    tokio::task::spawn_blocking(move || drop(weed)).await.unwrap();
}

#[test]
fn direct_uploads_refuse_a_bucket_whose_cors_would_stop_the_browsers() {
    let weed = Seaweed::start_with(&["-s3.allowedOrigins=http://uploads.example"]);
    let prefix = fresh_prefix("cors-serve");
    let store = format!("s3://{BUCKET}/{prefix}");
    let dir = tempfile::tempdir().unwrap();
    let refused = ["--blob-store", store.as_str(), "--direct-uploads", "--cors-origins", "http://elsewhere.example"];
    let err = refused_start(dir.path(), &refused, &weed.env());
    assert_one_line(&err, "CORS rules do not let a browser at http://elsewhere.example upload parts");
    let allowed = ["--blob-store", store.as_str(), "--direct-uploads", "--cors-origins", "http://uploads.example"];
    let server = ChildServer::start_with_env(dir.path(), &allowed, &weed.env());
    drop(server);
}
