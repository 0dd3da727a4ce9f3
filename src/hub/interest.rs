//! Which folder watches a change concerns, found without waking the others: every watch joins
//! the entry of its scope (a folder's children, a folder's subtree, one resource), and the log's
//! listener, run on the commit thread for each durable change, looks up only the scopes that can
//! hold the change's path (its parent's children, each ancestor's subtree, the path itself) and
//! records the change's position there. So a change wakes the watches it concerns, not every
//! watch on the server (10,000 people each watching their own folder would otherwise wake
//! 10,000 tasks per write).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

use crate::store::Logged;

use super::folders::Scope;

/// Positions kept per scope for watches that are behind; one that fell further behind scans.
const KEPT: usize = 1024;

/// The watches of every scope.
#[derive(Default)]
pub(crate) struct Interest {
    scopes: Mutex<HashMap<Scope, Arc<Wanted>>>,
}

/// One scope's recent positions and the watch its watchers wait on.
pub(crate) struct Wanted {
    /// The last position that concerned the scope (its watchers wait for it to change).
    pub tx: watch::Sender<u64>,
    seqs: Mutex<Seqs>,
}

#[derive(Default)]
struct Seqs {
    recent: VecDeque<u64>,
    /// The highest position dropped from `recent` (a watcher behind it must scan).
    dropped_through: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Interest {
    /// The entry of `scope`, created on first use; a watcher holds it while it lives.
    pub fn join(&self, scope: &Scope) -> Arc<Wanted> {
        let mut scopes = lock(&self.scopes);
        scopes
            .entry(scope.clone())
            .or_insert_with(|| Arc::new(Wanted { tx: watch::channel(0).0, seqs: Mutex::default() }))
            .clone()
    }

    /// A watcher of `scope` let go of `wanted`: the entry goes with its last watcher.
    pub fn leave(&self, scope: &Scope, wanted: Arc<Wanted>) {
        let mut scopes = lock(&self.scopes);
        drop(wanted);
        if scopes.get(scope).is_some_and(|w| Arc::strong_count(w) == 1) {
            scopes.remove(scope);
        }
    }

    /// Records each change in the scopes that can hold it.
    pub fn publish(&self, changes: &[Arc<Logged>]) {
        let scopes = lock(&self.scopes);
        if scopes.is_empty() {
            return;
        }
        for l in changes {
            for scope in scopes_of(&l.path) {
                if let Some(w) = scopes.get(&scope) {
                    w.push(l.seq);
                }
            }
        }
    }
}

impl Wanted {
    fn push(&self, seq: u64) {
        let mut seqs = lock(&self.seqs);
        if seqs.recent.len() == KEPT {
            if let Some(dropped) = seqs.recent.pop_front() {
                seqs.dropped_through = dropped;
            }
        }
        seqs.recent.push_back(seq);
        drop(seqs);
        self.tx.send_replace(seq);
    }

    /// The positions after `at` that concerned the scope, or None when some were dropped
    /// (the caller scans instead).
    pub fn after(&self, at: u64) -> Option<Vec<u64>> {
        let seqs = lock(&self.seqs);
        if seqs.dropped_through > at {
            return None;
        }
        let from = seqs.recent.partition_point(|s| *s <= at);
        Some(seqs.recent.iter().skip(from).copied().collect())
    }
}

/// Every scope that can hold `path`: the path itself, its parent folder's children, and the
/// subtree of each folder above it.
fn scopes_of(path: &str) -> Vec<Scope> {
    let mut out = vec![Scope::Path(path.to_string())];
    let mut at = 0;
    while let Some(i) = path[at..].find('/') {
        let folder = &path[..at + i + 1];
        at += i + 1;
        if at < path.len() {
            out.push(Scope::Folder { folder: folder.to_string(), recursive: true });
        }
        if !path[at..].contains('/') && at < path.len() {
            out.push(Scope::Folder { folder: folder.to_string(), recursive: false });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_in_its_parents_children_and_every_ancestors_subtree() {
        let f = |folder: &str, recursive| Scope::Folder { folder: folder.into(), recursive };
        assert_eq!(
            scopes_of("/a/b/c"),
            vec![Scope::Path("/a/b/c".into()), f("/", true), f("/a/", true), f("/a/b/", true), f("/a/b/", false)]
        );
        assert_eq!(scopes_of("/x"), vec![Scope::Path("/x".into()), f("/", true), f("/", false)]);
        for scope in scopes_of("/a/b/c") {
            assert!(scope.holds("/a/b/c"), "{scope:?}");
        }
    }

    #[test]
    fn a_scope_keeps_its_recent_positions_and_says_when_it_dropped_some() {
        let interest = Interest::default();
        let scope = Scope::Folder { folder: "/a/".into(), recursive: false };
        let wanted = interest.join(&scope);
        let change = |seq, path: &str| Arc::new(Logged::new(seq, path.into(), false, Vec::new()));
        interest.publish(&[change(1, "/a/x"), change(2, "/b/y"), change(3, "/a/z/w"), change(4, "/a/y")]);
        assert_eq!(wanted.after(0), Some(vec![1, 4]));
        assert_eq!(wanted.after(1), Some(vec![4]));
        assert_eq!(*wanted.tx.borrow(), 4);
        let many: Vec<_> = (10..10 + KEPT as u64 + 5).map(|s| change(s, "/a/x")).collect();
        interest.publish(&many);
        assert_eq!(wanted.after(4), None, "dropped positions: scan");
        assert_eq!(wanted.after(20).map(|v| v.len()), Some(KEPT + 5 - 11));
        interest.leave(&scope, wanted);
        assert!(lock(&interest.scopes).is_empty(), "the entry goes with its last watcher");
    }
}
