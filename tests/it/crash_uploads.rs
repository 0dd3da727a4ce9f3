//! Crash test for resumable uploads (issue 17): the real `plait` binary is killed with
//! `kill -9` right after it acknowledged an append (`Upload-Offset`), and once in the middle of
//! a long append; each time it restarts on the same data dir and the upload must resume from
//! an offset at least as far as the last one acknowledged, and finish with exactly the bytes
//! sent. The self-test runs the same cycles against `--unsafe-ack-before-durable-ms` (offsets
//! answered before their checkpoint is durable) and must see acknowledged bytes lost.

use std::path::Path;

use base64::Engine as _;
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::support::client::{request, Conn};
use crate::support::server::ChildServer;

const TUS: (&str, &str) = ("Tus-Resumable", "1.0.0");
const OCTETS: (&str, &str) = ("Content-Type", "application/offset+octet-stream");
const PIECE: usize = 1 << 20;

fn data(len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(17).fill_bytes(&mut out);
    out
}

async fn offset(s: &ChildServer, loc: &str) -> u64 {
    let h = request(s.addr, "HEAD", loc, &[TUS], b"").await;
    assert_eq!(h.status, 200, "HEAD {loc} after a restart: {}", h.status);
    h.header("upload-offset").unwrap().parse().unwrap()
}

/// Cycles of "append one piece, get its acknowledgement, kill -9, restart": returns how many
/// cycles found less than the acknowledged offset after the restart.
async fn ack_then_kill(dir: &Path, extra: &[&str], body: &[u8], loc: &mut String, cycles: usize) -> usize {
    let mut lost = 0;
    let mut acked = 0u64;
    for cycle in 0..cycles {
        let s = ChildServer::start(dir, extra);
        if loc.is_empty() {
            let meta = format!("path {}", base64::engine::general_purpose::STANDARD.encode("/crash/up.bin"));
            let len = body.len().to_string();
            let c = request(
                s.addr,
                "POST",
                "/.plait/uploads/",
                &[TUS, ("Upload-Length", &len), ("Upload-Metadata", &meta)],
                b"",
            )
            .await;
            assert_eq!(c.status, 201);
            *loc = c.header("location").unwrap().to_string();
        }
        let at = offset(&s, loc).await;
        if at < acked {
            lost += 1;
            eprintln!("cycle {cycle}: acknowledged offset {acked}, found {at} after kill -9");
        }
        let end = (at as usize + PIECE).min(body.len() - 1);
        let off = at.to_string();
        let r = request(s.addr, "PATCH", loc, &[TUS, OCTETS, ("Upload-Offset", &off)], &body[at as usize..end]).await;
        assert_eq!(r.status, 204, "{}", r.text());
        acked = r.header("upload-offset").unwrap().parse().unwrap();
        s.kill9();
    }
    let s = ChildServer::start(dir, extra);
    if offset(&s, loc).await < acked {
        lost += 1;
    }
    s.kill9();
    lost
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_upload_offsets_survive_kill_9_and_the_upload_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let body = data(40 << 20);
    let mut loc = String::new();
    let lost = ack_then_kill(dir.path(), &[], &body, &mut loc, 5).await;
    assert_eq!(lost, 0, "an acknowledged offset was lost");

    // A long append killed in its middle: what the server checkpointed on the way is kept.
    let s = ChildServer::start(dir.path(), &[]);
    let at = offset(&s, &loc).await;
    let rest = &body[at as usize..];
    let mut conn = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "PATCH {loc} HTTP/1.1\r\nHost: t\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: {at}\r\nContent-Length: {}\r\n\r\n",
        rest.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    // Everything but the last byte: the server has read all but what the socket buffers hold.
    conn.write_all(&rest[..rest.len() - 1]).await.unwrap();
    s.kill9();
    drop(conn);
    let s = ChildServer::start(dir.path(), &[]);
    let kept = offset(&s, &loc).await;
    assert!(kept >= at + (8 << 20), "a killed long append kept {} of {} bytes", kept - at, rest.len());
    // Resume from there to the end: the version is exactly the bytes.
    let off = kept.to_string();
    let mut c = Conn::open(s.addr).await;
    let r = c.request("PATCH", &loc, &[TUS, OCTETS, ("Upload-Offset", &off)], &body[kept as usize..]).await;
    assert_eq!(r.status, 204, "{}", r.text());
    let got = request(s.addr, "GET", "/crash/up.bin", &[], b"").await;
    assert_eq!(got.status, 200);
    assert!(Sha256::digest(&got.body) == Sha256::digest(&body), "the resumed upload's bytes differ");
    s.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_test_acknowledging_before_durable_loses_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let body = data(12 << 20);
    let mut loc = String::new();
    let lost = ack_then_kill(dir.path(), &["--unsafe-ack-before-durable-ms", "400"], &body, &mut loc, 5).await;
    assert!(lost > 0, "the crash cycles did not notice offsets acknowledged before they were durable");
}
