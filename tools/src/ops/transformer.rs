//! `transformer_conv`: PyG's TransformerConv (eval): per head
//! `α_ji = softmax_j(q_i·k_j / √C)` over the in-edges as given,
//! `out_i = Σ_j α_ji v_j`, heads concatenated or averaged, plus `lin_skip(x_i)`
//! with `root_weight`, gated with `beta`; with `edge_dim`, `lin_edge(e_ji)` is
//! added to the key and the value of each edge. `global_attention`: the same with every
//! node of the node's own graph in place of the in-edges, heads concatenated,
//! no root weight: `torch.nn.MultiheadAttention` over each graph's nodes
//! before its `out_proj` (a `linear` after it), as PyG's `GPSConv` runs it. On the device (`transformer_conv`)
//! queries and keys are i16 with one weight scale per matrix, values and the
//! root weight share one scale per output channel, and the softmax is GAT's
//! (see `tinygnn::ops::transformer`).

use anyhow::{anyhow, bail, Result};
use serde_json::json;
use tinygnn::format::{Op, Section, TransformerEdge};
use tinygnn::ops;
use tinygnn::quant::quantize_multiplier;

use super::common::{linear, Mat, Parse, Rows, Tensor};
use super::describe::{act_str, Describe, Described, Inspect};
use super::host_op::HostOp;
use crate::lower::{channel_records, Lower};
use crate::st::Graphs;
use crate::weights::{quantize_weights_floored, scale_floor};

/// A TransformerConv's weights and options.
#[derive(Debug, Clone, PartialEq)]
pub struct Transformer {
    /// Heads `H`.
    pub heads: usize,
    /// Channels per head `C` (`out_channels`).
    pub per_head: usize,
    /// Concatenate the heads (else average).
    pub concat: bool,
    /// Attend to every node of the node's graph (`global_attention`).
    pub global: bool,
    /// `lin_query`, `[HC, in]`, and its bias (zeros when absent).
    pub q: (Mat, Vec<f64>),
    /// `lin_key`.
    pub k: (Mat, Vec<f64>),
    /// `lin_value`.
    pub v: (Mat, Vec<f64>),
    /// `lin_skip` (`[HC or C, in]`) with `root_weight`.
    pub skip: Option<(Mat, Vec<f64>)>,
    /// `lin_edge.weight` `[HC, D]` with `edge_dim` (no bias).
    pub edge: Option<Mat>,
    /// `lin_beta.weight` (`3·out` values: the attention part, the root term,
    /// their difference) with `beta` and a root weight.
    pub beta: Option<Vec<f64>>,
}

impl Transformer {
    fn hc(&self) -> usize {
        self.heads * self.per_head
    }

    fn out(&self) -> usize {
        if self.concat {
            self.hc()
        } else {
            self.per_head
        }
    }
}

