//! Group commit: one thread turns many concurrent batches into one synced write.
//!
//! Why a thread of our own rather than RocksDB's internal write grouping: it makes the
//! sharing explicit and measurable ([`CommitStats`]), it works the same on every engine,
//! and callers on the async side await a oneshot instead of parking a blocking thread
//! per write.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::changelog::{ChangeLog, DEFAULT_WINDOW};
use super::{Batch, Store, StoreError};

/// Upper bound on the bytes merged into one write, so one huge group cannot stall
/// small writers behind it for long.
const MAX_GROUP_BYTES: usize = 8 << 20;

type Reply = oneshot::Sender<Result<(), Arc<StoreError>>>;

/// Counters that show how well writes are being grouped.
#[derive(Debug, Default)]
pub struct CommitStats {
    /// Batches submitted and written.
    pub batches: AtomicU64,
    /// Synced engine writes performed (each covers one or more batches).
    pub writes: AtomicU64,
}

/// Handle to the group-commit thread. Cloning shares the thread.
#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<(Batch, Reply)>,
    stats: Arc<CommitStats>,
    log: Arc<ChangeLog>,
}

impl Committer {
    /// Starts the commit thread over `store`, with its change log (default window). The thread
    /// ends when every handle is dropped.
    pub fn start(store: Arc<dyn Store>) -> Result<Self, StoreError> {
        let log = Arc::new(ChangeLog::open(store.as_ref(), DEFAULT_WINDOW)?);
        Self::start_with(store, log, Duration::ZERO)
    }

    /// Starts the commit thread over `store`, giving the entries of every batch their positions
    /// in `log` (the store's change log). With a `delay`, waits that long before every engine
    /// write, as a slow disk would: only for tests that need acknowledged-but-unwritten data at
    /// a crash.
    pub fn start_with(store: Arc<dyn Store>, log: Arc<ChangeLog>, delay: Duration) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel::<(Batch, Reply)>();
        let stats = Arc::new(CommitStats::default());
        let thread_stats = stats.clone();
        let thread_log = log.clone();
        std::thread::Builder::new()
            .name("plait-commit".into())
            .spawn(move || run(store.as_ref(), &thread_log, rx, &thread_stats, delay))
            .map_err(|e| StoreError::Engine(format!("cannot start the commit thread: {e}")))?;
        Ok(Committer { tx, stats, log })
    }

    /// The change log this thread writes.
    pub fn log(&self) -> &Arc<ChangeLog> {
        &self.log
    }

    /// Writes `batch` durably, sharing the sync with whatever else is waiting.
    pub async fn commit(&self, batch: Batch) -> Result<(), Arc<StoreError>> {
        let (reply, done) = oneshot::channel();
        self.tx.send((batch, reply)).map_err(|_| Arc::new(StoreError::Closed))?;
        done.await.map_err(|_| Arc::new(StoreError::Closed))?
    }

    /// How many batches and engine writes so far.
    pub fn stats(&self) -> &CommitStats {
        &self.stats
    }
}

fn run(store: &dyn Store, log: &ChangeLog, rx: mpsc::Receiver<(Batch, Reply)>, stats: &CommitStats, delay: Duration) {
    while let Ok(first) = rx.recv() {
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let mut group = vec![first];
        let mut bytes = group[0].0.byte_len();
        while bytes < MAX_GROUP_BYTES {
            match rx.try_recv() {
                Ok(next) => {
                    bytes += next.0.byte_len();
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        // Moved, not copied: the group's keys and values are written once, as they are.
        let mut merged = Batch::new();
        for (batch, _) in &mut group {
            merged.ops.append(&mut batch.ops);
            merged.log.append(&mut batch.log);
        }
        // The group's change-log entries get their positions in the order of this write.
        let result = log.write(store, &mut merged).map_err(Arc::new);
        stats.writes.fetch_add(1, Ordering::Relaxed);
        stats.batches.fetch_add(group.len() as u64, Ordering::Relaxed);
        for (_, reply) in group {
            // A waiter that went away (client disconnected) needs no answer.
            let _ = reply.send(result.clone());
        }
    }
}
