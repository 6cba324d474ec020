//! Weight quantization, the step every op with a weight matrix takes the
//! same way: int8/int4 per-channel or per-tensor scales (never below the
//! bias floor), the clipped int4 scale, GPFQ rounding and sequential
//! rounding with error feedback ([`Hook`]), and the per-layer precision plan
//! (`convert --weights`). The scheme is described in `docs/quantization.md`.

use std::collections::HashMap;

use anyhow::{bail, Result};
use tinygnn::format::WeightBits;

pub use crate::prec::{Prec, QRange};

use crate::ops::common::{Mat, Tensor, Values};

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
    quantize_weights_bits(mats, per_tensor, floors, Prec::I8)
}

/// The integer levels of a precision: ±127 for int8, ±7 for int4 (both
/// symmetric, so `-128` / `-8` are never written), −2..=1 for int2, −1..=1
/// for ternary ([`Prec`]).
pub fn qmax(bits: Prec) -> QRange {
    bits.levels()
}

/// [`quantize_weights_floored`] for int8 or int4: scales are `max|W| / qmax`
/// ([`qmax`]) and values are rounded to nearest and clamped to `±qmax`.
pub fn quantize_weights_bits(
    mats: &[&Mat],
    per_tensor: bool,
    floors: &[f64],
    bits: Prec,
) -> (Vec<Vec<i8>>, Vec<f64>) {
    quantize_weights_scaled(mats, per_tensor, floors, bits, bits.is_sub_byte())
}

