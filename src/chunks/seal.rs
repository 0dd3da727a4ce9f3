//! Chunks at rest: compressed when that saves space, encrypted when a key is configured, and
//! verified on every read (a corrupt chunk is an error, never wrong bytes).
//!
//! Sealed bytes:
//! ```text
//! flags (1 byte: 0x01 LZ4 block, 0x02 AES-256-GCM; other bits set = corrupt)
//! ‖ plaintext length (u32 BE)
//! ‖ CRC-32C of the rest (u32 BE)
//! ‖ body                                   when not encrypted
//! ‖ nonce (12 bytes) ‖ body ⊕ GCM ‖ tag (16)  when encrypted; AAD = flags ‖ length ‖ chunk id
//! ```
//! where body is the LZ4 block of the plaintext when that is at least 1/16 smaller, else the
//! plaintext. LZ4 (`lz4_flex`, already in the tree) for now; measured on real files
//! (docs/CHUNKS.md), zstd level 1 stores 35-40% less of files that compress at no more CPU,
//! and gives up on incompressible ones at half LZ4's speed: flag bit 0x04 is free for it.
//!
//! The CRC is checked before anything decodes the bytes: `lz4_flex` 0.9.5's decoder panics
//! (an index out of range) on some corrupted blocks, so a damaged chunk must never reach it;
//! the decoder also runs under `catch_unwind`, so a block that passes the CRC by chance (or
//! was forged by someone who can write the disk) is an error too, not a panic.
//!
//! Nonces are 96 random bits from the OS per sealing. With one key, random 96-bit nonces are
//! safe for 2^32 sealings (NIST SP 800-38D), which at 1 MiB chunks is 4 PiB of distinct
//! chunks written. The chunk id in the AAD binds a sealed chunk to its id, so bytes moved to
//! another id fail authentication rather than decrypting.
//!
//! The store's header (one record per store, [`Header`]) says whether its chunks are
//! encrypted and holds the key's check value: [`check_header`] refuses a missing or wrong key
//! at start-up instead of failing on the first read.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use super::{ChunkError, ChunkId, ChunkKey, KeyError};

const LZ4: u8 = 0x01;
const AES_GCM: u8 = 0x02;
const HEAD: usize = 9;
const TAG: usize = 16;

/// Seals and opens chunks for one store.
pub struct Sealer {
    key: Option<LessSafeKey>,
    rng: SystemRandom,
    /// The largest plaintext accepted (the chunking maximum): a corrupt length never makes
    /// a large allocation.
    max_len: usize,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer(encrypted: {}, max {} bytes)", self.key.is_some(), self.max_len)
    }
}

impl Sealer {
    /// A sealer that encrypts with `key` when given.
    pub fn new(key: Option<&ChunkKey>, max_len: usize) -> Self {
        let key = key.map(|k| {
            // A 32-byte key is always a valid AES-256 key.
            let unbound = UnboundKey::new(&AES_256_GCM, k.aead_key()).unwrap_or_else(|_| unreachable!());
            LessSafeKey::new(unbound)
        });
        Sealer { key, rng: SystemRandom::new(), max_len }
    }

    /// Whether chunks are encrypted.
    pub fn encrypts(&self) -> bool {
        self.key.is_some()
    }

