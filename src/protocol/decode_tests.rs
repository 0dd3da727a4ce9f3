//! Tests of `decode.rs`: golden bytes, older client forms, malformed streams, bounded memory,
//! and the round trip `decode(encode(x)) == x` over random updates split at random points.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::protocol::body::UpdateBody;
use crate::protocol::decode::{DecodedUpdate, Decoder, MAX_HEADER_BLOCK};
use crate::protocol::framing::tests::{golden_updates, GOLDEN, REPR};
use crate::protocol::framing::{encode_update, Update, UpdateContent, HEARTBEAT};
use crate::protocol::range::{Bound, Patch, TextRange};
use crate::protocol::test_util::Rng;
use crate::protocol::version::VersionSet;
use crate::protocol::ProtocolError;

const OLD_STYLE: &[u8] = include_bytes!("../../spec/examples/updates-1.3.80-style.bin");

/// Decodes everything in `bytes`, pushed in one go.
fn decode_all(bytes: &[u8]) -> Result<Vec<DecodedUpdate>, ProtocolError> {
    let mut decoder = Decoder::new();
    decoder.push(bytes);
    let mut out = Vec::new();
    while let Some(update) = decoder.next_update()? {
        out.push(update);
    }
    assert_eq!(decoder.buffered(), 0, "trailing bytes left undecoded");
    Ok(out)
}

/// Pushes `bytes` in random-sized chunks, draining updates after every chunk.
fn decode_chunked(bytes: &[u8], rng: &mut Rng, max_chunk: usize) -> Vec<DecodedUpdate> {
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let n = 1 + rng.below(max_chunk);
        let end = (pos + n).min(bytes.len());
        decoder.push(&bytes[pos..end]);
        pos = end;
        while let Some(update) = decoder.next_update().unwrap() {
            out.push(update);
        }
    }
    assert_eq!(decoder.buffered(), 0);
    out
}

/// What the decoder must report for an encoded `update`.
fn check(decoded: &DecodedUpdate, update: &Update) {
    assert_eq!(decoded.status, Some(200));
    assert_eq!(decoded.version.as_ref(), Some(&update.version));
    assert_eq!(decoded.parents.as_ref(), Some(&update.parents));
    let body = match &update.content {
        UpdateContent::Snapshot(text) => UpdateBody::Snapshot(text.clone()),
        UpdateContent::Patches(patches) => UpdateBody::Patches(patches.clone()),
        UpdateContent::HeaderOnly => UpdateBody::Snapshot(String::new()),
    };
    assert_eq!(decoded.body, body);
    assert_eq!(decoded.header("repr-digest"), update.repr_digest.as_deref());
}

#[test]
fn decodes_the_golden_stream() {
    let decoded = decode_all(GOLDEN).unwrap();
    let expected = golden_updates();
    assert_eq!(decoded.len(), expected.len());
    for (d, u) in decoded.iter().zip(&expected) {
        check(d, u);
    }
    assert_eq!(decoded[0].header("content-type"), Some(REPR));
    let names: Vec<&str> = decoded[2].headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["version", "parents", "content-type", "patches"]);
}

#[test]
fn decodes_the_golden_stream_byte_by_byte() {
    let mut rng = Rng::new(20);
    let decoded = decode_chunked(GOLDEN, &mut rng, 1);
    for (d, u) in decoded.iter().zip(&golden_updates()) {
        check(d, u);
    }
}

#[test]
fn decodes_older_forms() {
    let decoded = decode_all(OLD_STYLE).unwrap();
    assert_eq!(decoded.len(), 2);
    assert_eq!(decoded[0].version.as_ref().and_then(VersionSet::single), Some("bob-5"));
    assert_eq!(decoded[0].parents.as_ref().and_then(VersionSet::single), Some("alice-4"));
    let world = Patch { range: TextRange::absolute(5, 5), content: " world".to_owned() };
    assert_eq!(decoded[0].body, UpdateBody::Patches(vec![world]));
    let delete = Patch { range: TextRange::absolute(0, 1), content: String::new() };
    assert_eq!(decoded[1].body, UpdateBody::Patches(vec![delete]));
}

#[test]
fn accepts_every_status_line_form_and_none() {
    for (line, status) in [
        ("HTTP 200 OK\r\n", Some(200)),
        ("HTTP/1.1 200 OK\r\n", Some(200)),
        ("HTTP 404\r\n", Some(404)),
        ("200 OK\r\n", Some(200)),
        ("410\n", Some(410)),
        ("", None),
    ] {
        let stream = format!("\r\n\n{line}Version: \"a-1\"\nContent-Length: 2\n\nhi");
        let decoded = decode_all(stream.as_bytes()).unwrap();
        assert_eq!(decoded[0].status, status, "{line:?}");
        assert_eq!(decoded[0].body, UpdateBody::Snapshot("hi".to_owned()));
        assert_eq!(decoded[0].parents, None);
    }
    // A header that merely starts with "HTTP" is a header.
    let decoded = decode_all(b"HTTP-Thing: 1\r\nContent-Length: 0\r\n\r\n").unwrap();
    assert_eq!((decoded[0].status, decoded[0].header("http-thing")), (None, Some("1")));
}

