//! Reads and writes over real HTTP, numbered exactly as braid-text numbers them
//! (the braid-text transcripts `tNN` listed in `spec/WIRE.md` §7; "Transcript NN" below is `tNN`).

use crate::engines;
use crate::support::client::request;
use crate::support::server::{Engine, TestServer};

async fn put(s: &TestServer, path: &str, headers: &[(&str, &str)], body: &str) -> crate::support::Response {
    request(s.addr, "PUT", path, headers, body.as_bytes()).await
}

async fn get(s: &TestServer, path: &str, headers: &[(&str, &str)]) -> crate::support::Response {
    request(s.addr, "GET", path, headers, b"").await
}

engines!(put_snapshot_then_get, |engine: Engine| async move {
    let s = TestServer::start(engine).await;
    let r = put(&s, "/doc", &[("Version", "\"alice-4\""), ("Parents", "")], "hello").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("version"), Some("\"alice-4\""));
    let r = get(&s, "/doc", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "hello");
    assert_eq!(r.header("version"), Some("\"alice-4\""));
    assert_eq!(r.header("current-version"), Some("\"alice-4\""));
    assert_eq!(r.header("merge-type"), Some("simpleton"));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("repr-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("accept-subscribe"), Some("true"));
    assert_eq!(r.header("repr-digest"), Some("sha-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=:"));
    assert!(r
        .headers_named("vary")
        .iter()
        .any(|v| v.contains("Version") && v.contains("Parents") && v.contains("Subscribe")));
    s.stop().await;
});

engines!(range_patch_multi_patch_and_old_versions, |engine: Engine| async move {
    let s = TestServer::start(engine).await;
    put(&s, "/d", &[("Version", "\"alice-4\""), ("Parents", "")], "hello").await;
    // Transcript 04: one range patch.
    let r = put(
        &s,
        "/d",
        &[("Version", "\"bob-5\""), ("Parents", "\"alice-4\""), ("Content-Range", "text [5:5]")],
        " world",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(&s, "/d", &[]).await.text(), "hello world");
    // Transcript 05 on a second document: two patches, ranges against the parent text.
    put(&s, "/e", &[("Version", "\"alice-4\""), ("Parents", "")], "hello").await;
    let body = "Content-Length: 1\r\nContent-Range: text [0:1]\r\n\r\nH\r\n\r\nContent-Length: 1\r\nContent-Range: text [5:5]\r\n\r\n!";
    let r = put(&s, "/e", &[("Version", "\"bob-2\""), ("Parents", "\"alice-4\""), ("Patches", "2")], body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(&s, "/e", &[]).await.text(), "Hello!");
    // bob-0 deleted "h", bob-1 inserted "H", bob-2 inserted "!".
    assert_eq!(get(&s, "/e", &[("Version", "\"bob-0\"")]).await.text(), "ello");
    assert_eq!(get(&s, "/e", &[("Version", "\"bob-1\"")]).await.text(), "Hello");
    let r = get(&s, "/e", &[("Version", "\"bob-1\"")]).await;
    assert_eq!(r.header("version"), Some("\"bob-1\""));
    assert_eq!(r.header("current-version"), Some("\"bob-2\""));
    // The same count, as Content-Type: application/http-patches; count=N.
    let body = "Content-Length: 1\r\nContent-Range: text [6:6]\r\n\r\n?";
    let r = put(
        &s,
        "/e",
        &[("Version", "\"carl-0\""), ("Parents", "\"bob-2\""), ("Content-Type", "application/http-patches; count=1")],
        body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(&s, "/e", &[]).await.text(), "Hello!?");
    s.stop().await;
});

