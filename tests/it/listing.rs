//! The history listing and checkpoints (issue 6): pages over a long history, authors and
//! summaries, restores marked, checkpoints named, everything durable across `kill -9`.

use serde_json::{json, Value};

use crate::engines;
use crate::support::client::{request, Conn};
use crate::support::server::{ChildServer, Engine, TestServer};

fn listing_url(path: &str, query: &str) -> String {
    format!("/.plait/history{path}{query}")
}

/// Follows `next_url` from the first page to the last; returns every entry, in page order.
async fn all_pages(addr: std::net::SocketAddr, first: &str) -> (Vec<Value>, usize) {
    let (mut url, mut entries, mut pages) = (first.to_string(), Vec::new(), 0);
    for _ in 0..1000 {
        let r = request(addr, "GET", &url, &[], b"").await;
        assert_eq!(r.status, 200, "{url}: {}", r.text());
        let page = r.json();
        pages += 1;
        entries.extend(page["versions"].as_array().unwrap().iter().cloned());
        match page["next_url"].as_str() {
            Some(next) => url = next.to_string(),
            None => return (entries, pages),
        }
    }
    panic!("the pages never ended");
}

engines!(history_lists_every_write_newest_first_in_pages, |engine: Engine| async move {
    let s = TestServer::start(engine).await;
    let mut conn = Conn::open(s.addr).await;
    // 260 appends from two peers, each naming its version; every 10th also deletes one char.
    for i in 0..260u32 {
        let (peer, version, parents) = (
            if i % 2 == 0 { "ann" } else { "ben" },
            format!("\"w{i}-0\""),
            if i == 0 { String::new() } else { format!("\"w{}-0\"", i - 1) },
        );
        let (range, body) = if i % 10 == 9 { ("text [0:1]", "") } else { ("text [0:0]", "x") };
        let headers =
            [("Peer", peer), ("Version", version.as_str()), ("Parents", parents.as_str()), ("Content-Range", range)];
        let r = conn.request("PUT", "/h/long", &headers, body.as_bytes()).await;
        assert_eq!(r.status, 200, "write {i}: {}", r.text());
    }
    let (entries, pages) = all_pages(s.addr, &listing_url("/h/long", "?limit=100")).await;
    assert_eq!((entries.len(), pages), (260, 3));
    for (k, e) in entries.iter().enumerate() {
        let i = 259 - k;
        assert_eq!(e["version"], json!([format!("w{i}-0")]), "newest first");
        let parents = if i == 0 { json!([]) } else { json!([format!("w{}-0", i - 1)]) };
        assert_eq!(e["parents"], parents);
        assert_eq!(e["author"], json!({"agent": format!("w{i}"), "peer": if i % 2 == 0 { "ann" } else { "ben" }}));
        let (ins, del) = if i % 10 == 9 { (0, 1) } else { (1, 0) };
        assert_eq!((e["inserted"].as_u64(), e["deleted"].as_u64()), (Some(ins), Some(del)), "entry {i}");
        assert!(e["received"].as_str().unwrap().ends_with('Z'));
    }
    let received: Vec<u64> = entries.iter().map(|e| e["received_ms"].as_u64().unwrap()).collect();
    assert!(received.windows(2).all(|w| w[0] >= w[1]), "newer writes were received later");

    // A page can start before any listed version; the default page size is 50.
    let page = request(s.addr, "GET", &listing_url("/h/long", "?before=%22w100-0%22"), &[], b"").await.json();
    assert_eq!(page["versions"].as_array().unwrap().len(), 50);
    assert_eq!(page["versions"][0]["version"], json!(["w99-0"]));
    assert_eq!(page["next"], json!("\"w50-0\""));
    let last = request(s.addr, "GET", &listing_url("/h/long", "?before=w3-0"), &[], b"").await.json();
    assert_eq!(last["versions"].as_array().unwrap().len(), 3);
    assert_eq!(last["next"], Value::Null);
    assert!(page["stored_bytes"].as_u64().unwrap() > 0);
    let (document, listing) = (page["document_bytes"].as_u64().unwrap(), page["listing_bytes"].as_u64().unwrap());
    assert!(document > 0 && listing > 0, "{page}");
    assert_eq!(document + listing, page["stored_bytes"].as_u64().unwrap());
    assert_eq!(page["current"], json!(["w259-0"]));
    s.stop().await;
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_queries_are_checked() {
    let s = TestServer::start(Engine::Memory).await;
    let r = request(s.addr, "PUT", "/h/q", &[("Version", "\"a-0\""), ("Parents", "")], b"x").await;
    assert_eq!(r.status, 200);
    for (query, code) in [
        ("?limit=0", "bad_query"),
        ("?limit=1001", "bad_query"),
        ("?limit=ten", "bad_query"),
        ("?before=%22nobody-9%22", "not_in_history"),
        ("?before=a-0,b-1", "bad_query"),
        ("?before=%22open", "bad_query"),
        ("?page=2", "bad_query"),
        ("?limit=%zz", "bad_query"),
    ] {
        let r = request(s.addr, "GET", &listing_url("/h/q", query), &[], b"").await;
        assert_eq!(
            (r.status, r.json()["error"].as_str().map(str::to_string)),
            (400, Some(code.to_string())),
            "{query}"
        );
    }
    let r = request(s.addr, "PUT", &listing_url("/h/q", ""), &[], b"").await;
    assert_eq!(r.status, 405);
    // Paths stay raw: a document named with an escape is found under the same escape.
    assert_eq!(request(s.addr, "PUT", "/h/a%20b", &[], b"x").await.status, 200);
    let page = request(s.addr, "GET", &listing_url("/h/a%20b", ""), &[], b"").await.json();
    assert_eq!((page["path"].clone(), page["versions"].as_array().map(Vec::len)), (json!("/h/a%20b"), Some(1)));
    let r = request(s.addr, "POST", "/.plait/compact/h/a%20b?versions=1", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    // A document nobody wrote has an empty history.
    let empty = request(s.addr, "GET", &listing_url("/h/none", ""), &[], b"").await.json();
    assert_eq!((empty["versions"].clone(), empty["next"].clone()), (json!([]), Value::Null));
    s.stop().await;
}

engines!(restores_and_checkpoints_show_in_the_listing, |engine: Engine| async move {
    let s = TestServer::start(engine).await;
    let put = |headers: Vec<(&'static str, &'static str)>, body: &'static str| {
        let addr = s.addr;
        async move {
            let r = request(addr, "PUT", "/h/cp", &headers, body.as_bytes()).await;
            assert_eq!(r.status, 200, "{}", r.text());
        }
    };
    put(vec![("Version", "\"a-4\""), ("Parents", "")], "hello").await;
    put(vec![("Version", "\"b-5\""), ("Parents", "\"a-4\""), ("Content-Range", "text [5:5]")], " world").await;
    let cp = |body: &'static str| request(s.addr, "POST", "/.plait/checkpoints/h/cp", &[], body.as_bytes());
    let r = cp(r#"{"name": "first draft", "version": ["a-4"]}"#).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["version"], json!(["a-4"]));
    assert_eq!(
        cp(r#"{"name": "first draft", "version": ["a-4"]}"#).await.status,
        200,
        "the same again changes nothing"
    );
    let clash = cp(r#"{"name": "first draft", "version": ["b-5"]}"#).await;
    assert_eq!((clash.status, clash.json()["error"].clone()), (409, json!("checkpoint_exists")));
    assert_eq!(cp(r#"{"name": "now"}"#).await.json()["version"], json!(["b-5"]), "default: the current version");
    for (body, status, code) in [
        (r#"{"name": ""}"#, 400, "bad_checkpoint_name"),
        (r#"{"name": "tab\there"}"#, 400, "bad_checkpoint_name"),
        (r#"{"name": "x", "version": ["zed-1"]}"#, 309, "version_unknown"),
        (r#"{"name": "x", "extra": 1}"#, 400, "bad_json"),
        (r#"not json"#, 400, "bad_json"),
    ] {
        let r = cp(body).await;
        assert_eq!((r.status, r.json()["error"].clone()), (status, json!(code)), "{body}");
    }
    let long = format!(r#"{{"name": "{}"}}"#, "n".repeat(129));
    assert_eq!(request(s.addr, "POST", "/.plait/checkpoints/h/cp", &[], long.as_bytes()).await.status, 400);

    let r = request(s.addr, "POST", "/.plait/restore/h/cp", &[("Peer", "undoer")], br#"{"version": ["a-4"]}"#).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let page = request(s.addr, "GET", &listing_url("/h/cp", ""), &[], b"").await.json();
    let versions = page["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 3);
    assert_eq!(versions[0]["restored_from"], json!(["a-4"]));
    assert_eq!(versions[0]["author"]["peer"], json!("undoer"));
    assert_eq!((versions[0]["inserted"].clone(), versions[0]["deleted"].clone()), (json!(0), json!(6)));
    assert_eq!(versions[1]["checkpoints"], json!(["now"]));
    assert_eq!(versions[2]["checkpoints"], json!(["first draft"]));
    let names: Vec<&str> =
        page["checkpoints"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["first draft", "now"]);

    let listed = request(s.addr, "GET", "/.plait/checkpoints/h/cp", &[], b"").await.json();
    assert_eq!(listed["checkpoints"].as_array().unwrap().len(), 2);
    let addr = s.addr;
    let del = |q: &'static str| async move {
        let url = format!("/.plait/checkpoints/h/cp{q}");
        request(addr, "DELETE", &url, &[], b"").await
    };
    assert_eq!(del("?name=now").await.status, 204);
    assert_eq!(del("?name=now").await.json()["error"], json!("no_such_checkpoint"));
    assert_eq!(del("").await.status, 400);

    // Deleting the document deletes its listing and checkpoints.
    assert_eq!(request(s.addr, "DELETE", "/h/cp", &[], b"").await.status, 200);
    let page = request(s.addr, "GET", &listing_url("/h/cp", ""), &[], b"").await.json();
    assert_eq!((page["versions"].clone(), page["checkpoints"].clone()), (json!([]), json!([])));
    s.stop().await;
});

/// The listing is written with the edits: after `kill -9` it lists exactly the acknowledged
/// writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listing_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let server = ChildServer::start(dir.path(), &[]);
    let mut conn = Conn::open(server.addr).await;
    for i in 0..40 {
        let r = conn.request("PUT", "/h/k9", &[("Peer", "p"), ("Content-Range", "text [-0:-0]")], b"ab").await;
        assert_eq!(r.status, 200, "write {i}");
    }
    let before = request(server.addr, "GET", &listing_url("/h/k9", "?limit=1000"), &[], b"").await.json();
    server.kill9();
    let server = ChildServer::start(dir.path(), &[]);
    let after = request(server.addr, "GET", &listing_url("/h/k9", "?limit=1000"), &[], b"").await.json();
    assert_eq!(after["versions"].as_array().unwrap().len(), 40);
    assert_eq!(after["versions"], before["versions"]);
    assert_eq!(after["stored_bytes"], before["stored_bytes"]);
}