impl HostOp for Transformer {
    const TYPES: &'static [&'static str] = &["transformer_conv", "global_attention"];

    fn parse(cx: &Parse<'_>) -> Result<(Self, Rows, usize)> {
        let who = cx.who();
        cx.need_node()?;
        let global = cx.ty == "global_attention";
        let (i, c) = if global {
            // channels, heads: C = channels / heads per head.
            let ch = cx.usize_attr("channels")?;
            cx.check_in(ch)?;
            let heads = cx.opt_usize_attr("heads")?.unwrap_or(1).max(1);
            if ch % heads != 0 {
                bail!("{who}: channels {ch} is not a multiple of heads {heads}");
            }
            (ch, ch / heads)
        } else {
            cx.in_out()?
        };
        let heads = cx.opt_usize_attr("heads")?.unwrap_or(1);
        if heads == 0 || heads > 255 {
            bail!("{who}: heads {heads} is not in 1..=255");
        }
        let concat = global || cx.bool_attr("concat", true)?;
        let hc = heads * c;
        let lin = |role: &str, rows: usize| -> Result<(Mat, Vec<f64>)> {
            let w = cx.mat(&format!("{role}_weight"), rows, i)?;
            let b = cx.bias(&format!("{role}_bias"), rows, "[rows of the weight]")?;
            Ok((w, b))
        };
        let out = if concat { hc } else { c };
        let edge = match cx.opt_usize_attr("edge_dim")? {
            Some(_) if global => bail!("{who}: global attention takes no edge features"),
            Some(d) => Some(cx.mat("edge_weight", hc, cx.edge_dim(d)?)?),
            None => None,
        };
        let root = !global && cx.bool_attr("root_weight", true)?;
        // PyG uses lin_beta only with a root weight.
        let beta = if root && cx.bool_attr("beta", false)? {
            Some(cx.mat("beta_weight", 1, 3 * out)?.data)
        } else {
            None
        };
        let (q, k, v) = if global {
            // torch.nn.MultiheadAttention's in_proj: [Wq; Wk; Wv] and [bq; bk; bv].
            let (w, b) = lin("in_proj", 3 * hc)?;
            let part = |p: usize| {
                let m = Mat {
                    rows: hc,
                    cols: i,
                    data: w.data[p * hc * i..(p + 1) * hc * i].to_vec(),
                };
                (m, b[p * hc..(p + 1) * hc].to_vec())
            };
            (part(0), part(1), part(2))
        } else {
            (lin("query", hc)?, lin("key", hc)?, lin("value", hc)?)
        };
        let t = Transformer {
            heads,
            per_head: c,
            concat,
            q,
            k,
            v,
            global,
            skip: if root { Some(lin("skip", out)?) } else { None },
            edge,
            beta,
        };
        Ok((t, Rows::Node, out))
    }

    fn type_name(&self) -> &'static str {
        if self.global {
            "global_attention"
        } else {
            "transformer_conv"
        }
    }

    fn device_name(&self) -> &'static str {
        "transformer_conv"
    }

    fn reference(&self, ins: &[&Tensor], g: &Graphs) -> Tensor {
        reference(self, ins[0], g)
    }

    /// The queries and keys (`#q`, `#k`; with edge features the key of
    /// every edge): their ranges set the i16 shifts.
    fn extra_values(&self, name: &str, ins: &[&Tensor], g: &Graphs) -> Vec<(String, Tensor)> {
        let x = ins[0];
        let k = linear(x, &self.k.0, Some(&self.k.1));
        let k = match &self.edge {
            Some(we) => edge_keys(&k, we, g),
            None => k,
        };
        vec![
            (format!("{name}#q"), linear(x, &self.q.0, Some(&self.q.1))),
            (format!("{name}#k"), k),
        ]
    }

    fn fuses_act(&self) -> bool {
        true
    }

    fn has_weights(&self) -> bool {
        true
    }

    /// The output is the attention-weighted sum, not a projection.
    fn output_is_projection(&self) -> bool {
        false
    }

    fn lower(&self, cx: &mut Lower<'_, '_>) -> Result<Op> {
        lower(self, cx)
    }
}

/// `lin_edge(e)` of every edge, `[E, HC]`.
fn edge_terms(we: &Mat, g: &Graphs) -> Tensor {
    let d = g.edge_dim;
    let attr = g.edge_attr.as_deref().unwrap_or(&[]);
    let mut t = Tensor::zeros(g.num_edges(), we.rows);
    for e in 0..g.num_edges() {
        for q in 0..we.rows {
            t.data[e * we.rows + q] = (0..d)
                .map(|p| we.row(q)[p] * f64::from(attr.get(e * d + p).copied().unwrap_or(0.0)))
                .sum();
        }
    }
    t
}

/// The key of every edge, `k_j + lin_edge(e_ji)`, `[E, HC]`.
fn edge_keys(k: &Tensor, we: &Mat, g: &Graphs) -> Tensor {
    let mut t = edge_terms(we, g);
    for e in 0..g.num_edges() {
        let j = g.sources[e] as usize;
        for (o, &kv) in t.data[e * we.rows..(e + 1) * we.rows]
            .iter_mut()
            .zip(k.row(j))
        {
            *o += kv;
        }
    }
    t
}

