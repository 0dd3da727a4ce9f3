//! A sequential editing trace as Braid PUTs, for B1 and B3: one PUT per edit, or many edits
//! merged into one multi-patch PUT, each numbered the way braid-text numbers events (one
//! event per inserted or deleted code point; `Version` is the last event, `Parents` the
//! previous PUT's Version).
//!
//! A multi-patch PUT's ranges all refer to its *parent* text and may not overlap
//! (braid-wire.md §1.8), so a batch of consecutive trace edits is first rebased onto the
//! batch's parent: a list of kept parent ranges and inserted runs is edited in place, then
//! read back as sorted, non-overlapping range patches (the segment walk of
//! diamond-types-notes.md §3.1). Text typed and deleted inside one batch never reaches the wire.
//!
//! Requests are built before they are sent, so the no-op reference receives the same bytes.

use std::path::Path;

use anyhow::{bail, ensure};

use super::client::Conn;
use super::trace;
pub use plait::text::reference::SeqEdit;

/// A trace's edits in order, and the text they leave.
pub struct Edits {
    /// `(pos, del, ins)` in code points, each against the text the previous one left.
    pub edits: Vec<SeqEdit>,
    /// The text after all of them.
    pub expected: String,
}

/// Loads `sequential_traces/<name>` and flattens it to edits; with `limit`, only the first
/// `limit` edits (their text is then computed here rather than taken from the trace).
pub fn load(dir: &Path, name: &str, limit: Option<usize>) -> anyhow::Result<Edits> {
    let t = trace::sequential(dir, name)?;
    let all = t.txns.into_iter().flat_map(|txn| txn.patches).map(|trace::TracePatch(p, d, s)| (p, d, s));
    let edits: Vec<SeqEdit> = all.filter(|(_, d, s)| *d > 0 || !s.is_empty()).collect();
    match limit {
        Some(n) if n < edits.len() => {
            let edits: Vec<SeqEdit> = edits.into_iter().take(n).collect();
            let expected = apply(&[], &edits)?;
            Ok(Edits { edits, expected })
        }
        _ => Ok(Edits { edits, expected: t.end_content }),
    }
}

/// The text `edits` leave when applied to `start` (O(length) per edit: for small inputs).
pub fn apply(start: &[char], edits: &[SeqEdit]) -> anyhow::Result<String> {
    let mut text = start.to_vec();
    for (pos, del, ins) in edits {
        ensure!(pos + del <= text.len(), "edit [{pos}, -{del}] outside a text of {} code points", text.len());
        text.splice(*pos..pos + del, ins.chars());
    }
    Ok(text.into_iter().collect())
}

/// Events an edit makes.
pub fn events(edit: &SeqEdit) -> usize {
    edit.1 + edit.2.chars().count()
}

/// One range patch against a parent text: replace code points `start..end` with `ins`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangePatch {
    /// First replaced code point.
    pub start: usize,
    /// One past the last replaced code point.
    pub end: usize,
    /// What replaces them.
    pub ins: String,
}

/// A piece of the text being built from a parent: kept parent code points, or inserted text
/// (with its length in code points).
enum Seg {
    Orig(usize, usize),
    Ins(String, usize),
}

impl Seg {
    fn len(&self) -> usize {
        match self {
            Seg::Orig(a, b) => b - a,
            Seg::Ins(_, n) => *n,
        }
    }
}

/// Splits the segments so one boundary falls at code point `pos`; returns its index.
fn split_at(segs: &mut Vec<Seg>, pos: usize) -> anyhow::Result<usize> {
    let mut acc = 0;
    for i in 0..segs.len() {
        if acc == pos {
            return Ok(i);
        }
        let len = segs[i].len();
        if acc + len > pos {
            let k = pos - acc;
            let right = match &mut segs[i] {
                Seg::Orig(a, b) => {
                    let right = Seg::Orig(*a + k, *b);
                    *b = *a + k;
                    right
                }
                Seg::Ins(s, n) => {
                    let at = s.char_indices().nth(k).map_or(s.len(), |(i, _)| i);
                    let right = Seg::Ins(s.split_off(at), *n - k);
                    *n = k;
                    right
                }
            };
            segs.insert(i + 1, right);
            return Ok(i + 1);
        }
        acc += len;
    }
    ensure!(acc == pos, "position {pos} is outside a text of {acc} code points");
    Ok(segs.len())
}

