//! Simpleton catch-up: absolute patches against the text at `from` that turn it into the text at
//! `union(from, to)` (DT-FACTS §3.1; braid-text's `getXFPatches`).
//!
//! diamond-types yields transformed ops whose positions are sequential (each against the text
//! left by the previous op). A segment list over the text at `from` — original runs and inserted
//! runs — turns them into sorted, non-overlapping, merged absolute patches. The list is
//! O(ops × segments); fine for interactive catch-ups, not tuned for 100k-event ones.
//! This file does not produce dt-style original history; see `history.rs`.

use super::frontier::reduce;
use super::{TextDoc, TextError};
use crate::protocol::{Patch, TextRange, VersionSet};
use diamond_types::list::operation::OpKind;

/// A run of the text being rebuilt: original chars `start..end` of the text at `from`
/// (`end == None` = through the end of that text), or inserted chars.
#[derive(Debug)]
enum Seg {
    Orig { start: usize, end: Option<usize> },
    Ins { text: String, chars: usize },
}

impl Seg {
    fn len(&self) -> Option<usize> {
        match self {
            Seg::Orig { start, end } => end.map(|e| e - start),
            Seg::Ins { chars, .. } => Some(*chars),
        }
    }

    /// Splits at char offset `off` (0 < off < len); self keeps the left part.
    fn split_off(&mut self, off: usize) -> Seg {
        match self {
            Seg::Orig { start, end } => {
                let mid = *start + off;
                let right = Seg::Orig { start: mid, end: *end };
                *end = Some(mid);
                right
            }
            Seg::Ins { text, chars } => {
                let byte = text.char_indices().nth(off).map_or(text.len(), |(b, _)| b);
                let right = text.split_off(byte);
                let right_chars = *chars - off;
                *chars = off;
                Seg::Ins { text: right, chars: right_chars }
            }
        }
    }
}

fn inconsistent() -> TextError {
    TextError::CorruptEncoding("transformed history does not fit the text".into())
}

/// Makes a segment boundary at char position `pos`; returns the index of the segment after it.
fn split_at(segs: &mut Vec<Seg>, pos: usize) -> Result<usize, TextError> {
    let mut acc = 0usize;
    for i in 0..segs.len() {
        if acc == pos {
            return Ok(i);
        }
        let off = pos - acc;
        match segs[i].len() {
            Some(l) if l <= off => acc += l,
            _ => {
                let right = segs[i].split_off(off);
                segs.insert(i + 1, right);
                return Ok(i + 1);
            }
        }
    }
    if acc == pos {
        Ok(segs.len())
    } else {
        Err(inconsistent())
    }
}

impl TextDoc {
    /// Simpleton: sorted, non-overlapping, merged, absolute patches against `text_at(from)` that
    /// turn it into `text_at(union(from, to))`. Empty if nothing changes.
    pub fn xf_patches(&self, from: &VersionSet, to: &VersionSet) -> Result<Vec<Patch>, TextError> {
        let (from_lv, to_lv) = self.two_local(from, to)?;
        let mut merged = from_lv.clone();
        merged.extend(to_lv);
        let merged = reduce(&self.oplog, merged);
        if merged == from_lv {
            return Ok(Vec::new());
        }
        let mut segs = vec![Seg::Orig { start: 0, end: None }];
        for (_, op) in self.oplog.iter_xf_operations_from(&from_lv, &merged) {
            let Some(op) = op else { continue };
            match op.kind {
                OpKind::Ins => {
                    let content = op.content_as_str().ok_or_else(inconsistent)?;
                    let text: String = if op.loc.fwd { content.to_string() } else { content.chars().rev().collect() };
                    let chars = op.end() - op.start();
                    let i = split_at(&mut segs, op.start())?;
                    segs.insert(i, Seg::Ins { text, chars });
                }
                OpKind::Del => {
                    let i = split_at(&mut segs, op.start())?;
                    let j = split_at(&mut segs, op.end())?;
                    segs.drain(i..j);
                }
            }
        }
        Ok(to_patches(&segs))
    }
}

/// Walks the segments, emitting a delete for every gap in the original runs and an insert for
/// every inserted run, merging patches that touch.
fn to_patches(segs: &[Seg]) -> Vec<Patch> {
    let mut out: Vec<(usize, usize, String)> = Vec::new();
    let mut push = |s: usize, e: usize, c: &str| match out.last_mut() {
        Some(last) if last.1 == s => {
            last.1 = e;
            last.2.push_str(c);
        }
        _ => out.push((s, e, c.to_string())),
    };
    let mut cursor = 0usize;
    for seg in segs {
        match seg {
            Seg::Orig { start, end } => {
                if *start > cursor {
                    push(cursor, *start, "");
                }
                match end {
                    Some(e) => cursor = *e,
                    None => break,
                }
            }
            Seg::Ins { text, .. } => push(cursor, cursor, text),
        }
    }
    out.into_iter().map(|(s, e, c)| Patch { range: TextRange::absolute(s as u64, e as u64), content: c }).collect()
}
