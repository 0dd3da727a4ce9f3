//! Request bodies of PUT/PATCH/POST: a whole snapshot, one inline patch, or a `Patches: N`
//! multi-patch body (`spec/WIRE.md` §1.7, §3.1).
//!
//! Classification follows braidify's `parse_update_from_bytes`: only `Content-Range` and the
//! patch count decide, never the representation `Content-Type`. Unlike braidify we are
//! strict: a missing per-patch `Content-Length` is a 400, not a crash; a count that lies,
//! trailing garbage or a length running past the body are errors, not silently accepted.
//! Deliberately not here: checking ranges against the document (that needs the parent text).

use crate::protocol::block::{self, BlockEnd};
use crate::protocol::error::{show, ProtocolError};
use crate::protocol::range::{parse_content_range, Patch};

/// The most patches one update may declare. Far above anything a real editor sends, low
/// enough that a hostile count cannot make us allocate or loop much.
pub const MAX_PATCHES: usize = 10_000;

/// The media type that carries a patch count in its `count` parameter (braid-http >= 1.3.109).
const HTTP_PATCHES: &[u8] = b"application/http-patches";

/// The body of one update, as a request or the subscription decoder understood it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateBody {
    /// The whole new text.
    Snapshot(String),
    /// Range patches against the parent version's text, in the order received.
    Patches(Vec<Patch>),
}

/// The number of patches an update declares, from `Patches: N` and/or
/// `Content-Type: application/http-patches; count=N`. `None` means "not a multi-patch body".
///
/// Both headers may be present (braid-http 1.4 sends both) and must then agree. Any other
/// `Content-Type` is a representation type and is ignored here. An `application/http-patches`
/// type without `count` is accepted only when `Patches` gives the count.
pub fn patch_count(patches: Option<&[u8]>, content_type: Option<&[u8]>) -> Result<Option<usize>, ProtocolError> {
    let from_patches = patches.map(|v| parse_count(v, v)).transpose()?;
    let from_type = match content_type.map(count_param).transpose()? {
        Some(TypeCount::Count(n)) => Some(n),
        Some(TypeCount::Missing) if from_patches.is_none() => {
            return Err(ProtocolError::BadPatchCount {
                value: show(content_type.unwrap_or_default()),
                reason: "application/http-patches without a count parameter",
            })
        }
        _ => None,
    };
    match (from_patches, from_type) {
        (Some(a), Some(b)) if a != b => Err(ProtocolError::BadPatchCount {
            value: show(patches.unwrap_or_default()),
            reason: "Patches and the Content-Type count= parameter disagree",
        }),
        (a, b) => Ok(a.or(b)),
    }
}

/// What a `Content-Type` says about the patch count.
enum TypeCount {
    /// Not `application/http-patches`: a representation type.
    NotPatches,
    /// `application/http-patches` without a `count` parameter.
    Missing,
    /// `application/http-patches; count=N`.
    Count(usize),
}

/// Reads the `count` parameter of an `application/http-patches` content type.
fn count_param(content_type: &[u8]) -> Result<TypeCount, ProtocolError> {
    let mut parts = content_type.split(|&b| b == b';');
    let media_type = parts.next().unwrap_or_default().trim_ascii();
    if !media_type.eq_ignore_ascii_case(HTTP_PATCHES) {
        return Ok(TypeCount::NotPatches);
    }
    for param in parts {
        let Some((name, value)) = split_once(param, b'=') else {
            continue;
        };
        if name.trim_ascii().eq_ignore_ascii_case(b"count") {
            let value = value.trim_ascii();
            let unquoted = value.strip_prefix(b"\"").and_then(|v| v.strip_suffix(b"\""));
            return parse_count(unquoted.unwrap_or(value), content_type).map(TypeCount::Count);
        }
    }
    Ok(TypeCount::Missing)
}

fn split_once(s: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|&b| b == sep)?;
    Some((&s[..i], &s[i + 1..]))
}

/// A patch count: ASCII digits, at most [`MAX_PATCHES`]. `whole` is quoted in errors.
fn parse_count(digits: &[u8], whole: &[u8]) -> Result<usize, ProtocolError> {
    let digits = digits.trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ProtocolError::BadPatchCount {
            value: show(whole),
            reason: "expected a decimal number of patches",
        });
    }
    let count = std::str::from_utf8(digits).ok().and_then(|d| d.parse::<u64>().ok());
    match count {
        Some(n) if n <= MAX_PATCHES as u64 => Ok(n as usize),
        n => Err(ProtocolError::TooManyPatches { count: n.unwrap_or(u64::MAX), max: MAX_PATCHES }),
    }
}

