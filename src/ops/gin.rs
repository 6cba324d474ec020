//! `GinAggregate` — the aggregation half of PyG `GINConv`:
//! `(1 + eps)·x_i + Σ_{j→i} x_j` over the edges as given (the `nn` follows as
//! separate ops). Integer form (see [`crate::format::Op::GinAggregate`]):
//! `acc = Σ (x_j − zp)·2^16 + one_plus_eps_q16·(x_i − zp)` in i64, then
//! `round_shift(acc, 8)` (keeping 8 fractional bits) and requantization.

use serde::{Deserialize, Serialize};

use super::{region_bytes, zip_rows, Check, Ctx, Env, In, OpDef, Out, Scratch, Shapes, Tensors};
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
    fn name(&self) -> &'static str {
        "gin_aggregate"
    }
    fn output(&self) -> u8 {
        self.output
    }
    fn for_each_input(&self, f: &mut dyn FnMut(u8)) {
        f(self.input)
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
        let x = env.view(self.input)?;
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
