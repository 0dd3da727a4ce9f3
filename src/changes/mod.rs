//! The server-wide change log of folders (issue 16, groundwork: not wired into the write path
//! yet). Pure: records, cursors, keys and the batch ops that keep the log; no I/O.
//!
//! Design, and why:
//! - Every committed change to a resource (create, new version, delete, conflict, resolution,
//!   restore, a compaction that moves a horizon) gets a position in one server-wide sequence,
//!   written **in the same atomic batch as the change itself** ([`Sequencer::stage`]), so the log
//!   never shows a change that was not acknowledged and never misses one that was, across
//!   `kill -9`.
//! - Catching up needs only the latest change per path, so staging a change also deletes the
//!   path's previous entry (found through a per-path index): the log stays bounded by the number
//!   of live paths plus the changes since the last one of each path.
//! - Positions are handed out by whoever orders commits (the group-commit thread merges batches
//!   from every document in one order): a [`Sequencer`] there stamps each batch as it is merged
//!   and rolls back when the write fails, so positions follow commit order.
//! - A [`Cursor`] names a position in one store's log (its epoch, a random id written when the
//!   store is created): a cursor from another store, or older than what the compacted log can
//!   answer, is told apart from a valid one instead of yielding a silent gap.
//!
//! Keys (lowercase tags, apart from the documents' uppercase ones and the chunk references'
//! `k`/`o`):
//! ```text
//! 'q' ‖ u64 BE seq                        → Change (JSON)
//! 'y' ‖ u32 BE path length ‖ path         → u64 BE seq of the path's latest change
//! ```

mod cursor;
mod record;
mod sequencer;

pub use cursor::{Cursor, CursorError};
pub use record::{Change, ChangeKind, ResourceKind};
pub use sequencer::{change_key, change_prefix, change_seq, latest_key, under, Sequencer};
