//! Fusion and int8 lowering of a spec to the device op list, written with
//! [`tinygnn::format::writer::ModelWriter`]. The scheme and every op's rescale
//! are described in `docs/quantization.md`.

use std::collections::HashMap;
use tinygnn::ops;

use anyhow::{anyhow, bail, Result};
use tinygnn::format::writer::{ChannelRecord, ModelWriter};
use tinygnn::format::{
    self as fmt, Activation, ConcatPart, Op, TensorDesc, TensorKind, WeightBits, AGG_FRAC_BITS,
};
use tinygnn::ops::gat;
use tinygnn::quant::quantize_multiplier;

use crate::calibrate::Range;
use crate::reference::{Tensor, Values};
use crate::spec::{Aggr, Mat, PoolKind, Rows, Spec};
use crate::st::Graphs;

pub use crate::calibrate::{activation_quant, dequantize_value, quantize_value};
pub use crate::fuse::{fold_bn, fuse, Act, FKind, FOp, Fused};

/// Largest |bias| in accumulator units that [`scale_floor`] allows (2^30:
/// a factor 2 of headroom below `i32::MAX` for the products added to it).
pub const BIAS_ACC_LIMIT: f64 = (1u64 << 30) as f64;

/// Smallest rescale `s_in·s_w/s_out` that [`scale_floor`] allows (2^-31;
/// `quantize_multiplier` returns 0 below 2^-32).
pub const MIN_RESCALE: f64 = 1.0 / (1u64 << 31) as f64;

/// The smallest weight scale channel `c` may have so that its channel record
/// stays representable: `|bias|/(s_in·s_w) ≤ 2^30` and, when the op rescales
/// to `s_out`, `s_in·s_w/s_out ≥ 2^-31`. A channel whose weights are all ~0
/// would otherwise get `s_w ≈ 0` and a bias that saturates i32 (or a rescale
/// that underflows to 0). Raising `s_w` only rounds such negligible weights to 0.
pub fn scale_floor(bias: f64, s_in: f64, s_out: Option<f64>) -> f64 {
    let mut f = bias.abs() / (s_in * BIAS_ACC_LIMIT);
    if let Some(so) = s_out {
        f = f.max(so * MIN_RESCALE / s_in);
    }
    if f.is_finite() {
        f
    } else {
        0.0
    }
}

/// Per-output-channel symmetric weight quantization. With several matrices
/// (SAGE `lin_l`/`lin_r`) a channel's scale covers all of their rows; with
/// `per_tensor` one scale covers everything. Returns the int8 matrices and the
/// scales. An all-zero channel gets scale 1.
pub fn quantize_weights(mats: &[&Mat], per_tensor: bool) -> (Vec<Vec<i8>>, Vec<f64>) {
    quantize_weights_floored(mats, per_tensor, &[])
}

/// [`quantize_weights`] with a lower bound per channel on the scale (see
/// [`scale_floor`]; missing entries are 0). With `per_tensor` the largest
/// bound applies to the shared scale.
pub fn quantize_weights_floored(
    mats: &[&Mat],
    per_tensor: bool,
    floors: &[f64],
) -> (Vec<Vec<i8>>, Vec<f64>) {
    quantize_weights_bits(mats, per_tensor, floors, WeightBits::I8)
}

/// Largest weight magnitude of a precision: 127 for int8, 7 for int4 (both
/// symmetric, so `-128` / `-8` are never written).
pub fn qmax(bits: WeightBits) -> f64 {
    match bits {
        WeightBits::I8 => 127.0,
        WeightBits::I4 => 7.0,
    }
}

/// [`quantize_weights_floored`] for int8 or int4: scales are `max|W| / qmax`
/// ([`qmax`]) and values are rounded to nearest and clamped to `±qmax`.
pub fn quantize_weights_bits(
    mats: &[&Mat],
    per_tensor: bool,
    floors: &[f64],
    bits: WeightBits,
) -> (Vec<Vec<i8>>, Vec<f64>) {
    quantize_weights_scaled(mats, per_tensor, floors, bits, bits == WeightBits::I4)
}

/// [`quantize_weights_bits`]; with `clip` the scale (per channel, or the
/// shared one) is [`mse_scale`]'s instead of max|W|/qmax.
pub fn quantize_weights_scaled(
    mats: &[&Mat],
    per_tensor: bool,
    floors: &[f64],
    bits: WeightBits,
    clip: bool,
) -> (Vec<Vec<i8>>, Vec<f64>) {
    let qm = qmax(bits);
    let rows = mats[0].rows;
    let mut scales: Vec<f64> = (0..rows)
        .map(|c| {
            mats.iter()
                .flat_map(|m| m.row(c).iter())
                .fold(0.0f64, |a, v| a.max(v.abs()))
                / qm
        })
        .collect();
    if per_tensor {
        let s = scales.iter().copied().fold(0.0, f64::max);
        scales.fill(s);
    }
    if clip {
        // Search the clipping scale that minimises the squared rounding error.
        if per_tensor {
            let all = || mats.iter().flat_map(|m| m.data.iter().copied());
            let s = mse_scale(all, scales.first().copied().unwrap_or(0.0), qm);
            scales.fill(s);
        } else {
            for (c, s) in scales.iter_mut().enumerate() {
                let row = || mats.iter().flat_map(move |m| m.row(c).iter().copied());
                *s = mse_scale(row, *s, qm);
            }
        }
    }
    for s in &mut scales {
        if s.is_nan() || *s <= 0.0 {
            *s = 1.0;
        }
    }
    for (s, &f) in scales.iter_mut().zip(floors) {
        if f.is_finite() {
            *s = s.max(f);
        }
    }
    if per_tensor {
        // The floors may differ per channel; the shared scale takes the largest.
        let s = scales.iter().copied().fold(0.0, f64::max);
        scales.fill(s);
    }
    let q = mats
        .iter()
        .map(|m| {
            (0..rows)
                .flat_map(|c| {
                    let s = scales[c];
                    m.row(c)
                        .iter()
                        .map(move |v| (v / s).round().clamp(-qm, qm) as i8)
                })
                .collect()
        })
        .collect();
    (q, scales)
}

/// A float activation matrix stored by columns (one `Vec` per input channel),
/// with each column's squared norm.
pub struct Columns {
    cols: Vec<Vec<f64>>,
    norms: Vec<f64>,
}

impl Columns {
    /// The columns of `t` (`t.rows` values each).
    pub fn of(t: &Tensor) -> Columns {
        let cols: Vec<Vec<f64>> = (0..t.channels)
            .map(|k| (0..t.rows).map(|r| t.data[r * t.channels + k]).collect())
            .collect();
        let norms = cols.iter().map(|c| c.iter().map(|v| v * v).sum()).collect();
        Columns { cols, norms }
    }
}

/// GPFQ (Lybrand & Saab, "Post-training Quantization for Neural Networks
/// with Provable Guarantees"): quantizes one weight row `w` to integers in
/// `±qm` (times `s`) in input-channel order, each choice correcting the
/// error the earlier ones left in the layer's output on the data `x`:
/// with `u` the running error `Σ_{j<t} (w_j − s·q_j)·X_j`,
/// `q_t = clamp(round(⟨X_t, u + w_t·X_t⟩ / (s·‖X_t‖²)), ±qm)`.
/// A channel with no data (`‖X_t‖ = 0`) rounds to nearest.
pub fn gpfq_row(w: &[f64], s: f64, qm: f64, x: &Columns) -> Vec<i8> {
    let rows = x.cols.first().map_or(0, Vec::len);
    let mut u = vec![0.0f64; rows];
    w.iter()
        .enumerate()
        .map(|(t, &wt)| {
            let (col, n2) = match (x.cols.get(t), x.norms.get(t)) {
                (Some(c), Some(&n)) if n > 0.0 && s > 0.0 => (c, n),
                _ => return (wt / s).round().clamp(-qm, qm) as i8,
            };
            let dot: f64 = col.iter().zip(&u).map(|(a, b)| a * b).sum();
            let q = ((dot + wt * n2) / (s * n2)).round().clamp(-qm, qm);
            let e = wt - s * q;
            for (ui, &xi) in u.iter_mut().zip(col) {
                *ui += e * xi;
            }
            q as i8
        })
        .collect()
}

/// [`gpfq_row`] for every row of `m` with its channel's scale.
pub fn gpfq_matrix(m: &Mat, scales: &[f64], qm: f64, x: &Columns) -> Vec<i8> {
    (0..m.rows)
        .flat_map(|c| gpfq_row(m.row(c), scales[c], qm, x))
        .collect()
}

/// Candidate clipping ratios of [`mse_scale`]: `1.00, 0.98, …, 0.50` of max|W|.
const CLIP_STEPS: usize = 26;

/// The scale `s = α · s_max` (α from 1 down to 0.5, see [`CLIP_STEPS`]) that
/// minimises `Σ (w − s·clamp(round(w/s), ±qmax))²` over `values`; `s_max`
/// itself (no clipping) wins ties, and is returned unchanged when it is not
/// a positive finite number.
pub fn mse_scale<I: Iterator<Item = f64>>(values: impl Fn() -> I, s_max: f64, qm: f64) -> f64 {
    if !(s_max.is_finite() && s_max > 0.0) {
        return s_max;
    }
    let err = |s: f64| {
        values()
            .map(|w| {
                let q = (w / s).round().clamp(-qm, qm);
                (w - s * q).powi(2)
            })
            .sum::<f64>()
    };
    let mut best = (err(s_max), s_max);
    for i in 1..CLIP_STEPS {
        let s = s_max * (1.0 - 0.02 * i as f64);
        let e = err(s);
        if e < best.0 {
            best = (e, s);
        }
    }
    best.1
}

