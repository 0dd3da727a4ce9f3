//! The text merge type: Plait's only use of `diamond_types` (crates.io 1.0.0, pinned).
//!
//! A [`TextDoc`] holds one resource's history. It numbers events exactly as braid-text does (one
//! event per inserted or deleted code point, `agent-seq` ids), answers old-version, simpleton and
//! dt-history questions, and persists in DT's own binary format. Every client input is validated
//! before diamond-types sees it, because DT 1.0.0 panics on, or is permanently poisoned by,
//! out-of-range positions, unsorted or unknown parents and the `ROOT` agent
//! (`docs/DIAMOND-TYPES.md` §6; cited in this module as "DT-FACTS §N").
//!
//! This module does no I/O, knows nothing about HTTP or headers, and never sees DT types leak
//! out: the API speaks [`VersionSet`](crate::protocol::VersionSet) and
//! [`Patch`](crate::protocol::Patch) only.

mod apply;
mod chunk;
mod codec;
mod compact;
mod delta;
mod diff;
mod doc;
mod edit;
mod error;
mod event;
mod floor;
mod frontier;
mod history;
mod lengths;
mod plan;
mod pruned;
pub mod reference;
pub mod reference_concurrent;
mod xf;

#[cfg(test)]
mod tests;

pub use compact::Compacted;
pub use diff::{patches_between, unified};
pub use doc::TextDoc;
pub use edit::{Applied, Change, Edit, HistoryUpdate, Outcome};
pub use error::TextError;
pub use event::{validate_agent, EventId, MAX_AGENT_BYTES, MAX_SEQ};
pub use pruned::pruned_contains;
