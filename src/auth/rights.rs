//! Rights, what a request needs, and whether a path lies under a prefix. Pure values.

use serde::{Deserialize, Serialize};

/// A token's right on its prefixes. Ordered: each includes the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Right {
    /// Read documents, subscribe, browse history.
    Read,
    /// Also write, delete and restore documents.
    Write,
    /// Also compact; on `/`, manage tokens and every share link.
    Admin,
}

/// A share link's right on its one document. Ordered like [`Right`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShareRight {
    /// `GET`/`HEAD` of the text.
    Read,
    /// Also `Subscribe`.
    Subscribe,
    /// Also `PUT`/`PATCH`/`POST`.
    Write,
}

/// What a request does to a path, from the point of view of access control.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Reads without subscribing (GET, HEAD, OPTIONS, history, diff).
    Read,
    /// Opens a subscription.
    Subscribe,
    /// Changes the document (PUT, PATCH, POST, DELETE, restore, checkpoints).
    Write,
    /// Destroys history (compaction) or manages credentials.
    Admin,
}

impl Action {
    /// The token right this action needs.
    pub fn token_right(self) -> Right {
        match self {
            Action::Read | Action::Subscribe => Right::Read,
            Action::Write => Right::Write,
            Action::Admin => Right::Admin,
        }
    }

    /// The share right this action needs; None when no share link may do it.
    pub fn share_right(self) -> Option<ShareRight> {
        match self {
            Action::Read => Some(ShareRight::Read),
            Action::Subscribe => Some(ShareRight::Subscribe),
            Action::Write => Some(ShareRight::Write),
            Action::Admin => None,
        }
    }
}

/// Whether `path` lies under `prefix`, by whole segments: `/notes` and `/notes/` cover
/// `/notes` and `/notes/a`, never `/notes2`; `/` covers every path. Both are raw paths as
/// sent (documents are named by their raw paths, so `/%6Eotes` is not under `/notes`).
pub fn covers(prefix: &str, path: &str) -> bool {
    let base = prefix.strip_suffix('/').unwrap_or(prefix);
    if base.is_empty() {
        return path.starts_with('/');
    }
    path == base || path.strip_prefix(base).is_some_and(|rest| rest.starts_with('/'))
}

/// Longest prefix accepted, in bytes (as long as the longest document path).
pub const MAX_PREFIX_BYTES: usize = 4096;

/// Why a prefix cannot be granted, or None when it can. A prefix is a path that a
/// document could have, optionally ending in `/`: it starts with `/`, has no empty, `.` or
/// `..` segment (raw: escaped forms never match raw request paths anyway), no control
/// character, no `?` or `#`.
pub fn prefix_problem(prefix: &str) -> Option<&'static str> {
    if !prefix.starts_with('/') {
        return Some("a prefix must start with /");
    }
    if prefix.len() > MAX_PREFIX_BYTES {
        return Some("a prefix may be at most 4096 bytes");
    }
    if prefix.chars().any(|c| c.is_control() || c == '?' || c == '#' || c == ' ') {
        return Some("a prefix may not contain control characters, spaces, ? or #");
    }
    if prefix == "/" {
        return None;
    }
    let body = prefix.strip_suffix('/').unwrap_or(prefix);
    if body[1..].split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Some("a prefix may not contain empty, . or .. segments");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_cover_whole_segments() {
        for prefix in ["/notes", "/notes/"] {
            assert!(covers(prefix, "/notes"));
            assert!(covers(prefix, "/notes/a"));
            assert!(covers(prefix, "/notes/a/b"));
            assert!(!covers(prefix, "/notes2"));
            assert!(!covers(prefix, "/Notes/a"));
            assert!(!covers(prefix, "/%6Eotes/a"));
            assert!(!covers(prefix, "//notes/a"));
            assert!(!covers(prefix, "/"));
        }
        assert!(covers("/", "/anything"));
        assert!(covers("/", "/"));
        assert!(covers("/a/b", "/a/b/c"));
        assert!(!covers("/a/b", "/a/bc"));
        assert!(!covers("/a/b", "/a"));
    }

    #[test]
    fn bad_prefixes_are_named() {
        for ok in ["/", "/notes", "/notes/", "/a%20b/c/"] {
            assert_eq!(prefix_problem(ok), None, "{ok}");
        }
        for bad in ["", "notes", "//", "/a//b", "/a/../b", "/a/./", "/a?x", "/a\n", "/a b"] {
            assert!(prefix_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn rights_are_ordered() {
        assert!(Right::Admin > Right::Write && Right::Write > Right::Read);
        assert!(ShareRight::Write > ShareRight::Subscribe && ShareRight::Subscribe > ShareRight::Read);
        assert_eq!(Action::Subscribe.token_right(), Right::Read);
        assert_eq!(Action::Admin.share_right(), None);
    }
}