fn act_of(a: Act) -> Activation {
    match a {
        Act::None => Activation::None,
        Act::Relu => Activation::Relu,
        Act::Leaky(s) => Activation::LeakyRelu {
            alpha_q16: (s * 65536.0).round() as i32,
        },
    }
}

fn q16(x: f64) -> Result<i32> {
    let v = (x * 65536.0).round();
    if v.is_nan() || v.abs() > i32::MAX as f64 {
        bail!("Q16 multiplier {x} out of range");
    }
    Ok(v as i32)
}

/// Capacity declared in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Nodes.
    pub max_nodes: u32,
    /// Edges.
    pub max_edges: u32,
    /// Graphs.
    pub max_graphs: u32,
    /// Node pairs (link prediction; 0 for a model without a pair head).
    pub max_pairs: u32,
}

/// Result of a conversion.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The `.tgnn` bytes.
    pub bytes: Vec<u8>,
    /// The fused ops, in file order (one device op each).
    pub ops: Vec<FOp>,
    /// int8 weight bytes.
    pub weight_bytes: usize,
    /// Channel-parameter bytes as written (full or compact form).
    pub param_bytes: usize,
    /// Bias bytes alone (4 per output channel).
    pub bias_bytes: usize,
    /// Precision problems found while quantizing (saturated biases, vanishing rescales).
    pub warnings: Vec<String>,
    /// Names of the fused ops given one weight scale for all channels.
    pub per_tensor_layers: Vec<String>,
    /// Every layer with weights (fused op name) and its weight precision, in file order.
    pub layer_bits: Vec<(String, WeightBits)>,
}

/// Weight precision per layer (`tinygnn convert --weights`): a default and
/// overrides by fused op name (the names `convert` and `inspect` print).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WeightPlan {
    /// Precision of every layer not named in `layers`.
    pub default: Option<WeightBits>,
    /// Per-layer precision.
    pub layers: Vec<(String, WeightBits)>,
    /// int4 scales are max|W|/7 instead of the squared-error-minimising
    /// clipped scale of [`mse_scale`] (`--int4-scale max`, for comparison).
    pub int4_max_scale: bool,
    /// int4 values by GPFQ ([`gpfq_row`]) on the layer's float input over the
    /// calibration graphs instead of round-to-nearest (`--int4-rounding gpfq`;
    /// needs the activations passed to [`convert_plan_data`]).
    pub int4_gpfq: bool,
    /// Sequential int4 rounding with error feedback (`--int4-rounding gpfq-seq`):
    /// layer by layer in file order, each int4 layer's values are chosen by
    /// [`gpfq_fb_row`] against the input the *quantized* model actually gives
    /// it on the calibration graphs (earlier layers already int4), aggregated
    /// as the layer aggregates it (GCN: `Â·X`; SAGE: `[agg(X), X]`). Needs the
    /// activations and graphs passed to [`convert_plan_graphs`].
    pub int4_feedback: bool,
    /// With [`WeightPlan::int4_feedback`]: each int4 channel's bias is shifted
    /// by the mean output error its rounding left on the calibration graphs
    /// (`--int4-bias-correction on`).
    pub int4_bias_correction: bool,
    /// With [`WeightPlan::int4_feedback`]: each int4 channel's scale is the
    /// clipping of max|W|/7 (or the `mse` one) whose feedback rounding leaves
    /// the least output error on the calibration graphs (`--int4-scale output`;
    /// per-channel scales only).
    pub int4_output_scale: bool,
    /// With [`WeightPlan::int4_feedback`]: after an int4 layer is fixed, its
    /// output range is re-calibrated with this method on the output the int4
    /// model computes (fixed weights on its quantized input) instead of the
    /// float one (`--int4-recalibrate on`; the model's outputs keep theirs).
    pub int4_recalibrate: Option<crate::calibrate::Method>,
}

impl WeightPlan {
    /// All layers in one precision.
    pub fn all(bits: WeightBits) -> Self {
        WeightPlan {
            default: Some(bits),
            ..WeightPlan::default()
        }
    }

    /// The precision of the fused op `f` (int8 unless set): a layer is named
    /// by any of the spec ops merged into it (e.g. `conv1` for `conv1 + relu`).
    pub fn bits(&self, f: &FOp) -> WeightBits {
        self.layers
            .iter()
            .rev()
            .find(|(n, _)| f.name == *n || f.merged.iter().any(|m| m == n))
            .map(|(_, b)| *b)
            .or(self.default)
            .unwrap_or(WeightBits::I8)
    }

    /// Whether any layer may be int4 (the default or a named layer).
    pub fn any_int4(&self) -> bool {
        self.default == Some(WeightBits::I4)
            || self.layers.iter().any(|(_, b)| *b == WeightBits::I4)
    }

    /// Errors if a named layer is not a layer with weights of `ops`.
    pub fn check_names(&self, ops: &[FOp]) -> Result<()> {
        for (n, _) in &self.layers {
            let named = |f: &FOp| f.name == *n || f.merged.iter().any(|m| m == n);
            if !ops.iter().any(|f| f.has_weights() && named(f)) {
                let known: Vec<&str> = ops
                    .iter()
                    .filter(|f| f.has_weights())
                    .map(layer_name)
                    .collect();
                bail!(
                    "--weights: no layer with weights named '{n}' (layers: {})",
                    known.join(", ")
                );
            }
        }
        Ok(())
    }
}

/// The name a layer with weights goes by in `--weights` and in reports: the
/// first spec op merged into it (the conv or linear itself).
pub fn layer_name(f: &FOp) -> &str {
    f.merged.first().unwrap_or(&f.name)
}

/// Parses `int8` / `int4`.
pub fn parse_bits(s: &str) -> Result<WeightBits> {
    match s {
        "int8" => Ok(WeightBits::I8),
        "int4" => Ok(WeightBits::I4),
        _ => bail!("weight precision must be int8 or int4, not '{s}'"),
    }
}

/// The name of a precision as the CLI spells it.
pub fn bits_name(b: WeightBits) -> &'static str {
    match b {
        WeightBits::I8 => "int8",
        WeightBits::I4 => "int4",
    }
}

impl std::str::FromStr for WeightPlan {
    type Err = anyhow::Error;
    /// A comma-separated list of `int8`, `int4` (the default for every layer)
    /// and `LAYER=int8|int4` entries, e.g. `int4,conv1=int8`.
    fn from_str(s: &str) -> Result<Self> {
        let mut plan = WeightPlan::default();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match item.split_once('=') {
                Some((name, b)) if !name.trim().is_empty() => plan
                    .layers
                    .push((name.trim().to_string(), parse_bits(b.trim())?)),
                Some(_) => bail!("--weights: '{item}' has no layer name before '='"),
                None => {
                    if plan.default.is_some() {
                        bail!("--weights: more than one default precision in '{s}'");
                    }
                    plan.default = Some(parse_bits(item)?);
                }
            }
        }
        if plan.default.is_none() && plan.layers.is_empty() {
            bail!("--weights: empty precision list");
        }
        Ok(plan)
    }
}

/// Reports channels whose bias saturates i32 or whose rescale underflows to 0.
fn check_records(
    who: &str,
    scales: &[f64],
    b: &[f64],
    s_in: f64,
    s_out: f64,
    normalize: bool,
    warnings: &mut Vec<String>,
) {
    for (c, (&sw, &bias)) in scales.iter().zip(b).enumerate() {
        let q = bias / (s_in * sw);
        if q.abs() > i32::MAX as f64 {
            warnings.push(format!(
                "{who}: channel {c}: bias {bias} saturates the i32 accumulator"
            ));
        }
        if !normalize && quantize_multiplier(s_in * sw / s_out).0 == 0 {
            warnings.push(format!(
                "{who}: channel {c}: rescale {:e} underflows; the channel outputs its zero point",
                s_in * sw / s_out
            ));
        }
    }
}

/// How weight scales are chosen per layer (`tinygnn convert --weight-scales`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightScales {
    /// One symmetric scale per output channel (max |W| of the row / 127).
    #[default]
    PerChannel,
    /// One symmetric scale per layer (max |W| over the layer / 127): every
    /// channel shares `mult`/`shift`, so the params are written compact.
    PerTensor,
    /// The fewest layers per-tensor that meet the size goal
    /// ([`meets_size_goal`]): layers are switched to one shared scale in
    /// ascending order of their per-channel max |W| spread ([`channel_spread`];
    /// the smaller the spread, the less a per-tensor scale costs in resolution)
    /// until the file meets the goal; per-channel throughout if it already does.
    Auto,
}

impl std::str::FromStr for WeightScales {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "per-channel" => Ok(WeightScales::PerChannel),
            "per-tensor" => Ok(WeightScales::PerTensor),
            "auto" => Ok(WeightScales::Auto),
            _ => bail!("--weight-scales must be per-channel, per-tensor or auto, not '{s}'"),
        }
    }
}

/// `max_c / min_c` of the per-channel max |W| (rows of all `mats` together),
/// over channels that are not all zero; 1 if fewer than two such channels.
pub fn channel_spread(mats: &[&Mat]) -> f64 {
    let rows = mats[0].rows;
    let maxes: Vec<f64> = (0..rows)
        .map(|c| {
            mats.iter()
                .flat_map(|m| m.row(c).iter())
                .fold(0.0f64, |a, v| a.max(v.abs()))
        })
        .filter(|&m| m > 0.0 && m.is_finite())
        .collect();
    let hi = maxes.iter().copied().fold(0.0, f64::max);
    let lo = maxes.iter().copied().fold(f64::INFINITY, f64::min);
    if maxes.len() < 2 {
        1.0
    } else {
        hi / lo
    }
}

