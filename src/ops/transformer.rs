//! `TransformerConv` — PyG's `TransformerConv` (eval mode): multi-head
//! scaled dot-product attention over each node's in-edges,
//! `α_ji = softmax_j(q_i·k_j / √C)`, `out_i = Σ_j α_ji v_j`, heads
//! concatenated or averaged, plus the root weight `lin_skip(x_i)`, gated by
//! `beta`; with `edge_dim`, `lin_edge(e_ji)` is added to the key and the value
//! of each edge.
//!
//! Integer form (exact semantics on [`TransformerConv`]): the projections are
//! exact i32 accumulators; queries and keys are shifted to i16 so that their
//! dot products stay within i64; the logits are Q16 and the softmax is GAT's
//! ([`crate::kernels::attention::exp_q30`], one integer reciprocal per node
//! and head). The
//! values and the root weight share one scale per output channel, so the
//! attention output and the skip term add in one accumulator and are
//! requantized once. Keys and values are kept for every node; a node's query
//! is computed when the node is reached, and the in-edges are walked three
//! times (maximum, sum, weighted sum), recomputing the logits.

use serde::{Deserialize, Serialize};

use super::{is_i2, is_i4, Check, Ctx, Env, In, OpDef, Out, Scratch, Shapes, Tensors};
use crate::error::Result;
use crate::format::{Activation, ChannelParams, Section, TensorKind};
use crate::kernels::attention::{
    exp_q30, per_head, read_i32, rescale_logit, sigmoid_q30, softmax_alpha, softmax_recip,
};
use crate::kernels::dense_i4::Matrix;
use crate::kernels::requant;
use crate::quant::{round_div_i64, round_shift_i64_to_i32};

