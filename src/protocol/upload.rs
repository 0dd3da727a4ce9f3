//! The request headers of resumable uploads (issue 17 groundwork: parsed here, not wired to any
//! endpoint yet): tus 1.0.0 (`Tus-Resumable`, `Upload-Length`, `Upload-Defer-Length`,
//! `Upload-Offset`, `Upload-Metadata`, `Upload-Checksum`, `Upload-Concat`) and the IETF
//! "Resumable Uploads for HTTP" draft, whose headers are Structured Fields (RFC 8941):
//! `Upload-Offset` and `Upload-Length` (sf-integer), `Upload-Complete` (sf-boolean, `?1`/`?0`),
//! `Upload-Draft-Interop-Version` (sf-integer).
//!
//! Pure: strings in, values or an [`UploadHeaderError`] with a stable code out. Why strict: an
//! offset or a length decides which bytes of a file a server keeps, so anything but the exact
//! grammar (a sign, a fraction, spaces inside a number, a duplicate metadata key) is refused
//! instead of guessed at.

use base64::Engine as _;

/// The one tus version this server speaks.
pub const TUS_VERSION: &str = "1.0.0";
/// The largest sf-integer (RFC 8941 §3.3.1: at most 15 digits).
const SF_INTEGER_MAX: u64 = 999_999_999_999_999;

/// A header of a resumable upload that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UploadHeaderError {
    /// `Tus-Resumable` names a version this server does not speak (tus: 412 with `Tus-Version`).
    #[error("Tus-Resumable {0:?} is not a version this server speaks (1.0.0)")]
    UnsupportedVersion(String),
    /// A length or offset that is not a plain non-negative decimal integer.
    #[error("{header}: {value:?} is not a non-negative integer")]
    BadNumber { header: &'static str, value: String },
    /// `Upload-Defer-Length` other than `1`.
    #[error("Upload-Defer-Length must be 1")]
    BadDeferLength,
    /// `Upload-Metadata` that is not comma-separated `key base64` pairs with unique keys.
    #[error("Upload-Metadata: {0}")]
    BadMetadata(&'static str),
    /// `Upload-Checksum` that is not `<algorithm> <base64>`.
    #[error("Upload-Checksum: {0}")]
    BadChecksum(&'static str),
    /// `Upload-Checksum` with an algorithm this server does not compute (tus: 400).
    #[error("Upload-Checksum: the algorithm {0:?} is not supported (sha1, sha256)")]
    UnsupportedChecksum(String),
    /// `Upload-Concat` that is neither `partial` nor `final;<url> <url>…`.
    #[error("Upload-Concat: {0}")]
    BadConcat(&'static str),
    /// `Upload-Draft-Interop-Version` naming a draft this server does not speak.
    #[error("Upload-Draft-Interop-Version {0} is not spoken here (5, 6, 7 and 8 are)")]
    UnsupportedInterop(u64),
    /// `Upload-Complete` that is not an sf-boolean (`?1` or `?0`).
    #[error("Upload-Complete: {0:?} is not ?1 or ?0")]
    BadComplete(String),
}

impl UploadHeaderError {
    /// The stable error code (the HTTP layer maps it to a status once uploads are wired).
    pub fn code(&self) -> &'static str {
        match self {
            UploadHeaderError::UnsupportedVersion(_) => "tus_version",
            UploadHeaderError::BadNumber { .. } | UploadHeaderError::BadDeferLength => "bad_upload_length",
            UploadHeaderError::BadMetadata(_) => "bad_upload_metadata",
            UploadHeaderError::BadChecksum(_) => "bad_checksum",
            UploadHeaderError::UnsupportedChecksum(_) => "checksum_algorithm",
            UploadHeaderError::BadConcat(_) => "bad_upload_concat",
            UploadHeaderError::BadComplete(_) => "bad_upload_complete",
            UploadHeaderError::UnsupportedInterop(_) => "upload_interop_version",
        }
    }
}

/// Checks `Tus-Resumable`.
pub fn tus_version(value: &str) -> Result<(), UploadHeaderError> {
    if value.trim() == TUS_VERSION {
        Ok(())
    } else {
        Err(UploadHeaderError::UnsupportedVersion(value.chars().take(32).collect()))
    }
}

/// A tus `Upload-Length` or `Upload-Offset`: one or more ASCII digits, nothing else.
pub fn tus_number(header: &'static str, value: &str) -> Result<u64, UploadHeaderError> {
    let bad = || UploadHeaderError::BadNumber { header, value: value.chars().take(32).collect() };
    let v = value.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    v.parse().map_err(|_| bad())
}

/// `Upload-Defer-Length`: only `1` exists.
pub fn defer_length(value: &str) -> Result<(), UploadHeaderError> {
    if value.trim() == "1" {
        Ok(())
    } else {
        Err(UploadHeaderError::BadDeferLength)
    }
}

/// Decoded `Upload-Metadata`: each key with its value (None for a key sent alone), in order.
pub type Metadata = Vec<(String, Option<Vec<u8>>)>;

/// `Upload-Metadata`: `key base64value` pairs separated by commas; a key alone has no value.
/// Keys are unique, non-empty, without spaces or commas; values are standard base64.
pub fn metadata(value: &str) -> Result<Metadata, UploadHeaderError> {
    let mut out: Metadata = Vec::new();
    if value.trim().is_empty() {
        return Ok(out);
    }
    for pair in value.split(',') {
        let pair = pair.trim();
        let (key, encoded) = match pair.split_once(' ') {
            Some((k, v)) => (k, Some(v.trim())),
            None => (pair, None),
        };
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(UploadHeaderError::BadMetadata("a key must be non-empty printable ASCII without spaces"));
        }
        if out.iter().any(|(k, _)| k == key) {
            return Err(UploadHeaderError::BadMetadata("a key appears twice"));
        }
        let decoded = match encoded {
            None => None,
            Some(v) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(v)
                    .map_err(|_| UploadHeaderError::BadMetadata("a value is not base64"))?,
            ),
        };
        out.push((key.to_string(), decoded));
    }
    Ok(out)
}

