//! Server side of a subscription stream: the bytes of one update inside a `209` body.
//!
//! The output is exactly braid-http 1.4.7's framing (`spec/WIRE.md` §2.2), which both 1.3.80
//! and 1.4.7 clients parse (WIRE §2.6): an `HTTP 200 OK` status line, `Version`, `Parents` (always
//! present, empty for the root, because the simpleton client crashes without it), an optional
//! `repr-digest`, then a snapshot, one inline patch or a `Patches: N` block, and `\r\n\r\n`.
//! Deliberately not here: the 209 response headers, heartbeat timing, dt binary blocks and
//! the choice of which update to send (all caller decisions); see `decode.rs` for the reverse.

use crate::protocol::range::Patch;
use crate::protocol::version::VersionSet;

/// One heartbeat: a blank line, legal filler between updates (braid-http-04 §4.2).
pub const HEARTBEAT: &[u8] = b"\r\n";

/// The inner status line. It must start with `HTTP`: a bare `200 OK` breaks clients before
/// braid-http 1.3.111 (WIRE §2.1 fact 4).
const STATUS_LINE: &[u8] = b"HTTP 200 OK\r\n";

/// Written after every update (braid-spec issue #73), and between the patches of a block.
const SEPARATOR: &[u8] = b"\r\n\r\n";

/// What an update carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateContent {
    /// The whole text at `version`.
    Snapshot(String),
    /// Range patches against the text at `parents`, sorted and non-overlapping. Exactly one
    /// patch is written inline; zero or several as a `Patches: N` block.
    Patches(Vec<Patch>),
    /// No body: a version announcement (`Content-Length: 0`, for `Method-Override: HEAD`
    /// subscriptions and the empty first dt update).
    HeaderOnly,
}

/// One update of a subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    /// The version after this update.
    pub version: VersionSet,
    /// The version the patches apply to; empty for a snapshot from the root.
    pub parents: VersionSet,
    /// The body.
    pub content: UpdateContent,
    /// A `repr-digest` value for the text at `version` (see `digest.rs`), if one is sent.
    pub repr_digest: Option<String>,
}

/// Appends the bytes of `update` to `out`. `repr_type` is the resource's media type
/// (e.g. `text/plain; charset=utf-8`), sent as the `Content-Type` of snapshot and inline-patch
/// updates. Never writes an update-level `Content-Length` on a `Patches` update: clients give
/// `Content-Length` precedence and would misparse it.
pub fn encode_update(update: &Update, repr_type: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(STATUS_LINE);
    header(out, "Version", &update.version.to_header());
    header(out, "Parents", &update.parents.to_header());
    if let Some(digest) = &update.repr_digest {
        // Lowercase, as braid-http 1.4.7 writes it.
        header(out, "repr-digest", digest);
    }
    match &update.content {
        UpdateContent::Snapshot(text) => {
            header(out, "Content-Type", repr_type);
            header(out, "Content-Length", &text.len().to_string());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(text.as_bytes());
        }
        UpdateContent::Patches(patches) => match patches.as_slice() {
            [patch] => {
                header(out, "Content-Type", repr_type);
                patch_headers_and_content(out, patch);
            }
            _ => {
                let count = patches.len().to_string();
                header(out, "Content-Type", &format!("application/http-patches; count={count}"));
                header(out, "Patches", &count);
                out.extend_from_slice(b"\r\n");
                for (i, patch) in patches.iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(SEPARATOR);
                    }
                    patch_headers_and_content(out, patch);
                }
            }
        },
        UpdateContent::HeaderOnly => {
            header(out, "Content-Length", "0");
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(SEPARATOR);
}

/// The body of a multi-patch PUT (`Patches: N`): each patch's headers and content, separated
/// by blank lines; what `body::parse_patches` reads back.
pub fn encode_patches_body(patches: &[Patch], out: &mut Vec<u8>) {
    for (i, patch) in patches.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(SEPARATOR);
        }
        patch_headers_and_content(out, patch);
    }
}

/// `Content-Length`, `Content-Range`, the blank line and the content of one patch.
fn patch_headers_and_content(out: &mut Vec<u8>, patch: &Patch) {
    header(out, "Content-Length", &patch.content.len().to_string());
    header(out, "Content-Range", &patch.range.to_string());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(patch.content.as_bytes());
}