/// TransformerConv (PyG semantics, eval mode), node tensors (and the edge
/// tensor with [`TransformerEdge`]). `H = heads`, `C` channels per head
/// (`out_ch / H` with `concat`, `out_ch` without), `HC = H·C`.
///
/// 1. Projections of every node `j` (i32, exact; `b*` the i32 biases in
///    `lin_bias`, `[bq | bk | bv]`, each `HC`): `q_j = Wq·(x_j − zp_x) + bq`,
///    `k_j = Wk·(x_j − zp_x) + bk`, `v_j = Wv·(x_j − zp_x) + bv`; then
///    `q̂ = sat_i16(rs(q, q_shift))`, `k̂ = sat_i16(rs(k, k_shift))` with
///    `rs(a, s) = floor((a + 2^(s−1)) / 2^s)` (`a` for `s = 0`).
/// 2. The logit of edge `j→i`, head `h`, in Q16:
///    `e = rq(Σ_{c<C} q̂_i[hC+c]·k̂_j[hC+c], logit_mult, logit_shift)`
///    (`rq` as GAT's [`rescale_logit`]).
/// 3. Over the in-edges of `i` as given (duplicates count, no loops added),
///    or with `global` over every node `j` of `i`'s graph (`batch[j] =
///    batch[i]`, `i` included, in node order), per head: `M = max e`, `w = exp_q30(e − M)`, `R = softmax_recip(Σ w)`,
///    `α = softmax_alpha(w, R)` (Q30; see [`crate::kernels::attention`]);
///    `agg[hC+c] = Σ_j α·v_j[hC+c]` (i64, saturating).
/// 4. With `concat`: `t[q] = rs64(agg[q], 30)` for `q < HC`; without:
///    `t[c] = round_div(Σ_h agg[hC+c], H·2^30)`; a node without in-edges has
///    `t = 0`. With a root weight (`w_skip` not empty, `[out_ch, in_ch]`),
///    `t += Ws·(x_i − zp_x)` (saturating i32).
///    With `beta` (PyG's `beta=True`, root weight only), instead: `a = t`
///    (the attention part) and `r = Ws·(x_i − zp_x) + bs` (`bs`: `lin_skip`'s
///    bias, the last `out_ch` values of `lin_bias`), the Q16 gate logit
///    `g = Σ_c rq(a[c], βa_m[c], βa_s[c]) + rq(r[c], βr_m[c], βr_s[c])` (i64;
///    PyG's `lin_beta(cat[a, r, a − r])` folded per channel), `b =`
///    [`sigmoid_q30`]`(g)` and `t[c] = clamp_i32(rs64(b·r[c] + (2^30 − b)·a[c], 30))`.
/// 5. `out = requantize_row(t, params, act, zp_out)` (the records hold
///    `lin_skip`'s bias, zero with `beta`; `Wv` and `Ws` share the scale of each output
///    channel, `Wv`'s heads one scale with `concat` false).
///
/// With edge features ([`TransformerEdge`], not with `global`), edge `j→i` at
/// CSR position `p`, row `q` of `HC`: `a_pq = Σ_d We[q,d]·(e_pd − zp_e)` (i64);
/// its key is `sat_i16(k̂_j[q] + sat_i16(rs(rq(a_pq, mk[q], sk[q]), k_shift)))`
/// in place of `k̂_j[q]` and its value `sat_i32(v_j[q] + rq(a_pq, mv[q], sv[q]))`
/// in place of `v_j[q]` (`rq` as [`rescale_logit`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TransformerConv {
    /// Input tensor (node features).
    pub input: u8,
    /// Output tensor.
    pub output: u8,
    /// Heads `H` (≥ 1).
    pub heads: u8,
    /// Concatenate the heads (else average them).
    pub concat: bool,
    /// Attend to every node of the node's own graph (itself included; the
    /// `batch` vector decides) instead of its in-edges: the global attention
    /// of a graph transformer (`torch.nn.MultiheadAttention` over each graph's
    /// nodes, as PyG's `GPSConv` runs it).
    pub global: bool,
    /// `lin_query`, `[HC, in_ch]` (int8 or int4).
    pub w_query: Section,
    /// `lin_key`, `[HC, in_ch]`.
    pub w_key: Section,
    /// `lin_value`, `[HC, in_ch]`.
    pub w_value: Section,
    /// `lin_skip`, `[out_ch, in_ch]`; empty without a root weight.
    pub w_skip: Section,
    /// i32 little endian `bq`, `bk`, `bv` (`3·HC` values, accumulator units),
    /// with `beta` followed by `lin_skip`'s bias `bs` (`out_ch` values).
    pub lin_bias: Section,
    /// Right shift of the query accumulators to i16 (0..=31).
    pub q_shift: u8,
    /// Right shift of the key accumulators to i16 (0..=31).
    pub k_shift: u8,
    /// Q31 multiplier of `Σ q̂·k̂` to the Q16 logit.
    pub logit_mult: i32,
    /// Its exponent (−32..=31).
    pub logit_shift: i32,
    /// [`ChannelParams`] for `out_ch` channels.
    pub params: ChannelParams,
    /// Fused activation.
    pub act: Activation,
    /// Edge features (PyG's `edge_dim`): `lin_edge(e_ji)` added to the key and
    /// the value of each edge.
    pub edge: Option<TransformerEdge>,
    /// PyG's `beta=True` (with a root weight only): i32 little endian `(m, s)`
    /// per output channel for the attention part, then per output channel for
    /// the root term, mapping each into the Q16 gate logit (`16·out_ch`
    /// bytes); empty without the gate.
    pub beta: Section,
}

/// The edge features of a [`TransformerConv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TransformerEdge {
    /// The edge-feature tensor ([`TensorKind::Edge`], `D` channels).
    pub edge_attr: u8,
    /// int8 `lin_edge` weights `We[HC, D]` (one scale per row).
    pub weights: Section,
    /// i32 little endian `(m, s)` per row of `HC` into the key accumulator
    /// units, then per row into the value accumulator units (`16·HC` bytes).
    pub rescale: Section,
}

/// Shape of one layer: heads, channels per head.
#[derive(Debug, Clone, Copy)]
struct Shape {
    heads: usize,
    per_head: usize,
}

impl Shape {
    fn hc(&self) -> usize {
        self.heads.saturating_mul(self.per_head)
    }
}

impl TransformerConv {
    fn shape(&self, out_ch: usize) -> Option<Shape> {
        let heads = usize::from(self.heads);
        let per_head = per_head(heads, self.concat, out_ch)?;
        Some(Shape { heads, per_head })
    }
}