/// The size goal: `(int8 weights + int32 biases) · 1.01 + 512` bytes.
pub fn size_goal(c: &Converted) -> f64 {
    (c.weight_bytes + c.bias_bytes) as f64 * 1.01 + 512.0
}

/// Whether the file meets [`size_goal`].
pub fn meets_size_goal(c: &Converted) -> bool {
    c.bytes.len() as f64 <= size_goal(c)
}

/// The weight matrices of a fused op that has a weight scale choice (SAGE with
/// `normalize` has none: it is always per-tensor).
fn scaled_mats(f: &FOp) -> Option<Vec<&Mat>> {
    match &f.kind {
        FKind::Linear { w, .. } | FKind::Gcn { w, .. } => Some(vec![w]),
        FKind::Sage {
            wl,
            wr,
            normalize: false,
            ..
        } => Some(std::iter::once(wl).chain(wr.as_ref()).collect()),
        FKind::Propagate(p) if !p.hops.is_empty() => Some(p.hops.iter().collect()),
        FKind::Propagate(p) => p.w.as_ref().map(|w| vec![w]),
        _ => None,
    }
}

/// Quantizes and writes the model with per-channel weight scales.
pub fn convert(spec: &Spec, ranges: &HashMap<String, Range>, cap: Capacity) -> Result<Converted> {
    convert_with(spec, ranges, cap, WeightScales::PerChannel)
}

/// Quantizes and writes the model with int8 weights, choosing weight scales by `mode`.
pub fn convert_with(
    spec: &Spec,
    ranges: &HashMap<String, Range>,
    cap: Capacity,
    mode: WeightScales,
) -> Result<Converted> {
    convert_plan(spec, ranges, cap, mode, &WeightPlan::default())
}

/// Quantizes and writes the model, choosing weight scales by `mode` and each
/// layer's weight precision by `plan`.
pub fn convert_plan(
    spec: &Spec,
    ranges: &HashMap<String, Range>,
    cap: Capacity,
    mode: WeightScales,
    plan: &WeightPlan,
) -> Result<Converted> {
    convert_plan_data(spec, ranges, cap, mode, plan, None)
}

/// [`convert_plan`] with the float activations of the calibration graphs
/// (for [`WeightPlan::int4_gpfq`]).
pub fn convert_plan_data(
    spec: &Spec,
    ranges: &HashMap<String, Range>,
    cap: Capacity,
    mode: WeightScales,
    plan: &WeightPlan,
    acts: Option<&Values>,
) -> Result<Converted> {
    convert_plan_graphs(spec, ranges, cap, mode, plan, acts, None)
}

/// [`convert_plan_data`] with the calibration graphs themselves (for
/// [`WeightPlan::int4_feedback`], which runs the partly quantized model on them).
pub fn convert_plan_graphs(
    spec: &Spec,
    ranges: &HashMap<String, Range>,
    cap: Capacity,
    mode: WeightScales,
    plan: &WeightPlan,
    acts: Option<&Values>,
    graphs: Option<&Graphs>,
) -> Result<Converted> {
    if (plan.int4_gpfq || plan.int4_feedback) && plan.any_int4() && acts.is_none() {
        bail!("GPFQ rounding needs the calibration activations");
    }
    let feedback = match (plan.int4_feedback && plan.any_int4(), acts, graphs) {
        (false, _, _) => None,
        (true, Some(a), Some(g)) => Some((a, g)),
        _ => bail!("sequential int4 rounding needs the calibration graphs"),
    };
    let convert_layers =
        |spec: &Spec, ranges: &HashMap<String, Range>, cap: Capacity, pt: &dyn Fn(&str) -> bool| {
            match feedback {
                Some((a, g)) => convert_layers_seq(spec, ranges, cap, pt, plan, a, g),
                None => convert_layers(spec, ranges, cap, pt, plan, acts, &Hook::default()),
            }
        };
    match mode {
        WeightScales::PerChannel => convert_layers(spec, ranges, cap, &|_| false),
        WeightScales::PerTensor => convert_layers(spec, ranges, cap, &|_| true),
        WeightScales::Auto => {
            let fused = fuse(spec)?;
            let mut order: Vec<(f64, String)> = fused
                .ops
                .iter()
                .filter_map(|f| scaled_mats(f).map(|m| (channel_spread(&m), f.name.clone())))
                .collect();
            order.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut chosen: Vec<String> = Vec::new();
            let mut conv = convert_layers(spec, ranges, cap, &|_| false)?;
            for (_, name) in order {
                if meets_size_goal(&conv) {
                    break;
                }
                chosen.push(name);
                conv = convert_layers(spec, ranges, cap, &|n| chosen.iter().any(|c| c == n))?;
            }
            Ok(conv)
        }
    }
}

