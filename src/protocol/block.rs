//! Header blocks shared by multi-patch bodies (`body.rs`) and subscription updates
//! (`decode.rs`): finding where a block ends, splitting it into `name: value` lines, and
//! reading `Content-Length`. Crate-internal; it knows nothing about which headers matter.

use crate::protocol::error::{show, ProtocolError};

/// Where a header block ends, as the JS parsers find it: at the first `\n\n` or `\n\r\n`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BlockEnd {
    /// The header lines are `buf[..head_len]`; the body starts at `buf[body_start..]`.
    Found { head_len: usize, body_start: usize },
    /// No blank line yet: more input is needed.
    Incomplete,
}

/// Finds the end of the header block at the start of `buf` (LF-only input is accepted).
pub(crate) fn find_block_end(buf: &[u8]) -> BlockEnd {
    find_block_end_from(buf, 0)
}

/// [`find_block_end`], resuming a search that found [`BlockEnd::Incomplete`] in the first
/// `scanned` bytes (a terminator can only start in the last two bytes seen).
pub(crate) fn find_block_end_from(buf: &[u8], scanned: usize) -> BlockEnd {
    let mut from = scanned.saturating_sub(2).min(buf.len());
    while let Some(offset) = buf[from..].iter().position(|&b| b == b'\n') {
        let i = from + offset;
        match (buf.get(i + 1), buf.get(i + 2)) {
            (Some(b'\n'), _) => return BlockEnd::Found { head_len: i, body_start: i + 2 },
            (Some(b'\r'), Some(b'\n')) => return BlockEnd::Found { head_len: i, body_start: i + 3 },
            (Some(b'\r'), None) | (None, _) => return BlockEnd::Incomplete,
            _ => from = i + 1,
        }
    }
    BlockEnd::Incomplete
}

/// The number of CR/LF filler bytes at the start of `buf` (heartbeats and separators).
pub(crate) fn filler_len(buf: &[u8]) -> usize {
    buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count()
}

/// One header: the name lowercased, the value with surrounding whitespace trimmed.
pub(crate) type Header = (String, String);

/// Splits a header block into headers. Every line must be `name: value` with a name of
/// `[A-Za-z0-9_-]+`; lines may end in `\r\n` or `\n`. On error returns the reason.
pub(crate) fn parse_lines(head: &[u8]) -> Result<Vec<Header>, String> {
    let mut headers = Vec::new();
    for raw in head.split(|&b| b == b'\n') {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        headers.push(parse_line(line)?);
    }
    Ok(headers)
}

/// Parses one `name: value` line.
pub(crate) fn parse_line(line: &[u8]) -> Result<Header, String> {
    let colon = line.iter().position(|&b| b == b':');
    let name = colon.map(|c| &line[..c]).unwrap_or(line);
    let is_token = |b: &u8| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_';
    let Some(colon) = colon.filter(|_| !name.is_empty() && name.iter().all(is_token)) else {
        return Err(format!("expected a `name: value` header line, got {}", show(line)));
    };
    let value =
        std::str::from_utf8(&line[colon + 1..]).map_err(|_| format!("header {} is not valid UTF-8", show(name)))?;
    Ok((String::from_utf8_lossy(name).to_ascii_lowercase(), value.trim().to_owned()))
}

/// The value of header `name` (lowercase); the last occurrence wins, as in the JS parser.
pub(crate) fn get<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// Parses a `Content-Length` value: 1 to 19 ASCII digits, nothing else.
pub(crate) fn parse_content_length(value: &str) -> Result<u64, ProtocolError> {
    let ok = !value.is_empty() && value.len() <= 19 && value.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| value.parse().ok())
        .flatten()
        .ok_or_else(|| ProtocolError::BadContentLength { value: show(value.as_bytes()) })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::protocol::test_util::never_panics;

    #[test]
    fn block_end_variants() {
        assert_eq!(find_block_end(b"a: 1\r\n\r\nxy"), BlockEnd::Found { head_len: 5, body_start: 8 });
        assert_eq!(find_block_end(b"a: 1\n\nxy"), BlockEnd::Found { head_len: 4, body_start: 6 });
        assert_eq!(find_block_end(b"a: 1\n\r\n"), BlockEnd::Found { head_len: 4, body_start: 7 });
        assert_eq!(find_block_end(b"a: 1\r\nb: 2\r\n"), BlockEnd::Incomplete);
        assert_eq!(find_block_end(b"a: 1\r\n\r"), BlockEnd::Incomplete);
        assert_eq!(find_block_end(b""), BlockEnd::Incomplete);
        assert_eq!(find_block_end(b"a: 1\n\rb"), BlockEnd::Incomplete);
    }

    #[test]
    fn resumed_search_finds_the_same_end() {
        let buf = b"a: 1\r\nb: 2\r\n\r\nxyz";
        for cut in 0..buf.len() {
            let first = find_block_end(&buf[..cut]);
            if first == BlockEnd::Incomplete {
                assert_eq!(find_block_end_from(buf, cut), find_block_end(buf), "{cut}");
            }
        }
        assert_eq!(find_block_end_from(b"a", 99), BlockEnd::Incomplete);
    }

    #[test]
    fn lines_and_lengths() {
        let h = parse_lines(b"Content-Length: 5\r\ncontent-range:text [0:0]  \nX_y-1:").unwrap();
        assert_eq!(get(&h, "content-length"), Some("5"));
        assert_eq!(get(&h, "content-range"), Some("text [0:0]"));
        assert_eq!(get(&h, "x_y-1"), Some(""));
        for bad in [&b"nocolon"[..], b": v", b"a b: c", b"\xff: 1", b"a: \xff"] {
            assert!(parse_lines(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_content_length("0").unwrap(), 0);
        assert_eq!(parse_content_length("0012").unwrap(), 12);
        for bad in ["", "abc", "-1", "+1", "1.0", "1 2", "99999999999999999999"] {
            assert_eq!(parse_content_length(bad).unwrap_err().code(), "bad_content_length");
        }
    }

    #[test]
    fn never_panics_on_random_bytes() {
        never_panics(8, 20_000, 48, |b| (find_block_end(b), filler_len(b), parse_lines(b)));
    }
}
