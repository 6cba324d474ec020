//! Row-wise ops without weights of their own: `batch_norm` (folded into the
//! op before it), `relu` / `leaky_relu` (fused into the op before it where
//! that op allows, else the device op `act`), `dropout` / `identity`
//! (dropped), `add` and `concat`.

use anyhow::{bail, Result};
use serde_json::json;
use tinygnn::format::{self as fmt, ConcatPart, Op, TensorDesc};
use tinygnn::ops;

use super::common::{take, Act, BatchNorm, Parse, Rows, Tensor};
use super::describe::{act_str, Describe, Described, Inspect};
use super::host_op::HostOp;
use crate::lower::Lower;
use crate::st::Graphs;

/// Eval-mode BatchNorm.
#[derive(Debug, Clone, PartialEq)]
pub struct Norm(pub BatchNorm);

impl HostOp for Norm {
    const TYPES: &'static [&'static str] = &["batch_norm"];

    fn parse(cx: &Parse<'_>) -> Result<(Self, Rows, usize)> {
        let c = cx.same_channels()?;
        let eps = cx.f64_attr("eps", 1e-5)?;
        let gamma = cx.scale("weight", c, "[channels]")?;
        let beta = cx.bias("bias", c, "[channels]")?;
        let mean = cx.param("running_mean", &[c], "[channels]")?;
        let var = cx.param("running_var", &[c], "[channels]")?;
        if let Some(k) = var.iter().position(|&v| v + eps <= 0.0) {
            bail!("{}: running_var[{k}] + eps is not positive", cx.who());
        }
        let bn = BatchNorm {
            gamma,
            beta,
            mean,
            var,
            eps,
        };
        Ok((Norm(bn), cx.rows(), c))
    }

    fn type_name(&self) -> &'static str {
        "batch_norm"
    }

    /// Never reaches the device: fusion folds it or fails.
    fn device_name(&self) -> &'static str {
        "batch_norm"
    }

    fn reference(&self, ins: &[&Tensor], _g: &Graphs) -> Tensor {
        let (x, bn) = (ins[0], &self.0);
        let mut out = x.clone();
        for r in 0..x.rows {
            for c in 0..x.channels {
                let v = &mut out.data[r * x.channels + c];
                *v = (*v - bn.mean[c]) / (bn.var[c] + bn.eps).sqrt() * bn.gamma[c] + bn.beta[c];
            }
        }
        out
    }

    fn take_channels(&self, keep: &[usize]) -> Option<Self> {
        let bn = &self.0;
        Some(Norm(BatchNorm {
            gamma: take(&bn.gamma, keep)?,
            beta: take(&bn.beta, keep)?,
            mean: take(&bn.mean, keep)?,
            var: take(&bn.var, keep)?,
            eps: bn.eps,
        }))
    }

    fn lower(&self, cx: &mut Lower<'_, '_>) -> Result<Op> {
        bail!("{}: batch_norm is folded before lowering", cx.who)
    }
}

/// ReLU or LeakyReLU.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Activation(pub Act);

impl HostOp for Activation {
    const TYPES: &'static [&'static str] = &["relu", "leaky_relu"];

    fn parse(cx: &Parse<'_>) -> Result<(Self, Rows, usize)> {
        let act = if cx.ty == "relu" {
            Act::Relu
        } else {
            let slope = cx.f64_attr("negative_slope", 0.01)?;
            if slope < 0.0 {
                bail!("{}: negative_slope {slope} < 0 is not supported", cx.who());
            }
            Act::Leaky(slope)
        };
        Ok((Activation(act), cx.rows(), cx.channels()))
    }

    fn type_name(&self) -> &'static str {
        match self.0 {
            Act::Leaky(_) => "leaky_relu",
            _ => "relu",
        }
    }

    fn device_name(&self) -> &'static str {
        "act"
    }

    fn reference(&self, ins: &[&Tensor], _g: &Graphs) -> Tensor {
        ins[0].map(|v| self.0.apply(v))
    }

    /// The input's quantization (the device clamps or scales in place).
    fn fixed_output(&self, input: &TensorDesc) -> Option<(f32, i8)> {
        Some((input.scale, input.zero_point))
    }

    fn take_channels(&self, _keep: &[usize]) -> Option<Self> {
        Some(*self)
    }

    fn lower(&self, cx: &mut Lower<'_, '_>) -> Result<Op> {
        Ok(Op::Act(ops::Act {
            input: cx.input(),
            output: cx.output,
            act: cx.act,
        }))
    }
}

/// Dropout (eval) or identity: an alias of its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity;