/// Scratch taken by [`run`]: weight sums (`HC` i32 twice, `out_ch` i32),
/// one projection row (`HC` i32), the keys (`nodes × HC` i16) and values
/// (`nodes × HC` i32), per-head maxima (i64) and reciprocals (u64), the
/// aggregation row (`HC` i64), the output rows (`out_ch` i32 twice), the
/// query (`HC` i16) and the logits of one node's sources (`sources × H` i32;
/// `sources` is `nodes` for global attention, `edges` otherwise: a node has
/// at most that many).
fn scratch_bytes(s: Shape, nodes: usize, sources: usize, out_ch: usize) -> usize {
    let hc = s.hc();
    let nhc = nodes.saturating_mul(hc);
    let mut t = super::ScratchSize::default();
    t.add::<i32>(hc)
        .add::<i32>(hc)
        .add::<i32>(out_ch)
        .add::<i32>(hc)
        .add::<i16>(nhc)
        .add::<i32>(nhc)
        .add::<i64>(s.heads)
        .add::<u64>(s.heads)
        .add::<i64>(hc)
        .add::<i32>(out_ch)
        .add::<i32>(out_ch)
        .add::<i16>(hc)
        .add::<i32>(sources.saturating_mul(s.heads));
    t.0
}

/// `sat_i16(rs(a, s))`.
fn to_i16(a: i32, s: u8) -> i16 {
    let v = round_shift_i64_to_i32(i64::from(a), u32::from(s.min(31)));
    v.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

/// Weights and options resolved from the data section.
struct Params<'a> {
    s: Shape,
    concat: bool,
    global: bool,
    wq: Matrix<'a>,
    wk: Matrix<'a>,
    wv: Matrix<'a>,
    ws: Matrix<'a>,
    lin_bias: &'a [u8],
    q_shift: u8,
    k_shift: u8,
    logit_mult: i32,
    logit_shift: i32,
    params: &'a [u8],
    act: Activation,
    edge: Option<EdgeIn<'a>>,
    beta: &'a [u8],
}

/// The edge inputs of a layer ([`TransformerEdge`]).
struct EdgeIn<'a> {
    /// The edge tensor, rows in CSR order.
    e: In<'a>,
    /// int8 `We[HC, D]`.
    w: &'a [u8],
    /// `(m, s)` per row for the keys, then for the values.
    rescale: &'a [u8],
}

impl EdgeIn<'_> {
    /// Row `q` of `lin_edge` on the edge at CSR position `pos`, rescaled by
    /// the `(m, s)` pair number `at` (`q` for keys, `HC + q` for values).
    fn term(&self, pos: usize, q: usize, at: usize) -> i32 {
        let d = self.e.channels;
        let a = pos.saturating_mul(d);
        let row = self.e.data.get(a..a.saturating_add(d)).unwrap_or(&[]);
        let b = q.saturating_mul(d);
        let w = self.w.get(b..b.saturating_add(d)).unwrap_or(&[]);
        let zp = i64::from(self.e.zp);
        let acc = row.iter().zip(w).fold(0i64, |s, (&v, &wb)| {
            s.saturating_add(i64::from(wb as i8) * (i64::from(v) - zp))
        });
        rescale_logit(
            acc,
            read_i32(self.rescale, 2 * at),
            read_i32(self.rescale, 2 * at + 1),
        )
    }
}

