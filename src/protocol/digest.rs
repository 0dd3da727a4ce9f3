//! `Repr-Digest` (RFC 9530 syntax) for text representations: `sha-256=:<base64>:`.
//!
//! Only SHA-256 is produced or understood, because that is all braid-text and the simpleton
//! client use. Deliberately not here: deciding when a digest must be sent or checked (that
//! depends on the document's version, which the caller knows).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

/// The SHA-256 of the text's UTF-8 bytes.
pub fn text_sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// `sha-256=:…:` of a SHA-256 (a file's digest, hashed as its bytes streamed in).
pub fn repr_digest_sha256(sha256: &[u8; 32]) -> String {
    format!("sha-256=:{}:", STANDARD.encode(sha256))
}

/// The `Repr-Digest` header value for a text: `sha-256=:<base64 of sha256(utf8)>:`.
pub fn repr_digest(text: &str) -> String {
    format!("sha-256=:{}:", STANDARD.encode(text_sha256(text)))
}

/// [`repr_digest`] of the text made of `pieces` in order, without joining them (a document
/// held as a rope is hashed where it lies, with no copy of the whole text).
pub fn repr_digest_of<'a>(pieces: impl IntoIterator<Item = &'a str>) -> String {
    let mut hasher = Sha256::new();
    for piece in pieces {
        hasher.update(piece.as_bytes());
    }
    let sha: [u8; 32] = hasher.finalize().into();
    format!("sha-256=:{}:", STANDARD.encode(sha))
}

/// Extracts the SHA-256 from a request's `Repr-Digest`, which may list several algorithms
/// separated by commas (`sha-512=:..:, sha-256=:..:`). Returns `None` when there is no
/// well-formed `sha-256` entry; the caller then has nothing to check.
pub fn parse_repr_digest(value: &[u8]) -> Option<[u8; 32]> {
    value.split(|&b| b == b',').find_map(|entry| {
        let (algorithm, rest) = entry.trim_ascii().split_at_checked(8)?;
        if !algorithm.eq_ignore_ascii_case(b"sha-256=") {
            return None;
        }
        let encoded = rest.strip_prefix(b":")?.strip_suffix(b":")?;
        STANDARD.decode(encoded).ok()?.try_into().ok()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::protocol::test_util::never_panics;

    /// Values from transcripts t13 and t04/t05 (braid-text's own digests; `spec/WIRE.md` §7).
    #[test]
    fn matches_braid_text() {
        assert_eq!(repr_digest("hello"), "sha-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=:");
        assert_eq!(repr_digest("hello world"), "sha-256=:uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=:");
        assert_eq!(repr_digest("Hello!"), "sha-256=:M00Bb3Vc1txYxTqG4YOIL47BT1L7BTRYh8il7dQsh7c=:");
    }

    #[test]
    fn parses_request_digests() {
        let hello = text_sha256("hello");
        assert_eq!(parse_repr_digest(repr_digest("hello").as_bytes()), Some(hello));
        let listed = format!("sha-512=:AAAA:, {}", repr_digest("hello"));
        assert_eq!(parse_repr_digest(listed.as_bytes()), Some(hello));
        let upper = repr_digest("hello").replace("sha-256", "SHA-256");
        assert_eq!(parse_repr_digest(upper.as_bytes()), Some(hello));
        let zeros = b"sha-256=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:";
        assert_eq!(parse_repr_digest(zeros), Some([0; 32]));
        for bad in [
            &b""[..],
            b"sha-256",
            b"sha-256=",
            b"sha-256=AAAA",
            b"sha-256=:AAAA:",
            b"sha-512=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=:",
            b"sha-256=:not base64!:",
            b"\xff\xfe",
        ] {
            assert_eq!(parse_repr_digest(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn never_panics_on_random_bytes() {
        never_panics(9, 10_000, 60, parse_repr_digest);
    }
}
