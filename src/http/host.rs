//! The `Host` check (RFC 9112 §3.2, RFC 9113 §8.3.1), before anything else answers a request.
//!
//! hyper serves any request line and leaves `Host` alone, so without this an HTTP/1.1 request
//! with no `Host`, two of them or a garbled one was served like any other. RFC 9112 §3.2 says
//! a server MUST answer those with 400, and every host a request names is checked here the
//! same way:
//! - HTTP/1.1: exactly one `Host` line, a valid `uri-host [ ":" port ]`, also with an
//!   absolute-form target (`GET http://x/ HTTP/1.1`), whose authority then wins (§3.2.2);
//! - HTTP/1.0: `Host` is optional, but one at most and valid when sent;
//! - HTTP/2: `:authority` takes `Host`'s place (hyper puts it in the URI); a request needs one
//!   of the two (RFC 9113 §8.3.1), and a `Host` sent beside it must still be one valid line;
//! - a target's authority (absolute-form, `:authority`) must be a valid `uri-host [":" port]`
//!   too: no userinfo (`user@host`, RFC 9110 §4.2.4), a port of at most 65535.
//!
//! Refusals are `400 bad_host`. The check sits outside the CORS layer, so it also covers the
//! `OPTIONS` requests that layer answers by itself, and its refusals are passed through that
//! same layer ([`refusals`]) so browser apps can read them like every other error.

use std::net::Ipv6Addr;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, Version};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::ServiceExt;
use tower_http::cors::CorsLayer;

use crate::protocol::error::show;

use super::ApiError;

/// Why a request's host is refused: the message of its `bad_host` answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadHost(pub String);

/// The middleware: lets a request with acceptable hosts through, answers any other with
/// `400 bad_host` through `refusals`.
pub async fn check(State(refusals): State<Router>, mut req: Request, next: Next) -> Response {
    let authority = req.uri().authority().map(|a| a.as_str());
    match check_request(req.version(), authority, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(bad) => {
            tracing::debug!(reason = %bad.0, "bad host");
            // The CORS layer answers every OPTIONS as a preflight; this one is refused instead.
            *req.method_mut() = Method::GET;
            req.extensions_mut().insert(bad);
            match refusals.oneshot(req).await {
                Ok(res) => res,
                Err(never) => match never {},
            }
        }
    }
}

/// The service that answers refused requests: a `bad_host` error, with CORS headers.
pub fn refusals(cors: CorsLayer) -> Router {
    Router::new().fallback(refused).layer(cors)
}

async fn refused(req: Request) -> Response {
    let message = match req.extensions().get::<BadHost>() {
        Some(BadHost(message)) => message.clone(),
        None => "the request's host was refused".to_string(),
    };
    ApiError::BadHost(message).into_response()
}

/// Checks a request's `Host` lines and its target's authority (None for an origin-form
/// target) against what its HTTP version requires.
pub fn check_request(version: Version, authority: Option<&str>, headers: &HeaderMap) -> Result<(), BadHost> {
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = hosts.next();
    let more = hosts.count();
    if more > 0 {
        return Err(BadHost(format!(
            "the request has {} Host header lines; it may have one (RFC 9112 §3.2)",
            more + 1
        )));
    }
    match host {
        Some(value) => {
            check_host(value.as_bytes())
                .map_err(|why| BadHost(format!("Host {} is not a host[:port]: {why}", show(value.as_bytes()))))?;
        }
        None if version == Version::HTTP_11 => {
            return Err(BadHost("an HTTP/1.1 request needs a Host header (RFC 9112 §3.2)".into()));
        }
        None if (version == Version::HTTP_2 || version == Version::HTTP_3) && authority.is_none() => {
            return Err(BadHost("an HTTP/2 request needs :authority or Host (RFC 9113 §8.3.1)".into()));
        }
        None => {}
    }
    if let Some(authority) = authority {
        check_host(authority.as_bytes()).map_err(|why| {
            BadHost(format!(
                "the request target's authority {} is not a host[:port]: {why}",
                show(authority.as_bytes())
            ))
        })?;
    }
    Ok(())
}