/// Runs the convolution: keys and values of every node, then node by node
/// the query, the attention ([`attend`]), the root term and the output row.
/// Not inlined into the op dispatch: its locals would otherwise widen the
/// dispatch's frame for every op.
#[inline(never)]
fn run(ctx: &Ctx<'_>, p: &Params<'_>, x: In<'_>, out: Out<'_>, mut sc: Scratch<'_>) -> Result<()> {
    let n = ctx.nodes();
    let hc = p.s.hc();
    let (ic, oc) = (x.channels, out.channels);
    let sums = sc.take::<i32>(hc)?;
    let sums_q = sc.take::<i32>(hc)?;
    let sums_s = sc.take::<i32>(oc)?;
    let q = sc.take::<i32>(hc)?;
    let k = sc.take::<i16>(n.saturating_mul(hc))?;
    let v = sc.take::<i32>(n.saturating_mul(hc))?;
    p.wk.weight_sums(ic, sums);
    for (j, kr) in k.chunks_exact_mut(hc.max(1)).enumerate() {
        let xr = x.data.get(j * ic..(j + 1) * ic).unwrap_or(&[]);
        p.wk.matvec(ic, xr, x.zp, sums, q);
        shift_row(q, p.lin_bias, hc, p.k_shift, kr);
    }
    p.wv.weight_sums(ic, sums);
    p.wv.matmul(ic, x.data, x.zp, sums, v);
    add_bias(v, p.lin_bias, hc);
    p.wq.weight_sums(ic, sums_q);
    p.ws.weight_sums(ic, sums_s);
    let mx = sc.take::<i64>(p.s.heads)?;
    let recip = sc.take::<u64>(p.s.heads)?;
    let agg = sc.take::<i64>(hc)?;
    let t = sc.take::<i32>(oc)?;
    let skip = sc.take::<i32>(oc)?;
    let q16 = sc.take::<i16>(hc)?;
    let sources = if p.global { n } else { ctx.csr.sources.len() };
    let lg = sc.take::<i32>(sources.saturating_mul(p.s.heads))?;
    for (i, or) in out.data.chunks_exact_mut(oc.max(1)).enumerate() {
        let xr = x.data.get(i * ic..(i + 1) * ic).unwrap_or(&[]);
        p.wq.matvec(ic, xr, x.zp, sums_q, q);
        shift_row(q, p.lin_bias, 0, p.q_shift, q16);
        let w = Work {
            mx,
            recip,
            agg,
            t,
            lg: &mut *lg,
        };
        let srcs = if p.global {
            Sources::Graph {
                batch: ctx.batch,
                graph: ctx.batch.and_then(|b| b.get(i)).copied().unwrap_or(0),
                nodes: n,
            }
        } else {
            Sources::Edges(ctx.csr.neighbors(i), ctx.csr.range(i))
        };
        attend(&srcs, p, q16, k, v, w);
        if !p.ws.is_empty() {
            p.ws.matvec(ic, xr, x.zp, sums_s, skip);
            if !p.beta.is_empty() {
                for (c, r) in skip.iter_mut().enumerate() {
                    *r = r.saturating_add(read_i32(p.lin_bias, 3 * hc + c));
                }
            }
            root(p.beta, t, skip);
        }
        requant::requantize_row(t, p.params, p.act, out.zp, or);
    }
    Ok(())
}

/// Adds the root term `r` to the attention part `t`, through the `beta` gate
/// when there is one (step 4 of [`TransformerConv`]).
fn root(beta: &[u8], t: &mut [i32], r: &[i32]) {
    if beta.is_empty() {
        for (o, &s) in t.iter_mut().zip(r) {
            *o = o.saturating_add(s);
        }
        return;
    }
    let oc = t.len();
    let mut g = 0i64;
    for (c, (&a, &b)) in t.iter().zip(r).enumerate() {
        let ga = rescale_logit(
            i64::from(a),
            read_i32(beta, 2 * c),
            read_i32(beta, 2 * c + 1),
        );
        let at = 2 * (oc + c);
        let gb = rescale_logit(i64::from(b), read_i32(beta, at), read_i32(beta, at + 1));
        g = g
            .saturating_add(i64::from(ga))
            .saturating_add(i64::from(gb));
    }
    let b = sigmoid_q30(g);
    for (o, &s) in t.iter_mut().zip(r) {
        let m = b * i64::from(s) + ((1i64 << 30) - b) * i64::from(*o);
        *o = round_shift_i64_to_i32(m, 30);
    }
}

/// `dst = sat_i16(rs(acc + bias[off..], shift))`, row by row.
fn shift_row(acc: &[i32], lin_bias: &[u8], off: usize, shift: u8, dst: &mut [i16]) {
    for (cq, (d, &a)) in dst.iter_mut().zip(acc).enumerate() {
        *d = to_i16(a.saturating_add(read_i32(lin_bias, off + cq)), shift);
    }
}

/// Adds `bv` to every row of the values.
fn add_bias(v: &mut [i32], lin_bias: &[u8], hc: usize) {
    for vr in v.chunks_exact_mut(hc.max(1)) {
        for (q, d) in vr.iter_mut().enumerate() {
            *d = d.saturating_add(read_i32(lin_bias, 2 * hc + q));
        }
    }
}

