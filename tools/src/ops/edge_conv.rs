//! `edge_conv` / `dynamic_edge_conv`: PyG's EdgeConv and DynamicEdgeConv
//! (message `nn([x_i, x_j − x_i])` over the graph's edges or a kNN graph),
//! lowered as described in `docs/point-clouds.md`.

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};
use tinygnn::format::{Op, Section};
use tinygnn::ops;

use super::common::activation_quant;
use super::common::{Act, Aggr, BatchNorm, Mat, Parse, Rows, Tensor};
use super::describe::{act_str, Describe, Described, Inspect};
use super::host_op::HostOp;
use crate::lower::{channel_records, Lower};
use crate::st::Graphs;
use crate::weights::{quantize_weights_floored, scale_floor};

/// An EdgeConv / DynamicEdgeConv: message `nn([x_i, x_j − x_i])` with
/// `nn = Linear → act1 [→ Linear → act2]` (BatchNorm folded into the Linear
/// before it, dropout dropped), aggregated over the in-edges (`k = 0`) or the
/// `k` nearest points of the same graph (itself included).
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeConv {
    /// 0: the graph's edges; `k ≥ 1`: kNN graph.
    pub k: usize,
    /// Aggregation.
    pub aggr: Aggr,
    /// First Linear, `[H, 2·in]` (columns `0..in` act on `x_i`, `in..2·in` on `x_j − x_i`).
    pub w1: Mat,
    /// Its bias `[H]`.
    pub b1: Vec<f64>,
    /// Activation after it.
    pub act1: Act,
    /// Second Linear `[out, H]`, if any.
    pub w2: Option<Mat>,
    /// Its bias `[out]` (empty without a second layer).
    pub b2: Vec<f64>,
    /// Activation after it.
    pub act2: Act,
}

impl HostOp for EdgeConv {
    const TYPES: &'static [&'static str] = &["edge_conv", "dynamic_edge_conv"];

    fn parse(cx: &Parse<'_>) -> Result<(Self, Rows, usize)> {
        cx.need_node()?;
        let i = cx.usize_attr("in_channels")?;
        cx.check_in(i)?;
        let k = if cx.ty == "dynamic_edge_conv" {
            let k = cx.usize_attr("k")?;
            if k == 0 || k > u16::MAX as usize {
                bail!("{}: k = {k} is not in 1..=65535", cx.who());
            }
            k
        } else {
            0
        };
        let aggr = cx.aggr_attr(Aggr::Max)?;
        let e = parse_nn(cx, i, k, aggr)?;
        let out = e.w2.as_ref().map_or(e.w1.rows, |m| m.rows);
        Ok((e, Rows::Node, out))
    }

    fn type_name(&self) -> &'static str {
        if self.k > 0 {
            "dynamic_edge_conv"
        } else {
            "edge_conv"
        }
    }

    fn device_name(&self) -> &'static str {
        self.type_name()
    }

    fn reference(&self, ins: &[&Tensor], g: &Graphs) -> Tensor {
        reference(self, ins[0], g).0
    }

    /// A two-layer `nn`'s per-edge hidden vector (one row per edge), whose
    /// range the int8 hidden vector takes.
    fn extra_values(&self, name: &str, ins: &[&Tensor], g: &Graphs) -> Vec<(String, Tensor)> {
        if self.w2.is_none() {
            return Vec::new();
        }
        let (_, hidden) = reference(self, ins[0], g);
        let h = self.w1.rows;
        let t = Tensor {
            rows: hidden.len() / h,
            channels: h,
            data: hidden,
        };
        vec![(hidden_name(name), t)]
    }

    fn has_weights(&self) -> bool {
        true
    }

    fn lower(&self, cx: &mut Lower<'_, '_>) -> Result<Op> {
        lower(self, cx)
    }
}

/// The name under which calibration keeps the per-edge hidden values of a
/// two-layer EdgeConv `op`.
pub fn hidden_name(op: &str) -> String {
    format!("{op}#hidden")
}

