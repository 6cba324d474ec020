//! The model spec (the op graph in `MODEL.safetensors`, `docs/interchange.md`),
//! parsed and checked against its weights.
//!
//! Every error names the op (by its spec name and type) and, where there is
//! one, the parameter role and safetensors key at fault.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::st::{Arr, ModelFile};

/// Node- or graph-level task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// One output row per node.
    Node,
    /// One output row per graph.
    Graph,
    /// One output row per node pair (link prediction; helper `link`).
    Link,
}

/// Whether a tensor has one row per node or per graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// Node rows.
    Node,
    /// Graph rows (after pooling).
    Graph,
    /// Node-pair rows (link prediction: after a pair decoder).
    Pair,
}

/// A dense row-major matrix `[rows, cols]` (weights are `[out, in]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Mat {
    /// Rows (output channels for weights).
    pub rows: usize,
    /// Columns (input channels for weights).
    pub cols: usize,
    /// Values.
    pub data: Vec<f64>,
}

impl Mat {
    /// Row `r`.
    pub fn row(&self, r: usize) -> &[f64] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }
}

/// SAGEConv aggregation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggr {
    /// Sum.
    Sum,
    /// Mean.
    Mean,
    /// Max.
    Max,
}

/// Global pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    /// Sum.
    Add,
    /// Mean.
    Mean,
    /// Max.
    Max,
}

/// One op with its weights resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum OpKind {
    /// `x Wᵀ + b`.
    Linear {
        /// `[out, in]`.
        w: Mat,
        /// `[out]` (zeros when absent).
        b: Vec<f64>,
    },
    /// Eval-mode BatchNorm.
    BatchNorm {
        /// γ.
        gamma: Vec<f64>,
        /// β.
        beta: Vec<f64>,
        /// Running mean.
        mean: Vec<f64>,
        /// Running variance.
        var: Vec<f64>,
        /// ε.
        eps: f64,
    },
    /// ReLU.
    Relu,
    /// LeakyReLU.
    LeakyRelu {
        /// Negative slope.
        slope: f64,
    },
    /// Dropout (eval) or identity.
    Identity,
    /// GCNConv.
    Gcn {
        /// `lin.weight` `[out, in]`.
        w: Mat,
        /// Bias (zeros when absent).
        b: Vec<f64>,
        /// Fill self-loops with 2.
        improved: bool,
        /// Add remaining self-loops.
        add_self_loops: bool,
        /// Symmetric normalisation.
        normalize: bool,
        /// Use the graph's edge weights.
        edge_weight: bool,
    },
    /// SAGEConv.
    Sage {
        /// `lin_l.weight`.
        wl: Mat,
        /// `lin_l.bias` (zeros when absent).
        b: Vec<f64>,
        /// `lin_r.weight` if `root_weight`.
        wr: Option<Mat>,
        /// Aggregation.
        aggr: Aggr,
        /// L2-normalise the output.
        normalize: bool,
    },
    /// GIN aggregation `(1+eps)·x_i + Σ x_j`.
    Gin {
        /// ε.
        eps: f64,
    },
    /// Global pooling.
    Pool(PoolKind),
    /// Element-wise sum of two inputs.
    Add,
    /// Channel concatenation.
    Concat,
    /// GATConv / GATv2Conv (no edge features).
    Gat(Box<GatSpec>),
    /// Decoupled propagation: APPNP (`w` absent), SGConv (`w`, `alpha = 0`)
    /// and GCN2Conv (`w`, `w0`, `K = 1`, second input `x0`).
    Propagate(Box<PropSpec>),
    /// ELU `x > 0 ? x : alpha·(exp(x) − 1)` (edgefeat; a lookup table on the device).
    Elu {
        /// α.
        alpha: f64,
    },
    /// GINEConv aggregation `(1+eps)·x_i + Σ ReLU(x_j + lin(e_ji))` over the
    /// spec's edge input (edgefeat).
    Gine {
        /// ε.
        eps: f64,
        /// `lin` (`[C, D]` weight and `[C]` bias) when `edge_dim` is given.
        lin: Option<(Mat, Vec<f64>)>,
    },
    /// EdgeConv / DynamicEdgeConv (its `nn` normalised, BatchNorm folded).
    EdgeConv(Box<EdgeConvSpec>),
    /// Inner-product pair decoder `z_s · z_t` (link; one channel, the logit).
    InnerProduct,
    /// Pair representation `z_s ⊙ z_t` (link).
    PairHadamard,
    /// Pair representation `[z_s, z_t]` (link).
    PairConcat,
    /// `softmax` (or with `log`, `log_softmax`) over the channels of each row.
    Softmax {
        /// Log-softmax.
        log: bool,
    },
}

/// The options and weights of an APPNP / SGConv / GCN2Conv: `p = x` or
/// `x Wᵀ`, `h⁰ = p` or `x0 W0ᵀ` (GCN2Conv); `h = p`, `K` times
/// `h = (1 − α)·Â·h + α·h⁰`; `+ b`.
#[derive(Debug, Clone, PartialEq)]
pub struct PropSpec {
    /// Steps `K`.
    pub k: usize,
    /// Teleport probability `α` (0 for SGConv).
    pub alpha: f64,
    /// `lin.weight` `[out, in]` (SGConv), `((1 − β)·I + β·W1)ᵀ` (GCN2Conv),
    /// or `None` (APPNP).
    pub w: Option<Mat>,
    /// GCN2Conv: `((1 − β)·I + β·W2)ᵀ` `[out, x0_ch]` applied to the second
    /// input (`W2 = W1` with shared weights).
    pub w0: Option<Mat>,
    /// TAGConv: `lins.0.weight … lins.K.weight` (`[out, in]` each); `w` is
    /// then `None` and `out = Σ_k Â^k x W_kᵀ + b`.
    pub hops: Vec<Mat>,
    /// Bias (zeros when absent; APPNP has none).
    pub b: Vec<f64>,
    /// Fill self-loops with 2 (PyG's APPNP / SGConv never set it).
    pub improved: bool,
    /// Add remaining self-loops.
    pub add_self_loops: bool,
    /// Symmetric normalisation.
    pub normalize: bool,
    /// Use the graph's edge weights.
    pub edge_weight: bool,
}

