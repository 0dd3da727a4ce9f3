//! The history listing's blocks: the codec round-trips every shape of entry and refuses bad
//! bytes without panicking; the records, pages, lookups, drops and byte counts agree with
//! what is in the store, across block boundaries, reloads and drops.

use std::collections::BTreeMap;

use crate::protocol::test_util::Rng;
use crate::store::{keys, Batch, MemoryStore, Store};

use crate::document::{decode_block, encode_block};
use crate::document::{Author, HistoryEntry, Listing as HistoryMeta, Principal, BLOCK_SLOTS};

use super::history;

const PATH: &str = "/t/doc";

/// Random writes by a few agents: mostly one author typing (contiguous, on top of the last
/// write), sometimes a jump, another agent, a merge, a restore or a new credential. Seqs
/// start at `first_seq`, so later calls can continue a history without reusing event ids.
fn random_entries_from(rng: &mut Rng, count: usize, first_seq: u64) -> Vec<HistoryEntry> {
    let agents = ["ann", "ben-7", "c"];
    let mut next_seq: BTreeMap<&str, u64> = BTreeMap::new();
    let (mut out, mut ms): (Vec<HistoryEntry>, u64) = (Vec::new(), 1_700_000_000_000);
    let (mut peer, mut principal): (Option<String>, Option<Principal>) = (None, None);
    for _ in 0..count {
        let agent = if rng.chance(80) { agents[0] } else { *rng.pick(&agents) };
        let seq = next_seq.entry(agent).or_insert(first_seq);
        if rng.chance(10) {
            *seq += rng.below(5) as u64;
        }
        let (inserted, deleted) = match rng.below(5) {
            0 | 1 => (1, 0),
            2 => (0, 1),
            3 => (0, 1 + rng.below(3) as u64),
            _ => (rng.below(40) as u64, rng.below(3) as u64 + 1),
        };
        *seq += inserted + deleted;
        let version = if rng.chance(3) {
            vec!["x-1".into(), format!("{agent}-{}", *seq - 1)]
        } else {
            vec![format!("{agent}-{}", *seq - 1)]
        };
        let parents = match (out.last(), rng.below(10)) {
            (Some(p), 0..=7) => p.version.clone(),
            (_, 8) => vec![],
            _ => vec!["zed-3".into(), "ann-0".into()],
        };
        ms = match rng.below(20) {
            0 => ms.saturating_sub(rng.below(1000) as u64),
            1 => ms + 60 + rng.below(10) as u64,
            _ => ms + rng.below(3) as u64,
        };
        if rng.chance(10) {
            principal = rng.chance(50).then(|| Principal {
                kind: "token".into(),
                id: format!("t{}", rng.below(2)),
                label: "läptop".into(),
            });
        }
        if rng.chance(10) {
            peer = rng.chance(50).then(|| format!("peer{}", rng.below(2)));
        }
        out.push(HistoryEntry {
            version,
            parents,
            received_ms: ms,
            author: Author {
                agent: if rng.chance(95) { agent.into() } else { "someone-else".into() },
                peer: peer.clone(),
                principal: principal.clone(),
            },
            inserted,
            deleted,
            restored_from: rng.chance(5).then(|| vec!["ann-3".into()]),
        });
    }
    out
}

fn random_entries(rng: &mut Rng, count: usize) -> Vec<HistoryEntry> {
    random_entries_from(rng, count, 0)
}

#[test]
fn blocks_round_trip_every_shape_of_entry() {
    let mut rng = Rng::new(7);
    for _ in 0..200 {
        let count = 1 + rng.below(BLOCK_SLOTS);
        let mut slots: Vec<Option<HistoryEntry>> = random_entries(&mut rng, count).into_iter().map(Some).collect();
        for slot in &mut slots {
            if rng.chance(10) {
                *slot = None;
            }
        }
        assert_eq!(decode_block(&encode_block(&slots)).unwrap(), slots);
    }
}

#[test]
fn one_author_typing_costs_a_few_bytes_per_write() {
    let mut slots = Vec::new();
    for i in 0..BLOCK_SLOTS as u64 {
        let parents = if i == 0 { vec![] } else { vec![format!("alice-{}", i - 1)] };
        slots.push(Some(HistoryEntry {
            version: vec![format!("alice-{i}")],
            parents,
            received_ms: 1_764_000_000_000 + i / 3,
            author: Author { agent: "alice".into(), peer: Some("p1".into()), principal: None },
            inserted: 1,
            deleted: 0,
            restored_from: None,
        }));
    }
    let block = encode_block(&slots);
    // The first entry spells everything out; each later one is a single byte.
    assert!(block.len() <= 40 + BLOCK_SLOTS, "{} bytes", block.len());
    assert_eq!(decode_block(&block).unwrap(), slots);
}

