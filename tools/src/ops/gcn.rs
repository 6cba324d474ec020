//! `gcn_conv`: PyG's GCNConv, `Â·(x Wᵀ) + b` with `Â` from `gcn_norm` (see
//! [`gcn_edges`]); BatchNorm and activations fused.

use anyhow::Result;
use serde_json::json;
use tinygnn::format::Op;
use tinygnn::ops;

use super::common::{
    gcn_edges, linear, propagate_once, take, BatchNorm, Mat, Norm, Parse, Rows, Tensor,
};
use super::describe::{act_str, Describe, Described, Inspect};
use super::host_op::HostOp;
use crate::lower::Lower;
use crate::st::Graphs;

/// GCNConv.
#[derive(Debug, Clone, PartialEq)]
pub struct Gcn {
    /// `lin.weight` `[out, in]`.
    pub w: Mat,
    /// Bias (zeros when absent).
    pub b: Vec<f64>,
    /// `gcn_norm`'s flags and the use of edge weights.
    pub norm: Norm,
}

impl HostOp for Gcn {
    const TYPES: &'static [&'static str] = &["gcn_conv"];

    fn parse(cx: &Parse<'_>) -> Result<(Self, Rows, usize)> {
        cx.need_node()?;
        let (i, o) = cx.in_out()?;
        let w = cx.mat("weight", o, i)?;
        let b = cx.bias("bias", o, "[out_channels]")?;
        let norm = Norm {
            improved: cx.bool_attr("improved", false)?,
            ..Norm::parse(cx, true)?
        };
        Ok((Gcn { w, b, norm }, Rows::Node, o))
    }

    fn type_name(&self) -> &'static str {
        "gcn_conv"
    }

    fn device_name(&self) -> &'static str {
        "gcn_conv"
    }

    fn reference(&self, ins: &[&Tensor], g: &Graphs) -> Tensor {
        let h = linear(ins[0], &self.w, None);
        let mut out = propagate_once(&h, &gcn_edges(g, self.norm));
        let c = self.w.rows;
        for r in 0..out.rows {
            for k in 0..c {
                out.data[r * c + k] += self.b[k];
            }
        }
        out
    }

    fn for_device(self) -> Self {
        Gcn {
            norm: self.norm.for_device(),
            ..self
        }
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
        Some(Gcn {
            w: self.w.take_rows(keep)?,
            b: take(&self.b, keep)?,
            norm: self.norm,
        })
    }

    fn permute_input(&self, perm: &[usize]) -> Option<Self> {
        Some(Gcn {
            w: self.w.permute_cols(perm)?,
            b: self.b.clone(),
            norm: self.norm,
        })
    }

    /// `Â·x`, the normalised propagation of the input.
    fn feedback_input(&self, x: &Tensor, g: &Graphs) -> Option<Tensor> {
        Some(propagate_once(x, &gcn_edges(g, self.norm)))
    }

    fn lower(&self, cx: &mut Lower<'_, '_>) -> Result<Op> {
        let (weights, _, params) = cx.weighted(&[&self.w], &self.b, false)?;
        Ok(Op::GcnConv(ops::GcnConv {
            input: cx.input(),
            output: cx.output,
            weights,
            params,
            act: cx.act,
            improved: self.norm.improved,
            add_self_loops: self.norm.add_self_loops,
            normalize: self.norm.normalize,
            edge_weight: self.norm.edge_weight,
        }))
    }
}

impl Describe for ops::GcnConv {
    fn describe(&self, cx: &mut Inspect<'_, '_>) -> Described {
        let wb = cx.weights(&self.weights);
        cx.params(self.params.len);
        cx.out_biases();
        Described::new(
            act_str(&self.act),
            cx.mult_summary(self.params),
            json!({"weights": wb, "improved": self.improved, "add_self_loops": self.add_self_loops,
                   "normalize": self.normalize, "edge_weight": self.edge_weight}),
        )
    }
}
