//! What every host op family uses: float matrices and tensors, the row kind
//! of a tensor, fused activations, folded BatchNorm, GCN's normalised edge
//! list, and [`Parse`], the checked view of one spec op's attributes and
//! parameters.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Result};
use serde_json::{Map, Value};

use crate::st::{Arr, Graphs};

/// Whether a tensor has one row per node, per graph or per node pair.
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

    /// Rows `keep`, in that order (`None` if one is out of range).
    pub fn take_rows(&self, keep: &[usize]) -> Option<Mat> {
        let mut data = Vec::with_capacity(keep.len() * self.cols);
        for &r in keep {
            data.extend_from_slice(self.data.get(r * self.cols..(r + 1) * self.cols)?);
        }
        Some(Mat {
            rows: keep.len(),
            cols: self.cols,
            data,
        })
    }

    /// The columns reordered: new column `j` is old column `perm[j]` (`None`
    /// unless `perm` has one entry per column, each in range).
    pub fn permute_cols(&self, perm: &[usize]) -> Option<Mat> {
        if perm.len() != self.cols || perm.iter().any(|&c| c >= self.cols) {
            return None;
        }
        let data = (0..self.rows)
            .flat_map(|r| perm.iter().map(move |&c| (r, c)))
            .map(|(r, c)| self.data[r * self.cols + c])
            .collect();
        Some(Mat { data, ..*self })
    }
}

/// `v[keep[0]], v[keep[1]], …` (`None` if an index is out of range).
pub fn take<T: Copy>(v: &[T], keep: &[usize]) -> Option<Vec<T>> {
    keep.iter().map(|&i| v.get(i).copied()).collect()
}

/// Neighbourhood aggregation (SAGEConv, EdgeConv).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggr {
    /// Sum.
    Sum,
    /// Mean.
    Mean,
    /// Max.
    Max,
}

impl Aggr {
    /// The device's aggregation.
    pub fn device(self) -> tinygnn::format::Aggr {
        match self {
            Aggr::Sum => tinygnn::format::Aggr::Sum,
            Aggr::Mean => tinygnn::format::Aggr::Mean,
            Aggr::Max => tinygnn::format::Aggr::Max,
        }
    }
}

/// An activation fused into (or standing after) an op, or inside an
/// EdgeConv's `nn`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    /// None.
    None,
    /// ReLU.
    Relu,
    /// LeakyReLU with this slope.
    Leaky(f64),
}

impl Act {
    /// Applies the activation.
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Act::None => x,
            Act::Relu => x.max(0.0),
            Act::Leaky(s) => {
                if x < 0.0 {
                    x * s
                } else {
                    x
                }
            }
        }
    }

    /// The device's activation (slope in Q16).
    pub fn device(self) -> tinygnn::format::Activation {
        use tinygnn::format::Activation;
        match self {
            Act::None => Activation::None,
            Act::Relu => Activation::Relu,
            Act::Leaky(s) => Activation::LeakyRelu {
                alpha_q16: (s * 65536.0).round() as i32,
            },
        }
    }
}

/// An eval-mode BatchNorm `y = (z − μ)/√(σ²+ε)·γ + β`.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNorm {
    /// γ.
    pub gamma: Vec<f64>,
    /// β.
    pub beta: Vec<f64>,
    /// Running mean.
    pub mean: Vec<f64>,
    /// Running variance.
    pub var: Vec<f64>,
    /// ε.
    pub eps: f64,
}

impl BatchNorm {
    /// Folds the norm into the weights and bias producing `z`: row `c` of each
    /// matrix and `b[c]` are scaled by `a = γ/√(σ²+ε)`, then `b[c] += β − a·μ`.
    pub fn fold(&self, mats: &mut [&mut Mat], b: &mut [f64]) {
        for c in 0..b.len() {
            let a = self.gamma[c] / (self.var[c] + self.eps).sqrt();
            for m in mats.iter_mut() {
                let cols = m.cols;
                m.data[c * cols..(c + 1) * cols]
                    .iter_mut()
                    .for_each(|v| *v *= a);
            }
            b[c] = a * b[c] + self.beta[c] - a * self.mean[c];
        }
    }
}

/// A calibrated real range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// Low end.
    pub lo: f64,
    /// High end.
    pub hi: f64,
}

/// Per-tensor asymmetric int8 parameters for a real range (widened to include 0).
pub fn activation_quant(r: Range) -> (f32, i8) {
    quant_levels(r, -128, 127)
}

