//! [`TextDoc::apply`]: one PUT, classified as fresh, partial, duplicate or empty, and added with
//! braid-text's numbering (DT-FACTS §2.1/§2.2).
//!
//! Order of checks: the Version id (syntax, agent rules, no parent at or after it, fully known →
//! Duplicate before anything else), then the Parents (must be known), then the ranges against
//! the parent length, then the seq arithmetic. Everything is validated before the log is touched, so an error leaves the
//! document exactly as it was. Gaps (first seq beyond the agent's next) are refused rather than
//! written through DT's chunk decoder (DT-FACTS §2.3).
//!
//! After a compaction, an agent's next seq may lie above everything DT knows of it (its latest
//! events were pruned, see `pruned.rs`). A fresh edit continuing there goes in through the
//! hand-built chunk of `chunk.rs`, at its explicit seqs; everything else is the same. Edits
//! naming a pruned id are refused with [`TextError::PrunedVersion`].

use super::chunk::{encode_run, Run};
use super::event::{validate_agent, EventId, MAX_SEQ};
use super::floor::LenFloor;
use super::frontier::{lookup, to_local, to_remote};
use super::plan::{apply_spans, build_ops, check_ops_fit, count, minimal_diff, resolve, trim_front, whole_replace};
use super::{Applied, Change, Edit, Outcome, TextDoc, TextError};
use crate::protocol::{Bound, VersionSet};
use diamond_types::list::operation::OpKind;
use diamond_types::LocalVersion;
use smallvec::smallvec;

impl TextDoc {
    /// Applies one edit. Never panics on client input; on `Err` nothing changed.
    pub fn apply(&mut self, edit: Edit) -> Result<Applied, TextError> {
        self.apply_checked(edit, None)
    }

    /// [`apply`](Self::apply), refusing the edit with [`TextError::DigestMismatch`] when
    /// `expect_sha256` is given, the edit applies on top of the current version (no merge, so
    /// the client knows the exact result, as braid-text checks), and the resulting text's
    /// SHA-256 differs. Checked before anything is added, so a refused edit leaves no trace.
    pub fn apply_checked(&mut self, edit: Edit, expect_sha256: Option<[u8; 32]>) -> Result<Applied, TextError> {
        // 1. The Version: syntax, agent, and "already fully known".
        let named = match &edit.version {
            Some(v) => {
                let id = EventId::parse(v)?;
                validate_agent(&id.agent)?;
                // A parent of the same agent at or after the Version would be one of this
                // edit's own events (or a later one): refused as malformed, before the
                // duplicate check and before unknown parents park the write for 309.
                for parent in edit.parents.iter().flat_map(VersionSet::ids) {
                    let later = EventId::parse(parent).is_ok_and(|p| p.agent == id.agent && p.seq >= id.seq);
                    if later {
                        return Err(TextError::CyclicParents { version: v.clone(), parent: parent.clone() });
                    }
                }
                if lookup(&self.oplog, &id).is_some() {
                    return Ok(Applied::nothing(VersionSet::new([id.to_string()]), Outcome::Duplicate));
                }
                Some(id)
            }
            None => {
                validate_agent(&edit.fallback_agent)?;
                None
            }
        };

        // 2. The Parents.
        let parents: LocalVersion = match &edit.parents {
            None => self.oplog.local_version(),
            Some(p) => to_local(&self.oplog, p)?,
        };

        // 3. The change, as validated absolute spans against the parent text. A counted floor of
        // the parent length is enough for ranges that fit under it (`floor.rs`); anything else
        // gets the exact length.
        let mut parent = self.len_floor_at_local(&parents);
        if !parent.exact && !fits_under(&edit.change, parent.len) {
            parent = LenFloor::exact(self.len_at_local(&parents)?);
        }
        let parent_len = parent.len;
        let spans = match edit.change {
            Change::Patches(patches) => resolve(patches, parent_len)?,
            Change::Snapshot(body) if named.is_some() => whole_replace(parent_len, body),
            Change::Snapshot(body) => minimal_diff(&self.text_at_local(&parents), &body),
        };
        let n = count(&spans)?;
        if n == 0 {
            return Ok(Applied::nothing(self.version(), Outcome::Empty));
        }

        // 4. Seqs: which events are new.
        let (agent, last, low) = match named {
            Some(id) => {
                // low = S + 1 - count
                let low = (id.seq + 1).checked_sub(n).ok_or(TextError::SeqTooLow { seq: id.seq, count: n })?;
                (id.agent, id.seq, low)
            }
            None => {
                let low = self.next_seq(&edit.fallback_agent);
                let last = low
                    .checked_add(n - 1)
                    .filter(|&s| s <= MAX_SEQ)
                    .ok_or_else(|| TextError::TooLarge(format!("seq {low} + {n} events exceeds 2^53-1")))?;
                (edit.fallback_agent, last, low)
            }
        };
        let (next, known_next) = (self.next_seq(&agent), self.known_next_seq(&agent));
        let mut ops = build_ops(&spans)?;
        let (parents, parent, outcome) = if low == next {
            (parents, parent, Outcome::Fresh)
        } else if low < next && next <= last {
            // Partial: the first `next - low` events are known; the tail hangs off the agent's
            // last known event, as braid-text does (WIRE §7 t25).
            let k = usize::try_from(next - low).map_err(|_| TextError::TooLarge("seq".into()))?;
            ops = trim_front(ops, k);
            let prev = EventId { agent: agent.clone(), seq: next - 1 };
            let t = lookup(&self.oplog, &prev).ok_or_else(|| self.unknown_seq(&agent, next - 1, next, low))?;
            let tail_parents: LocalVersion = smallvec![t];
            let len = self.len_at_local(&tail_parents)?;
            (tail_parents, LenFloor::exact(len), Outcome::Partial)
        } else {
            // low > next (a gap), or the Version falls inside a gap of a loaded foreign history
            // or inside a pruned range.
            return Err(self.unknown_seq(&agent, last, next, low));
        };

        // 5. Last guard: every op must fit the text at its actual parents (the partial case reads
        // the tail against a different version than the client did). Yields the new length.
        // Ops that fit a floor fit the text; the length after them is then a floor too.
        let new_len = check_ops_fit(&ops, parent.len)?;
        if let Some(expected) = expect_sha256 {
            if outcome == Outcome::Fresh && self.is_tip(&parents) {
                check_digest(&self.text(), &spans, expected)?;
            }
        }
        let added: usize = ops.iter().map(|op| op.end() - op.start()).sum();
        let inserted: usize = ops.iter().filter(|op| op.kind == OpKind::Ins).map(|op| op.end() - op.start()).sum();
        let parent_ids = to_remote(&self.oplog, &parents);
        // The run as a hand-built chunk and the round's delta (`delta.rs`) name it: the first
        // new event is `next` in every case (fresh: low == next; partial: the tail starts there).
        let seq = usize::try_from(next).map_err(|_| TextError::TooLarge(format!("seq {next}")))?;
        let run = Run { agent: agent.clone(), seq, len: added, parents: remote_pairs(&self.oplog, &parents), ops };

        // On the tip with only a floor of its length: added like a write off the tip (the
        // checked-out text lags the tip anyway, or its length would be known).
        let on_tip = self.is_tip(&parents) && parent.exact;
        let last_lv = if outcome == Outcome::Fresh && known_next < next {
            // The agent's latest events were pruned: DT would number these from `known_next`.
            let lv = self.add_at_seq(&run)?;
            match on_tip {
                true => self.added_on_tip(new_len),
                false => self.added_off_tip(inserted),
            }
            lv
        } else if on_tip {
            let agent_id = self.oplog.get_or_create_agent_id(&agent);
            self.add_at_tip(agent_id, &run.ops, new_len)
        } else {
            // Off the tip: only the log grows; the text is merged when someone needs it.
            let agent_id = self.oplog.get_or_create_agent_id(&agent);
            let lv = self.oplog.add_operations_at(agent_id, &parents, &run.ops);
            self.added_off_tip(inserted);
            lv
        };
        self.recent.push(run);
        // Remember the lengths clients are likely to name as Parents next: this edit's own
        // version (what the PUT answers) and the new tip (what a GET answers), when known.
        if parent.exact {
            self.lengths.insert(smallvec![last_lv], new_len);
        }
        if let Some(tip_len) = self.known_tip_len() {
            self.lengths.insert(self.oplog.local_version(), tip_len);
        }
        let id = EventId { agent, seq: last };
        let version = VersionSet::new([id.to_string()]);
        self.next_seq.insert(id.agent, last + 1);
        Ok(Applied { version, added, outcome, parents: parent_ids, inserted, deleted: added - inserted })
    }
}