/// [`quantize_weights_bits`]; with `clip` the scale (per channel, or the
/// shared one) is [`mse_scale`]'s instead of max|W|/qmax.
pub fn quantize_weights_scaled(
    mats: &[&Mat],
    per_tensor: bool,
    floors: &[f64],
    bits: Prec,
    clip: bool,
) -> (Vec<Vec<i8>>, Vec<f64>) {
    let qm = qmax(bits);
    let rows = mats[0].rows;
    let mut scales: Vec<f64> = (0..rows)
        .map(|c| {
            mats.iter()
                .flat_map(|m| m.row(c).iter())
                .fold(0.0f64, |a, v| a.max(v.abs()))
                / qm.span()
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
                    m.row(c).iter().map(move |v| qm.round(v / s) as i8)
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
pub fn gpfq_row(w: &[f64], s: f64, qm: impl Into<QRange>, x: &Columns) -> Vec<i8> {
    let qm: QRange = qm.into();
    let rows = x.cols.first().map_or(0, Vec::len);
    let mut u = vec![0.0f64; rows];
    w.iter()
        .enumerate()
        .map(|(t, &wt)| {
            let (col, n2) = match (x.cols.get(t), x.norms.get(t)) {
                (Some(c), Some(&n)) if n > 0.0 && s > 0.0 => (c, n),
                _ => return qm.round(wt / s) as i8,
            };
            let dot: f64 = col.iter().zip(&u).map(|(a, b)| a * b).sum();
            let q = qm.round((dot + wt * n2) / (s * n2));
            let e = wt - s * q;
            for (ui, &xi) in u.iter_mut().zip(col) {
                *ui += e * xi;
            }
            q as i8
        })
        .collect()
}

/// [`gpfq_row`] for every row of `m` with its channel's scale.
pub fn gpfq_matrix(m: &Mat, scales: &[f64], qm: QRange, x: &Columns) -> Vec<i8> {
    (0..m.rows)
        .flat_map(|c| gpfq_row(m.row(c), scales[c], qm, x))
        .collect()
}

/// Candidate clipping ratios of [`mse_scale`]: `1.00, 0.98, …, 0.50` of max|W|.
const CLIP_STEPS: usize = 26;

/// Candidate clipping ratios for 2-bit levels (int2, ternary), whose best
/// clip lies far below max|W|: `1.00, 0.98, …, 0.10`.
const CLIP_STEPS_2BIT: usize = 46;

/// The number of clipping candidates for the levels `qm` ([`CLIP_STEPS`], or
/// [`CLIP_STEPS_2BIT`] for at most ±2).
pub fn clip_steps(qm: QRange) -> usize {
    if qm.span() <= 2.0 {
        CLIP_STEPS_2BIT
    } else {
        CLIP_STEPS
    }
}

/// The scale `s = α · s_max` (α from 1 down to 0.5, or to 0.1 for 2-bit
/// levels, see [`clip_steps`]) that minimises `Σ (w − s·clamp(round(w/s),
/// lo, hi))²` over `values`; `s_max` itself (no clipping) wins ties, and is
/// returned unchanged when it is not a positive finite number.
pub fn mse_scale<I: Iterator<Item = f64>>(
    values: impl Fn() -> I,
    s_max: f64,
    qm: impl Into<QRange>,
) -> f64 {
    let qm: QRange = qm.into();
    if !(s_max.is_finite() && s_max > 0.0) {
        return s_max;
    }
    let err = |s: f64| {
        values()
            .map(|w| {
                let q = qm.round(w / s);
                (w - s * q).powi(2)
            })
            .sum::<f64>()
    };
    let mut best = (err(s_max), s_max);
    for i in 1..clip_steps(qm) {
        let s = s_max * (1.0 - 0.02 * i as f64);
        let e = err(s);
        if e < best.0 {
            best = (e, s);
        }
    }
    best.1
}

/// Weight precision per layer (`tinygnn convert --weights`): a default and
/// overrides by fused op name (the names `convert` and `inspect` print).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WeightPlan {
    /// Precision of every layer not named in `layers`.
    pub default: Option<Prec>,
    /// Per-layer precision.
    pub layers: Vec<(String, Prec)>,
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
    pub int4_recalibrate: Option<crate::range::Method>,
    /// int4 activation tensors (`--activations int4`; empty: all int8).
    pub act4: crate::act4::Act4Plan,
}

impl WeightPlan {
    /// All layers in one precision.
    pub fn all(bits: Prec) -> Self {
        WeightPlan {
            default: Some(bits),
            ..WeightPlan::default()
        }
    }

    /// The precision of `layer` (int8 unless set): a layer is named by any
    /// of the spec ops merged into it (e.g. `conv1` for `conv1 + relu`).
    pub fn bits(&self, layer: &Layer<'_>) -> Prec {
        self.layers
            .iter()
            .rev()
            .find(|(n, _)| layer.is(n))
            .map(|(_, b)| *b)
            .or(self.default)
            .unwrap_or(Prec::I8)
    }

    /// Whether any layer may be below 8 bits (the default or a named layer).
    pub fn any_int4(&self) -> bool {
        self.default.is_some_and(Prec::is_sub_byte)
            || self.layers.iter().any(|(_, b)| b.is_sub_byte())
    }

    /// Errors if a named layer is not one of `layers` (the layers with weights).
    pub fn check_names(&self, layers: &[Layer<'_>]) -> Result<()> {
        for (n, _) in &self.layers {
            if !layers.iter().any(|l| l.is(n)) {
                let known: Vec<&str> = layers.iter().map(Layer::report_name).collect();
                bail!(
                    "--weights: no layer with weights named '{n}' (layers: {})",
                    known.join(", ")
                );
            }
        }
        Ok(())
    }
}

/// A layer as the weight step names it: the fused op's name (the tensor it
/// produces), the spec ops merged into it, first to last, and its first input.
#[derive(Debug, Clone, Copy)]
pub struct Layer<'a> {
    /// The fused op's name.
    pub name: &'a str,
    /// The spec ops merged into it.
    pub merged: &'a [String],
    /// Its first input.
    pub input: &'a str,
}

impl<'a> Layer<'a> {
    /// The name a layer goes by in `--weights` and in reports: the first spec
    /// op merged into it (the conv or linear itself).
    pub fn report_name(&self) -> &'a str {
        self.merged.first().map_or(self.name, String::as_str)
    }

    /// Whether `n` names the layer (its name or any merged op's).
    pub fn is(&self, n: &str) -> bool {
        self.name == n || self.merged.iter().any(|m| m == n)
    }
}

/// Parses `int8` / `int4` / `int2` / `ternary`.
pub fn parse_bits(s: &str) -> Result<Prec> {
    Prec::parse(s).ok_or_else(|| {
        anyhow::anyhow!("weight precision must be int8, int4, int2 or ternary, not '{s}'")
    })
}

/// The name of a file's weight element type (`int8`, `int4`, `int2`; a
/// ternary layer is stored as int2).
pub fn bits_name(b: WeightBits) -> &'static str {
    match b {
        WeightBits::I8 => "int8",
        WeightBits::I4 => "int4",
        WeightBits::I2 => "int2",
    }
}

