//! The binary form of the history listing: blocks of consecutive entries, each entry coded
//! against the one before it.
//!
//! Why: the listing keeps one entry per accepted write (time, author, inserted and deleted), which diamond-types does not store. As one JSON record and one index record per
//! write it cost ~180 bytes per keystroke, 465× the document's own encoding. Consecutive
//! writes mostly share their author, hang off the previous write, and continue its event
//! ids, so coding each against its predecessor leaves a few bytes: for one author typing,
//! a flag byte, the time since the previous write and nothing else.
//!
//! A block is `BLOCK_TAG` followed by slots. A slot is a flag byte and the fields the flags
//! do not say are "as before". Most slots are one byte: a `TYPING` byte is a write that
//! continues the previous one's events by one inserted or deleted code point, on top of it,
//! by the same author, 0–63 ms later. A dropped slot (compaction folded its write) is the
//! byte `DROPPED` alone, so the slots keep their numbers. Pure: no store, no I/O; decoding
//! stored bytes returns an error instead of panicking.

use crate::text::EventId;

use super::listing::{Author, HistoryEntry, Principal};

/// The first byte of a block value: the listing record's format (anything else is refused).
pub const BLOCK_TAG: u8 = 2;
/// A block is sealed after this many slots; the open block is rewritten by each write round,
/// so this bounds what a round rewrites (128 one-byte slots for one author typing).
pub const BLOCK_SLOTS: usize = 128;

/// A one-byte entry: bit 6 set for a one-code-point delete (clear: insert), bits 0–5 the
/// milliseconds since the previous entry.
const TYPING: u8 = 1 << 7;
const TYPING_DELETE: u8 = 1 << 6;
const TYPING_MAX_MS: u64 = 63;
/// A dropped slot.
const DROPPED: u8 = 1 << 6;

/// Bits 0–1 of a full entry's flags: how the version is coded.
const VERSION_MASK: u8 = 0b11;
/// The version as a list of strings.
const VERSION_LIST: u8 = 0;
/// One `agent-seq` id: the agent, then the seq.
const VERSION_ID: u8 = 1;
/// One id by the previous entry's agent: the seq as a signed difference.
const VERSION_SAME_AGENT: u8 = 2;
/// One id by the previous entry's agent whose events directly follow the previous entry's
/// (seq = previous seq + inserted + deleted): nothing stored.
const VERSION_CONTIGUOUS: u8 = 3;
/// The parents are the previous entry's version.
const PARENTS_PREVIOUS: u8 = 1 << 2;
/// The author's agent is the version's agent.
const AUTHOR_IS_AGENT: u8 = 1 << 3;
/// Peer and principal as in the previous entry.
const SAME_ORIGIN: u8 = 1 << 4;
/// A restore: the restored version follows.
const RESTORED: u8 = 1 << 5;

/// A block's slots, in order; `None` where a write was folded away.
pub type Slots = Vec<Option<HistoryEntry>>;

/// The version of `e` as one parsed id, when it is exactly one id that prints back the same.
fn single_id(e: &HistoryEntry) -> Option<EventId> {
    match e.version.as_slice() {
        [id] => EventId::parse(id).ok().filter(|parsed| parsed.to_string() == *id),
        _ => None,
    }
}

/// The events `e` added, when its version is one id: `(agent, first seq, last seq)`.
fn event_range(e: &HistoryEntry) -> Option<(String, u64, u64)> {
    let id = single_id(e)?;
    let count = e.inserted.saturating_add(e.deleted);
    let first = id.seq.checked_add(1)?.checked_sub(count)?;
    Some((id.agent, first, id.seq))
}

/// Whether `e`'s events directly follow `prev`'s, by the same agent (one run of typing).
fn continues(prev: &HistoryEntry, e: &HistoryEntry) -> bool {
    match (single_id(prev), single_id(e)) {
        (Some(p), Some(id)) => follows(&p, &id, e),
        _ => false,
    }
}

/// Whether `e`, whose version is `id`, adds the events right after `prev` by the same agent.
fn follows(prev: &EventId, id: &EventId, e: &HistoryEntry) -> bool {
    prev.agent == id.agent && prev.seq.checked_add(e.inserted.saturating_add(e.deleted)) == Some(id.seq)
}

/// Encodes a whole block.
pub fn encode_block(slots: &[Option<HistoryEntry>]) -> Vec<u8> {
    let mut out = vec![BLOCK_TAG];
    let mut prev: Option<&HistoryEntry> = None;
    for slot in slots {
        match slot {
            None => out.push(DROPPED),
            Some(e) => {
                encode_entry(prev, e, &mut out);
                prev = Some(e);
            }
        }
    }
    out
}

