//! `global_add_pool`, `global_mean_pool`, `global_max_pool`: one row per
//! graph of the batch (an empty graph pools to 0).

use anyhow::Result;
use serde_json::json;
use tinygnn::format::{self as fmt, Op, TensorDesc, AGG_FRAC_BITS};
use tinygnn::ops;
use tinygnn::quant::quantize_multiplier;

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