/// Rebases consecutive `edits` onto the text (of `parent_len` code points) before the first
/// one: sorted, non-overlapping patches against that text with the same result.
pub fn merge_batch(parent_len: usize, edits: &[SeqEdit]) -> anyhow::Result<Vec<RangePatch>> {
    let mut segs = if parent_len > 0 { vec![Seg::Orig(0, parent_len)] } else { Vec::new() };
    for (pos, del, ins) in edits {
        if *del > 0 {
            let i = split_at(&mut segs, *pos)?;
            let j = split_at(&mut segs, pos + del)?;
            segs.drain(i..j);
        }
        if !ins.is_empty() {
            let k = split_at(&mut segs, *pos)?;
            let n = ins.chars().count();
            match k.checked_sub(1).map(|p| &mut segs[p]) {
                Some(Seg::Ins(s, len)) => {
                    s.push_str(ins);
                    *len += n;
                }
                _ => segs.insert(k, Seg::Ins(ins.clone(), n)),
            }
        }
    }
    let mut out: Vec<RangePatch> = Vec::new();
    let mut push = |start: usize, end: usize, ins: &str| match out.last_mut() {
        Some(last) if last.end == start => {
            last.end = end;
            last.ins.push_str(ins);
        }
        _ => out.push(RangePatch { start, end, ins: ins.to_string() }),
    };
    let mut cursor = 0;
    for seg in &segs {
        match seg {
            Seg::Orig(a, b) => {
                if *a > cursor {
                    push(cursor, *a, "");
                }
                cursor = *b;
            }
            Seg::Ins(s, _) => push(cursor, cursor, s),
        }
    }
    if cursor < parent_len {
        push(cursor, parent_len, "");
    }
    Ok(out)
}

/// One PUT, ready to send.
pub struct Put {
    /// The `Version` header value.
    pub version: String,
    /// The `Parents` header value (empty: the empty document).
    pub parents: String,
    /// `Content-Range` for a single-patch PUT; None for a `Patches: N` body.
    pub range: Option<String>,
    /// Patches in the body.
    pub patches: usize,
    /// The body.
    pub body: Vec<u8>,
}

impl Put {
    /// Sends it and checks the 200 (and, with `check_version`, that the server's version is
    /// now this PUT's).
    pub async fn send(&self, conn: &mut Conn, path: &str, check_version: bool) -> anyhow::Result<()> {
        let count = self.patches.to_string();
        let mut headers = vec![("version", self.version.as_str()), ("parents", self.parents.as_str())];
        match &self.range {
            Some(range) => headers.push(("content-range", range.as_str())),
            None => headers.push(("patches", count.as_str())),
        }
        let r = conn.request("PUT", path, &headers, &self.body).await?;
        if r.status != 200 {
            bail!("PUT {path} version {} answered {}: {}", self.version, r.status, String::from_utf8_lossy(&r.body));
        }
        if check_version && r.header("version") != Some(self.version.as_str()) {
            bail!("PUT {path} version {} answered Version {:?}", self.version, r.header("version"));
        }
        Ok(())
    }
}

/// Sends `puts` in order on `conn`.
pub async fn send_all(conn: &mut Conn, path: &str, puts: &[Put], check_version: bool) -> anyhow::Result<()> {
    for (i, put) in puts.iter().enumerate() {
        put.send(conn, path, check_version).await?;
        if (i + 1) % 50_000 == 0 {
            tracing::info!(path, sent = i + 1, of = puts.len(), "PUTs");
        }
    }
    Ok(())
}

/// Numbers consecutive PUTs of one agent, each on top of the previous.
pub struct Chain {
    agent: String,
    next_seq: usize,
    parents: String,
}

impl Chain {
    /// A chain starting at the empty document.
    pub fn new(agent: &str) -> Chain {
        Chain { agent: agent.to_string(), next_seq: 0, parents: String::new() }
    }

    /// The next PUT of `events` events; it becomes the parent of the one after.
    fn next(&mut self, events: usize, range: Option<String>, patches: usize, body: Vec<u8>) -> Put {
        self.next_seq += events;
        let version = format!("\"{}-{}\"", self.agent, self.next_seq - 1);
        let parents = std::mem::replace(&mut self.parents, version.clone());
        Put { version, parents, range, patches, body }
    }

    /// A single-patch PUT of one edit.
    pub fn single(&mut self, (pos, del, ins): &SeqEdit) -> Put {
        let range = format!("text [{pos}:{}]", pos + del);
        self.next(del + ins.chars().count(), Some(range), 1, ins.as_bytes().to_vec())
    }