/// Appends `e` to an encoded block whose last entry is `prev`.
pub fn encode_entry(prev: Option<&HistoryEntry>, e: &HistoryEntry, out: &mut Vec<u8>) {
    let id = single_id(e);
    let prev_id = prev.and_then(single_id);
    let mode = match (&id, &prev_id) {
        (Some(id), Some(p)) if follows(p, id, e) => VERSION_CONTIGUOUS,
        (Some(id), Some(p)) if id.agent == p.agent => VERSION_SAME_AGENT,
        (Some(_), _) => VERSION_ID,
        (None, _) => VERSION_LIST,
    };
    let mut flags = mode;
    if prev.is_some_and(|p| p.version == e.parents) {
        flags |= PARENTS_PREVIOUS;
    }
    if id.as_ref().is_some_and(|id| id.agent == e.author.agent) {
        flags |= AUTHOR_IS_AGENT;
    }
    let (prev_peer, prev_principal) =
        prev.map_or((None, None), |p| (p.author.peer.as_ref(), p.author.principal.as_ref()));
    if prev_peer == e.author.peer.as_ref() && prev_principal == e.author.principal.as_ref() {
        flags |= SAME_ORIGIN;
    }
    if e.restored_from.is_some() {
        flags |= RESTORED;
    }
    let prev_ms = prev.map_or(0, |p| p.received_ms);
    let typing = VERSION_CONTIGUOUS | PARENTS_PREVIOUS | AUTHOR_IS_AGENT | SAME_ORIGIN;
    let after_ms = e.received_ms.checked_sub(prev_ms).filter(|ms| *ms <= TYPING_MAX_MS);
    if let (true, Some(ms)) = (flags == typing, after_ms) {
        match (e.inserted, e.deleted) {
            (1, 0) => return out.push(TYPING | ms as u8),
            (0, 1) => return out.push(TYPING | TYPING_DELETE | ms as u8),
            _ => {}
        }
    }
    out.push(flags);
    match (mode, &id) {
        (VERSION_ID, Some(id)) => {
            put_str(out, &id.agent);
            put_varint(out, id.seq);
        }
        (VERSION_SAME_AGENT, Some(id)) => {
            let prev_seq = prev_id.map_or(0, |p| p.seq);
            put_varint(out, zigzag(id.seq.wrapping_sub(prev_seq) as i64));
        }
        (VERSION_CONTIGUOUS, _) => {}
        _ => put_strs(out, &e.version),
    }
    if flags & PARENTS_PREVIOUS == 0 {
        put_strs(out, &e.parents);
    }
    put_varint(out, zigzag(e.received_ms.wrapping_sub(prev_ms) as i64));
    if flags & AUTHOR_IS_AGENT == 0 {
        put_str(out, &e.author.agent);
    }
    if flags & SAME_ORIGIN == 0 {
        put_opt_str(out, e.author.peer.as_deref());
        match &e.author.principal {
            None => out.push(0),
            Some(p) => {
                out.push(1);
                put_str(out, &p.kind);
                put_str(out, &p.id);
                put_str(out, &p.label);
            }
        }
    }
    put_varint(out, e.inserted);
    put_varint(out, e.deleted);
    if let Some(restored) = &e.restored_from {
        put_strs(out, restored);
    }
}

/// Decodes a block value (after checking its tag).
pub fn decode_block(value: &[u8]) -> Result<Slots, String> {
    let mut r = match value.split_first() {
        Some((&BLOCK_TAG, rest)) => Reader { bytes: rest },
        _ => return Err("not a listing block".into()),
    };
    let mut slots = Vec::new();
    let mut prev: Option<HistoryEntry> = None;
    while !r.bytes.is_empty() {
        if slots.len() >= BLOCK_SLOTS {
            return Err(format!("more than {BLOCK_SLOTS} slots"));
        }
        let flags = r.byte()?;
        if flags == DROPPED {
            slots.push(None);
            continue;
        }
        let e = decode_entry(flags, prev.as_ref(), &mut r)?;
        prev = Some(e.clone());
        slots.push(Some(e));
    }
    Ok(slots)
}

