//! [`Lengths`]: remembered text lengths at recent versions, so that a write whose `Parents`
//! lag the tip does not have to replay history just to learn its parent text's length.
//!
//! Why: resolving a patch needs the length of the text at the edit's parents. For any version
//! but the tip, diamond-types 1.0.0 can only answer by transforming every operation since the
//! parents' common ancestor with the tip, which is the whole history when clients write long
//! concurrent chains (each PUT parented on the client's own previous one). Yet the parents a
//! client sends are almost always a version this server produced moments ago: the `Version` of
//! its last PUT (one event) or of a GET (a tip). Both lengths are known for free when the edit
//! is applied, and a version's length never changes, so a small bounded map answers them.

use diamond_types::LocalVersion;
use std::collections::{HashMap, VecDeque};

/// How many versions are remembered per document (oldest forgotten first). With one entry per
/// write and one per tip, this covers the last ~1,000 writes: far more than any client lags.
const CAPACITY: usize = 2048;

/// A bounded, insertion-ordered map from a version (local frontier) to its text length.
#[derive(Clone, Debug, Default)]
pub(super) struct Lengths {
    map: HashMap<LocalVersion, usize>,
    order: VecDeque<LocalVersion>,
}

impl Lengths {
    /// The remembered length of the text at `version`, if any.
    pub fn get(&self, version: &[usize]) -> Option<usize> {
        self.map.get(version).copied()
    }

    /// Remembers `len` as the length at `version` (a sorted local frontier).
    pub fn insert(&mut self, version: LocalVersion, len: usize) {
        if self.map.insert(version.clone(), len).is_some() {
            return;
        }
        self.order.push_back(version);
        while self.order.len() > CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use smallvec::smallvec;

    #[test]
    fn remembers_and_forgets_oldest_first() {
        let mut l = Lengths::default();
        for i in 0..CAPACITY + 10 {
            l.insert(smallvec![i], i * 2);
        }
        assert_eq!(l.get(&[0]), None);
        assert_eq!(l.get(&[9]), None);
        assert_eq!(l.get(&[10]), Some(20));
        assert_eq!(l.get(&[CAPACITY + 9]), Some((CAPACITY + 9) * 2));
        assert_eq!(l.map.len(), CAPACITY);
        // Re-inserting a known version neither duplicates it in the order nor evicts.
        l.insert(smallvec![10], 20);
        assert_eq!(l.order.len(), CAPACITY);
        assert_eq!(l.get(&[10]), Some(20));
    }
}
