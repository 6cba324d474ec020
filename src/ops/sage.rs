//! `SageConv` — PyG `SAGEConv` (`project=False`):
//! `out_i = lin_l(AGG_{j→i} x_j) + lin_r(x_i)`, optional L2 normalisation of
//! each output row; edges as given (no self-loops added, duplicates counted),
//! empty neighbourhoods aggregate to 0.
//!
//! Integer form (see [`crate::format::Op::SageConv`]): for `Sum`/`Mean` the
//! linear map is applied first (`hl = Wl x`, exact in i32, summed in i64,
//! `Mean` then `round_div` by the in-degree) — linear maps commute with sums,
//! so this equals `lin_l(mean x_j)` up to the final rounding; for `Max` the
//! element-wise int8 max is taken first. Then
//! `acc = sat_i32(agg) + Wr·(x_i − zp) + bias` (i32, saturating), activation,
//! and either requantization or, with `normalize`,
//! `out_c = round_div(127·acc_c, isqrt(Σ acc²))`.
//!
//! int4 tensors (cargo feature `act-i4`, not with `normalize`): the input is
//! read packed in place (`Max` takes the element-wise max of the unpacked
//! values); the output row is requantized as int8 and packed
//! (`kernels::act_i4::pack_row`), the same values `RowRequant::row_i4` gives.

use serde::{Deserialize, Serialize};

use super::{
    is_i2, is_i4, out_row_bytes, region_bytes, rows_mut, Check, Ctx, Env, OpDef, Out, Scratch,
    Shapes, Src, Tensors,
};
use crate::error::{Error, Result};
use crate::format::{Activation, Aggr, ChannelParams, Section, TensorKind};
use crate::kernels::dense_i4::Matrix;
use crate::kernels::{aggregate, requant};
use crate::quant::{isqrt_u128, round_div_i64, saturate_i8};

/// Output channels per pass of [`run`] at its least: for `Sum`/`Mean`
/// without `normalize`, as many as fit [`super::H_BLOCK_BYTES`] of `hl`
/// ([`super::block_channels`]); otherwise all (`Max` keeps no `hl`,
/// and `normalize` needs a row's every channel at once).
pub fn block_channels(aggr: Aggr, normalize: bool, nodes: usize, out_ch: usize) -> usize {
    if aggr == Aggr::Max || normalize {
        out_ch
    } else {
        super::block_channels(nodes, out_ch)
    }
}

/// Scratch taken by [`run`] for passes of `b` of `out_ch` channels: two
/// weight-sum rows (`b`), `hl` (`nodes × b` i32, not for `Max`), an i64
/// aggregation row, an int8 max row, the i32 accumulator and root rows
/// (`b`), and with `b < out_ch` the prepared channel records.
fn pass_scratch(aggr: Aggr, nodes: usize, in_ch: usize, out_ch: usize, b: usize) -> usize {
    let hl = if aggr == Aggr::Max {
        0
    } else {
        nodes.saturating_mul(b)
    };
    let prep = if b < out_ch { out_ch } else { 0 };
    region_bytes::<i32>(b)
        .saturating_mul(2)
        .saturating_add(region_bytes::<i32>(hl))
        .saturating_add(region_bytes::<i64>(b))
        .saturating_add(region_bytes::<i8>(in_ch))
        .saturating_add(region_bytes::<i32>(b).saturating_mul(2))
        .saturating_add(region_bytes::<requant::Prepared>(prep))
}

/// The least scratch [`run`] takes ([`block_channels`]), or with `wide`
/// the scratch of one pass over all `out_ch` channels.
pub fn scratch_bytes(
    aggr: Aggr,
    normalize: bool,
    (nodes, in_ch, out_ch): (usize, usize, usize),
    wide: bool,
) -> usize {
    let b = if wide {
        out_ch
    } else {
        block_channels(aggr, normalize, nodes, out_ch)
    };
    pass_scratch(aggr, nodes, in_ch, out_ch, b)
}

/// Weights and options of one SAGE layer.
#[derive(Debug, Clone, Copy)]
pub struct SageParams<'a> {
    /// Aggregation.
    pub aggr: Aggr,
    /// `lin_l` weights `[out_ch, in_ch]` (int8 or int4).
    pub wl: Matrix<'a>,
    /// `lin_r` weights, empty without root weight.
    pub wr: Matrix<'a>,
    /// Channel records.
    pub params: &'a [u8],
    /// Fused activation.
    pub act: Activation,
    /// L2-normalise rows.
    pub normalize: bool,
}

