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