/// Per-tensor asymmetric int4 parameters for a real range (widened to
/// include 0): 16 levels, zero point in −8..=7 (int4 activations,
/// `convert --activations int4`).
pub fn activation_quant4(r: Range) -> (f32, i8) {
    quant_levels(r, -8, 7)
}

/// Scale and zero point mapping `r` (widened to include 0) onto
/// `qmin..=qmax`: `scale = (hi − lo) / (qmax − qmin)` (`1 / (qmax − qmin)`
/// for an empty or degenerate range), `zp = round(qmin − lo / scale)`.
fn quant_levels(r: Range, qmin: i8, qmax: i8) -> (f32, i8) {
    let levels = f64::from(qmax) - f64::from(qmin);
    let lo = r.lo.min(0.0);
    let hi = r.hi.max(0.0);
    let mut scale = ((hi - lo) / levels) as f32;
    if !scale.is_finite() || scale < f32::MIN_POSITIVE * 256.0 {
        scale = 1.0 / levels as f32;
    }
    let zp = (f64::from(qmin) - lo / scale as f64)
        .round()
        .clamp(f64::from(qmin), f64::from(qmax)) as i8;
    (scale, zp)
}

/// `round(x / scale) + zp`, saturated (host-side quantization).
pub fn quantize_value(x: f64, scale: f32, zp: i8) -> i8 {
    ((x / scale as f64).round() + zp as f64).clamp(-128.0, 127.0) as i8
}

/// `scale · (q − zp)`.
pub fn dequantize_value(q: i8, scale: f32, zp: i8) -> f64 {
    scale as f64 * (q as i32 - zp as i32) as f64
}

/// A float tensor `[rows, channels]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Rows (nodes, graphs, pairs or edges).
    pub rows: usize,
    /// Channels.
    pub channels: usize,
    /// Row-major values.
    pub data: Vec<f64>,
}

impl Tensor {
    /// Row `r`.
    pub fn row(&self, r: usize) -> &[f64] {
        &self.data[r * self.channels..(r + 1) * self.channels]
    }

    /// All zeros.
    pub fn zeros(rows: usize, channels: usize) -> Tensor {
        Tensor {
            rows,
            channels,
            data: vec![0.0; rows * channels],
        }
    }

    /// `f` applied to every value.
    pub fn map(&self, f: impl Fn(f64) -> f64) -> Tensor {
        Tensor {
            data: self.data.iter().map(|&v| f(v)).collect(),
            ..self.clone()
        }
    }
}

/// Tensors by spec name (one run of the reference, or the calibration values).
pub type Values = HashMap<String, Tensor>;

/// `x Wᵀ (+ b)`.
pub fn linear(x: &Tensor, w: &Mat, b: Option<&[f64]>) -> Tensor {
    let mut out = Tensor::zeros(x.rows, w.rows);
    for r in 0..x.rows {
        let xr = x.row(r);
        for c in 0..w.rows {
            let wr = w.row(c);
            let mut acc = b.map_or(0.0, |b| b[c]);
            for k in 0..w.cols {
                acc += wr[k] * xr[k];
            }
            out.data[r * w.rows + c] = acc;
        }
    }
    out
}

/// GCN's propagation options: PyG's `gcn_norm` flags and whether the graph's
/// edge weights are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Norm {
    /// Fill self-loops with 2.
    pub improved: bool,
    /// Add remaining self-loops.
    pub add_self_loops: bool,
    /// Symmetric normalisation.
    pub normalize: bool,
    /// Use the graph's edge weights.
    pub edge_weight: bool,
}

impl Norm {
    /// The flags as the device runs them: PyG ignores `improved` without edge
    /// weights (see [`gcn_edges`]) and adds self-loops only inside `gcn_norm`,
    /// i.e. when normalizing.
    pub fn for_device(self) -> Norm {
        Norm {
            improved: self.improved && self.edge_weight,
            add_self_loops: self.add_self_loops && self.normalize,
            ..self
        }
    }

    /// Reads `add_self_loops` (default `loops`), `normalize` and `edge_weight`;
    /// `improved` is false.
    pub fn parse(cx: &Parse<'_>, loops: bool) -> Result<Norm> {
        Ok(Norm {
            improved: false,
            add_self_loops: cx.bool_attr("add_self_loops", loops)?,
            normalize: cx.bool_attr("normalize", true)?,
            edge_weight: cx.bool_attr("edge_weight", false)?,
        })
    }
}

