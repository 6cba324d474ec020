//! `gat_conv` / `gatv2_conv`: PyG's GATConv and GATv2Conv (eval), with
//! optional edge features, heads concatenated or averaged. On the device the
//! attention vectors are i16 per head and the logits Q16 (see
//! `docs/quantization.md`).

use anyhow::{bail, Result};
use serde_json::json;
use tinygnn::format::writer::ChannelRecord;
use tinygnn::format::{GatEdge, Op, Section};
use tinygnn::ops;
use tinygnn::ops::gat::LOGIT_FRAC_BITS;
use tinygnn::quant::quantize_multiplier;

use super::common::{linear, Mat, Parse, Rows, Tensor};
use super::describe::{act_str, Describe, Described, Inspect};
use super::host_op::HostOp;
use crate::lower::{channel_record, le_bytes, Lower};
use crate::st::Graphs;
use crate::weights::{quantize_weights_floored, scale_floor};

/// The weights and options of a GATConv / GATv2Conv.
#[derive(Debug, Clone, PartialEq)]
pub struct Gat {
    /// GATv2Conv.
    pub v2: bool,
    /// Heads `H`.
    pub heads: usize,
    /// Channels per head `C`.
    pub per_head: usize,
    /// Concatenate the heads (else mean).
    pub concat: bool,
    /// LeakyReLU slope of the attention.
    pub negative_slope: f64,
    /// Remove self-loops and add one per node.
    pub add_self_loops: bool,
    /// `lin.weight` (GAT) or `lin_l.weight` (GATv2), `[H·C, in]`.
    pub w: Mat,
    /// `lin_l.bias` (GATv2; zeros for GAT), `[H·C]`.
    pub bl: Vec<f64>,
    /// `lin_r.weight` (GATv2), `[H·C, in]`.
    pub wr: Option<Mat>,
    /// `lin_r.bias` (GATv2; zeros for GAT), `[H·C]`.
    pub br: Vec<f64>,
    /// `att_src` (GAT) or `att` (GATv2), `[H·C]`.
    pub att_src: Vec<f64>,
    /// `att_dst` (GAT), `[H·C]`; empty for GATv2.
    pub att_dst: Vec<f64>,
    /// Conv bias, `[out]` (`H·C` with concat, `C` without; zeros when absent).
    pub bias: Vec<f64>,
    /// Edge features (`edge_dim`): `lin_edge.weight` `[H·C, D]` and, for GAT,
    /// `att_edge` `[H·C]` (empty for GATv2, which adds `lin_edge(e)` to
    /// `xl_j + xr_i` per channel); self-loops get the mean attribute.
    pub edge: Option<(Mat, Vec<f64>)>,
}

/// The common attributes of both convs, checked.
struct Head {
    i: usize,
    c: usize,
    heads: usize,
    edge_dim: Option<usize>,
    negative_slope: f64,
    concat: bool,
    add_self_loops: bool,
}

fn parse_head(cx: &Parse<'_>) -> Result<Head> {
    let who = cx.who();
    cx.need_node()?;
    let (i, c) = cx.in_out()?;
    let heads = cx.opt_usize_attr("heads")?.unwrap_or(1);
    if heads == 0 || heads > 255 {
        bail!("{who}: heads {heads} is not in 1..=255");
    }
    let edge_dim = match cx.opt_usize_attr("edge_dim")? {
        None => None,
        Some(d) => {
            let d = cx.edge_dim(d)?;
            match cx.attr("fill_value").map(|v| v.as_str()) {
                None | Some(Some("mean")) => {}
                Some(other) => bail!("{who}: fill_value {other:?} is not supported (only 'mean')"),
            }
            Some(d)
        }
    };
    if cx.bool_attr("residual", false)? {
        bail!("{who}: residual=True is not supported yet");
    }
    let negative_slope = cx.f64_attr("negative_slope", 0.2)?;
    if negative_slope < 0.0 {
        bail!("{who}: negative_slope {negative_slope} < 0 is not supported");
    }
    Ok(Head {
        i,
        c,
        heads,
        edge_dim,
        negative_slope,
        concat: cx.bool_attr("concat", true)?,
        add_self_loops: cx.bool_attr("add_self_loops", true)?,
    })
}

