//! Float reference executor of a spec, in `f64`, with PyTorch Geometric's
//! eval-mode semantics (see `/docs/interchange.md` and the op list in
//! [`crate::spec::OpKind`]). It defines what "correct" means for the int8
//! model: calibration runs it, and `verify` compares against it.
//!
//! Semantics implemented (PyG 2.x):
//! * `gcn_conv`: `h = x Wᵀ`; when `normalize`, `gcn_norm` with
//!   `add_remaining_self_loops` (if `add_self_loops`): input loops `i→i` are
//!   removed and every node gets one loop with the weight of its last input
//!   loop, or the fill value (1, or 2 if `improved` — which, as in PyG 2.8.1,
//!   only acts when edge weights are used); `deg_i = Σ_{j→i} w_ji`;
//!   `coef = deg_j^-½ w_ji deg_i^-½` with `0^-½ = 0`. Without `normalize` no
//!   loops are added and `coef = w` (PyG adds loops only inside `gcn_norm`).
//!   `w` is the graph's `edge_weight` only if the op's `edge_weight` attr is set.
//! * `sage_conv`: mean/max/sum of `x_j` over in-edges (empty → 0), `lin_l(agg) +
//!   lin_r(x)`, then `x / max(‖x‖₂, 1e-12)` if `normalize`.
//! * `gin_aggregate`: `(1+eps)·x_i + Σ_{j→i} x_j`.
//! * global pools by the batch vector; an empty graph pools to 0.
//! * `gat_conv` / `gatv2_conv`: see [`gat`].
//! * `appnp` / `sg_conv`: see [`propagate`].
//! * `elu`: `x > 0 ? x : alpha·(exp(x) − 1)`.
//! * `gine_conv`: `(1+eps)·x_i + Σ_{j→i} ReLU(x_j + lin(e_ji))` (`lin` only with
//!   `edge_dim`; otherwise `e_ji` itself), over the graph's `edge_attr`.
//! * `edge_conv` / `dynamic_edge_conv`: see [`edge_conv`].

use std::collections::HashMap;

use anyhow::{anyhow, Result};

use crate::spec::{Aggr, Mat, OpKind, PoolKind, Rows, Spec};
use crate::st::Graphs;

/// A float tensor `[rows, channels]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Rows (nodes or graphs).
    pub rows: usize,
    /// Channels.
    pub channels: usize,
    /// Row-major values.
    pub data: Vec<f64>,
}

impl Tensor {
    /// Row `r`.
    pub fn row(&self, r: usize) -> &[f64] {
        &self.data[r * self.channels..(r + 1) * self.channels]
    }

    fn zeros(rows: usize, channels: usize) -> Tensor {
        Tensor {
            rows,
            channels,
            data: vec![0.0; rows * channels],
        }
    }
}

/// `x Wᵀ (+ b)`.
pub fn linear(x: &Tensor, w: &Mat, b: Option<&[f64]>) -> Tensor {
    let mut out = Tensor::zeros(x.rows, w.rows);
    for r in 0..x.rows {
        let xr = x.row(r);
        for c in 0..w.rows {
            let wr = w.row(c);
            let mut acc = b.map_or(0.0, |b| b[c]);
            for k in 0..w.cols {
                acc += wr[k] * xr[k];
            }
            out.data[r * w.rows + c] = acc;
        }
    }
    out
}

