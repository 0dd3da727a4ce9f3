//! [`CompactionPlan`]: a compaction prepared off the writer's path (`hub::compaction` builds it
//! from a copy of the document on the blocking pool), for the core to install in one round.

use std::collections::BTreeMap;

use crate::protocol::VersionSet;
use crate::text::Compacted;

use super::horizon::Horizon;

/// A compaction ready to install.
pub struct CompactionPlan {
    /// The compacted document.
    pub compacted: Compacted,
    /// The document version the copy was taken at.
    pub based_on: VersionSet,
    /// The new horizon (its generation is the current one's plus one: a plan made against an
    /// older horizon is refused as raced).
    pub horizon: Horizon,
    /// Listing entries to remove.
    pub drop_entries: Vec<u64>,
    /// The listing records holding those entries, as read from the store when planning (first
    /// entry number → value). Sealed blocks change only by compaction, which the horizon's
    /// generation serializes; the open block is taken from the core's memory instead.
    pub stored_blocks: BTreeMap<u64, Vec<u8>>,
    /// How many writes the compaction folds.
    pub folded_writes: u64,
}
