//! File history, restore, storage figures, the delta exchange driven by a test client that
//! chunks like the server (the `plait::chunks` chunker), its refusals (lying chunk lists, wrong
//! ids, oversize chunks), per-tenant "missing" answers, and the collector under writes.

use base64::Engine as _;
use plait::chunks::{chunker::chunk_all, ChunkId, ChunkParams};
use serde_json::{json, Value};
use sha2::Digest;

use crate::auth::{create_token, token_server, with_token, ADMIN};
use crate::support::client::{request, Response};
use crate::support::server::{Engine, TestServer};

fn digest(bytes: &[u8]) -> String {
    format!("sha-256=:{}:", base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes)))
}

/// `len` pseudo-random bytes from `seed`.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A delta client: cuts `bytes` as the server does, sends only the missing chunks, commits.
/// Returns the commit's response and the chunks it sent.
async fn delta_put(s: &TestServer, auth: &[(&str, &str)], path: &str, bytes: &[u8]) -> (Response, Vec<usize>) {
    let overview = request(s.addr, "GET", "/.plait/chunks", auth, b"").await.json();
    let p = &overview["chunking"];
    let n = |k: &str| p[k].as_u64().unwrap() as usize;
    let params = ChunkParams::new(n("min"), n("avg"), n("max")).unwrap();
    let (chunks, _) = chunk_all(params, bytes);
    let ids: Vec<String> = chunks.iter().map(|c| c.id.to_string()).collect();
    let ask = json!({ "chunks": ids }).to_string();
    let missing = request(s.addr, "POST", &format!("/.plait/missing{path}"), auth, ask.as_bytes()).await;
    assert_eq!(missing.status, 200, "{}", missing.text());
    let missing: Vec<String> = serde_json::from_value(missing.json()["missing"].clone()).unwrap();
    let mut sent = Vec::new();
    for c in chunks.iter().filter(|c| missing.contains(&c.id.to_string())) {
        let url = format!("/.plait/chunk{path}?id={}", c.id);
        let r = request(s.addr, "PUT", &url, auth, &c.data).await;
        assert_eq!(r.status, 200, "{}", r.text());
        sent.push(c.data.len());
    }
    let list: Vec<Value> = chunks.iter().map(|c| json!({ "id": c.id.to_string(), "len": c.data.len() })).collect();
    let d = digest(bytes);
    let mut headers = auth.to_vec();
    headers.push(("Repr-Digest", &d));
    headers.push(("Content-Type", "application/octet-stream"));
    let body = json!({ "chunks": list }).to_string();
    (request(s.addr, "POST", &format!("/.plait/commit{path}"), &headers, body.as_bytes()).await, sent)
}

