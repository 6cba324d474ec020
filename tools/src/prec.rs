//! Weight precision as the tool chooses it per layer (`convert --weights`):
//! the file's element type and the integer levels the quantizer may use.
//! `int2` and `ternary` share the file's 2-bit element type
//! ([`WeightBits::I2`]); they differ in the levels: int2 uses all four
//! two's-complement values −2..=1 (asymmetric: one more level below zero),
//! ternary only −1..=1 (symmetric). Both take a per-channel scale chosen by
//! the squared-error clip search (and, with `--int4-rounding gpfq-seq`, by
//! the output error), like int4.

use tinygnn::format::WeightBits;

/// One layer's weight precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prec {
    /// int8, −127..=127.
    I8,
    /// int4, −7..=7.
    I4,
    /// int2, −2..=1.
    I2,
    /// Ternary, −1..=1, stored as int2.
    Ternary,
}

/// The integer levels `lo..=hi` of a precision (as `f64` for the rounding).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QRange {
    /// Smallest level.
    pub lo: f64,
    /// Largest level.
    pub hi: f64,
}

impl QRange {
    /// `x` rounded to nearest and clamped to the levels.
    #[inline]
    pub fn round(self, x: f64) -> f64 {
        x.round().clamp(self.lo, self.hi)
    }

    /// The largest magnitude, `max(|lo|, hi)`: the divisor of the unclipped
    /// scale `max|W| / span` (int2: 2, so `+max|W|` clips to one level).
    pub fn span(self) -> f64 {
        self.hi.max(-self.lo)
    }
}

impl From<f64> for QRange {
    /// Symmetric levels `±qm`.
    fn from(qm: f64) -> Self {
        QRange { lo: -qm, hi: qm }
    }
}

impl Prec {
    /// Every precision, widest first.
    pub const ALL: [Prec; 4] = [Prec::I8, Prec::I4, Prec::I2, Prec::Ternary];

    /// The file's element type.
    pub fn format(self) -> WeightBits {
        match self {
            Prec::I8 => WeightBits::I8,
            Prec::I4 => WeightBits::I4,
            Prec::I2 | Prec::Ternary => WeightBits::I2,
        }
    }

    /// Stored bits per weight.
    pub fn bits(self) -> u32 {
        self.format().bits()
    }

    /// Whether the precision is below 8 bits (the int4 options apply).
    pub fn is_sub_byte(self) -> bool {
        self != Prec::I8
    }

    /// The integer levels.
    pub fn levels(self) -> QRange {
        let (lo, hi) = match self {
            Prec::I8 => (-127.0, 127.0),
            Prec::I4 => (-7.0, 7.0),
            Prec::I2 => (-2.0, 1.0),
            Prec::Ternary => (-1.0, 1.0),
        };
        QRange { lo, hi }
    }

    /// The name the CLI spells.
    pub fn name(self) -> &'static str {
        match self {
            Prec::I8 => "int8",
            Prec::I4 => "int4",
            Prec::I2 => "int2",
            Prec::Ternary => "ternary",
        }
    }

    /// Parses [`Prec::name`].
    pub fn parse(s: &str) -> Option<Prec> {
        Prec::ALL.into_iter().find(|p| p.name() == s)
    }
}