/// PyG's TransformerConv in `f64`; a node without in-edges gets only its
/// root term.
pub fn reference(t: &Transformer, x: &Tensor, g: &Graphs) -> Tensor {
    let (h, c, hc) = (t.heads, t.per_head, t.hc());
    let q = linear(x, &t.q.0, Some(&t.q.1));
    let k = linear(x, &t.k.0, Some(&t.k.1));
    let v = linear(x, &t.v.0, Some(&t.v.1));
    let n = g.num_nodes;
    let et = t.edge.as_ref().map(|we| edge_terms(we, g));
    // Per target: (source, edge) pairs.
    let mut srcs: Vec<Vec<(usize, Option<usize>)>> = vec![Vec::new(); n];
    if t.global {
        for (i, s) in srcs.iter_mut().enumerate() {
            *s = (0..n)
                .filter(|&j| g.batch[j] == g.batch[i])
                .map(|j| (j, None))
                .collect();
        }
    } else {
        for e in 0..g.num_edges() {
            srcs[g.targets[e] as usize].push((g.sources[e] as usize, Some(e)));
        }
    }
    let plus = |base: &[f64], e: Option<usize>, q: usize| -> f64 {
        base[q] + e.zip(et.as_ref()).map_or(0.0, |(e, et)| et.row(e)[q])
    };
    let scale = 1.0 / (c as f64).sqrt();
    let mut att = Tensor::zeros(n, hc);
    for (i, js) in srcs.iter().enumerate() {
        for hd in 0..h {
            let l: Vec<f64> = js
                .iter()
                .map(|&(j, e)| {
                    (hd * c..(hd + 1) * c)
                        .map(|qq| q.row(i)[qq] * plus(k.row(j), e, qq))
                        .sum::<f64>()
                        * scale
                })
                .collect();
            let m = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let w: Vec<f64> = l.iter().map(|e| (e - m).exp()).collect();
            let s: f64 = w.iter().sum();
            for (&(j, e), wj) in js.iter().zip(&w) {
                for cc in 0..c {
                    att.data[i * hc + hd * c + cc] += wj / s * plus(v.row(j), e, hd * c + cc);
                }
            }
        }
    }
    let oc = t.out();
    let mut out = Tensor::zeros(n, oc);
    for i in 0..n {
        for o in 0..oc {
            out.data[i * oc + o] = if t.concat {
                att.data[i * hc + o]
            } else {
                (0..h).map(|hd| att.data[i * hc + hd * c + o]).sum::<f64>() / h as f64
            };
        }
    }
    if let Some((ws, bs)) = &t.skip {
        let r = linear(x, ws, Some(bs));
        match &t.beta {
            // out = σ(β·[a, r, a − r])·r + (1 − σ(·))·a
            Some(wb) => {
                for i in 0..n {
                    let (a, rr) = (&mut out.data[i * oc..(i + 1) * oc], r.row(i));
                    let g: f64 = (0..oc)
                        .map(|c| {
                            wb[c] * a[c] + wb[oc + c] * rr[c] + wb[2 * oc + c] * (a[c] - rr[c])
                        })
                        .sum();
                    let b = 1.0 / (1.0 + (-g).exp());
                    for (o, &rv) in a.iter_mut().zip(rr) {
                        *o = b * rv + (1.0 - b) * *o;
                    }
                }
            }
            None => {
                for (o, v) in out.data.iter_mut().zip(r.data) {
                    *o += v;
                }
            }
        }
    }
    out
}

/// A matrix with one scale for all its rows (queries, keys): the int8
/// values, the scale and the bias in accumulator units `s_x·s_w`.
fn per_tensor(m: &Mat, b: &[f64], s_x: f64) -> (Vec<i8>, f64, Vec<u8>) {
    let floors: Vec<f64> = b.iter().map(|&x| scale_floor(x, s_x, None)).collect();
    let (q, s) = quantize_weights_floored(&[m], true, &floors);
    let sw = s.first().copied().unwrap_or(1.0);
    let bias = acc_bias(b, s_x * sw);
    (q.into_iter().next().unwrap_or_default(), sw, bias)
}

/// `round(b / acc)` as i32 little endian, saturated.
fn acc_bias(b: &[f64], acc: f64) -> Vec<u8> {
    b.iter()
        .flat_map(|&v| {
            let q = (v / acc).round().clamp(i32::MIN as f64, i32::MAX as f64) as i32;
            q.to_le_bytes()
        })
        .collect()
}

/// The right shift that brings accumulators of magnitude `max_acc` within
/// 2^14 (a factor 2 of headroom below i16 for graphs beyond the calibration).
fn i16_shift(max_acc: f64) -> u8 {
    let mut s = 0u8;
    while s < 31 && max_acc / f64::from(1u32 << s) > 16384.0 {
        s += 1;
    }
    s
}