/// The scratch rows of one pass of [`run`] (`b` values each, `m` the input
/// width).
struct Rows<'s> {
    sums_l: &'s mut [i32],
    sums_r: &'s mut [i32],
    hl: &'s mut [i32],
    agg: &'s mut [i64],
    m: &'s mut [i8],
    acc: &'s mut [i32],
    root: &'s mut [i32],
}

/// Runs the convolution on `x` (dense, or for `Sum`/`Mean` the sparse model
/// input; `Max` with sparse input is [`Error::InvalidOp`], the session never
/// asks for it), in passes over blocks of output channels: the widest the
/// scratch holds, at least [`block_channels`] (per-channel requantization
/// makes the bytes the same). Not inlined: its frame stays out of the op
/// dispatch's (the static stack bound).
#[inline(never)]
pub fn run(
    ctx: &Ctx<'_>,
    p: SageParams<'_>,
    x: Src<'_>,
    mut out: Out<'_>,
    mut scratch: Scratch<'_>,
) -> Result<()> {
    let n = ctx.nodes();
    let (ic, oc) = (x.channels(), out.channels);
    let avail = scratch.available();
    let lean = block_channels(p.aggr, p.normalize, n, oc);
    let mut bw = oc;
    while bw > lean && pass_scratch(p.aggr, n, ic, oc, bw) > avail {
        bw -= 1;
    }
    let sums_l = scratch.take::<i32>(bw)?;
    let sums_r = scratch.take::<i32>(bw)?;
    let hl = scratch.take::<i32>(if p.aggr == Aggr::Max {
        0
    } else {
        n.saturating_mul(bw)
    })?;
    let agg = scratch.take::<i64>(bw)?;
    let m = scratch.take::<i8>(ic)?;
    let acc = scratch.take::<i32>(bw)?;
    let root = scratch.take::<i32>(bw)?;
    let prep = scratch.take_records(if bw < oc { oc } else { 0 })?;
    let rq = requant::prepare(p.params, prep.len(), p.act, out.zp, prep);
    if out.is_packed() && p.normalize {
        // (`takes_i4` is false with `normalize`: `Model::from_bytes` never
        // lets such a model through.)
        return Err(Error::InvalidOp { op: ctx.op });
    }
    let mut c0 = 0;
    while c0 < oc {
        let b = bw.min(oc - c0);
        let hb = if p.aggr == Aggr::Max {
            0
        } else {
            n.saturating_mul(b)
        };
        let (Some(sums_l), Some(sums_r), Some(hl), Some(agg), Some(acc), Some(root)) = (
            sums_l.get_mut(..b),
            sums_r.get_mut(..b),
            hl.get_mut(..hb),
            agg.get_mut(..b),
            acc.get_mut(..b),
            root.get_mut(..b),
        ) else {
            // (Sized by `scratch_bytes`: a short buffer is a bug, not a graph.)
            return Err(Error::InvalidOp { op: ctx.op });
        };
        let rows = Rows {
            sums_l,
            sums_r,
            hl,
            agg,
            m: &mut *m,
            acc,
            root,
        };
        let part = SageParams {
            wl: p.wl.rows(c0, b, ic),
            wr: p.wr.rows(c0, b, ic),
            ..p
        };
        pass(
            ctx,
            part,
            x,
            &mut out,
            rows,
            (c0, (b < oc).then(|| rq.part(c0, b))),
        )?;
        c0 += b;
    }
    Ok(())
}