/// The edge list and coefficients `(source, target, coef)` GCNConv propagates over.
pub fn gcn_edges(
    g: &Graphs,
    improved: bool,
    add_self_loops: bool,
    normalize: bool,
    use_weight: bool,
) -> Vec<(usize, usize, f64)> {
    let n = g.num_nodes;
    let w = |e: usize| match (&g.edge_weight, use_weight) {
        (Some(ws), true) => ws[e] as f64,
        _ => 1.0,
    };
    let mut edges: Vec<(usize, usize, f64)> = Vec::with_capacity(g.num_edges() + n);
    if !normalize {
        for e in 0..g.num_edges() {
            edges.push((g.sources[e] as usize, g.targets[e] as usize, w(e)));
        }
        return edges;
    }
    if add_self_loops {
        // PyG 2.8.1 `add_remaining_self_loops` ignores `fill_value` when there is no edge
        // weight (the loops then get weight 1 like every edge): `improved` only acts with weights.
        let weighted = use_weight && g.edge_weight.is_some();
        let fill = if improved && weighted { 2.0 } else { 1.0 };
        let mut loops = vec![fill; n];
        for e in 0..g.num_edges() {
            let (s, t) = (g.sources[e] as usize, g.targets[e] as usize);
            if s == t {
                loops[s] = w(e);
            } else {
                edges.push((s, t, w(e)));
            }
        }
        for (i, &lw) in loops.iter().enumerate() {
            edges.push((i, i, lw));
        }
    } else {
        for e in 0..g.num_edges() {
            edges.push((g.sources[e] as usize, g.targets[e] as usize, w(e)));
        }
    }
    let mut deg = vec![0.0f64; n];
    for &(_, t, w) in &edges {
        deg[t] += w;
    }
    let dinv: Vec<f64> = deg
        .iter()
        .map(|&d| {
            let v = d.powf(-0.5);
            if v.is_infinite() {
                0.0
            } else {
                v
            }
        })
        .collect();
    for e in &mut edges {
        e.2 *= dinv[e.0] * dinv[e.1];
    }
    edges
}

/// APPNP / SGConv / GCN2Conv: `p = x` (APPNP) or `x Wᵀ` (SGConv, whose
/// `lin(Â^K x)` equals `Â^K (x Wᵀ) + b`; GCN2Conv, whose
/// `((1 − α)·Â·x + α·x0)·M` equals `(1 − α)·Â·(x M) + α·(x0 M)`), `h⁰ = p`
/// or `x0 W0ᵀ` (GCN2Conv); `h = p`, then `K` times `h = (1 − α)·Â·h + α·h⁰`
/// with `Â` GCNConv's ([`gcn_edges`]), then `+ b`.
pub fn propagate(p: &crate::spec::PropSpec, x: &Tensor, x0: Option<&Tensor>, g: &Graphs) -> Tensor {
    if !p.hops.is_empty() {
        return tag(p, x, g);
    }
    let start = match &p.w {
        Some(w) => linear(x, w, None),
        None => x.clone(),
    };
    let h0 = match (&p.w0, x0) {
        (Some(w0), Some(x0)) => linear(x0, w0, None),
        _ => start.clone(),
    };
    let c = h0.channels;
    let edges = gcn_edges(g, p.improved, p.add_self_loops, p.normalize, p.edge_weight);
    let mut h = start;
    for _ in 0..p.k {
        let mut next = Tensor::zeros(h.rows, c);
        for &(s, t, coef) in &edges {
            for k in 0..c {
                next.data[t * c + k] += coef * h.data[s * c + k];
            }
        }
        for (n, &v0) in next.data.iter_mut().zip(&h0.data) {
            *n = (1.0 - p.alpha) * *n + p.alpha * v0;
        }
        h = next;
    }
    for r in 0..h.rows {
        for k in 0..c {
            h.data[r * c + k] += p.b[k];
        }
    }
    h
}

/// TAGConv as PyG computes it: `out = Σ_k (Â^k x) W_kᵀ + b`, `Â` from
/// [`gcn_edges`] (no self-loops for PyG's TAGConv).
fn tag(p: &crate::spec::PropSpec, x: &Tensor, g: &Graphs) -> Tensor {
    let edges = gcn_edges(g, p.improved, p.add_self_loops, p.normalize, p.edge_weight);
    let f = x.channels;
    let mut xk = x.clone();
    let mut out = linear(x, &p.hops[0], Some(&p.b));
    for w in &p.hops[1..] {
        let mut next = Tensor::zeros(x.rows, f);
        for &(s, t, coef) in &edges {
            for c in 0..f {
                next.data[t * f + c] += coef * xk.data[s * f + c];
            }
        }
        xk = next;
        for (o, v) in out.data.iter_mut().zip(linear(&xk, w, None).data) {
            *o += v;
        }
    }
    out
}

/// ELU: `x > 0 ? x : alpha·(exp(x) − 1)`.
pub fn elu(x: f64, alpha: f64) -> f64 {
    if x > 0.0 {
        x
    } else {
        alpha * x.exp_m1()
    }
}