/// Checks `value` against `uri-host [ ":" port ]` (RFC 9110 §7.2, RFC 3986 §3.2.2-3): an
/// IP literal in brackets (IPv6 or IPvFuture), or a reg-name (unreserved, sub-delims and
/// `%XX` escapes; IPv4 addresses and DNS names are reg-names), then an optional port of
/// digits no larger than 65535. The grammar allows an empty host (RFC 9112 §3.2 even asks
/// for an empty `Host` when the target URI has no authority) and an empty port.
pub fn check_host(value: &[u8]) -> Result<(), &'static str> {
    if let [b'[', inside @ ..] = value {
        let close = inside.iter().position(|&b| b == b']').ok_or("an IP literal without its closing ]")?;
        check_ip_literal(&inside[..close])?;
        return match &inside[close + 1..] {
            [] => Ok(()),
            [b':', port @ ..] => check_port(port),
            _ => Err("text after the ] of an IP literal"),
        };
    }
    // A reg-name holds no colon: the first one starts the port.
    let (name, port) = match value.iter().position(|&b| b == b':') {
        Some(colon) => (&value[..colon], &value[colon + 1..]),
        None => (value, &[][..]),
    };
    check_reg_name(name)?;
    check_port(port)
}

fn check_reg_name(name: &[u8]) -> Result<(), &'static str> {
    let mut i = 0;
    while i < name.len() {
        match name[i] {
            b'%' => {
                let hex = |at: usize| name.get(at).is_some_and(u8::is_ascii_hexdigit);
                if !(hex(i + 1) && hex(i + 2)) {
                    return Err("a % not followed by two hex digits");
                }
                i += 3;
            }
            b if is_unreserved(b) || is_sub_delim(b) => i += 1,
            b'@' => return Err("userinfo (@) is not allowed"),
            b' ' | b'\t' => return Err("whitespace"),
            b if b.is_ascii_control() => return Err("a control character"),
            b if !b.is_ascii() => return Err("a non-ASCII byte (international names must be punycode)"),
            _ => return Err("a character that a host name cannot hold"),
        }
    }
    Ok(())
}

fn check_port(port: &[u8]) -> Result<(), &'static str> {
    if !port.iter().all(u8::is_ascii_digit) {
        return Err("the port is not a number");
    }
    // Leading zeros are allowed by the grammar; the value is what must fit.
    let significant = port.iter().skip_while(|&&b| b == b'0').count();
    let value = port.iter().fold(0u32, |n, &b| n.saturating_mul(10).saturating_add(u32::from(b - b'0')));
    if significant > 5 || value > 65535 {
        return Err("the port is above 65535");
    }
    Ok(())
}

