//! `Softmax` — `F.softmax(x, dim=-1)` and `F.log_softmax(x, dim=-1)` over
//! each row's channels, the heads PyG's examples end with. Integer form: the
//! differences to the row maximum index a 256-entry `exp` table the host
//! computed for the input's scale; the row sum gives the normaliser, and for
//! log-softmax its logarithm in fixed point (a bit-by-bit `log2`).
//! No division by anything but the row sum, no float, the same bytes on every
//! target.

use serde::{Deserialize, Serialize};

use super::{zip_rows, Check, Env, In, OpDef, Out, Scratch, Tensors};
use crate::error::Result;
use crate::format::Section;
use crate::kernels::requant::requantize;
use crate::quant::saturate_i8;

/// `exp(0)` in the table: the entries are Q15.
pub const EXP_ONE: u32 = 1 << 15;
/// Output scale of softmax (log = false): probabilities in steps of 1/256.
pub const PROB_SCALE: f32 = 1.0 / 256.0;
/// Output zero point of softmax (log = false): probability 0 is −128.
pub const PROB_ZERO_POINT: i8 = -128;

/// Softmax or log-softmax over the channels of each row (node, graph or
/// pair rows; input and output of one kind and channel count). Row `i` of
/// the int8 input `x` (scale `s_x`):
///
/// 1. `m = max_c x_c`, `d_c = m − x_c` (`0..=255`); `e_c = exp_q15[d_c]`,
///    the little-endian `u16` entry `d_c` of `table` (the host writes
///    `round(2^15 · exp(−s_x·d))`, so `exp_q15[0] = 2^15`);
///    `S = Σ_c e_c` (`u32`).
/// 2. Softmax (`log` false; the output has scale 1/256 and zero point −128):
///    `out_c = saturate_i8(floor((e_c·2^8 + S/2) / S) − 128)`.
/// 3. Log-softmax (`log` true): `L = log2_q16(S) − 15·2^16`, where
///    `log2_q16(S)` is [`log2_q16`]'s bit-by-bit `log2` in Q16 (the
///    algorithm is the definition: `floor(log2(S)·2^16)` or one less);
///    `acc_c = sat_i32(−d_c·2^16 − floor((L·ln2_q16 + 2^15) / 2^16))` (in
///    units of `s_x / 2^16`; `ln2_q16 = round(ln 2 / s_x · 2^16)`), and
///    `out_c = saturate_i8(requant(acc_c, mult, shift) + zp_out)` with the
///    Q31 rescale `s_x / (2^16 · s_out)`.
///
/// A row without channels is left as is (there is none: channels ≥ 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Softmax {
    /// Input tensor.
    pub input: u8,
    /// Output tensor (same kind and channels).
    pub output: u8,
    /// Log-softmax (else softmax).
    pub log: bool,
    /// 512 bytes: `exp_q15[d]`, `u16` little endian, for `d = 0..=255`.
    pub table: Section,
    /// `round(ln 2 / s_x · 2^16)` (log-softmax; 0 for softmax).
    pub ln2_q16: i32,
    /// Q31 rescale `s_x / (2^16 · s_out)` (log-softmax; 0 for softmax).
    pub mult: i32,
    /// Its exponent.
    pub shift: i32,
}

/// `log2(s)` in Q16 for `s ≥ 1` (0 for 0): the integer part from the leading
/// bit, then 16 fraction bits by repeated squaring of the Q31 mantissa (each
/// square that reaches 2 is one bit, the square truncated to Q31): at most
/// one unit below `floor(log2(s)·2^16)`, the same on every target.
pub fn log2_q16(s: u32) -> u32 {
    if s == 0 {
        return 0;
    }
    let k = 31 - s.leading_zeros();
    // The mantissa in Q31: [2^31, 2^32).
    let mut y = u64::from(s) << (31 - k);
    let mut frac = 0u32;
    for bit in (0..16).rev() {
        y = (y * y) >> 31;
        if y >= 1 << 32 {
            y >>= 1;
            frac |= 1 << bit;
        }
    }
    (k << 16) | frac
}

