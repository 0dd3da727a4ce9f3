//! Client side of a subscription stream: an incremental decoder for the body of a `209`.
//!
//! It accepts exactly the grammar of `spec/WIRE.md` §2.1, as braid-http's client does: CR/LF
//! filler between updates, an optional inner status line, `name: value` headers ending at a
//! blank line, then a body framed by `Content-Length` (a snapshot, or one patch when
//! `Content-Range` is present) or by a patch count (`Patches: K` or
//! `application/http-patches; count=K`). Incomplete input is never an error: it waits for
//! more bytes. Memory is bounded: a header block over [`MAX_HEADER_BLOCK`] or a body over the
//! configured maximum is an error rather than a reason to buffer forever.
//!
//! Deliberately not here: the outer HTTP response and chunked transfer coding (feed it the
//! de-chunked body), dt binary blocks (their bodies are not UTF-8 and are refused), and I/O.

use crate::protocol::block::{self, BlockEnd, Header};
use crate::protocol::body::{self, UpdateBody};
use crate::protocol::error::{show, ProtocolError};
use crate::protocol::range::{parse_content_range, Patch};
use crate::protocol::version::VersionSet;

/// The largest header block (of an update or of one patch) the decoder will wait for.
pub const MAX_HEADER_BLOCK: usize = 64 * 1024;

/// The default largest body (snapshot, or all patches of one update) the decoder accepts.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024 * 1024;

/// One update as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedUpdate {
    /// The inner status code (`HTTP 200 OK` gives 200), if the update had a status line.
    pub status: Option<u16>,
    /// `Version`, if present.
    pub version: Option<VersionSet>,
    /// `Parents`, if present (present but empty means the root).
    pub parents: Option<VersionSet>,
    /// The snapshot or patches. A `Content-Length: 0` update is an empty snapshot.
    pub body: UpdateBody,
    /// Every header of the update, names lowercased, in order (repeats kept).
    pub headers: Vec<(String, String)>,
}

impl DecodedUpdate {
    /// The value of a header (`name` in lowercase); the last occurrence wins.
    pub fn header(&self, name: &str) -> Option<&str> {
        block::get(&self.headers, name)
    }
}

/// An incremental subscription-stream decoder: [`push`](Decoder::push) bytes as they arrive,
/// then call [`next_update`](Decoder::next_update) until it returns `Ok(None)`.
///
/// Work is linear in the input: while an update is incomplete the decoder remembers how many
/// bytes it needs before trying again, and how far it already searched for the header end.
/// After an error the stream cannot be resynchronized, so the decoder keeps returning that
/// error and drops further input.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    start: usize,
    max_body: usize,
    /// Don't retry the pending update until this many bytes are buffered.
    need: usize,
    /// Bytes of the pending update already searched for the end of its header block.
    scanned: usize,
    failed: Option<ProtocolError>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder with the default body limit ([`DEFAULT_MAX_BODY`]).
    pub fn new() -> Self {
        Self::with_max_body(DEFAULT_MAX_BODY)
    }

    /// A decoder that rejects bodies larger than `max_body` bytes.
    pub fn with_max_body(max_body: usize) -> Self {
        Decoder { buf: Vec::new(), start: 0, max_body, need: 0, scanned: 0, failed: None }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The number of received bytes not yet consumed by a decoded update.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete update, `Ok(None)` if more input is needed, or the framing error.
    pub fn next_update(&mut self) -> Result<Option<DecodedUpdate>, ProtocolError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        // Heartbeats and separators are consumed, never buffered. (A pending update never
        // starts with CR/LF, so this only ever skips filler between updates.)
        self.start += block::filler_len(&self.buf[self.start..]);
        let available = self.buffered();
        if available < self.need {
            return Ok(None);
        }
        match decode_one(&self.buf[self.start..], self.max_body, self.scanned) {
            Ok(Progress::Done((update, len))) => {
                self.start += len;
                self.need = 0;
                self.scanned = 0;
                Ok(Some(update))
            }
            Ok(Progress::HeaderOpen) => {
                self.need = available + 1;
                self.scanned = available;
                Ok(None)
            }
            Ok(Progress::Need(n)) => {
                self.need = n;
                Ok(None)
            }
            Err(err) => {
                self.failed = Some(err.clone());
                self.buf = Vec::new();
                self.start = 0;
                Err(err)
            }
        }
    }
}

