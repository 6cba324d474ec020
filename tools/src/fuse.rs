//! Fusion: the spec's op list as the device will run it. Dropout and
//! identity go, eval BatchNorm folds into the linear map before it, and
//! activations fuse into the op that produces their input; each fused op
//! ([`FOp`]) knows the device op it becomes ([`FOp::device_name`], the host
//! tool's one op-name table).

use std::collections::HashMap;

use anyhow::{bail, Result};

use crate::spec::{Aggr, Mat, OpKind, PoolKind, Rows, Spec};

/// Activation fused into (or standing after) an op.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    /// None.
    None,
    /// ReLU.
    Relu,
    /// LeakyReLU with this slope.
    Leaky(f64),
}

/// An op after fusion.
#[derive(Debug, Clone, PartialEq)]
pub enum FKind {
    /// Linear (BatchNorm folded).
    Linear {
        /// Weights.
        w: Mat,
        /// Bias.
        b: Vec<f64>,
    },
    /// GCNConv (BatchNorm folded).
    Gcn {
        /// Weights.
        w: Mat,
        /// Bias.
        b: Vec<f64>,
        /// Loop fill 2.
        improved: bool,
        /// Add remaining self-loops.
        add_self_loops: bool,
        /// Normalise.
        normalize: bool,
        /// Use edge weights.
        edge_weight: bool,
    },
    /// SAGEConv (BatchNorm folded).
    Sage {
        /// lin_l weights.
        wl: Mat,
        /// lin_r weights.
        wr: Option<Mat>,
        /// Bias.
        b: Vec<f64>,
        /// Aggregation.
        aggr: Aggr,
        /// L2 normalise.
        normalize: bool,
    },
    /// GIN aggregation.
    Gin {
        /// ε.
        eps: f64,
    },
    /// Pooling.
    Pool(PoolKind),
    /// Sum.
    Add,
    /// Concatenation.
    Concat,
    /// Standalone activation.
    Act,
    /// GATConv / GATv2Conv.
    Gat(Box<crate::spec::GatSpec>),
    /// APPNP / SGConv (self-loop flags resolved as for GCN).
    Propagate(Box<crate::spec::PropSpec>),
    /// ELU as an int8 lookup table (edgefeat).
    Elu {
        /// α.
        alpha: f64,
    },
    /// GINEConv aggregation (edgefeat).
    Gine {
        /// ε.
        eps: f64,
        /// Edge `lin` weight `[C, D]` and bias, if any.
        lin: Option<(Mat, Vec<f64>)>,
    },
    /// EdgeConv / DynamicEdgeConv (its `nn` inside).
    EdgeConv(Box<crate::spec::EdgeConvSpec>),
    /// Inner-product pair decoder (link).
    InnerProduct,
    /// Pair features `z_s ⊙ z_t` (link).
    PairHadamard,
    /// Pair features `[z_s, z_t]` (link).
    PairConcat,
    /// Softmax / log-softmax over the channels.
    Softmax {
        /// Log-softmax.
        log: bool,
    },
}

/// A fused op: produces the spec tensor `name` (the last one of its chain).
#[derive(Debug, Clone, PartialEq)]
pub struct FOp {
    /// Spec name of the produced tensor.
    pub name: String,
    /// Spec names of the ops merged into this one, first to last.
    pub merged: Vec<String>,
    /// Inputs (spec names).
    pub inputs: Vec<String>,
    /// The op.
    pub kind: FKind,
    /// Its activation.
    pub act: Act,
    /// Node or graph rows.
    pub rows: Rows,
    /// Output channels.
    pub channels: usize,
}

