//! [`FileVersionId`]: a file version's name, its place in the winner order, and the ids the
//! server mints for writes that name none.
//!
//! Clients choose ids (braidfs sends braid-blob's "wallclockish" decimals, seconds since 1970
//! with a fraction, e.g. `"1768467700.125"`); others send any token. Braid-blob serves the
//! highest version, comparing ids as decimals, and braidfs expects the same winner, so the order
//! here is: decimal ids by exact numeric value (no float rounding), above every other id; other
//! ids by their bytes; equal values (`"1.5"`, `"1.50"`) by their bytes, so the order is total.
//! Ids the server mints are decimal milliseconds above every decimal id the resource has, so a
//! plain `curl -X PUT` always becomes the served version.

use super::FileError;
use std::cmp::Ordering;

/// The longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 200;

/// A validated file version id: 1 to 200 visible ASCII characters, no `"` or `\` (it travels
/// as a structured-field string in `Version` and `Parents`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FileVersionId(String);

impl FileVersionId {
    /// Validates `id`.
    pub fn parse(id: &str) -> Result<FileVersionId, FileError> {
        let bad = |why| Err(FileError::BadVersionId { id: id.chars().take(MAX_ID_LEN).collect(), why });
        if id.is_empty() {
            return bad("empty");
        }
        if id.len() > MAX_ID_LEN {
            return bad("longer than 200 bytes");
        }
        if !id.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\') {
            return bad("only visible ASCII without '\"' or '\\'");
        }
        Ok(FileVersionId(id.to_string()))
    }

    /// Whether the id is a decimal (braid-blob's "wallclockish" ids, and every id the server
    /// mints): sent with `Version-Type: wallclockish`.
    pub fn is_wallclockish(&self) -> bool {
        Decimal::parse(&self.0).is_some()
    }

    /// The id as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The winner order (see the module doc): `Greater` when `self` wins over `other`.
    pub fn winner_cmp(&self, other: &FileVersionId) -> Ordering {
        match (Decimal::parse(&self.0), Decimal::parse(&other.0)) {
            (Some(a), Some(b)) => a.cmp(&b).then_with(|| self.0.cmp(&other.0)),
            (Some(_), None) => Ordering::Greater,
            (None, Some(_)) => Ordering::Less,
            (None, None) => self.0.cmp(&other.0),
        }
    }

    /// An id for a write that names none: `now_ms` as decimal seconds with milliseconds,
    /// raised to one millisecond above the highest decimal id among `known` when that is not
    /// below it.
    pub fn mint<'a>(now_ms: u64, known: impl IntoIterator<Item = &'a FileVersionId>) -> FileVersionId {
        let floor = known.into_iter().filter_map(|id| Decimal::parse(&id.0)).filter_map(|d| d.millis()).max();
        let ms = match floor {
            Some(f) if f >= u128::from(now_ms) => f + 1,
            _ => u128::from(now_ms),
        };
        FileVersionId(format!("{}.{:03}", ms / 1000, ms % 1000))
    }
}

impl std::fmt::Display for FileVersionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for FileVersionId {
    type Error = FileError;
    fn try_from(s: String) -> Result<Self, FileError> {
        FileVersionId::parse(&s)
    }
}

impl From<FileVersionId> for String {
    fn from(id: FileVersionId) -> String {
        id.0
    }
}

/// A non-negative decimal `digits[.digits]`, compared exactly.
#[derive(Debug, PartialEq, Eq)]
struct Decimal<'a> {
    /// Integer digits without leading zeros.
    int: &'a str,
    /// Fraction digits without trailing zeros.
    frac: &'a str,
}

impl<'a> Decimal<'a> {
    fn parse(s: &'a str) -> Option<Decimal<'a>> {
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || !digits(int) || !digits(frac) || (s.contains('.') && frac.is_empty()) {
            return None;
        }
        Some(Decimal { int: int.trim_start_matches('0'), frac: frac.trim_end_matches('0') })
    }

    /// The value in whole milliseconds, rounded down (None when too large).
    fn millis(&self) -> Option<u128> {
        let int: u128 = if self.int.is_empty() { 0 } else { self.int.parse().ok()? };
        let mut ms = int.checked_mul(1000)?;
        for (i, b) in self.frac.bytes().take(3).enumerate() {
            ms += u128::from(b - b'0') * 10u128.pow(2 - i as u32);
        }
        Some(ms)
    }
}

impl Ord for Decimal<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        // Integer parts without leading zeros: the longer is larger, else digit by digit; then
        // fractions without trailing zeros compare digit by digit ("5" > "499").
        self.int
            .len()
            .cmp(&other.int.len())
            .then_with(|| self.int.cmp(other.int))
            .then_with(|| self.frac.cmp(other.frac))
    }
}

impl PartialOrd for Decimal<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
