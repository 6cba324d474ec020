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

/// GATConv / GATv2Conv (PyG, eval, no edge features). `h = lin(x)` (GATv2:
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
    let logit = |j: usize, i: usize, k: usize| -> f64 {
        match &xr {
            Some(xr) => (0..c)
                .map(|q| {
                    let at = k * c + q;
                    s.att_src[at] * lrelu(h.row(j)[at] + xr.row(i)[at])
                })
                .sum(),
            None => lrelu(ls[j * heads + k] + ld[i * heads + k]),
        }
    };
    let mut srcs: Vec<Vec<usize>> = vec![Vec::new(); n];
    for e in 0..g.num_edges() {
        let (sj, ti) = (g.sources[e] as usize, g.targets[e] as usize);
        if !(s.add_self_loops && sj == ti) {
            srcs[ti].push(sj);
        }
    }
    if s.add_self_loops {
        for (i, v) in srcs.iter_mut().enumerate() {
            v.push(i);
        }
    }
    let out_ch = if s.concat { hc } else { c };
    let mut out = Tensor::zeros(n, out_ch);
    for (i, js) in srcs.iter().enumerate() {
        for k in 0..heads {
            let e: Vec<f64> = js.iter().map(|&j| logit(j, i, k)).collect();
            let m = e.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let w: Vec<f64> = e.iter().map(|v| (v - m).exp()).collect();
            let sum: f64 = w.iter().sum();
            for (&j, wj) in js.iter().zip(&w) {
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
    for (k, op) in spec.ops.iter().enumerate() {
        let ins: Vec<&Tensor> = op.inputs.iter().map(|i| &vals[i]).collect();
        let out = exec_op(&op.kind, &ins, g);
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
