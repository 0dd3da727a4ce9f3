//! History endpoints (issue 6): restore an old version as a new one.

use crate::engines;
use crate::support::apply_update;
use crate::support::client::{request, SubscriptionReader};
use crate::support::server::{Engine, TestServer};

async fn put(s: &TestServer, path: &str, headers: &[(&str, &str)], body: &str) -> crate::support::Response {
    let r = request(s.addr, "PUT", path, headers, body.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r
}

async fn restore(s: &TestServer, path: &str, body: &str) -> crate::support::Response {
    request(s.addr, "POST", &format!("/.plait/restore{path}"), &[("Content-Type", "application/json")], body.as_bytes())
        .await
}

async fn text(s: &TestServer, path: &str, headers: &[(&str, &str)]) -> String {
    request(s.addr, "GET", path, headers, b"").await.text()
}

engines!(restore_makes_a_new_version_with_the_old_text, |engine: Engine| async move {
    let s = TestServer::start(engine).await;
    put(&s, "/r/doc", &[("Version", "\"alice-4\""), ("Parents", "")], "hello").await;
    put(
        &s,
        "/r/doc",
        &[("Version", "\"bob-5\""), ("Parents", "\"alice-4\""), ("Content-Range", "text [5:5]")],
        " world",
    )
    .await;
    let mut watcher = SubscriptionReader::open(s.addr, "/r/doc", &[]).await;
    let mut seen = apply_update("", &watcher.next().await);
    assert_eq!(seen, "hello world");

    let r = restore(&s, "/r/doc", r#"{"version": ["alice-4"]}"#).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["restored"], serde_json::json!(["alice-4"]));
    assert_eq!(body["changed"], true);
    let new_version = r.header("version").unwrap().to_string();
    assert_ne!(new_version, "\"bob-5\"");
    let get = request(s.addr, "GET", "/r/doc", &[], b"").await;
    assert_eq!(get.text(), "hello");
    assert_eq!(get.header("version"), Some(new_version.as_str()), "a new version, child of the current one");

    // Nothing was rewritten: every old version still reads as before.
    assert_eq!(text(&s, "/r/doc", &[("Version", "\"alice-4\"")]).await, "hello");
    assert_eq!(text(&s, "/r/doc", &[("Version", "\"bob-5\"")]).await, "hello world");
    // Subscribers saw an ordinary update.
    seen = apply_update(&seen, &watcher.next().await);
    assert_eq!(seen, "hello");

    // An editor still on bob-5 merges with the restore like with any other edit.
    put(&s, "/r/doc", &[("Version", "\"carol-0\""), ("Parents", "\"bob-5\""), ("Content-Range", "text [11:11]")], "!")
        .await;
    assert_eq!(text(&s, "/r/doc", &[]).await, "hello!");

    // Restoring the current text changes nothing.
    let r = restore(&s, "/r/doc", &format!(r#"{{"version": [{}]}}"#, get.header("version").unwrap())).await;
    assert_eq!(r.status, 200, "{}", r.text());
    s.stop().await;
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_bad_requests_clearly() {
    let s = TestServer::start(Engine::Memory).await;
    put(&s, "/r/e", &[("Version", "\"alice-4\""), ("Parents", "")], "hello").await;
    for (body, code) in [
        ("not json", "bad_json"),
        (r#"{"version": "alice-4"}"#, "bad_json"),
        (r#"{"versions": ["alice-4"]}"#, "bad_json"),
        (r#"{"version": ["alice-4"], "extra": 1}"#, "bad_json"),
        (r#"{"version": ["nobody"]}"#, "invalid_event_id"),
    ] {
        let r = restore(&s, "/r/e", body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_eq!(r.json()["error"], code, "{body}");
    }
    let r = restore(&s, "/r/e", r#"{"version": ["zed-9"]}"#).await;
    assert_eq!(r.status, 309, "{}", r.text());
    let r = request(s.addr, "GET", "/.plait/restore/r/e", &[], b"").await;
    assert_eq!(r.status, 405);
    let r = restore(&s, "/r/%2e%2e/e", r#"{"version": ["alice-4"]}"#).await;
    assert_eq!(r.json()["error"], "bad_path");
    assert_eq!(text(&s, "/r/e", &[]).await, "hello", "nothing changed");
    s.stop().await;
}

engines!(diff_gives_patches_and_a_unified_diff_between_versions, |engine: Engine| async move {
    use plait::protocol::{parse_patches, Patch};
    let s = TestServer::start(engine).await;
    let v1 = "one\ntwo 😀\nthree\n";
    put(&s, "/d/doc", &[("Version", &format!("\"a-{}\"", v1.chars().count() - 1)), ("Parents", "")], v1).await;
    let first = request(s.addr, "GET", "/d/doc", &[], b"").await.header("version").unwrap().to_string();
    put(&s, "/d/doc", &[("Content-Range", "text [4:7]")], "2").await; // "two" -> "2"
    put(&s, "/d/doc", &[("Content-Range", "text [-0:-0]")], "four\n").await;
    let now = request(s.addr, "GET", "/d/doc", &[], b"").await;
    let v2 = now.text();
    let from = first.replace('"', "%22").replace(' ', "%20");

    // Braid patch form: applying the patches to the text at `from` gives the text at `to`.
    let r = request(s.addr, "GET", &format!("/.plait/diff/d/doc?from={from}"), &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("parents"), Some(first.as_str()));
    assert_eq!(r.header("version"), now.header("version"));
    let n: usize = r.header("patches").unwrap().parse().unwrap();
    let patches: Vec<Patch> = parse_patches(&r.body, n).unwrap();
    assert_eq!(n, 2, "{patches:?}");
    let mut text: Vec<char> = v1.chars().collect();
    for p in patches.iter().rev() {
        let (a, b) = p.range.resolve(text.len() as u64).unwrap();
        text.splice(a as usize..b as usize, p.content.chars());
    }
    assert_eq!(text.into_iter().collect::<String>(), v2);
    // The same body is a valid PUT: replayed onto the old version elsewhere, it converges.
    put(&s, "/d/copy", &[("Version", &format!("\"a-{}\"", v1.chars().count() - 1)), ("Parents", "")], v1).await;
    let body = String::from_utf8(r.body.clone()).unwrap();
    put(&s, "/d/copy", &[("Parents", first.as_str()), ("Patches", &n.to_string())], &body).await;
    assert_eq!(text_of(&s, "/d/copy").await, v2);

    // Unified diff for people.
    let r = request(s.addr, "GET", &format!("/.plait/diff/d/doc?from={from}"), &[("Accept", "text/x-diff")], b"").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/x-diff"));
    let d = r.text();
    assert!(d.contains("\n-two 😀\n+2 😀\n") && d.contains("\n+four\n"), "{d}");

    // From the empty document (the default) and between equal versions.
    let r = request(s.addr, "GET", "/.plait/diff/d/doc", &[], b"").await;
    assert_eq!(parse_patches(&r.body, 1).unwrap()[0].content, v2);
    let r = request(s.addr, "GET", &format!("/.plait/diff/d/doc?from={from}&to={from}"), &[], b"").await;
    assert_eq!(r.header("patches"), Some("0"));
    // Errors.
    let r = request(s.addr, "GET", "/.plait/diff/d/doc?from=zed-9", &[], b"").await;
    assert_eq!(r.status, 309);
    for q in ["from=%zz", "since=a-1", "from=%22open"] {
        let r = request(s.addr, "GET", &format!("/.plait/diff/d/doc?{q}"), &[], b"").await;
        assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("bad_query")), "{q}");
    }
    s.stop().await;
});

async fn text_of(s: &TestServer, path: &str) -> String {
    text(s, path, &[]).await
}