/// The values and the root weight with one scale per output channel (with
/// `concat`; without, one scale for all: the heads are averaged into each
/// channel): their int8 values and the scale of each output channel.
fn values_and_skip(t: &Transformer, s_x: f64, s_out: f64) -> (Vec<i8>, Vec<i8>, Vec<f64>) {
    let oc = t.out();
    let skip_b = |c: usize| t.skip.as_ref().map_or(0.0, |s| s.1[c]);
    if t.concat {
        let floors: Vec<f64> = (0..oc)
            .map(|c| scale_floor(skip_b(c), s_x, Some(s_out)).max(scale_floor(t.v.1[c], s_x, None)))
            .collect();
        let mats: Vec<&Mat> = std::iter::once(&t.v.0)
            .chain(t.skip.as_ref().map(|s| &s.0))
            .collect();
        let (mut q, s) = quantize_weights_floored(&mats, false, &floors);
        let qs = if q.len() > 1 {
            q.pop().unwrap_or_default()
        } else {
            Vec::new()
        };
        (q.pop().unwrap_or_default(), qs, s)
    } else {
        // One matrix of the value rows then the skip rows, one scale.
        let mut rows = t.v.0.data.clone();
        let mut n = t.v.0.rows;
        if let Some((ws, _)) = &t.skip {
            rows.extend_from_slice(&ws.data);
            n += ws.rows;
        }
        let stacked = Mat {
            rows: n,
            cols: t.v.0.cols,
            data: rows,
        };
        let floors: Vec<f64> = (0..n)
            .map(|r| {
                if r < t.v.0.rows {
                    scale_floor(t.v.1[r], s_x, None)
                } else {
                    scale_floor(skip_b(r - t.v.0.rows), s_x, Some(s_out))
                }
            })
            .collect();
        let (q, s) = quantize_weights_floored(&[&stacked], true, &floors);
        let all = q.into_iter().next().unwrap_or_default();
        let split = t.v.0.rows * t.v.0.cols;
        let sw = s.first().copied().unwrap_or(1.0);
        (
            all[..split].to_vec(),
            all[split..].to_vec(),
            vec![sw; oc.max(t.v.0.rows)],
        )
    }
}

fn lower(t: &Transformer, cx: &mut Lower<'_, '_>) -> Result<Op> {
    let (s_x, s_out) = (cx.s_in, cx.s_out);
    let (qq, s_q, bq) = per_tensor(&t.q.0, &t.q.1, s_x);
    let (qk, s_k, bk) = per_tensor(&t.k.0, &t.k.1, s_x);
    let max_abs = |name: String| -> Result<f64> {
        let r = (cx.range)(&name)?;
        Ok(r.lo.abs().max(r.hi.abs()))
    };
    let q_shift = i16_shift(max_abs(format!("{}#q", cx.layer.report_name()))? / (s_x * s_q));
    let k_shift = i16_shift(max_abs(format!("{}#k", cx.layer.report_name()))? / (s_x * s_k));
    let logit = f64::from(1u32 << q_shift) * f64::from(1u32 << k_shift) * s_x * s_x * s_q * s_k
        / (t.per_head as f64).sqrt()
        * 65536.0;
    let (logit_mult, logit_shift) = quantize_multiplier(logit);
    if !(-32..=31).contains(&logit_shift) {
        bail!("{}: logit rescale {logit:e} is out of range", cx.who);
    }
    let (qv, qs, scales) = values_and_skip(t, s_x, s_out);
    let bv: Vec<u8> = (0..t.hc())
        .flat_map(|r| acc_bias(&t.v.1[r..r + 1], s_x * scales[if t.concat { r } else { 0 }]))
        .collect();
    let oc = t.out();
    let skip_b: Vec<f64> = match &t.skip {
        Some((_, b)) => b.clone(),
        None => vec![0.0; oc],
    };
    let edge = match &t.edge {
        Some(we) => Some(lower_edge(t, cx, we, s_x * s_k, &scales)?),
        None => None,
    };
    let scales = &scales[..oc];
    // With beta the gate needs lin_skip(x) whole: its bias is added before
    // the gate (in lin_bias) instead of by the records.
    let mut table = [bq, bk, bv].concat();
    let rec_b = if t.beta.is_some() {
        for (c, &b) in skip_b.iter().enumerate() {
            table.extend(acc_bias(&[b], s_x * scales[c]));
        }
        vec![0.0; oc]
    } else {
        skip_b
    };
    cx.check_records(scales, &rec_b, false);
    let w_query = cx.add_i8(&qq);
    let w_key = cx.add_i8(&qk);
    let w_value = cx.add_i8(&qv);
    let w_skip = if t.skip.is_some() {
        cx.add_i8(&qs)
    } else {
        Section::default()
    };
    let lin_bias = cx.add_table(&table);
    let params = cx.add_params(&channel_records(scales, &rec_b, s_x, s_out));
    let beta = match &t.beta {
        Some(wb) => {
            let pairs = beta_rescales(wb, scales, s_x).map_err(|e| anyhow!("{}: {e}", cx.who))?;
            cx.add_table(&pairs)
        }
        None => Section::default(),
    };
    Ok(Op::TransformerConv(ops::TransformerConv {
        input: cx.input(),
        output: cx.output,
        heads: u8::try_from(t.heads).map_err(|_| anyhow!("{}: too many heads", cx.who))?,
        concat: t.concat,
        global: t.global,
        w_query,
        w_key,
        w_value,
        w_skip,
        lin_bias,
        q_shift,
        k_shift,
        logit_mult,
        logit_shift,
        params,
        act: cx.act,
        edge,
        beta,
    }))
}