/// Activation inside an EdgeConv `nn`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NnAct {
    /// Identity.
    None,
    /// ReLU.
    Relu,
    /// LeakyReLU with this slope.
    Leaky(f64),
}

impl NnAct {
    /// Applies the activation.
    pub fn apply(self, x: f64) -> f64 {
        match self {
            NnAct::None => x,
            NnAct::Relu => x.max(0.0),
            NnAct::Leaky(s) => {
                if x < 0.0 {
                    x * s
                } else {
                    x
                }
            }
        }
    }
}

/// An EdgeConv / DynamicEdgeConv: message `nn([x_i, x_j − x_i])` with
/// `nn = Linear → act1 [→ Linear → act2]` (BatchNorm folded into the Linear
/// before it, dropout dropped), aggregated over the in-edges (`k = 0`) or the
/// `k` nearest points of the same graph (itself included).
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeConvSpec {
    /// 0: the graph's edges; `k ≥ 1`: kNN graph.
    pub k: usize,
    /// Aggregation.
    pub aggr: Aggr,
    /// First Linear, `[H, 2·in]` (columns `0..in` act on `x_i`, `in..2·in` on `x_j − x_i`).
    pub w1: Mat,
    /// Its bias `[H]`.
    pub b1: Vec<f64>,
    /// Activation after it.
    pub act1: NnAct,
    /// Second Linear `[out, H]`, if any.
    pub w2: Option<Mat>,
    /// Its bias `[out]` (empty without a second layer).
    pub b2: Vec<f64>,
    /// Activation after it.
    pub act2: NnAct,
}

/// The weights and options of a GATConv / GATv2Conv.
#[derive(Debug, Clone, PartialEq)]
pub struct GatSpec {
    /// GATv2Conv.
    pub v2: bool,
    /// Heads `H`.
    pub heads: usize,
    /// Channels per head `C`.
    pub per_head: usize,
    /// Concatenate the heads (else mean).
    pub concat: bool,
    /// LeakyReLU slope of the attention.
    pub negative_slope: f64,
    /// Remove self-loops and add one per node.
    pub add_self_loops: bool,
    /// `lin.weight` (GAT) or `lin_l.weight` (GATv2), `[H·C, in]`.
    pub w: Mat,
    /// `lin_l.bias` (GATv2; zeros for GAT), `[H·C]`.
    pub bl: Vec<f64>,
    /// `lin_r.weight` (GATv2), `[H·C, in]`.
    pub wr: Option<Mat>,
    /// `lin_r.bias` (GATv2; zeros for GAT), `[H·C]`.
    pub br: Vec<f64>,
    /// `att_src` (GAT) or `att` (GATv2), `[H·C]`.
    pub att_src: Vec<f64>,
    /// `att_dst` (GAT), `[H·C]`; empty for GATv2.
    pub att_dst: Vec<f64>,
    /// Conv bias, `[out]` (`H·C` with concat, `C` without; zeros when absent).
    pub bias: Vec<f64>,
    /// Edge features (`edge_dim`): `lin_edge.weight` `[H·C, D]` and, for GAT,
    /// `att_edge` `[H·C]` (empty for GATv2, which adds `lin_edge(e)` to
    /// `xl_j + xr_i` per channel); self-loops get the mean attribute.
    pub edge: Option<(Mat, Vec<f64>)>,
}

impl OpKind {
    /// The spec's op type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            OpKind::Linear { .. } => "linear",
            OpKind::BatchNorm { .. } => "batch_norm",
            OpKind::Relu => "relu",
            OpKind::LeakyRelu { .. } => "leaky_relu",
            OpKind::Identity => "identity",
            OpKind::Gcn { .. } => "gcn_conv",
            OpKind::Sage { .. } => "sage_conv",
            OpKind::Gin { .. } => "gin_aggregate",
            OpKind::Pool(PoolKind::Add) => "global_add_pool",
            OpKind::Pool(PoolKind::Mean) => "global_mean_pool",
            OpKind::Pool(PoolKind::Max) => "global_max_pool",
            OpKind::Add => "add",
            OpKind::Concat => "concat",
            OpKind::Gat(g) if g.v2 => "gatv2_conv",
            OpKind::Gat(_) => "gat_conv",
            OpKind::Propagate(p) if !p.hops.is_empty() => "tag_conv",
            OpKind::Propagate(p) if p.w0.is_some() => "gcn2_conv",
            OpKind::Propagate(p) if p.w.is_some() => "sg_conv",
            OpKind::Propagate(_) => "appnp",
            OpKind::Gine { .. } => "gine_conv",
            OpKind::Elu { .. } => "elu",
            OpKind::EdgeConv(e) if e.k > 0 => "dynamic_edge_conv",
            OpKind::EdgeConv(_) => "edge_conv",
            OpKind::InnerProduct => "inner_product",
            OpKind::PairHadamard => "pair_hadamard",
            OpKind::PairConcat => "pair_concat",
            OpKind::Softmax { log: false } => "softmax",
            OpKind::Softmax { log: true } => "log_softmax",
        }
    }
}