impl std::str::FromStr for WeightPlan {
    type Err = anyhow::Error;
    /// A comma-separated list of `int8`, `int4`, `int2`, `ternary` (the
    /// default for every layer) and `LAYER=PRECISION` entries, e.g.
    /// `int2,conv2=int8`.
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

/// One layer's int4 values (per matrix), its (possibly corrected) bias and
/// its scales, as fixed by sequential rounding ([`WeightPlan::int4_feedback`]).
pub type Fixed = (Vec<Vec<i8>>, Vec<f64>, Vec<f64>);

/// How the lowering rounds int4 layers under sequential rounding: the
/// layers already fixed, and the one to fix now with its float and quantized
/// (aggregated) inputs on the calibration graphs.
#[derive(Default)]
pub struct Hook<'a> {
    pub(crate) fixed: Option<&'a HashMap<String, Fixed>>,
    pub(crate) pending: Option<(&'a str, &'a Tensor, &'a Tensor)>,
    pub(crate) made: std::cell::RefCell<Option<Fixed>>,
}

impl Hook<'_> {
    /// The int4 values and bias of layer `name` if this hook decides them.
    fn apply(
        &self,
        name: &str,
        bits: Prec,
        mats: &[&Mat],
        scales: &[f64],
        b: &[f64],
        (floors, per_tensor, plan): (&[f64], bool, &WeightPlan),
    ) -> Option<Fixed> {
        if !bits.is_sub_byte() {
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
            // An int2 channel also tries the ternary levels −1..=1 (a subset
            // of int2's) at their own squared-error scale: the asymmetric
            // −2..=1 grid is not always the better one for the output.
            let floor = floors
                .get(c)
                .copied()
                .filter(|f| f.is_finite())
                .unwrap_or(0.0);
            let mut cands = vec![(*s, qm)];
            let mut grids = vec![qm];
            if bits == Prec::I2 && !per_tensor {
                let t = Prec::Ternary.levels();
                let s_max = w.iter().fold(0.0f64, |a, v| a.max(v.abs())) / t.span();
                let st = mse_scale(|| w.iter().copied(), s_max, t).max(floor);
                if st.is_finite() && st > 0.0 {
                    cands.push((st, t));
                }
                grids.push(t);
            }
            if plan.int4_output_scale && !per_tensor {
                for g in grids {
                    let s_max = w.iter().fold(0.0f64, |a, v| a.max(v.abs())) / g.span();
                    cands.extend(
                        (0..clip_steps(g))
                            .map(|i| (s_max * (1.0 - 0.02 * i as f64)).max(floor))
                            .filter(|v| v.is_finite() && *v > 0.0)
                            .map(|v| (v, g)),
                    );
                }
            }
            let mut best: Option<(f64, f64, Vec<i8>, f64)> = None;
            for (cs, g) in cands {
                let (qr, mean_err, sse) = gpfq_fb_row_err(&w, cs, g, &xc, &xqc);
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
pub fn gpfq_fb_row(
    w: &[f64],
    s: f64,
    qm: impl Into<QRange>,
    x: &Columns,
    xq: &Columns,
) -> (Vec<i8>, f64) {
    let (q, mean, _) = gpfq_fb_row_err(w, s, qm, x, xq);
    (q, mean)
}

/// [`gpfq_fb_row`], also returning the squared output error `‖u‖²` left.
pub fn gpfq_fb_row_err(
    w: &[f64],
    s: f64,
    qm: impl Into<QRange>,
    x: &Columns,
    xq: &Columns,
) -> (Vec<i8>, f64, f64) {
    let qm: QRange = qm.into();
    let rows = xq.cols.first().map_or(0, Vec::len);
    let mut u = vec![0.0f64; rows];
    let q = w
        .iter()
        .enumerate()
        .map(|(t, &wt)| {
            let nearest = if s > 0.0 { qm.round(wt / s) } else { 0.0 };
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
                qm.round(dot / (s * n2))
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

/// The weight decisions every layer with int8/int4 weights makes the same
/// way, and where they are recorded for the report.
pub struct WeightStep<'a> {
    pub(crate) plan: &'a WeightPlan,
    pub(crate) per_tensor_layer: &'a dyn Fn(&str) -> bool,
    pub(crate) acts: Option<&'a Values>,
    pub(crate) per_tensor_layers: Vec<String>,
    pub(crate) layer_bits: Vec<(String, Prec)>,
    pub(crate) layer_weights: Vec<(String, usize)>,
}

/// One layer's weights as [`WeightStep::quantize`] decided them: precision,
/// one shared scale or not, the int values per matrix and one scale per
/// output channel.
pub struct LayerWeights {
    /// Precision.
    pub bits: Prec,
    /// One scale for every channel.
    pub per_tensor: bool,
    /// The int values, per matrix.
    pub q: Vec<Vec<i8>>,
    /// One scale per output channel.
    pub scales: Vec<f64>,
}

impl WeightStep<'_> {
    /// Layer `f`'s weight bits and scales (one per tensor if `per_tensor` or
    /// if the plan picks the layer), and `mats` rounded to nearest with them
    /// over the bias floors; records both choices.
    pub fn quantize(
        &mut self,
        f: &Layer<'_>,
        mats: &[&Mat],
        floors: &[f64],
        per_tensor: bool,
    ) -> LayerWeights {
        let per_tensor = per_tensor || (self.per_tensor_layer)(f.name);
        if per_tensor {
            self.per_tensor_layers.push(f.name.to_string());
        }
        let bits = self.plan.bits(f);
        self.layer_bits.push((f.report_name().to_string(), bits));
        let n = mats.iter().map(|m| m.data.len()).sum();
        self.layer_weights.push((f.report_name().to_string(), n));
        let clip = bits.is_sub_byte() && !self.plan.int4_max_scale;
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
    pub fn round_int4(
        &self,
        f: &Layer<'_>,
        mats: &[&Mat],
        floors: &[f64],
        lw: &mut LayerWeights,
        hook: Option<&Hook<'_>>,
        b: &mut Vec<f64>,
    ) {
        let ctx = (floors, lw.per_tensor, self.plan);
        if let Some((fq, fb, fs)) =
            hook.and_then(|h| h.apply(f.name, lw.bits, mats, &lw.scales, b, ctx))
        {
            lw.q = fq;
            lw.scales = fs;
            *b = fb;
        } else if let Some(x) = self.gpfq_input(lw.bits, f.input) {
            for (qi, m) in lw.q.iter_mut().zip(mats) {
                *qi = gpfq_matrix(m, &lw.scales, qmax(lw.bits), &x);
            }
        }
    }

    /// The float input of a layer, column-major, when its int4 values come from GPFQ.
    fn gpfq_input(&self, bits: Prec, input: &str) -> Option<Columns> {
        if !bits.is_sub_byte() || !self.plan.int4_gpfq {
            return None;
        }
        self.acts.and_then(|a| a.get(input)).map(Columns::of)
    }
}
