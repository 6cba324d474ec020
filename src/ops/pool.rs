//! `GlobalPool` — PyG `global_add_pool`, `global_mean_pool`, `global_max_pool`:
//! node rows reduced per graph of the `batch` vector into graph rows; a graph
//! with no node gives 0 (add, mean) or `zp` (max, i.e. real 0).
//!
//! Integer form (see [`crate::format::Op::GlobalPool`]): `Add` requantizes
//! `Σ (x − zp)`; `Mean` requantizes `round_div(Σ (x − zp)·2^8, count)`; `Max`
//! copies the int8 maximum (same quantization in and out). The sums are exact
//! in i32 (`255 · 65535 < 2^31`).

use serde::{Deserialize, Serialize};

use super::{
    region_bytes, rows, rows_mut, Check, Ctx, Env, In, OpDef, Out, Scratch, Shapes, Tensors,
};
use crate::error::Result;
use crate::format::{Pool, TensorKind, AGG_FRAC_BITS};
use crate::kernels::requant;
use crate::quant::round_div_i64;

/// Scratch taken by [`run`]: `graphs × channels` i32 sums (none for `Max`).
pub fn scratch_bytes(pool: Pool, graphs: usize, channels: usize) -> usize {
    match pool {
        Pool::Max => 0,
        Pool::Add | Pool::Mean => region_bytes::<i32>(graphs.saturating_mul(channels)),
    }
}

/// Graph of node `i`.
fn graph_of(ctx: &Ctx<'_>, i: usize) -> usize {
    ctx.batch
        .and_then(|b| b.get(i))
        .map_or(0, |&g| usize::from(g))
}

/// Runs the pooling.
pub fn run(
    ctx: &Ctx<'_>,
    pool: Pool,
    mult: i32,
    shift: i32,
    x: In<'_>,
    out: Out<'_>,
    mut scratch: Scratch<'_>,
) -> Result<()> {
    let ch = x.channels;
    let g = ctx.graphs();
    match pool {
        Pool::Max => {
            out.data.fill(i8::MIN);
            for (i, xr) in rows(x.data, ch).enumerate() {
                let start = graph_of(ctx, i).saturating_mul(ch);
                if let Some(orow) = out.data.get_mut(start..start.saturating_add(ch)) {
                    for (o, &v) in orow.iter_mut().zip(xr) {
                        *o = (*o).max(v);
                    }
                }
            }
            for (orow, &count) in rows_mut(out.data, ch).zip(ctx.graph_nodes) {
                if count == 0 {
                    orow.fill(out.zp);
                }
            }
        }
        Pool::Add | Pool::Mean => {
            let sums = scratch.take::<i32>(g.saturating_mul(ch))?;
            let zp = i32::from(x.zp);
            for (i, xr) in rows(x.data, ch).enumerate() {
                let start = graph_of(ctx, i).saturating_mul(ch);
                if let Some(srow) = sums.get_mut(start..start.saturating_add(ch)) {
                    for (s, &v) in srow.iter_mut().zip(xr) {
                        *s = s.saturating_add(i32::from(v) - zp);
                    }
                }
            }
            for ((orow, srow), &count) in rows_mut(out.data, out.channels)
                .zip(sums.chunks_exact(ch.max(1)))
                .zip(ctx.graph_nodes)
            {
                for (o, &s) in orow.iter_mut().zip(srow) {
                    let acc = if pool == Pool::Add {
                        s
                    } else if count == 0 {
                        0
                    } else {
                        let q = round_div_i64(i64::from(s) << AGG_FRAC_BITS, i64::from(count));
                        q.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
                    };
                    *o = requant::requantize(acc, mult, shift, out.zp);
                }
            }
        }
    }
    Ok(())
}

/// Global pooling of node rows into graph rows, by the batch vector.
/// * `Add`: `acc = sat_i32(Σ (x − zp))`, requant with `s_x / s_out`.
/// * `Mean`: `acc = sat_i32(round_div_i64(Σ (x − zp) · 2^8, count))` (0 if empty),
///   requant with `s_x / (s_out·2^8)`.
/// * `Max`: `max x` (`zp` if the graph has no node); the output must have the
///   input's scale and zero point (mult/shift unused).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GlobalPool {
    /// Input node tensor.
    pub input: u8,
    /// Output graph tensor (same channels).
    pub output: u8,
    /// Reduction.
    pub pool: Pool,
    /// Q31 rescale.
    pub mult: i32,
    /// Its exponent.
    pub shift: i32,
}

impl OpDef for GlobalPool {
    fn name(&self) -> &'static str {
        "global_pool"
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
            i.kind == TensorKind::Node
                && o.kind == TensorKind::Graph
                && i.channels == o.channels
                && (self.pool != Pool::Max || i.zero_point == o.zero_point),
        )
    }
    fn scratch_bytes(&self, s: &Shapes<'_>) -> usize {
        scratch_bytes(self.pool, s.graphs, s.ch(self.input))
    }
    fn run<'v, T: Tensors<'v>>(
        &self,
        env: &Env<'_, T>,
        out: Out<'_>,
        scratch: Scratch<'_>,
    ) -> Result<()> {
        let x = env.view(self.input)?;
        run(env.ctx, self.pool, self.mult, self.shift, x, out, scratch)
    }
}
