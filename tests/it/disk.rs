//! Disk trouble, for real: the server's data dir on a small tmpfs that the test fills up.
//! Writes answer 507 (nothing unpersisted is acknowledged or published), reads keep
//! working, and writing resumes by itself once space returns. Needs root to mount (CI and
//! the development machines run as root).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rand::distr::Alphanumeric;
use rand::{Rng, SeedableRng};

use crate::support::client::{request, Conn};
use crate::support::server::ChildServer;
use crate::support::SubscriptionReader;

/// A tmpfs mounted for one test, unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("mnt");
        std::fs::create_dir(&dir).unwrap();
        let ok = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(&dir).status();
        assert!(ok.is_ok_and(|s| s.success()), "cannot mount a tmpfs (this test needs root)");
        Tmpfs { dir, _parent: parent }
    }

    fn resize(&self, size: &str) {
        let ok = Command::new("mount").args(["-o", &format!("remount,size={size}")]).arg(&self.dir).status().unwrap();
        assert!(ok.success());
    }

    fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_refuses_writes_then_recovers_by_itself() {
    let fs = Tmpfs::mount("3m");
    let data = fs.path().join("data");
    let server = ChildServer::start(&data, &[]);
    let addr = server.addr;
    let mut watcher = SubscriptionReader::open(addr, "/disk/doc", &[]).await;
    let _ = watcher.next().await;

    // Append incompressible 32 KiB tokens until the disk is full.
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut conn = Conn::open(addr).await;
    let mut acked = Vec::new();
    let mut refused = 0;
    for i in 0..400 {
        let token: String = (&mut rng).sample_iter(&Alphanumeric).take(32 << 10).map(char::from).collect();
        let token = format!("<{i}>{token}");
        let r = conn.request("PUT", "/disk/doc", &[("Content-Range", "text [-0:-0]")], token.as_bytes()).await;
        match r.status {
            200 => acked.push(token),
            507 | 503 => {
                assert!(r.json()["error"].is_string());
                assert!(r.header("retry-after").is_some());
                refused += 1;
                if refused >= 5 {
                    break;
                }
            }
            other => panic!("unexpected {other}: {}", r.text()),
        }
    }
    assert!(refused >= 5, "the disk never filled up ({} writes acknowledged)", acked.len());
    assert!(!acked.is_empty());

    // Reads still work and show exactly the acknowledged writes.
    let text = request(addr, "GET", "/disk/doc", &[], b"").await.text();
    assert_eq!(text, acked.concat());
    // The subscriber saw exactly the acknowledged writes, nothing refused.
    let mut seen = String::new();
    while seen.len() < text.len() {
        let u = watcher.next().await;
        if let plait::protocol::UpdateBody::Patches(p) = &u.body {
            seen.extend(p.iter().map(|p| p.content.as_str()));
        }
    }
    assert_eq!(seen, text);
    assert!(watcher.next_within(Duration::from_millis(300)).await.is_none(), "a refused write was published");

    // Space returns: writing resumes without a restart.
    fs.resize("64m");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = request(addr, "PUT", "/disk/doc", &[("Content-Range", "text [-0:-0]")], b"<after>").await;
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "writes never resumed: {} {}", r.status, r.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = request(addr, "GET", "/disk/doc", &[], b"").await.text();
    assert_eq!(text, format!("{}<after>", acked.concat()));

    // And all of it survives kill -9.
    server.kill9();
    let server = ChildServer::start(&data, &[]);
    assert_eq!(request(server.addr, "GET", "/disk/doc", &[], b"").await.text(), text);
    server.kill9();
}
