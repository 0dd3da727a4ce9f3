//! The in-process reference of benchmark B2: a concurrent editing trace replayed with raw
//! diamond-types, the work any CRDT server must at least do for the same trace.
//!
//! It lives here because only `src/text` may use diamond-types. It is deliberately not built
//! on [`TextDoc`](super::TextDoc): the point is the bare engine cost (one
//! `add_operations_at(agent, parents, ops)` per transaction, then `branch.merge` to keep the
//! text current, as a server must after every write), without Plait's validation, numbering
//! bookkeeping or encoding. Sequential traces have their own reference elsewhere.
//!
//! Timing: the wall clock is read here; CPU time needs `/proc` or a syscall, and this module
//! does no I/O, so the caller passes its thread's CPU clock in.

use std::time::{Duration, Instant};

use diamond_types::list::operation::Operation;
use diamond_types::list::{Branch, OpLog};
use diamond_types::LocalVersion;

use super::frontier::reduce;

/// One transaction of a concurrent trace (josephg/editing-traces layout).
#[derive(Clone, Debug)]
pub struct ReplayTxn {
    /// Which agent made it (named `a<agent>` in the log).
    pub agent: usize,
    /// Indexes of the earlier transactions it was made on top of (empty: the empty document).
    pub parents: Vec<usize>,
    /// `(position, deleted, inserted)` in code points, each read against the document left by
    /// the previous one, the first against the document at `parents`.
    pub patches: Vec<(usize, usize, String)>,
}

/// What a replay produced and what it cost.
#[derive(Clone, Debug)]
pub struct ReplayOutcome {
    /// The merged text after every transaction.
    pub text: String,
    /// Events (inserted plus deleted code points) added.
    pub events: usize,
    /// Wall time of the replay.
    pub wall: Duration,
    /// CPU time of the replay by the caller's clock, when it gave one.
    pub cpu: Option<Duration>,
}

/// A transaction whose parents are not earlier transactions: the trace is malformed.
#[derive(Debug, thiserror::Error)]
#[error("txn {txn} names parent {parent}, which is not an earlier txn")]
pub struct BadParent {
    /// The transaction's index.
    pub txn: usize,
    /// The offending parent index.
    pub parent: usize,
}

/// Replays `txns` in order into a fresh diamond-types log and branch, merging the branch to the
/// tip after each one. `thread_cpu_ns` reads the calling thread's CPU clock (None: not measured).
///
/// The trace must be well formed (positions inside the document as its agent saw it):
/// diamond-types panics on out-of-range operations and this function does not re-check them.
pub fn replay_concurrent(
    txns: &[ReplayTxn],
    thread_cpu_ns: impl Fn() -> Option<u64>,
) -> Result<ReplayOutcome, BadParent> {
    for (i, t) in txns.iter().enumerate() {
        if let Some(&parent) = t.parents.iter().find(|&&p| p >= i) {
            return Err(BadParent { txn: i, parent });
        }
    }
    let ops: Vec<Vec<Operation>> = txns.iter().map(|t| operations(&t.patches)).collect();
    let agents: Vec<String> =
        (0..txns.iter().map(|t| t.agent + 1).max().unwrap_or(0)).map(|a| format!("a{a}")).collect();

    let cpu_before = thread_cpu_ns();
    let started = Instant::now();
    let mut oplog = OpLog::new();
    let mut branch = Branch::new();
    let ids: Vec<_> = agents.iter().map(|name| oplog.get_or_create_agent_id(name)).collect();
    // The last local time of each transaction (None for one that changed nothing: its
    // children then hang off its own parents).
    let mut last: Vec<LocalVersion> = Vec::with_capacity(txns.len());
    for (t, ops) in txns.iter().zip(&ops) {
        let mut parents: LocalVersion = t.parents.iter().flat_map(|&p| last[p].iter().copied()).collect();
        if parents.len() > 1 {
            parents = reduce(&oplog, parents);
        }
        if ops.is_empty() {
            last.push(parents);
            continue;
        }
        let end = oplog.add_operations_at(ids[t.agent], &parents, ops);
        branch.merge(&oplog, oplog.local_version_ref());
        last.push(smallvec::smallvec![end]);
    }
    let text = branch.content().to_string();
    let wall = started.elapsed();
    let cpu = match (cpu_before, thread_cpu_ns()) {
        (Some(a), Some(b)) => Some(Duration::from_nanos(b.saturating_sub(a))),
        _ => None,
    };
    Ok(ReplayOutcome { text, events: oplog.len(), wall, cpu })
}

