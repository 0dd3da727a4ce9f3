//! The folders' change log, above its storage (`store::changelog`, which gives each change its
//! position in commit order and keeps the log compacted): what one change says ([`Change`]),
//! where a watcher is ([`Cursor`]), which paths a folder holds ([`under`], [`folder_problem`]),
//! and a folder's listing read page by page from the log's per-path index ([`listing`]).
//!
//! Why one log for folders: a listing, a watch, a long poll and an event stream all answer
//! "what is here, and what changed since I looked" from the same ordered, durable record, for
//! text and files alike, so a client that lists, then watches from the listing's cursor, misses
//! nothing between the two.

mod cursor;
pub mod listing;
mod record;

pub use cursor::{Cursor, CursorError};
pub use listing::{folder_problem, under, Entry, ListPage};
pub use record::{Change, ChangeKind, ResourceKind};
