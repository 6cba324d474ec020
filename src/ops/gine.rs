//! `GineConv` — the aggregation half of PyG `GINEConv(nn, eps, edge_dim)`
//! (eval mode): `(1 + eps)·x_i + Σ_{j→i} ReLU(x_j + lin(e_ji))` over the edges
//! as given; the `nn` follows as separate ops. Integer form (see
//! [`crate::format::Op::GineConv`]):
//!
//! * per edge (CSR position `p`, source `j`): `a[c] = lin(e_p)[c] + bias[c]`
//!   (i32, or `e_pc − zp_e + bias[c]` without `lin`), rescaled into units of
//!   `s_x / 2^8` by the channel's Q31 multiplier; the message is
//!   `max(0, (x_jc − zp_x)·2^8 + a'[c])`;
//! * `acc = (Σ messages)·2^8 + one_plus_eps_q16·(x_ic − zp_x)` in i64 (units
//!   `s_x / 2^16`), then `round_shift(acc, 8)` and requantization, exactly as
//!   [`super::gin`].
//!
//! The edge tensor's rows are in CSR order (the session places each edge's
//! features at its CSR position), so edge `p` of node `i`'s range is row `p`.

use super::{region_bytes, Ctx, In, Out, Scratch};
use serde::{Deserialize, Serialize};

use super::{is_i2, is_i4, Check, Env, OpDef, Shapes, Tensors};
use crate::error::{Error, Result};
use crate::format::{ChannelParams, Section, TensorKind, AGG_FRAC_BITS};
use crate::kernels::dense_i4::Matrix;
use crate::kernels::requant;
use crate::quant::{multiply_by_quantized_multiplier, round_shift_i64_to_i32};

/// The op's parameters, resolved from the model.
#[derive(Debug, Clone, Copy)]
pub struct GineParams<'a> {
    /// `round((1 + eps)·2^16)`.
    pub one_plus_eps_q16: i32,
    /// `lin` weights `[C, D]`, or `None` (then `D = C`).
    pub lin: Option<Matrix<'a>>,
    /// Channel params for `C` channels (edge bias and rescale).
    pub edge_params: &'a [u8],
    /// Output rescale.
    pub mult: i32,
    /// Its exponent.
    pub shift: i32,
}

/// Scratch taken by [`run`] for `channels` node channels: one i64 row, and
/// five i32 rows (lin output, weight sums, bias, multiplier, shift).
pub fn scratch_bytes(channels: usize, _edge_channels: usize) -> usize {
    region_bytes::<i64>(channels).saturating_add(region_bytes::<i32>(channels).saturating_mul(5))
}

/// Runs the aggregation.
pub fn run(
    ctx: &Ctx<'_>,
    p: GineParams<'_>,
    x: In<'_>,
    e: In<'_>,
    out: Out<'_>,
    mut scratch: Scratch<'_>,
) -> Result<()> {
    let c = x.channels;
    let d = e.channels;
    let bad = Error::InvalidOp { op: ctx.op };
    if out.channels != c || (p.lin.is_none() && d != c) {
        return Err(bad);
    }
    let acc = scratch.take::<i64>(c)?;
    let lin_out = scratch.take::<i32>(c)?;
    let sums = scratch.take::<i32>(c)?;
    let bias = scratch.take::<i32>(c)?;
    let mult = scratch.take::<i32>(c)?;
    let shift = scratch.take::<i32>(c)?;
    for (k, ((b, m), s)) in bias
        .iter_mut()
        .zip(mult.iter_mut())
        .zip(shift.iter_mut())
        .enumerate()
    {
        (*b, *m, *s) = requant::channel_record_of(p.edge_params, c, k);
    }
    if let Some(w) = p.lin {
        w.weight_sums(d, sums);
    }
    let zx = i32::from(x.zp);
    let eps = i64::from(p.one_plus_eps_q16);
    for i in 0..x.rows.min(out.rows) {
        acc.fill(0);
        for pos in ctx.csr.range(i) {
            let j = usize::from(ctx.csr.sources.get(pos).copied().ok_or(bad)?);
            let xj = x.data.get(j * c..j * c + c).ok_or(bad)?;
            let er = e.data.get(pos * d..pos * d + d).ok_or(bad)?;
            match p.lin {
                Some(w) => w.matvec(d, er, e.zp, sums, lin_out),
                None => {
                    for (o, &v) in lin_out.iter_mut().zip(er) {
                        *o = i32::from(v) - i32::from(e.zp);
                    }
                }
            }
            for (k, a) in acc.iter_mut().enumerate() {
                let (Some(&l), Some(&b), Some(&m), Some(&s), Some(&xv)) = (
                    lin_out.get(k),
                    bias.get(k),
                    mult.get(k),
                    shift.get(k),
                    xj.get(k),
                ) else {
                    return Err(bad);
                };
                let edge = multiply_by_quantized_multiplier(l.saturating_add(b), m, s);
                let msg = (i64::from(i32::from(xv) - zx) << AGG_FRAC_BITS) + i64::from(edge);
                *a = a.saturating_add(msg.max(0));
            }
        }
        let xi = x.data.get(i * c..i * c + c).ok_or(bad)?;
        let oi = out.data.get_mut(i * c..i * c + c).ok_or(bad)?;
        for ((o, &a), &xv) in oi.iter_mut().zip(acc.iter()).zip(xi) {
            let total = a
                .saturating_mul(1 << (16 - AGG_FRAC_BITS))
                .saturating_add(eps * (i64::from(xv) - i64::from(x.zp)));
            let v = round_shift_i64_to_i32(total, 16 - AGG_FRAC_BITS);
            *o = requant::requantize(v, p.mult, p.shift, out.zp);
        }
    }
    Ok(())
}