#[test]
fn content_length_wins_and_count_content_type_suffices() {
    let both = b"Patches: 2\r\nContent-Length: 3\r\n\r\nabc";
    assert_eq!(decode_all(both).unwrap()[0].body, UpdateBody::Snapshot("abc".to_owned()));
    let ct = b"Content-Type: application/http-patches; count=1\r\n\r\nContent-Length: 1\r\nContent-Range: text [-0:-0]\r\n\r\n!";
    let end = TextRange { start: Bound::FromEnd(0), end: Bound::FromEnd(0) };
    let patch = Patch { range: end, content: "!".to_owned() };
    assert_eq!(decode_all(ct).unwrap()[0].body, UpdateBody::Patches(vec![patch]));
}

#[test]
fn incomplete_input_is_not_an_error() {
    for cut in 0..GOLDEN.len() {
        let mut decoder = Decoder::new();
        decoder.push(&GOLDEN[..cut]);
        let mut n = 0;
        while decoder.next_update().unwrap().is_some() {
            n += 1;
        }
        assert!(n <= golden_updates().len());
    }
}

#[test]
fn rejects_malformed_streams() {
    let code = |bytes: &[u8]| {
        let mut decoder = Decoder::new();
        decoder.push(bytes);
        loop {
            match decoder.next_update() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("no error for {:?}", String::from_utf8_lossy(bytes)),
                Err(e) => return e.code(),
            }
        }
    };
    assert_eq!(code(b"Version: \"a-1\"\r\n\r\n"), "bad_framing");
    assert_eq!(code(b"HTTP/x 200\r\nContent-Length: 0\r\n\r\n"), "bad_framing");
    assert_eq!(code(b"HTTP 2000\r\nContent-Length: 0\r\n\r\n"), "bad_framing");
    assert_eq!(code(b"garbage\r\nContent-Length: 0\r\n\r\n"), "bad_framing");
    assert_eq!(code(b"Content-Length: 0\r\nHTTP 200 OK\r\n\r\n"), "bad_framing");
    assert_eq!(code(b"Version: a-4\r\nContent-Length: 0\r\n\r\n"), "bad_version_header");
    assert_eq!(code(b"Parents: [oops\r\nContent-Length: 0\r\n\r\n"), "bad_version_header");
    assert_eq!(code(b"Content-Length: x\r\n\r\n"), "bad_content_length");
    assert_eq!(code(b"Content-Length: 1\r\n\r\n\xff"), "invalid_utf8");
    assert_eq!(code(b"Content-Length: 1\r\nContent-Range: bytes 0-1\r\n\r\nx"), "unsupported_range_unit");
    assert_eq!(code(b"Patches: x\r\n\r\n"), "bad_patch_count");
    assert_eq!(code(b"Patches: 99999\r\n\r\n"), "too_many_patches");
    assert_eq!(code(b"Patches: 1\r\n\r\nContent-Range: text [0:0]\r\n\r\n"), "bad_framing");
    assert_eq!(code(b"Patches: 1\r\n\r\nContent-Length: 0\r\n\r\n"), "bad_framing");
    assert_eq!(code(b"Patches: 1\r\n\r\nContent-Length: 0\r\nContent-Range: text [2:1]\r\n\r\n"), "bad_content_range");
}

#[test]
fn errors_are_sticky() {
    let mut decoder = Decoder::new();
    decoder.push(b"nonsense\r\n\r\n");
    let first = decoder.next_update().unwrap_err();
    decoder.push(GOLDEN);
    assert_eq!(decoder.next_update().unwrap_err(), first);
    assert_eq!(decoder.buffered(), 0);
}

