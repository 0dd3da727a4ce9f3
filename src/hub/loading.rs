//! Reading a document's records from the store for the document core (which does no I/O),
//! off the async scheduler.

use crate::document::StoredDoc;
use crate::store::{keys, Store};

use super::HubError;

/// Reads every record [`StoredDoc`] lists for `path`. Each record is read on its own, so a
/// concurrent fold can be seen half: callers that read while a writer runs check what they
/// decoded (see `replica`).
pub(crate) fn read_stored(store: &dyn Store, path: &str) -> Result<StoredDoc, HubError> {
    Ok(StoredDoc {
        meta: store.get(&keys::meta(path))?,
        newest_block: store.scan_prefix_rev(&keys::history_prefix(path), None, 1)?.pop(),
        horizon: store.get(&keys::horizon(path))?,
        snapshot: store.get(&keys::snapshot(path))?,
        log: store.scan_prefix(&keys::log_prefix(path))?,
    })
}

/// Runs blocking work (a document load, a read that walks history) without holding up the
/// async scheduler: on the multi-threaded runtime in place (`block_in_place`: the worker's other
/// tasks move to another thread meanwhile), so the work shares the calling thread's warm heap
/// instead of a fresh blocking-pool thread and its fresh malloc arena (measured as B3's cold
/// reads in docs/BENCHMARKS.md); on a current-thread runtime (unit tests) simply inline.
pub(crate) fn blocking<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(work),
        _ => work(),
    }
}