/// Reads and normalises the `nn` of an EdgeConv: `attrs.nn` is the list of its
/// layers (`linear` with `in_channels`/`out_channels`, `batch_norm` with
/// `eps`, `relu`, `leaky_relu` with `negative_slope`, `dropout`, `identity`),
/// their parameters are the roles `nn.<index>.<name>` (`weight`, `bias`,
/// `running_mean`, `running_var`). The shape must be
/// `linear [batch_norm] [act] [linear [batch_norm] [act]]`.
fn parse_nn(cx: &Parse<'_>, in_ch: usize, k: usize, aggr: Aggr) -> Result<EdgeConv> {
    let who = cx.who();
    let layers = cx
        .attr("nn")
        .and_then(|v| v.as_array())
        .ok_or_else(|| anyhow!("{who}: attribute 'nn' (the list of the nn's layers) is missing"))?;
    // (w, b, act) of each Linear, in order.
    let mut lins: Vec<(Mat, Vec<f64>, Act)> = Vec::new();
    let mut width = 2 * in_ch;
    for (idx, l) in layers.iter().enumerate() {
        let op = l.get("op").and_then(|v| v.as_str()).unwrap_or("");
        let role = |name: &str| format!("nn.{idx}.{name}");
        let open = lins.last().is_some_and(|l| l.2 == Act::None);
        match op {
            "linear" => {
                let (w, b) = nn_linear(cx, l, idx, width, &lins)?;
                width = w.rows;
                lins.push((w, b, Act::None));
            }
            "batch_norm" => {
                if !open {
                    bail!("{who}: nn layer {idx} (batch_norm) must directly follow a linear layer");
                }
                let c = width;
                let bn = BatchNorm {
                    eps: l.get("eps").and_then(|v| v.as_f64()).unwrap_or(1e-5),
                    gamma: cx.scale(&role("weight"), c, "[channels]")?,
                    beta: cx.bias(&role("bias"), c, "[channels]")?,
                    mean: cx.param(&role("running_mean"), &[c], "[channels]")?,
                    var: cx.param(&role("running_var"), &[c], "[channels]")?,
                };
                if let Some(ch) = (0..c).find(|&ch| bn.var[ch] + bn.eps <= 0.0) {
                    bail!("{who}: nn layer {idx}: running_var[{ch}] + eps is not positive");
                }
                let (w, b, _) = lins.last_mut().ok_or_else(|| anyhow!("{who}: unreachable"))?;
                bn.fold(&mut [w], b);
            }
            "relu" | "leaky_relu" => {
                if !open {
                    bail!("{who}: nn layer {idx} ({op}) must follow a linear (or batch_norm) layer");
                }
                let act = if op == "relu" {
                    Act::Relu
                } else {
                    let s = l.get("negative_slope").and_then(|v| v.as_f64()).unwrap_or(0.01);
                    if !(s >= 0.0 && s.is_finite()) {
                        bail!("{who}: nn layer {idx}: negative_slope {s} is not supported");
                    }
                    Act::Leaky(s)
                };
                if let Some(last) = lins.last_mut() {
                    last.2 = act;
                }
            }
            "dropout" | "identity" => {}
            other => bail!("{who}: nn layer {idx} ('{other}') is not supported (linear, batch_norm, relu, leaky_relu, dropout, identity)"),
        }
    }
    let mut it = lins.into_iter();
    let (w1, b1, act1) = it
        .next()
        .ok_or_else(|| anyhow!("{who}: nn has no linear layer"))?;
    let (w2, b2, act2) = match it.next() {
        Some((w, b, a)) => (Some(w), b, a),
        None => (None, vec![], Act::None),
    };
    Ok(EdgeConv {
        k,
        aggr,
        w1,
        b1,
        act1,
        w2,
        b2,
        act2,
    })
}

/// One `linear` layer of the `nn` (`width` input channels), after `lins`.
fn nn_linear(
    cx: &Parse<'_>,
    l: &Value,
    idx: usize,
    width: usize,
    lins: &[(Mat, Vec<f64>, Act)],
) -> Result<(Mat, Vec<f64>)> {
    let who = cx.who();
    let num = |key: &str| -> Result<usize> {
        l.get(key)
            .and_then(|v| v.as_u64())
            .map(|v| v as usize)
            .ok_or_else(|| anyhow!("{who}: nn layer {idx} (linear) needs integer '{key}'"))
    };
    let (i, o) = (num("in_channels")?, num("out_channels")?);
    if i != width {
        bail!("{who}: nn layer {idx} (linear) has in_channels {i}, expected {width}");
    }
    if lins.len() == 2 {
        bail!("{who}: nn has more than two linear layers (not supported)");
    }
    if lins.last().is_some_and(|l| l.2 == Act::None) {
        bail!("{who}: nn layer {idx}: two linear layers without an activation between them are not supported");
    }
    let w = cx.mat(&format!("nn.{idx}.weight"), o, i)?;
    let b = cx.bias(&format!("nn.{idx}.bias"), o, "[out_channels]")?;
    Ok((w, b))
}

