//! History retention: [`TextDoc::compact`] rebuilds a document without the events in a merge
//! horizon's history, so that history does not grow forever.
//!
//! A horizon H is valid when every event outside H's history descends from all of H. Then H's
//! history is exactly the local-time prefix `0..=max(H)`, and the rest replays on top of one
//! synthetic insert of text_at(H) at the root by a reserved `~agent` (the base run). Later events
//! keep their agent, seq, ops and parents (those inside H's history become the base run's last
//! event), so their ids and texts do not change. DT 1.0.0 cannot add events at explicit seqs, so
//! each run goes in as a hand-built `DMNDTYPS` chunk through `decode_and_add` (DT-FACTS §2.3).
//!
//! Why later merges still agree with the original: a later insert's origin-left is a character
//! visible at its parents (the same one in both documents); its origin-right is the next item,
//! which in the original may be a character deleted before H. No later item can sit between such
//! a tombstone and the next surviving item, so that item takes its place in every YjsMod
//! comparison. The property tests in `tests/compact.rs` check this.

use super::chunk::{encode_run, Run};
use super::event::{validate_agent_name, RESERVED_PREFIX};
use super::frontier::{remote_id, to_local, to_remote};
use super::pruned::merge_ranges;
use super::{TextDoc, TextError};
use crate::protocol::VersionSet;
use diamond_types::list::operation::{OpKind, Operation};
use diamond_types::list::OpLog;
use diamond_types::LocalVersion;
use std::collections::HashMap;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What [`TextDoc::compact`] returns.
#[derive(Clone, Debug)]
pub struct Compacted {
    /// The new document: the base run, then every event after the horizon.
    pub doc: TextDoc,
    /// The events this compaction dropped (earlier compactions' are not repeated), as per-agent
    /// seq ranges (sorted, merged): answer "gone" for these.
    pub pruned: Vec<(String, Range<u64>)>,
    /// The version that now stands for the horizon: the base run's last id, or the root.
    pub base_version: VersionSet,
}

/// A history entry: times `start..end`, each the parent of the next; `parents` of the first.
struct Entry {
    start: usize,
    end: usize,
    parents: LocalVersion,
}

fn entries(oplog: &OpLog) -> Vec<Entry> {
    oplog.iter_history().map(|e| Entry { start: e.span.start, end: e.span.end, parents: e.parents }).collect()
}

/// The largest m with all of `0..=m` in the history of `v` (None if time 0 is not). One
/// backward pass over the entries: O(entries × (parents + log entries)).
fn history_prefix(es: &[Entry], v: &[usize]) -> Option<usize> {
    let idx = |t: usize| es.partition_point(|e| e.end <= t);
    let mut upto: Vec<Option<usize>> = vec![None; es.len()];
    for &t in v {
        let i = idx(t);
        upto[i] = upto[i].max(Some(t));
    }
    for i in (0..es.len()).rev() {
        if upto[i].is_some() {
            for &p in &es[i].parents {
                let j = idx(p);
                upto[j] = upto[j].max(Some(p));
            }
        }
    }
    let mut last = None;
    for (e, u) in es.iter().zip(upto) {
        match u {
            Some(u) if u + 1 == e.end => last = Some(u),
            Some(u) => return Some(u),
            None => return last,
        }
    }
    last
}

/// The first event that makes `h` (a normalized local version) an invalid horizon, if any.
fn violation(es: &[Entry], h: &[usize]) -> Option<usize> {
    let &m = h.last()?; // The root dominates everything.
    let prefix = history_prefix(es, h);
    if prefix != Some(m) {
        return Some(prefix.map_or(0, |p| p + 1));
    }
    for e in es {
        if e.start <= m && m + 1 < e.end && h != [m] {
            return Some(m + 1); // Its only parent is m, not all of h.
        }
        if e.start > m && e.parents.last().is_none_or(|&p| p <= m) && e.parents.as_slice() != h {
            return Some(e.start); // Forks from inside h's history without all of h.
        }
    }
    None
}