    /// The largest plaintext accepted.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The bytes to store for `plain`, whose id is `id`.
    pub fn seal(&self, id: &ChunkId, plain: &[u8]) -> Result<Vec<u8>, ChunkError> {
        if plain.len() > self.max_len {
            return Err(ChunkError::TooLarge { len: plain.len(), max: self.max_len });
        }
        let compressed = lz4_flex::block::compress(plain);
        let (mut flags, body) = if compressed.len() <= plain.len() - plain.len() / 16 && !plain.is_empty() {
            (LZ4, &compressed[..])
        } else {
            (0, plain)
        };
        let len = (plain.len() as u32).to_be_bytes();
        let head = |flags: u8, rest: &[u8]| {
            let mut out = Vec::with_capacity(HEAD + rest.len());
            out.push(flags);
            out.extend_from_slice(&len);
            out.extend_from_slice(&crc32c::crc32c(rest).to_be_bytes());
            out.extend_from_slice(rest);
            out
        };
        let Some(key) = &self.key else {
            return Ok(head(flags, body));
        };
        flags |= AES_GCM;
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| ChunkError::Engine("the OS random source failed".into()))?;
        let mut rest = Vec::with_capacity(NONCE_LEN + body.len() + TAG);
        rest.extend_from_slice(&nonce);
        rest.extend_from_slice(body);
        let aad = aad(flags, &len, id);
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad[..]),
                &mut rest[NONCE_LEN..],
            )
            .map_err(|_| ChunkError::Engine("encryption failed".into()))?;
        rest.extend_from_slice(tag.as_ref());
        Ok(head(flags, &rest))
    }

    /// The plaintext of a stored chunk, verified against its id.
    pub fn open(&self, id: &ChunkId, sealed: &[u8]) -> Result<Vec<u8>, ChunkError> {
        let corrupt = |why: &str| ChunkError::Corrupt { id: *id, why: why.to_string() };
        let (&flags, rest) = sealed.split_first().ok_or_else(|| corrupt("empty record"))?;
        if flags & !(LZ4 | AES_GCM) != 0 {
            return Err(corrupt("unknown flags"));
        }
        let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(|| corrupt("truncated header"))?;
        let plain_len = u32::from_be_bytes(*len) as usize;
        if plain_len > self.max_len {
            return Err(corrupt("length beyond the largest chunk"));
        }
        let (crc, rest) = rest.split_first_chunk::<4>().ok_or_else(|| corrupt("truncated header"))?;
        if crc32c::crc32c(rest) != u32::from_be_bytes(*crc) {
            return Err(corrupt("checksum mismatch"));
        }
        let mut decrypted;
        let body = if flags & AES_GCM != 0 {
            let key = self.key.as_ref().ok_or_else(|| corrupt("encrypted, and no key is configured"))?;
            let (nonce, ciphertext) =
                rest.split_first_chunk::<NONCE_LEN>().ok_or_else(|| corrupt("truncated nonce"))?;
            decrypted = ciphertext.to_vec();
            let aad = aad(flags, len, id);
            let plain = key
                .open_in_place(Nonce::assume_unique_for_key(*nonce), Aad::from(&aad[..]), &mut decrypted)
                .map_err(|_| corrupt("authentication failed (wrong key or altered bytes)"))?;
            &plain[..]
        } else {
            rest
        };
        let plain = if flags & LZ4 != 0 {
            let mut out = vec![0u8; plain_len];
            let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                lz4_flex::block::decompress_into(body, &mut out)
            }));
            let n = match decoded {
                Ok(Ok(n)) => n,
                _ => return Err(corrupt("LZ4 block does not decode")),
            };
            if n != plain_len {
                return Err(corrupt("LZ4 block decodes to another length"));
            }
            out
        } else {
            if body.len() != plain_len {
                return Err(corrupt("length does not match"));
            }
            body.to_vec()
        };
        if ChunkId::of(&plain) != *id {
            return Err(corrupt("its BLAKE3 hash is not its id"));
        }
        Ok(plain)
    }
}

fn aad(flags: u8, len: &[u8; 4], id: &ChunkId) -> [u8; 37] {
    let mut aad = [0u8; 37];
    aad[0] = flags;
    aad[1..5].copy_from_slice(len);
    aad[5..].copy_from_slice(&id.0);
    aad
}

/// How a store seals its chunks: its header record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Header {
    /// Not encrypted.
    Plain,
    /// AES-256-GCM under the key whose check value this is (hex).
    Encrypted {
        /// The key check value.
        check: String,
    },
}

const HEADER_PREFIX: &str = "plait-chunks 1 ";

impl Header {
    /// The record's bytes (ASCII, legible with any key-value tool).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Header::Plain => format!("{HEADER_PREFIX}plain"),
            Header::Encrypted { check } => format!("{HEADER_PREFIX}aes-256-gcm {check}"),
        }
        .into_bytes()
    }

    /// Reads a record written by [`Header::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, KeyError> {
        let bad = || KeyError::Header(bytes.iter().copied().take(64).collect::<Vec<u8>>().escape_ascii().to_string());
        let text = std::str::from_utf8(bytes).map_err(|_| bad())?;
        let rest = text.strip_prefix(HEADER_PREFIX).ok_or_else(bad)?;
        match rest.split_once(' ') {
            None if rest == "plain" => Ok(Header::Plain),
            Some(("aes-256-gcm", check)) if check.len() == 32 && check.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Ok(Header::Encrypted { check: check.to_string() })
            }
            _ => Err(bad()),
        }
    }

    /// The header a store sealed with `key` gets.
    pub fn for_key(key: Option<&ChunkKey>) -> Self {
        match key {
            None => Header::Plain,
            Some(k) => Header::Encrypted { check: k.check_hex() },
        }
    }
}

