//! Decoupled propagation over GCN's normalised adjacency `Â`: `appnp`,
//! `sg_conv`, `gcn2_conv` and `tag_conv` (PyG's APPNP, SGConv, GCN2Conv,
//! TAGConv), one device op `propagate`.

use anyhow::{anyhow, bail, Result};
use serde_json::json;
use tinygnn::format::{self as fmt, Op, Section};

use crate::prec::Prec;
use tinygnn::ops;

use super::common::{gcn_edges, linear, propagate_once, Mat, Norm, Parse, Rows, Tensor};
use super::describe::{act_str, Describe, Described, Inspect};
use super::host_op::HostOp;
use crate::lower::{channel_record, Lower};
use crate::st::Graphs;
use crate::weights::scale_floor;

/// The options and weights of an APPNP / SGConv / GCN2Conv / TAGConv:
/// `p = x` or `x Wᵀ`, `h⁰ = p` or `x0 W0ᵀ` (GCN2Conv); `h = p`, `K` times
/// `h = (1 − α)·Â·h + α·h⁰`; `+ b`. TAGConv: `Σ_k Â^k x W_kᵀ + b`.
#[derive(Debug, Clone, PartialEq)]
pub struct Propagate {
    /// Steps `K`.
    pub k: usize,
    /// Teleport probability `α` (0 for SGConv).
    pub alpha: f64,
    /// `lin.weight` `[out, in]` (SGConv), `((1 − β)·I + β·W1)ᵀ` (GCN2Conv),
    /// or `None` (APPNP).
    pub w: Option<Mat>,
    /// GCN2Conv: `((1 − β)·I + β·W2)ᵀ` `[out, x0_ch]` applied to the second
    /// input (`W2 = W1` with shared weights).
    pub w0: Option<Mat>,
    /// TAGConv: `lins.0.weight … lins.K.weight` (`[out, in]` each); `w` is
    /// then `None`.
    pub hops: Vec<Mat>,
    /// Bias (zeros when absent; APPNP has none).
    pub b: Vec<f64>,
    /// `gcn_norm`'s flags (PyG's APPNP / SGConv never set `improved`).
    pub norm: Norm,
}

fn parse_k(cx: &Parse<'_>) -> Result<usize> {
    let k = cx.usize_attr("K")?;
    if k > 255 {
        bail!("{}: K = {k} is above 255", cx.who());
    }
    Ok(k)
}

fn appnp_or_sg(cx: &Parse<'_>) -> Result<(Propagate, usize)> {
    let k = parse_k(cx)?;
    let (w, b, alpha, channels) = if cx.ty == "sg_conv" {
        let (i, o) = cx.in_out()?;
        let w = cx.mat("weight", o, i)?;
        (Some(w), cx.bias("bias", o, "[out_channels]")?, 0.0, o)
    } else {
        if cx.attr("alpha").is_none() {
            bail!("{}: attribute 'alpha' is missing", cx.who());
        }
        let alpha = cx.f64_attr("alpha", 0.0)?;
        if !(0.0..=1.0).contains(&alpha) {
            bail!("{}: alpha {alpha} is not in [0, 1]", cx.who());
        }
        let c = cx.channels();
        (None, vec![0.0; c], alpha, c)
    };
    let p = Propagate {
        k,
        alpha,
        w,
        w0: None,
        hops: vec![],
        b,
        norm: Norm::parse(cx, true)?,
    };
    Ok((p, channels))
}

fn gcn2(cx: &Parse<'_>) -> Result<(Propagate, usize)> {
    let who = cx.who();
    let c = cx.usize_attr("channels")?;
    cx.check_in(c)?;
    if cx.ins[1] != (Rows::Node, c) {
        bail!(
            "{who}: x_0 input '{}' is {:?}, expected node-level with {c} channels",
            cx.inputs[1],
            cx.ins[1]
        );
    }
    let alpha = cx.f64_attr("alpha", f64::NAN)?;
    let beta = cx.f64_attr("beta", f64::NAN)?;
    if !(0.0..=1.0).contains(&alpha) || beta.is_nan() {
        bail!("{who}: attributes 'alpha' (in [0, 1]) and 'beta' are required");
    }
    let shared = cx.bool_attr("shared_weights", true)?;
    // out = z·((1 − β)·I + β·W): as a [out, in] matrix, ((1 − β)·I + β·W)ᵀ.
    let fold = |role: &str| -> Result<Mat> {
        let w = cx.mat(role, c, c)?;
        let mut m = Mat {
            rows: c,
            cols: c,
            data: vec![0.0; c * c],
        };
        for o in 0..c {
            for i in 0..c {
                let eye = if o == i { 1.0 - beta } else { 0.0 };
                m.data[o * c + i] = eye + beta * w.data[i * c + o];
            }
        }
        Ok(m)
    };
    let w1 = fold("weight1")?;
    let w2 = if shared { w1.clone() } else { fold("weight2")? };
    let p = Propagate {
        k: 1,
        alpha,
        w: Some(w1),
        w0: Some(w2),
        hops: vec![],
        b: vec![0.0; c],
        norm: Norm::parse(cx, true)?,
    };
    Ok((p, c))
}