engines!(unicode_ranges_are_code_points_and_ids_are_escaped, |engine: Engine| async move {
    let s = TestServer::start(engine).await;
    put(&s, "/u", &[("Version", "\"v-2\""), ("Parents", "")], "a😀b").await;
    // Transcript 08: é inserted at code point 2 (after the emoji).
    let r =
        put(&s, "/u", &[("Version", "\"w-0\""), ("Parents", "\"v-2\""), ("Content-Range", "text [2:2]")], "é").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(&s, "/u", &[]).await.text(), "a😀éb");
    // An agent with an emoji travels as \uXXXX surrogate escapes, ASCII only.
    let r = put(
        &s,
        "/u",
        &[("Version", "\"y\\ud83d\\ude00-0\""), ("Parents", "\"w-0\""), ("Content-Range", "text [0:0]")],
        "Z",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("version"), Some("\"y\\ud83d\\ude00-0\""));
    s.stop().await;
});

engines!(concurrent_merge_and_idempotent_retries, |engine: Engine| async move {
    let s = TestServer::start(engine).await;
    put(&s, "/m", &[("Version", "\"a-4\""), ("Parents", "")], "hello").await;
    // Transcript 20: two concurrent inserts from a-4.
    put(&s, "/m", &[("Version", "\"x-0\""), ("Parents", "\"a-4\""), ("Content-Range", "text [0:0]")], "[").await;
    let r =
        put(&s, "/m", &[("Version", "\"y-0\""), ("Parents", "\"a-4\""), ("Content-Range", "text [5:5]")], "]").await;
    assert_eq!(r.header("version"), Some("\"x-0\", \"y-0\""));
    assert_eq!(get(&s, "/m", &[]).await.text(), "[hello]");
    // Transcript 21: a retried known version changes nothing and is 200.
    let r =
        put(&s, "/m", &[("Version", "\"y-0\""), ("Parents", "\"a-4\""), ("Content-Range", "text [5:5]")], "]").await;
    assert_eq!(r.status, 200);
    assert_eq!(get(&s, "/m", &[]).await.text(), "[hello]");
    // Transcript 25: bob-0 is known, so of the run bob-0..bob-2 only the tail applies
    // (the delete that bob-0 names is taken to be the known bob-0).
    put(&s, "/p", &[("Version", "\"alice-4\""), ("Parents", "")], "hello").await;
    put(&s, "/p", &[("Version", "\"bob-0\""), ("Parents", "\"alice-4\""), ("Content-Range", "text [5:5]")], "!").await;
    let body = "Content-Length: 1\r\nContent-Range: text [0:1]\r\n\r\nH\r\n\r\nContent-Length: 1\r\nContent-Range: text [6:6]\r\n\r\n?";
    let r = put(&s, "/p", &[("Version", "\"bob-2\""), ("Parents", "\"bob-0\""), ("Patches", "2")], body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("version"), Some("\"bob-2\""));
    let r = get(&s, "/p", &[]).await;
    assert_eq!(r.text(), "Hhello?!");
    assert_eq!(r.header("repr-digest"), Some("sha-256=:0LWUxXcFebtkU2ZRKwe7iKyrC5dK6agowjxpApq9r8I=:"));
    s.stop().await;
});

engines!(backward_delete_numbering_and_seq_too_low, |engine: Engine| async move {
    let s = TestServer::start(engine).await;
    put(&s, "/b", &[("Version", "\"a-4\""), ("Parents", "")], "hello").await;
    // Transcript 24/40: a snapshot replaces the whole parent text: 5 deletes + 3 inserts.
    let r = put(&s, "/b", &[("Version", "\"b-2\""), ("Parents", "\"a-4\"")], "bye").await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"], "seq_too_low");
    let r = put(&s, "/b", &[("Version", "\"b-7\""), ("Parents", "\"a-4\"")], "bye").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(&s, "/b", &[]).await.text(), "bye");
    for (v, text) in [("b-0", "hell"), ("b-1", "hel"), ("b-4", ""), ("b-5", "b")] {
        assert_eq!(get(&s, "/b", &[("Version", &format!("\"{v}\""))]).await.text(), text, "at {v}");
    }
    s.stop().await;
});

engines!(negative_ranges_append, |engine: Engine| async move {
    let s = TestServer::start(engine).await;
    put(&s, "/n", &[("Version", "\"a-4\""), ("Parents", "")], "hello").await;
    let r =
        put(&s, "/n", &[("Version", "\"b-0\""), ("Parents", "\"a-4\""), ("Content-Range", "text [-0:-0]")], "!").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(&s, "/n", &[]).await.text(), "hello!");
    s.stop().await;
});

