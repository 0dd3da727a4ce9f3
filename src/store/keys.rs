//! The key layout: how documents are laid out in the key space.
//!
//! ```text
//! 'S' ‖ u32 BE path length ‖ path               → snapshot record
//! 'L' ‖ u32 BE path length ‖ path ‖ u64 BE seq  → log record (one per durable write round)
//! 'H' ‖ u32 BE path length ‖ path ‖ u64 BE n    → history block from entry n
//! 'R' ‖ u32 BE path length ‖ path ‖ u32 BE agent length ‖ agent ‖ u64 BE seq ‖ u64 BE n
//!                                               → (empty) a run of that agent's events starts
//!                                                 at seq in the history block from entry n
//! 'C' ‖ u32 BE path length ‖ path ‖ name        → checkpoint
//! 'M' ‖ u32 BE path length ‖ path               → the document's history bookkeeping
//! 'Z' ‖ u32 BE path length ‖ path               → the document's merge horizon (compaction)
//! 'T' ‖ id                                      → an access token (hash, rights, expiry)
//! 'N' ‖ id                                      → a share link (hash, path, rights, expiry)
//! 'P' ‖ id                                      → the text a pinned share link serves
//! 'F'                                           → the store's format version (`format`)
//! ```
//! The length prefix keeps one path's keys from being a prefix of another's
//! (`/a` vs `/ab`), so "every log record of a document" is one prefix scan, in seq order.
//! A change to this layout or to any record's bytes that this code could not read back
//! needs a new format version (see `format`).

const SNAPSHOT: u8 = b'S';
const LOG: u8 = b'L';
const HISTORY: u8 = b'H';
const RUN_INDEX: u8 = b'R';
const CHECKPOINT: u8 = b'C';
const META: u8 = b'M';
const HORIZON: u8 = b'Z';
const TOKEN: u8 = b'T';
const SHARE: u8 = b'N';
const PINNED: u8 = b'P';
const FORMAT: u8 = b'F';

fn doc_prefix(tag: u8, path: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(5 + path.len() + 8);
    key.push(tag);
    key.extend_from_slice(&(path.len() as u32).to_be_bytes());
    key.extend_from_slice(path.as_bytes());
    key
}

/// The key of a document's snapshot record.
pub fn snapshot(path: &str) -> Vec<u8> {
    doc_prefix(SNAPSHOT, path)
}

/// The prefix of every log record of a document.
pub fn log_prefix(path: &str) -> Vec<u8> {
    doc_prefix(LOG, path)
}

