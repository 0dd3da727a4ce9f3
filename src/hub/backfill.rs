//! The change log's backfill: a store written before the change log existed (format 2 or older)
//! has resources the log has never seen. Before the server listens, each one enters the log once,
//! as a `create` describing it as it is now, so folder listings show it and watchers learn of it.

use std::collections::BTreeSet;

use tokio::time::Instant;

use crate::document::DocCore;
use crate::store::{keys, prefix_end, Batch, ChangeLog, Store, StoreError};

use super::loading::read_stored;
use super::{Hub, HubError};

/// Entries written per batch.
const BATCH: usize = 256;

impl Hub {
    /// Puts every stored resource that the log has not seen into it, if the store is marked
    /// for it (an upgraded store); returns how many entered. Run before serving: it reads each
    /// resource's records once, one at a time.
    pub fn backfill_changes(&self) -> Result<usize, HubError> {
        let store = self.0.store.as_ref();
        if !ChangeLog::needs_backfill(store)? {
            return Ok(0);
        }
        let settings = self.0.settings.core();
        let mut batch = Batch::new();
        let mut added = 0;
        for path in stored_paths(store)? {
            if ChangeLog::latest_of(store, &path)?.is_some() {
                continue;
            }
            let stored = read_stored(store, &path)?;
            let (core, _) = DocCore::<()>::load(&path, &stored, settings.clone(), Instant::now())?;
            if let Some(change) = core.describe() {
                batch.log(change.entry());
                added += 1;
            }
            if batch.log.len() >= BATCH {
                self.0.log.write(store, &mut std::mem::take(&mut batch))?;
            }
        }
        self.0.log.finish_backfill(store, batch)?;
        tracing::info!(resources = added, "the change log now holds the resources stored before it existed");
        Ok(added)
    }
}

/// Every path with a snapshot or log record, one seek per path.
fn stored_paths(store: &dyn Store) -> Result<BTreeSet<String>, StoreError> {
    let mut paths = BTreeSet::new();
    for prefix in keys::all_records() {
        let mut from = prefix.clone();
        while let Some((key, _)) = store.scan_from(&prefix, &from, 1)?.into_iter().next() {
            let Some((path, own)) = keys::record_path(&key) else { break };
            paths.insert(path);
            match prefix_end(&own) {
                Some(next) => from = next,
                None => break,
            }
        }
    }
    Ok(paths)
}
