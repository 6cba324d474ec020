//! `hypergraph_conv`: PyG's HypergraphConv without attention,
//! `D^-1 H B^-1 Hᵀ (x Θᵀ) + b` over the graphs' `hyperedge_index` (see
//! [`hyper_edges`]); BatchNorm and activations fused.

use anyhow::Result;
use serde_json::json;
use tinygnn::format::Op;
use tinygnn::ops;

use super::common::{linear, propagate_once, BatchNorm, Mat, Parse, Rows, Tensor};
use super::describe::{act_str, Describe, Described, Inspect};
use super::host_op::HostOp;
use crate::lower::Lower;
use crate::st::Graphs;

/// HypergraphConv (`use_attention=False`).
#[derive(Debug, Clone, PartialEq)]
pub struct Hypergraph {
    /// `lin.weight` `[out, in]` (Θ).
    pub w: Mat,
    /// Bias (zeros when absent).
    pub b: Vec<f64>,
    /// Whether the layer reads the graphs' `hyperedge_weight`.
    pub weighted: bool,
}

/// The node-to-node coefficients `(u, v, coef)` of `D^-1 H B^-1 Hᵀ` for the
/// graphs' incidence: for every hyperedge `e` and every pair of its
/// incidences `(v, e)`, `(u, e)`, a term `u → v` of `D_v^-1 · B_e^-1`, with
/// `B_e` the incidences of `e`, `D_v = Σ_{(v,e)} w_e` (the hyperedge weights,
/// 1 without them) and `1/0 = 0` (PyG's `inf → 0`). Empty without a
/// hypergraph incidence.
pub fn hyper_edges(g: &Graphs, weighted: bool) -> Vec<(usize, usize, f64)> {
    let Some(h) = &g.hyperedges else {
        return Vec::new();
    };
    let m = h.num_hyperedges();
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); m];
    let mut d = vec![0.0f64; g.num_nodes];
    for (&v, &e) in h.nodes.iter().zip(&h.edges) {
        members[e as usize].push(v as usize);
        d[v as usize] += if weighted {
            h.weight_of(e as usize)
        } else {
            1.0
        };
    }
    let inv = |x: f64| if x == 0.0 { 0.0 } else { 1.0 / x };
    let mut out = Vec::new();
    for vs in &members {
        let binv = inv(vs.len() as f64);
        for &v in vs {
            for &u in vs {
                out.push((u, v, inv(d[v]) * binv));
            }
        }
    }
    out
}

impl HostOp for Hypergraph {
    const TYPES: &'static [&'static str] = &["hypergraph_conv"];

    fn parse(cx: &Parse<'_>) -> Result<(Self, Rows, usize)> {
        cx.need_node()?;
        let (i, o) = cx.in_out()?;
        let w = cx.mat("weight", o, i)?;
        let b = cx.bias("bias", o, "[out_channels]")?;
        let weighted = cx.bool_attr("hyperedge_weight", false)?;
        Ok((Hypergraph { w, b, weighted }, Rows::Node, o))
    }

    fn type_name(&self) -> &'static str {
        "hypergraph_conv"
    }

    fn device_name(&self) -> &'static str {
        "hypergraph_conv"
    }

    fn reference(&self, ins: &[&Tensor], g: &Graphs) -> Tensor {
        let h = linear(ins[0], &self.w, None);
        let mut out = propagate_once(&h, &hyper_edges(g, self.weighted));
        let c = self.w.rows;
        for r in 0..out.rows {
            for k in 0..c {
                out.data[r * c + k] += self.b[k];
            }
        }
        out
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

    /// `D^-1 H B^-1 Hᵀ x`, the hypergraph propagation of the input.
    fn feedback_input(&self, x: &Tensor, g: &Graphs) -> Option<Tensor> {
        Some(propagate_once(x, &hyper_edges(g, self.weighted)))
    }

    fn lower(&self, cx: &mut Lower<'_, '_>) -> Result<Op> {
        let (weights, _, params) = cx.weighted(&[&self.w], &self.b, false)?;
        Ok(Op::HypergraphConv(ops::HypergraphConv {
            input: cx.input(),
            output: cx.output,
            weights,
            params,
            act: cx.act,
            weighted: self.weighted,
        }))
    }
}

impl Describe for ops::HypergraphConv {
    fn describe(&self, cx: &mut Inspect<'_, '_>) -> Described {
        let wb = cx.weights(&self.weights);
        cx.params(self.params.len);
        cx.out_biases();
        Described::new(
            act_str(&self.act),
            cx.mult_summary(self.params),
            json!({"weights": wb, "hyperedge_weight": self.weighted}),
        )
    }
}