/// `Â·x` with GCN's coefficients ([`gcn_edges`]); edges naming a row outside
/// `x` are skipped.
pub fn propagate_once(x: &Tensor, edges: &[(usize, usize, f64)]) -> Tensor {
    let ch = x.channels;
    let mut out = Tensor::zeros(x.rows, ch);
    for &(s, t, coef) in edges {
        if s >= x.rows || t >= x.rows {
            continue;
        }
        for k in 0..ch {
            out.data[t * ch + k] += coef * x.data[s * ch + k];
        }
    }
    out
}

/// The edge list and coefficients `(source, target, coef)` GCNConv propagates
/// over: when `normalize`, `gcn_norm` with `add_remaining_self_loops` (if
/// `add_self_loops`): input loops `i→i` are removed and every node gets one
/// loop with the weight of its last input loop, or the fill value (1, or 2 if
/// `improved` — which, as in PyG 2.8.1, only acts when edge weights are
/// used); `deg_i = Σ_{j→i} w_ji`; `coef = deg_j^-½ w_ji deg_i^-½` with
/// `0^-½ = 0`. Without `normalize` no loops are added and `coef = w`.
pub fn gcn_edges(g: &Graphs, norm: Norm) -> Vec<(usize, usize, f64)> {
    let n = g.num_nodes;
    let w = |e: usize| match (&g.edge_weight, norm.edge_weight) {
        (Some(ws), true) => ws[e] as f64,
        _ => 1.0,
    };
    let mut edges: Vec<(usize, usize, f64)> = Vec::with_capacity(g.num_edges() + n);
    if !norm.normalize {
        for e in 0..g.num_edges() {
            edges.push((g.sources[e] as usize, g.targets[e] as usize, w(e)));
        }
        return edges;
    }
    if norm.add_self_loops {
        // PyG 2.8.1 `add_remaining_self_loops` ignores `fill_value` when there is no edge
        // weight (the loops then get weight 1 like every edge): `improved` only acts with weights.
        let weighted = norm.edge_weight && g.edge_weight.is_some();
        let fill = if norm.improved && weighted { 2.0 } else { 1.0 };
        let mut loops = vec![fill; n];
        for e in 0..g.num_edges() {
            let (s, t) = (g.sources[e] as usize, g.targets[e] as usize);
            if s == t {
                loops[s] = w(e);
            } else {
                edges.push((s, t, w(e)));
            }
        }
        for (i, &lw) in loops.iter().enumerate() {
            edges.push((i, i, lw));
        }
    } else {
        for e in 0..g.num_edges() {
            edges.push((g.sources[e] as usize, g.targets[e] as usize, w(e)));
        }
    }
    let mut deg = vec![0.0f64; n];
    for &(_, t, w) in &edges {
        deg[t] += w;
    }
    let dinv: Vec<f64> = deg
        .iter()
        .map(|&d| {
            let v = d.powf(-0.5);
            if v.is_infinite() {
                0.0
            } else {
                v
            }
        })
        .collect();
    for e in &mut edges {
        e.2 *= dinv[e.0] * dinv[e.1];
    }
    edges
}

/// One spec op as its family's parser sees it: its attributes and parameter
/// roles (checked against the model file's tensors), the shapes of its
/// inputs and the spec's edge input. Every error names the op.
pub struct Parse<'a> {
    /// The op's name.
    pub name: &'a str,
    /// Its spec type (`gcn_conv`, …).
    pub ty: &'a str,
    /// Input tensor names.
    pub inputs: &'a [String],
    /// Row kind and channels of every input.
    pub ins: &'a [(Rows, usize)],
    /// The spec's edge-feature input (name, channels), if any.
    pub edge_input: Option<(&'a str, usize)>,
    /// `attrs`.
    pub attrs: &'a Map<String, Value>,
    /// `params`: role → tensor name.
    pub params: &'a HashMap<String, String>,
    /// The model file's tensors.
    pub tensors: &'a HashMap<String, Arr>,
}