/// The `exp` entry for a difference `d` (0 past the table's end).
fn exp_entry(table: &[u8], d: usize) -> u32 {
    match table.get(2 * d..2 * d + 2) {
        Some(&[lo, hi]) => u32::from(u16::from_le_bytes([lo, hi])),
        _ => 0,
    }
}

/// Runs softmax or log-softmax on every row.
pub fn run(p: &Softmax, table: &[u8], x: In<'_>, out: Out<'_>) -> Result<()> {
    let c = x.channels;
    let zp_out = out.zp;
    for (row, o) in zip_rows(x.data, c, out.data, out.channels) {
        let m = row.iter().copied().max().unwrap_or(0);
        let d = |v: i8| (i32::from(m) - i32::from(v)) as usize;
        let sum = row
            .iter()
            .fold(0u32, |s, &v| s.saturating_add(exp_entry(table, d(v))))
            .max(1);
        if p.log {
            let l = i64::from(log2_q16(sum).saturating_sub(15 << 16));
            let norm = (l * i64::from(p.ln2_q16) + (1 << 15)) >> 16;
            for (y, &v) in o.iter_mut().zip(row) {
                let acc = -((d(v) as i64) << 16) - norm;
                let acc = acc.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
                *y = requantize(acc, p.mult, p.shift, zp_out);
            }
        } else {
            let half = u64::from(sum / 2);
            for (y, &v) in o.iter_mut().zip(row) {
                let e = u64::from(exp_entry(table, d(v)));
                let q = ((e << 8) + half) / u64::from(sum);
                *y = saturate_i8(q as i32 + i32::from(PROB_ZERO_POINT));
            }
        }
    }
    Ok(())
}

impl OpDef for Softmax {
    /// Row `i` from input row `i` only (over its channels).
    fn hops(&self) -> Option<u8> {
        Some(0)
    }
    fn name(&self) -> &'static str {
        if self.log {
            "log_softmax"
        } else {
            "softmax"
        }
    }
    fn output(&self) -> u8 {
        self.output
    }
    fn for_each_input(&self, f: &mut dyn FnMut(u8)) {
        f(self.input)
    }
    fn check(&self, c: &Check<'_>) -> Option<()> {
        let (i, o) = (c.tensor(self.input)?, c.tensor(self.output)?);
        let head = self.log
            || (o.zero_point == PROB_ZERO_POINT
                && o.scale == PROB_SCALE
                && self.ln2_q16 == 0
                && self.mult == 0
                && self.shift == 0);
        let table_ok = c.section_is(self.table, 512)
            && u32::from(u16::from_le_bytes(
                c.data.bytes(self.table).get(..2)?.try_into().ok()?,
            )) == EXP_ONE;
        Check::ok(
            i.kind == o.kind
                && i.channels == o.channels
                && table_ok
                && head
                && self.ln2_q16 >= 0
                && (-32..=31).contains(&self.shift),
        )
    }
    fn run<'v, T: Tensors<'v>>(
        &self,
        env: &Env<'_, T>,
        out: Out<'_>,
        _scratch: Scratch<'_>,
    ) -> Result<()> {
        run(self, env.data.bytes(self.table), env.view(self.input)?, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_q16_is_floor_of_log2() {
        // Exact on powers of two (integers only).
        for k in 0..32 {
            assert_eq!(log2_q16(1 << k), k << 16, "2^{k}");
        }
        assert_eq!(log2_q16(0), 0);
        // Elsewhere within one unit below log2(s)·2^16 (the float reference
        // itself is allowed a little error: Miri's log2 is not exact).
        let mut s = 3u32;
        while s < u32::MAX / 3 {
            let want = (s as f64).log2() * 65536.0;
            let got = f64::from(log2_q16(s));
            assert!(
                got <= want + 0.01 && want - got <= 1.01,
                "s={s}: {got} vs {want}"
            );
            s = s * 3 / 2 + 1;
        }
    }
}
