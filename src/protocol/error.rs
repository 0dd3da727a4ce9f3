//! The one error type of the wire-format layer.
//!
//! Every parser in `protocol` returns `Ok` or a [`ProtocolError`] on any input; none panics.
//! The error says *what* was wrong and quotes the offending value (escaped and truncated, so
//! a hostile client cannot make a log line or a 400 body arbitrarily large or multi-line).
//! It deliberately does not choose an HTTP status or the code clients see: the HTTP layer maps
//! each variant to a row of its table of codes, in one place.

/// The longest quoted value, in characters, that an error message repeats back.
const MAX_SHOWN_CHARS: usize = 100;

/// A malformed Braid-HTTP message: a bad header value, body or subscription stream.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum ProtocolError {
    /// A `Version`, `Parents` or `Current-Version` value that is not a JSON list of strings.
    #[error("bad version header {value}: {reason}")]
    BadVersionHeader { value: String, reason: String },

    /// A `Content-Range` value that is not `<unit> <range>` with a well-formed range.
    #[error("bad Content-Range {value}: {reason}")]
    BadContentRange { value: String, reason: &'static str },

    /// A range unit other than `text`, e.g. `bytes` or `json`.
    #[error("unsupported Content-Range unit {unit}: only \"text\" is supported")]
    UnsupportedRangeUnit { unit: String },

    /// A `Patches: N` or `Content-Type: application/http-patches; count=N` value that is not
    /// a count, or two count headers that disagree.
    #[error("bad patch count {value}: {reason}")]
    BadPatchCount { value: String, reason: &'static str },

    /// More patches declared than [`crate::protocol::body::MAX_PATCHES`].
    #[error("too many patches: {count} declared, at most {max} allowed")]
    TooManyPatches { count: u64, max: usize },

    /// A multi-patch body that does not follow the `Patches: N` grammar.
    #[error("bad patches body: {reason}")]
    BadPatches { reason: String },

    /// A multi-patch body with fewer patches than its count header declared.
    #[error("patch count mismatch: {declared} patches declared but the body holds {found}")]
    PatchCountMismatch { declared: usize, found: usize },

    /// A `Content-Length` value that is not a plain decimal number of bytes.
    #[error("bad Content-Length {value}: expected a decimal byte count")]
    BadContentLength { value: String },

    /// Text that must be UTF-8 and is not.
    #[error("invalid UTF-8 in {what}")]
    InvalidUtf8 { what: &'static str },

    /// A `Peer` value that cannot name a peer.
    #[error("bad Peer {value}: {reason}")]
    BadPeer { value: String, reason: &'static str },

    /// A `Merge-Type` other than the ones this server implements.
    #[error("unknown merge type {value}: expected \"simpleton\" or \"dt\"")]
    UnknownMergeType { value: String },

    /// A `Heartbeats` value that is not a sane number of seconds.
    #[error("bad Heartbeats {value}: {reason}")]
    BadHeartbeats { value: String, reason: &'static str },

    /// A subscription stream that does not follow the update grammar.
    #[error("bad subscription framing: {reason}")]
    BadFraming { reason: String },

    /// An update's header block that grows past the decoder's limit without ending.
    #[error("update header block larger than {limit} bytes")]
    HeaderTooLarge { limit: usize },

    /// An update or patch body larger than the decoder's limit.
    #[error("body of {len} bytes exceeds the limit of {limit} bytes")]
    BodyTooLarge { len: u64, limit: usize },
}

impl ProtocolError {
    /// A stable snake_case name for the error, for tests and logs. What the server answers is
    /// decided by the HTTP layer's table of codes (the same names; a test keeps them equal).
    pub fn code(&self) -> &'static str {
        match self {
            ProtocolError::BadVersionHeader { .. } => "bad_version_header",
            ProtocolError::BadContentRange { .. } => "bad_content_range",
            ProtocolError::UnsupportedRangeUnit { .. } => "unsupported_range_unit",
            ProtocolError::BadPatchCount { .. } => "bad_patch_count",
            ProtocolError::TooManyPatches { .. } => "too_many_patches",
            ProtocolError::BadPatches { .. } => "bad_patches",
            ProtocolError::PatchCountMismatch { .. } => "patch_count_mismatch",
            ProtocolError::BadContentLength { .. } => "bad_content_length",
            ProtocolError::InvalidUtf8 { .. } => "invalid_utf8",
            ProtocolError::BadPeer { .. } => "bad_peer",
            ProtocolError::UnknownMergeType { .. } => "unknown_merge_type",
            ProtocolError::BadHeartbeats { .. } => "bad_heartbeats",
            ProtocolError::BadFraming { .. } => "bad_framing",
            ProtocolError::HeaderTooLarge { .. } => "header_too_large",
            ProtocolError::BodyTooLarge { .. } => "body_too_large",
        }
    }
}

/// Quotes a client-supplied value for an error message: lossy UTF-8, control characters and
/// quotes escaped (so the message stays on one line), at most ~100 characters.
pub(crate) fn show(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    let mut out = String::with_capacity(text.len().min(MAX_SHOWN_CHARS) + 8);
    out.push('"');
    for (i, c) in text.chars().enumerate() {
        if i == MAX_SHOWN_CHARS {
            out.push_str("...");
            break;
        }
        out.extend(c.escape_debug());
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_escapes_and_truncates() {
        assert_eq!(show(b"a-4"), "\"a-4\"");
        assert_eq!(show(b"x\r\ny\"z"), "\"x\\r\\ny\\\"z\"");
        assert_eq!(show(b"\xff"), "\"\u{fffd}\"");
        let long = show(&[b'a'; 500]);
        assert_eq!(long.len(), 100 + 2 + 3);
        assert!(long.ends_with("...\""));
    }

    #[test]
    fn display_names_the_value_and_code_is_stable() {
        let e = ProtocolError::UnknownMergeType { value: show(b"nonsense") };
        assert_eq!(e.code(), "unknown_merge_type");
        assert!(e.to_string().contains("\"nonsense\""));
        let e = ProtocolError::PatchCountMismatch { declared: 2, found: 1 };
        assert_eq!(e.code(), "patch_count_mismatch");
        assert!(e.to_string().contains("2 patches declared"));
    }
}
