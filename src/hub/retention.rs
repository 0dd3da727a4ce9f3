//! Retention policies: how much history each path prefix keeps.
//!
//! A rule is written `PREFIX all` (keep everything, the default for paths no rule matches)
//! or `PREFIX [days=D] [versions=N]`: keep every write received in the last D days or among
//! the last N writes, and let compaction fold everything older into a snapshot. With both,
//! a write is kept when EITHER keeps it, so adding a bound never loses more than the other
//! alone would. The longest matching prefix wins. The newest write is always kept, so the
//! document's current version never falls behind its own horizon.

use std::str::FromStr;

use crate::store::Store;

use super::HubError;

/// One prefix's rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionRule {
    /// Paths starting with this get the rule.
    pub prefix: String,
    /// Keep writes received within this many days (None: no age bound).
    pub keep_days: Option<u64>,
    /// Keep this many newest writes (None: no count bound).
    pub keep_versions: Option<u64>,
}

impl RetentionRule {
    /// True when the rule keeps everything.
    pub fn keeps_all(&self) -> bool {
        self.keep_days.is_none() && self.keep_versions.is_none()
    }
}

impl FromStr for RetentionRule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut words = s.split_whitespace();
        let prefix = words.next().ok_or("a retention rule needs a path prefix, e.g. \"/notes/ days=30\"")?;
        if !prefix.starts_with('/') {
            return Err(format!("retention prefix {prefix:?} must start with /"));
        }
        let mut rule = RetentionRule { prefix: prefix.to_string(), keep_days: None, keep_versions: None };
        let mut all = false;
        for word in words {
            let number = |v: &str| v.parse::<u64>().ok().filter(|n| *n > 0);
            match word.split_once('=') {
                Some(("days", v)) => {
                    rule.keep_days = Some(number(v).ok_or(format!("days must be a positive whole number, not {v:?}"))?)
                }
                Some(("versions", v)) => {
                    rule.keep_versions =
                        Some(number(v).ok_or(format!("versions must be a positive whole number, not {v:?}"))?)
                }
                None if word == "all" => all = true,
                _ => return Err(format!("unknown retention setting {word:?}; use all, days=D or versions=N")),
            }
        }
        match (all, rule.keeps_all()) {
            (true, false) => Err("`all` cannot be combined with days= or versions=".into()),
            (false, true) => Err(format!("say what {prefix} keeps: all, days=D and/or versions=N")),
            _ => Ok(rule),
        }
    }
}

/// Every rule; the longest matching prefix applies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    rules: Vec<RetentionRule>,
}

impl RetentionPolicy {
    /// A policy from rules (order does not matter).
    pub fn new(rules: Vec<RetentionRule>) -> Self {
        RetentionPolicy { rules }
    }

    /// True when no rule ever compacts anything.
    pub fn keeps_everything(&self) -> bool {
        self.rules.iter().all(RetentionRule::keeps_all)
    }

    /// The rule for `path`, if one compacts.
    pub fn rule_for(&self, path: &str) -> Option<&RetentionRule> {
        self.rules
            .iter()
            .filter(|r| path.starts_with(&r.prefix))
            .max_by_key(|r| r.prefix.len())
            .filter(|r| !r.keeps_all())
    }
}

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// The newest history entry number `rule` lets compaction fold, given the document's entries
/// `first_n..next_n` and the time now; None when it keeps them all.
pub fn foldable_through(
    store: &dyn Store,
    path: &str,
    rule: &RetentionRule,
    first_n: u64,
    next_n: u64,
    now_ms: u64,
) -> Result<Option<u64>, HubError> {
    // The newest write is always kept.
    let Some(mut limit) = next_n.checked_sub(2) else { return Ok(None) };
    if let Some(n) = rule.keep_versions {
        let Some(by_count) = next_n.checked_sub(n.saturating_add(1)) else { return Ok(None) };
        limit = limit.min(by_count);
    }
    if limit < first_n {
        return Ok(None);
    }
    let Some(days) = rule.keep_days else { return Ok(Some(limit)) };
    let cutoff = now_ms.saturating_sub(days.saturating_mul(DAY_MS));
    // Entries are numbered in commit order, so receive times rise with n: binary search for
    // the last entry received before the cutoff.
    let (mut lo, mut hi, mut found) = (first_n, limit, None);
    while lo <= hi {
        let mid = lo + (hi - lo) / 2;
        match received_ms(store, path, mid)? {
            Some(t) if t < cutoff => {
                found = Some(mid);
                lo = mid + 1;
            }
            _ => match mid.checked_sub(1) {
                Some(m) => hi = m,
                None => break,
            },
        }
    }
    Ok(found)
}