/// The latest valid horizon (as a local version) whose history is within `0..=limit`: a forward
/// scan keeping the frontier, plus suffix minima of each entry's latest parent. O(entries ×
/// frontier width); every check of a cut point is charged to an entry forking from it.
fn latest_cut(es: &[Entry], limit: usize) -> LocalVersion {
    let key = |e: &Entry| e.parents.last().map_or(-1, |&p| p as i64);
    let mut sufmin = vec![i64::MAX; es.len() + 1];
    let mut forks: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in (0..es.len()).rev() {
        sufmin[i] = sufmin[i + 1].min(key(&es[i]));
        if let Some(&p) = es[i].parents.last() {
            forks.entry(p).or_default().push(i);
        }
    }
    let (mut frontier, mut best) = (LocalVersion::new(), LocalVersion::new());
    for (i, e) in es.iter().enumerate().take_while(|(_, e)| e.start <= limit) {
        let rest: LocalVersion = frontier.iter().copied().filter(|f| !e.parents.contains(f)).collect();
        // Cut points inside an entry need a frontier of one; at its end, whatever it is.
        let lowest = if rest.is_empty() { e.start } else { e.end - 1 };
        let mut m = ((e.end - 1).min(limit) as i64).min(sufmin[i + 1]);
        while m >= lowest as i64 {
            let mut at_m = rest.clone();
            at_m.push(m as usize);
            at_m.sort_unstable();
            let ok = forks.get(&(m as usize)).is_none_or(|js| js.iter().all(|&j| es[j].parents == at_m));
            if ok {
                best = at_m;
                break;
            }
            m -= 1;
        }
        frontier = rest;
        frontier.push(e.end - 1);
        frontier.sort_unstable();
    }
    best
}

/// The agents' seq ranges of times `0..end`, per agent, sorted and merged.
fn pruned_ranges(oplog: &OpLog, end: usize) -> Vec<(String, Range<u64>)> {
    let all = oplog
        .iter_mappings_range((0..end).into())
        .map(|s| (oplog.get_agent_name(s.agent).to_string(), s.seq_range.start as u64..s.seq_range.end as u64));
    merge_ranges(all.collect())
}

fn inconsistent() -> TextError {
    TextError::CorruptEncoding("compaction: history walk does not match the operation log".into())
}

/// Events `i0..i1` of `op`, whose inserted content `rest` starts at event `i0`; advances `rest`.
fn slice(op: &Operation, i0: usize, i1: usize, rest: &mut &str) -> Operation {
    let (s, e, mut loc) = (op.start(), op.end(), op.loc);
    (loc.span.start, loc.span.end) = match (op.kind, op.loc.fwd) {
        (OpKind::Ins, true) => (s + i0, s + i1),
        (OpKind::Del, false) => (e - i1, e - i0),
        _ => (s, s + i1 - i0),
    };
    let content = (op.kind == OpKind::Ins && op.content.is_some()).then(|| {
        let (head, tail) = rest.split_at(rest.char_indices().nth(i1 - i0).map_or(rest.len(), |(b, _)| b));
        *rest = tail;
        head.into()
    });
    Operation { loc, kind: op.kind, content }
}

impl TextDoc {
    /// Is `h` a valid horizon: known, and every event outside its history descends from all of
    /// it? One pass over the history entries (runs), not the events.
    pub fn is_valid_horizon(&self, h: &VersionSet) -> Result<bool, TextError> {
        let lv = to_local(&self.oplog, h)?;
        Ok(violation(&entries(&self.oplog), &lv).is_none())
    }

    /// The latest valid horizon whose history lies within `candidate`'s (the root if none; valid
    /// horizons are nested prefixes of local time, so "latest" is well defined). Cost:
    /// O(history entries × (frontier width + log entries)), not O(events).
    pub fn latest_valid_horizon_at_or_before(&self, candidate: &VersionSet) -> Result<VersionSet, TextError> {
        let c = to_local(&self.oplog, candidate)?;
        let es = entries(&self.oplog);
        Ok(match history_prefix(&es, &c) {
            Some(limit) => to_remote(&self.oplog, &latest_cut(&es, limit)),
            None => VersionSet::root(),
        })
    }

