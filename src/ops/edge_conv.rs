//! `EdgeConv` — PyG `EdgeConv(nn, aggr)` and `DynamicEdgeConv(nn, k, aggr)`
//! ("Dynamic Graph CNN for Learning on Point Clouds"): the message of an edge
//! `j→i` is `nn([x_i, x_j − x_i])`, aggregated by max, mean or sum; for
//! `DynamicEdgeConv` the edges are the kNN graph of the layer input, built
//! here with [`crate::kernels::knn`]. Exact integer semantics on
//! [`crate::format::Op::EdgeConv`].
//!
//! # The split first layer
//! With `W = [W_a | W_b]` (the columns acting on `x_i` and on `x_j − x_i`),
//! `W·[x_i, x_j − x_i] = (W_a − W_b)·x_i + W_b·x_j`. The host quantizes
//! `W_a − W_b` and `W_b` with **one** scale per output channel (the larger of
//! the two rows' ranges), so the two i32 products are in the same
//! accumulator scale `s_x·s_w[c]` and add exactly. Per run this op computes
//! `p_i = (W_a − W_b)·(x_i − zp)` once per target node and
//! `q_j = W_b·(x_j − zp)` once per edge, so each edge costs one `[H, in_ch]`
//! matvec and one `H`-vector add (plus the second layer, if any).
//!
//! `q_j` is recomputed per edge rather than kept for every node: an `N·H` i32
//! table (8 KiB for `shapes-dgcnn`'s 64 points × 32 channels) pushed the
//! arena plus the stack past the 16 KiB RAM of the Cortex-M0 board, where the
//! stack then grew into the arena (`docs/point-clouds.md`). The integers are
//! the same, so the result is bit-identical.
//!
//! # Streaming
//! Edges are processed per target node (the target-sorted CSR, or the kNN
//! list of the node), and the aggregate is accumulated in one i64 row, so no
//! per-edge storage is needed: the scratch is `O(H + O + N·k)` (the kNN
//! lists only with `k ≥ 1`), independent of the number of edges.

use super::{region_bytes, zip_rows, Ctx, In, Out, Scratch};
use crate::error::Result;
use crate::format::{Activation, Aggr};
use crate::kernels::dense_i4::Matrix;
use crate::kernels::{knn, requant};
use crate::model::channel_record_of;
use crate::quant::round_div_i64;

/// Shape of an [`crate::format::Op::EdgeConv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeConvShape {
    /// Input channels.
    pub in_ch: usize,
    /// First-layer channels `H`.
    pub hidden: usize,
    /// Output channels.
    pub out_ch: usize,
    /// kNN size (0: the graph's edges).
    pub k: usize,
}

/// Scratch taken by [`run`] for `nodes` nodes: biases, weight sums, the
/// per-edge vectors, the aggregate row and (with `k ≥ 1`) the kNN lists.
pub fn scratch_bytes(s: EdgeConvShape, nodes: usize) -> usize {
    let h = s.hidden;
    let o = s.out_ch;
    let mut b = region_bytes::<i32>(h) // bias1
        .saturating_add(region_bytes::<i32>(o)) // bias of the last layer
        .saturating_add(region_bytes::<i32>(h)) // sums of w_self
        .saturating_add(region_bytes::<i32>(h)) // sums of w_nbr
        .saturating_add(region_bytes::<i32>(o)) // sums of w2
        .saturating_add(region_bytes::<i32>(h)) // p
        .saturating_add(region_bytes::<i32>(h)) // a
        .saturating_add(region_bytes::<i8>(h)) // h
        .saturating_add(region_bytes::<i32>(o)) // m
        .saturating_add(region_bytes::<i64>(o)); // agg
    if s.k > 0 {
        b = b
            .saturating_add(region_bytes::<u16>(nodes.saturating_mul(s.k)))
            .saturating_add(region_bytes::<u16>(nodes))
            .saturating_add(region_bytes::<u32>(s.k));
    }
    b
}

/// Parameters of one EdgeConv run.
#[derive(Debug, Clone, Copy)]
pub struct EdgeConvParams<'a> {
    /// Aggregation.
    pub aggr: Aggr,
    /// kNN size (0: the graph's edges).
    pub k: usize,
    /// First-layer channels `H`.
    pub hidden: usize,
    /// `W_a − W_b`, `[H, in_ch]`.
    pub w_self: Matrix<'a>,
    /// `W_b`, `[H, in_ch]`.
    pub w_nbr: Matrix<'a>,
    /// First-layer channel records (`H` channels).
    pub params1: &'a [u8],
    /// First-layer activation.
    pub act1: Activation,
    /// Zero point of the hidden int8 vector.
    pub hidden_zp: i8,
    /// Second layer `[out_ch, H]`, if any.
    pub w2: Option<Matrix<'a>>,
    /// Second-layer channel records (`out_ch` channels).
    pub params2: &'a [u8],
    /// Second-layer activation.
    pub act2: Activation,
}