/// GINEConv (PyG `GINEConv(nn, eps, edge_dim)`, eval mode): the aggregation
/// `(1 + eps)·x_i + Σ_{j→i} ReLU(x_j + lin(e_ji))` (the `nn` follows as
/// separate ops, as for [`Op::GinAggregate`](crate::ops::Op::GinAggregate)). Node tensors `input` and
/// `output` have the same channel count `C`; `edge_attr` is the model's
/// edge-feature tensor ([`TensorKind::Edge`], `D` channels). Edges as given
/// (no self-loops added, duplicates counted). Per edge `j→i` (CSR row `p`):
///
/// 1. `a[c] = Σ_k We[c,k]·(e_pk − zp_e) + bias[c]` with `edge_weights`
///    (`[C, D]`, PyG's `lin`), or without `lin` (empty `edge_weights`,
///    then `D = C`) `a[c] = (e_pc − zp_e) + bias[c]` (i32, saturating add);
/// 2. `m[c] = max(0, (x_jc − zp_x)·2^8 + requant(a[c], c))`, with
///    `requant` the plain Q31 rescale of channel `c` of `edge_params`
///    (`s_e·s_w[c]·2^8 / s_x`, i.e. into units of `s_x / 2^8`), i64;
/// 3. `acc_i[c] = (Σ_p m[c])·2^8 + one_plus_eps_q16·(x_ic − zp_x)` (i64, saturating),
///    `out = saturate_i8(requant(round_shift_i64_to_i32(acc, 8), mult, shift) + zp_out)`,
///    as [`Op::GinAggregate`](crate::ops::Op::GinAggregate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GineConv {
    /// Input node tensor (`C` channels).
    pub input: u8,
    /// The edge-feature tensor (`D` channels).
    pub edge_attr: u8,
    /// Output node tensor (`C` channels).
    pub output: u8,
    /// `round((1 + eps) · 2^16)`.
    pub one_plus_eps_q16: i32,
    /// int8/int4 weights `[C, D]` of `lin`, or empty (no `lin`: `D = C`).
    pub edge_weights: Section,
    /// [`ChannelParams`] for `C` channels: `lin.bias` in the accumulator
    /// scale `s_e·s_w[c]` (0 without `lin`) and the Q31 rescale
    /// `s_e·s_w[c]·2^8 / s_x` (`s_w = 1` without `lin`).
    pub edge_params: ChannelParams,
    /// Q31 rescale `s_x / (s_out · 2^8)`.
    pub mult: i32,
    /// Its exponent.
    pub shift: i32,
}

impl OpDef for GineConv {
    /// One round of message passing along the edges.
    fn hops(&self) -> Option<u8> {
        Some(1)
    }
    fn name(&self) -> &'static str {
        "gine_conv"
    }
    fn output(&self) -> u8 {
        self.output
    }
    fn for_each_input(&self, f: &mut dyn FnMut(u8)) {
        f(self.input);
        f(self.edge_attr);
    }
    fn has_i4_weights(&self) -> bool {
        is_i4(&self.edge_weights)
    }
    fn has_i2_weights(&self) -> bool {
        is_i2(&self.edge_weights)
    }
    fn check(&self, c: &Check<'_>) -> Option<()> {
        let (i, e) = (c.tensor(self.input)?, c.tensor(self.edge_attr)?);
        let o = c.tensor(self.output)?;
        let (ch, d) = (usize::from(i.channels), usize::from(e.channels));
        let lin_ok = if self.edge_weights.len == 0 {
            d == ch
        } else {
            c.weights_ok(self.edge_weights, ch, d)
        };
        Check::ok(
            i.kind == TensorKind::Node
                && e.kind == TensorKind::Edge
                && o.kind == TensorKind::Node
                && i.channels == o.channels
                && lin_ok
                && c.params_ok(self.edge_params, ch),
        )
    }
    fn scratch_bytes(&self, s: &Shapes<'_>) -> usize {
        scratch_bytes(s.ch(self.input), s.ch(self.edge_attr))
    }
    fn run<'v, T: Tensors<'v>>(
        &self,
        env: &Env<'_, T>,
        out: Out<'_>,
        scratch: Scratch<'_>,
    ) -> Result<()> {
        let p = GineParams {
            one_plus_eps_q16: self.one_plus_eps_q16,
            lin: env.data.matrix_opt(self.edge_weights),
            edge_params: env.data.bytes(self.edge_params),
            mult: self.mult,
            shift: self.shift,
        };
        let (x, e) = (env.view(self.input)?, env.view(self.edge_attr)?);
        run(env.ctx, p, x, e, out, scratch)
    }
}