/// A step of decoding.
enum Progress<T> {
    Done(T),
    /// Come back when at least this many bytes of the update are buffered.
    Need(usize),
    /// The update's header block has not ended yet.
    HeaderOpen,
}

fn framing(reason: String) -> ProtocolError {
    ProtocolError::BadFraming { reason }
}

/// Decodes the update at the start of `data` (filler already skipped), whose first `scanned`
/// bytes are known to hold no header-block end. Returns it and its length in bytes.
fn decode_one(data: &[u8], max_body: usize, scanned: usize) -> Result<Progress<(DecodedUpdate, usize)>, ProtocolError> {
    let Some((head_len, body_start)) = header_block(data, scanned)? else {
        return Ok(Progress::HeaderOpen);
    };
    let mut lines = data[..head_len].split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let mut status = None;
    let mut headers = Vec::new();
    if let Some(first) = lines.next() {
        match parse_status(first)? {
            Some(code) => status = Some(code),
            None => headers.push(block::parse_line(first).map_err(framing)?),
        }
    }
    for line in lines {
        headers.push(block::parse_line(line).map_err(framing)?);
    }
    let (body, end) = match decode_body(data, body_start, &headers, max_body)? {
        Progress::Done(done) => done,
        Progress::Need(n) => return Ok(Progress::Need(n)),
        Progress::HeaderOpen => return Ok(Progress::HeaderOpen),
    };
    let version_set = |name| block::get(&headers, name).map(|v| VersionSet::parse_header(v.as_bytes())).transpose();
    let update =
        DecodedUpdate { status, version: version_set("version")?, parents: version_set("parents")?, body, headers };
    Ok(Progress::Done((update, end)))
}

/// Finds the header block at the start of `data`: `(head_len, body_start)`, or `None` while
/// it is still open. Errors once the block exceeds [`MAX_HEADER_BLOCK`].
fn header_block(data: &[u8], scanned: usize) -> Result<Option<(usize, usize)>, ProtocolError> {
    let too_large = ProtocolError::HeaderTooLarge { limit: MAX_HEADER_BLOCK };
    match block::find_block_end_from(data, scanned) {
        BlockEnd::Found { head_len, .. } if head_len > MAX_HEADER_BLOCK => Err(too_large),
        BlockEnd::Found { head_len, body_start } => Ok(Some((head_len, body_start))),
        BlockEnd::Incomplete if data.len() > MAX_HEADER_BLOCK + 2 => Err(too_large),
        BlockEnd::Incomplete => Ok(None),
    }
}