/// Decodes the biases of a channel-params section into `out`.
fn biases(params: &[u8], out: &mut [i32]) {
    let n = out.len();
    for (c, o) in out.iter_mut().enumerate() {
        *o = channel_record_of(params, n, c).0;
    }
}

/// Row `j` of the `[n, ch]` int8 input (`ch` values; empty if out of range).
#[inline]
fn x_row(x: &[i8], ch: usize, j: usize) -> &[i8] {
    let s = j.saturating_mul(ch);
    x.get(s..s.saturating_add(ch)).unwrap_or(&[])
}

/// Runs the op on every node.
pub fn run(
    ctx: &Ctx<'_>,
    p: EdgeConvParams<'_>,
    x: In<'_>,
    out: Out<'_>,
    mut scratch: Scratch<'_>,
) -> Result<()> {
    let (ic, hc, oc) = (x.channels, p.hidden, out.channels);
    let n = x.rows;
    let bias1 = scratch.take::<i32>(hc)?;
    let bias_last = scratch.take::<i32>(oc)?;
    let sums_s = scratch.take::<i32>(hc)?;
    let sums_n = scratch.take::<i32>(hc)?;
    let sums2 = scratch.take::<i32>(oc)?;
    let pv = scratch.take::<i32>(hc)?;
    let a = scratch.take::<i32>(hc)?;
    let h8 = scratch.take::<i8>(hc)?;
    let m = scratch.take::<i32>(oc)?;
    let agg = scratch.take::<i64>(oc)?;
    let (idx, cnt) = if p.k > 0 {
        let idx = scratch.take::<u16>(n.saturating_mul(p.k))?;
        let cnt = scratch.take::<u16>(n)?;
        let dist = scratch.take::<u32>(p.k)?;
        knn::knn(x.data, ic, n, ctx.batch, p.k, idx, cnt, dist);
        (&*idx, &*cnt)
    } else {
        (&[][..], &[][..])
    };

    biases(p.params1, bias1);
    let last_params = match p.w2 {
        Some(w2) => {
            w2.weight_sums(hc, sums2);
            p.params2
        }
        None => p.params1,
    };
    biases(last_params, bias_last);
    p.w_self.weight_sums(ic, sums_s);
    p.w_nbr.weight_sums(ic, sums_n);

    for (i, (xi, oi)) in zip_rows(x.data, ic, out.data, oc).enumerate() {
        p.w_self.matvec(ic, xi, x.zp, sums_s, pv);
        let nbrs: &[u16] = if p.k > 0 {
            let c = cnt.get(i).map_or(0, |&c| usize::from(c));
            let s = i.saturating_mul(p.k);
            idx.get(s..s.saturating_add(c)).unwrap_or(&[])
        } else {
            ctx.csr.neighbors(i)
        };
        let init = if p.aggr == Aggr::Max { i64::MIN } else { 0 };
        agg.fill(init);
        for &j in nbrs {
            // a = p_i + q_j, q_j = W_b·(x_j − zp) computed into `a` first.
            p.w_nbr
                .matvec(ic, x_row(x.data, ic, usize::from(j)), x.zp, sums_n, a);
            for (av, &pc) in a.iter_mut().zip(pv.iter()) {
                *av = pc.saturating_add(*av);
            }
            match p.w2 {
                Some(w2) => {
                    requant::requantize_row(a, p.params1, p.act1, p.hidden_zp, h8);
                    w2.matvec(hc, h8, p.hidden_zp, sums2, m);
                    for (mv, &b) in m.iter_mut().zip(bias_last.iter()) {
                        *mv = requant::activate(mv.saturating_add(b), p.act2);
                    }
                }
                None => {
                    for ((mv, &av), &b) in m.iter_mut().zip(a.iter()).zip(bias1.iter()) {
                        *mv = requant::activate(av.saturating_add(b), p.act1);
                    }
                }
            }
            match p.aggr {
                Aggr::Max => {
                    for (g, &mv) in agg.iter_mut().zip(m.iter()) {
                        *g = (*g).max(i64::from(mv));
                    }
                }
                Aggr::Sum | Aggr::Mean => {
                    for (g, &mv) in agg.iter_mut().zip(m.iter()) {
                        *g = g.saturating_add(i64::from(mv));
                    }
                }
            }
        }
        let count = nbrs.len() as i64;
        for (c, (o, &g)) in oi.iter_mut().zip(agg.iter()).enumerate() {
            let v = if count == 0 {
                0
            } else {
                match p.aggr {
                    Aggr::Max | Aggr::Sum => g,
                    Aggr::Mean => round_div_i64(g, count),
                }
            };
            let v = i32::try_from(v).unwrap_or(if v < 0 { i32::MIN } else { i32::MAX });
            let (_, mult, shift) = channel_record_of(last_params, oc, c);
            *o = requant::requantize(v, mult, shift, out.zp);
        }
    }
    Ok(())
}
