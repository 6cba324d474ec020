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
/// A recurrent spec (`state`) runs from the zero state ([`run_sequence`]
/// runs it step by step).
pub fn run(spec: &Spec, g: &Graphs, progress: impl FnMut(usize)) -> Result<Values> {
    run_step(spec, g, &[], progress)
}

/// Runs a recurrent spec over `steps` in order, from the zero state, each
/// step reading the states the previous one computed (each `state.next`).
/// Returns every step's values (the state inputs included under their names).
pub fn run_sequence(spec: &Spec, steps: &[Graphs]) -> Result<Vec<Values>> {
    if spec.states.is_empty() {
        return Err(anyhow!(
            "the model has no state: it is not a recurrent cell"
        ));
    }
    let mut h: Vec<Tensor> = Vec::new();
    let mut out = Vec::with_capacity(steps.len());
    for g in steps {
        let vals = run_step(spec, g, &h, |_| {})?;
        h = spec
            .states
            .iter()
            .map(|st| vals[&st.next].clone())
            .collect();
        out.push(vals);
    }
    Ok(out)
}

/// One step: [`run`] with the states `h` (each `[N, H]`, in
/// `spec.states`' order; all zeros when `h` is empty).
pub fn run_step(
    spec: &Spec,
    g: &Graphs,
    h: &[Tensor],
    mut progress: impl FnMut(usize),
) -> Result<Values> {
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
    if !h.is_empty() && h.len() != spec.states.len() {
        return Err(anyhow!(
            "{} state tensors given, the model carries {}",
            h.len(),
            spec.states.len()
        ));
    }
    for (k, st) in spec.states.iter().enumerate() {
        let t = match h.get(k) {
            Some(t) if t.rows == g.num_nodes && t.channels == st.channels => t.clone(),
            Some(t) => {
                return Err(anyhow!(
                    "state '{}' is [{}, {}], the graph needs [{}, {}] (do the steps have the same nodes?)",
                    st.name,
                    t.rows,
                    t.channels,
                    g.num_nodes,
                    st.channels
                ))
            }
            None => Tensor::zeros(g.num_nodes, st.channels),
        };
        vals.insert(st.name.clone(), t);
    }
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