/// The history `txns` make, in diamond-types' own format (`encode(ENCODE_FULL)`), built without
/// keeping a checked-out text: the stored form of a concurrent document, for the reference of
/// a cold open ([`reference::decode_and_checkout`](super::reference::decode_and_checkout)). The
/// trace must be well formed, as for [`replay_concurrent`].
pub fn encode_concurrent(txns: &[ReplayTxn]) -> Result<Vec<u8>, BadParent> {
    for (i, t) in txns.iter().enumerate() {
        if let Some(&parent) = t.parents.iter().find(|&&p| p >= i) {
            return Err(BadParent { txn: i, parent });
        }
    }
    let mut oplog = OpLog::new();
    let mut ids = Vec::new();
    let mut last: Vec<LocalVersion> = Vec::with_capacity(txns.len());
    for t in txns {
        while ids.len() <= t.agent {
            ids.push(oplog.get_or_create_agent_id(&format!("a{}", ids.len())));
        }
        let mut parents: LocalVersion = t.parents.iter().flat_map(|&p| last[p].iter().copied()).collect();
        if parents.len() > 1 {
            parents = reduce(&oplog, parents);
        }
        let ops = operations(&t.patches);
        if ops.is_empty() {
            last.push(parents);
            continue;
        }
        let end = oplog.add_operations_at(ids[t.agent], &parents, &ops);
        last.push(smallvec::smallvec![end]);
    }
    Ok(oplog.encode(diamond_types::list::encoding::ENCODE_FULL))
}

/// A transaction's patches as diamond-types operations, in order: each patch's delete (numbered
/// backwards, as braid-text numbers a range delete) then its insert.
fn operations(patches: &[(usize, usize, String)]) -> Vec<Operation> {
    let mut ops = Vec::new();
    for (pos, del, ins) in patches {
        if *del > 0 {
            let mut op = Operation::new_delete(*pos..pos + del);
            op.loc.fwd = false;
            ops.push(op);
        }
        if !ins.is_empty() {
            ops.push(Operation::new_insert(*pos, ins));
        }
    }
    ops
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn txn(agent: usize, parents: &[usize], patches: &[(usize, usize, &str)]) -> ReplayTxn {
        ReplayTxn {
            agent,
            parents: parents.to_vec(),
            patches: patches.iter().map(|(p, d, s)| (*p, *d, s.to_string())).collect(),
        }
    }

    #[test]
    fn concurrent_edits_merge() {
        let txns = vec![
            txn(0, &[], &[(0, 0, "hello")]),
            txn(0, &[0], &[(5, 0, "!")]),
            txn(1, &[0], &[(0, 1, "H")]),
            txn(1, &[1, 2], &[(6, 0, "?"), (1, 1, "E")]),
        ];
        let out = replay_concurrent(&txns, || Some(0)).unwrap();
        assert_eq!(out.text, "HEllo!?");
        assert_eq!(out.events, 5 + 1 + 2 + 3);
        assert_eq!(out.cpu, Some(Duration::ZERO));
    }

    #[test]
    fn the_encoded_history_reopens_to_the_merged_text() {
        let txns = vec![
            txn(0, &[], &[(0, 0, "hello")]),
            txn(0, &[0], &[(5, 0, "!")]),
            txn(1, &[0], &[(0, 1, "H")]),
            txn(1, &[1, 2], &[(6, 0, "?"), (1, 1, "E")]),
        ];
        let bytes = encode_concurrent(&txns).unwrap();
        assert_eq!(super::super::reference::decode_and_checkout(&bytes, None).unwrap(), "HEllo!?");
        assert!(encode_concurrent(&[txn(0, &[0], &[(0, 0, "x")])]).is_err());
    }

    #[test]
    fn later_parents_are_refused() {
        let txns = vec![txn(0, &[1], &[(0, 0, "x")]), txn(0, &[], &[(0, 0, "y")])];
        assert!(replay_concurrent(&txns, || None).is_err());
    }
}