/// Quantizes and writes the model; `per_tensor(name)` says whether the fused
/// op `name` gets one weight scale for all its channels.
fn convert_layers(
    spec: &Spec,
    ranges: &HashMap<String, Range>,
    cap: Capacity,
    per_tensor_layer: &dyn Fn(&str) -> bool,
    plan: &WeightPlan,
    acts: Option<&Values>,
    hook: &Hook<'_>,
) -> Result<Converted> {
    let fused = fuse(spec)?;
    plan.check_names(&fused.ops)?;
    let mut step = WeightStep {
        plan,
        per_tensor_layer,
        acts,
        per_tensor_layers: Vec::new(),
        layer_bits: Vec::new(),
    };
    let range = |name: &str| -> Result<Range> {
        ranges
            .get(name)
            .copied()
            .ok_or_else(|| anyhow!("no calibration range for tensor '{name}'"))
    };
    let mut w = ModelWriter::new();
    let mut ids: HashMap<String, u8> = HashMap::new();
    let kind_of = |r: Rows| match r {
        Rows::Node => TensorKind::Node,
        Rows::Graph => TensorKind::Graph,
        Rows::Pair => TensorKind::Pair,
    };
    if spec.in_channels > tinygnn::MAX_CHANNELS {
        bail!(
            "model input '{}' has {} channels; the runtime allows {}",
            spec.input,
            spec.in_channels,
            tinygnn::MAX_CHANNELS
        );
    }
    let (s, z) = activation_quant(range(&spec.input)?);
    let input = w.add_tensor(TensorDesc {
        kind: TensorKind::Node,
        channels: spec.in_channels as u16,
        scale: s,
        zero_point: z,
    });
    ids.insert(spec.input.clone(), input);
    // The edge-feature input (edgefeat): one Edge tensor, quantized like the node input.
    if let Some((name, d)) = &spec.edge_input {
        if *d > tinygnn::MAX_CHANNELS {
            bail!(
                "edge input '{name}' has {d} channels; the runtime allows {}",
                tinygnn::MAX_CHANNELS
            );
        }
        let (s, z) = activation_quant(range(name)?);
        let e = w.add_tensor(TensorDesc {
            kind: TensorKind::Edge,
            channels: *d as u16,
            scale: s,
            zero_point: z,
        });
        ids.insert(name.clone(), e);
    }
    let (mut weight_bytes, mut param_bytes, mut bias_bytes) = (0usize, 0usize, 0usize);
    let mut warnings = Vec::new();
    if fused.ops.len() > tinygnn::MAX_OPS {
        bail!(
            "model has {} ops after fusion; the format allows {}",
            fused.ops.len(),
            tinygnn::MAX_OPS
        );
    }
    for f in &fused.ops {
        let who = format!("op '{}' ({})", f.name, f.merged.join(" → "));
        if f.channels > tinygnn::MAX_CHANNELS {
            bail!(
                "{who}: {} channels exceed the runtime's maximum {}",
                f.channels,
                tinygnn::MAX_CHANNELS
            );
        }
        if w.tensors().len() >= tinygnn::MAX_TENSORS {
            bail!("{who}: more than {} tensors", tinygnn::MAX_TENSORS);
        }
        let in_ids: Vec<u8> = f.inputs.iter().map(|i| ids[i]).collect();
        let in_desc: Vec<TensorDesc> = in_ids.iter().map(|&i| w.tensors()[i as usize]).collect();
        let s_in = in_desc[0].scale as f64;
        // Output descriptor.
        let out_desc = match &f.kind {
            FKind::Act | FKind::Pool(PoolKind::Max) => TensorDesc {
                kind: kind_of(f.rows),
                ..in_desc[0]
            },
            // [z_s, z_t] is a byte copy: the input's quantization, twice the channels.
            FKind::PairConcat => TensorDesc {
                kind: TensorKind::Pair,
                channels: f.channels as u16,
                ..in_desc[0]
            },
            FKind::Sage {
                normalize: true, ..
            } => TensorDesc {
                kind: TensorKind::Node,
                channels: f.channels as u16,
                scale: 1.0 / 127.0,
                zero_point: 0,
            },
            // Probabilities in steps of 1/256, 0 at −128 (the runtime's fixed head).
            FKind::Softmax { log: false } => TensorDesc {
                kind: kind_of(f.rows),
                channels: f.channels as u16,
                scale: ops::softmax::PROB_SCALE,
                zero_point: ops::softmax::PROB_ZERO_POINT,
            },
            _ => {
                let (scale, zero_point) = activation_quant(range(&f.name)?);
                TensorDesc {
                    kind: kind_of(f.rows),
                    channels: f.channels as u16,
                    scale,
                    zero_point,
                }
            }
        };
        let s_out = out_desc.scale as f64;
        let output = w.add_tensor(out_desc);
        ids.insert(f.name.clone(), output);
        let act = act_of(f.act);
        let records = |scales: &[f64], b: &[f64]| channel_records(scales, b, s_in, s_out);
        let op = match &f.kind {
            FKind::Linear { w: m, b } | FKind::Gcn { w: m, b, .. } => {
                let floors: Vec<f64> = b
                    .iter()
                    .map(|&x| scale_floor(x, s_in, Some(s_out)))
                    .collect();
                let mut lw = step.quantize(f, &[m], &floors, false);
                let mut b = b.clone();
                step.round_int4(f, &[m], &floors, &mut lw, Some(hook), &mut b);
                let b = &b;
                check_records(&who, &lw.scales, b, s_in, s_out, false, &mut warnings);
                let (weights, _, n) = add_weights(&mut w, &who, &lw, m.cols)?;
                weight_bytes += n;
                let (params, n, nb) = add_params(&mut w, &records(&lw.scales, b));
                param_bytes += n;
                bias_bytes += nb;
                match &f.kind {
                    FKind::Linear { .. } => Op::Linear(ops::Linear {
                        input: in_ids[0],
                        output,
                        weights,
                        params,
                        act,
                    }),
                    FKind::Gcn {
                        improved,
                        add_self_loops,
                        normalize,
                        edge_weight,
                        ..
                    } => Op::GcnConv(ops::GcnConv {
                        input: in_ids[0],
                        output,
                        weights,
                        params,
                        act,
                        improved: *improved,
                        add_self_loops: *add_self_loops,
                        normalize: *normalize,
                        edge_weight: *edge_weight,
                    }),
                    _ => unreachable!(),
                }
            }
            FKind::Sage {
                wl,
                wr,
                b,
                aggr,
                normalize,
            } => {
                let mats: Vec<&Mat> = std::iter::once(wl).chain(wr.as_ref()).collect();
                let floors: Vec<f64> = b
                    .iter()
                    .map(|&x| scale_floor(x, s_in, (!*normalize).then_some(s_out)))
                    .collect();
                let mut lw = step.quantize(f, &mats, &floors, *normalize);
                let mut b = b.clone();
                step.round_int4(f, &mats, &floors, &mut lw, Some(hook), &mut b);
                let b = &b;
                check_records(&who, &lw.scales, b, s_in, s_out, *normalize, &mut warnings);
                let (weights_l, weights_r, n) = add_weights(&mut w, &who, &lw, wl.cols)?;
                weight_bytes += n;
                let mut recs = records(&lw.scales, b);
                if *normalize {
                    for r in &mut recs {
                        r.mult = 0;
                        r.shift = 0;
                    }
                }
                let (params, n, nb) = add_params(&mut w, &recs);
                param_bytes += n;
                bias_bytes += nb;
                Op::SageConv(ops::SageConv {
                    input: in_ids[0],
                    output,
                    aggr: match aggr {
                        Aggr::Sum => fmt::Aggr::Sum,
                        Aggr::Mean => fmt::Aggr::Mean,
                        Aggr::Max => fmt::Aggr::Max,
                    },
                    weights_l,
                    weights_r,
                    params,
                    act,
                    normalize: *normalize,
                })
            }
            FKind::Gin { eps } => {
                let (mult, shift) =
                    quantize_multiplier(s_in / (s_out * (1u64 << AGG_FRAC_BITS) as f64));
                Op::GinAggregate(ops::GinAggregate {
                    input: in_ids[0],
                    output,
                    one_plus_eps_q16: q16(1.0 + eps).map_err(|e| anyhow!("{who}: {e}"))?,
                    mult,
                    shift,
                })
            }
            FKind::Gine { eps, lin } => {
                let (ename, _) = spec
                    .edge_input
                    .as_ref()
                    .ok_or_else(|| anyhow!("{who}: the spec has no edge input"))?;
                let edge_attr = ids[ename];
                let s_e = w.tensors()[edge_attr as usize].scale as f64;
                let frac = (1u64 << AGG_FRAC_BITS) as f64;
                let (edge_weights, recs) = match lin {
                    Some((m, b)) => {
                        let floors: Vec<f64> =
                            b.iter().map(|&x| scale_floor(x, s_e, None)).collect();
                        let (q, scales) = quantize_weights_floored(&[m], false, &floors);
                        let sec = w.add_i8(&q[0]);
                        weight_bytes += q[0].len();
                        let recs: Vec<ChannelRecord> = scales
                            .iter()
                            .zip(b)
                            .map(|(&sw, &bias)| {
                                let acc = s_e * sw;
                                channel_record(bias, acc, acc * frac / s_in)
                            })
                            .collect();
                        (sec, recs)
                    }
                    None => {
                        let (mult, shift) = quantize_multiplier(s_e * frac / s_in);
                        let rec = ChannelRecord {
                            bias: 0,
                            mult,
                            shift,
                        };
                        (fmt::Section::default(), vec![rec; f.channels])
                    }
                };
                let (edge_params, n, nb) = add_params(&mut w, &recs);
                param_bytes += n;
                bias_bytes += nb;
                let (mult, shift) = quantize_multiplier(s_in / (s_out * frac));
                Op::GineConv(ops::GineConv {
                    input: in_ids[0],
                    edge_attr,
                    output,
                    one_plus_eps_q16: q16(1.0 + eps).map_err(|e| anyhow!("{who}: {e}"))?,
                    edge_weights,
                    edge_params,
                    mult,
                    shift,
                })
            }
            FKind::Softmax { log } => {
                // exp(−s_x·d) in Q15 for every difference d to the row maximum.
                let table: Vec<u8> = (0..256)
                    .flat_map(|d| {
                        let e = (-(s_in * d as f64)).exp() * f64::from(ops::softmax::EXP_ONE);
                        (e.round() as u16).to_le_bytes()
                    })
                    .collect();
                let table = w.add_bytes(&table);
                param_bytes += table.len as usize;
                let (ln2_q16, (mult, shift)) = if *log {
                    let k = (std::f64::consts::LN_2 / s_in * 65536.0).round();
                    if !(0.0..=f64::from(i32::MAX)).contains(&k) {
                        bail!("{who}: input scale {s_in} is too small for log_softmax");
                    }
                    (k as i32, quantize_multiplier(s_in / (65536.0 * s_out)))
                } else {
                    (0, (0, 0))
                };
                Op::Softmax(ops::Softmax {
                    input: in_ids[0],
                    output,
                    log: *log,
                    table,
                    ln2_q16,
                    mult,
                    shift,
                })
            }
            FKind::Elu { alpha } => {
                // out = quantize_out(elu(dequantize_in(q))) for every int8 q.
                let (zi, zo) = (in_desc[0].zero_point, out_desc.zero_point);
                let table: Vec<u8> = (-128i32..=127)
                    .map(|q| {
                        let x = dequantize_value(q as i8, in_desc[0].scale, zi);
                        quantize_value(crate::reference::elu(x, *alpha), out_desc.scale, zo) as u8
                    })
                    .collect();
                let table = w.add_bytes(&table);
                param_bytes += table.len as usize;
                Op::Lut(ops::Lut {
                    input: in_ids[0],
                    output,
                    table,
                })
            }
            FKind::Pool(p) => {
                let (pool, scale) = match p {
                    PoolKind::Add => (fmt::Pool::Add, s_in / s_out),
                    PoolKind::Mean => (
                        fmt::Pool::Mean,
                        s_in / (s_out * (1u64 << AGG_FRAC_BITS) as f64),
                    ),
                    PoolKind::Max => (fmt::Pool::Max, 0.0),
                };
                let (mult, shift) = quantize_multiplier(scale);
                Op::GlobalPool(ops::GlobalPool {
                    input: in_ids[0],
                    output,
                    pool,
                    mult,
                    shift,
                })
            }
            FKind::Add => Op::Add(ops::Add {
                a: in_ids[0],
                b: in_ids[1],
                output,
                mult_a_q16: q16(in_desc[0].scale as f64 / s_out)
                    .map_err(|e| anyhow!("{who}: {e}"))?,
                mult_b_q16: q16(in_desc[1].scale as f64 / s_out)
                    .map_err(|e| anyhow!("{who}: {e}"))?,
                act,
            }),
            FKind::Concat => {
                if in_ids.len() > fmt::MAX_CONCAT {
                    bail!(
                        "{who}: {} inputs, the runtime concatenates at most {}",
                        in_ids.len(),
                        fmt::MAX_CONCAT
                    );
                }
                let mut parts = heapless::Vec::new();
                for (id, d) in in_ids.iter().zip(&in_desc) {
                    let _ = parts.push(ConcatPart {
                        input: *id,
                        mult_q16: q16(d.scale as f64 / s_out).map_err(|e| anyhow!("{who}: {e}"))?,
                    });
                }
                Op::Concat(ops::Concat { parts, output })
            }
            FKind::Act => Op::Act(ops::Act {
                input: in_ids[0],
                output,
                act,
            }),
            FKind::Propagate(p) => {
                let mut weights_0 = fmt::Section::default();
                let (weights, recs) = match &p.w {
                    None if !p.hops.is_empty() => {
                        // TAGConv: K + 1 matrices with one scale per output channel
                        // (they add in one accumulator), stacked W_0 … W_K.
                        let mats: Vec<&Mat> = p.hops.iter().collect();
                        let floors: Vec<f64> =
                            p.b.iter()
                                .map(|&x| scale_floor(x, s_in, Some(s_out)))
                                .collect();
                        let mut lw = step.quantize(f, &mats, &floors, false);
                        check_records(&who, &lw.scales, &p.b, s_in, s_out, false, &mut warnings);
                        lw.q = vec![lw.q.concat()];
                        let (weights, _, n) = add_weights(&mut w, &who, &lw, mats[0].cols)?;
                        weight_bytes += n;
                        (weights, records(&lw.scales, &p.b))
                    }
                    Some(m) if p.w0.is_some() => {
                        // GCN2Conv: W (on x) and W0 (on x0) get one accumulator scale
                        // S[c] per channel, s_x·s_w[c] = s_x0·s_w0[c] = S[c], the
                        // smallest that keeps both rows within ±127 (int8 only).
                        let m0 = p.w0.as_ref().expect("checked by the guard");
                        let s_x0 = in_desc[1].scale as f64;
                        let amax = |r: &[f64]| r.iter().fold(0.0f64, |a, v| a.max(v.abs()));
                        let acc: Vec<f64> = (0..m.rows)
                            .map(|c| {
                                let s = (amax(m.row(c)) * s_in).max(amax(m0.row(c)) * s_x0) / 127.0;
                                if s > 0.0 {
                                    s
                                } else {
                                    s_in
                                }
                            })
                            .collect();
                        let quant = |m: &Mat, s_x: f64| -> Vec<i8> {
                            (0..m.rows)
                                .flat_map(|c| {
                                    let sw = acc[c] / s_x;
                                    m.row(c)
                                        .iter()
                                        .map(move |v| (v / sw).round().clamp(-127.0, 127.0) as i8)
                                })
                                .collect()
                        };
                        let (q, q0) = (quant(m, s_in), quant(m0, s_x0));
                        let scales: Vec<f64> = acc.iter().map(|s| s / s_in).collect();
                        step.layer_bits
                            .push((layer_name(f).to_string(), WeightBits::I8));
                        let weights = w.add_i8(&q);
                        weights_0 = w.add_i8(&q0);
                        weight_bytes += q.len() + q0.len();
                        (weights, records(&scales, &p.b))
                    }
                    Some(m) => {
                        let floors: Vec<f64> =
                            p.b.iter()
                                .map(|&x| scale_floor(x, s_in, Some(s_out)))
                                .collect();
                        let mut lw = step.quantize(f, &[m], &floors, false);
                        // No sequential rounding here: GPFQ on the float input only.
                        let mut b = p.b.clone();
                        step.round_int4(f, &[m], &floors, &mut lw, None, &mut b);
                        check_records(&who, &lw.scales, &p.b, s_in, s_out, false, &mut warnings);
                        let (weights, _, n) = add_weights(&mut w, &who, &lw, m.cols)?;
                        weight_bytes += n;
                        (weights, records(&lw.scales, &p.b))
                    }
                    None => {
                        // h is x − zp with PROPAGATE_FRAC_BITS extra bits: the
                        // accumulator scale is s_in / 2^16 for every channel.
                        let acc_scale = s_in / (1u64 << fmt::PROPAGATE_FRAC_BITS) as f64;
                        let recs =
                            p.b.iter()
                                .map(|&b| channel_record(b, acc_scale, acc_scale / s_out))
                                .collect::<Vec<_>>();
                        (fmt::Section::default(), recs)
                    }
                };
                let (params, n, nb) = add_params(&mut w, &recs);
                param_bytes += n;
                bias_bytes += nb;
                let alpha_q30 = (p.alpha * fmt::PROPAGATE_ALPHA_ONE as f64).round();
                if !(0.0..=fmt::PROPAGATE_ALPHA_ONE as f64).contains(&alpha_q30) {
                    bail!("{who}: alpha {} is not in [0, 1]", p.alpha);
                }
                Op::Propagate(ops::Propagate {
                    input: in_ids[0],
                    output,
                    k: u8::try_from(p.k).map_err(|_| anyhow!("{who}: K = {} is above 255", p.k))?,
                    alpha_q30: alpha_q30 as i32,
                    weights,
                    x0: in_ids.get(1).copied().unwrap_or(in_ids[0]),
                    weights_0,
                    params,
                    act,
                    improved: p.improved,
                    add_self_loops: p.add_self_loops,
                    normalize: p.normalize,
                    edge_weight: p.edge_weight,
                    hops: !p.hops.is_empty(),
                })
            }
            FKind::InnerProduct | FKind::PairHadamard => {
                // Σ (z_s − zp)(z_t − zp) is in the scale s_z², rescaled to s_out.
                let (mult, shift) = quantize_multiplier(s_in * s_in / s_out);
                if mult == 0 {
                    warnings.push(format!(
                        "{who}: rescale s_z²/s_out = {:e} underflows to 0",
                        s_in * s_in / s_out
                    ));
                }
                if f.kind == FKind::InnerProduct {
                    Op::InnerProduct(ops::InnerProduct {
                        input: in_ids[0],
                        output,
                        mult,
                        shift,
                    })
                } else {
                    Op::PairFeatures(ops::PairFeatures {
                        input: in_ids[0],
                        output,
                        mode: fmt::PairMode::Hadamard { mult, shift },
                    })
                }
            }
            FKind::PairConcat => Op::PairFeatures(ops::PairFeatures {
                input: in_ids[0],
                output,
                mode: fmt::PairMode::Concat,
            }),
            FKind::Gat(g) => {
                let hc = g.heads * g.per_head;
                // The conv bias (per output channel, mean: scaled by H) and GATv2's
                // lin biases all live in the accumulator scale s_in·s_w.
                let floors: Vec<f64> = (0..hc)
                    .map(|q| {
                        let ob = if g.concat {
                            g.bias[q]
                        } else {
                            g.bias[q % g.per_head] * g.heads as f64
                        };
                        let so = if g.concat {
                            s_out
                        } else {
                            s_out * g.heads as f64
                        };
                        scale_floor(ob, s_in, Some(so))
                            .max(scale_floor(g.bl[q], s_in, None))
                            .max(scale_floor(g.br[q], s_in, None))
                    })
                    .collect();
                let mats: Vec<&Mat> = std::iter::once(&g.w).chain(g.wr.as_ref()).collect();
                // Weight precision per layer: int4 like every op with
                // weights. GAT: the sequential GPFQ hook (it fixes `lin` against
                // the layer's quantized input, which is the projection's input);
                // GATv2 (two matrices on the same input): plain GPFQ per matrix
                // with `--int4-rounding gpfq`, else nearest with the MSE scale.
                // The hook's bias correction is not used (GAT has no bias
                // before the attention).
                let mut lw = step.quantize(f, &mats, &floors, !g.concat);
                let mut zero_b = vec![0.0; hc];
                let hook = (!g.v2).then_some(hook);
                step.round_int4(f, &mats, &floors, &mut lw, hook, &mut zero_b);
                let scales = &lw.scales;
                let recs: Vec<ChannelRecord> = if g.concat {
                    check_records(&who, scales, &g.bias, s_in, s_out, false, &mut warnings);
                    records(scales, &g.bias)
                } else {
                    let acc_scale = s_in * scales[0];
                    let rescale = acc_scale / (g.heads as f64 * s_out);
                    g.bias
                        .iter()
                        .map(|&b| channel_record(b * g.heads as f64, acc_scale, rescale))
                        .collect()
                };
                let (weights, weights_r, n) = add_weights(&mut w, &who, &lw, g.w.cols)?;
                weight_bytes += n;
                let acc_int = |b: f64, q: usize| -> i32 {
                    (b / (s_in * scales[q]))
                        .round()
                        .clamp(i32::MIN as f64, i32::MAX as f64) as i32
                };
                let lin_bias = if g.v2 {
                    let v: Vec<u8> = (0..hc)
                        .map(|q| acc_int(g.bl[q], q))
                        .chain((0..hc).map(|q| acc_int(g.br[q], q)))
                        .flat_map(i32::to_le_bytes)
                        .collect();
                    w.add_bytes(&v)
                } else {
                    fmt::Section::default()
                };
                // Attention vectors with the weight scale folded in, i16 per head
                // with one scale per head; logits in Q16 (no calibration needed:
                // the logit grid is absolute).
                let mut att_q: Vec<i16> = Vec::new();
                let mut logit: Vec<i32> = Vec::new();
                let mut rescales: Vec<Vec<(i32, i32)>> = vec![Vec::new(); g.heads];
                for vec_ in std::iter::once(&g.att_src).chain((!g.v2).then_some(&g.att_dst)) {
                    let mut qs = Vec::with_capacity(hc);
                    for (k, r) in rescales.iter_mut().enumerate() {
                        let v: Vec<f64> = (0..g.per_head)
                            .map(|c| vec_[k * g.per_head + c] * scales[k * g.per_head + c])
                            .collect();
                        let (vq, rescale) = head_i16(&v, s_in, &who, "attention")?;
                        qs.extend(vq);
                        r.push(rescale);
                    }
                    att_q.extend(qs);
                }
                for r in &rescales {
                    for (m, sh) in r {
                        logit.push(*m);
                        logit.push(*sh);
                    }
                }
                let att = w.add_bytes(&le_bytes(&att_q, i16::to_le_bytes));
                let logit = w.add_bytes(&le_bytes(&logit, i32::to_le_bytes));
                // Edge features (edgefeat): att_edge·lin_edge folded into V [H, D],
                // i16 per head with one scale per head, and its Q16 logit rescale.
                let edge = match &g.edge {
                    None => None,
                    Some((we, att_e)) => {
                        let (ename, d) = spec
                            .edge_input
                            .as_ref()
                            .ok_or_else(|| anyhow!("{who}: the spec has no edge input"))?;
                        let edge_attr = ids[ename];
                        let s_e = w.tensors()[edge_attr as usize].scale as f64;
                        let c = g.per_head;
                        let (mut vq, mut lg) = (Vec::new(), Vec::new());
                        // GATv2: lin_edge int8 per channel, its accumulator (scale
                        // s_e·s_we[q]) rescaled into xl's accumulator (s_in·s_w[q]).
                        let mut wq: Vec<i8> = Vec::new();
                        if g.v2 {
                            let (q8, s_we) = quantize_weights_floored(&[we], false, &[]);
                            wq = q8.into_iter().next().unwrap_or_default();
                            for (q, sw) in s_we.iter().enumerate() {
                                let r = s_e * sw / (s_in * scales[q]);
                                let (mult, shift) = quantize_multiplier(r);
                                if !(-32..=31).contains(&shift) {
                                    bail!("{who}: edge rescale {r} of channel {q} is out of range");
                                }
                                lg.push(mult);
                                lg.push(shift);
                            }
                        }
                        for k in 0..if g.v2 { 0 } else { g.heads } {
                            let v: Vec<f64> = (0..*d)
                                .map(|q| {
                                    (0..c)
                                        .map(|cc| att_e[k * c + cc] * we.row(k * c + cc)[q])
                                        .sum()
                                })
                                .collect();
                            let (q, (mult, shift)) = head_i16(&v, s_e, &who, "edge")?;
                            vq.extend(q);
                            lg.push(mult);
                            lg.push(shift);
                        }
                        let att = if g.v2 {
                            weight_bytes += wq.len();
                            w.add_i8(&wq)
                        } else {
                            let a = w.add_bytes(&le_bytes(&vq, i16::to_le_bytes));
                            param_bytes += a.len as usize;
                            a
                        };
                        let logit = w.add_bytes(&le_bytes(&lg, i32::to_le_bytes));
                        param_bytes += logit.len as usize;
                        Some(fmt::GatEdge {
                            edge_attr,
                            att,
                            logit,
                        })
                    }
                };
                let (params, n, nb) = add_params(&mut w, &recs);
                param_bytes += n + (att.len + logit.len + lin_bias.len) as usize;
                bias_bytes += nb;
                Op::GatConv(ops::GatConv {
                    input: in_ids[0],
                    output,
                    heads: g.heads as u8,
                    concat: g.concat,
                    v2: g.v2,
                    add_self_loops: g.add_self_loops,
                    negative_slope_q16: q16(g.negative_slope).map_err(|e| anyhow!("{who}: {e}"))?,
                    weights,
                    weights_r,
                    lin_bias,
                    att,
                    logit,
                    params,
                    act,
                    edge,
                })
            }
            FKind::EdgeConv(e) => {
                let io = (in_ids[0], output, f.name.as_str());
                let ec =
                    quantize_edge_conv(&mut w, &who, io, e, (s_in, s_out), &range, &mut warnings)?;
                weight_bytes += ec.weight_bytes;
                param_bytes += ec.param_bytes;
                bias_bytes += ec.bias_bytes;
                ec.op
            }
        };
        w.add_op(op);
    }
    if w.tensors().iter().any(|t| t.kind == TensorKind::Pair) {
        if cap.max_pairs == 0 {
            bail!("the model scores node pairs but its pair capacity is 0 (give --max-pairs, or calibration graphs with edge_label_index)");
        }
        w.set_max_pairs(cap.max_pairs);
    }
    let outputs: Vec<u8> = fused.outputs.iter().map(|o| ids[o]).collect();
    if outputs.len() > 4 {
        bail!("model has {} outputs; the format allows 4", outputs.len());
    }
    let bytes = w
        .finish(
            input,
            &outputs,
            cap.max_nodes,
            cap.max_edges,
            cap.max_graphs,
        )
        .map_err(|e| anyhow!("writing the model failed: {e}"))?;
    Ok(Converted {
        bytes,
        ops: fused.ops,
        weight_bytes,
        bias_bytes,
        param_bytes,
        warnings,
        per_tensor_layers: step.per_tensor_layers,
        layer_bits: step.layer_bits,
    })
}