fn parse_gat(cx: &Parse<'_>, v2: bool) -> Result<Gat> {
    let h = parse_head(cx)?;
    let hc = h.heads * h.c;
    let out = if h.concat { hc } else { h.c };
    let vec_of = |role: &str| cx.param(role, &[hc], "[heads · out_channels]");
    let opt_vec = |role: &str| cx.bias(role, hc, "[heads · out_channels]");
    let bias = cx.bias(
        "bias",
        out,
        "[heads · out_channels] with concat, else [out_channels]",
    )?;
    let share = cx.bool_attr("share_weights", false)?;
    let (w, bl, wr, br, att_src, att_dst, edge) = if v2 {
        let w = cx.mat("weight_l", hc, h.i)?;
        let wr = if share {
            w.clone()
        } else {
            cx.mat("weight_r", hc, h.i)?
        };
        let bl = opt_vec("bias_l")?;
        let br = if share {
            bl.clone()
        } else {
            opt_vec("bias_r")?
        };
        // GATv2: lin_edge(e) is added per channel (no att_edge).
        let edge = match h.edge_dim {
            Some(d) => Some((cx.mat("lin_edge_weight", hc, d)?, vec![])),
            None => None,
        };
        (w, bl, Some(wr), br, vec_of("att")?, vec![], edge)
    } else {
        let w = cx.mat("weight", hc, h.i)?;
        let (src, dst) = (vec_of("att_src")?, vec_of("att_dst")?);
        let edge = match h.edge_dim {
            Some(d) => Some((cx.mat("lin_edge_weight", hc, d)?, vec_of("att_edge")?)),
            None => None,
        };
        (w, vec![0.0; hc], None, vec![0.0; hc], src, dst, edge)
    };
    Ok(Gat {
        v2,
        heads: h.heads,
        per_head: h.c,
        concat: h.concat,
        negative_slope: h.negative_slope,
        add_self_loops: h.add_self_loops,
        w,
        bl,
        wr,
        br,
        att_src,
        att_dst,
        bias,
        edge,
    })
}