fn tag(cx: &Parse<'_>) -> Result<(Propagate, usize)> {
    let (i, o) = cx.in_out()?;
    let k = parse_k(cx)?;
    let hops = (0..=k)
        .map(|h| cx.mat(&format!("weight_{h}"), o, i))
        .collect::<Result<Vec<_>>>()?;
    let p = Propagate {
        k,
        alpha: 0.0,
        w: None,
        w0: None,
        hops,
        b: cx.bias("bias", o, "[out_channels]")?,
        // PyG's TAGConv normalises without self-loops.
        norm: Norm::parse(cx, false).map(|n| Norm {
            add_self_loops: false,
            ..n
        })?,
    };
    Ok((p, o))
}

impl HostOp for Propagate {
    const TYPES: &'static [&'static str] = &["appnp", "sg_conv", "gcn2_conv", "tag_conv"];

    fn arity(ty: &str) -> Option<usize> {
        Some(if ty == "gcn2_conv" { 2 } else { 1 })
    }

    fn parse(cx: &Parse<'_>) -> Result<(Self, Rows, usize)> {
        cx.need_node()?;
        let (p, channels) = match cx.ty {
            "gcn2_conv" => gcn2(cx)?,
            "tag_conv" => tag(cx)?,
            _ => appnp_or_sg(cx)?,
        };
        Ok((p, Rows::Node, channels))
    }

    fn type_name(&self) -> &'static str {
        if !self.hops.is_empty() {
            "tag_conv"
        } else if self.w0.is_some() {
            "gcn2_conv"
        } else if self.w.is_some() {
            "sg_conv"
        } else {
            "appnp"
        }
    }

    fn device_name(&self) -> &'static str {
        self.type_name()
    }

    fn reference(&self, ins: &[&Tensor], g: &Graphs) -> Tensor {
        reference(self, ins[0], ins.get(1).copied(), g)
    }

    fn for_device(self) -> Self {
        Propagate {
            norm: self.norm.for_device(),
            ..self
        }
    }

    fn fuses_act(&self) -> bool {
        true
    }

    fn has_weights(&self) -> bool {
        self.w.is_some() || !self.hops.is_empty()
    }

    fn scaled_mats(&self) -> Option<Vec<&Mat>> {
        if !self.hops.is_empty() {
            Some(self.hops.iter().collect())
        } else {
            self.w.as_ref().map(|w| vec![w])
        }
    }

    fn lower(&self, cx: &mut Lower<'_, '_>) -> Result<Op> {
        lower(self, cx)
    }
}