impl FOp {
    /// The name of the device op this fused op becomes (`Op::name` of the
    /// runtime; ELU runs as a lookup table, `lut`): the one op-name table of
    /// the host tool.
    pub fn device_name(&self) -> &'static str {
        match &self.kind {
            FKind::Gat(g) if g.v2 => "gatv2_conv",
            FKind::Gat(_) => "gat_conv",
            FKind::Linear { .. } => "linear",
            FKind::Gcn { .. } => "gcn_conv",
            FKind::Sage { .. } => "sage_conv",
            FKind::Gin { .. } => "gin_aggregate",
            FKind::Pool(_) => "global_pool",
            FKind::Add => "add",
            FKind::Concat => "concat",
            FKind::Act => "act",
            FKind::Propagate(p) if !p.hops.is_empty() => "tag_conv",
            FKind::Propagate(p) if p.w0.is_some() => "gcn2_conv",
            FKind::Propagate(p) if p.w.is_some() => "sg_conv",
            FKind::Propagate(_) => "appnp",
            FKind::Gine { .. } => "gine_conv",
            FKind::Elu { .. } => "lut",
            FKind::EdgeConv(e) if e.k > 0 => "dynamic_edge_conv",
            FKind::EdgeConv(_) => "edge_conv",
            FKind::InnerProduct => "inner_product",
            FKind::PairHadamard => "pair_hadamard",
            FKind::PairConcat => "pair_concat",
            FKind::Softmax { log: false } => "softmax",
            FKind::Softmax { log: true } => "log_softmax",
        }
    }

    /// Whether the op has a weight matrix (Linear, GCN, SAGE).
    pub fn has_weights(&self) -> bool {
        matches!(
            self.kind,
            FKind::Linear { .. }
                | FKind::Gcn { .. }
                | FKind::Sage { .. }
                | FKind::Gat(_)
                | FKind::EdgeConv(_)
        ) || matches!(&self.kind, FKind::Propagate(p) if p.w.is_some() || !p.hops.is_empty())
    }
}

/// Folds an eval BatchNorm `y = (z − μ)/√(σ²+ε)·γ + β` into weights and bias
/// producing `z`: row `c` of each matrix and `b[c]` are scaled by
/// `a = γ/√(σ²+ε)`, then `b[c] += β − a·μ`.
pub fn fold_bn(
    mats: &mut [&mut Mat],
    b: &mut [f64],
    gamma: &[f64],
    beta: &[f64],
    mean: &[f64],
    var: &[f64],
    eps: f64,
) {
    for c in 0..b.len() {
        let a = gamma[c] / (var[c] + eps).sqrt();
        for m in mats.iter_mut() {
            let cols = m.cols;
            m.data[c * cols..(c + 1) * cols]
                .iter_mut()
                .for_each(|v| *v *= a);
        }
        b[c] = a * b[c] + beta[c] - a * mean[c];
    }
}

/// The fused op list and the (alias-resolved) outputs and input name.
#[derive(Debug, Clone, PartialEq)]
pub struct Fused {
    /// Ops.
    pub ops: Vec<FOp>,
    /// Output tensor names.
    pub outputs: Vec<String>,
}

