//! `linear`: `x Wᵀ + b` (PyTorch's `Linear`), BatchNorm and activations fused.

use anyhow::Result;
use serde_json::json;
use tinygnn::format::Op;
use tinygnn::ops;

use super::common::{linear, take, BatchNorm, Mat, Parse, Rows, Tensor};
use super::describe::{act_str, Describe, Described, Inspect};
use super::host_op::HostOp;
use crate::lower::Lower;
use crate::st::Graphs;

/// `x Wᵀ + b`.
#[derive(Debug, Clone, PartialEq)]
pub struct Linear {
    /// `[out, in]`.
    pub w: Mat,
    /// `[out]` (zeros when absent).
    pub b: Vec<f64>,
}

impl HostOp for Linear {
    const TYPES: &'static [&'static str] = &["linear"];

    fn parse(cx: &Parse<'_>) -> Result<(Self, Rows, usize)> {
        let (i, o) = cx.in_out()?;
        let w = cx.mat("weight", o, i)?;
        let b = cx.bias("bias", o, "[out_channels]")?;
        Ok((Linear { w, b }, cx.rows(), o))
    }

    fn type_name(&self) -> &'static str {
        "linear"
    }

    fn device_name(&self) -> &'static str {
        "linear"
    }

    fn reference(&self, ins: &[&Tensor], _g: &Graphs) -> Tensor {
        linear(ins[0], &self.w, Some(&self.b))
    }

    fn fold_bn(&mut self, bn: &BatchNorm) -> bool {
        bn.fold(&mut [&mut self.w], &mut self.b);
        true
    }

    fn fuses_act(&self) -> bool {
        true
    }

    fn has_weights(&self) -> bool {
        true
    }

    fn scaled_mats(&self) -> Option<Vec<&Mat>> {
        Some(vec![&self.w])
    }

    fn take_channels(&self, keep: &[usize]) -> Option<Self> {
        Some(Linear {
            w: self.w.take_rows(keep)?,
            b: take(&self.b, keep)?,
        })
    }

    fn permute_input(&self, perm: &[usize]) -> Option<Self> {
        Some(Linear {
            w: self.w.permute_cols(perm)?,
            b: self.b.clone(),
        })
    }

    fn feedback_input(&self, x: &Tensor, _g: &Graphs) -> Option<Tensor> {
        Some(x.clone())
    }

    fn lower(&self, cx: &mut Lower<'_, '_>) -> Result<Op> {
        let (weights, _, params) = cx.weighted(&[&self.w], &self.b, false)?;
        Ok(Op::Linear(ops::Linear {
            input: cx.input(),
            output: cx.output,
            weights,
            params,
            act: cx.act,
        }))
    }
}

impl Describe for ops::Linear {
    fn describe(&self, cx: &mut Inspect<'_, '_>) -> Described {
        let wb = cx.weights(&self.weights);
        cx.params(self.params.len);
        cx.out_biases();
        Described::new(
            act_str(&self.act),
            cx.mult_summary(self.params),
            json!({ "weights": wb }),
        )
    }
}
