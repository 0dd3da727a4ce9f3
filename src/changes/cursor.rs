//! [`Cursor`]: where a folder watcher is in the change log, as an opaque token it sends back
//! (`Parents`, a query parameter or `Last-Event-ID`).
//!
//! Text form: `<epoch, 16 hex digits>-<seq, decimal>`, e.g. `00c0ffee00c0ffee-42`. The epoch is
//! the store's (a random id written when the store is created), so a cursor kept across a
//! restore into another store, or sent to another server, is refused instead of read as a
//! position in a log it never belonged to.

use std::fmt;

/// A position in one store's change log: every change with a higher seq comes after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    /// The store's epoch.
    pub epoch: u64,
    /// The last change the holder has (0: none).
    pub seq: u64,
}

/// Why a cursor cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    /// Not a cursor at all.
    #[error("not a cursor: {0:?} (a cursor looks like 00c0ffee00c0ffee-42)")]
    Malformed(String),
    /// From another store (another server, or a store restored from elsewhere).
    #[error("this cursor belongs to another change log; list the folder again for a fresh cursor")]
    OtherLog,
    /// Beyond the end of this log (never handed out by this store).
    #[error("this cursor is ahead of the change log (seq {seq}, the log ends at {end})")]
    Ahead { seq: u64, end: u64 },
}

impl Cursor {
    /// Parses the text form.
    pub fn parse(text: &str) -> Result<Cursor, CursorError> {
        let bad = || CursorError::Malformed(text.chars().take(64).collect());
        let (epoch, seq) = text.trim().split_once('-').ok_or_else(bad)?;
        if epoch.len() != 16 || seq.is_empty() || seq.len() > 20 || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let epoch = u64::from_str_radix(epoch, 16).map_err(|_| bad())?;
        let seq = seq.parse().map_err(|_| bad())?;
        Ok(Cursor { epoch, seq })
    }

    /// Checks the cursor against this store's `epoch` and the log's last seq `end`.
    pub fn check(self, epoch: u64, end: u64) -> Result<Cursor, CursorError> {
        if self.epoch != epoch {
            return Err(CursorError::OtherLog);
        }
        if self.seq > end {
            return Err(CursorError::Ahead { seq: self.seq, end });
        }
        Ok(self)
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}-{}", self.epoch, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_print_and_parse_and_are_checked_against_their_log() {
        let c = Cursor { epoch: 0x00c0_ffee_00c0_ffee, seq: 42 };
        assert_eq!(c.to_string(), "00c0ffee00c0ffee-42");
        assert_eq!(Cursor::parse("00c0ffee00c0ffee-42"), Ok(c));
        assert_eq!(Cursor::parse(" 00C0FFEE00C0FFEE-42 "), Ok(c));
        for bad in [
            "",
            "-",
            "42",
            "00c0ffee00c0ffee-",
            "00c0ffee00c0ffe-42",
            "00c0ffee00c0ffeg-42",
            "00c0ffee00c0ffee--1",
            "00c0ffee00c0ffee-4x",
            "00c0ffee00c0ffee-99999999999999999999999",
        ] {
            assert!(matches!(Cursor::parse(bad), Err(CursorError::Malformed(_))), "{bad:?}");
        }
        assert_eq!(c.check(c.epoch, 42), Ok(c));
        assert_eq!(c.check(c.epoch + 1, 42), Err(CursorError::OtherLog));
        assert_eq!(c.check(c.epoch, 41), Err(CursorError::Ahead { seq: 42, end: 41 }));
    }
}