/// One op of the spec.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecOp {
    /// Name of the op and of the tensor it produces.
    pub name: String,
    /// Input tensor names.
    pub inputs: Vec<String>,
    /// The op.
    pub kind: OpKind,
    /// Output channels.
    pub channels: usize,
    /// Node or graph rows.
    pub rows: Rows,
}

/// A parsed and checked spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// Task.
    pub task: Task,
    /// Name of the node-feature input.
    pub input: String,
    /// Input channels.
    pub in_channels: usize,
    /// The edge-feature input (name, channels `D`), if an op reads edge features.
    pub edge_input: Option<(String, usize)>,
    /// Ops in execution order.
    pub ops: Vec<SpecOp>,
    /// Output names.
    pub outputs: Vec<String>,
}

impl Spec {
    /// Channels and row kind of a named tensor (input or op output).
    pub fn shape_of(&self, name: &str) -> Option<(Rows, usize)> {
        if name == self.input {
            return Some((Rows::Node, self.in_channels));
        }
        self.ops
            .iter()
            .find(|o| o.name == name)
            .map(|o| (o.rows, o.channels))
    }
}

#[derive(Deserialize)]
struct RawSpec {
    tinygnn_spec: u32,
    #[serde(default)]
    task: Option<String>,
    input: RawInput,
    #[serde(default)]
    edge_input: Option<RawInput>,
    ops: Vec<RawOp>,
    outputs: Vec<String>,
}

#[derive(Deserialize)]
struct RawInput {
    name: String,
    channels: usize,
}

#[derive(Deserialize)]
struct RawOp {
    name: String,
    op: String,
    #[serde(default)]
    inputs: Vec<String>,
    #[serde(default)]
    attrs: Map<String, Value>,
    #[serde(default)]
    params: HashMap<String, String>,
}

/// Supported op type names.
pub const SUPPORTED_OPS: &[&str] = &[
    "linear",
    "batch_norm",
    "relu",
    "leaky_relu",
    "dropout",
    "identity",
    "gcn_conv",
    "sage_conv",
    "gin_aggregate",
    "global_add_pool",
    "global_mean_pool",
    "global_max_pool",
    "add",
    "concat",
    "gat_conv",
    "gatv2_conv",
    "appnp",
    "sg_conv",
    "gcn2_conv",
    "tag_conv",
    "gine_conv",
    "elu",
    "edge_conv",
    "dynamic_edge_conv",
    "inner_product",
    "pair_hadamard",
    "pair_concat",
    "softmax",
    "log_softmax",
];

struct Ctx<'a> {
    op: &'a RawOp,
    tensors: &'a HashMap<String, Arr>,
}

impl Ctx<'_> {
    fn who(&self) -> String {
        format!("op '{}' ({})", self.op.name, self.op.op)
    }

    fn attr(&self, key: &str) -> Option<&Value> {
        self.op.attrs.get(key).filter(|v| !v.is_null())
    }

    fn usize_attr(&self, key: &str) -> Result<usize> {
        let v = self
            .attr(key)
            .ok_or_else(|| anyhow!("{}: attribute '{key}' is missing", self.who()))?;
        v.as_u64().map(|x| x as usize).ok_or_else(|| {
            anyhow!(
                "{}: attribute '{key}' = {v} is not a non-negative integer",
                self.who()
            )
        })
    }

    fn bool_attr(&self, key: &str, default: bool) -> Result<bool> {
        match self.attr(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| anyhow!("{}: attribute '{key}' = {v} is not a boolean", self.who())),
        }
    }

    fn f64_attr(&self, key: &str, default: f64) -> Result<f64> {
        match self.attr(key) {
            None => Ok(default),
            Some(v) => {
                let x = v.as_f64().ok_or_else(|| {
                    anyhow!("{}: attribute '{key}' = {v} is not a number", self.who())
                })?;
                if !x.is_finite() {
                    bail!("{}: attribute '{key}' is not finite", self.who());
                }
                Ok(x)
            }
        }
    }

    /// The tensor for `role`, checked to have `shape`.
    fn param(&self, role: &str, shape: &[usize], what: &str) -> Result<Vec<f64>> {
        self.opt_param(role, shape, what)?.ok_or_else(|| {
            anyhow!(
                "{}: parameter '{role}' is missing from 'params'",
                self.who()
            )
        })
    }

    fn opt_param(&self, role: &str, shape: &[usize], what: &str) -> Result<Option<Vec<f64>>> {
        let Some(key) = self.op.params.get(role) else {
            return Ok(None);
        };
        let arr = self.tensors.get(key).ok_or_else(|| {
            anyhow!(
                "{}: parameter '{role}' refers to tensor '{key}', which is not in the model file",
                self.who()
            )
        })?;
        // A [C] vector may also be stored as [1, C] or similar; compare element counts only for 1-D.
        let ok = arr.shape == shape
            || (shape.len() == 1 && arr.shape.iter().product::<usize>() == shape[0]);
        if !ok {
            bail!(
                "{}: parameter '{role}' (tensor '{key}') has shape {:?}, expected {:?} ({what})",
                self.who(),
                arr.shape,
                shape
            );
        }
        if let Some(i) = arr.data.iter().position(|v| !v.is_finite()) {
            bail!(
                "{}: parameter '{role}' (tensor '{key}') has a non-finite value at index {i}",
                self.who()
            );
        }
        Ok(Some(arr.data.clone()))
    }

    fn mat(&self, role: &str, out: usize, inp: usize) -> Result<Mat> {
        let data = self.param(role, &[out, inp], "[out_channels, in_channels] from attrs")?;
        Ok(Mat {
            rows: out,
            cols: inp,
            data,
        })
    }
}