/// Recognizes an inner status line, `[HTTP[/d.d] SP] 3DIGIT [SP reason]`. `Ok(None)` means
/// the line is not a status line (it is then parsed as a header).
fn parse_status(line: &[u8]) -> Result<Option<u16>, ProtocolError> {
    let rest = if let Some(after) = line.strip_prefix(b"HTTP/") {
        match after {
            [major, b'.', minor, b' ', rest @ ..] if major.is_ascii_digit() && minor.is_ascii_digit() => rest,
            _ => return Err(framing(format!("bad status line {}", show(line)))),
        }
    } else if let Some(rest) = line.strip_prefix(b"HTTP ") {
        rest
    } else {
        let looks_like_status =
            line.len() >= 3 && line[..3].iter().all(u8::is_ascii_digit) && matches!(line.get(3), None | Some(b' '));
        if !looks_like_status {
            return Ok(None);
        }
        line
    };
    match rest {
        [a, b, c, tail @ ..]
            if [a, b, c].iter().all(|d| d.is_ascii_digit()) && matches!(tail.first(), None | Some(b' ')) =>
        {
            Ok(Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')))
        }
        _ => Err(framing(format!("bad status line {}", show(line)))),
    }
}

/// Reads the body that follows the headers at `data[body_start..]`: returns it and the end
/// offset of the update.
fn decode_body(
    data: &[u8],
    body_start: usize,
    headers: &[Header],
    max_body: usize,
) -> Result<Progress<(UpdateBody, usize)>, ProtocolError> {
    // Like the JS client, Content-Length wins over a patch count.
    if let Some(length) = block::get(headers, "content-length") {
        let end = body_start.saturating_add(checked_length(length, max_body)?);
        let Some(bytes) = data.get(body_start..end) else {
            return Ok(Progress::Need(end));
        };
        let body = match block::get(headers, "content-range") {
            Some(range) => UpdateBody::Patches(vec![Patch {
                range: parse_content_range(range.as_bytes())?,
                content: utf8(bytes, "patch content")?,
            }]),
            None => UpdateBody::Snapshot(utf8(bytes, "snapshot body")?),
        };
        return Ok(Progress::Done((body, end)));
    }
    let count = body::patch_count(
        block::get(headers, "patches").map(str::as_bytes),
        block::get(headers, "content-type").map(str::as_bytes),
    )?;
    let Some(count) = count else {
        return Err(framing("update has neither Content-Length nor Patches".to_owned()));
    };
    let mut patches = Vec::with_capacity(count.min(64));
    let mut pos = body_start;
    for index in 0..count {
        pos += block::filler_len(&data[pos..]);
        // Everything between the update's headers and this patch (earlier patches, their
        // headers, filler) counts against the body limit, so no input can grow unbounded.
        let used = pos - body_start;
        if used > max_body {
            return Err(ProtocolError::BodyTooLarge { len: used as u64, limit: max_body });
        }
        match decode_patch(&data[pos..], index, used, max_body)? {
            Progress::Done((patch, len)) => {
                patches.push(patch);
                pos += len;
            }
            Progress::Need(n) => return Ok(Progress::Need(pos.saturating_add(n))),
            Progress::HeaderOpen => return Ok(Progress::Need(data.len() + 1)),
        }
    }
    Ok(Progress::Done((UpdateBody::Patches(patches), pos)))
}

/// Decodes one patch of a block at the start of `data`. `used` bytes of the update's body
/// precede it, and the whole body may not exceed `max_body`.
fn decode_patch(
    data: &[u8],
    index: usize,
    used: usize,
    max_body: usize,
) -> Result<Progress<(Patch, usize)>, ProtocolError> {
    let Some((head_len, body_start)) = header_block(data, 0)? else {
        return Ok(Progress::HeaderOpen);
    };
    let headers = block::parse_lines(&data[..head_len]).map_err(framing)?;
    let required = |name: &str| {
        block::get(&headers, name).ok_or_else(|| framing(format!("patch {} has no {name} header", index + 1)))
    };
    let length = checked_length(required("content-length")?, max_body)?;
    let range = parse_content_range(required("content-range")?.as_bytes())?;
    let end = body_start.saturating_add(length);
    let total = used.saturating_add(end);
    if total > max_body {
        return Err(ProtocolError::BodyTooLarge { len: total as u64, limit: max_body });
    }
    let Some(bytes) = data.get(body_start..end) else {
        return Ok(Progress::Need(end));
    };
    let patch = Patch { range, content: utf8(bytes, "patch content")? };
    Ok(Progress::Done((patch, end)))
}

fn checked_length(value: &str, max_body: usize) -> Result<usize, ProtocolError> {
    let length = block::parse_content_length(value)?;
    match usize::try_from(length) {
        Ok(n) if n <= max_body => Ok(n),
        _ => Err(ProtocolError::BodyTooLarge { len: length, limit: max_body }),
    }
}

fn utf8(bytes: &[u8], what: &'static str) -> Result<String, ProtocolError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ProtocolError::InvalidUtf8 { what })
}