/// Drops dropout/identity, folds BatchNorm, fuses activations.
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
        if op.kind == OpKind::Identity {
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
        let who = format!("op '{}' ({})", op.name, op.kind.type_name());
        let single_use = uses.get(&inputs[0]).copied().unwrap_or(0) == 1;
        let producer = out.iter_mut().find(|f| f.name == inputs[0]);
        match &op.kind {
            OpKind::BatchNorm {
                gamma,
                beta,
                mean,
                var,
                eps,
            } => {
                let Some(p) = producer else {
                    bail!("{who}: batch_norm must follow linear, gcn_conv or sage_conv, but its input is the model input '{}'", inputs[0]);
                };
                let foldable = p.act == Act::None
                    && matches!(
                        p.kind,
                        FKind::Linear { .. }
                            | FKind::Gcn { .. }
                            | FKind::Sage {
                                normalize: false,
                                ..
                            }
                    );
                if !foldable {
                    bail!(
                        "{who}: batch_norm can only be folded into a preceding linear, gcn_conv or sage_conv (without normalize or activation); its input '{}' comes from {}",
                        inputs[0],
                        describe(p)
                    );
                }
                if !single_use {
                    bail!(
                        "{who}: cannot fold batch_norm into '{}': that tensor has other consumers",
                        inputs[0]
                    );
                }
                match &mut p.kind {
                    FKind::Linear { w, b } | FKind::Gcn { w, b, .. } => {
                        fold_bn(&mut [w], b, gamma, beta, mean, var, *eps)
                    }
                    FKind::Sage { wl, wr, b, .. } => match wr {
                        Some(wr) => fold_bn(&mut [wl, wr], b, gamma, beta, mean, var, *eps),
                        None => fold_bn(&mut [wl], b, gamma, beta, mean, var, *eps),
                    },
                    _ => unreachable!(),
                }
                p.name = op.name.clone();
                p.merged.push(op.name.clone());
            }
            OpKind::Relu | OpKind::LeakyRelu { .. } => {
                let act = match op.kind {
                    OpKind::Relu => Act::Relu,
                    OpKind::LeakyRelu { slope } => Act::Leaky(slope),
                    _ => unreachable!(),
                };
                let fusable = |p: &FOp| {
                    p.act == Act::None
                        && matches!(
                            p.kind,
                            FKind::Linear { .. }
                                | FKind::Gcn { .. }
                                | FKind::Sage {
                                    normalize: false,
                                    ..
                                }
                                | FKind::Add
                                | FKind::Gat(_)
                                | FKind::Propagate(_)
                        )
                };
                match producer {
                    Some(p) if single_use && fusable(p) => {
                        p.act = act;
                        p.name = op.name.clone();
                        p.merged.push(op.name.clone());
                    }
                    _ => out.push(FOp {
                        name: op.name.clone(),
                        merged: vec![op.name.clone()],
                        inputs,
                        kind: FKind::Act,
                        act,
                        rows: op.rows,
                        channels: op.channels,
                    }),
                }
            }
            k => {
                let kind = match k.clone() {
                    OpKind::Linear { w, b } => FKind::Linear { w, b },
                    OpKind::Gcn {
                        w,
                        b,
                        improved,
                        add_self_loops,
                        normalize,
                        edge_weight,
                    } => FKind::Gcn {
                        w,
                        b,
                        // PyG ignores `improved` without edge weights (see reference::gcn_edges).
                        improved: improved && edge_weight,
                        // PyG adds self-loops only inside gcn_norm, i.e. when normalizing.
                        add_self_loops: add_self_loops && normalize,
                        normalize,
                        edge_weight,
                    },
                    OpKind::Sage {
                        wl,
                        b,
                        wr,
                        aggr,
                        normalize,
                    } => FKind::Sage {
                        wl,
                        wr,
                        b,
                        aggr,
                        normalize,
                    },
                    OpKind::Gin { eps } => FKind::Gin { eps },
                    OpKind::Pool(p) => FKind::Pool(p),
                    OpKind::Add => FKind::Add,
                    OpKind::Concat => FKind::Concat,
                    OpKind::Gat(g) => FKind::Gat(g),
                    OpKind::Propagate(mut p) => {
                        // As for GCN: PyG ignores `improved` without edge weights and
                        // adds self-loops only inside gcn_norm.
                        p.improved = p.improved && p.edge_weight;
                        p.add_self_loops = p.add_self_loops && p.normalize;
                        FKind::Propagate(p)
                    }
                    OpKind::Gine { eps, lin } => FKind::Gine { eps, lin },
                    OpKind::Elu { alpha } => FKind::Elu { alpha },
                    OpKind::EdgeConv(e) => FKind::EdgeConv(e),
                    OpKind::InnerProduct => FKind::InnerProduct,
                    OpKind::PairHadamard => FKind::PairHadamard,
                    OpKind::PairConcat => FKind::PairConcat,
                    OpKind::Softmax { log } => FKind::Softmax { log },
                    OpKind::BatchNorm { .. }
                    | OpKind::Relu
                    | OpKind::LeakyRelu { .. }
                    | OpKind::Identity => {
                        unreachable!()
                    }
                };
                out.push(FOp {
                    name: op.name.clone(),
                    merged: vec![op.name.clone()],
                    inputs,
                    kind,
                    act: Act::None,
                    rows: op.rows,
                    channels: op.channels,
                });
            }
        }
    }
    Ok(Fused { ops: out, outputs })
}

fn describe(p: &FOp) -> String {
    // The device op name, with a plainer word where the name alone says little.
    let k = match &p.kind {
        FKind::Sage {
            normalize: true, ..
        } => "sage_conv with normalize",
        FKind::Pool(_) => "a global pool",
        FKind::Act => "an activation",
        FKind::Elu { .. } => "elu",
        _ => p.device_name(),
    };
    if p.act != Act::None && !matches!(p.kind, FKind::Act) {
        format!("'{}' ({k} with a fused activation)", p.merged[0])
    } else {
        format!("'{}' ({k})", p.merged[0])
    }
}
