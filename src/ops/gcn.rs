//! `GcnConv` — PyG `GCNConv` with `gcn_norm`:
//! `out_i = bias + Σ_{j ∈ N(i) ∪ {i}} deg_i^-½ · w_ji · deg_j^-½ · (W x_j)`,
//! self-loops added as `add_remaining_self_loops` (an input loop `i→i` is
//! replaced by one loop carrying the weight of the *last* input loop of `i`;
//! nodes without one get the fill weight 1, or 2 when `improved`), degrees
//! summed over the target index, `deg^-½ = 0` where `deg = 0`.
//!
//! Integer form (see [`crate::format::Op::GcnConv`]): `h = W x` in i32, Q16
//! edge weights, Q24 `dinv = isqrt(2^64 / deg)`, Q24 coefficients
//! `(dinv_j · w_ji · dinv_i) >> 40` (or `w << 8` without normalisation),
//! `acc = round_shift(Σ coef·h_j, 24) + bias`, activation, requantization.
//! A coefficient above `i32::MAX` is [`Error::Overflow`].

use super::{region_bytes, rows_mut, Ctx, In, Out, Scratch};
use crate::error::{Error, Result};
use crate::format::Activation;
use crate::kernels::{dense, requant};
use crate::quant::{isqrt_u128, round_shift_i64_to_i32};

/// Q16 weight 1.0.
const ONE_Q16: u32 = 1 << 16;

/// The op's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcnFlags {
    /// Self-loop fill weight 2 instead of 1.
    pub improved: bool,
    /// Add remaining self-loops.
    pub add_self_loops: bool,
    /// Symmetric normalisation.
    pub normalize: bool,
    /// Use the graph's edge weights.
    pub edge_weight: bool,
}

/// Scratch taken by [`run`]: weight sums, `h` (`nodes × out_ch` i32), `dinv`
/// (`nodes` u64), an i64 and an i32 accumulator row.
pub fn scratch_bytes(nodes: usize, _in_ch: usize, out_ch: usize) -> usize {
    region_bytes::<i32>(out_ch)
        .saturating_add(region_bytes::<i32>(nodes.saturating_mul(out_ch)))
        .saturating_add(region_bytes::<u64>(nodes))
        .saturating_add(region_bytes::<i64>(out_ch))
        .saturating_add(region_bytes::<i32>(out_ch))
}

/// Weight of in-edge `k` of node `i` (Q16).
fn edge_w(ctx: &Ctx<'_>, i: usize, k: usize, flags: GcnFlags) -> u32 {
    if flags.edge_weight {
        ctx.csr
            .neighbor_weights(i)
            .get(k)
            .copied()
            .unwrap_or(ONE_Q16)
    } else {
        ONE_Q16
    }
}

/// The self-loop weight of node `i` when loops are added: its last input loop's weight, or the fill.
fn loop_w(ctx: &Ctx<'_>, i: usize, flags: GcnFlags) -> u32 {
    let fill = if flags.improved { 2 * ONE_Q16 } else { ONE_Q16 };
    let mut w = fill;
    for (k, &j) in ctx.csr.neighbors(i).iter().enumerate() {
        if usize::from(j) == i {
            w = edge_w(ctx, i, k, flags);
        }
    }
    w
}

/// `deg_i = Σ_{j→i} w_ji` (Q16, loop included as the op's rules say).
fn degree(ctx: &Ctx<'_>, i: usize, flags: GcnFlags) -> u64 {
    let mut deg = 0u64;
    for (k, &j) in ctx.csr.neighbors(i).iter().enumerate() {
        if flags.add_self_loops && usize::from(j) == i {
            continue;
        }
        deg += u64::from(edge_w(ctx, i, k, flags));
    }
    if flags.add_self_loops {
        deg += u64::from(loop_w(ctx, i, flags));
    }
    deg
}

/// `dinv = deg = 0 ? 0 : isqrt(2^64 / deg)` (Q24; at most `2^32`).
pub fn dinv_q24(deg: u64) -> u64 {
    if deg == 0 {
        0
    } else {
        isqrt_u128((1u128 << 64) / u128::from(deg)) as u64
    }
}

/// Edge coefficient (Q24) or `None` if above `i32::MAX`.
fn coef(flags: GcnFlags, dinv_j: u64, w: u32, dinv_i: u64) -> Option<i64> {
    let c: u128 = if flags.normalize {
        (u128::from(dinv_j) * u128::from(w) * u128::from(dinv_i)) >> 40
    } else {
        u128::from(w) << 8
    };
    if c > i32::MAX as u128 {
        None
    } else {
        Some(c as i64)
    }
}

/// `acc[c] += coef · h_j[c]`, saturating.
fn accumulate(acc: &mut [i64], coef: i64, h: &[i32], j: usize) {
    let ch = acc.len();
    let start = j.saturating_mul(ch);
    if let Some(row) = h.get(start..start.saturating_add(ch)) {
        for (a, &v) in acc.iter_mut().zip(row) {
            *a = a.saturating_add(coef * i64::from(v));
        }
    }
}

/// Runs the convolution.
#[allow(clippy::too_many_arguments)]
pub fn run(
    ctx: &Ctx<'_>,
    w: &[i8],
    params: &[u8],
    act: Activation,
    flags: GcnFlags,
    x: In<'_>,
    out: Out<'_>,
    mut scratch: Scratch<'_>,
) -> Result<()> {
    let n = ctx.nodes();
    let oc = out.channels;
    let sums = scratch.take::<i32>(oc)?;
    let h = scratch.take::<i32>(n.saturating_mul(oc))?;
    let dinv = scratch.take::<u64>(n)?;
    let acc = scratch.take::<i64>(oc)?;
    let row = scratch.take::<i32>(oc)?;
    let overflow = Error::Overflow { op: ctx.op };

    dense::weight_sums(w, x.channels, sums);
    dense::matmul(w, x.channels, x.data, x.zp, sums, h);
    if flags.normalize {
        for (i, d) in dinv.iter_mut().enumerate() {
            *d = dinv_q24(degree(ctx, i, flags));
        }
    }
    for (i, or) in rows_mut(out.data, oc).enumerate().take(n) {
        acc.fill(0);
        let di = dinv.get(i).copied().unwrap_or(0);
        for (k, &j) in ctx.csr.neighbors(i).iter().enumerate() {
            let j = usize::from(j);
            if flags.add_self_loops && j == i {
                continue;
            }
            let dj = dinv.get(j).copied().unwrap_or(0);
            let c = coef(flags, dj, edge_w(ctx, i, k, flags), di).ok_or(overflow)?;
            accumulate(acc, c, h, j);
        }
        if flags.add_self_loops {
            let c = coef(flags, di, loop_w(ctx, i, flags), di).ok_or(overflow)?;
            accumulate(acc, c, h, i);
        }
        for (r, &a) in row.iter_mut().zip(acc.iter()) {
            *r = round_shift_i64_to_i32(a, 24);
        }
        requant::requantize_row(row, params, act, out.zp, or);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dinv_values() {
        assert_eq!(dinv_q24(0), 0);
        assert_eq!(dinv_q24(1 << 16), 1 << 24); // deg 1 → 1.0
        assert_eq!(dinv_q24(4 << 16), 1 << 23); // deg 4 → 0.5
        assert_eq!(dinv_q24(1), 1 << 32);
    }
}