/// `(m, s)` of a signed real multiplier `v` (the sign carried by `m`); an
/// error if it needs a shift above 31.
fn signed_multiplier(v: f64) -> Result<(i32, i32)> {
    let (m, s) = quantize_multiplier(v.abs());
    if s > 31 {
        bail!("rescale {v:e} is out of range");
    }
    Ok((if v < 0.0 { -m } else { m }, s.max(-32)))
}

/// `(m, s)` pairs as i32 little endian.
fn pair_bytes(pairs: &[(i32, i32)]) -> Vec<u8> {
    pairs
        .iter()
        .flat_map(|&(m, s)| m.to_le_bytes().into_iter().chain(s.to_le_bytes()))
        .collect()
}

/// The `beta` gate, `lin_beta(cat[a, r, a − r]) = Σ_c (w_a + w_d)[c]·a[c] +
/// (w_r − w_d)[c]·r[c]`, folded per channel into `(m, s)` pairs from the
/// accumulator units `s_x·scales[c]` of `a` and `r` to the Q16 gate logit.
fn beta_rescales(wb: &[f64], scales: &[f64], s_x: f64) -> Result<Vec<u8>> {
    let oc = scales.len();
    let unit = |c: usize| s_x * scales[c] * 65536.0;
    let mut pairs = Vec::with_capacity(2 * oc);
    for c in 0..oc {
        pairs.push(signed_multiplier((wb[c] + wb[2 * oc + c]) * unit(c))?);
    }
    for c in 0..oc {
        pairs.push(signed_multiplier((wb[oc + c] - wb[2 * oc + c]) * unit(c))?);
    }
    Ok(pair_bytes(&pairs))
}

/// Edge features: `lin_edge` int8 with one scale per row, its accumulator
/// (scale `s_e·s_we[q]`) rescaled into the keys' accumulator units (`key`,
/// `s_x·s_k`) and the values' (`s_x·s_v[q]`).
fn lower_edge(
    t: &Transformer,
    cx: &mut Lower<'_, '_>,
    we: &Mat,
    key: f64,
    scales: &[f64],
) -> Result<TransformerEdge> {
    let (edge_attr, s_e) = cx.edge_input()?;
    let (q8, s_we) = quantize_weights_floored(&[we], false, &[]);
    let hc = t.hc();
    let value = |q: usize| cx.s_in * scales[if t.concat { q } else { 0 }];
    let mut pairs = Vec::with_capacity(2 * hc);
    for q in 0..hc {
        pairs.push(s_e * s_we[q] / key);
    }
    for q in 0..hc {
        pairs.push(s_e * s_we[q] / value(q));
    }
    let pairs = pairs
        .into_iter()
        .map(|r| signed_multiplier(r).map_err(|e| anyhow!("{}: edge {e}", cx.who)))
        .collect::<Result<Vec<_>>>()?;
    let weights = cx.add_i8(&q8.into_iter().next().unwrap_or_default());
    let rescale = cx.add_table(&pair_bytes(&pairs));
    Ok(TransformerEdge {
        edge_attr,
        weights,
        rescale,
    })
}

impl Describe for ops::TransformerConv {
    fn describe(&self, cx: &mut Inspect<'_, '_>) -> Described {
        let wb = cx.weights(&self.w_query);
        for s in [self.w_key, self.w_value, self.w_skip] {
            cx.weights(&s);
        }
        let edge = self.edge.map_or(0, |e| {
            cx.weights(&e.weights);
            e.rescale.len
        });
        cx.params(self.params.len + self.lin_bias.len + self.beta.len + edge);
        cx.out_biases();
        Described::new(
            act_str(&self.act),
            cx.mult_summary(self.params),
            json!({"weights": wb, "heads": self.heads, "concat": self.concat, "global": self.global,
                   "root_weight": self.w_skip.len > 0, "beta": self.beta.len > 0,
                   "edge_attr": self.edge.map(|e| e.edge_attr),
                   "q_shift": self.q_shift, "k_shift": self.k_shift}),
        )
    }
}
