//! `layer_norm`: `torch.nn.LayerNorm(C)` (and PyG's `LayerNorm` with
//! `mode="node"`) over each row's channels, `(x − μ)/√(σ² + ε)·γ + β` with
//! the biased variance. On the device (`layer_norm`) the statistics are exact
//! integers and `γ`, `β` and the output quantization one fixed-point
//! multiply–add per value (see `tinygnn::ops::norm`).

use anyhow::{bail, Result};
use serde_json::json;
use tinygnn::format::Op;
use tinygnn::ops;
use tinygnn::ops::norm::EPS_Q_MAX;

use super::common::{Parse, Rows, Tensor};
use super::describe::{Describe, Described, Inspect};
use super::host_op::HostOp;
use crate::lower::Lower;
use crate::st::Graphs;

/// Layer normalization over the channels.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerNorm {
    /// γ (ones when absent).
    pub gamma: Vec<f64>,
    /// β (zeros when absent).
    pub beta: Vec<f64>,
    /// ε.
    pub eps: f64,
}

impl HostOp for LayerNorm {
    const TYPES: &'static [&'static str] = &["layer_norm"];

    fn parse(cx: &Parse<'_>) -> Result<(Self, Rows, usize)> {
        let c = cx.same_channels()?;
        let eps = cx.f64_attr("eps", 1e-5)?;
        if eps < 0.0 {
            bail!("{}: eps {eps} is negative", cx.who());
        }
        let gamma = cx.scale("weight", c, "[channels]")?;
        let beta = cx.bias("bias", c, "[channels]")?;
        Ok((LayerNorm { gamma, beta, eps }, cx.rows(), c))
    }

    fn type_name(&self) -> &'static str {
        "layer_norm"
    }

    fn device_name(&self) -> &'static str {
        "layer_norm"
    }

    fn reference(&self, ins: &[&Tensor], _g: &Graphs) -> Tensor {
        let x = ins[0];
        let c = x.channels.max(1);
        let mut data = x.data.clone();
        for row in data.chunks_mut(c) {
            let mean = row.iter().sum::<f64>() / c as f64;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / c as f64;
            let inv = 1.0 / (var + self.eps).sqrt();
            for (k, v) in row.iter_mut().enumerate() {
                *v = (*v - mean) * inv * self.gamma[k] + self.beta[k];
            }
        }
        Tensor { data, ..x.clone() }
    }

    /// `eps_q = round(ε·C³/s_x²)`; per channel `A = γ·√C / (2^16·s_out)` and
    /// `B = β/s_out + zp_out` in fixed point with the most fraction bits `F`
    /// that keep `a` within 2^30 and `b` within 2^61.
    fn lower(&self, cx: &mut Lower<'_, '_>) -> Result<Op> {
        let c = self.gamma.len() as f64;
        let (s_x, s_out) = (cx.s_in, cx.s_out);
        let eps_q = (self.eps * c * c * c / (s_x * s_x)).round();
        let eps_q = if eps_q.is_finite() {
            eps_q.clamp(0.0, EPS_Q_MAX as f64) as u64
        } else {
            EPS_Q_MAX
        };
        let zp = f64::from(cx.out_desc.zero_point);
        let a: Vec<f64> = self
            .gamma
            .iter()
            .map(|g| g * c.sqrt() / (65536.0 * s_out))
            .collect();
        let b: Vec<f64> = self.beta.iter().map(|b| b / s_out + zp).collect();
        let max = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let f_a = if max(&a) > 0.0 {
            (30.0 - max(&a).log2()).floor()
        } else {
            62.0
        };
        let f_b = (61.0 - (max(&b) + 1.0).log2()).floor();
        let frac = f_a.min(f_b).clamp(1.0, 62.0);
        if !frac.is_finite() {
            bail!("{}: the affine map of the norm is not finite", cx.who);
        }
        let scale = 2f64.powi(frac as i32);
        let affine: Vec<u8> = a
            .iter()
            .zip(&b)
            .flat_map(|(a, b)| {
                let a = (a * scale).round() as i32;
                let b = (b * scale).round() as i64;
                a.to_le_bytes().into_iter().chain(b.to_le_bytes())
            })
            .collect();
        let affine = cx.add_table(&affine);
        Ok(Op::LayerNorm(ops::norm::LayerNorm {
            input: cx.input(),
            output: cx.output,
            eps_q,
            affine,
            frac: frac as u8,
        }))
    }
}

impl Describe for ops::norm::LayerNorm {
    fn describe(&self, cx: &mut Inspect<'_, '_>) -> Described {
        cx.params(self.affine.len);
        Described::new(
            "-".into(),
            format!("affine Q{}, eps_q {}", self.frac, self.eps_q),
            json!({"eps_q": self.eps_q}),
        )
    }
}
