//! A folder's listing, page by page, from the change log's per-path index (every live path's
//! latest change, in path order): the resources directly in the folder and its sub-folders
//! (or the whole subtree), each page bounded in entries and in records read.
//!
//! A folder is a path ending in `/`; it exists while some live resource is under it (no
//! folder records: creating `/a/b/c` makes `/a/` and `/a/b/` appear, deleting it makes them
//! go). A path may be a resource and a folder at once: `/a` (a resource) and `/a/` (the
//! folder holding `/a/b`) are different names, listed as `a` and `a/`.

use crate::store::{ChangeLog, Store, StoreError};

use super::record::Change;

/// Records read per store scan.
const SCAN: usize = 512;

/// Why `folder` cannot be listed or watched, or None when it can: it must start and end with
/// `/` and have no empty segment (other than the root's).
pub fn folder_problem(folder: &str) -> Option<&'static str> {
    if !folder.starts_with('/') || !folder.ends_with('/') {
        return Some("a folder is a path that starts and ends with /");
    }
    if folder.len() > 1 && folder[1..folder.len() - 1].split('/').any(str::is_empty) {
        return Some("a folder path has no empty segment (//)");
    }
    None
}

/// Whether `path` is in the folder `folder` (which ends with `/`): directly (`recursive`
/// false: `/a/` holds `/a/b`; `/a/b/c` is in the sub-folder `/a/b/`) or anywhere below it.
pub fn under(path: &str, folder: &str, recursive: bool) -> bool {
    match path.strip_prefix(folder) {
        Some(rest) if !rest.is_empty() => recursive || !rest.contains('/'),
        _ => false,
    }
}

/// One line of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A resource, as its latest change describes it.
    Resource(Change),
    /// A sub-folder (its path, ending with `/`).
    Folder(String),
}

impl Entry {
    /// The entry's path (a folder's ends with `/`).
    pub fn path(&self) -> &str {
        match self {
            Entry::Resource(c) => &c.path,
            Entry::Folder(p) => p,
        }
    }
}

/// One page of a listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    pub entries: Vec<Entry>,
    /// Where the next page starts (pass it as `after`), None at the end of the listing.
    pub next: Option<String>,
}

/// The first key at or after which the listing continues after `after` (a path returned as
/// `next`): past a sub-folder's whole subtree, or just past a resource.
fn resume_from(after: &str) -> String {
    match after.strip_suffix('/') {
        // '0' is the character after '/': the first path past every path under the folder.
        Some(folder) => format!("{folder}0"),
        None => format!("{after}\u{1}"),
    }
}

