//! The document core: one resource's state and every rule of its write path, with no I/O.
//!
//! Why a core without I/O: every rule about writes (what is accepted, what waits for its
//! parents, what is refused, what the listing records, when the log folds) lives in one
//! synchronous state machine that unit tests drive directly, with an injected clock, and that
//! does not care where durability comes from (today a synced RocksDB batch through the group
//! commit; later a replicated log's acknowledgement). The async shell around it
//! (`hub::shell`) receives commands, hands batches to whatever makes them durable, sends the
//! answers and publishes; it holds no rules.
//!
//! The contract with the shell, one round at a time:
//! 1. [`DocCore::submit`] queues commands (writes, a delete, a compaction to install);
//! 2. [`DocCore::plan_round`] takes what it can into one [`Round`]: the writes are applied in
//!    memory, the bookkeeping they change is staged inside the round, the answers that need
//!    nothing durable (refusals; writes whose events are all durable) come out at once;
//! 3. the shell makes `round.batch` durable and calls [`DocCore::committed`] (the staged
//!    bookkeeping is installed; the answers and the [`Published`] head come out) or
//!    [`DocCore::failed`] (everyone who waited gets the error; after a write round the shell
//!    rebuilds the document from the store with [`DocCore::reload`]).
//!
//! Invariants (tested in `document/tests`, and through the shell in `hub/shell_tests.rs`):
//! - no write is acknowledged, and no head published, before `committed` for its round
//!   (except under the test-only `AckPolicy::UnsafeBeforeDurable`);
//! - one round is out at a time: `plan_round` returns None until the shell reports back;
//! - a failed round leaves the durable state as it was and the core ready for the next write
//!   (after `reload` for a write round: diamond-types cannot forget events in memory);
//! - the core never reads the store: what it needs is handed in ([`StoredDoc`], the listing
//!   records in a [`CompactionPlan`]).
//!
//! Resource kinds: text ([`TextDoc`] behind `write_rules` and `records`) and files
//! (`file::FileDoc` behind `file_rounds`); one core holds either, the first write decides
//! which, and a write of the other kind is refused.
//!
//! [`TextDoc`]: crate::text::TextDoc

mod changed;
mod command;
mod compaction;
mod doc_core;
mod error;
mod file_rounds;
mod horizon;
mod listing;
mod listing_block;
mod parked;
mod peers;
mod published;
mod records;
mod round;
mod stored;
mod write_rules;

#[cfg(test)]
mod tests;

pub use command::{
    AckPolicy, Command, CoreSettings, FileRetention, FileWriteOutcome, FileWriteRequest, Hold, WriteOutcome,
    WriteRequest,
};
pub use compaction::CompactionPlan;
pub use doc_core::{DocCore, Needs};
pub use error::DocError;
pub use horizon::Horizon;
pub use listing::{decode_record, next_n_of, record_n, Author, HistoryEntry, Listing, NumberedEntry, Principal};
pub use listing_block::{decode_block, encode_block, BLOCK_SLOTS, BLOCK_TAG};
pub use peers::{PeerTable, PeerWrites};
pub use published::{Current, PeerWrite, Published, SharedUpdate};
pub use records::decode_text;
pub use round::{Answer, Committed, Failed, Reply, Round};
pub use stored::StoredDoc;
