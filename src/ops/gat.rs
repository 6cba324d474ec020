//! `GatConv` — PyG `GATConv` and `GATv2Conv` (eval mode, optional `edge_dim`):
//!
//! * GAT: `h = lin(x)` as `[N, H, C]`, `e_ji = LeakyReLU(att_src·h_j + att_dst·h_i [+ att_edge·lin_edge(e_ji)])`;
//! * GATv2: `xl = lin_l(x)`, `xr = lin_r(x)`, `e_ji = att·LeakyReLU(xl_j + xr_i [+ lin_edge(e_ji)])`, `h = xl`;
//! * `α_ji = softmax_j(e_ji)` over the in-edges of `i` (self-loops removed and
//!   one added per node when `add_self_loops`), `out_i = Σ_j α_ji h_j`, heads
//!   concatenated or averaged, `+ bias`.
//!
//! Integer form (exact semantics on [`crate::format::Op::GatConv`]): the
//! logits are Q16 fixed point, the softmax subtracts the per-node maximum,
//! takes [`exp_q30`] (a 64-entry table of `2^(k/64)` and a cubic on the
//! remainder) and normalises with one integer reciprocal per node and head.
//! No per-edge and no per-node storage: the attention runs one target node
//! at a time. Its in-edges are walked three times (maximum, exp-sum,
//! weighted aggregation); each source's projection `W·(x_j − zp)` is
//! recomputed from its input row (the sparse model input read in place,
//! [`Src::Sparse`]) in the first and the last walk, and the second reads the
//! first [`LOGIT_CACHE_EDGES`] logits back from a small cache. The scratch is
//! a few rows of `HC` plus the cache, independent of the node and edge counts
//! (once the graph has [`LOGIT_CACHE_EDGES`] edges).

use serde::{Deserialize, Serialize};

use super::{
    is_i2, is_i4, rows_mut, Check, Ctx, Env, In, OpDef, Out, Scratch, Shapes, Src, Tensors,
};
use crate::error::Result;
use crate::format::{Activation, ChannelParams, Section, TensorKind};
use crate::kernels::dense_i4::Matrix;
use crate::kernels::requant;
use crate::quant::{round_div_i64, round_shift_i64_to_i32};

use crate::kernels::attention::read_i32;
pub use crate::kernels::attention::{
    exp_q30, per_head, rescale_logit, softmax_alpha, softmax_recip,
};

/// Fractional bits of the attention logits.
pub const LOGIT_FRAC_BITS: u32 = 16;

/// The LeakyReLU of the attention: `v < 0 ? floor((v·slope + 2^15) / 2^16) : v`.
pub fn leaky_q16(v: i64, slope_q16: i32) -> i64 {
    if v < 0 {
        let p = i128::from(v) * i128::from(slope_q16) + (1i128 << 15);
        (p >> 16).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    } else {
        v
    }
}

/// Shape of one GAT layer.
#[derive(Debug, Clone, Copy)]
pub struct GatShape {
    /// Heads `H`.
    pub heads: usize,
    /// Channels per head `C`.
    pub per_head: usize,
    /// GATv2.
    pub v2: bool,
}

impl GatShape {
    /// `H·C`.
    pub fn hc(&self) -> usize {
        self.heads.saturating_mul(self.per_head)
    }
}

/// Source edges of one node whose logits [`run`] keeps between its first
/// two walks over the node's in-edges (`H` i64 each); the logits of further
/// edges are recomputed. A constant, so the scratch does not grow with the
/// edge count.
pub const LOGIT_CACHE_EDGES: usize = 64;

/// The logit cache's rows for a graph of `edges` edges: a node has at most
/// `edges + 1` in-edges (its own and the added self-loop).
pub fn cache_edges(edges: usize) -> usize {
    LOGIT_CACHE_EDGES.min(edges.saturating_add(1))
}

/// i32 values of the source-row cache: the projections of a node's first
/// in-edges' sources, computed in the first walk and read back in the last.
pub const ROW_CACHE_VALUES: usize = 4096;

/// Source rows (`HC` i32 each) [`run`] caches: at most [`cache_edges`] and
/// at most [`ROW_CACHE_VALUES`] values (16 KiB).
pub fn cache_rows(edges: usize, hc: usize) -> usize {
    cache_edges(edges).min(ROW_CACHE_VALUES / hc.max(1))
}

/// Scratch taken by [`run`]: weight sums (`HC` i32, two for GATv2), the
/// target's and a source's projection rows (`HC` i32 each), GAT's source and
/// destination logit terms of one node (`H` i32 each), per-head maxima (i64)
/// and sums/reciprocals (u64), the aggregation row (`HC` i64), the output row
/// (`out_ch` i32), the logit cache ([`cache_edges`] `× H` i64) and the
/// source-row cache ([`cache_rows`] `× HC` i32). Nothing
/// per node or per edge: the projections are recomputed per edge from the
/// input rows (sparse rows read in place when the layer reads the model input).
pub fn scratch_bytes(s: GatShape, edges: usize, out_ch: usize) -> usize {
    let (heads, hc) = (s.heads, s.hc());
    let mut t = super::ScratchSize::default();
    t.add::<i32>(hc);
    if s.v2 {
        t.add::<i32>(hc);
    }
    t.add::<i32>(hc).add::<i32>(hc);
    if !s.v2 {
        t.add::<i32>(heads).add::<i32>(heads);
    }
    t.add::<i64>(heads)
        .add::<u64>(heads)
        .add::<i64>(hc)
        .add::<i32>(out_ch)
        .add::<i64>(cache_edges(edges).saturating_mul(heads))
        .add::<i32>(cache_rows(edges, hc).saturating_mul(hc));
    t.0
}

