//! The store's format version: one record saying which layout of keys and values a store
//! holds, so a plait never reads (or writes into) bytes laid out in a way it does not know.
//!
//! The record is written when a store is created (the first open of an empty store) and
//! checked by every open. A store holding any other version, newer or older, or a record
//! that is not a version number, is refused with a message naming the store, the version
//! found and the one this build reads: reading on would turn a format mismatch into 500s
//! (or silently wrong answers) at the first request that touches an affected record.
//!
//! A store with data but no record was written before the record existed, by one of several
//! pre-release layouts (the history listing as one JSON record plus one id-index key per
//! write, for one) that nothing was ever released with and this code no longer reads. The
//! records do not say which layout wrote them, and telling them apart means reading every
//! record, so such a store is refused rather than adopted as version 1. An empty store
//! without the record (created, never written) is simply given it.
//!
//! The value is the version in ASCII decimal (`2`), legible with any key-value tool.
//! Version 2 added file resources (file records behind their own tags, chunk references);
//! version 3 the folders' change log (`changelog`: new keys, and every committed change must
//! enter it, which a build that reads version 2 would not do). A version-1 or version-2 store
//! is upgraded by rewriting the record and marking its resources for the log's backfill (the
//! server adds one entry per existing resource before it listens).

use super::{keys, Batch, Store, StoreError};

/// The format this build writes and reads. Bump it with any change to the key layout or to
/// a record's bytes that the code before the change could not read back, and teach `check`
/// what to do with the versions before it.
pub const FORMAT_VERSION: u32 = 3;

/// At most this many bytes of an unreadable record are shown in the error.
const SHOWN_BYTES: usize = 32;

/// Why a store's format is not one this build reads.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// A version number, but not ours.
    #[error(
        "holds store format version {found}, but this plait reads format version {FORMAT_VERSION} only{}",
        if *found > FORMAT_VERSION { " (a newer plait wrote it)" } else { "" }
    )]
    Unknown {
        /// The version the store holds.
        found: u32,
    },
    /// The record is not a version number.
    #[error(
        "holds an unreadable store format version record (`{}`), not a version number; this plait reads format version {FORMAT_VERSION}",
        found.escape_ascii()
    )]
    Unreadable {
        /// The record's first bytes.
        found: Vec<u8>,
    },
    /// Data, but no record: a pre-release plait wrote it.
    #[error(
        "holds data but no store format version record: a pre-release plait wrote it, in a layout this plait does not read (it reads format version {FORMAT_VERSION}); move it aside and start with an empty data dir"
    )]
    Unversioned,
}

/// The record a new store gets: the format version key and the current version.
pub fn current_record() -> (Vec<u8>, Vec<u8>) {
    (keys::format_version(), FORMAT_VERSION.to_string().into_bytes())
}

/// The version a record holds: ASCII decimal digits, nothing else.
pub fn parse(value: &[u8]) -> Result<u32, FormatError> {
    let unreadable = || FormatError::Unreadable { found: value.iter().copied().take(SHOWN_BYTES).collect() };
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(unreadable());
    }
    std::str::from_utf8(value).ok().and_then(|s| s.parse().ok()).ok_or_else(unreadable)
}

/// Checks that `store` (at `location`, for the message) holds [`FORMAT_VERSION`], writing
/// the record into a store that is empty. Any other store is refused with
/// [`StoreError::Format`].
pub fn check(store: &dyn Store, location: &str) -> Result<(), StoreError> {
    let refuse = |problem| StoreError::Format { location: location.to_string(), problem };
    match store.get(&keys::format_version())? {
        Some(value) => match parse(&value).map_err(refuse)? {
            FORMAT_VERSION => Ok(()),
            // Versions 1 and 2 lack file resources (1) and the change log (1, 2): new keys and
            // new record tags, so upgraded by saying so, and by marking the existing resources
            // for the log's backfill. A build that reads an older version only then refuses the
            // store instead of misreading a file or writing without the log.
            1 | 2 => {
                let (key, value) = current_record();
                let mut batch = Batch::new();
                batch.put(key, value);
                super::changelog::ChangeLog::backfill_marker(&mut batch);
                store.write(&batch)
            }
            found => Err(refuse(FormatError::Unknown { found })),
        },
        // One reverse seek: is there any key at all?
        None if store.scan_prefix_rev(&[], None, 1)?.is_empty() => {
            let (key, value) = current_record();
            let mut batch = Batch::new();
            batch.put(key, value);
            store.write(&batch)
        }
        None => Err(refuse(FormatError::Unversioned)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_decimal_digits_are_a_version() {
        assert_eq!(parse(b"1"), Ok(1));
        assert_eq!(parse(b"0042"), Ok(42));
        assert_eq!(parse(b"4294967295"), Ok(u32::MAX));
        for bad in [&b""[..], b"+1", b"-1", b" 1", b"1\n", b"4294967296", b"x9\xff", b"\x00\x00\x00\x01"] {
            assert_eq!(parse(bad), Err(FormatError::Unreadable { found: bad.to_vec() }), "{:?}", bad.escape_ascii());
        }
        let long = vec![b'x'; 100];
        assert_eq!(parse(&long), Err(FormatError::Unreadable { found: vec![b'x'; SHOWN_BYTES] }));
    }

    #[test]
    fn messages_say_what_was_found_and_what_is_read() {
        let at = |problem| StoreError::Format { location: "/srv/plait".into(), problem }.to_string();
        let newer = at(FormatError::Unknown { found: 7 });
        let reads = format!("version {FORMAT_VERSION}");
        assert!(newer.contains("/srv/plait") && newer.contains("version 7") && newer.contains(&reads), "{newer}");
        assert!(newer.contains("newer"), "{newer}");
        let older = at(FormatError::Unknown { found: 0 });
        assert!(older.contains("version 0") && !older.contains("newer"), "{older}");
        let garbage = at(FormatError::Unreadable { found: b"x9\xff".to_vec() });
        assert!(garbage.contains("`x9\\xff`") && garbage.contains(&reads), "{garbage}");
        let bare = at(FormatError::Unversioned);
        assert!(bare.contains("/srv/plait") && bare.contains("pre-release") && bare.contains(&reads), "{bare}");
    }
}