impl Parse<'_> {
    /// `op 'NAME' (TYPE)`, the prefix of every error.
    pub fn who(&self) -> String {
        format!("op '{}' ({})", self.name, self.ty)
    }

    /// Rows of the first input.
    pub fn rows(&self) -> Rows {
        self.ins[0].0
    }

    /// Channels of the first input.
    pub fn channels(&self) -> usize {
        self.ins[0].1
    }

    /// Errors unless the first input is node-level.
    pub fn need_node(&self) -> Result<()> {
        if self.rows() != Rows::Node {
            bail!(
                "{}: {} needs node-level input, but '{}' is graph-level (after pooling)",
                self.who(),
                self.ty,
                self.inputs[0]
            );
        }
        Ok(())
    }

    /// Errors unless `attr_in` (the `in_channels` attribute) is the first input's channels.
    pub fn check_in(&self, attr_in: usize) -> Result<()> {
        if attr_in != self.channels() {
            bail!(
                "{}: in_channels is {attr_in} but input '{}' has {} channels",
                self.who(),
                self.inputs[0],
                self.channels()
            );
        }
        Ok(())
    }

    /// `in_channels` (checked against the input) and `out_channels`.
    pub fn in_out(&self) -> Result<(usize, usize)> {
        let i = self.usize_attr("in_channels")?;
        let o = self.usize_attr("out_channels")?;
        self.check_in(i)?;
        Ok((i, o))
    }

    /// The edge input's channels, checked against `edge_dim` `d`.
    pub fn edge_dim(&self, d: usize) -> Result<usize> {
        let Some((name, channels)) = self.edge_input else {
            bail!(
                "{}: edge_dim is set but the spec has no 'edge_input'",
                self.who()
            );
        };
        if d != channels {
            bail!(
                "{}: edge_dim is {d} but the edge input '{name}' has {channels} channels",
                self.who()
            );
        }
        Ok(d)
    }

    /// An attribute (absent when null).
    pub fn attr(&self, key: &str) -> Option<&Value> {
        self.attrs.get(key).filter(|v| !v.is_null())
    }

    /// A required non-negative integer attribute.
    pub fn usize_attr(&self, key: &str) -> Result<usize> {
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

    /// An optional non-negative integer attribute.
    pub fn opt_usize_attr(&self, key: &str) -> Result<Option<usize>> {
        match self.attr(key) {
            None => Ok(None),
            Some(_) => self.usize_attr(key).map(Some),
        }
    }

    /// A boolean attribute.
    pub fn bool_attr(&self, key: &str, default: bool) -> Result<bool> {
        match self.attr(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| anyhow!("{}: attribute '{key}' = {v} is not a boolean", self.who())),
        }
    }

    /// A finite number attribute.
    pub fn f64_attr(&self, key: &str, default: f64) -> Result<f64> {
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

    /// An aggregation attribute `aggr` (`sum`/`add`, `mean`, `max`).
    pub fn aggr_attr(&self, default: Aggr) -> Result<Aggr> {
        match self.attr("aggr").map(|v| v.as_str()) {
            None => Ok(default),
            Some(Some("mean")) => Ok(Aggr::Mean),
            Some(Some("sum")) | Some(Some("add")) => Ok(Aggr::Sum),
            Some(Some("max")) => Ok(Aggr::Max),
            Some(other) => bail!("{}: aggr {other:?} is not mean, max or sum", self.who()),
        }
    }

    /// The tensor for `role`, checked to have `shape`.
    pub fn param(&self, role: &str, shape: &[usize], what: &str) -> Result<Vec<f64>> {
        self.opt_param(role, shape, what)?.ok_or_else(|| {
            anyhow!(
                "{}: parameter '{role}' is missing from 'params'",
                self.who()
            )
        })
    }

    /// The tensor for `role` if the op has it, checked to have `shape`.
    pub fn opt_param(&self, role: &str, shape: &[usize], what: &str) -> Result<Option<Vec<f64>>> {
        let Some(key) = self.params.get(role) else {
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

    /// The `[out, inp]` matrix for `role`.
    pub fn mat(&self, role: &str, out: usize, inp: usize) -> Result<Mat> {
        let data = self.param(role, &[out, inp], "[out_channels, in_channels] from attrs")?;
        Ok(Mat {
            rows: out,
            cols: inp,
            data,
        })
    }

    /// The `channels` attribute, which must equal the first input's channels
    /// (its default).
    pub fn same_channels(&self) -> Result<usize> {
        let ch0 = self.channels();
        let c = self.opt_usize_attr("channels")?.unwrap_or(ch0);
        if c != ch0 {
            bail!(
                "{}: channels is {c} but input '{}' has {ch0} channels",
                self.who(),
                self.inputs[0]
            );
        }
        Ok(c)
    }

    /// The `[n]` vector for `role`, ones when absent (a norm's scale).
    pub fn scale(&self, role: &str, n: usize, what: &str) -> Result<Vec<f64>> {
        Ok(self.opt_param(role, &[n], what)?.unwrap_or(vec![1.0; n]))
    }

    /// The `[n]` vector for `role`, zeros when absent (a bias).
    pub fn bias(&self, role: &str, n: usize, what: &str) -> Result<Vec<f64>> {
        Ok(self.opt_param(role, &[n], what)?.unwrap_or(vec![0.0; n]))
    }
}
