//! Storage figures per resource and for the server: logical bytes (what the versions hold),
//! stored bytes (what their distinct chunks occupy at rest) and the dedupe ratio between them.

use std::collections::BTreeMap;

use crate::store::Store;

use super::{refs, ChunkError, ChunkStore};

/// Storage figures.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// Plaintext bytes of every version, summed (what storing each version whole would take).
    pub logical_bytes: u64,
    /// Bytes at rest of the distinct chunks (after dedupe, compression and sealing).
    pub stored_bytes: u64,
    /// Distinct chunks.
    pub chunks: u64,
}

impl Usage {
    /// Logical over stored bytes: 20 versions of one file with small edits show about 20;
    /// 1 for nothing shared and incompressible; 0 when nothing is stored.
    pub fn dedupe_ratio(&self) -> f64 {
        if self.stored_bytes == 0 {
            0.0
        } else {
            self.logical_bytes as f64 / self.stored_bytes as f64
        }
    }
}

/// One resource's figures: its versions' sizes, and the stored size of the distinct chunks
/// they use (a chunk shared with other resources counts fully for each of them).
pub fn resource(store: &dyn Store, resource: &str) -> Result<Usage, ChunkError> {
    let refs = refs::of_resource(store, resource)?;
    let mut distinct = BTreeMap::new();
    for r in &refs {
        distinct.insert(r.id, r.value.size.stored);
    }
    Ok(Usage {
        logical_bytes: refs::logical_bytes(refs.iter().map(|r| &r.value)),
        stored_bytes: distinct.values().map(|&n| u64::from(n)).sum(),
        chunks: distinct.len() as u64,
    })
}

/// The server's figures: every version's size, and everything the engine stores (orphans
/// not yet collected included).
pub fn server(store: &dyn Store, engine: &dyn ChunkStore) -> Result<Usage, ChunkError> {
    let totals = engine.stats()?;
    Ok(Usage {
        logical_bytes: refs::server_logical_bytes(store)?,
        stored_bytes: totals.stored_bytes,
        chunks: totals.chunks,
    })
}