/// The nodes a node attends to.
enum Sources<'a> {
    /// The sources of its in-edges and their CSR positions.
    Edges(&'a [u16], core::ops::Range<usize>),
    /// Every node of its graph.
    Graph {
        batch: Option<&'a [u16]>,
        graph: u16,
        nodes: usize,
    },
}

impl Sources<'_> {
    /// The source nodes, in order.
    fn iter(&self) -> SourceIter<'_> {
        match *self {
            Sources::Edges(e, ref r) => SourceIter::Edges(e.iter(), r.clone()),
            Sources::Graph {
                batch,
                graph,
                nodes,
            } => SourceIter::Graph {
                batch,
                graph,
                next: 0,
                nodes,
            },
        }
    }
}

/// The iterator of [`Sources::iter`].
enum SourceIter<'a> {
    Edges(core::slice::Iter<'a, u16>, core::ops::Range<usize>),
    Graph {
        batch: Option<&'a [u16]>,
        graph: u16,
        next: usize,
        nodes: usize,
    },
}

impl Iterator for SourceIter<'_> {
    /// A source node and, for an in-edge, its CSR position.
    type Item = (usize, Option<usize>);
    fn next(&mut self) -> Option<(usize, Option<usize>)> {
        match self {
            SourceIter::Edges(e, r) => Some((usize::from(*e.next()?), r.next())),
            SourceIter::Graph {
                batch,
                graph,
                next,
                nodes,
            } => {
                while *next < *nodes {
                    let j = *next;
                    *next += 1;
                    if batch.is_none_or(|b| b.get(j) == Some(graph)) {
                        return Some((j, None));
                    }
                }
                None
            }
        }
    }
}

/// Per-node scratch rows of [`attend`].
struct Work<'s> {
    mx: &'s mut [i64],
    recip: &'s mut [u64],
    agg: &'s mut [i64],
    t: &'s mut [i32],
    /// The logits, then the softmax weights, of the node's sources
    /// (`[source][head]`).
    lg: &'s mut [i32],
}

/// The Q16 logit of query `q` against source `j`'s key (plus the edge's
/// term at CSR position `pos`, with edge features), head `h`. Not inlined:
/// its 128-bit rescale would widen the frames of its callers on the M0.
#[inline(never)]
fn logit(p: &Params<'_>, q: &[i16], k: &[i16], (j, pos): (usize, Option<usize>), h: usize) -> i64 {
    let (c, hc) = (p.s.per_head, p.s.hc());
    let a = j.saturating_mul(hc).saturating_add(h * c);
    let kj = k.get(a..a.saturating_add(c)).unwrap_or(&[]);
    let qh = q.get(h * c..h * c + c).unwrap_or(&[]);
    // i16 products (< 2^30 each) over at most MAX_CHANNELS channels: the
    // sum stays far inside i64, so plain (wrapping) adds are exact.
    let dot = match (&p.edge, pos) {
        (Some(ed), Some(pos)) => qh
            .iter()
            .zip(kj)
            .enumerate()
            .fold(0i64, |s, (cc, (&a, &b))| {
                let e = to_i16(ed.term(pos, h * c + cc, h * c + cc), p.k_shift);
                let kk = i32::from(b).saturating_add(i32::from(e));
                let kk = kk.clamp(i32::from(i16::MIN), i32::from(i16::MAX));
                s.wrapping_add(i64::from(a) * i64::from(kk))
            }),
        _ => qh.iter().zip(kj).fold(0i64, |s, (&a, &b)| {
            s.wrapping_add(i64::from(a) * i64::from(b))
        }),
    };
    i64::from(rescale_logit(dot, p.logit_mult, p.logit_shift))
}