    /// A new document without the events in `horizon`'s history, their text folded into a base
    /// run by `base_agent` (which must start with `~` and be unused here, pruned ids included).
    /// The new document remembers the pruned ids (this compaction's and this document's, see
    /// [`set_pruned`](Self::set_pruned)). Refused, with this document untouched, unless
    /// [`is_valid_horizon`](Self::is_valid_horizon).
    pub fn compact(&self, horizon: &VersionSet, base_agent: &str) -> Result<Compacted, TextError> {
        validate_agent_name(base_agent)?;
        let reason = if !base_agent.starts_with(RESERVED_PREFIX) {
            "a compaction base agent must start with ~"
        } else if self.next_seq.contains_key(base_agent) {
            "the base agent already names events in this document"
        } else if self.seq_floor(base_agent) > 0 {
            "the base agent named events that an earlier compaction pruned"
        } else {
            ""
        };
        if !reason.is_empty() {
            return Err(TextError::InvalidAgent { agent: base_agent.to_string(), reason });
        }
        let h = to_local(&self.oplog, horizon)?;
        let es = entries(&self.oplog);
        if let Some(t) = violation(&es, &h) {
            let horizon = to_remote(&self.oplog, &h);
            return Err(TextError::InvalidHorizon { horizon, event: remote_id(&self.oplog, t) });
        }
        let start = h.last().map_or(0, |&m| m + 1);
        let text = self.text_at_local(&h);
        let base_len = text.chars().count();
        let base = (base_len > 0).then(|| (base_agent.to_string(), base_len - 1));
        let built = catch_unwind(AssertUnwindSafe(|| {
            let mut oplog = OpLog::new();
            if let Some((agent, _)) = &base {
                let agent = oplog.get_or_create_agent_id(agent);
                oplog.add_operations_at(agent, &[], &[Operation::new_insert(0, &text)]);
            }
            self.replay_after(&es, &h, start, base.as_ref(), &mut oplog)?;
            let branch = oplog.checkout_tip();
            Ok(TextDoc::from_parts(oplog, Some(branch)))
        }));
        let mut doc = built.map_err(|_| TextError::CorruptEncoding("compaction: diamond-types panicked".into()))??;
        if doc.text() != self.text() || doc.event_count() != base_len + self.event_count() - start {
            return Err(TextError::CorruptEncoding("compaction changed the document".into()));
        }
        let pruned = if start > 0 { pruned_ranges(&self.oplog, start) } else { Vec::new() };
        // The new document's floors: this compaction's ranges and every earlier one's.
        doc.set_pruned(&self.pruned_list());
        doc.set_pruned(&pruned);
        let base_version = VersionSet::new(base.map(|(a, last)| format!("{a}-{last}")));
        Ok(Compacted { doc, pruned, base_version })
    }

    /// Re-adds every event from `start` on (those outside `h`'s history) to `out`, run by run.
    fn replay_after(
        &self,
        es: &[Entry],
        h: &[usize],
        start: usize,
        base: Option<&(String, usize)>,
        out: &mut OpLog,
    ) -> Result<(), TextError> {
        let oplog = &self.oplog;
        let id = |t: usize| {
            let r = oplog.local_to_remote_time(t);
            (r.agent.to_string(), r.seq)
        };
        let mut ops = oplog.iter_range_since(h);
        let mut cur: Option<(Operation, usize, usize)> = None; // op, events done, content bytes done
        for e in es.iter().filter(|e| e.end > start) {
            let mut t = e.start.max(start);
            for span in oplog.iter_mappings_range((t..e.end).into()) {
                let len = (span.seq_range.end - span.seq_range.start).min(e.end - t);
                let raw: LocalVersion = if t == e.start { e.parents.clone() } else { [t - 1].into_iter().collect() };
                let mut parents: Vec<(String, usize)> = raw.iter().filter(|&&p| p >= start).map(|&p| id(p)).collect();
                if parents.is_empty() {
                    parents.extend(base.cloned());
                }
                let (agent, seq) = id(t);
                if seq != span.seq_range.start || len == 0 {
                    return Err(inconsistent());
                }
                let mut run = Run { agent, seq, len, parents, ops: Vec::new() };
                let mut left = len;
                while left > 0 {
                    if cur.is_none() {
                        cur = Some((ops.next().ok_or_else(inconsistent)?, 0, 0));
                    }
                    let (op, done, bytes) = cur.as_mut().ok_or_else(inconsistent)?;
                    let n = (op.end() - op.start() - *done).min(left);
                    let mut rest = op.content_as_str().map_or("", |c| &c[*bytes..]);
                    let before = rest.len();
                    run.ops.push(slice(op, *done, *done + n, &mut rest));
                    *bytes += before - rest.len();
                    *done += n;
                    left -= n;
                    if *done == op.end() - op.start() {
                        cur = None;
                    }
                }
                let bytes = encode_run(&run);
                out.decode_and_add(&bytes).map_err(|e| TextError::CorruptEncoding(format!("compaction: {e:?}")))?;
                t += len;
            }
            if t != e.end {
                return Err(inconsistent());
            }
        }
        if cur.is_some() || ops.next().is_some() {
            return Err(inconsistent());
        }
        Ok(())
    }
}