/// Writes `name: value\r\n`, dropping any byte of `value` outside printable ASCII: clients
/// decode header bytes as Latin-1, and a CR or LF from a misconfigured value must never be
/// able to end the header block early.
pub(crate) fn header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend(value.bytes().filter(|b| (0x20..0x7f).contains(b)));
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod tests {
    use super::*;
    use crate::protocol::range::TextRange;

    /// The representation type braid-text sends for text resources.
    pub(crate) const REPR: &str = "text/plain; charset=utf-8";

    /// The de-chunked bytes of `spec/WIRE.md` §2.2 (its three updates), then the `Patches: 0`
    /// update of WIRE §2.2 and the header-only update of WIRE §2.4.
    pub(crate) const GOLDEN: &[u8] = include_bytes!("../../spec/examples/updates-1.4.7.bin");

    fn vs(ids: &[&str]) -> VersionSet {
        VersionSet::new(ids.iter().map(|s| (*s).to_owned()))
    }

    fn patch(a: u64, b: u64, content: &str) -> Patch {
        Patch { range: TextRange::absolute(a, b), content: content.to_owned() }
    }

    /// The updates that [`GOLDEN`] encodes, in order.
    pub(crate) fn golden_updates() -> Vec<Update> {
        let digest = "sha-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=:";
        vec![
            Update {
                version: vs(&["alice-4"]),
                parents: VersionSet::root(),
                content: UpdateContent::Snapshot("hello".to_owned()),
                repr_digest: Some(digest.to_owned()),
            },
            Update {
                version: vs(&["bob-2"]),
                parents: vs(&["alice-4"]),
                content: UpdateContent::Patches(vec![patch(5, 5, " yo")]),
                repr_digest: None,
            },
            Update {
                version: vs(&["dave-1", "carol-0"]),
                parents: vs(&["bob-2"]),
                content: UpdateContent::Patches(vec![patch(0, 0, "A"), patch(3, 5, "")]),
                repr_digest: None,
            },
            Update {
                version: vs(&["dave-0"]),
                parents: vs(&["zed-3", "carol-5"]),
                content: UpdateContent::Patches(vec![]),
                repr_digest: None,
            },
            Update {
                version: vs(&["a-9"]),
                parents: vs(&["a-4"]),
                content: UpdateContent::HeaderOnly,
                repr_digest: None,
            },
        ]
    }

    fn encode(update: &Update) -> Vec<u8> {
        let mut out = Vec::new();
        encode_update(update, REPR, &mut out);
        out
    }

    #[test]
    fn snapshot_matches_braid_wire_2_2() {
        let expected = concat!(
            "HTTP 200 OK\r\n",
            "Version: \"alice-4\"\r\n",
            "Parents: \r\n",
            "repr-digest: sha-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=:\r\n",
            "Content-Type: text/plain; charset=utf-8\r\n",
            "Content-Length: 5\r\n",
            "\r\n",
            "hello\r\n",
            "\r\n",
        );
        let got = encode(&golden_updates()[0]);
        assert_eq!(String::from_utf8(got).unwrap(), expected);
    }

    #[test]
    fn inline_patch_matches_braid_wire_2_2() {
        let expected = concat!(
            "HTTP 200 OK\r\n",
            "Version: \"bob-2\"\r\n",
            "Parents: \"alice-4\"\r\n",
            "Content-Type: text/plain; charset=utf-8\r\n",
            "Content-Length: 3\r\n",
            "Content-Range: text [5:5]\r\n",
            "\r\n",
            " yo\r\n",
            "\r\n",
        );
        assert_eq!(String::from_utf8(encode(&golden_updates()[1])).unwrap(), expected);
    }

    #[test]
    fn merge_update_matches_braid_wire_2_2() {
        let expected = concat!(
            "HTTP 200 OK\r\n",
            "Version: \"carol-0\", \"dave-1\"\r\n",
            "Parents: \"bob-2\"\r\n",
            "Content-Type: application/http-patches; count=2\r\n",
            "Patches: 2\r\n",
            "\r\n",
            "Content-Length: 1\r\n",
            "Content-Range: text [0:0]\r\n",
            "\r\n",
            "A\r\n",
            "\r\n",
            "Content-Length: 0\r\n",
            "Content-Range: text [3:5]\r\n",
            "\r\n",
            "\r\n",
            "\r\n",
        );
        assert_eq!(String::from_utf8(encode(&golden_updates()[2])).unwrap(), expected);
    }

    #[test]
    fn zero_patches_and_header_only() {
        let expected = concat!(
            "HTTP 200 OK\r\n",
            "Version: \"dave-0\"\r\n",
            "Parents: \"carol-5\", \"zed-3\"\r\n",
            "Content-Type: application/http-patches; count=0\r\n",
            "Patches: 0\r\n",
            "\r\n",
            "\r\n\r\n",
        );
        assert_eq!(String::from_utf8(encode(&golden_updates()[3])).unwrap(), expected);
        let expected = "HTTP 200 OK\r\nVersion: \"a-9\"\r\nParents: \"a-4\"\r\nContent-Length: 0\r\n\r\n\r\n\r\n";
        assert_eq!(String::from_utf8(encode(&golden_updates()[4])).unwrap(), expected);
    }

    #[test]
    fn golden_fixture_is_the_concatenation() {
        let mut out = Vec::new();
        for update in golden_updates() {
            encode_update(&update, REPR, &mut out);
        }
        assert_eq!(out, GOLDEN);
    }

    #[test]
    fn headers_stay_ascii_and_lengths_count_utf8_bytes() {
        let update = Update {
            version: vs(&["\u{e9}-1"]),
            parents: vs(&["y\u{1F600}-0"]),
            content: UpdateContent::Patches(vec![patch(1, 1, "h\u{e9}y")]),
            repr_digest: Some("sha-256=:x\r\ny:".to_owned()),
        };
        let out = encode(&update);
        let text = String::from_utf8(out).unwrap();
        let (head, _) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.is_ascii(), "{head}");
        assert!(head.contains("Version: \"\\u00e9-1\"\r\nParents: \"y\\ud83d\\ude00-0\""));
        assert!(head.contains("repr-digest: sha-256=:xy:\r\n"), "CR/LF dropped");
        assert!(head.contains("Content-Length: 4\r\n"), "{head}");
        let weird_repr = encode_with_repr(&update, "text/plain\r\nX: 1");
        assert!(weird_repr.windows(12).any(|w| w == b"text/plainX:"));
    }

    fn encode_with_repr(update: &Update, repr: &str) -> Vec<u8> {
        let mut out = Vec::new();
        encode_update(update, repr, &mut out);
        out
    }
}