/// One pass of [`run`] over channels `c0..c0 + b` (`p`'s weights are those
/// rows): whole rows requantized from `p.params` (`rq` `None`), a block of
/// them through its part of the prepared records.
#[inline(always)]
fn pass(
    ctx: &Ctx<'_>,
    p: SageParams<'_>,
    x: Src<'_>,
    out: &mut Out<'_>,
    r: Rows<'_>,
    (c0, rq): (usize, Option<requant::RowRequant<'_>>),
) -> Result<()> {
    let ic = x.channels();
    let packed = out.is_packed();
    let Rows {
        sums_l,
        sums_r,
        hl,
        agg,
        m,
        acc,
        root,
    } = r;
    let has_root = !p.wr.is_empty();
    // Max aggregates the rows of x itself: a dense or int4 input only.
    let max_x = match x {
        Src::Dense(d) => Some(d),
        Src::Sparse(_) if p.aggr == Aggr::Max => return Err(Error::InvalidOp { op: ctx.op }),
        Src::Sparse(_) => None,
        #[cfg(feature = "act-i4")]
        Src::Packed(d) => Some(d),
    };
    x.weight_sums(p.wl, sums_l);
    if p.aggr == Aggr::Max && !matches!(x, Src::Dense(_)) {
        // `wl.matvec` on the unpacked max row needs the sums `Src` leaves out.
        p.wl.weight_sums(ic, sums_l);
    }
    if has_root {
        x.weight_sums(p.wr, sums_r);
    }
    if p.aggr != Aggr::Max {
        x.matmul(p.wl, sums_l, hl);
    }
    let zp = out.zp;
    let row_bytes = out_row_bytes(out.channels, packed);
    for (i, or) in rows_mut(out.data, row_bytes).enumerate().take(x.rows()) {
        match p.aggr {
            Aggr::Sum | Aggr::Mean => {
                agg.fill(0);
                aggregate::sum_rows_i32(&ctx.csr, i, hl, agg);
                let count = ctx.csr.degree(i) as i64;
                for (a, s) in acc.iter_mut().zip(agg.iter()) {
                    let v = if p.aggr == Aggr::Mean {
                        if count == 0 {
                            0
                        } else {
                            round_div_i64(*s, count)
                        }
                    } else {
                        *s
                    };
                    *a = v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
                }
            }
            Aggr::Max => {
                if let Some(d) = max_x {
                    max_row(ctx, i, &x, m);
                    p.wl.matvec(ic, m, d.zp, sums_l, acc);
                }
            }
        }
        if has_root {
            x.matvec_row(p.wr, i, sums_r, root);
            for (a, &r) in acc.iter_mut().zip(root.iter()) {
                *a = a.saturating_add(r);
            }
        }
        write_row(&p, acc, root, or, zp, (c0, rq.as_ref()), packed);
    }
    Ok(())
}

/// Finishes output row `or` from `acc` (channels `c0..` of the pass):
/// the L2 normalisation, or requantization (a block of channels through
/// `rq`, whole rows from `p.params`), int4 rows packed through `root`'s
/// bytes (free again by then).
#[inline(always)]
#[cfg_attr(not(feature = "act-i4"), allow(unused_variables))]
fn write_row(
    p: &SageParams<'_>,
    acc: &mut [i32],
    root: &mut [i32],
    or: &mut [i8],
    zp: i8,
    (c0, rq): (usize, Option<&requant::RowRequant<'_>>),
    packed: bool,
) {
    if p.normalize {
        let mut sq: u128 = 0;
        let channels = acc.len();
        for (c, a) in acc.iter_mut().enumerate() {
            let (bias, _, _) = requant::channel_record_of(p.params, channels, c);
            *a = requant::activate(a.saturating_add(bias), p.act);
            let v = i128::from(*a);
            sq += (v * v) as u128;
        }
        let norm = isqrt_u128(sq) as i64;
        for (o, &a) in or.iter_mut().zip(acc.iter()) {
            let v = if norm == 0 {
                0
            } else {
                round_div_i64(127 * i64::from(a), norm)
            };
            *o = saturate_i8((v as i32).saturating_add(i32::from(zp)));
        }
    } else if let Some(rq) = &rq {
        // A block of channels: its records, into its columns.
        if !packed {
            rq.row(acc, or.get_mut(c0..).unwrap_or_default());
        }
        #[cfg(feature = "act-i4")]
        if packed {
            // `root` is free again: its first bytes hold the int8 values.
            let tmp: &mut [i8] = bytemuck::cast_slice_mut(&mut *root);
            let tmp = tmp.get_mut(..acc.len()).unwrap_or(&mut []);
            rq.row(acc, tmp);
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(or);
            for (k, &v) in tmp.iter().enumerate() {
                crate::kernels::act_i4::set_value(bytes, c0 + k, v);
            }
        }
    } else if packed {
        // `root` is free again: its first `oc` bytes hold the int8 row.
        #[cfg(feature = "act-i4")]
        {
            let tmp: &mut [i8] = bytemuck::cast_slice_mut(&mut *root);
            let tmp = tmp.get_mut(..acc.len()).unwrap_or(&mut []);
            requant::requantize_row(acc, p.params, p.act, zp, tmp);
            crate::kernels::act_i4::pack_row(tmp, bytemuck::cast_slice_mut(or));
        }
    } else {
        requant::requantize_row(acc, p.params, p.act, zp, or);
    }
}

/// `m = max_{j→i} x_j`, element-wise over the rows of a dense or int4 `x`
/// (the sparse input never comes here).
fn max_row(ctx: &Ctx<'_>, i: usize, x: &Src<'_>, m: &mut [i8]) {
    match x {
        Src::Dense(d) => aggregate::max_rows_i8(&ctx.csr, i, d.data, d.zp, m),
        #[cfg(feature = "act-i4")]
        Src::Packed(d) => {
            aggregate::max_rows_i4(&ctx.csr, i, bytemuck::cast_slice(d.data), d.zp, m)
        }
        Src::Sparse(_) => {}
    }
}

/// SAGEConv, node tensors only. Weights of `lin_l` and `lin_r` share one
/// scale per output channel so their i32 results add directly.
///
/// * `Sum`/`Mean`: `hl_j[c] = Σ_k Wl[c,k]·(x_jk − zp_x)`; `agg_i[c] = Σ_{j→i} hl_j[c]`
///   (i64), for `Mean` then `round_div_i64(agg, count)` (0 without neighbours).
/// * `Max`: `m_ik = max_{j→i} x_jk` (int8; `zp_x` without neighbours), then
///   `agg_i[c] = Σ_k Wl[c,k]·(m_ik − zp_x)`.
/// * `acc_i[c] = sat_i32(agg_i[c]) + Σ_k Wr[c,k]·(x_ik − zp_x) (if root) + bias[c]`.
/// * `normalize`: all channels share one scale; `n = isqrt(Σ_c acc²)` (after
///   the activation); `out_c = n = 0 ? 0 : round_div(127·acc_c, n)` and the output
///   tensor must have scale 1/127 and zero point 0 (mult/shift unused).
///   Otherwise activation and requantization as usual.
///
/// Edges are the graph's edges as given (no self-loops added, duplicates counted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SageConv {
    /// Input node tensor.
    pub input: u8,
    /// Output node tensor.
    pub output: u8,
    /// Aggregation.
    pub aggr: Aggr,
    /// int8 weights of `lin_l`, `[out_ch, in_ch]`.
    pub weights_l: Section,
    /// int8 weights of `lin_r`, `[out_ch, in_ch]`, or an empty section if no root weight.
    pub weights_r: Section,
    /// [`ChannelParams`] (bias is `lin_l.bias`).
    pub params: ChannelParams,
    /// Fused activation.
    pub act: Activation,
    /// L2-normalise each output row.
    pub normalize: bool,
}

impl OpDef for SageConv {
    /// One round of message passing along the edges.
    fn hops(&self) -> Option<u8> {
        Some(1)
    }
    fn name(&self) -> &'static str {
        "sage_conv"
    }
    fn output(&self) -> u8 {
        self.output
    }
    fn for_each_input(&self, f: &mut dyn FnMut(u8)) {
        f(self.input)
    }
    fn has_i4_weights(&self) -> bool {
        is_i4(&self.weights_l) || is_i4(&self.weights_r)
    }
    fn has_i2_weights(&self) -> bool {
        is_i2(&self.weights_l) || is_i2(&self.weights_r)
    }
    fn takes_sparse_input(&self) -> bool {
        self.aggr != Aggr::Max
    }
    fn takes_i4(&self) -> bool {
        // A normalised output has the fixed int8 scale 1/127.
        cfg!(feature = "act-i4") && !self.normalize
    }
    fn check(&self, c: &Check<'_>) -> Option<()> {
        let (i, o) = (c.tensor(self.input)?, c.tensor(self.output)?);
        let (ci, co) = (usize::from(i.channels), usize::from(o.channels));
        Check::ok(
            i.kind == TensorKind::Node
                && o.kind == TensorKind::Node
                && c.weights_ok(self.weights_l, co, ci)
                && (self.weights_r.len == 0 || c.weights_ok(self.weights_r, co, ci))
                && c.params_ok(self.params, co)
                && Check::act_ok(&self.act)
                && (!self.normalize || o.zero_point == 0),
        )
    }
    fn scratch_bytes(&self, s: &Shapes<'_>) -> usize {
        let shape = (s.nodes, s.ch(self.input), s.ch(self.output));
        scratch_bytes(self.aggr, self.normalize, shape, s.wide)
    }
    fn run<'v, T: Tensors<'v>>(
        &self,
        env: &Env<'_, T>,
        out: Out<'_>,
        scratch: Scratch<'_>,
    ) -> Result<()> {
        let params = SageParams {
            aggr: self.aggr,
            wl: env.data.matrix(self.weights_l),
            wr: env.data.matrix(self.weights_r),
            params: env.data.bytes(self.params),
            act: self.act,
            normalize: self.normalize,
        };
        run(env.ctx, params, env.src(self.input)?, out, scratch)
    }
}
