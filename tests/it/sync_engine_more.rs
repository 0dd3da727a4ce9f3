//! More of the sync engine against a real server with RocksDB: catching up after a stop (both
//! sides changed meanwhile), a folder deleted locally, a state dir inside the folder (never
//! synced), and a rescan asked for on the status board (`POST /v1/rescan`) finding a change the
//! filesystem notifications missed. Helpers are `sync_engine`'s.

use crate::support::client::request;
use crate::support::server::{Engine as Store, TestServer};
use crate::sync_engine::{files, get, noise, server_has, write, Synced};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_engine_catches_up_both_ways_from_its_cursor() {
    let s = TestServer::start(Store::Rocks).await;
    let a = Synced::start(&s.url("/c/"), "a");
    write(&a.path("keep.txt"), b"keep");
    write(&a.path("gone.txt"), b"to be deleted on the server");
    write(&a.path("edit.bin"), &noise(60, 3000));
    server_has(&s, "/c/edit.bin", (200, &noise(60, 3000))).await;
    server_has(&s, "/c/gone.txt", (200, b"to be deleted on the server")).await;
    a.synced(&s, "/c/").await;
    let (dir, state, tmp) = a.stop().await;

    // While it is stopped: the server changes, and so does the folder.
    assert_eq!(request(s.addr, "DELETE", "/c/gone.txt", &[], b"").await.status, 200);
    let r =
        request(s.addr, "PUT", "/c/edit.bin", &[("Content-Type", "application/octet-stream")], &noise(61, 3000)).await;
    assert_eq!(r.status, 200);
    assert_eq!(request(s.addr, "PUT", "/c/new-there.txt", &[], b"new on the server").await.status, 200);
    write(&dir.join("new-here.txt"), b"new in the folder");
    std::fs::remove_file(dir.join("keep.txt")).unwrap();

    let a = Synced::start_in(&dir, &state, &s.url("/c/"), "a");
    server_has(&s, "/c/new-here.txt", (200, b"new in the folder")).await;
    server_has(&s, "/c/keep.txt", (200, b"")).await;
    a.until("the server's changes land", || !a.path("gone.txt").exists() && a.path("new-there.txt").exists()).await;
    a.synced(&s, "/c/").await;
    assert_eq!(std::fs::read(a.path("edit.bin")).unwrap(), noise(61, 3000));
    assert_eq!(files(&a.dir), vec!["edit.bin", "new-here.txt", "new-there.txt"]);
    a.stop().await;
    drop(tmp);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_deleted_locally_deletes_its_files_and_a_state_dir_inside_is_not_synced() {
    let s = TestServer::start(Store::Rocks).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("f");
    let a = Synced::start_in(&dir, &dir.join(".state"), &s.url("/d/"), "a");
    write(&a.path("sub/one.txt"), b"1");
    write(&a.path("sub/deeper/two.bin"), &noise(70, 2000));
    write(&a.path("top.txt"), b"top");
    server_has(&s, "/d/sub/deeper/two.bin", (200, &noise(70, 2000))).await;
    server_has(&s, "/d/sub/one.txt", (200, b"1")).await;
    server_has(&s, "/d/top.txt", (200, b"top")).await;
    a.synced(&s, "/d/").await;

    std::fs::remove_dir_all(a.path("sub")).unwrap();
    server_has(&s, "/d/sub/one.txt", (200, b"")).await;
    assert_eq!(get(&s, "/d/sub/deeper/two.bin").await.0, 404);
    a.synced(&s, "/d/").await;
    let list = request(s.addr, "GET", "/d/?recursive=1", &[("Accept", "application/json")], b"").await.json();
    let names: Vec<&str> = list["entries"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["/d/top.txt"], "nothing of the state dir on the server");
    a.stop().await;
    s.stop().await;
}

/// A change made through a hard link outside the folder raises no notification in the folder
/// (inotify reports a write to the directory the writer opened it through), so only a rescan
/// finds it: asking for one on the board (what `POST /v1/rescan` does) sends it at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rescan_asked_for_finds_a_change_notifications_missed() {
    let s = TestServer::start(Store::Rocks).await;
    let tmp = tempfile::tempdir().unwrap();
    let (dir, state, outside) = (tmp.path().join("folder"), tmp.path().join("state"), tmp.path().join("outside"));
    write(&dir.join("linked.txt"), b"one");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::hard_link(dir.join("linked.txt"), outside.join("linked.txt")).unwrap();
    let a = Synced::start_in(&dir, &state, &s.url("/r/"), "a");
    server_has(&s, "/r/linked.txt", (200, b"one")).await;
    a.synced(&s, "/r/").await;

    write(&outside.join("linked.txt"), b"two, written through the other link");
    // A change the engine does hear of, taken after the one it did not: once that is on the
    // server and the engine is idle, the linked file was not noticed.
    write(&dir.join("heard.txt"), b"heard");
    server_has(&s, "/r/heard.txt", (200, b"heard")).await;
    a.synced(&s, "/r/").await;
    assert_eq!(get(&s, "/r/linked.txt").await, (200, b"one".to_vec()), "notifications saw the write: no test");

    a.board.ask_rescan(&a.dir.display().to_string());
    server_has(&s, "/r/linked.txt", (200, b"two, written through the other link")).await;
    a.synced(&s, "/r/").await;
    a.stop().await;
    s.stop().await;
}
