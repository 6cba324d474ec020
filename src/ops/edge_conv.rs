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

use serde::{Deserialize, Serialize};

use super::{
    is_i2, is_i4, region_bytes, zip_rows, Check, Ctx, Env, In, OpDef, Out, Scratch, Shapes, Tensors,
};
use crate::error::Result;
use crate::format::{Activation, Aggr, ChannelParams, Section, TensorKind};
use crate::kernels::dense_i4::Matrix;
use crate::kernels::requant::channel_record_of;
use crate::kernels::{knn, requant};
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

/// EdgeConv / DynamicEdgeConv (PyG `EdgeConv(nn, aggr)`,
/// `DynamicEdgeConv(nn, k, aggr)`), node tensors only, with
/// `nn = Linear → act1 [→ Linear → act2]` (BatchNorm folded). `H = hidden`.
/// See [`crate::ops::edge_conv`] and `docs/point-clouds.md`.
///
/// 1. Edges: with `k = 0` the graph's edges as given (`j→i`, duplicates
///    count, no self-loops added); with `k ≥ 1` the kNN graph of the
///    input ([`crate::kernels::knn`]): node `i` receives one edge from each
///    of its `min(k, n_g)` nearest points of its own graph (itself
///    included; squared distance on the int8 values, ties to the smaller
///    index).
/// 2. First layer, split: PyG's `W·[x_i, x_j − x_i] = (W_a − W_b)·x_i + W_b·x_j`.
///    Per node, `p_i[c] = Σ_k Ws[c,k]·(x_ik − zp_x)` (`w_self`, the
///    host-quantized `W_a − W_b`) and `q_j[c] = Σ_k Wn[c,k]·(x_jk − zp_x)`
///    (`w_nbr`, `W_b`); both share one scale per channel (in `params1`), so
///    per edge `a[c] = act1(sat_i32(sat_i32(p_i[c] + q_j[c]) + bias1[c]))`.
/// 3. With a second layer (`w2` not empty): `h[c] = saturate_i8(requant(a[c],
///    mult1[c], shift1[c]) + hidden_zp)` and
///    `m[c] = act2(sat_i32(Σ_k W2[c,k]·(h_k − hidden_zp) + bias2[c]))`;
///    otherwise `m = a` (and `H = out_ch`).
/// 4. Aggregation of the `m` over the in-edges of `i`: `Max` element-wise
///    max, `Sum` `sat_i32(Σ m)` (i64), `Mean` `sat_i32(round_div_i64(Σ m, count))`;
///    a node without in-edges gets 0 (PyG's empty aggregation).
/// 5. `out = saturate_i8(requant(agg, mult, shift) + zp_out)` with the
///    `(mult, shift)` of the last layer (`params2`, else `params1`; its bias
///    was added per edge).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EdgeConv {
    /// Input node tensor.
    pub input: u8,
    /// Output node tensor.
    pub output: u8,
    /// Aggregation.
    pub aggr: Aggr,
    /// 0: the graph's edges (EdgeConv); `k ≥ 1`: kNN graph (DynamicEdgeConv).
    pub k: u16,
    /// Channels `H` of the first layer (1..=`MAX_CHANNELS`).
    pub hidden: u16,
    /// Weights `[H, in_ch]` of `W_a − W_b` (int8 or int4).
    pub w_self: Section,
    /// Weights `[H, in_ch]` of `W_b` (same precision and scales as `w_self`).
    pub w_nbr: Section,
    /// [`ChannelParams`] of the first layer (`H` channels).
    pub params1: ChannelParams,
    /// Activation after the first layer.
    pub act1: Activation,
    /// Zero point of the int8 hidden vector (two layers only, else 0).
    pub hidden_zp: i8,
    /// Weights `[out_ch, H]` of the second layer, or empty (one layer).
    pub w2: Section,
    /// [`ChannelParams`] of the second layer (`out_ch`), or empty.
    pub params2: ChannelParams,
    /// Activation after the second layer (`None` with one layer).
    pub act2: Activation,
}

impl OpDef for EdgeConv {
    /// One round on the graph's edges; a kNN graph (DynamicEdgeConv) depends on every row.
    fn hops(&self) -> Option<u8> {
        (self.k == 0).then_some(1)
    }
    fn name(&self) -> &'static str {
        if self.k == 0 {
            "edge_conv"
        } else {
            "dynamic_edge_conv"
        }
    }
    fn output(&self) -> u8 {
        self.output
    }
    fn for_each_input(&self, f: &mut dyn FnMut(u8)) {
        f(self.input)
    }
    fn has_i4_weights(&self) -> bool {
        is_i4(&self.w_self) || is_i4(&self.w_nbr) || is_i4(&self.w2)
    }
    fn has_i2_weights(&self) -> bool {
        is_i2(&self.w_self) || is_i2(&self.w_nbr) || is_i2(&self.w2)
    }
    fn check(&self, c: &Check<'_>) -> Option<()> {
        let (i, o) = (c.tensor(self.input)?, c.tensor(self.output)?);
        let (ci, co) = (usize::from(i.channels), usize::from(o.channels));
        let h = usize::from(self.hidden);
        let first = (1..=crate::MAX_CHANNELS).contains(&h)
            && c.weights_ok(self.w_self, h, ci)
            && c.weights_ok(self.w_nbr, h, ci)
            && self.w_self.weight_bits() == self.w_nbr.weight_bits()
            && c.params_ok(self.params1, h)
            && Check::act_ok(&self.act1);
        let second = if self.w2.len == 0 {
            h == co && self.params2.len == 0 && self.act2 == Activation::None && self.hidden_zp == 0
        } else {
            c.weights_ok(self.w2, co, h)
                && c.params_ok(self.params2, co)
                && Check::act_ok(&self.act2)
        };
        Check::ok(i.kind == TensorKind::Node && o.kind == TensorKind::Node && first && second)
    }
    fn scratch_bytes(&self, s: &Shapes<'_>) -> usize {
        let shape = EdgeConvShape {
            in_ch: s.ch(self.input),
            hidden: usize::from(self.hidden),
            out_ch: s.ch(self.output),
            k: usize::from(self.k),
        };
        scratch_bytes(shape, s.nodes)
    }
    fn run<'v, T: Tensors<'v>>(
        &self,
        env: &Env<'_, T>,
        out: Out<'_>,
        scratch: Scratch<'_>,
    ) -> Result<()> {
        let p = EdgeConvParams {
            aggr: self.aggr,
            k: usize::from(self.k),
            hidden: usize::from(self.hidden),
            w_self: env.data.matrix(self.w_self),
            w_nbr: env.data.matrix(self.w_nbr),
            params1: env.data.bytes(self.params1),
            act1: self.act1,
            hidden_zp: self.hidden_zp,
            w2: env.data.matrix_opt(self.w2),
            params2: env.data.bytes(self.params2),
            act2: self.act2,
        };
        run(env.ctx, p, env.view(self.input)?, out, scratch)
    }
}