    /// A `Patches: N` PUT of patches against the previous PUT's text.
    pub fn multi(&mut self, patches: &[RangePatch]) -> Put {
        let mut body = Vec::new();
        let mut events = 0;
        for p in patches {
            events += p.end - p.start + p.ins.chars().count();
            let head =
                format!("Content-Length: {}\r\nContent-Range: text [{}:{}]\r\n\r\n", p.ins.len(), p.start, p.end);
            body.extend_from_slice(head.as_bytes());
            body.extend_from_slice(p.ins.as_bytes());
            body.extend_from_slice(b"\r\n");
        }
        self.next(events, None, patches.len(), body)
    }
}

/// One PUT per edit, numbered as `agent`.
pub fn sequential_puts(agent: &str, edits: &[SeqEdit]) -> Vec<Put> {
    let mut chain = Chain::new(agent);
    edits.iter().map(|e| chain.single(e)).collect()
}

/// One multi-patch PUT per `per_put` consecutive edits, numbered as `agent`.
pub fn batched_puts(agent: &str, edits: &[SeqEdit], per_put: usize) -> anyhow::Result<Vec<Put>> {
    let mut chain = Chain::new(agent);
    let mut len = 0usize;
    let mut puts = Vec::new();
    for batch in edits.chunks(per_put.max(1)) {
        let patches = merge_batch(len, batch)?;
        for (_, del, ins) in batch {
            len = len + ins.chars().count() - del;
        }
        if !patches.is_empty() {
            puts.push(chain.multi(&patches));
        }
    }
    Ok(puts)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn apply_patches(parent: &str, patches: &[RangePatch]) -> String {
        let chars: Vec<char> = parent.chars().collect();
        let mut out = String::new();
        let mut cursor = 0;
        for p in patches {
            assert!(p.start >= cursor && p.start <= p.end && p.end <= chars.len(), "{patches:?}");
            out.extend(&chars[cursor..p.start]);
            out.push_str(&p.ins);
            cursor = p.end;
        }
        out.extend(&chars[cursor..]);
        out
    }

    #[test]
    fn merged_batches_equal_the_edits_they_replace() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rand = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n.max(1) as u64) as usize
        };
        for round in 0..200 {
            let parent: String = "abcdéf😀gh".chars().cycle().take(rand(30)).collect();
            let mut len = parent.chars().count();
            let mut edits = Vec::new();
            for _ in 0..rand(12) + 1 {
                let pos = rand(len + 1);
                let del = if rand(2) == 0 { rand(len - pos + 1) } else { 0 };
                let ins: String = "xyé😀".chars().take(rand(4)).collect();
                len = len - del + ins.chars().count();
                edits.push((pos, del, ins));
            }
            let start: Vec<char> = parent.chars().collect();
            let want = apply(&start, &edits).unwrap();
            let patches = merge_batch(start.len(), &edits).unwrap();
            assert_eq!(apply_patches(&parent, &patches), want, "round {round}: {edits:?} -> {patches:?}");
            assert!(patches.len() <= edits.len());
            assert!(patches.windows(2).all(|w| w[0].end < w[1].start), "{patches:?}");
        }
    }

    #[test]
    fn chains_number_events_like_braid_text() {
        let edits = vec![(0, 0, "hé".to_string()), (1, 1, "".to_string()), (1, 0, "ey".to_string())];
        let puts = sequential_puts("b1", &edits);
        let heads: Vec<_> = puts.iter().map(|p| (p.version.as_str(), p.parents.as_str(), p.range.clone())).collect();
        assert_eq!(heads[0], ("\"b1-1\"", "", Some("text [0:0]".into())));
        assert_eq!(heads[1], ("\"b1-2\"", "\"b1-1\"", Some("text [1:2]".into())));
        assert_eq!(heads[2], ("\"b1-4\"", "\"b1-2\"", Some("text [1:1]".into())));
        let batched = batched_puts("bb", &edits, 2).unwrap();
        assert_eq!(batched.len(), 2);
        assert_eq!((batched[0].version.as_str(), batched[0].patches), ("\"bb-0\"", 1));
        assert_eq!(batched[0].body, b"Content-Length: 1\r\nContent-Range: text [0:0]\r\n\r\nh\r\n");
        assert_eq!((batched[1].version.as_str(), batched[1].parents.as_str()), ("\"bb-2\"", "\"bb-0\""));
        assert_eq!(apply(&[], &edits).unwrap(), "hey");
    }
}