impl TextDoc {
    /// The error for an edit whose seqs need the unknown event `agent-seq` (its Version, or
    /// the event its tail would hang off): pruned, or a gap.
    fn unknown_seq(&self, agent: &str, seq: u64, expected: u64, got: u64) -> TextError {
        if self.is_pruned(agent, seq) {
            TextError::PrunedVersion { id: EventId { agent: agent.to_string(), seq }.to_string() }
        } else {
            TextError::SeqGap { agent: agent.to_string(), expected, got }
        }
    }

    /// Adds `run` (validated against its parents) at its explicit seqs, through a hand-built
    /// chunk (`decode_and_add` rolls back on `Err`). Returns the last event's local time.
    fn add_at_seq(&mut self, run: &Run) -> Result<usize, TextError> {
        let before = self.oplog.len();
        self.oplog
            .decode_and_add(&encode_run(run))
            .map_err(|e| TextError::CorruptEncoding(format!("adding at explicit seqs: {e:?}")))?;
        if self.oplog.len() != before + run.len {
            // Cannot happen (every event is new); the tip's length is unknown all the same.
            self.added_off_tip(run.len);
            return Err(TextError::CorruptEncoding("adding at explicit seqs: wrong event count".into()));
        }
        Ok(self.oplog.len() - 1)
    }
}

/// `parents` as (agent, seq) pairs, the form a hand-built chunk names them in.
fn remote_pairs(oplog: &diamond_types::list::OpLog, parents: &[usize]) -> Vec<(String, usize)> {
    parents
        .iter()
        .map(|&t| {
            let r = oplog.local_to_remote_time(t);
            (r.agent.to_string(), r.seq)
        })
        .collect()
}

/// Refuses unless sha-256(`text` with `spans` applied) is `expected`.
fn check_digest(text: &str, spans: &[super::plan::Span], expected: [u8; 32]) -> Result<(), TextError> {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    let actual = crate::protocol::text_sha256(&apply_spans(text, spans));
    if actual == expected {
        return Ok(());
    }
    Err(TextError::DigestMismatch { expected: STANDARD.encode(expected), actual: STANDARD.encode(actual) })
}

/// Whether `change` can be checked against a floor of its parent length: patches whose bounds
/// all count from the start and lie within `floor` (a whole-text replace, a snapshot diff and
/// ranges from the end need the exact length).
fn fits_under(change: &Change, floor: usize) -> bool {
    let within = |b: Bound| matches!(b, Bound::FromStart(n) if n <= floor as u64);
    match change {
        Change::Patches(patches) => patches.iter().all(|p| within(p.range.start) && within(p.range.end)),
        Change::Snapshot(_) => false,
    }
}
