//! The remembered lengths (`lengths.rs`) agree with the real text at every version clients
//! name as Parents: each PUT's own version and every tip, under concurrent chains with
//! deletes, emoji and partial retries.

use super::{edit, p};
use crate::protocol::VersionSet;
use crate::text::frontier::to_local;
use crate::text::{Change, TextDoc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[test]
fn remembered_lengths_match_checked_out_texts() {
    for seed in 0..5u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut doc = TextDoc::new();
        let agents = ["a", "b", "c"];
        let mut last: Vec<VersionSet> = vec![VersionSet::new(Vec::<String>::new()); agents.len()];
        let mut seen: Vec<VersionSet> = Vec::new();
        for _ in 0..120 {
            let k = rng.random_range(0..agents.len());
            // Mostly the agent's own chain (long concurrent branches), sometimes the tip.
            let parents = if rng.random_ratio(1, 4) { doc.version() } else { last[k].clone() };
            let len = doc.text_at(&parents).unwrap().chars().count() as u64;
            let start = rng.random_range(0..=len);
            let end = (start + rng.random_range(0..3)).min(len);
            let content = ["x", "😀é", "", "yz"][rng.random_range(0..4)];
            if start == end && content.is_empty() {
                continue;
            }
            let chars = content.chars().count() as u64 + (end - start);
            let agent = agents[k];
            let seq = doc.next_seq(agent) + chars - 1;
            let ids: Vec<&str> = parents.ids().iter().map(String::as_str).collect();
            let e = edit(&format!("{agent}-{seq}"), &ids, Change::Patches(vec![p(start, end, content)]));
            let applied = doc.apply(e).unwrap();
            last[k] = applied.version.clone();
            seen.push(applied.version);
            seen.push(doc.version());
        }
        // A copy with nothing remembered computes every length from history instead.
        let fresh = TextDoc::decode_full(&doc.encode_full()).unwrap();
        for v in &seen {
            let lv = to_local(&doc.oplog, v).unwrap();
            let truth = doc.text_at(v).unwrap().chars().count();
            assert_eq!(doc.len_at_local(&lv).unwrap(), truth, "seed {seed}, version {v:?}");
            let fresh_lv = to_local(&fresh.oplog, v).unwrap(); // local times differ per log
            assert_eq!(fresh.len_at_local(&fresh_lv).unwrap(), truth, "seed {seed}, version {v:?} (recomputed)");
        }
        assert!(doc.lengths.get(&to_local(&doc.oplog, &seen[0]).unwrap()).is_some(), "seed {seed}: nothing remembered");
    }
}
