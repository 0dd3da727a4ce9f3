//! `Range: bytes=…` and `If-Range` for file downloads (RFC 9110 §14): video seeking and resumed
//! downloads. Pure: a header value and the representation's length in, what to send out.
//!
//! Choices (all allowed by RFC 9110 §14.2): one satisfiable range is served as `206` with
//! `Content-Range` (unsatisfiable ones beside it are dropped);
//! several ranges are served whole (`200`), as many servers do, rather than as
//! `multipart/byteranges`, which no client of ours asks for; a `Range` that is not `bytes=` or
//! does not parse is ignored (`200`), as the RFC requires of a server that does not understand
//! it; a syntactically valid set of ranges none of which overlaps the representation is `416`
//! with `Content-Range: bytes */<len>`.

/// What to send for a request's `Range`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeAnswer {
    /// The whole representation (`200`): no usable `Range`.
    Whole,
    /// `206` with bytes `start..end` (end exclusive) of `len`.
    Partial { start: u64, end: u64, len: u64 },
    /// `416`: no range overlaps a representation of `len` bytes.
    Unsatisfiable { len: u64 },
}

impl RangeAnswer {
    /// The `Content-Range` value for a `206` or `416`.
    pub fn content_range(&self) -> Option<String> {
        match *self {
            RangeAnswer::Whole => None,
            RangeAnswer::Partial { start, end, len } => Some(format!("bytes {start}-{}/{len}", end - 1)),
            RangeAnswer::Unsatisfiable { len } => Some(format!("bytes */{len}")),
        }
    }
}

/// Most ranges looked at in one header (a request listing more is served whole: a guard
/// against the "many small ranges" amplification of CVE-2011-3192).
const MAX_RANGES: usize = 16;

/// Decides what to send for `range` (the `Range` header, if any) on a representation of `len`
/// bytes; `if_range_matches` is false when an `If-Range` was sent and does not match the
/// current `ETag` (then the whole representation is sent, RFC 9110 §13.1.5).
pub fn answer(range: Option<&str>, len: u64, if_range_matches: bool) -> RangeAnswer {
    let Some(value) = range else { return RangeAnswer::Whole };
    if !if_range_matches {
        return RangeAnswer::Whole;
    }
    let Some(specs) = value.trim().strip_prefix("bytes=") else { return RangeAnswer::Whole };
    let mut parsed = Vec::new();
    for spec in specs.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if parsed.len() == MAX_RANGES {
            return RangeAnswer::Whole;
        }
        match parse_spec(spec) {
            Some(s) => parsed.push(s),
            None => return RangeAnswer::Whole,
        }
    }
    let satisfiable: Vec<(u64, u64)> = parsed.iter().filter_map(|s| s.resolve(len)).collect();
    match (parsed.len(), satisfiable.as_slice()) {
        (0, _) => RangeAnswer::Whole,
        (_, []) => RangeAnswer::Unsatisfiable { len },
        (_, [(start, end)]) => RangeAnswer::Partial { start: *start, end: *end, len },
        _ => RangeAnswer::Whole,
    }
}

/// One `first-last`, `first-` or `-suffix`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spec {
    From { first: u64, last: Option<u64> },
    Suffix(u64),
}

fn parse_spec(spec: &str) -> Option<Spec> {
    let (a, b) = spec.split_once('-')?;
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    match (a.is_empty(), b.is_empty()) {
        (true, false) => Some(Spec::Suffix(num(b)?)),
        (false, true) => Some(Spec::From { first: num(a)?, last: None }),
        (false, false) => {
            let (first, last) = (num(a)?, num(b)?);
            (first <= last).then_some(Spec::From { first, last: Some(last) })
        }
        (true, true) => None,
    }
}

impl Spec {
    /// The bytes `start..end` this spec selects in `len` bytes, if any.
    fn resolve(self, len: u64) -> Option<(u64, u64)> {
        match self {
            Spec::From { first, .. } if first >= len => None,
            Spec::From { first, last } => Some((first, last.map_or(len, |l| l.saturating_add(1).min(len)))),
            Spec::Suffix(n) if n == 0 || len == 0 => None,
            Spec::Suffix(n) => Some((len.saturating_sub(n), len)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeAnswer::*;

    #[test]
    fn single_ranges() {
        let p = |start, end| Partial { start, end, len: 1000 };
        assert_eq!(answer(Some("bytes=0-499"), 1000, true), p(0, 500));
        assert_eq!(answer(Some("bytes=500-"), 1000, true), p(500, 1000));
        assert_eq!(answer(Some("bytes=-200"), 1000, true), p(800, 1000));
        assert_eq!(answer(Some("bytes=-5000"), 1000, true), p(0, 1000), "a suffix longer than the file is all of it");
        assert_eq!(answer(Some("bytes=900-5000"), 1000, true), p(900, 1000), "the last byte is clamped");
        assert_eq!(answer(Some(" bytes=999-999 "), 1000, true), p(999, 1000));
        assert_eq!(p(0, 500).content_range().as_deref(), Some("bytes 0-499/1000"));
    }

    #[test]
    fn unsatisfiable_ranges_get_416() {
        assert_eq!(answer(Some("bytes=1000-"), 1000, true), Unsatisfiable { len: 1000 });
        assert_eq!(answer(Some("bytes=-0"), 1000, true), Unsatisfiable { len: 1000 });
        assert_eq!(answer(Some("bytes=0-0"), 0, true), Unsatisfiable { len: 0 });
        assert_eq!(answer(Some("bytes=-1"), 0, true), Unsatisfiable { len: 0 });
        assert_eq!(Unsatisfiable { len: 7 }.content_range().as_deref(), Some("bytes */7"));
    }

    #[test]
    fn what_we_do_not_serve_partially_is_served_whole() {
        for r in ["items=0-1", "bytes=5-1", "bytes=a-b", "bytes=-", "bytes=1-2-3", "bytes=0-1,5-6", "bytes=+1-2"] {
            assert_eq!(answer(Some(r), 1000, true), Whole, "{r}");
        }
        let many = format!("bytes={}", vec!["1-1"; MAX_RANGES + 1].join(","));
        assert_eq!(answer(Some(&many), 1000, true), Whole);
        assert_eq!(answer(Some("bytes=0-1"), 1000, false), Whole, "If-Range did not match");
        assert_eq!(answer(None, 1000, true), Whole);
        // One satisfiable range among unsatisfiable ones is served.
        assert_eq!(answer(Some("bytes=5000-,0-1"), 1000, true), Partial { start: 0, end: 2, len: 1000 });
    }
}
