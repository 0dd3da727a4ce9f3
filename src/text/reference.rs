//! The in-process reference of benchmarks B1 and B3 (R_dt): a sequential editing trace applied
//! with bare diamond-types, and that history's encoding decoded and checked out again.
//!
//! It lives here because only `src/text` may use diamond-types. It is deliberately not built
//! on [`TextDoc`](super::TextDoc): the point is the bare engine cost, without Plait's
//! validation, event numbering, persistence or HTTP. A server receives every edit as a remote
//! operation on top of named parents, so the main replay adds each edit with
//! `add_operations_at(agent, [previous version], ops)` and merges the branch to keep the text
//! current; [`Prepared::replay_local`] is DT's cheapest path (local edits on a branch), for context.
//!
//! Timing is the caller's: this module does no I/O (CPU clocks need `/proc` or a syscall).
//! [`prepare`] turns the edits into diamond-types operations once, so a timed loop around
//! [`Prepared::replay_sequential`] measures only the engine.

use diamond_types::list::encoding::ENCODE_FULL;
use diamond_types::list::operation::Operation;
use diamond_types::list::{Branch, OpLog};

use super::TextError;

/// One edit: at code point `pos` (of the text the previous edit left), delete `del` code
/// points, then insert the string.
pub type SeqEdit = (usize, usize, String);

/// The agent name the reference history is written under.
const AGENT: &str = "ref";

/// Edits checked and turned into diamond-types operations, ready to replay.
pub struct Prepared {
    /// One list per edit: its delete (numbered backwards, as braid-text numbers a range
    /// delete), then its insert. Edits that change nothing are left out.
    ops: Vec<Vec<Operation>>,
}

/// Checks every range against the length the previous edits leave (diamond-types panics on,
/// or is poisoned by, bad ones) and builds the operations.
pub fn prepare(edits: &[SeqEdit]) -> Result<Prepared, TextError> {
    let mut len = 0usize;
    let mut ops = Vec::with_capacity(edits.len());
    for (pos, del, ins) in edits {
        let end = pos.saturating_add(*del);
        if end > len {
            return Err(TextError::RangeOutOfBounds { start: *pos as i128, end: end as i128, len });
        }
        let mut edit = Vec::with_capacity(2);
        if *del > 0 {
            let mut op = Operation::new_delete(*pos..end);
            op.loc.fwd = false;
            edit.push(op);
        }
        if !ins.is_empty() {
            edit.push(Operation::new_insert(*pos, ins));
        }
        len = len - del + ins.chars().count();
        if !edit.is_empty() {
            ops.push(edit);
        }
    }
    Ok(Prepared { ops })
}

impl Prepared {
    /// Applies the edits in order as a server must: each one a remote operation on the
    /// previous version (`add_operations_at`), then `Branch::merge` so the text is current
    /// after every edit.
    pub fn replay_sequential(&self) -> Replayed {
        let mut oplog = OpLog::new();
        let mut branch = Branch::new();
        let agent = oplog.get_or_create_agent_id(AGENT);
        for ops in &self.ops {
            let parents = oplog.local_version();
            let end = oplog.add_operations_at(agent, &parents, ops);
            branch.merge(&oplog, &[end]);
        }
        Replayed { oplog, branch }
    }

    /// Applies the edits as local edits on one branch (`Branch::apply_local_operations`):
    /// DT's cheapest path, with no parents to resolve and no merge.
    pub fn replay_local(&self) -> Replayed {
        let mut oplog = OpLog::new();
        let mut branch = Branch::new();
        let agent = oplog.get_or_create_agent_id(AGENT);
        for ops in &self.ops {
            branch.apply_local_operations(&mut oplog, agent, ops);
        }
        Replayed { oplog, branch }
    }
}

/// A history replayed by bare diamond-types.
pub struct Replayed {
    oplog: OpLog,
    branch: Branch,
}

impl Replayed {
    /// The text after every edit.
    pub fn text(&self) -> String {
        self.branch.content().to_string()
    }

    /// Events in the history (one per inserted or deleted code point).
    pub fn events(&self) -> usize {
        self.oplog.len()
    }

    /// The whole history in DT's own format (`encode(ENCODE_FULL)`, as braid-text's `toBytes`).
    pub fn encode(&self) -> Vec<u8> {
        self.oplog.encode(ENCODE_FULL)
    }
}

/// Decodes `bytes` (from [`Replayed::encode`]) and checks out the text at the tip, or after
/// the first `events` events when given: the reference for opening a stored document.
pub fn decode_and_checkout(bytes: &[u8], events: Option<usize>) -> Result<String, TextError> {
    let oplog = OpLog::load_from(bytes).map_err(|e| TextError::CorruptEncoding(format!("{e:?}")))?;
    let branch = match events {
        None => oplog.checkout_tip(),
        Some(0) => Branch::new(),
        Some(n) if n <= oplog.len() => oplog.checkout(&[n - 1]),
        Some(n) => {
            return Err(TextError::CorruptEncoding(format!("{n} events asked for, the history has {}", oplog.len())))
        }
    };
    Ok(branch.content().to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn edits(list: &[(usize, usize, &str)]) -> Vec<SeqEdit> {
        list.iter().map(|(p, d, s)| (*p, *d, s.to_string())).collect()
    }

    #[test]
    fn replays_encode_and_reopen() {
        let e = edits(&[(0, 0, "hello"), (5, 0, " wörld"), (0, 1, "H"), (5, 6, ""), (3, 0, ""), (5, 0, "!")]);
        let prepared = prepare(&e).unwrap();
        let seq = prepared.replay_sequential();
        assert_eq!(seq.text(), "Hello!");
        assert_eq!(prepared.replay_local().text(), "Hello!");
        assert_eq!(seq.events(), 5 + 6 + 2 + 6 + 1);
        let bytes = seq.encode();
        assert_eq!(decode_and_checkout(&bytes, None).unwrap(), "Hello!");
        assert_eq!(decode_and_checkout(&bytes, Some(11)).unwrap(), "hello wörld");
        assert_eq!(decode_and_checkout(&bytes, Some(0)).unwrap(), "");
        assert!(decode_and_checkout(&bytes, Some(99)).is_err());
        assert!(decode_and_checkout(b"nonsense", None).is_err());
    }

    #[test]
    fn out_of_range_edits_are_refused() {
        assert!(prepare(&edits(&[(0, 0, "ab"), (1, 2, "")])).is_err());
        assert!(prepare(&edits(&[(3, 0, "x")])).is_err());
    }
}
