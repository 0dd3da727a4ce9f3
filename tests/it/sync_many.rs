//! Many small files created quickly straight through the server while an engine watches the
//! folder: every one must land in the engine's folder. A burst of writes makes the change log
//! wake the watcher before the server's reads (`HEAD`) show some of the changes; an engine
//! that acted on the stale `HEAD` dropped those paths as "nothing there" and moved its cursor
//! past them (files never downloaded while the engine said it was idle). The wait is on the
//! engine's status board and the server's log, with a deadline.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use plait::client::sync::status::FolderState;

use crate::support::client::request;
use crate::support::server::{Engine as Store, TestServer};
use crate::sync_engine::{server_cursor, Synced};

const FILES: usize = 1500;
const IN_FLIGHT: usize = 32;
const DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_many_small_files_written_at_once_all_arrive() {
    let s = TestServer::start(Store::Rocks).await;
    let b = Synced::start(&s.url("/many/"), "desk");
    // The engine is watching before the burst starts.
    b.until("the engine watches", || b.status().cursor.is_some()).await;

    let addr = s.addr;
    let want: BTreeMap<String, Vec<u8>> =
        (0..FILES).map(|i| (format!("d{}/f{i:05}.txt", i % 7), format!("file {i}\n").into_bytes())).collect();
    let statuses: Vec<u16> = futures_util::stream::iter(want.iter())
        .map(|(rel, body)| async move { request(addr, "PUT", &format!("/many/{rel}"), &[], body).await.status })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    assert!(statuses.iter().all(|&st| st == 200), "PUTs: {:?}", statuses.iter().filter(|&&st| st != 200).count());

    // Idle, nothing pending, its cursor at the server's latest: then every file must be there.
    let latest = server_cursor(addr, "/many/").await;
    let start = Instant::now();
    loop {
        let st = b.status();
        let at = st.cursor.as_deref().and_then(|c| c.rsplit('-').next()?.parse::<u64>().ok()).unwrap_or(0);
        if st.state == FolderState::Idle && st.pending_down == 0 && st.pending_up == 0 && at >= latest {
            assert!(st.errors.is_empty(), "errors: {:?}", st.errors);
            break;
        }
        assert!(start.elapsed() < DEADLINE, "not in sync after {DEADLINE:?}: {st:?}, server at {latest}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let missing: Vec<&String> = want
        .iter()
        .filter(|(rel, body)| std::fs::read(b.path(rel)).ok().as_deref() != Some(body.as_slice()))
        .map(|(rel, _)| rel)
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {FILES} never downloaded although idle: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    b.stop().await;
}