impl HostOp for Gat {
    const TYPES: &'static [&'static str] = &["gat_conv", "gatv2_conv"];

    fn parse(cx: &Parse<'_>) -> Result<(Self, Rows, usize)> {
        let g = parse_gat(cx, cx.ty == "gatv2_conv")?;
        let out = if g.concat {
            g.heads * g.per_head
        } else {
            g.per_head
        };
        Ok((g, Rows::Node, out))
    }

    fn type_name(&self) -> &'static str {
        if self.v2 {
            "gatv2_conv"
        } else {
            "gat_conv"
        }
    }

    fn device_name(&self) -> &'static str {
        self.type_name()
    }

    fn reference(&self, ins: &[&Tensor], g: &Graphs) -> Tensor {
        reference(self, ins[0], g)
    }

    fn fuses_act(&self) -> bool {
        true
    }

    fn has_weights(&self) -> bool {
        true
    }

    /// GAT (not GATv2: two matrices on one input) is rounded by the
    /// sequential hook against its projection's input, `x` itself.
    fn feedback_input(&self, x: &Tensor, _g: &Graphs) -> Option<Tensor> {
        (!self.v2).then(|| x.clone())
    }

    /// The output is the attention-weighted sum, not the projection.
    fn output_is_projection(&self) -> bool {
        false
    }

    fn lower(&self, cx: &mut Lower<'_, '_>) -> Result<Op> {
        lower(self, cx)
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
pub fn reference(s: &Gat, x: &Tensor, g: &Graphs) -> Tensor {
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
    // Edge features: per-head logit term of an attribute vector; the added
    // self-loop gets the mean attribute of the node's non-loop in-edges.
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

/// One head's vector `v` (applied to values of scale `s_x`) as i16 with
/// one scale (max |v| / 32767), and the Q16 logit rescale of `s_x·scale`;
/// `what` names the vector in the error.
fn head_i16(v: &[f64], s_x: f64, who: &str, what: &str) -> Result<(Vec<i16>, (i32, i32))> {
    let m = v.iter().fold(0.0f64, |a, x| a.max(x.abs()));
    let s = if m > 0.0 { m / 32767.0 } else { 1.0 };
    let q = v
        .iter()
        .map(|x| (x / s).round().clamp(-32767.0, 32767.0) as i16)
        .collect();
    let (mult, shift) = quantize_multiplier(s_x * s * (1u64 << LOGIT_FRAC_BITS) as f64);
    if !(-32..=31).contains(&shift) {
        bail!("{who}: {what} logit rescale {} is out of range", s_x * s);
    }
    Ok((q, (mult, shift)))
}

fn lower(g: &Gat, cx: &mut Lower<'_, '_>) -> Result<Op> {
    let (s_in, s_out) = (cx.s_in, cx.s_out);
    let hc = g.heads * g.per_head;
    // The conv bias (per output channel, mean: scaled by H) and GATv2's
    // lin biases all live in the accumulator scale s_in·s_w.
    let floors: Vec<f64> = (0..hc)
        .map(|q| {
            let ob = if g.concat {
                g.bias[q]
            } else {
                g.bias[q % g.per_head] * g.heads as f64
            };
            let so = if g.concat {
                s_out
            } else {
                s_out * g.heads as f64
            };
            scale_floor(ob, s_in, Some(so))
                .max(scale_floor(g.bl[q], s_in, None))
                .max(scale_floor(g.br[q], s_in, None))
        })
        .collect();
    let mats: Vec<&Mat> = std::iter::once(&g.w).chain(g.wr.as_ref()).collect();
    // Weight precision per layer: int4 like every op with weights. GAT: the
    // sequential GPFQ hook (it fixes `lin` against the layer's quantized
    // input, which is the projection's input); GATv2 (two matrices on the
    // same input): plain GPFQ per matrix with `--int4-rounding gpfq`, else
    // nearest with the MSE scale. The hook's bias correction is not used (GAT
    // has no bias before the attention).
    let mut lw = cx.quantize(&mats, &floors, !g.concat);
    let mut zero_b = vec![0.0; hc];
    cx.round_int4(&mats, &floors, &mut lw, !g.v2, &mut zero_b);
    let scales = &lw.scales;
    let recs: Vec<ChannelRecord> = if g.concat {
        cx.check_records(scales, &g.bias, false);
        cx.records(scales, &g.bias)
    } else {
        let acc_scale = s_in * scales[0];
        let rescale = acc_scale / (g.heads as f64 * s_out);
        g.bias
            .iter()
            .map(|&b| channel_record(b * g.heads as f64, acc_scale, rescale))
            .collect()
    };
    let (weights, weights_r) = cx.add_weights(&lw, g.w.cols)?;
    let acc_int = |b: f64, q: usize| -> i32 {
        (b / (s_in * scales[q]))
            .round()
            .clamp(i32::MIN as f64, i32::MAX as f64) as i32
    };
    let lin_bias = if g.v2 {
        let v: Vec<u8> = (0..hc)
            .map(|q| acc_int(g.bl[q], q))
            .chain((0..hc).map(|q| acc_int(g.br[q], q)))
            .flat_map(i32::to_le_bytes)
            .collect();
        cx.add_table(&v)
    } else {
        Section::default()
    };
    // Attention vectors with the weight scale folded in, i16 per head with
    // one scale per head; logits in Q16 (no calibration needed: the logit
    // grid is absolute).
    let mut att_q: Vec<i16> = Vec::new();
    let mut logit: Vec<i32> = Vec::new();
    let mut rescales: Vec<Vec<(i32, i32)>> = vec![Vec::new(); g.heads];
    for vec_ in std::iter::once(&g.att_src).chain((!g.v2).then_some(&g.att_dst)) {
        for (k, r) in rescales.iter_mut().enumerate() {
            let v: Vec<f64> = (0..g.per_head)
                .map(|c| vec_[k * g.per_head + c] * scales[k * g.per_head + c])
                .collect();
            let (vq, rescale) = head_i16(&v, s_in, &cx.who, "attention")?;
            att_q.extend(vq);
            r.push(rescale);
        }
    }
    for r in &rescales {
        for (m, sh) in r {
            logit.push(*m);
            logit.push(*sh);
        }
    }
    let att = cx.add_table(&le_bytes(&att_q, i16::to_le_bytes));
    let logit = cx.add_table(&le_bytes(&logit, i32::to_le_bytes));
    let edge = match &g.edge {
        None => None,
        Some((we, att_e)) => Some(lower_edge(g, cx, we, att_e, scales)?),
    };
    let params = cx.add_params(&recs);
    Ok(Op::GatConv(ops::GatConv {
        input: cx.input(),
        output: cx.output,
        heads: g.heads as u8,
        concat: g.concat,
        v2: g.v2,
        add_self_loops: g.add_self_loops,
        negative_slope_q16: cx.q16(g.negative_slope)?,
        weights,
        weights_r,
        lin_bias,
        att,
        logit,
        params,
        act: cx.act,
        edge,
    }))
}

/// Edge features: GAT folds `att_edge·lin_edge` into `V [H, D]`, i16 per
/// head with one scale per head, and its Q16 logit rescale; GATv2 keeps
/// `lin_edge` int8 per channel, its accumulator (scale `s_e·s_we[q]`)
/// rescaled into `xl`'s (`s_in·s_w[q]`).
fn lower_edge(
    g: &Gat,
    cx: &mut Lower<'_, '_>,
    we: &Mat,
    att_e: &[f64],
    scales: &[f64],
) -> Result<GatEdge> {
    let (edge_attr, s_e) = cx.edge_input()?;
    let (c, d) = (g.per_head, we.cols);
    let (mut vq, mut lg) = (Vec::new(), Vec::new());
    let mut wq: Vec<i8> = Vec::new();
    if g.v2 {
        let (q8, s_we) = quantize_weights_floored(&[we], false, &[]);
        wq = q8.into_iter().next().unwrap_or_default();
        for (q, sw) in s_we.iter().enumerate() {
            let r = s_e * sw / (cx.s_in * scales[q]);
            let (mult, shift) = quantize_multiplier(r);
            if !(-32..=31).contains(&shift) {
                bail!(
                    "{}: edge rescale {r} of channel {q} is out of range",
                    cx.who
                );
            }
            lg.push(mult);
            lg.push(shift);
        }
    }
    for k in 0..if g.v2 { 0 } else { g.heads } {
        let v: Vec<f64> = (0..d)
            .map(|q| {
                (0..c)
                    .map(|cc| att_e[k * c + cc] * we.row(k * c + cc)[q])
                    .sum()
            })
            .collect();
        let (q, (mult, shift)) = head_i16(&v, s_e, &cx.who, "edge")?;
        vq.extend(q);
        lg.push(mult);
        lg.push(shift);
    }
    let att = if g.v2 {
        cx.add_i8(&wq)
    } else {
        cx.add_table(&le_bytes(&vq, i16::to_le_bytes))
    };
    let logit = cx.add_table(&le_bytes(&lg, i32::to_le_bytes));
    Ok(GatEdge {
        edge_attr,
        att,
        logit,
    })
}

impl Describe for ops::GatConv {
    fn describe(&self, cx: &mut Inspect<'_, '_>) -> Described {
        cx.weights(&self.weights);
        cx.weights(&self.weights_r);
        cx.params(self.params.len + self.lin_bias.len + self.att.len + self.logit.len);
        cx.out_biases();
        Described::new(
            act_str(&self.act),
            cx.mult_summary(self.params),
            json!({"heads": self.heads, "concat": self.concat, "add_self_loops": self.add_self_loops,
                   "negative_slope": self.negative_slope_q16 as f64 / 65536.0}),
        )
    }
}
