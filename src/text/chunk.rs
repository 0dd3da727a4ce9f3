//! A hand-built `DMNDTYPS` chunk adding one run of events at explicit seqs (the layout is
//! `docs/DIAMOND-TYPES.md` §2.3, "DT-FACTS").
//!
//! diamond-types 1.0.0 can only add events at "the agent's highest known seq + 1"
//! (`add_operations_at`). Two callers need explicit seqs: compaction, which re-adds every event
//! after the horizon with its original agent and seq, and `apply`, when an agent whose earlier
//! events were all pruned continues above its pruned range. Both encode the run here and hand
//! the bytes to `OpLog::decode_and_add`, which accepts arbitrary seqs.

use diamond_types::list::operation::{OpKind, Operation};

/// One run to add: one agent, contiguous seqs `seq..seq + len`, each event the parent of the
/// next; the first event's parents are `parents` (remote ids, all known to the target log, or
/// empty for the root). `ops` are read as `add_operations_at` reads them: each against the
/// document left by the previous one.
#[derive(Clone, Debug)]
pub(super) struct Run {
    pub agent: String,
    pub seq: usize,
    pub len: usize,
    pub parents: Vec<(String, usize)>,
    pub ops: Vec<Operation>,
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn mix(v: u64, bit: bool) -> u64 {
    v * 2 + u64::from(bit)
}

fn zigzag(v: i64) -> u64 {
    mix(v.unsigned_abs(), v < 0)
}

fn chunk(out: &mut Vec<u8>, kind: u64, body: &[u8]) {
    varint(out, kind);
    varint(out, body.len() as u64);
    out.extend_from_slice(body);
}

/// DT's `write_op` (encode_oplog.rs), against a cursor starting at 0.
fn write_op(out: &mut Vec<u8>, op: &Operation, cursor: &mut usize) {
    let (len, del) = ((op.end() - op.start()) as u64, op.kind == OpKind::Del);
    let fwd = op.loc.fwd || len == 1;
    let from = if del && !fwd { op.end() } else { op.start() };
    let diff = from as i64 - *cursor as i64;
    *cursor = if !del && fwd { op.end() } else { op.start() };
    let n = match (len != 1, del) {
        (true, true) => mix(len, fwd),
        (true, false) => len,
        (false, _) => zigzag(diff),
    };
    varint(out, mix(mix(mix(n, del), diff != 0), len != 1));
    if len != 1 && diff != 0 {
        varint(out, zigzag(diff));
    }
}

/// A `DMNDTYPS` chunk adding `run` with its explicit agent, seqs and parents (DT-FACTS §2.3).
pub(super) fn encode_run(run: &Run) -> Vec<u8> {
    let mut names = vec![run.agent.as_str()];
    for (a, _) in &run.parents {
        if !names.contains(&a.as_str()) {
            names.push(a);
        }
    }
    let (mut agents, mut info, mut patches) = (Vec::new(), Vec::new(), Vec::new());
    for n in &names {
        varint(&mut agents, n.len() as u64);
        agents.extend_from_slice(n.as_bytes());
    }
    chunk(&mut info, 3, &agents);
    let ins: Vec<&Operation> = run.ops.iter().filter(|op| op.kind == OpKind::Ins).collect();
    if !ins.is_empty() {
        let (mut text, mut known, mut content) = (vec![4u8], Vec::new(), vec![0u8]);
        for op in &ins {
            text.extend_from_slice(op.content_as_str().unwrap_or("").as_bytes());
            varint(&mut known, mix((op.end() - op.start()) as u64, op.content.is_some()));
        }
        chunk(&mut content, 13, &text);
        chunk(&mut content, 25, &known);
        chunk(&mut patches, 24, &content);
    }
    let mut body = Vec::new();
    varint(&mut body, mix(1, run.seq != 0));
    varint(&mut body, run.len as u64);
    if run.seq != 0 {
        varint(&mut body, zigzag(run.seq as i64));
    }
    chunk(&mut patches, 21, &std::mem::take(&mut body));
    let mut cursor = 0;
    for p in &run.ops {
        write_op(&mut body, p, &mut cursor);
    }
    chunk(&mut patches, 22, &std::mem::take(&mut body));
    varint(&mut body, run.len as u64);
    if run.parents.is_empty() {
        varint(&mut body, 1);
    }
    for (k, (a, seq)) in run.parents.iter().enumerate() {
        let file_agent = names.iter().position(|n| n == a).unwrap_or(0) as u64 + 1;
        varint(&mut body, mix(mix(file_agent, k + 1 < run.parents.len()), true));
        varint(&mut body, *seq as u64);
    }
    chunk(&mut patches, 23, &body);
    let mut out = b"DMNDTYPS\0".to_vec();
    chunk(&mut out, 1, &info);
    chunk(&mut out, 10, &[]);
    chunk(&mut out, 20, &patches);
    out
}