/// Reads a model file (MODEL.safetensors) and parses its spec.
pub fn load(path: &std::path::Path) -> Result<Spec> {
    let file = crate::st::read_model_file(path)?;
    parse(&file).with_context(|| format!("{}: invalid model spec", path.display()))
}

/// Parses the spec of a model file and checks it against its tensors.
pub fn parse(file: &ModelFile) -> Result<Spec> {
    let raw: RawSpec = serde_json::from_str(&file.spec_json)
        .map_err(|e| anyhow!("spec JSON is malformed: {e}"))?;
    if raw.tinygnn_spec != 1 {
        bail!(
            "spec version {} is not supported (this tool reads version 1)",
            raw.tinygnn_spec
        );
    }
    let task = match raw.task.as_deref() {
        None | Some("node") => Task::Node,
        Some("graph") => Task::Graph,
        Some("link") => Task::Link,
        Some(t) => bail!("spec task '{t}' is not 'node', 'graph' or 'link'"),
    };
    if raw.input.channels == 0 {
        bail!("spec input '{}' has 0 channels", raw.input.name);
    }
    let mut shapes: HashMap<String, (Rows, usize)> = HashMap::new();
    shapes.insert(raw.input.name.clone(), (Rows::Node, raw.input.channels));
    let mut ops = Vec::new();
    for op in &raw.ops {
        let cx = Ctx {
            op,
            tensors: &file.tensors,
        };
        let who = cx.who();
        if shapes.contains_key(&op.name) {
            bail!(
                "{who}: the name '{}' is already used by the input or an earlier op",
                op.name
            );
        }
        if !SUPPORTED_OPS.contains(&op.op.as_str()) {
            bail!(
                "op '{}': unknown op type '{}' (supported: {})",
                op.name,
                op.op,
                SUPPORTED_OPS.join(", ")
            );
        }
        let mut ins = Vec::new();
        for i in &op.inputs {
            let s = shapes.get(i).ok_or_else(|| {
                anyhow!(
                    "{who}: input '{i}' is neither the model input nor the output of an earlier op"
                )
            })?;
            ins.push(*s);
        }
        let want_inputs = match op.op.as_str() {
            "add" | "gcn2_conv" => Some(2),
            "concat" => None,
            _ => Some(1),
        };
        match want_inputs {
            Some(k) if ins.len() != k => bail!("{who}: takes {k} input(s), got {}", ins.len()),
            None if ins.is_empty() => bail!("{who}: needs at least one input"),
            _ => {}
        }
        let (rows0, ch0) = ins[0];
        let need_node = |what: &str| -> Result<()> {
            if rows0 != Rows::Node {
                bail!(
                    "{who}: {what} needs node-level input, but '{}' is graph-level (after pooling)",
                    op.inputs[0]
                );
            }
            Ok(())
        };
        let check_in = |attr_in: usize| -> Result<()> {
            if attr_in != ch0 {
                bail!(
                    "{who}: in_channels is {attr_in} but input '{}' has {ch0} channels",
                    op.inputs[0]
                );
            }
            Ok(())
        };
        let (kind, rows, channels) = match op.op.as_str() {
            "linear" => {
                let (i, o) = (
                    cx.usize_attr("in_channels")?,
                    cx.usize_attr("out_channels")?,
                );
                check_in(i)?;
                let w = cx.mat("weight", o, i)?;
                let b = cx
                    .opt_param("bias", &[o], "[out_channels]")?
                    .unwrap_or(vec![0.0; o]);
                (OpKind::Linear { w, b }, rows0, o)
            }
            "batch_norm" => {
                let c = match cx.attr("channels") {
                    Some(_) => cx.usize_attr("channels")?,
                    None => ch0,
                };
                if c != ch0 {
                    bail!(
                        "{who}: channels is {c} but input '{}' has {ch0} channels",
                        op.inputs[0]
                    );
                }
                let eps = cx.f64_attr("eps", 1e-5)?;
                let gamma = cx
                    .opt_param("weight", &[c], "[channels]")?
                    .unwrap_or(vec![1.0; c]);
                let beta = cx
                    .opt_param("bias", &[c], "[channels]")?
                    .unwrap_or(vec![0.0; c]);
                let mean = cx.param("running_mean", &[c], "[channels]")?;
                let var = cx.param("running_var", &[c], "[channels]")?;
                if let Some(k) = var.iter().position(|&v| v + eps <= 0.0) {
                    bail!("{who}: running_var[{k}] + eps is not positive");
                }
                (
                    OpKind::BatchNorm {
                        gamma,
                        beta,
                        mean,
                        var,
                        eps,
                    },
                    rows0,
                    c,
                )
            }
            "relu" => (OpKind::Relu, rows0, ch0),
            "leaky_relu" => {
                let slope = cx.f64_attr("negative_slope", 0.01)?;
                if slope < 0.0 {
                    bail!("{who}: negative_slope {slope} < 0 is not supported");
                }
                (OpKind::LeakyRelu { slope }, rows0, ch0)
            }
            "dropout" | "identity" => (OpKind::Identity, rows0, ch0),
            "softmax" | "log_softmax" => (
                OpKind::Softmax {
                    log: cx.op.op == "log_softmax",
                },
                rows0,
                ch0,
            ),
            "elu" => (
                OpKind::Elu {
                    alpha: cx.f64_attr("alpha", 1.0)?,
                },
                rows0,
                ch0,
            ),
            "gcn_conv" => {
                need_node("gcn_conv")?;
                let (i, o) = (
                    cx.usize_attr("in_channels")?,
                    cx.usize_attr("out_channels")?,
                );
                check_in(i)?;
                let w = cx.mat("weight", o, i)?;
                let b = cx
                    .opt_param("bias", &[o], "[out_channels]")?
                    .unwrap_or(vec![0.0; o]);
                (
                    OpKind::Gcn {
                        w,
                        b,
                        improved: cx.bool_attr("improved", false)?,
                        add_self_loops: cx.bool_attr("add_self_loops", true)?,
                        normalize: cx.bool_attr("normalize", true)?,
                        edge_weight: cx.bool_attr("edge_weight", false)?,
                    },
                    Rows::Node,
                    o,
                )
            }
            "sage_conv" => {
                need_node("sage_conv")?;
                let (i, o) = (
                    cx.usize_attr("in_channels")?,
                    cx.usize_attr("out_channels")?,
                );
                check_in(i)?;
                let aggr = match cx.attr("aggr").map(|v| v.as_str()) {
                    None | Some(Some("mean")) => Aggr::Mean,
                    Some(Some("sum")) | Some(Some("add")) => Aggr::Sum,
                    Some(Some("max")) => Aggr::Max,
                    Some(other) => bail!("{who}: aggr {other:?} is not mean, max or sum"),
                };
                let root = cx.bool_attr("root_weight", true)?;
                if cx.bool_attr("project", false)? {
                    bail!("{who}: project=True is not supported");
                }
                let wl = cx.mat("weight_l", o, i)?;
                let b = cx
                    .opt_param("bias_l", &[o], "[out_channels]")?
                    .unwrap_or(vec![0.0; o]);
                let wr = if root {
                    Some(cx.mat("weight_r", o, i)?)
                } else {
                    None
                };
                (
                    OpKind::Sage {
                        wl,
                        b,
                        wr,
                        aggr,
                        normalize: cx.bool_attr("normalize", false)?,
                    },
                    Rows::Node,
                    o,
                )
            }
            "gin_aggregate" => {
                need_node("gin_aggregate")?;
                (
                    OpKind::Gin {
                        eps: cx.f64_attr("eps", 0.0)?,
                    },
                    Rows::Node,
                    ch0,
                )
            }
            p @ ("global_add_pool" | "global_mean_pool" | "global_max_pool") => {
                need_node(p)?;
                let k = match p {
                    "global_add_pool" => PoolKind::Add,
                    "global_mean_pool" => PoolKind::Mean,
                    _ => PoolKind::Max,
                };
                (OpKind::Pool(k), Rows::Graph, ch0)
            }
            "add" => {
                if ins[0] != ins[1] {
                    bail!(
                        "{who}: inputs '{}' {:?} and '{}' {:?} differ in row kind or channels",
                        op.inputs[0],
                        ins[0],
                        op.inputs[1],
                        ins[1]
                    );
                }
                (OpKind::Add, rows0, ch0)
            }
            "concat" => {
                if let Some(k) = ins.iter().position(|s| s.0 != rows0) {
                    bail!(
                        "{who}: input '{}' is not of the same row kind as '{}'",
                        op.inputs[k],
                        op.inputs[0]
                    );
                }
                (OpKind::Concat, rows0, ins.iter().map(|s| s.1).sum())
            }
            t @ ("gat_conv" | "gatv2_conv") => {
                need_node(t)?;
                let v2 = t == "gatv2_conv";
                let (i, c) = (
                    cx.usize_attr("in_channels")?,
                    cx.usize_attr("out_channels")?,
                );
                check_in(i)?;
                let heads = match cx.attr("heads") {
                    Some(_) => cx.usize_attr("heads")?,
                    None => 1,
                };
                if heads == 0 || heads > 255 {
                    bail!("{who}: heads {heads} is not in 1..=255");
                }
                let edge_dim = match cx.attr("edge_dim") {
                    None => None,
                    Some(_) => {
                        let d = cx.usize_attr("edge_dim")?;
                        let Some(ei) = &raw.edge_input else {
                            bail!("{who}: edge_dim is set but the spec has no 'edge_input'");
                        };
                        if d != ei.channels {
                            bail!(
                                "{who}: edge_dim is {d} but the edge input '{}' has {} channels",
                                ei.name,
                                ei.channels
                            );
                        }
                        match cx.attr("fill_value").map(|v| v.as_str()) {
                            None | Some(Some("mean")) => {}
                            Some(other) => {
                                bail!("{who}: fill_value {other:?} is not supported (only 'mean')")
                            }
                        }
                        Some(d)
                    }
                };
                if cx.bool_attr("residual", false)? {
                    bail!("{who}: residual=True is not supported yet");
                }
                let negative_slope = cx.f64_attr("negative_slope", 0.2)?;
                if negative_slope < 0.0 {
                    bail!("{who}: negative_slope {negative_slope} < 0 is not supported");
                }
                let concat = cx.bool_attr("concat", true)?;
                let hc = heads * c;
                let out = if concat { hc } else { c };
                let vec_of = |role: &str| cx.param(role, &[hc], "[heads · out_channels]");
                let opt_vec = |role: &str| -> Result<Vec<f64>> {
                    Ok(cx
                        .opt_param(role, &[hc], "[heads · out_channels]")?
                        .unwrap_or(vec![0.0; hc]))
                };
                let bias = cx
                    .opt_param(
                        "bias",
                        &[out],
                        "[heads · out_channels] with concat, else [out_channels]",
                    )?
                    .unwrap_or(vec![0.0; out]);
                let g = if v2 {
                    let w = cx.mat("weight_l", hc, i)?;
                    let wr = if cx.bool_attr("share_weights", false)? {
                        w.clone()
                    } else {
                        cx.mat("weight_r", hc, i)?
                    };
                    let bl = opt_vec("bias_l")?;
                    let br = if cx.bool_attr("share_weights", false)? {
                        bl.clone()
                    } else {
                        opt_vec("bias_r")?
                    };
                    GatSpec {
                        v2,
                        heads,
                        per_head: c,
                        concat,
                        negative_slope,
                        add_self_loops: cx.bool_attr("add_self_loops", true)?,
                        w,
                        bl,
                        wr: Some(wr),
                        br,
                        att_src: vec_of("att")?,
                        att_dst: vec![],
                        bias,
                        // GATv2: lin_edge(e) is added per channel (no att_edge).
                        edge: match edge_dim {
                            Some(d) => Some((cx.mat("lin_edge_weight", hc, d)?, vec![])),
                            None => None,
                        },
                    }
                } else {
                    GatSpec {
                        v2,
                        heads,
                        per_head: c,
                        concat,
                        negative_slope,
                        add_self_loops: cx.bool_attr("add_self_loops", true)?,
                        w: cx.mat("weight", hc, i)?,
                        bl: vec![0.0; hc],
                        wr: None,
                        br: vec![0.0; hc],
                        att_src: vec_of("att_src")?,
                        att_dst: vec_of("att_dst")?,
                        bias,
                        edge: match edge_dim {
                            Some(d) => {
                                Some((cx.mat("lin_edge_weight", hc, d)?, vec_of("att_edge")?))
                            }
                            None => None,
                        },
                    }
                };
                (OpKind::Gat(Box::new(g)), Rows::Node, out)
            }
            t @ ("appnp" | "sg_conv") => {
                need_node(t)?;
                let k = cx.usize_attr("K")?;
                if k > 255 {
                    bail!("{who}: K = {k} is above 255");
                }
                let (w, b, alpha, channels) = if t == "sg_conv" {
                    let (i, o) = (
                        cx.usize_attr("in_channels")?,
                        cx.usize_attr("out_channels")?,
                    );
                    check_in(i)?;
                    let w = cx.mat("weight", o, i)?;
                    let b = cx
                        .opt_param("bias", &[o], "[out_channels]")?
                        .unwrap_or(vec![0.0; o]);
                    (Some(w), b, 0.0, o)
                } else {
                    if cx.attr("alpha").is_none() {
                        bail!("{who}: attribute 'alpha' is missing");
                    }
                    let alpha = cx.f64_attr("alpha", 0.0)?;
                    if !(0.0..=1.0).contains(&alpha) {
                        bail!("{who}: alpha {alpha} is not in [0, 1]");
                    }
                    (None, vec![0.0; ch0], alpha, ch0)
                };
                (
                    OpKind::Propagate(Box::new(PropSpec {
                        k,
                        alpha,
                        w,
                        w0: None,
                        hops: vec![],
                        b,
                        improved: false,
                        add_self_loops: cx.bool_attr("add_self_loops", true)?,
                        normalize: cx.bool_attr("normalize", true)?,
                        edge_weight: cx.bool_attr("edge_weight", false)?,
                    })),
                    Rows::Node,
                    channels,
                )
            }
            "gcn2_conv" => {
                need_node("gcn2_conv")?;
                let c = cx.usize_attr("channels")?;
                check_in(c)?;
                if ins[1] != (Rows::Node, c) {
                    bail!(
                        "{who}: x_0 input '{}' is {:?}, expected node-level with {c} channels",
                        op.inputs[1],
                        ins[1]
                    );
                }
                let alpha = cx.f64_attr("alpha", f64::NAN)?;
                let beta = cx.f64_attr("beta", f64::NAN)?;
                if !(0.0..=1.0).contains(&alpha) || beta.is_nan() {
                    bail!("{who}: attributes 'alpha' (in [0, 1]) and 'beta' are required");
                }
                let shared = cx.bool_attr("shared_weights", true)?;
                // out = z·((1 − β)·I + β·W): as a [out, in] matrix, ((1 − β)·I + β·W)ᵀ.
                let fold = |role: &str| -> Result<Mat> {
                    let w = cx.mat(role, c, c)?;
                    let mut m = Mat {
                        rows: c,
                        cols: c,
                        data: vec![0.0; c * c],
                    };
                    for o in 0..c {
                        for i in 0..c {
                            let eye = if o == i { 1.0 - beta } else { 0.0 };
                            m.data[o * c + i] = eye + beta * w.data[i * c + o];
                        }
                    }
                    Ok(m)
                };
                let w1 = fold("weight1")?;
                let w2 = if shared { w1.clone() } else { fold("weight2")? };
                (
                    OpKind::Propagate(Box::new(PropSpec {
                        k: 1,
                        alpha,
                        w: Some(w1),
                        w0: Some(w2),
                        hops: vec![],
                        b: vec![0.0; c],
                        improved: false,
                        add_self_loops: cx.bool_attr("add_self_loops", true)?,
                        normalize: cx.bool_attr("normalize", true)?,
                        edge_weight: cx.bool_attr("edge_weight", false)?,
                    })),
                    Rows::Node,
                    c,
                )
            }
            "gine_conv" => {
                need_node("gine_conv")?;
                let Some(ei) = &raw.edge_input else {
                    bail!("{who}: reads edge features but the spec has no 'edge_input'");
                };
                let c = ch0;
                if cx.attr("in_channels").is_some() {
                    check_in(cx.usize_attr("in_channels")?)?;
                }
                let lin = match cx.attr("edge_dim") {
                    Some(_) => {
                        let d = cx.usize_attr("edge_dim")?;
                        if d != ei.channels {
                            bail!(
                                "{who}: edge_dim is {d} but the edge input '{}' has {} channels",
                                ei.name,
                                ei.channels
                            );
                        }
                        let w = cx.mat("lin_weight", c, d)?;
                        let b = cx
                            .opt_param("lin_bias", &[c], "[in_channels]")?
                            .unwrap_or(vec![0.0; c]);
                        Some((w, b))
                    }
                    None => {
                        if ei.channels != c {
                            bail!(
                                "{who}: without edge_dim the edge input '{}' must have the node channels {c}, it has {}",
                                ei.name,
                                ei.channels
                            );
                        }
                        None
                    }
                };
                (
                    OpKind::Gine {
                        eps: cx.f64_attr("eps", 0.0)?,
                        lin,
                    },
                    Rows::Node,
                    c,
                )
            }
            "tag_conv" => {
                need_node("tag_conv")?;
                let (i, o) = (
                    cx.usize_attr("in_channels")?,
                    cx.usize_attr("out_channels")?,
                );
                check_in(i)?;
                let k = cx.usize_attr("K")?;
                if k > 255 {
                    bail!("{who}: K = {k} is above 255");
                }
                let hops = (0..=k)
                    .map(|h| cx.mat(&format!("weight_{h}"), o, i))
                    .collect::<Result<Vec<_>>>()?;
                let b = cx
                    .opt_param("bias", &[o], "[out_channels]")?
                    .unwrap_or(vec![0.0; o]);
                (
                    OpKind::Propagate(Box::new(PropSpec {
                        k,
                        alpha: 0.0,
                        w: None,
                        w0: None,
                        hops,
                        b,
                        improved: false,
                        // PyG's TAGConv normalises without self-loops.
                        add_self_loops: false,
                        normalize: cx.bool_attr("normalize", true)?,
                        edge_weight: cx.bool_attr("edge_weight", false)?,
                    })),
                    Rows::Node,
                    o,
                )
            }
            t @ ("edge_conv" | "dynamic_edge_conv") => {
                need_node(t)?;
                let i = cx.usize_attr("in_channels")?;
                check_in(i)?;
                let k = if t == "dynamic_edge_conv" {
                    let k = cx.usize_attr("k")?;
                    if k == 0 || k > u16::MAX as usize {
                        bail!("{who}: k = {k} is not in 1..=65535");
                    }
                    k
                } else {
                    0
                };
                let aggr = match cx.attr("aggr").map(|v| v.as_str()) {
                    None | Some(Some("max")) => Aggr::Max,
                    Some(Some("mean")) => Aggr::Mean,
                    Some(Some("sum")) | Some(Some("add")) => Aggr::Sum,
                    Some(other) => bail!("{who}: aggr {other:?} is not max, mean or sum"),
                };
                let e = parse_nn(&cx, i, k, aggr)?;
                let out = e.w2.as_ref().map_or(e.w1.rows, |m| m.rows);
                (OpKind::EdgeConv(Box::new(e)), Rows::Node, out)
            }
            t @ ("inner_product" | "pair_hadamard" | "pair_concat") => {
                need_node(t)?;
                match t {
                    "inner_product" => (OpKind::InnerProduct, Rows::Pair, 1),
                    "pair_hadamard" => (OpKind::PairHadamard, Rows::Pair, ch0),
                    _ => (OpKind::PairConcat, Rows::Pair, 2 * ch0),
                }
            }
            _ => unreachable!("checked against SUPPORTED_OPS"),
        };
        if channels == 0 {
            bail!("{who}: has 0 output channels");
        }
        shapes.insert(op.name.clone(), (rows, channels));
        ops.push(SpecOp {
            name: op.name.clone(),
            inputs: op.inputs.clone(),
            kind,
            channels,
            rows,
        });
    }
    if raw.outputs.is_empty() {
        bail!("spec has no outputs");
    }
    for o in &raw.outputs {
        let (rows, _) = shapes
            .get(o)
            .ok_or_else(|| anyhow!("spec output '{o}' is not the input or an op"))?;
        let want = match task {
            Task::Node => Rows::Node,
            Task::Graph => Rows::Graph,
            Task::Link => Rows::Pair,
        };
        if *rows != want {
            bail!("spec output '{o}' is {rows:?}-level but the task is {task:?}");
        }
    }
    if let Some(ei) = &raw.edge_input {
        if ei.channels == 0 || shapes.contains_key(&ei.name) {
            bail!(
                "spec edge input '{}' has 0 channels or reuses a tensor name",
                ei.name
            );
        }
    }
    Ok(Spec {
        task,
        input: raw.input.name,
        in_channels: raw.input.channels,
        edge_input: raw.edge_input.map(|e| (e.name, e.channels)),
        ops,
        outputs: raw.outputs,
    })
}

