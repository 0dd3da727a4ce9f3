//! [`StoredDoc`]: a document's records as the shell read them from the store, so that the core
//! can rebuild its state without doing any I/O itself.

/// Every record the core needs to rebuild a document, read at one moment by the shell
/// (`hub::loading`). Absent records are `None`/empty: a path never written is an empty document.
#[derive(Clone, Debug, Default)]
pub struct StoredDoc {
    /// The snapshot record (`keys::snapshot`).
    pub snapshot: Option<Vec<u8>>,
    /// The log records (`keys::log_prefix`), key and value, in seq order.
    pub log: Vec<(Vec<u8>, Vec<u8>)>,
    /// The listing's bookkeeping record (`keys::meta`).
    pub meta: Option<Vec<u8>>,
    /// The newest listing record (the greatest key under `keys::history_prefix`), key and value:
    /// the block the next entries may go into.
    pub newest_block: Option<(Vec<u8>, Vec<u8>)>,
    /// The merge-horizon record (`keys::horizon`).
    pub horizon: Option<Vec<u8>>,
}
