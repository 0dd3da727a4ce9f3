//! Folder watches through the real hub and group-commit thread: a watch sees exactly the
//! changes in its scope in commit order, from memory or (after a restart) from the store, with
//! a page read from the store coalesced per path; cursors the log cannot answer reset.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use crate::changes::{Change, ChangeKind, Cursor};
use crate::protocol::{MergeType, Patch, TextRange};
use crate::store::{Committer, MemoryStore, Store};
use crate::text::{Change as TextChange, Edit};

use super::{Hub, HubSettings, Scope, Start, Visible, WriteRequest};

fn hub(store: &Arc<dyn Store>) -> Hub {
    let files = super::FileStore::in_memory().unwrap();
    Hub::new(store.clone(), Committer::start(store.clone()).unwrap(), HubSettings::standard(), files)
}

fn put(text: &str) -> WriteRequest {
    let edit = Edit {
        version: None,
        fallback_agent: "w".into(),
        parents: None,
        change: TextChange::Patches(vec![Patch { range: TextRange::absolute(0, 0), content: text.into() }]),
    };
    WriteRequest::new(edit, None, MergeType::Simpleton)
}

fn everything() -> Visible {
    Arc::new(|_: &str| true)
}

fn folder(f: &str) -> Scope {
    Scope::Folder { folder: f.into(), recursive: false }
}

fn decoded(changes: &[Arc<crate::store::Logged>]) -> Vec<(String, ChangeKind)> {
    changes.iter().map(|l| Change::decode(&l.record).unwrap()).map(|c| (c.path, c.what)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_sees_its_folder_in_commit_order_from_memory_and_after_a_restart() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let first = hub(&store);
    let start = first.cursor();
    let (mut live, how) = first.watch_changes(folder("/f/"), None, everything()).unwrap();
    assert_eq!(how, Start::Fresh);
    first.write("/f/a", put("1")).await.unwrap();
    first.write("/g/x", put("1")).await.unwrap();
    first.write("/f/deep/b", put("1")).await.unwrap();
    first.write("/f/a", put("2")).await.unwrap();
    first.delete("/f/a").await.unwrap();
    let got = live.next(100).await.unwrap().unwrap();
    let want = vec![
        ("/f/a".to_string(), ChangeKind::Create),
        ("/f/a".to_string(), ChangeKind::Version),
        ("/f/a".to_string(), ChangeKind::Delete),
    ];
    assert_eq!(decoded(&got), want, "only the folder's own children, every change, in order");
    assert_eq!(live.cursor().seq, first.cursor().seq);
    first.close();
    drop((live, first));

    // A new process on the same store: nothing in memory, the store answers, every change
    // (within the window).
    let second = hub(&store);
    assert_eq!(second.cursor().epoch, start.epoch, "the epoch is stored");
    let (mut resumed, how) = second.watch_changes(folder("/f/"), Some(start), everything()).unwrap();
    assert_eq!(how, Start::Resumed);
    let got = resumed.ready(100).unwrap();
    assert_eq!(decoded(&got), want, "every change, from the store");
    let (mut deep, _) = second
        .watch_changes(Scope::Folder { folder: "/f/".into(), recursive: true }, Some(start), everything())
        .unwrap();
    let paths: Vec<String> = decoded(&deep.ready(100).unwrap()).into_iter().map(|c| c.0).collect();
    assert_eq!(paths, vec!["/f/a", "/f/deep/b", "/f/a", "/f/a"]);
    // Hidden paths are not delivered.
    let hide: Visible = Arc::new(|p: &str| p != "/f/a");
    let (mut hidden, _) = second.watch_changes(folder("/f/"), Some(start), hide).unwrap();
    assert!(hidden.ready(100).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursors_the_log_cannot_answer_reset() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let hub = hub(&store);
    hub.write("/f/a", put("1")).await.unwrap();
    let now = hub.cursor();
    let other = Cursor { epoch: now.epoch ^ 1, seq: now.seq };
    let ahead = Cursor { epoch: now.epoch, seq: now.seq + 5 };
    for c in [other, ahead] {
        let (w, how) = hub.watch_changes(folder("/f/"), Some(c), everything()).unwrap();
        assert_eq!((how, w.cursor()), (Start::Reset, now), "{c}");
    }
    let (_, how) = hub.watch_changes(folder("/f/"), Some(now), everything()).unwrap();
    assert_eq!(how, Start::Resumed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folder_watches_count_against_the_servers_subscription_limit() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let settings = HubSettings { max_subscriptions: 2, ..HubSettings::standard() };
    let files = super::FileStore::in_memory().unwrap();
    let hub = Hub::new(store.clone(), Committer::start(store.clone()).unwrap(), settings, files);
    let a = hub.watch_changes(folder("/f/"), None, everything()).unwrap();
    let b = hub.watch_changes(Scope::Path("/f/a".into()), None, everything()).unwrap();
    let refused = hub.watch_changes(folder("/g/"), None, everything());
    assert!(matches!(refused, Err(super::HubError::TooManySubscriptions(_))));
    drop(a);
    let c = hub.watch_changes(folder("/g/"), None, everything()).unwrap();
    assert_eq!(hub.0.stats.folder_watches.load(std::sync::atomic::Ordering::Relaxed), 2);
    drop((b, c));
    assert_eq!(hub.0.stats.subscriptions.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[test]
fn a_page_behind_the_window_keeps_each_paths_last_change_in_log_order() {
    let logged = |seq: u64, path: &str| crate::store::Logged::new(seq, path.into(), false, Vec::new());
    let page = vec![logged(1, "/a"), logged(2, "/b"), logged(3, "/a"), logged(4, "/c"), logged(5, "/b")];
    let kept: Vec<(u64, String)> = super::folders::coalesce(page).iter().map(|l| (l.seq, l.path.clone())).collect();
    assert_eq!(kept, vec![(3, "/a".to_string()), (4, "/c".to_string()), (5, "/b".to_string())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_wakes_only_the_watches_it_concerns_and_idle_cursors_move_on() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let hub = hub(&store);
    let (mut other, _) = hub.watch_changes(folder("/g/"), None, everything()).unwrap();
    let (mut mine, _) = hub.watch_changes(folder("/f/"), None, everything()).unwrap();
    for text in ["1", "2", "3"] {
        hub.write("/f/a", put(text)).await.unwrap();
    }
    // Nothing was recorded for /g/, so its watch was never woken; asked, it has nothing, and
    // its position moves to the log's end (a long poll's cursor does not lag).
    let g = hub.0.interest.join(&folder("/g/"));
    assert_eq!(g.after(0), Some(Vec::new()));
    assert!(!tokio::time::timeout(std::time::Duration::from_millis(50), other.changed()).await.unwrap_or(false));
    assert!(other.ready(10).unwrap().is_empty());
    assert_eq!(other.cursor(), hub.cursor());
    assert_eq!(mine.ready(10).unwrap().len(), 3);
    // A change under /g/ wakes its watch.
    hub.write("/g/x", put("1")).await.unwrap();
    assert!(other.changed().await);
    assert_eq!(decoded(&other.ready(10).unwrap()), vec![("/g/x".to_string(), ChangeKind::Create)]);
}
