//! Compaction: folding history older than the retention policy keeps into a snapshot.
//!
//! Three steps, so writes never wait for the expensive one:
//! 1. choose the horizon from the history listing (the retention rule says which writes may
//!    go; checkpoints and the "dominates everything after it" rule of `TextDoc::compact` may
//!    pull it further back);
//! 2. build the compacted document from a copy, on the blocking pool, while the actor keeps
//!    accepting writes;
//! 3. hand it to the actor, which adds the writes that arrived meanwhile, commits snapshot,
//!    horizon record and the removal of the folded listing entries in one atomic batch,
//!    swaps the document in, and ends its subscriptions (clients resume with `Parents`, or
//!    get 410 Gone if they were behind the horizon).

use crate::document::{next_n_of, CompactionPlan, Horizon};
use crate::protocol::VersionSet;
use crate::store::{keys, Store};
use crate::text::TextDoc;

use super::browse::{checkpoints_of, now_ms};
use super::history;
use super::loading::blocking;
use super::retention::{foldable_through, RetentionPolicy, RetentionRule};
use super::{Hub, HubError};

/// Entries read per page while collecting the folded listing entries.
const PAGE: usize = 1000;
/// Tries to step back past checkpoints before giving up for this pass.
const MAX_STEPS: usize = 64;

/// What one compaction did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactionReport {
    /// The new horizon (None: nothing could be folded).
    pub horizon: Option<VersionSet>,
    /// Listing entries (writes) folded away.
    pub folded_writes: u64,
    /// Stored bytes before and after (None when the store alone showed there was nothing
    /// to fold, so the document was not even loaded).
    pub bytes_before: Option<u64>,
    /// See `bytes_before`.
    pub bytes_after: Option<u64>,
}

impl Hub {
    /// Every document with history records, for a retention pass.
    pub async fn stored_paths(&self) -> Result<Vec<String>, HubError> {
        let pairs = self.with_store(|store| Ok(store.scan_prefix(&keys::all_meta())?)).await?;
        Ok(pairs.iter().filter_map(|(k, _)| keys::meta_path(k)).collect())
    }

    /// Compacts `path` as far as `rule` allows.
    pub async fn compact(&self, path: &str, rule: &RetentionRule) -> Result<CompactionReport, HubError> {
        // A cheap look at the store first: most passes find nothing to fold, and need not load
        // (decode) the document to know it.
        let nothing = CompactionReport { horizon: None, folded_writes: 0, bytes_before: None, bytes_after: None };
        let (owned, rule) = (path.to_string(), rule.clone());
        let foldable = self
            .with_store(move |store| {
                // The count alone: reopening the newest block is the core's business.
                let next_n = next_n_of(&owned, store.get(&keys::meta(&owned))?.as_deref())?;
                let horizon = store.get(&keys::horizon(&owned))?;
                let first = Horizon::from_stored(&owned, horizon.as_deref())?.map_or(0, |h| h.first_entry);
                foldable_through(store, &owned, &rule, first, next_n, now_ms())
            })
            .await?;
        // Writes arriving from here on only move the bound forward: this one stays valid.
        let Some(through) = foldable else { return Ok(nothing) };
        let handle = self.doc(path).await?;
        let bytes_before = handle.shared.stored_bytes.load(std::sync::atomic::Ordering::Relaxed);
        // A copy of the readers' copy: the writer never waits for this.
        let (shared, store) = (handle.shared.clone(), self.0.store.clone());
        let (doc, old_horizon) = blocking(|| {
            shared.with_replica(store.as_ref(), |replica, published| {
                Ok((replica.doc().clone(), published.horizon.as_deref().cloned().unwrap_or_default()))
            })
        })?;
        let owned = path.to_string();
        let plan = self.with_store(move |store| plan(store, &owned, through, doc, old_horizon)).await?;
        let Some(plan) = plan else {
            let bytes = Some(bytes_before);
            return Ok(CompactionReport { bytes_before: bytes, bytes_after: bytes, ..nothing });
        };
        let (folded_writes, version) = (plan.folded_writes, plan.horizon.version_set());
        self.install_compaction(&handle, plan).await?;
        let bytes_after = handle.shared.stored_bytes.load(std::sync::atomic::Ordering::Relaxed);
        Ok(CompactionReport {
            horizon: Some(version),
            folded_writes,
            bytes_before: Some(bytes_before),
            bytes_after: Some(bytes_after),
        })
    }
}