impl HostOp for Identity {
    const TYPES: &'static [&'static str] = &["dropout", "identity"];

    fn parse(cx: &Parse<'_>) -> Result<(Self, Rows, usize)> {
        Ok((Identity, cx.rows(), cx.channels()))
    }

    fn type_name(&self) -> &'static str {
        "identity"
    }

    /// Never reaches the device: fusion drops it.
    fn device_name(&self) -> &'static str {
        "identity"
    }

    fn reference(&self, ins: &[&Tensor], _g: &Graphs) -> Tensor {
        ins[0].clone()
    }

    fn take_channels(&self, _keep: &[usize]) -> Option<Self> {
        Some(*self)
    }

    fn lower(&self, cx: &mut Lower<'_, '_>) -> Result<Op> {
        bail!("{}: identity is dropped before lowering", cx.who)
    }
}

/// Element-wise sum of two inputs of the same shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Add;

impl HostOp for Add {
    const TYPES: &'static [&'static str] = &["add"];

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
        Ok((Add, cx.rows(), cx.channels()))
    }

    fn type_name(&self) -> &'static str {
        "add"
    }

    fn device_name(&self) -> &'static str {
        "add"
    }

    fn reference(&self, ins: &[&Tensor], _g: &Graphs) -> Tensor {
        Tensor {
            data: ins[0]
                .data
                .iter()
                .zip(&ins[1].data)
                .map(|(a, b)| a + b)
                .collect(),
            ..ins[0].clone()
        }
    }

    fn fuses_act(&self) -> bool {
        true
    }

    fn lower(&self, cx: &mut Lower<'_, '_>) -> Result<Op> {
        Ok(Op::Add(ops::Add {
            a: cx.in_ids[0],
            b: cx.in_ids[1],
            output: cx.output,
            mult_a_q16: cx.q16(cx.in_desc[0].scale as f64 / cx.s_out)?,
            mult_b_q16: cx.q16(cx.in_desc[1].scale as f64 / cx.s_out)?,
            act: cx.act,
        }))
    }
}

/// Channel concatenation of one or more inputs of the same row kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concat;

impl HostOp for Concat {
    const TYPES: &'static [&'static str] = &["concat"];

    fn arity(_ty: &str) -> Option<usize> {
        None
    }

    fn parse(cx: &Parse<'_>) -> Result<(Self, Rows, usize)> {
        let rows = cx.rows();
        if let Some(k) = cx.ins.iter().position(|s| s.0 != rows) {
            bail!(
                "{}: input '{}' is not of the same row kind as '{}'",
                cx.who(),
                cx.inputs[k],
                cx.inputs[0]
            );
        }
        Ok((Concat, rows, cx.ins.iter().map(|s| s.1).sum()))
    }

    fn type_name(&self) -> &'static str {
        "concat"
    }

    fn device_name(&self) -> &'static str {
        "concat"
    }

    fn reference(&self, ins: &[&Tensor], _g: &Graphs) -> Tensor {
        let rows = ins[0].rows;
        let channels: usize = ins.iter().map(|t| t.channels).sum();
        let mut out = Tensor::zeros(rows, channels);
        for r in 0..rows {
            let mut at = r * channels;
            for t in ins {
                out.data[at..at + t.channels].copy_from_slice(t.row(r));
                at += t.channels;
            }
        }
        out
    }

    fn lower(&self, cx: &mut Lower<'_, '_>) -> Result<Op> {
        if cx.in_ids.len() > fmt::MAX_CONCAT {
            bail!(
                "{}: {} inputs, the runtime concatenates at most {}",
                cx.who,
                cx.in_ids.len(),
                fmt::MAX_CONCAT
            );
        }
        let mut parts = heapless::Vec::new();
        for (&input, d) in cx.in_ids.iter().zip(&cx.in_desc) {
            let mult_q16 = cx.q16(d.scale as f64 / cx.s_out)?;
            let _ = parts.push(ConcatPart { input, mult_q16 });
        }
        Ok(Op::Concat(ops::Concat {
            parts,
            output: cx.output,
        }))
    }
}

impl Describe for ops::Add {
    fn describe(&self, _cx: &mut Inspect<'_, '_>) -> Described {
        let q = format!("q16 {}, {}", self.mult_a_q16, self.mult_b_q16);
        Described::new(act_str(&self.act), q, json!({}))
    }
}

impl Describe for ops::Concat {
    fn describe(&self, _cx: &mut Inspect<'_, '_>) -> Described {
        let mults: Vec<String> = self.parts.iter().map(|p| p.mult_q16.to_string()).collect();
        Described::new("-".into(), format!("q16 {}", mults.join(", ")), json!({}))
    }
}

impl Describe for ops::Act {
    fn describe(&self, _cx: &mut Inspect<'_, '_>) -> Described {
        Described::new(act_str(&self.act), "same quant as input", json!({}))
    }
}