/// Up to `limit` entries of `folder` after `after`, reading at most `budget` records (a page
/// whose budget runs out ends early, with `next` set). `visible` says whether the caller may
/// see a resource path or, for a path ending in `/`, anything under that folder.
pub fn page(
    store: &dyn Store,
    folder: &str,
    recursive: bool,
    after: Option<&str>,
    limit: usize,
    budget: usize,
    visible: impl Fn(&str) -> bool,
) -> Result<ListPage, StoreError> {
    let mut out = ListPage::default();
    let mut from = after.map_or_else(|| folder.to_string(), resume_from);
    let mut read = 0usize;
    loop {
        let batch = ChangeLog::latest_from(store, folder, &from, SCAN)?;
        let exhausted = batch.len() < SCAN;
        let mut seek = None;
        for logged in &batch {
            read += 1;
            let Some(rest) = logged.path.strip_prefix(folder) else { continue };
            let sub = (!recursive).then(|| rest.find('/')).flatten();
            if let Some(slash) = sub {
                // A path inside a sub-folder: the sub-folder is listed once, at its first live
                // path, and the scan then jumps past its subtree.
                let sub = &logged.path[..folder.len() + slash + 1];
                if !visible(sub) {
                    seek = Some(resume_from(sub));
                    break;
                }
                if logged.deleted {
                    continue;
                }
                out.entries.push(Entry::Folder(sub.to_string()));
                seek = Some(resume_from(sub));
            } else if !rest.is_empty() && !logged.deleted && visible(&logged.path) {
                match Change::decode(&logged.record) {
                    Some(change) => out.entries.push(Entry::Resource(change)),
                    None => tracing::warn!(path = %logged.path, "an unreadable change record; not listed"),
                }
            }
            if out.entries.len() >= limit || read >= budget {
                let last = out.entries.last().map(|e| e.path().to_string());
                out.next = Some(last.unwrap_or_else(|| logged.path.clone()));
                return Ok(out);
            }
            if seek.is_some() {
                break;
            }
        }
        match seek {
            Some(next) => from = next,
            None if exhausted => return Ok(out),
            None => match batch.last() {
                Some(last) => from = resume_from(&last.path),
                None => return Ok(out),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::changes::{ChangeKind, ResourceKind};
    use crate::store::{Batch, MemoryStore, MIN_WINDOW};

    fn change(path: &str, what: ChangeKind) -> Change {
        Change {
            path: path.into(),
            kind: ResourceKind::Text,
            what,
            version: vec!["a-1".into()],
            size: 1,
            time_ms: 1,
            author: None,
            content_type: None,
            conflict: false,
        }
    }

    fn store_with(paths: &[(&str, ChangeKind)]) -> MemoryStore {
        let store = MemoryStore::new();
        let log = ChangeLog::open(&store, MIN_WINDOW).unwrap();
        for (p, what) in paths {
            let mut batch = Batch::new();
            batch.log(change(p, *what).entry());
            log.write(&store, &mut batch).unwrap();
        }
        store
    }

    fn names(page: &ListPage) -> Vec<&str> {
        page.entries.iter().map(Entry::path).collect()
    }

    #[test]
    fn folders_hold_their_children_or_their_subtree() {
        assert!(under("/a/b", "/a/", false) && under("/a/b/c", "/a/", true));
        assert!(!under("/a/b/c", "/a/", false), "grandchildren are under the sub-folder");
        assert!(!under("/a/", "/a/", true) && !under("/ab", "/a/", true) && !under("/a", "/a/", true));
        assert!(under("/x", "/", false) && !under("/x/y", "/", false));
        assert_eq!(folder_problem("/a/b/"), None);
        assert_eq!(folder_problem("/"), None);
        assert!(folder_problem("/a").is_some() && folder_problem("a/").is_some() && folder_problem("/a//").is_some());
    }

    #[test]
    fn a_listing_shows_children_and_live_sub_folders_once() {
        use ChangeKind::*;
        let store = store_with(&[
            ("/n/a", Create),
            ("/n/b/x", Create),
            ("/n/b/y", Create),
            ("/n/b", Create),
            ("/n/c/old", Delete),
            ("/n/d", Delete),
            ("/n2", Create),
            ("/n/e/f/g", Create),
        ]);
        let all = page(&store, "/n/", false, None, 100, 10_000, |_| true).unwrap();
        assert_eq!(names(&all), vec!["/n/a", "/n/b", "/n/b/", "/n/e/"]);
        assert_eq!(all.next, None);
        let deep = page(&store, "/n/", true, None, 100, 10_000, |_| true).unwrap();
        assert_eq!(names(&deep), vec!["/n/a", "/n/b", "/n/b/x", "/n/b/y", "/n/e/f/g"]);
        // Pages of two, resumed from `next`.
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let p = page(&store, "/n/", false, after.as_deref(), 2, 10_000, |_| true).unwrap();
            seen.extend(names(&p).into_iter().map(str::to_string));
            match p.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(seen, vec!["/n/a", "/n/b", "/n/b/", "/n/e/"]);
        // Only what the caller may see.
        let some = page(&store, "/n/", false, None, 100, 10_000, |p| p != "/n/b/" && p != "/n/a").unwrap();
        assert_eq!(names(&some), vec!["/n/b", "/n/e/"]);
        // A budget ends a page early, and the listing goes on from there.
        let short = page(&store, "/n/", true, None, 100, 2, |_| true).unwrap();
        assert_eq!(names(&short), vec!["/n/a", "/n/b"]);
        let rest = page(&store, "/n/", true, short.next.as_deref(), 100, 10_000, |_| true).unwrap();
        assert_eq!(names(&rest), vec!["/n/b/x", "/n/b/y", "/n/e/f/g"]);
    }
}