/// The background retention pass: every `every`, compacts each stored document that a rule
/// of `policy` covers. Runs until aborted (at shutdown).
pub async fn run_retention(hub: Hub, policy: RetentionPolicy, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let paths = match hub.stored_paths().await {
            Ok(paths) => paths,
            Err(e) => {
                tracing::warn!(error = %e, "retention pass could not list documents");
                continue;
            }
        };
        for path in paths {
            let Some(rule) = policy.rule_for(&path) else { continue };
            match hub.compact(&path, rule).await {
                Ok(CompactionReport { horizon: Some(h), folded_writes, bytes_before, bytes_after }) => {
                    let (before, after) = (bytes_before.unwrap_or(0), bytes_after.unwrap_or(0));
                    tracing::info!(%path, horizon = %h.to_header(), folded_writes, before, after, "compacted");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(%path, error = %e, "compaction skipped"),
            }
        }
        // Files: old versions go as the rule says; the collector then frees their chunks.
        let files = match hub.file_paths().await {
            Ok(paths) => paths,
            Err(e) => {
                tracing::warn!(error = %e, "retention pass could not list files");
                continue;
            }
        };
        for path in files {
            let Some(rule) = policy.rule_for(&path) else { continue };
            match hub.prune_file(&path, rule).await {
                Ok(0) => {}
                Ok(dropped) => tracing::info!(%path, dropped, "old file versions dropped"),
                Err(e) => tracing::warn!(%path, error = %e, "file retention skipped"),
            }
        }
    }
}

/// Steps 1 and 2, on a copy of the document.
/// `through`: the newest listing entry the retention rule lets go.
fn plan(
    store: &dyn Store,
    path: &str,
    mut through: u64,
    doc: TextDoc,
    old: Horizon,
) -> Result<Option<CompactionPlan>, HubError> {
    let checkpoints: Vec<VersionSet> =
        checkpoints_of(store, path)?.into_iter().map(|c| VersionSet::new(c.version)).collect();
    for _ in 0..MAX_STEPS {
        let Some(candidate) = history::page(store, path, Some(through + 1), 1)?.pop() else { return Ok(None) };
        let wanted = VersionSet::new(candidate.entry.version);
        let horizon = doc.latest_valid_horizon_at_or_before(&wanted)?;
        if horizon.ids().is_empty() || horizon.ids() == old.version.as_slice() {
            return Ok(None);
        }
        // A checkpointed version is never folded: step back to the write before it.
        let mut blocked: Option<u64> = None;
        for c in &checkpoints {
            if doc.check_known(c).is_ok() && doc.contains(&horizon, c)? {
                // A checkpoint the listing cannot place (written before it existed) stops here.
                let Some(n) = first_entry_of(store, path, c)? else { return Ok(None) };
                blocked = Some(blocked.map_or(n, |b| b.min(n)));
            }
        }
        match blocked {
            None => return build(store, path, &doc, &horizon, old, through).map(Some),
            Some(n) if n > old.first_entry => through = n - 1,
            Some(_) => return Ok(None),
        }
    }
    Ok(None)
}

/// The lowest listing entry that wrote any id of `v` (None if none is listed).
fn first_entry_of(store: &dyn Store, path: &str, v: &VersionSet) -> Result<Option<u64>, HubError> {
    let mut lowest: Option<u64> = None;
    for id in v.ids() {
        if let Some(n) = history::entry_of(store, path, id)? {
            lowest = Some(lowest.map_or(n, |l| l.min(n)));
        }
    }
    Ok(lowest)
}

fn build(
    store: &dyn Store,
    path: &str,
    doc: &TextDoc,
    horizon: &VersionSet,
    old: Horizon,
    through: u64,
) -> Result<CompactionPlan, HubError> {
    let base_agent = old.next_base_agent();
    let compacted = doc.compact(horizon, &base_agent)?;
    // Listing entries whose version the horizon covers go; later ones stay.
    let (mut drop_entries, mut folded_writes, mut first_kept) = (Vec::new(), 0u64, old.first_entry);
    let mut below = Some(through + 1);
    while let Some(b) = below {
        let page = history::page(store, path, Some(b), PAGE)?;
        below = page.last().map(|e| e.n).filter(|_| page.len() == PAGE);
        for numbered in page {
            if !doc.contains(horizon, &VersionSet::new(numbered.entry.version.clone()))? {
                continue;
            }
            first_kept = first_kept.max(numbered.n + 1);
            drop_entries.push(numbered.n);
            folded_writes += 1;
        }
    }
    let mut next = Horizon {
        version: compacted.base_version.ids().to_vec(),
        replaces: horizon.ids().to_vec(),
        generation: old.generation + 1,
        pruned: old.pruned,
        first_entry: first_kept,
        compacted_ms: now_ms(),
        path: path.to_string(),
    };
    next.add_pruned(compacted.pruned.clone());
    let stored_blocks = history::records_holding(store, path, &drop_entries)?;
    Ok(CompactionPlan { compacted, based_on: doc.version(), horizon: next, drop_entries, stored_blocks, folded_writes })
}
