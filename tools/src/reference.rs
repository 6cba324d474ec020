//! Float reference executor of a spec, in `f64`, with PyTorch Geometric's
//! eval-mode semantics (see `/docs/interchange.md`). It defines what
//! "correct" means for the int8 model: calibration runs it, and `verify`
//! compares against it. Each op's semantics live with its family in
//! [`crate::ops`] ([`crate::ops::HostOp::reference`]); this module runs a
//! whole spec.

use std::collections::HashMap;

use anyhow::{anyhow, Result};

pub use crate::ops::common::{linear, Tensor, Values};
use crate::spec::{Rows, Spec};
use crate::st::Graphs;

/// Executes one op given its input tensors.
pub fn exec_op(kind: &crate::ops::OpKind, ins: &[&Tensor], g: &Graphs) -> Tensor {
    kind.reference(ins, g)
}

/// Runs the whole spec on `g`. `progress` is called after every op with its index.
pub fn run(spec: &Spec, g: &Graphs, mut progress: impl FnMut(usize)) -> Result<Values> {
    if g.channels != spec.in_channels {
        return Err(anyhow!(
            "graphs have {} feature channels, the model input '{}' expects {}",
            g.channels,
            spec.input,
            spec.in_channels
        ));
    }
    let mut vals: Values = HashMap::new();
    vals.insert(
        spec.input.clone(),
        Tensor {
            rows: g.num_nodes,
            channels: g.channels,
            data: g.x.iter().map(|&v| v as f64).collect(),
        },
    );
    if let Some((name, d)) = &spec.edge_input {
        let attr = g.edge_attr.as_ref().ok_or_else(|| {
            anyhow!("the model reads edge features ('{name}') but the graphs have no edge_attr")
        })?;
        if g.edge_dim != *d {
            return Err(anyhow!(
                "graphs have {} edge feature channels, the model's edge input '{name}' expects {d}",
                g.edge_dim
            ));
        }
        vals.insert(
            name.clone(),
            Tensor {
                rows: g.num_edges(),
                channels: *d,
                data: attr.iter().map(|&v| v as f64).collect(),
            },
        );
    }
    for (k, op) in spec.ops.iter().enumerate() {
        let ins: Vec<&Tensor> = op.inputs.iter().map(|i| &vals[i]).collect();
        let extra = op.kind.extra_values(&op.name, &ins, g);
        let out = op.kind.reference(&ins, g);
        vals.extend(extra);
        debug_assert_eq!(out.channels, op.channels);
        debug_assert_eq!(
            out.rows,
            match op.rows {
                Rows::Node => g.num_nodes,
                Rows::Graph => g.num_graphs,
                Rows::Pair => g.pairs.as_ref().map_or(0, |p| p.sources.len()),
            }
        );
        vals.insert(op.name.clone(), out);
        progress(k);
    }
    Ok(vals)
}
