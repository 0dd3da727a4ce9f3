//! The key layout: how documents are laid out in the key space.
//!
//! ```text
//! 'S' ‖ u32 BE path length ‖ path               → snapshot record
//! 'L' ‖ u32 BE path length ‖ path ‖ u64 BE seq  → log record (one per durable write round)
//! ```
//! The length prefix keeps one path's keys from being a prefix of another's
//! (`/a` vs `/ab`), so "every log record of a document" is one prefix scan, in seq order.

const SNAPSHOT: u8 = b'S';
const LOG: u8 = b'L';

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
    }
}
