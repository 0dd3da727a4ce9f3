//! The `plait` client's resumable transfers and reconnecting watch, as the real binary against
//! a real server behind `support::cut_proxy` (which cuts the network on cue and counts the bytes
//! each connection carried): an upload cut by the network, then by Ctrl-C, continues from the
//! server's offset and sends only the rest; a download interrupted by Ctrl-C continues from its
//! `.part` file, and starts over when the file changed meanwhile; a watch survives a server
//! restart and resumes with `Parents` (no snapshot again, nothing missed).

use std::time::{Duration, Instant};

use crate::client_cmds::{same_file, sigint, Client, Lines};
use crate::support::cut_proxy::{CutPlan, CutProxy};
use crate::support::server::{ChildServer, Engine, TestServer};

/// Request or response bytes beyond the payload that one resumed transfer may carry (its
/// requests' and answers' heads).
const OVERHEAD: u64 = 8 << 10;

/// `n` bytes that do not compress or repeat (xorshift).
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Bytes sent up by the proxy's connections from index `from` on.
fn up_since(p: &CutProxy, from: usize) -> u64 {
    p.connections()[from..].iter().map(|c| c.up).sum()
}

fn down_since(p: &CutProxy, from: usize) -> u64 {
    p.connections()[from..].iter().map(|c| c.down).sum()
}

