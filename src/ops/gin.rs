//! `GinAggregate` — the aggregation half of PyG `GINConv`:
//! `(1 + eps)·x_i + Σ_{j→i} x_j` over the edges as given (the `nn` follows as
//! separate ops). Integer form (see [`crate::format::Op::GinAggregate`]):
//! `acc = Σ (x_j − zp)·2^16 + one_plus_eps_q16·(x_i − zp)` in i64, then
//! `round_shift(acc, 8)` (keeping 8 fractional bits) and requantization.
//! Input and output may each be int4 (cargo feature `act-i4`): read and
//! written packed in place, the same values as the int8 form gives on the
//! unpacked input, saturated to −8..=7 on output.

use serde::{Deserialize, Serialize};

use super::{
    region_bytes, zip_rows, Check, Ctx, Env, In, OpDef, Out, Scratch, Shapes, Src, Tensors,
};
use crate::error::Result;
use crate::format::TensorKind;
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
    for (i, (xr, or)) in zip_rows(x.data, ch, out.data, out.channels).enumerate() {
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

/// [`run`] with an int4 input (`x_packed`) or output (cargo feature
/// `act-i4`): row by row, value by value.
#[cfg(feature = "act-i4")]
fn run_i4(
    ctx: &Ctx<'_>,
    op: &GinAggregate,
    (x, x_packed): (In<'_>, bool),
    out: Out<'_>,
    mut scratch: Scratch<'_>,
) -> Result<()> {
    use crate::kernels::act_i4::{row_bytes, set_value, value_at};
    let ch = x.channels;
    let acc = scratch.take::<i64>(ch)?;
    let xb: &[u8] = bytemuck::cast_slice(x.data);
    let in_rb = if x_packed { row_bytes(ch) } else { ch };
    let out_packed = out.is_packed();
    let out_rb = if out_packed { row_bytes(ch) } else { ch };
    let ob: &mut [u8] = bytemuck::cast_slice_mut(out.data);
    let (zp, eps) = (i64::from(x.zp), i64::from(op.one_plus_eps_q16));
    for (i, or) in ob.chunks_exact_mut(out_rb.max(1)).enumerate().take(x.rows) {
        let Some(xr) = xb.get(i.saturating_mul(in_rb)..i.saturating_add(1).saturating_mul(in_rb))
        else {
            break;
        };
        acc.fill(0);
        if x_packed {
            aggregate::sum_rows_i4(&ctx.csr, i, xb, x.zp, acc);
        } else {
            aggregate::sum_rows_i8(&ctx.csr, i, x.data, x.zp, acc);
        }
        or.fill(0);
        for (c, a) in acc.iter().enumerate() {
            let xi = if x_packed {
                value_at(xr, c)
            } else {
                xr.get(c).map_or(0, |&b| b as i8)
            };
            let total = a
                .saturating_mul(1 << 16)
                .saturating_add(eps * (i64::from(xi) - zp));
            let v = round_shift_i64_to_i32(total, 16 - AGG_FRAC_BITS);
            let q = requant::requantize(v, op.mult, op.shift, out.zp);
            if out_packed {
                set_value(or, c, q);
            } else if let Some(o) = or.get_mut(c) {
                *o = q as u8;
            }
        }
    }
    Ok(())
}

/// The aggregation half of GINConv (the `nn` follows as separate ops):
/// `acc_i[c] = Σ_{j→i} (x_jc − zp)·2^16 + one_plus_eps_q16·(x_ic − zp)` (i64),
/// `out = saturate_i8(requant(round_shift_i64_to_i32(acc, 8), mult, shift) + zp_out)`.
/// Same channel count in and out; edges as given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GinAggregate {
    /// Input node tensor.
    pub input: u8,
    /// Output node tensor.
    pub output: u8,
    /// `round((1 + eps) · 2^16)`.
    pub one_plus_eps_q16: i32,
    /// Q31 rescale `s_x / (s_out · 2^8)`.
    pub mult: i32,
    /// Its exponent.
    pub shift: i32,
}

impl OpDef for GinAggregate {
    /// One round of message passing along the edges.
    fn hops(&self) -> Option<u8> {
        Some(1)
    }
    fn name(&self) -> &'static str {
        "gin_aggregate"
    }
    fn output(&self) -> u8 {
        self.output
    }
    fn for_each_input(&self, f: &mut dyn FnMut(u8)) {
        f(self.input)
    }
    fn takes_i4(&self) -> bool {
        cfg!(feature = "act-i4")
    }
    fn check(&self, c: &Check<'_>) -> Option<()> {
        let (i, o) = (c.tensor(self.input)?, c.tensor(self.output)?);
        Check::ok(
            i.kind == TensorKind::Node && o.kind == TensorKind::Node && i.channels == o.channels,
        )
    }
    fn scratch_bytes(&self, s: &Shapes<'_>) -> usize {
        scratch_bytes(s.ch(self.input))
    }
    fn run<'v, T: Tensors<'v>>(
        &self,
        env: &Env<'_, T>,
        out: Out<'_>,
        scratch: Scratch<'_>,
    ) -> Result<()> {
        let x = match env.src(self.input)? {
            Src::Dense(x) => x,
            #[cfg(feature = "act-i4")]
            Src::Packed(x) => {
                return run_i4(env.ctx, self, (x, true), out, scratch);
            }
            Src::Sparse(_) => return Err(env.invalid()),
        };
        #[cfg(feature = "act-i4")]
        if out.is_packed() {
            return run_i4(env.ctx, self, (x, false), out, scratch);
        }
        run(
            env.ctx,
            self.one_plus_eps_q16,
            self.mult,
            self.shift,
            x,
            out,
            scratch,
        )
    }
}
