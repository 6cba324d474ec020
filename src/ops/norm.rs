//! `LayerNorm` — `torch.nn.LayerNorm(C)` over each row's channels (and
//! PyG's `LayerNorm(mode="node")`), the norm of graph transformers. Integer
//! form: the input's zero point and scale cancel out of `(x − μ)/σ`, so the
//! row statistics are exact integers (`u_c = C·x_c − Σx`, `Q = Σ u_c²`), the
//! reciprocal square root is one integer `isqrt` per row, and the affine map
//! `γ, β` with the output's quantization is one fixed-point multiply–add per
//! value. No float, the same bytes on every target.

use serde::{Deserialize, Serialize};

use super::{zip_rows, Check, Env, In, OpDef, Out, Scratch, Tensors};
use crate::error::Result;
use crate::format::Section;
use crate::quant::saturate_i8;

/// Bytes per channel in the `affine` section: `a_c` (i32) and `b_c` (i64),
/// little endian.
pub const AFFINE_BYTES: usize = 12;
/// The largest `eps_q` (so that `Q + eps_q` stays below 2^62).
pub const EPS_Q_MAX: u64 = 1 << 60;

/// Layer normalization over the channels of each row (node, graph or pair
/// rows; input and output of one kind and channel count `C`). Row `x`
/// (int8, any zero point):
///
/// 1. `S = Σ_c x_c`, `u_c = C·x_c − S` (i32), `Q' = Σ_c u_c² + eps_q` (u64;
///    the host writes `eps_q = round(ε·C³/s_x²)`, at most [`EPS_Q_MAX`]).
/// 2. `n_c`, the normalised value in Q16 (`(x_c − μ)/σ = n_c·√C / 2^16`):
///    with `k = (62 − bit_length(Q')) / 2` (integer division), `R =
///    isqrt(Q' · 4^k)` and `r = floor(2^62 / R)`, `n_c = (u_c·r) >> (46 − k)`
///    (arithmetic shift); `n_c = 0` for every channel when `Q' = 0`.
/// 3. `out_c = saturate_i8((a_c·n_c + b_c + 2^(F−1)) >> F)` with `F = frac`
///    (the sum saturating in i64), where the host writes `a_c =
///    round(γ_c·√C / (2^16·s_out) · 2^F)` and `b_c = round((β_c / s_out +
///    zp_out) · 2^F)` in `affine`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LayerNorm {
    /// Input tensor.
    pub input: u8,
    /// Output tensor (same kind and channels).
    pub output: u8,
    /// `ε` in the units of `Q`: `round(ε·C³/s_x²)`, saturated at [`EPS_Q_MAX`].
    pub eps_q: u64,
    /// `C` records of [`AFFINE_BYTES`]: `a_c` i32, `b_c` i64, little endian.
    pub affine: Section,
    /// `F`, the fixed-point position of `a` and `b` (1..=62).
    pub frac: u8,
}

/// Channel `c`'s `(a_c, b_c)` (zeros past the section's end).
fn affine_of(affine: &[u8], c: usize) -> (i64, i64) {
    let rec = affine.get(c * AFFINE_BYTES..(c + 1) * AFFINE_BYTES);
    match rec {
        Some(&[a0, a1, a2, a3, b0, b1, b2, b3, b4, b5, b6, b7]) => (
            i64::from(i32::from_le_bytes([a0, a1, a2, a3])),
            i64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7]),
        ),
        _ => (0, 0),
    }
}

/// The row's reciprocal: `(r, shift)` with `n_c = (u_c·r) >> shift`, or
/// `None` when `Q' = 0` (`Q'` is below 2^62: at most `C³·255² + 2^60`).
pub fn reciprocal(q: u64) -> Option<(i64, u32)> {
    if q == 0 {
        return None;
    }
    let k = (62 - (64 - q.leading_zeros())) / 2;
    let r = (q << (2 * k)).isqrt() as i64;
    Some(((1i64 << 62).checked_div(r)?, 46 - k))
}

/// Runs the norm on every row (not inlined into the op dispatch).
#[inline(never)]
pub fn run(p: &LayerNorm, affine: &[u8], x: In<'_>, out: Out<'_>) -> Result<()> {
    let c = x.channels;
    let half = 1i64 << (p.frac.clamp(1, 62) - 1);
    let frac = u32::from(p.frac.clamp(1, 62));
    for (row, o) in zip_rows(x.data, c, out.data, out.channels) {
        let s: i32 = row.iter().map(|&v| i32::from(v)).sum();
        let u = |v: i8| (c as i32) * i32::from(v) - s;
        let q = row
            .iter()
            .fold(0u64, |q, &v| {
                q.saturating_add(i64::from(u(v)).pow(2) as u64)
            })
            .saturating_add(p.eps_q.min(EPS_Q_MAX));
        let rec = reciprocal(q);
        for (ch, (y, &v)) in o.iter_mut().zip(row).enumerate() {
            let n = rec.map_or(0, |(r, sh)| (i64::from(u(v)) * r) >> sh);
            let (a, b) = affine_of(affine, ch);
            let acc = a.saturating_mul(n).saturating_add(b).saturating_add(half) >> frac;
            *y = saturate_i8(acc.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32);
        }
    }
    Ok(())
}

impl OpDef for LayerNorm {
    /// Row `i` from input row `i` only (over its channels).
    fn hops(&self) -> Option<u8> {
        Some(0)
    }
    fn name(&self) -> &'static str {
        "layer_norm"
    }
    fn output(&self) -> u8 {
        self.output
    }
    fn for_each_input(&self, f: &mut dyn FnMut(u8)) {
        f(self.input)
    }
    fn check(&self, c: &Check<'_>) -> Option<()> {
        let (i, o) = (c.tensor(self.input)?, c.tensor(self.output)?);
        let n = usize::from(o.channels);
        Check::ok(
            i.kind == o.kind
                && i.channels == o.channels
                && c.section_is(self.affine, n * AFFINE_BYTES)
                && (1..=62).contains(&self.frac)
                && self.eps_q <= EPS_Q_MAX,
        )
    }
    fn run<'v, T: Tensors<'v>>(
        &self,
        env: &Env<'_, T>,
        out: Out<'_>,
        _scratch: Scratch<'_>,
    ) -> Result<()> {
        run(
            self,
            env.data.bytes(self.affine),
            env.view(self.input)?,
            out,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n_c` is `u_c·2^16/√Q'` to within a unit or two over the whole range
    /// of `Q'` (the float check is only a reference; the integers define it).
    #[test]
    fn reciprocal_normalises_in_q16() {
        assert_eq!(reciprocal(0), None);
        let mut q = 1u64;
        while q < 1 << 61 {
            let (r, sh) = reciprocal(q).unwrap();
            for u in [1i64, -7, 1000, -(1 << 20)] {
                let n = (u * r) >> sh;
                let want = u as f64 * 65536.0 / (q as f64).sqrt();
                assert!(
                    (n as f64 - want).abs() <= 1.0 + want.abs() * 1e-8,
                    "q={q} u={u}: {n} vs {want}"
                );
            }
            q = q * 3 + 1;
        }
    }
}