/// One layer's int4 values (per matrix), its (possibly corrected) bias and
/// its scales, as fixed by sequential rounding ([`WeightPlan::int4_feedback`]).
type Fixed = (Vec<Vec<i8>>, Vec<f64>, Vec<f64>);

/// How [`convert_layers`] rounds int4 layers under sequential rounding: the
/// layers already fixed, and the one to fix now with its float and quantized
/// (aggregated) inputs on the calibration graphs.
#[derive(Default)]
pub struct Hook<'a> {
    fixed: Option<&'a HashMap<String, Fixed>>,
    pending: Option<(&'a str, &'a Tensor, &'a Tensor)>,
    made: std::cell::RefCell<Option<Fixed>>,
}

impl Hook<'_> {
    /// The int4 values and bias of layer `name` if this hook decides them.
    fn apply(
        &self,
        name: &str,
        bits: WeightBits,
        mats: &[&Mat],
        scales: &[f64],
        b: &[f64],
        (floors, per_tensor, plan): (&[f64], bool, &WeightPlan),
    ) -> Option<Fixed> {
        if bits != WeightBits::I4 {
            return None;
        }
        if let Some(fx) = self.fixed.and_then(|m| m.get(name)) {
            return Some(fx.clone());
        }
        let (n, x, xq) = self.pending?;
        if n != name {
            return None;
        }
        let (xc, xqc) = (Columns::of(x), Columns::of(xq));
        let cols = mats.first().map_or(0, |m| m.cols);
        let mut q: Vec<Vec<i8>> = vec![Vec::new(); mats.len()];
        let mut nb = b.to_vec();
        let mut ns = scales.to_vec();
        let qm = qmax(bits);
        for (c, (s, bc)) in ns.iter_mut().zip(nb.iter_mut()).enumerate() {
            let w: Vec<f64> = mats.iter().flat_map(|m| m.row(c).iter().copied()).collect();
            // Candidate scales: the given one first (it wins ties), then with
            // `--int4-scale output` the clipping steps of max|W|/qmax (not
            // below the channel's floor), judged by the layer's output error.
            let mut cands = vec![*s];
            if plan.int4_output_scale && !per_tensor {
                let s_max = w.iter().fold(0.0f64, |a, v| a.max(v.abs())) / qm;
                let floor = floors
                    .get(c)
                    .copied()
                    .filter(|f| f.is_finite())
                    .unwrap_or(0.0);
                cands.extend(
                    (0..CLIP_STEPS)
                        .map(|i| (s_max * (1.0 - 0.02 * i as f64)).max(floor))
                        .filter(|v| v.is_finite() && *v > 0.0),
                );
            }
            let mut best: Option<(f64, f64, Vec<i8>, f64)> = None;
            for cs in cands {
                let (qr, mean_err, sse) = gpfq_fb_row_err(&w, cs, qm, &xc, &xqc);
                if best.as_ref().is_none_or(|b| sse < b.0) {
                    best = Some((sse, cs, qr, mean_err));
                }
            }
            let (_, cs, qr, mean_err) = best?;
            *s = cs;
            for (i, qi) in q.iter_mut().enumerate() {
                qi.extend_from_slice(&qr[i * cols..(i + 1) * cols]);
            }
            if plan.int4_bias_correction {
                *bc += mean_err;
            }
        }
        *self.made.borrow_mut() = Some((q.clone(), nb.clone(), ns.clone()));
        Some((q, nb, ns))
    }
}

