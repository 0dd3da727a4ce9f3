//! Durability: acknowledged edits survive `kill -9`; idle documents unload and reload;
//! concurrent writers share syncs; a stopped server has closed its database.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::client::{request, Conn};
use crate::support::server::{ChildServer, Engine, TestServer};

/// Writers append tokens to several documents on a real `plait` process; then `kill -9`
/// and a restart on the same data dir. Returns the acknowledged tokens that are not in the
/// restarted server's text exactly once (lost or duplicated).
async fn kill_9_and_check(extra: &[&str], writes_per_writer: usize) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let server = ChildServer::start(dir.path(), extra);
    let addr = server.addr;
    let mut tasks = Vec::new();
    for w in 0..8 {
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await;
            let mut acked = Vec::new();
            for i in 0..writes_per_writer {
                let doc = format!("/kill/doc{}", (w + i) % 4);
                let token = format!("<w{w}t{i}>");
                // Each token is appended at the end; the server names the events.
                let r = conn
                    .request(
                        "PUT",
                        &doc,
                        &[("Peer", &format!("w{w}")), ("Content-Range", "text [-0:-0]")],
                        token.as_bytes(),
                    )
                    .await;
                assert_eq!(r.status, 200, "{}", r.text());
                acked.push((doc, token));
            }
            acked
        }));
    }
    let mut acked: Vec<(String, String)> = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    server.kill9();

    let server = ChildServer::start(dir.path(), extra);
    let mut texts = BTreeMap::new();
    for d in 0..4 {
        let doc = format!("/kill/doc{d}");
        texts.insert(doc.clone(), request(server.addr, "GET", &doc, &[], b"").await.text());
    }
    // Writing continues on top of the reloaded history.
    let r = request(server.addr, "PUT", "/kill/doc0", &[("Content-Range", "text [0:0]")], b"!").await;
    assert_eq!(r.status, 200);
    server.kill9();
    acked.into_iter().filter(|(doc, token)| texts[doc].matches(token.as_str()).count() != 1).map(|(_, t)| t).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_edits_survive_kill_9() {
    let bad = kill_9_and_check(&[], 25).await;
    assert!(bad.is_empty(), "{} acknowledged tokens lost or duplicated: {bad:?}", bad.len());
}

/// The check above can fail: against a server that keeps nothing (`--memory`), the same
/// run must report every token lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_check_detects_losses_without_durable_storage() {
    let bad = kill_9_and_check(&["--memory"], 25).await;
    assert_eq!(bad.len(), 200, "the checker missed lost writes");
}

/// ...and against a server that acknowledges before its writes are durable (the hidden
/// test-only flag), it must notice the acknowledged writes that never reached the disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_check_detects_losses_when_acks_precede_durability() {
    let bad = kill_9_and_check(&["--unsafe-ack-before-durable-ms", "300"], 5).await;
    assert!(!bad.is_empty(), "acknowledged-before-durable writes were all found after kill -9");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_documents_unload_and_reload_from_the_store() {
    for engine in [Engine::Memory, Engine::Rocks] {
        let s = TestServer::start_with(engine, |c| c.idle_unload_secs = 1).await;
        let r = request(s.addr, "PUT", "/idle", &[("Version", "\"a-4\""), ("Parents", "")], b"hello").await;
        assert_eq!(r.status, 200);
        let mut unloaded = false;
        for _ in 0..60 {
            let h = request(s.addr, "GET", "/.plait/health", &[], b"").await.json();
            if h["loaded_documents"] == 0 {
                unloaded = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(unloaded, "document was never unloaded ({engine:?})");
        let r = request(s.addr, "GET", "/idle", &[], b"").await;
        assert_eq!((r.text().as_str(), r.header("version")), ("hello", Some("\"a-4\"")));
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_share_syncs() {
    let s = TestServer::start(Engine::Rocks).await;
    let addr = s.addr;
    let mut tasks = Vec::new();
    for w in 0..32 {
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await;
            for i in 0..10 {
                let r = conn
                    .request(
                        "PUT",
                        &format!("/gc/{w}"),
                        &[("Content-Range", "text [-0:-0]")],
                        format!("{i}").as_bytes(),
                    )
                    .await;
                assert_eq!(r.status, 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let h = request(addr, "GET", "/.plait/health", &[], b"").await.json();
    let batches = h["commit_batches"].as_u64().unwrap();
    let writes = h["commit_writes"].as_u64().unwrap();
    assert_eq!(batches, 320);
    assert!(writes < batches, "{writes} synced writes for {batches} batches: no group commit");
    s.stop().await;
}

/// A stopped server has really closed RocksDB, even with a request still hanging: the
/// database can be opened again at once (RocksDB's lock file refuses a second opener while
/// the first instance lives). Why it matters: a database still closing while the process
/// exits corrupts the heap (RocksDB's static objects are destroyed under it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_has_closed_its_database() {
    let s = TestServer::start_with(Engine::Rocks, |c| c.parents_wait_ms = 60_000).await;
    for doc in ["/close/a", "/close/b", "/close/c"] {
        let r = request(s.addr, "PUT", doc, &[("Content-Range", "text [-0:-0]")], doc.as_bytes()).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let _subscribed =
        crate::support::client::SubscriptionReader::open(s.addr, "/close/a", &[("Subscribe", "true")]).await;
    // A PUT whose parents never arrive waits inside the server past the shutdown grace.
    let mut waiting = Conn::open(s.addr).await;
    let headers = [("Version", "\"w-0\""), ("Parents", "\"never-9\""), ("Content-Range", "text [0:0]")];
    waiting.send("PUT", "/close/b", &headers, b"x").await;
    let mut parked = false;
    for _ in 0..100 {
        if request(s.addr, "GET", "/.plait/health", &[], b"").await.json()["parked_writes"] == 1 {
            parked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(parked, "the PUT never started waiting for its parents");
    let dir = s.stop_keeping_data().await.expect("a RocksDB server has a data dir");
    let store = plait::store::RocksStore::open(dir.path(), plait::store::rocks::Durability::Sync)
        .unwrap_or_else(|e| panic!("the database is still open after stop: {e}"));
    assert!(plait::store::Store::scan_prefix(&store, b"").unwrap().len() >= 3, "the writes are in the database");
}
