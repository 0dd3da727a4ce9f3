//! Retention and compaction (issue 6): old history folds into a snapshot behind a published
//! merge horizon; clients inside it carry on, clients behind it get 410 Gone and recover by
//! refetching; checkpoints are never folded; writes keep flowing during compaction; the
//! result survives `kill -9`; the background pass runs by itself.

use std::time::Duration;

use serde_json::{json, Value};

use crate::engines;
use crate::support::client::{request, Conn, SubscriptionReader};
use crate::support::server::{ChildServer, Engine, TestServer};

/// `n` chained writes `w0-0 … w{n-1}-0` to `path`, each appending its index.
async fn chain(addr: std::net::SocketAddr, path: &str, n: usize) {
    let mut conn = Conn::open(addr).await;
    for i in 0..n {
        let (version, parents) =
            (format!("\"w{i}-0\""), if i == 0 { String::new() } else { format!("\"w{}-0\"", i - 1) });
        let headers = [("Version", version.as_str()), ("Parents", parents.as_str()), ("Content-Range", "text [-0:-0]")];
        let r = conn.request("PUT", path, &headers, format!("{}", i % 10).as_bytes()).await;
        assert_eq!(r.status, 200, "write {i}: {}", r.text());
    }
}

fn expected_text(n: usize) -> String {
    (0..n).map(|i| char::from(b'0' + (i % 10) as u8)).collect()
}