fn relu(x: f64) -> f64 {
    x.max(0.0)
}

/// Executes one op given its input tensors.
pub fn exec_op(kind: &OpKind, ins: &[&Tensor], g: &Graphs) -> Tensor {
    let x = ins[0];
    match kind {
        OpKind::Linear { w, b } => linear(x, w, Some(b)),
        OpKind::BatchNorm {
            gamma,
            beta,
            mean,
            var,
            eps,
        } => {
            let mut out = x.clone();
            for r in 0..x.rows {
                for c in 0..x.channels {
                    let v = &mut out.data[r * x.channels + c];
                    *v = (*v - mean[c]) / (var[c] + eps).sqrt() * gamma[c] + beta[c];
                }
            }
            out
        }
        OpKind::Relu => Tensor {
            data: x.data.iter().map(|&v| relu(v)).collect(),
            ..x.clone()
        },
        OpKind::LeakyRelu { slope } => Tensor {
            data: x
                .data
                .iter()
                .map(|&v| if v < 0.0 { v * slope } else { v })
                .collect(),
            ..x.clone()
        },
        OpKind::Identity => x.clone(),
        OpKind::Gcn {
            w,
            b,
            improved,
            add_self_loops,
            normalize,
            edge_weight,
        } => {
            let h = linear(x, w, None);
            let mut out = Tensor::zeros(x.rows, w.rows);
            for (s, t, coef) in gcn_edges(g, *improved, *add_self_loops, *normalize, *edge_weight) {
                for c in 0..w.rows {
                    out.data[t * w.rows + c] += coef * h.data[s * w.rows + c];
                }
            }
            for r in 0..out.rows {
                for c in 0..w.rows {
                    out.data[r * w.rows + c] += b[c];
                }
            }
            out
        }
        OpKind::Sage {
            wl,
            b,
            wr,
            aggr,
            normalize,
        } => {
            let f = x.channels;
            let mut agg = Tensor::zeros(x.rows, f);
            let mut count = vec![0usize; x.rows];
            if *aggr == Aggr::Max {
                agg.data.fill(f64::NEG_INFINITY);
            }
            for e in 0..g.num_edges() {
                let (s, t) = (g.sources[e] as usize, g.targets[e] as usize);
                count[t] += 1;
                for k in 0..f {
                    let v = x.data[s * f + k];
                    let a = &mut agg.data[t * f + k];
                    *a = if *aggr == Aggr::Max { a.max(v) } else { *a + v };
                }
            }
            for (i, &cnt) in count.iter().enumerate() {
                for k in 0..f {
                    let a = &mut agg.data[i * f + k];
                    if cnt == 0 {
                        *a = 0.0;
                    } else if *aggr == Aggr::Mean {
                        *a /= cnt as f64;
                    }
                }
            }
            let mut out = linear(&agg, wl, Some(b));
            if let Some(wr) = wr {
                let r = linear(x, wr, None);
                for (o, v) in out.data.iter_mut().zip(r.data) {
                    *o += v;
                }
            }
            if *normalize {
                let c = out.channels;
                for r in 0..out.rows {
                    let row = &mut out.data[r * c..(r + 1) * c];
                    let n = row.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
                    row.iter_mut().for_each(|v| *v /= n);
                }
            }
            out
        }
        OpKind::Gin { eps } => {
            let f = x.channels;
            let mut out = Tensor {
                data: x.data.iter().map(|v| v * (1.0 + eps)).collect(),
                ..x.clone()
            };
            for e in 0..g.num_edges() {
                let (s, t) = (g.sources[e] as usize, g.targets[e] as usize);
                for k in 0..f {
                    out.data[t * f + k] += x.data[s * f + k];
                }
            }
            out
        }
        OpKind::Softmax { log } => {
            let c = x.channels.max(1);
            let mut data = x.data.clone();
            for row in data.chunks_mut(c) {
                let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
                for v in row.iter_mut() {
                    *v = if *log { *v - lse } else { (*v - lse).exp() };
                }
            }
            Tensor { data, ..x.clone() }
        }
        OpKind::Elu { alpha } => Tensor {
            data: x.data.iter().map(|&v| elu(v, *alpha)).collect(),
            ..x.clone()
        },
        OpKind::Gine { eps, lin } => {
            let f = x.channels;
            let d = g.edge_dim;
            let attr = g.edge_attr.as_deref().unwrap_or(&[]);
            let mut out = Tensor {
                data: x.data.iter().map(|v| v * (1.0 + eps)).collect(),
                ..x.clone()
            };
            let mut e = vec![0.0f64; f];
            for k in 0..g.num_edges() {
                let (s, t) = (g.sources[k] as usize, g.targets[k] as usize);
                let row = attr.get(k * d..(k + 1) * d).unwrap_or(&[]);
                match lin {
                    Some((w, b)) => {
                        for (c, ec) in e.iter_mut().enumerate() {
                            *ec = b[c]
                                + w.row(c)
                                    .iter()
                                    .zip(row)
                                    .map(|(a, &v)| a * v as f64)
                                    .sum::<f64>();
                        }
                    }
                    None => {
                        for (ec, &v) in e.iter_mut().zip(row) {
                            *ec = v as f64;
                        }
                    }
                }
                for c in 0..f {
                    out.data[t * f + c] += relu(x.data[s * f + c] + e[c]);
                }
            }
            out
        }
        OpKind::Pool(kind) => {
            let f = x.channels;
            let ng = g.num_graphs;
            let mut out = Tensor::zeros(ng, f);
            let mut count = vec![0usize; ng];
            if *kind == PoolKind::Max {
                out.data.fill(f64::NEG_INFINITY);
            }
            for i in 0..x.rows {
                let b = g.batch[i] as usize;
                count[b] += 1;
                for k in 0..f {
                    let v = x.data[i * f + k];
                    let o = &mut out.data[b * f + k];
                    *o = if *kind == PoolKind::Max {
                        o.max(v)
                    } else {
                        *o + v
                    };
                }
            }
            for (b, &cnt) in count.iter().enumerate() {
                for k in 0..f {
                    let o = &mut out.data[b * f + k];
                    if cnt == 0 {
                        *o = 0.0;
                    } else if *kind == PoolKind::Mean {
                        *o /= cnt as f64;
                    }
                }
            }
            out
        }
        OpKind::Add => Tensor {
            data: x
                .data
                .iter()
                .zip(&ins[1].data)
                .map(|(a, b)| a + b)
                .collect(),
            ..x.clone()
        },
        OpKind::Gat(spec) => gat(spec, x, g),
        OpKind::Propagate(p) => propagate(p, x, ins.get(1).copied(), g),
        OpKind::EdgeConv(spec) => edge_conv(spec, x, g).0,
        OpKind::InnerProduct | OpKind::PairHadamard | OpKind::PairConcat => pair_op(kind, x, g),
        OpKind::Concat => {
            let channels: usize = ins.iter().map(|t| t.channels).sum();
            let mut out = Tensor::zeros(x.rows, channels);
            for r in 0..x.rows {
                let mut at = r * channels;
                for t in ins {
                    out.data[at..at + t.channels].copy_from_slice(t.row(r));
                    at += t.channels;
                }
            }
            out
        }
    }
}

