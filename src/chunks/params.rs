//! The chunking parameters (minimum, average, maximum chunk size): configuration, checked
//! against what FastCDC v2020 supports before any byte is chunked.
//!
//! Every client of one dedupe domain must chunk with the same parameters (and the same gear
//! table: we use FastCDC's default, seed 0), or the same bytes get different chunk ids; the
//! server advertises them. The default, 256 KiB / 1 MiB / 4 MiB, is Seafile's, and keeps a
//! 1 TB store near one million chunks.

use std::fmt;
use std::str::FromStr;

use fastcdc::v2020;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

/// Minimum, average and maximum chunk sizes, in bytes, valid for FastCDC v2020.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkParams {
    min: usize,
    avg: usize,
    max: usize,
}

/// Why chunking parameters were refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// One size is outside FastCDC v2020's bounds.
    #[error("the {which} chunk size {value} is outside FastCDC's bounds ({low}..={high} bytes)")]
    OutOfBounds {
        /// "minimum", "average" or "maximum".
        which: &'static str,
        /// The size given.
        value: usize,
        /// The smallest allowed.
        low: usize,
        /// The largest allowed.
        high: usize,
    },
    /// FastCDC v2020 scans byte pairs: an odd size moves its boundaries by one byte.
    #[error("the {which} chunk size {value} is odd; FastCDC needs even sizes")]
    Odd {
        /// "minimum", "average" or "maximum".
        which: &'static str,
        /// The size given.
        value: usize,
    },
    /// Not minimum <= average <= maximum.
    #[error("chunk sizes must satisfy minimum <= average <= maximum, got {min} / {avg} / {max}")]
    Order {
        /// Minimum.
        min: usize,
        /// Average.
        avg: usize,
        /// Maximum.
        max: usize,
    },
    /// The text form is not `MIN/AVG/MAX` with sizes like `256KiB` or `1MiB`.
    #[error("chunk sizes `{0}` are not MIN/AVG/MAX (e.g. 256KiB/1MiB/4MiB)")]
    Syntax(String),
}

impl Default for ChunkParams {
    fn default() -> Self {
        ChunkParams { min: 256 * KIB, avg: MIB, max: 4 * MIB }
    }
}

impl ChunkParams {
    /// Checks the sizes against FastCDC v2020's bounds.
    pub fn new(min: usize, avg: usize, max: usize) -> Result<Self, ParamsError> {
        let check = |which, value: usize, low, high| {
            if !(low..=high).contains(&value) {
                return Err(ParamsError::OutOfBounds { which, value, low, high });
            }
            if value % 2 == 1 {
                return Err(ParamsError::Odd { which, value });
            }
            Ok(())
        };
        check("minimum", min, v2020::MINIMUM_MIN, v2020::MINIMUM_MAX)?;
        check("average", avg, v2020::AVERAGE_MIN, v2020::AVERAGE_MAX)?;
        check("maximum", max, v2020::MAXIMUM_MIN, v2020::MAXIMUM_MAX)?;
        if !(min <= avg && avg <= max) {
            return Err(ParamsError::Order { min, avg, max });
        }
        Ok(ChunkParams { min, avg, max })
    }

    /// The minimum chunk size.
    pub fn min(&self) -> usize {
        self.min
    }

    /// The average (target) chunk size.
    pub fn avg(&self) -> usize {
        self.avg
    }

    /// The maximum chunk size: the largest chunk the store accepts, and what a streaming
    /// chunker holds at most besides one frame.
    pub fn max(&self) -> usize {
        self.max
    }
}

/// One size: digits with an optional `B`, `K`/`KiB` or `M`/`MiB` suffix.
fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let scale = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" => KIB,
        "M" | "MiB" => MIB,
        _ => return None,
    };
    number.parse::<usize>().ok()?.checked_mul(scale)
}

impl FromStr for ChunkParams {
    type Err = ParamsError;

    /// `MIN/AVG/MAX`, e.g. `256KiB/1MiB/4MiB` or `65536/262144/1048576`.
    fn from_str(text: &str) -> Result<Self, ParamsError> {
        let syntax = || ParamsError::Syntax(text.chars().take(64).collect());
        let sizes: Vec<usize> = text.split('/').map(parse_size).collect::<Option<_>>().ok_or_else(syntax)?;
        match sizes[..] {
            [min, avg, max] => ChunkParams::new(min, avg, max),
            _ => Err(syntax()),
        }
    }
}

impl fmt::Display for ChunkParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.min, self.avg, self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_256_kib_1_mib_4_mib_and_valid() {
        let d = ChunkParams::default();
        assert_eq!((d.min(), d.avg(), d.max()), (262_144, 1_048_576, 4_194_304));
        assert_eq!(ChunkParams::new(d.min(), d.avg(), d.max()), Ok(d));
        assert_eq!("256KiB/1MiB/4MiB".parse::<ChunkParams>(), Ok(d));
        assert_eq!(d.to_string().parse::<ChunkParams>(), Ok(d));
    }

    #[test]
    fn sizes_outside_fastcdc_bounds_are_refused_with_the_bounds() {
        let err = ChunkParams::new(32, 1024, 4096).unwrap_err();
        assert_eq!(err, ParamsError::OutOfBounds { which: "minimum", value: 32, low: 64, high: 1_048_576 });
        assert!(err.to_string().contains("64..=1048576"), "{err}");
        let err = ChunkParams::new(64, 8 * MIB, 16 * MIB).unwrap_err();
        assert!(matches!(err, ParamsError::OutOfBounds { which: "average", .. }), "{err}");
        let err = ChunkParams::new(64, 256, 32 * MIB).unwrap_err();
        assert!(matches!(err, ParamsError::OutOfBounds { which: "maximum", high: 16_777_216, .. }), "{err}");
        assert_eq!(ChunkParams::new(65, 256, 1024), Err(ParamsError::Odd { which: "minimum", value: 65 }));
        assert_eq!(
            ChunkParams::new(MIB, 256 * KIB, 4 * MIB),
            Err(ParamsError::Order { min: MIB, avg: 256 * KIB, max: 4 * MIB })
        );
        assert!(ChunkParams::new(64, 256, 1024).is_ok());
        assert!(ChunkParams::new(MIB, 4 * MIB, 16 * MIB).is_ok());
    }

    #[test]
    fn the_text_form_is_checked_too() {
        assert_eq!("64K/256K/1M".parse(), ChunkParams::new(64 * KIB, 256 * KIB, MIB));
        for bad in ["", "1MiB", "1/2", "1/2/3/4", "1GiB/2/3", "x/y/z", "-1/2/3", "99999999999999999999M/1/1"] {
            assert!(matches!(bad.parse::<ChunkParams>(), Err(ParamsError::Syntax(_))), "{bad}");
        }
        assert!(matches!("1/2/3".parse::<ChunkParams>(), Err(ParamsError::OutOfBounds { .. })));
    }
}