fn decode_entry(flags: u8, prev: Option<&HistoryEntry>, r: &mut Reader<'_>) -> Result<HistoryEntry, String> {
    if flags & TYPING != 0 {
        return typed(flags, prev);
    }
    if flags & DROPPED != 0 {
        return Err(format!("flags {flags:#04x} mix a dropped slot with an entry"));
    }
    let prev_id = prev.and_then(single_id);
    let version_id = match flags & VERSION_MASK {
        VERSION_ID => Some(EventId { agent: r.string()?, seq: r.varint()? }),
        VERSION_SAME_AGENT => {
            let p = prev_id.ok_or("a same-agent version without a previous id")?;
            Some(EventId { seq: p.seq.wrapping_add(unzigzag(r.varint()?) as u64), agent: p.agent })
        }
        // The seq needs the counts, which come last: placeholder until then.
        VERSION_CONTIGUOUS => Some(prev_id.ok_or("a contiguous version without a previous id")?),
        _ => None,
    };
    let version = if version_id.is_none() { r.strings()? } else { Vec::new() };
    let parents = match (flags & PARENTS_PREVIOUS != 0, prev) {
        (true, Some(p)) => p.version.clone(),
        (true, None) => return Err("parents as before, with no entry before".into()),
        (false, _) => r.strings()?,
    };
    let received_ms = prev.map_or(0, |p| p.received_ms).wrapping_add(unzigzag(r.varint()?) as u64);
    let agent = if flags & AUTHOR_IS_AGENT != 0 {
        version_id.as_ref().map(|id| id.agent.clone()).ok_or("author as the version's agent, with no agent")?
    } else {
        r.string()?
    };
    let (peer, principal) = if flags & SAME_ORIGIN != 0 {
        prev.map_or((None, None), |p| (p.author.peer.clone(), p.author.principal.clone()))
    } else {
        let peer = if r.byte()? == 1 { Some(r.string()?) } else { None };
        let principal = match r.byte()? {
            0 => None,
            1 => Some(Principal { kind: r.string()?, id: r.string()?, label: r.string()? }),
            other => return Err(format!("principal marker {other}")),
        };
        (peer, principal)
    };
    let (inserted, deleted) = (r.varint()?, r.varint()?);
    let restored_from = if flags & RESTORED != 0 { Some(r.strings()?) } else { None };
    let version = match version_id {
        None => version,
        Some(mut id) => {
            if flags & VERSION_MASK == VERSION_CONTIGUOUS {
                id.seq = id.seq.checked_add(inserted.saturating_add(deleted)).ok_or("a contiguous seq overflows")?;
            }
            vec![id.to_string()]
        }
    };
    Ok(HistoryEntry {
        version,
        parents,
        received_ms,
        author: Author { agent, peer, principal },
        inserted,
        deleted,
        restored_from,
    })
}

/// A `TYPING` byte: the previous entry continued by one code point.
fn typed(byte: u8, prev: Option<&HistoryEntry>) -> Result<HistoryEntry, String> {
    let p = prev.ok_or("a typing entry with no entry before")?;
    let mut id = single_id(p).ok_or("a typing entry after a version that is not one id")?;
    id.seq = id.seq.checked_add(1).ok_or("a typing seq overflows")?;
    let (inserted, deleted) = if byte & TYPING_DELETE != 0 { (0, 1) } else { (1, 0) };
    Ok(HistoryEntry {
        author: Author { agent: id.agent.clone(), peer: p.author.peer.clone(), principal: p.author.principal.clone() },
        version: vec![id.to_string()],
        parents: p.version.clone(),
        received_ms: p.received_ms.checked_add(u64::from(byte) & TYPING_MAX_MS).ok_or("a typing time overflows")?,
        inserted,
        deleted,
        restored_from: None,
    })
}

/// The run-index keys of a block: `(agent, first seq)` of each entry that does not continue
/// the entry before it, and every id of a version that is not one plain id. A lookup of
/// `agent-seq` takes the greatest key at or below it: the run holding that event, because
/// runs of one agent never share an event.
pub fn run_starts(slots: &[Option<HistoryEntry>]) -> Vec<(String, u64)> {
    let mut starts = Vec::new();
    let mut prev: Option<&HistoryEntry> = None;
    for e in slots.iter().flatten() {
        starts.extend(starts_of(prev, e));
        prev = Some(e);
    }
    starts
}

/// The run-index keys `e` adds after `prev` (none when it continues `prev`'s run).
pub fn starts_of(prev: Option<&HistoryEntry>, e: &HistoryEntry) -> Vec<(String, u64)> {
    if prev.is_some_and(|p| continues(p, e)) {
        return Vec::new();
    }
    match event_range(e) {
        Some((agent, first, _)) => vec![(agent, first)],
        None => e.version.iter().filter_map(|id| EventId::parse(id).ok()).map(|id| (id.agent, id.seq)).collect(),
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
    }
}

fn put_strs(out: &mut Vec<u8>, list: &[String]) {
    put_varint(out, list.len() as u64);
    for s in list {
        put_str(out, s);
    }
}

/// A bounds-checked cursor over stored bytes.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let (&b, rest) = self.bytes.split_first().ok_or("truncated")?;
        self.bytes = rest;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("a varint longer than 10 bytes".into())
    }

    fn string(&mut self) -> Result<String, String> {
        let len = usize::try_from(self.varint()?).map_err(|_| "a string length overflows")?;
        if len > self.bytes.len() {
            return Err("a truncated string".into());
        }
        let (s, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        String::from_utf8(s.to_vec()).map_err(|_| "a string that is not UTF-8".into())
    }

    fn strings(&mut self) -> Result<Vec<String>, String> {
        let count = self.varint()?;
        // Each string takes at least its length byte: a count beyond what is left is corrupt
        // (and must not size an allocation).
        if count > self.bytes.len() as u64 {
            return Err("a list longer than its bytes".into());
        }
        (0..count).map(|_| self.string()).collect()
    }
}