/// GATConv / GATv2Conv (PyG, eval; edge features: GAT adds
/// `att_edge·lin_edge(e_ji)` to the logit before the LeakyReLU, GATv2 adds
/// `lin_edge(e_ji)` to `h_j + xr_i` per channel; the added loops get the mean
/// attribute of the node's other in-edges). `h = lin(x)` (GATv2:
/// `h = lin_l(x)`, `xr = lin_r(x)`, with their biases); the edges are the
/// graph's, minus its self-loops plus one loop per node when
/// `add_self_loops` (PyG's `remove_self_loops` + `add_self_loops`); the
/// logit of `j→i`, head `k`, is `lrelu(att_src·h_j + att_dst·h_i)` (GAT) or
/// `att·lrelu(h_j + xr_i)` (GATv2); `α = softmax` over the in-edges of `i`
/// (max subtracted); `out_i = Σ α h_j` per head, heads concatenated or
/// averaged, `+ bias`. A node without in-edges gets `bias`.
pub fn gat(s: &crate::spec::GatSpec, x: &Tensor, g: &Graphs) -> Tensor {
    let (heads, c) = (s.heads, s.per_head);
    let hc = heads * c;
    let h = linear(x, &s.w, Some(&s.bl));
    let xr = s.wr.as_ref().map(|wr| linear(x, wr, Some(&s.br)));
    let lrelu = |v: f64| if v < 0.0 { v * s.negative_slope } else { v };
    let n = g.num_nodes;
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let (mut ls, mut ld) = (vec![0.0; n * heads], vec![0.0; n * heads]);
    if !s.v2 {
        for j in 0..n {
            for k in 0..heads {
                let r = &h.row(j)[k * c..(k + 1) * c];
                ls[j * heads + k] = dot(&s.att_src[k * c..(k + 1) * c], r);
                ld[j * heads + k] = dot(&s.att_dst[k * c..(k + 1) * c], r);
            }
        }
    }
    // Edge features (edgefeat): per-head logit term of an attribute vector;
    // the added self-loop gets the mean attribute of the node's non-loop in-edges.
    let d = g.edge_dim;
    let attr = g.edge_attr.as_deref().unwrap_or(&[]);
    let edge_term = |a: &[f64], k: usize| -> f64 {
        match &s.edge {
            None => 0.0,
            Some((w, att)) => (0..c)
                .map(|q| att[k * c + q] * dot(w.row(k * c + q), a))
                .sum(),
        }
    };
    let mut loop_attr = vec![0.0f64; n * d];
    if s.edge.is_some() {
        let mut count = vec![0usize; n];
        for e in 0..g.num_edges() {
            let (sj, ti) = (g.sources[e] as usize, g.targets[e] as usize);
            if sj != ti {
                count[ti] += 1;
                for q in 0..d {
                    loop_attr[ti * d + q] += attr[e * d + q] as f64;
                }
            }
        }
        for i in 0..n {
            for q in 0..d {
                loop_attr[i * d + q] /= count[i].max(1) as f64;
            }
        }
    }
    let edge_attr_of = |e: Option<usize>, i: usize| -> Vec<f64> {
        match e {
            Some(e) => attr[e * d..(e + 1) * d].iter().map(|&v| v as f64).collect(),
            None => loop_attr[i * d..(i + 1) * d].to_vec(),
        }
    };
    // GATv2: lin_edge(e) of channel `at`, added to xl_j + xr_i before the LeakyReLU.
    let edge_chan = |a: &[f64], at: usize| -> f64 {
        match &s.edge {
            None => 0.0,
            Some((w, _)) => dot(w.row(at), a),
        }
    };
    let logit = |j: usize, i: usize, k: usize, e: Option<usize>| -> f64 {
        match &xr {
            Some(xr) => {
                let ea = if s.edge.is_some() {
                    edge_attr_of(e, i)
                } else {
                    vec![]
                };
                (0..c)
                    .map(|q| {
                        let at = k * c + q;
                        s.att_src[at] * lrelu(h.row(j)[at] + xr.row(i)[at] + edge_chan(&ea, at))
                    })
                    .sum()
            }
            None => lrelu(
                ls[j * heads + k]
                    + ld[i * heads + k]
                    + if s.edge.is_some() {
                        edge_term(&edge_attr_of(e, i), k)
                    } else {
                        0.0
                    },
            ),
        }
    };
    let mut srcs: Vec<Vec<(usize, Option<usize>)>> = vec![Vec::new(); n];
    for e in 0..g.num_edges() {
        let (sj, ti) = (g.sources[e] as usize, g.targets[e] as usize);
        if !(s.add_self_loops && sj == ti) {
            srcs[ti].push((sj, Some(e)));
        }
    }
    if s.add_self_loops {
        for (i, v) in srcs.iter_mut().enumerate() {
            v.push((i, None));
        }
    }
    let out_ch = if s.concat { hc } else { c };
    let mut out = Tensor::zeros(n, out_ch);
    for (i, js) in srcs.iter().enumerate() {
        for k in 0..heads {
            let e: Vec<f64> = js.iter().map(|&(j, e)| logit(j, i, k, e)).collect();
            let m = e.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let w: Vec<f64> = e.iter().map(|v| (v - m).exp()).collect();
            let sum: f64 = w.iter().sum();
            for (&(j, _), wj) in js.iter().zip(&w) {
                let a = wj / sum;
                for q in 0..c {
                    let v = a * h.row(j)[k * c + q];
                    if s.concat {
                        out.data[i * out_ch + k * c + q] += v;
                    } else {
                        out.data[i * out_ch + q] += v / heads as f64;
                    }
                }
            }
        }
        for q in 0..out_ch {
            out.data[i * out_ch + q] += s.bias[q];
        }
    }
    out
}