#[test]
fn memory_is_bounded() {
    let mut decoder = Decoder::new();
    let line = b"X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let mut err = None;
    for _ in 0..(2 * MAX_HEADER_BLOCK / line.len()) {
        decoder.push(line);
        if let Err(e) = decoder.next_update() {
            err = Some(e);
            break;
        }
    }
    assert_eq!(err.map(|e| e.code()), Some("header_too_large"));

    let mut decoder = Decoder::with_max_body(10);
    decoder.push(b"Content-Length: 11\r\n\r\n");
    assert_eq!(decoder.next_update().unwrap_err().code(), "body_too_large");
    let mut decoder = Decoder::with_max_body(10);
    decoder.push(b"Content-Length: 99999999999999999\r\n\r\n");
    assert_eq!(decoder.next_update().unwrap_err().code(), "body_too_large");
    let mut decoder = Decoder::with_max_body(10);
    let patch = b"Content-Length: 6\r\nContent-Range: text [0:0]\r\n\r\nabcdef";
    decoder.push(&[&b"Patches: 2\r\n\r\n"[..], patch, patch].concat());
    assert_eq!(decoder.next_update().unwrap_err().code(), "body_too_large");
    // Endless filler inside a patch block is bounded too.
    let mut decoder = Decoder::with_max_body(10);
    decoder.push(b"Patches: 1\r\n\r\n");
    assert_eq!(decoder.next_update().unwrap(), None);
    decoder.push(&[b'\n'; 11]);
    assert_eq!(decoder.next_update().unwrap_err().code(), "body_too_large");
    // Heartbeats between updates are consumed, not buffered.
    let mut decoder = Decoder::new();
    for _ in 0..1000 {
        decoder.push(HEARTBEAT);
        assert_eq!(decoder.next_update().unwrap(), None);
    }
    assert_eq!(decoder.buffered(), 0);
    // A limit of usize::MAX must not overflow.
    let mut decoder = Decoder::with_max_body(usize::MAX);
    decoder.push(b"Content-Length: 9999999999999999\r\n\r\nab");
    assert_eq!(decoder.next_update().unwrap(), None);
    decoder.push(b"Patches: 1\r\n\r\n");
}

fn random_update(rng: &mut Rng) -> Update {
    let ids = |rng: &mut Rng| {
        let n = rng.below(3);
        VersionSet::new((0..n).map(|_| format!("{}-{}", rng.text(5), rng.below(1000))))
    };
    let version = ids(rng);
    let parents = ids(rng);
    let content = match rng.below(4) {
        0 => UpdateContent::Snapshot(rng.text(40)),
        1 => UpdateContent::HeaderOnly,
        _ => {
            let n = rng.below(4);
            UpdateContent::Patches(
                (0..n)
                    .map(|_| {
                        let a = rng.below(100) as u64;
                        let range = match rng.below(3) {
                            0 => TextRange { start: Bound::FromEnd(a), end: Bound::FromEnd(0) },
                            _ => TextRange::absolute(a, a + rng.below(5) as u64),
                        };
                        Patch { range, content: rng.text(12) }
                    })
                    .collect(),
            )
        }
    };
    let repr_digest = rng.chance(30).then(|| crate::protocol::digest::repr_digest(&rng.text(8)));
    Update { version, parents, content, repr_digest }
}

#[test]
fn round_trips_random_updates_in_random_chunks() {
    let mut rng = Rng::new(42);
    for _ in 0..300 {
        let updates: Vec<Update> = (0..1 + rng.below(6)).map(|_| random_update(&mut rng)).collect();
        let mut stream = Vec::new();
        for update in &updates {
            for _ in 0..rng.below(3) {
                stream.extend_from_slice(HEARTBEAT);
            }
            encode_update(update, REPR, &mut stream);
        }
        let max_chunk = *rng.pick(&[1, 3, 17, 200, 5000]);
        let decoded = decode_chunked(&stream, &mut rng, max_chunk);
        assert_eq!(decoded.len(), updates.len());
        for (d, u) in decoded.iter().zip(&updates) {
            check(d, u);
        }
    }
}

#[test]
fn never_panics_on_random_bytes() {
    let mut rng = Rng::new(21);
    for _ in 0..5_000 {
        let mut bytes = rng.grammar_bytes(300);
        if rng.chance(50) {
            let mut prefix = Vec::new();
            encode_update(&random_update(&mut rng), REPR, &mut prefix);
            let cut = rng.below(prefix.len());
            prefix.truncate(cut);
            prefix.append(&mut bytes);
            bytes = prefix;
        }
        let mut decoder = Decoder::with_max_body(1 + rng.below(200));
        for chunk in bytes.chunks(1 + rng.below(40)) {
            decoder.push(chunk);
            while let Ok(Some(_)) = decoder.next_update() {}
        }
    }
}

#[test]
fn large_inputs_in_small_chunks_decode_in_linear_time() {
    let mut rng = Rng::new(22);
    let update = Update {
        version: VersionSet::new(["big-1".to_owned()]),
        parents: VersionSet::root(),
        content: UpdateContent::Snapshot("x\u{e9}".repeat(1 << 19)),
        repr_digest: None,
    };
    let mut stream = Vec::new();
    encode_update(&update, REPR, &mut stream);
    let decoded = decode_chunked(&stream, &mut rng, 7);
    check(&decoded[0], &update);

    let mut long_head = Vec::new();
    for i in 0..2000 {
        long_head.extend_from_slice(format!("X-H{i}: vvvvvvvvvvvvvvvvvvvv\r\n").as_bytes());
    }
    long_head.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    assert!(long_head.len() < MAX_HEADER_BLOCK);
    let decoded = decode_chunked(&long_head, &mut rng, 1);
    assert_eq!(decoded[0].headers.len(), 2001);
}
