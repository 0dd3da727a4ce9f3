//! `Content-Range: text [a:b]` ranges and the patches that carry them.
//!
//! Only the `text` unit is implemented: ranges in Unicode code points of the parent text,
//! with braid-text's negative (from-the-end) positions. Other units (`json`, `bytes`, ...)
//! are recognized only to be refused with `unsupported_range_unit`. Checking a range against
//! an actual text length is left to the caller ([`TextRange::resolve`] helps).

use crate::protocol::error::{show, ProtocolError};

/// The largest position accepted: JavaScript's `Number.MAX_SAFE_INTEGER` (2^53 - 1), beyond
/// which JS peers cannot represent positions exactly.
pub const MAX_POSITION: u64 = (1 << 53) - 1;

/// One end of a text range, in Unicode code points.
///
/// braid-text accepts negative positions counted from the end of the parent text
/// (`-0` is the end itself), so a bound is either from the start or from the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// `n`: n code points from the start.
    FromStart(u64),
    /// `-n`: n code points before the end (`-0` is the end).
    FromEnd(u64),
}

/// A half-open range `[start:end]` of the parent text, in code points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextRange {
    /// First code point replaced.
    pub start: Bound,
    /// One past the last code point replaced.
    pub end: Bound,
}

impl TextRange {
    /// An absolute range `[start:end]`.
    pub fn absolute(start: u64, end: u64) -> Self {
        TextRange { start: Bound::FromStart(start), end: Bound::FromStart(end) }
    }

    /// The absolute `(start, end)` of this range in a text of `len` code points, or `None`
    /// if it falls outside the text or is reversed.
    pub fn resolve(&self, len: u64) -> Option<(u64, u64)> {
        let start = self.start.resolve(len)?;
        let end = self.end.resolve(len)?;
        (start <= end).then_some((start, end))
    }
}

impl Bound {
    /// The absolute position in a text of `len` code points, if it lies within it.
    pub fn resolve(self, len: u64) -> Option<u64> {
        match self {
            Bound::FromStart(n) => (n <= len).then_some(n),
            Bound::FromEnd(n) => len.checked_sub(n),
        }
    }
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bound::FromStart(n) => write!(f, "{n}"),
            Bound::FromEnd(n) => write!(f, "-{n}"),
        }
    }
}

/// The `Content-Range` header value: `text [start:end]`.
impl std::fmt::Display for TextRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "text [{}:{}]", self.start, self.end)
    }
}

/// Parses a `Content-Range` value such as `text [5:5]`, `text [-0:-0]` or `text [ 1 : 3 ]`.
///
/// As in the JS peers the unit is the first whitespace-separated token and the range is the
/// rest. Any unit other than `text` is `unsupported_range_unit`. Positions are decimal
/// integers up to [`MAX_POSITION`]; a leading `-` counts from the end (`-0` is the end).
/// A range whose reversal is visible without the text (`[4:2]`, `[-2:-4]`) is rejected here,
/// mixed ranges such as `[-3:2]` can only be checked against the text.
pub fn parse_content_range(value: &[u8]) -> Result<TextRange, ProtocolError> {
    let bad = |reason| ProtocolError::BadContentRange { value: show(value), reason };
    let text = std::str::from_utf8(value).map_err(|_| bad("not valid UTF-8"))?.trim();
    let (unit, range) = text.split_once(|c: char| c.is_ascii_whitespace()).unwrap_or((text, ""));
    if unit.is_empty() {
        return Err(bad("missing unit, expected `text [start:end]`"));
    }
    if unit != "text" {
        return Err(ProtocolError::UnsupportedRangeUnit { unit: show(unit.as_bytes()) });
    }
    let inner = range
        .trim()
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| bad("expected `[start:end]` after the unit"))?;
    let (start, end) = inner.split_once(':').ok_or_else(|| bad("expected `start:end`"))?;
    let start = parse_bound(start).map_err(bad)?;
    let end = parse_bound(end).map_err(bad)?;
    let reversed = match (start, end) {
        (Bound::FromStart(a), Bound::FromStart(b)) => a > b,
        (Bound::FromEnd(a), Bound::FromEnd(b)) => a < b,
        _ => false,
    };
    if reversed {
        return Err(bad("range is reversed (start after end)"));
    }
    Ok(TextRange { start, end })
}

