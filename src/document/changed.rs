//! What each round tells the folders' change log: one [`Change`] per committed round that
//! changes what a folder listing shows (a text round's new version, a file version, a delete,
//! a compaction that moves the horizon), staged into the round's own batch so the log and the
//! document become durable together (`store::changelog` gives it its position).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::changes::{Change, ChangeKind, ResourceKind};
use crate::file::FileDoc;
use crate::protocol::kind::Kind;
use crate::protocol::VersionSet;
use crate::text::TextDoc;

use super::command::WriteRequest;
use super::listing::Principal;

/// Milliseconds since 1970 of `t`.
fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// How a credential is named as an author (the same words as a file version's author).
pub(crate) fn principal_name(p: &Principal) -> String {
    format!("{} {} ({})", p.kind, p.id, p.label)
}

/// The change a committed text round makes: `created` when the document had no version before,
/// `last` the round's last write (its time and author).
pub(super) fn text_round(path: &str, doc: &TextDoc, created: bool, last: &WriteRequest, agent: &str) -> Change {
    let what = if created {
        ChangeKind::Create
    } else if last.restored_from.is_some() {
        ChangeKind::Restore
    } else {
        ChangeKind::Version
    };
    let author = match (&last.principal, &last.peer) {
        (Some(p), _) => principal_name(p),
        (None, Some(peer)) => peer.clone(),
        (None, None) => agent.to_string(),
    };
    text(path, what, doc, millis(last.received), Some(author))
}

/// A text document's change: its version and length now.
fn text(path: &str, what: ChangeKind, doc: &TextDoc, time_ms: u64, author: Option<String>) -> Change {
    Change {
        path: path.to_string(),
        kind: ResourceKind::Text,
        what,
        version: doc.version().ids().to_vec(),
        size: doc.len_cheap().0 as u64,
        time_ms,
        author,
        content_type: None,
        conflict: false,
    }
}

/// The change a compaction makes (same version, a new horizon).
pub(super) fn compaction(path: &str, doc: &TextDoc) -> Change {
    text(path, ChangeKind::Compact, doc, millis(SystemTime::now()), None)
}

/// The change erasing a resource of `kind` makes.
pub(super) fn erased(path: &str, kind: Kind) -> Change {
    Change {
        path: path.to_string(),
        kind: resource_kind(kind),
        what: ChangeKind::Delete,
        version: Vec::new(),
        size: 0,
        time_ms: millis(SystemTime::now()),
        author: None,
        content_type: None,
        conflict: false,
    }
}

/// The change a committed file version makes to `file` (already applied), which had
/// `heads_before` heads and was `live_before` (had a version that was not a delete).
pub(super) fn file_version(path: &str, file: &FileDoc, heads_before: usize, live_before: bool) -> Change {
    let heads = file.heads();
    let winner = file.winner();
    let content = winner.and_then(|v| v.content.as_ref());
    let what = if content.is_none() {
        ChangeKind::Delete
    } else if !live_before {
        ChangeKind::Create
    } else if heads.len() > 1 {
        ChangeKind::Conflict
    } else if heads_before > 1 {
        ChangeKind::Resolve
    } else {
        ChangeKind::Version
    };
    Change {
        path: path.to_string(),
        kind: ResourceKind::File,
        what,
        version: if content.is_none() {
            Vec::new()
        } else {
            VersionSet::new(heads.iter().map(|h| h.to_string())).ids().to_vec()
        },
        size: content.map_or(0, |c| c.size),
        time_ms: winner.map_or_else(|| millis(SystemTime::now()), |v| v.time_ms),
        author: winner.and_then(|v| v.author.clone()),
        content_type: content.map(|c| c.content_type.clone()),
        conflict: heads.len() > 1,
    }
}

/// The change that describes a resource as it is now, as if it had just been created (for a
/// store written before the change log existed: its resources enter the log this way once).
pub(super) fn current(path: &str, doc: &TextDoc, file: &FileDoc) -> Option<Change> {
    if !file.is_empty() {
        let change = file_version(path, file, 0, false);
        return (change.what != ChangeKind::Delete).then_some(change);
    }
    if doc.version().is_empty() {
        return None;
    }
    let mut change = text(path, ChangeKind::Create, doc, millis(SystemTime::now()), None);
    // Once, before serving: the exact length is worth a merge here.
    change.size = doc.len_chars() as u64;
    Some(change)
}

fn resource_kind(kind: Kind) -> ResourceKind {
    match kind {
        Kind::Text => ResourceKind::Text,
        Kind::File => ResourceKind::File,
    }
}
