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

use super::{region_bytes, rows_mut, Ctx, Out, Scratch, Src};
use crate::error::{Error, Result};
use crate::format::{Activation, Aggr};
use crate::kernels::dense_i4::Matrix;
use crate::kernels::{aggregate, requant};
use crate::quant::{isqrt_u128, round_div_i64, saturate_i8};

/// Scratch taken by [`run`]: two weight-sum rows, `hl` (`nodes × out_ch` i32,
/// not for `Max`), an i64 aggregation row, an int8 max row, the i32
/// accumulator and root rows.
pub fn scratch_bytes(aggr: Aggr, nodes: usize, in_ch: usize, out_ch: usize) -> usize {
    let hl = if aggr == Aggr::Max {
        0
    } else {
        nodes.saturating_mul(out_ch)
    };
    region_bytes::<i32>(out_ch)
        .saturating_mul(2)
        .saturating_add(region_bytes::<i32>(hl))
        .saturating_add(region_bytes::<i64>(out_ch))
        .saturating_add(region_bytes::<i8>(in_ch))
        .saturating_add(region_bytes::<i32>(out_ch).saturating_mul(2))
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

/// Runs the convolution on `x` (dense, or for `Sum`/`Mean` the sparse model
/// input; `Max` with sparse input is [`Error::InvalidOp`], the session never
/// asks for it).
pub fn run(
    ctx: &Ctx<'_>,
    p: SageParams<'_>,
    x: Src<'_>,
    out: Out<'_>,
    mut scratch: Scratch<'_>,
) -> Result<()> {
    let n = ctx.nodes();
    let (ic, oc) = (x.channels(), out.channels);
    let sums_l = scratch.take::<i32>(oc)?;
    let sums_r = scratch.take::<i32>(oc)?;
    let hl_len = if p.aggr == Aggr::Max {
        0
    } else {
        n.saturating_mul(oc)
    };
    let hl = scratch.take::<i32>(hl_len)?;
    let agg = scratch.take::<i64>(oc)?;
    let m = scratch.take::<i8>(ic)?;
    let acc = scratch.take::<i32>(oc)?;
    let root = scratch.take::<i32>(oc)?;
    let has_root = !p.wr.is_empty();

    // Max aggregates int8 rows of x itself: dense input only.
    let dense_x = match x {
        Src::Dense(d) => Some(d),
        Src::Sparse(_) if p.aggr == Aggr::Max => return Err(Error::InvalidOp { op: ctx.op }),
        Src::Sparse(_) => None,
    };
    x.weight_sums(p.wl, sums_l);
    if has_root {
        x.weight_sums(p.wr, sums_r);
    }
    if p.aggr != Aggr::Max {
        x.matmul(p.wl, sums_l, hl);
    }
    for (i, or) in rows_mut(out.data, oc).enumerate().take(x.rows()) {
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
                if let Some(x) = dense_x {
                    aggregate::max_rows_i8(&ctx.csr, i, x.data, x.zp, m);
                    p.wl.matvec(ic, m, x.zp, sums_l, acc);
                }
            }
        }
        if has_root {
            x.matvec_row(p.wr, i, sums_r, root);
            for (a, &r) in acc.iter_mut().zip(root.iter()) {
                *a = a.saturating_add(r);
            }
        }
        if p.normalize {
            let mut sq: u128 = 0;
            let channels = acc.len();
            for (c, a) in acc.iter_mut().enumerate() {
                let (bias, _, _) = crate::channel_record_of(p.params, channels, c);
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
                *o = saturate_i8((v as i32).saturating_add(i32::from(out.zp)));
            }
        } else {
            requant::requantize_row(acc, p.params, p.act, out.zp, or);
        }
    }
    Ok(())
}