/// Waits (bounded) until `path` holds at least `n` bytes.
async fn wait_len(path: &std::path::Path, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) < n {
        assert!(Instant::now() < deadline, "{} never reached {n} bytes", path.display());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_continues_from_the_servers_offset_after_a_cut_and_after_ctrl_c() {
    let server = TestServer::start(Engine::Rocks).await;
    let c = Client::new();
    let size = 8u64 << 20;
    std::fs::write(c.path("a.bin"), noise(size as usize, 1)).unwrap();

    // 1. The network drops after 3 MiB; with no retries allowed the command gives up (6)...
    let proxy = CutProxy::start(server.addr, CutPlan { after_bytes: 3 << 20, times: 1 }).await;
    let target = format!("{}/up/a.bin", proxy.base());
    let r = c.run(&["upload", "a.bin", &target, "--retries", "0", "--json"]).await;
    assert_eq!(r.code, 6, "{r:?}");
    assert_eq!(r.error()["error"], "network");
    // ...and the same command continues from what the server kept, sending only the rest.
    let before = proxy.connections().len();
    let r = c.run(&["upload", "a.bin", &target, "--json"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    let j = r.json();
    let resumed = j["resumed_from"].as_u64().unwrap();
    assert!(resumed > 0 && resumed <= 3 << 20, "resumed from {resumed}: {j}");
    assert_eq!((j["size"].as_u64(), j["url"].as_str()), (Some(size), Some(target.as_str())));
    assert!(j["upload"].as_str().unwrap().contains("/.plait/uploads/"));
    assert!(j["version"][0].is_string(), "{j}");
    let sent = up_since(&proxy, before);
    assert!(sent >= size - resumed && sent < size - resumed + OVERHEAD, "sent {sent} for {} missing", size - resumed);
    c.ok(&["get", &target, "-o", "a.back"]).await;
    same_file(&c.path("a.bin"), &c.path("a.back"));

    // 2. Ctrl-C in the middle (paced at 2 MiB/s, stopped after 1 MiB): exit 130, then resume.
    std::fs::write(c.path("b.bin"), noise(size as usize, 2)).unwrap();
    let plain = CutProxy::start(server.addr, CutPlan { after_bytes: 0, times: 0 }).await;
    let target = format!("{}/up/b.bin", plain.base());
    let child = c.command(&["upload", "b.bin", &target, "--limit-rate", "2M"]).spawn().unwrap();
    assert!(plain.wait_forwarded(1 << 20, Duration::from_secs(30)).await, "the upload never started");
    sigint(child.id().unwrap());
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await.unwrap().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("run the same command again"));
    let first_run = plain.forwarded_up();
    assert!(first_run < size / 2, "the interrupted run sent {first_run}");
    let before = plain.connections().len();
    let r = c.run(&["upload", "b.bin", &target, "--json"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    let resumed = r.json()["resumed_from"].as_u64().unwrap();
    assert!(resumed >= (1 << 20) - OVERHEAD && resumed <= first_run, "resumed from {resumed} after {first_run} sent");
    let sent = up_since(&plain, before);
    assert!(sent < size - resumed + OVERHEAD, "sent {sent} for {} missing", size - resumed);
    c.ok(&["download", &target, "-o", "b.back"]).await;
    same_file(&c.path("b.bin"), &c.path("b.back"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_continues_its_part_file_and_starts_over_when_the_file_changed() {
    let server = TestServer::start(Engine::Rocks).await;
    let proxy = CutProxy::start(server.addr, CutPlan { after_bytes: 0, times: 0 }).await;
    let c = Client::new();
    let size = 6u64 << 20;
    std::fs::write(c.path("v1.bin"), noise(size as usize, 3)).unwrap();
    let url = format!("{}/dl/v.bin", proxy.base());
    c.ok(&["put", &url, "v1.bin"]).await;

    // Ctrl-C after 1 MiB: the .part file stays, the target does not exist yet.
    let child = c.command(&["download", &url, "-o", "got.bin", "--limit-rate", "2M"]).spawn().unwrap();
    wait_len(&c.path("got.bin.part"), 1 << 20).await;
    sigint(child.id().unwrap());
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await.unwrap().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    let part = std::fs::metadata(c.path("got.bin.part")).unwrap().len();
    assert!(part >= 1 << 20 && part < size, "part {part}");
    assert!(!c.path("got.bin").exists());

    // The same command asks only for the rest.
    let before = proxy.connections().len();
    let r = c.run(&["download", &url, "-o", "got.bin", "--json"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    let j = r.json();
    assert_eq!(
        (j["resumed_from"].as_u64(), j["size"].as_u64(), j["restarted"].as_bool()),
        (Some(part), Some(size), Some(false)),
        "{j}"
    );
    let received = down_since(&proxy, before);
    assert!(received < size - part + OVERHEAD, "received {received} for {} missing", size - part);
    same_file(&c.path("v1.bin"), &c.path("got.bin"));
    assert!(!c.path("got.bin.part").exists());

    // Interrupted again, and the file changes meanwhile: If-Range sends the new version whole.
    let mut child = c.command(&["download", &url, "-o", "new.bin", "--limit-rate", "2M"]).spawn().unwrap();
    wait_len(&c.path("new.bin.part"), 1 << 20).await;
    sigint(child.id().unwrap());
    assert_eq!(tokio::time::timeout(Duration::from_secs(30), child.wait()).await.unwrap().unwrap().code(), Some(130));
    std::fs::write(c.path("v2.bin"), noise(size as usize / 2, 4)).unwrap();
    c.ok(&["put", &url, "v2.bin"]).await;
    let j = c.ok(&["download", &url, "-o", "new.bin", "--json"]).await.json();
    assert_eq!((j["restarted"].as_bool(), j["size"].as_u64()), (Some(true), Some(size / 2)), "{j}");
    same_file(&c.path("v2.bin"), &c.path("new.bin"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_resumes_with_parents_after_the_server_restarts() {
    let data = tempfile::tempdir().unwrap();
    let a = ChildServer::start(data.path(), &[]);
    let proxy = CutProxy::start(a.addr, CutPlan { after_bytes: 0, times: 0 }).await;
    let c = Client::new();
    let url = format!("{}/w/doc", proxy.base());
    c.run_with(&["put", &url], &[], Some(b"one")).await;
    let mut watch = Lines::start(&c, &["watch", &url, "--json", "--text"]);
    let first = watch.next().await;
    assert_eq!(first["text"], "one", "{first}");

    // The server goes away and comes back (same data, new port, same URL through the proxy).
    assert!(a.terminate(Duration::from_secs(20)).is_some(), "the server did not stop");
    let b = ChildServer::start(data.path(), &[]);
    proxy.set_upstream(b.addr);
    c.ok(&["patch", &url, "--range", "3:3", " two"]).await;
    let next = watch.next().await;
    // Resumed from the version it had: the patch only, not a snapshot of the whole text again.
    assert!(next["patches"].is_array() && next["snapshot"].is_null(), "{next}");
    assert_eq!(next["text"], "one two");
    assert_eq!(next["parents"], first["version"]);
    watch.interrupt().await;
    drop(b);
}
