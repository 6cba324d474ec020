//! Fusion: the spec's op list as the device will run it. Dropout and
//! identity go, eval BatchNorm folds into the linear map before it (or,
//! where there is none, runs as a diagonal linear layer), and
//! activations fuse into the op that produces their input; each fused op
//! ([`FOp`]) knows the device op it becomes ([`FOp::device_name`]). Which ops
//! take a BatchNorm or an activation is each family's answer
//! ([`crate::ops::HostOp::fold_bn`], [`crate::ops::HostOp::fuses_act`]).

use std::collections::HashMap;

use anyhow::{bail, Result};

pub use crate::ops::common::Act;
use crate::ops::common::{BatchNorm, Mat, Rows};
use crate::ops::elementwise::{Activation, Norm};
use crate::ops::linear::Linear;
use crate::ops::OpKind;
use crate::spec::Spec;
use crate::weights::Layer;

/// An op after fusion.
#[derive(Debug, Clone, PartialEq)]
pub struct FOp {
    /// Spec name of the produced tensor.
    pub name: String,
    /// Spec names of the ops merged into this one, first to last.
    pub merged: Vec<String>,
    /// Inputs (spec names).
    pub inputs: Vec<String>,
    /// The op, its flags as the device reads them (a standalone activation
    /// is [`OpKind::Act`]).
    pub kind: OpKind,
    /// Its activation.
    pub act: Act,
    /// Node, graph or pair rows.
    pub rows: Rows,
    /// Output channels.
    pub channels: usize,
}

impl FOp {
    /// The name of the device op this fused op becomes (`Op::name` of the
    /// runtime; ELU runs as a lookup table, `lut`).
    pub fn device_name(&self) -> &'static str {
        self.kind.device_name()
    }

    /// Whether the op has weights a `--weights` plan can name.
    pub fn has_weights(&self) -> bool {
        self.kind.has_weights()
    }

    /// The layer as the weight step names it.
    pub fn layer(&self) -> Layer<'_> {
        Layer {
            name: &self.name,
            merged: &self.merged,
            input: &self.inputs[0],
        }
    }
}

/// The name a layer with weights goes by in `--weights` and in reports: the
/// first spec op merged into it (the conv or linear itself).
pub fn layer_name(f: &FOp) -> &str {
    f.merged.first().unwrap_or(&f.name)
}

/// The fused op list and the (alias-resolved) outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Fused {
    /// Ops.
    pub ops: Vec<FOp>,
    /// Output tensor names.
    pub outputs: Vec<String>,
}

/// A BatchNorm on its own: `diag(a)·x + β − a·μ`, `a = γ/√(σ²+ε)`.
fn diagonal(bn: &BatchNorm) -> Linear {
    let c = bn.gamma.len();
    let mut w = Mat {
        rows: c,
        cols: c,
        data: (0..c * c)
            .map(|k| if k / c == k % c { 1.0 } else { 0.0 })
            .collect(),
    };
    let mut b = vec![0.0; c];
    bn.fold(&mut [&mut w], &mut b);
    Linear { w, b }
}

/// Drops dropout/identity, folds BatchNorm (or runs it as a diagonal linear
/// layer), fuses activations.
pub fn fuse(spec: &Spec) -> Result<Fused> {
    // Pass 1: resolve identity aliases.
    let mut alias: HashMap<String, String> = HashMap::new();
    let resolve = |alias: &HashMap<String, String>, n: &str| -> String {
        let mut n = n.to_string();
        while let Some(a) = alias.get(&n) {
            n = a.clone();
        }
        n
    };
    let mut ops = Vec::new();
    for op in &spec.ops {
        let inputs: Vec<String> = op.inputs.iter().map(|i| resolve(&alias, i)).collect();
        if matches!(op.kind, OpKind::Identity(_)) {
            alias.insert(op.name.clone(), inputs[0].clone());
        } else {
            ops.push((op, inputs));
        }
    }
    let outputs: Vec<String> = spec.outputs.iter().map(|o| resolve(&alias, o)).collect();
    if let Some(o) = outputs.iter().find(|o| **o == spec.input) {
        bail!("model output '{o}' is the input itself; nothing to compute");
    }
    // Uses of each tensor.
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for (_, ins) in &ops {
        for i in ins {
            *uses.entry(i.as_str()).or_default() += 1;
        }
    }
    for o in &outputs {
        *uses.entry(o.as_str()).or_default() += 1;
    }
    let uses: HashMap<String, usize> = uses.into_iter().map(|(k, v)| (k.to_string(), v)).collect();

    let mut out: Vec<FOp> = Vec::new();
    for (op, inputs) in ops {
        let single_use = uses.get(&inputs[0]).copied().unwrap_or(0) == 1;
        let producer = out.iter_mut().find(|f| f.name == inputs[0]);
        match &op.kind {
            OpKind::BatchNorm(Norm(bn)) => {
                // Folded into the producer's weights where it has them (no
                // activation between, no other consumer); else a standalone
                // per-channel affine map, run as a linear layer whose weight is
                // diagonal (each row's one value is exact at its own scale).
                let folded = match producer {
                    Some(p) if single_use && p.act == Act::None => {
                        let mut kind = p.kind.clone();
                        let ok = kind.fold_bn(bn);
                        if ok {
                            p.kind = kind;
                            p.name = op.name.clone();
                            p.merged.push(op.name.clone());
                        }
                        ok
                    }
                    _ => false,
                };
                if !folded {
                    out.push(FOp {
                        name: op.name.clone(),
                        merged: vec![op.name.clone()],
                        inputs,
                        kind: OpKind::Linear(diagonal(bn)),
                        act: Act::None,
                        rows: op.rows,
                        channels: op.channels,
                    });
                }
            }
            OpKind::Act(Activation(act)) => match producer {
                Some(p) if single_use && p.act == Act::None && p.kind.fuses_act() => {
                    p.act = *act;
                    p.name = op.name.clone();
                    p.merged.push(op.name.clone());
                }
                _ => out.push(FOp {
                    name: op.name.clone(),
                    merged: vec![op.name.clone()],
                    inputs,
                    kind: op.kind.clone(),
                    act: *act,
                    rows: op.rows,
                    channels: op.channels,
                }),
            },
            k => out.push(FOp {
                name: op.name.clone(),
                merged: vec![op.name.clone()],
                inputs,
                kind: k.clone().for_device(),
                act: Act::None,
                rows: op.rows,
                channels: op.channels,
            }),
        }
    }
    Ok(Fused { ops: out, outputs })
}