async fn compact(addr: std::net::SocketAddr, path: &str, query: &str) -> Value {
    let r = request(addr, "POST", &format!("/.plait/compact{path}{query}"), &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

async fn listing(addr: std::net::SocketAddr, path: &str) -> Value {
    request(addr, "GET", &format!("/.plait/history{path}?limit=1000"), &[], b"").await.json()
}

/// Reads a subscription until its stream ends (bounded); true if it ended.
async fn stream_ends(sub: &mut SubscriptionReader) -> bool {
    for _ in 0..50 {
        match tokio::time::timeout(Duration::from_secs(5), sub.conn.read_chunk()).await {
            Ok(None) => return true,
            Ok(Some(_)) => continue,
            Err(_) => return false,
        }
    }
    false
}

engines!(compaction_folds_old_history_behind_a_horizon, |engine: Engine| async move {
    let s = TestServer::start(engine).await;
    chain(s.addr, "/rt/doc", 30).await;
    let mut watcher = SubscriptionReader::open(s.addr, "/rt/doc", &[]).await;
    watcher.next().await;
    let report = compact(s.addr, "/rt/doc", "?versions=10").await;
    assert_eq!(report["compacted"], true, "{report}");
    assert_eq!(report["folded_writes"], 20, "the newest 10 of 30 writes are kept");
    let (before, after) =
        (report["stored_bytes_before"].as_u64().unwrap(), report["stored_bytes_after"].as_u64().unwrap());
    assert!(after < before, "compaction shrank the stored history: {before} → {after}");
    let horizon = report["horizon"].clone();

    // Same text and version; the horizon is published on GET and in the listing.
    let get = request(s.addr, "GET", "/rt/doc", &[], b"").await;
    assert_eq!((get.text(), get.header("version")), (expected_text(30), Some("\"w29-0\"")));
    let header = get.header("merge-horizon").expect("Merge-Horizon on GET").to_string();
    assert_eq!(json!([header.trim_matches('"')]), horizon);
    let page = listing(s.addr, "/rt/doc").await;
    assert_eq!(page["versions"].as_array().unwrap().len(), 10);
    assert_eq!(page["horizon"]["version"], horizon);
    assert_eq!(page["horizon"]["replaces"], json!(["w19-0"]));
    assert_eq!(page["stored_bytes"].as_u64(), Some(after));
    // Subscriptions end at compaction; their clients resume with Parents.
    assert!(stream_ends(&mut watcher).await, "the open subscription ended");

    // Behind the horizon: 410 Gone, with the horizon to refetch from, for every kind of request.
    let gone = [
        ("GET", "/rt/doc".to_string(), vec![("Version", "\"w5-0\"")]),
        ("GET", "/rt/doc".to_string(), vec![("Parents", "\"w5-0\"")]),
        ("GET", "/rt/doc".to_string(), vec![("Subscribe", "true"), ("Parents", "\"w19-0\"")]),
        (
            "PUT",
            "/rt/doc".to_string(),
            vec![("Version", "\"late-0\""), ("Parents", "\"w3-0\""), ("Content-Range", "text [0:0]")],
        ),
        ("GET", "/.plait/history/rt/doc?before=w10-0".to_string(), vec![]),
        ("GET", "/.plait/diff/rt/doc?from=w2-0".to_string(), vec![]),
        ("POST", "/.plait/checkpoints/rt/doc".to_string(), vec![]),
    ];
    for (method, url, headers) in gone {
        let body: &[u8] = if url.contains("checkpoints") { br#"{"name": "old", "version": ["w1-0"]}"# } else { b"x" };
        let body = if method == "GET" { &b""[..] } else { body };
        let r = request(s.addr, method, &url, &headers, body).await;
        assert_eq!((r.status, r.json()["error"].clone()), (410, json!("behind_horizon")), "{method} {url} {headers:?}");
        assert_eq!(r.json()["horizon"], horizon);
        assert_eq!(r.json()["snapshot"], json!("/rt/doc"), "a pointer to the current snapshot");
        assert_eq!(r.header("link"), Some("</rt/doc>; rel=\"latest-version\""));
        assert_eq!(r.header("merge-horizon"), Some(header.as_str()));
    }
    // A write on top of the empty document cannot merge behind a non-empty horizon.
    let r = request(s.addr, "PUT", "/rt/doc", &[("Version", "\"new-0\""), ("Parents", "")], b"x").await;
    assert_eq!(r.status, 410, "{}", r.text());
    // Unknown versions that never existed still get 309, not 410.
    let r = request(s.addr, "GET", "/rt/doc", &[("Version", "\"nobody-1\"")], b"").await;
    assert_eq!(r.status, 309);

    // The horizon itself can be named: it reads as the text it replaced.
    let r = request(s.addr, "GET", "/rt/doc", &[("Version", &header)], b"").await;
    assert_eq!((r.status, r.text()), (200, expected_text(20)));

    // Inside the horizon everything works: old reads, merges, resuming subscriptions.
    let r = request(s.addr, "GET", "/rt/doc", &[("Version", "\"w25-0\"")], b"").await;
    assert_eq!(r.text(), expected_text(26));
    let headers = [("Version", "\"late-0\""), ("Parents", "\"w25-0\""), ("Content-Range", "text [0:0]")];
    assert_eq!(request(s.addr, "PUT", "/rt/doc", &headers, b"!").await.status, 200);
    assert_eq!(request(s.addr, "GET", "/rt/doc", &[], b"").await.text(), format!("!{}", expected_text(30)));
    let mut resumed = SubscriptionReader::open(s.addr, "/rt/doc", &[("Parents", "\"w29-0\"")]).await;
    assert_eq!(resumed.head.status, 209);
    let update = resumed.next().await;
    assert!(update.version.unwrap().ids().contains(&"late-0".to_string()), "the merge arrives");
    // A refetch (GET without Parents) gives a version any later request can name.
    let fresh = request(s.addr, "GET", "/rt/doc", &[], b"").await;
    let v = fresh.header("version").unwrap().to_string();
    let headers = [("Parents", v.as_str()), ("Content-Range", "text [0:0]")];
    assert_eq!(request(s.addr, "PUT", "/rt/doc", &headers, b"?").await.status, 200);

    // Compacting again moves the horizon on; the old base is then behind it too.
    chain_more(s.addr, "/rt/doc", 30, 45).await;
    let again = compact(s.addr, "/rt/doc", "?versions=5").await;
    assert_eq!(again["compacted"], true, "{again}");
    let r = request(s.addr, "GET", "/rt/doc", &[("Version", &header)], b"").await;
    assert_eq!(r.status, 410, "the first horizon is behind the second");
    assert_eq!(request(s.addr, "GET", "/rt/doc", &[], b"").await.text().len(), 47);
    s.stop().await;
});

/// Writes w{from}..w{to} chained onto the current version.
async fn chain_more(addr: std::net::SocketAddr, path: &str, from: usize, to: usize) {
    let mut conn = Conn::open(addr).await;
    for i in from..to {
        let version = format!("\"w{i}-0\"");
        let headers = [("Version", version.as_str()), ("Content-Range", "text [-0:-0]")];
        let r = conn.request("PUT", path, &headers, b"+").await;
        assert_eq!(r.status, 200, "write {i}: {}", r.text());
    }
}

engines!(checkpointed_versions_are_never_folded, |engine: Engine| async move {
    let s = TestServer::start(engine).await;
    chain(s.addr, "/rt/cp", 20).await;
    let r =
        request(s.addr, "POST", "/.plait/checkpoints/rt/cp", &[], br#"{"name": "keep", "version": ["w6-0"]}"#).await;
    assert_eq!(r.status, 201);
    let report = compact(s.addr, "/rt/cp", "?versions=3").await;
    assert_eq!(report["compacted"], true, "{report}");
    assert_eq!(report["folded_writes"], 6, "only the writes before the checkpoint fold");
    let r = request(s.addr, "GET", "/rt/cp", &[("Version", "\"w6-0\"")], b"").await;
    assert_eq!((r.status, r.text()), (200, expected_text(7)));
    assert_eq!(request(s.addr, "GET", "/rt/cp", &[("Version", "\"w4-0\"")], b"").await.status, 410);
    // A checkpoint on the very first write leaves nothing to fold.
    chain(s.addr, "/rt/cp0", 10).await;
    request(s.addr, "POST", "/.plait/checkpoints/rt/cp0", &[], br#"{"name": "first", "version": ["w0-0"]}"#).await;
    assert_eq!(compact(s.addr, "/rt/cp0", "?versions=2").await["compacted"], false);
    // Bad compaction requests are clear.
    for (query, status) in [("", 400), ("?versions=0", 400), ("?weeks=1", 400)] {
        let r = request(s.addr, "POST", &format!("/.plait/compact/rt/cp{query}"), &[], b"").await;
        assert_eq!((r.status, r.json()["error"].clone()), (status, json!("bad_query")), "{query}");
    }
    s.stop().await;
});

/// Writers keep appending on four connections while the document is compacted again and
/// again: every write is acknowledged and present exactly once afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_flow_while_compaction_runs() {
    let s = TestServer::start(Engine::Rocks).await;
    let addr = s.addr;
    let mut writers = Vec::new();
    for w in 0..4 {
        writers.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await;
            for i in 0..60 {
                let token = format!("<{w}.{i}>");
                let r = conn.request("PUT", "/rt/busy", &[("Content-Range", "text [-0:-0]")], token.as_bytes()).await;
                assert_eq!(r.status, 200, "{token}: {}", r.text());
            }
        }));
    }
    let mut compactions = 0;
    while !writers.iter().all(|w| w.is_finished()) {
        let r = request(addr, "POST", "/.plait/compact/rt/busy?versions=5", &[], b"").await;
        assert_eq!(r.status, 200, "{}", r.text());
        compactions += usize::from(r.json()["compacted"] == true);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for w in writers {
        w.await.unwrap();
    }
    assert!(compactions >= 2, "compaction ran while writing ({compactions} times)");
    let text = request(addr, "GET", "/rt/busy", &[], b"").await.text();
    for w in 0..4 {
        for i in 0..60 {
            assert_eq!(text.matches(&format!("<{w}.{i}>")).count(), 1, "<{w}.{i}> in {text}");
        }
    }
    s.stop().await;
}

/// Compaction is durable: after `kill -9` the restarted server has the same text, horizon
/// and listing, and still answers 410 behind the horizon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let server = ChildServer::start(dir.path(), &[]);
    chain(server.addr, "/rt/k9", 25).await;
    assert_eq!(compact(server.addr, "/rt/k9", "?versions=4").await["compacted"], true);
    let before = listing(server.addr, "/rt/k9").await;
    server.kill9();
    let server = ChildServer::start(dir.path(), &[]);
    let get = request(server.addr, "GET", "/rt/k9", &[], b"").await;
    assert_eq!((get.text(), get.header("version")), (expected_text(25), Some("\"w24-0\"")));
    assert!(get.header("merge-horizon").is_some());
    let after = listing(server.addr, "/rt/k9").await;
    assert_eq!(
        (after["versions"].clone(), after["horizon"].clone()),
        (before["versions"].clone(), before["horizon"].clone())
    );
    assert_eq!(request(server.addr, "GET", "/rt/k9", &[("Version", "\"w1-0\"")], b"").await.status, 410);
    assert_eq!(request(server.addr, "GET", "/rt/k9", &[("Version", "\"w22-0\"")], b"").await.text(), expected_text(23));
    // An agent whose every event was folded away carries on after them, never reusing an id;
    // a retry of a folded write is 410.
    let addr = server.addr;
    let put = |version: &'static str| async move {
        let headers = [("Version", version), ("Parents", "\"w24-0\""), ("Content-Range", "text [0:0]")];
        request(addr, "PUT", "/rt/k9", &headers, b"!").await
    };
    assert_eq!(put("\"w3-1\"").await.status, 200);
    assert_eq!(put("\"w5-0\"").await.status, 410);
    let r = request(server.addr, "GET", "/rt/k9", &[("Version", "\"w3-1\"")], b"").await;
    assert_eq!((r.status, r.text()), (200, format!("!{}", expected_text(25))));
}

/// With a retention rule configured, the background pass compacts by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_pass_applies_the_configured_rule() {
    let s = TestServer::start_with(Engine::Rocks, |c| {
        c.retention = vec!["/rt/bg/ versions=5".parse().unwrap(), "/rt/bg/keep/ all".parse().unwrap()];
        c.compaction_interval_secs = 1;
    })
    .await;
    chain(s.addr, "/rt/bg/a", 20).await;
    chain(s.addr, "/rt/bg/keep/b", 20).await;
    let mut compacted = false;
    for _ in 0..100 {
        if !listing(s.addr, "/rt/bg/a").await["horizon"].is_null() {
            compacted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(compacted, "the background pass never compacted /rt/bg/a");
    assert_eq!(listing(s.addr, "/rt/bg/a").await["versions"].as_array().unwrap().len(), 5);
    let kept = listing(s.addr, "/rt/bg/keep/b").await;
    assert_eq!((kept["versions"].as_array().unwrap().len(), kept["horizon"].clone()), (20, Value::Null));
    // The configured rule also serves on-demand compaction without a query.
    assert_eq!(compact(s.addr, "/rt/bg/a", "").await["compacted"], false, "nothing left to fold");
    s.stop().await;
}
