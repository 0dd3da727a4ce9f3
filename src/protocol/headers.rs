//! Small Braid request headers: `Peer`, `Heartbeats`, `Merge-Type` and the `Subscribe` echo.
//!
//! Each function takes one raw header value (bytes, as the HTTP library hands them over) and
//! follows what the JavaScript peers send, old and new forms alike (`spec/WIRE.md` §1.3-§1.6).
//! `Version`/`Parents` live in `version.rs`, `Content-Range` in `range.rs` and the patch-count
//! headers in `body.rs`. Deliberately not here: deciding *whether* to subscribe (any present
//! `Subscribe` header means yes, which the caller sees without parsing) and the HTTP
//! header-map plumbing.

use crate::protocol::error::{show, ProtocolError};

/// Heartbeat periods below this are refused: a client asking for 20 blank lines a second is
/// either broken or hostile.
pub const MIN_HEARTBEAT_SECS: f64 = 0.05;

/// Heartbeat periods above one day are refused (they would never fire in practice, and a
/// huge value could overflow a timer).
pub const MAX_HEARTBEAT_SECS: f64 = 86_400.0;

/// Parses `Peer`, returning the normalized peer id used for echo suppression.
///
/// braid-http >= 1.4.4 quotes it (`"abc123"`), older clients and the simpleton client send it
/// bare (`abc123`). Like braidify we strip one pair of surrounding quotes and unescape `\"` and
/// `\\`, so both forms compare equal. Empty and non-UTF-8 values are errors: an empty peer
/// would suppress echoes between unrelated clients.
pub fn parse_peer(value: &[u8]) -> Result<String, ProtocolError> {
    let bad = |reason| ProtocolError::BadPeer { value: show(value), reason };
    let text = std::str::from_utf8(value).map_err(|_| bad("not valid UTF-8"))?.trim();
    let peer = match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) => unescape_quoted(inner),
        None => text.to_owned(),
    };
    if peer.is_empty() {
        return Err(bad("empty peer id"));
    }
    if peer.chars().any(char::is_control) {
        return Err(bad("control character in peer id"));
    }
    Ok(peer)
}

/// Undoes `\"` and `\\`; any other backslash is kept as written (as braidify does).
fn unescape_quoted(inner: &str) -> String {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(&next @ ('"' | '\\')) = chars.peek() {
                out.push(next);
                chars.next();
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// Parses `Heartbeats` into seconds, with JavaScript `parseFloat` semantics: the longest
/// numeric prefix counts, so `20`, `20s` and `22.5` all work (braid-http echoes the value and
/// only checks that `parseFloat` is finite). The result must lie within
/// [`MIN_HEARTBEAT_SECS`]..=[`MAX_HEARTBEAT_SECS`].
pub fn parse_heartbeats(value: &[u8]) -> Result<f64, ProtocolError> {
    let bad = |reason| ProtocolError::BadHeartbeats { value: show(value), reason };
    let text = std::str::from_utf8(value).map_err(|_| bad("not valid UTF-8"))?;
    let prefix = float_prefix(text.trim_start());
    let secs: f64 = prefix.parse().map_err(|_| bad("not a number of seconds"))?;
    if !secs.is_finite() || secs <= 0.0 {
        return Err(bad("must be a positive number of seconds"));
    }
    if secs < MIN_HEARTBEAT_SECS {
        return Err(bad("too frequent (minimum 0.05 s)"));
    }
    if secs > MAX_HEARTBEAT_SECS {
        return Err(bad("too rare (maximum one day)"));
    }
    Ok(secs)
}

/// The longest prefix of `s` that is a decimal literal: `[+-] digits [. digits] [e [+-] digits]`
/// with at least one mantissa digit; empty if there is none. (`Infinity`, which `parseFloat`
/// also accepts, is left out: it is rejected anyway.)
fn float_prefix(s: &str) -> &str {
    let b = s.as_bytes();
    let digits = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let int_end = digits(i);
    let mut mantissa_digits = int_end - i;
    i = int_end;
    if b.get(i) == Some(&b'.') {
        let frac_end = digits(i + 1);
        mantissa_digits += frac_end - (i + 1);
        i = frac_end;
    }
    if mantissa_digits == 0 {
        return "";
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let j = i + 1 + usize::from(matches!(b.get(i + 1), Some(b'+' | b'-')));
        let exp_end = digits(j);
        if exp_end > j {
            i = exp_end;
        }
    }
    &s[..i]
}

/// The merge type a client asked for with `Merge-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MergeType {
    /// The default: the server rebases, the client keeps no history (WIRE §4.2).
    Simpleton,
    /// The peer receives the CRDT history and merges itself (WIRE §4.3).
    Dt,
}

impl MergeType {
    /// Parses `Merge-Type`. Absent or empty means `simpleton`, as in braid-text. Names are
    /// case-sensitive, as in braid-text. `yjs` (which braid-text has) and anything else is
    /// `unknown_merge_type`.
    pub fn parse(value: Option<&[u8]>) -> Result<MergeType, ProtocolError> {
        let Some(value) = value else {
            return Ok(MergeType::Simpleton);
        };
        match value.trim_ascii() {
            b"" | b"simpleton" => Ok(MergeType::Simpleton),
            b"dt" => Ok(MergeType::Dt),
            _ => Err(ProtocolError::UnknownMergeType { value: show(value) }),
        }
    }

    /// The header value, as echoed in `Merge-Type` responses.
    pub fn as_str(&self) -> &'static str {
        match self {
            MergeType::Simpleton => "simpleton",
            MergeType::Dt => "dt",
        }
    }
}