engines!(plain_put_without_braid_headers_replaces_text, |engine: Engine| async move {
    let s = TestServer::start(engine).await;
    let r = put(&s, "/plain", &[], "first draft").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v1 = r.header("version").unwrap().to_string();
    let r = put(&s, "/plain", &[], "first version").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_ne!(r.header("version").unwrap(), v1);
    let r = get(&s, "/plain", &[]).await;
    assert_eq!(r.text(), "first version");
    // The previous version is still there.
    assert_eq!(get(&s, "/plain", &[("Version", &v1)]).await.text(), "first draft");
    // Two PUTs from one peer never collide: the server numbers after the agent's last event.
    let r1 = put(&s, "/peer", &[("Peer", "carol")], "one").await;
    let r2 = put(&s, "/peer", &[("Peer", "carol")], "one two").await;
    assert_eq!(r1.header("version"), Some("\"carol-2\""));
    assert_eq!(r2.header("version"), Some("\"carol-6\""));
    assert_eq!(get(&s, "/peer", &[]).await.text(), "one two");
    s.stop().await;
});

engines!(get_with_parents_returns_history_or_snapshot, |engine: Engine| async move {
    let s = TestServer::start(engine).await;
    put(&s, "/h", &[("Version", "\"alice-4\""), ("Parents", "")], "hello").await;
    put(&s, "/h", &[("Version", "\"bob-5\""), ("Parents", "\"alice-4\""), ("Content-Range", "text [5:5]")], " world")
        .await;
    put(&s, "/h", &[("Version", "\"carol-0\""), ("Parents", "\"bob-5\""), ("Content-Range", "text [0:1]")], "").await;
    // Transcript 11: the updates since alice-4, in original coordinates.
    let r = get(&s, "/h", &[("Parents", "\"alice-4\"")]).await;
    assert_eq!(r.status, 209);
    assert_eq!(r.reason, "Multiresponse");
    assert_eq!(r.header("content-type"), Some("application/http-history"));
    let mut d = plait::protocol::Decoder::new();
    d.push(&r.body);
    let u1 = d.next_update().unwrap().unwrap();
    let u2 = d.next_update().unwrap().unwrap();
    assert!(d.next_update().unwrap().is_none());
    assert_eq!(u1.version.unwrap().to_header(), "\"bob-5\"");
    assert_eq!(u1.parents.unwrap().to_header(), "\"alice-4\"");
    assert_eq!(u2.version.unwrap().to_header(), "\"carol-0\"");
    assert_eq!(u2.parents.unwrap().to_header(), "\"bob-5\"");
    // Already current: a plain snapshot.
    let r = get(&s, "/h", &[("Parents", "\"carol-0\"")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "ello world");
    // Parents and Version together: the range between them.
    let r = get(&s, "/h", &[("Parents", "\"alice-4\""), ("Version", "\"bob-5\"")]).await;
    assert_eq!(r.status, 209);
    let mut d = plait::protocol::Decoder::new();
    d.push(&r.body);
    assert_eq!(d.next_update().unwrap().unwrap().version.unwrap().to_header(), "\"bob-5\"");
    assert!(d.next_update().unwrap().is_none());
    s.stop().await;
});

engines!(unknown_versions_get_309_and_head_matches_get, |engine: Engine| async move {
    let s = TestServer::start_with(engine, |c| c.parents_wait_ms = 200).await;
    put(&s, "/v", &[("Version", "\"a-4\""), ("Parents", "")], "hello").await;
    let r = get(&s, "/v", &[("Version", "\"zz-9\"")]).await;
    assert_eq!(r.status, 309);
    assert_eq!(r.reason, "Version Unknown Here");
    assert_eq!(r.header("version"), Some("\"zz-9\""));
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.json()["error"], "version_unknown");
    let r = get(&s, "/v", &[("Parents", "\"a-9\"")]).await;
    assert_eq!(r.status, 309);
    // A write whose parents never arrive: waits (briefly, here 200 ms), then 309.
    let started = std::time::Instant::now();
    let r = put(&s, "/v", &[("Version", "\"b-0\""), ("Parents", "\"ghost-3\""), ("Content-Range", "text [0:0]")], "x")
        .await;
    assert_eq!(r.status, 309, "{}", r.text());
    assert!(started.elapsed() >= std::time::Duration::from_millis(200));
    assert_eq!(r.header("version"), Some("\"ghost-3\""));
    // HEAD carries the same headers as GET, without a body.
    let g = get(&s, "/v", &[]).await;
    let h = request(s.addr, "HEAD", "/v", &[], b"").await;
    assert_eq!(h.status, 200);
    for name in [
        "version",
        "current-version",
        "merge-type",
        "repr-type",
        "content-type",
        "accept-subscribe",
        "repr-digest",
        "content-length",
    ] {
        assert_eq!(h.header(name), g.header(name), "header {name}");
    }
    assert!(h.body.is_empty());
    s.stop().await;
});

