//! Reading the history listing's records from the store (the core writes them: see
//! `document::listing`): pages newest first, one entry by number, the entry of an event id,
//! and the records a compaction rewrites.
//!
//! A run index maps `(agent, first seq)` of each run of one agent's consecutive events to its
//! block, so `before=V` pages start anywhere without reading the entries after it: listing a
//! document with millions of writes reads only the page asked for.

use std::collections::BTreeMap;

use crate::document::{decode_record, record_n, HistoryEntry, NumberedEntry};
use crate::store::{keys, Store};
use crate::text::EventId;

use super::HubError;

/// One stored key and its value.
type KeyValue = (Vec<u8>, Vec<u8>);

/// The record holding entry `n` (the one with the greatest first number at or below it).
fn record_at(store: &dyn Store, path: &str, n: u64) -> Result<Option<KeyValue>, HubError> {
    let bound = keys::history_entry(path, n.saturating_add(1));
    Ok(store.scan_prefix_rev(&keys::history_prefix(path), Some(&bound), 1)?.pop())
}

/// Entry `n`, if it is listed.
pub fn entry_at(store: &dyn Store, path: &str, n: u64) -> Result<Option<HistoryEntry>, HubError> {
    let Some((key, value)) = record_at(store, path, n)? else { return Ok(None) };
    let first_n = record_n(path, &key)?;
    let slots = decode_record(path, first_n, &value)?;
    Ok(usize::try_from(n - first_n).ok().and_then(|i| slots.into_iter().nth(i)).flatten())
}

/// How many run-index keys with the same start a lookup tries (several blocks can list one
/// id only when versions of several ids repeat it).
const SAME_START_CANDIDATES: usize = 8;

/// The number of the entry whose version holds event `id`, if it is listed (the newest such
/// entry, when several list it).
pub fn entry_of(store: &dyn Store, path: &str, id: &str) -> Result<Option<u64>, HubError> {
    let Ok(event) = EventId::parse(id) else { return Ok(None) };
    // The run holding the event starts at the greatest seq at or below it.
    let bound = keys::run_index(path, &event.agent, event.seq.saturating_add(1), 0);
    let runs =
        store.scan_prefix_rev(&keys::run_index_agent(path, &event.agent), Some(&bound), SAME_START_CANDIDATES)?;
    let mut start = None;
    for (key, _) in &runs {
        let (seq, first_n) = keys::run_index_parts(key)
            .ok_or_else(|| crate::document::DocError::Corrupt(format!("run index key of {path} is short")))?;
        if *start.get_or_insert(seq) != seq {
            break;
        }
        let Some(value) = store.get(&keys::history_entry(path, first_n))? else { continue };
        let slots = decode_record(path, first_n, &value)?;
        let holds = |s: &Option<HistoryEntry>| s.as_ref().is_some_and(|e| e.version.iter().any(|v| v == id));
        if let Some(i) = slots.iter().rposition(holds) {
            return Ok(Some(first_n + i as u64));
        }
    }
    Ok(None)
}

/// Up to `limit` entries numbered below `below` (all when None), newest first.
pub fn page(store: &dyn Store, path: &str, below: Option<u64>, limit: usize) -> Result<Vec<NumberedEntry>, HubError> {
    let prefix = keys::history_prefix(path);
    let mut out = Vec::new();
    let mut bound = below.map(|n| keys::history_entry(path, n));
    // Each record holds at least one entry: `limit` records are always enough for a page.
    let per_scan = limit.max(1);
    while out.len() < limit {
        let records = store.scan_prefix_rev(&prefix, bound.as_deref(), per_scan)?;
        for (key, value) in &records {
            let first_n = record_n(path, key)?;
            let slots = decode_record(path, first_n, value)?;
            for (i, slot) in slots.into_iter().enumerate().rev() {
                let n = first_n + i as u64;
                match slot {
                    Some(entry) if below.is_none_or(|b| n < b) && out.len() < limit => {
                        out.push(NumberedEntry { n, entry })
                    }
                    _ => {}
                }
            }
        }
        match records.last() {
            Some((key, _)) if records.len() == per_scan => bound = Some(key.clone()),
            _ => break,
        }
    }
    Ok(out)
}

/// The records holding entries `ns`, by their first entry's number: what a compaction drops
/// slots from.
pub fn records_holding(store: &dyn Store, path: &str, ns: &[u64]) -> Result<BTreeMap<u64, Vec<u8>>, HubError> {
    let mut out: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let mut covered_until: Option<(u64, u64)> = None;
    for &n in ns {
        if covered_until.is_some_and(|(first, end)| first <= n && n < end) {
            continue;
        }
        let Some((key, value)) = record_at(store, path, n)? else { continue };
        let first_n = record_n(path, &key)?;
        let slots = decode_record(path, first_n, &value)?.len() as u64;
        covered_until = Some((first_n, first_n + slots));
        out.insert(first_n, value);
    }
    Ok(out)
}