/// The `Subscribe` response value for a request's `Subscribe` value: `?1` when the client
/// said `?1` (braid-http >= 1.4.4), otherwise `true`. braid-chrome aborts on anything but
/// these two, so arbitrary request values are never echoed.
pub fn subscribe_echo(request_value: &[u8]) -> &'static str {
    if request_value.trim_ascii() == b"?1" {
        "?1"
    } else {
        "true"
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::protocol::test_util::never_panics;

    #[test]
    fn peer_bare_and_quoted_forms_agree() {
        assert_eq!(parse_peer(b"abc123").unwrap(), "abc123");
        assert_eq!(parse_peer(b"\"abc123\"").unwrap(), "abc123");
        assert_eq!(parse_peer(b" peer-two ").unwrap(), "peer-two");
        assert_eq!(parse_peer(br#""a\"b\\c\n""#).unwrap(), r#"a"b\c\n"#);
        assert_eq!(parse_peer(b"\"").unwrap(), "\"", "a lone quote is a bare value");
        assert_eq!(parse_peer("\"h\u{e9}\"".as_bytes()).unwrap(), "h\u{e9}");
    }

    #[test]
    fn peer_rejects_empty_and_garbage() {
        for bad in [&b""[..], b"   ", b"\"\"", b"\xff\xfe", b"a\x01b"] {
            assert_eq!(parse_peer(bad).unwrap_err().code(), "bad_peer", "{bad:?}");
        }
    }

    #[test]
    fn heartbeats_follow_parse_float() {
        for (value, secs) in [
            (&b"20"[..], 20.0),
            (b"20s", 20.0),
            (b"22.5", 22.5),
            (b" 120s", 120.0),
            (b"1e1", 10.0),
            (b"1e", 1.0),
            (b".5", 0.5),
            (b"5.", 5.0),
            (b"+3x", 3.0),
            (b"0.05", 0.05),
            (b"86400", 86_400.0),
        ] {
            assert_eq!(parse_heartbeats(value).unwrap(), secs, "{value:?}");
        }
    }

    #[test]
    fn heartbeats_reject_absurd_values() {
        for bad in
            [&b""[..], b"s20", b"abc", b"0", b"-5", b"0.01", b"86401", b"1e999", b"Infinity", b"NaN", b".", b"\xff"]
        {
            assert_eq!(parse_heartbeats(bad).unwrap_err().code(), "bad_heartbeats", "{bad:?}");
        }
    }

    #[test]
    fn merge_type_like_braid_text() {
        assert_eq!(MergeType::parse(None).unwrap(), MergeType::Simpleton);
        assert_eq!(MergeType::parse(Some(b"")).unwrap(), MergeType::Simpleton);
        assert_eq!(MergeType::parse(Some(b"simpleton")).unwrap(), MergeType::Simpleton);
        assert_eq!(MergeType::parse(Some(b"dt")).unwrap(), MergeType::Dt);
        assert_eq!(MergeType::Dt.as_str(), "dt");
        assert_eq!(MergeType::Simpleton.as_str(), "simpleton");
        for bad in [&b"nonsense"[..], b"yjs", b"DT", b"Simpleton", b"\xff"] {
            let err = MergeType::parse(Some(bad)).unwrap_err();
            assert_eq!(err.code(), "unknown_merge_type");
        }
        let msg = MergeType::parse(Some(b"nonsense")).unwrap_err().to_string();
        assert!(msg.contains("\"nonsense\""), "{msg}");
    }

    #[test]
    fn subscribe_echo_is_always_something_braid_chrome_accepts() {
        assert_eq!(subscribe_echo(b"?1"), "?1");
        assert_eq!(subscribe_echo(b"true"), "true");
        assert_eq!(subscribe_echo(b""), "true");
        assert_eq!(subscribe_echo(b"keep-alive=30"), "true");
    }

    #[test]
    fn never_panic_on_random_bytes() {
        never_panics(2, 10_000, 24, parse_peer);
        never_panics(3, 10_000, 24, parse_heartbeats);
        never_panics(4, 10_000, 24, |v| MergeType::parse(Some(v)));
        never_panics(5, 10_000, 24, subscribe_echo);
    }
}