/// Weights and options of one GAT layer (sections as in the op).
#[derive(Debug, Clone, Copy)]
pub struct GatParams<'a> {
    /// Shape.
    pub shape: GatShape,
    /// Concatenate heads.
    pub concat: bool,
    /// Add self-loops.
    pub add_self_loops: bool,
    /// Attention LeakyReLU slope, Q16.
    pub negative_slope_q16: i32,
    /// `lin` / `lin_l` weights (int8 or int4, unpacked inside the kernel).
    pub w: Matrix<'a>,
    /// `lin_r` weights (GATv2; int8 or int4).
    pub wr: Matrix<'a>,
    /// i32 LE biases of `lin_l`, `lin_r` (GATv2).
    pub lin_bias: &'a [u8],
    /// i16 LE attention vectors.
    pub att: &'a [u8],
    /// i32 LE per-head logit rescales.
    pub logit: &'a [u8],
    /// Channel records.
    pub params: &'a [u8],
    /// Fused activation.
    pub act: Activation,
    /// Edge features (GAT with `edge_dim`; edgefeat).
    pub edge: Option<GatEdgeIn<'a>>,
}

/// The edge-feature inputs of a GAT layer ([`crate::format::GatEdge`]).
#[derive(Debug, Clone, Copy)]
pub struct GatEdgeIn<'a> {
    /// The edge tensor, rows in CSR order.
    pub e: In<'a>,
    /// GAT: i16 LE `V[H, D]`; GATv2: int8 `lin_edge` weights `[HC, D]`.
    pub att: &'a [u8],
    /// i32 LE `(m, s)` per head (GAT) or per channel of `HC` (GATv2).
    pub logit: &'a [u8],
}

/// Extra scratch of a GAT layer with edge features: the self-loop edge
/// accumulators (`H` i64 for GAT, `HC` for GATv2: pass that count).
pub fn edge_scratch_bytes(rows: usize) -> usize {
    super::region_bytes::<i64>(rows)
}

impl GatEdgeIn<'_> {
    /// GAT (`v2` false): `a_pk = Σ_d V[k,d]·(e_pd − zp_e)`; GATv2: row `k`
    /// (a channel of `HC`) of `lin_edge`, `Σ_d We[k,d]·(e_pd − zp_e)`.
    fn acc(&self, pos: usize, k: usize, v2: bool) -> i64 {
        let d = self.e.channels;
        let a = pos.saturating_mul(d);
        let row = self.e.data.get(a..a.saturating_add(d)).unwrap_or(&[]);
        let zp = i64::from(self.e.zp);
        let base = k.saturating_mul(d);
        if v2 {
            let w = self.att.get(base..base.saturating_add(d)).unwrap_or(&[]);
            row.iter().zip(w).fold(0i64, |s, (&v, &wb)| {
                s.saturating_add(i64::from(wb as i8) * (i64::from(v) - zp))
            })
        } else {
            row.iter().enumerate().fold(0i64, |s, (q, &v)| {
                s.saturating_add(read_i16(self.att, base + q).saturating_mul(i64::from(v) - zp))
            })
        }
    }

    /// The rescaled term of head (GAT) or channel (GATv2) `k` for an accumulator `a`:
    /// Q16 logit units (GAT) or the accumulator units of `xl + xr` (GATv2).
    fn term(&self, a: i64, k: usize) -> i64 {
        i64::from(rescale_logit(
            a,
            read_i32(self.logit, 2 * k),
            read_i32(self.logit, 2 * k + 1),
        ))
    }

    /// The term of row `k` for the edge at CSR position `pos`, or for the
    /// added self-loop (`None`: the mean accumulator `loop_acc[k]`).
    fn term_at(&self, pos: Option<usize>, k: usize, v2: bool, loop_acc: &[i64]) -> i64 {
        let a = match pos {
            Some(p) => self.acc(p, k, v2),
            None => loop_acc.get(k).copied().unwrap_or(0),
        };
        self.term(a, k)
    }
}

fn read_i16(b: &[u8], i: usize) -> i64 {
    match b.get(2 * i..2 * i + 2) {
        Some(&[a, c]) => i64::from(i16::from_le_bytes([a, c])),
        _ => 0,
    }
}

/// The projection of one input row: `W·(x_j − zp_x)` (+ the i32 bias `b`
/// of GATv2's `lin_l` / `lin_r`, saturating), recomputed wherever a row is
/// needed (the runtime keeps no `[N, HC]` projection).
#[derive(Clone, Copy)]
struct Proj<'a> {
    x: Src<'a>,
    w: Matrix<'a>,
    /// Weight sums of `w` (dense input; unused for sparse rows).
    sums: &'a [i32],
    /// `lin_bias` (GATv2) or empty (GAT: no bias before the attention).
    bias: &'a [u8],
    /// Index of the first bias of this projection in `bias`.
    bias_at: usize,
}

