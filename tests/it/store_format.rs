//! The store's format version, end to end: `plait serve` on a data dir in a format it does not
//! read exits non-zero before listening, with a message naming the data dir, the version found
//! and the one it reads; a new data dir gets the current version.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use plait::store::rocks::Durability;
use plait::store::{keys, Batch, RocksStore, Store, FORMAT_VERSION};

use crate::support::client::request;
use crate::support::server::{plait_binary, ChildServer};

/// A data dir holding one record of data, whose format version record is then set to
/// `version` (None: removed), the way another plait would have left it.
fn prepare(version: Option<&[u8]>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path(), Durability::Sync).unwrap();
    let mut b = Batch::new();
    b.put(keys::snapshot("/notes/a"), b"made by another plait".to_vec());
    match version {
        Some(v) => b.put(keys::format_version(), v.to_vec()),
        None => b.delete(keys::format_version()),
    }
    store.write(&b).unwrap();
    dir
}

/// Runs `plait serve` on `dir`, which must refuse it: returns its stderr. Fails if the server
/// prints its listening line, or is still running after a minute.
fn refused(dir: &Path) -> String {
    let mut child = Command::new(plait_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("PLAIT_LOG", "warn")
        .env("PLAIT_AUTH", "none")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    // Read both pipes to their end (the process exits, or is killed below): no blocked writer.
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("plait serve still running on {} after a minute", dir.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert!(!status.success(), "plait serve exited successfully on {}: {stderr}", dir.display());
    assert!(!stdout.contains("listening"), "it listened before refusing: {stdout}");
    assert!(stderr.contains(&dir.display().to_string()), "the message does not name the data dir: {stderr}");
    assert!(stderr.contains(&format!("format version {FORMAT_VERSION}")), "no expected version: {stderr}");
    stderr
}

#[test]
fn a_newer_format_version_is_refused_before_listening() {
    let newer = (FORMAT_VERSION + 1).to_string();
    let dir = prepare(Some(newer.as_bytes()));
    let err = refused(dir.path());
    assert!(err.contains(&format!("format version {newer}")) && err.contains("newer"), "{err}");
    assert!(!err.contains("--memory"), "a hint for a missing engine is not the problem here: {err}");
}

#[test]
fn an_unreadable_format_version_is_refused_before_listening() {
    let dir = prepare(Some(b"x9\xff"));
    let err = refused(dir.path());
    assert!(err.contains("unreadable") && err.contains("`x9\\xff`"), "{err}");
}

#[test]
fn data_without_a_format_version_is_refused_before_listening() {
    let dir = prepare(None);
    let err = refused(dir.path());
    assert!(err.contains("no store format version record") && err.contains("pre-release"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_data_dir_gets_the_current_format_version() {
    let dir = tempfile::tempdir().unwrap();
    let server = ChildServer::start(dir.path(), &[]);
    assert!(request(server.addr, "PUT", "/notes/a", &[], b"hello").await.ok());
    assert!(server.terminate(Duration::from_secs(10)).is_some(), "the server did not stop");
    // The store holds data now: it opens only if the server wrote the version record.
    let store = RocksStore::open(dir.path(), Durability::Sync).unwrap();
    assert_eq!(store.get(&keys::format_version()).unwrap(), Some(FORMAT_VERSION.to_string().into_bytes()));
    assert_eq!(store.scan_prefix_rev(&[], None, 2).unwrap().len(), 2, "the write is stored beside the version");
}

/// Formats 1 and 2 lack the change log of folders (and 1 file resources): such a data dir is
/// upgraded in place (its record says 3 afterwards, so an older build refuses it instead of
/// writing without the log), and its resources enter the log before the server listens, so the
/// folder lists them and a watcher's cursor from the listing sees the next change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_data_dir_is_upgraded_and_its_resources_enter_the_change_log() {
    for old in [b"1", b"2"] {
        let dir = tempfile::tempdir().unwrap();
        let server = ChildServer::start(dir.path(), &[]);
        assert!(request(server.addr, "PUT", "/notes/a", &[], b"written before the log").await.ok());
        assert!(request(server.addr, "PUT", "/notes/photo.bin", &[("Merge-Type", "aww")], b"\0file").await.ok());
        assert!(server.terminate(Duration::from_secs(10)).is_some());
        {
            // What an older plait left: no change log, an older format version.
            let store = RocksStore::open(dir.path(), Durability::Sync).unwrap();
            let mut b = Batch::new();
            for tag in [b"q", b"y", b"e", b"w"] {
                b.delete_prefix(tag.to_vec());
            }
            b.put(keys::format_version(), old.to_vec());
            store.write(&b).unwrap();
        }
        let server = ChildServer::start(dir.path(), &[]);
        assert_eq!(request(server.addr, "GET", "/notes/a", &[], b"").await.text(), "written before the log");
        let listing = request(server.addr, "GET", "/notes/", &[("Accept", "application/json")], b"").await;
        let json: serde_json::Value = serde_json::from_str(&listing.text()).unwrap();
        let names: Vec<&str> =
            json["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
        assert_eq!(names, vec!["a", "photo.bin"], "{json}");
        let cursor = json["cursor"].as_str().unwrap().to_string();
        assert!(request(server.addr, "PUT", "/notes/b", &[], b"after").await.ok());
        let since = request(server.addr, "GET", &format!("/notes/?since={cursor}"), &[], b"").await;
        let changes: serde_json::Value = serde_json::from_str(&since.text()).unwrap();
        let paths: Vec<&str> =
            changes["changes"].as_array().unwrap().iter().map(|c| c["path"].as_str().unwrap()).collect();
        assert_eq!(paths, vec!["/notes/b"], "{changes}");
        assert!(server.terminate(Duration::from_secs(10)).is_some());
        let store = RocksStore::open(dir.path(), Durability::Sync).unwrap();
        assert_eq!(store.get(&keys::format_version()).unwrap(), Some(FORMAT_VERSION.to_string().into_bytes()));
        assert_eq!(FORMAT_VERSION, 3);
        assert!(!plait::store::ChangeLog::needs_backfill(&store).unwrap(), "the backfill ran once");
    }
}