/// The in-neighbours of every node for an EdgeConv: the graph's edges
/// (`k = 0`), or the `k` nearest points of the same graph of the batch by
/// squared Euclidean distance, the point itself included, ties to the smaller
/// index (a graph of fewer than `k` points gives all of them) — PyG's
/// `knn(x, x, k, batch, batch)` as DynamicEdgeConv uses it.
pub fn edge_conv_neighbours(k: usize, x: &Tensor, g: &Graphs) -> Vec<Vec<usize>> {
    let n = g.num_nodes;
    let mut nb = vec![Vec::new(); n];
    if k == 0 {
        for e in 0..g.num_edges() {
            nb[g.targets[e] as usize].push(g.sources[e] as usize);
        }
        return nb;
    }
    for (i, v) in nb.iter_mut().enumerate() {
        let xi = x.row(i);
        let mut c: Vec<(f64, usize)> = (0..n)
            .filter(|&j| g.batch[j] == g.batch[i])
            .map(|j| {
                let d = xi
                    .iter()
                    .zip(x.row(j))
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f64>();
                (d, j)
            })
            .collect();
        c.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        *v = c.into_iter().take(k).map(|(_, j)| j).collect();
    }
    nb
}

/// EdgeConv / DynamicEdgeConv (PyG, eval): for every edge `j→i` (see
/// [`edge_conv_neighbours`]) the message `nn([x_i, x_j − x_i])`, aggregated
/// by max, mean or sum (a node without in-edges gets 0). Also returns every
/// per-edge hidden vector (after the first layer and its activation), for
/// calibrating the int8 hidden vector of a two-layer `nn`.
pub fn edge_conv(s: &crate::spec::EdgeConvSpec, x: &Tensor, g: &Graphs) -> (Tensor, Vec<f64>) {
    let n = g.num_nodes;
    let f = x.channels;
    let nb = edge_conv_neighbours(s.k, x, g);
    let out_ch = s.w2.as_ref().map_or(s.w1.rows, |m| m.rows);
    let mut out = Tensor::zeros(n, out_ch);
    let mut hidden = Vec::new();
    for (i, js) in nb.iter().enumerate() {
        let xi = x.row(i);
        let mut agg = vec![0.0f64; out_ch];
        for (e, &j) in js.iter().enumerate() {
            let xj = x.row(j);
            let h: Vec<f64> = (0..s.w1.rows)
                .map(|c| {
                    let w = s.w1.row(c);
                    let mut a = s.b1[c];
                    for q in 0..f {
                        a += w[q] * xi[q] + w[f + q] * (xj[q] - xi[q]);
                    }
                    s.act1.apply(a)
                })
                .collect();
            let m: Vec<f64> = match &s.w2 {
                Some(w2) => {
                    hidden.extend_from_slice(&h);
                    (0..w2.rows)
                        .map(|c| {
                            let a =
                                s.b2[c] + w2.row(c).iter().zip(&h).map(|(w, v)| w * v).sum::<f64>();
                            s.act2.apply(a)
                        })
                        .collect()
                }
                None => h,
            };
            for (a, v) in agg.iter_mut().zip(m) {
                *a = match s.aggr {
                    Aggr::Max if e > 0 => a.max(v),
                    Aggr::Max => v,
                    Aggr::Sum | Aggr::Mean => *a + v,
                };
            }
        }
        if s.aggr == Aggr::Mean && !js.is_empty() {
            agg.iter_mut().for_each(|a| *a /= js.len() as f64);
        }
        out.data[i * out_ch..(i + 1) * out_ch].copy_from_slice(&agg);
    }
    (out, hidden)
}

