//! `GinAggregate` — the aggregation half of PyG `GINConv`:
//! `(1 + eps)·x_i + Σ_{j→i} x_j` over the edges as given (the `nn` follows as
//! separate ops). Integer form (see [`crate::format::Op::GinAggregate`]):
//! `acc = Σ (x_j − zp)·2^16 + one_plus_eps_q16·(x_i − zp)` in i64, then
//! `round_shift(acc, 8)` (keeping 8 fractional bits) and requantization.

use super::{region_bytes, rows, rows_mut, Ctx, In, Out, Scratch};
use crate::error::Result;
use crate::format::AGG_FRAC_BITS;
use crate::kernels::{aggregate, requant};
use crate::quant::round_shift_i64_to_i32;

/// Scratch taken by [`run`]: one i64 row.
pub fn scratch_bytes(channels: usize) -> usize {
    region_bytes::<i64>(channels)
}

/// Runs the aggregation.
pub fn run(
    ctx: &Ctx<'_>,
    one_plus_eps_q16: i32,
    mult: i32,
    shift: i32,
    x: In<'_>,
    out: Out<'_>,
    mut scratch: Scratch<'_>,
) -> Result<()> {
    let ch = x.channels;
    let acc = scratch.take::<i64>(ch)?;
    let zp = i64::from(x.zp);
    let eps = i64::from(one_plus_eps_q16);
    for (i, (xr, or)) in rows(x.data, ch)
        .zip(rows_mut(out.data, out.channels))
        .enumerate()
    {
        acc.fill(0);
        aggregate::sum_rows_i8(&ctx.csr, i, x.data, x.zp, acc);
        for ((o, a), &xi) in or.iter_mut().zip(acc.iter()).zip(xr) {
            let total = a
                .saturating_mul(1 << 16)
                .saturating_add(eps * (i64::from(xi) - zp));
            let v = round_shift_i64_to_i32(total, 16 - AGG_FRAC_BITS);
            *o = requant::requantize(v, mult, shift, out.zp);
        }
    }
    Ok(())
}