impl Proj<'_> {
    /// `out = W·(x_j − zp_x) [+ b]`.
    fn row(&self, j: usize, out: &mut [i32]) {
        self.x.matvec_row(self.w, j, self.sums, out);
        if !self.bias.is_empty() {
            for (cc, v) in out.iter_mut().enumerate() {
                *v = v.saturating_add(read_i32(self.bias, self.bias_at + cc));
            }
        }
    }
}

/// GAT: the per-head logit terms of one node's projection `h`: source
/// (`dst` false, `ls`) or destination (`dst` true, `ld`), `[H]`.
fn head_terms(p: &GatParams<'_>, h: &[i32], dst: bool, out: &mut [i32]) {
    let (c, hc) = (p.shape.per_head, p.shape.hc());
    let (att_at, m_at) = if dst { (hc, 2) } else { (0, 0) };
    for (k, o) in out.iter_mut().enumerate() {
        // `Σ_c att·h` exactly: |h·att| < 2^47 and c < 2^16 terms, so the
        // plain i64 sum never saturates (the documented sum saturates).
        let base = k * c;
        let hh = h.get(base..base + c).unwrap_or(&[]);
        let mut a = 0i64;
        for (q, &v) in hh.iter().enumerate() {
            a += i64::from(v) * read_i16(p.att, att_at + base + q);
        }
        *o = rescale_logit(
            a,
            read_i32(p.logit, 4 * k + m_at),
            read_i32(p.logit, 4 * k + m_at + 1),
        );
    }
}

/// Logit computation shared by the three walks over a node's in-edges, for
/// the target `i` whose own terms are fixed.
struct Logits<'a> {
    p: &'a GatParams<'a>,
    /// GAT: the target's destination terms `ld_i`, `[H]`.
    ld: &'a [i32],
    /// GATv2: the target's `xr_i`, `[HC]`.
    xr: &'a [i32],
}

impl Logits<'_> {
    /// Q16 logit of edge `j→i` for head `k`, given the source's projection
    /// `hj` (`h_j` for GAT, `xl_j` for GATv2) and, for GAT, its source terms
    /// `ls` (`[H]`). `pos` is the edge's CSR position (`None` for the added
    /// self-loop, whose edge accumulators are `loop_acc`).
    fn get(&self, hj: &[i32], ls: &[i32], k: usize, pos: Option<usize>, loop_acc: &[i64]) -> i64 {
        let s = self.p.shape;
        let slope = self.p.negative_slope_q16;
        if s.v2 {
            let c = s.per_head;
            let a = k.saturating_mul(c);
            let xl = hj.get(a..a.saturating_add(c)).unwrap_or(&[]);
            let xr = self.xr.get(a..a.saturating_add(c)).unwrap_or(&[]);
            let mut sum: i64 = 0;
            for (cc, (&l, &r)) in xl.iter().zip(xr).enumerate() {
                let e = match &self.p.edge {
                    None => 0,
                    Some(ed) => ed.term_at(pos, a + cc, true, loop_acc),
                };
                let z = leaky_q16(i64::from(l) + i64::from(r) + e, slope);
                sum = sum.saturating_add(z.saturating_mul(read_i16(self.p.att, a + cc)));
            }
            i64::from(rescale_logit(
                sum,
                read_i32(self.p.logit, 2 * k),
                read_i32(self.p.logit, 2 * k + 1),
            ))
        } else {
            let a = ls.get(k).copied().unwrap_or(0);
            let b = self.ld.get(k).copied().unwrap_or(0);
            let e = match &self.p.edge {
                None => 0,
                Some(ed) => ed.term_at(pos, k, false, loop_acc),
            };
            leaky_q16(i64::from(a) + i64::from(b) + e, slope)
        }
    }
}

/// Calls `f(j, pos)` for every source `j` of an in-edge of `i` under the
/// op's self-loop rule (`pos` its CSR position, `None` for the added loop).
fn for_each_source(ctx: &Ctx<'_>, i: usize, loops: bool, mut f: impl FnMut(usize, Option<usize>)) {
    let r = ctx.csr.range(i);
    for (pos, &j) in r.clone().zip(ctx.csr.neighbors(i)) {
        let j = usize::from(j);
        if !(loops && j == i) {
            f(j, Some(pos));
        }
    }
    if loops {
        f(i, None);
    }
}