/// The attention of one node over its sources: the softmax per head and the
/// weighted sum of the values into `t` (steps 2-4), in three passes over the
/// sources (logits and maxima; softmax weights and reciprocals; weighted
/// sum), each its own (not inlined) function so that the deepest call chain
/// holds one small frame of them. The logits are computed once, into
/// `w.lg`, which has a row of `H` for every source the node can have.
#[inline(never)]
fn attend(srcs: &Sources<'_>, p: &Params<'_>, q: &[i16], k: &[i16], v: &[i32], w: Work<'_>) {
    let Work {
        mx,
        recip,
        agg,
        t,
        lg,
    } = w;
    logits(srcs, p, q, k, lg, mx);
    weights(srcs, p.s.heads, lg, mx, recip);
    weighted_sum(srcs, p, v, (lg, recip), agg);
    let (heads, c) = (p.s.heads, p.s.per_head);
    if p.concat {
        for (o, &a) in t.iter_mut().zip(agg.iter()) {
            *o = round_shift_i64_to_i32(a, 30);
        }
    } else {
        let div = (heads as i64) << 30;
        for (cc, o) in t.iter_mut().enumerate() {
            let mut s = 0i64;
            for h in 0..heads {
                s = s.saturating_add(agg.get(h * c + cc).copied().unwrap_or(0));
            }
            *o = round_div_i64(s, div).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        }
    }
}

/// `lg[s][h] = e` (the Q16 logit of source number `s`, head `h`) and
/// `mx[h] = max_s e`.
#[inline(never)]
fn logits(
    srcs: &Sources<'_>,
    p: &Params<'_>,
    q: &[i16],
    k: &[i16],
    lg: &mut [i32],
    mx: &mut [i64],
) {
    mx.fill(i64::MIN);
    let heads = p.s.heads.max(1);
    for (src, row) in srcs.iter().zip(lg.chunks_exact_mut(heads)) {
        for (h, (m, l)) in mx.iter_mut().zip(row.iter_mut()).enumerate() {
            let e = logit(p, q, k, src, h);
            *l = e as i32; // rescale_logit's result: an i32
            *m = (*m).max(e);
        }
    }
}

/// `lg[s][h] = exp_q30(lg[s][h] − mx[h])` (at most `2^30`) and
/// `recip[h] = softmax_recip(Σ_s lg[s][h])`.
#[inline(never)]
fn weights(srcs: &Sources<'_>, heads: usize, lg: &mut [i32], mx: &[i64], recip: &mut [u64]) {
    recip.fill(0);
    for (_, row) in srcs.iter().zip(lg.chunks_exact_mut(heads.max(1))) {
        for ((l, &m), r) in row.iter_mut().zip(mx).zip(recip.iter_mut()) {
            let w = exp_q30(i64::from(*l) - m);
            *l = w as i32;
            *r = r.saturating_add(u64::from(w));
        }
    }
    for r in recip.iter_mut() {
        *r = softmax_recip(*r);
    }
}

/// `agg[hC+c] = Σ_s α_s·v_s[hC+c]`, `α = softmax_alpha(lg[s][h], recip[h])`.
#[inline(never)]
fn weighted_sum(
    srcs: &Sources<'_>,
    p: &Params<'_>,
    v: &[i32],
    (lg, recip): (&[i32], &[u64]),
    agg: &mut [i64],
) {
    let (heads, c, hc) = (p.s.heads, p.s.per_head, p.s.hc());
    agg.fill(0);
    for (src, row) in srcs.iter().zip(lg.chunks_exact(heads.max(1))) {
        let at = src.0.saturating_mul(hc);
        let vj = v.get(at..at.saturating_add(hc)).unwrap_or(&[]);
        for (h, (&w, &rh)) in row.iter().zip(recip).enumerate() {
            let alpha = softmax_alpha(w as u32, rh);
            let dst = agg.get_mut(h * c..h * c + c).unwrap_or(&mut []);
            let vals = vj.get(h * c..h * c + c).unwrap_or(&[]);
            // α ≤ 2^30 and |v| < 2^31: each product fits i64, and the α of
            // a node sum to about 2^30, so the sum does too (exact wrapping ops).
            for (cc, (d, &val)) in dst.iter_mut().zip(vals).enumerate() {
                let val = match (&p.edge, src.1) {
                    (Some(ed), Some(pos)) => {
                        val.saturating_add(ed.term(pos, h * c + cc, hc + h * c + cc))
                    }
                    _ => val,
                };
                *d = d.wrapping_add(alpha.wrapping_mul(i64::from(val)));
            }
        }
    }
}