/// GPFQ with error feedback (Lybrand & Saab's two-input form): quantizes the
/// weight row `w` (scale `s`, integers in `±qm`) so that `X̃·(s·q)` follows
/// `X·w`, where `x` is the layer's float input and `xq` the input the
/// quantized model actually gives it (same rows and columns). With `u` the
/// running output error `Σ_{j<t} (w_j·X_j − s·q_j·X̃_j)`,
/// `q_t = clamp(round(⟨X̃_t, u + w_t·X_t⟩ / (s·‖X̃_t‖²)), ±qm)` (round to
/// nearest when `‖X̃_t‖ = 0`). Also returns the mean of the final error over
/// the rows: the bias shift that removes its average.
pub fn gpfq_fb_row(w: &[f64], s: f64, qm: f64, x: &Columns, xq: &Columns) -> (Vec<i8>, f64) {
    let (q, mean, _) = gpfq_fb_row_err(w, s, qm, x, xq);
    (q, mean)
}

/// [`gpfq_fb_row`], also returning the squared output error `‖u‖²` left.
pub fn gpfq_fb_row_err(
    w: &[f64],
    s: f64,
    qm: f64,
    x: &Columns,
    xq: &Columns,
) -> (Vec<i8>, f64, f64) {
    let rows = xq.cols.first().map_or(0, Vec::len);
    let mut u = vec![0.0f64; rows];
    let q = w
        .iter()
        .enumerate()
        .map(|(t, &wt)| {
            let nearest = if s > 0.0 {
                (wt / s).round().clamp(-qm, qm)
            } else {
                0.0
            };
            let (Some(c), Some(cq), Some(&n2)) = (x.cols.get(t), xq.cols.get(t), xq.norms.get(t))
            else {
                return nearest as i8;
            };
            let q = if n2 > 0.0 && s > 0.0 {
                let dot: f64 = cq
                    .iter()
                    .zip(&u)
                    .zip(c)
                    .map(|((a, b), xf)| a * (b + wt * xf))
                    .sum();
                (dot / (s * n2)).round().clamp(-qm, qm)
            } else {
                nearest
            };
            for ((ui, &xi), &xqi) in u.iter_mut().zip(c).zip(cq) {
                *ui += wt * xi - s * q * xqi;
            }
            q as i8
        })
        .collect();
    let mean = if rows == 0 {
        0.0
    } else {
        u.iter().sum::<f64>() / rows as f64
    };
    (q, mean, u.iter().map(|v| v * v).sum())
}

