//! Secrets: how tokens and share links are minted, written, parsed and checked.
//!
//! A token is `plait_<id>_<secret>`, a share link's last segment `<id>_<secret>`: `id` is 16
//! lowercase hex digits (8 random bytes, public: listings, revocation, history), `secret`
//! 64 lowercase hex digits (32 random bytes from the operating system). Only the SHA-256 of
//! the secret is stored. A check looks the record up by its id, then compares hashes in
//! constant time, so response timing says nothing about how much of a guess was right.

use rand::TryRngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AuthError;

/// What every token starts with (lets secret scanners and people recognise one).
pub const TOKEN_PREFIX: &str = "plait_";
const ID_HEX: usize = 16;
const SECRET_HEX: usize = 64;

/// The SHA-256 of a secret, as stored.
pub type SecretHash = [u8; 32];

/// A freshly minted credential: its public id, the secret to show once, and the hash to keep.
pub struct Minted {
    /// The public id.
    pub id: String,
    /// The secret, shown to its owner once and never kept.
    pub secret: String,
    /// What is kept.
    pub hash: SecretHash,
}

impl std::fmt::Debug for Minted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minted").field("id", &self.id).field("secret", &"<redacted>").finish()
    }
}

impl Minted {
    /// A new id and secret from the operating system's random source.
    pub fn new() -> Result<Minted, AuthError> {
        let mut bytes = [0u8; 40];
        rand::rngs::OsRng.try_fill_bytes(&mut bytes).map_err(|e| AuthError::Random(e.to_string()))?;
        let id = hex(&bytes[..8]);
        let secret = hex(&bytes[8..]);
        let hash = hash(&secret);
        Ok(Minted { id, secret, hash })
    }

    /// The bearer token: `plait_<id>_<secret>`.
    pub fn token(&self) -> String {
        format!("{TOKEN_PREFIX}{}_{}", self.id, self.secret)
    }

    /// The share link's last path segment: `<id>_<secret>`.
    pub fn link(&self) -> String {
        format!("{}_{}", self.id, self.secret)
    }
}

/// The id and secret of a bearer token, or None when it is not one of ours.
pub fn parse_token(token: &str) -> Option<(&str, &str)> {
    parse_link(token.strip_prefix(TOKEN_PREFIX)?)
}

/// The id and secret of a share link's last segment, or None when it is malformed.
pub fn parse_link(link: &str) -> Option<(&str, &str)> {
    let (id, secret) = link.split_once('_')?;
    (is_lower_hex(id, ID_HEX) && is_lower_hex(secret, SECRET_HEX)).then_some((id, secret))
}

/// Whether `id` could be a credential's public id (for revocation paths).
pub fn is_id(id: &str) -> bool {
    is_lower_hex(id, ID_HEX)
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The stored form of a secret.
pub fn hash(secret: &str) -> SecretHash {
    Sha256::digest(secret.as_bytes()).into()
}

/// Whether `secret` hashes to `stored`, compared in constant time.
pub fn matches(secret: &str, stored: &SecretHash) -> bool {
    bool::from(hash(secret).ct_eq(stored))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// The bytes of a lowercase hex string of exactly 32 bytes (a stored hash).
pub fn unhex32(s: &str) -> Option<SecretHash> {
    if !is_lower_hex(s, 64) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_parse_back_and_check() {
        let m = Minted::new().unwrap();
        let token = m.token();
        assert_eq!(token.len(), TOKEN_PREFIX.len() + ID_HEX + 1 + SECRET_HEX);
        let (id, secret) = parse_token(&token).unwrap();
        assert_eq!(id, m.id);
        assert!(matches(secret, &m.hash));
        assert_eq!(parse_link(&m.link()), Some((id, secret)));
        assert!(!format!("{m:?}").contains(&m.secret));
        assert_eq!(unhex32(&hex(&m.hash)), Some(m.hash));
    }

    #[test]
    fn every_flipped_byte_fails() {
        let m = Minted::new().unwrap();
        let token = m.token();
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] ^= 1;
            let Ok(flipped) = String::from_utf8(bytes) else { continue };
            let ok = parse_token(&flipped).is_some_and(|(id, s)| id == m.id && matches(s, &m.hash));
            assert!(!ok, "flipping byte {i} still authenticates");
        }
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let m = Minted::new().unwrap();
        let good = m.token();
        for bad in [
            String::new(),
            "plait_".into(),
            good.to_uppercase(),
            good.replacen("plait_", "plat_", 1),
            format!("{good}0"),
            good[..good.len() - 1].to_string(),
            good.replacen('_', "-", 2),
        ] {
            assert!(parse_token(&bad).is_none(), "{bad}");
        }
        assert!(is_id(&m.id) && !is_id("XYZ"));
    }
}