impl OpDef for TransformerConv {
    fn name(&self) -> &'static str {
        "transformer_conv"
    }
    fn output(&self) -> u8 {
        self.output
    }
    fn for_each_input(&self, f: &mut dyn FnMut(u8)) {
        f(self.input);
        if let Some(e) = &self.edge {
            f(e.edge_attr);
        }
    }
    fn has_i4_weights(&self) -> bool {
        [self.w_query, self.w_key, self.w_value, self.w_skip]
            .iter()
            .any(is_i4)
    }
    fn has_i2_weights(&self) -> bool {
        [self.w_query, self.w_key, self.w_value, self.w_skip]
            .iter()
            .any(is_i2)
    }
    fn check(&self, c: &Check<'_>) -> Option<()> {
        let (i, o) = (c.tensor(self.input)?, c.tensor(self.output)?);
        let (ci, co) = (usize::from(i.channels), usize::from(o.channels));
        let hc = self.shape(co)?.hc();
        let skip_ok = c.section_is(self.w_skip, 0) || c.weights_ok(self.w_skip, co, ci);
        let beta_ok = c.section_is(self.beta, 0)
            || (!c.section_is(self.w_skip, 0)
                && c.section_is(self.beta, 16 * co)
                && c.shifts_ok(self.beta));
        let edge_ok = match &self.edge {
            None => true,
            Some(e) => {
                let et = c.tensor(e.edge_attr)?;
                !self.global
                    && et.kind == TensorKind::Edge
                    && c.section_is(e.weights, hc * usize::from(et.channels))
                    && c.section_is(e.rescale, 16 * hc)
                    && c.shifts_ok(e.rescale)
            }
        };
        Check::ok(
            i.kind == TensorKind::Node
                && o.kind == TensorKind::Node
                && self.heads >= 1
                && Check::channels_ok(hc)
                && c.weights_ok(self.w_query, hc, ci)
                && c.weights_ok(self.w_key, hc, ci)
                && c.weights_ok(self.w_value, hc, ci)
                && skip_ok
                && beta_ok
                && edge_ok
                && c.section_is(
                    self.lin_bias,
                    12 * hc
                        + if c.section_is(self.beta, 0) {
                            0
                        } else {
                            4 * co
                        },
                )
                && self.q_shift <= 31
                && self.k_shift <= 31
                && (-32..=31).contains(&self.logit_shift)
                && c.params_ok(self.params, co)
                && Check::act_ok(&self.act),
        )
    }
    fn scratch_bytes(&self, s: &Shapes<'_>) -> usize {
        let oc = s.ch(self.output);
        let heads = usize::from(self.heads);
        let per_head = per_head(heads, self.concat, oc).unwrap_or(0);
        let sources = if self.global { s.nodes } else { s.edges };
        scratch_bytes(Shape { heads, per_head }, s.nodes, sources, oc)
    }
    fn run<'v, T: Tensors<'v>>(
        &self,
        env: &Env<'_, T>,
        out: Out<'_>,
        scratch: Scratch<'_>,
    ) -> Result<()> {
        run_op(self, env, out, scratch)
    }
}

/// Resolves the op's sections and runs it (not inlined, as [`run`]).
#[inline(never)]
fn run_op<'v, T: Tensors<'v>>(
    op: &TransformerConv,
    env: &Env<'_, T>,
    out: Out<'_>,
    scratch: Scratch<'_>,
) -> Result<()> {
    let s = op.shape(out.channels).ok_or(env.invalid())?;
    let edge = match &op.edge {
        Some(e) => Some(EdgeIn {
            e: env.view(e.edge_attr)?,
            w: env.data.bytes(e.weights),
            rescale: env.data.bytes(e.rescale),
        }),
        None => None,
    };
    let p = Params {
        s,
        concat: op.concat,
        global: op.global,
        wq: env.data.matrix(op.w_query),
        wk: env.data.matrix(op.w_key),
        wv: env.data.matrix(op.w_value),
        ws: env.data.matrix(op.w_skip),
        lin_bias: env.data.bytes(op.lin_bias),
        q_shift: op.q_shift,
        k_shift: op.k_shift,
        logit_mult: op.logit_mult,
        logit_shift: op.logit_shift,
        params: env.data.bytes(op.params),
        act: op.act,
        edge,
        beta: env.data.bytes(op.beta),
    };
    run(env.ctx, &p, env.view(op.input)?, out, scratch)
}