/// The key of one log record.
pub fn log_entry(path: &str, seq: u64) -> Vec<u8> {
    let mut key = log_prefix(path);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The seq of a log key produced by [`log_entry`] for `path`, if it is one.
pub fn log_seq(path: &str, key: &[u8]) -> Option<u64> {
    let prefix = log_prefix(path);
    let rest = key.strip_prefix(prefix.as_slice())?;
    let bytes: [u8; 8] = rest.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// The prefix of every history entry of a document.
pub fn history_prefix(path: &str) -> Vec<u8> {
    doc_prefix(HISTORY, path)
}

/// The key of history entry `n`.
pub fn history_entry(path: &str, n: u64) -> Vec<u8> {
    let mut key = history_prefix(path);
    key.extend_from_slice(&n.to_be_bytes());
    key
}

/// The `n` of a key made by [`history_entry`] for `path`, if it is one.
pub fn history_n(path: &str, key: &[u8]) -> Option<u64> {
    let rest = key.strip_prefix(history_prefix(path).as_slice())?;
    Some(u64::from_be_bytes(rest.try_into().ok()?))
}

/// The prefix of a document's run index.
pub fn run_index_prefix(path: &str) -> Vec<u8> {
    doc_prefix(RUN_INDEX, path)
}

/// The prefix of one agent's runs in a document's run index.
pub fn run_index_agent(path: &str, agent: &str) -> Vec<u8> {
    let mut key = run_index_prefix(path);
    key.extend_from_slice(&(agent.len() as u32).to_be_bytes());
    key.extend_from_slice(agent.as_bytes());
    key
}

/// The run-index key of the run of `agent`'s events starting at `seq` in the history block
/// whose first entry is `block`.
pub fn run_index(path: &str, agent: &str, seq: u64, block: u64) -> Vec<u8> {
    let mut key = run_index_agent(path, agent);
    key.extend_from_slice(&seq.to_be_bytes());
    key.extend_from_slice(&block.to_be_bytes());
    key
}

/// The `(seq, block)` of a key made by [`run_index`].
pub fn run_index_parts(key: &[u8]) -> Option<(u64, u64)> {
    let (_, tail) = key.split_last_chunk::<16>()?;
    let (seq, block) = tail.split_at(8);
    Some((u64::from_be_bytes(seq.try_into().ok()?), u64::from_be_bytes(block.try_into().ok()?)))
}

/// The prefix of a document's checkpoints.
pub fn checkpoint_prefix(path: &str) -> Vec<u8> {
    doc_prefix(CHECKPOINT, path)
}

/// The key of one named checkpoint.
pub fn checkpoint(path: &str, name: &str) -> Vec<u8> {
    let mut key = checkpoint_prefix(path);
    key.extend_from_slice(name.as_bytes());
    key
}

/// The key of a document's history bookkeeping record.
pub fn meta(path: &str) -> Vec<u8> {
    doc_prefix(META, path)
}

/// The key of a document's merge-horizon record.
pub fn horizon(path: &str) -> Vec<u8> {
    doc_prefix(HORIZON, path)
}

/// The prefixes of every snapshot record and every log record: between them, every stored
/// resource (text or file) has a key under one of them.
pub fn all_records() -> [Vec<u8>; 2] {
    [vec![SNAPSHOT], vec![LOG]]
}

/// The path of a snapshot or log record's key, and the prefix of all of that path's keys of
/// the same kind (to seek past them).
pub fn record_path(key: &[u8]) -> Option<(String, Vec<u8>)> {
    let (&tag, rest) = key.split_first()?;
    if tag != SNAPSHOT && tag != LOG {
        return None;
    }
    let (len, rest) = rest.split_at_checked(4)?;
    let len = u32::from_be_bytes(len.try_into().ok()?) as usize;
    let path = String::from_utf8(rest.get(..len)?.to_vec()).ok()?;
    let prefix = doc_prefix(tag, &path);
    Some((path, prefix))
}

/// The prefix under which every document with history records has its bookkeeping record:
/// one prefix scan enumerates them.
pub fn all_meta() -> Vec<u8> {
    vec![META]
}

/// The path of a key made by [`meta`], if it is one.
pub fn meta_path(key: &[u8]) -> Option<String> {
    let rest = key.strip_prefix(&[META])?;
    let (len, path) = rest.split_at_checked(4)?;
    let len = u32::from_be_bytes(len.try_into().ok()?) as usize;
    (path.len() == len).then(|| String::from_utf8(path.to_vec()).ok()).flatten()
}

/// The prefix of every access token record.
pub fn all_tokens() -> Vec<u8> {
    vec![TOKEN]
}

/// The key of one access token record (by its public id).
pub fn token(id: &str) -> Vec<u8> {
    tagged(TOKEN, id)
}

/// The prefix of every share link record.
pub fn all_shares() -> Vec<u8> {
    vec![SHARE]
}

/// The key of one share link record (by its public id).
pub fn share(id: &str) -> Vec<u8> {
    tagged(SHARE, id)
}

/// The key of the text a pinned share link serves.
pub fn pinned_text(id: &str) -> Vec<u8> {
    tagged(PINNED, id)
}

/// The key of the store's format version record: one per store, outside every document.
pub fn format_version() -> Vec<u8> {
    vec![FORMAT]
}

fn tagged(tag: u8, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + id.len());
    key.push(tag);
    key.extend_from_slice(id.as_bytes());
    key
}

/// Every prefix (and single key) that belongs to one document, for deleting it whole.
pub fn all_of(path: &str) -> [Vec<u8>; 7] {
    [
        snapshot(path),
        log_prefix(path),
        history_prefix(path),
        run_index_prefix(path),
        checkpoint_prefix(path),
        meta(path),
        horizon(path),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keys_sort_by_seq_and_do_not_collide_across_paths() {
        assert!(log_entry("/a", 1) < log_entry("/a", 2));
        assert!(log_entry("/a", 255) < log_entry("/a", 256));
        assert!(!log_entry("/ab", 0).starts_with(&log_prefix("/a")));
        assert_eq!(log_seq("/a", &log_entry("/a", 77)), Some(77));
        assert_eq!(log_seq("/a", &log_entry("/ab", 77)), None);
        assert_ne!(snapshot("/a"), log_prefix("/a"));
        assert!(history_entry("/a", 255) < history_entry("/a", 256));
        assert_eq!(history_n("/a", &history_entry("/a", 9)), Some(9));
        assert_eq!(history_n("/ab", &history_entry("/a", 9)), None);
        assert!(!run_index("/a", "xy", 1, 0).starts_with(&run_index_agent("/a", "x")));
        assert!(run_index("/a", "x", 255, 9) < run_index("/a", "x", 256, 0));
        assert_eq!(run_index_parts(&run_index("/a", "x", 255, 9)), Some((255, 9)));
        assert!(!checkpoint("/ab", "v1").starts_with(&checkpoint_prefix("/a")));
        assert_eq!(meta_path(&meta("/a/b")).as_deref(), Some("/a/b"));
        assert!(meta("/a").starts_with(&all_meta()));
        assert_eq!(meta_path(&snapshot("/a")), None);
        // Deleting a document, or listing tokens, links or documents, never touches the
        // format version.
        let version = format_version();
        for prefix in all_of("").iter().chain(&[all_meta(), all_tokens(), all_shares()]) {
            assert!(!version.starts_with(prefix), "{prefix:?}");
        }
    }
}
