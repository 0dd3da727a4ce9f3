//! Decoding one subscriber's bytes: the response head, `Transfer-Encoding: chunked`, and the
//! updates inside (boundaries found by [`plait::protocol::Decoder`]), each stamped with the
//! time of the read that completed it.

use std::time::Instant;

use anyhow::{anyhow, ensure};

use plait::protocol::Decoder;

use super::{Received, Start};

/// The response head, then the chunked stream of updates.
pub(super) struct Parser {
    start: Start,
    capture: bool,
    /// Count updates, keep no times (see `Spec::tally`).
    tally: bool,
    /// The response head so far (until its blank line).
    head: Option<Vec<u8>>,
    /// The initial update (or response head) has been received.
    pub(super) started: bool,
    chunks: Dechunk,
    decoder: Decoder,
    raw: Vec<u8>,
}

impl Parser {
    pub(super) fn new(start: Start, capture: bool, tally: bool) -> Parser {
        Parser {
            start,
            capture,
            tally,
            head: (start != Start::Bare).then(Vec::new),
            started: false,
            chunks: Dechunk::default(),
            decoder: Decoder::new(),
            raw: Vec::new(),
        }
    }

    pub(super) fn feed(&mut self, mut data: &[u8], at: Instant, got: &mut Received) -> anyhow::Result<()> {
        if let Some(head) = &mut self.head {
            head.extend_from_slice(data);
            let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                ensure!(head.len() < 64 << 10, "a response head over 64 KiB");
                return Ok(());
            };
            let text = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
            let status = text.split_whitespace().nth(1).unwrap_or("");
            if self.start == Start::Head {
                self.started = true;
                self.head = None;
                return Ok(());
            }
            ensure!(status == "209", "the subscription answered {status}, not 209");
            ensure!(text.contains("transfer-encoding: chunked"), "the subscription is not chunked");
            let consumed = data.len() - (head.len() - end - 4);
            data = &data[consumed..];
            self.head = None;
        }
        if self.start == Start::Head {
            return Ok(());
        }
        if self.start == Start::Bare {
            // The greeting proves the connection was accepted (and is skipped as filler).
            self.started = true;
        }
        if self.capture && self.started {
            self.raw.extend_from_slice(data);
        }
        let decoder = &mut self.decoder;
        self.chunks.feed(data, |bytes| decoder.push(bytes))?;
        while let Some(update) = self.decoder.next_update().map_err(|e| anyhow!("bad update stream: {e}"))? {
            if !self.started {
                self.started = true;
                continue;
            }
            let version = update.header("version").unwrap_or_default();
            got.count += 1;
            got.last_version.clear();
            got.last_version.push_str(version);
            if self.tally {
                continue;
            }
            got.times.push(at);
            got.versions.push(version.to_string());
            if self.capture {
                got.raw.push(std::mem::take(&mut self.raw));
            }
        }
        Ok(())
    }
}

/// An incremental `Transfer-Encoding: chunked` decoder (blank lines before a size line are
/// skipped, so a captured update may start anywhere between two chunks).
#[derive(Default)]
struct Dechunk {
    state: Chunk,
    line: Vec<u8>,
}

#[derive(Default)]
enum Chunk {
    #[default]
    Size,
    Data(usize),
    Crlf(usize),
    End,
}

impl Dechunk {
    /// Consumes `input`, handing each piece of chunk data to `out`.
    fn feed(&mut self, mut input: &[u8], mut out: impl FnMut(&[u8])) -> anyhow::Result<()> {
        while !input.is_empty() {
            match self.state {
                Chunk::Size => {
                    let Some(nl) = input.iter().position(|&b| b == b'\n') else {
                        self.line.extend_from_slice(input);
                        ensure!(self.line.len() < 256, "a chunk size line over 256 bytes");
                        return Ok(());
                    };
                    let size = if self.line.is_empty() {
                        chunk_size(&input[..nl])
                    } else {
                        self.line.extend_from_slice(&input[..nl]);
                        let size = chunk_size(&self.line);
                        self.line.clear();
                        size
                    };
                    input = &input[nl + 1..];
                    match size? {
                        None => continue,
                        Some(0) => self.state = Chunk::End,
                        Some(n) => self.state = Chunk::Data(n),
                    }
                }
                Chunk::Data(left) => {
                    let take = left.min(input.len());
                    out(&input[..take]);
                    input = &input[take..];
                    self.state = if take == left { Chunk::Crlf(2) } else { Chunk::Data(left - take) };
                }
                Chunk::Crlf(left) => {
                    let take = left.min(input.len());
                    input = &input[take..];
                    self.state = if take == left { Chunk::Size } else { Chunk::Crlf(left - take) };
                }
                // The stream ended (trailers, if any, are of no interest).
                Chunk::End => return Ok(()),
            }
        }
        Ok(())
    }
}

/// The size on a chunk size line (extensions ignored); None for a blank line.
fn chunk_size(line: &[u8]) -> anyhow::Result<Option<usize>> {
    let digits = line.split(|&b| b == b';').next().unwrap_or_default().trim_ascii();
    if digits.is_empty() {
        return Ok(None);
    }
    let mut size = 0usize;
    for &d in digits {
        let v = (d as char)
            .to_digit(16)
            .ok_or_else(|| anyhow!("bad chunk size line {:?}", String::from_utf8_lossy(line)))?;
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(v as usize))
            .ok_or_else(|| anyhow!("chunk size overflows"))?;
    }
    Ok(Some(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunks_across_reads() {
        let wire = b"5\r\nhello\r\n\r\n6;x=1\r\n world\r\n0\r\n\r\n";
        for split in 0..wire.len() {
            let mut d = Dechunk::default();
            let mut out = Vec::new();
            d.feed(&wire[..split], |b| out.extend_from_slice(b)).unwrap();
            d.feed(&wire[split..], |b| out.extend_from_slice(b)).unwrap();
            assert_eq!(out, b"hello world", "split at {split}");
        }
    }

    #[test]
    fn subscription_head_then_updates() {
        let update = "version: \"a-0\"\r\nparents: \r\ncontent-length: 1\r\n\r\nx";
        let snap = "version: \"a-0\"\r\ncontent-length: 1\r\n\r\nx";
        let mut wire = String::from("HTTP/1.1 209 Multiresponse\r\ntransfer-encoding: chunked\r\n\r\n");
        for body in [snap, update] {
            wire.push_str(&format!("{:x}\r\n{body}\r\n", body.len()));
        }
        let mut p = Parser::new(Start::Subscription, true, false);
        let mut got = Received::default();
        for b in wire.as_bytes().chunks(7) {
            p.feed(b, Instant::now(), &mut got).unwrap();
        }
        assert!(p.started);
        assert_eq!(got.versions, vec!["\"a-0\"".to_string()]);
        assert_eq!(got.raw.len(), 1);
    }
}