/// Whether a store with header `stored` (None: a store without one, `empty` or not) may be
/// used with `key`: Ok(Some(header)) when the header must be written first.
pub fn check_header(stored: Option<&[u8]>, empty: bool, key: Option<&ChunkKey>) -> Result<Option<Header>, KeyError> {
    let wanted = Header::for_key(key);
    let Some(bytes) = stored else {
        // A store that holds chunks but no header was written by nothing we know.
        return if empty { Ok(Some(wanted)) } else { Err(KeyError::Header("none, but the store holds chunks".into())) };
    };
    match (Header::decode(bytes)?, key) {
        (Header::Plain, None) => Ok(None),
        (Header::Plain, Some(_)) if empty => Ok(Some(wanted)),
        (Header::Plain, Some(_)) => Err(KeyError::Unencrypted),
        (Header::Encrypted { .. }, None) => Err(KeyError::Missing),
        (Header::Encrypted { check }, Some(k)) if check == k.check_hex() => Ok(None),
        (Header::Encrypted { check }, Some(k)) => Err(KeyError::Wrong { expected: check, found: k.check_hex() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1 << 20;

    fn samples() -> Vec<Vec<u8>> {
        let text = b"the same sentence again and again. ".repeat(2000);
        let mut noise = vec![0u8; 50_000];
        SystemRandom::new().fill(&mut noise).unwrap();
        vec![Vec::new(), b"x".to_vec(), text, noise, vec![0u8; MAX]]
    }

    #[test]
    fn chunks_round_trip_compressed_only_when_smaller_and_encrypted_with_a_key() {
        let key = ChunkKey::from_bytes(&[1u8; 32]);
        for sealer in [Sealer::new(None, MAX), Sealer::new(Some(&key), MAX)] {
            for plain in samples() {
                let id = ChunkId::of(&plain);
                let sealed = sealer.seal(&id, &plain).unwrap();
                assert_eq!(sealer.open(&id, &sealed).unwrap(), plain);
                let compressed = sealed[0] & LZ4 != 0;
                let overhead = HEAD + if sealer.encrypts() { NONCE_LEN + TAG } else { 0 };
                if compressed {
                    assert!(sealed.len() - overhead < plain.len() - plain.len() / 16 + 1);
                } else {
                    assert_eq!(sealed.len(), plain.len() + overhead, "stored as is");
                }
                assert_eq!(sealed[0] & AES_GCM != 0, sealer.encrypts());
                if sealer.encrypts() && plain.len() > 100 {
                    // Nothing of a readable plaintext shows through.
                    assert!(!sealed.windows(8).any(|w| w == b"sentence"), "plaintext visible");
                    assert_ne!(sealer.seal(&id, &plain).unwrap(), sealed, "nonces repeat");
                }
            }
            let text = b"compressible ".repeat(1000);
            assert!(sealer.seal(&ChunkId::of(&text), &text).unwrap().len() < text.len() / 4);
        }
    }

    #[test]
    fn every_corruption_is_an_error_never_other_bytes() {
        let key = ChunkKey::from_bytes(&[2u8; 32]);
        let plain = b"some text that compresses, some text that compresses, some text.".repeat(50);
        let id = ChunkId::of(&plain);
        for sealer in [Sealer::new(None, MAX), Sealer::new(Some(&key), MAX)] {
            let sealed = sealer.seal(&id, &plain).unwrap();
            // Flip each bit of the first 64 bytes and of the last 64, and truncate everywhere.
            let mut positions: Vec<usize> = (0..64.min(sealed.len())).collect();
            positions.extend(sealed.len().saturating_sub(64)..sealed.len());
            for at in positions {
                for bit in 0..8 {
                    let mut bad = sealed.clone();
                    bad[at] ^= 1 << bit;
                    match sealer.open(&id, &bad) {
                        Err(ChunkError::Corrupt { id: got, .. }) => assert_eq!(got, id),
                        Ok(bytes) => assert_eq!(bytes, plain, "byte {at} bit {bit} gave other bytes"),
                        Err(other) => panic!("{other}"),
                    }
                }
            }
            // The same flips behind a recomputed CRC (a forged or unlucky record) reach the
            // decoders, whose panics must come back as errors too.
            for at in HEAD..sealed.len().min(HEAD + 200) {
                let mut bad = sealed.clone();
                bad[at] ^= 0x5a;
                let crc = crc32c::crc32c(&bad[HEAD..]).to_be_bytes();
                bad[5..9].copy_from_slice(&crc);
                match sealer.open(&id, &bad) {
                    Err(ChunkError::Corrupt { .. }) => {}
                    Ok(bytes) => assert_eq!(bytes, plain, "byte {at} behind a good CRC gave other bytes"),
                    Err(other) => panic!("{other}"),
                }
            }
            for cut in 0..sealed.len() {
                assert!(matches!(sealer.open(&id, &sealed[..cut]), Err(ChunkError::Corrupt { .. })), "cut at {cut}");
            }
            // The right bytes under another id: refused.
            assert!(matches!(sealer.open(&ChunkId::of(b"other"), &sealed), Err(ChunkError::Corrupt { .. })));
        }
        // A wrong key, or none, never yields bytes.
        let sealed = Sealer::new(Some(&key), MAX).seal(&id, &plain).unwrap();
        let wrong = Sealer::new(Some(&ChunkKey::from_bytes(&[3u8; 32])), MAX);
        assert!(matches!(wrong.open(&id, &sealed), Err(ChunkError::Corrupt { .. })));
        assert!(matches!(Sealer::new(None, MAX).open(&id, &sealed), Err(ChunkError::Corrupt { .. })));
        // A length beyond the maximum is refused before allocating.
        let mut huge = Sealer::new(None, MAX).seal(&id, &plain).unwrap();
        huge[1..5].copy_from_slice(&u32::MAX.to_be_bytes());
        let rest_crc = crc32c::crc32c(&huge[HEAD..]).to_be_bytes();
        huge[5..9].copy_from_slice(&rest_crc);
        let err = Sealer::new(None, MAX).open(&id, &huge).unwrap_err();
        assert!(err.to_string().contains("largest chunk"), "{err}");
        assert!(matches!(Sealer::new(None, 10).seal(&id, &plain), Err(ChunkError::TooLarge { max: 10, .. })));
    }

    #[test]
    fn the_header_refuses_a_missing_or_wrong_key() {
        let key = ChunkKey::from_bytes(&[4u8; 32]);
        let other = ChunkKey::from_bytes(&[5u8; 32]);
        let enc = Header::for_key(Some(&key)).encode();
        let plain = Header::Plain.encode();
        assert_eq!(Header::decode(&enc), Ok(Header::Encrypted { check: key.check_hex() }));
        assert_eq!(String::from_utf8(plain.clone()).unwrap(), "plait-chunks 1 plain");
        // New stores get the header of their configuration.
        assert_eq!(check_header(None, true, None), Ok(Some(Header::Plain)));
        assert_eq!(check_header(None, true, Some(&key)), Ok(Some(Header::for_key(Some(&key)))));
        assert!(matches!(check_header(None, false, None), Err(KeyError::Header(_))));
        // The right configuration opens; anything else is refused.
        assert_eq!(check_header(Some(&enc), false, Some(&key)), Ok(None));
        assert_eq!(check_header(Some(&plain), false, None), Ok(None));
        assert_eq!(check_header(Some(&enc), false, None), Err(KeyError::Missing));
        let wrong = check_header(Some(&enc), false, Some(&other)).unwrap_err();
        assert_eq!(wrong, KeyError::Wrong { expected: key.check_hex(), found: other.check_hex() });
        assert!(wrong.to_string().contains("another key"), "{wrong}");
        assert_eq!(check_header(Some(&plain), false, Some(&key)), Err(KeyError::Unencrypted));
        assert_eq!(check_header(Some(&plain), true, Some(&key)), Ok(Some(Header::for_key(Some(&key)))));
        for bad in [&b"plait-chunks 2 plain"[..], b"plait-chunks 1 aes-256-gcm xyz", b"\xff", b""] {
            assert!(matches!(check_header(Some(bad), false, None), Err(KeyError::Header(_))), "{bad:?}");
        }
    }
}