fn received_ms(store: &dyn Store, path: &str, n: u64) -> Result<Option<u64>, HubError> {
    Ok(super::history::entry_at(store, path, n)?.map(|e| e.received_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_with_clear_errors() {
        let r: RetentionRule = "/notes/ days=30 versions=100".parse().unwrap();
        assert_eq!((r.prefix.as_str(), r.keep_days, r.keep_versions), ("/notes/", Some(30), Some(100)));
        assert!("/logs/ all".parse::<RetentionRule>().unwrap().keeps_all());
        for bad in ["", "notes/ days=1", "/a/", "/a/ days=0", "/a/ days=x", "/a/ all days=1", "/a/ weeks=2"] {
            assert!(bad.parse::<RetentionRule>().is_err(), "{bad:?}");
        }
    }

    /// Ten writes received at 1 s, 2 s, … 10 s (entries 0..=9).
    fn ten_writes() -> crate::store::MemoryStore {
        use crate::document::{Author, HistoryEntry, Listing};
        let store = crate::store::MemoryStore::new();
        let mut meta = Listing::default();
        let mut batch = crate::store::Batch::new();
        let entries: Vec<HistoryEntry> = (0..10u64)
            .map(|i| HistoryEntry {
                version: vec![format!("a-{i}")],
                parents: vec![],
                received_ms: (i + 1) * 1000,
                author: Author::default(),
                inserted: 1,
                deleted: 0,
                restored_from: None,
            })
            .collect();
        meta.record("/d", &entries, &mut batch).unwrap();
        store.write(&batch).unwrap();
        store
    }

    #[test]
    fn which_writes_a_rule_lets_go() {
        let store = ten_writes();
        let rule = |s: &str| s.parse::<RetentionRule>().unwrap();
        let fold = |r: &str, first: u64, now: u64| foldable_through(&store, "/d", &rule(r), first, 10, now).unwrap();
        assert_eq!(fold("/ versions=3", 0, 0), Some(6), "the newest 3 stay");
        assert_eq!(fold("/ versions=9", 0, 0), Some(0));
        assert_eq!(fold("/ versions=10", 0, 0), None);
        assert_eq!(fold("/ versions=3", 7, 0), None, "already folded up to there");
        // days=1 at 'now' = 1 day + 5.5 s: writes received before 5.5 s (entries 0..=4) may go.
        assert_eq!(fold("/ days=1", 0, DAY_MS + 5500), Some(4));
        assert_eq!(fold("/ days=1", 0, DAY_MS), None, "nothing is a day old");
        assert_eq!(fold("/ days=1", 0, 100 * DAY_MS), Some(8), "the newest write always stays");
        // Both bounds: a write stays when either keeps it.
        assert_eq!(fold("/ days=1 versions=8", 0, DAY_MS + 5500), Some(1));
        assert_eq!(fold("/ days=1 versions=2", 0, DAY_MS + 5500), Some(4));
    }

    #[test]
    fn the_longest_prefix_wins() {
        let rule = |s: &str| s.parse::<RetentionRule>().unwrap();
        let p = RetentionPolicy::new(vec![rule("/ versions=10"), rule("/keep/ all"), rule("/keep/tmp/ days=1")]);
        assert_eq!(p.rule_for("/x").map(|r| r.keep_versions), Some(Some(10)));
        assert!(p.rule_for("/keep/x").is_none());
        assert_eq!(p.rule_for("/keep/tmp/x").map(|r| r.keep_days), Some(Some(1)));
        assert!(!p.keeps_everything());
        assert!(RetentionPolicy::default().keeps_everything());
    }
}
