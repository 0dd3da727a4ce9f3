//! Which kind of resource a first write creates: text (merged by the CRDT) or a file (whole
//! versions, siblings on conflict). Pure: headers and bytes in, a decision out.
//!
//! The rule (spec/CONFORMANCE.md, "Text or file"):
//! 1. `Merge-Type: aww` (braid-blob's) makes a file; any other merge type (`dt`, `simpleton`, …)
//!    makes text. Without a merge type, `Version-Type: wallclockish` (braidfs' blob writes)
//!    makes a file.
//! 2. A `Content-Type` that is not text makes a file: `image/*`, `application/pdf`,
//!    `application/octet-stream`, … Text types are `text/*`, JSON, XML, JavaScript, YAML, TOML,
//!    SQL and shell (with `+json`/`+xml` suffixes), and curl's default
//!    `application/x-www-form-urlencoded`, which `curl --data-binary @README.md` sends.
//! 3. Otherwise (a text type, or none) the bytes decide: valid UTF-8 without a NUL byte is text,
//!    anything else a file (git's "binary" heuristic adds the NUL rule: UTF-8 that holds NULs is
//!    a binary format, not something a person edits).
//!
//! Bodies stream, so [`Sniffer`] decides from the bytes as they arrive, holding at most the
//! three bytes of a code point split across frames.

/// A resource kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    File,
}

/// What the headers alone say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderVerdict {
    /// Decided.
    Is(Kind),
    /// Text if the bytes are (rule 3).
    TextIfTheBytesAre,
}

/// Rules 1 and 2: the kind from `Merge-Type` (and braid-blob's `Version-Type: wallclockish`,
/// which only blobs use) and `Content-Type`, when they decide it.
pub fn kind_from_headers(
    content_type: Option<&str>,
    merge_type: Option<&str>,
    version_type: Option<&str>,
) -> HeaderVerdict {
    if let Some(m) = merge_type.map(str::trim).filter(|m| !m.is_empty()) {
        return HeaderVerdict::Is(if m.eq_ignore_ascii_case("aww") { Kind::File } else { Kind::Text });
    }
    if version_type.is_some_and(|v| v.trim().eq_ignore_ascii_case("wallclockish")) {
        return HeaderVerdict::Is(Kind::File);
    }
    match content_type.map(essence) {
        Some(t) if !t.is_empty() && !is_text_type(&t) => HeaderVerdict::Is(Kind::File),
        _ => HeaderVerdict::TextIfTheBytesAre,
    }
}

/// The media type without parameters, lowercased (`Text/Plain; charset=utf-8` → `text/plain`).
fn essence(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

fn is_text_type(t: &str) -> bool {
    const TEXT_APPLICATION: &[&str] = &[
        "application/json",
        "application/xml",
        "application/javascript",
        "application/ecmascript",
        "application/x-javascript",
        "application/yaml",
        "application/x-yaml",
        "application/toml",
        "application/sql",
        "application/x-sh",
        "application/x-ndjson",
        "application/x-www-form-urlencoded",
    ];
    t.starts_with("text/") || TEXT_APPLICATION.contains(&t) || t.ends_with("+json") || t.ends_with("+xml")
}

/// The media type a file's first bytes announce (JPEG, PNG, PDF, MP4, ZIP, …), for a file
/// body sent without a usable `Content-Type` (none, or curl's default form type).
pub fn sniff_media_type(prefix: &[u8]) -> Option<&'static str> {
    infer::get(prefix).map(|t| t.mime_type())
}

/// The `Content-Type` a file version keeps: the one sent, unless it says nothing about the
/// bytes (absent, empty, or curl's default `application/x-www-form-urlencoded`); then what the
/// bytes announce, else `application/octet-stream`.
pub fn file_content_type(sent: Option<&str>, prefix: &[u8]) -> String {
    match sent.map(str::trim).filter(|t| !t.is_empty() && essence(t) != "application/x-www-form-urlencoded") {
        Some(t) => t.to_string(),
        None => sniff_media_type(prefix).unwrap_or("application/octet-stream").to_string(),
    }
}

/// Rule 3, fed frame by frame: whether every byte so far can be text.
#[derive(Clone, Debug, Default)]
pub struct Sniffer {
    /// The start of a code point split at the end of the last frame (at most 3 bytes).
    pending: Vec<u8>,
    binary: bool,
}