/// Runs the convolution on `x` (dense, or the sparse model input).
pub fn run(
    ctx: &Ctx<'_>,
    p: GatParams<'_>,
    x: Src<'_>,
    out: Out<'_>,
    mut scratch: Scratch<'_>,
) -> Result<()> {
    let s = p.shape;
    let (heads, hc) = (s.heads, s.hc());
    let oc = out.channels;
    let sums = scratch.take::<i32>(hc)?;
    x.weight_sums(p.w, sums);
    // GAT: messages and both logit terms from `lin`; GATv2: sources through
    // `lin_l` (+ bl), targets through `lin_r` (+ br).
    let (src_proj, dst_proj) = if s.v2 {
        let sums_r = scratch.take::<i32>(hc)?;
        x.weight_sums(p.wr, sums_r);
        let l = Proj {
            x,
            w: p.w,
            sums,
            bias: p.lin_bias,
            bias_at: 0,
        };
        let r = Proj {
            x,
            w: p.wr,
            sums: sums_r,
            bias: p.lin_bias,
            bias_at: hc,
        };
        (l, r)
    } else {
        let l = Proj {
            x,
            w: p.w,
            sums,
            bias: &[],
            bias_at: 0,
        };
        (l, l)
    };
    let hi = scratch.take::<i32>(hc)?;
    let hj = scratch.take::<i32>(hc)?;
    let (ls, ld): (&mut [i32], &mut [i32]) = if s.v2 {
        (&mut [], &mut [])
    } else {
        (scratch.take::<i32>(heads)?, scratch.take::<i32>(heads)?)
    };
    let mx = scratch.take::<i64>(heads)?;
    let recip = scratch.take::<u64>(heads)?;
    let agg = scratch.take::<i64>(hc)?;
    let acc = scratch.take::<i32>(oc)?;
    let edges = ctx.csr.sources.len();
    let cache = scratch.take::<i64>(cache_edges(edges).saturating_mul(heads))?;
    let rows = scratch.take::<i32>(cache_rows(edges, hc).saturating_mul(hc))?;
    let loop_acc: &mut [i64] = match p.edge {
        Some(_) => scratch.take::<i64>(if s.v2 { hc } else { heads })?,
        None => &mut [],
    };
    attend(
        ctx,
        &p,
        (src_proj, dst_proj),
        out,
        Work {
            hi,
            hj,
            ls,
            ld,
            mx,
            recip,
            agg,
            acc,
            cache,
            rows,
            loop_acc,
        },
    );
    Ok(())
}

/// Per-node scratch rows of [`attend`].
struct Work<'s> {
    hi: &'s mut [i32],
    hj: &'s mut [i32],
    ls: &'s mut [i32],
    ld: &'s mut [i32],
    mx: &'s mut [i64],
    recip: &'s mut [u64],
    agg: &'s mut [i64],
    acc: &'s mut [i32],
    cache: &'s mut [i64],
    rows: &'s mut [i32],
    loop_acc: &'s mut [i64],
}

/// Row `t` of the source-row cache (`None` beyond its `rmax` rows).
fn cached_row(rows: &mut [i32], t: usize, rmax: usize, hc: usize) -> Option<&mut [i32]> {
    if t < rmax {
        let a = t.checked_mul(hc)?;
        rows.get_mut(a..a.checked_add(hc)?)
    } else {
        None
    }
}

/// The source's projection `hj` and (GAT) its source terms `ls`.
fn source_row(p: &GatParams<'_>, proj: &Proj<'_>, j: usize, hj: &mut [i32], ls: &mut [i32]) {
    proj.row(j, hj);
    if !p.shape.v2 {
        head_terms(p, hj, false, ls);
    }
}

/// The attention walk (softmax and aggregation per node). Not inlined into
/// [`run`]: [`run`]'s frame stays small. Per target `i`: its projection
/// (GAT: `ld_i`; GATv2: `xr_i`), then three walks over its in-edges
/// (maximum, exp-sum, weighted sum), each source's projection recomputed from
/// its input row in the first and the last; the second reads the logits of
/// the first [`cache_edges`] edges back from the cache.
#[inline(never)]
fn attend(ctx: &Ctx<'_>, p: &GatParams<'_>, proj: (Proj<'_>, Proj<'_>), out: Out<'_>, w: Work<'_>) {
    let s = p.shape;
    let (heads, c) = (s.heads, s.per_head);
    let oc = out.channels;
    let n = ctx.nodes();
    let (src_proj, dst_proj) = proj;
    let Work {
        hi,
        hj,
        ls,
        ld,
        mx,
        recip,
        agg,
        acc,
        cache,
        rows,
        loop_acc,
    } = w;
    let kmax = cache.len() / heads.max(1);
    let hc = s.hc();
    let rmax = rows.len() / hc.max(1);
    let loops = p.add_self_loops;
    for (i, or) in rows_mut(out.data, oc).enumerate().take(n) {
        if let (Some(ed), true) = (&p.edge, loops) {
            loop_edge_acc(ctx, ed, i, s.v2, loop_acc);
        }
        let loop_acc: &[i64] = loop_acc;
        dst_proj.row(i, hi);
        if !s.v2 {
            head_terms(p, hi, true, ld);
        }
        let lg = Logits {
            p,
            ld,
            xr: if s.v2 { hi } else { &[] },
        };
        // Walk 1: maxima, and the first edges' logits into the cache.
        mx.fill(i64::MIN);
        let mut t = 0usize;
        for_each_source(ctx, i, loops, |j, pos| {
            let hj: &mut [i32] = match cached_row(rows, t, rmax, hc) {
                Some(r) => r,
                None => &mut *hj,
            };
            source_row(p, &src_proj, j, hj, ls);
            let base = t.saturating_mul(heads);
            for (k, m) in mx.iter_mut().enumerate() {
                let l = lg.get(hj, ls, k, pos, loop_acc);
                *m = (*m).max(l);
                if t < kmax {
                    if let Some(v) = cache.get_mut(base + k) {
                        *v = l;
                    }
                }
            }
            t += 1;
        });
        // Walk 2: `S = Σ exp_q30(e − M)` per head (in `recip`), then `R`.
        recip.fill(0);
        let mut t = 0usize;
        for_each_source(ctx, i, loops, |j, pos| {
            let cached = t < kmax;
            if !cached {
                source_row(p, &src_proj, j, hj, ls);
            }
            let base = t.saturating_mul(heads);
            for (k, (sum, &m)) in recip.iter_mut().zip(mx.iter()).enumerate() {
                let l = if cached {
                    cache.get(base + k).copied().unwrap_or(0)
                } else {
                    lg.get(hj, ls, k, pos, loop_acc)
                };
                *sum = sum.saturating_add(u64::from(exp_q30(l - m)));
            }
            t += 1;
        });
        for r in recip.iter_mut() {
            *r = softmax_recip(*r);
        }
        // Walk 3: `agg = Σ α·h_j`.
        agg.fill(0);
        let mut t = 0usize;
        for_each_source(ctx, i, loops, |j, pos| {
            // The source's row from the row cache, else projected again (with
            // its logit terms unless the logits are cached).
            let (hj, logit_cached): (&[i32], bool) = match cached_row(rows, t, rmax, hc) {
                Some(r) => (r, t < kmax),
                None if t < kmax => {
                    src_proj.row(j, hj);
                    (hj, true)
                }
                None => {
                    source_row(p, &src_proj, j, hj, ls);
                    (hj, false)
                }
            };
            let base = t.saturating_mul(heads);
            t += 1;
            for k in 0..heads {
                let m = mx.get(k).copied().unwrap_or(0);
                let rk = recip.get(k).copied().unwrap_or(0);
                let l = if logit_cached {
                    cache.get(base + k).copied().unwrap_or(0)
                } else {
                    lg.get(hj, ls, k, pos, loop_acc)
                };
                let alpha = softmax_alpha(exp_q30(l - m), rk);
                let a = k * c;
                let dst = agg.get_mut(a..a + c).unwrap_or(&mut []);
                let src = hj.get(a..a + c).unwrap_or(&[]);
                for (d, &v) in dst.iter_mut().zip(src) {
                    *d = d.saturating_add(alpha.saturating_mul(i64::from(v)));
                }
            }
        });
        heads_to_acc(p, agg, acc);
        requant::requantize_row(acc, p.params, p.act, out.zp, or);
    }
}