/// A checksum algorithm of `Upload-Checksum`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    Sha1,
    Sha256,
}

/// `Upload-Checksum: <algorithm> <base64 digest>`, the digest of the right length.
pub fn checksum(value: &str) -> Result<(ChecksumAlgorithm, Vec<u8>), UploadHeaderError> {
    let (name, encoded) =
        value.trim().split_once(' ').ok_or(UploadHeaderError::BadChecksum("expected `<algorithm> <base64>`"))?;
    let (algorithm, len) = match name.to_ascii_lowercase().as_str() {
        "sha1" => (ChecksumAlgorithm::Sha1, 20),
        "sha256" => (ChecksumAlgorithm::Sha256, 32),
        _ => return Err(UploadHeaderError::UnsupportedChecksum(name.chars().take(32).collect())),
    };
    let digest = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| UploadHeaderError::BadChecksum("the digest is not base64"))?;
    if digest.len() != len {
        return Err(UploadHeaderError::BadChecksum("the digest has the wrong length for its algorithm"));
    }
    Ok((algorithm, digest))
}

/// `Upload-Concat`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Concat {
    /// One part of a later final upload.
    Partial,
    /// The upload made of these partial uploads, in order (their URLs or paths).
    Final(Vec<String>),
}

/// `Upload-Concat: partial` or `final;<url> <url>…` (at least one part).
pub fn concat(value: &str) -> Result<Concat, UploadHeaderError> {
    let v = value.trim();
    if v == "partial" {
        return Ok(Concat::Partial);
    }
    let parts = v.strip_prefix("final;").ok_or(UploadHeaderError::BadConcat("expected `partial` or `final;<urls>`"))?;
    let parts: Vec<String> = parts.split(' ').filter(|p| !p.is_empty()).map(str::to_string).collect();
    if parts.is_empty() {
        return Err(UploadHeaderError::BadConcat("a final upload names at least one partial upload"));
    }
    Ok(Concat::Final(parts))
}

/// An sf-integer header of the IETF draft (`Upload-Offset`, `Upload-Length`,
/// `Upload-Draft-Interop-Version`) that must not be negative.
pub fn sf_integer(header: &'static str, value: &str) -> Result<u64, UploadHeaderError> {
    let bad = || UploadHeaderError::BadNumber { header, value: value.chars().take(32).collect() };
    let v = value.trim_matches(' ');
    if v.is_empty() || v.len() > 15 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    v.parse().ok().filter(|n| *n <= SF_INTEGER_MAX).ok_or_else(bad)
}

/// The IETF draft interop versions spoken: 5 (draft -03), 6 (-05, tus-js-client's
/// `ietf-draft-05`), 7 (-06 to -08) and 8 (-09 to the newest).
pub const INTEROP_VERSIONS: std::ops::RangeInclusive<u64> = 5..=8;

