//! `global_add_pool`, `global_mean_pool`, `global_max_pool`: one row per
//! graph of the batch (an empty graph pools to 0); `attention_pool`: PyG's
//! `AttentionalAggregation`, `Σ_{i∈g} softmax_{i∈g}(gate_i) ⊙ x_i` with the
//! gate and the values computed by the ops before it.

use anyhow::Result;
use serde_json::json;
use tinygnn::format::{self as fmt, Op, TensorDesc, AGG_FRAC_BITS};
use tinygnn::ops;
use tinygnn::quant::quantize_multiplier;

use anyhow::bail;

use super::common::{Parse, Rows, Tensor};
use super::describe::{mult_shift, Describe, Described, Inspect};
use super::host_op::HostOp;
use crate::lower::Lower;
use crate::st::Graphs;

/// Global pooling by the batch vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    /// Sum.
    Add,
    /// Mean.
    Mean,
    /// Max.
    Max,
}

impl HostOp for Pool {
    const TYPES: &'static [&'static str] =
        &["global_add_pool", "global_mean_pool", "global_max_pool"];

    fn parse(cx: &Parse<'_>) -> Result<(Self, Rows, usize)> {
        cx.need_node()?;
        let p = match cx.ty {
            "global_add_pool" => Pool::Add,
            "global_mean_pool" => Pool::Mean,
            _ => Pool::Max,
        };
        Ok((p, Rows::Graph, cx.channels()))
    }

    fn type_name(&self) -> &'static str {
        match self {
            Pool::Add => "global_add_pool",
            Pool::Mean => "global_mean_pool",
            Pool::Max => "global_max_pool",
        }
    }

    fn device_name(&self) -> &'static str {
        "global_pool"
    }

    fn reference(&self, ins: &[&Tensor], g: &Graphs) -> Tensor {
        let x = ins[0];
        let f = x.channels;
        let ng = g.num_graphs;
        let max = *self == Pool::Max;
        let mut out = Tensor::zeros(ng, f);
        let mut count = vec![0usize; ng];
        if max {
            out.data.fill(f64::NEG_INFINITY);
        }
        for i in 0..x.rows {
            let b = g.batch[i] as usize;
            count[b] += 1;
            for k in 0..f {
                let v = x.data[i * f + k];
                let o = &mut out.data[b * f + k];
                *o = if max { o.max(v) } else { *o + v };
            }
        }
        for (b, &cnt) in count.iter().enumerate() {
            for k in 0..f {
                let o = &mut out.data[b * f + k];
                if cnt == 0 {
                    *o = 0.0;
                } else if *self == Pool::Mean {
                    *o /= cnt as f64;
                }
            }
        }
        out
    }

    /// Max pooling picks input values: the input's quantization.
    fn fixed_output(&self, input: &TensorDesc) -> Option<(f32, i8)> {
        (*self == Pool::Max).then_some((input.scale, input.zero_point))
    }

    fn lower(&self, cx: &mut Lower<'_, '_>) -> Result<Op> {
        let (s_in, s_out) = (cx.s_in, cx.s_out);
        let (pool, scale) = match self {
            Pool::Add => (fmt::Pool::Add, s_in / s_out),
            Pool::Mean => (
                fmt::Pool::Mean,
                s_in / (s_out * (1u64 << AGG_FRAC_BITS) as f64),
            ),
            Pool::Max => (fmt::Pool::Max, 0.0),
        };
        let (mult, shift) = quantize_multiplier(scale);
        Ok(Op::GlobalPool(ops::GlobalPool {
            input: cx.input(),
            output: cx.output,
            pool,
            mult,
            shift,
        }))
    }
}

impl Describe for ops::GlobalPool {
    fn describe(&self, _cx: &mut Inspect<'_, '_>) -> Described {
        Described::new(
            "-".into(),
            mult_shift(self.mult, self.shift),
            json!({"pool": format!("{:?}", self.pool).to_lowercase()}),
        )
    }
}

/// Attention pooling (`AttentionalAggregation`): inputs `[gate, x]`, the
/// softmax of `t·gate`; `SoftmaxAggregation(t)` is the gate `x` itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionPool {
    /// The gate's factor (`t`, attribute, default 1; positive).
    pub t: f64,
}

impl HostOp for AttentionPool {
    const TYPES: &'static [&'static str] = &["attention_pool"];

    fn arity(_ty: &str) -> Option<usize> {
        Some(2)
    }

    fn parse(cx: &Parse<'_>) -> Result<(Self, Rows, usize)> {
        let ((gr, gc), (xr, xc)) = (cx.ins[0], cx.ins[1]);
        if gr != Rows::Node || xr != Rows::Node {
            bail!("{}: the gate and the values must be node-level", cx.who());
        }
        if gc != 1 && gc != xc {
            bail!(
                "{}: the gate '{}' has {gc} channels; it needs 1 or the {xc} of '{}'",
                cx.who(),
                cx.inputs[0],
                cx.inputs[1]
            );
        }
        let t = cx.f64_attr("t", 1.0)?;
        if !(t > 0.0 && t.is_finite()) {
            bail!(
                "{}: t = {t}; the softmax factor must be positive and finite",
                cx.who()
            );
        }
        Ok((AttentionPool { t }, Rows::Graph, xc))
    }

    fn type_name(&self) -> &'static str {
        "attention_pool"
    }

    fn device_name(&self) -> &'static str {
        "attention_pool"
    }

    fn reference(&self, ins: &[&Tensor], g: &Graphs) -> Tensor {
        let (gate, x) = (ins[0], ins[1]);
        let (gc, c) = (gate.channels, x.channels);
        let mut out = Tensor::zeros(g.num_graphs, c);
        for b in 0..g.num_graphs {
            let nodes: Vec<usize> = (0..x.rows).filter(|&i| g.batch[i] as usize == b).collect();
            for k in 0..gc {
                let gk = |i: usize| self.t * gate.row(i)[k];
                let m = nodes
                    .iter()
                    .map(|&i| gk(i))
                    .fold(f64::NEG_INFINITY, f64::max);
                let s: f64 = nodes.iter().map(|&i| (gk(i) - m).exp()).sum();
                for &i in &nodes {
                    let a = (gk(i) - m).exp() / s;
                    let chans: Vec<usize> = if gc == 1 { (0..c).collect() } else { vec![k] };
                    for ch in chans {
                        out.data[b * c + ch] += a * x.row(i)[ch];
                    }
                }
            }
        }
        out
    }

    fn lower(&self, cx: &mut Lower<'_, '_>) -> Result<Op> {
        let s_gate = f64::from(cx.in_desc[0].scale);
        let s_x = f64::from(cx.in_desc[1].scale);
        let gate_q16 = cx.q16(s_gate * self.t)?;
        let (mult, shift) = quantize_multiplier(s_x / cx.s_out);
        Ok(Op::AttentionPool(ops::pool::AttentionPool {
            gate: cx.in_ids[0],
            input: cx.in_ids[1],
            output: cx.output,
            gate_q16,
            mult,
            shift,
        }))
    }
}

impl Describe for ops::pool::AttentionPool {
    fn describe(&self, _cx: &mut Inspect<'_, '_>) -> Described {
        Described::new(
            "-".into(),
            mult_shift(self.mult, self.shift),
            json!({"gate_q16": self.gate_q16}),
        )
    }
}
