//! Persistence: snapshots, chained deltas, and corrupted bytes (never a panic, never a change).

use super::sim::Sim;
use super::*;
use crate::text::TextError;

fn same(a: &TextDoc, b: &TextDoc) {
    assert_eq!(a.text(), b.text());
    assert_eq!(a.version(), b.version());
    assert_eq!(a.event_count(), b.event_count());
    assert_eq!(a.next_seq, b.next_seq);
}

#[test]
fn snapshot_round_trip() {
    for seed in 0..10 {
        let sim = Sim::run(3000 + seed, 3, 30);
        let doc = &sim.replicas[0];
        let bytes = doc.encode_full();
        let loaded = TextDoc::decode_full(&bytes).unwrap();
        same(doc, &loaded);
        assert_consistent(&loaded);
        // The loaded doc keeps numbering: the next write continues each agent's seqs.
        let mut loaded = loaded;
        let next = loaded.next_seq("alice");
        let a = put(&mut loaded, &format!("alice-{next}"), &[], vec![p(0, 0, "z")]);
        assert_eq!(a.outcome, crate::text::Outcome::Fresh);
    }
}

#[test]
fn chained_deltas_rebuild_the_document() {
    for seed in 0..10 {
        let mut sim = Sim::new(4000 + seed, 3);
        let mut mirror = TextDoc::new();
        let mut log: Vec<Vec<u8>> = Vec::new();
        for step in 0..40 {
            let before = sim.replicas[0].version();
            let i = step % 3;
            if step % 5 == 4 {
                sim.sync(0, 1 + step % 2);
            } else if !sim.local_edit(i) || i != 0 {
                continue;
            }
            let delta = sim.replicas[0].encode_since(&before).unwrap();
            mirror.apply_encoded(&delta).unwrap();
            same(&sim.replicas[0], &mirror);
            log.push(delta);
        }
        assert_consistent(&mirror);
        // Replaying the whole log into a fresh document gives the same result.
        let mut replay = TextDoc::new();
        for d in &log {
            replay.apply_encoded(d).unwrap();
        }
        same(&sim.replicas[0], &replay);
        // Snapshot then apply a full snapshot again: duplicates are filtered by DT.
        replay.apply_encoded(&sim.replicas[0].encode_full()).unwrap();
        same(&sim.replicas[0], &replay);
    }
}

/// Replays `files` (a round's delta) onto `mirror`, in order.
fn add_all(mirror: &mut TextDoc, files: &[Vec<u8>]) {
    for f in files {
        mirror.apply_encoded(f).unwrap();
    }
}

#[test]
fn round_deltas_from_recorded_runs_rebuild_the_document() {
    for seed in 0..20 {
        let mut sim = Sim::new(7000 + seed, 3);
        let mut mirror = TextDoc::new();
        let mut log: Vec<Vec<u8>> = Vec::new();
        let mut multi_file_rounds = 0;
        for round in 0..30 {
            let before = sim.replicas[0].version();
            let written_before = sim.logs[0].len();
            // A round: one to four writes reach replica 0, its own or synced from others
            // (concurrent, with parents the other agents saw).
            for k in 0..1 + round % 4 {
                match (round + k) % 3 {
                    0 => sim.sync(0, 1 + k % 2),
                    _ => {
                        sim.local_edit(0);
                    }
                }
            }
            let written = sim.logs[0].len() - written_before;
            if written == 0 {
                continue;
            }
            let files = sim.replicas[0].take_delta_since(&before).unwrap();
            // One file per write: the recorded runs, not `encode_from`'s single file.
            assert_eq!(files.len(), written, "seed {seed} round {round}");
            multi_file_rounds += usize::from(written > 1);
            add_all(&mut mirror, &files);
            same(&sim.replicas[0], &mirror);
            log.extend(files);
        }
        assert!(multi_file_rounds > 0, "seed {seed}: no round applied several writes");
        // Loading the whole log as a stored document gives the same document.
        let refs: Vec<&[u8]> = log.iter().map(Vec::as_slice).collect();
        let loaded = TextDoc::decode_stored(None, &refs).unwrap();
        same(&sim.replicas[0], &loaded);
        assert_consistent(&loaded);
    }
}

#[test]
fn round_deltas_cover_partial_retries_and_fall_back_when_events_came_another_way() {
    let mut doc = hello("a");
    let mut mirror = TextDoc::new();
    add_all(&mut mirror, &doc.take_delta_since(&VersionSet::root()).unwrap());
    same(&doc, &mirror);
    // A partial retry: b-2 is known, b-4 adds its last two events on top of b-2.
    put(&mut doc, "b-2", &["a-4"], vec![p(5, 5, "xyz")]);
    let a = doc.apply(edit("b-4", &["a-4"], Change::Patches(vec![p(5, 5, "xyzuv")]))).unwrap();
    assert_eq!(a.outcome, crate::text::Outcome::Partial);
    let files = doc.take_delta_since(&vs(&["a-4"])).unwrap();
    assert_eq!(files.len(), 2);
    add_all(&mut mirror, &files);
    same(&doc, &mirror);
    // Events added as bytes are not recorded runs: the next delta is diamond-types' own.
    let before = doc.version();
    let mut other = doc.clone();
    put(&mut other, "c-1", &["b-4"], vec![p(0, 0, "é😀")]);
    doc.apply_encoded(&other.encode_since(&before).unwrap()).unwrap();
    put(&mut doc, "d-0", &["c-1"], vec![p(1, 2, "")]);
    let files = doc.take_delta_since(&before).unwrap();
    assert_eq!(files.len(), 1);
    add_all(&mut mirror, &files);
    same(&doc, &mirror);
    // A delta from a version other than the last one's end is diamond-types' own too.
    put(&mut doc, "e-0", &["d-0"], vec![p(0, 0, "q")]);
    let files = doc.take_delta_since(&vs(&["a-4"])).unwrap();
    assert_eq!(files.len(), 1);
    let mut fresh = hello("a");
    add_all(&mut fresh, &files);
    same(&doc, &fresh);
}