/// The added self-loop's edge accumulators of node `i`: the mean of its
/// in-edges' (loops excluded), per head (GAT) or channel (GATv2).
fn loop_edge_acc(ctx: &Ctx<'_>, ed: &GatEdgeIn<'_>, i: usize, v2: bool, loop_acc: &mut [i64]) {
    for (k, la) in loop_acc.iter_mut().enumerate() {
        let (mut sum, mut count) = (0i64, 0i64);
        for (pos, &j) in ctx.csr.range(i).zip(ctx.csr.neighbors(i)) {
            if usize::from(j) != i {
                sum = sum.saturating_add(ed.acc(pos, k, v2));
                count += 1;
            }
        }
        *la = round_div_i64(sum, count);
    }
}

/// `acc` from the aggregation row: heads concatenated, or summed (mean).
fn heads_to_acc(p: &GatParams<'_>, agg: &[i64], acc: &mut [i32]) {
    let (heads, c) = (p.shape.heads, p.shape.per_head);
    if p.concat {
        for (o, &a) in acc.iter_mut().zip(agg.iter()) {
            *o = round_shift_i64_to_i32(a, 30);
        }
    } else {
        for (cc, o) in acc.iter_mut().enumerate() {
            let mut t: i64 = 0;
            for k in 0..heads {
                t = t.saturating_add(agg.get(k * c + cc).copied().unwrap_or(0));
            }
            *o = round_shift_i64_to_i32(t, 30);
        }
    }
}