engines!(writes_wait_for_parents_that_arrive, |engine: Engine| async move {
    let s = TestServer::start(engine).await;
    put(&s, "/w", &[("Version", "\"a-4\""), ("Parents", "")], "hello").await;
    // The child arrives first; its parent follows: the child waits, then both apply.
    let addr = s.addr;
    let child = tokio::spawn(async move {
        request(
            addr,
            "PUT",
            "/w",
            &[("Version", "\"c-0\""), ("Parents", "\"b-0\""), ("Content-Range", "text [6:6]")],
            b"!",
        )
        .await
    });
    // Wait (bounded) until the server reports the child parked, then send the parent.
    let mut parked = false;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let h = request(s.addr, "GET", "/.plait/health", &[], b"").await.json();
        if h["parked_writes"] == 1 {
            parked = true;
            break;
        }
    }
    assert!(parked, "the child write was never parked");
    let r =
        put(&s, "/w", &[("Version", "\"b-0\""), ("Parents", "\"a-4\""), ("Content-Range", "text [5:5]")], "?").await;
    assert_eq!(r.status, 200);
    let r = child.await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(&s, "/w", &[]).await.text(), "hello?!");
    s.stop().await;
});

engines!(bad_requests_are_clear_4xx, |engine: Engine| async move {
    let s = TestServer::start(engine).await;
    put(&s, "/x", &[("Version", "\"a-4\""), ("Parents", "")], "hello").await;
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("GET", vec![("Version", "alice-4")], "", 400, "bad_version_header"),
        ("PUT", vec![("Version", "\"b-0\""), ("Parents", "garbage")], "x", 400, "bad_version_header"),
        ("PUT", vec![("Version", "\"b-0\", \"c-0\""), ("Parents", "\"a-4\"")], "x", 400, "multiple_version_ids"),
        (
            "PUT",
            vec![("Version", "\"b-0\""), ("Parents", "\"a-4\""), ("Content-Range", "bytes [0:1]")],
            "x",
            400,
            "unsupported_range_unit",
        ),
        (
            "PUT",
            vec![("Version", "\"b-0\""), ("Parents", "\"a-4\""), ("Content-Range", "text [3:1]")],
            "",
            400,
            "bad_content_range",
        ),
        (
            "PUT",
            vec![("Version", "\"b-0\""), ("Parents", "\"a-4\""), ("Content-Range", "text [-1:2]")],
            "",
            400,
            "range_reversed",
        ),
        (
            "PUT",
            vec![("Version", "\"b-0\""), ("Parents", "\"a-4\""), ("Content-Range", "text [0:99]")],
            "",
            400,
            "range_out_of_bounds",
        ),
        (
            "PUT",
            vec![("Version", "\"b-0\""), ("Parents", "\"a-4\""), ("Content-Range", "text [zz]")],
            "",
            400,
            "bad_content_range",
        ),
        (
            "PUT",
            vec![("Version", "\"b-0\""), ("Parents", "\"a-4\""), ("Content-Range", "json .a")],
            "1",
            400,
            "unsupported_range_unit",
        ),
        ("GET", vec![("Subscribe", "true"), ("Version", "\"a-4\"")], "", 400, "version_with_subscribe"),
        ("GET", vec![("Merge-Type", "sync9")], "", 400, "unknown_merge_type"),
        (
            "PUT",
            vec![("Version", "\"ROOT-0\""), ("Parents", "\"a-4\""), ("Content-Range", "text [0:0]")],
            "x",
            400,
            "invalid_agent",
        ),
    ];
    for (method, headers, body, status, code) in cases {
        let r = request(s.addr, method, "/x", &headers, body.as_bytes()).await;
        assert_eq!(r.status, status, "{method} {headers:?}: {}", r.text());
        assert_eq!(r.json()["error"], code, "{method} {headers:?}");
        assert!(r.json()["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // A Patches count that lies, and a patch without Content-Length (braid-text exits).
    let r = put(
        &s,
        "/x",
        &[("Version", "\"b-0\""), ("Parents", "\"a-4\""), ("Patches", "2")],
        "Content-Length: 1\r\nContent-Range: text [0:0]\r\n\r\nA",
    )
    .await;
    assert_eq!(r.status, 400);
    let r = put(
        &s,
        "/x",
        &[("Version", "\"b-0\""), ("Parents", "\"a-4\""), ("Patches", "1")],
        "Content-Range: text [0:0]\r\n\r\nA",
    )
    .await;
    assert_eq!(r.status, 400);
    // Nothing above changed the document.
    let r = get(&s, "/x", &[]).await;
    assert_eq!((r.text().as_str(), r.header("version")), ("hello", Some("\"a-4\"")));
    s.stop().await;
});

engines!(delete_removes_document_and_history, |engine: Engine| async move {
    let s = TestServer::start(engine).await;
    put(&s, "/gone", &[("Version", "\"a-4\""), ("Parents", "")], "hello").await;
    let r = request(s.addr, "DELETE", "/gone", &[], b"").await;
    assert_eq!(r.status, 200);
    let r = get(&s, "/gone", &[]).await;
    assert_eq!((r.text().as_str(), r.header("version")), ("", Some("")));
    assert_eq!(get(&s, "/gone", &[("Version", "\"a-4\"")]).await.status, 309);
    // The same ids can be used again on the new, empty document.
    let r = put(&s, "/gone", &[("Version", "\"a-1\""), ("Parents", "")], "hi").await;
    assert_eq!(r.status, 200);
    assert_eq!(get(&s, "/gone", &[]).await.text(), "hi");
    s.stop().await;
});

engines!(etag_is_the_version_and_conditional_gets_get_304, |engine: Engine| async move {
    use crate::support::client::SubscriptionReader;
    let s = TestServer::start(engine).await;
    put(&s, "/c", &[("Version", "\"alice-4\""), ("Parents", "")], "hello").await;
    let r = get(&s, "/c", &[]).await;
    assert_eq!(r.status, 200);
    let tag = r.header("etag").expect("GET carries an ETag").to_string();
    assert!(tag.starts_with('"') && tag.ends_with('"') && !tag[1..tag.len() - 1].contains('"'), "{tag}");
    assert_eq!(r.header("cache-control"), Some("no-cache"), "the current text must be revalidated");

    // The same version: 304, no body, the validators repeated.
    for inm in [tag.clone(), format!("W/{tag}"), format!("\"nope\", {tag}"), "*".to_string()] {
        let r = get(&s, "/c", &[("If-None-Match", &inm)]).await;
        assert_eq!(r.status, 304, "If-None-Match: {inm}");
        assert!(r.body.is_empty());
        assert_eq!(r.header("etag"), Some(tag.as_str()));
        assert_eq!(r.header("version"), Some("\"alice-4\""));
    }
    let r = request(s.addr, "HEAD", "/c", &[("If-None-Match", &tag)], b"").await;
    assert_eq!(r.status, 304);
    assert_eq!(get(&s, "/c", &[("If-None-Match", "\"nope\"")]).await.status, 200);

    // A new version: a new tag, and the old one no longer matches.
    put(&s, "/c", &[("Version", "\"bob-0\""), ("Parents", "\"alice-4\""), ("Content-Range", "text [5:5]")], "!").await;
    let r = get(&s, "/c", &[("If-None-Match", &tag)]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "hello!");
    let new_tag = r.header("etag").unwrap().to_string();
    assert_ne!(new_tag, tag);

    // A named Version is immutable, and tagged like the current text was at that version.
    let r = get(&s, "/c", &[("Version", "\"alice-4\"")]).await;
    assert_eq!(r.text(), "hello");
    assert_eq!(r.header("etag"), Some(tag.as_str()));
    let cc = r.header("cache-control").unwrap_or_default();
    assert!(cc.contains("immutable") && cc.contains("max-age="), "{cc}");
    assert_eq!(get(&s, "/c", &[("Version", "\"alice-4\""), ("If-None-Match", &tag)]).await.status, 304);

    // Subscriptions and history ranges are never cacheable and carry no tag.
    let sub = SubscriptionReader::open(s.addr, "/c", &[]).await;
    assert_eq!(sub.head.status, 209);
    assert_eq!(sub.head.header("etag"), None);
    assert!(sub.head.header("cache-control").unwrap_or_default().contains("no-store"));
    let r = get(&s, "/c", &[("Parents", "\"alice-4\""), ("Merge-Type", "dt")]).await;
    assert_eq!(r.header("etag"), None);
    s.stop().await;
});

engines!(a_put_whose_repr_digest_mismatches_gets_550_and_changes_nothing, |engine: Engine| async move {
    use plait::protocol::repr_digest;
    let s = TestServer::start(engine).await;
    put(&s, "/dg", &[("Version", "\"alice-4\""), ("Parents", "")], "hello").await;
    // The right digest of the resulting text: accepted.
    let good = repr_digest("hello world");
    let h = [("Version", "\"bob-5\""), ("Parents", "\"alice-4\""), ("Content-Range", "text [5:5]")];
    let r = put(&s, "/dg", &[h[0], h[1], h[2], ("Repr-Digest", &good)], " world").await;
    assert_eq!(r.status, 200, "{}", r.text());
    // A wrong one: 550 with a JSON error, and nothing was applied.
    let bad = repr_digest("something else");
    let h = [("Version", "\"carol-0\""), ("Parents", "\"bob-5\""), ("Content-Range", "text [0:0]")];
    let r = put(&s, "/dg", &[h[0], h[1], h[2], ("Repr-Digest", &bad)], ">").await;
    assert_eq!(r.status, 550, "{}", r.text());
    assert_eq!(r.json()["error"], "repr_digest_mismatch");
    assert!(r.json()["message"].as_str().unwrap_or_default().contains("sha-256"));
    let now = get(&s, "/dg", &[]).await;
    assert_eq!(now.text(), "hello world");
    assert_eq!(now.header("version"), Some("\"bob-5\""));
    // The same edit with the right digest then goes through (carol-0 was never added).
    let r = put(&s, "/dg", &[h[0], h[1], h[2], ("Repr-Digest", &repr_digest(">hello world"))], ">").await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Digests in other algorithms only are ignored (RFC 9530), and so is a merge: the client
    // cannot know the merged text, so braid-text does not check it either.
    let r = put(&s, "/dg", &[("Content-Range", "text [0:0]"), ("Repr-Digest", "sha-512=:AAAA:")], "1").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let h = [("Version", "\"dave-0\""), ("Parents", "\"bob-5\""), ("Content-Range", "text [0:0]")];
    let r = put(&s, "/dg", &[h[0], h[1], h[2], ("Repr-Digest", &bad)], "#").await;
    assert_eq!(r.status, 200, "a concurrent edit is merged, not checked: {}", r.text());
    s.stop().await;
});
