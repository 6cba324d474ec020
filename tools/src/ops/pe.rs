//! `random_walk_pe`: PyG's `AddRandomWalkPE(walk_length)` computed on the
//! device from the graph: the probability of a random walk from each node
//! being back after `1..=K` steps (`P[i, j] = 1/outdeg(i)` per distinct edge
//! `i → j`, the degree counting every edge). The exporter writes it where a
//! model reads the PE attribute its example graph carries.

use anyhow::{bail, Result};
use serde_json::json;
use tinygnn::format::Op;
use tinygnn::ops;
use tinygnn::quant::quantize_multiplier;

use super::common::{Parse, Rows, Tensor};
use super::describe::{mult_shift, Describe, Described, Inspect};
use super::host_op::HostOp;
use crate::lower::Lower;
use crate::st::Graphs;

/// Random-walk positional encoding with `steps` walk lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandomWalkPe {
    /// Walk length `K`.
    pub steps: usize,
}

impl HostOp for RandomWalkPe {
    const TYPES: &'static [&'static str] = &["random_walk_pe"];

    fn parse(cx: &Parse<'_>) -> Result<(Self, Rows, usize)> {
        cx.need_node()?;
        let k = cx.usize_attr("walk_length")?;
        if !(1..=255).contains(&k) {
            bail!("{}: walk_length {k} is not in 1..=255", cx.who());
        }
        Ok((RandomWalkPe { steps: k }, Rows::Node, k))
    }

    fn type_name(&self) -> &'static str {
        "random_walk_pe"
    }

    fn device_name(&self) -> &'static str {
        "random_walk_pe"
    }

    fn reference(&self, _ins: &[&Tensor], g: &Graphs) -> Tensor {
        let n = g.num_nodes;
        let mut deg = vec![0usize; n];
        for &s in &g.sources {
            deg[s as usize] += 1;
        }
        let mut edges: Vec<(usize, usize)> = g
            .sources
            .iter()
            .zip(&g.targets)
            .map(|(&s, &t)| (s as usize, t as usize))
            .collect();
        edges.sort_unstable();
        edges.dedup();
        let mut out = Tensor::zeros(n, self.steps);
        for s in 0..n {
            let mut p = vec![0.0f64; n];
            p[s] = 1.0;
            for k in 0..self.steps {
                let mut q = vec![0.0f64; n];
                for &(i, j) in &edges {
                    q[j] += p[i] / deg[i].max(1) as f64;
                }
                p = q;
                out.data[s * self.steps + k] = p[s];
            }
        }
        out
    }

    fn lower(&self, cx: &mut Lower<'_, '_>) -> Result<Op> {
        let (mult, shift) = quantize_multiplier(1.0 / (f64::from(1u32 << 30) * cx.s_out));
        if !(-32..=31).contains(&shift) {
            bail!("{}: output scale {} is out of range", cx.who, cx.s_out);
        }
        Ok(Op::RandomWalkPe(ops::pe::RandomWalkPe {
            input: cx.input(),
            output: cx.output,
            steps: u8::try_from(self.steps).unwrap_or(u8::MAX),
            mult,
            shift,
        }))
    }
}

impl Describe for ops::pe::RandomWalkPe {
    fn describe(&self, _cx: &mut Inspect<'_, '_>) -> Described {
        Described::new(
            "-".into(),
            mult_shift(self.mult, self.shift),
            json!({"walk_length": self.steps}),
        )
    }
}