/// The name under which [`run`] stores the per-edge hidden values of a
/// two-layer EdgeConv `op` (one row per edge, for calibration).
pub fn edge_conv_hidden_name(op: &str) -> String {
    format!("{op}#hidden")
}

/// The pairs of `g` (none without `edge_label_index`).
fn pairs_of(g: &Graphs) -> (&[u16], &[u16]) {
    match &g.pairs {
        Some(p) => (&p.sources, &p.targets),
        None => (&[], &[]),
    }
}

/// The pair decoders (link prediction), one row per pair `(s, t)`:
/// `inner_product` `z_s · z_t` (the logit, PyG's `InnerProductDecoder` with
/// `sigmoid=False`), `pair_hadamard` `z_s ⊙ z_t`, `pair_concat` `[z_s, z_t]`.
pub fn pair_op(kind: &OpKind, z: &Tensor, g: &Graphs) -> Tensor {
    let (src, dst) = pairs_of(g);
    let c = z.channels;
    let out_ch = match kind {
        OpKind::InnerProduct => 1,
        OpKind::PairHadamard => c,
        _ => 2 * c,
    };
    let mut out = Tensor::zeros(src.len(), out_ch);
    for (k, (&s, &t)) in src.iter().zip(dst).enumerate() {
        let (a, b) = (z.row(s as usize), z.row(t as usize));
        let o = &mut out.data[k * out_ch..(k + 1) * out_ch];
        match kind {
            OpKind::InnerProduct => o[0] = a.iter().zip(b).map(|(x, y)| x * y).sum(),
            OpKind::PairHadamard => {
                for ((o, x), y) in o.iter_mut().zip(a).zip(b) {
                    *o = x * y;
                }
            }
            _ => {
                o[..c].copy_from_slice(a);
                o[c..].copy_from_slice(b);
            }
        }
    }
    out
}

