//! HTTP caching values for text resources: the entity tag of a version, and `If-None-Match`.
//!
//! The entity tag *is* the version: `"` + base64url(the `Version` header value) + `"`. A version
//! header holds quotes and commas, which an entity tag may not, hence the encoding; it is
//! deterministic, so the same version always has the same tag, on every server replica.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::VersionSet;

/// The strong entity tag of the text at `version`.
pub fn etag(version: &VersionSet) -> String {
    format!("\"{}\"", URL_SAFE_NO_PAD.encode(version.to_header()))
}

/// Whether an `If-None-Match` value matches `etag` (RFC 9110 §13.1.2: `*`, or any listed tag
/// under weak comparison, so `W/"x"` matches `"x"`). A malformed list matches nothing: the
/// request is then served in full, which is always safe.
pub fn if_none_match(value: &[u8], etag: &str) -> bool {
    let Ok(value) = std::str::from_utf8(value) else { return false };
    let value = value.trim();
    if value == "*" {
        return true;
    }
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return false;
        }
        rest = rest.strip_prefix("W/").unwrap_or(rest);
        let Some(after_quote) = rest.strip_prefix('"') else { return false };
        let Some(end) = after_quote.find('"') else { return false };
        let tag = &rest[..end + 2];
        if tag == etag {
            return true;
        }
        rest = &after_quote[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(ids: &[&str]) -> VersionSet {
        VersionSet::new(ids.iter().map(|s| s.to_string()))
    }

    #[test]
    fn etag_is_a_valid_opaque_tag_and_tracks_the_version() {
        let tag = etag(&v(&["alice-4", "bob \"q\", x-1"]));
        let inner = tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or_default();
        assert!(!inner.is_empty());
        // RFC 9110 etagc: %x21 / %x23-7E (no quote, no space, no control).
        assert!(inner.bytes().all(|b| b == 0x21 || (0x23..=0x7e).contains(&b)), "{tag}");
        assert_eq!(etag(&v(&["alice-4"])), etag(&v(&["alice-4"])));
        assert_ne!(etag(&v(&["alice-4"])), etag(&v(&["alice-5"])));
        assert_ne!(etag(&v(&[])), etag(&v(&["alice-4"])));
    }

    #[test]
    fn if_none_match_lists_weak_tags_and_star() {
        let tag = etag(&v(&["alice-4"]));
        assert!(if_none_match(tag.as_bytes(), &tag));
        assert!(if_none_match(format!("W/{tag}").as_bytes(), &tag));
        assert!(if_none_match(format!("\"other\", {tag}").as_bytes(), &tag));
        assert!(if_none_match(format!("\"a,b\",W/{tag} ").as_bytes(), &tag));
        assert!(if_none_match(b" * ", &tag));
        assert!(!if_none_match(b"\"other\"", &tag));
        assert!(!if_none_match(b"", &tag));
        assert!(!if_none_match(tag.trim_matches('"').as_bytes(), &tag), "unquoted is malformed");
        assert!(!if_none_match(b"\"unterminated", &tag));
        assert!(!if_none_match(b"\xff\xfe", &tag));
        assert!(!if_none_match(format!("\"x\" junk {tag}").as_bytes(), &tag), "malformed list");
    }
}