/// APPNP / SGConv / GCN2Conv: `p = x` (APPNP) or `x Wᵀ` (SGConv, whose
/// `lin(Â^K x)` equals `Â^K (x Wᵀ) + b`; GCN2Conv, whose
/// `((1 − α)·Â·x + α·x0)·M` equals `(1 − α)·Â·(x M) + α·(x0 M)`), `h⁰ = p`
/// or `x0 W0ᵀ` (GCN2Conv); `h = p`, then `K` times `h = (1 − α)·Â·h + α·h⁰`
/// with `Â` GCNConv's ([`gcn_edges`]), then `+ b`. TAGConv as PyG computes
/// it: `Σ_k (Â^k x) W_kᵀ + b` (no self-loops in `Â`).
pub fn reference(p: &Propagate, x: &Tensor, x0: Option<&Tensor>, g: &Graphs) -> Tensor {
    let edges = gcn_edges(g, p.norm);
    if !p.hops.is_empty() {
        let mut xk = x.clone();
        let mut out = linear(x, &p.hops[0], Some(&p.b));
        for w in &p.hops[1..] {
            xk = propagate_once(&xk, &edges);
            for (o, v) in out.data.iter_mut().zip(linear(&xk, w, None).data) {
                *o += v;
            }
        }
        return out;
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
    let mut h = start;
    for _ in 0..p.k {
        let mut next = propagate_once(&h, &edges);
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

/// GCN2Conv's weights: W (on x) and W0 (on x0) get one accumulator scale
/// S[c] per channel, `s_x·s_w[c] = s_x0·s_w0[c] = S[c]`, the smallest that
/// keeps both rows within ±127 (int8 only). Returns both and the scales of W.
fn gcn2_weights(m: &Mat, m0: &Mat, s_in: f64, s_x0: f64) -> (Vec<i8>, Vec<i8>, Vec<f64>) {
    let amax = |r: &[f64]| r.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let acc: Vec<f64> = (0..m.rows)
        .map(|c| {
            let s = (amax(m.row(c)) * s_in).max(amax(m0.row(c)) * s_x0) / 127.0;
            if s > 0.0 {
                s
            } else {
                s_in
            }
        })
        .collect();
    let quant = |m: &Mat, s_x: f64| -> Vec<i8> {
        (0..m.rows)
            .flat_map(|c| {
                let sw = acc[c] / s_x;
                m.row(c)
                    .iter()
                    .map(move |v| (v / sw).round().clamp(-127.0, 127.0) as i8)
            })
            .collect()
    };
    let scales = acc.iter().map(|s| s / s_in).collect();
    (quant(m, s_in), quant(m0, s_x0), scales)
}

fn lower(p: &Propagate, cx: &mut Lower<'_, '_>) -> Result<Op> {
    let (s_in, s_out) = (cx.s_in, cx.s_out);
    let floors = || -> Vec<f64> {
        p.b.iter()
            .map(|&x| scale_floor(x, s_in, Some(s_out)))
            .collect()
    };
    let mut weights_0 = Section::default();
    let (weights, recs) = match &p.w {
        None if !p.hops.is_empty() => {
            // TAGConv: K + 1 matrices with one scale per output channel
            // (they add in one accumulator), stacked W_0 … W_K.
            let mats: Vec<&Mat> = p.hops.iter().collect();
            let mut lw = cx.quantize(&mats, &floors(), false);
            cx.check_records(&lw.scales, &p.b, false);
            lw.q = vec![lw.q.concat()];
            let (weights, _) = cx.add_weights(&lw, mats[0].cols)?;
            (weights, cx.records(&lw.scales, &p.b))
        }
        Some(m) if p.w0.is_some() => {
            let m0 =
                p.w0.as_ref()
                    .ok_or_else(|| anyhow!("checked by the guard"))?;
            let (q, q0, scales) = gcn2_weights(m, m0, s_in, cx.in_desc[1].scale as f64);
            cx.record_bits(Prec::I8, m.data.len() + m0.data.len());
            let weights = cx.add_i8(&q);
            weights_0 = cx.add_i8(&q0);
            (weights, cx.records(&scales, &p.b))
        }
        Some(m) => {
            let floors = floors();
            let mut lw = cx.quantize(&[m], &floors, false);
            // No sequential rounding here: GPFQ on the float input only.
            let mut b = p.b.clone();
            cx.round_int4(&[m], &floors, &mut lw, false, &mut b);
            cx.check_records(&lw.scales, &p.b, false);
            let (weights, _) = cx.add_weights(&lw, m.cols)?;
            (weights, cx.records(&lw.scales, &p.b))
        }
        None => {
            // h is x − zp with PROPAGATE_FRAC_BITS extra bits: the
            // accumulator scale is s_in / 2^16 for every channel.
            let acc_scale = s_in / (1u64 << fmt::PROPAGATE_FRAC_BITS) as f64;
            let recs =
                p.b.iter()
                    .map(|&b| channel_record(b, acc_scale, acc_scale / s_out))
                    .collect::<Vec<_>>();
            (Section::default(), recs)
        }
    };
    let params = cx.add_params(&recs);
    let alpha_q30 = (p.alpha * fmt::PROPAGATE_ALPHA_ONE as f64).round();
    if !(0.0..=fmt::PROPAGATE_ALPHA_ONE as f64).contains(&alpha_q30) {
        bail!("{}: alpha {} is not in [0, 1]", cx.who, p.alpha);
    }
    let k = u8::try_from(p.k).map_err(|_| anyhow!("{}: K = {} is above 255", cx.who, p.k))?;
    Ok(Op::Propagate(ops::Propagate {
        input: cx.input(),
        output: cx.output,
        k,
        alpha_q30: alpha_q30 as i32,
        weights,
        x0: cx.in_ids.get(1).copied().unwrap_or(cx.in_ids[0]),
        weights_0,
        params,
        act: cx.act,
        improved: p.norm.improved,
        add_self_loops: p.norm.add_self_loops,
        normalize: p.norm.normalize,
        edge_weight: p.norm.edge_weight,
        hops: !p.hops.is_empty(),
    }))
}

impl Describe for ops::Propagate {
    fn describe(&self, cx: &mut Inspect<'_, '_>) -> Described {
        cx.weights(&self.weights);
        cx.weights(&self.weights_0);
        cx.params(self.params.len);
        cx.out_biases();
        Described::new(
            act_str(&self.act),
            cx.mult_summary(self.params),
            json!({"K": self.k, "alpha": self.alpha_q30 as f64 / (1u64 << 30) as f64,
                   "add_self_loops": self.add_self_loops, "normalize": self.normalize,
                   "edge_weight": self.edge_weight}),
        )
    }
}