/// All tensors of one run, by spec name (the input included).
pub type Values = HashMap<String, Tensor>;

/// Runs the whole spec on `g`. `progress` is called after every op with its index.
pub fn run(spec: &Spec, g: &Graphs, mut progress: impl FnMut(usize)) -> Result<Values> {
    if g.channels != spec.in_channels {
        return Err(anyhow!(
            "graphs have {} feature channels, the model input '{}' expects {}",
            g.channels,
            spec.input,
            spec.in_channels
        ));
    }
    let mut vals: Values = HashMap::new();
    vals.insert(
        spec.input.clone(),
        Tensor {
            rows: g.num_nodes,
            channels: g.channels,
            data: g.x.iter().map(|&v| v as f64).collect(),
        },
    );
    if let Some((name, d)) = &spec.edge_input {
        let attr = g.edge_attr.as_ref().ok_or_else(|| {
            anyhow!("the model reads edge features ('{name}') but the graphs have no edge_attr")
        })?;
        if g.edge_dim != *d {
            return Err(anyhow!(
                "graphs have {} edge feature channels, the model's edge input '{name}' expects {d}",
                g.edge_dim
            ));
        }
        vals.insert(
            name.clone(),
            Tensor {
                rows: g.num_edges(),
                channels: *d,
                data: attr.iter().map(|&v| v as f64).collect(),
            },
        );
    }
    for (k, op) in spec.ops.iter().enumerate() {
        let ins: Vec<&Tensor> = op.inputs.iter().map(|i| &vals[i]).collect();
        let mut extra = None;
        if let OpKind::EdgeConv(e) = &op.kind {
            if e.w2.is_some() {
                let (_, hidden) = edge_conv(e, ins[0], g);
                let h = e.w1.rows;
                extra = Some((
                    edge_conv_hidden_name(&op.name),
                    Tensor {
                        rows: hidden.len() / h,
                        channels: h,
                        data: hidden,
                    },
                ));
            }
        }
        let out = exec_op(&op.kind, &ins, g);
        if let Some((name, t)) = extra {
            vals.insert(name, t);
        }
        debug_assert_eq!(out.channels, op.channels);
        debug_assert_eq!(
            out.rows,
            match op.rows {
                Rows::Node => g.num_nodes,
                Rows::Graph => g.num_graphs,
                Rows::Pair => pairs_of(g).0.len(),
            }
        );
        vals.insert(op.name.clone(), out);
        progress(k);
    }
    Ok(vals)
}
