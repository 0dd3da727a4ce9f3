//! Compaction with a merge horizon: random concurrent histories compacted at valid horizons
//! (merge versions, linear ones, empty text, the current version) must keep every later text,
//! id and merge result; invalid horizons are refused; `~` agents are reserved.

use super::sim::Sim;
use super::*;
use crate::text::{pruned_contains, EventId, Outcome, TextError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SEEDS: u64 = 24;
const AGENTS: [&str; 4] = ["alice", "bob-2", "c", "dave"];

fn ids(doc: &TextDoc) -> Vec<String> {
    let mut out = Vec::new();
    for (agent, &next) in &doc.next_seq {
        out.extend((0..next).map(|s| format!("{agent}-{s}")));
    }
    out.sort();
    out
}

/// A random history whose middle version (returned) is a valid horizon of kind `kind`:
/// 0 = the version after a full sync (often a merge), 1 = one agent's edits on top of it, 2 =
/// empty text. After it come random concurrent edits whose parents all include it.
fn history(seed: u64, kind: u64) -> (TextDoc, VersionSet) {
    let mut sim = Sim::run(seed, 3, 25);
    if kind == 1 {
        sim.local_edit(0);
        sim.local_edit(0);
    }
    let mut doc = sim.replicas[0].clone();
    if kind == 2 {
        let e = edit("unused-0", &[], Change::Snapshot(String::new()));
        doc.apply(Edit { version: None, fallback_agent: "alice".into(), parents: None, ..e }).unwrap();
    }
    let h = doc.version();
    let agents = AGENTS.map(String::from);
    let mut versions = vec![h.clone()];
    for _ in 0..20 {
        let e = random_edit(&mut sim.rng, &doc, &versions, &agents);
        versions.push(doc.apply(e).unwrap().version);
    }
    (doc, h)
}

/// A random edit by one of `agents` continuing its seqs, with parents drawn from `versions`
/// (or their union, or the current version). Positions cluster at 0, the middle and the end,
/// so that concurrent inserts collide.
fn random_edit(rng: &mut StdRng, a: &TextDoc, versions: &[VersionSet], agents: &[String]) -> Edit {
    let agent = &agents[rng.random_range(0..agents.len())];
    let parents = match rng.random_range(0..4) {
        0 => None,
        1 if versions.len() > 1 => {
            let (x, y) = (rng.random_range(0..versions.len()), rng.random_range(0..versions.len()));
            Some(a.union(&versions[x], &versions[y]).unwrap())
        }
        _ => versions.get(rng.random_range(0..versions.len().max(1))).cloned(),
    };
    let len = match &parents {
        Some(p) => a.text_at(p).unwrap().chars().count() as u64,
        None => a.len_chars() as u64,
    };
    let at = [0, len / 2, len, rng.random_range(0..=len)][rng.random_range(0..4)];
    let del = if at < len && rng.random_bool(0.3) { rng.random_range(1..=(len - at).min(3)) } else { 0 };
    let ins = ["x", "yz", "é", "😀q", ""][rng.random_range(0..if del > 0 { 5 } else { 4 })];
    let last = a.next_seq(agent) + del + ins.chars().count() as u64 - 1;
    // One edit in five names no Version: the server numbers it from `next_seq`.
    let version = (!rng.random_bool(0.2)).then(|| format!("{agent}-{last}"));
    Edit { version, fallback_agent: agent.clone(), parents, change: Change::Patches(vec![p(at, at + del, ins)]) }
}

/// Applies the same random concurrent edits to `a` (original) and `b` (compacted), with parents
/// drawn from `versions` or the current version, and checks they agree after every step.
/// `rename` = (horizon, base version): how `b` names the horizon.
type Rename<'a> = Option<(&'a VersionSet, &'a VersionSet)>;
fn converge(
    rng: &mut StdRng,
    a: &mut TextDoc,
    b: &mut TextDoc,
    mut versions: Vec<VersionSet>,
    agents: &[String],
    rename: Rename,
) {
    for step in 0..25 {
        let e = random_edit(rng, a, &versions, agents);
        let agent = e.version.as_deref().map_or(e.fallback_agent.clone(), |v| EventId::parse(v).unwrap().agent);
        assert_eq!(a.next_seq(&agent), b.next_seq(&agent), "{agent}");
        let mut eb = e.clone();
        if let (Some((h, base)), Some(p)) = (rename, &mut eb.parents) {
            if p == h {
                *p = base.clone();
            }
        }
        let (x, y) = (a.apply(e).unwrap(), b.apply(eb).unwrap());
        assert_eq!((x.outcome, &x.version), (Outcome::Fresh, &y.version));
        assert_eq!(a.text(), b.text(), "step {step}");
        assert_eq!(a.version(), b.version(), "step {step}");
        versions.push(x.version);
    }
    assert_consistent(b);
}

#[test]
fn compaction_keeps_later_history_and_merges() {
    let mut rng = StdRng::seed_from_u64(7);
    let mut seen = [0usize; 4]; // [multi-id horizons, single-id, empty text, current version]
    let mut continued = 0; // fully pruned agents that wrote again
    for seed in 0..SEEDS {
        let (doc, mid) = history(5000 + seed, seed % 3);
        let all = ids(&doc);
        for (k, h) in [mid, doc.version()].into_iter().enumerate() {
            assert!(doc.is_valid_horizon(&h).unwrap(), "seed {seed} {h:?}");
            assert_eq!(doc.latest_valid_horizon_at_or_before(&h).unwrap(), h, "seed {seed}");
            let before = doc.encode_full();
            let c = doc.compact(&h, "~h1").unwrap();
            assert_eq!(doc.encode_full(), before);
            let base_text = doc.text_at(&h).unwrap();
            seen[0] += usize::from(h.ids().len() > 1);
            seen[1] += usize::from(h.ids().len() == 1);
            seen[2] += usize::from(base_text.is_empty());
            seen[3] += k;
            assert_eq!(c.base_version.is_empty(), base_text.is_empty());
            let (d, n_base) = (&c.doc, base_text.chars().count());
            assert_consistent(d);
            assert_eq!(d.text(), doc.text(), "seed {seed}");
            let expected = if doc.version() == h { c.base_version.clone() } else { doc.version() };
            assert_eq!(d.version(), expected, "seed {seed}");
            // Every original event: pruned iff in the horizon's history; else same text there.
            let mut post = Vec::new();
            for id in &all {
                let v = vs(&[id]);
                let before_h = doc.contains(&h, &v).unwrap();
                assert_eq!(pruned_contains(&c.pruned, id), before_h, "seed {seed} {id}");
                if before_h {
                    assert_eq!(d.check_known(&v).unwrap_err().code(), "unknown_version");
                } else {
                    assert_eq!(d.text_at(&v).unwrap(), doc.text_at(&v).unwrap(), "seed {seed} {id}");
                    post.push(v);
                }
            }
            // An agent's kept events all come after its pruned ones: the pruned events are the
            // local-time prefix up to the horizon, and an agent's seqs rise with local time.
            for id in post.iter().flat_map(|v| v.ids()) {
                let id = EventId::parse(id).unwrap();
                assert!(c.pruned.iter().all(|(a, r)| *a != id.agent || r.end <= id.seq), "seed {seed} {id}");
            }
            for agent in AGENTS {
                assert_eq!(d.next_seq(agent), doc.next_seq(agent), "seed {seed} {agent}");
            }
            let pruned: u64 = c.pruned.iter().map(|(_, r)| r.end - r.start).sum();
            assert_eq!(pruned as usize + post.len(), all.len());
            assert_eq!(d.event_count(), n_base + post.len());
            for v in post.iter().step_by(5) {
                let mut want = doc.history_since(v, &doc.version()).unwrap();
                for u in want.iter_mut().filter(|u| u.parents == h) {
                    u.parents = c.base_version.clone();
                }
                assert_eq!(d.history_since(v, &d.version()).unwrap(), want, "seed {seed}");
            }
            let bytes = d.encode_full();
            let mut back = TextDoc::decode_full(&bytes).unwrap();
            assert_eq!((back.text(), back.version(), &back.next_seq), (d.text(), d.version(), &d.next_seq));
            back.set_pruned(&c.pruned);
            assert_eq!(back.pruned, d.pruned, "seed {seed}");
            if pruned as usize > n_base {
                assert!(bytes.len() < before.len(), "seed {seed}: {} >= {}", bytes.len(), before.len());
            }
            // Later concurrent edits: agents with events after the horizon continue their
            // seqs, so do agents whose events were all pruned, new agents start at 0; both
            // documents must agree after every step.
            let mut agents: Vec<String> = ["erin", "f"].map(String::from).to_vec();
            agents.extend(AGENTS.iter().filter(|a| doc.next_seq(a) > 0).map(|a| a.to_string()));
            let gone: Vec<&String> = agents.iter().filter(|a| d.next_seq(a) > 0 && d.known_next_seq(a) == 0).collect();
            let (mut a, mut b) = (doc.clone(), c.doc.clone());
            post.push(h.clone());
            converge(&mut rng, &mut a, &mut b, post, &agents, Some((&h, &c.base_version)));
            continued += gone.iter().filter(|a| b.known_next_seq(a) > doc.next_seq(a)).count();
        }
    }
    assert!(seen.iter().all(|&n| n >= 6), "coverage too thin: {seen:?}");
    assert!(continued >= 20, "only {continued} fully pruned agents wrote again");
}

/// Brute force: `h` is valid iff every event outside its history descends from all of it.
fn valid_by_definition(doc: &TextDoc, h: &VersionSet, all: &[String]) -> bool {
    all.iter().map(|id| vs(&[id])).all(|v| doc.contains(h, &v).unwrap() || doc.contains(&v, h).unwrap())
}

#[test]
fn horizon_checks_match_the_definition() {
    let mut valid = 0;
    for seed in 0..SEEDS {
        let sim = Sim::run(6000 + seed, 3, 30);
        let doc = sim.replicas[0].clone();
        let all = ids(&doc);
        let mut cands: Vec<VersionSet> = all.iter().map(|id| vs(&[id])).collect();
        cands.extend(sim.versions.iter().filter(|v| doc.check_known(v).is_ok()).cloned());
        let ok: Vec<&VersionSet> = cands.iter().filter(|h| valid_by_definition(&doc, h, &all)).collect();
        for h in &cands {
            let is_valid = ok.contains(&h);
            assert_eq!(doc.is_valid_horizon(h).unwrap(), is_valid, "seed {seed} {h:?}");
            valid += usize::from(is_valid && !h.is_empty());
            if !is_valid {
                assert_eq!(doc.compact(h, "~h").unwrap_err().code(), "invalid_horizon", "seed {seed}");
            }
            // The latest valid horizon within `h`: valid, within `h`, and no valid candidate
            // lies strictly between it and `h` (valid horizons are nested prefixes).
            let got = doc.latest_valid_horizon_at_or_before(h).unwrap();
            assert!(doc.contains(h, &got).unwrap() && valid_by_definition(&doc, &got, &all), "seed {seed}");
            for w in &ok {
                let between = doc.contains(h, w).unwrap() && !doc.contains(&got, w).unwrap();
                assert!(!between, "seed {seed}: {w:?} is valid, within {h:?}, later than {got:?}");
            }
        }
    }
    assert!(valid >= 50, "only {valid} valid horizons");
}

#[test]
fn invalid_horizons_are_refused_and_change_nothing() {
    let mut doc = hello("a");
    put(&mut doc, "b-0", &["a-2"], vec![p(0, 0, "B")]);
    put(&mut doc, "c-0", &["a-4"], vec![p(5, 5, "!")]);
    let before = doc.encode_full();
    // b-0 forks from a-2, so a-4 does not dominate it (nor does c-0, which b-0 is concurrent with).
    for h in [vs(&["a-4"]), vs(&["c-0"]), vs(&["a-3"]), vs(&["b-0"])] {
        let e = doc.compact(&h, "~h1").unwrap_err();
        assert_eq!(e.code(), "invalid_horizon", "{h:?}");
        assert!(e.to_string().contains("neither in its history nor after all of it"), "{e}");
        assert!(!doc.is_valid_horizon(&h).unwrap());
    }
    assert_eq!(doc.compact(&vs(&["a-9"]), "~h1").unwrap_err(), TextError::UnknownVersion(vs(&["a-9"])));
    assert_eq!(doc.is_valid_horizon(&vs(&["q-0"])).unwrap_err().code(), "unknown_version");
    for bad in ["h1", "~".repeat(50).as_str()] {
        assert_eq!(doc.compact(&vs(&["a-2"]), bad).unwrap_err().code(), "invalid_agent", "{bad}");
    }
    assert_eq!(doc.encode_full(), before);
    // a-2 and the merge of everything are valid; the latest one within a-4 is a-2.
    assert_eq!(doc.latest_valid_horizon_at_or_before(&vs(&["a-4"])).unwrap(), vs(&["a-2"]));
    let c = doc.compact(&vs(&["a-2"]), "~h1").unwrap();
    assert_eq!((c.doc.text(), c.base_version.clone()), (doc.text(), vs(&["~h1-2"])));
    assert_eq!(c.pruned, vec![("a".to_string(), 0..3)]);
    assert!(pruned_contains(&c.pruned, "a-0") && !pruned_contains(&c.pruned, "a-3"));
    assert!(!pruned_contains(&c.pruned, "a") && !pruned_contains(&c.pruned, "b-0"));
    // The base agent must not already name events; compacting again needs a fresh one.
    let tip = vs(&["b-0", "c-0"]);
    let e = c.doc.compact(&tip, "~h1").unwrap_err();
    assert_eq!(
        e,
        TextError::InvalidAgent { agent: "~h1".into(), reason: "the base agent already names events in this document" }
    );
    let again = c.doc.compact(&tip, "~h2").unwrap();
    assert_eq!((again.doc.text(), again.doc.event_count()), (doc.text(), 7));
    assert_eq!(again.pruned.len(), 4); // ~h1-0..2, the rest of a, b-0, c-0.
}

#[test]
fn tilde_agents_are_refused_by_apply() {
    let mut doc = hello("a");
    let before = doc.encode_full();
    let e = doc.apply(edit("~h1-0", &["a-4"], Change::Patches(vec![p(0, 0, "x")]))).unwrap_err();
    assert_eq!(e.code(), "invalid_agent");
    assert!(e.to_string().contains("agent names starting with ~ are reserved for the server"), "{e}");
    let mut e = edit("x-0", &["a-4"], Change::Patches(vec![p(0, 0, "x")]));
    e.version = None;
    e.fallback_agent = "~".into();
    assert_eq!(doc.apply(e).unwrap_err().code(), "invalid_agent");
    assert_eq!(doc.encode_full(), before);
}

/// "QaxybZ" with Q, x, y and Z deleted before the horizon: every gap of "ab" holds tombstones
/// that the compacted document does not have.
fn tombstones() -> (TextDoc, VersionSet, crate::text::Compacted) {
    let mut doc = TextDoc::new();
    put_body(&mut doc, "w-5", &[], "QaxybZ");
    put(&mut doc, "w-9", &["w-5"], vec![p(0, 1, ""), p(2, 4, ""), p(5, 6, "")]);
    let h = doc.version();
    let c = doc.compact(&h, "~t").unwrap();
    assert_eq!((c.doc.text(), c.doc.event_count()), ("ab".to_string(), 2));
    (doc, h, c)
}

#[test]
fn inserts_next_to_pruned_tombstones_merge_alike() {
    let agents = ["m", "b", "zz", "a", "v"].map(String::from);
    for seed in 0..40 {
        let (mut a, _, c) = tombstones();
        let mut b = c.doc;
        converge(&mut StdRng::seed_from_u64(seed), &mut a, &mut b, Vec::new(), &agents, None);
    }
}

/// Clients that read the compacted document name the base version (as parents, or to read):
/// it must stand for the horizon, including for edits concurrent with everything after it.
#[test]
fn base_version_stands_for_the_horizon() {
    let agents = ["m", "b", "zz", "a", "v"].map(String::from);
    for seed in 0..40 {
        let (mut a, h, c) = tombstones();
        assert_eq!(c.doc.text_at(&c.base_version).unwrap(), "ab");
        let mut b = c.doc.clone();
        converge(
            &mut StdRng::seed_from_u64(seed),
            &mut a,
            &mut b,
            vec![h.clone()],
            &agents,
            Some((&h, &c.base_version)),
        );
    }
    for seed in 0..SEEDS / 4 {
        let (doc, h) = history(7000 + seed, seed % 3);
        let c = doc.compact(&h, "~h1").unwrap();
        assert_eq!(c.doc.text_at(&c.base_version).unwrap(), doc.text_at(&h).unwrap());
        let agents: Vec<String> = AGENTS.iter().filter(|a| c.doc.next_seq(a) > 0).map(|a| a.to_string()).collect();
        let (mut a, mut b) = (doc.clone(), c.doc.clone());
        converge(
            &mut StdRng::seed_from_u64(seed),
            &mut a,
            &mut b,
            vec![h.clone()],
            &agents,
            Some((&h, &c.base_version)),
        );
    }
    let (_, _, c) = tombstones();
    let again = c.doc.compact(&c.base_version, "~t2").unwrap();
    assert_eq!((again.doc.text(), again.base_version), ("ab".to_string(), vs(&["~t2-1"])));
    assert_eq!(again.pruned, vec![("~t".to_string(), 0..2)]);
}
