//! Recurrent cells: the element-wise product `mul` of two tensors (the gates
//! of a GRU or TGCN cell, `z ⊙ h`, `r ⊙ h`, `(1 − z) ⊙ h̃`), the device op
//! `Mul` (`op-recurrent`). The constant `1 − z` is `rsub` (a lookup table,
//! [`super::lut`]); the state itself is the spec's `state` (`crate::spec`).

use anyhow::{bail, Result};
use serde_json::json;
use tinygnn::format::Op;
use tinygnn::ops;
use tinygnn::quant::quantize_multiplier;

use super::common::{Parse, Rows, Tensor};
use super::describe::{Describe, Described, Inspect};
use super::host_op::HostOp;
use crate::lower::Lower;
use crate::st::Graphs;

/// Element-wise product of two inputs of the same shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mul;

impl HostOp for Mul {
    const TYPES: &'static [&'static str] = &["mul"];

    fn arity(_ty: &str) -> Option<usize> {
        Some(2)
    }

    fn parse(cx: &Parse<'_>) -> Result<(Self, Rows, usize)> {
        if cx.ins[0] != cx.ins[1] {
            bail!(
                "{}: inputs '{}' {:?} and '{}' {:?} differ in row kind or channels",
                cx.who(),
                cx.inputs[0],
                cx.ins[0],
                cx.inputs[1],
                cx.ins[1]
            );
        }
        Ok((Mul, cx.rows(), cx.channels()))
    }

    fn type_name(&self) -> &'static str {
        "mul"
    }

    fn device_name(&self) -> &'static str {
        "mul"
    }

    fn reference(&self, ins: &[&Tensor], _g: &Graphs) -> Tensor {
        Tensor {
            data: ins[0]
                .data
                .iter()
                .zip(&ins[1].data)
                .map(|(a, b)| a * b)
                .collect(),
            ..ins[0].clone()
        }
    }

    /// `requant((a − zp_a)(b − zp_b))` with the Q31 rescale `s_a·s_b/s_out`.
    fn lower(&self, cx: &mut Lower<'_, '_>) -> Result<Op> {
        let s = cx.in_desc[0].scale as f64 * cx.in_desc[1].scale as f64 / cx.s_out;
        let (mult, shift) = quantize_multiplier(s);
        if !(-31..=30).contains(&shift) || mult < 0 {
            bail!("{}: product rescale {s:e} is out of range", cx.who);
        }
        if cx.act != tinygnn::format::Activation::None {
            bail!("{}: an activation cannot fuse into mul", cx.who);
        }
        Ok(Op::Mul(ops::Mul {
            a: cx.in_ids[0],
            b: cx.in_ids[1],
            output: cx.output,
            mult,
            shift,
        }))
    }
}

impl Describe for ops::Mul {
    fn describe(&self, _cx: &mut Inspect<'_, '_>) -> Described {
        let q = format!("q31 {} >> {}", self.mult, -self.shift);
        Described::new("-".into(), q, json!({}))
    }
}
