//! `gin_aggregate`: GINConv's aggregation `(1 + ε)·x_i + Σ_{j→i} x_j` (its
//! `nn` is exported as the ops that follow).

use anyhow::Result;
use serde_json::json;
use tinygnn::format::{Op, AGG_FRAC_BITS};
use tinygnn::ops;
use tinygnn::quant::quantize_multiplier;

use super::common::{Parse, Rows, Tensor};
use super::describe::{mult_shift, Describe, Described, Inspect};
use super::host_op::HostOp;
use crate::lower::Lower;
use crate::st::Graphs;

/// GIN aggregation.
#[derive(Debug, Clone, PartialEq)]
pub struct Gin {
    /// ε.
    pub eps: f64,
}

impl HostOp for Gin {
    const TYPES: &'static [&'static str] = &["gin_aggregate"];

    fn parse(cx: &Parse<'_>) -> Result<(Self, Rows, usize)> {
        cx.need_node()?;
        let eps = cx.f64_attr("eps", 0.0)?;
        Ok((Gin { eps }, Rows::Node, cx.channels()))
    }

    fn type_name(&self) -> &'static str {
        "gin_aggregate"
    }

    fn device_name(&self) -> &'static str {
        "gin_aggregate"
    }

    fn reference(&self, ins: &[&Tensor], g: &Graphs) -> Tensor {
        let x = ins[0];
        let f = x.channels;
        let mut out = x.map(|v| v * (1.0 + self.eps));
        for e in 0..g.num_edges() {
            let (s, t) = (g.sources[e] as usize, g.targets[e] as usize);
            for k in 0..f {
                out.data[t * f + k] += x.data[s * f + k];
            }
        }
        out
    }

    fn lower(&self, cx: &mut Lower<'_, '_>) -> Result<Op> {
        let (mult, shift) =
            quantize_multiplier(cx.s_in / (cx.s_out * (1u64 << AGG_FRAC_BITS) as f64));
        Ok(Op::GinAggregate(ops::GinAggregate {
            input: cx.input(),
            output: cx.output,
            one_plus_eps_q16: cx.q16(1.0 + self.eps)?,
            mult,
            shift,
        }))
    }
}

impl Describe for ops::GinAggregate {
    fn describe(&self, _cx: &mut Inspect<'_, '_>) -> Described {
        Described::new(
            "-".into(),
            mult_shift(self.mult, self.shift),
            json!({"one_plus_eps": self.one_plus_eps_q16 as f64 / 65536.0}),
        )
    }
}