/// `Upload-Draft-Interop-Version`, one of [`INTEROP_VERSIONS`].
pub fn interop_version(value: &str) -> Result<u8, UploadHeaderError> {
    let n = sf_integer("Upload-Draft-Interop-Version", value)?;
    if INTEROP_VERSIONS.contains(&n) {
        Ok(n as u8)
    } else {
        Err(UploadHeaderError::UnsupportedInterop(n))
    }
}

/// `Upload-Complete`: an sf-boolean, `?1` (this request ends the upload) or `?0`.
pub fn upload_complete(value: &str) -> Result<bool, UploadHeaderError> {
    match value.trim_matches(' ') {
        "?1" => Ok(true),
        "?0" => Ok(false),
        other => Err(UploadHeaderError::BadComplete(other.chars().take(32).collect())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tus_numbers_versions_and_deferred_lengths() {
        assert_eq!(tus_version("1.0.0"), Ok(()));
        assert_eq!(tus_version("0.2.2").unwrap_err().code(), "tus_version");
        assert_eq!(tus_number("Upload-Offset", "0"), Ok(0));
        assert_eq!(tus_number("Upload-Length", " 1048576 "), Ok(1 << 20));
        for bad in ["", "-1", "+1", "1.5", "1e3", "12 3", "0x10", "99999999999999999999999"] {
            assert_eq!(tus_number("Upload-Offset", bad).unwrap_err().code(), "bad_upload_length", "{bad:?}");
        }
        assert_eq!(defer_length("1"), Ok(()));
        assert!(defer_length("0").is_err() && defer_length("true").is_err());
    }

    #[test]
    fn metadata_pairs_decode_and_bad_ones_are_refused() {
        let got = metadata("filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential").unwrap();
        assert_eq!(got[0], ("filename".into(), Some(b"world_domination_plan.pdf".to_vec())));
        assert_eq!(got[1], ("is_confidential".into(), None));
        assert_eq!(metadata("").unwrap(), Vec::new());
        assert_eq!(metadata("a YQ==, b Yg==").unwrap().len(), 2);
        for bad in ["a YQ==,a Yg==", "a !!!", "ä YQ==", "a YQ==,,b"] {
            assert_eq!(metadata(bad).unwrap_err().code(), "bad_upload_metadata", "{bad:?}");
        }
    }

    #[test]
    fn checksums_name_a_known_algorithm_and_a_digest_of_its_length() {
        let sha1 = base64::engine::general_purpose::STANDARD.encode([7u8; 20]);
        assert_eq!(checksum(&format!("sha1 {sha1}")), Ok((ChecksumAlgorithm::Sha1, vec![7u8; 20])));
        let sha256 = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
        assert_eq!(checksum(&format!("SHA256 {sha256}")).unwrap().0, ChecksumAlgorithm::Sha256);
        assert_eq!(checksum(&format!("md5 {sha1}")).unwrap_err().code(), "checksum_algorithm");
        assert_eq!(checksum(&format!("sha256 {sha1}")).unwrap_err().code(), "bad_checksum");
        assert_eq!(checksum("sha1").unwrap_err().code(), "bad_checksum");
        assert_eq!(checksum("sha1 %%%").unwrap_err().code(), "bad_checksum");
    }

    #[test]
    fn concatenation_is_partial_or_a_final_list() {
        assert_eq!(concat("partial"), Ok(Concat::Partial));
        assert_eq!(
            concat("final;/.plait/uploads/a /.plait/uploads/b"),
            Ok(Concat::Final(vec!["/.plait/uploads/a".into(), "/.plait/uploads/b".into()]))
        );
        for bad in ["final;", "final", "partial;x", "whole"] {
            assert_eq!(concat(bad).unwrap_err().code(), "bad_upload_concat", "{bad:?}");
        }
    }

    #[test]
    fn ietf_structured_fields() {
        assert_eq!(sf_integer("Upload-Offset", "0"), Ok(0));
        assert_eq!(sf_integer("Upload-Offset", "999999999999999"), Ok(SF_INTEGER_MAX));
        for bad in ["", "-5", "1000000000000000", "1.0", "?1", "12a"] {
            assert!(sf_integer("Upload-Offset", bad).is_err(), "{bad:?}");
        }
        assert_eq!(upload_complete("?1"), Ok(true));
        assert_eq!(upload_complete("?0"), Ok(false));
        for bad in ["1", "true", "?2", ""] {
            assert_eq!(upload_complete(bad).unwrap_err().code(), "bad_upload_complete", "{bad:?}");
        }
    }
}