/// The in-neighbours of every node for an EdgeConv: the graph's edges
/// (`k = 0`), or the `k` nearest points of the same graph of the batch by
/// squared Euclidean distance, the point itself included, ties to the smaller
/// index (a graph of fewer than `k` points gives all of them) — PyG's
/// `knn(x, x, k, batch, batch)` as DynamicEdgeConv uses it.
pub fn neighbours(k: usize, x: &Tensor, g: &Graphs) -> Vec<Vec<usize>> {
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
/// [`neighbours`]) the message `nn([x_i, x_j − x_i])`, aggregated by max,
/// mean or sum (a node without in-edges gets 0). Also returns every per-edge
/// hidden vector (after the first layer and its activation), for calibrating
/// the int8 hidden vector of a two-layer `nn`.
pub fn reference(s: &EdgeConv, x: &Tensor, g: &Graphs) -> (Tensor, Vec<f64>) {
    let n = g.num_nodes;
    let f = x.channels;
    let nb = neighbours(s.k, x, g);
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

/// Lowers an EdgeConv (see `docs/point-clouds.md`): the first Linear
/// `W = [W_a | W_b]` becomes `W_a − W_b` (on `x_i`) and `W_b` (on `x_j`),
/// quantized together with **one** scale per output channel (the larger
/// range of the two rows, as for SAGE's `lin_l`/`lin_r`), so their i32
/// products share the accumulator scale `s_in·s_w[c]` and add exactly. With
/// two layers the per-edge hidden vector is int8 with the calibrated range of
/// `<op>#hidden`; the second layer then rescales from it to the output.
fn lower(e: &EdgeConv, cx: &mut Lower<'_, '_>) -> Result<Op> {
    let (s_in, s_out) = (cx.s_in, cx.s_out);
    let f = e.w1.cols / 2;
    let h = e.w1.rows;
    let split = |off: usize, sub: bool| Mat {
        rows: h,
        cols: f,
        data: (0..h)
            .flat_map(|c| {
                let r = e.w1.row(c);
                (0..f).map(move |q| if sub { r[q] - r[f + q] } else { r[off + q] })
            })
            .collect(),
    };
    let w_self_f = split(0, true);
    let w_nbr_f = split(f, false);
    // The scale the first layer rescales to: the hidden vector's, or the output's.
    let (s_h, zp_h) = match &e.w2 {
        Some(_) => {
            let (s, z) = activation_quant((cx.range)(&hidden_name(cx.layer.name))?);
            (s as f64, z)
        }
        None => (s_out, 0),
    };
    let floors: Vec<f64> =
        e.b1.iter()
            .map(|&b| scale_floor(b, s_in, Some(s_h)))
            .collect();
    let (q1, sc1) = quantize_weights_floored(&[&w_self_f, &w_nbr_f], false, &floors);
    cx.check_records_at(&sc1, &e.b1, (s_in, s_h), false);
    let w_self = cx.add_i8(&q1[0]);
    let w_nbr = cx.add_i8(&q1[1]);
    let params1 = cx.add_params(&channel_records(&sc1, &e.b1, s_in, s_h));
    let (w2, params2) = match &e.w2 {
        Some(m) => {
            let floors: Vec<f64> =
                e.b2.iter()
                    .map(|&b| scale_floor(b, s_h, Some(s_out)))
                    .collect();
            let (q2, sc2) = quantize_weights_floored(&[m], false, &floors);
            cx.check_records_at(&sc2, &e.b2, (s_h, s_out), false);
            let w2 = cx.add_i8(&q2[0]);
            (w2, cx.add_params(&channel_records(&sc2, &e.b2, s_h, s_out)))
        }
        None => (Section::default(), Section::default()),
    };
    let who = &cx.who;
    Ok(Op::EdgeConv(ops::EdgeConv {
        input: cx.input(),
        output: cx.output,
        aggr: e.aggr.device(),
        k: u16::try_from(e.k).map_err(|_| anyhow!("{who}: k = {} is too large", e.k))?,
        hidden: u16::try_from(h).map_err(|_| anyhow!("{who}: {h} hidden channels"))?,
        w_self,
        w_nbr,
        params1,
        act1: e.act1.device(),
        hidden_zp: zp_h,
        w2,
        params2,
        act2: e.act2.device(),
    }))
}

impl Describe for ops::EdgeConv {
    fn describe(&self, cx: &mut Inspect<'_, '_>) -> Described {
        let wb = cx.weights(&self.w_self);
        cx.weights(&self.w_nbr);
        cx.weights(&self.w2);
        cx.params(self.params1.len + self.params2.len);
        cx.bias_bytes += 4 * self.hidden as usize;
        let two = self.w2.len > 0;
        if two {
            cx.out_biases();
        }
        let last = if two { self.params2 } else { self.params1 };
        Described::new(
            format!("{} / {}", act_str(&self.act1), act_str(&self.act2)),
            cx.mult_summary(last),
            json!({"weights": wb, "aggr": format!("{:?}", self.aggr).to_lowercase(), "k": self.k,
                   "hidden": self.hidden, "layers": if two { 2 } else { 1 }}),
        )
    }
}