/// Classifies a request body: no count and no `Content-Range` is a snapshot; a
/// `Content-Range` alone makes the whole body one patch; a count means a multi-patch body.
/// Both a `Content-Range` and a count is ambiguous and refused.
pub fn classify_body(
    content_range: Option<&[u8]>,
    patch_count: Option<usize>,
    body: &[u8],
) -> Result<UpdateBody, ProtocolError> {
    match (content_range, patch_count) {
        (Some(_), Some(_)) => Err(ProtocolError::BadPatches {
            reason: "a request cannot have both Content-Range and a patch count".to_owned(),
        }),
        (None, Some(count)) => parse_patches(body, count).map(UpdateBody::Patches),
        (Some(range), None) => Ok(UpdateBody::Patches(vec![Patch {
            range: parse_content_range(range)?,
            content: utf8(body, "the patch content")?,
        }])),
        (None, None) => Ok(UpdateBody::Snapshot(utf8(body, "the request body")?)),
    }
}

fn utf8(bytes: &[u8], what: &'static str) -> Result<String, ProtocolError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ProtocolError::InvalidUtf8 { what })
}

/// Parses a `Patches: N` body: exactly `count` patches, each a header block with a required
/// `Content-Length` (UTF-8 bytes) and `Content-Range`, a blank line, then exactly that many
/// bytes of UTF-8 content. CR/LF filler may precede each patch and follow the last one;
/// anything else after the last patch is an error.
pub fn parse_patches(body: &[u8], count: usize) -> Result<Vec<Patch>, ProtocolError> {
    if count > MAX_PATCHES {
        return Err(ProtocolError::TooManyPatches { count: count as u64, max: MAX_PATCHES });
    }
    let mut patches = Vec::with_capacity(count.min(64));
    let mut pos = 0;
    for index in 0..count {
        pos += block::filler_len(&body[pos..]);
        if pos == body.len() {
            return Err(ProtocolError::PatchCountMismatch { declared: count, found: index });
        }
        let (patch, len) = parse_one_patch(&body[pos..], index, count)?;
        patches.push(patch);
        pos += len;
    }
    let rest = &body[pos..];
    if block::filler_len(rest) != rest.len() {
        return Err(ProtocolError::BadPatches {
            reason: format!(
                "unexpected bytes after the last of {count} patches: {}",
                show(&rest[block::filler_len(rest)..])
            ),
        });
    }
    Ok(patches)
}