/// GATConv / GATv2Conv (PyG semantics, eval mode; edge features: `edge`, see [`GatEdge`]), node
/// tensors only. `H = heads`, `C` channels per head (`out_ch / H` with
/// `concat`, `out_ch` without), `HC = H·C`. See [`crate::ops::gat`].
///
/// 1. Projections (i32, exact): GAT `h_j = W·(x_j − zp_x)` (`weights`,
///    `[HC, in_ch]`). GATv2 `xl_j = Wl·(x_j − zp_x) + bl`,
///    `xr_j = Wr·(x_j − zp_x) + br` (`weights`, `weights_r`; `bl`, `br` the
///    i32 biases in `lin_bias`); `Wl` and `Wr` share one scale per channel so
///    `xl + xr` adds directly; the messages are `h = xl`.
/// 2. Logits of an edge `j→i` for head `k`, in Q16 (`1.0 = 65536`), with
///    `lrelu(v) = v < 0 ? floor((v·negative_slope_q16 + 2^15) / 2^16) : v` (i64) and
///    `rq(v, m, s) = clamp_i32(floor((v·m + 2^(r−1)) / 2^r))`, `r = 31 − s` (i128):
///    * GAT: `ls_j = rq(Σ_c att_src[k,c]·h_j[k,c], m_src[k], s_src[k])`,
///      `ld_i = rq(Σ_c att_dst[k,c]·h_i[k,c], m_dst[k], s_dst[k])`,
///      `e_ji = lrelu(ls_j + ld_i)`.
///    * GATv2: `e_ji = rq(Σ_c att[k,c]·lrelu(xl_j[k,c] + xr_i[k,c]), m[k], s[k])`.
/// 3. Edges: the in-edges of `i` as given; with `add_self_loops`, input
///    loops `i→i` are skipped and one loop `i→i` is added (PyG's
///    `remove_self_loops` + `add_self_loops`). Duplicates each count.
/// 4. Softmax per node and head: `M = max_j e_ji`, `w_ji = exp_q30(e_ji − M)`
///    ([`crate::ops::gat::exp_q30`], `2^30 = 1.0`), `S = Σ_j w_ji` (u64),
///    `R = floor((2^61 + S/2) / S)`, `α_ji = floor((w_ji·R + 2^30) / 2^31)` (Q30).
/// 5. `agg_i[k,c] = Σ_j α_ji · h_j[k,c]` (i64); a node without edges gets 0.
///    Concat: `acc_i[k·C + c] = round_shift_i64_to_i32(agg_i[k,c], 30)`;
///    mean: `acc_i[c] = round_shift_i64_to_i32(Σ_k agg_i[k,c], 30)` (the
///    converter folds `1/H` into `mult` and scales `bias` by `H`).
/// 6. `+ bias`, activation and requantization with `params` (`out_ch` channels).
///
/// Sections: `att` is i16 little endian, GAT `att_src[HC]` then `att_dst[HC]`
/// (`4·HC` bytes), GATv2 `att[HC]` (`2·HC` bytes); `logit` is i32 little
/// endian per head, GAT `(m_src, s_src, m_dst, s_dst)` (16 bytes per head),
/// GATv2 `(m, s)` (8 bytes per head), every `s` in `−32..=31`; `lin_bias`
/// (GATv2 only, else empty) is i32 little endian `bl[HC]` then `br[HC]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GatConv {
    /// Input node tensor.
    pub input: u8,
    /// Output node tensor.
    pub output: u8,
    /// Number of heads `H` (≥ 1).
    pub heads: u8,
    /// Concatenate the heads (else average them).
    pub concat: bool,
    /// GATv2Conv (else GATConv).
    pub v2: bool,
    /// Add self-loops (after removing the graph's own).
    pub add_self_loops: bool,
    /// LeakyReLU negative slope of the attention, Q16 (≥ 0).
    pub negative_slope_q16: i32,
    /// int8 weights `[HC, in_ch]` of `lin` (GAT) or `lin_l` (GATv2).
    pub weights: Section,
    /// int8 weights `[HC, in_ch]` of `lin_r` (GATv2), else empty.
    pub weights_r: Section,
    /// i32 biases of `lin_l` and `lin_r` (GATv2), else empty.
    pub lin_bias: Section,
    /// Attention vectors (i16).
    pub att: Section,
    /// Per-head logit rescales.
    pub logit: Section,
    /// [`ChannelParams`] for `out_ch` channels (bias is PyG's conv bias).
    pub params: ChannelParams,
    /// Fused activation.
    pub act: Activation,
    /// Edge features (PyG `edge_dim`; GATConv and GATv2Conv), see [`GatEdge`].
    pub edge: Option<GatEdge>,
}

/// The edge-feature part of a GATConv / GATv2Conv with `edge_dim`. With
/// `e_p` the edge's row of the edge tensor (CSR position `p`):
///
/// **GATConv** (`v2` false). PyG adds `att_edge · lin_edge(e_ji)` to the logit
/// of edge `j→i` before the LeakyReLU; both are linear in `e`, so the converter
/// folds them into one `[H, D]` matrix `V` (`V[k] = lin_edgeₖᵀ·att_edgeₖ`):
///
/// * `a_pk = Σ_d V[k,d]·(e_pd − zp_e)` (i64), `k` a head;
/// * for the self-loop added to node `i` (`add_self_loops`; PyG's
///   `fill_value='mean'` gives it the mean attribute of the node's in-edges
///   other than loops), `a_k = round_div(Σ_p a_pk, count)` over those edges
///   (half away from zero), 0 without any;
/// * the logit of step 2 of [`Op::GatConv`](crate::ops::Op::GatConv) becomes
///   `e_ji = lrelu(ls_j + ld_i + rq(a_k, m_edge[k], s_edge[k]))`.
///
/// **GATv2Conv** (`v2` true). PyG adds `lin_edge(e_ji)` (`[HC]`, no bias) to
/// `xl_j + xr_i` per channel, before the LeakyReLU. `att` holds the int8
/// weights `We[HC, D]` of `lin_edge` (one scale per channel) and `logit` one
/// `(m, s)` per channel `q` of `HC`, mapping the edge accumulator into the
/// accumulator units of `xl`/`xr` (scale `s_x·s_w[q]`), so that it adds exactly:
///
/// * `a_pq = Σ_d We[q,d]·(e_pd − zp_e)` (i64); the added self-loop gets
///   `a_q = round_div(Σ_p a_pq, count)` as above;
/// * `e_ji = rq(Σ_c att[k,c]·lrelu(xl_j[k,c] + xr_i[k,c] + rq(a_{kC+c}, m[kC+c], s[kC+c])), m[k], s[k])`
///   (the inner sum in i64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GatEdge {
    /// The edge-feature tensor ([`TensorKind::Edge`], `D` channels).
    pub edge_attr: u8,
    /// GAT: `V`, i16 little endian `[H, D]` (`2·H·D` bytes). GATv2: `We`,
    /// int8 `[HC, D]` (`HC·D` bytes).
    pub att: Section,
    /// i32 little endian `(m_edge, s_edge)` per head (GAT, `8·H` bytes) or per
    /// channel of `HC` (GATv2, `8·HC` bytes), `s` in `−32..=31`.
    pub logit: Section,
}