#[test]
fn damaged_blocks_are_refused_without_panicking() {
    let mut rng = Rng::new(11);
    let slots: Vec<Option<HistoryEntry>> = random_entries(&mut rng, 40).into_iter().map(Some).collect();
    let block = encode_block(&slots);
    for cut in 0..block.len() {
        if let Ok(decoded) = decode_block(&block[..cut]) {
            assert!(decoded.len() < slots.len(), "a cut block decodes to fewer slots");
            assert_eq!(decoded[..], slots[..decoded.len()], "a cut at a slot boundary keeps the slots before it");
        }
    }
    for i in 0..block.len() {
        for bit in 0..8 {
            let mut bad = block.clone();
            bad[i] ^= 1 << bit;
            let _ = decode_block(&bad);
        }
    }
    for _ in 0..2000 {
        let len = rng.below(64);
        let mut junk = vec![2u8];
        junk.extend((0..len).map(|_| rng.next_u64() as u8));
        let _ = decode_block(&junk);
    }
    assert!(decode_block(b"{}").is_err() && decode_block(b"").is_err());
}

/// Sum of key and value bytes of every listing record in the store.
fn listing_bytes(store: &MemoryStore) -> u64 {
    let mut total = 0;
    for prefix in [keys::history_prefix(PATH), keys::run_index_prefix(PATH)] {
        total += store.scan_prefix(&prefix).unwrap().iter().map(|(k, v)| (k.len() + v.len()) as u64).sum::<u64>();
    }
    total
}

/// Records `entries` in rounds of random sizes, reloading the bookkeeping now and then.
fn record_in_rounds(store: &MemoryStore, rng: &mut Rng, meta: &mut HistoryMeta, entries: &[HistoryEntry]) {
    let mut rest = entries;
    while !rest.is_empty() {
        let most = if rng.chance(10) { 100 } else { 4 };
        let take = (1 + rng.below(most)).min(rest.len());
        let mut batch = Batch::new();
        meta.record(PATH, &rest[..take], &mut batch).unwrap();
        store.write(&batch).unwrap();
        rest = &rest[take..];
        if rng.chance(20) {
            *meta = reload(store);
        }
    }
}

/// Every live entry, by its number, read back three ways: pages, lookups and `entry_at`.
fn check_listing(store: &MemoryStore, meta: &HistoryMeta, live: &BTreeMap<u64, HistoryEntry>) {
    let mut paged = Vec::new();
    let mut below = None;
    for _ in 0..10_000 {
        let page = history::page(store, PATH, below, 37).unwrap();
        paged.extend(page.iter().map(|e| (e.n, e.entry.clone())));
        match page.last() {
            Some(last) if page.len() == 37 => below = Some(last.n),
            _ => break,
        }
    }
    let want: Vec<(u64, HistoryEntry)> = live.iter().rev().map(|(n, e)| (*n, e.clone())).collect();
    assert_eq!(paged, want, "pages list every live entry, newest first");
    for n in 0..meta.next_n {
        assert_eq!(history::entry_at(store, PATH, n).unwrap().as_ref(), live.get(&n), "entry_at({n})");
    }
    for (n, e) in live {
        let found = history::entry_of(store, PATH, &e.version[0]).unwrap();
        if e.version.len() == 1 {
            assert_eq!(found, Some(*n), "entry_of({:?})", e.version);
        } else if let Some(m) = found {
            // A merge's version can repeat an id other versions list: any live holder will do.
            assert!(live[&m].version.contains(&e.version[0]), "entry_of({:?}) = {m}", e.version);
        }
    }
    assert_eq!(meta.bytes, listing_bytes(store), "the bookkeeping counts exactly what is stored");
}

#[test]
fn records_pages_and_lookups_agree_across_blocks_and_reloads() {
    for seed in 0..12 {
        let mut rng = Rng::new(seed);
        let store = MemoryStore::new();
        let mut meta = HistoryMeta::default();
        let count = 150 + rng.below(300);
        let entries = random_entries(&mut rng, count);
        record_in_rounds(&store, &mut rng, &mut meta, &entries);
        assert_eq!(meta.next_n, entries.len() as u64);
        let live: BTreeMap<u64, HistoryEntry> =
            entries.iter().cloned().enumerate().map(|(n, e)| (n as u64, e)).collect();
        check_listing(&store, &meta, &live);
        let blocks = store.scan_prefix(&keys::history_prefix(PATH)).unwrap().len();
        assert_eq!(blocks, entries.len().div_ceil(BLOCK_SLOTS), "full blocks of {BLOCK_SLOTS}, seed {seed}");
    }
}