/// Parses the patch at the start of `buf` (no leading filler); returns it and its byte length.
fn parse_one_patch(buf: &[u8], index: usize, count: usize) -> Result<(Patch, usize), ProtocolError> {
    let which = format!("patch {} of {count}", index + 1);
    let bad = |reason: String| ProtocolError::BadPatches { reason: format!("{which}: {reason}") };
    let BlockEnd::Found { head_len, body_start } = block::find_block_end(buf) else {
        return Err(bad("headers are not followed by a blank line".to_owned()));
    };
    let headers = block::parse_lines(&buf[..head_len]).map_err(bad)?;
    let mut length = None;
    let mut range = None;
    for (name, value) in &headers {
        let slot = match name.as_str() {
            "content-length" => &mut length,
            "content-range" => &mut range,
            _ => continue,
        };
        if slot.replace(value.as_str()).is_some() {
            return Err(bad(format!("duplicate {name} header")));
        }
    }
    let length = length.ok_or_else(|| bad("missing Content-Length".to_owned()))?;
    let length = block::parse_content_length(length)?;
    let range = range.ok_or_else(|| bad("missing Content-Range".to_owned()))?;
    let range = parse_content_range(range.as_bytes())?;
    let available = (buf.len() - body_start) as u64;
    if length > available {
        return Err(bad(format!("Content-Length {length} runs past the end of the body ({available} bytes left)")));
    }
    let end = body_start + length as usize;
    let content = utf8(&buf[body_start..end], "patch content")?;
    Ok((Patch { range, content }, end))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::protocol::range::{Bound, TextRange};
    use crate::protocol::test_util::never_panics;

    fn patch(a: u64, b: u64, content: &str) -> Patch {
        Patch { range: TextRange::absolute(a, b), content: content.to_owned() }
    }

    #[test]
    fn counts_from_either_header() {
        assert_eq!(patch_count(None, None).unwrap(), None);
        assert_eq!(patch_count(Some(b"2"), None).unwrap(), Some(2));
        assert_eq!(patch_count(Some(b" 0 "), None).unwrap(), Some(0));
        let ct = b"application/http-patches; count=2";
        assert_eq!(patch_count(None, Some(ct)).unwrap(), Some(2));
        assert_eq!(patch_count(Some(b"2"), Some(ct)).unwrap(), Some(2));
        let odd = b"Application/HTTP-Patches ;charset=x; COUNT=\"3\"";
        assert_eq!(patch_count(None, Some(odd)).unwrap(), Some(3));
        let repr = b"text/plain; charset=utf-8";
        assert_eq!(patch_count(None, Some(repr)).unwrap(), None);
        assert_eq!(patch_count(Some(b"1"), Some(repr)).unwrap(), Some(1));
        assert_eq!(patch_count(None, Some(b"\xff")).unwrap(), None);
        assert_eq!(patch_count(Some(b"10000"), None).unwrap(), Some(MAX_PATCHES));
    }

    #[test]
    fn bad_counts() {
        let code = |p: Option<&[u8]>, c: Option<&[u8]>| patch_count(p, c).unwrap_err().code();
        assert_eq!(code(Some(b"two"), None), "bad_patch_count");
        assert_eq!(code(Some(b""), None), "bad_patch_count");
        assert_eq!(code(Some(b"-1"), None), "bad_patch_count");
        assert_eq!(code(Some(b"10001"), None), "too_many_patches");
        assert_eq!(code(Some(b"99999999999999999999999"), None), "too_many_patches");
        let ct = b"application/http-patches; count=3";
        assert_eq!(code(Some(b"2"), Some(ct)), "bad_patch_count");
        assert_eq!(code(None, Some(b"application/http-patches")), "bad_patch_count");
        assert_eq!(code(None, Some(b"application/http-patches; count=x")), "bad_patch_count");
    }

    #[test]
    fn classifies_like_braidify() {
        let snap = classify_body(None, None, "h\u{e9}llo".as_bytes()).unwrap();
        assert_eq!(snap, UpdateBody::Snapshot("h\u{e9}llo".to_owned()));
        let one = classify_body(Some(b"text [5:5]"), None, b" world").unwrap();
        assert_eq!(one, UpdateBody::Patches(vec![patch(5, 5, " world")]));
        let body = b"Content-Length: 1\r\nContent-Range: text [0:1]\r\n\r\nH\r\n\r\nContent-Length: 1\r\nContent-Range: text [5:5]\r\n\r\n!";
        let two = classify_body(None, Some(2), body).unwrap();
        assert_eq!(two, UpdateBody::Patches(vec![patch(0, 1, "H"), patch(5, 5, "!")]));
        let code = |r: Option<&[u8]>, n, b: &[u8]| classify_body(r, n, b).unwrap_err().code();
        assert_eq!(code(None, None, b"\xff"), "invalid_utf8");
        assert_eq!(code(Some(b"text [0:0]"), None, b"\xc3"), "invalid_utf8");
        assert_eq!(code(Some(b"bytes 0-1"), None, b"x"), "unsupported_range_unit");
        assert_eq!(code(Some(b"json .a"), None, b"1"), "unsupported_range_unit");
        assert_eq!(code(Some(b"text abc"), None, b"x"), "bad_content_range");
        assert_eq!(code(Some(b"text [4:2]"), None, b"x"), "bad_content_range");
        assert_eq!(code(Some(b"text [0:0]"), Some(1), body), "bad_patches");
    }

    #[test]
    fn parses_the_client_forms() {
        // braid-http 1.4.7 (WIRE §3.1): CRLF separators, empty delete content.
        let body = b"Content-Length: 0\r\nContent-Range: text [0:1]\r\n\r\n\r\n\r\nContent-Length: 2\r\nContent-Range: text [4:4]\r\n\r\nab\r\n";
        assert_eq!(parse_patches(body, 2).unwrap(), [patch(0, 1, ""), patch(4, 4, "ab")]);
        // 1.3.80: lowercase names; LF-only; leading filler; multi-byte content; negatives.
        let body = "\r\n\ncontent-length: 3\ncontent-range: text [-0:-0]\n\nh\u{e9}\n";
        let got = parse_patches(body.as_bytes(), 1).unwrap();
        let end = TextRange { start: Bound::FromEnd(0), end: Bound::FromEnd(0) };
        assert_eq!(got, [Patch { range: end, content: "h\u{e9}".to_owned() }]);
        assert_eq!(parse_patches(b"", 0).unwrap(), []);
        assert_eq!(parse_patches(b"\r\n\r\n", 0).unwrap(), []);
        // Content may itself contain CR/LF and header-like text.
        let body = b"Content-Range: text [0:0]\r\nX-Other: 1\r\nContent-Length: 7\r\n\r\n\r\na: b\n";
        assert_eq!(parse_patches(body, 1).unwrap(), [patch(0, 0, "\r\na: b\n")]);
    }

    #[test]
    fn rejects_malformed_patch_bodies() {
        let code = |body: &[u8], n| parse_patches(body, n).unwrap_err().code();
        // Transcript t46 (WIRE §7): Patches: 2 but one patch.
        let one = b"Content-Length: 1\r\nContent-Range: text [0:0]\r\n\r\nx";
        assert_eq!(parse_patches(one, 2).unwrap_err(), ProtocolError::PatchCountMismatch { declared: 2, found: 1 });
        assert_eq!(code(b"", 1), "patch_count_mismatch");
        assert_eq!(code(b"\r\n", 3), "patch_count_mismatch");
        // Too many patches / trailing garbage.
        assert_eq!(code(&[&one[..], b"\r\n", &one[..]].concat(), 1), "bad_patches");
        assert_eq!(code(&[&one[..], b"zz"].concat(), 1), "bad_patches");
        assert_eq!(code(b"junk", 0), "bad_patches");
        // Transcript t99 (WIRE §7): no Content-Length (braidify exits the process here).
        assert_eq!(code(b"content-range: text [0:0]\r\n\r\n", 1), "bad_patches");
        assert_eq!(code(b"Content-Length: 1\r\n\r\nx", 1), "bad_patches");
        assert_eq!(code(b"Content-Length: one\r\nContent-Range: text [0:0]\r\n\r\nx", 1), "bad_content_length");
        assert_eq!(code(b"Content-Length: -1\r\nContent-Range: text [0:0]\r\n\r\nx", 1), "bad_content_length");
        assert_eq!(code(b"Content-Length: 5\r\nContent-Range: text [0:0]\r\n\r\nx", 1), "bad_patches");
        assert_eq!(code(b"Content-Length: 1\r\nContent-Range: text [0:0]\r\n", 1), "bad_patches");
        assert_eq!(
            code(b"Content-Length: 1\r\nContent-Length: 1\r\nContent-Range: text [0:0]\r\n\r\nx", 1),
            "bad_patches"
        );
        assert_eq!(code(b"Content-Length: 1\r\nContent-Range: bytes 0-1\r\n\r\nx", 1), "unsupported_range_unit");
        assert_eq!(code(b"Content-Length: 1\r\nContent-Range: text [2:1]\r\n\r\nx", 1), "bad_content_range");
        assert_eq!(code(b"Content-Length: 1\r\nContent-Range: text [0:0]\r\n\r\n\xff", 1), "invalid_utf8");
        assert_eq!(code(b"garbage line\r\n\r\n", 1), "bad_patches");
        assert_eq!(code(b"", MAX_PATCHES + 1), "too_many_patches");
        let msg = parse_patches(b"Content-Range: text [0:0]\r\n\r\n", 1).unwrap_err().to_string();
        assert!(msg.contains("patch 1 of 1") && msg.contains("Content-Length"), "{msg}");
    }

    #[test]
    fn never_panics_on_random_bytes() {
        never_panics(10, 20_000, 120, |b| parse_patches(b, usize::from(b.first().copied().unwrap_or(0) % 4)));
        never_panics(11, 10_000, 40, |b| patch_count(Some(b), Some(b)));
        never_panics(12, 10_000, 40, count_param);
        never_panics(13, 10_000, 60, |b| classify_body(Some(b), None, b));
    }
}