/// One position: optional whitespace, optional `-`, 1+ ASCII digits, at most 2^53 - 1.
fn parse_bound(s: &str) -> Result<Bound, &'static str> {
    let s = s.trim();
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("positions must be integers");
    }
    let n = digits.parse::<u64>().ok().filter(|&n| n <= MAX_POSITION).ok_or("position larger than 2^53-1")?;
    Ok(if negative { Bound::FromEnd(n) } else { Bound::FromStart(n) })
}

/// A range patch: replace `range` of the parent text with `content` (empty content deletes,
/// an empty range inserts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patch {
    /// The replaced range of the parent version's text.
    pub range: TextRange,
    /// The replacement text.
    pub content: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::protocol::test_util::never_panics;

    fn parse(v: &str) -> Result<TextRange, ProtocolError> {
        parse_content_range(v.as_bytes())
    }

    #[test]
    fn parses_text_ranges() {
        assert_eq!(parse("text [5:5]").unwrap(), TextRange::absolute(5, 5));
        assert_eq!(parse("text [0:1]").unwrap(), TextRange::absolute(0, 1));
        assert_eq!(parse("  text   [ 1 : 3 ] ").unwrap(), TextRange::absolute(1, 3));
        assert_eq!(parse("text\t[2:2]").unwrap(), TextRange::absolute(2, 2));
        let append = parse("text [-0:-0]").unwrap();
        assert_eq!(append, TextRange { start: Bound::FromEnd(0), end: Bound::FromEnd(0) });
        let mixed = parse("text [-3:2]").unwrap();
        assert_eq!(mixed, TextRange { start: Bound::FromEnd(3), end: Bound::FromStart(2) });
        let max = parse("text [0:9007199254740991]").unwrap();
        assert_eq!(max.end, Bound::FromStart(MAX_POSITION));
    }

    #[test]
    fn display_is_the_header_value() {
        assert_eq!(TextRange::absolute(3, 5).to_string(), "text [3:5]");
        let r = TextRange { start: Bound::FromEnd(0), end: Bound::FromEnd(0) };
        assert_eq!(r.to_string(), "text [-0:-0]");
        for v in ["text [0:0]", "text [-4:-2]", "text [-1:7]"] {
            assert_eq!(parse(v).unwrap().to_string(), v);
        }
    }

    #[test]
    fn rejects_other_units() {
        for (v, unit) in [("bytes 0-1", "bytes"), ("json .a", "json"), ("TEXT [0:0]", "TEXT")] {
            let err = parse(v).unwrap_err();
            assert_eq!(err, ProtocolError::UnsupportedRangeUnit { unit: show(unit.as_bytes()) });
            assert_eq!(err.code(), "unsupported_range_unit");
        }
    }

    #[test]
    fn rejects_malformed_ranges() {
        for v in [
            "",
            "   ",
            "text",
            "text abc",
            "text [4:2]",
            "text [-2:-4]",
            "text 1:2",
            "text [1:2",
            "text 1:2]",
            "text [1]",
            "text [1:2:3]",
            "text [:2]",
            "text [1:]",
            "text [a:b]",
            "text [+1:2]",
            "text [1.5:2]",
            "text [--1:2]",
            "text [0:9007199254740992]",
            "text [0:99999999999999999999999]",
            "text [1:2] x",
            "text [\u{661}:2]",
        ] {
            assert_eq!(parse(v).unwrap_err().code(), "bad_content_range", "{v:?}");
        }
        assert_eq!(parse_content_range(b"text [\xff:1]").unwrap_err().code(), "bad_content_range");
        let msg = parse("text abc").unwrap_err().to_string();
        assert!(msg.contains("\"text abc\""), "{msg}");
    }

    #[test]
    fn resolve_against_a_length() {
        assert_eq!(TextRange::absolute(1, 3).resolve(5), Some((1, 3)));
        assert_eq!(TextRange::absolute(99, 100).resolve(5), None);
        assert_eq!(parse("text [-0:-0]").unwrap().resolve(5), Some((5, 5)));
        assert_eq!(parse("text [-3:2]").unwrap().resolve(5), Some((2, 2)));
        assert_eq!(parse("text [-3:1]").unwrap().resolve(5), None);
        assert_eq!(parse("text [-6:-0]").unwrap().resolve(5), None);
    }

    #[test]
    fn never_panics_on_random_bytes() {
        never_panics(6, 20_000, 24, parse_content_range);
    }
}