/// Reads and normalises the `nn` of an EdgeConv: `attrs.nn` is the list of its
/// layers (`linear` with `in_channels`/`out_channels`, `batch_norm` with
/// `eps`, `relu`, `leaky_relu` with `negative_slope`, `dropout`, `identity`),
/// their parameters are the roles `nn.<index>.<name>` (`weight`, `bias`,
/// `running_mean`, `running_var`). The shape must be
/// `linear [batch_norm] [act] [linear [batch_norm] [act]]`.
fn parse_nn(cx: &Ctx<'_>, in_ch: usize, k: usize, aggr: Aggr) -> Result<EdgeConvSpec> {
    let who = cx.who();
    let layers = cx
        .attr("nn")
        .and_then(|v| v.as_array())
        .ok_or_else(|| anyhow!("{who}: attribute 'nn' (the list of the nn's layers) is missing"))?;
    // (w, b, act) of each Linear, in order.
    let mut lins: Vec<(Mat, Vec<f64>, NnAct)> = Vec::new();
    let mut width = 2 * in_ch;
    for (idx, l) in layers.iter().enumerate() {
        let op = l.get("op").and_then(|v| v.as_str()).unwrap_or("");
        let num = |key: &str| -> Result<usize> {
            l.get(key)
                .and_then(|v| v.as_u64())
                .map(|v| v as usize)
                .ok_or_else(|| anyhow!("{who}: nn layer {idx} ({op}) needs integer '{key}'"))
        };
        let role = |name: &str| format!("nn.{idx}.{name}");
        let last_act_free =
            |lins: &Vec<(Mat, Vec<f64>, NnAct)>| lins.last().is_some_and(|l| l.2 == NnAct::None);
        match op {
            "linear" => {
                let (i, o) = (num("in_channels")?, num("out_channels")?);
                if i != width {
                    bail!("{who}: nn layer {idx} (linear) has in_channels {i}, expected {width}");
                }
                if lins.len() == 2 {
                    bail!("{who}: nn has more than two linear layers (not supported)");
                }
                if !lins.is_empty() && lins.last().is_some_and(|l| l.2 == NnAct::None) {
                    bail!("{who}: nn layer {idx}: two linear layers without an activation between them are not supported");
                }
                let w = cx.mat(&role("weight"), o, i)?;
                let b = cx
                    .opt_param(&role("bias"), &[o], "[out_channels]")?
                    .unwrap_or(vec![0.0; o]);
                lins.push((w, b, NnAct::None));
                width = o;
            }
            "batch_norm" => {
                if !last_act_free(&lins) {
                    bail!("{who}: nn layer {idx} (batch_norm) must directly follow a linear layer");
                }
                let c = width;
                let eps = l.get("eps").and_then(|v| v.as_f64()).unwrap_or(1e-5);
                let gamma = cx
                    .opt_param(&role("weight"), &[c], "[channels]")?
                    .unwrap_or(vec![1.0; c]);
                let beta = cx
                    .opt_param(&role("bias"), &[c], "[channels]")?
                    .unwrap_or(vec![0.0; c]);
                let mean = cx.param(&role("running_mean"), &[c], "[channels]")?;
                let var = cx.param(&role("running_var"), &[c], "[channels]")?;
                let (w, b, _) = lins.last_mut().ok_or_else(|| anyhow!("{who}: unreachable"))?;
                for ch in 0..c {
                    if var[ch] + eps <= 0.0 {
                        bail!("{who}: nn layer {idx}: running_var[{ch}] + eps is not positive");
                    }
                    let a = gamma[ch] / (var[ch] + eps).sqrt();
                    let cols = w.cols;
                    w.data[ch * cols..(ch + 1) * cols]
                        .iter_mut()
                        .for_each(|v| *v *= a);
                    b[ch] = a * b[ch] + beta[ch] - a * mean[ch];
                }
            }
            "relu" | "leaky_relu" => {
                if !last_act_free(&lins) {
                    bail!("{who}: nn layer {idx} ({op}) must follow a linear (or batch_norm) layer");
                }
                let act = if op == "relu" {
                    NnAct::Relu
                } else {
                    let s = l.get("negative_slope").and_then(|v| v.as_f64()).unwrap_or(0.01);
                    if !(s >= 0.0 && s.is_finite()) {
                        bail!("{who}: nn layer {idx}: negative_slope {s} is not supported");
                    }
                    NnAct::Leaky(s)
                };
                if let Some(last) = lins.last_mut() {
                    last.2 = act;
                }
            }
            "dropout" | "identity" => {}
            other => bail!("{who}: nn layer {idx} ('{other}') is not supported (linear, batch_norm, relu, leaky_relu, dropout, identity)"),
        }
    }
    let mut it = lins.into_iter();
    let (w1, b1, act1) = it
        .next()
        .ok_or_else(|| anyhow!("{who}: nn has no linear layer"))?;
    let (w2, b2, act2) = match it.next() {
        Some((w, b, a)) => (Some(w), b, a),
        None => (None, vec![], NnAct::None),
    };
    Ok(EdgeConvSpec {
        k,
        aggr,
        w1,
        b1,
        act1,
        w2,
        b2,
        act2,
    })
}