#[test]
fn an_id_inside_a_write_or_unknown_is_not_listed() {
    let store = MemoryStore::new();
    let mut meta = HistoryMeta::default();
    let entry = |v: &str, ins: u64| HistoryEntry {
        version: vec![v.into()],
        parents: vec![],
        received_ms: 5,
        author: Author { agent: "a".into(), peer: None, principal: None },
        inserted: ins,
        deleted: 0,
        restored_from: None,
    };
    let mut batch = Batch::new();
    meta.record(PATH, &[entry("a-2", 3), entry("a-5", 3)], &mut batch).unwrap();
    store.write(&batch).unwrap();
    assert_eq!(history::entry_of(&store, PATH, "a-2").unwrap(), Some(0));
    assert_eq!(history::entry_of(&store, PATH, "a-5").unwrap(), Some(1));
    for id in ["a-1", "a-4", "a-6", "b-2", "a"] {
        assert_eq!(history::entry_of(&store, PATH, id).unwrap(), None, "{id}");
    }
}

/// The bookkeeping as a load reads it back from the store.
fn reload(store: &MemoryStore) -> HistoryMeta {
    let meta = store.get(&keys::meta(PATH)).unwrap();
    let newest = store.scan_prefix_rev(&keys::history_prefix(PATH), None, 1).unwrap().pop();
    HistoryMeta::from_stored(PATH, meta.as_deref(), newest.as_ref().map(|(k, v)| (k.as_slice(), v.as_slice()))).unwrap()
}

/// Adds to `batch` the removal of entries `drop`, reading their records the way a compaction
/// plan does.
fn drop_entries(store: &MemoryStore, meta: &mut HistoryMeta, drop: &[u64], batch: &mut Batch) {
    let stored = history::records_holding(store, PATH, drop).unwrap();
    meta.drop_entries(PATH, &stored, drop, batch).unwrap();
}

#[test]
fn records_are_extended_dropped_and_reloaded() {
    for seed in 0..8 {
        let mut rng = Rng::new(100 + seed);
        let store = MemoryStore::new();
        let mut meta = HistoryMeta::default();
        let entries = random_entries(&mut rng, 300);
        record_in_rounds(&store, &mut rng, &mut meta, &entries);
        let mut live: BTreeMap<u64, HistoryEntry> =
            entries.iter().cloned().enumerate().map(|(n, e)| (n as u64, e)).collect();
        check_listing(&store, &meta, &live);

        // Compaction drops: a prefix (whole blocks), then scattered ones. Twice, so the second
        // pass names entries already gone.
        for _ in 0..2 {
            let mut drop: Vec<u64> = (0..rng.below(150) as u64).collect();
            drop.extend((0..30).map(|_| rng.below(300) as u64));
            let mut batch = Batch::new();
            drop_entries(&store, &mut meta, &drop, &mut batch);
            meta.save(PATH, &mut batch).unwrap();
            store.write(&batch).unwrap();
            for n in &drop {
                live.remove(n);
            }
            check_listing(&store, &meta, &live);
        }

        // Writing on after the drop, and after a reload, keeps everything consistent.
        let more = random_entries_from(&mut rng, 100, 1 << 20);
        let first = meta.next_n;
        record_in_rounds(&store, &mut rng, &mut meta, &more);
        live.extend(more.into_iter().enumerate().map(|(i, e)| (first + i as u64, e)));
        let reloaded = reload(&store);
        assert_eq!((reloaded.next_n, reloaded.bytes), (meta.next_n, meta.bytes));
        check_listing(&store, &meta, &live);
    }
}

#[test]
fn dropping_every_entry_leaves_no_listing_record() {
    let mut rng = Rng::new(3);
    let store = MemoryStore::new();
    let mut meta = HistoryMeta::default();
    let entries = random_entries(&mut rng, 200);
    record_in_rounds(&store, &mut rng, &mut meta, &entries);
    let mut batch = Batch::new();
    let all: Vec<u64> = (0..200).collect();
    drop_entries(&store, &mut meta, &all, &mut batch);
    store.write(&batch).unwrap();
    assert_eq!((listing_bytes(&store), meta.bytes), (0, 0));
    assert!(history::page(&store, PATH, None, 10).unwrap().is_empty());
}
