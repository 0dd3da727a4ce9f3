//! The hub's promises, through the real shell, registry and readers, with a store that fails or
//! holds writes on purpose (`store::fault`) and, where time matters, tokio's paused clock:
//! nothing is published or acknowledged before it is durable; a failed commit leaves the
//! document as it was and the next write succeeds; one writer per document; an idle document
//! unloads and reloads to the same state; parked writes expire at their deadline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use crate::protocol::{MergeType, Patch, TextRange, VersionSet};
use crate::store::fault::FaultStore;
use crate::store::{keys, Batch, ChangeLog, Committer, MemoryStore, Store};
use crate::text::{Change, Edit};

use super::durability::{CommitFuture, Durability};
use super::{Hub, HubError, HubSettings, ReadOutcome, ReadRequest, SubscribeRequest, WriteRequest};

/// Durability that writes the batch in the shell's own task: no thread, so tokio's paused clock
/// only moves when the test says.
struct Inline(Arc<dyn Store>, Arc<ChangeLog>);

impl Durability for Inline {
    fn commit(&self, mut batch: Batch) -> CommitFuture<'_> {
        Box::pin(async move { self.1.write(self.0.as_ref(), &mut batch).map_err(Arc::new) })
    }
}

fn edit(id: &str, parents: Option<&[&str]>, pos: u64, content: &str) -> WriteRequest {
    let edit = Edit {
        version: Some(id.to_string()),
        fallback_agent: "x".into(),
        parents: parents.map(|p| VersionSet::new(p.iter().map(|s| s.to_string()))),
        change: Change::Patches(vec![Patch { range: TextRange::absolute(pos, pos), content: content.into() }]),
    };
    WriteRequest::new(edit, None, MergeType::Simpleton)
}

fn subscribe_request() -> SubscribeRequest {
    SubscribeRequest {
        parents: None,
        merge_type: MergeType::Simpleton,
        peer: None,
        max_rebase_delay: Duration::from_secs(3),
    }
}

async fn text(hub: &Hub, path: &str) -> String {
    match hub.read(path, ReadRequest::default()).await.unwrap() {
        ReadOutcome::Snapshot { text, .. } => String::from_utf8(text.to_vec()).unwrap(),
        ReadOutcome::History { .. } => panic!("a plain read returned history"),
    }
}

