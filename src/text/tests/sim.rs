//! A seeded multi-agent simulation: agents edit their own replicas (emoji, é, multi-patch,
//! deletes, negative bounds, old parents, whole-body replaces, version-less edits) and sync now
//! and then. It records every edit with explicit Version and Parents, in a causal order.

use super::*;
use crate::protocol::Bound;
use crate::text::Outcome;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One recorded edit, with its agent and seq span.
#[derive(Clone, Debug)]
pub(super) struct Rec {
    pub edit: Edit,
    pub agent: String,
    pub low: u64,
    pub last: u64,
}

pub(super) struct Sim {
    pub rng: StdRng,
    pub replicas: Vec<TextDoc>,
    /// Each replica's applied edits, in application order (a causal order).
    pub logs: Vec<Vec<usize>>,
    pub recs: Vec<Rec>,
    /// Every version some replica passed through.
    pub versions: Vec<VersionSet>,
}

const ALPHABET: &[&str] = &["a", "b", "x", "é", "😀", " ", "\n", "ß", "漢"];

fn agent_name(i: usize) -> String {
    ["alice", "bob-2", "c", "dave"][i % 4].to_string()
}

impl Sim {
    pub fn new(seed: u64, agents: usize) -> Sim {
        Sim {
            rng: StdRng::seed_from_u64(seed),
            replicas: (0..agents).map(|_| TextDoc::new()).collect(),
            logs: vec![Vec::new(); agents],
            recs: Vec::new(),
            versions: vec![VersionSet::root()],
        }
    }

    fn random_text(&mut self, max: usize) -> String {
        let n = self.rng.random_range(0..=max);
        (0..n).map(|_| ALPHABET[self.rng.random_range(0..ALPHABET.len())]).collect()
    }

    /// Random patches against a text of `len` chars (disjoint; maybe unsorted, maybe negative).
    fn random_patches(&mut self, len: usize) -> Vec<Patch> {
        let k = self.rng.random_range(1..=3);
        let mut pts: Vec<usize> = (0..2 * k).map(|_| self.rng.random_range(0..=len)).collect();
        pts.sort_unstable();
        let mut out = Vec::new();
        for pair in pts.chunks(2) {
            let (s, mut e) = (pair[0], pair[1]);
            if e - s > 4 || self.rng.random_bool(0.4) {
                e = s + (e - s).min(self.rng.random_range(0..=2));
            }
            let content = if self.rng.random_bool(0.25) { String::new() } else { self.random_text(4) };
            let bound = |rng: &mut StdRng, x: usize| {
                if rng.random_bool(0.2) {
                    Bound::FromEnd((len - x) as u64)
                } else {
                    Bound::FromStart(x as u64)
                }
            };
            let range = TextRange { start: bound(&mut self.rng, s), end: bound(&mut self.rng, e) };
            out.push(Patch { range, content });
        }
        let distinct = pts.chunks(2).zip(pts.chunks(2).skip(1)).all(|(a, b)| a[0] != b[0]);
        if distinct && self.rng.random_bool(0.3) {
            out.reverse();
        }
        out
    }

    /// Agent `i` makes one edit on its replica; returns false if it happened to be empty.
    pub fn local_edit(&mut self, i: usize) -> bool {
        let doc = &self.replicas[i];
        let agent = agent_name(i);
        // Mostly the replica's current version; sometimes one it passed through before.
        let parents = if self.rng.random_bool(0.2) && self.logs[i].len() > 1 {
            let j = self.rng.random_range(0..self.logs[i].len());
            let r = &self.recs[self.logs[i][j]];
            VersionSet::new([format!("{}-{}", r.agent, r.last)])
        } else {
            doc.version()
        };
        let len = doc.text_at(&parents).unwrap().chars().count();
        let next = doc.next_seq(&agent);
        let roll = self.rng.random_range(0..100);
        let (change, named) = if roll < 5 && len < 8 {
            (Change::Snapshot(self.random_text(5)), true)
        } else {
            (Change::Patches(self.random_patches(len)), roll >= 15)
        };
        let n = match &change {
            Change::Snapshot(b) => (len + b.chars().count()) as u64,
            Change::Patches(ps) => ps
                .iter()
                .map(|pt| {
                    let (s, e) = pt.range.resolve(len as u64).unwrap();
                    e - s + pt.content.chars().count() as u64
                })
                .sum(),
        };
        if n == 0 {
            return false;
        }
        let last = next + n - 1;
        let mut e = Edit {
            version: named.then(|| format!("{agent}-{last}")),
            fallback_agent: agent.clone(),
            parents: Some(parents),
            change,
        };
        let a = self.replicas[i].apply(e.clone()).unwrap();
        assert_eq!((a.outcome, a.added as u64), (Outcome::Fresh, n));
        assert_eq!(a.version, VersionSet::new([format!("{agent}-{last}")]));
        e.version = Some(format!("{agent}-{last}"));
        self.logs[i].push(self.recs.len());
        self.recs.push(Rec { edit: e, agent, low: next, last });
        self.versions.push(self.replicas[i].version());
        true
    }

    /// Replica `i` receives everything replica `j` has, in `j`'s order.
    pub fn sync(&mut self, i: usize, j: usize) {
        let log = self.logs[j].clone();
        for r in log {
            let a = self.replicas[i].apply(self.recs[r].edit.clone()).unwrap();
            if a.outcome == Outcome::Fresh {
                self.logs[i].push(r);
            }
        }
        self.versions.push(self.replicas[i].version());
    }

    /// `steps` random local edits with occasional syncs, then a full mesh sync.
    pub fn run(seed: u64, agents: usize, steps: usize) -> Sim {
        let mut sim = Sim::new(seed, agents);
        for _ in 0..steps {
            let i = sim.rng.random_range(0..agents);
            if sim.rng.random_bool(0.25) {
                let j = sim.rng.random_range(0..agents);
                if i != j {
                    sim.sync(i, j);
                }
            } else {
                sim.local_edit(i);
            }
        }
        for _ in 0..2 {
            for i in 0..agents {
                for j in 0..agents {
                    if i != j {
                        sim.sync(i, j);
                    }
                }
            }
        }
        sim
    }
}