/// The server's `received_chunk_bytes` and `received_body_bytes` since its start.
async fn received(s: &TestServer) -> (u64, u64) {
    let o = request(s.addr, "GET", "/.plait/chunks", &[], b"").await.json();
    (o["received_chunk_bytes"].as_u64().unwrap(), o["received_body_bytes"].as_u64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_in_the_middle_sends_about_one_chunk_and_storage_stays_near_one_copy() {
    let s = TestServer::start(Engine::Rocks).await;
    let mut file = noise(1, 24 << 20);
    let (first, sent) = delta_put(&s, &[], "/big.bin", &file).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(sent.iter().sum::<usize>(), file.len(), "the first version sends everything");
    assert_eq!(received(&s).await, (file.len() as u64, 0), "the chunks' bytes are counted, not the lists");
    // 1 MiB changed in the middle.
    let mid = file.len() / 2;
    file[mid..mid + (1 << 20)].copy_from_slice(&noise(2, 1 << 20));
    let (second, sent) = delta_put(&s, &[], "/big.bin", &file).await;
    assert_eq!(second.status, 200, "{}", second.text());
    // The changed MiB lies in one to three chunks (1 MiB on average, 4 MiB at most).
    assert!((1..=3).contains(&sent.len()), "a 1 MiB change sent {} chunks: {sent:?}", sent.len());
    assert!(sent.iter().sum::<usize>() >= 1 << 20, "it must send the changed bytes ({sent:?})");
    let after_delta = (file.len() + sent.iter().sum::<usize>()) as u64;
    assert_eq!(received(&s).await, (after_delta, 0), "the server counted exactly the chunks sent");
    let g = request(s.addr, "GET", "/big.bin", &[], b"").await;
    assert!(g.body == file, "the committed version reads back exactly");
    // Plain PUTs (curl, braidfs) dedupe in storage too.
    let put = request(s.addr, "PUT", "/copy.bin", &[("Content-Type", "application/octet-stream")], &file).await;
    assert!(put.ok());
    assert_eq!(received(&s).await, (after_delta, file.len() as u64), "a plain PUT counts as body bytes");
    let h = request(s.addr, "GET", "/.plait/history/big.bin", &[], b"").await.json();
    assert_eq!(h["kind"], "file");
    assert_eq!(h["versions"].as_array().unwrap().len(), 2);
    assert_eq!(h["versions"][0]["size"], json!(file.len()));
    let logical = h["logical_bytes"].as_u64().unwrap();
    let stored = h["stored_bytes"].as_u64().unwrap();
    assert_eq!(logical, 2 * file.len() as u64);
    assert!(stored < logical * 3 / 5, "two versions share chunks: stored {stored} of {logical}");
    let all = request(s.addr, "GET", "/.plait/chunks", &[], b"").await.json();
    assert!(all["dedupe_ratio"].as_f64().unwrap() > 2.0, "three 24 MiB versions in about one copy: {all}");
    // The chunk list of a version, as a client fetches it before editing.
    let list = request(s.addr, "GET", "/.plait/chunks-of/big.bin", &[], b"").await.json();
    let total: u64 = list["chunks"].as_array().unwrap().iter().map(|c| c["len"].as_u64().unwrap()).sum();
    assert_eq!(total, file.len() as u64);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_chunk_lists_and_bad_chunks_are_refused_and_store_nothing() {
    let s = TestServer::start(Engine::Memory).await;
    let data = noise(3, 300_000);
    let id = ChunkId::of(&data).to_string();
    let code = |r: &Response| (r.status, r.header("plait-error").map(str::to_string));
    // A chunk whose bytes are not its id; an oversize chunk; a bad id.
    let r = request(s.addr, "PUT", &format!("/.plait/chunk/x.bin?id={}", ChunkId::of(b"other")), &[], &data).await;
    assert_eq!(code(&r), (400, Some("chunk_id_mismatch".into())));
    let big = vec![1u8; (4 << 20) + 1];
    let r = request(s.addr, "PUT", &format!("/.plait/chunk/x.bin?id={}", ChunkId::of(&big)), &[], &big).await;
    assert_eq!(code(&r), (413, Some("chunk_too_large".into())));
    let r = request(s.addr, "PUT", "/.plait/chunk/x.bin?id=zz", &[], &data).await;
    assert_eq!(code(&r), (400, Some("bad_chunk_list".into())));
    // A commit naming a chunk never uploaded: 409 with the list.
    let list = json!({ "chunks": [{ "id": id, "len": data.len() }] }).to_string();
    let d = digest(&data);
    let r = request(s.addr, "POST", "/.plait/commit/x.bin", &[("Repr-Digest", &d)], list.as_bytes()).await;
    assert_eq!(code(&r), (409, Some("chunks_missing".into())));
    assert_eq!(r.json()["missing"], json!([id]));
    // Upload it; then a wrong length, a wrong digest, no digest, malformed JSON.
    assert!(request(s.addr, "PUT", &format!("/.plait/chunk/x.bin?id={id}"), &[], &data).await.ok());
    let wrong_len = json!({ "chunks": [{ "id": id, "len": 5 }] }).to_string();
    let r = request(s.addr, "POST", "/.plait/commit/x.bin", &[("Repr-Digest", &d)], wrong_len.as_bytes()).await;
    assert_eq!(code(&r), (400, Some("bad_chunk_list".into())));
    let r = request(s.addr, "POST", "/.plait/commit/x.bin", &[("Repr-Digest", &digest(b"no"))], list.as_bytes()).await;
    assert_eq!(code(&r), (400, Some("digest_mismatch".into())));
    let r = request(s.addr, "POST", "/.plait/commit/x.bin", &[], list.as_bytes()).await;
    assert_eq!(code(&r), (400, Some("bad_chunk_list".into())));
    let r = request(s.addr, "POST", "/.plait/commit/x.bin", &[("Repr-Digest", &d)], b"{\"chunks\": 3}").await;
    assert_eq!(code(&r), (400, Some("bad_chunk_list".into())));
    let r = request(s.addr, "GET", "/.plait/chunks-of/x.bin", &[], b"").await;
    assert_eq!(code(&r), (404, Some("not_a_file".into())), "nothing was committed");
    // The honest commit goes in.
    let r = request(s.addr, "POST", "/.plait/commit/x.bin", &[("Repr-Digest", &d)], list.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(request(s.addr, "GET", "/x.bin", &[], b"").await.body, data);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_is_answered_per_tenant_and_chunks_cannot_be_claimed_without_the_bytes() {
    let s = token_server(Engine::Memory, |_| {}).await;
    let alice = create_token(s.addr, ADMIN, "alice", "write", &["/alice/"], None).await;
    let bob = create_token(s.addr, ADMIN, "bob", "write", &["/bob/"], None).await;
    let secret = noise(4, 200_000);
    let r = with_token(s.addr, &alice.token, "PUT", "/alice/secret.bin", &[("Merge-Type", "aww")], &secret).await;
    assert!(r.ok(), "{}", r.text());
    let id = ChunkId::of(&secret).to_string();
    let ask = json!({ "chunks": [id] }).to_string();
    let for_alice =
        with_token(s.addr, &alice.token, "POST", "/.plait/missing/alice/new.bin", &[], ask.as_bytes()).await;
    assert_eq!(for_alice.json()["missing"], json!([]), "alice has it");
    let for_bob = with_token(s.addr, &bob.token, "POST", "/.plait/missing/bob/x.bin", &[], ask.as_bytes()).await;
    assert_eq!(for_bob.json()["missing"], json!([id]), "bob must not learn that alice stored it");
    let list = json!({ "chunks": [{ "id": id, "len": secret.len() }] }).to_string();
    let d = digest(&secret);
    let steal =
        with_token(s.addr, &bob.token, "POST", "/.plait/commit/bob/x.bin", &[("Repr-Digest", &d)], list.as_bytes())
            .await;
    assert_eq!(steal.status, 409, "bob cannot commit a version of chunks he never sent: {}", steal.text());
    let other = with_token(s.addr, &bob.token, "POST", "/.plait/missing/alice/x.bin", &[], ask.as_bytes()).await;
    assert_eq!(other.status, 403, "and cannot ask about alice's paths");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_history_lists_versions_and_restore_reuses_the_old_chunks() {
    let s = TestServer::start(Engine::Memory).await;
    let one = noise(5, 2 << 20);
    let v1 = request(s.addr, "PUT", "/h.bin", &[("Merge-Type", "aww"), ("Peer", "laptop")], &one).await;
    let v1 = v1.header("version").unwrap().to_string();
    assert!(request(s.addr, "PUT", "/h.bin", &[("Content-Type", "image/png")], b"\x89PNG small").await.ok());
    assert!(request(s.addr, "DELETE", "/h.bin", &[], b"").await.ok());
    let h = request(s.addr, "GET", "/.plait/history/h.bin?limit=2", &[], b"").await.json();
    let versions = h["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!((versions[0]["deleted"].clone(), versions[0]["served"].clone()), (json!(true), json!(true)));
    assert_eq!(versions[1]["content_type"], "image/png");
    let next = h["next_url"].as_str().unwrap().to_string();
    let older = request(s.addr, "GET", &next, &[], b"").await.json();
    assert_eq!(older["versions"][0]["version"].as_str().map(|v| format!("\"{v}\"")), Some(v1.clone()));
    assert_eq!(older["versions"][0]["author"], "laptop");
    assert_eq!(older["versions"][0]["size"], json!(one.len()));
    let stored_before = request(s.addr, "GET", "/.plait/chunks", &[], b"").await.json()["stored_bytes"].clone();
    let body = format!("{{\"version\": [{v1}]}}");
    let r = request(s.addr, "POST", "/.plait/restore/h.bin", &[], body.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(request(s.addr, "GET", "/h.bin", &[], b"").await.body, one, "the old bytes are served again");
    let stored_after = request(s.addr, "GET", "/.plait/chunks", &[], b"").await.json()["stored_bytes"].clone();
    assert_eq!(stored_before, stored_after, "a restore copies no chunk");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collection_during_writes_never_loses_a_chunk_of_a_version() {
    let s = TestServer::start(Engine::Rocks).await;
    let addr = s.addr;
    let writers: Vec<_> = (0..4u64)
        .map(|w| {
            tokio::spawn(async move {
                let mut written = Vec::new();
                for i in 0..6u64 {
                    let bytes = noise(w * 100 + i, 400_000 + (i as usize) * 50_000);
                    let path = format!("/gc/{w}-{}.bin", i % 2);
                    let r = request(addr, "PUT", &path, &[("Merge-Type", "aww")], &bytes).await;
                    assert!(r.ok(), "{}", r.text());
                    written.push((path, r.header("version").unwrap().to_string(), bytes));
                }
                written
            })
        })
        .collect();
    // Collect in a loop while they write; erase one resource so there is garbage.
    let collector = tokio::spawn(async move {
        let mut deleted = 0;
        for round in 0..20 {
            if round == 5 {
                assert!(request(addr, "PUT", "/gc/erased.bin", &[("Merge-Type", "aww")], &noise(99, 300_000))
                    .await
                    .ok());
                assert!(request(addr, "DELETE", "/gc/erased.bin?erase", &[], b"").await.ok());
            }
            let r = request(addr, "POST", "/.plait/collect", &[], b"").await;
            assert_eq!(r.status, 200, "{}", r.text());
            deleted += r.json()["deleted"].as_u64().unwrap();
        }
        deleted
    });
    let mut all = Vec::new();
    for w in writers {
        all.extend(w.await.unwrap());
    }
    let deleted = collector.await.unwrap();
    let last = request(addr, "POST", "/.plait/collect", &[], b"").await.json()["deleted"].as_u64().unwrap();
    assert!(deleted + last >= 1, "the erased file's chunk was collected");
    for (path, version, bytes) in all {
        let g = request(addr, "GET", &path, &[("Version", &version)], b"").await;
        assert!(g.status == 200 && g.body == bytes, "{path} {version} lost bytes after collection");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_old_file_versions_then_the_collector_frees_their_chunks() {
    let s = TestServer::start(Engine::Rocks).await;
    let mut versions = Vec::new();
    for i in 0..5u64 {
        let r = request(s.addr, "PUT", "/r.bin", &[("Merge-Type", "aww")], &noise(10 + i, 500_000)).await;
        versions.push(r.header("version").unwrap().to_string());
    }
    let stored = |v: Value| v["stored_bytes"].as_u64().unwrap();
    let before = stored(request(s.addr, "GET", "/.plait/chunks", &[], b"").await.json());
    let r = request(s.addr, "POST", "/.plait/compact/r.bin?versions=2", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["dropped_versions"], 3);
    let h = request(s.addr, "GET", "/.plait/history/r.bin", &[], b"").await.json();
    let kept: Vec<String> =
        h["versions"].as_array().unwrap().iter().map(|v| format!("\"{}\"", v["version"].as_str().unwrap())).collect();
    assert_eq!(kept, vec![versions[4].clone(), versions[3].clone()]);
    assert_eq!(request(s.addr, "GET", "/r.bin", &[("Version", &versions[0])], b"").await.status, 309);
    let collected = request(s.addr, "POST", "/.plait/collect", &[], b"").await.json();
    assert!(collected["deleted"].as_u64().unwrap() >= 3, "{collected}");
    let after = stored(request(s.addr, "GET", "/.plait/chunks", &[], b"").await.json());
    assert!(after < before * 3 / 5, "stored bytes {before} → {after}");
    assert_eq!(request(s.addr, "GET", "/r.bin", &[("Version", &versions[3])], b"").await.body, noise(13, 500_000));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_share_links_work_for_files_as_for_text() {
    let s = token_server(Engine::Memory, |_| {}).await;
    let writer = create_token(s.addr, ADMIN, "w", "write", &["/pics/"], None).await;
    let reader = create_token(s.addr, ADMIN, "r", "read", &["/pics/"], None).await;
    let photo = noise(20, 300_000);
    let r = with_token(s.addr, &writer.token, "PUT", "/pics/a.jpg", &[("Merge-Type", "aww")], &photo).await;
    assert!(r.ok(), "{}", r.text());
    let denied = with_token(s.addr, &reader.token, "PUT", "/pics/a.jpg", &[("Merge-Type", "aww")], b"\0x").await;
    assert_eq!(denied.status, 403);
    assert_eq!(request(s.addr, "GET", "/pics/a.jpg", &[], b"").await.status, 401);
    let g = with_token(s.addr, &reader.token, "GET", "/pics/a.jpg", &[("Range", "bytes=0-99")], b"").await;
    assert_eq!((g.status, g.body.as_slice()), (206, &photo[..100]));
    assert_eq!(g.header("editable"), Some("false"));
    let h = with_token(s.addr, &reader.token, "GET", "/.plait/history/pics/a.jpg", &[], b"").await.json();
    assert!(
        h["versions"][0]["author"].as_str().unwrap().ends_with("(w)"),
        "the writer's credential is the author: {h}"
    );
    let link = crate::auth::create_share(s.addr, ADMIN, json!({"path": "/pics/a.jpg", "rights": "read"})).await;
    let shared = request(s.addr, "GET", &link.href, &[], b"").await;
    assert_eq!(shared.status, 200);
    assert!(shared.body == photo, "a share link serves the file's bytes");
    assert_eq!(shared.header("merge-type"), Some("aww"));
    // Text endpoints say what they are for.
    let diff = with_token(s.addr, &reader.token, "GET", "/.plait/diff/pics/a.jpg", &[], b"").await;
    assert_eq!((diff.status, diff.header("plait-error")), (404, Some("not_text")));
    s.stop().await;
}
