//! Persistence in diamond-types' own `DMNDTYPS` format: full snapshots, per-write deltas, and
//! loading them back (`docs/DIAMOND-TYPES.md` §5, "DT-FACTS").
//!
//! DT 1.0.0's decoder is not safe for arbitrary bytes: it can panic, abort on huge LZ4
//! allocations, or leave a half-applied log (DT-FACTS §5.3). So every input must end with a valid
//! CRC-32C chunk (checked here, strictly, before DT sees a byte), decoding happens into a clone
//! that is swapped in only on success, and DT's own panics on CRC-valid but inconsistent bytes
//! are caught (`catch_unwind`; this cannot help under `panic = "abort"` or against allocation
//! aborts, so only bytes this server wrote should reach here). Client-supplied DT binary is not
//! handled by this module.

use super::frontier::to_local;
use super::{TextDoc, TextError};
use crate::protocol::VersionSet;
use diamond_types::list::encoding::{EncodeOptions, ENCODE_FULL, ENCODE_PATCH};
use diamond_types::list::OpLog;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// CRC-32C (Castagnoli, reflected), the checksum DT's trailing CRC chunk carries. A document
/// is checked on every load, so this uses the CPU's CRC-32C instruction where there is one
/// (the `crc32c` crate detects it at run time; ~10× the table-driven speed): on a cold open
/// of B3's 104 KB document the check was ~2% of the request.
pub(super) fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Appends the trailing CRC chunk [`verify_crc`] checks, to a file encoded by hand.
pub(super) fn with_crc(mut bytes: Vec<u8>) -> Vec<u8> {
    let crc = crc32c(&bytes);
    bytes.extend_from_slice(&[0x64, 4]);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

/// The trailing CRC chunk is `0x64 0x04` + crc32c(everything before it), little endian.
/// DT skips its own check when the chunk is missing or damaged, so this one is strict.
/// Returns the bytes without the chunk: DT's check would only repeat ours (the chunk is
/// optional to its decoder), and it costs as much again on every load.
pub(super) fn verify_crc(bytes: &[u8]) -> Result<&[u8], TextError> {
    let n = bytes.len();
    if n < 6 || bytes[n - 6] != 0x64 || bytes[n - 5] != 4 {
        return Err(TextError::CorruptEncoding("missing CRC chunk".into()));
    }
    let stored = u32::from_le_bytes([bytes[n - 4], bytes[n - 3], bytes[n - 2], bytes[n - 1]]);
    let actual = crc32c(&bytes[..n - 6]);
    if stored != actual {
        return Err(TextError::CorruptEncoding(format!("CRC mismatch: stored {stored:08x}, computed {actual:08x}")));
    }
    Ok(&bytes[..n - 6])
}

/// Diamond-types' own encoding with the content uncompressed: for a copy made in memory and
/// decoded at once, where LZ4 would only cost time.
const ENCODE_IN_MEMORY: EncodeOptions<'static> = EncodeOptions { compress_content: false, ..ENCODE_FULL };

/// The same log with its events renumbered in the order diamond-types' encoder walks them:
/// each branch of the history in one stretch. Deltas decoded in the order they were written
/// number the events of concurrent writers interleaved, one write of each in turn, and checking
/// out such a log costs diamond-types a walk back over the other branches at every turn
/// (measured on B8's independent writers, 11,014 events, 1,290 deltas after the snapshot:
/// 0.92 s to check out, against 14.8 ms once re-encoded, which costs ~1.3 ms). A snapshot is
/// in walk order already (it is this encoding), so only a load whose deltas branch pays for it.
fn in_walk_order(oplog: &OpLog) -> Result<OpLog, String> {
    OpLog::load_from(&oplog.encode(ENCODE_IN_MEMORY)).map_err(|e| format!("re-encoding the log: {e:?}"))
}

fn panicked() -> TextError {
    TextError::CorruptEncoding("diamond-types rejected the bytes (panic caught)".into())
}

impl TextDoc {
    /// The whole history as one snapshot (DT's `ENCODE_FULL`, CRC included).
    pub fn encode_full(&self) -> Vec<u8> {
        self.oplog.encode(ENCODE_FULL)
    }

    /// The events after `v`, as a delta (`ENCODE_PATCH`) that [`apply_encoded`](Self::apply_encoded)
    /// can replay onto a document that has `v`. Deltas must be replayed in order.
    pub fn encode_since(&self, v: &VersionSet) -> Result<Vec<u8>, TextError> {
        let lv = to_local(&self.oplog, v)?;
        Ok(self.oplog.encode_from(ENCODE_PATCH, &lv))
    }

    /// Loads a snapshot. CRC-checked first; never panics on bad bytes.
    pub fn decode_full(bytes: &[u8]) -> Result<TextDoc, TextError> {
        TextDoc::decode_stored(Some(bytes), &[])
    }

    /// Loads a stored document: an optional snapshot plus the deltas written after it, in order.
    /// Every input is CRC-checked before diamond-types sees a byte; the events are decoded into
    /// one log that is checked out once at the end, because replaying the deltas one by one
    /// with [`apply_encoded`](Self::apply_encoded) clones and merges the document per delta
    /// (measured: 4.9 s instead of 70 ms for 210 deltas). When the deltas branch (concurrent
    /// writes), the log is put in walk order first (see `in_walk_order`).
    pub fn decode_stored(snapshot: Option<&[u8]>, deltas: &[&[u8]]) -> Result<TextDoc, TextError> {
        let snapshot = snapshot.map(verify_crc).transpose()?;
        let deltas = deltas.iter().map(|d| verify_crc(d)).collect::<Result<Vec<_>, _>>()?;
        let decoded = catch_unwind(|| {
            let mut oplog = match snapshot {
                Some(bytes) => OpLog::load_from(bytes).map_err(|e| format!("snapshot: {e:?}"))?,
                None => OpLog::new(),
            };
            let mut branched = false;
            for (i, bytes) in deltas.iter().enumerate() {
                oplog.decode_and_add(bytes).map_err(|e| format!("delta {i}: {e:?}"))?;
                branched |= oplog.local_version_ref().len() > 1;
            }
            if branched {
                oplog = in_walk_order(&oplog)?;
            }
            Ok::<_, String>(oplog)
        });
        match decoded {
            // The tip is checked out when first needed (a read of an old version never needs it).
            Ok(Ok(oplog)) => Ok(TextDoc::from_parts(oplog, None)),
            Ok(Err(e)) => Err(TextError::CorruptEncoding(e)),
            Err(_) => Err(panicked()),
        }
    }

    /// Adds the events of a snapshot or delta. CRC-checked first; decoded into a clone that is
    /// swapped in only on success, so on `Err` the document is unchanged. The checked-out text
    /// is not merged (it is brought up to the tip when next needed).
    pub fn apply_encoded(&mut self, bytes: &[u8]) -> Result<(), TextError> {
        let bytes = verify_crc(bytes)?;
        let mut oplog = self.oplog.clone();
        let branch = self.checked_out();
        let result = catch_unwind(AssertUnwindSafe(|| oplog.decode_and_add(bytes)));
        match result {
            Ok(Ok(_)) => {
                self.install(oplog, branch);
                Ok(())
            }
            Ok(Err(e)) => Err(TextError::CorruptEncoding(format!("{e:?}"))),
            Err(_) => Err(panicked()),
        }
    }

    /// Adds a write round's delta as [`take_delta_since`](Self::take_delta_since) made it on
    /// another copy of this document (the readers' copy follows the writer's this way), in
    /// place: no copy of the log, since these bytes come from this process, not from a disk or
    /// a client. Events already present are skipped (diamond-types filters known events), so
    /// a round applied twice changes nothing. On `Err` the document may be half-changed and
    /// must be dropped (the caller rebuilds it from the store).
    pub fn add_delta(&mut self, files: &[Vec<u8>]) -> Result<(), TextError> {
        for file in files {
            let bytes = verify_crc(file)?;
            let before = self.oplog.len();
            let result = catch_unwind(AssertUnwindSafe(|| self.oplog.decode_and_add(bytes)));
            match result {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(TextError::CorruptEncoding(format!("{e:?}"))),
                Err(_) => return Err(panicked()),
            }
            let after = self.oplog.len();
            if after > before {
                self.added_off_tip(after - before);
                self.note_seqs(before..after);
            }
        }
        self.restart_delta();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn crc32c_matches_the_bytewise_definition() {
        fn bytewise(data: &[u8]) -> u32 {
            let mut crc = !0u32;
            for &b in data {
                crc ^= u32::from(b);
                for _ in 0..8 {
                    crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
                }
            }
            !crc
        }
        let data: Vec<u8> = (0u32..300).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for start in 0..9 {
            for end in start..data.len() {
                assert_eq!(crc32c(&data[start..end]), bytewise(&data[start..end]), "{start}..{end}");
            }
        }
    }
}