/// A hub over `store` with the real group-commit thread.
fn committed_hub(store: &Arc<FaultStore>) -> Hub {
    let dyn_store: Arc<dyn Store> = store.clone();
    Hub::new(dyn_store.clone(), Committer::start(dyn_store).unwrap(), HubSettings::standard(), files())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_published_or_acknowledged_before_it_is_durable() {
    let store = Arc::new(FaultStore::new());
    let hub = committed_hub(&store);
    hub.write("/d", edit("a-4", Some(&[]), 0, "hello")).await.unwrap();
    let mut sub = hub.subscribe("/d", subscribe_request()).await.unwrap();
    assert_eq!(sub.next().await.unwrap().len(), 1, "the snapshot");

    store.close_gate();
    let writer = {
        let hub = hub.clone();
        tokio::spawn(async move { hub.write("/d", edit("a-5", Some(&["a-4"]), 5, "!")).await })
    };
    let held = tokio::task::spawn_blocking({
        let store = store.clone();
        move || store.wait_for_a_held_write(Duration::from_secs(10))
    });
    assert!(held.await.unwrap(), "the commit never reached the store");
    // The write is applied in the writer's memory and its commit is under way, but not durable:
    // nobody may see it.
    assert_eq!(text(&hub, "/d").await, "hello");
    let early = tokio::time::timeout(Duration::from_millis(100), sub.next()).await;
    assert!(early.is_err(), "a subscriber saw a write before it was durable");
    assert!(!writer.is_finished(), "the write was acknowledged before it was durable");
    let listing = hub.history("/d", None, 10).await.unwrap();
    assert_eq!(listing.entries.len(), 1, "the listing shows only durable writes");

    store.open();
    let outcome = writer.await.unwrap().unwrap();
    assert_eq!(outcome.current.to_header(), "\"a-5\"");
    assert_eq!(text(&hub, "/d").await, "hello!");
    let update = tokio::time::timeout(Duration::from_secs(10), sub.next()).await.unwrap().unwrap();
    assert_eq!(update[0].version.to_header(), "\"a-5\"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_leaves_the_document_as_it_was_and_the_next_write_succeeds() {
    let store = Arc::new(FaultStore::new());
    let hub = committed_hub(&store);
    hub.write("/d", edit("a-4", Some(&[]), 0, "hello")).await.unwrap();
    let mut sub = hub.subscribe("/d", subscribe_request()).await.unwrap();
    sub.next().await.unwrap();
    let stored_before = store.scan_prefix(b"").unwrap();

    store.fail_write_in(1);
    let failed = hub.write("/d", edit("a-5", Some(&["a-4"]), 5, "?")).await;
    assert!(matches!(&failed, Err(e) if e.is_disk_full()), "got {failed:?}");
    assert_eq!(store.scan_prefix(b"").unwrap(), stored_before, "nothing of the failed write is stored");
    assert_eq!(text(&hub, "/d").await, "hello");
    let read = hub.read("/d", ReadRequest { version: Some(VersionSet::new(["a-5".to_string()])), parents: None }).await;
    assert!(matches!(read, Err(HubError::Doc(crate::document::DocError::UnknownVersion(_)))), "{read:?}");

    // The writer forgot it: the same id writes again with other content, and only that is seen.
    hub.write("/d", edit("a-5", Some(&["a-4"]), 5, "!")).await.unwrap();
    assert_eq!(text(&hub, "/d").await, "hello!");
    let update = tokio::time::timeout(Duration::from_secs(10), sub.next()).await.unwrap().unwrap();
    assert_eq!(update[0].version.to_header(), "\"a-5\"");
    match &update[0].content {
        crate::protocol::UpdateContent::Patches(p) => assert_eq!(p[0].content, "!"),
        other => panic!("{other:?}"),
    }
    // A fresh hub on the same store (a restart) agrees.
    assert_eq!(text(&committed_hub(&store), "/d").await, "hello!");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sync_is_not_acknowledged_but_becomes_visible_to_everyone_at_once() {
    let store = Arc::new(FaultStore::new());
    let hub = committed_hub(&store);
    hub.write("/d", edit("a-4", Some(&[]), 0, "hello")).await.unwrap();
    let mut sub = hub.subscribe("/d", subscribe_request()).await.unwrap();
    sub.next().await.unwrap();
    store.fail_sync_in(1);
    let failed = hub.write("/d", edit("a-5", Some(&["a-4"]), 5, "?")).await;
    assert!(failed.is_err(), "a write whose sync failed was acknowledged");
    // It is in the store (a restart would find it), so after the writer read the store back,
    // readers see it too, and subscriptions start over (their clients resume with Parents).
    assert_eq!(text(&hub, "/d").await, "hello?");
    let ended = tokio::time::timeout(Duration::from_secs(10), sub.next()).await.unwrap();
    assert!(ended.is_none(), "subscriptions end when the document is replaced");
    hub.write("/d", edit("a-6", Some(&["a-5"]), 6, "!")).await.unwrap();
    assert_eq!(text(&committed_hub(&store), "/d").await, "hello?!");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_writer_per_document() {
    let store = Arc::new(FaultStore::new());
    let hub = committed_hub(&store);
    let writes: Vec<_> = (0..40)
        .map(|i| {
            let hub = hub.clone();
            tokio::spawn(async move {
                let mut req = edit(&format!("w{i}-0"), Some(&[]), 0, "x");
                req.edit.parents = None;
                hub.write("/one", req).await.unwrap()
            })
        })
        .collect();
    for w in writes {
        w.await.unwrap();
    }
    assert_eq!(hub.loads(), 1, "concurrent first requests share one load and one writer");
    assert_eq!(hub.loaded_documents(), 1);
    assert_eq!(text(&hub, "/one").await, "x".repeat(40));
    let page = hub.history("/one", None, 100).await.unwrap();
    let numbers: Vec<u64> = page.entries.iter().map(|e| e.n).collect();
    assert_eq!(numbers, (0..40).rev().collect::<Vec<u64>>(), "one commit order, no gaps");
}

fn inline_hub(store: &Arc<dyn Store>, settings: HubSettings) -> Hub {
    let log = Arc::new(ChangeLog::open(store.as_ref(), crate::store::MIN_WINDOW).unwrap());
    Hub::with_durability(store.clone(), Arc::new(Inline(store.clone(), log.clone())), log, settings, files())
}

#[tokio::test(start_paused = true)]
async fn an_idle_document_unloads_and_reloads_to_the_same_state() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let hub = inline_hub(&store, HubSettings::standard());
    hub.write("/idle", edit("a-4", Some(&[]), 0, "hello")).await.unwrap();
    // Ten log records: enough for the quiet fold (eight or more) to run while it is idle.
    for i in 0..9u64 {
        let parent = if i == 0 { "a-4".to_string() } else { format!("b-{}", i - 1) };
        hub.write("/idle", edit(&format!("b-{i}"), Some(&[parent.as_str()]), 5 + i, "!")).await.unwrap();
    }
    assert!(!store.scan_prefix(&keys::log_prefix("/idle")).unwrap().is_empty());
    let before = hub.history("/idle", None, 10).await.unwrap();
    assert_eq!(hub.loaded_documents(), 1);
    // A subscription keeps it loaded however long it is idle.
    let sub = hub.subscribe("/idle", subscribe_request()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(hub.loaded_documents(), 1, "unloaded under a live subscription");
    drop(sub);
    tokio::time::sleep(Duration::from_secs(61)).await;
    assert_eq!(hub.loaded_documents(), 0, "still loaded after the idle time");
    let after = hub.history("/idle", None, 10).await.unwrap();
    assert_eq!(hub.loads(), 2, "loaded again");
    assert_eq!(text(&hub, "/idle").await, "hello!!!!!!!!!");
    assert_eq!(after.current, before.current);
    assert_eq!(after.entries, before.entries);
    assert!(after.stored_bytes < before.stored_bytes, "the fold replaced ten records by one snapshot");
    // The quiet fold ran while it was idle: one snapshot, no log.
    assert!(store.scan_prefix(&keys::log_prefix("/idle")).unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn parked_writes_wait_for_their_parents_until_the_deadline() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let hub = inline_hub(&store, HubSettings::standard());
    hub.write("/p", edit("a-4", Some(&[]), 0, "hello")).await.unwrap();
    let early = {
        let hub = hub.clone();
        tokio::spawn(async move { hub.write("/p", edit("c-0", Some(&["b-0"]), 6, "?")).await })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(hub.parked_writes(), 1);
    hub.write("/p", edit("b-0", Some(&["a-4"]), 5, "!")).await.unwrap();
    assert_eq!(early.await.unwrap().unwrap().current.to_header(), "\"c-0\"");
    assert_eq!(text(&hub, "/p").await, "hello!?");

    let late = {
        let hub = hub.clone();
        tokio::spawn(async move { hub.write("/p", edit("d-0", Some(&["zz-1"]), 0, "?")).await })
    };
    tokio::time::sleep(Duration::from_millis(2900)).await;
    assert!(!late.is_finished(), "answered before its deadline");
    tokio::time::sleep(Duration::from_millis(200)).await;
    match late.await.unwrap() {
        Err(HubError::Doc(crate::document::DocError::UnknownVersion(v))) => assert_eq!(v.to_header(), "\"zz-1\""),
        other => panic!("got {other:?}"),
    }
    assert_eq!(hub.parked_writes(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_round_of_concurrent_writes_reloads_from_its_record() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let hub = inline_hub(&store, HubSettings::standard());
    hub.write("/rounds", edit("w-3", Some(&[]), 0, "base")).await.unwrap();
    // Many writers at once: the shell takes several per round, so some log records hold
    // several diamond-types files.
    let writes: Vec<_> = (0..32)
        .map(|i| {
            let hub = hub.clone();
            tokio::spawn(async move {
                let mut req = edit(&format!("a{i}-1"), None, 0, &format!("{i};"));
                req.edit.version = None;
                req.edit.fallback_agent = format!("a{i}");
                hub.write("/rounds", req).await.unwrap()
            })
        })
        .collect();
    for w in writes {
        w.await.unwrap();
    }
    let expected = text(&hub, "/rounds").await;
    assert_eq!(expected.matches(';').count(), 32);
    let records = store.scan_prefix(&keys::log_prefix("/rounds")).unwrap();
    let multi = records.iter().filter(|(_, v)| v.first() == Some(&2)).count();
    assert!(multi > 0, "no record of several files among {}", records.len());
    assert_eq!(text(&inline_hub(&store, HubSettings::standard()), "/rounds").await, expected);
}

fn files() -> crate::hub::FileStore {
    crate::hub::FileStore::in_memory().unwrap()
}
