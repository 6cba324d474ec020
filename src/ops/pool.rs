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
use crate::kernels::attention::{exp_q30, softmax_alpha, softmax_recip};
use crate::kernels::requant;
use crate::quant::{round_div_i64, round_shift_i64_to_i32};

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

/// Attention pooling — PyG's `AttentionalAggregation(gate_nn, nn)` over the
/// nodes of each graph: `out_g = Σ_{i∈g} softmax_{i∈g}(gate_i) ⊙ x_i`, where
/// `gate` (node rows, 1 channel or the channels of `x`) and `x` are computed by
/// the ops before it (`gate_nn(x)`, `nn(x)`). A graph without nodes gives 0.
///
/// Per graph `g` and gate channel `k` (one gate channel applies to every
/// channel of `x`): `M = max_{i∈g} gate_ik`, `w_i = exp_q30((gate_ik − M)·gate_q16)`
/// (Q16 logit differences: `gate_q16 = round(s_gate·2^16)`), `R =
/// softmax_recip(Σ w_i)`, `α_i = softmax_alpha(w_i, R)` (Q30, see
/// [`crate::kernels::attention`]); `acc_c = Σ_{i∈g} α_i·(x_ic − zp_x)` (i64,
/// saturating), `out_gc = requantize(rs64(acc_c, 30), mult, shift, zp_out)`
/// with the Q31 rescale `s_x / s_out`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AttentionPool {
    /// The gate (node rows, 1 channel or `x`'s channel count).
    pub gate: u8,
    /// The values `x` (node rows).
    pub input: u8,
    /// Output (graph rows, `x`'s channels).
    pub output: u8,
    /// `round(s_gate · 2^16)`: one gate step as a Q16 logit.
    pub gate_q16: i32,
    /// Q31 rescale `s_x / s_out`.
    pub mult: i32,
    /// Its exponent.
    pub shift: i32,
}

/// Scratch of [`attention_pool`]: maxima (i64) and reciprocals (u64) per
/// gate channel, the accumulators (i64 per channel).
fn attention_scratch(gate_ch: usize, ch: usize) -> usize {
    let mut t = super::ScratchSize::default();
    t.add::<i64>(gate_ch).add::<u64>(gate_ch).add::<i64>(ch);
    t.0
}

/// Runs attention pooling.
#[inline(never)]
fn attention_pool(
    ctx: &Ctx<'_>,
    p: &AttentionPool,
    gate: In<'_>,
    x: In<'_>,
    out: Out<'_>,
    mut sc: Scratch<'_>,
) -> Result<()> {
    let (gc, ch) = (gate.channels, x.channels);
    let mx = sc.take::<i64>(gc)?;
    let recip = sc.take::<u64>(gc)?;
    let acc = sc.take::<i64>(ch)?;
    let n = ctx.nodes();
    let zg = i64::from(gate.zp);
    let gate_at = |i: usize, k: usize| -> i64 {
        gate.data
            .get(i.saturating_mul(gc).saturating_add(k))
            .map_or(zg, |&v| i64::from(v))
    };
    let step = i64::from(p.gate_q16);
    for (g, orow) in rows_mut(out.data, ch).enumerate() {
        mx.fill(i64::MIN);
        for i in (0..n).filter(|&i| graph_of(ctx, i) == g) {
            for (k, m) in mx.iter_mut().enumerate() {
                *m = (*m).max(gate_at(i, k));
            }
        }
        for (k, r) in recip.iter_mut().enumerate() {
            let m = mx.get(k).copied().unwrap_or(0);
            let mut s = 0u64;
            for i in (0..n).filter(|&i| graph_of(ctx, i) == g) {
                s = s.saturating_add(u64::from(exp_q30((gate_at(i, k) - m).saturating_mul(step))));
            }
            *r = softmax_recip(s);
        }
        acc.fill(0);
        for (i, xr) in rows(x.data, ch).enumerate() {
            if graph_of(ctx, i) != g {
                continue;
            }
            for (c, (a, &v)) in acc.iter_mut().zip(xr).enumerate() {
                let k = if gc == 1 { 0 } else { c };
                let m = mx.get(k).copied().unwrap_or(0);
                let rk = recip.get(k).copied().unwrap_or(0);
                let w = exp_q30((gate_at(i, k) - m).saturating_mul(step));
                let alpha = softmax_alpha(w, rk);
                *a = a.saturating_add(alpha.saturating_mul(i64::from(v) - i64::from(x.zp)));
            }
        }
        for (o, &a) in orow.iter_mut().zip(acc.iter()) {
            *o = requant::requantize(round_shift_i64_to_i32(a, 30), p.mult, p.shift, out.zp);
        }
    }
    Ok(())
}

impl OpDef for AttentionPool {
    fn name(&self) -> &'static str {
        "attention_pool"
    }
    fn output(&self) -> u8 {
        self.output
    }
    fn for_each_input(&self, f: &mut dyn FnMut(u8)) {
        f(self.gate);
        f(self.input);
    }
    fn check(&self, c: &Check<'_>) -> Option<()> {
        let (g, i, o) = (
            c.tensor(self.gate)?,
            c.tensor(self.input)?,
            c.tensor(self.output)?,
        );
        Check::ok(
            g.kind == TensorKind::Node
                && i.kind == TensorKind::Node
                && o.kind == TensorKind::Graph
                && i.channels == o.channels
                && (g.channels == 1 || g.channels == i.channels)
                && self.gate_q16 >= 0
                && (-32..=31).contains(&self.shift),
        )
    }
    fn scratch_bytes(&self, s: &Shapes<'_>) -> usize {
        attention_scratch(s.ch(self.gate), s.ch(self.input))
    }
    fn run<'v, T: Tensors<'v>>(
        &self,
        env: &Env<'_, T>,
        out: Out<'_>,
        scratch: Scratch<'_>,
    ) -> Result<()> {
        let (gate, x) = (env.view(self.gate)?, env.view(self.input)?);
        attention_pool(env.ctx, self, gate, x, out, scratch)
    }
}
