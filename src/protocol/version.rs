//! Version sets: the values of the `Version`, `Parents` and `Current-Version` headers.
//!
//! The protocol layer treats event ids as opaque strings; the `agent-seq` convention
//! belongs to the text merge type (`crate::text`).
//!
//! Wire syntax follows what the JavaScript peers do, not the IETF draft: a value is parsed
//! as the body of a JSON array (`JSON.parse("[" + value + "]")`), and written as JSON strings
//! escaped to pure ASCII. Structured-Field display strings (`%"..."`) are deliberately never
//! written: `JSON.parse` rejects them and the client treats that as a fatal error.

use crate::protocol::error::{show, ProtocolError};

/// A set of event ids, always sorted and free of duplicates, so two sets compare equal
/// exactly when they name the same events (braid-text sorts on receipt, and so do we).
#[derive(Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VersionSet(Vec<String>);

impl Clone for VersionSet {
    fn clone(&self) -> Self {
        VersionSet(self.0.clone())
    }

    /// Reuses this set's allocations (a subscription moves its client's version forward on
    /// every delivery: B4 in docs/BENCHMARKS.md).
    fn clone_from(&mut self, source: &Self) {
        self.0.clone_from(&source.0);
    }
}

impl VersionSet {
    /// Builds a set from ids in any order.
    pub fn new(ids: impl IntoIterator<Item = String>) -> Self {
        let mut ids: Vec<String> = ids.into_iter().collect();
        ids.sort();
        ids.dedup();
        VersionSet(ids)
    }

    /// The empty set: the root version, before any event.
    pub fn root() -> Self {
        VersionSet(Vec::new())
    }

    /// The ids, sorted.
    pub fn ids(&self) -> &[String] {
        &self.0
    }

    /// True for the root version.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The only id, when the set has exactly one.
    pub fn single(&self) -> Option<&str> {
        match self.0.as_slice() {
            [one] => Some(one.as_str()),
            _ => None,
        }
    }
}

impl VersionSet {
    /// Parses a `Version`, `Parents` or `Current-Version` header value.
    ///
    /// The value is the inside of a JSON array of strings: `"a-4", "b-2"`. An empty or
    /// all-whitespace value is the empty set (the root). Bad JSON, non-string items, empty
    /// ids and non-UTF-8 bytes are errors (braid-text answers those with a 500; we say why).
    pub fn parse_header(value: &[u8]) -> Result<VersionSet, ProtocolError> {
        let bad = |reason: &str| ProtocolError::BadVersionHeader { value: show(value), reason: reason.to_owned() };
        let text = std::str::from_utf8(value).map_err(|_| bad("not valid UTF-8"))?;
        if text.trim().is_empty() {
            return Ok(VersionSet::root());
        }
        let ids: Vec<String> = serde_json::from_str(&format!("[{text}]"))
            .map_err(|e| bad(&format!("expected a list of JSON strings like \"a-1\" ({e})")))?;
        if ids.iter().any(String::is_empty) {
            return Err(bad("an event id is empty"));
        }
        Ok(VersionSet::new(ids))
    }

    /// Formats the set as a header value: sorted JSON strings joined by `", "`, every char
    /// outside printable ASCII escaped as `\uXXXX` (UTF-16, so astral chars become surrogate
    /// pairs), byte-for-byte what braid-http's `JSON.stringify` + `ascii_ify` produce. The
    /// empty set formats as the empty string.
    pub fn to_header(&self) -> String {
        let mut out = String::new();
        for (i, id) in self.0.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            push_json_ascii(&mut out, id);
        }
        out
    }
}

/// Appends `s` as a JSON string literal that is pure printable ASCII.
fn push_json_ascii(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            // JSON.stringify's short escapes, so our bytes match the JS peers' exactly.
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::protocol::test_util::{never_panics, Rng};

    fn ids(v: &VersionSet) -> Vec<&str> {
        v.ids().iter().map(String::as_str).collect()
    }

    #[test]
    fn parses_the_forms_seen_on_the_wire() {
        assert_eq!(ids(&VersionSet::parse_header(b"\"alice-4\"").unwrap()), ["alice-4"]);
        let v = VersionSet::parse_header(b"\"q-1\", \"p1-0\"").unwrap();
        assert_eq!(ids(&v), ["p1-0", "q-1"], "sorted on receipt");
        assert_eq!(ids(&VersionSet::parse_header(b"\"a\",\"a\"").unwrap()), ["a"]);
        assert!(VersionSet::parse_header(b"").unwrap().is_empty());
        assert!(VersionSet::parse_header(b"  \t").unwrap().is_empty());
        let emoji = VersionSet::parse_header(br#""y\ud83d\ude00-0""#).unwrap();
        assert_eq!(emoji.single(), Some("y\u{1F600}-0"));
        let raw = VersionSet::parse_header("\"h\u{e9}-1\"".as_bytes()).unwrap();
        assert_eq!(raw.single(), Some("h\u{e9}-1"));
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            &b"a-4"[..],        // transcripts t30/t31 (WIRE §7): unquoted
            b"[oops",           // transcript t32: garbage parents
            b"\"a\", ",         // trailing comma
            b"1",               // not a string
            b"[\"a\"]",         // nested array
            b"\"a\"]",          // bracket injection
            br#"%"caf%c3%a9""#, // SF display string
            b"\"\"",            // empty id
            b"\"\xff\"",        // not UTF-8
            br#""\ud800""#,     // lone surrogate
            b"null",
        ] {
            let err = VersionSet::parse_header(bad).unwrap_err();
            assert_eq!(err.code(), "bad_version_header", "{bad:?}");
        }
        let msg = VersionSet::parse_header(b"a-4").unwrap_err().to_string();
        assert!(msg.contains("\"a-4\""), "{msg}");
    }

    #[test]
    fn formats_like_braid_http() {
        assert_eq!(VersionSet::root().to_header(), "");
        let v = VersionSet::new(["dave-1".to_owned(), "carol-0".to_owned()]);
        assert_eq!(v.to_header(), r#""carol-0", "dave-1""#);
        let v = VersionSet::new(["y\u{1F600}-0".to_owned()]);
        assert_eq!(v.to_header(), r#""y\ud83d\ude00-0""#);
        let v = VersionSet::new(["a\"b\\c\nd\u{1}\u{7f}\u{e9}".to_owned()]);
        assert_eq!(v.to_header(), r#""a\"b\\c\nd\u0001\u007f\u00e9""#);
    }

    #[test]
    fn format_then_parse_round_trips() {
        let mut rng = Rng::new(7);
        for _ in 0..2000 {
            let n = rng.below(4);
            let set = VersionSet::new((0..n).map(|_| format!("{}-{}", rng.text(6), rng.below(9))));
            let header = set.to_header();
            assert!(header.bytes().all(|b| (0x20..0x7f).contains(&b)), "{header}");
            assert_eq!(VersionSet::parse_header(header.as_bytes()).unwrap(), set);
        }
    }

    #[test]
    fn never_panics_on_random_bytes() {
        never_panics(1, 20_000, 40, VersionSet::parse_header);
    }
}