impl Sniffer {
    /// Looks at the next frame of the body.
    pub fn feed(&mut self, frame: &[u8]) {
        if self.binary || frame.is_empty() {
            return;
        }
        if frame.contains(&0) {
            self.binary = true;
            return;
        }
        let joined;
        let bytes = if self.pending.is_empty() {
            frame
        } else {
            joined = [self.pending.as_slice(), frame].concat();
            joined.as_slice()
        };
        self.pending.clear();
        match std::str::from_utf8(bytes) {
            Ok(_) => {}
            // Cut inside a code point at the end: keep its start for the next frame.
            Err(e) if e.error_len().is_none() => self.pending.extend_from_slice(&bytes[e.valid_up_to()..]),
            Err(_) => self.binary = true,
        }
    }

    /// Whether the bytes seen so far already make a file (no later frame can make them text).
    pub fn is_binary(&self) -> bool {
        self.binary
    }

    /// The kind of the whole body, once every frame was fed.
    pub fn finish(&self) -> Kind {
        if self.binary || !self.pending.is_empty() {
            Kind::File
        } else {
            Kind::Text
        }
    }
}

/// The kind a first write creates, given its headers and its whole body.
pub fn kind_of(content_type: Option<&str>, merge_type: Option<&str>, body: &[u8]) -> Kind {
    match kind_from_headers(content_type, merge_type, None) {
        HeaderVerdict::Is(kind) => kind,
        HeaderVerdict::TextIfTheBytesAre => {
            let mut s = Sniffer::default();
            s.feed(body);
            s.finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_decide_when_they_can() {
        assert_eq!(kind_of(Some("image/jpeg"), None, b"plain ascii"), Kind::File);
        assert_eq!(kind_of(Some("application/octet-stream"), None, b"abc"), Kind::File);
        assert_eq!(kind_of(Some("Application/PDF; x=1"), None, b"abc"), Kind::File);
        assert_eq!(kind_of(None, Some("aww"), b"abc"), Kind::File);
        assert_eq!(kind_of(Some("image/png"), Some("dt"), b"abc"), Kind::Text, "a merge type wins");
        assert_eq!(kind_of(None, Some("simpleton"), &[0xff, 0xfe]), Kind::Text);
        assert_eq!(kind_from_headers(None, None, Some("wallclockish")), HeaderVerdict::Is(Kind::File));
        assert_eq!(kind_from_headers(None, Some("dt"), Some("wallclockish")), HeaderVerdict::Is(Kind::Text));
    }

    #[test]
    fn a_file_keeps_its_type_or_gets_one_from_its_magic_bytes() {
        let jpeg = [0xff, 0xd8, 0xff, 0xe0, 0, 0x10, b'J', b'F', b'I', b'F', 0];
        assert_eq!(file_content_type(Some("application/x-www-form-urlencoded"), &jpeg), "image/jpeg");
        assert_eq!(file_content_type(None, b"%PDF-1.7\n"), "application/pdf");
        assert_eq!(file_content_type(Some(" "), &[1, 2, 3]), "application/octet-stream");
        assert_eq!(file_content_type(Some("image/x-custom"), &jpeg), "image/x-custom");
    }

    #[test]
    fn text_types_and_curls_default_look_at_the_bytes() {
        for t in [
            None,
            Some("text/markdown; charset=utf-8"),
            Some("application/x-www-form-urlencoded"),
            Some("application/ld+json"),
            Some("image/svg+xml"),
            Some(""),
        ] {
            assert_eq!(kind_of(t, None, "# README\nhéllo 😀".as_bytes()), Kind::Text, "{t:?}");
            assert_eq!(kind_of(t, None, &[0x89, b'P', b'N', b'G']), Kind::File, "{t:?}");
            assert_eq!(kind_of(t, None, b"a\0b"), Kind::File, "{t:?}: NUL bytes are binary");
        }
        assert_eq!(kind_of(None, None, b""), Kind::Text, "an empty body is empty text");
    }

    #[test]
    fn a_code_point_split_across_frames_is_still_text() {
        let text = "ab😀cd".as_bytes();
        for cut in 0..=text.len() {
            for cut2 in cut..=text.len() {
                let mut s = Sniffer::default();
                s.feed(&text[..cut]);
                s.feed(&text[cut..cut2]);
                s.feed(&text[cut2..]);
                assert_eq!(s.finish(), Kind::Text, "cuts {cut}, {cut2}");
            }
        }
        let mut s = Sniffer::default();
        s.feed(&"a😀".as_bytes()[..3]);
        assert!(!s.is_binary(), "maybe more to come");
        assert_eq!(s.finish(), Kind::File, "a body ending inside a code point is not text");
        s.feed(&[0xc3, 0x28]);
        assert!(s.is_binary());
    }
}