/// The input the weights of `f` multiply, computed from its input tensor `x`:
/// GCN: `Â·x` (the normalised propagation); SAGE: `[agg(x), x]` (or `agg(x)`
/// without a root weight); anything else: `x`.
pub fn layer_input(f: &FOp, x: &Tensor, g: &Graphs) -> Tensor {
    let ch = x.channels;
    match &f.kind {
        FKind::Gcn {
            improved,
            add_self_loops,
            normalize,
            edge_weight,
            ..
        } => {
            let mut out = vec![0.0f64; x.rows * ch];
            let edges = crate::reference::gcn_edges(
                g,
                *improved,
                *add_self_loops,
                *normalize,
                *edge_weight,
            );
            for (s, t, coef) in edges {
                if s >= x.rows || t >= x.rows {
                    continue;
                }
                for k in 0..ch {
                    out[t * ch + k] += coef * x.data[s * ch + k];
                }
            }
            Tensor {
                rows: x.rows,
                channels: ch,
                data: out,
            }
        }
        FKind::Sage { aggr, wr, .. } => {
            let max = *aggr == Aggr::Max;
            let mut agg = vec![if max { f64::NEG_INFINITY } else { 0.0 }; x.rows * ch];
            let mut count = vec![0usize; x.rows];
            for (&s, &t) in g.sources.iter().zip(&g.targets) {
                let (s, t) = (s as usize, t as usize);
                if s >= x.rows || t >= x.rows {
                    continue;
                }
                count[t] += 1;
                for k in 0..ch {
                    let v = x.data[s * ch + k];
                    let a = &mut agg[t * ch + k];
                    *a = if max { a.max(v) } else { *a + v };
                }
            }
            for (i, &n) in count.iter().enumerate() {
                for a in &mut agg[i * ch..(i + 1) * ch] {
                    if n == 0 {
                        *a = 0.0;
                    } else if *aggr == Aggr::Mean {
                        *a /= n as f64;
                    }
                }
            }
            let width = if wr.is_some() { 2 * ch } else { ch };
            let mut data = Vec::with_capacity(x.rows * width);
            for r in 0..x.rows {
                data.extend_from_slice(&agg[r * ch..(r + 1) * ch]);
                if wr.is_some() {
                    data.extend_from_slice(x.row(r));
                }
            }
            Tensor {
                rows: x.rows,
                channels: width,
                data,
            }
        }
        _ => x.clone(),
    }
}

/// [`convert_layers`] with sequential int4 rounding ([`WeightPlan::int4_feedback`]):
/// for every int4 layer with weights, in file order, the model with the
/// earlier layers already fixed is run on the calibration graphs `g` by the
/// runtime; the layer's quantized input from that run and its float input
/// (`acts`) fix its int4 values by [`gpfq_fb_row`].
fn convert_layers_seq(
    spec: &Spec,
    ranges: &HashMap<String, Range>,
    cap: Capacity,
    per_tensor_layer: &dyn Fn(&str) -> bool,
    plan: &WeightPlan,
    acts: &Values,
    g: &Graphs,
) -> Result<Converted> {
    let fused = fuse(spec)?;
    let mut fixed: HashMap<String, Fixed> = HashMap::new();
    let mut ranges = ranges.clone();
    let ranges_now = std::cell::RefCell::new(ranges.clone());
    let run = |fixed: &HashMap<String, Fixed>,
               pending: Option<(&str, &Tensor, &Tensor)>|
     -> Result<(Converted, Option<Fixed>)> {
        let hook = Hook {
            fixed: Some(fixed),
            pending,
            made: Default::default(),
        };
        let r = ranges_now.borrow().clone();
        let c = convert_layers(spec, &r, cap, per_tensor_layer, plan, Some(acts), &hook)?;
        Ok((c, hook.made.into_inner()))
    };
    for f in &fused.ops {
        // GAT (not GATv2: two matrices on one input) is rounded by the hook too.
        let weighted = matches!(
            &f.kind,
            FKind::Linear { .. } | FKind::Gcn { .. } | FKind::Sage { .. }
        ) || matches!(&f.kind, FKind::Gat(g) if !g.v2);
        if !weighted || plan.bits(f) != WeightBits::I4 {
            continue;
        }
        let input = &f.inputs[0];
        let xf = acts
            .get(input)
            .ok_or_else(|| anyhow!("no float activation for tensor '{input}'"))?;
        let xq = if *input == spec.input {
            let r = ranges
                .get(input)
                .copied()
                .ok_or_else(|| anyhow!("no calibration range for tensor '{input}'"))?;
            let (s, z) = activation_quant(r);
            Tensor {
                data: xf
                    .data
                    .iter()
                    .map(|&v| dequantize_value(quantize_value(v, s, z), s, z))
                    .collect(),
                ..xf.clone()
            }
        } else {
            let idx = fused
                .ops
                .iter()
                .position(|o| o.name == *input)
                .ok_or_else(|| anyhow!("no op produces tensor '{input}'"))?;
            let (conv, _) = run(&fixed, None)?;
            let model = tinygnn::Model::from_bytes(&conv.bytes).map_err(|e| anyhow!("{e}"))?;
            let mut got = None;
            crate::rt::run_traced(&model, g, |i, t| {
                if i == idx {
                    got = Some(t.clone());
                }
            })?;
            let t = got.ok_or_else(|| anyhow!("the runtime did not trace op {idx}"))?;
            if t.rows != xf.rows || t.channels != xf.channels {
                bail!("tensor '{input}': traced shape differs from the float one");
            }
            Tensor {
                rows: t.rows,
                channels: t.channels,
                data: (0..t.rows * t.channels)
                    .map(|i| t.dequantize(i / t.channels, i % t.channels))
                    .collect(),
            }
        };
        let (xa, xqa) = (layer_input(f, xf, g), layer_input(f, &xq, g));
        let (_, made) = run(&fixed, Some((f.name.as_str(), &xa, &xqa)))?;
        let made = made.ok_or_else(|| anyhow!("layer '{}' was not rounded", f.name))?;
        // Output ranges are re-measured by `simulate` (a plain projection):
        // not for normalized SAGE, nor for GAT (its output is the attention-
        // weighted sum, not the projection).
        let normalized = matches!(
            f.kind,
            FKind::Sage {
                normalize: true,
                ..
            } | FKind::Gat(_)
        );
        if let Some(method) = plan.int4_recalibrate {
            if !normalized && !fused.outputs.contains(&f.name) {
                let y = simulate(&xqa, &made, f.act);
                ranges.insert(f.name.clone(), crate::calibrate::range_of(&y, method));
                *ranges_now.borrow_mut() = ranges.clone();
            }
        }
        fixed.insert(f.name.clone(), made);
    }
    Ok(run(&fixed, None)?.0)
}

/// The float output `act(X̃·(s·q)ᵀ + b)` of a fixed int4 layer on its
/// (aggregated) quantized input `xq`, all values row by row.
fn simulate(xq: &Tensor, made: &Fixed, act: Act) -> Vec<f64> {
    let (q, b, scales) = made;
    let cols = xq.channels;
    let mut out = Vec::with_capacity(xq.rows * b.len());
    for r in 0..xq.rows {
        let x = xq.row(r);
        for (c, (&bc, &s)) in b.iter().zip(scales).enumerate() {
            // The row of channel c over the concatenated matrices.
            let per = q.first().map_or(0, |m| m.len() / b.len().max(1));
            let mut acc = bc;
            let mut k = 0usize;
            for m in q {
                for &w in &m[c * per..(c + 1) * per] {
                    if k < cols {
                        acc += s * w as f64 * x[k];
                    }
                    k += 1;
                }
            }
            out.push(match act {
                Act::None => acc,
                Act::Relu => acc.max(0.0),
                Act::Leaky(a) => {
                    if acc < 0.0 {
                        acc * a
                    } else {
                        acc
                    }
                }
            });
        }
    }
    out
}

/// The weight decisions every layer with int8/int4 weights makes the same
/// way, and where they are recorded for the report.
struct WeightStep<'a> {
    plan: &'a WeightPlan,
    per_tensor_layer: &'a dyn Fn(&str) -> bool,
    acts: Option<&'a Values>,
    per_tensor_layers: Vec<String>,
    layer_bits: Vec<(String, WeightBits)>,
}

/// One layer's weights as [`WeightStep::quantize`] decided them: precision,
/// one shared scale or not, the int values per matrix and one scale per
/// output channel.
struct LayerWeights {
    bits: WeightBits,
    per_tensor: bool,
    q: Vec<Vec<i8>>,
    scales: Vec<f64>,
}

