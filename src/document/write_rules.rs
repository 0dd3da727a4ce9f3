//! The write path: every rule a write meets before it is accepted, in the order they run.
//!
//! This is the one place to add a rule. Each rule either lets the write go on or settles it:
//! refused (a clear error for the client) or waiting (its parents have not arrived yet; the
//! core parks it). The text layer's own validation (ranges, ids, seqs: `text::apply`) is the
//! last rule, and the only one that changes the document.

use crate::protocol::kind::Kind;
use crate::protocol::VersionSet;
use crate::text::{Applied, Change, Edit, TextDoc, TextError};

use super::command::WriteRequest;
use super::horizon::Horizon;
use super::DocError;

/// What became of a write.
pub(super) enum Verdict {
    /// Accepted: the document now holds its events (not yet durable).
    Applied(Applied),
    /// Its parents are not known yet: park it until they arrive or its deadline passes.
    Wait(VersionSet),
    /// Refused; nothing changed.
    Refused(DocError),
}

/// What the rules look at besides the write.
pub(super) struct WriteContext<'a> {
    pub path: &'a str,
    /// The resource is a file: text writes are refused.
    pub is_file: bool,
    pub doc: &'a mut TextDoc,
    pub horizon: Option<&'a Horizon>,
    pub max_document_chars: usize,
}

/// Runs every rule on `req`, in order; the last one applies it.
pub(super) fn judge(ctx: &mut WriteContext<'_>, req: &WriteRequest) -> Verdict {
    // 0. Kind: a resource keeps the kind its first write gave it (see `protocol::kind`).
    if ctx.is_file {
        return Verdict::Refused(DocError::KindMismatch {
            path: ctx.path.to_string(),
            existing: Kind::File,
            written: Kind::Text,
        });
    }
    // 1. Size: refused when it could make the document larger than allowed (an upper bound of
    //    the length, so that no merge runs just to check it).
    let limit = ctx.max_document_chars;
    if max_len_after(ctx.doc.len_upper_bound(), &req.edit) > limit
        && max_len_after(ctx.doc.len_chars(), &req.edit) > limit
    {
        return Verdict::Refused(DocError::DocumentTooLarge { limit });
    }
    // 2. Behind the horizon: a write on top of the empty document cannot be placed any more in
    //    a compacted one.
    if let Some(h) = ctx.horizon.filter(|h| h.refuses_parents(req.edit.parents.as_ref())) {
        return Verdict::Refused(h.gone());
    }
    // 3. The text layer validates and applies.
    match ctx.doc.apply_checked(req.edit.clone(), req.expect_sha256) {
        Ok(applied) => Verdict::Applied(applied),
        // 4. Unknown parents: folded away by compaction (they will never arrive: gone), or not
        //    arrived yet (wait).
        Err(TextError::UnknownVersion(ids)) => match ctx.horizon {
            Some(h) if h.behind(&ids) => Verdict::Refused(h.gone()),
            _ => Verdict::Wait(ids),
        },
        // A retry of a write that compaction folded away.
        Err(e @ TextError::PrunedVersion { .. }) => match ctx.horizon {
            Some(h) => Verdict::Refused(h.gone()),
            None => Verdict::Refused(DocError::Text(e)),
        },
        Err(e) => Verdict::Refused(DocError::Text(e)),
    }
}

/// An upper bound of the document's length after `edit`, given an upper bound of its length
/// now: a snapshot replaces the text, and patches can at most add what they insert.
fn max_len_after(current: usize, edit: &Edit) -> usize {
    match &edit.change {
        Change::Snapshot(text) => text.chars().count(),
        Change::Patches(patches) => current.saturating_add(patches.iter().map(|p| p.content.chars().count()).sum()),
    }
}