/// The inside of `[...]`: an IPv6 address (no zone id), or `v<hex>.<chars>` (IPvFuture).
fn check_ip_literal(inside: &[u8]) -> Result<(), &'static str> {
    if let [b'v' | b'V', rest @ ..] = inside {
        let dot = rest.iter().position(|&b| b == b'.').ok_or("an IPvFuture literal without its .")?;
        let (version, tail) = (&rest[..dot], &rest[dot + 1..]);
        let tail_ok = !tail.is_empty() && tail.iter().all(|&b| is_unreserved(b) || is_sub_delim(b) || b == b':');
        if version.is_empty() || !version.iter().all(u8::is_ascii_hexdigit) || !tail_ok {
            return Err("a malformed IPvFuture literal");
        }
        return Ok(());
    }
    std::str::from_utf8(inside)
        .ok()
        .and_then(|s| s.parse::<Ipv6Addr>().ok())
        .map(|_| ())
        .ok_or("an IP literal that is not an IPv6 address")
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn is_sub_delim(b: u8) -> bool {
    matches!(b, b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn valid_hosts() {
        for ok in [
            "example.com",
            "example.com:8080",
            "EXAMPLE.com:0080",
            "127.0.0.1",
            "127.0.0.1:65535",
            "localhost:",
            "",
            ":80",
            "[::1]",
            "[::1]:8080",
            "[2001:db8::7]:443",
            "[v1.fe80::a+en1]",
            "a_b~c-d.e",
            "caf%C3%A9.example",
            "!$&'()*+,;=",
        ] {
            assert_eq!(check_host(ok.as_bytes()), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn invalid_hosts() {
        for (bad, why) in [
            ("exa mple.com", "whitespace"),
            ("example.com\t", "whitespace"),
            ("user@example.com", "userinfo"),
            ("user:pw@example.com", "not a number"),
            ("example.com:80:80", "not a number"),
            ("example.com:http", "not a number"),
            ("example.com:-1", "not a number"),
            ("example.com:65536", "above 65535"),
            ("example.com:99999999999999999999", "above 65535"),
            ("example.com/path", "cannot hold"),
            ("example.com?q", "cannot hold"),
            ("a<b>", "cannot hold"),
            ("\"quoted\"", "cannot hold"),
            ("a\x01b", "control"),
            ("a\x7fb", "control"),
            ("café.example", "non-ASCII"),
            ("100%", "hex digits"),
            ("%zz", "hex digits"),
            ("[::1", "closing ]"),
            ("[::1]x", "after the ]"),
            ("[::1]:x", "not a number"),
            ("[example.com]", "IPv6"),
            ("[::1%25eth0]", "IPv6"),
            ("[1.2.3.4]", "IPv6"),
            ("[v1]", "IPvFuture"),
            ("[vz.a]", "IPvFuture"),
            ("[v1.]", "IPvFuture"),
            ("::1", "not a number"),
        ] {
            let got = check_host(bad.as_bytes());
            assert!(got.is_err_and(|e| e.contains(why)), "{bad:?}: {got:?}, want {why:?}");
        }
    }

    fn headers(hosts: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in hosts {
            h.append(header::HOST, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    #[test]
    fn what_each_version_requires() {
        use Version as V;
        let ok = |v, authority, hosts: &[&[u8]]| check_request(v, authority, &headers(hosts)).is_ok();
        assert!(ok(V::HTTP_11, None, &[b"x"]));
        assert!(!ok(V::HTTP_11, None, &[]));
        assert!(!ok(V::HTTP_11, None, &[b"x", b"x"]), "two equal lines are still two");
        assert!(!ok(V::HTTP_11, None, &[b"x", b"y"]));
        assert!(!ok(V::HTTP_11, None, &[b"x y"]));
        // Absolute form: Host must be there and valid, the target's authority wins.
        assert!(ok(V::HTTP_11, Some("a.example"), &[b"b.example"]));
        assert!(!ok(V::HTTP_11, Some("a.example"), &[]));
        assert!(!ok(V::HTTP_11, Some("user@a.example"), &[b"a.example"]));
        assert!(!ok(V::HTTP_11, Some("a.example:70000"), &[b"a.example"]));
        // HTTP/1.0: optional, but valid when sent.
        assert!(ok(V::HTTP_10, None, &[]));
        assert!(!ok(V::HTTP_10, None, &[b"a b"]));
        assert!(!ok(V::HTTP_10, None, &[b"x", b"x"]));
        // HTTP/2: :authority replaces Host.
        assert!(ok(V::HTTP_2, Some("a.example:8080"), &[]));
        assert!(ok(V::HTTP_2, None, &[b"a.example"]));
        assert!(!ok(V::HTTP_2, None, &[]));
        assert!(!ok(V::HTTP_2, Some("a.example"), &[b"a@b"]));
    }

    #[test]
    fn messages_say_what_is_wrong() {
        let msg = |hosts: &[&[u8]]| check_request(Version::HTTP_11, None, &headers(hosts)).unwrap_err().0;
        assert!(msg(&[]).contains("needs a Host header"), "{}", msg(&[]));
        assert!(msg(&[b"a", b"b", b"c"]).contains("3 Host header lines"));
        let long = [&[b'a'; 5000][..], b" x"].concat();
        let m = msg(&[long.as_slice()]);
        assert!(m.contains("whitespace") && m.len() < 300, "{m}");
    }
}