impl WeightStep<'_> {
    /// Layer `f`'s weight bits and scales (one per tensor if `per_tensor` or
    /// if the plan picks the layer), and `mats` rounded to nearest with them
    /// over the bias floors; records both choices.
    fn quantize(
        &mut self,
        f: &FOp,
        mats: &[&Mat],
        floors: &[f64],
        per_tensor: bool,
    ) -> LayerWeights {
        let per_tensor = per_tensor || (self.per_tensor_layer)(&f.name);
        if per_tensor {
            self.per_tensor_layers.push(f.name.clone());
        }
        let bits = self.plan.bits(f);
        self.layer_bits.push((layer_name(f).to_string(), bits));
        let clip = bits == WeightBits::I4 && !self.plan.int4_max_scale;
        let (q, scales) = quantize_weights_scaled(mats, per_tensor, floors, bits, clip);
        LayerWeights {
            bits,
            per_tensor,
            q,
            scales,
        }
    }

    /// int4 rounding beyond nearest: the sequential `hook`'s values, scales
    /// and bias `b` where it decides this layer, else GPFQ on the layer's
    /// float input where the plan asks for it.
    fn round_int4(
        &self,
        f: &FOp,
        mats: &[&Mat],
        floors: &[f64],
        lw: &mut LayerWeights,
        hook: Option<&Hook<'_>>,
        b: &mut Vec<f64>,
    ) {
        let ctx = (floors, lw.per_tensor, self.plan);
        if let Some((fq, fb, fs)) =
            hook.and_then(|h| h.apply(&f.name, lw.bits, mats, &lw.scales, b, ctx))
        {
            lw.q = fq;
            lw.scales = fs;
            *b = fb;
        } else if let Some(x) = self.gpfq_input(lw.bits, &f.inputs[0]) {
            for (qi, m) in lw.q.iter_mut().zip(mats) {
                *qi = gpfq_matrix(m, &lw.scales, qmax(lw.bits), &x);
            }
        }
    }

    /// The float input of a layer, column-major, when its int4 values come from GPFQ.
    fn gpfq_input(&self, bits: WeightBits, input: &str) -> Option<Columns> {
        if bits != WeightBits::I4 || !self.plan.int4_gpfq {
            return None;
        }
        self.acts.and_then(|a| a.get(input)).map(Columns::of)
    }
}

/// Writes a layer's one or two weight matrices (`cols` columns each) at its
/// precision; returns the sections (the second empty for one matrix) and
/// the weight bytes they hold.
fn add_weights(
    w: &mut ModelWriter,
    who: &str,
    lw: &LayerWeights,
    cols: usize,
) -> Result<(fmt::Section, fmt::Section, usize)> {
    let mut secs = [fmt::Section::default(); 2];
    if lw.q.len() > secs.len() {
        bail!("{who}: {} weight matrices, at most 2", lw.q.len());
    }
    let mut bytes = 0;
    for (sec, q) in secs.iter_mut().zip(&lw.q) {
        *sec = w
            .add_weights(lw.bits, q, cols)
            .map_err(|e| anyhow!("{who}: {e}"))?;
        bytes += sec.weight_bytes().len as usize;
    }
    Ok((secs[0], secs[1], bytes))
}

/// Writes a layer's channel records; returns the section and the bytes it
/// adds to the params and, of those, the biases'.
fn add_params(w: &mut ModelWriter, recs: &[ChannelRecord]) -> (fmt::Section, usize, usize) {
    let params = w.add_channel_params(recs);
    (params, params.len as usize, 4 * recs.len())
}

/// One output channel's record: `bias` in the accumulator scale `acc`
/// (saturating i32) and the fixed-point multiplier of `rescale`.
fn channel_record(bias: f64, acc: f64, rescale: f64) -> ChannelRecord {
    let (mult, shift) = quantize_multiplier(rescale);
    ChannelRecord {
        bias: (bias / acc).round().clamp(i32::MIN as f64, i32::MAX as f64) as i32,
        mult,
        shift,
    }
}

/// The records of a layer whose channel `c` accumulates in the scale
/// `s_in·scales[c]` and rescales to `s_out`.
fn channel_records(scales: &[f64], b: &[f64], s_in: f64, s_out: f64) -> Vec<ChannelRecord> {
    scales
        .iter()
        .zip(b)
        .map(|(&sw, &bias)| {
            let acc = s_in * sw;
            channel_record(bias, acc, acc / s_out)
        })
        .collect()
}

/// One head's GAT vector `v` (applied to values of scale `s_x`) as i16 with
/// one scale (max |v| / 32767), and the Q16 logit rescale of `s_x·scale`;
/// `what` names the vector in the error.
fn head_i16(v: &[f64], s_x: f64, who: &str, what: &str) -> Result<(Vec<i16>, (i32, i32))> {
    let m = v.iter().fold(0.0f64, |a, x| a.max(x.abs()));
    let s = if m > 0.0 { m / 32767.0 } else { 1.0 };
    let q = v
        .iter()
        .map(|x| (x / s).round().clamp(-32767.0, 32767.0) as i16)
        .collect();
    let (mult, shift) = quantize_multiplier(s_x * s * (1u64 << gat::LOGIT_FRAC_BITS) as f64);
    if !(-32..=31).contains(&shift) {
        bail!("{who}: {what} logit rescale {} is out of range", s_x * s);
    }
    Ok((q, (mult, shift)))
}

/// The little-endian bytes of a table of i16 or i32 (`to_le_bytes`).
fn le_bytes<T: Copy, const N: usize>(v: &[T], to_le: fn(T) -> [u8; N]) -> Vec<u8> {
    v.iter().flat_map(|&x| to_le(x)).collect()
}

/// An EdgeConv lowered by [`quantize_edge_conv`], with its byte counts.
struct LoweredEdgeConv {
    op: Op,
    weight_bytes: usize,
    param_bytes: usize,
    bias_bytes: usize,
}

fn nn_act(a: crate::spec::NnAct) -> Act {
    match a {
        crate::spec::NnAct::None => Act::None,
        crate::spec::NnAct::Relu => Act::Relu,
        crate::spec::NnAct::Leaky(s) => Act::Leaky(s),
    }
}

/// Lowers an EdgeConv (see `docs/point-clouds.md`): the first Linear
/// `W = [W_a | W_b]` becomes `W_a − W_b` (on `x_i`) and `W_b` (on `x_j`),
/// quantized together with **one** scale per output channel (the larger
/// range of the two rows, as for SAGE's `lin_l`/`lin_r`), so their i32
/// products share the accumulator scale `s_in·s_w[c]` and add exactly. With
/// two layers the per-edge hidden vector is int8 with the calibrated range of
/// `<op>#hidden`; the second layer then rescales from it to the output.
fn quantize_edge_conv(
    w: &mut ModelWriter,
    who: &str,
    (input, output, name): (u8, u8, &str),
    e: &crate::spec::EdgeConvSpec,
    (s_in, s_out): (f64, f64),
    range: &dyn Fn(&str) -> Result<Range>,
    warnings: &mut Vec<String>,
) -> Result<LoweredEdgeConv> {
    let f = e.w1.cols / 2;
    let h = e.w1.rows;
    let split = |off: usize, sub: bool| Mat {
        rows: h,
        cols: f,
        data: (0..h)
            .flat_map(|c| {
                let r = e.w1.row(c);
                (0..f).map(move |q| if sub { r[q] - r[f + q] } else { r[off + q] })
            })
            .collect(),
    };
    let w_self_f = split(0, true);
    let w_nbr_f = split(f, false);
    // The scale the first layer rescales to: the hidden vector's, or the output's.
    let (s_h, zp_h) = match &e.w2 {
        Some(_) => {
            let name = crate::reference::edge_conv_hidden_name(name);
            let (s, z) = activation_quant(range(&name)?);
            (s as f64, z)
        }
        None => (s_out, 0),
    };
    let floors: Vec<f64> =
        e.b1.iter()
            .map(|&b| scale_floor(b, s_in, Some(s_h)))
            .collect();
    let (q1, sc1) = quantize_weights_floored(&[&w_self_f, &w_nbr_f], false, &floors);
    check_records(who, &sc1, &e.b1, s_in, s_h, false, warnings);
    let w_self = w.add_i8(&q1[0]);
    let w_nbr = w.add_i8(&q1[1]);
    let (params1, mut param_bytes, mut bias_bytes) =
        add_params(w, &channel_records(&sc1, &e.b1, s_in, s_h));
    let mut weight_bytes = q1[0].len() + q1[1].len();
    let (w2, params2) = match &e.w2 {
        Some(m) => {
            let floors: Vec<f64> =
                e.b2.iter()
                    .map(|&b| scale_floor(b, s_h, Some(s_out)))
                    .collect();
            let (q2, sc2) = quantize_weights_floored(&[m], false, &floors);
            check_records(who, &sc2, &e.b2, s_h, s_out, false, warnings);
            let w2 = w.add_i8(&q2[0]);
            let (p2, n, nb) = add_params(w, &channel_records(&sc2, &e.b2, s_h, s_out));
            weight_bytes += q2[0].len();
            param_bytes += n;
            bias_bytes += nb;
            (w2, p2)
        }
        None => (fmt::Section::default(), fmt::Section::default()),
    };
    let op = Op::EdgeConv(ops::EdgeConv {
        input,
        output,
        aggr: match e.aggr {
            Aggr::Sum => fmt::Aggr::Sum,
            Aggr::Mean => fmt::Aggr::Mean,
            Aggr::Max => fmt::Aggr::Max,
        },
        k: u16::try_from(e.k).map_err(|_| anyhow!("{who}: k = {} is too large", e.k))?,
        hidden: u16::try_from(h).map_err(|_| anyhow!("{who}: {h} hidden channels"))?,
        w_self,
        w_nbr,
        params1,
        act1: act_of(nn_act(e.act1)),
        hidden_zp: zp_h,
        w2,
        params2,
        act2: act_of(nn_act(e.act2)),
    });
    Ok(LoweredEdgeConv {
        op,
        weight_bytes,
        param_bytes,
        bias_bytes,
    })
}