/// Writers that never see each other's writes (each parented on its own previous one), their
/// writes arriving interleaved: the shape of B8's independent writers (docs/BENCHMARKS.md).
fn independent_writers(writers: usize, rounds: usize) -> (TextDoc, Vec<Vec<u8>>) {
    let mut doc = TextDoc::new();
    let mut deltas = Vec::new();
    for round in 0..rounds {
        for w in 0..writers {
            let before = doc.version();
            let parents = if round == 0 { Vec::new() } else { vec![format!("w{w}-{}", 2 * round - 1)] };
            let parents: Vec<&str> = parents.iter().map(String::as_str).collect();
            put(&mut doc, &format!("w{w}-{}", 2 * round + 1), &parents, vec![p(0, 0, "xy")]);
            deltas.extend(doc.take_delta_since(&before).unwrap());
        }
    }
    (doc, deltas)
}

#[test]
fn a_stored_log_of_concurrent_writes_loads_in_walk_order() {
    let (writers, rounds) = (8, 20);
    let (doc, deltas) = independent_writers(writers, rounds);
    // The written log numbers the writes in arrival order: one history run per write.
    assert_eq!(doc.oplog.iter_history().count(), writers * rounds);
    for split in [0, deltas.len() / 2, deltas.len()] {
        // A snapshot of the first writes (in walk order: diamond-types' encoding), the rest as
        // deltas.
        let mut first = TextDoc::new();
        for d in &deltas[..split] {
            first.apply_encoded(d).unwrap();
        }
        let snapshot = (split > 0).then(|| first.encode_full());
        let rest: Vec<&[u8]> = deltas[split..].iter().map(Vec::as_slice).collect();
        let loaded = TextDoc::decode_stored(snapshot.as_deref(), &rest).unwrap();
        same(&doc, &loaded);
        assert_consistent(&loaded);
        // Loaded in walk order: each writer's writes in one stretch, one history run each, so
        // a checkout walks each branch once instead of switching branches at every write.
        assert_eq!(loaded.oplog.iter_history().count(), writers, "snapshot of {split} writes");
    }
}

fn small_doc() -> TextDoc {
    // Under 20 inserted chars: no LZ4 chunk, so CRC-fixed corruptions cannot ask for huge buffers.
    let mut doc = hello("a");
    put(&mut doc, "b-2", &["a-4"], vec![p(0, 1, "H"), p(5, 5, "!")]);
    put(&mut doc, "c-0", &["a-4"], vec![p(2, 2, "é")]);
    doc
}

fn fix_crc(bytes: &mut [u8]) {
    let n = bytes.len();
    let crc = crate::text::codec::crc32c(&bytes[..n - 6]);
    bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn corrupted_bytes_are_refused_and_change_nothing() {
    let src = small_doc();
    let snapshot = src.encode_full();
    let delta = src.encode_since(&vs(&["a-4"])).unwrap();
    let mut base = hello("a");
    let before = base.encode_full();
    for bytes in [&snapshot, &delta] {
        let mut cases: Vec<Vec<u8>> = (0..bytes.len()).map(|n| bytes[..n].to_vec()).collect();
        for i in 0..bytes.len() {
            for m in [0x01u8, 0x80, 0xFF] {
                let mut b = bytes.clone();
                b[i] ^= m;
                cases.push(b);
            }
        }
        for c in &cases {
            let e = TextDoc::decode_full(c).unwrap_err();
            assert!(matches!(e, TextError::CorruptEncoding(_)), "{e:?}");
            assert!(base.apply_encoded(c).is_err());
            assert_eq!(base.encode_full(), before);
        }
    }
    base.apply_encoded(&delta).unwrap();
    same(&base, &src);
}

#[test]
fn crc_valid_garbage_never_panics_out_or_half_applies() {
    let src = small_doc();
    let delta = src.encode_since(&vs(&["a-4"])).unwrap();
    let mut base = hello("a");
    let before = base.encode_full();
    let (mut ok, mut err) = (0, 0);
    for i in 0..delta.len() - 6 {
        for m in [0x01u8, 0x80, 0xFF] {
            let mut b = delta.clone();
            b[i] ^= m;
            fix_crc(&mut b);
            let mut target = base.clone();
            match target.apply_encoded(&b) {
                Ok(()) => ok += 1,
                Err(_) => {
                    err += 1;
                    assert_eq!(target.encode_full(), before, "a failed apply changed the doc");
                }
            }
            let _ = TextDoc::decode_full(&b);
        }
    }
    assert!(err > 0 && ok + err == 3 * (delta.len() - 6));
    base.apply_encoded(&delta).unwrap();
    same(&base, &src);
}

#[test]
fn encode_since_unknown_version_is_an_error() {
    let doc = small_doc();
    assert_eq!(doc.encode_since(&vs(&["zz-1"])).unwrap_err().code(), "unknown_version");
    // A delta whose base the target lacks is refused and changes nothing.
    let delta = doc.encode_since(&vs(&["b-2"])).unwrap();
    let mut other = hello("a");
    assert!(other.apply_encoded(&delta).is_err());
    assert_eq!(other.text(), "hello");
}