impl GatConv {
    /// The edge-feature checks: GAT `V` `[H, D]` i16 and `(m, s)` per head;
    /// GATv2 int8 `lin_edge` `[HC, D]` and `(m, s)` per channel of `HC`.
    fn edge_ok(&self, c: &Check<'_>, hc: usize) -> Option<bool> {
        let Some(e) = &self.edge else {
            return Some(true);
        };
        let et = c.tensor(e.edge_attr)?;
        let d = usize::from(et.channels);
        let h = usize::from(self.heads);
        let (att_len, logit_len) = if self.v2 {
            (hc * d, 8 * hc)
        } else {
            (2 * h * d, 8 * h)
        };
        Some(
            et.kind == TensorKind::Edge
                && c.section_is(e.att, att_len)
                && c.section_is(e.logit, logit_len)
                && c.shifts_ok(e.logit),
        )
    }

    /// `H`, `C` and whether the projection rows fit [`crate::MAX_CHANNELS`].
    fn shape(&self, out_ch: usize) -> Option<GatShape> {
        let heads = usize::from(self.heads);
        let per_head = per_head(heads, self.concat, out_ch)?;
        Some(GatShape {
            heads,
            per_head,
            v2: self.v2,
        })
    }
}

impl OpDef for GatConv {
    /// One round of message passing along the edges.
    fn hops(&self) -> Option<u8> {
        Some(1)
    }
    fn name(&self) -> &'static str {
        if self.v2 {
            "gatv2_conv"
        } else {
            "gat_conv"
        }
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
        is_i4(&self.weights) || is_i4(&self.weights_r)
    }
    fn has_i2_weights(&self) -> bool {
        is_i2(&self.weights) || is_i2(&self.weights_r)
    }
    fn takes_sparse_input(&self) -> bool {
        true
    }
    fn check(&self, c: &Check<'_>) -> Option<()> {
        let (i, o) = (c.tensor(self.input)?, c.tensor(self.output)?);
        let (ci, co) = (usize::from(i.channels), usize::from(o.channels));
        let h = usize::from(self.heads);
        let hc = self.shape(co)?.hc();
        let edge_ok = self.edge_ok(c, hc)?;
        let per_head_words = if self.v2 { 2 } else { 4 };
        let (bias_len, att_len) = if self.v2 {
            (8 * hc, 2 * hc)
        } else {
            (0, 4 * hc)
        };
        // lin / lin_l and lin_r: int8 or int4 weight sections of [HC, in_ch].
        let wr_ok = if self.v2 {
            c.weights_ok(self.weights_r, hc, ci)
        } else {
            c.section_is(self.weights_r, 0)
        };
        Check::ok(
            i.kind == TensorKind::Node
                && o.kind == TensorKind::Node
                && h >= 1
                && Check::channels_ok(hc)
                && self.negative_slope_q16 >= 0
                && c.weights_ok(self.weights, hc, ci)
                && wr_ok
                && c.section_is(self.lin_bias, bias_len)
                && c.section_is(self.att, att_len)
                && c.section_is(self.logit, 4 * per_head_words * h)
                && c.shifts_ok(self.logit)
                && c.params_ok(self.params, co)
                && Check::act_ok(&self.act)
                && edge_ok,
        )
    }
    fn scratch_bytes(&self, s: &Shapes<'_>) -> usize {
        let oc = s.ch(self.output);
        let h = usize::from(self.heads);
        let c = per_head(h, self.concat, oc).unwrap_or(0);
        let e = if self.edge.is_some() {
            edge_scratch_bytes(if self.v2 { h.saturating_mul(c) } else { h })
        } else {
            0
        };
        let shape = GatShape {
            heads: h,
            per_head: c,
            v2: self.v2,
        };
        scratch_bytes(shape, s.edges, oc).saturating_add(e)
    }
    fn run<'v, T: Tensors<'v>>(
        &self,
        env: &Env<'_, T>,
        out: Out<'_>,
        scratch: Scratch<'_>,
    ) -> Result<()> {
        let edge = match &self.edge {
            Some(e) => Some(GatEdgeIn {
                e: env.view(e.edge_attr)?,
                att: env.data.bytes(e.att),
                logit: env.data.bytes(e.logit),
            }),
            None => None,
        };
        let shape = self.shape(out.channels).ok_or(env.invalid())?;
        let p = GatParams {
            shape,
            concat: self.concat,
            add_self_loops: self.add_self_loops,
            negative_slope_q16: self.negative_slope_q16,
            w: env.data.matrix(self.weights),
            wr: env.data.matrix(self.weights_r),
            lin_bias: env.data.bytes(self.lin_bias),
            att: env.data.bytes(self.att),
            logit: env.data.bytes(self.logit),
            params: env.data.bytes(self.params),
            act: self.act,
            edge,
        };
        run(env.ctx, p, env.src(self.input)?, out, scratch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::attention::{EXP2_Q30, LN2_Q30, LOG2E_Q30};

    fn exp_f(d: i64) -> f64 {
        (d as f64 / 65536.0).exp() * (1u64 << 30) as f64
    }

    #[test]
    fn table_matches_exp2() {
        for (k, &v) in EXP2_Q30.iter().enumerate() {
            let want = (2f64).powf(k as f64 / 64.0) * (1u64 << 30) as f64;
            assert!((v as f64 - want).abs() <= 0.5, "k={k}: {v} vs {want}");
        }
        assert_eq!(
            LOG2E_Q30,
            (core::f64::consts::LOG2_E * (1u64 << 30) as f64).round() as i64
        );
        assert_eq!(
            LN2_Q30,
            (core::f64::consts::LN_2 * (1u64 << 30) as f64).round() as i64
        );
    }

    #[test]
    fn exp_of_zero_is_one_and_positive_clamps() {
        assert_eq!(exp_q30(0), 1 << 30);
        assert_eq!(exp_q30(12345), 1 << 30);
    }

    #[test]
    fn exp_is_monotone_and_accurate() {
        let mut prev = exp_q30(-(40 << 16));
        let mut worst = 0f64;
        // Every Q16 input natively; under Miri (about 10^5 times slower) every
        // 4099th, which still checks monotonicity along that subsequence.
        let step = if cfg!(miri) { 4099 } else { 1 };
        for d in ((-(40i64 << 16))..=0).step_by(step) {
            let v = exp_q30(d);
            assert!(v >= prev, "not monotone at d={d}: {prev} then {v}");
            prev = v;
            let err = (v as f64 - exp_f(d)).abs();
            // Absolute error within 2 units of Q30, relative 2^-25 above that.
            let rel = err / exp_f(d).max(1.0);
            worst = worst.max(if err <= 2.0 { 0.0 } else { rel });
        }
        assert!(worst < 1.0 / (1u64 << 25) as f64, "relative error {worst}");
        assert_eq!(exp_q30(-(1i64 << 50)), 0);
        assert_eq!(exp_q30(i64::MIN), 0);
    }

    #[test]
    fn softmax_weights_sum_to_one() {
        // Logits of a few edges; the Q30 weights must sum to 2^30 within the
        // rounding of one unit per edge.
        let cases: [&[i64]; 5] = [
            &[0],
            &[5 << 16, 5 << 16, 5 << 16, 5 << 16],
            &[-3 << 16, 0, 1 << 16, 7 << 16, -100 << 16],
            &[i32::MAX as i64, i32::MIN as i64],
            &[123, 456, 789, -1011, 1213, 0, 0, 0],
        ];
        for e in cases {
            let m = *e.iter().max().unwrap();
            let w: Vec<u32> = e.iter().map(|&v| exp_q30(v - m)).collect();
            let r = softmax_recip(w.iter().map(|&v| u64::from(v)).sum());
            let a: Vec<i64> = w.iter().map(|&v| softmax_alpha(v, r)).collect();
            let total: i64 = a.iter().sum();
            assert!(
                (total - (1 << 30)).abs() <= e.len() as i64,
                "{e:?}: sum {total}"
            );
            // The largest logit gets the largest weight; equal logits equal weights.
            let imax = e.iter().position(|&v| v == m).unwrap();
            assert!(a.iter().all(|&v| v <= a[imax]));
            for (x, y) in e.iter().zip(&a) {
                for (x2, y2) in e.iter().zip(&a) {
                    if x == x2 {
                        assert_eq!(y, y2);
                    }
                    if x < x2 {
                        assert!(y <= y2);
                    }
                }
            }
            // Against the float softmax.
            let fs: f64 = e.iter().map(|&v| ((v - m) as f64 / 65536.0).exp()).sum();
            for (x, y) in e.iter().zip(&a) {
                let want = ((x - m) as f64 / 65536.0).exp() / fs;
                assert!((*y as f64 / (1u64 << 30) as f64 - want).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn single_edge_gets_weight_one() {
        let w = exp_q30(0);
        assert_eq!(softmax_alpha(w, softmax_recip(u64::from(w))), 1 << 30);
    }

    #[test]
    fn all_equal_logits_share_equally() {
        for n in 1u64..40 {
            let w = exp_q30(0);
            let a = softmax_alpha(w, softmax_recip(n * u64::from(w)));
            assert!((a - (1i64 << 30) / n as i64).abs() <= 1, "n={n}: {a}");
        }
    }

    #[test]
    fn leaky_and_rescale() {
        assert_eq!(leaky_q16(100, 13107), 100);
        assert_eq!(leaky_q16(-65536, 13107), -13107);
        assert_eq!(leaky_q16(-65536, 0), 0);
        // 3 · 0.5 = 1.5 (mult 2^30 = 0.5 in Q31, shift 0).
        assert_eq!(rescale_logit(3, 1 << 30, 0), 2);
        assert_eq!(rescale_logit(1 << 40, 1 << 30, 31), i32::MAX);
        assert_eq!(rescale_logit(-(1 << 40), 1 << 30, 31), i32::MIN);
        assert_eq!(rescale_logit(1 << 20, 1 << 30, -32), 0);
    }
}
