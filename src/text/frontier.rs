//! Translation between wire versions ([`VersionSet`] of `agent-seq` ids) and diamond-types local
//! versions, plus the version algebra built on it (known, contains, union).
//!
//! Every local version handed to diamond-types comes from here, so it is always a sorted
//! antichain of times that exist in the log (unsorted or redundant parents crash or poison
//! diamond-types 1.0.0, DT-FACTS §6). It deliberately avoids DT's buggy `version_union` (DT-FACTS §7)
//! and DT's `version_contains_time(&[], t) == true` quirk (the root contains nothing).

use super::event::{validate_agent_name, EventId, ROOT_AGENT};
use super::{TextDoc, TextError};
use crate::protocol::VersionSet;
use diamond_types::list::remote_ids::RemoteId;
use diamond_types::list::OpLog;
use diamond_types::LocalVersion;

/// The local time of a known event, or None. Never consults DT for `ROOT` (which DT maps to
/// `usize::MAX`) and never returns a time outside the log.
pub(super) fn lookup(oplog: &OpLog, id: &EventId) -> Option<usize> {
    if id.agent == ROOT_AGENT || id.agent.is_empty() {
        return None;
    }
    let seq = usize::try_from(id.seq).ok()?;
    let rid = RemoteId { agent: id.agent.as_str().into(), seq };
    match oplog.try_remote_to_local_time(&rid) {
        Ok(t) if t < oplog.len() => Some(t),
        _ => None,
    }
}

/// Does the version `v` include time `t`? The root includes nothing.
pub(super) fn contains_time(oplog: &OpLog, v: &[usize], t: usize) -> bool {
    !v.is_empty() && oplog.version_contains_time(v, t)
}

/// Sorts, dedups and drops every time another member already includes.
pub(super) fn reduce(oplog: &OpLog, mut times: LocalVersion) -> LocalVersion {
    times.sort_unstable();
    times.dedup();
    if times.len() < 2 {
        return times;
    }
    let all = times.clone();
    times.retain(|t| {
        let others: LocalVersion = all.iter().copied().filter(|o| o != t).collect();
        !contains_time(oplog, &others, *t)
    });
    times
}

/// Formats a local time as its wire id.
pub(super) fn remote_id(oplog: &OpLog, t: usize) -> String {
    let r = oplog.local_to_remote_time(t);
    format!("{}-{}", r.agent, r.seq)
}

/// Formats a local version as a sorted wire version.
pub(super) fn to_remote(oplog: &OpLog, lv: &[usize]) -> VersionSet {
    VersionSet::new(lv.iter().map(|&t| remote_id(oplog, t)))
}

/// Maps a wire version to a normalized local version. Errors name every unknown id.
///
/// An id whose agent can never create events (empty, `ROOT`, 50+ bytes) is refused as
/// `InvalidAgent` rather than reported unknown: "unknown" means 309, which tells the client
/// to retry until the event arrives, and such an event never will.
pub(super) fn to_local(oplog: &OpLog, v: &VersionSet) -> Result<LocalVersion, TextError> {
    let mut times = LocalVersion::new();
    let mut unknown = Vec::new();
    for s in v.ids() {
        let id = EventId::parse(s)?;
        validate_agent_name(&id.agent)?;
        match lookup(oplog, &id) {
            Some(t) => times.push(t),
            None => unknown.push(s.clone()),
        }
    }
    if !unknown.is_empty() {
        return Err(TextError::UnknownVersion(VersionSet::new(unknown)));
    }
    Ok(reduce(oplog, times))
}

impl TextDoc {
    /// Err(UnknownVersion(ids not known here)) / Err(InvalidEventId); Ok if every id is known.
    /// Used for 309-style answers, so it names exactly the missing ids.
    pub fn check_known(&self, v: &VersionSet) -> Result<(), TextError> {
        to_local(&self.oplog, v).map(|_| ())
    }

    /// Does `outer`'s history include every event of `inner`?
    pub fn contains(&self, outer: &VersionSet, inner: &VersionSet) -> Result<bool, TextError> {
        let (o, i) = self.two_local(outer, inner)?;
        Ok(i.iter().all(|&t| contains_time(&self.oplog, &o, t)))
    }

    /// The minimal antichain naming the union of both histories (not DT's buggy `version_union`).
    pub fn union(&self, a: &VersionSet, b: &VersionSet) -> Result<VersionSet, TextError> {
        let (mut x, y) = self.two_local(a, b)?;
        x.extend(y);
        Ok(to_remote(&self.oplog, &reduce(&self.oplog, x)))
    }

    /// Maps two versions, reporting the unknown ids of both at once.
    pub(super) fn two_local(&self, a: &VersionSet, b: &VersionSet) -> Result<(LocalVersion, LocalVersion), TextError> {
        match (to_local(&self.oplog, a), to_local(&self.oplog, b)) {
            (Ok(x), Ok(y)) => Ok((x, y)),
            (Err(TextError::UnknownVersion(u1)), Err(TextError::UnknownVersion(u2))) => {
                Err(TextError::UnknownVersion(VersionSet::new(u1.ids().iter().chain(u2.ids()).cloned())))
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
        }
    }
}
